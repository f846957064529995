/*
 * The exec driver: argv without a shell, the event on stdin, a clean
 * environment, its own process group, output captured, killed on timeout.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks_int.h"
#include "job.h"
#include "log.h"
#include "provider.h"
#include "util.h"

#define KILL_GRACE_MS 5000
#define PIPE_LINGER_MS 1000

/* An exec attempt: the generic run, the child and its pipes, and how it ended. */
struct exec_run {
	struct run run;
	uv_process_t proc;
	uv_pipe_t in, out, err;
	uv_timer_t timer;
	uv_write_t wr;
	int open_handles;
	bool exited, timed_out, killed;
	int64_t exit_status;
	int term_signal;
	uint64_t timeout_ms;
	struct buf output;
};

/* Every read lands here and is copied out at once: one buffer for all runs (the loop has one thread). */
static char readbuf[65536];

static void log_output(struct exec_run *x)
{
	struct delivery *d = x->run.d;
	struct log_ctx ctx = { .event_id = d->event_id, .hook = d->hook->name,
			       .job_id = hooks_of_job(d) ? d->subject : NULL };
	char *s = x->output.data;
	int lines = 0;
	if (!s)
		return;
	for (char *line = strtok(s, "\n"); line && lines < 200; line = strtok(NULL, "\n"), lines++)
		log_ctx(LOG_INFO, &ctx, "hook %s: %s", d->hook->name, line);
}

static void exec_finished(struct exec_run *x)
{
	struct run *r = &x->run;
	struct hooks *hs = r->hs;
	struct delivery *d = r->d;
	char why[160];
	struct hook_outcome o = { .why = why, .ms = uv_now(hs->ew->loop) - r->started };

	hooks_run_unlink(hs, r);
	log_output(x);
	if (x->killed && hs->stopping) {
		/* Stopped by shutdown: not an attempt; it runs again after the restart. */
		log_ctx(LOG_NOTICE, &((struct log_ctx){ .event_id = d->event_id, .hook = d->hook->name }),
			"hook %s killed at shutdown; %s stays pending", d->hook->name, d->event_id);
		hooks_unclaim(hs, d, false);
	} else {
		if (x->timed_out) {
			snprintf(why, sizeof(why), "timed out after %llu ms", (unsigned long long)x->timeout_ms);
		} else if (x->term_signal) {
			snprintf(why, sizeof(why), "killed by signal %d", x->term_signal);
		} else if (x->exit_status != 0) {
			snprintf(why, sizeof(why), "exit status %lld", (long long)x->exit_status);
		} else {
			o.ok = true;
			o.why = NULL;
		}
		hooks_finish(hs, d, &o);
	}
	hooks_run_free(r);
	hooks_pump(hs);
}

static void on_run_closed(uv_handle_t *h)
{
	struct exec_run *x = h->data;
	if (--x->open_handles == 0)
		exec_finished(x);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_run_closed);
}

/* After the exit, once both output pipes are at EOF, nothing needs the timer. */
static void maybe_done(struct exec_run *x)
{
	if (x->exited && uv_is_closing((uv_handle_t *)&x->out) && uv_is_closing((uv_handle_t *)&x->err))
		close_handle((uv_handle_t *)&x->timer);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	buf->base = readbuf;
	buf->len = sizeof(readbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct exec_run *x = s->data;
	size_t cap = x->run.hs->ew->cfg.hook_output_max;
	if (n < 0) {
		close_handle((uv_handle_t *)s);
		maybe_done(x);
		return;
	}
	if (n == 0 || cap == 0)
		return;
	/* Keep the last `cap` bytes. */
	buf_append(&x->output, buf->base, (size_t)n);
	if (x->output.len > cap) {
		size_t drop = x->output.len - cap;
		memmove(x->output.data, x->output.data + drop, cap);
		x->output.len = cap;
		x->output.data[cap] = '\0';
	}
}

static void on_run_timer(uv_timer_t *t)
{
	struct exec_run *x = t->data;
	if (x->exited) {
		/* The hook exited but something it started holds its output open. */
		close_handle((uv_handle_t *)&x->out);
		close_handle((uv_handle_t *)&x->err);
		close_handle((uv_handle_t *)&x->timer);
		return;
	}
	if (!x->timed_out && !x->killed) {
		x->timed_out = true;
		kill(-x->proc.pid, SIGTERM);
		UV_CHECK(uv_timer_start(&x->timer, on_run_timer, KILL_GRACE_MS, 0));
	} else {
		kill(-x->proc.pid, SIGKILL);
	}
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct exec_run *x = p->data;
	x->exited = true;
	x->exit_status = status;
	x->term_signal = sig;
	close_handle((uv_handle_t *)p);
	/* Whatever the hook left running dies with its process group (setsid is the way out). */
	kill(-p->pid, SIGKILL);
	UV_CHECK(uv_timer_start(&x->timer, on_run_timer, PIPE_LINGER_MS, 0));
	maybe_done(x);
}

static void on_written(uv_write_t *w, int status)
{
	struct exec_run *x = w->data;
	/* EPIPE when the hook does not read its input: not an error. */
	close_handle((uv_handle_t *)&x->in);
}

const char *hooks_event_status(const struct delivery *d)
{
	if (d->type == EV_BATCH_DONE)
		return "done";
	if (d->type == EV_HOOK_DISABLED)
		return "disabled";
	if (d->type == EV_HOOK_ENABLED)
		return "enabled";
	enum job_status st = job_event_end_status(d->type);
	if (st != JOB_NONE)
		return job_status_name(st);
	/* Of either kind: the status the project's vocabulary gives the event. */
	enum ew_event base = job_event_base(d->type);
	if (base == EV_STALLED || base == EV_BJ_EXPIRING)
		return "processing";    /* warnings about a job that has not ended */
	return base == EV_CANCELLING ? "cancelling" : base == EV_BJ_PROGRESS ? "processing" : "";
}

static int exec_start(struct hooks *hs, struct run *r)
{
	struct exec_run *x = container_of(r, struct exec_run, run);
	struct delivery *d = r->d;
	const struct ew_hook *c = d->hook->cfg;
	uv_loop_t *loop = hs->ew->loop;
	char env_buf[11][320];
	char *env[12];
	uv_stdio_container_t stdio[3];
	uv_process_options_t o;

	snprintf(env_buf[0], sizeof(env_buf[0]), "PATH=/usr/local/bin:/usr/bin:/bin");
	snprintf(env_buf[1], sizeof(env_buf[1]), "EMBEDWATCH_EVENT_ID=%s", d->event_id);
	snprintf(env_buf[2], sizeof(env_buf[2]), "EMBEDWATCH_EVENT=%s", job_event_name(d->type));
	/* The provider's own id; the account (and its provider) say whose it is. */
	char account[40] = "";
	int a = -1;
	if (hooks_of_job(d) && provider_key_account(d->subject, account, sizeof(account)) == 0)
		a = config_account_find(&hs->ew->cfg, account);
	snprintf(env_buf[3], sizeof(env_buf[3]), "EMBEDWATCH_JOB_ID=%s", hooks_of_job(d) ? provider_key_id(d->subject) : "");
	snprintf(env_buf[4], sizeof(env_buf[4]), "EMBEDWATCH_STATUS=%s", hooks_event_status(d));
	snprintf(env_buf[5], sizeof(env_buf[5]), "EMBEDWATCH_BATCH=%s", d->batch ? d->batch : "");
	snprintf(env_buf[6], sizeof(env_buf[6]), "EMBEDWATCH_ATTEMPT=%u", d->attempts);
	snprintf(env_buf[7], sizeof(env_buf[7]), "EMBEDWATCH_HOOK=%s", d->hook->name);
	/* embed-job or batch-job; empty for batch.done and the operational events. */
	int kind = job_event_kind(d->type);
	snprintf(env_buf[8], sizeof(env_buf[8]), "EMBEDWATCH_KIND=%s", kind >= 0 ? job_kind_name((enum job_kind)kind) : "");
	snprintf(env_buf[9], sizeof(env_buf[9]), "EMBEDWATCH_ACCOUNT=%s", a >= 0 ? account : "");
	snprintf(env_buf[10], sizeof(env_buf[10]), "EMBEDWATCH_PROVIDER=%s", a > 0
		 ? provider_name((enum provider)hs->ew->cfg.accounts[a - 1].provider) : a == 0 ? "cohere" : "");
	for (int i = 0; i < 11; i++)
		env[i] = env_buf[i];
	env[11] = NULL;

	x->proc.data = x->in.data = x->out.data = x->err.data = x->timer.data = x->wr.data = x;
	x->timeout_ms = c->timeout_ms;
	/* Handles on a valid loop: these fail only on a broken invariant. */
	UV_CHECK(uv_pipe_init(loop, &x->in, 0));
	UV_CHECK(uv_pipe_init(loop, &x->out, 0));
	UV_CHECK(uv_pipe_init(loop, &x->err, 0));
	UV_CHECK(uv_timer_init(loop, &x->timer));
	x->open_handles = 4;
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&x->in;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&x->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&x->err;
	memset(&o, 0, sizeof(o));
	o.file = c->argv[0];
	o.args = c->argv;
	o.env = env;
	o.cwd = "/";
	o.flags = UV_PROCESS_DETACHED;    /* setsid: its own process group, killed as one */
	o.stdio_count = 3;
	o.stdio = stdio;
	o.exit_cb = on_exit_cb;
	/* The hook inherits 0-2 only: every other fd is close-on-exec, whoever opened it. */
	util_cloexec_from(3);
	int e = uv_spawn(loop, &x->proc, &o);
	if (e < 0) {
		/* No process: close the pipes and the timer, then report. */
		x->exited = true;
		x->exit_status = 127;
		x->open_handles = 5;
		x->proc.pid = 0;
		uv_close((uv_handle_t *)&x->proc, on_run_closed);
		close_handle((uv_handle_t *)&x->in);
		close_handle((uv_handle_t *)&x->out);
		close_handle((uv_handle_t *)&x->err);
		close_handle((uv_handle_t *)&x->timer);
		buf_printf(&x->output, "cannot run %s: %s", c->argv[0], uv_strerror(e));
		return 0;
	}
	x->open_handles = 5;
	if (uv_read_start((uv_stream_t *)&x->out, on_alloc, on_read) < 0)
		close_handle((uv_handle_t *)&x->out);
	if (uv_read_start((uv_stream_t *)&x->err, on_alloc, on_read) < 0)
		close_handle((uv_handle_t *)&x->err);
	uv_buf_t b = uv_buf_init(d->payload->data, (unsigned)d->payload->len);
	if (uv_write(&x->wr, (uv_stream_t *)&x->in, &b, 1, on_written) < 0)
		close_handle((uv_handle_t *)&x->in);
	UV_CHECK(uv_timer_start(&x->timer, on_run_timer, c->timeout_ms, 0));
	return 0;
}

static struct run *exec_alloc(void)
{
	struct exec_run *x = xcalloc(1, sizeof(*x));
	return &x->run;
}

/* The grace is over: the process group is killed; exec_finished then gives the claim back. */
static void exec_stop(struct hooks *hs, struct run *r)
{
	struct exec_run *x = container_of(r, struct exec_run, run);
	(void)hs;
	if (!x->exited) {
		x->killed = true;
		kill(-x->proc.pid, SIGKILL);
	}
}

static void exec_free(struct run *r)
{
	struct exec_run *x = container_of(r, struct exec_run, run);
	buf_free(&x->output);
	free(x);
}

const struct hook_driver hooks_exec_driver = {
	.alloc = exec_alloc,
	.start = exec_start,
	.stop = exec_stop,
	.free = exec_free,
};
