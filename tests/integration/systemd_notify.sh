#!/usr/bin/env bash
# requires: systemd-analyze
# The sd_notify lifecycle on a real NOTIFY_SOCKET: READY after the state is
# restored and the socket listens, STATUS with counts, WATCHDOG at half the
# interval, RELOADING (with MONOTONIC_USEC) then READY on SIGHUP, a rejected
# reload keeping the old config, STOPPING on SIGTERM; and the units verify
# and score <= 2.0 with systemd-analyze.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
# notify_recv N: a fresh receiver on $T/notify$N.sock, printing to $T/notify.out.
notify_recv() {
	rm -f "$T/notify.out"
	"$top_builddir/tests/notify-recv" "$T/notify$1.sock" >>"$T/notify.out" 2>&1 &
	PIDS+=($!)
	wait_until test -S "$T/notify$1.sock" || fail "notify receiver"
}
notify_recv 1
sim POST /_sim/jobs '{"jobs":[{"id":"n1"},{"id":"n2"},{"id":"n3"}]}' >/dev/null
INTERVAL_MIN=1s INTERVAL_MAX=2s write_conf

# First run: three jobs into the state.
NOTIFY_SOCKET="$T/notify1.sock" start_daemon
ctl watch n1 n2 n3 >/dev/null
stop_daemon
notify_recv 2

# Second run: READY must come with the restored jobs counted, and the socket up.
export NOTIFY_SOCKET="$T/notify2.sock" WATCHDOG_USEC=400000
start_daemon
unset NOTIFY_SOCKET WATCHDOG_USEC
wait_until grep -q '^READY=1' "$T/notify.out" || fail "no READY=1"
ready=$(awk 'BEGIN{RS="--\n"} /READY=1/ {print; exit}' "$T/notify.out")
echo "$ready" | grep -q '^STATUS=watching 3 jobs (' || fail "READY without the restored jobs: [$ready] in: $(cat "$T/notify.out")"
wait_until sh -c "[ \$(grep -c '^WATCHDOG=1' '$T/notify.out') -ge 4 ]" || fail "watchdog pings: $(grep -c '^WATCHDOG=1' "$T/notify.out")"
ok "READY=1 with the restored state ($(echo "$ready" | grep STATUS | cut -c1-60)...); WATCHDOG=1 every 200 ms"

kill -HUP "$DAEMON_PID"
wait_until sh -c "grep -q '^RELOADING=1' '$T/notify.out' && [ \$(grep -c '^READY=1' '$T/notify.out') -ge 2 ]" || fail "reload messages"
grep -A1 '^RELOADING=1' "$T/notify.out" | grep -qE '^MONOTONIC_USEC=[0-9]+$' || fail "RELOADING=1 without MONOTONIC_USEC"
# A broken config on reload: rejected, RELOADING then READY again, the daemon goes on.
cp "$T/ew.conf" "$T/ew.good"
echo 'nonsense line' >>"$T/ew.conf"
kill -HUP "$DAEMON_PID"
wait_until sh -c "[ \$(grep -c '^RELOADING=1' '$T/notify.out') -ge 2 ] && [ \$(grep -c '^READY=1' '$T/notify.out') -ge 3 ]" || fail "second reload"
grep -q 'reload rejected, keeping the running configuration: .*ew.conf:[0-9]*: syntax error' "$T/daemon.log" || fail "bad reload not named"
ctl status >/dev/null || fail "daemon gone after a bad reload"
cp "$T/ew.good" "$T/ew.conf"
ok "SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1; a bad config is rejected and the old one runs on"

wait_until sh -c "grep '^STATUS=' '$T/notify.out' | grep -vq reloading" || fail "no STATUS"
stop_daemon
wait_until grep -q '^STOPPING=1' "$T/notify.out" || fail "no STOPPING=1"
msgs=$(awk 'BEGIN{RS="--\n"} {split($0, l, "\n"); print l[1]}' "$T/notify.out" | grep -v '^WATCHDOG=1$')
order=$(echo "$msgs" | sed -n 's/^\(READY=1\|RELOADING=1\|STOPPING=1\)$/\1/p' | paste -sd' ')
[ "$order" = "READY=1 RELOADING=1 READY=1 RELOADING=1 READY=1 STOPPING=1" ] || fail "message order: $order"
ok "order: $order"

# The units.
for u in embedwatchd.service embedwatchd@.service; do
	sed -e "s|@sbindir@|$top_builddir|g" -e "s|@sysconfdir@|/etc|g" "$top_srcdir/systemd/$u.in" >"$T/$u"
	systemd-analyze verify --man=no "$T/$u" 2>"$T/verify.err" || fail "systemd-analyze verify $u: $(cat "$T/verify.err")"
	[ ! -s "$T/verify.err" ] || fail "systemd-analyze verify $u warns: $(cat "$T/verify.err")"
	score=$(systemd-analyze security --offline=yes "$T/$u" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
	[ -n "$score" ] || fail "no security score for $u"
	awk -v s="$score" 'BEGIN{exit !(s <= 2.0)}' || fail "$u exposure $score > 2.0"
	ok "$u: verify passes, exposure $score"
done
