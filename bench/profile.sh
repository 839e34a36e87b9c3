#!/usr/bin/env bash
# CPU profile of Tessera under load with perf (software cpu-clock event: this VM has no
# hardware counters) and DWARF call graphs from .eh_frame.
#
#   bench/profile.sh [client_credentials|jwks|discovery] [SECONDS]
#
# Starts the release binary (BENCH_BIN, default target/release/tessera) pinned to CPU 0 on a
# fresh data directory, loads it with wrk (32 connections, CPU 1), records for SECONDS
# (default 8) and prints the per-thread split, the top self-time symbols and the top
# inclusive ("children") symbols. Raw data stays in $OUT (default bench/results/profile-*).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SCENARIO="${1:-client_credentials}"
SECS="${2:-8}"
PORT="${BENCH_PORT:-18090}"
BIN="${BENCH_BIN:-$ROOT/target/release/tessera}"
OUT="${OUT:-$ROOT/bench/results/profile-$SCENARIO-$(date -u +%Y%m%dT%H%M%SZ)}"
URL="http://127.0.0.1:$PORT"
command -v perf >/dev/null || { apt-get update && apt-get install -y linux-perf; }
command -v wrk >/dev/null || { apt-get update && apt-get install -y wrk; }
[ -x "$BIN" ] || { echo "build first: cargo build --release -p tessera" >&2; exit 1; }
mkdir -p "$OUT"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/tessera-profile.XXXXXX")"
PID=""
WRK=""
cleanup() {
  [ -n "$WRK" ] && kill "$WRK" 2>/dev/null || true
  [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  rm -rf "$DATA"
}
trap cleanup EXIT
while read -r v; do unset "$v"; done < <(compgen -e | grep '^TESSERA_' || true)
export TESSERA_DATA_DIR="$DATA" TESSERA_LISTEN="127.0.0.1:$PORT" TESSERA_ISSUER="$URL" TESSERA_LOG__LEVEL=error
CC="$("$BIN" client create --name bench --grant-type client_credentials --scope api:read)"
ID="$(printf '%s' "$CC" | sed 's/.*"client_id":"\([^"]*\)".*/\1/')"
SECRET="$(printf '%s' "$CC" | sed 's/.*"client_secret":"\([^"]*\)".*/\1/')"
taskset -c 0 "$BIN" serve > "$OUT/tessera.log" 2>&1 &
PID=$!
for _ in $(seq 200); do curl -sf -o /dev/null "$URL/healthz" && break; sleep 0.05; done

export AUTH="Basic $(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)" BODY='grant_type=client_credentials&scope=api%3Aread'
case "$SCENARIO" in
  client_credentials) target=("$URL/oauth2/token" -s "$ROOT/bench/lua/post.lua") ;;
  jwks) target=("$URL/oauth2/jwks") ;;
  discovery) target=("$URL/.well-known/openid-configuration") ;;
  *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac
taskset -c 1 wrk -t1 -c32 -d"$((SECS + 4))s" "${target[@]}" > "$OUT/wrk.txt" 2>&1 &
WRK=$!
sleep 2
perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$PID" -o "$OUT/perf.data" -- sleep "$SECS" 2> "$OUT/perf-record.log"
wait "$WRK" || true
WRK=""
grep -E 'Requests/sec' "$OUT/wrk.txt" || true
report() { perf report -i "$OUT/perf.data" --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/ \{2,\}/ /g' | cut -c1-200; }
echo "--- CPU by thread"
report --no-children --sort comm -g none | head -5
echo "--- top self time"
report --no-children --sort dso,sym -g none --percent-limit 1 | head -30
echo "--- top inclusive time (user space)"
report --children --sort sym -g none --percent-limit 3 | grep -v '\[k\]' | grep -v 'MapIntoResponseFuture\|future::future::Map' | head -40
