#!/usr/bin/env bash
# requires: pg python3
# A network cut between the active and PostgreSQL at three protocol moments
# (tests/integration/lib/pgproxy.py: the active's side closed, the server's side
# left open and silent, as a partition): before a commit's Sync (its fence
# has run: the server holds the transaction and the lease's row), before a
# commit's fence (its rows are written, not committed) and in the middle of a
# lease renewal. Each time the standby takes over once the lease has expired
# by the server's clock (ending the cut-off daemon's sessions, which the
# server would not notice on its own) and delivers every event; the cut-off
# daemon starts no hook after the cut, says "unconfirmed" with
# embedwatch_leader 0, and once healed finds itself fenced and comes back as a
# standby. Every terminal event is delivered once per job id; the hooks ran
# on one daemon at a time. Then the standby is frozen (nothing answered,
# nothing closed): its status fails within the store's bound, naming it.
# The takeover times are reported (TAP comments), never judged.
. "$top_srcdir/tests/integration/lib/lib.sh"
. "$top_srcdir/tests/integration/lib/pg.sh"
pg_start
proxy_start a b
JOBS=120

# The simulator's clock is the test's: a quarter of the jobs end before the first cut, and a
# quarter after each takeover (while the old active is still cut off).
start_sim --clock manual
jq -cn --argjson n "$JOBS" '{jobs: [range($n) as $i | {id: ("cut" + ($i|tostring)),
  timeline: [{status:"processing",at:0}, {status: (["complete","failed","cancelled"][$i % 3]), at: (1 + ($i % 4))}]}]}' \
	| sim POST /_sim/jobs "$(cat)" | jq -e ".created == $JOBS" >/dev/null || fail "create jobs"
# Three jobs that never end, unwatched one per round: a commit for the cut to interrupt.
sim POST /_sim/jobs '{"jobs": [{"id":"idle1","timeline":[{"status":"processing","at":0}]},
  {"id":"idle2","timeline":[{"status":"processing","at":0}]},{"id":"idle3","timeline":[{"status":"processing","at":0}]}]}' \
	| jq -e '.created == 3' >/dev/null || fail "create the idle jobs"
LEASE_TTL=3s LEASE_RENEW=1s RATE=500/s BURST=50 INTERVAL_MIN=100ms INTERVAL_MAX=400ms write_conf
for n in a b; do node_conf $n; node_via_proxy $n; done
start_node a
wait_until node_is a active || fail "a is not active"
start_node b
node_is b standby || wait_until node_is b standby || fail "b is not standby: $(node_role b)"
seq 0 $((JOBS - 1)) | sed 's/^/cut/' | nctl a watch --batch cut - >/dev/null
printf 'idle1\nidle2\nidle3\n' | nctl a watch - >/dev/null
sim_advance 1500ms >/dev/null

# started NODE: hook attempts NODE has started (finished ones plus those running).
started() {
	nctl "$1" metrics | awk '$1 ~ /^embedwatch_deliveries_total/ || $1 == "embedwatch_hooks_running" {s += $2} END {print s + 0}'
}
leader() { nctl "$1" metrics | awk '$1 == "embedwatch_leader" {print $2}'; }

active=a standby=b k=0
for moment in before-sync before-fence mid-renewal; do
	k=$((k + 1))
	wait_until ha_has_ids $((k * JOBS / 4)) ' embed_job\.' || fail "$moment: events before the cut"
	cuts=$(proxy count $active)
	proxy arm $active $moment >/dev/null
	# A commit to cut (its answer is the cut's error; not waited for).
	(timeout 30 "$CTL" -s "$T/$active.sock" unwatch idle$k >/dev/null 2>&1 &)
	wait_until proxy_cut_more $active "$cuts" || fail "$moment: the proxy did not cut $active"
	cut_ns=$(proxy cuts $active)
	# Read after the cut: whatever the cut-off daemon starts from here on would add to it.
	s1=$(started $active)
	wait_until node_is $standby active || fail "$moment: $standby did not take over"
	echo "# takeover after a cut $moment: $(( ($(date +%s%N) - cut_ns) / 1000000 )) ms (lease_ttl 3000 ms; an upper bound: measured to when the test saw it)"
	wait_until node_is $active unconfirmed || fail "$moment: $active says $(node_role $active), not unconfirmed"
	[ "$(leader $active)" = 0 ] || fail "$moment: $active reports embedwatch_leader $(leader $active)"
	# Both nodes answer status (the cut-off one from memory, the new active too).
	timeout 30 "$CTL" -s "$T/$active.sock" status >"$T/st-$active" || fail "$moment: status on $active: $(cat "$T/st-$active")"
	grep -q '^unconfirmed' "$T/st-$active" || grep -qi 'unconfirmed' "$T/st-$active" || fail "$moment: status on $active: $(cat "$T/st-$active")"
	timeout 30 "$CTL" -s "$T/$standby.sock" status >/dev/null || fail "$moment: status on $standby did not answer"
	# The next quarter ends: the new active delivers it while the old one is still cut off.
	n=$(ha_ids " $standby " || true)   # 0 (and grep's status 1) before its first
	sim_advance 1s >/dev/null
	wait_until ha_has_ids $((n + JOBS / 4)) " $standby " || fail "$moment: $standby does not deliver"
	[ "$(started $active)" = "$s1" ] || fail "$moment: $active started $(( $(started $active) - s1 )) hooks after the cut"
	ok "$moment: $standby took over, $active started no hook after the cut and says unconfirmed (leader 0)"
	proxy heal $active >/dev/null
	wait_until node_is $active standby || fail "$moment: $active did not come back as a standby"
	tmp=$active active=$standby standby=$tmp
done

wait_until grep -q ' batch.done ' "$HA_LOG" || fail "batch.done not delivered"
wait_until node_pending0 $active || fail "deliveries pending"
term=$(ha_terminal)
jobs_seen=$(echo "$term" | awk '{print $3}' | sort -u | wc -l)
[ "$jobs_seen" = "$JOBS" ] || fail "terminal events delivered for $jobs_seen of $JOBS jobs"
ids_per_job=$(echo "$term" | sort -u | awk '{print $3}' | uniq -d | wc -l)
[ "$ids_per_job" = 0 ] || fail "$ids_per_job jobs got two different terminal event ids"
switches=$(sort -n "$HA_LOG" | awk '{print $2}' | uniq | wc -l)
[ "$switches" -le 4 ] || fail "hooks alternated between the daemons $((switches - 1)) times over 3 takeovers"
epoch=$(psql_q "SELECT epoch FROM lease")
[ "$epoch" = 4 ] || fail "the lease was taken $epoch times, expected 4 (start, three takeovers)"
ok "all $JOBS terminal events delivered, one id per job, hooks on one daemon at a time, lease epoch $epoch"

# The standby frozen: its answers from the shared state end with the cause, not never.
proxy freeze $standby >/dev/null
rc=0
timeout 30 "$CTL" -s "$T/$standby.sock" status >"$T/frozen.out" 2>&1 || rc=$?
[ $rc != 0 ] && [ $rc != 124 ] || fail "status on the frozen standby: exit $rc: $(cat "$T/frozen.out")"
grep -q 'did not answer within' "$T/frozen.out" || fail "status on the frozen standby: $(cat "$T/frozen.out")"
ok "a frozen standby's status fails with: $(tail -1 "$T/frozen.out")"
proxy heal $standby >/dev/null
wait_until nctl $standby status || fail "the standby does not answer after the heal"

stop_nodes a b
