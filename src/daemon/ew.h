/*
 * The daemon's context: one struct ew per process, handed to every module.
 * It holds the shared state (config, key, job table, turn record, metrics)
 * and a pointer to each module; each module's contract is in its own header.
 */
#ifndef EW_EW_H
#define EW_EW_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "jobtable.h"
#include "metrics.h"
#include "turn.h"

struct store;
struct http;
struct poller;
struct hooks;
struct control;
struct outbox;
struct metrics_http;
struct watch_v2;
struct ha;

struct ew {
	uv_loop_t *loop;
	struct ew_config cfg;
	char *config_path;
	char *api_key;
	char **account_keys;        /* the key of each [account NAME] (cfg.accounts' order), never logged */
	char *proxy_userpwd;        /* "user:password" for the proxy, or NULL */
	struct jobtable jobs;
	struct turn turn;           /* what this loop turn changed */
	struct metrics m;
	struct store *store;
	struct http *http;
	struct poller *poller;
	struct hooks *hooks;
	struct control *control;
	struct outbox *outbox;
	struct metrics_http *metrics_http;
	struct ha *ha;
	uv_timer_t prune_timer;     /* watch: retention */
	struct watch_v2 *v2;        /* watch: batch jobs' records and counts (watch_v2.h) */
	struct strmap *refused;     /* watch: jobs whose discovered batch name broke the rule (said once each) */
	bool stopping;
	bool stepping_down;         /* the lease is lost: stopping to start again as a standby */
};

/* The loop clock, milliseconds. */
static inline uint64_t ew_now(struct ew *ew)
{
	return uv_now(ew->loop);
}

#endif
