#!/usr/bin/env bash
# requires: sqlite3
# The list sweep (GET /v1/embed-jobs), discovery, cancel and hook routing,
# through the real daemon against the simulator with a history of ended jobs.
. "$top_srcdir/tests/integration/lib/lib.sh"

# A cancelled job stays cancelling until the test gives it a new timeline (cancelled at 0): the
# daemon cannot miss the cancelling state on a loaded machine.
start_sim --history 2000 --auto auto- --auto-min 1s --auto-max 2s --cancel-delay 1h
stats() { sim GET "/_sim/stats?jobs=0" | jq -c '.requests'; }
# Terminal events in the recording hook's lines (a grep pattern: add the job id prefix).
TERMINAL=' embed_job\.\(complete\|failed\|cancelled\)'
terminal_events() {   # the terminal events of PREFIX as "event_id type job", sorted
	hook_lines | awk -v p="$1" '$2 ~ /^embed_job\.(complete|failed|cancelled)$/ && index($3, p) == 1 {print $1, $2, $3}' | sort
}

# 1. The same jobs, once by sweep and once by per-id polling only: the same events, the same ids.
sim POST /_sim/jobs "$(jobs_json 60 sw-)" >/dev/null
write_conf
start_daemon
ctl watch - < <(seq -f 'sw-%g' 0 59) >/dev/null
wait_until hook_has_ids 60 "$TERMINAL sw-" || fail "sweep: jobs did not end"
s=$(stats)
lists=$(jq .list <<<"$s"); polls=$(jq .poll <<<"$s")
terminal_events sw- >"$T/by-sweep"
[ "$(wc -l <"$T/by-sweep")" = 60 ] || fail "sweep: $(wc -l <"$T/by-sweep") terminal events for 60 jobs"
[ "$polls" -lt 30 ] || fail "sweep: $polls per-id polls for 60 listed jobs"
ctl show sw-1 --json | jq -e '.job.last_seen_via == "list"' >/dev/null || fail "show does not say the list"
stop_daemon
rm -rf "$T/state" "$T/hooks"
sim POST /_sim/jobs "$(jobs_json 60 sw-)" >/dev/null
SWEEP=no write_conf
start_daemon
ctl watch - < <(seq -f 'sw-%g' 0 59) >/dev/null
wait_until hook_has_ids 60 "$TERMINAL sw-" || fail "per-id: jobs did not end"
terminal_events sw- >"$T/by-poll"
ctl show sw-1 --json | jq -e '.job.last_seen_via == "poll"' >/dev/null || fail "show does not say the poll"
stop_daemon
diff "$T/by-sweep" "$T/by-poll" >/dev/null || fail "sweep and per-id polling fired different events: $(diff "$T/by-sweep" "$T/by-poll" | head -5)"
ok "60 jobs: the sweep ($lists lists, $polls per-id polls) fires the same 60 terminal events with the same ids as per-id polling"

# 2. Across kill -9: every job's terminal event once, with the ids of the per-id run. The kills
#    come while deliveries are running (after 15, 30 and 45 of the 60 jobs' events); a delivery
#    the kill interrupted is repeated with the same event id, so the count is of distinct ids.
rm -rf "$T/state" "$T/hooks"
sim POST /_sim/jobs "$(jq -cn '{jobs: [range(60) as $i | {id: ("sw-" + ($i|tostring)), timeline: ([{status:"processing",at:0}] +
  (if $i % 3 == 0 then [{status:"complete", at: (0.5 + ($i % 20) * 0.15)}]
   elif $i % 3 == 1 then [{status:"failed", at: (0.5 + ($i % 20) * 0.15)}]
   else [{status:"cancelling", at:0.3},{status:"cancelled", at: (0.5 + ($i % 20) * 0.15)}] end))}]}')" >/dev/null
write_conf
start_daemon
ctl watch - < <(seq -f 'sw-%g' 0 59) >/dev/null
for k in 15 30 45; do
	wait_until hook_has_ids "$k" "$TERMINAL sw-" || fail "before kill -9: fewer than $k jobs ended"
	kill9_daemon
	start_daemon
done
wait_until hook_has_ids 60 "$TERMINAL sw-" || fail "after kill -9: jobs did not end"
terminal_events sw- | awk '{print $1, $2, $3}' | sort -u >"$T/after-kill"
diff "$T/after-kill" "$T/by-poll" >/dev/null || fail "after kill -9 the events differ: $(diff "$T/after-kill" "$T/by-poll" | head -5)"
stop_daemon
ok "3 x kill -9 while sweeping: every terminal event delivered, the same 60 event ids"

# 3. A job the list does not hold (an auto job the simulator makes on its first GET) is found per id.
rm -rf "$T/state" "$T/hooks"
write_conf
start_daemon
ctl watch auto-x1 >/dev/null
wait_until ctl_jq '.[0].status | test("complete|failed|cancelled")' list --json || fail "auto-x1 never ended"
[ "$(sim GET /_sim/stats | jq '.jobs["auto-x1"].requests')" -ge 1 ] || fail "auto-x1 was never polled per id"
ok "a job missing from the list is polled per id and ends"
stop_daemon

# 4. List faults. 429 on the list only: everything pauses for Retry-After, nothing is sent inside it.
rm -rf "$T/state" "$T/hooks"
sim POST /_sim/jobs '{"jobs":[{"id":"lf-1","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
write_conf
start_daemon
ctl watch lf-1 >/dev/null
# lf-1 stays processing until the pause has been checked: no timeline to race.
wait_until ctl_jq '.job.status == "processing"' show lf-1 --json || fail "lf-1 never seen"
sim POST /_sim/faults '{"kind":"status","status":429,"target":"list","count":1,"retry_after":"2"}' >/dev/null
wait_until grep -q 'API answered 429: pausing the embed_jobs requests' "$T/daemon.log" || fail "429 on the list did not pause"
t429=$(sim GET /_sim/log | jq '[.entries[] | select(.[1] == 429)][0][0]')
# The window is judged once it is over: the daemon has sent a request after it (lf-1 still runs).
resumed() { sim GET /_sim/log | jq -e --argjson t "$t429" 'any(.entries[]; .[0] >= $t + 1900)' >/dev/null; }
wait_until resumed || fail "no request after the Retry-After window"
inside=$(sim GET /_sim/log | jq --argjson t "$t429" '[.entries[] | select(.[0] > $t and .[0] < $t + 1900)] | length')
[ "$inside" = 0 ] || fail "$inside requests inside the Retry-After window"
sim POST /_sim/jobs '{"jobs":[{"id":"lf-1","timeline":[{"status":"complete","at":0}]}]}' >/dev/null
wait_until grep -q -- ' embed_job.complete lf-1' "$T/hooks/events" || fail "lf-1 did not end after the pause"
ok "429 on the list: all requests paused for Retry-After (none inside it), then the job ends"
stop_daemon

# Truncated lists, three in a row: fall back to per-id polling, say so once, the jobs still end.
# The jobs run until the fallback (ended jobs stop the sweep, and the three lists with them),
# then end by their usual timelines.
rm -rf "$T/state" "$T/hooks"
sim POST /_sim/jobs "$(jobs_json 10 lt- | jq -c '.jobs |= map(.timeline = [{status: "processing", at: 0}])')" >/dev/null
sim POST /_sim/faults '{"kind":"truncated","target":"list","count":3}' >/dev/null
write_conf
start_daemon
ctl watch - < <(seq -f 'lt-%g' 0 9) >/dev/null
wait_until grep -q 'falling back to per-id polling' "$T/daemon.log" || fail "truncated lists: no fallback"
sim POST /_sim/jobs "$(jobs_json 10 lt-)" >/dev/null
wait_until hook_has_ids 10 "$TERMINAL lt-" || fail "truncated lists: jobs did not end"
[ "$(grep -c 'falling back to per-id polling' "$T/daemon.log")" = 1 ] || fail "fallback said more than once"
ctl metrics >"$T/metrics.out" && grep -q '^embedwatch_sweep_fallbacks_total 1$' "$T/metrics.out" || fail "fallback not counted"
ok "3 truncated lists: one fallback to per-id polling, logged once; all 10 jobs ended"
stop_daemon

# The list over list_max_bytes: fall back at once, and say why.
rm -rf "$T/state" "$T/hooks"
sim POST /_sim/jobs "$(jobs_json 5 lc-)" >/dev/null
write_conf
sed -i 's/^\[poll\]/[poll]\nlist_max_bytes = 64k/' "$T/ew.conf"
start_daemon
ctl watch - < <(seq -f 'lc-%g' 0 4) >/dev/null
wait_until grep -q 'larger than list_max_bytes' "$T/daemon.log" || fail "list over the cap: no fallback"
wait_until hook_has_ids 5 "$TERMINAL lc-" || fail "over the cap: jobs did not end"
ok "a list over list_max_bytes (2,000 history entries, cap 64 KiB): fallback said once, jobs ended per id"
stop_daemon

# The list endpoint answering 404, or 501 (not implemented for this endpoint): per-id polling at
# once, and no global pause (a 501 to a poll would mean a wrong base URL).
list_not_offered() {   # list_not_offered STATUS PREFIX
	rm -rf "$T/state" "$T/hooks"
	: >"$T/daemon.log"
	sim POST /_sim/jobs "$(jobs_json 5 "$2")" >/dev/null
	sim POST /_sim/faults "{\"kind\":\"status\",\"status\":$1,\"target\":\"list\"}" >/dev/null
	write_conf
	start_daemon
	ctl watch - < <(seq -f "$2%g" 0 4) >/dev/null
	wait_until grep -q "does not offer the list here (HTTP $1)" "$T/daemon.log" || fail "list $1: no fallback"
	wait_until hook_has_ids 5 "$TERMINAL $2" \
		|| fail "list $1: jobs did not end"
	! grep -q 'api_base .* looks wrong' "$T/daemon.log" || fail "a $1 on the list paused everything"
	ok "the list answering $1: per-id polling at once, no global pause, jobs ended"
	stop_daemon
	sim DELETE /_sim/faults >/dev/null
}
list_not_offered 404 l4-
list_not_offered 501 l5-

# 5. Discovery: a job started after the daemon, matching the glob, is watched in its batch, and the
#    batch's hook fires; one not matching, and the history, are not watched. Hook routing by batch.
rm -rf "$T/state" "$T/hooks"
mkdir -p "$T/hooks-docs" "$T/hooks-img"
write_conf "
[discover]
enabled = yes
match = nightly-*
batch = {name-prefix}
[hook docs]
type = exec
command = $HOOK $T/hooks-docs
on = *
batch = nightly-docs*
[hook img]
type = exec
command = $HOOK $T/hooks-img
on = *
batch = nightly-img*
"
start_daemon
sim POST /_sim/jobs '{"jobs":[
 {"id":"d-1","name":"nightly-docs-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]},
 {"id":"d-2","name":"nightly-docs-2","timeline":[{"status":"processing","at":0},{"status":"complete","at":1.5}]},
 {"id":"i-1","name":"nightly-img-1","timeline":[{"status":"processing","at":0},{"status":"failed","at":1}]},
 {"id":"o-1","name":"adhoc-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]}]}' >/dev/null
wait_until grep -q -- ' batch.done ' "$T/hooks-docs/events" || fail "discovery: no batch.done for nightly-docs"
wait_until grep -q -- ' batch.done ' "$T/hooks-img/events" || fail "discovery: no batch.done for nightly-img"
ctl list --json | jq -e 'map(select(.discovered)) | map(.id) | sort == ["d-1","d-2","i-1"]' >/dev/null \
	|| fail "discovered: $(ctl list --json | jq -c 'map({id, batch, discovered})')"
ctl list --json | jq -e 'map(select(.id == "d-1"))[0].batch == "nightly-docs"' >/dev/null || fail "batch rule"
! ctl list --json | jq -e 'map(.id) | index("o-1") or any(startswith("hist-"))' >/dev/null || fail "watched what does not match, or history"
[ "$(grep -c 'embed_job.complete d-' "$T/hooks-docs/events")" = 2 ] && ! grep -q ' i-1 ' "$T/hooks-docs/events" || fail "docs hook routing"
grep -q 'embed_job.failed i-1' "$T/hooks-img/events" && ! grep -q ' d-1 ' "$T/hooks-img/events" || fail "img hook routing"
ok "discovery: nightly-docs-{1,2} and nightly-img-1 watched in their batches, adhoc-1 and 2,000 history jobs not; each hook got only its batch (batch.done included)"
stop_daemon

# 6. cancel, and cancel_on_expire: each ends in cancelled with the right events.
rm -rf "$T/state" "$T/hooks"
sim POST /_sim/jobs '{"jobs":[{"id":"c-1","timeline":[{"status":"processing","at":0}]},
 {"id":"c-2","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
write_conf
# max_age 6 s: c-1's cancel must end before it expires (under ASan it takes over 1 s), and
# c-2's cancel, sent at max_age, must end before twice max_age, when the daemon gives up on it.
sed -i 's/^\[embedwatch\]/[embedwatch]\nmax_age = 6s\ncancel_on_expire = yes/' "$T/ew.conf"
start_daemon
ctl watch c-2 >/dev/null
ctl cancel c-1 >"$T/cancel.out" || fail "cancel: $(cat "$T/cancel.out")"
grep -q 'cancel requested for 1 jobs' "$T/cancel.out" || fail "cancel output: $(cat "$T/cancel.out")"
wait_until grep -q ' embed_job.cancelling c-1 ' "$T/hooks/events" || fail "c-1: no cancelling event"
cancelled() { sim POST /_sim/jobs "{\"id\":\"$1\",\"timeline\":[{\"status\":\"cancelled\",\"at\":0}]}" >/dev/null; }
cancelled c-1
wait_until grep -q ' embed_job.cancelled c-1 ' "$T/hooks/events" || fail "c-1 not cancelled"
ctl show c-1 --json | jq -e '.job.cancel == "accepted" and .job.status == "cancelled"' >/dev/null || fail "show c-1"
[ "$(sim GET "/_sim/stats?jobs=0" | jq .requests.cancel)" -ge 1 ] || fail "no POST .../cancel reached the API"
wait_until grep -q 'job c-2: cancel accepted' "$T/daemon.log" || fail "c-2's cancel at max_age not accepted"
cancelled c-2
wait_until grep -q ' embed_job.cancelled c-2 ' "$T/hooks/events" || fail "c-2 not cancelled at max_age"
evt=$(grep ' embed_job.expired c-2 ' "$T/hooks/events" | awk '{print $1}' | head -1)
[ -n "$evt" ] || fail "c-2: no expired event"
sqlite3 "$T/state/embedwatch.db" "select payload from events where id='$evt'" | jq -e '.data.cancel == "accepted"' >/dev/null \
	|| fail "the expired event does not say the cancel was accepted"
grep -q "control: cancel of 1 jobs by pid" "$T/daemon.log" || fail "cancel's peer not logged"
ok "cancel: cancelling then cancelled; cancel_on_expire: expired (cancel accepted), then cancelled"
stop_daemon

# A cancel recorded but not sent before a stop is sent after the restart: the API answers the
# cancel POST with 429 and a long Retry-After, the daemon stops, and starts again.
rm -rf "$T/state" "$T/hooks"
sim POST /_sim/jobs '{"jobs":[{"id":"c-3","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
write_conf
start_daemon
ctl watch c-3 >/dev/null
wait_until ctl_jq '.job.status == "processing"' show c-3 --json || fail "c-3 never seen"
sim POST /_sim/faults '{"kind":"status","status":429,"retry_after":"60","target":"poll","job":"c-3","count":1}' >/dev/null
ctl cancel c-3 >/dev/null
wait_until grep -q 'API answered 429: pausing the embed_jobs requests' "$T/daemon.log" || fail "the cancel was not held back by a 429"
[ "$(sim GET "/_sim/stats?jobs=0" | jq .requests.cancel)" -ge 1 ] || fail "no cancel request reached the API"
stop_daemon
start_daemon
wait_until ctl_jq '.job.cancel == "accepted"' show c-3 --json \
	|| fail "the cancel recorded before the stop was not sent after the restart: $(ctl show c-3 --json | jq -c .job.cancel)"
cancelled c-3
wait_until grep -q ' embed_job.cancelled c-3 ' "$T/hooks/events" || fail "c-3 did not end cancelled"
ok "a cancel held back by a 429 before a stop is sent after the restart, and the job ends cancelled"
stop_daemon
