#!/usr/bin/env bash
# LFM2.5 reasoning: a scripted LFM2.5 model (`synth-model --lfm25 --script`)
# thinks, then answers. Through the official `openai` npm SDK
# (node/reasoning.mjs): reasoning_content and content apart, streamed and
# not, include_reasoning: false, a past turn's thinking stripped; and the
# raw JSON through curl.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
NODE_DIR=$(cd "$(dirname "$0")/node" && pwd)

if [ ! -d "$NODE_DIR/node_modules/openai" ]; then
    echo "installing the openai SDK into $NODE_DIR/node_modules"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error) || { echo "npm install failed"; exit 1; }
fi

"$TIDEGATE_BIN" synth-model -o "$TMP/think.gguf" --lfm25 --script \
    $'<think>\nThe user greets me. A short friendly reply fits.\n</think>\n\nHello! Nice to meet you.' \
    >/dev/null || exit 1

MODEL=$TMP/think.gguf start_server think
out=$(cd "$NODE_DIR" && TG_BASE_URL=$BASE/v1 node reasoning.mjs 2>&1)
rc=$?
echo "$out" | sed "s/^/[reasoning] /"
f=$(echo "$out" | grep -c '^FAIL')
CHECKS=$((CHECKS + $(echo "$out" | grep -c '^ok\|^FAIL')))
FAILS=$((FAILS + f))
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then bad "reasoning: node exited $rc"; fi

# curl, non-streaming: the raw JSON has both fields.
body=$(curl -s "$BASE/v1/chat/completions" -H 'content-type: application/json' \
    -d '{"model":"tidegate/edge","messages":[{"role":"user","content":"hi"}]}')
case "$body" in
*'"content":"Hello! Nice to meet you.","reasoning_content":"The user greets me. A short friendly reply fits."'*) ok "raw JSON: content and reasoning_content apart" ;;
*) bad "raw JSON: $body" ;;
esac
stop_server
check "think server exit 0" 0 "$RC"
for f in "$TMP"/*.log; do
    if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$f"; then bad "sanitizer report in $f"; fi
done
finish
