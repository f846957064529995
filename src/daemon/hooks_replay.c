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
#include "store.h"
#include "util.h"

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
		snprintf(err, errlen, "no event with id %.64s", event_id);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "state database: %s", store_error(ew->store));
		return r;
	}
	enum ew_event t = job_event_parse(c.type);
	/* The job's name, for job_name routing, is in the event's data. */
	char name[256] = "";
	json_object *doc = json_tokener_parse(c.payload), *data, *nm;
	if (json_object_object_get_ex(doc, "data", &data) && json_object_object_get_ex(data, "name", &nm) &&
	    json_object_is_type(nm, json_type_string))
		snprintf(name, sizeof(name), "%s", json_object_get_string(nm));
	json_object_put(doc);
	const struct ew_hook *take[64];
	size_t n = 0;
	for (size_t i = 0; i < ew->cfg.n_hooks && n < ARRAY_SIZE(take); i++) {
		const struct ew_hook *h = &ew->cfg.hooks[i];
		if (hook ? strcmp(hook, h->name) == 0 : hooks_takes(h, t, c.have_batch ? c.batch : NULL, name[0] ? name : NULL))
			take[n++] = h;
	}
	if (!n) {
		free(c.payload);
		if (hook)
			snprintf(err, errlen, "no hook named %.64s", hook);
		else
			snprintf(err, errlen, "no hook takes events of type %s", c.type);
		return -ENOENT;
	}
	/* A delivery still queued or running is not queued twice. */
	for (size_t i = 0; i < n; i++) {
		if (hooks_in_memory(hs, event_id, take[i]->name)) {
			free(c.payload);
			snprintf(err, errlen, "already pending: %s for hook %s is queued or running", event_id,
				 take[i]->name);
			return -EBUSY;
		}
	}
	struct payload *p = hooks_payload_new(c.payload);
	free(c.payload);
	for (size_t i = 0; i < n; i++)
		hooks_requeue(hs, hooks_find(hs, take[i]->name), event_id, t, c.subject, c.have_batch ? c.batch : NULL, p,
			      "redeliver requested");
	hooks_payload_unref(p);
	hooks_pump(hs);
	return (int)n;
}

struct replay_ctx {
	struct hooks *hs;
	unsigned queued, skipped;
};

static int replay_one(const struct store_delivery *sd, void *arg)
{
	struct replay_ctx *x = arg;
	struct hook_rt *h = hooks_find(x->hs, sd->hook);
	if (!h || !h->cfg || hooks_in_memory(x->hs, sd->event_id, sd->hook)) {
		x->skipped++;
		return 0;
	}
	struct payload *p = hooks_payload_new(sd->payload ? sd->payload : "{}");
	hooks_requeue(x->hs, h, sd->event_id, job_event_parse(sd->type ? sd->type : ""), sd->subject, sd->batch, p,
		      "replay of a dead delivery requested");
	hooks_payload_unref(p);
	x->queued++;
	return 0;
}

int hooks_redeliver_dead(struct ew *ew, const struct hooks_replay *f, unsigned *ret_skipped, char *err, size_t errlen)
{
	struct replay_ctx x = { .hs = ew->hooks };
	if (f->hook) {
		struct hook_rt *h = hooks_find(ew->hooks, f->hook);
		if (!h || !h->cfg) {
			snprintf(err, errlen, "no hook named %.64s", f->hook);
			return -ENOENT;
		}
	}
	if (f->event && job_event_parse(f->event) == EV_NONE) {
		snprintf(err, errlen, "unknown event type \"%.64s\"", f->event);
		return -EINVAL;
	}
	int r = store_each_dead(ew->store, f->hook, f->since_ms, f->event, replay_one, &x);
	if (r < 0) {
		snprintf(err, errlen, "state database: %s", store_error(ew->store));
		return r;
	}
	*ret_skipped = x.skipped;
	hooks_pump(ew->hooks);
	return (int)x.queued;
}
