/*
 * Delivery operations: the breaker (a hook whose every attempt fails for
 * disable_after, or a webhook that answers 410, is disabled; its deliveries
 * wait; hook.disabled and hook.enabled are recorded as events), the per-hook
 * rate (a token bucket) and Retry-After pauses, and what operators see and do
 * (hooks_each, enable/disable). State changes are recorded in the turn record
 * and written with the next commit.
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "hooks_int.h"
#include "log.h"
#include "sched.h"
#include "store.h"
#include "turn.h"
#include "util.h"
#include "watch.h"

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? xstrdup(v) : NULL;
}

/* The breaker state goes into the next commit. */
static void record_state(struct hooks *hs, struct hook_rt *h)
{
	struct turn_row *p = turn_row(&hs->ew->turn, TR_HOOK);
	p->subject = xstrdup(h->name);
	p->disabled_ms = h->disabled_ms;
	p->text = h->why ? xstrdup(h->why) : NULL;
	p->failing_ms = h->failing_ms;
	p->last_error = h->last_error ? xstrdup(h->last_error) : NULL;
	p->last_error_ms = h->last_error_ms;
}

static unsigned count_disabled(const struct hooks *hs)
{
	unsigned n = 0;
	for (const struct hook_rt *h = hs->list; h; h = h->next)
		n += h->cfg && h->disabled_ms;
	return n;
}

static json_object *event_data(const struct hook_rt *h, const char *why)
{
	char t[40];
	json_object *o = json_object_new_object();
	json_object_object_add(o, "hook", json_object_new_string(h->name));
	json_object_object_add(o, "hook_type", json_object_new_string(h->cfg && h->cfg->type == HOOK_WEBHOOK ? "webhook" : "exec"));
	util_rfc3339(h->disabled_ms, t, sizeof(t));
	json_object_object_add(o, "since", json_object_new_string(t));
	json_object_object_add(o, "why", json_object_new_string(why));
	json_object_object_add(o, "last_error", h->last_error ? json_object_new_string(h->last_error) : NULL);
	json_object_object_add(o, "deliveries_waiting", json_object_new_int64(h->queued));
	return o;
}

void hooks_ops_disable(struct hooks *hs, struct hook_rt *h, const char *why)
{
	if (h->disabled_ms)
		return;
	h->disabled_ms = util_wall_ms();
	set_str(&h->why, why);
	hs->ew->m.hook_disables++;
	hs->ew->m.hooks_disabled = count_disabled(hs);
	log_ctx(LOG_ERR, &((struct log_ctx){ .hook = h->name }),
		"hook %s disabled: %s; its %u deliveries wait until \"embedwatchctl hooks enable %s\" or a reload",
		h->name, why, h->queued, h->name);
	record_state(hs, h);
	watch_hook_event(hs->ew, EV_HOOK_DISABLED, h->name, h->disabled_ms, event_data(h, why));
}

void hooks_ops_enable(struct hooks *hs, struct hook_rt *h, const char *why)
{
	if (!h->disabled_ms)
		return;
	json_object *data = event_data(h, why);
	int64_t since = h->disabled_ms;
	json_object_object_add(data, "disabled_for_s", json_object_new_int64((util_wall_ms() - since) / 1000));
	h->disabled_ms = 0;
	set_str(&h->why, NULL);
	h->failing_ms = 0;
	h->paused_until_ms = 0;
	hs->ew->m.hooks_disabled = count_disabled(hs);
	log_ctx(LOG_NOTICE, &((struct log_ctx){ .hook = h->name }), "hook %s enabled (%s); %u deliveries go out in order",
		h->name, why, h->queued);
	record_state(hs, h);
	watch_hook_event(hs->ew, EV_HOOK_ENABLED, h->name, since, data);
	hooks_release_delayed(hs, h);
}

void hooks_ops_note(struct hooks *hs, struct hook_rt *h, bool ok, const char *error)
{
	int64_t now = util_wall_ms();
	if (ok) {
		if (h->failing_ms) {
			h->failing_ms = 0;
			record_state(hs, h);
		}
		return;
	}
	if (!h->failing_ms)
		h->failing_ms = now;
	set_str(&h->last_error, error);
	h->last_error_ms = now;
	record_state(hs, h);
	uint64_t after = h->cfg ? h->cfg->disable_after_ms : 0;
	if (after && !h->disabled_ms && now - h->failing_ms >= (int64_t)after) {
		char why[400];
		char dur[32];
		util_format_duration(after, dur, sizeof(dur));
		snprintf(why, sizeof(why), "every attempt failed for %s (disable_after), the last: %.300s", dur,
			 error ? error : "?");
		hooks_ops_disable(hs, h, why);
	}
}

void hooks_ops_configure(struct hooks *hs, struct hook_rt *h)
{
	uint64_t now = uv_now(hs->ew->loop);
	if (h->cfg && h->cfg->rate_per_s > 0)
		sched_bucket_init(&h->bucket, h->cfg->rate_per_s, 1, now);
}

bool hooks_ops_may_start(struct hooks *hs, struct hook_rt *h, int64_t now)
{
	if (h->disabled_ms)
		return false;
	if (h->paused_until_ms) {
		if (now < h->paused_until_ms)
			return false;
		h->paused_until_ms = 0;
	}
	if (h->cfg->rate_per_s > 0 && !sched_bucket_take(&h->bucket, uv_now(hs->ew->loop)))
		return false;
	return true;
}

void hooks_ops_pause(struct hooks *hs, struct hook_rt *h, uint64_t ms)
{
	int64_t until = util_wall_ms() + (int64_t)ms;
	if (until > h->paused_until_ms) {
		h->paused_until_ms = until;
		log_ctx(LOG_WARNING, &((struct log_ctx){ .hook = h->name }),
			"hook %s paused for %llu ms (Retry-After); other hooks go on", h->name, (unsigned long long)ms);
	}
}

static void on_gate(uv_timer_t *t)
{
	hooks_pump(container_of(t, struct hooks, gate_timer));
}

void hooks_ops_arm(struct hooks *hs)
{
	int64_t now = util_wall_ms();
	uint64_t loop_now = uv_now(hs->ew->loop);
	int64_t wait = -1;

	if (hs->stopping)
		return;
	for (struct hook_rt *h = hs->list; h; h = h->next) {
		if (!h->cfg || h->disabled_ms || !heap_len(&h->ready) || h->running >= h->cfg->concurrency)
			continue;
		int64_t w = 0;
		if (h->paused_until_ms > now)
			w = h->paused_until_ms - now;
		else if (h->cfg->rate_per_s > 0)
			w = (int64_t)sched_bucket_wait(&h->bucket, loop_now);
		if (w > 0 && (wait < 0 || w < wait))
			wait = w;
	}
	if (wait > 0)
		UV_CHECK(uv_timer_start(&hs->gate_timer, on_gate, (uint64_t)wait, 0));
}

static int restore_hook(const struct store_hook *sh, void *arg)
{
	struct hooks *hs = arg;
	for (struct hook_rt *h = hs->list; h; h = h->next) {
		if (!h->cfg || strcmp(h->name, sh->name) != 0)
			continue;
		h->disabled_ms = sh->disabled_ms;
		set_str(&h->why, sh->why);
		h->failing_ms = sh->failing_ms;
		set_str(&h->last_error, sh->last_error);
		h->last_error_ms = sh->last_error_ms;
		if (h->disabled_ms)
			log_ctx(LOG_WARNING, &((struct log_ctx){ .hook = h->name }),
				"hook %s stays disabled (%s): \"embedwatchctl hooks enable %s\" or a reload enables it",
				h->name, h->why ? h->why : "?", h->name);
	}
	return 0;
}

struct ops_restore {
	struct hooks *hs;
	store_done_fn *done;
	void *arg;
};

static int restore_hook_row(const struct store_hook *sh, void *arg)
{
	return restore_hook(sh, ((struct ops_restore *)arg)->hs);
}

static void restored(int r, void *arg)
{
	struct ops_restore *x = arg;
	if (r == 0)
		x->hs->ew->m.hooks_disabled = count_disabled(x->hs);
	x->done(r, x->arg);
	free(x);
}

void hooks_ops_restore(struct hooks *hs, store_done_fn *done, void *arg)
{
	struct ops_restore *x = xcalloc(1, sizeof(*x));
	x->hs = hs;
	x->done = done;
	x->arg = arg;
	store_each_hook(hs->ew->store, restore_hook_row, restored, x);
}

void hooks_ops_free(struct hook_rt *h)
{
	free(h->why);
	free(h->last_error);
}

/* ---- what operators see and do ---- */

int hooks_each(struct ew *ew, int (*fn)(const struct hooks_info *hi, void *arg), void *arg)
{
	for (struct hook_rt *h = ew->hooks->list; h; h = h->next) {
		if (!h->cfg)
			continue;
		struct hooks_info hi = {
			.name = h->name, .type = h->cfg->type == HOOK_WEBHOOK ? "webhook" : "exec",
			.disabled_ms = h->disabled_ms, .why = h->why, .failing_ms = h->failing_ms,
			.last_error = h->last_error, .last_error_ms = h->last_error_ms, .queued = h->queued,
			.running = h->running, .paused_until_ms = h->paused_until_ms, .rate_per_s = h->cfg->rate_per_s,
			.concurrency = h->cfg->concurrency,
		};
		int r = fn(&hi, arg);
		if (r)
			return r;
	}
	return 0;
}

int hooks_set_enabled(struct ew *ew, const char *name, bool enable, char *err, size_t errlen)
{
	struct hook_rt *h = NULL;
	for (struct hook_rt *p = ew->hooks->list; p; p = p->next)
		if (p->cfg && strcmp(p->name, name) == 0)
			h = p;
	if (!h) {
		snprintf(err, errlen, "no hook named %.64s", name);
		return -ENOENT;
	}
	if (enable) {
		if (!h->disabled_ms)
			return 0;
		hooks_ops_enable(ew->hooks, h, "enabled by an operator (embedwatchctl hooks enable)");
	} else {
		if (h->disabled_ms)
			return 0;
		hooks_ops_disable(ew->hooks, h, "disabled by an operator (embedwatchctl hooks disable)");
	}
	hooks_pump(ew->hooks);
	return 1;
}
