/*
 * embedwatch-sim: a local Embed Jobs API for the demo, the tests and the
 * benchmarks. Scripted job timelines, an auto mode for any number of ids,
 * fault injection, a webhook sink and counters, all over HTTP on loopback.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "sim.h"



struct sim_state S = { .mu = PTHREAD_MUTEX_INITIALIZER };

int64_t sim_now(void)
{
	if (S.manual_clock)
		return atomic_load(&S.manual_ms);
	return S.wall0 + (int64_t)(util_mono_ms() - S.mono0);
}

int64_t sim_wall_ms(int64_t t)
{
	/* Manual time starts at 0; a client still needs dates near today (created_at, Retry-After). */
	return S.manual_clock ? S.wall0 + t : t;
}

int sim_clock_advance(uint64_t ms, int64_t *ret_now)
{
	int64_t now = atomic_load(&S.manual_ms);

	if (!S.manual_clock)
		return -EPERM;
	if (ms > (uint64_t)(INT64_MAX - now))
		return -ERANGE;
	now += (int64_t)ms;
	atomic_store(&S.manual_ms, now);
	*ret_now = now;
	return 0;
}

char *json_str(const char *s)
{
	json_object *o = json_object_new_string(s);
	char *r = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return r;
}

void job_index(struct sim_job *j)
{
	strmap_put(&S.jobs, j->id, j);
	if (S.n_jobs == S.cap_jobs) {
		S.cap_jobs = S.cap_jobs ? S.cap_jobs * 2 : 256;
		S.job_list = xrealloc(S.job_list, S.cap_jobs * sizeof(*S.job_list));
	}
	S.job_list[S.n_jobs++] = j;
}

void sim_job_free(struct sim_job *j)
{
	if (!j)
		return;
	free(j->id);
	free(j->name_json);
	free(j->model_json);
	free(j->input_json);
	free(j->truncate_json);
	free(j->warnings_json);
	free(j->api_warning);
	free(j->answer_as);
	free(j);
}

/* FNV-1a: stable across runs, unlike the keyed hash of the maps. */
static uint32_t stable_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Auto mode: the timeline is a function of the id alone (its stable hash). */
static struct sim_job *auto_job(const char *id, int64_t now)
{
	uint32_t h = stable_hash(id);
	uint64_t span = S.auto_max_ms > S.auto_min_ms ? S.auto_max_ms - S.auto_min_ms : 0;
	uint64_t d = S.auto_min_ms + (span ? (h % (span + 1)) : 0);
	unsigned pick = (h >> 16) % 100;
	struct sim_job *j = xcalloc(1, sizeof(*j));
	char name[160];

	j->id = xstrdup(id);
	snprintf(name, sizeof(name), "auto %s", id);
	j->name_json = json_str(name);
	j->model_json = json_str("embed-english-v3.0");
	j->input_json = json_str("ds-auto-input");
	j->truncate_json = json_str("END");
	j->created_ms = now;
	j->automatic = true;
	j->steps[0] = (struct sim_step){ JOB_PROCESSING, 0 };
	if (pick < 80) {
		j->steps[1] = (struct sim_step){ JOB_COMPLETE, d };
		j->n_steps = 2;
	} else if (pick < 90) {
		j->steps[1] = (struct sim_step){ JOB_FAILED, d };
		j->n_steps = 2;
	} else {
		j->steps[1] = (struct sim_step){ JOB_CANCELLING, d > 1000 ? d - 1000 : 0 };
		j->steps[2] = (struct sim_step){ JOB_CANCELLED, d };
		j->n_steps = 3;
	}
	return j;
}

enum job_status job_status_at(const struct sim_job *j, int64_t now)
{
	int64_t el = now - j->created_ms;
	enum job_status st = JOB_PROCESSING;
	for (int i = 0; i < j->n_steps; i++)
		if (el >= (int64_t)j->steps[i].at_ms)
			st = j->steps[i].status;
	if (j->cancel_requested && !job_status_ended(st)) {
		st = now - j->cancel_ms >= (int64_t)S.cancel_delay_ms ? JOB_CANCELLED : JOB_CANCELLING;
	}
	return st;
}

/* The EmbedJob document, as the contract specifies it. */
void render_job(struct buf *b, const struct sim_job *j, int64_t now)
{
	char created[40];
	enum job_status st = job_status_at(j, now);

	util_rfc3339(sim_wall_ms(j->created_ms), created, sizeof(created));
	buf_printf(b, "{\"job_id\":\"%s\",\"name\":%s,\"status\":\"%s\",\"created_at\":\"%s\","
		   "\"input_dataset_id\":%s,", j->answer_as ? j->answer_as : j->id, j->name_json, job_status_name(st),
		   created, j->input_json);
	if (st == JOB_COMPLETE)
		buf_printf(b, "\"output_dataset_id\":\"ds-out-%s\",", j->id);
	uint32_t units = stable_hash(j->id);
	buf_printf(b, "\"model\":%s,\"truncate\":%s,\"meta\":{\"api_version\":{\"version\":\"1\"},"
		   "\"billed_units\":{\"input_tokens\":%u}%s%s", j->model_json, j->truncate_json,
		   (unsigned)(units % 100000), j->warnings_json ? ",\"warnings\":" : "",
		   j->warnings_json ? j->warnings_json : "");
	if (j->warning_flood && !j->warnings_json) {
		/* A warning never seen before, with a line break in it: the daemon must bound and escape it. */
		buf_printf(b, ",\"warnings\":[\"flood %llu\\nforged line ", (unsigned long long)j->requests);
		for (uint32_t i = 0; i < j->warning_flood; i++)
			buf_append(b, "w", 1);
		buf_append(b, "\"]", 2);
	}
	buf_append(b, "}}", 2);
}


void http_date(int64_t wall_s, char *buf, size_t len)
{
	time_t t = (time_t)wall_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

enum MHD_Result send_buf(struct MHD_Connection *c, int status, const char *ctype,
				char *data, size_t len, const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(data);
		return MHD_NO;
	}
	if (ctype)
		MHD_add_response_header(r, "Content-Type", ctype);
	if (retry_after && *retry_after)
		MHD_add_response_header(r, "Retry-After", retry_after);
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result send_json(struct MHD_Connection *c, int status, struct buf *b)
{
	char *d = b->data ? b->data : xstrdup("");
	size_t n = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return send_buf(c, status, "application/json", d, n, NULL);
}

enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string(msg));
	char *d = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return send_buf(c, status, "application/json", d, strlen(d), NULL);
}

struct trunc_ctx {
	char *data;
	size_t len;
	size_t cut;
};

static ssize_t trunc_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct trunc_ctx *t = cls;
	if (pos >= t->cut)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	size_t n = t->cut - (size_t)pos;
	if (n > max)
		n = max;
	memcpy(out, t->data + pos, n);
	return (ssize_t)n;
}

static void trunc_free(void *cls)
{
	struct trunc_ctx *t = cls;
	free(t->data);
	free(t);
}

/* Finds and consumes the first fault that applies; copies it to *ret. Caller holds S.mu. */
bool fault_take(unsigned target, const char *job, int64_t now, struct fault *ret)
{
	struct fault **pp = &S.faults;
	while (*pp) {
		struct fault *f = *pp;
		if ((f->has_until && now >= f->until_ms) || f->remaining == 0) {
			*pp = f->next;
			free(f->job);
			free(f);
			continue;
		}
		if ((f->targets & target) && (!f->job || (job && strcmp(f->job, job) == 0))) {
			if (f->remaining > 0)
				f->remaining--;
			f->hits++;
			*ret = *f;
			ret->job = NULL;
			ret->next = NULL;
			return true;
		}
		pp = &f->next;
	}
	return false;
}

void count_status(int status)
{
	if (status >= 0 && status < 600)
		S.status_count[status]++;
}

const char *const sim_ep_names[EP__MAX] = { "poll", "list", "cancel", "v2_poll", "v2_list", "v2_cancel", "dataset" };

void log_request(int64_t now, int status, const char *id, enum sim_ep ep)
{
	if (!S.log_requests)
		return;
	if (S.n_log == S.cap_log) {
		if (S.cap_log >= 4000000)
			return;
		S.cap_log = S.cap_log ? S.cap_log * 2 : 4096;
		S.log = xrealloc(S.log, S.cap_log * sizeof(*S.log));
	}
	struct log_rec *l = &S.log[S.n_log++];
	l->t_ms = now;
	l->status = status;
	l->ep = ep;
	snprintf(l->id, sizeof(l->id), "%s", id ? id : "");
}

/*
 * Applies a fault to an answer. Returns true when the fault produced the
 * answer itself (*ret set), false when the normal answer should follow.
 */
bool apply_fault(struct MHD_Connection *c, const struct fault *f, const char *id, enum MHD_Result *ret)
{
	char ra[64] = "";
	switch (f->kind) {
	case F_DELAY:
		usleep((useconds_t)(f->delay_ms * 1000));
		return false;
	case F_DROP:
		*ret = MHD_NO;
		return true;
	case F_STATUS:
		if (f->retry_after_date > 0)
			http_date(sim_wall_ms(sim_now()) / 1000 + f->retry_after_date, ra, sizeof(ra));
		else
			snprintf(ra, sizeof(ra), "%s", f->retry_after);
		{
			char *d = xstrdup("{\"message\":\"injected fault\"}");
			*ret = send_buf(c, f->status, "application/json", d, strlen(d), ra);
		}
		return true;
	case F_MALFORMED: {
		struct buf b = { 0 };
		buf_printf(&b, "{\"job_id\":\"%s\",\"status\":\"processing\",\"created_at\":", id ? id : "x");
		*ret = send_json(c, 200, &b);
		return true;
	}
	case F_CONTENT_TYPE: {
		char *d = xstrdup("<html><body><h1>Service temporarily unavailable</h1></body></html>");
		*ret = send_buf(c, 200, "text/html", d, strlen(d), NULL);
		return true;
	}
	case F_OVERSIZED: {
		size_t pad = API_BODY_MAX + 65536;
		struct buf b = { 0 };
		buf_printf(&b, "{\"job_id\":\"%s\",\"name\":\"", id ? id : "x");
		char *x = xmalloc(pad);
		memset(x, 'x', pad);
		buf_append(&b, x, pad);
		free(x);
		buf_printf(&b, "\",\"status\":\"processing\",\"created_at\":\"2024-01-01T00:00:00Z\","
			   "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\"}");
		*ret = send_json(c, 200, &b);
		return true;
	}
	case F_BOMB:
		/* The list is asked for with an empty id. */
		*ret = sim_answer_bomb(c, id && !*id, f->size);
		return true;
	case F_TRUNCATED:
	case F_TRICKLE:
		return false;   /* handled where the body is made */
	}
	return false;
}

enum MHD_Result answer_truncated(struct MHD_Connection *c, struct buf *b)
{
	struct trunc_ctx *t = xmalloc(sizeof(*t));
	t->data = b->data;
	t->len = b->len;
	t->cut = b->len / 2;
	b->data = NULL;
	struct MHD_Response *r = MHD_create_response_from_callback(t->len, 4096, trunc_reader, t, trunc_free);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

struct trickle_ctx {
	char *data;
	size_t len;
	uint64_t bytes_per_s;
	uint64_t t0_ms;         /* monotonic, when the answer was queued: the headers go then */
};

/*
 * Gives the bytes due by now at bytes_per_s, sleeping until at least one is.
 * The sleep holds only this connection's thread (the server runs one per
 * connection, which F_DELAY's sleep relies on too): other connections, the
 * admin API and the listener go on. Returning 0 instead would make this
 * thread spin, since nothing would resume it.
 */
static ssize_t trickle_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct trickle_ctx *t = cls;
	uint64_t el, due;

	if (pos >= t->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	for (;;) {
		el = util_mono_ms() - t->t0_ms;
		due = el * t->bytes_per_s / 1000;
		if (due > pos)
			break;
		/* Byte pos + 1 is due at ceil((pos + 1) * 1000 / rate) ms. */
		uint64_t at = ((pos + 1) * 1000 + t->bytes_per_s - 1) / t->bytes_per_s;
		usleep((useconds_t)((at > el ? at - el : 1) * 1000));
	}
	uint64_t n = due - pos;
	if (n > t->len - pos)
		n = t->len - pos;
	if (n > max)
		n = max;
	memcpy(out, t->data + pos, (size_t)n);
	return (ssize_t)n;
}

static void trickle_free(void *cls)
{
	struct trickle_ctx *t = cls;
	free(t->data);
	free(t);
}

enum MHD_Result answer_trickle(struct MHD_Connection *c, int status, struct buf *b, uint64_t bytes_per_s)
{
	struct trickle_ctx *t = xmalloc(sizeof(*t));
	t->data = b->data ? b->data : xstrdup("");
	t->len = b->len;
	t->bytes_per_s = bytes_per_s ? bytes_per_s : 1;
	t->t0_ms = util_mono_ms();
	b->data = NULL;
	b->len = b->cap = 0;
	/* The size is known: Content-Length, so the connection stays open for the next request. */
	struct MHD_Response *r = MHD_create_response_from_callback(t->len, 4096, trickle_reader, t, trickle_free);
	if (!r) {
		trickle_free(t);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

int check_auth(struct MHD_Connection *c)
{
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!a || strncmp(a, "Bearer ", 7) != 0)
		return 401;
	if (strcmp(a + 7, S.token) != 0)
		return 403;
	return 0;
}


void note_client(struct MHD_Connection *c)
{
	const char *n = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Client-Name");
	if (!n)
		n = "";
	struct client_name *cn = strmap_get(&S.client_names, n);
	if (!cn) {
		if (S.client_names.len >= 64)
			return;
		cn = xcalloc(1, sizeof(*cn));
		cn->name = xstrdup(n);
		strmap_put(&S.client_names, cn->name, cn);
	}
	cn->count++;
}

static struct sim_job *lookup_job(const char *id, int64_t now)
{
	struct sim_job *j = strmap_get(&S.jobs, id);
	if (!j && S.auto_prefix && strncmp(id, S.auto_prefix, strlen(S.auto_prefix)) == 0 && api_id_valid(id)) {
		j = auto_job(id, now);
		job_index(j);
	}
	return j;
}

static enum MHD_Result handle_api(struct MHD_Connection *c, const char *method, const char *url)
{
	const char *rest = url + strlen("/v1/embed-jobs");
	int64_t now = sim_now();
	struct fault f;
	enum MHD_Result ret;
	char id[API_ID_MAX + 2] = "";
	bool is_cancel = false, is_list = false;
	enum sim_ep ep;
	int status;

	if (*rest == '\0' || strcmp(rest, "/") == 0) {
		is_list = true;
	} else if (rest[0] == '/') {
		const char *p = rest + 1;
		size_t n = strcspn(p, "/");
		if (n > API_ID_MAX) {
			pthread_mutex_lock(&S.mu);
			S.req_other++;
			count_status(404);
			pthread_mutex_unlock(&S.mu);
			return send_text(c, 404, "job not found");
		}
		memcpy(id, p, n);
		id[n] = '\0';
		if (p[n] == '/') {
			if (strcmp(p + n, "/cancel") != 0) {
				pthread_mutex_lock(&S.mu);
				count_status(404);
				pthread_mutex_unlock(&S.mu);
				return send_text(c, 404, "no such endpoint");
			}
			is_cancel = true;
		}
	}
	if ((is_cancel && strcmp(method, "POST") != 0) || (!is_cancel && strcmp(method, "GET") != 0)) {
		pthread_mutex_lock(&S.mu);
		count_status(405);
		pthread_mutex_unlock(&S.mu);
		return send_text(c, 405, "method %s not allowed here", method);
	}

	ep = is_list ? EP_LIST : is_cancel ? EP_CANCEL : EP_POLL;
	pthread_mutex_lock(&S.mu);
	if (is_list)
		S.req_list++;
	else if (is_cancel)
		S.req_cancel++;
	else
		S.req_poll++;
	note_client(c);
	struct sim_job *j = id[0] ? lookup_job(id, now) : NULL;
	if (j) {
		j->requests++;
		/* Not "first_ms == 0": manual time 0 is a real time. */
		if (j->requests == 1)
			j->first_ms = now;
		j->last_ms = now;
	}
	bool faulted = fault_take(is_list ? T_LIST : T_API, id[0] ? id : NULL, now, &f);
	pthread_mutex_unlock(&S.mu);

	if (faulted && f.kind == F_DELAY) {
		apply_fault(c, &f, id, &ret);
		/* A delay fault delays; the answer is the normal one. */
		faulted = false;
	}
	if (faulted && !FAULT_SHAPES_BODY(f.kind)) {
		status = f.kind == F_STATUS ? f.status : (f.kind == F_DROP ? 0 : 200);
		pthread_mutex_lock(&S.mu);
		count_status(status);
		log_request(now, status, id, ep);
		pthread_mutex_unlock(&S.mu);
		apply_fault(c, &f, id, &ret);
		return ret;
	}

	int auth = check_auth(c);
	if (auth) {
		pthread_mutex_lock(&S.mu);
		count_status(auth);
		log_request(now, auth, id, ep);
		pthread_mutex_unlock(&S.mu);
		return send_text(c, auth, auth == 401 ? "no api key" : "invalid api token");
	}

	struct buf b = { 0 };
	char warning[256] = "";
	struct sim_answer ans = { .kind = is_list ? K_LIST : is_cancel ? K_CANCEL : K_POLL, .warning = warning };
	pthread_mutex_lock(&S.mu);
	if (is_list) {
		buf_printf(&b, "{\"embed_jobs\":[");
		for (size_t i = 0; i < S.n_jobs; i++) {
			if (i)
				buf_append(&b, ",", 1);
			render_job(&b, S.job_list[i], now);
		}
		/* The key's history: jobs that ended long ago, as a real account's list has thousands. */
		if (S.history_json.len)
			buf_append(&b, S.history_json.data + (S.n_jobs ? 0 : 1), S.history_json.len - (S.n_jobs ? 0 : 1));
		buf_printf(&b, "]}");
		status = 200;
		ans.changed_ms = sim_list_changed_at(now);
	} else if (!j) {
		status = 404;
	} else if (is_cancel) {
		if (job_status_ended(job_status_at(j, now))) {
			status = 400;
		} else {
			if (!j->cancel_requested) {
				j->cancel_requested = true;
				j->cancel_ms = now;
			}
			buf_printf(&b, "{}");
			status = 200;
		}
	} else {
		render_job(&b, j, now);
		status = 200;
		ans.changed_ms = sim_job_changed_at(j, now);
		if (j->api_warning)
			snprintf(warning, sizeof(warning), "%s", j->api_warning);
	}
	if (!(faulted && FAULT_SHAPES_BODY(f.kind)))
		status = sim_answer_check(c, status, &b, &ans);
	if (faulted && f.kind == F_TRICKLE && status == 200) {
		/* Sent as it is, uncompressed: counted here, as sim_answer_send would. */
		S.bytes_sent[ans.kind] += b.len;
		S.bytes_identity[ans.kind] += b.len;
	}
	count_status(status);
	log_request(now, status, id, ep);
	pthread_mutex_unlock(&S.mu);

	if (status == 404) {
		buf_free(&b);
		return send_text(c, 404, "embed job %s not found", id);
	}
	if (status == 400) {
		buf_free(&b);
		return send_text(c, 400, "embed job %s has already ended", id);
	}
	if (faulted && f.kind == F_TRUNCATED)
		return answer_truncated(c, &b);
	if (faulted && f.kind == F_TRICKLE)
		return answer_trickle(c, status, &b, f.bytes_per_s);
	return sim_answer_send(c, status, &b, &ans);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct req *rq = *con_cls;

	if (!rq) {
		/* First call: only headers are in. Answering now would close the connection. */
		rq = xcalloc(1, sizeof(*rq));
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		if (rq->body.len + *upload_size > SIM_UPLOAD_MAX)
			rq->too_big = true;
		else
			buf_append(&rq->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (strncmp(url, "/v1/embed-jobs", 14) == 0 && (url[14] == '\0' || url[14] == '/'))
		return handle_api(c, method, url);
	if (strncmp(url, "/_sim/", 6) == 0)
		return handle_admin(c, method, url, rq);
	/* v2 Batches and Datasets live in sim_v2.c. */
	if (strncmp(url, "/v2/batches", 11) == 0 && (url[11] == '\0' || url[11] == '/'))
		return sim_v2_batches(c, method, url);
	if (strncmp(url, "/v1/datasets/", 13) == 0)
		return sim_v2_dataset(c, method, url);
	pthread_mutex_lock(&S.mu);
	S.req_other++;
	count_status(404);
	pthread_mutex_unlock(&S.mu);
	return send_text(c, 404, "no such endpoint: %s", url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	struct req *rq = *con_cls;
	if (rq) {
		buf_free(&rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	pthread_mutex_lock(&S.mu);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		S.conn_opened++;
		if (++S.conn_current > S.conn_peak)
			S.conn_peak = S.conn_current;
	} else if (S.conn_current) {
		S.conn_current--;
	}
	pthread_mutex_unlock(&S.mu);
}

/* A whole small file, NUL-terminated; NULL with errno on failure. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	struct buf b = { 0 };
	char chunk[4096];
	size_t n;
	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	if (!b.data)
		buf_append(&b, "", 0);
	return b.data;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: embedwatch-sim [OPTIONS]\n"
		"A local Embed Jobs API for embedwatch's demo, tests and benchmarks.\n\n"
		"  -p, --port N           port on 127.0.0.1 (0: any free port; default 0)\n"
		"  -f, --port-file FILE   write the bound port to FILE once listening\n"
		"  -t, --token TOKEN      the API key it accepts (default: test-key)\n"
		"  -a, --auto PREFIX      answer any id starting with PREFIX with a timeline derived from the id\n"
		"      --auto-min DUR     shortest auto timeline (default 10s)\n"
		"      --auto-max DUR     longest auto timeline (default 60s)\n"
		"      --cancel-delay DUR cancelling -> cancelled after a cancel request (default 2s)\n"
		"      --sink-status N    status the webhook sink answers (default 200)\n"
		"      --no-log           do not keep the per-request log (/_sim/log)\n"
		"      --history N        the list also holds N jobs that ended long ago (hist-<uuid>, deterministic)\n"
		"      --no-gzip          never compress (default: gzip when Accept-Encoding allows it)\n"
		"      --gzip-level N     zlib level 1 (fast) to 9 (small), default 6\n"
		"      --etag[=WHICH]     validators on the list and per-id answers, 304 to a matching If-None-Match or\n"
		"                         If-Modified-Since; WHICH: both (default), etag, last-modified\n"
		"      --tls-cert FILE    serve HTTPS with this PEM certificate (chain) ...\n"
		"      --tls-key FILE     ... and this PEM private key\n"
		"      --clock MODE       real (default): timelines follow the wall clock; manual: the clock starts\n"
		"                         at 0 and moves only by POST /_sim/clock {\"advance\":\"2s\"} (or \"advance_ms\")\n"
		"      --v2-history N     the v2 list also holds N batches that ended long ago (hb-0000000 ...)\n"
		"      --v2-order DIR     desc (default): GET /v2/batches lists the newest first; asc: the oldest\n"
		"      --dataset-parts N  parts of each dataset GET /v1/datasets/{id} serves (default 2)\n"
		"  -h, --help             this text\n\n"
		"API:   GET /v1/embed-jobs/{id}, GET /v1/embed-jobs, POST /v1/embed-jobs/{id}/cancel,\n"
		"       GET /v2/batches/{id}, GET /v2/batches, POST /v2/batches/{id}:cancel, GET /v1/datasets/{id}\n"
		"Admin: POST /_sim/jobs, GET /_sim/jobs/{id}, POST /_sim/batches, GET /_sim/batches/{id},\n"
		"       POST|DELETE /_sim/faults, GET /_sim/stats,\n"
		"       GET /_sim/log, POST /_sim/sink/..., GET|DELETE /_sim/sink, POST /_sim/reset,\n"
		"       GET|POST /_sim/clock\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "token", required_argument, NULL, 't' },
		{ "auto", required_argument, NULL, 'a' },
		{ "auto-min", required_argument, NULL, 1 },
		{ "auto-max", required_argument, NULL, 2 },
		{ "cancel-delay", required_argument, NULL, 3 },
		{ "sink-status", required_argument, NULL, 4 },
		{ "no-log", no_argument, NULL, 5 },
		{ "tls-cert", required_argument, NULL, 6 },
		{ "history", required_argument, NULL, 8 },
		{ "tls-key", required_argument, NULL, 7 },
		{ "clock", required_argument, NULL, 9 },
		{ "no-gzip", no_argument, NULL, 20 },
		{ "gzip-level", required_argument, NULL, 21 },
		{ "etag", optional_argument, NULL, 22 },
		{ "v2-history", required_argument, NULL, SIM_OPT_V2_HISTORY },
		{ "v2-order", required_argument, NULL, SIM_OPT_V2_ORDER },
		{ "dataset-parts", required_argument, NULL, SIM_OPT_DATASET_PARTS },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned port = 0;
	const char *port_file = NULL, *tls_cert = NULL, *tls_key = NULL;
	int o;

	S.token = "test-key";
	S.auto_min_ms = 10000;
	S.auto_max_ms = 60000;
	S.cancel_delay_ms = 2000;
	S.sink_status = 200;
	S.log_requests = true;
	S.gzip = true;
	S.gzip_level = 6;
	while ((o = getopt_long(argc, argv, "p:f:t:a:h", opts, NULL)) != -1) {
		switch (o) {
		case 'p': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v > 65535) {
				fprintf(stderr, "embedwatch-sim: --port: expected 0 to 65535, got \"%s\"\n", optarg);
				return 2;
			}
			port = (unsigned)v;
			break;
		}
		case 'f': port_file = optarg; break;
		case 't': S.token = optarg; break;
		case 'a': S.auto_prefix = optarg; break;
		case 1:
		case 2:
		case 3: {
			uint64_t ms;
			if (config_parse_duration(optarg, &ms) < 0) {
				fprintf(stderr, "embedwatch-sim: expected a duration like 30s, got \"%s\"\n", optarg);
				return 2;
			}
			if (o == 1)
				S.auto_min_ms = ms;
			else if (o == 2)
				S.auto_max_ms = ms;
			else
				S.cancel_delay_ms = ms;
			break;
		}
		case 4: S.sink_status = atoi(optarg); break;
		case 5: S.log_requests = false; break;
		case 6: tls_cert = optarg; break;
		case 8: S.history = strtoull(optarg, NULL, 10); break;
		case 7: tls_key = optarg; break;
		case 9:
			if (strcmp(optarg, "real") == 0) {
				S.manual_clock = false;
			} else if (strcmp(optarg, "manual") == 0) {
				S.manual_clock = true;
			} else {
				fprintf(stderr, "embedwatch-sim: --clock: expected real or manual, got \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 20: S.gzip = false; break;
		case 21: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 9) {
				fprintf(stderr, "embedwatch-sim: --gzip-level: expected 1 to 9, got \"%s\"\n", optarg);
				return 2;
			}
			S.gzip_level = (int)v;
			break;
		}
		case 22:
			S.etag = true;
			if (!optarg || strcmp(optarg, "both") == 0) {
				S.etag_mode = ETAG_BOTH;
			} else if (strcmp(optarg, "etag") == 0) {
				S.etag_mode = ETAG_ONLY;
			} else if (strcmp(optarg, "last-modified") == 0) {
				S.etag_mode = ETAG_LAST_MODIFIED;
			} else {
				fprintf(stderr, "embedwatch-sim: --etag: expected both, etag or last-modified, got \"%s\"\n", optarg);
				return 2;
			}
			break;
		case SIM_OPT_V2_HISTORY:
		case SIM_OPT_V2_ORDER:
		case SIM_OPT_DATASET_PARTS:
			if (sim_v2_option(o, optarg) < 0)
				return 2;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	S.wall0 = util_wall_ms();
	S.mono0 = util_mono_ms();
	sim_history_render(S.history, 1);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	/* HTTPS: libmicrohttpd's TLS (GnuTLS), certificate and key in memory. */
	char *cert_pem = NULL, *key_pem = NULL;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls_opts[3] = { { MHD_OPTION_END, 0, NULL }, { MHD_OPTION_END, 0, NULL },
					      { MHD_OPTION_END, 0, NULL } };
	if (!!tls_cert != !!tls_key) {
		fprintf(stderr, "embedwatch-sim: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (tls_cert) {
		if (!(cert_pem = read_file(tls_cert)) || !(key_pem = read_file(tls_key))) {
			fprintf(stderr, "embedwatch-sim: cannot read %s: %s\n", cert_pem ? tls_key : tls_cert, strerror(errno));
			return 1;
		}
		flags |= MHD_USE_TLS;
		tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, cert_pem };
		tls_opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, key_pem };
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, NULL,
		MHD_OPTION_ARRAY, tls_opts,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
		MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "embedwatch-sim: cannot listen on 127.0.0.1:%u: %s\n", port, strerror(errno));
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = info ? info->port : port;
	if (port_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		FILE *pf = fopen(tmp, "w");
		if (!pf || fprintf(pf, "%u\n", bound) < 0 || fclose(pf) != 0 || rename(tmp, port_file) != 0) {
			fprintf(stderr, "embedwatch-sim: cannot write %s: %s\n", port_file, strerror(errno));
			MHD_stop_daemon(d);
			return 1;
		}
	}
	printf("embedwatch-sim listening on %s://127.0.0.1:%u\n", tls_cert ? "https" : "http", bound);
	fflush(stdout);

	int sig;
	do {
		sigwait(&set, &sig);
	} while (sig == SIGPIPE);
	MHD_stop_daemon(d);
	free(cert_pem);
	free(key_pem);

	clear_sink();
	clear_faults();
	for (size_t i = 0; i < S.n_jobs; i++)
		sim_job_free(S.job_list[i]);
	free(S.job_list);
	strmap_free(&S.jobs);
	sim_v2_free();
	for (size_t i = 0; i < S.client_names.cap; i++)
		if (S.client_names.slots[i].key) {
			struct client_name *cn = S.client_names.slots[i].val;
			free(cn->name);
			free(cn);
		}
	strmap_free(&S.client_names);
	free(S.sink);
	free(S.log);
	buf_free(&S.history_json);
	sim_bombs_free();
	return 0;
}
