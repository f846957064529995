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
#include <stdlib.h>
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

static int dropped;
static void drop(void *item)
{
	dropped++;
}

/* Walks 10,000 keys offered in a shuffled order page by page: every key once, in order, the last page without next. */
static void test_page(void **state)
{
	enum { N = 10000 };
	static char keys[N][16];
	static int order[N];
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%05d", i);
		order[i] = i;
	}
	srand(7);
	for (int i = N - 1; i > 0; i--) {
		int j = rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	static const int limits[] = { 1, 3, 999, 4096, 10000 };
	for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
		char after[16] = "";
		int seen = 0, pages = 0;
		for (;;) {
			char line[96], err[128];
			struct ctlproto_page p;
			enum ctl_cmd cmd;
			json_object *req;
			if (after[0])
				snprintf(line, sizeof(line), "{\"cmd\":\"list\",\"after\":\"%s\",\"limit\":%d}", after, limits[l]);
			else
				snprintf(line, sizeof(line), "{\"cmd\":\"list\",\"limit\":%d}", limits[l]);
			assert_int_equal(ctlproto_parse(line, strlen(line), &cmd, &req, err, sizeof(err)), 0);
			assert_int_equal(ctlproto_page_init(&p, req, drop, err, sizeof(err)), 0);
			dropped = 0;
			for (int i = 0; i < N; i++)
				ctlproto_page_add(&p, keys[order[i]], keys[order[i]]);
			ctlproto_page_end(&p);
			for (size_t i = 0; i < p.n; i++)
				assert_string_equal(p.items[i].key, keys[seen + (int)i]);
			seen += (int)p.n;
			pages++;
			assert_int_equal((size_t)dropped + p.n, (size_t)N);
			json_object *o = json_object_new_object(), *next;
			ctlproto_page_next(&p, o);
			bool more = json_object_object_get_ex(o, "next", &next);
			assert_true(more == (seen < N));
			if (more)
				snprintf(after, sizeof(after), "%s", json_object_get_string(next));
			json_object_put(o);
			ctlproto_page_free(&p);
			json_object_put(req);
			if (!more)
				break;
		}
		assert_int_equal(seen, N);
		assert_int_equal(pages, (N + limits[l] - 1) / limits[l]);
	}
}

/* A list with nothing in it (a filter that matches no job): one empty page, no next. */
static void test_page_empty(void **state)
{
	char err[128];
	struct ctlproto_page p;
	enum ctl_cmd cmd;
	json_object *req, *o = json_object_new_object();
	assert_int_equal(ctlproto_parse("{\"cmd\":\"list\"}", 14, &cmd, &req, err, sizeof(err)), 0);
	assert_int_equal(ctlproto_page_init(&p, req, NULL, err, sizeof(err)), 0);
	ctlproto_page_end(&p);
	assert_int_equal(p.n, 0);
	ctlproto_page_next(&p, o);
	assert_false(json_object_object_get_ex(o, "next", NULL));
	json_object_put(o);
	ctlproto_page_free(&p);
	json_object_put(req);
	(void)state;
}

static void test_page_bad(void **state)
{
	static const char *const lines[] = {
		"{\"cmd\":\"list\",\"after\":7}", "{\"cmd\":\"list\",\"limit\":\"ten\"}",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		char err[128];
		struct ctlproto_page p;
		enum ctl_cmd cmd;
		json_object *req;
		assert_int_equal(ctlproto_parse(lines[i], strlen(lines[i]), &cmd, &req, err, sizeof(err)), 0);
		assert_int_equal(ctlproto_page_init(&p, req, NULL, err, sizeof(err)), -EINVAL);
		json_object_put(req);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_page),
		cmocka_unit_test(test_page_bad),
		cmocka_unit_test(test_page_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
