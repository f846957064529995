/* Unit tests of budget.c: request classes apart, the month's spread, and the source policy as a table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "budget.h"

/* 2026-12-01T00:00:00Z and 2027-01-01T00:00:00Z, in ms. */
#define DEC_1 1796083200000LL
#define JAN_1 1798761600000LL
#define DAY_MS (86400 * 1000LL)

static void test_classes_apart(void **state)
{
	struct rclass_budget embed, def;
	budget_class_init(&embed, 1.0, 2, 0);
	budget_class_init(&def, 1.0, 2, 0);
	/* A 429 on one class pauses and empties that one only. */
	budget_class_throttled(&def, 1000, 30000);
	assert_true(budget_class_paused(&def, 1000));
	assert_false(budget_class_take(&def, 1000));
	assert_int_equal(budget_class_wait(&def, 1000), 30000);
	assert_false(budget_class_paused(&embed, 1000));
	assert_true(budget_class_take(&embed, 1000));
	/* Over the pause, at a lowered rate: slower than the configured 1/s. */
	assert_false(budget_class_paused(&def, 31000));
	assert_true(budget_class_take(&def, 31000));
	assert_true(budget_class_take(&def, 31000));
	assert_true(budget_class_wait(&def, 31000) > 1000);
	assert_true(budget_class_take(&embed, 1000));
	assert_int_equal(budget_class_wait(&embed, 1000), 1000);
	(void)state;
}

static void test_requests_last_minute(void **state)
{
	struct rclass_budget c;
	budget_class_init(&c, 100.0, 100, 0);
	for (int i = 0; i < 10; i++)
		assert_true(budget_class_take(&c, 500 + (uint64_t)i * 1000));
	assert_int_equal(budget_class_minute(&c, 10000), 10);
	/* 60 s after the first, it has left the window; 70 s after the last, all have. */
	assert_int_equal(budget_class_minute(&c, 60500), 9);
	assert_int_equal(budget_class_minute(&c, 80000), 0);
	assert_int_equal(c.requests, 10);
	(void)state;
}

static void test_month_bounds(void **state)
{
	char key[8];
	int64_t a, b;
	budget_month_bounds(DEC_1 + 15 * DAY_MS, key, &a, &b);
	assert_string_equal(key, "2026-12");
	assert_true(a == DEC_1 && b == JAN_1);
	/* The last millisecond of December is December; the next is January. */
	budget_month_bounds(JAN_1 - 1, key, &a, &b);
	assert_string_equal(key, "2026-12");
	budget_month_bounds(JAN_1, key, &a, &b);
	assert_string_equal(key, "2027-01");
	assert_true(a == JAN_1);
	(void)state;
}

static void test_month_spread(void **state)
{
	struct month_budget m = { .allowance = 1000 };
	budget_month_roll(&m, DEC_1);
	/* At the start: an hour's share ahead (1000 / 744 h, rounded up). */
	assert_int_equal(budget_month_allowed(&m, DEC_1), 2);
	m.used = 2;
	assert_true(budget_month_wait(&m, DEC_1) > 0);
	/* The wait ends where the spread allows the third. */
	uint64_t w = budget_month_wait(&m, DEC_1);
	assert_true(budget_month_allowed(&m, DEC_1 + (int64_t)w) >= 3);
	assert_true(budget_month_allowed(&m, DEC_1 + (int64_t)w - 1) < 3);
	/* The last day always keeps about a day's share: at its start, at most 31 days' less 23 h have gone. */
	uint64_t before_last_day = budget_month_allowed(&m, JAN_1 - DAY_MS);
	assert_true(before_last_day <= 1000 - 1000 * 23 / 744);
	assert_int_equal(budget_month_allowed(&m, JAN_1 - 1), 1000);
	/* Spent: nothing until the next month, which starts from 0. */
	m.used = 1000;
	assert_int_equal(budget_month_wait(&m, JAN_1 - 10000), 10000);
	assert_true(budget_month_roll(&m, JAN_1));
	assert_string_equal(m.key, "2027-01");
	assert_int_equal(m.used, 0);
	assert_int_equal(budget_month_wait(&m, JAN_1), 0);
	(void)state;
}

static void test_month_no_allowance(void **state)
{
	struct month_budget m = { 0 };
	budget_month_roll(&m, DEC_1);
	m.used = 123456;
	assert_int_equal(budget_month_wait(&m, DEC_1), 0);
	(void)state;
}

static void test_month_parse(void **state)
{
	char key[8];
	uint64_t n;
	assert_int_equal(budget_month_parse("2026-12 345", key, &n), 0);
	assert_string_equal(key, "2026-12");
	assert_int_equal(n, 345);
	assert_int_equal(budget_month_parse("2026-13 1", key, &n), -1);
	assert_int_equal(budget_month_parse("2026-12", key, &n), -1);
	assert_int_equal(budget_month_parse("2026-12 1x", key, &n), -1);
	assert_int_equal(budget_month_parse(NULL, key, &n), -1);
	(void)state;
}

static void test_month_projected_and_chunk(void **state)
{
	struct month_budget m = { .allowance = 1000 };
	budget_month_roll(&m, DEC_1);
	m.used = 100;
	/* 100 in the first 3.1 days of 31: 1000 projected. */
	assert_int_equal(budget_month_projected(&m, DEC_1 + 31 * DAY_MS / 10), 1000);
	assert_int_equal(budget_month_chunk(&m), 5);
	m.allowance = 100;
	assert_int_equal(budget_month_chunk(&m), 1);
	m.allowance = 10000000;
	assert_int_equal(budget_month_chunk(&m), 50);
	(void)state;
}

/*
 * The policy as a table: which source each situation serves. Columns:
 * due, class, can take, recent requests (decayed) for cancels, list, pages,
 * polls, datasets; the source expected.
 */
struct pick_case {
	const char *what;
	struct source_state st[SRC__N];
	int want;
};

#define S(due, cls, take, recent) { due, cls, take, recent }
#define E RC_EMBED_JOBS
#define D RC_DEFAULT

static const struct pick_case pick_cases[] = {
	{ "nothing due", { S(0, E, 0, 0), S(0, E, 0, 0), S(0, D, 0, 0), S(0, E, 0, 0), S(0, D, 0, 0) }, -1 },
	{ "a cancel goes first", { S(1, E, 1, 0), S(1, E, 1, 0), S(1, D, 1, 0), S(1, E, 1, 0), S(1, D, 1, 0) }, SRC_CANCELS },
	{ "the list before polls and datasets", { S(0, E, 0, 0), S(1, E, 1, 5), S(0, D, 0, 0), S(1, E, 1, 5), S(1, D, 1, 0) },
	  SRC_LIST },
	{ "a dataset queue never holds the list back (other class)",
	  { S(0, E, 0, 0), S(1, E, 1, 0), S(0, D, 0, 0), S(0, E, 0, 0), S(1, D, 1, 0) }, SRC_LIST },
	{ "the list's class empty: datasets go on from theirs",
	  { S(0, E, 0, 0), S(1, E, 0, 0), S(0, D, 0, 0), S(1, E, 0, 0), S(1, D, 1, 0) }, SRC_DATASETS },
	{ "the default class paused: the list goes on",
	  { S(0, E, 0, 0), S(1, E, 1, 0), S(1, D, 0, 0), S(0, E, 0, 0), S(1, D, 0, 0) }, SRC_LIST },
	{ "polls under their half of the class go before the list",
	  { S(0, E, 0, 0), S(1, E, 1, 10), S(0, D, 0, 0), S(1, E, 1, 2), S(0, D, 0, 0) }, SRC_POLLS },
	{ "polls at their half: the list first", { S(0, E, 0, 0), S(1, E, 1, 5), S(0, D, 0, 0), S(1, E, 1, 5), S(0, D, 0, 0) },
	  SRC_LIST },
	{ "pages ahead of datasets at their quarter", { S(0, E, 0, 0), S(0, E, 0, 0), S(1, D, 1, 6), S(0, E, 0, 0), S(1, D, 1, 2) },
	  SRC_PAGES },
	{ "datasets under their quarter go before pages",
	  { S(0, E, 0, 0), S(0, E, 0, 0), S(1, D, 1, 9), S(0, E, 0, 0), S(1, D, 1, 1) }, SRC_DATASETS },
	{ "a batch job's poll draws from the default class: held while it is paused",
	  { S(0, E, 0, 0), S(0, E, 0, 0), S(0, D, 0, 0), S(1, D, 0, 0), S(0, D, 0, 0) }, -1 },
};

static void test_policy_table(void **state)
{
	for (size_t i = 0; i < sizeof(pick_cases) / sizeof(pick_cases[0]); i++) {
		int got = budget_pick(budget_policy, pick_cases[i].st, SRC__N);
		if (got != pick_cases[i].want)
			fail_msg("%s: picked %d, expected %d", pick_cases[i].what, got, pick_cases[i].want);
	}
	/* Datasets rank last: enrichment never goes ahead of an observing source of its class by rank. */
	assert_string_equal(budget_policy[SRC__N - 1].name, "datasets");
	(void)state;
}

static void test_decay(void **state)
{
	assert_true(budget_decay(8.0, 60000, 60000) == 4.0);
	assert_true(budget_decay(8.0, 0, 60000) == 8.0);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes_apart),
		cmocka_unit_test(test_requests_last_minute),
		cmocka_unit_test(test_month_bounds),
		cmocka_unit_test(test_month_spread),
		cmocka_unit_test(test_month_no_allowance),
		cmocka_unit_test(test_month_parse),
		cmocka_unit_test(test_month_projected_and_chunk),
		cmocka_unit_test(test_policy_table),
		cmocka_unit_test(test_decay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
