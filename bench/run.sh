#!/usr/bin/env bash
# Side-by-side load benchmark: Tessera vs the node-oidc-provider peer (shared/bench).
#
#   bench/run.sh [DURATION_S] [CONNECTIONS]        # defaults 10 s, 32 connections
#
# Environment: DUR, CONN (same as the arguments), LOGIN_CONN (default 4); BENCH_PORT (28080)
# and PEER_PORT (23000), both below the ephemeral port range; PEER_DIR (the peer's sources,
# default ../shared/bench/peers/node-oidc-provider); NODE (node binary); BENCH_BIN (the
# tessera binary, default target/release/tessera); SKIP_BUILD=1 (use the existing binary);
# ONLY=tessera|peer (one side); OUT (results directory, default bench/results/<UTC time>);
# NICE (niceness of servers and wrk when run as root, default -5, 0 for none: the machine is
# shared with builds, and a starved wrk on CPU 1 caps the server's figure).
#
# Servers are pinned to CPU 0, wrk to CPU 1. Both sides: logging off, client_secret_basic,
# EdDSA JWT access tokens living 300 s. Nothing is counted before one token of each server
# has been verified against its JWKS and a wrong client secret has been refused with 401.
# Prints one Markdown table at the end (also written to $OUT/table.md).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
DUR="${1:-${DUR:-10}}"
CONN="${2:-${CONN:-32}}"
LOGIN_CONN="${LOGIN_CONN:-4}"
T_PORT="${BENCH_PORT:-28080}"
P_PORT="${PEER_PORT:-23000}"
NODE="${NODE:-node}"
PEER_DIR="${PEER_DIR:-$ROOT/../shared/bench/peers/node-oidc-provider}"
ONLY="${ONLY:-}"
OUT="${OUT:-$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)}"
NICE="${NICE:--5}"
[ "$(id -u)" = 0 ] || NICE=0
PRIO=(nice -n "$NICE")
T_URL="http://127.0.0.1:$T_PORT"
P_URL="http://127.0.0.1:$P_PORT"
BIN="${BENCH_BIN:-$ROOT/target/release/tessera}"
CLK_TCK="$(getconf CLK_TCK)"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
: > "$RESULTS"

log() { printf '\n### %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ clean-up of what we start
PIDS=()
DATA_DIRS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  local d
  for d in "${DATA_DIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_server() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# ------------------------------------------------------------------ tools
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update && apt-get install -y wrk
fi
command -v taskset >/dev/null || { apt-get update && apt-get install -y util-linux; }
command -v "$NODE" >/dev/null || { apt-get update && apt-get install -y nodejs npm; }
"$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js >= 20.19 is needed (oidc-provider 9); set NODE=/path/to/node"
curl --version >/dev/null 2>&1 || { apt-get update && apt-get install -y curl; }

# The peer is installed into a copy under bench/.peer so that shared/ stays untouched.
PEER_COPY="$BENCH/.peer"
if [ "$ONLY" != tessera ]; then
  [ -f "$PEER_DIR/server.js" ] || die "peer not found at $PEER_DIR (set PEER_DIR)"
  mkdir -p "$PEER_COPY"
  for f in package.json server.js; do
    cmp -s "$PEER_DIR/$f" "$PEER_COPY/$f" || { cp "$PEER_DIR/$f" "$PEER_COPY/$f"; chmod u+w "$PEER_COPY/$f"; rm -rf "$PEER_COPY/node_modules"; }
  done
  if [ ! -d "$PEER_COPY/node_modules/oidc-provider" ]; then
    log "installing the peer's npm packages into bench/.peer"
    (cd "$PEER_COPY" && npm install --no-audit --no-fund)
  fi
fi
# bench/tools.mjs uses tests/e2e's helpers and its jose/openid-client.
if [ ! -d "$ROOT/tests/e2e/node_modules/jose" ] || [ ! -d "$ROOT/tests/e2e/node_modules/openid-client" ]; then
  log "installing tests/e2e's npm packages"
  (cd "$ROOT/tests/e2e" && npm ci --no-audit --no-fund)
fi

# ------------------------------------------------------------------ build
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release -p tessera"
  (cd "$ROOT" && cargo build --release -p tessera)
fi
[ -x "$BIN" ] || die "$BIN missing (build it, or unset SKIP_BUILD)"
ARGON_EXE=""
if [ "$ONLY" != peer ]; then
  log "building the argon2_rate bench"
  ARGON_EXE="$(cd "$ROOT" && cargo bench -p tessera-core --bench argon2_rate --no-run --message-format=json 2>/dev/null \
    | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.split("\n")){try{const m=JSON.parse(l);if(m.reason==="compiler-artifact"&&m.target&&m.target.name==="argon2_rate"&&m.executable)console.log(m.executable)}catch{}}})' | tail -1)"
  [ -x "$ARGON_EXE" ] || die "could not build the argon2_rate bench (cargo bench -p tessera-core --bench argon2_rate --no-run)"
fi

for port in "$T_PORT" "$P_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is in use (set BENCH_PORT / PEER_PORT)"; fi
done

# ------------------------------------------------------------------ measuring
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
to_ms() { # wrk latency like 812.00us / 1.23ms / 2.01s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

wait_ready() { # url pid [poll interval s]
  local i
  for i in $(seq 1 2000); do
    curl -sf -o /dev/null --max-time 1 "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep "${3:-0.05}"
  done
  return 1
}

# run_wrk SIDE SCENARIO PID CONNS URL [LUA] [extra wrk args...]; env vars for the lua script
# must be exported by the caller. Appends one row to $RESULTS.
run_wrk() {
  local side="$1" scenario="$2" pid="$3" conns="$4" url="$5" lua="${6:-}"
  shift 6 || shift $#
  local file="$OUT/$side.$scenario.c$conns.wrk.txt"
  local args=(-t1 -c"$conns" -d"${DUR}s" --latency "$@")
  [ -n "$lua" ] && args+=(-s "$lua")
  local t0 t1
  t0="$(cpu_ticks "$pid")"
  "${PRIO[@]}" taskset -c 1 wrk "${args[@]}" "$url" > "$file" 2>&1 || { cat "$file" >&2; die "wrk failed: $side $scenario"; }
  kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; die "the $side server (pid $pid) died during $scenario"; }
  t1="$(cpu_ticks "$pid")"
  local rps p50 p99 reqs non2xx sockerr cpu_us rss
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$file")"
  p50="$(to_ms "$(awk '$1 == "50%" {print $2}' "$file")")"
  p99="$(to_ms "$(awk '$1 == "99%" {print $2}' "$file")")"
  reqs="$(awk '/requests in/ {print $1}' "$file")"
  non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$file")"; non2xx="${non2xx:-0}"
  sockerr="$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$file")"; sockerr="${sockerr:-0}"
  cpu_us="$(awk -v d="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "-" }')"
  rss="$(rss_kib "$pid")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$scenario" "$side" "$conns" "$rps" "$p50" "$p99" "$cpu_us" "$rss" "$((non2xx + sockerr))" "$reqs" >> "$RESULTS"
  printf '%-22s %-8s c=%-3s %10s req/s  p50 %8s ms  p99 %8s ms  cpu %7s us/req  rss %6s KiB  errors %s\n' \
    "$scenario" "$side" "$conns" "$rps" "$p50" "$p99" "$cpu_us" "$rss" "$((non2xx + sockerr))" >&2
}

FACTS="$OUT/facts.txt"
: > "$FACTS"
fact() { printf '%s=%s\n' "$1" "$2" >> "$FACTS"; printf '%s: %s\n' "$1" "$2" >&2; }
fact date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fact nproc "$(nproc)"
fact cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
fact mem_total "$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
fact kernel "$(uname -r)"
fact node "$("$NODE" --version)"
fact wrk "$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
fact tessera_commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- crates 2>/dev/null || echo '+dirty')"
fact loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------ raw Argon2id on CPU 0
if [ "$ONLY" != peer ]; then
  log "raw Argon2id (m=19456 t=2 p=1) pinned to CPU 0"
  "${PRIO[@]}" taskset -c 0 "$ARGON_EXE" 5 | tee "$OUT/argon2_rate.txt" >&2
  fact argon2_raw_per_s "$(awk -F= '/^argon2_raw_per_s=/ {print $2}' "$OUT/argon2_rate.txt")"
  fact argon2_verify_per_s "$(awk -F= '/^argon2_verify_per_s=/ {print $2}' "$OUT/argon2_rate.txt")"
  fact argon2_raw_cpu_ms "$(awk -F= '/^argon2_raw_cpu_ms=/ {print $2}' "$OUT/argon2_rate.txt")"
fi

# ------------------------------------------------------------------ the peer
start_peer() { # format (jwt|opaque) -> sets PEER_PID
  (cd "$PEER_COPY" && exec env PORT="$P_PORT" ALG=EdDSA TOKEN_FORMAT="$1" NODE_ENV=production \
    "${PRIO[@]}" taskset -c 0 "$NODE" server.js) > "$OUT/peer-$1.log" 2>&1 &
  PEER_PID=$!
  PIDS+=("$PEER_PID")
  wait_ready "$P_URL/jwks" "$PEER_PID" || { cat "$OUT/peer-$1.log" >&2; die "the peer did not start"; }
}

if [ "$ONLY" != tessera ]; then
  log "peer: node-oidc-provider (jwt, EdDSA)"
  start_peer jwt
  sleep 1
  fact peer_rss_idle_kib "$(rss_kib "$PEER_PID")"
  "$NODE" "$BENCH/tools.mjs" check "$P_URL/token" "$P_URL/jwks" bench-client bench-secret | tee "$OUT/peer-check.json" >&2
  export AUTH="Basic $(printf '%s' 'bench-client:bench-secret' | base64 -w0)" BODY='grant_type=client_credentials&scope=api%3Aread'
  run_wrk peer client_credentials "$PEER_PID" 1 "$P_URL/token" "$BENCH/lua/post.lua"
  run_wrk peer client_credentials "$PEER_PID" "$CONN" "$P_URL/token" "$BENCH/lua/post.lua"
  run_wrk peer jwks "$PEER_PID" "$CONN" "$P_URL/jwks" ""
  run_wrk peer discovery "$PEER_PID" "$CONN" "$P_URL/.well-known/openid-configuration" ""
  fact peer_rss_peak_kib "$(hwm_kib "$PEER_PID")"
  stop_server "$PEER_PID"

  # oidc-provider refuses to introspect JWT access tokens ("Structured JWT Tokens cannot be
  # introspected"), so its introspection is measured on an opaque token (in-memory lookup).
  log "peer: node-oidc-provider (opaque tokens) for introspection"
  start_peer opaque
  TOKEN="$(curl -sf -u bench-client:bench-secret -d grant_type=client_credentials -d scope=api:read "$P_URL/token" \
    | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).access_token))')"
  curl -sf -u bench-client:bench-secret --data-urlencode "token=$TOKEN" "$P_URL/token/introspection" | grep -q '"active":true' \
    || die "peer introspection of a fresh token is not active"
  export BODY="token=$TOKEN"
  run_wrk peer introspection "$PEER_PID" "$CONN" "$P_URL/token/introspection" "$BENCH/lua/post.lua"
  stop_server "$PEER_PID"
fi

# ------------------------------------------------------------------ Tessera
if [ "$ONLY" != peer ]; then
  log "Tessera ($BIN)"
  DATA="$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench.XXXXXX")"
  DATA_DIRS+=("$DATA")
  # Tessera refuses unknown TESSERA_* variables; only ours reach it.
  while read -r v; do unset "$v"; done < <(compgen -e | grep '^TESSERA_' || true)
  export TESSERA_DATA_DIR="$DATA" TESSERA_LISTEN="127.0.0.1:$T_PORT" TESSERA_ISSUER="$T_URL" TESSERA_LOG__LEVEL=error
  CC_JSON="$("$BIN" client create --name bench --grant-type client_credentials --scope api:read)"
  CC_ID="$(printf '%s' "$CC_JSON" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).client_id))')"
  CC_SECRET="$(printf '%s' "$CC_JSON" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).client_secret))')"
  REDIRECT="http://127.0.0.1:9/cb"
  RT_JSON="$("$BIN" client create --name bench-web --redirect-uri "$REDIRECT" --skip-consent \
    --grant-type authorization_code --grant-type refresh_token --scope openid --scope offline_access)"
  RT_ID="$(printf '%s' "$RT_JSON" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).client_id))')"
  RT_SECRET="$(printf '%s' "$RT_JSON" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).client_secret))')"
  BENCH_PW='correct horse battery staple'
  printf '%s\n' "$BENCH_PW" | "$BIN" user create --username bench --email bench@example.com --password-stdin > /dev/null

  start_tessera() {
    "${PRIO[@]}" taskset -c 0 "$BIN" serve > "$OUT/tessera.log" 2>&1 &
    T_PID=$!
    PIDS+=("$T_PID")
  }
  # Start-up time to serving on an existing data directory: the first start (which may make
  # the signing keys) is discarded, the second one is timed (spawn to the first 200 from
  # /healthz, polled every 5 ms, so it includes curl's own start-up).
  start_tessera
  wait_ready "$T_URL/healthz" "$T_PID" || { cat "$OUT/tessera.log" >&2; die "Tessera did not start"; }
  stop_server "$T_PID"
  t_start="$(date +%s%N)"
  start_tessera
  wait_ready "$T_URL/healthz" "$T_PID" 0.005 || { cat "$OUT/tessera.log" >&2; die "Tessera did not start"; }
  fact tessera_startup_ms "$(( ($(date +%s%N) - t_start) / 1000000 ))"
  sleep 1
  fact tessera_rss_idle_kib "$(rss_kib "$T_PID")"
  fact tessera_threads "$(ls "/proc/$T_PID/task" | wc -l)"

  "$NODE" "$BENCH/tools.mjs" check "$T_URL/oauth2/token" "$T_URL/oauth2/jwks" "$CC_ID" "$CC_SECRET" | tee "$OUT/tessera-check.json" >&2
  export AUTH="Basic $(printf '%s:%s' "$CC_ID" "$CC_SECRET" | base64 -w0)" BODY='grant_type=client_credentials&scope=api%3Aread'
  run_wrk tessera client_credentials "$T_PID" 1 "$T_URL/oauth2/token" "$BENCH/lua/post.lua"
  run_wrk tessera client_credentials "$T_PID" "$CONN" "$T_URL/oauth2/token" "$BENCH/lua/post.lua"
  run_wrk tessera jwks "$T_PID" "$CONN" "$T_URL/oauth2/jwks" ""
  run_wrk tessera discovery "$T_PID" "$CONN" "$T_URL/.well-known/openid-configuration" ""

  TOKEN="$(curl -sf -u "$CC_ID:$CC_SECRET" -d grant_type=client_credentials -d scope=api:read "$T_URL/oauth2/token" \
    | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).access_token))')"
  curl -sf -u "$CC_ID:$CC_SECRET" --data-urlencode "token=$TOKEN" "$T_URL/oauth2/introspect" | grep -q '"active":true' \
    || die "Tessera introspection of a fresh token is not active"
  export BODY="token=$TOKEN"
  run_wrk tessera introspection "$T_PID" "$CONN" "$T_URL/oauth2/introspect" "$BENCH/lua/post.lua"

  log "refresh tokens via the authorization code flow"
  REFRESH_TOKENS_FILE="$OUT/refresh-tokens.txt"
  "$NODE" "$BENCH/tools.mjs" refresh "$T_URL" bench "$BENCH_PW" "$RT_ID" "$RT_SECRET" "$REDIRECT" "$((CONN * 2))" > "$REFRESH_TOKENS_FILE"
  export REFRESH_TOKENS_FILE AUTH="Basic $(printf '%s:%s' "$RT_ID" "$RT_SECRET" | base64 -w0)"
  run_wrk tessera refresh_rotation "$T_PID" "$CONN" "$T_URL/oauth2/token" "$BENCH/lua/refresh.lua"

  log "password login (POST /login with CSRF)"
  FORM_JSON="$("$NODE" "$BENCH/tools.mjs" login-form "$T_URL")"
  COOKIE="$(printf '%s' "$FORM_JSON" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).cookie))')"
  CSRF="$(printf '%s' "$FORM_JSON" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(encodeURIComponent(JSON.parse(s).csrf)))')"
  export COOKIE ORIGIN="$T_URL" AUTH="" BODY="csrf_token=$CSRF&return_to=%2Faccount&username=bench&password=correct+horse+battery+staple"
  status="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" -H "Origin: $ORIGIN" -H 'Content-Type: application/x-www-form-urlencoded' --data "$BODY" "$T_URL/login")"
  [ "$status" = 303 ] || die "POST /login answered $status, not 303"
  run_wrk tessera password_login "$T_PID" "$LOGIN_CONN" "$T_URL/login" "$BENCH/lua/post.lua" --timeout 30s
  unset COOKIE ORIGIN

  fact tessera_rss_after_kib "$(rss_kib "$T_PID")"
  fact tessera_rss_peak_kib "$(hwm_kib "$T_PID")"
  stop_server "$T_PID"
fi
fact loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------ the table
TABLE="$OUT/table.md"
awk -F'\t' -v argon="$(awk -F= '/^argon2_raw_per_s=/ {print $2}' "$FACTS")" \
  -v argon_cpu="$(awk -F= '/^argon2_raw_cpu_ms=/ {print $2}' "$FACTS")" '
  { key = $1 SUBSEP $3; row[NR] = $0; if ($2 == "peer") { peer[key] = $4; pcpu[key] = $7 } }
  END {
    print "| scenario | server | conns | req/s | p50 ms | p99 ms | CPU µs/req | RSS after MiB | errors | Tessera/peer req/s | peer/Tessera CPU per req |"
    print "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (i = 1; i <= NR; i++) {
      split(row[i], f, "\t"); key = f[1] SUBSEP f[3]; ratio = ""; cratio = ""
      if (f[2] == "tessera" && (key in peer) && peer[key] > 0) {
        ratio = sprintf("%.2f×", f[4] / peer[key])
        if (f[7] > 0) cratio = sprintf("%.2f×", pcpu[key] / f[7])
      }
      if (f[2] == "tessera" && f[1] == "password_login" && argon > 0) {
        ratio = sprintf("%.0f%% of raw Argon2id rate (%.1f/s)", 100 * f[4] / argon, argon)
        if (argon_cpu > 0 && f[7] > 0) cratio = sprintf("raw hash CPU / login CPU: %.0f%% (%.1f ms)", 100 * argon_cpu * 1000 / f[7], argon_cpu)
      }
      printf "| %s | %s | %s | %.0f | %s | %s | %s | %.1f | %s | %s | %s |\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8] / 1024, f[9], ratio, cratio
    }
  }' "$RESULTS" > "$TABLE"
{
  echo
  echo "Results in $OUT"
  echo
  cat "$TABLE"
  echo
  sed 's/^/    /' "$FACTS"
} >&2
cat "$TABLE"
