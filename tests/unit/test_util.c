/*
 * util: RFC 3339 parsing (the --since of deliveries and replays), durations for people, the name
 * rule and the escaping of text for terminals, and whole-file writes that never follow a planted symlink.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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

static void test_name_valid(void **state)
{
	char long_name[130];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[129] = '\0';
	static const struct { const char *s; bool ok; } cases[] = {
		{ "nightly", true }, { "nightly docs #7", true }, { "caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x93\x9a", true },
		{ "", false }, { "a\nb", false }, { "a\tb", false }, { "a\x1b]0;x\x07", false }, { "a\x7f", false },
		{ "a\xc2\x9b" "2J", false },                    /* C1 CSI as UTF-8 */
		{ "a\x9b", false }, { "a\xc3", false }, { "\xc0\xaf", false }, { "\xed\xa0\x80", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_true(util_name_valid(cases[i].s) == cases[i].ok);
	assert_false(util_name_valid(long_name));
	long_name[128] = '\0';
	assert_true(util_name_valid(long_name));
}

static void test_escape_text(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "plain", "plain" }, { "", "" }, { "caf\xc3\xa9", "caf\xc3\xa9" },
		{ "nightly\nEMBEDWATCH_HOOK=pwned\x1b]0;OWNED\x07\x1b[2J",
		  "nightly\\x0aEMBEDWATCH_HOOK=pwned\\x1b]0;OWNED\\x07\\x1b[2J" },
		{ "\x7f\xc2\x9b\x9b", "\\x7f\\xc2\\x9b\\x9b" }, { "end\xe2\x80", "end\\xe2\\x80" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf b = { 0 };
		util_escape_text(&b, cases[i].in);
		assert_string_equal(b.data ? b.data : "", cases[i].out);
		buf_free(&b);
	}
}

static void test_write_file(void **state)
{
	char dir[] = "/tmp/ew-util-test.XXXXXX", path[64], link[64], target[64], cmd[96], got[32] = "";
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/m.prom", dir);
	snprintf(link, sizeof(link), "%s/m.prom.tmp", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	FILE *f = fopen(target, "w");
	assert_non_null(f);
	fputs("secret", f);
	fclose(f);
	chmod(target, 0600);
	/* Symlinks at the old fixed temporary name and at the file itself: neither is followed. */
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(util_write_file(path, "x 1\n", 4, 0644, true), 0);
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	f = fopen(target, "r");
	assert_non_null(fgets(got, sizeof(got), f));
	fclose(f);
	assert_string_equal(got, "secret");
	/* A directory that is not there: an error, nothing left behind. */
	snprintf(cmd, sizeof(cmd), "%s/no/such", dir);
	assert_int_equal(util_write_file(cmd, "x", 1, 0644, false), -ENOENT);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rfc3339),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_escape_text),
		cmocka_unit_test(test_write_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
