#!/usr/bin/env bash
# requires: none
# The simulator's v2 Batches and v1 Datasets, checked against the contract
# (api/batches-datasets.openapi.yaml), on the manual clock: timelines with
# record counts, getBatch, :cancel (a colon), listBatches paging in both
# directions with page_size coerced, datasets with signed parts, faults, auth.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual --v2-history 25 --cancel-delay 1s
sim POST /_sim/batches '{"batches":[
 {"id":"b-1","name":"nightly-docs-1","num_records":100,"timeline":[{"status":"BATCH_STATUS_QUEUED","at":0},
   {"status":"BATCH_STATUS_IN_PROGRESS","at":1,"successful":10,"failed":1},
   {"status":"BATCH_STATUS_COMPLETED","at":3,"failed":2}]},
 {"id":"b-2","numbers_as_strings":true,"timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0,"successful":5}]},
 {"id":"b-3","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0},{"status":"BATCH_STATUS_FAILED","at":2}]}]}' >/dev/null

# getBatch: {"batch": Batch}, the status and counts of the timeline at the sim time, output_dataset_id once done.
r=$(api /v2/batches/b-1)
[ "${r%% *}" = 200 ] || fail "GET /v2/batches/b-1: $r"
jq -e '.batch | .id == "b-1" and .name == "nightly-docs-1" and .status == "BATCH_STATUS_QUEUED" and .num_records == 100
  and (has("output_dataset_id") | not) and .model == "embed-v4.0" and (.input_tokens | type) == "string"' <<<"${r#* }" >/dev/null \
	|| fail "b-1 at 0: ${r#* }"
sim_advance 999ms >/dev/null
[ "$(api /v2/batches/b-1 | cut -d' ' -f2- | jq -r .batch.status)" = BATCH_STATUS_QUEUED ] || fail "b-1 in progress before its step"
sim_advance 1ms >/dev/null
api /v2/batches/b-1 | cut -d' ' -f2- | jq -e '.batch | .status == "BATCH_STATUS_IN_PROGRESS" and .num_successful_records == 10
  and .num_failed_records == 1' >/dev/null || fail "b-1 at 1 s: $(api /v2/batches/b-1)"
api /v2/batches/b-2 | cut -d' ' -f2- | jq -e '.batch | .num_records == "100" and .num_successful_records == "5"' >/dev/null \
	|| fail "numbers as strings: $(api /v2/batches/b-2)"
sim_advance 2s >/dev/null
api /v2/batches/b-1 | cut -d' ' -f2- | jq -e '.batch | .status == "BATCH_STATUS_COMPLETED" and .num_successful_records == 98
  and .num_failed_records == 2 and .output_dataset_id == "ds-bout-b-1" and .updated_at > .created_at' >/dev/null \
	|| fail "b-1 completed: $(api /v2/batches/b-1)"
api /v2/batches/b-3 | cut -d' ' -f2- | jq -e '.batch | .status == "BATCH_STATUS_FAILED" and .status_reason != null' >/dev/null \
	|| fail "b-3 failed"
r=$(api /v2/batches/nope); [ "${r%% *}" = 404 ] && jq -e .message <<<"${r#* }" >/dev/null || fail "unknown batch: $r"
r=$(api /v2/batches/b-1/cancel -X POST); [ "${r%% *}" = 404 ] || fail "a slash cancel path: $r"
ok "getBatch: timeline statuses and counts at the millisecond they are due, numbers as strings, output id once completed, 404"

# :cancel (a colon): CANCELING, CANCELED after the cancel delay; an ended batch answers 400; GET is 405.
r=$(api /v2/batches/b-2:cancel -X POST); [ "${r%% *}" = 200 ] || fail "cancel b-2: $r"
[ "$(api /v2/batches/b-2 | cut -d' ' -f2- | jq -r .batch.status)" = BATCH_STATUS_CANCELING ] || fail "b-2 not canceling"
sim_advance 1s >/dev/null
[ "$(api /v2/batches/b-2 | cut -d' ' -f2- | jq -r .batch.status)" = BATCH_STATUS_CANCELED ] || fail "b-2 not canceled"
r=$(api /v2/batches/b-1:cancel -X POST); [ "${r%% *}" = 400 ] || fail "cancel of an ended batch: $r"
r=$(api /v2/batches/b-3:cancel); [ "${r%% *}" = 405 ] || fail "GET :cancel: $r"
[ "$(sim GET /_sim/stats | jq '.v2.requests.cancel')" = 2 ] || fail "cancel counter"
ok "POST /v2/batches/ID:cancel: canceling, then canceled; 400 when ended; 405 for GET"

# listBatches: newest first by default; pages of page_size with next_page_token, none on the last page.
list_all() {   # list_all QUERY [TOKEN]: every id over every page from TOKEN (or the first), one per line
	local tok="${2:-}" q r
	while :; do
		q="$1"; [ -n "$tok" ] && q="$q&page_token=$tok"
		r=$(api "/v2/batches?$q"); [ "${r%% *}" = 200 ] || fail "list $q: $r"
		jq -r '.batches[].id' <<<"${r#* }"
		tok=$(jq -r '.next_page_token // empty' <<<"${r#* }")
		[ -n "$tok" ] || break
	done
}
list_all "order_by=updated_at&page_size=7" >"$T/desc"
[ "$(wc -l <"$T/desc")" = 28 ] && [ "$(sort -u "$T/desc" | wc -l)" = 28 ] || fail "desc: $(wc -l <"$T/desc") entries"
[ "$(tail -1 "$T/desc")" = hb-0000000 ] && grep -qx b-1 "$T/desc" || fail "desc order: $(head -3 "$T/desc" | tr '\n' ' ')... $(tail -1 "$T/desc")"
[ "$(grep hb- "$T/desc" | tr '\n' ' ')" = "$(seq -f 'hb-%07g' 24 -1 0 | tr '\n' ' ')" ] || fail "history out of order: $(grep hb- "$T/desc" | head -5 | tr '\n' ' ')"
r=$(api "/v2/batches?order_by=updated_at&page_size=7")
jq -e '[.batches[].updated_at] as $u | ($u | length) == 7 and $u == ($u | sort | reverse) and (.next_page_token | type) == "string"' \
	<<<"${r#* }" >/dev/null || fail "first page not newest first"
r=$(api "/v2/batches?order_by=updated_at&page_size=50")
jq -e '(.batches | length) == 28 and (has("next_page_token") | not)' <<<"${r#* }" >/dev/null || fail "one page of 50"
r=$(api "/v2/batches?page_size=5000"); jq -e '.batches | length == 28' <<<"${r#* }" >/dev/null || fail "page_size coerced"
r=$(api "/v2/batches"); jq -e '.batches | length == 28' <<<"${r#* }" >/dev/null || fail "page_size default 50"
for bad in "page_size=0" "page_size=x" "order_by=name" "page_token=garbage"; do
	r=$(api "/v2/batches?$bad"); [ "${r%% *}" = 400 ] || fail "$bad: $r"
done
ok "listBatches newest first: 28 entries over 4 pages of 7, no token on the last, page_size coerced to 1000, bad queries 400"

# A change while paging does not skip or repeat the unchanged entries (keyset cursor).
r=$(api "/v2/batches?order_by=updated_at&page_size=7"); tok=$(jq -r .next_page_token <<<"${r#* }")
sim POST /_sim/batches '{"id":"b-4","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0}]}' >/dev/null
rest=$(list_all "order_by=updated_at&page_size=7" "$tok" | wc -l)
[ "$rest" = 21 ] || fail "after a new batch mid-paging: $rest entries after page 1, want 21"
ok "a batch created while paging: the pages after the cursor still hold the 21 others"

stop_sim() { kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true; }
stop_sim
start_sim --clock manual --v2-history 10 --v2-order asc --dataset-parts 3
sim POST /_sim/batches '{"id":"a-1","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0}]}' >/dev/null
list_all "order_by=updated_at&page_size=4" >"$T/asc"
[ "$(tr '\n' ' ' <"$T/asc")" = "$(seq -f 'hb-%07g' 0 9 | tr '\n' ' ')a-1 " ] || fail "asc: $(tr '\n' ' ' <"$T/asc")"
r=$(api "/v2/batches?order_by=created_at&page_size=100")
jq -e '[.batches[].created_at] as $c | $c == ($c | sort)' <<<"${r#* }" >/dev/null || fail "order_by created_at"
ok "--v2-order asc: oldest first over 3 pages of 4; order_by=created_at"

# Datasets: parts with signed URLs; 404 for an unknown one; auth as for everything else.
r=$(api /v1/datasets/ds-bout-a-1)
[ "${r%% *}" = 200 ] || fail "dataset: $r"
jq -e '.dataset | .id == "ds-bout-a-1" and .validation_status == "validated" and (.dataset_parts | length) == 3
  and all(.dataset_parts[]; .url | test("^https://.*X-Sim-Signature=SIMSECRET")) and .dataset_parts[2].index == 2' \
	<<<"${r#* }" >/dev/null || fail "dataset document: ${r#* }"
r=$(api /v1/datasets/other); [ "${r%% *}" = 404 ] || fail "unknown dataset: $r"
r=$(curl -sS -o /dev/null -w '%{http_code}' "$SIM_URL/v1/datasets/ds-x"); [ "$r" = 401 ] || fail "dataset without a key: $r"
r=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$SIM_URL/v2/batches"); [ "$r" = 403 ] || fail "wrong key: $r"
ok "GET /v1/datasets/ID: 3 parts with signed URLs; 404 unknown; 401/403 without the key"

# Faults by target: datasets, v2 per-id, v2 list; the v1 default target leaves v2 alone.
sim POST /_sim/faults '{"faults":[{"kind":"status","status":500,"target":"datasets","count":2},
 {"kind":"status","status":429,"retry_after":"3","target":"v2","job":"a-1","count":1},
 {"kind":"status","status":503,"target":"v2_list","count":1},{"kind":"status","status":502,"count":1}]}' >/dev/null
[ "$(api /v1/datasets/ds-y | cut -d' ' -f1)" = 500 ] && [ "$(api /v1/datasets/ds-y | cut -d' ' -f1)" = 500 ] \
	&& [ "$(api /v1/datasets/ds-y | cut -d' ' -f1)" = 200 ] || fail "datasets fault"
[ "$(api /v2/batches/a-1 | cut -d' ' -f1)" = 429 ] && [ "$(api /v2/batches/a-1 | cut -d' ' -f1)" = 200 ] || fail "v2 fault"
[ "$(api /v2/batches | cut -d' ' -f1)" = 503 ] && [ "$(api /v2/batches | cut -d' ' -f1)" = 200 ] || fail "v2 list fault"
[ "$(sim GET /_sim/stats | jq '.faults_active')" = 1 ] || fail "the v1 fault was taken by a v2 request"
sim GET /_sim/stats | jq -e '.v2.requests | .datasets == 6 and .list >= 3 and .poll == 2' >/dev/null || fail "v2 counters: $(sim GET /_sim/stats | jq -c .v2.requests)"
sim POST /_sim/reset '' >/dev/null
sim GET /_sim/stats | jq -e '.v2.requests | .datasets == 0 and .list == 0' >/dev/null || fail "reset"
ok "faults aimed at datasets, v2 and v2_list hit only those; counters and reset"

r=$(sim POST /_sim/batches '{"id":"x","timeline":[{"status":"done","at":0}]}'); jq -e '.message | test("BATCH_STATUS_")' <<<"$r" >/dev/null || fail "bad step: $r"
r=$(sim POST /_sim/batches '{"id":"a/b"}'); jq -e '.message | test("needs \"id\"")' <<<"$r" >/dev/null || fail "bad id: $r"
ok "bad batch specs are refused with a message"
