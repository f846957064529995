#!/usr/bin/env bash
# requires: none
# Every fault kind of the simulator, per job or for all, by count or time window.
# Time windows and Retry-After dates follow the manual clock, which moves only
# when the test advances it: a window is open until the test closes it.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual
sim POST /_sim/jobs '{"jobs":[{"id":"j1"},{"id":"j2"}]}' >/dev/null

code() { curl -s -o "$T/body" -D "$T/hdr" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$SIM_URL/v1/embed-jobs/$1" || true; }

# Status faults with Retry-After in seconds, for a count of requests.
for s in 429 503; do
	sim POST /_sim/faults "{\"kind\":\"status\",\"status\":$s,\"retry_after\":\"7\",\"count\":2}" >/dev/null
	[ "$(code j1)" = $s ] && grep -qi '^Retry-After: 7' "$T/hdr" || fail "$s #1"
	[ "$(code j2)" = $s ] || fail "$s #2"
	[ "$(code j1)" = 200 ] || fail "$s: fault did not end after its count"
done
ok "429/503 with Retry-After seconds, count-limited"

# Retry-After as an HTTP-date, 5 s ahead of the wall-clock time the simulator
# shows for its clock (start + sim time), also after the clock has moved.
sim_advance 90s >/dev/null
sim POST /_sim/faults '{"kind":"status","status":429,"retry_after_date":5,"count":1}' >/dev/null
[ "$(code j1)" = 429 ] || fail "429 date"
ra=$(grep -i '^Retry-After:' "$T/hdr" | cut -d' ' -f2- | tr -d '\r')
wall=$(sim GET /_sim/clock | jq -r '.wall_ms / 1000 | floor')
[ "$(date -d "$ra" +%s)" = $(( wall + 5 )) ] || fail "Retry-After date $ra is not 5 s after the sim's $(date -u -d "@$wall")"
ok "Retry-After as HTTP-date ($ra)"

# Every other status of the contract.
for s in 500 502 504 498 499 501 400 422 404; do
	sim POST /_sim/faults "{\"kind\":\"status\",\"status\":$s,\"count\":1}" >/dev/null
	[ "$(code j1)" = $s ] || fail "status $s"
done
ok "500/502/504/498/499/501/400/422/404"

# Per job: only that job is hit.
sim POST /_sim/faults '{"kind":"status","status":500,"job":"j2","count":1}' >/dev/null
[ "$(code j1)" = 200 ] || fail "per-job fault hit another job"
[ "$(code j2)" = 500 ] || fail "per-job fault missed its job"
ok "per-job faults"

# Time window: open for 500 ms of sim time, closed at the millisecond it ends.
sim POST /_sim/faults '{"kind":"status","status":503,"for":0.5}' >/dev/null
[ "$(code j1)" = 503 ] && [ "$(code j2)" = 503 ] || fail "window fault"
sim_advance 499ms >/dev/null
[ "$(code j1)" = 503 ] || fail "window fault ended before its 500 ms"
sim_advance 1ms >/dev/null
[ "$(code j1)" = 200 ] || fail "window fault did not end"
ok "time-window faults"

# Delay: real time even with the manual clock (it exercises a client's own
# timeout); a lower bound only, which load cannot break.
sim POST /_sim/faults '{"kind":"delay","delay":0.4,"count":1}' >/dev/null
t0=$(now_ms); [ "$(code j1)" = 200 ] || fail "delay status"; t1=$(now_ms)
[ $((t1 - t0)) -ge 380 ] || fail "delay: answered after $((t1 - t0)) ms"
ok "delay ($((t1 - t0)) ms)"

# Dropped connection: no answer at all.
sim POST /_sim/faults '{"kind":"drop","count":1}' >/dev/null
rc=0; curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" "$SIM_URL/v1/embed-jobs/j1" || rc=$?
[ $rc = 52 ] || fail "drop: curl exit $rc, expected 52 (empty reply)"
ok "dropped connection"

# Malformed JSON, truncated body, oversized body, wrong content type.
sim POST /_sim/faults '{"kind":"malformed","count":1}' >/dev/null
[ "$(code j1)" = 200 ] && ! jq -e . "$T/body" >/dev/null 2>&1 || fail "malformed body parses"
ok "malformed JSON"

sim POST /_sim/faults '{"kind":"truncated","count":1}' >/dev/null
rc=0; curl -s -o "$T/body" -H "Authorization: Bearer $TOKEN" "$SIM_URL/v1/embed-jobs/j1" || rc=$?
[ $rc = 18 ] || fail "truncated: curl exit $rc, expected 18 (partial file)"
ok "truncated body"

sim POST /_sim/faults '{"kind":"oversized","count":1}' >/dev/null
[ "$(code j1)" = 200 ] || fail "oversized status"
sz=$(stat -c %s "$T/body"); [ "$sz" -gt 1048576 ] || fail "oversized body only $sz bytes"
ok "oversized body ($sz bytes)"

sim POST /_sim/faults '{"kind":"content_type","count":1}' >/dev/null
[ "$(code j1)" = 200 ] && grep -qi '^Content-Type: text/html' "$T/hdr" || fail "content type"
ok "wrong content type"

# A delay on the dataset endpoint: the answer is the normal one, late (a lower bound only).
sim POST /_sim/faults '{"kind":"delay","target":"datasets","delay":0.4,"count":1}' >/dev/null
t0=$(now_ms)
c=$(curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$SIM_URL/v1/datasets/ds-out-j1") || true
t1=$(now_ms)
[ "$c" = 200 ] && jq -e '.dataset.id == "ds-out-j1"' "$T/body" >/dev/null || fail "dataset delay: $c"
[ $((t1 - t0)) -ge 380 ] || fail "dataset delay: answered after $((t1 - t0)) ms"
ok "delay on datasets ($((t1 - t0)) ms)"

# Trickle: the headers at once, then the body at bytes_per_second. A read cut off after 3 s has
# the status and the whole Content-Length, but at 1 byte/s only a few bytes of the body, however
# loaded the machine (the simulator gives no byte before it is due).
sim POST /_sim/batches '{"batches":[{"id":"tb1"},{"id":"tb2"},{"id":"tb3"}]}' >/dev/null
for t in list:/v1/embed-jobs v2_list:/v2/batches datasets:/v1/datasets/ds-out-j1; do
	target=${t%%:*} path=${t#*:}
	sim POST /_sim/faults "{\"kind\":\"trickle\",\"target\":\"$target\",\"bytes_per_second\":1,\"count\":1}" >/dev/null
	rc=0
	c=$(curl -s -D "$T/hdr" -o "$T/body" --max-time 3 -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
		"$SIM_URL$path") || rc=$?
	len=$(sed -n 's/^Content-Length: *\([0-9]*\).*/\1/Ip' "$T/hdr")
	got=$(stat -c %s "$T/body")
	[ "$rc" = 28 ] && [ "$c" = 200 ] || fail "trickle on $target: curl exit $rc, status $c (expected 28: cut off, 200)"
	[ "${len:-0}" -gt 100 ] && [ "$got" -lt 16 ] || fail "trickle on $target: $got of ${len:-?} body bytes in the bounded read"
done
# Only its target: the per-id poll beside it is answered at once.
[ "$(code j1)" = 200 ] || fail "trickle spilled onto a poll"
ok "trickle: headers, then a few body bytes (list, v2 list, datasets)"

# A trickle that ends: the whole body, the same as without it, and the connection kept alive for the next request.
curl -s -H "Authorization: Bearer $TOKEN" -o "$T/plain" "$SIM_URL/v1/embed-jobs"
sim POST /_sim/faults '{"kind":"trickle","target":"any","bytes_per_second":50000,"count":2}' >/dev/null
conns=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Accept-Encoding: identity' -w '%{http_code}:%{num_connects} ' \
	-o "$T/b1" "$SIM_URL/v1/embed-jobs" -o "$T/b2" "$SIM_URL/v2/batches")
[ "$conns" = "200:1 200:0 " ] || fail "trickle: status:connects $conns (expected the second on the same connection)"
cmp -s "$T/plain" "$T/b1" && jq -e '.batches | length == 3' "$T/b2" >/dev/null || fail "trickle: bodies differ from the normal answers"
sim POST /_sim/faults '{"kind":"trickle","bytes_per_second":0}' | jq -e '.message | test("bytes_per_second")' >/dev/null ||
	fail "trickle: a zero rate accepted"
ok "trickle: whole body, connection kept alive; a bad rate refused"

# Faults on the webhook sink, not on the API.
sim POST /_sim/faults '{"kind":"status","status":500,"target":"sink","count":1}' >/dev/null
[ "$(code j1)" = 200 ] || fail "sink fault hit the API"
c=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'webhook-id: m1' -d '{"x":1}' "$SIM_URL/_sim/sink/a"); [ "$c" = 500 ] || fail "sink fault: $c"
c=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'webhook-id: m2' -d '{"x":2}' "$SIM_URL/_sim/sink/a"); [ "$c" = 200 ] || fail "sink after fault: $c"
sim GET /_sim/sink | jq -e '(.deliveries|length)==2 and .deliveries[0].headers["webhook-id"]=="m1" and .deliveries[1].body=="{\"x\":2}" and .deliveries[0].status==500' >/dev/null || fail "sink records"
sim DELETE /_sim/sink >/dev/null
sim GET /_sim/sink | jq -e '(.deliveries|length)==0' >/dev/null || fail "sink clear"
ok "webhook sink, with faults"

# Clearing faults; bad fault specs are refused clearly.
sim POST /_sim/faults '{"kind":"status","status":500}' >/dev/null
sim DELETE /_sim/faults >/dev/null
[ "$(code j1)" = 200 ] || fail "faults not cleared"
sim POST /_sim/faults '{"kind":"explode"}' | jq -e '.message|test("needs \"kind\"")' >/dev/null || fail "bad kind"
sim POST /_sim/faults '{"kind":"status"}' | jq -e '.message|test("needs \"status\"")' >/dev/null || fail "bad status"
ok "clearing faults; bad specs refused"

# Counters: statuses and peak concurrent connections.
st=$(sim GET '/_sim/stats?jobs=0')
echo "$st" | jq -e '.status["429"]>=3 and .status["503"]>=4 and .status["500"]>=2 and .connections.peak>=1' >/dev/null || fail "counters: $st"
ok "counters after faults"
