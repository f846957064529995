#!/bin/sh
# A test hook for delivery order. Usage: order-hook.sh DIR.
# While DIR/gate is absent it waits (its pid in DIR/running.pid, and in
# DIR/running.DAEMON-PID for the daemon that started it) before doing
# anything; then it fails the first attempt of jobs listed in DIR/fail-once and
# every attempt of jobs listed in DIR/fail-always. Each attempt is a line in
# DIR/attempts: "START_NS END_NS EVENT_ID EVENT JOB ATTEMPT ok|fail".
set -eu
dir=$1
echo $$ >"$dir/running.pid"
echo $$ >"$dir/running.$PPID"
while [ ! -e "$dir/gate" ]; do sleep 0.02; done
start=$(date +%s%N)
cat >/dev/null
job=${EMBEDWATCH_JOB_ID:--}
rc=0
if grep -qxF -- "$job" "$dir/fail-always" 2>/dev/null; then rc=1; fi
if [ "$EMBEDWATCH_ATTEMPT" = 1 ] && grep -qxF -- "$job" "$dir/fail-once" 2>/dev/null; then rc=1; fi
outcome=ok
[ $rc = 0 ] || outcome=fail
printf '%s %s %s %s %s %s %s\n' "$start" "$(date +%s%N)" "$EMBEDWATCH_EVENT_ID" "$EMBEDWATCH_EVENT" "$job" \
	"$EMBEDWATCH_ATTEMPT" "$outcome" >>"$dir/attempts"
exit $rc
