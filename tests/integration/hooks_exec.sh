#!/usr/bin/env bash
# requires: none
# Exec hooks: retries with backoff, timeouts kill the process group, dead
# letters, no shell anywhere, max_age, deliveries listing and redeliver.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
# A hook that fails twice then succeeds; one that hangs; one that always fails.
cat >"$T/flaky.sh" <<'SH'
#!/bin/sh
n=$(cat "$1/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n >"$1/count"
echo "attempt $n at $(date +%s%N)" >>"$1/times"
echo "flaky stdout line"; echo "flaky stderr line" >&2
[ $n -ge 3 ]
SH
cat >"$T/hang.sh" <<'SH'
#!/bin/sh
sleep 300 &
echo $! >"$1/child"
echo $$ >"$1/pid"
# Hangs until the daemon's timeout kills it (exec: the pid written above is the one that hangs).
exec sleep 300
SH
cat >"$T/slow.sh" <<'SH'
#!/bin/sh
# The sleep makes runs overlap, so the concurrency caps are reached; nothing waits on its length.
echo "start $(date +%s%N) $EMBEDWATCH_EVENT_ID" >>"$1/log"; sleep 0.4; echo "end $(date +%s%N) $EMBEDWATCH_EVENT_ID" >>"$1/log"
SH
cat >"$T/argv.sh" <<'SH'
#!/bin/sh
# Records its argv and stdin exactly.
out=$1; shift
for a in "$@"; do printf '[%s]\n' "$a"; done >"$out.argv"
# What it was started with besides: its signals (none blocked or ignored: grep's own, as it
# inherited them; the shell's masks change while it waits for a command), its session and cwd.
{ grep -E '^Sig(Blk|Ign):' /proc/self/status; ps -o sid= -p $$; echo "pid $$"; pwd; } >"$out.proc"
cat >"$out.stdin"
SH
chmod +x "$T/flaky.sh" "$T/hang.sh" "$T/argv.sh" "$T/slow.sh"
mkdir -p "$T/flaky" "$T/hang" "$T/argv" "$T/slow" "$T/slow2"
write_conf "
[hook flaky]
type = exec
command = $T/flaky.sh $T/flaky
on = embed_job.complete
retry = 300ms 600ms
max_attempts = 5
[hook hang]
type = exec
command = $T/hang.sh $T/hang
on = embed_job.failed
timeout = 500ms
max_attempts = 2
retry = 100ms
[hook argv]
type = exec
command = $T/argv.sh $T/argv/out '\$(touch $T/pwned)' \"; rm -rf $T\" '\`id\`' a\\ b
on = embed_job.cancelled
[hook missing]
type = exec
command = $T/no-such-program
on = embed_job.cancelled
max_attempts = 2
retry = 100ms
[hook slow]
type = exec
command = $T/slow.sh $T/slow
on = embed_job.complete
concurrency = 2
[hook slow2]
type = exec
command = $T/slow.sh $T/slow2
on = embed_job.complete
concurrency = 8
[hooks]
max_concurrent = 4
"
sed -i 's/^\[embedwatch\]/[embedwatch]\nmax_age = 2s/' "$T/ew.conf"
start_daemon

sim POST /_sim/jobs '{"jobs":[
 {"id":"h-ok","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.2}]},
 {"id":"h-fail","timeline":[{"status":"processing","at":0},{"status":"failed","at":0.2}]},
 {"id":"h-evil","name":"$(touch /tmp/ew-pwned); `reboot`; \"quote\" \\\\ back\nnewline ünïcode","timeline":[{"status":"processing","at":0},{"status":"cancelled","at":0.2}]},
 {"id":"h-forever"}]}' >/dev/null
ctl watch h-ok h-fail h-evil h-forever >/dev/null

# Retries: fails twice, then delivered on attempt 3, with the backoff between.
wait_until sh -c "ctl() { \"$CTL\" -s \"$T/ctl.sock\" \"\$@\"; }; ctl deliveries --json | jq -e '.deliveries[] | select(.hook==\"flaky\" and .state==\"done\" and .attempts==3)'" \
	|| fail "flaky hook not delivered on attempt 3: $(ctl deliveries)"
gaps=$(awk '{print $4}' "$T/flaky/times" | awk 'NR>1 {printf "%d ", ($1-p)/1000000} {p=$1}')
set -- $gaps
[ "$1" -ge 250 ] && [ "$2" -ge 500 ] || fail "retry gaps $gaps ms, expected >= 270 and >= 540"
grep -q 'hook flaky failed on evt_.* (attempt 1 of 5): exit status 1; retrying' "$T/daemon.log" || fail "failure not logged"
grep -q 'hook flaky: flaky stderr line' "$T/daemon.log" || fail "hook output not logged"
ok "exec retry: failed, failed, delivered; gaps $gaps ms; output and exit status logged"

# Timeout: TERM to the whole process group (its background child too), then dead after max_attempts.
wait_until sh -c "\"$CTL\" -s \"$T/ctl.sock\" deliveries --state dead --json | jq -e '.deliveries[] | select(.hook==\"hang\")'" \
	|| fail "hanging hook not dead: $(ctl deliveries)"
ctl deliveries --state dead --json | jq -e '.deliveries[] | select(.hook=="hang") | .attempts == 2 and (.last_error|test("timed out"))' >/dev/null \
	|| fail "dead delivery details: $(ctl deliveries --state dead --json)"
for f in pid child; do
	p=$(cat "$T/hang/$f")
	wait_until eval '! alive "$p"' || fail "hang hook's $f ($p) still alive after the timeout"
done
grep -q 'hook hang gave up on evt_.* after 2 attempts: timed out' "$T/daemon.log" || fail "dead letter not logged"
ok "timeout kills the hook's process group; dead after max_attempts, logged"

# A program that is not there: each attempt fails at once with the reason, and the hook gives up.
wait_until grep -q 'hook missing gave up on evt_.* after 2 attempts: exit status 127' "$T/daemon.log" \
	|| fail "missing program: no dead letter: $(grep 'hook missing' "$T/daemon.log")"
grep -q "hook missing: cannot run $T/no-such-program: No such file or directory" "$T/daemon.log" \
	|| fail "missing program: the reason is not logged: $(grep 'hook missing' "$T/daemon.log")"
ok "a hook whose program is missing fails with the reason, then dead after max_attempts"

# No shell: metacharacters in argv and in the payload arrive byte-exact and run nothing.
wait_until test -s "$T/argv/out.stdin" || fail "argv hook did not run"
printf '[%s]\n' '$(touch '"$T"'/pwned)' "; rm -rf $T" '`id`' 'a b' | cmp -s - "$T/argv/out.argv" || fail "argv changed: $(cat "$T/argv/out.argv")"
want=$(sim GET /_sim/jobs/h-evil | jq -r .name)
got=$(jq -r .data.name "$T/argv/out.stdin")
[ "$want" = "$got" ] && case "$got" in *'$(touch /tmp/ew-pwned)'*'`reboot`'*) true ;; *) false ;; esac \
	|| fail "payload not byte-exact: want [$want] got [$got]"
[ ! -e "$T/pwned" ] && [ ! -e /tmp/ew-pwned ] || fail "a metacharacter ran something"
ok "no shell: argv and payload with shell metacharacters arrive byte-exact, nothing runs"
# The daemon ignores SIGPIPE and blocks nothing the hook should keep; the hook leads its own session at /.
{ read -r _ blk; read -r _ ign; read -r sid; read -r _ pid; read -r cwd; } <"$T/argv/out.proc"
[ "$blk" = 0000000000000000 ] && [ "$ign" = 0000000000000000 ] || fail "hook started with signals blocked ($blk) or ignored ($ign)"
[ "$sid" = "$pid" ] && [ "$cwd" = / ] || fail "hook not in its own session at /: sid $sid pid $pid cwd $cwd"
ok "the hook starts with every signal at its default, in its own session, at /"

# max_age: a job watched longer ends with embed_job.expired.
wait_until grep -q ' embed_job.expired h-forever ' "$T/hooks/events" || fail "no expired event"
ctl show h-forever --json | jq -e '.job.status == "expired"' >/dev/null || fail "status not expired"
ok "max_age: embed_job.expired"

# redeliver: an event delivered once goes out again, same id, to the hook named.
ev=$(awk '$2 == "embed_job.complete" && $3 == "h-ok" {print $1}' "$T/hooks/events" | sed -n 1p)
[ -n "$ev" ] || fail "no complete event to redeliver"
ctl redeliver "$ev" --hook record | grep -q 'queued 1' || fail "redeliver"
wait_until sh -c "[ \$(grep -c '^$ev ' '$T/hooks/events') = 2 ]" || fail "redelivery did not arrive"
rc=0; ctl redeliver evt_nonexistent 2>/dev/null || rc=$?
[ $rc = 3 ] || fail "redeliver of an unknown event: exit $rc"
ok "redeliver: same event id delivered again; unknown ids refused"
ctl deliveries | grep -qE '^evt_.* +embed_job.failed +hang +dead +2 ' || fail "deliveries table"
ok "deliveries table shows attempts and the last error"

# Concurrency cap: at most 2 runs of the slow hook at once.
jq -cn '{jobs: [range(6) as $i | {id: ("cc" + ($i|tostring)), timeline: [{status:"processing",at:0},{status:"complete",at:0.1}]}]}' \
	| sim POST /_sim/jobs "$(cat)" >/dev/null
ctl watch cc0 cc1 cc2 cc3 cc4 cc5 >/dev/null
# ended DIR: how many distinct events the slow hook in DIR finished.
ended() { awk '$1 == "end" {print $3}' "$1/log" | sort -u | wc -l; }
wait_until eval '[ "$(ended "$T/slow")" -ge 7 ]' || fail "slow hook runs missing: $(ended "$T/slow") of 7"
peak=$(sort -k2 -n "$T/slow/log" | awk '$1 == "start" {n++; if (n > m) m = n} $1 == "end" {n--} END {print m}')
[ "$peak" -le 2 ] || fail "$peak slow hooks at once, cap is 2"
[ "$peak" = 2 ] || fail "the cap was never reached (peak $peak): runs were serialised"
ok "per-hook concurrency cap: peak $peak runs at once"
wait_until eval '[ "$(ended "$T/slow2")" -ge 7 ]' || fail "slow2 runs missing: $(ended "$T/slow2") of 7"
# The global cap (4) holds over all hooks: slow and slow2 together never exceed it.
gpeak=$(cat "$T/slow/log" "$T/slow2/log" | sort -k2 -n | awk '$1 == "start" {n++; if (n > m) m = n} $1 == "end" {n--} END {print m}')
[ "$gpeak" -le 4 ] || fail "$gpeak hook runs at once, max_concurrent is 4"
p2=$(sort -k2 -n "$T/slow2/log" | awk '$1 == "start" {n++; if (n > m) m = n} $1 == "end" {n--} END {print m}')
[ "$p2" -le 4 ] && [ "$p2" -ge 2 ] || fail "slow2 (concurrency 8) peaked at $p2 under the global cap of 4"
ok "global cap: at most $gpeak runs of the two slow hooks at once (max_concurrent 4; slow2 alone peaked at $p2)"
stop_daemon
