#!/usr/bin/env bash
# bench/vs_llama.sh: our engine and llama.cpp side by side on the same GGUF
# files and thread count, interleaved (ours, theirs, ours, theirs, ...; best
# of each), printing the ratio table of issue #11.
#
#   LLAMA_CPP_BIN=/path/with/llama-bench/and/llama-batched-bench \
#     bench/vs_llama.sh [-t THREADS] [--pp 128] [--tg 128] [--rounds 2] MODEL.gguf...
#
# Models: the MODEL arguments, else $MODELS (space-separated paths), else
# the 350M shape in Q4_0, Q4_K_M and Q8_0 synthesized into $TMPDIR
# (`tidegate synth-model --preset 350m`). The LFM2-8B-A1B mixture of
# experts: `tidegate synth-model --preset 8b-a1b --type q4_0 -o F` (4.7 GB),
# then pass F; its rows add the bytes our decode step reads beside the
# active weights. BATCH_TG (default 32) sets llama-batched-bench's decode
# steps per batch size (fewer keep a slow model's run short). Measure on a
# quiet machine: under load llama-bench's own spread reaches +-100%.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TG="${TIDEGATE_BIN:-$ROOT/build/release/tidegate}"
: "${LLAMA_CPP_BIN:?set LLAMA_CPP_BIN to the folder holding llama-bench and llama-batched-bench}"
LB="$LLAMA_CPP_BIN/llama-bench"
LBB="$LLAMA_CPP_BIN/llama-batched-bench"
threads=2 pp=128 tg=128 rounds=2
models=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) threads="$2"; shift 2 ;;
    --pp) pp="$2"; shift 2 ;;
    --tg) tg="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) models+=("$1"); shift ;;
  esac
done
if [ ${#models[@]} -eq 0 ] && [ -n "${MODELS:-}" ]; then
  read -r -a models <<<"$MODELS"
fi
for f in "${models[@]}"; do
  [ -f "$f" ] || { echo "vs_llama: no model file $f" >&2; exit 2; }
done
for b in "$TG" "$LB" "$LBB"; do
  [ -x "$b" ] || { echo "vs_llama: $b is not an executable" >&2; exit 2; }
done
work="${TMPDIR:-/tmp}/tg-vs-llama-$(id -u)"
mkdir -p "$work"
if [ ${#models[@]} -eq 0 ]; then
  for q in q4_0 q4_k_m q8_0; do
    f="$work/lfm2-350m-$q.gguf"
    [ -f "$f" ] || "$TG" synth-model --preset 350m --type "$q" -o "$f" >&2
    models+=("$f")
  done
fi

out="$work/results.jsonl"
: > "$out"
for r in $(seq 1 "$rounds"); do
  for f in "${models[@]}"; do
    name="$(basename "$f")"
    echo "round $r: ours on $name" >&2
    line="$("$TG" bench engine -m "$f" -t "$threads" --pp "$pp" --tg "$tg" --kv f16 --json 2>/dev/null | tail -1)"
    echo "{\"who\":\"ours\",\"file\":\"$name\",\"r\":$line}" >> "$out"
    echo "round $r: llama-bench on $name" >&2
    "$LB" -m "$f" -t "$threads" -p "$pp" -n "$tg" -r 2 -o jsonl 2>/dev/null |
      sed "s/^/{\"who\":\"llama-bench\",\"file\":\"$name\",\"r\":/; s/\$/}/" >> "$out"
    echo "round $r: llama-batched-bench on $name" >&2
    "$LBB" -m "$f" -t "$threads" -c 4096 -b 2048 -ub 512 -npp "$pp" -ntg "${BATCH_TG:-32}" -npl 1,2,4,8 \
      --output-format jsonl 2>/dev/null | grep '^{' |
      sed "s/^/{\"who\":\"llama-batched\",\"file\":\"$name\",\"r\":/; s/\$/}/" >> "$out"
  done
done

python3 - "$out" "$threads" "$pp" "$tg" <<'PY'
import json, sys
path, threads, pp, tg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
best = {}
def put(k, v):
    if v and v > best.get(k, 0): best[k] = v
for line in open(path):
    try: d = json.loads(line)
    except ValueError: continue
    f, r = d["file"], d["r"]
    if d["who"] == "ours":
        put((f, "ours", "pp"), r["prefill_tps"]); put((f, "ours", "tg"), r["decode_tps"])
        for b in ("1", "2", "4", "8"): put((f, "ours", "b" + b), r["batch_decode_tps"][b])
        best[(f, "ours", "load_ms")] = min(best.get((f, "ours", "load_ms"), 1e18), r["load_ms"])
        put((f, "ours", "bw"), r["bandwidth_gbs"]); put((f, "ours", "rss"), r["peak_rss_mib"])
        best[(f, "ours", "bpt")] = r.get("bytes_per_token", 0)
        best[(f, "ours", "active")] = r.get("active_bytes", 0)
        best[(f, "ours", "file")] = r.get("file_bytes", 0)
    elif d["who"] == "llama-bench":
        if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0: put((f, "llama", "pp"), r["avg_ts"])
        if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0: put((f, "llama", "tg"), r["avg_ts"])
    elif d["who"] == "llama-batched":
        put((f, "llama", "b%d" % r["pl"]), r["speed_tg"])
files = sorted({k[0] for k in best})
print("| file | measure | ours | llama.cpp | ratio |")
print("|---|---|---|---|---|")
rows = [("pp", "prefill, %d-token batch (tok/s)" % pp), ("tg", "decode, 1 sequence (tok/s)"),
        ("b4", "decode, 4 sequences total (tok/s)"), ("b8", "decode, 8 sequences total (tok/s)")]
for f in files:
    for k, label in rows:
        o, l = best.get((f, "ours", k), 0), best.get((f, "llama", k), 0)
        print("| %s | %s | %.1f | %.1f | %s |" % (f, label, o, l, ("%.2fx" % (o / l)) if o and l else "-"))
    single, b8 = best.get((f, "ours", "tg"), 0), best.get((f, "ours", "b8"), 0)
    print("| %s | batched 8 / our single | %.1f | - | %s |" % (f, b8, ("%.2fx" % (b8 / single)) if single else "-"))
    print("| %s | load (ms), peak RSS (MiB) | %.0f, %.0f | - | - |" % (f, best.get((f, "ours", "load_ms"), 0), best.get((f, "ours", "rss"), 0)))
    bpt, act, fb = (best.get((f, "ours", k), 0) for k in ("bpt", "active", "file"))
    if bpt and fb and bpt < 0.9 * fb:  # a mixture of experts: a token reads a part of the file
        print("| %s | bytes read per decode token (MiB): ours, active weights, file | %.1f, %.1f, %.1f | - | %.3fx active |"
              % (f, bpt / 2**20, act / 2**20, fb / 2**20, bpt / act if act else 0))
bws = [v for k, v in best.items() if k[2] == "bw"]
print("\nthreads %s; read bandwidth in the same run %.1f GB/s; best of each over the rounds" % (threads, max(bws) if bws else 0))
PY
