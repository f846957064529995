#!/bin/sh
# A test hook: records one line per delivery and the payload, then exits 0.
# Usage: record-hook.sh DIR. Exit status is taken from DIR/exit if that file exists.
set -eu
dir=$1
# Every process counts: a test of 1,000 jobs runs this 1,000 times.
[ -d "$dir/payloads" ] || mkdir -p "$dir/payloads"
cat >"$dir/payloads/$EMBEDWATCH_EVENT_ID.$EMBEDWATCH_HOOK.$EMBEDWATCH_ATTEMPT"
printf '%s %s %s %s %s %s\n' "$EMBEDWATCH_EVENT_ID" "$EMBEDWATCH_EVENT" "${EMBEDWATCH_JOB_ID:--}" \
	"$EMBEDWATCH_STATUS" "${EMBEDWATCH_BATCH:--}" "$EMBEDWATCH_ATTEMPT" >>"$dir/events"
env >"$dir/env.$$" && mv -f "$dir/env.$$" "$dir/env.last"
if [ -f "$dir/exit" ]; then exit "$(cat "$dir/exit")"; fi
exit 0
