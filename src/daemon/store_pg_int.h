/*
 * Private to the PostgreSQL backend, store_pg*.c: the store's state, its two
 * connections and the groups of statements sent on them. The connection
 * (pgc_: libpq on libuv, reconnects, the watchdog, answers, sending) is below
 * the lease (pgl_), which is below the statements and the ops table.
 */
#ifndef EW_STORE_PG_INT_H
#define EW_STORE_PG_INT_H

#include "store_int.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

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

static inline struct pg *pg_of(struct store *s)
{
	return container_of(s, struct pg, base);
}

/* The lease's ttl, or the default before lease_setup. */
static inline uint64_t ttl_of(const struct pg *s)
{
	return s->ttl_ms ? s->ttl_ms : 10000;
}

/* Every statement, prepared on each connection as "q<index>"; the statements' table. */
extern const char *const store_pg_queries[Q__MAX];

/* ---- the connection (store_pg_conn.c) ---- */

/* Sets s->err to msg on one line (libpq's messages end in a newline and may span lines). */
void pgc_set_err(struct pg *s, const char *msg);
/* Sets s->err to a result's primary error message, else all of it. */
void pgc_set_err_of(struct pg *s, const PGresult *res);
/* The negative errno of an SQLSTATE (NULL: -EIO). */
int pgc_map_sqlstate(const char *st);
/* A new group of n statements, not yet sent; its end frees it. */
struct pgq *pgc_group_new(struct pg *s, unsigned n, pgq_result_fn *result, void (*end)(struct pgq *), void *fn,
			  void *done, void *arg);
/* Queues g, just sent on c, for its answer. */
void pgc_group_push(struct pgconn *c, struct pgq *g);
/* Ends every group in flight on c with r (the connection is gone, or the store closes). */
void pgc_fail_all(struct pgconn *c, int r);
/* The connection broke: what was in flight fails with -ECONNRESET; a new one is made after a pause. */
void pgc_lost(struct pgconn *c);
/* Sends what libpq holds for c; watches for writable while some remains. */
void pgc_flush(struct pgconn *c);
/* A notice processor that drops libpq's notices. */
void pgc_ignore_notice(void *arg, const char *msg);
/* The end of a group of preparations or settings: logs a failure, frees g. */
void pgc_prepared(struct pgq *g);
/* A libpq connection with the store's parameters, blocking (start-up) or started; keys and vals override the URL's. */
PGconn *pgc_connect_params(struct pg *s, bool blocking, const char *const *over_keys, const char *const *over_vals);
/* Schedules a reconnect of c, with a backoff of 100 ms doubling to 5 s. */
void pgc_connect_later(struct pgconn *c);
/* Arms the watchdog while an answer or a connect is awaited. */
void pgc_watchdog_arm(struct pg *s);
/* Blocks until every group on both connections has its answer, or 10 s (start-up and exit only). */
void pgc_wait(struct store *st);
/* Sends prepared statement q with n text parameters on c; 0 or -EIO with s->err set. */
int pgc_send_prepared(struct pgconn *c, int q, int n, const char *const *v);
/* Sends one read (q and its Sync) for g on c; false when it could not (g has then ended). */
bool pgc_send_read(struct pgconn *c, struct pgq *g, int q, int n, const char *const *v);
/* Formats v into buf (24 bytes) and returns buf. */
const char *pgc_fmt_i64(char *buf, int64_t v);
/* Sends the session's settings, from the lease's ttl and the daemon's name; 0 or -EIO. */
int pgc_send_settings(struct pgconn *c);
/* Starts a new connection's session: non-blocking, pipelined, every statement prepared; 0 or -EIO. */
int pgc_session_start(struct pgconn *c);
/* Connects c, waiting (start-up only), and starts its session; 0 or negative with s->err set. */
int pgc_open(struct pgconn *c);
/* Closes the store's handles (the loop frees them); in-flight lookups are cancelled. */
void pgc_detach(struct store *st);
/* A value of a result (NULL for SQL NULL), borrowed from res. */
const char *pgc_val(const PGresult *res, int row, int col);
/* An integer value of a result (0 for SQL NULL). */
int64_t pgc_ival(const PGresult *res, int row, int col);

/* A read of one row of values, kept for the end (which clears res and frees it). */
struct pgc_one_row {
	struct pgq g;
	PGresult *res;
};

/* A new read of one row, calling end when its answer is complete. */
struct pgc_one_row *pgc_one_new(void *done, void *arg, void (*end)(struct pgq *g));

/* ---- the lease (store_pg_lease.c): the store ops of the same names ---- */

/* Notes what g's answer says of the lease: confirmed at its send time, or lost (-ESTALE). */
void pgl_confirmed(struct pg *s, struct pgq *g);
void pgl_setup(struct store *st, const char *holder, const char *host, int pid, uint64_t ttl_ms);
void pgl_take(struct store *st, void (*done)(int, bool, const struct store_lease *, void *), void *arg);
void pgl_renew(struct store *st, store_done_fn *done, void *arg);
void pgl_get(struct store *st, void (*done)(int, const struct store_lease *, void *), void *arg);
void pgl_release(struct store *st);
bool pgl_held(struct store *st);
bool pgl_fresh(struct store *st);
uint64_t pgl_fresh_until(struct store *st);
int64_t pgl_epoch(struct store *st);
void pgl_on_notify(struct store *st, void (*fn)(const char *, void *), void *arg);

#endif
