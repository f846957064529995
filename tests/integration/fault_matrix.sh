#!/usr/bin/env bash
# requires: none
# The fault matrix: every simulator fault kind x where it hits (the poll, the
# webhook). Each scenario asserts: the daemon keeps running, the job is not
# lost, its terminal event reaches the exec hook and the webhook exactly once
# (same event id on every webhook attempt), and the simulator's counters show
# the retry, backoff or pause the DESIGN table asks for.
. "$top_srcdir/tests/integration/lib/lib.sh"
# Per-id polling is what this test is about: the list sweep (tested in sweep_v1) is off.
export SWEEP=no

start_sim
RATE=100/s BURST=5 INTERVAL_MIN=100ms INTERVAL_MAX=300ms REQUEST_TIMEOUT=500ms write_conf "
[hook web]
type = webhook
url = $SIM_URL/_sim/sink/matrix
on = embed_job.complete
timeout = 600ms
retry = 200ms 400ms
max_attempts = 6
"
start_daemon
n=0 passed=0

sink_of() { sim GET /_sim/sink | jq -c --arg j "$1" '[.deliveries[] | select((.body | fromjson? | .data.job_id) == $j)]'; }
delivered() {   # both hooks done for job $1
	grep -q " embed_job.complete $1 " "$T/hooks/events" 2>/dev/null &&
		[ "$(sink_of "$1" | jq '[.[] | select(.status >= 200 and .status < 300)] | length')" -ge 1 ]
}

# scenario WHERE FAULT-JSON [pause SECONDS | reload | count N]
scenario() {
	local where=$1 spec=$2 check=${3:-} arg=${4:-}
	n=$((n + 1))
	local id="m$n" name="$where {$spec}"
	sim POST /_sim/jobs "{\"id\":\"$id\",\"timeline\":[{\"status\":\"processing\",\"at\":0},{\"status\":\"complete\",\"at\":0.3}]}" >/dev/null
	sim POST /_sim/reset >/dev/null
	if [ "$where" = poll ]; then
		sim POST /_sim/faults "{$spec,\"job\":\"$id\"}" >/dev/null
	else
		sim POST /_sim/faults "{$spec,\"target\":\"sink\"}" >/dev/null
	fi
	ctl watch "$id" >/dev/null
	if [ "$check" = reload ]; then
		# 501 or 401/403: polling pauses until a reload.
		wait_until ctl_jq '.status.paused != "none"' status --json || fail "$name: no pause"
		sim DELETE /_sim/faults >/dev/null
		kill -HUP "$DAEMON_PID"
	fi
	wait_until delivered "$id" || fail "$name: not delivered (exec: $(grep -c " $id " "$T/hooks/events" || true), webhook: $(sink_of "$id" | jq -c 'map(.status)'))"
	# The counts below are final once nothing is queued, delayed or running (a duplicate would be).
	wait_until deliveries_idle || fail "$name: deliveries still pending"
	ctl status >/dev/null || fail "$name: daemon not answering"
	[ "$(grep -c " embed_job.complete $id " "$T/hooks/events")" = 1 ] || fail "$name: exec hook ran $(grep -c " $id " "$T/hooks/events") times"
	local web; web=$(sink_of "$id")
	if [ "$check" = timeout ]; then
		# The receiver answered after the hook's timeout: the daemon retried, and a
		# receiver that slow sees the delivery twice, with one webhook-id.
		wait_until sh -c "'$CTL' -s '$T/ctl.sock' deliveries --state done --json | jq -e '.deliveries[] | select(.hook == \"web\" and .subject == \"$id\" and .attempts >= 2)'" \
			|| fail "$name: no retry after the timeout: $(ctl deliveries --json | jq -c '.deliveries[] | select(.subject == "'"$id"'")')"
		grep -q "hook web failed on .*embed_job.complete\|hook web failed on evt_.*[Tt]imeout\|timed out" "$T/daemon.log" || fail "$name: timeout not logged"
		web=$(sink_of "$id")
	else
		[ "$(echo "$web" | jq '[.[] | select(.status >= 200 and .status < 300)] | length')" = 1 ] || fail "$name: webhook 2xx $(echo "$web" | jq -c 'map(.status)')"
	fi
	[ "$(echo "$web" | jq 'map(.headers["webhook-id"]) | unique | length')" = 1 ] || fail "$name: webhook ids differ"
	local polls; polls=$(sim GET /_sim/stats | jq --arg j "$id" '.jobs[$j].requests')
	local attempts; attempts=$(echo "$web" | jq length)
	case "$check" in
	count)   # the fault hit `arg` requests, so there were more
		if [ "$where" = poll ]; then [ "$polls" -gt "$arg" ] || fail "$name: $polls polls, fault was not retried"
		else [ "$attempts" -gt "$arg" ] || fail "$name: $attempts webhook attempts, not retried"; fi ;;
	pause)   # nothing inside the Retry-After window
		if [ "$where" = poll ]; then
			local log t; log=$(sim GET /_sim/log)
			t=$(echo "$log" | jq '[.entries[] | select(.[1] == 429 or .[1] == 503)][0][0]')
			[ "$(echo "$log" | jq --argjson t "$t" --argjson w "$((arg * 1000))" '[.entries[] | select(.[0] > $t + 100 and .[0] < $t + $w - 1000)] | length')" = 0 ] \
				|| fail "$name: requests inside the Retry-After window"
		else
			local gap; gap=$(echo "$web" | jq '.[1].t_ms - .[0].t_ms')
			[ "$gap" -ge $(( arg * 1000 - 1100 )) ] || fail "$name: retried after $gap ms, Retry-After ${arg}s"
		fi ;;
	esac
	passed=$((passed + 1))
	ok "$name: delivered once to both hooks ($polls polls, $attempts webhook attempts)"
}

for s in 500 502 504 498 499; do scenario poll "\"kind\":\"status\",\"status\":$s,\"count\":2" count 2; done
scenario poll '"kind":"status","status":404,"count":2' count 2
scenario poll '"kind":"status","status":400,"count":2' count 2
scenario poll '"kind":"status","status":422,"count":2' count 2
scenario poll '"kind":"status","status":429,"retry_after":"2","count":1' pause 2
scenario poll '"kind":"status","status":503,"retry_after_date":3,"count":1' pause 3
scenario poll '"kind":"status","status":429,"count":2' count 2
scenario poll '"kind":"status","status":501' reload
scenario poll '"kind":"status","status":401' reload
for k in drop malformed truncated oversized content_type; do scenario poll "\"kind\":\"$k\",\"count\":2" count 2; done
scenario poll '"kind":"delay","delay":0.8,"count":2' count 2
for s in 500 502 504; do scenario webhook "\"kind\":\"status\",\"status\":$s,\"count\":2" count 2; done
scenario webhook '"kind":"status","status":503,"retry_after":"2","count":1' pause 2
scenario webhook '"kind":"status","status":429,"retry_after_date":2,"count":1' pause 2
scenario webhook '"kind":"drop","count":2' count 2
scenario webhook '"kind":"truncated","count":1' count 1
scenario webhook '"kind":"delay","delay":1.2,"count":1' timeout
for k in malformed oversized content_type; do scenario webhook "\"kind\":\"$k\",\"count\":1"; done
stop_daemon
[ "$passed" -ge 20 ] || fail "only $passed scenarios"
echo "fault matrix: $passed scenarios passed"
