/*
 * The list sweep: one GET /v1/embed-jobs observes every watched job at once.
 * The body streams through the splitter, one element at a time; a listed job
 * that is watched is an observation exactly like a poll's answer, one that is
 * not costs one id lookup (or, with discovery on, a glob match). After a
 * sweep, watched jobs it did not list are polled per id; the ones it listed
 * are polled per id only at a trickle. When the list fails persistently (404,
 * 405, 501, unparseable, over list_max_bytes) the daemon falls back to per-id
 * polling, says so once, and tries the list again later.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "ew.h"
#include "http.h"
#include "job.h"
#include "jobtable.h"
#include "jsplit.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "poller_int.h"
#include "sched.h"
#include "strmap.h"
#include "util.h"
#include "watch.h"
#include "watch_v2.h"

/* How long the list is left alone after it failed persistently. */
#define SWEEP_FALLBACK_MS (5 * 60 * 1000)
/* Unparseable or transient failures in a row before falling back. */
#define SWEEP_FAIL_LIMIT 3

static void sweep_done(struct http_req *req, const struct http_result *res, void *arg);

int poller_sweep_init(struct poller *p)
{
	struct ew *ew = p->ew;
	p->sweep_interval = ew->cfg.sweep_interval_ms;
	util_rfc3339(util_wall_ms(), p->start_rfc3339, sizeof(p->start_rfc3339));
	p->sweep_req = http_req_new(ew->http, (size_t)ew->cfg.list_max_bytes, false);
	if (!p->sweep_req)
		return -ENOMEM;
	/* Compressed: list_max_bytes caps the decoded list, whatever it cost on the wire. */
	http_req_compressed(p->sweep_req, true);
	jobtable_set_listed(&ew->jobs, JOB_KIND_EMBED, ew->cfg.sweep);
	return 0;
}

void poller_sweep_free(struct poller *p)
{
	http_req_free(p->sweep_req);
	p->sweep_req = NULL;
	jsplit_free(&p->split);
	free(p->list_etag);
	free(p->list_last_modified);
}

void poller_sweep_want_full(struct poller *p)
{
	p->list_full_wanted = true;
}

/* A validator is echoed in a request header: printable, no quote games beyond its own, bounded. */
static char *validator_copy(const char *v)
{
	if (!v || !*v || strlen(v) > 200)
		return NULL;
	for (const char *c = v; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			return NULL;
	return xstrdup(v);
}

/* An HTTP-date as seconds since the epoch (api_retry_after counts from now_s = 0), -1 when unreadable. */
static int64_t http_date_s(const char *v)
{
	int64_t s;
	if (!v || api_retry_after(v, 0, INT64_MAX, &s) < 0)
		return -1;
	return s;
}

/*
 * Keeps the validators of a full list. Last-Modified has one-second
 * resolution: a change later in the second the list was made would carry
 * the same date, so it is kept only when the answer's Date is a later
 * second (RFC 9110 8.8.2.2); an ETag is exact.
 */
static void keep_validators(struct poller *p, struct http_req *req)
{
	free(p->list_etag);
	free(p->list_last_modified);
	p->list_etag = validator_copy(http_header(req, "ETag"));
	p->list_last_modified = NULL;
	const char *lm = http_header(req, "Last-Modified");
	int64_t lm_s = http_date_s(lm), date_s = http_date_s(http_header(req, "Date"));
	if (lm_s >= 0 && date_s > lm_s)
		p->list_last_modified = validator_copy(lm);
	p->list_gen_ok = p->sweep_gen;
}

void poller_sweep_stop(struct poller *p)
{
	if (p->sweep_in_flight) {
		http_cancel(p->sweep_req);
		p->sweep_in_flight = false;
	}
}

bool poller_sweep_due_now(struct poller *p, uint64_t now, uint64_t *ret_wait)
{
	struct ew *ew = p->ew;
	*ret_wait = UINT64_MAX;
	bool discovering = ew->cfg.discover && (ew->cfg.discover_kinds & (1u << JOB_KIND_EMBED));
	if (!ew->cfg.sweep || p->sweep_in_flight || (!poller_live_jobs(ew) && !discovering))
		return false;
	if (p->sweep_off_until) {
		/* The wait counts even while per-id polling is the mode: the loop must wake to try the list again. */
		if (now < p->sweep_off_until) {
			*ret_wait = p->sweep_off_until - now;
			return false;
		}
		p->sweep_off_until = 0;
		p->sweep_fail_run = 0;
		poller_plan(p, now);
		if (p->plan.mode == PLAN_SWEEP)
			log_msg(LOG_NOTICE, "trying the list sweep (GET /v1/embed-jobs) again");
	}
	if (p->plan.mode != PLAN_SWEEP)
		return false;
	if (now < p->sweep_due) {
		*ret_wait = p->sweep_due - now;
		return false;
	}
	return true;
}

static void fall_back(struct poller *p, const char *why)
{
	struct ew *ew = p->ew;
	log_msg(LOG_WARNING, "list sweep: %s; falling back to per-id polling, trying the list again in %d min",
		why, SWEEP_FALLBACK_MS / 60000);
	p->sweep_off_until = ew_now(ew) + SWEEP_FALLBACK_MS;
	p->list_gen_ok = 0;     /* the next list, in 5 minutes, is read in full */
	jobtable_set_listed(&ew->jobs, JOB_KIND_EMBED, false);
	ew->m.sweep_fallbacks++;
	poller_all_per_id(p, JOB_KIND_EMBED, ew->cfg.interval_min_ms);
}

/* Discovery: an unwatched job of the list that matches [discover] becomes watched. Returns it or NULL. */
static struct job *discover(struct poller *p, const struct jsplit_elem *e)
{
	struct ew *ew = p->ew;
	char batch[160];
	if (!ew->cfg.discover || !(ew->cfg.discover_kinds & (1u << JOB_KIND_EMBED)) || !e->job_id || !api_id_valid(e->job_id))
		return NULL;
	const char *name = e->name ? e->name : "";
	if (fnmatch(ew->cfg.discover_match, name, 0) != 0)
		return NULL;
	enum job_status st = e->status ? job_status_parse(e->status) : JOB_UNKNOWN;
	if (job_status_ended(st)) {
		/* An ended job is history unless it was created after the daemon started. */
		if (!e->created_at || strcmp(e->created_at, p->start_rfc3339) < 0)
			return NULL;
	}
	return watch_discovered(ew, e->job_id, config_discover_batch(ew->cfg.discover_batch, name, batch, sizeof(batch)));
}

static int on_element(const struct jsplit_elem *e, void *arg)
{
	struct poller *p = arg;
	struct ew *ew = p->ew;
	struct api_job aj;
	char why[256];

	ew->m.sweep_entries++;
	/* An id with escapes, or none: the element must be parsed to know it. */
	struct job *j = e->job_id ? jobtable_get(&ew->jobs, e->job_id) : NULL;
	if (!j && e->job_id)
		j = discover(p, e);
	if (!j && e->job_id)
		return 0;
	/* A batch job is the v2 sweep's (poller_v2.c), whatever an id in this list says. */
	if (j && (watch_job_ended(j) || (j->flags & JF_REMOVED) || j->kind != JOB_KIND_EMBED))
		return 0;
	/* Most entries say what the daemon knows already: that outcome needs no parse. */
	if (j && e->status && watch_seen_unchanged(ew, j, job_status_parse(e->status))) {
		j->sweep_gen = p->sweep_gen;
		goto check_age;
	}
	if (api_job_parse(e->text, e->len, &aj, why, sizeof(why)) < 0) {
		/* One bad element does not spoil the list: the job is polled per id instead. */
		if (j)
			log_job(LOG_DEBUG, j->id, "job %s: its list entry is not a valid EmbedJob (%s)", j->id, why);
		return 0;
	}
	if (!j)
		j = jobtable_get(&ew->jobs, aj.job_id);
	if (j && !watch_job_ended(j) && j->kind == JOB_KIND_EMBED && strcmp(aj.job_id, j->id) == 0) {
		enum job_status before = (enum job_status)j->status;
		bool was_held = watch_v2_held(ew->v2, j->id) != NULL;
		j->sweep_gen = p->sweep_gen;
		for (size_t i = 0; i < aj.n_warnings; i++)
			poller_note_warning(p, j->id, aj.warnings[i]);
		watch_observed(ew, j, &aj, e->text, e->len, true);
		/* A completion held for its output dataset (watch_v2.h) is a change, though the status moves later. */
		if (j->status != before || (!was_held && watch_v2_held(ew->v2, j->id)))
			p->sweep_changed = true;
	}
	api_job_clear(&aj);
check_age:
	/* max_age is the per-id loop's to enforce: a job past it is due now, whatever the trickle says. */
	if (j && ew->cfg.max_age_ms && !watch_job_ended(j) && j->heap_idx != JOB_NOT_QUEUED &&
	    util_wall_ms() - j->added_ms > (int64_t)ew->cfg.max_age_ms)
		jobtable_schedule(&ew->jobs, j, ew_now(ew));
	return 0;
}

static int on_chunk(const char *data, size_t len, void *arg)
{
	struct poller *p = arg;
	return jsplit_feed(&p->split, data, len) < 0 ? -1 : 0;
}

void poller_sweep_start(struct poller *p)
{
	struct ew *ew = p->ew;
	char url[1024];

	/* api_base may end with '/': no double slash. */
	size_t n = strlen(ew->cfg.api_base);
	snprintf(url, sizeof(url), "%s%sv1/embed-jobs", ew->cfg.api_base, n && ew->cfg.api_base[n - 1] == '/' ? "" : "/");
	jsplit_free(&p->split);
	jsplit_init(&p->split, API_BODY_MAX, on_element, p);
	p->sweep_gen++;
	p->sweep_changed = false;
	p->sweep_started_wall = util_wall_ms();
	struct http_opts o = poller_api_opts(ew);
	http_req_set(p->sweep_req, url, p->headers, NULL, 0, &o);
	http_req_stream(p->sweep_req, on_chunk, p);
	/* A list that trickles is cut (list_stall, as reloaded), not waited for until request_timeout. */
	http_req_low_speed(p->sweep_req, 1024, (long)((ew->cfg.list_stall_ms + 999) / 1000));
	/* "Only if changed" when a full list was read and no watch came since; If-None-Match wins (exact). */
	struct buf cond = { 0 };
	p->list_conditional = false;
	if (p->list_gen_ok && !p->list_full_wanted && (p->list_etag || p->list_last_modified)) {
		if (p->list_etag)
			buf_printf(&cond, "If-None-Match: %s", p->list_etag);
		else
			buf_printf(&cond, "If-Modified-Since: %s", p->list_last_modified);
		p->list_conditional = true;
	}
	p->list_full_wanted = false;
	http_req_header(p->sweep_req, cond.data);
	buf_free(&cond);
	/* Past the planner's cap the list costs more than per-id polls would: stop reading it. */
	http_req_wire_cap(p->sweep_req, p->plan.list_cap);
	p->sweep_last = ew_now(ew);
	if (http_submit(p->sweep_req, (long)ew->cfg.request_timeout_ms, sweep_done, p) < 0) {
		p->sweep_due = ew_now(ew) + p->sweep_interval;
		return;
	}
	p->sweep_in_flight = true;
	ew->m.sweeps++;
}

/* After a good sweep: jobs it did not list are polled per id now (they may be new, or gone from the list). */
static uint64_t unlisted_due(struct job *j, void *arg)
{
	struct poller *p = arg;
	uint64_t now = ew_now(p->ew);
	/* Batch jobs are the v2 sweep's (poller_v2.c). */
	if (j->sweep_gen == p->sweep_gen || j->kind != JOB_KIND_EMBED)
		return j->due;
	p->unlisted++;
	if (j->due <= now)
		return j->due;
	if (j->added_ms >= p->sweep_started_wall) {
		/* Watched after this sweep began: the next sweep may list it. */
		p->sweep_wanted = true;
		return j->due;
	}
	return now;
}

static void poll_the_unlisted(struct poller *p)
{
	p->unlisted = 0;
	jobtable_redue(&p->ew->jobs, unlisted_due, p);
}

static void seen_again(const char *id, void *v, void *arg)
{
	struct poller *p = arg;
	struct job *j = v;
	if (j->sweep_gen != p->list_gen_ok || watch_job_ended(j) || (j->flags & JF_REMOVED))
		return;
	if (watch_seen_unchanged(p->ew, j, (enum job_status)j->status))
		j->sweep_gen = p->sweep_gen;
}

/*
 * 304 to a conditional list: the list is the one last read, so every watched
 * job it showed is seen again with the status it had: the path of a list
 * entry whose status did not change. Jobs it did not show are still not in it.
 */
static void not_modified(struct poller *p)
{
	struct ew *ew = p->ew;
	ew->m.list_not_modified++;
	/* Walk the map, not the heap: seeing a job reschedules it, which reorders the heap. */
	strmap_each(&ew->jobs.jobs, seen_again, p);
	p->list_gen_ok = p->sweep_gen;
}

static void next_sweep(struct poller *p, bool ok)
{
	struct ew *ew = p->ew;
	if (ok)
		p->sweep_interval = sched_sweep_interval(p->sweep_interval, p->sweep_changed, &p->sweep_quiet, ew->cfg.backoff,
							 ew->cfg.sweep_interval_ms, ew->cfg.sweep_interval_max_ms);
	else
		p->sweep_interval = sched_error_backoff(p->sweep_fail_run, ew->cfg.sweep_interval_ms,
							ew->cfg.sweep_interval_max_ms);
	/* Within the budgets: half the requests (per-id polls and cancels keep their share), and the bytes. */
	uint64_t floor_ms = p->plan.sweep_floor_ms;
	uint64_t d = p->sweep_interval > floor_ms ? p->sweep_interval : floor_ms;
	p->sweep_due = ew_now(ew) + sched_jitter(d, ew->cfg.jitter, util_rand_unit());
}

static void sweep_failed(struct poller *p, const char *why)
{
	struct ew *ew = p->ew;
	ew->m.sweep_failures++;
	if (++p->sweep_fail_run >= SWEEP_FAIL_LIMIT) {
		char msg[400];
		snprintf(msg, sizeof(msg), "%u failures in a row, the last: %s", p->sweep_fail_run, why);
		fall_back(p, msg);
		return;
	}
	log_msg(LOG_INFO, "list sweep failed (%s); per-id polling goes on", why);
	next_sweep(p, false);
}

static void sweep_done(struct http_req *req, const struct http_result *res, void *arg)
{
	struct poller *p = arg;
	struct ew *ew = p->ew;
	char why[400];

	p->sweep_in_flight = false;
	metrics_observe_request(&ew->m, (double)res->total_us / 1e6);
	metrics_count_rx(&ew->m, EP_LIST, res->wire_bytes, res->decoded_bytes);
	bool unsupported = res->error == HTTP_OK && (res->status == 404 || res->status == 405 || res->status == 501);
	if (unsupported) {
		/* The list is not offered here (501 too: for this endpoint it says "not implemented", not a wrong base). */
		snprintf(why, sizeof(why), "the API does not offer the list here (HTTP %ld)", res->status);
		fall_back(p, why);
	} else if (poller_global_answer(p, RC_EMBED_JOBS, req, res)) {
		/* 429/503 (this class), auth, TLS (everything): the sweep comes first when the pause is over. */
		p->sweep_due = poller_resume_at(p, RC_EMBED_JOBS);
	} else if (res->error == HTTP_ERR_TOO_BIG) {
		snprintf(why, sizeof(why), "the list is larger than list_max_bytes (%llu bytes decoded)",
			 (unsigned long long)ew->cfg.list_max_bytes);
		fall_back(p, why);
	} else if (res->error == HTTP_ERR_WIRE_CAP) {
		/* Not a failure: the planner's probe of what the list costs. Per-id polls see these jobs sooner. */
		poller_plan_list_cost(p, res, true);
		log_msg(LOG_NOTICE, "list sweep: stopped after %.1f MB; the list is %s%.1f MB on the wire, more than "
			"the %.1f MB at which per-id polls see the %zu watched jobs sooner", (double)res->wire_bytes / 1e6,
			p->list_wire_is_min ? "at least " : "", (double)p->list_wire / 1e6, (double)p->plan.list_cap / 1e6,
			poller_live_jobs(ew));
		poller_plan(p, ew_now(ew));
		next_sweep(p, true);
	} else if (res->error != HTTP_OK) {
		sweep_failed(p, p->split.error ? p->split.error : res->error_text);
	} else if (res->status == 304 && p->list_conditional) {
		p->sweep_fail_run = 0;
		jobtable_set_listed(&ew->jobs, JOB_KIND_EMBED, true);
		ew->m.last_poll_ok_ms = (uint64_t)util_wall_ms();
		p->list_known_at = ew_now(ew);
		not_modified(p);
		p->last_ok_gen = p->sweep_gen;
		poll_the_unlisted(p);
		poller_plan(p, ew_now(ew));
		next_sweep(p, true);
	} else if (res->status != 200) {
		snprintf(why, sizeof(why), "HTTP %ld", res->status);
		sweep_failed(p, why);
	} else if (jsplit_finish(&p->split) < 0) {
		snprintf(why, sizeof(why), "the list is not a valid answer: %s", p->split.error);
		sweep_failed(p, why);
	} else {
		p->sweep_fail_run = 0;
		jobtable_set_listed(&ew->jobs, JOB_KIND_EMBED, true);
		ew->m.last_poll_ok_ms = (uint64_t)util_wall_ms();
		ew->m.sweep_listed = p->split.elements;
		ew->m.list_wire_bytes = res->wire_bytes;
		ew->m.list_decoded_bytes = res->decoded_bytes;
		keep_validators(p, req);
		p->last_ok_gen = p->sweep_gen;
		poll_the_unlisted(p);
		poller_plan_list_cost(p, res, false);
		poller_plan(p, ew_now(ew));
		next_sweep(p, true);
	}
	jsplit_free(&p->split);
	poller_gauges(p);
	poller_run_soon(p);
}
