/*
 * libFuzzer target: the /metrics request head reader, fed as the daemon reads.
 *
 * The input's first bytes choose the buffer size and up to 7 cut points; the
 * rest is what the client sends. Read as metrics_http.c reads it (into a
 * buffer of that size, parsing after every read, stopping at the first
 * answer), the outcome must be the one the whole buffer gives, and a parsed
 * request line must lie inside the head: a mismatch aborts.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_cuts.h"
#include "httpreq.h"

#define REQ_MAX 8192        /* as in metrics_http.c: the buffer holds REQ_MAX - 1 bytes */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parsed(const char *buf, size_t len, const struct httpreq *rq)
{
	if (rq->head_len == 0 || rq->head_len > len || buf[rq->head_len - 1] != '\n' || rq->path < buf ||
	    rq->path + rq->path_len > buf + rq->head_len || (rq->path_len == 0 && rq->path[0] != '?') ||
	    memchr(rq->path, ' ', rq->path_len) || memchr(rq->path, '?', rq->path_len) ||
	    memchr(rq->path, '\n', rq->path_len) || (unsigned)rq->method > HTTPREQ_OTHER)
		abort();
	if (rq->method == HTTPREQ_GET && memcmp(buf, "GET ", 4) != 0)
		abort();
	if (rq->method == HTTPREQ_HEAD && memcmp(buf, "HEAD ", 5) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ncuts, cuts[FUZZ_CUTS_MAX + 1];
	if (size < 1)
		return 0;
	/* Byte 0: the buffer (0: the daemon's); then the cuts. */
	size_t max = data[0] ? (size_t)data[0] * 4 : REQ_MAX - 1;
	data++, size--;
	if (!fuzz_cuts(&data, &size, cuts, &ncuts))
		return 0;
	const char *in = (const char *)data;
	size_t len = size;

	/* As the daemon reads: each segment arrives in reads no larger than the room left. */
	char *buf = malloc(max + 1);
	size_t have = 0, at = 0;
	struct httpreq rq = { 0 }, whole = { 0 };
	int r = 0;
	for (size_t i = 0; i <= ncuts && r == 0; i++) {
		while (at < cuts[i] && r == 0) {
			size_t n = cuts[i] - at;
			if (n > max - have)
				n = max - have;
			memcpy(buf + have, in + at, n);
			have += n;
			at += n;
			r = httpreq_parse(buf, have, max, &rq);
		}
	}
	size_t wlen = len < max ? len : max;
	int w = httpreq_parse(in, wlen, max, &whole);
	if (r != w || (r == 1 && (rq.method != whole.method || rq.path_len != whole.path_len ||
				  rq.head_len != whole.head_len || rq.path - buf != whole.path - in))) {
		fprintf(stderr, "httpreq: read in pieces %d, whole %d\n", r, w);
		abort();
	}
	if (r == 1)
		check_parsed(buf, have, &rq);
	if (r != 1 && r != 0 && r != -EMSGSIZE && r != -EINVAL)
		abort();
	free(buf);
	return 0;
}
