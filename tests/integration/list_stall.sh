#!/usr/bin/env bash
# requires: none
# A slow list does not stall detection. The simulator sends the list's
# headers at once and then its body at 1 byte a second (a "trickle" fault):
#  - while a list is in flight far longer than lists take, the jobs the last
#    list did not show (a new watch) are polled per id: the new job is seen,
#    and its end delivered, while that same list is still in flight;
#  - [poll] list_stall cuts such a list (a failed sweep, said in the log)
#    instead of waiting for request_timeout.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual
REQUEST_TIMEOUT=10m write_conf "
[poll]
list_stall = 10m
"
start_daemon
metric() { ctl metrics | awk -v m="$1" '$1 == m {print $2}'; }
processing() { [ "$(ctl show "$1" --json | jq -r .job.status)" = processing ]; }
sim POST /_sim/jobs '{"jobs":[{"id":"s-1","timeline":[{"status":"processing","at":0}]},
 {"id":"n-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]}]}' >/dev/null
ctl watch s-1 >/dev/null
wait_until processing s-1 || fail "s-1 never seen"
listed() { [ "$(metric embedwatch_sweeps_total)" -ge 2 ] && [ "$(sim GET '/_sim/stats?jobs=0' | jq .requests.list)" -ge 2 ]; }
wait_until listed || fail "no list sweep"

# Every list from now on trickles; the sweep in flight when n-1 is watched (or the next) never ends here.
sim POST /_sim/faults '{"kind":"trickle","target":"list","bytes_per_second":1}' >/dev/null
sweeps=$(metric embedwatch_sweeps_total)
ctl watch n-1 >/dev/null
wait_until processing n-1 || fail "n-1 not seen while a list trickles: $(ctl show n-1 --json | jq -c .job)"
polled() { sim GET /_sim/log | jq -e '[.entries[] | select(.[2] == "n-1" and .[3] == "poll")] | length > 0' >/dev/null; }
polled || fail "n-1 was not polled per id"
sim_advance 1s >/dev/null
wait_until hook_has_ids 1 'embed_job.complete n-1' || fail "n-1's end not delivered while the list trickles"
[ "$(metric embedwatch_sweep_failures_total)" = 0 ] || fail "a list failed: the test meant one still in flight"
grep -q 'list sweep: no answer after [0-9]* ms; polling the jobs the last list did not show per id' "$T/daemon.log" \
	|| fail "the overdue list is not logged"
ok "a new watch is polled per id, and its end delivered, while the list trickles (sweeps $sweeps -> $(metric embedwatch_sweeps_total), none finished)"

# list_stall cuts a trickling list: a failed sweep, not a wait for request_timeout (10 min here).
stop_daemon
REQUEST_TIMEOUT=10m write_conf "
[poll]
list_stall = 2s
"
start_daemon
cut() { [ "$(metric embedwatch_sweep_failures_total)" -ge 1 ]; }
wait_until cut || fail "the trickling list was not cut"
grep -q 'list sweep failed (.*[Tt]oo slow' "$T/daemon.log" || fail "the cut is not logged: $(grep -m3 'list sweep' "$T/daemon.log")"
ok "list_stall cut the trickling list: $(grep -m1 -o 'list sweep failed ([^)]*)' "$T/daemon.log")"
