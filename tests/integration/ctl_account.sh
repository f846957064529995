#!/usr/bin/env bash
# requires: none
# embedwatchctl --account: the batch jobs of an [account NAME] (here OpenAI's,
# in the simulator) watched, listed, shown, waited for, cancelled and
# unwatched by the provider's own ids, shown as keys NAME:ID; an account the
# daemon does not have is refused, a name that cannot be one is a usage
# error; status has a line per account.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --cancel-delay 200ms
sim POST /_sim/providers/openai/batches '{"batches":[
  {"id":"batch_run1","timeline":[{"status":"in_progress","at":0}]},
  {"id":"batch_done1","timeline":[{"status":"in_progress","at":0},{"status":"completed","at":0.3}]},
  {"id":"batch_stop1","timeline":[{"status":"in_progress","at":0}]}]}' | jq -e '.created == 3' >/dev/null \
	|| fail "the simulator's OpenAI batches"
sim POST /_sim/jobs '{"jobs":[{"id":"co1","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
write_conf "$(account_ini oa openai)"
start_daemon

# watch --account: the provider's ids, watched as batch jobs under the keys oa:ID.
ctl watch --account oa batch_run1 batch_done1 batch_stop1 >"$T/out" || fail "watch --account oa: $?"
grep -q '^watching 3 new batch jobs of account oa$' "$T/out" || fail "watch --account output: $(cat "$T/out")"
ctl watch co1 >/dev/null || fail "watch co1"
ctl list --account oa --json | jq -e 'map(.id) == ["oa:batch_done1","oa:batch_run1","oa:batch_stop1"]
  and all(.[]; .account == "oa" and .kind == "batch-job")' >/dev/null || fail "list --account oa: $(ctl list --account oa --json)"
ctl list --account oa | grep -qE '^oa:batch_run1 +[a-z_]+ +batch-job' || fail "list --account oa table: $(ctl list --account oa)"
ctl list --account cohere --json | jq -e 'map(.id) == ["co1"]' >/dev/null || fail "list --account cohere: $(ctl list --account cohere --json)"
ctl list --account oa --prefix batch_d --json | jq -e 'map(.id) == ["oa:batch_done1"]' >/dev/null \
	|| fail "list --account oa --prefix (of the provider's id)"
ok "watch --account oa; list --account oa shows oa:ID, list --account cohere does not"

# show: by the provider's id with --account, or by the key without.
ctl show --account oa batch_run1 >"$T/show" || fail "show --account oa: $?"
grep -q '^id: *oa:batch_run1$' "$T/show" && grep -q '^kind: *batch-job$' "$T/show" || fail "show --account: $(cat "$T/show")"
ctl show oa:batch_run1 --json | jq -e '.job.id == "oa:batch_run1" and .job.account == "oa"' >/dev/null || fail "show oa:ID"
ok "show --account oa ID, and show oa:ID"

# wait and cancel by the provider's ids; unwatch.
ctl wait --account oa batch_done1 --timeout "${EW_LIMIT}s" >"$T/w" || fail "wait --account oa: $? $(cat "$T/w")"
[ "$(cat "$T/w")" = "oa:batch_done1 complete" ] || fail "wait --account output: $(cat "$T/w")"
ctl cancel --account oa batch_stop1 | grep -q '^cancel requested for 1 jobs' || fail "cancel --account oa"
rc=0; ctl wait --account oa batch_stop1 --timeout "${EW_LIMIT}s" >"$T/w" || rc=$?
[ $rc = 1 ] && [ "$(cat "$T/w")" = "oa:batch_stop1 cancelled" ] || fail "wait for the cancelled batch: rc=$rc $(cat "$T/w")"
ctl unwatch --account oa batch_stop1 | grep -q '^unwatched 1 jobs of account oa$' || fail "unwatch --account oa"
ctl list --account oa --json | jq -e 'map(.id) == ["oa:batch_done1","oa:batch_run1"]' >/dev/null || fail "unwatched still listed"
ok "wait, cancel and unwatch by the provider's ids"

# An account the daemon does not have: refused (exit 3), saying what it must be.
rc=0; ctl watch --account nope batch_x >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 3 ] && grep -q '"account" must name a configured account' "$T/err" || fail "unknown account: rc=$rc $(cat "$T/err")"
rc=0; ctl show --account nope batch_run1 >/dev/null 2>"$T/err" || rc=$?
[ $rc = 3 ] && grep -q 'configured account' "$T/err" || fail "show, unknown account: rc=$rc $(cat "$T/err")"
# A name no account can have: a usage error before anything is sent, naming the option and the value.
for bad in 'Oa' 'o a' '' "$(printf 'x%.0s' $(seq 1 33))"; do
	rc=0; ctl list --account "$bad" >/dev/null 2>"$T/err" || rc=$?
	[ $rc = 64 ] && grep -q -- "--account expects an account name" "$T/err" || fail "bad name \"$bad\": rc=$rc $(cat "$T/err")"
done
rc=0; ctl watch --account oa --kind embed-job batch_x >/dev/null 2>"$T/err" || rc=$?
[ $rc = 64 ] && grep -q 'are batch jobs' "$T/err" || fail "--kind embed-job with --account oa: rc=$rc $(cat "$T/err")"
rc=0; ctl show --account oa 'batch run' >/dev/null 2>"$T/err" || rc=$?
[ $rc = 64 ] && grep -q 'invalid job id' "$T/err" || fail "show, a bad id: rc=$rc $(cat "$T/err")"
ok "an unknown account refused (3); a bad account name and --kind embed-job usage errors (64)"

# status: a line per account, from .status.budgets.accounts.
ctl status --json | jq -e '.status.budgets.accounts.oa.provider == "openai"' >/dev/null || fail "status --json accounts"
wait_until sh -c "'$CTL' -s '$T/ctl.sock' --json status | jq -e '.status.budgets.accounts.oa.live_jobs == 1'" \
	|| fail "live jobs of oa: $(ctl --json status | jq -c .status.budgets.accounts)"
ctl status >"$T/status"
grep -qE '^account oa +openai +(sweep|per-id) +[0-9.]+/min of [0-9.]+/min, [0-9]+ requests in the last minute, 1 live jobs' \
	"$T/status" || fail "status account line: $(cat "$T/status")"
ok "status prints the account's line"
stop_daemon
