/*
 * Replay: a delivery queued again with its original event id (the receiver
 * deduplicates by it), one event at a time or every dead delivery matching a
 * filter. The event comes from the store; the delivery is recorded pending
 * and takes its place in the hook's order.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks_int.h"
#include "job.h"
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
