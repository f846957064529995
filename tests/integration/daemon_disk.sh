# Disk trouble at run time: the state directory fills up, then becomes
# read-only. The daemon says so, keeps polling, and loses nothing once it
# recovers. Needs root (mount); skipped otherwise.
. "$top_srcdir/tests/integration/lib.sh"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to mount a small tmpfs"; exit 77; }
mkdir -p "$T/state"
mount -t tmpfs -o size=2m tmpfs "$T/state" || { echo "SKIP: cannot mount tmpfs"; exit 77; }
umount_state() { umount "$T/state" 2>/dev/null || umount -l "$T/state" 2>/dev/null || true; }
trap 'umount_state; cleanup' EXIT

start_sim
write_conf
start_daemon
jq -cn '{jobs: [range(60) as $i | {id: ("d" + ($i|tostring)), timeline: [{status:"processing",at:0},
	{status: (["complete","failed","cancelled"][$i % 3]), at: (2 + ($i % 20) * 0.1)}]}]}' | sim POST /_sim/jobs "$(cat)" >/dev/null
seq 0 59 | sed 's/^/d/' | ctl watch --batch disk - >/dev/null

# Fill the disk before the jobs end.
dd if=/dev/zero of="$T/state/filler" bs=64k 2>/dev/null || true
sleep 3.5
wait_for 10 grep -q "state database write failed" "$T/daemon.log" || fail "full disk not reported"
ctl status | grep -q "STATE DATABASE NOT WRITABLE" || fail "status does not say the database is not writable"
polls_before=$(sim GET '/_sim/stats?jobs=0' | jq .requests.poll)
[ "$(grep -c ' embed_job\.' "$T/hooks/events" 2>/dev/null || echo 0)" = 0 ] || fail "hooks ran for uncommitted events"
ok "disk full: reported in the log and status; no hook runs for events not yet committed"

# Recover: the events held in memory are committed and delivered.
rm -f "$T/state/filler"
wait_for 40 grep -q "state database writable again" "$T/daemon.log" || fail "no recovery"
wait_for 20 sh -c "[ \$(awk '\$2 ~ /embed_job\.(complete|failed|cancelled)\$/' '$T/hooks/events' | wc -l) = 60 ]" \
	|| fail "after recovery: $(awk '$2 ~ /embed_job\.(complete|failed|cancelled)$/' "$T/hooks/events" | wc -l) of 60 delivered"
ok "recovered: all 60 terminal events delivered"

# A second episode: polling goes on while commits fail, and nothing is lost.
sim POST /_sim/jobs '{"id":"full2","timeline":[{"status":"processing","at":0},{"status":"complete","at":1.5}]}' >/dev/null
ctl watch full2 >/dev/null
dd if=/dev/zero of="$T/state/filler" bs=64k 2>/dev/null || true
p0=$(sim GET '/_sim/stats?jobs=0' | jq .requests.poll)
sleep 2.5
p1=$(sim GET '/_sim/stats?jobs=0' | jq .requests.poll)
[ "$p1" -gt "$p0" ] || fail "polling stopped while the disk was full"
! grep -q ' full2 ' "$T/hooks/events" || fail "hook ran before the commit"
rm -f "$T/state/filler"
wait_for 40 grep -q ' embed_job.complete full2 ' "$T/hooks/events" || fail "full2 lost"
ok "second episode: polling went on ($p0 -> $p1 polls), the event was delivered after recovery"
stop_daemon
[ "$(hook_lines | awk '{print $1}' | sort | uniq -d | wc -l)" = 0 ] || fail "duplicates"
ok "no duplicates"
