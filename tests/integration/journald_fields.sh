# Under journald, log lines carry PRIORITY and the fields JOB_ID, EVENT_ID,
# EVENT and HOOK. A private mount namespace puts a datagram socket where
# journald's is, so the test reads exactly what the daemon sends. Needs root.
. "$top_srcdir/tests/integration/lib.sh"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a mount namespace"; exit 77; }
unshare -m true 2>/dev/null || { echo "SKIP: no mount namespaces here"; exit 77; }
start_sim
sim POST /_sim/jobs '{"id":"jf1","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.3}]}' >/dev/null
write_conf
cat >"$T/inner.sh" <<INNER
set -e
mkdir -p /run/systemd/journal
mount -t tmpfs tmpfs /run/systemd/journal
"$top_builddir/tests/notify-recv" /run/systemd/journal/socket >"$T/journal.out" 2>&1 &
recv=\$!
for _ in \$(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
: >"$T/stderr"
export JOURNAL_STREAM=\$(stat -c '%d:%i' "$T/stderr")
CO_API_KEY=$TOKEN "$DAEMON" -c "$T/ew.conf" 2>>"$T/stderr" &
d=\$!
for _ in \$(seq 200); do "$CTL" -s "$T/ctl.sock" status >/dev/null 2>&1 && break; sleep 0.05; done
"$CTL" -s "$T/ctl.sock" watch jf1 >/dev/null
"$CTL" -s "$T/ctl.sock" wait jf1 --timeout 10s >/dev/null
for _ in \$(seq 100); do grep -q '^HOOK=record' "$T/journal.out" && break; sleep 0.05; done
kill -TERM \$d; wait \$d
kill \$recv
INNER
unshare -m bash "$T/inner.sh" || fail "inner run failed"
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
