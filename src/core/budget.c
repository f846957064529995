#include "budget.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* An hour's share of the month may be spent ahead of the even spread. */
#define MONTH_AHEAD_MS (3600 * 1000LL)

const char *budget_class_name(enum rclass c)
{
	static const char *const names[RC__N] = { [RC_EMBED_JOBS] = "embed_jobs", [RC_DEFAULT] = "default" };
	return (unsigned)c < RC__N ? names[c] : "?";
}

void budget_class_init(struct rclass_budget *c, double rate_per_s, unsigned burst, uint64_t now)
{
	memset(c, 0, sizeof(*c));
	sched_bucket_init(&c->bucket, rate_per_s, burst, now);
	c->sec_at = now / 1000;
}

bool budget_class_paused(const struct rclass_budget *c, uint64_t now)
{
	return c->paused_until && now < c->paused_until;
}

/* Moves the ring to the second of now, clearing the seconds passed. */
static void ring_advance(struct rclass_budget *c, uint64_t now)
{
	uint64_t s = now / 1000;
	if (s <= c->sec_at)
		return;
	uint64_t gap = s - c->sec_at;
	if (gap >= 60)
		memset(c->sec, 0, sizeof(c->sec));
	else
		for (uint64_t k = 1; k <= gap; k++)
			c->sec[(c->sec_at + k) % 60] = 0;
	c->sec_at = s;
}

bool budget_class_take(struct rclass_budget *c, uint64_t now)
{
	if (budget_class_paused(c, now) || !sched_bucket_take(&c->bucket, now))
		return false;
	ring_advance(c, now);
	c->sec[c->sec_at % 60]++;
	c->requests++;
	return true;
}

uint64_t budget_class_wait(struct rclass_budget *c, uint64_t now)
{
	if (budget_class_paused(c, now))
		return c->paused_until - now;
	return sched_bucket_wait(&c->bucket, now);
}

void budget_class_throttled(struct rclass_budget *c, uint64_t now, uint64_t pause_ms)
{
	sched_bucket_throttled(&c->bucket, now);
	if (now + pause_ms > c->paused_until)
		c->paused_until = now + pause_ms;
}

uint32_t budget_class_minute(struct rclass_budget *c, uint64_t now)
{
	ring_advance(c, now);
	uint32_t n = 0;
	for (int i = 0; i < 60; i++)
		n += c->sec[i];
	return n;
}

/* "YYYY-MM" into key (8 bytes): y < 10000, 1 <= m <= 12. */
static void month_key(char key[8], unsigned y, unsigned m)
{
	key[0] = (char)('0' + y / 1000);
	key[1] = (char)('0' + y / 100 % 10);
	key[2] = (char)('0' + y / 10 % 10);
	key[3] = (char)('0' + y % 10);
	key[4] = '-';
	key[5] = (char)('0' + m / 10);
	key[6] = (char)('0' + m % 10);
	key[7] = '\0';
}

void budget_month_bounds(int64_t wall_ms, char key[8], int64_t *start_ms, int64_t *end_ms)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	month_key(key, (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)tm.tm_mon % 12 + 1);
	struct tm a = { .tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = 1 };
	struct tm b = { .tm_year = tm.tm_mon == 11 ? tm.tm_year + 1 : tm.tm_year, .tm_mon = (tm.tm_mon + 1) % 12, .tm_mday = 1 };
	*start_ms = (int64_t)timegm(&a) * 1000;
	*end_ms = (int64_t)timegm(&b) * 1000;
}

bool budget_month_roll(struct month_budget *m, int64_t wall_ms)
{
	if (m->end_ms && wall_ms >= m->start_ms && wall_ms < m->end_ms)
		return false;
	char key[8];
	budget_month_bounds(wall_ms, key, &m->start_ms, &m->end_ms);
	if (strcmp(key, m->key) == 0)
		return false;
	memcpy(m->key, key, sizeof(key));
	m->used = m->reserved = 0;
	return true;
}

uint64_t budget_month_allowed(const struct month_budget *m, int64_t wall_ms)
{
	if (!m->allowance)
		return UINT64_MAX;
	double len = (double)(m->end_ms - m->start_ms);
	double e = (double)(wall_ms - m->start_ms);
	if (e < 0)
		e = 0;
	double a = ceil((double)m->allowance * (e + (double)MONTH_AHEAD_MS) / len);
	return a >= (double)m->allowance ? m->allowance : (uint64_t)a;
}

uint64_t budget_month_wait(const struct month_budget *m, int64_t wall_ms)
{
	if (!m->allowance || m->used < budget_month_allowed(m, wall_ms))
		return 0;
	if (m->used >= m->allowance)
		return m->end_ms > wall_ms ? (uint64_t)(m->end_ms - wall_ms) : 0;
	/* The spread allows one more once (e + ahead) * allowance / len > used. */
	double len = (double)(m->end_ms - m->start_ms);
	int64_t e = (int64_t)floor((double)m->used * len / (double)m->allowance) - MONTH_AHEAD_MS + 1;
	int64_t at = m->start_ms + e;
	return at > wall_ms ? (uint64_t)(at - wall_ms) : 0;
}

uint64_t budget_month_projected(const struct month_budget *m, int64_t wall_ms)
{
	double e = (double)(wall_ms - m->start_ms);
	if (e < 60000)
		e = 60000;
	return (uint64_t)((double)m->used * (double)(m->end_ms - m->start_ms) / e);
}

uint64_t budget_month_chunk(const struct month_budget *m)
{
	uint64_t c = m->allowance / 200;
	return c < 1 ? 1 : c > 50 ? 50 : c;
}

int budget_month_parse(const char *text, char key[8], uint64_t *ret_n)
{
	int y, mo;
	unsigned long long n;
	char tail;
	if (!text || sscanf(text, "%4d-%2d %llu%c", &y, &mo, &n, &tail) != 3 || y < 1970 || mo < 1 || mo > 12)
		return -1;
	month_key(key, (unsigned)y % 10000, (unsigned)mo);
	*ret_n = n;
	return 0;
}

/*
 * Rank order: cancels (an operator asked), then what observes many jobs at
 * once (the v1 list, the v2 pages), then per-id polls, then dataset fetches,
 * which only enrich complete events and so never go before anything that
 * sees a job end. Shares: per-id polls are guaranteed half of their class's
 * requests (lists cannot starve them), dataset fetches a quarter of the
 * default class (v2 pages cannot starve them). The classes themselves are
 * apart: the list's class (embed-job endpoints) is never spent on datasets.
 */
const struct source_policy budget_policy[SRC__N] = {
	[SRC_CANCELS] = { "cancels", 0.0 },
	[SRC_LIST] = { "list", 0.0 },
	[SRC_PAGES] = { "pages", 0.0 },
	[SRC_POLLS] = { "polls", 0.5 },
	[SRC_DATASETS] = { "datasets", 0.25 },
};

int budget_pick(const struct source_policy *pol, const struct source_state *st, int n)
{
	double total[RC__N] = { 0 };
	int first = -1;
	for (int i = 0; i < n; i++)
		if ((unsigned)st[i].cls < RC__N)
			total[st[i].cls] += st[i].recent;
	for (int i = 0; i < n; i++) {
		if (!st[i].due || !st[i].can_take)
			continue;
		if (first < 0)
			first = i;
		if (pol[i].share > 0 && st[i].recent < pol[i].share * total[st[i].cls])
			return i;
	}
	return first;
}

double budget_decay(double recent, uint64_t elapsed_ms, uint64_t half_life_ms)
{
	if (!half_life_ms || !elapsed_ms)
		return recent;
	return recent * exp2(-(double)elapsed_ms / (double)half_life_ms);
}
