#!/usr/bin/env bash
# Long mode: the full 16-block LFM2-350M shape (random weights) in a
# quantized mix, 1,000-token prompt through prefill + 16 decode steps, on
# whatever build ctest runs (scripts/test --long runs it on ASan+UBSan, where
# any memory error or leak fails the run).
set -euo pipefail
BIN="${TIDEGATE_BIN:?}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"$BIN" synth-model -o "$tmp/m.gguf" --preset 350m --type q4_k_m --seed 7 >/dev/null
# 1016 token ids spread over the vocabulary (skipping the 14 specials)
seq 0 1015 | awk '{ printf "%s%d", (NR>1?",":""), 14 + ($1 * 7919) % 65000 }' > "$tmp/tokens"
"$BIN" engine logits -m "$tmp/m.gguf" --tokens-file "$tmp/tokens" --prefill 1000 \
  --rows 999,1015 --out "$tmp/logits.f32"
size=$(stat -c %s "$tmp/logits.f32")
[ "$size" -eq $((2 * 65536 * 4)) ] || { echo "FAIL: logits file has $size bytes"; exit 1; }
# logits must be finite numbers
od -A n -t f4 -v "$tmp/logits.f32" | tr -s ' ' '\n' | grep -qiE 'nan|inf' && { echo "FAIL: non-finite logits"; exit 1; }
echo "PASS: 350M x16 blocks, 1016 tokens"
