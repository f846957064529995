#!/usr/bin/env bash
# requires: sqlite3
# retention: jobs that ended longer ago are forgotten, in memory and on disk,
# with their events and finished deliveries; a pending delivery keeps its event.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
# All three run until their rows are checked; then r1 and r2 end (r3 never does): retention's
# 1.5 s cannot pass before the check on a loaded machine.
sim POST /_sim/jobs '{"jobs":[{"id":"r1","timeline":[{"status":"processing","at":0}]},
 {"id":"r2","timeline":[{"status":"processing","at":0}]},{"id":"r3","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
cat >"$T/fail.sh" <<'SH'
#!/bin/sh
exit 1
SH
chmod +x "$T/fail.sh"
write_conf "
[hook stuck]
type = exec
command = $T/fail.sh
on = embed_job.failed
retry = 1h
"
sed -i 's/^\[embedwatch\]/[embedwatch]\nretention = 1500ms/; s/^\[hooks\]/[hooks]\ndelivery_retention = 1500ms/' "$T/ew.conf"
grep -q '^\[hooks\]' "$T/ew.conf" || printf '[hooks]\ndelivery_retention = 1500ms\n' >>"$T/ew.conf"
start_daemon
ctl watch --batch old r1 r2 >/dev/null
ctl watch r3 >/dev/null
db() { sqlite3 "$T/state/embedwatch.db" "$1"; }
[ "$(db 'select count(*) from jobs')" = 3 ] || fail "jobs not stored"
sim POST /_sim/jobs '{"jobs":[{"id":"r1","timeline":[{"status":"complete","at":0}]},{"id":"r2","timeline":[{"status":"failed","at":0}]}]}' >/dev/null
# A sync point, not a check: exit 1 (r2 failed), or 3 if retention forgot the batch first.
ctl wait --batch old --timeout "${EW_LIMIT}s" >/dev/null || true
wait_until grep -q ' batch.done ' "$T/hooks/events" || fail "batch.done"
# r1 and r2 end together but may be seen in different polls, and so forgotten by different sweeps.
wait_until ctl_jq 'map(.id) == ["r3"]' list --json || fail "list: $(ctl list --json | jq -c 'map(.id)')"
ctl batches --json | jq -e '.batches | length == 0' >/dev/null || fail "batch not forgotten"
[ "$(db 'select group_concat(id) from jobs')" = r3 ] || fail "jobs table: $(db 'select group_concat(id) from jobs')"
# A finished delivery is kept its own delivery_retention from when it finished, which on a loaded
# machine is later than the job's end: its rows, and the event they need, go a little later.
db_zero() { [ "$(db "$1")" = 0 ]; }
wait_until db_zero "select count(*) from events where subject = 'r1'" || fail "r1's events kept"
wait_until db_zero "select count(*) from deliveries where state = 'done'" || fail "done deliveries kept"
[ "$(db 'select count(*) from batches')" = 0 ] || fail "batches kept"
# r2's failed event still has a pending delivery (the stuck hook): it stays.
[ "$(db "select count(*) from deliveries where state = 'pending' and hook = 'stuck'")" = 1 ] || fail "pending delivery lost"
[ "$(db "select count(*) from events where subject = 'r2' and type = 'embed_job.failed'")" = 1 ] || fail "event of a pending delivery pruned"
forgot=$(sed -n 's/.*forgot \([0-9]*\) jobs that ended more than 1 s ago.*/\1/p' "$T/daemon.log" | awk '{n += $1} END {print n + 0}')
[ "$forgot" = 2 ] || fail "logged as forgotten: $forgot jobs"
ok "retention: ended jobs, their events, done deliveries and the fired batch forgotten; a pending delivery keeps its event"
stop_daemon
