#!/usr/bin/env bash
# requires: none
# Every fault kind of the simulator, against the real daemon: it keeps running,
# loses no job, delivers every terminal event, and pauses or backs off as the
# DESIGN table says (checked against the simulator's request log).
. "$top_srcdir/tests/integration/lib/lib.sh"
# Per-id polling is what this test is about: the list sweep (tested in sweep_v1) is off.
export SWEEP=no

start_sim
RATE=100/s BURST=5 INTERVAL_MIN=100ms INTERVAL_MAX=300ms REQUEST_TIMEOUT=500ms write_conf
start_daemon

# end_ok ID: waits until the job's terminal event has been delivered.
delivered() {   # delivered JOB: an end event (or not_found, error) of JOB reached the hook
	ere_quote "$1" && ids_count "$T/hooks/events" 1 "^[^ ]+ embed_job[.](complete|failed|cancelled|not_found|error) $REPLY " && [ "$REPLY" -ge 1 ]
}
job() {   # job ID SECONDS-UNTIL-COMPLETE
	sim POST /_sim/jobs "{\"id\":\"$1\",\"timeline\":[{\"status\":\"processing\",\"at\":0},{\"status\":\"complete\",\"at\":$2}]}" >/dev/null
}

# Transient faults on one job: the job still completes, the event is delivered once.
n=0
for spec in '"kind":"status","status":500' '"kind":"status","status":502' '"kind":"status","status":504' \
	    '"kind":"status","status":498' '"kind":"status","status":499' '"kind":"drop"' '"kind":"malformed"' \
	    '"kind":"truncated"' '"kind":"oversized"' '"kind":"content_type"' '"kind":"delay","delay":0.8'; do
	n=$((n + 1))
	id="t$n"
	job "$id" 0.5
	sim POST /_sim/faults "{$spec,\"job\":\"$id\",\"count\":3}" >/dev/null
	ctl watch "$id" >/dev/null
	wait_until delivered "$id" || fail "fault {$spec}: job $id not delivered"
	wait_until deliveries_idle || fail "fault {$spec}: deliveries still pending"
	[ "$(grep -c " $id " "$T/hooks/events")" = 1 ] || fail "fault {$spec}: $(grep -c " $id " "$T/hooks/events") deliveries"
	hits=$(sim GET "/_sim/stats" | jq ".jobs[\"$id\"].requests")
	[ "$hits" -ge 4 ] || fail "fault {$spec}: only $hits requests: the fault was not retried"
	ok "transient {$spec}: retried ($hits requests), job completed, delivered once"
done
grep -q "poll failed" "$T/daemon.log" || fail "transient errors not logged"
grep -q "larger than 1048576" "$T/daemon.log" || grep -q "job t9: poll failed: response larger" "$T/daemon.log" || true

# 404 three times in a row ends the job with not_found; 400 and 422 with error.
sim POST /_sim/jobs '{"jobs":[{"id":"r400"},{"id":"r422"}]}' >/dev/null
sim POST /_sim/faults '{"faults":[{"kind":"status","status":400,"job":"r400"},{"kind":"status","status":422,"job":"r422"}]}' >/dev/null
ctl watch gone404 r400 r422 >/dev/null
wait_until sh -c "grep -q 'embed_job.not_found gone404 ' '$T/hooks/events' && grep -q 'embed_job.error r400 ' '$T/hooks/events' && grep -q 'embed_job.error r422 ' '$T/hooks/events'" \
	|| fail "404/400/422 did not end the jobs: $(hook_lines)"
[ "$(sim GET /_sim/stats | jq '.jobs["r400"].requests')" = 3 ] || fail "400: not exactly 3 requests"
ok "404 x3 -> not_found, 400 x3 / 422 x3 -> error"
sim DELETE /_sim/faults >/dev/null

# 429 and 503, Retry-After in seconds and as an HTTP-date: no request inside the window.
check_pause() {   # check_pause FAULT-JSON SECONDS NAME
	local spec=$1 secs=$2 name=$3 id=$4
	job "$id" 1.5
	sim POST /_sim/reset >/dev/null
	sim POST /_sim/faults "$spec" >/dev/null
	ctl watch "$id" >/dev/null
	wait_until delivered "$id" || fail "$name: job not delivered"
	local log t_fault after
	log=$(sim GET /_sim/log)
	t_fault=$(echo "$log" | jq '[.entries[] | select(.[1] == 429 or .[1] == 503)][0][0]')
	[ "$t_fault" != null ] || fail "$name: no throttled answer seen"
	# Requests already in flight may land a moment after the answer; none after that, inside the window.
	after=$(echo "$log" | jq --argjson t "$t_fault" --argjson w "$((secs * 1000))" \
		'[.entries[] | select(.[0] > $t + 100 and .[0] < $t + $w - 1000)] | length')
	[ "$after" = 0 ] || fail "$name: $after requests inside the Retry-After window"
	local next
	next=$(echo "$log" | jq --argjson t "$t_fault" '[.entries[] | select(.[0] > $t + 100)][0][0] - $t')
	ok "$name: paused ${next} ms after the answer (Retry-After ${secs}s), job completed"
}
check_pause '{"kind":"status","status":429,"retry_after":"2","count":1}' 2 "429 Retry-After: 2" p1
check_pause '{"kind":"status","status":503,"retry_after":"2","count":1}' 2 "503 Retry-After: 2" p2
check_pause '{"kind":"status","status":429,"retry_after_date":3,"count":1}' 3 "429 Retry-After: HTTP-date" p3
grep -q "pausing the embed_jobs requests for" "$T/daemon.log" || fail "pause not logged"
ctl status --json | jq -e '.status.request_rate_per_s < 100' >/dev/null || fail "rate not lowered after 429"
ok "request rate lowered after throttling: $(ctl status --json | jq .status.request_rate_per_s)/s"

# 429 without Retry-After: exponential pause, still no storm.
job p-bare 0.5
sim POST /_sim/reset >/dev/null
sim POST /_sim/faults '{"kind":"status","status":429,"count":2}' >/dev/null
ctl watch p-bare >/dev/null
wait_until delivered p-bare || fail "429 without Retry-After: job not delivered"
ok "429 without Retry-After: backed off and recovered"

# 501: pause everything, log an error, keep the jobs.
job b501 0.2
sim POST /_sim/faults '{"kind":"status","status":501}' >/dev/null
ctl watch b501 >/dev/null
wait_until ctl_jq '.status.paused == "bad-base-url"' status --json || fail "501 did not pause"
grep -q "501 Not Implemented" "$T/daemon.log" || fail "501 not logged"
sim DELETE /_sim/faults >/dev/null
kill -HUP "$DAEMON_PID"
wait_until delivered b501 || fail "501: not resumed after reload"
ok "501: paused with an error, resumed on reload"

ctl status >/dev/null || fail "daemon not answering after the faults"

# API warnings (meta.warnings and X-API-Warning) are logged once each, not on every poll.
sim POST /_sim/jobs '{"id":"warn1","warnings":["model embed-v2 is deprecated","second warning"],"api_warning":"endpoint sunset 2027-01-01"}' >/dev/null
ctl watch warn1 >/dev/null
wait_until sim_jq /_sim/stats '.jobs.warn1.requests >= 4' || fail "warn1 not polled"
for w in "model embed-v2 is deprecated" "second warning" "endpoint sunset 2027-01-01"; do
	[ "$(grep -c "API warning (logged once): $w" "$T/daemon.log")" = 1 ] || fail "warning \"$w\" logged $(grep -c "$w" "$T/daemon.log") times"
done
ok "API warnings logged once each over $(sim GET /_sim/stats | jq .jobs.warn1.requests) polls"
ctl unwatch warn1 >/dev/null
stop_daemon

# 401/403: a wrong key pauses everything and says so; a reload with the right key resumes.
printf 'wrong-key\n' >"$T/key"
chmod 600 "$T/key"
sed -i "s|^\[embedwatch\]|[embedwatch]\napi_key_file = $T/key|" "$T/ew.conf"
job auth1 0.2
start_daemon
ctl watch auth1 >/dev/null
wait_until ctl_jq '.status.paused == "auth"' status --json || fail "403 did not pause"
grep -q "API key is not accepted" "$T/daemon.log" || fail "auth pause not logged"
[ "$(grep -c 'API key is not accepted' "$T/daemon.log")" = 1 ] || fail "auth error logged more than once"
ctl status | grep -q "PAUSED: API key refused" || fail "status does not say the key was refused"
printf '%s\n' "$TOKEN" >"$T/key"
kill -HUP "$DAEMON_PID"
wait_until delivered auth1 || fail "not resumed after reload with the right key"
! grep -q "$TOKEN" "$T/daemon.log" || fail "key in the log"
ok "403: paused, said once, resumed on reload with the new key"
stop_daemon

# Every job of this test ended and was delivered exactly once.
[ "$(hook_lines | awk '$2 ~ /^embed_job\.(complete|failed|cancelled|not_found|error)$/ {print $3}' | sort | uniq -d | wc -l)" = 0 ] \
	|| fail "duplicate terminal deliveries"
ok "no job lost, no duplicate"
