/*
 * The SQLite backend (WAL) in the state directory: one daemon, always active.
 * Every write runs at once inside BEGIN IMMEDIATE; the commit and every read
 * call back before they return.
 */
#include "store_int.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

enum {
	Q_PUT_JOB, Q_PUT_SNAPSHOT, Q_DEL_JOB, Q_PUT_EVENT, Q_PUT_DELIVERY, Q_PUT_BATCH,
	Q_EACH_JOB, Q_EACH_DELIVERY, Q_EACH_DELIVERY_STATE, Q_EACH_PENDING, Q_GET_EVENT,
	Q_EACH_BATCH, Q_GET_SNAPSHOT, Q_JOB_EVENTS, Q_PRUNE_DELIVERIES, Q_PRUNE_EVENTS, Q_PRUNE_BATCHES,
	Q_PUT_HOOK, Q_EACH_HOOK, Q_HOOK_COUNT, Q_HOOK_LAST, Q_EACH_DEAD, Q_GET_JOB, Q_EACH_JOB_BATCH, Q_PUT_META, Q_GET_META, Q__MAX
};

/* A delivery row with its event, in the column order delivery_row() reads. */
#define DELIVERY_SELECT \
	"SELECT d.event_id, d.hook, d.state, d.attempts, d.next_ms, d.last_error, d.updated_ms, " \
	"e.type, e.subject, e.batch, e.payload FROM deliveries d JOIN events e ON e.id=d.event_id "

/* A job row, in the column order job_row() reads. */
#define JOB_SELECT "SELECT id, batch, status, added_ms, updated_ms, err_kind, err_count, discovered, cancel, kind FROM jobs"

static const char *const queries[Q__MAX] = {
	[Q_PUT_JOB] = "INSERT INTO jobs(id, batch, status, added_ms, updated_ms, err_kind, err_count, discovered, cancel, kind) "
		      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) ON CONFLICT(id) DO UPDATE SET batch=?2, status=?3, "
		      "updated_ms=?5, err_kind=?6, err_count=?7, discovered=?8, cancel=?9, kind=?10",
	[Q_PUT_SNAPSHOT] = "UPDATE jobs SET snapshot=?2 WHERE id=?1",
	[Q_DEL_JOB] = "DELETE FROM jobs WHERE id=?1",
	[Q_PUT_EVENT] = "INSERT OR IGNORE INTO events(id, type, subject, batch, ts_ms, payload) VALUES(?1,?2,?3,?4,?5,?6)",
	[Q_PUT_DELIVERY] = "INSERT INTO deliveries(event_id, hook, state, attempts, next_ms, last_error, updated_ms) "
			   "VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(event_id, hook) DO UPDATE SET state=?3, "
			   "attempts=?4, next_ms=?5, last_error=?6, updated_ms=?7",
	[Q_PUT_BATCH] = "INSERT INTO batches(name, created_ms, done_event) VALUES(?1,?2,?3) "
			"ON CONFLICT(name) DO UPDATE SET done_event=coalesce(?3, done_event)",
	[Q_EACH_JOB] = JOB_SELECT,
	[Q_GET_JOB] = JOB_SELECT " WHERE id=?1",
	[Q_EACH_JOB_BATCH] = JOB_SELECT " WHERE batch=?1",
	/* One row past the 10,000 the control socket shows: it says "truncated". */
	[Q_EACH_DELIVERY] = DELIVERY_SELECT "WHERE d.updated_ms >= ?2 AND (?3 IS NULL OR d.hook=?3) "
			    "ORDER BY d.updated_ms DESC LIMIT 10001",
	[Q_EACH_DELIVERY_STATE] = DELIVERY_SELECT "WHERE d.state=?1 AND d.updated_ms >= ?2 AND (?3 IS NULL OR d.hook=?3) "
				  "ORDER BY d.updated_ms DESC LIMIT 10001",
	/*
	 * The order the events were committed in (rowid: a new row's is above every
	 * row's there), never the clock that stamped them: cancelling before
	 * cancelled, members before batch.done, across a wall clock stepped back.
	 */
	[Q_EACH_PENDING] = DELIVERY_SELECT "WHERE d.state='pending' ORDER BY e.rowid, d.hook",
	[Q_GET_EVENT] = "SELECT type, subject, batch, payload FROM events WHERE id=?1",
	[Q_EACH_BATCH] = "SELECT name, done_event FROM batches",
	[Q_GET_SNAPSHOT] = "SELECT snapshot FROM jobs WHERE id=?1",
	[Q_JOB_EVENTS] = "SELECT id, type, ts_ms FROM events WHERE subject=?1 ORDER BY rowid",
	[Q_PRUNE_DELIVERIES] = "DELETE FROM deliveries WHERE state != 'pending' AND updated_ms < ?1",
	/* An event stays while a delivery row (pending, or kept for the log and replay) or its job needs it. */
	[Q_PRUNE_EVENTS] = "DELETE FROM events WHERE ts_ms < ?1 AND id NOT IN (SELECT event_id FROM deliveries) "
			   "AND subject NOT IN (SELECT id FROM jobs)",
	[Q_PRUNE_BATCHES] = "DELETE FROM batches WHERE done_event IS NOT NULL AND name NOT IN "
			    "(SELECT batch FROM jobs WHERE batch IS NOT NULL)",
	[Q_PUT_HOOK] = "INSERT INTO hooks(name, disabled_ms, why, failing_ms, last_error, last_error_ms) "
		       "VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(name) DO UPDATE SET disabled_ms=?2, why=?3, "
		       "failing_ms=?4, last_error=?5, last_error_ms=?6",
	/* The daemon's own values ("d." keys: apart from the schema's). */
	[Q_PUT_META] = "INSERT INTO meta(key, value) VALUES('d.' || ?1, ?2) ON CONFLICT(key) DO UPDATE SET value=?2",
	[Q_GET_META] = "SELECT value FROM meta WHERE key='d.' || ?1",
	[Q_EACH_HOOK] = "SELECT name, disabled_ms, why, failing_ms, last_error, last_error_ms FROM hooks",
	[Q_HOOK_COUNT] = "SELECT count(*) FROM deliveries WHERE hook=?1 AND state=?2 AND updated_ms >= ?3",
	[Q_HOOK_LAST] = "SELECT max(updated_ms) FROM deliveries WHERE hook=?1 AND state=?2",
	[Q_EACH_DEAD] = DELIVERY_SELECT "WHERE d.state='dead' AND (?1 IS NULL OR d.hook=?1) AND d.updated_ms >= ?2 "
			"AND (?3 IS NULL OR e.type=?3) ORDER BY e.rowid",
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	"PRAGMA foreign_keys=OFF;"
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	"INSERT OR IGNORE INTO meta VALUES('schema', '1');"
	"CREATE TABLE IF NOT EXISTS jobs(id TEXT PRIMARY KEY, batch TEXT, status INTEGER NOT NULL,"
	" added_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, err_kind INTEGER NOT NULL DEFAULT 0,"
	" err_count INTEGER NOT NULL DEFAULT 0, snapshot TEXT, discovered INTEGER NOT NULL DEFAULT 0,"
	" cancel INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS events(id TEXT PRIMARY KEY, type TEXT NOT NULL, subject TEXT NOT NULL,"
	" batch TEXT, ts_ms INTEGER NOT NULL, payload TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS events_subject ON events(subject);"
	"CREATE TABLE IF NOT EXISTS deliveries(event_id TEXT NOT NULL, hook TEXT NOT NULL, state TEXT NOT NULL,"
	" attempts INTEGER NOT NULL, next_ms INTEGER NOT NULL, last_error TEXT, updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY(event_id, hook));"
	"CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(state);"
	"CREATE TABLE IF NOT EXISTS batches(name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, done_event TEXT);"
	/* Version 2: the hooks' breaker state, and an index for per-hook counts. */
	"CREATE TABLE IF NOT EXISTS hooks(name TEXT PRIMARY KEY, disabled_ms INTEGER NOT NULL DEFAULT 0, why TEXT,"
	" failing_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_error_ms INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS deliveries_hook ON deliveries(hook, state, updated_ms);"
	"UPDATE meta SET value='2' WHERE key='schema' AND value < '2';";

struct sq {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *q[Q__MAX];
	sqlite3_stmt *begin, *commit, *rollback;
	char desc[4200];
};

static struct sq *sq_of(struct store *s)
{
	return container_of(s, struct sq, base);
}

static const char *sq_error(struct store *s)
{
	return sqlite3_errmsg(sq_of(s)->db);
}

static const char *sq_describe(struct store *s)
{
	return sq_of(s)->desc;
}

static bool sq_busy(struct store *s)
{
	return false;       /* everything has called back before returning */
}

static void sq_wait(struct store *s)
{
}

static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return -EACCES;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static void sq_close(struct store *s)
{
	struct sq *q = sq_of(s);
	for (int i = 0; i < Q__MAX; i++)
		sqlite3_finalize(q->q[i]);
	sqlite3_finalize(q->begin);
	sqlite3_finalize(q->commit);
	sqlite3_finalize(q->rollback);
	sqlite3_close(q->db);
	free(q);
}

static int step(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : map_rc(rc);
}

static int sq_begin(struct store *s)
{
	return step(sq_of(s)->begin);
}

static void sq_commit_async(struct store *s, store_done_fn *done, void *arg)
{
	done(step(sq_of(s)->commit), arg);
}

static void sq_rollback(struct store *s)
{
	struct sq *q = sq_of(s);
	if (!sqlite3_get_autocommit(q->db))
		step(q->rollback);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int sq_put_job(struct store *s, const struct store_job *j)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_PUT_JOB];
	bind_text(st, 1, j->id);
	bind_text(st, 2, j->batch);
	sqlite3_bind_int(st, 3, j->status);
	sqlite3_bind_int64(st, 4, j->added_ms);
	sqlite3_bind_int64(st, 5, j->updated_ms);
	sqlite3_bind_int(st, 6, j->err_kind);
	sqlite3_bind_int(st, 7, j->err_count);
	sqlite3_bind_int(st, 8, j->discovered);
	sqlite3_bind_int(st, 9, j->cancel);
	sqlite3_bind_int(st, 10, j->kind);
	return step(st);
}

static int sq_put_snapshot(struct store *s, const char *job_id, const char *json)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_PUT_SNAPSHOT];
	bind_text(st, 1, job_id);
	bind_text(st, 2, json);
	return step(st);
}

static int sq_delete_job(struct store *s, const char *job_id)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_DEL_JOB];
	bind_text(st, 1, job_id);
	return step(st);
}

static int sq_put_delivery(struct store *s, const char *event_id, const char *hook, const char *state,
			   unsigned attempts, int64_t next_ms, const char *last_error, int64_t updated_ms)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_PUT_DELIVERY];
	bind_text(st, 1, event_id);
	bind_text(st, 2, hook);
	bind_text(st, 3, state);
	sqlite3_bind_int(st, 4, (int)attempts);
	sqlite3_bind_int64(st, 5, next_ms);
	bind_text(st, 6, last_error);
	sqlite3_bind_int64(st, 7, updated_ms);
	return step(st);
}

static int sq_put_event(struct store *s, const char *id, const char *type, const char *subject, const char *batch,
			int64_t ts_ms, const char *payload, char *const *hooks, size_t n_hooks, bool *ret_new)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->q[Q_PUT_EVENT];
	bind_text(st, 1, id);
	bind_text(st, 2, type);
	bind_text(st, 3, subject);
	bind_text(st, 4, batch);
	sqlite3_bind_int64(st, 5, ts_ms);
	bind_text(st, 6, payload);
	int r = step(st);
	*ret_new = r == 0 && sqlite3_changes(q->db) > 0;
	/* The event and its delivery rows are durable together, before any attempt. */
	for (size_t h = 0; *ret_new && r == 0 && h < n_hooks; h++)
		r = sq_put_delivery(s, id, hooks[h], "pending", 0, ts_ms, NULL, ts_ms);
	return r;
}

static int sq_put_batch(struct store *s, const char *name, int64_t created_ms, const char *done_event)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_PUT_BATCH];
	bind_text(st, 1, name);
	sqlite3_bind_int64(st, 2, created_ms);
	bind_text(st, 3, done_event);
	return step(st);
}

static int sq_prune(struct store *s, int64_t before_ms, int64_t deliveries_before_ms)
{
	struct sq *q = sq_of(s);
	int r;
	sqlite3_bind_int64(q->q[Q_PRUNE_DELIVERIES], 1, deliveries_before_ms);
	if ((r = step(q->q[Q_PRUNE_DELIVERIES])) < 0)
		return r;
	sqlite3_bind_int64(q->q[Q_PRUNE_EVENTS], 1, before_ms);
	if ((r = step(q->q[Q_PRUNE_EVENTS])) < 0)
		return r;
	return step(q->q[Q_PRUNE_BATCHES]);
}

static int sq_put_hook(struct store *s, const struct store_hook *h)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_PUT_HOOK];
	bind_text(st, 1, h->name);
	sqlite3_bind_int64(st, 2, h->disabled_ms);
	bind_text(st, 3, h->why);
	sqlite3_bind_int64(st, 4, h->failing_ms);
	bind_text(st, 5, h->last_error);
	sqlite3_bind_int64(st, 6, h->last_error_ms);
	return step(st);
}

static int sq_put_meta(struct store *s, const char *key, const char *value)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_PUT_META];
	bind_text(st, 1, key);
	bind_text(st, 2, value);
	return step(st);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* Runs a query row by row; stops early when fn returns non-zero. Returns 0 or a negative errno. */
static int each(sqlite3_stmt *st, int (*row)(sqlite3_stmt *st, void *fn, void *arg), void *fn, void *arg)
{
	int rc, r = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = row(st, fn, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = map_rc(rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r < 0 ? r : 0;
}

static int job_row(sqlite3_stmt *st, void *fn, void *arg)
{
	struct store_job j = {
		.id = col_text(st, 0), .batch = col_text(st, 1), .status = sqlite3_column_int(st, 2),
		.added_ms = sqlite3_column_int64(st, 3), .updated_ms = sqlite3_column_int64(st, 4),
		.err_kind = sqlite3_column_int(st, 5), .err_count = sqlite3_column_int(st, 6),
		.discovered = sqlite3_column_int(st, 7), .cancel = sqlite3_column_int(st, 8),
		.kind = sqlite3_column_int(st, 9),
	};
	return ((int (*)(const struct store_job *, void *))fn)(&j, arg);
}

static void sq_each_job(struct store *s, const struct store_job_filter *f, int (*fn)(const struct store_job *, void *),
			store_done_fn *done, void *arg)
{
	struct sq *q = sq_of(s);
	int r = 0;
	if (f && f->ids) {
		for (size_t i = 0; r == 0 && i < f->n_ids; i++) {
			bind_text(q->q[Q_GET_JOB], 1, f->ids[i]);
			r = each(q->q[Q_GET_JOB], job_row, (void *)fn, arg);
		}
	} else if (f && f->batch) {
		bind_text(q->q[Q_EACH_JOB_BATCH], 1, f->batch);
		r = each(q->q[Q_EACH_JOB_BATCH], job_row, (void *)fn, arg);
	} else {
		r = each(q->q[Q_EACH_JOB], job_row, (void *)fn, arg);
	}
	done(r, arg);
}

static int delivery_row(sqlite3_stmt *st, void *fn, void *arg)
{
	struct store_delivery d = {
		.event_id = col_text(st, 0), .hook = col_text(st, 1), .state = col_text(st, 2),
		.attempts = (unsigned)sqlite3_column_int(st, 3), .next_ms = sqlite3_column_int64(st, 4),
		.last_error = col_text(st, 5), .updated_ms = sqlite3_column_int64(st, 6),
		.type = col_text(st, 7), .subject = col_text(st, 8), .batch = col_text(st, 9),
		.payload = col_text(st, 10),
	};
	return ((int (*)(const struct store_delivery *, void *))fn)(&d, arg);
}

static void sq_each_delivery(struct store *s, const char *state, const char *hook, int64_t since_ms,
			     int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	sqlite3_stmt *st = sq_of(s)->q[state ? Q_EACH_DELIVERY_STATE : Q_EACH_DELIVERY];
	if (state)
		bind_text(st, 1, state);
	sqlite3_bind_int64(st, 2, since_ms);
	bind_text(st, 3, hook);
	done(each(st, delivery_row, (void *)fn, arg), arg);
}

static void sq_each_dead(struct store *s, const char *hook, int64_t since_ms, const char *type,
			 int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_EACH_DEAD];
	bind_text(st, 1, hook);
	sqlite3_bind_int64(st, 2, since_ms);
	bind_text(st, 3, type);
	done(each(st, delivery_row, (void *)fn, arg), arg);
}

static void sq_each_pending(struct store *s, int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	done(each(sq_of(s)->q[Q_EACH_PENDING], delivery_row, (void *)fn, arg), arg);
}

static int hook_row(sqlite3_stmt *st, void *fn, void *arg)
{
	struct store_hook h = {
		.name = col_text(st, 0), .disabled_ms = sqlite3_column_int64(st, 1), .why = col_text(st, 2),
		.failing_ms = sqlite3_column_int64(st, 3), .last_error = col_text(st, 4),
		.last_error_ms = sqlite3_column_int64(st, 5),
	};
	return ((int (*)(const struct store_hook *, void *))fn)(&h, arg);
}

static void sq_each_hook(struct store *s, int (*fn)(const struct store_hook *, void *), store_done_fn *done, void *arg)
{
	done(each(sq_of(s)->q[Q_EACH_HOOK], hook_row, (void *)fn, arg), arg);
}

/* Runs a one-value query bound with (hook, state[, since]); the value in *ret (0 when NULL). */
static int one_value(sqlite3_stmt *st, const char *hook, const char *state, int64_t *ret)
{
	bind_text(st, 1, hook);
	bind_text(st, 2, state);
	int rc = sqlite3_step(st);
	*ret = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	int r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_rc(rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static void sq_hook_stats(struct store *s, const char *hook, int64_t since_ms,
			  void (*done)(int, const struct store_hook_stats *, void *), void *arg)
{
	struct sq *q = sq_of(s);
	struct store_hook_stats st = { 0 };
	int r;
	sqlite3_bind_int64(q->q[Q_HOOK_COUNT], 3, 0);
	r = one_value(q->q[Q_HOOK_COUNT], hook, "pending", &st.pending);
	sqlite3_bind_int64(q->q[Q_HOOK_COUNT], 3, 0);
	if (r == 0 && (r = one_value(q->q[Q_HOOK_COUNT], hook, "dead", &st.dead)) == 0) {
		sqlite3_bind_int64(q->q[Q_HOOK_COUNT], 3, since_ms);
		if ((r = one_value(q->q[Q_HOOK_COUNT], hook, "done", &st.done_since)) == 0)
			r = one_value(q->q[Q_HOOK_LAST], hook, "done", &st.last_done_ms);
	}
	done(r, r == 0 ? &st : NULL, arg);
}

static void sq_get_event(struct store *s, const char *event_id,
			 void (*done)(int, const char *, const char *, const char *, const char *, void *), void *arg)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_GET_EVENT];
	bind_text(st, 1, event_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		done(0, col_text(st, 0), col_text(st, 1), col_text(st, 2), col_text(st, 3), arg);
	else
		done(rc == SQLITE_DONE ? -ENOENT : map_rc(rc), NULL, NULL, NULL, NULL, arg);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int batch_row(sqlite3_stmt *st, void *fn, void *arg)
{
	return ((int (*)(const char *, const char *, void *))fn)(col_text(st, 0), col_text(st, 1), arg);
}

static void sq_each_batch(struct store *s, int (*fn)(const char *, const char *, void *), store_done_fn *done, void *arg)
{
	done(each(sq_of(s)->q[Q_EACH_BATCH], batch_row, (void *)fn, arg), arg);
}

static void sq_get_snapshot(struct store *s, const char *job_id, void (*done)(int, const char *, void *), void *arg)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_GET_SNAPSHOT];
	bind_text(st, 1, job_id);
	int rc = sqlite3_step(st);
	done(rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_rc(rc), rc == SQLITE_ROW ? col_text(st, 0) : NULL, arg);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static void sq_get_meta(struct store *s, const char *key, void (*done)(int, const char *, void *), void *arg)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_GET_META];
	bind_text(st, 1, key);
	int rc = sqlite3_step(st);
	done(rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_rc(rc), rc == SQLITE_ROW ? col_text(st, 0) : NULL, arg);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int event_row(sqlite3_stmt *st, void *fn, void *arg)
{
	return ((int (*)(const char *, const char *, int64_t, void *))fn)(col_text(st, 0), col_text(st, 1),
									  sqlite3_column_int64(st, 2), arg);
}

static void sq_job_events(struct store *s, const char *job_id, int (*fn)(const char *, const char *, int64_t, void *),
			  store_done_fn *done, void *arg)
{
	sqlite3_stmt *st = sq_of(s)->q[Q_JOB_EVENTS];
	bind_text(st, 1, job_id);
	done(each(st, event_row, (void *)fn, arg), arg);
}

static const struct store_ops sq_ops = {
	.close = sq_close, .error = sq_error, .describe = sq_describe, .busy = sq_busy, .wait = sq_wait,
	.begin = sq_begin, .commit_async = sq_commit_async, .rollback = sq_rollback,
	.put_job = sq_put_job, .put_snapshot = sq_put_snapshot, .delete_job = sq_delete_job, .put_event = sq_put_event,
	.put_delivery = sq_put_delivery, .put_batch = sq_put_batch, .prune = sq_prune, .put_hook = sq_put_hook,
	.each_job = sq_each_job, .each_delivery = sq_each_delivery, .each_dead = sq_each_dead,
	.each_pending = sq_each_pending, .each_hook = sq_each_hook, .hook_stats = sq_hook_stats,
	.get_event = sq_get_event, .each_batch = sq_each_batch, .get_snapshot = sq_get_snapshot, .put_meta = sq_put_meta, .get_meta = sq_get_meta,
	.job_events = sq_job_events,
};

/* The schema version this daemon writes; a database of a newer one is refused, not changed. */
#define SQ_SCHEMA 2

/* SQLITE_OK, or an error with *ret_msg (sqlite3_malloc'd) when the database says a newer schema version. */
static int check_version(struct sq *s, char **ret_msg)
{
	sqlite3_stmt *st;
	int version = 0;
	/* A new database, or one of before the meta table, has no version: it is created or migrated. */
	if (sqlite3_prepare_v2(s->db, "SELECT CAST(value AS INTEGER) FROM meta WHERE key='schema'", -1, &st, NULL) != SQLITE_OK)
		return SQLITE_OK;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rc;
	if (version <= SQ_SCHEMA)
		return SQLITE_OK;
	*ret_msg = sqlite3_mprintf("the state was written by a newer embedwatchd (schema version %d, this one knows %d); "
				   "upgrade this one", version, SQ_SCHEMA);
	return SQLITE_ERROR;
}

int store_sqlite_open(const struct store_config *c, struct store **ret, char *err, size_t errlen)
{
	const char *dir = c->dir;
	char path[4096];
	struct sq *s;
	char *emsg = NULL;
	int rc;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "state directory %s: cannot create: %s", dir, strerror(e));
		return -e;
	}
	snprintf(path, sizeof(path), "%s/embedwatch.db", dir);
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &sq_ops;
	snprintf(s->desc, sizeof(s->desc), "SQLite %s", path);
	/* NOFOLLOW: a symlink planted at the database's name is refused, not written through. */
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
			     SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	/* Short: the wait runs on the loop thread; a busy database is a failed commit, retried with backoff. */
	sqlite3_busy_timeout(s->db, 200);
	if ((rc = check_version(s, &emsg)) != SQLITE_OK)
		goto fail;
	rc = sqlite3_exec(s->db, schema, NULL, NULL, &emsg);
	if (rc != SQLITE_OK)
		goto fail;
	/* Databases of the first version: add the columns (an error just means they are there). */
	sqlite3_exec(s->db, "ALTER TABLE jobs ADD COLUMN discovered INTEGER NOT NULL DEFAULT 0", NULL, NULL, NULL);
	sqlite3_exec(s->db, "ALTER TABLE jobs ADD COLUMN cancel INTEGER NOT NULL DEFAULT 0", NULL, NULL, NULL);
	/* The job's kind (0 embed-job, 1 batch-job); rows from before are embed jobs. */
	sqlite3_exec(s->db, "ALTER TABLE jobs ADD COLUMN kind INTEGER NOT NULL DEFAULT 0", NULL, NULL, NULL);
	for (int i = 0; i < Q__MAX; i++) {
		rc = sqlite3_prepare_v3(s->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if ((rc = sqlite3_prepare_v2(s->db, "BEGIN IMMEDIATE", -1, &s->begin, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, "ROLLBACK", -1, &s->rollback, NULL)) != SQLITE_OK)
		goto fail;
	*ret = &s->base;
	return 0;
fail:
	snprintf(err, errlen, "state database %s: %s", path, emsg ? emsg : (s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc)));
	sqlite3_free(emsg);
	int r = map_rc(rc);
	sq_close(&s->base);
	return r ? r : -EIO;
}
