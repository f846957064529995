/*
 * The request head of a minimal HTTP/1.x server (the /metrics endpoint):
 * finds the end of the head in what has arrived so far and reads its request
 * line. Headers are not interpreted; the body, if any, is ignored. Pure.
 */
#ifndef EW_HTTPREQ_H
#define EW_HTTPREQ_H

#include <stddef.h>

enum httpreq_method { HTTPREQ_GET, HTTPREQ_HEAD, HTTPREQ_OTHER };

/* A parsed request line; path points into the caller's buffer. */
struct httpreq {
	enum httpreq_method method;
	const char *path;           /* the target up to '?' (not NUL-terminated) */
	size_t path_len;
	size_t head_len;            /* bytes of the head, its blank line included */
};

/*
 * Reads the head from buf[0..len) (the bytes received so far; NULs allowed).
 * Returns 1 when the head is complete (filled in *ret), 0 when more bytes are
 * needed, -EMSGSIZE when no complete head fits in max bytes, or -EINVAL when
 * the request line is not "METHOD SP TARGET SP HTTP/1.x".
 */
int httpreq_parse(const char *buf, size_t len, size_t max, struct httpreq *ret);

#endif
