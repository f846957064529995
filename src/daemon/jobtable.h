/*
 * The watched jobs in memory: id -> job, name -> batch, and a min-heap of
 * jobs by next poll time. A job record is small; its last EmbedJob document
 * lives in the database only.
 */
#ifndef EW_JOBTABLE_H
#define EW_JOBTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "strmap.h"

#define JOB_NOT_QUEUED UINT32_MAX   /* HEAP_NONE */

struct heap;

enum {
	JF_DIRTY = 1 << 0,          /* its row must be written at the next commit */
	JF_IN_FLIGHT = 1 << 1,      /* a poll is running */
	JF_UNKNOWN_LOGGED = 1 << 2, /* an unknown status was logged once */
	JF_REMOVED = 1 << 3,        /* unwatched: freed once neither dirty nor in flight (jobtable_release) */
	JF_VIA_LIST = 1 << 4,       /* the last observation came from the list sweep, not a per-id poll */
	JF_DISCOVERED = 1 << 5,     /* watched by discovery, not by a watch request */
	JF_CANCEL_QUEUED = 1 << 6,  /* in the poller's cancel queue */
	JF_SEALED = 1 << 7,         /* its row is in a commit still in flight (turn_seal) */
};

/* Where a cancel stands (job->cancel). */
enum job_cancel { CANCEL_NONE = 0, CANCEL_REQUESTED, CANCEL_ACCEPTED, CANCEL_REFUSED };

struct batch {
	char *name;
	int64_t created_ms;
	uint32_t n_jobs;
	uint32_t n_ended;
	uint32_t counts[JOB__MAX];  /* jobs per status */
	uint32_t cap_members;
	struct job **members;       /* its n_jobs jobs, in no order; job->batch_idx is the index */
	uint8_t fired;              /* batch.done was recorded */
};

struct job {
	uint64_t due;               /* next poll, loop clock ms */
	int64_t added_ms;           /* wall clock */
	int64_t updated_ms;         /* wall clock of the last status change */
	int64_t seen_ms;            /* wall clock of the last answer about it (0: none yet) */
	struct batch *batch;
	uint32_t heap_idx;          /* in the due heap, or JOB_NOT_QUEUED (kept by the heap) */
	uint32_t batch_idx;         /* index in batch->members */
	uint32_t interval;          /* current poll interval, ms */
	uint32_t sweep_gen;         /* the last list sweep that listed it */
	uint8_t status;             /* enum job_status */
	uint8_t flags;
	uint8_t cancel;             /* enum job_cancel */
	uint8_t cancel_expire;      /* the cancel was the daemon's, at max_age */
	uint8_t cancel_tries;       /* cancels sent without an answer, in a row */
	uint8_t kind;               /* enum job_kind: decides only URLs, parser and event names (in padding) */
	struct job_errstate err;
	uint16_t fail_run;          /* failed polls in a row, any kind */
	uint8_t queue;              /* its due queue (0: the main one), fixed when it is made */
	uint8_t warned;             /* JW_* bits: warnings announced about it */
	uint32_t created_s;         /* when the API says it was created (epoch s), 0: not known */
	char id[];
};

/* Due queues: the main one (0) and as many more (each job says which is its, j->queue). */
#define JOBTABLE_QUEUES 17

/* Warnings announced about a job (j->warned), each once. */
enum { JW_STALLED = 1 << 0, JW_EXPIRING = 1 << 1 };

/* A zeroed jobtable is an empty one. */
struct jobtable {
	struct strmap jobs;
	struct strmap batches;
	struct heap *due[JOBTABLE_QUEUES];  /* per queue, queued jobs by due time (core/heap); made on first use */
	size_t counts[JOB__MAX];
	struct job **cancels;       /* jobs waiting for their cancel request, oldest first */
	size_t n_cancels, cap_cancels;
	bool listed[JOB_KIND__MAX]; /* per kind: its list sweep works (the poller says), new jobs wait for it */
	bool active;                /* the jobs are the active daemon's, restored (ha says): they may be written */
};

/* A new job (not in the table yet); the caller fills the rest. */
struct job *jobtable_new_job(const char *id);
struct job *jobtable_get(struct jobtable *t, const char *id);
/* Adds j; the id must not be present. */
void jobtable_add(struct jobtable *t, struct job *j);
/* Takes j out of the table, the heap and its batch; the caller still owns it. */
void jobtable_detach(struct jobtable *t, struct job *j);
/* Detaches j and marks it removed; it is freed now, or by jobtable_release once no one holds it. */
void jobtable_remove(struct jobtable *t, struct job *j);
/* Frees a removed job when it is neither dirty, sealed, in flight nor queued for a cancel; call after clearing one. */
void jobtable_release(struct job *j);
/* Takes batch b (which has no jobs) out of the table and frees it. */
void jobtable_drop_batch(struct jobtable *t, struct batch *b);
/* Changes j's status, keeping the per-status and per-batch counts right. */
void jobtable_set_status(struct jobtable *t, struct job *j, enum job_status st);
/* The batch of that name, created on first use. */
struct batch *jobtable_batch(struct jobtable *t, const char *name, int64_t now_ms);
/* Moves j into batch b (NULL: none), keeping members and counts right. */
void jobtable_join(struct jobtable *t, struct job *j, struct batch *b);
struct batch *jobtable_get_batch(struct jobtable *t, const char *name);

/* The heap: due jobs, earliest first. */
/* Queues j to be due at due (re-queues it when it is queued already). */
void jobtable_schedule(struct jobtable *t, struct job *j, uint64_t due);
/* Takes j out of the queue; nothing when it is not queued. */
void jobtable_unschedule(struct jobtable *t, struct job *j);
/* The earliest due job of the main queue, still queued, or NULL. */
struct job *jobtable_peek(struct jobtable *t);
/* The same of queue q (< JOBTABLE_QUEUES). */
struct job *jobtable_peek_queue(struct jobtable *t, unsigned q);
/* Queue q's jobs, and the i-th of them in no order (reading only). */
size_t jobtable_n_queued_in(const struct jobtable *t, unsigned q);
struct job *jobtable_queued_in(const struct jobtable *t, unsigned q, size_t i);
/* The main queue's jobs, and the i-th of them in no order (reading only: a due time changes through the functions here). */
size_t jobtable_n_queued(const struct jobtable *t);
struct job *jobtable_queued(const struct jobtable *t, size_t i);
/*
 * Gives every job of the main queue the due time fn returns for it (its own keeps it),
 * in one pass, then restores the heap order once (O(n)); fn must not
 * schedule, unschedule, add or remove jobs. Returns how many moved.
 */
size_t jobtable_redue(struct jobtable *t, uint64_t (*fn)(struct job *j, void *arg), void *arg);
/* The same over queue q's jobs. */
size_t jobtable_redue_in(struct jobtable *t, unsigned q, uint64_t (*fn)(struct job *j, void *arg), void *arg);

/* The cancel queue: jobs whose cancel request is to be sent, oldest first. */
/* Queues j for its cancel request (nothing when it is queued already). */
void jobtable_cancel_push(struct jobtable *t, struct job *j);
/* The oldest job waiting for its cancel request, or NULL. */
struct job *jobtable_cancel_peek(const struct jobtable *t);
/* Takes the oldest out of the queue (jobtable_release it if removed). */
struct job *jobtable_cancel_pop(struct jobtable *t);

/* Whether the list sweep observes the embed jobs: the poller says, watch schedules new jobs by it. */
void jobtable_set_listed(struct jobtable *t, enum job_kind k, bool listed);
bool jobtable_listed(const struct jobtable *t, enum job_kind k);
/* Whether this daemon is active (set by ha with the role): only the active's table writes the state. */
void jobtable_set_active(struct jobtable *t, bool active);
bool jobtable_active(const struct jobtable *t);

void jobtable_free(struct jobtable *t);

#endif
