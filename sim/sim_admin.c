/* embedwatch-sim's admin interface: jobs, faults, counters, the request log and the webhook sink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sim.h"

/* ---- admin interface (/_sim/...) ---- */

static int parse_status_name(const char *s, enum job_status *ret)
{
	enum job_status st = job_status_parse(s);
	if (st == JOB_UNKNOWN)
		return -1;
	*ret = st;
	return 0;
}

static const char *add_job(json_object *spec, int64_t now)
{
	static __thread char err[256];
	json_object *v;
	const char *id;

	if (!json_object_is_type(spec, json_type_object))
		return "a job is a JSON object";
	if (!json_object_object_get_ex(spec, "id", &v) || !json_object_is_type(v, json_type_string))
		return "a job needs \"id\" (string)";
	id = json_object_get_string(v);
	if (!api_id_valid(id)) {
		snprintf(err, sizeof(err), "invalid job id \"%.140s\"", id);
		return err;
	}
	struct sim_job *j = xcalloc(1, sizeof(*j));
	j->id = xstrdup(id);
	j->created_ms = now;
	j->name_json = sim_json_str(json_object_object_get_ex(spec, "name", &v) ? json_object_get_string(v) : id);
	j->model_json = sim_json_str(json_object_object_get_ex(spec, "model", &v) ? json_object_get_string(v) : "embed-english-v3.0");
	j->input_json = sim_json_str(json_object_object_get_ex(spec, "input_dataset_id", &v) ? json_object_get_string(v) : "ds-input");
	j->truncate_json = sim_json_str(json_object_object_get_ex(spec, "truncate", &v) ? json_object_get_string(v) : "END");
	if (json_object_object_get_ex(spec, "warnings", &v) && json_object_is_type(v, json_type_array))
		j->warnings_json = xstrdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	if (json_object_object_get_ex(spec, "api_warning", &v) && json_object_is_type(v, json_type_string))
		j->api_warning = xstrdup(json_object_get_string(v));
	if (json_object_object_get_ex(spec, "answer_as", &v) && json_object_is_type(v, json_type_string) &&
	    api_id_valid(json_object_get_string(v)))
		j->answer_as = xstrdup(json_object_get_string(v));
	if (json_object_object_get_ex(spec, "warning_flood", &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) > 0 && json_object_get_int64(v) <= 900000)
		j->warning_flood = (uint32_t)json_object_get_int64(v);
	j->steps[0] = (struct sim_step){ JOB_PROCESSING, 0 };
	j->n_steps = 1;
	if (json_object_object_get_ex(spec, "timeline", &v)) {
		if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > SIM_MAX_STEPS) {
			sim_job_free(j);
			return "\"timeline\" must be an array of at most 8 {\"status\", \"at\"} steps";
		}
		j->n_steps = 0;
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *s = json_object_array_get_idx(v, i), *st, *at;
			enum job_status status;
			if (!json_object_object_get_ex(s, "status", &st) || parse_status_name(json_object_get_string(st), &status) < 0) {
				sim_job_free(j);
				return "a timeline step needs \"status\": processing, cancelling, complete, cancelled or failed";
			}
			double secs = json_object_object_get_ex(s, "at", &at) ? json_object_get_double(at) : 0;
			if (secs < 0) {
				sim_job_free(j);
				return "a timeline step's \"at\" is seconds from creation, >= 0";
			}
			j->steps[j->n_steps++] = (struct sim_step){ status, (uint64_t)(secs * 1000) };
		}
	}
	struct sim_job *old = strmap_get(&sim_st.jobs, id);
	if (old) {
		/* Replace in place so the list stays consistent. */
		for (size_t i = 0; i < sim_st.n_jobs; i++)
			if (sim_st.job_list[i] == old)
				sim_st.job_list[i] = j;
		strmap_put(&sim_st.jobs, j->id, j);
		sim_job_free(old);
	} else {
		sim_job_index(j);
	}
	return NULL;
}

static const char *add_one_job(void *now, json_object *spec)
{
	return add_job(spec, *(int64_t *)now);
}

static const char *add_fault(json_object *spec, int64_t now)
{
	static const struct { const char *n; enum sim_fault_kind k; } kinds[] = {
		{ "status", F_STATUS }, { "delay", F_DELAY }, { "drop", F_DROP },
		{ "malformed", F_MALFORMED }, { "truncated", F_TRUNCATED },
		{ "oversized", F_OVERSIZED }, { "content_type", F_CONTENT_TYPE }, { "bomb", F_BOMB },
		{ "trickle", F_TRICKLE },
	};
	json_object *v;
	struct sim_fault *f = xcalloc(1, sizeof(*f));

	if (!json_object_object_get_ex(spec, "kind", &v))
		goto bad_kind;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(json_object_get_string(v), kinds[i].n) == 0)
			f->kind = kinds[i].k;
	if (!f->kind)
		goto bad_kind;
	/* "api" (the default): v1 per-id polls and the list; "poll" or "list": only those; "sink"; "v2" (v2 per-id
	 * and :cancel), "v2_list", "batches" (both), "datasets"; "openai" (per-id and cancel), "openai_list",
	 * "openai_all" and the same of anthropic, gemini and mistral, "providers" (all four); "any": all of them. */
	f->targets = T_API | T_LIST;
	if (json_object_object_get_ex(spec, "target", &v)) {
		static const struct { const char *n; unsigned t; } targets[] = {
			{ "sink", T_SINK }, { "any", T_API | T_LIST | T_SINK | T_V2 | T_V2_LIST | T_DATASETS | T_PROV_ALL },
			{ "list", T_LIST }, { "poll", T_API }, { "v2", T_V2 }, { "v2_list", T_V2_LIST },
			{ "batches", T_V2 | T_V2_LIST }, { "datasets", T_DATASETS },
		};
		const char *t = json_object_get_string(v);
		for (size_t i = 0; i < ARRAY_SIZE(targets); i++)
			if (strcmp(t, targets[i].n) == 0)
				f->targets = targets[i].t;
		if (sim_prov_fault_target(t))
			f->targets = sim_prov_fault_target(t);
	}
	if (f->kind == F_STATUS) {
		if (!json_object_object_get_ex(spec, "status", &v) || json_object_get_int(v) < 100 ||
		    json_object_get_int(v) > 599) {
			free(f);
			return "a status fault needs \"status\" from 100 to 599";
		}
		f->status = json_object_get_int(v);
	}
	if (json_object_object_get_ex(spec, "retry_after", &v))
		snprintf(f->retry_after, sizeof(f->retry_after), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(spec, "retry_after_date", &v))
		f->retry_after_date = json_object_get_int(v);
	if (json_object_object_get_ex(spec, "job", &v))
		f->job = xstrdup(json_object_get_string(v));
	f->remaining = json_object_object_get_ex(spec, "count", &v) ? json_object_get_int64(v) : -1;
	if (json_object_object_get_ex(spec, "for", &v)) {
		f->has_until = true;
		f->until_ms = now + (int64_t)(json_object_get_double(v) * 1000);
	}
	if (json_object_object_get_ex(spec, "delay", &v))
		f->delay_ms = (uint64_t)(json_object_get_double(v) * 1000);
	/* A bomb inflates to size bytes (default 80 MiB: past the daemon's 64 MiB list cap too). */
	f->size = 80ULL << 20;
	if (json_object_object_get_ex(spec, "size", &v)) {
		int64_t n = json_object_get_int64(v);
		if (n < 1024 || n > (1LL << 30)) {
			free(f->job);
			free(f);
			return "a bomb's \"size\" is the decoded bytes, from 1024 to 1073741824";
		}
		f->size = (uint64_t)n;
	}
	/* A trickle sends the body at bytes_per_second after the headers (default 1: the one seen in the field). */
	f->bytes_per_s = 1;
	if (json_object_object_get_ex(spec, "bytes_per_second", &v)) {
		int64_t n = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || n < 1 || n > 100000000) {
			free(f->job);
			free(f);
			return "a trickle's \"bytes_per_second\" is a whole number from 1 to 100000000";
		}
		f->bytes_per_s = (uint64_t)n;
	}
	if (f->kind == F_BOMB) {
		/* Made now (for the shapes its target can get), not while a client waits for its answer. */
		if (f->targets & (T_LIST | T_PROV_LISTS))
			sim_bomb_prepare(true, f->size);
		if (f->targets & (T_API | T_SINK | (T_PROV_ALL & ~T_PROV_LISTS)))
			sim_bomb_prepare(false, f->size);
	}
	/* Append: faults apply in the order they were added. */
	struct sim_fault **pp = &sim_st.faults;
	while (*pp)
		pp = &(*pp)->next;
	*pp = f;
	return NULL;
bad_kind:
	free(f);
	return "a fault needs \"kind\": status, delay, drop, malformed, truncated, oversized, content_type, bomb or trickle";
}

/* POST /_sim/clock: {"advance": "2s"} or {"advance_ms": 2000}. An error for the client, or NULL with *ret_ms set. */
static const char *parse_advance(json_object *doc, uint64_t *ret_ms)
{
	static __thread char err[256];
	static const char *const shape = "the clock takes {\"advance\": \"2s\"} or {\"advance_ms\": 2000}";
	bool have = false;

	if (!json_object_is_type(doc, json_type_object))
		return shape;
	json_object_object_foreach(doc, key, val) {
		const char *shown = json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN);
		if (strcmp(key, "advance") == 0) {
			if (!json_object_is_type(val, json_type_string) ||
			    config_parse_duration(json_object_get_string(val), ret_ms) < 0) {
				snprintf(err, sizeof(err), "\"advance\" must be a duration like 500ms, 2s or 1m, got %.100s", shown);
				return err;
			}
		} else if (strcmp(key, "advance_ms") == 0) {
			if (!json_object_is_type(val, json_type_int) || json_object_get_int64(val) < 0) {
				snprintf(err, sizeof(err), "\"advance_ms\" must be a whole number of milliseconds >= 0, got %.100s",
					 shown);
				return err;
			}
			*ret_ms = (uint64_t)json_object_get_int64(val);
		} else {
			snprintf(err, sizeof(err), "unknown field \"%.100s\": %s", key, shape);
			return err;
		}
		if (have)
			return "give one of \"advance\" and \"advance_ms\", not both";
		have = true;
	}
	return have ? NULL : shape;
}

static void render_clock(struct buf *b)
{
	int64_t now = sim_now();
	buf_printf(b, "{\"mode\":\"%s\",\"now_ms\":%lld,\"wall_ms\":%lld}", sim_st.manual_clock ? "manual" : "real",
		   (long long)now, (long long)sim_wall_ms(now));
}

static void render_stats(struct buf *b, bool with_jobs)
{
	buf_printf(b, "{\"requests\":{\"poll\":%llu,\"list\":%llu,\"cancel\":%llu,\"sink\":%llu,\"admin\":%llu,\"other\":%llu},",
		   (unsigned long long)sim_st.req_poll, (unsigned long long)sim_st.req_list, (unsigned long long)sim_st.req_cancel,
		   (unsigned long long)sim_st.req_sink, (unsigned long long)sim_st.req_admin, (unsigned long long)sim_st.req_other);
	buf_printf(b, "\"status\":{");
	bool first = true;
	for (int i = 0; i < 600; i++) {
		if (sim_st.status_count[i]) {
			buf_printf(b, "%s\"%d\":%llu", first ? "" : ",", i, (unsigned long long)sim_st.status_count[i]);
			first = false;
		}
	}
	buf_printf(b, "},\"connections\":{\"opened\":%llu,\"current\":%llu,\"peak\":%llu},",
		   (unsigned long long)sim_st.conn_opened, (unsigned long long)sim_st.conn_current, (unsigned long long)sim_st.conn_peak);
	buf_printf(b, "\"client_names\":{");
	first = true;
	for (size_t i = 0; i < sim_st.client_names.cap; i++) {
		struct strmap_slot *s = &sim_st.client_names.slots[i];
		if (!s->key)
			continue;
		char *k = sim_json_str(s->key);
		buf_printf(b, "%s%s:%llu", first ? "" : ",", k, (unsigned long long)((struct sim_client_name *)s->val)->count);
		free(k);
		first = false;
	}
	static const char *const kinds[K__MAX] = { "poll", "list", "cancel" };
	buf_printf(b, "},\"bytes\":{");
	for (int k = 0; k < K__MAX; k++)
		buf_printf(b, "%s\"%s\":{\"sent\":%llu,\"identity\":%llu}", k ? "," : "", kinds[k],
			   (unsigned long long)sim_st.bytes_sent[k], (unsigned long long)sim_st.bytes_identity[k]);
	buf_printf(b, "},\"jobs_known\":%zu,\"faults_active\":", sim_st.n_jobs);
	size_t nf = 0;
	for (struct sim_fault *f = sim_st.faults; f; f = f->next)
		nf += f->remaining != 0;
	buf_printf(b, "%zu", nf);
	sim_v2_stats(b, with_jobs);
	sim_prov_stats(b, with_jobs);
	if (with_jobs) {
		int64_t now = sim_now();
		buf_printf(b, ",\"jobs\":{");
		for (size_t i = 0; i < sim_st.n_jobs; i++) {
			struct sim_job *j = sim_st.job_list[i];
			enum job_status st = sim_job_status_at(j, now);
			int64_t ended_at = 0;
			for (int k = 0; k < j->n_steps; k++)
				if (job_status_ended(j->steps[k].status))
					ended_at = j->created_ms + (int64_t)j->steps[k].at_ms;
			buf_printf(b, "%s\"%s\":{\"requests\":%llu,\"first_ms\":%lld,\"last_ms\":%lld,\"status\":\"%s\","
				   "\"ends_ms\":%lld}", i ? "," : "", j->id, (unsigned long long)j->requests,
				   (long long)j->first_ms, (long long)j->last_ms, job_status_name(st), (long long)ended_at);
		}
		buf_printf(b, "}");
	}
	buf_printf(b, "}");
}

static void render_sink(struct buf *b)
{
	buf_printf(b, "{\"deliveries\":[");
	for (size_t i = 0; i < sim_st.n_sink; i++) {
		struct sim_sink_rec *r = &sim_st.sink[i];
		char *path = sim_json_str(r->path), *body = sim_json_str(r->body);
		buf_printf(b, "%s{\"t_ms\":%lld,\"path\":%s,\"status\":%d,\"headers\":%s,\"body\":%s}", i ? "," : "",
			   (long long)r->t_ms, path, r->status,
			   json_object_to_json_string_ext(r->headers, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), body);
		free(path);
		free(body);
	}
	buf_printf(b, "]}");
}

static void render_log(struct buf *b)
{
	buf_printf(b, "{\"entries\":[");
	for (size_t i = 0; i < sim_st.n_log; i++)
		buf_printf(b, "%s[%lld,%d,\"%s\",\"%s\"]", i ? "," : "", (long long)sim_st.log[i].t_ms, sim_st.log[i].status,
			   sim_st.log[i].id, sim_ep_names[sim_st.log[i].ep]);
	buf_printf(b, "]}");
}

void sim_admin_clear_sink(void)
{
	for (size_t i = 0; i < sim_st.n_sink; i++) {
		free(sim_st.sink[i].path);
		free(sim_st.sink[i].body);
		json_object_put(sim_st.sink[i].headers);
	}
	sim_st.n_sink = 0;
}

void sim_admin_clear_faults(void)
{
	while (sim_st.faults) {
		struct sim_fault *f = sim_st.faults;
		sim_st.faults = f->next;
		free(f->job);
		free(f);
	}
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	json_object_object_add(cls, k, json_object_new_string(v ? v : ""));
	return MHD_YES;
}

static enum MHD_Result handle_sink(struct MHD_Connection *c, const char *url, struct sim_req *rq)
{
	int64_t now = sim_now();
	struct sim_fault f;

	pthread_mutex_lock(&sim_st.mu);
	sim_st.req_sink++;
	bool faulted = sim_fault_take(T_SINK, NULL, now, &f);
	pthread_mutex_unlock(&sim_st.mu);
	if (faulted && f.kind == F_DELAY) {
		usleep((useconds_t)(f.delay_ms * 1000));
		faulted = false;
	}
	int status = faulted && f.kind == F_STATUS ? f.status : sim_st.sink_status;
	if (faulted && f.kind == F_DROP)
		status = 0;
	else if (faulted && f.kind != F_STATUS)
		status = 200;

	/* What the receiver answered: 0 when no complete answer left it (dropped or cut off). */
	struct sim_sink_rec r = { .t_ms = now, .path = xstrdup(url),
			      .status = faulted && f.kind == F_TRUNCATED ? 0 : status };
	r.headers = json_object_new_object();
	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, r.headers);
	r.body = xstrdup(rq->body.data ? rq->body.data : "");
	pthread_mutex_lock(&sim_st.mu);
	if (sim_st.n_sink == sim_st.cap_sink) {
		sim_st.cap_sink = sim_st.cap_sink ? sim_st.cap_sink * 2 : 64;
		sim_st.sink = xrealloc(sim_st.sink, sim_st.cap_sink * sizeof(*sim_st.sink));
	}
	sim_st.sink[sim_st.n_sink++] = r;
	sim_count_status(status);
	pthread_mutex_unlock(&sim_st.mu);

	if (status == 0)
		return MHD_NO;
	if (faulted && f.kind != F_STATUS) {
		/* Odd bodies with a 200: a receiver only needs the status, except a cut-off answer. */
		enum MHD_Result ret;
		if (f.kind == F_TRUNCATED) {
			struct buf b = { 0 };
			buf_printf(&b, "{\"received\":true,\"padding\":\"%0128d\"}", 0);
			return sim_answer_truncated(c, &b);
		}
		if (f.kind == F_TRICKLE) {
			struct buf b = { 0 };
			buf_printf(&b, "{\"received\":true}");
			return sim_answer_trickle(c, 200, &b, f.bytes_per_s);
		}
		sim_fault_apply(c, &f, NULL, &ret);
		return ret;
	}
	char ra[64] = "";
	if (faulted && f.kind == F_STATUS)
		sim_fault_retry_after(&f, ra, sizeof(ra));
	char *d = xstrdup("{\"received\":true}");
	return sim_send_buf(c, status, "application/json", d, strlen(d), ra);
}

enum MHD_Result sim_admin_handle(struct MHD_Connection *c, const char *method, const char *url, struct sim_req *rq)
{
	const char *p = url + strlen("/_sim");
	int64_t now = sim_now();
	struct buf b = { 0 };
	json_object *doc = NULL;
	const char *err = NULL;
	int status = 200;

	if (strncmp(p, "/sink", 5) == 0 && strcmp(method, "POST") == 0)
		return handle_sink(c, url, rq);

	pthread_mutex_lock(&sim_st.mu);
	sim_st.req_admin++;
	if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
		if (rq->too_big) {
			err = "request body too large";
			status = 413;
			goto answer;
		}
		enum json_tokener_error jerr;
		doc = json_tokener_parse_verbose(rq->body.data ? rq->body.data : "", &jerr);
		if (!doc && strcmp(p, "/reset") != 0) {
			err = "request body is not valid JSON";
			status = 400;
			goto answer;
		}
	}
	if (strcmp(p, "/jobs") == 0 && strcmp(method, "POST") == 0) {
		sim_add_each(doc, "jobs", add_one_job, &now, &b, &err, &status);
	} else if (strncmp(p, "/jobs/", 6) == 0 && strcmp(method, "GET") == 0) {
		struct sim_job *j = strmap_get(&sim_st.jobs, p + 6);
		if (!j) {
			err = "no such job";
			status = 404;
		} else {
			sim_job_render(&b, j, now);
		}
	} else if (strcmp(p, "/faults") == 0 && strcmp(method, "POST") == 0) {
		json_object *list;
		if (json_object_object_get_ex(doc, "faults", &list) && json_object_is_type(list, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(list) && !err; i++)
				err = add_fault(json_object_array_get_idx(list, i), now);
		} else {
			err = add_fault(doc, now);
		}
		if (!err)
			buf_printf(&b, "{\"ok\":true}");
		else
			status = 400;
	} else if (strcmp(p, "/faults") == 0 && strcmp(method, "DELETE") == 0) {
		sim_admin_clear_faults();
		buf_printf(&b, "{\"ok\":true}");
	} else if (strcmp(p, "/clock") == 0 && strcmp(method, "GET") == 0) {
		render_clock(&b);
	} else if (strcmp(p, "/clock") == 0 && strcmp(method, "POST") == 0) {
		uint64_t ms = 0;
		int64_t t;
		if (!sim_st.manual_clock) {
			err = "the clock is real: only a simulator started with --clock manual can be advanced";
			status = 409;
		} else if ((err = parse_advance(doc, &ms))) {
			status = 400;
		} else if (sim_clock_advance(ms, &t) < 0) {
			err = "advance: the clock would overflow";
			status = 400;
		} else {
			render_clock(&b);
		}
	} else if (sim_v2_admin(p, method, doc, now, &b, &err, &status)) {
		/* /_sim/batches: v2 batches (sim_v2.c) */
	} else if (sim_prov_admin(p, method, doc, now, &b, &err, &status)) {
		/* /_sim/providers/NAME/batches: the other providers' (sim_providers.c) */
	} else if (strcmp(p, "/stats") == 0 && strcmp(method, "GET") == 0) {
		const char *jobs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "jobs");
		render_stats(&b, !jobs || strcmp(jobs, "0") != 0);
	} else if (strcmp(p, "/sink") == 0 && strcmp(method, "GET") == 0) {
		render_sink(&b);
	} else if (strcmp(p, "/sink") == 0 && strcmp(method, "DELETE") == 0) {
		sim_admin_clear_sink();
		buf_printf(&b, "{\"ok\":true}");
	} else if (strcmp(p, "/log") == 0 && strcmp(method, "GET") == 0) {
		render_log(&b);
	} else if (strcmp(p, "/reset") == 0 && strcmp(method, "POST") == 0) {
		sim_admin_clear_sink();
		sim_admin_clear_faults();
		sim_st.n_log = 0;
		sim_st.req_poll = sim_st.req_list = sim_st.req_cancel = sim_st.req_sink = sim_st.req_other = 0;
		memset(sim_st.status_count, 0, sizeof(sim_st.status_count));
		memset(sim_st.bytes_sent, 0, sizeof(sim_st.bytes_sent));
		memset(sim_st.bytes_identity, 0, sizeof(sim_st.bytes_identity));
		for (size_t i = 0; i < sim_st.n_jobs; i++) {
			sim_st.job_list[i]->requests = 0;
			sim_st.job_list[i]->first_ms = sim_st.job_list[i]->last_ms = 0;
		}
		sim_v2_reset();
		sim_prov_reset();
		buf_printf(&b, "{\"ok\":true}");
	} else {
		err = "no such admin endpoint";
		status = 404;
	}
answer:
	sim_count_status(status);
	pthread_mutex_unlock(&sim_st.mu);
	json_object_put(doc);
	if (err) {
		buf_free(&b);
		return sim_send_text(c, status, "%s", err);
	}
	return sim_send_json(c, status, &b);
}
