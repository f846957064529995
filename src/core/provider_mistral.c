/*
 * Mistral batch jobs. The shapes follow mistralai/client-python
 * src/mistralai/models/batchjobout.py (BatchJobOut), batchjobsout.py
 * (BatchJobsOut: {total, data}), client-ts batchjobstatus.ts (BatchJobStatus)
 * and jobs_api_routes_batch_get_batch_jobsop.py (page from 0, page_size,
 * order_by "-created": newest first).
 */
#include "provider_int.h"

#include <errno.h>

/* BatchJobStatus; TIMEOUT_EXCEEDED: the job ran past its timeout_hours, the provider's expiry. */
static const struct prov_word words[] = {
	{ "QUEUED", JOB_PROCESSING, false },
	{ "RUNNING", JOB_PROCESSING, false },
	{ "SUCCESS", JOB_COMPLETE, false },
	{ "FAILED", JOB_FAILED, false },
	{ "TIMEOUT_EXCEEDED", JOB_FAILED, true },
	{ "CANCELLATION_REQUESTED", JOB_CANCELLING, false },
	{ "CANCELLED", JOB_CANCELLED, false },
};

static enum job_status mistral_status(const char *word, bool *ret_expired)
{
	return prov_word_status(words, ARRAY_SIZE(words), word, ret_expired);
}

static int mistral_item(json_object *o, struct prov_obs *ret, char *err, size_t errlen)
{
	if (prov_id(o, "id", &ret->id, err, errlen) < 0)
		return -EINVAL;
	ret->status_raw = prov_strdup(o, "status");
	ret->status = mistral_status(ret->status_raw, &ret->provider_expired);
	ret->records.total = prov_count(o, "total_requests");
	ret->records.succeeded = prov_count(o, "succeeded_requests");
	ret->records.failed = prov_count(o, "failed_requests");
	ret->output.file_id = prov_strdup(o, "output_file");
	ret->output.error_file_id = prov_strdup(o, "error_file");
	ret->output.inlined = prov_present(o, "outputs");
	ret->created_at = prov_time(o, "created_at");
	return 0;
}

const struct provider_ops provider_mistral_ops = {
	.provider = PROV_MISTRAL,
	.default_base = "https://api.mistral.ai",
	/*
	 * docs.mistral.ai/deployment/ai-studios/tier: limits are per workspace
	 * in requests per second, the free tier's 1 a second: that, for get,
	 * list and cancel together.
	 */
	.rate_per_min = 60,
	.page_max = 100,            /* the SDK's default page_size; no documented maximum */
	.newest_first = true,       /* order_by=-created */
	.job_path = "/v1/batch/jobs/",
	.cancel_suffix = "/cancel",
	.list_path = "/v1/batch/jobs?order_by=-created",
	.size_param = "page_size",
	.cursor_param = "page",     /* numbered from 0 */
	.auth_header = "Authorization",
	.auth_prefix = "Bearer ",
	.list = { .items = "data", .total = "total" },
	.status = mistral_status,
	.item = mistral_item,
};
