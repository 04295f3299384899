#!/usr/bin/env bash
# `tidegate engine logits` from outside: the rows it writes for a fixture case
# match the reference truth within the fixture bound, a JSON --tokens-file and
# a --tokens list give the same bytes, one prefill batch and token-by-token
# decode give the same bytes (row independence), and bad input exits 2 (flags)
# or 1 (errors) with one line on stderr.
set -uo pipefail
BIN=$(realpath "${TIDEGATE_BIN:-$(dirname "$0")/../../build/release/tidegate}")
FX=${TG_FIXTURES:-$(cd "$(dirname "$0")/../fixtures" && pwd)}
TMP=$(mktemp -d /tmp/tg-logits.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
FAILS=0
ok() { echo "ok   $*"; }
bad() { FAILS=$((FAILS + 1)); echo "FAIL $*"; }

MODEL=$FX/models/lfm2-tiny-f32.gguf
REF=$FX/reference/tiny-f32/hello.json
# hello: 8 prompt tokens + 16 continuation, rows 0..23 stored.
ids() { tr -d ' \n' < "$REF" | sed -n "s/.*\"$1\":\[\([0-9,]*\)\].*/\1/p"; }
PROMPT=$(ids prompt_tokens)
CONT=$(ids continuation)
ROWS=$(ids rows)
STD=$(tr -d ' \n' < "$REF" | sed -n 's/.*"truth_std":\([0-9.e+-]*\).*/\1/p')
LERR=$(tr -d ' \n' < "$REF" | sed -n 's/.*"llamacpp_err":\([0-9.e+-]*\).*/\1/p')
TOKS="$PROMPT,$CONT"
NP=$(echo "$PROMPT" | tr ',' '\n' | wc -l)
NROWS=$(echo "$ROWS" | tr ',' '\n' | wc -l)

"$BIN" engine logits -m "$MODEL" --tokens "$TOKS" --prefill "$NP" --rows "$ROWS" \
    --out "$TMP/a.f32" --threads 2 || bad "logits run failed"
size=$(stat -c %s "$TMP/a.f32")
[ "$size" = $((NROWS * 1024 * 4)) ] && ok "output is $NROWS rows x 1024 floats" || bad "size $size"

# Max |engine - truth| / truth_std within max(1.25 * llamacpp_err, 2e-3).
paste <(od -An -v -f -w4 "$TMP/a.f32") <(od -An -v -f -w4 "$FX/reference/tiny-f32/hello.truth.f32") |
    awk -v std="$STD" -v lerr="$LERR" '
        { d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; n++ }
        END { err = m / std; b = 1.25 * lerr; if (b < 2e-3) b = 2e-3;
              printf "err %.3e bound %.3e over %d logits\n", err, b, n;
              exit !(n > 0 && err <= b) }' && ok "matches truth" || bad "exceeds the fixture bound"

printf '[%s]\n' "$(echo "$TOKS" | sed 's/,/, /g')" > "$TMP/toks.json"
"$BIN" engine logits -m "$MODEL" --tokens-file "$TMP/toks.json" --prefill "$NP" --rows "$ROWS" \
    --out "$TMP/b.f32" --kernels auto --kv f32 && cmp -s "$TMP/a.f32" "$TMP/b.f32" &&
    ok "--tokens-file JSON == --tokens" || bad "--tokens-file differs"
echo "$TOKS" | tr ',' ' ' > "$TMP/toks.txt"
"$BIN" engine logits -m "$MODEL" --tokens-file "$TMP/toks.txt" --prefill 0 --rows "$ROWS" \
    --out "$TMP/c.f32" --threads 1 && cmp -s "$TMP/a.f32" "$TMP/c.f32" &&
    ok "prefill 0 (all decode) == prefill $NP, bitwise" || bad "decode differs from prefill"
"$BIN" engine logits -m "$MODEL" --tokens "$TOKS" --prefill 24 --rows 3,23 --out "$TMP/d.f32" &&
    cmp -s "$TMP/d.f32" <(dd if="$TMP/a.f32" bs=4096 skip=3 count=1 status=none;
                          dd if="$TMP/a.f32" bs=4096 skip=23 count=1 status=none) &&
    ok "rows subset inside one prefill" || bad "rows subset differs"

expect() { # expect CODE DESCRIPTION ARGS...
    local want=$1 desc=$2; shift 2
    "$BIN" engine logits "$@" > /dev/null 2> "$TMP/err"
    local got=$?
    if [ "$got" = "$want" ] && [ -s "$TMP/err" ]; then ok "$desc -> exit $got: $(head -1 "$TMP/err")"
    else bad "$desc: want exit $want, got $got"; fi
}
expect 2 "unknown flag" -m "$MODEL" --tokens 1 --prefill 1 --rows 0 --out "$TMP/x" --bogus 1
expect 2 "missing --rows" -m "$MODEL" --tokens 1 --prefill 1 --out "$TMP/x"
expect 2 "bad --kernels" -m "$MODEL" --tokens 1 --prefill 1 --rows 0 --out "$TMP/x" --kernels fast
expect 2 "both token sources" -m "$MODEL" --tokens 1 --tokens-file "$TMP/toks.txt" --prefill 1 --rows 0 --out "$TMP/x"
expect 1 "rows not increasing" -m "$MODEL" --tokens 1,2,3 --prefill 3 --rows 2,1 --out "$TMP/x"
expect 1 "row past the end" -m "$MODEL" --tokens 1,2,3 --prefill 3 --rows 3 --out "$TMP/x"
expect 1 "prefill past the end" -m "$MODEL" --tokens 1,2,3 --prefill 4 --rows 0 --out "$TMP/x"
expect 1 "token out of vocab" -m "$MODEL" --tokens 1,99999 --prefill 2 --rows 1 --out "$TMP/x"
expect 1 "missing model" -m "$TMP/nope.gguf" --tokens 1 --prefill 1 --rows 0 --out "$TMP/x"
echo 'not a model' > "$TMP/junk.gguf"
expect 1 "junk model" -m "$TMP/junk.gguf" --tokens 1 --prefill 1 --rows 0 --out "$TMP/x"
echo '[1, 2, x]' > "$TMP/bad.json"
expect 1 "bad tokens file" -m "$MODEL" --tokens-file "$TMP/bad.json" --prefill 1 --rows 0 --out "$TMP/x"

[ "$FAILS" = 0 ] && echo "PASS" || echo "$FAILS FAILED"
exit $((FAILS != 0))
