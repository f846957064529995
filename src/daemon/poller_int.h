/* Private to the poller: poller*.c and datasets.c. */
#ifndef EW_POLLER_INT_H
#define EW_POLLER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "ew.h"
#include "http.h"
#include "jsplit.h"
#include "planner.h"
#include "poller.h"
#include "sched.h"
#include "strmap.h"

enum slot_kind { SLOT_POLL, SLOT_CANCEL };

struct poll_slot {
	struct http_req *req;
	struct poller *p;
	struct job *job;
	enum slot_kind kind;
	struct poll_slot *next_free;
};

struct poller {
	struct ew *ew;
	uv_timer_t timer;
	/* The budgets (budget.h): one per request class, and the month's above them. */
	struct rclass_budget cls[RC__N];
	struct month_budget month;
	bool month_loaded;              /* the state's count for the month is in month (or none is kept) */
	bool month_loading;             /* its read runs */
	bool month_saving;              /* a reservation waits for its commit */
	double src_recent[8];           /* each source's recent requests (decayed), for the shares */
	uint64_t src_decay_at;          /* loop ms they were last decayed */
	uint32_t overdue_gen;           /* the sweep whose overdue list made the unlisted due per id */
	uint32_t last_ok_gen;           /* the last sweep that read the list (full or 304) */
	struct poll_slot *slots;
	struct poll_slot *free_slots;
	unsigned n_slots;
	unsigned in_flight;
	struct http_headers *headers;   /* the current key's; transfers in flight hold their own reference */
	enum pause_reason pause;        /* everything: auth, TLS, base URL (a 429 pauses only its class) */
	uint64_t paused_until;          /* loop ms */
	bool stopped;
	uint64_t transient_window_start;
	unsigned transient_in_window;
	struct strmap warnings;         /* API warnings already logged */
	bool warnings_full;
	/* the list sweep (poller_sweep.c) */
	struct http_req *sweep_req;
	bool sweep_in_flight;
	uint64_t sweep_due;             /* loop ms */
	uint64_t sweep_interval;        /* current; grows while nothing changes */
	unsigned sweep_quiet;           /* good sweeps in a row that changed nothing */
	uint32_t sweep_gen;
	int64_t sweep_started_wall;
	unsigned sweep_fail_run;
	uint64_t sweep_off_until;       /* per-id polling only until then (loop ms), 0: sweeping */
	bool sweep_changed;
	/* conditional list requests: the last full list's validators, and which sweep read it */
	char *list_etag;                /* NULL: none */
	char *list_last_modified;       /* only when strictly older than the answer's Date (a strong validator) */
	uint32_t list_gen_ok;           /* its sweep_gen: a job it listed has j->sweep_gen == list_gen_ok; 0: none */
	bool list_full_wanted;          /* new watches since: ask for the list in full */
	bool list_conditional;          /* the sweep in flight sent a validator */
	uint64_t sweep_last;            /* loop ms the last sweep started: the budgets space lists from it */
	/* the planner (poller_plan.c): its last choice, and the costs it was measured from */
	struct planner_out plan;
	enum planner_mode last_mode;    /* the last mode other than idle: a change from it is logged */
	uint64_t list_wire;             /* the last list on the wire, 0: unknown */
	bool list_wire_is_min;          /* cut off without a Content-Length: at least that */
	uint64_t list_ms;               /* the last full list's answer time */
	uint64_t list_known_at;         /* loop ms list_wire was measured */
	double poll_wire_avg;           /* per-id answers on the wire, a moving average */
	size_t unlisted;                /* live jobs the last list did not show */
	bool sweep_wanted;              /* new embed jobs: the next sweep comes sooner, in full */
	struct jsplit split;
	char start_rfc3339[40];         /* discovery: jobs created before the daemon started are history */
	/* Turn 3: the output datasets of complete events (datasets.c), the v2 sweep (poller_v2.c) */
	struct datasets *datasets;
	struct sweep_v2 *v2;
	/* the other providers' accounts (poller_acct.c), in the configuration's order */
	struct acct *accts[CONFIG_MAX_ACCOUNTS];
	unsigned n_accts;
};

/* A poll of j failed without an answer about it: logged (rate-limited), and j polled again later by backoff. */
void poller_note_transient(struct poller *p, struct job *j, const char *why);
void poller_backoff(struct poller *p, struct job *j);
/* A 404 or a 400/422 about j: one more in its error run; the run's limit ends it (not_found, error), else backoff. */
void poller_error_run(struct poller *p, struct job *j, enum api_class cls, long status);
/* The pause a 429/503 asks for: its Retry-After (capped), else the run's growing pause. */
uint64_t poller_retry_after_ms(struct http_req *req, unsigned run);

/* The accounts (poller_acct.c): made or dropped as the configuration says, and their keys and rates set. */
void poller_acct_configure(struct poller *p);
/* Runs every account's scheduler soon. */
void poller_acct_kick(struct poller *p);
/* A cancel for j, a job of an account, handed over from the poller's cancel queue. */
void poller_acct_cancel(struct poller *p, struct job *j);
/* Stops their transfers (jobs stay due); frees them. */
void poller_acct_stop(struct poller *p);
void poller_acct_free(struct poller *p);

/* Runs Cohere's scheduler soon, after an answer of its own (poller_kick also runs the accounts'). */
void poller_run_soon(struct poller *p);
/* Keeps the poller's gauges in ew->m current. */
void poller_gauges(struct poller *p);
/* Pauses all polling for ms, for why (a longer pause of the same kind wins). */
void poller_pause_all(struct poller *p, enum pause_reason why, uint64_t ms);
/*
 * The answers that concern more than one job: a TLS failure, 401/403 and 501
 * pause everything; a 429/503 pauses and lowers the class cls the request
 * drew from. Pauses as the DESIGN table says and returns true when the answer
 * was one of them; clears a pause that an ordinary answer ends and returns
 * false otherwise.
 */
bool poller_global_answer(struct poller *p, enum rclass cls, struct http_req *req, const struct http_result *res);
/* Loop ms at which a request of class cls may go again after its class's pause (now if none, or a pause of everything). */
uint64_t poller_resume_at(const struct poller *p, enum rclass cls);
/* The class a request about a job of kind k draws from. */
enum rclass poller_class_of(enum job_kind k);
/* Logs an API warning once (bounded memory). */
void poller_note_warning(struct poller *p, const char *job_id, const char *text);

/* Watched jobs not ended. */
size_t poller_live_jobs(const struct ew *ew);
/* The transport options of every API request (CA file, proxy and its credentials), from ew. */
struct http_opts poller_api_opts(const struct ew *ew);
/*
 * Every queued job of that kind due later than within is made due within it
 * (spread): per-id polling takes over (embed jobs from the list sweep, batch
 * jobs from the v2 sweep: each kind follows its own).
 */
void poller_all_per_id(struct poller *p, enum job_kind kind, uint64_t within);
/* Plans from what was measured (each run); on a change of mode says so once and moves the jobs. */
void poller_plan(struct poller *p, uint64_t now);
/* After a per-id answer about j: its next poll within the plan's interval (the budget spread over the jobs). */
void poller_plan_freshen(struct poller *p, struct job *j);
/* A list answer's cost for the next plans: read in full, or cut at the planner's cap. */
void poller_plan_list_cost(struct poller *p, const struct http_result *res, bool cut);
/* A per-id answer's wire bytes, for the estimate of what a poll costs. */
void poller_plan_poll_cost(struct poller *p, uint64_t wire);

/* The sweep: set up, whether one should start now, start it, stop it. */
int poller_sweep_init(struct poller *p);
/* True when a sweep should start at now (sets *ret_wait to the ms until it is due otherwise). */
bool poller_sweep_due_now(struct poller *p, uint64_t now, uint64_t *ret_wait);
/* Starts a sweep (a token was taken). */
void poller_sweep_start(struct poller *p);
/* New watches: the next list is asked for in full, not "if changed" (a 304 would not show them). */
void poller_sweep_want_full(struct poller *p);
void poller_sweep_stop(struct poller *p);
void poller_sweep_free(struct poller *p);

/* The v2 sweep (poller_v2.c): set up, whether a page should go now, send it, stop, free, running. */
int poller_v2_init(struct poller *p);
/* True when a page should be sent at now (sets *ret_wait to the ms until the next sweep otherwise). */
/* New batch jobs wait for the v2 sweep: the next one comes sooner. */
void poller_v2_want_sweep(struct poller *p);
bool poller_v2_due_now(struct poller *p, uint64_t now, uint64_t *ret_wait);
/* Sends the next page of the sweep, starting one if none runs (a token was taken). */
void poller_v2_start(struct poller *p);
void poller_v2_stop(struct poller *p);
void poller_v2_free(struct poller *p);
bool poller_v2_busy(const struct poller *p);

/* The output datasets of held complete events (datasets.c): request slots, set up and freed with the poller. */
int datasets_init(struct poller *p);
void datasets_stop(struct poller *p);
void datasets_free(struct poller *p);
/* True while a fetch runs. */
bool datasets_busy(const struct poller *p);
/* Gives up on holds past their deadline (paused or not). Returns ms until the next deadline, or UINT64_MAX. */
uint64_t datasets_expire(struct poller *p, uint64_t now);
/* True when a fetch is due and a slot is free; else *ret_wait is the ms until one is due (UINT64_MAX: none). */
bool datasets_due(struct poller *p, uint64_t now, uint64_t *ret_wait);
/* Sends the first due fetch (a token of the default class was taken). */
void datasets_start(struct poller *p, uint64_t now);

#endif
