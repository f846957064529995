/*
 * Gemini Batch API (the Developer API, v1beta). batches.get answers an
 * Operation {name, metadata, done, error, response} whose metadata is a
 * GenerateContentBatch (ai.google.dev/api/batch-api: state as a BatchState
 * BATCH_STATE_*, batchStats with int64 counts as JSON strings, createTime,
 * output {responsesFile | inlinedResponses}); batches.list answers
 * {operations, nextPageToken}. Field paths as googleapis/js-genai
 * src/converters/_batches_converters.ts reads them (batchJobFromMldev,
 * listBatchJobsResponseFromMldev); the SDK's own JobState (JOB_STATE_*,
 * src/types.ts) is accepted too.
 */
#include "provider_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct prov_word words[] = {
	/* BatchState, as the REST API returns it. */
	{ "BATCH_STATE_PENDING", JOB_PROCESSING, false },
	{ "BATCH_STATE_RUNNING", JOB_PROCESSING, false },
	{ "BATCH_STATE_SUCCEEDED", JOB_COMPLETE, false },
	{ "BATCH_STATE_FAILED", JOB_FAILED, false },
	{ "BATCH_STATE_CANCELLED", JOB_CANCELLED, false },
	{ "BATCH_STATE_EXPIRED", JOB_FAILED, true },
	/* JobState, the SDK's names for the same states (and Vertex AI's others). */
	{ "JOB_STATE_QUEUED", JOB_PROCESSING, false },
	{ "JOB_STATE_PENDING", JOB_PROCESSING, false },
	{ "JOB_STATE_RUNNING", JOB_PROCESSING, false },
	{ "JOB_STATE_UPDATING", JOB_PROCESSING, false },
	{ "JOB_STATE_PAUSED", JOB_PROCESSING, false },      /* stopped, may resume: not ended */
	{ "JOB_STATE_SUCCEEDED", JOB_COMPLETE, false },
	{ "JOB_STATE_PARTIALLY_SUCCEEDED", JOB_COMPLETE, false },
	{ "JOB_STATE_FAILED", JOB_FAILED, false },
	{ "JOB_STATE_CANCELLING", JOB_CANCELLING, false },
	{ "JOB_STATE_CANCELLED", JOB_CANCELLED, false },
	{ "JOB_STATE_EXPIRED", JOB_FAILED, true },
	/* BATCH_STATE_UNSPECIFIED, JOB_STATE_UNSPECIFIED: unknown, keep watching. */
};

static enum job_status gemini_status(const char *word, bool *ret_expired)
{
	return prov_word_status(words, ARRAY_SIZE(words), word, ret_expired);
}

/*
 * A finished Operation whose state does not say it ended: its error decides
 * (code 1 is google.rpc.Code CANCELLED), else a response without a state
 * says it completed.
 */
static void done_status(json_object *o, struct prov_obs *ret)
{
	json_object *error = prov_obj(o, "error");
	if (error && prov_count(error, "code") == 1) {
		ret->status = JOB_CANCELLED;
		ret->mapping = "operation done with error code 1 (CANCELLED): cancelled";
	} else if (error) {
		ret->status = JOB_FAILED;
		ret->mapping = "operation done with an error: failed";
	} else if (ret->status == JOB_UNKNOWN && prov_obj(o, "response")) {
		ret->status = JOB_COMPLETE;
		ret->mapping = "operation done with a response and no state: complete";
	}
}

static int gemini_item(json_object *o, struct prov_obs *ret, char *err, size_t errlen)
{
	char *name = NULL;

	if (prov_id(o, "name", &name, err, errlen) < 0)
		return -EINVAL;
	/* The bare id of "batches/ID": what the daemon watches, and what provider_job_url takes too. */
	size_t n = strlen(provider_gemini_ops.id_prefix);
	ret->id = name && strncmp(name, provider_gemini_ops.id_prefix, n) == 0 ? xstrdup(name + n) : name;
	if (ret->id != name)
		free(name);
	json_object *meta = prov_obj(o, "metadata");
	ret->status_raw = prov_strdup(meta, "state");
	ret->status = gemini_status(ret->status_raw, &ret->provider_expired);
	if (prov_bool(o, "done") && !job_status_ended(ret->status))
		done_status(o, ret);
	json_object *st = prov_obj(meta, "batchStats");
	ret->records.total = prov_count(st, "requestCount");
	ret->records.succeeded = prov_count(st, "successfulRequestCount");
	ret->records.failed = prov_count(st, "failedRequestCount");
	/* proto3 JSON leaves a count of 0 out: with the total said, an absent count is 0, not unknown. */
	if (ret->records.total != PROV_UNKNOWN) {
		if (ret->records.succeeded == PROV_UNKNOWN && !json_object_object_get_ex(st, "successfulRequestCount", NULL))
			ret->records.succeeded = 0;
		if (ret->records.failed == PROV_UNKNOWN && !json_object_object_get_ex(st, "failedRequestCount", NULL))
			ret->records.failed = 0;
	}
	/* The output is in the metadata; a finished Operation may repeat it as its response. */
	json_object *out = prov_obj(meta, "output");
	if (!out)
		out = prov_obj(o, "response");
	ret->output.file_id = prov_strdup(out, "responsesFile");
	ret->output.inlined = prov_present(out, "inlinedResponses");
	ret->created_at = prov_time(meta, "createTime");
	return 0;
}

const struct provider_ops provider_gemini_ops = {
	.provider = PROV_GEMINI,
	.default_base = "https://generativelanguage.googleapis.com",
	/*
	 * ai.google.dev/gemini-api/docs/rate-limits gives the Batch API limits
	 * on concurrent batches and enqueued tokens, none on get, list or
	 * cancel: one a second stays under every tier's request limits.
	 */
	.rate_per_min = 60,
	.page_max = 100,            /* no documented maximum; a smaller page comes with a token */
	.newest_first = false,      /* no documented order: a sweep reads every page */
	.job_path = "/v1beta/batches/",
	.cancel_suffix = ":cancel",
	.list_path = "/v1beta/batches",
	.size_param = "pageSize",
	.cursor_param = "pageToken",
	.id_prefix = "batches/",
	.auth_header = "x-goog-api-key",
	.auth_prefix = "",
	.list = { .items = "operations", .cursor = "nextPageToken" },
	.status = gemini_status,
	.item = gemini_item,
};
