/* The control socket's read-only commands: list, show, status, metrics, batches, deliveries. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "api_v2.h"
#include "config.h"
#include "control_int.h"
#include "ha.h"
#include "ew.h"
#include "hooks.h"
#include "job.h"
#include "jobtable.h"
#include "metrics.h"
#include "planner.h"
#include "provider.h"
#include "store.h"
#include "strmap.h"
#include "util.h"
#include "watch_v2.h"

struct list_ctx {
	struct ew *ew;
	struct ctlproto_page page;  /* the jobs of this page: the smallest ids after "after" */
	int status;
	int kind;                   /* -1: both */
	const char *batch;
	const char *prefix;         /* only ids that begin with it (completion), or NULL */
	size_t prefix_len;
	const char *account;        /* only the jobs of this account, or NULL */
	size_t account_len;
};

static void list_one(const char *k, void *v, void *arg)
{
	struct list_ctx *l = arg;
	struct job *j = v;
	if (l->status >= 0 && j->status != l->status)
		return;
	if (l->batch && (!j->batch || strcmp(j->batch->name, l->batch) != 0))
		return;
	if (l->kind >= 0 && j->kind != l->kind)
		return;
	if (l->account && (l->account_len ? strncmp(j->id, l->account, l->account_len) != 0 || j->id[l->account_len] != ':'
			   : strchr(j->id, ':') != NULL))
		return;
	/* With an account, the prefix is of the provider's id. */
	const char *id = l->account ? provider_key_id(j->id) : j->id;
	if (l->prefix && strncmp(id, l->prefix, l->prefix_len) != 0)
		return;
	ctlproto_page_add(&l->page, j->id, j);
}

/* list: one page of the watched jobs in id order (paging: ctlproto.h); the walk is synchronous, so the pointers hold. */
void control_cmd_list(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	struct list_ctx l = { .ew = ew, .status = -1, .kind = -1, .batch = control_get_str(req, "batch") };
	const char *st = control_get_str(req, "status");
	json_object *v;
	char err[256];

	l.prefix = control_get_str(req, "prefix");
	l.prefix_len = l.prefix ? strlen(l.prefix) : 0;
	/* "account" was checked (control.c): cohere's jobs are those whose key names no account. */
	l.account = control_get_str(req, "account");
	l.account_len = l.account && strcmp(l.account, "cohere") != 0 ? strlen(l.account) : 0;

	if (json_object_object_get_ex(req, "kind", &v) && v && (l.kind = control_get_kind(c, req)) < 0)
		return;
	if (st) {
		l.status = job_status_from_name(st);
		if (l.status < 0) {
			control_send_error(c, "unknown status \"%.64s\"; expected new, processing, cancelling, complete, cancelled, "
				   "failed, unknown, not_found, error or expired", st);
			return;
		}
	}
	if (ctlproto_page_init(&l.page, req, NULL, err, sizeof(err)) < 0) {
		control_send_error(c, "%s", err);
		return;
	}
	if (json_object_object_get_ex(req, "ids", &v) && json_object_is_type(v, json_type_array)) {
		/* Only these ids (a progress query): one lookup each, not a walk of the table. */
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			const char *id = json_object_get_string(json_object_array_get_idx(v, i));
			struct job *j = id ? jobtable_get(&ew->jobs, id) : NULL;
			if (j)
				list_one(j->id, j, &l);
		}
	} else {
		strmap_each(&ew->jobs.jobs, list_one, &l);
	}
	ctlproto_page_end(&l.page);
	json_object *arr = json_object_new_array_ext((int)l.page.n);
	for (size_t i = 0; i < l.page.n; i++) {
		struct job *j = l.page.items[i].item;
		json_object *o = control_job_json(j);
		control_job_records(ew, j, o);
		json_object_array_add(arr, o);
	}
	json_object *o = control_ok_answer();
	json_object_object_add(o, "jobs", arr);
	ctlproto_page_next(&l.page, o);
	ctlproto_page_free(&l.page);
	control_send_line(c, o);
}

/* A show in progress: the job as memory has it, then its snapshot and events from the state. */
struct show_ctx {
	struct client *c;
	json_object *jo;
	json_object *events;
	char id[129];
};

static int show_event(const char *id, const char *type, int64_t ts, void *arg)
{
	struct show_ctx *x = arg;
	json_object *e = json_object_new_object();
	char t[40];
	util_rfc3339(ts, t, sizeof(t));
	json_object_object_add(e, "id", json_object_new_string(id));
	json_object_object_add(e, "type", json_object_new_string(type));
	json_object_object_add(e, "timestamp", json_object_new_string(t));
	json_object_array_add(x->events, e);
	return 0;
}

void control_cmd_show(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	const char *id = control_get_str(req, "id");
	struct job *j;

	if (!id || !control_key_valid(id)) {
		control_send_error(c, "\"id\" must be a valid job id");
		return;
	}
	j = jobtable_get(&ew->jobs, id);
	if (!j) {
		control_send_error(c, "job %s is not watched", id);
		return;
	}
	json_object *jo = control_job_json(j);
	control_job_records(ew, j, jo);
	json_object_object_add(jo, "poll_interval_ms", json_object_new_int64(j->interval));
	if (j->heap_idx != JOB_NOT_QUEUED)
		json_object_object_add(jo, "next_poll_in_ms", json_object_new_int64(
			j->due > ew_now(ew) ? (int64_t)(j->due - ew_now(ew)) : 0));
	json_object_object_add(jo, "failed_polls_in_a_row", json_object_new_int(j->fail_run));
	json_object_object_add(jo, "discovered", json_object_new_boolean((j->flags & JF_DISCOVERED) != 0));
	if (j->seen_ms) {
		char t[40];
		util_rfc3339(j->seen_ms, t, sizeof(t));
		json_object_object_add(jo, "last_seen_at", json_object_new_string(t));
		/* Which request the last observation came from: the list sweep or a poll of this id. */
		json_object_object_add(jo, "last_seen_via", json_object_new_string(j->flags & JF_VIA_LIST ? "list" : "poll"));
	}
	static const char *const cancels[] = { "none", "requested", "accepted", "refused" };
	if (j->cancel)
		json_object_object_add(jo, "cancel", json_object_new_string(cancels[j->cancel & 3]));
	control_show_stored(c, id, jo);
}

static void show_events_done(int r, void *arg)
{
	struct show_ctx *x = arg;
	if (control_read_end(x->c)) {
		if (r < 0) {
			control_send_error(x->c, "state database: %s", store_error(x->c->ctl->ew->store));
		} else {
			json_object_object_add(x->jo, "events", json_object_get(x->events));
			json_object *o = control_ok_answer();
			json_object_object_add(o, "job", json_object_get(x->jo));
			control_send_line(x->c, o);
		}
	}
	json_object_put(x->events);
	json_object_put(x->jo);
	free(x);
}

static void show_snapshot_done(int r, const char *snap, void *arg)
{
	struct show_ctx *x = arg;
	if (r < 0) {
		show_events_done(r, x);
		return;
	}
	json_object_object_add(x->jo, "last_seen", snap ? json_tokener_parse(snap) : NULL);
	/* A batch job not observed since a restart (an ended one, say): its records as its last document gave them. */
	json_object *rec, *kind;
	struct api_obs ob;
	char perr[256];
	if (snap && json_object_object_get_ex(x->jo, "kind", &kind) &&
	    strcmp(json_object_get_string(kind), job_kind_name(JOB_KIND_BATCH)) == 0 &&
	    !json_object_object_get_ex(x->jo, "records", &rec) &&
	    api_batch_parse(snap, strlen(snap), &ob, perr, sizeof(perr)) == 0) {
		if (ob.job.has_records) {
			rec = json_object_new_object();
			json_object_object_add(rec, "num_records", json_object_new_int64(ob.job.num_records));
			json_object_object_add(rec, "num_successful_records", json_object_new_int64(ob.job.num_successful));
			json_object_object_add(rec, "num_failed_records", json_object_new_int64(ob.job.num_failed));
			json_object_object_add(x->jo, "records", rec);
		}
		api_obs_clear(&ob);
	}
	store_job_events(x->c->ctl->ew->store, x->id, show_event, show_events_done, x);
}

void control_show_stored(struct client *c, const char *id, json_object *jo)
{
	struct show_ctx *x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->jo = jo;
	x->events = json_object_new_array();
	snprintf(x->id, sizeof(x->id), "%s", id);
	control_read_begin(c);
	store_get_snapshot(c->ctl->ew->store, x->id, show_snapshot_done, x);
}

void control_role_fields(struct ew *ew, json_object *s)
{
	const struct metrics *m = &ew->m;
	json_object_object_add(s, "role", json_object_new_string(metrics_role_name(metrics_role(m))));
	json_object_object_add(s, "shared_state", json_object_new_boolean(m->shared));
	if (!m->shared)
		return;
	json_object *a = NULL;
	enum ew_role role = ha_role(ew);
	if (role == ROLE_ACTIVE || m->active_host[0]) {
		a = json_object_new_object();
		if (role == ROLE_ACTIVE) {
			char host[256] = "?";
			gethostname(host, sizeof(host) - 1);
			json_object_object_add(a, "host", json_object_new_string(host));
			json_object_object_add(a, "pid", json_object_new_int(getpid()));
		} else {
			json_object_object_add(a, "host", json_object_new_string(m->active_host));
			json_object_object_add(a, "pid", json_object_new_int(m->active_pid));
		}
	}
	json_object_object_add(s, "active", a);
	/* The age as last seen, and how long ago that was seen. */
	int64_t age = m->lease_age_ms < 0 ? -1 : m->lease_age_ms + (int64_t)(util_mono_ms() - m->lease_seen_mono);
	json_object_object_add(s, "lease_age_ms", age < 0 ? NULL : json_object_new_int64(age));
	json_object_object_add(s, "lease_epoch", json_object_new_int64(m->lease_epoch));
	json_object_object_add(s, "lease_ttl_ms", json_object_new_int64((int64_t)ew->cfg.lease_ttl_ms));
	json_object_object_add(s, "takeovers", json_object_new_int64((int64_t)m->takeovers));
}
/* Each request class's budget and the month's, as status shows them (per minute: as the provider says them). */
static json_object *budgets_json(const struct metrics *m)
{
	json_object *b = json_object_new_object(), *classes = json_object_new_object(), *mo = json_object_new_object();
	for (int i = 0; i < RC__N; i++) {
		const struct metrics_class *k = &m->cls[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "budget_per_min", json_object_new_double(k->budget * 60));
		json_object_object_add(o, "rate_per_min", json_object_new_double(k->rate * 60));
		json_object_object_add(o, "tokens", json_object_new_double((double)(int64_t)(k->tokens * 100) / 100));
		json_object_object_add(o, "paused_s", json_object_new_double((double)k->paused_ms / 1000));
		json_object_object_add(o, "requests_last_minute", json_object_new_int64(k->minute));
		json_object_object_add(o, "requests", json_object_new_int64((int64_t)k->requests));
		json_object_object_add(o, "throttled", json_object_new_int64((int64_t)k->throttles));
		json_object_object_add(classes, budget_class_name((enum rclass)i), o);
	}
	json_object_object_add(b, "classes", classes);
	json_object_object_add(mo, "month", json_object_new_string(m->month));
	json_object_object_add(mo, "allowance", json_object_new_int64((int64_t)m->month_allowance));
	json_object_object_add(mo, "used", json_object_new_int64((int64_t)m->month_used));
	json_object_object_add(mo, "left", m->month_allowance ? json_object_new_int64((int64_t)(m->month_allowance > m->month_used
			       ? m->month_allowance - m->month_used : 0)) : NULL);
	json_object_object_add(mo, "projected", json_object_new_int64((int64_t)m->month_projected));
	json_object_object_add(mo, "next_request_in_s", json_object_new_double((double)m->month_wait_ms / 1000));
	json_object_object_add(b, "month", mo);
	/* Each [account NAME]: its own budget, pause and mode (the Cohere account is the classes above). */
	json_object *accounts = json_object_new_object();
	for (unsigned i = 0; i < m->n_accounts; i++) {
		const struct metrics_account *a = &m->accounts[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "provider", json_object_new_string(a->provider ? a->provider : "?"));
		json_object_object_add(o, "budget_per_min", json_object_new_double(a->budget * 60));
		json_object_object_add(o, "rate_per_min", json_object_new_double(a->rate * 60));
		json_object_object_add(o, "tokens", json_object_new_double((double)(int64_t)(a->tokens * 100) / 100));
		json_object_object_add(o, "paused", json_object_new_string(metrics_pause_name(a->paused)));
		json_object_object_add(o, "paused_s", json_object_new_double((double)a->paused_ms / 1000));
		json_object_object_add(o, "requests_last_minute", json_object_new_int64(a->minute));
		json_object_object_add(o, "requests", json_object_new_int64((int64_t)a->requests));
		json_object_object_add(o, "polls", json_object_new_int64((int64_t)a->polls));
		json_object_object_add(o, "lists", json_object_new_int64((int64_t)a->lists));
		json_object_object_add(o, "cancels", json_object_new_int64((int64_t)a->cancels));
		json_object_object_add(o, "throttled", json_object_new_int64((int64_t)a->throttles));
		json_object_object_add(o, "auth_failures", json_object_new_int64((int64_t)a->auth_failures));
		json_object_object_add(o, "live_jobs", json_object_new_int64((int64_t)a->live));
		json_object_object_add(o, "mode", json_object_new_string(a->sweeping ? "sweep" : "per-id"));
		json_object_object_add(o, "sweep_pages", json_object_new_int64(a->sweep_pages));
		json_object_object_add(accounts, a->name, o);
	}
	json_object_object_add(b, "accounts", accounts);
	return b;
}


void control_cmd_status(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	const struct metrics *m = &ew->m;
	json_object *s = json_object_new_object();
	json_object *by = json_object_new_object();
	char line[512];

	for (int i = 0; i < JOB__MAX; i++)
		if (ew->jobs.counts[i])
			json_object_object_add(by, job_status_name((enum job_status)i), json_object_new_int64((int64_t)ew->jobs.counts[i]));
	json_object_object_add(s, "jobs", json_object_new_int64((int64_t)ew->jobs.jobs.len));
	json_object_object_add(s, "by_status", by);
	/* The table is kind-blind; the batch-job register counts its kind, the rest are embed jobs. */
	size_t batch_jobs = 0;
	for (int i = 0; i < JOB__MAX; i++)
		batch_jobs += watch_v2_counts(ew->v2)[i];
	json_object *kinds = json_object_new_object();
	json_object_object_add(kinds, job_kind_name(JOB_KIND_EMBED), json_object_new_int64((int64_t)(ew->jobs.jobs.len - batch_jobs)));
	json_object_object_add(kinds, job_kind_name(JOB_KIND_BATCH), json_object_new_int64((int64_t)batch_jobs));
	json_object_object_add(s, "by_kind", kinds);
	json_object_object_add(s, "batches", json_object_new_int64((int64_t)ew->jobs.batches.len));
	json_object_object_add(s, "polls_in_flight", json_object_new_int((int)m->polls_in_flight));
	json_object_object_add(s, "deliveries_pending", json_object_new_int((int)m->deliveries_pending));
	json_object_object_add(s, "hooks_running", json_object_new_int((int)m->hooks_running));
	json_object_object_add(s, "waiting_clients", json_object_new_int64(control_waiting_clients(c->ctl)));
	json_object_object_add(s, "paused", json_object_new_string(metrics_pause_name(m->paused)));
	if (m->paused == PAUSE_TLS)
		json_object_object_add(s, "pause_detail", json_object_new_string(m->pause_detail));
	json_object_object_add(s, "request_rate_per_s", json_object_new_double(m->request_rate));
	json_object_object_add(s, "state_db_ok", json_object_new_boolean(!m->store_failing));
	json_object_object_add(s, "uptime_s", json_object_new_int64((util_wall_ms() - m->start_ms) / 1000));
	json_object_object_add(s, "polls", json_object_new_int64((int64_t)m->polls));
	json_object_object_add(s, "sweeps", json_object_new_int64((int64_t)m->sweeps));
	json_object_object_add(s, "sweeping", json_object_new_boolean(jobtable_listed(&ew->jobs, JOB_KIND_EMBED) && ew->cfg.sweep));
	json_object_object_add(s, "batch_sweeps", json_object_new_int64((int64_t)m->batch_sweeps));
	json_object_object_add(s, "batch_sweep_pages", json_object_new_int64((int64_t)m->batch_sweep_pages));
	json_object_object_add(s, "batch_sweeping", json_object_new_boolean(jobtable_listed(&ew->jobs, JOB_KIND_BATCH) && ew->cfg.batch_sweep));
	json_object_object_add(s, "cancels", json_object_new_int64((int64_t)m->cancels));
	/* How jobs are observed and why: the planner never leaves the sweep silently. */
	json_object *ob = json_object_new_object();
	json_object_object_add(ob, "mode", json_object_new_string(planner_mode_name(m->plan_mode)));
	json_object_object_add(ob, "reason", json_object_new_string(planner_why_name(m->plan_why)));
	json_object_object_add(ob, "why", json_object_new_string(planner_why_text(m->plan_why)));
	json_object_object_add(ob, "estimated_detection_delay_s", json_object_new_double((double)m->plan_delay_ms / 1000));
	json_object_object_add(ob, "sweep_delay_s", json_object_new_double((double)m->plan_delay_sweep_ms / 1000));
	json_object_object_add(ob, "per_id_delay_s", json_object_new_double((double)m->plan_delay_per_id_ms / 1000));
	json_object_object_add(ob, "per_id_every_s", json_object_new_double((double)m->plan_poll_every_ms / 1000));
	json_object_object_add(ob, "sweep_every_s", json_object_new_double((double)m->plan_sweep_every_ms / 1000));
	json_object_object_add(ob, "list_cap_bytes", json_object_new_int64((int64_t)m->plan_list_cap));
	json_object_object_add(ob, "list_bytes", json_object_new_int64((int64_t)m->list_size_wire));
	json_object_object_add(ob, "list_bytes_at_least", json_object_new_boolean(m->list_size_is_min));
	json_object_object_add(ob, "list_wire_bytes", json_object_new_int64((int64_t)m->list_wire_bytes));
	json_object_object_add(ob, "list_decoded_bytes", json_object_new_int64((int64_t)m->list_decoded_bytes));
	json_object_object_add(ob, "list_entries", json_object_new_int64((int64_t)m->sweep_listed));
	json_object_object_add(ob, "switches", json_object_new_int64((int64_t)m->plan_switches));
	metrics_plan_line(m, line, sizeof(line));
	json_object_object_add(ob, "summary", json_object_new_string(line));
	json_object_object_add(s, "observation", ob);
	json_object_object_add(s, "budgets", budgets_json(m));
	json_object_object_add(s, "events", json_object_new_int64((int64_t)m->events));
	json_object_object_add(s, "version", json_object_new_string(PACKAGE_VERSION));
	control_role_fields(ew, s);
	metrics_status_line(m, ew->jobs.counts, line, sizeof(line));
	json_object_object_add(s, "summary", json_object_new_string(line));
	json_object *o = control_ok_answer();
	json_object_object_add(o, "status", s);
	control_send_line(c, o);
}

void control_cmd_metrics(struct client *c, json_object *req)
{
	struct buf b = { 0 };
	metrics_text(&c->ctl->ew->m, c->ctl->ew->jobs.counts, &b);
	json_object *o = control_ok_answer();
	json_object_object_add(o, "text", json_object_new_string(b.data ? b.data : ""));
	buf_free(&b);
	control_send_line(c, o);
}

struct batches_ctx {
	struct ew *ew;
	json_object *arr;
};

static void batch_offer(const char *k, void *v, void *arg)
{
	struct batch *b = v;
	ctlproto_page_add(arg, b->name, b);
}

static void batch_one(struct batches_ctx *x, struct batch *b)
{
	json_object *o = json_object_new_object(), *counts = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(b->name));
	json_object_object_add(o, "total", json_object_new_int64(b->n_jobs));
	json_object_object_add(o, "ended", json_object_new_int64(b->n_ended));
	json_object_object_add(o, "done", json_object_new_boolean(b->fired));
	for (int i = 0; i < JOB__MAX; i++)
		if (b->counts[i])
			json_object_object_add(counts, job_status_name((enum job_status)i), json_object_new_int64(b->counts[i]));
	json_object_object_add(o, "counts", counts);
	/* A group may mix kinds; the records of its batch jobs, for the wait progress line. */
	int64_t kinds[JOB_KIND__MAX] = { 0 }, rec[3] = { 0 };
	bool any_records = false;
	for (uint32_t i = 0; i < b->n_jobs; i++) {
		const struct job *j = b->members[i];
		kinds[j->kind < JOB_KIND__MAX ? j->kind : 0]++;
		const struct watch_records *r = j->kind == JOB_KIND_BATCH ? watch_v2_get(x->ew->v2, j->id) : NULL;
		if (r && r->known) {
			any_records = true;
			rec[0] += r->total;
			rec[1] += r->successful;
			rec[2] += r->failed;
		}
	}
	json_object *ko = json_object_new_object();
	for (int i = 0; i < JOB_KIND__MAX; i++)
		json_object_object_add(ko, job_kind_name((enum job_kind)i), json_object_new_int64(kinds[i]));
	json_object_object_add(o, "kinds", ko);
	if (any_records) {
		json_object *ro = json_object_new_object();
		json_object_object_add(ro, "num_records", json_object_new_int64(rec[0]));
		json_object_object_add(ro, "num_successful_records", json_object_new_int64(rec[1]));
		json_object_object_add(ro, "num_failed_records", json_object_new_int64(rec[2]));
		json_object_object_add(o, "records", ro);
	}
	json_object_array_add(x->arr, o);
}

/* batches: one page of the batches in name order (paging: ctlproto.h). */
void control_cmd_batches(struct client *c, json_object *req)
{
	struct ctlproto_page page;
	char err[256];
	if (ctlproto_page_init(&page, req, NULL, err, sizeof(err)) < 0) {
		control_send_error(c, "%s", err);
		return;
	}
	const char *name = control_get_str(req, "name");
	if (name) {
		/* One batch by name (a wait's progress): a lookup, not a walk. */
		struct batch *b = strmap_get(&c->ctl->ew->jobs.batches, name);
		if (b)
			batch_offer(b->name, b, &page);
	} else {
		strmap_each(&c->ctl->ew->jobs.batches, batch_offer, &page);
	}
	ctlproto_page_end(&page);
	struct batches_ctx x = { .ew = c->ctl->ew, .arr = json_object_new_array_ext((int)page.n) };
	for (size_t i = 0; i < page.n; i++)
		batch_one(&x, page.items[i].item);
	json_object *o = control_ok_answer();
	json_object_object_add(o, "batches", x.arr);
	ctlproto_page_next(&page, o);
	ctlproto_page_free(&page);
	control_send_line(c, o);
}

struct control_array_read {
	struct client *c;
	const char *key;
	json_object *arr;
	bool truncated;             /* rows past CONTROL_ARRAY_MAX were left out */
};

int control_delivery_one(const struct store_delivery *d, void *arg)
{
	struct control_array_read *x = arg;
	json_object *arr = control_array_read_arr(arg);
	/* An answer that grows with the jobs is bounded: the newest rows, and a word that there are more. */
	if (json_object_array_length(arr) >= CONTROL_ARRAY_MAX) {
		x->truncated = true;
		return 0;
	}
	json_object *o = json_object_new_object();
	char t[40];
	json_object_object_add(o, "event_id", json_object_new_string(d->event_id));
	json_object_object_add(o, "event", json_object_new_string(d->type ? d->type : ""));
	json_object_object_add(o, "subject", json_object_new_string(d->subject ? d->subject : ""));
	json_object_object_add(o, "hook", json_object_new_string(d->hook));
	json_object_object_add(o, "state", json_object_new_string(d->state));
	json_object_object_add(o, "attempts", json_object_new_int((int)d->attempts));
	json_object_object_add(o, "last_error", d->last_error ? json_object_new_string(d->last_error) : NULL);
	util_rfc3339(d->updated_ms, t, sizeof(t));
	json_object_object_add(o, "updated", json_object_new_string(t));
	if (strcmp(d->state, "pending") == 0) {
		util_rfc3339(d->next_ms, t, sizeof(t));
		json_object_object_add(o, "next_attempt", json_object_new_string(t));
	}
	json_object_array_add(arr, o);
	return 0;
}

int control_since(json_object *req, int64_t *ret_ms, char *err, size_t errlen)
{
	const char *v = control_get_str(req, "since");
	uint64_t d;
	*ret_ms = 0;
	if (!v)
		return 0;
	if (config_parse_duration(v, &d) == 0) {
		*ret_ms = util_wall_ms() - (int64_t)d;
		return 0;
	}
	if (util_parse_rfc3339(v, ret_ms) == 0)
		return 0;
	snprintf(err, errlen, "since: expected a duration (\"2h\", \"3d\") or an RFC 3339 time "
		 "(\"2026-12-01T08:00:00Z\"), got \"%.64s\"", v);
	return -EINVAL;
}

/* A read whose rows become one array of the answer: {"ok": true, key: [...]}. */
struct control_array_read *control_array_read_new(struct client *c, const char *key)
{
	struct control_array_read *x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->key = key;
	x->arr = json_object_new_array();
	control_read_begin(c);
	return x;
}

json_object *control_array_read_arr(struct control_array_read *x)
{
	return x->arr;
}

void control_array_read_done(int r, void *arg)
{
	struct control_array_read *x = arg;
	if (control_read_end(x->c)) {
		if (r < 0) {
			control_send_error(x->c, "state database: %s", store_error(x->c->ctl->ew->store));
		} else {
			json_object *o = control_ok_answer();
			json_object_object_add(o, x->key, json_object_get(x->arr));
			if (x->truncated) {
				json_object_object_add(o, "truncated", json_object_new_boolean(true));
				json_object_object_add(o, "limit", json_object_new_int(CONTROL_ARRAY_MAX));
			}
			control_send_line(x->c, o);
		}
	}
	json_object_put(x->arr);
	free(x);
}

void control_cmd_deliveries(struct client *c, json_object *req)
{
	const char *state = control_get_str(req, "state");
	const char *hook = control_get_str(req, "hook");
	int64_t since;
	char err[256];
	if (state && strcmp(state, "pending") && strcmp(state, "dead") && strcmp(state, "done")) {
		control_send_error(c, "unknown delivery state \"%.32s\"; expected pending, dead or done", state);
		return;
	}
	if (control_since(req, &since, err, sizeof(err)) < 0) {
		control_send_error(c, "%s", err);
		return;
	}
	struct control_array_read *x = control_array_read_new(c, "deliveries");
	store_each_delivery(c->ctl->ew->store, state, hook, since, control_delivery_one, control_array_read_done, x);
}
