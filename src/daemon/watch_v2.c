/* The batch-job register: records and counts of v2 batch jobs, beside the kind-blind job table. */
#include "watch_v2.h"

#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "strmap.h"
#include "util.h"

struct rec {
	struct watch_records r;
	char id[];
};

struct watch_v2 {
	struct metrics *m;
	struct strmap recs;         /* id -> struct rec (the key points into it) */
	struct strmap held;         /* job id -> struct watch_hold (the key is its job_id) */
	struct watch_hold **holds;  /* the same, oldest first: few (completions of the last dataset_timeout) */
	size_t other[JOB__MAX];     /* of the counts, the other providers' (a key "ACCOUNT:ID") */
	size_t n_holds, cap_holds;
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

static void hold_free(struct watch_hold *h)
{
	free(h->job_id);
	free(h->dataset_id);
	free(h->doc);
	free(h);
}

void watch_v2_free(struct watch_v2 *v)
{
	if (!v)
		return;
	strmap_each(&v->recs, free_rec, NULL);
	strmap_free(&v->recs);
	for (size_t i = 0; i < v->n_holds; i++)
		hold_free(v->holds[i]);
	free(v->holds);
	strmap_free(&v->held);
	free(v);
}

struct watch_hold *watch_v2_hold(struct watch_v2 *v, const char *job_id, enum job_kind k, const char *dataset_id,
				 const char *doc, size_t doc_len, bool via_list, uint64_t deadline)
{
	struct watch_hold *h = xcalloc(1, sizeof(*h));
	h->job_id = xstrdup(job_id);
	h->dataset_id = xstrdup(dataset_id);
	h->doc = xstrndup(doc, doc_len);
	h->doc_len = doc_len;
	h->kind = (uint8_t)k;
	h->via_list = via_list;
	h->deadline = deadline;
	strmap_put(&v->held, h->job_id, h);
	if (v->n_holds == v->cap_holds) {
		v->cap_holds = v->cap_holds ? v->cap_holds * 2 : 16;
		v->holds = xrealloc(v->holds, v->cap_holds * sizeof(*v->holds));
	}
	v->holds[v->n_holds++] = h;
	return h;
}

struct watch_hold *watch_v2_held(struct watch_v2 *v, const char *job_id)
{
	return v->n_holds ? strmap_get(&v->held, job_id) : NULL;
}

size_t watch_v2_hold_count(const struct watch_v2 *v)
{
	return v->n_holds;
}

struct watch_hold *watch_v2_hold_at(struct watch_v2 *v, size_t i)
{
	return i < v->n_holds ? v->holds[i] : NULL;
}

void watch_v2_unhold(struct watch_v2 *v, const char *job_id)
{
	struct watch_hold *h = watch_v2_held(v, job_id);
	if (!h)
		return;
	strmap_del(&v->held, job_id);
	for (size_t i = 0; i < v->n_holds; i++) {
		if (v->holds[i] == h) {
			memmove(v->holds + i, v->holds + i + 1, (v->n_holds - i - 1) * sizeof(*v->holds));
			v->n_holds--;
			break;
		}
	}
	hold_free(h);
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
	if (strchr(id, ':'))
		v->other[st]++;
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
	if (strchr(id, ':'))
		v->other[st]--;
	free(x);
}

void watch_v2_status(struct watch_v2 *v, const char *id, enum job_status old, enum job_status new)
{
	v->m->batch_jobs[old]--;
	v->m->batch_jobs[new]++;
	if (strchr(id, ':')) {
		v->other[old]--;
		v->other[new]++;
	}
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

size_t watch_v2_cohere(const struct watch_v2 *v, enum job_status st)
{
	return v->m->batch_jobs[st] - v->other[st];
}

size_t watch_v2_cohere_live(const struct watch_v2 *v)
{
	size_t n = 0;
	for (int s = 0; s < JOB__MAX; s++)
		if (!job_status_ended((enum job_status)s))
			n += watch_v2_cohere(v, (enum job_status)s);
	return n;
}
