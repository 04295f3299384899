#!/usr/bin/env bash
# Cloud upstreams and failover against the mock cloud over TLS (a CA made
# for this run): answers streamed and not, with the request going up intact
# (model replaced, key header, extra headers); each fault with the measured
# time from fault to the first fallback token; mid-stream cut continued on
# the edge with one [DONE]; the unsafe case (half tool call) and the
# `midstream: error` rule ending with an error event; a wrong CA as an
# upstream failure; client disconnect cancelling the upstream; breakers
# opening and closing; /admin/mode; the API key never in the logs.
#
# Timing checks are budget + margin, the margin taken from the engine's own
# time to first token measured in this run (the fallback token comes from
# the engine): margin = 4 x edge TTFT + 50 ms. About 25 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/mock_cloud/mock_cloud.sh"
NODE_DIR=$(cd "$(dirname "$0")/node" && pwd)
KEY="sk-test-$RANDOM$RANDOM-secret"
REPLY="The tide turns twice a day near the harbour."

start_mock_cloud "$TMP/mock" || exit 1
SERVER_PIDS+=("$MOCK_PID")

cat >"$TMP/a.yaml" <<YAML
routing:
  # Neither breakers nor the automatic offline mode may interfere here:
  # each fault must reach the failover path (both are tested below).
  breaker: {failures: 1000, failure_rate_pct: 100, window: 64, min_requests: 64}
  offline_after: 1000
cloud:
  - name: main
    base_url: "$MOCK_URL"
    model: mock-gpt
    api_key_env: TG_TEST_CLOUD_KEY
    ca_file: "$MOCK_CA"
    headers: {x-extra: tide-1}
    # 1 s: on a loaded machine the mock's own first chunk must not miss it.
    first_byte_timeout_ms: 1000
    idle_timeout_ms: 1000
  - name: strict
    base_url: "$MOCK_URL"
    model: mock-strict
    ca_file: "$MOCK_CA"
    midstream: error
  - name: wrongca
    base_url: "$MOCK_URL"
    model: mock-wrongca
    ca_file: "$MOCK_DIR/wrong-ca.pem"
YAML
TG_TEST_CLOUD_KEY=$KEY start_server cloud -- -c "$TMP/a.yaml"

sse() { # sse NAME BODY [args]: runs sse_client, result in $TMP/NAME.json
    node "$NODE_DIR/sse_client.mjs" "$BASE/v1/chat/completions" "$2" "${@:3}" >"$TMP/$1.json"
}
j() { jget "$TMP/$1.json" "$2"; }
msg='"messages":[{"role":"user","content":"Tell me about tides"}]'
num_le() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a+0 <= b+0)}'; }
check_le() { # check_le DESC VALUE LIMIT
    if [ "$2" != null ] && num_le "$2" "$3"; then ok "$1 ($2 <= $3)"; else bad "$1: $2 > $3"; fi
}
check_ge() {
    if [ "$2" != null ] && num_le "$3" "$2"; then ok "$1 ($2 >= $3)"; else bad "$1: $2 < $3"; fi
}
# Admin calls go to the admin listener when there is one.
adm() { if [ -n "${ADMIN_PORT:-}" ]; then areq "$@"; else req "$@"; fi; }
hdr_ms() { sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$1"; }

# ---- the edge's own time to first token: the margin of every budget -------
sse edge "{\"model\":\"tidegate/edge\",\"stream\":true,\"max_tokens\":4,$msg}"
sse edge "{\"model\":\"tidegate/edge\",\"stream\":true,\"max_tokens\":4,$msg}"
EDGE_TTFT=$(j edge first_token_ms)
MARGIN=$(awk -v t="$EDGE_TTFT" 'BEGIN{printf "%d", 4*t+50}')
echo "edge TTFT ${EDGE_TTFT} ms; margin ${MARGIN} ms"

# ---- a cloud answer, not streamed: the request goes up intact -------------
req plain POST /v1/chat/completions -H 'content-type: application/json' \
    -d "{\"model\":\"tidegate/cloud\",\"temperature\":0.25,\"top_p\":0.9,\"user\":\"u-7\",\"max_tokens\":50,$msg}"
check "plain: 200" 200 "$STATUS"
check "plain: content" "$REPLY" "$(jget "$BODY" choices.0.message.content)"
check "plain: model is the upstream's" mock-gpt "$(jget "$BODY" model)"
check "plain: usage relayed" 9 "$(jget "$BODY" usage.completion_tokens)"
check "plain: route header" "cloud:main" "$(header x-tidegate-route "$HDR")"
check "plain: no failover header" "" "$(header x-tidegate-failover "$HDR")"
mock_admin GET /requests >"$TMP/rec.json"
check "upstream got model replaced" mock-gpt "$(jget "$TMP/rec.json" 0.body.model)"
check "upstream got temperature intact" 0.25 "$(jget "$TMP/rec.json" 0.body.temperature)"
check "upstream got user intact" u-7 "$(jget "$TMP/rec.json" 0.body.user)"
check "upstream got the key" "Bearer $KEY" "$(jget "$TMP/rec.json" 0.headers.authorization)"
check "upstream got the extra header" tide-1 "$(jget "$TMP/rec.json" 0.headers.x-extra)"

# ---- streamed --------------------------------------------------------------
sse stream "{\"model\":\"mock-gpt\",\"stream\":true,\"stream_options\":{\"include_usage\":true},$msg}"
check "stream: text" "$REPLY" "$(j stream text)"
check "stream: one [DONE]" 1 "$(j stream done)"
check "stream: usage" 9 "$(j stream usage.completion_tokens)"
check "stream: route" "cloud:main" "$(j stream headers.x-tidegate-route)"
check "stream: finish_reason" stop "$(j stream finish_reason)"
mock_admin GET /requests >"$TMP/rec.json"
check "stream: upstream asked for usage" true "$(jget "$TMP/rec.json" 1.body.stream_options.include_usage)"
sse nousage "{\"model\":\"mock-gpt\",\"stream\":true,$msg}"
check "stream: usage only when asked" null "$(j nousage usage)"

# ---- faults before the first token: the edge answers ----------------------
fault_before() { # fault_before NAME SPEC CAUSE BUDGET_MS
    mock_fault "$2" 1
    sse "$1" "{\"model\":\"mock-gpt\",\"stream\":true,\"max_tokens\":6,$msg}"
    local fo
    fo=$(j "$1" headers.x-tidegate-failover)
    check "$1: status 200" 200 "$(j "$1" status)"
    check "$1: route engine" engine "$(j "$1" headers.x-tidegate-route)"
    if [[ $fo == "cloud:main->engine; cause=$3; ms="* ]]; then ok "$1: failover header ($fo)"; else bad "$1: failover header '$fo'"; fi
    check "$1: one [DONE]" 1 "$(j "$1" done)"
    check_le "$1: fault to first fallback token (header)" "$(hdr_ms "$fo")" $(($4 + MARGIN))
    check_le "$1: client time to first token" "$(j "$1" first_token_ms)" $(($4 + MARGIN))
}
fault_before refused refuse refused 100
mock_fault none
fault_before 5xx "status=503" 5xx 100
fault_before 429 "status=429;retry_after=7" 429 100
fault_before reset_before "reset_before" reset 100
# A stall: the first-byte budget (1000 ms) decides, then the edge.
fault_before stall "delay_first_ms=3000" first_byte_timeout 1000
check_ge "stall: waited the first-byte budget" "$(j stall first_token_ms)" 1000
# Wrong certificate: a TLS failure of that attempt.
fault_before wrongcert wrong_cert tls 100
mock_fault none
# A wrong CA in our config is the same failure, seen from our side.
sse wrongca "{\"model\":\"mock-wrongca\",\"stream\":true,\"max_tokens\":4,$msg}"
check "wrong CA: route engine" engine "$(j wrongca headers.x-tidegate-route)"
[[ $(j wrongca headers.x-tidegate-failover) == "cloud:wrongca->engine; cause=tls;"* ]] &&
    ok "wrong CA: cause=tls" || bad "wrong CA: $(j wrongca headers.x-tidegate-failover)"

# ---- faults after the first token: continued on the edge ------------------
fault_mid() { # fault_mid NAME SPEC CAUSE
    mock_fault "$2" 1
    sse "$1" "{\"model\":\"mock-gpt\",\"stream\":true,\"max_tokens\":12,$msg}"
    check "$1: route is who began" "cloud:main" "$(j "$1" headers.x-tidegate-route)"
    check "$1: exactly one [DONE]" 1 "$(j "$1" done)"
    check "$1: nothing after [DONE]" 0 "$(j "$1" n_after_done)"
    check "$1: no error event" null "$(j "$1" error)"
    check "$1: tidegate.failover.cause" "$3" "$(j "$1" tidegate.failover.cause)"
    check "$1: tidegate.failover.to" engine "$(j "$1" tidegate.failover.to)"
    local t
    t=$(j "$1" text)
    [[ $t == "The "* && ${#t} -gt 9 ]] && ok "$1: cloud text then edge text" || bad "$1: text '$t'"
}
fault_mid reset "reset_after=2" reset
check_le "reset: fault to first continued token (final chunk ms)" "$(j reset tidegate.failover.ms)" $((100 + MARGIN))
fault_mid malformed "malformed=2" malformed
fault_mid idle "delay_chunk_ms=2000" idle_timeout
check_le "idle: the gap was the idle budget + margin" "$(j idle max_gap_ms)" $((1000 + MARGIN))
# (The client sees the gap from when the last cloud token reached it, which
# can be a little after the gateway got it: 50 ms of slack.)
check_ge "idle: the gap was at least the idle budget" "$(j idle max_gap_ms)" 950

# ---- unsafe or configured: an explicit error event, no [DONE] -------------
mock_fault "tool;reset_after=1" 1
sse unsafe "{\"model\":\"mock-gpt\",\"stream\":true,$msg}"
check "unsafe: error event" upstream_failed "$(j unsafe error.code)"
check "unsafe: no [DONE]" 0 "$(j unsafe done)"
check "unsafe: the tool call had begun" "[tool]" "$(j unsafe text)"
mock_fault "reset_after=2" 1
sse strict "{\"model\":\"mock-strict\",\"stream\":true,$msg}"
check "midstream error rule: error event" upstream_failed "$(j strict error.code)"
check "midstream error rule: no [DONE]" 0 "$(j strict done)"

# ---- a client that leaves cancels the upstream request --------------------
mock_admin POST /reset >/dev/null
mock_fault "delay_chunk_ms=300" 1
sse leave "{\"model\":\"mock-gpt\",\"stream\":true,$msg}" --abort-after 1
closed=false
for _ in $(seq 1 100); do
    closed=$(mock_admin GET /requests | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(r.length?String(r[r.length-1].client_closed):"none")})')
    [ "$closed" = true ] && break
    sleep 0.05
done
check "client disconnect cancels the upstream" true "$closed"

# ---- /admin/mode: forced offline keeps requests off the network -----------
mock_admin POST /reset >/dev/null
adm mode POST /admin/mode -d '{"mode":"offline"}'
check "admin/mode offline: 200" 200 "$STATUS"
check "admin/mode: state" offline "$(jget "$BODY" state)"
sse offline "{\"model\":\"mock-gpt\",\"stream\":true,\"max_tokens\":4,$msg}"
check "offline: the edge answers" engine "$(j offline headers.x-tidegate-route)"
check "offline: nothing reached the cloud" 0 "$(mock_admin GET /requests | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).length))')"
adm mode2 POST /admin/mode -d '{"mode":"sideways"}'
check "admin/mode bad value: 400" 400 "$STATUS"
adm mode3 POST /admin/mode -d '{"mode":"auto"}'
check "admin/mode back to auto" auto "$(jget "$BODY" mode)"
req models GET /v1/models
grep -q '"mock-gpt"' "$BODY" && ok "/v1/models lists the cloud model" || bad "/v1/models: $(cat "$BODY")"
adm metrics GET /metrics
grep -q '^tidegate_failovers_total{cause="refused",phase="before_first_token"} 1' "$BODY" &&
    ok "metrics: failovers by cause" || bad "metrics: failovers by cause missing"
grep -q '^tidegate_route_decisions_total{route="cloud:main"}' "$BODY" && ok "metrics: decisions by route" || bad "metrics: decisions"
grep -q '^tidegate_failover_seconds_count{phase="midstream"}' "$BODY" && ok "metrics: failover-time histogram" || bad "metrics: failover histogram"
stop_server
check "server exit 0" 0 "$RC"

# ---- breakers: open after failures, skipped at once, closed by a trial -----
# Two gateways: a long cooldown (30 s) so "still open" does not depend on
# this machine's speed, and a short one (300 ms) for the trial that closes it.
breaker_server() { # breaker_server NAME COOLDOWN_MS
    cat >"$TMP/$1.yaml" <<YAML
routing:
  breaker: {failures: 2, cooldown_ms: $2}
cloud:
  - {name: main, base_url: "$MOCK_URL", model: mock-gpt, ca_file: "$MOCK_CA"}
YAML
    start_server "$1" -- -c "$TMP/$1.yaml"
}
n_requests() {
    mock_admin GET /requests | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).length))'
}
breaker_server breaker 30000
mock_admin POST /reset >/dev/null
mock_fault "status=500"
for i in 1 2; do sse "b$i" "{\"model\":\"mock-gpt\",\"stream\":true,\"max_tokens\":3,$msg}"; done
adm st GET /admin/state
check "breaker: open after 2 failures" open "$(jget "$BODY" upstreams.0.breaker)"
n_before=$(n_requests)
sse b3 "{\"model\":\"mock-gpt\",\"stream\":true,\"max_tokens\":3,$msg}"
[[ $(j b3 headers.x-tidegate-failover) == "cloud:main->engine; cause=breaker_open;"* ]] &&
    ok "breaker: open breaker skipped ($(j b3 headers.x-tidegate-failover))" || bad "breaker: $(j b3 headers.x-tidegate-failover)"
check "breaker: open costs the upstream nothing" "$n_before" "$(n_requests)"
check "breaker: an open breaker costs no time (header ms)" 1 "$(awk -v m="$(hdr_ms "$(j b3 headers.x-tidegate-failover)")" -v e="$MARGIN" 'BEGIN{print (m <= e) ? 1 : 0}')"
adm metrics2 GET /metrics
grep -q '^tidegate_breaker_transitions_total{target="cloud:main",to="open"} 1' "$BODY" &&
    ok "metrics: breaker transitions" || bad "metrics: breaker transitions"
stop_server

breaker_server breaker2 300
mock_fault "status=500"
for i in 1 2; do sse "c$i" "{\"model\":\"mock-gpt\",\"stream\":true,\"max_tokens\":3,$msg}"; done
adm st3 GET /admin/state
check "breaker 2: open" open "$(jget "$BODY" upstreams.0.breaker)"
mock_fault none
sleep 0.4 # the breaker's cooldown (300 ms) is what is tested here
sse c3 "{\"model\":\"mock-gpt\",\"stream\":true,$msg}"
check "breaker 2: the trial goes to the cloud" "cloud:main" "$(j c3 headers.x-tidegate-route)"
adm st4 GET /admin/state
check "breaker 2: closed after a good trial" closed "$(jget "$BODY" upstreams.0.breaker)"
stop_server

# ---- the key never in a log ------------------------------------------------
if grep -q -- "$KEY" "$TMP"/*.log; then bad "the API key appears in a log"; else ok "the API key is in no log"; fi
for f in "$TMP"/*.log; do
    if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$f"; then bad "sanitizer report in $f"; fi
done
finish
