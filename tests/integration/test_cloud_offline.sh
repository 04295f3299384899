#!/usr/bin/env bash
# Automatic offline mode through a real link: the mock cloud runs in a
# network namespace of its own, reachable only over a veth pair (addresses
# on those two interfaces only, the mock bound to its side's address). A
# steady stream of cloud-bound streamed requests runs the whole time. The
# test takes our side of the link down: the gateway must enter offline by
# itself within a stated bound and keep answering on the edge; then it
# brings the link up: the gateway must go back online by itself (probes) and
# the cloud must answer again. The mode is read from /admin/state and the
# tidegate_mode gauge / tidegate_mode_changes_total; every request of the
# run must have ended 200 with one [DONE] and no error event.
#
# Needs root (ip netns, veth); skips (exit 77) otherwise. About 15 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/mock_cloud/mock_cloud.sh"
NODE_DIR=$(cd "$(dirname "$0")/node" && pwd)

skip() {
    echo "SKIP: $*"
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root for a network namespace and a veth pair"
command -v ip >/dev/null || skip "needs iproute2 (ip)"

# Names unique to this run (interface names: at most 15 characters).
NS=tgoff$$
VA=tgoa$$
VB=tgob$$
net_down() {
    ip link del "$VA" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
}
# lib.sh's trap kills the servers; ours also removes the namespace.
trap 'cleanup; net_down' EXIT
ip netns add "$NS" 2>/dev/null || skip "cannot create a network namespace here"

# A /30 in 169.254.0.0/16 no interface of ours uses (several runs at once).
for _ in $(seq 1 20); do
    SUB=169.254.$((RANDOM % 200 + 20)).$(((RANDOM % 63) * 4))
    A=${SUB%.*}.$((${SUB##*.} + 1))
    B=${SUB%.*}.$((${SUB##*.} + 2))
    ip -4 addr | grep -q " ${SUB%.*}\.\(${SUB##*.}\|$((${SUB##*.} + 1))\|$((${SUB##*.} + 2))\|$((${SUB##*.} + 3))\)/" || break
done
ip link add "$VA" type veth peer name "$VB" || skip "cannot create a veth pair here"
ip link set "$VB" netns "$NS"
ip addr add "$A/30" dev "$VA"
ip link set "$VA" up
ip -n "$NS" addr add "$B/30" dev "$VB"
ip -n "$NS" link set "$VB" up
ip -n "$NS" link set lo up
echo "link: $VA $A <-> $VB $B (netns $NS)"

# The mock cloud inside the namespace, bound to its veth address only.
mkdir -p "$TMP/mock"
"$MOCK_CLOUD_DIR/make_certs.sh" "$TMP/mock" "IP:$B" >/dev/null || exit 1
ip netns exec "$NS" node "$MOCK_CLOUD_DIR/mock_cloud.mjs" --host "$B" \
    --cert "$TMP/mock/server.pem" --key "$TMP/mock/server.key" \
    --wrong-cert "$TMP/mock/wrong.pem" --wrong-key "$TMP/mock/wrong.key" \
    --port-file "$TMP/mock/ports" >"$TMP/mock/mock.log" 2>&1 &
SERVER_PIDS+=("$!")
disown
for _ in $(seq 1 200); do
    [ -s "$TMP/mock/ports" ] && break
    sleep 0.05
done
[ -s "$TMP/mock/ports" ] || { cat "$TMP/mock/mock.log"; bad "mock cloud did not start"; finish; exit 1; }
read -r MPORT MADMIN <"$TMP/mock/ports"
# The mock's admin port is reached from inside its namespace (it stays
# reachable there while our side of the link is down).
n_cloud_requests() {
    ip netns exec "$NS" curl -s --max-time 5 "http://$B:$MADMIN/state" |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).requests))'
}

# Streams paced at 60 ms a chunk (about half a second each), so the link
# goes down under streams in flight: those continue on the edge.
ip netns exec "$NS" curl -s --max-time 5 -X POST "http://$B:$MADMIN/fault" \
    -d '{"fault":"delay_chunk_ms=60","count":-1}' >/dev/null

# Bounds. Probes every 200 ms, offline after 3 network failures in a row,
# online after 2 successes. Once the link is down a connect fails at once
# (no route); a request on a kept-alive connection stalls to the first-byte
# or idle budget (600 ms). So offline comes within 3 x (600 + 200) ms.
# Online again within 2 probes, each at most the probe interval + the
# connect budget (TCP + TLS, 2000 ms: a loaded machine's handshake with the
# Node mock can take a second). The margin (4000 ms) covers scheduling on a
# machine shared by several builds.
PROBE=200
FIRST_BYTE=600
CONNECT=2000
OFFLINE_BOUND=$((3 * (FIRST_BYTE + PROBE) + 4000))
ONLINE_BOUND=$((2 * (PROBE + CONNECT) + 4000))
cat >"$TMP/off.yaml" <<YAML
routing:
  probe_interval_ms: $PROBE
  offline_after: 3
  online_after: 2
  connect_timeout_ms: $CONNECT
  first_byte_timeout_ms: $FIRST_BYTE
  idle_timeout_ms: $FIRST_BYTE
  breaker: {failures: 3, cooldown_ms: 500}
cloud:
  - name: main
    base_url: "https://$B:$MPORT/v1"
    model: mock-gpt
    ca_file: "$TMP/mock/ca.pem"
YAML
start_server off -- -c "$TMP/off.yaml"

state() { curl -s --max-time 5 "$ADMIN_BASE/admin/state" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).state)}catch(e){console.log("?")}})'; }
metric() { curl -s --max-time 5 "$ADMIN_BASE/metrics" | awk -v k="$1" '$1==k{print $2}'; }
now_ms() { date +%s%3N; }
check_le() { if [ "$2" -le "$3" ]; then ok "$1 ($2 ms <= $3 ms)"; else bad "$1: $2 ms > $3 ms"; fi; }
# wait_state WANT BOUND_MS: polls /admin/state every 50 ms up to 4 x BOUND
# (the bound is checked on the measured time, not by the wait); sets WAITED.
wait_state() {
    local t0 s
    t0=$(now_ms)
    while :; do
        s=$(state)
        WAITED=$(($(now_ms) - t0))
        [ "$s" = "$1" ] && return 0
        [ "$WAITED" -gt $((4 * $2)) ] && return 1
        sleep 0.05
    done
}

# ---- online: the cloud answers -------------------------------------------
check "starts online" online "$(state)"
check "tidegate_mode gauge online" 0 "$(metric tidegate_mode)"
rm -f "$TMP/stop"
BODYJ='{"model":"tidegate/cloud","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"Tell me about tides"}]}'
node "$NODE_DIR/steady_load.mjs" "$BASE/v1/chat/completions" "$BODYJ" "$TMP/load.jsonl" "$TMP/stop" 2 &
LOAD_PID=$!
# Wait for cloud answers (a condition, bounded).
for _ in $(seq 1 200); do
    grep -q '"route":"cloud:main"' "$TMP/load.jsonl" 2>/dev/null && break
    sleep 0.05
done
grep -q '"route":"cloud:main"' "$TMP/load.jsonl" && ok "online: the cloud answers" || bad "online: no cloud answer"

# ---- link down: offline by itself, the edge keeps answering ---------------
T_DOWN=$(now_ms)
ip link set "$VA" down
if wait_state offline "$OFFLINE_BOUND"; then
    check_le "offline entered by itself within the bound" "$WAITED" "$OFFLINE_BOUND"
else
    bad "offline not entered within $((4 * OFFLINE_BOUND)) ms (state $(state))"
fi
check "tidegate_mode gauge offline" 2 "$(metric tidegate_mode)"
check "mode change to offline counted" 1 "$(metric 'tidegate_mode_changes_total{to="offline"}')"
# While offline no request touches the network: the next answers come from
# the edge with no failover on the way.
N_OFF=$(wc -l <"$TMP/load.jsonl")
for _ in $(seq 1 400); do
    [ "$(wc -l <"$TMP/load.jsonl")" -ge $((N_OFF + 4)) ] && break
    sleep 0.05
done
tail -n +$((N_OFF + 3)) "$TMP/load.jsonl" | head -2 >"$TMP/offline2.jsonl"
check "offline: the edge answers (2 requests)" 2 "$(grep -c '"route":"engine"' "$TMP/offline2.jsonl")"
check "offline: no failover on the way" 2 "$(grep -c '"failover":null' "$TMP/offline2.jsonl")"

# ---- link up: online by itself, the cloud answers again -------------------
N_UP=$(wc -l <"$TMP/load.jsonl")
ip link set "$VA" up
if wait_state online "$ONLINE_BOUND"; then
    check_le "online again by itself within the bound" "$WAITED" "$ONLINE_BOUND"
else
    bad "online not reached within $((4 * ONLINE_BOUND)) ms (state $(state))"
fi
check "tidegate_mode gauge online again" 0 "$(metric tidegate_mode)"
ONLINE_CHANGES=$(metric 'tidegate_mode_changes_total{to="online"}')
[ "${ONLINE_CHANGES:-0}" -ge 1 ] && ok "mode change to online counted ($ONLINE_CHANGES)" || bad "mode change to online not counted"
back=0
for _ in $(seq 1 200); do
    if tail -n +$((N_UP + 1)) "$TMP/load.jsonl" | grep -q '"route":"cloud:main"'; then back=1; break; fi
    sleep 0.05
done
check "the cloud answers again after the link is back" 1 "$back"
touch "$TMP/stop"
wait "$LOAD_PID"
echo "link down to offline: see above; total requests $(wc -l <"$TMP/load.jsonl")"

# ---- no request failed -----------------------------------------------------
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const badOnes = lines.filter((r) => r.status !== 200 || r.done !== 1 || r.error || r.exception || !r.text);
const by = {};
for (const r of lines) by[r.route] = (by[r.route] || 0) + 1;
const mid = lines.filter((r) => r.tidegate && r.tidegate.failover).length;
const before = lines.filter((r) => r.failover).length;
console.log(`requests ${lines.length}; by route ${JSON.stringify(by)}; failed over before the first token ${before}, mid-stream ${mid}; failed ${badOnes.length}`);
for (const r of badOnes.slice(0, 5)) console.log("failed: " + JSON.stringify(r));
' "$TMP/load.jsonl" | tee "$TMP/summary.txt"
grep -q "failed 0$" "$TMP/summary.txt" && ok "no request failed while the link went down and up" || bad "some requests failed"
N_ALL=$(wc -l <"$TMP/load.jsonl")
[ "$N_ALL" -ge 10 ] && ok "the load ran ($N_ALL requests)" || bad "too few requests ($N_ALL)"
echo "requests the cloud received: $(n_cloud_requests)"
stop_server
check "server exit 0" 0 "$RC"
for f in "$TMP"/*.log; do
    if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$f"; then bad "sanitizer report in $f"; fi
done
finish
