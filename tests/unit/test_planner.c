/* Unit tests of planner.c: which mode, why, and the intervals, as a table of cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "planner.h"

#define MB 1000000ULL
#define BUDGET (64.0 * 1048576 / 60)    /* the default max_bytes_per_min, per second */

/* One case: what differs from the defaults (60/min, 64 MiB/min, 1 s floor, 5 s sweep, 700-byte polls). */
struct plan_case {
	const char *name;
	uint64_t live, unlisted, list_wire, list_ms;
	double per_min;                 /* 0: 60 */
	uint64_t floor_ms, sweep_min_ms; /* 0: 1000, 5000 */
	enum planner_mode current;
	enum planner_policy policy;
	bool sweep_off, failing, discovery;
	/* expected */
	enum planner_mode mode;
	enum planner_why why;
	uint64_t poll_lo, poll_hi;      /* poll_every_ms within, unless both 0 */
	uint64_t sweep_lo, sweep_hi;    /* sweep_every_ms within, unless both 0 */
	uint64_t delay_lo, delay_hi;    /* delay_ms within, unless both 0 */
	uint64_t cap_lo, cap_hi;        /* list_cap within, unless both 0; cap_hi 1: must be 0 */
};

static const struct plan_case cases[] = {
	/* The two situations of issue 21. */
	{ "3 watched beside a 34.5 MB list: per-id, each seen every 3 s", .live = 3, .list_wire = 34532517, .list_ms = 900,
	  .mode = PLAN_PER_ID, .why = WHY_LIST_TOO_BIG, .poll_lo = 3000, .poll_hi = 3000, .delay_lo = 1500, .delay_hi = 1500 },
	{ "3 watched beside the same list gzipped (6.9 MB): still per-id", .live = 3, .list_wire = 6932984, .list_ms = 1400,
	  .mode = PLAN_PER_ID, .why = WHY_LIST_TOO_BIG, .poll_lo = 3000, .poll_hi = 3000 },
	{ "3 watched, the list never read: per-id at once, no probe", .live = 3,
	  .mode = PLAN_PER_ID, .why = WHY_PER_ID_SOONER, .poll_lo = 3000, .poll_hi = 3000 },
	{ "400 watched beside a 6.9 MB list: the sweep, as often as the byte budget allows", .live = 400,
	  .list_wire = 6900000, .list_ms = 300, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER,
	  .sweep_lo = 6160, .sweep_hi = 6180, .delay_lo = 3370, .delay_hi = 3400, .cap_lo = 500 * MB, .cap_hi = 600 * MB },
	{ "400 watched beside the list gzipped (1.4 MB): the sweep every 5 s", .live = 400, .list_wire = 1400000,
	  .list_ms = 300, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER, .sweep_lo = 5000, .sweep_hi = 5000,
	  .delay_lo = 2800, .delay_hi = 2800 },
	{ "400 watched, the list never read: the sweep, with a cap to learn its size", .live = 400,
	  .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER, .cap_lo = 100 * MB, .cap_hi = 1000 * MB },
	{ "400 watched beside a 1 GB list: per-id beats a list every 15 min", .live = 400, .list_wire = 1000 * MB,
	  .list_ms = 5000, .mode = PLAN_PER_ID, .why = WHY_LIST_TOO_BIG, .poll_lo = 400000, .poll_hi = 400000 },
	/* Near ties, budgets, hysteresis. */
	{ "3 watched, a tiny list, at 40/min: a near tie goes to the sweep (fewer requests)", .live = 3,
	  .list_wire = 3000, .list_ms = 10, .per_min = 40, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER },
	{ "1 watched at 40/min: per-id, polled every 1.5 s", .live = 1, .list_wire = 3000, .list_ms = 10, .per_min = 40,
	  .mode = PLAN_PER_ID, .why = WHY_PER_ID_SOONER, .poll_lo = 1500, .poll_hi = 1500, .delay_lo = 750, .delay_hi = 750 },
	{ "the tests' setting (200/s, 100 ms floors, 150 kB list, 1 job): the sweep", .live = 1, .list_wire = 150000,
	  .list_ms = 20, .per_min = 12000, .floor_ms = 100, .sweep_min_ms = 100, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER },
	{ "in the band (sweep 2.4 s vs per-id 2 s): per-id stays per-id", .live = 4, .sweep_min_ms = 4800,
	  .current = PLAN_PER_ID, .mode = PLAN_PER_ID, .why = WHY_PER_ID_SOONER },
	{ "in the band (sweep 2.4 s vs per-id 2 s): the sweep stays the sweep", .live = 4, .sweep_min_ms = 4800,
	  .current = PLAN_SWEEP, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER },
	{ "after a 429 halved the rate, 3 jobs are seen sooner by the list", .live = 3, .list_wire = 3000, .list_ms = 10,
	  .per_min = 30, .current = PLAN_PER_ID, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER },
	{ "a list seen only in part (4.5 MB at least), 50 watched now: the sweep is tried again", .live = 50,
	  .list_wire = 4500000, .current = PLAN_PER_ID, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER },
	{ "sweep: the 10 jobs the list does not show share what it leaves of the rate", .live = 400, .unlisted = 10,
	  .list_wire = 1400000, .list_ms = 300, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER,
	  .poll_lo = 12500, .poll_hi = 12500 },
	/* A trial key's 5/min: the list takes the whole class once it shows every job, half while it does not. */
	{ "4 watched at 5/min, every one in the last list: a list every 12 s", .live = 4, .list_wire = 30000,
	  .list_ms = 10, .per_min = 5, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER, .sweep_lo = 12000, .sweep_hi = 12000 },
	{ "4 watched at 5/min, one not in the last list: a list every 24 s", .live = 4, .unlisted = 1,
	  .list_wire = 30000, .list_ms = 10, .per_min = 5, .mode = PLAN_SWEEP, .why = WHY_SWEEP_SOONER,
	  .sweep_lo = 24000, .sweep_hi = 24000 },
	/* What the configuration and the list's health decide. */
	{ "discovery sweeps with nothing watched, uncapped", .discovery = true, .mode = PLAN_SWEEP,
	  .why = WHY_DISCOVERY, .cap_hi = 1 },
	{ "discovery beside a 34.5 MB list and 3 jobs: still the sweep", .live = 3, .list_wire = 34532517, .discovery = true,
	  .mode = PLAN_SWEEP, .why = WHY_DISCOVERY, .cap_hi = 1 },
	{ "nothing watched: idle", .mode = PLAN_IDLE, .why = WHY_IDLE, .delay_hi = 1, .poll_hi = 1, .sweep_hi = 1 },
	{ "sweep = no: per-id, 400 jobs share the rate", .live = 400, .sweep_off = true, .mode = PLAN_PER_ID,
	  .why = WHY_SWEEP_OFF, .poll_lo = 400000, .poll_hi = 400000 },
	{ "sweep = no wins over discovery", .live = 5, .sweep_off = true, .discovery = true, .mode = PLAN_PER_ID,
	  .why = WHY_SWEEP_OFF },
	{ "the list failing: per-id until it is tried again", .live = 400, .failing = true, .discovery = true,
	  .mode = PLAN_PER_ID, .why = WHY_LIST_FAILING },
	{ "planner = sweep, 3 jobs, 34.5 MB: the byte budget sets the interval", .live = 3, .list_wire = 34532517,
	  .policy = PLANNER_SWEEP, .mode = PLAN_SWEEP, .why = WHY_POLICY_SWEEP, .sweep_lo = 30870, .sweep_hi = 30880,
	  .cap_hi = 1 },
	{ "planner = per-id, 400 jobs", .live = 400, .list_wire = 1400000, .policy = PLANNER_PER_ID, .mode = PLAN_PER_ID,
	  .why = WHY_POLICY_PER_ID },
};

static struct planner_in input(const struct plan_case *c)
{
	return (struct planner_in){
		.policy = c->policy, .current = c->current, .sweep_enabled = !c->sweep_off, .list_failing = c->failing,
		.discovery = c->discovery, .live = c->live, .unlisted = c->unlisted,
		.rate_per_s = (c->per_min ? c->per_min : 60) / 60.0, .bytes_per_s = BUDGET, .list_wire = c->list_wire,
		.list_ms = c->list_ms, .poll_wire = 700, .poll_floor_ms = c->floor_ms ? c->floor_ms : 1000,
		.sweep_min_ms = c->sweep_min_ms ? c->sweep_min_ms : 5000,
	};
}

static void check_range(const char *name, const char *what, uint64_t v, uint64_t lo, uint64_t hi)
{
	if (hi == 1 && lo == 0) {
		if (v != 0) {
			print_error("%s: %s is %llu, expected none\n", name, what, (unsigned long long)v);
			fail();
		}
		return;
	}
	if ((lo || hi) && (v < lo || v > hi)) {
		print_error("%s: %s is %llu, expected %llu..%llu\n", name, what, (unsigned long long)v,
			    (unsigned long long)lo, (unsigned long long)hi);
		fail();
	}
}

static void test_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct plan_case *c = &cases[i];
		struct planner_in in = input(c);
		struct planner_out out;
		planner_plan(&in, &out);
		if (out.mode != c->mode || out.why != c->why) {
			print_error("%s: %s (%s), expected %s (%s); delays sweep %llu per-id %llu\n", c->name,
				    planner_mode_name(out.mode), planner_why_name(out.why), planner_mode_name(c->mode),
				    planner_why_name(c->why), (unsigned long long)out.delay_sweep_ms,
				    (unsigned long long)out.delay_per_id_ms);
			fail();
		}
		check_range(c->name, "poll_every_ms", out.poll_every_ms, c->poll_lo, c->poll_hi);
		check_range(c->name, "sweep_every_ms", out.sweep_every_ms, c->sweep_lo, c->sweep_hi);
		check_range(c->name, "delay_ms", out.delay_ms, c->delay_lo, c->delay_hi);
		check_range(c->name, "list_cap", out.list_cap, c->cap_lo, c->cap_hi);
		/* Whatever the mode, the delay it reports is its own estimate. */
		if (out.mode == PLAN_SWEEP)
			assert_int_equal(out.delay_ms, out.delay_sweep_ms);
		else if (out.mode == PLAN_PER_ID)
			assert_int_equal(out.delay_ms, out.delay_per_id_ms);
	}
}

/* The cap is where the sweep stops paying: a list just under it keeps the sweep, just over it does not. */
static void test_cap_is_the_switch_point(void **state)
{
	const uint64_t lives[] = { 5, 20, 400 };
	for (size_t i = 0; i < sizeof(lives) / sizeof(lives[0]); i++) {
		struct planner_in in = input(&(struct plan_case){ .live = lives[i], .list_ms = 200, .current = PLAN_SWEEP });
		struct planner_out out;
		planner_plan(&in, &out);
		assert_int_equal(out.mode, PLAN_SWEEP);
		uint64_t cap = out.list_cap;
		assert_true(cap > 0);
		in.list_wire = cap - cap / 100;
		planner_plan(&in, &out);
		assert_int_equal(out.mode, PLAN_SWEEP);
		in.list_wire = cap + cap / 100;
		planner_plan(&in, &out);
		assert_int_equal(out.mode, PLAN_PER_ID);
	}
}

/* As jobs are added beside a fixed list, the mode goes from per-id to the sweep once, and stays. */
static void test_growing_switches_once(void **state)
{
	const uint64_t lists[] = { 3000, 1400000, 6932984, 34532517 };
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		enum planner_mode mode = PLAN_IDLE;
		int switches = 0;
		for (uint64_t live = 1; live <= 2000; live++) {
			struct planner_in in = input(&(struct plan_case){ .live = live, .list_wire = lists[i], .list_ms = 500,
									  .current = mode });
			struct planner_out out;
			planner_plan(&in, &out);
			if (live > 1 && out.mode != mode)
				switches++;
			mode = out.mode;
		}
		assert_int_equal(mode, PLAN_SWEEP);
		assert_true(switches <= 1);
	}
}

/* Names and texts exist for every value (status and metrics print them). */
static void test_names(void **state)
{
	for (int m = 0; m < PLAN__MAX; m++)
		assert_string_not_equal(planner_mode_name((enum planner_mode)m), "unknown");
	for (int w = 0; w < WHY__MAX; w++) {
		assert_string_not_equal(planner_why_name((enum planner_why)w), "unknown");
		assert_string_not_equal(planner_why_text((enum planner_why)w), "unknown");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_cap_is_the_switch_point),
		cmocka_unit_test(test_growing_switches_once),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
