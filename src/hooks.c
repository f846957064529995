/*
 * Deliveries: each committed event becomes one delivery per matching hook.
 * A delivery is retried with backoff until it succeeds or runs out of
 * attempts, and its state is written with the next commit. Exec hooks run
 * without a shell in their own process group; webhooks are signed POSTs
 * through the same curl multi as polling.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ew.h"
#include "log.h"
#include "sign.h"
#include "util.h"

#define KILL_GRACE_MS 5000
#define PIPE_LINGER_MS 1000

struct payload {
	unsigned refs;
	size_t len;
	char data[];
};

struct hook_rt;

struct delivery {
	struct delivery *next;
	struct hook_rt *hook;
	struct payload *payload;
	char event_id[37];
	enum ew_event type;
	char *subject;
	char *batch;
	unsigned attempts;          /* finished attempts */
	int64_t next_ms;            /* wall clock of the next attempt */
};

struct hook_rt {
	struct hook_rt *next;
	char *name;
	const struct ew_hook *cfg;  /* NULL while the config has no hook of that name */
	struct sign_secret secrets[SIGN_MAX_SECRETS];
	size_t n_secrets;
	struct delivery *ready_head, *ready_tail;
	unsigned running;
	bool disabled;              /* a webhook answered 410: off until reload */
};

struct run {
	struct run *next;
	struct hooks *hs;
	struct delivery *d;
	uint64_t started;
	/* exec */
	uv_process_t proc;
	uv_pipe_t in, out, err;
	uv_timer_t timer;
	uv_write_t wr;
	int open_handles;
	bool exited, timed_out, killed;
	int64_t exit_status;
	int term_signal;
	struct buf output;
	/* webhook */
	struct http_req req;
	struct curl_slist *headers;
	bool is_webhook;
};

struct dupdate {
	char event_id[37];
	char *hook;
	const char *state;
	unsigned attempts;
	int64_t next_ms;
	char *last_error;
	int64_t updated_ms;
};

struct hooks {
	struct ew *ew;
	struct hook_rt *list;
	struct delivery *delayed;
	uv_timer_t delay_timer;
	struct run *runs;
	unsigned running;
	unsigned pending;           /* deliveries in memory: queued, delayed or running */
	struct dupdate *upd;
	size_t n_upd, cap_upd, n_flushed;
	bool stopping;
	uv_timer_t grace_timer;
	int open_timers;
	char readbuf[65536];
};

static void pump(struct hooks *hs);

static struct payload *payload_new(const char *s)
{
	size_t n = strlen(s);
	struct payload *p = xmalloc(sizeof(*p) + n + 1);
	p->refs = 1;
	p->len = n;
	memcpy(p->data, s, n + 1);
	return p;
}

static void payload_unref(struct payload *p)
{
	if (p && --p->refs == 0)
		free(p);
}

static void delivery_free(struct hooks *hs, struct delivery *d)
{
	payload_unref(d->payload);
	free(d->subject);
	free(d->batch);
	free(d);
	hs->pending--;
}

static struct hook_rt *hook_find(struct hooks *hs, const char *name)
{
	for (struct hook_rt *h = hs->list; h; h = h->next)
		if (strcmp(h->name, name) == 0)
			return h;
	return NULL;
}

static struct hook_rt *hook_get(struct hooks *hs, const char *name)
{
	struct hook_rt *h = hook_find(hs, name);
	if (!h) {
		h = xcalloc(1, sizeof(*h));
		h->name = xstrdup(name);
		/* Append, to keep config order for round-robin. */
		struct hook_rt **pp = &hs->list;
		while (*pp)
			pp = &(*pp)->next;
		*pp = h;
	}
	return h;
}

static void record(struct hooks *hs, struct delivery *d, const char *state, const char *error)
{
	if (hs->n_upd == hs->cap_upd) {
		hs->cap_upd = hs->cap_upd ? hs->cap_upd * 2 : 64;
		hs->upd = xrealloc(hs->upd, hs->cap_upd * sizeof(*hs->upd));
	}
	struct dupdate *u = &hs->upd[hs->n_upd++];
	memcpy(u->event_id, d->event_id, sizeof(u->event_id));
	u->hook = xstrdup(d->hook->name);
	u->state = state;
	u->attempts = d->attempts;
	u->next_ms = d->next_ms;
	u->last_error = error ? xstrdup(error) : NULL;
	u->updated_ms = util_wall_ms();
	hs->ew->hooks_dirty = true;
}

int hooks_flush(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	for (size_t i = 0; i < hs->n_upd; i++) {
		struct dupdate *u = &hs->upd[i];
		int r = store_put_delivery(ew->store, u->event_id, u->hook, u->state, u->attempts, u->next_ms,
					   u->last_error, u->updated_ms);
		if (r < 0)
			return r;
	}
	hs->n_flushed = hs->n_upd;
	return 0;
}

void hooks_committed(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	if (hs->n_flushed == 0)
		return;
	for (size_t i = 0; i < hs->n_flushed; i++) {
		free(hs->upd[i].hook);
		free(hs->upd[i].last_error);
	}
	memmove(hs->upd, hs->upd + hs->n_flushed, (hs->n_upd - hs->n_flushed) * sizeof(*hs->upd));
	hs->n_upd -= hs->n_flushed;
	hs->n_flushed = 0;
	ew->hooks_dirty = hs->n_upd > 0;
}

static void ready_push(struct hook_rt *h, struct delivery *d)
{
	d->next = NULL;
	if (h->ready_tail)
		h->ready_tail->next = d;
	else
		h->ready_head = d;
	h->ready_tail = d;
}

static struct delivery *ready_pop(struct hook_rt *h)
{
	struct delivery *d = h->ready_head;
	if (d) {
		h->ready_head = d->next;
		if (!h->ready_head)
			h->ready_tail = NULL;
		d->next = NULL;
	}
	return d;
}

static void on_delay_timer(uv_timer_t *t);

static void arm_delayed(struct hooks *hs)
{
	int64_t first = INT64_MAX;
	for (struct delivery *d = hs->delayed; d; d = d->next)
		if (d->next_ms < first)
			first = d->next_ms;
	if (first == INT64_MAX || hs->stopping) {
		uv_timer_stop(&hs->delay_timer);
		return;
	}
	int64_t wait = first - util_wall_ms();
	uv_timer_start(&hs->delay_timer, on_delay_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void on_delay_timer(uv_timer_t *t)
{
	struct hooks *hs = container_of(t, struct hooks, delay_timer);
	int64_t now = util_wall_ms();
	struct delivery **pp = &hs->delayed;
	while (*pp) {
		struct delivery *d = *pp;
		if (d->next_ms <= now) {
			*pp = d->next;
			ready_push(d->hook, d);
		} else {
			pp = &d->next;
		}
	}
	arm_delayed(hs);
	pump(hs);
}

static void enqueue(struct hooks *hs, struct delivery *d)
{
	if (d->next_ms > util_wall_ms()) {
		d->next = hs->delayed;
		hs->delayed = d;
		arm_delayed(hs);
	} else {
		ready_push(d->hook, d);
	}
}

static struct delivery *delivery_new(struct hooks *hs, struct hook_rt *h, const char *event_id, enum ew_event type,
				     const char *subject, const char *batch, struct payload *p)
{
	struct delivery *d = xcalloc(1, sizeof(*d));
	d->hook = h;
	snprintf(d->event_id, sizeof(d->event_id), "%s", event_id);
	d->type = type;
	d->subject = xstrdup(subject ? subject : "");
	d->batch = batch ? xstrdup(batch) : NULL;
	d->payload = p;
	p->refs++;
	hs->pending++;
	return d;
}

void hooks_event(struct ew *ew, const char *event_id, enum ew_event type, const char *subject,
		 const char *batch, const char *payload)
{
	struct hooks *hs = ew->hooks;
	struct payload *p = NULL;

	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		const struct ew_hook *c = &ew->cfg.hooks[i];
		if (!(c->on_mask & (1u << type)))
			continue;
		if (!p)
			p = payload_new(payload);
		struct delivery *d = delivery_new(hs, hook_get(hs, c->name), event_id, type, subject, batch, p);
		d->next_ms = util_wall_ms();
		enqueue(hs, d);
	}
	payload_unref(p);
	pump(hs);
}

void hooks_restore(struct ew *ew, const struct store_delivery *sd)
{
	struct hooks *hs = ew->hooks;
	enum ew_event type = job_event_parse(sd->type ? sd->type : "");
	struct hook_rt *h = hook_find(hs, sd->hook);

	if (!h || !h->cfg) {
		log_ctx(LOG_WARNING, &((struct log_ctx){ .event_id = sd->event_id, .hook = sd->hook }),
			"pending delivery of %s for hook \"%s\", which the config no longer has: kept in the state "
			"database until the hook comes back", sd->event_id, sd->hook);
		return;
	}
	struct payload *p = payload_new(sd->payload ? sd->payload : "{}");
	struct delivery *d = delivery_new(hs, h, sd->event_id, type, sd->subject, sd->batch, p);
	payload_unref(p);
	d->attempts = sd->attempts;
	d->next_ms = sd->next_ms;
	enqueue(hs, d);
	pump(hs);
}

/* Retry delay after `attempts` failed attempts, jittered by 10 %. */
static uint64_t retry_delay(const struct ew_hook *c, unsigned attempts)
{
	size_t i = attempts ? attempts - 1 : 0;
	if (i >= c->n_retry)
		i = c->n_retry - 1;
	return sched_jitter(c->retry_ms[i], 0.1, util_rand_unit());
}

/* One attempt ended: done, retried later, or dead. */
static void finish(struct hooks *hs, struct delivery *d, bool ok, bool permanent, uint64_t min_delay,
		   const char *error, uint64_t ms)
{
	struct hook_rt *h = d->hook;
	struct log_ctx ctx = { .event_id = d->event_id, .event = job_event_name(d->type), .hook = h->name,
			       .job_id = d->type == EV_BATCH_DONE ? NULL : d->subject };

	h->running--;
	hs->running--;
	d->attempts++;
	if (ok) {
		hs->ew->m.deliveries_ok++;
		log_ctx(LOG_INFO, &ctx, "hook %s delivered %s (%s %s) in %llu ms, attempt %u", h->name, d->event_id,
			job_event_name(d->type), d->subject, (unsigned long long)ms, d->attempts);
		record(hs, d, "done", NULL);
		delivery_free(hs, d);
		return;
	}
	hs->ew->m.deliveries_failed++;
	unsigned max = h->cfg ? h->cfg->max_attempts : 1;
	if (permanent || d->attempts >= max) {
		hs->ew->m.deliveries_dead++;
		log_ctx(LOG_ERR, &ctx, "hook %s gave up on %s (%s %s) after %u attempts: %s", h->name, d->event_id,
			job_event_name(d->type), d->subject, d->attempts, error);
		record(hs, d, "dead", error);
		delivery_free(hs, d);
		return;
	}
	uint64_t delay = retry_delay(h->cfg, d->attempts);
	if (min_delay > delay)
		delay = min_delay;
	d->next_ms = util_wall_ms() + (int64_t)delay;
	log_ctx(LOG_WARNING, &ctx, "hook %s failed on %s (attempt %u of %u): %s; retrying in %llu ms", h->name,
		d->event_id, d->attempts, max, error, (unsigned long long)delay);
	record(hs, d, "pending", error);
	enqueue(hs, d);
}

static void run_unlink(struct hooks *hs, struct run *r)
{
	for (struct run **pp = &hs->runs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			return;
		}
	}
}

/* ---- exec ---- */

static void log_output(struct run *r)
{
	struct delivery *d = r->d;
	struct log_ctx ctx = { .event_id = d->event_id, .hook = d->hook->name,
			       .job_id = d->type == EV_BATCH_DONE ? NULL : d->subject };
	char *s = r->output.data;
	int lines = 0;
	if (!s)
		return;
	for (char *line = strtok(s, "\n"); line && lines < 200; line = strtok(NULL, "\n"), lines++)
		log_ctx(LOG_INFO, &ctx, "hook %s: %s", d->hook->name, line);
}

static void exec_finished(struct run *r)
{
	struct hooks *hs = r->hs;
	struct delivery *d = r->d;
	char why[160];
	uint64_t ms = uv_now(hs->ew->loop) - r->started;

	run_unlink(hs, r);
	log_output(r);
	buf_free(&r->output);
	if (r->killed && hs->stopping) {
		/* Stopped by shutdown: not an attempt; it runs again after the restart. */
		log_ctx(LOG_NOTICE, &((struct log_ctx){ .event_id = d->event_id, .hook = d->hook->name }),
			"hook %s killed at shutdown; %s stays pending", d->hook->name, d->event_id);
		d->hook->running--;
		hs->running--;
		delivery_free(hs, d);
	} else if (r->timed_out) {
		snprintf(why, sizeof(why), "timed out after %llu ms", (unsigned long long)d->hook->cfg->timeout_ms);
		finish(hs, d, false, false, 0, why, ms);
	} else if (r->term_signal) {
		snprintf(why, sizeof(why), "killed by signal %d", r->term_signal);
		finish(hs, d, false, false, 0, why, ms);
	} else if (r->exit_status != 0) {
		snprintf(why, sizeof(why), "exit status %lld", (long long)r->exit_status);
		finish(hs, d, false, false, 0, why, ms);
	} else {
		finish(hs, d, true, false, 0, NULL, ms);
	}
	free(r);
	pump(hs);
}

static void on_run_closed(uv_handle_t *h)
{
	struct run *r = h->data;
	if (--r->open_handles == 0)
		exec_finished(r);
}

static void close_handle(struct run *r, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_run_closed);
}

/* After the exit, once both output pipes are at EOF, nothing needs the timer. */
static void maybe_done(struct run *r)
{
	if (r->exited && uv_is_closing((uv_handle_t *)&r->out) && uv_is_closing((uv_handle_t *)&r->err))
		close_handle(r, (uv_handle_t *)&r->timer);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct run *r = h->data;
	buf->base = r->hs->readbuf;
	buf->len = sizeof(r->hs->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct run *r = s->data;
	size_t cap = r->hs->ew->cfg.hook_output_max;
	if (n < 0) {
		close_handle(r, (uv_handle_t *)s);
		maybe_done(r);
		return;
	}
	if (n == 0 || cap == 0)
		return;
	/* Keep the last `cap` bytes. */
	buf_append(&r->output, buf->base, (size_t)n);
	if (r->output.len > cap) {
		size_t drop = r->output.len - cap;
		memmove(r->output.data, r->output.data + drop, cap);
		r->output.len = cap;
		r->output.data[cap] = '\0';
	}
}

static void on_run_timer(uv_timer_t *t)
{
	struct run *r = t->data;
	if (r->exited) {
		/* The hook exited but something it started holds its output open. */
		close_handle(r, (uv_handle_t *)&r->out);
		close_handle(r, (uv_handle_t *)&r->err);
		close_handle(r, (uv_handle_t *)&r->timer);
		return;
	}
	if (!r->timed_out && !r->killed) {
		r->timed_out = true;
		kill(-r->proc.pid, SIGTERM);
		uv_timer_start(&r->timer, on_run_timer, KILL_GRACE_MS, 0);
	} else {
		kill(-r->proc.pid, SIGKILL);
	}
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct run *r = p->data;
	r->exited = true;
	r->exit_status = status;
	r->term_signal = sig;
	close_handle(r, (uv_handle_t *)p);
	uv_timer_start(&r->timer, on_run_timer, PIPE_LINGER_MS, 0);
	maybe_done(r);
}

static void on_written(uv_write_t *w, int status)
{
	struct run *r = w->data;
	/* EPIPE when the hook does not read its input: not an error. */
	close_handle(r, (uv_handle_t *)&r->in);
}

static const char *event_status(const struct delivery *d)
{
	if (d->type == EV_BATCH_DONE)
		return "done";
	enum job_status st = job_event_end_status(d->type);
	return st != JOB_NONE ? job_status_name(st) : d->type == EV_CANCELLING ? "cancelling" : "";
}

static int start_exec(struct hooks *hs, struct run *r)
{
	struct delivery *d = r->d;
	const struct ew_hook *c = d->hook->cfg;
	uv_loop_t *loop = hs->ew->loop;
	char env_buf[8][320];
	char *env[9];
	uv_stdio_container_t stdio[3];
	uv_process_options_t o;

	snprintf(env_buf[0], sizeof(env_buf[0]), "PATH=/usr/local/bin:/usr/bin:/bin");
	snprintf(env_buf[1], sizeof(env_buf[1]), "EMBEDWATCH_EVENT_ID=%s", d->event_id);
	snprintf(env_buf[2], sizeof(env_buf[2]), "EMBEDWATCH_EVENT=%s", job_event_name(d->type));
	snprintf(env_buf[3], sizeof(env_buf[3]), "EMBEDWATCH_JOB_ID=%s", d->type == EV_BATCH_DONE ? "" : d->subject);
	snprintf(env_buf[4], sizeof(env_buf[4]), "EMBEDWATCH_STATUS=%s", event_status(d));
	snprintf(env_buf[5], sizeof(env_buf[5]), "EMBEDWATCH_BATCH=%s", d->batch ? d->batch : "");
	snprintf(env_buf[6], sizeof(env_buf[6]), "EMBEDWATCH_ATTEMPT=%u", d->attempts + 1);
	snprintf(env_buf[7], sizeof(env_buf[7]), "EMBEDWATCH_HOOK=%s", d->hook->name);
	for (int i = 0; i < 8; i++)
		env[i] = env_buf[i];
	env[8] = NULL;

	r->proc.data = r->in.data = r->out.data = r->err.data = r->timer.data = r->wr.data = r;
	uv_pipe_init(loop, &r->in, 0);
	uv_pipe_init(loop, &r->out, 0);
	uv_pipe_init(loop, &r->err, 0);
	uv_timer_init(loop, &r->timer);
	r->open_handles = 4;
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&r->in;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&r->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&r->err;
	memset(&o, 0, sizeof(o));
	o.file = c->argv[0];
	o.args = c->argv;
	o.env = env;
	o.cwd = "/";
	o.flags = UV_PROCESS_DETACHED;    /* setsid: its own process group, killed as one */
	o.stdio_count = 3;
	o.stdio = stdio;
	o.exit_cb = on_exit_cb;
	int e = uv_spawn(loop, &r->proc, &o);
	if (e < 0) {
		/* No process: close the pipes and the timer, then report. */
		r->exited = true;
		r->exit_status = 127;
		r->open_handles = 5;
		r->proc.pid = 0;
		uv_close((uv_handle_t *)&r->proc, on_run_closed);
		close_handle(r, (uv_handle_t *)&r->in);
		close_handle(r, (uv_handle_t *)&r->out);
		close_handle(r, (uv_handle_t *)&r->err);
		close_handle(r, (uv_handle_t *)&r->timer);
		buf_printf(&r->output, "cannot run %s: %s", c->argv[0], uv_strerror(e));
		return 0;
	}
	r->open_handles = 5;
	uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&r->err, on_alloc, on_read);
	uv_buf_t b = uv_buf_init(d->payload->data, (unsigned)d->payload->len);
	if (uv_write(&r->wr, (uv_stream_t *)&r->in, &b, 1, on_written) < 0)
		close_handle(r, (uv_handle_t *)&r->in);
	uv_timer_start(&r->timer, on_run_timer, c->timeout_ms, 0);
	return 0;
}

/* ---- webhook ---- */

static void webhook_done(struct http_req *req, void *arg)
{
	struct run *r = arg;
	struct hooks *hs = r->hs;
	struct delivery *d = r->d;
	char why[CURL_ERROR_SIZE + 64];
	uint64_t ms = uv_now(hs->ew->loop) - r->started;
	uint64_t min_delay = 0;
	bool ok = false, permanent = false;

	run_unlink(hs, r);
	if (req->result != CURLE_OK) {
		snprintf(why, sizeof(why), "%s", req->error[0] ? req->error : curl_easy_strerror(req->result));
	} else if (req->status >= 200 && req->status < 300) {
		ok = true;
		why[0] = '\0';
	} else {
		snprintf(why, sizeof(why), "HTTP %ld", req->status);
		if (req->status == 410) {
			d->hook->disabled = true;
			log_ctx(LOG_ERR, &((struct log_ctx){ .hook = d->hook->name }),
				"webhook %s answered 410 Gone: hook disabled until the next reload; its deliveries wait",
				d->hook->name);
		} else if (req->status == 429 || req->status >= 500) {
			const char *ra = http_header(req, "Retry-After");
			int64_t s;
			if (ra && api_retry_after(ra, util_wall_ms() / 1000, 86400, &s) == 0)
				min_delay = (uint64_t)s * 1000;
		} else {
			permanent = true;       /* other 4xx and any 3xx: redirects are not followed */
		}
	}
	curl_slist_free_all(r->headers);
	http_req_free(&r->req);
	if (d->hook->disabled && !ok) {
		/* Not an attempt: the endpoint is off; wait for the reload. */
		d->hook->running--;
		hs->running--;
		ready_push(d->hook, d);
	} else {
		finish(hs, d, ok, permanent, min_delay, why, ms);
	}
	free(r);
	pump(hs);
}

static int start_webhook(struct hooks *hs, struct run *r)
{
	struct delivery *d = r->d;
	struct hook_rt *h = d->hook;
	const struct ew_hook *c = h->cfg;
	char sig[SIGN_MAX_SECRETS * 64], line[SIGN_MAX_SECRETS * 64 + 64];
	int64_t ts = util_wall_ms() / 1000;

	r->is_webhook = true;
	if (http_req_init(&r->req, &hs->ew->http, 65536) < 0)
		return -ENOMEM;
	r->headers = curl_slist_append(NULL, "Content-Type: application/json");
	snprintf(line, sizeof(line), "webhook-id: %s", d->event_id);
	r->headers = curl_slist_append(r->headers, line);
	snprintf(line, sizeof(line), "webhook-timestamp: %lld", (long long)ts);
	r->headers = curl_slist_append(r->headers, line);
	if (h->n_secrets) {
		sign_header(h->secrets, h->n_secrets, d->event_id, ts, d->payload->data, d->payload->len, sig, sizeof(sig));
		snprintf(line, sizeof(line), "webhook-signature: %s", sig);
		r->headers = curl_slist_append(r->headers, line);
	}
	r->headers = curl_slist_append(r->headers, "Expect:");
	r->req.headers = r->headers;
	curl_easy_setopt(r->req.easy, CURLOPT_URL, c->url);
	curl_easy_setopt(r->req.easy, CURLOPT_POSTFIELDS, (const char *)d->payload->data);
	curl_easy_setopt(r->req.easy, CURLOPT_POSTFIELDSIZE, (long)d->payload->len);
	if (c->ca_file)
		curl_easy_setopt(r->req.easy, CURLOPT_CAINFO, c->ca_file);
	return http_submit(&r->req, (long)c->timeout_ms, webhook_done, r);
}

/* ---- scheduling of attempts ---- */

static void start(struct hooks *hs, struct delivery *d)
{
	struct run *r = xcalloc(1, sizeof(*r));
	r->hs = hs;
	r->d = d;
	r->started = uv_now(hs->ew->loop);
	d->hook->running++;
	hs->running++;
	r->next = hs->runs;
	hs->runs = r;
	int e = d->hook->cfg->type == HOOK_EXEC ? start_exec(hs, r) : start_webhook(hs, r);
	if (e < 0) {
		run_unlink(hs, r);
		if (r->is_webhook) {
			curl_slist_free_all(r->headers);
			http_req_free(&r->req);
		}
		free(r);
		finish(hs, d, false, false, 0, "cannot start the request", 0);
	}
}

static void pump(struct hooks *hs)
{
	bool progress = true;
	unsigned cap = hs->ew->cfg.hooks_max_concurrent;

	if (hs->stopping)
		return;
	/* Round-robin over the hooks so one slow hook cannot starve the others. */
	while (progress && hs->running < cap) {
		progress = false;
		for (struct hook_rt *h = hs->list; h && hs->running < cap; h = h->next) {
			if (!h->cfg || h->disabled || h->running >= h->cfg->concurrency || !h->ready_head)
				continue;
			start(hs, ready_pop(h));
			progress = true;
		}
	}
}

/* Loads the secrets of a webhook hook: secret_file, else the credential "webhook-NAME". */
static int load_secrets(struct hook_rt *h, const struct ew_hook *c)
{
	char path[4096], err[512];
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	const char *file = c->secret_file;

	h->n_secrets = 0;
	if (c->type != HOOK_WEBHOOK)
		return 0;
	if (!file && creds) {
		snprintf(path, sizeof(path), "%s/webhook-%s", creds, c->name);
		if (access(path, R_OK) == 0)
			file = path;
	}
	if (!file) {
		log_ctx(LOG_WARNING, &((struct log_ctx){ .hook = c->name }),
			"webhook %s has no secret: its deliveries are not signed", c->name);
		return 0;
	}
	int n = sign_secrets_load(file, h->secrets, SIGN_MAX_SECRETS, err, sizeof(err));
	if (n < 0) {
		log_ctx(LOG_ERR, &((struct log_ctx){ .hook = c->name }), "webhook %s: %s", c->name, err);
		return n;
	}
	h->n_secrets = (size_t)n;
	return 0;
}

void hooks_reconfigure(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	for (struct hook_rt *h = hs->list; h; h = h->next) {
		h->cfg = NULL;
		h->disabled = false;
	}
	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		struct hook_rt *h = hook_get(hs, ew->cfg.hooks[i].name);
		h->cfg = &ew->cfg.hooks[i];
		if (load_secrets(h, h->cfg) < 0)
			h->disabled = true;
	}
	pump(hs);
}

int hooks_init(struct ew *ew)
{
	struct hooks *hs = xcalloc(1, sizeof(*hs));
	hs->ew = ew;
	ew->hooks = hs;
	uv_timer_init(ew->loop, &hs->delay_timer);
	uv_timer_init(ew->loop, &hs->grace_timer);
	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		struct hook_rt *h = hook_get(hs, ew->cfg.hooks[i].name);
		h->cfg = &ew->cfg.hooks[i];
		if (load_secrets(h, h->cfg) < 0)
			return -EINVAL;
	}
	return 0;
}

struct redeliver_ctx {
	char type[64];
	char subject[300];
	char batch[300];
	bool have_batch;
	char *payload;
};

static void redeliver_got(const char *t, const char *s, const char *b, const char *p, void *arg)
{
	struct redeliver_ctx *c = arg;
	snprintf(c->type, sizeof(c->type), "%s", t ? t : "");
	snprintf(c->subject, sizeof(c->subject), "%s", s ? s : "");
	if (b) {
		snprintf(c->batch, sizeof(c->batch), "%s", b);
		c->have_batch = true;
	}
	c->payload = xstrdup(p ? p : "{}");
}

int hooks_redeliver(struct ew *ew, const char *event_id, const char *hook, char *err, size_t errlen)
{
	struct hooks *hs = ew->hooks;
	struct redeliver_ctx c = { .have_batch = false };
	int r = store_get_event(ew->store, event_id, redeliver_got, &c);

	if (r == -ENOENT) {
		snprintf(err, errlen, "no event with id %s", event_id);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "state database: %s", store_error(ew->store));
		return r;
	}
	enum ew_event t = job_event_parse(c.type);
	struct payload *p = payload_new(c.payload);
	free(c.payload);
	int queued = 0;
	for (size_t i = 0; i < ew->cfg.n_hooks; i++) {
		const struct ew_hook *h = &ew->cfg.hooks[i];
		if (hook ? strcmp(hook, h->name) != 0 : !(h->on_mask & (1u << t)))
			continue;
		struct delivery *d = delivery_new(hs, hook_get(hs, h->name), event_id, t, c.subject,
						  c.have_batch ? c.batch : NULL, p);
		d->next_ms = util_wall_ms();
		record(hs, d, "pending", "redeliver requested");
		enqueue(hs, d);
		queued++;
	}
	payload_unref(p);
	if (!queued) {
		if (hook)
			snprintf(err, errlen, "no hook named %s", hook);
		else
			snprintf(err, errlen, "no hook takes events of type %s", c.type);
		return -ENOENT;
	}
	pump(hs);
	return queued;
}

static void on_grace(uv_timer_t *t)
{
	struct hooks *hs = container_of(t, struct hooks, grace_timer);
	for (struct run *r = hs->runs; r; r = r->next) {
		if (r->is_webhook) {
			continue;
		}
		if (!r->exited) {
			r->killed = true;
			kill(-r->proc.pid, SIGKILL);
		}
	}
	/* Webhooks in flight: cancel; they stay pending. */
	struct run *r = hs->runs;
	while (r) {
		struct run *next = r->next;
		if (r->is_webhook) {
			run_unlink(hs, r);
			http_cancel(&r->req);
			curl_slist_free_all(r->headers);
			http_req_free(&r->req);
			r->d->hook->running--;
			hs->running--;
			delivery_free(hs, r->d);
			free(r);
		}
		r = next;
	}
}

void hooks_stop(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	hs->stopping = true;
	uv_timer_stop(&hs->delay_timer);
	if (hs->running)
		uv_timer_start(&hs->grace_timer, on_grace, ew->cfg.shutdown_grace_ms, 0);
}

bool hooks_idle(struct ew *ew)
{
	return ew->hooks->running == 0;
}

unsigned hooks_pending(struct ew *ew)
{
	return ew->hooks->pending;
}

unsigned hooks_running(struct ew *ew)
{
	return ew->hooks->running;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct hooks *hs = h->data;
	if (--hs->open_timers == 0)
		free(hs);
}

void hooks_close(struct ew *ew)
{
	struct hooks *hs = ew->hooks;
	if (!hs)
		return;
	for (struct hook_rt *h = hs->list; h;) {
		struct hook_rt *next = h->next;
		struct delivery *d;
		while ((d = ready_pop(h)))
			delivery_free(hs, d);
		free(h->name);
		free(h);
		h = next;
	}
	while (hs->delayed) {
		struct delivery *d = hs->delayed;
		hs->delayed = d->next;
		delivery_free(hs, d);
	}
	for (size_t i = 0; i < hs->n_upd; i++) {
		free(hs->upd[i].hook);
		free(hs->upd[i].last_error);
	}
	free(hs->upd);
	hs->open_timers = 2;
	hs->delay_timer.data = hs->grace_timer.data = hs;
	uv_close((uv_handle_t *)&hs->delay_timer, on_timer_closed);
	uv_close((uv_handle_t *)&hs->grace_timer, on_timer_closed);
	ew->hooks = NULL;
}
