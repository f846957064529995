#!/usr/bin/env bash
# requires: sqlite3
# The output dataset in complete events (GET /v1/datasets/{id}), through the
# real daemon on the simulator's manual clock: both kinds carry
# data.output_dataset with its parts; the part URLs (signed links) are in the
# event and nowhere in the log or the metrics; when the datasets endpoint fails
# the event goes out after [datasets] tries with "output_dataset": null and
# output_dataset_error; a 404 is not retried; a timeout; fetch = no; the same
# document on redelivery and on the repeat after kill -9.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual --dataset-parts 3
LOG_LEVEL=debug write_conf "
[datasets]
timeout = 30s
"
start_daemon
payload() { cat "$T/hooks/payloads/$(hook_lines | awk -v e="$1" -v j="$2" '$2 == e && $3 == j {print $1; exit}').record.${3:-1}"; }
ds_requests() { sim GET "/_sim/log" | jq --arg id "$1" '[.entries[] | select(.[2] == $id)] | length'; }

sim POST /_sim/jobs '{"id":"e-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]}' >/dev/null
sim POST /_sim/batches '{"id":"b-1","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0},{"status":"BATCH_STATUS_COMPLETED","at":1}]}' >/dev/null
ctl watch e-1 >/dev/null
ctl watch --kind batch-job b-1 >/dev/null
wait_until ctl_jq 'all(.status == "processing")' list --json || fail "not observed"
sim_advance 1s >/dev/null
wait_until hook_has_ids 2 'embed_job.complete e-1\|batch_job.complete b-1' || fail "no complete events: $(hook_lines)"
payload embed_job.complete e-1 | jq -e '.data.output_dataset | .id == "ds-out-e-1" and .validation_status == "validated"
  and (.dataset_parts | length) == 3 and all(.dataset_parts[]; .url | test("X-Sim-Signature=SIMSECRET"))' >/dev/null \
	|| fail "embed_job.complete: $(payload embed_job.complete e-1 | jq -c .data.output_dataset)"
payload batch_job.complete b-1 | jq -e '.data.output_dataset.id == "ds-bout-b-1" and (.data.output_dataset.dataset_parts | length) == 3
  and (.data | has("output_dataset_error") | not) and .data.output_dataset_id == "ds-bout-b-1"' >/dev/null \
	|| fail "batch_job.complete: $(payload batch_job.complete b-1 | jq -c .data)"
[ "$(ds_requests ds-out-e-1)" = 1 ] && [ "$(ds_requests ds-bout-b-1)" = 1 ] || fail "dataset requests: $(ds_requests ds-out-e-1) $(ds_requests ds-bout-b-1)"
grep -q 'job b-1: output dataset ds-bout-b-1 (3 parts, 6144 bytes, 300 rows) goes in its complete event' "$T/daemon.log" \
	|| fail "no summary line"
ok "complete events of both kinds carry data.output_dataset (3 parts), one GET /v1/datasets/{id} each"

# The datasets endpoint failing: 3 tries, then the event with null and why; the job is not held forever.
sim POST /_sim/faults '{"kind":"status","status":500,"target":"datasets"}' >/dev/null
sim POST /_sim/jobs '{"id":"e-2","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]}' >/dev/null
sim POST /_sim/batches '{"batches":[{"id":"b-2","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0},{"status":"BATCH_STATUS_COMPLETED","at":1}]},
 {"id":"b-404","output_dataset_id":"gone-1","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0},{"status":"BATCH_STATUS_COMPLETED","at":1}]}]}' >/dev/null
sim DELETE /_sim/faults >/dev/null
sim POST /_sim/faults '{"faults":[{"kind":"status","status":500,"target":"datasets","job":"ds-out-e-2"},
 {"kind":"drop","target":"datasets","job":"ds-bout-b-2"}]}' >/dev/null
ctl watch e-2 >/dev/null
ctl watch --kind batch-job b-2 b-404 >/dev/null
wait_until ctl_jq '[.[] | select(.status == "processing")] | length == 3' list --json || fail "not observed"
sim_advance 1s >/dev/null
wait_until hook_has_ids 3 'embed_job.complete e-2\|batch_job.complete b-2\|batch_job.complete b-404' || fail "events held: $(hook_lines)"
payload embed_job.complete e-2 | jq -e '(.data | has("output_dataset")) and .data.output_dataset == null
  and (.data.output_dataset_error | test("GET /v1/datasets/ds-out-e-2 failed 3 times, the last: HTTP 500"))' >/dev/null \
	|| fail "e-2: $(payload embed_job.complete e-2 | jq -c '{output_dataset: .data.output_dataset, e: .data.output_dataset_error}')"
payload batch_job.complete b-2 | jq -e '.data.output_dataset == null and (.data.output_dataset_error | test("failed 3 times"))' >/dev/null \
	|| fail "b-2: $(payload batch_job.complete b-2 | jq -c .data.output_dataset_error)"
payload batch_job.complete b-404 | jq -e '.data.output_dataset == null and .data.output_dataset_error == "GET /v1/datasets/gone-1 answered 404"' >/dev/null \
	|| fail "b-404: $(payload batch_job.complete b-404 | jq -c .data.output_dataset_error)"
[ "$(ds_requests ds-out-e-2)" = 3 ] && [ "$(ds_requests gone-1)" = 1 ] || fail "tries: $(ds_requests ds-out-e-2) for 500s, $(ds_requests gone-1) for a 404"
[ "$(sim GET '/_sim/stats?jobs=0' | jq .v2.requests.datasets)" -ge 8 ] || fail "dataset counter"
grep -q 'job e-2: its complete event goes out without the output dataset ds-out-e-2' "$T/daemon.log" || fail "not logged"
ok "the datasets endpoint failing: 3 tries (500, dropped), a 404 once, then each event with output_dataset null and output_dataset_error"

ctl metrics >"$T/m"
grep -q '^embedwatch_complete_event_datasets_total{result="attached"} 2$' "$T/m" \
	&& grep -q '^embedwatch_complete_event_datasets_total{result="missing"} 3$' "$T/m" || fail "metrics: $(grep dataset "$T/m")"
for f in "$T/daemon.log" "$T/m"; do
	! grep -q 'SIMSECRET\|X-Sim-Signature\|storage.sim.invalid' "$f" || fail "a part URL in $f: $(grep -m1 SIMSECRET "$f")"
done
[ "$(sqlite3 "$T/state/embedwatch.db" "select count(*) from events where payload like '%SIMSECRET%'")" = 2 ] \
	|| fail "the events in the database do not hold the parts"
ok "no part URL in the log (debug level) or the metrics, only in the events"

# Redelivery and the repeat after kill -9 carry the same document.
sim DELETE /_sim/faults >/dev/null
evt=$(hook_lines | awk '$2 == "embed_job.complete" && $3 == "e-1" {print $1; exit}')
cp "$T/hooks/payloads/$evt.record.1" "$T/first.json"
rm -f "$T/hooks/payloads/$evt".record.*
ctl redeliver "$evt" --hook record >/dev/null
wait_until sh -c "[ \$(grep -c '^$evt ' '$T/hooks/events') -ge 2 ]" || fail "redelivery did not run"
again=$(ls "$T/hooks/payloads/$evt".record.* | head -1)
cmp -s "$T/first.json" "$again" || fail "the redelivery differs: $(diff <(jq -S . "$T/first.json") <(jq -S . "$again") | head -5)"
n_before=$(ds_requests ds-out-e-1)
echo 1 >"$T/hooks/exit"
sim POST /_sim/batches '{"id":"b-3","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0},{"status":"BATCH_STATUS_COMPLETED","at":1}]}' >/dev/null
ctl watch --kind batch-job b-3 >/dev/null
wait_until ctl_jq '.job.status == "processing"' show b-3 --json || fail "b-3"
sim_advance 1s >/dev/null
wait_until hook_has_ids 1 'batch_job.complete b-3' || fail "b-3 complete"
e3=$(hook_lines | awk '$2 == "batch_job.complete" && $3 == "b-3" {print $1; exit}')
kill9_daemon
tries=$(ls "$T/hooks/payloads/$e3".record.* | wc -l)
rm -f "$T/hooks/exit"
start_daemon
# A delivery the crash left pending runs again, with a higher attempt number and the same payload.
later() { ls "$T/hooks/payloads/$e3".record.* | sed 's/.*\.record\.//' | awk -v n="$tries" '$1 > n' | grep -q .; }
wait_until later || fail "no repeat after kill -9"
last=$(ls "$T/hooks/payloads/$e3".record.* | sed 's/.*\.record\.//' | sort -n | tail -1)
cmp -s "$T/hooks/payloads/$e3.record.1" "$T/hooks/payloads/$e3.record.$last" || fail "the repeat after kill -9 differs"
jq -e '.data.output_dataset.id == "ds-bout-b-3"' "$T/hooks/payloads/$e3.record.$last" >/dev/null || fail "repeat without the dataset"
[ "$(ds_requests ds-bout-b-3)" = 1 ] && [ "$(ds_requests ds-out-e-1)" = "$n_before" ] || fail "fetched again for a committed event"
ok "redelivery and the repeat after kill -9: the same payload with the same dataset, not fetched again"
stop_daemon

# A timeout: the fetch hangs longer than [datasets] timeout; the event goes out by then, with null.
sed -i 's/^timeout = 30s$/timeout = 1s/' "$T/ew.conf"
start_daemon
sim POST /_sim/faults '{"kind":"delay","delay":5,"target":"datasets"}' >/dev/null
sim POST /_sim/jobs '{"id":"e-4","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]}' >/dev/null
ctl watch e-4 >/dev/null
wait_until ctl_jq '.job.status == "processing"' show e-4 --json || fail "e-4"
sim_advance 1s >/dev/null
wait_until hook_has_ids 1 'embed_job.complete e-4' || fail "e-4 held past its timeout"
payload embed_job.complete e-4 | jq -e '.data.output_dataset == null and (.data.output_dataset_error | test("timeout|timed out"))' >/dev/null \
	|| fail "e-4: $(payload embed_job.complete e-4 | jq -c .data.output_dataset_error)"
ok "a fetch hanging past [datasets] timeout = 1s: the event goes out with null and the reason"
stop_daemon
sim DELETE /_sim/faults >/dev/null

# fetch = no: no field, no request.
printf '[datasets]\nfetch = no\n' >>"$T/ew.conf"
sed -i '/^\[datasets\]$/{n;/^timeout/d}' "$T/ew.conf"
start_daemon
sim POST /_sim/jobs '{"id":"e-5","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]}' >/dev/null
ctl watch e-5 >/dev/null
wait_until ctl_jq '.job.status == "processing"' show e-5 --json || fail "e-5"
sim_advance 1s >/dev/null
wait_until hook_has_ids 1 'embed_job.complete e-5' || fail "e-5"
payload embed_job.complete e-5 | jq -e '.data | (has("output_dataset") or has("output_dataset_error")) | not' >/dev/null || fail "fetch = no"
[ "$(ds_requests ds-out-e-5)" = 0 ] || fail "fetch = no fetched"
ok "[datasets] fetch = no: the event has no output_dataset and nothing is fetched"
stop_daemon
