/* util: RFC 3339 parsing (the --since of deliveries and replays) and durations for people. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util.h"

static void test_parse_rfc3339(void **state)
{
	static const struct { const char *s; int64_t ms; } ok[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2026-12-01T08:00:00Z", 1796112000000 },
		{ "2026-12-01T08:00:00.5Z", 1796112000500 },
		{ "2026-12-01T08:00:00.123456Z", 1796112000123 },
		{ "2026-12-01T09:30:00+01:30", 1796112000000 },
		{ "2026-12-01T06:00:00-02:00", 1796112000000 },
		{ "2026-12-01 08:00:00z", 1796112000000 },
	};
	static const char *const bad[] = {
		"", "2026-12-01", "2026-12-01T08:00:00", "2026-12-01T08:00:00+0100", "2026-12-01T08:00:00.Z",
		"2026-12-01T08:00:00Zjunk", "yesterday", "2026-13-01T08:00:00Z",
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		int64_t ms = -1;
		assert_int_equal(util_parse_rfc3339(ok[i].s, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t ms;
		assert_int_equal(util_parse_rfc3339(bad[i], &ms), -EINVAL);
	}
	/* What util_rfc3339 writes, util_parse_rfc3339 reads back. */
	char buf[40];
	int64_t back;
	util_rfc3339(1796112000123, buf, sizeof(buf));
	assert_int_equal(util_parse_rfc3339(buf, &back), 0);
	assert_int_equal(back, 1796112000123);
}

static void test_format_duration(void **state)
{
	static const struct { uint64_t ms; const char *s; } cases[] = {
		{ 0, "0ms" }, { 250, "250ms" }, { 1000, "1s" }, { 45000, "45s" }, { 90000, "1m30s" },
		{ 9000000, "2h30m" }, { 3 * 86400000ULL, "3d" }, { 86400000ULL + 1000, "1d1s" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char buf[32];
		util_format_duration(cases[i].ms, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rfc3339),
		cmocka_unit_test(test_format_duration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
