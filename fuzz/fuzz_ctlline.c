/*
 * libFuzzer target: the control socket's request stream, fed as it arrives.
 *
 * The input's first bytes choose the line limit and up to 7 cut points; the
 * rest is what a client sends. Framed as control.c frames it (append, take
 * every complete line, keep the rest, drop the client when the rest is over
 * the limit) and each line parsed, the requests and the outcome must be
 * those of the whole stream at once: a mismatch aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlproto.h"
#include "fuzz_cuts.h"
#include "util.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct reader {
	struct buf in;              /* what has arrived and is not taken yet */
	struct buf log;             /* one entry per request: its length, command or error */
	size_t max;
	bool dropped;
};

static void one(struct reader *rd, const char *line, size_t len)
{
	enum ctl_cmd cmd;
	json_object *req;
	char err[256];
	if (ctlproto_parse(line, len, &cmd, &req, err, sizeof(err)) < 0) {
		if (req || !err[0])
			abort();
		buf_printf(&rd->log, "%zu error %s\n", len, err);
		return;
	}
	if ((unsigned)cmd >= CTL__MAX || !json_object_is_type(req, json_type_object))
		abort();
	buf_printf(&rd->log, "%zu cmd %d\n", len, (int)cmd);
	json_object_put(req);
}

/* control.c's process(): every complete line, then the rest moves to the front. */
static void take_lines(struct reader *rd)
{
	size_t start = 0, len;
	int r;
	while (!rd->dropped && (r = ctlproto_line(rd->in.data + start, rd->in.len - start, rd->max, &len)) != 0) {
		if (r < 0) {
			rd->dropped = true;
			break;
		}
		if (rd->in.data[start + len] != '\n' || memchr(rd->in.data + start, '\n', len))
			abort();
		if (len > 0)
			one(rd, rd->in.data + start, len);
		start += len + 1;
	}
	memmove(rd->in.data, rd->in.data + start, rd->in.len - start);
	rd->in.len -= start;
	if (rd->in.len > rd->max)
		rd->dropped = true;
}

static void feed(struct reader *rd, const char *p, size_t n)
{
	if (rd->dropped)
		return;
	buf_append(&rd->in, p, n);
	take_lines(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ncuts, cuts[FUZZ_CUTS_MAX + 1];
	if (size < 1)
		return 0;
	/* Byte 0: the line limit (0: the daemon's 1 MiB); then the cuts. */
	size_t max = data[0] ? (size_t)data[0] * 2 : 1024 * 1024;
	data++, size--;
	if (!fuzz_cuts(&data, &size, cuts, &ncuts))
		return 0;
	const char *in = (const char *)data;
	size_t len = size;

	struct reader whole = { .max = max }, cut = { .max = max };
	feed(&whole, in, len);
	for (size_t i = 0, at = 0; i <= ncuts; at = cuts[i++])
		feed(&cut, in + at, cuts[i] - at);
	if (whole.dropped != cut.dropped || whole.log.len != cut.log.len ||
	    (whole.log.len && memcmp(whole.log.data, cut.log.data, whole.log.len) != 0) ||
	    (!whole.dropped && (whole.in.len != cut.in.len || memcmp(whole.in.data, cut.in.data, whole.in.len) != 0))) {
		fprintf(stderr, "ctlline: the cut changed the requests (dropped %d/%d)\n", whole.dropped, cut.dropped);
		abort();
	}
	buf_free(&whole.in);
	buf_free(&whole.log);
	buf_free(&cut.in);
	buf_free(&cut.log);
	return 0;
}
