/*
 * The control socket's connections: reading lines, answering, holding the
 * answers of changes until their commit, and waits. A bad request gets
 * {"ok":false,"error":"..."}; the connection and the daemon go on.
 */
#include <errno.h>
#include <grp.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control_int.h"
#include "ctlproto.h"
#include "ha.h"
#include "job.h"
#include "log.h"
#include "provider.h"
#include "turn.h"
#include "util.h"
#include "watch_v2.h"

#define CONTROL_LINE_MAX (1024 * 1024)
/* Answers queued for one client, and for all of them together, before a client is dropped. */
#define CONTROL_WRITE_MAX (16 * 1024 * 1024)
#define CONTROL_WRITE_TOTAL (64 * 1024 * 1024)
#define CONTROL_MAX_CLIENTS 256

struct wreq {
	uv_write_t req;
	struct client *c;
	size_t len;
	char data[];
};

static void client_free(struct client *c)
{
	buf_free(&c->in);
	json_object_put(c->held);
	for (size_t i = 0; i < c->n_wait; i++)
		free(c->wait_ids[i]);
	free(c->wait_ids);
	free(c->wait_batch);
	free(c);
}

static void client_closed(uv_handle_t *h)
{
	struct client *c = h->data;
	/* A read still in flight calls back with this client: it frees it then. */
	c->closed = true;
	if (!c->reads)
		client_free(c);
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
	struct wreq *wr = container_of(w, struct wreq, req);
	/* Also called (with an error) for writes cancelled by the close: the memory is counted back here only. */
	wr->c->queued -= wr->len;
	wr->c->ctl->queued -= wr->len;
	free(wr);
}

static void client_free(struct client *c);

/* A standby's request has its answer: the row goes with its effects (this turn's commit); the answer goes to the log. */
static void remote_answered(struct client *c, json_object *o)
{
	json_object *ok, *err;
	bool good = json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok);
	json_object_object_get_ex(o, "error", &err);
	log_msg(good ? LOG_INFO : LOG_WARNING, "control: request %lld written by a standby: %s%s", (long long)c->remote_id,
		good ? "applied" : "refused: ", good ? "" : json_object_get_string(err));
	turn_row(&c->ctl->ew->turn, TR_REQUEST)->request_id = c->remote_id;
	json_object_put(o);
	c->answered = true;
	if (!c->in_apply && !c->reads) {
		/* Answered by a read that called back after the apply: it held the control state until now. */
		struct control *ctl = c->ctl;
		client_free(c);
		control_unref(ctl);
	}
}

void control_send_line(struct client *c, json_object *o)
{
	const char *s;
	size_t n;

	if (c->remote_id) {
		remote_answered(c, o);
		return;
	}
	if (c->closing) {
		json_object_put(o);
		return;
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	n = strlen(s);
	/* What the client has not read yet: bytes still in the daemon, not those the kernel has taken. */
	size_t unread = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
	if (unread + n > CONTROL_WRITE_MAX || c->ctl->queued + n > CONTROL_WRITE_TOTAL) {
		/* A client that does not read its answers is dropped, not waited for; memory stays bounded. */
		if (unread + n > CONTROL_WRITE_MAX)
			log_msg(LOG_WARNING, "control: dropping a client: it has not read %zu bytes of its answers and the next "
				"is %zu bytes, over the %d bytes kept for one client", unread, n, CONTROL_WRITE_MAX);
		else
			log_msg(LOG_WARNING, "control: dropping a client: answers to all clients not yet sent are %zu bytes "
				"and its next is %zu bytes, over the %d bytes kept for all", c->ctl->queued, n, CONTROL_WRITE_TOTAL);
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
		return;
	}
	c->queued += w->len;
	c->ctl->queued += w->len;
	c->last_active = uv_now(c->ctl->ew->loop);
}

void control_log_peer(struct client *c, const char *what)
{
	if (c->remote_id) {
		log_msg(LOG_NOTICE, "control: %s (request %lld, written by a standby)", what, (long long)c->remote_id);
		return;
	}
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
		log_msg(LOG_NOTICE, "control: %s by pid %d uid %u gid %u", what, (int)cr.pid, (unsigned)cr.uid,
			(unsigned)cr.gid);
	else
		log_msg(LOG_NOTICE, "control: %s by an unknown peer", what);
}

/* Stops reading: one request at a time; the rest waits in the buffer or the socket. */
void control_pause_reading(struct client *c)
{
	if (!c->remote_id)
		uv_read_stop((uv_stream_t *)&c->pipe);
}

void control_hold_answer(struct client *c, json_object *o)
{
	if (c->remote_id) {
		/* Durable with its effects: the row's delete is in the same commit. */
		remote_answered(c, o);
		return;
	}
	json_object_put(c->held);
	c->held = o;
	c->held_gen = c->ctl->ew->turn.gen;
	c->ctl->ew->turn.answers++;
	control_pause_reading(c);
}

void control_send_error(struct client *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	control_send_line(c, o);
}

json_object *control_ok_answer(void)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

bool control_key_valid(const char *id)
{
	char account[40];
	return id && provider_key_account(id, account, sizeof(account)) == 0;
}

const char *control_get_str(json_object *req, const char *key)
{
	return ctlproto_str(req, key);
}

json_object *control_job_json(const struct job *j)
{
	json_object *o = json_object_new_object();
	char t[40];
	json_object_object_add(o, "id", json_object_new_string(j->id));
	if (j->queue) {
		char account[40];
		if (provider_key_account(j->id, account, sizeof(account)) == 0)
			json_object_object_add(o, "account", json_object_new_string(account));
	}
	json_object_object_add(o, "status", json_object_new_string(job_status_name((enum job_status)j->status)));
	json_object_object_add(o, "batch", j->batch ? json_object_new_string(j->batch->name) : NULL);
	util_rfc3339(j->added_ms, t, sizeof(t));
	json_object_object_add(o, "added", json_object_new_string(t));
	util_rfc3339(j->updated_ms, t, sizeof(t));
	json_object_object_add(o, "updated", json_object_new_string(t));
	if (j->flags & JF_DISCOVERED)
		json_object_object_add(o, "discovered", json_object_new_boolean(1));
	json_object_object_add(o, "kind", json_object_new_string(job_kind_name((enum job_kind)j->kind)));
	return o;
}

void control_job_records(struct ew *ew, const struct job *j, json_object *o)
{
	const struct watch_records *r = j->kind == JOB_KIND_BATCH ? watch_v2_get(ew->v2, j->id) : NULL;
	if (!r || !r->known)
		return;
	json_object *rec = json_object_new_object();
	json_object_object_add(rec, "num_records", json_object_new_int64(r->total));
	json_object_object_add(rec, "num_successful_records", json_object_new_int64(r->successful));
	json_object_object_add(rec, "num_failed_records", json_object_new_int64(r->failed));
	json_object_object_add(o, "records", rec);
}

static void on_resume(uv_timer_t *t);

/* The client goes on at the next loop turn: its buffered requests, then the socket. */
static void resume_later(struct client *c)
{
	c->resume = true;
	UV_CHECK(uv_timer_start(&c->ctl->resume_timer, on_resume, 0, 0));
}

void control_read_begin(struct client *c)
{
	c->reads++;
	control_pause_reading(c);
}

bool control_read_end(struct client *c)
{
	c->reads--;
	if (c->remote_id)
		return true;
	if (c->closed) {
		if (!c->reads)
			client_free(c);
		return false;
	}
	if (c->closing)
		return false;
	if (!c->reads)
		resume_later(c);
	return true;
}

void control_dispatch(struct ew *ew, bool ended, uint64_t gen)
{
	struct control *ctl = ew->control;
	if (!ctl)
		return;
	for (struct client *c = ctl->clients; c; c = c->next) {
		if (c->held && c->held_gen <= gen) {
			control_send_line(c, c->held);
			c->held = NULL;
			resume_later(c);
		} else if (!c->held && ended && c->waiting && control_wait_check(c)) {
			control_wait_clear(c);
			resume_later(c);
		}
	}
}

void control_commit_failed(struct ew *ew, const char *why)
{
	struct control *ctl = ew->control;
	if (!ctl)
		return;
	for (struct client *c = ctl->clients; c; c = c->next) {
		if (!c->held)
			continue;
		/* Say what was done and that it is not durable yet; the changes are retried. */
		json_object_object_add(c->held, "ok", json_object_new_boolean(0));
		char msg[512];
		snprintf(msg, sizeof(msg), "%s: the change is held in memory and written when the database recovers; "
			 "a restart before then loses it", why);
		json_object_object_add(c->held, "error", json_object_new_string(msg));
		control_send_line(c, c->held);
		c->held = NULL;
		resume_later(c);
	}
}

/*
 * Runs req: on the active, its handler; not active (standby, or taking over):
 * written to the shared state for the active, or read from it.
 */
static void dispatch(struct client *c, enum ctl_cmd cmd, json_object *req, const char *line, size_t len)
{
	const struct control_cmd *k = &control_cmds[cmd];
	if (ha_active(c->ctl->ew))
		k->handler(c, req);
	else if (ctlproto_forwards(cmd, req))
		control_standby_forward(c, cmd, req, line, len);
	else if (k->standby)
		k->standby(c, cmd, req);
	else
		k->handler(c, req);
}

unsigned control_waiting_clients(const struct control *ctl)
{
	unsigned n = 0;
	for (const struct client *c = ctl->clients; c; c = c->next)
		n += c->waiting;
	return n;
}

/* One id of a request for account (configured; ops NULL for cohere): its key in place, or left for the handler to refuse. */
static json_object *account_key(const char *account, const struct provider_ops *ops, json_object *e)
{
	const char *id = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
	char key[300];
	if (!id)
		return json_object_get(e);
	/* A provider's own form of an id (Gemini's "batches/ID") is taken as the bare id. */
	if (ops && ops->id_prefix && strncmp(id, ops->id_prefix, strlen(ops->id_prefix)) == 0)
		id += strlen(ops->id_prefix);
	if ((ops && !provider_id_valid(ops, id)) || provider_job_key(account, id, key, sizeof(key)) < 0)
		return json_object_get(e);
	return json_object_new_string(key);
}

/*
 * A request's "account": its ids ("ids", "id") become the daemon's keys
 * ("ACCOUNT:ID", provider.h) and the kind follows from the provider; the
 * member is then removed, so a standby forwards, and every handler reads,
 * keys alone. 1 changed, 0 nothing to do, -1 with err (no such account).
 */
static int resolve_account(struct ew *ew, json_object *req, char *err, size_t errlen)
{
	json_object *v, *ids;
	if (!json_object_object_get_ex(req, "account", &v))
		return 0;
	const char *account = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
	int a = account ? config_account_find(&ew->cfg, account) : -1;
	if (a < 0) {
		snprintf(err, errlen, "\"account\" must name a configured account: cohere%s (got %.40s%s%s)",
			 ew->cfg.n_accounts ? " or one of [account NAME]" : "", account ? "\"" : "",
			 account ? account : "no string", account ? "\"" : "");
		return -1;
	}
	const struct provider_ops *ops = a ? provider_ops((enum provider)ew->cfg.accounts[a - 1].provider) : NULL;
	if (!json_object_object_get_ex(req, "ids", NULL) && !json_object_object_get_ex(req, "id", NULL))
		return 0;   /* a filter (list): its handler reads it */
	if (json_object_object_get_ex(req, "ids", &ids) && json_object_is_type(ids, json_type_array)) {
		json_object *keys = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(ids); i++)
			json_object_array_add(keys, account_key(account, ops, json_object_array_get_idx(ids, i)));
		json_object_object_add(req, "ids", keys);
	}
	if (json_object_object_get_ex(req, "id", &v) && v)
		json_object_object_add(req, "id", account_key(account, ops, v));
	if (a > 0)
		json_object_object_add(req, "kind", json_object_new_string(job_kind_name(JOB_KIND_BATCH)));
	json_object_object_del(req, "account");
	return 1;
}

static void handle_line(struct client *c, const char *line, size_t len)
{
	enum ctl_cmd cmd;
	json_object *req;
	char err[256];

	if (ctlproto_parse(line, len, &cmd, &req, err, sizeof(err)) < 0) {
		control_send_error(c, "%s", err);
		return;
	}
	int r = resolve_account(c->ctl->ew, req, err, sizeof(err));
	if (r < 0) {
		json_object_put(req);
		control_send_error(c, "%s", err);
		return;
	}
	if (r > 0) {
		/* What a standby forwards is the request with keys. */
		line = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
		len = strlen(line);
	}
	unsigned max = c->ctl->ew->cfg.max_waiters;
	if (cmd == CTL_WAIT && control_waiting_clients(c->ctl) >= max) {
		json_object_put(req);
		control_send_error(c, "too many waiting clients (%u, max_waiters); try again later", max);
		return;
	}
	dispatch(c, cmd, req, line, len);
	json_object_put(req);
}

void control_apply_request(struct control *ctl, int64_t id, const char *line)
{
	struct client *c = xcalloc(1, sizeof(*c));
	enum ctl_cmd cmd;
	json_object *req;
	char err[256];

	c->ctl = ctl;
	c->remote_id = id;
	c->in_apply = true;
	if (ctlproto_parse(line, strlen(line), &cmd, &req, err, sizeof(err)) < 0) {
		control_send_error(c, "%s", err);
	} else {
		if (ctlproto_cmds[cmd].flags & CTLPROTO_WRITE)
			control_cmds[cmd].handler(c, req);
		else
			control_send_error(c, "not a request that changes the state");
		json_object_put(req);
	}
	c->in_apply = false;
	/* Answered now, or by a read that calls back later (redeliver), which frees it then. */
	if (c->answered && !c->reads)
		client_free(c);
	else
		ctl->open_handles++;
}

static void process(struct client *c)
{
	size_t start = 0;
	while (!c->closing && !c->waiting && !c->held && !c->reads) {
		size_t len;
		int r = ctlproto_line(c->in.data + start, c->in.len - start, CONTROL_LINE_MAX, &len);
		if (r == 0)
			break;
		if (r < 0) {
			control_send_error(c, "request longer than %d bytes; send fewer ids per request", CONTROL_LINE_MAX);
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
		control_send_error(c, "request longer than %d bytes; send fewer ids per request", CONTROL_LINE_MAX);
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
	c->last_active = uv_now(c->ctl->ew->loop);
	process(c);
}

static void start_reading(struct client *c)
{
	int r = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
	if (r < 0) {
		log_msg(LOG_WARNING, "control: cannot read from a client: %s", uv_strerror(r));
		client_close(c);
	}
}

static void on_resume(uv_timer_t *t)
{
	struct control *ctl = t->data;
	for (struct client *c = ctl->clients, *next; c; c = next) {
		next = c->next;
		if (!c->resume)
			continue;
		c->resume = false;
		process(c);
		if (!c->closing && !c->waiting && !c->held && !c->reads)
			start_reading(c);
	}
}

/* True when c has sent bytes the daemon has not read yet (a request on its way: not idle). */
static bool client_has_input(const struct client *c)
{
	uv_os_fd_t fd;
	int n = 0;
	return uv_fileno((const uv_handle_t *)&c->pipe, &fd) == 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* A client that may be dropped to make room: it waits for nothing, owes nothing and has sent nothing unread. */
static bool client_idle(const struct client *c)
{
	return !c->closing && !c->waiting && !c->held && !c->reads && !c->resume && c->queued == 0 && !client_has_input(c);
}

/* The longest-idle client, or NULL when every client is busy. */
static struct client *longest_idle(struct control *ctl)
{
	struct client *best = NULL;
	for (struct client *c = ctl->clients; c; c = c->next)
		if (client_idle(c) && (!best || c->last_active < best->last_active))
			best = c;
	return best;
}

static void on_idle_sweep(uv_timer_t *t)
{
	struct control *ctl = t->data;
	uint64_t now = uv_now(ctl->ew->loop), limit = ctl->ew->cfg.control_idle_timeout_ms;
	unsigned dropped = 0;
	for (struct client *c = ctl->clients, *next; c; c = next) {
		next = c->next;
		if (client_idle(c) && now - c->last_active >= limit) {
			client_close(c);
			dropped++;
		}
	}
	if (dropped)
		log_msg(LOG_INFO, "control: closed %u connections idle for %llu ms", dropped, (unsigned long long)limit);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct control *ctl = server->data;
	if (status < 0)
		return;
	struct client *c = xcalloc(1, sizeof(*c));
	bool longest_idle_closed = false;
	c->ctl = ctl;
	UV_CHECK(uv_pipe_init(ctl->ew->loop, &c->pipe, 0));
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		uv_close((uv_handle_t *)&c->pipe, client_closed);
		return;
	}
	/* Waiting clients do not count: they have their own cap, so they cannot lock an operator out. */
	unsigned busy = ctl->n_clients - control_waiting_clients(ctl);
	if (busy >= CONTROL_MAX_CLIENTS) {
		/* Idle connections must not lock operators out: the longest-idle one makes room. */
		struct client *victim = longest_idle(ctl);
		longest_idle_closed = victim != NULL;
		if (victim) {
			log_msg(LOG_WARNING, "control: %d connections open; closing the longest idle one", CONTROL_MAX_CLIENTS);
			client_close(victim);
		}
	}
	c->next = ctl->clients;
	ctl->clients = c;
	ctl->n_clients++;
	c->last_active = uv_now(ctl->ew->loop);
	if (busy >= CONTROL_MAX_CLIENTS && !longest_idle_closed) {
		control_send_error(c, "too many control connections (%d, all busy); try again later", CONTROL_MAX_CLIENTS);
		client_close(c);
		return;
	}
	start_reading(c);
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
	if (!control_cmds_complete()) {
		snprintf(err, errlen, "control: a command without a handler (a bug)");
		return -EINVAL;
	}
	if ((r = uv_pipe_init(ew->loop, &ctl->server, 0)) < 0 || (r = uv_timer_init(ew->loop, &ctl->resume_timer)) < 0 ||
	    (r = uv_timer_init(ew->loop, &ctl->idle_timer)) < 0) {
		snprintf(err, errlen, "control socket: %s", uv_strerror(r));
		return r;
	}
	if ((r = uv_timer_init(ew->loop, &ctl->shared_timer)) < 0) {
		snprintf(err, errlen, "control socket: %s", uv_strerror(r));
		return r;
	}
	ctl->server.data = ctl->resume_timer.data = ctl->idle_timer.data = ctl->shared_timer.data = ctl;
	ctl->open_handles = 4;
	/* The sweep runs often enough to close an idle client within a quarter of the timeout of it. */
	uint64_t every = ew->cfg.control_idle_timeout_ms / 4 ? ew->cfg.control_idle_timeout_ms / 4 : 1;
	UV_CHECK(uv_timer_start(&ctl->idle_timer, on_idle_sweep, every, every));
	uv_unref((uv_handle_t *)&ctl->idle_timer);
	if (ew->m.shared) {
		UV_CHECK(uv_timer_start(&ctl->shared_timer, control_on_shared_tick, 500, 500));
		uv_unref((uv_handle_t *)&ctl->shared_timer);
	}
	if ((r = clear_stale(path, err, errlen)) < 0)
		return r;
	mode_t old = umask(0777 & ~ew->cfg.control_mode);
	r = uv_pipe_bind(&ctl->server, path);
	umask(old);
	if (r < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(r));
		return r;
	}
	if (chmod(path, ew->cfg.control_mode) < 0)
		log_msg(LOG_WARNING, "control socket %s: chmod: %s", path, strerror(errno));
	if (ew->cfg.control_group[0]) {
		/* Access by group: members of control_group may use the socket (mode 0660). */
		struct group *g = getgrnam(ew->cfg.control_group);
		if (!g) {
			snprintf(err, errlen, "control_group %s: no such group", ew->cfg.control_group);
			return -ENOENT;
		}
		if (chown(path, (uid_t)-1, g->gr_gid) < 0) {
			snprintf(err, errlen, "control socket %s: chown to group %s: %s", path, ew->cfg.control_group,
				 strerror(errno));
			return -errno;
		}
	}
	if ((r = uv_listen((uv_stream_t *)&ctl->server, 64, on_connection)) < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(r));
		return r;
	}
	return 0;
}

/* The control socket's state goes when its handles are closed and no standby's request still reads. */
void control_unref(struct control *ctl)
{
	if (--ctl->open_handles == 0) {
		free(ctl->applied);
		free(ctl);
	}
}

static void server_closed(uv_handle_t *h)
{
	control_unref(h->data);
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
	uv_close((uv_handle_t *)&ctl->resume_timer, server_closed);
	uv_close((uv_handle_t *)&ctl->idle_timer, server_closed);
	uv_close((uv_handle_t *)&ctl->shared_timer, server_closed);
}
