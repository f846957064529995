/*
 * The PostgreSQL backend: a state several daemons share. One connection,
 * non-blocking and in pipeline mode, watched by a uv_poll on its socket: the
 * loop never waits for the server. A commit is one implicit transaction (its
 * statements, then a Sync: all or nothing); each read is its own. Answers
 * come back in the order things were sent, so a queue of what was sent says
 * whose each answer is. A lost connection fails what was in flight (the
 * outbox retries its commit with backoff) and is made again in the
 * background, its host names looked up by libuv's resolver first (libpq's
 * own lookup would block the loop). Only start-up (open, schema) and exit
 * wait.
 */
#include "store_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <poll.h>
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
#define PG_PARAMS_MAX 10

enum {
	Q_PUT_JOB, Q_PUT_SNAPSHOT, Q_DEL_JOB, Q_PUT_EVENT, Q_PUT_DELIVERY, Q_PUT_BATCH,
	Q_PRUNE_DELIVERIES, Q_PRUNE_EVENTS, Q_PRUNE_BATCHES, Q_PUT_HOOK,
	Q_EACH_JOB, Q_GET_JOBS, Q_EACH_JOB_BATCH, Q_EACH_DELIVERY, Q_EACH_DELIVERY_STATE, Q_EACH_PENDING,
	Q_GET_EVENT, Q_EACH_BATCH, Q_GET_SNAPSHOT, Q_JOB_EVENTS, Q_EACH_HOOK, Q_HOOK_STATS, Q_EACH_DEAD,
	Q_FENCE, Q_LEASE_TAKE, Q_LEASE_RENEW, Q_LEASE_GET, Q_LEASE_RELEASE, Q_RELOCK,
	Q_PUT_REQUEST, Q_EACH_REQUEST, Q_DEL_REQUEST, Q_JOB_COUNTS, Q_COUNTS, Q_PUT_META, Q_GET_META,
	Q__MAX
};

#define JOB_SELECT "SELECT id, batch, status, added_ms, updated_ms, err_kind, err_count, discovered, cancel, kind FROM jobs"
/* A delivery row with its event, in the column order delivery_row() reads. */
#define DELIVERY_SELECT \
	"SELECT d.event_id, d.hook, d.state, d.attempts, d.next_ms, d.last_error, d.updated_ms, " \
	"e.type, e.subject, e.batch, e.payload FROM deliveries d JOIN events e ON e.id=d.event_id "

/* Every statement, prepared on each connection (named "q<index>"); parameters are text. */
static const char *const queries[Q__MAX] = {
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

/* A write of the transaction being built, its parameters copied into one block. */
struct wstmt {
	int q;
	int n;
	const char *v[PG_PARAMS_MAX];
	char *mem;
	bool *ret_new;              /* Q_PUT_EVENT: where its answer says whether the event was new */
};

struct pgq;
typedef void pgq_result_fn(struct pgq *g, unsigned i, const PGresult *res);

/* One group sent to the server: its statements, then a Sync. */
struct pgq {
	struct pgq *next;
	uint64_t sent_mono;         /* when it was sent (monotonic ms): a lease confirmed by it was valid then */
	bool confirms;              /* it renews the lease (a take, a renewal) */
	bool commit;                /* a commit: the server may wait up to lock_timeout on a row before answering */
	unsigned n;                 /* statements in it */
	unsigned got;               /* statements whose answer has ended (a NULL from PQgetResult) */
	int r;                      /* 0, or the first error */
	bool stop;                  /* a row callback asked for no more rows */
	pgq_result_fn *result;      /* a statement's good answer */
	void (*end)(struct pgq *g); /* the Sync: calls the caller back and frees g */
	void *fn;                   /* the caller's row (or value) callback */
	void *done;                 /* the caller's done callback */
	void *arg;
	struct pg *arg2;            /* the store, for ends that update the lease */
	bool **ret_new;             /* a commit: per statement, NULL or where to say the event was new */
	int64_t i64;                /* a renewal: rows updated */
};

/* The socket's watcher: a handle per connection, freed in its close callback. */
struct pgpoll {
	uv_poll_t h;
	struct pgconn *c;
	int fd;
	int events;
};

enum pg_state { PG_DOWN, PG_CONNECTING, PG_READY };

/*
 * One connection to the server. The store has two: "main" for commits and
 * reads, and "lease" for the lease alone (takes, renewals, the advisory
 * lock), so that a renewal never queues behind a commit waiting on a row.
 */
struct pgconn {
	struct pg *s;
	const char *name;
	bool is_lease;
	PGconn *conn;
	enum pg_state state;
	struct pgpoll *poll;
	uv_timer_t retry;           /* the next reconnect */
	unsigned retry_run;
	bool was_ready;             /* connected since the last "connection lost" */
	struct pgq *head, *tail;    /* sent, answers pending, oldest first */
	struct pgresolve *resolving;    /* a reconnect's host name lookups, or NULL */
	uint64_t connect_mono;      /* when the connect being made started */
	uint64_t rx_mono;           /* when the server last sent something */
};

struct pg {
	struct store base;
	uv_loop_t *loop;
	struct pgconn main, lease;
	bool lease_open;            /* the lease's connection exists (lease_setup was called) */
	uv_timer_t watchdog;        /* bounds every connect and every answer */
	bool detached;
	char *url;
	char *password;             /* wiped at close */
	uint64_t connect_timeout_ms;
	struct wstmt *w;            /* the transaction being built */
	size_t n_w, cap_w;
	bool building;
	char err[512];
	char desc[300];
	/* the lease: who this daemon is, and what it holds */
	char holder[300];
	char host[256];
	char app[64];               /* application_name of its sessions: the taker ends an expired holder's */
	int pid;
	uint64_t ttl_ms;
	int64_t epoch;              /* held when > 0 */
	uint64_t confirmed_mono;    /* the send time of the last take or renewal that confirmed it */
	void (*notify)(const char *what, void *arg);
	void *notify_arg;
};

static struct pg *pg_of(struct store *s)
{
	return container_of(s, struct pg, base);
}

/* The lease's ttl, or the default before lease_setup. */
static uint64_t ttl_of(const struct pg *s)
{
	return s->ttl_ms ? s->ttl_ms : 10000;
}

/* ---- errors ---- */

/* libpq's messages end in a newline and may span lines: one line for the log. */
static void set_err(struct pg *s, const char *msg)
{
	snprintf(s->err, sizeof(s->err), "%s", msg && *msg ? msg : "unknown PostgreSQL error");
	for (char *p = s->err; *p; p++) {
		if (*p == '\n' || *p == '\r')
			*p = *(p + 1) ? ' ' : '\0';
		else if (*p == '\t')
			*p = ' ';
	}
}

/* A result's error: its primary message (no CONTEXT lines), else all of it. */
static void set_err_of(struct pg *s, const PGresult *res)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	set_err(s, primary ? primary : PQresultErrorMessage(res));
}

static int map_sqlstate(const char *st)
{
	if (!st)
		return -EIO;
	if (strcmp(st, "EW001") == 0)
		return -ESTALE;         /* fenced: another daemon holds the lease */
	if (strcmp(st, "53100") == 0)
		return -ENOSPC;
	if (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 || strcmp(st, "57P03") == 0)
		return -ECONNRESET;
	if (strcmp(st, "25006") == 0 || strcmp(st, "42501") == 0)
		return -EACCES;
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0)
		return -EBUSY;
	return -EIO;
}

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

/* ---- the queue of groups ---- */

static struct pgq *group_new(struct pg *s, unsigned n, pgq_result_fn *result, void (*end)(struct pgq *), void *fn,
			     void *done, void *arg)
{
	struct pgq *g = xcalloc(1, sizeof(*g));
	/*
	 * Before anything of it is sent: a lease it confirms was valid at the
	 * server no earlier than this. Taken after the send, a pause of this
	 * process between the two (SIGSTOP, a stall) would date a confirmation
	 * seconds late and let a fenced ex-active think its lease fresh.
	 */
	g->sent_mono = util_mono_ms();
	g->n = n;
	g->result = result;
	g->end = end;
	g->fn = fn;
	g->done = done;
	g->arg = arg;
	return g;
}

static void group_push(struct pgconn *c, struct pgq *g)
{
	if (c->tail)
		c->tail->next = g;
	else
		c->head = g;
	c->tail = g;
}

/* Every group in flight on c ends with r (the connection is gone, or the store closes). */
static void fail_all(struct pgconn *c, int r)
{
	struct pgq *g;
	while ((g = c->head)) {
		c->head = g->next;
		if (!c->head)
			c->tail = NULL;
		if (!g->r)
			g->r = r;
		g->end(g);
	}
}

/* ---- the connection ---- */

static void on_poll(uv_poll_t *h, int status, int events);
static void connect_later(struct pgconn *c);
static void pump(struct pgconn *c);
static void watchdog_arm(struct pg *s);

static void poll_closed(uv_handle_t *h)
{
	free(h->data);
}

static void poll_drop(struct pgconn *c)
{
	if (!c->poll)
		return;
	uv_poll_stop(&c->poll->h);
	uv_close((uv_handle_t *)&c->poll->h, poll_closed);
	c->poll = NULL;
}

/* Watches the connection's socket for events (a new socket gets a new handle: one uv_poll per fd). */
static int poll_set(struct pgconn *c, int events)
{
	struct pg *s = c->s;
	int fd = PQsocket(c->conn);
	if (s->detached || fd < 0)
		return 0;
	if (c->poll && c->poll->fd != fd)
		poll_drop(c);
	if (!c->poll) {
		struct pgpoll *p = xcalloc(1, sizeof(*p));
		int r = uv_poll_init(s->loop, &p->h, fd);
		if (r < 0) {
			free(p);
			set_err(s, uv_strerror(r));
			return r;
		}
		p->h.data = p;
		p->c = c;
		p->fd = fd;
		p->events = -1;
		c->poll = p;
	}
	if (c->poll->events != events) {
		int r = uv_poll_start(&c->poll->h, events, on_poll);
		if (r < 0)
			return r;
		c->poll->events = events;
	}
	return 0;
}

/* The connection broke (r: what in flight gets): what was in flight fails; a new one is made after a pause. */
static void lost_with(struct pgconn *c, int r)
{
	struct pg *s = c->s;
	if (c->was_ready)
		log_msg(LOG_WARNING, "state database: %s connection lost: %s; reconnecting", c->name, s->err);
	else if (c->retry_run % 20 == 19)
		log_msg(LOG_WARNING, "state database: still cannot connect: %s", s->err);
	c->was_ready = false;
	poll_drop(c);
	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	c->state = PG_DOWN;
	fail_all(c, r);
	connect_later(c);
}

static void lost(struct pgconn *c)
{
	lost_with(c, -ECONNRESET);
}

/* Sends what libpq holds; watches for writable while some remains. */
static void flush(struct pgconn *c)
{
	int r = PQflush(c->conn);
	if (r < 0) {
		set_err(c->s, PQerrorMessage(c->conn));
		lost(c);
		return;
	}
	if (poll_set(c, UV_READABLE | (r > 0 ? UV_WRITABLE : 0)) < 0)
		lost(c);
}

static void ignore_notice(void *arg, const char *msg)
{
	/* "relation already exists, skipping" and the like: not for the log. */
}

static void prepared(struct pgq *g)
{
	struct pg *s = g->arg;
	if (g->r < 0 && g->r != -ECONNRESET && g->r != -ECANCELED && g->r != -ETIMEDOUT)
		log_msg(LOG_ERR, "state database: cannot prepare the statements: %s", s->err);
	free(g);
}

static int session_start(struct pgconn *c);

/*
 * The connection parameters: robust defaults the URL may override, then the
 * URL, then what overrides it (the hosts with the addresses looked up here:
 * libpq connects to those and still checks the certificate against the host
 * name), then the password.
 */
static PGconn *connect_params(struct pg *s, bool blocking, const char *const *over_keys, const char *const *over_vals)
{
	const char *keys[12] = { "connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
				 "tcp_user_timeout", "fallback_application_name", "dbname" };
	const char *vals[12] = { "10", "5", "2", "3", "10000", "embedwatchd", s->url };
	size_t n = 7;
	for (size_t i = 0; over_keys && over_keys[i] && n < 10; i++) {
		keys[n] = over_keys[i];
		vals[n++] = over_vals[i];
	}
	if (s->password) {
		keys[n] = "password";
		vals[n++] = s->password;
	}
	keys[n] = vals[n] = NULL;
	return blocking ? PQconnectdbParams(keys, vals, 1) : PQconnectStartParams(keys, vals, 1);
}

static void connecting(struct pgconn *c)
{
	struct pg *s = c->s;
	PostgresPollingStatusType st = PQconnectPoll(c->conn);
	int r = 0;
	/*
	 * A new handle at each step: when a host fails libpq closes its socket and
	 * opens one to the next host, which may get the same number; a handle kept
	 * for the old socket would never hear of the new one.
	 */
	poll_drop(c);
	switch (st) {
	case PGRES_POLLING_OK:
		c->retry_run = 0;
		if (session_start(c) < 0) {
			lost(c);
			return;
		}
		log_msg(LOG_NOTICE, "state database: %s connection made again (%s)", c->name, s->desc);
		pump(c);
		return;
	case PGRES_POLLING_READING:
		r = poll_set(c, UV_READABLE);
		break;
	case PGRES_POLLING_WRITING:
		r = poll_set(c, UV_WRITABLE);
		break;
	default:
		set_err(s, PQerrorMessage(c->conn));
		lost(c);
		return;
	}
	if (r < 0)
		lost(c);
}

/* ---- a reconnect's host names, looked up off the loop thread ---- */

#define PG_HOSTS_MAX 16             /* hosts in the URL this handles; more: libpq looks them up itself */
#define PG_ADDRS_PER_HOST 4         /* addresses tried per host name, in the resolver's order */
struct pgresolve {
	uv_getaddrinfo_t req;
	struct pgconn *c;           /* NULL: the store went away; the answer only frees this */
	char *hosts, *ports;        /* the URL's host and port lists, cut at their commas */
	char *host[PG_HOSTS_MAX], *port[PG_HOSTS_MAX];
	size_t n, n_ports, i;
	/* What libpq gets instead: each host once per address, with that address and its port. */
	struct buf out_host, out_addr, out_port;
	size_t n_out;
};

static void resolve_free(struct pgresolve *r)
{
	free(r->hosts);
	free(r->ports);
	buf_free(&r->out_host);
	buf_free(&r->out_addr);
	buf_free(&r->out_port);
	free(r);
}

static void connect_async(struct pgconn *c, const char *const *keys, const char *const *vals);
static void resolve_next(struct pgresolve *r);

/* One entry of the lists libpq gets: host i at addr ("" for a socket). */
static void resolve_out(struct pgresolve *r, const char *addr)
{
	const char *sep = r->n_out++ ? "," : "";
	buf_printf(&r->out_host, "%s%s", sep, r->host[r->i]);
	buf_printf(&r->out_addr, "%s%s", sep, addr);
	if (r->n_ports > 1)
		buf_printf(&r->out_port, "%s%s", sep, r->i < r->n_ports ? r->port[r->i] : "");
}

static void resolve_failed(struct pgresolve *r, const char *why)
{
	struct pgconn *c = r->c;
	char msg[400];
	snprintf(msg, sizeof(msg), "cannot resolve host \"%.200s\": %s", r->host[r->i], why);
	set_err(c->s, msg);
	c->resolving = NULL;
	resolve_free(r);
	lost(c);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct pgresolve *r = container_of(req, struct pgresolve, req);
	if (!r->c) {
		uv_freeaddrinfo(res);
		resolve_free(r);
		return;
	}
	size_t n = 0;
	for (struct addrinfo *a = status == 0 ? res : NULL; a && n < PG_ADDRS_PER_HOST; a = a->ai_next) {
		char ip[INET6_ADDRSTRLEN] = "";
		if (a->ai_family == AF_INET6)
			uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, ip, sizeof(ip));
		else if (a->ai_family == AF_INET)
			uv_ip4_name((const struct sockaddr_in *)a->ai_addr, ip, sizeof(ip));
		if (ip[0]) {
			resolve_out(r, ip);
			n++;
		}
	}
	uv_freeaddrinfo(res);
	if (!n) {
		resolve_failed(r, status < 0 ? uv_strerror(status) : "no address");
		return;
	}
	r->i++;
	resolve_next(r);
}

static bool is_numeric(const char *h)
{
	unsigned char a[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

static bool is_socket(const char *h)
{
	return !h[0] || h[0] == '/' || h[0] == '@';
}

/* Adds the next hosts (addresses as they are, sockets without one) until a name needs a lookup; then connects. */
static void resolve_next(struct pgresolve *r)
{
	struct pgconn *c = r->c;
	for (; r->i < r->n; r->i++) {
		const char *h = r->host[r->i];
		if (is_socket(h) || is_numeric(h)) {
			resolve_out(r, is_socket(h) ? "" : h);
			continue;
		}
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
		int e = uv_getaddrinfo(c->s->loop, &r->req, resolved, h, NULL, &hints);
		if (e < 0)
			resolve_failed(r, uv_strerror(e));
		return;
	}
	/* libpq tries them in turn, connecting to each address and checking the certificate against its host. */
	const char *keys[4] = { "host", "hostaddr" }, *vals[4] = { r->out_host.data, r->out_addr.data };
	if (r->n_ports > 1) {
		keys[2] = "port";
		vals[2] = r->out_port.data;
	}
	c->resolving = NULL;
	log_msg(LOG_DEBUG, "state database: connecting to %zu addresses of %zu hosts, looked up off the loop", r->n_out, r->n);
	connect_async(c, keys, vals);
	resolve_free(r);
}

/* Cuts list at its commas into at most PG_HOSTS_MAX entries; returns false when there were more. */
static bool split_list(char *list, char **out, size_t *n)
{
	char *p = list;
	*n = 0;
	while (p && *n < PG_HOSTS_MAX) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		out[(*n)++] = p;
		p = comma ? comma + 1 : NULL;
	}
	return p == NULL;
}

/*
 * Starts the lookups of the URL's host names when there are any and it gives
 * no hostaddr itself; the connect follows them. False: nothing to look up.
 */
static bool resolve_start(struct pgconn *c)
{
	struct pg *s = c->s;
	PQconninfoOption *opts = PQconninfoParse(s->url, NULL);
	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
	}
	if (!host || !*host || (hostaddr && *hostaddr)) {
		PQconninfoFree(opts);
		return false;
	}
	struct pgresolve *r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->hosts = xstrdup(host);
	r->ports = port ? xstrdup(port) : NULL;
	PQconninfoFree(opts);
	bool all = split_list(r->hosts, r->host, &r->n);
	if (r->ports)
		all = split_list(r->ports, r->port, &r->n_ports) && all;
	bool names = false;
	for (size_t i = 0; i < r->n; i++)
		names |= !is_socket(r->host[i]) && !is_numeric(r->host[i]);
	if (!names || !all) {
		resolve_free(r);
		return false;
	}
	c->resolving = r;
	resolve_next(r);
	return true;
}

static void on_retry(uv_timer_t *t)
{
	struct pgconn *c = container_of(t, struct pgconn, retry);
	c->connect_mono = util_mono_ms();
	watchdog_arm(c->s);
	if (!resolve_start(c))
		connect_async(c, NULL, NULL);
}

/* Starts a connection without waiting; keys and vals (NULL-ended, or NULL) override the URL's. */
static void connect_async(struct pgconn *c, const char *const *keys, const char *const *vals)
{
	struct pg *s = c->s;
	c->conn = connect_params(s, false, keys, vals);
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
		set_err(s, c->conn ? PQerrorMessage(c->conn) : "out of memory");
		lost(c);
		return;
	}
	c->state = PG_CONNECTING;
	watchdog_arm(s);
	connecting(c);
}

static void connect_later(struct pgconn *c)
{
	if (c->s->detached)
		return;
	/* 100 ms, doubling to 5 s: a restarting server is back in a second or two. */
	uint64_t delay = 100;
	for (unsigned i = 0; i < c->retry_run && delay < 5000; i++)
		delay *= 2;
	if (delay > 5000)
		delay = 5000;
	c->retry_run++;
	UV_CHECK(uv_timer_start(&c->retry, on_retry, delay, 0));
}

/* ---- the watchdog: nothing waits on the server unbounded ---- */

/* How long a read may go without a byte from the server (a standby's answers wait this long at most). */
#define PG_ANSWER_MS 5000

/* How long c may go without a byte while it waits for g: a commit may wait on a row for lock_timeout first. */
static uint64_t answer_limit(const struct pg *s, const struct pgconn *c, const struct pgq *g)
{
	if (c->is_lease)
		return ttl_of(s) > PG_ANSWER_MS ? ttl_of(s) : PG_ANSWER_MS;
	return g->commit ? ttl_of(s) + PG_ANSWER_MS : PG_ANSWER_MS;
}

/* A connect past connect_timeout, or an answer not begun within its limit: the connection is given up. */
static void watch_conn(struct pgconn *c, uint64_t now)
{
	struct pg *s = c->s;
	char msg[300];
	if (c->state == PG_CONNECTING && now - c->connect_mono > s->connect_timeout_ms) {
		const char *h = PQhost(c->conn), *p = PQport(c->conn);
		snprintf(msg, sizeof(msg), "timeout expired connecting to %s%s%s (connect_timeout %llu s)",
			 h && *h ? h : "the server", p && *p ? " port " : "", p && *p ? p : "",
			 (unsigned long long)s->connect_timeout_ms / 1000);
		set_err(s, msg);
		lost_with(c, -ETIMEDOUT);
		return;
	}
	if (c->state != PG_READY || !c->head)
		return;
	uint64_t since = c->head->sent_mono > c->rx_mono ? c->head->sent_mono : c->rx_mono;
	uint64_t limit = answer_limit(s, c, c->head);
	if (now - since > limit) {
		snprintf(msg, sizeof(msg), "the shared state did not answer within %llu s (%s connection; reconnecting)",
			 (unsigned long long)(limit + 999) / 1000, c->name);
		set_err(s, msg);
		lost_with(c, -ETIMEDOUT);
	}
}

/* Something on c is awaited: an answer or a connect. */
static bool awaited(const struct pgconn *c)
{
	return c->state == PG_CONNECTING || (c->state == PG_READY && c->head);
}

static void on_watchdog(uv_timer_t *t)
{
	struct pg *s = container_of(t, struct pg, watchdog);
	uint64_t now = util_mono_ms();
	watch_conn(&s->main, now);
	if (s->lease_open)
		watch_conn(&s->lease, now);
	/* Idle: no tick until something is sent or a connect starts (which arm it again). */
	if (!awaited(&s->main) && !(s->lease_open && awaited(&s->lease)))
		uv_timer_stop(&s->watchdog);
}

/* Checks every 250 ms while an answer or a connect is awaited (the timer does not keep the loop alive). */
static void watchdog_arm(struct pg *s)
{
	if (s->detached || uv_is_active((uv_handle_t *)&s->watchdog))
		return;
	UV_CHECK(uv_timer_start(&s->watchdog, on_watchdog, 250, 250));
}

/* ---- answers ---- */

/* LISTEN embedwatch: a standby wrote a request, or an active gave the lease up. */
static void notifications(struct pgconn *c)
{
	struct pg *s = c->s;
	PGnotify *n;
	while (c->conn && (n = PQnotifies(c->conn))) {
		char what[32];
		snprintf(what, sizeof(what), "%s", n->extra);
		PQfreemem(n);
		if (s->notify)
			s->notify(what, s->notify_arg);
	}
}

static void pump(struct pgconn *c)
{
	struct pg *s = c->s;
	if (!PQconsumeInput(c->conn)) {
		set_err(s, PQerrorMessage(c->conn));
		lost(c);
		return;
	}
	c->rx_mono = util_mono_ms();
	notifications(c);
	while (c->head && !PQisBusy(c->conn)) {
		struct pgq *g = c->head;
		PGresult *res = PQgetResult(c->conn);
		if (!res) {
			/* The end of one statement's answer; the next one's (or the Sync) follows. */
			g->got++;
			continue;
		}
		switch (PQresultStatus(res)) {
		case PGRES_PIPELINE_SYNC:
			c->head = g->next;
			if (!c->head)
				c->tail = NULL;
			g->end(g);
			break;
		case PGRES_PIPELINE_ABORTED:
			break;      /* skipped after the error already noted */
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			if (!g->r && g->result)
				g->result(g, g->got, res);
			break;
		default:
			if (!g->r) {
				g->r = map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
				set_err_of(s, res);
			}
			break;
		}
		PQclear(res);
		if (!c->conn)
			return;     /* a callback closed it */
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		set_err(s, PQerrorMessage(c->conn));
		lost(c);
		return;
	}
	notifications(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct pgconn *c = ((struct pgpoll *)h->data)->c;
	if (c->state == PG_CONNECTING) {
		/* An error on the socket too: libpq says what it was, and moves on to the next host. */
		connecting(c);
		return;
	}
	if (status < 0) {
		/* libpq's reason when it has one (the socket's own error), else the poll's. */
		if (PQconsumeInput(c->conn) && PQstatus(c->conn) != CONNECTION_BAD) {
			char msg[200];
			snprintf(msg, sizeof(msg), "the connection's socket failed (%s)", uv_strerror(status));
			set_err(c->s, msg);
		} else {
			set_err(c->s, PQerrorMessage(c->conn));
		}
		lost(c);
		return;
	}
	if (events & UV_WRITABLE)
		flush(c);
	if (c->conn && (events & UV_READABLE))
		pump(c);
}

/* How long the store waits at most when the loop does not run (start-up, exit). */
#define PG_WAIT_MS 10000

/* Blocks until every group on both connections has its answer, or PG_WAIT_MS (start-up and exit only). */
static void pg_wait(struct store *st)
{
	struct pg *s = pg_of(st);
	struct pgconn *cs[2] = { &s->main, &s->lease };
	uint64_t end = util_mono_ms() + PG_WAIT_MS;
	for (;;) {
		struct pollfd pfd[2];
		struct pgconn *on[2];
		nfds_t n = 0;
		for (int i = 0; i < 2; i++) {
			struct pgconn *c = cs[i];
			if (!c->head || c->state != PG_READY)
				continue;
			int r = PQflush(c->conn);
			if (r < 0) {
				set_err(s, PQerrorMessage(c->conn));
				lost(c);
				continue;
			}
			pfd[n] = (struct pollfd){ .fd = PQsocket(c->conn), .events = POLLIN | (r > 0 ? POLLOUT : 0) };
			on[n++] = c;
		}
		if (!n)
			return;
		uint64_t now = util_mono_ms();
		int k = now < end ? poll(pfd, n, (int)(end - now)) : 0;
		if (k <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			char msg[160];
			if (k == 0)
				snprintf(msg, sizeof(msg), "the shared state did not answer within %d s", PG_WAIT_MS / 1000);
			else
				snprintf(msg, sizeof(msg), "poll: %s", strerror(errno));
			set_err(s, msg);
			for (nfds_t i = 0; i < n; i++)
				lost_with(on[i], -ETIMEDOUT);
			return;
		}
		for (nfds_t i = 0; i < n; i++)
			if (pfd[i].revents && on[i]->conn)
				pump(on[i]);
	}
}

/* ---- sending ---- */

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

static int send_prepared(struct pgconn *c, int q, int n, const char *const *v)
{
	char name[16];
	snprintf(name, sizeof(name), "q%d", q);
	if (!PQsendQueryPrepared(c->conn, name, n, v, NULL, NULL, 0)) {
		set_err(c->s, PQerrorMessage(c->conn));
		return -EIO;
	}
	return 0;
}

/* Sends one read (a statement and its Sync) on c; false when not connected (the caller then answers at once). */
static bool send_read(struct pgconn *c, struct pgq *g, int q, int n, const char *const *v)
{
	struct pg *s = c->s;
	if (c->state != PG_READY) {
		if (c->state != PG_DOWN || !s->err[0])
			set_err(s, "not connected (reconnecting)");
		g->r = -ENOTCONN;
		g->end(g);
		return false;
	}
	g->sent_mono = util_mono_ms();      /* before the send: see group_new */
	if (send_prepared(c, q, n, v) < 0 || !PQpipelineSync(c->conn)) {
		set_err(s, PQerrorMessage(c->conn));
		g->r = -ECONNRESET;
		g->end(g);
		lost(c);
		return false;
	}
	group_push(c, g);
	flush(c);
	watchdog_arm(s);
	return true;
}

static const char *fmt_i64(char *buf, int64_t v)
{
	snprintf(buf, 24, "%lld", (long long)v);
	return buf;
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

/*
 * The session's settings, from the lease's ttl: the server ends a session
 * whose client is gone (keepalives, tcp_user_timeout: TCP only) or that sits
 * in a transaction; a lock is waited for at most lock_timeout (the lease's
 * connection: a quarter of the ttl, at most 1 s; commits: the ttl), so no take,
 * renewal or commit queues behind a dead session for long; and the sessions
 * carry this daemon's name, by which a taker ends them once its lease expired.
 */
static int send_settings(struct pgconn *c)
{
	struct pg *s = c->s;
	uint64_t ttl = ttl_of(s);
	uint64_t lock = c->is_lease ? (ttl / 4 < 1000 ? ttl / 4 : 1000) : ttl;
	char v[7][24];
	const char *p[7] = {
		fmt_i64(v[0], (int64_t)ttl / 2), fmt_i64(v[1], (int64_t)lock),
		fmt_i64(v[2], ttl / 4000 ? (int64_t)ttl / 4000 : 1), "1", "2", fmt_i64(v[5], (int64_t)ttl),
		s->app[0] ? s->app : "embedwatchd",
	};
	if (!PQsendQueryParams(c->conn, "SELECT set_config('idle_in_transaction_session_timeout', $1, false), "
			       "set_config('lock_timeout', $2, false), set_config('tcp_keepalives_idle', $3, false), "
			       "set_config('tcp_keepalives_interval', $4, false), set_config('tcp_keepalives_count', $5, false), "
			       "set_config('tcp_user_timeout', $6, false), set_config('application_name', $7, false)",
			       7, NULL, p, NULL, NULL, 0)) {
		set_err(s, PQerrorMessage(c->conn));
		return -EIO;
	}
	return 0;
}

/* A new connection: non-blocking, pipelined, every statement prepared (in the pipeline, ahead of anything else). */
static int session_start(struct pgconn *c)
{
	struct pg *s = c->s;
	char ep[24];
	unsigned n = Q__MAX + 1;
	int r = 0;

	PQsetNoticeProcessor(c->conn, ignore_notice, NULL);
	if (PQsetnonblocking(c->conn, 1) != 0 || PQenterPipelineMode(c->conn) != 1) {
		set_err(s, PQerrorMessage(c->conn));
		return -EIO;
	}
	for (int i = 0; r == 0 && i < Q__MAX; i++) {
		char name[16];
		snprintf(name, sizeof(name), "q%d", i);
		if (!PQsendPrepare(c->conn, name, queries[i], 0, NULL))
			r = -EIO;
	}
	if (r == 0)
		r = send_settings(c);
	/* Notifications from the others, on the main connection. */
	if (r == 0 && !c->is_lease) {
		if (!PQsendQueryParams(c->conn, "LISTEN embedwatch", 0, NULL, NULL, NULL, NULL, 0))
			r = -EIO;
		n++;
	}
	/* The active's advisory lock again after a reconnect (if another took it meanwhile, the next renewal fails). */
	if (r == 0 && c->is_lease && s->epoch > 0) {
		const char *v[] = { fmt_i64(ep, s->epoch) };
		r = send_prepared(c, Q_RELOCK, 1, v);
		n++;
	}
	if (r < 0 || !PQpipelineSync(c->conn)) {
		set_err(s, PQerrorMessage(c->conn));
		return -EIO;
	}
	group_push(c, group_new(s, n, NULL, prepared, NULL, NULL, s));
	c->state = PG_READY;
	c->was_ready = true;
	c->rx_mono = util_mono_ms();
	snprintf(s->desc, sizeof(s->desc), "PostgreSQL database %s on %s (user %s)", PQdb(c->conn),
		 PQhost(c->conn) && *PQhost(c->conn) ? PQhost(c->conn) : "localhost", PQuser(c->conn));
	flush(c);
	watchdog_arm(s);
	return 0;
}

/* ---- writes ---- */

static int pg_begin(struct store *st)
{
	struct pg *s = pg_of(st);
	wclear(s);
	if (s->main.state != PG_READY) {
		set_err(s, s->main.state == PG_CONNECTING ? "connecting" : s->err[0] ? s->err : "not connected");
		return -ENOTCONN;
	}
	if (s->epoch <= 0) {
		/* Only the active writes the shared state (standbys' requests are rows the active applies). */
		set_err(s, "this daemon does not hold the lease");
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

static void lease_confirmed(struct pg *s, struct pgq *g)
{
	if (g->r == 0 && g->confirms && g->sent_mono > s->confirmed_mono)
		s->confirmed_mono = g->sent_mono;
	if (g->r == -ESTALE && s->epoch > 0) {
		log_msg(LOG_WARNING, "state database: the lease (epoch %lld) is lost: %s", (long long)s->epoch, s->err);
		s->epoch = 0;
	}
}

static void commit_end(struct pgq *g)
{
	lease_confirmed(g->arg2, g);
	((store_done_fn *)g->done)(g->r, g->arg);
	free(g->ret_new);
	free(g);
}

static void pg_commit_async(struct store *st, store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	struct pgq *g = group_new(s, (unsigned)s->n_w, commit_result, commit_end, NULL, (void *)done, arg);
	int r = 0;

	g->arg2 = s;
	if (s->main.state != PG_READY || !s->building) {
		set_err(s, "not connected (reconnecting)");
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
	wput(s, Q_FENCE, NULL, 2, fmt_i64(ep, s->epoch), s->holder);
	g->n = (unsigned)s->n_w;
	g->commit = true;
	g->ret_new = xcalloc(s->n_w, sizeof(*g->ret_new));
	for (size_t i = 0; r == 0 && i < s->n_w; i++) {
		g->ret_new[i] = s->w[i].ret_new;
		r = send_prepared(&s->main, s->w[i].q, s->w[i].n, s->w[i].v);
	}
	wclear(s);
	/* An empty transaction still gets its Sync: the outbox always hears back. */
	if (r < 0 || !PQpipelineSync(s->main.conn)) {
		set_err(s, PQerrorMessage(s->main.conn));
		g->r = -ECONNRESET;
		commit_end(g);
		lost(&s->main);
		return;
	}
	group_push(&s->main, g);
	flush(&s->main);
	watchdog_arm(s);
}

static int pg_put_job(struct store *st, const struct store_job *j)
{
	char a[24], u[24], status[24], ek[24], ec[24], disc[24], cancel[24], kind[24];
	return wput(pg_of(st), Q_PUT_JOB, NULL, 10, j->id, j->batch, fmt_i64(status, j->status), fmt_i64(a, j->added_ms),
		    fmt_i64(u, j->updated_ms), fmt_i64(ek, j->err_kind), fmt_i64(ec, j->err_count), fmt_i64(disc, j->discovered),
		    fmt_i64(cancel, j->cancel), fmt_i64(kind, j->kind));
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
	int r = wput(pg_of(st), Q_PUT_EVENT, ret_new, 7, id, type, subject, batch, fmt_i64(ts, ts_ms), payload, arr);
	free(arr);
	return r;
}

static int pg_put_delivery(struct store *st, const char *event_id, const char *hook, const char *state,
			   unsigned attempts, int64_t next_ms, const char *last_error, int64_t updated_ms)
{
	char a[24], n[24], u[24];
	return wput(pg_of(st), Q_PUT_DELIVERY, NULL, 7, event_id, hook, state, fmt_i64(a, attempts), fmt_i64(n, next_ms),
		    last_error, fmt_i64(u, updated_ms));
}

static int pg_put_batch(struct store *st, const char *name, int64_t created_ms, const char *done_event)
{
	char c[24];
	return wput(pg_of(st), Q_PUT_BATCH, NULL, 3, name, fmt_i64(c, created_ms), done_event);
}

static int pg_prune(struct store *st, int64_t before_ms, int64_t deliveries_before_ms)
{
	struct pg *s = pg_of(st);
	char b[24], d[24];
	wput(s, Q_PRUNE_DELIVERIES, NULL, 1, fmt_i64(d, deliveries_before_ms));
	wput(s, Q_PRUNE_EVENTS, NULL, 1, fmt_i64(b, before_ms));
	return wput(s, Q_PRUNE_BATCHES, NULL, 0);
}

static int pg_put_hook(struct store *st, const struct store_hook *h)
{
	char d[24], f[24], l[24];
	return wput(pg_of(st), Q_PUT_HOOK, NULL, 6, h->name, fmt_i64(d, h->disabled_ms), h->why, fmt_i64(f, h->failing_ms),
		    h->last_error, fmt_i64(l, h->last_error_ms));
}

/* ---- reads ---- */

static const char *val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int64_t ival(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

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
		.id = val(res, i, 0), .batch = val(res, i, 1), .status = (int)ival(res, i, 2),
		.added_ms = ival(res, i, 3), .updated_ms = ival(res, i, 4), .err_kind = (int)ival(res, i, 5),
		.err_count = (int)ival(res, i, 6), .discovered = (int)ival(res, i, 7), .cancel = (int)ival(res, i, 8),
		.kind = (int)ival(res, i, 9),
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
	struct pgq *g = group_new(s, 1, jobs_result, read_end, (void *)fn, (void *)done, arg);
	if (f && f->ids) {
		char *arr = text_array((char *const *)f->ids, f->n_ids);
		const char *v[] = { arr };
		send_read(&s->main, g, Q_GET_JOBS, 1, v);
		free(arr);
	} else if (f && f->batch) {
		const char *v[] = { f->batch };
		send_read(&s->main, g, Q_EACH_JOB_BATCH, 1, v);
	} else {
		send_read(&s->main, g, Q_EACH_JOB, 0, NULL);
	}
}

static int delivery_row(struct pgq *g, const PGresult *res, int i)
{
	struct store_delivery d = {
		.event_id = val(res, i, 0), .hook = val(res, i, 1), .state = val(res, i, 2),
		.attempts = (unsigned)ival(res, i, 3), .next_ms = ival(res, i, 4), .last_error = val(res, i, 5),
		.updated_ms = ival(res, i, 6), .type = val(res, i, 7), .subject = val(res, i, 8), .batch = val(res, i, 9),
		.payload = val(res, i, 10),
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
	struct pgq *g = group_new(s, 1, deliveries_result, read_end, (void *)fn, (void *)done, arg);
	char since[24];
	if (state) {
		const char *v[] = { state, fmt_i64(since, since_ms), hook };
		send_read(&s->main, g, Q_EACH_DELIVERY_STATE, 3, v);
	} else {
		const char *v[] = { fmt_i64(since, since_ms), hook };
		send_read(&s->main, g, Q_EACH_DELIVERY, 2, v);
	}
}

static void pg_each_dead(struct store *st, const char *hook, int64_t since_ms, const char *type,
			 int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	char since[24];
	const char *v[] = { hook, fmt_i64(since, since_ms), type };
	send_read(&s->main, group_new(s, 1, deliveries_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_DEAD, 3, v);
}

static void pg_each_pending(struct store *st, int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	send_read(&s->main, group_new(s, 1, deliveries_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_PENDING, 0, NULL);
}

static int hook_row(struct pgq *g, const PGresult *res, int i)
{
	struct store_hook h = {
		.name = val(res, i, 0), .disabled_ms = ival(res, i, 1), .why = val(res, i, 2),
		.failing_ms = ival(res, i, 3), .last_error = val(res, i, 4), .last_error_ms = ival(res, i, 5),
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
	send_read(&s->main, group_new(s, 1, hooks_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_HOOK, 0, NULL);
}

/* A read of one row of values, kept for the end. */
struct one_row {
	struct pgq g;
	PGresult *res;
};

static void one_result(struct pgq *g, unsigned i, const PGresult *res)
{
	struct one_row *o = container_of(g, struct one_row, g);
	if (!o->res && PQntuples(res) > 0)
		o->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
}

static struct one_row *one_new(void *done, void *arg, void (*end)(struct pgq *g))
{
	struct one_row *o = xcalloc(1, sizeof(*o));
	o->g.n = 1;
	o->g.result = one_result;
	o->g.end = end;
	o->g.done = done;
	o->g.arg = arg;
	return o;
}

static void hook_stats_end(struct pgq *g)
{
	struct one_row *o = container_of(g, struct one_row, g);
	struct store_hook_stats st = { 0 };
	if (g->r == 0 && o->res) {
		st.pending = ival(o->res, 0, 0);
		st.dead = ival(o->res, 0, 1);
		st.done_since = ival(o->res, 0, 2);
		st.last_done_ms = ival(o->res, 0, 3);
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
	const char *v[] = { hook, fmt_i64(since, since_ms) };
	send_read(&s->main, &one_new((void *)done, arg, hook_stats_end)->g, Q_HOOK_STATS, 2, v);
}

static void get_event_end(struct pgq *g)
{
	struct one_row *o = container_of(g, struct one_row, g);
	void (*done)(int, const char *, const char *, const char *, const char *, void *) = g->done;
	if (g->r == 0 && o->res)
		done(0, val(o->res, 0, 0), val(o->res, 0, 1), val(o->res, 0, 2), val(o->res, 0, 3), g->arg);
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
	send_read(&s->main, &one_new((void *)done, arg, get_event_end)->g, Q_GET_EVENT, 1, v);
}

static int batch_row(struct pgq *g, const PGresult *res, int i)
{
	return ((int (*)(const char *, const char *, void *))g->fn)(val(res, i, 0), val(res, i, 1), g->arg);
}

static void batches_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, batch_row);
}

static void pg_each_batch(struct store *st, int (*fn)(const char *, const char *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	send_read(&s->main, group_new(s, 1, batches_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_BATCH, 0, NULL);
}

static void snapshot_end(struct pgq *g)
{
	struct one_row *o = container_of(g, struct one_row, g);
	((void (*)(int, const char *, void *))g->done)(g->r, g->r == 0 && o->res ? val(o->res, 0, 0) : NULL, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_get_snapshot(struct store *st, const char *job_id, void (*done)(int, const char *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	const char *v[] = { job_id };
	send_read(&s->main, &one_new((void *)done, arg, snapshot_end)->g, Q_GET_SNAPSHOT, 1, v);
}

static void pg_get_meta(struct store *st, const char *key, void (*done)(int, const char *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	const char *v[] = { key };
	send_read(&s->main, &one_new((void *)done, arg, snapshot_end)->g, Q_GET_META, 1, v);
}

static int pg_put_meta(struct store *st, const char *key, const char *value)
{
	return wput(pg_of(st), Q_PUT_META, NULL, 2, key, value);
}

static int event_row(struct pgq *g, const PGresult *res, int i)
{
	return ((int (*)(const char *, const char *, int64_t, void *))g->fn)(val(res, i, 0), val(res, i, 1),
									     ival(res, i, 2), g->arg);
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
	send_read(&s->main, group_new(s, 1, events_result, read_end, (void *)fn, (void *)done, arg), Q_JOB_EVENTS, 1, v);
}

/* ---- the lease ---- */

static int conn_open(struct pgconn *c);

/* FNV-1a: a short, stable tag of a host name. */
static uint32_t fnv32(const char *p)
{
	uint32_t h = 2166136261u;
	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static void pg_lease_setup(struct store *st, const char *holder, const char *host, int pid, uint64_t ttl_ms)
{
	struct pg *s = pg_of(st);
	snprintf(s->holder, sizeof(s->holder), "%s", holder);
	snprintf(s->host, sizeof(s->host), "%s", host);
	s->pid = pid;
	s->ttl_ms = ttl_ms;
	/* Unique per holder and short enough for application_name (63 bytes): pid, holder and host hashed. */
	snprintf(s->app, sizeof(s->app), "embedwatchd %d %08x%08x", pid, (unsigned)fnv32(holder), (unsigned)fnv32(host));
	/* The main session takes the settings that depend on the ttl and the name. */
	if (s->main.state == PG_READY && send_settings(&s->main) == 0 && PQpipelineSync(s->main.conn)) {
		group_push(&s->main, group_new(s, 1, NULL, prepared, NULL, NULL, s));
		flush(&s->main);
		watchdog_arm(s);
	}
	/* The lease's own connection (start-up: it may wait, like the store's open). */
	s->lease_open = true;
	if (conn_open(&s->lease) < 0) {
		log_msg(LOG_WARNING, "state database: cannot open the lease's connection: %s; retrying", s->err);
		connect_later(&s->lease);
	}
}

static bool pg_lease_held(struct store *st)
{
	return pg_of(st)->epoch > 0;
}

static uint64_t pg_lease_fresh_until(struct store *st)
{
	struct pg *s = pg_of(st);
	/* A margin for clocks that run at slightly different rates: a fifth of the ttl, at most 1 s. */
	uint64_t margin = s->ttl_ms / 5 < 1000 ? s->ttl_ms / 5 : 1000;
	return s->epoch > 0 ? s->confirmed_mono + s->ttl_ms - margin : 0;
}

static bool pg_lease_fresh(struct store *st)
{
	return util_mono_ms() < pg_lease_fresh_until(st);
}

static int64_t pg_lease_epoch(struct store *st)
{
	return pg_of(st)->epoch;
}

static void pg_on_notify(struct store *st, void (*fn)(const char *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	s->notify = fn;
	s->notify_arg = arg;
}

static struct store_lease lease_of(const PGresult *res, int first)
{
	return (struct store_lease){
		.epoch = ival(res, 0, first), .holder = val(res, 0, first + 1), .host = val(res, 0, first + 2),
		.pid = (int)ival(res, 0, first + 3), .age_ms = ival(res, 0, first + 4), .ttl_ms = ival(res, 0, first + 5),
	};
}

static void take_end(struct pgq *g)
{
	struct one_row *o = container_of(g, struct one_row, g);
	struct pg *s = g->arg2;
	bool taken = false;
	struct store_lease l = { 0 };
	if (g->r == 0 && o->res) {
		taken = ival(o->res, 0, 0) > 0;
		l = lease_of(o->res, 1);
		if (taken) {
			s->epoch = l.epoch;
			s->confirmed_mono = g->sent_mono;
		}
	}
	((void (*)(int, bool, const struct store_lease *, void *))g->done)(g->r, taken, g->r == 0 && o->res ? &l : NULL, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_lease_take(struct store *st, void (*done)(int, bool, const struct store_lease *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	char pid[24], ttl[24];
	struct one_row *o = one_new((void *)done, arg, take_end);
	o->g.arg2 = s;
	const char *v[] = { s->holder, s->host, fmt_i64(pid, s->pid), fmt_i64(ttl, (int64_t)s->ttl_ms), s->app };
	send_read(&s->lease, &o->g, Q_LEASE_TAKE, 5, v);
}

static void renew_result(struct pgq *g, unsigned i, const PGresult *res)
{
	g->i64 = strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
}

static void renew_end(struct pgq *g)
{
	if (g->r == 0 && g->i64 != 1) {
		g->r = -ESTALE;
		set_err(g->arg2, "another embedwatchd holds the lease now");
	}
	lease_confirmed(g->arg2, g);
	((store_done_fn *)g->done)(g->r, g->arg);
	free(g);
}

static void pg_lease_renew(struct store *st, store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	char ep[24], ttl[24];
	struct pgq *g = group_new(s, 1, renew_result, renew_end, NULL, (void *)done, arg);
	g->arg2 = s;
	g->confirms = true;
	if (s->epoch <= 0) {
		set_err(s, "this daemon does not hold the lease");
		g->r = -ESTALE;
		renew_end(g);
		return;
	}
	const char *v[] = { fmt_i64(ep, s->epoch), s->holder, fmt_i64(ttl, (int64_t)s->ttl_ms) };
	send_read(&s->lease, g, Q_LEASE_RENEW, 3, v);
}

static void get_end(struct pgq *g)
{
	struct one_row *o = container_of(g, struct one_row, g);
	struct store_lease l = { 0 };
	if (g->r == 0 && o->res)
		l = lease_of(o->res, 0);
	((void (*)(int, const struct store_lease *, void *))g->done)(g->r, g->r == 0 ? &l : NULL, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_lease_get(struct store *st, void (*done)(int, const struct store_lease *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	send_read(&s->main, &one_new((void *)done, arg, get_end)->g, Q_LEASE_GET, 0, NULL);
}

static void release_end(struct pgq *g)
{
	free(g);
}

static void pg_lease_release(struct store *st)
{
	struct pg *s = pg_of(st);
	char ep[24];
	if (s->epoch <= 0 || s->lease.state != PG_READY)
		return;
	const char *v[] = { fmt_i64(ep, s->epoch), s->holder };
	if (send_read(&s->lease, group_new(s, 1, NULL, release_end, NULL, NULL, NULL), Q_LEASE_RELEASE, 2, v))
		pg_wait(st);
	s->epoch = 0;
}

/* ---- control through any daemon ---- */

static void put_request_end(struct pgq *g)
{
	struct one_row *o = container_of(g, struct one_row, g);
	((void (*)(int, int64_t, void *))g->done)(g->r, g->r == 0 && o->res ? ival(o->res, 0, 0) : 0, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_put_request(struct store *st, const char *line, void (*done)(int, int64_t, void *), void *arg)
{
	struct pg *s = pg_of(st);
	char now[24];
	const char *v[] = { line, fmt_i64(now, util_wall_ms()) };
	send_read(&s->main, &one_new((void *)done, arg, put_request_end)->g, Q_PUT_REQUEST, 2, v);
}

static int request_row(struct pgq *g, const PGresult *res, int i)
{
	return ((int (*)(int64_t, const char *, void *))g->fn)(ival(res, i, 0), val(res, i, 1), g->arg);
}

static void requests_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, request_row);
}

static void pg_each_request(struct store *st, int (*fn)(int64_t, const char *, void *), store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	send_read(&s->main, group_new(s, 1, requests_result, read_end, (void *)fn, (void *)done, arg), Q_EACH_REQUEST, 0, NULL);
}

static int pg_delete_request(struct store *st, int64_t id)
{
	char i[24];
	return wput(pg_of(st), Q_DEL_REQUEST, NULL, 1, fmt_i64(i, id));
}

static int count_row(struct pgq *g, const PGresult *res, int i)
{
	return ((int (*)(const char *, int, int, int64_t, void *))g->fn)(val(res, i, 0), (int)ival(res, i, 1),
									  (int)ival(res, i, 2), ival(res, i, 3), g->arg);
}

static void counts_result(struct pgq *g, unsigned i, const PGresult *res)
{
	each_row(g, res, count_row);
}

static void pg_job_counts(struct store *st, int (*fn)(const char *, int, int, int64_t, void *), store_done_fn *done,
			  void *arg)
{
	struct pg *s = pg_of(st);
	send_read(&s->main, group_new(s, 1, counts_result, read_end, (void *)fn, (void *)done, arg), Q_JOB_COUNTS, 0, NULL);
}

static void counts_end(struct pgq *g)
{
	struct one_row *o = container_of(g, struct one_row, g);
	struct store_counts c = { 0 };
	if (g->r == 0 && o->res)
		c = (struct store_counts){ .deliveries_pending = ival(o->res, 0, 0), .requests = ival(o->res, 0, 1),
					   .batches = ival(o->res, 0, 2) };
	((void (*)(int, const struct store_counts *, void *))g->done)(g->r, g->r == 0 ? &c : NULL, g->arg);
	PQclear(o->res);
	free(o);
}

static void pg_counts(struct store *st, void (*done)(int, const struct store_counts *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	send_read(&s->main, &one_new((void *)done, arg, counts_end)->g, Q_COUNTS, 0, NULL);
}

/* ---- open and close ---- */

static void timer_closed(uv_handle_t *h)
{
}

static void conn_detach(struct pgconn *c)
{
	poll_drop(c);
	uv_close((uv_handle_t *)&c->retry, timer_closed);
	if (c->resolving) {
		/* Its answer (or its cancel) frees it. */
		c->resolving->c = NULL;
		uv_cancel((uv_req_t *)&c->resolving->req);
		c->resolving = NULL;
	}
}

static void pg_detach(struct store *st)
{
	struct pg *s = pg_of(st);
	if (s->detached)
		return;
	s->detached = true;
	conn_detach(&s->main);
	conn_detach(&s->lease);
	uv_close((uv_handle_t *)&s->watchdog, timer_closed);
}

static void pg_close(struct store *st)
{
	struct pg *s = pg_of(st);
	fail_all(&s->main, -ECANCELED);
	fail_all(&s->lease, -ECANCELED);
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
		r = map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
		set_err_of(s, res);
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
		set_err(s, msg);
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
	.close = pg_close, .detach = pg_detach, .error = pg_error, .describe = pg_describe, .busy = pg_busy,
	.wait = pg_wait, .begin = pg_begin, .commit_async = pg_commit_async, .rollback = pg_rollback,
	.put_job = pg_put_job, .put_snapshot = pg_put_snapshot, .delete_job = pg_delete_job, .put_event = pg_put_event,
	.put_delivery = pg_put_delivery, .put_batch = pg_put_batch, .prune = pg_prune, .put_hook = pg_put_hook,
	.each_job = pg_each_job, .each_delivery = pg_each_delivery, .each_dead = pg_each_dead,
	.each_pending = pg_each_pending, .each_hook = pg_each_hook, .hook_stats = pg_hook_stats,
	.get_event = pg_get_event, .each_batch = pg_each_batch, .get_snapshot = pg_get_snapshot, .put_meta = pg_put_meta, .get_meta = pg_get_meta,
	.job_events = pg_job_events,
	.lease_setup = pg_lease_setup, .lease_take = pg_lease_take, .lease_renew = pg_lease_renew,
	.lease_get = pg_lease_get, .lease_release = pg_lease_release, .lease_held = pg_lease_held,
	.lease_fresh = pg_lease_fresh, .lease_fresh_until = pg_lease_fresh_until, .lease_epoch = pg_lease_epoch, .on_notify = pg_on_notify,
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

/*
 * Connects c, waiting (start-up only) at most connect_timeout, and starts its
 * session. Returns 0 or negative with s->err set.
 */
static int conn_open(struct pgconn *c)
{
	struct pg *s = c->s;
	c->conn = connect_params(s, true, NULL, NULL);
	if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
		set_err(s, c->conn ? PQerrorMessage(c->conn) : "out of memory");
		if (c->conn)
			PQfinish(c->conn);
		c->conn = NULL;
		return -ECONNREFUSED;
	}
	return session_start(c);
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
	s->main.conn = connect_params(s, true, NULL, NULL);
	if (!s->main.conn || PQstatus(s->main.conn) != CONNECTION_OK) {
		set_err(s, s->main.conn ? PQerrorMessage(s->main.conn) : "out of memory");
		snprintf(err, errlen, "state database: cannot connect: %s", s->err);
		pg_close(&s->base);
		return -ECONNREFUSED;
	}
	PQsetNoticeProcessor(s->main.conn, ignore_notice, NULL);
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
	if ((r = session_start(&s->main)) == 0)
		pg_wait(&s->base);
	if (r < 0 || s->main.state != PG_READY) {
		/* The handles are the loop's now: the caller closes the store after the loop's last turn. */
		snprintf(err, errlen, "state database: %s", s->err);
		return r < 0 ? r : -EIO;
	}
	return 0;
}
