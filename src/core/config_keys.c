/*
 * The configuration's keys: one table per section, a row per key (its name,
 * its type, where it lands, its bounds, its default and one line of doc),
 * walked by one loop to read a key, to set the defaults and to print the
 * effective configuration. A type is a parse and a format function.
 */
#include "config_int.h"

#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "api.h"
#include "provider.h"
#include "util.h"

struct config_key;

/* How a key's value is read into dst (1, or config_fail's 0) and written back as the file says it. */
struct key_type {
	int (*parse)(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst);
	/* Formats dst into b; false when unset and not writable ("url" of an exec hook). */
	bool (*format)(const struct config_key *k, const void *dst, struct buf *b);
	/* Frees what dst owns, or NULL when it owns nothing. */
	void (*free)(void *dst);
};

struct config_key {
	const char *name;
	const struct key_type *type;
	size_t off;                 /* into struct ew_config, or struct ew_hook for [hook NAME] */
	double min, max;            /* bounds: numbers, durations and sizes (ms, bytes) */
	const char *def;            /* the default as the file says it; NULL: none (zero, or set by validate) */
	const char *expect;         /* what the message says was expected, for rates and sizes */
	const char *doc;
};

struct config_section {
	const char *name;
	const struct config_key *keys;
	size_t n;
	bool list_keys;             /* an unknown key's message lists the known ones */
};

#define FAIL_GOT(x, k, what, v) config_fail(x, "%s: expected " what ", got \"%s\"", (k)->name, v)

/* ---- the types ---- */

static int str_set(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
	return 1;
}

static int opt_set(char **dst, const char *v)
{
	free(*dst);
	*dst = *v ? xstrdup(v) : NULL;
	return 1;
}

static void str_free(void *dst)
{
	free(*(char **)dst);
}

static void argv_free(void *dst)
{
	config_free_argv(*(char ***)dst);
}

static bool str_format(const struct config_key *k, const void *dst, struct buf *b)
{
	const char *s = *(char *const *)dst;
	(void)k;
	buf_printf(b, "%s", s ? s : "");
	return true;
}

/* A string that must be set to be written back (a hook's url, command). */
static bool set_format(const struct config_key *k, const void *dst, struct buf *b)
{
	return *(char *const *)dst && str_format(k, dst, b);
}

static int str_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	(void)x, (void)k;
	return str_set(dst, v);
}

static int opt_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	(void)x, (void)k;
	return opt_set(dst, v);
}

static int url_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char err[256];
	if (api_base_check(v, err, sizeof(err)) < 0)
		return config_fail(x, "%s: %s", k->name, err);
	return str_set(dst, v);
}

static int printable_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	for (const char *p = v; *p; p++)
		if (!isprint((unsigned char)*p))
			return config_fail(x, "%s: expected printable characters", k->name);
	return str_set(dst, v);
}

static int abspath_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	if (v[0] != '/')
		return FAIL_GOT(x, k, "an absolute path", v);
	return str_set(dst, v);
}

static int sockpath_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	if (v[0] != '/' || strlen(v) >= 108)
		return FAIL_GOT(x, k, "an absolute path shorter than 108 bytes", v);
	return str_set(dst, v);
}

static int group_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_-.", *p))
			return FAIL_GOT(x, k, "a group name", v);
	return str_set(dst, v);
}

static int glob_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	if (!*v)
		return config_fail(x, "%s: expected a glob on the job's name like nightly-* (or *)", k->name);
	return str_set(dst, v);
}

static int rule_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	if (strlen(v) > 128)
		return config_fail(x, "%s: at most 128 characters", k->name);
	return str_set(dst, v);
}

static int listen_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	struct sockaddr_storage ss;
	if (*v && config_parse_listen(v, &ss) < 0)
		return FAIL_GOT(x, k, "[ADDRESS:]PORT like 9810, 127.0.0.1:9810 or [::1]:9810", v);
	return opt_set(dst, v);
}

static int proxy_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char err[256];
	if (*v && config_check_proxy(v, err, sizeof(err)) < 0)
		return config_fail(x, "%s: %s", k->name, err);
	return opt_set(dst, v);
}

static int hook_proxy_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char err[256];
	if (*v && strcmp(v, "direct") != 0 && config_check_proxy(v, err, sizeof(err)) < 0)
		return config_fail(x, "%s: %s (or \"direct\" for none)", k->name, err);
	return opt_set(dst, v);
}

static int state_url_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char err[256];
	if (*v && config_check_state_url(v, err, sizeof(err)) < 0)
		return config_fail(x, "%s: %s", k->name, err);
	return opt_set(dst, v);
}

/* A URL or a libpq key=value string with any password in it masked. */
static bool secret_format(const struct config_key *k, const void *dst, struct buf *b)
{
	const char *s = *(char *const *)dst;
	(void)k;
	if (s)
		config_mask_secrets(s, b);
	return true;
}

static int duration_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	uint64_t ms;
	if (config_parse_duration(v, &ms) < 0)
		return FAIL_GOT(x, k, "a duration like 500ms, 30s, 5m, 24h or 7d", v);
	if (ms < (uint64_t)k->min)
		return config_fail(x, "%s: %s is too short, at least %llums", k->name, v, (unsigned long long)k->min);
	*(uint64_t *)dst = ms;
	return 1;
}

/* ms in the largest unit that holds it whole: "7d", "90s", "250ms". */
static void duration_put(struct buf *b, uint64_t ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (ms && ms % units[i].ms == 0) {
			buf_printf(b, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
			return;
		}
	}
	buf_printf(b, "%llums", (unsigned long long)ms);
}

static bool duration_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	duration_put(b, *(const uint64_t *)dst);
	return true;
}

/* A whole number within the row's bounds into *ret. */
static int uint_value(struct parse_ctx *x, const struct config_key *k, const char *v, unsigned long *ret)
{
	char *end;
	unsigned long min = (unsigned long)k->min, max = (unsigned long)k->max;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)*v) || *end || errno || n < min || n > max)
		return config_fail(x, "%s: expected a whole number from %lu to %lu, got \"%s\"", k->name, min, max, v);
	*ret = n;
	return 1;
}

static int uint_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	unsigned long n;
	if (!uint_value(x, k, v, &n))
		return 0;
	*(unsigned *)dst = (unsigned)n;
	return 1;
}

static bool uint_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	buf_printf(b, "%u", *(const unsigned *)dst);
	return true;
}

static int u64_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	unsigned long n;
	if (!uint_value(x, k, v, &n))
		return 0;
	*(uint64_t *)dst = n;
	return 1;
}

static bool u64_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	buf_printf(b, "%llu", (unsigned long long)*(const uint64_t *)dst);
	return true;
}

static int sizet_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	unsigned long n;
	if (!uint_value(x, k, v, &n))
		return 0;
	*(size_t *)dst = n;
	return 1;
}

static bool sizet_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	buf_printf(b, "%zu", *(const size_t *)dst);
	return true;
}

static int size_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	uint64_t n;
	if (config_parse_size(v, &n) < 0 || n < (uint64_t)k->min)
		return config_fail(x, "%s: expected %s, got \"%s\"", k->name, k->expect, v);
	*(uint64_t *)dst = n;
	return 1;
}

static int mode_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char *end;
	unsigned long m = strtoul(v, &end, 8);
	if (!*v || *end || m > 0777)
		return FAIL_GOT(x, k, "an octal mode like 0660", v);
	*(unsigned *)dst = (unsigned)m;
	return 1;
}

static bool mode_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	buf_printf(b, "%04o", *(const unsigned *)dst);
	return true;
}

static int bool_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*(bool *)dst = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*(bool *)dst = false;
	else
		return FAIL_GOT(x, k, "yes or no", v);
	return 1;
}

static bool bool_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	buf_printf(b, "%s", *(const bool *)dst ? "yes" : "no");
	return true;
}

static int double_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (end == v || *end || errno || !(d >= k->min && d <= k->max))
		return config_fail(x, "%s: expected a number from %g to %g, got \"%s\"", k->name, k->min, k->max, v);
	*(double *)dst = d;
	return 1;
}

/* The shortest of %g and %.17g that reads back as d. */
static void double_put(struct buf *b, double d)
{
	char s[64];
	snprintf(s, sizeof(s), "%g", d);
	if (strtod(s, NULL) != d)
		snprintf(s, sizeof(s), "%.17g", d);
	buf_printf(b, "%s", s);
}

static bool double_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	double_put(b, *(const double *)dst);
	return true;
}

static int rate_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	if (config_parse_rate(v, dst) < 0)
		return config_fail(x, "%s: expected %s, got \"%s\"", k->name, k->expect, v);
	return 1;
}

/* A rate, or "0" (or nothing) for no limit. */
static int rate0_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	if (!*v || strcmp(v, "0") == 0) {
		*(double *)dst = 0;
		return 1;
	}
	return rate_parse(x, k, v, dst);
}

/* Per second, minute or hour: the first unit in which it is a whole number that reads back exactly. */
static bool rate_format(const struct config_key *k, const void *dst, struct buf *b)
{
	static const struct { const char *unit; double per; } units[] = { { "s", 1 }, { "min", 60 }, { "h", 3600 } };
	double r = *(const double *)dst;
	(void)k;
	if (r == 0) {
		buf_printf(b, "0");
		return true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		double n = round(r * units[i].per);
		if (n >= 1 && n / units[i].per == r) {
			buf_printf(b, "%.0f/%s", n, units[i].unit);
			return true;
		}
	}
	double_put(b, r);
	buf_printf(b, "/s");
	return true;
}

/* A name out of a list of (name, value) into an int (log levels, planners, hook types). */
struct name_value { const char *name; int value; };

static const struct name_value log_levels[] = {
	{ "error", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO },
	{ "debug", LOG_DEBUG }, { NULL, 0 },
};
static const struct name_value planners[] = {
	{ "auto", PLANNER_AUTO }, { "sweep", PLANNER_SWEEP }, { "per-id", PLANNER_PER_ID }, { NULL, 0 },
};
static const struct name_value hook_types[] = { { "exec", HOOK_EXEC }, { "webhook", HOOK_WEBHOOK }, { NULL, 0 } };

static int names_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst,
		       const struct name_value *names)
{
	for (const struct name_value *n = names; n->name; n++) {
		if (strcmp(v, n->name) == 0) {
			*(int *)dst = n->value;
			return 1;
		}
	}
	return config_fail(x, "%s: expected %s, got \"%s\"", k->name, k->expect, v);
}

static bool names_format(const void *dst, struct buf *b, const struct name_value *names)
{
	for (const struct name_value *n = names; n->name; n++) {
		if (*(const int *)dst == n->value) {
			buf_printf(b, "%s", n->name);
			return true;
		}
	}
	return false;
}

static int level_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	return names_parse(x, k, v, dst, log_levels);
}

static bool level_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	return names_format(dst, b, log_levels);
}

static int planner_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	_Static_assert(sizeof(enum planner_policy) == sizeof(int), "planner read as an int");
	if (!names_parse(x, k, v, dst, planners))
		return 0;
	x->planner_line = x->line;
	return 1;
}

static bool planner_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	return names_format(dst, b, planners);
}

static int hook_type_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	_Static_assert(sizeof(enum hook_type) == sizeof(int), "hook type read as an int");
	return names_parse(x, k, v, dst, hook_types);
}

static bool hook_type_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	return names_format(dst, b, hook_types);
}

/* An account's provider: any but cohere (Cohere's account is [embedwatch]). */
static int provider_key_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	int p = provider_parse(v);
	if (p < 0 || p == PROV_COHERE)
		return config_fail(x, "%s: expected %s, got \"%s\"%s", k->name, k->expect, v,
				   p == PROV_COHERE ? " (the Cohere account is [embedwatch] api_base and its key)" : "");
	*(int *)dst = p;
	return 1;
}

static bool provider_key_format(const struct config_key *k, const void *dst, struct buf *b)
{
	(void)k;
	int p = *(const int *)dst;
	if (p < 0)
		return false;
	buf_printf(b, "%s", provider_name((enum provider)p));
	return true;
}

/* "10%" (or "10"): a step of 1 to 100 percent; "0" or "no": none. */
static int percent_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char *end;
	if (strcmp(v, "no") == 0 || strcmp(v, "0") == 0 || strcmp(v, "0%") == 0) {
		*(unsigned *)dst = 0;
		return 1;
	}
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)*v) || errno || (*end && strcmp(end, "%") != 0) || n < 1 || n > 100)
		return FAIL_GOT(x, k, "a step of records like 10%% (1%% to 100%%), or 0 for none", v);
	*(unsigned *)dst = (unsigned)n;
	return 1;
}

static bool percent_format(const struct config_key *k, const void *dst, struct buf *b)
{
	unsigned n = *(const unsigned *)dst;
	(void)k;
	buf_printf(b, n ? "%u%%" : "0", n);
	return true;
}

static int kinds_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char *copy = xstrdup(v), *save = NULL;
	unsigned kinds = 0;
	for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		int kind = job_kind_parse(t);
		if (kind < 0) {
			FAIL_GOT(x, k, "embed-job and/or batch-job", t);
			free(copy);
			return 0;
		}
		kinds |= 1u << kind;
	}
	free(copy);
	*(unsigned *)dst = kinds;
	if (!kinds)
		return config_fail(x, "%s: expected embed-job and/or batch-job", k->name);
	return 1;
}

static bool kinds_format(const struct config_key *k, const void *dst, struct buf *b)
{
	unsigned kinds = *(const unsigned *)dst;
	(void)k;
	for (int i = 0; i < JOB_KIND__MAX; i++)
		if (kinds & (1u << i))
			buf_printf(b, "%s%s", b->len ? " " : "", job_kind_name((enum job_kind)i));
	return true;
}

static int events_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char *copy = xstrdup(v), *save = NULL;
	uint32_t mask = 0;
	for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		if (strcmp(t, "*") == 0 || strcmp(t, "all") == 0) {
			mask |= JOB_EVENTS_MASK;
			continue;
		}
		enum ew_event e = job_event_parse(t);
		if (e == EV_NONE) {
			config_fail(x, "%s: unknown event \"%s\"; expected embed_job.complete, embed_job.failed, "
				    "embed_job.cancelled, embed_job.cancelling, embed_job.expired, "
				    "embed_job.not_found, embed_job.error, embed_job.stalled, the same batch_job.* events, "
				    "batch_job.progress, batch_job.expiring, batch.done, hook.disabled, hook.enabled or *", k->name, t);
			free(copy);
			return 0;
		}
		mask |= 1u << e;
	}
	free(copy);
	*(uint32_t *)dst = mask;
	if (!mask)
		return config_fail(x, "%s: expected at least one event type", k->name);
	return 1;
}

static bool events_format(const struct config_key *k, const void *dst, struct buf *b)
{
	uint32_t mask = *(const uint32_t *)dst;
	(void)k;
	if ((mask & JOB_EVENTS_MASK) == JOB_EVENTS_MASK) {
		buf_printf(b, "*");
		mask &= ~(uint32_t)JOB_EVENTS_MASK;
	}
	for (int e = EV_NONE + 1; e < EV__MAX; e++)
		if (mask & (1u << e))
			buf_printf(b, "%s%s", b->len ? " " : "", job_event_name((enum ew_event)e));
	return true;
}

static int argv_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	char ***argv = dst;
	config_free_argv(*argv);
	*argv = NULL;
	if (config_split_argv(v, argv) < 0)
		return FAIL_GOT(x, k, "a program and its arguments (quotes must be closed)", v);
	if ((*argv)[0][0] != '/')
		return config_fail(x, "%s: the program must be an absolute path, got \"%s\"", k->name, (*argv)[0]);
	return 1;
}

/* Each word as config_split_argv reads it back: bare, or '...' quoted, or with backslashes. */
static bool argv_format(const struct config_key *k, const void *dst, struct buf *b)
{
	char *const *argv = *(char **const *)dst;
	(void)k;
	if (!argv)
		return false;
	for (char *const *a = argv; *a; a++) {
		if (a != argv)
			buf_printf(b, " ");
		if (**a && !strpbrk(*a, " \t'\"\\"))
			buf_printf(b, "%s", *a);
		else if (!strchr(*a, '\''))
			buf_printf(b, "'%s'", *a);
		else
			for (const char *p = *a; *p; p++)
				buf_printf(b, "%s%c", strchr(" \t'\"\\", *p) ? "\\" : "", *p);
	}
	return true;
}

static int retry_parse(struct parse_ctx *x, const struct config_key *k, const char *v, void *dst)
{
	struct ew_hook *h = (struct ew_hook *)((char *)dst - offsetof(struct ew_hook, retry_ms));
	char *copy = xstrdup(v), *save = NULL;
	h->n_retry = 0;
	for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		if (h->n_retry == CONFIG_MAX_RETRY) {
			free(copy);
			return config_fail(x, "%s: at most %d delays", k->name, CONFIG_MAX_RETRY);
		}
		if (config_parse_duration(t, &h->retry_ms[h->n_retry]) < 0) {
			config_fail(x, "%s: expected durations like \"5s 5m 30m 2h\", got \"%s\"", k->name, t);
			free(copy);
			return 0;
		}
		h->n_retry++;
	}
	free(copy);
	if (!h->n_retry)
		return config_fail(x, "%s: expected at least one duration", k->name);
	return 1;
}

static bool retry_format(const struct config_key *k, const void *dst, struct buf *b)
{
	const struct ew_hook *h = (const struct ew_hook *)((const char *)dst - offsetof(struct ew_hook, retry_ms));
	(void)k;
	for (size_t i = 0; i < h->n_retry; i++) {
		buf_printf(b, "%s", i ? " " : "");
		duration_put(b, h->retry_ms[i]);
	}
	return h->n_retry > 0;
}

static const struct key_type T_STR = { str_parse, str_format, str_free }, T_OPT = { opt_parse, str_format, str_free },
	T_URL = { url_parse, set_format, str_free }, T_PRINTABLE = { printable_parse, str_format, str_free },
	T_ABSPATH = { abspath_parse, str_format, str_free }, T_SOCKPATH = { sockpath_parse, str_format, str_free },
	T_GROUP = { group_parse, str_format, str_free }, T_GLOB = { glob_parse, str_format, str_free }, T_RULE = { rule_parse, str_format, str_free },
	T_LISTEN = { listen_parse, str_format, str_free }, T_PROXY = { proxy_parse, secret_format, str_free },
	T_HOOK_PROXY = { hook_proxy_parse, secret_format, str_free }, T_STATE_URL = { state_url_parse, secret_format, str_free },
	T_DURATION = { duration_parse, duration_format, NULL }, T_UINT = { uint_parse, uint_format, NULL },
	T_U64 = { u64_parse, u64_format, NULL }, T_SIZET = { sizet_parse, sizet_format, NULL }, T_SIZE = { size_parse, u64_format, NULL },
	T_MODE = { mode_parse, mode_format, NULL }, T_BOOL = { bool_parse, bool_format, NULL },
	T_DOUBLE = { double_parse, double_format, NULL }, T_RATE = { rate_parse, rate_format, NULL },
	T_RATE0 = { rate0_parse, rate_format, NULL }, T_LEVEL = { level_parse, level_format, NULL },
	T_PLANNER = { planner_parse, planner_format, NULL }, T_HOOK_TYPE = { hook_type_parse, hook_type_format, NULL },
	T_PERCENT = { percent_parse, percent_format, NULL }, T_KINDS = { kinds_parse, kinds_format, NULL },
	T_EVENTS = { events_parse, events_format, NULL }, T_ARGV = { argv_parse, argv_format, argv_free },
	T_RETRY = { retry_parse, retry_format, NULL }, T_PROVIDER = { provider_key_parse, provider_key_format, NULL };

/* ---- the tables ---- */

#define C(f) offsetof(struct ew_config, f)
#define H(f) offsetof(struct ew_hook, f)
#define A(f) offsetof(struct ew_account, f)

static const struct config_key main_keys[] = {
	{ "api_base", &T_URL, C(api_base), 0, 0, "https://api.cohere.com", NULL, "the API's base URL" },
	{ "api_key_file", &T_STR, C(api_key_file), 0, 0, "", NULL, "a file holding the API key (else the credential or CO_API_KEY)" },
	{ "client_name", &T_PRINTABLE, C(client_name), 0, 0, "embedwatch", NULL, "X-Client-Name sent to the API" },
	{ "state_dir", &T_ABSPATH, C(state_dir), 0, 0, "/var/lib/embedwatch", NULL, "the SQLite state's directory" },
	{ "state_url", &T_STATE_URL, C(state_url), 0, 0, NULL, NULL, "a PostgreSQL URI shared by several daemons; empty: SQLite" },
	{ "state_password_file", &T_OPT, C(state_password_file), 0, 0, NULL, NULL, "a file holding state_url's password" },
	{ "lease_ttl", &T_DURATION, C(lease_ttl_ms), 1000, 0, "10s", NULL, "the active's lease expires this long after its renewal" },
	{ "lease_renew", &T_DURATION, C(lease_renew_ms), 100, 0, "2s", NULL, "the active renews its lease this often" },
	{ "control_socket", &T_SOCKPATH, C(control_socket), 0, 0, "/run/embedwatch/control.sock", NULL, "the control socket" },
	{ "control_mode", &T_MODE, C(control_mode), 0, 0, "0660", NULL, "its mode" },
	{ "control_group", &T_GROUP, C(control_group), 0, 0, "", NULL, "its group; empty: the daemon's" },
	{ "control_idle_timeout", &T_DURATION, C(control_idle_timeout_ms), 100, 0, "60s", NULL, "a silent client is dropped after" },
	{ "max_waiters", &T_UINT, C(max_waiters), 1, 100000, "4096", NULL, "control clients blocked in wait" },
	{ "log_level", &T_LEVEL, C(log_level), 0, 0, "info", "error, warning, notice, info or debug", "error, warning, notice, info or debug" },
	{ "max_age", &T_DURATION, C(max_age_ms), 0, 0, "7d", NULL, "a job is watched this long at most; 0ms: forever" },
	{ "cancel_on_expire", &T_BOOL, C(cancel_on_expire), 0, 0, "no", NULL, "past max_age, cancel the job" },
	{ "retention", &T_DURATION, C(retention_ms), 0, 0, "7d", NULL, "ended jobs and old events are forgotten after; 0ms: never" },
	{ "metrics_file", &T_STR, C(metrics_file), 0, 0, "", NULL, "a Prometheus textfile; empty: none" },
	{ "metrics_listen", &T_LISTEN, C(metrics_listen), 0, 0, NULL, NULL, "[ADDRESS:]PORT serving GET /metrics; empty: off" },
	{ "api_ca_file", &T_OPT, C(api_ca_file), 0, 0, NULL, NULL, "a CA bundle for the API instead of the system's" },
	{ "proxy", &T_PROXY, C(proxy), 0, 0, NULL, NULL, "a proxy URL; empty: https_proxy and the like" },
	{ "no_proxy", &T_OPT, C(no_proxy), 0, 0, NULL, NULL, "hosts that bypass the proxy" },
	{ "proxy_credentials_file", &T_OPT, C(proxy_credentials_file), 0, 0, NULL, NULL, "a file holding user:password for the proxy" },
};

static const struct config_key poll_keys[] = {
	{ "interval_min", &T_DURATION, C(interval_min_ms), 10, 0, "5s", NULL, "the shortest delay between polls of a job" },
	{ "interval_max", &T_DURATION, C(interval_max_ms), 10, 0, "60s", NULL, "the longest" },
	{ "backoff", &T_DOUBLE, C(backoff), 1.0, 10.0, "1.5", NULL, "the delay grows by this factor while nothing changes" },
	{ "jitter", &T_DOUBLE, C(jitter), 0.0, 0.5, "0.2", NULL, "a random part of each delay" },
	{ "rate", &T_RATE, C(rate_per_s), 0, 0, "40/min", "requests per time like 40/min, 10/s or 3000/h",
	  "the embed-job endpoints' rate" },
	{ "default_rate", &T_RATE, C(default_rate_per_s), 0, 0, "400/min", "requests per time like 400/min or 5/s",
	  "every other endpoint's rate" },
	{ "monthly_requests", &T_U64, C(monthly_requests), 0, 4000000000.0, "0", NULL, "a calendar month's calls; 0: no limit" },
	{ "burst", &T_UINT, C(burst), 1, 100000, "10", NULL, "requests at once above the rate" },
	{ "max_in_flight", &T_UINT, C(max_in_flight), 1, 4096, "32", NULL, "requests in flight" },
	{ "max_connections", &T_UINT, C(max_connections), 1, 1024, "8", NULL, "connections to the API" },
	{ "request_timeout", &T_DURATION, C(request_timeout_ms), 100, 0, "30s", NULL, "a request is cut after" },
	{ "list_stall", &T_DURATION, C(list_stall_ms), 1000, 0, "10s", NULL, "a list receiving under 1 KiB this long is cut" },
	{ "stall_after", &T_DURATION, C(stall_after_ms), 0, 0, "0ms", NULL,
	  "*.stalled once when a job's status and records do not move this long; 0ms: never" },
	{ "planner", &T_PLANNER, C(planner), 0, 0, "auto", "auto, sweep or per-id", "auto, sweep or per-id" },
	{ "sweep", &T_BOOL, C(sweep), 0, 0, "yes", NULL, "list sweeps observe every embed job at once" },
	{ "sweep_interval", &T_DURATION, C(sweep_interval_ms), 10, 0, "5s", NULL, "between sweeps while something changes" },
	{ "sweep_interval_max", &T_DURATION, C(sweep_interval_max_ms), 10, 0, "60s", NULL, "between sweeps at most" },
	{ "list_max_bytes", &T_SIZE, C(list_max_bytes), 1024, 0, "64MiB", "a size like 64MiB or 1048576 (at least 1k)",
	  "a larger list answer: per-id polling instead" },
	{ "max_bytes_per_min", &T_SIZE, C(max_bytes_per_min), 65536, 0, "64MiB", "a size like 64MiB or 512k (at least 64k)",
	  "the byte budget on the wire" },
	{ "batch_sweep", &T_BOOL, C(batch_sweep), 0, 0, "yes", NULL, "GET /v2/batches observes the watched batch jobs" },
	{ "batch_page_size", &T_UINT, C(batch_page_size), 1, 1000, "1000", NULL, "its page size" },
};

static const struct config_key discover_keys[] = {
	{ "enabled", &T_BOOL, C(discover), 0, 0, "no", NULL, "watch the jobs the lists show" },
	{ "match", &T_GLOB, C(discover_match), 0, 0, "*", NULL, "a glob on the job's name" },
	{ "batch", &T_RULE, C(discover_batch), 0, 0, "", NULL, "the batch a found job joins: {name-prefix}, {name} or a name" },
	{ "kinds", &T_KINDS, C(discover_kinds), 0, 0, "embed-job batch-job", NULL, "embed-job and/or batch-job" },
};

static const struct config_key datasets_keys[] = {
	{ "fetch", &T_BOOL, C(datasets_fetch), 0, 0, "yes", NULL, "complete events carry the output dataset" },
	{ "timeout", &T_DURATION, C(dataset_timeout_ms), 100, 0, "60s", NULL, "the event waits for it this long at most" },
	{ "tries", &T_UINT, C(dataset_tries), 1, 10, "3", NULL, "tries to fetch it" },
};

static const struct config_key hooks_keys[] = {
	{ "max_concurrent", &T_UINT, C(hooks_max_concurrent), 1, 1024, "16", NULL, "hooks running at once" },
	{ "shutdown_grace", &T_DURATION, C(shutdown_grace_ms), 0, 0, "10s", NULL, "running hooks get this long at shutdown" },
	{ "delivery_retention", &T_DURATION, C(delivery_retention_ms), 0, 0, "7d", NULL, "finished deliveries are kept; 0ms: forever" },
	{ "progress_every", &T_PERCENT, C(progress_every_pct), 0, 0, "0", NULL, "batch_job.progress every this many percent" },
	{ "output_max", &T_SIZET, C(hook_output_max), 0, 1 << 20, "16384", NULL, "bytes of a hook's output kept" },
};

static const struct config_key hook_keys[] = {
	{ "type", &T_HOOK_TYPE, H(type), 0, 0, NULL, "exec or webhook", "exec or webhook" },
	{ "on", &T_EVENTS, H(on_mask), 0, 0, NULL, NULL, "the events it runs for; * for every job event" },
	{ "command", &T_ARGV, H(argv), 0, 0, NULL, NULL, "exec: the program (absolute) and its arguments, no shell" },
	{ "url", &T_URL, H(url), 0, 0, NULL, NULL, "webhook: where events are posted" },
	{ "secret_file", &T_OPT, H(secret_file), 0, 0, NULL, NULL, "webhook: a file of whsec_ signing secrets" },
	{ "ca_file", &T_OPT, H(ca_file), 0, 0, NULL, NULL, "webhook: a CA bundle instead of the system's" },
	{ "proxy", &T_HOOK_PROXY, H(proxy), 0, 0, NULL, NULL, "webhook: a proxy URL, direct; empty: as [embedwatch]" },
	{ "no_proxy", &T_OPT, H(no_proxy), 0, 0, NULL, NULL, "webhook: hosts that bypass it; empty: as [embedwatch]" },
	{ "timeout", &T_DURATION, H(timeout_ms), 10, 0, NULL, NULL, "an attempt is cut after (60s exec, 15s webhook)" },
	{ "max_attempts", &T_UINT, H(max_attempts), 1, 1000, "10", NULL, "attempts of one delivery" },
	{ "concurrency", &T_UINT, H(concurrency), 1, 1024, "4", NULL, "its deliveries at once" },
	{ "retry", &T_RETRY, H(retry_ms), 0, 0, "5s 5m 30m 2h 6h", NULL, "delays before attempts 2, 3, ...; the last repeats" },
	{ "disable_after", &T_DURATION, H(disable_after_ms), 0, 0, "3d", NULL, "every attempt failing this long disables it; 0ms: never" },
	{ "rate", &T_RATE0, H(rate_per_s), 0, 0, NULL, "deliveries per time like \"10/s\", \"600/min\" or 0 for no limit",
	  "deliveries per time at most; 0: no limit" },
	{ "batch", &T_OPT, H(batch_glob), 0, 0, NULL, NULL, "only events of batches matching this glob" },
	{ "job_name", &T_OPT, H(job_name_glob), 0, 0, NULL, NULL, "only events of jobs whose name matches" },
};

/* [account NAME]: where a default is NULL, validate() sets the provider's. */
static const struct config_key account_keys[] = {
	{ "provider", &T_PROVIDER, A(provider), 0, 0, NULL, "openai, anthropic, gemini or mistral",
	  "openai, anthropic, gemini or mistral" },
	{ "api_base", &T_URL, A(api_base), 0, 0, NULL, NULL, "the API's base URL; empty: the provider's" },
	{ "key_file", &T_OPT, A(key_file), 0, 0, NULL, NULL, "a file holding the key; empty: the credential NAME-api-key" },
	{ "rate", &T_RATE, A(rate_per_s), 0, 0, NULL, "requests per time like 60/min or 1/s",
	  "its requests per time, get, list and cancel together (the provider's default when unset)" },
	{ "sweep", &T_BOOL, A(sweep), 0, 0, "yes", NULL, "its list is read to observe its watched jobs at once" },
	{ "page_size", &T_UINT, A(page_size), 0, 1000, "0", NULL, "that list's page size; 0: the largest the provider serves" },
	{ "stall_after", &T_DURATION, A(stall_after_ms), 0, 0, "0ms", NULL,
	  "batch_job.stalled once when a job's status and counts do not move this long; 0ms: never" },
	{ "expiring", &T_DURATION, A(expiring_ms), 0, 0, "1h", NULL,
	  "batch_job.expiring this long before the provider's deadline; 0ms: never" },
};

#define SECTION(n, keys, list) { n, keys, ARRAY_SIZE(keys), list }
static const struct config_section sections[] = {
	SECTION("embedwatch", main_keys, false), SECTION("poll", poll_keys, false),
	SECTION("discover", discover_keys, true), SECTION("datasets", datasets_keys, true),
	SECTION("hooks", hooks_keys, false), SECTION("hook", hook_keys, false),
	SECTION("account", account_keys, true),
};

/* The named sections ([hook NAME], [account NAME]) are not part of struct ew_config itself. */
static bool named(const struct config_section *s)
{
	return strcmp(s->name, "hook") == 0 || strcmp(s->name, "account") == 0;
}

/* ---- the walks ---- */

const struct config_section *config_section_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
		if (strcmp(sections[i].name, name) == 0)
			return &sections[i];
	return NULL;
}

/* "; expected a, b or c" after an unknown key, for the sections that list theirs. */
static void known_keys(const struct config_section *s, char *out, size_t len)
{
	struct buf b = { 0 };
	for (size_t i = 0; s->list_keys && i < s->n; i++)
		buf_printf(&b, "%s%s", i == 0 ? "; expected " : i + 1 == s->n ? " or " : ", ", s->keys[i].name);
	snprintf(out, len, "%s", b.data ? b.data : "");
	buf_free(&b);
}

int config_key_set(struct parse_ctx *x, const struct config_section *s, void *base, const char *key, const char *value)
{
	char known[256];
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->keys[i].name, key) == 0)
			return s->keys[i].type->parse(x, &s->keys[i], value, (char *)base + s->keys[i].off);
	known_keys(s, known, sizeof(known));
	if (base != x->cfg && strcmp(s->name, "account") == 0)
		return config_fail(x, "unknown key \"%s\" in [account %s]%s", key, ((struct ew_account *)base)->name, known);
	if (base != x->cfg)
		return config_fail(x, "unknown key \"%s\" in [hook %s]", key, ((struct ew_hook *)base)->name);
	return config_fail(x, "unknown key \"%s\" in [%s]%s", key, s->name, known);
}

void config_section_defaults(const struct config_section *s, void *base)
{
	char err[256];
	struct parse_ctx x = { .name = "default", .err = err, .errlen = sizeof(err) };
	for (size_t i = 0; i < s->n; i++)
		if (s->keys[i].def && !s->keys[i].type->parse(&x, &s->keys[i], s->keys[i].def, (char *)base + s->keys[i].off))
			abort();    /* a default its own row refuses: a bug in the table */
}

void config_section_free(const struct config_section *s, void *base)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->keys[i].type->free)
			s->keys[i].type->free((char *)base + s->keys[i].off);
}

void config_free_keys(struct ew_config *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
		if (!named(&sections[i]))
			config_section_free(&sections[i], c);
	for (size_t i = 0; i < c->n_hooks; i++) {
		free(c->hooks[i].name);
		config_section_free(config_section_find("hook"), &c->hooks[i]);
	}
	for (size_t i = 0; i < c->n_accounts; i++) {
		free(c->accounts[i].name);
		config_section_free(config_section_find("account"), &c->accounts[i]);
	}
}

void config_defaults(struct ew_config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
		if (!named(&sections[i]))
			config_section_defaults(&sections[i], c);
}

/* Prints section s of base: each key's doc, then "key = value" ("# key =" when unset). */
static void print_section(FILE *f, const struct config_section *s, const void *base)
{
	struct buf b = { 0 };
	for (size_t i = 0; i < s->n; i++) {
		const struct config_key *k = &s->keys[i];
		buf_reset(&b);
		bool set = k->type->format(k, (const char *)base + k->off, &b);
		fprintf(f, "# %s\n%s%s = %s\n", k->doc, set ? "" : "# ", k->name, set && b.data ? b.data : "");
	}
	buf_free(&b);
}

void config_print(const struct ew_config *c, FILE *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++) {
		if (named(&sections[i]))
			continue;
		fprintf(f, "%s[%s]\n", i ? "\n" : "", sections[i].name);
		print_section(f, &sections[i], c);
	}
	for (size_t i = 0; i < c->n_hooks; i++) {
		fprintf(f, "\n[hook %s]\n", c->hooks[i].name);
		print_section(f, config_section_find("hook"), &c->hooks[i]);
	}
	for (size_t i = 0; i < c->n_accounts; i++) {
		fprintf(f, "\n[account %s]\n", c->accounts[i].name);
		print_section(f, config_section_find("account"), &c->accounts[i]);
	}
}

/* Copies s[0..n) then "********" into b. */
static void put_masked(struct buf *b, const char *s, size_t n)
{
	buf_append(b, s, n);
	buf_printf(b, "********");
}

void config_mask_secrets(const char *s, struct buf *b)
{
	const char *p = s, *scheme = strstr(s, "://");
	if (scheme) {
		/* user:password@ in the authority. */
		const char *auth = scheme + 3, *end = auth + strcspn(auth, "/?#");
		const char *at = NULL, *colon;
		for (const char *q = auth; q < end; q++)
			if (*q == '@')
				at = q;
		if (at && (colon = memchr(auth, ':', (size_t)(at - auth)))) {
			put_masked(b, s, (size_t)(colon + 1 - s));
			p = at;
		}
	}
	/* password=... as a URI parameter or a libpq keyword. */
	for (;;) {
		const char *q = p;
		while ((q = strstr(q, "password=")) && q != s && !strchr("?& \t", q[-1]))
			q++;
		if (!q)
			break;
		put_masked(b, p, (size_t)(q + 9 - p));
		p = q + 9 + strcspn(q + 9, "& \t");
	}
	buf_printf(b, "%s", p);
}
