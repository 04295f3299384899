#!/usr/bin/env bash
# What durable streamed events cost (#9, resumable streams): every event of a
# journaled stream is a CHUNK record sent only once it is durable (group
# commit). Runs the same streams against three gateways in one run:
#   off      journal.enabled false (events sent at once)
#   nosync   journal on, fsync false (records written, no fdatasync)
#   durable  journal on, fsync true (the default)
# and prints, per gateway and concurrency, the client's inter-token gap
# (p50/p99/mean), tokens/s and, for the journaled ones, the gateway's own
# tidegate_stream_event_durable_seconds (mean wait of an event for its
# fdatasync). Added per-token latency = durable gap - off gap.
#   bench/stream_durable.sh [BUILD_DIR]   CONC="1 8" TOKENS=300 ROUNDS=3
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build/release}
BIN=$BUILD/tidegate
MODEL=${TG_MODEL:-$ROOT/tests/fixtures/models/lfm2-tiny-q4_0.gguf}
CONC=${CONC:-"1 8"}
TOKENS=${TOKENS:-300}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$(mktemp -d /tmp/tg-bench-stream.XXXXXX)}
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null' EXIT
[ -x "$BIN" ] || { echo "no $BIN (scripts/build release)"; exit 1; }
echo "journal dir on: $(df -P "$OUT" | awk 'NR==2{print $1" ("$6")"}'), model $(basename "$MODEL")"
for mode in off nosync durable; do
    envs=(TIDEGATE_JOURNAL_DIR="$OUT/j-$mode")
    case $mode in
    off) envs+=(TIDEGATE_JOURNAL=false) ;;
    nosync) envs+=(TIDEGATE_JOURNAL_FSYNC=false) ;;
    esac
    for c in $CONC; do
        # A fresh gateway per row: its histogram holds this row's events only.
        env "${envs[@]}" TIDEGATE_ADMIN_LISTEN=127.0.0.1:0 "$BIN" serve --listen 127.0.0.1:0 -m "$MODEL" \
            --threads 1 >"$OUT/$mode-$c.log" 2>&1 &
        PID=$!
        PORT="" APORT=""
        for _ in $(seq 1 100); do
            PORT=$(sed -n 's/.* listening addr=[^ ]* port=\([0-9]*\).*/\1/p' "$OUT/$mode-$c.log" | head -1)
            APORT=$(sed -n 's/.* admin_listening addr=[^ ]* port=\([0-9]*\).*/\1/p' "$OUT/$mode-$c.log" | head -1)
            [ -n "$PORT" ] && [ -n "$APORT" ] && break
            sleep 0.05
        done
        r=$(node "$ROOT/bench/stream_gaps.mjs" "http://127.0.0.1:$PORT/v1/chat/completions" "$c" "$TOKENS" "$ROUNDS")
        # The gateway's histogram: mean, and p50/p99 as the upper bound of
        # their bucket.
        m=$(curl -s "http://127.0.0.1:$APORT/metrics" | awk '
            /^tidegate_stream_event_durable_seconds_bucket/ {
                match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
                nb++; les[nb] = le; cum[nb] = $2 }
            /^tidegate_stream_event_durable_seconds_sum/ {s=$2}
            /^tidegate_stream_event_durable_seconds_count/ {n=$2}
            function q(p,   i) { for (i = 1; i <= nb; i++) if (cum[i] >= p * n) return les[i] == "+Inf" ? "inf" : 1000 * les[i]; return "-" }
            END {if (n>0) printf "mean=%.3fms p50<=%sms p99<=%sms events=%d", 1000*s/n, q(0.5), q(0.99), n; else printf "-"}')
        echo "$mode conc=$c $r durable_wait: $m"
        kill "$PID"
        wait "$PID" 2>/dev/null
        PID=""
    done
done
