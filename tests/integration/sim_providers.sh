#!/usr/bin/env bash
# requires: none
# The simulator's OpenAI, Anthropic, Gemini and Mistral batch APIs, on the
# manual clock: for each, the batch object along its timeline, cancel, the
# whole list over pages of 2 in its paging, its auth answers and error shapes,
# a 429 fault in its shape with Retry-After, the request log and the counters;
# the Cohere routes beside them. Then the official SDKs parse the same answers
# (tests/sdk/check.mjs), when scripts/install-sdks has installed them.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim --clock manual --provider-history 5 --cancel-delay 1s

# One row a provider: its collection path, cancel suffix, page-size parameter,
# status words (new, running, ended, while cancelling, cancelled), and jq
# programs reading its shapes.
PROVIDERS=(openai anthropic gemini mistral)
declare -A PATH_OF=([openai]=/v1/batches [anthropic]=/v1/messages/batches [gemini]=/v1beta/batches [mistral]=/v1/batch/jobs)
declare -A CANCEL=([openai]=/cancel [anthropic]=/cancel [gemini]=:cancel [mistral]=/cancel)
declare -A SIZE=([openai]=limit [anthropic]=limit [gemini]=pageSize [mistral]=page_size)
declare -A WORDS=(
	[openai]="validating in_progress completed cancelling cancelled"
	[anthropic]="in_progress in_progress ended canceling ended"
	[gemini]="BATCH_STATE_PENDING BATCH_STATE_RUNNING BATCH_STATE_SUCCEEDED BATCH_STATE_RUNNING BATCH_STATE_CANCELLED"
	[mistral]="QUEUED RUNNING SUCCESS CANCELLATION_REQUESTED CANCELLED")
# A batch as "status total succeeded failed output".
declare -A VIEW=(
	[openai]='"\(.status) \(.request_counts.total) \(.request_counts.completed) \(.request_counts.failed) \(.output_file_id)"'
	[anthropic]='"\(.processing_status) \(.request_counts | add) \(.request_counts.succeeded) \(.request_counts.errored) \(.results_url != null)"'
	[gemini]='.metadata as $m | $m.batchStats as $s | "\($m.state) \($s.requestCount) \($s.successfulRequestCount // 0) \($s.failedRequestCount // 0) \($m.output.responsesFile)"'
	[mistral]='"\(.status) \(.total_requests) \(.succeeded_requests) \(.failed_requests) \(.output_file)"')
# A list page's ids, and the query of the next page (none after the last); $page is the page's number.
declare -A ITEMS=([openai]='.data[].id' [anthropic]='.data[].id' [gemini]='.operations[].name | sub("^batches/"; "")'
	[mistral]='.data[].id')
declare -A NEXT=(
	[openai]='select(.has_more) | "after=\(.last_id)"'
	[anthropic]='select(.has_more) | "after_id=\(.last_id)"'
	[gemini]='.nextPageToken // empty | "pageToken=\(.)"'
	[mistral]='select(($page + 1) * 2 < .total) | "page=\($page + 1)"')
# An error body of the provider with that status.
declare -A ERROR=(
	[openai]='.error | has("message") and has("type") and has("param") and has("code")'
	[anthropic]='.type == "error" and (.error | has("type") and has("message"))'
	[gemini]='.error | .code == $status and has("message") and has("status")'
	[mistral]='(.object == "error" and has("message") and has("type")) or ($status == 401 and has("message") and has("request_id"))')
declare -A ERROR_TYPE=(  # the type word of a 404, a 401 and a 429
	[openai]='.error.type + " " + (.error.code // "-")'
	[anthropic]='.error.type'
	[gemini]='.error.status'
	[mistral]='.type // "-"')
declare -A TYPES_404_401_429=(
	[openai]="invalid_request_error -|invalid_request_error invalid_api_key|requests rate_limit_exceeded"
	[anthropic]="not_found_error|authentication_error|rate_limit_error"
	[gemini]="NOT_FOUND|UNAUTHENTICATED|RESOURCE_EXHAUSTED"
	[mistral]="invalid_request_error|-|requests")

# papi PROVIDER PATH [KEY [CURL ARGS...]]: prints "STATUS BODY"; KEY defaults to the right one, "-" for none.
papi() {
	local p=$1 path=$2 key=${3:-$TOKEN}
	[ "$key" = - ] && key=
	shift $(( $# < 3 ? $# : 3 ))
	local -a auth=()
	case $p in
	openai|mistral) [ -z "$key" ] || auth=(-H "Authorization: Bearer $key") ;;
	anthropic) [ -z "$key" ] || auth=(-H "x-api-key: $key"); auth+=(-H "anthropic-version: 2023-06-01") ;;
	gemini) [ -z "$key" ] || auth=(-H "x-goog-api-key: $key") ;;
	esac
	curl -sS -o "$T/p.body" -D "$T/p.head" -w '%{http_code}' "${auth[@]}" "$@" "$SIM_URL${PATH_OF[$p]}$path" >"$T/p.code" || true
	# The files read by bash (a cat is a process); the body without its trailing newlines, as $(cat) gave it.
	local status="" answer=""
	read -r status <"$T/p.code" || true
	[ ! -e "$T/p.body" ] || IFS= read -r -d '' answer <"$T/p.body" || true
	while [[ $answer == *$'\n' ]]; do answer=${answer%$'\n'}; done
	printf '%s %s' "$status" "$answer"
}
body() { printf '%s' "${1#* }"; }
code() { printf '%s' "${1%% *}"; }
view() { body "$(papi "$1" "/$2")" | jq -r "${VIEW[$1]}"; }

for p in "${PROVIDERS[@]}"; do
	read -r new running ended cancelling cancelled <<<"${WORDS[$p]}"
	sim POST "/_sim/providers/$p/batches" "{\"batches\":[
	  {\"id\":\"$p-done\",\"timeline\":[{\"status\":\"$new\",\"at\":0},{\"status\":\"$running\",\"at\":1,\"succeeded\":10,\"failed\":1},
	    {\"status\":\"$ended\",\"at\":3,\"failed\":2}]},
	  {\"id\":\"$p-stop\",\"timeline\":[{\"status\":\"$running\",\"at\":0}]},
	  {\"id\":\"$p-run\",\"timeline\":[{\"status\":\"$running\",\"at\":0}]}]}" | jq -e '.created == 3' >/dev/null \
		|| fail "$p: admin add"
	r=$(sim POST "/_sim/providers/$p/batches" '{"id":"x","timeline":[{"status":"nope"}]}')
	jq -e '.message | contains("timeline step")' <<<"$r" >/dev/null || fail "$p: a word not of the provider: $r"
done
sim POST /_sim/providers/nobody/batches '{"id":"x"}' | jq -e '.message | contains("openai")' >/dev/null \
	|| fail "an unknown provider"

# The timeline: the new word at 0; running with its counts at 1 s; ended at 3 s, the rest succeeded, output set.
[ "$(sim_advance 0ms)" = 0 ] || fail "the clock"
for p in "${PROVIDERS[@]}"; do
	read -r new running ended _ <<<"${WORDS[$p]}"
	v=$(view "$p" "$p-done"); [ "${v%% *}" = "$new" ] || fail "$p at 0: $v"
done
sim_advance 1s >/dev/null
for p in "${PROVIDERS[@]}"; do
	read -r new running ended _ <<<"${WORDS[$p]}"
	v=$(view "$p" "$p-done"); [ "$(cut -d' ' -f1-4 <<<"$v")" = "$running 100 10 1" ] || fail "$p at 1 s: $v"
done
sim_advance 2s >/dev/null
declare -A want_out=([openai]=file-out-openai-done [anthropic]=true [gemini]=files/batch-gemini-done [mistral]=out-mistral-done)
for p in "${PROVIDERS[@]}"; do
	read -r new running ended _ <<<"${WORDS[$p]}"
	v=$(view "$p" "$p-done"); [ "$v" = "$ended 100 98 2 ${want_out[$p]}" ] || fail "$p ended: $v"
	[ "$(sim GET "/_sim/providers/$p/batches/$p-done" | jq -r "${VIEW[$p]}")" = "$v" ] || fail "$p: the admin view"
done
r=$(papi gemini /gemini-done); jq -e '.done == true and .response.responsesFile != null and
  .metadata["@type"] == "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
  and (.metadata.batchStats.requestCount | type) == "string"' <<<"$(body "$r")" >/dev/null || fail "gemini Operation: $r"
r=$(papi anthropic /anthropic-done); jq -e --arg u "$SIM_URL" '.results_url == $u + "/v1/messages/batches/anthropic-done/results"
  and .ended_at != null and .request_counts.processing == 0' <<<"$(body "$r")" >/dev/null || fail "anthropic results_url: $r"
r=$(papi openai /openai-done); jq -e '.in_progress_at - .created_at == 1 and .completed_at - .created_at == 3
  and .error_file_id == "file-err-openai-done"' <<<"$(body "$r")" >/dev/null || fail "openai times: $r"
ok "get: each provider's words and counts along the timeline, ended with the rest succeeded and its output"

# Cancel: the cancelling word (Gemini has none: the state stays), cancelled after the delay; an ended batch: 400.
for p in "${PROVIDERS[@]}"; do
	read -r _ running _ cancelling cancelled <<<"${WORDS[$p]}"
	r=$(papi "$p" "/$p-stop${CANCEL[$p]}" "" -X POST); [ "$(code "$r")" = 200 ] || fail "$p cancel: $r"
	[ "$p" != gemini ] || [ "$(body "$r")" = "{}" ] || fail "gemini cancel answers Empty: $r"
	v=$(view "$p" "$p-stop"); [ "${v%% *}" = "$cancelling" ] || fail "$p cancelling: $v"
	r=$(papi "$p" "/$p-done${CANCEL[$p]}" "" -X POST); [ "$(code "$r")" = 400 ] || fail "$p cancel of an ended batch: $r"
done
sim_advance 1s >/dev/null
for p in "${PROVIDERS[@]}"; do
	read -r _ _ _ _ cancelled <<<"${WORDS[$p]}"
	v=$(view "$p" "$p-stop"); [ "${v%% *}" = "$cancelled" ] || fail "$p cancelled: $v"
done
[ "$(view anthropic anthropic-stop | cut -d' ' -f1-2)" = "ended 100" ] || fail "anthropic cancelled counts"
papi anthropic /anthropic-stop | cut -d' ' -f2- | jq -e '.cancel_initiated_at != null and .request_counts.canceled == 100' \
	>/dev/null || fail "anthropic: cancel_initiated_at"
ok "cancel: the cancelling word, the cancelled one after the delay, 400 once ended"

# The list: every batch (3 and the 5 of the history) over pages of 2, newest first, each once.
for p in "${PROVIDERS[@]}"; do
	q="" page=0
	: >"$T/ids"
	while :; do
		r=$(papi "$p" "?${SIZE[$p]}=2${q:+&$q}"); [ "$(code "$r")" = 200 ] || fail "$p list $q: $r"
		body "$r" | jq -r "${ITEMS[$p]}" >>"$T/ids"
		q=$(body "$r" | jq -r --argjson page "$page" "${NEXT[$p]}")
		[ -n "$q" ] || break
		page=$((page + 1))
	done
	[ "$page" = 3 ] && [ "$(sort -u "$T/ids" | wc -l)" = 8 ] && [ "$(wc -l <"$T/ids")" = 8 ] \
		|| fail "$p list: $((page + 1)) pages: $(tr '\n' ' ' <"$T/ids")"
	[ "$(head -1 "$T/ids")" = "$p-stop" ] && [ "$(tail -1 "$T/ids")" = hist-0000000 ] \
		|| fail "$p list order: $(tr '\n' ' ' <"$T/ids")"
done
r=$(papi anthropic "?limit=2&before_id=hist-0000004")
[ "$(body "$r" | jq -rc '[.data[].id, .has_more]')" = '["anthropic-run","anthropic-done",true]' ] \
	|| fail "anthropic before_id: $r"
r=$(papi mistral "?order_by=created&page_size=1"); [ "$(body "$r" | jq -r '.data[0].id')" = hist-0000000 ] \
	|| fail "mistral order_by=created: $r"
for bad in "openai ?limit=101" "openai ?after=nope" "anthropic ?limit=0" "anthropic ?after_id=a&before_id=b" \
	"gemini ?pageToken=nope" "mistral ?order_by=name"; do
	r=$(papi ${bad% *} "${bad#* }"); [[ "$(code "$r")" = 4?? ]] || fail "$bad: $r"
	jq -e --argjson status "$(code "$r")" "${ERROR[${bad% *}]}" <<<"$(body "$r")" >/dev/null || fail "$bad: shape $r"
done
ok "list: each provider's paging over 4 pages of 2, newest first; bad paging answered in its error shape"

# Auth and errors, each in the provider's shape: an unknown id, a wrong key, no key, an injected 429.
declare -A WRONG=([openai]=401 [anthropic]=401 [gemini]=400 [mistral]=401)
declare -A NONE=([openai]=401 [anthropic]=401 [gemini]=403 [mistral]=401)
for p in "${PROVIDERS[@]}"; do
	IFS='|' read -r t404 t401 t429 <<<"${TYPES_404_401_429[$p]}"
	sim POST /_sim/faults "{\"kind\":\"status\",\"status\":429,\"retry_after\":\"7\",\"target\":\"$p\",\"count\":1}" >/dev/null
	sim POST /_sim/faults "{\"kind\":\"status\",\"status\":401,\"target\":\"${p}_list\",\"count\":1}" >/dev/null
	for row in "/$p-run 429 $t429" "/nope 404 $t404" "?x=1 401 $t401"; do
		read -r path status type <<<"$row"
		r=$(papi "$p" "$path"); [ "$(code "$r")" = "$status" ] || fail "$p $path: want $status: $r"
		jq -e --argjson status "$status" "${ERROR[$p]}" <<<"$(body "$r")" >/dev/null || fail "$p $status shape: $r"
		[ "$(body "$r" | jq -r "${ERROR_TYPE[$p]}")" = "$type" ] || fail "$p $status type: $r"
		[ "$status" != 429 ] || grep -qi '^retry-after: 7' "$T/p.head" || fail "$p 429 without Retry-After"
	done
	r=$(papi "$p" "/$p-run" wrong); [ "$(code "$r")" = "${WRONG[$p]}" ] || fail "$p wrong key: $r"
	jq -e --argjson status "${WRONG[$p]}" "${ERROR[$p]}" <<<"$(body "$r")" >/dev/null || fail "$p wrong key shape: $r"
	r=$(papi "$p" "/$p-run" -); [ "$(code "$r")" = "${NONE[$p]}" ] || fail "$p no key: $r"
	r=$(papi "$p" "/$p-run/nothing"); [ "$(code "$r")" = 404 ] || fail "$p unknown endpoint: $r"
done
sim POST /_sim/faults '{"kind":"status","status":503,"retry_after":"9","target":"providers","count":1}' >/dev/null
r=$(papi mistral /mistral-run); [ "$(code "$r")" = 503 ] && grep -qi '^retry-after: 9' "$T/p.head" || fail "Retry-After: $r"
r=$(papi gemini "/gemini-run?key=$TOKEN" -); [ "$(code "$r")" = 200 ] || fail "gemini ?key=: $r"
r=$(papi anthropic /anthropic-run - -H "Authorization: Bearer $TOKEN"); [ "$(code "$r")" = 200 ] || fail "anthropic Bearer: $r"
r=$(curl -sS -H "x-api-key: $TOKEN" "$SIM_URL/v1/messages/batches/anthropic-run")
jq -e '.error.type == "invalid_request_error" and (.error.message | contains("anthropic-version"))' <<<"$r" >/dev/null \
	|| fail "no anthropic-version: $r"
ok "errors: 404, 401 (Gemini: a wrong key 400 API_KEY_INVALID, none 403), injected 429 and 503 with Retry-After, each in its shape"

# The request log names each provider's endpoints; the counters count them; the Cohere routes still answer.
log=$(sim GET /_sim/log)
for p in "${PROVIDERS[@]}"; do
	for op in get list cancel; do
		jq -e --arg e "${p}_$op" '[.entries[] | select(.[3] == $e)] | length > 0' <<<"$log" >/dev/null || fail "log: ${p}_$op"
	done
done
jq -e '[.entries[] | select(.[3] == "openai_cancel" and .[2] == "openai-stop" and .[1] == 200)] | length == 1' <<<"$log" \
	>/dev/null || fail "log: the openai cancel"
sim GET /_sim/stats | jq -e '.providers | (.openai.requests.cancel == 2 and .gemini.history == 5 and
  .mistral.batches_known == 3 and .anthropic.batches["anthropic-stop"].cancel_requested)' >/dev/null \
	|| fail "stats: $(sim GET /_sim/stats | jq -c .providers)"
[ "$(code "$(api /v1/embed-jobs)")" = 200 ] && [ "$(code "$(api /v2/batches)")" = 200 ] || fail "the Cohere routes"
sim POST /_sim/reset >/dev/null
[ "$(sim GET /_sim/stats | jq '.providers.openai.requests.get')" = 0 ] || fail "reset"
ok "the request log and /_sim/stats per provider; /v1/embed-jobs and /v2/batches beside them"

# The official SDKs against the same simulator (node >= 20 and scripts/install-sdks).
sdk="$top_srcdir/tests/sdk"
if [ ! -d "$sdk/node_modules" ]; then
	echo "# SKIP sdk: tests/sdk/node_modules missing (scripts/install-sdks)"
elif ! command -v node >/dev/null 2>&1; then
	echo "# SKIP sdk: no node (scripts/install-sdks)"
else
	node "$sdk/check.mjs" "$SIM_URL" "$TOKEN" >"$T/sdk.tap" 2>&1 || { cat "$T/sdk.tap" >&2; fail "the SDK check"; }
	sed 's/^/  /' "$T/sdk.tap"
	if grep -q '^1\.\.0 # SKIP' "$T/sdk.tap"; then
		echo "# SKIP sdk: $(sed -n 's/^1\.\.0 # SKIP //p' "$T/sdk.tap")"
	else
		ok "sdk: $(tail -1 "$T/sdk.tap" | sed 's/^# //') (openai, @anthropic-ai/sdk, @google/genai, @mistralai/mistralai)"
	fi
fi
