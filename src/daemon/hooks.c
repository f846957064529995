/*
 * The dispatcher: deliveries queued, claimed, started and retried. A delivery moves
 *   ready queue -> claimed (attempt number recorded) -> commit -> running
 *   -> done | dead | delayed (heap by next attempt time) -> ready queue
 * and every state change is recorded in the turn record. Attempts run only
 * through the table of drivers (struct hook_driver), whatever the hook's type.
 */
#include <errno.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "hooks_int.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "sched.h"
#include "store.h"
#include "strmap.h"
#include "turn.h"
#include "util.h"

struct payload *hooks_payload_new(const char *s)
{
	size_t n = strlen(s);
	struct payload *p = xmalloc(sizeof(*p) + n + 1);
	p->refs = 1;
	p->len = n;
	memcpy(p->data, s, n + 1);
	return p;
}

void hooks_payload_unref(struct payload *p)
{
	if (p && --p->refs == 0)
		free(p);
}

static void gauges(struct hooks *hs)
{
	hs->ew->m.deliveries_pending = hs->pending;
	hs->ew->m.hooks_running = hs->running;
}

static void delivery_free(struct hooks *hs, struct delivery *d)
{
	hooks_order_forget(d);
	strmap_del(&hs->index, d->key);
	d->hook->queued--;
	hooks_payload_unref(d->payload);
	free(d->subject);
	free(d->batch);
	free(d->key);
	free(d);
	hs->pending--;
	gauges(hs);
}

/* A hook's ready queue: oldest first. */
static bool older(const void *a, const void *b)
{
	return ((const struct delivery *)a)->seq < ((const struct delivery *)b)->seq;
}

struct hook_rt *hooks_find(struct hooks *hs, const char *name)
{
	for (struct hook_rt *h = hs->list; h; h = h->next)
		if (strcmp(h->name, name) == 0)
			return h;
	return NULL;
}

static struct hook_rt *hook_get(struct hooks *hs, const char *name)
{
	struct hook_rt *h = hooks_find(hs, name);
	if (!h) {
		h = xcalloc(1, sizeof(*h));
		h->name = xstrdup(name);
		heap_init(&h->ready, older, offsetof(struct delivery, heap_idx));
		/* Append, to keep config order for round-robin. */
		struct hook_rt **pp = &hs->list;
		while (*pp)
			pp = &(*pp)->next;
		*pp = h;
	}
	return h;
}

static void record(struct hooks *hs, struct delivery *d, const char *state, const char *error)
{
	turn_delivery(&hs->ew->turn, d->event_id, d->hook->name, state, d->attempts, d->next_ms, error);
}

/* ---- the claimed list ---- */

static void queue_push(struct delivery **head, struct delivery **tail, struct delivery *d)
{
	d->next = NULL;
	if (*tail)
		(*tail)->next = d;
	else
		*head = d;
	*tail = d;
}

static struct delivery *queue_pop(struct delivery **head, struct delivery **tail)
{
	struct delivery *d = *head;
	if (d) {
		*head = d->next;
		if (!*head)
			*tail = NULL;
		d->next = NULL;
	}
	return d;
}

/* ---- the heaps: each hook's ready queue (oldest first), the delayed set (earliest attempt first) ---- */

static bool sooner(const void *a, const void *b)
{
	const struct delivery *x = a, *y = b;
	return x->next_ms < y->next_ms || (x->next_ms == y->next_ms && x->seq < y->seq);
}

static void on_delay_timer(uv_timer_t *t);

/* Arms the timer for the earliest delayed delivery: O(1), whatever the number delayed. */
static void arm_delayed(struct hooks *hs)
{
	const struct delivery *first = heap_peek(&hs->delayed);
	if (!first || hs->stopping) {
		uv_timer_stop(&hs->delay_timer);
		return;
	}
	int64_t wait = first->next_ms - util_wall_ms();
	UV_CHECK(uv_timer_start(&hs->delay_timer, on_delay_timer, wait > 0 ? (uint64_t)wait : 0, 0));
}

static void on_delay_timer(uv_timer_t *t)
{
	struct hooks *hs = container_of(t, struct hooks, delay_timer);
	int64_t now = util_wall_ms();
	struct delivery *d;
	while ((d = heap_peek(&hs->delayed)) && d->next_ms <= now) {
		heap_pop(&hs->delayed);
		heap_push(&d->hook->ready, d);
	}
	arm_delayed(hs);
	hooks_pump(hs);
}

void hooks_enqueue(struct hooks *hs, struct delivery *d)
{
	if (d->next_ms > util_wall_ms()) {
		heap_push(&hs->delayed, d);
		if (d->heap_idx == 0)
			arm_delayed(hs);
	} else {
		heap_push(&d->hook->ready, d);
	}
}

void hooks_release_delayed(struct hooks *hs, struct hook_rt *h)
{
	for (size_t i = heap_len(&hs->delayed); i-- > 0;) {
		if (i >= heap_len(&hs->delayed))
			continue;
		struct delivery *d = heap_at(&hs->delayed, i);
		if (d->hook != h)
			continue;
		heap_remove(&hs->delayed, d);
		d->next_ms = util_wall_ms();
		heap_push(&h->ready, d);
	}
	arm_delayed(hs);
}

struct delivery *hooks_delivery_new(struct hooks *hs, struct hook_rt *h, const char *event_id, enum ew_event type,
				   const char *subject, const char *batch, struct payload *p)
{
	struct delivery *d = xcalloc(1, sizeof(*d));
	d->hook = h;
	snprintf(d->event_id, sizeof(d->event_id), "%s", event_id);
	d->type = type;
	d->subject = xstrdup(subject ? subject : "");
	d->batch = batch ? xstrdup(batch) : NULL;
	d->payload = p;
	d->heap_idx = HEAP_NONE;
	d->seq = ++hs->seq;
	p->refs++;
	size_t n = strlen(event_id) + strlen(h->name) + 2;
	d->key = xmalloc(n);
	snprintf(d->key, n, "%s %s", event_id, h->name);
	strmap_put(&hs->index, d->key, d);
	h->queued++;
	hs->pending++;
	gauges(hs);
	return d;
}

/* ---- planning: which hooks take an event ---- */

/*
 * Whether hook c takes an event: its type is in `on`, its batch matches the
 * hook's batch glob (an event without a batch matches only "*"), and the job's
 * name matches the job_name glob (batch.done, which has no job, passes it; a
 * job event whose name is unknown matches only "*").
 */
bool hooks_takes(const struct ew_hook *c, enum ew_event type, const char *batch, const char *job_name)
{
	if (!(c->on_mask & (1u << type)))
		return false;
	if (job_event_is_hook(type))
		return true;        /* operational events are about no batch and no job */
	if (c->batch_glob && fnmatch(c->batch_glob, batch ? batch : "", 0) != 0)
		return false;
	if (c->job_name_glob && type != EV_BATCH_DONE && fnmatch(c->job_name_glob, job_name ? job_name : "", 0) != 0)
		return false;
	return true;
}

void hooks_plan(struct hooks *hs, struct turn_row *ev)
{
	const struct ew_config *cfg = &hs->ew->cfg;
	for (size_t i = 0; i < cfg->n_hooks; i++) {
		if (!hooks_takes(&cfg->hooks[i], ev->type, ev->batch, ev->job_name))
			continue;
		/* A hook never hears of its own breaker: it could not take the news. */
		if (job_event_is_hook(ev->type) && strcmp(ev->subject, cfg->hooks[i].name) == 0)
			continue;
		ev->hooks = xrealloc(ev->hooks, (ev->n_hooks + 1) * sizeof(*ev->hooks));
		ev->hooks[ev->n_hooks++] = xstrdup(cfg->hooks[i].name);
	}
}

/* ---- claiming and starting ---- */

/* The drivers, by hook type: the dispatcher knows them only through this table. */
static const struct hook_driver *const drivers[] = {
	[HOOK_EXEC] = &hooks_exec_driver,
	[HOOK_WEBHOOK] = &hooks_webhook_driver,
};

static void start(struct hooks *hs, struct delivery *d)
{
	if (d->lag_from_ms) {
		metrics_observe_lag(&hs->ew->m, (double)(util_wall_ms() - d->lag_from_ms) / 1000.0);
		d->lag_from_ms = 0;
	}
	const struct hook_driver *drv = drivers[d->hook->cfg->type];
	struct run *r = drv->alloc();
	r->hs = hs;
	r->d = d;
	r->drv = drv;
	r->started = uv_now(hs->ew->loop);
	r->next = hs->runs;
	hs->runs = r;
	if (drv->start(hs, r) < 0) {
		hooks_run_unlink(hs, r);
		hooks_run_free(r);
		hooks_finish(hs, d, &(struct hook_outcome){ .why = "cannot start the request" });
	}
}

void hooks_pump(struct hooks *hs)
{
	bool progress = true;
	unsigned cap = hs->ew->cfg.hooks_max_concurrent;
	int64_t now = util_wall_ms();

	if (hs->stopping)
		return;
	/* Round-robin over the hooks so one slow hook cannot starve the others. */
	while (progress && hs->running < cap) {
		progress = false;
		for (struct hook_rt *h = hs->list; h && hs->running < cap; h = h->next) {
			if (!h->cfg || h->running >= h->cfg->concurrency || !heap_len(&h->ready) || !hooks_ops_may_start(hs, h, now))
				continue;
			struct delivery *d = heap_pop(&h->ready);
			/* Claimed: the attempt number is written before the attempt starts. */
			d->attempts++;
			d->next_ms = util_wall_ms();
			record(hs, d, "pending", NULL);
			d->claim_gen = hs->ew->turn.gen;
			h->running++;
			hs->running++;
			queue_push(&hs->claimed_head, &hs->claimed_tail, d);
			progress = true;
		}
	}
	hooks_ops_arm(hs);
	gauges(hs);
}

void hooks_dispatch(struct ew *ew, const struct turn_row *rows, uint64_t gen)
{
	struct hooks *hs = ew->hooks;
	struct delivery *d;

	/*
	 * The claims recorded in or before the commit that just succeeded (the
	 * list is in claim order), taken off first: claims made while these start
	 * wait for their own commit.
	 */
	struct delivery *ready = NULL, **tail = &ready;
	while (hs->claimed_head && hs->claimed_head->claim_gen <= gen) {
		*tail = queue_pop(&hs->claimed_head, &hs->claimed_tail);
		tail = &(*tail)->next;
	}
	while ((d = ready)) {
		ready = d->next;
		d->next = NULL;
		if (hs->stopping || !d->hook->cfg)
			hooks_unclaim(hs, d, !hs->stopping);
		else if (!store_lease_fresh(ew->store))
			/* The lease may have expired since the commit was checked (this process was paused): nothing starts. */
			hooks_unclaim(hs, d, true);
		else
			start(hs, d);
	}
	for (const struct turn_row *r = rows; r; r = r->next) {
		if (r->kind != TR_EVENT || !r->is_new || !r->n_hooks)
			continue;
		struct payload *p = hooks_payload_new(r->text);
		for (size_t i = 0; i < r->n_hooks; i++) {
			d = hooks_delivery_new(hs, hook_get(hs, r->hooks[i]), r->event_id, r->type, r->subject, r->batch, p);
			d->next_ms = r->ts_ms;
			d->lag_from_ms = r->lag_from_ms;
			hooks_order_add(hs, d);
		}
		hooks_payload_unref(p);
	}
	hooks_pump(hs);
}

bool hooks_in_memory(struct hooks *hs, const char *event_id, const char *hook)
{
	char key[37 + 1 + 256];
	snprintf(key, sizeof(key), "%s %s", event_id, hook);
	return strmap_get(&hs->index, key) != NULL;
}

void hooks_requeue(struct hooks *hs, struct hook_rt *h, const char *event_id, enum ew_event type, const char *subject,
		   const char *batch, struct payload *p, const char *why)
{
	struct delivery *d = hooks_delivery_new(hs, h, event_id, type, subject, batch, p);
	d->next_ms = util_wall_ms();
	record(hs, d, "pending", why);
	hooks_order_add(hs, d);
}

/* Retry delay after `attempts` failed attempts, jittered by 10 %. */
static uint64_t retry_delay(const struct ew_hook *c, unsigned attempts)
{
	size_t i = attempts ? attempts - 1 : 0;
	if (i >= c->n_retry)
		i = c->n_retry - 1;
	return sched_jitter(c->retry_ms[i], 0.1, util_rand_unit());
}

static void release_slot(struct hooks *hs, struct delivery *d)
{
	d->hook->running--;
	hs->running--;
	gauges(hs);
}

void hooks_unclaim(struct hooks *hs, struct delivery *d, bool requeue)
{
	release_slot(hs, d);
	if (d->attempts)
		d->attempts--;
	record(hs, d, "pending", NULL);
	if (requeue)
		heap_push(&d->hook->ready, d);
	else
		delivery_free(hs, d);
}

void hooks_finish(struct hooks *hs, struct delivery *d, const struct hook_outcome *o)
{
	struct hook_rt *h = d->hook;
	struct log_ctx ctx = { .event_id = d->event_id, .event = job_event_name(d->type), .hook = h->name,
			       .job_id = hooks_of_job(d) ? d->subject : NULL };

	release_slot(hs, d);
	hooks_ops_note(hs, h, o->ok, o->why);
	if (o->ok) {
		hs->ew->m.deliveries_ok++;
		log_ctx(LOG_INFO, &ctx, "hook %s delivered %s (%s %s) in %llu ms, attempt %u", h->name, d->event_id,
			job_event_name(d->type), d->subject, (unsigned long long)o->ms, d->attempts);
		record(hs, d, "done", NULL);
		hooks_order_release(hs, d);
		delivery_free(hs, d);
		return;
	}
	hs->ew->m.deliveries_failed++;
	if (h->disabled_ms) {
		/* Nothing dies while its hook is disabled: it waits, and goes first when the hook is enabled. */
		log_ctx(LOG_WARNING, &ctx, "hook %s failed on %s (attempt %u): %s; waiting while the hook is disabled",
			h->name, d->event_id, d->attempts, o->why);
		d->next_ms = util_wall_ms();
		record(hs, d, "pending", o->why);
		heap_push(&h->ready, d);
		return;
	}
	unsigned max = h->cfg ? h->cfg->max_attempts : 1;
	if (o->permanent || d->attempts >= max) {
		hs->ew->m.deliveries_dead++;
		log_ctx(LOG_ERR, &ctx, "hook %s gave up on %s (%s %s) after %u attempts: %s", h->name, d->event_id,
			job_event_name(d->type), d->subject, d->attempts, o->why);
		record(hs, d, "dead", o->why);
		hooks_order_release(hs, d);
		delivery_free(hs, d);
		return;
	}
	uint64_t delay = retry_delay(h->cfg, d->attempts);
	if (o->min_delay_ms > delay)
		delay = o->min_delay_ms;
	d->next_ms = util_wall_ms() + (int64_t)delay;
	log_ctx(LOG_WARNING, &ctx, "hook %s failed on %s (attempt %u of %u): %s; retrying in %llu ms", h->name,
		d->event_id, d->attempts, max, o->why, (unsigned long long)delay);
	record(hs, d, "pending", o->why);
	hooks_enqueue(hs, d);
}

void hooks_run_unlink(struct hooks *hs, struct run *r)
{
	for (struct run **pp = &hs->runs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			return;
		}
	}
}

void hooks_run_free(struct run *r)
{
	if (r)
		r->drv->free(r);
}

/* What the hook's driver loads beyond its configuration (a webhook's secrets): 0, or negative (logged). */
static int configure(struct hook_rt *h)
{
	const struct hook_driver *drv = drivers[h->cfg->type];
	return drv->configure ? drv->configure(h, h->cfg) : 0;
}

void hooks_reconfigure(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	for (struct hook_rt *h = hs->list; h; h = h->next)
		h->cfg = NULL;
	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		struct hook_rt *h = hook_get(hs, ew->cfg.hooks[i].name);
		h->cfg = &ew->cfg.hooks[i];
		hooks_ops_configure(hs, h);
		/* A reload enables what was disabled; secrets that cannot be read disable it again, saying why. */
		hooks_ops_enable(hs, h, "enabled by a reload");
		if (configure(h) < 0)
			hooks_ops_disable(hs, h, "its configuration cannot be loaded (see the log)");
	}
	hooks_pump(hs);
}

int hooks_init(struct ew *ew)
{
	struct hooks *hs = xcalloc(1, sizeof(*hs));
	int r;

	hs->ew = ew;
	heap_init(&hs->delayed, sooner, offsetof(struct delivery, heap_idx));
	ew->hooks = hs;
	if ((r = uv_timer_init(ew->loop, &hs->delay_timer)) < 0 || (r = uv_timer_init(ew->loop, &hs->grace_timer)) < 0 ||
	    (r = uv_timer_init(ew->loop, &hs->gate_timer)) < 0)
		return r;
	hs->open_timers = 3;
	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		struct hook_rt *h = hook_get(hs, ew->cfg.hooks[i].name);
		h->cfg = &ew->cfg.hooks[i];
		hooks_ops_configure(hs, h);
		if (configure(h) < 0)
			return -EINVAL;
	}
	return 0;
}

static void on_grace(uv_timer_t *t)
{
	struct hooks *hs = container_of(t, struct hooks, grace_timer);
	struct run *r = hs->runs;
	/* What still runs is stopped by its driver (a stop may end and free the run): it stays pending. */
	while (r) {
		struct run *next = r->next;
		r->drv->stop(hs, r);
		r = next;
	}
}

void hooks_stop(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	struct delivery *d;

	hs->stopping = true;
	uv_timer_stop(&hs->delay_timer);
	uv_timer_stop(&hs->gate_timer);
	/* Claimed but not started: they run after the restart. */
	while ((d = queue_pop(&hs->claimed_head, &hs->claimed_tail)))
		hooks_unclaim(hs, d, false);
	if (hs->runs)
		UV_CHECK(uv_timer_start(&hs->grace_timer, on_grace, ew->cfg.shutdown_grace_ms, 0));
}

bool hooks_idle(struct ew *ew)
{
	return ew->hooks->runs == NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct hooks *hs = h->data;
	if (--hs->open_timers == 0) {
		strmap_free(&hs->index);
		free(hs);
	}
}

static void collect(const char *key, void *val, void *arg)
{
	(void)key;
	struct delivery ***pp = arg;
	*(*pp)++ = val;
}

void hooks_close(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	if (!hs)
		return;
	/* Every delivery in memory, wherever it is: queued, delayed, claimed or held. */
	struct delivery **all = xmalloc((hs->index.len + 1) * sizeof(*all)), **end = all;
	strmap_each(&hs->index, collect, &end);
	for (struct delivery **p = all; p < end; p++)
		delivery_free(hs, *p);
	free(all);
	hs->claimed_head = hs->claimed_tail = NULL;
	heap_free(&hs->delayed);
	for (struct hook_rt *h = hs->list; h;) {
		struct hook_rt *next = h->next;
		hooks_order_free(h);
		heap_free(&h->ready);
		hooks_ops_free(h);
		free(h->name);
		free(h);
		h = next;
	}
	hs->list = NULL;
	hs->delay_timer.data = hs->grace_timer.data = hs->gate_timer.data = hs;
	uv_close((uv_handle_t *)&hs->delay_timer, on_timer_closed);
	uv_close((uv_handle_t *)&hs->grace_timer, on_timer_closed);
	uv_close((uv_handle_t *)&hs->gate_timer, on_timer_closed);
	ew->hooks = NULL;
}
