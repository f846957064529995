/* The /metrics endpoint: a minimal HTTP/1.x responder on libuv, nothing more. */
#include "metrics_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "httpreq.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define REQ_MAX 8192
#define CONN_MAX 32
#define REQ_TIMEOUT_MS 5000
#define EVICT_LOG_MS 60000

struct mconn {
	struct mconn *next;
	struct metrics_http *mh;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	char req[REQ_MAX];
	size_t len;
	struct buf out;
	uint64_t active_seq;        /* mh->seq at its last sign of life: the lowest is the longest idle */
	int open;
	bool responding;            /* an answer is being written: not idle, closes by itself */
	bool closing;
};

struct metrics_http {
	struct ew *ew;
	uv_tcp_t server;
	struct mconn *conns;
	unsigned n;
	uint64_t seq;               /* counts accepts and reads, to order connections by idleness */
	uint64_t evict_logged_ms;   /* loop time of the last eviction warning, 0: never */
};

static void conn_freed(uv_handle_t *h)
{
	struct mconn *c = h->data;
	if (--c->open == 0) {
		buf_free(&c->out);
		free(c);
	}
}

static void conn_close(struct mconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	for (struct mconn **pp = &c->mh->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->mh->n--;
	uv_close((uv_handle_t *)&c->tcp, conn_freed);
	uv_close((uv_handle_t *)&c->timer, conn_freed);
}

static void on_written(uv_write_t *w, int status)
{
	conn_close(w->data);
}

static void respond(struct mconn *c, int status, const char *reason, const char *ctype, const char *body, size_t n)
{
	buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		   status, reason, ctype, n);
	buf_append(&c->out, body, n);
	c->responding = true;
	/* The answer is the last thing on this connection: whatever else the client sends is not read. */
	if (uv_read_stop((uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
		conn_close(c);
}

static void handle(struct mconn *c, const struct httpreq *rq)
{
	struct ew *ew = c->mh->ew;
	if (rq->method == HTTPREQ_OTHER) {
		respond(c, 405, "Method Not Allowed", "text/plain", "GET /metrics\n", 13);
		return;
	}
	if (rq->path_len != 8 || memcmp(rq->path, "/metrics", 8) != 0) {
		respond(c, 404, "Not Found", "text/plain", "GET /metrics\n", 13);
		return;
	}
	struct buf b = { 0 };
	metrics_text(&ew->m, ew->jobs.counts, &b);
	respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b.data, rq->method == HTTPREQ_HEAD ? 0 : b.len);
	buf_free(&b);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct mconn *c = h->data;
	buf->base = c->req + c->len;
	buf->len = REQ_MAX - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct mconn *c = s->data;
	struct httpreq rq;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->active_seq = ++c->mh->seq;
	switch (httpreq_parse(c->req, c->len, REQ_MAX - 1, &rq)) {
	case 1:
		handle(c, &rq);
		break;
	case 0:
		break;
	case -EMSGSIZE:
		respond(c, 431, "Request Header Fields Too Large", "text/plain", "", 0);
		break;
	default:
		respond(c, 400, "Bad Request", "text/plain", "GET /metrics HTTP/1.1\n", 22);
		break;
	}
}

static void on_timeout(uv_timer_t *t)
{
	struct mconn *c = t->data;
	if (!c->responding)
		c->mh->ew->m.metrics_http_timeouts++;
	conn_close(c);
}

/* The connection that has been silent longest and is not being answered, or NULL. */
static struct mconn *longest_idle(struct metrics_http *mh)
{
	struct mconn *best = NULL;
	for (struct mconn *c = mh->conns; c; c = c->next)
		if (!c->responding && (!best || c->active_seq < best->active_seq))
			best = c;
	return best;
}

/* Makes room for one more connection: idle ones must not lock scrapes out. False when all are busy. */
static bool make_room(struct metrics_http *mh)
{
	if (mh->n < CONN_MAX)
		return true;
	struct mconn *victim = longest_idle(mh);
	if (!victim)
		return false;
	mh->ew->m.metrics_http_evictions++;
	uint64_t now = uv_now(mh->ew->loop);
	if (!mh->evict_logged_ms || now - mh->evict_logged_ms >= EVICT_LOG_MS) {
		/* Once a minute at most: a client opening connections in a loop must not flood the log. */
		log_msg(LOG_WARNING, "metrics: %d connections open; closing the longest idle ones to make room "
			"(%llu so far)", CONN_MAX, (unsigned long long)mh->ew->m.metrics_http_evictions);
		mh->evict_logged_ms = now ? now : 1;
	}
	conn_close(victim);
	return true;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct metrics_http *mh = server->data;
	if (status < 0)
		return;
	bool room = make_room(mh);
	struct mconn *c = xcalloc(1, sizeof(*c));
	c->mh = mh;
	c->tcp.data = c->timer.data = c;
	UV_CHECK(uv_tcp_init(mh->ew->loop, &c->tcp));
	UV_CHECK(uv_timer_init(mh->ew->loop, &c->timer));
	c->open = 2;
	c->next = mh->conns;
	mh->conns = c;
	mh->n++;
	c->active_seq = ++mh->seq;
	/* Accepted even without room: a pending connection left in the backlog stops libuv accepting. */
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || !room ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
		conn_close(c);
		return;
	}
	mh->ew->m.metrics_http_connections++;
	UV_CHECK(uv_timer_start(&c->timer, on_timeout, REQ_TIMEOUT_MS, 0));
}

int metrics_http_init(struct ew *ew, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int r;

	if (!ew->cfg.metrics_listen || !ew->cfg.metrics_listen[0])
		return 0;
	if ((r = config_parse_listen(ew->cfg.metrics_listen, &ss)) < 0) {
		snprintf(err, errlen, "metrics_listen %s: expected [ADDRESS:]PORT", ew->cfg.metrics_listen);
		return r;
	}
	struct metrics_http *mh = xcalloc(1, sizeof(*mh));
	mh->ew = ew;
	ew->metrics_http = mh;
	mh->server.data = mh;
	if ((r = uv_tcp_init(ew->loop, &mh->server)) < 0 ||
	    (r = uv_tcp_bind(&mh->server, (const struct sockaddr *)&ss, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&mh->server, 64, on_connection)) < 0) {
		snprintf(err, errlen, "metrics_listen %s: %s", ew->cfg.metrics_listen, uv_strerror(r));
		return r;
	}
	log_msg(LOG_INFO, "serving /metrics on %s", ew->cfg.metrics_listen);
	return 0;
}

static void server_closed(uv_handle_t *h)
{
	free(h->data);
}

void metrics_http_close(struct ew *ew)
{
	struct metrics_http *mh = ew->metrics_http;
	if (!mh)
		return;
	while (mh->conns)
		conn_close(mh->conns);
	uv_close((uv_handle_t *)&mh->server, server_closed);
	ew->metrics_http = NULL;
}
