/*
 * The control protocol's framing and request parsing: lines are cut at '\n'
 * and bounded; a request is one JSON object with a known "cmd", anything
 * else is refused with a reason.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ctlproto.h"

static void test_line(void **state)
{
	static const struct { const char *in; size_t max; int rc; size_t len; } cases[] = {
		{ "{\"cmd\":\"status\"}\n", 100, 1, 16 },
		{ "\n", 100, 1, 0 },
		{ "a\nb\n", 100, 1, 1 },
		{ "{\"cmd\":\"stat", 100, 0, 0 },
		{ "", 100, 0, 0 },
		{ "12345", 5, 0, 0 },           /* at the limit, still waiting */
		{ "123456", 5, -EMSGSIZE, 0 },  /* past it without a newline */
		{ "12345\n", 5, 1, 5 },         /* exactly the limit */
		{ "123456\n", 5, -EMSGSIZE, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 99;
		int r = ctlproto_line(cases[i].in, strlen(cases[i].in), cases[i].max, &len);
		if (r != cases[i].rc || (r == 1 && len != cases[i].len))
			fail_msg("\"%s\" max %zu: %d len %zu, expected %d len %zu", cases[i].in, cases[i].max, r, len,
				 cases[i].rc, cases[i].len);
	}
}

static void test_parse(void **state)
{
	static const struct { const char *in; int rc; enum ctl_cmd cmd; const char *why; } cases[] = {
		{ "{\"cmd\":\"watch\",\"ids\":[\"a\"]}", 0, CTL_WATCH, NULL },
		{ "{\"cmd\":\"redeliver\",\"event_id\":\"evt_1\"} \r", 0, CTL_REDELIVER, NULL },
		{ "{\"cmd\":\"nope\"}", -EINVAL, 0, "unknown command" },
		{ "{\"ids\":[]}", -EINVAL, 0, "no \"cmd\"" },
		{ "[1]", -EINVAL, 0, "JSON object" },
		{ "{\"cmd\":\"status\"} x", -EINVAL, 0, "trailing data" },
		{ "{\"cmd\":\"status\"", -EINVAL, 0, "incomplete" },
		{ "{\"cmd\":\"show\",\"id\":\"a\\u0000b\"}", -EINVAL, 0, "\\u0000" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum ctl_cmd cmd;
		json_object *req = NULL;
		char err[256] = "";
		int r = ctlproto_parse(cases[i].in, strlen(cases[i].in), &cmd, &req, err, sizeof(err));
		if (r != cases[i].rc)
			fail_msg("%s: %d (%s), expected %d", cases[i].in, r, err, cases[i].rc);
		if (r == 0) {
			assert_int_equal(cmd, cases[i].cmd);
			assert_non_null(req);
			json_object_put(req);
		} else {
			assert_null(req);
			if (!strstr(err, cases[i].why))
				fail_msg("%s: \"%s\", expected \"%s\"", cases[i].in, err, cases[i].why);
		}
	}
	/* A NUL byte in the line itself. */
	enum ctl_cmd cmd;
	json_object *req;
	char err[256];
	assert_int_equal(ctlproto_parse("{\"cmd\":\"status\"}\0", 17, &cmd, &req, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
