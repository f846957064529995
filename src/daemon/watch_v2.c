/* The batch-job register: records and counts of v2 batch jobs, beside the kind-blind job table. */
#include "watch_v2.h"

#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "util.h"

struct rec {
	struct watch_records r;
	char id[];
};

struct watch_v2 {
	struct metrics *m;
	struct strmap recs;         /* id -> struct rec (the key points into it) */
};

struct watch_v2 *watch_v2_new(struct metrics *m)
{
	struct watch_v2 *v = xcalloc(1, sizeof(*v));
	v->m = m;
	return v;
}

static void free_rec(const char *k, void *val, void *arg)
{
	free(val);
}

void watch_v2_free(struct watch_v2 *v)
{
	if (!v)
		return;
	strmap_each(&v->recs, free_rec, NULL);
	strmap_free(&v->recs);
	free(v);
}

/* The gauges are sums over the registered jobs: a job's records enter with sign +1 and leave with -1. */
static void sums(struct metrics *m, const struct watch_records *r, int sign)
{
	if (!r->known)
		return;
	m->batch_records[0] += sign * r->total;
	m->batch_records[1] += sign * r->successful;
	m->batch_records[2] += sign * r->failed;
}

struct watch_records *watch_v2_add(struct watch_v2 *v, const char *id, enum job_status st)
{
	size_t n = strlen(id);
	struct rec *x = xcalloc(1, sizeof(*x) + n + 1);
	memcpy(x->id, id, n + 1);
	strmap_put(&v->recs, x->id, x);
	v->m->batch_jobs[st]++;
	return &x->r;
}

struct watch_records *watch_v2_get(struct watch_v2 *v, const char *id)
{
	struct rec *x = strmap_get(&v->recs, id);
	return x ? &x->r : NULL;
}

void watch_v2_remove(struct watch_v2 *v, const char *id, enum job_status st)
{
	struct rec *x = strmap_del(&v->recs, id);
	if (!x)
		return;
	sums(v->m, &x->r, -1);
	v->m->batch_jobs[st]--;
	free(x);
}

void watch_v2_status(struct watch_v2 *v, enum job_status old, enum job_status new)
{
	v->m->batch_jobs[old]--;
	v->m->batch_jobs[new]++;
}

bool watch_v2_records(struct watch_v2 *v, struct watch_records *r, const struct api_job *aj)
{
	if (!aj->has_records)
		return false;
	if (r->known && r->total == aj->num_records && r->successful == aj->num_successful && r->failed == aj->num_failed)
		return false;
	sums(v->m, r, -1);
	r->known = true;
	r->total = aj->num_records;
	r->successful = aj->num_successful;
	r->failed = aj->num_failed;
	sums(v->m, r, +1);
	return true;
}

const size_t *watch_v2_counts(const struct watch_v2 *v)
{
	return v->m->batch_jobs;
}

size_t watch_v2_live(const struct watch_v2 *v)
{
	size_t n = 0;
	for (int s = 0; s < JOB__MAX; s++)
		if (!job_status_ended((enum job_status)s))
			n += v->m->batch_jobs[s];
	return n;
}
