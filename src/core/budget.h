/*
 * Request budgets as the provider counts them, and the policy that spends
 * them. Pure: no clock of its own, no I/O.
 *
 * A *class* is a budget the provider keeps apart (Cohere: the embed-job
 * endpoints, and "Default" for everything else). Each has its own token
 * bucket, its own 429 pause and lowered rate, and a count of the requests of
 * the last minute. A *month* allowance, where set, sits above every class.
 *
 * A *source* is one kind of request the poller sends (cancels, lists, pages,
 * per-id polls, dataset fetches). The policy (budget_pick) walks the sources
 * in their rank order; a source that has had less than its guaranteed share
 * of its class's recent requests goes before those ranked above it, so no
 * source is starved, and enrichment (dataset fetches, ranked last) never
 * waits ahead of observation.
 */
#ifndef EW_BUDGET_H
#define EW_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "sched.h"

enum rclass { RC_EMBED_JOBS = 0, RC_DEFAULT, RC__N };

/* "embed_jobs", "default". */
const char *budget_class_name(enum rclass c);

struct rclass_budget {
	struct sched_bucket bucket;
	uint64_t paused_until;      /* loop ms; a 429/503 on this class, 0: none */
	unsigned throttle_run;      /* 429/503 in a row */
	uint64_t requests;          /* since start */
	uint32_t sec[60];           /* requests per second of the last minute, a ring */
	uint64_t sec_at;            /* the second (now / 1000) the ring's newest slot is */
};

void budget_class_init(struct rclass_budget *c, double rate_per_s, unsigned burst, uint64_t now_ms);
/* True while a 429/503 pause holds the class at now. */
bool budget_class_paused(const struct rclass_budget *c, uint64_t now_ms);
/* Takes a token if the class is not paused and has one; counts the request. */
bool budget_class_take(struct rclass_budget *c, uint64_t now_ms);
/* Ms until the class may send (the pause, then a token). */
uint64_t budget_class_wait(struct rclass_budget *c, uint64_t now_ms);
/* A 429/503 on this class: paused for pause_ms, its rate lowered, its bucket emptied. */
void budget_class_throttled(struct rclass_budget *c, uint64_t now_ms, uint64_t pause_ms);
/* Requests sent in the last 60 s. */
uint32_t budget_class_minute(struct rclass_budget *c, uint64_t now_ms);

/*
 * A month's allowance (UTC calendar months), spread over the month: by any
 * moment at most the share of the month gone by, plus an hour's share, may
 * have been spent, so the last day always keeps about a day's share. Counting
 * is durable ahead of spending: `reserved` is what the state says was spent
 * (a restart starts from it), raised a chunk at a time before the requests go.
 */
struct month_budget {
	uint64_t allowance;         /* 0: none */
	uint64_t used;              /* this month, as far as this process knows */
	uint64_t reserved;          /* durable: the state holds at least this */
	int64_t start_ms, end_ms;   /* the month, wall clock (UTC) */
	char key[8];                /* "YYYY-MM" */
};

/* The UTC month around wall_ms: its key and bounds. */
void budget_month_bounds(int64_t wall_ms, char key[8], int64_t *start_ms, int64_t *end_ms);
/* Moves to the month of wall_ms (a new month starts from 0). Returns true when it changed. */
bool budget_month_roll(struct month_budget *m, int64_t wall_ms);
/* What may have been spent by wall_ms (the spread), at most the allowance. */
uint64_t budget_month_allowed(const struct month_budget *m, int64_t wall_ms);
/* Ms until one more request may go (0: now; INT64_MAX-ish when the month is spent: until the next month). */
uint64_t budget_month_wait(const struct month_budget *m, int64_t wall_ms);
/* Use of the whole month at the pace so far. */
uint64_t budget_month_projected(const struct month_budget *m, int64_t wall_ms);
/* How far ahead of use to reserve (a crash loses at most this many of the month's requests). */
uint64_t budget_month_chunk(const struct month_budget *m);
/* Parses "YYYY-MM N" (the state's form); -1 when malformed. */
int budget_month_parse(const char *text, char key[8], uint64_t *ret_n);

/* The poller's request sources, in rank order. */
enum source_id { SRC_CANCELS = 0, SRC_LIST, SRC_PAGES, SRC_POLLS, SRC_DATASETS, SRC__N };

/* The policy: one row per source. */
struct source_policy {
	const char *name;
	double share;               /* of its class's recent requests guaranteed when due, 0..1 */
};

/* The policy the poller spends its budgets by, indexed by enum source_id (budget.c says why). */
extern const struct source_policy budget_policy[SRC__N];

/* A source's standing at one pick. */
struct source_state {
	bool due;                   /* wants to send now and has a request slot */
	enum rclass cls;            /* the class its next request draws from */
	bool can_take;              /* that class has a token now (and no pause) */
	double recent;              /* its recent requests (decayed count) */
};

/*
 * The source to serve next: among those due whose class can take, the first
 * in rank order whose recent count is below its share of its class's recent
 * total; else the first in rank order. -1 when none can go.
 */
int budget_pick(const struct source_policy *pol, const struct source_state *st, int n);

/* Decays recent counts: each request adds 1, and the counts halve every half_life_ms. */
double budget_decay(double recent, uint64_t elapsed_ms, uint64_t half_life_ms);

#endif
