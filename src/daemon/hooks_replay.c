/*
 * Deliveries put back in memory from the store: the restore of the pending
 * ones at start-up or when a standby takes over, and replay, a delivery
 * queued again with its original event id (the receiver deduplicates by it),
 * one event at a time or every dead delivery matching a filter. Each takes
 * its place in the hook's order; a replay is recorded pending.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks_int.h"
#include "job.h"
#include "log.h"
#include "store.h"
#include "util.h"

struct redeliver_ctx {
	struct ew *ew;
	char event_id[37];
	char hook[256];
	bool any_hook;
	void (*done)(int n, const char *err, void *arg);
	void *arg;
};

static void redeliver_got(int r, const char *type, const char *subject, const char *b, const char *payload, void *arg)
{
	struct redeliver_ctx *c = arg;
	struct ew *ew = c->ew;
	const char *hook = c->any_hook ? NULL : c->hook;
	char err[320];

	if (r == -ENOENT) {
		snprintf(err, sizeof(err), "no event with id %.64s", c->event_id);
		goto out;
	}
	if (r < 0) {
		snprintf(err, sizeof(err), "state database: %s", r == -ECANCELED ? "stopping" : store_error(ew->store));
		goto out;
	}
	struct hooks *hs = ew->hooks;
	enum ew_event t = job_event_parse(type ? type : "");
	if (!payload)
		payload = "{}";
	/* The job's name, for job_name routing, is in the event's data. */
	char name[256] = "";
	json_object *doc = json_tokener_parse(payload), *data, *nm;
	if (json_object_object_get_ex(doc, "data", &data) && json_object_object_get_ex(data, "name", &nm) &&
	    json_object_is_type(nm, json_type_string))
		snprintf(name, sizeof(name), "%s", json_object_get_string(nm));
	json_object_put(doc);
	const struct ew_hook *take[64];
	size_t n = 0;
	for (size_t i = 0; i < ew->cfg.n_hooks && n < ARRAY_SIZE(take); i++) {
		const struct ew_hook *h = &ew->cfg.hooks[i];
		if (hook ? strcmp(hook, h->name) == 0 : hooks_takes(h, t, b, name[0] ? name : NULL))
			take[n++] = h;
	}
	if (!n) {
		r = -ENOENT;
		if (hook)
			snprintf(err, sizeof(err), "no hook named %.64s", hook);
		else
			snprintf(err, sizeof(err), "no hook takes events of type %s", type ? type : "?");
		goto out;
	}
	/* A delivery still queued or running is not queued twice. */
	for (size_t i = 0; i < n; i++) {
		if (hooks_in_memory(hs, c->event_id, take[i]->name)) {
			r = -EBUSY;
			snprintf(err, sizeof(err), "already pending: %s for hook %s is queued or running", c->event_id,
				 take[i]->name);
			goto out;
		}
	}
	struct payload *p = hooks_payload_new(payload);
	for (size_t i = 0; i < n; i++)
		hooks_requeue(hs, hooks_find(hs, take[i]->name), c->event_id, t, subject ? subject : "", b, p,
			      "redeliver requested");
	hooks_payload_unref(p);
	hooks_pump(hs);
	r = (int)n;
	err[0] = '\0';
out:
	c->done(r, err, c->arg);
	free(c);
}

void hooks_redeliver(struct ew *ew, const char *event_id, const char *hook, void (*done)(int n, const char *err, void *arg),
		     void *arg)
{
	struct redeliver_ctx *c = xcalloc(1, sizeof(*c));
	c->ew = ew;
	snprintf(c->event_id, sizeof(c->event_id), "%s", event_id);
	c->any_hook = !hook;
	snprintf(c->hook, sizeof(c->hook), "%s", hook ? hook : "");
	c->done = done;
	c->arg = arg;
	store_get_event(ew->store, c->event_id, redeliver_got, c);
}

struct replay_ctx {
	struct ew *ew;
	unsigned queued, skipped;
	void (*done)(int n, unsigned skipped, const char *err, void *arg);
	void *arg;
};

static int replay_one(const struct store_delivery *sd, void *arg)
{
	struct replay_ctx *x = arg;
	struct hooks *hs = x->ew->hooks;
	struct hook_rt *h = hooks_find(hs, sd->hook);
	if (!h || !h->cfg || hooks_in_memory(hs, sd->event_id, sd->hook)) {
		x->skipped++;
		return 0;
	}
	struct payload *p = hooks_payload_new(sd->payload ? sd->payload : "{}");
	hooks_requeue(hs, h, sd->event_id, job_event_parse(sd->type ? sd->type : ""), sd->subject, sd->batch, p,
		      "replay of a dead delivery requested");
	hooks_payload_unref(p);
	x->queued++;
	return 0;
}

static void replay_done(int r, void *arg)
{
	struct replay_ctx *x = arg;
	char err[320] = "";
	if (r < 0) {
		snprintf(err, sizeof(err), "state database: %s", r == -ECANCELED ? "stopping" : store_error(x->ew->store));
	} else {
		hooks_pump(x->ew->hooks);
		r = (int)x->queued;
	}
	x->done(r, x->skipped, err, x->arg);
	free(x);
}

void hooks_redeliver_dead(struct ew *ew, const struct hooks_replay *f,
			  void (*done)(int n, unsigned skipped, const char *err, void *arg), void *arg)
{
	char err[320];
	if (f->hook) {
		struct hook_rt *h = hooks_find(ew->hooks, f->hook);
		if (!h || !h->cfg) {
			snprintf(err, sizeof(err), "no hook named %.64s", f->hook);
			done(-ENOENT, 0, err, arg);
			return;
		}
	}
	if (f->event && job_event_parse(f->event) == EV_NONE) {
		snprintf(err, sizeof(err), "unknown event type \"%.64s\"", f->event);
		done(-EINVAL, 0, err, arg);
		return;
	}
	struct replay_ctx *x = xcalloc(1, sizeof(*x));
	x->ew = ew;
	x->done = done;
	x->arg = arg;
	store_each_dead(ew->store, f->hook, f->since_ms, f->event, replay_one, replay_done, x);
}

/* ---- the restore: the pending deliveries back in memory at start-up or a takeover ---- */

/*
 * When a restored delivery is due, by this host's clock. The row's due time
 * is the wall clock of the host that wrote it (another host, or this one
 * before its clock was stepped): a delivery never tried is due now, and a
 * retry no later than the hook's longest retry delay from now.
 */
static int64_t restored_due(const struct ew_hook *c, const struct store_delivery *sd, int64_t now)
{
	if (sd->attempts == 0)
		return sd->next_ms < now ? sd->next_ms : now;
	uint64_t longest = 0;
	for (size_t i = 0; i < c->n_retry; i++)
		longest = c->retry_ms[i] > longest ? c->retry_ms[i] : longest;
	int64_t latest = now + (int64_t)longest;
	return sd->next_ms < latest ? sd->next_ms : latest;
}

static int restore_one(const struct store_delivery *sd, void *arg)
{
	struct hooks *hs = arg;
	enum ew_event type = job_event_parse(sd->type ? sd->type : "");
	struct hook_rt *h = hooks_find(hs, sd->hook);

	if (!h || !h->cfg) {
		log_ctx(LOG_WARNING, &((struct log_ctx){ .event_id = sd->event_id, .hook = sd->hook }),
			"pending delivery of %s for hook \"%s\", which the config no longer has: kept in the state "
			"database until the hook comes back", sd->event_id, sd->hook);
		return 0;
	}
	/*
	 * Already in memory: planned by a commit of this daemon between taking the
	 * lease and this read (a batch.done found again at a takeover, say). One
	 * delivery per event and hook, never two.
	 */
	if (hooks_in_memory(hs, sd->event_id, sd->hook))
		return 0;
	struct payload *p = hooks_payload_new(sd->payload ? sd->payload : "{}");
	struct delivery *d = hooks_delivery_new(hs, h, sd->event_id, type, sd->subject, sd->batch, p);
	hooks_payload_unref(p);
	d->attempts = sd->attempts;
	d->next_ms = restored_due(h->cfg, sd, util_wall_ms());
	hooks_order_add(hs, d);
	return 0;
}

struct restore_ctx {
	struct ew *ew;
	void (*done)(int r, const char *err, void *arg);
	void *arg;
};

static void restored_pending(int r, void *arg)
{
	struct restore_ctx *x = arg;
	char err[1024] = "";
	if (r < 0)
		snprintf(err, sizeof(err), "cannot read the pending deliveries: %s",
			 r == -ECANCELED ? "stopping" : store_error(x->ew->store));
	else
		hooks_pump(x->ew->hooks);
	x->done(r, err, x->arg);
	free(x);
}

static int restore_row(const struct store_delivery *sd, void *arg)
{
	return restore_one(sd, ((struct restore_ctx *)arg)->ew->hooks);
}

static void restored_hooks(int r, void *arg)
{
	struct restore_ctx *x = arg;
	if (r < 0) {
		char err[1024];
		snprintf(err, sizeof(err), "cannot read the hooks' state: %s",
			 r == -ECANCELED ? "stopping" : store_error(x->ew->store));
		x->done(r, err, x->arg);
		free(x);
		return;
	}
	store_each_pending(x->ew->store, restore_row, restored_pending, x);
}

void hooks_restore(struct ew *ew, void (*done)(int r, const char *err, void *arg), void *arg)
{
	struct restore_ctx *x = xcalloc(1, sizeof(*x));
	x->ew = ew;
	x->done = done;
	x->arg = arg;
	hooks_ops_restore(ew->hooks, restored_hooks, x);
}
