/*
 * Faults: which one applies to a request, and the answers they make (a status,
 * a drop, a delay, a malformed, oversized, truncated or trickled body, a bomb).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"

struct trunc_ctx {
	char *data;
	size_t len;
	size_t cut;
};

static ssize_t trunc_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct trunc_ctx *t = cls;
	if (pos >= t->cut)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	size_t n = t->cut - (size_t)pos;
	if (n > max)
		n = max;
	memcpy(out, t->data + pos, n);
	return (ssize_t)n;
}

static void trunc_free(void *cls)
{
	struct trunc_ctx *t = cls;
	free(t->data);
	free(t);
}

/* Finds and consumes the first fault that applies; copies it to *ret. Caller holds sim_st.mu. */
bool sim_fault_take(unsigned target, const char *job, int64_t now, struct sim_fault *ret)
{
	struct sim_fault **pp = &sim_st.faults;
	while (*pp) {
		struct sim_fault *f = *pp;
		if ((f->has_until && now >= f->until_ms) || f->remaining == 0) {
			*pp = f->next;
			free(f->job);
			free(f);
			continue;
		}
		if ((f->targets & target) && (!f->job || (job && strcmp(f->job, job) == 0))) {
			if (f->remaining > 0)
				f->remaining--;
			f->hits++;
			*ret = *f;
			ret->job = NULL;
			ret->next = NULL;
			return true;
		}
		pp = &f->next;
	}
	return false;
}

void sim_fault_retry_after(const struct sim_fault *f, char *buf, size_t len)
{
	if (f->retry_after_date > 0)
		sim_http_date(sim_wall_ms(sim_now()) / 1000 + f->retry_after_date, buf, len);
	else
		snprintf(buf, len, "%s", f->retry_after);
}

/*
 * Applies a fault to an answer. Returns true when the fault produced the
 * answer itself (*ret set), false when the normal answer should follow.
 */
bool sim_fault_apply(struct MHD_Connection *c, const struct sim_fault *f, const char *id, enum MHD_Result *ret)
{
	char ra[64] = "";
	switch (f->kind) {
	case F_DELAY:
		usleep((useconds_t)(f->delay_ms * 1000));
		return false;
	case F_DROP:
		*ret = MHD_NO;
		return true;
	case F_STATUS:
		sim_fault_retry_after(f, ra, sizeof(ra));
		{
			char *d = xstrdup("{\"message\":\"injected fault\"}");
			*ret = sim_send_buf(c, f->status, "application/json", d, strlen(d), ra);
		}
		return true;
	case F_MALFORMED: {
		struct buf b = { 0 };
		buf_printf(&b, "{\"job_id\":\"%s\",\"status\":\"processing\",\"created_at\":", id ? id : "x");
		*ret = sim_send_json(c, 200, &b);
		return true;
	}
	case F_CONTENT_TYPE: {
		char *d = xstrdup("<html><body><h1>Service temporarily unavailable</h1></body></html>");
		*ret = sim_send_buf(c, 200, "text/html", d, strlen(d), NULL);
		return true;
	}
	case F_OVERSIZED: {
		size_t pad = API_BODY_MAX + 65536;
		struct buf b = { 0 };
		buf_printf(&b, "{\"job_id\":\"%s\",\"name\":\"", id ? id : "x");
		char *x = xmalloc(pad);
		memset(x, 'x', pad);
		buf_append(&b, x, pad);
		free(x);
		buf_printf(&b, "\",\"status\":\"processing\",\"created_at\":\"2024-01-01T00:00:00Z\","
			   "\"input_dataset_id\":\"d\",\"model\":\"m\",\"truncate\":\"END\"}");
		*ret = sim_send_json(c, 200, &b);
		return true;
	}
	case F_BOMB:
		/* The list is asked for with an empty id. */
		*ret = sim_answer_bomb(c, id && !*id, f->size);
		return true;
	case F_TRUNCATED:
	case F_TRICKLE:
		return false;   /* handled where the body is made */
	}
	return false;
}

enum MHD_Result sim_answer_truncated(struct MHD_Connection *c, struct buf *b)
{
	struct trunc_ctx *t = xmalloc(sizeof(*t));
	t->data = b->data;
	t->len = b->len;
	t->cut = b->len / 2;
	b->data = NULL;
	struct MHD_Response *r = MHD_create_response_from_callback(t->len, 4096, trunc_reader, t, trunc_free);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

struct trickle_ctx {
	char *data;
	size_t len;
	uint64_t bytes_per_s;
	uint64_t t0_ms;         /* monotonic, when the answer was queued: the headers go then */
};

/*
 * Gives the bytes due by now at bytes_per_s, sleeping until at least one is.
 * The sleep holds only this connection's thread (the server runs one per
 * connection, which F_DELAY's sleep relies on too): other connections, the
 * admin API and the listener go on. Returning 0 instead would make this
 * thread spin, since nothing would resume it.
 */
static ssize_t trickle_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct trickle_ctx *t = cls;
	uint64_t el, due;

	if (pos >= t->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	for (;;) {
		el = util_mono_ms() - t->t0_ms;
		due = el * t->bytes_per_s / 1000;
		if (due > pos)
			break;
		/* Byte pos + 1 is due at ceil((pos + 1) * 1000 / rate) ms. */
		uint64_t at = ((pos + 1) * 1000 + t->bytes_per_s - 1) / t->bytes_per_s;
		usleep((useconds_t)((at > el ? at - el : 1) * 1000));
	}
	uint64_t n = due - pos;
	if (n > t->len - pos)
		n = t->len - pos;
	if (n > max)
		n = max;
	memcpy(out, t->data + pos, (size_t)n);
	return (ssize_t)n;
}

static void trickle_free(void *cls)
{
	struct trickle_ctx *t = cls;
	free(t->data);
	free(t);
}

enum MHD_Result sim_answer_trickle(struct MHD_Connection *c, int status, struct buf *b, uint64_t bytes_per_s)
{
	struct trickle_ctx *t = xmalloc(sizeof(*t));
	t->data = b->data ? b->data : xstrdup("");
	t->len = b->len;
	t->bytes_per_s = bytes_per_s ? bytes_per_s : 1;
	t->t0_ms = util_mono_ms();
	b->data = NULL;
	b->len = b->cap = 0;
	/* The size is known: Content-Length, so the connection stays open for the next request. */
	struct MHD_Response *r = MHD_create_response_from_callback(t->len, 4096, trickle_reader, t, trickle_free);
	if (!r) {
		trickle_free(t);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}
