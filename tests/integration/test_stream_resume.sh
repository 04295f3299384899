#!/usr/bin/env bash
# Resumable streams (#9): every event of a streamed chat completion has an
# `id:`; a client that drops the connection mid-stream and comes back with
# the same Idempotency-Key (or GET /v1/requests/{id} with Accept:
# text/event-stream) and Last-Event-ID gets the rest, nothing repeated or
# skipped, one [DONE]; the concatenation is the uninterrupted answer (greedy,
# the tiny model). Another API key's id is unknown. Then the gateway is
# SIGKILLed mid-stream, restarted on the same journal, and the client resumes:
# the rest comes from the journal and the re-run that continues the durable
# prefix; the stored result is what the client got. About 5-10 s.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
NODE_DIR=$(cd "$(dirname "$0")/node" && pwd)

K1=sk-alpha-1
K2=sk-beta-2
H1=$(printf '%s' $K1 | sha256sum | cut -d' ' -f1)
H2=$(printf '%s' $K2 | sha256sum | cut -d' ' -f1)
J=$TMP/j
start_server rs TIDEGATE_API_KEY_SHA256="$H1,$H2" -- --journal-dir "$J"

# body CONTENT MAX_TOKENS: greedy, end-of-text banned (it runs MAX_TOKENS).
body() {
    printf '{"messages":[{"role":"user","content":"%s"}],"max_tokens":%s,"temperature":0,"logit_bias":{"2":-100,"7":-100},"stream":true,"stream_options":{"include_usage":true}}' "$1" "$2"
}
rcl() { # rcl NAME URL BODY [client args]: $TMP/NAME.json
    local name=$1
    shift
    node "$NODE_DIR/resume_client.mjs" "$@" >"$TMP/$name.json"
}
# field FILE EXPR: a JS expression over the client's report `r`.
field() { node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(eval(process.argv[2]))' "$1" "$2"; }
# contiguous FILE FROM: the ids are FROM, FROM+1, ... with none missing.
contiguous() { field "$1" "r.ids.length>0 && r.ids.every((v,i)=>v===$2+i)"; }
CHAT=$BASE/v1/chat/completions

# ---- the uninterrupted answer
rcl ref "$CHAT" "$(body story 1000)" --bearer $K1
check "reference: 200" 200 "$(field "$TMP/ref.json" r.status)"
check "reference: ids 1, 2, 3, ..." true "$(contiguous "$TMP/ref.json" 1)"
check "reference: one [DONE]" 1 "$(field "$TMP/ref.json" r.done)"
check "reference: ran to max_tokens" length "$(field "$TMP/ref.json" r.finish_reason)"

# ---- dropped after 20 content events, straight back with the key and
# Last-Event-ID (the run is still going: the rest is partly replayed, partly
# live)
rcl d1 "$CHAT" "$(body story 1000)" --bearer $K1 --key drop-1 --abort-after 20 --reconnect
check "dropped: cut after 20" true "$(field "$TMP/d1.json" r.cut)"
check "dropped: ids from 1" true "$(contiguous "$TMP/d1.json" 1)"
RID=$(field "$TMP/d1.json" r.rid)
LAST=$(field "$TMP/d1.json" 'r.ids[r.ids.length-1]')
field "$TMP/d1.json" 'JSON.stringify(r.resumed)' >"$TMP/d2.json"
check "resumed: 200" 200 "$(field "$TMP/d2.json" r.status)"
check "resumed: same request id" "$RID" "$(field "$TMP/d2.json" r.rid)"
check "resumed: ids from Last-Event-ID + 1" true "$(contiguous "$TMP/d2.json" $((LAST + 1)))"
check "resumed: one [DONE], last" "1 true" "$(field "$TMP/d2.json" 'r.done+" "+(r.ids.length>0)')"
check "dropped + resumed = the uninterrupted answer" "$(field "$TMP/ref.json" 'JSON.stringify(r.text)')" \
    "$(node -e 'const f=require("fs");const a=JSON.parse(f.readFileSync(process.argv[1])),b=JSON.parse(f.readFileSync(process.argv[2]));console.log(JSON.stringify(a.text+b.text))' "$TMP/d1.json" "$TMP/d2.json")"
grep -q "stream_detached request_id=$RID" "$LOG" && ok "the run went on without its client" || bad "no stream_detached"
grep -q "stream_resume request_id=$RID last_event=$LAST live=yes" "$LOG" && ok "resumed while it ran (replay, then live)" ||
    bad "not resumed live: $(grep "stream_resume request_id=$RID" "$LOG")"

# ---- the same through the official openai SDK (when installed: test_openai_node installs it)
if [ -d "$NODE_DIR/node_modules/openai" ]; then
    node "$NODE_DIR/resume_sdk.mjs" "$BASE" sdk-1 "$K1" >"$TMP/sdk.json" 2>"$TMP/sdk.err"
    check "SDK: dropped after 15 chunks + resumed = the whole answer" true \
        "$(field "$TMP/sdk.json" 'r.whole.length>0 && r.whole===r.resumed' 2>/dev/null || cat "$TMP/sdk.err")"
    check "SDK: the resumed stream's usage" 600 "$(field "$TMP/sdk.json" r.usage.completion_tokens 2>/dev/null)"
else
    echo "skip SDK resume: no openai package in $NODE_DIR/node_modules"
fi

# ---- GET /v1/requests/{id} as a stream, from event 5; scope; bad ids
rcl g1 "$BASE/v1/requests/$RID" - --bearer $K1 --accept-sse --last-event-id 5
check "GET stream: ids from 6" true "$(contiguous "$TMP/g1.json" 6)"
check "GET stream: one [DONE]" 1 "$(field "$TMP/g1.json" r.done)"
req g2 GET "/v1/requests/$RID" -H "Authorization: Bearer $K2" -H 'Accept: text/event-stream'
expect_error "GET stream with another API key" 404 request_not_found
req g3 GET "/v1/requests/$RID" -H "Authorization: Bearer $K1" -H 'Accept: text/event-stream' -H 'Last-Event-ID: 1x'
expect_error "a Last-Event-ID that is not a number" 400 invalid_last_event_id
rcl k2 "$CHAT" "$(body story 4)" --bearer $K2 --key drop-1 --last-event-id 3
[ "$(field "$TMP/k2.json" r.rid)" != "$RID" ] && ok "the key under another API key: another request" ||
    bad "another API key resumed $RID"
req g4 GET "/v1/requests/$RID" -H "Authorization: Bearer $K1"
check "GET JSON still: completed" completed "$(jget "$BODY" status)"
check "stored result = the streamed text" "$(field "$TMP/ref.json" 'JSON.stringify(r.text)')" \
    "$(node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(JSON.stringify(j.result.choices[0].message.content))' "$BODY")"

# ---- SIGKILL mid-stream, restart on the same journal, resume
# The client kills the gateway the moment it has 30 content events (the run
# is then a few hundred tokens in, of 2000).
rcl c1 "$CHAT" "$(body saga 2000)" --bearer $K1 --key crash-1 --abort-after 30 --kill "$PID"
wait "$PID" 2>/dev/null
CID=$(field "$TMP/c1.json" r.rid)
CLAST=$(field "$TMP/c1.json" 'r.ids[r.ids.length-1]')
start_server rs2 TIDEGATE_API_KEY_SHA256="$H1,$H2" -- --journal-dir "$J"
CHAT=$BASE/v1/chat/completions
rcl c2 "$CHAT" "$(body saga 2000)" --bearer $K1 --key crash-1 --last-event-id "$CLAST"
check "after the crash: same request id" "$CID" "$(field "$TMP/c2.json" r.rid)"
check "after the crash: ids from Last-Event-ID + 1" true "$(contiguous "$TMP/c2.json" $((CLAST + 1)))"
check "after the crash: one [DONE]" 1 "$(field "$TMP/c2.json" r.done)"
check "after the crash: no error event" null "$(field "$TMP/c2.json" 'JSON.stringify(r.error)')"
grep -q "journal_open .*unfinished=1" "$LOG" && ok "restart: the stream was unfinished" || bad "restart: $(grep journal_open "$LOG")"
grep -q "stream_restored request_id=$CID .*finished=no" "$LOG" && ok "the re-run continued the durable prefix" ||
    bad "no stream_restored: $(grep -E "journal_rerun|stream_restored" "$LOG")"
req c3 GET "/v1/requests/$CID" -H "Authorization: Bearer $K1"
check "after the crash: completed" completed "$(jget "$BODY" status)"
check "stored result = what the client got, before and after" \
    "$(node -e 'const f=require("fs");const a=JSON.parse(f.readFileSync(process.argv[1])),b=JSON.parse(f.readFileSync(process.argv[2]));console.log(JSON.stringify(a.text+b.text))' "$TMP/c1.json" "$TMP/c2.json")" \
    "$(node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(JSON.stringify(j.result.choices[0].message.content))' "$BODY")"
check "after the crash: the token budget holds" 2000 "$(jget "$BODY" result.usage.completion_tokens)"
stop_server
check "clean stop" 0 "$RC"
"$TIDEGATE_BIN" journal check --strict "$J" >"$TMP/check.out" 2>&1 && ok "journal check --strict (chunk numbering)" ||
    bad "journal check: $(cat "$TMP/check.out")"
"$TIDEGATE_BIN" journal dump "$J" --id "$CID" | grep -c '"type":"CHUNK"' >"$TMP/nchunks"
# Every event but [DONE] is a CHUNK record: the last id the client saw - 1.
check "journal dump shows every event as a CHUNK record" "$(($(field "$TMP/c2.json" 'r.ids[r.ids.length-1]') - 1))" \
    "$(cat "$TMP/nchunks")"

finish
