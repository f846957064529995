#!/usr/bin/env bash
# requires: none
# Every file the daemon writes by name is created safely: a symlink planted
# at every temporary name it used to use or could be made to follow (the
# metrics file's old NAME.tmp, the metrics file itself, the state database
# and its -wal, -shm and -journal files, the control socket) is left alone and
# its target untouched. The metrics file comes from a fresh mkstemp temporary
# in its directory, renamed over it, mode 0644; no temporary is left behind.
. "$top_srcdir/tests/integration/lib/lib.sh"

# target NAME: a file with known content only its owner may read, which nothing may change.
target() { printf 'precious %s\n' "$1" >"$T/$1"; chmod 600 "$T/$1"; }
untouched() { [ "$(cat "$T/$1")" = "precious $1" ] && [ "$(stat -c %a "$T/$1")" = 600 ] || fail "$1 was changed: $(stat -c '%a %s' "$T/$1")"; }

start_sim
mkdir -p "$T/textfile"
prom="$T/textfile/embedwatch.prom"
write_conf "
[embedwatch]
metrics_file = $prom
"
target old-tmp; target prom-link
ln -s "$T/old-tmp" "$prom.tmp"
ln -s "$T/prom-link" "$prom"
start_daemon
# The first write replaces the symlink at the file's name with a regular file; NAME.tmp is not touched.
wait_until sh -c "[ ! -L '$prom' ] && grep -q '^embedwatch_jobs' '$prom'" || fail "metrics file not written: $(ls -la "$T/textfile")"
[ "$(stat -c %a "$prom")" = 644 ] || fail "metrics file mode $(stat -c %a "$prom")"
[ -L "$prom.tmp" ] && [ "$(readlink "$prom.tmp")" = "$T/old-tmp" ] || fail "the symlink at NAME.tmp was changed"
untouched old-tmp; untouched prom-link
# Again after a reload (which writes the file at once), with the file gone.
rm -f "$prom"
kill -HUP "$DAEMON_PID"
wait_until grep -q '^embedwatch_jobs' "$prom" || fail "metrics file not written again"
untouched old-tmp
stop_daemon
[ -z "$(find "$T/textfile" -name '.embedwatch.prom.*')" ] || fail "temporaries left: $(ls -la "$T/textfile")"
ok "metrics file: symlinks at NAME.tmp and at NAME left alone or replaced, their targets untouched; mode 0644; no temporary left"

# The state database and the files SQLite makes beside it: a symlink at any of them is refused at
# start (a clear error), never written through. Each case starts from an empty state directory.
for f in embedwatch.db embedwatch.db-wal embedwatch.db-shm embedwatch.db-journal; do
	rm -rf "$T/state"; mkdir -p "$T/state"
	target "$f"
	if [ "$f" != embedwatch.db ]; then
		# A database that exists, so SQLite opens the file beside it.
		start_daemon; stop_daemon
		rm -f "$T/state/$f"
	fi
	ln -s "$T/$f" "$T/state/$f"
	: >"$T/daemon.log"
	rc=0
	timeout $((EW_LIMIT)) env CO_API_KEY="$TOKEN" "$DAEMON" -c "$T/ew.conf" >>"$T/daemon.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	# It either refuses to start, or (a -shm/-journal it never opens) runs without writing through the link.
	if wait_until sh -c "! kill -0 $pid 2>/dev/null || '$CTL' -s '$T/ctl.sock' status"; then :; fi
	if kill -0 "$pid" 2>/dev/null; then
		ctl watch ok1 >/dev/null || true
		kill -TERM "$pid"; wait "$pid" || rc=$?
		[ "$rc" = 0 ] || fail "$f: daemon exited $rc"
		what="ran without following it"
	else
		wait "$pid" || rc=$?
		[ "$rc" != 0 ] || fail "$f: the daemon exited 0 with a symlinked $f"
		grep -q 'state database' "$T/daemon.log" || fail "$f: no clear error: $(tail -3 "$T/daemon.log")"
		what="refused at start: $(grep -o 'state database.*' "$T/daemon.log" | head -1)"
	fi
	[ -L "$T/state/$f" ] || fail "$f: the symlink was replaced"
	untouched "$f"
	ok "symlink at $f: $what; its target untouched"
done

# The control socket's name: a symlink there is not removed or bound through.
rm -rf "$T/state"
target sock-target
ln -s "$T/sock-target" "$T/ctl.sock"
rc=0; CO_API_KEY="$TOKEN" "$DAEMON" -c "$T/ew.conf" >"$T/sock.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q 'exists and is not a socket' "$T/sock.log" || fail "control socket symlink: exit $rc, $(cat "$T/sock.log")"
[ -L "$T/ctl.sock" ] || fail "the symlink at the control socket was removed"
untouched sock-target
ok "symlink at the control socket's name: refused at start, left alone, its target untouched"
