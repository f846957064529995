#!/bin/bash
# The hook of the active/standby tests: one line per delivery, with when it
# started and which daemon started it, appended to one file both daemons
# share (a line under PIPE_BUF with O_APPEND: lines never mix).
# Usage: ha-hook.sh FILE NODE.
# Line: START_NS NODE EVENT_ID EVENT JOB STATUS BATCH ATTEMPT
# Bash's builtins only (the clock, the payload read to its end): a hook run starts no other
# program, as each start costs milliseconds of CPU and the tests run hundreds of these.
set -eu
start=${EPOCHREALTIME//[!0-9]/}000
while IFS= read -r _; do :; done
printf '%s %s %s %s %s %s %s %s\n' "$start" "$2" "$EMBEDWATCH_EVENT_ID" "$EMBEDWATCH_EVENT" "${EMBEDWATCH_JOB_ID:--}" \
	"$EMBEDWATCH_STATUS" "${EMBEDWATCH_BATCH:--}" "$EMBEDWATCH_ATTEMPT" >>"$1"
exit 0
