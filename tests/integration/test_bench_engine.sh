#!/usr/bin/env bash
# `tidegate bench engine` on the tiny fixture model: the --json line carries
# every key issue #11 names, with sane values (positive rates, the file's
# size, four batch sizes, four contexts whose cache grows with context), and
# bad flags / a missing model fail with a usage error. No timing asserted.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
MODEL=$TG_FIXTURES/models/lfm2-tiny-q4_0.gguf

"$TIDEGATE_BIN" bench engine -m "$MODEL" -t 1 --pp 16 --tg 8 --kv f32 --json >"$TMP/b.out" 2>"$TMP/b.err"
check "bench engine: exit 0" 0 "$?"
grep -q 'prefill' "$TMP/b.err" && ok "progress on stderr" || bad "no progress: $(cat "$TMP/b.err")"
tail -1 "$TMP/b.out" >"$TMP/b.json"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const fs = require("fs");
const need = ["model", "type", "threads", "file_bytes", "bytes_per_token", "prefill_tps",
  "decode_tps", "ttft_ms", "load_ms", "peak_rss_mib", "bandwidth_gbs", "roofline_fraction",
  "batch_decode_tps", "mem_profile"];
const errs = [];
for (const k of need) if (!(k in r)) errs.push("missing " + k);
if (r.type !== "Q4_0") errs.push("type " + r.type);
if (r.threads !== 1) errs.push("threads " + r.threads);
if (r.file_bytes !== fs.statSync(process.argv[2]).size) errs.push("file_bytes " + r.file_bytes);
for (const k of ["prefill_tps", "decode_tps", "ttft_ms", "load_ms", "peak_rss_mib", "bandwidth_gbs", "roofline_fraction"])
  if (!(r[k] > 0)) errs.push(k + " not positive: " + r[k]);
// Dense: one decode step reads every matrix and one embedding row, exactly
// the active bytes; never more than the file.
if (!(r.bytes_per_token === r.active_bytes)) errs.push("bytes_per_token " + r.bytes_per_token + " != active_bytes " + r.active_bytes);
if (!(r.bytes_per_token <= r.file_bytes)) errs.push("bytes_per_token above the file size");
for (const b of ["1", "2", "4", "8"]) if (!(r.batch_decode_tps[b] > 0)) errs.push("batch " + b);
// Cache grows with the context actually sized (capped at the model
// context: 4096 for the tiny model, so 16384 repeats 4096).
let prev = 0, prevCtx = 0;
for (const c of ["256", "1024", "4096", "16384"]) {
  const m = r.mem_profile[c];
  const grows = m && (m.n_ctx > prevCtx ? m.cache_bytes_per_seq > prev : m.cache_bytes_per_seq === prev);
  if (!m || !(m.n_ctx <= Number(c)) || !grows || !(m.rss_mib > 0)) errs.push("mem_profile " + c);
  else prev = m.cache_bytes_per_seq, prevCtx = m.n_ctx;
}
if (r.mem_profile["16384"].n_ctx !== 4096) errs.push("16384 not capped at 4096");
if (errs.length) { console.log(errs.join("; ")); process.exit(1); }
' "$TMP/b.json" "$MODEL" >"$TMP/v.out" 2>&1
check "json: keys and values" 0 "$?"
[ -s "$TMP/v.out" ] && echo "$(cat "$TMP/v.out")"

# A mixture of experts: a decode step reads only its chosen experts, so
# bytes_per_token is the active bytes, well below the file.
MOE=$TG_FIXTURES/models/lfm2-tiny-moe-q4_0.gguf
"$TIDEGATE_BIN" bench engine -m "$MOE" -t 1 --pp 8 --tg 4 --json >"$TMP/moe.out" 2>/dev/null
check "bench engine moe: exit 0" 0 "$?"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop());
const e = [];
if (!(r.bytes_per_token === r.active_bytes)) e.push("bytes_per_token " + r.bytes_per_token + " != active " + r.active_bytes);
if (!(r.bytes_per_token < 0.8 * r.file_bytes)) e.push("bytes_per_token " + r.bytes_per_token + " not below the file " + r.file_bytes);
if (e.length) { console.log(e.join("; ")); process.exit(1); }
' "$TMP/moe.out" >"$TMP/vm.out" 2>&1
check "json moe: bytes_per_token = active bytes < file" 0 "$?"
[ -s "$TMP/vm.out" ] && echo "$(cat "$TMP/vm.out")"

"$TIDEGATE_BIN" bench engine -m "$MODEL" --kv f8 >"$TMP/e.out" 2>"$TMP/e.err"
check "bad --kv: exit 2" 2 "$?"
grep -q 'usage' "$TMP/e.err" && ok "bad --kv: usage" || bad "bad --kv: $(cat "$TMP/e.err")"
"$TIDEGATE_BIN" bench engine -m "$TMP/missing.gguf" >"$TMP/m.out" 2>"$TMP/m.err"
check "missing model: exit 1" 1 "$?"
"$TIDEGATE_BIN" bench >"$TMP/n.out" 2>"$TMP/n.err"
check "no benchmark name: exit 2" 2 "$?"

finish
