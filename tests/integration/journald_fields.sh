#!/usr/bin/env bash
# requires: root mountns
# Under journald, log lines carry PRIORITY and the fields JOB_ID, EVENT_ID,
# EVENT and HOOK. A private mount namespace puts a datagram socket where
# journald's is, so the test reads exactly what the daemon sends. Needs root.
. "$top_srcdir/tests/integration/lib/lib.sh"

# The manual clock holds jf1 in processing until the daemon has seen it there,
# so the transition it logs is processing -> complete however slow the first poll.
start_sim --clock manual
sim POST /_sim/jobs '{"id":"jf1","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]}' >/dev/null
write_conf
# Inside the namespace only the journal socket and the daemon; this script
# drives it from outside (the control socket and the simulator are shared).
cat >"$T/inner.sh" <<INNER
set -e
mkdir -p /run/systemd/journal
mount -t tmpfs tmpfs /run/systemd/journal
"$top_builddir/tests/notify-recv" /run/systemd/journal/socket >"$T/journal.out" 2>&1 &
recv=\$!
echo \$recv >"$T/recv.pid"
end=\$(( \$(date +%s) + $EW_LIMIT ))
until [ -S /run/systemd/journal/socket ]; do
	[ \$(date +%s) -lt \$end ] || { echo "no journal socket after ${EW_LIMIT}s" >&2; exit 1; }
	sleep 0.05  # the polling loop's step: the condition is the socket above
done
: >"$T/stderr"
export JOURNAL_STREAM=\$(stat -c '%d:%i' "$T/stderr")
CO_API_KEY=$TOKEN "$DAEMON" -c "$T/ew.conf" 2>>"$T/stderr" &
d=\$!
echo \$d >"$T/daemon.pid"
rc=0
wait \$d || rc=\$?
kill \$recv
exit \$rc
INNER
unshare -m bash "$T/inner.sh" &
inner=$!
PIDS+=("$inner")
# Started, or the inner run ended early (then its status says why).
inner_started() { test -s "$T/daemon.pid" || ! alive "$inner"; }
wait_until inner_started
test -s "$T/daemon.pid" || { wait "$inner" || true; fail "inner run did not start the daemon"; }
DAEMON_PID=$(cat "$T/daemon.pid")
PIDS+=("$DAEMON_PID" "$(cat "$T/recv.pid")")
wait_until ctl status || fail "daemon did not start"
ctl watch jf1 >/dev/null
observed() { [ "$(ctl --json show jf1 | jq -r .job.status)" = "$1" ]; }
wait_until observed processing || fail "daemon never observed jf1 processing"
sim_advance 1s >/dev/null
ctl wait jf1 --timeout "${EW_LIMIT}s" >/dev/null || fail "jf1 did not end"
wait_until grep -q '^MESSAGE=hook record delivered' "$T/journal.out" || fail "no hook delivered line: $(head -20 "$T/journal.out")"
kill -TERM "$DAEMON_PID"
wait "$inner" || fail "inner run failed (daemon exit status or journal socket)"
rec() { awk 'BEGIN{RS="--\n"} index($0, "'"$1"'")' "$T/journal.out"; }
[ ! -s "$T/stderr" ] || fail "lines went to stderr instead of the journal: $(head -3 "$T/stderr")"
rec 'MESSAGE=job jf1: processing -> complete' | grep -q '^JOB_ID=jf1$' || fail "transition without JOB_ID: $(cat "$T/journal.out" | head -20)"
rec 'MESSAGE=job jf1: processing -> complete' | grep -q '^PRIORITY=6$' || fail "transition priority"
ev=$(rec 'MESSAGE=event embed_job.complete' | sed -n 's/^EVENT_ID=//p')
[ -n "$ev" ] || fail "event line without EVENT_ID"
rec 'MESSAGE=event embed_job.complete' | grep -q '^EVENT=embed_job.complete$' || fail "event line without EVENT"
rec "MESSAGE=hook record delivered $ev" | grep -q '^HOOK=record$' || fail "hook line without HOOK"
rec "MESSAGE=hook record delivered $ev" | grep -q '^JOB_ID=jf1$' || fail "hook line without JOB_ID"
rec 'MESSAGE=embedwatchd' | grep -q '^PRIORITY=5$' || fail "ready line priority"
! grep -q "$TOKEN" "$T/journal.out" || fail "key in the journal"
! grep -q '^[A-Z_]*=$' "$T/journal.out" || fail "empty fields sent: $(grep '^[A-Z_]*=$' "$T/journal.out" | sort -u)"
ok "journald: PRIORITY, JOB_ID, EVENT_ID, EVENT and HOOK fields (journalctl JOB_ID=jf1 shows the job's story)"
