/*
 * What watch keeps beside the job table, whose records stay small and
 * kind-blind: each v2 batch job's records (num_records, successful, failed)
 * and the last progress step announced, the counts of batch jobs by status
 * (the rest of the table is embed jobs), and the completion observations held
 * until their output dataset is fetched. Owned by watch; everyone else reads
 * it through these functions. Keeps the batch-job gauges of struct metrics.
 */
#ifndef EW_WATCH_V2_H
#define EW_WATCH_V2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "job.h"
#include "metrics.h"

struct watch_v2;

/* One batch job's records as its last observation gave them. */
struct watch_records {
	bool known;
	int64_t total, successful, failed;
	int step;                   /* the last progress_every step announced (percent), 0: none */
};

/* A new, empty register keeping m's batch-job gauges. */
struct watch_v2 *watch_v2_new(struct metrics *m);
/* Frees it. Accepts NULL. */
void watch_v2_free(struct watch_v2 *v);

/* Registers batch job id (not yet registered) with status st. Returns its records. */
struct watch_records *watch_v2_add(struct watch_v2 *v, const char *id, enum job_status st);
/* Its records, or NULL when id is no registered batch job. */
struct watch_records *watch_v2_get(struct watch_v2 *v, const char *id);
/* Forgets id, which had status st. */
void watch_v2_remove(struct watch_v2 *v, const char *id, enum job_status st);
/* Registered batch job id went from status old to new. */
void watch_v2_status(struct watch_v2 *v, const char *id, enum job_status old, enum job_status new);
/* Takes the records of an observation (when it has any). Returns true when they changed. */
bool watch_v2_records(struct watch_v2 *v, struct watch_records *r, const struct api_job *aj);

/* Batch jobs per status (JOB__MAX entries); the table's counts minus these are the embed jobs. */
const size_t *watch_v2_counts(const struct watch_v2 *v);
/* Batch jobs not ended, of every provider. */
size_t watch_v2_live(const struct watch_v2 *v);
/* Cohere's v2 batch jobs (not the other providers') of status st, and those not ended: the v2 sweep's. */
size_t watch_v2_cohere(const struct watch_v2 *v, enum job_status st);
size_t watch_v2_cohere_live(const struct watch_v2 *v);

/*
 * A completion observation of either kind, held (not yet a transition) until
 * GET /v1/datasets/{dataset_id} answers or is given up on, so that the event
 * is recorded with the dataset in it, in one turn with its delivery rows.
 * Watch creates and ends a hold (watch_dataset_result); the fetch part is the
 * poller's bookkeeping (datasets.c), which watch never reads.
 */
struct watch_hold {
	char *job_id;
	char *dataset_id;
	char *doc;                  /* the observed document (EmbedJob, or Batch) */
	size_t doc_len;
	uint8_t kind;               /* enum job_kind */
	bool via_list;
	int64_t seen_before_ms;     /* the answer before it, which showed the job running (detection lag) */
	uint64_t deadline;          /* loop ms: given up on then (dataset_timeout after the observation) */
	struct {
		unsigned tries;
		uint64_t next_try;      /* loop ms */
		bool in_flight;
		char last_error[200];   /* never a URL from the answer */
	} fetch;
};
/* Holds a copy of the observation; the job must not be held already. Returns the hold. */
struct watch_hold *watch_v2_hold(struct watch_v2 *v, const char *job_id, enum job_kind k, const char *dataset_id,
				 const char *doc, size_t doc_len, bool via_list, uint64_t deadline);
/* The hold of job_id, or NULL. */
struct watch_hold *watch_v2_held(struct watch_v2 *v, const char *job_id);
/* How many holds there are, and the i-th (in the order they were made; indices shift when one ends). */
size_t watch_v2_hold_count(const struct watch_v2 *v);
struct watch_hold *watch_v2_hold_at(struct watch_v2 *v, size_t i);
/* Ends job_id's hold (if any) and frees it. */
void watch_v2_unhold(struct watch_v2 *v, const char *job_id);

#endif
