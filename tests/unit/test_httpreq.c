/*
 * The /metrics request head reader: a table of heads (complete, partial, too
 * big, malformed) and what each gives; then every request of the table
 * arriving in two pieces cut at every byte gives what it gives whole.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "httpreq.h"

static const struct {
	const char *in;
	size_t max;                 /* 0: 8191, the daemon's */
	int rc;
	enum httpreq_method method;
	const char *path;
} cases[] = {
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", 0, 1, HTTPREQ_GET, "/metrics" },
	{ "HEAD /metrics?name[]=x HTTP/1.0\r\n\r\n", 0, 1, HTTPREQ_HEAD, "/metrics" },
	{ "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", 0, 1, HTTPREQ_OTHER, "/metrics" },
	{ "GETS /metrics HTTP/1.1\r\n\r\n", 0, 1, HTTPREQ_OTHER, "/metrics" },
	{ "GET / HTTP/1.1\n\n", 0, 1, HTTPREQ_GET, "/" },
	{ "GET /other HTTP/1.1\n\r\n", 0, 1, HTTPREQ_GET, "/other" },
	{ "GET ?x HTTP/1.1\r\n\r\n", 0, 1, HTTPREQ_GET, "" },
	/* Not yet complete: the idle connections of the pressure test. */
	{ "GET /", 0, 0, 0, NULL },
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\n", 0, 0, 0, NULL },
	{ "GET /metrics HTTP/1.1\r\n\r", 0, 0, 0, NULL },
	{ "", 0, 0, 0, NULL },
	/* Over the buffer without a blank line. */
	{ "GET /metrics HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaa", 40, -EMSGSIZE, 0, NULL },
	{ "GET /metrics HTTP/1.1\r\n\r\n", 10, -EMSGSIZE, 0, NULL },
	/* Malformed request lines. */
	{ "GET /metrics\r\n\r\n", 0, -EINVAL, 0, NULL },
	{ "GET  /metrics HTTP/1.1\r\n\r\n", 0, -EINVAL, 0, NULL },
	{ "GET /metrics HTTP/2.0\r\n\r\n", 0, -EINVAL, 0, NULL },
	{ "GET /metrics HTTP/1.1 x\r\n\r\n", 0, -EINVAL, 0, NULL },
	{ "G(T /metrics HTTP/1.1\r\n\r\n", 0, -EINVAL, 0, NULL },
	{ "GET /met\x01rics HTTP/1.1\r\n\r\n", 0, -EINVAL, 0, NULL },
	{ "\r\n\r\n", 0, -EINVAL, 0, NULL },
	{ "AVERYLONGMETHODNAME /metrics HTTP/1.1\r\n\r\n", 0, -EINVAL, 0, NULL },
};

static size_t max_of(size_t i)
{
	return cases[i].max ? cases[i].max : 8191;
}

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct httpreq rq;
		size_t len = strlen(cases[i].in);
		int r = httpreq_parse(cases[i].in, len, max_of(i), &rq);
		if (r != cases[i].rc)
			fail_msg("\"%s\": %d, expected %d", cases[i].in, r, cases[i].rc);
		if (r != 1)
			continue;
		assert_int_equal(rq.method, cases[i].method);
		assert_int_equal(rq.path_len, strlen(cases[i].path));
		assert_memory_equal(rq.path, cases[i].path, rq.path_len);
		/* The head ends at its blank line; a body after it is not the head's. */
		assert_int_equal(cases[i].in[rq.head_len - 1], '\n');
		assert_true(rq.head_len <= len);
	}
}

/* A NUL in the head does not hide the blank line after it. */
static void test_nul(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n";
	struct httpreq rq;
	assert_int_equal(httpreq_parse(req, sizeof(req) - 1, 8191, &rq), 1);
	assert_int_equal(rq.head_len, sizeof(req) - 1);
}

static void test_every_cut(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		for (size_t cut = 0; cut <= len; cut++) {
			struct httpreq rq;
			int r = httpreq_parse(cases[i].in, cut, max_of(i), &rq);
			if (r == 0 && cut < len)
				r = httpreq_parse(cases[i].in, len, max_of(i), &rq);
			if (r != cases[i].rc)
				fail_msg("\"%s\" cut at %zu: %d, expected %d", cases[i].in, cut, r, cases[i].rc);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_every_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
