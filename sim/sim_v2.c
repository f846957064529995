/*
 * embedwatch-sim's v2 Batches and v1 Datasets, as the contract
 * (api/batches-datasets.openapi.yaml) describes them: batches with scripted
 * timelines (statuses and record counts), the paged list in either direction
 * of updated_at or created_at, :cancel, faults, and datasets with signed part
 * URLs. Every piece of state is under sim_st.mu, as in sim.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_v2.h"
#include "config.h"
#include "sim.h"

struct sim_bstep {
	char status[40];            /* a BatchStatus as served */
	uint64_t at_ms;             /* since creation */
	bool has_records;
	int64_t successful, failed;
};

struct sim_batch {
	char *id;
	char *name_json, *model_json, *input_json;
	char *output_id;            /* output_dataset_id once completed */
	int64_t created_ms;         /* sim clock */
	int64_t num_records;
	bool numbers_as_strings;    /* counts served as "12", as "numbers as strings" allows */
	struct sim_bstep steps[SIM_MAX_STEPS];
	int n_steps;
	bool cancel_requested;
	int64_t cancel_ms;
	uint64_t requests;
	int64_t first_ms, last_ms;
};

/* The state of one batch at a time: what the API shows. */
struct bview {
	const char *status;
	int64_t updated_ms;         /* sim clock */
	int64_t successful, failed;
	bool ended, completed;
};

static struct {
	struct strmap batches;
	struct sim_batch **list;
	size_t n, cap;
	uint64_t history;           /* --v2-history: ended batches of long ago */
	bool asc;                   /* --v2-order asc: oldest first; default newest first */
	unsigned dataset_parts;
	uint64_t req_poll, req_list, req_cancel, req_datasets;
	uint64_t bytes_poll, bytes_list, bytes_cancel, bytes_datasets;   /* bodies of the answers made here (not error texts) */
} V = { .dataset_parts = 2 };

static bool terminal(const char *st)
{
	enum job_status s = api_v2_status(st);
	return s == JOB_COMPLETE || s == JOB_FAILED || s == JOB_CANCELLED;
}

static void batch_view(const struct sim_batch *b, int64_t now, struct bview *v)
{
	int64_t el = now - b->created_ms;
	memset(v, 0, sizeof(*v));
	v->status = "BATCH_STATUS_QUEUED";
	v->updated_ms = b->created_ms;
	for (int i = 0; i < b->n_steps; i++) {
		if (el < (int64_t)b->steps[i].at_ms)
			continue;
		v->status = b->steps[i].status;
		v->updated_ms = b->created_ms + (int64_t)b->steps[i].at_ms;
		if (b->steps[i].has_records) {
			v->successful = b->steps[i].successful;
			v->failed = b->steps[i].failed;
		}
	}
	if (b->cancel_requested && !terminal(v->status)) {
		bool done = now - b->cancel_ms >= (int64_t)sim_st.cancel_delay_ms;
		v->status = done ? "BATCH_STATUS_CANCELED" : "BATCH_STATUS_CANCELING";
		v->updated_ms = done ? b->cancel_ms + (int64_t)sim_st.cancel_delay_ms : b->cancel_ms;
	}
	v->ended = terminal(v->status);
	v->completed = api_v2_status(v->status) == JOB_COMPLETE;
	/* A completed batch without counts in its timeline did every record it did not fail. */
	if (v->completed && v->successful + v->failed < b->num_records)
		v->successful = b->num_records - v->failed;
}

static void count(struct buf *out, const char *key, int64_t n, bool as_string)
{
	buf_printf(out, as_string ? ",\"%s\":\"%lld\"" : ",\"%s\":%lld", key, (long long)n);
}

static void render_batch(struct buf *out, const struct sim_batch *b, int64_t now)
{
	struct bview v;
	char created[40], updated[40];
	batch_view(b, now, &v);
	util_rfc3339(sim_wall_ms(b->created_ms), created, sizeof(created));
	util_rfc3339(sim_wall_ms(v.updated_ms), updated, sizeof(updated));
	buf_printf(out, "{\"id\":\"%s\",\"name\":%s,\"creator_id\":\"sim-user\",\"org_id\":\"sim-org\",\"status\":\"%s\","
		   "\"created_at\":\"%s\",\"updated_at\":\"%s\",\"input_dataset_id\":%s", b->id, b->name_json, v.status,
		   created, updated, b->input_json);
	if (v.completed)
		buf_printf(out, ",\"output_dataset_id\":\"%s\"", b->output_id);
	buf_printf(out, ",\"input_tokens\":\"%lld\",\"output_tokens\":\"0\",\"model\":%s", (long long)(b->num_records * 37),
		   b->model_json);
	count(out, "num_records", b->num_records, b->numbers_as_strings);
	count(out, "num_successful_records", v.successful, b->numbers_as_strings);
	count(out, "num_failed_records", v.failed, b->numbers_as_strings);
	if (api_v2_status(v.status) == JOB_FAILED)
		buf_printf(out, ",\"status_reason\":\"simulated failure\"");
	buf_append(out, "}", 1);
}

/* History entry i: ended in 2025, one minute apart, in id order; never changes. */
static int64_t history_ms(uint64_t i)
{
	return 1735689600000LL + (int64_t)i * 60000;   /* 2025-01-01T00:00:00Z + i min */
}

static void render_history(struct buf *out, uint64_t i)
{
	static const char *const ends[] = { "BATCH_STATUS_COMPLETED", "BATCH_STATUS_COMPLETED", "BATCH_STATUS_FAILED",
					    "BATCH_STATUS_CANCELED" };
	char created[40], updated[40];
	util_rfc3339(history_ms(i) - 3600000, created, sizeof(created));
	util_rfc3339(history_ms(i), updated, sizeof(updated));
	const char *st = ends[i % 4];
	buf_printf(out, "{\"id\":\"hb-%07llu\",\"name\":\"history-v2-%llu\",\"creator_id\":\"sim-user\",\"org_id\":\"sim-org\","
		   "\"status\":\"%s\",\"created_at\":\"%s\",\"updated_at\":\"%s\",\"input_dataset_id\":\"ds-hist-in\",%s"
		   "\"input_tokens\":\"1000\",\"output_tokens\":\"0\",\"model\":\"embed-v4.0\",\"num_records\":100,"
		   "\"num_successful_records\":%d,\"num_failed_records\":%d}",
		   (unsigned long long)i, (unsigned long long)(i / 100), st, created, updated,
		   i % 4 < 2 ? "\"output_dataset_id\":\"ds-hist-out\"," : "", i % 4 < 2 ? 100 : 40, i % 4 == 2 ? 60 : 0);
}

static void batch_free(struct sim_batch *b)
{
	if (!b)
		return;
	free(b->id);
	free(b->name_json);
	free(b->model_json);
	free(b->input_json);
	free(b->output_id);
	free(b);
}

static const char *add_batch(json_object *spec, int64_t now)
{
	static __thread char err[256];
	json_object *v;
	const char *bad = NULL, *id = sim_batch_spec_id(spec, &bad);

	if (!id)
		return bad;
	struct sim_batch *b = xcalloc(1, sizeof(*b));
	char out[160];
	b->id = xstrdup(id);
	b->created_ms = now;
	b->name_json = sim_json_str(json_object_object_get_ex(spec, "name", &v) ? json_object_get_string(v) : id);
	b->model_json = sim_json_str(json_object_object_get_ex(spec, "model", &v) ? json_object_get_string(v) : "embed-v4.0");
	b->input_json = sim_json_str(json_object_object_get_ex(spec, "input_dataset_id", &v) ? json_object_get_string(v)
													: "ds-batch-input");
	snprintf(out, sizeof(out), "ds-bout-%.120s", id);
	b->output_id = xstrdup(json_object_object_get_ex(spec, "output_dataset_id", &v) ? json_object_get_string(v) : out);
	b->num_records = json_object_object_get_ex(spec, "num_records", &v) ? json_object_get_int64(v) : 100;
	b->numbers_as_strings = json_object_object_get_ex(spec, "numbers_as_strings", &v) && json_object_get_boolean(v);
	b->steps[0] = (struct sim_bstep){ .status = "BATCH_STATUS_QUEUED" };
	b->n_steps = 1;
	if (json_object_object_get_ex(spec, "timeline", &v)) {
		if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > SIM_MAX_STEPS) {
			batch_free(b);
			return "\"timeline\" must be an array of at most 8 {\"status\", \"at\", \"successful\", \"failed\"} steps";
		}
		b->n_steps = 0;
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *s = json_object_array_get_idx(v, i), *st, *at, *ok, *fl;
			const char *name = json_object_object_get_ex(s, "status", &st) ? json_object_get_string(st) : NULL;
			if (!name || strncmp(name, "BATCH_STATUS_", 13) != 0 || strlen(name) >= sizeof(b->steps[0].status)) {
				batch_free(b);
				snprintf(err, sizeof(err), "a timeline step needs \"status\": BATCH_STATUS_QUEUED, _IN_PROGRESS, "
					 "_CANCELING, _COMPLETED, _FAILED, _CANCELED or another BATCH_STATUS_ name");
				return err;
			}
			double secs = json_object_object_get_ex(s, "at", &at) ? json_object_get_double(at) : 0;
			if (secs < 0) {
				batch_free(b);
				return "a timeline step's \"at\" is seconds from creation, >= 0";
			}
			struct sim_bstep *p = &b->steps[b->n_steps++];
			snprintf(p->status, sizeof(p->status), "%s", name);
			p->at_ms = (uint64_t)(secs * 1000);
			bool has_ok = json_object_object_get_ex(s, "successful", &ok);
			bool has_fl = json_object_object_get_ex(s, "failed", &fl);
			p->has_records = has_ok || has_fl;
			p->successful = has_ok ? json_object_get_int64(ok) : 0;
			p->failed = has_fl ? json_object_get_int64(fl) : 0;
		}
	}
	struct sim_batch *old = strmap_get(&V.batches, id);
	if (old) {
		for (size_t i = 0; i < V.n; i++)
			if (V.list[i] == old)
				V.list[i] = b;
		strmap_put(&V.batches, b->id, b);
		batch_free(old);
	} else {
		strmap_put(&V.batches, b->id, b);
		if (V.n == V.cap) {
			V.cap = V.cap ? V.cap * 2 : 64;
			V.list = xrealloc(V.list, V.cap * sizeof(*V.list));
		}
		V.list[V.n++] = b;
	}
	return NULL;
}

/* ---- the list: every batch and the history, sorted, served a page at a time ---- */

struct entry {
	int64_t key;                /* updated_at or created_at, wall ms */
	const char *id;
	struct sim_batch *b;        /* NULL: history entry hist */
	uint64_t hist;
};

static bool by_created;

/* The order of the list: by key, ties by id, newest first unless --v2-order asc. */
static int cmp_entry(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;
	int c = a->key < b->key ? -1 : a->key > b->key ? 1 : strcmp(a->id, b->id);
	return V.asc ? c : -c;
}

/* The token is the last entry served: the next page starts after it (a keyset cursor, stable while batches change). */
static int parse_token(const char *t, struct entry *ret)
{
	char *end;
	if (!t || t[0] != 'k')
		return -EINVAL;
	errno = 0;
	ret->key = strtoll(t + 1, &end, 10);
	if (errno || *end != '.' || !api_id_valid(end + 1))
		return -EINVAL;
	ret->id = end + 1;
	return 0;
}

static int list_batches(struct MHD_Connection *c, int64_t now, struct buf *out, const char **err)
{
	const char *ps = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page_size");
	const char *tok = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page_token");
	const char *ob = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "order_by");
	long size = 50;
	struct entry after = { 0 };

	if (ps) {
		char *end;
		size = strtol(ps, &end, 10);
		if (!*ps || *end || size < 1) {
			*err = "page_size must be a whole number >= 1";
			return 400;
		}
		if (size > API_V2_PAGE_MAX)
			size = API_V2_PAGE_MAX;     /* coerced, as the contract says */
	}
	if (ob && strcmp(ob, "updated_at") != 0 && strcmp(ob, "created_at") != 0) {
		*err = "order_by must be created_at or updated_at";
		return 400;
	}
	if (tok && *tok && parse_token(tok, &after) < 0) {
		*err = "invalid page_token";
		return 400;
	}
	by_created = ob && strcmp(ob, "created_at") == 0;
	size_t n = V.n + (size_t)V.history;
	struct entry *all = xcalloc(n ? n : 1, sizeof(*all));
	/* History ids live apart from the entries: qsort moves the entries, a pointer into one would move with it. */
	char (*hist_ids)[24] = xcalloc(V.history ? V.history : 1, sizeof(*hist_ids));
	for (size_t i = 0; i < V.n; i++) {
		struct bview v;
		batch_view(V.list[i], now, &v);
		all[i].b = V.list[i];
		all[i].id = V.list[i]->id;
		all[i].key = sim_wall_ms(by_created ? V.list[i]->created_ms : v.updated_ms);
	}
	for (uint64_t h = 0; h < V.history; h++) {
		struct entry *e = &all[V.n + h];
		e->hist = h;
		snprintf(hist_ids[h], sizeof(hist_ids[h]), "hb-%07llu", (unsigned long long)h);
		e->id = hist_ids[h];
		e->key = by_created ? history_ms(h) - 3600000 : history_ms(h);
	}
	qsort(all, n, sizeof(*all), cmp_entry);
	size_t start = 0;
	if (tok && *tok)
		while (start < n && cmp_entry(&all[start], &after) <= 0)
			start++;
	size_t end = start + (size_t)size < n ? start + (size_t)size : n;
	buf_printf(out, "{\"batches\":[");
	for (size_t i = start; i < end; i++) {
		if (i > start)
			buf_append(out, ",", 1);
		if (all[i].b)
			render_batch(out, all[i].b, now);
		else
			render_history(out, all[i].hist);
	}
	buf_append(out, "]", 1);
	if (end < n)
		buf_printf(out, ",\"next_page_token\":\"k%lld.%s\"", (long long)all[end - 1].key, all[end - 1].id);
	buf_append(out, "}", 1);
	free(all);
	free(hist_ids);
	return 200;
}

enum MHD_Result sim_v2_batches(struct MHD_Connection *c, const char *method, const char *url)
{
	const char *rest = url + strlen("/v2/batches");
	int64_t now = sim_now();
	char id[API_ID_MAX + 2] = "";
	bool is_list = false, is_cancel = false;
	enum sim_ep ep;
	struct sim_fault f;
	enum MHD_Result ret;

	if (*rest == '\0' || strcmp(rest, "/") == 0) {
		is_list = true;
	} else {
		const char *p = rest + 1;
		size_t n = strcspn(p, ":/");
		if (n == 0 || n > API_ID_MAX || (p[n] && strcmp(p + n, ":cancel") != 0)) {
			pthread_mutex_lock(&sim_st.mu);
			sim_count_status(404);
			pthread_mutex_unlock(&sim_st.mu);
			return sim_send_text(c, 404, "no such endpoint");
		}
		memcpy(id, p, n);
		id[n] = '\0';
		is_cancel = p[n] == ':';
	}
	if (strcmp(method, is_cancel ? "POST" : "GET") != 0) {
		pthread_mutex_lock(&sim_st.mu);
		sim_count_status(405);
		pthread_mutex_unlock(&sim_st.mu);
		return sim_send_text(c, 405, "method %s not allowed here", method);
	}
	ep = is_list ? EP_V2_LIST : is_cancel ? EP_V2_CANCEL : EP_V2_POLL;
	pthread_mutex_lock(&sim_st.mu);
	if (is_list)
		V.req_list++;
	else if (is_cancel)
		V.req_cancel++;
	else
		V.req_poll++;
	sim_note_client(c);
	struct sim_batch *b = id[0] ? strmap_get(&V.batches, id) : NULL;
	if (b) {
		if (++b->requests == 1)
			b->first_ms = now;
		b->last_ms = now;
	}
	bool faulted = sim_fault_take(is_list ? T_V2_LIST : T_V2, id[0] ? id : NULL, now, &f);
	pthread_mutex_unlock(&sim_st.mu);
	if (faulted && f.kind == F_DELAY) {
		sim_fault_apply(c, &f, id, &ret);
		faulted = false;
	}
	if (faulted && !FAULT_SHAPES_BODY(f.kind)) {
		int status = f.kind == F_STATUS ? f.status : (f.kind == F_DROP ? 0 : 200);
		pthread_mutex_lock(&sim_st.mu);
		sim_count_status(status);
		sim_log_request(now, status, id, ep);
		pthread_mutex_unlock(&sim_st.mu);
		sim_fault_apply(c, &f, id, &ret);
		return ret;
	}
	int status = sim_check_auth(c);
	struct buf out = { 0 };
	const char *err = NULL;
	pthread_mutex_lock(&sim_st.mu);
	if (status) {
		err = status == 401 ? "no api key" : "invalid api token";
	} else if (is_list) {
		status = list_batches(c, now, &out, &err);
	} else if (!b) {
		status = 404;
		err = "batch not found";
	} else if (is_cancel) {
		struct bview v;
		batch_view(b, now, &v);
		if (v.ended) {
			status = 400;
			err = "the batch has already ended";
		} else {
			if (!b->cancel_requested) {
				b->cancel_requested = true;
				b->cancel_ms = now;
			}
			buf_printf(&out, "{}");
			status = 200;
		}
	} else {
		buf_printf(&out, "{\"batch\":");
		render_batch(&out, b, now);
		buf_append(&out, "}", 1);
		status = 200;
	}
	sim_count_status(status);
	sim_log_request(now, status, id, ep);
	*(is_list ? &V.bytes_list : is_cancel ? &V.bytes_cancel : &V.bytes_poll) += out.len;
	pthread_mutex_unlock(&sim_st.mu);
	if (err) {
		buf_free(&out);
		return sim_send_text(c, status, "%s", err);
	}
	if (faulted && f.kind == F_TRUNCATED)
		return sim_answer_truncated(c, &out);
	if (faulted && f.kind == F_TRICKLE)
		return sim_answer_trickle(c, status, &out, f.bytes_per_s);
	return sim_send_json(c, status, &out);
}

/* ---- datasets: any "ds-" id, with signed part URLs (secrets, as the real ones are) ---- */

static void render_dataset(struct buf *out, const char *id, int64_t now)
{
	char when[40];
	util_rfc3339(sim_wall_ms(now), when, sizeof(when));
	buf_printf(out, "{\"dataset\":{\"id\":\"%s\",\"name\":\"%s\",\"created_at\":\"%s\",\"updated_at\":\"%s\","
		   "\"dataset_type\":\"embed-result\",\"validation_status\":\"validated\",\"schema\":\"embeddings\","
		   "\"required_fields\":[],\"preserve_fields\":[],\"dataset_parts\":[", id, id, when, when);
	uint32_t h = 2166136261u;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (unsigned k = 0; k < V.dataset_parts; k++)
		buf_printf(out, "%s{\"id\":\"%s-p%u\",\"name\":\"part-%u.avro\",\"url\":\"https://storage.sim.invalid/"
			   "embedwatch-sim/%s/part-%u.avro?X-Sim-Signature=SIMSECRET%08x%u\",\"index\":%u,"
			   "\"size_bytes\":%u,\"num_rows\":%u}", k ? "," : "", id, k, k, id, k, h, k, k, 1024 * (k + 1), 100);
	buf_printf(out, "],\"validation_warnings\":[]}}");
}

enum MHD_Result sim_v2_dataset(struct MHD_Connection *c, const char *method, const char *url)
{
	const char *id = url + strlen("/v1/datasets/");
	int64_t now = sim_now();
	struct sim_fault f;
	enum MHD_Result ret;

	if (strcmp(method, "GET") != 0) {
		pthread_mutex_lock(&sim_st.mu);
		sim_count_status(405);
		pthread_mutex_unlock(&sim_st.mu);
		return sim_send_text(c, 405, "method %s not allowed here", method);
	}
	pthread_mutex_lock(&sim_st.mu);
	V.req_datasets++;
	sim_note_client(c);
	bool faulted = sim_fault_take(T_DATASETS, id, now, &f);
	pthread_mutex_unlock(&sim_st.mu);
	if (faulted && f.kind == F_DELAY) {
		sim_fault_apply(c, &f, NULL, &ret);
		faulted = false;
	}
	if (faulted && !FAULT_SHAPES_BODY(f.kind)) {
		int status = f.kind == F_STATUS ? f.status : (f.kind == F_DROP ? 0 : 200);
		pthread_mutex_lock(&sim_st.mu);
		sim_count_status(status);
		sim_log_request(now, status, api_id_valid(id) ? id : "", EP_DATASET);
		pthread_mutex_unlock(&sim_st.mu);
		sim_fault_apply(c, &f, NULL, &ret);
		return ret;
	}
	int status = sim_check_auth(c);
	const char *err = status == 401 ? "no api key" : "invalid api token";
	if (!status && (!api_id_valid(id) || strncmp(id, "ds-", 3) != 0)) {
		status = 404;
		err = "dataset not found";
	}
	struct buf out = { 0 };
	if (!status) {
		render_dataset(&out, id, now);
		status = 200;
	}
	pthread_mutex_lock(&sim_st.mu);
	sim_count_status(status);
	sim_log_request(now, status, api_id_valid(id) ? id : "", EP_DATASET);
	V.bytes_datasets += out.len;
	pthread_mutex_unlock(&sim_st.mu);
	if (status != 200)
		return sim_send_text(c, status, "%s", err);
	if (faulted && f.kind == F_TRUNCATED)
		return sim_answer_truncated(c, &out);
	if (faulted && f.kind == F_TRICKLE)
		return sim_answer_trickle(c, status, &out, f.bytes_per_s);
	return sim_send_json(c, status, &out);
}

/* ---- admin, counters, options ---- */

static const char *add_one(void *now, json_object *spec)
{
	return add_batch(spec, *(int64_t *)now);
}

bool sim_v2_admin(const char *p, const char *method, json_object *doc, int64_t now, struct buf *b, const char **err,
		  int *status)
{
	if (strcmp(p, "/batches") == 0 && strcmp(method, "POST") == 0) {
		sim_add_each(doc, "batches", add_one, &now, b, err, status);
		return true;
	}
	if (strncmp(p, "/batches/", 9) == 0 && strcmp(method, "GET") == 0) {
		struct sim_batch *x = strmap_get(&V.batches, p + 9);
		if (!x) {
			*err = "no such batch";
			*status = 404;
		} else {
			render_batch(b, x, now);
		}
		return true;
	}
	return false;
}

void sim_v2_stats(struct buf *b, bool with_jobs)
{
	buf_printf(b, ",\"v2\":{\"requests\":{\"poll\":%llu,\"list\":%llu,\"cancel\":%llu,\"datasets\":%llu},\"batches_known\":%zu",
		   (unsigned long long)V.req_poll, (unsigned long long)V.req_list, (unsigned long long)V.req_cancel,
		   (unsigned long long)V.req_datasets, V.n);
	/* Answer bodies as sent (v2 and dataset answers are never compressed). */
	buf_printf(b, ",\"bytes\":{\"poll\":%llu,\"list\":%llu,\"cancel\":%llu,\"datasets\":%llu}",
		   (unsigned long long)V.bytes_poll, (unsigned long long)V.bytes_list, (unsigned long long)V.bytes_cancel,
		   (unsigned long long)V.bytes_datasets);
	if (with_jobs) {
		int64_t now = sim_now();
		buf_printf(b, ",\"batches\":{");
		for (size_t i = 0; i < V.n; i++) {
			struct sim_batch *x = V.list[i];
			struct bview v;
			batch_view(x, now, &v);
			int64_t ends = 0;
			for (int k = 0; k < x->n_steps; k++)
				if (terminal(x->steps[k].status))
					ends = x->created_ms + (int64_t)x->steps[k].at_ms;
			buf_printf(b, "%s\"%s\":{\"requests\":%llu,\"first_ms\":%lld,\"last_ms\":%lld,\"status\":\"%s\","
				   "\"ends_ms\":%lld,\"cancel_requested\":%s}", i ? "," : "", x->id, (unsigned long long)x->requests,
				   (long long)x->first_ms, (long long)x->last_ms, v.status, (long long)ends,
				   x->cancel_requested ? "true" : "false");
		}
		buf_printf(b, "}");
	}
	buf_printf(b, "}");
}

void sim_v2_reset(void)
{
	V.req_poll = V.req_list = V.req_cancel = V.req_datasets = 0;
	V.bytes_poll = V.bytes_list = V.bytes_cancel = V.bytes_datasets = 0;
	for (size_t i = 0; i < V.n; i++) {
		V.list[i]->requests = 0;
		V.list[i]->first_ms = V.list[i]->last_ms = 0;
	}
}

int sim_v2_option(int opt, const char *arg)
{
	char *end;
	switch (opt) {
	case SIM_OPT_V2_HISTORY:
		V.history = strtoull(arg, &end, 10);
		if (*end || !*arg) {
			fprintf(stderr, "embedwatch-sim: --v2-history: expected a number, got \"%s\"\n", arg);
			return -EINVAL;
		}
		return 0;
	case SIM_OPT_V2_ORDER:
		if (strcmp(arg, "asc") != 0 && strcmp(arg, "desc") != 0) {
			fprintf(stderr, "embedwatch-sim: --v2-order: expected asc or desc, got \"%s\"\n", arg);
			return -EINVAL;
		}
		V.asc = strcmp(arg, "asc") == 0;
		return 0;
	case SIM_OPT_DATASET_PARTS: {
		unsigned long n = strtoul(arg, &end, 10);
		if (*end || !*arg || n > 100) {
			fprintf(stderr, "embedwatch-sim: --dataset-parts: expected 0 to 100, got \"%s\"\n", arg);
			return -EINVAL;
		}
		V.dataset_parts = (unsigned)n;
		return 0;
	}
	}
	return -EINVAL;
}

void sim_v2_free(void)
{
	for (size_t i = 0; i < V.n; i++)
		batch_free(V.list[i]);
	free(V.list);
	strmap_free(&V.batches);
}
