/*
 * Active or standby: the lease's timer (a renewal while active, a take while
 * standby), the takeover (restore, then the poller after the commit that
 * follows), and the step-down when the lease is lost.
 */
#include "ha.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hooks.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "watch.h"

/* How often a standby tries to take the lease: soon after the active's session ends, however long the ttl. */
#define HA_TAKE_EVERY_MS 250

struct ha {
	struct ew *ew;
	uv_timer_t timer;
	void (*step_down)(struct ew *ew, const char *why);
	bool taking;                /* a take in flight */
	bool renewing;              /* a renewal in flight */
	bool lost;                  /* stepping down */
	bool started;               /* start-up is over: a takeover now is at run time */
	bool restoring;             /* a takeover's restore in flight */
	bool closed, timer_closed;  /* ha_close: freed once nothing in flight calls back */
	enum ew_role role;          /* this daemon's; metrics and the job table hold copies (set_role) */
	unsigned failures;          /* takes or renewals in a row that could not reach the database */
	void (*start_done)(int r, const char *err, void *arg);
	void *start_arg;
};

static void arm(struct ha *h);

/* The role changes here only: metrics copies it for display, the job table learns whether its jobs are the active's. */
static void set_role(struct ha *h, enum ew_role r)
{
	h->role = r;
	h->ew->m.role = r;
	jobtable_set_active(&h->ew->jobs, r == ROLE_ACTIVE);
}

/* After ha_close: the last of the timer and the calls in flight frees it. Returns true when closed. */
static bool gone(struct ha *h)
{
	if (!h->closed)
		return false;
	if (h->timer_closed && !h->taking && !h->renewing && !h->restoring)
		free(h);
	return true;
}

static void start_over(struct ha *h, int r, const char *err)
{
	void (*done)(int, const char *, void *) = h->start_done;
	h->start_done = NULL;
	h->started = true;
	if (done)
		done(r, err, h->start_arg);
}

static void note_lease(struct ha *h, const struct store_lease *l)
{
	struct metrics *m = &h->ew->m;
	if (!l)
		return;
	m->lease_epoch = l->epoch;
	snprintf(m->active_host, sizeof(m->active_host), "%s", l->holder && l->host ? l->host : "");
	m->active_pid = l->holder ? l->pid : 0;
	m->lease_age_ms = l->holder ? l->age_ms : -1;
	m->lease_seen_mono = util_mono_ms();
}

/* ---- taking over ---- */

static void restored(int r, const char *err, void *arg)
{
	struct ha *h = arg;
	struct ew *ew = h->ew;
	h->restoring = false;
	if (gone(h))
		return;
	if (r < 0) {
		if (!h->started) {
			start_over(h, r, err);
			return;
		}
		/* Half a state in memory: start again rather than run on it. */
		ha_lost(ew, err);
		return;
	}
	set_role(h, ROLE_ACTIVE);
	ew->m.takeovers++;
	log_msg(LOG_NOTICE, "active%s: %zu jobs and %u pending deliveries restored from %s", ew->m.shared ? " (lease taken)" : "",
		ew->jobs.jobs.len, ew->m.deliveries_pending, store_describe(ew->store));
	/* At start-up main starts the poller once the socket listens; at run time the commit of the restore does. */
	if (h->started) {
		ew->turn.kick = true;
		/* Waits that began while standby are answered from memory now, after that commit. */
		ew->turn.ended = true;
	}
	/* What standbys were asked while nobody was active: the outbox has control read it after the next commit. */
	ew->turn.requests = true;
	arm(h);
	start_over(h, 0, "");
}

static void restored_jobs(int r, const char *err, void *arg)
{
	struct ha *h = arg;
	if (r < 0 || h->closed) {
		restored(r, err, arg);
		return;
	}
	hooks_restore(h->ew, restored, h);
}

static void become_active(struct ha *h)
{
	struct ew *ew = h->ew;
	set_role(h, ROLE_TAKING_OVER);
	if (h->started)
		log_msg(LOG_NOTICE, "taking over as the active daemon (lease epoch %lld): restoring the shared state",
			(long long)store_lease_epoch(ew->store));
	h->restoring = true;
	/* Renewed while the state is read, too: a long restore does not let the lease expire. */
	arm(h);
	watch_restore(ew, restored_jobs, h);
}

static void on_take(int r, bool taken, const struct store_lease *l, void *arg)
{
	struct ha *h = arg;
	struct ew *ew = h->ew;
	h->taking = false;
	if (gone(h) || h->lost || ew->stopping)
		return;
	if (r < 0) {
		if (h->failures++ % 40 == 0)
			log_msg(LOG_WARNING, "standby: cannot read the lease: %s", store_error(ew->store));
		if (!h->started)
			start_over(h, 0, "");
		arm(h);
		return;
	}
	h->failures = 0;
	note_lease(h, l);
	if (taken) {
		ew->m.lease_fresh_until = store_lease_fresh_until(ew->store);
		become_active(h);
		return;
	}
	if (!h->started) {
		log_msg(LOG_NOTICE, "standby: %s pid %d is active (lease epoch %lld); taking over when its lease ends",
			ew->m.active_host, ew->m.active_pid, (long long)ew->m.lease_epoch);
		start_over(h, 0, "");
	}
	arm(h);
}

static void try_take(struct ha *h)
{
	if (h->taking || h->lost || h->ew->stopping || h->role != ROLE_STANDBY)
		return;
	h->taking = true;
	store_lease_take(h->ew->store, on_take, h);
}

/* ---- holding ---- */

static void on_renew(int r, void *arg)
{
	struct ha *h = arg;
	struct ew *ew = h->ew;
	h->renewing = false;
	if (gone(h) || h->lost || ew->stopping)
		return;
	if (r == -ESTALE) {
		ha_lost(ew, "another embedwatchd holds the lease now");
		return;
	}
	if (r < 0) {
		if (h->failures++ % 10 == 0)
			log_msg(LOG_WARNING, "cannot renew the lease: %s; no hook starts while it is not confirmed%s",
				store_error(ew->store), store_lease_fresh(ew->store) ? "" : " (it may have expired)");
		return;
	}
	if (h->failures)
		log_msg(LOG_NOTICE, "lease renewed again after %u failures", h->failures);
	h->failures = 0;
	ew->m.lease_age_ms = 0;
	ew->m.lease_seen_mono = util_mono_ms();
	ew->m.lease_fresh_until = store_lease_fresh_until(ew->store);
}

static void on_timer(uv_timer_t *t)
{
	struct ha *h = t->data;
	struct ew *ew = h->ew;
	if (h->role == ROLE_STANDBY) {
		try_take(h);
	} else if ((h->role == ROLE_ACTIVE || h->role == ROLE_TAKING_OVER) && !h->renewing && !h->lost &&
		   !ew->stopping) {
		h->renewing = true;
		store_lease_renew(ew->store, on_renew, h);
		ew->m.lease_epoch = store_lease_epoch(ew->store);
	}
}

/* The timer follows the role: a renewal every lease_renew, or a take every 250 ms. */
static void arm(struct ha *h)
{
	struct ew *ew = h->ew;
	if (!ew->m.shared || h->lost || ew->stopping)
		return;
	uint64_t every = h->role != ROLE_STANDBY ? ew->cfg.lease_renew_ms :
			 ew->cfg.lease_renew_ms < HA_TAKE_EVERY_MS ? ew->cfg.lease_renew_ms : HA_TAKE_EVERY_MS;
	if (h->role == ROLE_STANDBY && uv_is_active((uv_handle_t *)&h->timer))
		return;
	UV_CHECK(uv_timer_start(&h->timer, on_timer, every, every));
}

static void on_notify(const char *what, void *arg)
{
	struct ha *h = arg;
	/* The active gave the lease up (a clean stop): take it now rather than at the next tick. */
	if (strcmp(what, "lease") == 0)
		try_take(h);
	/* A standby wrote a request: the active applies it now. */
	else if (strcmp(what, "requests") == 0 && h->role == ROLE_ACTIVE)
		h->ew->turn.requests = true;
}

/* ---- the interface ---- */

int ha_init(struct ew *ew, void (*step_down)(struct ew *ew, const char *why))
{
	struct ha *h = xcalloc(1, sizeof(*h));
	int r;
	h->ew = ew;
	h->step_down = step_down;
	ew->ha = h;
	if ((r = uv_timer_init(ew->loop, &h->timer)) < 0)
		return r;
	h->timer.data = h;
	/* The lease does not keep the loop alive on its own: a stop ends it. */
	uv_unref((uv_handle_t *)&h->timer);
	return 0;
}

void ha_start(struct ew *ew, void (*done)(int r, const char *err, void *arg), void *arg)
{
	struct ha *h = ew->ha;
	h->start_done = done;
	h->start_arg = arg;
	ew->m.shared = store_shared(ew->store);
	if (!ew->m.shared) {
		become_active(h);
		return;
	}
	char host[256] = "?", holder[300];
	gethostname(host, sizeof(host) - 1);
	/* Unique per process and start: a restarted daemon is a new holder, with a new epoch. */
	snprintf(holder, sizeof(holder), "%s:%d:%lld", host, (int)getpid(), (long long)ew->m.start_ms);
	store_lease_setup(ew->store, holder, host, (int)getpid(), ew->cfg.lease_ttl_ms);
	store_on_notify(ew->store, on_notify, h);
	set_role(h, ROLE_STANDBY);
	try_take(h);
}

void ha_lost(struct ew *ew, const char *why)
{
	struct ha *h = ew->ha;
	if (!h || h->lost)
		return;
	h->lost = true;
	set_role(h, ROLE_STANDBY);
	uv_timer_stop(&h->timer);
	log_msg(LOG_WARNING, "lost the lease: %s; stepping down (no hook starts from here) to start again as a standby", why);
	h->step_down(ew, why);
}

bool ha_active(struct ew *ew)
{
	return ha_role(ew) == ROLE_ACTIVE;
}

enum ew_role ha_role(const struct ew *ew)
{
	return ew->ha ? ew->ha->role : ROLE_ACTIVE;
}

static void timer_closed(uv_handle_t *t)
{
	struct ha *h = t->data;
	h->timer_closed = true;
	gone(h);
}

void ha_close(struct ew *ew)
{
	struct ha *h = ew->ha;
	if (!h)
		return;
	ew->ha = NULL;
	h->closed = true;
	store_on_notify(ew->store, NULL, NULL);
	uv_close((uv_handle_t *)&h->timer, timer_closed);
}
