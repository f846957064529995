/*
 * Private to the store, store*.c: the table of operations each backend fills
 * in, and their constructors. store.c picks the backend at open time and
 * forwards every call; a backend leaves NULL what it does not have (SQLite:
 * the lease and the requests of standbys), and store.c answers those itself.
 */
#ifndef EW_STORE_INT_H
#define EW_STORE_INT_H

#include "store.h"

struct store_ops {
	void (*close)(struct store *s);
	void (*detach)(struct store *s);
	const char *(*error)(struct store *s);
	const char *(*describe)(struct store *s);
	bool (*busy)(struct store *s);
	void (*wait)(struct store *s);

	int (*begin)(struct store *s);
	void (*commit_async)(struct store *s, store_done_fn *done, void *arg);
	void (*rollback)(struct store *s);
	int (*put_job)(struct store *s, const struct store_job *j);
	int (*put_snapshot)(struct store *s, const char *job_id, const char *json);
	int (*delete_job)(struct store *s, const char *job_id);
	int (*put_event)(struct store *s, const char *id, const char *type, const char *subject, const char *batch,
			 int64_t ts_ms, const char *payload, char *const *hooks, size_t n_hooks, bool *ret_new);
	int (*put_delivery)(struct store *s, const char *event_id, const char *hook, const char *state, unsigned attempts,
			    int64_t next_ms, const char *last_error, int64_t updated_ms);
	int (*put_batch)(struct store *s, const char *name, int64_t created_ms, const char *done_event);
	int (*prune)(struct store *s, int64_t before_ms, int64_t deliveries_before_ms);
	int (*put_hook)(struct store *s, const struct store_hook *h);
	int (*put_meta)(struct store *s, const char *key, const char *value);

	void (*each_job)(struct store *s, const struct store_job_filter *f, int (*fn)(const struct store_job *, void *),
			 store_done_fn *done, void *arg);
	void (*each_delivery)(struct store *s, const char *state, const char *hook, int64_t since_ms,
			      int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg);
	void (*each_dead)(struct store *s, const char *hook, int64_t since_ms, const char *type,
			  int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg);
	void (*each_pending)(struct store *s, int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg);
	void (*each_hook)(struct store *s, int (*fn)(const struct store_hook *, void *), store_done_fn *done, void *arg);
	void (*hook_stats)(struct store *s, const char *hook, int64_t since_ms,
			   void (*done)(int, const struct store_hook_stats *, void *), void *arg);
	void (*get_event)(struct store *s, const char *event_id,
			  void (*done)(int, const char *, const char *, const char *, const char *, void *), void *arg);
	void (*each_batch)(struct store *s, int (*fn)(const char *, const char *, void *), store_done_fn *done, void *arg);
	void (*get_snapshot)(struct store *s, const char *job_id, void (*done)(int, const char *, void *), void *arg);
	void (*get_meta)(struct store *s, const char *key, void (*done)(int, const char *, void *), void *arg);
	void (*job_events)(struct store *s, const char *job_id, int (*fn)(const char *, const char *, int64_t, void *),
			   store_done_fn *done, void *arg);

	/* A shared state only (NULL for SQLite). */
	void (*lease_setup)(struct store *s, const char *holder, const char *host, int pid, uint64_t ttl_ms);
	void (*lease_take)(struct store *s, void (*done)(int, bool, const struct store_lease *, void *), void *arg);
	void (*lease_renew)(struct store *s, store_done_fn *done, void *arg);
	void (*lease_get)(struct store *s, void (*done)(int, const struct store_lease *, void *), void *arg);
	void (*lease_release)(struct store *s);
	bool (*lease_held)(struct store *s);
	bool (*lease_fresh)(struct store *s);
	uint64_t (*lease_fresh_until)(struct store *s);
	int64_t (*lease_epoch)(struct store *s);
	void (*on_notify)(struct store *s, void (*fn)(const char *, void *), void *arg);
	void (*put_request)(struct store *s, const char *line, void (*done)(int, int64_t, void *), void *arg);
	void (*each_request)(struct store *s, int (*fn)(int64_t, const char *, void *), store_done_fn *done, void *arg);
	int (*delete_request)(struct store *s, int64_t id);
	void (*job_counts)(struct store *s, int (*fn)(const char *, int, int, int64_t, void *), store_done_fn *done, void *arg);
	void (*counts)(struct store *s, void (*done)(int, const struct store_counts *, void *), void *arg);
};

/* What every backend's state begins with. */
struct store {
	const struct store_ops *ops;
	bool shared;                /* several daemons may use it: leases and standbys apply */
};

int store_sqlite_open(const struct store_config *c, struct store **ret, char *err, size_t errlen);
int store_pg_open(const struct store_config *c, struct store **ret, char *err, size_t errlen);

#endif
