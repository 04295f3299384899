#!/usr/bin/env bash
# `tidegate generate` end to end: the real binary on the fixture models.
#   - greedy output on the F32 tiny model equals the reference continuation
#     (tests/fixtures/reference/tiny-f32/hello.json), detokenized here
#     independently: token strings read from the GGUF by a small reader in
#     node, GPT-2 byte mapping undone, bytes decoded as UTF-8 with U+FFFD for
#     invalid sequences;
#   - seeds: same seed same text, another seed other text; stats on stderr;
#   - a scripted model (synth-model --script) with --chat and --stop;
#   - errors: bad flag (exit 2 + usage), missing model and wrong
#     architecture (exit 1, one stderr line).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
MODEL=$TG_FIXTURES/models/lfm2-tiny-f32.gguf
REF=$TG_FIXTURES/reference/tiny-f32/hello.json
gen() { "$TIDEGATE_BIN" generate --threads 1 "$@"; }

# ------------------------------------------------- greedy = reference ----
cat >"$TMP/detok.js" <<'EOF'
// node detok.js MODEL.gguf REF.json OUT: writes the text of REF's
// continuation tokens (raw bytes) to OUT, and prints its prompt_tokens.
const fs = require("fs");
const [model, refFile, out] = process.argv.slice(2);
const b = fs.readFileSync(model);
let o = 0;
const u32 = () => { const v = b.readUInt32LE(o); o += 4; return v; };
const u64 = () => { const v = Number(b.readBigUInt64LE(o)); o += 8; return v; };
const str = () => { const n = u64(); const s = b.subarray(o, o + n); o += n; return s; };
const SIZE = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const skip = (t) => {
    if (t === 8) { str(); return; }
    if (t === 9) { const et = u32(), n = u64(); for (let i = 0; i < n; i++) skip(et); return; }
    if (!(t in SIZE)) throw new Error("bad gguf type " + t);
    o += SIZE[t];
};
if (b.toString("latin1", 0, 4) !== "GGUF") throw new Error("not gguf");
o = 8;
u64(); // tensors
const nkv = u64();
let tokens = null, types = null;
for (let i = 0; i < nkv; i++) {
    const key = str().toString("utf8");
    const t = u32();
    if (key === "tokenizer.ggml.tokens" && t === 9) {
        u32(); const n = u64(); tokens = [];
        for (let k = 0; k < n; k++) tokens.push(str());
    } else if (key === "tokenizer.ggml.token_type" && t === 9) {
        u32(); const n = u64(); types = [];
        for (let k = 0; k < n; k++) types.push(u32() | 0);
    } else skip(t);
}
if (!tokens || !types) throw new Error("no vocabulary");
// GPT-2 byte-level BPE: printable bytes stand for themselves, the other 68
// byte values were moved to U+0100.. in order.
const unmap = new Map();
let next = 256;
for (let x = 0; x < 256; x++) {
    const keep = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174;
    unmap.set(keep ? x : next++, x);
}
const ref = JSON.parse(fs.readFileSync(refFile, "utf8"));
const bytes = [];
for (const id of ref.continuation) {
    const s = tokens[id];
    if (types[id] === 3 || types[id] === 4) { bytes.push(...s); continue; } // control/user: as text
    for (const ch of s.toString("utf8")) {
        const cp = ch.codePointAt(0);
        if (!unmap.has(cp)) throw new Error("token " + id + " has char U+" + cp.toString(16));
        bytes.push(unmap.get(cp));
    }
}
const text = new TextDecoder("utf-8", { fatal: false }).decode(Uint8Array.from(bytes));
fs.writeFileSync(out, Buffer.from(text, "utf8"));
console.log(JSON.stringify(ref.prompt_tokens));
EOF
want_prompt=$(node "$TMP/detok.js" "$MODEL" "$REF" "$TMP/want.txt") || { bad "reference detokenizer failed"; finish; exit 1; }
printf 'Hello world' >"$TMP/hello.txt"
check "prompt tokenizes to the reference prompt_tokens" "$want_prompt" \
    "$("$TIDEGATE_BIN" engine tokenize -m "$MODEL" --text-file "$TMP/hello.txt" 2>/dev/null)"
# --repeat-penalty 1: plain argmax, as the reference was made.
gen -m "$MODEL" -p "Hello world" -n 16 --temp 0 --repeat-penalty 1 >"$TMP/greedy.out" 2>"$TMP/greedy.err"
check "greedy: exit 0" 0 "$?"
if cmp -s "$TMP/want.txt" "$TMP/greedy.out"; then
    ok "greedy 16 tokens = reference continuation ($(wc -c <"$TMP/want.txt") bytes)"
else
    bad "greedy text differs: want $(od -An -c "$TMP/want.txt" | tr -s ' ' | head -c 300) got $(od -An -c "$TMP/greedy.out" | tr -s ' ' | head -c 300)"
fi
grep -q '^prompt tokens: 8, generated tokens: 16 (finish: length)' "$TMP/greedy.err" &&
    ok "greedy stats: 8 prompt, 16 generated, length" || bad "greedy stats: $(cat "$TMP/greedy.err")"

# ------------------------------------------------------------- seeds ----
gen -m "$MODEL" -p "Hello world" -n 24 --temp 1 --seed 11 >"$TMP/s11a.out" 2>/dev/null
gen -m "$MODEL" -p "Hello world" -n 24 --temp 1 --seed 11 >"$TMP/s11b.out" 2>/dev/null
gen -m "$MODEL" -p "Hello world" -n 24 --temp 1 --seed 12 >"$TMP/s12.out" 2>/dev/null
[ -s "$TMP/s11a.out" ] && cmp -s "$TMP/s11a.out" "$TMP/s11b.out" && ok "same seed: identical text" ||
    bad "same seed: texts differ or empty"
cmp -s "$TMP/s11a.out" "$TMP/s12.out" && bad "seeds 11 and 12 gave the same 24 tokens" ||
    ok "another seed: other text"

gen -m "$MODEL" -p "Hello world" -n 5 --temp 0 >"$TMP/n5a.out" 2>"$TMP/n5a.err"
gen -m "$MODEL" -p "Hello world" -n 5 --temp 0 >"$TMP/n5b.out" 2>"$TMP/n5b.err"
cmp -s "$TMP/n5a.out" "$TMP/n5b.out" && ok "-n 5 --temp 0 twice: identical" || bad "-n 5 --temp 0 differs"
st=$(grep "^prompt tokens:" "$TMP/n5a.err" | head -1)
if [[ $st == "prompt tokens: 8, generated tokens: 5 (finish: length)" ]]; then
    ok "-n 5: stats report exactly 5 generated tokens"
elif [[ $st =~ generated\ tokens:\ [0-4]\ \(finish:\ stop\) ]]; then
    ok "-n 5: stopped early by end-of-generation ($st)"
else
    bad "-n 5 stats: '$st'"
fi

# ---------------------------------------------------- scripted model ----
"$TIDEGATE_BIN" synth-model -o "$TMP/script.gguf" --script "The answer is 42." >/dev/null ||
    bad "synth-model --script failed"
gen -m "$TMP/script.gguf" -p "What is it?" --chat >"$TMP/script.out" 2>"$TMP/script.err"
check "scripted --chat: exit 0" 0 "$?"
check "scripted --chat: exact text" "The answer is 42." "$(cat "$TMP/script.out")"
check "scripted --chat: no trailing newline" 17 "$(wc -c <"$TMP/script.out")"
grep -q 'finish: stop' "$TMP/script.err" && ok "scripted: finish stop (end of turn)" ||
    bad "scripted stats: $(cat "$TMP/script.err")"
gen -m "$TMP/script.gguf" -p "What is it?" --chat --stop " is" >"$TMP/stop.out" 2>/dev/null
check "--stop ' is': text before the stop string" "The answer" "$(cat "$TMP/stop.out")"
check "--stop: nothing after it" 10 "$(wc -c <"$TMP/stop.out")"
gen -m "$TMP/script.gguf" -p "What is it?" --chat --stop "nowhere" --stop "42" >"$TMP/stop2.out" 2>/dev/null
check "two --stop, the second one hits" "The answer is " "$(cat "$TMP/stop2.out")"

# ------------------------------------------------------------ errors ----
gen -m "$MODEL" -p x --bogus 1 >"$TMP/bad.out" 2>"$TMP/bad.err"
check "bad flag: exit 2" 2 "$?"
grep -q '^usage: tidegate generate' "$TMP/bad.err" && ok "bad flag: usage line" ||
    bad "bad flag: no usage: $(cat "$TMP/bad.err")"
check "bad flag: nothing on stdout" 0 "$(wc -c <"$TMP/bad.out")"

gen -m "$TMP/missing.gguf" -p x >"$TMP/miss.out" 2>"$TMP/miss.err"
check "missing model: exit 1" 1 "$?"
check "missing model: one stderr line" 1 "$(wc -l <"$TMP/miss.err")"
grep -q 'missing.gguf' "$TMP/miss.err" && ok "missing model: names the file" || bad "missing: $(cat "$TMP/miss.err")"

"$TIDEGATE_BIN" synth-model -o "$TMP/llama.gguf" --arch llama >/dev/null || bad "synth-model --arch failed"
gen -m "$TMP/llama.gguf" -p x >"$TMP/arch.out" 2>"$TMP/arch.err"
check "wrong architecture: exit 1" 1 "$?"
check "wrong architecture: one stderr line" 1 "$(wc -l <"$TMP/arch.err")"
grep -q 'llama' "$TMP/arch.err" && ok "wrong architecture: says which" || bad "arch: $(cat "$TMP/arch.err")"

finish
