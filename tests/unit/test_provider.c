/*
 * Unit tests of the provider layer (provider*.c): every status word, the
 * documents of each provider shaped as its SDK's types, list pages and their
 * cursors, the sweep's cut-off, URLs, auth header lines, odd answers.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api_v2.h"
#include "provider.h"
#include "util.h"

#define U PROV_UNKNOWN

static const struct provider_ops *ops(enum provider p)
{
	const struct provider_ops *o = provider_ops(p);
	assert_non_null(o);
	return o;
}

/* Parses a get answer of provider p; fails the test with the reason when it does not parse. */
static void parse_ok(enum provider p, const char *doc, struct prov_obs *o)
{
	char err[256] = "";
	if (provider_parse_job(ops(p), doc, strlen(doc), o, err, sizeof(err)) != 0)
		fail_msg("%s: %s", provider_name(p), err);
}

/* The normalized status and records of observation o (case i of a table). */
static void check_obs(size_t i, const struct prov_obs *o, enum job_status want, bool expired, int64_t total,
		      int64_t succeeded, int64_t failed)
{
	if (o->status != want || o->provider_expired != expired)
		fail_msg("case %zu: got %s%s, want %s%s", i, job_status_name(o->status),
			 o->provider_expired ? " (expired)" : "", job_status_name(want), expired ? " (expired)" : "");
	/* The provider's expiry is never the daemon's max_age status. */
	assert_int_not_equal(o->status, JOB_EXPIRED);
	if (o->records.total != total || o->records.succeeded != succeeded || o->records.failed != failed)
		fail_msg("case %zu: records %" PRId64 "/%" PRId64 "/%" PRId64, i, o->records.total,
			 o->records.succeeded, o->records.failed);
}

static void test_table(void **state)
{
	(void)state;
	for (int p = 0; p < PROV__MAX; p++) {
		const struct provider_ops *o = ops((enum provider)p);
		assert_int_equal(o->provider, p);
		assert_int_equal(provider_parse(provider_name((enum provider)p)), p);
		assert_true(strncmp(o->default_base, "https://", 8) == 0);
		assert_true(o->rate_per_min > 0 && o->rate_per_min <= 400);
		assert_true(o->page_max >= 20);
		assert_true(o->status && o->item && o->job_path && o->cancel_suffix && o->list_path && o->size_param &&
			    o->cursor_param && o->auth_header && o->auth_prefix && o->list.items);
		/* A list pages by a cursor, or by numbers with a total. */
		assert_true(o->list.cursor || o->list.total);
	}
	assert_null(provider_ops(PROV__MAX));
	assert_string_equal(provider_name(PROV__MAX), "?");
	assert_int_equal(provider_parse("OpenAI"), -1);
	assert_int_equal(provider_parse(NULL), -1);
}

static void test_status_words(void **state)
{
	static const struct { enum provider p; const char *word; enum job_status want; bool expired; } cases[] = {
		{ PROV_OPENAI, "validating", JOB_PROCESSING, false }, { PROV_OPENAI, "in_progress", JOB_PROCESSING, false },
		{ PROV_OPENAI, "finalizing", JOB_PROCESSING, false }, { PROV_OPENAI, "completed", JOB_COMPLETE, false },
		{ PROV_OPENAI, "failed", JOB_FAILED, false }, { PROV_OPENAI, "expired", JOB_FAILED, true },
		{ PROV_OPENAI, "cancelling", JOB_CANCELLING, false }, { PROV_OPENAI, "cancelled", JOB_CANCELLED, false },
		{ PROV_OPENAI, "canceled", JOB_UNKNOWN, false }, { PROV_OPENAI, "ended", JOB_UNKNOWN, false },
		{ PROV_ANTHROPIC, "in_progress", JOB_PROCESSING, false }, { PROV_ANTHROPIC, "canceling", JOB_CANCELLING, false },
		{ PROV_ANTHROPIC, "ended", JOB_COMPLETE, false }, { PROV_ANTHROPIC, "completed", JOB_UNKNOWN, false },
		{ PROV_GEMINI, "BATCH_STATE_PENDING", JOB_PROCESSING, false },
		{ PROV_GEMINI, "BATCH_STATE_RUNNING", JOB_PROCESSING, false },
		{ PROV_GEMINI, "BATCH_STATE_SUCCEEDED", JOB_COMPLETE, false },
		{ PROV_GEMINI, "BATCH_STATE_FAILED", JOB_FAILED, false },
		{ PROV_GEMINI, "BATCH_STATE_CANCELLED", JOB_CANCELLED, false },
		{ PROV_GEMINI, "BATCH_STATE_EXPIRED", JOB_FAILED, true },
		{ PROV_GEMINI, "BATCH_STATE_UNSPECIFIED", JOB_UNKNOWN, false },
		{ PROV_GEMINI, "JOB_STATE_QUEUED", JOB_PROCESSING, false }, { PROV_GEMINI, "JOB_STATE_PENDING", JOB_PROCESSING, false },
		{ PROV_GEMINI, "JOB_STATE_RUNNING", JOB_PROCESSING, false }, { PROV_GEMINI, "JOB_STATE_UPDATING", JOB_PROCESSING, false },
		{ PROV_GEMINI, "JOB_STATE_PAUSED", JOB_PROCESSING, false }, { PROV_GEMINI, "JOB_STATE_SUCCEEDED", JOB_COMPLETE, false },
		{ PROV_GEMINI, "JOB_STATE_PARTIALLY_SUCCEEDED", JOB_COMPLETE, false },
		{ PROV_GEMINI, "JOB_STATE_FAILED", JOB_FAILED, false }, { PROV_GEMINI, "JOB_STATE_CANCELLING", JOB_CANCELLING, false },
		{ PROV_GEMINI, "JOB_STATE_CANCELLED", JOB_CANCELLED, false }, { PROV_GEMINI, "JOB_STATE_EXPIRED", JOB_FAILED, true },
		{ PROV_GEMINI, "JOB_STATE_UNSPECIFIED", JOB_UNKNOWN, false }, { PROV_GEMINI, "SUCCEEDED", JOB_UNKNOWN, false },
		{ PROV_MISTRAL, "QUEUED", JOB_PROCESSING, false }, { PROV_MISTRAL, "RUNNING", JOB_PROCESSING, false },
		{ PROV_MISTRAL, "SUCCESS", JOB_COMPLETE, false }, { PROV_MISTRAL, "FAILED", JOB_FAILED, false },
		{ PROV_MISTRAL, "TIMEOUT_EXCEEDED", JOB_FAILED, true },
		{ PROV_MISTRAL, "CANCELLATION_REQUESTED", JOB_CANCELLING, false },
		{ PROV_MISTRAL, "CANCELLED", JOB_CANCELLED, false }, { PROV_MISTRAL, "success", JOB_COMPLETE, false },
		{ PROV_COHERE, "BATCH_STATUS_COMPLETED", JOB_COMPLETE, false },
		{ PROV_COHERE, "BATCH_STATUS_CANCELING", JOB_CANCELLING, false },
		{ PROV_COHERE, "BATCH_STATUS_UNSPECIFIED", JOB_UNKNOWN, false },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool expired = !cases[i].expired;
		enum job_status st = ops(cases[i].p)->status(cases[i].word, &expired);
		if (st != cases[i].want || expired != cases[i].expired)
			fail_msg("%s \"%s\": got %s%s, want %s%s", provider_name(cases[i].p), cases[i].word,
				 job_status_name(st), expired ? " (expired)" : "", job_status_name(cases[i].want),
				 cases[i].expired ? " (expired)" : "");
		/* The provider's expiry is never the daemon's max_age status. */
		assert_int_not_equal(st, JOB_EXPIRED);
	}
	for (int p = 0; p < PROV__MAX; p++) {
		assert_int_equal(ops((enum provider)p)->status(NULL, NULL), JOB_UNKNOWN);
		assert_int_equal(ops((enum provider)p)->status("", NULL), JOB_UNKNOWN);
	}
}

/* openai-node Batch, completed with two failed requests out of 100. */
#define OPENAI_BATCH(status, extra) \
	"{\"id\":\"batch_abc123\",\"object\":\"batch\",\"endpoint\":\"/v1/embeddings\",\"errors\":null," \
	"\"input_file_id\":\"file-in\",\"completion_window\":\"24h\",\"status\":\"" status "\"," \
	"\"output_file_id\":\"file-out\",\"error_file_id\":\"file-err\",\"created_at\":1711471533," \
	"\"in_progress_at\":1711471538,\"expires_at\":1711557933,\"finalizing_at\":1711493133," \
	"\"completed_at\":1711493163,\"failed_at\":null,\"expired_at\":null,\"cancelling_at\":null," \
	"\"cancelled_at\":null,\"request_counts\":{\"total\":100,\"completed\":98,\"failed\":2}," \
	"\"model\":\"text-embedding-3-small\",\"metadata\":{\"customer_id\":\"user_123\"}" extra "}"

/* The daemon's keys: Cohere's ids as they are, every other account's as ACCOUNT:ID. */
static void test_keys(void **state)
{
	char key[64], account[40];
	(void)state;
	assert_int_equal(provider_job_key("cohere", "job-1", key, sizeof(key)), 0);
	assert_string_equal(key, "job-1");
	assert_int_equal(provider_job_key("oa", "batch_1", key, sizeof(key)), 0);
	assert_string_equal(key, "oa:batch_1");
	assert_string_equal(provider_key_id(key), "batch_1");
	assert_int_equal(provider_key_account(key, account, sizeof(account)), 0);
	assert_string_equal(account, "oa");
	assert_int_equal(provider_key_account("job-1", account, sizeof(account)), 0);
	assert_string_equal(account, "cohere");
	assert_string_equal(provider_key_id("job-1"), "job-1");
	/* What cannot be a key: a bad account name, a bad id, an id with ':' in it, nothing after ':'. */
	static const char *const bad[] = { "OA:batch_1", "oa:", ":batch_1", "oa:batch:1", "oa:b c", "a b", "",
					   "abcdefghijabcdefghijabcdefghijabc:x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (provider_key_account(bad[i], account, sizeof(account)) == 0)
			fail_msg("\"%s\" taken as a key", bad[i]);
	assert_int_equal(provider_job_key("Bad", "x", key, sizeof(key)), -EINVAL);
	assert_int_equal(provider_job_key("oa", "x/y", key, sizeof(key)), -EINVAL);
	assert_int_equal(provider_job_key("oa", "batch_1", key, 5), -ENOSPC);
	assert_true(provider_account_valid("a-b_9"));
	assert_false(provider_account_valid(""));
	assert_false(provider_account_valid("abcdefghijabcdefghijabcdefghijabc"));
}

static void test_openai_job(void **state)
{
	struct prov_obs o;
	(void)state;
	parse_ok(PROV_OPENAI, OPENAI_BATCH("completed", ""), &o);
	assert_int_equal(o.provider, PROV_OPENAI);
	assert_string_equal(o.id, "batch_abc123");
	assert_string_equal(o.status_raw, "completed");
	assert_null(o.mapping);
	/* Partial failures on a complete batch are visible. */
	check_obs(0, &o, JOB_COMPLETE, false, 100, 98, 2);
	assert_string_equal(o.output.file_id, "file-out");
	assert_string_equal(o.output.error_file_id, "file-err");
	assert_null(o.output.results_url);
	assert_int_equal(o.created_at, 1711471533);
	assert_int_equal(o.expires_at, 1711557933);
	assert_non_null(strstr(o.doc, "\"customer_id\":\"user_123\""));
	assert_int_equal(o.doc_len, strlen(o.doc));

	/* As the daemon takes it: the status, records and deadline, and the normalized members beside the document's. */
	struct api_obs ob;
	provider_obs_to_api(&o, &ob);
	assert_int_equal(ob.job.status, JOB_COMPLETE);
	assert_string_equal(ob.job.job_id, "batch_abc123");
	assert_true(ob.job.has_records);
	assert_int_equal(ob.job.num_records, 100);
	assert_int_equal(ob.job.num_failed, 2);
	assert_int_equal(ob.job.expires_at, 1711557933);
	assert_non_null(strstr(ob.doc, "\"provider_status\":\"completed\""));
	assert_non_null(strstr(ob.doc, "\"records\":{\"total\":100,\"succeeded\":98,\"failed\":2}"));
	assert_non_null(strstr(ob.doc, "\"file_id\":\"file-out\""));
	assert_non_null(strstr(ob.doc, "\"expired_by_provider\":false"));
	assert_non_null(strstr(ob.doc, "\"customer_id\":\"user_123\""));
	assert_int_equal(ob.doc_len, strlen(ob.doc));
	api_obs_clear(&ob);
	provider_obs_clear(&o);

	parse_ok(PROV_OPENAI, OPENAI_BATCH("expired", ",\"usage\":{\"input_tokens\":5}"), &o);
	check_obs(1, &o, JOB_FAILED, true, 100, 98, 2);
	provider_obs_to_api(&o, &ob);
	assert_int_equal(ob.job.status, JOB_FAILED);
	assert_non_null(strstr(ob.doc, "\"expired_by_provider\":true"));
	api_obs_clear(&ob);
	assert_non_null(strstr(o.doc, "\"usage\""));
	provider_obs_clear(&o);
	provider_obs_clear(&o);         /* twice: a cleared one is zeroed */
	provider_obs_clear(NULL);
}

/* anthropic-sdk-typescript MessageBatch: counts, cancel_initiated_at and processing_status vary. */
#define MSG_BATCH(status, cancel, processing, succeeded, errored, canceled, expired) \
	"{\"id\":\"msgbatch_013Zva2CMHLNnXjNJJKqJ2EF\",\"type\":\"message_batch\"," \
	"\"processing_status\":\"" status "\",\"request_counts\":{\"processing\":" #processing "," \
	"\"succeeded\":" #succeeded ",\"errored\":" #errored ",\"canceled\":" #canceled ",\"expired\":" #expired "}," \
	"\"ended_at\":\"2024-08-20T18:37:24.100435Z\",\"created_at\":\"2024-08-20T18:37:24.100435Z\"," \
	"\"expires_at\":\"2024-08-21T18:37:24.100435Z\",\"archived_at\":null,\"cancel_initiated_at\":" cancel "," \
	"\"results_url\":\"https://api.anthropic.com/v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results\"}"

static void test_anthropic_ended(void **state)
{
	static const struct {
		const char *doc;
		enum job_status want;
		bool expired, mapped;
		int64_t total, succeeded, failed;
	} cases[] = {
		{ MSG_BATCH("in_progress", "null", 10, 0, 0, 0, 0), JOB_PROCESSING, false, false, 10, 0, 0 },
		{ MSG_BATCH("canceling", "\"2024-08-20T19:00:00Z\"", 10, 0, 0, 0, 0), JOB_CANCELLING, false, false, 10, 0, 0 },
		/* ended: a cancel was initiated -> cancelled, even with successes. */
		{ MSG_BATCH("ended", "\"2024-08-20T19:00:00Z\"", 0, 4, 0, 6, 0), JOB_CANCELLED, false, true, 10, 4, 0 },
		/* every request errored -> failed */
		{ MSG_BATCH("ended", "null", 0, 0, 10, 0, 0), JOB_FAILED, false, true, 10, 0, 10 },
		/* unfinished requests expired -> the provider's expiry, not max_age */
		{ MSG_BATCH("ended", "null", 0, 7, 1, 0, 2), JOB_FAILED, true, true, 10, 7, 1 },
		/* else complete, its errored requests as failed records */
		{ MSG_BATCH("ended", "null", 0, 8, 2, 0, 0), JOB_COMPLETE, false, true, 10, 8, 2 },
		{ MSG_BATCH("ended", "null", 0, 10, 0, 0, 0), JOB_COMPLETE, false, true, 10, 10, 0 },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct prov_obs o;
		parse_ok(PROV_ANTHROPIC, cases[i].doc, &o);
		check_obs(i, &o, cases[i].want, cases[i].expired, cases[i].total, cases[i].succeeded, cases[i].failed);
		assert_int_equal(o.mapping != NULL, cases[i].mapped);
		assert_string_equal(o.id, "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF");
		assert_non_null(o.output.results_url);
		assert_int_equal(o.created_at, 1724179044);
		assert_int_equal(o.expires_at, 1724179044 + 86400);
		provider_obs_clear(&o);
	}
}

/* A Gemini Operation: name, metadata (GenerateContentBatch), then done/error/response as given. */
#define GEMINI_OP(st, tail) \
	"{\"name\":\"batches/123abc\",\"metadata\":{\"@type\":" \
	"\"type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch\"," \
	"\"model\":\"models/gemini-2.5-flash\",\"displayName\":\"nightly\",\"name\":\"batches/123abc\"," \
	"\"createTime\":\"2025-07-01T10:00:00.123456Z\",\"updateTime\":\"2025-07-01T10:05:00Z\"," \
	"\"batchStats\":{\"requestCount\":\"10\",\"successfulRequestCount\":\"9\",\"failedRequestCount\":\"1\"," \
	"\"pendingRequestCount\":\"0\"}" st "}" tail "}"

/* proto3 JSON leaves zero counts out: with requestCount said they are 0; without it, unknown. */
static void test_gemini_zero_counts(void **state)
{
	struct prov_obs o;
	(void)state;
	parse_ok(PROV_GEMINI, "{\"name\":\"batches/z\",\"metadata\":{\"state\":\"BATCH_STATE_SUCCEEDED\","
		 "\"batchStats\":{\"requestCount\":\"100\",\"successfulRequestCount\":\"100\"}}}", &o);
	check_obs(0, &o, JOB_COMPLETE, false, 100, 100, 0);
	provider_obs_clear(&o);
	parse_ok(PROV_GEMINI, "{\"name\":\"batches/z\",\"metadata\":{\"state\":\"BATCH_STATE_RUNNING\","
		 "\"batchStats\":{\"requestCount\":\"100\",\"pendingRequestCount\":\"100\"}}}", &o);
	check_obs(1, &o, JOB_PROCESSING, false, 100, 0, 0);
	provider_obs_clear(&o);
	parse_ok(PROV_GEMINI, "{\"name\":\"batches/z\",\"metadata\":{\"state\":\"BATCH_STATE_RUNNING\"}}", &o);
	check_obs(2, &o, JOB_PROCESSING, false, U, U, U);
	provider_obs_clear(&o);
}

static void test_gemini_operation(void **state)
{
	static const struct {
		const char *doc;
		enum job_status want;
		bool expired, mapped, inlined;
		const char *file;
	} cases[] = {
		{ GEMINI_OP(",\"state\":\"BATCH_STATE_RUNNING\"", ""), JOB_PROCESSING, false, false, false, NULL },
		{ GEMINI_OP(",\"state\":\"BATCH_STATE_SUCCEEDED\",\"output\":{\"responsesFile\":\"files/out-1\"}",
			    ",\"done\":true,\"response\":{\"@type\":\"type.googleapis.com/"
			    "google.ai.generativelanguage.v1main.GenerateContentBatchOutput\",\"responsesFile\":\"files/out-1\"}"),
		  JOB_COMPLETE, false, false, false, "files/out-1" },
		{ GEMINI_OP(",\"state\":\"BATCH_STATE_SUCCEEDED\",\"output\":{\"inlinedResponses\":{\"inlinedResponses\":[{}]}}",
			    ",\"done\":true"),
		  JOB_COMPLETE, false, false, true, NULL },
		{ GEMINI_OP(",\"state\":\"BATCH_STATE_EXPIRED\"", ",\"done\":true"), JOB_FAILED, true, false, false, NULL },
		/* Done with an error while the state still says running: the error decides. */
		{ GEMINI_OP(",\"state\":\"BATCH_STATE_RUNNING\"",
			    ",\"done\":true,\"error\":{\"code\":13,\"message\":\"internal\",\"details\":[]}"),
		  JOB_FAILED, false, true, false, NULL },
		{ GEMINI_OP("", ",\"done\":true,\"error\":{\"code\":1,\"message\":\"cancelled\"}"),
		  JOB_CANCELLED, false, true, false, NULL },
		/* An ended state is not overridden by the error that comes with it. */
		{ GEMINI_OP(",\"state\":\"BATCH_STATE_CANCELLED\"", ",\"done\":true,\"error\":{\"code\":1}"),
		  JOB_CANCELLED, false, false, false, NULL },
		/* Done, no state, a response: complete, and said so; not done and no state: unknown. */
		{ GEMINI_OP("", ",\"done\":true,\"response\":{\"responsesFile\":\"files/out-2\"}"),
		  JOB_COMPLETE, false, true, false, "files/out-2" },
		{ GEMINI_OP("", ",\"done\":false"), JOB_UNKNOWN, false, false, false, NULL },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct prov_obs o;
		parse_ok(PROV_GEMINI, cases[i].doc, &o);
		/* The bare id; int64 counts as strings. */
		check_obs(i, &o, cases[i].want, cases[i].expired, 10, 9, 1);
		assert_int_equal(o.mapping != NULL, cases[i].mapped);
		assert_int_equal(o.output.inlined, cases[i].inlined);
		if (cases[i].file)
			assert_string_equal(o.output.file_id, cases[i].file);
		else
			assert_null(o.output.file_id);
		assert_string_equal(o.id, "123abc");
		assert_int_equal(o.created_at, 1751364000);
		assert_int_equal(o.expires_at, U);
		provider_obs_clear(&o);
	}
}

/* mistralai BatchJobOut. */
#define MISTRAL_JOB(status, extra) \
	"{\"id\":\"b6a3c1d2-0000-4000-8000-000000000001\",\"object\":\"batch\",\"input_files\":[\"f-in\"]," \
	"\"metadata\":null,\"endpoint\":\"/v1/embeddings\",\"model\":\"mistral-embed\",\"agent_id\":null," \
	"\"output_file\":\"f-out\",\"error_file\":\"f-err\",\"errors\":[],\"status\":\"" status "\"," \
	"\"created_at\":1730000000,\"total_requests\":50,\"completed_requests\":50,\"succeeded_requests\":47," \
	"\"failed_requests\":3,\"started_at\":1730000010,\"completed_at\":1730000600" extra "}"

static void test_mistral_job(void **state)
{
	struct prov_obs o;
	(void)state;
	parse_ok(PROV_MISTRAL, MISTRAL_JOB("SUCCESS", ""), &o);
	assert_string_equal(o.id, "b6a3c1d2-0000-4000-8000-000000000001");
	check_obs(0, &o, JOB_COMPLETE, false, 50, 47, 3);
	assert_string_equal(o.output.file_id, "f-out");
	assert_string_equal(o.output.error_file_id, "f-err");
	assert_false(o.output.inlined);
	assert_int_equal(o.created_at, 1730000000);
	provider_obs_clear(&o);
	parse_ok(PROV_MISTRAL, MISTRAL_JOB("TIMEOUT_EXCEEDED", ",\"outputs\":[{\"custom_id\":\"1\"}]"), &o);
	check_obs(1, &o, JOB_FAILED, true, 50, 47, 3);
	assert_true(o.output.inlined);
	provider_obs_clear(&o);
	/* outputs: null is no inlined output. */
	parse_ok(PROV_MISTRAL, MISTRAL_JOB("RUNNING", ",\"outputs\":null"), &o);
	assert_false(o.output.inlined);
	provider_obs_clear(&o);
}

static void test_cohere_job(void **state)
{
	struct prov_obs o;
	char err[256];
	static const char doc[] = "{\"batch\":{\"id\":\"b-1\",\"name\":\"n\",\"status\":\"BATCH_STATUS_COMPLETED\","
		"\"created_at\":\"2026-12-01T08:00:00Z\",\"output_dataset_id\":\"ds-out\",\"num_records\":\"1000\","
		"\"num_successful_records\":990,\"num_failed_records\":10}}";
	(void)state;
	parse_ok(PROV_COHERE, doc, &o);
	assert_string_equal(o.id, "b-1");
	check_obs(0, &o, JOB_COMPLETE, false, 1000, 990, 10);
	assert_string_equal(o.output.file_id, "ds-out");
	assert_int_equal(o.created_at, 1796112000);
	/* The Batch is the document kept, not its wrapper. */
	assert_true(strncmp(o.doc, "{\"id\":\"b-1\"", 11) == 0);
	provider_obs_clear(&o);
	assert_int_equal(provider_parse_job(ops(PROV_COHERE), "{\"id\":\"b-1\"}", 12, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "batch"));
	parse_ok(PROV_COHERE, "{\"batch\":{}}", &o);
	assert_null(o.id);
	check_obs(1, &o, JOB_UNKNOWN, false, U, U, U);
	provider_obs_clear(&o);
}

static void test_pages(void **state)
{
	static const struct {
		enum provider p;
		const char *doc;
		unsigned page_size;
		const char *cursor;         /* the cursor the page was asked with */
		size_t n;
		bool has_more;
		const char *next;
	} cases[] = {
		/* OpenAI: the next page is after the last item's id. */
		{ PROV_OPENAI, "{\"object\":\"list\",\"data\":[{\"id\":\"batch_2\",\"status\":\"in_progress\"},"
		  "{\"id\":\"batch_1\",\"status\":\"completed\"}],\"first_id\":\"batch_2\",\"last_id\":\"batch_1\","
		  "\"has_more\":true}", 2, NULL, 2, true, "batch_1" },
		{ PROV_OPENAI, "{\"object\":\"list\",\"data\":[{\"id\":\"batch_0\"}],\"last_id\":\"batch_0\",\"has_more\":false}",
		  2, "batch_1", 1, false, NULL },
		{ PROV_OPENAI, "{\"object\":\"list\",\"data\":[],\"has_more\":true}", 2, NULL, 0, false, NULL },
		/* Anthropic: after_id = last_id. */
		{ PROV_ANTHROPIC, "{\"data\":[{\"id\":\"msgbatch_2\",\"processing_status\":\"in_progress\"}],"
		  "\"has_more\":true,\"first_id\":\"msgbatch_2\",\"last_id\":\"msgbatch_2\"}", 1, NULL, 1, true, "msgbatch_2" },
		{ PROV_ANTHROPIC, "{\"data\":[],\"has_more\":false,\"first_id\":null,\"last_id\":null}", 1, "msgbatch_2", 0,
		  false, NULL },
		/* Gemini: nextPageToken; absent on the last page. */
		{ PROV_GEMINI, "{\"operations\":[{\"name\":\"batches/a\",\"metadata\":{\"state\":\"BATCH_STATE_PENDING\"}},"
		  "{\"name\":\"batches/b\"}],\"nextPageToken\":\"tok/+=\"}", 2, NULL, 2, true, "tok/+=" },
		{ PROV_GEMINI, "{\"operations\":[{\"name\":\"batches/c\"}]}", 2, "tok/+=", 1, false, NULL },
		{ PROV_GEMINI, "{}", 2, NULL, 0, false, NULL },
		/* Mistral: numbered pages, more while the pages so far hold fewer than total. */
		{ PROV_MISTRAL, "{\"object\":\"list\",\"total\":5,\"data\":[{\"id\":\"j5\"},{\"id\":\"j4\"}]}", 2, NULL, 2, true, "1" },
		{ PROV_MISTRAL, "{\"object\":\"list\",\"total\":5,\"data\":[{\"id\":\"j3\"},{\"id\":\"j2\"}]}", 2, "1", 2, true, "2" },
		{ PROV_MISTRAL, "{\"object\":\"list\",\"total\":5,\"data\":[{\"id\":\"j1\"}]}", 2, "2", 1, false, NULL },
		{ PROV_MISTRAL, "{\"object\":\"list\",\"total\":4,\"data\":[{\"id\":\"j2\"},{\"id\":\"j1\"}]}", 2, "1", 2, false, NULL },
		{ PROV_MISTRAL, "{\"object\":\"list\",\"total\":0}", 2, NULL, 0, false, NULL },
		/* Cohere: next_page_token. */
		{ PROV_COHERE, "{\"batches\":[{\"id\":\"b-1\"}],\"next_page_token\":\"n1\"}", 10, NULL, 1, true, "n1" },
		{ PROV_COHERE, "{\"batches\":[],\"next_page_token\":\"\"}", 10, "n1", 0, false, NULL },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct prov_page pg;
		char err[256] = "";
		if (provider_parse_page(ops(cases[i].p), cases[i].doc, strlen(cases[i].doc), cases[i].page_size, cases[i].cursor, &pg,
						err, sizeof(err)) != 0)
			fail_msg("case %zu: %s", i, err);
		if (pg.n != cases[i].n || pg.has_more != cases[i].has_more)
			fail_msg("case %zu: %zu items, has_more %d", i, pg.n, pg.has_more);
		if (cases[i].next)
			assert_string_equal(pg.next_cursor, cases[i].next);
		else
			assert_null(pg.next_cursor);
		for (size_t k = 0; k < pg.n; k++) {
			assert_non_null(pg.items[k].id);
			assert_non_null(pg.items[k].doc);
			assert_int_equal(pg.items[k].provider, cases[i].p);
		}
		provider_page_clear(&pg);
		provider_page_clear(&pg);
	}
	provider_page_clear(NULL);
}

static void test_cutoff(void **state)
{
	static const char page[] = "{\"data\":[{\"id\":\"batch_3\",\"created_at\":3000},{\"id\":\"batch_x\"},"
		"{\"id\":\"batch_2\",\"created_at\":2000}],\"has_more\":true}";
	struct prov_page pg, gp;
	char err[256];
	(void)state;
	assert_int_equal(provider_parse_page(ops(PROV_OPENAI), page, strlen(page), 3, NULL, &pg, err, sizeof(err)), 0);
	/* The oldest open watched job was created at 2500: this page reaches before it, the sweep stops. */
	assert_true(provider_page_past(ops(PROV_OPENAI), &pg, 2500));
	/* Created in the same second as the page's oldest: a later page may hold it. */
	assert_false(provider_page_past(ops(PROV_OPENAI), &pg, 2000));
	assert_false(provider_page_past(ops(PROV_OPENAI), &pg, 1000));
	assert_false(provider_page_past(ops(PROV_OPENAI), &pg, U));
	assert_true(pg.has_more);
	provider_page_clear(&pg);
	/* Anthropic and Mistral pages are newest first too; an empty page says nothing. */
	static const char mpage[] = "{\"total\":9,\"data\":[{\"id\":\"j\",\"created_at\":10}]}";
	assert_int_equal(provider_parse_page(ops(PROV_MISTRAL), mpage, strlen(mpage), 1, NULL, &pg, err, sizeof(err)), 0);
	assert_true(provider_page_past(ops(PROV_MISTRAL), &pg, 11));
	provider_page_clear(&pg);
	memset(&pg, 0, sizeof(pg));
	assert_false(provider_page_past(ops(PROV_ANTHROPIC), &pg, 11));
	/* Gemini's and Cohere's lists have no creation order: never cut. */
	static const char gpage[] = "{\"operations\":[{\"name\":\"batches/a\",\"metadata\":{\"createTime\":\"1970-01-01T00:00:10Z\"}}]}";
	assert_int_equal(provider_parse_page(ops(PROV_GEMINI), gpage, strlen(gpage), 1, NULL, &gp, err, sizeof(err)), 0);
	assert_int_equal(gp.items[0].created_at, 10);
	assert_false(provider_page_past(ops(PROV_GEMINI), &gp, 11));
	assert_false(provider_page_past(ops(PROV_COHERE), &gp, 11));
	assert_false(provider_page_past(NULL, &gp, 11));
	provider_page_clear(&gp);
}

enum url_kind { URL_JOB, URL_CANCEL, URL_LIST };

static void test_urls(void **state)
{
	static const struct {
		enum provider p;
		enum url_kind kind;
		const char *base;
		const char *arg;            /* the id, or the list cursor */
		unsigned size;
		int want;
		const char *url;
	} cases[] = {
		{ PROV_OPENAI, URL_JOB, "https://api.openai.com", "batch_abc", 0, 0, "https://api.openai.com/v1/batches/batch_abc" },
		{ PROV_OPENAI, URL_CANCEL, "https://api.openai.com/", "batch_abc", 0, 0,
		  "https://api.openai.com/v1/batches/batch_abc/cancel" },
		{ PROV_OPENAI, URL_LIST, "https://api.openai.com", NULL, 100, 0, "https://api.openai.com/v1/batches?limit=100" },
		{ PROV_OPENAI, URL_LIST, "https://x//", "batch_1", 20, 0, "https://x/v1/batches?limit=20&after=batch_1" },
		{ PROV_OPENAI, URL_LIST, "https://x", NULL, 101, -EINVAL, NULL },
		{ PROV_OPENAI, URL_LIST, "https://x", NULL, 0, -EINVAL, NULL },
		{ PROV_ANTHROPIC, URL_JOB, "https://api.anthropic.com", "msgbatch_01", 0, 0,
		  "https://api.anthropic.com/v1/messages/batches/msgbatch_01" },
		{ PROV_ANTHROPIC, URL_CANCEL, "https://api.anthropic.com", "msgbatch_01", 0, 0,
		  "https://api.anthropic.com/v1/messages/batches/msgbatch_01/cancel" },
		{ PROV_ANTHROPIC, URL_LIST, "https://x", "msgbatch_01", 1000, 0,
		  "https://x/v1/messages/batches?limit=1000&after_id=msgbatch_01" },
		{ PROV_GEMINI, URL_JOB, "https://generativelanguage.googleapis.com", "batches/123abc", 0, 0,
		  "https://generativelanguage.googleapis.com/v1beta/batches/123abc" },
		{ PROV_GEMINI, URL_JOB, "https://x", "123abc", 0, 0, "https://x/v1beta/batches/123abc" },
		{ PROV_GEMINI, URL_CANCEL, "https://x", "batches/123abc", 0, 0, "https://x/v1beta/batches/123abc:cancel" },
		/* An opaque token: every byte but the unreserved ones percent-encoded. */
		{ PROV_GEMINI, URL_LIST, "https://x", "a b&c=d/é~._-+", 50, 0,
		  "https://x/v1beta/batches?pageSize=50&pageToken=a%20b%26c%3Dd%2F%C3%A9~._-%2B" },
		{ PROV_GEMINI, URL_LIST, "https://x", "", 50, 0, "https://x/v1beta/batches?pageSize=50" },
		{ PROV_MISTRAL, URL_JOB, "https://api.mistral.ai", "b6a3c1d2-0000", 0, 0, "https://api.mistral.ai/v1/batch/jobs/b6a3c1d2-0000" },
		{ PROV_MISTRAL, URL_CANCEL, "https://api.mistral.ai", "b6a3", 0, 0, "https://api.mistral.ai/v1/batch/jobs/b6a3/cancel" },
		{ PROV_MISTRAL, URL_LIST, "https://x", NULL, 100, 0, "https://x/v1/batch/jobs?order_by=-created&page_size=100" },
		{ PROV_MISTRAL, URL_LIST, "https://x", "3", 100, 0, "https://x/v1/batch/jobs?order_by=-created&page_size=100&page=3" },
		{ PROV_MISTRAL, URL_LIST, "https://x", "3&x=1", 100, -EINVAL, NULL },
		{ PROV_COHERE, URL_CANCEL, "https://api.cohere.com", "b-1", 0, 0, "https://api.cohere.com/v2/batches/b-1:cancel" },
		{ PROV_COHERE, URL_LIST, "https://x", "t", 10, 0, "https://x/v2/batches?order_by=updated_at&page_size=10&page_token=t" },
		/* Ids are refused, never escaped. */
		{ PROV_OPENAI, URL_JOB, "https://x", "../x", 0, -EINVAL, NULL },
		{ PROV_OPENAI, URL_CANCEL, "https://x", "a/b", 0, -EINVAL, NULL },
		{ PROV_ANTHROPIC, URL_JOB, "https://x", "a?b", 0, -EINVAL, NULL },
		{ PROV_ANTHROPIC, URL_JOB, "https://x", "", 0, -EINVAL, NULL },
		{ PROV_ANTHROPIC, URL_JOB, "https://x", NULL, 0, -EINVAL, NULL },
		{ PROV_GEMINI, URL_JOB, "https://x", "batches/", 0, -EINVAL, NULL },
		{ PROV_GEMINI, URL_JOB, "https://x", "batches/a/b", 0, -EINVAL, NULL },
		{ PROV_GEMINI, URL_JOB, "https://x", "operations/a", 0, -EINVAL, NULL },
		{ PROV_MISTRAL, URL_JOB, "https://x", "a b", 0, -EINVAL, NULL },
		{ PROV_MISTRAL, URL_JOB, "https://x", "a%2F", 0, -EINVAL, NULL },
	};
	char buf[512];
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct provider_ops *o = ops(cases[i].p);
		int r = cases[i].kind == URL_JOB    ? provider_job_url(o, cases[i].base, cases[i].arg, buf, sizeof(buf))
			: cases[i].kind == URL_CANCEL ? provider_cancel_url(o, cases[i].base, cases[i].arg, buf, sizeof(buf))
						      : provider_list_url(o, cases[i].base, cases[i].size, cases[i].arg, buf, sizeof(buf));
		if (r != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, r, cases[i].want);
		if (cases[i].url)
			assert_string_equal(buf, cases[i].url);
	}
	/* A buffer one byte short of the URL and its NUL. */
	assert_int_equal(provider_job_url(ops(PROV_OPENAI), "https://x", "b", buf, 22), -ENOSPC);
	assert_int_equal(provider_job_url(ops(PROV_OPENAI), "https://x", "b", buf, 23), 0);
	assert_int_equal(provider_list_url(ops(PROV_GEMINI), "https://x", 5, "tok", buf, 20), -ENOSPC);
	/* A long id is refused (api_id_valid's 128 bytes). */
	char longid[140];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	for (int p = 0; p < PROV__MAX; p++) {
		assert_false(provider_id_valid(ops((enum provider)p), longid));
		assert_false(provider_id_valid(ops((enum provider)p), "x\ny"));
	}
	assert_true(provider_id_valid(ops(PROV_GEMINI), "batches/123abc"));
	assert_true(provider_id_valid(ops(PROV_GEMINI), "123abc"));
	assert_false(provider_id_valid(ops(PROV_OPENAI), "batches/123abc"));
}

static void test_auth(void **state)
{
	static const struct { enum provider p; size_t n; const char *l0, *l1; } cases[] = {
		{ PROV_COHERE, 1, "Authorization: Bearer k-123", NULL },
		{ PROV_OPENAI, 1, "Authorization: Bearer k-123", NULL },
		{ PROV_ANTHROPIC, 2, "x-api-key: k-123", "anthropic-version: 2023-06-01" },
		{ PROV_GEMINI, 1, "x-goog-api-key: k-123", NULL },
		{ PROV_MISTRAL, 1, "Authorization: Bearer k-123", NULL },
	};
	struct prov_headers h;
	char longkey[PROV_HDR_LEN];
	(void)state;
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct provider_ops *o = ops(cases[i].p);
		assert_int_equal(provider_auth_headers(o, "k-123", &h), 0);
		assert_int_equal(h.n, cases[i].n);
		assert_string_equal(h.line[0], cases[i].l0);
		if (cases[i].l1)
			assert_string_equal(h.line[1], cases[i].l1);
		/* A key that would end the header line, or none, or one too long: refused. */
		assert_int_equal(provider_auth_headers(o, "k\r\nX-Evil: 1", &h), -EINVAL);
		assert_int_equal(provider_auth_headers(o, "k\t1", &h), -EINVAL);
		assert_int_equal(provider_auth_headers(o, "", &h), -EINVAL);
		assert_int_equal(provider_auth_headers(o, NULL, &h), -EINVAL);
		assert_int_equal(provider_auth_headers(o, longkey, &h), -ENOSPC);
	}
}

/* Answers that are documents, but odd: every provider gives a defined outcome. */
static void test_odd_answers(void **state)
{
	static const char *const odd[] = {
		"{}",
		"{\"id\":null,\"name\":null,\"status\":null,\"processing_status\":null,\"metadata\":null,"
		"\"request_counts\":null,\"created_at\":null,\"expires_at\":null,\"output_file_id\":null,"
		"\"results_url\":null,\"done\":null,\"error\":null,\"total_requests\":null}",
		/* Wrong types where a provider is lenient, and a status no contract names. */
		"{\"status\":7,\"processing_status\":[],\"metadata\":\"x\",\"request_counts\":{\"total\":-1},"
		"\"created_at\":\"yesterday\",\"done\":\"true\",\"total_requests\":1.5}",
		"{\"status\":\"PAUSED_FOREVER\",\"processing_status\":\"archived\",\"metadata\":{\"state\":\"BATCH_STATE_PAUSED\"}}",
	};
	(void)state;
	for (int p = 0; p < PROV__MAX; p++) {
		for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
			struct prov_obs o;
			char err[256] = "";
			int r = provider_parse_job(ops((enum provider)p), odd[i], strlen(odd[i]), &o, err, sizeof(err));
			if (p == PROV_COHERE) {
				/* Cohere's answer is wrapped: a bare object is not one. */
				assert_int_equal(r, -EINVAL);
				continue;
			}
			if (r != 0)
				fail_msg("%s odd %zu: %s", provider_name((enum provider)p), i, err);
			assert_null(o.id);
			check_obs(i, &o, JOB_UNKNOWN, false, U, U, U);
			assert_non_null(o.status_raw);
			assert_int_equal(o.created_at, U);
			assert_int_equal(o.expires_at, U);
			assert_null(o.output.file_id);
			assert_null(o.output.results_url);
			assert_non_null(o.doc);
			provider_obs_clear(&o);
		}
	}
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"", "{", "[]", "null", "\"x\"", "{} x", "{\"id\":1}", "{\"name\":{}}", "{\"batch\":[]}",
	};
	static const char *const bad_pages[] = {
		"", "{", "[]", "{\"data\":{}}", "{\"operations\":\"x\"}", "{\"batches\":3}",
		"{\"data\":[1],\"operations\":[1],\"batches\":[1]}",
		"{\"data\":[{\"id\":5}],\"operations\":[{\"name\":5}],\"batches\":[{\"id\":5}]}",
	};
	char err[256];
	(void)state;
	for (int p = 0; p < PROV__MAX; p++) {
		const struct provider_ops *o = ops((enum provider)p);
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			struct prov_obs obs;
			err[0] = '\0';
			/* "{\"id\":1}" is fine for Gemini (its id is name), "{\"name\":{}}" for the others. */
			int r = provider_parse_job(o, bad[i], strlen(bad[i]), &obs, err, sizeof(err));
			if (r == 0) {
				assert_true(i >= 6);
				provider_obs_clear(&obs);
				continue;
			}
			assert_int_equal(r, -EINVAL);
			assert_true(err[0] != '\0');
			assert_null(obs.doc);
			assert_null(obs.id);
		}
		for (size_t i = 0; i < ARRAY_SIZE(bad_pages); i++) {
			struct prov_page pg;
			int r = provider_parse_page(o, bad_pages[i], strlen(bad_pages[i]), 10, NULL, &pg, err, sizeof(err));
			if (r == 0) {
				/* Each provider reads only its own array key. */
				assert_true(i == 3 || i == 4 || i == 5);
				provider_page_clear(&pg);
				continue;
			}
			assert_int_equal(r, -EINVAL);
			assert_null(pg.items);
			assert_int_equal(pg.n, 0);
			assert_null(pg.next_cursor);
		}
	}
	/* A NUL inside the body is not a document. */
	struct prov_obs obs;
	assert_int_equal(provider_parse_job(ops(PROV_OPENAI), "{}\0{}", 5, &obs, err, sizeof(err)), -EINVAL);
	/* A Mistral page asked with a cursor that is no page number. */
	struct prov_page pg;
	assert_int_equal(provider_parse_page(ops(PROV_MISTRAL), "{\"total\":1}", 11, 10, "x", &pg, err, sizeof(err)), -EINVAL);
	assert_int_equal(provider_parse_page(ops(PROV_MISTRAL), "{\"total\":1}", 11, 0, NULL, &pg, err, sizeof(err)), -EINVAL);
}

static void test_describe(void **state)
{
	struct prov_obs o;
	struct buf b = { 0 };
	(void)state;
	parse_ok(PROV_ANTHROPIC, MSG_BATCH("ended", "null", 0, 8, 2, 0, 0), &o);
	provider_obs_describe(&o, &b);
	/* The results URL is never in a log line; that it is set is. */
	assert_null(strstr(b.data, "https://"));
	assert_non_null(strstr(b.data, "results_url=set"));
	assert_non_null(strstr(b.data, "anthropic batch msgbatch_013Zva2CMHLNnXjNJJKqJ2EF: complete (ended)"));
	assert_non_null(strstr(b.data, "succeeded=8 failed=2"));
	provider_obs_clear(&o);
	buf_reset(&b);
	/* Words from the provider cannot forge a line. */
	parse_ok(PROV_OPENAI, "{\"id\":\"batch_1\",\"status\":\"x\\nFAKE\",\"output_file_id\":\"f\\u001b[2J\"}", &o);
	provider_obs_describe(&o, &b);
	assert_null(strchr(b.data, '\n'));
	assert_null(strchr(b.data, '\x1b'));
	assert_non_null(strstr(b.data, "unknown"));
	provider_obs_clear(&o);
	buf_reset(&b);
	parse_ok(PROV_OPENAI, OPENAI_BATCH("expired", ""), &o);
	provider_obs_describe(&o, &b);
	assert_non_null(strstr(b.data, "expired at the provider"));
	assert_non_null(strstr(b.data, "output=file-out errors=file-err"));
	provider_obs_clear(&o);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_status_words),
		cmocka_unit_test(test_openai_job),
		cmocka_unit_test(test_anthropic_ended),
		cmocka_unit_test(test_gemini_operation),
		cmocka_unit_test(test_gemini_zero_counts),
		cmocka_unit_test(test_mistral_job),
		cmocka_unit_test(test_cohere_job),
		cmocka_unit_test(test_pages),
		cmocka_unit_test(test_cutoff),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_odd_answers),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_describe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
