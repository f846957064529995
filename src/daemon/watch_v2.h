/*
 * What watch keeps about v2 batch jobs beside the job table, whose records
 * stay small and kind-blind: each batch job's records (num_records,
 * successful, failed) and the last progress step announced, and the counts of
 * batch jobs by status (the rest of the table is embed jobs). Owned by watch;
 * everyone else reads it through these functions. Keeps the batch-job gauges
 * of struct metrics current.
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
/* A registered batch job went from status old to new. */
void watch_v2_status(struct watch_v2 *v, enum job_status old, enum job_status new);
/* Takes the records of an observation (when it has any). Returns true when they changed. */
bool watch_v2_records(struct watch_v2 *v, struct watch_records *r, const struct api_job *aj);

/* Batch jobs per status (JOB__MAX entries); the table's counts minus these are the embed jobs. */
const size_t *watch_v2_counts(const struct watch_v2 *v);
/* Batch jobs not ended. */
size_t watch_v2_live(const struct watch_v2 *v);

#endif
