/* The configuration file: inih callbacks into one struct ew_config, validated. Pure. */
#ifndef EW_CONFIG_H
#define EW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "job.h"
#include "planner.h"

enum hook_type { HOOK_EXEC = 1, HOOK_WEBHOOK };

#define CONFIG_MAX_RETRY 16

struct ew_hook {
	char *name;
	enum hook_type type;
	unsigned line;              /* where its section starts, for messages */
	uint32_t on_mask;           /* bit (1 << enum ew_event) */
	uint64_t timeout_ms;
	unsigned max_attempts;
	unsigned concurrency;
	uint64_t retry_ms[CONFIG_MAX_RETRY];  /* delay before attempt 2, 3, ...; last repeats */
	size_t n_retry;
	char **argv;                /* exec: NULL-terminated */
	char *url;                  /* webhook */
	char *secret_file;          /* webhook: whitespace-separated whsec_ secrets */
	char *ca_file;              /* webhook: CA bundle replacing the system store, or NULL */
	char *proxy;                /* webhook: proxy URL, "direct" for none, NULL: as [embedwatch] */
	char *batch_glob;           /* only events of batches matching this glob (NULL: all) */
	char *job_name_glob;        /* only events of jobs whose name matches (NULL: all) */
	char *no_proxy;             /* webhook: hosts that bypass the proxy, NULL: as [embedwatch] */
	uint64_t disable_after_ms;  /* every attempt failing this long disables the hook; 0: never */
	double rate_per_s;          /* attempts started per second at most; 0: no limit */
};

/*
 * [account NAME]: one account of a provider other than Cohere (Cohere's is
 * [embedwatch] api_base and its key, the account "cohere"). Its jobs are
 * polled with its own key, budget and pause.
 */
#define CONFIG_MAX_ACCOUNTS 16
struct ew_account {
	char *name;                 /* [a-z0-9_-]{1,32}, not "cohere" */
	unsigned line;              /* where its section starts, for messages */
	int provider;               /* enum provider (provider.h); -1: not set */
	char *api_base;             /* the provider's default when not set */
	char *key_file;             /* NULL: the credential NAME-api-key */
	double rate_per_s;          /* 0: the provider's default rate */
	bool sweep;                 /* its list is read to observe its watched jobs at once */
	unsigned page_size;         /* of that list; 0: the provider's largest */
	uint64_t stall_after_ms;    /* batch_job.stalled when nothing moved this long; 0: never */
	uint64_t expiring_ms;       /* batch_job.expiring this long before the provider's deadline; 0: never */
};

struct ew_config {
	char *path;
	/* [embedwatch] */
	char *api_base;
	char *api_key_file;
	char *client_name;
	char *state_dir;
	char *control_socket;
	unsigned control_mode;
	char *control_group;        /* group owning the socket, empty: the daemon's */
	uint64_t control_idle_timeout_ms;   /* a client that sends nothing this long is dropped */
	unsigned max_waiters;               /* control clients blocked in wait, apart from the 256 others */
	int log_level;              /* syslog priority: 3 err .. 7 debug */
	uint64_t max_age_ms;        /* 0: never expire */
	uint64_t retention_ms;      /* ended jobs, old events and deliveries are forgotten after; 0: never */
	char *metrics_file;         /* Prometheus textfile, empty: none */
	char *metrics_listen;       /* [ADDRESS:]PORT serving GET /metrics, NULL: off */
	char *api_ca_file;          /* CA bundle replacing the system store for the API, or NULL */
	char *proxy;                /* proxy URL for the API and webhooks; NULL: https_proxy etc. from the environment */
	char *no_proxy;             /* hosts that bypass the proxy, or NULL */
	char *proxy_credentials_file;   /* "user:password" for the proxy, or NULL */
	char *state_url;            /* a PostgreSQL URI (postgresql://...) shared by several daemons; NULL: SQLite in state_dir */
	char *state_password_file;  /* its password, or NULL (the credential state-password, or libpq's own sources) */
	uint64_t lease_ttl_ms;      /* the active's lease expires this long after its last renewal */
	uint64_t lease_renew_ms;    /* the active renews it this often */
	/* [poll] */
	uint64_t interval_min_ms;
	uint64_t interval_max_ms;
	double backoff;
	double jitter;
	double rate_per_s;          /* the embed-job endpoints' class */
	double default_rate_per_s;  /* every other endpoint: the provider's "Default" class */
	uint64_t monthly_requests;  /* a calendar month's calls (UTC), all classes told; 0: none */
	uint64_t list_stall_ms;     /* a list receiving under 1 KiB in this long is cut */
	uint64_t stall_after_ms;    /* Cohere's jobs: *.stalled when nothing moved this long; 0: never */
	unsigned burst;
	unsigned max_in_flight;
	unsigned max_connections;
	uint64_t request_timeout_ms;
	bool sweep;                 /* list sweep: GET /v1/embed-jobs observes every job at once */
	uint64_t sweep_interval_ms; /* between sweeps while something changes */
	uint64_t sweep_interval_max_ms;
	uint64_t list_max_bytes;    /* a list answer larger than this (decoded): per-id polling instead */
	uint64_t max_bytes_per_min; /* the byte budget on the wire, API answers all told */
	enum planner_policy planner;    /* auto: the planner chooses sweep or per-id; or always one */
	bool cancel_on_expire;      /* past max_age: cancel the job, not just stop watching */
	bool batch_sweep;           /* v2 sweep: GET /v2/batches (paged) observes the watched batch jobs */
	unsigned batch_page_size;   /* page_size of that list, 1..1000 */
	/* [discover] */
	bool discover;
	char *discover_match;       /* glob on the job's name */
	char *discover_batch;       /* "": none; "{name-prefix}", "{name}", or a literal batch name */
	unsigned discover_kinds;    /* bit (1 << enum job_kind): the kinds discovery watches */
	/* [datasets] */
	bool datasets_fetch;        /* complete events carry the output dataset (GET /v1/datasets/{id}) */
	uint64_t dataset_timeout_ms;    /* the event waits at most this long for it */
	unsigned dataset_tries;
	/* [hooks] */
	unsigned hooks_max_concurrent;
	uint64_t shutdown_grace_ms;
	size_t hook_output_max;
	uint64_t delivery_retention_ms; /* finished deliveries are kept this long; 0: forever */
	unsigned progress_every_pct;    /* batch_job.progress every this many percent of records; 0: none */
	/* [hook NAME] */
	struct ew_hook *hooks;
	size_t n_hooks;
	/* [account NAME] */
	struct ew_account *accounts;
	size_t n_accounts;
};

/* The account named name: 0 for "cohere" (the [embedwatch] one), i + 1 for accounts[i], -1 for none. */
int config_account_find(const struct ew_config *cfg, const char *name);

/* Fills cfg with the defaults of DESIGN.md (strings included), from the key tables. */
void config_defaults(struct ew_config *cfg);
/*
 * Prints cfg as the file it could have been read from: every section and key
 * with its value, defaults included, each after a comment line saying what it
 * is. Passwords inside URLs and connection strings are masked; the output read
 * back gives the same configuration.
 */
void config_print(const struct ew_config *cfg, FILE *f);
struct buf;
/* Appends s to b with any password in it ("user:PASSWORD@", "password=...") as "********". */
void config_mask_secrets(const char *s, struct buf *b);

/*
 * Reads and validates a file over the defaults. On error returns a negative
 * errno and "FILE:LINE: what was wrong, what was expected" in err; cfg is then
 * cleared. Unknown sections and keys are errors.
 */
int config_load(const char *path, struct ew_config *cfg, char *err, size_t errlen);
/* The same, from an open stream; name is used in messages. */
int config_load_stream(FILE *f, const char *name, struct ew_config *cfg, char *err, size_t errlen);

void config_clear(struct ew_config *cfg);

/* "500ms", "30s", "5m", "24h", "7d" (decimal fractions allowed) into milliseconds. */
int config_parse_duration(const char *s, uint64_t *ret_ms);
/*
 * Checks a proxy URL: http://, https://, socks5:// or socks5h:// with a host
 * and no credentials in it (they go in a file). -EINVAL with a reason in err.
 */
int config_check_proxy(const char *url, char *err, size_t errlen);
struct sockaddr_storage;
/* "[ADDRESS:]PORT" (IPv4, [IPv6], or just a port: 127.0.0.1) into a socket address. 0 or -EINVAL. */
int config_parse_listen(const char *s, struct sockaddr_storage *ret);
/* "1048576", "64k", "64MiB", "1G" (1024-based) into bytes. 0 or -EINVAL. */
int config_parse_size(const char *s, uint64_t *ret_bytes);
/*
 * The batch a discovered job joins by rule: "" none, "{name}" its name,
 * "{name-prefix}" its name up to the last '-' (all of it when it has none),
 * anything else literally. Writes into buf; returns buf, or NULL for none.
 */
const char *config_discover_batch(const char *rule, const char *name, char *buf, size_t len);
/*
 * Checks a state_url: a PostgreSQL connection URI (postgresql:// or
 * postgres://) with no password in it (it goes in a credential or a file).
 * -EINVAL with a reason in err.
 */
int config_check_state_url(const char *url, char *err, size_t errlen);
/* "10/s", "50/min", "3000/h" into requests per second. */
int config_parse_rate(const char *s, double *ret_per_s);
/*
 * Splits a command line into a NULL-terminated argv without a shell: words
 * separated by blanks, '...' and "..." quoting, backslash escapes. No
 * expansion of any kind. Returns 0 or -EINVAL (unterminated quote, empty).
 */
int config_split_argv(const char *s, char ***ret_argv);
void config_free_argv(char **argv);

#endif
