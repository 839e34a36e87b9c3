-- wrk: one fixed form POST. BODY, AUTH (full Authorization header value), COOKIE and ORIGIN
-- come from the environment (bench/run.sh sets them).
wrk.method = "POST"
wrk.body = os.getenv("BODY") or ""
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local function set(h, v) if v and v ~= "" then wrk.headers[h] = v end end
set("Authorization", os.getenv("AUTH"))
set("Cookie", os.getenv("COOKIE"))
set("Origin", os.getenv("ORIGIN"))
