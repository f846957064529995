/*
 * The turn record through turn.h: a job is marked dirty once per turn; rows
 * come back from the commit in the order recorded; delivery states copy their
 * strings; marks alone are pending but are no writes; a commit clears the
 * marks and frees the removed jobs no one else holds; unplanning drops every
 * event's hooks; turn_free frees what was never written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "turn.h"
#include "util.h"

static struct job *add(struct jobtable *t, const char *id)
{
	struct job *j = jobtable_new_job(id);
	jobtable_add(t, j);
	return j;
}

static void test_dirty_once(void **state)
{
	struct jobtable jt = { 0 };
	struct turn t = { 0 };
	assert_false(turn_has_writes(&t));
	assert_false(turn_pending(&t));
	/* More jobs than the first allocation holds, each touched twice. */
	struct job *jobs[300];
	char id[16];
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "j%d", i);
		jobs[i] = add(&jt, id);
		turn_touch(&t, jobs[i]);
		turn_touch(&t, jobs[i]);
	}
	assert_int_equal(t.n_dirty, 300);
	for (int i = 0; i < 300; i++) {
		assert_ptr_equal(t.dirty[i], jobs[i]);
		assert_true(jobs[i]->flags & JF_DIRTY);
	}
	assert_true(turn_has_writes(&t));
	assert_null(turn_committed(&t));
	assert_int_equal(t.n_dirty, 0);
	for (int i = 0; i < 300; i++)
		assert_false(jobs[i]->flags & JF_DIRTY);
	assert_false(turn_has_writes(&t));
	/* The next turn marks it again. */
	turn_touch(&t, jobs[0]);
	assert_int_equal(t.n_dirty, 1);
	turn_free(&t);
	assert_false(jobs[0]->flags & JF_DIRTY);
	jobtable_free(&jt);
}

static void test_rows_in_order(void **state)
{
	struct turn t = { 0 };
	static const enum turn_row_kind kinds[] = { TR_SNAPSHOT, TR_EVENT, TR_BATCH, TR_DELETE, TR_EVENT, TR_PRUNE };
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		struct turn_row *r = turn_row(&t, kinds[i]);
		assert_int_equal(r->kind, kinds[i]);
		assert_null(r->next);
		assert_null(r->subject);
		r->ts_ms = (int64_t)i;
		r->subject = xstrdup("subject");
		r->text = xstrdup("{}");
	}
	assert_true(turn_has_writes(&t));
	struct turn_row *rows = turn_committed(&t);
	assert_false(turn_has_writes(&t));
	assert_null(t.head);
	assert_null(t.tail);
	size_t n = 0;
	for (struct turn_row *r = rows; r; r = r->next, n++) {
		assert_int_equal(r->kind, kinds[n]);
		assert_int_equal(r->ts_ms, (int64_t)n);
	}
	assert_int_equal(n, ARRAY_SIZE(kinds));
	/* Rows recorded after the commit start a new list. */
	turn_row(&t, TR_DELETE)->subject = xstrdup("later");
	assert_ptr_equal(t.head, t.tail);
	turn_rows_free(rows);
	turn_free(&t);
}

static void test_deliveries_copied(void **state)
{
	struct turn t = { 0 };
	char hook[16] = "record", err[32] = "exit status 1";
	turn_delivery(&t, "evt_0123", hook, "pending", 1, 1234, err);
	turn_delivery(&t, "evt_0123", hook, "done", 2, 0, NULL);
	strcpy(hook, "changed");
	strcpy(err, "changed");
	assert_int_equal(t.n_upd, 2);
	assert_string_equal(t.upd[0].event_id, "evt_0123");
	assert_string_equal(t.upd[0].hook, "record");
	assert_string_equal(t.upd[0].state, "pending");
	assert_string_equal(t.upd[0].last_error, "exit status 1");
	assert_int_equal(t.upd[0].attempts, 1);
	assert_int_equal(t.upd[0].next_ms, 1234);
	assert_true(t.upd[0].updated_ms > 0);
	assert_null(t.upd[1].last_error);
	assert_string_equal(t.upd[1].state, "done");
	/* An event id too long for the field is cut, not overrun. */
	char long_id[100];
	memset(long_id, 'e', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	turn_delivery(&t, long_id, "h", "dead", 9, 0, "x");
	assert_int_equal(strlen(t.upd[2].event_id), sizeof(t.upd[2].event_id) - 1);
	assert_true(turn_has_writes(&t));
	assert_null(turn_committed(&t));
	assert_int_equal(t.n_upd, 0);
	assert_false(turn_has_writes(&t));
	turn_free(&t);
}

static void test_marks(void **state)
{
	struct turn t = { 0 };
	/* Each mark alone is something to tell, nothing to write. */
	t.ended = true;
	assert_true(turn_pending(&t));
	assert_false(turn_has_writes(&t));
	t.ended = false;
	t.kick = true;
	assert_true(turn_pending(&t));
	t.kick = false;
	t.answers = 2;
	assert_true(turn_pending(&t));
	assert_false(turn_has_writes(&t));
	t.answers = 0;
	assert_false(turn_pending(&t));
	turn_free(&t);
}

static void test_removed_job_freed_at_commit(void **state)
{
	struct jobtable jt = { 0 };
	struct turn t = { 0 };
	struct job *gone = add(&jt, "gone"), *flying = add(&jt, "flying");
	turn_touch(&t, gone);
	turn_touch(&t, flying);
	flying->flags |= JF_IN_FLIGHT;
	/* Unwatched this turn: the row still has to be written, so neither is freed yet. */
	jobtable_remove(&jt, gone);
	jobtable_remove(&jt, flying);
	assert_int_equal(t.n_dirty, 2);
	assert_true(gone->flags & JF_REMOVED);
	/* The commit frees "gone" (ASan and valgrind check it); "flying" waits for its poll. */
	assert_null(turn_committed(&t));
	assert_true(flying->flags & JF_REMOVED);
	assert_false(flying->flags & JF_DIRTY);
	flying->flags &= (uint8_t)~JF_IN_FLIGHT;
	jobtable_release(flying);
	turn_free(&t);
	jobtable_free(&jt);
}

static void test_unplan(void **state)
{
	struct turn t = { 0 };
	struct turn_row *ev = turn_row(&t, TR_EVENT), *snap = turn_row(&t, TR_SNAPSHOT);
	ev->hooks = xcalloc(2, sizeof(*ev->hooks));
	ev->hooks[0] = xstrdup("a");
	ev->hooks[1] = xstrdup("b");
	ev->n_hooks = 2;
	ev->is_new = true;
	turn_unplan(&t);
	assert_null(ev->hooks);
	assert_int_equal(ev->n_hooks, 0);
	assert_false(ev->is_new);
	assert_null(snap->hooks);
	/* The rows stay for the retry. */
	assert_ptr_equal(t.head, ev);
	assert_true(turn_has_writes(&t));
	/* Planned again, then freed unwritten with everything in it. */
	ev->hooks = xcalloc(1, sizeof(*ev->hooks));
	ev->hooks[0] = xstrdup("a");
	ev->n_hooks = 1;
	ev->batch = xstrdup("nightly");
	ev->job_name = xstrdup("n-1");
	turn_delivery(&t, "evt_1", "a", "pending", 0, 0, NULL);
	turn_free(&t);
	assert_null(t.head);
	assert_false(turn_pending(&t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirty_once),
		cmocka_unit_test(test_rows_in_order),
		cmocka_unit_test(test_deliveries_copied),
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_removed_job_freed_at_commit),
		cmocka_unit_test(test_unplan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
