/*
 * The state: jobs, events, deliveries, batches, hooks. One interface, two
 * backends: SQLite (WAL) in the state directory (store_sqlite.c), or a
 * PostgreSQL database shared by several daemons (store_pg.c), which also
 * holds the lease that makes one of them active and the control requests
 * standbys write for it. Only those two files see their library.
 *
 * Writes are grouped: store_begin(), any number of store_put_*(), then
 * store_commit_async(). Reads and commits end with a callback, called exactly
 * once: by SQLite at once, before the call returns; by PostgreSQL from the
 * loop when the answer arrives (never a wait on the loop). Row callbacks
 * return non-zero to stop early (negative: an error for done). Strings handed
 * to a callback are borrowed for the call.
 */
#ifndef EW_STORE_H
#define EW_STORE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct store;

/* A read or a commit is over: r is 0 or a negative errno (-ESTALE: the commit was fenced). */
typedef void store_done_fn(int r, void *arg);

struct store_config {
	uv_loop_t *loop;
	const char *dir;            /* SQLite: the state directory */
	const char *url;            /* PostgreSQL: a libpq URI (postgresql://...); NULL or "": SQLite */
	const char *password;       /* PostgreSQL: its password, or NULL (libpq's own sources then) */
};

/* Opens the state (creating or migrating its schema; start-up only, may block). On error returns a negative errno and a message. */
int store_open(const struct store_config *c, struct store **ret, char *err, size_t errlen);
/* Fails whatever is still pending (done gets -ECANCELED), closes the connection and frees. Accepts NULL. After the loop has run its last turn. */
void store_close(struct store *s);
/* Closes the libuv handles the store owns (the loop's last turns free them); the store stays usable only for store_close. */
void store_detach(struct store *s);

/* The last error message of the backend (never a password). */
const char *store_error(struct store *s);
/* "SQLite DIR/embedwatch.db" or "PostgreSQL DB at HOST" (no password), for the log. */
const char *store_describe(struct store *s);
/* True when several daemons may share this state (PostgreSQL): leases and standbys apply. */
bool store_shared(struct store *s);
/* True while a read or a commit has not called back yet. */
bool store_busy(struct store *s);
/* Blocks until nothing is pending, running the callbacks (start-up and exit only: it stops the loop). */
void store_wait(struct store *s);

/* Starts a transaction's writes. Returns 0 or a negative errno (-ENOTCONN: reconnecting). */
int store_begin(struct store *s);
/* Commits what was written since store_begin; done(0) once it is durable. */
void store_commit_async(struct store *s, store_done_fn *done, void *arg);
/* Drops the writes since store_begin (before store_commit_async only). */
void store_rollback(struct store *s);

struct store_job {
	const char *id;
	const char *batch;      /* NULL: none */
	int status;             /* enum job_status */
	int64_t added_ms;
	int64_t updated_ms;
	int err_kind;
	int err_count;
	int discovered;
	int cancel;             /* enum job_cancel, and 8 when the cancel was the daemon's at max_age */
	int kind;               /* enum job_kind */
};

/* Writes within a transaction: each returns 0 or a negative errno. Strings are copied. */
int store_put_job(struct store *s, const struct store_job *j);
int store_put_snapshot(struct store *s, const char *job_id, const char *json);
int store_delete_job(struct store *s, const char *job_id);
/*
 * Inserts the event unless its id exists, and only then a pending delivery
 * row (attempts 0, due and updated at ts_ms) for each of hooks; *ret_new says
 * which, set before the commit's done is called.
 */
int store_put_event(struct store *s, const char *id, const char *type, const char *subject, const char *batch,
		    int64_t ts_ms, const char *payload, char *const *hooks, size_t n_hooks, bool *ret_new);
int store_put_delivery(struct store *s, const char *event_id, const char *hook, const char *state,
		       unsigned attempts, int64_t next_ms, const char *last_error, int64_t updated_ms);
int store_put_batch(struct store *s, const char *name, int64_t created_ms, const char *done_event);
/*
 * Forgets finished (done or dead) deliveries that ended before
 * deliveries_before_ms, then events older than before_ms that no delivery row
 * and no job needs, and fired batches without jobs.
 */
int store_prune(struct store *s, int64_t before_ms, int64_t deliveries_before_ms);

/* Which jobs a read takes: NULL or zeroed fields match every job. */
struct store_job_filter {
	const char *const *ids;     /* only these ids (n_ids of them) */
	size_t n_ids;
	const char *batch;          /* only jobs of this batch */
};
/* Jobs matching f (NULL: all). */
void store_each_job(struct store *s, const struct store_job_filter *f, int (*fn)(const struct store_job *j, void *arg),
		    store_done_fn *done, void *arg);

struct store_delivery {
	const char *event_id;
	const char *hook;
	const char *state;
	unsigned attempts;
	int64_t next_ms;
	const char *last_error;
	int64_t updated_ms;
	const char *type;
	const char *subject;
	const char *batch;
	const char *payload;
};
/* Deliveries in `state` (NULL: all) of `hook` (NULL: all) updated since since_ms, newest first, with their event. */
void store_each_delivery(struct store *s, const char *state, const char *hook, int64_t since_ms,
			 int (*fn)(const struct store_delivery *d, void *arg), store_done_fn *done, void *arg);
/* Dead deliveries of hook (NULL: any) that died since since_ms, of event type (NULL: any), in the order their events were committed. */
void store_each_dead(struct store *s, const char *hook, int64_t since_ms, const char *type,
		     int (*fn)(const struct store_delivery *d, void *arg), store_done_fn *done, void *arg);
/* Pending deliveries with their event, in the order the events were committed (the database's order, never a clock's). */
void store_each_pending(struct store *s, int (*fn)(const struct store_delivery *d, void *arg), store_done_fn *done, void *arg);

/* A hook's breaker state, kept across restarts. */
struct store_hook {
	const char *name;
	int64_t disabled_ms;        /* 0: enabled */
	const char *why;            /* why it is disabled, or NULL */
	int64_t failing_ms;         /* first failure of the current run of failures; 0: none */
	const char *last_error;
	int64_t last_error_ms;
};
int store_put_hook(struct store *s, const struct store_hook *h);
/* Every hook row. */
void store_each_hook(struct store *s, int (*fn)(const struct store_hook *h, void *arg), store_done_fn *done, void *arg);

/* A hook's deliveries as operators count them. */
struct store_hook_stats {
	int64_t pending;            /* pending now */
	int64_t dead;               /* dead, ever */
	int64_t done_since;         /* done since the time asked for */
	int64_t last_done_ms;       /* newest done update; 0: none */
};
/* hook's counts (done_since: updated at or after since_ms); done gets them (NULL on error). */
void store_hook_stats(struct store *s, const char *hook, int64_t since_ms,
		      void (*done)(int r, const struct store_hook_stats *st, void *arg), void *arg);

/* An event's type, subject, batch and payload; done gets -ENOENT when absent (the strings then NULL). */
void store_get_event(struct store *s, const char *event_id,
		     void (*done)(int r, const char *type, const char *subject, const char *batch, const char *payload, void *arg),
		     void *arg);
/* fn(name, done_event or NULL) for every batch. */
void store_each_batch(struct store *s, int (*fn)(const char *name, const char *done_event, void *arg), store_done_fn *done,
		      void *arg);
/* The last snapshot of a job (NULL when none). */
/* Writes a small named value of the daemon's own (e.g. the month's request count), inside the transaction. */
int store_put_meta(struct store *s, const char *key, const char *value);
/* Reads a value put by store_put_meta: done(0, value or NULL when there is none, arg), or done(negative, NULL, arg). */
void store_get_meta(struct store *s, const char *key, void (*done)(int r, const char *value, void *arg), void *arg);
void store_get_snapshot(struct store *s, const char *job_id, void (*done)(int r, const char *snapshot, void *arg), void *arg);
/* Events of a job in the order they were committed: fn(id, type, ts_ms). */
void store_job_events(struct store *s, const char *job_id, int (*fn)(const char *id, const char *type, int64_t ts_ms, void *arg),
		      store_done_fn *done, void *arg);

/*
 * The lease (a shared state only; with SQLite this daemon is the only one and
 * always active). The active holds it, renews it, and every commit it makes
 * checks it inside the transaction (-ESTALE: another daemon took it: fenced).
 * The lease has a database session of its own (takes, renewals), never
 * queued behind a commit; beside the lease that session holds an advisory
 * lock, so a standby takes over at once when it ends (kill -9), and after
 * lease_ttl when it does not renew (stopped, partitioned). A take of an
 * expired lease ends the previous holder's sessions.
 */
struct store_lease {
	int64_t epoch;              /* counts takeovers; 0: never held */
	const char *holder;         /* the holder's id (host:pid:start), NULL when free */
	const char *host;
	int pid;
	int64_t age_ms;             /* since its last renewal, by the server's clock; -1: free */
	int64_t ttl_ms;
};
/* Who this daemon is, and its lease's ttl (before any other lease call). */
void store_lease_setup(struct store *s, const char *holder, const char *host, int pid, uint64_t ttl_ms);
/* Takes the lease if it is free, expired, or its holder's session is gone; done gets whether, and the lease as it is now. */
void store_lease_take(struct store *s, void (*done)(int r, bool taken, const struct store_lease *l, void *arg), void *arg);
/* Renews the lease this daemon holds; done(-ESTALE) when another has taken it (the lease is then dropped). */
void store_lease_renew(struct store *s, store_done_fn *done, void *arg);
/* Reads the lease as it is. */
void store_lease_get(struct store *s, void (*done)(int r, const struct store_lease *l, void *arg), void *arg);
/* Gives the lease up so that a standby takes over at once (a clean stop; waits: exit only). */
void store_lease_release(struct store *s);
/* True when this daemon holds the lease (always with SQLite). */
bool store_lease_held(struct store *s);
/*
 * True when it holds it and confirmed it (took or renewed) so
 * recently that it cannot have expired for another daemon: effects may leave.
 * Always with SQLite.
 */
bool store_lease_fresh(struct store *s);
/* Until when (monotonic ms) store_lease_fresh stays true without another confirmation; 0 when no lease is held. */
uint64_t store_lease_fresh_until(struct store *s);
/* This daemon's epoch (0 when it holds no lease). */
int64_t store_lease_epoch(struct store *s);
/* fn(what) on a notification of the shared state: "lease" (given up) or "requests" (a standby wrote one). */
void store_on_notify(struct store *s, void (*fn)(const char *what, void *arg), void *arg);

/*
 * Control through any daemon (a shared state only): a standby writes the
 * requests that change state as rows; the active applies them, deleting each
 * in the commit that holds its effects.
 */
/* Writes a request (its JSON line) and wakes the active; done(r, id) once it is committed. */
void store_put_request(struct store *s, const char *line, void (*done)(int r, int64_t id, void *arg), void *arg);
/* The requests written and not yet applied, oldest first. */
void store_each_request(struct store *s, int (*fn)(int64_t id, const char *line, void *arg), store_done_fn *done, void *arg);
/* Within the active's transaction: request id is applied. */
int store_delete_request(struct store *s, int64_t id);

/* A standby's view of the shared state. */
struct store_counts {
	int64_t deliveries_pending;
	int64_t requests;           /* written by standbys, not applied yet */
	int64_t batches;
};
/* Jobs by batch (NULL: none), kind and status: fn(batch, kind, status, n) per triple. */
void store_job_counts(struct store *s, int (*fn)(const char *batch, int kind, int status, int64_t n, void *arg),
		      store_done_fn *done, void *arg);
/* The counts above; done gets NULL on error. */
void store_counts(struct store *s, void (*done)(int r, const struct store_counts *c, void *arg), void *arg);

#endif
