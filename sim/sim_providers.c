/*
 * embedwatch-sim's other providers' batch APIs, each on its own path of the
 * one port: OpenAI (/v1/batches), Anthropic (/v1/messages/batches), Gemini
 * (/v1beta/batches) and Mistral (/v1/batch/jobs). The batch objects, list
 * pages, cancel answers, auth checks and error bodies are the shapes each
 * API serves, as its official SDK's types read them (tests/sdk/check.mjs runs
 * the SDKs against them). Batches follow scripted timelines of the
 * provider's own status words and request counts on the sim clock; faults,
 * the request log and the counters are the simulator's. They are written
 * apart from src/core/provider*.c on purpose: a test double that borrowed the
 * daemon's tables would agree with the daemon's mistakes.
 * Every piece of state is under sim_st.mu, as in sim.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define PW_MAX 8
/* A time that has not come (sim times may be negative: the history's, on the manual clock). */
#define NEVER INT64_MIN

/* One status word: whether it ends the batch, whether its unfinished requests then count as succeeded. */
struct pword {
	const char *word;
	bool terminal;
	bool success;
	const char *at_field;       /* OpenAI: the member that says when the word was reached */
};

/* Request counts as a timeline step sets them; the rest of the total is processing. */
enum { PC_SUCCEEDED, PC_FAILED, PC_EXPIRED, PC_CANCELED, PC__MAX };
static const char *const count_keys[PC__MAX] = { "succeeded", "failed", "expired", "canceled" };

struct pstep {
	int word;                   /* index into the provider's words */
	uint64_t at_ms;             /* since creation */
	bool has_counts;
	int64_t n[PC__MAX];
};

struct pbatch {
	char *id;
	char *name_json, *model_json;   /* JSON strings, quotes included */
	int64_t created_ms;         /* sim clock */
	int64_t total;
	struct pstep steps[SIM_MAX_STEPS];
	int n_steps;
	int64_t cancel_delay_ms;    /* < 0: --cancel-delay */
	bool cancel_requested;
	int64_t cancel_ms;
	bool history;               /* --provider-history: ended long ago */
	uint64_t requests;
	int64_t first_ms, last_ms;
};

/* A batch at one time: what its API shows. */
struct pview {
	int word;
	bool ended, cancelled;
	int64_t changed_ms;         /* sim clock, when the word was reached */
	int64_t at[PW_MAX];         /* sim clock, when each word was reached, or NEVER */
	int64_t n[PC__MAX];
	int64_t processing;
};

struct pdef;
/* What a page answer needs besides the batches: the request (its query) and the URL the results are under. */
struct pctx {
	struct MHD_Connection *c;
	const struct pdef *d;
	int64_t now;
	char base[160];             /* scheme://host of this request, for Anthropic's results_url */
};

/* One provider: its paths, words, page sizes, and the code for its shapes (a driver table). */
struct pdef {
	const char *name;           /* in the admin path, fault targets, stats and the log's endpoint names */
	const char *path;           /* GET path (list), GET path/ID, POST path/ID + cancel */
	const char *cancel;
	const char *default_model;
	struct pword words[PW_MAX]; /* the first is a new batch's */
	int cancelling;             /* the word while a cancel is pending, -1: none (the state stays) */
	int cancelled;              /* the word a cancel ends in */
	const char *not_found[2];   /* the 404 message: what goes before the id, and after it */
	void (*render)(struct buf *o, const struct pbatch *b, const struct pview *v, const struct pctx *x);
	void (*error)(struct buf *o, int status, const char *msg);
	int (*auth)(struct pctx *x, const char *token, struct buf *o);   /* 0, or a status with its body in o */
	int (*page)(struct pctx *x, struct pbatch **all, size_t n, struct buf *o, const char **err);
	bool cancel_answers_empty;  /* Gemini: google.protobuf.Empty */
};

static struct prov {
	struct strmap batches;
	struct pbatch **list;
	size_t n, cap;
	uint64_t history;
	char *token;                /* --provider-token NAME=KEY, or NULL: --token */
	uint64_t req[3];            /* get, list, cancel */
} P[SIM_PROV__MAX];

enum { OP_GET, OP_LIST, OP_CANCEL };
static const char *const op_names[3] = { "get", "list", "cancel" };

/* ---- the model: a batch at a time ---- */

static const struct pdef defs[SIM_PROV__MAX];

static int word_index(const struct pdef *d, const char *w)
{
	for (int i = 0; w && i < PW_MAX && d->words[i].word; i++)
		if (strcmp(d->words[i].word, w) == 0)
			return i;
	return -1;
}

/* The batch is in word w from t on. */
static void reach(struct pview *v, int w, int64_t t)
{
	v->word = w;
	v->changed_ms = t;
	if (v->at[w] == NEVER)
		v->at[w] = t;
}

/*
 * The timeline up to now; a cancel stops it where it was and ends the batch
 * in the cancelled word at the next step of the timeline or after the cancel
 * delay, whichever comes first.
 */
static void view(const struct pdef *d, const struct pbatch *b, int64_t now, struct pview *v)
{
	int64_t stop = now, done_at = INT64_MAX;

	memset(v, 0, sizeof(*v));
	for (int i = 0; i < PW_MAX; i++)
		v->at[i] = NEVER;
	if (b->cancel_requested) {
		done_at = b->cancel_ms + (b->cancel_delay_ms >= 0 ? b->cancel_delay_ms : (int64_t)sim_st.cancel_delay_ms);
		for (int i = 0; i < b->n_steps; i++) {
			int64_t t = b->created_ms + (int64_t)b->steps[i].at_ms;
			if (t > b->cancel_ms && t < done_at)
				done_at = t;
		}
		if (stop > b->cancel_ms)
			stop = b->cancel_ms;
	}
	v->at[0] = v->changed_ms = b->created_ms;
	for (int i = 0; i < b->n_steps; i++) {
		const struct pstep *s = &b->steps[i];
		int64_t t = b->created_ms + (int64_t)s->at_ms;
		if (t > stop)
			continue;
		if (s->word != v->word)
			reach(v, s->word, t);
		if (s->has_counts)
			memcpy(v->n, s->n, sizeof(v->n));
	}
	v->ended = d->words[v->word].terminal;
	if (b->cancel_requested && !v->ended) {
		/* The cancelling word from the cancel (where the provider has one), then the cancelled word once done. */
		if (d->cancelling >= 0)
			reach(v, d->cancelling, b->cancel_ms);
		if (now >= done_at)
			reach(v, d->cancelled, done_at);
		v->cancelled = v->ended = now >= done_at;
	}
	int64_t rest = b->total;
	for (int k = 0; k < PC__MAX; k++)
		rest -= v->n[k];
	if (rest < 0)
		rest = 0;
	if (v->cancelled)
		v->n[PC_CANCELED] += rest;
	else if (v->ended && d->words[v->word].success)
		v->n[PC_SUCCEEDED] += rest;
	else if (!v->ended)
		v->processing = rest;
}

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
		view(x->d, all[i], x->now, &v);
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

static const struct pdef defs[SIM_PROV__MAX] = {
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

/* ---- the endpoints ---- */

int sim_prov_route(const char *url)
{
	for (int p = 0; p < SIM_PROV__MAX; p++) {
		size_t n = strlen(defs[p].path);
		if (strncmp(url, defs[p].path, n) == 0 && (url[n] == '\0' || url[n] == '/'))
			return p;
	}
	return -1;
}

/* Newest first, ties by id (the lists of all four are ordered by creation, newest first). */
static int cmp_newest(const void *x, const void *y)
{
	const struct pbatch *a = *(struct pbatch *const *)x, *b = *(struct pbatch *const *)y;
	if (a->created_ms != b->created_ms)
		return a->created_ms > b->created_ms ? -1 : 1;
	return -strcmp(a->id, b->id);
}

static int do_list(struct pctx *x, struct prov *pv, struct buf *o, const char **err)
{
	struct pbatch **all = xcalloc(pv->n ? pv->n : 1, sizeof(*all));
	memcpy(all, pv->list, pv->n * sizeof(*all));
	qsort(all, pv->n, sizeof(*all), cmp_newest);
	int status = x->d->page(x, all, pv->n, o, err);
	free(all);
	return status;
}

static int do_cancel(struct pctx *x, struct pbatch *b, struct buf *o, const char **err)
{
	struct pview v;
	view(x->d, b, x->now, &v);
	if (v.ended) {
		*err = "The batch has already ended and cannot be cancelled.";
		return 400;
	}
	if (!b->cancel_requested) {
		b->cancel_requested = true;
		b->cancel_ms = x->now;
		view(x->d, b, x->now, &v);
	}
	if (x->d->cancel_answers_empty)
		buf_printf(o, "{}");
	else
		x->d->render(o, b, &v, x);
	return 200;
}

/* scheme://host the client reached us by (Host, when it is a plain host[:port]), for links in answers. */
static void request_base(struct MHD_Connection *c, char *buf, size_t len)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	const union MHD_ConnectionInfo *ti = MHD_get_connection_info(c, MHD_CONNECTION_INFO_PROTOCOL);
	if (!h || !*h || strlen(h) > 100 || h[strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789.-:[]")])
		h = "127.0.0.1";
	snprintf(buf, len, "%s://%s", ti && ti->protocol ? "https" : "http", h);
}

/* What the path asks for: *op and the id in id; false when it is no endpoint of the provider. */
static bool parse_path(const struct pdef *d, const char *url, int *op, char *id)
{
	const char *rest = url + strlen(d->path);
	if (*rest == '\0' || strcmp(rest, "/") == 0) {
		*op = OP_LIST;
		return true;
	}
	const char *p = rest + 1;
	size_t n = strcspn(p, ":/");
	if (n == 0 || n > API_ID_MAX || (p[n] && strcmp(p + n, d->cancel) != 0))
		return false;
	memcpy(id, p, n);
	id[n] = '\0';
	*op = p[n] ? OP_CANCEL : OP_GET;
	return api_id_valid(id);
}

/* Answers body o (taken) with status; the counters, the log entry and the faults that shape a body. */
static enum MHD_Result answer(struct MHD_Connection *c, int status, struct buf *o, const struct sim_fault *f,
			      const char *retry_after)
{
	if (f && f->kind == F_TRUNCATED)
		return sim_answer_truncated(c, o);
	if (f && f->kind == F_TRICKLE)
		return sim_answer_trickle(c, status, o, f->bytes_per_s);
	char *d = o->data ? o->data : xstrdup("");
	size_t n = o->len;
	o->data = NULL;
	o->len = o->cap = 0;
	return sim_send_buf(c, status, "application/json", d, n, retry_after);
}

static void counted(int64_t now, int status, const char *id, enum sim_ep ep)
{
	pthread_mutex_lock(&sim_st.mu);
	sim_count_status(status);
	sim_log_request(now, status, id, ep);
	pthread_mutex_unlock(&sim_st.mu);
}

enum MHD_Result sim_prov_handle(struct MHD_Connection *c, const char *method, const char *url, int prov)
{
	struct prov *pv = &P[prov];
	struct pctx x = { .c = c, .d = &defs[prov], .now = sim_now() };
	char id[API_ID_MAX + 2] = "", msg[300];
	struct buf o = { 0 };
	const char *err = NULL;
	struct sim_fault f;
	enum MHD_Result ret;
	int op, status;

	if (!parse_path(x.d, url, &op, id) || strcmp(method, op == OP_CANCEL ? "POST" : "GET") != 0) {
		status = strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ? 404 : 405;
		snprintf(msg, sizeof(msg), "%s %.200s: no such endpoint", method, url);
		x.d->error(&o, status, msg);
		counted(x.now, status, "", EP_PROV_FIRST + 3 * prov + OP_GET);
		return answer(c, status, &o, NULL, NULL);
	}
	enum sim_ep ep = EP_PROV_FIRST + 3 * prov + op;
	request_base(c, x.base, sizeof(x.base));
	pthread_mutex_lock(&sim_st.mu);
	pv->req[op]++;
	sim_note_client(c);
	struct pbatch *b = id[0] ? strmap_get(&pv->batches, id) : NULL;
	if (b) {
		if (++b->requests == 1)
			b->first_ms = x.now;
		b->last_ms = x.now;
	}
	bool faulted = sim_fault_take(op == OP_LIST ? T_PROV_LIST(prov) : T_PROV_ITEM(prov), id[0] ? id : NULL, x.now, &f);
	pthread_mutex_unlock(&sim_st.mu);
	if (faulted && f.kind == F_DELAY) {
		sim_fault_apply(c, &f, id, &ret);
		faulted = false;
	}
	if (faulted && f.kind == F_STATUS) {
		/* An injected status answers in the provider's error shape, with its Retry-After. */
		char ra[64];
		sim_fault_retry_after(&f, ra, sizeof(ra));
		x.d->error(&o, f.status, "injected fault");
		counted(x.now, f.status, id, ep);
		return answer(c, f.status, &o, NULL, ra);
	}
	if (faulted && !FAULT_SHAPES_BODY(f.kind)) {
		counted(x.now, f.kind == F_DROP ? 0 : 200, id, ep);
		sim_fault_apply(c, &f, id, &ret);
		return ret;
	}
	status = x.d->auth(&x, pv->token ? pv->token : sim_st.token, &o);
	pthread_mutex_lock(&sim_st.mu);
	if (status) {
		/* o holds the provider's answer */
	} else if (op == OP_LIST) {
		status = do_list(&x, pv, &o, &err);
	} else if (!b) {
		snprintf(msg, sizeof(msg), "%s%s%s", x.d->not_found[0], x.d->not_found[1] ? id : "",
			 x.d->not_found[1] ? x.d->not_found[1] : "");
		err = msg;
		status = 404;
	} else if (op == OP_CANCEL) {
		status = do_cancel(&x, b, &o, &err);
	} else {
		struct pview v;
		view(x.d, b, x.now, &v);
		x.d->render(&o, b, &v, &x);
		status = 200;
	}
	sim_count_status(status);
	sim_log_request(x.now, status, id, ep);
	pthread_mutex_unlock(&sim_st.mu);
	if (err) {
		buf_free(&o);
		x.d->error(&o, status, err);
	}
	return answer(c, status, &o, faulted ? &f : NULL, NULL);
}

/* ---- admin: batches with timelines, the history, counters, options ---- */

static void pbatch_free(struct pbatch *b)
{
	if (b) {
		free(b->id);
		free(b->name_json);
		free(b->model_json);
	}
	free(b);
}

/* Adds b to provider p, replacing a batch of its id. */
static void pbatch_index(struct prov *pv, struct pbatch *b)
{
	struct pbatch *old = strmap_get(&pv->batches, b->id);
	if (old) {
		for (size_t i = 0; i < pv->n; i++)
			if (pv->list[i] == old)
				pv->list[i] = b;
		strmap_put(&pv->batches, b->id, b);
		pbatch_free(old);
		return;
	}
	strmap_put(&pv->batches, b->id, b);
	if (pv->n == pv->cap) {
		pv->cap = pv->cap ? pv->cap * 2 : 64;
		pv->list = xrealloc(pv->list, pv->cap * sizeof(*pv->list));
	}
	pv->list[pv->n++] = b;
}

static const char *parse_step(const struct pdef *d, json_object *s, struct pstep *ret)
{
	static __thread char err[300];
	json_object *v;
	const char *w = json_object_object_get_ex(s, "status", &v) ? json_object_get_string(v) : NULL;

	memset(ret, 0, sizeof(*ret));
	if ((ret->word = word_index(d, w)) < 0) {
		int n = snprintf(err, sizeof(err), "a %s timeline step needs \"status\": one of", d->name);
		for (int i = 0; i < PW_MAX && d->words[i].word && n < (int)sizeof(err); i++)
			n += snprintf(err + n, sizeof(err) - (size_t)n, " %s", d->words[i].word);
		return err;
	}
	double at = json_object_object_get_ex(s, "at", &v) ? json_object_get_double(v) : 0;
	if (at < 0)
		return "a timeline step's \"at\" is seconds from creation, >= 0";
	ret->at_ms = (uint64_t)(at * 1000);
	for (int k = 0; k < PC__MAX; k++) {
		if (!json_object_object_get_ex(s, count_keys[k], &v))
			continue;
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
			return "a step's \"succeeded\", \"failed\", \"expired\" and \"canceled\" are counts >= 0";
		ret->has_counts = true;
		ret->n[k] = json_object_get_int64(v);
	}
	return NULL;
}

/*
 * {"id", "total" (requests, default 100), "name", "model", "cancel_delay" (seconds; default --cancel-delay),
 *  "timeline": [{"status": a word of the provider, "at": seconds, "succeeded", "failed", "expired", "canceled"}]}
 */
static const char *add_batch(const struct pdef *d, struct prov *pv, json_object *spec, int64_t now)
{
	json_object *v;
	const char *err = NULL, *id = sim_batch_spec_id(spec, &err);
	if (!id)
		return err;
	struct pbatch *b = xcalloc(1, sizeof(*b));
	b->id = xstrdup(id);
	b->created_ms = now;
	b->name_json = sim_json_str(json_object_object_get_ex(spec, "name", &v) ? json_object_get_string(v) : b->id);
	b->model_json = sim_json_str(json_object_object_get_ex(spec, "model", &v) ? json_object_get_string(v)
										  : d->default_model);
	b->total = json_object_object_get_ex(spec, "total", &v) ? json_object_get_int64(v) : 100;
	b->cancel_delay_ms = json_object_object_get_ex(spec, "cancel_delay", &v) ? (int64_t)(json_object_get_double(v) * 1000)
										  : -1;
	err = b->total < 0 ? "\"total\" is a count of requests >= 0" : NULL;
	if (!err && json_object_object_get_ex(spec, "timeline", &v)) {
		if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > SIM_MAX_STEPS)
			err = "\"timeline\" must be an array of at most 8 steps";
		for (size_t i = 0; !err && i < json_object_array_length(v); i++)
			err = parse_step(d, json_object_array_get_idx(v, i), &b->steps[b->n_steps++]);
	}
	if (err) {
		pbatch_free(b);
		return err;
	}
	pbatch_index(pv, b);
	return NULL;
}

struct adding {
	const struct pdef *d;
	struct prov *pv;
	int64_t now;
};

static const char *add_one(void *arg, json_object *spec)
{
	struct adding *a = arg;
	return add_batch(a->d, a->pv, spec, a->now);
}

bool sim_prov_admin(const char *p, const char *method, json_object *doc, int64_t now, struct buf *b, const char **err,
		    int *status)
{
	static const char pre[] = "/providers/";
	int prov;
	if (strncmp(p, pre, sizeof(pre) - 1) != 0)
		return false;
	const char *name = p + sizeof(pre) - 1, *rest = name + strcspn(name, "/");
	for (prov = 0; prov < SIM_PROV__MAX; prov++)
		if (strncmp(name, defs[prov].name, (size_t)(rest - name)) == 0 && !defs[prov].name[rest - name])
			break;
	if (prov == SIM_PROV__MAX || strncmp(rest, "/batches", 8) != 0) {
		*err = "the providers are openai, anthropic, gemini and mistral: /_sim/providers/NAME/batches[/ID]";
		*status = 404;
		return true;
	}
	rest += 8;
	if (*rest == '\0' && strcmp(method, "POST") == 0) {
		struct adding a = { &defs[prov], &P[prov], now };
		sim_add_each(doc, "batches", add_one, &a, b, err, status);
		return true;
	}
	struct pbatch *x = *rest == '/' && strcmp(method, "GET") == 0 ? strmap_get(&P[prov].batches, rest + 1) : NULL;
	if (!x) {
		*err = *rest == '/' && strcmp(method, "GET") == 0 ? "no such batch" : "POST /_sim/providers/NAME/batches, "
			"GET /_sim/providers/NAME/batches/ID";
		*status = 404;
		return true;
	}
	/* The batch as its API shows it now. */
	struct pctx ctx = { .d = &defs[prov], .now = now, .base = "http://127.0.0.1" };
	struct pview v;
	view(ctx.d, x, now, &v);
	ctx.d->render(b, x, &v, &ctx);
	return true;
}

unsigned sim_prov_fault_target(const char *name)
{
	size_t n = strcspn(name, "_");
	if (strcmp(name, "providers") == 0)
		return T_PROV_ALL;
	for (int p = 0; p < SIM_PROV__MAX; p++) {
		if (strncmp(name, defs[p].name, n) != 0 || defs[p].name[n])
			continue;
		if (!name[n])
			return T_PROV_ITEM(p);
		if (strcmp(name + n, "_list") == 0)
			return T_PROV_LIST(p);
		if (strcmp(name + n, "_all") == 0)
			return T_PROV_ITEM(p) | T_PROV_LIST(p);
	}
	return 0;
}

void sim_prov_stats(struct buf *b, bool with_jobs)
{
	int64_t now = sim_now();
	buf_printf(b, ",\"providers\":{");
	for (int p = 0; p < SIM_PROV__MAX; p++) {
		struct prov *pv = &P[p];
		buf_printf(b, "%s\"%s\":{\"requests\":{", p ? "," : "", defs[p].name);
		for (int op = 0; op < 3; op++)
			buf_printf(b, "%s\"%s\":%llu", op ? "," : "", op_names[op], (unsigned long long)pv->req[op]);
		buf_printf(b, "},\"batches_known\":%zu,\"history\":%llu", pv->n - (size_t)pv->history,
			   (unsigned long long)pv->history);
		if (with_jobs) {
			bool first = true;
			buf_printf(b, ",\"batches\":{");
			for (size_t i = 0; i < pv->n; i++) {
				struct pbatch *x = pv->list[i];
				struct pview v;
				if (x->history)
					continue;
				view(&defs[p], x, now, &v);
				buf_printf(b, "%s\"%s\":{\"requests\":%llu,\"first_ms\":%lld,\"last_ms\":%lld,\"status\":\"%s\","
					   "\"ended\":%s,\"cancel_requested\":%s}", first ? "" : ",", x->id,
					   (unsigned long long)x->requests, (long long)x->first_ms, (long long)x->last_ms,
					   defs[p].words[v.word].word, v.ended ? "true" : "false",
					   x->cancel_requested ? "true" : "false");
				first = false;
			}
			buf_printf(b, "}");
		}
		buf_printf(b, "}");
	}
	buf_printf(b, "}");
}

void sim_prov_reset(void)
{
	for (int p = 0; p < SIM_PROV__MAX; p++) {
		memset(P[p].req, 0, sizeof(P[p].req));
		for (size_t i = 0; i < P[p].n; i++) {
			P[p].list[i]->requests = 0;
			P[p].list[i]->first_ms = P[p].list[i]->last_ms = 0;
		}
	}
}

int sim_prov_option(int opt, const char *arg)
{
	char *end;
	switch (opt) {
	case SIM_OPT_PROV_HISTORY: {
		unsigned long long n = strtoull(arg, &end, 10);
		if (*end || !*arg || n > 1000000) {
			fprintf(stderr, "embedwatch-sim: --provider-history: expected 0 to 1000000, got \"%s\"\n", arg);
			return -EINVAL;
		}
		for (int p = 0; p < SIM_PROV__MAX; p++)
			P[p].history = n;
		return 0;
	}
	case SIM_OPT_PROV_TOKEN: {
		const char *eq = strchr(arg, '=');
		for (int p = 0; eq && eq[1] && p < SIM_PROV__MAX; p++) {
			if (strncmp(arg, defs[p].name, (size_t)(eq - arg)) == 0 && !defs[p].name[eq - arg]) {
				free(P[p].token);
				P[p].token = xstrdup(eq + 1);
				return 0;
			}
		}
		fprintf(stderr, "embedwatch-sim: --provider-token: expected openai|anthropic|gemini|mistral=KEY, got \"%s\"\n",
			arg);
		return -EINVAL;
	}
	}
	return -EINVAL;
}

/*
 * The history: N batches of each provider that ended long ago, a minute
 * apart, going round the provider's ending words; oldest "hist-0000000".
 */
void sim_prov_init(void)
{
	int64_t now = sim_now();
	for (int p = 0; p < SIM_PROV__MAX; p++) {
		const struct pdef *d = &defs[p];
		int ends[PW_MAX], n_ends = 0;
		for (int i = 0; i < PW_MAX && d->words[i].word; i++)
			if (d->words[i].terminal)
				ends[n_ends++] = i;
		for (uint64_t h = 0; h < P[p].history; h++) {
			struct pbatch *b = xcalloc(1, sizeof(*b));
			char id[32];
			snprintf(id, sizeof(id), "hist-%07llu", (unsigned long long)h);
			b->id = xstrdup(id);
			b->name_json = sim_json_str(id);
			b->model_json = sim_json_str(d->default_model);
			b->history = true;
			b->total = 100;
			b->cancel_delay_ms = -1;
			b->created_ms = now - 7200000 - (int64_t)(P[p].history - h) * 60000;
			b->steps[0] = (struct pstep){ .word = ends[h % (uint64_t)n_ends], .at_ms = 3600000, .has_counts = true,
						      .n = { [PC_SUCCEEDED] = 90, [PC_FAILED] = 10 } };
			b->n_steps = 1;
			pbatch_index(&P[p], b);
		}
	}
}

void sim_prov_free(void)
{
	for (int p = 0; p < SIM_PROV__MAX; p++) {
		for (size_t i = 0; i < P[p].n; i++)
			pbatch_free(P[p].list[i]);
		free(P[p].list);
		free(P[p].token);
		strmap_free(&P[p].batches);
	}
}
