#!/usr/bin/env bash
# The gateway through the official `openai` npm package (v6): chat, stream,
# errors (node/chat.mjs) and a tool-call round trip on scripted models made
# with `tidegate synth-model --script` (node/tools.mjs).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
NODE_DIR=$(cd "$(dirname "$0")/node" && pwd)

if [ ! -d "$NODE_DIR/node_modules/openai" ]; then
    echo "installing the openai SDK into $NODE_DIR/node_modules"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error) || { echo "npm install failed"; exit 1; }
fi

run_node() { # run_node NAME SCRIPT: runs it, folds its ok/FAIL lines into ours
    local out rc
    out=$(cd "$NODE_DIR" && node "$2" 2>&1)
    rc=$?
    echo "$out" | sed "s/^/[$1] /"
    local f
    f=$(echo "$out" | grep -c '^FAIL')
    CHECKS=$((CHECKS + $(echo "$out" | grep -c '^ok\|^FAIL')))
    FAILS=$((FAILS + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then bad "$1: node exited $rc"; fi
}

start_server sdk
TG_BASE_URL=$BASE/v1 run_node chat chat.mjs
stop_server
check "sdk server exit 0" 0 "$RC"

# Scripted models: one answers with a tool call, one with the final text.
"$TIDEGATE_BIN" synth-model -o "$TMP/tool.gguf" \
    --script '<|tool_call_start|>[get_weather(city="Oslo", days=2)]<|tool_call_end|>' >/dev/null || exit 1
"$TIDEGATE_BIN" synth-model -o "$TMP/answer.gguf" --script 'It is sunny in Oslo.' >/dev/null || exit 1
"$TIDEGATE_BIN" synth-model -o "$TMP/mixed.gguf" \
    --script 'Let me check.<|tool_call_start|>[get_weather(city="Oslo")]<|tool_call_end|>' >/dev/null || exit 1
MODEL=$TMP/mixed.gguf start_server mixed
MIXED_BASE=$BASE/v1
MIXED_PID=$PID
MODEL=$TMP/tool.gguf start_server tool
TOOL_BASE=$BASE/v1
TOOL_PID=$PID
MODEL=$TMP/answer.gguf start_server answer
TG_BASE_URL=$TOOL_BASE TG_BASE_URL2=$BASE/v1 TG_BASE_URL3=$MIXED_BASE run_node tools tools.mjs
stop_server
check "answer server exit 0" 0 "$RC"
PID=$TOOL_PID
stop_server
check "tool server exit 0" 0 "$RC"
PID=$MIXED_PID
stop_server
check "mixed server exit 0" 0 "$RC"
for f in "$TMP"/*.log; do
    if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$f"; then bad "sanitizer report in $f"; fi
done
finish
