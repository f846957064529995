/*
 * The configuration file: inih reads it, these callbacks hand each key to its
 * section's table (config_keys.c), and validate() checks what keys alone
 * cannot. The values themselves are parsed in config_values.c.
 */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "provider.h"
#include "util.h"

void config_clear(struct ew_config *c)
{
	if (!c)
		return;
	free(c->path);
	config_free_keys(c);
	free(c->hooks);
	free(c->accounts);
	memset(c, 0, sizeof(*c));
}

int config_fail(struct parse_ctx *x, const char *fmt, ...)
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

int config_account_find(const struct ew_config *cfg, const char *name)
{
	if (strcmp(name, "cohere") == 0)
		return 0;
	for (size_t i = 0; i < cfg->n_accounts; i++)
		if (strcmp(cfg->accounts[i].name, name) == 0)
			return (int)i + 1;
	return -1;
}

/* "[account NAME]": a new account with its defaults. */
static void open_account(struct parse_ctx *x, const char *an)
{
	struct ew_config *c = x->cfg;
	while (*an == ' ')
		an++;
	if (!*an) {
		config_fail(x, "[account NAME]: the account needs a name");
		return;
	}
	if (!provider_account_valid(an)) {
		config_fail(x, "[account %.40s]: an account name has 1 to 32 lowercase letters, digits, '-' and '_'", an);
		return;
	}
	if (strcmp(an, "cohere") == 0) {
		config_fail(x, "[account cohere]: that account is [embedwatch] api_base and its key ([poll] its rates)");
		return;
	}
	if (config_account_find(c, an) >= 0) {
		config_fail(x, "[account %s]: defined twice", an);
		return;
	}
	if (c->n_accounts == CONFIG_MAX_ACCOUNTS) {
		config_fail(x, "[account %s]: at most %d accounts", an, CONFIG_MAX_ACCOUNTS);
		return;
	}
	c->accounts = xrealloc(c->accounts, (c->n_accounts + 1) * sizeof(*c->accounts));
	struct ew_account *a = &c->accounts[c->n_accounts++];
	memset(a, 0, sizeof(*a));
	a->name = xstrdup(an);
	a->line = x->line;
	a->provider = -1;
	config_section_defaults(config_section_find("account"), a);
	x->account = a;
}

/* A "[section]" line: checked and opened here, so an empty section is still seen. */
static void open_section(struct parse_ctx *x, const char *line)
{
	const char *e = strchr(line, ']');
	char name[128];

	x->hook = NULL;
	x->account = NULL;
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
			config_fail(x, "[hook NAME]: the hook needs a name");
			return;
		}
		for (const char *p = hn; *p; p++) {
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
				config_fail(x, "[hook %s]: a hook name has only letters, digits, '-', '_' and '.'", hn);
				return;
			}
		}
		struct ew_config *c = x->cfg;
		for (size_t i = 0; i < c->n_hooks; i++) {
			if (strcmp(c->hooks[i].name, hn) == 0) {
				config_fail(x, "[hook %s]: defined twice", hn);
				return;
			}
		}
		c->hooks = xrealloc(c->hooks, (c->n_hooks + 1) * sizeof(*c->hooks));
		struct ew_hook *h = &c->hooks[c->n_hooks++];
		memset(h, 0, sizeof(*h));
		h->name = xstrdup(hn);
		h->line = x->line;
		config_section_defaults(config_section_find("hook"), h);
		x->hook = h;
	} else if (strncmp(name, "account", 7) == 0 && (name[7] == ' ' || name[7] == '\0')) {
		open_account(x, name + 7);
	} else if (!config_section_find(name) || strcmp(name, "account") == 0) {
		config_fail(x, "unknown section [%s]; expected [embedwatch], [poll], [hooks], [discover], [datasets], "
			    "[hook NAME] or [account NAME]", name);
	}
}

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct parse_ctx *x = user;

	if (x->failed || !key)
		return x->failed ? 0 : 1;
	if (section[0] == '\0')
		return config_fail(x, "key \"%s\" outside a section; expected [embedwatch], [poll], [hooks] or [hook NAME] first", key);
	if (x->hook)
		return config_key_set(x, config_section_find("hook"), x->hook, key, value);
	if (x->account)
		return config_key_set(x, config_section_find("account"), x->account, key, value);
	const struct config_section *s = config_section_find(section);
	return s ? config_key_set(x, s, x->cfg, key, value) : 0;
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
		return config_fail(x, "[embedwatch] lease_renew (%llums) must be at most half of lease_ttl (%llums): a renewal "
			    "may fail once without the lease expiring", (unsigned long long)c->lease_renew_ms,
			    (unsigned long long)c->lease_ttl_ms);
	if (c->state_password_file && !c->state_url)
		return config_fail(x, "[embedwatch] state_password_file is set but state_url is not (the password is for PostgreSQL)");

	if (c->sweep_interval_ms > c->sweep_interval_max_ms)
		return config_fail(x, "[poll] sweep_interval (%llums) is longer than sweep_interval_max (%llums)",
			    (unsigned long long)c->sweep_interval_ms, (unsigned long long)c->sweep_interval_max_ms);
	if (c->interval_min_ms > c->interval_max_ms)
		return config_fail(x, "[poll] interval_min (%llums) is longer than interval_max (%llums)",
			    (unsigned long long)c->interval_min_ms, (unsigned long long)c->interval_max_ms);
	if (c->discover && c->planner == PLANNER_PER_ID) {
		x->line = x->planner_line;
		return config_fail(x, "[poll] planner = per-id never reads the list, and [discover] finds jobs only there; "
			    "use planner = auto (it sweeps while discovery is on) or turn discovery off");
	}
	for (size_t i = 0; i < c->n_hooks; i++) {
		struct ew_hook *h = &c->hooks[i];
		x->line = h->line;
		if (!h->type)
			return config_fail(x, "[hook %s]: missing \"type\" (exec or webhook)", h->name);
		if (!h->on_mask)
			return config_fail(x, "[hook %s]: missing \"on\" (the event types it runs for)", h->name);
		if (h->type == HOOK_EXEC && !h->argv)
			return config_fail(x, "[hook %s]: an exec hook needs \"command\"", h->name);
		if (h->type == HOOK_EXEC && (h->url || h->secret_file))
			return config_fail(x, "[hook %s]: url and secret_file belong to webhook hooks", h->name);
		if (h->type == HOOK_WEBHOOK && !h->url)
			return config_fail(x, "[hook %s]: a webhook hook needs \"url\"", h->name);
		if (h->type == HOOK_WEBHOOK && h->argv)
			return config_fail(x, "[hook %s]: command belongs to exec hooks", h->name);
		if (!h->timeout_ms)
			h->timeout_ms = h->type == HOOK_EXEC ? 60000 : 15000;
	}
	for (size_t i = 0; i < c->n_accounts; i++) {
		struct ew_account *a = &c->accounts[i];
		x->line = a->line;
		if (a->provider < 0)
			return config_fail(x, "[account %s]: missing \"provider\" (openai, anthropic, gemini or mistral)", a->name);
		const struct provider_ops *ops = provider_ops((enum provider)a->provider);
		if (!a->api_base)
			a->api_base = xstrdup(ops->default_base);
		if (a->rate_per_s <= 0)
			a->rate_per_s = ops->rate_per_min / 60.0;
		if (a->page_size > ops->page_max)
			return config_fail(x, "[account %s]: page_size %u is larger than %s serves (%u)", a->name, a->page_size,
					   provider_name(ops->provider), ops->page_max);
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
		config_fail(&x, "syntax error: expected [section] or key = value");
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
