/*
 * The PostgreSQL backend: a state several daemons share. Here its statements
 * (one table, prepared on each connection), the schema, the writes and reads
 * behind the store's ops, and open and close. A commit is one implicit
 * transaction (its statements, then a Sync: all or nothing); each read is its
 * own. The connections are store_pg_conn.c's, the lease store_pg_lease.c's.
 */
#include "store_pg_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* The schema version this daemon writes; a database of a newer one is refused. */
#define PG_SCHEMA 3
/* The advisory-lock space of embedwatch ("ew"): (PG_LOCK, 0) guards the schema, (PG_LOCK, epoch) is the active's. */
#define PG_LOCK 0x6577

#define JOB_SELECT "SELECT id, batch, status, added_ms, updated_ms, err_kind, err_count, discovered, cancel, kind FROM jobs"
/* A delivery row with its event, in the column order delivery_row() reads. */
#define DELIVERY_SELECT \
	"SELECT d.event_id, d.hook, d.state, d.attempts, d.next_ms, d.last_error, d.updated_ms, " \
	"e.type, e.subject, e.batch, e.payload FROM deliveries d JOIN events e ON e.id=d.event_id "

/* Every statement, prepared on each connection (named "q<index>"); parameters are text. */
const char *const store_pg_queries[Q__MAX] = {
	[Q_PUT_JOB] = "INSERT INTO jobs(id, batch, status, added_ms, updated_ms, err_kind, err_count, discovered, cancel, kind) "
		      "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT(id) DO UPDATE SET batch=$2, status=$3, "
		      "updated_ms=$5, err_kind=$6, err_count=$7, discovered=$8, cancel=$9, kind=$10",
	[Q_PUT_SNAPSHOT] = "UPDATE jobs SET snapshot=$2 WHERE id=$1",
	[Q_DEL_JOB] = "DELETE FROM jobs WHERE id=$1",
	/* The event, and only when it is new its pending deliveries; the answer says whether it was. */
	[Q_PUT_EVENT] = "WITH e AS (INSERT INTO events(id, type, subject, batch, ts_ms, payload) VALUES($1,$2,$3,$4,$5::bigint,$6) "
			"ON CONFLICT(id) DO NOTHING RETURNING id), "
			"d AS (INSERT INTO deliveries(event_id, hook, state, attempts, next_ms, last_error, updated_ms) "
			"SELECT e.id, h, 'pending', 0, $5::bigint, NULL, $5::bigint FROM e, unnest($7::text[]) AS h "
			"ON CONFLICT(event_id, hook) DO NOTHING RETURNING 1) SELECT count(*) FROM e",
	[Q_PUT_DELIVERY] = "INSERT INTO deliveries(event_id, hook, state, attempts, next_ms, last_error, updated_ms) "
			   "VALUES($1,$2,$3,$4,$5,$6,$7) ON CONFLICT(event_id, hook) DO UPDATE SET state=$3, "
			   "attempts=$4, next_ms=$5, last_error=$6, updated_ms=$7",
	[Q_PUT_BATCH] = "INSERT INTO batches(name, created_ms, done_event) VALUES($1,$2,$3) "
			"ON CONFLICT(name) DO UPDATE SET done_event=coalesce(EXCLUDED.done_event, batches.done_event)",
	[Q_PRUNE_DELIVERIES] = "DELETE FROM deliveries WHERE state <> 'pending' AND updated_ms < $1",
	/* An event stays while a delivery row (pending, or kept for the log and replay) or its job needs it. */
	[Q_PRUNE_EVENTS] = "DELETE FROM events WHERE ts_ms < $1 AND id NOT IN (SELECT event_id FROM deliveries) "
			   "AND subject NOT IN (SELECT id FROM jobs)",
	[Q_PRUNE_BATCHES] = "DELETE FROM batches WHERE done_event IS NOT NULL AND name NOT IN "
			    "(SELECT batch FROM jobs WHERE batch IS NOT NULL)",
	[Q_PUT_HOOK] = "INSERT INTO hooks(name, disabled_ms, why, failing_ms, last_error, last_error_ms) "
		       "VALUES($1,$2,$3,$4,$5,$6) ON CONFLICT(name) DO UPDATE SET disabled_ms=$2, why=$3, "
		       "failing_ms=$4, last_error=$5, last_error_ms=$6",
	[Q_EACH_JOB] = JOB_SELECT,
	[Q_GET_JOBS] = JOB_SELECT " WHERE id = ANY($1::text[])",
	[Q_EACH_JOB_BATCH] = JOB_SELECT " WHERE batch=$1",
	[Q_EACH_DELIVERY] = DELIVERY_SELECT "WHERE d.updated_ms >= $1 AND ($2::text IS NULL OR d.hook=$2) "
			    "ORDER BY d.updated_ms DESC LIMIT 10001",
	[Q_EACH_DELIVERY_STATE] = DELIVERY_SELECT "WHERE d.state=$1 AND d.updated_ms >= $2 AND ($3::text IS NULL OR d.hook=$3) "
				  "ORDER BY d.updated_ms DESC LIMIT 10001",
	/* The order the events were committed in (seq), never a host's clock: cancelling before cancelled, members before batch.done. */
	[Q_EACH_PENDING] = DELIVERY_SELECT "WHERE d.state='pending' ORDER BY e.seq, d.hook",
	[Q_GET_EVENT] = "SELECT type, subject, batch, payload FROM events WHERE id=$1",
	[Q_EACH_BATCH] = "SELECT name, done_event FROM batches",
	[Q_GET_SNAPSHOT] = "SELECT snapshot FROM jobs WHERE id=$1",
	/* The daemon's own values ("d." keys: apart from the schema's). */
	[Q_PUT_META] = "INSERT INTO meta(key, value) VALUES('d.' || $1, $2) ON CONFLICT(key) DO UPDATE SET value=$2",
	[Q_GET_META] = "SELECT value FROM meta WHERE key='d.' || $1",
	[Q_JOB_EVENTS] = "SELECT id, type, ts_ms FROM events WHERE subject=$1 ORDER BY seq",
	[Q_EACH_HOOK] = "SELECT name, disabled_ms, why, failing_ms, last_error, last_error_ms FROM hooks",
	[Q_HOOK_STATS] = "SELECT (SELECT count(*) FROM deliveries WHERE hook=$1 AND state='pending'), "
			 "(SELECT count(*) FROM deliveries WHERE hook=$1 AND state='dead'), "
			 "(SELECT count(*) FROM deliveries WHERE hook=$1 AND state='done' AND updated_ms >= $2), "
			 "(SELECT coalesce(max(updated_ms), 0) FROM deliveries WHERE hook=$1 AND state='done')",
	[Q_EACH_DEAD] = DELIVERY_SELECT "WHERE d.state='dead' AND ($1::text IS NULL OR d.hook=$1) AND d.updated_ms >= $2 "
			"AND ($3::text IS NULL OR e.type=$3) ORDER BY e.seq",
	/* The last statement of every commit of the active: its epoch, or the whole transaction fails (EW001). */
	[Q_FENCE] = "SELECT ew_fence($1::bigint, $2)",
	[Q_LEASE_TAKE] = "SELECT taken, l_epoch, l_holder, l_host, l_pid, l_age_ms, l_ttl_ms "
			 "FROM ew_lease_take($1, $2, $3::integer, $4::bigint, $5)",
	[Q_LEASE_RENEW] = "UPDATE lease SET renewed_at = clock_timestamp(), ttl_ms = $3::bigint "
			  "WHERE id = 1 AND epoch = $1::bigint AND holder = $2",
	[Q_LEASE_GET] = "SELECT epoch, holder, host, pid, CASE WHEN renewed_at IS NULL THEN -1 ELSE "
			"(extract(epoch FROM clock_timestamp() - renewed_at) * 1000)::bigint END, ttl_ms FROM lease WHERE id = 1",
	/* A clean stop: the lease is free at once, and the standbys hear so. */
	[Q_LEASE_RELEASE] = "WITH u AS (UPDATE lease SET holder = NULL, renewed_at = NULL, app = NULL "
			    "WHERE id = 1 AND epoch = $1::bigint AND holder = $2 RETURNING 1) "
			    "SELECT pg_notify('embedwatch', 'lease') FROM u",
	/* A new session of the active takes its advisory lock again. */
	[Q_RELOCK] = "SELECT pg_try_advisory_lock(25975, $1::integer)",
	/* A standby's request: committed, then the active hears of it (a notification is sent at the commit). */
	[Q_PUT_REQUEST] = "WITH r AS (INSERT INTO requests(line, created_ms) VALUES($1, $2::bigint) RETURNING id) "
			  "SELECT r.id, pg_notify('embedwatch', 'requests') FROM r",
	[Q_EACH_REQUEST] = "SELECT id, line FROM requests ORDER BY id LIMIT 1000",
	[Q_DEL_REQUEST] = "DELETE FROM requests WHERE id = $1::bigint",
	[Q_JOB_COUNTS] = "SELECT batch, kind, status, count(*) FROM jobs GROUP BY batch, kind, status",
	[Q_COUNTS] = "SELECT (SELECT count(*) FROM deliveries WHERE state='pending'), (SELECT count(*) FROM requests), "
		     "(SELECT count(*) FROM batches)",
};

/*
 * The schema, created by the first daemon to start (under the schema lock, so
 * two starting at once do not race) and migrated by version.
 */
static const char schema[] =
	"CREATE TABLE IF NOT EXISTS jobs(id TEXT PRIMARY KEY, batch TEXT, status INTEGER NOT NULL,"
	" added_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, err_kind INTEGER NOT NULL DEFAULT 0,"
	" err_count INTEGER NOT NULL DEFAULT 0, snapshot TEXT, discovered INTEGER NOT NULL DEFAULT 0,"
	" cancel INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch);"
	"CREATE TABLE IF NOT EXISTS events(seq BIGSERIAL, id TEXT PRIMARY KEY, type TEXT NOT NULL, subject TEXT NOT NULL,"
	" batch TEXT, ts_ms BIGINT NOT NULL, payload TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS events_subject ON events(subject);"
	"CREATE TABLE IF NOT EXISTS deliveries(event_id TEXT NOT NULL, hook TEXT NOT NULL, state TEXT NOT NULL,"
	" attempts INTEGER NOT NULL, next_ms BIGINT NOT NULL, last_error TEXT, updated_ms BIGINT NOT NULL,"
	" PRIMARY KEY(event_id, hook));"
	"CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(state);"
	"CREATE INDEX IF NOT EXISTS deliveries_hook ON deliveries(hook, state, updated_ms);"
	"CREATE TABLE IF NOT EXISTS batches(name TEXT PRIMARY KEY, created_ms BIGINT NOT NULL, done_event TEXT);"
	"CREATE TABLE IF NOT EXISTS hooks(name TEXT PRIMARY KEY, disabled_ms BIGINT NOT NULL DEFAULT 0, why TEXT,"
	" failing_ms BIGINT NOT NULL DEFAULT 0, last_error TEXT, last_error_ms BIGINT NOT NULL DEFAULT 0);"
	/* The lease: one row. ttl_ms is the holder's own; expiry is by the server's clock, never a daemon's. */
	"CREATE TABLE IF NOT EXISTS lease(id INTEGER PRIMARY KEY CHECK (id = 1), epoch BIGINT NOT NULL DEFAULT 0,"
	" holder TEXT, host TEXT, pid INTEGER, renewed_at TIMESTAMPTZ, ttl_ms BIGINT NOT NULL DEFAULT 0);"
	"INSERT INTO lease(id) VALUES(1) ON CONFLICT DO NOTHING;"
	/* Version 3: the holder's sessions' application_name, by which a taker ends them. */
	"ALTER TABLE lease ADD COLUMN IF NOT EXISTS app TEXT;"
	/* Control through any daemon: what standbys were asked to change, until the active has applied it. */
	"CREATE TABLE IF NOT EXISTS requests(id BIGSERIAL PRIMARY KEY, line TEXT NOT NULL, created_ms BIGINT NOT NULL);"
	/*
	 * Taking the lease: when it is free or expired (by the server's clock), or
	 * when its holder's session is gone (the holder keeps the advisory lock
	 * (25975, epoch) on its lease session: if that lock can be had, nobody
	 * holds it). The taker locks (25975, epoch + 1) for its own session.
	 */
	"CREATE OR REPLACE FUNCTION ew_lease_free(p_holder text, p_renewed timestamptz, p_ttl_ms bigint, p_epoch bigint)"
	" RETURNS boolean LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  IF p_holder IS NULL OR p_renewed + p_ttl_ms * interval '1 millisecond' < clock_timestamp() THEN\n"
	"    RETURN true;\n"
	"  END IF;\n"
	"  IF pg_try_advisory_lock(25975, p_epoch::integer) THEN\n"
	"    PERFORM pg_advisory_unlock(25975, p_epoch::integer);\n"
	"    RETURN true;\n"
	"  END IF;\n"
	"  RETURN false;\n"
	"END $$;"
	/*
	 * The row is read without a lock first: a session cut off mid-transaction
	 * may hold it. When the lease is free, the previous holder's sessions
	 * (by their application_name) are ended, waiting up to 1 s for each: one
	 * stuck in a transaction (a cut before its Sync) holds rows the new active
	 * needs, and the server would notice its client gone only when TCP does.
	 * Then the row, waiting at most lock_timeout, and the same test on it.
	 */
	/* Dropped first: CREATE OR REPLACE cannot change what a function takes or returns. */
	"DROP FUNCTION IF EXISTS ew_lease_take(text, text, integer, bigint);"
	"DROP FUNCTION IF EXISTS ew_lease_take(text, text, integer, bigint, text);"
	"CREATE FUNCTION ew_lease_take(p_holder text, p_host text, p_pid integer, p_ttl_ms bigint, p_app text,"
	" OUT taken bigint, OUT l_epoch bigint, OUT l_holder text, OUT l_host text, OUT l_pid integer, OUT l_age_ms bigint,"
	" OUT l_ttl_ms bigint)"
	" LANGUAGE plpgsql AS $$\n"
	"DECLARE l lease%ROWTYPE;\n"
	"BEGIN\n"
	"  taken := 0;\n"
	"  SELECT * INTO l FROM lease WHERE id = 1;\n"
	"  IF ew_lease_free(l.holder, l.renewed_at, l.ttl_ms, l.epoch) THEN\n"
	"    IF l.app IS NOT NULL AND l.app IS DISTINCT FROM p_app THEN\n"
	"      BEGIN\n"
	"        PERFORM pg_terminate_backend(a.pid, 1000) FROM pg_stat_activity a\n"
	"          WHERE a.application_name = l.app AND a.usename = current_user AND a.pid <> pg_backend_pid();\n"
	"      EXCEPTION WHEN insufficient_privilege THEN NULL;\n"
	"      END;\n"
	"    END IF;\n"
	"    SELECT * INTO l FROM lease WHERE id = 1 FOR UPDATE;\n"
	"    IF ew_lease_free(l.holder, l.renewed_at, l.ttl_ms, l.epoch)\n"
	"       AND pg_try_advisory_lock(25975, (l.epoch + 1)::integer) THEN\n"
	"      UPDATE lease SET epoch = l.epoch + 1, holder = p_holder, host = p_host, pid = p_pid,\n"
	"        renewed_at = clock_timestamp(), ttl_ms = p_ttl_ms, app = p_app WHERE id = 1;\n"
	"      taken := l.epoch + 1;\n"
	"      l_epoch := taken; l_holder := p_holder; l_host := p_host; l_pid := p_pid; l_age_ms := 0; l_ttl_ms := p_ttl_ms;\n"
	"      RETURN;\n"
	"    END IF;\n"
	"  END IF;\n"
	"  l_epoch := l.epoch; l_holder := l.holder; l_host := l.host; l_pid := l.pid; l_ttl_ms := l.ttl_ms;\n"
	"  l_age_ms := CASE WHEN l.renewed_at IS NULL THEN -1\n"
	"    ELSE (extract(epoch FROM clock_timestamp() - l.renewed_at) * 1000)::bigint END;\n"
	"END $$;"
	/*
	 * The fence: the commit's last statement. It shares the lease's row (a
	 * take, which locks it FOR UPDATE, waits for the commit or fences it) but
	 * never blocks a renewal (an UPDATE of no key column), or fails the whole
	 * transaction.
	 */
	"CREATE OR REPLACE FUNCTION ew_fence(p_epoch bigint, p_holder text) RETURNS void LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  PERFORM 1 FROM lease WHERE id = 1 AND epoch = p_epoch AND holder = p_holder FOR KEY SHARE;\n"
	"  IF NOT FOUND THEN\n"
	"    RAISE EXCEPTION 'fenced: another embedwatchd holds the lease now' USING ERRCODE = 'EW001';\n"
	"  END IF;\n"
	"END $$;"
	/* Version 2: the job's kind (0 embed-job, 1 batch-job); rows from before are embed jobs. */
	"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS kind INTEGER NOT NULL DEFAULT 0;"
	"INSERT INTO meta VALUES('schema', '3') ON CONFLICT (key) DO UPDATE SET value = '3';";

static const char *pg_error(struct store *st)
{
	return pg_of(st)->err;
}

static const char *pg_describe(struct store *st)
{
	return pg_of(st)->desc;
}

static bool pg_busy(struct store *st)
{
	struct pg *s = pg_of(st);
	return s->main.head != NULL || s->lease.head != NULL;
}

/* Queues one statement with text parameters (NULL: SQL NULL) into the transaction being built. */
static int wput(struct pg *s, int q, bool *ret_new, int n, ...)
{
	va_list ap;
	size_t total = 0;
	const char *v[PG_PARAMS_MAX];

	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		v[i] = va_arg(ap, const char *);
		total += v[i] ? strlen(v[i]) + 1 : 0;
	}
	va_end(ap);
	if (s->n_w == s->cap_w) {
		s->cap_w = s->cap_w ? s->cap_w * 2 : 64;
		s->w = xrealloc(s->w, s->cap_w * sizeof(*s->w));
	}
	struct wstmt *w = &s->w[s->n_w++];
	w->q = q;
	w->n = n;
	w->ret_new = ret_new;
	w->mem = xmalloc(total ? total : 1);
	char *p = w->mem;
	for (int i = 0; i < n; i++) {
		if (!v[i]) {
			w->v[i] = NULL;
			continue;
		}
		size_t len = strlen(v[i]) + 1;
		memcpy(p, v[i], len);
		w->v[i] = p;
		p += len;
	}
	return 0;
}

static void wclear(struct pg *s)
{
	for (size_t i = 0; i < s->n_w; i++)
		free(s->w[i].mem);
	s->n_w = 0;
	s->building = false;
}

/* A PostgreSQL text[] literal of names: {"a","b"} (quotes and backslashes escaped). */
static char *text_array(char *const *v, size_t n)
{
	struct buf b = { 0 };
	buf_append(&b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		buf_append(&b, i ? ",\"" : "\"", i ? 2 : 1);
		for (const char *p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_append(&b, "\\", 1);
			buf_append(&b, p, 1);
		}
		buf_append(&b, "\"", 1);
	}
	buf_append(&b, "}", 1);
	return b.data;
}

/* ---- writes ---- */

static int pg_begin(struct store *st)
{
	struct pg *s = pg_of(st);
	wclear(s);
	if (s->main.state != PG_READY) {
		pgc_set_err(s, s->main.state == PG_CONNECTING ? "connecting" : s->err[0] ? s->err : "not connected");
		return -ENOTCONN;
	}
	if (s->epoch <= 0) {
		/* Only the active writes the shared state (standbys' requests are rows the active applies). */
		pgc_set_err(s, "this daemon does not hold the lease");
		return -ESTALE;
	}
	s->building = true;
	return 0;
}

static void pg_rollback(struct store *st)
{
	wclear(pg_of(st));
}

static void commit_result(struct pgq *g, unsigned i, const PGresult *res)
{
	if (g->ret_new && i < g->n && g->ret_new[i])
		*g->ret_new[i] = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "0") != 0;
}

static void commit_end(struct pgq *g)
{
	pgl_confirmed(g->arg2, g);
	((store_done_fn *)g->done)(g->r, g->arg);
	free(g->ret_new);
	free(g);
}

static void pg_commit_async(struct store *st, store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	struct pgq *g = pgc_group_new(s, (unsigned)s->n_w, commit_result, commit_end, NULL, (void *)done, arg);
	int r = 0;

	g->arg2 = s;
	if (s->main.state != PG_READY || !s->building) {
		pgc_set_err(s, "not connected (reconnecting)");
		wclear(s);
		g->r = -ENOTCONN;
		commit_end(g);
		return;
	}
	/*
	 * Last: the fence, once every write has arrived. It shares the lease's row
	 * (FOR KEY SHARE) until the Sync: a take waits for it, a renewal does not.
	 * It does not renew the lease: that is the lease connection's alone.
	 */
	char ep[24];
	wput(s, Q_FENCE, NULL, 2, pgc_fmt_i64(ep, s->epoch), s->holder);
	g->n = (unsigned)s->n_w;
	g->commit = true;
	g->ret_new = xcalloc(s->n_w, sizeof(*g->ret_new));
	for (size_t i = 0; r == 0 && i < s->n_w; i++) {
		g->ret_new[i] = s->w[i].ret_new;
		r = pgc_send_prepared(&s->main, s->w[i].q, s->w[i].n, s->w[i].v);
	}
	wclear(s);
	/* An empty transaction still gets its Sync: the outbox always hears back. */
	if (r < 0 || !PQpipelineSync(s->main.conn)) {
		pgc_set_err(s, PQerrorMessage(s->main.conn));
		g->r = -ECONNRESET;
		commit_end(g);
		pgc_lost(&s->main);
		return;
	}
	pgc_group_push(&s->main, g);
	pgc_flush(&s->main);
	pgc_watchdog_arm(s);
}

static int pg_put_job(struct store *st, const struct store_job *j)
{
	char a[24], u[24], status[24], ek[24], ec[24], disc[24], cancel[24], kind[24];
	return wput(pg_of(st), Q_PUT_JOB, NULL, 10, j->id, j->batch, pgc_fmt_i64(status, j->status), pgc_fmt_i64(a, j->added_ms),
		    pgc_fmt_i64(u, j->updated_ms), pgc_fmt_i64(ek, j->err_kind), pgc_fmt_i64(ec, j->err_count), pgc_fmt_i64(disc, j->discovered),
		    pgc_fmt_i64(cancel, j->cancel), pgc_fmt_i64(kind, j->kind));
}

static int pg_put_snapshot(struct store *st, const char *job_id, const char *json)
{
	return wput(pg_of(st), Q_PUT_SNAPSHOT, NULL, 2, job_id, json);
}

static int pg_delete_job(struct store *st, const char *job_id)
{
	return wput(pg_of(st), Q_DEL_JOB, NULL, 1, job_id);
}

static int pg_put_event(struct store *st, const char *id, const char *type, const char *subject, const char *batch,
			int64_t ts_ms, const char *payload, char *const *hooks, size_t n_hooks, bool *ret_new)
{
	char ts[24];
	char *arr = text_array(hooks, n_hooks);
	*ret_new = false;
	int r = wput(pg_of(st), Q_PUT_EVENT, ret_new, 7, id, type, subject, batch, pgc_fmt_i64(ts, ts_ms), payload, arr);
	free(arr);
	return r;
}

static int pg_put_delivery(struct store *st, const char *event_id, const char *hook, const char *state,
			   unsigned attempts, int64_t next_ms, const char *last_error, int64_t updated_ms)
{
	char a[24], n[24], u[24];
	return wput(pg_of(st), Q_PUT_DELIVERY, NULL, 7, event_id, hook, state, pgc_fmt_i64(a, attempts), pgc_fmt_i64(n, next_ms),
		    last_error, pgc_fmt_i64(u, updated_ms));
}

static int pg_put_batch(struct store *st, const char *name, int64_t created_ms, const char *done_event)
{
	char c[24];
	return wput(pg_of(st), Q_PUT_BATCH, NULL, 3, name, pgc_fmt_i64(c, created_ms), done_event);
}

static int pg_prune(struct store *st, int64_t before_ms, int64_t deliveries_before_ms)
{
	struct pg *s = pg_of(st);
	char b[24], d[24];
	wput(s, Q_PRUNE_DELIVERIES, NULL, 1, pgc_fmt_i64(d, deliveries_before_ms));
	wput(s, Q_PRUNE_EVENTS, NULL, 1, pgc_fmt_i64(b, before_ms));
	return wput(s, Q_PRUNE_BATCHES, NULL, 0);
}

static int pg_put_hook(struct store *st, const struct store_hook *h)
{
	char d[24], f[24], l[24];
	return wput(pg_of(st), Q_PUT_HOOK, NULL, 6, h->name, pgc_fmt_i64(d, h->disabled_ms), h->why, pgc_fmt_i64(f, h->failing_ms),
		    h->last_error, pgc_fmt_i64(l, h->last_error_ms));
}

/* ---- reads ---- */

/* The end of a read whose caller wants done(r, arg). */
static void read_end(struct pgq *g)
{
	((store_done_fn *)g->done)(g->r, g->arg);
	free(g);
}

/* Calls row(res, i) for each row until one asks to stop (negative: the read's error). */
static void each_row(struct pgq *g, const PGresult *res, int (*row)(struct pgq *g, const PGresult *res, int i))
{
	for (int i = 0; !g->stop && i < PQntuples(res); i++) {
		int r = row(g, res, i);
		if (r != 0) {
			g->stop = true;
			if (r < 0)
				g->r = r;
		}
	}
}

static int job_row(struct pgq *g, const PGresult *res, int i)
{
	struct store_job j = {
		.id = pgc_val(res, i, 0), .batch = pgc_val(res, i, 1), .status = (int)pgc_ival(res, i, 2),
		.added_ms = pgc_ival(res, i, 3), .updated_ms = pgc_ival(res, i, 4), .err_kind = (int)pgc_ival(res, i, 5),
		.err_count = (int)pgc_ival(res, i, 6), .discovered = (int)pgc_ival(res, i, 7), .cancel = (int)pgc_ival(res, i, 8),
		.kind = (int)pgc_ival(res, i, 9),
	};
	return ((int (*)(const struct store_job *, void *))g->fn)(&j, g->arg);
}

static void jobs_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, job_row);
}

static void pg_each_job(struct store *st, const struct store_job_filter *f, int (*fn)(const struct store_job *, void *),
			store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	struct pgq *g = pgc_group_new(s, 1, jobs_result, read_end, (void *)fn, (void *)done, arg);
	if (f && f->ids) {
		char *arr = text_array((char *const *)f->ids, f->n_ids);
		const char *v[] = { arr };
		pgc_send_read(&s->main, g, Q_GET_JOBS, 1, v);
		free(arr);
	} else if (f && f->batch) {
		const char *v[] = { f->batch };
		pgc_send_read(&s->main, g, Q_EACH_JOB_BATCH, 1, v);
	} else {
		pgc_send_read(&s->main, g, Q_EACH_JOB, 0, NULL);
	}
}

static int delivery_row(struct pgq *g, const PGresult *res, int i)
{
	struct store_delivery d = {
		.event_id = pgc_val(res, i, 0), .hook = pgc_val(res, i, 1), .state = pgc_val(res, i, 2),
		.attempts = (unsigned)pgc_ival(res, i, 3), .next_ms = pgc_ival(res, i, 4), .last_error = pgc_val(res, i, 5),
		.updated_ms = pgc_ival(res, i, 6), .type = pgc_val(res, i, 7), .subject = pgc_val(res, i, 8), .batch = pgc_val(res, i, 9),
		.payload = pgc_val(res, i, 10),
	};
	return ((int (*)(const struct store_delivery *, void *))g->fn)(&d, g->arg);
}

static void deliveries_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, delivery_row);
}

static void pg_each_delivery(struct store *st, const char *state, const char *hook, int64_t since_ms,
			     int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	struct pgq *g = pgc_group_new(s, 1, deliveries_result, read_end, (void *)fn, (void *)done, arg);
	char since[24];
	if (state) {
		const char *v[] = { state, pgc_fmt_i64(since, since_ms), hook };
		pgc_send_read(&s->main, g, Q_EACH_DELIVERY_STATE, 3, v);
	} else {
		const char *v[] = { pgc_fmt_i64(since, since_ms), hook };
		pgc_send_read(&s->main, g, Q_EACH_DELIVERY, 2, v);
	}
}

static void pg_each_dead(struct store *st, const char *hook, int64_t since_ms, const char *type,
			 int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	char since[24];
	const char *v[] = { hook, pgc_fmt_i64(since, since_ms), type };
	pgc_send_read(&s->main, pgc_group_new(s, 1, deliveries_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_DEAD, 3, v);
}

static void pg_each_pending(struct store *st, int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	pgc_send_read(&s->main, pgc_group_new(s, 1, deliveries_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_PENDING, 0, NULL);
}

static int hook_row(struct pgq *g, const PGresult *res, int i)
{
	struct store_hook h = {
		.name = pgc_val(res, i, 0), .disabled_ms = pgc_ival(res, i, 1), .why = pgc_val(res, i, 2),
		.failing_ms = pgc_ival(res, i, 3), .last_error = pgc_val(res, i, 4), .last_error_ms = pgc_ival(res, i, 5),
	};
	return ((int (*)(const struct store_hook *, void *))g->fn)(&h, g->arg);
}

static void hooks_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, hook_row);
}

static void pg_each_hook(struct store *st, int (*fn)(const struct store_hook *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	pgc_send_read(&s->main, pgc_group_new(s, 1, hooks_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_HOOK, 0, NULL);
}

static void hook_stats_end(struct pgq *g)
{
	struct pgc_one_row *o = container_of(g, struct pgc_one_row, g);
	struct store_hook_stats st = { 0 };
	if (g->r == 0 && o->res) {
		st.pending = pgc_ival(o->res, 0, 0);
		st.dead = pgc_ival(o->res, 0, 1);
		st.done_since = pgc_ival(o->res, 0, 2);
		st.last_done_ms = pgc_ival(o->res, 0, 3);
	}
	((void (*)(int, const struct store_hook_stats *, void *))g->done)(g->r, g->r == 0 ? &st : NULL, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_hook_stats(struct store *st, const char *hook, int64_t since_ms,
			  void (*done)(int, const struct store_hook_stats *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	char since[24];
	const char *v[] = { hook, pgc_fmt_i64(since, since_ms) };
	pgc_send_read(&s->main, &pgc_one_new((void *)done, arg, hook_stats_end)->g, Q_HOOK_STATS, 2, v);
}

static void get_event_end(struct pgq *g)
{
	struct pgc_one_row *o = container_of(g, struct pgc_one_row, g);
	void (*done)(int, const char *, const char *, const char *, const char *, void *) = g->done;
	if (g->r == 0 && o->res)
		done(0, pgc_val(o->res, 0, 0), pgc_val(o->res, 0, 1), pgc_val(o->res, 0, 2), pgc_val(o->res, 0, 3), g->arg);
	else
		done(g->r ? g->r : -ENOENT, NULL, NULL, NULL, NULL, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_get_event(struct store *st, const char *event_id,
			 void (*done)(int, const char *, const char *, const char *, const char *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	const char *v[] = { event_id };
	pgc_send_read(&s->main, &pgc_one_new((void *)done, arg, get_event_end)->g, Q_GET_EVENT, 1, v);
}

static int batch_row(struct pgq *g, const PGresult *res, int i)
{
	return ((int (*)(const char *, const char *, void *))g->fn)(pgc_val(res, i, 0), pgc_val(res, i, 1), g->arg);
}

static void batches_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, batch_row);
}

static void pg_each_batch(struct store *st, int (*fn)(const char *, const char *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	pgc_send_read(&s->main, pgc_group_new(s, 1, batches_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_BATCH, 0, NULL);
}

static void snapshot_end(struct pgq *g)
{
	struct pgc_one_row *o = container_of(g, struct pgc_one_row, g);
	((void (*)(int, const char *, void *))g->done)(g->r, g->r == 0 && o->res ? pgc_val(o->res, 0, 0) : NULL, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_get_snapshot(struct store *st, const char *job_id, void (*done)(int, const char *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	const char *v[] = { job_id };
	pgc_send_read(&s->main, &pgc_one_new((void *)done, arg, snapshot_end)->g, Q_GET_SNAPSHOT, 1, v);
}

static void pg_get_meta(struct store *st, const char *key, void (*done)(int, const char *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	const char *v[] = { key };
	pgc_send_read(&s->main, &pgc_one_new((void *)done, arg, snapshot_end)->g, Q_GET_META, 1, v);
}

static int pg_put_meta(struct store *st, const char *key, const char *value)
{
	return wput(pg_of(st), Q_PUT_META, NULL, 2, key, value);
}

static int event_row(struct pgq *g, const PGresult *res, int i)
{
	return ((int (*)(const char *, const char *, int64_t, void *))g->fn)(pgc_val(res, i, 0), pgc_val(res, i, 1),
									     pgc_ival(res, i, 2), g->arg);
}

static void events_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, event_row);
}

static void pg_job_events(struct store *st, const char *job_id, int (*fn)(const char *, const char *, int64_t, void *),
			  store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	const char *v[] = { job_id };
	pgc_send_read(&s->main, pgc_group_new(s, 1, events_result, read_end, (void *)fn, (void *)done, arg), Q_JOB_EVENTS, 1, v);
}

/* ---- control through any daemon ---- */

static void put_request_end(struct pgq *g)
{
	struct pgc_one_row *o = container_of(g, struct pgc_one_row, g);
	((void (*)(int, int64_t, void *))g->done)(g->r, g->r == 0 && o->res ? pgc_ival(o->res, 0, 0) : 0, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_put_request(struct store *st, const char *line, void (*done)(int, int64_t, void *), void *arg)
{
	struct pg *s = pg_of(st);
	char now[24];
	const char *v[] = { line, pgc_fmt_i64(now, util_wall_ms()) };
	pgc_send_read(&s->main, &pgc_one_new((void *)done, arg, put_request_end)->g, Q_PUT_REQUEST, 2, v);
}

static int request_row(struct pgq *g, const PGresult *res, int i)
{
	return ((int (*)(int64_t, const char *, void *))g->fn)(pgc_ival(res, i, 0), pgc_val(res, i, 1), g->arg);
}

static void requests_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, request_row);
}

static void pg_each_request(struct store *st, int (*fn)(int64_t, const char *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	pgc_send_read(&s->main, pgc_group_new(s, 1, requests_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_REQUEST, 0, NULL);
}

static int pg_delete_request(struct store *st, int64_t id)
{
	char i[24];
	return wput(pg_of(st), Q_DEL_REQUEST, NULL, 1, pgc_fmt_i64(i, id));
}

static int count_row(struct pgq *g, const PGresult *res, int i)
{
	return ((int (*)(const char *, int, int, int64_t, void *))g->fn)(pgc_val(res, i, 0), (int)pgc_ival(res, i, 1),
									  (int)pgc_ival(res, i, 2), pgc_ival(res, i, 3), g->arg);
}

static void counts_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, count_row);
}

static void pg_job_counts(struct store *st, int (*fn)(const char *, int, int, int64_t, void *), store_done_fn *done,
			  void *arg)
{
	struct pg *s = pg_of(st);
	pgc_send_read(&s->main, pgc_group_new(s, 1, counts_result, read_end, (void *)fn, (void *)done, arg), Q_JOB_COUNTS, 0, NULL);
}

static void counts_end(struct pgq *g)
{
	struct pgc_one_row *o = container_of(g, struct pgc_one_row, g);
	struct store_counts c = { 0 };
	if (g->r == 0 && o->res)
		c = (struct store_counts){ .deliveries_pending = pgc_ival(o->res, 0, 0), .requests = pgc_ival(o->res, 0, 1),
					   .batches = pgc_ival(o->res, 0, 2) };
	((void (*)(int, const struct store_counts *, void *))g->done)(g->r, g->r == 0 ? &c : NULL, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_counts(struct store *st, void (*done)(int, const struct store_counts *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	pgc_send_read(&s->main, &pgc_one_new((void *)done, arg, counts_end)->g, Q_COUNTS, 0, NULL);
}

/* ---- open and close ---- */

static void pg_close(struct store *st)
{
	struct pg *s = pg_of(st);
	pgc_fail_all(&s->main, -ECANCELED);
	pgc_fail_all(&s->lease, -ECANCELED);
	wclear(s);
	free(s->w);
	if (s->main.conn)
		PQfinish(s->main.conn);
	if (s->lease.conn)
		PQfinish(s->lease.conn);
	if (s->password) {
		OPENSSL_cleanse(s->password, strlen(s->password));
		free(s->password);
	}
	free(s->url);
	free(s);
}

/* Runs statements outside the pipeline (start-up only). Returns 0 or negative with s->err set. */
static int exec_sync(struct pg *s, const char *sql)
{
	PGresult *res = PQexec(s->main.conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int r = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		r = pgc_map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
		pgc_set_err_of(s, res);
	}
	PQclear(res);
	return r;
}

/* Creates or migrates the schema in one transaction, under the schema lock. */
static int migrate(struct pg *s)
{
	char sql[128];
	int r, version = 0;

	snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d, 0)", PG_LOCK);
	if ((r = exec_sync(s, sql)) < 0 ||
	    (r = exec_sync(s, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)")) < 0)
		goto out;
	PGresult *res = PQexec(s->main.conn, "SELECT value FROM meta WHERE key='schema'");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (version > PG_SCHEMA) {
		char msg[160];
		snprintf(msg, sizeof(msg), "the state was written by a newer embedwatchd (schema version %d, this one "
			 "knows %d); upgrade this one", version, PG_SCHEMA);
		pgc_set_err(s, msg);
		r = -EPROTO;
		goto out;
	}
	/*
	 * Current already: no DDL, whose table locks would queue every session
	 * behind a transaction a cut-off daemon left open.
	 */
	if (version < PG_SCHEMA && (r = exec_sync(s, schema)) < 0)
		goto out;
	r = exec_sync(s, "COMMIT");
out:
	if (r < 0) {
		char keep[sizeof(s->err)];
		memcpy(keep, s->err, sizeof(keep));
		exec_sync(s, "ROLLBACK");
		memcpy(s->err, keep, sizeof(keep));
	}
	return r;
}

static const struct store_ops pg_ops = {
	.close = pg_close, .detach = pgc_detach, .error = pg_error, .describe = pg_describe, .busy = pg_busy,
	.wait = pgc_wait, .begin = pg_begin, .commit_async = pg_commit_async, .rollback = pg_rollback,
	.put_job = pg_put_job, .put_snapshot = pg_put_snapshot, .delete_job = pg_delete_job, .put_event = pg_put_event,
	.put_delivery = pg_put_delivery, .put_batch = pg_put_batch, .prune = pg_prune, .put_hook = pg_put_hook,
	.each_job = pg_each_job, .each_delivery = pg_each_delivery, .each_dead = pg_each_dead,
	.each_pending = pg_each_pending, .each_hook = pg_each_hook, .hook_stats = pg_hook_stats,
	.get_event = pg_get_event, .each_batch = pg_each_batch, .get_snapshot = pg_get_snapshot, .put_meta = pg_put_meta, .get_meta = pg_get_meta,
	.job_events = pg_job_events,
	.lease_setup = pgl_setup, .lease_take = pgl_take, .lease_renew = pgl_renew,
	.lease_get = pgl_get, .lease_release = pgl_release, .lease_held = pgl_held,
	.lease_fresh = pgl_fresh, .lease_fresh_until = pgl_fresh_until, .lease_epoch = pgl_epoch, .on_notify = pgl_on_notify,
	.put_request = pg_put_request, .each_request = pg_each_request, .delete_request = pg_delete_request,
	.job_counts = pg_job_counts, .counts = pg_counts,
};

/* The URL is libpq's to read; here only what the daemon refuses: a password in it. */
static int check_url(const char *url, char *err, size_t errlen)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &msg);
	if (!opts) {
		snprintf(err, errlen, "state_url: %s", msg ? msg : "not a connection URI");
		for (char *p = err; *p; p++)
			if (*p == '\n')
				*p = ' ';
		PQfreemem(msg);
		return -EINVAL;
	}
	int r = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) {
			snprintf(err, errlen, "state_url: the password does not belong in the URL (nor in the config file): "
				 "use the credential state-password or state_password_file");
			r = -EINVAL;
		}
	}
	PQconninfoFree(opts);
	return r;
}

/* connect_timeout as libpq reads it (the URL's, else 10 s here; at least 2 s). */
static uint64_t connect_timeout_of(const char *url)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	uint64_t t = 10;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && *o->val)
			t = strtoull(o->val, NULL, 10);
	PQconninfoFree(opts);
	return (t < 2 ? 2 : t) * 1000;
}

static void conn_init(struct pg *s, struct pgconn *c, const char *name, bool is_lease)
{
	c->s = s;
	c->name = name;
	c->is_lease = is_lease;
}

int store_pg_open(const struct store_config *c, struct store **ret, char *err, size_t errlen)
{
	int r;
	if ((r = check_url(c->url, err, errlen)) < 0)
		return r;
	struct pg *s = xcalloc(1, sizeof(*s));
	s->base.ops = &pg_ops;
	s->base.shared = true;
	s->loop = c->loop;
	s->url = xstrdup(c->url);
	s->password = c->password ? xstrdup(c->password) : NULL;
	s->connect_timeout_ms = connect_timeout_of(c->url);
	conn_init(s, &s->main, "main", false);
	conn_init(s, &s->lease, "lease", true);
	snprintf(s->desc, sizeof(s->desc), "PostgreSQL");
	/* Start-up may wait: the loop does not run yet. Nothing is on the loop before the schema is there. */
	s->main.conn = pgc_connect_params(s, true, NULL, NULL);
	if (!s->main.conn || PQstatus(s->main.conn) != CONNECTION_OK) {
		pgc_set_err(s, s->main.conn ? PQerrorMessage(s->main.conn) : "out of memory");
		snprintf(err, errlen, "state database: cannot connect: %s", s->err);
		pg_close(&s->base);
		return -ECONNREFUSED;
	}
	PQsetNoticeProcessor(s->main.conn, pgc_ignore_notice, NULL);
	if ((r = migrate(s)) < 0) {
		snprintf(err, errlen, "state database: %s", s->err);
		pg_close(&s->base);
		return r;
	}
	if ((r = uv_timer_init(s->loop, &s->main.retry)) < 0) {
		snprintf(err, errlen, "state database: %s", uv_strerror(r));
		pg_close(&s->base);
		return r;
	}
	/* A second timer on a loop that took the first (it cannot fail on Unix): a broken invariant if it does. */
	UV_CHECK(uv_timer_init(s->loop, &s->lease.retry));
	UV_CHECK(uv_timer_init(s->loop, &s->watchdog));
	/* Its own timers must not keep the loop alive. */
	uv_unref((uv_handle_t *)&s->main.retry);
	uv_unref((uv_handle_t *)&s->lease.retry);
	uv_unref((uv_handle_t *)&s->watchdog);
	*ret = &s->base;
	if ((r = pgc_session_start(&s->main)) == 0)
		pgc_wait(&s->base);
	if (r < 0 || s->main.state != PG_READY) {
		/* The handles are the loop's now: the caller closes the store after the loop's last turn. */
		snprintf(err, errlen, "state database: %s", s->err);
		return r < 0 ? r : -EIO;
	}
	return 0;
}
