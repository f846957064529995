/*
 * The poller: walks its request sources (cancels, the list, the v2 pages,
 * per-id polls, dataset fetches: one table, `sources` below) and spends one
 * token of the request's class per request (budget.h), the month's allowance
 * above them; keeps at most max_in_flight transfers, and turns each answer
 * into an observation, a per-job backoff, a class's pause or a global one.
 * The sweep itself is in poller_sweep.c, the v2 pages in poller_v2.c, the
 * dataset fetches in datasets.c.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_v2.h"
#include "ew.h"
#include "http.h"
#include "job.h"
#include "jobtable.h"
#include "log.h"
#include "metrics.h"
#include "poller_int.h"
#include "sched.h"
#include "store.h"
#include "strmap.h"
#include "turn.h"
#include "util.h"
#include "watch.h"

/* A cancel that got no answer this many times is given up, and said so. */
#define CANCEL_TRIES 5

/* The state's key of the month's count: "YYYY-MM N" (budget_month_parse). */
#define MONTH_KEY "requests_month"

void poller_gauges(struct poller *p)
{
	struct metrics *m = &p->ew->m;
	uint64_t now = ew_now(p->ew);
	bool throttled = false;
	m->polls_in_flight = p->in_flight;
	for (int c = 0; c < RC__N; c++) {
		struct rclass_budget *b = &p->cls[c];
		struct metrics_class *k = &m->cls[c];
		k->budget = b->bucket.rate * 1000.0;
		k->rate = sched_bucket_rate(&b->bucket);
		sched_bucket_wait(&b->bucket, now);     /* refills */
		k->tokens = b->bucket.tokens;
		k->paused_ms = budget_class_paused(b, now) ? b->paused_until - now : 0;
		k->minute = budget_class_minute(b, now);
		k->requests = b->requests;
		throttled |= k->paused_ms > 0;
	}
	/* Everything, or else a class (the class lines say which). */
	m->paused = p->pause != PAUSE_NONE ? p->pause : throttled ? PAUSE_THROTTLED : PAUSE_NONE;
	m->request_rate = m->cls[RC_EMBED_JOBS].rate;
	m->connections_opened = http_connects(p->ew->http);
	m->request_budget = p->ew->cfg.rate_per_s;
	/* As it stands now: a month that ended shows the new one from 0 (the poller moves on when it next sends). */
	int64_t wall = util_wall_ms();
	struct month_budget mo = p->month;
	budget_month_roll(&mo, wall);
	memcpy(m->month, mo.key, sizeof(m->month));
	m->month_allowance = mo.allowance;
	m->month_used = mo.used;
	m->month_projected = budget_month_projected(&mo, wall);
	m->month_wait_ms = budget_month_wait(&mo, wall);
}

enum rclass poller_class_of(enum job_kind k)
{
	/* Cohere counts the embed-job endpoints apart; /v2/batches is in "Default". */
	return k == JOB_KIND_EMBED ? RC_EMBED_JOBS : RC_DEFAULT;
}

uint64_t poller_resume_at(const struct poller *p, enum rclass cls)
{
	/* A pause of everything holds every source at the top of the walk, and a reload may end it early: now. */
	uint64_t at = ew_now(p->ew);
	return p->cls[cls].paused_until > at ? p->cls[cls].paused_until : at;
}

static void run(struct poller *p);

static void on_timer(uv_timer_t *t)
{
	run(container_of(t, struct poller, timer));
}

/* Hands the cancels of other providers' jobs to their accounts, whatever waits before them in the queue. */
static void route_cancels(struct poller *p)
{
	struct jobtable *t = &p->ew->jobs;
	size_t n = t->n_cancels;
	bool any = false;
	for (size_t i = 0; i < n && !any; i++)
		any = t->cancels[i]->queue != 0;
	if (!any)
		return;
	for (size_t i = 0; i < n; i++) {
		struct job *j = jobtable_cancel_pop(t);
		if (j->flags & JF_REMOVED)
			jobtable_release(j);
		else if (j->queue != 0)
			poller_acct_cancel(p, j);
		else
			jobtable_cancel_push(t, j);
	}
}

void poller_run_soon(struct poller *p)
{
	if (!p->stopped)
		UV_CHECK(uv_timer_start(&p->timer, on_timer, 0, 0));
}

void poller_kick(struct poller *p)
{
	if (!p->stopped) {
		route_cancels(p);
		poller_run_soon(p);
		poller_acct_kick(p);
	}
}

void poller_want_sweep(struct poller *p, unsigned kinds)
{
	if (kinds & TURN_SWEEP(JOB_KIND_EMBED))
		p->sweep_wanted = true;
	if (kinds & TURN_SWEEP(JOB_KIND_BATCH))
		poller_v2_want_sweep(p);
	poller_kick(p);
}

/* Runs the poller in delay ms, or sooner when a run is already due sooner (a kick during this run stays). */
static void arm(struct poller *p, uint64_t delay)
{
	if (p->stopped)
		return;
	if (uv_is_active((uv_handle_t *)&p->timer) && uv_timer_get_due_in(&p->timer) <= delay)
		return;
	UV_CHECK(uv_timer_start(&p->timer, on_timer, delay, 0));
}

void poller_configure(struct poller *p)
{
	struct ew *ew = p->ew;
	struct http_headers *h = http_headers_new();
	struct buf b = { 0 };

	buf_printf(&b, "Authorization: Bearer %s", ew->api_key);
	http_headers_add(h, b.data);
	/* Wipe the copy; the key lives in the header list and ew->api_key only. */
	OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	buf_printf(&b, "X-Client-Name: %s", ew->cfg.client_name);
	http_headers_add(h, b.data);
	buf_free(&b);
	http_headers_add(h, "Accept: application/json");
	/* The old list is wiped and freed once the last transfer using it ends. */
	http_headers_unref(p->headers);
	p->headers = h;
	sched_bucket_set(&p->cls[RC_EMBED_JOBS].bucket, ew->cfg.rate_per_s, ew->cfg.burst, ew_now(ew));
	sched_bucket_set(&p->cls[RC_DEFAULT].bucket, ew->cfg.default_rate_per_s, ew->cfg.burst, ew_now(ew));
	p->month.allowance = ew->cfg.monthly_requests;
	poller_acct_configure(p);
	poller_gauges(p);
}

int poller_new(struct ew *ew, struct poller **ret)
{
	struct poller *p = xcalloc(1, sizeof(*p));
	int r;

	p->ew = ew;
	*ret = p;
	if ((r = uv_timer_init(ew->loop, &p->timer)) < 0)
		return r;
	budget_class_init(&p->cls[RC_EMBED_JOBS], ew->cfg.rate_per_s, ew->cfg.burst, uv_now(ew->loop));
	budget_class_init(&p->cls[RC_DEFAULT], ew->cfg.default_rate_per_s, ew->cfg.burst, uv_now(ew->loop));
	budget_month_roll(&p->month, util_wall_ms());
	p->src_decay_at = uv_now(ew->loop);
	p->n_slots = ew->cfg.max_in_flight;
	p->slots = xcalloc(p->n_slots, sizeof(*p->slots));
	for (unsigned i = 0; i < p->n_slots; i++) {
		struct poll_slot *s = &p->slots[i];
		if (!(s->req = http_req_new(ew->http, API_BODY_MAX, false)))
			return -ENOMEM;
		/* Compressed answers; the 1 MiB cap is on the decoded document. */
		http_req_compressed(s->req, true);
		s->p = p;
		s->next_free = p->free_slots;
		p->free_slots = s;
	}
	poller_configure(p);
	if (datasets_init(p) < 0 || (r = poller_v2_init(p)) < 0)
		return -ENOMEM;
	return poller_sweep_init(p);
}

void poller_pause_all(struct poller *p, enum pause_reason why, uint64_t ms)
{
	uint64_t until = ew_now(p->ew) + ms;
	if (p->pause == why && until <= p->paused_until)
		return;
	p->pause = why;
	p->paused_until = until;
	poller_gauges(p);
}

void poller_resume(struct poller *p)
{
	if (p->pause == PAUSE_AUTH || p->pause == PAUSE_BAD_BASE || p->pause == PAUSE_TLS) {
		log_msg(LOG_NOTICE, "polling resumed after reload");
		p->pause = PAUSE_NONE;
		p->paused_until = 0;
		poller_gauges(p);
	}
	poller_kick(p);
}

void poller_note_transient(struct poller *p, struct job *j, const char *why)
{
	uint64_t now = ew_now(p->ew);
	/* One warning per 10 s at most: an outage must not flood the log. */
	if (now - p->transient_window_start >= 10000) {
		if (p->transient_in_window > 1)
			log_msg(LOG_WARNING, "%u more transient poll errors in the last 10 s", p->transient_in_window - 1);
		p->transient_window_start = now;
		p->transient_in_window = 0;
	}
	if (p->transient_in_window++ == 0)
		log_job(LOG_WARNING, j->id, "job %s: poll failed: %s; backing off", j->id, why);
	else
		log_job(LOG_DEBUG, j->id, "job %s: poll failed: %s", j->id, why);
}

/*
 * Each distinct API warning is logged once, not on every poll. A server can
 * send anything here, so memory is bounded: at most WARNINGS_MAX distinct
 * warnings are remembered, each cut to WARNING_LEN bytes.
 */
#define WARNINGS_MAX 64
#define WARNING_LEN 256

void poller_note_warning(struct poller *p, const char *job_id, const char *text)
{
	char cut[WARNING_LEN + 1];
	snprintf(cut, sizeof(cut), "%s", text);
	if (strmap_get(&p->warnings, cut))
		return;
	if (p->warnings.len >= WARNINGS_MAX) {
		if (!p->warnings_full)
			log_msg(LOG_WARNING, "over %d distinct API warnings; further ones are not logged", WARNINGS_MAX);
		p->warnings_full = true;
		return;
	}
	char *copy = xstrdup(cut);
	strmap_put(&p->warnings, copy, copy);
	log_job(LOG_WARNING, job_id, "API warning (logged once): %s%s", cut, strlen(text) > WARNING_LEN ? "..." : "");
}

void poller_backoff(struct poller *p, struct job *j)
{
	struct ew *ew = p->ew;
	if (j->fail_run < UINT16_MAX)
		j->fail_run++;
	uint64_t d = sched_error_backoff(j->fail_run, ew->cfg.interval_min_ms, ew->cfg.interval_max_ms);
	jobtable_schedule(&ew->jobs, j, ew_now(ew) + sched_jitter(d, ew->cfg.jitter, util_rand_unit()));
}

void poller_error_run(struct poller *p, struct job *j, enum api_class cls, long status)
{
	char why[120];
	enum ew_event ev = job_error_record(&j->err, cls);
	if (ev != EV_NONE) {
		snprintf(why, sizeof(why), "the API answered %ld %d times in a row", status, JOB_ERROR_LIMIT);
		watch_end(p->ew, j, ev, why);
	} else {
		log_job(LOG_INFO, j->id, "job %s: API answered %ld (%u of %d before giving up)", j->id, status,
			j->err.count, JOB_ERROR_LIMIT);
		poller_backoff(p, j);
	}
}

uint64_t poller_retry_after_ms(struct http_req *req, unsigned run)
{
	const char *ra = http_header(req, "Retry-After");
	int64_t secs;
	if (ra && api_retry_after(ra, util_wall_ms() / 1000, API_RETRY_AFTER_CAP_S, &secs) == 0)
		return (uint64_t)secs * 1000;
	return sched_throttle_pause(run, 300000);
}

static bool is_json(const char *ct)
{
	if (!ct)
		return true;        /* absent: let the parser decide */
	return strncasecmp(ct, "application/json", 16) == 0 || strcasestr(ct, "+json") != NULL;
}

bool poller_global_answer(struct poller *p, enum rclass rc, struct http_req *req, const struct http_result *res)
{
	struct rclass_budget *c = &p->cls[rc];
	struct ew *ew = p->ew;

	if (res->error == HTTP_ERR_TLS) {
		/* A certificate the daemon cannot trust is configuration, not a job problem: pause everything. */
		if (p->pause != PAUSE_TLS || strcmp(ew->m.pause_detail, res->error_text) != 0)
			log_msg(LOG_ERR, "TLS failure talking to %s: %s. All polling is paused and probed once a minute; "
				"fix api_ca_file (or the proxy, or the clock) and reload", ew->cfg.api_base, res->error_text);
		snprintf(ew->m.pause_detail, sizeof(ew->m.pause_detail), "%s", res->error_text);
		poller_pause_all(p, PAUSE_TLS, 60000);
		return true;
	}
	if (res->error != HTTP_OK)
		return false;
	enum api_class cls = api_classify(res->status);
	if (cls != API_THROTTLED)
		c->throttle_run = 0;
	if ((p->pause == PAUSE_TLS) || (p->pause == PAUSE_AUTH && cls != API_AUTH) ||
	    (p->pause == PAUSE_BAD_BASE && cls != API_BAD_BASE)) {
		log_msg(LOG_NOTICE, "the API answers again (%ld); polling resumed", res->status);
		p->pause = PAUSE_NONE;
		poller_gauges(p);
	}
	switch (cls) {
	case API_THROTTLED: {
		/*
		 * The provider counts each class apart: only this one pauses and
		 * slows; the others go on (a 429 on the datasets must not stop the
		 * list that sees jobs end, nor the other way round).
		 */
		uint64_t ms = poller_retry_after_ms(req, ++c->throttle_run), now = ew_now(ew);
		ew->m.throttles++;
		ew->m.cls[rc].throttles++;
		if (!budget_class_paused(c, now))
			log_msg(LOG_WARNING, "API answered %ld: pausing the %s requests for %llu ms, then at %.2f requests/s",
				res->status, budget_class_name(rc), (unsigned long long)ms, sched_bucket_rate(&c->bucket) / 2);
		budget_class_throttled(c, now, ms);
		poller_gauges(p);
		return true;
	}
	case API_AUTH:
		if (p->pause != PAUSE_AUTH)
			log_msg(LOG_ERR, "API answered %ld: the API key is not accepted. All polling is paused and retried "
				"once a minute; fix the key and reload (systemctl reload embedwatchd)", res->status);
		poller_pause_all(p, PAUSE_AUTH, 60000);
		return true;
	case API_BAD_BASE:
		if (p->pause != PAUSE_BAD_BASE)
			log_msg(LOG_ERR, "API answered 501 Not Implemented: api_base %s looks wrong. Polling is paused "
				"for 5 minutes at a time; fix it and reload", ew->cfg.api_base);
		poller_pause_all(p, PAUSE_BAD_BASE, 300000);
		return true;
	default:
		return false;
	}
}

static void release_slot(struct poller *p, struct poll_slot *s)
{
	s->job = NULL;
	s->next_free = p->free_slots;
	p->free_slots = s;
	p->in_flight--;
}

/* A job's own answer (not a global one): observation, error run, or backoff. */
static void poll_answer(struct poller *p, struct job *j, const struct http_result *res, struct http_req *req)
{
	struct ew *ew = p->ew;
	char why[400];

	if (res->error != HTTP_OK) {
		if (res->error == HTTP_ERR_TOO_BIG)
			snprintf(why, sizeof(why), "response larger than %d bytes decoded, cut off", API_BODY_MAX);
		else
			snprintf(why, sizeof(why), "%s", res->error_text);
		poller_note_transient(p, j, why);
		poller_backoff(p, j);
		return;
	}
	enum api_class cls = api_classify(res->status);
	switch (cls) {
	case API_OK: {
		/* The kind decides the parser (EmbedJob, or {"batch": Batch}); the rest is kind-blind. */
		struct api_obs ob;
		struct api_job *aj = &ob.job;
		const char *ct = http_header(req, "Content-Type");
		if (!is_json(ct)) {
			snprintf(why, sizeof(why), "200 with content type \"%.64s\", not JSON", ct);
			poller_note_transient(p, j, why);
			poller_backoff(p, j);
			break;
		}
		if (api_kind_parse_answer((enum job_kind)j->kind, res->body, res->body_len, &ob, why, sizeof(why)) < 0) {
			poller_note_transient(p, j, why);
			poller_backoff(p, j);
			break;
		}
		/* A Batch may leave its id out (every field may be absent): then the URL said which it is. */
		if (aj->job_id && strcmp(aj->job_id, j->id) != 0) {
			/* Never trusted. Once between good answers it is transient; three in a row end the job. */
			if (job_error_record(&j->err, JOB_RUN_OTHER_JOB) != EV_NONE) {
				snprintf(why, sizeof(why), "asked for job \"%s\", the API answered %d times in a row with job "
					 "\"%.128s\" (is the id in the form the API uses?)", j->id, JOB_ERROR_LIMIT, aj->job_id);
				api_obs_clear(&ob);
				watch_end(ew, j, EV_ERROR, why);
				break;
			}
			snprintf(why, sizeof(why), "answer is for job \"%.64s\"", aj->job_id);
			api_obs_clear(&ob);
			poller_note_transient(p, j, why);
			poller_backoff(p, j);
			break;
		}
		const char *warn = http_header(req, "X-API-Warning");
		if (warn)
			poller_note_warning(p, j->id, warn);
		for (size_t i = 0; i < aj->n_warnings; i++)
			poller_note_warning(p, j->id, aj->warnings[i]);
		watch_observed(ew, j, aj, ob.doc ? ob.doc : res->body, ob.doc ? ob.doc_len : res->body_len, false);
		api_obs_clear(&ob);
		break;
	}
	case API_NOT_FOUND:
	case API_REJECTED:
		poller_error_run(p, j, cls, res->status);
		break;
	default:
		snprintf(why, sizeof(why), "HTTP %ld", res->status);
		poller_note_transient(p, j, why);
		poller_backoff(p, j);
		break;
	}
}

/* Queues j's cancel again (a pause or no answer); after CANCEL_TRIES it is given up. */
static void cancel_again(struct poller *p, struct job *j, const char *why)
{
	struct ew *ew = p->ew;
	if (why && ++j->cancel_tries >= CANCEL_TRIES) {
		char msg[300];
		snprintf(msg, sizeof(msg), "no answer after %d tries: %s", CANCEL_TRIES, why);
		j->cancel_tries = 0;
		watch_cancel_result(ew, j, false, msg);
		return;
	}
	watch_cancel(ew, j, j->cancel_expire);
}

static void cancel_answer(struct poller *p, struct job *j, const struct http_result *res)
{
	char why[320];
	if (res->error != HTTP_OK) {
		cancel_again(p, j, res->error_text);
		return;
	}
	j->cancel_tries = 0;
	if (res->status >= 200 && res->status < 300) {
		watch_cancel_result(p->ew, j, true, NULL);
		return;
	}
	if (res->status == 400 || res->status == 409 || res->status == 422)
		snprintf(why, sizeof(why), "the API refused it (HTTP %ld); the job has probably ended", res->status);
	else if (res->status == 404)
		snprintf(why, sizeof(why), "the API does not know the job (HTTP 404)");
	else if (api_classify(res->status) == API_TRANSIENT) {
		snprintf(why, sizeof(why), "HTTP %ld", res->status);
		cancel_again(p, j, why);
		return;
	} else
		snprintf(why, sizeof(why), "HTTP %ld", res->status);
	watch_cancel_result(p->ew, j, false, why);
}

static void on_done(struct http_req *req, const struct http_result *res, void *arg)
{
	struct poll_slot *s = arg;
	struct poller *p = s->p;
	struct ew *ew = p->ew;
	struct job *j = s->job;
	enum slot_kind kind = s->kind;

	release_slot(p, s);
	metrics_observe_request(&ew->m, (double)res->total_us / 1e6);
	metrics_count_rx(&ew->m, kind == SLOT_CANCEL ? EP_CANCEL : EP_POLL, res->wire_bytes, res->decoded_bytes);
	if (res->error == HTTP_OK && res->status == 200 && kind == SLOT_POLL)
		ew->m.last_poll_ok_ms = (uint64_t)util_wall_ms();
	if (res->error == HTTP_OK)
		ew->m.poll_answers[api_classify(res->status)]++;
	else
		ew->m.poll_errors++;
	j->flags &= (uint8_t)~JF_IN_FLIGHT;
	if (j->flags & JF_REMOVED) {
		jobtable_release(j);
	} else if (poller_global_answer(p, poller_class_of((enum job_kind)j->kind), req, res)) {
		/* No answer about the job: it goes first once the pause is over. */
		if (kind == SLOT_CANCEL)
			cancel_again(p, j, NULL);
		else
			jobtable_schedule(&ew->jobs, j, poller_resume_at(p, poller_class_of((enum job_kind)j->kind)));
	} else if (kind == SLOT_CANCEL) {
		cancel_answer(p, j, res);
	} else if (watch_job_ended(j)) {
		/* The list saw it end while this poll was out: the answer is old news, and must not queue it again. */
	} else {
		poll_answer(p, j, res, req);
		if (res->error == HTTP_OK && res->status == 200) {
			/* Seen: the next look comes as soon as the budget spread over the jobs allows, not by backoff alone. */
			poller_plan_poll_cost(p, res->wire_bytes);
			poller_plan_freshen(p, j);
		}
	}
	poller_gauges(p);
	poller_run_soon(p);
}

struct http_opts poller_api_opts(const struct ew *ew)
{
	return (struct http_opts){ .ca_file = ew->cfg.api_ca_file, .proxy = ew->cfg.proxy, .no_proxy = ew->cfg.no_proxy,
				   .proxy_userpwd = ew->proxy_userpwd };
}

static void submit(struct poller *p, struct job *j, enum slot_kind kind)
{
	struct ew *ew = p->ew;
	struct poll_slot *s = p->free_slots;
	char url[1024];

	/* v1: .../embed-jobs/ID[/cancel]; v2: .../batches/ID[:cancel]. */
	if (api_kind_url((enum job_kind)j->kind, ew->cfg.api_base, j->id, kind == SLOT_CANCEL, url, sizeof(url)) < 0) {
		watch_end(ew, j, EV_ERROR, "cannot build a URL for this id");
		return;
	}
	p->free_slots = s->next_free;
	s->job = j;
	s->kind = kind;
	j->flags |= JF_IN_FLIGHT;
	struct http_opts o = poller_api_opts(ew);
	/* A cancel is a POST with an empty body. */
	http_req_set(s->req, url, p->headers, kind == SLOT_CANCEL ? "" : NULL, 0, &o);
	p->in_flight++;
	if (http_submit(s->req, (long)ew->cfg.request_timeout_ms, on_done, s) < 0) {
		j->flags &= (uint8_t)~JF_IN_FLIGHT;
		release_slot(p, s);
		if (kind == SLOT_CANCEL)
			cancel_again(p, j, "cannot start the request");
		else
			poller_backoff(p, j);
		return;
	}
	if (kind == SLOT_CANCEL)
		ew->m.cancels++;
	else
		ew->m.polls++;
}

/* ---- the sources: each says whether it would send now (and from which class), and sends one ---- */

/* The next cancel to send, after dropping the queue's entries that need no request. */
static struct job *cancel_head(struct poller *p)
{
	struct ew *ew = p->ew;
	struct job *j;
	while ((j = jobtable_cancel_peek(&ew->jobs))) {
		if (j->flags & JF_REMOVED) {
			jobtable_cancel_pop(&ew->jobs);
			jobtable_release(j);
		} else if (j->queue != 0) {
			/* Another provider's account sends it, with its own budget. */
			poller_acct_cancel(p, jobtable_cancel_pop(&ew->jobs));
		} else if (watch_job_ended(j)) {
			jobtable_cancel_pop(&ew->jobs);
			watch_cancel_result(ew, j, false, "the job had already ended");
		} else {
			return j;
		}
	}
	return NULL;
}

static bool cancels_due(struct poller *p, uint64_t now, enum rclass *cls, uint64_t *wait)
{
	(void)now;
	(void)wait;
	struct job *j = p->free_slots ? cancel_head(p) : NULL;
	/* A poll of it is running: the cancel goes after (its answer runs the poller). */
	if (!j || (j->flags & JF_IN_FLIGHT))
		return false;
	*cls = poller_class_of((enum job_kind)j->kind);
	return true;
}

static void cancels_start(struct poller *p, uint64_t now)
{
	(void)now;
	struct job *j = cancel_head(p);
	if (!j)
		return;
	jobtable_cancel_pop(&p->ew->jobs);
	submit(p, j, SLOT_CANCEL);
}

/*
 * The head of the due queue when it is due now, after handling the jobs past
 * max_age at its front (expired, or a cancel queued). NULL otherwise (*wait:
 * until the head is due).
 */
static struct job *poll_head(struct poller *p, uint64_t now, uint64_t *wait)
{
	struct ew *ew = p->ew;
	struct job *j;
	while ((j = jobtable_peek(&ew->jobs))) {
		if (j->due > now) {
			*wait = j->due - now;
			return NULL;
		}
		enum rclass c = poller_class_of((enum job_kind)j->kind);
		if (budget_class_paused(&p->cls[c], now)) {
			/* Its class is paused (a 429): out of the way of the other class's jobs until the pause ends. */
			jobtable_schedule(&ew->jobs, j, p->cls[c].paused_until);
			continue;
		}
		if (!ew->cfg.max_age_ms || util_wall_ms() - j->added_ms <= (int64_t)ew->cfg.max_age_ms)
			return j;
		if (ew->cfg.cancel_on_expire && j->cancel == CANCEL_NONE) {
			/* Not just given up on: cancelled, and watched on to cancelled. */
			watch_cancel(ew, j, true);
			return j;
		}
		if (ew->cfg.cancel_on_expire && util_wall_ms() - j->added_ms <= 2 * (int64_t)ew->cfg.max_age_ms)
			return j;
		/* Given up on; with cancel_on_expire, only if the cancel did not end it by twice max_age. */
		jobtable_unschedule(&ew->jobs, j);
		watch_end(ew, j, EV_EXPIRED, j->cancel == CANCEL_ACCEPTED
			  ? "watched longer than max_age, and not cancelled after the cancel was accepted"
			  : "watched longer than max_age");
	}
	return NULL;
}

static bool polls_due(struct poller *p, uint64_t now, enum rclass *cls, uint64_t *wait)
{
	if (p->in_flight >= p->n_slots || !p->free_slots)
		return false;           /* an answer frees a slot and runs the poller again */
	struct job *j = poll_head(p, now, wait);
	if (!j)
		return false;
	*cls = poller_class_of((enum job_kind)j->kind);
	return true;
}

static void polls_start(struct poller *p, uint64_t now)
{
	uint64_t wait;
	struct job *j = poll_head(p, now, &wait);
	if (!j)
		return;
	jobtable_unschedule(&p->ew->jobs, j);
	submit(p, j, SLOT_POLL);
}

static bool list_due(struct poller *p, uint64_t now, enum rclass *cls, uint64_t *wait)
{
	*cls = RC_EMBED_JOBS;
	return poller_sweep_due_now(p, now, wait);
}

static void list_start(struct poller *p, uint64_t now)
{
	(void)now;
	poller_sweep_start(p);
}

static bool pages_due(struct poller *p, uint64_t now, enum rclass *cls, uint64_t *wait)
{
	*cls = RC_DEFAULT;
	return poller_v2_due_now(p, now, wait);
}

static void pages_start(struct poller *p, uint64_t now)
{
	(void)now;
	poller_v2_start(p);
}

static bool datasets_src_due(struct poller *p, uint64_t now, enum rclass *cls, uint64_t *wait)
{
	*cls = RC_DEFAULT;
	return datasets_due(p, now, wait);
}

/*
 * The sources, in the rank order of the policy (budget_policy in budget.c,
 * which says it; the man page, REQUEST BUDGETS, says it in words): how each
 * one tells whether it would send, and sends.
 */
static const struct source {
	/* True when it would send now (and *cls is the class its request draws from); else *wait, ms until it may. */
	bool (*due)(struct poller *p, uint64_t now, enum rclass *cls, uint64_t *wait);
	/* Sends one request; its class's token was taken. */
	void (*start)(struct poller *p, uint64_t now);
} sources[SRC__N] = {
	[SRC_CANCELS] = { cancels_due, cancels_start },
	[SRC_LIST] = { list_due, list_start },
	[SRC_PAGES] = { pages_due, pages_start },
	[SRC_POLLS] = { polls_due, polls_start },
	[SRC_DATASETS] = { datasets_src_due, datasets_start },
};
#define N_SOURCES SRC__N

/* ---- the month's allowance: counted in the state ahead of spending ---- */

static void month_loaded(int r, const char *value, void *arg)
{
	struct poller *p = arg;
	char key[8];
	uint64_t n;
	p->month_loading = false;
	if (r < 0) {
		log_msg(LOG_ERR, "cannot read this month's request count from the state (%s); no request goes until it can",
			store_error(p->ew->store));
		arm(p, 5000);
		return;
	}
	if (value && budget_month_parse(value, key, &n) < 0)
		log_msg(LOG_WARNING, "the state's month request count \"%.40s\" is not \"YYYY-MM N\"; counting from 0", value);
	else if (value && strcmp(key, p->month.key) == 0)
		p->month.used = p->month.reserved = n;
	p->month_loaded = true;
	log_msg(LOG_INFO, "month %s: %llu of %llu requests used", p->month.key, (unsigned long long)p->month.used,
		(unsigned long long)p->month.allowance);
	poller_gauges(p);
	poller_run_soon(p);
}

void poller_meta_saved(struct poller *p, const char *key, const char *value)
{
	char k[8];
	uint64_t n;
	if (strcmp(key, MONTH_KEY) != 0 || budget_month_parse(value, k, &n) < 0)
		return;
	p->month_saving = false;
	if (strcmp(k, p->month.key) == 0 && n > p->month.reserved)
		p->month.reserved = n;
	poller_run_soon(p);
}

/*
 * With an allowance: 0 when one more request may go now, else the ms to wait
 * (the state's count still loading, a reservation being committed, or the
 * month's spread). Records a reservation when the durable count is reached.
 */
static uint64_t month_gate(struct poller *p, uint64_t now)
{
	struct ew *ew = p->ew;
	int64_t wall = util_wall_ms();
	if (!p->month.allowance)
		return 0;
	if (budget_month_roll(&p->month, wall)) {
		log_msg(LOG_NOTICE, "month %s begins: %llu requests allowed", p->month.key,
			(unsigned long long)p->month.allowance);
		p->month_loaded = false;
	}
	if (!p->month_loaded) {
		if (!p->month_loading) {
			p->month_loading = true;
			store_get_meta(ew->store, MONTH_KEY, month_loaded, p);
		}
		if (!p->month_loaded)
			return UINT64_MAX;      /* its answer runs the poller */
		/* SQLite answered at once: go on with the count. */
	}
	uint64_t w = budget_month_wait(&p->month, wall);
	if (w)
		return w;
	if (p->month.used < p->month.reserved)
		return 0;
	if (!p->month_saving) {
		/* Durable before spent: a restart counts from what the state says, never less. */
		char v[48];
		uint64_t to = p->month.used + budget_month_chunk(&p->month);
		if (to > p->month.allowance)
			to = p->month.allowance;
		snprintf(v, sizeof(v), "%s %llu", p->month.key, (unsigned long long)to);
		struct turn_row *r = turn_row(&ew->turn, TR_META);
		r->subject = xstrdup(MONTH_KEY);
		r->text = xstrdup(v);
		p->month_saving = true;
	}
	(void)now;
	return UINT64_MAX;          /* the commit runs the poller */
}

/* ---- the walk ---- */

/*
 * A list in flight far longer than lists take (a server trickling it): the
 * watched embed jobs the last list did not show are polled per id meanwhile,
 * so a new job's first look, and its end, do not wait for that list.
 */
static uint64_t unlisted_now(struct job *j, void *arg)
{
	struct poller *p = arg;
	/* Before any list was read (last_ok_gen 0), every job is one the last list did not show. */
	if (j->kind != JOB_KIND_EMBED || (p->last_ok_gen && j->sweep_gen == p->last_ok_gen) || watch_job_ended(j))
		return j->due;
	uint64_t now = ew_now(p->ew);
	return j->due < now ? j->due : now;
}

static uint64_t list_overdue(struct poller *p, uint64_t now)
{
	if (!p->sweep_in_flight)
		return UINT64_MAX;
	uint64_t expect = p->list_ms * 3 > 5000 ? p->list_ms * 3 : 5000;
	if (now < p->sweep_last + expect)
		return p->sweep_last + expect - now;
	if (p->overdue_gen != p->sweep_gen) {
		p->overdue_gen = p->sweep_gen;
		log_msg(LOG_INFO, "list sweep: no answer after %llu ms; polling the jobs the last list did not show per id",
			(unsigned long long)(now - p->sweep_last));
		jobtable_redue(&p->ew->jobs, unlisted_now, p);
	}
	return UINT64_MAX;
}

static void run(struct poller *p)
{
	struct ew *ew = p->ew;
	uint64_t now = ew_now(ew);

	if (p->stopped)
		return;
	/* A complete event waits for its dataset at most dataset_timeout, paused or not. */
	uint64_t wait = datasets_expire(p, now);
	if (p->pause != PAUSE_NONE) {
		if (now < p->paused_until) {
			arm(p, p->paused_until - now < wait ? p->paused_until - now : wait);
			return;
		}
		if (p->in_flight > 0 || p->sweep_in_flight || datasets_busy(p) || poller_v2_busy(p))
			return;     /* auth, TLS and base-URL pauses probe again with one request at a time */
	}
	for (int c = 0; c < RC__N; c++) {
		if (p->cls[c].paused_until && now >= p->cls[c].paused_until) {
			p->cls[c].paused_until = 0;
			log_msg(LOG_NOTICE, "rate-limit pause of the %s requests over; sending again at %.2f requests/s",
				budget_class_name((enum rclass)c), sched_bucket_rate(&p->cls[c].bucket));
			poller_gauges(p);
		}
	}
	poller_plan(p, now);
	if (p->sweep_wanted) {
		p->sweep_wanted = false;
		poller_sweep_want_full(p);
		/* Brought forward, but never closer to the last list than the budgets allow. */
		uint64_t earliest = p->sweep_last + p->plan.sweep_floor_ms;
		if (p->sweep_due > now)
			p->sweep_due = earliest > now ? earliest : now;
		/* A list already overdue: what it would not show is polled now. */
		p->overdue_gen = 0;
	}
	uint64_t w = list_overdue(p, now);
	if (w < wait)
		wait = w;
	for (;;) {
		struct source_state st[N_SOURCES];
		bool any = false;
		if (now > p->src_decay_at) {
			for (int i = 0; i < N_SOURCES; i++)
				p->src_recent[i] = budget_decay(p->src_recent[i], now - p->src_decay_at, 60000);
			p->src_decay_at = now;
		}
		for (int i = 0; i < N_SOURCES; i++) {
			uint64_t sw = UINT64_MAX;
			st[i] = (struct source_state){ .cls = RC_DEFAULT, .recent = p->src_recent[i] };
			st[i].due = sources[i].due(p, now, &st[i].cls, &sw);
			if (!st[i].due) {
				if (sw < wait)
					wait = sw;
				continue;
			}
			any = true;
			uint64_t cw = budget_class_wait(&p->cls[st[i].cls], now);
			st[i].can_take = cw == 0;
			if (cw && cw < wait)
				wait = cw;
		}
		int k = any ? budget_pick(budget_policy, st, SRC__N) : -1;
		if (k >= 0 && (w = month_gate(p, now)) != 0) {
			if (w < wait)
				wait = w;
			k = -1;
		}
		if (k < 0) {
			if (wait != UINT64_MAX)
				arm(p, wait);
			poller_gauges(p);
			return;
		}
		if (!budget_class_take(&p->cls[st[k].cls], now))
			continue;       /* cannot happen: it could take a moment ago */
		p->month.used++;
		p->src_recent[k] += 1.0;
		sources[k].start(p, now);
		if (p->pause != PAUSE_NONE) {
			/* Probing after an auth or base-URL pause: one request, then wait for its answer. */
			p->paused_until = now + 60000;
			poller_gauges(p);
			return;
		}
	}
}

void poller_stop(struct poller *p)
{
	struct ew *ew = p->ew;
	p->stopped = true;
	uv_timer_stop(&p->timer);
	poller_sweep_stop(p);
	poller_v2_stop(p);
	datasets_stop(p);
	poller_acct_stop(p);
	for (unsigned i = 0; i < p->n_slots; i++) {
		struct poll_slot *s = &p->slots[i];
		if (!s->job)
			continue;
		http_cancel(s->req);
		struct job *j = s->job;
		s->job = NULL;
		j->flags &= (uint8_t)~JF_IN_FLIGHT;
		/* A cancel in flight stays requested in the state: it is sent again after the restart. */
		if (j->flags & JF_REMOVED)
			jobtable_release(j);
		else if (s->kind == SLOT_POLL)
			jobtable_schedule(&ew->jobs, j, ew_now(ew));
		p->in_flight--;
	}
	poller_gauges(p);
}

static void on_closed(uv_handle_t *h)
{
	free(container_of((uv_timer_t *)h, struct poller, timer));
}

void poller_free(struct poller *p)
{
	if (!p)
		return;
	poller_stop(p);
	for (unsigned i = 0; i < p->n_slots; i++)
		http_req_free(p->slots[i].req);
	free(p->slots);
	poller_sweep_free(p);
	poller_v2_free(p);
	datasets_free(p);
	poller_acct_free(p);
	for (size_t i = 0; i < p->warnings.cap; i++)
		free(p->warnings.slots[i].val);
	strmap_free(&p->warnings);
	http_headers_unref(p->headers);
	uv_close((uv_handle_t *)&p->timer, on_closed);
}
