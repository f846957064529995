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
 * This file: the model (a batch at a time), the endpoints and the admin;
 * each provider's shapes and the table are sim_prov_shapes.c's.
 * Every piece of state is under sim_st.mu, as in sim.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_prov.h"

static const char *const count_keys[PC__MAX] = { "succeeded", "failed", "expired", "canceled" };

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
void sim_prov_view(const struct pdef *d, const struct pbatch *b, int64_t now, struct pview *v)
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

/* ---- the endpoints ---- */

int sim_prov_route(const char *url)
{
	for (int p = 0; p < SIM_PROV__MAX; p++) {
		size_t n = strlen(sim_prov_defs[p].path);
		if (strncmp(url, sim_prov_defs[p].path, n) == 0 && (url[n] == '\0' || url[n] == '/'))
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
	sim_prov_view(x->d, b, x->now, &v);
	if (v.ended) {
		*err = "The batch has already ended and cannot be cancelled.";
		return 400;
	}
	if (!b->cancel_requested) {
		b->cancel_requested = true;
		b->cancel_ms = x->now;
		sim_prov_view(x->d, b, x->now, &v);
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
	struct pctx x = { .c = c, .d = &sim_prov_defs[prov], .now = sim_now() };
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
		sim_prov_view(x.d, b, x.now, &v);
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
		if (strncmp(name, sim_prov_defs[prov].name, (size_t)(rest - name)) == 0 && !sim_prov_defs[prov].name[rest - name])
			break;
	if (prov == SIM_PROV__MAX || strncmp(rest, "/batches", 8) != 0) {
		*err = "the providers are openai, anthropic, gemini and mistral: /_sim/providers/NAME/batches[/ID]";
		*status = 404;
		return true;
	}
	rest += 8;
	if (*rest == '\0' && strcmp(method, "POST") == 0) {
		struct adding a = { &sim_prov_defs[prov], &P[prov], now };
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
	struct pctx ctx = { .d = &sim_prov_defs[prov], .now = now, .base = "http://127.0.0.1" };
	struct pview v;
	sim_prov_view(ctx.d, x, now, &v);
	ctx.d->render(b, x, &v, &ctx);
	return true;
}

unsigned sim_prov_fault_target(const char *name)
{
	size_t n = strcspn(name, "_");
	if (strcmp(name, "providers") == 0)
		return T_PROV_ALL;
	for (int p = 0; p < SIM_PROV__MAX; p++) {
		if (strncmp(name, sim_prov_defs[p].name, n) != 0 || sim_prov_defs[p].name[n])
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
		buf_printf(b, "%s\"%s\":{\"requests\":{", p ? "," : "", sim_prov_defs[p].name);
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
				sim_prov_view(&sim_prov_defs[p], x, now, &v);
				buf_printf(b, "%s\"%s\":{\"requests\":%llu,\"first_ms\":%lld,\"last_ms\":%lld,\"status\":\"%s\","
					   "\"ended\":%s,\"ends_ms\":%lld,\"cancel_requested\":%s}", first ? "" : ",", x->id,
					   (unsigned long long)x->requests, (long long)x->first_ms, (long long)x->last_ms,
					   sim_prov_defs[p].words[v.word].word, v.ended ? "true" : "false",
					   (long long)(v.ended ? v.changed_ms : 0), x->cancel_requested ? "true" : "false");
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
			if (strncmp(arg, sim_prov_defs[p].name, (size_t)(eq - arg)) == 0 && !sim_prov_defs[p].name[eq - arg]) {
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
		const struct pdef *d = &sim_prov_defs[p];
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
