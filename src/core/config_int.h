/* Private to the configuration reader (config*.c): the parse state and the key tables. */
#ifndef EW_CONFIG_INT_H
#define EW_CONFIG_INT_H

#include "config.h"

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
	struct ew_account *account; /* current [account NAME] section */
	unsigned planner_line;      /* where [poll] planner was set, for validate()'s message */
};

/* Records the first error as "FILE:LINE: message"; returns 0 (inih's "stop"). */
int config_fail(struct parse_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct config_section;
/* A section's keys (config_keys.c); NULL for a name that is no fixed section. "hook" is [hook NAME]. */
const struct config_section *config_section_find(const char *name);
/* Applies key = value of section s to base (struct ew_config, or the hook for [hook NAME]); 1 or config_fail's 0. */
int config_key_set(struct parse_ctx *x, const struct config_section *s, void *base, const char *key, const char *value);
/* Sets every default of section s in base (an struct ew_hook for "hook"). */
void config_section_defaults(const struct config_section *s, void *base);
/* Frees what the keys of section s own in base. */
void config_section_free(const struct config_section *s, void *base);
/* Frees what every key of c owns, its hooks' included (not the hooks array). */
void config_free_keys(struct ew_config *c);

#endif
