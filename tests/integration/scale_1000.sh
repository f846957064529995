#!/usr/bin/env bash
# requires: none
# 1,000 jobs watched: every terminal event delivered exactly once, the rate
# limit never exceeded (the simulator's request log), a clean stop.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
jobs_json 1000 j- | sim POST /_sim/jobs "$(cat)" | jq -e '.created == 1000' >/dev/null || fail "create jobs"
RATE=400/s BURST=20 INTERVAL_MIN=200ms INTERVAL_MAX=1s MAX_IN_FLIGHT=32 write_conf
start_daemon

seq 0 999 | sed 's/^/j-/' | ctl watch --batch big - | grep -q "watching 1000 new jobs" || fail "watch"
ctl wait --batch big --timeout "${EW_LIMIT}s" >"$T/wait.out" || [ $? -eq 1 ] || fail "wait"
[ "$(wc -l <"$T/wait.out")" = 1000 ] || fail "wait listed $(wc -l <"$T/wait.out") jobs"
wait_until hook_has_ids 1 ' batch\.done ' || fail "batch.done not delivered"
# batch.done can finish before member deliveries still queued behind the concurrency cap: the
# counts below are final once nothing is queued, delayed or running.
wait_until deliveries_idle || fail "deliveries still pending: $(status_field deliveries_pending)"

# Exactly one terminal event per job, one delivery per event.
term=$(hook_lines | awk '$2 ~ /embed_job\.(complete|failed|cancelled)$/')
[ "$(echo "$term" | wc -l)" = 1000 ] || fail "$(echo "$term" | wc -l) terminal deliveries, expected 1000"
[ "$(echo "$term" | awk '{print $3}' | sort -u | wc -l)" = 1000 ] || fail "a job got two terminal events"
[ "$(hook_lines | awk '{print $1}' | sort | uniq -d | wc -l)" = 0 ] || fail "an event was delivered twice"
for o in complete failed cancelled; do
	want=$(jq -n '[range(1000)] | map(select(. % 3 == (if "'$o'" == "complete" then 0 elif "'$o'" == "failed" then 1 else 2 end))) | length')
	got=$(echo "$term" | awk -v e="embed_job.$o" '$2 == e' | wc -l)
	[ "$got" = "$want" ] || fail "$o: $got events, expected $want"
done
ok "1000 jobs: 1000 terminal events, each delivered exactly once"

# The payload of a delivery is the event document.
f=$(ls "$T/hooks/payloads" | sed -n 1p)
jq -e '(.type|startswith("embed_job.") or .=="batch.done") and (.id|startswith("evt_")) and (.timestamp|length>0) and (.data|type=="object")' \
	"$T/hooks/payloads/$f" >/dev/null || fail "payload shape"
jq -se 'map(select(.type=="embed_job.complete"))[0].data | .job_id and .status=="complete" and .previous_status and .batch=="big" and .output_dataset_id' \
	"$T/hooks/payloads/"* >/dev/null || fail "complete payload data"
ok "payloads carry the event document"

# The rate: 400/s with a burst of 20 lets the daemon send at most 20 + 400 requests
# in any second. The simulator sees arrival times, which can lag the sends by a
# few ms on a loaded machine: the bound allows 50 ms of that skew (20 requests).
m=$(max_in_window 1000)
[ "$m" -le 440 ] || fail "$m requests in one second, over 400/s + burst 20 (+50 ms of arrival skew)"
polls=$(sim GET '/_sim/stats?jobs=0' | jq .requests.poll)
ok "rate limit kept: at most $m requests in any 1 s window ($polls polls in all)"

# Connections are reused: far fewer than requests.
conns=$(sim GET '/_sim/stats?jobs=0' | jq .connections.opened)
[ "$conns" -le 64 ] || fail "$conns connections for $polls requests"
peak=$(sim GET '/_sim/stats?jobs=0' | jq .connections.peak)
# max_connections is 8 (the default); the test's own curl adds at most one.
[ "$peak" -le 9 ] || fail "$peak connections at once, max_connections is 8"
ok "keep-alive: $conns connections for $polls requests, at most $peak at once (max_connections 8)"

# Ended jobs are not polled again: a job still running ("tick") keeps the daemon polling. Once
# it has sent a request more than interval_max (1 s, +20% jitter) later, any ended job still
# scheduled would have been polled by then.
ended_polls() { sim GET '/_sim/stats' | jq '.requests.poll - (.jobs.tick.requests // 0)'; }
before=$(ended_polls)
t0=$(sim GET /_sim/log | jq '.entries[-1][0]')   # the simulator's clock: its last request
sim POST /_sim/jobs '{"id":"tick"}' >/dev/null
ctl watch tick >/dev/null
later() { sim GET /_sim/log | jq -e --argjson t "$((t0 + 1200))" 'any(.entries[]; .[0] >= $t)' >/dev/null; }
wait_until later || fail "no request more than 1.2 s after the jobs ended"
after=$(ended_polls)
[ "$before" = "$after" ] || fail "ended jobs still polled ($before -> $after)"
ctl unwatch tick >/dev/null
ok "no polls of ended jobs after every job ended"

# The hook environment is clean: no API key, the EMBEDWATCH_* variables.
! grep -q "$TOKEN" "$T/hooks/env.last" || fail "API key in a hook's environment"
grep -q '^EMBEDWATCH_EVENT_ID=evt_' "$T/hooks/env.last" || fail "EMBEDWATCH_EVENT_ID missing"
[ "$(grep -vc '^EMBEDWATCH_\|^PATH=\|^PWD=\|^SHLVL=\|^_=' "$T/hooks/env.last")" = 0 ] || fail "extra environment: $(cat "$T/hooks/env.last")"
! grep -q "$TOKEN" "$T/daemon.log" || fail "API key in the log"
ok "clean hook environment; key never logged"

stop_daemon
ok "clean stop"
