#!/usr/bin/env bash
# requires: sqlite3 python3 nc
# The control socket at scale: list, list --json and completion's query with
# 200,000 watched jobs of UUID-style ids (the state built with sqlite3 before
# the start: the answers, not the polling, are under test), paged answers on
# the socket, wait - of 30,000 ids (over the daemon's 1 MiB request cap in one
# request), a closed output pipe (EPIPE said, exit 6), a daemon that does not
# answer (exit 5 after --timeout), and 1,000 clients blocked in wait while
# status still answers, with max_waiters refusing one wait more.
. "$top_srcdir/tests/integration/lib/lib.sh"


N=200000
start_sim --clock manual
sim POST /_sim/jobs '{"jobs":[{"id":"w-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":10}]}]}' >/dev/null
write_conf "
[embedwatch]
max_waiters = 1000
"
start_daemon
stop_daemon
# 200,000 ended (complete) jobs: restored, listed, never polled.
now=$(now_ms)
sqlite3 "$T/state/embedwatch.db" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $N - 1)
  INSERT INTO jobs(id, batch, status, added_ms, updated_ms) SELECT printf('%08x-7d1c-4e2a-9b3f-%012d', i * 2654435761 % 4294967296, i),
  NULL, 3, $now, $now FROM n;
  WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 10499)
  INSERT INTO events(id, type, subject, batch, ts_ms, payload) SELECT printf('evt_%032d', i), 'embed_job.complete',
  printf('job-%d', i), NULL, $now, '{}' FROM n;
  INSERT INTO deliveries(event_id, hook, state, attempts, next_ms, last_error, updated_ms)
  SELECT id, 'record', 'done', 1, $now, NULL, $now FROM events;"
start_daemon
[ "$(status_field jobs)" = "$N" ] || fail "restored $(status_field jobs) jobs, not $N"

# 1. list: one table of N rows, every id once, in order.
ctl list >"$T/list.txt" || fail "list failed: $(tail -3 "$T/daemon.log")"
[ "$(tail -n +2 "$T/list.txt" | awk '{print $1}' | sort -u | wc -l)" = "$N" ] || fail "list: $(wc -l <"$T/list.txt") lines"
tail -n +2 "$T/list.txt" | awk '{print $1}' | LC_ALL=C sort -c || fail "list is not in id order"
# list --json: one valid JSON document with N distinct ids, as one answer used to print it.
ctl list --json >"$T/list.json" || fail "list --json failed"
# One pass of jq over the document (each costs seconds at this size): the distinct ids, the
# statuses, and the ids the pages and completion below start from.
{ read -r distinct; read -r all_complete; read -r last; read -r first; } \
	< <(jq -r '(map(.id) | unique | length), all(.status == "complete"), .[-2].id, .[0].id' "$T/list.json")
[ "$distinct" = "$N" ] || fail "list --json: $distinct distinct ids, not $N"
[ "$all_complete" = true ] || fail "list --json: statuses"
! grep -q 'does not read its answers\|dropping a client' "$T/daemon.log" || fail "a client was dropped"
ok "list and list --json of $N jobs: every id once, in order, one JSON document"

# The socket: pages of at most 10,000 with "next"; the last page has none.
a=$(printf '{"cmd":"list","limit":3}\n' | ctl_lines 1)
echo "$a" | jq -e '(.jobs | length) == 3 and .next == .jobs[2].id' >/dev/null || fail "page of 3: $a"
a=$(printf '{"cmd":"list"}\n' | ctl_lines 1)
echo "$a" | jq -e '(.jobs | length) == 10000 and (.next | type) == "string"' >/dev/null || fail "default page: $(echo "$a" | head -c 300)"
a=$(jq -cn --arg a "$last" '{cmd: "list", after: $a}' | ctl_lines 1)
echo "$a" | jq -e '(.jobs | length) == 1 and (has("next") | not)' >/dev/null || fail "last page: $a"
a=$(printf '{"cmd":"list","after":7}\n' | ctl_lines 1)
echo "$a" | jq -e '.ok == false and (.error | test("after"))' >/dev/null || fail "bad after: $a"
ok "list pages: limit, next, after; the last page has no next; a bad after is refused"

# Completion reads the same list: the ids of the daemon come back.
if [ -f "$top_srcdir/contrib/bash-completion/embedwatchctl" ]; then
	got=$(PATH="$top_builddir:$PATH" bash -c ". '$top_srcdir/contrib/bash-completion/embedwatchctl'
		COMP_WORDS=(embedwatchctl -s '$T/ctl.sock' show ${first:0:12}); COMP_CWORD=4; _embedwatchctl; printf '%s\n' \"\${COMPREPLY[@]}\"")
	echo "$got" | grep -qx "$first" || fail "completion of ${first:0:12}: $(echo "$got" | head -3)"
	ok "completion of a job id among $N"
fi

# deliveries, which grows with the events: the newest 10,000, and the answer says there are more.
ctl deliveries >"$T/deliveries.txt" 2>"$T/deliveries.err" || fail "deliveries failed: $(cat "$T/deliveries.err")"
[ "$(tail -n +2 "$T/deliveries.txt" | wc -l)" = 10000 ] || fail "deliveries: $(wc -l <"$T/deliveries.txt") lines"
grep -q 'the newest 10000 deliveries shown, there are more' "$T/deliveries.err" || fail "no word of the rest: $(cat "$T/deliveries.err")"
ctl deliveries --json | jq -e '.truncated == true and .limit == 10000 and (.deliveries | length) == 10000' >/dev/null \
	|| fail "deliveries --json: $(ctl deliveries --json | jq -c '{truncated, limit, n: (.deliveries | length)}')"
ok "deliveries of 10,500: the newest 10,000, and the answer (and stderr) says there are more"

# 2. wait - of 30,000 ended ids: in chunks (one request would pass 1 MiB), every id answered once.
awk 'NR > 1 && NR <= 30001 {print $1}' "$T/list.txt" >"$T/ids30k"
[ "$(wc -c <"$T/ids30k")" -gt 1048576 ] || fail "the ids fit one request; the test proves nothing"
ctl wait - <"$T/ids30k" >"$T/wait.out" || fail "wait - of 30,000 ids: exit $?"
[ "$(awk '$2 == "complete" {print $1}' "$T/wait.out" | sort -u | wc -l)" = 30000 ] || fail "wait: $(wc -l <"$T/wait.out") lines"
ok "wait - of 30,000 ids: exit 0, 30,000 distinct ids complete"

# 3. A reader that goes away: EPIPE said, exit 6, no silent death by SIGPIPE.
{ rc=0; ctl list 2>"$T/epipe.err" || rc=$?; echo "$rc" >"$T/epipe.rc"; } | head -n 1 >/dev/null
rc=$(cat "$T/epipe.rc")
[ "$rc" = 6 ] || fail "list | head: exit $rc ($(cat "$T/epipe.err"))"
grep -q 'cannot write the output: Broken pipe' "$T/epipe.err" || fail "list | head said: $(cat "$T/epipe.err")"
ok "list | head -1: exit 6, \"$(cat "$T/epipe.err")\""

# 4. A daemon that accepts and never answers: the command ends after --timeout, exit 5, saying why.
python3 -c '
import socket, sys, os
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
open(sys.argv[2], "w").close()
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' "$T/mute.sock" "$T/mute.ready" &
PIDS+=($!)
wait_until test -e "$T/mute.ready"
rc=0; "$CTL" -s "$T/mute.sock" --timeout 1s status 2>"$T/mute.err" || rc=$?
[ "$rc" = 5 ] || fail "mute daemon: exit $rc"
grep -q 'the daemon did not answer within 1 s' "$T/mute.err" || fail "mute daemon said: $(cat "$T/mute.err")"
rc=0; EMBEDWATCH_TIMEOUT=1s "$CTL" -s "$T/mute.sock" list 2>/dev/null || rc=$?
[ "$rc" = 5 ] || fail "mute daemon, EMBEDWATCH_TIMEOUT: exit $rc"
ok "a daemon that does not answer: exit 5, \"$(cat "$T/mute.err")\""

# 5. 1,000 clients blocked in wait (the old cap was 256 connections in all): status still answers,
# one wait more is refused by max_waiters, and every waiter hears when the job ends.
ctl watch w-1 >/dev/null
wait_until ctl_jq '.job.status == "processing"' show w-1 --json || fail "w-1 not observed"
python3 -c '
import resource, socket, sys, json, time
n = int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 64)), hard))
def waiting():
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.sendall(b"{\"cmd\":\"status\"}\n")
    a = json.loads(s.makefile("r").readline()); s.close()
    return a["status"]["waiting_clients"]
conns = []
for i in range(n):
    c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])
    c.sendall(b"{\"cmd\":\"wait\",\"ids\":[\"w-1\"]}\n"); conns.append(c)
    # 50 at a time, each group waited for (the condition, not the clock), as a fleet starting in waves.
    if len(conns) % 50 == 0:
        while waiting() < len(conns):
            time.sleep(0.05)
open(sys.argv[3], "w").close()
ok = 0
for c in conns:
    f = c.makefile("r")
    a = json.loads(f.readline())
    ok += a.get("ok") is True and a["jobs"][0]["status"] == "complete"
print(ok)
' "$T/ctl.sock" 1000 "$T/waiters.sent" >"$T/waiters.out" 2>"$T/waiters.err" &
waiters=$!
PIDS+=("$waiters")
wait_until test -e "$T/waiters.sent" || fail "waiters: $(cat "$T/waiters.err")"
wait_until sh -c "[ \"\$('$CTL' -s '$T/ctl.sock' --json status | jq .status.waiting_clients)\" = 1000 ]" \
	|| fail "waiting clients: $(status_field waiting_clients)"
ctl status >/dev/null || fail "status refused with 1,000 waiters"
ctl list --status processing --json | jq -e 'length == 1' >/dev/null || fail "list with 1,000 waiters"
rc=0; ctl wait w-1 2>"$T/refused.err" || rc=$?
[ "$rc" = 3 ] || fail "the 1,001st wait: exit $rc"
grep -q 'too many waiting clients (1000' "$T/refused.err" || fail "the 1,001st wait said: $(cat "$T/refused.err")"
ok "1,000 waiting clients: status and list answer; wait number 1,001 refused: \"$(cat "$T/refused.err")\""
sim_advance 10s >/dev/null
wait "$waiters" || fail "waiters: $(cat "$T/waiters.err")"
[ "$(cat "$T/waiters.out")" = 1000 ] || fail "waiters answered complete: $(cat "$T/waiters.out")"
ok "all 1,000 waiters answered complete when the job ended"
stop_daemon
