/*
 * The outbox's contract, without a network or a database: the real outbox and
 * turn record, with the store, hooks, control and poller replaced by stubs
 * that log each call. A failed commit dispatches nothing and keeps
 * everything for the retry; a successful one dispatches hooks, then waiting
 * clients, then the poller.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "control.h"
#include "ha.h"
#include "hooks.h"
#include "outbox.h"
#include "poller.h"
#include "store.h"
#include "util.h"

/* ---- the call log ---- */
static char calls[4096];
static int fail_commit;         /* store_commit fails while set */
static bool last_ended;

static void note(const char *what)
{
	size_t n = strlen(calls);
	snprintf(calls + n, sizeof(calls) - n, "%s%s", n ? " " : "", what);
}

/* ---- stubs of the modules the outbox talks to ---- */
int store_begin(struct store *s) { note("begin"); return 0; }
/* Calls back at once, as SQLite does; test_async_commit holds the callback instead. */
static bool hold_commit;
static store_done_fn *held_done;
static void *held_arg;
void store_commit_async(struct store *s, store_done_fn *done, void *arg)
{
	note("commit");
	if (hold_commit) {
		held_done = done;
		held_arg = arg;
		return;
	}
	done(fail_commit < 0 ? fail_commit : fail_commit ? -ENOSPC : 0, arg);
}
void store_rollback(struct store *s) { note("rollback"); }
const char *store_error(struct store *s) { return "database or disk is full"; }
int store_put_job(struct store *s, const struct store_job *j) { note("job"); return 0; }
int store_put_snapshot(struct store *s, const char *id, const char *json) { note("snapshot"); return 0; }
int store_delete_job(struct store *s, const char *id) { note("delete"); return 0; }
int store_put_event(struct store *s, const char *id, const char *type, const char *subject, const char *batch,
		    int64_t ts_ms, const char *payload, char *const *hooks, size_t n_hooks, bool *ret_new)
{
	note(n_hooks ? "event+deliveries" : "event");
	*ret_new = true;
	return 0;
}
int store_put_delivery(struct store *s, const char *event_id, const char *hook, const char *state, unsigned attempts,
		       int64_t next_ms, const char *last_error, int64_t updated_ms)
{
	note("delivery");
	return 0;
}
int store_put_batch(struct store *s, const char *name, int64_t created_ms, const char *done_event) { note("batch"); return 0; }
int store_prune(struct store *s, int64_t before_ms, int64_t deliveries_before_ms) { note("prune"); return 0; }
int store_put_hook(struct store *s, const struct store_hook *h) { note("hook"); return 0; }
int store_delete_request(struct store *s, int64_t id) { note("request"); return 0; }
int store_put_meta(struct store *s, const char *key, const char *value) { note("meta"); return 0; }

void hooks_plan(struct hooks *hs, struct turn_row *ev)
{
	note("plan");
	ev->hooks = xcalloc(1, sizeof(*ev->hooks));
	ev->hooks[0] = xstrdup("h1");
	ev->n_hooks = 1;
}
void hooks_dispatch(struct ew *ew, const struct turn_row *rows, uint64_t gen)
{
	int planned = 0;
	for (const struct turn_row *r = rows; r; r = r->next)
		planned += r->kind == TR_EVENT && r->is_new ? (int)r->n_hooks : 0;
	note(planned ? "hooks(1)" : "hooks(0)");
}
void control_dispatch(struct ew *ew, bool ended, uint64_t gen) { note("waiters"); last_ended = ended; }
void control_commit_failed(struct ew *ew, const char *why) { note("answers-failed"); }
void control_fetch(struct ew *ew) { note("requests"); }
void poller_kick(struct poller *p) { note("kick"); }
void poller_want_sweep(struct poller *p, unsigned kinds) { note("sweep"); }
void poller_meta_saved(struct poller *p, const char *key, const char *value) { note("meta saved"); }
/* The lease: held and confirmed unless a test says otherwise. */
static bool lease_stale;
bool store_lease_held(struct store *s) { return true; }
bool store_lease_fresh(struct store *s) { return !lease_stale; }
void ha_lost(struct ew *ew, const char *why) { note("lost"); }

/* ---- fixtures ---- */
struct fixture {
	uv_loop_t loop;
	struct ew ew;
	struct job *job;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->ew.loop = &f->loop;
	assert_int_equal(outbox_init(&f->ew), 0);
	f->job = jobtable_new_job("job-1");
	jobtable_add(&f->ew.jobs, f->job);
	calls[0] = '\0';
	fail_commit = 0;
	hold_commit = false;
	lease_stale = false;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	outbox_close(&f->ew);
	turn_free(&f->ew.turn);
	jobtable_free(&f->ew.jobs);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	/* The loop ends closed: every handle the outbox opened was closed and freed. */
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

/* A turn as an observation leaves it: a job row, an event, a new due job, a job that ended, a held answer. */
static void record_turn(struct fixture *f)
{
	struct turn *t = &f->ew.turn;
	turn_touch(t, f->job);
	struct turn_row *ev = turn_row(t, TR_EVENT);
	ev->type = EV_COMPLETE;
	snprintf(ev->event_id, sizeof(ev->event_id), "evt_test");
	ev->subject = xstrdup("job-1");
	ev->text = xstrdup("{}");
	t->kick = true;
	t->ended = true;
	t->answers = 1;
}

static void test_success_dispatches_in_order(void **state)
{
	struct fixture *f = *state;
	record_turn(f);
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "begin job plan event+deliveries commit hooks(1) waiters kick");
	assert_true(last_ended);
	/* Everything written and told: the next turn has nothing to do. */
	assert_false(turn_pending(&f->ew.turn));
	assert_false(f->job->flags & JF_DIRTY);
	calls[0] = '\0';
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "");
}

/* The suite-wide wait limit (tests/integration/lib/lib.sh): EW_TEST_TIMEOUT s (120) x EW_TEST_SLOWDOWN (1). */
static uint64_t suite_limit_ms(void)
{
	const char *t = getenv("EW_TEST_TIMEOUT"), *s = getenv("EW_TEST_SLOWDOWN");
	uint64_t secs = t && atoi(t) > 0 ? (uint64_t)atoi(t) : 120, slow = s && atoi(s) > 0 ? (uint64_t)atoi(s) : 1;
	return secs * slow * 1000;
}

static void test_failure_dispatches_nothing_then_retries(void **state)
{
	struct fixture *f = *state;
	record_turn(f);
	fail_commit = 1;
	assert_int_equal(outbox_run(&f->ew), -ENOSPC);
	/* No hook, no waiter, no poll: only the held answer hears why. */
	assert_string_equal(calls, "begin job plan event+deliveries commit rollback answers-failed");
	assert_true(f->ew.m.store_failing);
	assert_true(outbox_has_writes(&f->ew));
	assert_true(f->job->flags & JF_DIRTY);

	/* Before the retry time nothing is tried again. */
	calls[0] = '\0';
	assert_int_equal(outbox_run(&f->ew), -EAGAIN);
	assert_string_equal(calls, "");

	/* Until the backoff (1 s for the first failure) has passed, each run is refused and tries
	 * nothing; then the same record is written, and dispatched once. The test polls the loop's
	 * clock for that moment instead of sleeping a fixed time past it. */
	fail_commit = 0;
	uint64_t failed_at = uv_now(&f->loop);
	int r;
	while ((r = outbox_run(&f->ew)) == -EAGAIN) {
		assert_string_equal(calls, "");
		assert_true(uv_now(&f->loop) - failed_at < suite_limit_ms());
		usleep(10 * 1000);
		uv_update_time(&f->loop);
	}
	assert_int_equal(r, 0);
	assert_true(uv_now(&f->loop) - failed_at >= 1000);
	assert_string_equal(calls, "begin job plan event+deliveries commit hooks(1) waiters kick");
	assert_false(f->ew.m.store_failing);
	assert_int_equal(f->ew.m.commit_failures, 1);
	assert_int_equal(f->ew.m.commits, 1);
}

static void test_deletes_written_before_job_rows(void **state)
{
	struct fixture *f = *state;
	struct turn *t = &f->ew.turn;
	/* Unwatched and watched again in one turn: the delete must not undo the new row. */
	turn_row(t, TR_DELETE)->subject = xstrdup("job-1");
	turn_touch(t, f->job);
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "begin delete job commit hooks(0) waiters");
}

static void test_nothing_to_write_still_dispatches(void **state)
{
	struct fixture *f = *state;
	/* A watch of ids already watched writes nothing but must still be answered. */
	f->ew.turn.answers = 1;
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "hooks(0) waiters");
	assert_false(last_ended);
}

/* Marks without writes (ha's standby requests, a kind's sweep) still leave after the commit, in the one order. */
static void test_marks_dispatched_in_order(void **state)
{
	struct fixture *f = *state;
	f->ew.turn.requests = true;
	f->ew.turn.sweep = TURN_SWEEP(JOB_KIND_BATCH);
	f->ew.turn.kick = true;
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "hooks(0) waiters requests sweep kick");
	assert_false(turn_pending(&f->ew.turn));
	assert_int_equal(f->ew.turn.sweep, 0);
}

static void test_removed_job_freed_after_commit(void **state)
{
	struct fixture *f = *state;
	struct job *j = jobtable_new_job("job-2");
	jobtable_add(&f->ew.jobs, j);
	turn_touch(&f->ew.turn, j);
	/* Removed while its row waits: kept until the commit, skipped by it, then freed (ASan checks). */
	jobtable_remove(&f->ew.jobs, j);
	assert_null(jobtable_get(&f->ew.jobs, "job-2"));
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "begin commit hooks(0) waiters");
}

/* PostgreSQL's commit answers later: the loop records on meanwhile, into the next record. */
static void test_async_commit_keeps_the_next_record_apart(void **state)
{
	struct fixture *f = *state;
	struct turn *t = &f->ew.turn;
	hold_commit = true;
	record_turn(f);
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "begin job plan event+deliveries commit");
	assert_true(outbox_busy(&f->ew));
	/* In flight: a second job changes and another turn ends; no second commit starts, nothing is dispatched. */
	struct job *j2 = jobtable_new_job("job-2");
	jobtable_add(&f->ew.jobs, j2);
	turn_touch(t, j2);
	t->answers = 1;
	calls[0] = '\0';
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "");
	/* The answer: its own record is dispatched; the waits wait for the newer record's commit. */
	hold_commit = false;
	held_done(0, held_arg);
	assert_string_equal(calls, "hooks(1) waiters kick");
	assert_false(last_ended);
	assert_false(f->job->flags & (JF_DIRTY | JF_SEALED));
	assert_true(j2->flags & JF_DIRTY);
	calls[0] = '\0';
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "begin job commit hooks(0) waiters");
	assert_true(last_ended);
	assert_false(turn_pending(t));
}

/* A later failure: the sealed record goes back in front of what was recorded meanwhile, and is retried. */
static void test_async_failure_merges_back(void **state)
{
	struct fixture *f = *state;
	struct turn *t = &f->ew.turn;
	hold_commit = true;
	record_turn(f);
	assert_int_equal(outbox_run(&f->ew), 0);
	/* In flight: the same job changes again, and a job is unwatched (freed only once no commit holds it). */
	turn_touch(t, f->job);
	struct job *j2 = jobtable_new_job("job-2");
	jobtable_add(&f->ew.jobs, j2);
	turn_touch(t, j2);
	outbox_run(&f->ew);
	calls[0] = '\0';
	hold_commit = false;
	fail_commit = 1;
	jobtable_remove(&f->ew.jobs, j2);
	turn_row(t, TR_DELETE)->subject = xstrdup("job-2");
	held_done(-ENOSPC, held_arg);
	assert_string_equal(calls, "rollback answers-failed");
	assert_true(f->ew.m.store_failing);
	assert_false(outbox_busy(&f->ew));
	/* One row for the job, whatever happened to it in between; the event first, then the delete. */
	assert_int_equal(t->n_dirty, 2);
	assert_true(t->head && t->head->kind == TR_EVENT && t->head->next && t->head->next->kind == TR_DELETE);
	assert_true(t->kick && t->ended);
	/* The retry writes all of it, and dispatches the event once. */
	fail_commit = 0;
	usleep(1100 * 1000);
	uv_update_time(&f->loop);
	calls[0] = '\0';
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "begin delete job plan event+deliveries commit hooks(1) waiters kick");
}

/* Fenced: another daemon took the lease. Nothing was written and nothing leaves; the daemon steps down. */
static void test_fenced_commit_dispatches_nothing(void **state)
{
	struct fixture *f = *state;
	record_turn(f);
	fail_commit = -ESTALE;
	assert_int_equal(outbox_run(&f->ew), -ESTALE);
	assert_string_equal(calls, "begin job plan event+deliveries commit answers-failed lost");
	assert_true(outbox_has_writes(&f->ew));
}

/* Written, but answered after the lease could have expired: another daemon may be active; nothing leaves here. */
static void test_late_answer_dispatches_nothing(void **state)
{
	struct fixture *f = *state;
	record_turn(f);
	lease_stale = true;
	assert_int_equal(outbox_run(&f->ew), 0);
	assert_string_equal(calls, "begin job plan event+deliveries commit lost");
	assert_false(f->job->flags & (JF_DIRTY | JF_SEALED));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_success_dispatches_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_dispatches_nothing_then_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deletes_written_before_job_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_to_write_still_dispatches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_marks_dispatched_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_job_freed_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_commit_keeps_the_next_record_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_failure_merges_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fenced_commit_dispatches_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_answer_dispatches_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
