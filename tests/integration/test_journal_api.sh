#!/usr/bin/env bash
# The journal as clients see it (#9): GET /v1/requests/{id} (non-streamed and
# streamed results, 404 for unknown ids and for another API key's ids),
# Idempotency-Key (same result on retry, attach to a running request, 422 for
# another body, keys scoped per API key), a gateway killed with SIGKILL in
# the middle of a request (after the restart the id answers by GET and the
# retry with the key gets the same result), and a full disk (503
# journal_unavailable before anything runs; fine again once space is back);
# a 429 refusal releases its Idempotency-Key (the retry runs, also after a
# restart the key belongs to the answered request).
# About 20-40 s.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

K1=sk-alpha-1
K2=sk-beta-2
H1=$(printf '%s' $K1 | sha256sum | cut -d' ' -f1)
H2=$(printf '%s' $K2 | sha256sum | cut -d' ' -f1)
J=$TMP/j
start_server api TIDEGATE_LOG=debug TIDEGATE_API_KEY_SHA256="$H1,$H2" -- --journal-dir "$J"
A1=(-H "Authorization: Bearer $K1" -H 'content-type: application/json')
A2=(-H "Authorization: Bearer $K2" -H 'content-type: application/json')
# plans_so_far / next_plan N: the request ids the gateway planned (debug
# log); next_plan waits until there are more than N and prints the newest.
plans_so_far() { grep -c 'chat_plan request_id=' "$LOG"; }
next_plan() {
    for _ in $(seq 1 400); do
        [ "$(plans_so_far)" -gt "$1" ] && break
        sleep 0.05
    done
    sed -n 's/.*chat_plan request_id=\([^ ]*\).*/\1/p' "$LOG" | tail -1
}
# wait_status ID STATUS: polls GET until the request is in STATUS (bounded).
wait_status() {
    local st=""
    for _ in $(seq 1 400); do
        st=$(curl -s "${A1[@]}" "$BASE/v1/requests/$1" | jget /dev/stdin status)
        [ "$st" = "$2" ] && break
        sleep 0.05
    done
    echo "$st"
}
# longbody CONTENT MAX_TOKENS: end-of-text tokens banned (logit_bias), so it
# runs for all MAX_TOKENS whatever the model says.
longbody() {
    printf '{"messages":[{"role":"user","content":"%s"}],"max_tokens":%s,"seed":7,"logit_bias":{"2":-100,"7":-100}}' "$1" "$2"
}
body() { # body CONTENT MAX_TOKENS [STREAM]
    local s=""
    [ "${3:-}" = stream ] && s=',"stream":true,"stream_options":{"include_usage":true}'
    printf '{"messages":[{"role":"user","content":"%s"}],"max_tokens":%s,"seed":7%s}' "$1" "$2" "$s"
}

# ---- GET after a non-streamed call: the very body the client got
req c1 POST /v1/chat/completions "${A1[@]}" -d "$(body one 6)"
check "chat 200" 200 "$STATUS"
ID1=$(header x-tidegate-request-id "$HDR")
check "x-tidegate-request-id is the x-request-id" "$(header x-request-id "$HDR")" "$ID1"
cp "$BODY" "$TMP/c1.answer"
req g1 GET "/v1/requests/$ID1" "${A1[@]}"
check "GET 200" 200 "$STATUS"
check "GET object" tidegate.request "$(jget "$BODY" object)"
check "GET id" "$ID1" "$(jget "$BODY" id)"
check "GET status" completed "$(jget "$BODY" status)"
check "GET route" engine "$(jget "$BODY" route)"
check "GET failovers" "[]" "$(jget "$BODY" failovers)"
check "GET error" null "$(jget "$BODY" error)"
check "GET result = the answer" "$(jget "$TMP/c1.answer" '')" "$(jget "$BODY" result)"
created=$(jget "$BODY" created)
now=$(date +%s)
if [ "$created" -le "$now" ] && [ "$created" -gt $((now - 300)) ]; then ok "GET created is recent"; else bad "GET created $created"; fi

# ---- scope: another key's id is unknown; so is a made-up one
req g2 GET "/v1/requests/$ID1" "${A2[@]}"
expect_error "GET with another API key" 404 request_not_found
req g3 GET /v1/requests/req_00000000000000000000000000000000 "${A1[@]}"
expect_error "GET unknown id" 404 request_not_found
req g4 GET "/v1/requests/$ID1" -H 'Authorization: Bearer wrong'
check "GET with a wrong key: 401" 401 "$STATUS"

# ---- a streamed call stores the full result (text, usage)
curl -sN -D "$TMP/s1.hdr" "${A1[@]}" -d "$(body two 8 stream)" "$BASE/v1/chat/completions" >"$TMP/s1.sse"
SID=$(header x-tidegate-request-id "$TMP/s1.hdr")
grep -q '^data: \[DONE\]' "$TMP/s1.sse" && ok "stream ended with [DONE]" || bad "stream without [DONE]"
streamed=$(node -e '
const t = require("fs").readFileSync(process.argv[1], "utf8");
let s = ""; for (const l of t.split("\n")) { if (!l.startsWith("data: {")) continue;
const j = JSON.parse(l.slice(6)); for (const c of j.choices) if (c.delta.content) s += c.delta.content; }
process.stdout.write(JSON.stringify(s));' "$TMP/s1.sse")
req gs GET "/v1/requests/$SID" "${A1[@]}"
check "streamed: GET status" completed "$(jget "$BODY" status)"
check "streamed: result object" chat.completion "$(jget "$BODY" result.object)"
check "streamed: result text = the streamed text" "$streamed" \
    "$(node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1]));process.stdout.write(JSON.stringify(j.result.choices[0].message.content))' "$BODY")"
check "streamed: result usage" 8 "$(jget "$BODY" result.usage.completion_tokens)"
check "streamed: finish_reason" length "$(jget "$BODY" result.choices.0.finish_reason)"

# ---- Idempotency-Key
req i1 POST /v1/chat/completions "${A1[@]}" -H 'Idempotency-Key: order-1' -d "$(body three 6)"
check "idem first: 200" 200 "$STATUS"
IID=$(header x-tidegate-request-id "$HDR")
cp "$BODY" "$TMP/i1.answer"
req i2 POST /v1/chat/completions "${A1[@]}" -H 'Idempotency-Key: order-1' -d "$(body three 6)"
check "idem retry: 200" 200 "$STATUS"
check "idem retry: same request id" "$IID" "$(header x-tidegate-request-id "$HDR")"
check "idem retry: replayed" true "$(header idempotent-replayed "$HDR")"
cmp -s "$TMP/i1.answer" "$BODY" && ok "idem retry: byte-identical result" || bad "idem retry: another result"
req i3 POST /v1/chat/completions "${A1[@]}" -H 'Idempotency-Key: order-1' -d "$(body other 6)"
expect_error "idem key with another body" 422 idempotency_key_reused
req i4 POST /v1/chat/completions "${A2[@]}" -H 'Idempotency-Key: order-1' -d "$(body three 6)"
check "idem key of another API key: runs anew" 200 "$STATUS"
[ "$(header x-tidegate-request-id "$HDR")" != "$IID" ] && ok "another API key: another request" || bad "keys not scoped"
req i5 POST /v1/chat/completions "${A1[@]}" -H 'Idempotency-Key: bad key' -d "$(body three 6)"
expect_error "idem key with a space" 400 invalid_idempotency_key
# A streamed retry gets the stored result streamed again.
curl -sN "${A1[@]}" -H 'Idempotency-Key: st-1' -d "$(body four 6 stream)" "$BASE/v1/chat/completions" >"$TMP/st1.sse"
curl -sN "${A1[@]}" -H 'Idempotency-Key: st-1' -d "$(body four 6 stream)" "$BASE/v1/chat/completions" >"$TMP/st2.sse"
text_of() { node -e '
const t = require("fs").readFileSync(process.argv[1], "utf8");
let s = "", u = null, d = 0; for (const l of t.split("\n")) { if (l === "data: [DONE]") d++; if (!l.startsWith("data: {")) continue;
const j = JSON.parse(l.slice(6)); if (j.usage) u = j.usage.completion_tokens; for (const c of j.choices) if (c.delta.content) s += c.delta.content; }
process.stdout.write(JSON.stringify([s, u, d]));' "$1"; }
check "streamed retry: same text, usage, one [DONE]" "$(text_of "$TMP/st1.sse")" "$(text_of "$TMP/st2.sse")"

# Attach: a retry while the first is still running waits for the same result.
n=$(plans_so_far)
curl -s "${A1[@]}" -H 'Idempotency-Key: long-1' -d "$(longbody five 1500)" "$BASE/v1/chat/completions" >"$TMP/l1.out" &
P1=$!
LID=$(next_plan "$n")
# (Normally still running when the retry comes; a model that ends early
# makes it a replay instead: the checks below hold either way.)
st=$(wait_status "$LID" running)
case $st in running | completed) ok "attach: the first is $st" ;; *) bad "attach: first is '$st'" ;; esac
curl -s "${A1[@]}" -H 'Idempotency-Key: long-1' -d "$(longbody five 1500)" "$BASE/v1/chat/completions" >"$TMP/l2.out"
wait $P1
check "attached retry: same result" "$(cat "$TMP/l1.out")" "$(cat "$TMP/l2.out")"
check "attached retry: a completion" chat.completion "$(jget "$TMP/l2.out" object)"
n_runs=$(grep -c 'http_access .*route=engine.*status=200' "$LOG")
# c1, the stream, order-1 (key 1), order-1 (key 2), st-1, long-1: the
# retries ran nothing.
check "the engine ran once per request and key" 6 "$n_runs"

# ---- SIGKILL in the middle of a request, restart, GET, retry with the key
n=$(plans_so_far)
curl -s "${A1[@]}" -H 'Idempotency-Key: crash-1' -d "$(longbody six 3000)" "$BASE/v1/chat/completions" >/dev/null 2>&1 &
CP=$!
CID=$(next_plan "$n")
check "crash: the request runs" running "$(wait_status "$CID" running)"
kill -KILL "$PID"
wait "$PID" 2>/dev/null
wait $CP 2>/dev/null
start_server api2 TIDEGATE_API_KEY_SHA256="$H1,$H2" -- --journal-dir "$J"
grep -q 'journal_open .*unfinished=1' "$LOG" && ok "restart: one unfinished request found" || bad "restart: $(grep journal_open "$LOG")"
st=""
for _ in $(seq 1 600); do # until it reaches a terminal state
    req cg GET "/v1/requests/$CID" "${A1[@]}"
    st=$(jget "$BODY" status)
    case $st in completed | failed | cancelled) break ;; esac
    sleep 0.05
done
check "crash: re-run after the restart, completed" completed "$st"
grep -q "journal_rerun request_id=$CID attempt=1" "$LOG" && ok "crash: re-dispatched once" || bad "crash: no re-run logged"
cp "$BODY" "$TMP/crash.view"
req cr POST /v1/chat/completions "${A1[@]}" -H 'Idempotency-Key: crash-1' -d "$(longbody six 3000)"
check "crash: retry with the key answers the same id" "$CID" "$(header x-tidegate-request-id "$HDR")"
if [ "$st" = completed ]; then
    check "crash: retry = GET result" "$(jget "$TMP/crash.view" result)" "$(jget "$BODY" '')"
else
    check "crash: retry = GET error" "$(jget "$TMP/crash.view" error)" "$(jget "$BODY" error)"
fi
req old GET "/v1/requests/$ID1" "${A1[@]}"
check "restart: earlier results still served" completed "$(jget "$BODY" status)"
stop_server
check "clean stop" 0 "$RC"
"$TIDEGATE_BIN" journal check --strict "$J" >"$TMP/check.out" 2>&1 && ok "journal check --strict" ||
    bad "journal check: $(cat "$TMP/check.out")"

# ---- a 429 refusal does not hold its Idempotency-Key: the retry runs
# (a tiny engine queue: one running, one waiting, the rest refused at once)
cat >"$TMP/q.yaml" <<'YAML'
engine:
  max_active: 1
  queue_capacity: 1
YAML
JQ=$TMP/jq
start_server q -- -c "$TMP/q.yaml" --journal-dir "$JQ"
pids=()
for i in 1 2 3 4 5 6 7 8; do
    curl -s -o "$TMP/r$i.body" -D "$TMP/r$i.hdr" -w '%{http_code}' --max-time 60 "$BASE/v1/chat/completions" \
        -H 'content-type: application/json' -H "Idempotency-Key: refuse-$i" \
        -d "$(longbody "r$i" 600)" >"$TMP/r$i.code" &
    pids+=($!)
done
wait "${pids[@]}"
RK=""
for i in 1 2 3 4 5 6 7 8; do [ "$(cat "$TMP/r$i.code")" = 429 ] && RK=$i && break; done
if [ -z "$RK" ]; then
    bad "429: no request refused with a full queue"
else
    RID=$(header x-request-id "$TMP/r$RK.hdr")
    # Retried as a client would, while the queue drains (the engine breaker
    # may answer 503 for its cooldown): each refusal releases the key again.
    for _ in $(seq 1 60); do
        req rr POST /v1/chat/completions -H 'content-type: application/json' -H "Idempotency-Key: refuse-$RK" \
            -d "$(longbody "r$RK" 600)"
        case $STATUS in 429 | 503) sleep 0.5 ;; *) break ;; esac
    done
    check "429 then retry with the key: it runs (200)" 200 "$STATUS"
    NID=$(header x-tidegate-request-id "$HDR")
    [ -n "$NID" ] && [ "$NID" != "$RID" ] && ok "429 retry: a new request id" || bad "429 retry: id '$NID' (refused '$RID')"
    cp "$BODY" "$TMP/rr.answer"
    req rg GET "/v1/requests/$RID"
    check "the refused id is journaled as failed" failed "$(jget "$BODY" status)"
    stop_server
    # After a restart the key still belongs to the answered request.
    start_server q2 -- -c "$TMP/q.yaml" --journal-dir "$JQ"
    req rr2 POST /v1/chat/completions -H 'content-type: application/json' -H "Idempotency-Key: refuse-$RK" \
        -d "$(longbody "r$RK" 600)"
    check "after a restart the key replays the answer, not the 429" 200 "$STATUS"
    check "after a restart: the answered id" "$NID" "$(header x-tidegate-request-id "$HDR")"
    check "after a restart: the same body" "$(cat "$TMP/rr.answer")" "$(cat "$BODY")"
fi
stop_server

# ---- FAILOVER records: a refused upstream, then a mid-stream reset
. "$(dirname "$0")/../support/mock_cloud/mock_cloud.sh"
start_mock_cloud "$TMP/mock" || exit 1
SERVER_PIDS+=("$MOCK_PID")
cat >"$TMP/cloud.yaml" <<YAML
routing:
  breaker: {failures: 1000, failure_rate_pct: 100, window: 64, min_requests: 64}
  offline_after: 1000
cloud:
  - name: main
    base_url: "$MOCK_URL"
    model: mock-gpt
    ca_file: "$MOCK_CA"
    first_byte_timeout_ms: 400
    idle_timeout_ms: 400
YAML
start_server fo -- -c "$TMP/cloud.yaml" --journal-dir "$TMP/jfo"
mock_fault refuse 1
req fo1 POST /v1/chat/completions -H 'content-type: application/json' \
    -d '{"model":"mock-gpt","max_tokens":4,"messages":[{"role":"user","content":"x"}]}'
check "failover: answered" 200 "$STATUS"
FID=$(header x-tidegate-request-id "$HDR")
req fo2 GET "/v1/requests/$FID"
check "failover: GET route" engine "$(jget "$BODY" route)"
check "failover: one record" 1 "$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).failovers.length)' "$BODY")"
check "failover: from" cloud:main "$(jget "$BODY" failovers.0.from)"
check "failover: to" engine "$(jget "$BODY" failovers.0.to)"
check "failover: reason" refused "$(jget "$BODY" failovers.0.reason)"
# (jq's // would turn false into null: read it with node.)
fo_mid() { node -e 'console.log(String(JSON.parse(require("fs").readFileSync(process.argv[1])).failovers[0].midstream))' "$1"; }
check "failover: before the first token" false "$(fo_mid "$BODY")"
mock_fault "reset_after=2" 1
curl -sN -D "$TMP/fo3.hdr" -H 'content-type: application/json' \
    -d '{"model":"mock-gpt","stream":true,"max_tokens":12,"messages":[{"role":"user","content":"x"}]}' \
    "$BASE/v1/chat/completions" >"$TMP/fo3.sse"
MID=$(header x-tidegate-request-id "$TMP/fo3.hdr")
req fo4 GET "/v1/requests/$MID"
check "mid-stream failover: completed" completed "$(jget "$BODY" status)"
check "mid-stream failover: from" cloud:main "$(jget "$BODY" failovers.0.from)"
check "mid-stream failover: to" engine "$(jget "$BODY" failovers.0.to)"
check "mid-stream failover: midstream" true "$(fo_mid "$BODY")"
mock_fault none
stop_server

# ---- a full disk: 503 before anything is promised, fine once space is back
if unshare -m true 2>/dev/null; then
    FULL=$TMP/full
    mkdir -p "$FULL"
    # The gateway runs in its own mount namespace with a 2 MiB tmpfs.
    cat >"$TMP/ns.sh" <<WRAP
#!/bin/sh
exec unshare -m sh -c 'mount -t tmpfs -o size=2m tmpfs "$FULL" && exec "\$0" "\$@"' "$TIDEGATE_BIN" "\$@"
WRAP
    chmod +x "$TMP/ns.sh"
    REAL_BIN=$TIDEGATE_BIN
    TIDEGATE_BIN=$TMP/ns.sh
    start_server full -- --journal-dir "$FULL/j"
    TIDEGATE_BIN=$REAL_BIN
    req f0 POST /v1/chat/completions -H 'content-type: application/json' -d "$(body ok 2)"
    check "disk: a request while there is space" 200 "$STATUS"
    nsenter -t "$PID" -m dd if=/dev/zero of="$FULL/fill" bs=4k >/dev/null 2>&1
    before=$(grep -c 'http_access .*route=engine' "$LOG")
    # 600 KB of body: its ACCEPTED record needs pages the full tmpfs lacks
    # (more than the zeros the journal writes ahead of itself: 256 KiB past
    # a fresh segment's records, tg_jzero.c).
    body "$(head -c 600000 /dev/zero | tr '\0' x)" 2 >"$TMP/big.json"
    req f1 POST /v1/chat/completions -H 'content-type: application/json' --data-binary @"$TMP/big.json"
    expect_error "disk full" 503 journal_unavailable
    check "disk full: nothing ran" "$before" "$(grep -c 'http_access .*route=engine' "$LOG")"
    nsenter -t "$PID" -m rm -f "$FULL/fill"
    req f2 POST /v1/chat/completions -H 'content-type: application/json' -d "$(body again 2)"
    check "disk: space back, 200 again" 200 "$STATUS"
    stop_server
else
    echo "skip disk-full check: no mount namespaces here"
fi

finish
