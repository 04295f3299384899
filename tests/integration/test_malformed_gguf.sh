#!/usr/bin/env bash
# Malformed GGUF files, made with `tidegate synth-model` and byte surgery,
# must make `tidegate inspect` (and the model loader, via `generate`) exit
# exactly 1 with a single stderr line naming the bad field.
set -u
BIN=${TIDEGATE_BIN:?TIDEGATE_BIN not set}
T=$(mktemp -d /tmp/tg_malformed.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_fail NAME CMD... -- PATTERN...: exit status 1, one stderr line,
# every pattern present.
expect_fail() {
    local name=$1; shift
    local cmd=()
    while [ "$1" != "--" ]; do cmd+=("$1"); shift; done
    shift
    "${cmd[@]}" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -ne 1 ]; then fail "$name: exit $rc, want 1 ($(head -c 300 "$T/err"))"; return; fi
    local lines; lines=$(wc -l <"$T/err")
    if [ "$lines" -ne 1 ]; then fail "$name: $lines stderr lines: $(head -c 300 "$T/err")"; return; fi
    for p in "$@"; do
        grep -qF -- "$p" "$T/err" || fail "$name: stderr lacks '$p': $(cat "$T/err")"
    done
    echo "ok: $name: $(cat "$T/err")"
}

# u64/u32 little-endian writes at a byte offset.
put_u64() { printf "$(printf '%016x' "$3" | sed -E 's/(..)(..)(..)(..)(..)(..)(..)(..)/\\x\8\\x\7\\x\6\\x\5\\x\4\\x\3\\x\2\\x\1/')" |
    dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
put_u32() { printf "$(printf '%08x' "$3" | sed -E 's/(..)(..)(..)(..)/\\x\4\\x\3\\x\2\\x\1/')" |
    dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# Byte offset of the first occurrence of a string (a tensor name).
find_off() { grep -obUaF -- "$2" "$1" | head -1 | cut -d: -f1; }

BASE=$T/base.gguf
"$BIN" synth-model -o "$BASE" --dims 64,64,1,1,2,300 --attn-layers 1 --type q8_0 ||
    { echo "FAIL: synth-model"; exit 1; }
"$BIN" inspect -m "$BASE" >"$T/out" 2>"$T/err" || fail "base file does not inspect: $(cat "$T/err")"
grep -q 'lfm2.block_count  u32  2' "$T/out" || fail "inspect output lacks block_count"
grep -q 'token_embd.weight .*\[64, 300\]  Q8_0' "$T/out" || fail "inspect output lacks token_embd"
"$BIN" inspect -m "$BASE" --json | grep -q '"tensor_count":' || fail "inspect --json"
SIZE=$(stat -c %s "$BASE")

# Offsets of token_embd_norm.weight's info fields: name, n_dims, dims, type, offset.
NAME=token_embd_norm.weight
N_OFF=$(find_off "$BASE" "$NAME")
NDIMS_OFF=$((N_OFF + ${#NAME}))
TYPE_OFF=$((NDIMS_OFF + 4 + 8))   # 1-D tensor: one dim
OFFS_OFF=$((TYPE_OFF + 4))

mk() { cp "$BASE" "$T/$1.gguf"; echo "$T/$1.gguf"; }

# --- truncation at many points -----------------------------------------------
for n in 0 3 7 12 20 30 100 1000 3000 $((N_OFF + 3)) $((SIZE - 100)) $((SIZE - 1)); do
    F=$T/trunc_$n.gguf
    head -c "$n" "$BASE" >"$F"
    expect_fail "truncated at $n" "$BIN" inspect -m "$F" -- "$F: " " at offset "
done
F=$T/trunc_20.gguf
expect_fail "truncated in kv_count" "$BIN" inspect -m "$F" -- "kv_count at offset 16"
F=$T/trunc_$((SIZE - 100)).gguf
expect_fail "truncated data" "$BIN" inspect -m "$F" -- "tensor blk.1." "past the end"

# --- header fields ------------------------------------------------------------
F=$(mk magic); printf 'GGUX' | dd of="$F" bs=1 seek=0 conv=notrunc status=none
expect_fail "bad magic" "$BIN" inspect -m "$F" -- "magic at offset 0"
F=$(mk version); put_u32 "$F" 4 7
expect_fail "bad version" "$BIN" inspect -m "$F" -- "version at offset 4" "unsupported version 7"
F=$(mk tcount); put_u64 "$F" 8 $((1 << 62))
expect_fail "huge tensor count" "$BIN" inspect -m "$F" -- "tensor_count at offset 8"
F=$(mk kvcount); put_u64 "$F" 16 $((1 << 62))
expect_fail "huge kv count" "$BIN" inspect -m "$F" -- "kv_count at offset 16"
F=$(mk keylen); put_u64 "$F" 24 $((1 << 40))
expect_fail "huge key length" "$BIN" inspect -m "$F" -- "kv[0].key at offset 24" "string length"

# --- tensor info fields -------------------------------------------------------
F=$(mk past); put_u64 "$F" "$OFFS_OFF" $((1 << 40))
expect_fail "offset past end" "$BIN" inspect -m "$F" -- "tensor $NAME at offset $OFFS_OFF" "past the end"
F=$(mk misaligned); put_u64 "$F" "$OFFS_OFF" 8
expect_fail "misaligned offset" "$BIN" inspect -m "$F" -- "tensor $NAME" "alignment"
F=$(mk type); put_u32 "$F" "$TYPE_OFF" 99
expect_fail "unknown tensor type" "$BIN" inspect -m "$F" -- "tensor $NAME at offset $TYPE_OFF" "type id 99"
F=$(mk ndims); put_u32 "$F" "$NDIMS_OFF" 5
expect_fail "n_dims 5" "$BIN" inspect -m "$F" -- "tensor $NAME" "n_dims 5"

# The model loader reports the reader's error the same way.
expect_fail "generate: unknown tensor type" "$BIN" generate -m "$T/type.gguf" -p x -- "type id 99"
expect_fail "generate: huge kv count" "$BIN" generate -m "$T/kvcount.gguf" -p x -- "kv_count"

# --- wrong architecture: valid GGUF, not an LFM2 model -------------------------
F=$T/llama.gguf
"$BIN" synth-model -o "$F" --dims 64,64,1,1,2,300 --arch llama || fail "synth --arch"
"$BIN" inspect -m "$F" >"$T/out" 2>&1 || fail "inspect rejects a well-formed llama file"
grep -q 'general.architecture  str  "llama"' "$T/out" || fail "inspect lacks llama arch"
expect_fail "wrong architecture" "$BIN" generate -m "$F" -p x -- "general.architecture" "llama"

# --- usage errors ---------------------------------------------------------------
"$BIN" inspect >/dev/null 2>&1; [ $? -eq 2 ] || fail "inspect without -m should exit 2"
"$BIN" synth-model -o "$T/x.gguf" --type q3_k >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --type should exit 2"
expect_fail "missing file" "$BIN" inspect -m "$T/nope.gguf" -- "nope.gguf"

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all malformed-GGUF checks passed"
