/*
 * The list splitter against a document with every trap we know: strings with
 * brackets, quotes and escapes, nested members, unknown keys before and after
 * the list, a null element. Fed in two chunks cut at every byte, and byte by
 * byte, it must hand over exactly the elements; cut short anywhere it must
 * fail; an element over the cap is skipped and counted.
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

#include "jsplit.h"

static const char *const elems[] = {
	"{\"job_id\":\"a-1\",\"name\":\"nightly-docs\",\"status\":\"processing\",\"created_at\":\"2026-01-01T00:00:00Z\","
	"\"meta\":{\"warnings\":[\"}]\\\"{[\"],\"job_id\":\"not-this\"}}",
	"{ \"name\" : \"with spaces\" , \"status\":\"complete\", \"job_id\" : \"b_2\" }",
	"{\"job_id\":\"esc\\u0061ped\",\"status\":\"failed\",\"name\":\"x\\\"y\"}",
	"null",
	"{\"status\":\"cancelled\",\"nested\":{\"job_id\":\"deep\"},\"job_id\":\"c-3\",\"truncate\":\"END\"}",
};
#define N_ELEMS (sizeof(elems) / sizeof(elems[0]))
/* Expected job_id / name / status picked out, "" for absent. */
static const char *const want[N_ELEMS][3] = {
	{ "a-1", "nightly-docs", "processing" },
	{ "b_2", "with spaces", "complete" },
	{ "", "", "failed" },                     /* an escaped id is not picked out: the caller parses */
	{ "", "", "" },
	{ "c-3", "", "cancelled" },
};

static char doc[4096];

struct got {
	size_t n;
	char text[16][512];
	char f[16][3][64];
};

static int collect(const struct jsplit_elem *e, void *arg)
{
	struct got *g = arg;
	snprintf(g->text[g->n], sizeof(g->text[0]), "%.*s", (int)e->len, e->text);
	const char *fs[3] = { e->job_id, e->name, e->status };
	for (int i = 0; i < 3; i++)
		snprintf(g->f[g->n][i], sizeof(g->f[0][0]), "%s", fs[i] ? fs[i] : "");
	g->n++;
	return 0;
}

static void build_doc(void)
{
	size_t n = (size_t)snprintf(doc, sizeof(doc), "{\"before\":[1,{\"embed_jobs\":[\"no\"]}],\"x\":\"]\" ,\n \"embed_jobs\" : [ ");
	for (size_t i = 0; i < N_ELEMS; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%s%s", i ? " ,\n " : "", elems[i]);
	snprintf(doc + n, sizeof(doc) - n, " ], \"after\": {\"a\":[]} }\n");
}

static void check(struct got *g)
{
	assert_int_equal(g->n, N_ELEMS);
	for (size_t i = 0; i < N_ELEMS; i++) {
		assert_string_equal(g->text[i], elems[i]);
		for (int f = 0; f < 3; f++)
			assert_string_equal(g->f[i][f], want[i][f]);
	}
}

static void test_every_cut(void **state)
{
	build_doc();
	size_t len = strlen(doc);
	for (size_t cut = 0; cut <= len; cut++) {
		struct jsplit s;
		struct got g = { 0 };
		jsplit_init(&s, 1 << 20, collect, &g);
		assert_int_equal(jsplit_feed(&s, doc, cut), 0);
		assert_int_equal(jsplit_feed(&s, doc + cut, len - cut), 0);
		assert_int_equal(jsplit_finish(&s), 0);
		check(&g);
		jsplit_free(&s);
	}
	/* Byte by byte. */
	struct jsplit s;
	struct got g = { 0 };
	jsplit_init(&s, 1 << 20, collect, &g);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(jsplit_feed(&s, doc + i, 1), 0);
	assert_int_equal(jsplit_finish(&s), 0);
	check(&g);
	jsplit_free(&s);
}

static void test_truncated_everywhere(void **state)
{
	build_doc();
	size_t len = strlen(doc);
	/* The document ends at its last '}' (a newline follows). */
	for (size_t cut = 0; cut < len - 1; cut++) {
		struct jsplit s;
		struct got g = { 0 };
		jsplit_init(&s, 1 << 20, collect, &g);
		int r = jsplit_feed(&s, doc, cut);
		if (r == 0)
			r = jsplit_finish(&s);
		if (r != -EINVAL)
			fail_msg("a document cut at byte %zu of %zu was accepted", cut, len);
		assert_non_null(s.error);
		jsplit_free(&s);
	}
}

static void test_bad_documents(void **state)
{
	static const struct { const char *text; const char *why; } cases[] = {
		{ "[1,2]", "not a JSON object" },
		{ "{\"data\":[]}", "no \"embed_jobs\"" },
		{ "{\"embed_jobs\":[{\"a\":1]}", "unbalanced" },
		{ "{\"embed_jobs\":[]} x", "after the end" },
		{ "", "truncated" },
		{ "{\"embed_jobs\":[{\"job_id\":\"x\"}", "truncated" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jsplit s;
		struct got g = { 0 };
		jsplit_init(&s, 1 << 20, collect, &g);
		int r = jsplit_feed(&s, cases[i].text, strlen(cases[i].text));
		if (r == 0)
			r = jsplit_finish(&s);
		assert_int_equal(r, -EINVAL);
		if (!strstr(s.error, cases[i].why))
			fail_msg("%s: error \"%s\", expected \"%s\"", cases[i].text, s.error, cases[i].why);
		jsplit_free(&s);
	}
	/* Nesting deeper than the limit. */
	char deep[400] = "{\"embed_jobs\":[";
	for (int i = 0; i < 100; i++)
		strcat(deep, "[");
	struct jsplit s;
	struct got g = { 0 };
	jsplit_init(&s, 1 << 20, collect, &g);
	assert_int_equal(jsplit_feed(&s, deep, strlen(deep)), -EINVAL);
	assert_non_null(strstr(s.error, "deeply"));
	jsplit_free(&s);
}

static int stop_at_two(const struct jsplit_elem *e, void *arg)
{
	return ++*(int *)arg == 2 ? -ECANCELED : 0;
}

static void test_cap_and_stop(void **state)
{
	const char *d = "{\"embed_jobs\":[{\"job_id\":\"small\"},{\"job_id\":\"big\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},"
			"{\"job_id\":\"after\"}]}";
	struct jsplit s;
	struct got g = { 0 };
	jsplit_init(&s, 40, collect, &g);
	assert_int_equal(jsplit_feed(&s, d, strlen(d)), 0);
	assert_int_equal(jsplit_finish(&s), 0);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.f[0][0], "small");
	assert_string_equal(g.f[1][0], "after");
	assert_int_equal(s.skipped, 1);
	jsplit_free(&s);

	int count = 0;
	jsplit_init(&s, 1 << 20, stop_at_two, &count);
	assert_int_equal(jsplit_feed(&s, d, strlen(d)), -ECANCELED);
	assert_int_equal(count, 2);
	jsplit_free(&s);
}

/*
 * A member given twice: the splitter's fields are what a parse reads (the
 * last one), or none when the last cannot be picked out; found by fuzz_jsplit.
 */
static void test_repeated_members(void **state)
{
	static const struct { const char *elem; const char *id, *status; } cases[] = {
		{ "{\"job_id\":\"a\",\"status\":\"processing\",\"status\":\"complete\"}", "a", "complete" },
		{ "{\"job_id\":\"a\",\"job_id\":\"b\\u0041\",\"status\":\"failed\"}", "", "failed" },
		{ "{\"job_id\":\"a\",\"job_id\":5,\"status\":\"failed\"}", "", "failed" },
		{ "{\"job_id\":\"a\",\"status\":\"processing\",\"st\\u0061tus\":\"complete\"}", "", "" },
		{ "{\"st\\u0061tus\":\"complete\",\"status\":\"processing\",\"job_id\":\"a\"}", "a", "processing" },
		{ "{\"name\":\"with spaces\",\"status\":\"failed\",\"name\":\"x\\\"y\",\"job_id\":\"c\"}", "c", "failed" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char d[512];
		snprintf(d, sizeof(d), "{\"embed_jobs\":[%s]}", cases[i].elem);
		struct jsplit s;
		struct got g = { 0 };
		jsplit_init(&s, 1 << 20, collect, &g);
		assert_int_equal(jsplit_feed(&s, d, strlen(d)), 0);
		assert_int_equal(jsplit_finish(&s), 0);
		assert_int_equal(g.n, 1);
		if (strcmp(g.f[0][0], cases[i].id) != 0 || strcmp(g.f[0][2], cases[i].status) != 0)
			fail_msg("%s: job_id \"%s\" status \"%s\", expected \"%s\" \"%s\"", cases[i].elem, g.f[0][0],
				 g.f[0][2], cases[i].id, cases[i].status);
		/* In the last case the last name is escaped: no name is picked, the caller parses. */
		if (i == sizeof(cases) / sizeof(cases[0]) - 1)
			assert_string_equal(g.f[0][1], "");
		jsplit_free(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_cut),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_bad_documents),
		cmocka_unit_test(test_cap_and_stop),
		cmocka_unit_test(test_repeated_members),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
