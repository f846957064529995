#!/usr/bin/env bash
# requires: none
# The simulator serves jobs through their timelines, faithful to the contract.
# The manual clock moves only when the test advances it, so each state is read
# at a known time, on any machine, however loaded.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual --auto auto- --auto-min 1s --auto-max 1s --cancel-delay 500ms
status_of() { api "/v1/embed-jobs/$1" | cut -d' ' -f2- | jq -r .status; }
# advance_to MS DURATION: advances the clock by DURATION and checks it now reads MS.
advance_to() { local t; t=$(sim_advance "$2"); [ "$t" = "$1" ] || fail "clock at $t ms after +$2, expected $1"; }

sim POST /_sim/jobs '{"jobs":[
 {"id":"job-a","name":"nightly","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]},
 {"id":"job-b","timeline":[{"status":"processing","at":0},{"status":"failed","at":1}]},
 {"id":"job-c","timeline":[{"status":"processing","at":0},{"status":"cancelling","at":0.5},{"status":"cancelled","at":1}]},
 {"id":"job-d"}]}' | jq -e '.created == 4' >/dev/null || fail "create jobs"

# Every field of the contract, with its type.
check_doc() {
	jq -e '
	  (.job_id|type=="string") and (.status|IN("processing","cancelling","complete","cancelled","failed"))
	  and (.created_at|test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"))
	  and (.input_dataset_id|type=="string") and (.model|type=="string") and (.truncate|IN("START","END"))
	  and (.name|type=="string") and (.meta.api_version.version|type=="string")
	  and (.meta.billed_units.input_tokens|type=="number")' >/dev/null
}

r=$(api /v1/embed-jobs/job-a)
[ "${r%% *}" = 200 ] || fail "GET job-a: $r"
echo "${r#* }" | check_doc || fail "job-a document: $r"
echo "${r#* }" | jq -e '.status=="processing" and .name=="nightly" and (has("output_dataset_id")|not)' >/dev/null || fail "job-a initial: $r"
ok "a job document has every contract field with its type"

# Each step starts exactly at its "at": not before, at the millisecond it is due.
[ "$(status_of job-c)" = processing ] || fail "job-c at 0 ms"
advance_to 499 499ms
[ "$(status_of job-c)" = processing ] || fail "job-c cancelling before its 0.5 s step"
t=$(sim POST /_sim/clock '{"advance_ms":1}' | jq -r .now_ms); [ "$t" = 500 ] || fail "advance_ms: clock at $t"
r=$(api /v1/embed-jobs/job-c); echo "${r#* }" | jq -e '.status=="cancelling"' >/dev/null || fail "job-c cancelling: $r"
[ "$(status_of job-a)" = processing ] || fail "job-a ended before its 1 s step"
advance_to 1100 600ms
for j in a b c; do
	r=$(api /v1/embed-jobs/job-$j)
	echo "${r#* }" | check_doc || fail "job-$j document: $r"
done
[ "$(api /v1/embed-jobs/job-a | cut -d' ' -f2- | jq -r .status)" = complete ] || fail "job-a complete"
api /v1/embed-jobs/job-a | cut -d' ' -f2- | jq -e '.output_dataset_id=="ds-out-job-a"' >/dev/null || fail "output dataset when complete"
[ "$(api /v1/embed-jobs/job-b | cut -d' ' -f2- | jq -r .status)" = failed ] || fail "job-b failed"
[ "$(api /v1/embed-jobs/job-c | cut -d' ' -f2- | jq -r .status)" = cancelled ] || fail "job-c cancelled"
ok "timelines: processing -> complete, failed, cancelling -> cancelled"

# Cancel: cancelling now, cancelled after the cancel delay; an ended job cannot be cancelled.
r=$(api /v1/embed-jobs/job-d/cancel -X POST); [ "${r%% *}" = 200 ] || fail "cancel: $r"
[ "$(status_of job-d)" = cancelling ] || fail "job-d cancelling"
advance_to 1599 499ms
[ "$(status_of job-d)" = cancelling ] || fail "job-d cancelled before the 500 ms cancel delay"
advance_to 1600 1ms
[ "$(status_of job-d)" = cancelled ] || fail "job-d cancelled"
r=$(api /v1/embed-jobs/job-a/cancel -X POST); [ "${r%% *}" = 400 ] || fail "cancel ended job: $r"
ok "cancel"

# List.
r=$(api /v1/embed-jobs)
echo "${r#* }" | jq -e '(.embed_jobs|length)==4 and ([.embed_jobs[].job_id]|sort)==["job-a","job-b","job-c","job-d"]' >/dev/null || fail "list: $r"
ok "list"

# Auth: 401 without a key, 403 with a wrong one; X-Client-Name is recorded.
c=$(curl -s -o /dev/null -w '%{http_code}' "$SIM_URL/v1/embed-jobs/job-a"); [ "$c" = 401 ] || fail "no key: $c"
c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$SIM_URL/v1/embed-jobs/job-a"); [ "$c" = 403 ] || fail "wrong key: $c"
c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Basic abc' "$SIM_URL/v1/embed-jobs/job-a"); [ "$c" = 401 ] || fail "not bearer: $c"
api /v1/embed-jobs/job-a -H 'X-Client-Name: pipeline-7' >/dev/null
sim GET '/_sim/stats?jobs=0' | jq -e '.client_names["pipeline-7"]==1' >/dev/null || fail "client name not recorded"
ok "auth and X-Client-Name"

# Unknown ids: 404. Other paths and methods.
r=$(api /v1/embed-jobs/nope); [ "${r%% *}" = 404 ] || fail "unknown id: $r"
r=$(api /v1/embed-jobs/job-a -X DELETE); [ "${r%% *}" = 405 ] || fail "DELETE: $r"
r=$(api /v2/whatever); [ "${r%% *}" = 404 ] || fail "other path: $r"
ok "404 for unknown ids"

# Auto mode: any id with the prefix, a timeline derived from the id alone.
r=$(api /v1/embed-jobs/auto-000017); echo "${r#* }" | check_doc || fail "auto doc: $r"
echo "${r#* }" | jq -e '.status=="processing"' >/dev/null || fail "auto initial: $r"
advance_to 2600 1s
s1=$(status_of auto-000017)
case "$s1" in complete|failed|cancelled) ;; *) fail "auto job did not end: $s1" ;; esac
ok "auto mode ($s1)"

# Counters per job and per status.
st=$(sim GET /_sim/stats)
# Times in the stats are sim times: job-a was first asked at 0 and ends at 1 s.
echo "$st" | jq -e '.jobs["job-a"].requests >= 4 and .jobs["job-a"].first_ms == 0 and .jobs["job-a"].last_ms == 1600
  and .jobs["job-a"].ends_ms == 1000 and .jobs["auto-000017"].first_ms == 1600' >/dev/null || fail "per-job counters: $st"
echo "$st" | jq -e '.status["401"]>=2 and .status["403"]==1 and .status["404"]>=1 and .requests.poll>=10 and .requests.list==1 and .requests.cancel==2' >/dev/null || fail "status counters: $st"
ok "counters"

# Keep-alive: many requests over one connection.
curl -s -H "Authorization: Bearer $TOKEN" -o /dev/null "$SIM_URL/v1/embed-jobs/job-a" -o /dev/null "$SIM_URL/v1/embed-jobs/job-b" -o /dev/null "$SIM_URL/v1/embed-jobs/job-c" -w '%{num_connects}\n' >"$T/nc"
[ "$(paste -sd, "$T/nc")" = "1,0,0" ] || fail "connection not kept alive: $(paste -sd, "$T/nc")"
ok "keep-alive"

# Admin errors are clear.
r=$(sim POST /_sim/jobs '{"id":"bad/id"}'); echo "$r" | jq -e '.message|test("invalid job id")' >/dev/null || fail "bad id: $r"
r=$(sim POST /_sim/jobs 'not json'); echo "$r" | jq -e '.message|test("not valid JSON")' >/dev/null || fail "bad json: $r"
ok "admin errors"
