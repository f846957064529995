/*
 * The exec driver: argv without a shell, the event on stdin, a clean
 * environment, its own process group, output captured, killed on timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hooks_int.h"
#include "job.h"
#include "log.h"
#include "provider.h"
#include "util.h"

#define KILL_GRACE_MS 5000
#define PIPE_LINGER_MS 1000

/* An exec attempt: the generic run, the child (its pid, and a pidfd that turns readable when it
 * exits) and its pipes, and how it ended. */
struct exec_run {
	struct run run;
	pid_t pid;
	int pidfd;
	uv_poll_t exitw;
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
		kill(-x->pid, SIGTERM);
		UV_CHECK(uv_timer_start(&x->timer, on_run_timer, KILL_GRACE_MS, 0));
	} else {
		kill(-x->pid, SIGKILL);
	}
}

/* The pidfd is readable: the hook has exited and is a zombie until reaped here. */
static void on_exit_cb(uv_poll_t *p, int status, int events)
{
	struct exec_run *x = p->data;
	siginfo_t si;
	(void)status;
	(void)events;
	/* Whatever the hook left running dies with its process group (setsid is the way out); killed
	 * before the reap, while the zombie still holds the group's id. */
	kill(-x->pid, SIGKILL);
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)x->pid, &si, WEXITED | WNOHANG) < 0) {
		if (errno == EINTR)
			return;    /* the pidfd stays readable: the next turn reaps it */
		x->exit_status = -1;    /* ECHILD: nothing of ours to reap, its status is lost */
	} else if (si.si_pid == 0) {
		return;    /* not yet: a wake-up without an exit */
	} else if (si.si_code == CLD_EXITED) {
		x->exit_status = si.si_status;
	} else {
		x->term_signal = si.si_status;
	}
	x->exited = true;
	close_handle((uv_handle_t *)p);
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

/* A close-on-exec pipe whose ends are above 0-2 (the child's dup2 onto 0-2 must not meet them,
 * should the daemon have started with one of them closed): 0, or an errno. */
static int pipe_above_stdio(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return errno;
	for (int i = 0; i < 2; i++) {
		if (p[i] > 2)
			continue;
		int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3), e = errno;
		close(p[i]);
		p[i] = fd;
		if (fd < 0) {
			close(p[1 - i]);
			return e;
		}
	}
	return 0;
}

/*
 * Starts argv with env as the hook: in its own session (setsid), at "/", every signal at its
 * default and none blocked, its stdin, stdout and stderr on new pipes (fds[0] to [2]; the
 * parent keeps fds[0][1], fds[1][0] and fds[2][0]). posix_spawn shares the daemon's memory
 * until the exec instead of copying its page tables as fork does, and reports a failed exec.
 * 0 with *pid and *pidfd (a pidfd to watch its exit), or an errno with no process and no fd
 * left open; *what then names the step that failed ("run" or "watch").
 */
static int spawn_child(char *const argv[], char *const env[], int fds[3][2], pid_t *pid, int *pidfd,
		       const char **what)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int e = 0, n;

	*what = "run";
	for (n = 0; n < 3 && e == 0; n++)
		e = pipe_above_stdio(fds[n]);
	if (e) {
		for (int i = 0; i < n - 1; i++)
			close(fds[i][0]), close(fds[i][1]);
		return e;
	}
	sigemptyset(&none);
	/* Every bit: sigfillset leaves out the C library's own two real-time signals, which
	 * posix_spawn would then leave ignored in the hook. */
	memset(&all, 0xff, sizeof(all));
	if ((e = posix_spawn_file_actions_init(&fa)))
		goto out_pipes;
	if ((e = posix_spawnattr_init(&at))) {
		posix_spawn_file_actions_destroy(&fa);
		goto out_pipes;
	}
	if (!(e = posix_spawn_file_actions_adddup2(&fa, fds[0][0], 0)) &&
	    !(e = posix_spawn_file_actions_adddup2(&fa, fds[1][1], 1)) &&
	    !(e = posix_spawn_file_actions_adddup2(&fa, fds[2][1], 2)) &&
	    !(e = posix_spawn_file_actions_addchdir_np(&fa, "/")) &&
	    !(e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) &&
	    !(e = posix_spawnattr_setsigmask(&at, &none)) &&
	    !(e = posix_spawnattr_setsigdefault(&at, &all)))
		e = posix_spawn(pid, argv[0], &fa, &at, argv, env);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (e == 0 && (*pidfd = (int)syscall(SYS_pidfd_open, *pid, 0)) < 0) {
		e = errno;
		*what = "watch";
		kill(-*pid, SIGKILL);
		while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
out_pipes:
	/* The child's ends are its own now (or nobody's). */
	close(fds[0][0]);
	close(fds[1][1]);
	close(fds[2][1]);
	if (e) {
		close(fds[0][1]);
		close(fds[1][0]);
		close(fds[2][0]);
	}
	return e;
}

/* Opens the parent's end fd of a hook's pipe on p, reading from it when `reading`; on failure
 * p is closed (and fd with it). */
static void open_end(uv_pipe_t *p, int fd, bool reading)
{
	if (uv_pipe_open(p, fd) < 0) {
		close(fd);
		close_handle((uv_handle_t *)p);
	} else if (reading && uv_read_start((uv_stream_t *)p, on_alloc, on_read) < 0) {
		close_handle((uv_handle_t *)p);
	}
}

static int exec_start(struct hooks *hs, struct run *r)
{
	struct exec_run *x = container_of(r, struct exec_run, run);
	struct delivery *d = r->d;
	const struct ew_hook *c = d->hook->cfg;
	uv_loop_t *loop = hs->ew->loop;
	char env_buf[11][320];
	char *env[12];

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

	x->exitw.data = x->in.data = x->out.data = x->err.data = x->timer.data = x->wr.data = x;
	x->timeout_ms = c->timeout_ms;
	x->pidfd = -1;
	/* Handles on a valid loop: these fail only on a broken invariant. */
	UV_CHECK(uv_timer_init(loop, &x->timer));
	x->open_handles = 1;
	/* The hook inherits 0-2 only: every other fd is close-on-exec, whoever opened it. */
	util_cloexec_from(3);
	const char *what;
	int fds[3][2], e = spawn_child(c->argv, env, fds, &x->pid, &x->pidfd, &what);
	if (e) {
		buf_printf(&x->output, "cannot %s %s: %s", what, c->argv[0], strerror(e));
		/* No process to watch: close the timer, which reports. */
		x->exited = true;
		x->exit_status = 127;
		close_handle((uv_handle_t *)&x->timer);
		return 0;
	}
	/* The parent's ends: the hook's stdin to write, its stdout and stderr to read. */
	UV_CHECK(uv_pipe_init(loop, &x->in, 0));
	UV_CHECK(uv_pipe_init(loop, &x->out, 0));
	UV_CHECK(uv_pipe_init(loop, &x->err, 0));
	UV_CHECK(uv_poll_init(loop, &x->exitw, x->pidfd));
	x->open_handles = 5;
	open_end(&x->in, fds[0][1], false);
	open_end(&x->out, fds[1][0], true);
	open_end(&x->err, fds[2][0], true);
	UV_CHECK(uv_poll_start(&x->exitw, UV_READABLE, on_exit_cb));
	uv_buf_t b = uv_buf_init(d->payload->data, (unsigned)d->payload->len);
	if (uv_is_closing((uv_handle_t *)&x->in) || uv_write(&x->wr, (uv_stream_t *)&x->in, &b, 1, on_written) < 0)
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
		kill(-x->pid, SIGKILL);
	}
}

static void exec_free(struct run *r)
{
	struct exec_run *x = container_of(r, struct exec_run, run);
	if (x->pidfd >= 0)
		close(x->pidfd);
	buf_free(&x->output);
	free(x);
}

const struct hook_driver hooks_exec_driver = {
	.alloc = exec_alloc,
	.start = exec_start,
	.stop = exec_stop,
	.free = exec_free,
};
