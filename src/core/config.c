/*
 * The configuration file: inih reads it, these callbacks apply each key to one
 * struct ew_config, and validate() checks what keys alone cannot. The values
 * themselves are parsed in config_values.c.
 */
#include "config.h"

#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "api.h"
#include "util.h"

struct parse_ctx {
	struct ew_config *cfg;
	const char *name;
	FILE *f;
	unsigned line;
	char *err;
	size_t errlen;
	int failed;
	char section[128];
	struct ew_hook *hook;       /* current [hook NAME] section */
	unsigned planner_line;      /* where [poll] planner was set, for validate()'s message */
};

void config_defaults(struct ew_config *c)
{
	memset(c, 0, sizeof(*c));
	c->api_base = xstrdup("https://api.cohere.com");
	c->api_key_file = xstrdup("");
	c->client_name = xstrdup("embedwatch");
	c->state_dir = xstrdup("/var/lib/embedwatch");
	c->control_socket = xstrdup("/run/embedwatch/control.sock");
	c->metrics_file = xstrdup("");
	c->control_group = xstrdup("");
	c->control_mode = 0660;
	c->control_idle_timeout_ms = 60000;
	c->max_waiters = 4096;
	c->log_level = LOG_INFO;
	c->max_age_ms = 7ULL * 24 * 3600 * 1000;
	c->retention_ms = 7ULL * 24 * 3600 * 1000;
	c->delivery_retention_ms = 7ULL * 24 * 3600 * 1000;
	c->interval_min_ms = 5000;
	c->interval_max_ms = 60000;
	c->backoff = 1.5;
	c->jitter = 0.2;
	c->rate_per_s = 40.0 / 60.0;
	c->default_rate_per_s = 400.0 / 60.0;
	c->monthly_requests = 0;
	c->list_stall_ms = 10000;
	c->burst = 10;
	c->max_in_flight = 32;
	c->max_connections = 8;
	c->request_timeout_ms = 30000;
	c->sweep = true;
	c->sweep_interval_ms = 5000;
	c->sweep_interval_max_ms = 60000;
	c->list_max_bytes = 64ULL << 20;
	c->max_bytes_per_min = 64ULL << 20;
	c->planner = PLANNER_AUTO;
	c->discover_match = xstrdup("*");
	c->discover_batch = xstrdup("");
	c->discover_kinds = (1u << JOB_KIND_EMBED) | (1u << JOB_KIND_BATCH);
	c->batch_sweep = true;
	c->batch_page_size = 1000;
	c->datasets_fetch = true;
	c->dataset_timeout_ms = 60000;
	c->dataset_tries = 3;
	c->hooks_max_concurrent = 16;
	c->shutdown_grace_ms = 10000;
	c->hook_output_max = 16384;
	c->lease_ttl_ms = 10000;
	c->lease_renew_ms = 2000;
}

static void hook_free(struct ew_hook *h)
{
	free(h->name);
	config_free_argv(h->argv);
	free(h->url);
	free(h->secret_file);
	free(h->ca_file);
	free(h->proxy);
	free(h->no_proxy);
	free(h->batch_glob);
	free(h->job_name_glob);
}

void config_clear(struct ew_config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->api_base);
	free(c->api_key_file);
	free(c->client_name);
	free(c->state_dir);
	free(c->control_socket);
	free(c->metrics_file);
	free(c->control_group);
	free(c->api_ca_file);
	free(c->metrics_listen);
	free(c->proxy);
	free(c->no_proxy);
	free(c->proxy_credentials_file);
	free(c->state_url);
	free(c->state_password_file);
	free(c->discover_match);
	free(c->discover_batch);
	for (size_t i = 0; i < c->n_hooks; i++)
		hook_free(&c->hooks[i]);
	free(c->hooks);
	memset(c, 0, sizeof(*c));
}

__attribute__((format(printf, 2, 3)))
static int fail(struct parse_ctx *x, const char *fmt, ...)
{
	if (!x->failed) {
		char msg[400];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		snprintf(x->err, x->errlen, "%s:%u: %s", x->name, x->line, msg);
		x->failed = 1;
	}
	return 0;
}

static int set_string(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
	return 1;
}

static int set_duration(struct parse_ctx *x, const char *key, const char *v, uint64_t *dst, uint64_t min)
{
	uint64_t ms;
	if (config_parse_duration(v, &ms) < 0)
		return fail(x, "%s: expected a duration like 500ms, 30s, 5m, 24h or 7d, got \"%s\"", key, v);
	if (ms < min)
		return fail(x, "%s: %s is too short, at least %llums", key, v, (unsigned long long)min);
	*dst = ms;
	return 1;
}

static int set_uint(struct parse_ctx *x, const char *key, const char *v, unsigned *dst, unsigned min, unsigned max)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)*v) || *end || errno || n < min || n > max)
		return fail(x, "%s: expected a whole number from %u to %u, got \"%s\"", key, min, max, v);
	*dst = (unsigned)n;
	return 1;
}

static int set_bool(struct parse_ctx *x, const char *key, const char *v, bool *dst)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*dst = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*dst = false;
	else
		return fail(x, "%s: expected yes or no, got \"%s\"", key, v);
	return 1;
}

static int set_double(struct parse_ctx *x, const char *key, const char *v, double *dst, double min, double max)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (end == v || *end || errno || !(d >= min && d <= max))
		return fail(x, "%s: expected a number from %g to %g, got \"%s\"", key, min, max, v);
	*dst = d;
	return 1;
}

static int set_log_level(struct parse_ctx *x, const char *v)
{
	static const struct { const char *n; int l; } levels[] = {
		{ "error", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
		if (strcmp(v, levels[i].n) == 0) {
			x->cfg->log_level = levels[i].l;
			return 1;
		}
	}
	return fail(x, "log_level: expected error, warning, notice, info or debug, got \"%s\"", v);
}

static int set_opt_string(char **dst, const char *v)
{
	free(*dst);
	*dst = *v ? xstrdup(v) : NULL;
	return 1;
}

static int main_key(struct parse_ctx *x, const char *k, const char *v)
{
	struct ew_config *c = x->cfg;
	char err[256];

	if (strcmp(k, "api_base") == 0) {
		if (api_base_check(v, err, sizeof(err)) < 0)
			return fail(x, "api_base: %s", err);
		return set_string(&c->api_base, v);
	}
	if (strcmp(k, "api_key_file") == 0)
		return set_string(&c->api_key_file, v);
	if (strcmp(k, "client_name") == 0) {
		for (const char *p = v; *p; p++)
			if (!isprint((unsigned char)*p))
				return fail(x, "client_name: expected printable characters");
		return set_string(&c->client_name, v);
	}
	if (strcmp(k, "state_dir") == 0) {
		if (v[0] != '/')
			return fail(x, "state_dir: expected an absolute path, got \"%s\"", v);
		return set_string(&c->state_dir, v);
	}
	if (strcmp(k, "control_socket") == 0) {
		if (v[0] != '/' || strlen(v) >= 108)
			return fail(x, "control_socket: expected an absolute path shorter than 108 bytes, got \"%s\"", v);
		return set_string(&c->control_socket, v);
	}
	if (strcmp(k, "control_mode") == 0) {
		char *end;
		unsigned long m = strtoul(v, &end, 8);
		if (!*v || *end || m > 0777)
			return fail(x, "control_mode: expected an octal mode like 0660, got \"%s\"", v);
		c->control_mode = (unsigned)m;
		return 1;
	}
	if (strcmp(k, "metrics_listen") == 0) {
		struct sockaddr_storage ss;
		if (*v && config_parse_listen(v, &ss) < 0)
			return fail(x, "metrics_listen: expected [ADDRESS:]PORT like 9810, 127.0.0.1:9810 or [::1]:9810, got \"%s\"", v);
		return set_opt_string(&c->metrics_listen, v);
	}
	if (strcmp(k, "api_ca_file") == 0)
		return set_opt_string(&c->api_ca_file, v);
	if (strcmp(k, "proxy") == 0) {
		if (*v && config_check_proxy(v, err, sizeof(err)) < 0)
			return fail(x, "proxy: %s", err);
		return set_opt_string(&c->proxy, v);
	}
	if (strcmp(k, "no_proxy") == 0)
		return set_opt_string(&c->no_proxy, v);
	if (strcmp(k, "proxy_credentials_file") == 0)
		return set_opt_string(&c->proxy_credentials_file, v);
	if (strcmp(k, "control_group") == 0) {
		for (const char *p = v; *p; p++)
			if (!isalnum((unsigned char)*p) && !strchr("_-.", *p))
				return fail(x, "control_group: expected a group name, got \"%s\"", v);
		return set_string(&c->control_group, v);
	}
	if (strcmp(k, "control_idle_timeout") == 0)
		return set_duration(x, k, v, &c->control_idle_timeout_ms, 100);
	if (strcmp(k, "max_waiters") == 0)
		return set_uint(x, k, v, &c->max_waiters, 1, 100000);
	if (strcmp(k, "log_level") == 0)
		return set_log_level(x, v);
	if (strcmp(k, "max_age") == 0)
		return set_duration(x, k, v, &c->max_age_ms, 0);
	if (strcmp(k, "metrics_file") == 0)
		return set_string(&c->metrics_file, v);
	if (strcmp(k, "retention") == 0)
		return set_duration(x, k, v, &c->retention_ms, 0);
	if (strcmp(k, "cancel_on_expire") == 0)
		return set_bool(x, k, v, &c->cancel_on_expire);
	if (strcmp(k, "state_url") == 0) {
		if (*v && config_check_state_url(v, err, sizeof(err)) < 0)
			return fail(x, "state_url: %s", err);
		return set_opt_string(&c->state_url, v);
	}
	if (strcmp(k, "state_password_file") == 0)
		return set_opt_string(&c->state_password_file, v);
	if (strcmp(k, "lease_ttl") == 0)
		return set_duration(x, k, v, &c->lease_ttl_ms, 1000);
	if (strcmp(k, "lease_renew") == 0)
		return set_duration(x, k, v, &c->lease_renew_ms, 100);
	return fail(x, "unknown key \"%s\" in [embedwatch]", k);
}

static int poll_key(struct parse_ctx *x, const char *k, const char *v)
{
	struct ew_config *c = x->cfg;

	if (strcmp(k, "interval_min") == 0)
		return set_duration(x, k, v, &c->interval_min_ms, 10);
	if (strcmp(k, "interval_max") == 0)
		return set_duration(x, k, v, &c->interval_max_ms, 10);
	if (strcmp(k, "backoff") == 0)
		return set_double(x, k, v, &c->backoff, 1.0, 10.0);
	if (strcmp(k, "jitter") == 0)
		return set_double(x, k, v, &c->jitter, 0.0, 0.5);
	if (strcmp(k, "rate") == 0) {
		if (config_parse_rate(v, &c->rate_per_s) < 0)
			return fail(x, "rate: expected requests per time like 40/min, 10/s or 3000/h, got \"%s\"", v);
		return 1;
	}
	if (strcmp(k, "default_rate") == 0) {
		if (config_parse_rate(v, &c->default_rate_per_s) < 0 || c->default_rate_per_s <= 0)
			return fail(x, "default_rate: expected requests per time like 400/min or 5/s, got \"%s\"", v);
		return 1;
	}
	if (strcmp(k, "monthly_requests") == 0) {
		unsigned n = 0;
		int r = set_uint(x, k, v, &n, 0, 4000000000u);
		c->monthly_requests = n;
		return r;
	}
	if (strcmp(k, "list_stall") == 0)
		return set_duration(x, k, v, &c->list_stall_ms, 1000);
	if (strcmp(k, "burst") == 0)
		return set_uint(x, k, v, &c->burst, 1, 100000);
	if (strcmp(k, "max_in_flight") == 0)
		return set_uint(x, k, v, &c->max_in_flight, 1, 4096);
	if (strcmp(k, "max_connections") == 0)
		return set_uint(x, k, v, &c->max_connections, 1, 1024);
	if (strcmp(k, "request_timeout") == 0)
		return set_duration(x, k, v, &c->request_timeout_ms, 100);
	if (strcmp(k, "sweep") == 0)
		return set_bool(x, k, v, &c->sweep);
	if (strcmp(k, "sweep_interval") == 0)
		return set_duration(x, k, v, &c->sweep_interval_ms, 10);
	if (strcmp(k, "sweep_interval_max") == 0)
		return set_duration(x, k, v, &c->sweep_interval_max_ms, 10);
	if (strcmp(k, "batch_sweep") == 0)
		return set_bool(x, k, v, &c->batch_sweep);
	if (strcmp(k, "batch_page_size") == 0)
		return set_uint(x, k, v, &c->batch_page_size, 1, 1000);
	if (strcmp(k, "list_max_bytes") == 0) {
		if (config_parse_size(v, &c->list_max_bytes) < 0 || c->list_max_bytes < 1024)
			return fail(x, "list_max_bytes: expected a size like 64MiB or 1048576 (at least 1k), got \"%s\"", v);
		return 1;
	}
	if (strcmp(k, "max_bytes_per_min") == 0) {
		if (config_parse_size(v, &c->max_bytes_per_min) < 0 || c->max_bytes_per_min < 65536)
			return fail(x, "max_bytes_per_min: expected a size like 64MiB or 512k (at least 64k), got \"%s\"", v);
		return 1;
	}
	if (strcmp(k, "planner") == 0) {
		static const struct { const char *n; enum planner_policy p; } policies[] = {
			{ "auto", PLANNER_AUTO }, { "sweep", PLANNER_SWEEP }, { "per-id", PLANNER_PER_ID },
		};
		for (size_t i = 0; i < ARRAY_SIZE(policies); i++) {
			if (strcmp(v, policies[i].n) == 0) {
				c->planner = policies[i].p;
				x->planner_line = x->line;
				return 1;
			}
		}
		return fail(x, "planner: expected auto, sweep or per-id, got \"%s\"", v);
	}
	return fail(x, "unknown key \"%s\" in [poll]", k);
}

static int discover_key(struct parse_ctx *x, const char *k, const char *v)
{
	struct ew_config *c = x->cfg;
	if (strcmp(k, "enabled") == 0)
		return set_bool(x, k, v, &c->discover);
	if (strcmp(k, "match") == 0) {
		if (!*v)
			return fail(x, "match: expected a glob on the job's name like nightly-* (or *)");
		return set_string(&c->discover_match, v);
	}
	if (strcmp(k, "batch") == 0) {
		if (strlen(v) > 128)
			return fail(x, "batch: at most 128 characters");
		return set_string(&c->discover_batch, v);
	}
	if (strcmp(k, "kinds") == 0) {
		char *copy = xstrdup(v), *save = NULL;
		c->discover_kinds = 0;
		for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
			int kind = job_kind_parse(t);
			if (kind < 0) {
				fail(x, "kinds: expected embed-job and/or batch-job, got \"%s\"", t);
				free(copy);
				return 0;
			}
			c->discover_kinds |= 1u << kind;
		}
		free(copy);
		if (!c->discover_kinds)
			return fail(x, "kinds: expected embed-job and/or batch-job");
		return 1;
	}
	return fail(x, "unknown key \"%s\" in [discover]; expected enabled, match, batch or kinds", k);
}

static int datasets_key(struct parse_ctx *x, const char *k, const char *v)
{
	struct ew_config *c = x->cfg;
	if (strcmp(k, "fetch") == 0)
		return set_bool(x, k, v, &c->datasets_fetch);
	if (strcmp(k, "timeout") == 0)
		return set_duration(x, k, v, &c->dataset_timeout_ms, 100);
	if (strcmp(k, "tries") == 0)
		return set_uint(x, k, v, &c->dataset_tries, 1, 10);
	return fail(x, "unknown key \"%s\" in [datasets]; expected fetch, timeout or tries", k);
}

/* "10%" (or "10"): a step of 1 to 100 percent; "0" or "no": none. */
static int set_percent_step(struct parse_ctx *x, const char *k, const char *v, unsigned *dst)
{
	char *end;
	if (strcmp(v, "no") == 0 || strcmp(v, "0") == 0 || strcmp(v, "0%") == 0) {
		*dst = 0;
		return 1;
	}
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)*v) || errno || (*end && strcmp(end, "%") != 0) || n < 1 || n > 100)
		return fail(x, "%s: expected a step of records like 10%% (1%% to 100%%), or 0 for none, got \"%s\"", k, v);
	*dst = (unsigned)n;
	return 1;
}

static int hooks_key(struct parse_ctx *x, const char *k, const char *v)
{
	struct ew_config *c = x->cfg;

	if (strcmp(k, "max_concurrent") == 0)
		return set_uint(x, k, v, &c->hooks_max_concurrent, 1, 1024);
	if (strcmp(k, "shutdown_grace") == 0)
		return set_duration(x, k, v, &c->shutdown_grace_ms, 0);
	if (strcmp(k, "delivery_retention") == 0)
		return set_duration(x, k, v, &c->delivery_retention_ms, 0);
	if (strcmp(k, "progress_every") == 0)
		return set_percent_step(x, k, v, &c->progress_every_pct);
	if (strcmp(k, "output_max") == 0) {
		unsigned n;
		if (!set_uint(x, k, v, &n, 0, 1 << 20))
			return 0;
		c->hook_output_max = n;
		return 1;
	}
	return fail(x, "unknown key \"%s\" in [hooks]", k);
}

static int hook_key(struct parse_ctx *x, struct ew_hook *h, const char *k, const char *v)
{
	if (strcmp(k, "type") == 0) {
		if (strcmp(v, "exec") == 0)
			h->type = HOOK_EXEC;
		else if (strcmp(v, "webhook") == 0)
			h->type = HOOK_WEBHOOK;
		else
			return fail(x, "type: expected exec or webhook, got \"%s\"", v);
		return 1;
	}
	if (strcmp(k, "command") == 0) {
		config_free_argv(h->argv);
		h->argv = NULL;
		if (config_split_argv(v, &h->argv) < 0)
			return fail(x, "command: expected a program and its arguments (quotes must be closed), got \"%s\"", v);
		if (h->argv[0][0] != '/')
			return fail(x, "command: the program must be an absolute path, got \"%s\"", h->argv[0]);
		return 1;
	}
	if (strcmp(k, "on") == 0) {
		char *copy = xstrdup(v), *save = NULL;
		h->on_mask = 0;
		for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
			enum ew_event e;
			if (strcmp(t, "*") == 0 || strcmp(t, "all") == 0) {
				h->on_mask |= JOB_EVENTS_MASK;
				continue;
			}
			e = job_event_parse(t);
			if (e == EV_NONE) {
				fail(x, "on: unknown event \"%s\"; expected embed_job.complete, embed_job.failed, "
				     "embed_job.cancelled, embed_job.cancelling, embed_job.expired, "
				     "embed_job.not_found, embed_job.error, the same batch_job.* events, batch_job.progress, "
				     "batch.done, hook.disabled, hook.enabled or *", t);
				free(copy);
				return 0;
			}
			h->on_mask |= 1u << e;
		}
		free(copy);
		if (!h->on_mask)
			return fail(x, "on: expected at least one event type");
		return 1;
	}
	if (strcmp(k, "timeout") == 0)
		return set_duration(x, k, v, &h->timeout_ms, 10);
	if (strcmp(k, "max_attempts") == 0)
		return set_uint(x, k, v, &h->max_attempts, 1, 1000);
	if (strcmp(k, "concurrency") == 0)
		return set_uint(x, k, v, &h->concurrency, 1, 1024);
	if (strcmp(k, "disable_after") == 0)
		return set_duration(x, k, v, &h->disable_after_ms, 0);
	if (strcmp(k, "rate") == 0) {
		if (!*v || strcmp(v, "0") == 0) {
			h->rate_per_s = 0;
			return 1;
		}
		if (config_parse_rate(v, &h->rate_per_s) < 0)
			return fail(x, "rate: expected deliveries per time like \"10/s\", \"600/min\" or 0 for no limit, got \"%s\"", v);
		return 1;
	}
	if (strcmp(k, "retry") == 0) {
		char *copy = xstrdup(v), *save = NULL;
		h->n_retry = 0;
		for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
			if (h->n_retry == CONFIG_MAX_RETRY) {
				free(copy);
				return fail(x, "retry: at most %d delays", CONFIG_MAX_RETRY);
			}
			if (config_parse_duration(t, &h->retry_ms[h->n_retry]) < 0) {
				fail(x, "retry: expected durations like \"5s 5m 30m 2h\", got \"%s\"", t);
				free(copy);
				return 0;
			}
			h->n_retry++;
		}
		free(copy);
		if (!h->n_retry)
			return fail(x, "retry: expected at least one duration");
		return 1;
	}
	if (strcmp(k, "url") == 0) {
		char err[256];
		if (api_base_check(v, err, sizeof(err)) < 0)
			return fail(x, "url: %s", err);
		return set_string(&h->url, v);
	}
	if (strcmp(k, "secret_file") == 0) {
		free(h->secret_file);
		h->secret_file = *v ? xstrdup(v) : NULL;
		return 1;
	}
	if (strcmp(k, "ca_file") == 0) {
		free(h->ca_file);
		h->ca_file = *v ? xstrdup(v) : NULL;
		return 1;
	}
	if (strcmp(k, "proxy") == 0) {
		char err[256];
		if (*v && strcmp(v, "direct") != 0 && config_check_proxy(v, err, sizeof(err)) < 0)
			return fail(x, "proxy: %s (or \"direct\" for none)", err);
		return set_opt_string(&h->proxy, v);
	}
	if (strcmp(k, "no_proxy") == 0)
		return set_opt_string(&h->no_proxy, v);
	if (strcmp(k, "batch") == 0)
		return set_opt_string(&h->batch_glob, v);
	if (strcmp(k, "job_name") == 0)
		return set_opt_string(&h->job_name_glob, v);
	return fail(x, "unknown key \"%s\" in [hook %s]", k, h->name);
}

/* A "[section]" line: checked and opened here, so an empty section is still seen. */
static void open_section(struct parse_ctx *x, const char *line)
{
	const char *e = strchr(line, ']');
	char name[128];

	x->hook = NULL;
	if (!e || (size_t)(e - line - 1) >= sizeof(name)) {
		x->section[0] = '\0';
		return;     /* inih reports the syntax error */
	}
	snprintf(name, sizeof(name), "%.*s", (int)(e - line - 1), line + 1);
	snprintf(x->section, sizeof(x->section), "%s", name);
	if (strncmp(name, "hook ", 5) == 0 || strcmp(name, "hook") == 0) {
		const char *hn = name + 4;
		while (*hn == ' ')
			hn++;
		if (!*hn) {
			fail(x, "[hook NAME]: the hook needs a name");
			return;
		}
		for (const char *p = hn; *p; p++) {
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
				fail(x, "[hook %s]: a hook name has only letters, digits, '-', '_' and '.'", hn);
				return;
			}
		}
		struct ew_config *c = x->cfg;
		for (size_t i = 0; i < c->n_hooks; i++) {
			if (strcmp(c->hooks[i].name, hn) == 0) {
				fail(x, "[hook %s]: defined twice", hn);
				return;
			}
		}
		c->hooks = xrealloc(c->hooks, (c->n_hooks + 1) * sizeof(*c->hooks));
		struct ew_hook *h = &c->hooks[c->n_hooks++];
		memset(h, 0, sizeof(*h));
		h->name = xstrdup(hn);
		h->line = x->line;
		h->max_attempts = 10;
		h->concurrency = 4;
		h->disable_after_ms = 3ULL * 24 * 3600 * 1000;
		x->hook = h;
	} else if (strcmp(name, "embedwatch") && strcmp(name, "poll") && strcmp(name, "hooks") && strcmp(name, "discover") &&
		   strcmp(name, "datasets")) {
		fail(x, "unknown section [%s]; expected [embedwatch], [poll], [hooks], [discover], [datasets] or [hook NAME]", name);
	}
}

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct parse_ctx *x = user;

	if (x->failed || !key)
		return x->failed ? 0 : 1;
	if (section[0] == '\0')
		return fail(x, "key \"%s\" outside a section; expected [embedwatch], [poll], [hooks] or [hook NAME] first", key);
	if (strcmp(section, "embedwatch") == 0)
		return main_key(x, key, value);
	if (strcmp(section, "poll") == 0)
		return poll_key(x, key, value);
	if (strcmp(section, "hooks") == 0)
		return hooks_key(x, key, value);
	if (strcmp(section, "discover") == 0)
		return discover_key(x, key, value);
	if (strcmp(section, "datasets") == 0)
		return datasets_key(x, key, value);
	if (x->hook)
		return hook_key(x, x->hook, key, value);
	return 0;
}

/* inih's reader: counts lines so every message can name its line, and opens sections. */
static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *x = stream;
	char *r = fgets(str, num, x->f);
	if (r) {
		x->line++;
		const char *p = r;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[' && !x->failed)
			open_section(x, p);
	}
	return r;
}

static int validate(struct parse_ctx *x)
{
	struct ew_config *c = x->cfg;

	if (c->lease_renew_ms * 2 > c->lease_ttl_ms)
		return fail(x, "[embedwatch] lease_renew (%llums) must be at most half of lease_ttl (%llums): a renewal "
			    "may fail once without the lease expiring", (unsigned long long)c->lease_renew_ms,
			    (unsigned long long)c->lease_ttl_ms);
	if (c->state_password_file && !c->state_url)
		return fail(x, "[embedwatch] state_password_file is set but state_url is not (the password is for PostgreSQL)");

	if (c->sweep_interval_ms > c->sweep_interval_max_ms)
		return fail(x, "[poll] sweep_interval (%llums) is longer than sweep_interval_max (%llums)",
			    (unsigned long long)c->sweep_interval_ms, (unsigned long long)c->sweep_interval_max_ms);
	if (c->interval_min_ms > c->interval_max_ms)
		return fail(x, "[poll] interval_min (%llums) is longer than interval_max (%llums)",
			    (unsigned long long)c->interval_min_ms, (unsigned long long)c->interval_max_ms);
	if (c->discover && c->planner == PLANNER_PER_ID) {
		x->line = x->planner_line;
		return fail(x, "[poll] planner = per-id never reads the list, and [discover] finds jobs only there; "
			    "use planner = auto (it sweeps while discovery is on) or turn discovery off");
	}
	for (size_t i = 0; i < c->n_hooks; i++) {
		struct ew_hook *h = &c->hooks[i];
		x->line = h->line;
		if (!h->type)
			return fail(x, "[hook %s]: missing \"type\" (exec or webhook)", h->name);
		if (!h->on_mask)
			return fail(x, "[hook %s]: missing \"on\" (the event types it runs for)", h->name);
		if (h->type == HOOK_EXEC && !h->argv)
			return fail(x, "[hook %s]: an exec hook needs \"command\"", h->name);
		if (h->type == HOOK_EXEC && (h->url || h->secret_file))
			return fail(x, "[hook %s]: url and secret_file belong to webhook hooks", h->name);
		if (h->type == HOOK_WEBHOOK && !h->url)
			return fail(x, "[hook %s]: a webhook hook needs \"url\"", h->name);
		if (h->type == HOOK_WEBHOOK && h->argv)
			return fail(x, "[hook %s]: command belongs to exec hooks", h->name);
		if (!h->timeout_ms)
			h->timeout_ms = h->type == HOOK_EXEC ? 60000 : 15000;
		if (!h->n_retry) {
			static const uint64_t def[] = { 5000, 300000, 1800000, 7200000, 21600000 };
			memcpy(h->retry_ms, def, sizeof(def));
			h->n_retry = ARRAY_SIZE(def);
		}
	}
	return 1;
}

int config_load_stream(FILE *f, const char *name, struct ew_config *cfg, char *err, size_t errlen)
{
	struct parse_ctx x = { .cfg = cfg, .name = name, .f = f, .err = err, .errlen = errlen };

	config_defaults(cfg);
	cfg->path = xstrdup(name);
	int r = ini_parse_stream(reader, &x, on_entry, &x);
	if (r != 0 && !x.failed) {
		/* inih's own syntax error (no '=' or ']'); r is the line. */
		x.line = r > 0 ? (unsigned)r : x.line;
		fail(&x, "syntax error: expected [section] or key = value");
	}
	if (!x.failed)
		validate(&x);
	if (x.failed) {
		config_clear(cfg);
		return -EINVAL;
	}
	return 0;
}

int config_load(const char *path, struct ew_config *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
		memset(cfg, 0, sizeof(*cfg));
		return -e;
	}
	int r = config_load_stream(f, path, cfg, err, errlen);
	fclose(f);
	return r;
}
