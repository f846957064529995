#!/usr/bin/env bash
# requires: none
# Request classes: the embed-job endpoints and the default class (datasets,
# v2 batches) are budgets apart, and observation never waits behind
# enrichment. On the simulator's manual clock:
#  - 20 complete events wait for their output datasets, the datasets endpoint
#    answering 429 (the default class paused): meanwhile 10 other jobs fail or
#    are cancelled, and those ends are observed and delivered while the 20
#    are still held; the embed-job class is not paused and the list goes on;
#  - then a 429 on the list and the per-id polls pauses the embed-job class:
#    the 20 datasets are fetched meanwhile and the 20 complete events go out
#    with them.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual
LOG_LEVEL=debug write_conf "
[datasets]
timeout = 1h
"
start_daemon
cls() { ctl status --json | jq -r ".status.budgets.classes.$1.$2"; }
list_requests() { sim GET '/_sim/stats?jobs=0' | jq .requests.list; }

jobs='{"id":"r-1","timeline":[{"status":"processing","at":0}]}'
for i in $(seq 20); do jobs="$jobs,{\"id\":\"c-$i\",\"timeline\":[{\"status\":\"processing\",\"at\":0},{\"status\":\"complete\",\"at\":1}]}"; done
for i in $(seq 5); do
	jobs="$jobs,{\"id\":\"f-$i\",\"timeline\":[{\"status\":\"processing\",\"at\":0},{\"status\":\"failed\",\"at\":2}]}"
	jobs="$jobs,{\"id\":\"x-$i\",\"timeline\":[{\"status\":\"processing\",\"at\":0},{\"status\":\"cancelled\",\"at\":2}]}"
done
sim POST /_sim/jobs "{\"jobs\":[$jobs]}" >/dev/null
# The datasets endpoint throttles: every answer a 429 with a short Retry-After, so the default class stays paused.
sim POST /_sim/faults '{"kind":"status","status":429,"retry_after":"1","target":"datasets"}' >/dev/null
ctl watch r-1 $(for i in $(seq 20); do printf 'c-%s ' "$i"; done) $(for i in $(seq 5); do printf 'f-%s x-%s ' "$i" "$i"; done) >/dev/null
wait_until ctl_jq 'length == 31 and all(.status == "processing")' list --json \
	|| fail "not observed: $(ctl list)"
sim_advance 1s >/dev/null
# The 20 completions are seen, held for their datasets; the 429 pauses the default class.
throttled() { [ "$(cls "$1" throttled)" -ge 1 ]; }
wait_until throttled default \
	|| fail "no 429 from the datasets endpoint: $(ctl status --json | jq -c .status.budgets)"
sim_advance 1s >/dev/null
wait_until hook_has_ids 10 'embed_job.failed f-\|embed_job.cancelled x-' \
	|| fail "failed and cancelled ends not delivered while the datasets wait: $(hook_lines | awk '{print $2, $3}' | sort | uniq -c | head)"
[ "$(hook_count 'embed_job.complete')" = 0 ] || fail "a complete event went out without waiting for its dataset"
[ "$(ctl status --json | jq '.status.budgets.classes.embed_jobs.throttled')" = 0 ] || fail "the embed-job class was throttled"
ok "10 failed and cancelled ends delivered while 20 complete events wait for datasets behind a 429 (default class)"

# The embed-job class goes on while the default class is paused: the list keeps observing r-1.
n=$(list_requests)
more_lists() { [ "$(list_requests)" -ge "$1" ]; }
wait_until more_lists $((n + 3)) \
	|| fail "the list stopped while the datasets were throttled"
[ "$(hook_count 'embed_job.complete')" = 0 ] || fail "a complete event went out without its dataset"
grep -q 'pausing the default requests' "$T/daemon.log" || fail "the default class's pause is not logged"
! grep -q 'pausing the embed_jobs requests' "$T/daemon.log" || fail "the embed-job class was paused by the datasets' 429"
ok "a 429 on the dataset endpoint pauses only the default class: $(( $(list_requests) - n )) more lists meanwhile"

# Now the other way round: the list and per-id polls throttled for an hour, the datasets answering.
sim DELETE /_sim/faults >/dev/null
sim POST /_sim/faults '{"kind":"status","status":429,"retry_after":"3600","target":"api"}' >/dev/null
wait_until ctl_jq '.status.budgets.classes.embed_jobs.paused_s > 60' status --json \
	|| fail "the 429 on the list did not pause the embed-job class: $(ctl status --json | jq -c .status.budgets.classes)"
wait_until hook_has_ids 20 'embed_job.complete c-' || fail "the datasets were not fetched while the list was throttled: $(hook_count embed_job.complete)"
ctl status --json | jq -e '.status.budgets.classes.embed_jobs.paused_s > 60' >/dev/null \
	|| fail "the embed-job class is no longer paused: the events may have waited for it"
payload_of() { cat "$T/hooks/payloads/$(hook_lines | awk -v j="$1" '$2 == "embed_job.complete" && $3 == j {print $1; exit}').record.1"; }
for i in 1 20; do
	payload_of "c-$i" | jq -e ".data.output_dataset.id == \"ds-out-c-$i\"" >/dev/null || fail "c-$i without its dataset: $(payload_of "c-$i" | jq -c .data)"
done
ok "a 429 on the list pauses only the embed-job class: 20 complete events went out with their datasets meanwhile"

ctl status | grep -q '^class embed_jobs .*PAUSED (429/503)' || fail "status text: $(ctl status)"
ctl metrics >"$T/m"
grep -q '^embedwatch_class_paused_seconds{class="embed_jobs"} [1-9]' "$T/m" && grep -q '^embedwatch_class_requests_total{class="default"} [1-9]' "$T/m" \
	|| fail "class metrics: $(grep embedwatch_class_ "$T/m")"
ok "status and metrics show each class (rate, tokens, pause, requests)"
