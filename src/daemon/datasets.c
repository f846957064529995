/*
 * The output dataset of a complete event: GET /v1/datasets/{id} for each
 * completion watch holds (watch_v2.h), through the poller's default class
 * (budget.h: Cohere counts /v1/datasets apart from the embed-job endpoints),
 * pauses and answer handling like every request, ranked after every source
 * that observes (poller.c), with its own small retry ([datasets]
 * tries within timeout). What cannot be had in time goes out as
 * "output_dataset": null with the reason. The answer's part URLs are signed
 * download links: they go into the event and nowhere else (no log line, no
 * metric, no error message).
 */
#include <stdio.h>
#include <string.h>

#include "api_v2.h"
#include "ew.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "poller_int.h"
#include "sched.h"
#include "util.h"
#include "watch.h"
#include "watch_v2.h"

/* Fetches at once, at most: they are few (completions) and share the budget with everything else. */
#define DATASETS_SLOTS 4

struct ds_slot {
	struct http_req *req;
	struct poller *p;
	char job_id[API_ID_MAX + 1];
	bool busy;
};

struct datasets {
	struct ds_slot slots[DATASETS_SLOTS];
};

int datasets_init(struct poller *p)
{
	p->datasets = xcalloc(1, sizeof(*p->datasets));
	for (int i = 0; i < DATASETS_SLOTS; i++) {
		struct ds_slot *s = &p->datasets->slots[i];
		s->p = p;
		if (!(s->req = http_req_new(p->ew->http, API_BODY_MAX, false)))
			return -1;
		http_req_compressed(s->req, true);
	}
	return 0;
}

void datasets_stop(struct poller *p)
{
	if (!p->datasets)
		return;
	for (int i = 0; i < DATASETS_SLOTS; i++) {
		struct ds_slot *s = &p->datasets->slots[i];
		if (!s->busy)
			continue;
		http_cancel(s->req);
		s->busy = false;
		struct watch_hold *h = p->ew->v2 ? watch_v2_held(p->ew->v2, s->job_id) : NULL;
		if (h)
			h->fetch.in_flight = false;
	}
}

void datasets_free(struct poller *p)
{
	if (!p->datasets)
		return;
	datasets_stop(p);
	for (int i = 0; i < DATASETS_SLOTS; i++)
		http_req_free(p->datasets->slots[i].req);
	free(p->datasets);
	p->datasets = NULL;
}

bool datasets_busy(const struct poller *p)
{
	for (int i = 0; p->datasets && i < DATASETS_SLOTS; i++)
		if (p->datasets->slots[i].busy)
			return true;
	return false;
}

/* The event goes out without the dataset; the hold (h) is freed. */
static void give_up(struct poller *p, struct watch_hold *h, const char *why)
{
	char id[API_ID_MAX + 1];
	snprintf(id, sizeof(id), "%s", h->job_id);
	watch_dataset_result(p->ew, id, NULL, why);
}

/* A try that failed in a way another may mend; after [datasets] tries, the event goes out without it. */
static void failed_try(struct poller *p, struct watch_hold *h, const char *why, uint64_t now)
{
	struct ew *ew = p->ew;
	snprintf(h->fetch.last_error, sizeof(h->fetch.last_error), "%s", why);
	if (++h->fetch.tries >= ew->cfg.dataset_tries) {
		char msg[320];
		snprintf(msg, sizeof(msg), "GET /v1/datasets/%s failed %u times, the last: %s", h->dataset_id, h->fetch.tries, why);
		give_up(p, h, msg);
		return;
	}
	uint64_t cap = ew->cfg.dataset_timeout_ms / 4 > 1000 ? ew->cfg.dataset_timeout_ms / 4 : 1000;
	h->fetch.next_try = now + sched_jitter(sched_error_backoff(h->fetch.tries, 500, cap), ew->cfg.jitter, util_rand_unit());
}

uint64_t datasets_expire(struct poller *p, uint64_t now)
{
	struct ew *ew = p->ew;
	uint64_t wait = UINT64_MAX;
	for (size_t i = 0; i < watch_v2_hold_count(ew->v2);) {
		struct watch_hold *h = watch_v2_hold_at(ew->v2, i);
		if (h->fetch.in_flight || now < h->deadline) {
			if (!h->fetch.in_flight && h->deadline - now < wait)
				wait = h->deadline - now;
			i++;
			continue;
		}
		char msg[400];
		snprintf(msg, sizeof(msg), "no answer within the dataset timeout (%llu ms) after %u tries%s%s",
			 (unsigned long long)ew->cfg.dataset_timeout_ms, h->fetch.tries, h->fetch.last_error[0] ? ", the last: " : "",
			 h->fetch.last_error);
		give_up(p, h, msg);     /* the holds after it move down one: i stays */
	}
	return wait;
}

static void on_done(struct http_req *req, const struct http_result *res, void *arg)
{
	struct ds_slot *s = arg;
	struct poller *p = s->p;
	struct ew *ew = p->ew;
	uint64_t now = ew_now(ew);
	char why[320];

	s->busy = false;
	metrics_observe_request(&ew->m, (double)res->total_us / 1e6);
	metrics_count_rx(&ew->m, EP_DATASET, res->wire_bytes, res->decoded_bytes);
	struct watch_hold *h = watch_v2_held(ew->v2, s->job_id);
	if (h)
		h->fetch.in_flight = false;
	if (res->error == HTTP_OK && (res->status == 400 || res->status == 404 || res->status == 405 ||
				      res->status == 422 || res->status == 501)) {
		/* The API will not give this one (or has no datasets here): no point in another try. */
		if (h) {
			snprintf(why, sizeof(why), "GET /v1/datasets/%s answered %ld", h->dataset_id, res->status);
			give_up(p, h, why);
		}
	} else if (poller_global_answer(p, RC_DEFAULT, req, res)) {
		/* 429/503 (this class), auth, TLS (everything): not a try of this fetch, which goes again after the pause. */
		if (h)
			h->fetch.next_try = poller_resume_at(p, RC_DEFAULT);
	} else if (!h) {
		/* Unwatched while it ran. */
	} else if (res->error != HTTP_OK) {
		failed_try(p, h, res->error == HTTP_ERR_TOO_BIG ? "the answer is larger than 1 MiB" : res->error_text, now);
	} else if (res->status != 200) {
		snprintf(why, sizeof(why), "HTTP %ld", res->status);
		failed_try(p, h, why, now);
	} else {
		struct api_dataset d;
		if (api_dataset_parse(res->body, res->body_len, h->dataset_id, &d, why, sizeof(why)) < 0) {
			failed_try(p, h, why, now);
		} else {
			/* A summary only: the parts' URLs are secrets. */
			log_job(LOG_INFO, h->job_id, "job %s: output dataset %s (%zu parts, %lld bytes, %lld rows) goes in its "
				"complete event", h->job_id, h->dataset_id, d.n_parts, (long long)d.size_bytes, (long long)d.num_rows);
			watch_dataset_result(ew, s->job_id, d.dataset, NULL);
			api_dataset_clear(&d);
		}
	}
	poller_gauges(p);
	poller_run_soon(p);
}

/* Starts h's fetch on slot s. Returns 0, or -1 when the request cannot start (counted as a try). */
static int submit(struct poller *p, struct ds_slot *s, struct watch_hold *h, uint64_t now)
{
	struct ew *ew = p->ew;
	char url[1024];

	if (api_dataset_url(ew->cfg.api_base, h->dataset_id, url, sizeof(url)) < 0)
		return -1;
	snprintf(s->job_id, sizeof(s->job_id), "%s", h->job_id);
	struct http_opts o = poller_api_opts(ew);
	http_req_set(s->req, url, p->headers, NULL, 0, &o);
	/* The answer comes by the deadline: a request never outlives the event's wait. */
	uint64_t left = h->deadline > now ? h->deadline - now : 0;
	uint64_t t = left < ew->cfg.request_timeout_ms ? left : ew->cfg.request_timeout_ms;
	if (http_submit(s->req, (long)(t < 100 ? 100 : t), on_done, s) < 0)
		return -1;
	s->busy = true;
	h->fetch.in_flight = true;
	ew->m.dataset_fetches++;
	return 0;
}

/* The first hold whose fetch is due at now, or NULL; *ret_wait as datasets_due says. */
static struct watch_hold *first_due(struct poller *p, uint64_t now, uint64_t *ret_wait)
{
	struct ew *ew = p->ew;
	*ret_wait = UINT64_MAX;
	for (size_t i = 0; i < watch_v2_hold_count(ew->v2); i++) {
		struct watch_hold *h = watch_v2_hold_at(ew->v2, i);
		if (h->fetch.in_flight)
			continue;
		if (now < h->fetch.next_try) {
			if (h->fetch.next_try - now < *ret_wait)
				*ret_wait = h->fetch.next_try - now;
			continue;
		}
		return h;
	}
	return NULL;
}

static struct ds_slot *free_slot(struct poller *p)
{
	for (int k = 0; k < DATASETS_SLOTS; k++)
		if (!p->datasets->slots[k].busy)
			return &p->datasets->slots[k];
	return NULL;
}

bool datasets_due(struct poller *p, uint64_t now, uint64_t *ret_wait)
{
	if (!free_slot(p)) {
		*ret_wait = UINT64_MAX;         /* an answer frees a slot and runs the poller again */
		return false;
	}
	return first_due(p, now, ret_wait) != NULL;
}

void datasets_start(struct poller *p, uint64_t now)
{
	uint64_t w;
	struct watch_hold *h = first_due(p, now, &w);
	struct ds_slot *s = free_slot(p);
	if (!h || !s)
		return;
	if (submit(p, s, h, now) < 0)
		failed_try(p, h, "cannot start the request", now);     /* h may be gone */
}
