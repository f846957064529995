#!/usr/bin/env bash
# requires: none
# The v2 sweep (GET /v2/batches?order_by=updated_at, paged) through the real
# daemon: over more than one page of history it reads every page once, then
# stops at the previous sweep's newest updated_at (newest first); oldest first
# it reads every page every time; changes are seen through the list, not by
# polls; discovery of batches by name; the list not offered: per-id polling.
. "$top_srcdir/tests/integration/lib/lib.sh"

m() { ctl metrics | awk -v k="$1" '$1 == k {print $2}'; }
v2polls() { sim GET '/_sim/stats?jobs=0' | jq .v2.requests.poll; }
batches_json() {   # batches_json N PREFIX: N batches in progress, ending (alternately complete and failed) at 10 s
	jq -cn --argjson n "$1" --arg p "$2" '{batches: [range($n) as $i | {id: ($p + ($i|tostring)), num_records: 10,
	  timeline: [{status:"BATCH_STATUS_IN_PROGRESS",at:0,successful:1},
	             {status: (if $i % 2 == 0 then "BATCH_STATUS_COMPLETED" else "BATCH_STATUS_FAILED" end), at:10}]}]}'
}
ended() { hook_has_ids "$2" "batch_job\.\(complete\|failed\) $1"; }

# 1. Newest first (the simulator's default), 250 ended batches of history, pages of 100.
start_sim --clock manual --v2-history 250
sim POST /_sim/batches "$(batches_json 10 b-)" >/dev/null
INTERVAL_MAX=5s write_conf "
[poll]
batch_page_size = 100
"
start_daemon
ctl watch --kind batch-job - < <(seq -f 'b-%g' 0 9) >/dev/null
wait_until ctl_jq 'length == 10 and all(.status == "processing")' list --json || fail "not observed"
# A read of every page (3 pages of 260 entries) learns the order; the sweeps after stop after one page.
wait_until sh -c "[ \"\$('$CTL' -s '$T/ctl.sock' metrics | awk '\$1 == \"embedwatch_batch_sweep_cut_total\" {print \$2}')\" -ge 2 ]" \
	|| fail "no sweep stopped at the cut-off: $(ctl metrics | grep batch_sweep)"
[ "$(m embedwatch_batch_sweep_last_pages)" = 1 ] || fail "last sweep read $(m embedwatch_batch_sweep_last_pages) pages"
p0=$(v2polls)
sim_advance 10s >/dev/null
wait_until ended b- 10 || fail "batches did not end: $(hook_lines)"
sweeps=$(m embedwatch_batch_sweeps_total); pages=$(m embedwatch_batch_sweep_pages_total)
[ "$((pages - sweeps))" = 2 ] || fail "$pages pages over $sweeps sweeps: only the first should read all 3"
for i in $(seq 0 9); do
	ctl show "b-$i" --json | jq -e '.job.last_seen_via == "list"' >/dev/null || fail "b-$i was not seen through the list"
done
p1=$(v2polls)
[ "$((p1 - p0))" -le 2 ] || fail "$((p1 - p0)) per-id polls of batch jobs while the sweep observed them"
stats=$(sim GET '/_sim/stats?jobs=0' | jq -c .v2.requests)
ok "newest first, 260 entries in pages of 100: one read of 3 pages, then $((sweeps - 1)) sweeps of 1 page; 10 batches ended, seen through the list ($((p1 - p0)) per-id polls after the first ones; $stats)"
stop_daemon
kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
rm -rf "$T/state" "$T/hooks"

# 2. Oldest first: no sweep can stop early; every sweep reads every page, and the batches still end.
start_sim --clock manual --v2-history 250 --v2-order asc
sim POST /_sim/batches "$(batches_json 4 a-)" >/dev/null
INTERVAL_MAX=5s write_conf "
[poll]
batch_page_size = 100
"
start_daemon
ctl watch --kind batch-job a-0 a-1 a-2 a-3 >/dev/null
wait_until ctl_jq 'length == 4 and all(.status == "processing")' list --json || fail "asc: not observed"
wait_until sh -c "[ \"\$('$CTL' -s '$T/ctl.sock' metrics | awk '\$1 == \"embedwatch_batch_sweeps_total\" {print \$2}')\" -ge 3 ]" || fail "asc: no sweeps"
sim_advance 10s >/dev/null
wait_until ended a- 4 || fail "asc: batches did not end"
sweeps=$(m embedwatch_batch_sweeps_total); pages=$(m embedwatch_batch_sweep_pages_total)
[ "$(m embedwatch_batch_sweep_cut_total)" = 0 ] || fail "asc: a sweep stopped early"
[ "$pages" -ge $(( 3 * (sweeps - 1) )) ] || fail "asc: $pages pages for $sweeps sweeps"
ok "oldest first: $sweeps sweeps, $pages pages (every page each time, none cut); 4 batches ended"
stop_daemon
rm -rf "$T/state" "$T/hooks"

# 3. Discovery by name: batches started after the daemon, in batches by name prefix; history is not watched.
mkdir -p "$T/hooks-emb"
write_conf "
[discover]
enabled = yes
match = *
batch = {name-prefix}
[hook emb]
type = exec
command = $HOOK $T/hooks-emb
on = batch.done batch_job.complete
batch = nightly-emb
"
start_daemon
sim POST /_sim/batches '{"batches":[
 {"id":"d-1","name":"nightly-emb-1","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0},{"status":"BATCH_STATUS_COMPLETED","at":1}]},
 {"id":"d-2","name":"nightly-emb-2","timeline":[{"status":"BATCH_STATUS_QUEUED","at":0},{"status":"BATCH_STATUS_COMPLETED","at":2}]},
 {"id":"d-3","name":"adhoc","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0}]}]}' >/dev/null
wait_until ctl_jq 'map(.id) | sort == ["d-1","d-2","d-3"]' list --json \
	|| fail "discovery: $(ctl list --json | jq -c 'map(.id)')"
sim_advance 2s >/dev/null
wait_until grep -q -- ' batch.done - done nightly-emb ' "$T/hooks-emb/events" || fail "discovery: no batch.done for nightly-emb"
ctl list --json | jq -e 'all(.discovered and .kind == "batch-job") and (map(select(.id == "d-1"))[0].batch == "nightly-emb")
  and (map(select(.id == "d-3"))[0].batch == "adhoc")' >/dev/null || fail "discovered: $(ctl list --json | jq -c 'map({id, batch, kind})')"
[ "$(grep -c 'batch_job.complete d-' "$T/hooks-emb/events")" = 2 ] || fail "routing: $(cat "$T/hooks-emb/events")"
! ctl list --json | jq -e 'any(.id | startswith("hb-"))' >/dev/null || fail "history batches watched"
ok "discovery of v2 batches by name: nightly-emb-{1,2} in batch nightly-emb (batch.done), adhoc in its own; 250 ended batches of history not watched"
stop_daemon
rm -rf "$T/state" "$T/hooks"

# 4. The list not offered (404): per-id polling for batch jobs at once, said once; they still end.
sim POST /_sim/faults '{"kind":"status","status":404,"target":"v2_list"}' >/dev/null
sim POST /_sim/batches "$(batches_json 2 f-)" >/dev/null
write_conf
start_daemon
ctl watch --kind batch-job f-0 f-1 >/dev/null
wait_until grep -q 'v2 sweep: the API does not offer GET /v2/batches here (HTTP 404)' "$T/daemon.log" || fail "no fallback"
wait_until ctl_jq 'all(.status == "processing")' list --json || fail "f: not observed"
sim_advance 10s >/dev/null
wait_until ended f- 2 || fail "f: did not end per id"
[ "$(grep -c 'v2 sweep: .*polling batch jobs per id' "$T/daemon.log")" = 1 ] || fail "fallback said more than once"
[ "$(m embedwatch_batch_sweep_fallbacks_total)" = 1 ] || fail "fallback not counted"
! grep -q 'api_base .* looks wrong' "$T/daemon.log" || fail "a 404 on the list paused everything"
ok "GET /v2/batches answering 404: one fallback to per-id polling, logged once; both batches ended"
stop_daemon
