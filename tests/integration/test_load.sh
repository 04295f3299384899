#!/usr/bin/env bash
# Load: 500 idle keep-alive connections plus 32 concurrent streaming chat
# completions against the real binary. Every request must succeed, every idle
# connection must survive, and the server's memory must stay bounded:
# RSS before/after and the peak (VmHWM) are printed and the peak's growth over
# the idle baseline is checked against a limit.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
NODE_DIR=$(cd "$(dirname "$0")/node" && pwd)
N_IDLE=${N_IDLE:-500}
N_STREAMS=${N_STREAMS:-32}
# Growth allowed over the loaded-and-idle baseline. An ASan build keeps freed
# memory in quarantine (256 MiB by default), so it gets more room.
LIMIT_MB=${RSS_LIMIT_MB:-96}
if nm -C "$TIDEGATE_BIN" 2>/dev/null | grep -q __asan_init; then LIMIT_MB=${RSS_LIMIT_MB:-384}; fi

if [ ! -d "$NODE_DIR/node_modules/openai" ]; then
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error) || { echo "npm install failed"; exit 1; }
fi
ulimit -n 4096 2>/dev/null || true

rss_kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$PID/status"; }

start_server load TIDEGATE_MAX_CONNECTIONS=1024 TIDEGATE_MAX_ACTIVE=16
sleep 0.3
before=$(rss_kb VmRSS)
summary=$(cd "$NODE_DIR" && TG_BASE_URL=$BASE/v1 N_IDLE=$N_IDLE N_STREAMS=$N_STREAMS MAX_TOKENS=${MAX_TOKENS:-16} node load.mjs 2>&1)
lrc=$?
after=$(rss_kb VmRSS)
peak=$(rss_kb VmHWM)
echo "load: $summary"
echo "rss: before=$((before / 1024)) MiB after=$((after / 1024)) MiB peak=$((peak / 1024)) MiB (growth limit ${LIMIT_MB} MiB)"
check "load client: no errors" 0 "$lrc"
growth=$(((peak - before) / 1024))
[ "$growth" -le "$LIMIT_MB" ] && ok "peak RSS growth ${growth} MiB <= ${LIMIT_MB} MiB" ||
    bad "peak RSS growth ${growth} MiB > ${LIMIT_MB} MiB"
areq metrics GET /metrics
grep -q '^tidegate_http_requests_total{route="/v1/chat/completions",status="200"} '"$N_STREAMS"'$' "$BODY" &&
    ok "metrics: $N_STREAMS streams counted" || bad "metrics: stream count $(grep 'chat/completions",status="200"' "$BODY")"
stop_server
check "server exit 0 after load" 0 "$RC"
if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$TMP/load.log"; then bad "sanitizer report"; else ok "no sanitizer reports"; fi
finish
