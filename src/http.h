/*
 * The libuv <-> curl multi glue shared by polling and webhooks. One struct
 * http per loop; one struct http_req per transfer, reusable: its easy handle
 * keeps its settings and connections stay in the multi's pool.
 */
#ifndef EW_HTTP_H
#define EW_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <uv.h>

#include "util.h"

struct http {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	int active;                 /* transfers added and not yet done */
	bool closed;
};

struct http_req;
typedef void (*http_done_fn)(struct http_req *req, void *arg);

struct http_req {
	CURL *easy;
	struct http *http;
	struct curl_slist *headers;     /* owned by the caller; set before submit */
	struct buf body;                /* response body, up to max_body */
	size_t max_body;
	bool discard_excess;            /* past max_body: drop the rest instead of failing */
	bool too_big;
	bool active;
	long status;                    /* HTTP status, 0 when there was no answer */
	CURLcode result;
	char error[CURL_ERROR_SIZE];
	http_done_fn done;
	void *arg;
};

/* Sets up the multi handle on loop. Returns 0 or a negative errno. */
int http_init(struct http *h, uv_loop_t *loop, unsigned max_connections);
/* Removes every transfer (no callbacks), cleans up curl, closes the timer. */
void http_close(struct http *h);

/* Creates the easy handle with the settings every request shares. */
int http_req_init(struct http_req *r, struct http *h, size_t max_body);
void http_req_free(struct http_req *r);

/*
 * Starts a transfer already set up with CURLOPT_URL (and method, body,
 * headers). done(req, arg) runs once from the loop when it ends, whatever
 * the outcome. Returns 0 or -EIO.
 */
int http_submit(struct http_req *r, long timeout_ms, http_done_fn done, void *arg);
/* Stops a running transfer without calling its done callback. */
void http_cancel(struct http_req *r);

/* A response header's value (last one of that name), or NULL. */
const char *http_header(struct http_req *r, const char *name);

#endif
