#include "jobtable.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "job.h"
#include "strmap.h"
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

static bool due_before(const void *a, const void *b)
{
	return ((const struct job *)a)->due < ((const struct job *)b)->due;
}

_Static_assert(JOB_NOT_QUEUED == HEAP_NONE, "a job's heap index is the heap's");

/* Queue q's due heap, made on first use: a zeroed jobtable is a valid empty one. */
static struct heap *due_heap(struct jobtable *t, unsigned q)
{
	if (q >= JOBTABLE_QUEUES)
		q = 0;
	if (!t->due[q]) {
		t->due[q] = xmalloc(sizeof(*t->due[q]));
		heap_init(t->due[q], due_before, offsetof(struct job, heap_idx));
	}
	return t->due[q];
}

void jobtable_unschedule(struct jobtable *t, struct job *j)
{
	if (j->heap_idx != JOB_NOT_QUEUED)
		heap_remove(due_heap(t, j->queue), j);
}

void jobtable_schedule(struct jobtable *t, struct job *j, uint64_t due)
{
	struct heap *h = due_heap(t, j->queue);
	j->due = due;
	if (j->heap_idx != JOB_NOT_QUEUED)
		heap_update(h, j);
	else
		heap_push(h, j);
}

size_t jobtable_redue_in(struct jobtable *t, unsigned q, uint64_t (*fn)(struct job *j, void *arg), void *arg)
{
	size_t moved = 0, n = jobtable_n_queued_in(t, q);
	for (size_t i = 0; i < n; i++) {
		struct job *j = jobtable_queued_in(t, q, i);
		uint64_t due = fn(j, arg);
		if (due != j->due) {
			j->due = due;
			moved++;
		}
	}
	/* The keys changed in place: rebuild the heap (Floyd, bottom-up). */
	if (moved)
		heap_rebuild(due_heap(t, q));
	return moved;
}

size_t jobtable_redue(struct jobtable *t, uint64_t (*fn)(struct job *j, void *arg), void *arg)
{
	return jobtable_redue_in(t, 0, fn, arg);
}

void jobtable_cancel_push(struct jobtable *t, struct job *j)
{
	if (j->flags & JF_CANCEL_QUEUED)
		return;
	j->flags |= JF_CANCEL_QUEUED;
	if (t->n_cancels == t->cap_cancels) {
		t->cap_cancels = t->cap_cancels ? t->cap_cancels * 2 : 16;
		t->cancels = xrealloc(t->cancels, t->cap_cancels * sizeof(*t->cancels));
	}
	t->cancels[t->n_cancels++] = j;
}

struct job *jobtable_cancel_peek(const struct jobtable *t)
{
	return t->n_cancels ? t->cancels[0] : NULL;
}

struct job *jobtable_cancel_pop(struct jobtable *t)
{
	if (!t->n_cancels)
		return NULL;
	struct job *j = t->cancels[0];
	memmove(t->cancels, t->cancels + 1, (t->n_cancels - 1) * sizeof(*t->cancels));
	t->n_cancels--;
	j->flags &= (uint8_t)~JF_CANCEL_QUEUED;
	return j;
}

void jobtable_set_listed(struct jobtable *t, enum job_kind k, bool listed)
{
	t->listed[k] = listed;
}

bool jobtable_listed(const struct jobtable *t, enum job_kind k)
{
	return t->listed[k];
}

void jobtable_set_active(struct jobtable *t, bool active)
{
	t->active = active;
}

bool jobtable_active(const struct jobtable *t)
{
	return t->active;
}

struct job *jobtable_peek(struct jobtable *t)
{
	return jobtable_peek_queue(t, 0);
}

struct job *jobtable_peek_queue(struct jobtable *t, unsigned q)
{
	return q < JOBTABLE_QUEUES && t->due[q] ? heap_peek(t->due[q]) : NULL;
}

size_t jobtable_n_queued_in(const struct jobtable *t, unsigned q)
{
	return q < JOBTABLE_QUEUES && t->due[q] ? heap_len(t->due[q]) : 0;
}

struct job *jobtable_queued_in(const struct jobtable *t, unsigned q, size_t i)
{
	return heap_at(t->due[q], i);
}

size_t jobtable_n_queued(const struct jobtable *t)
{
	return jobtable_n_queued_in(t, 0);
}

struct job *jobtable_queued(const struct jobtable *t, size_t i)
{
	return jobtable_queued_in(t, 0, i);
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
	/* A removed job only the cancel queue still held is no longer in the map. */
	for (size_t i = 0; i < t->n_cancels; i++) {
		struct job *j = t->cancels[i];
		if ((j->flags & JF_REMOVED) && !(j->flags & (JF_DIRTY | JF_SEALED | JF_IN_FLIGHT)))
			free(j);
	}
	strmap_each(&t->jobs, free_job, NULL);
	strmap_each(&t->batches, free_batch, NULL);
	strmap_free(&t->jobs);
	strmap_free(&t->batches);
	for (unsigned q = 0; q < JOBTABLE_QUEUES; q++) {
		if (t->due[q])
			heap_free(t->due[q]);
		free(t->due[q]);
	}
	free(t->cancels);
	memset(t, 0, sizeof(*t));
}
