/*
 * embedwatch-sim's other providers, one by one: how each writes a batch, a
 * list page and an error body and checks a key (the shapes its official SDK
 * reads), and the table of the four (struct pdef). The model they render is
 * sim_providers.c's. Every piece of state is under sim_st.mu, as in sim.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_prov.h"

static int64_t secs(int64_t t)
{
	return sim_wall_ms(t) / 1000;
}

/* A time as the provider writes it (epoch seconds, or RFC 3339), null for NEVER. */
static void put_time(struct buf *o, const char *key, int64_t t, bool rfc3339)
{
	char when[40];
	if (t == NEVER) {
		buf_printf(o, ",\"%s\":null", key);
	} else if (rfc3339) {
		util_rfc3339(sim_wall_ms(t), when, sizeof(when));
		buf_printf(o, ",\"%s\":\"%s\"", key, when);
	} else {
		buf_printf(o, ",\"%s\":%lld", key, (long long)secs(t));
	}
}

/* A file id member: prefix and the batch id when set, else null. */
static void put_file(struct buf *o, const char *key, const char *prefix, const char *id, bool set)
{
	if (set)
		buf_printf(o, ",\"%s\":\"%s%s\"", key, prefix, id);
	else
		buf_printf(o, ",\"%s\":null", key);
}

/* ---- OpenAI: Batch, CursorPage, {"error": {message, type, param, code}} ---- */

static void openai_render(struct buf *o, const struct pbatch *b, const struct pview *v, const struct pctx *x)
{
	const struct pdef *d = x->d;
	buf_printf(o, "{\"id\":\"%s\",\"object\":\"batch\",\"endpoint\":\"/v1/chat/completions\",\"model\":%s,\"errors\":null,"
		   "\"input_file_id\":\"file-in-%s\",\"completion_window\":\"24h\",\"status\":\"%s\"", b->id, b->model_json, b->id,
		   d->words[v->word].word);
	put_file(o, "output_file_id", "file-out-", b->id, v->ended && v->n[PC_SUCCEEDED] > 0);
	put_file(o, "error_file_id", "file-err-", b->id, v->ended && v->n[PC_FAILED] > 0);
	put_time(o, "created_at", b->created_ms, false);
	put_time(o, "expires_at", b->created_ms + 86400000, false);
	for (int i = 0; i < PW_MAX && d->words[i].word; i++)
		if (d->words[i].at_field)
			put_time(o, d->words[i].at_field, v->at[i], false);
	buf_printf(o, ",\"request_counts\":{\"total\":%lld,\"completed\":%lld,\"failed\":%lld},\"metadata\":{\"name\":%s}}",
		   (long long)b->total, (long long)v->n[PC_SUCCEEDED], (long long)v->n[PC_FAILED], b->name_json);
}

/* The error types the API answers each status with; 0 ends the table, and its row is the default. */
static const struct perr {
	int status;
	const char *openai_type, *openai_code;
	const char *anthropic;
	const char *google;
} errs[] = {
	{ 400, "invalid_request_error", NULL, "invalid_request_error", "INVALID_ARGUMENT" },
	{ 401, "invalid_request_error", "invalid_api_key", "authentication_error", "UNAUTHENTICATED" },
	{ 403, "invalid_request_error", NULL, "permission_error", "PERMISSION_DENIED" },
	{ 404, "invalid_request_error", NULL, "not_found_error", "NOT_FOUND" },
	{ 409, "invalid_request_error", NULL, "invalid_request_error", "ABORTED" },
	{ 413, "invalid_request_error", NULL, "request_too_large", "INVALID_ARGUMENT" },
	{ 429, "requests", "rate_limit_exceeded", "rate_limit_error", "RESOURCE_EXHAUSTED" },
	{ 500, "server_error", NULL, "api_error", "INTERNAL" },
	{ 503, "server_error", NULL, "api_error", "UNAVAILABLE" },
	{ 504, "server_error", NULL, "api_error", "DEADLINE_EXCEEDED" },
	{ 529, "server_error", NULL, "overloaded_error", "UNAVAILABLE" },
	{ 0, "invalid_request_error", NULL, "invalid_request_error", "FAILED_PRECONDITION" },
};

static const struct perr *perr_of(int status)
{
	const struct perr *e = errs;
	while (e->status && e->status != status)
		e++;
	if (!e->status && status >= 500)
		return &errs[7];    /* 500's row: any other server error */
	return e;
}

static void openai_error(struct buf *o, int status, const char *msg)
{
	const struct perr *e = perr_of(status);
	char *m = sim_json_str(msg);
	buf_printf(o, "{\"error\":{\"message\":%s,\"type\":\"%s\",\"param\":null,\"code\":", m, e->openai_type);
	buf_printf(o, e->openai_code ? "\"%s\"}}" : "null}}", e->openai_code);
	free(m);
}

/* A query parameter as a whole number in [min, max]: 0 (def when absent), -EINVAL otherwise. */
static int num_arg(struct MHD_Connection *c, const char *name, long def, long min, long max, long *ret)
{
	const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	char *end;
	*ret = def;
	if (!s)
		return 0;
	errno = 0;
	*ret = strtol(s, &end, 10);
	return !*s || *end || errno || *ret < min || *ret > max ? -EINVAL : 0;
}

static const char *str_arg(struct MHD_Connection *c, const char *name)
{
	const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	return s && *s ? s : NULL;
}

/* The place of id in the list, or -1. */
static long index_of(struct pbatch **all, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(all[i]->id, id) == 0)
			return (long)i;
	return -1;
}

/* Appends the batches from start to end, comma-separated. */
static void put_items(struct buf *o, const struct pctx *x, struct pbatch **all, size_t start, size_t end)
{
	for (size_t i = start; i < end; i++) {
		struct pview v;
		sim_prov_view(x->d, all[i], x->now, &v);
		if (i > start)
			buf_append(o, ",", 1);
		x->d->render(o, all[i], &v, x);
	}
}

/* OpenAI and Anthropic: {data, first_id, last_id, has_more}, OpenAI's with "object": "list". */
static void put_id_page(struct buf *o, const struct pctx *x, struct pbatch **all, size_t start, size_t end, bool more,
			bool object)
{
	buf_printf(o, "{%s\"data\":[", object ? "\"object\":\"list\"," : "");
	put_items(o, x, all, start, end);
	if (start < end)
		buf_printf(o, "],\"first_id\":\"%s\",\"last_id\":\"%s\"", all[start]->id, all[end - 1]->id);
	else
		buf_printf(o, "],\"first_id\":null,\"last_id\":null");
	buf_printf(o, ",\"has_more\":%s}", more ? "true" : "false");
}

/* limit 1 to 100 (default 20), after: the id the page starts after. */
static int openai_page(struct pctx *x, struct pbatch **all, size_t n, struct buf *o, const char **err)
{
	const char *after = str_arg(x->c, "after");
	long limit, at = -1;
	if (num_arg(x->c, "limit", 20, 1, 100, &limit) < 0) {
		*err = "Invalid 'limit': integer below minimum value (1) or above maximum value (100).";
		return 400;
	}
	if (after && (at = index_of(all, n, after)) < 0) {
		*err = "Invalid 'after': no batch with that id.";
		return 400;
	}
	size_t start = (size_t)(at + 1), end = start + (size_t)limit < n ? start + (size_t)limit : n;
	put_id_page(o, x, all, start, end, end < n, true);
	return 200;
}

static int bearer_auth(struct pctx *x, const char *token, struct buf *o, const char *missing, const char *wrong)
{
	const char *a = MHD_lookup_connection_value(x->c, MHD_HEADER_KIND, "Authorization");
	if (a && strncmp(a, "Bearer ", 7) == 0 && strcmp(a + 7, token) == 0)
		return 0;
	x->d->error(o, 401, a ? wrong : missing);
	return 401;
}

static int openai_auth(struct pctx *x, const char *token, struct buf *o)
{
	return bearer_auth(x, token, o, "You didn't provide an API key. You need to provide your API key in an "
			   "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
			   "Incorrect API key provided. You can find your API key at the provider's dashboard.");
}

/* ---- Anthropic: MessageBatch, Page, {"type": "error", "error": {type, message}} ---- */

static void anthropic_render(struct buf *o, const struct pbatch *b, const struct pview *v, const struct pctx *x)
{
	buf_printf(o, "{\"id\":\"%s\",\"type\":\"message_batch\",\"processing_status\":\"%s\",\"request_counts\":{"
		   "\"processing\":%lld,\"succeeded\":%lld,\"errored\":%lld,\"canceled\":%lld,\"expired\":%lld}", b->id,
		   x->d->words[v->word].word, (long long)v->processing, (long long)v->n[PC_SUCCEEDED],
		   (long long)v->n[PC_FAILED], (long long)v->n[PC_CANCELED], (long long)v->n[PC_EXPIRED]);
	put_time(o, "ended_at", v->ended ? v->changed_ms : NEVER, true);
	put_time(o, "created_at", b->created_ms, true);
	put_time(o, "expires_at", b->created_ms + 86400000, true);
	put_time(o, "archived_at", NEVER, true);
	put_time(o, "cancel_initiated_at", b->cancel_requested ? b->cancel_ms : NEVER, true);
	if (v->ended)
		buf_printf(o, ",\"results_url\":\"%s/v1/messages/batches/%s/results\"}", x->base, b->id);
	else
		buf_printf(o, ",\"results_url\":null}");
}

static void anthropic_error(struct buf *o, int status, const char *msg)
{
	char *m = sim_json_str(msg);
	buf_printf(o, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":%s},\"request_id\":\"req_sim\"}",
		   perr_of(status)->anthropic, m);
	free(m);
}

/* limit 1 to 1000 (default 20); after_id: the older page after that batch; before_id: the newer page before it. */
static int anthropic_page(struct pctx *x, struct pbatch **all, size_t n, struct buf *o, const char **err)
{
	const char *after = str_arg(x->c, "after_id"), *before = str_arg(x->c, "before_id");
	long limit, at = -1;
	size_t start = 0, end;
	bool more;
	if (num_arg(x->c, "limit", 20, 1, 1000, &limit) < 0) {
		*err = "limit: Input should be less than or equal to 1000 and greater than or equal to 1";
		return 400;
	}
	if (after && before) {
		*err = "Only one of before_id and after_id may be given";
		return 400;
	}
	if ((after || before) && (at = index_of(all, n, after ? after : before)) < 0) {
		*err = after ? "after_id: no batch with that id" : "before_id: no batch with that id";
		return 400;
	}
	if (before) {
		end = (size_t)at;
		start = end > (size_t)limit ? end - (size_t)limit : 0;
		more = start > 0;
	} else {
		start = (size_t)(at + 1);
		end = start + (size_t)limit < n ? start + (size_t)limit : n;
		more = end < n;
	}
	put_id_page(o, x, all, start, end, more, false);
	return 200;
}

/* The key in x-api-key, or as a Bearer token (what the TypeScript SDK sends since 1.x); and anthropic-version. */
static int anthropic_auth(struct pctx *x, const char *token, struct buf *o)
{
	const char *k = MHD_lookup_connection_value(x->c, MHD_HEADER_KIND, "x-api-key");
	const char *a = MHD_lookup_connection_value(x->c, MHD_HEADER_KIND, "Authorization");
	if (!k && a && strncmp(a, "Bearer ", 7) == 0)
		k = a + 7;
	if (!k || strcmp(k, token) != 0) {
		anthropic_error(o, 401, k ? "invalid x-api-key" : "x-api-key header is required");
		return 401;
	}
	if (!MHD_lookup_connection_value(x->c, MHD_HEADER_KIND, "anthropic-version")) {
		anthropic_error(o, 400, "anthropic-version: header is required");
		return 400;
	}
	return 0;
}

/* ---- Gemini: an Operation over a GenerateContentBatch, {operations, nextPageToken}, google.rpc.Status ---- */

#define GEMINI_TYPE "type.googleapis.com/google.ai.generativelanguage.v1main."

/* An int64 the way proto3 JSON writes it: a string, and not at all when 0. */
static void put_int64(struct buf *o, bool *first, const char *key, int64_t n)
{
	if (!n)
		return;
	buf_printf(o, "%s\"%s\":\"%lld\"", *first ? "" : ",", key, (long long)n);
	*first = false;
}

static void gemini_render(struct buf *o, const struct pbatch *b, const struct pview *v, const struct pctx *x)
{
	const char *word = x->d->words[v->word].word;
	bool succeeded = v->ended && x->d->words[v->word].success, first = true;
	buf_printf(o, "{\"name\":\"batches/%s\",\"metadata\":{\"@type\":\"" GEMINI_TYPE "GenerateContentBatch\","
		   "\"model\":%s,\"displayName\":%s,\"inputConfig\":{\"fileName\":\"files/in-%s\"}", b->id, b->model_json,
		   b->name_json, b->id);
	if (succeeded)
		buf_printf(o, ",\"output\":{\"responsesFile\":\"files/batch-%s\"}", b->id);
	put_time(o, "createTime", b->created_ms, true);
	if (v->ended)
		put_time(o, "endTime", v->changed_ms, true);
	put_time(o, "updateTime", v->changed_ms, true);
	buf_printf(o, ",\"batchStats\":{");
	put_int64(o, &first, "requestCount", b->total);
	put_int64(o, &first, "successfulRequestCount", v->n[PC_SUCCEEDED]);
	put_int64(o, &first, "failedRequestCount", v->n[PC_FAILED]);
	put_int64(o, &first, "pendingRequestCount", v->processing);
	buf_printf(o, "},\"state\":\"%s\",\"name\":\"batches/%s\"}", word, b->id);
	if (v->ended)
		buf_printf(o, ",\"done\":true");
	if (succeeded)
		buf_printf(o, ",\"response\":{\"@type\":\"" GEMINI_TYPE "GenerateContentBatchOutput\","
			   "\"responsesFile\":\"files/batch-%s\"}", b->id);
	else if (v->ended && !v->cancelled && strcmp(word, "BATCH_STATE_FAILED") == 0)
		buf_printf(o, ",\"error\":{\"code\":13,\"message\":\"simulated failure\"}");
	buf_append(o, "}", 1);
}

static void gemini_error(struct buf *o, int status, const char *msg)
{
	char *m = sim_json_str(msg);
	buf_printf(o, "{\"error\":{\"code\":%d,\"message\":%s,\"status\":\"%s\"}}", status, m, perr_of(status)->google);
	free(m);
}

/* pageSize (default 50, above 1000 coerced to 1000, 0 the default), pageToken: the last page's nextPageToken. */
static int gemini_page(struct pctx *x, struct pbatch **all, size_t n, struct buf *o, const char **err)
{
	const char *tok = str_arg(x->c, "pageToken");
	long size, at = -1;
	if (num_arg(x->c, "pageSize", 50, 0, 1L << 30, &size) < 0) {
		*err = "Invalid value at 'page_size' (TYPE_INT32)";
		return 400;
	}
	if (size == 0)
		size = 50;
	if (size > 1000)
		size = 1000;
	/* The token is "pt-" and the last batch served: the next page starts after it. */
	if (tok && (strncmp(tok, "pt-", 3) != 0 || (at = index_of(all, n, tok + 3)) < 0)) {
		*err = "Invalid page token.";
		return 400;
	}
	size_t start = (size_t)(at + 1), end = start + (size_t)size < n ? start + (size_t)size : n;
	buf_printf(o, "{\"operations\":[");
	put_items(o, x, all, start, end);
	buf_append(o, "]", 1);
	if (end < n)
		buf_printf(o, ",\"nextPageToken\":\"pt-%s\"", all[end - 1]->id);
	buf_append(o, "}", 1);
	return 200;
}

/* The key in x-goog-api-key or ?key=; none: 403, a wrong one: 400 API_KEY_INVALID, as the API answers. */
static int gemini_auth(struct pctx *x, const char *token, struct buf *o)
{
	const char *k = MHD_lookup_connection_value(x->c, MHD_HEADER_KIND, "x-goog-api-key");
	if (!k)
		k = MHD_lookup_connection_value(x->c, MHD_GET_ARGUMENT_KIND, "key");
	if (k && strcmp(k, token) == 0)
		return 0;
	if (!k) {
		gemini_error(o, 403, "Method doesn't allow unregistered callers (callers without established identity). "
			     "Please use API Key or other form of API consumer identity to call this API.");
		return 403;
	}
	buf_printf(o, "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API key.\","
		   "\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
		   "\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\",\"metadata\":{\"service\":"
		   "\"generativelanguage.googleapis.com\"}}]}}");
	return 400;
}

/* ---- Mistral: BatchJobOut, BatchJobsOut {object, data, total}, {object: "error", message, type, param, code} ---- */

static void mistral_render(struct buf *o, const struct pbatch *b, const struct pview *v, const struct pctx *x)
{
	buf_printf(o, "{\"id\":\"%s\",\"object\":\"batch\",\"input_files\":[\"in-%s\"],\"metadata\":{\"name\":%s},"
		   "\"endpoint\":\"/v1/chat/completions\",\"model\":%s,\"agent_id\":null", b->id, b->id, b->name_json,
		   b->model_json);
	put_file(o, "output_file", "out-", b->id, v->ended && v->n[PC_SUCCEEDED] > 0);
	put_file(o, "error_file", "err-", b->id, v->ended && v->n[PC_FAILED] > 0);
	buf_printf(o, ",\"errors\":[],\"status\":\"%s\"", x->d->words[v->word].word);
	put_time(o, "created_at", b->created_ms, false);
	buf_printf(o, ",\"total_requests\":%lld,\"completed_requests\":%lld,\"succeeded_requests\":%lld,"
		   "\"failed_requests\":%lld", (long long)b->total, (long long)(b->total - v->processing),
		   (long long)v->n[PC_SUCCEEDED], (long long)v->n[PC_FAILED]);
	put_time(o, "started_at", v->at[1], false);         /* RUNNING */
	put_time(o, "completed_at", v->ended ? v->changed_ms : NEVER, false);
	buf_append(o, "}", 1);
}

static void mistral_error(struct buf *o, int status, const char *msg)
{
	char *m = sim_json_str(msg);
	if (status == 401)  /* what the API gateway answers before the API sees the request */
		buf_printf(o, "{\"message\":%s,\"request_id\":\"sim\"}", m);
	else
		buf_printf(o, "{\"object\":\"error\",\"message\":%s,\"type\":\"%s\",\"param\":null,\"code\":null}", m,
			   perr_of(status)->openai_type);
	free(m);
}

/* page from 0, page_size (default 100), order_by -created (default: newest first) or created. */
static int mistral_page(struct pctx *x, struct pbatch **all, size_t n, struct buf *o, const char **err)
{
	const char *order = str_arg(x->c, "order_by");
	long page, size;
	if (num_arg(x->c, "page", 0, 0, 1L << 30, &page) < 0 || num_arg(x->c, "page_size", 100, 1, 1L << 30, &size) < 0) {
		*err = "page is a whole number from 0, page_size from 1";
		return 422;
	}
	if (order && strcmp(order, "-created") != 0 && strcmp(order, "created") != 0) {
		*err = "order_by: Input should be 'created' or '-created'";
		return 422;
	}
	if (order && strcmp(order, "created") == 0)
		for (size_t i = 0; i < n / 2; i++) {
			struct pbatch *t = all[i];
			all[i] = all[n - 1 - i];
			all[n - 1 - i] = t;
		}
	size_t start = (uint64_t)page * (uint64_t)size < n ? (size_t)(page * size) : n;
	size_t end = start + (size_t)size < n ? start + (size_t)size : n;
	buf_printf(o, "{\"object\":\"list\",\"data\":[");
	put_items(o, x, all, start, end);
	buf_printf(o, "],\"total\":%zu}", n);
	return 200;
}

static int mistral_auth(struct pctx *x, const char *token, struct buf *o)
{
	return bearer_auth(x, token, o, "Unauthorized", "Unauthorized");
}

/* ---- the table ---- */

const struct pdef sim_prov_defs[SIM_PROV__MAX] = {
	[SIM_OPENAI] = {
		.name = "openai", .path = "/v1/batches", .cancel = "/cancel", .default_model = "gpt-4o-mini",
		.words = { { "validating", false, false, NULL }, { "in_progress", false, false, "in_progress_at" },
			   { "finalizing", false, false, "finalizing_at" }, { "completed", true, true, "completed_at" },
			   { "failed", true, false, "failed_at" }, { "expired", true, false, "expired_at" },
			   { "cancelling", false, false, "cancelling_at" }, { "cancelled", true, false, "cancelled_at" } },
		.cancelling = 6, .cancelled = 7, .not_found = { "No batch found with id '", "'." },
		.render = openai_render, .error = openai_error, .auth = openai_auth, .page = openai_page,
	},
	[SIM_ANTHROPIC] = {
		.name = "anthropic", .path = "/v1/messages/batches", .cancel = "/cancel", .default_model = "claude-sonnet-4-5",
		.words = { { "in_progress", false, false, NULL }, { "canceling", false, false, NULL },
			   { "ended", true, true, NULL } },
		.cancelling = 1, .cancelled = 2, .not_found = { "message batch ", " not found" },
		.render = anthropic_render, .error = anthropic_error, .auth = anthropic_auth, .page = anthropic_page,
	},
	[SIM_GEMINI] = {
		.name = "gemini", .path = "/v1beta/batches", .cancel = ":cancel", .default_model = "models/gemini-2.5-flash",
		.words = { { "BATCH_STATE_PENDING", false, false, NULL }, { "BATCH_STATE_RUNNING", false, false, NULL },
			   { "BATCH_STATE_SUCCEEDED", true, true, NULL }, { "BATCH_STATE_FAILED", true, false, NULL },
			   { "BATCH_STATE_CANCELLED", true, false, NULL }, { "BATCH_STATE_EXPIRED", true, false, NULL } },
		/* BatchState has no word for a pending cancel: the state stays until it is cancelled. */
		.cancelling = -1, .cancelled = 4, .not_found = { "Requested entity was not found.", NULL },
		.render = gemini_render, .error = gemini_error, .auth = gemini_auth, .page = gemini_page,
		.cancel_answers_empty = true,
	},
	[SIM_MISTRAL] = {
		.name = "mistral", .path = "/v1/batch/jobs", .cancel = "/cancel", .default_model = "mistral-small-latest",
		.words = { { "QUEUED", false, false, NULL }, { "RUNNING", false, false, NULL }, { "SUCCESS", true, true, NULL },
			   { "FAILED", true, false, NULL }, { "TIMEOUT_EXCEEDED", true, false, NULL },
			   { "CANCELLATION_REQUESTED", false, false, NULL }, { "CANCELLED", true, false, NULL } },
		.cancelling = 5, .cancelled = 6, .not_found = { "No batch job found with id ", "" },
		.render = mistral_render, .error = mistral_error, .auth = mistral_auth, .page = mistral_page,
	},
};
