# Shared helpers for the gateway integration tests (sourced, not run).
# Starts real `tidegate serve` processes on ephemeral ports and checks HTTP
# answers with curl; JSON is read with node (already needed by the SDK tests).

TIDEGATE_BIN=$(realpath "${TIDEGATE_BIN:-$(dirname "$0")/../../build/tidegate}")
TG_FIXTURES=${TG_FIXTURES:-$(cd "$(dirname "$0")/../fixtures" && pwd)}
MODEL=$TG_FIXTURES/models/lfm2-tiny-q4_0.gguf
TMP=$(mktemp -d /tmp/tg-integ.XXXXXX)
# The journal is on by default: every gateway a test starts keeps it under
# this test's TMP (start_server gives each name its own directory), never in
# the user's ~/.local/state, where one gateway's lock would keep out the next.
export XDG_STATE_HOME=$TMP/state
FAILS=0
CHECKS=0
declare -a SERVER_PIDS=()

cleanup() {
    for p in "${SERVER_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [ "${KEEP_TMP:-0}" = 1 ] || [ "$FAILS" -ne 0 ]; then
        echo "logs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); echo "ok   $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL $*"; }
check() { # check DESCRIPTION WANT GOT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi
}

# start_server NAME [VAR=value ...] [-- extra serve args]: sets PORT, PID.
# Environment assignments configure it (TIDEGATE_*), as an operator would.
start_server() {
    local name=$1
    shift
    local envs=() args=()
    while [ $# -gt 0 ]; do
        if [ "$1" = "--" ]; then shift; args=("$@"); break; fi
        envs+=("$1")
        shift
    done
    LOG=$TMP/$name.log
    # Run from $TMP so a ./config/tidegate.yaml in the caller's directory
    # cannot change what is tested.
    (cd "$TMP" && exec env TIDEGATE_SHUTDOWN_GRACE_MS=${GRACE:-3000} \
        TIDEGATE_JOURNAL_DIR="$TMP/journal-$name" "${envs[@]}" \
        "$TIDEGATE_BIN" serve --listen 127.0.0.1:0 -m "$MODEL" --threads 1 "${args[@]}" \
        >"$LOG" 2>&1) &
    PID=$!
    SERVER_PIDS+=("$PID")
    PORT=""
    for _ in $(seq 1 200); do
        PORT=$(sed -n 's/.* listening addr=[^ ]* port=\([0-9]*\).*/\1/p' "$LOG" | head -1)
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$PORT" ]; then
        echo "server $name did not start:"
        cat "$LOG"
        exit 1
    fi
    BASE=http://127.0.0.1:$PORT
    # The admin listener (/metrics, /admin/*): its own port, logged once.
    ADMIN_PORT=$(sed -n 's/.* admin_listening addr=[^ ]* port=\([0-9]*\).*/\1/p' "$LOG" | head -1)
    ADMIN_BASE=http://127.0.0.1:$ADMIN_PORT
}

# stop_server: SIGTERM and wait; sets RC.
stop_server() {
    kill -TERM "$PID"
    RC=0
    wait "$PID" || RC=$?
}

# req NAME METHOD PATH [curl args...]: STATUS, files $TMP/NAME.body/.hdr
# (against $BASE; areq: the same against the admin listener)
req() {
    local name=$1 method=$2 path=$3
    shift 3
    STATUS=$(curl -s -X "$method" -o "$TMP/$name.body" -D "$TMP/$name.hdr" -w '%{http_code}' \
        --max-time 60 "$@" "${REQ_BASE:-$BASE}$path")
    BODY=$TMP/$name.body
    HDR=$TMP/$name.hdr
}

areq() { REQ_BASE=$ADMIN_BASE req "$@"; }

# jget FILE PATH: prints the value at a dotted path ("error.code",
# "choices.0.message.content"); objects as compact JSON, missing or null as
# "null", "<not json>" when the file does not parse. jq when installed
# (fast), else node.
jget() {
    if command -v jq >/dev/null; then
        local filter="" k
        IFS=. read -ra keys <<<"$2"
        for k in "${keys[@]}"; do
            if [[ $k =~ ^[0-9]+$ ]]; then filter+="[$k]"; else filter+="[\"$k\"]"; fi
        done
        jq -rc ".$filter // null" "$1" 2>/dev/null || echo "<not json>"
        return
    fi
    node -e '
const fs = require("fs");
let v;
try { v = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch (e) { console.log("<not json>"); process.exit(0); }
for (const k of process.argv[2].split(".").filter(Boolean)) v = v == null ? undefined : v[/^\d+$/.test(k) ? Number(k) : k];
console.log(v == null ? "null" : typeof v === "object" ? JSON.stringify(v) : String(v));
' "$1" "$2"
}

# header NAME FILE: value of a response header (case-insensitive), or "".
header() {
    grep -i "^$1:" "$2" | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'
}

# expect_error NAME STATUS CODE [PARAM]: checks an error answer's shape.
expect_error() {
    local name=$1 want_status=$2 want_code=$3 want_param=${4:-}
    check "$name: status" "$want_status" "$STATUS"
    check "$name: error.code" "$want_code" "$(jget "$BODY" error.code)"
    local msg type
    msg=$(jget "$BODY" error.message)
    type=$(jget "$BODY" error.type)
    if [ -n "$msg" ] && [ "$msg" != null ] && [ "$type" != null ]; then
        ok "$name: error has message and type ($type)"
    else
        bad "$name: error JSON lacks message/type: $(cat "$BODY")"
    fi
    if [ -n "$want_param" ]; then check "$name: error.param" "$want_param" "$(jget "$BODY" error.param)"; fi
    local rid
    rid=$(header x-request-id "$HDR")
    if [[ $rid =~ ^req_[0-9a-f]{32}$ ]]; then ok "$name: x-request-id"; else bad "$name: x-request-id '$rid'"; fi
}

finish() {
    echo "$CHECKS checks, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}
