#!/usr/bin/env bash
# Login timing benchmark (SPEC §1.7, no user enumeration by timing): a release build on a
# fresh data directory at the default Argon2id cost (m=19456 KiB, t=2, p=1), one user made
# with the CLI, then interleaved sign-in attempts for an unknown user and for that user with
# a wrong password, throttling off so every attempt reaches the hash. Prints each kind's
# median wall time and the relative difference. Exits non-zero only on errors, not on the
# figures: it is a benchmark, not a test.
#
#   bench/login_timing.sh [ATTEMPTS]          # default 60 (30 of each kind), plus 6 warm-up
#
# Environment: TESSERA_BIN (default target/release/tessera, built if missing), NODE (node
# binary), WARMUP (default 6), KEEP_DATA=1 (keep the data directory and server log).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ATTEMPTS="${1:-60}"
WARMUP="${WARMUP:-6}"
NODE="${NODE:-node}"
BIN="${TESSERA_BIN:-$ROOT/target/release/tessera}"

command -v "$NODE" >/dev/null || { echo "login_timing: node is required (set NODE)" >&2; exit 1; }
if [ ! -x "$BIN" ]; then
  echo "login_timing: building the release binary" >&2
  (cd "$ROOT" && cargo build --release -p tessera)
fi

DATA="$(mktemp -d "${TMPDIR:-/tmp}/tessera-login-timing-XXXXXX")"
LOG="$DATA/server.log"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${KEEP_DATA:-0}" = 1 ]; then echo "login_timing: data and log kept in $DATA" >&2; else rm -rf "$DATA"; fi
}
trap cleanup EXIT

# Only TESSERA_* settings of this benchmark: nothing inherited from the caller's shell.
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep '^TESSERA_' || true)
export TESSERA_DATA_DIR="$DATA"
export TESSERA_LISTEN="127.0.0.1:0"
export TESSERA_THROTTLE__ENABLED=false
export TESSERA_PASSWORD__MEMORY_KIB=19456
export TESSERA_PASSWORD__ITERATIONS=2
export TESSERA_PASSWORD__PARALLELISM=1
export TESSERA_LOG__LEVEL=warn

"$BIN" serve >"$LOG" 2>&1 &
SERVER_PID=$!
URL=""
for _ in $(seq 1 300); do
  # "Tessera is listening on http://localhost:PORT (bound to 127.0.0.1:PORT)": use the
  # bound address (no name resolution in the measured path).
  BOUND="$(grep -o 'bound to [0-9.]*:[0-9]*' "$LOG" | head -n1 | sed 's/^bound to //' || true)"
  [ -n "$BOUND" ] && URL="http://$BOUND"
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "login_timing: the server exited:" >&2; cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { echo "login_timing: the server did not print its address:" >&2; cat "$LOG" >&2; exit 1; }

USERNAME="timing-user"
printf '%s\n' "a long and correct passphrase for timing" \
  | "$BIN" user create --username "$USERNAME" --password-stdin >"$DATA/user.json"
grep -q '"id"' "$DATA/user.json" || { echo "login_timing: user create failed" >&2; cat "$DATA/user.json" >&2; exit 1; }

echo "tessera $("$BIN" --version 2>/dev/null | awk '{print $NF}' || echo '?') at $URL; Argon2id m=19456 KiB t=2 p=1; throttling off; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$NODE" "$ROOT/bench/login_timing/measure.mjs" "$URL" "$USERNAME" "$ATTEMPTS" "$WARMUP"
