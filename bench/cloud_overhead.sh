#!/usr/bin/env bash
# The gateway's added latency on the cloud route, and throughput, beside
# Portkey's open-source gateway, against the same mock cloud in one run.
#
#   bench/cloud_overhead.sh [BUILD_DIR]      (default build/release)
#   RATES="1 100 1000" SECONDS_AT="10 5 3" CLOSED=32 CLOSED_SECONDS=3
#
# Four paths to one mock cloud (tests/support/mock_cloud, HTTPS, keep-alive,
# non-streamed chat completions of 9 words):
#   direct              load generator -> mock
#   tidegate            load generator -> tidegate (HTTP) -> mock (HTTPS, libcurl),
#                       journal on (the default: ACCEPTED durable before
#                       dispatch, COMPLETED durable before the answer)
#   tidegate-nojournal  the same with TIDEGATE_JOURNAL=false: the difference
#                       between the two is the journal's share
#   portkey             load generator -> Portkey gateway (HTTP) -> mock (HTTPS)
# Load: bench/cloud_load.mjs, open loop (fixed arrival schedule, latency
# from the due time). Pinned with taskset: the gateway under test on CPU 0,
# the mock and the load generator on CPU 1 (this machine has 2 cores). Each
# rate runs the four paths back to back; added latency =
# gateway percentile - direct percentile of the same rate in this run.
# Throughput: CLOSED requests always in flight for CLOSED_SECONDS.
# Portkey is installed from npm into bench/node (npm install) when missing.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build/release}
BIN=$BUILD/tidegate
MODEL=${TG_MODEL:-$ROOT/tests/fixtures/models/lfm2-tiny-q4_0.gguf}
RATES=${RATES:-"1 100 1000"}
SECONDS_AT=${SECONDS_AT:-"10 5 3"}
CLOSED=${CLOSED:-32}
CLOSED_SECONDS=${CLOSED_SECONDS:-3}
OUT=${OUT:-$(mktemp -d /tmp/tg-bench-cloud.XXXXXX)}
LOAD="taskset -c 1 node $ROOT/bench/cloud_load.mjs"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT

[ -x "$BIN" ] || { echo "no $BIN (scripts/build release)"; exit 1; }
if [ ! -f "$ROOT/bench/node/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
    (cd "$ROOT/bench/node" && npm install --no-audit --no-fund --loglevel=error) || exit 1
fi
PK_VERSION=$(node -p 'require(process.argv[1]).version' "$ROOT/bench/node/node_modules/@portkey-ai/gateway/package.json")

# ---- the mock cloud, CPU 1 --------------------------------------------------
source "$ROOT/tests/support/mock_cloud/mock_cloud.sh"
"$MOCK_CLOUD_DIR/make_certs.sh" "$OUT/mock" >/dev/null || exit 1
taskset -c 1 node "$MOCK_CLOUD_DIR/mock_cloud.mjs" --cert "$OUT/mock/server.pem" --key "$OUT/mock/server.key" \
    --port-file "$OUT/mock/ports" >"$OUT/mock.log" 2>&1 &
PIDS+=($!)
wait_for() { # wait_for FILE: a file with content, 10 s at most
    for _ in $(seq 1 200); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    return 1
}
wait_for "$OUT/mock/ports" || { cat "$OUT/mock.log"; exit 1; }
read -r MPORT _ <"$OUT/mock/ports"
MOCK_URL=https://127.0.0.1:$MPORT/v1

# ---- tidegate, CPU 0: journal on (in $OUT, on the disk /tmp is on) and off --
cat >"$OUT/tg.yaml" <<YAML
cloud:
  - {name: main, base_url: "$MOCK_URL", model: mock-gpt, ca_file: "$OUT/mock/ca.pem"}
YAML
# start_tidegate NAME JOURNAL(true|false) VAR: sets VAR to its port (not in a
# $(...) subshell: its pid must reach PIDS, or the EXIT trap leaves it running)
start_tidegate() {
    (cd "$OUT" && TIDEGATE_JOURNAL=$2 exec taskset -c 0 "$BIN" serve --listen 127.0.0.1:0 -m "$MODEL" \
        --threads 1 -c "$OUT/tg.yaml" --journal-dir "$OUT/journal-$1" >"$OUT/$1.log" 2>&1) &
    PIDS+=($!)
    local port=""
    for _ in $(seq 1 200); do
        port=$(sed -n 's/.* listening addr=[^ ]* port=\([0-9]*\).*/\1/p' "$OUT/$1.log" | head -1)
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { cat "$OUT/$1.log" >&2; return 1; }
    printf -v "$3" '%s' "$port"
}
start_tidegate tidegate true TG_PORT || exit 1
start_tidegate tidegate-nojournal false TGN_PORT || exit 1

# ---- Portkey, CPU 0 ---------------------------------------------------------
PK_PORT=$((20000 + RANDOM % 20000))
(cd "$OUT" && NODE_EXTRA_CA_CERTS=$OUT/mock/ca.pem NODE_ENV=production exec taskset -c 0 \
    node "$ROOT/bench/node/node_modules/@portkey-ai/gateway/build/start-server.js" --port=$PK_PORT --headless \
    >"$OUT/portkey.log" 2>&1) &
PIDS+=($!)
for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$PK_PORT/" && break
    sleep 0.05
done

BODY='{"model":"mock-gpt","max_tokens":16,"messages":[{"role":"user","content":"Tell me about tides"}]}'
run() { # run NAME ARGS...: one load run against NAME, JSON to $OUT/NAME-*.json
    local name=$1
    shift
    case $name in
    direct) $LOAD --url "$MOCK_URL/chat/completions" --ca "$OUT/mock/ca.pem" --body "$BODY" "$@" ;;
    tidegate) $LOAD --url "http://127.0.0.1:$TG_PORT/v1/chat/completions" --body "$BODY" "$@" ;;
    tidegate-nojournal) $LOAD --url "http://127.0.0.1:$TGN_PORT/v1/chat/completions" --body "$BODY" "$@" ;;
    portkey) $LOAD --url "http://127.0.0.1:$PK_PORT/v1/chat/completions" --body "$BODY" \
        --header "x-portkey-provider: openai" --header "x-portkey-custom-host: $MOCK_URL" \
        --header "authorization: Bearer sk-bench" "$@" ;;
    esac
}
# Each path must answer before anything is measured.
PATHS="direct tidegate tidegate-nojournal portkey"
for p in $PATHS; do
    r=$(run "$p" --rate 1 --seconds 1 --warmup 1)
    [[ $r == *'"errors":0'* ]] || { echo "$p does not answer: $r"; tail -5 "$OUT/$p.log" 2>/dev/null; exit 1; }
done

echo "# cloud route overhead, $(date -u +%FT%TZ), $(nproc) cores, $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# tidegate $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), @portkey-ai/gateway $PK_VERSION, node $(node --version)"
set -- $SECONDS_AT
for rate in $RATES; do
    secs=${1:-3}
    shift
    for p in $PATHS; do
        run "$p" --rate "$rate" --seconds "$secs" >"$OUT/$p-$rate.json"
    done
done
for p in $PATHS; do
    run "$p" --closed "$CLOSED" --seconds "$CLOSED_SECONDS" >"$OUT/$p-closed.json"
done

node - "$OUT" "$RATES" "$PATHS" <<'EOF'
const fs = require("fs");
const [dir, rates, pathList] = process.argv.slice(2);
const paths = pathList.split(/\s+/).filter(Boolean);
const j = (f) => JSON.parse(fs.readFileSync(`${dir}/${f}.json`, "utf8"));
const f = (x) => (x === null || x === undefined ? "-" : x.toFixed(3));
console.log("| rate/s | path | ok/errors | p50 ms | p99 ms | added p50 ms | added p99 ms |");
console.log("|---|---|---|---|---|---|---|");
for (const r of rates.split(/\s+/).filter(Boolean)) {
  const d = j(`direct-${r}`);
  for (const p of paths) {
    const x = j(`${p}-${r}`);
    const add = p === "direct" ? ["", ""] : [f(x.p50_ms - d.p50_ms), f(x.p99_ms - d.p99_ms)];
    console.log(`| ${r} | ${p} | ${x.ok}/${x.errors} | ${f(x.p50_ms)} | ${f(x.p99_ms)} | ${add[0]} | ${add[1]} |`);
  }
}
console.log("");
for (const r of rates.split(/\s+/).filter(Boolean)) {
  const [a, b] = [j(`tidegate-${r}`), j(`tidegate-nojournal-${r}`)];
  console.log(`journal's share at ${r}/s (tidegate - tidegate-nojournal): p50 ${f(a.p50_ms - b.p50_ms)} ms, p99 ${f(a.p99_ms - b.p99_ms)} ms`);
}
const c = Object.fromEntries(paths.map((p) => [p, j(`${p}-closed`)]));
console.log("");
console.log(`| throughput, ${c.direct.concurrency} in flight | requests/s | errors |`);
console.log("|---|---|---|");
for (const p of paths) console.log(`| ${p} | ${c[p].rps} | ${c[p].errors} |`);
console.log("");
console.log(`tidegate/portkey throughput ratio: ${(c.tidegate.rps / c.portkey.rps).toFixed(2)}x`);
EOF
echo "raw results: $OUT"
