#!/usr/bin/env bash
# The four clients a new user reaches for, latest versions, DEFAULT
# settings: the official `openai` SDK (Responses API), the Vercel AI SDK
# (`ai` + `@ai-sdk/openai`, provider(model) = Responses), LangChain.js
# `ChatOpenAI`, and the OpenAI Agents SDK. Each does a plain and a streamed
# call, structured output through its own helper, a forced tool call and a
# tool round trip; the openai SDK also checks logprobs against the engine's
# logits; LangChain (chat completions by default) also goes over the
# Responses API (useResponsesApi), streamed and with a tool round trip.
# Scripted models (synth-model --script) make answers exact.
#
# npm installs go to $TG_BUILD_DIR/npm-clients once (again only when
# node/clients/package.json changes), so CI pays for them on a fresh tree only.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/node/clients" && pwd)
NPM_DIR=${TG_BUILD_DIR:-$SRC/../../../../build}/npm-clients
mkdir -p "$NPM_DIR"
if [ ! -d "$NPM_DIR/node_modules/@openai/agents" ] || ! cmp -s "$SRC/package.json" "$NPM_DIR/package.json"; then
    echo "installing the client packages into $NPM_DIR"
    cp "$SRC/package.json" "$NPM_DIR/package.json"
    rm -f "$NPM_DIR/package-lock.json"
    (cd "$NPM_DIR" && timeout 600 npm install --no-audit --no-fund --loglevel=error) ||
        { rm -f "$NPM_DIR/package.json"; echo "FAIL npm install"; exit 1; }
fi
cp "$SRC"/*.mjs "$SRC/../check.mjs" "$NPM_DIR/"
for p in openai ai @ai-sdk/openai @langchain/openai @openai/agents; do
    echo "client $p $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$NPM_DIR/node_modules/$p/package.json" | head -1)"
done

run_node() { # run_node NAME SCRIPT: runs it, folds its ok/FAIL lines into ours
    local out rc f
    out=$(cd "$NPM_DIR" && timeout 300 node "$2" 2>&1)
    rc=$?
    echo "$out" | sed "s/^/[$1] /"
    f=$(echo "$out" | grep -c '^FAIL')
    CHECKS=$((CHECKS + $(echo "$out" | grep -c '^ok\|^FAIL')))
    FAILS=$((FAILS + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then bad "$1: node exited $rc"; fi
}

"$TIDEGATE_BIN" synth-model -o "$TMP/text.gguf" --script 'It is sunny in Oslo.' >/dev/null || exit 1
"$TIDEGATE_BIN" synth-model -o "$TMP/json.gguf" --script '{"city":"Oslo","temp":21,"sunny":true}' >/dev/null || exit 1
"$TIDEGATE_BIN" synth-model -o "$TMP/tool.gguf" \
    --script '<|tool_call_start|>[{"name":"get_weather","arguments":{"city":"Oslo"}}]<|tool_call_end|>' >/dev/null || exit 1
declare -A URL PIDS
for m in text json tool; do
    MODEL=$TMP/$m.gguf start_server "$m"
    URL[$m]=$BASE/v1
    PIDS[$m]=$PID
done
RAND_MODEL=$MODEL
start_server rand
URL[rand]=$BASE/v1
PIDS[rand]=$PID
export TG_TEXT_URL=${URL[text]} TG_JSON_URL=${URL[json]} TG_TOOL_URL=${URL[tool]} TG_RAND_URL=${URL[rand]}
export TG_RAND_MODEL=$RAND_MODEL TG_TMP=$TMP TIDEGATE_BIN

for c in openai aisdk langchain agents; do run_node "$c" "$c.mjs"; done

for m in text json tool rand; do
    PID=${PIDS[$m]}
    stop_server
    check "$m server exit 0" 0 "$RC"
done
for f in "$TMP"/*.log; do
    if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$f"; then bad "sanitizer report in $f"; fi
done
finish
