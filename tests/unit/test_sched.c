/* Unit tests of sched.c: token bucket, throttling, intervals, jitter, backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sched.h"

static void test_bucket_burst_then_rate(void **state)
{
	struct sched_bucket b;
	sched_bucket_init(&b, 10.0, 5, 1000);
	for (int i = 0; i < 5; i++)
		assert_true(sched_bucket_take(&b, 1000));
	assert_false(sched_bucket_take(&b, 1000));
	assert_int_equal(sched_bucket_wait(&b, 1000), 100);
	assert_false(sched_bucket_take(&b, 1099));
	assert_true(sched_bucket_take(&b, 1100));
	/* Never more than burst, however long it was idle. */
	int n = 0;
	while (sched_bucket_take(&b, 1000000))
		n++;
	assert_int_equal(n, 5);
}

static void test_bucket_never_exceeds_rate(void **state)
{
	struct sched_bucket b;
	sched_bucket_init(&b, 50.0 / 60, 10, 0);
	unsigned taken = 0;
	/* Ten simulated minutes, trying every millisecond. */
	for (uint64_t t = 0; t <= 600000; t++)
		taken += sched_bucket_take(&b, t);
	/* burst + rate * time */
	assert_true(taken <= 10 + 500);
	assert_true(taken >= 500);
}

static void test_bucket_throttle_and_recover(void **state)
{
	struct sched_bucket b;
	sched_bucket_init(&b, 10.0, 10, 0);
	sched_bucket_throttled(&b, 1000);
	assert_float_equal(sched_bucket_rate(&b), 5.0, 1e-9);
	assert_false(sched_bucket_take(&b, 1000));
	sched_bucket_throttled(&b, 1001);
	sched_bucket_throttled(&b, 1002);
	sched_bucket_throttled(&b, 1003);
	sched_bucket_throttled(&b, 1004);
	/* Floor: a tenth of the configured rate. */
	assert_float_equal(sched_bucket_rate(&b), 1.0, 1e-9);
	/* Quiet for 10 s: up by a tenth of the configured rate, then step by step. */
	sched_bucket_wait(&b, 11004);
	assert_float_equal(sched_bucket_rate(&b), 2.0, 1e-9);
	sched_bucket_wait(&b, 15000);
	assert_float_equal(sched_bucket_rate(&b), 2.0, 1e-9);
	for (uint64_t t = 21004; t < 300000; t += 10000)
		sched_bucket_wait(&b, t);
	assert_float_equal(sched_bucket_rate(&b), 10.0, 1e-9);
}

static void test_bucket_set(void **state)
{
	struct sched_bucket b;
	sched_bucket_init(&b, 10.0, 10, 0);
	sched_bucket_set(&b, 1.0, 2, 0);
	assert_float_equal(sched_bucket_rate(&b), 1.0, 1e-9);
	assert_true(sched_bucket_take(&b, 0));
	assert_true(sched_bucket_take(&b, 0));
	assert_false(sched_bucket_take(&b, 0));
}

static void test_grow(void **state)
{
	assert_int_equal(sched_grow(5000, 1.5, 5000, 60000), 7500);
	assert_int_equal(sched_grow(50000, 1.5, 5000, 60000), 60000);
	assert_int_equal(sched_grow(0, 1.5, 5000, 60000), 5000);
	uint64_t t = 5000;
	int steps = 0;
	while (t < 60000) {
		t = sched_grow(t, 1.5, 5000, 60000);
		steps++;
	}
	assert_int_equal(steps, 7);
}

static void test_jitter(void **state)
{
	assert_int_equal(sched_jitter(10000, 0.2, 0.0), 8000);
	assert_int_equal(sched_jitter(10000, 0.2, 0.5), 10000);
	assert_int_equal(sched_jitter(10000, 0.2, 0.99999), 12000);
	assert_int_equal(sched_jitter(10000, 0.0, 0.7), 10000);
}

static void test_backoff(void **state)
{
	assert_int_equal(sched_error_backoff(1, 5000, 60000), 5000);
	assert_int_equal(sched_error_backoff(2, 5000, 60000), 10000);
	assert_int_equal(sched_error_backoff(4, 5000, 60000), 40000);
	assert_int_equal(sched_error_backoff(5, 5000, 60000), 60000);
	assert_int_equal(sched_error_backoff(200, 5000, 60000), 60000);
	assert_int_equal(sched_throttle_pause(1, 300000), 1000);
	assert_int_equal(sched_throttle_pause(3, 300000), 4000);
	assert_int_equal(sched_throttle_pause(30, 300000), 300000);
}

static void test_sweep_interval(void **state)
{
	unsigned quiet = 0;
	uint64_t i = 5000;
	/* Unchanged: the shortest interval for SCHED_QUIET_LISTS lists, then growing. */
	for (int k = 0; k < SCHED_QUIET_LISTS; k++) {
		i = sched_sweep_interval(i, false, &quiet, 1.5, 5000, 60000);
		assert_int_equal(i, 5000);
	}
	i = sched_sweep_interval(i, false, &quiet, 1.5, 5000, 60000);
	assert_int_equal(i, 7500);
	for (int k = 0; k < 20; k++)
		i = sched_sweep_interval(i, false, &quiet, 1.5, 5000, 60000);
	assert_int_equal(i, 60000);
	/* A change: back to the shortest, and the quiet count starts again. */
	i = sched_sweep_interval(i, true, &quiet, 1.5, 5000, 60000);
	assert_int_equal(i, 5000);
	assert_int_equal(quiet, 0);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_burst_then_rate),
		cmocka_unit_test(test_bucket_never_exceeds_rate),
		cmocka_unit_test(test_bucket_throttle_and_recover),
		cmocka_unit_test(test_bucket_set),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_jitter),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_sweep_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
