#!/usr/bin/env bash
# The API's other shapes on the cloud route, against the mock cloud over
# TLS: structured output and tool fields go up untouched on chat
# completions (response_format, tool_choice, parallel_tool_calls, logprobs);
# /v1/responses is sent up as a chat completion (instructions as the system
# message, function tools and text.format translated) and the answer comes
# back in the Responses shape, streamed (the Responses event sequence) and
# not, tool calls as function_call items, previous_response_id over a cloud
# turn, failover to the engine before the first token and mid-stream (the
# Responses shape whoever answers); /v1/completions goes up as one user
# message. About 15 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/mock_cloud/mock_cloud.sh"
REPLY="The tide turns twice a day near the harbour."

start_mock_cloud "$TMP/mock" || exit 1
SERVER_PIDS+=("$MOCK_PID")
cat >"$TMP/a.yaml" <<YAML
cloud:
  - name: main
    base_url: "$MOCK_URL"
    model: mock-gpt
    ca_file: "$MOCK_CA"
YAML
start_server cloud -- -c "$TMP/a.yaml"
rec() { mock_admin GET /requests >"$TMP/rec.json"; }
last() { jget "$TMP/rec.json" "$(($(jq length "$TMP/rec.json") - 1)).$1"; }
SCHEMA='{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}'
TOOLS='[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]'
msg='"messages":[{"role":"user","content":"Weather in Oslo?"}]'

# ---- chat completions: the fields go up untouched -------------------------
RF="{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"w\",\"strict\":true,\"schema\":$SCHEMA}}"
req chat POST /v1/chat/completions -d "{\"model\":\"tidegate/cloud\",\"response_format\":$RF,\"tools\":$TOOLS,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},\"parallel_tool_calls\":false,\"logprobs\":true,\"top_logprobs\":3,$msg}"
check "chat: 200" 200 "$STATUS"
check "chat: route" "cloud:main" "$(header x-tidegate-route "$HDR")"
rec
check "chat: response_format untouched" "$(jq -c . <<<"$RF")" "$(last body.response_format)"
check "chat: tool_choice untouched" '{"type":"function","function":{"name":"get_weather"}}' "$(last body.tool_choice)"
# (jget maps false to null: read it with jq itself)
check "chat: parallel_tool_calls untouched" false "$(jq -r '.[-1].body.parallel_tool_calls' "$TMP/rec.json")"
check "chat: tools untouched" "$(jq -c . <<<"$TOOLS")" "$(last body.tools)"
check "chat: logprobs untouched" 3 "$(last body.top_logprobs)"
# A keyword the engine's compiler refuses is the upstream's business here.
req chatkw POST /v1/chat/completions -d "{\"model\":\"tidegate/cloud\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":{\"type\":\"string\",\"pattern\":\"^a\"}}},$msg}"
check "chat: unsupported keyword passes to the cloud" 200 "$STATUS"
expect_edge_kw() {
    req chatkwe POST /v1/chat/completions -d "{\"model\":\"tidegate/edge\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":{\"type\":\"string\",\"pattern\":\"^a\"}}},$msg}"
    expect_error "edge: unsupported keyword is a 400" 400 unsupported_schema_keyword
}
expect_edge_kw

# ---- /v1/responses to the cloud, not streamed -----------------------------
req r1 POST /v1/responses -d "{\"model\":\"tidegate/cloud\",\"input\":\"Tell me about tides\",\"instructions\":\"be brief\",\"max_output_tokens\":50,\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"w\",\"schema\":$SCHEMA,\"strict\":true}}}"
check "responses: 200" 200 "$STATUS"
check "responses: object" response "$(jget "$BODY" object)"
check "responses: status" completed "$(jget "$BODY" status)"
check "responses: text" "$REPLY" "$(jget "$BODY" output.0.content.0.text)"
check "responses: model is the upstream's" mock-gpt "$(jget "$BODY" model)"
check "responses: usage from the upstream" 9 "$(jget "$BODY" usage.output_tokens)"
check "responses: route" "cloud:main" "$(header x-tidegate-route "$HDR")"
ID=$(jget "$BODY" id)
rec
check "responses up: chat completions path" /v1/chat/completions "$(last path)"
check "responses up: instructions as system" system "$(last body.messages.0.role)"
check "responses up: system text" "be brief" "$(last body.messages.0.content)"
check "responses up: user input" "Tell me about tides" "$(last body.messages.1.content)"
check "responses up: max_output_tokens as max_completion_tokens" 50 "$(jq -r '(.[-1].body.max_completion_tokens // .[-1].body.max_tokens)' "$TMP/rec.json")"
check "responses up: text.format as response_format" json_schema "$(last body.response_format.type)"
check "responses up: the schema untouched" "$(jq -c . <<<"$SCHEMA")" "$(last body.response_format.json_schema.schema)"
check "responses up: model replaced" mock-gpt "$(last body.model)"

# previous_response_id over a cloud turn: the history goes up.
req r2 POST /v1/responses -d "{\"model\":\"tidegate/cloud\",\"input\":\"and tomorrow?\",\"previous_response_id\":\"$ID\"}"
check "previous_response_id: 200" 200 "$STATUS"
rec
check "history up: earlier user turn" "Tell me about tides" "$(last body.messages.0.content)"
check "history up: earlier answer" "$REPLY" "$(last body.messages.1.content)"
check "history up: this turn" "and tomorrow?" "$(last body.messages.2.content)"

# ---- streamed: the Responses event sequence --------------------------------
curl -sN --max-time 30 "$BASE/v1/responses" -H 'content-type: application/json' \
    -d '{"model":"tidegate/cloud","input":"Tell me about tides","stream":true}' >"$TMP/s1.sse"
node -e '
const fs = require("fs");
const evs = fs.readFileSync(process.argv[1], "utf8").split("\n\n").filter(Boolean).map(b => {
  const ev = (b.match(/^event: (.*)$/m) || [])[1];
  const d = JSON.parse((b.match(/^data: (.*)$/m) || [])[1]);
  if (d.type !== ev) throw new Error("event/type mismatch " + ev);
  return d;
});
const types = evs.map(e => e.type);
const text = evs.filter(e => e.type === "response.output_text.delta").map(e => e.delta).join("");
const seqOk = evs.every((e, i) => e.sequence_number === i);
const fin = evs[evs.length - 1];
console.log(JSON.stringify({first: types[0], last: types[types.length - 1], text, seqOk,
  deltas: types.filter(t => t === "response.output_text.delta").length,
  added: types.includes("response.output_item.added"), done_text: (evs.find(e => e.type === "response.output_text.done") || {}).text,
  status: fin.response && fin.response.status, usage: fin.response && fin.response.usage && fin.response.usage.output_tokens}));
' "$TMP/s1.sse" >"$TMP/s1.json" || bad "stream: events do not parse"
check "stream: first event" response.created "$(jget "$TMP/s1.json" first)"
check "stream: last event" response.completed "$(jget "$TMP/s1.json" last)"
check "stream: text" "$REPLY" "$(jget "$TMP/s1.json" text)"
check "stream: output_text.done" "$REPLY" "$(jget "$TMP/s1.json" done_text)"
check "stream: sequence numbers" true "$(jget "$TMP/s1.json" seqOk)"
check "stream: one delta per upstream word" 9 "$(jget "$TMP/s1.json" deltas)"
check "stream: usage" 9 "$(jget "$TMP/s1.json" usage)"
rec
check "stream up: streamed" true "$(last body.stream)"

# ---- tool calls from the cloud as function_call items ----------------------
RTOOLS='[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]'
mock_fault tool 1
req t1 POST /v1/responses -d "{\"model\":\"tidegate/cloud\",\"input\":\"Weather in Oslo?\",\"tools\":$RTOOLS,\"tool_choice\":\"required\"}"
check "tool: 200" 200 "$STATUS"
check "tool: function_call item" function_call "$(jget "$BODY" output.0.type)"
check "tool: name" get_weather "$(jget "$BODY" output.0.name)"
args=$(jget "$BODY" output.0.arguments)
check "tool: arguments parse" Oslo "$(jq -r .city <<<"$args" 2>/dev/null)"
CALL=$(jget "$BODY" output.0.call_id)
rec
check "tool up: function tool in chat form" get_weather "$(last body.tools.0.function.name)"
check "tool up: tool_choice" required "$(last body.tool_choice)"
mock_fault tool 1
curl -sN --max-time 30 "$BASE/v1/responses" -H 'content-type: application/json' \
    -d "{\"model\":\"tidegate/cloud\",\"input\":\"Weather?\",\"tools\":$RTOOLS,\"stream\":true}" >"$TMP/s2.sse"
grep -o '"type":"response.function_call_arguments.done"[^}]*' "$TMP/s2.sse" >"$TMP/s2.done"
check "stream tool: arguments.done once" 1 "$(wc -l <"$TMP/s2.done")"
[[ $(cat "$TMP/s2.done") == *'\"city\":\"Oslo\"'* ]] && ok "stream tool: whole arguments (deltas merged)" || bad "stream tool: $(cat "$TMP/s2.done")"
check "stream tool: completed" 1 "$(grep -c '^event: response.completed' "$TMP/s2.sse")"
# The round trip: the tool's output goes up as a tool message.
req t2 POST /v1/responses -d "{\"model\":\"tidegate/cloud\",\"input\":[{\"role\":\"user\",\"content\":\"Weather?\"},{\"type\":\"function_call\",\"call_id\":\"$CALL\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"},{\"type\":\"function_call_output\",\"call_id\":\"$CALL\",\"output\":\"21C\"}],\"tools\":$RTOOLS}"
check "round trip: 200" 200 "$STATUS"
check "round trip: answer" "$REPLY" "$(jget "$BODY" output.0.content.0.text)"
rec
check "round trip up: assistant tool_calls" "$CALL" "$(last body.messages.1.tool_calls.0.id)"
check "round trip up: tool message" tool "$(last body.messages.2.role)"
check "round trip up: tool output" 21C "$(last body.messages.2.content)"

# ---- failover: the Responses shape whoever answers ---------------------------
mock_fault "status=503" 1
req f1 POST /v1/responses -d '{"model":"tidegate/cloud","input":"Tell me about tides","max_output_tokens":4}'
check "failover before the first token: 200" 200 "$STATUS"
check "failover before the first token: the engine answered" engine "$(header x-tidegate-route "$HDR")"
[[ $(header x-tidegate-failover "$HDR") == "cloud:main->engine; cause=5xx"* ]] && ok "failover header" || bad "failover header '$(header x-tidegate-failover "$HDR")'"
check "failover before the first token: a response object" response "$(jget "$BODY" object)"
check "failover before the first token: engine usage" 4 "$(jget "$BODY" usage.output_tokens)"
mock_fault "reset_after=3" 1
curl -sN --max-time 30 "$BASE/v1/responses" -H 'content-type: application/json' \
    -d '{"model":"tidegate/cloud","input":"Tell me about tides","stream":true,"max_output_tokens":8}' >"$TMP/f2.sse"
check "mid-stream cut: one terminal event" 1 "$(grep -c '^event: response.\(completed\|incomplete\|failed\)' "$TMP/f2.sse")"
check "mid-stream cut: continued on the engine, not failed" 0 "$(grep -c '^event: response.failed' "$TMP/f2.sse")"
deltas=$(grep '^data: ' "$TMP/f2.sse" | sed 's/^data: //' | jq -r 'select(.type=="response.output_text.delta") | .delta' | tr -d '\n')
[[ $deltas == "The tide turns "* ]] && ok "mid-stream cut: the cloud's words first ($deltas)" || bad "mid-stream deltas '$deltas'"

# ---- legacy completions to the cloud ----------------------------------------
req c1 POST /v1/completions -d '{"model":"tidegate/cloud","prompt":"Once upon a time","max_tokens":3}'
check "completions: 200" 200 "$STATUS"
check "completions: object" text_completion "$(jget "$BODY" object)"
check "completions: text" "The tide turns " "$(jget "$BODY" choices.0.text)"
check "completions: length" length "$(jget "$BODY" choices.0.finish_reason)"
rec
check "completions up: one user message" "Once upon a time" "$(last body.messages.0.content)"

stop_server
check "server exit 0" 0 "$RC"
finish
