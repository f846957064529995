/*
 * libuv <-> curl multi. Each pitfall of curl's multi-uv example is handled
 * where it arises (see STYLE.md), with a one-line why.
 */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "util.h"

struct http {
	char *default_cainfo;       /* libcurl's built-in CA bundle, restored when a request has none */
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	int active;                 /* transfers added and not yet done */
	uint64_t connects;
	bool closed;
};

/* One per socket curl asks us to watch; freed in the close callback. */
struct http_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct http *http;
};

struct http_headers {
	unsigned refs;
	struct curl_slist *list;
};

struct http_req {
	CURL *easy;
	struct http *http;
	struct http_headers *headers;   /* referenced while active */
	struct buf body;
	size_t max_body;
	bool discard_excess;
	bool too_big;
	bool active;
	http_chunk_fn stream;       /* a 200's body goes here instead of into body */
	void *stream_arg;
	size_t streamed;
	bool stream_stopped;
	size_t decoded;             /* body bytes after decoding, this transfer */
	uint64_t wire_cap;          /* 0: none */
	bool over_wire_cap;
	char *extra_line;           /* one header line of this request only, or NULL */
	struct curl_slist extra;    /* its node, ahead of the shared list: nothing is copied */
	char error[CURL_ERROR_SIZE];
	http_done_fn done;
	void *arg;
};

static enum http_error classify(CURLcode c)
{
	switch (c) {
	case CURLE_OK:
		return HTTP_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return HTTP_ERR_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return HTTP_ERR_CONNECT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return HTTP_ERR_TLS;
	case CURLE_WRITE_ERROR:
		return HTTP_ERR_TOO_BIG;    /* only the write callback refuses data */
	default:
		return HTTP_ERR_OTHER;
	}
}

/*
 * What arrived: header bytes plus the body as received (SIZE_DOWNLOAD counts
 * the body before content decoding: measured with libcurl 7.88, a 34.5 MB
 * list sent as 6.9 MB of gzip counts 6.9 MB), and the decoded bytes the
 * write callback saw.
 */
static void wire_counts(struct http_req *r, struct http_result *res)
{
	curl_off_t body = 0, clen = -1;
	long head = 0;

	curl_easy_getinfo(r->easy, CURLINFO_HEADER_SIZE, &head);
	curl_easy_getinfo(r->easy, CURLINFO_SIZE_DOWNLOAD_T, &body);
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
	res->wire_bytes = (uint64_t)(head > 0 ? head : 0) + (uint64_t)(body > 0 ? body : 0);
	res->decoded_bytes = r->decoded;
	res->content_length = clen;
}

static void check_done(struct http *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct http_req *r = NULL;
		struct http_result res = { 0 };
		long conns = 0;
		curl_off_t total = 0;

		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		CURLcode cc = m->data.result;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
		curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns);
		curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &total);
		h->connects += (uint64_t)conns;
		res.error = r->too_big && !r->discard_excess ? HTTP_ERR_TOO_BIG
			    : r->over_wire_cap ? HTTP_ERR_WIRE_CAP : r->stream_stopped ? HTTP_ERR_OTHER : classify(cc);
		if (res.error == HTTP_OK)
			res.error_text = "";
		else if (res.error == HTTP_ERR_TOO_BIG)
			res.error_text = "response too large, cut off";
		else if (res.error == HTTP_ERR_WIRE_CAP)
			res.error_text = "response larger on the wire than this request may take, stopped";
		else if (r->stream_stopped)
			res.error_text = "stopped by the reader of the body";
		else
			res.error_text = r->error[0] ? r->error : curl_easy_strerror(cc);
		if (res.error != HTTP_OK)
			res.status = 0;
		res.body = r->body.data ? r->body.data : "";
		res.body_len = r->body.len;
		res.total_us = (uint64_t)total;
		wire_counts(r, &res);
		/* Outside curl's callbacks: safe to remove the handle here. */
		curl_multi_remove_handle(h->multi, r->easy);
		r->active = false;
		h->active--;
		http_headers_unref(r->headers);
		r->headers = NULL;
		r->done(r, &res, r->arg);
	}
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct http_sock *s = container_of(p, struct http_sock, poll);
	struct http *h = s->http;
	int flags = 0, running;

	/* An error on the socket must reach curl, or the transfer hangs until its timeout. */
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, s->fd, flags, &running);
	check_done(h);
}

static void on_timer(uv_timer_t *t)
{
	struct http *h = container_of(t, struct http, timer);
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	/* Also when nothing seems to run: a transfer that timed out is reported here. */
	check_done(h);
}

static void on_sock_closed(uv_handle_t *handle)
{
	free(container_of((uv_poll_t *)handle, struct http_sock, poll));
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http *h = userp;
	struct http_sock *s = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			/* Stop first, then close; the memory goes in the close callback. */
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, on_sock_closed);
			if (!h->closed)
				curl_multi_assign(h->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->http = h;
		/* One poll handle per fd: a second init on a watched fd fails (UV_EEXIST). */
		int r = uv_poll_init_socket(h->loop, &s->poll, fd);
		if (r < 0) {
			log_msg(LOG_ERR, "http: cannot watch socket %d: %s", fd, uv_strerror(r));
			free(s);
			return -1;
		}
		curl_multi_assign(h->multi, fd, s);
	}
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	int r = uv_poll_start(&s->poll, ev, on_poll);
	if (r < 0) {
		log_msg(LOG_ERR, "http: cannot poll socket %d: %s", fd, uv_strerror(r));
		return -1;
	}
	return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;

	/* Never call socket_action from here: a 0 ms timeout means "soon". */
	if (timeout_ms < 0)
		uv_timer_stop(&h->timer);
	else if (uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0) < 0)
		return -1;
	return 0;
}

/* Every socket curl opens is close-on-exec: a hook must not inherit the API connections. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int http_new(uv_loop_t *loop, unsigned max_connections, struct http **ret)
{
	struct http *h = xcalloc(1, sizeof(*h));
	int r;

	h->loop = loop;
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		return -ENOMEM;
	}
	CURL *probe = curl_easy_init();
	char *def = NULL;
	if (probe && curl_easy_getinfo(probe, CURLINFO_CAINFO, &def) == CURLE_OK && def)
		h->default_cainfo = xstrdup(def);
	curl_easy_cleanup(probe);
	if ((r = uv_timer_init(loop, &h->timer)) < 0) {
		curl_multi_cleanup(h->multi);
		free(h);
		return r;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_connections);
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)max_connections);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	*ret = h;
	return 0;
}

static void on_http_closed(uv_handle_t *t)
{
	struct http *h = container_of((uv_timer_t *)t, struct http, timer);
	free(h->default_cainfo);
	free(h);
}

void http_close(struct http *h)
{
	if (!h || h->closed)
		return;
	h->closed = true;
	uv_timer_stop(&h->timer);
	/* Cleanup closes the sockets; on_socket gets CURL_POLL_REMOVE for each. */
	curl_multi_cleanup(h->multi);
	h->multi = NULL;
	uv_close((uv_handle_t *)&h->timer, on_http_closed);
}

uint64_t http_connects(const struct http *h)
{
	return h->connects;
}

static size_t on_write(char *data, size_t size, size_t n, void *userp)
{
	struct http_req *r = userp;
	size_t len = size * n;
	long code = 0;

	/* Decoded bytes: every cap below is on what the answer inflates to, not on what it cost. */
	r->decoded += len;
	/*
	 * The wire cap, from the first chunk on: Content-Length says at once what
	 * the whole answer would cost, the bytes so far say it for one without.
	 * (curl's progress callback comes only after a whole burst of reads.)
	 */
	if (r->wire_cap) {
		curl_off_t clen = -1, got = 0;
		curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
		curl_easy_getinfo(r->easy, CURLINFO_SIZE_DOWNLOAD_T, &got);
		if ((clen > 0 && (uint64_t)clen > r->wire_cap) || (got > 0 && (uint64_t)got > r->wire_cap)) {
			r->over_wire_cap = true;
			return 0;
		}
	}
	if (r->stream && curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200) {
		if (r->streamed + len > r->max_body) {
			r->too_big = true;
			return 0;
		}
		r->streamed += len;
		if (r->stream(data, len, r->stream_arg) != 0) {
			r->stream_stopped = true;
			return 0;
		}
		return len;
	}
	if (r->stream && r->body.len + len > 65536)
		return 0;

	if (r->body.len + len > r->max_body) {
		r->too_big = true;
		if (r->discard_excess)
			return len;
		/* Cut off: returning less than len aborts the transfer. */
		return 0;
	}
	buf_append(&r->body, data, len);
	return len;
}

struct http_req *http_req_new(struct http *h, size_t max_body, bool discard_excess)
{
	struct http_req *r = xcalloc(1, sizeof(*r));
	r->http = h;
	r->max_body = max_body;
	r->discard_excess = discard_excess;
	r->easy = curl_easy_init();
	if (!r->easy) {
		free(r);
		return NULL;
	}
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
	curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	/* Without NOSIGNAL curl installs and restores signal handlers around each transfer. */
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* Under HTTP/2 a new request waits for a stream on an existing connection. */
	curl_easy_setopt(r->easy, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "embedwatch/" PACKAGE_VERSION);
	return r;
}

void http_req_free(struct http_req *r)
{
	if (!r)
		return;
	http_cancel(r);
	curl_easy_cleanup(r->easy);
	buf_free(&r->body);
	free(r->extra_line);
	free(r);
}

void http_req_set(struct http_req *r, const char *url, struct http_headers *headers, const char *body,
		  size_t body_len, const struct http_opts *o)
{
	static const struct http_opts defaults;
	if (!o)
		o = &defaults;
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	http_headers_unref(r->headers);
	r->headers = headers ? http_headers_ref(headers) : NULL;
	if (body) {
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)body_len);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
	}
	/* A file replaces the system bundle (documented: concatenate to add); none restores it. */
	curl_easy_setopt(r->easy, CURLOPT_CAINFO, o->ca_file ? o->ca_file : r->http->default_cainfo);
	/* NULL: curl reads https_proxy, no_proxy and friends from the environment. */
	curl_easy_setopt(r->easy, CURLOPT_PROXY, o->proxy);
	curl_easy_setopt(r->easy, CURLOPT_NOPROXY, o->no_proxy);
	curl_easy_setopt(r->easy, CURLOPT_PROXYUSERPWD, o->proxy_userpwd);
}

int http_submit(struct http_req *r, long timeout_ms, http_done_fn done, void *arg)
{
	struct http *h = r->http;

	if (h->closed || r->active)
		return -EINVAL;
	buf_reset(&r->body);
	r->too_big = false;
	r->streamed = 0;
	r->stream_stopped = false;
	r->decoded = 0;
	r->over_wire_cap = false;
	/* The extra line goes first and points on to the shared list, which curl only reads. */
	struct curl_slist *list = r->headers ? r->headers->list : NULL;
	if (r->extra_line) {
		r->extra.data = r->extra_line;
		r->extra.next = list;
		list = &r->extra;
	}
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, list);
	r->error[0] = '\0';
	r->done = done;
	r->arg = arg;
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
		return -EIO;
	r->active = true;
	h->active++;
	return 0;
}

void http_cancel(struct http_req *r)
{
	if (!r->active)
		return;
	if (!r->http->closed)
		curl_multi_remove_handle(r->http->multi, r->easy);
	r->active = false;
	r->http->active--;
	http_headers_unref(r->headers);
	r->headers = NULL;
}

void http_req_compressed(struct http_req *r, bool on)
{
	/* "": every encoding this libcurl decodes; NULL: none asked for, none decoded. */
	curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, on ? "" : NULL);
}

void http_req_wire_cap(struct http_req *r, uint64_t max)
{
	r->wire_cap = max;
}

void http_req_low_speed(struct http_req *r, long bytes_per_s, long secs)
{
	curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_LIMIT, secs > 0 ? bytes_per_s : 0L);
	curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_TIME, secs > 0 ? secs : 0L);
}

void http_req_header(struct http_req *r, const char *line)
{
	free(r->extra_line);
	r->extra_line = line ? xstrdup(line) : NULL;
}

void http_req_stream(struct http_req *r, http_chunk_fn fn, void *arg)
{
	r->stream = fn;
	r->stream_arg = arg;
}

const char *http_header(struct http_req *r, const char *name)
{
	struct curl_header *hd;

	if (curl_easy_header(r->easy, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
		return NULL;
	return hd->value;
}

struct http_headers *http_headers_new(void)
{
	struct http_headers *h = xcalloc(1, sizeof(*h));
	h->refs = 1;
	return h;
}

void http_headers_add(struct http_headers *h, const char *line)
{
	struct curl_slist *l = curl_slist_append(h->list, line);
	if (!l)
		log_fatal("out of memory building request headers");
	h->list = l;
}

struct http_headers *http_headers_ref(struct http_headers *h)
{
	h->refs++;
	return h;
}

void http_headers_unref(struct http_headers *h)
{
	if (!h || --h->refs > 0)
		return;
	for (struct curl_slist *l = h->list; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(h->list);
	free(h);
}

int http_global_init(void)
{
	/* libcurl's global state (TLS, resolver) is set up once, before any handle: not thread-safe, so at start-up. */
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}
