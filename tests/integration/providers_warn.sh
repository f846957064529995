#!/usr/bin/env bash
# requires: none
# The warnings about a job that has not ended, through the daemon: *.stalled
# once when its status and records have not moved for stall_after (per
# account, and [poll] for Cohere's jobs; off where not set), again only after
# it moved; batch_job.expiring once when the provider's own deadline
# (expires_at, 24 h after creation in the simulator) is within the account's
# "expiring", and not when it is farther.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual
sim POST /_sim/providers/openai/batches '{"batches":[{"id":"oa-s","timeline":[{"status":"in_progress","at":0,"succeeded":10},
  {"status":"in_progress","at":10,"succeeded":50}]}]}' >/dev/null
sim POST /_sim/providers/anthropic/batches '{"batches":[{"id":"an-s","timeline":[{"status":"in_progress","at":0}]}]}' >/dev/null
sim POST /_sim/providers/mistral/batches '{"batches":[{"id":"mi-s","timeline":[{"status":"RUNNING","at":0}]}]}' >/dev/null
sim POST /_sim/jobs '{"jobs":[{"id":"co-s","timeline":[{"status":"processing","at":0}]}]}' >/dev/null

# oa: stalls after 1 s, and its deadline (24 h away) is within 25 h; an: stalls, deadline not within 1 h;
# mi: neither (the defaults: stall_after off, Mistral says no deadline). Cohere's jobs: [poll] stall_after.
SWEEP=no write_conf "$(account_ini oa openai)
stall_after = 1s
expiring = 25h
$(account_ini an anthropic)
stall_after = 1s
$(account_ini mi mistral)
[poll]
stall_after = 1s"
start_daemon
for a in oa an mi; do
	echo "{\"cmd\":\"watch\",\"account\":\"$a\",\"ids\":[\"$a-s\"]}" | ctl_lines 1 | jq -e '.added == 1' >/dev/null ||
		fail "watch $a-s"
done
ctl watch co-s >/dev/null

ids() { hook_lines | awk -v e="$2" -v j="$1" '$2 == e && $3 == j {print $1}' | sort -u | wc -l; }
has() { hook_has_event "$1" "$2" "${3:-1}"; }
payload() { cat "$T/hooks/payloads/$(hook_lines | awk -v e="$2" -v j="$1" '$2 == e && $3 == j {print $1; exit}')".record.1; }
requests() { sim GET /_sim/stats | jq --arg p "$1" --arg b "$2" '.providers[$p].batches[$b].requests'; }
more_requests() { [ "$(requests "$1" "$2")" -ge "$3" ]; }

wait_until has oa-s batch_job.stalled || fail "oa-s: no batch_job.stalled"
wait_until has an-s batch_job.stalled || fail "an-s: no batch_job.stalled"
wait_until has co-s embed_job.stalled || fail "co-s: no embed_job.stalled ([poll] stall_after)"
wait_until has oa-s batch_job.expiring || fail "oa-s: no batch_job.expiring"
payload oa-s batch_job.stalled | jq -e '.data | .provider == "openai" and .account == "oa" and .stalled_for_s >= 1
  and .last_moved != null and .records.succeeded == 10' >/dev/null || fail "oa-s stalled payload: $(payload oa-s batch_job.stalled)"
payload oa-s batch_job.expiring | jq -e '.data | .expires_in_s > 0 and .expires_in_s <= 86400 and .expires_at != null' \
	>/dev/null || fail "oa-s expiring payload: $(payload oa-s batch_job.expiring)"
grep -q "^[^ ]* batch_job.stalled oa-s processing " "$T/hooks/events" || fail "stalled: EMBEDWATCH_STATUS"
ok "stalled (two accounts and Cohere's [poll]) and expiring, with their data"

# Each said once: more observations of every job, and still one of each; none where it is off or far.
n=$(( $(requests openai oa-s) + 5 )) m=$(( $(requests mistral mi-s) + 5 )) k=$(( $(requests anthropic an-s) + 5 ))
wait_until more_requests openai oa-s "$n" || fail "oa-s not polled on"
wait_until more_requests mistral mi-s "$m" || fail "mi-s not polled on"
wait_until more_requests anthropic an-s "$k" || fail "an-s not polled on"
for c in "oa-s batch_job.stalled" "an-s batch_job.stalled" "co-s embed_job.stalled" "oa-s batch_job.expiring"; do
	# shellcheck disable=SC2086
	[ "$(ids $c)" = 1 ] || fail "$c said $(ids $c) times"
done
[ "$(ids mi-s batch_job.stalled)" = 0 ] || fail "mi-s: stalled without stall_after"
[ "$(ids an-s batch_job.expiring)" = 0 ] || fail "an-s: expiring 24 h ahead with expiring = 1h"
ok "each warning once; none where stall_after is off or the deadline is farther than expiring"

# A job that moved is not stalled; once it stalls again that is said again, with an id of its own.
sim_advance 11s >/dev/null
wait_until has oa-s batch_job.stalled 2 || fail "oa-s: no second stall after its records moved"
[ "$(ids oa-s batch_job.expiring)" = 1 ] || fail "oa-s: expiring said again"
ok "a stall after the job moved is a new one; the deadline is said once"
stop_daemon
