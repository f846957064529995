#!/usr/bin/env bash
# requires: none
# Jobs of [account NAME] across a crash, a reload and a restart, on the
# simulator's manual clock: after kill -9, the jobs of two accounts (OpenAI,
# Mistral) and one of Cohere each get their end event once, with their
# account, and an event delivered before the crash is not delivered again; a
# reload without an account keeps its job (listed, a warning, not polled, no
# event) and a reload with it back delivers the event once; a restart without
# the account restores the job the same way, and a restart with it delivers.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual

printf '%s\n' "$TOKEN" >"$T/good.key"
chmod 600 "$T/good.key"

declare -A PROV=([oa]=openai [mi]=mistral)
declare -A RUNNING=([oa]=in_progress [mi]=RUNNING)
declare -A DONE=([oa]=completed [mi]=SUCCESS)

# conf ACCOUNT...: $T/ew.conf with these accounts (the state and the hooks stay the same).
conf() {
	local a s=""
	for a in "$@"; do
		s+="
[account $a]
provider = ${PROV[$a]}
api_base = $SIM_URL
key_file = $T/good.key
rate = 20/s
sweep = yes"
	done
	write_conf "$s"
}
# add ACCOUNT ID [END]: a batch of the account's provider, running from now, ended END seconds from now (or never).
add() {
	local tl="{\"status\":\"${RUNNING[$1]}\",\"at\":0}"
	[ -z "${3:-}" ] || tl+=",{\"status\":\"${DONE[$1]}\",\"at\":$3}"
	sim POST "/_sim/providers/${PROV[$1]}/batches" "{\"batches\":[{\"id\":\"$2\",\"timeline\":[$tl]}]}" \
		| jq -e '.created == 1' >/dev/null || fail "sim: adding $2"
}
# watch ACCOUNT ID: one raw watch request with "account", acknowledged.
watch() {
	local r
	r=$(echo "{\"cmd\":\"watch\",\"account\":\"$1\",\"ids\":[\"$2\"]}" | ctl_lines 1)
	jq -e '.ok and .added == 1' <<<"$r" >/dev/null || fail "watch $1 $2: $r"
}
# The distinct event ids of EVENT for the job JOB (the provider's own id, or Cohere's) in the hook log.
event_ids() { hook_lines | awk -v e="$2" -v j="$1" '$2 == e && $3 == j {print $1}' | sort -u; }
has_event() { hook_has_event "$1" "$2"; }
no_events_for() { [ -z "$(hook_lines | awk -v j="$1" '$3 == j')" ]; }
# once JOB EVENT ACCOUNT PROVIDER: exactly one event id of EVENT for JOB, its payload naming the account and provider.
once() {
	local ids n
	ids=$(event_ids "$1" "$2")
	n=$(grep -c . <<<"$ids" || true)
	[ "$n" = 1 ] || fail "$1: $n distinct $2 events: $(hook_lines | awk -v j="$1" '$3 == j')"
	jq -e --arg a "$3" --arg p "$4" '.data.account == $a and .data.provider == $p' "$T/hooks/payloads/$ids".record.1 \
		>/dev/null || fail "$1: $2 payload: $(jq -c '.data | {account, provider, id}' "$T/hooks/payloads/$ids".record.1)"
}
# listed KEY: the daemon's list has the job KEY ("ACCOUNT:ID").
listed() { ctl --json list | jq -e --arg k "$1" '[.. | objects | select(.id? == $k)] | length == 1' >/dev/null; }
# delivered_done EVENT_ID: the state database holds the delivery of EVENT_ID as done (committed).
delivered_done() { ctl --json deliveries --state "done" | jq -e --arg e "$1" '[.. | strings | select(. == $e)] | length > 0' >/dev/null; }
# requests PROVIDER: how many API requests (get, list, cancel) the simulator answered for PROVIDER.
requests() { sim GET /_sim/stats | jq ".providers.$1.requests | add"; }
reloads() { grep -c 'reloaded:' "$T/daemon.log" || true; }
# reload ACCOUNT...: the config with these accounts, SIGHUP, until the log says it was applied.
reload() {
	local n
	n=$(reloads)
	conf "$@"
	kill -HUP "$DAEMON_PID"
	wait_until eval "[ \"\$(reloads)\" -gt $n ] || ! alive $DAEMON_PID" || fail "reload ($*) not applied"
	alive "$DAEMON_PID" || fail "the daemon died on SIGHUP (reload $*): $(tail -n 3 "$T/daemon.log")"
}
# oa_requests_past N: account oa has sent more than N requests (the daemon went on polling;
# oa-live, never ended, keeps oa polled).
oa_requests() { ctl --json status | jq '.status.budgets.accounts.oa.requests'; }
oa_requests_past() { [ "$(oa_requests)" -gt "$1" ]; }

# ---- 1. kill -9: two accounts and Cohere, once each; an event delivered before the crash not again ----
add oa oa-early 2
add oa oa-live
add oa oa-1 10
add mi mi-1 10
sim POST /_sim/jobs '{"jobs":[{"id":"co-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":10}]}]}' \
	| jq -e '.created == 1' >/dev/null || fail "sim: adding co-1"
conf oa mi
start_daemon
watch oa oa-early
watch oa oa-live
sim_advance 2s >/dev/null
wait_until has_event oa-early batch_job.complete || fail "oa-early: no batch_job.complete"
early=$(event_ids oa-early batch_job.complete)
wait_until delivered_done "$early" || fail "oa-early: its delivery never done: $(ctl --json deliveries)"
watch oa oa-1
watch mi mi-1
r=$(ctl --json watch co-1) || fail "watch co-1: $r"
jq -e '.added == 1' <<<"$r" >/dev/null || fail "watch co-1: $r"
# Acknowledged: committed. Nothing else to wait for.
kill9_daemon
start_daemon
for k in oa:oa-1 mi:mi-1 co-1 oa:oa-early oa:oa-live; do
	listed "$k" || fail "$k not restored: $(ctl --json list)"
done
sim_advance 8s >/dev/null
wait_until has_event oa-1 batch_job.complete || fail "oa-1: no batch_job.complete after the restart"
wait_until has_event mi-1 batch_job.complete || fail "mi-1: no batch_job.complete after the restart"
wait_until has_event co-1 embed_job.complete || fail "co-1: no embed_job.complete after the restart"
wait_until deliveries_idle || fail "deliveries still pending"
once oa-1 batch_job.complete oa openai
once mi-1 batch_job.complete mi mistral
once co-1 embed_job.complete cohere cohere
[ "$(hook_lines | awk '$3 == "oa-early"' | wc -l)" = 1 ] ||
	fail "oa-early delivered again after the restart: $(hook_lines | awk '$3 == "oa-early"')"
ok "kill -9: oa-1, mi-1 and co-1 each one end event with its account; oa-early (delivered before) not again"

# ---- 2. a reload without account mi: kept, not polled, no event; a reload with it: the event once ----
check_reload() {
	add oa oa-2 5
	add mi mi-2 5
	watch oa oa-2
	watch mi mi-2
	reload oa
	wait_until grep -q "job mi-2: its account is no longer in the configuration; not polled until it is" "$T/daemon.log" ||
		fail "no warning for mi-2 after the reload: $(grep -i 'mi-2\|reload' "$T/daemon.log")"
	# mi-2 ends; from then on (after a round trip to the simulator, for a poll cancelled by the reload) the
	# simulator answers no Mistral request.
	sim_advance 5s >/dev/null
	n_mi=$(requests mistral)
	wait_until has_event oa-2 batch_job.complete || fail "oa-2: no batch_job.complete"
	# The daemon went on: oa polled three more times after oa-2's event (a poll of mi-2 would have been due long before).
	l=$(oa_requests)
	wait_until oa_requests_past $((l + 2)) || fail "oa: no more requests"
	no_events_for mi-2 || fail "mi-2: an event while its account is not configured: $(hook_lines | awk '$3 == "mi-2"')"
	[ "$(requests mistral)" = "$n_mi" ] || fail "Mistral polled without its account: $n_mi then $(requests mistral) requests"
	listed mi:mi-2 || fail "mi:mi-2 lost by the reload: $(ctl --json list)"
	reload oa mi
	wait_until has_event mi-2 batch_job.complete || fail "mi-2: no batch_job.complete once its account is back"
	wait_until deliveries_idle || fail "deliveries still pending"
	once mi-2 batch_job.complete mi mistral
	once oa-2 batch_job.complete oa openai
	ok "reload without mi: mi-2 kept (listed, warned), not polled, no event; reload with mi: its event once"
}
check_reload

# ---- 3. a restart without account mi: restored, warned, no event; a restart with it: the event once ----
add oa oa-3 5
add mi mi-3 5
watch oa oa-3
watch mi mi-3
stop_daemon
conf oa
start_daemon
wait_until grep -q "job mi-3: account mi is not in the configuration; not polled until it is" "$T/daemon.log" ||
	fail "no warning for mi-3 at the restore: $(grep -i 'mi-3' "$T/daemon.log")"
listed mi:mi-3 || fail "mi:mi-3 not restored without its account: $(ctl --json list)"
n_mi=$(requests mistral)
sim_advance 5s >/dev/null
wait_until has_event oa-3 batch_job.complete || fail "oa-3: no batch_job.complete"
l=$(oa_requests)
wait_until oa_requests_past $((l + 2)) || fail "oa: no more requests"
no_events_for mi-3 || fail "mi-3: an event while its account is not configured: $(hook_lines | awk '$3 == "mi-3"')"
[ "$(requests mistral)" = "$n_mi" ] || fail "Mistral polled without its account: $n_mi then $(requests mistral) requests"
listed mi:mi-3 || fail "mi:mi-3 lost: $(ctl --json list)"
stop_daemon
conf oa mi
start_daemon
wait_until has_event mi-3 batch_job.complete || fail "mi-3: no batch_job.complete after a restart with its account"
wait_until deliveries_idle || fail "deliveries still pending"
once mi-3 batch_job.complete mi mistral
once oa-3 batch_job.complete oa openai
# Nothing earlier came again across the reloads and restarts.
for j in oa-early oa-1 mi-1 co-1 oa-2 mi-2; do
	[ "$(hook_lines | awk -v j="$j" '$3 == j {print $1}' | sort -u | wc -l)" = 1 ] ||
		fail "$j: more than one event id: $(hook_lines | awk -v j="$j" '$3 == j')"
done
ok "restart without mi: mi-3 restored (listed, warned), not polled, no event; restart with mi: its event once"
stop_daemon
