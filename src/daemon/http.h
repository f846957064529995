/*
 * The libuv <-> curl multi glue shared by polling and webhooks. It is the
 * only file that sees curl: callers build a request (URL, headers, optional
 * POST body), submit it, and get one callback with the result.
 *
 * One struct http per loop; one struct http_req per transfer slot, reusable:
 * its easy handle keeps its settings and connections stay in the pool.
 */
#ifndef EW_HTTP_H
#define EW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http;
struct http_req;
struct http_headers;

/* Why a transfer got no usable answer. */
enum http_error {
	HTTP_OK = 0,            /* an HTTP answer arrived (any status) */
	HTTP_ERR_TIMEOUT,
	HTTP_ERR_CONNECT,       /* resolve, connect, connection reset */
	HTTP_ERR_TLS,           /* certificate or handshake: a configuration problem */
	HTTP_ERR_TOO_BIG,       /* the decoded body passed max_body and was cut off */
	HTTP_ERR_WIRE_CAP,      /* the answer was larger on the wire than the request's wire cap: stopped */
	HTTP_ERR_OTHER,
};

/* The outcome of one transfer; borrowed for the duration of the callback. */
struct http_result {
	long status;                /* HTTP status, 0 when there was no answer */
	enum http_error error;
	const char *error_text;     /* empty when error is HTTP_OK */
	const char *body;           /* NUL-terminated, never NULL */
	size_t body_len;
	uint64_t total_us;          /* whole transfer */
	uint64_t wire_bytes;        /* received: headers + body as sent (compressed), after TLS */
	uint64_t decoded_bytes;     /* body bytes after decoding, kept, streamed or dropped */
	int64_t content_length;     /* the answer's Content-Length (wire), -1: none or no answer */
};

typedef void (*http_done_fn)(struct http_req *req, const struct http_result *res, void *arg);

/* Transport settings of a request (curl copies them; nothing is kept). */
struct http_opts {
	const char *ca_file;        /* CA bundle replacing the system store, or NULL */
	const char *proxy;          /* proxy URL; NULL: the environment's (https_proxy, no_proxy); "": none */
	const char *no_proxy;       /* hosts that bypass the proxy, or NULL */
	const char *proxy_userpwd;  /* "user:password" for the proxy, or NULL */
};

/* Initialises libcurl for the process, once, at start-up before any other http_* call. Returns 0 or -EIO. */
int http_global_init(void);
/* Releases libcurl's global state, after the last http_close. */
void http_global_cleanup(void);

/* Sets up the multi handle on loop. Returns 0 or a negative errno. */
int http_new(uv_loop_t *loop, unsigned max_connections, struct http **ret);
/* Removes every transfer (no callbacks), cleans up curl; freed once its timer has closed. */
void http_close(struct http *h);

/* A request slot. max_body caps the response; past it the transfer fails
 * (HTTP_ERR_TOO_BIG), or with discard_excess the rest is dropped silently. */
struct http_req *http_req_new(struct http *h, size_t max_body, bool discard_excess);
/* Frees a request, cancelling it first when it runs. Accepts NULL. */
void http_req_free(struct http_req *r);
/*
 * Sets what the next submit sends: GET url, or POST when body is not NULL
 * (body is borrowed until done). headers are referenced while the transfer
 * runs. o (or NULL: defaults) sets the CA bundle and the proxy.
 */
void http_req_set(struct http_req *r, const char *url, struct http_headers *headers, const char *body,
		  size_t body_len, const struct http_opts *o);
/*
 * A 200 answer's body goes to fn chunk by chunk instead of being kept (other
 * answers are kept, up to 64 KiB, for the caller to read). fn returns
 * non-zero to stop the transfer (HTTP_ERR_OTHER). max_body still caps the
 * whole body (HTTP_ERR_TOO_BIG). fn NULL: keep the body again.
 */
typedef int (*http_chunk_fn)(const char *data, size_t len, void *arg);
void http_req_stream(struct http_req *r, http_chunk_fn fn, void *arg);
/*
 * Asks for every content encoding libcurl was built with (gzip, deflate, br,
 * zstd); answers are decoded before max_body, the stream callback and
 * body_len see them, so caps apply to decoded bytes. Off for a new slot.
 */
void http_req_compressed(struct http_req *r, bool on);
/*
 * Stops a transfer once its answer is larger on the wire than max bytes
 * (from Content-Length at the first chunk of the body, else as bytes
 * arrive): HTTP_ERR_WIRE_CAP. 0: no cap. Kept for the next submits.
 */
void http_req_wire_cap(struct http_req *r, uint64_t max);
/*
 * Cuts a transfer that receives fewer than bytes_per_s bytes a second,
 * on average, for secs seconds (a server trickling a list): a timeout error
 * naming the speed. 0: off. Kept for the next submits.
 */
void http_req_low_speed(struct http_req *r, long bytes_per_s, long secs);
/*
 * One more header line (a conditional request's If-None-Match) sent before
 * the shared list on the next submits; copied. NULL: none.
 */
void http_req_header(struct http_req *r, const char *line);
/* Starts the transfer; done runs once from the loop, whatever the outcome. Returns 0 or -EIO. */
int http_submit(struct http_req *r, long timeout_ms, http_done_fn done, void *arg);
/* Stops a running transfer without calling its done callback. */
void http_cancel(struct http_req *r);
/* A response header's value (the last of that name), or NULL; valid during done only. */
const char *http_header(struct http_req *r, const char *name);
/* Connections opened so far by this multi (for tests and metrics). */
uint64_t http_connects(const struct http *h);

/* A header list, reference-counted: a reload may replace it while transfers still use it. */
struct http_headers *http_headers_new(void);
/* Appends "Name: value". */
void http_headers_add(struct http_headers *h, const char *line);
struct http_headers *http_headers_ref(struct http_headers *h);
/* Drops a reference; the last one wipes every line (they may hold a key) and frees. Accepts NULL. */
void http_headers_unref(struct http_headers *h);

#endif
