/*
 * OpenAI Batch API. The shapes follow openai-node src/resources/batches.ts
 * (Batch, BatchRequestCounts) and the list's CursorPage
 * (src/core/pagination.ts: {data, has_more}, the next page "after" the last
 * item's id, which the list object's last_id repeats).
 */
#include "provider_int.h"

#include <errno.h>

/* Batch.status; expired: the batch did not finish within its completion_window. */
static const struct prov_word words[] = {
	{ "validating", JOB_PROCESSING, false },
	{ "in_progress", JOB_PROCESSING, false },
	{ "finalizing", JOB_PROCESSING, false },
	{ "completed", JOB_COMPLETE, false },
	{ "failed", JOB_FAILED, false },
	{ "expired", JOB_FAILED, true },
	{ "cancelling", JOB_CANCELLING, false },
	{ "cancelled", JOB_CANCELLED, false },
};

static enum job_status openai_status(const char *word, bool *ret_expired)
{
	return prov_word_status(words, ARRAY_SIZE(words), word, ret_expired);
}

static int openai_item(json_object *o, struct prov_obs *ret, char *err, size_t errlen)
{
	if (prov_id(o, "id", &ret->id, err, errlen) < 0)
		return -EINVAL;
	ret->status_raw = prov_strdup(o, "status");
	ret->status = openai_status(ret->status_raw, &ret->provider_expired);
	/* request_counts.completed counts the requests that succeeded. */
	json_object *rc = prov_obj(o, "request_counts");
	ret->records.total = prov_count(rc, "total");
	ret->records.succeeded = prov_count(rc, "completed");
	ret->records.failed = prov_count(rc, "failed");
	ret->output.file_id = prov_strdup(o, "output_file_id");
	ret->output.error_file_id = prov_strdup(o, "error_file_id");
	ret->created_at = prov_time(o, "created_at");
	ret->expires_at = prov_time(o, "expires_at");
	return 0;
}

const struct provider_ops provider_openai_ops = {
	.provider = PROV_OPENAI,
	.default_base = "https://api.openai.com",
	/*
	 * OpenAI publishes no limit of its own for the batch management
	 * endpoints (platform.openai.com/docs/guides/rate-limits lists model
	 * limits; the lowest paid tier allows 500 requests a minute): 60 a
	 * minute stays far below it.
	 */
	.rate_per_min = 60,
	.page_max = 100,            /* CursorPageParams.limit: 1 to 100 */
	.newest_first = true,       /* "List your organization's batches", newest first */
	.job_path = "/v1/batches/",
	.cancel_suffix = "/cancel",
	.list_path = "/v1/batches",
	.size_param = "limit",
	.cursor_param = "after",
	.auth_header = "Authorization",
	.auth_prefix = "Bearer ",
	.list = { .items = "data", .cursor = "last_id", .more = "has_more" },
	.status = openai_status,
	.item = openai_item,
};
