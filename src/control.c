/*
 * The control socket: a Unix stream socket speaking one JSON object per line
 * each way. A bad request gets {"ok":false,"error":"..."}; the connection and
 * the daemon go on. A wait is answered when its jobs or batch have ended.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlproto.h"
#include "ew.h"
#include "log.h"
#include "util.h"

#define CONTROL_LINE_MAX (1024 * 1024)
#define CONTROL_WRITE_MAX (64 * 1024 * 1024)
#define CONTROL_MAX_CLIENTS 256

struct client {
	struct client *next;
	struct control *ctl;
	uv_pipe_t pipe;
	struct buf in;
	bool closing;
	/* an open wait */
	bool waiting;
	char **wait_ids;
	size_t n_wait, wait_pos;
	char *wait_batch;
};

struct control {
	struct ew *ew;
	uv_pipe_t server;
	struct client *clients;
	unsigned n_clients;
	bool closed;
};

struct wreq {
	uv_write_t req;
	struct client *c;
	size_t len;
	char data[];
};

static void client_closed(uv_handle_t *h)
{
	struct client *c = h->data;
	buf_free(&c->in);
	for (size_t i = 0; i < c->n_wait; i++)
		free(c->wait_ids[i]);
	free(c->wait_ids);
	free(c->wait_batch);
	free(c);
}

static void client_close(struct client *c)
{
	struct control *ctl = c->ctl;
	if (c->closing)
		return;
	c->closing = true;
	for (struct client **pp = &ctl->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	ctl->n_clients--;
	uv_close((uv_handle_t *)&c->pipe, client_closed);
}

static void on_written(uv_write_t *w, int status)
{
	free(container_of(w, struct wreq, req));
}

static void send_line(struct client *c, json_object *o)
{
	const char *s;
	size_t n;

	if (c->closing) {
		json_object_put(o);
		return;
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	n = strlen(s);
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) + n > CONTROL_WRITE_MAX) {
		/* A client that does not read its answers is dropped, not waited for. */
		log_msg(LOG_WARNING, "control: dropping a client that does not read its answers");
		json_object_put(o);
		client_close(c);
		return;
	}
	struct wreq *w = xmalloc(sizeof(*w) + n + 1);
	memcpy(w->data, s, n);
	w->data[n] = '\n';
	w->len = n + 1;
	w->c = c;
	json_object_put(o);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
		free(w);
		client_close(c);
	}
}

static void send_error(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_error(struct client *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	send_line(c, o);
}

static json_object *ok_answer(void)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static json_object *job_json(const struct job *j)
{
	json_object *o = json_object_new_object();
	char t[40];
	json_object_object_add(o, "id", json_object_new_string(j->id));
	json_object_object_add(o, "status", json_object_new_string(job_status_name((enum job_status)j->status)));
	json_object_object_add(o, "batch", j->batch ? json_object_new_string(j->batch->name) : NULL);
	util_rfc3339(j->added_ms, t, sizeof(t));
	json_object_object_add(o, "added", json_object_new_string(t));
	util_rfc3339(j->updated_ms, t, sizeof(t));
	json_object_object_add(o, "updated", json_object_new_string(t));
	return o;
}

/* Reads "ids": an array of strings. Returns the array or NULL with an error sent. */
static json_object *get_ids(struct client *c, json_object *req)
{
	json_object *ids;
	if (!json_object_object_get_ex(req, "ids", &ids) || !json_object_is_type(ids, json_type_array)) {
		send_error(c, "\"ids\" must be an array of job ids");
		return NULL;
	}
	return ids;
}

static const char *get_str(json_object *req, const char *key)
{
	return ctlproto_str(req, key);
}

static bool batch_name_valid(const char *b)
{
	size_t n = strlen(b);
	if (n == 0 || n > 128)
		return false;
	for (const char *p = b; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static void cmd_watch(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	json_object *ids = get_ids(c, req);
	const char *batch = get_str(req, "batch");
	json_object *v;
	size_t added = 0, already = 0;

	if (!ids)
		return;
	if (json_object_object_get_ex(req, "batch", &v) && v && !batch) {
		send_error(c, "\"batch\" must be a string");
		return;
	}
	if (batch && !batch_name_valid(batch)) {
		send_error(c, "batch name must be 1 to 128 printable characters");
		return;
	}
	json_object *rejected = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		json_object *e = json_object_array_get_idx(ids, i);
		const char *id = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
		if (!id || !api_id_valid(id)) {
			json_object *r = json_object_new_object();
			json_object_object_add(r, "id", id ? json_object_new_string(id) : json_object_get(e));
			json_object_object_add(r, "error", json_object_new_string(
				"invalid job id: expected 1 to 128 characters of A-Z a-z 0-9 _ -"));
			json_object_array_add(rejected, r);
			continue;
		}
		if (watch_add(ew, id, batch) > 0)
			added++;
		else
			already++;
	}
	/* Accepted means durable: commit before answering (a failed commit is retried from memory). */
	watch_flush(ew);
	json_object *o = ok_answer();
	json_object_object_add(o, "added", json_object_new_int64((int64_t)added));
	json_object_object_add(o, "already", json_object_new_int64((int64_t)already));
	json_object_object_add(o, "rejected", rejected);
	send_line(c, o);
}

static void cmd_unwatch(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	json_object *ids = get_ids(c, req);
	size_t removed = 0;

	if (!ids)
		return;
	json_object *unknown = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		json_object *e = json_object_array_get_idx(ids, i);
		const char *id = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
		if (watch_remove(ew, id) == 0)
			removed++;
		else
			json_object_array_add(unknown, json_object_new_string(id));
	}
	watch_flush(ew);
	json_object *o = ok_answer();
	json_object_object_add(o, "removed", json_object_new_int64((int64_t)removed));
	json_object_object_add(o, "unknown", unknown);
	send_line(c, o);
}

struct list_ctx {
	json_object *arr;
	int status;
	const char *batch;
	int64_t limit;
};

static void list_one(const char *k, void *v, void *arg)
{
	struct list_ctx *l = arg;
	struct job *j = v;
	if (l->status >= 0 && j->status != l->status)
		return;
	if (l->batch && (!j->batch || strcmp(j->batch->name, l->batch) != 0))
		return;
	if (l->limit >= 0 && (int64_t)json_object_array_length(l->arr) >= l->limit)
		return;
	json_object_array_add(l->arr, job_json(j));
}

static int cmp_jobs(const void *a, const void *b)
{
	json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b, *ix, *iy;
	json_object_object_get_ex(x, "id", &ix);
	json_object_object_get_ex(y, "id", &iy);
	return strcmp(json_object_get_string(ix), json_object_get_string(iy));
}

static void cmd_list(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	struct list_ctx l = { .status = -1, .batch = get_str(req, "batch"), .limit = -1 };
	const char *st = get_str(req, "status");
	json_object *v;

	if (st) {
		l.status = job_status_from_name(st);
		if (l.status < 0) {
			send_error(c, "unknown status \"%.64s\"; expected new, processing, cancelling, complete, cancelled, "
				   "failed, unknown, not_found, error or expired", st);
			return;
		}
	}
	if (json_object_object_get_ex(req, "limit", &v))
		l.limit = json_object_get_int64(v);
	l.arr = json_object_new_array();
	strmap_each(&ew->jobs.jobs, list_one, &l);
	json_object_array_sort(l.arr, cmp_jobs);
	json_object *o = ok_answer();
	json_object_object_add(o, "jobs", l.arr);
	send_line(c, o);
}

static int show_event(const char *id, const char *type, int64_t ts, void *arg)
{
	json_object *e = json_object_new_object();
	char t[40];
	util_rfc3339(ts, t, sizeof(t));
	json_object_object_add(e, "id", json_object_new_string(id));
	json_object_object_add(e, "type", json_object_new_string(type));
	json_object_object_add(e, "timestamp", json_object_new_string(t));
	json_object_array_add(arg, e);
	return 0;
}

static void cmd_show(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	const char *id = get_str(req, "id");
	struct job *j;

	if (!id || !api_id_valid(id)) {
		send_error(c, "\"id\" must be a valid job id");
		return;
	}
	j = jobtable_get(&ew->jobs, id);
	if (!j) {
		send_error(c, "job %s is not watched", id);
		return;
	}
	json_object *jo = job_json(j);
	json_object_object_add(jo, "poll_interval_ms", json_object_new_int64(j->interval));
	if (j->heap_idx != JOB_NOT_QUEUED)
		json_object_object_add(jo, "next_poll_in_ms", json_object_new_int64(
			j->due > ew_now(ew) ? (int64_t)(j->due - ew_now(ew)) : 0));
	json_object_object_add(jo, "failed_polls_in_a_row", json_object_new_int(j->fail_run));
	char *snap = store_get_snapshot(ew->store, id);
	json_object_object_add(jo, "last_seen", snap ? json_tokener_parse(snap) : NULL);
	free(snap);
	json_object *events = json_object_new_array();
	store_job_events(ew->store, id, show_event, events);
	json_object_object_add(jo, "events", events);
	json_object *o = ok_answer();
	json_object_object_add(o, "job", jo);
	send_line(c, o);
}

static void cmd_status(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	json_object *s = json_object_new_object();
	json_object *by = json_object_new_object();
	char line[512];

	for (int i = 0; i < JOB__MAX; i++)
		if (ew->jobs.counts[i])
			json_object_object_add(by, job_status_name((enum job_status)i), json_object_new_int64((int64_t)ew->jobs.counts[i]));
	json_object_object_add(s, "jobs", json_object_new_int64((int64_t)ew->jobs.jobs.len));
	json_object_object_add(s, "by_status", by);
	json_object_object_add(s, "batches", json_object_new_int64((int64_t)ew->jobs.batches.len));
	json_object_object_add(s, "polls_in_flight", json_object_new_int(ew->poller.in_flight));
	json_object_object_add(s, "deliveries_pending", json_object_new_int(hooks_pending(ew)));
	json_object_object_add(s, "hooks_running", json_object_new_int(hooks_running(ew)));
	static const char *const pauses[] = { "none", "rate-limited", "auth", "bad-base-url" };
	json_object_object_add(s, "paused", json_object_new_string(pauses[ew->poller.pause]));
	json_object_object_add(s, "request_rate_per_s", json_object_new_double(sched_bucket_rate(&ew->poller.bucket)));
	json_object_object_add(s, "state_db_ok", json_object_new_boolean(!ew->store_failing));
	json_object_object_add(s, "uptime_s", json_object_new_int64((int64_t)(util_wall_ms() - (int64_t)ew->m.start_ms) / 1000));
	json_object_object_add(s, "polls", json_object_new_int64((int64_t)ew->m.polls));
	json_object_object_add(s, "events", json_object_new_int64((int64_t)ew->m.events));
	json_object_object_add(s, "version", json_object_new_string(PACKAGE_VERSION));
	ew_status_line(ew, line, sizeof(line));
	json_object_object_add(s, "summary", json_object_new_string(line));
	json_object *o = ok_answer();
	json_object_object_add(o, "status", s);
	send_line(c, o);
}

static void cmd_metrics(struct client *c, json_object *req)
{
	struct buf b = { 0 };
	ew_metrics_text(c->ctl->ew, &b);
	json_object *o = ok_answer();
	json_object_object_add(o, "text", json_object_new_string(b.data ? b.data : ""));
	buf_free(&b);
	send_line(c, o);
}

struct batches_ctx {
	json_object *arr;
};

static void batch_one(const char *k, void *v, void *arg)
{
	struct batch *b = v;
	json_object *o = json_object_new_object(), *counts = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(b->name));
	json_object_object_add(o, "total", json_object_new_int64(b->n_jobs));
	json_object_object_add(o, "ended", json_object_new_int64(b->n_ended));
	json_object_object_add(o, "done", json_object_new_boolean(b->fired));
	for (int i = 0; i < JOB__MAX; i++)
		if (b->counts[i])
			json_object_object_add(counts, job_status_name((enum job_status)i), json_object_new_int64(b->counts[i]));
	json_object_object_add(o, "counts", counts);
	json_object_array_add(arg, o);
}

static void cmd_batches(struct client *c, json_object *req)
{
	json_object *arr = json_object_new_array();
	strmap_each(&c->ctl->ew->jobs.batches, batch_one, arr);
	json_object *o = ok_answer();
	json_object_object_add(o, "batches", arr);
	send_line(c, o);
}

static int delivery_one(const struct store_delivery *d, void *arg)
{
	json_object *o = json_object_new_object();
	char t[40];
	json_object_object_add(o, "event_id", json_object_new_string(d->event_id));
	json_object_object_add(o, "event", json_object_new_string(d->type ? d->type : ""));
	json_object_object_add(o, "subject", json_object_new_string(d->subject ? d->subject : ""));
	json_object_object_add(o, "hook", json_object_new_string(d->hook));
	json_object_object_add(o, "state", json_object_new_string(d->state));
	json_object_object_add(o, "attempts", json_object_new_int((int)d->attempts));
	json_object_object_add(o, "last_error", d->last_error ? json_object_new_string(d->last_error) : NULL);
	util_rfc3339(d->updated_ms, t, sizeof(t));
	json_object_object_add(o, "updated", json_object_new_string(t));
	if (strcmp(d->state, "pending") == 0) {
		util_rfc3339(d->next_ms, t, sizeof(t));
		json_object_object_add(o, "next_attempt", json_object_new_string(t));
	}
	json_object_array_add(arg, o);
	return json_object_array_length(arg) >= 10000;
}

static void cmd_deliveries(struct client *c, json_object *req)
{
	const char *state = get_str(req, "state");
	if (state && strcmp(state, "pending") && strcmp(state, "dead") && strcmp(state, "done")) {
		send_error(c, "unknown delivery state \"%.32s\"; expected pending, dead or done", state);
		return;
	}
	/* Make the answer current: write what this turn changed first. */
	watch_flush(c->ctl->ew);
	json_object *arr = json_object_new_array();
	store_each_delivery(c->ctl->ew->store, state, delivery_one, arr);
	json_object *o = ok_answer();
	json_object_object_add(o, "deliveries", arr);
	send_line(c, o);
}

static void cmd_redeliver(struct client *c, json_object *req)
{
	const char *id = get_str(req, "event_id");
	const char *hook = get_str(req, "hook");
	char err[256];
	if (!id) {
		send_error(c, "\"event_id\" is required");
		return;
	}
	int n = hooks_redeliver(c->ctl->ew, id, hook, err, sizeof(err));
	if (n < 0) {
		send_error(c, "%s", err);
		return;
	}
	watch_flush(c->ctl->ew);
	json_object *o = ok_answer();
	json_object_object_add(o, "queued", json_object_new_int(n));
	send_line(c, o);
}

/* Answers a wait when everything it waits for has ended. Returns true if answered. */
static bool wait_check(struct client *c)
{
	struct ew *ew = c->ctl->ew;
	json_object *jobs;

	if (c->wait_batch) {
		struct batch *b = jobtable_get_batch(&ew->jobs, c->wait_batch);
		if (b && b->n_ended < b->n_jobs)
			return false;
		jobs = json_object_new_array();
		for (size_t i = 0; b && i < ew->jobs.jobs.cap; i++) {
			struct strmap_slot *s = &ew->jobs.jobs.slots[i];
			if (s->key && ((struct job *)s->val)->batch == b)
				json_object_array_add(jobs, job_json(s->val));
		}
	} else {
		while (c->wait_pos < c->n_wait) {
			struct job *j = jobtable_get(&ew->jobs, c->wait_ids[c->wait_pos]);
			if (j && !watch_job_ended(j))
				return false;
			c->wait_pos++;
		}
		jobs = json_object_new_array();
		for (size_t i = 0; i < c->n_wait; i++) {
			struct job *j = jobtable_get(&ew->jobs, c->wait_ids[i]);
			if (j) {
				json_object_array_add(jobs, job_json(j));
			} else {
				json_object *o = json_object_new_object();
				json_object_object_add(o, "id", json_object_new_string(c->wait_ids[i]));
				json_object_object_add(o, "status", json_object_new_string("unwatched"));
				json_object_array_add(jobs, o);
			}
		}
	}
	json_object *o = ok_answer();
	json_object_object_add(o, "jobs", jobs);
	c->waiting = false;
	send_line(c, o);
	return true;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void process(struct client *c);

static void cmd_wait(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	const char *batch = get_str(req, "batch");
	json_object *ids;

	if (batch) {
		if (!jobtable_get_batch(&ew->jobs, batch)) {
			send_error(c, "no batch named \"%.128s\"", batch);
			return;
		}
		c->wait_batch = xstrdup(batch);
	} else {
		if (!(ids = get_ids(c, req)))
			return;
		size_t n = json_object_array_length(ids);
		if (n == 0) {
			send_error(c, "wait needs job ids or a batch");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			const char *id = json_object_get_string(json_object_array_get_idx(ids, i));
			if (!id || !jobtable_get(&ew->jobs, id)) {
				send_error(c, "job %.140s is not watched; watch it first", id ? id : "(not a string)");
				return;
			}
		}
		c->wait_ids = xcalloc(n, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			c->wait_ids[i] = xstrdup(json_object_get_string(json_object_array_get_idx(ids, i)));
		c->n_wait = n;
		c->wait_pos = 0;
	}
	c->waiting = true;
	if (!wait_check(c))
		uv_read_stop((uv_stream_t *)&c->pipe);    /* one request at a time: the rest waits */
}

static void wait_clear(struct client *c)
{
	for (size_t i = 0; i < c->n_wait; i++)
		free(c->wait_ids[i]);
	free(c->wait_ids);
	free(c->wait_batch);
	c->wait_ids = NULL;
	c->wait_batch = NULL;
	c->n_wait = c->wait_pos = 0;
}

void control_job_ended(struct ew *ew, struct job *j)
{
	struct control *ctl = ew->control;
	if (!ctl)
		return;
	for (struct client *c = ctl->clients, *next; c; c = next) {
		next = c->next;
		if (c->waiting && wait_check(c)) {
			wait_clear(c);
			uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
			process(c);
		}
	}
}

static void (*const handlers[CTL__MAX])(struct client *c, json_object *req) = {
	[CTL_WATCH] = cmd_watch, [CTL_UNWATCH] = cmd_unwatch, [CTL_LIST] = cmd_list, [CTL_SHOW] = cmd_show,
	[CTL_STATUS] = cmd_status, [CTL_METRICS] = cmd_metrics, [CTL_WAIT] = cmd_wait, [CTL_BATCHES] = cmd_batches,
	[CTL_DELIVERIES] = cmd_deliveries, [CTL_REDELIVER] = cmd_redeliver,
};

static void handle_line(struct client *c, const char *line, size_t len)
{
	enum ctl_cmd cmd;
	json_object *req;
	char err[256];

	if (ctlproto_parse(line, len, &cmd, &req, err, sizeof(err)) < 0) {
		send_error(c, "%s", err);
		return;
	}
	handlers[cmd](c, req);
	json_object_put(req);
}

static void process(struct client *c)
{
	size_t start = 0;
	while (!c->closing && !c->waiting) {
		char *nl = memchr(c->in.data + start, '\n', c->in.len - start);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (c->in.data + start));
		if (len > CONTROL_LINE_MAX) {
			send_error(c, "request longer than %d bytes; send fewer ids per request", CONTROL_LINE_MAX);
			client_close(c);
			return;
		}
		if (len > 0)
			handle_line(c, c->in.data + start, len);
		start += len + 1;
	}
	if (c->closing)
		return;
	memmove(c->in.data, c->in.data + start, c->in.len - start);
	c->in.len -= start;
	c->in.data[c->in.len] = '\0';
	if (c->in.len > CONTROL_LINE_MAX) {
		send_error(c, "request longer than %d bytes; send fewer ids per request", CONTROL_LINE_MAX);
		client_close(c);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *c = h->data;
	if (c->in.cap - c->in.len < 65536 + 1) {
		c->in.cap = c->in.cap ? c->in.cap * 2 : 65536 * 2;
		c->in.data = xrealloc(c->in.data, c->in.cap);
	}
	buf->base = c->in.data + c->in.len;
	buf->len = c->in.cap - c->in.len - 1;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct client *c = s->data;
	if (n < 0) {
		client_close(c);
		return;
	}
	c->in.len += (size_t)n;
	c->in.data[c->in.len] = '\0';
	process(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct control *ctl = server->data;
	if (status < 0)
		return;
	struct client *c = xcalloc(1, sizeof(*c));
	c->ctl = ctl;
	uv_pipe_init(ctl->ew->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		uv_close((uv_handle_t *)&c->pipe, client_closed);
		return;
	}
	c->next = ctl->clients;
	ctl->clients = c;
	ctl->n_clients++;
	if (ctl->n_clients > CONTROL_MAX_CLIENTS) {
		send_error(c, "too many control connections");
		client_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* Refuses to take over a socket another live daemon listens on; removes a stale one. */
static int clear_stale(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "control socket %s exists and is not a socket", path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		snprintf(err, errlen, "control socket %s: another embedwatchd is listening on it", path);
		return -EADDRINUSE;
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
	return 0;
}

int control_init(struct ew *ew, char *err, size_t errlen)
{
	struct control *ctl = xcalloc(1, sizeof(*ctl));
	const char *path = ew->cfg.control_socket;
	int r;

	ctl->ew = ew;
	ew->control = ctl;
	uv_pipe_init(ew->loop, &ctl->server, 0);
	ctl->server.data = ctl;
	if ((r = clear_stale(path, err, errlen)) < 0)
		return r;
	mode_t old = umask(0777 & ~ew->cfg.control_mode);
	r = uv_pipe_bind(&ctl->server, path);
	umask(old);
	if (r < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(r));
		return r;
	}
	chmod(path, ew->cfg.control_mode);
	if ((r = uv_listen((uv_stream_t *)&ctl->server, 64, on_connection)) < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(r));
		return r;
	}
	return 0;
}

static void server_closed(uv_handle_t *h)
{
	free(h->data);
}

void control_close(struct ew *ew)
{
	struct control *ctl = ew->control;
	if (!ctl)
		return;
	while (ctl->clients)
		client_close(ctl->clients);
	unlink(ew->cfg.control_socket);
	ew->control = NULL;
	uv_close((uv_handle_t *)&ctl->server, server_closed);
}
