/*
 * The other providers' accounts ([account NAME]): each one polls its own due
 * queue (the job table's queue of its number) with its own key, token bucket
 * and pauses, reads its own list when one read observes its watched jobs
 * more cheaply than a poll each, and sends its cancels. The provider layer
 * (provider.h) builds the URLs and headers and parses every answer; what is
 * below it is provider-blind. Nothing an account does waits for another
 * account, or for the Cohere account's budgets and pauses: a 429 or a key
 * that is not accepted stops only the account it came from.
 *
 * The list sweep: a list ordered newest first is read page after page until
 * a page reaches a batch created before the oldest unfinished watched job of
 * the account (provider_page_past): every later page is older still. It runs
 * while its last read took fewer requests than the account has live jobs,
 * at most every interval_min and with at most three quarters of the
 * account's rate; the jobs it observes are polled per id only at a trickle.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_v2.h"
#include "budget.h"
#include "config.h"
#include "ew.h"
#include "http.h"
#include "job.h"
#include "jobtable.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "poller_int.h"
#include "provider.h"
#include "sched.h"
#include "util.h"
#include "watch.h"

#define ACCT_SLOTS 4
/* A sweep reads at most this many pages; past them its jobs are polled per id. */
#define ACCT_PAGES_MAX 20
/* The list is left alone this long after failing this many times in a row. */
#define ACCT_LIST_OFF_MS (5 * 60 * 1000)
#define ACCT_LIST_FAIL_LIMIT 3

struct acct;

struct acct_slot {
	struct http_req *req;
	struct acct *a;
	struct job *job;            /* NULL: free */
	enum slot_kind kind;
};

struct acct {
	struct poller *p;
	uv_timer_t timer;
	unsigned q;                 /* its queue: 1 + its index in cfg.accounts */
	char name[40];
	const struct provider_ops *ops;
	struct http_headers *headers;
	struct rclass_budget budget;
	enum pause_reason pause;    /* auth or base URL (a 429 pauses the bucket) */
	uint64_t paused_until;
	unsigned throttle_run;
	struct acct_slot slots[ACCT_SLOTS];
	unsigned in_flight;
	struct job **cancels;       /* handed over by the poller's cancel queue (JF_CANCEL_QUEUED kept) */
	size_t n_cancels, cap_cancels;
	/* the sweep */
	struct http_req *list_req;
	bool list_in_flight;
	bool in_sweep;              /* between two pages */
	char *cursor;               /* the next page's */
	unsigned pages;             /* of this sweep */
	unsigned last_pages;        /* of the last complete sweep; 0: none yet */
	uint64_t sweep_last;        /* loop ms the last sweep began */
	unsigned fail_run;
	uint64_t list_off_until;
	bool stopped;
	struct metrics_account *m;
};

static void acct_run(struct acct *a);

static const struct ew_account *acct_cfg(const struct acct *a)
{
	return &a->p->ew->cfg.accounts[a->q - 1];
}

static void on_timer(uv_timer_t *t)
{
	acct_run(container_of(t, struct acct, timer));
}

static void arm(struct acct *a, uint64_t delay)
{
	if (a->stopped || a->p->stopped)
		return;
	if (uv_is_active((uv_handle_t *)&a->timer) && uv_timer_get_due_in(&a->timer) <= delay)
		return;
	UV_CHECK(uv_timer_start(&a->timer, on_timer, delay, 0));
}

static size_t live_jobs(const struct acct *a)
{
	return jobtable_n_queued_in(&a->p->ew->jobs, a->q) + a->in_flight;
}

static void gauges(struct acct *a)
{
	struct metrics_account *m = a->m;
	uint64_t now = ew_now(a->p->ew);
	snprintf(m->name, sizeof(m->name), "%s", a->name);
	m->provider = provider_name(a->ops->provider);
	m->budget = acct_cfg(a)->rate_per_s;
	m->rate = sched_bucket_rate(&a->budget.bucket);
	m->tokens = a->budget.bucket.tokens;
	uint64_t until = a->paused_until > a->budget.paused_until ? a->paused_until : a->budget.paused_until;
	m->paused = a->pause != PAUSE_NONE ? a->pause : a->budget.paused_until > now ? PAUSE_THROTTLED : PAUSE_NONE;
	m->paused_ms = m->paused != PAUSE_NONE && until > now ? until - now : 0;
	m->minute = budget_class_minute(&a->budget, now);
	m->requests = a->budget.requests;
	m->live = live_jobs(a);
	m->sweep_pages = a->last_pages;
}

/* ---- answers that concern the whole account ---- */

/* What an answer means; Gemini answers a key it does not accept with 400 API_KEY_INVALID. */
static enum api_class classify(const struct acct *a, const struct http_result *res)
{
	enum api_class c = api_classify(res->status);
	if (c == API_REJECTED && a->ops->provider == PROV_GEMINI && strstr(res->body, "API_KEY_INVALID"))
		return API_AUTH;
	return c;
}

static void pause_account(struct acct *a, enum pause_reason why, uint64_t ms)
{
	a->pause = why;
	a->paused_until = ew_now(a->p->ew) + ms;
}

/* A 429/503, an auth failure or a 501 pauses this account (true); any other answer ends such a pause (false). */
static bool account_answer(struct acct *a, struct http_req *req, const struct http_result *res)
{
	uint64_t now = ew_now(a->p->ew);
	if (res->error != HTTP_OK)
		return false;
	switch (classify(a, res)) {
	case API_THROTTLED: {
		a->m->throttles++;
		uint64_t ms = poller_retry_after_ms(req, ++a->throttle_run);
		budget_class_throttled(&a->budget, now, ms);
		log_msg(LOG_WARNING, "account %s: %s answered %ld; its requests pause for %llu ms at a lower rate "
			"(other accounts go on)", a->name, provider_name(a->ops->provider), res->status,
			(unsigned long long)ms);
		return true;
	}
	case API_AUTH:
		a->m->auth_failures++;
		if (a->pause != PAUSE_AUTH)
			log_msg(LOG_ERR, "account %s: %s answered %ld: its key is not accepted. Polling of this account "
				"is paused and retried once a minute (other accounts go on); fix the key and reload",
				a->name, provider_name(a->ops->provider), res->status);
		pause_account(a, PAUSE_AUTH, 60000);
		return true;
	case API_BAD_BASE:
		if (a->pause != PAUSE_BAD_BASE)
			log_msg(LOG_ERR, "account %s: the API answered 501 Not Implemented: api_base %s looks wrong. Its "
				"polling is paused for 5 minutes at a time; fix it and reload", a->name, acct_cfg(a)->api_base);
		pause_account(a, PAUSE_BAD_BASE, 300000);
		return true;
	default:
		a->throttle_run = 0;
		if (a->pause != PAUSE_NONE) {
			log_msg(LOG_NOTICE, "account %s: the API answers again; polling resumes", a->name);
			a->pause = PAUSE_NONE;
			a->paused_until = 0;
		}
		return false;
	}
}

/* ---- observations ---- */

/* Applies one parsed batch to its job (via_list: read from the list). */
static void observe(struct acct *a, struct job *j, const struct prov_obs *o, bool via_list)
{
	struct api_obs ob;
	if (o->created_at > 0 && o->created_at < UINT32_MAX)
		j->created_s = (uint32_t)o->created_at;
	provider_obs_to_api(o, &ob);
	watch_observed(a->p->ew, j, &ob.job, ob.doc, ob.doc_len, via_list);
	api_obs_clear(&ob);
}

static void poll_answer(struct acct *a, struct job *j, const struct http_result *res)
{
	struct ew *ew = a->p->ew;
	char why[400];

	if (res->error != HTTP_OK) {
		poller_note_transient(a->p, j, res->error_text);
		poller_backoff(a->p, j);
		return;
	}
	enum api_class cls = classify(a, res);
	switch (cls) {
	case API_OK: {
		struct prov_obs o;
		if (provider_parse_job(a->ops, res->body, res->body_len, &o, why, sizeof(why)) < 0) {
			poller_note_transient(a->p, j, why);
			poller_backoff(a->p, j);
			return;
		}
		const char *id = provider_key_id(j->id);
		if (o.id && strcmp(o.id, id) != 0) {
			if (job_error_record(&j->err, JOB_RUN_OTHER_JOB) != EV_NONE) {
				snprintf(why, sizeof(why), "asked for batch \"%s\", the API answered %d times in a row with "
					 "batch \"%.128s\"", id, JOB_ERROR_LIMIT, o.id);
				watch_end(ew, j, EV_ERROR, why);
			} else {
				snprintf(why, sizeof(why), "answer is for batch \"%.64s\"", o.id);
				poller_note_transient(a->p, j, why);
				poller_backoff(a->p, j);
			}
			provider_obs_clear(&o);
			return;
		}
		observe(a, j, &o, false);
		provider_obs_clear(&o);
		return;
	}
	case API_NOT_FOUND:
	case API_REJECTED:
		poller_error_run(a->p, j, cls, res->status);
		return;
	default:
		snprintf(why, sizeof(why), "HTTP %ld", res->status);
		poller_note_transient(a->p, j, why);
		poller_backoff(a->p, j);
		return;
	}
}

static void cancel_answer(struct acct *a, struct job *j, const struct http_result *res)
{
	struct ew *ew = a->p->ew;
	char why[320];
	if (res->error != HTTP_OK || api_classify(res->status) == API_TRANSIENT) {
		if (++j->cancel_tries >= 3) {
			snprintf(why, sizeof(why), "no answer after 3 tries: %s",
				 res->error != HTTP_OK ? res->error_text : "a server error");
			j->cancel_tries = 0;
			watch_cancel_result(ew, j, false, why);
		} else {
			watch_cancel(ew, j, j->cancel_expire);
		}
		return;
	}
	j->cancel_tries = 0;
	if (res->status >= 200 && res->status < 300) {
		watch_cancel_result(ew, j, true, NULL);
		return;
	}
	if (res->status == 404)
		snprintf(why, sizeof(why), "the API does not know the batch (HTTP 404)");
	else
		snprintf(why, sizeof(why), "the API refused it (HTTP %ld); the batch has probably ended", res->status);
	watch_cancel_result(ew, j, false, why);
}

/*
 * Polling per id, the account's rate spread over its live jobs decides how
 * soon a job is looked at again (at least interval_min apart), not its
 * backoff alone: a few jobs left are each seen every few seconds.
 */
static void freshen(struct acct *a, struct job *j)
{
	struct ew *ew = a->p->ew;
	double rate = acct_cfg(a)->rate_per_s;
	if (a->m->sweeping || rate <= 0 || watch_job_ended(j) || j->heap_idx == JOB_NOT_QUEUED)
		return;
	uint64_t every = (uint64_t)(1000.0 * (double)live_jobs(a) / (0.8 * rate));
	if (every < ew->cfg.interval_min_ms)
		every = ew->cfg.interval_min_ms;
	uint64_t due = ew_now(ew) + sched_jitter(every, ew->cfg.jitter, util_rand_unit());
	if (due < j->due)
		jobtable_schedule(&ew->jobs, j, due);
}

static void on_done(struct http_req *req, const struct http_result *res, void *arg)
{
	struct acct_slot *s = arg;
	struct acct *a = s->a;
	struct ew *ew = a->p->ew;
	struct job *j = s->job;
	enum slot_kind kind = s->kind;

	s->job = NULL;
	a->in_flight--;
	metrics_observe_request(&ew->m, (double)res->total_us / 1e6);
	metrics_count_rx(&ew->m, kind == SLOT_CANCEL ? EP_CANCEL : EP_POLL, res->wire_bytes, res->decoded_bytes);
	j->flags &= (uint8_t)~JF_IN_FLIGHT;
	if (j->flags & JF_REMOVED) {
		jobtable_release(j);
	} else if (account_answer(a, req, res)) {
		if (kind == SLOT_CANCEL)
			watch_cancel(ew, j, j->cancel_expire);
		else
			jobtable_schedule(&ew->jobs, j, a->paused_until > a->budget.paused_until ? a->paused_until
					  : a->budget.paused_until);
	} else if (kind == SLOT_CANCEL) {
		cancel_answer(a, j, res);
	} else if (!watch_job_ended(j)) {
		poll_answer(a, j, res);
		if (res->error == HTTP_OK && res->status == 200)
			freshen(a, j);
	}
	gauges(a);
	arm(a, 0);
}

static struct acct_slot *free_slot(struct acct *a)
{
	for (unsigned i = 0; i < ACCT_SLOTS; i++)
		if (!a->slots[i].job)
			return &a->slots[i];
	return NULL;
}

static void submit(struct acct *a, struct acct_slot *s, struct job *j, enum slot_kind kind)
{
	struct ew *ew = a->p->ew;
	const char *base = acct_cfg(a)->api_base;
	char url[1024];
	int r = kind == SLOT_CANCEL ? provider_cancel_url(a->ops, base, provider_key_id(j->id), url, sizeof(url))
				    : provider_job_url(a->ops, base, provider_key_id(j->id), url, sizeof(url));
	if (r < 0) {
		if (kind == SLOT_CANCEL)
			watch_cancel_result(ew, j, false, "cannot build a URL for this id");
		else
			watch_end(ew, j, EV_ERROR, "cannot build a URL for this id");
		return;
	}
	s->job = j;
	s->kind = kind;
	j->flags |= JF_IN_FLIGHT;
	struct http_opts o = poller_api_opts(ew);
	http_req_set(s->req, url, a->headers, kind == SLOT_CANCEL ? "" : NULL, 0, &o);
	a->in_flight++;
	if (http_submit(s->req, (long)ew->cfg.request_timeout_ms, on_done, s) < 0) {
		j->flags &= (uint8_t)~JF_IN_FLIGHT;
		s->job = NULL;
		a->in_flight--;
		if (kind == SLOT_CANCEL)
			watch_cancel(ew, j, j->cancel_expire);
		else
			poller_backoff(a->p, j);
		return;
	}
	if (kind == SLOT_CANCEL)
		a->m->cancels++;
	else
		a->m->polls++;
}

/* ---- the sweep ---- */

/* The created_at of the oldest unfinished job of the account that says one; PROV_UNKNOWN when none does. */
static int64_t oldest_open(const struct acct *a)
{
	const struct jobtable *t = &a->p->ew->jobs;
	int64_t oldest = PROV_UNKNOWN;
	size_t n = jobtable_n_queued_in(t, a->q);
	for (size_t i = 0; i < n; i++) {
		const struct job *j = jobtable_queued_in(t, a->q, i);
		if (j->created_s && (oldest == PROV_UNKNOWN || j->created_s < oldest))
			oldest = j->created_s;
	}
	return oldest;
}

/* Within interval_min for a job the sweep saw last (due at a trickle): for jobtable_redue_in. */
static uint64_t per_id_due(struct job *j, void *arg)
{
	struct acct *a = arg;
	struct ew *ew = a->p->ew;
	uint64_t soon = ew_now(ew) + (uint64_t)(util_rand_unit() * (double)ew->cfg.interval_min_ms);
	return j->due > soon ? soon : j->due;
}

/* Whether the list goes now; else *wait, ms until it may (UINT64_MAX: not in this mode). */
static bool sweep_due(struct acct *a, uint64_t now, uint64_t *wait)
{
	struct ew *ew = a->p->ew;
	if (a->list_in_flight)
		return false;
	if (a->in_sweep)
		return true;
	size_t live = live_jobs(a);
	/* Sweeping pays while one read takes fewer requests than a poll of each job. */
	bool sweeping = acct_cfg(a)->sweep && live >= 2 && (a->last_pages ? a->last_pages : 1) < live &&
			now >= a->list_off_until;
	if (a->m->sweeping && !sweeping) {
		/* Per-id polls take over: the jobs the sweep observed wait for no trickle. */
		log_msg(LOG_INFO, "account %s: %zu live jobs, a list read takes %u requests: polling per id", a->name,
			live, a->last_pages ? a->last_pages : 1);
		jobtable_redue_in(&ew->jobs, a->q, per_id_due, a);
	}
	a->m->sweeping = sweeping;
	if (!sweeping || oldest_open(a) == PROV_UNKNOWN)
		return false;
	double rate = acct_cfg(a)->rate_per_s;
	uint64_t floor_ms = rate > 0 ? (uint64_t)(1000.0 * (a->last_pages ? a->last_pages : 1) / (0.75 * rate)) : 0;
	uint64_t every = ew->cfg.interval_min_ms > floor_ms ? ew->cfg.interval_min_ms : floor_ms;
	if (a->sweep_last && now < a->sweep_last + every) {
		*wait = a->sweep_last + every - now;
		return false;
	}
	return true;
}

static void list_done(struct http_req *req, const struct http_result *res, void *arg);

static void list_send(struct acct *a)
{
	struct ew *ew = a->p->ew;
	char url[2048];
	unsigned size = acct_cfg(a)->page_size ? acct_cfg(a)->page_size : a->ops->page_max;
	if (!a->in_sweep) {
		a->in_sweep = true;
		a->pages = 0;
		a->sweep_last = ew_now(ew);
		free(a->cursor);
		a->cursor = NULL;
	}
	if (provider_list_url(a->ops, acct_cfg(a)->api_base, size, a->cursor, url, sizeof(url)) < 0) {
		log_msg(LOG_WARNING, "account %s: cannot build the list's URL; its jobs are polled per id", a->name);
		a->in_sweep = false;
		a->list_off_until = ew_now(ew) + ACCT_LIST_OFF_MS;
		return;
	}
	struct http_opts o = poller_api_opts(ew);
	http_req_set(a->list_req, url, a->headers, NULL, 0, &o);
	a->list_in_flight = true;
	if (http_submit(a->list_req, (long)ew->cfg.request_timeout_ms, list_done, a) < 0) {
		a->list_in_flight = false;
		a->in_sweep = false;
		return;
	}
	a->m->lists++;
}

/* Observes the watched jobs of one page. */
static void list_page(struct acct *a, const struct prov_page *pg)
{
	struct ew *ew = a->p->ew;
	char key[256];
	for (size_t i = 0; i < pg->n; i++) {
		const struct prov_obs *o = &pg->items[i];
		if (!o->id || provider_job_key(a->name, o->id, key, sizeof(key)) < 0)
			continue;
		struct job *j = jobtable_get(&ew->jobs, key);
		if (!j || j->queue != a->q || watch_job_ended(j) || (j->flags & (JF_REMOVED | JF_IN_FLIGHT)))
			continue;
		observe(a, j, o, true);
	}
}

static void list_failed(struct acct *a, const char *why)
{
	a->in_sweep = false;
	if (++a->fail_run >= ACCT_LIST_FAIL_LIMIT) {
		log_msg(LOG_WARNING, "account %s: its list failed %u times in a row (%s); its jobs are polled per id for "
			"5 minutes", a->name, a->fail_run, why);
		a->fail_run = 0;
		a->list_off_until = ew_now(a->p->ew) + ACCT_LIST_OFF_MS;
	}
}

static void list_done(struct http_req *req, const struct http_result *res, void *arg)
{
	struct acct *a = arg;
	struct ew *ew = a->p->ew;
	char why[300];

	a->list_in_flight = false;
	metrics_observe_request(&ew->m, (double)res->total_us / 1e6);
	metrics_count_rx(&ew->m, EP_BATCH_LIST, res->wire_bytes, res->decoded_bytes);
	if (account_answer(a, req, res)) {
		a->in_sweep = false;
	} else if (res->error != HTTP_OK || res->status != 200) {
		snprintf(why, sizeof(why), "%s", res->error != HTTP_OK ? res->error_text : "an HTTP error");
		if (res->error == HTTP_OK)
			snprintf(why, sizeof(why), "HTTP %ld", res->status);
		list_failed(a, why);
	} else {
		struct prov_page pg;
		unsigned size = acct_cfg(a)->page_size ? acct_cfg(a)->page_size : a->ops->page_max;
		if (provider_parse_page(a->ops, res->body, res->body_len, size, a->cursor, &pg, why,
					sizeof(why)) < 0) {
			list_failed(a, why);
		} else {
			a->fail_run = 0;
			a->pages++;
			int64_t oldest = oldest_open(a);
			list_page(a, &pg);
			bool more = pg.next_cursor && pg.has_more && !provider_page_past(a->ops, &pg, oldest);
			if (more && a->cursor && strcmp(pg.next_cursor, a->cursor) == 0) {
				/* A next page that is this one again: read no further (its jobs are polled per id meanwhile). */
				log_msg(LOG_WARNING, "account %s: the list's next page is the page just read; the sweep stops "
					"there", a->name);
				more = false;
			}
			free(a->cursor);
			a->cursor = more ? pg.next_cursor : NULL;
			if (more)
				pg.next_cursor = NULL;
			if (more && a->pages >= ACCT_PAGES_MAX) {
				log_msg(LOG_INFO, "account %s: the sweep stopped after %u pages; older jobs are polled per id",
					a->name, a->pages);
				more = false;
			}
			if (!more) {
				a->in_sweep = false;
				a->last_pages = a->pages;
			}
			provider_page_clear(&pg);
		}
	}
	gauges(a);
	arm(a, 0);
}

/* ---- the account's scheduler ---- */

/* Takes the first of its cancels out of the list. */
static struct job *cancel_pop(struct acct *a)
{
	struct job *j = a->cancels[0];
	memmove(a->cancels, a->cancels + 1, (a->n_cancels - 1) * sizeof(*a->cancels));
	a->n_cancels--;
	j->flags &= (uint8_t)~JF_CANCEL_QUEUED;
	return j;
}

/* The next of its cancels to send, after dropping those that need none; NULL when none can go now. */
static struct job *cancel_head(struct acct *a)
{
	struct ew *ew = a->p->ew;
	while (a->n_cancels) {
		struct job *j = a->cancels[0];
		if (j->flags & JF_IN_FLIGHT)
			return NULL;    /* its poll's answer runs the account again */
		if (j->flags & JF_REMOVED)
			jobtable_release(cancel_pop(a));
		else if (watch_job_ended(j))
			watch_cancel_result(ew, cancel_pop(a), false, "the job had already ended");
		else
			return j;
	}
	return NULL;
}

static void acct_run(struct acct *a)
{
	struct ew *ew = a->p->ew;
	uint64_t now = ew_now(ew);
	uint64_t wait = UINT64_MAX;

	if (a->stopped || a->p->stopped)
		return;
	if (a->pause != PAUSE_NONE) {
		if (now < a->paused_until) {
			arm(a, a->paused_until - now);
			gauges(a);
			return;
		}
		if (a->in_flight || a->list_in_flight)
			return;     /* probing: one request at a time, its answer runs the account */
	}
	if (a->budget.paused_until && now >= a->budget.paused_until) {
		a->budget.paused_until = 0;
		log_msg(LOG_NOTICE, "account %s: rate-limit pause over; sending again at %.2f requests/s", a->name,
			sched_bucket_rate(&a->budget.bucket));
	}
	for (;;) {
		struct acct_slot *s = free_slot(a);
		struct job *c = s ? cancel_head(a) : NULL;
		bool list = sweep_due(a, now, &wait);
		struct job *j = jobtable_peek_queue(&ew->jobs, a->q);
		bool poll = s && j && j->due <= now;
		if (j && j->due > now && j->due - now < wait)
			wait = j->due - now;
		if (!c && !list && !poll)
			break;
		uint64_t w = budget_class_wait(&a->budget, now);
		if (w) {
			if (w < wait)
				wait = w;
			break;
		}
		if (c) {
			budget_class_take(&a->budget, now);
			submit(a, s, cancel_pop(a), SLOT_CANCEL);
		} else if (list) {
			budget_class_take(&a->budget, now);
			list_send(a);
		} else {
			if (ew->cfg.max_age_ms && util_wall_ms() - j->added_ms > (int64_t)ew->cfg.max_age_ms) {
				jobtable_unschedule(&ew->jobs, j);
				watch_end(ew, j, EV_EXPIRED, "watched longer than max_age");
				continue;
			}
			budget_class_take(&a->budget, now);
			jobtable_unschedule(&ew->jobs, j);
			submit(a, s, j, SLOT_POLL);
		}
		if (a->pause != PAUSE_NONE) {
			a->paused_until = now + 60000;  /* the probe's answer decides */
			break;
		}
	}
	if (wait != UINT64_MAX)
		arm(a, wait);
	gauges(a);
}

/* ---- the accounts: made, configured and dropped with the configuration ---- */

static void acct_headers(struct acct *a)
{
	struct ew *ew = a->p->ew;
	struct prov_headers ph;
	struct http_headers *h = http_headers_new();
	if (provider_auth_headers(a->ops, ew->account_keys[a->q - 1], &ph) < 0)
		log_msg(LOG_ERR, "account %s: its key cannot be sent in a header (empty, or a control byte in it)", a->name);
	else
		for (size_t i = 0; i < ph.n; i++)
			http_headers_add(h, ph.line[i]);
	OPENSSL_cleanse(&ph, sizeof(ph));
	char ua[200];
	snprintf(ua, sizeof(ua), "X-Client-Name: %s", ew->cfg.client_name);
	http_headers_add(h, ua);
	http_headers_add(h, "Accept: application/json");
	http_headers_unref(a->headers);
	a->headers = h;
}

static struct acct *acct_new(struct poller *p, unsigned i)
{
	struct ew *ew = p->ew;
	const struct ew_account *c = &ew->cfg.accounts[i];
	struct acct *a = xcalloc(1, sizeof(*a));
	a->p = p;
	a->q = i + 1;
	snprintf(a->name, sizeof(a->name), "%s", c->name);
	a->ops = provider_ops((enum provider)c->provider);
	a->m = &ew->m.accounts[i];
	memset(a->m, 0, sizeof(*a->m));
	UV_CHECK(uv_timer_init(ew->loop, &a->timer));
	budget_class_init(&a->budget, c->rate_per_s, ew->cfg.burst, ew_now(ew));
	for (unsigned k = 0; k < ACCT_SLOTS; k++) {
		a->slots[k].req = http_req_new(ew->http, API_BODY_MAX, false);
		http_req_compressed(a->slots[k].req, true);
		a->slots[k].a = a;
	}
	a->list_req = http_req_new(ew->http, (size_t)ew->cfg.list_max_bytes, false);
	http_req_compressed(a->list_req, true);
	return a;
}

/* Stops its transfers; their jobs stay due, its cancels go back to the poller's queue. */
static void acct_stop(struct acct *a)
{
	struct ew *ew = a->p->ew;
	uv_timer_stop(&a->timer);
	for (unsigned k = 0; k < ACCT_SLOTS; k++) {
		struct acct_slot *s = &a->slots[k];
		struct job *j = s->job;
		if (!j)
			continue;
		http_cancel(s->req);
		s->job = NULL;
		a->in_flight--;
		j->flags &= (uint8_t)~JF_IN_FLIGHT;
		if (j->flags & JF_REMOVED)
			jobtable_release(j);
		else if (s->kind == SLOT_POLL)
			jobtable_schedule(&ew->jobs, j, ew_now(ew));
	}
	if (a->list_in_flight) {
		http_cancel(a->list_req);
		a->list_in_flight = false;
	}
	a->in_sweep = false;
	for (size_t i = 0; i < a->n_cancels; i++) {
		struct job *j = a->cancels[i];
		j->flags &= (uint8_t)~JF_CANCEL_QUEUED;
		if (j->flags & JF_REMOVED)
			jobtable_release(j);
		else
			jobtable_cancel_push(&ew->jobs, j);
	}
	a->n_cancels = 0;
}

static void on_closed(uv_handle_t *h)
{
	free(container_of((uv_timer_t *)h, struct acct, timer));
}

static void acct_free(struct acct *a)
{
	acct_stop(a);
	a->stopped = true;
	for (unsigned k = 0; k < ACCT_SLOTS; k++)
		http_req_free(a->slots[k].req);
	http_req_free(a->list_req);
	http_headers_unref(a->headers);
	free(a->cancels);
	free(a->cursor);
	uv_close((uv_handle_t *)&a->timer, on_closed);
}

void poller_acct_configure(struct poller *p)
{
	struct ew *ew = p->ew;
	const struct ew_config *cfg = &ew->cfg;
	for (unsigned i = 0; i < p->n_accts; i++) {
		struct acct *a = p->accts[i];
		if (i < cfg->n_accounts && strcmp(a->name, cfg->accounts[i].name) == 0 &&
		    a->ops->provider == (enum provider)cfg->accounts[i].provider)
			continue;
		acct_free(a);
		p->accts[i] = NULL;
	}
	for (unsigned i = 0; i < cfg->n_accounts; i++) {
		if (!p->accts[i])
			p->accts[i] = acct_new(p, i);
		struct acct *a = p->accts[i];
		a->m = &ew->m.accounts[i];
		acct_headers(a);
		sched_bucket_set(&a->budget.bucket, cfg->accounts[i].rate_per_s, cfg->burst, ew_now(ew));
		/* A reload may have fixed the key or the base URL: try again now. */
		a->pause = PAUSE_NONE;
		a->paused_until = 0;
		gauges(a);
	}
	for (unsigned i = cfg->n_accounts; i < p->n_accts; i++)
		p->accts[i] = NULL;
	p->n_accts = (unsigned)cfg->n_accounts;
	ew->m.n_accounts = p->n_accts;
}

void poller_acct_kick(struct poller *p)
{
	for (unsigned i = 0; i < p->n_accts; i++)
		if (!p->stopped)
			arm(p->accts[i], 0);
}

void poller_acct_cancel(struct poller *p, struct job *j)
{
	struct acct *a = j->queue >= 1 && j->queue <= p->n_accts ? p->accts[j->queue - 1] : NULL;
	if (!a || watch_queue_of(p->ew, j->id) != (int)j->queue) {
		watch_cancel_result(p->ew, j, false, "its account is not in the configuration");
		return;
	}
	if (a->n_cancels == a->cap_cancels) {
		a->cap_cancels = a->cap_cancels ? a->cap_cancels * 2 : 8;
		a->cancels = xrealloc(a->cancels, a->cap_cancels * sizeof(*a->cancels));
	}
	j->flags |= JF_CANCEL_QUEUED;
	a->cancels[a->n_cancels++] = j;
	arm(a, 0);
}

void poller_acct_stop(struct poller *p)
{
	for (unsigned i = 0; i < p->n_accts; i++)
		acct_stop(p->accts[i]);
}

void poller_acct_free(struct poller *p)
{
	for (unsigned i = 0; i < p->n_accts; i++)
		acct_free(p->accts[i]);
	p->n_accts = 0;
}
