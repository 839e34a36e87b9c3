-- wrk: refresh-token rotation. Starts from the tokens in REFRESH_TOKENS_FILE (one a line,
-- at least two per connection) and follows the rotation: each request spends one token and
-- its response hands back the next, which goes to the end of the queue. A request with no
-- token left sends an invalid one so that starvation shows up as non-2xx responses.
local queue, head, tail = {}, 1, 0
local auth = os.getenv("AUTH")
local path = os.getenv("TOKEN_PATH") or "/oauth2/token"

function init(args)
  local f = assert(io.open(os.getenv("REFRESH_TOKENS_FILE"), "r"))
  for line in f:lines() do
    if #line > 0 then tail = tail + 1; queue[tail] = line end
  end
  f:close()
end

function request()
  local t = "exhausted"
  if head <= tail then t = queue[head]; queue[head] = nil; head = head + 1 end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, "grant_type=refresh_token&refresh_token=" .. t)
end

function response(status, headers, body)
  local t = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if t then tail = tail + 1; queue[tail] = t end
end
