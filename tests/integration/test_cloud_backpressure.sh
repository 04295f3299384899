#!/usr/bin/env bash
# Cloud relay backpressure: a client that stops reading must not make the
# gateway buffer the upstream's stream. The mock cloud streams 100,000
# words (about 24 MB of SSE to the client) and honours TCP flow control;
# the client reads nothing for a while. With backpressure the gateway
# pauses the upstream transfer once its unsent output is over its bound
# (256 KiB): the pause is counted in /metrics, the mock cannot finish
# writing (kernel buffers hold a few MB at most), and the gateway's RSS
# stays within 12 MB of what it was (not checked under ASan). Then the client reads: the whole
# answer arrives with one [DONE]. About 5 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/mock_cloud/mock_cloud.sh"
NODE_DIR=$(cd "$(dirname "$0")/node" && pwd)
N_WORDS=100000

start_mock_cloud "$TMP/mock" || exit 1
SERVER_PIDS+=("$MOCK_PID")
cat >"$TMP/bp.yaml" <<YAML
routing:
  idle_timeout_ms: 3000
cloud:
  - {name: main, base_url: "$MOCK_URL", model: mock-gpt, ca_file: "$MOCK_CA"}
YAML
start_server bp -- -c "$TMP/bp.yaml"
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$PID/status"; }
pauses() { curl -s --max-time 5 "$ADMIN_BASE/metrics" | awk '$1=="tidegate_cloud_relay_pauses_total"{n=$2} END{print n+0}'; }
last_rec() { # last_rec FIELD: of the mock's newest request record
    mock_admin GET /requests | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);const x=r[r.length-1]||{};console.log(String(x[process.argv[1]]))})' "$1"
}
# Warm up (the first call's connection and TLS), then the baseline RSS.
req warm POST /v1/chat/completions -H 'content-type: application/json' \
    -d '{"model":"mock-gpt","messages":[{"role":"user","content":"hi"}]}'
check "warm-up through the cloud" 200 "$STATUS"
RSS0=$(rss_kb)
check "no pause yet" 0 "$(pauses)"

mock_fault "long=$N_WORDS" 1
node "$NODE_DIR/slow_client.mjs" 127.0.0.1 "$PORT" \
    '{"model":"mock-gpt","stream":true,"messages":[{"role":"user","content":"Tell me about tides"}]}' \
    "$TMP/go" "tide " >"$TMP/slow.json" &
CLIENT=$!
# The pause is the condition to wait for (bounded: 20 s).
for _ in $(seq 1 400); do
    [ "$(pauses)" -ge 1 ] 2>/dev/null && break
    sleep 0.05
done
P=$(pauses)
[ "${P:-0}" -ge 1 ] && ok "the upstream was paused ($P pauses)" || bad "no pause counted"
# Whatever time passes now, a paused transfer cannot move on: sample RSS
# and the mock's progress for a second.
MAXRSS=$RSS0
for _ in $(seq 1 20); do
    r=$(rss_kb)
    [ "$r" -gt "$MAXRSS" ] && MAXRSS=$r
    sleep 0.05
done
GROWTH=$(((MAXRSS - RSS0) / 1024))
echo "gateway RSS: $((RSS0 / 1024)) MB before, at most $((MAXRSS / 1024)) MB with the client stalled"
# (Under ASan freed memory sits in quarantine, so RSS says nothing there:
# the upstream's progress below is the check that holds in every build.)
if ldd "$TIDEGATE_BIN" 2>/dev/null | grep -q libasan; then
    echo "ASan build: RSS not checked"
elif [ "$GROWTH" -le 12 ]; then
    ok "gateway memory bounded while the client stalls (+$GROWTH MB <= 12 MB)"
else
    bad "gateway RSS grew by $GROWTH MB"
fi
W=$(last_rec chunks_written)
echo "mock chunks written while stalled: $W of $N_WORDS"
check "the upstream could not finish (flow control reached it)" false "$(last_rec completed)"
[ "$W" -lt "$N_WORDS" ] && ok "upstream held back ($W < $N_WORDS chunks)" || bad "upstream wrote everything ($W)"

touch "$TMP/go"
wait "$CLIENT"
cat "$TMP/slow.json"
check "stream: 200" 200 "$(jget "$TMP/slow.json" status)"
check "stream: every word arrived after the resume" "$N_WORDS" "$(jget "$TMP/slow.json" pieces)"
check "stream: one [DONE]" 1 "$(jget "$TMP/slow.json" done)"
check "stream: no error event" 0 "$(jget "$TMP/slow.json" errors)"
check "the upstream finished" true "$(last_rec completed)"
stop_server
check "server exit 0" 0 "$RC"
for f in "$TMP"/*.log; do
    if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$f"; then bad "sanitizer report in $f"; fi
done
finish
