#!/usr/bin/env bash
# The rest of the API clients call, with curl: /v1/responses (shape, the
# streaming event sequence, store / GET / DELETE, previous_response_id),
# /v1/completions (plain and streamed), /v1/models/{id}, structured output
# and forced tool calls on chat completions (scripted models, so the exact
# output is known), Retry-After on 503, and CORS (off by default; allowed
# origins and the OPTIONS preflight when configured).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
J() { node -e "$1" "$BODY"; } # J 'JS reading process.argv[1]'

"$TIDEGATE_BIN" synth-model -o "$TMP/text.gguf" --script 'It is sunny.' >/dev/null || exit 1
"$TIDEGATE_BIN" synth-model -o "$TMP/json.gguf" --script '{"city":"Oslo","temp":21}' >/dev/null || exit 1
"$TIDEGATE_BIN" synth-model -o "$TMP/tool.gguf" \
    --script '<|tool_call_start|>[{"name":"get_weather","arguments":{"city":"Oslo"}}]<|tool_call_end|>' >/dev/null || exit 1
"$TIDEGATE_BIN" synth-model -o "$TMP/two.gguf" \
    --script '<|tool_call_start|>[{"name":"get_weather","arguments":{"city":"Oslo"}},{"name":"get_weather","arguments":{"city":"Bergen"}}]<|tool_call_end|>' >/dev/null || exit 1

# ------------------------------------------------------------ responses --
MODEL=$TMP/text.gguf start_server text
req r1 POST /v1/responses -d '{"model":"tidegate/auto","input":"hi","instructions":"be brief","metadata":{"k":"v"}}'
check "responses 200" 200 "$STATUS"
check "responses object" response "$(jget "$BODY" object)"
check "responses status" completed "$(jget "$BODY" status)"
check "responses text" "It is sunny." "$(jget "$BODY" output.0.content.0.text)"
check "responses item type" message "$(jget "$BODY" output.0.type)"
check "responses instructions echoed" "be brief" "$(jget "$BODY" instructions)"
check "responses metadata echoed" '{"k":"v"}' "$(jget "$BODY" metadata)"
ID=$(jget "$BODY" id)
[[ $ID == resp_* ]] && ok "responses id $ID" || bad "responses id '$ID'"
it=$(jget "$BODY" usage.input_tokens)
req r1g GET "/v1/responses/$ID"
check "GET stored response" "It is sunny." "$(jget "$BODY" output.0.content.0.text)"
req r2 POST /v1/responses -d "{\"input\":\"and?\",\"previous_response_id\":\"$ID\"}"
check "previous_response_id 200" 200 "$STATUS"
it2=$(jget "$BODY" usage.input_tokens)
[ "$it2" -gt "$it" ] 2>/dev/null && ok "history adds input tokens ($it -> $it2)" || bad "history tokens $it -> $it2"
req r1d DELETE "/v1/responses/$ID"
check "DELETE deleted" true "$(jget "$BODY" deleted)"
req r1g2 GET "/v1/responses/$ID"
expect_error "GET after DELETE" 404 not_found
req r3 POST /v1/responses -d '{"input":"x","previous_response_id":"resp_nope"}'
expect_error "unknown previous_response_id" 400 previous_response_not_found previous_response_id
req r4 POST /v1/responses -d '{"input":"x","store":false}'
req r4g GET "/v1/responses/$(jget "$BODY" id)"
expect_error "store false is not kept" 404 not_found
req r5 POST /v1/responses -d '{"input":[{"role":"user","content":[{"type":"input_image","image_url":"x"}]}]}'
expect_error "image input refused" 400 unsupported_value "input[0].content"
req r6 POST /v1/responses -d '{"input":"x","tools":[{"type":"web_search"}]}'
expect_error "non-function tool refused" 400 unsupported_value "tools[0].type"
req r7 POST /v1/responses -d '{"input":"x","max_output_tokens":2}'
check "max_output_tokens -> incomplete" incomplete "$(jget "$BODY" status)"
check "incomplete reason" max_output_tokens "$(jget "$BODY" incomplete_details.reason)"

req rs POST /v1/responses -d '{"input":"hi","stream":true}'
check "stream content-type" "text/event-stream; charset=utf-8" "$(header content-type "$HDR")"
got=$(grep '^event: ' "$BODY" | sed 's/^event: //' | tr '\n' ' ')
want="response.created response.in_progress response.output_item.added response.content_part.added "
want+="$(grep -c '^event: response.output_text.delta' "$BODY" | xargs -I{} sh -c 'for i in $(seq 1 {}); do printf "response.output_text.delta "; done')"
want+="response.output_text.done response.content_part.done response.output_item.done response.completed "
check "stream event sequence" "$want" "$got"
J 'const fs=require("fs");let t="",seq=[];for(const l of fs.readFileSync(process.argv[1],"utf8").split("\n")){if(!l.startsWith("data: "))continue;const e=JSON.parse(l.slice(6));seq.push(e.sequence_number);if(e.type==="response.output_text.delta")t+=e.delta;}
process.exit(t==="It is sunny."&&seq.every((s,i)=>s===i)?0:1)' && ok "stream deltas and sequence numbers" || bad "stream deltas/sequence"

# ---------------------------------------------------------- completions --
req c1 POST /v1/completions -d '{"prompt":"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n","max_tokens":20}'
check "completions 200" 200 "$STATUS"
check "completions object" text_completion "$(jget "$BODY" object)"
req c2 POST /v1/completions -d '{"prompt":"Once","max_tokens":3,"stream":true}'
check "completions stream ends [DONE]" "data: [DONE]" "$(grep '^data: ' "$BODY" | tail -1)"
check "completions stream finish" stop "$(grep '^data: {' "$BODY" | tail -1 | sed 's/^data: //' | node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).choices[0].finish_reason)')"
req c3 POST /v1/completions -d '{"max_tokens":3}'
expect_error "completions without prompt" 400 missing_required_parameter prompt

# --------------------------------------------------------------- models --
req m1 GET /v1/models/tidegate%2Fauto
check "models/{id} encoded" tidegate/auto "$(jget "$BODY" id)"
req m2 GET /v1/models/text
check "models/{id} engine model" text "$(jget "$BODY" id)"
req m3 GET /v1/models/gpt-nope
expect_error "models/{id} unknown" 404 model_not_found model

# A model that wants to say something else, held to a schema and cut at
# max_tokens: unfinished JSON ends with length, never a silent stop.
req s3 POST /v1/chat/completions -d '{"messages":[{"role":"user","content":"w"}],"max_tokens":3,"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}}}'
check "json cut at max_tokens is length" length "$(jget "$BODY" choices.0.finish_reason)"
# (A schema with a required key: under plain json_object the sampler may
# close "{}" within 3 tokens, a legitimate stop -- about 1 run in 15.)
req s3s POST /v1/chat/completions -d '{"messages":[{"role":"user","content":"w"}],"max_tokens":3,"stream":true,"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}}}'
check "json cut streamed is length" '"length"' "$(grep -o '"finish_reason":"[a-z]*"' "$BODY" | tail -1 | cut -d: -f2)"
req s3r POST /v1/responses -d '{"input":"w","max_output_tokens":3,"text":{"format":{"type":"json_schema","name":"a","schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}}}'
check "responses json cut is incomplete" incomplete "$(jget "$BODY" status)"
check "responses json cut reason" max_output_tokens "$(jget "$BODY" incomplete_details.reason)"

# ------------------------------------------------------------ Retry-After --
req ra POST /v1/chat/completions -d '{"model":"tidegate/cloud","messages":[{"role":"user","content":"x"}]}'
check "503 status" 503 "$STATUS"
check "503 Retry-After" 1 "$(header retry-after "$HDR")"
check "CORS off: no allow-origin" "" "$(curl -s -D - -o /dev/null -H 'Origin: https://app.example' "$BASE/healthz" | grep -i '^access-control' | tr -d '\r')"
stop_server
check "text server exit 0" 0 "$RC"

# ----------------------------------------------------- structured output --
MODEL=$TMP/json.gguf start_server json
SCHEMA='{"type":"object","properties":{"city":{"type":"string"},"temp":{"type":"integer"}},"required":["city","temp"],"additionalProperties":false}'
req s1 POST /v1/chat/completions -d "{\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"w\",\"strict\":true,\"schema\":$SCHEMA}}}"
check "json_schema content" '{"city":"Oslo","temp":21}' "$(jget "$BODY" choices.0.message.content)"
check "json_schema finish" stop "$(jget "$BODY" choices.0.finish_reason)"
req s2 POST /v1/responses -d "{\"input\":\"w\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"w\",\"schema\":$SCHEMA}}}"
check "responses text.format" '{"city":"Oslo","temp":21}' "$(jget "$BODY" output.0.content.0.text)"
req s4 POST /v1/chat/completions -d '{"messages":[{"role":"user","content":"w"}],"response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"string","pattern":"^a"}}}}'
expect_error "unsupported keyword" 400 unsupported_schema_keyword response_format.json_schema.schema
msg=$(jget "$BODY" error.message)
[[ $msg == *pattern* ]] && ok "error names the keyword" || bad "error message '$msg'"
req s5 POST /v1/responses -d '{"input":"w","text":{"format":{"type":"json_schema","name":"w","schema":{"allOf":[]}}}}'
expect_error "responses unsupported keyword" 400 unsupported_schema_keyword text.format.schema
stop_server
check "json server exit 0" 0 "$RC"

# ------------------------------------------------------ forced tool calls --
MODEL=$TMP/tool.gguf start_server tool
TOOLS='[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}}]'
for choice in '"required"' '{"type":"function","function":{"name":"get_weather"}}'; do
    req t1 POST /v1/chat/completions -d "{\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],\"tools\":$TOOLS,\"tool_choice\":$choice,\"parallel_tool_calls\":false}"
    check "forced $choice: finish" tool_calls "$(jget "$BODY" choices.0.finish_reason)"
    check "forced $choice: call" '{"city":"Oslo"}' "$(jget "$BODY" choices.0.message.tool_calls.0.function.arguments)"
done
req t2 POST /v1/chat/completions -d "{\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],\"tools\":$TOOLS,\"tool_choice\":\"required\",\"stream\":true}"
grep -q '"tool_calls":\[{"index":0' "$BODY" && ok "forced call streamed as tool_calls delta" || bad "no streamed tool_calls"
req t3 POST /v1/responses -d "{\"input\":\"w\",\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}],\"tool_choice\":\"required\"}"
check "responses function_call" function_call "$(jget "$BODY" output.0.type)"
check "responses call args" '{"city":"Oslo"}' "$(jget "$BODY" output.0.arguments)"
[[ $(jget "$BODY" output.0.call_id) == call_* ]] && ok "responses call_id" || bad "call_id"
stop_server
check "tool server exit 0" 0 "$RC"

# ---------------------------------------------------- parallel_tool_calls --
# The model makes two calls; parallel_tool_calls false lets one through
# (chat, streamed chat, Responses), true (the default) both.
MODEL=$TMP/two.gguf start_server two
body() { echo "{\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],\"tools\":$TOOLS$1}"; }
req p1 POST /v1/chat/completions -d "$(body '')"
check "parallel default: two calls" 2 "$(jq '.choices[0].message.tool_calls | length' "$BODY")"
req p2 POST /v1/chat/completions -d "$(body ',"parallel_tool_calls":false')"
check "parallel false: one call" 1 "$(jq '.choices[0].message.tool_calls | length' "$BODY")"
check "parallel false: the first" '{"city":"Oslo"}' "$(jget "$BODY" choices.0.message.tool_calls.0.function.arguments)"
req p3 POST /v1/chat/completions -d "$(body ',"parallel_tool_calls":false,"stream":true')"
check "parallel false streamed: one call" 1 "$(grep -o '"function":{"name"' "$BODY" | wc -l)"
req p4 POST /v1/responses -d "{\"input\":\"w\",\"parallel_tool_calls\":false,\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}]}"
check "parallel false responses: one item" 1 "$(jq '[.output[] | select(.type=="function_call")] | length' "$BODY")"
check "parallel false responses: echoed" false "$(jq -r .parallel_tool_calls "$BODY")"
stop_server
check "two server exit 0" 0 "$RC"

# ------------------------------------------- stored responses, journaled --
# With the journal on, a stored response outlives memory and restarts: it
# is read back by id (GET, previous_response_id); store:false ones are not;
# a DELETE holds across a restart; the journal stays consistent.
J=$TMP/journal
MODEL=$TMP/text.gguf start_server j1 -- --journal-dir "$J"
req j1 POST /v1/responses -d '{"input":"hi","instructions":"be brief"}'
JID=$(jget "$BODY" id)
it=$(jget "$BODY" usage.input_tokens)
req j2 POST /v1/responses -d '{"input":"hi","store":false}'
JNOSTORE=$(jget "$BODY" id)
curl -sN --max-time 30 "$BASE/v1/responses" -H 'content-type: application/json' \
    -d '{"input":"hi","stream":true}' >"$TMP/j3.sse"
JSTREAM=$(grep -o '"id":"resp_[0-9a-f]*"' "$TMP/j3.sse" | head -1 | cut -d'"' -f4)
req j4 POST /v1/responses -d '{"input":"bye"}'
JDEL=$(jget "$BODY" id)
stop_server
check "journal server 1 exit 0" 0 "$RC"
MODEL=$TMP/text.gguf start_server j2 -- --journal-dir "$J"
req j5 GET "/v1/responses/$JID"
check "after restart: GET from the journal" 200 "$STATUS"
check "after restart: the same response" "$JID" "$(jget "$BODY" id)"
check "after restart: text" "It is sunny." "$(jget "$BODY" output.0.content.0.text)"
req j6 GET "/v1/responses/$JSTREAM"
check "after restart: a streamed response too" "It is sunny." "$(jget "$BODY" output.0.content.0.text)"
req j7 GET "/v1/responses/$JNOSTORE"
expect_error "after restart: store false is not kept" 404 not_found
req j8 POST /v1/responses -d "{\"input\":\"and?\",\"previous_response_id\":\"$JID\"}"
check "after restart: previous_response_id" 200 "$STATUS"
it2=$(jget "$BODY" usage.input_tokens)
[ "$it2" -gt "$it" ] 2>/dev/null && ok "after restart: history from the journal ($it -> $it2)" || bad "history tokens $it -> $it2"
req j9 DELETE "/v1/responses/$JDEL"
check "journaled DELETE" true "$(jget "$BODY" deleted)"
req j10 GET "/v1/responses/$JDEL"
expect_error "GET after journaled DELETE" 404 not_found
stop_server
MODEL=$TMP/text.gguf start_server j3 -- --journal-dir "$J"
req j11 GET "/v1/responses/$JDEL"
expect_error "DELETE holds across a restart" 404 not_found
stop_server
"$TIDEGATE_BIN" journal check "$J" --strict >"$TMP/jcheck.out" 2>&1
rc=$?; cat "$TMP/jcheck.out"
check "journal check --strict clean" 0 "$rc"

# ------------------------------------------------------------------ CORS --
start_server cors TIDEGATE_CORS_ORIGINS="https://app.example, http://localhost:3000"
curl -s -X OPTIONS -D "$TMP/pf.hdr" -o /dev/null -H 'Origin: http://localhost:3000' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization, content-type' \
    "$BASE/v1/chat/completions"
check "preflight status" 204 "$(head -1 "$TMP/pf.hdr" | cut -d' ' -f2)"
check "preflight allow-origin" http://localhost:3000 "$(header access-control-allow-origin "$TMP/pf.hdr")"
check "preflight allow-headers" "authorization, content-type" "$(header access-control-allow-headers "$TMP/pf.hdr")"
[[ $(header access-control-allow-methods "$TMP/pf.hdr") == *POST* ]] && ok "preflight allow-methods" || bad "allow-methods"
req cors1 GET /v1/models -H 'Origin: https://app.example'
check "allowed origin echoed" https://app.example "$(header access-control-allow-origin "$HDR")"
req cors2 GET /v1/models -H 'Origin: https://evil.example'
check "other origin: no header" "" "$(header access-control-allow-origin "$HDR")"
stop_server
check "cors server exit 0" 0 "$RC"
finish
