/*
 * The control socket on a standby, over a shared state. A standby holds no
 * jobs: it answers reads (list, show, batches, deliveries, hooks, status,
 * metrics) from the shared state, writes the requests that change it (watch,
 * unwatch, cancel, redeliver, hooks enable|disable) as rows for the active and
 * answers once that row is committed, and checks its waits against the shared
 * state every half second. The active applies those rows: control_relay.c.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "control_int.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

/* The standby's view of the batches and jobs it shows: per name, counts by status. */
#define BATCH_VIEW_MAX 100000

/* ---- rows as the active shows its jobs ---- */

static json_object *row_json(const struct store_job *j)
{
	json_object *o = json_object_new_object();
	char t[40];
	int st = j->status >= 0 && j->status < JOB__MAX ? j->status : JOB_UNKNOWN;
	json_object_object_add(o, "id", json_object_new_string(j->id));
	json_object_object_add(o, "status", json_object_new_string(job_status_name((enum job_status)st)));
	json_object_object_add(o, "batch", j->batch ? json_object_new_string(j->batch) : NULL);
	util_rfc3339(j->added_ms, t, sizeof(t));
	json_object_object_add(o, "added", json_object_new_string(t));
	util_rfc3339(j->updated_ms, t, sizeof(t));
	json_object_object_add(o, "updated", json_object_new_string(t));
	if (j->discovered)
		json_object_object_add(o, "discovered", json_object_new_boolean(1));
	int k = j->kind == JOB_KIND_BATCH ? JOB_KIND_BATCH : JOB_KIND_EMBED;
	json_object_object_add(o, "kind", json_object_new_string(job_kind_name((enum job_kind)k)));
	return o;
}

static bool row_ended(const struct store_job *j)
{
	return j->status >= 0 && j->status < JOB__MAX && job_status_ended((enum job_status)j->status);
}

/* The ids of a request that are valid job ids (a new array), the others refused by name into rejected. */
static json_object *valid_ids(json_object *req, json_object *rejected)
{
	json_object *ids, *out = json_object_new_array();
	if (!json_object_object_get_ex(req, "ids", &ids) || !json_object_is_type(ids, json_type_array))
		return out;
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		json_object *e = json_object_array_get_idx(ids, i);
		const char *id = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
		if (id && control_key_valid(id)) {
			json_object_array_add(out, json_object_new_string(id));
		} else if (rejected) {
			json_object *r = json_object_new_object();
			json_object_object_add(r, "id", id ? json_object_new_string(id) : json_object_get(e));
			json_object_object_add(r, "error", json_object_new_string(
				"invalid job id: expected 1 to 128 characters of A-Z a-z 0-9 _ -"));
			json_object_array_add(rejected, r);
		}
	}
	return out;
}

/* ---- a standby's requests that change the state: written for the active ---- */

struct forward {
	struct client *c;
	enum ctl_cmd cmd;
	char *line;
	json_object *ids;           /* the valid ids of a watch, unwatch or cancel */
	json_object *known;         /* those the shared state has, with whether they ended */
	json_object *answer;        /* what the answer says besides the request's id */
	int kind;                   /* a watch: the kind asked for (the active refuses another kind's ids too) */
};

static void forward_free(struct forward *f)
{
	free(f->line);
	json_object_put(f->ids);
	json_object_put(f->known);
	json_object_put(f->answer);
	free(f);
}

static void forwarded(int r, int64_t id, void *arg)
{
	struct forward *f = arg;
	if (control_read_end(f->c)) {
		if (r < 0) {
			control_send_error(f->c, "state database: %s", store_error(f->c->ctl->ew->store));
		} else {
			json_object *o = json_object_get(f->answer);
			json_object_object_add(o, "forwarded", json_object_new_boolean(1));
			json_object_object_add(o, "request", json_object_new_int64(id));
			control_send_line(f->c, o);
		}
	}
	forward_free(f);
}

/* Writes the request as the client sent it; the answer goes once it is committed. */
static void forward_write(struct forward *f)
{
	struct ew *ew = f->c->ctl->ew;
	log_msg(LOG_INFO, "control: standby: a request for the active written to the shared state");
	store_put_request(ew->store, f->line, forwarded, f);
}

static int known_row(const struct store_job *j, void *arg)
{
	struct forward *f = arg;
	/* Watched as the other kind: a string (the kind) instead of whether it ended. */
	if (f->cmd == CTL_WATCH && j->kind != f->kind)
		json_object_object_add(f->known, j->id, json_object_new_string(job_kind_name((enum job_kind)j->kind)));
	else
		json_object_object_add(f->known, j->id, json_object_new_boolean(row_ended(j)));
	return 0;
}

/* What the shared state already has of the request's ids decides the counts of the answer. */
static void known_read(int r, void *arg)
{
	struct forward *f = arg;
	struct client *c = f->c;
	if (r < 0) {
		if (control_read_end(c))
			control_send_error(c, "state database: %s", store_error(c->ctl->ew->store));
		forward_free(f);
		return;
	}
	size_t n = json_object_array_length(f->ids), known = 0, ended = 0, n_other = 0;
	json_object *unknown = json_object_new_array(), *rejected;
	json_object_object_get_ex(f->answer, "rejected", &rejected);
	for (size_t i = 0; i < n; i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(f->ids, i));
		json_object *e = NULL;
		bool have = json_object_object_get_ex(f->known, id, &e);
		if (have && json_object_is_type(e, json_type_string)) {
			char why[80];
			snprintf(why, sizeof(why), "already watched as %s", json_object_get_string(e));
			json_object *o = json_object_new_object();
			json_object_object_add(o, "id", json_object_new_string(id));
			json_object_object_add(o, "error", json_object_new_string(why));
			json_object_array_add(rejected, o);
			n_other++;
		} else if (have) {
			known++;
			if (json_object_get_boolean(e)) {
				ended++;
				if (f->cmd == CTL_CANCEL) {
					json_object *o = json_object_new_object();
					json_object_object_add(o, "id", json_object_new_string(id));
					json_object_object_add(o, "error", json_object_new_string("the job has already ended"));
					json_object_array_add(rejected, o);
				}
			}
		} else {
			json_object_array_add(unknown, json_object_new_string(id));
		}
	}
	if (f->cmd == CTL_WATCH) {
		json_object_object_add(f->answer, "added", json_object_new_int64((int64_t)(n - known - n_other)));
		json_object_object_add(f->answer, "already", json_object_new_int64((int64_t)known));
		json_object_put(unknown);
	} else if (f->cmd == CTL_UNWATCH) {
		json_object_object_add(f->answer, "removed", json_object_new_int64((int64_t)known));
		json_object_object_add(f->answer, "unknown", unknown);
	} else {
		json_object_object_add(f->answer, "queued", json_object_new_int64((int64_t)(n - ended)));
		json_object_put(unknown);
	}
	forward_write(f);
}

static struct forward *forward_new(struct client *c, enum ctl_cmd cmd, const char *line, size_t len)
{
	struct forward *f = xcalloc(1, sizeof(*f));
	f->c = c;
	f->cmd = cmd;
	f->line = xstrndup(line, len);
	f->answer = control_ok_answer();
	control_read_begin(c);
	return f;
}

static void forward_ids(struct client *c, enum ctl_cmd cmd, json_object *req, const char *line, size_t len)
{
	json_object *ids, *v;
	if (!json_object_object_get_ex(req, "ids", &ids) || !json_object_is_type(ids, json_type_array)) {
		control_send_error(c, "\"ids\" must be an array of job ids");
		return;
	}
	if (cmd == CTL_WATCH && json_object_object_get_ex(req, "batch", &v) && v && !json_object_is_type(v, json_type_string)) {
		control_send_error(c, "\"batch\" must be a string");
		return;
	}
	int kind = cmd == CTL_WATCH ? control_get_kind(c, req) : JOB_KIND_EMBED;
	if (kind < 0)
		return;
	struct forward *f = forward_new(c, cmd, line, len);
	f->kind = kind;
	json_object *rejected = json_object_new_array();
	/* Unwatch takes any string: an unknown id is said to be unknown, not refused. */
	f->ids = valid_ids(req, cmd == CTL_UNWATCH ? NULL : rejected);
	if (cmd != CTL_UNWATCH)
		json_object_object_add(f->answer, "rejected", rejected);
	else
		json_object_put(rejected);
	f->known = json_object_new_object();
	size_t n = json_object_array_length(f->ids);
	const char **list = xcalloc(n ? n : 1, sizeof(*list));
	for (size_t i = 0; i < n; i++)
		list[i] = json_object_get_string(json_object_array_get_idx(f->ids, i));
	struct store_job_filter filter = { .ids = list, .n_ids = n };
	char what[96];
	snprintf(what, sizeof(what), "%s of %zu ids, for the active", cmd == CTL_WATCH ? "watch" : cmd == CTL_UNWATCH ?
		 "unwatch" : "cancel", n);
	control_log_peer(c, what);
	store_each_job(c->ctl->ew->store, &filter, known_row, known_read, f);
	free(list);
}

static void forward_other(struct client *c, enum ctl_cmd cmd, json_object *req, const char *line, size_t len)
{
	const char *action = control_get_str(req, "action"), *name = control_get_str(req, "name");
	if (cmd == CTL_REDELIVER && !control_get_str(req, "event_id") && !json_object_object_get_ex(req, "dead", NULL)) {
		control_send_error(c, "\"event_id\" (or \"dead\": true) is required");
		return;
	}
	if (cmd == CTL_HOOKS) {
		if (strcmp(action, "enable") != 0 && strcmp(action, "disable") != 0) {
			control_send_error(c, "hooks: unknown action \"%.32s\"; expected enable or disable", action);
			return;
		}
		const struct ew_config *cfg = &c->ctl->ew->cfg;
		size_t i = 0;
		while (name && i < cfg->n_hooks && strcmp(cfg->hooks[i].name, name) != 0)
			i++;
		if (!name || i == cfg->n_hooks) {
			control_send_error(c, "no hook named %.64s", name ? name : "(none)");
			return;
		}
	}
	struct forward *f = forward_new(c, cmd, line, len);
	if (cmd == CTL_HOOKS) {
		json_object_object_add(f->answer, "name", json_object_new_string(name));
		json_object_object_add(f->answer, "state", json_object_new_string(strcmp(action, "enable") ? "disabled" : "enabled"));
	}
	/* What the active will queue is not known here: it applies the request within a second. */
	json_object_object_add(f->answer, "note", json_object_new_string(
		"written to the shared state; the active daemon applies it (see its log)"));
	control_log_peer(c, cmd == CTL_HOOKS ? "hooks change, for the active" : "redeliver, for the active");
	forward_write(f);
}

/* ---- a standby's reads: from the shared state ---- */

struct jobs_read {
	struct client *c;
	json_object *arr;
	int status;                 /* -1: any */
	int kind;                   /* -1: any */
	struct ctlproto_page page;  /* list: the page's rows (paging: ctlproto.h) */
	char after[129];            /* the request's "after", which outlives the request */
	bool show;                  /* show: the one job, then its snapshot and events */
	char id[129];
};

static void drop_row(void *o)
{
	json_object_put(o);
}

static int list_row(const struct store_job *j, void *arg)
{
	struct jobs_read *x = arg;
	if (x->status >= 0 && j->status != x->status)
		return 0;
	if (x->kind >= 0 && j->kind != x->kind)
		return 0;
	json_object *o = row_json(j), *id;
	if (x->show) {
		json_object_array_add(x->arr, o);
		return 0;
	}
	json_object_object_get_ex(o, "id", &id);
	ctlproto_page_add(&x->page, json_object_get_string(id), o);
	return 0;
}

static void jobs_read_done(int r, void *arg)
{
	struct jobs_read *x = arg;
	struct client *c = x->c;
	if (control_read_end(c)) {
		if (r < 0) {
			control_send_error(c, "state database: %s", store_error(c->ctl->ew->store));
		} else if (x->show) {
			json_object *jo = json_object_array_length(x->arr) ? json_object_get(json_object_array_get_idx(x->arr, 0)) : NULL;
			if (!jo) {
				control_send_error(c, "job %s is not watched", x->id);
			} else {
				json_object *id;
				json_object_object_get_ex(jo, "id", &id);
				control_show_stored(c, json_object_get_string(id), jo);
			}
		} else {
			ctlproto_page_end(&x->page);
			for (size_t i = 0; i < x->page.n; i++)
				json_object_array_add(x->arr, json_object_get(x->page.items[i].item));
			json_object *o = control_ok_answer();
			json_object_object_add(o, "jobs", json_object_get(x->arr));
			ctlproto_page_next(&x->page, o);
			control_send_line(c, o);
		}
	}
	ctlproto_page_free(&x->page);
	json_object_put(x->arr);
	free(x);
}

static void standby_list(struct client *c, json_object *req, bool show)
{
	struct jobs_read *x = xcalloc(1, sizeof(*x));
	const char *st = control_get_str(req, "status");
	json_object *v, *ids = NULL;
	x->c = c;
	x->status = -1;
	x->kind = -1;
	x->show = show;
	if (show) {
		const char *id = control_get_str(req, "id");
		if (!id || !control_key_valid(id)) {
			free(x);
			control_send_error(c, "\"id\" must be a valid job id");
			return;
		}
		ids = json_object_new_array();
		json_object_array_add(ids, json_object_new_string(id));
		snprintf(x->id, sizeof(x->id), "%s", id);
	} else if (st && (x->status = job_status_from_name(st)) < 0) {
		free(x);
		control_send_error(c, "unknown status \"%.64s\"; expected new, processing, cancelling, complete, cancelled, "
				   "failed, unknown, not_found, error or expired", st);
		return;
	}
	if (!show && json_object_object_get_ex(req, "kind", &v) && v && (x->kind = control_get_kind(c, req)) < 0) {
		free(x);
		return;
	}
	char err[256];
	if (!show && ctlproto_page_init(&x->page, req, drop_row, err, sizeof(err)) < 0) {
		free(x);
		control_send_error(c, "%s", err);
		return;
	}
	if (x->page.after) {
		/* A job id, or nothing after it can be one: the read outlives the request. */
		snprintf(x->after, sizeof(x->after), "%s", x->page.after);
		x->page.after = x->after;
	}
	if (!show && json_object_object_get_ex(req, "ids", &v) && json_object_is_type(v, json_type_array))
		ids = valid_ids(req, NULL);
	x->arr = json_object_new_array();
	size_t n = ids ? json_object_array_length(ids) : 0;
	const char **list = xcalloc(n ? n : 1, sizeof(*list));
	for (size_t i = 0; i < n; i++)
		list[i] = json_object_get_string(json_object_array_get_idx(ids, i));
	struct store_job_filter f = { .ids = ids ? list : NULL, .n_ids = n, .batch = show ? NULL : control_get_str(req, "batch") };
	control_read_begin(c);
	store_each_job(c->ctl->ew->store, &f, list_row, jobs_read_done, x);
	free(list);
	json_object_put(ids);
}

/* Batches and the status: counts by batch and status, and the totals. */
struct counts_read {
	struct client *c;
	enum ctl_cmd cmd;
	json_object *batches;       /* name -> {"name","total","ended","done","counts"} */
	size_t by_status[JOB__MAX];
	size_t batch_jobs[JOB__MAX];    /* of those, batch jobs (v2) */
	int64_t jobs;
	struct store_counts totals;
	int pending;                /* reads not back yet */
	int failed;
};

static json_object *batch_view(struct counts_read *x, const char *name)
{
	json_object *b;
	if (json_object_object_get_ex(x->batches, name, &b))
		return b;
	if (json_object_object_length(x->batches) >= BATCH_VIEW_MAX)
		return NULL;
	b = json_object_new_object();
	json_object_object_add(b, "name", json_object_new_string(name));
	json_object_object_add(b, "total", json_object_new_int64(0));
	json_object_object_add(b, "ended", json_object_new_int64(0));
	json_object_object_add(b, "done", json_object_new_boolean(0));
	json_object_object_add(b, "counts", json_object_new_object());
	json_object_object_add(x->batches, name, b);
	return b;
}

static void add_to(json_object *o, const char *key, int64_t n)
{
	json_object *v;
	json_object_object_get_ex(o, key, &v);
	json_object_object_add(o, key, json_object_new_int64(json_object_get_int64(v) + n));
}

static int count_row(const char *batch, int kind, int status, int64_t n, void *arg)
{
	struct counts_read *x = arg;
	if (status < 0 || status >= JOB__MAX)
		return 0;
	x->by_status[status] += (size_t)n;
	if (kind == JOB_KIND_BATCH)
		x->batch_jobs[status] += (size_t)n;
	x->jobs += n;
	json_object *b = batch ? batch_view(x, batch) : NULL, *counts;
	if (b) {
		add_to(b, "total", n);
		if (job_status_ended((enum job_status)status))
			add_to(b, "ended", n);
		json_object_object_get_ex(b, "counts", &counts);
		add_to(counts, job_status_name((enum job_status)status), n);
	}
	return 0;
}

static int batch_row(const char *name, const char *done_event, void *arg)
{
	json_object *b = batch_view(arg, name);
	if (b)
		json_object_object_add(b, "done", json_object_new_boolean(done_event != NULL));
	return 0;
}

static void status_answer(struct counts_read *x)
{
	struct ew *ew = x->c->ctl->ew;
	const struct metrics *m = &ew->m;
	json_object *s = json_object_new_object(), *by = json_object_new_object();
	char line[512];
	for (int i = 0; i < JOB__MAX; i++)
		if (x->by_status[i])
			json_object_object_add(by, job_status_name((enum job_status)i), json_object_new_int64((int64_t)x->by_status[i]));
	json_object_object_add(s, "jobs", json_object_new_int64(x->jobs));
	json_object_object_add(s, "by_status", by);
	size_t batch_jobs = 0;
	for (int i = 0; i < JOB__MAX; i++)
		batch_jobs += x->batch_jobs[i];
	json_object *kinds = json_object_new_object();
	json_object_object_add(kinds, job_kind_name(JOB_KIND_EMBED), json_object_new_int64(x->jobs - (int64_t)batch_jobs));
	json_object_object_add(kinds, job_kind_name(JOB_KIND_BATCH), json_object_new_int64((int64_t)batch_jobs));
	json_object_object_add(s, "by_kind", kinds);
	json_object_object_add(s, "batches", json_object_new_int64(x->totals.batches));
	json_object_object_add(s, "deliveries_pending", json_object_new_int64(x->totals.deliveries_pending));
	json_object_object_add(s, "requests_pending", json_object_new_int64(x->totals.requests));
	json_object_object_add(s, "polls_in_flight", json_object_new_int(0));
	json_object_object_add(s, "hooks_running", json_object_new_int(0));
	json_object_object_add(s, "paused", json_object_new_string("none"));
	json_object_object_add(s, "state_db_ok", json_object_new_boolean(!m->store_failing));
	json_object_object_add(s, "uptime_s", json_object_new_int64((util_wall_ms() - m->start_ms) / 1000));
	json_object_object_add(s, "polls", json_object_new_int64(0));
	json_object_object_add(s, "sweeps", json_object_new_int64(0));
	json_object_object_add(s, "sweeping", json_object_new_boolean(ew->cfg.sweep));
	json_object_object_add(s, "events", json_object_new_int64(0));
	json_object_object_add(s, "version", json_object_new_string(PACKAGE_VERSION));
	control_role_fields(ew, s);
	metrics_status_line(m, x->by_status, line, sizeof(line));
	json_object_object_add(s, "summary", json_object_new_string(line));
	json_object *o = control_ok_answer();
	json_object_object_add(o, "status", s);
	control_send_line(x->c, o);
}

static void counts_end(struct counts_read *x)
{
	if (--x->pending)
		return;
	struct client *c = x->c;
	if (control_read_end(c)) {
		if (x->failed) {
			control_send_error(c, "state database: %s", store_error(c->ctl->ew->store));
		} else if (x->cmd == CTL_STATUS) {
			status_answer(x);
		} else if (x->cmd == CTL_METRICS) {
			struct buf b = { 0 };
			/* The jobs by kind as the shared state has them, not this standby's (it holds none). */
			struct metrics *m = xmalloc(sizeof(*m));
			*m = c->ctl->ew->m;
			memcpy(m->batch_jobs, x->batch_jobs, sizeof(m->batch_jobs));
			metrics_text(m, x->by_status, &b);
			free(m);
			json_object *o = control_ok_answer();
			json_object_object_add(o, "text", json_object_new_string(b.data ? b.data : ""));
			buf_free(&b);
			control_send_line(c, o);
		} else {
			json_object *arr = json_object_new_array();
			json_object_object_foreach(x->batches, k, v) {
				(void)k;
				json_object_array_add(arr, json_object_get(v));
			}
			json_object *o = control_ok_answer();
			json_object_object_add(o, "batches", arr);
			control_send_line(c, o);
		}
	}
	json_object_put(x->batches);
	free(x);
}

static void counts_part(int r, void *arg)
{
	struct counts_read *x = arg;
	if (r < 0)
		x->failed = 1;
	counts_end(x);
}

static void totals_read(int r, const struct store_counts *t, void *arg)
{
	struct counts_read *x = arg;
	if (t)
		x->totals = *t;
	counts_part(r, arg);
}

static void standby_counts(struct client *c, enum ctl_cmd cmd)
{
	struct store *st = c->ctl->ew->store;
	struct counts_read *x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->cmd = cmd;
	x->batches = json_object_new_object();
	x->pending = 1;
	control_read_begin(c);
	/* Each read may answer before the call returns (the count starts at one for this function). */
	x->pending++;
	store_job_counts(st, count_row, counts_part, x);
	if (cmd == CTL_BATCHES) {
		x->pending++;
		store_each_batch(st, batch_row, counts_part, x);
	} else {
		x->pending++;
		store_counts(st, totals_read, x);
	}
	counts_end(x);
}

/* ---- a standby's waits ---- */

struct wait_read {
	struct client *c;
	json_object *jobs;
	size_t rows, live;
	bool first;
	struct store_counts totals;
	int r;
};

static int wait_row(const struct store_job *j, void *arg)
{
	struct wait_read *x = arg;
	x->rows++;
	if (!row_ended(j))
		x->live++;
	json_object_array_add(x->jobs, row_json(j));
	return 0;
}

/* The first of the wait's ids that the shared state does not have, or NULL. */
static const char *wait_missing(struct wait_read *x)
{
	struct client *c = x->c;
	for (size_t i = 0; i < c->n_wait; i++) {
		bool seen = false;
		for (size_t k = 0; !seen && k < json_object_array_length(x->jobs); k++) {
			json_object *id;
			json_object_object_get_ex(json_object_array_get_idx(x->jobs, k), "id", &id);
			seen = strcmp(json_object_get_string(id), c->wait_ids[i]) == 0;
		}
		if (!seen)
			return c->wait_ids[i];
	}
	return NULL;
}

/* Answers the wait, as the active would, once everything it waits for has ended (or left). */
static void wait_decide(struct wait_read *x)
{
	struct client *c = x->c;
	const char *missing = c->wait_batch ? (x->rows ? NULL : c->wait_batch) : wait_missing(x);
	if (x->live)
		return;         /* not yet: the next tick looks again */
	if (missing && x->totals.requests > 0)
		return;         /* a request the active has not applied yet may watch it */
	if (missing && x->first) {
		/* As the active says: a wait is for jobs watched. */
		char msg[200];
		if (c->wait_batch)
			snprintf(msg, sizeof(msg), "no batch named \"%.128s\"", c->wait_batch);
		else
			snprintf(msg, sizeof(msg), "job %.140s is not watched; watch it first", missing);
		c->waiting = false;
		control_wait_clear(c);
		control_send_error(c, "%s", msg);
		return;
	}
	/* Ids the state does not have (left meanwhile) are answered as the active answers them: unwatched. */
	for (size_t i = 0; !c->wait_batch && i < c->n_wait; i++) {
		bool seen = false;
		for (size_t k = 0; !seen && k < json_object_array_length(x->jobs); k++) {
			json_object *id;
			json_object_object_get_ex(json_object_array_get_idx(x->jobs, k), "id", &id);
			seen = strcmp(json_object_get_string(id), c->wait_ids[i]) == 0;
		}
		if (!seen) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "id", json_object_new_string(c->wait_ids[i]));
			json_object_object_add(o, "status", json_object_new_string("unwatched"));
			json_object_array_add(x->jobs, o);
		}
	}
	json_object *o = control_ok_answer();
	json_object_object_add(o, "jobs", json_object_get(x->jobs));
	c->waiting = false;
	control_wait_clear(c);
	control_send_line(c, o);
}

static void wait_read_end(struct wait_read *x)
{
	struct client *c = x->c;
	/* A read that fails (reconnecting) is tried again at the next tick. */
	if (control_read_end(c) && c->waiting && !c->ctl->ew->stopping && x->r == 0)
		wait_decide(x);
	json_object_put(x->jobs);
	free(x);
}

static void wait_totals(int r, const struct store_counts *t, void *arg)
{
	struct wait_read *x = arg;
	if (r < 0)
		x->r = r;
	if (t)
		x->totals = *t;
	wait_read_end(x);
}

static void wait_jobs(int r, void *arg)
{
	struct wait_read *x = arg;
	x->r = r;
	if (r == 0 && !x->c->closed && !x->c->closing) {
		store_counts(x->c->ctl->ew->store, wait_totals, x);
		return;
	}
	wait_read_end(x);
}

static void wait_check(struct client *c, bool first)
{
	struct wait_read *x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->first = first;
	x->jobs = json_object_new_array();
	struct store_job_filter f = { .ids = (const char *const *)c->wait_ids, .n_ids = c->n_wait, .batch = c->wait_batch };
	control_read_begin(c);
	store_each_job(c->ctl->ew->store, &f, wait_row, wait_jobs, x);
}

static void standby_wait(struct client *c, json_object *req)
{
	const char *batch = control_get_str(req, "batch");
	json_object *ids;
	if (batch) {
		c->wait_batch = xstrdup(batch);
	} else {
		if (!json_object_object_get_ex(req, "ids", &ids) || !json_object_is_type(ids, json_type_array) ||
		    !json_object_array_length(ids)) {
			control_send_error(c, "wait needs job ids or a batch");
			return;
		}
		size_t n = json_object_array_length(ids);
		c->wait_ids = xcalloc(n, sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			const char *id = json_object_get_string(json_object_array_get_idx(ids, i));
			c->wait_ids[i] = xstrdup(id ? id : "");
		}
		c->n_wait = n;
	}
	c->waiting = true;
	control_pause_reading(c);
	wait_check(c, true);
}

void control_standby_check_waits(struct control *ctl)
{
	for (struct client *c = ctl->clients; c; c = c->next)
		if (c->waiting && !c->reads && !c->closing)
			wait_check(c, false);
}

/* ---- the dispatch of a standby's requests ---- */

void control_standby_forward(struct client *c, enum ctl_cmd cmd, json_object *req, const char *line, size_t len)
{
	if (ctlproto_cmds[cmd].flags & CTLPROTO_IDS)
		forward_ids(c, cmd, req, line, len);
	else
		forward_other(c, cmd, req, line, len);
}

void control_standby_list(struct client *c, enum ctl_cmd cmd, json_object *req)
{
	standby_list(c, req, cmd == CTL_SHOW);
}

void control_standby_counts(struct client *c, enum ctl_cmd cmd, json_object *req)
{
	(void)req;
	standby_counts(c, cmd);
}

void control_standby_wait(struct client *c, enum ctl_cmd cmd, json_object *req)
{
	(void)cmd;
	standby_wait(c, req);
}
