#!/usr/bin/env bash
# requires: sqlite3
# Names from the API obey the control socket's rule (1 to 128 bytes of UTF-8
# without control characters): a v2 batch named with a newline, a forged
# EMBEDWATCH_HOOK= line and terminal escapes (OSC title, BEL, clear screen,
# C1 CSI, DEL) is refused by discovery ({name}), said once in the log
# (escaped) and counted; it never reaches a hook's environment, the state or
# a terminal unescaped, also when an operator watches it by id; the control
# socket refuses such batch names as before.
. "$top_srcdir/tests/integration/lib/lib.sh"


# Raw control bytes (C0 but newline, DEL, C1 as UTF-8) in a file: none may reach a terminal.
raw_controls() { LC_ALL=C grep -qaP '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$1"; }

start_sim
hostile='nightly\nEMBEDWATCH_HOOK=pwned\u001b]0;OWNED\u0007\u001b[2J'
c1='nightly-c1\u009b2J\u007f'
sim POST /_sim/batches "{\"batches\":[
 {\"id\":\"h-1\",\"name\":\"$hostile\",\"timeline\":[{\"status\":\"BATCH_STATUS_IN_PROGRESS\",\"at\":0},{\"status\":\"BATCH_STATUS_COMPLETED\",\"at\":1}]},
 {\"id\":\"h-2\",\"name\":\"$c1\",\"timeline\":[{\"status\":\"BATCH_STATUS_IN_PROGRESS\",\"at\":0},{\"status\":\"BATCH_STATUS_COMPLETED\",\"at\":1}]},
 {\"id\":\"ok-1\",\"name\":\"nightly-ok\",\"timeline\":[{\"status\":\"BATCH_STATUS_IN_PROGRESS\",\"at\":0},{\"status\":\"BATCH_STATUS_COMPLETED\",\"at\":1}]}]}" >/dev/null
write_conf "
[discover]
enabled = yes
match = *
batch = {name}
"
start_daemon
m() { ctl metrics | awk -v k="$1" '$1 == k {print $2}'; }
refused() { m 'embedwatch_discover_refused_total{reason="name"}'; }
refused_is() { [ "$(refused)" = "$1" ]; }
sweeps_at_least() { [ "$(m embedwatch_batch_sweeps_total)" -ge "$1" ]; }

# 1. Discovery: ok-1 is watched in its batch and ends; h-1 and h-2 are refused, once each.
wait_until grep -q ' batch.done - done nightly-ok ' "$T/hooks/events" || fail "ok-1 was not discovered: $(hook_lines)"
wait_until refused_is 2 || fail "refusals counted: $(ctl metrics | grep discover_refused)"
grep -qF 'job h-1 not discovered: its batch name "nightly\x0aEMBEDWATCH_HOOK=pwned\x1b]0;OWNED\x07\x1b[2J" is not 1 to 128 printable characters' \
	"$T/daemon.log" || fail "no escaped log line for h-1: $(grep h-1 "$T/daemon.log")"
grep -qF 'job h-2 not discovered: its batch name "nightly-c1\xc2\x9b2J\x7f"' "$T/daemon.log" || fail "no escaped log line for h-2"
! raw_controls "$T/daemon.log" || fail "raw control bytes in the log"
# More sweeps see them again: still said and counted once.
s0=$(m embedwatch_batch_sweeps_total)
wait_until sweeps_at_least $((s0 + 3)) || fail "no more sweeps"
[ "$(grep -c 'job h-1 not discovered' "$T/daemon.log")" = 1 ] || fail "h-1 refused more than once in the log"
refused_is 2 || fail "counted again: $(refused)"
ctl list --json | jq -e 'map(.id) == ["ok-1"]' >/dev/null || fail "watched: $(ctl list --json | jq -c 'map(.id)')"
[ "$(sqlite3 "$T/state/embedwatch.db" "SELECT count(*) FROM jobs WHERE id IN ('h-1','h-2')")" = 0 ] || fail "h-1 or h-2 in the state"
[ "$(sqlite3 "$T/state/embedwatch.db" "SELECT count(*) FROM batches WHERE name LIKE '%pwned%' OR name LIKE 'nightly-c1%'")" = 0 ] \
	|| fail "the hostile batch name is in the state"
! grep -rq pwned "$T/hooks" || fail "the forged line reached a hook"
ok "discovery refused both hostile names (counted once each, escaped in the log, not in the state or a hook); nightly-ok discovered and done"

# 2. The control socket refuses such names (the one rule for both).
for bad in $'bad\nname' $'esc\e[2J' $'c1\xc2\x9b' "$(printf 'x%.0s' $(seq 1 129))"; do
	rc=0; ctl watch --kind batch-job --batch "$bad" ok-2 2>"$T/refused.err" || rc=$?
	[ "$rc" = 3 ] || fail "batch name $(printf %q "$bad"): exit $rc"
	grep -q 'batch name must be 1 to 128 printable characters' "$T/refused.err" || fail "said: $(cat "$T/refused.err")"
	! raw_controls "$T/refused.err" || fail "the refusal printed raw control bytes"
done
ok "the control socket refuses the same names (exit 3)"

# 3. Watched by id in a batch with a good name: the API's document holds the hostile name; every
# output form prints it escaped, and the hook's environment has only the operator's name.
ctl watch --kind batch-job --batch ops h-1 h-2 >/dev/null
wait_until sh -c "grep -c 'batch_job.complete h-' '$T/hooks/events' | grep -qx 2" || fail "h-1, h-2 did not end: $(hook_lines)"
wait_until deliveries_idle
for cmd in "show h-1" "show h-2" "list" "batches" "deliveries" "status" "wait h-1 h-2"; do
	# shellcheck disable=SC2086
	ctl $cmd >"$T/out.txt" 2>&1 || [ "${cmd%% *}" = wait ] || fail "$cmd failed"
	! raw_controls "$T/out.txt" || fail "$cmd printed raw control bytes: $(od -c "$T/out.txt" | head)"
	# shellcheck disable=SC2086
	ctl --json $cmd >"$T/out.json" 2>&1 || [ "${cmd%% *}" = wait ] || fail "$cmd --json failed"
	! raw_controls "$T/out.json" || fail "$cmd --json printed raw control bytes"
	jq -e . "$T/out.json" >/dev/null || fail "$cmd --json is not one JSON document"
done
ctl show h-1 | grep -qF 'nightly\x0aEMBEDWATCH_HOOK=pwned\x1b]0;OWNED\x07\x1b[2J' \
	|| ctl show h-1 | grep -qF 'nightly\nEMBEDWATCH_HOOK=pwned\u001b]0;OWNED\u0007\u001b[2J' || fail "show h-1: $(ctl show h-1)"
ctl show h-2 --json | jq -e '.job.last_seen.name == "nightly-c1\u009b2J\u007f"' >/dev/null || fail "show --json lost the name"
grep -q $'\xc2\x9b' <(ctl show h-2 --json) && fail "show --json wrote a raw C1 byte"
! grep -rq pwned "$T/hooks/env.last" || fail "the forged line reached a hook's environment"
grep -qx 'EMBEDWATCH_BATCH=ops' "$T/hooks/env.last" || fail "hook environment: $(grep BATCH "$T/hooks/env.last")"
ok "watched by id: show, list, batches, deliveries, status, wait (text and --json) print no raw control bytes; --json keeps the name; the hook saw EMBEDWATCH_BATCH=ops"
stop_daemon
