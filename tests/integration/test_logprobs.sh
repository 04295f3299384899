#!/usr/bin/env bash
# Chat logprobs end to end: `logprobs`/`top_logprobs` in the OpenAI shape,
# streamed and not, and consistent with the engine's own logits: the first
# generated token's logprob and top_logprobs equal log softmax of the row
# `tidegate engine logits` computes for the same prompt tokens.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

start_server lp
REQ='{"messages":[{"role":"user","content":"hello"}],"max_tokens":6,"temperature":0,"logprobs":true,"top_logprobs":5}'
req lp POST /v1/chat/completions -H 'content-type: application/json' -d "$REQ"
check "logprobs 200" 200 "$STATUS"
cp "$BODY" "$TMP/once.json"
n=$(jget "$BODY" choices.0.logprobs.content | node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).length)')
check "one entry per generated token" "$(jget "$BODY" usage.completion_tokens)" "$n"
check "refusal null" null "$(jget "$BODY" choices.0.logprobs.refusal)"

# The prompt as the engine sees it, and its next-token logits row.
NL=$'\n'
printf '%s' "<|startoftext|><|im_start|>user${NL}hello<|im_end|>${NL}<|im_start|>assistant${NL}" >"$TMP/p.txt"
"$TIDEGATE_BIN" engine tokenize -m "$MODEL" --text-file "$TMP/p.txt" >"$TMP/p.json" 2>/dev/null
NP=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).length)' "$TMP/p.json")
check "prompt tokens match usage" "$(jget "$BODY" usage.prompt_tokens)" "$NP"
"$TIDEGATE_BIN" engine logits -m "$MODEL" --tokens-file "$TMP/p.json" --prefill "$NP" \
    --rows $((NP - 1)) --out "$TMP/row.f32" 2>/dev/null || bad "engine logits failed"
node - "$TMP/once.json" "$TMP/row.f32" <<'JS' && ok "first token consistent with engine logits" || bad "logprobs differ from engine logits"
const fs = require("fs");
const body = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const buf = fs.readFileSync(process.argv[3]);
const row = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
let mx = -Infinity; for (const v of row) if (v > mx) mx = v;
let s = 0; for (const v of row) s += Math.exp(v - mx);
const lse = mx + Math.log(s);
const lp = Array.from(row, (v) => v - lse).sort((a, b) => b - a);
const first = body.choices[0].logprobs.content[0];
let okk = first.top_logprobs.length === 5;
first.top_logprobs.forEach((t, i) => { if (Math.abs(t.logprob - lp[i]) > 1e-3) okk = false; });
// The sampled token is one of the row's tokens: its logprob is one of them.
if (!lp.some((v) => Math.abs(v - first.logprob) < 1e-3)) okk = false;
// Its text is its bytes.
if (Buffer.from(first.bytes).toString("utf8") !== first.token && !first.token.includes("\ufffd")) okk = false;
console.log(JSON.stringify({ first: first.logprob, top: first.top_logprobs.map((t) => t.logprob), want: lp.slice(0, 5) }));
process.exit(okk ? 0 : 1);
JS

# Streamed: the same tokens and numbers, spread over the chunks.
req lps POST /v1/chat/completions -d "${REQ%\}},\"stream\":true}"
check "stream 200" 200 "$STATUS"
node - "$BODY" "$TMP/once.json" <<'JS' && ok "streamed logprobs == non-streamed" || bad "streamed logprobs differ"
const fs = require("fs");
const once = JSON.parse(fs.readFileSync(process.argv[3], "utf8")).choices[0].logprobs.content;
const got = [];
for (const line of fs.readFileSync(process.argv[2], "utf8").split("\n")) {
  if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
  const ch = JSON.parse(line.slice(6));
  const lp = ch.choices[0] && ch.choices[0].logprobs;
  if (lp && lp.content) got.push(...lp.content);
}
const key = (a) => JSON.stringify(a.map((e) => [e.token, e.logprob.toFixed(5), e.top_logprobs.length]));
console.log(got.length, once.length);
process.exit(key(got) === key(once) ? 0 : 1);
JS

# Without logprobs: null, as before.
req nolp POST /v1/chat/completions -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}'
check "logprobs null when not asked" null "$(jget "$BODY" choices.0.logprobs)"
req bad1 POST /v1/chat/completions -d '{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21}'
expect_error "top_logprobs 21" 400 invalid_value top_logprobs
req bad2 POST /v1/chat/completions -d '{"messages":[{"role":"user","content":"hi"}],"top_logprobs":2}'
expect_error "top_logprobs without logprobs" 400 invalid_value top_logprobs
stop_server
check "server exit 0" 0 "$RC"
finish
