#!/bin/bash
# A test hook for delivery order. Usage: order-hook.sh DIR.
# While DIR/gate is absent it waits (its pid in DIR/running.pid, and in
# DIR/running.DAEMON-PID for the daemon that started it) before doing
# anything; then it fails the first attempt of jobs listed in DIR/fail-once and
# every attempt of jobs listed in DIR/fail-always. Each attempt is a line in
# DIR/attempts: "START_NS END_NS EVENT_ID EVENT JOB ATTEMPT ok|fail".
# Bash's builtins only once the gate is open (the clock, the payload, the lists): a hook run
# starts no other program, as each start costs milliseconds of CPU.
set -eu
dir=$1
echo $$ >"$dir/running.pid"
echo $$ >"$dir/running.$PPID"
while [ ! -e "$dir/gate" ]; do sleep 0.02; done
start=${EPOCHREALTIME//[!0-9]/}000
while IFS= read -r _; do :; done
# listed JOB FILE: JOB is a whole line of FILE.
listed() {
	local l
	[ -e "$2" ] || return 1
	while IFS= read -r l || [ -n "$l" ]; do
		[ "$l" != "$1" ] || return 0
	done <"$2"
	return 1
}
job=${EMBEDWATCH_JOB_ID:--}
rc=0
if listed "$job" "$dir/fail-always"; then rc=1; fi
if [ "$EMBEDWATCH_ATTEMPT" = 1 ] && listed "$job" "$dir/fail-once"; then rc=1; fi
outcome=ok
[ $rc = 0 ] || outcome=fail
printf '%s %s %s %s %s %s %s\n' "$start" "${EPOCHREALTIME//[!0-9]/}000" "$EMBEDWATCH_EVENT_ID" "$EMBEDWATCH_EVENT" "$job" \
	"$EMBEDWATCH_ATTEMPT" "$outcome" >>"$dir/attempts"
exit $rc
