/*
 * The job table through jobtable.h: due jobs come out earliest first and keep
 * their heap index; re-scheduling, unscheduling and a reheap after due times
 * changed over one pass (jobtable_redue) keep the order; the cancel queue
 * keeps its jobs oldest first, once each, and holds a removed one; detach takes a job out of the table, the
 * heap and its batch, and the caller still owns it; a removed job waits for
 * its marks to clear; batches keep their members and counts right.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobtable.h"

static uint64_t seed = 7;
static uint64_t rnd(void)
{
	seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return seed >> 33;
}

static struct job *add(struct jobtable *t, const char *id)
{
	struct job *j = jobtable_new_job(id);
	jobtable_add(t, j);
	return j;
}

/* Every queued job knows its slot. */
static void check_indexes(const struct jobtable *t)
{
	for (size_t i = 0; i < jobtable_n_queued(t); i++)
		assert_int_equal(jobtable_queued(t, i)->heap_idx, i);
}

/* Takes every queued job out, earliest first; returns how many; asserts the order. */
static size_t drain(struct jobtable *t)
{
	uint64_t last = 0;
	size_t n = 0;
	struct job *j;
	while ((j = jobtable_peek(t)) != NULL) {
		assert_true(j->due >= last);
		last = j->due;
		jobtable_unschedule(t, j);
		assert_int_equal(j->heap_idx, JOB_NOT_QUEUED);
		n++;
	}
	return n;
}

/* For jobtable_redue: every other job (by a coin) earlier, below 100; the rest keep theirs. */
static uint64_t some_earlier(struct job *j, void *arg)
{
	(void)arg;
	return rnd() % 2 ? rnd() % 100 : j->due;
}

static void test_heap_order(void **state)
{
	enum { N = 300 };
	struct jobtable t = { 0 };
	struct job *jobs[N];
	char id[32];
	assert_null(jobtable_peek(&t));
	assert_int_equal(jobtable_n_queued(&t), 0);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "job-%d", i);
		jobs[i] = add(&t, id);
		assert_int_equal(jobs[i]->heap_idx, JOB_NOT_QUEUED);
		jobtable_schedule(&t, jobs[i], 10 + rnd() % 1000);
	}
	assert_int_equal(jobtable_n_queued(&t), N);
	check_indexes(&t);
	/* Scheduling a queued job again moves it, it is not queued twice. */
	jobtable_schedule(&t, jobs[17], 0);
	assert_ptr_equal(jobtable_peek(&t), jobs[17]);
	jobtable_schedule(&t, jobs[17], 5000);
	assert_int_equal(jobtable_n_queued(&t), N);
	check_indexes(&t);
	/* Unscheduling from the middle, twice (the second does nothing). */
	for (int i = 0; i < N; i += 4) {
		jobtable_unschedule(&t, jobs[i]);
		jobtable_unschedule(&t, jobs[i]);
	}
	check_indexes(&t);
	assert_int_equal(jobtable_n_queued(&t), N - N / 4);
	/* Dues changed over one pass (as the sweep does), the heap order restored once. */
	size_t moved = jobtable_redue(&t, some_earlier, NULL);
	assert_true(moved > 0 && moved < jobtable_n_queued(&t));
	check_indexes(&t);
	assert_int_equal(drain(&t), N - N / 4);
	assert_null(jobtable_peek(&t));
	jobtable_free(&t);
}

static void test_detach(void **state)
{
	struct jobtable t = { 0 };
	struct job *a = add(&t, "a"), *b = add(&t, "b"), *c = add(&t, "c");
	struct batch *nightly = jobtable_batch(&t, "nightly", 1000);
	jobtable_join(&t, a, nightly);
	jobtable_join(&t, b, nightly);
	jobtable_join(&t, c, nightly);
	jobtable_set_status(&t, b, JOB_PROCESSING);
	jobtable_schedule(&t, a, 10);
	jobtable_schedule(&t, b, 20);
	jobtable_schedule(&t, c, 30);
	assert_int_equal(t.counts[JOB_NONE], 2);
	assert_int_equal(t.counts[JOB_PROCESSING], 1);

	jobtable_detach(&t, b);
	assert_null(jobtable_get(&t, "b"));
	assert_int_equal(b->heap_idx, JOB_NOT_QUEUED);
	assert_null(b->batch);
	assert_int_equal(jobtable_n_queued(&t), 2);
	assert_int_equal(t.counts[JOB_PROCESSING], 0);
	assert_int_equal(nightly->n_jobs, 2);
	assert_int_equal(nightly->counts[JOB_PROCESSING], 0);
	/* The members that are left still point at their own slots. */
	for (uint32_t i = 0; i < nightly->n_jobs; i++) {
		assert_int_equal(nightly->members[i]->batch_idx, i);
		assert_ptr_equal(nightly->members[i]->batch, nightly);
	}
	assert_ptr_equal(jobtable_get(&t, "a"), a);
	assert_ptr_equal(jobtable_peek(&t), a);
	/* The caller owns a detached job: it can go back in. */
	jobtable_add(&t, b);
	assert_ptr_equal(jobtable_get(&t, "b"), b);
	assert_int_equal(t.counts[JOB_PROCESSING], 1);
	jobtable_free(&t);
}

static void test_remove_waits_for_marks(void **state)
{
	struct jobtable t = { 0 };
	struct job *j = add(&t, "held");
	jobtable_schedule(&t, j, 5);
	j->flags |= JF_DIRTY | JF_IN_FLIGHT;
	jobtable_remove(&t, j);
	/* Still held (its row is unwritten, its poll runs): out of the table, not freed. */
	assert_null(jobtable_get(&t, "held"));
	assert_int_equal(jobtable_n_queued(&t), 0);
	assert_true(j->flags & JF_REMOVED);
	j->flags &= (uint8_t)~JF_DIRTY;
	jobtable_release(j);
	assert_true(j->flags & JF_REMOVED);     /* still in flight: not freed yet */
	j->flags &= (uint8_t)~JF_IN_FLIGHT;
	jobtable_release(j);                    /* freed now; ASan and valgrind see a leak otherwise */
	/* A job nobody holds goes at once. */
	jobtable_remove(&t, add(&t, "free"));
	assert_null(jobtable_get(&t, "free"));
	jobtable_free(&t);
}

/* The cancel queue: oldest first, each job once; a removed job it holds waits for it. */
static void test_cancel_queue(void **state)
{
	struct jobtable t = { 0 };
	struct job *a = add(&t, "a"), *b = add(&t, "b"), *c = add(&t, "c");
	assert_null(jobtable_cancel_peek(&t));
	assert_null(jobtable_cancel_pop(&t));
	jobtable_cancel_push(&t, b);
	jobtable_cancel_push(&t, a);
	jobtable_cancel_push(&t, b);            /* queued already: not twice */
	jobtable_cancel_push(&t, c);
	assert_true(b->flags & JF_CANCEL_QUEUED);
	assert_ptr_equal(jobtable_cancel_peek(&t), b);
	assert_ptr_equal(jobtable_cancel_pop(&t), b);
	assert_false(b->flags & JF_CANCEL_QUEUED);
	/* Removed while queued: held until the queue lets go of it. */
	jobtable_remove(&t, a);
	assert_null(jobtable_get(&t, "a"));
	assert_true(a->flags & JF_REMOVED);
	assert_ptr_equal(jobtable_cancel_pop(&t), a);
	jobtable_release(a);                    /* freed now */
	assert_ptr_equal(jobtable_cancel_peek(&t), c);
	/* Pushed again after it left the queue: queued again, at the end. */
	jobtable_cancel_push(&t, b);
	assert_ptr_equal(jobtable_cancel_pop(&t), c);
	assert_ptr_equal(jobtable_cancel_pop(&t), b);
	assert_null(jobtable_cancel_pop(&t));
	/* A removed job still queued at the end is freed with the table (ASan sees a leak otherwise). */
	struct job *d = add(&t, "d");
	jobtable_cancel_push(&t, d);
	jobtable_remove(&t, d);
	assert_true(d->flags & JF_REMOVED);
	jobtable_free(&t);
}

static void test_listed(void **state)
{
	struct jobtable t = { 0 };
	assert_false(jobtable_listed(&t, JOB_KIND_EMBED));      /* not until the poller says the sweep works */
	jobtable_set_listed(&t, JOB_KIND_EMBED, true);
	assert_true(jobtable_listed(&t, JOB_KIND_EMBED));
	assert_false(jobtable_listed(&t, JOB_KIND_BATCH));      /* one mark per kind */
	jobtable_set_listed(&t, JOB_KIND_EMBED, false);
	assert_false(jobtable_listed(&t, JOB_KIND_EMBED));
	jobtable_free(&t);
}

static void test_batches(void **state)
{
	struct jobtable t = { 0 };
	struct batch *x = jobtable_batch(&t, "x", 100);
	assert_ptr_equal(jobtable_batch(&t, "x", 200), x);
	assert_int_equal(x->created_ms, 100);
	assert_ptr_equal(jobtable_get_batch(&t, "x"), x);
	assert_null(jobtable_get_batch(&t, "y"));
	struct batch *y = jobtable_batch(&t, "y", 300);

	/* More members than the first allocation holds. */
	struct job *jobs[20];
	char id[16];
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "j%d", i);
		jobs[i] = add(&t, id);
		jobtable_join(&t, jobs[i], x);
	}
	assert_int_equal(x->n_jobs, 20);
	assert_int_equal(x->counts[JOB_NONE], 20);
	/* Status changes count per batch, and ended ones count as ended. */
	jobtable_set_status(&t, jobs[0], JOB_PROCESSING);
	jobtable_set_status(&t, jobs[0], JOB_COMPLETE);
	jobtable_set_status(&t, jobs[1], JOB_FAILED);
	assert_int_equal(x->counts[JOB_COMPLETE], 1);
	assert_int_equal(x->counts[JOB_FAILED], 1);
	assert_int_equal(x->counts[JOB_PROCESSING], 0);
	assert_int_equal(x->n_ended, 2);
	assert_int_equal(t.counts[JOB_COMPLETE], 1);
	/* Moving one to another batch takes its counts along. */
	jobtable_join(&t, jobs[0], y);
	assert_int_equal(x->n_jobs, 19);
	assert_int_equal(x->n_ended, 1);
	assert_int_equal(x->counts[JOB_COMPLETE], 0);
	assert_int_equal(y->n_jobs, 1);
	assert_int_equal(y->n_ended, 1);
	assert_int_equal(y->counts[JOB_COMPLETE], 1);
	/* Joining the batch it is in changes nothing. */
	jobtable_join(&t, jobs[0], y);
	assert_int_equal(y->n_jobs, 1);
	for (uint32_t i = 0; i < x->n_jobs; i++)
		assert_int_equal(x->members[i]->batch_idx, i);
	/* Out of every batch, then an empty batch is dropped. */
	jobtable_join(&t, jobs[0], NULL);
	assert_int_equal(y->n_jobs, 0);
	assert_int_equal(y->n_ended, 0);
	jobtable_drop_batch(&t, y);
	assert_null(jobtable_get_batch(&t, "y"));
	jobtable_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heap_order),
		cmocka_unit_test(test_detach),
		cmocka_unit_test(test_remove_waits_for_marks),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_cancel_queue),
		cmocka_unit_test(test_listed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
