/*
 * The state store through store.h, on a real SQLite file in a temporary
 * directory: the schema is created (and a version-1 database migrated); one
 * turn's writes commit together or not at all; what was committed is read back
 * after a reopen (restore); pending deliveries come back oldest event first;
 * an event id is inserted once; a busy database fails the commit without
 * losing what was committed before; prune keeps what deliveries still need;
 * the hooks' breaker state round-trips.
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
#include <sqlite3.h>

#include "store.h"
#include "util.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/ew-store-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static struct store *open_store(void)
{
	struct store *s;
	char err[512];
	assert_int_equal(store_open(dir, &s, err, sizeof(err)), 0);
	return s;
}

static int count_jobs(const struct store_job *j, void *arg)
{
	(void)j;
	(*(int *)arg)++;
	return 0;
}

struct seen {
	char ids[16][40];
	int n;
};

static int note_delivery(const struct store_delivery *d, void *arg)
{
	struct seen *x = arg;
	if (x->n < 16)
		snprintf(x->ids[x->n++], sizeof(x->ids[0]), "%s/%s", d->event_id, d->hook);
	return 0;
}

static void put_event(struct store *s, const char *id, int64_t ts, bool want_new)
{
	bool is_new = !want_new;
	assert_int_equal(store_put_event(s, id, "embed_job.complete", "job-1", "b", ts, "{}", &is_new), 0);
	assert_int_equal(is_new, want_new);
}

static void test_commit_and_restore(void **state)
{
	struct store *s = open_store();
	struct store_job j = { .id = "job-1", .batch = "b", .status = 3, .added_ms = 1, .updated_ms = 2 };
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_job(s, &j), 0);
	put_event(s, "evt_a", 100, true);
	put_event(s, "evt_a", 100, false);         /* the same id again: not new */
	assert_int_equal(store_put_delivery(s, "evt_a", "h1", "pending", 0, 100, NULL, 100), 0);
	assert_int_equal(store_commit(s), 0);
	/* A turn rolled back leaves nothing. */
	struct store_job j2 = { .id = "job-2", .status = 1 };
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_job(s, &j2), 0);
	store_rollback(s);
	store_close(s);

	s = open_store();
	int n = 0;
	assert_int_equal(store_each_job(s, count_jobs, &n), 0);
	assert_int_equal(n, 1);
	struct seen x = { .n = 0 };
	assert_int_equal(store_each_pending(s, note_delivery, &x), 0);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.ids[0], "evt_a/h1");
	store_close(s);
}

static void test_pending_oldest_first(void **state)
{
	struct store *s = open_store();
	/* Detected at 300, 100, 200 ms; two in one millisecond keep their insertion order. */
	static const struct { const char *id; int64_t ts; } ev[] = {
		{ "evt_c", 300 }, { "evt_a", 100 }, { "evt_b1", 200 }, { "evt_b2", 200 },
	};
	assert_int_equal(store_begin(s), 0);
	for (size_t i = 0; i < ARRAY_SIZE(ev); i++) {
		put_event(s, ev[i].id, ev[i].ts, true);
		/* Updated in the other order: restore must not follow the update time. */
		assert_int_equal(store_put_delivery(s, ev[i].id, "h", "pending", 0, 0, NULL, 1000 - ev[i].ts), 0);
	}
	assert_int_equal(store_put_delivery(s, "evt_a", "h2", "done", 1, 0, NULL, 5), 0);
	assert_int_equal(store_commit(s), 0);
	struct seen x = { .n = 0 };
	assert_int_equal(store_each_pending(s, note_delivery, &x), 0);
	assert_int_equal(x.n, 4);
	assert_string_equal(x.ids[0], "evt_a/h");
	assert_string_equal(x.ids[1], "evt_b1/h");
	assert_string_equal(x.ids[2], "evt_b2/h");
	assert_string_equal(x.ids[3], "evt_c/h");
	/* The listing is newest update first, and filters by hook and time. */
	struct seen l = { .n = 0 };
	assert_int_equal(store_each_delivery(s, NULL, "h", 850, note_delivery, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.ids[0], "evt_a/h");         /* updated at 900; the rest at 800 and 700 */
	l.n = 0;
	assert_int_equal(store_each_delivery(s, "pending", NULL, 0, note_delivery, &l), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.ids[0], "evt_a/h");
	assert_string_equal(l.ids[3], "evt_c/h");
	store_close(s);
}

static void test_busy_commit_keeps_committed(void **state)
{
	struct store *s = open_store();
	struct store_job j = { .id = "kept", .status = 1 };
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_job(s, &j), 0);
	assert_int_equal(store_commit(s), 0);
	/* Another writer holds the database: the next turn cannot begin, and says so. */
	sqlite3 *other;
	char path[128];
	snprintf(path, sizeof(path), "%s/embedwatch.db", dir);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_begin(s), -EBUSY);
	store_rollback(s);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	/* Retried once the other writer is gone, it commits; the earlier row is there. */
	struct store_job j2 = { .id = "later", .status = 1 };
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_job(s, &j2), 0);
	assert_int_equal(store_commit(s), 0);
	int n = 0;
	assert_int_equal(store_each_job(s, count_jobs, &n), 0);
	assert_int_equal(n, 2);
	store_close(s);
}

static void noop_event(const char *t, const char *su, const char *b, const char *p, void *arg)
{
	(void)t, (void)su, (void)b, (void)p;
	(*(int *)arg)++;
}

static void test_prune(void **state)
{
	struct store *s = open_store();
	bool n;
	assert_int_equal(store_begin(s), 0);
	/* Old events of jobs no longer watched: one with a dead delivery kept for replay, one done long ago. */
	assert_int_equal(store_put_event(s, "evt_dead", "embed_job.failed", "gone-1", NULL, 10, "{}", &n), 0);
	assert_int_equal(store_put_delivery(s, "evt_dead", "h", "dead", 3, 0, "HTTP 500", 900), 0);
	assert_int_equal(store_put_event(s, "evt_done", "embed_job.complete", "gone-2", NULL, 10, "{}", &n), 0);
	assert_int_equal(store_put_delivery(s, "evt_done", "h", "done", 1, 0, NULL, 20), 0);
	assert_int_equal(store_put_event(s, "evt_pend", "embed_job.complete", "gone-3", NULL, 10, "{}", &n), 0);
	assert_int_equal(store_put_delivery(s, "evt_pend", "h", "pending", 1, 0, NULL, 20), 0);
	assert_int_equal(store_commit(s), 0);
	/* Jobs' events before 100 go; finished deliveries before 500 go. */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_prune(s, 100, 500), 0);
	assert_int_equal(store_commit(s), 0);
	int c = 0;
	assert_int_equal(store_get_event(s, "evt_dead", noop_event, &c), 0);
	assert_int_equal(store_get_event(s, "evt_pend", noop_event, &c), 0);
	assert_int_equal(store_get_event(s, "evt_done", noop_event, &c), -ENOENT);
	assert_int_equal(c, 2);
	struct seen x = { .n = 0 };
	assert_int_equal(store_each_dead(s, "h", 0, NULL, note_delivery, &x), 0);
	assert_int_equal(x.n, 1);
	assert_int_equal(store_each_dead(s, "h", 901, NULL, note_delivery, &x), 0);
	assert_int_equal(x.n, 1);             /* died at 900: not since 901 */
	assert_int_equal(store_each_dead(s, NULL, 0, "embed_job.complete", note_delivery, &x), 0);
	assert_int_equal(x.n, 1);             /* of another type */
	store_close(s);
}

struct hook_seen {
	int n;
	int64_t disabled_ms, failing_ms;
	char why[64], last_error[64];
};

static int note_hook(const struct store_hook *h, void *arg)
{
	struct hook_seen *x = arg;
	x->n++;
	x->disabled_ms = h->disabled_ms;
	x->failing_ms = h->failing_ms;
	snprintf(x->why, sizeof(x->why), "%s", h->why ? h->why : "");
	snprintf(x->last_error, sizeof(x->last_error), "%s", h->last_error ? h->last_error : "");
	return 0;
}

static void test_hook_state(void **state)
{
	struct store *s = open_store();
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_hook(s, &(struct store_hook){ .name = "web", .failing_ms = 5, .last_error = "HTTP 503",
								  .last_error_ms = 6 }), 0);
	assert_int_equal(store_put_hook(s, &(struct store_hook){ .name = "web", .disabled_ms = 7, .why = "410",
								  .failing_ms = 5, .last_error = "HTTP 410", .last_error_ms = 7 }), 0);
	assert_int_equal(store_put_delivery(s, "evt_x", "web", "dead", 2, 0, "HTTP 410", 8), 0);
	assert_int_equal(store_put_delivery(s, "evt_y", "web", "done", 1, 0, NULL, 9), 0);
	assert_int_equal(store_commit(s), 0);
	store_close(s);
	s = open_store();
	struct hook_seen x = { 0 };
	assert_int_equal(store_each_hook(s, note_hook, &x), 0);
	assert_int_equal(x.n, 1);
	assert_int_equal(x.disabled_ms, 7);
	assert_int_equal(x.failing_ms, 5);
	assert_string_equal(x.why, "410");
	assert_string_equal(x.last_error, "HTTP 410");
	int64_t v;
	assert_int_equal(store_hook_count(s, "web", "dead", 0, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(store_hook_count(s, "web", "done", 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(store_hook_last(s, "web", "done", &v), 0);
	assert_int_equal(v, 9);
	assert_int_equal(store_hook_last(s, "other", "done", &v), 0);
	assert_int_equal(v, 0);
	store_close(s);
}

static void test_migrates_version_1(void **state)
{
	/* A database of the first version: jobs without the discovered and cancel columns, no hooks table. */
	char path[128];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/embedwatch.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
		"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES('schema','1');"
		"CREATE TABLE jobs(id TEXT PRIMARY KEY, batch TEXT, status INTEGER NOT NULL, added_ms INTEGER NOT NULL,"
		" updated_ms INTEGER NOT NULL, err_kind INTEGER NOT NULL DEFAULT 0, err_count INTEGER NOT NULL DEFAULT 0,"
		" snapshot TEXT) WITHOUT ROWID;"
		"INSERT INTO jobs(id, status, added_ms, updated_ms) VALUES('old-job', 1, 1, 1);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct store *s = open_store();
	int n = 0;
	assert_int_equal(store_each_job(s, count_jobs, &n), 0);
	assert_int_equal(n, 1);
	struct store_job j = { .id = "new-job", .status = 1, .discovered = 1, .cancel = 2 };
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_job(s, &j), 0);
	assert_int_equal(store_put_hook(s, &(struct store_hook){ .name = "h" }), 0);
	assert_int_equal(store_commit(s), 0);
	store_close(s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "2");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_and_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_oldest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_commit_keeps_committed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hook_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrates_version_1, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
