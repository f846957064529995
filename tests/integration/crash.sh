#!/usr/bin/env bash
# requires: none
# kill -9 at random moments (seeded) during a run, restarting each time: no
# terminal event is lost, a repeated delivery carries the same event id, and
# batch.done is delivered after every member event, also across the restarts.
# CRASH_JOBS, CRASH_KILLS and CRASH_SEED make the long run (bench/faults).
. "$top_srcdir/tests/integration/lib/lib.sh"

JOBS=${CRASH_JOBS:-200}
KILLS=${CRASH_KILLS:-8}
RANDOM=${CRASH_SEED:-42}

start_sim
jq -cn --argjson n "$JOBS" --argjson kills "$KILLS" '{jobs: [range($n) as $i | {id: ("c" + ($i|tostring)),
  timeline: [{status:"processing",at:0},
	     {status: (["complete","failed","cancelled"][$i % 3]), at: (0.5 + ($i % 50) * ($kills * 0.45 / 50))}]}]}' \
	| sim POST /_sim/jobs "$(cat)" | jq -e ".created == $JOBS" >/dev/null || fail "create jobs"
RATE=500/s BURST=50 INTERVAL_MIN=100ms INTERVAL_MAX=400ms write_conf
start_daemon
seq 0 $((JOBS - 1)) | sed 's/^/c/' | ctl watch --batch crash - >/dev/null

for k in $(seq 1 "$KILLS"); do
	# 100..700 ms of running, then SIGKILL: no chance to commit or clean up
	# (the kill's moment, not a wait for anything checked).
	sleep "0.$(( RANDOM % 6 + 1 ))"
	kill9_daemon
	start_daemon
done
ctl wait --batch crash --timeout "${EW_LIMIT}s" >/dev/null || [ $? -eq 1 ] || fail "wait after the kills"
wait_until grep -q ' batch.done ' "$T/hooks/events" || fail "batch.done not delivered"
wait_until deliveries_idle || fail "deliveries still pending"
stop_daemon

term=$(hook_lines | awk '$2 ~ /^embed_job\.(complete|failed|cancelled)$/')
jobs_seen=$(echo "$term" | awk '{print $3}' | sort -u | wc -l)
[ "$jobs_seen" = "$JOBS" ] || fail "terminal events delivered for $jobs_seen of $JOBS jobs"
# One event id per job: a repeat is the same event.
ids_per_job=$(echo "$term" | awk '{print $3, $1}' | sort -u | awk '{print $1}' | uniq -d | wc -l)
[ "$ids_per_job" = 0 ] || fail "$ids_per_job jobs got two different terminal event ids"
# The outcome matches the timeline.
bad=$(echo "$term" | awk '{ n = substr($3, 2) + 0; want = (n % 3 == 0) ? "complete" : (n % 3 == 1) ? "failed" : "cancelled";
	if ($2 != "embed_job." want) print }' | wc -l)
[ "$bad" = 0 ] || fail "$bad wrong outcomes"
total=$(echo "$term" | wc -l)
repeats=$((total - JOBS))
batch_done=$(grep -c ' batch.done ' "$T/hooks/events")
[ "$(grep ' batch.done ' "$T/hooks/events" | awk '{print $1}' | sort -u | wc -l)" = 1 ] || fail "batch.done with two ids"
# Order: every member delivery (repeats too) came before the first batch.done.
first_done=$(grep -n ' batch.done ' "$T/hooks/events" | head -n 1 | cut -d: -f1)
last_member=$(grep -n ' embed_job\.' "$T/hooks/events" | tail -n 1 | cut -d: -f1)
[ "$last_member" -lt "$first_done" ] || fail "a member event was delivered after batch.done (line $last_member > $first_done)"
ok "$KILLS kills: all $JOBS terminal events delivered; $repeats repeated deliveries (same event id); batch.done delivered $batch_done time(s)"
echo "crash-test: jobs=$JOBS kills=$KILLS seed=${CRASH_SEED:-42} repeats=$repeats batch_done_deliveries=$batch_done"
