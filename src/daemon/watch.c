/*
 * The heart of the daemon: an observation of one EmbedJob becomes a
 * transition, a transition may become an event. Everything is recorded in
 * the turn record; the outbox writes it in one transaction and only then
 * tells hooks, waiting clients and the poller.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_v2.h"
#include "ew.h"
#include "job.h"
#include "jobtable.h"
#include "log.h"
#include "provider.h"
#include "sched.h"
#include "store.h"
#include "strmap.h"
#include "turn.h"
#include "util.h"
#include "watch.h"
#include "watch_v2.h"

static void batch_row(struct ew *ew, struct batch *b, const char *done_event)
{
	struct turn_row *p = turn_row(&ew->turn, TR_BATCH);
	p->subject = xstrdup(b->name);
	p->ts_ms = b->created_ms;
	if (done_event)
		snprintf(p->event_id, sizeof(p->event_id), "%s", done_event);
}

/* Records an event: {"type", "id", "timestamp", "data"}; takes data. Returns its row. */
static struct turn_row *emit(struct ew *ew, const char *subject, const char *id_subject, enum ew_event type,
			     const char *batch, const char *job_name, json_object *data)
{
	struct turn_row *p = turn_row(&ew->turn, TR_EVENT);
	char ts[40];

	p->type = type;
	p->ts_ms = util_wall_ms();
	job_event_id(id_subject, type, p->event_id);
	util_rfc3339(p->ts_ms, ts, sizeof(ts));
	json_object *ev = json_object_new_object();
	json_object_object_add(ev, "type", json_object_new_string(job_event_name(type)));
	json_object_object_add(ev, "id", json_object_new_string(p->event_id));
	json_object_object_add(ev, "timestamp", json_object_new_string(ts));
	json_object_object_add(ev, "data", data);
	p->text = xstrdup(json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(ev);
	p->subject = xstrdup(subject);
	p->batch = batch ? xstrdup(batch) : NULL;
	p->job_name = job_name ? xstrdup(job_name) : NULL;
	ew->m.events++;
	bool of_job = type != EV_BATCH_DONE && !job_event_is_hook(type);
	log_ctx(LOG_INFO, &((struct log_ctx){ .job_id = of_job ? subject : NULL, .hook = of_job ? NULL : job_event_is_hook(type) ? subject : NULL,
					      .event_id = p->event_id, .event = job_event_name(type) }),
		"event %s %s for %s %s", job_event_name(type), p->event_id,
		of_job ? "job" : type == EV_BATCH_DONE ? "batch" : "hook", subject);
	return p;
}

void watch_hook_event(struct ew *ew, enum ew_event type, const char *hook, int64_t since_ms, json_object *data)
{
	char subject[300];
	/* One id per disable/enable cycle: the cycle starts when the hook was disabled. */
	snprintf(subject, sizeof(subject), "hook:%s:%lld", hook, (long long)since_ms);
	emit(ew, hook, subject, type, NULL, NULL, data);
}

static void check_batch_done(struct ew *ew, struct batch *b)
{
	if (!b || b->fired || b->n_jobs == 0 || b->n_ended < b->n_jobs)
		return;
	b->fired = 1;
	json_object *data = json_object_new_object();
	json_object *counts = json_object_new_object();
	json_object *jobs = json_object_new_array();
	json_object_object_add(data, "batch", json_object_new_string(b->name));
	json_object_object_add(data, "total", json_object_new_int64(b->n_jobs));
	for (int s = 0; s < JOB__MAX; s++)
		if (job_status_ended((enum job_status)s))
			json_object_object_add(counts, job_status_name((enum job_status)s), json_object_new_int64(b->counts[s]));
	json_object_object_add(data, "counts", counts);
	int64_t kinds[JOB_KIND__MAX] = { 0 };
	for (uint32_t i = 0; i < b->n_jobs; i++) {
		struct job *j = b->members[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "job_id", json_object_new_string(j->id));
		json_object_object_add(o, "status", json_object_new_string(job_status_name((enum job_status)j->status)));
		/* A group may mix both kinds; the counts above are kind-blind. */
		json_object_object_add(o, "kind", json_object_new_string(job_kind_name((enum job_kind)j->kind)));
		json_object_array_add(jobs, o);
		kinds[j->kind < JOB_KIND__MAX ? j->kind : 0]++;
	}
	json_object *by_kind = json_object_new_object();
	for (int k = 0; k < JOB_KIND__MAX; k++)
		json_object_object_add(by_kind, job_kind_name((enum job_kind)k), json_object_new_int64(kinds[k]));
	json_object_object_add(data, "kinds", by_kind);
	json_object_object_add(data, "jobs", jobs);
	char subject[300];
	snprintf(subject, sizeof(subject), "batch:%s", b->name);
	struct turn_row *ev = emit(ew, b->name, subject, EV_BATCH_DONE, b->name, NULL, data);
	batch_row(ew, b, ev->event_id);
}

/* Records that j ended: waits may be satisfied after the commit. */
static void job_ended(struct ew *ew, struct job *j)
{
	jobtable_unschedule(&ew->jobs, j);
	ew->turn.ended = true;
	check_batch_done(ew, j->batch);
}

static void set_status(struct ew *ew, struct job *j, enum job_status st)
{
	if (j->kind == JOB_KIND_BATCH)
		watch_v2_status(ew->v2, j->id, (enum job_status)j->status, st);
	jobtable_set_status(&ew->jobs, j, st);
	j->updated_ms = util_wall_ms();
	j->warned &= (uint8_t)~JW_STALLED;
	ew->m.transitions++;
	turn_touch(&ew->turn, j);
}

/*
 * The next per-id poll: after interval (jittered), or a trickle when the list
 * sweep observes the job. A job whose poll is in flight is left to that poll's answer.
 */
static void schedule_next(struct ew *ew, struct job *j, bool via_list)
{
	/* An ended job is never polled again: a late answer (a poll in flight when the sweep saw the end) stops here. */
	if (watch_job_ended(j))
		return;
	if (j->heap_idx == JOB_NOT_QUEUED && (j->flags & JF_IN_FLIGHT))
		return;
	uint64_t d = via_list ? watch_trickle_ms(ew) : j->interval;
	jobtable_schedule(&ew->jobs, j, ew_now(ew) + sched_jitter(d, ew->cfg.jitter, util_rand_unit()));
}

/* What any answer about j does, changed or not: when and whence it was seen; error runs are over. */
static void note_seen(struct job *j, bool via_list)
{
	j->seen_ms = util_wall_ms();
	if (via_list)
		j->flags |= JF_VIA_LIST;
	else
		j->flags &= (uint8_t)~JF_VIA_LIST;
	job_error_reset(&j->err);
	j->fail_run = 0;
}

/* An answer that changed nothing: nothing to write, nothing to log; the interval grows. */
static void unchanged(struct ew *ew, struct job *j, bool via_list)
{
	j->interval = (uint32_t)sched_grow(j->interval, ew->cfg.backoff, ew->cfg.interval_min_ms, ew->cfg.interval_max_ms);
	schedule_next(ew, j, via_list);
}

/* The fields every event about j carries besides its document: kind, previous_status, batch. */
static void job_fields(struct ew *ew, json_object *data, const struct job *j, enum job_status prev)
{
	char account[40];
	if (provider_key_account(j->id, account, sizeof(account)) < 0)
		snprintf(account, sizeof(account), "cohere");
	int a = config_account_find(&ew->cfg, account);
	json_object_object_add(data, "provider", json_object_new_string(
		a > 0 ? provider_name((enum provider)ew->cfg.accounts[a - 1].provider) : a == 0 ? "cohere" : "unknown"));
	json_object_object_add(data, "account", json_object_new_string(account));
	json_object_object_add(data, "kind", json_object_new_string(job_kind_name((enum job_kind)j->kind)));
	json_object_object_add(data, "previous_status", json_object_new_string(job_status_name(prev)));
	json_object_object_add(data, "batch", j->batch ? json_object_new_string(j->batch->name) : NULL);
}

/* The document of an observation as an event's data: the object as the API returned it. */
static json_object *doc_data(const char *doc)
{
	json_object *data = json_tokener_parse(doc);
	if (!json_object_is_type(data, json_type_object)) {
		json_object_put(data);
		data = json_object_new_object();
	}
	return data;
}

/* How long a job of j's account may stay unmoved before *.stalled; 0: never. */
static uint64_t stall_after(const struct ew *ew, const struct job *j)
{
	if (j->queue && j->queue <= ew->cfg.n_accounts)
		return ew->cfg.accounts[j->queue - 1].stall_after_ms;
	return j->queue ? 0 : ew->cfg.stall_after_ms;
}

/*
 * The opt-in warnings about a job that has not ended, each said once: nothing
 * moved (status or records) for stall_after, and the provider's own deadline
 * (expires_at) is within its account's "expiring". A stall announced once is
 * announced again only after the job moved; the event's id is the job's and
 * the time it last moved, so a restart does not say it twice.
 */
static void warnings(struct ew *ew, struct job *j, const struct api_job *aj, const char *body)
{
	int64_t now = util_wall_ms();
	uint64_t stall = stall_after(ew, j);
	uint64_t expiring = j->queue && j->queue <= ew->cfg.n_accounts ? ew->cfg.accounts[j->queue - 1].expiring_ms : 0;
	char subject[API_ID_MAX + 64];

	if (watch_job_ended(j) || job_status_ended(aj->status))
		return;
	if (stall && !(j->warned & JW_STALLED) && now - j->updated_ms >= (int64_t)stall) {
		j->warned |= JW_STALLED;
		snprintf(subject, sizeof(subject), "%s/stalled/%lld", j->id, (long long)j->updated_ms);
		json_object *data = doc_data(body);
		job_fields(ew, data, j, (enum job_status)j->status);
		char t[40];
		util_rfc3339(j->updated_ms, t, sizeof(t));
		json_object_object_add(data, "last_moved", json_object_new_string(t));
		json_object_object_add(data, "stalled_for_s", json_object_new_int64((now - j->updated_ms) / 1000));
		log_job(LOG_WARNING, j->id, "job %s: status and records have not moved since %s", j->id, t);
		emit(ew, j->id, subject, job_event_of_kind(EV_STALLED, (enum job_kind)j->kind),
		     j->batch ? j->batch->name : NULL, aj->name, data);
	}
	if (expiring && aj->expires_at > 0 && !(j->warned & JW_EXPIRING) && now >= aj->expires_at * 1000 - (int64_t)expiring) {
		j->warned |= JW_EXPIRING;
		snprintf(subject, sizeof(subject), "%s/expiring/%lld", j->id, (long long)aj->expires_at);
		json_object *data = doc_data(body);
		job_fields(ew, data, j, (enum job_status)j->status);
		json_object_object_add(data, "expires_in_s", json_object_new_int64(aj->expires_at - now / 1000));
		log_job(LOG_WARNING, j->id, "job %s: the provider ends it unfinished in %lld s", j->id,
			(long long)(aj->expires_at - now / 1000));
		emit(ew, j->id, subject, EV_BJ_EXPIRING, j->batch ? j->batch->name : NULL, aj->name, data);
	}
}

/*
 * A batch job's records: kept in the register, and with progress_every a
 * batch_job.progress event each time they pass another step (once per step:
 * its id is the job's and the step's). An ended job's event says the rest.
 */
static void progress(struct ew *ew, struct job *j, const struct api_job *aj, const char *body, size_t len)
{
	struct watch_records *r = j->kind == JOB_KIND_BATCH ? watch_v2_get(ew->v2, j->id) : NULL;
	unsigned every = ew->cfg.progress_every_pct;
	if (!r || !watch_v2_records(ew->v2, r, aj))
		return;
	/* Records moved: the job is not stalled (kept in the state when stalls are watched for). */
	j->warned &= (uint8_t)~JW_STALLED;
	if (stall_after(ew, j)) {
		j->updated_ms = util_wall_ms();
		turn_touch(&ew->turn, j);
	}
	if (!every)
		return;
	int pct = api_records_percent(aj);
	int step = pct < 0 ? 0 : pct / (int)every * (int)every;
	if (step <= r->step)
		return;
	r->step = step;
	if (job_status_ended(aj->status) || watch_job_ended(j))
		return;
	char subject[API_ID_MAX + 32];
	snprintf(subject, sizeof(subject), "%s/progress/%d", j->id, step);
	json_object *data = doc_data(body);
	job_fields(ew, data, j, (enum job_status)j->status);
	json_object *p = json_object_new_object();
	json_object_object_add(p, "percent", json_object_new_int(pct));
	json_object_object_add(p, "step", json_object_new_int(step));
	json_object_object_add(p, "num_records", json_object_new_int64(aj->num_records));
	json_object_object_add(p, "num_successful_records", json_object_new_int64(aj->num_successful));
	json_object_object_add(p, "num_failed_records", json_object_new_int64(aj->num_failed));
	json_object_object_add(data, "progress", p);
	emit(ew, j->id, subject, EV_BJ_PROGRESS, j->batch ? j->batch->name : NULL, aj->name, data);
	/* The document too: a restart knows which step was announced. */
	struct turn_row *snap = turn_row(&ew->turn, TR_SNAPSHOT);
	snap->subject = xstrdup(j->id);
	snap->text = xstrndup(body, len);
}

/* What a held completion came back with: the dataset, or why there is none. */
struct enrich {
	json_object *dataset;       /* borrowed; NULL: none */
	const char *error;
	int64_t seen_before_ms;
};

/*
 * A complete event waits for its output dataset: the observation is held, not
 * applied, so the event is recorded with the dataset in one turn with its
 * delivery rows (a crash before then repeats the observation, not the event).
 * The job leaves the poll heap meanwhile; the poller fetches after the commit.
 * Returns false when there is nothing to fetch (*ret says why).
 */
static bool hold(struct ew *ew, struct job *j, const struct api_job *aj, const char *body, size_t len, bool via_list,
		 int64_t seen_before, struct enrich *ret)
{
	if (!aj->output_dataset_id || !api_id_valid(aj->output_dataset_id)) {
		ret->error = aj->output_dataset_id ? "output_dataset_id is not a valid id" : "the job names no output_dataset_id";
		ret->seen_before_ms = seen_before;
		return false;
	}
	struct watch_hold *h = watch_v2_hold(ew->v2, j->id, (enum job_kind)j->kind, aj->output_dataset_id, body, len,
					     via_list, ew_now(ew) + ew->cfg.dataset_timeout_ms);
	h->seen_before_ms = seen_before;
	jobtable_unschedule(&ew->jobs, j);
	ew->turn.kick = true;
	log_job(LOG_DEBUG, j->id, "job %s: complete; fetching its output dataset %s before the event", j->id,
		aj->output_dataset_id);
	return true;
}

static void observe(struct ew *ew, struct job *j, const struct api_job *aj, const char *body, size_t len, bool via_list,
		    const struct enrich *en);

void watch_observed(struct ew *ew, struct job *j, const struct api_job *aj, const char *body, size_t len, bool via_list)
{
	observe(ew, j, aj, body, len, via_list, NULL);
}

void watch_dataset_result(struct ew *ew, const char *job_id, json_object *dataset, const char *error)
{
	struct watch_hold *h = watch_v2_held(ew->v2, job_id);
	struct job *j = jobtable_get(&ew->jobs, job_id);
	struct api_obs o;
	char err[256];

	if (!h)
		return;
	if (j && !watch_job_ended(j) && j->kind == h->kind &&
	    api_kind_parse_doc((enum job_kind)h->kind, h->doc, h->doc_len, &o, err, sizeof(err)) == 0) {
		struct enrich en = { .dataset = dataset, .error = error, .seen_before_ms = h->seen_before_ms };
		if (!dataset)
			log_job(LOG_WARNING, j->id, "job %s: its complete event goes out without the output dataset %s: %s",
				j->id, h->dataset_id, error);
		/* The observation as it was held: the same transition, now with the dataset. */
		note_seen(j, h->via_list);
		char *doc = h->doc;
		size_t doc_len = h->doc_len;
		bool via_list = h->via_list;
		h->doc = NULL;
		watch_v2_unhold(ew->v2, job_id);
		observe(ew, j, &o.job, doc, doc_len, via_list, &en);
		free(doc);
		api_obs_clear(&o);
		return;
	}
	uint8_t kind = h->kind;
	watch_v2_unhold(ew->v2, job_id);
	/* Not applied (its document no longer parses): the job is looked at again, not left unpolled. */
	if (j && !watch_job_ended(j) && j->kind == kind) {
		jobtable_schedule(&ew->jobs, j, ew_now(ew));
		ew->turn.kick = true;
	}
}

static void observe(struct ew *ew, struct job *j, const struct api_job *aj, const char *body, size_t len, bool via_list,
		    const struct enrich *en)
{
	enum job_status prev = (enum job_status)j->status;
	bool changed;
	enum ew_event ev;
	struct enrich none = { 0 };

	int64_t prev_seen = en ? en->seen_before_ms : j->seen_ms;
	note_seen(j, via_list);
	if (!en && watch_v2_held(ew->v2, j->id)) {
		/* Its completion waits for the dataset: later answers change nothing meanwhile. */
		jobtable_unschedule(&ew->jobs, j);
		return;
	}
	if (aj->status == JOB_UNKNOWN && !(j->flags & JF_UNKNOWN_LOGGED)) {
		j->flags |= JF_UNKNOWN_LOGGED;
		log_job(LOG_WARNING, j->id, "job %s: unknown status \"%.64s\"; still watching", j->id, aj->status_raw);
	}
	ev = job_event_of_kind(job_transition(prev, aj->status, &changed), (enum job_kind)j->kind);
	/* Cohere's complete events carry the output dataset; other providers' documents say where theirs are. */
	if (!en && ew->cfg.datasets_fetch && j->queue == 0 && job_event_base(ev) == EV_COMPLETE) {
		if (hold(ew, j, aj, body, len, via_list, prev_seen, &none))
			return;
		en = &none;
	}
	if (!changed) {
		progress(ew, j, aj, body, len);
		warnings(ew, j, aj, body);
		unchanged(ew, j, via_list);
		return;
	}
	set_status(ew, j, aj->status);
	log_job(LOG_INFO, j->id, "job %s: %s -> %s", j->id, job_status_name(prev), job_status_name(aj->status));
	struct turn_row *snap = turn_row(&ew->turn, TR_SNAPSHOT);
	snap->subject = xstrdup(j->id);
	snap->text = xstrndup(body, len);
	progress(ew, j, aj, body, len);
	if (ev != EV_NONE) {
		json_object *data = doc_data(snap->text);
		job_fields(ew, data, j, prev);
		if (en) {
			/* The files of the result, for the hook: the point of the event (part URLs are signed links). */
			json_object_object_add(data, "output_dataset", en->dataset ? json_object_get(en->dataset) : NULL);
			if (!en->dataset)
				json_object_object_add(data, "output_dataset_error", json_object_new_string(en->error));
			if (en->dataset)
				ew->m.datasets_attached++;
			else
				ew->m.datasets_missing++;
		}
		struct turn_row *row = emit(ew, j->id, j->id, ev, j->batch ? j->batch->name : NULL, aj->name, data);
		if (!job_status_ended(prev) && prev != JOB_NONE)
			row->lag_from_ms = prev_seen;
	}
	if (watch_job_ended(j)) {
		job_ended(ew, j);
		return;
	}
	warnings(ew, j, aj, body);
	j->interval = (uint32_t)ew->cfg.interval_min_ms;
	schedule_next(ew, j, via_list);
}

static void end_with(struct ew *ew, struct job *j, enum ew_event ev, const char *reason, const char *cancel);

/* The member naming a job in events the daemon writes itself: as its kind's documents name it. */
static const char *id_key(const struct job *j)
{
	return j->kind == JOB_KIND_BATCH ? "id" : "job_id";
}

void watch_end(struct ew *ew, struct job *j, enum ew_event ev, const char *reason)
{
	end_with(ew, j, ev, reason, NULL);
}

/* Ends j; cancel (or NULL) says what became of the daemon's cancel, for an expiry. */
static void end_with(struct ew *ew, struct job *j, enum ew_event ev, const char *reason, const char *cancel)
{
	enum job_status prev = (enum job_status)j->status;
	enum job_status st = job_event_end_status(ev);

	if (watch_job_ended(j) || st == JOB_NONE)
		return;
	ev = job_event_of_kind(ev, (enum job_kind)j->kind);
	set_status(ew, j, st);
	log_job(LOG_NOTICE, j->id, "job %s: %s -> %s: %s", j->id, job_status_name(prev), job_status_name(st), reason);
	json_object *data = json_object_new_object();
	json_object_object_add(data, id_key(j), json_object_new_string(provider_key_id(j->id)));
	json_object_object_add(data, "status", json_object_new_string(job_status_name(st)));
	json_object_object_add(data, "reason", json_object_new_string(reason));
	if (cancel)
		json_object_object_add(data, "cancel", json_object_new_string(cancel));
	job_fields(ew, data, j, prev);
	emit(ew, j->id, j->id, ev, j->batch ? j->batch->name : NULL, NULL, data);
	job_ended(ew, j);
}

bool watch_seen_unchanged(struct ew *ew, struct job *j, enum job_status seen)
{
	if (seen != (enum job_status)j->status || seen == JOB_UNKNOWN || j->status == JOB_NONE)
		return false;
	note_seen(j, true);
	unchanged(ew, j, true);
	return true;
}

struct job *watch_discovered(struct ew *ew, const char *id, const char *batch)
{
	return watch_discovered_kind(ew, id, batch, JOB_KIND_EMBED);
}

/* Ids refused for their batch name that are remembered (so each is logged and counted once); past it, forgotten. */
#define REFUSED_MAX 10000

static void free_refused(const char *k, void *v, void *arg)
{
	free(v);
}

static void refused_clear(struct strmap *m)
{
	strmap_each(m, free_refused, NULL);
	strmap_free(m);
}

/*
 * A batch name from the API obeys the control socket's rule (util_name_valid)
 * before it is stored, put into a hook's environment or printed: a job whose
 * discovery rule gives another name is not watched, said once (the log
 * escapes the name) and counted.
 */
static bool discovered_name_ok(struct ew *ew, const char *id, const char *batch)
{
	if (!batch || util_name_valid(batch))
		return true;
	if (!ew->refused)
		ew->refused = xcalloc(1, sizeof(*ew->refused));
	if (strmap_get(ew->refused, id))
		return false;
	if (ew->refused->len >= REFUSED_MAX)
		refused_clear(ew->refused);
	char *k = xstrdup(id);
	strmap_put(ew->refused, k, k);
	ew->m.discover_refused_name++;
	log_job(LOG_WARNING, id, "job %s not discovered: its batch name \"%s\" is not 1 to 128 printable characters "
		"(UTF-8, no control characters)", id, batch);
	return false;
}

struct job *watch_discovered_kind(struct ew *ew, const char *id, const char *batch, enum job_kind kind)
{
	if (!discovered_name_ok(ew, id, batch))
		return NULL;
	if (watch_add_kind(ew, id, batch, kind) < 0)
		return NULL;
	struct job *j = jobtable_get(&ew->jobs, id);
	if (j && !(j->flags & JF_DISCOVERED)) {
		j->flags |= JF_DISCOVERED;
		turn_touch(&ew->turn, j);
		log_job(LOG_INFO, id, "job %s discovered in the list%s%s", id, batch ? ", batch " : "", batch ? batch : "");
	}
	return j;
}

void watch_cancel(struct ew *ew, struct job *j, bool expire)
{
	if (j->cancel == CANCEL_ACCEPTED)
		return;
	/* A cancel already requested (restored after a restart, or to be retried) is only queued again. */
	if (j->cancel != CANCEL_REQUESTED) {
		j->cancel = CANCEL_REQUESTED;
		j->cancel_expire = expire;
		turn_touch(&ew->turn, j);
	}
	jobtable_cancel_push(&ew->jobs, j);
	ew->turn.kick = true;
}

void watch_cancel_result(struct ew *ew, struct job *j, bool accepted, const char *why)
{
	j->cancel = accepted ? CANCEL_ACCEPTED : CANCEL_REFUSED;
	turn_touch(&ew->turn, j);
	log_job(accepted ? LOG_NOTICE : LOG_WARNING, j->id, "job %s: cancel %s%s%s", j->id,
		accepted ? "accepted" : "refused", why ? ": " : "", why ? why : "");
	if (j->cancel_expire && !watch_job_ended(j)) {
		if (accepted) {
			/* Expired and cancelled: the event says so now; the job is watched on to cancelled. */
			json_object *data = json_object_new_object();
			json_object_object_add(data, id_key(j), json_object_new_string(provider_key_id(j->id)));
			json_object_object_add(data, "status", json_object_new_string(job_status_name((enum job_status)j->status)));
			json_object_object_add(data, "reason", json_object_new_string("watched longer than max_age"));
			json_object_object_add(data, "cancel", json_object_new_string("accepted"));
			job_fields(ew, data, j, (enum job_status)j->status);
			emit(ew, j->id, j->id, job_event_of_kind(EV_EXPIRED, (enum job_kind)j->kind), j->batch ? j->batch->name : NULL,
			     NULL, data);
		} else {
			char c[300];
			snprintf(c, sizeof(c), "refused: %s", why ? why : "");
			end_with(ew, j, EV_EXPIRED, "watched longer than max_age", c);
			return;
		}
	}
	/* Look soon: cancelling, then cancelled. */
	if (!watch_job_ended(j) && !(j->flags & JF_IN_FLIGHT))
		jobtable_schedule(&ew->jobs, j, ew_now(ew));
}

int watch_add(struct ew *ew, const char *id, const char *batch)
{
	return watch_add_kind(ew, id, batch, JOB_KIND_EMBED);
}

int watch_queue_of(const struct ew *ew, const char *key)
{
	char account[40];
	if (provider_key_account(key, account, sizeof(account)) < 0)
		return -1;
	return config_account_find(&ew->cfg, account);
}

int watch_add_kind(struct ew *ew, const char *id, const char *batch, enum job_kind kind)
{
	struct job *j = jobtable_get(&ew->jobs, id);
	struct batch *b = NULL;
	int q = watch_queue_of(ew, id);

	if (q < 0)
		return -EINVAL;

	/* One id, one kind: the same id as the other kind is refused, not merged. */
	if (j && j->kind != kind)
		return -EEXIST;

	if (batch) {
		b = jobtable_get_batch(&ew->jobs, batch);
		if (!b) {
			b = jobtable_batch(&ew->jobs, batch, util_wall_ms());
			batch_row(ew, b, NULL);
		}
	}
	if (j) {
		/* Watching again may move the job to another batch; never resets it. */
		if (b && j->batch != b) {
			struct batch *old = j->batch;
			jobtable_join(&ew->jobs, j, b);
			turn_touch(&ew->turn, j);
			check_batch_done(ew, old);
			if (watch_job_ended(j))
				check_batch_done(ew, b);
		}
		return 0;
	}
	j = jobtable_new_job(id);
	j->added_ms = j->updated_ms = util_wall_ms();
	j->interval = (uint32_t)ew->cfg.interval_min_ms;
	j->kind = (uint8_t)kind;
	j->queue = (uint8_t)q;
	jobtable_add(&ew->jobs, j);
	if (b)
		jobtable_join(&ew->jobs, j, b);
	turn_touch(&ew->turn, j);
	if (kind == JOB_KIND_BATCH)
		watch_v2_add(ew->v2, j->id, JOB_NONE);
	if (q > 0) {
		/* Another provider's account: its own queue, its first look now (its list sweep reads what is there). */
		jobtable_schedule(&ew->jobs, j, ew_now(ew));
	} else if (jobtable_listed(&ew->jobs, kind)) {
		/*
		 * First look right after watch. While the list sweep of its kind
		 * works, that sweep is brought forward instead and decides what is
		 * cheaper for the jobs it has not seen (one read of every page, or a
		 * poll each: it makes them due); the per-id poll here is the fallback
		 * should that sweep fail. The poller hears of it after the commit.
		 */
		ew->turn.sweep |= TURN_SWEEP(kind);
		jobtable_schedule(&ew->jobs, j, ew_now(ew) + ew->cfg.request_timeout_ms + ew->cfg.sweep_interval_ms);
	} else {
		jobtable_schedule(&ew->jobs, j, ew_now(ew));
	}
	ew->turn.kick = true;
	return 1;
}

int watch_remove(struct ew *ew, const char *id)
{
	struct job *j = jobtable_get(&ew->jobs, id);
	struct batch *b;

	if (!j)
		return -ENOENT;
	b = j->batch;
	if (j->kind == JOB_KIND_BATCH)
		watch_v2_remove(ew->v2, id, (enum job_status)j->status);
	watch_v2_unhold(ew->v2, id);
	/* The delete is written before the job rows of the turn: a watch again in the same turn wins. */
	turn_row(&ew->turn, TR_DELETE)->subject = xstrdup(id);
	jobtable_remove(&ew->jobs, j);
	ew->turn.ended = true;
	check_batch_done(ew, b);
	return 0;
}

struct prune_ctx {
	int64_t before;
	struct job **jobs;
	size_t n_jobs, cap_jobs;
	struct batch **batches;
	size_t n_batches, cap_batches;
};

static void prune_pick(const char *k, void *v, void *arg)
{
	struct prune_ctx *x = arg;
	struct job *j = v;
	if (!watch_job_ended(j) || j->updated_ms >= x->before || (j->flags & JF_IN_FLIGHT))
		return;
	if (x->n_jobs == x->cap_jobs) {
		x->cap_jobs = x->cap_jobs ? x->cap_jobs * 2 : 256;
		x->jobs = xrealloc(x->jobs, x->cap_jobs * sizeof(*x->jobs));
	}
	x->jobs[x->n_jobs++] = j;
}

static void prune_pick_batch(const char *k, void *v, void *arg)
{
	struct prune_ctx *x = arg;
	struct batch *b = v;
	if (!b->fired || b->n_jobs != 0)
		return;
	if (x->n_batches == x->cap_batches) {
		x->cap_batches = x->cap_batches ? x->cap_batches * 2 : 16;
		x->batches = xrealloc(x->batches, x->cap_batches * sizeof(*x->batches));
	}
	x->batches[x->n_batches++] = b;
}

void watch_prune(struct ew *ew)
{
	struct prune_ctx x = { 0 };
	int64_t now = util_wall_ms();
	if (!ew->cfg.retention_ms && !ew->cfg.delivery_retention_ms)
		return;
	/* Only the active writes the state (a standby holds no jobs; one taking over holds only some yet). */
	if (!jobtable_active(&ew->jobs))
		return;
	/* A retention of 0 keeps that kind forever. */
	x.before = ew->cfg.retention_ms ? now - (int64_t)ew->cfg.retention_ms : INT64_MIN;
	/* Collect first: the maps must not change while they are walked. */
	strmap_each(&ew->jobs.jobs, prune_pick, &x);
	for (size_t i = 0; i < x.n_jobs; i++)
		watch_remove(ew, x.jobs[i]->id);
	/* Fired batches left without jobs go too. */
	strmap_each(&ew->jobs.batches, prune_pick_batch, &x);
	for (size_t i = 0; i < x.n_batches; i++)
		jobtable_drop_batch(&ew->jobs, x.batches[i]);
	free(x.jobs);
	free(x.batches);
	struct turn_row *pr = turn_row(&ew->turn, TR_PRUNE);
	pr->ts_ms = x.before;
	pr->deliveries_before_ms = ew->cfg.delivery_retention_ms ? now - (int64_t)ew->cfg.delivery_retention_ms : INT64_MIN;
	if (x.n_jobs)
		log_msg(LOG_INFO, "forgot %zu jobs that ended more than %llu s ago (retention)", x.n_jobs,
			(unsigned long long)(ew->cfg.retention_ms / 1000));
}

static void on_prune_timer(uv_timer_t *t)
{
	watch_prune(t->data);
}

int watch_init(struct ew *ew)
{
	ew->v2 = watch_v2_new(&ew->m);
	int r = uv_timer_init(ew->loop, &ew->prune_timer);
	if (r < 0)
		return r;
	ew->prune_timer.data = ew;
	watch_reconfigure(ew);
	return 0;
}

/* After a reload: each job goes to its account's queue as the configuration numbers them now. */
static void requeue(const char *k, void *v, void *arg)
{
	struct ew *ew = arg;
	struct job *j = v;
	(void)k;
	int q = watch_queue_of(ew, j->id);
	if (watch_job_ended(j) || (j->flags & JF_IN_FLIGHT) || (q == (int)j->queue && (q == 0 || j->heap_idx != JOB_NOT_QUEUED)))
		return;
	jobtable_unschedule(&ew->jobs, j);
	if (q < 0) {
		log_job(LOG_WARNING, j->id, "job %s: its account is no longer in the configuration; not polled until it is",
			provider_key_id(j->id));
		return;
	}
	j->queue = (uint8_t)q;
	jobtable_schedule(&ew->jobs, j, ew_now(ew));
}

void watch_reconfigure(struct ew *ew)
{
	strmap_each(&ew->jobs.jobs, requeue, ew);
	/* Look for what to forget every minute, or at half the shorter retention when that is shorter. */
	uint64_t shortest = ew->cfg.retention_ms;
	if (ew->cfg.delivery_retention_ms && (!shortest || ew->cfg.delivery_retention_ms < shortest))
		shortest = ew->cfg.delivery_retention_ms;
	uint64_t every = shortest / 2;
	if (every > 60000)
		every = 60000;
	if (every < 100)
		every = 100;
	if (shortest)
		UV_CHECK(uv_timer_start(&ew->prune_timer, on_prune_timer, every, every));
	else
		uv_timer_stop(&ew->prune_timer);
}

/* A batch job's records and announced progress step, from its last document. */
/*
 * A restored batch job is registered without its records: the next
 * observation brings them (show reads an ended job's from its document). No
 * read of the store here: restore stays one pass over the job rows. A
 * progress step announced before the restart may be announced again then:
 * its event id is the same, so the store keeps the first and nothing is
 * delivered twice.
 */
static void restore_records(struct ew *ew, struct job *j)
{
	watch_v2_add(ew->v2, j->id, (enum job_status)j->status);
}

static int restore_job(const struct store_job *sj, void *arg)
{
	struct ew *ew = arg;
	char account[40];
	if (provider_key_account(sj->id, account, sizeof(account)) < 0 || sj->status < 0 || sj->status >= JOB__MAX ||
	    sj->kind < 0 || sj->kind >= JOB_KIND__MAX) {
		log_msg(LOG_WARNING, "state database: skipping a job row with a bad id, status or kind");
		return 0;
	}
	int q = config_account_find(&ew->cfg, account);
	struct job *j = jobtable_new_job(sj->id);
	j->queue = q > 0 ? (uint8_t)q : 0;
	j->status = (uint8_t)sj->status;
	j->kind = (uint8_t)sj->kind;
	if (j->kind == JOB_KIND_BATCH)
		restore_records(ew, j);
	j->added_ms = sj->added_ms;
	j->updated_ms = sj->updated_ms;
	j->err.kind = (uint8_t)sj->err_kind;
	j->err.count = (uint8_t)sj->err_count;
	if (sj->discovered)
		j->flags |= JF_DISCOVERED;
	j->cancel = (uint8_t)(sj->cancel & 7);
	j->cancel_expire = (sj->cancel & 8) != 0;
	j->interval = (uint32_t)ew->cfg.interval_min_ms;
	jobtable_add(&ew->jobs, j);
	if (sj->batch)
		jobtable_join(&ew->jobs, j, jobtable_batch(&ew->jobs, sj->batch, sj->added_ms));
	if (j->cancel == CANCEL_REQUESTED)
		watch_cancel(ew, j, j->cancel_expire);    /* not sent before the restart: send it now */
	if (q < 0 && !watch_job_ended(j)) {
		/* Kept, never lost: watched again once its account is back in the configuration (a reload). */
		log_job(LOG_WARNING, j->id, "job %s: account %s is not in the configuration; not polled until it is",
			provider_key_id(j->id), account);
	} else if (!watch_job_ended(j)) {
		/* Spread the first polls after a restart over the minimum interval. */
		jobtable_schedule(&ew->jobs, j, ew_now(ew) + (uint64_t)(util_rand_unit() * (double)ew->cfg.interval_min_ms));
	}
	return 0;
}

static int restore_batch(const char *name, const char *done_event, void *arg)
{
	struct ew *ew = arg;
	struct batch *b = jobtable_batch(&ew->jobs, name, util_wall_ms());
	b->fired = done_event != NULL;
	return 0;
}

static void recheck_batch(const char *k, void *v, void *arg)
{
	check_batch_done(arg, v);
}

struct restore_ctx {
	struct ew *ew;
	void (*done)(int r, const char *err, void *arg);
	void *arg;
};

static void restore_end(struct restore_ctx *x, int r)
{
	char err[1024] = "";
	if (r < 0)
		snprintf(err, sizeof(err), "cannot read the state database: %s",
			 r == -ECANCELED ? "stopping" : store_error(x->ew->store));
	x->done(r, err, x->arg);
	free(x);
}

static int restore_job_row(const struct store_job *sj, void *arg)
{
	return restore_job(sj, ((struct restore_ctx *)arg)->ew);
}

static void restored_jobs(int r, void *arg)
{
	struct restore_ctx *x = arg;
	/* A batch whose last job ended just before a crash that lost its batch.done. */
	if (r == 0)
		strmap_each(&x->ew->jobs.batches, recheck_batch, x->ew);
	restore_end(x, r);
}

static int restore_batch_row(const char *name, const char *done_event, void *arg)
{
	return restore_batch(name, done_event, ((struct restore_ctx *)arg)->ew);
}

static void restored_batches(int r, void *arg)
{
	struct restore_ctx *x = arg;
	if (r < 0) {
		restore_end(x, r);
		return;
	}
	store_each_job(x->ew->store, NULL, restore_job_row, restored_jobs, x);
}

void watch_restore(struct ew *ew, void (*done)(int r, const char *err, void *arg), void *arg)
{
	struct restore_ctx *x = xcalloc(1, sizeof(*x));
	x->ew = ew;
	x->done = done;
	x->arg = arg;
	store_each_batch(ew->store, restore_batch_row, restored_batches, x);
}

void watch_close(struct ew *ew)
{
	watch_v2_free(ew->v2);
	ew->v2 = NULL;
	if (ew->refused)
		refused_clear(ew->refused);
	free(ew->refused);
	ew->refused = NULL;
	uv_close((uv_handle_t *)&ew->prune_timer, NULL);
}
