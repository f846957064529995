/*
 * The state store through store.h, on a real SQLite file in a temporary
 * directory, and (when EW_TEST_PG_URL names a PostgreSQL database, as
 * tests/integration/store_pg.sh does, with its password in PGPASSWORD) the
 * same cases but the SQLite-only ones on PostgreSQL, each on an empty schema: the schema is created (and a version-1 database migrated); one
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
#include <libpq-fe.h>
#include <sqlite3.h>
#include <uv.h>

#include "store.h"
#include "util.h"

static char dir[64];
static const char *pg_url;      /* the PostgreSQL round, or NULL */

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/ew-store-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (pg_url) {
		/* Every case starts from nothing, as on a fresh SQLite file. */
		PGconn *c = PQconnectdb(pg_url);
		assert_int_equal(PQstatus(c), CONNECTION_OK);
		PGresult *r = PQexec(c, "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public");
		assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
		PQfinish(c);
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void lease_got(int r, bool taken, const struct store_lease *l, void *arg)
{
	assert_int_equal(r, 0);
	*(bool *)arg = taken;
}

static struct store *open_store(void)
{
	struct store *s;
	char err[512];
	struct store_config c = { .loop = uv_default_loop(), .dir = dir, .url = pg_url };
	int r = store_open(&c, &s, err, sizeof(err));
	if (r < 0)
		fail_msg("store_open: %s", err);
	if (pg_url) {
		/* Only the lease's holder writes a shared state. */
		bool taken = false;
		store_lease_setup(s, "test:1:1", "test", 1, 10000);
		store_lease_take(s, lease_got, &taken);
		store_wait(s);
		assert_true(taken);
	}
	return s;
}

/* Closes a store: its libuv handles first (the loop's next turn frees them), then the rest. */
static void close_store(struct store *s)
{
	store_detach(s);
	uv_run(uv_default_loop(), UV_RUN_NOWAIT);     /* other stores of the case may still be open */
	store_close(s);
}

/*
 * The interface calls back when done (SQLite before returning); these wrappers
 * wait for it and return its result, passing each row on to the test's own
 * callback and argument.
 */
struct call {
	int r;
	void *fn;
	void *arg;
};

static void call_done(int r, void *arg)
{
	((struct call *)arg)->r = r;
}

static int call_wait(struct store *s, struct call *c)
{
	store_wait(s);
	return c->r;
}

static int store_commit(struct store *s)
{
	struct call c = { .r = 1 };
	store_commit_async(s, call_done, &c);
	return call_wait(s, &c);
}

static int job_row(const struct store_job *j, void *arg)
{
	struct call *c = arg;
	return ((int (*)(const struct store_job *, void *))c->fn)(j, c->arg);
}

static int each_job(struct store *s, int (*fn)(const struct store_job *, void *), void *arg)
{
	struct call c = { .r = 1, .fn = (void *)fn, .arg = arg };
	store_each_job(s, NULL, job_row, call_done, &c);
	return call_wait(s, &c);
}

static int delivery_row(const struct store_delivery *d, void *arg)
{
	struct call *c = arg;
	return ((int (*)(const struct store_delivery *, void *))c->fn)(d, c->arg);
}

static int each_pending(struct store *s, int (*fn)(const struct store_delivery *, void *), void *arg)
{
	struct call c = { .r = 1, .fn = (void *)fn, .arg = arg };
	store_each_pending(s, delivery_row, call_done, &c);
	return call_wait(s, &c);
}

static int each_delivery(struct store *s, const char *state, const char *hook, int64_t since,
			 int (*fn)(const struct store_delivery *, void *), void *arg)
{
	struct call c = { .r = 1, .fn = (void *)fn, .arg = arg };
	store_each_delivery(s, state, hook, since, delivery_row, call_done, &c);
	return call_wait(s, &c);
}

static int each_dead(struct store *s, const char *hook, int64_t since, const char *type,
		     int (*fn)(const struct store_delivery *, void *), void *arg)
{
	struct call c = { .r = 1, .fn = (void *)fn, .arg = arg };
	store_each_dead(s, hook, since, type, delivery_row, call_done, &c);
	return call_wait(s, &c);
}

static int hook_row(const struct store_hook *h, void *arg)
{
	struct call *c = arg;
	return ((int (*)(const struct store_hook *, void *))c->fn)(h, c->arg);
}

static int each_hook(struct store *s, int (*fn)(const struct store_hook *, void *), void *arg)
{
	struct call c = { .r = 1, .fn = (void *)fn, .arg = arg };
	store_each_hook(s, hook_row, call_done, &c);
	return call_wait(s, &c);
}

static void event_got(int r, const char *t, const char *su, const char *b, const char *p, void *arg)
{
	struct call *c = arg;
	c->r = r;
	if (r == 0)
		(*(int *)c->arg)++;
}

/* 0 and counts it in *n when the event exists, -ENOENT when not. */
static int get_event(struct store *s, const char *id, int *n)
{
	struct call c = { .r = 1, .arg = n };
	store_get_event(s, id, event_got, &c);
	return call_wait(s, &c);
}

struct stats_call {
	int r;
	struct store_hook_stats st;
};

static void stats_got(int r, const struct store_hook_stats *st, void *arg)
{
	struct stats_call *c = arg;
	c->r = r;
	if (st)
		c->st = *st;
}

static struct store_hook_stats hook_stats(struct store *s, const char *hook, int64_t since)
{
	struct stats_call c = { .r = 1 };
	store_hook_stats(s, hook, since, stats_got, &c);
	store_wait(s);
	assert_int_equal(c.r, 0);
	return c.st;
}

static int count_jobs(const struct store_job *j, void *arg)
{
	(void)j;
	(*(int *)arg)++;
	return 0;
}

/* Counts the jobs in the first int, and sums their kinds in the second. */
static int count_kinds(const struct store_job *j, void *arg)
{
	int *n = arg;
	n[0]++;
	n[1] += j->kind;
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
	assert_int_equal(store_put_event(s, id, "embed_job.complete", "job-1", "b", ts, "{}", NULL, 0, &is_new), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(is_new, want_new);
}

static void test_commit_and_restore(void **state)
{
	struct store *s = open_store();
	struct store_job j = { .id = "job-1", .batch = "b", .status = 3, .added_ms = 1, .updated_ms = 2 };
	struct store_job jb = { .id = "batch-1", .batch = "b", .status = 1, .added_ms = 1, .updated_ms = 2, .kind = 1 };
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_job(s, &j), 0);
	assert_int_equal(store_put_job(s, &jb), 0);     /* a batch job: its kind comes back */
	put_event(s, "evt_a", 100, true);
	put_event(s, "evt_a", 100, false);         /* the same id again: not new */
	assert_int_equal(store_put_delivery(s, "evt_a", "h1", "pending", 0, 100, NULL, 100), 0);
	assert_int_equal(store_commit(s), 0);
	/* A turn rolled back leaves nothing. */
	struct store_job j2 = { .id = "job-2", .status = 1 };
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_job(s, &j2), 0);
	store_rollback(s);
	close_store(s);

	s = open_store();
	int n[2] = { 0, 0 };
	assert_int_equal(each_job(s, count_kinds, n), 0);
	assert_int_equal(n[0], 2);
	assert_int_equal(n[1], 1);
	struct seen x = { .n = 0 };
	assert_int_equal(each_pending(s, note_delivery, &x), 0);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.ids[0], "evt_a/h1");
	close_store(s);
}

/* An event's delivery rows are written with it, and only when it is new: a re-detected event plans nothing again. */
static void test_event_with_its_deliveries(void **state)
{
	struct store *s = open_store();
	char *first[] = { "h1", "h2" }, *again[] = { "h3" };
	bool is_new = false;
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_event(s, "evt_p", "embed_job.complete", "job-1", NULL, 100, "{}", first, 2, &is_new), 0);
	assert_int_equal(store_commit(s), 0);
	assert_true(is_new);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_event(s, "evt_p", "embed_job.complete", "job-1", NULL, 200, "{}", again, 1, &is_new), 0);
	assert_int_equal(store_commit(s), 0);
	assert_false(is_new);
	struct seen x = { .n = 0 };
	assert_int_equal(each_pending(s, note_delivery, &x), 0);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.ids[0], "evt_p/h1");
	assert_string_equal(x.ids[1], "evt_p/h2");
	close_store(s);
}

static void test_pending_in_commit_order(void **state)
{
	struct store *s = open_store();
	/*
	 * Committed in this order, stamped 300, 100, 200 ms by the clocks of the
	 * hosts that detected them (one stepped back, or two hosts apart): restored
	 * in the order they were committed, never by those stamps.
	 */
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
	assert_int_equal(each_pending(s, note_delivery, &x), 0);
	assert_int_equal(x.n, 4);
	assert_string_equal(x.ids[0], "evt_c/h");
	assert_string_equal(x.ids[1], "evt_a/h");
	assert_string_equal(x.ids[2], "evt_b1/h");
	assert_string_equal(x.ids[3], "evt_b2/h");
	/* The listing is newest update first, and filters by hook and time. */
	struct seen l = { .n = 0 };
	assert_int_equal(each_delivery(s, NULL, "h", 850, note_delivery, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.ids[0], "evt_a/h");         /* updated at 900; the rest at 800 and 700 */
	l.n = 0;
	assert_int_equal(each_delivery(s, "pending", NULL, 0, note_delivery, &l), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.ids[0], "evt_a/h");
	assert_string_equal(l.ids[3], "evt_c/h");
	close_store(s);
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
	assert_int_equal(each_job(s, count_jobs, &n), 0);
	assert_int_equal(n, 2);
	close_store(s);
}

static void test_prune(void **state)
{
	struct store *s = open_store();
	bool n;
	assert_int_equal(store_begin(s), 0);
	/* Old events of jobs no longer watched: one with a dead delivery kept for replay, one done long ago. */
	assert_int_equal(store_put_event(s, "evt_dead", "embed_job.failed", "gone-1", NULL, 10, "{}", NULL, 0, &n), 0);
	assert_int_equal(store_put_delivery(s, "evt_dead", "h", "dead", 3, 0, "HTTP 500", 900), 0);
	assert_int_equal(store_put_event(s, "evt_done", "embed_job.complete", "gone-2", NULL, 10, "{}", NULL, 0, &n), 0);
	assert_int_equal(store_put_delivery(s, "evt_done", "h", "done", 1, 0, NULL, 20), 0);
	assert_int_equal(store_put_event(s, "evt_pend", "embed_job.complete", "gone-3", NULL, 10, "{}", NULL, 0, &n), 0);
	assert_int_equal(store_put_delivery(s, "evt_pend", "h", "pending", 1, 0, NULL, 20), 0);
	assert_int_equal(store_commit(s), 0);
	/* Jobs' events before 100 go; finished deliveries before 500 go. */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_prune(s, 100, 500), 0);
	assert_int_equal(store_commit(s), 0);
	int c = 0;
	assert_int_equal(get_event(s, "evt_dead", &c), 0);
	assert_int_equal(get_event(s, "evt_pend", &c), 0);
	assert_int_equal(get_event(s, "evt_done", &c), -ENOENT);
	assert_int_equal(c, 2);
	struct seen x = { .n = 0 };
	assert_int_equal(each_dead(s, "h", 0, NULL, note_delivery, &x), 0);
	assert_int_equal(x.n, 1);
	assert_int_equal(each_dead(s, "h", 901, NULL, note_delivery, &x), 0);
	assert_int_equal(x.n, 1);             /* died at 900: not since 901 */
	assert_int_equal(each_dead(s, NULL, 0, "embed_job.complete", note_delivery, &x), 0);
	assert_int_equal(x.n, 1);             /* of another type */
	close_store(s);
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
	close_store(s);
	s = open_store();
	struct hook_seen x = { 0 };
	assert_int_equal(each_hook(s, note_hook, &x), 0);
	assert_int_equal(x.n, 1);
	assert_int_equal(x.disabled_ms, 7);
	assert_int_equal(x.failing_ms, 5);
	assert_string_equal(x.why, "410");
	assert_string_equal(x.last_error, "HTTP 410");
	struct store_hook_stats st = hook_stats(s, "web", 10);
	assert_int_equal(st.dead, 1);
	assert_int_equal(st.done_since, 0);
	assert_int_equal(st.last_done_ms, 9);
	st = hook_stats(s, "web", 0);
	assert_int_equal(st.done_since, 1);
	st = hook_stats(s, "other", 0);
	assert_int_equal(st.last_done_ms, 0);
	close_store(s);
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
	int n[2] = { 0, 0 };
	assert_int_equal(each_job(s, count_kinds, n), 0);
	assert_int_equal(n[0], 1);
	assert_int_equal(n[1], 0);                      /* a row from before kinds is an embed job */
	struct store_job j = { .id = "new-job", .status = 1, .discovered = 1, .cancel = 2 };
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_job(s, &j), 0);
	assert_int_equal(store_put_hook(s, &(struct store_hook){ .name = "h" }), 0);
	assert_int_equal(store_commit(s), 0);
	close_store(s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "2");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* A database of a newer schema than this daemon knows is refused, named with both versions, and left as it was. */
static void test_newer_schema_refused(void **state)
{
	char path[128];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/embedwatch.db", dir);
	struct store *s = open_store();
	close_store(s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value='3' WHERE key='schema'; CREATE TABLE from_the_future(x);",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct store *t;
	char err[512];
	struct store_config c = { .loop = uv_default_loop(), .dir = dir };
	assert_true(store_open(&c, &t, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "newer embedwatchd"));
	assert_non_null(strstr(err, "schema version 3, this one knows 2"));
	/* Untouched: the version is still the newer one. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "3");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* A symlink planted at the database's name is refused, and what it points to is not written. */
static void test_symlinked_database_refused(void **state)
{
	char path[128], target[128];
	snprintf(path, sizeof(path), "%s/embedwatch.db", dir);
	snprintf(target, sizeof(target), "%s/elsewhere", dir);
	FILE *f = fopen(target, "w");
	assert_non_null(f);
	fputs("not a database\n", f);
	fclose(f);
	assert_int_equal(symlink(target, path), 0);
	struct store *t;
	char err[512];
	struct store_config c = { .loop = uv_default_loop(), .dir = dir };
	assert_true(store_open(&c, &t, err, sizeof(err)) < 0);
	char buf[64] = "";
	f = fopen(target, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "not a database\n");
	unlink(path);
	unlink(target);
}

/* PostgreSQL: a state of schema 1 (no job kinds) is migrated to 2; its jobs are embed jobs. */
static void pg_exec(const char *sql)
{
	PGconn *c = PQconnectdb(pg_url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

static void test_pg_migrates_version_1(void **state)
{
	struct store *s = open_store();
	close_store(s);
	pg_exec("ALTER TABLE jobs DROP COLUMN kind; UPDATE meta SET value = '1' WHERE key = 'schema';"
		"INSERT INTO jobs(id, status, added_ms, updated_ms) VALUES('old-job', 1, 1, 1)");
	s = open_store();
	int n[2] = { 0, 0 };
	assert_int_equal(each_job(s, count_kinds, n), 0);
	assert_int_equal(n[0], 1);
	assert_int_equal(n[1], 0);                      /* a row from before kinds is an embed job */
	struct store_job j = { .id = "new-batch", .status = 1, .kind = 1 };
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_put_job(s, &j), 0);
	assert_int_equal(store_commit(s), 0);
	n[0] = n[1] = 0;
	assert_int_equal(each_job(s, count_kinds, n), 0);
	assert_int_equal(n[0], 2);
	assert_int_equal(n[1], 1);
	close_store(s);
	/* The version says 3 now; a newer one than this daemon knows is refused. */
	pg_exec("DO $$ BEGIN IF (SELECT value FROM meta WHERE key = 'schema') <> '3' THEN "
		"RAISE EXCEPTION 'schema not migrated'; END IF; END $$");
	pg_exec("UPDATE meta SET value = '99' WHERE key = 'schema'");
	struct store *t;
	char err[512];
	struct store_config c = { .loop = uv_default_loop(), .dir = dir, .url = pg_url };
	assert_true(store_open(&c, &t, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "newer embedwatchd"));
	assert_non_null(strstr(err, "schema version 99, this one knows 3"));
}

/* ---- PostgreSQL only: the lease ---- */

struct take {
	int r;
	bool taken;
	char holder[64];
};

static void take_got(int r, bool taken, const struct store_lease *l, void *arg)
{
	struct take *t = arg;
	t->r = r;
	t->taken = taken;
	snprintf(t->holder, sizeof(t->holder), "%s", l && l->holder ? l->holder : "");
}

static struct take take_lease(struct store *s)
{
	struct take t = { .r = 1 };
	store_lease_take(s, take_got, &t);
	store_wait(s);
	assert_int_equal(t.r, 0);
	return t;
}

static int commit_one_job(struct store *s, const char *id)
{
	struct store_job j = { .id = id, .status = 1 };
	int r = store_begin(s);
	if (r < 0)
		return r;
	assert_int_equal(store_put_job(s, &j), 0);
	return store_commit(s);
}

static struct store *open_as(const char *holder, uint64_t ttl_ms)
{
	struct store *s;
	char err[512];
	struct store_config c = { .loop = uv_default_loop(), .url = pg_url };
	if (store_open(&c, &s, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	store_lease_setup(s, holder, "test", 1, ttl_ms);
	return s;
}

/*
 * One holder at a time: a second daemon cannot take a live lease; it takes it
 * at once when the holder's session ends, and after the ttl when the holder
 * stops renewing; the old holder's next commit is then fenced (nothing of it
 * is written) and its lease dropped.
 */
static void test_lease(void **state)
{
	/* a's lease outlives the case: b can take it only because a's session ends. */
	struct store *a = open_as("a:1:1", 600000), *b = open_as("b:2:2", 1000);
	assert_true(take_lease(a).taken);
	assert_true(store_lease_held(a) && store_lease_fresh(a));
	struct take t = take_lease(b);
	assert_false(t.taken);
	assert_string_equal(t.holder, "a:1:1");
	assert_false(store_lease_held(b));
	assert_int_equal(commit_one_job(b, "from-b"), -ESTALE);     /* a standby does not write */
	assert_int_equal(commit_one_job(a, "from-a"), 0);
	/* a's session ends (kill -9): b takes over without waiting for the ttl (once the server has seen it end). */
	close_store(a);
	uint64_t until = util_mono_ms() + 30000;
	while (!take_lease(b).taken && util_mono_ms() < until)
		usleep(20 * 1000);
	assert_true(store_lease_held(b));
	int64_t epoch = store_lease_epoch(b);
	/* b stops renewing (SIGSTOP, a partition): once its lease has expired, a new daemon takes it. */
	struct store *c = open_as("c:3:3", 1000);
	until = util_mono_ms() + 30000;
	while (!(t = take_lease(c)).taken && util_mono_ms() < until)
		usleep(50 * 1000);
	assert_true(t.taken);
	assert_int_equal(store_lease_epoch(c), epoch + 1);
	/*
	 * b, back: c ended b's sessions when it took the lease, so b's first
	 * commit may find its connection gone; once made again: fenced. Its commit
	 * writes nothing, and it knows it no longer holds the lease.
	 */
	int r;
	until = util_mono_ms() + 30000;
	while (((r = commit_one_job(b, "late-b")) == -ECONNRESET || r == -ENOTCONN) && util_mono_ms() < until) {
		uv_run(uv_default_loop(), UV_RUN_NOWAIT);
		usleep(20 * 1000);
	}
	assert_int_equal(r, -ESTALE);
	assert_false(store_lease_held(b));
	int n = 0;
	assert_int_equal(each_job(c, count_jobs, &n), 0);
	assert_int_equal(n, 1);         /* from-a only */
	assert_int_equal(commit_one_job(c, "from-c"), 0);
	close_store(b);
	close_store(c);
}

int main(void)
{
	const struct CMUnitTest both[] = {
		cmocka_unit_test_setup_teardown(test_commit_and_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_with_its_deliveries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_in_commit_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hook_state, setup, teardown),
	};
	const struct CMUnitTest sqlite_only[] = {
		cmocka_unit_test_setup_teardown(test_busy_commit_keeps_committed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrates_version_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinked_database_refused, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("sqlite", both, NULL, NULL);
	failed += cmocka_run_group_tests_name("sqlite only", sqlite_only, NULL, NULL);
	pg_url = getenv("EW_TEST_PG_URL");
	if (pg_url && *pg_url) {
		printf("the same cases on PostgreSQL\n");
		failed += cmocka_run_group_tests_name("postgresql", both, NULL, NULL);
		const struct CMUnitTest pg_only[] = {
			cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
			cmocka_unit_test_setup_teardown(test_pg_migrates_version_1, setup, teardown),
		};
		failed += cmocka_run_group_tests_name("postgresql only", pg_only, NULL, NULL);
	}
	return failed;
}
