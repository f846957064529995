/*
 * Hooks: each committed new event becomes one delivery per hook that takes
 * it. An attempt is claimed (its number written) in a commit before it
 * starts, so a crash mid-attempt still counts it. Attempts are retried with
 * backoff until they succeed or run out; every state change is recorded in
 * the turn record. Exec hooks run without a shell in their own process
 * group; webhooks are signed POSTs through the shared HTTP glue.
 */
#ifndef EW_HOOKS_H
#define EW_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ew.h"

struct store_delivery;

/* Sets up hook state and loads webhook secrets. Returns 0, or negative (logged). */
int hooks_init(struct ew *ew);
/*
 * The one place that decides which hooks take an event: fills ev->hooks with
 * their names. Called by the outbox inside the commit that writes the event.
 */
void hooks_plan(struct hooks *hs, struct turn_row *ev);
/*
 * After the commit of turn record gen: starts the attempts claimed in it or
 * before, then queues a delivery for each planned hook of each new event in
 * rows (borrowed).
 */
void hooks_dispatch(struct ew *ew, const struct turn_row *rows, uint64_t gen);
/*
 * Loads the hooks' state and the pending deliveries from the store (at
 * start-up, or when a standby takes over): done gets 0, or negative with a
 * message; it may be called before this returns.
 */
void hooks_restore(struct ew *ew, void (*done)(int r, const char *err, void *arg), void *arg);
/*
 * Queues an event (read from the state) again for hook (NULL: every hook
 * that takes it). done gets the number queued, or negative with err (unknown
 * event or hook, or "already pending" when that delivery is still queued or
 * running); it may be called before this returns.
 */
void hooks_redeliver(struct ew *ew, const char *event_id, const char *hook, void (*done)(int n, const char *err, void *arg),
		     void *arg);

/* Which dead deliveries a replay takes: NULL/0 fields match everything. */
struct hooks_replay {
	const char *hook;
	int64_t since_ms;           /* died at or after */
	const char *event;          /* event type name */
};
/*
 * Queues every matching dead delivery again, oldest event first, with its
 * original event id. done gets how many were queued (skipped: matches whose
 * hook the config no longer has, or that are queued already), or negative
 * with err; it may be called before this returns.
 */
void hooks_redeliver_dead(struct ew *ew, const struct hooks_replay *f,
			  void (*done)(int n, unsigned skipped, const char *err, void *arg), void *arg);

/* One configured hook as operators see it (strings borrowed for the call). */
struct hooks_info {
	const char *name, *type;
	int64_t disabled_ms;        /* 0: enabled */
	const char *why;
	int64_t failing_ms;         /* 0: the last attempt did not fail */
	const char *last_error;
	int64_t last_error_ms;
	unsigned queued, running;
	int64_t paused_until_ms;
	double rate_per_s;
	unsigned concurrency;
};
/* Calls fn for every configured hook, in config order; stops at a non-zero return. */
int hooks_each(struct ew *ew, int (*fn)(const struct hooks_info *hi, void *arg), void *arg);
/*
 * Enables or disables a hook by name (recording hook.enabled/hook.disabled).
 * Returns 1 when it changed, 0 when it already was so, -ENOENT with err.
 */
int hooks_set_enabled(struct ew *ew, const char *name, bool enable, char *err, size_t errlen);
/* Loads every webhook secret of cfg without keeping them: a reload checks before it swaps. */
int hooks_check_secrets(const struct ew_config *cfg, char *err, size_t errlen);
/* The config was replaced: follow the hooks by name, reload secrets, enable disabled hooks again. */
void hooks_reconfigure(struct ew *ew);
/* Stops starting attempts; running ones get shutdown_grace, then are killed. */
void hooks_stop(struct ew *ew);
/* True when no attempt runs. */
bool hooks_idle(struct ew *ew);
/* Frees every delivery in memory (they stay pending in the store) and closes the timers. */
void hooks_close(struct ew *ew);

#endif
