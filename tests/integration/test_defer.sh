#!/usr/bin/env bash
# Deferred cloud-only requests (#9, "mode switches"): a policy rule with
# `defer:` marks requests hinted `x-tidegate-hint: cloud` cloud-only. While
# the gateway is forced offline such a request is journaled DEFERRED: a
# non-streamed call gets 202 + Location, a streamed one keeps its stream open
# with `: keep-alive` comments; when the mode goes back to auto both run on
# the mock cloud (GET: deferred -> completed, the cloud's answer). A stream
# that waits past max_wait_s ends with an error event naming its id (its
# result still comes, by GET). A gateway killed (SIGKILL) while a request is
# deferred re-defers it at the next start (offline by config) and runs it
# once the mode allows. Every cloud breaker open: deferred until one is past
# its cool-down; past journal.retention_s a waiting request ends FAILED
# deferred_expired. Also: in-flight requests across mode switches and a
# policy reload (each finishes where it is or fails over with cause "mode"),
# and a client with an Idempotency-Key that leaves mid-stream (the request
# finishes; the retry gets that result). About 20 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/mock_cloud/mock_cloud.sh"
REPLY="The tide turns twice a day near the harbour."

start_mock_cloud "$TMP/mock" || exit 1
SERVER_PIDS+=("$MOCK_PID")

J=$TMP/journal
POLICY=$TMP/policy.yaml
policy() { # policy MAX_WAIT_S [edge]: hinted requests are cloud-only (deferred), or go to the edge
    local private="target: cloud
    defer: {max_wait_s: $1, keepalive_s: 0.3}"
    [ "${2:-}" = edge ] && private="target: edge"
    cat >"$POLICY.tmp" <<YAML
version: 1
description: "test: hinted cloud requests never run on the edge"
rules:
  - name: private
    when:
      all:
        - features: {explicit_hint: {eq: 1}}
    $private
  - name: retry-then-edge
    when:
      all:
        - features: {explicit_hint: {eq: -1}}
    target: cloud
    retry_budget: 1
    fallbacks: [edge]
  - name: default
    target: edge
YAML
    mv "$POLICY.tmp" "$POLICY"
}
policy 2
conf() { # conf FILE MODE
    cat >"$1" <<YAML
routing:
  mode: $2
  policy: "$POLICY"
  breaker: {failures: 1000, failure_rate_pct: 100, window: 64, min_requests: 64}
  probe_interval_ms: 200
cloud:
  - name: main
    base_url: "$MOCK_URL"
    model: mock-gpt
    ca_file: "$MOCK_CA"
YAML
}
conf "$TMP/auto.yaml" auto
conf "$TMP/offline.yaml" offline

H=(-H 'content-type: application/json' -H 'x-tidegate-hint: cloud')
body() { # body TEXT [stream]
    local s=""
    [ "${2:-}" = stream ] && s=',"stream":true'
    printf '{"model":"tidegate/auto","max_tokens":32,"messages":[{"role":"user","content":"%s"}]%s}' "$1" "$s"
}
mode() { curl -s --max-time 5 -X POST "$ADMIN_BASE/admin/mode" -d "{\"mode\":\"$1\"}" | jget /dev/stdin mode; }
status_of() { curl -s --max-time 5 "$BASE/v1/requests/$1" | jget /dev/stdin status; }
wait_status() { # wait_status ID STATUS: bounded poll
    local st=""
    for _ in $(seq 1 200); do
        st=$(status_of "$1")
        [ "$st" = "$2" ] && break
        sleep 0.05
    done
    echo "$st"
}
# stream NAME BODY [curl args]: curl -N in the background, raw SSE to $TMP/NAME.sse
stream() {
    local name=$1 b=$2
    shift 2
    curl -s -N --max-time 30 -D "$TMP/$name.hdr" -o "$TMP/$name.sse" "${H[@]}" "$@" \
        -X POST "$BASE/v1/chat/completions" -d "$b" &
    SPID=$!
}
wait_file() { # wait_file FILE PATTERN: bounded
    for _ in $(seq 1 200); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
sse_text() { # the content of a raw SSE file's chunks
    grep '^data: {' "$1" | sed 's/^data: //' | node -e '
let s="",t="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.split("\n")){if(!l)continue;const o=JSON.parse(l);const c=o.choices&&o.choices[0];if(c&&c.delta&&c.delta.content)t+=c.delta.content}console.log(t)})'
}
records() { "$TIDEGATE_BIN" journal dump "$J" --id "$1" | jget_types; }
jget_types() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(s.trim().split("\n").filter(Boolean).map(l=>JSON.parse(l).type).filter(t=>t!=="CHUNK").join(",")))'; }

start_server defer -- -c "$TMP/auto.yaml" --journal-dir "$J"
check "offline forced" offline "$(mode offline)"

# ---- non-streamed: 202 + Location, then the cloud answers once back ------
req d1 POST /v1/chat/completions "${H[@]}" -H 'Idempotency-Key: k-defer-1' -d "$(body 'Summarise the contract')"
check "deferred: 202" 202 "$STATUS"
ID1=$(header x-tidegate-request-id "$HDR")
check "Location names the request" "/v1/requests/$ID1" "$(header location "$HDR")"
check "202 body: tidegate.request" tidegate.request "$(jget "$BODY" object)"
check "202 body: status deferred" deferred "$(jget "$BODY" status)"
check "202 body: id" "$ID1" "$(jget "$BODY" id)"
check "GET: deferred" deferred "$(status_of "$ID1")"
req d1r POST /v1/chat/completions "${H[@]}" -H 'Idempotency-Key: k-defer-1' -d "$(body 'Summarise the contract')"
check "retry with its key while deferred: the same 202" "202 $ID1" "$STATUS $(jget "$BODY" id)"
# An unhinted request is not held: the edge answers it offline.
req e1 POST /v1/chat/completions -H 'content-type: application/json' -d "$(body 'hello there')"
check "unhinted offline: 200 on the edge" "200 engine" "$STATUS $(header x-tidegate-route "$HDR")"

# ---- streamed: keep-alives, then the answer on the same stream -----------
stream s1 "$(body 'Draft the letter' stream)"
S1=$SPID
wait_file "$TMP/s1.sse" "keep-alive" && ok "stream: keep-alive comments while deferred" || bad "stream: no keep-alive"
ID2=$(header x-tidegate-request-id "$TMP/s1.hdr")
check "stream: GET deferred" deferred "$(status_of "$ID2")"
check "stream: no data yet" 0 "$(grep -c '^data:' "$TMP/s1.sse")"
N_BEFORE=$(mock_admin GET /state | jget /dev/stdin requests)
check "cloud untouched while offline" 0 "$N_BEFORE"
check "mode back to auto" auto "$(mode auto)"
wait "$S1"
check "stream: the cloud's answer" "$REPLY" "$(sse_text "$TMP/s1.sse")"
check "stream: one [DONE]" 1 "$(grep -c '^data: \[DONE\]' "$TMP/s1.sse")"
check "non-streamed: completed" completed "$(wait_status "$ID1" completed)"
curl -s "$BASE/v1/requests/$ID1" >"$TMP/g1.json"
check "GET result: the cloud's answer" "$REPLY" "$(jget "$TMP/g1.json" result.choices.0.message.content)"
check "GET route" cloud:main "$(jget "$TMP/g1.json" route)"
check "stream: completed by GET" completed "$(wait_status "$ID2" completed)"
# Arrival order: the non-streamed one came first, so the cloud saw it first.
mock_admin GET /requests >"$TMP/mreq.json"
check "dispatched in arrival order" "Summarise the contract" "$(jget "$TMP/mreq.json" 0.body.messages.0.content)"

# ---- max wait: an error event naming the id, the result later ------------
check "offline again" offline "$(mode offline)"
stream s2 "$(body 'Translate the memo' stream)"
S2=$SPID
wait "$S2"
ID3=$(header x-tidegate-request-id "$TMP/s2.hdr")
EV=$(grep '^data: {' "$TMP/s2.sse" | tail -1 | sed 's/^data: //')
check "max wait: error code" deferred_timeout "$(printf '%s' "$EV" | jget /dev/stdin error.code)"
check "max wait: error names the id" "$ID3" "$(printf '%s' "$EV" | jget /dev/stdin error.request_id)"
printf '%s' "$EV" | grep -q "$ID3" && ok "max wait: message names the id" || bad "message lacks id: $EV"
check "max wait: no [DONE]" 0 "$(grep -c '^data: \[DONE\]' "$TMP/s2.sse")"
KA=$(grep -c '^: keep-alive' "$TMP/s2.sse")
[ "$KA" -ge 3 ] && ok "max wait: $KA keep-alives in 2 s" || bad "max wait: only $KA keep-alives"
check "max wait: still deferred" deferred "$(status_of "$ID3")"
check "admin state: 1 deferred" 1 "$(curl -s "$ADMIN_BASE/admin/state" | jget /dev/stdin deferred)"
check "gauge: 1 deferred" 1 "$(curl -s "$ADMIN_BASE/metrics" | awk '$1=="tidegate_deferred_requests"{print $2}')"

# ---- SIGKILL while deferred: the next start re-defers it -----------------
kill -KILL "$PID"
wait "$PID" 2>/dev/null
start_server defer2 -- -c "$TMP/offline.yaml" --journal-dir "$J"
check "after restart (offline): still deferred" deferred "$(wait_status "$ID3" deferred)"
check "after restart: the mode" offline "$(curl -s "$ADMIN_BASE/admin/state" | jget /dev/stdin mode)"
check "mode auto after restart" auto "$(mode auto)"
check "after restart: completed" completed "$(wait_status "$ID3" completed)"
curl -s "$BASE/v1/requests/$ID3" >"$TMP/g3.json"
check "after restart: the cloud's answer" "$REPLY" "$(jget "$TMP/g3.json" result.choices.0.message.content)"

# ---- a policy reload re-plans the waiting requests: the new rule sends the
# hinted request to the edge -----------------------------------------------
mode offline >/dev/null
req r1 POST /v1/chat/completions "${H[@]}" -d "$(body 'Reply to the email')"
check "deferred before the reload" 202 "$STATUS"
R1=$(header x-tidegate-request-id "$HDR")
policy 2 edge
curl -s -X POST "$ADMIN_BASE/admin/reload" >/dev/null
check "after the reload: completed" completed "$(wait_status "$R1" completed)"
check "after the reload: on the edge" engine "$(curl -s "$BASE/v1/requests/$R1" | jget /dev/stdin route)"
policy 2
curl -s -X POST "$ADMIN_BASE/admin/reload" >/dev/null
mode auto >/dev/null

# ---- mode switches and a policy reload under in-flight requests ----------
# Cloud streams paced at 150 ms a word (~1.2 s): forced offline while they
# run, they finish on the cloud (nothing new goes out). A request whose
# first cloud attempt fails (500 after 600 ms) while the mode turns offline
# skips its cloud retry (FAILOVER cause "mode") and the edge answers.
mock_fault "delay_chunk_ms=150" 3
for i in 1 2 3; do stream m$i "$(body "Report $i" stream)"; eval "M$i=\$SPID"; done
for i in 1 2 3; do wait_file "$TMP/m$i.sse" '"role"' || bad "m$i did not start"; done
mode offline >/dev/null
policy 3
curl -s -X POST "$ADMIN_BASE/admin/reload" >/dev/null
mode edge-only >/dev/null
for i in 1 2 3; do eval "wait \$M$i"; check "in flight on the cloud across switches: m$i" "$REPLY" "$(sse_text "$TMP/m$i.sse")"; done
mode auto >/dev/null
# An edge stream (end-of-text banned: it runs all 3800 tokens, about a second) while the mode
# goes cloud-only: it finishes on the engine.
curl -s -N --max-time 60 -o "$TMP/e2.sse" -D "$TMP/e2.hdr" -H 'content-type: application/json' \
    -X POST "$BASE/v1/chat/completions" \
    -d '{"model":"tidegate/edge","stream":true,"max_tokens":3800,"logit_bias":{"2":-100,"7":-100},"messages":[{"role":"user","content":"Tell a long story"}]}' &
E2=$!
wait_file "$TMP/e2.sse" '"role"' || bad "edge stream did not start"
check "cloud-only while the edge streams" cloud-only "$(mode cloud-only)"
check "the edge stream was still running" 0 "$(grep -c '^data: \[DONE\]' "$TMP/e2.sse")"
wait "$E2"
check "edge stream across cloud-only: one [DONE]" 1 "$(grep -c '^data: \[DONE\]' "$TMP/e2.sse")"
check "edge stream across cloud-only: no error" 0 "$(grep -c '"error"' "$TMP/e2.sse")"
check "edge stream across cloud-only: on the engine" engine "$(header x-tidegate-route "$TMP/e2.hdr")"
mode auto >/dev/null
mock_fault "delay_first_ms=600;status=500" 1
req f1 POST /v1/chat/completions -H 'content-type: application/json' -H 'x-tidegate-hint: edge' -d "$(body 'Check the tide table')" &
F1=$!
sleep 0.3
mode offline >/dev/null
wait "$F1"
check "mode failover: 200" 200 "$(head -1 "$TMP/f1.hdr" | awk '{print $2}')"
FID=$(header x-tidegate-request-id "$TMP/f1.hdr")
curl -s "$BASE/v1/requests/$FID" >"$TMP/gf.json"
check "mode failover: route engine" engine "$(jget "$TMP/gf.json" route)"
node -e 'const f=JSON.parse(require("fs").readFileSync(process.argv[1])).failovers;console.log(f.map(x=>x.reason).join(","))' "$TMP/gf.json" >"$TMP/reasons"
grep -q "mode" "$TMP/reasons" && ok "journal: FAILOVER with reason mode ($(cat "$TMP/reasons"))" || bad "no mode failover: $(cat "$TMP/reasons")"
mode auto >/dev/null

# ---- client gone with an Idempotency-Key: the request finishes ------------
mock_fault "delay_chunk_ms=150" 1
curl -s -N --max-time 0.6 -o "$TMP/k1.sse" -D "$TMP/k1.hdr" "${H[@]}" -H 'Idempotency-Key: k-gone-1' \
    -X POST "$BASE/v1/chat/completions" -d "$(body 'Long answer please' stream)"
KID=$(header x-tidegate-request-id "$TMP/k1.hdr")
[ -n "$KID" ] && ok "client left mid-stream ($KID)" || bad "no request id for the left stream"
check "left with a key: finishes" completed "$(wait_status "$KID" completed)"
req k2 POST /v1/chat/completions "${H[@]}" -H 'Idempotency-Key: k-gone-1' -d "$(body 'Long answer please' stream)"
check "retry with the key: 200" 200 "$STATUS"
check "retry: the same request" "$KID" "$(header x-tidegate-request-id "$HDR")"
check "retry: the same answer" "$REPLY" "$(sse_text "$BODY")"
# Without a key a client that leaves cancels its request.
mock_fault "delay_chunk_ms=150" 1
curl -s -N --max-time 0.6 -o /dev/null -D "$TMP/k3.hdr" "${H[@]}" \
    -X POST "$BASE/v1/chat/completions" -d "$(body 'Another long one' stream)"
check "left without a key: cancelled" cancelled "$(wait_status "$(header x-tidegate-request-id "$TMP/k3.hdr")" cancelled)"

stop_server
check "clean stop" 0 "$RC"
"$TIDEGATE_BIN" journal check "$J" --strict >"$TMP/check.txt" 2>&1 && ok "journal check --strict" || { bad "journal check"; cat "$TMP/check.txt"; }
records "$ID3" >"$TMP/types3"
check "journal: re-deferred at the restart" "ACCEPTED,DEFERRED,DEFERRED,DISPATCHED,COMPLETED" "$(cat "$TMP/types3")"
records "$ID1" >"$TMP/types1"
check "journal: deferred then dispatched" "ACCEPTED,DEFERRED,DISPATCHED,COMPLETED" "$(cat "$TMP/types1")"

# ---- every cloud breaker open: deferred, run once it is past its cool-down;
# the retention cap ends a request that waits too long --------------------
cat >"$TMP/brk.yaml" <<YAML
routing:
  policy: "$POLICY"
  breaker: {failures: 1, cooldown_ms: 1500}
cloud:
  - name: main
    base_url: "$MOCK_URL"
    model: mock-gpt
    ca_file: "$MOCK_CA"
YAML
J2=$TMP/journal2
start_server brk TIDEGATE_JOURNAL_RETENTION_S=3 -- -c "$TMP/brk.yaml" --journal-dir "$J2"
mock_fault "status=500" 1
req b1 POST /v1/chat/completions "${H[@]}" -d "$(body 'Sign the form')"
check "cloud attempt failed: deferred (202)" 202 "$STATUS"
B1=$(header x-tidegate-request-id "$HDR")
req b2 POST /v1/chat/completions "${H[@]}" -d "$(body 'File the form')"
check "breaker open: deferred (202)" 202 "$STATUS"
B2=$(header x-tidegate-request-id "$HDR")
check "breaker open: still deferred" deferred "$(status_of "$B2")"
check "past the cool-down: the first completes" completed "$(wait_status "$B1" completed)"
check "then the second" completed "$(wait_status "$B2" completed)"
check "offline" offline "$(mode offline)"
req b3 POST /v1/chat/completions "${H[@]}" -d "$(body 'Wait forever')"
B3=$(header x-tidegate-request-id "$HDR")
check "past the retention: failed" failed "$(wait_status "$B3" failed)"
curl -s "$BASE/v1/requests/$B3" >"$TMP/g6.json"
check "past the retention: deferred_expired" deferred_expired "$(jget "$TMP/g6.json" error.code)"
stop_server
J=$J2
check "breaker: records" "ACCEPTED,DISPATCHED,DEFERRED,DISPATCHED,COMPLETED" "$(records "$B1")"
"$TIDEGATE_BIN" journal dump "$J2" --id "$B2" | grep DEFERRED | grep -q '"cause":"breaker_open"' &&
    ok "breaker: DEFERRED says breaker_open" || bad "breaker: DEFERRED cause"
"$TIDEGATE_BIN" journal check "$J2" --strict >"$TMP/check2.txt" 2>&1 && ok "journal check --strict (2)" || { bad "journal check 2"; cat "$TMP/check2.txt"; }
finish
