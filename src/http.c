#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* One per socket curl asks us to watch; freed in the close callback. */
struct http_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct http *http;
};

static void check_done(struct http *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct http_req *r = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		r->result = m->data.result;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
		if (r->result != CURLE_OK && r->result != CURLE_WRITE_ERROR)
			r->status = r->status ? r->status : 0;
		/* Outside curl's callbacks: safe to remove the handle here. */
		curl_multi_remove_handle(h->multi, r->easy);
		r->active = false;
		h->active--;
		r->done(r, r->arg);
	}
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct http_sock *s = container_of(p, struct http_sock, poll);
	struct http *h = s->http;
	int flags = 0, running;

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
	uv_poll_start(&s->poll, ev, on_poll);
	return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;

	/* Never call socket_action from here: a 0 ms timeout means "soon". */
	if (timeout_ms < 0)
		uv_timer_stop(&h->timer);
	else
		uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

int http_init(struct http *h, uv_loop_t *loop, unsigned max_connections)
{
	memset(h, 0, sizeof(*h));
	h->loop = loop;
	h->multi = curl_multi_init();
	if (!h->multi)
		return -ENOMEM;
	uv_timer_init(loop, &h->timer);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_connections);
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)max_connections);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	return 0;
}

void http_close(struct http *h)
{
	if (h->closed)
		return;
	h->closed = true;
	uv_timer_stop(&h->timer);
	/* Cleanup closes the sockets; on_socket gets CURL_POLL_REMOVE for each. */
	curl_multi_cleanup(h->multi);
	h->multi = NULL;
	uv_close((uv_handle_t *)&h->timer, NULL);
}

static size_t on_write(char *data, size_t size, size_t n, void *userp)
{
	struct http_req *r = userp;
	size_t len = size * n;

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

int http_req_init(struct http_req *r, struct http *h, size_t max_body)
{
	memset(r, 0, sizeof(*r));
	r->http = h;
	r->max_body = max_body;
	r->easy = curl_easy_init();
	if (!r->easy)
		return -ENOMEM;
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "embedwatch/" PACKAGE_VERSION);
	return 0;
}

void http_req_free(struct http_req *r)
{
	if (!r || !r->easy)
		return;
	if (r->active)
		http_cancel(r);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	buf_free(&r->body);
}

int http_submit(struct http_req *r, long timeout_ms, http_done_fn done, void *arg)
{
	struct http *h = r->http;

	if (h->closed || r->active)
		return -EINVAL;
	buf_reset(&r->body);
	r->too_big = false;
	r->status = 0;
	r->result = CURLE_OK;
	r->error[0] = '\0';
	r->done = done;
	r->arg = arg;
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
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
	curl_multi_remove_handle(r->http->multi, r->easy);
	r->active = false;
	r->http->active--;
}

const char *http_header(struct http_req *r, const char *name)
{
	struct curl_header *hd;

	if (curl_easy_header(r->easy, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
		return NULL;
	return hd->value;
}
