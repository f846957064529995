#!/usr/bin/env bash
# requires: none
# The daemon against the simulator's OpenAI, Anthropic, Gemini and Mistral
# batch APIs ([account NAME]), on the manual clock: every terminal status of
# each provider maps to its event (the provider's own expiry a failure with
# expired_by_provider; Anthropic's "ended" by its counts) with provider,
# account, provider_status, records, output and the hook environment; a
# cancel through the daemon reaches the provider; lists of pages of 2 are
# swept; a key that is not accepted and a 429 pause only their own account;
# batch.done over one job of each provider fires once.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual --provider-history 3 --cancel-delay 1s

printf '%s\n' "$TOKEN" >"$T/good.key"
printf 'wrong-key\n' >"$T/wrong.key"
chmod 600 "$T/good.key" "$T/wrong.key"

# A second exec hook records, per event, the environment this test checks.
cat >"$T/env-hook.sh" <<'SH'
#!/bin/sh
cat >/dev/null
printf '%s %s %s %s %s\n' "$EMBEDWATCH_EVENT_ID" "$EMBEDWATCH_PROVIDER" "$EMBEDWATCH_ACCOUNT" \
	"${EMBEDWATCH_JOB_ID:--}" "$EMBEDWATCH_STATUS" >>"$1"
SH
chmod 755 "$T/env-hook.sh"

# Accounts: one of each provider with the right key and pages of 2; ox
# (OpenAI) and gx (Gemini: 400 API_KEY_INVALID) with a key that is wrong.
declare -A PROV=([oa]=openai [an]=anthropic [ge]=gemini [mi]=mistral [ox]=openai [gx]=gemini)
GOOD=(oa an ge mi)
conf=""
for a in oa an ge mi ox gx; do
	key=good.key
	case $a in ox|gx) key=wrong.key ;; esac
	conf+="
[account $a]
provider = ${PROV[$a]}
api_base = $SIM_URL
key_file = $T/$key
rate = 20/s
sweep = yes
page_size = 2"
done
write_conf "$conf
[hook env]
type = exec
command = $T/env-hook.sh $T/env.lines
on = *
timeout = 10s
retry = 200ms 400ms"

# The terminal cases, one row each: account|id|event|EMBEDWATCH_STATUS|timeline|jq on .data.
# Every timeline starts running at 0 and ends at 5 s (the words are the provider's own).
CASES=(
"oa|oa-complete|batch_job.complete|complete|[{\"status\":\"in_progress\",\"at\":0},{\"status\":\"completed\",\"at\":5,\"failed\":3}]|\
.provider_status == \"completed\" and .records == {total: 100, succeeded: 97, failed: 3} and .expired_by_provider == false
 and .output.file_id == \"file-out-oa-complete\" and .output.error_file_id == \"file-err-oa-complete\""
"oa|oa-failed|batch_job.failed|failed|[{\"status\":\"in_progress\",\"at\":0},{\"status\":\"failed\",\"at\":5,\"failed\":100}]|\
.provider_status == \"failed\" and .records.failed == 100 and .expired_by_provider == false
 and .output.file_id == null and .output.error_file_id == \"file-err-oa-failed\""
"oa|oa-expired|batch_job.failed|failed|[{\"status\":\"in_progress\",\"at\":0},{\"status\":\"expired\",\"at\":5,\"succeeded\":40}]|\
.provider_status == \"expired\" and .expired_by_provider == true and .records.succeeded == 40
 and .output.file_id == \"file-out-oa-expired\""
"oa|oa-cancelled|batch_job.cancelled|cancelled|[{\"status\":\"in_progress\",\"at\":0},{\"status\":\"cancelling\",\"at\":3},{\"status\":\"cancelled\",\"at\":5,\"succeeded\":10}]|\
.provider_status == \"cancelled\" and .records.succeeded == 10 and .expired_by_provider == false"
"an|an-complete|batch_job.complete|complete|[{\"status\":\"in_progress\",\"at\":0},{\"status\":\"ended\",\"at\":5,\"failed\":3}]|\
.provider_status == \"ended\" and .records == {total: 100, succeeded: 97, failed: 3} and .expired_by_provider == false
 and (.output.results_url | type) == \"string\" and (.mapping | test(\"complete\"))"
"an|an-failed|batch_job.failed|failed|[{\"status\":\"in_progress\",\"at\":0},{\"status\":\"ended\",\"at\":5,\"failed\":100}]|\
.provider_status == \"ended\" and .records == {total: 100, succeeded: 0, failed: 100} and .expired_by_provider == false
 and (.output.results_url | type) == \"string\" and (.mapping | test(\"every request errored\"))"
"an|an-expired|batch_job.failed|failed|[{\"status\":\"in_progress\",\"at\":0},{\"status\":\"ended\",\"at\":5,\"succeeded\":60,\"expired\":40}]|\
.provider_status == \"ended\" and .expired_by_provider == true and .records.succeeded == 60
 and (.output.results_url | type) == \"string\" and (.mapping | test(\"expired\"))"
"ge|ge-complete|batch_job.complete|complete|[{\"status\":\"BATCH_STATE_RUNNING\",\"at\":0},{\"status\":\"BATCH_STATE_SUCCEEDED\",\"at\":5,\"failed\":3}]|\
.provider_status == \"BATCH_STATE_SUCCEEDED\" and .records == {total: 100, succeeded: 97, failed: 3}
 and .expired_by_provider == false and .output.file_id == \"files/batch-ge-complete\""
"ge|ge-failed|batch_job.failed|failed|[{\"status\":\"BATCH_STATE_RUNNING\",\"at\":0},{\"status\":\"BATCH_STATE_FAILED\",\"at\":5,\"failed\":100}]|\
.provider_status == \"BATCH_STATE_FAILED\" and .records.failed == 100 and .expired_by_provider == false"
"ge|ge-expired|batch_job.failed|failed|[{\"status\":\"BATCH_STATE_RUNNING\",\"at\":0},{\"status\":\"BATCH_STATE_EXPIRED\",\"at\":5}]|\
.provider_status == \"BATCH_STATE_EXPIRED\" and .expired_by_provider == true"
"ge|ge-cancelled|batch_job.cancelled|cancelled|[{\"status\":\"BATCH_STATE_RUNNING\",\"at\":0},{\"status\":\"BATCH_STATE_CANCELLED\",\"at\":5}]|\
.provider_status == \"BATCH_STATE_CANCELLED\" and .expired_by_provider == false"
"mi|mi-complete|batch_job.complete|complete|[{\"status\":\"RUNNING\",\"at\":0},{\"status\":\"SUCCESS\",\"at\":5,\"failed\":3}]|\
.provider_status == \"SUCCESS\" and .records == {total: 100, succeeded: 97, failed: 3} and .expired_by_provider == false
 and .output.file_id == \"out-mi-complete\" and .output.error_file_id == \"err-mi-complete\""
"mi|mi-failed|batch_job.failed|failed|[{\"status\":\"RUNNING\",\"at\":0},{\"status\":\"FAILED\",\"at\":5,\"failed\":100}]|\
.provider_status == \"FAILED\" and .records.failed == 100 and .expired_by_provider == false
 and .output.error_file_id == \"err-mi-failed\""
"mi|mi-expired|batch_job.failed|failed|[{\"status\":\"RUNNING\",\"at\":0},{\"status\":\"TIMEOUT_EXCEEDED\",\"at\":5,\"succeeded\":50}]|\
.provider_status == \"TIMEOUT_EXCEEDED\" and .expired_by_provider == true and .records.succeeded == 50"
"mi|mi-cancelled|batch_job.cancelled|cancelled|[{\"status\":\"RUNNING\",\"at\":0},{\"status\":\"CANCELLATION_REQUESTED\",\"at\":3},{\"status\":\"CANCELLED\",\"at\":5}]|\
.provider_status == \"CANCELLED\" and .expired_by_provider == false"
)
# Per account: its running word, and its ended word for the group's job.
declare -A RUNNING=([oa]=in_progress [an]=in_progress [ge]=BATCH_STATE_RUNNING [mi]=RUNNING [ox]=in_progress
	[gx]=BATCH_STATE_RUNNING)
declare -A DONE=([oa]=completed [an]=ended [ge]=BATCH_STATE_SUCCEEDED [mi]=SUCCESS)

# case_fields ROW: R_A R_ID R_EV R_ST R_TL R_PRED (a row's jq may span lines).
case_fields() { IFS='|' read -r -d '' R_A R_ID R_EV R_ST R_TL R_PRED < <(printf '%s\0' "$1"); }
# add ACCOUNT ID TIMELINE [EXTRA-MEMBERS]: one batch of the account's provider, created now.
add() {
	sim POST "/_sim/providers/${PROV[$1]}/batches" "{\"batches\":[{\"id\":\"$2\",\"timeline\":$3${4:+,$4}}]}" \
		| jq -e '.created == 1' >/dev/null || fail "sim: adding $2"
}
# watch ACCOUNT ID [BATCH]: one raw watch request with "account".
watch() {
	local r
	r=$(echo "{\"cmd\":\"watch\",\"account\":\"$1\",\"ids\":[\"$2\"]${3:+,\"batch\":\"$3\"}}" | ctl_lines 1)
	jq -e '.ok and .added == 1' <<<"$r" >/dev/null || fail "watch $1 $2: $r"
}
# acct NAME JQ: true when the account's status object satisfies JQ.
acct() { ctl --json status | jq -e --arg a "$1" ".status.budgets.accounts[\$a] | $2" >/dev/null; }
# The distinct ids of EVENT for the provider's id JOB in the hook log.
event_ids() { hook_lines | awk -v e="$2" -v j="$1" '$2 == e && $3 == j {print $1}' | sort -u; }
has_event() { hook_has_event "$1" "$2"; }
no_events_for() { [ -z "$(hook_lines | awk -v j="$1" '$3 == j')" ]; }
# show ACCOUNT ID: the show answer.  job_is ACCOUNT ID JQ: true when its .job satisfies JQ.
show() { echo "{\"cmd\":\"show\",\"account\":\"$1\",\"id\":\"$2\"}" | ctl_lines 1; }
job_is() { show "$1" "$2" | jq -e ".job | $3" >/dev/null; }
has_env() { grep -q "^$1 " "$T/env.lines" 2>/dev/null; }
# check_event ACCOUNT ID EVENT STATUS JQ: once, its payload (the common members and JQ) and the hook environment.
check_event() {
	local a=$1 id=$2 ev=$3 st=$4 pred=$5 ids n p env
	ids=$(event_ids "$id" "$ev")
	n=$(grep -c . <<<"$ids")
	[ "$n" = 1 ] || fail "$a $id: $n distinct $ev events: $(hook_lines | grep " $id ")"
	p=$(ls "$T/hooks/payloads/$ids".record.* | head -1)
	jq -e --arg a "$a" --arg p "${PROV[$a]}" --arg id "$id" --arg ev "$ev" \
		".type == \$ev and (.data | .provider == \$p and .account == \$a and .id == \$id and .kind == \"batch-job\"
		 and (.records | has(\"total\") and has(\"succeeded\") and has(\"failed\"))
		 and (.output | has(\"file_id\") and has(\"error_file_id\") and has(\"results_url\") and has(\"inlined\"))
		 and ($pred))" "$p" >/dev/null || fail "$a $id: $ev payload: $(jq -c '.data | del(.request_counts)' "$p")"
	wait_until has_env "$ids" || fail "$a $id: the env hook did not run"
	env=$(grep "^$ids " "$T/env.lines" | head -1)
	[ "$env" = "$ids ${PROV[$a]} $a $id $st" ] || fail "$a $id: hook environment \"$env\""
}

# All batches at sim time 0: the cases, one to cancel per account (running until cancelled),
# the group's (Mistral's ends at 20 s, the others at 5 s), and one for each account with a wrong key.
for row in "${CASES[@]}"; do
	case_fields "$row"
	add "$R_A" "$R_ID" "$R_TL"
done
for a in "${GOOD[@]}"; do
	add "$a" "$a-stop" "[{\"status\":\"${RUNNING[$a]}\",\"at\":0}]" '"cancel_delay":1'
	end=5; [ "$a" = mi ] && end=20
	add "$a" "$a-g" "[{\"status\":\"${RUNNING[$a]}\",\"at\":0},{\"status\":\"${DONE[$a]}\",\"at\":$end}]"
done
add ox ox-1 '[{"status":"in_progress","at":0}]'
add gx gx-1 '[{"status":"BATCH_STATE_RUNNING","at":0}]'

start_daemon
for row in "${CASES[@]}"; do
	case_fields "$row"
	# Gemini's ids also in the provider's own form.
	id=$R_ID
	[ "$id" != ge-complete ] || id=batches/$id
	watch "$R_A" "$id"
done
for a in "${GOOD[@]}"; do
	watch "$a" "$a-stop"
	watch "$a" "$a-g" G
done
watch ox ox-1
watch gx gx-1

# Paging: each provider's list (its jobs and the history, pages of 2) is swept over several pages.
for a in "${GOOD[@]}"; do
	wait_until acct "$a" '.sweep_pages >= 2 and .lists >= 2' \
		|| fail "$a: no sweep of 2 pages: $(ctl --json status | jq -c ".status.budgets.accounts.$a")"
done
# A key not accepted (Gemini: 400 API_KEY_INVALID) pauses that account alone.
for a in ox gx; do
	wait_until acct "$a" '.paused == "auth" and .auth_failures > 0' \
		|| fail "$a: not paused for its key: $(ctl --json status | jq -c ".status.budgets.accounts.$a")"
done
for a in "${GOOD[@]}"; do
	acct "$a" '.paused == "none" and .auth_failures == 0' \
		|| fail "$a paused by another account's key: $(ctl --json status | jq -c ".status.budgets.accounts.$a")"
done

sim_advance 5s >/dev/null
for row in "${CASES[@]}"; do
	case_fields "$row"
	wait_until has_event "$R_ID" "$R_EV" || fail "$R_A $R_ID: no $R_EV: $(hook_lines | grep " $R_ID " || true)"
done
for row in "${CASES[@]}"; do
	case_fields "$row"
	check_event "$R_A" "$R_ID" "$R_EV" "$R_ST" "$R_PRED and .previous_status == \"processing\""
done
ok "terminal statuses: ${#CASES[@]} cases of 4 providers, each its event, payload and hook environment"

for a in "${GOOD[@]}"; do
	acct "$a" '.sweep_pages >= 2' || fail "$a: sweep_pages"
done
ok "paging: pages of 2 over each provider's list (with 3 old batches), its jobs observed"

for a in ox gx; do
	acct "$a" '.paused == "auth"' || fail "$a: no longer paused for its key"
	no_events_for "$a-1" || fail "$a-1: an event: $(hook_lines | grep " $a-1 ")"
done
grep -q "account ox: openai answered 401: its key is not accepted" "$T/daemon.log" || fail "ox: no log line"
grep -q "account gx: gemini answered 400: its key is not accepted" "$T/daemon.log" || fail "gx: no log line"
ok "wrong key: ox (OpenAI, 401) and gx (Gemini, 400) paused \"auth\", oa and ge of the same providers delivered"

# The group: three ended, Mistral's not yet, so no batch.done.
for a in oa an ge; do
	wait_until has_event "$a-g" batch_job.complete || fail "$a-g: no batch_job.complete"
done
[ "$(hook_ids ' batch\.done ')" = 0 ] || fail "batch.done before all four ended: $(hook_lines | grep batch.done)"

# Gemini's batchStats is proto3 JSON, which leaves out a count that is 0: a batch without failures
# has no failedRequestCount, and its records say failed 0, not unknown.
ev=$(event_ids ge-g batch_job.complete)
jq -e '.data.records == {total: 100, succeeded: 100, failed: 0}' "$T/hooks/payloads/$ev".record.1 >/dev/null ||
	fail "gemini ge-g records $(jq -c .data.records "$T/hooks/payloads/$ev".record.1), want failed 0"
ok "gemini: a count left out (0 in proto3 JSON) is records 0"

# A cancel through the daemon reaches the provider: cancelling (Gemini has no word), then cancelled.
declare -A CANCELLING=([oa]=cancelling [an]=canceling [mi]=CANCELLATION_REQUESTED)
declare -A STATE=([oa]='.status' [an]='.processing_status' [ge]='.metadata.state' [mi]='.status')
for a in "${GOOD[@]}"; do
	r=$(echo "{\"cmd\":\"cancel\",\"account\":\"$a\",\"ids\":[\"$a-stop\"]}" | ctl_lines 1)
	jq -e '.ok' <<<"$r" >/dev/null || fail "cancel $a-stop: $r"
done
for a in "${GOOD[@]}"; do
	p=${PROV[$a]}
	wait_until eval "sim GET /_sim/stats | jq -e '.providers.$p.batches[\"$a-stop\"].cancel_requested' " \
		|| fail "$a-stop: no cancel reached $p"
	w=$(sim GET "/_sim/providers/$p/batches/$a-stop" | jq -r "${STATE[$a]}")
	[ "$w" = "${CANCELLING[$a]:-BATCH_STATE_RUNNING}" ] || fail "$a-stop at $p while cancelling: $w"
	# The daemon saw it: cancelling, or (Gemini) still processing with its cancel accepted.
	want=cancelling; [ "$a" != ge ] || want=processing
	wait_until job_is "$a" "$a-stop" ".cancel == \"accepted\" and .status == \"$want\" and .last_seen.provider_status == \"$w\"" \
		|| fail "$a-stop: not $want: $(show "$a" "$a-stop" | jq -c '.job | del(.last_seen)')"
done
sim_advance 1s >/dev/null
declare -A CANCELLED=([oa]='.provider_status == "cancelled" and .previous_status == "cancelling"'
	[an]='.provider_status == "ended" and (.mapping | test("cancel")) and .previous_status == "cancelling"'
	[ge]='.provider_status == "BATCH_STATE_CANCELLED" and .previous_status == "processing"'
	[mi]='.provider_status == "CANCELLED" and .previous_status == "cancelling"')
for a in "${GOOD[@]}"; do
	wait_until has_event "$a-stop" batch_job.cancelled || fail "$a-stop: no batch_job.cancelled: $(hook_lines | grep " $a-stop " || true)"
	check_event "$a" "$a-stop" batch_job.cancelled cancelled "${CANCELLED[$a]} and .records.total == 100"
	sim GET /_sim/log | jq -e --arg e "${PROV[$a]}_cancel" --arg id "$a-stop" \
		'[.entries[] | select(.[3] == $e and .[2] == $id and .[1] == 200)] | length >= 1' >/dev/null \
		|| fail "$a-stop: no cancel in the simulator's log"
done
ok "cancel through the daemon: each provider's batch cancelling, then cancelled, batch_job.cancelled"

# The group's last job ends: batch.done, once, over the four providers.
sim_advance 15s >/dev/null
wait_until has_event mi-g batch_job.complete || fail "mi-g: no batch_job.complete"
wait_until grep -q ' batch.done ' "$T/hooks/events" || fail "no batch.done for G"
ev=$(hook_lines | awk '$2 == "batch.done" {print $1}' | sort -u)
[ "$(grep -c . <<<"$ev")" = 1 ] || fail "batch.done: $(hook_lines | grep batch.done)"
jq -e '.data.batch == "G" and .data.total == 4 and .data.counts.complete == 4 and (.data.jobs | length) == 4' \
	"$T/hooks/payloads/$ev.record.1" >/dev/null || fail "batch.done payload: $(jq -c .data "$T/hooks/payloads/$ev.record.1")"

# 429 on OpenAI (list and per id) while Anthropic goes on; OpenAI delivers once it is lifted.
sim POST /_sim/faults '{"kind":"status","status":429,"retry_after":"1","target":"openai_all"}' >/dev/null
for a in oa an; do
	add "$a" "$a-thr" "[{\"status\":\"in_progress\",\"at\":0},{\"status\":\"${DONE[$a]}\",\"at\":2}]"
	watch "$a" "$a-thr"
done
wait_until acct oa '.paused == "rate-limited" and .throttled > 0' \
	|| fail "oa: not throttled: $(ctl --json status | jq -c .status.budgets.accounts.oa)"
sim_advance 2s >/dev/null
wait_until has_event an-thr batch_job.complete || fail "an-thr: no event while oa is throttled"
acct an '.throttled == 0 and .paused == "none"' || fail "an throttled by oa's 429: $(ctl --json status | jq -c .status.budgets.accounts.an)"
# Every OpenAI request is answered 429 until the fault goes: oa-thr cannot have ended.
no_events_for oa-thr || fail "oa-thr: an event under a 429 on every request: $(hook_lines | grep ' oa-thr ')"
acct oa '.throttled > 0' || fail "oa: throttled"
sim DELETE /_sim/faults >/dev/null
wait_until has_event oa-thr batch_job.complete || fail "oa-thr: no event after the 429 was lifted"
wait_until acct oa '.paused == "none"' || fail "oa: still paused"
ok "429 on one account: oa throttled while an delivered; oa delivered once it was lifted"

# batch.done fired once: a second one would be planned with an event's commit, and all have run.
wait_until deliveries_idle || fail "deliveries still pending"
[ "$(hook_ids ' batch\.done ')" = 1 ] || fail "batch.done more than once: $(hook_lines | grep batch.done)"
grep -q "^$ev batch.done - done G 1$" "$T/hooks/events" || fail "batch.done hook environment: $(hook_lines | grep batch.done)"
ok "batch.done over one job of each provider: once, after all four ended"

for a in ox gx; do
	no_events_for "$a-1" || fail "$a-1: an event: $(hook_lines | grep " $a-1 ")"
done
# The accounts' keys reach no log, hook, payload, status, metrics or printed configuration, and
# Anthropic's results_url (a link that may grant access by itself) is never logged.
ctl --json status >"$T/status.json"
ctl metrics >"$T/metrics.txt"
"$DAEMON" -c "$T/ew.conf" --print-config >"$T/print-config.txt" 2>&1
for k in "$TOKEN" wrong-key; do
	! grep -rqF -- "$k" "$T/daemon.log" "$T/env.lines" "$T/hooks" "$T/status.json" "$T/metrics.txt" \
		"$T/print-config.txt" || fail "a key ($k) leaked: $(grep -rlF -- "$k" "$T" | head -3)"
done
! grep -q "/results" "$T/daemon.log" || fail "a results_url in the log: $(grep /results "$T/daemon.log" | head -1)"
ok "no account key in the log, the hooks, status, metrics or --print-config; no results_url in the log"
stop_daemon
