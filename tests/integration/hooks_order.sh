#!/usr/bin/env bash
# requires: none
# Delivery order across a restart: deliveries queued behind a blocked hook when
# the daemon is killed resume oldest first (the order their events were
# detected), a job's events keep their order, batch.done comes after its
# members; a hook that takes only batch.done is not held by another hook's members.
. "$top_srcdir/tests/integration/lib/lib.sh"

N=12
G=$T/gated S=$T/summary
mkdir -p "$G" "$S"
start_sim
jq -cn --argjson n $N '{jobs: [range($n) as $i | {id: ("o" + ($i|tostring)), timeline:
  ([{status:"processing",at:0}] +
   (if $i % 3 == 0 then [{status:"complete", at: (0.3 + $i * 0.15)}]
    elif $i % 3 == 1 then [{status:"failed", at: (0.3 + $i * 0.15)}]
    else [{status:"cancelling", at: (0.2 + $i * 0.15)}, {status:"cancelled", at: (0.3 + $i * 0.15)}] end))}]}' \
	| sim POST /_sim/jobs "$(cat)" | jq -e ".created == $N" >/dev/null || fail "create jobs"
write_conf "[hook gated]
type = exec
command = $top_srcdir/tests/integration/lib/order-hook.sh $G
on = *
concurrency = 1
retry = 100ms
[hook summary]
type = exec
command = $HOOK $S
on = batch.done"
start_daemon
seq 0 $((N - 1)) | sed 's/^/o/' | ctl watch --batch ord - >/dev/null

# The summary hook gets batch.done while every gated delivery waits: each
# hook's order is its own. Its batch.done was committed after every member event.
wait_until grep -q ' batch.done ' "$S/events" || fail "batch.done not delivered to the summary hook"
ok "batch.done reached the hook that takes only it while the gated hook holds every member event"
wait_until test -s "$G/running.pid" || fail "the gated hook never started"
[ ! -e "$G/attempts" ] || fail "the gated hook delivered through a closed gate"

# The daemon dies with one attempt running and the rest queued.
kill9_daemon
kill -KILL -- "-$(cat "$G/running.pid")" 2>/dev/null || kill -KILL "$(cat "$G/running.pid")" 2>/dev/null || true
# The order the events were detected in, from the log of the first run.
detected=$(sed -n 's/^<6>event [a-z_.]* \(evt_[0-9a-f]*\) for .*/\1/p' "$T/daemon.log")
EVENTS=$(echo "$detected" | wc -l)
# At least one per job (two for a cancel seen in cancelling), and batch.done.
[ "$EVENTS" -gt $N ] || fail "expected more than $N events in the log, found $EVENTS"
touch "$G/gate"
start_daemon
wait_until sh -c "[ \$(awk '\$7 == \"ok\" {print \$3}' '$G/attempts' | sort -u | wc -l) -ge $EVENTS ]" \
	|| fail "not every delivery of the gated hook was made after the restart"
wait_until deliveries_idle || fail "deliveries still pending"
stop_daemon

delivered=$(awk '$7 == "ok" {print $3}' "$G/attempts")
[ "$(echo "$delivered" | sort -u | wc -l)" = "$(echo "$delivered" | wc -l)" ] || fail "an event was delivered twice after the restart"
[ "$delivered" = "$detected" ] || {
	paste <(echo "$detected") <(echo "$delivered") >&2
	fail "after the restart deliveries did not go oldest first (left: detected, right: delivered)"
}
last=$(awk '$7 == "ok"' "$G/attempts" | tail -n 1 | awk '{print $4}')
[ "$last" = batch.done ] || fail "batch.done was not the last delivery (last: $last)"
ok "after kill -9: $EVENTS deliveries resumed in the order detected, batch.done last"
