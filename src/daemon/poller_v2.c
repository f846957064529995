/*
 * The v2 sweep: GET /v2/batches?order_by=updated_at&page_size=N, page after
 * page (a token of the shared bucket each), observes the watched batch jobs
 * the way their own polls would. The list is the key's whole history, so a
 * sweep reads only as far as it must: once the order is known to be newest
 * first, it stops after the page that reaches entries older than the newest
 * updated_at of the previous sweep (everything after is older still: nothing
 * there changed since). Oldest first, or no clear order, it reads every page.
 * A watched batch job the sweep did not reach is unchanged since it was last
 * observed; one the sweep has never seen is polled per id, unless one read of
 * every page is cheaper than a poll each. When the list fails persistently
 * the daemon polls batch jobs per id, says so once, and tries again later.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_v2.h"
#include "config.h"
#include "ew.h"
#include "http.h"
#include "job.h"
#include "jobtable.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "poller_int.h"
#include "sched.h"
#include "util.h"
#include "watch.h"
#include "watch_v2.h"

/* How long the list is left alone after it failed persistently, and after how many failures in a row. */
#define SWEEP_V2_FALLBACK_MS (5 * 60 * 1000)
#define SWEEP_V2_FAIL_LIMIT 3

enum order { ORDER_UNKNOWN = 0, ORDER_NEWEST_FIRST, ORDER_OLDEST_FIRST, ORDER_NONE };

struct sweep_v2 {
	struct http_req *req;
	bool in_flight;
	bool wanted;                /* new batch jobs wait for it (poller_v2_want_sweep): the next sweep comes sooner */
	bool active;                /* between two pages of one sweep */
	char *token;                /* the next page's */
	uint64_t due;               /* loop ms of the next sweep */
	uint64_t interval;
	uint32_t gen;               /* in job->sweep_gen of batch jobs (the v1 sweep has its own for embed jobs) */
	unsigned fail_run;
	unsigned quiet;                 /* good sweeps in a row that changed nothing */
	uint64_t off_until;         /* per-id polling only until then (loop ms), 0: sweeping */
	/* this sweep */
	bool full;                  /* reads every page, whatever the order */
	bool cut;                   /* stopped at the cut-off */
	bool changed;
	unsigned pages;
	int64_t started_wall;
	int64_t newest_ms;          /* the newest updated_at read */
	int64_t prev_ms;            /* the last entry's updated_at, for the order; INT64_MIN: none */
	unsigned newer_pairs, older_pairs;
	/* across sweeps */
	int64_t cutoff_ms;          /* the previous complete sweep's newest updated_at; INT64_MIN: none yet */
	enum order order;
	unsigned full_pages;        /* pages of the last read of every page: the price of a full read */
};

static void page_done(struct http_req *req, const struct http_result *res, void *arg);

int poller_v2_init(struct poller *p)
{
	struct ew *ew = p->ew;
	struct sweep_v2 *s = xcalloc(1, sizeof(*s));
	p->v2 = s;
	s->interval = ew->cfg.sweep_interval_ms;
	s->cutoff_ms = INT64_MIN;
	s->full_pages = 1;
	s->req = http_req_new(ew->http, (size_t)ew->cfg.list_max_bytes, false);
	if (s->req)
		http_req_compressed(s->req, true);    /* pages of JSON compress well; list_max_bytes caps the decoded page */
	/* Not sweeping until the first sweep worked (watch's register does not exist yet, either). */
	return s->req ? 0 : -ENOMEM;
}

static void end_sweep(struct sweep_v2 *s)
{
	s->active = false;
	free(s->token);
	s->token = NULL;
}

void poller_v2_stop(struct poller *p)
{
	struct sweep_v2 *s = p->v2;
	if (s && s->in_flight) {
		http_cancel(s->req);
		s->in_flight = false;
	}
	if (s)
		end_sweep(s);
}

void poller_v2_free(struct poller *p)
{
	struct sweep_v2 *s = p->v2;
	if (!s)
		return;
	poller_v2_stop(p);
	http_req_free(s->req);
	free(s);
	p->v2 = NULL;
}

bool poller_v2_busy(const struct poller *p)
{
	return p->v2 && p->v2->in_flight;
}

static bool discovering(const struct ew *ew)
{
	return ew->cfg.discover && (ew->cfg.discover_kinds & (1u << JOB_KIND_BATCH));
}


/*
 * New batch jobs the sweep has not seen: one read of every page covers them
 * all, a poll each covers one. Returns true when the full read is cheaper;
 * else they are made due for their polls.
 */
static uint64_t unseen_due(struct job *j, void *arg)
{
	uint64_t now = ew_now(arg);
	return j->kind == JOB_KIND_BATCH && j->status == JOB_NONE && j->due > now ? now : j->due;
}

static bool cover_new(struct poller *p)
{
	struct ew *ew = p->ew;
	size_t unseen = watch_v2_cohere(ew->v2, JOB_NONE);
	if (!unseen)
		return false;
	if (unseen >= p->v2->full_pages)
		return true;
	jobtable_redue(&ew->jobs, unseen_due, ew);
	return false;
}

void poller_v2_want_sweep(struct poller *p)
{
	p->v2->wanted = true;
}

bool poller_v2_due_now(struct poller *p, uint64_t now, uint64_t *ret_wait)
{
	struct ew *ew = p->ew;
	struct sweep_v2 *s = p->v2;
	*ret_wait = UINT64_MAX;
	if (!ew->cfg.batch_sweep) {
		/* Turned off (a reload): new batch jobs are polled at once again. */
		jobtable_set_listed(&ew->jobs, JOB_KIND_BATCH, false);
		return false;
	}
	if (s->in_flight)
		return false;
	if (s->active)
		return true;        /* the next page of this sweep */
	if (!watch_v2_cohere_live(ew->v2) && !discovering(ew))
		return false;
	if (s->off_until) {
		if (now < s->off_until) {
			*ret_wait = s->off_until - now;
			return false;
		}
		log_msg(LOG_NOTICE, "trying the v2 sweep (GET /v2/batches) again");
		s->off_until = 0;
		s->fail_run = 0;
	}
	if (s->wanted && s->due > now)
		s->due = now;
	s->wanted = false;
	if (now < s->due) {
		*ret_wait = s->due - now;
		return false;
	}
	return true;
}

void poller_v2_start(struct poller *p)
{
	struct ew *ew = p->ew;
	struct sweep_v2 *s = p->v2;
	char url[2048];

	if (!s->active) {
		s->gen++;
		s->pages = 0;
		s->changed = s->cut = false;
		s->newest_ms = s->prev_ms = INT64_MIN;
		s->newer_pairs = s->older_pairs = 0;
		s->started_wall = util_wall_ms();
		/* Newest first is the only order that lets a sweep stop early; it is learnt from a full read. */
		s->full = s->cutoff_ms == INT64_MIN || s->order != ORDER_NEWEST_FIRST || cover_new(p);
		s->active = true;
		ew->m.batch_sweeps++;
	}
	if (api_batches_url(ew->cfg.api_base, ew->cfg.batch_page_size, s->token, url, sizeof(url)) < 0) {
		log_msg(LOG_WARNING, "v2 sweep: the next page's URL is too long; this sweep ends here");
		end_sweep(s);
		s->due = ew_now(ew) + s->interval;
		return;
	}
	struct http_opts o = poller_api_opts(ew);
	http_req_set(s->req, url, p->headers, NULL, 0, &o);
	http_req_low_speed(s->req, 1024, (long)((ew->cfg.list_stall_ms + 999) / 1000));     /* a page that trickles is cut */
	if (http_submit(s->req, (long)ew->cfg.request_timeout_ms, page_done, p) < 0) {
		end_sweep(s);
		s->due = ew_now(ew) + s->interval;
		return;
	}
	s->in_flight = true;
	s->pages++;
	ew->m.batch_sweep_pages++;
}

/* Discovery: an unwatched batch of the list that matches [discover] becomes watched. Returns it or NULL. */
static struct job *discover(struct poller *p, const char *id, json_object *e)
{
	struct ew *ew = p->ew;
	json_object *v;
	char batch[160];
	if (!discovering(ew) || !api_id_valid(id))
		return NULL;
	const char *name = json_object_object_get_ex(e, "name", &v) && json_object_is_type(v, json_type_string)
			   ? json_object_get_string(v) : "";
	if (fnmatch(ew->cfg.discover_match, name, 0) != 0)
		return NULL;
	const char *st = json_object_object_get_ex(e, "status", &v) ? json_object_get_string(v) : NULL;
	if (job_status_ended(api_v2_status(st))) {
		/* An ended batch is history unless it was created after the daemon started. */
		const char *created = json_object_object_get_ex(e, "created_at", &v) ? json_object_get_string(v) : NULL;
		if (!created || strcmp(created, p->start_rfc3339) < 0)
			return NULL;
	}
	return watch_discovered_kind(ew, id, config_discover_batch(ew->cfg.discover_batch, name, batch, sizeof(batch)),
				     JOB_KIND_BATCH);
}

/* One Batch of a page: its time for the order and the cut-off, then an observation if it is watched. */
static void entry(struct poller *p, json_object *e)
{
	struct ew *ew = p->ew;
	struct sweep_v2 *s = p->v2;
	json_object *v;
	int64_t ms;
	char why[256];

	ew->m.batch_sweep_entries++;
	if (!json_object_is_type(e, json_type_object))
		return;
	if (json_object_object_get_ex(e, "updated_at", &v) && json_object_is_type(v, json_type_string) &&
	    util_parse_rfc3339(json_object_get_string(v), &ms) == 0) {
		if (s->prev_ms != INT64_MIN) {
			if (ms > s->prev_ms)
				s->older_pairs++;   /* this one is newer than the one before it: oldest first */
			else if (ms < s->prev_ms)
				s->newer_pairs++;
		}
		s->prev_ms = ms;
		if (ms > s->newest_ms)
			s->newest_ms = ms;
		/* Strictly older: an entry updated in the same millisecond as the newest seen may be new. */
		if (!s->full && ms < s->cutoff_ms)
			s->cut = true;
	}
	/* An entry nobody watches costs one lookup; only watched ones are parsed. */
	if (!json_object_object_get_ex(e, "id", &v) || !json_object_is_type(v, json_type_string))
		return;
	const char *id = json_object_get_string(v);
	struct job *j = jobtable_get(&ew->jobs, id);
	if (!j)
		j = discover(p, id, e);
	if (!j || j->kind != JOB_KIND_BATCH || watch_job_ended(j) || (j->flags & JF_REMOVED))
		return;
	struct api_obs ob;
	if (api_batch_from_json(e, &ob, why, sizeof(why)) < 0) {
		log_job(LOG_DEBUG, j->id, "job %s: its list entry is not a valid Batch (%s)", j->id, why);
		return;
	}
	enum job_status before = (enum job_status)j->status;
	bool was_held = watch_v2_held(ew->v2, j->id) != NULL;
	j->sweep_gen = s->gen;
	watch_observed(ew, j, &ob.job, ob.doc, ob.doc_len, true);
	/* A completion held for its dataset is a change too, though the status moves only once it is back. */
	if (j->status != before || (!was_held && watch_v2_held(ew->v2, j->id)))
		s->changed = true;
	api_obs_clear(&ob);
	/* max_age is the per-id loop's to enforce: a job past it is due now, whatever the trickle says. */
	if (ew->cfg.max_age_ms && !watch_job_ended(j) && j->heap_idx != JOB_NOT_QUEUED &&
	    util_wall_ms() - j->added_ms > (int64_t)ew->cfg.max_age_ms)
		jobtable_schedule(&ew->jobs, j, ew_now(ew));
}

/*
 * After a complete sweep, the watched batch jobs it did not list: after a
 * read that stopped at the cut-off, one observed before did not change
 * (it would be newer than the cut-off); one never observed, or any after a
 * read of every page (it is missing from the list), is polled per id now.
 */
/* One pass of after_sweep: the unlisted jobs polled now, and those seen unchanged collected for after the pass. */
struct after {
	struct poller *p;
	uint64_t now;
	struct job **same;
	size_t n_same, cap_same;
};

static uint64_t after_due(struct job *j, void *arg)
{
	struct after *a = arg;
	struct sweep_v2 *s = a->p->v2;
	if (j->kind != JOB_KIND_BATCH || j->sweep_gen == s->gen || j->due <= a->now)
		return j->due;
	if (j->added_ms >= s->started_wall) {
		s->wanted = true;                   /* watched after this sweep began: the next one may list it */
		return j->due;
	}
	if (s->cut && j->status != JOB_NONE && j->status != JOB_UNKNOWN) {
		/* Rescheduled by watch after the pass: the heap must not change under it. */
		if (a->n_same == a->cap_same) {
			a->cap_same = a->cap_same ? a->cap_same * 2 : 64;
			a->same = xrealloc(a->same, a->cap_same * sizeof(*a->same));
		}
		a->same[a->n_same++] = j;
		return j->due;
	}
	return a->now;
}

static void after_sweep(struct poller *p)
{
	struct ew *ew = p->ew;
	struct after a = { .p = p, .now = ew_now(ew) };
	jobtable_redue(&ew->jobs, after_due, &a);
	for (size_t i = 0; i < a.n_same; i++) {
		struct job *j = a.same[i];
		j->sweep_gen = p->v2->gen;
		watch_seen_unchanged(ew, j, (enum job_status)j->status);
	}
	free(a.same);
}

static void next_sweep(struct poller *p, bool ok)
{
	struct ew *ew = p->ew;
	struct sweep_v2 *s = p->v2;
	if (ok)
		s->interval = sched_sweep_interval(s->interval, s->changed, &s->quiet, ew->cfg.backoff, ew->cfg.sweep_interval_ms,
						   ew->cfg.sweep_interval_max_ms);
	else
		s->interval = sched_error_backoff(s->fail_run, ew->cfg.sweep_interval_ms, ew->cfg.sweep_interval_max_ms);
	/*
	 * Never more than half the budget for its pages, a quarter while the v1
	 * sweep takes its half too: per-id polls and cancels keep their share.
	 */
	size_t live = 0;
	for (int st = 0; st < JOB__MAX; st++)
		if (!job_status_ended((enum job_status)st))
			live += ew->jobs.counts[st];
	bool v1 = ew->cfg.sweep && jobtable_listed(&ew->jobs, JOB_KIND_EMBED) && live > watch_v2_live(ew->v2);
	double share = v1 ? 4000.0 : 2000.0;
	uint64_t floor_ms = ew->cfg.rate_per_s > 0 ? (uint64_t)(share * (s->pages ? s->pages : 1) / ew->cfg.rate_per_s) : 0;
	uint64_t d = s->interval > floor_ms ? s->interval : floor_ms;
	s->due = ew_now(ew) + sched_jitter(d, ew->cfg.jitter, util_rand_unit());
}

static void fall_back(struct poller *p, const char *why)
{
	struct ew *ew = p->ew;
	struct sweep_v2 *s = p->v2;
	log_msg(LOG_WARNING, "v2 sweep: %s; polling batch jobs per id, trying the list again in %d min", why,
		SWEEP_V2_FALLBACK_MS / 60000);
	end_sweep(s);
	s->off_until = ew_now(ew) + SWEEP_V2_FALLBACK_MS;
	s->cutoff_ms = INT64_MIN;       /* the next sweep reads everything again */
	jobtable_set_listed(&ew->jobs, JOB_KIND_BATCH, false);
	ew->m.batch_sweep_fallbacks++;
	/* Every live batch job due soon (spread over the minimum interval): per-id polling takes over. */
	poller_all_per_id(p, JOB_KIND_BATCH, ew->cfg.interval_min_ms);
}

static void failed(struct poller *p, const char *why)
{
	struct ew *ew = p->ew;
	struct sweep_v2 *s = p->v2;
	ew->m.batch_sweep_failures++;
	end_sweep(s);
	if (++s->fail_run >= SWEEP_V2_FAIL_LIMIT) {
		char msg[400];
		snprintf(msg, sizeof(msg), "%u failures in a row, the last: %s", s->fail_run, why);
		fall_back(p, msg);
		return;
	}
	log_msg(LOG_INFO, "v2 sweep failed (%s); per-id polling goes on", why);
	next_sweep(p, false);
}

/* The sweep read its last page: learn the order, keep the cut-off, settle the jobs it did not list. */
static void complete(struct poller *p)
{
	struct ew *ew = p->ew;
	struct sweep_v2 *s = p->v2;
	enum order seen = s->newer_pairs && !s->older_pairs ? ORDER_NEWEST_FIRST
			  : s->older_pairs && !s->newer_pairs ? ORDER_OLDEST_FIRST
			  : s->older_pairs && s->newer_pairs ? ORDER_NONE : s->order;
	if (seen != s->order && s->order != ORDER_UNKNOWN)
		log_msg(LOG_NOTICE, "v2 sweep: the list is %s now", seen == ORDER_NEWEST_FIRST ? "newest first"
			: seen == ORDER_OLDEST_FIRST ? "oldest first (every page is read)" : "in no order (every page is read)");
	s->order = seen;
	if (s->newest_ms != INT64_MIN && (s->cutoff_ms == INT64_MIN || s->newest_ms > s->cutoff_ms))
		s->cutoff_ms = s->newest_ms;
	if (!s->cut)
		s->full_pages = s->pages ? s->pages : 1;
	if (s->cut)
		ew->m.batch_sweep_cut++;
	ew->m.batch_sweep_last_pages = s->pages;
	s->fail_run = 0;
	jobtable_set_listed(&ew->jobs, JOB_KIND_BATCH, true);
	ew->m.last_poll_ok_ms = (uint64_t)util_wall_ms();
	after_sweep(p);
	end_sweep(s);
	next_sweep(p, true);
}

static void page_done(struct http_req *req, const struct http_result *res, void *arg)
{
	struct poller *p = arg;
	struct ew *ew = p->ew;
	struct sweep_v2 *s = p->v2;
	char why[400];

	s->in_flight = false;
	metrics_observe_request(&ew->m, (double)res->total_us / 1e6);
	metrics_count_rx(&ew->m, EP_BATCH_LIST, res->wire_bytes, res->decoded_bytes);
	if (res->error == HTTP_OK && (res->status == 404 || res->status == 405 || res->status == 501)) {
		/* The list is not offered here (501 for this endpoint says "not implemented", not a wrong base). */
		snprintf(why, sizeof(why), "the API does not offer GET /v2/batches here (HTTP %ld)", res->status);
		fall_back(p, why);
	} else if (poller_global_answer(p, RC_DEFAULT, req, res)) {
		/* 429/503 (this class), auth, TLS (everything): this sweep starts again after the pause. */
		end_sweep(s);
		s->due = poller_resume_at(p, RC_DEFAULT);
	} else if (res->error == HTTP_ERR_TOO_BIG) {
		snprintf(why, sizeof(why), "a page is larger than list_max_bytes (%llu bytes)",
			 (unsigned long long)ew->cfg.list_max_bytes);
		fall_back(p, why);
	} else if (res->error != HTTP_OK) {
		failed(p, res->error_text);
	} else if (res->status != 200) {
		snprintf(why, sizeof(why), "HTTP %ld", res->status);
		failed(p, why);
	} else {
		struct api_batch_page pg;
		if (api_batch_page_parse(res->body, res->body_len, &pg, why, sizeof(why)) < 0) {
			failed(p, why);
		} else {
			for (size_t i = 0; i < pg.n; i++)
				entry(p, json_object_array_get_idx(pg.batches, i));
			free(s->token);
			s->token = pg.next_page_token ? xstrdup(pg.next_page_token) : NULL;
			api_batch_page_clear(&pg);
			if (!s->token || s->cut)
				complete(p);
		}
	}
	poller_gauges(p);
	poller_run_soon(p);
}
