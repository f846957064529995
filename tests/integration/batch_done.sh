#!/usr/bin/env bash
# requires: none
# Batches: 200 jobs of mixed outcomes; batch.done fires exactly once with the
# right counts and job list; wait --batch; late additions follow the rule.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
# 200 jobs: i%4 = 0 complete, 1 failed, 2 cancelled, 3 not in the API (not_found).
jq -cn '{jobs: [range(200) as $i | select($i % 4 != 3) | {id: ("b" + ($i|tostring)),
  timeline: [{status:"processing",at:0}, {status: (["complete","failed","cancelled"][$i % 4]), at: (0.3 + ($i % 13) * 0.1)}]}]}' \
	| sim POST /_sim/jobs "$(cat)" >/dev/null
RATE=500/s write_conf
start_daemon
seq 0 199 | sed 's/^/b/' | ctl watch --batch mixed - >/dev/null
rc=0; ctl wait --batch mixed --timeout "${EW_LIMIT}s" >"$T/wait" || rc=$?
[ $rc = 1 ] || fail "wait --batch with failures: exit $rc"
[ "$(wc -l <"$T/wait")" = 200 ] || fail "wait listed $(wc -l <"$T/wait") jobs"
wait_until grep -q ' batch.done ' "$T/hooks/events" || fail "no batch.done"
[ "$(hook_ids ' batch\.done ')" = 1 ] || fail "batch.done more than once"
ev=$(grep ' batch.done ' "$T/hooks/events" | awk '{print $1}')
p="$T/hooks/payloads/$ev.record.1"
jq -e '.type == "batch.done" and .data.batch == "mixed" and .data.total == 200
  and .data.counts.complete == 50 and .data.counts.failed == 50 and .data.counts.cancelled == 50
  and .data.counts.not_found == 50 and (.data.jobs | length) == 200
  and ([.data.jobs[] | select(.job_id == "b3")][0].status == "not_found")
  and ([.data.jobs[] | select(.job_id == "b4")][0].status == "complete")' "$p" >/dev/null || fail "batch.done payload: $(jq -c .data.counts "$p")"
grep -q "^$ev batch.done - done mixed 1$" "$T/hooks/events" || fail "batch.done hook environment: $(grep batch.done "$T/hooks/events")"
ok "batch of 200: batch.done once, counts 50/50/50/50 and all 200 jobs listed"
ctl batches --json | jq -e '.batches[] | select(.name == "mixed") | .total == 200 and .ended == 200 and .done and .counts.complete == 50' >/dev/null \
	|| fail "batches: $(ctl batches --json)"
ctl batches | grep -qE '^mixed +200 +200 yes ' || fail "batches table"
ok "embedwatchctl batches"

# A job added after the batch fired: listed, but no second batch.done.
sim POST /_sim/jobs '{"id":"late1","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.2}]}' >/dev/null
ctl watch --batch mixed late1 >/dev/null
wait_until grep -q ' embed_job.complete late1 ' "$T/hooks/events" || fail "late job not delivered"
# A second batch.done would be planned in the commit of late1's event: once nothing is pending, it would have run.
wait_until deliveries_idle || fail "deliveries still pending"
[ "$(hook_ids ' batch\.done ')" = 1 ] || fail "a late job re-fired batch.done"
ok "a job added after batch.done does not fire it again"

# A job added before the batch fires holds it back. q1 ends once both are watched, q2 once
# q1's end has been checked: no timeline to race.
sim POST /_sim/jobs '{"jobs":[{"id":"q1","timeline":[{"status":"processing","at":0}]},
 {"id":"q2","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
ctl watch --batch small q1 >/dev/null
ctl watch --batch small q2 >/dev/null
sim POST /_sim/jobs '{"id":"q1","timeline":[{"status":"complete","at":0}]}' >/dev/null
wait_until grep -q ' embed_job.complete q1 ' "$T/hooks/events" || fail "q1"
wait_until deliveries_idle || fail "deliveries still pending"
! grep -q 'batch.done - done small' "$T/hooks/events" || fail "batch fired before its second job ended"
sim POST /_sim/jobs '{"id":"q2","timeline":[{"status":"complete","at":0}]}' >/dev/null
ctl wait --batch small --timeout "${EW_LIMIT}s" >/dev/null || fail "wait small"
wait_until grep -q 'batch.done - done small' "$T/hooks/events" || fail "small never fired"
ok "a job added before batch.done holds the batch until it ends"

# Restart: batch state survives; nothing fires again. Batches and pending deliveries are
# restored before the socket answers: once nothing is pending, a second firing would have run.
stop_daemon
start_daemon
wait_until deliveries_idle || fail "deliveries still pending after the restart"
[ "$(hook_ids ' batch\.done ')" = 2 ] || fail "batch.done fired again after restart"
ctl batches --json | jq -e '[.batches[] | select(.done)] | length == 2' >/dev/null || fail "batch state lost"
ok "batch state survives a restart"
stop_daemon
