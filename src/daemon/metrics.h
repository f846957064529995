/*
 * Counters and gauges of the daemon, and the two ways they are shown: the
 * Prometheus text (`embedwatchctl metrics`, metrics_file) and the one-line
 * summary (systemd's STATUS=, `embedwatchctl status`). Each module updates
 * the fields it owns; nothing here reaches into another module.
 */
#ifndef EW_METRICS_H
#define EW_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "job.h"
#include "planner.h"
#include "util.h"

/*
 * What this daemon is on its state (ha sets it): with SQLite always active.
 * ROLE_UNCONFIRMED is only ever shown (metrics_role), never set: an active
 * whose lease is not confirmed now (it may have expired for the others).
 */
enum ew_role { ROLE_ACTIVE = 0, ROLE_STANDBY, ROLE_TAKING_OVER, ROLE_UNCONFIRMED };

/* Why polling is paused (the poller sets it). */
enum pause_reason { PAUSE_NONE = 0, PAUSE_THROTTLED, PAUSE_AUTH, PAUSE_BAD_BASE, PAUSE_TLS, PAUSE__MAX };

#define METRICS_ANSWER_CLASSES 7    /* enum api_class */

/* Where received bytes came from: the API's endpoints and the webhook receivers. */
enum metrics_endpoint { EP_POLL = 0, EP_LIST, EP_CANCEL, EP_WEBHOOK, EP_DATASET, EP_BATCH_LIST, EP__MAX };

/* One request class's budget as it stands (the poller keeps it current). */
struct metrics_class {
	double budget;                   /* configured requests/s */
	double rate;                     /* allowed now (lowered after a 429/503) */
	double tokens;                   /* in the bucket */
	uint64_t paused_ms;              /* left of a 429/503 pause, 0: none */
	uint32_t minute;                 /* requests in the last 60 s */
	uint64_t requests;               /* since start */
	uint64_t throttles;              /* 429/503 answers */
};
/* One [account NAME] as it stands (the poller keeps it current). */
struct metrics_account {
	char name[40];
	const char *provider;            /* static */
	double budget, rate, tokens;     /* requests/s configured, allowed now; tokens in its bucket */
	uint64_t paused_ms;              /* left of its pause (429/503, auth, base URL), 0: none */
	enum pause_reason paused;
	uint32_t minute;                 /* requests in the last 60 s */
	uint64_t requests, polls, lists, cancels, throttles, auth_failures;
	size_t live;                     /* its watched jobs not ended, queued */
	bool sweeping;                   /* the planner reads its list (else per-id polls) */
	unsigned sweep_pages;            /* pages of its last complete sweep */
};
#define METRICS_BUCKETS 12

/* A Prometheus histogram with fixed upper bounds (seconds). */
struct metrics_hist {
	uint64_t counts[METRICS_BUCKETS];   /* observations <= bound[i], not cumulative */
	uint64_t over;                      /* above the last bound */
	uint64_t n;
	double sum;
};

struct metrics {
	/* counters */
	uint64_t polls;
	uint64_t poll_answers[METRICS_ANSWER_CLASSES];
	uint64_t poll_errors;            /* no HTTP answer at all */
	uint64_t transitions;
	uint64_t events;
	uint64_t deliveries_ok;
	uint64_t deliveries_failed;
	uint64_t deliveries_dead;
	uint64_t hook_disables;          /* hooks disabled by the breaker, a 410 or an operator */
	uint64_t commits;
	uint64_t commit_failures;
	uint64_t throttles;
	uint64_t cancels;                /* cancel requests sent */
	uint64_t sweeps;                 /* list sweeps sent */
	uint64_t sweep_failures;
	uint64_t sweep_fallbacks;        /* times the daemon fell back to per-id polling */
	uint64_t sweep_entries;          /* list entries read, watched or not */
	uint64_t sweep_listed;           /* entries in the last good list */
	uint64_t metrics_http_connections;  /* metrics_http: connections taken on metrics_listen */
	uint64_t metrics_http_evictions;    /* metrics_http: idle ones closed to make room for a new one */
	uint64_t metrics_http_timeouts;     /* metrics_http: closed without a complete request in time */
	uint64_t rx_wire[EP__MAX];       /* bytes received: headers + body as sent (compressed) */
	uint64_t rx_decoded[EP__MAX];    /* body bytes after decoding */
	uint64_t list_not_modified;      /* 304 answers to a conditional list request */
	uint64_t list_wire_bytes;        /* poller: the last full list on the wire, and decoded */
	uint64_t list_decoded_bytes;
	uint64_t plan_switches;          /* the planner changed mode */
	/* the planner's choice (poller_plan.c) */
	enum planner_mode plan_mode;
	enum planner_why plan_why;
	uint64_t plan_delay_ms, plan_delay_sweep_ms, plan_delay_per_id_ms;   /* estimated mean detection delays */
	uint64_t plan_poll_every_ms;     /* per-id polls of a job at least this often, 0: by backoff only */
	uint64_t plan_sweep_every_ms;    /* lists at most this often */
	uint64_t plan_list_cap;          /* a list larger on the wire is stopped, 0: no cap */
	uint64_t list_size_wire;         /* what the planner takes the list to cost, 0: unknown */
	bool list_size_is_min;           /* ... at least (it was cut off) */
	/* gauges, kept current by their owners */
	unsigned polls_in_flight;        /* poller */
	enum pause_reason paused;        /* poller */
	char pause_detail[200];          /* poller: the cause, for a TLS pause */
	double request_rate;             /* poller: effective requests/s */
	unsigned deliveries_pending;     /* hooks: queued, delayed or running */
	unsigned hooks_running;          /* hooks */
	unsigned hooks_disabled;         /* hooks: configured hooks disabled now */
	bool store_failing;              /* outbox: the last commit failed */
	uint64_t connections_opened;     /* poller, from the HTTP glue: TCP connections opened so far */
	double request_budget;           /* poller: configured requests/s */
	uint64_t last_poll_ok_ms;        /* poller: wall clock of the last 200 from the API, 0: none */
	struct metrics_class cls[RC__N]; /* poller: each request class */
	struct metrics_account accounts[16];     /* poller: each [account NAME], in the configuration's order */
	unsigned n_accounts;
	/* poller: the month's allowance ([poll] monthly_requests; allowance 0: none) */
	char month[8];
	uint64_t month_allowance, month_used, month_projected;
	uint64_t month_wait_ms;          /* until the spread allows the next request, 0: now */
	struct metrics_hist request_seconds;     /* poller: time of each API request */
	struct metrics_hist detection_lag;       /* hooks: last answer showing the job running -> hook start */
	size_t batch_jobs[JOB__MAX];     /* watch_v2: watched batch jobs (v2) by status; the rest are embed jobs */
	int64_t batch_records[3];        /* watch_v2: their records: total, successful, failed */
	uint64_t batch_sweeps;           /* poller: v2 sweeps begun */
	uint64_t batch_sweep_pages;      /* poller: their pages (GET /v2/batches) */
	uint64_t batch_sweep_entries;    /* poller: Batches read from them, watched or not */
	uint64_t batch_sweep_cut;        /* poller: sweeps that stopped at the previous sweep's newest updated_at */
	uint64_t batch_sweep_failures;
	uint64_t batch_sweep_fallbacks;  /* times batch jobs fell back to per-id polling */
	uint64_t discover_refused_name;  /* watch: jobs not discovered because their batch name broke the rule */
	unsigned batch_sweep_last_pages; /* pages of the last complete v2 sweep */
	uint64_t dataset_fetches;        /* poller: GET /v1/datasets/{id} sent for complete events */
	uint64_t datasets_attached;      /* watch: complete events with their output dataset */
	uint64_t datasets_missing;       /* watch: complete events with "output_dataset": null */
	int64_t start_ms;                /* wall clock at start */
	/* ha: the role on a shared state, and what it knows of the lease */
	bool shared;                     /* the state is shared (PostgreSQL): roles and the lease apply */
	enum ew_role role;
	uint64_t takeovers;              /* times this daemon became active */
	int64_t lease_epoch;             /* the lease's epoch as last seen */
	char active_host[256];           /* the active's host and pid, as last seen ("" when none) */
	int active_pid;
	int64_t lease_age_ms;            /* since the active last renewed it, as last seen (-1: nobody holds it) */
	uint64_t lease_fresh_until;      /* the active's lease is confirmed until then (monotonic ms) */
	uint64_t lease_seen_mono;        /* when that was seen (monotonic ms) */
};

/* Counts the bytes of one answer from ep. */
static inline void metrics_count_rx(struct metrics *m, enum metrics_endpoint ep, uint64_t wire, uint64_t decoded)
{
	m->rx_wire[ep] += wire;
	m->rx_decoded[ep] += decoded;
}
/* Adds one observation (seconds) to a request-latency or detection-lag histogram. */
void metrics_observe_request(struct metrics *m, double seconds);
void metrics_observe_lag(struct metrics *m, double seconds);
/* The Prometheus text of m and the job counts by status, appended to out. */
void metrics_text(const struct metrics *m, const size_t job_counts[JOB__MAX], struct buf *out);
/* The one-line summary into buf (always NUL-terminated). */
void metrics_status_line(const struct metrics *m, const size_t job_counts[JOB__MAX], char *buf, size_t len);
/* "active", "standby" or "taking over". */
const char *metrics_role_name(enum ew_role r);
/* The role as shown: ROLE_UNCONFIRMED for an active (shared state) whose lease is not confirmed now. */
enum ew_role metrics_role(const struct metrics *m);
/* The planner's choice in one sentence (status): mode, why, intervals, estimated delays. */
void metrics_plan_line(const struct metrics *m, char *buf, size_t len);
/* A short name of a pause reason ("none", "rate-limited", "auth", "bad-base-url"). */
const char *metrics_pause_name(enum pause_reason p);

#endif
