/*
 * Deliveries: each committed event becomes one delivery per matching hook.
 * A delivery is retried with backoff until it succeeds or runs out of
 * attempts, and its state is written with the next commit. Exec hooks run
 * without a shell in their own process group; webhooks are signed POSTs
 * through the same curl multi as polling.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hooks_int.h"
#include "log.h"
#include "util.h"


static struct payload *payload_new(const char *s)
{
	size_t n = strlen(s);
	struct payload *p = xmalloc(sizeof(*p) + n + 1);
	p->refs = 1;
	p->len = n;
	memcpy(p->data, s, n + 1);
	return p;
}

static void payload_unref(struct payload *p)
{
	if (p && --p->refs == 0)
		free(p);
}

void hooks_delivery_free(struct hooks *hs, struct delivery *d)
{
	payload_unref(d->payload);
	free(d->subject);
	free(d->batch);
	free(d);
	hs->pending--;
}

static struct hook_rt *hook_find(struct hooks *hs, const char *name)
{
	for (struct hook_rt *h = hs->list; h; h = h->next)
		if (strcmp(h->name, name) == 0)
			return h;
	return NULL;
}

static struct hook_rt *hook_get(struct hooks *hs, const char *name)
{
	struct hook_rt *h = hook_find(hs, name);
	if (!h) {
		h = xcalloc(1, sizeof(*h));
		h->name = xstrdup(name);
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
	if (hs->n_upd == hs->cap_upd) {
		hs->cap_upd = hs->cap_upd ? hs->cap_upd * 2 : 64;
		hs->upd = xrealloc(hs->upd, hs->cap_upd * sizeof(*hs->upd));
	}
	struct dupdate *u = &hs->upd[hs->n_upd++];
	memcpy(u->event_id, d->event_id, sizeof(u->event_id));
	u->hook = xstrdup(d->hook->name);
	u->state = state;
	u->attempts = d->attempts;
	u->next_ms = d->next_ms;
	u->last_error = error ? xstrdup(error) : NULL;
	u->updated_ms = util_wall_ms();
	hs->ew->hooks_dirty = true;
}

int hooks_flush(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	for (size_t i = 0; i < hs->n_upd; i++) {
		struct dupdate *u = &hs->upd[i];
		int r = store_put_delivery(ew->store, u->event_id, u->hook, u->state, u->attempts, u->next_ms,
					   u->last_error, u->updated_ms);
		if (r < 0)
			return r;
	}
	hs->n_flushed = hs->n_upd;
	return 0;
}

void hooks_committed(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	if (hs->n_flushed == 0)
		return;
	for (size_t i = 0; i < hs->n_flushed; i++) {
		free(hs->upd[i].hook);
		free(hs->upd[i].last_error);
	}
	memmove(hs->upd, hs->upd + hs->n_flushed, (hs->n_upd - hs->n_flushed) * sizeof(*hs->upd));
	hs->n_upd -= hs->n_flushed;
	hs->n_flushed = 0;
	ew->hooks_dirty = hs->n_upd > 0;
}

void hooks_ready_push(struct hook_rt *h, struct delivery *d)
{
	d->next = NULL;
	if (h->ready_tail)
		h->ready_tail->next = d;
	else
		h->ready_head = d;
	h->ready_tail = d;
}

static struct delivery *ready_pop(struct hook_rt *h)
{
	struct delivery *d = h->ready_head;
	if (d) {
		h->ready_head = d->next;
		if (!h->ready_head)
			h->ready_tail = NULL;
		d->next = NULL;
	}
	return d;
}

static void on_delay_timer(uv_timer_t *t);

static void arm_delayed(struct hooks *hs)
{
	int64_t first = INT64_MAX;
	for (struct delivery *d = hs->delayed; d; d = d->next)
		if (d->next_ms < first)
			first = d->next_ms;
	if (first == INT64_MAX || hs->stopping) {
		uv_timer_stop(&hs->delay_timer);
		return;
	}
	int64_t wait = first - util_wall_ms();
	uv_timer_start(&hs->delay_timer, on_delay_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void on_delay_timer(uv_timer_t *t)
{
	struct hooks *hs = container_of(t, struct hooks, delay_timer);
	int64_t now = util_wall_ms();
	struct delivery **pp = &hs->delayed;
	while (*pp) {
		struct delivery *d = *pp;
		if (d->next_ms <= now) {
			*pp = d->next;
			hooks_ready_push(d->hook, d);
		} else {
			pp = &d->next;
		}
	}
	arm_delayed(hs);
	hooks_pump(hs);
}

static void enqueue(struct hooks *hs, struct delivery *d)
{
	if (d->next_ms > util_wall_ms()) {
		d->next = hs->delayed;
		hs->delayed = d;
		arm_delayed(hs);
	} else {
		hooks_ready_push(d->hook, d);
	}
}

static struct delivery *delivery_new(struct hooks *hs, struct hook_rt *h, const char *event_id, enum ew_event type,
				     const char *subject, const char *batch, struct payload *p)
{
	struct delivery *d = xcalloc(1, sizeof(*d));
	d->hook = h;
	snprintf(d->event_id, sizeof(d->event_id), "%s", event_id);
	d->type = type;
	d->subject = xstrdup(subject ? subject : "");
	d->batch = batch ? xstrdup(batch) : NULL;
	d->payload = p;
	p->refs++;
	hs->pending++;
	return d;
}

void hooks_event(struct ew *ew, const char *event_id, enum ew_event type, const char *subject,
		 const char *batch, const char *payload)
{
	struct hooks *hs = ew->hooks;
	struct payload *p = NULL;

	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		const struct ew_hook *c = &ew->cfg.hooks[i];
		if (!(c->on_mask & (1u << type)))
			continue;
		if (!p)
			p = payload_new(payload);
		struct delivery *d = delivery_new(hs, hook_get(hs, c->name), event_id, type, subject, batch, p);
		d->next_ms = util_wall_ms();
		enqueue(hs, d);
	}
	payload_unref(p);
	hooks_pump(hs);
}

void hooks_restore(struct ew *ew, const struct store_delivery *sd)
{
	struct hooks *hs = ew->hooks;
	enum ew_event type = job_event_parse(sd->type ? sd->type : "");
	struct hook_rt *h = hook_find(hs, sd->hook);

	if (!h || !h->cfg) {
		log_ctx(LOG_WARNING, &((struct log_ctx){ .event_id = sd->event_id, .hook = sd->hook }),
			"pending delivery of %s for hook \"%s\", which the config no longer has: kept in the state "
			"database until the hook comes back", sd->event_id, sd->hook);
		return;
	}
	struct payload *p = payload_new(sd->payload ? sd->payload : "{}");
	struct delivery *d = delivery_new(hs, h, sd->event_id, type, sd->subject, sd->batch, p);
	payload_unref(p);
	d->attempts = sd->attempts;
	d->next_ms = sd->next_ms;
	enqueue(hs, d);
	hooks_pump(hs);
}

/* Retry delay after `attempts` failed attempts, jittered by 10 %. */
static uint64_t retry_delay(const struct ew_hook *c, unsigned attempts)
{
	size_t i = attempts ? attempts - 1 : 0;
	if (i >= c->n_retry)
		i = c->n_retry - 1;
	return sched_jitter(c->retry_ms[i], 0.1, util_rand_unit());
}

/* One attempt ended: done, retried later, or dead. */
void hooks_finish(struct hooks *hs, struct delivery *d, bool ok, bool permanent, uint64_t min_delay,
		   const char *error, uint64_t ms)
{
	struct hook_rt *h = d->hook;
	struct log_ctx ctx = { .event_id = d->event_id, .event = job_event_name(d->type), .hook = h->name,
			       .job_id = d->type == EV_BATCH_DONE ? NULL : d->subject };

	h->running--;
	hs->running--;
	d->attempts++;
	if (ok) {
		hs->ew->m.deliveries_ok++;
		log_ctx(LOG_INFO, &ctx, "hook %s delivered %s (%s %s) in %llu ms, attempt %u", h->name, d->event_id,
			job_event_name(d->type), d->subject, (unsigned long long)ms, d->attempts);
		record(hs, d, "done", NULL);
		hooks_delivery_free(hs, d);
		return;
	}
	hs->ew->m.deliveries_failed++;
	unsigned max = h->cfg ? h->cfg->max_attempts : 1;
	if (permanent || d->attempts >= max) {
		hs->ew->m.deliveries_dead++;
		log_ctx(LOG_ERR, &ctx, "hook %s gave up on %s (%s %s) after %u attempts: %s", h->name, d->event_id,
			job_event_name(d->type), d->subject, d->attempts, error);
		record(hs, d, "dead", error);
		hooks_delivery_free(hs, d);
		return;
	}
	uint64_t delay = retry_delay(h->cfg, d->attempts);
	if (min_delay > delay)
		delay = min_delay;
	d->next_ms = util_wall_ms() + (int64_t)delay;
	log_ctx(LOG_WARNING, &ctx, "hook %s failed on %s (attempt %u of %u): %s; retrying in %llu ms", h->name,
		d->event_id, d->attempts, max, error, (unsigned long long)delay);
	record(hs, d, "pending", error);
	enqueue(hs, d);
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

/* ---- exec ---- */

static void start(struct hooks *hs, struct delivery *d)
{
	struct run *r = xcalloc(1, sizeof(*r));
	r->hs = hs;
	r->d = d;
	r->started = uv_now(hs->ew->loop);
	d->hook->running++;
	hs->running++;
	r->next = hs->runs;
	hs->runs = r;
	int e = d->hook->cfg->type == HOOK_EXEC ? hooks_exec_start(hs, r) : hooks_webhook_start(hs, r);
	if (e < 0) {
		hooks_run_unlink(hs, r);
		if (r->is_webhook) {
			curl_slist_free_all(r->headers);
			http_req_free(&r->req);
		}
		free(r);
		hooks_finish(hs, d, false, false, 0, "cannot start the request", 0);
	}
}

void hooks_pump(struct hooks *hs)
{
	bool progress = true;
	unsigned cap = hs->ew->cfg.hooks_max_concurrent;

	if (hs->stopping)
		return;
	/* Round-robin over the hooks so one slow hook cannot starve the others. */
	while (progress && hs->running < cap) {
		progress = false;
		for (struct hook_rt *h = hs->list; h && hs->running < cap; h = h->next) {
			if (!h->cfg || h->disabled || h->running >= h->cfg->concurrency || !h->ready_head)
				continue;
			start(hs, ready_pop(h));
			progress = true;
		}
	}
}

void hooks_reconfigure(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	for (struct hook_rt *h = hs->list; h; h = h->next) {
		h->cfg = NULL;
		h->disabled = false;
	}
	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		struct hook_rt *h = hook_get(hs, ew->cfg.hooks[i].name);
		h->cfg = &ew->cfg.hooks[i];
		if (hooks_load_secrets(h, h->cfg) < 0)
			h->disabled = true;
	}
	hooks_pump(hs);
}

int hooks_init(struct ew *ew)
{
	struct hooks *hs = xcalloc(1, sizeof(*hs));
	hs->ew = ew;
	ew->hooks = hs;
	uv_timer_init(ew->loop, &hs->delay_timer);
	uv_timer_init(ew->loop, &hs->grace_timer);
	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		struct hook_rt *h = hook_get(hs, ew->cfg.hooks[i].name);
		h->cfg = &ew->cfg.hooks[i];
		if (hooks_load_secrets(h, h->cfg) < 0)
			return -EINVAL;
	}
	return 0;
}

struct redeliver_ctx {
	char type[64];
	char subject[300];
	char batch[300];
	bool have_batch;
	char *payload;
};

static void redeliver_got(const char *t, const char *s, const char *b, const char *p, void *arg)
{
	struct redeliver_ctx *c = arg;
	snprintf(c->type, sizeof(c->type), "%s", t ? t : "");
	snprintf(c->subject, sizeof(c->subject), "%s", s ? s : "");
	if (b) {
		snprintf(c->batch, sizeof(c->batch), "%s", b);
		c->have_batch = true;
	}
	c->payload = xstrdup(p ? p : "{}");
}

int hooks_redeliver(struct ew *ew, const char *event_id, const char *hook, char *err, size_t errlen)
{
	struct hooks *hs = ew->hooks;
	struct redeliver_ctx c = { .have_batch = false };
	int r = store_get_event(ew->store, event_id, redeliver_got, &c);

	if (r == -ENOENT) {
		snprintf(err, errlen, "no event with id %s", event_id);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "state database: %s", store_error(ew->store));
		return r;
	}
	enum ew_event t = job_event_parse(c.type);
	struct payload *p = payload_new(c.payload);
	free(c.payload);
	int queued = 0;
	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		const struct ew_hook *h = &ew->cfg.hooks[i];
		if (hook ? strcmp(hook, h->name) != 0 : !(h->on_mask & (1u << t)))
			continue;
		struct delivery *d = delivery_new(hs, hook_get(hs, h->name), event_id, t, c.subject,
						  c.have_batch ? c.batch : NULL, p);
		d->next_ms = util_wall_ms();
		record(hs, d, "pending", "redeliver requested");
		enqueue(hs, d);
		queued++;
	}
	payload_unref(p);
	if (!queued) {
		if (hook)
			snprintf(err, errlen, "no hook named %s", hook);
		else
			snprintf(err, errlen, "no hook takes events of type %s", c.type);
		return -ENOENT;
	}
	hooks_pump(hs);
	return queued;
}

static void on_grace(uv_timer_t *t)
{
	struct hooks *hs = container_of(t, struct hooks, grace_timer);
	for (struct run *r = hs->runs; r; r = r->next) {
		if (r->is_webhook) {
			continue;
		}
		if (!r->exited) {
			r->killed = true;
			kill(-r->proc.pid, SIGKILL);
		}
	}
	/* Webhooks in flight: cancel; they stay pending. */
	struct run *r = hs->runs;
	while (r) {
		struct run *next = r->next;
		if (r->is_webhook)
			hooks_webhook_cancel(hs, r);
		r = next;
	}
}

void hooks_stop(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	hs->stopping = true;
	uv_timer_stop(&hs->delay_timer);
	if (hs->running)
		uv_timer_start(&hs->grace_timer, on_grace, ew->cfg.shutdown_grace_ms, 0);
}

bool hooks_idle(struct ew *ew)
{
	return ew->hooks->running == 0;
}

unsigned hooks_pending(struct ew *ew)
{
	return ew->hooks->pending;
}

unsigned hooks_running(struct ew *ew)
{
	return ew->hooks->running;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct hooks *hs = h->data;
	if (--hs->open_timers == 0)
		free(hs);
}

void hooks_close(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	if (!hs)
		return;
	for (struct hook_rt *h = hs->list; h;) {
		struct hook_rt *next = h->next;
		struct delivery *d;
		while ((d = ready_pop(h)))
			hooks_delivery_free(hs, d);
		free(h->name);
		free(h);
		h = next;
	}
	while (hs->delayed) {
		struct delivery *d = hs->delayed;
		hs->delayed = d->next;
		hooks_delivery_free(hs, d);
	}
	for (size_t i = 0; i < hs->n_upd; i++) {
		free(hs->upd[i].hook);
		free(hs->upd[i].last_error);
	}
	free(hs->upd);
	hs->open_timers = 2;
	hs->delay_timer.data = hs->grace_timer.data = hs;
	uv_close((uv_handle_t *)&hs->delay_timer, on_timer_closed);
	uv_close((uv_handle_t *)&hs->grace_timer, on_timer_closed);
	ew->hooks = NULL;
}
