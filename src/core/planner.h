/*
 * The observation planner: each cycle, how to spend the request and byte
 * budgets on seeing the watched jobs end soon. The choice is between the
 * list sweep (one GET /v1/embed-jobs sees every job, at the price of the
 * key's whole history in bytes) and per-id polls (one request per job, a few
 * hundred bytes each), from measured costs: the bytes and answer time of the
 * last list, the jobs not yet ended, the request rate and byte budget. The
 * goal is the mean detection delay; choices within a tolerance of each other
 * go to the sweep (fewer requests), and a mode is left only when the other is
 * clearly better, so it does not flap. Pure: inputs in, choice out.
 */
#ifndef EW_PLANNER_H
#define EW_PLANNER_H

#include <stdbool.h>
#include <stdint.h>

/* What the configuration allows ([poll] planner). */
enum planner_policy { PLANNER_AUTO = 0, PLANNER_SWEEP, PLANNER_PER_ID };

enum planner_mode { PLAN_IDLE = 0, PLAN_SWEEP, PLAN_PER_ID, PLAN__MAX };

/* Why the mode is what it is; planner_why_text says it in words. */
enum planner_why {
	WHY_IDLE = 0,           /* no watched job is running, discovery is off */
	WHY_DISCOVERY,          /* discovery finds new jobs only in the list */
	WHY_POLICY_SWEEP,       /* planner = sweep */
	WHY_POLICY_PER_ID,      /* planner = per-id */
	WHY_SWEEP_OFF,          /* sweep = no */
	WHY_LIST_FAILING,       /* the list failed persistently; per-id until it is tried again */
	WHY_SWEEP_SOONER,       /* one list sees every job sooner, or about as soon for fewer requests */
	WHY_PER_ID_SOONER,      /* per-id polls see the jobs clearly sooner */
	WHY_LIST_TOO_BIG,       /* the list is too big for the byte budget to be read often enough */
	WHY__MAX
};

/* Below this, two estimated delays are the same to anyone (a quarter of the per-id delay counts too). */
#define PLANNER_TOLERANCE_MS 500
/* Wire bytes of a per-id answer before one was measured. */
#define PLANNER_POLL_BYTES_GUESS 1024

struct planner_in {
	enum planner_policy policy;
	enum planner_mode current;  /* the mode now: leaving it takes a clear gain */
	bool sweep_enabled;         /* [poll] sweep */
	bool list_failing;          /* the list fell back to per-id polling and is not retried yet */
	bool discovery;             /* [discover] enabled */
	uint64_t live;              /* watched jobs not ended */
	uint64_t unlisted;          /* of those, the ones the last list did not show (sweep: polled per id) */
	double rate_per_s;          /* requests per second the bucket allows now (lowered after a 429) */
	double bytes_per_s;         /* the byte budget, [poll] max_bytes_per_min / 60 */
	uint64_t list_wire;         /* wire bytes of the last list (a lower bound if it was cut off), 0: unknown */
	uint64_t list_ms;           /* answer time of the last full list, 0: unknown */
	uint64_t poll_wire;         /* mean wire bytes of a per-id answer, 0: unknown */
	uint64_t poll_floor_ms;     /* a job is never polled per id more often than this */
	uint64_t sweep_min_ms;      /* [poll] sweep_interval: the list's shortest interval */
};

struct planner_out {
	enum planner_mode mode;
	enum planner_why why;
	/* per-id polls of a job come at least this often (the budget spread over the jobs polled per id) */
	uint64_t poll_every_ms;
	/* the list never more often than this (sweep_interval, half the requests, the byte budget, its answer time) */
	uint64_t sweep_every_ms;
	/* the budgets alone: two lists never closer than this, even when a watch brings one forward */
	uint64_t sweep_floor_ms;
	/* stop a list larger than this on the wire: past it per-id polls would be clearly better; 0: no cap */
	uint64_t list_cap;
	uint64_t delay_ms;          /* estimated mean detection delay in the chosen mode */
	uint64_t delay_sweep_ms;    /* ... if every job were seen by the sweep */
	uint64_t delay_per_id_ms;   /* ... if every job were polled per id */
};

/* Chooses the mode and its intervals for in. Always fills every field of out. */
void planner_plan(const struct planner_in *in, struct planner_out *out);
/* "idle", "sweep", "per-id". */
const char *planner_mode_name(enum planner_mode m);
/* A short reason, e.g. "one list sees every job sooner, or about as soon for fewer requests". */
const char *planner_why_text(enum planner_why w);
/* A stable token for metrics labels, e.g. "list-too-big". */
const char *planner_why_name(enum planner_why w);

#endif
