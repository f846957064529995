/*
 * The daemon's context: one struct ew per process, handed to every module.
 * One thread, the libuv loop; every arrow between modules is a call.
 */
#ifndef EW_EW_H
#define EW_EW_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "jobtable.h"
#include "sched.h"
#include "store.h"
#include "strmap.h"

struct ew;

/* ---- poller.c: sched + http + api ---- */
enum pause_reason { PAUSE_NONE = 0, PAUSE_THROTTLED, PAUSE_AUTH, PAUSE_BAD_BASE };

struct poll_slot;

struct poller {
	struct ew *ew;
	uv_timer_t timer;
	struct sched_bucket bucket;
	struct poll_slot *slots;
	struct poll_slot *free_slots;
	unsigned n_slots;
	unsigned in_flight;
	struct curl_slist *headers;
	struct curl_slist **retired;     /* header lists of earlier keys, freed at exit */
	size_t n_retired;
	enum pause_reason pause;
	uint64_t paused_until;           /* loop ms */
	unsigned throttle_run;
	bool stopped;
	uint64_t transient_window_start;
	unsigned transient_in_window;
	struct strmap warnings;          /* API warnings already logged */
};

int poller_init(struct poller *p, struct ew *ew);
/* Runs the scheduler soon (a 0 ms timer): after a watch, a completion, a resume. */
void poller_kick(struct poller *p);
/* Builds request headers from the current key and config (start and reload). */
void poller_configure(struct poller *p);
/* Resumes after a reload: clears an auth or base-URL pause. */
void poller_resume(struct poller *p);
/* Stops polling: cancels transfers in flight (their jobs stay due). */
void poller_stop(struct poller *p);
void poller_close(struct poller *p);

/* ---- hooks.c: events -> deliveries ---- */
struct hooks;
int hooks_init(struct ew *ew);
/* A committed new event: queue one delivery per hook whose `on` matches. */
void hooks_event(struct ew *ew, const char *event_id, enum ew_event type, const char *subject,
		 const char *batch, const char *payload);
/* A delivery restored from the state database. */
void hooks_restore(struct ew *ew, const struct store_delivery *d);
/* Queues a delivery again (redeliver); hook NULL: every hook of the event. */
int hooks_redeliver(struct ew *ew, const char *event_id, const char *hook, char *err, size_t errlen);
/* Writes the delivery changes of this turn into the open transaction. */
int hooks_flush(struct ew *ew);
/* Called after the transaction with those changes committed. */
void hooks_committed(struct ew *ew);
/* Loads every webhook secret of cfg without keeping them: a reload checks before it swaps. */
int hooks_check_secrets(const struct ew_config *cfg, char *err, size_t errlen);
/* The config was replaced: follow the hooks by name. */
void hooks_reconfigure(struct ew *ew);
/* Stop starting deliveries; running ones get the grace period, then are killed. */
void hooks_stop(struct ew *ew);
bool hooks_idle(struct ew *ew);
unsigned hooks_pending(struct ew *ew);
unsigned hooks_running(struct ew *ew);
void hooks_close(struct ew *ew);

/* ---- control.c: the control socket ---- */
struct control;
int control_init(struct ew *ew, char *err, size_t errlen);
/* A job ended (or was unwatched): answer the waits it completes. */
void control_job_ended(struct ew *ew, struct job *j);
void control_close(struct ew *ew);

/* ---- metrics ---- */
struct metrics {
	uint64_t polls;
	uint64_t poll_answers[8];        /* by enum api_class */
	uint64_t poll_errors;            /* no answer at all */
	uint64_t transitions;
	uint64_t events;
	uint64_t deliveries_ok;
	uint64_t deliveries_failed;
	uint64_t deliveries_dead;
	uint64_t commits;
	uint64_t commit_failures;
	uint64_t throttles;
	uint64_t start_ms;
};

/* ---- watch.c: observation -> transition -> event -> commit ---- */
struct pending;

struct ew {
	uv_loop_t *loop;
	struct ew_config cfg;
	char *config_path;
	char *api_key;
	struct store *store;
	struct jobtable jobs;
	struct http http;
	struct poller poller;
	struct hooks *hooks;
	struct control *control;
	struct metrics m;

	/* Writes waiting for the next commit. */
	struct job **dirty;
	size_t n_dirty, cap_dirty;
	struct pending *pend_head, *pend_tail;
	bool hooks_dirty;
	uv_prepare_t prepare;
	uv_check_t check;
	uv_timer_t store_retry;
	uv_timer_t prune_timer;
	bool store_failing;
	unsigned store_fail_run;
	uint64_t store_retry_at;

	bool stopping;
	bool ready;
};

int watch_init(struct ew *ew);
/* Restores jobs and batches from the store; schedules the live ones. */
int watch_restore(struct ew *ew, char *err, size_t errlen);
/* Watches id (valid), optionally in batch. Returns 1 new, 0 already watched. */
int watch_add(struct ew *ew, const char *id, const char *batch);
/* Stops watching id. Returns 0 or -ENOENT. */
int watch_remove(struct ew *ew, const char *id);
/* A 200 with a valid EmbedJob for j; body is the raw document. */
void watch_observed(struct ew *ew, struct job *j, const struct api_job *aj, const char *body, size_t len);
/* Ends j with an event the daemon decides (expired, not_found, error). */
void watch_end(struct ew *ew, struct job *j, enum ew_event ev, const char *reason);
/* Forgets ended jobs, events and finished deliveries older than retention. */
void watch_prune(struct ew *ew);
/* The config changed: retention timer. */
void watch_reconfigure(struct ew *ew);
/* Marks j to be written at the next commit. */
void watch_touch(struct ew *ew, struct job *j);
/* Commits everything pending now (also called at each loop turn). Returns 0 or negative. */
int watch_flush(struct ew *ew);
bool watch_pending(struct ew *ew);
void watch_close(struct ew *ew);
/* True when j's status is final. */
static inline bool watch_job_ended(const struct job *j)
{
	return job_status_ended((enum job_status)j->status);
}
/* The loop clock. */
static inline uint64_t ew_now(struct ew *ew)
{
	return uv_now(ew->loop);
}

/* ---- embedwatchd.c ---- */
/* Current STATUS= line for systemd and `status`. */
void ew_status_line(struct ew *ew, char *buf, size_t len);
/* Prometheus text of the counters and gauges. */
void ew_metrics_text(struct ew *ew, struct buf *b);

#endif
