/*
 * Cohere v2 Batches through api_v2.c (api/batches-datasets.openapi.yaml):
 * its URLs, status mapping and parsers, the api_obs turned into the
 * normalized observation. The v1 embed jobs stay with api.c.
 */
#include "provider_int.h"

#include <errno.h>

#include "api_v2.h"

/* Cohere has no expiry of its own: a batch it gives up on is FAILED. */
static enum job_status cohere_status(const char *word, bool *ret_expired)
{
	if (ret_expired)
		*ret_expired = false;
	return api_v2_status(word);
}

/* api_v2 reads the Batch; its strings move over, its counts do not (0 there when absent, unknown here). */
static int cohere_item(json_object *o, struct prov_obs *ret, char *err, size_t errlen)
{
	struct api_obs a;
	int64_t ms;

	if (api_batch_from_json(o, &a, err, errlen) < 0)
		return -EINVAL;
	ret->id = a.job.job_id;
	a.job.job_id = NULL;
	ret->status_raw = a.job.status_raw;
	a.job.status_raw = NULL;
	ret->status = a.job.status;
	ret->output.file_id = a.job.output_dataset_id;
	a.job.output_dataset_id = NULL;
	if (a.job.created_at && util_parse_rfc3339(a.job.created_at, &ms) == 0)
		ret->created_at = ms / 1000;
	api_obs_clear(&a);
	ret->records.total = prov_count(o, "num_records");
	ret->records.succeeded = prov_count(o, "num_successful_records");
	ret->records.failed = prov_count(o, "num_failed_records");
	return 0;
}

const struct provider_ops provider_cohere_ops = {
	.provider = PROV_COHERE,
	.default_base = "https://api.cohere.com",
	.rate_per_min = 400,        /* the daemon's default_rate (config_keys.c), under Cohere's 500/min of trial keys */
	.page_max = API_V2_PAGE_MAX,
	.newest_first = false,      /* listBatches is ordered by updated_at: no cut-off by creation */
	.job_path = "/v2/batches/",
	.cancel_suffix = ":cancel",
	.list_path = "/v2/batches?order_by=updated_at",
	.size_param = "page_size",
	.cursor_param = "page_token",
	.auth_header = "Authorization",
	.auth_prefix = "Bearer ",
	.wrap = "batch",            /* getBatch answers {"batch": Batch}; the Batch is the document kept */
	.list = { .items = "batches", .cursor = "next_page_token" },
	.status = cohere_status,
	.item = cohere_item,
};
