#!/usr/bin/env bash
# requires: pg
# Two daemons on one PostgreSQL state: one active, one standby. Jobs are
# watched through the standby (written to the shared state, applied by the
# active), then the active is killed (-9) twice mid-run; each time the other
# takes over and the killed one comes back as a standby. Every terminal event
# is delivered, with one event id per job; the daemons were never active at
# once: in the order the hooks started, the daemon that started them changes
# only at the two takeovers, and the lease's epoch counts exactly three takes.
. "$top_srcdir/tests/integration/lib/lib.sh"
. "$top_srcdir/tests/integration/lib/pg.sh"
pg_start
JOBS=120

start_sim
jq -cn --argjson n "$JOBS" '{jobs: [range($n) as $i | {id: ("ha" + ($i|tostring)),
  timeline: [{status:"processing",at:0}, {status: (["complete","failed","cancelled"][$i % 3]), at: (0.5 + ($i % 60) * 0.25)}]}]}' \
	| sim POST /_sim/jobs "$(cat)" | jq -e ".created == $JOBS" >/dev/null || fail "create jobs"
LEASE_TTL=4s LEASE_RENEW=1s RATE=500/s BURST=50 INTERVAL_MIN=100ms INTERVAL_MAX=400ms write_conf
node_conf a
node_conf b
start_node a
wait_until node_is a active || fail "a is not active"
start_node b
node_is b standby || fail "b is not standby: $(node_role b)"
nctl b --json status | jq -e '.status.active.pid == '"$(node_pid a)" >/dev/null || fail "b does not name a as the active"

# Through the standby: written to the shared state, applied by the active.
seq 0 $((JOBS - 1)) | sed 's/^/ha/' | nctl b --json watch --batch ha - >"$T/watch.json" 2>"$T/watch.err"
jq -e ".added == $JOBS" "$T/watch.json" >/dev/null || fail "watch through the standby: $(cat "$T/watch.json")"
grep -q standby "$T/watch.err" || fail "the standby did not say it forwarded the request"
wait_until sh -c "[ \"\$('$CTL' -s '$T/a.sock' --json status | jq -r .status.jobs)\" = $JOBS ]" || fail "the active did not apply the watch"
ok "watch of $JOBS ids through the standby, applied by the active"

both_not_active() { ! { node_is a active && node_is b active; }; }
active=a standby=b
for k in 1 2; do
	# Mid-run: some terminal events delivered, most still to come.
	wait_until ha_has_ids $((k * 35)) ' embed_job\.' || fail "events before kill $k"
	t0=$(now_ms)
	kill -KILL "$(node_pid $active)"
	wait "$(node_pid $active)" 2>/dev/null || true
	wait_until node_is $standby active || fail "kill $k: $standby did not take over"
	echo "takeover-after-kill9: $(( $(now_ms) - t0 )) ms ($standby, kill $k)"
	start_node $active
	node_is $active standby || wait_until node_is $active standby || fail "kill $k: $active did not come back as a standby"
	both_not_active || fail "two daemons say they are active"
	tmp=$active active=$standby standby=$tmp
done
ok "the active killed twice; each time the standby took over and the killed one came back as a standby"

# A wait through the standby answers once the batch has ended (exit 1: not all complete).
rc=0
nctl $standby wait --batch ha --timeout "${EW_LIMIT}s" >/dev/null || rc=$?
[ $rc = 1 ] || fail "wait through the standby: exit $rc"
wait_until grep -q ' batch.done ' "$HA_LOG" || fail "batch.done not delivered"
wait_until node_pending0 $active || fail "deliveries pending"
nctl $standby --json status | jq -e '.status.deliveries_pending == 0 and .status.jobs == '"$JOBS" >/dev/null ||
	fail "the standby's status from the shared state: $(nctl $standby --json status | jq -c .status)"

term=$(ha_terminal)
jobs_seen=$(echo "$term" | awk '{print $3}' | sort -u | wc -l)
[ "$jobs_seen" = "$JOBS" ] || fail "terminal events delivered for $jobs_seen of $JOBS jobs"
ids_per_job=$(echo "$term" | sort -u | awk '{print $3}' | uniq -d | wc -l)
[ "$ids_per_job" = 0 ] || fail "$ids_per_job jobs got two different terminal event ids"
bad=$(echo "$term" | awk '{ n = substr($3, 3) + 0; want = (n % 3 == 0) ? "complete" : (n % 3 == 1) ? "failed" : "cancelled";
	if ($2 != "embed_job." want) print }' | wc -l)
[ "$bad" = 0 ] || fail "$bad wrong outcomes"
# Never two active at once: by start time, the daemon running the hooks changes only at the takeovers.
switches=$(sort -n "$HA_LOG" | awk '{print $2}' | uniq | wc -l)
[ "$switches" -le 3 ] || fail "hooks alternated between the daemons $((switches - 1)) times over 2 takeovers: $(sort -n "$HA_LOG" | awk '{print $2}' | uniq -c | tr '\n' ' ')"
epoch=$(psql_q "SELECT epoch FROM lease")
[ "$epoch" = 3 ] || fail "the lease was taken $epoch times, expected 3 (start, two takeovers)"
[ "$(cat "$T/a.log" "$T/b.log" | grep -c 'taking over as the active')" = 2 ] || fail "takeovers in the logs: $(grep -h 'taking over' "$T"/[ab].log)"
repeats=$(( $(echo "$term" | wc -l) - JOBS ))
stop_nodes a b
ok "all $JOBS terminal events delivered, one id per job ($repeats repeated deliveries), hooks on one daemon at a time, lease epoch $epoch"
