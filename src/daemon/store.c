/*
 * The store's one interface over its two backends: the choice at open time,
 * then every call forwarded to the backend's table of operations.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>

int store_open(const struct store_config *c, struct store **ret, char *err, size_t errlen)
{
	*ret = NULL;
	if (c->url && *c->url)
		return store_pg_open(c, ret, err, errlen);
	return store_sqlite_open(c, ret, err, errlen);
}

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

void store_detach(struct store *s)
{
	if (s && s->ops->detach)
		s->ops->detach(s);
}

const char *store_error(struct store *s) { return s->ops->error(s); }
const char *store_describe(struct store *s) { return s->ops->describe(s); }
bool store_shared(struct store *s) { return s->shared; }
bool store_busy(struct store *s) { return s->ops->busy(s); }
void store_wait(struct store *s) { s->ops->wait(s); }

int store_begin(struct store *s) { return s->ops->begin(s); }
void store_commit_async(struct store *s, store_done_fn *done, void *arg) { s->ops->commit_async(s, done, arg); }
void store_rollback(struct store *s) { s->ops->rollback(s); }
int store_put_job(struct store *s, const struct store_job *j) { return s->ops->put_job(s, j); }
int store_put_snapshot(struct store *s, const char *job_id, const char *json) { return s->ops->put_snapshot(s, job_id, json); }
int store_delete_job(struct store *s, const char *job_id) { return s->ops->delete_job(s, job_id); }

int store_put_event(struct store *s, const char *id, const char *type, const char *subject, const char *batch,
		    int64_t ts_ms, const char *payload, char *const *hooks, size_t n_hooks, bool *ret_new)
{
	return s->ops->put_event(s, id, type, subject, batch, ts_ms, payload, hooks, n_hooks, ret_new);
}

int store_put_delivery(struct store *s, const char *event_id, const char *hook, const char *state,
		       unsigned attempts, int64_t next_ms, const char *last_error, int64_t updated_ms)
{
	return s->ops->put_delivery(s, event_id, hook, state, attempts, next_ms, last_error, updated_ms);
}

int store_put_batch(struct store *s, const char *name, int64_t created_ms, const char *done_event)
{
	return s->ops->put_batch(s, name, created_ms, done_event);
}

int store_prune(struct store *s, int64_t before_ms, int64_t deliveries_before_ms)
{
	return s->ops->prune(s, before_ms, deliveries_before_ms);
}

int store_put_hook(struct store *s, const struct store_hook *h) { return s->ops->put_hook(s, h); }

void store_each_job(struct store *s, const struct store_job_filter *f, int (*fn)(const struct store_job *, void *),
		    store_done_fn *done, void *arg)
{
	s->ops->each_job(s, f, fn, done, arg);
}

void store_each_delivery(struct store *s, const char *state, const char *hook, int64_t since_ms,
			 int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	s->ops->each_delivery(s, state, hook, since_ms, fn, done, arg);
}

void store_each_dead(struct store *s, const char *hook, int64_t since_ms, const char *type,
		     int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	s->ops->each_dead(s, hook, since_ms, type, fn, done, arg);
}

void store_each_pending(struct store *s, int (*fn)(const struct store_delivery *, void *), store_done_fn *done, void *arg)
{
	s->ops->each_pending(s, fn, done, arg);
}

void store_each_hook(struct store *s, int (*fn)(const struct store_hook *, void *), store_done_fn *done, void *arg)
{
	s->ops->each_hook(s, fn, done, arg);
}

void store_hook_stats(struct store *s, const char *hook, int64_t since_ms,
		      void (*done)(int, const struct store_hook_stats *, void *), void *arg)
{
	s->ops->hook_stats(s, hook, since_ms, done, arg);
}

void store_get_event(struct store *s, const char *event_id,
		     void (*done)(int, const char *, const char *, const char *, const char *, void *), void *arg)
{
	s->ops->get_event(s, event_id, done, arg);
}

void store_each_batch(struct store *s, int (*fn)(const char *, const char *, void *), store_done_fn *done, void *arg)
{
	s->ops->each_batch(s, fn, done, arg);
}

int store_put_meta(struct store *s, const char *key, const char *value)
{
	return s->ops->put_meta(s, key, value);
}

void store_get_meta(struct store *s, const char *key, void (*done)(int, const char *, void *), void *arg)
{
	s->ops->get_meta(s, key, done, arg);
}

void store_get_snapshot(struct store *s, const char *job_id, void (*done)(int, const char *, void *), void *arg)
{
	s->ops->get_snapshot(s, job_id, done, arg);
}

void store_job_events(struct store *s, const char *job_id, int (*fn)(const char *, const char *, int64_t, void *),
		      store_done_fn *done, void *arg)
{
	s->ops->job_events(s, job_id, fn, done, arg);
}

/* SQLite has no lease: its daemon is the only one, always active. */

void store_lease_setup(struct store *s, const char *holder, const char *host, int pid, uint64_t ttl_ms)
{
	if (s->ops->lease_setup)
		s->ops->lease_setup(s, holder, host, pid, ttl_ms);
}

void store_lease_take(struct store *s, void (*done)(int, bool, const struct store_lease *, void *), void *arg)
{
	if (s->ops->lease_take)
		s->ops->lease_take(s, done, arg);
	else
		done(0, true, NULL, arg);
}

void store_lease_renew(struct store *s, store_done_fn *done, void *arg)
{
	if (s->ops->lease_renew)
		s->ops->lease_renew(s, done, arg);
	else
		done(0, arg);
}

void store_lease_get(struct store *s, void (*done)(int, const struct store_lease *, void *), void *arg)
{
	if (s->ops->lease_get)
		s->ops->lease_get(s, done, arg);
	else
		done(-ENOTSUP, NULL, arg);
}

void store_lease_release(struct store *s)
{
	if (s->ops->lease_release)
		s->ops->lease_release(s);
}

bool store_lease_held(struct store *s) { return s->ops->lease_held ? s->ops->lease_held(s) : true; }
bool store_lease_fresh(struct store *s) { return s->ops->lease_fresh ? s->ops->lease_fresh(s) : true; }
uint64_t store_lease_fresh_until(struct store *s)
{
	return s->ops->lease_fresh_until ? s->ops->lease_fresh_until(s) : UINT64_MAX;
}
int64_t store_lease_epoch(struct store *s) { return s->ops->lease_epoch ? s->ops->lease_epoch(s) : 0; }

void store_on_notify(struct store *s, void (*fn)(const char *, void *), void *arg)
{
	if (s->ops->on_notify)
		s->ops->on_notify(s, fn, arg);
}

void store_put_request(struct store *s, const char *line, void (*done)(int, int64_t, void *), void *arg)
{
	if (s->ops->put_request)
		s->ops->put_request(s, line, done, arg);
	else
		done(-ENOTSUP, 0, arg);
}

void store_each_request(struct store *s, int (*fn)(int64_t, const char *, void *), store_done_fn *done, void *arg)
{
	if (s->ops->each_request)
		s->ops->each_request(s, fn, done, arg);
	else
		done(0, arg);       /* nobody writes requests for a daemon of its own */
}

int store_delete_request(struct store *s, int64_t id)
{
	return s->ops->delete_request ? s->ops->delete_request(s, id) : 0;
}

void store_job_counts(struct store *s, int (*fn)(const char *, int, int, int64_t, void *), store_done_fn *done, void *arg)
{
	if (s->ops->job_counts)
		s->ops->job_counts(s, fn, done, arg);
	else
		done(-ENOTSUP, arg);
}

void store_counts(struct store *s, void (*done)(int, const struct store_counts *, void *), void *arg)
{
	if (s->ops->counts)
		s->ops->counts(s, done, arg);
	else
		done(-ENOTSUP, NULL, arg);
}
