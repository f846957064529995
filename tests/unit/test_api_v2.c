/* Unit tests of api_v2.c: the v2 status mapping, URLs, Batch, page and Dataset documents, the kind dispatch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api_v2.h"
#include "util.h"

#define FULL_BATCH "{\"id\":\"b-1\",\"name\":\"nightly-docs-1\",\"creator_id\":\"u1\",\"org_id\":\"o1\"," \
	"\"status\":\"BATCH_STATUS_IN_PROGRESS\",\"created_at\":\"2026-12-01T08:00:00Z\"," \
	"\"updated_at\":\"2026-12-01T08:05:00.250Z\",\"input_dataset_id\":\"ds-in\",\"input_tokens\":\"123456\"," \
	"\"output_tokens\":\"0\",\"model\":\"embed-v4.0\",\"num_records\":1000,\"num_successful_records\":400," \
	"\"num_failed_records\":12,\"status_reason\":\"\",\"future_field\":{\"kept\":[1,2]}}"

static void test_status_mapping(void **state)
{
	static const struct { const char *s; enum job_status want; } cases[] = {
		{ "BATCH_STATUS_QUEUED", JOB_PROCESSING }, { "BATCH_STATUS_IN_PROGRESS", JOB_PROCESSING },
		{ "BATCH_STATUS_CANCELING", JOB_CANCELLING }, { "BATCH_STATUS_COMPLETED", JOB_COMPLETE },
		{ "BATCH_STATUS_FAILED", JOB_FAILED }, { "BATCH_STATUS_CANCELED", JOB_CANCELLED },
		{ "BATCH_STATUS_UNSPECIFIED", JOB_UNKNOWN }, { "BATCH_STATUS_PAUSED", JOB_UNKNOWN },
		/* Other spellings: without the prefix, another case, British doubling. */
		{ "COMPLETED", JOB_COMPLETE }, { "batch_status_completed", JOB_COMPLETE },
		{ "BATCH_STATUS_CANCELLED", JOB_CANCELLED }, { "BATCH_STATUS_CANCELLING", JOB_CANCELLING },
		/* v1 words are not v2 statuses unless they are spellings of one. */
		{ "processing", JOB_UNKNOWN }, { "", JOB_UNKNOWN }, { "BATCH_STATUS_", JOB_UNKNOWN },
		{ "BATCH_STATUS_COMPLETEDX", JOB_UNKNOWN },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (api_v2_status(cases[i].s) != cases[i].want)
			fail_msg("\"%s\": got %s, want %s", cases[i].s, job_status_name(api_v2_status(cases[i].s)),
				 job_status_name(cases[i].want));
	assert_int_equal(api_v2_status(NULL), JOB_UNKNOWN);
}

static void test_urls(void **state)
{
	char buf[512];
	assert_int_equal(api_batch_url("https://api.cohere.com", "b-1", false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "https://api.cohere.com/v2/batches/b-1");
	assert_int_equal(api_batch_url("http://127.0.0.1:9/", "b-1", true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "http://127.0.0.1:9/v2/batches/b-1:cancel");
	assert_int_equal(api_batch_url("https://x", "b/1", false, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(api_batch_url("https://api.cohere.com", "b-1", true, buf, 40), -ENOSPC);
	assert_int_equal(api_dataset_url("https://api.cohere.com//", "ds-out", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "https://api.cohere.com/v1/datasets/ds-out");
	assert_int_equal(api_dataset_url("https://x", "../x", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(api_batches_url("https://api.cohere.com", 1000, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "https://api.cohere.com/v2/batches?order_by=updated_at&page_size=1000");
	assert_int_equal(api_batches_url("https://x/", 50, "a b&c=d/é~._-", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "https://x/v2/batches?order_by=updated_at&page_size=50&page_token=a%20b%26c%3Dd%2F%C3%A9~._-");
	assert_int_equal(api_batches_url("https://x", 50, "", buf, sizeof(buf)), 0);
	assert_null(strstr(buf, "page_token"));
	assert_int_equal(api_batches_url("https://x", 0, NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(api_batches_url("https://x", 1001, NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(api_batches_url("https://x", 10, "tok", buf, 30), -ENOSPC);
	/* The dispatch: v1 keeps its paths, the cancel of v1 a slash, of v2 a colon. */
	assert_int_equal(api_kind_url(JOB_KIND_EMBED, "https://x", "j1", true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "https://x/v1/embed-jobs/j1/cancel");
	assert_int_equal(api_kind_url(JOB_KIND_EMBED, "https://x", "j1", false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "https://x/v1/embed-jobs/j1");
	assert_int_equal(api_kind_url(JOB_KIND_BATCH, "https://x", "j1", true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "https://x/v2/batches/j1:cancel");
	assert_int_equal(api_kind_url(JOB_KIND_EMBED, "https://x", "j1", true, buf, 28), -ENOSPC);
}

static void test_batch_full(void **state)
{
	struct api_obs o;
	char err[256];
	assert_int_equal(api_batch_parse(FULL_BATCH, strlen(FULL_BATCH), &o, err, sizeof(err)), 0);
	assert_string_equal(o.job.job_id, "b-1");
	assert_string_equal(o.job.name, "nightly-docs-1");
	assert_string_equal(o.job.status_raw, "BATCH_STATUS_IN_PROGRESS");
	assert_int_equal(o.job.status, JOB_PROCESSING);
	assert_string_equal(o.updated_at, "2026-12-01T08:05:00.250Z");
	assert_string_equal(o.job.model, "embed-v4.0");
	assert_null(o.job.output_dataset_id);
	assert_true(o.job.has_records);
	assert_int_equal(o.job.num_records, 1000);
	assert_int_equal(o.job.num_successful, 400);
	assert_int_equal(o.job.num_failed, 12);
	assert_int_equal(api_records_percent(&o.job), 41);
	/* Unknown fields are kept in the document, and the strings of numbers stay strings. */
	assert_non_null(strstr(o.doc, "\"future_field\":{\"kept\":[1,2]}"));
	assert_non_null(strstr(o.doc, "\"input_tokens\":\"123456\""));
	assert_int_equal(o.doc_len, strlen(o.doc));
	api_obs_clear(&o);
	api_obs_clear(&o);  /* twice is harmless */
}

/* Every field may be absent, counts may be strings, odd types of fields the daemon does not use are kept. */
static void test_batch_lenient(void **state)
{
	static const struct {
		const char *doc;
		enum job_status st;
		bool has_records;
		int64_t total, ok, failed;
		int pct;
	} cases[] = {
		{ "{}", JOB_UNKNOWN, false, 0, 0, 0, -1 },
		{ "{\"id\":\"b\",\"status\":null}", JOB_UNKNOWN, false, 0, 0, 0, -1 },
		{ "{\"status\":\"BATCH_STATUS_UNSPECIFIED\"}", JOB_UNKNOWN, false, 0, 0, 0, -1 },
		{ "{\"status\":\"BATCH_STATUS_COMPLETED\",\"num_records\":\"10\",\"num_successful_records\":\"9\","
		  "\"num_failed_records\":\"1\"}", JOB_COMPLETE, true, 10, 9, 1, 100 },
		{ "{\"num_records\":10.0,\"num_successful_records\":2}", JOB_UNKNOWN, true, 10, 2, 0, 20 },
		{ "{\"num_records\":\"ten\",\"num_successful_records\":-3,\"num_failed_records\":1.5}", JOB_UNKNOWN, false, 0, 0, 0, -1 },
		{ "{\"num_records\":0,\"num_successful_records\":0}", JOB_UNKNOWN, true, 0, 0, 0, -1 },
		{ "{\"num_records\":3,\"num_successful_records\":5}", JOB_UNKNOWN, true, 3, 5, 0, 100 },
		{ "{\"num_records\":\"12 \"}", JOB_UNKNOWN, false, 0, 0, 0, -1 },
		{ "{\"input_tokens\":77,\"created_at\":5,\"model\":[]}", JOB_UNKNOWN, false, 0, 0, 0, -1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct api_obs o;
		char err[256];
		if (api_batch_parse(cases[i].doc, strlen(cases[i].doc), &o, err, sizeof(err)) != 0)
			fail_msg("%s: refused: %s", cases[i].doc, err);
		if (o.job.status != cases[i].st || o.job.has_records != cases[i].has_records ||
		    (cases[i].has_records && (o.job.num_records != cases[i].total || o.job.num_successful != cases[i].ok ||
					      o.job.num_failed != cases[i].failed)) ||
		    api_records_percent(&o.job) != cases[i].pct)
			fail_msg("%s: status %s records %d %lld/%lld/%lld pct %d", cases[i].doc, job_status_name(o.job.status),
				 o.job.has_records, (long long)o.job.num_records, (long long)o.job.num_successful,
				 (long long)o.job.num_failed, api_records_percent(&o.job));
		assert_non_null(o.job.status_raw);
		assert_non_null(o.doc);
		api_obs_clear(&o);
	}
}

static void test_batch_refused(void **state)
{
	static const struct { const char *doc; const char *why; } cases[] = {
		{ "", "invalid JSON" },
		{ "[]", "expected a JSON object" },
		{ "{\"id\":1}", "\"id\" must be a string" },
		{ "{\"name\":{}}", "\"name\" must be a string" },
		{ "{\"status\":3}", "\"status\" must be a string" },
		{ "{\"id\":\"b\"} x", "trailing data" },
		{ "{\"id\":\"b\"", "unexpected end" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct api_obs o;
		char err[256] = "";
		if (api_batch_parse(cases[i].doc, strlen(cases[i].doc), &o, err, sizeof(err)) != -EINVAL)
			fail_msg("%s: accepted", cases[i].doc);
		if (!strstr(err, cases[i].why))
			fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].doc, err, cases[i].why);
		assert_null(o.doc);
		api_obs_clear(&o);
	}
	struct api_obs o;
	char err[256];
	const char nul[] = "{\"id\":\"b\0\"}";
	assert_int_equal(api_batch_parse(nul, sizeof(nul) - 1, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
}

static void test_batch_answer(void **state)
{
	struct api_obs o;
	char err[256];
	const char *a = "{\"batch\":" FULL_BATCH "}";
	assert_int_equal(api_batch_answer_parse(a, strlen(a), &o, err, sizeof(err)), 0);
	assert_string_equal(o.job.job_id, "b-1");
	/* The document kept is the Batch, not the wrapper. */
	assert_true(strncmp(o.doc, "{\"id\":\"b-1\"", 11) == 0);
	api_obs_clear(&o);
	static const char *const bad[] = { FULL_BATCH, "{\"batch\":[]}", "{\"batch\":null}", "{}" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (api_batch_answer_parse(bad[i], strlen(bad[i]), &o, err, sizeof(err)) != -EINVAL)
			fail_msg("%s: accepted", bad[i]);
		assert_non_null(strstr(err, "{\"batch\""));
	}
	/* The dispatch: a v2 answer is the wrapper; a kept v2 document is the bare Batch; v1 is the EmbedJob. */
	assert_int_equal(api_kind_parse_answer(JOB_KIND_BATCH, a, strlen(a), &o, err, sizeof(err)), 0);
	assert_non_null(o.doc);
	char *doc = xstrdup(o.doc);
	api_obs_clear(&o);
	assert_int_equal(api_kind_parse_doc(JOB_KIND_BATCH, doc, strlen(doc), &o, err, sizeof(err)), 0);
	assert_string_equal(o.job.job_id, "b-1");
	api_obs_clear(&o);
	free(doc);
	const char *v1 = "{\"job_id\":\"j\",\"status\":\"complete\",\"created_at\":\"2024-05-06T07:08:09Z\","
			 "\"input_dataset_id\":\"i\",\"model\":\"m\",\"truncate\":\"END\",\"output_dataset_id\":\"o\"}";
	assert_int_equal(api_kind_parse_answer(JOB_KIND_EMBED, v1, strlen(v1), &o, err, sizeof(err)), 0);
	assert_null(o.doc);
	assert_false(o.job.has_records);
	assert_int_equal(o.job.status, JOB_COMPLETE);
	assert_string_equal(o.job.output_dataset_id, "o");
	api_obs_clear(&o);
	assert_int_equal(api_kind_parse_doc(JOB_KIND_EMBED, v1, strlen(v1), &o, err, sizeof(err)), 0);
	api_obs_clear(&o);
	assert_int_equal(api_kind_parse_answer(JOB_KIND_EMBED, a, strlen(a), &o, err, sizeof(err)), -EINVAL);
}

static void test_page(void **state)
{
	struct api_batch_page pg;
	char err[256];
	const char *p1 = "{\"batches\":[" FULL_BATCH ",{\"id\":\"b-2\"}],\"next_page_token\":\"t2\"}";
	assert_int_equal(api_batch_page_parse(p1, strlen(p1), &pg, err, sizeof(err)), 0);
	assert_int_equal(pg.n, 2);
	assert_string_equal(pg.next_page_token, "t2");
	struct api_obs o;
	assert_int_equal(api_batch_from_json(json_object_array_get_idx(pg.batches, 1), &o, err, sizeof(err)), 0);
	assert_string_equal(o.job.job_id, "b-2");
	api_obs_clear(&o);
	api_batch_page_clear(&pg);
	static const struct { const char *doc; size_t n; bool last; } ok[] = {
		{ "{\"batches\":[]}", 0, true },
		{ "{}", 0, true },
		{ "{\"batches\":null,\"next_page_token\":null}", 0, true },
		{ "{\"batches\":[{}],\"next_page_token\":\"\"}", 1, true },
		{ "{\"batches\":[1,2,3],\"next_page_token\":\"x\",\"extra\":true}", 3, false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		if (api_batch_page_parse(ok[i].doc, strlen(ok[i].doc), &pg, err, sizeof(err)) != 0)
			fail_msg("%s: %s", ok[i].doc, err);
		assert_int_equal(pg.n, ok[i].n);
		assert_true((pg.next_page_token == NULL) == ok[i].last);
		api_batch_page_clear(&pg);
	}
	/* A non-object element is refused on its own, not the page. */
	assert_int_equal(api_batch_page_parse(ok[4].doc, strlen(ok[4].doc), &pg, err, sizeof(err)), 0);
	assert_int_equal(api_batch_from_json(json_object_array_get_idx(pg.batches, 0), &o, err, sizeof(err)), -EINVAL);
	api_batch_page_clear(&pg);
	static const char *const bad[] = { "{\"batches\":{}}", "{\"batches\":[],\"next_page_token\":5}", "[]", "{\"batches\":[" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (api_batch_page_parse(bad[i], strlen(bad[i]), &pg, err, sizeof(err)) != -EINVAL)
			fail_msg("%s: accepted", bad[i]);
}

#define SECRET_URL "https://storage.example/signed/part-0?X-Goog-Signature=deadbeefSECRET"

static void test_dataset(void **state)
{
	struct api_dataset d;
	char err[256];
	const char *doc = "{\"dataset\":{\"id\":\"ds-out\",\"name\":\"out\",\"created_at\":\"2026-12-01T08:00:00Z\","
			  "\"updated_at\":\"2026-12-01T08:00:00Z\",\"dataset_type\":\"embed-result\","
			  "\"validation_status\":\"validated\",\"schema\":\"s\",\"new_field\":7,\"dataset_parts\":["
			  "{\"id\":\"p0\",\"name\":\"part-0\",\"url\":\"" SECRET_URL "\",\"index\":0,\"size_bytes\":100,\"num_rows\":10},"
			  "{\"id\":\"p1\",\"name\":\"part-1\",\"size_bytes\":\"50\",\"num_rows\":\"5\"}]}}";
	assert_int_equal(api_dataset_parse(doc, strlen(doc), "ds-out", &d, err, sizeof(err)), 0);
	assert_int_equal(d.n_parts, 2);
	assert_int_equal(d.size_bytes, 150);
	assert_int_equal(d.num_rows, 15);
	const char *s = json_object_to_json_string_ext(d.dataset, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	assert_non_null(strstr(s, SECRET_URL));     /* for the event: the point */
	assert_non_null(strstr(s, "\"new_field\":7"));
	api_dataset_clear(&d);
	/* Absent fields: a bare object is a dataset with no parts; want_id NULL takes any id. */
	assert_int_equal(api_dataset_parse("{\"dataset\":{}}", 14, "ds-x", &d, err, sizeof(err)), 0);
	assert_int_equal(d.n_parts, 0);
	api_dataset_clear(&d);
	static const struct { const char *doc; const char *why; } bad[] = {
		{ "{\"dataset\":{\"id\":\"ds-other\"}}", "the answer is about \"ds-other\"" },
		{ "{\"dataset\":{\"id\":\"" SECRET_URL "\"}}", "another dataset" },
		{ "{\"dataset\":{\"id\":9}}", "\"id\" must be a string" },
		{ "{\"dataset\":[]}", "{\"dataset\"" },
		{ "{}", "{\"dataset\"" },
		{ "{\"dataset\":{\"dataset_parts\":{}}}", "must be an array" },
		{ "{\"dataset\":{\"dataset_parts\":[\"" SECRET_URL "\"]}}", "dataset_parts[0] must be an object" },
		{ "{\"dataset\":{\"dataset_parts\":[{\"url\":[\"" SECRET_URL "\"]}]}}", "url must be a string" },
		{ "<html>" SECRET_URL, "invalid JSON" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		if (api_dataset_parse(bad[i].doc, strlen(bad[i].doc), "ds-out", &d, err, sizeof(err)) != -EINVAL)
			fail_msg("%s: accepted", bad[i].doc);
		if (!strstr(err, bad[i].why))
			fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].doc, err, bad[i].why);
		/* A part URL is a secret: no message quotes it. */
		if (strstr(err, "SECRET") || strstr(err, "storage.example"))
			fail_msg("the message quotes the document: %s", err);
		assert_null(d.dataset);
	}
}

static void test_kind_events(void **state)
{
	static const struct { enum ew_event base, batch; const char *name; } ev[] = {
		{ EV_COMPLETE, EV_BJ_COMPLETE, "batch_job.complete" }, { EV_FAILED, EV_BJ_FAILED, "batch_job.failed" },
		{ EV_CANCELLED, EV_BJ_CANCELLED, "batch_job.cancelled" },
		{ EV_CANCELLING, EV_BJ_CANCELLING, "batch_job.cancelling" },
		{ EV_EXPIRED, EV_BJ_EXPIRED, "batch_job.expired" }, { EV_NOT_FOUND, EV_BJ_NOT_FOUND, "batch_job.not_found" },
		{ EV_ERROR, EV_BJ_ERROR, "batch_job.error" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ev); i++) {
		assert_int_equal(job_event_of_kind(ev[i].base, JOB_KIND_BATCH), ev[i].batch);
		assert_int_equal(job_event_of_kind(ev[i].base, JOB_KIND_EMBED), ev[i].base);
		assert_int_equal(job_event_base(ev[i].batch), ev[i].base);
		assert_int_equal(job_event_base(ev[i].base), ev[i].base);
		assert_string_equal(job_event_name(ev[i].batch), ev[i].name);
		assert_int_equal(job_event_parse(ev[i].name), ev[i].batch);
		assert_int_equal(job_event_kind(ev[i].batch), JOB_KIND_BATCH);
		assert_int_equal(job_event_kind(ev[i].base), JOB_KIND_EMBED);
		assert_int_equal(job_event_end_status(ev[i].batch), job_event_end_status(ev[i].base));
		/* The event ids differ by kind: the names differ. */
		char a[37], b[37];
		job_event_id("x", ev[i].base, a);
		job_event_id("x", ev[i].batch, b);
		assert_string_not_equal(a, b);
		/* "on = *" takes both kinds. */
		assert_true(JOB_EVENTS_MASK & (1u << ev[i].batch));
		assert_true(JOB_EVENTS_MASK & (1u << ev[i].base));
	}
	assert_int_equal(job_event_of_kind(EV_BATCH_DONE, JOB_KIND_BATCH), EV_BATCH_DONE);
	assert_int_equal(job_event_kind(EV_BATCH_DONE), -1);
	assert_int_equal(job_event_kind(EV_HOOK_DISABLED), -1);
	assert_int_equal(job_event_kind(EV_BJ_PROGRESS), JOB_KIND_BATCH);
	assert_string_equal(job_event_name(EV_BJ_PROGRESS), "batch_job.progress");
	assert_int_equal(job_event_end_status(EV_BJ_PROGRESS), JOB_NONE);
	assert_false(JOB_EVENTS_MASK & (1u << EV_HOOK_DISABLED));
	assert_true(EV__MAX <= 32);     /* a hook's on_mask is 32 bits */
	assert_string_equal(job_kind_name(JOB_KIND_EMBED), "embed-job");
	assert_string_equal(job_kind_name(JOB_KIND_BATCH), "batch-job");
	assert_int_equal(job_kind_parse("batch-job"), JOB_KIND_BATCH);
	assert_int_equal(job_kind_parse("embed-job"), JOB_KIND_EMBED);
	assert_int_equal(job_kind_parse("batch"), -1);
	assert_int_equal(job_kind_parse(""), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_mapping), cmocka_unit_test(test_urls), cmocka_unit_test(test_batch_full),
		cmocka_unit_test(test_batch_lenient), cmocka_unit_test(test_batch_refused), cmocka_unit_test(test_batch_answer),
		cmocka_unit_test(test_page), cmocka_unit_test(test_dataset), cmocka_unit_test(test_kind_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
