/*
 * Private to the hooks module (hooks*.c): the deliveries and hooks in memory,
 * the generic run and the driver table that the kinds of hook plug into, and
 * the functions the module's files share. Nothing outside the module sees it.
 */
#ifndef EW_HOOKS_INT_H
#define EW_HOOKS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ew.h"
#include "heap.h"
#include "hooks.h"
#include "job.h"
#include "sched.h"
#include "sign.h"
#include "store.h"
#include "strmap.h"

struct payload {
	unsigned refs;
	size_t len;
	char data[];
};

struct hook_rt;

struct delivery {
	struct delivery *next;      /* in a ready queue or the claimed list */
	struct hook_rt *hook;
	struct payload *payload;
	char event_id[37];
	enum ew_event type;
	char *subject;
	char *batch;
	char *key;                  /* "EVENT_ID HOOK": its entry in hooks->index */
	unsigned attempts;          /* attempts started, each claimed in a commit first */
	int64_t next_ms;            /* wall clock of the next attempt */
	int64_t lag_from_ms;        /* for the detection lag at its first start; 0: not measured */
	uint64_t seq;               /* arrival order: detection order, and a restart's load order */
	uint64_t claim_gen;         /* the turn record its claim was written in (turn.gen) */
	uint32_t heap_idx;          /* in a ready or the delayed heap, or HEAP_NONE */
	/* Order (per hook): a job's next delivery, or the next batch.done waiting on one group. */
	struct delivery *succ;
	unsigned blockers;          /* > 0: held, in no queue, until what it follows is done or dead */
};

struct hook_rt {
	struct hook_rt *next;
	char *name;
	const struct ew_hook *cfg;  /* NULL while the config has no hook of that name */
	struct sign_secret secrets[SIGN_MAX_SECRETS];
	size_t n_secrets;
	struct heap ready;          /* free to start, oldest first (by seq) */
	unsigned running;           /* claimed or running */
	unsigned queued;            /* its deliveries in memory: held, queued, delayed, claimed or running */
	/* The breaker (hooks_ops.c): kept in the store across restarts. */
	int64_t disabled_ms;        /* disabled since; 0: enabled */
	char *why;                  /* why it is disabled */
	int64_t failing_ms;         /* the first failure of an unbroken run of failed attempts; 0: none */
	char *last_error;
	int64_t last_error_ms;
	/* The rate: a token bucket per hook, and a pause from a webhook's Retry-After. */
	struct sched_bucket bucket;
	int64_t paused_until_ms;    /* wall clock; 0: not paused */
	struct strmap tails;        /* job id -> its newest delivery for this hook not yet done or dead */
	struct strmap groups;       /* group name -> its members not yet done or dead (hooks_order.c) */
};

/* One attempt in flight, generic part: its driver keeps its own state around it (container_of). */
struct run {
	struct run *next;
	struct hooks *hs;
	struct delivery *d;
	const struct hook_driver *drv;
	uint64_t started;
};

/*
 * A kind of hook, as curl's struct Curl_ssl is a TLS backend: the dispatcher
 * runs attempts through these only. A started attempt ends in its driver,
 * which calls hooks_finish (or hooks_unclaim when it did not count), then
 * unlinks and frees its run and pumps.
 */
struct hook_driver {
	/* Loads what a hook of this driver needs beyond its configuration (NULL: nothing): 0, or negative (logged). */
	int (*configure)(struct hook_rt *h, const struct ew_hook *c);
	/* A new zeroed run with the driver's state around it (never NULL). */
	struct run *(*alloc)(void);
	/* Starts the attempt of r->d: 0, or negative when nothing started and nothing will call back. */
	int (*start)(struct hooks *hs, struct run *r);
	/* Stops r when the shutdown grace is over; its delivery stays pending. */
	void (*stop)(struct hooks *hs, struct run *r);
	/* Frees r and the driver's state around it. */
	void (*free)(struct run *r);
};
/* The exec driver (hooks_exec.c) and the webhook driver (hooks_webhook.c). */
extern const struct hook_driver hooks_exec_driver, hooks_webhook_driver;

struct hooks {
	struct ew *ew;
	struct hook_rt *list;
	struct heap delayed;        /* waiting for their next attempt time (by next_ms) */
	uint64_t seq;
	uv_timer_t delay_timer;
	struct delivery *claimed_head, *claimed_tail;   /* claimed, starting after the commit */
	struct run *runs;
	unsigned running;           /* claimed or running */
	unsigned pending;           /* deliveries in memory: queued, delayed, claimed or running */
	struct strmap index;        /* key -> delivery */
	bool stopping;
	uv_timer_t grace_timer;
	uv_timer_t gate_timer;      /* a hook held by its rate or a pause may start again */
	int open_timers;
};

/* How one attempt that counted ended, as its driver saw it. */
struct hook_outcome {
	bool ok;
	bool permanent;             /* not worth retrying (a 4xx): dead now */
	uint64_t min_delay_ms;      /* the next attempt no sooner (a Retry-After); 0: the hook's retry delay */
	const char *why;            /* the failure, for the log and the state */
	uint64_t ms;                /* how long the attempt took */
};

/* ---- hooks.c: the dispatcher ---- */
/* One attempt that counted ended (o borrowed for the call): the delivery is done, retried later, or dead. */
void hooks_finish(struct hooks *hs, struct delivery *d, const struct hook_outcome *o);
/* The attempt did not count (killed at shutdown, endpoint disabled): back to waiting, claim returned. */
void hooks_unclaim(struct hooks *hs, struct delivery *d, bool requeue);
/* Takes r off the list of runs in flight. */
void hooks_run_unlink(struct hooks *hs, struct run *r);
/* Frees a run (NULL: nothing) through its driver. */
void hooks_run_free(struct run *r);
/* Claims what the caps allow. */
void hooks_pump(struct hooks *hs);
/* True when the delivery is about a job (not batch.done, not an operational event). */
static inline bool hooks_of_job(const struct delivery *d)
{
	return d->type != EV_BATCH_DONE && !job_event_is_hook(d->type);
}
/* A payload holding a copy of s, with one reference (the caller's). */
struct payload *hooks_payload_new(const char *s);
/* Drops one reference to p (NULL: nothing); the last frees it. */
void hooks_payload_unref(struct payload *p);
/* A new delivery of event_id to h in memory (sharing p), counted pending; the caller gives it its place in the order. */
struct delivery *hooks_delivery_new(struct hooks *hs, struct hook_rt *h, const char *event_id, enum ew_event type,
				   const char *subject, const char *batch, struct payload *p);
/* The runtime hook of that name (configured or not), or NULL. */
struct hook_rt *hooks_find(struct hooks *hs, const char *name);
/* Whether hook c takes an event of type in batch of a job named job_name (NULLs: none). */
bool hooks_takes(const struct ew_hook *c, enum ew_event type, const char *batch, const char *job_name);
/* Whether the delivery of event_id to hook is in memory (queued, held, delayed or running). */
bool hooks_in_memory(struct hooks *hs, const char *event_id, const char *hook);
/* Queues a stored event again for h (its payload p is shared), recorded pending with why, in order. */
void hooks_requeue(struct hooks *hs, struct hook_rt *h, const char *event_id, enum ew_event type, const char *subject,
		   const char *batch, struct payload *p, const char *why);
/* The hook's deliveries waiting for their next attempt time become ready now (after an enable). */
void hooks_release_delayed(struct hooks *hs, struct hook_rt *h);
/* Puts d in its hook's ready queue, or in the delayed heap until its next attempt time. */
void hooks_enqueue(struct hooks *hs, struct delivery *d);

/* ---- the drivers: what else of theirs the module uses ---- */
/* The status word for EMBEDWATCH_STATUS. */
const char *hooks_event_status(const struct delivery *d);

/* ---- hooks_order.c: which delivery may start given the ones pending before it ---- */
/* A new delivery in memory: queued now (hooks_enqueue), or held behind what it must follow. */
void hooks_order_add(struct hooks *hs, struct delivery *d);
/* d is done or dead: what waited behind it may go. */
void hooks_order_release(struct hooks *hs, struct delivery *d);
/* d leaves memory: its job's next delivery no longer follows it. */
void hooks_order_forget(struct delivery *d);
/* Frees h's order state, once none of its deliveries is in memory. */
void hooks_order_free(struct hook_rt *h);

/* ---- hooks_ops.c: the breaker, the rate, and the operators' view ---- */
/* An attempt of h that counted has ended: tracks the run of failures and may open the breaker. */
void hooks_ops_note(struct hooks *hs, struct hook_rt *h, bool ok, const char *error);
/* Disables h (the breaker, a 410, an operator): its deliveries wait; records hook.disabled. */
void hooks_ops_disable(struct hooks *hs, struct hook_rt *h, const char *why);
/* Enables h again: records hook.enabled; waiting deliveries go out in order. */
void hooks_ops_enable(struct hooks *hs, struct hook_rt *h, const char *why);
/* Whether h may start an attempt now (enabled, not paused, a token); takes the token. */
bool hooks_ops_may_start(struct hooks *hs, struct hook_rt *h, int64_t now);
/* A webhook's Retry-After: h starts nothing for ms. */
void hooks_ops_pause(struct hooks *hs, struct hook_rt *h, uint64_t ms);
/* Arms the gate timer for the earliest hook held only by its rate or a pause. */
void hooks_ops_arm(struct hooks *hs);
/* (Re)sets h's token bucket from its config. */
void hooks_ops_configure(struct hooks *hs, struct hook_rt *h);
/* Loads the breaker state of every configured hook from the store; done(0 or negative), maybe before this returns. */
void hooks_ops_restore(struct hooks *hs, store_done_fn *done, void *arg);
/* Frees what the breaker holds. */
void hooks_ops_free(struct hook_rt *h);

#endif
