#!/usr/bin/env bash
# requires: root tmpfs
# Disk trouble at run time: the state directory fills up, then becomes
# read-only. The daemon says so, keeps polling, and loses nothing once it
# recovers. Needs root (mount); skipped otherwise.
. "$top_srcdir/tests/integration/lib/lib.sh"

mkdir -p "$T/state"
mount -t tmpfs -o size=2m tmpfs "$T/state" || fail "cannot mount a tmpfs on $T/state"
umount_state() { umount "$T/state" 2>/dev/null || umount -l "$T/state" 2>/dev/null || true; }
# cleanup reports a failure by the exit status it finds in $?: hand it the test's, not umount's.
trap 'rc=$?; set +e; umount_state; (exit $rc); cleanup' EXIT

start_sim
write_conf
start_daemon
TERMINAL=' embed_job\.\(complete\|failed\|cancelled\)'
# disk_jobs STEPS: the 60 jobs d0..d59 with a timeline (jq, $i the index).
disk_jobs() { jq -cn "{jobs: [range(60) as \$i | {id: (\"d\" + (\$i|tostring)), timeline: $1}]}" | sim POST /_sim/jobs "$(cat)" >/dev/null; }
ended_in_memory() { [ "$(ctl --json status | jq '.status.by_status | (.complete // 0) + (.failed // 0) + (.cancelled // 0)')" -ge "$1" ]; }
requests() { sim GET '/_sim/stats?jobs=0' | jq '.requests.poll + .requests.list'; }
# The jobs run until the disk is full, then end: no timeline to race.
disk_jobs '[{status:"processing",at:0}]'
seq 0 59 | sed 's/^/d/' | ctl watch --batch disk - >/dev/null

# Fill the disk, then let the jobs end: the daemon sees every end and cannot commit one.
dd if=/dev/zero of="$T/state/filler" bs=64k 2>/dev/null || true
disk_jobs '[{status: (["complete","failed","cancelled"][$i % 3]), at: (($i % 20) * 0.05)}]'
wait_until ended_in_memory 60 || fail "the daemon did not see the jobs end: $(ctl --json status | jq -c .status.by_status)"
wait_until grep -q "state database not writable" "$T/daemon.log" || fail "full disk not reported"
ctl status | grep -q "STATE DATABASE NOT WRITABLE" || fail "status does not say the database is not writable"
[ "$(hook_ids ' embed_job\.')" = 0 ] || fail "hooks ran for uncommitted events"
ok "disk full: 60 ends seen, reported in the log and status; no hook runs for events not yet committed"

# Recover: the events held in memory are committed and delivered.
rm -f "$T/state/filler"
wait_until grep -q "state database writable again" "$T/daemon.log" || fail "no recovery"
wait_until hook_has_ids 60 "$TERMINAL d" || fail "after recovery: $(hook_ids "$TERMINAL d") of 60 delivered"
ok "recovered: all 60 terminal events delivered"

# A second episode: polling goes on while commits fail, and nothing is lost. full2 runs until the
# disk is full again; its end, seen while the disk is full, proves the daemon still polled.
sim POST /_sim/jobs '{"id":"full2","timeline":[{"status":"processing","at":0}]}' >/dev/null
ctl watch full2 >/dev/null
n0=$(grep -c 'state database not writable' "$T/daemon.log")
dd if=/dev/zero of="$T/state/filler" bs=64k 2>/dev/null || true
p0=$(requests)
sim POST /_sim/jobs '{"id":"full2","timeline":[{"status":"complete","at":0}]}' >/dev/null
full2_seen() { ctl list --json | jq -e 'map(select(.id == "full2"))[0].status == "complete"' >/dev/null; }
wait_until full2_seen || fail "polling stopped while the disk was full"
wait_until sh -c "[ \$(grep -c 'state database not writable' '$T/daemon.log') -gt $n0 ]" || fail "second full disk not reported"
p1=$(requests)
! grep -q ' full2 ' "$T/hooks/events" || fail "hook ran before the commit"
rm -f "$T/state/filler"
wait_until grep -q ' embed_job.complete full2 ' "$T/hooks/events" || fail "full2 lost"
ok "second episode: polling went on ($p0 -> $p1 requests), the event was delivered after recovery"
stop_daemon
[ "$(hook_lines | awk '{print $1}' | sort | uniq -d | wc -l)" = 0 ] || fail "duplicates"
ok "no duplicates"
