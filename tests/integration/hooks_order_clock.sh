#!/usr/bin/env bash
# requires: faketime sqlite3
# Delivery order against a wall clock stepped back by an hour (SQLite): the
# order is the state's (the events' rowid), never the detecting clock's. A
# gated hook holds every delivery. Run 1 (the real clock) detects the
# cancelling events and is killed; run 2 (the clock an hour back: faketime)
# detects the cancelled, complete and failed events and batch.done, stamped
# an hour earlier than run 1's, and is killed; run 3 (still an hour back)
# opens the gate: per job cancelling before cancelled, batch.done after every
# member, every delivery made once, none waiting an hour for a due time run 1
# wrote by its clock.
. "$top_srcdir/tests/integration/lib/lib.sh"

N=9
G=$T/gated
mkdir -p "$G"
start_sim --clock manual
jq -cn --argjson n $N '{jobs: [range($n) as $i | {id: ("ck" + ($i|tostring)), timeline:
  ([{status:"processing",at:0}] +
   (if $i % 3 == 0 then [{status:"complete", at: 5}]
    elif $i % 3 == 1 then [{status:"failed", at: 5}]
    else [{status:"cancelling", at: 1}, {status:"cancelled", at: 5}] end))}]}' \
	| sim POST /_sim/jobs "$(cat)" | jq -e ".created == $N" >/dev/null || fail "create jobs"
write_conf "[hook gated]
type = exec
command = $top_srcdir/tests/integration/lib/order-hook.sh $G
on = *
concurrency = 1
retry = 100ms"
# The daemon under faketime: the wall clock (CLOCK_REALTIME) an hour back, the monotonic one
# (libuv's timers) left alone. ASan must not insist on coming first in the preload list.
BACK="env LD_PRELOAD=$FAKETIME_LIB FAKETIME=-1h FAKETIME_DONT_FAKE_MONOTONIC=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0"
# kill_run: kill -9 of the daemon and of the gated hook it left waiting.
kill_run() {
	kill9_daemon
	kill -KILL "$(cat "$G/running.pid")" 2>/dev/null || true
	rm -f "$G/running.pid"
}

start_daemon
seq 0 $((N - 1)) | sed 's/^/ck/' | ctl watch --batch clk - >/dev/null
sim_advance 2s >/dev/null
wait_until hook_has_ids 3 ' embed_job.cancelling ' || fail "run 1: the cancelling events"
wait_until test -s "$G/running.pid" || fail "run 1: the gated hook never started"
kill_run
ok "run 1 (real clock): $(hook_ids ' embed_job.cancelling ') cancelling events detected, their deliveries held"

EW_WRAPPER=$BACK start_daemon
sim_advance 5s >/dev/null
wait_until hook_has_ids 1 ' batch.done ' || fail "run 2: batch.done"
wait_until test -s "$G/running.pid" || fail "run 2: the gated hook never started"
kill_run
ok "run 2 (an hour back): the terminal events and batch.done detected, stamped an hour before run 1's"

detected=$(sed -n 's/^<6>event [a-z_.]* \(evt_[0-9a-f]*\) for .*/\1/p' "$T/daemon.log" | sort -u | wc -l)
touch "$G/gate"
EW_WRAPPER=$BACK start_daemon
wait_until sh -c "[ \$(awk '\$7 == \"ok\" {print \$3}' '$G/attempts' | sort -u | wc -l) -ge $detected ]" \
	|| fail "run 3: not every delivery of the gated hook was made ($(awk '$7 == "ok"' "$G/attempts" 2>/dev/null | wc -l) of $detected)"
wait_until deliveries_idle || fail "run 3: deliveries still pending"
stop_daemon
# faketime was in effect: events committed later carry stamps an hour earlier.
skew=$(sqlite3 "$T/state/embedwatch.db" "SELECT count(*) FROM events a JOIN events b ON a.rowid < b.rowid WHERE a.ts_ms > b.ts_ms + 3000000")
[ "$skew" -gt 0 ] || fail "the daemon's clock was not an hour back (faketime not in effect?)"

ok_lines=$(awk '$7 == "ok" {print $3, $4, $5}' "$G/attempts")
[ "$(echo "$ok_lines" | awk '{print $1}' | sort -u | wc -l)" = "$(echo "$ok_lines" | wc -l)" ] || fail "an event was delivered twice"
bad=$(echo "$ok_lines" | awk '$2 == "embed_job.cancelled" && !seen[$3] {print $3} $2 == "embed_job.cancelling" {seen[$3] = 1}')
[ -z "$bad" ] || fail "cancelled delivered before cancelling for: $bad"
last=$(echo "$ok_lines" | tail -n 1 | awk '{print $2}')
[ "$last" = batch.done ] || fail "batch.done was not the last delivery: $(echo "$ok_lines" | tr '\n' ';')"
[ "$(echo "$ok_lines" | grep -c ' embed_job.cancelling ')" = 3 ] || fail "cancelling deliveries: $(echo "$ok_lines" | grep -c ' embed_job.cancelling ')"
ok "the clock an hour back: $detected deliveries in commit order, cancelling before cancelled, batch.done last"
