/*
 * Anthropic Message Batches. The shapes follow anthropic-sdk-typescript
 * src/resources/messages/batches.ts (MessageBatch, MessageBatchRequestCounts)
 * and its Page (src/pagination.ts: {data, has_more, first_id, last_id}, the
 * next, older page after_id = last_id; the list is newest first).
 */
#include "provider_int.h"

#include <errno.h>

/* MessageBatch.processing_status; "ended" is refined by the counts (ended_status). */
static const struct prov_word words[] = {
	{ "in_progress", JOB_PROCESSING, false },
	{ "canceling", JOB_CANCELLING, false },
	{ "ended", JOB_COMPLETE, false },
};

static enum job_status anthropic_status(const char *word, bool *ret_expired)
{
	return prov_word_status(words, ARRAY_SIZE(words), word, ret_expired);
}

/*
 * "ended" says only that no request is processing. What it means, in this
 * order: cancelled when a cancel was initiated; failed when every request
 * errored; the provider's expiry when unfinished requests expired (24 hours
 * after creation); else complete, its errored requests in records.failed.
 */
static void ended_status(json_object *o, int64_t errored, int64_t expired, struct prov_obs *ret)
{
	if (prov_str(o, "cancel_initiated_at")) {
		ret->status = JOB_CANCELLED;
		ret->mapping = "ended after a cancel was initiated: cancelled";
	} else if (ret->records.total > 0 && errored == ret->records.total) {
		ret->status = JOB_FAILED;
		ret->mapping = "ended with every request errored: failed";
	} else if (expired > 0) {
		ret->status = JOB_FAILED;
		ret->provider_expired = true;
		ret->mapping = "ended with unfinished requests expired: expired at the provider";
	} else {
		ret->status = JOB_COMPLETE;
		ret->mapping = "ended, no cancel, not every request errored, none expired: complete";
	}
}

static int anthropic_item(json_object *o, struct prov_obs *ret, char *err, size_t errlen)
{
	static const char *const parts[] = { "processing", "succeeded", "errored", "canceled", "expired" };
	int64_t n[ARRAY_SIZE(parts)];

	if (prov_id(o, "id", &ret->id, err, errlen) < 0)
		return -EINVAL;
	ret->status_raw = prov_strdup(o, "processing_status");
	ret->status = anthropic_status(ret->status_raw, &ret->provider_expired);
	/* The counts always sum to the batch's requests: the total is their sum, when all are there. */
	json_object *rc = prov_obj(o, "request_counts");
	int64_t total = 0;
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		n[i] = prov_count(rc, parts[i]);
		total = n[i] == PROV_UNKNOWN || total == PROV_UNKNOWN ? PROV_UNKNOWN : total + n[i];
	}
	ret->records.total = total;
	ret->records.succeeded = n[1];
	ret->records.failed = n[2];
	if (ret->status == JOB_COMPLETE)
		ended_status(o, n[2], n[4], ret);
	ret->output.results_url = prov_strdup(o, "results_url");
	ret->created_at = prov_time(o, "created_at");
	ret->expires_at = prov_time(o, "expires_at");
	return 0;
}

const struct provider_ops provider_anthropic_ops = {
	.provider = PROV_ANTHROPIC,
	.default_base = "https://api.anthropic.com",
	/*
	 * docs.anthropic.com/en/api/rate-limits, "Message Batches API": tier 1
	 * allows 50 requests a minute to all the batch endpoints together (and
	 * may enforce them per second): the whole of the lowest tier.
	 */
	.rate_per_min = 50,
	.page_max = 1000,           /* PageParams.limit: 1 to 1000, default 20 */
	.newest_first = true,       /* "Most recently created batches are returned first" */
	.job_path = "/v1/messages/batches/",
	.cancel_suffix = "/cancel",
	.list_path = "/v1/messages/batches",
	.size_param = "limit",
	.cursor_param = "after_id",
	.auth_header = "x-api-key",
	.auth_prefix = "",
	.extra_header = "anthropic-version: 2023-06-01",     /* the API version these shapes are of */
	.list = { .items = "data", .cursor = "last_id", .more = "has_more" },
	.status = anthropic_status,
	.item = anthropic_item,
};
