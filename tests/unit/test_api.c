/* Unit tests of api.c: ids, URLs, EmbedJob parsing, classification, Retry-After. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api.h"
#include "util.h"

#define FULL_JOB "{\"job_id\":\"job-1\",\"name\":\"nightly\",\"status\":\"processing\"," \
	"\"created_at\":\"2024-05-06T07:08:09.123Z\",\"input_dataset_id\":\"ds-in\"," \
	"\"output_dataset_id\":\"ds-out\",\"model\":\"embed-english-v3.0\",\"truncate\":\"END\"," \
	"\"meta\":{\"api_version\":{\"version\":\"1\",\"is_deprecated\":false}," \
	"\"billed_units\":{\"input_tokens\":1234.0},\"warnings\":[\"model is deprecated\",7]}}"

static int parse(const char *doc, struct api_job *j, char *err)
{
	return api_job_parse(doc, strlen(doc), j, err, 256);
}

static void test_id_valid(void **state)
{
	char long_ok[129], long_bad[130];
	memset(long_ok, 'a', 128);
	long_ok[128] = '\0';
	memset(long_bad, 'a', 129);
	long_bad[129] = '\0';
	assert_true(api_id_valid("abc-DEF_123"));
	assert_true(api_id_valid("a"));
	assert_true(api_id_valid(long_ok));
	assert_false(api_id_valid(long_bad));
	assert_false(api_id_valid(""));
	assert_false(api_id_valid(NULL));
	assert_false(api_id_valid("a/b"));
	assert_false(api_id_valid("../etc"));
	assert_false(api_id_valid("a b"));
	assert_false(api_id_valid("a;rm -rf"));
	assert_false(api_id_valid("a%2F"));
	assert_false(api_id_valid("caf\xc3\xa9"));
}

static void test_url(void **state)
{
	char buf[256];
	assert_int_equal(api_job_url("https://api.cohere.com", "j1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "https://api.cohere.com/v1/embed-jobs/j1");
	assert_int_equal(api_job_url("http://127.0.0.1:8080/", "j1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "http://127.0.0.1:8080/v1/embed-jobs/j1");
	assert_int_equal(api_job_url("https://x", "bad/id", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(api_job_url("https://api.cohere.com", "j1", buf, 10), -ENOSPC);
}

static void test_base_check(void **state)
{
	char err[256];
	assert_int_equal(api_base_check("https://api.cohere.com", err, sizeof(err)), 0);
	assert_int_equal(api_base_check("https://proxy.example:8443/cohere", err, sizeof(err)), 0);
	assert_int_equal(api_base_check("http://127.0.0.1:9000", err, sizeof(err)), 0);
	assert_int_equal(api_base_check("http://localhost", err, sizeof(err)), 0);
	assert_int_equal(api_base_check("http://[::1]:80", err, sizeof(err)), 0);
	assert_int_equal(api_base_check("http://api.cohere.com", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "loopback"));
	assert_int_equal(api_base_check("http://127.0.0.1.evil.com", err, sizeof(err)), -EINVAL);
	/* Loopback by address, not by the look of the string. */
	static const struct { const char *url; int ok; } loop[] = {
		{ "http://127.255.255.254:1", 1 }, { "http://127.1.2.3/", 1 }, { "http://[::1]/", 1 },
		{ "http://LOCALHOST:8", 1 }, { "http://127.1.1.1.1/", 0 }, { "http://127.1/", 0 },
		{ "http://127.0.0.1x/", 0 }, { "http://0x7f.0.0.1/", 0 }, { "http://128.0.0.1/", 0 },
		{ "http://[::2]/", 0 }, { "http://[::ffff:10.0.0.1]/", 0 }, { "http://10.127.0.1/", 0 },
		{ "http://127.000.000.001.example/", 0 }, { "http://localhost.example/", 0 },
	};
	for (size_t i = 0; i < sizeof(loop) / sizeof(loop[0]); i++) {
		int r = api_base_check(loop[i].url, err, sizeof(err));
		if ((r == 0) != loop[i].ok)
			fail_msg("%s: %s", loop[i].url, loop[i].ok ? "refused" : "accepted");
	}
	assert_int_equal(api_base_check("ftp://x", err, sizeof(err)), -EINVAL);
	assert_int_equal(api_base_check("https://", err, sizeof(err)), -EINVAL);
	assert_int_equal(api_base_check("https://user@host", err, sizeof(err)), -EINVAL);
	assert_int_equal(api_base_check("http://[::1", err, sizeof(err)), -EINVAL);
}

static void test_parse_full(void **state)
{
	struct api_job j;
	char err[256];
	assert_int_equal(parse(FULL_JOB, &j, err), 0);
	assert_string_equal(j.job_id, "job-1");
	assert_string_equal(j.name, "nightly");
	assert_int_equal(j.status, JOB_PROCESSING);
	assert_string_equal(j.status_raw, "processing");
	assert_string_equal(j.created_at, "2024-05-06T07:08:09.123Z");
	assert_string_equal(j.input_dataset_id, "ds-in");
	assert_string_equal(j.output_dataset_id, "ds-out");
	assert_string_equal(j.model, "embed-english-v3.0");
	assert_string_equal(j.truncate, "END");
	/* The non-string warning is skipped, the string one kept. */
	assert_int_equal(j.n_warnings, 1);
	assert_string_equal(j.warnings[0], "model is deprecated");
	api_job_clear(&j);
}

static void test_parse_minimal_and_unknown_fields(void **state)
{
	const char *doc = "{\"job_id\":\"j\",\"status\":\"complete\",\"created_at\":\"2024-05-06T07:08:09+02:00\","
			  "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"START\","
			  "\"brand_new_field\":{\"x\":[1,2,3]},\"name\":null}";
	struct api_job j;
	char err[256];
	assert_int_equal(parse(doc, &j, err), 0);
	assert_int_equal(j.status, JOB_COMPLETE);
	assert_null(j.name);
	assert_null(j.output_dataset_id);
	assert_int_equal(j.n_warnings, 0);
	api_job_clear(&j);
}

static void test_parse_statuses(void **state)
{
	static const struct { const char *s; enum job_status st; } cases[] = {
		{ "processing", JOB_PROCESSING }, { "cancelling", JOB_CANCELLING },
		{ "complete", JOB_COMPLETE }, { "cancelled", JOB_CANCELLED },
		{ "failed", JOB_FAILED }, { "queued", JOB_UNKNOWN }, { "COMPLETE", JOB_UNKNOWN },
		{ "", JOB_UNKNOWN },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char doc[512];
		struct api_job j;
		char err[256];
		snprintf(doc, sizeof(doc), "{\"job_id\":\"j\",\"status\":\"%s\",\"created_at\":\"2024-05-06T07:08:09Z\","
			 "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\"}", cases[i].s);
		assert_int_equal(parse(doc, &j, err), 0);
		assert_int_equal(j.status, cases[i].st);
		assert_string_equal(j.status_raw, cases[i].s);
		api_job_clear(&j);
	}
}

static void test_parse_missing_fields(void **state)
{
	static const char *const req[] = { "job_id", "status", "created_at", "input_dataset_id", "model", "truncate" };
	for (size_t i = 0; i < ARRAY_SIZE(req); i++) {
		struct buf b = { 0 };
		struct api_job j;
		char err[256];
		static const char *const vals[] = { "j", "processing", "2024-05-06T07:08:09Z", "d", "m", "END" };
		buf_printf(&b, "{");
		bool first = true;
		for (size_t k = 0; k < ARRAY_SIZE(req); k++) {
			if (k == i)
				continue;
			buf_printf(&b, "%s\"%s\":\"%s\"", first ? "" : ",", req[k], vals[k]);
			first = false;
		}
		buf_printf(&b, "}");
		assert_int_equal(parse(b.data, &j, err), -EINVAL);
		assert_non_null(strstr(err, req[i]));
		assert_non_null(strstr(err, "missing"));
		assert_null(j.job_id);
		buf_free(&b);
	}
}

static void test_parse_wrong_types(void **state)
{
	struct api_job j;
	char err[256];
	assert_int_equal(parse("{\"job_id\":42,\"status\":\"processing\",\"created_at\":\"2024-05-06T07:08:09Z\","
			       "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\"}", &j, err), -EINVAL);
	assert_non_null(strstr(err, "job_id"));
	assert_non_null(strstr(err, "int"));
	assert_int_equal(parse("{\"job_id\":\"j\",\"status\":[\"complete\"],\"created_at\":\"2024-05-06T07:08:09Z\","
			       "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\"}", &j, err), -EINVAL);
	assert_non_null(strstr(err, "status"));
	assert_int_equal(parse("{\"job_id\":\"j\",\"status\":\"complete\",\"created_at\":\"yesterday\","
			       "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\"}", &j, err), -EINVAL);
	assert_non_null(strstr(err, "RFC 3339"));
	assert_int_equal(parse("{\"job_id\":\"j\",\"status\":\"complete\",\"created_at\":\"2024-05-06T07:08:09Z\","
			       "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\",\"meta\":5}", &j, err), -EINVAL);
	assert_non_null(strstr(err, "meta"));
	assert_int_equal(parse("{\"job_id\":\"j\",\"status\":\"complete\",\"created_at\":\"2024-05-06T07:08:09Z\","
			       "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\",\"name\":true}", &j, err), -EINVAL);
	assert_non_null(strstr(err, "name"));
	assert_int_equal(parse("[1,2,3]", &j, err), -EINVAL);
	assert_non_null(strstr(err, "object"));
	assert_int_equal(parse("\"processing\"", &j, err), -EINVAL);
}

static void test_parse_broken_json(void **state)
{
	struct api_job j;
	char err[256];
	/* Truncated at several points. */
	size_t n = strlen(FULL_JOB);
	for (size_t cut = 0; cut < n; cut += 7) {
		assert_int_equal(api_job_parse(FULL_JOB, cut, &j, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "EmbedJob"));
	}
	assert_int_equal(parse("{\"job_id\":\"j\",", &j, err), -EINVAL);
	assert_non_null(strstr(err, "invalid JSON"));
	assert_int_equal(parse("<html>oops</html>", &j, err), -EINVAL);
	assert_int_equal(parse(FULL_JOB "garbage", &j, err), -EINVAL);
	assert_non_null(strstr(err, "trailing"));
	assert_int_equal(parse("", &j, err), -EINVAL);
	assert_int_equal(api_job_parse("{\"a\":\"\0\"}", 9, &j, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
}

static void test_parse_huge_numbers_and_nesting(void **state)
{
	struct api_job j;
	char err[256];
	const char *huge = "{\"job_id\":\"j\",\"status\":\"complete\",\"created_at\":\"2024-05-06T07:08:09Z\","
			   "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\",\"meta\":{\"billed_units\":"
			   "{\"input_tokens\":1e400,\"output_tokens\":-99999999999999999999999999999}}}";
	assert_int_equal(parse(huge, &j, err), 0);
	assert_int_equal(j.status, JOB_COMPLETE);
	api_job_clear(&j);

	struct buf b = { 0 };
	buf_printf(&b, "{\"job_id\":\"j\",\"status\":\"complete\",\"created_at\":\"2024-05-06T07:08:09Z\","
		   "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\",\"x\":");
	for (int i = 0; i < 10000; i++)
		buf_append(&b, "[", 1);
	for (int i = 0; i < 10000; i++)
		buf_append(&b, "]", 1);
	buf_append(&b, "}", 1);
	assert_int_equal(parse(b.data, &j, err), -EINVAL);
	assert_non_null(strstr(err, "invalid JSON"));
	buf_free(&b);

	/* Over the body cap. */
	size_t big = API_BODY_MAX + 1;
	char *doc = malloc(big);
	memset(doc, ' ', big);
	assert_int_equal(api_job_parse(doc, big, &j, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "limit"));
	free(doc);
}

static void test_rfc3339(void **state)
{
	assert_true(api_rfc3339_valid("2024-05-06T07:08:09Z"));
	assert_true(api_rfc3339_valid("2024-05-06T07:08:09.123456Z"));
	assert_true(api_rfc3339_valid("2024-05-06T07:08:09-05:30"));
	assert_false(api_rfc3339_valid("2024-05-06"));
	assert_false(api_rfc3339_valid("2024-13-06T07:08:09Z"));
	assert_false(api_rfc3339_valid("2024-05-06T25:08:09Z"));
	assert_false(api_rfc3339_valid("2024-05-06T07:08:09"));
	assert_false(api_rfc3339_valid("2024-05-06T07:08:09.Z"));
	assert_false(api_rfc3339_valid("2024-05-06T07:08:09Zjunk"));
}

static void test_classify(void **state)
{
	assert_int_equal(api_classify(200), API_OK);
	assert_int_equal(api_classify(400), API_REJECTED);
	assert_int_equal(api_classify(422), API_REJECTED);
	assert_int_equal(api_classify(401), API_AUTH);
	assert_int_equal(api_classify(403), API_AUTH);
	assert_int_equal(api_classify(404), API_NOT_FOUND);
	assert_int_equal(api_classify(429), API_THROTTLED);
	assert_int_equal(api_classify(503), API_THROTTLED);
	assert_int_equal(api_classify(501), API_BAD_BASE);
	static const long transient[] = { 0, 498, 499, 500, 502, 504, 301, 302, 418, 201 };
	for (size_t i = 0; i < ARRAY_SIZE(transient); i++)
		assert_int_equal(api_classify(transient[i]), API_TRANSIENT);
	assert_string_equal(api_class_name(API_THROTTLED), "throttled");
}

static void test_retry_after(void **state)
{
	int64_t s;
	/* 2015-10-21T07:28:00Z */
	const int64_t now = 1445412480;
	assert_int_equal(api_retry_after("120", now, 3600, &s), 0);
	assert_int_equal(s, 120);
	assert_int_equal(api_retry_after("  0 ", now, 3600, &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(api_retry_after("999999999999999999999999", now, 3600, &s), 0);
	assert_int_equal(s, 3600);
	assert_int_equal(api_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now, 3600, &s), 0);
	assert_int_equal(s, 30);
	assert_int_equal(api_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now, 3600, &s), 0);
	assert_int_equal(s, 60);
	assert_int_equal(api_retry_after("Wed Oct 21 07:28:10 2015", now, 3600, &s), 0);
	assert_int_equal(s, 10);
	/* A date in the past means now; one far ahead is capped. */
	assert_int_equal(api_retry_after("Tue, 20 Oct 2015 07:28:00 GMT", now, 3600, &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(api_retry_after("Fri, 21 Oct 2044 07:28:00 GMT", now, 3600, &s), 0);
	assert_int_equal(s, 3600);
	assert_int_equal(api_retry_after("-5", now, 3600, &s), -EINVAL);
	assert_int_equal(api_retry_after("1.5", now, 3600, &s), -EINVAL);
	assert_int_equal(api_retry_after("soon", now, 3600, &s), -EINVAL);
	assert_int_equal(api_retry_after("", now, 3600, &s), -EINVAL);
	assert_int_equal(api_retry_after("Wed, 21 Oct 2015 07:28:30 GMT trailing", now, 3600, &s), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_base_check),
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_parse_minimal_and_unknown_fields),
		cmocka_unit_test(test_parse_statuses),
		cmocka_unit_test(test_parse_missing_fields),
		cmocka_unit_test(test_parse_wrong_types),
		cmocka_unit_test(test_parse_broken_json),
		cmocka_unit_test(test_parse_huge_numbers_and_nesting),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_retry_after),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
