/* Job statuses, event types and the pure transition rules (no I/O). */
#ifndef EW_JOB_H
#define EW_JOB_H

#include <stdbool.h>
#include <stdint.h>

enum job_status {
	JOB_NONE = 0,       /* watched, never observed */
	JOB_PROCESSING,
	JOB_CANCELLING,
	JOB_COMPLETE,
	JOB_CANCELLED,
	JOB_FAILED,
	JOB_UNKNOWN,        /* a status value the contract does not name */
	JOB_NOT_FOUND,      /* ended: the API answered 404 three times in a row */
	JOB_ERROR,          /* ended: the API refused the id (400/422) three times */
	JOB_EXPIRED,        /* ended: watched longer than max_age */
	JOB__MAX
};

enum ew_event {
	EV_NONE = 0,
	EV_COMPLETE,
	EV_FAILED,
	EV_CANCELLED,
	EV_CANCELLING,
	EV_EXPIRED,
	EV_NOT_FOUND,
	EV_ERROR,
	EV_BATCH_DONE,
	EV_HOOK_DISABLED,   /* operational: a hook's breaker opened (or an operator disabled it) */
	EV_HOOK_ENABLED,    /* operational: it is enabled again */
	/* The same job events of a v2 batch (job_event_of_kind), and its opt-in progress event. */
	EV_BJ_COMPLETE,
	EV_BJ_FAILED,
	EV_BJ_CANCELLED,
	EV_BJ_CANCELLING,
	EV_BJ_EXPIRED,
	EV_BJ_NOT_FOUND,
	EV_BJ_ERROR,
	EV_BJ_PROGRESS,     /* a batch's records passed another progress_every step */
	/* Opt-in warnings about a job not ended: nothing moved for stall_after; the provider's deadline is near. */
	EV_STALLED,
	EV_BJ_STALLED,
	EV_BJ_EXPIRING,
	EV__MAX
};

/*
 * The kinds of watched job: v1 embed jobs (/v1/embed-jobs) and v2 batches
 * (/v2/batches). Below the API layer a job's kind is only carried along: it
 * decides the URL, the parser, the status mapping (api_v2.h) and the event
 * prefix (job_event_of_kind), nothing else.
 */
enum job_kind { JOB_KIND_EMBED = 0, JOB_KIND_BATCH, JOB_KIND__MAX };

/* What an HTTP answer means for a job and for the poller (DESIGN table). */
enum api_class {
	API_OK = 0,         /* 200 */
	API_REJECTED,       /* 400, 422: the API refuses the id */
	API_AUTH,           /* 401, 403: credentials */
	API_NOT_FOUND,      /* 404 */
	API_THROTTLED,      /* 429, 503: pause everything */
	API_TRANSIENT,      /* 5xx, 498, 499, timeouts, connection errors, bad bodies */
	API_BAD_BASE,       /* 501: wrong base URL */
};

/* Consecutive-error memory of one job; two bytes. */
struct job_errstate {
	uint8_t kind;       /* enum api_class of the last error run */
	uint8_t count;      /* how many in a row */
};

/* How many 404s (or 400/422s, or answers about another job) in a row end a job. */
#define JOB_ERROR_LIMIT 3
/* An error run that is no HTTP class: a 200 whose EmbedJob names another job_id. */
#define JOB_RUN_OTHER_JOB 0x80

const char *job_status_name(enum job_status s);
/* Parses a contract status string; anything else is JOB_UNKNOWN. */
enum job_status job_status_parse(const char *s);
/* Parses any name job_status_name() returns; -1 when it is none of them. */
int job_status_from_name(const char *s);
/* True for complete, cancelled, failed and the ended-by-daemon statuses. */
bool job_status_ended(enum job_status s);

/* Events of jobs and batches: what "on = *" means. Operational (hook.*) events are named explicitly. */
#define JOB_EVENTS_MASK ((((1u << EV__MAX) - 1) & ~1u) & ~((1u << EV_HOOK_DISABLED) | (1u << EV_HOOK_ENABLED)))
/* True for the operational events, whose subject is a hook's name. */
bool job_event_is_hook(enum ew_event e);

const char *job_event_name(enum ew_event e);
/* Parses "embed_job.complete" etc.; returns EV_NONE when unknown. */
enum ew_event job_event_parse(const char *s);

/* "embed-job", "batch-job". */
const char *job_kind_name(enum job_kind k);
/* Parses a kind name; -1 when it is none. */
int job_kind_parse(const char *s);
/* The event of kind k for a kind-blind job event (EV_COMPLETE -> EV_BJ_COMPLETE, EV_STALLED -> EV_BJ_STALLED for a batch); others unchanged. */
enum ew_event job_event_of_kind(enum ew_event e, enum job_kind k);
/* The kind-blind job event of e (EV_BJ_COMPLETE -> EV_COMPLETE); others unchanged. */
enum ew_event job_event_base(enum ew_event e);
/* The kind of job an event is about, or -1 for batch.done and the operational events. */
int job_event_kind(enum ew_event e);

/*
 * The transition rule: the event that observing status `seen` on a job last
 * known as `old` produces, or EV_NONE. Sets *ret_changed when the status differs
 * (the poll interval starts again on any change).
 */
enum ew_event job_transition(enum job_status old, enum job_status seen, bool *ret_changed);

/* The status a job ends in for an event that ends it (of either kind); JOB_NONE if it does not end it. */
enum job_status job_event_end_status(enum ew_event e);

/* A successful observation clears the error run. */
void job_error_reset(struct job_errstate *st);
/*
 * Records one failed poll of kind `kind` (an enum api_class, or
 * JOB_RUN_OTHER_JOB). Returns EV_NOT_FOUND or EV_ERROR when the run of 404s,
 * of 400/422s or of answers about another job reaches JOB_ERROR_LIMIT, else EV_NONE.
 */
enum ew_event job_error_record(struct job_errstate *st, int kind);

/*
 * Deterministic event id: "evt_" and 32 hex digits of SHA-256(subject NUL type).
 * The subject is a job id, or "batch:" and a batch name. `out` holds >= 37 bytes.
 */
void job_event_id(const char *subject, enum ew_event e, char out[37]);

#endif
