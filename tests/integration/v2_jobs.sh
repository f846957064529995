#!/usr/bin/env bash
# requires: sqlite3 nc script
# v2 batch jobs beside v1 embed jobs, through the real daemon on the
# simulator's manual clock: one group mixing both kinds with every terminal
# status and a cancel of each kind; the batch_job.* events with the Batch
# document, kind, previous_status and batch; EMBEDWATCH_KIND; an unknown
# status logged once; progress; batch.done counting both kinds; the kind in
# list, show, status, metrics and the state database, across a restart.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual --cancel-delay 1s
# A hook that records the kind too: "EVENT_ID EVENT JOB KIND STATUS".
mkdir -p "$T/kh"
cat >"$T/kind-hook" <<'EOF'
#!/bin/sh
cat >"$1/$EMBEDWATCH_EVENT_ID.json"
printf '%s %s %s %s %s\n' "$EMBEDWATCH_EVENT_ID" "$EMBEDWATCH_EVENT" "${EMBEDWATCH_JOB_ID:--}" "${EMBEDWATCH_KIND:--}" \
	"${EMBEDWATCH_STATUS:--}" >>"$1/events"
EOF
chmod +x "$T/kind-hook"
HOOK_EVENTS=$T/kh/events   # hook_lines, hook_ids read it
kh() { hook_lines; }
kh_has() { kh | grep -q -- "$1"; }   # kh_has "EVENT JOB KIND STATUS"

sim POST /_sim/jobs '{"jobs":[
 {"id":"e-ok","timeline":[{"status":"processing","at":0},{"status":"complete","at":2}]},
 {"id":"e-fail","timeline":[{"status":"processing","at":0},{"status":"failed","at":2}]},
 {"id":"e-can","timeline":[{"status":"processing","at":0},{"status":"cancelling","at":1},{"status":"cancelled","at":2}]},
 {"id":"e-x","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
sim POST /_sim/batches '{"batches":[
 {"id":"b-ok","name":"nightly-b-ok","num_records":100,"timeline":[{"status":"BATCH_STATUS_QUEUED","at":0},
   {"status":"BATCH_STATUS_IN_PROGRESS","at":1,"successful":50,"failed":2},{"status":"BATCH_STATUS_COMPLETED","at":2,"failed":2}]},
 {"id":"b-fail","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0},{"status":"BATCH_STATUS_FAILED","at":2}]},
 {"id":"b-can","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0},{"status":"BATCH_STATUS_CANCELING","at":1},
   {"status":"BATCH_STATUS_CANCELED","at":2}]},
 {"id":"b-x","numbers_as_strings":true,"timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0,"successful":3}]},
 {"id":"b-unk","timeline":[{"status":"BATCH_STATUS_UNSPECIFIED","at":0},{"status":"BATCH_STATUS_COMPLETED","at":2}]}]}' >/dev/null
BATCH_CONF="
[hooks]
progress_every = 25%
[hook kinds]
type = exec
command = $T/kind-hook $T/kh
on = *
"
write_conf "$BATCH_CONF"
start_daemon
ctl watch --batch mixed e-ok e-fail e-can e-x >/dev/null
ctl watch --kind batch-job --batch mixed b-ok b-fail b-can b-x b-unk b-gone >"$T/watch.out"
grep -q 'watching 6 new batch jobs in batch mixed' "$T/watch.out" || fail "watch --kind output: $(cat "$T/watch.out")"
# The same id as the other kind is refused, and so is a kind that is none.
rc=0; ctl watch --kind batch-job e-ok 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q 'already watched as embed-job' "$T/err" || fail "the other kind: rc $rc, $(cat "$T/err")"
rc=0; ctl watch --kind batch e-ok 2>/dev/null || rc=$?; [ $rc = 64 ] || fail "--kind batch: rc $rc"
r=$(printf '{"cmd":"watch","ids":["z"],"kind":"v3"}\n' | nc -U -q 2 "$T/ctl.sock" | head -n 1)
jq -e '.ok == false and (.error | test("embed-job or batch-job"))' <<<"$r" >/dev/null || fail "kind v3: $r"

seen_all() { ctl list --json | jq -e '[.[] | select(.status == "new")] | length <= 1'; }
wait_until seen_all || fail "not every job was observed: $(ctl list --json | jq -c 'map({id, status})')"
ctl cancel e-x b-x >"$T/cancel.out" || fail "cancel: $(cat "$T/cancel.out")"
wait_until kh_has "embed_job.cancelling e-x embed-job cancelling" || fail "e-x: no cancelling"
wait_until kh_has "batch_job.cancelling b-x batch-job cancelling" || fail "b-x: no cancelling"
sim GET /_sim/stats | jq -e '.v2.requests.cancel == 1 and .v2.batches["b-x"].cancel_requested and .requests.cancel == 1' >/dev/null \
	|| fail "the cancels did not reach POST /v2/batches/b-x:cancel and POST /v1/embed-jobs/e-x/cancel: $(sim GET /_sim/stats | jq -c '[.requests, .v2.requests]')"
ok "cancel of each kind: POST .../e-x/cancel and POST .../b-x:cancel, each watched to cancelling"

sim_advance 1s >/dev/null
wait_until kh_has "batch_job.progress b-ok batch-job processing" || fail "no progress event for b-ok"
for want in "embed_job.cancelling e-can" "batch_job.cancelling b-can" "embed_job.cancelled e-x" "batch_job.cancelled b-x"; do
	wait_until kh_has "$want" || fail "no $want"
done
# The wait progress line on a terminal counts the batch jobs' records (it gives up after its own timeout here).
script -qfec "'$CTL' -s '$T/ctl.sock' wait --batch mixed --timeout 1500ms" /dev/null >"$T/tty.out" 2>&1 || true
tr '\r' '\n' <"$T/tty.out" | grep -aq 'records 55/500 (11%)' || fail "progress line: $(tr '\r' '\n' <"$T/tty.out" | grep -a waiting | tail -1)"
ok "the wait progress line: $(tr '\r' '\n' <"$T/tty.out" | grep -a waiting: | tail -1 | sed 's/.*waiting: //; s/\x1b\[K//g')"
sim_advance 1s >/dev/null
wait_until kh_has " batch.done " || fail "no batch.done: $(kh)"

expect="embed_job.complete e-ok embed-job complete
embed_job.failed e-fail embed-job failed
embed_job.cancelling e-can embed-job cancelling
embed_job.cancelled e-can embed-job cancelled
embed_job.cancelling e-x embed-job cancelling
embed_job.cancelled e-x embed-job cancelled
batch_job.complete b-ok batch-job complete
batch_job.progress b-ok batch-job processing
batch_job.failed b-fail batch-job failed
batch_job.cancelling b-can batch-job cancelling
batch_job.cancelled b-can batch-job cancelled
batch_job.cancelling b-x batch-job cancelling
batch_job.cancelled b-x batch-job cancelled
batch_job.complete b-unk batch-job complete
batch_job.not_found b-gone batch-job not_found
batch.done - - done"
diff <(kh | cut -d' ' -f2- | sort) <(sort <<<"$expect") >"$T/diff" || fail "events differ: $(cat "$T/diff")"
[ "$(hook_ids)" = 16 ] || fail "event ids not distinct"
ok "mixed group of 4 embed jobs and 6 batch jobs: every terminal status of each kind, with EMBEDWATCH_KIND and STATUS"

ev() { kh | awk -v e="$1" -v j="$2" '$2 == e && $3 == j {print $1}'; }
p="$T/kh/$(ev batch_job.complete b-ok).json"
jq -e '.type == "batch_job.complete" and .data.id == "b-ok" and .data.status == "BATCH_STATUS_COMPLETED"
  and .data.kind == "batch-job" and .data.previous_status == "processing" and .data.batch == "mixed"
  and .data.num_records == 100 and .data.num_successful_records == 98 and .data.num_failed_records == 2
  and .data.creator_id == "sim-user" and .data.output_dataset_id == "ds-bout-b-ok" and (.data.input_tokens | type) == "string"' "$p" >/dev/null \
	|| fail "batch_job.complete payload: $(jq -c .data "$p")"
jq -e '.data.kind == "embed-job" and .data.job_id == "e-ok" and .data.previous_status == "processing"' \
	"$T/kh/$(ev embed_job.complete e-ok).json" >/dev/null || fail "embed_job.complete payload"
jq -e '.data.id == "b-gone" and .data.kind == "batch-job" and .data.status == "not_found" and .data.batch == "mixed"' \
	"$T/kh/$(ev batch_job.not_found b-gone).json" >/dev/null || fail "not_found payload"
jq -e '.data.progress.step == 50 and .data.progress.num_successful_records == 50 and .data.progress.percent == 52
  and .data.status == "BATCH_STATUS_IN_PROGRESS"' "$T/kh/$(ev batch_job.progress b-ok).json" >/dev/null \
	|| fail "progress payload: $(jq -c .data.progress "$T/kh/$(ev batch_job.progress b-ok).json")"
jq -e '.data.total == 10 and .data.counts.complete == 3 and .data.counts.failed == 2 and .data.counts.cancelled == 4
  and .data.counts.not_found == 1 and .data.kinds["embed-job"] == 4 and .data.kinds["batch-job"] == 6
  and ([.data.jobs[] | select(.kind == "batch-job")] | length) == 6' "$T/kh/$(ev batch.done -).json" >/dev/null \
	|| fail "batch.done: $(jq -c '.data | {counts, kinds}' "$T/kh/$(ev batch.done -).json")"
ok "payloads: the Batch document as served plus kind, previous_status, batch; progress at 50 %; batch.done counts both kinds"

[ "$(grep -c 'unknown status "BATCH_STATUS_UNSPECIFIED"' "$T/daemon.log")" = 1 ] || fail "unknown status not logged exactly once"
ctl show b-ok | grep -q '^kind: *batch-job' && ctl show b-ok | grep -q '^records: *100/100 done (98 successful, 2 failed)' \
	|| fail "show b-ok: $(ctl show b-ok)"
ctl show b-x --json | jq -e '.job.records.num_successful_records == 3 and .job.cancel == "accepted"' >/dev/null || fail "show b-x (numbers as strings)"
[ "$(ctl list --kind batch-job --json | jq length)" = 6 ] && [ "$(ctl list --kind embed-job --json | jq length)" = 4 ] || fail "list --kind"
ctl list | grep -qE '^b-ok +complete +batch-job +mixed' || fail "list table: $(ctl list | head -3)"
status_field by_kind | jq -e '.["embed-job"] == 4 and .["batch-job"] == 6' >/dev/null || fail "status by_kind"
ctl metrics >"$T/m" && grep -q '^embedwatch_jobs_by_kind{kind="batch-job"} 6$' "$T/m" \
	&& grep -q '^embedwatch_batch_job_records{outcome="successful"} 201$' "$T/m" || fail "metrics: $(grep batch "$T/m")"
ctl batches --json | jq -e '.batches[0].kinds["batch-job"] == 6 and .batches[0].records.num_records == 500' >/dev/null \
	|| fail "batches: $(ctl batches --json | jq -c .batches[0])"
ok "unknown status logged once; show, list --kind, status, metrics and batches know the kind and the records"

stop_daemon
[ "$(sqlite3 "$T/state/embedwatch.db" "select count(*) from jobs where kind = 1")" = 6 ] || fail "kind not in the database"
start_daemon
[ "$(ctl list --kind batch-job --json | jq length)" = 6 ] || fail "kind lost across a restart"
ctl show b-ok --json | jq -e '.job.records.num_records == 100' >/dev/null || fail "records lost across a restart"
n=$(hook_ids)
ctl watch --kind batch-job --batch later b-new >/dev/null   # not in the API: ends not_found, by its kind's URL
# Two new events: b-new's not_found and batch later's batch.done, delivered after it.
wait_until hook_has_ids 2 ' batch\.done ' || fail "no batch.done for later: $(kh | tail -n +$((n + 1)))"
kh_has "batch_job.not_found b-new" || fail "b-new"
[ "$(hook_ids)" = $((n + 2)) ] || fail "events fired again after the restart: $(kh | tail -n +$((n + 1)))"
sim GET /_sim/log | jq -e '[.entries[] | select(.[2] == "b-new")] | length >= 3' >/dev/null || fail "b-new not polled as a batch"
ok "the kind is kept in the state database (a column): after a restart the batch jobs are still batch jobs, nothing fires again"
stop_daemon
