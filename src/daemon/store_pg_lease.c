/*
 * The PostgreSQL backend's lease: one active daemon at a time, by epoch. Takes,
 * renewals and the advisory lock go on the lease's own connection, so that a
 * renewal never queues behind a commit waiting on a row; a lease is fresh
 * until its last confirmation's send time plus the ttl, less a margin.
 */
#include "store_pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

void pgl_confirmed(struct pg *s, struct pgq *g)
{
	if (g->r == 0 && g->confirms && g->sent_mono > s->confirmed_mono)
		s->confirmed_mono = g->sent_mono;
	if (g->r == -ESTALE && s->epoch > 0) {
		log_msg(LOG_WARNING, "state database: the lease (epoch %lld) is lost: %s", (long long)s->epoch, s->err);
		s->epoch = 0;
	}
}

/* FNV-1a: a short, stable tag of a host name. */
static uint32_t fnv32(const char *p)
{
	uint32_t h = 2166136261u;
	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

void pgl_setup(struct store *st, const char *holder, const char *host, int pid, uint64_t ttl_ms)
{
	struct pg *s = pg_of(st);
	snprintf(s->holder, sizeof(s->holder), "%s", holder);
	snprintf(s->host, sizeof(s->host), "%s", host);
	s->pid = pid;
	s->ttl_ms = ttl_ms;
	/* Unique per holder and short enough for application_name (63 bytes): pid, holder and host hashed. */
	snprintf(s->app, sizeof(s->app), "embedwatchd %d %08x%08x", pid, (unsigned)fnv32(holder), (unsigned)fnv32(host));
	/* The main session takes the settings that depend on the ttl and the name. */
	if (s->main.state == PG_READY && pgc_send_settings(&s->main) == 0 && PQpipelineSync(s->main.conn)) {
		pgc_group_push(&s->main, pgc_group_new(s, 1, NULL, pgc_prepared, NULL, NULL, s));
		pgc_flush(&s->main);
		pgc_watchdog_arm(s);
	}
	/* The lease's own connection (start-up: it may wait, like the store's open). */
	s->lease_open = true;
	if (pgc_open(&s->lease) < 0) {
		log_msg(LOG_WARNING, "state database: cannot open the lease's connection: %s; retrying", s->err);
		pgc_connect_later(&s->lease);
	}
}

bool pgl_held(struct store *st)
{
	return pg_of(st)->epoch > 0;
}

uint64_t pgl_fresh_until(struct store *st)
{
	struct pg *s = pg_of(st);
	/* A margin for clocks that run at slightly different rates: a fifth of the ttl, at most 1 s. */
	uint64_t margin = s->ttl_ms / 5 < 1000 ? s->ttl_ms / 5 : 1000;
	return s->epoch > 0 ? s->confirmed_mono + s->ttl_ms - margin : 0;
}

bool pgl_fresh(struct store *st)
{
	return util_mono_ms() < pgl_fresh_until(st);
}

int64_t pgl_epoch(struct store *st)
{
	return pg_of(st)->epoch;
}

void pgl_on_notify(struct store *st, void (*fn)(const char *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	s->notify = fn;
	s->notify_arg = arg;
}

static struct store_lease lease_of(const PGresult *res, int first)
{
	return (struct store_lease){
		.epoch = pgc_ival(res, 0, first), .holder = pgc_val(res, 0, first + 1), .host = pgc_val(res, 0, first + 2),
		.pid = (int)pgc_ival(res, 0, first + 3), .age_ms = pgc_ival(res, 0, first + 4), .ttl_ms = pgc_ival(res, 0, first + 5),
	};
}

static void take_end(struct pgq *g)
{
	struct pgc_one_row *o = container_of(g, struct pgc_one_row, g);
	struct pg *s = g->arg2;
	bool taken = false;
	struct store_lease l = { 0 };
	if (g->r == 0 && o->res) {
		taken = pgc_ival(o->res, 0, 0) > 0;
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

void pgl_take(struct store *st, void (*done)(int, bool, const struct store_lease *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	char pid[24], ttl[24];
	struct pgc_one_row *o = pgc_one_new((void *)done, arg, take_end);
	o->g.arg2 = s;
	const char *v[] = { s->holder, s->host, pgc_fmt_i64(pid, s->pid), pgc_fmt_i64(ttl, (int64_t)s->ttl_ms), s->app };
	pgc_send_read(&s->lease, &o->g, Q_LEASE_TAKE, 5, v);
}

static void renew_result(struct pgq *g, unsigned i, const PGresult *res)
{
	g->i64 = strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
}

static void renew_end(struct pgq *g)
{
	if (g->r == 0 && g->i64 != 1) {
		g->r = -ESTALE;
		pgc_set_err(g->arg2, "another embedwatchd holds the lease now");
	}
	pgl_confirmed(g->arg2, g);
	((store_done_fn *)g->done)(g->r, g->arg);
	free(g);
}

void pgl_renew(struct store *st, store_done_fn *done, void *arg)
{
	struct pg *s = pg_of(st);
	char ep[24], ttl[24];
	struct pgq *g = pgc_group_new(s, 1, renew_result, renew_end, NULL, (void *)done, arg);
	g->arg2 = s;
	g->confirms = true;
	if (s->epoch <= 0) {
		pgc_set_err(s, "this daemon does not hold the lease");
		g->r = -ESTALE;
		renew_end(g);
		return;
	}
	const char *v[] = { pgc_fmt_i64(ep, s->epoch), s->holder, pgc_fmt_i64(ttl, (int64_t)s->ttl_ms) };
	pgc_send_read(&s->lease, g, Q_LEASE_RENEW, 3, v);
}

static void get_end(struct pgq *g)
{
	struct pgc_one_row *o = container_of(g, struct pgc_one_row, g);
	struct store_lease l = { 0 };
	if (g->r == 0 && o->res)
		l = lease_of(o->res, 0);
	((void (*)(int, const struct store_lease *, void *))g->done)(g->r, g->r == 0 ? &l : NULL, g->arg);
	PQclear(o->res);
	free(o);
}

void pgl_get(struct store *st, void (*done)(int, const struct store_lease *, void *), void *arg)
{
	struct pg *s = pg_of(st);
	pgc_send_read(&s->main, &pgc_one_new((void *)done, arg, get_end)->g, Q_LEASE_GET, 0, NULL);
}

static void release_end(struct pgq *g)
{
	free(g);
}

void pgl_release(struct store *st)
{
	struct pg *s = pg_of(st);
	char ep[24];
	if (s->epoch <= 0 || s->lease.state != PG_READY)
		return;
	const char *v[] = { pgc_fmt_i64(ep, s->epoch), s->holder };
	if (pgc_send_read(&s->lease, pgc_group_new(s, 1, NULL, release_end, NULL, NULL, NULL), Q_LEASE_RELEASE, 2, v))
		pgc_wait(st);
	s->epoch = 0;
}
