#!/usr/bin/env bash
# /metrics counts every response exactly once, also the ones the HTTP server
# makes by itself before any route sees the request (413, 431, malformed
# 400; label route="-"), and the tokens of a stream whose client went away.
# Real binary, real sockets, curl.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

# A 350M-width synthetic model decodes slowly enough that a stream is still
# running when its client gives up (see test_api.sh, server E).
"$TIDEGATE_BIN" synth-model -o "$TMP/slow.gguf" --preset 350m --layers 2 --type q4_0 --seed 3 \
    >/dev/null || { echo "synth-model failed"; exit 1; }
MODEL=$TMP/slow.gguf
start_server m TIDEGATE_MAX_BODY_BYTES=4096 TIDEGATE_MAX_HEADERS=16
echo "server on port $PORT"

# metric SERIES: value of the exposition line `SERIES VALUE`, or "absent".
metric() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print "absent" }' "$BODY"; }
reqs() { echo "tidegate_http_requests_total{route=\"$1\",status=\"$2\"}"; }

# 413: body over the limit (refused from Content-Length, never read).
head -c 10000 /dev/zero | tr '\0' 'a' >"$TMP/big.json"
req big POST /v1/chat/completions -H 'content-type: application/json' --data-binary @"$TMP/big.json"
expect_error "oversized body" 413 request_too_large

# 431: more headers than allowed.
hdrs=()
for i in $(seq 1 30); do hdrs+=(-H "X-Pad-$i: v"); done
req many GET /healthz "${hdrs[@]}"
check "too many headers: status" 431 "$STATUS"

# 400: not HTTP at all (no client would send it, so a raw socket).
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf '\x01\x02 garbage\r\n\r\n' >&3
answer=$(timeout 5 head -c 12 <&3)
exec 3<&- 3>&-
check "garbage: status line" "HTTP/1.1 400" "$answer"

# A stream whose client leaves after ~2 s: counted as 499, and the tokens it
# consumed and produced so far still count.
curl -sN --max-time 2 "$BASE/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":3000,"stream":true}' >"$TMP/cut.sse"
grep -q '^data: {' "$TMP/cut.sse" && ok "cut stream received chunks" || bad "cut stream got nothing"
for _ in $(seq 1 40); do
    req rz GET /readyz
    [ "$(jget "$BODY" active)" = 0 ] && break
    sleep 0.1
done

areq scrape1 GET /metrics
check "metrics 200" 200 "$STATUS"
check "413 counted once" 1 "$(metric "$(reqs - 413)")"
check "431 counted once" 1 "$(metric "$(reqs - 431)")"
check "400 counted once" 1 "$(metric "$(reqs - 400)")"
check "413 not under the chat route" absent "$(metric "$(reqs /v1/chat/completions 413)")"
check "cut stream counted as 499" 1 "$(metric "$(reqs /v1/chat/completions 499)")"
check "no chat 200" absent "$(metric "$(reqs /v1/chat/completions 200)")"
check "server-made answers in the duration histogram" 3 \
    "$(metric 'tidegate_request_duration_seconds_count{route="-"}')"
tin=$(metric 'tidegate_tokens_total{direction="in"}')
tout=$(metric 'tidegate_tokens_total{direction="out"}')
[ "$tin" != absent ] && [ "$tin" -gt 0 ] 2>/dev/null && ok "aborted stream's prompt tokens counted ($tin)" ||
    bad "tokens in: $tin"
[ "$tout" != absent ] && [ "$tout" -gt 0 ] 2>/dev/null && ok "aborted stream's output tokens counted ($tout)" ||
    bad "tokens out: $tout"
grep -q "id=.* status=413 " "$LOG" && ok "413 in the access log" || bad "413 not in the access log"

# A scrape is counted after it is sent: the second one sees the first.
check "first scrape not yet counted" absent "$(metric "$(reqs /metrics 200)")"
areq scrape2 GET /metrics
check "second scrape sees the first" 1 "$(metric "$(reqs /metrics 200)")"
check "413 still 1" 1 "$(metric "$(reqs - 413)")"

stop_server
check "server exit 0" 0 "$RC"
if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$LOG"; then bad "sanitizer report"; else ok "no sanitizer reports"; fi
finish
