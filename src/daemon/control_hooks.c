/*
 * The control socket's delivery commands, which change state and so answer
 * after the commit: redeliver (one event, or dead deliveries in bulk) and
 * hooks (the list; enable and disable).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"
#include "ha.h"
#include "hooks.h"
#include "store.h"
#include "util.h"

static bool get_bool(json_object *req, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(req, key, &v) && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

static void redeliver_dead_done(int n, unsigned skipped, const char *err, void *arg)
{
	struct client *c = arg;
	if (!control_read_end(c))
		return;
	if (n < 0) {
		control_send_error(c, "%s", err);
		return;
	}
	json_object *o = control_ok_answer();
	json_object_object_add(o, "queued", json_object_new_int(n));
	json_object_object_add(o, "skipped", json_object_new_int((int)skipped));
	if (skipped)
		json_object_object_add(o, "note", json_object_new_string(
			"skipped: dead deliveries of hooks the config no longer has, or already queued again"));
	control_hold_answer(c, o);
}

static void redeliver_dead(struct client *c, json_object *req)
{
	struct hooks_replay f = { .hook = control_get_str(req, "hook"), .event = control_get_str(req, "event") };
	char err[256], what[256];   /* the text, three names of at most 64 and their words: 238 */

	if (control_since(req, &f.since_ms, err, sizeof(err)) < 0) {
		control_send_error(c, "%s", err);
		return;
	}
	snprintf(what, sizeof(what), "replay of dead deliveries%s%.64s%s%.64s%s%.64s", f.hook ? " to hook " : "",
		 f.hook ? f.hook : "", f.event ? " of " : "", f.event ? f.event : "", control_get_str(req, "since") ? " since " : "",
		 control_get_str(req, "since") ? control_get_str(req, "since") : "");
	control_log_peer(c, what);
	control_read_begin(c);
	hooks_redeliver_dead(c->ctl->ew, &f, redeliver_dead_done, c);
}

static void redeliver_done(int n, const char *err, void *arg)
{
	struct client *c = arg;
	if (!control_read_end(c))
		return;
	if (n < 0) {
		control_send_error(c, "%s", err);
		return;
	}
	json_object *o = control_ok_answer();
	json_object_object_add(o, "queued", json_object_new_int(n));
	control_hold_answer(c, o);
}

void control_cmd_redeliver(struct client *c, json_object *req)
{
	const char *id = control_get_str(req, "event_id");
	const char *hook = control_get_str(req, "hook");

	if (get_bool(req, "dead")) {
		if (id) {
			control_send_error(c, "give either \"event_id\" or \"dead\": true, not both");
			return;
		}
		redeliver_dead(c, req);
		return;
	}
	if (!id) {
		control_send_error(c, "\"event_id\" (or \"dead\": true) is required");
		return;
	}
	if (control_get_str(req, "since") || control_get_str(req, "event")) {
		control_send_error(c, "\"since\" and \"event\" filter a replay of dead deliveries (\"dead\": true)");
		return;
	}
	char what[160];
	snprintf(what, sizeof(what), "redeliver of %.40s%s%.64s", id, hook ? " to hook " : "", hook ? hook : "");
	control_log_peer(c, what);
	control_read_begin(c);
	hooks_redeliver(c->ctl->ew, id, hook, redeliver_done, c);
}

static json_object *time_or_null(int64_t ms)
{
	char t[40];
	if (!ms)
		return NULL;
	util_rfc3339(ms, t, sizeof(t));
	return json_object_new_string(t);
}

/* The hooks list: each hook as memory has it, then its counts from the state, one read per hook. */
struct hooks_list {
	struct client *c;
	json_object *arr;
	int64_t hour_ago;
	unsigned pending;           /* reads not back yet, and one for the start */
	int failed;
};

struct hook_item {
	struct hooks_list *x;
	json_object *o;
};

static void hooks_list_end(struct hooks_list *x)
{
	if (--x->pending)
		return;
	if (control_read_end(x->c)) {
		if (x->failed) {
			control_send_error(x->c, "state database: %s", store_error(x->c->ctl->ew->store));
		} else {
			json_object *o = control_ok_answer();
			json_object_object_add(o, "hooks", json_object_get(x->arr));
			control_send_line(x->c, o);
		}
	}
	json_object_put(x->arr);
	free(x);
}

static void hook_stats_done(int r, const struct store_hook_stats *st, void *arg)
{
	struct hook_item *it = arg;
	struct hooks_list *x = it->x;
	if (r < 0) {
		x->failed = 1;
	} else {
		/* The keys were placed (null) in their order; replacing a value keeps its place. */
		/* A standby holds no deliveries: its pending count is the shared state's. */
		if (!ha_active(x->c->ctl->ew))
			json_object_object_add(it->o, "pending", json_object_new_int64(st->pending));
		json_object_object_add(it->o, "dead", json_object_new_int64(st->dead));
		json_object_object_add(it->o, "delivered_last_hour", json_object_new_int64(st->done_since));
		json_object_object_add(it->o, "last_success", time_or_null(st->last_done_ms));
	}
	free(it);
	hooks_list_end(x);
}

static int hook_one(const struct hooks_info *hi, void *arg)
{
	struct hooks_list *x = arg;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(hi->name));
	json_object_object_add(o, "type", json_object_new_string(hi->type));
	json_object_object_add(o, "state", json_object_new_string(hi->disabled_ms ? "disabled" : "enabled"));
	json_object_object_add(o, "since", time_or_null(hi->disabled_ms));
	json_object_object_add(o, "why", hi->why ? json_object_new_string(hi->why) : NULL);
	json_object_object_add(o, "failing_since", time_or_null(hi->failing_ms));
	json_object_object_add(o, "pending", json_object_new_int64(hi->queued));
	json_object_object_add(o, "running", json_object_new_int64(hi->running));
	json_object_object_add(o, "dead", NULL);
	json_object_object_add(o, "delivered_last_hour", NULL);
	json_object_object_add(o, "last_success", NULL);
	json_object_object_add(o, "last_error", hi->last_error ? json_object_new_string(hi->last_error) : NULL);
	json_object_object_add(o, "last_error_at", time_or_null(hi->last_error_ms));
	json_object_object_add(o, "paused_until", hi->paused_until_ms > util_wall_ms() ? time_or_null(hi->paused_until_ms) : NULL);
	json_object_object_add(o, "rate_per_s", hi->rate_per_s > 0 ? json_object_new_double(hi->rate_per_s) : NULL);
	json_object_object_add(o, "concurrency", json_object_new_int64(hi->concurrency));
	json_object_array_add(x->arr, o);
	return 0;
}

void control_cmd_hooks(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	const char *action = control_get_str(req, "action");
	const char *name = control_get_str(req, "name");
	char err[256];

	if (action) {
		bool enable = strcmp(action, "enable") == 0;
		if (!enable && strcmp(action, "disable") != 0) {
			control_send_error(c, "hooks: unknown action \"%.32s\"; expected enable or disable", action);
			return;
		}
		if (!name) {
			control_send_error(c, "hooks %s: \"name\" is required", action);
			return;
		}
		char what[120];
		snprintf(what, sizeof(what), "hooks %s %.64s", action, name);
		control_log_peer(c, what);
		int r = hooks_set_enabled(ew, name, enable, err, sizeof(err));
		if (r < 0) {
			control_send_error(c, "%s", err);
			return;
		}
		json_object *o = control_ok_answer();
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "state", json_object_new_string(enable ? "enabled" : "disabled"));
		json_object_object_add(o, "changed", json_object_new_boolean(r > 0));
		control_hold_answer(c, o);
		return;
	}
	struct hooks_list *x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->arr = json_object_new_array();
	x->hour_ago = util_wall_ms() - 3600000;
	hooks_each(ew, hook_one, x);
	control_read_begin(c);
	size_t n = json_object_array_length(x->arr);
	x->pending = (unsigned)n + 1;
	for (size_t i = 0; i < n; i++) {
		struct hook_item *it = xcalloc(1, sizeof(*it));
		it->x = x;
		it->o = json_object_array_get_idx(x->arr, i);
		json_object *hn;
		json_object_object_get_ex(it->o, "name", &hn);
		store_hook_stats(ew->store, json_object_get_string(hn), x->hour_ago, hook_stats_done, it);
	}
	hooks_list_end(x);
}
