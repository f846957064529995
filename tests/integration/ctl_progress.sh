#!/usr/bin/env bash
# requires: script
# embedwatchctl as a shell tool: `wait` shows one updating progress line on a
# terminal (script(1) gives it one), nothing on a pipe or with --quiet; list
# and batches --watch refresh.
. "$top_srcdir/tests/integration/lib/lib.sh"

# jobs PREFIX N: N jobs ending one by one, from 1 s to about 5 s.
jobs() {
	jq -cn --arg p "$1" --argjson n "$2" '{jobs: [range($n) as $i | {id: ($p + ($i|tostring)),
	  timeline: [{status:"processing",at:0},{status:(if $i % 4 == 3 then "failed" else "complete" end), at:(1 + $i * 0.4)}]}]}'
}
start_sim
write_conf
start_daemon

sim POST /_sim/jobs "$(jobs p- 10)" >/dev/null
ctl watch --batch P $(seq -f 'p-%g' 0 9) >/dev/null
script -qfec "'$CTL' -s '$T/ctl.sock' wait --batch P" /dev/null >"$T/tty.out" 2>&1 || true
tr '\r' '\n' <"$T/tty.out" | grep -a '^.*waiting: ' | sed 's/\x1b\[K//g' >"$T/lines"
distinct=$(grep -ao '[0-9]*/10 ended' "$T/lines" | sort -u | wc -l)
[ "$distinct" -ge 2 ] || fail "the progress line did not change: $(cat "$T/lines")"
grep -aq 'complete [0-9]*, failed [0-9]*, cancelled 0, other 0), [0-9]*s elapsed' "$T/lines" || fail "progress line form: $(tail -n 1 "$T/lines")"
grep -aq 'left' "$T/lines" || fail "no time left estimate: $(tail -n 2 "$T/lines")"
grep -aq '^p-0 complete' "$T/tty.out" || tr '\r' '\n' <"$T/tty.out" | grep -aq 'p-0 complete' || fail "no final answer"
ok "wait on a terminal: the progress line changed $distinct times ($(tail -n 1 "$T/lines" | sed 's/.*waiting: //'))"

sim POST /_sim/jobs "$(jobs q- 6)" >/dev/null
ctl watch --batch Q $(seq -f 'q-%g' 0 5) >/dev/null
ctl wait --batch Q >"$T/pipe.out" 2>"$T/pipe.err" || true
! grep -aq 'waiting:' "$T/pipe.err" "$T/pipe.out" || fail "progress written to a pipe"
sim POST /_sim/jobs "$(jobs r- 6)" >/dev/null
ctl watch --batch R $(seq -f 'r-%g' 0 5) >/dev/null
script -qfec "'$CTL' -s '$T/ctl.sock' wait --quiet --batch R" /dev/null >"$T/quiet.out" 2>&1 || true
! grep -aq 'waiting:' "$T/quiet.out" || fail "progress shown with --quiet"
grep -aq 'r-0 complete' "$T/quiet.out" || fail "--quiet lost the answer: $(cat "$T/quiet.out")"
ok "no progress line on a pipe or with --quiet"

# refreshes OUT HEADER ARGS...: runs embedwatchctl ARGS until it has printed HEADER twice into OUT.
refreshes() {
	local out=$1 header=$2 pid; shift 2
	"$CTL" -s "$T/ctl.sock" "$@" >"$out" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_until sh -c "[ \$(grep -c '^$header' '$out') -ge 2 ]" || { kill "$pid"; fail "$*: $(head -5 "$out")"; }
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}
refreshes "$T/watch.out" 'every 1s: embedwatchctl list' list --watch 1
refreshes "$T/bwatch.out" 'every 1s: embedwatchctl batches' batches --watch=1
rc=0; ctl list --watch 0 >/dev/null 2>&1 || rc=$?
[ $rc = 64 ] || fail "--watch 0 accepted"
ok "list --watch and batches --watch refresh; a bad interval is a usage error"
stop_daemon
