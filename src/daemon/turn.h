/*
 * The turn record: what this loop turn changed and the next commit must
 * write (job rows, snapshots, events, batches, deletes, delivery states), and
 * what must be told once it is written (jobs ended, the poller and the sweep
 * of a kind, control answers, standbys' requests). Observation code (and ha)
 * records here and never dispatches; the outbox commits the record, then
 * dispatches.
 */
#ifndef EW_TURN_H
#define EW_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobtable.h"

enum turn_row_kind { TR_DELETE, TR_SNAPSHOT, TR_EVENT, TR_BATCH, TR_PRUNE, TR_HOOK, TR_REQUEST, TR_META };

/* One write besides the job rows, in the order recorded. */
struct turn_row {
	struct turn_row *next;
	enum turn_row_kind kind;
	enum ew_event type;         /* TR_EVENT */
	bool is_new;                /* TR_EVENT: set by the commit (not in the database before) */
	char event_id[37];          /* TR_EVENT; TR_BATCH: its batch.done event, or "" */
	int64_t ts_ms;              /* TR_EVENT, TR_BATCH (created), TR_PRUNE (before) */
	char *subject;              /* job id or batch name */
	char *batch;                /* TR_EVENT: the job's batch, or NULL */
	char *job_name;             /* TR_EVENT: the job's name from the API, or NULL */
	char *text;                 /* TR_EVENT payload, TR_SNAPSHOT document, TR_META value (subject: its key) */
	int64_t lag_from_ms;        /* TR_EVENT: last answer showing the job running, for the detection lag; 0: unknown */
	char **hooks;               /* TR_EVENT: the hooks that take it, planned in the commit */
	size_t n_hooks;
	int64_t deliveries_before_ms;   /* TR_PRUNE: finished deliveries older than this go */
	/* TR_HOOK: a hook's breaker state (subject: its name; text: why it is disabled, or NULL) */
	int64_t disabled_ms, failing_ms, last_error_ms;
	char *last_error;
	int64_t request_id;         /* TR_REQUEST: a standby's request, applied with this record's other writes */
};

/* A delivery's new state, written with the next commit. */
struct turn_delivery {
	char event_id[37];
	char *hook;
	const char *state;          /* "pending", "running", "done", "dead" */
	unsigned attempts;
	int64_t next_ms;
	char *last_error;
	int64_t updated_ms;
};

/* The bit of turn.sweep for the jobs of kind k. */
#define TURN_SWEEP(k) (1u << (k))

struct turn {
	struct job **dirty;
	size_t n_dirty, cap_dirty;
	struct turn_row *head, *tail;
	struct turn_delivery *upd;
	size_t n_upd, cap_upd;
	bool ended;                 /* a job ended or left: waits may be satisfied */
	bool kick;                  /* the poller has new due jobs */
	unsigned sweep;             /* TURN_SWEEP(kind): new jobs of that kind, the poller brings its next list sweep forward */
	bool requests;              /* standbys wrote requests (ha): control reads and applies them */
	unsigned answers;           /* control answers held for this commit */
	/*
	 * The number of this record: what is held for it (answers, claimed
	 * attempts) carries it, and a commit tells only those with a number up
	 * to its own. turn_seal() moves on to the next.
	 */
	uint64_t gen;
};

/* Marks j's row to be written (once per turn). */
void turn_touch(struct turn *t, struct job *j);
/* Appends a zeroed row of kind k; the caller fills it (strings it sets are owned by the row). */
struct turn_row *turn_row(struct turn *t, enum turn_row_kind k);
/* Records a delivery state; strings are copied. */
void turn_delivery(struct turn *t, const char *event_id, const char *hook, const char *state, unsigned attempts,
		   int64_t next_ms, const char *last_error);
/* True when anything waits to be written. */
bool turn_has_writes(const struct turn *t);
/* True when anything waits to be written or told. */
bool turn_pending(const struct turn *t);
/* Drops the planned hooks of every event (before the commit plans again after a failure). */
void turn_unplan(struct turn *t);
/*
 * Moves everything recorded into *sealed (empty, or left so by
 * turn_committed) for a commit that stays in flight while the loop records on
 * into t, whose number moves on. The sealed jobs are kept (JF_SEALED).
 */
void turn_seal(struct turn *t, struct turn *sealed);
/* The commit of sealed failed: its writes and marks go back into t, before what was recorded since. */
void turn_unseal(struct turn *t, struct turn *sealed);
/*
 * After a successful commit of t (sealed, or with nothing to write): clears
 * the job marks (freeing removed jobs no one holds) and the delivery states,
 * and hands the rows to the caller, who frees them with turn_rows_free()
 * after dispatching.
 */
struct turn_row *turn_committed(struct turn *t);
void turn_rows_free(struct turn_row *r);
/* Frees everything, written or not (at exit). */
void turn_free(struct turn *t);

#endif
