#!/usr/bin/env bash
# requires: pg
# kill -STOP of the active (a daemon that hangs, or a partition): its session
# stays, so the standby takes over once the lease expires (lease_ttl, here
# 3 s; the time it took is reported, not judged). After kill -CONT the old
# active finds itself fenced: it starts no hook from then on and comes back
# as a standby. Every terminal event is delivered, one event id per job.
. "$top_srcdir/tests/integration/lib/lib.sh"
. "$top_srcdir/tests/integration/lib/pg.sh"
pg_start
JOBS=60

start_sim
jq -cn --argjson n "$JOBS" '{jobs: [range($n) as $i | {id: ("st" + ($i|tostring)),
  timeline: [{status:"processing",at:0}, {status: (["complete","failed","cancelled"][$i % 3]), at: (0.5 + ($i % 30) * 0.4)}]}]}' \
	| sim POST /_sim/jobs "$(cat)" | jq -e ".created == $JOBS" >/dev/null || fail "create jobs"
LEASE_TTL=3s LEASE_RENEW=1s RATE=500/s BURST=50 INTERVAL_MIN=100ms INTERVAL_MAX=400ms write_conf
node_conf a
node_conf b
start_node a
wait_until node_is a active || fail "a is not active"
start_node b
node_is b standby || fail "b is not standby"
seq 0 $((JOBS - 1)) | sed 's/^/st/' | nctl a watch --batch st - >/dev/null

wait_until ha_has_ids 10 ' embed_job\.' || fail "first events"
t0=$(now_ms)
kill -STOP "$(node_pid a)"
wait_until node_is b active || fail "b did not take over from the stopped a"
took=$(( $(now_ms) - t0 ))
echo "takeover-after-sigstop: $took ms (lease_ttl 3000 ms)"
ok "b took over $took ms after a was stopped (lease_ttl 3 s)"
# b delivers while a is still stopped.
n=$(ha_ids ' b ')
wait_until ha_has_ids $((n + 5)) ' b ' || fail "b does not deliver"

cont_ns=$(date +%s%N)
kill -CONT "$(node_pid a)"
wait_until grep -q 'lost the lease' "$T/a.log" || fail "a did not notice it lost the lease"
wait_until node_is a standby || fail "a did not come back as a standby"
wait_until grep -q ' batch.done ' "$HA_LOG" || fail "batch.done not delivered"
wait_until node_pending0 b || fail "deliveries pending"
late=$(awk -v t="$cont_ns" '$2 == "a" && $1 > t' "$HA_LOG" | wc -l)
[ "$late" = 0 ] || fail "a started $late hooks after kill -CONT: $(awk -v t="$cont_ns" '$2 == "a" && $1 > t' "$HA_LOG" | head -3)"
ok "after kill -CONT a started no hook, stepped down and is a standby"

term=$(ha_terminal)
jobs_seen=$(echo "$term" | awk '{print $3}' | sort -u | wc -l)
[ "$jobs_seen" = "$JOBS" ] || fail "terminal events delivered for $jobs_seen of $JOBS jobs"
ids_per_job=$(echo "$term" | sort -u | awk '{print $3}' | uniq -d | wc -l)
[ "$ids_per_job" = 0 ] || fail "$ids_per_job jobs got two different terminal event ids"
[ "$(psql_q "SELECT epoch FROM lease")" = 2 ] || fail "lease epoch $(psql_q "SELECT epoch FROM lease"), expected 2"
stop_nodes a b
ok "all $JOBS terminal events delivered, one id per job"
