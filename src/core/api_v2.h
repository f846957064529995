/*
 * The Cohere v2 Batches and v1 Datasets contract (api/batches-datasets.openapi.yaml),
 * and the kind dispatch: for a job of kind k, the URL of its poll and of its
 * cancel, the parser of its answer and its status mapping. Pure (json-c only).
 * Every field of a Batch or a Dataset may be absent; unknown fields are kept
 * in the document, never rejected.
 */
#ifndef EW_API_V2_H
#define EW_API_V2_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "job.h"

/* The largest page listBatches serves (larger sizes are coerced to it). */
#define API_V2_PAGE_MAX 1000

/*
 * One observed document of either kind. job is the kind-blind view the rest
 * of the daemon reads (for a Batch: job_id = id, the status mapped, records);
 * doc is the document to keep and put in events (NULL for v1, whose answer
 * body itself is the document). Strings are owned; api_obs_clear() frees them.
 */
struct api_obs {
	struct api_job job;
	char *updated_at;           /* a Batch's updated_at, or NULL */
	char *doc;
	size_t doc_len;
};

/* The project's status for a BatchStatus: QUEUED, IN_PROGRESS -> processing, CANCELING -> cancelling,
 * COMPLETED -> complete, FAILED -> failed, CANCELED -> cancelled; UNSPECIFIED and anything else -> unknown. */
enum job_status api_v2_status(const char *s);

/* "{base}/v2/batches/{id}", or with cancel "{base}/v2/batches/{id}:cancel". 0, -EINVAL (bad id), -ENOSPC. */
int api_batch_url(const char *base, const char *id, bool cancel, char *buf, size_t len);
/* "{base}/v2/batches?order_by=updated_at&page_size=N[&page_token=T]", T percent-encoded. 0, -EINVAL, -ENOSPC. */
int api_batches_url(const char *base, unsigned page_size, const char *page_token, char *buf, size_t len);
/* "{base}/v1/datasets/{id}". 0, -EINVAL (bad id), -ENOSPC. */
int api_dataset_url(const char *base, const char *id, char *buf, size_t len);

/* A count member: an integer, an integral number or a string of digits, >= 0. False when absent, null or none of those. */
bool api_json_count(json_object *o, const char *key, int64_t *ret);

/*
 * A Batch object (borrowed) into ret. -EINVAL with err when it is not an
 * object, or id, name or status is there but not a string. Absent id: job_id
 * NULL; absent status: JOB_UNKNOWN. Counts may be numbers or strings of digits.
 */
int api_batch_from_json(json_object *o, struct api_obs *ret, char *err, size_t errlen);
/* A bare Batch document: a list element, or a document the daemon kept. */
int api_batch_parse(const char *body, size_t len, struct api_obs *ret, char *err, size_t errlen);
/* A getBatch answer: {"batch": Batch}. */
int api_batch_answer_parse(const char *body, size_t len, struct api_obs *ret, char *err, size_t errlen);
/* Frees what an api_obs holds (of either kind); accepts a zeroed one. */
void api_obs_clear(struct api_obs *o);

/* One page of listBatches. */
struct api_batch_page {
	json_object *root;              /* the parsed answer, owned */
	json_object *batches;           /* its array, borrowed from root */
	size_t n;
	const char *next_page_token;    /* borrowed from root; NULL (or "") on the last page */
};
/* {"batches": [...], "next_page_token": "..."}: -EINVAL with err when it is not that shape. */
int api_batch_page_parse(const char *body, size_t len, struct api_batch_page *ret, char *err, size_t errlen);
void api_batch_page_clear(struct api_batch_page *p);

/* A getDataset answer: the dataset object for the event, and a summary without any URL, for logs. */
struct api_dataset {
	json_object *dataset;           /* owned */
	size_t n_parts;
	int64_t size_bytes, num_rows;   /* sums over the parts that say */
};
/*
 * {"dataset": Dataset}. want_id: the id asked for; a document naming another
 * id is refused. -EINVAL with err, which never quotes a value of the document
 * (part URLs are signed links: secrets).
 */
int api_dataset_parse(const char *body, size_t len, const char *want_id, struct api_dataset *ret,
		      char *err, size_t errlen);
void api_dataset_clear(struct api_dataset *d);

/* How far a job's records are, in percent (0..100), from num_successful + num_failed of num_records; -1 unknown. */
int api_records_percent(const struct api_job *aj);

/* ---- the kind dispatch ---- */
/* The per-id URL of a job of kind k (cancel: the URL that cancels it). */
int api_kind_url(enum job_kind k, const char *base, const char *id, bool cancel, char *buf, size_t len);
/* A per-id answer of kind k: v1 an EmbedJob, v2 {"batch": Batch}. ret->doc is NULL for v1. */
int api_kind_parse_answer(enum job_kind k, const char *body, size_t len, struct api_obs *ret, char *err, size_t errlen);
/* A kept document of kind k: v1 an EmbedJob, v2 a bare Batch. */
int api_kind_parse_doc(enum job_kind k, const char *doc, size_t len, struct api_obs *ret, char *err, size_t errlen);

#endif
