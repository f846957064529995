/*
 * Observation -> transition -> event. An observation (a poll's answer, a
 * control request, the daemon's own decision to end a job) changes the job
 * table and records the writes and marks in the turn record. Nothing here
 * dispatches: hooks, waiting clients and the poller hear of it from the
 * outbox after the commit.
 */
#ifndef EW_WATCH_H
#define EW_WATCH_H

#include <json-c/json.h>
#include <stddef.h>

#include "api.h"
#include "ew.h"

/* Starts the retention timer. Returns 0 or a negative libuv error. */
int watch_init(struct ew *ew);
/*
 * Restores jobs and batches from the store and schedules the live ones (at
 * start-up, or when a standby takes over): done gets 0, or negative with a
 * message; it may be called before this returns.
 */
void watch_restore(struct ew *ew, void (*done)(int r, const char *err, void *arg), void *arg);
/* Watches id (valid) as an embed job, optionally in batch. Returns 1 new, 0 already watched, -EEXIST (another kind). */
int watch_add(struct ew *ew, const char *id, const char *batch);
/* The due queue of a job key: its account's number (0: cohere), -1 when that account is not configured. */
int watch_queue_of(const struct ew *ew, const char *key);
/* The same for a job of kind k; id is a key (provider.h), -EINVAL when its account is not configured. */
int watch_add_kind(struct ew *ew, const char *id, const char *batch, enum job_kind k);
/* Stops watching id. Returns 0 or -ENOENT. The job may be freed: drop pointers to it. */
int watch_remove(struct ew *ew, const char *id);
/*
 * A valid document of j's kind (body: the raw EmbedJob or Batch; aj its
 * kind-blind view): transition, event, records, next per-id poll time.
 * via_list: it came from a list sweep, which goes on observing the job, so
 * its per-id poll slows to a trickle.
 */
void watch_observed(struct ew *ew, struct job *j, const struct api_job *aj, const char *body, size_t len, bool via_list);
/*
 * The output dataset of a held complete observation (watch_v2.h) arrived
 * (dataset, borrowed), or was given up on (NULL, error says why): the held
 * observation becomes its transition and event, with data.output_dataset (or
 * null and output_dataset_error). A hold whose job is gone is dropped.
 */
void watch_dataset_result(struct ew *ew, const char *job_id, json_object *dataset, const char *error);
/*
 * The list showed j with the status it already has: the outcome of an
 * observation that changes nothing (seen time, interval, next per-id poll),
 * without parsing the entry. Returns false when the status differs (observe it).
 */
bool watch_seen_unchanged(struct ew *ew, struct job *j, enum job_status seen);
/* Watches an embed job found by discovery (marked so), in batch (or none). Returns it. */
struct job *watch_discovered(struct ew *ew, const char *id, const char *batch);
/*
 * The same for a job of kind k; NULL when id is watched as the other kind, or
 * when batch breaks the name rule (util_name_valid: the job is refused, said
 * once in the log and counted in discover_refused_name).
 */
struct job *watch_discovered_kind(struct ew *ew, const char *id, const char *batch, enum job_kind k);
/*
 * Records a cancel to send (expire: the daemon's, at max_age) and queues it
 * for the poller; one already requested (restored, or to retry) is queued again.
 */
void watch_cancel(struct ew *ew, struct job *j, bool expire);
/* The API's word on a cancel: accepted, or refused with why. */
void watch_cancel_result(struct ew *ew, struct job *j, bool accepted, const char *why);
/* The per-id poll interval of a job the list sweep observes. */
static inline uint64_t watch_trickle_ms(const struct ew *ew)
{
	return ew->cfg.interval_max_ms * 10;
}
/* Ends j with an event the daemon decides (expired, not_found, error); reason is said in the event. */
void watch_end(struct ew *ew, struct job *j, enum ew_event ev, const char *reason);
/* Forgets ended jobs older than retention, with their events and finished deliveries. */
void watch_prune(struct ew *ew);
/*
 * Records an operational event (hook.disabled, hook.enabled) about hook, whose
 * disable cycle began at since_ms; takes data. Planned and delivered like any
 * event, after the commit.
 */
void watch_hook_event(struct ew *ew, enum ew_event type, const char *hook, int64_t since_ms, json_object *data);
/* The config changed: the retention timer follows. */
void watch_reconfigure(struct ew *ew);
/* Closes the retention timer. */
void watch_close(struct ew *ew);

/* True when j's status is final. */
static inline bool watch_job_ended(const struct job *j)
{
	return job_status_ended((enum job_status)j->status);
}

#endif
