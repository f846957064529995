#!/usr/bin/env bash
# requires: pg
# Active/standby on one PostgreSQL state, both with an [account oa] (OpenAI),
# on the simulator's manual clock: a batch job of the account watched on the
# active survives a kill -9 of the active; the standby takes over and delivers
# its end event exactly once, with its account. A watch with "account" sent to
# the (new) standby is forwarded to the active and its job's event arrives once.
. "$top_srcdir/tests/integration/lib/lib.sh"
. "$top_srcdir/tests/integration/lib/pg.sh"
pg_start

start_sim --clock manual
printf '%s\n' "$TOKEN" >"$T/good.key"
chmod 600 "$T/good.key"

# A second hook, on both daemons, records each event's account: "EVENT_ID PROVIDER ACCOUNT JOB_ID".
cat >"$T/acct-hook.sh" <<'SH'
#!/bin/sh
cat >/dev/null
printf '%s %s %s %s\n' "$EMBEDWATCH_EVENT_ID" "$EMBEDWATCH_PROVIDER" "$EMBEDWATCH_ACCOUNT" "${EMBEDWATCH_JOB_ID:--}" >>"$1"
SH
chmod 755 "$T/acct-hook.sh"

LEASE_TTL=4s LEASE_RENEW=1s write_conf "
[account oa]
provider = openai
api_base = $SIM_URL
key_file = $T/good.key
rate = 20/s
sweep = yes
[hook acct]
type = exec
command = $T/acct-hook.sh $T/acct.lines
on = *
timeout = 10s
retry = 200ms 400ms"
node_conf a
node_conf b

# add ID END: an OpenAI batch, in progress from now, completed END seconds from now.
add() {
	sim POST /_sim/providers/openai/batches "{\"batches\":[{\"id\":\"$1\",\"timeline\":[{\"status\":\"in_progress\",\"at\":0},\
{\"status\":\"completed\",\"at\":$2}]}]}" | jq -e '.created == 1' >/dev/null || fail "sim: adding $1"
}
# The distinct event ids of batch_job.complete for the job ID in the daemons' shared hook log.
event_ids() { awk -v j="$1" '$4 == "batch_job.complete" && $5 == j {print $3}' "$HA_LOG" 2>/dev/null | sort -u; }
has_event() { ere_quote "$1" && ids_count "$HA_LOG" 3 "^[^ ]+ [^ ]+ [^ ]+ batch_job[.]complete $REPLY( |$)" && [ "$REPLY" -ge 1 ]; }
has_acct() { grep -q "^$1 " "$T/acct.lines" 2>/dev/null; }
# once ID: one batch_job.complete event id for ID, no other end event, and its account hook's line, "openai oa ID".
once() {
	local ids n
	ids=$(event_ids "$1")
	n=$(grep -c . <<<"$ids" || true)
	[ "$n" = 1 ] || fail "$1: $n distinct batch_job.complete events: $(grep " $1 " "$HA_LOG")"
	[ -z "$(awk -v j="$1" -v e="$ids" '$5 == j && $4 ~ /^batch_job\.(complete|failed|cancelled|expired)$/ && $3 != e' "$HA_LOG")" ] ||
		fail "$1: another end event: $(grep " $1 " "$HA_LOG")"
	wait_until has_acct "$ids" || fail "$1: the acct hook did not run"
	[ "$(grep "^$ids " "$T/acct.lines" | sort -u)" = "$ids openai oa $1" ] ||
		fail "$1: provider and account: $(grep "^$ids " "$T/acct.lines")"
}
# listed NODE KEY: NODE's list (the active's jobs, or the shared state's on a standby) has KEY.
listed() { nctl "$1" --json list | jq -e --arg k "$2" '[.. | objects | select(.id? == $k)] | length == 1' >/dev/null; }

add oa-h1 5
add oa-h2 10
start_node a
wait_until node_is a active || fail "a is not active"
start_node b
node_is b standby || fail "b is not standby: $(node_role b)"

# ---- the active killed: the standby takes over and delivers the job's event once ----
# embedwatchctl sends the request with "account" (the daemon makes the key oa:oa-h1).
r=$(nctl a --json watch --account oa oa-h1) || fail "watch oa-h1 on the active: $r"
jq -e '.added == 1' <<<"$r" >/dev/null || fail "watch oa-h1 on the active: $r"
# Acknowledged: committed to the shared state.
kill -KILL "$(node_pid a)"
wait "$(node_pid a)" 2>/dev/null || true
wait_until node_is b active || fail "b did not take over"
wait_until listed b oa:oa-h1 || fail "oa:oa-h1 not restored by b: $(nctl b --json list)"
sim_advance 5s >/dev/null
wait_until has_event oa-h1 || fail "oa-h1: no batch_job.complete after the takeover"
wait_until node_pending0 b || fail "deliveries pending on b"
once oa-h1
ok "kill -9 of the active: b took over, oa-h1's end event once, account oa"

# ---- a watch with "account" through the standby: forwarded, applied by the active, its event once ----
start_node a
wait_until node_is a standby || fail "a did not come back as a standby: $(node_role a)"
r=$(nctl a --json watch --account oa oa-h2 2>"$T/watch.err") || fail "watch oa-h2 through the standby: $r $(cat "$T/watch.err")"
jq -e '.added == 1' <<<"$r" >/dev/null || fail "watch oa-h2 through the standby: $r"
grep -q standby "$T/watch.err" || fail "the standby did not say it forwarded the request: $(cat "$T/watch.err")"
wait_until listed b oa:oa-h2 || fail "the active did not apply the forwarded watch: $(nctl b --json list)"
wait_until eval "nctl b --json show --account oa oa-h2 | jq -e '.job.status == \"processing\"'" ||
	fail "oa-h2 not polled by the active: $(nctl b --json show --account oa oa-h2)"
sim_advance 5s >/dev/null
wait_until has_event oa-h2 || fail "oa-h2: no batch_job.complete"
wait_until node_pending0 b || fail "deliveries pending on b"
once oa-h2
once oa-h1
# Every event ran on b, the active since the takeover.
[ -z "$(awk '$2 != "b"' "$HA_LOG")" ] || fail "hooks ran on a: $(awk '$2 != "b"' "$HA_LOG")"
ok "watch with \"account\" through the standby a: forwarded, applied by b, oa-h2's end event once"

stop_nodes a b
