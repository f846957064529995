/*
 * The PostgreSQL backend's connections: libpq, non-blocking and in pipeline
 * mode, watched by a uv_poll on its socket: the loop never waits for the
 * server. Answers come back in the order things were sent, so a queue of what
 * was sent says whose each answer is. A lost connection fails what was in
 * flight (the outbox retries its commit with backoff) and is made again in
 * the background, its host names looked up by libuv's resolver first (libpq's
 * own lookup would block the loop). A watchdog bounds every connect and every
 * answer. Only start-up and exit wait.
 */
#include "store_pg_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* The socket's watcher: a handle per connection, freed in its close callback. */
struct pgpoll {
	uv_poll_t h;
	struct pgconn *c;
	int fd;
	int events;
};

/* ---- errors ---- */

/* libpq's messages end in a newline and may span lines: one line for the log. */
void pgc_set_err(struct pg *s, const char *msg)
{
	snprintf(s->err, sizeof(s->err), "%s", msg && *msg ? msg : "unknown PostgreSQL error");
	for (char *p = s->err; *p; p++) {
		if (*p == '\n' || *p == '\r')
			*p = *(p + 1) ? ' ' : '\0';
		else if (*p == '\t')
			*p = ' ';
	}
}

/* A result's error: its primary message (no CONTEXT lines), else all of it. */
void pgc_set_err_of(struct pg *s, const PGresult *res)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	pgc_set_err(s, primary ? primary : PQresultErrorMessage(res));
}

int pgc_map_sqlstate(const char *st)
{
	if (!st)
		return -EIO;
	if (strcmp(st, "EW001") == 0)
		return -ESTALE;         /* fenced: another daemon holds the lease */
	if (strcmp(st, "53100") == 0)
		return -ENOSPC;
	if (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 || strcmp(st, "57P03") == 0)
		return -ECONNRESET;
	if (strcmp(st, "25006") == 0 || strcmp(st, "42501") == 0)
		return -EACCES;
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0)
		return -EBUSY;
	return -EIO;
}

/* ---- the queue of groups ---- */

struct pgq *pgc_group_new(struct pg *s, unsigned n, pgq_result_fn *result, void (*end)(struct pgq *), void *fn,
			  void *done, void *arg)
{
	struct pgq *g = xcalloc(1, sizeof(*g));
	/*
	 * Before anything of it is sent: a lease it confirms was valid at the
	 * server no earlier than this. Taken after the send, a pause of this
	 * process between the two (SIGSTOP, a stall) would date a confirmation
	 * seconds late and let a fenced ex-active think its lease fresh.
	 */
	g->sent_mono = util_mono_ms();
	g->n = n;
	g->result = result;
	g->end = end;
	g->fn = fn;
	g->done = done;
	g->arg = arg;
	return g;
}

void pgc_group_push(struct pgconn *c, struct pgq *g)
{
	if (c->tail)
		c->tail->next = g;
	else
		c->head = g;
	c->tail = g;
}

/* Every group in flight on c ends with r (the connection is gone, or the store closes). */
void pgc_fail_all(struct pgconn *c, int r)
{
	struct pgq *g;
	while ((g = c->head)) {
		c->head = g->next;
		if (!c->head)
			c->tail = NULL;
		if (!g->r)
			g->r = r;
		g->end(g);
	}
}

/* ---- the connection ---- */

static void on_poll(uv_poll_t *h, int status, int events);
static void pump(struct pgconn *c);

static void poll_closed(uv_handle_t *h)
{
	free(h->data);
}

static void poll_drop(struct pgconn *c)
{
	if (!c->poll)
		return;
	uv_poll_stop(&c->poll->h);
	uv_close((uv_handle_t *)&c->poll->h, poll_closed);
	c->poll = NULL;
}

/* Watches the connection's socket for events (a new socket gets a new handle: one uv_poll per fd). */
static int poll_set(struct pgconn *c, int events)
{
	struct pg *s = c->s;
	int fd = PQsocket(c->conn);
	if (s->detached || fd < 0)
		return 0;
	if (c->poll && c->poll->fd != fd)
		poll_drop(c);
	if (!c->poll) {
		struct pgpoll *p = xcalloc(1, sizeof(*p));
		int r = uv_poll_init(s->loop, &p->h, fd);
		if (r < 0) {
			free(p);
			pgc_set_err(s, uv_strerror(r));
			return r;
		}
		p->h.data = p;
		p->c = c;
		p->fd = fd;
		p->events = -1;
		c->poll = p;
	}
	if (c->poll->events != events) {
		int r = uv_poll_start(&c->poll->h, events, on_poll);
		if (r < 0)
			return r;
		c->poll->events = events;
	}
	return 0;
}

/* The connection broke (r: what in flight gets): what was in flight fails; a new one is made after a pause. */
static void lost_with(struct pgconn *c, int r)
{
	struct pg *s = c->s;
	if (c->was_ready)
		log_msg(LOG_WARNING, "state database: %s connection lost: %s; reconnecting", c->name, s->err);
	else if (c->retry_run % 20 == 19)
		log_msg(LOG_WARNING, "state database: still cannot connect: %s", s->err);
	c->was_ready = false;
	poll_drop(c);
	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	c->state = PG_DOWN;
	pgc_fail_all(c, r);
	pgc_connect_later(c);
}

void pgc_lost(struct pgconn *c)
{
	lost_with(c, -ECONNRESET);
}

/* Sends what libpq holds; watches for writable while some remains. */
void pgc_flush(struct pgconn *c)
{
	int r = PQflush(c->conn);
	if (r < 0) {
		pgc_set_err(c->s, PQerrorMessage(c->conn));
		pgc_lost(c);
		return;
	}
	if (poll_set(c, UV_READABLE | (r > 0 ? UV_WRITABLE : 0)) < 0)
		pgc_lost(c);
}

void pgc_ignore_notice(void *arg, const char *msg)
{
	/* "relation already exists, skipping" and the like: not for the log. */
}

void pgc_prepared(struct pgq *g)
{
	struct pg *s = g->arg;
	if (g->r < 0 && g->r != -ECONNRESET && g->r != -ECANCELED && g->r != -ETIMEDOUT)
		log_msg(LOG_ERR, "state database: cannot prepare the statements: %s", s->err);
	free(g);
}

/*
 * The connection parameters: robust defaults the URL may override, then the
 * URL, then what overrides it (the hosts with the addresses looked up here:
 * libpq connects to those and still checks the certificate against the host
 * name), then the password.
 */
PGconn *pgc_connect_params(struct pg *s, bool blocking, const char *const *over_keys, const char *const *over_vals)
{
	const char *keys[12] = { "connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
				 "tcp_user_timeout", "fallback_application_name", "dbname" };
	const char *vals[12] = { "10", "5", "2", "3", "10000", "embedwatchd", s->url };
	size_t n = 7;
	for (size_t i = 0; over_keys && over_keys[i] && n < 10; i++) {
		keys[n] = over_keys[i];
		vals[n++] = over_vals[i];
	}
	if (s->password) {
		keys[n] = "password";
		vals[n++] = s->password;
	}
	keys[n] = vals[n] = NULL;
	return blocking ? PQconnectdbParams(keys, vals, 1) : PQconnectStartParams(keys, vals, 1);
}

static void connecting(struct pgconn *c)
{
	struct pg *s = c->s;
	PostgresPollingStatusType st = PQconnectPoll(c->conn);
	int r = 0;
	/*
	 * A new handle at each step: when a host fails libpq closes its socket and
	 * opens one to the next host, which may get the same number; a handle kept
	 * for the old socket would never hear of the new one.
	 */
	poll_drop(c);
	switch (st) {
	case PGRES_POLLING_OK:
		c->retry_run = 0;
		if (pgc_session_start(c) < 0) {
			pgc_lost(c);
			return;
		}
		log_msg(LOG_NOTICE, "state database: %s connection made again (%s)", c->name, s->desc);
		pump(c);
		return;
	case PGRES_POLLING_READING:
		r = poll_set(c, UV_READABLE);
		break;
	case PGRES_POLLING_WRITING:
		r = poll_set(c, UV_WRITABLE);
		break;
	default:
		pgc_set_err(s, PQerrorMessage(c->conn));
		pgc_lost(c);
		return;
	}
	if (r < 0)
		pgc_lost(c);
}

/* ---- a reconnect's host names, looked up off the loop thread ---- */

#define PG_HOSTS_MAX 16             /* hosts in the URL this handles; more: libpq looks them up itself */
#define PG_ADDRS_PER_HOST 4         /* addresses tried per host name, in the resolver's order */
struct pgresolve {
	uv_getaddrinfo_t req;
	struct pgconn *c;           /* NULL: the store went away; the answer only frees this */
	char *hosts, *ports;        /* the URL's host and port lists, cut at their commas */
	char *host[PG_HOSTS_MAX], *port[PG_HOSTS_MAX];
	size_t n, n_ports, i;
	/* What libpq gets instead: each host once per address, with that address and its port. */
	struct buf out_host, out_addr, out_port;
	size_t n_out;
};

static void resolve_free(struct pgresolve *r)
{
	free(r->hosts);
	free(r->ports);
	buf_free(&r->out_host);
	buf_free(&r->out_addr);
	buf_free(&r->out_port);
	free(r);
}

static void connect_async(struct pgconn *c, const char *const *keys, const char *const *vals);
static void resolve_next(struct pgresolve *r);

/* One entry of the lists libpq gets: host i at addr ("" for a socket). */
static void resolve_out(struct pgresolve *r, const char *addr)
{
	const char *sep = r->n_out++ ? "," : "";
	buf_printf(&r->out_host, "%s%s", sep, r->host[r->i]);
	buf_printf(&r->out_addr, "%s%s", sep, addr);
	if (r->n_ports > 1)
		buf_printf(&r->out_port, "%s%s", sep, r->i < r->n_ports ? r->port[r->i] : "");
}

static void resolve_failed(struct pgresolve *r, const char *why)
{
	struct pgconn *c = r->c;
	char msg[400];
	snprintf(msg, sizeof(msg), "cannot resolve host \"%.200s\": %s", r->host[r->i], why);
	pgc_set_err(c->s, msg);
	c->resolving = NULL;
	resolve_free(r);
	pgc_lost(c);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct pgresolve *r = container_of(req, struct pgresolve, req);
	if (!r->c) {
		uv_freeaddrinfo(res);
		resolve_free(r);
		return;
	}
	size_t n = 0;
	for (struct addrinfo *a = status == 0 ? res : NULL; a && n < PG_ADDRS_PER_HOST; a = a->ai_next) {
		char ip[INET6_ADDRSTRLEN] = "";
		if (a->ai_family == AF_INET6)
			uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, ip, sizeof(ip));
		else if (a->ai_family == AF_INET)
			uv_ip4_name((const struct sockaddr_in *)a->ai_addr, ip, sizeof(ip));
		if (ip[0]) {
			resolve_out(r, ip);
			n++;
		}
	}
	uv_freeaddrinfo(res);
	if (!n) {
		resolve_failed(r, status < 0 ? uv_strerror(status) : "no address");
		return;
	}
	r->i++;
	resolve_next(r);
}

static bool is_numeric(const char *h)
{
	unsigned char a[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

static bool is_socket(const char *h)
{
	return !h[0] || h[0] == '/' || h[0] == '@';
}

/* Adds the next hosts (addresses as they are, sockets without one) until a name needs a lookup; then connects. */
static void resolve_next(struct pgresolve *r)
{
	struct pgconn *c = r->c;
	for (; r->i < r->n; r->i++) {
		const char *h = r->host[r->i];
		if (is_socket(h) || is_numeric(h)) {
			resolve_out(r, is_socket(h) ? "" : h);
			continue;
		}
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
		int e = uv_getaddrinfo(c->s->loop, &r->req, resolved, h, NULL, &hints);
		if (e < 0)
			resolve_failed(r, uv_strerror(e));
		return;
	}
	/* libpq tries them in turn, connecting to each address and checking the certificate against its host. */
	const char *keys[4] = { "host", "hostaddr" }, *vals[4] = { r->out_host.data, r->out_addr.data };
	if (r->n_ports > 1) {
		keys[2] = "port";
		vals[2] = r->out_port.data;
	}
	c->resolving = NULL;
	log_msg(LOG_DEBUG, "state database: connecting to %zu addresses of %zu hosts, looked up off the loop", r->n_out, r->n);
	connect_async(c, keys, vals);
	resolve_free(r);
}

/* Cuts list at its commas into at most PG_HOSTS_MAX entries; returns false when there were more. */
static bool split_list(char *list, char **out, size_t *n)
{
	char *p = list;
	*n = 0;
	while (p && *n < PG_HOSTS_MAX) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		out[(*n)++] = p;
		p = comma ? comma + 1 : NULL;
	}
	return p == NULL;
}

/*
 * Starts the lookups of the URL's host names when there are any and it gives
 * no hostaddr itself; the connect follows them. False: nothing to look up.
 */
static bool resolve_start(struct pgconn *c)
{
	struct pg *s = c->s;
	PQconninfoOption *opts = PQconninfoParse(s->url, NULL);
	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
	}
	if (!host || !*host || (hostaddr && *hostaddr)) {
		PQconninfoFree(opts);
		return false;
	}
	struct pgresolve *r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->hosts = xstrdup(host);
	r->ports = port ? xstrdup(port) : NULL;
	PQconninfoFree(opts);
	bool all = split_list(r->hosts, r->host, &r->n);
	if (r->ports)
		all = split_list(r->ports, r->port, &r->n_ports) && all;
	bool names = false;
	for (size_t i = 0; i < r->n; i++)
		names |= !is_socket(r->host[i]) && !is_numeric(r->host[i]);
	if (!names || !all) {
		resolve_free(r);
		return false;
	}
	c->resolving = r;
	resolve_next(r);
	return true;
}

static void on_retry(uv_timer_t *t)
{
	struct pgconn *c = container_of(t, struct pgconn, retry);
	c->connect_mono = util_mono_ms();
	pgc_watchdog_arm(c->s);
	if (!resolve_start(c))
		connect_async(c, NULL, NULL);
}

/* Starts a connection without waiting; keys and vals (NULL-ended, or NULL) override the URL's. */
static void connect_async(struct pgconn *c, const char *const *keys, const char *const *vals)
{
	struct pg *s = c->s;
	c->conn = pgc_connect_params(s, false, keys, vals);
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
		pgc_set_err(s, c->conn ? PQerrorMessage(c->conn) : "out of memory");
		pgc_lost(c);
		return;
	}
	c->state = PG_CONNECTING;
	pgc_watchdog_arm(s);
	connecting(c);
}

void pgc_connect_later(struct pgconn *c)
{
	if (c->s->detached)
		return;
	/* 100 ms, doubling to 5 s: a restarting server is back in a second or two. */
	uint64_t delay = 100;
	for (unsigned i = 0; i < c->retry_run && delay < 5000; i++)
		delay *= 2;
	if (delay > 5000)
		delay = 5000;
	c->retry_run++;
	UV_CHECK(uv_timer_start(&c->retry, on_retry, delay, 0));
}

/* ---- the watchdog: nothing waits on the server unbounded ---- */

/* How long a read may go without a byte from the server (a standby's answers wait this long at most). */
#define PG_ANSWER_MS 5000

/* How long c may go without a byte while it waits for g: a commit may wait on a row for lock_timeout first. */
static uint64_t answer_limit(const struct pg *s, const struct pgconn *c, const struct pgq *g)
{
	if (c->is_lease)
		return ttl_of(s) > PG_ANSWER_MS ? ttl_of(s) : PG_ANSWER_MS;
	return g->commit ? ttl_of(s) + PG_ANSWER_MS : PG_ANSWER_MS;
}

/* A connect past connect_timeout, or an answer not begun within its limit: the connection is given up. */
static void watch_conn(struct pgconn *c, uint64_t now)
{
	struct pg *s = c->s;
	char msg[300];
	if (c->state == PG_CONNECTING && now - c->connect_mono > s->connect_timeout_ms) {
		const char *h = PQhost(c->conn), *p = PQport(c->conn);
		snprintf(msg, sizeof(msg), "timeout expired connecting to %s%s%s (connect_timeout %llu s)",
			 h && *h ? h : "the server", p && *p ? " port " : "", p && *p ? p : "",
			 (unsigned long long)s->connect_timeout_ms / 1000);
		pgc_set_err(s, msg);
		lost_with(c, -ETIMEDOUT);
		return;
	}
	if (c->state != PG_READY || !c->head)
		return;
	uint64_t since = c->head->sent_mono > c->rx_mono ? c->head->sent_mono : c->rx_mono;
	uint64_t limit = answer_limit(s, c, c->head);
	if (now - since > limit) {
		snprintf(msg, sizeof(msg), "the shared state did not answer within %llu s (%s connection; reconnecting)",
			 (unsigned long long)(limit + 999) / 1000, c->name);
		pgc_set_err(s, msg);
		lost_with(c, -ETIMEDOUT);
	}
}

/* Something on c is awaited: an answer or a connect. */
static bool awaited(const struct pgconn *c)
{
	return c->state == PG_CONNECTING || (c->state == PG_READY && c->head);
}

static void on_watchdog(uv_timer_t *t)
{
	struct pg *s = container_of(t, struct pg, watchdog);
	uint64_t now = util_mono_ms();
	watch_conn(&s->main, now);
	if (s->lease_open)
		watch_conn(&s->lease, now);
	/* Idle: no tick until something is sent or a connect starts (which arm it again). */
	if (!awaited(&s->main) && !(s->lease_open && awaited(&s->lease)))
		uv_timer_stop(&s->watchdog);
}

/* Checks every 250 ms while an answer or a connect is awaited (the timer does not keep the loop alive). */
void pgc_watchdog_arm(struct pg *s)
{
	if (s->detached || uv_is_active((uv_handle_t *)&s->watchdog))
		return;
	UV_CHECK(uv_timer_start(&s->watchdog, on_watchdog, 250, 250));
}

/* ---- answers ---- */

/* LISTEN embedwatch: a standby wrote a request, or an active gave the lease up. */
static void notifications(struct pgconn *c)
{
	struct pg *s = c->s;
	PGnotify *n;
	while (c->conn && (n = PQnotifies(c->conn))) {
		char what[32];
		snprintf(what, sizeof(what), "%s", n->extra);
		PQfreemem(n);
		if (s->notify)
			s->notify(what, s->notify_arg);
	}
}

static void pump(struct pgconn *c)
{
	struct pg *s = c->s;
	if (!PQconsumeInput(c->conn)) {
		pgc_set_err(s, PQerrorMessage(c->conn));
		pgc_lost(c);
		return;
	}
	c->rx_mono = util_mono_ms();
	notifications(c);
	while (c->head && !PQisBusy(c->conn)) {
		struct pgq *g = c->head;
		PGresult *res = PQgetResult(c->conn);
		if (!res) {
			/* The end of one statement's answer; the next one's (or the Sync) follows. */
			g->got++;
			continue;
		}
		switch (PQresultStatus(res)) {
		case PGRES_PIPELINE_SYNC:
			c->head = g->next;
			if (!c->head)
				c->tail = NULL;
			g->end(g);
			break;
		case PGRES_PIPELINE_ABORTED:
			break;      /* skipped after the error already noted */
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			if (!g->r && g->result)
				g->result(g, g->got, res);
			break;
		default:
			if (!g->r) {
				g->r = pgc_map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
				pgc_set_err_of(s, res);
			}
			break;
		}
		PQclear(res);
		if (!c->conn)
			return;     /* a callback closed it */
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		pgc_set_err(s, PQerrorMessage(c->conn));
		pgc_lost(c);
		return;
	}
	notifications(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct pgconn *c = ((struct pgpoll *)h->data)->c;
	if (c->state == PG_CONNECTING) {
		/* An error on the socket too: libpq says what it was, and moves on to the next host. */
		connecting(c);
		return;
	}
	if (status < 0) {
		/* libpq's reason when it has one (the socket's own error), else the poll's. */
		if (PQconsumeInput(c->conn) && PQstatus(c->conn) != CONNECTION_BAD) {
			char msg[200];
			snprintf(msg, sizeof(msg), "the connection's socket failed (%s)", uv_strerror(status));
			pgc_set_err(c->s, msg);
		} else {
			pgc_set_err(c->s, PQerrorMessage(c->conn));
		}
		pgc_lost(c);
		return;
	}
	if (events & UV_WRITABLE)
		pgc_flush(c);
	if (c->conn && (events & UV_READABLE))
		pump(c);
}

/* How long the store waits at most when the loop does not run (start-up, exit). */
#define PG_WAIT_MS 10000

/* Blocks until every group on both connections has its answer, or PG_WAIT_MS (start-up and exit only). */
void pgc_wait(struct store *st)
{
	struct pg *s = pg_of(st);
	struct pgconn *cs[2] = { &s->main, &s->lease };
	uint64_t end = util_mono_ms() + PG_WAIT_MS;
	for (;;) {
		struct pollfd pfd[2];
		struct pgconn *on[2];
		nfds_t n = 0;
		for (int i = 0; i < 2; i++) {
			struct pgconn *c = cs[i];
			if (!c->head || c->state != PG_READY)
				continue;
			int r = PQflush(c->conn);
			if (r < 0) {
				pgc_set_err(s, PQerrorMessage(c->conn));
				pgc_lost(c);
				continue;
			}
			pfd[n] = (struct pollfd){ .fd = PQsocket(c->conn), .events = POLLIN | (r > 0 ? POLLOUT : 0) };
			on[n++] = c;
		}
		if (!n)
			return;
		uint64_t now = util_mono_ms();
		int k = now < end ? poll(pfd, n, (int)(end - now)) : 0;
		if (k <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			char msg[160];
			if (k == 0)
				snprintf(msg, sizeof(msg), "the shared state did not answer within %d s", PG_WAIT_MS / 1000);
			else
				snprintf(msg, sizeof(msg), "poll: %s", strerror(errno));
			pgc_set_err(s, msg);
			for (nfds_t i = 0; i < n; i++)
				lost_with(on[i], -ETIMEDOUT);
			return;
		}
		for (nfds_t i = 0; i < n; i++)
			if (pfd[i].revents && on[i]->conn)
				pump(on[i]);
	}
}

/* ---- sending ---- */

int pgc_send_prepared(struct pgconn *c, int q, int n, const char *const *v)
{
	char name[16];
	snprintf(name, sizeof(name), "q%d", q);
	if (!PQsendQueryPrepared(c->conn, name, n, v, NULL, NULL, 0)) {
		pgc_set_err(c->s, PQerrorMessage(c->conn));
		return -EIO;
	}
	return 0;
}

/* Sends one read (a statement and its Sync) on c; false when not connected (the caller then answers at once). */
bool pgc_send_read(struct pgconn *c, struct pgq *g, int q, int n, const char *const *v)
{
	struct pg *s = c->s;
	if (c->state != PG_READY) {
		if (c->state != PG_DOWN || !s->err[0])
			pgc_set_err(s, "not connected (reconnecting)");
		g->r = -ENOTCONN;
		g->end(g);
		return false;
	}
	g->sent_mono = util_mono_ms();      /* before the send: see pgc_group_new */
	if (pgc_send_prepared(c, q, n, v) < 0 || !PQpipelineSync(c->conn)) {
		pgc_set_err(s, PQerrorMessage(c->conn));
		g->r = -ECONNRESET;
		g->end(g);
		pgc_lost(c);
		return false;
	}
	pgc_group_push(c, g);
	pgc_flush(c);
	pgc_watchdog_arm(s);
	return true;
}

const char *pgc_fmt_i64(char *buf, int64_t v)
{
	snprintf(buf, 24, "%lld", (long long)v);
	return buf;
}

/*
 * The session's settings, from the lease's ttl: the server ends a session
 * whose client is gone (keepalives, tcp_user_timeout: TCP only) or that sits
 * in a transaction; a lock is waited for at most lock_timeout (the lease's
 * connection: a quarter of the ttl, at most 1 s; commits: the ttl), so no take,
 * renewal or commit queues behind a dead session for long; and the sessions
 * carry this daemon's name, by which a taker ends them once its lease expired.
 */
int pgc_send_settings(struct pgconn *c)
{
	struct pg *s = c->s;
	uint64_t ttl = ttl_of(s);
	uint64_t lock = c->is_lease ? (ttl / 4 < 1000 ? ttl / 4 : 1000) : ttl;
	char v[7][24];
	const char *p[7] = {
		pgc_fmt_i64(v[0], (int64_t)ttl / 2), pgc_fmt_i64(v[1], (int64_t)lock),
		pgc_fmt_i64(v[2], ttl / 4000 ? (int64_t)ttl / 4000 : 1), "1", "2", pgc_fmt_i64(v[5], (int64_t)ttl),
		s->app[0] ? s->app : "embedwatchd",
	};
	if (!PQsendQueryParams(c->conn, "SELECT set_config('idle_in_transaction_session_timeout', $1, false), "
			       "set_config('lock_timeout', $2, false), set_config('tcp_keepalives_idle', $3, false), "
			       "set_config('tcp_keepalives_interval', $4, false), set_config('tcp_keepalives_count', $5, false), "
			       "set_config('tcp_user_timeout', $6, false), set_config('application_name', $7, false)",
			       7, NULL, p, NULL, NULL, 0)) {
		pgc_set_err(s, PQerrorMessage(c->conn));
		return -EIO;
	}
	return 0;
}

/* A new connection: non-blocking, pipelined, every statement prepared (in the pipeline, ahead of anything else). */
int pgc_session_start(struct pgconn *c)
{
	struct pg *s = c->s;
	char ep[24];
	unsigned n = Q__MAX + 1;
	int r = 0;

	PQsetNoticeProcessor(c->conn, pgc_ignore_notice, NULL);
	if (PQsetnonblocking(c->conn, 1) != 0 || PQenterPipelineMode(c->conn) != 1) {
		pgc_set_err(s, PQerrorMessage(c->conn));
		return -EIO;
	}
	for (int i = 0; r == 0 && i < Q__MAX; i++) {
		char name[16];
		snprintf(name, sizeof(name), "q%d", i);
		if (!PQsendPrepare(c->conn, name, store_pg_queries[i], 0, NULL))
			r = -EIO;
	}
	if (r == 0)
		r = pgc_send_settings(c);
	/* Notifications from the others, on the main connection. */
	if (r == 0 && !c->is_lease) {
		if (!PQsendQueryParams(c->conn, "LISTEN embedwatch", 0, NULL, NULL, NULL, NULL, 0))
			r = -EIO;
		n++;
	}
	/* The active's advisory lock again after a reconnect (if another took it meanwhile, the next renewal fails). */
	if (r == 0 && c->is_lease && s->epoch > 0) {
		const char *v[] = { pgc_fmt_i64(ep, s->epoch) };
		r = pgc_send_prepared(c, Q_RELOCK, 1, v);
		n++;
	}
	if (r < 0 || !PQpipelineSync(c->conn)) {
		pgc_set_err(s, PQerrorMessage(c->conn));
		return -EIO;
	}
	pgc_group_push(c, pgc_group_new(s, n, NULL, pgc_prepared, NULL, NULL, s));
	c->state = PG_READY;
	c->was_ready = true;
	c->rx_mono = util_mono_ms();
	snprintf(s->desc, sizeof(s->desc), "PostgreSQL database %s on %s (user %s)", PQdb(c->conn),
		 PQhost(c->conn) && *PQhost(c->conn) ? PQhost(c->conn) : "localhost", PQuser(c->conn));
	pgc_flush(c);
	pgc_watchdog_arm(s);
	return 0;
}

/* ---- reading an answer ---- */

const char *pgc_val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

int64_t pgc_ival(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void one_result(struct pgq *g, unsigned i, const PGresult *res)
{
	struct pgc_one_row *o = container_of(g, struct pgc_one_row, g);
	if (!o->res && PQntuples(res) > 0)
		o->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
}

struct pgc_one_row *pgc_one_new(void *done, void *arg, void (*end)(struct pgq *g))
{
	struct pgc_one_row *o = xcalloc(1, sizeof(*o));
	o->g.n = 1;
	o->g.result = one_result;
	o->g.end = end;
	o->g.done = done;
	o->g.arg = arg;
	return o;
}

/* ---- open and close ---- */

static void timer_closed(uv_handle_t *h)
{
}

static void conn_detach(struct pgconn *c)
{
	poll_drop(c);
	uv_close((uv_handle_t *)&c->retry, timer_closed);
	if (c->resolving) {
		/* Its answer (or its cancel) frees it. */
		c->resolving->c = NULL;
		uv_cancel((uv_req_t *)&c->resolving->req);
		c->resolving = NULL;
	}
}

void pgc_detach(struct store *st)
{
	struct pg *s = pg_of(st);
	if (s->detached)
		return;
	s->detached = true;
	conn_detach(&s->main);
	conn_detach(&s->lease);
	uv_close((uv_handle_t *)&s->watchdog, timer_closed);
}

/*
 * Connects c, waiting (start-up only) at most connect_timeout, and starts its
 * session. Returns 0 or negative with s->err set.
 */
int pgc_open(struct pgconn *c)
{
	struct pg *s = c->s;
	c->conn = pgc_connect_params(s, true, NULL, NULL);
	if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
		pgc_set_err(s, c->conn ? PQerrorMessage(c->conn) : "out of memory");
		if (c->conn)
			PQfinish(c->conn);
		c->conn = NULL;
		return -ECONNREFUSED;
	}
	return pgc_session_start(c);
}
