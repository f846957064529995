#!/usr/bin/env bash
# requires: none
# A webhook's Retry-After pauses that hook, not others; hooks shows the pause;
# enabling the hook again (after disable) ends the pause early.
. "$top_srcdir/tests/integration/lib/lib.sh"

N=5
start_sim
jq -cn --argjson n $N '{jobs: [range($n) | {id: ("p-" + tostring), timeline: [{status:"processing",at:0},{status:"complete",at:0.1}]}]}' \
	| sim POST /_sim/jobs "$(cat)" >/dev/null
# One 429 with a long Retry-After, then the sink answers 200.
sim POST /_sim/faults '{"kind":"status","status":429,"target":"sink","retry_after":"600","count":1}' >/dev/null
write_conf "[hook web]
type = webhook
url = $SIM_URL/_sim/sink/web
on = embed_job.complete
concurrency = 1"
start_daemon
seq 0 $((N - 1)) | sed 's/^/p-/' | ctl watch - >/dev/null

paused() { ctl --json hooks | jq -e '.hooks[] | select(.name == "web") | .paused_until != null' >/dev/null; }
wait_until paused || fail "web not paused after a 429 with Retry-After"
# The exec hook (record) delivers every event while web is paused.
wait_until hook_has_ids $N embed_job.complete || fail "the other hook did not go on"
paused || fail "the pause ended early"
[ "$(sim GET /_sim/sink | jq '[.deliveries[] | select(.status == 200)] | length')" = 0 ] || fail "web delivered while paused"
ctl hooks | grep -q 'paused until .* (Retry-After)' || fail "hooks text does not show the pause"
ok "Retry-After paused web only: record delivered $N events meanwhile"

ctl hooks disable web >/dev/null
ctl hooks enable web >/dev/null
web_done() { [ "$(sim GET /_sim/sink | jq '[.deliveries[] | select(.status == 200) | .headers["webhook-id"]] | unique | length')" = $N ]; }
wait_until web_done || fail "web did not deliver after enable"
stop_daemon
ok "after enable the pause is over: web delivered all $N"
