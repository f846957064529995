#!/usr/bin/env bash
# requires: sqlite3 nc
# What nothing may leak or exhaust (each through the real daemon):
# fds into hooks, a hook's leftovers, long stdin lines, NUL in ids, idle
# control connections, FIFO key files, hostile API warnings, answers about
# another job, redeliver while pending, attempts across a crash, file modes,
# a non-dumpable process, loopback by address.
. "$top_srcdir/tests/integration/lib/lib.sh"
# Per-id polling is what this test is about: the list sweep (tested in sweep_v1) is off.
export SWEEP=no

TORTURE="$top_builddir/tests/ctl-torture"
# ASan keeps freed memory in quarantine (256 MB by default): RSS must measure the daemon, not that.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
job_requests() { sim GET /_sim/stats | jq --arg j "$1" '.jobs[$j].requests'; }
polls() { sim GET "/_sim/stats?jobs=0" | jq '.requests.poll'; }
start_sim
sim POST /_sim/jobs '{"jobs":[
 {"id":"fd-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":1.0}]},
 {"id":"wrong-1","answer_as":"other-9","timeline":[{"status":"processing","at":0}]},
 {"id":"flood-1","warning_flood":400000,"timeline":[{"status":"processing","at":0}]}]}' >/dev/null

mkdir -p "$T/out"
INTERVAL_MIN=20ms INTERVAL_MAX=50ms write_conf "
[hook fds]
type = exec
command = /bin/sleep 9.87654
on = embed_job.complete
[hook leftover]
type = exec
command = /bin/sh -c 'sleep 31.4159 & echo \$! >$T/out/leftover.pid; exit 0'
on = embed_job.complete
[hook stuck]
type = exec
command = /bin/false
on = embed_job.error
retry = 1h
"
# The database must be the daemon's alone even when started with a lax umask outside systemd.
umask 022
start_daemon

# 1. A hook inherits 0-2 only, while the daemon holds API connections; what it leaves running dies with it.
#    (No shell in the fd check: a shell keeps fds of its own.)
ctl watch fd-1 >/dev/null
# The daemon spawns the hook itself: its child, not any process of that name on the machine.
# It runs long enough (~10 s) that a loaded machine still finds it between pgrep and ls.
hook_pid() { pgrep -P "$DAEMON_PID" -f -x '/bin/sleep 9.87654'; }
wait_until hook_pid || fail "fds hook did not run"
hp=$(hook_pid)
fds=$(ls /proc/"$hp"/fd | sort -n | tr '\n' ' ')
[ "$fds" = "0 1 2 " ] || fail "hook inherited fds: $fds ($(ls -l /proc/"$hp"/fd))"
sockets=$(ls -l /proc/"$DAEMON_PID"/fd | grep -c socket)
[ "$sockets" -ge 2 ] || fail "the daemon had no sockets open: the check proves nothing"
wait_until grep -q -- 'hook leftover delivered' "$T/daemon.log" || fail "leftover hook did not run"
leftover=$(cat "$T/out/leftover.pid")
wait_until eval '! alive "$leftover"' || fail "the hook's background child ($leftover) outlived it"
ok "hook sees fds 0 1 2 only (the daemon had $sockets sockets); its leftover child was killed"

# 2. File modes: the state database is 0600 under umask 022.
[ "$(stat -c %a "$T/state/embedwatch.db")" = 600 ] || fail "database mode $(stat -c %a "$T/state/embedwatch.db")"
ok "state database created 0600 under umask 022"

# 3. watch - : 10,000 ids on one line, separated by mixed whitespace.
seq -f 'line-%05g' 1 10000 | awk 'BEGIN{ORS=""} {print $0 (NR%3==0 ? "\t" : (NR%3==1 ? " " : "  "))}' >"$T/ids.line"
[ "$(wc -l <"$T/ids.line")" = 0 ] || fail "the id line has newlines"
ctl watch - <"$T/ids.line" >"$T/watch.out" || fail "watch -: $(cat "$T/watch.out")"
grep -q 'watching 10000 new' "$T/watch.out" || fail "watch -: $(cat "$T/watch.out")"
ctl list --json | jq -e '[.[].id | select(startswith("line-"))] | length == 10000 and all(test("^line-[0-9]{5}$"))' >/dev/null \
	|| fail "ids were split or joined"
ctl unwatch - <"$T/ids.line" >/dev/null
ok "watch - took 10,000 ids from one $(wc -c <"$T/ids.line")-byte line, none split"

# 4. NUL inside an id: refused by the CLI and by the socket.
rc=0; printf 'ok-id\nbad\0id\n' | ctl watch - >/dev/null 2>"$T/err" || rc=$?
[ $rc = 64 ] && grep -q 'NUL' "$T/err" || fail "NUL on stdin: rc=$rc $(cat "$T/err")"
a=$(printf '%s\n' '{"cmd":"watch","ids":["job-zz\u0000/../x"]}' | ctl_lines 1)
echo "$a" | jq -e '.ok == false and (.error | test("u0000"))' >/dev/null || fail "NUL in JSON: $a"
ctl list --json | jq -e 'map(.id) | index("job-zz") | not' >/dev/null || fail "a truncated id was watched"
ok "ids with NUL refused (stdin and \\u0000 in JSON)"

# 5. 300 idle control connections: operators still get in; idle ones are closed. The torture
#    holds them until told to let go; the daemon has taken all 300 once it has closed 44.
"$TORTURE" idle "$T/ctl.sock" 300 "$T/idle.release" >"$T/idle.out" &
idle_pid=$!
PIDS+=("$idle_pid")
wait_until sh -c "[ \$(grep -c 'closing the longest idle one' '$T/daemon.log') -ge 44 ]" \
	|| fail "the daemon did not take 300 connections: $(grep -c 'closing the longest idle one' "$T/daemon.log") closed"
ctl status >/dev/null || fail "status refused while 300 idle connections are open"
touch "$T/idle.release"
wait "$idle_pid"
grep -q 'longest idle' "$T/daemon.log" || fail "no idle connection was closed to make room"
closed=$(sed -n 's/.*closed=\([0-9]*\).*/\1/p' "$T/idle.out")
[ "$closed" -ge 45 ] || fail "only $closed idle connections closed: $(cat "$T/idle.out")"
ok "300 idle connections: status answered, $closed idle ones closed to make room"

# 6. A hostile API: distinct warnings of 400 kB on every answer, with a newline in them.
rss() { awk '/^VmRSS/ {print $2}' /proc/"$DAEMON_PID"/status; }
before=$(rss)
ctl watch flood-1 >/dev/null
flood_done() { [ "$(job_requests flood-1)" -ge 150 ]; }
wait_until flood_done || fail "flood-1 polled only $(job_requests flood-1) times"
after=$(rss)
warned=$(grep -c 'API warning (logged once)' "$T/daemon.log" || true)
[ "$warned" -le 64 ] || fail "$warned warnings logged, more than 64"
grep -q 'over 64 distinct API warnings' "$T/daemon.log" || fail "the cap was never reached ($warned warnings)"
! grep -q '^forged line' "$T/daemon.log" || fail "a newline in a warning forged a log line"
grep -q 'flood [0-9]*\\x0aforged line' "$T/daemon.log" || fail "the newline was not escaped"
[ $((after - before)) -lt 30000 ] || fail "RSS grew $((after - before)) kB under the warning flood"
ok "warning flood: $warned remembered, lines escaped, RSS $before -> $after kB"
ctl unwatch flood-1 >/dev/null

# 7. An answer about another job: three in a row end the job with an error naming both ids.
ctl watch wrong-1 >/dev/null
wait_until grep -q -- 'embed_job.error wrong-1' "$T/hooks/events" || fail "wrong-1 never ended"
ctl show wrong-1 --json | jq -e '.job.status == "error"' >/dev/null || fail "wrong-1: $(ctl show wrong-1 --json | jq -c .job.status)"
sqlite3 "$T/state/embedwatch.db" "select payload from events where subject='wrong-1'" | jq -e '.data.reason | test("wrong-1") and test("other-9")' >/dev/null \
	|| fail "reason does not name both ids"
ok "answers naming another job: ended with embed_job.error naming wrong-1 and other-9"
stop_daemon

# 8. FIFO as the key file: refused at start without hanging; on reload refused while polls go on.
mkfifo "$T/key.fifo"
printf '%s\n' "$TOKEN" >"$T/key.file"
chmod 600 "$T/key.file"
sed -i "s|^\[embedwatch\]|[embedwatch]\napi_key_file = $T/key.fifo|" "$T/ew.conf"
rc=0; timeout "$EW_LIMIT" "$DAEMON" -c "$T/ew.conf" >"$T/fifo.log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'not a regular file' "$T/fifo.log" || fail "FIFO key at start: rc=$rc $(cat "$T/fifo.log")"
sed -i "s|api_key_file = .*|api_key_file = $T/key.file|" "$T/ew.conf"
sim POST /_sim/jobs '{"jobs":[{"id":"slow-1","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
start_daemon
ctl watch slow-1 >/dev/null
sed -i "s|api_key_file = .*|api_key_file = $T/key.fifo|" "$T/ew.conf"
kill -HUP "$DAEMON_PID"
wait_until grep -q 'reload rejected.*not a regular file' "$T/daemon.log" || fail "FIFO key on reload not refused"
n1=$(polls)
wait_until sh -c "[ \$(curl -s '$SIM_URL/_sim/stats?jobs=0' | jq .requests.poll) -gt $((n1 + 1)) ]" \
	|| fail "polling stopped after the rejected reload ($n1 -> $(polls))"
n2=$(polls)
ok "FIFO key file refused at start and on reload; polls went on ($n1 -> $n2 requests)"

# 9. redeliver of a delivery still pending (wrong-1's error, stuck in a 1 h retry) is refused;
#    of one that is done it is queued.
evt=$(sqlite3 "$T/state/embedwatch.db" "select id from events where subject='wrong-1'")
rc=0; ctl redeliver "$evt" --hook stuck >/dev/null 2>"$T/err" || rc=$?
[ $rc = 3 ] && grep -q 'already pending' "$T/err" || fail "redeliver while pending: rc=$rc $(cat "$T/err")"
ctl redeliver "$evt" --hook record >/dev/null || fail "redeliver of a done delivery"
grep -q "control: redeliver of $evt to hook record by pid [0-9]* uid 0" "$T/daemon.log" || fail "redeliver's peer not logged"
grep -q 'control: watch of 1 ids (1 new) by pid' "$T/daemon.log" || fail "watch's peer not logged"
stop_daemon
ok "redeliver while pending refused ('already pending'); mutating requests log the peer's pid and uid"

# 10. Loopback is an address, not a look.
sed -i "s|^api_base = .*|api_base = http://127.1.1.1.1:$SIM_PORT|" "$T/ew.conf"
rc=0; "$DAEMON" --check-config -c "$T/ew.conf" >"$T/check.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'loopback' "$T/check.out" || fail "127.1.1.1.1 accepted as loopback: $(cat "$T/check.out")"
ok "http://127.1.1.1.1/ is not loopback"

# 11. The key is not left in the environment, and an interrupted attempt counts after a crash.
sim POST /_sim/jobs '{"jobs":[{"id":"crash-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.2}]}]}' >/dev/null
rm -rf "$T/state" "$T/hooks"
write_conf "
[hooks]
shutdown_grace = 300ms
[hook slow]
type = exec
command = /bin/sh -c 'echo \$\$ >$T/out/slow.pid; echo \$EMBEDWATCH_ATTEMPT >> $T/out/attempts; exec sleep 27.1828'
on = embed_job.complete
timeout = 1m
"
start_daemon
! tr '\0' '\n' </proc/"$DAEMON_PID"/environ | grep -q -- "$TOKEN" || fail "the API key is still in /proc/PID/environ"
ctl watch crash-1 >/dev/null
wait_until test -s "$T/out/attempts" || fail "slow hook did not start"
kill9_daemon
kill "$(cat "$T/out/slow.pid")" 2>/dev/null || true
start_daemon
wait_until sh -c "[ \$(wc -l < '$T/out/attempts') -ge 2 ]" || fail "the delivery was not repeated after the crash"
[ "$(tr '\n' ' ' <"$T/out/attempts")" = "1 2 " ] || fail "attempts seen by the hook: $(tr '\n' ' ' <"$T/out/attempts")"
ok "API key gone from /proc/PID/environ; after kill -9 mid-attempt the hook sees EMBEDWATCH_ATTEMPT=2"
kill "$(cat "$T/out/slow.pid")" 2>/dev/null || true

# 12. A locked database fails the commit quickly (busy timeout on the loop is short) and is retried.
#     The lock is held until the test lets go of it (a FIFO feeds sqlite3 its COMMIT).
mkfifo "$T/lock.fifo"
sqlite3 "$T/state/embedwatch.db" <"$T/lock.fifo" >"$T/lock.out" 2>&1 &
locker=$!
PIDS+=("$locker")
exec 8>"$T/lock.fifo"
# The busy timeout waits out a commit of the daemon's; "locked" says the lock is the test's.
printf '%s\n' '.timeout 5000' 'BEGIN EXCLUSIVE;' "SELECT 'locked';" >&8
wait_until grep -qx locked "$T/lock.out" || fail "the test could not lock the database: $(cat "$T/lock.out")"
a=$(printf '%s\n' '{"cmd":"watch","ids":["locked-1"]}' | ctl_lines 1)
echo "$a" | jq -e '.ok == false and (.error | test("not writable")) and .added == 1' >/dev/null || fail "watch under a lock: $a"
echo 'COMMIT;' >&8
exec 8>&-
wait "$locker"
wait_until sh -c "[ \"\$(sqlite3 '$T/state/embedwatch.db' \"select count(*) from jobs where id='locked-1'\")\" = 1 ]" \
	|| fail "the watch was not written after the lock went"
ok "locked database: the watch is answered at once with the reason, and written once the lock is gone"
stop_daemon

# 13. Non-dumpable: run as nobody, the daemon's /proc entries belong to root (no core, no ptrace by its user).
if part_requires "non-dumpable check (13)" root setpriv; then
	mkdir -p "$T/nobody"
	chown 65534:65534 "$T/nobody"
	chmod 755 "$T"
	sed -e "s|^state_dir = .*|state_dir = $T/nobody/state|" -e "s|^control_socket = .*|control_socket = $T/nobody/ctl.sock|" \
		"$T/ew.conf" >"$T/nobody.conf"
	chmod 644 "$T/nobody.conf"
	CO_API_KEY=$TOKEN setpriv --reuid=65534 --regid=65534 --clear-groups "$DAEMON" -c "$T/nobody.conf" >>"$T/daemon.log" 2>&1 &
	np=$!
	PIDS+=("$np")
	wait_until "$CTL" -s "$T/nobody/ctl.sock" status || fail "daemon as nobody did not start"
	[ "$(stat -c %u /proc/$np/status)" = 0 ] || fail "/proc/$np/status owned by $(stat -c %u /proc/$np/status): the process is dumpable"
	kill -TERM "$np"
	wait "$np" || fail "daemon as nobody did not stop cleanly"
	ok "running as nobody, the daemon's /proc entries are root's: it is not dumpable"
fi
