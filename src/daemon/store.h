/*
 * SQLite state (WAL): jobs, events, deliveries, batches. The caller groups
 * writes: store_begin(), any number of store_put_*(), store_commit(). Reads
 * are for start-up and for the control socket.
 */
#ifndef EW_STORE_H
#define EW_STORE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct store;

/* Opens (creating) dir/embedwatch.db. On error returns a negative errno and a message. */
int store_open(const char *dir, struct store **ret, char *err, size_t errlen);
void store_close(struct store *s);

/* The last SQLite error message. */
const char *store_error(struct store *s);

int store_begin(struct store *s);
int store_commit(struct store *s);
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

int store_put_job(struct store *s, const struct store_job *j);
int store_put_snapshot(struct store *s, const char *job_id, const char *json);
int store_delete_job(struct store *s, const char *job_id);
/* Inserts the event unless its id exists; *ret_new tells which. */
int store_put_event(struct store *s, const char *id, const char *type, const char *subject,
		    const char *batch, int64_t ts_ms, const char *payload, bool *ret_new);
int store_put_delivery(struct store *s, const char *event_id, const char *hook, const char *state,
		       unsigned attempts, int64_t next_ms, const char *last_error, int64_t updated_ms);
int store_put_batch(struct store *s, const char *name, int64_t created_ms, const char *done_event);

/*
 * Forgets finished (done or dead) deliveries that ended before
 * deliveries_before_ms, then events older than before_ms that no delivery row
 * and no job needs, and fired batches without jobs.
 */
int store_prune(struct store *s, int64_t before_ms, int64_t deliveries_before_ms);

/* Calls fn for every job; strings are borrowed for the call. */
int store_each_job(struct store *s, int (*fn)(const struct store_job *j, void *arg), void *arg);

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
int store_each_delivery(struct store *s, const char *state, const char *hook, int64_t since_ms,
			int (*fn)(const struct store_delivery *d, void *arg), void *arg);
/* Dead deliveries of hook (NULL: any) that died since since_ms, of event type (NULL: any), oldest event first. */
int store_each_dead(struct store *s, const char *hook, int64_t since_ms, const char *type,
		    int (*fn)(const struct store_delivery *d, void *arg), void *arg);

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
/* Calls fn for every hook row; strings are borrowed for the call. */
int store_each_hook(struct store *s, int (*fn)(const struct store_hook *h, void *arg), void *arg);
/* How many deliveries of hook are in state and were updated since since_ms. */
int store_hook_count(struct store *s, const char *hook, const char *state, int64_t since_ms, int64_t *ret);
/* The newest update time of hook's deliveries in state (0: none). */
int store_hook_last(struct store *s, const char *hook, const char *state, int64_t *ret);
/* Pending deliveries with their event, oldest event first (the order the events were detected in). */
int store_each_pending(struct store *s, int (*fn)(const struct store_delivery *d, void *arg), void *arg);
/* An event's type, subject, batch and payload; -ENOENT when absent. fn gets borrowed strings. */
int store_get_event(struct store *s, const char *event_id,
		    void (*fn)(const char *type, const char *subject, const char *batch, const char *payload, void *arg), void *arg);

/* Calls fn(name, done_event or NULL) for every batch. */
int store_each_batch(struct store *s, int (*fn)(const char *name, const char *done_event, void *arg), void *arg);
/* The last snapshot of a job into *ret (NULL when none; the caller frees it). Returns 0 or negative. */
int store_get_snapshot(struct store *s, const char *job_id, char **ret);
/* Events of a job, oldest first: fn(id, type, ts_ms). */
int store_job_events(struct store *s, const char *job_id, int (*fn)(const char *id, const char *type, int64_t ts_ms, void *arg), void *arg);

#endif
