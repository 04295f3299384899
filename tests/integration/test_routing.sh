#!/usr/bin/env bash
# The routing decision end to end, against the mock cloud over TLS:
#   - hybrid.yaml (the default with a cloud upstream): a simple prompt to the
#     edge, a complex one to the cloud, with x-tidegate-route/-score/-reason;
#   - health shifting the decision: a fake procfs/sysfs tree (battery low on
#     battery power, a hot thermal zone, CPU saturated) and a really full
#     engine queue (slow model, one sequence, long answers running);
#   - the cascade: a random-weight 350M-shape model (flat) escalates to the
#     cloud, a scripted model (confident) keeps its answer; streamed too;
#   - hot reload of a valid and an invalid file (file watch, SIGHUP, POST
#     /admin/reload) while requests run: none fails, the invalid file keeps
#     the old policy and shows in /admin/state, /readyz stays 200;
#   - `policy explain` with the live /admin/state health gives the same
#     reason and score as the live response headers.
# Health changes are waited for by polling /admin/state (the sampler runs
# every 50 ms here), never by fixed sleeps. About 30 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/mock_cloud/mock_cloud.sh"
NODE_DIR=$(cd "$(dirname "$0")/node" && pwd)
SRC=${TG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
REPLY="The tide turns twice a day near the harbour."

start_mock_cloud "$TMP/mock" || exit 1
SERVER_PIDS+=("$MOCK_PID")

# ---- a fake device: procfs/sysfs under $ROOT --------------------------------
ROOT=$TMP/root
mkdir -p "$ROOT/proc" "$ROOT/sys/class/thermal/thermal_zone0" \
    "$ROOT/sys/class/power_supply/BAT0" "$ROOT/sys/class/power_supply/AC"
put() { printf '%s\n' "$2" >"$ROOT/$1.tmp" && mv "$ROOT/$1.tmp" "$ROOT/$1"; }
JIFFIES=1000
cpu() { # cpu BUSY_SHARE_PERCENT: advances /proc/stat by 1000 jiffies
    local busy=$(($1 * 10)) idle=$((1000 - $1 * 10))
    CPU_BUSY=$((${CPU_BUSY:-0} + busy)) CPU_IDLE=$((${CPU_IDLE:-0} + idle))
    put proc/stat "cpu  $CPU_BUSY 0 0 $CPU_IDLE 0 0 0 0 0 0
cpu0 0 0 0 0 0 0 0 0 0 0"
}
cpu 10
put proc/loadavg "0.20 0.10 0.05 1/100 1"
put proc/meminfo "MemTotal: 8000000 kB
MemAvailable: 6000000 kB"
put sys/class/thermal/thermal_zone0/temp 41000
put sys/class/power_supply/BAT0/type Battery
put sys/class/power_supply/BAT0/capacity 88
put sys/class/power_supply/AC/type Mains
put sys/class/power_supply/AC/online 1

conf() { # conf FILE [policy line]
    cat >"$1" <<YAML
routing:
  breaker: {failures: 1000, failure_rate_pct: 100, window: 64, min_requests: 64}
  offline_after: 1000
  health_root: "$ROOT"
  health_interval_ms: 50
${2:-}
cloud:
  - name: main
    base_url: "$MOCK_URL"
    model: mock-gpt
    ca_file: "$MOCK_CA"
YAML
}

j() { jget "$TMP/$1.json" "$2"; }
sse() { node "$NODE_DIR/sse_client.mjs" "$BASE/v1/chat/completions" "$2" "${@:3}" >"$TMP/$1.json"; }
chat() { # chat NAME TEXT [extra json]: non-streamed tidegate/auto request
    local body
    body=$(node -e 'const [t,x]=process.argv.slice(1);const o={model:"tidegate/auto",max_tokens:32,messages:[{role:"user",content:t}]};if(x)Object.assign(o,JSON.parse(x));console.log(JSON.stringify(o))' "$2" "${3:-}")
    printf '%s' "$body" >"$TMP/$1.req.json"
    req "$1" POST /v1/chat/completions -H 'content-type: application/json' -d "$body"
    ROUTE=$(header x-tidegate-route "$HDR")
    REASON=$(header x-tidegate-reason "$HDR")
    SCORE=$(header x-tidegate-score "$HDR")
}
state() { curl -s --max-time 10 "$ADMIN_BASE/admin/state" >"$TMP/state.json"; }
wait_health() { # wait_health KEY VALUE: polls /admin/state until health.KEY == VALUE
    local i got
    for i in $(seq 1 200); do
        state
        got=$(jget "$TMP/state.json" "health.$1")
        [ "$got" = "$2" ] && return 0
        sleep 0.05
    done
    bad "health.$1 never became $2 (last '$got')"
    return 1
}

SIMPLE="hi, thanks!"
COMPLEX="Prove rigorously that there are infinitely many primes of the form 4k+3, then derive a bound on their density and explain each step of the argument in detail."

# ---- hybrid.yaml by default: score decides ----------------------------------
conf "$TMP/a.yaml"
start_server hybrid -- -c "$TMP/a.yaml"
state
check "state: built-in hybrid policy" "(built-in policies/hybrid.yaml)" "$(jget "$TMP/state.json" policy.source)"
chat simple "$SIMPLE"
check "simple: 200" 200 "$STATUS"
check "simple: to the edge" engine "$ROUTE"
[[ $REASON == "rule=simple; score=0."* ]] && ok "simple: reason ($REASON)" || bad "simple: reason '$REASON'"
awk -v s="$SCORE" 'BEGIN{exit !(s < 0.5)}' && ok "simple: score $SCORE < 0.5" || bad "simple: score '$SCORE'"
chat complex "$COMPLEX"
check "complex: 200" 200 "$STATUS"
check "complex: to the cloud" cloud:main "$ROUTE"
check "complex: cloud's answer" "$REPLY" "$(jget "$BODY" choices.0.message.content)"
[[ $REASON == "rule=complex; score=0."*" -> cloud"* ]] && ok "complex: reason ($REASON)" || bad "complex: reason '$REASON'"
awk -v s="$SCORE" 'BEGIN{exit !(s >= 0.5)}' && ok "complex: score $SCORE >= 0.5" || bad "complex: score '$SCORE'"
chat hinted "$SIMPLE" "" && true
req hint POST /v1/chat/completions -H 'content-type: application/json' -H 'x-tidegate-hint: cloud' \
    -d "{\"model\":\"tidegate/auto\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"$SIMPLE\"}]}"
check "x-tidegate-hint: cloud moves a simple prompt" cloud:main "$(header x-tidegate-route "$HDR")"

# ---- policy explain matches the live decision (same request, same health) ---
state
node -e 'const s=require(process.argv[1]);console.log(JSON.stringify(s.health))' "$TMP/state.json" >"$TMP/h.json"
for name in simple complex; do
    chat "$name" "$([ $name = simple ] && echo "$SIMPLE" || echo "$COMPLEX")"
    "$TIDEGATE_BIN" policy explain "$SRC/policies/hybrid.yaml" --request "$TMP/$name.req.json" \
        --health "$TMP/h.json" >"$TMP/explain.txt"
    check "explain $name: reason = live header" "$REASON" "$(sed -n 's/^reason: //p' "$TMP/explain.txt")"
    check "explain $name: score = live header" "$SCORE" "$(sed -n 's/^score: //p' "$TMP/explain.txt")"
done

# ---- health shifts the decision ---------------------------------------------
put sys/class/power_supply/AC/online 0
put sys/class/power_supply/BAT0/capacity 9 # written last: seen last
wait_health battery_pct 9
chat battery "$SIMPLE"
check "battery low on battery: simple prompt to the cloud" cloud:main "$ROUTE"
[[ $REASON == "rule=device-strained;"* ]] && ok "battery: reason ($REASON)" || bad "battery: reason '$REASON'"
put sys/class/power_supply/AC/online 1
put sys/class/power_supply/BAT0/capacity 8
wait_health battery_pct 8
chat charging "$SIMPLE"
check "battery low but charging: edge" engine "$ROUTE"
put sys/class/thermal/thermal_zone0/temp 93500
wait_health thermal_max_c 93.5
chat hot "$SIMPLE"
check "hot thermal zone: cloud" cloud:main "$ROUTE"
put sys/class/thermal/thermal_zone0/temp 41000
wait_health thermal_max_c 41
cpu 100
wait_health cpu_util 1
chat cpu "$SIMPLE"
check "CPU saturated: cloud" cloud:main "$ROUTE"
cpu 10
wait_health cpu_util 0.1
chat calm "$SIMPLE"
check "calm device: edge again" engine "$ROUTE"
stop_server

# ---- engine queue full: a slow model with one sequence and a 1-slot queue ---
"$TIDEGATE_BIN" synth-model -o "$TMP/slow.gguf" --preset 350m --layers 2 --type q4_0 --seed 3 >/dev/null
MODEL_SAVE=$MODEL
MODEL=$TMP/slow.gguf
start_server queue TIDEGATE_MAX_ACTIVE=1 TIDEGATE_QUEUE_CAPACITY=1 -- -c "$TMP/a.yaml"
MODEL=$MODEL_SAVE
long='{"model":"tidegate/edge","max_tokens":4000,"stream":true,"messages":[{"role":"user","content":"tell me a story"}]}'
# One runs (wait until it does), the next waits in the one-slot queue: full.
curl -s -N --max-time 120 "$BASE/v1/chat/completions" -H 'content-type: application/json' -d "$long" >/dev/null &
L1=$!
wait_health engine_queue_depth 1
curl -s -N --max-time 120 "$BASE/v1/chat/completions" -H 'content-type: application/json' -d "$long" >/dev/null &
L2=$!
wait_health engine_queue_frac 1
chat queue "$SIMPLE"
check "engine queue full: simple prompt to the cloud" cloud:main "$ROUTE"
kill "$L1" "$L2" 2>/dev/null
wait "$L1" "$L2" 2>/dev/null
stop_server

# ---- the cascade ------------------------------------------------------------
cat >"$TMP/cascade.yaml" <<'YAML'
rules:
  - name: edge-cascade
    target: edge
    fallbacks: [cloud]
    cascade: {tokens: 4, min_mean_logprob: -1.0}
YAML
conf "$TMP/c.yaml" "  policy: \"$TMP/cascade.yaml\""
# Random weights at the real 350M shape give flat distributions (mean
# logprob near -9); the tiny fixture's are peaked, so it is not used here.
MODEL_SAVE=$MODEL
MODEL=$TMP/slow.gguf
start_server cascade -- -c "$TMP/c.yaml"
MODEL=$MODEL_SAVE
chat flat "$SIMPLE"
check "cascade, random model: 200" 200 "$STATUS"
check "cascade, random model: escalated to the cloud" cloud:main "$ROUTE"
check "cascade, random model: the cloud's answer" "$REPLY" "$(jget "$BODY" choices.0.message.content)"
[[ $REASON == *"escalated"* ]] && ok "cascade: reason says so ($REASON)" || bad "cascade: reason '$REASON'"
grep -q 'cascade_escalated' "$TMP/cascade.log" && ok "cascade: access log line" || bad "cascade: no log line"
sse flats "{\"model\":\"tidegate/auto\",\"stream\":true,\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":\"$SIMPLE\"}]}"
check "cascade streamed: escalated" cloud:main "$(j flats headers.x-tidegate-route)"
check "cascade streamed: only the cloud's text" "$REPLY" "$(j flats text)"
check "cascade streamed: one [DONE]" 1 "$(j flats done)"
curl -s "$ADMIN_BASE/metrics" | grep -q 'tidegate_routing_cascade_escalations_total{rule="edge-cascade"} [1-9]' &&
    ok "metrics: escalations counted" || bad "metrics: no escalation count"
stop_server
"$TIDEGATE_BIN" synth-model -o "$TMP/yes.gguf" --script "Yes, the harbour is open today." >/dev/null
MODEL_SAVE=$MODEL
MODEL=$TMP/yes.gguf
start_server cascade2 -- -c "$TMP/c.yaml"
MODEL=$MODEL_SAVE
chat sure "$SIMPLE" '{"max_tokens":20}'
check "cascade, scripted model: kept on the edge" engine "$ROUTE"
check "cascade, scripted model: its answer" "Yes, the harbour is open today." "$(jget "$BODY" choices.0.message.content)"
sse sures "{\"model\":\"tidegate/auto\",\"stream\":true,\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":\"$SIMPLE\"}]}"
check "cascade streamed, scripted: edge" engine "$(j sures headers.x-tidegate-route)"
check "cascade streamed, scripted: whole text" "Yes, the harbour is open today." "$(j sures text)"
stop_server

# ---- hot reload under load --------------------------------------------------
cp "$SRC/policies/hybrid.yaml" "$TMP/live.yaml"
conf "$TMP/r.yaml" "  policy: \"$TMP/live.yaml\""
start_server reload -- -c "$TMP/r.yaml"
load() { # load N: N requests, 4 at a time; writes one status per line
    local i
    for i in $(seq 1 "$1"); do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 "$BASE/v1/chat/completions" \
            -H 'content-type: application/json' \
            -d '{"model":"tidegate/auto","max_tokens":4,"messages":[{"role":"user","content":"hello there"}]}' &
        if [ $((i % 4)) = 0 ]; then wait; fi
    done
    wait
}
load 40 >"$TMP/load.txt" &
LOADER=$!
# 1: a valid new file through the file watch (write and rename).
sed 's/name: simple/name: simple-v2/' "$SRC/policies/hybrid.yaml" >"$TMP/live.tmp" && mv "$TMP/live.tmp" "$TMP/live.yaml"
for _ in $(seq 1 200); do state; [ "$(jget "$TMP/state.json" policy.reloads)" = 1 ] && break; sleep 0.05; done
check "file watch: reloaded" 1 "$(jget "$TMP/state.json" policy.reloads)"
# 2: an invalid file: kept the old policy, error in state, readyz still 200.
printf 'rules:\n  - {name: broken, target: moon}\n' >"$TMP/live.tmp" && mv "$TMP/live.tmp" "$TMP/live.yaml"
for _ in $(seq 1 200); do state; [ "$(jget "$TMP/state.json" policy.reload_errors)" -ge 1 ] 2>/dev/null && break; sleep 0.05; done
[[ $(jget "$TMP/state.json" policy.last_error) == *"live.yaml:2:"*"unknown target 'moon'"* ]] &&
    ok "invalid file: error in /admin/state" || bad "invalid file: last_error '$(jget "$TMP/state.json" policy.last_error)'"
req readyz GET /readyz
check "invalid file: /readyz still 200" 200 "$STATUS"
areq reload POST /admin/reload
check "POST /admin/reload with an invalid file: 422" 422 "$STATUS"
grep -q 'policy_reload_failed' "$TMP/reload.log" && ok "invalid file: logged" || bad "invalid file: not logged"
chat during "$SIMPLE"
[[ $REASON == "rule=simple-v2;"* ]] && ok "old (valid) policy still decides" || bad "after invalid: '$REASON'"
# 3: valid again, by SIGHUP and by POST /admin/reload.
sed 's/name: simple/name: simple-v3/' "$SRC/policies/hybrid.yaml" >"$TMP/live.tmp" && mv "$TMP/live.tmp" "$TMP/live.yaml"
kill -HUP "$PID"
areq reload2 POST /admin/reload
check "POST /admin/reload: 200" 200 "$STATUS"
chat after "$SIMPLE"
[[ $REASON == "rule=simple-v3;"* ]] && ok "new policy decides ($REASON)" || bad "after reload: '$REASON'"
wait "$LOADER"
check "under load: 40 requests answered" 40 "$(wc -l <"$TMP/load.txt" | tr -d ' ')"
check "under load: none failed" 40 "$(grep -c '^200$' "$TMP/load.txt")"
curl -s "$ADMIN_BASE/metrics" >"$TMP/metrics.txt"
grep -q 'tidegate_routing_decisions_total{rule="simple' "$TMP/metrics.txt" && ok "metrics: decisions by rule" || bad "metrics: decisions"
grep -q 'tidegate_routing_score_bucket' "$TMP/metrics.txt" && ok "metrics: score histogram" || bad "metrics: score histogram"
stop_server
check "clean exit" 0 "$RC"

echo "$CHECKS checks, $FAILS failed"
[ "$FAILS" -eq 0 ]
