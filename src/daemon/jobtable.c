#include "jobtable.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct job *jobtable_new_job(const char *id)
{
	size_t n = strlen(id);
	struct job *j = xcalloc(1, sizeof(*j) + n + 1);
	memcpy(j->id, id, n + 1);
	j->heap_idx = JOB_NOT_QUEUED;
	return j;
}

struct job *jobtable_get(struct jobtable *t, const char *id)
{
	return strmap_get(&t->jobs, id);
}

void jobtable_add(struct jobtable *t, struct job *j)
{
	strmap_put(&t->jobs, j->id, j);
	t->counts[j->status]++;
}

static void batch_count(struct batch *b, enum job_status st, int d)
{
	b->counts[st] += (uint32_t)d;
	if (job_status_ended(st))
		b->n_ended += (uint32_t)d;
}

void jobtable_set_status(struct jobtable *t, struct job *j, enum job_status st)
{
	t->counts[j->status]--;
	t->counts[st]++;
	if (j->batch) {
		batch_count(j->batch, j->status, -1);
		batch_count(j->batch, st, 1);
	}
	j->status = (uint8_t)st;
}

struct batch *jobtable_get_batch(struct jobtable *t, const char *name)
{
	return strmap_get(&t->batches, name);
}

struct batch *jobtable_batch(struct jobtable *t, const char *name, int64_t now_ms)
{
	struct batch *b = strmap_get(&t->batches, name);
	if (!b) {
		b = xcalloc(1, sizeof(*b));
		b->name = xstrdup(name);
		b->created_ms = now_ms;
		strmap_put(&t->batches, b->name, b);
	}
	return b;
}

void jobtable_join(struct jobtable *t, struct job *j, struct batch *b)
{
	struct batch *old = j->batch;
	if (old == b)
		return;
	if (old) {
		/* Swap-remove: the last member takes j's place. */
		struct job *last = old->members[--old->n_jobs];
		old->members[j->batch_idx] = last;
		last->batch_idx = j->batch_idx;
		batch_count(old, j->status, -1);
	}
	j->batch = b;
	if (b) {
		if (b->n_jobs == b->cap_members) {
			b->cap_members = b->cap_members ? b->cap_members * 2 : 8;
			b->members = xrealloc(b->members, b->cap_members * sizeof(*b->members));
		}
		j->batch_idx = b->n_jobs;
		b->members[b->n_jobs++] = j;
		batch_count(b, j->status, 1);
	}
}

static void heap_swap(struct jobtable *t, size_t a, size_t b)
{
	struct job *x = t->heap[a];
	t->heap[a] = t->heap[b];
	t->heap[b] = x;
	t->heap[a]->heap_idx = (uint32_t)a;
	t->heap[b]->heap_idx = (uint32_t)b;
}

static void sift_up(struct jobtable *t, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (t->heap[p]->due <= t->heap[i]->due)
			break;
		heap_swap(t, i, p);
		i = p;
	}
}

static void sift_down(struct jobtable *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->heap_len && t->heap[l]->due < t->heap[m]->due)
			m = l;
		if (r < t->heap_len && t->heap[r]->due < t->heap[m]->due)
			m = r;
		if (m == i)
			break;
		heap_swap(t, i, m);
		i = m;
	}
}

void jobtable_unschedule(struct jobtable *t, struct job *j)
{
	size_t i = j->heap_idx;
	if (i == JOB_NOT_QUEUED)
		return;
	t->heap_len--;
	if (i != t->heap_len) {
		t->heap[i] = t->heap[t->heap_len];
		t->heap[i]->heap_idx = (uint32_t)i;
		sift_down(t, i);
		sift_up(t, i);
	}
	j->heap_idx = JOB_NOT_QUEUED;
}

void jobtable_schedule(struct jobtable *t, struct job *j, uint64_t due)
{
	jobtable_unschedule(t, j);
	if (t->heap_len == t->heap_cap) {
		t->heap_cap = t->heap_cap ? t->heap_cap * 2 : 1024;
		t->heap = xrealloc(t->heap, t->heap_cap * sizeof(*t->heap));
	}
	j->due = due;
	j->heap_idx = (uint32_t)t->heap_len;
	t->heap[t->heap_len++] = j;
	sift_up(t, j->heap_idx);
}

void jobtable_reheap(struct jobtable *t)
{
	for (size_t i = t->heap_len / 2; i-- > 0;)
		sift_down(t, i);
}

struct job *jobtable_peek(struct jobtable *t)
{
	return t->heap_len ? t->heap[0] : NULL;
}

void jobtable_detach(struct jobtable *t, struct job *j)
{
	jobtable_unschedule(t, j);
	jobtable_join(t, j, NULL);
	t->counts[j->status]--;
	strmap_del(&t->jobs, j->id);
}

void jobtable_remove(struct jobtable *t, struct job *j)
{
	jobtable_detach(t, j);
	j->flags |= JF_REMOVED;
	jobtable_release(j);
}

void jobtable_release(struct job *j)
{
	if ((j->flags & JF_REMOVED) && !(j->flags & (JF_DIRTY | JF_SEALED | JF_IN_FLIGHT | JF_CANCEL_QUEUED)))
		free(j);
}

static void free_job(const char *k, void *v, void *arg)
{
	free(v);
}

static void batch_free(struct batch *b)
{
	free(b->members);
	free(b->name);
	free(b);
}

void jobtable_drop_batch(struct jobtable *t, struct batch *b)
{
	strmap_del(&t->batches, b->name);
	batch_free(b);
}

static void free_batch(const char *k, void *v, void *arg)
{
	batch_free(v);
}

void jobtable_free(struct jobtable *t)
{
	strmap_each(&t->jobs, free_job, NULL);
	strmap_each(&t->batches, free_batch, NULL);
	strmap_free(&t->jobs);
	strmap_free(&t->batches);
	free(t->heap);
	memset(t, 0, sizeof(*t));
}
