/*
 * The simulator's answer path for the API: gzip when the request's
 * Accept-Encoding allows it (zlib: libmicrohttpd does not compress),
 * validators and 304 answers with --etag, the gzip bomb fault, and the
 * key's history, rendered once with realistic entropy. Bytes sent and their
 * identity size are counted per kind of answer, for tests and benchmarks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "sim.h"

/* History dates are before this (2025-01-01T00:00:00Z): its Last-Modified never moves. */
#define HISTORY_END_MS 1735689600000LL

/* ---- the history ---- */

/* splitmix64: a seeded, deterministic stream, so every run serves the same history. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A UUID-shaped id from two random words: what the real API's ids look like, and as incompressible. */
static void uuid(uint64_t *s, char *out, size_t len)
{
	uint64_t a = mix(s), b = mix(s);
	snprintf(out, len, "%08llx-%04llx-4%03llx-%04llx-%012llx", (unsigned long long)(a >> 32),
		 (unsigned long long)((a >> 16) & 0xffff), (unsigned long long)(a & 0xfff),
		 (unsigned long long)(0x8000 | ((b >> 48) & 0x3fff)), (unsigned long long)(b & 0xffffffffffffULL));
}

void sim_history_render(uint64_t n, uint64_t seed)
{
	static const char *const ends[] = { "complete", "complete", "complete", "failed", "cancelled" };
	static const char *const corpora[] = { "docs", "tickets", "wiki", "code", "mail", "chat", "kb", "faq" };
	static const char *const models[] = { "embed-english-v3.0", "embed-english-v3.0", "embed-multilingual-v3.0",
					      "embed-english-light-v3.0" };
	uint64_t s = seed;
	struct buf *b = &sim_st.history_json;

	buf_reset(b);
	for (uint64_t i = 0; i < n; i++) {
		char id[48], out[48], ds[48], created[40];
		/* Spread over 2024: most keys have a year or so of jobs behind them. */
		int64_t t = HISTORY_END_MS - 366LL * 86400000 + (int64_t)(mix(&s) % (365ULL * 86400000));
		uint64_t r = mix(&s);
		const char *st = ends[r % 5];
		const char *corpus = corpora[(r >> 8) % 8];
		uuid(&s, id, sizeof(id));
		uuid(&s, out, sizeof(out));
		/* Datasets are reused across jobs: a pool of a few hundred per key. */
		snprintf(ds, sizeof(ds), "%s-%08llx", corpus, (unsigned long long)((r >> 16) % 400 * 2654435761ULL & 0xffffffffULL));
		util_rfc3339(t, created, sizeof(created));
		buf_printf(b, ",{\"job_id\":\"hist-%s\",\"name\":\"backfill-%s-%04llu\",\"status\":\"%s\",\"created_at\":\"%s\","
			   "\"input_dataset_id\":\"%s\",%s%s%s\"model\":\"%s\",\"truncate\":\"%s\",\"meta\":{\"api_version\":"
			   "{\"version\":\"1\"},\"billed_units\":{\"input_tokens\":%llu}}}", id, corpus,
			   (unsigned long long)(i % 10000), st, created, ds, r % 5 < 3 ? "\"output_dataset_id\":\"embeded-" : "",
			   r % 5 < 3 ? out : "", r % 5 < 3 ? "\"," : "", models[(r >> 24) % 4], (r >> 28) % 8 ? "END" : "NONE",
			   (unsigned long long)((r >> 32) % 2000000));
	}
}

/* ---- validators ---- */

/* When what j's document shows last changed (sim clock), at or before now. */
static int64_t job_changed_at(const struct sim_job *j, int64_t now)
{
	int64_t t = j->created_ms;
	for (int i = 0; i < j->n_steps; i++) {
		int64_t at = j->created_ms + (int64_t)j->steps[i].at_ms;
		if (at <= now && at > t)
			t = at;
	}
	if (j->cancel_ms && j->cancel_ms <= now) {
		int64_t done = j->cancel_ms + (int64_t)sim_st.cancel_delay_ms;
		if (j->cancel_ms > t)
			t = j->cancel_ms;
		if (done <= now && done > t)
			t = done;
	}
	return t;
}

int64_t sim_list_changed_at(int64_t now)
{
	int64_t t = sim_st.history ? HISTORY_END_MS : 0;
	for (size_t i = 0; i < sim_st.n_jobs; i++) {
		int64_t c = job_changed_at(sim_st.job_list[i], now);
		if (c > t)
			t = c;
	}
	return t;
}

int64_t sim_job_changed_at(const struct sim_job *j, int64_t now)
{
	return job_changed_at(j, now);
}

/* FNV-1a, 64 bits: the ETag is a function of the identity body, so it changes exactly when the body does. */
static uint64_t body_hash(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h;
}

/* Weak comparison (RFC 9110 8.8.3.2): W/ does not count, so an ETag matches whatever the encoding. */
static bool etag_listed(const char *header, const char *etag)
{
	const char *want = etag[0] == 'W' ? etag + 2 : etag;
	size_t wn = strlen(want);
	for (const char *p = header; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		size_t n = strcspn(p, ",");
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == wn && memcmp(p, want, n) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static int64_t parse_http_date(const char *s)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	return (int64_t)timegm(&tm);
}

int sim_answer_check(struct MHD_Connection *c, int status, const struct buf *b, struct sim_answer *a)
{
	a->validators = false;
	if (!sim_st.etag || status != 200 || a->kind == K_CANCEL)
		return status;
	a->validators = true;
	snprintf(a->etag, sizeof(a->etag), "W/\"%016llx\"", (unsigned long long)body_hash(b->data ? b->data : "", b->len));
	sim_http_date(a->changed_ms / 1000, a->last_modified, sizeof(a->last_modified));
	const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
	const char *ims = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Modified-Since");
	/* If-None-Match decides when present (RFC 9110 13.2.2); If-Modified-Since only without it. */
	if (inm)
		return sim_st.etag_mode != ETAG_LAST_MODIFIED && etag_listed(inm, a->etag) ? 304 : status;
	if (ims && sim_st.etag_mode != ETAG_ONLY) {
		int64_t since = parse_http_date(ims);
		if (since >= 0 && since >= a->changed_ms / 1000)
			return 304;
	}
	return status;
}

/* ---- encoding ---- */

/* True when Accept-Encoding names gzip (or *) without q=0. */
static bool accepts_gzip(struct MHD_Connection *c)
{
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	bool star = false, gz = false, gz_refused = false;
	if (!ae)
		return false;
	for (const char *p = ae; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t n = strcspn(p, ",");
		size_t name = strcspn(p, ";, \t");
		if (name > n)
			name = n;
		const char *q = memchr(p, ';', n);
		bool zero = false;
		if (q) {
			const char *v = strstr(q, "q=");
			if (v && v < p + n) {
				double d = strtod(v + 2, NULL);
				zero = d <= 0.0;
			}
		}
		if ((name == 4 && strncasecmp(p, "gzip", 4) == 0) || (name == 6 && strncasecmp(p, "x-gzip", 6) == 0)) {
			gz = !zero;
			gz_refused = zero;
		} else if (name == 1 && *p == '*') {
			star = !zero;
		}
		p += n;
	}
	return gz || (star && !gz_refused);
}

/* data[0..len) as one gzip member into out. Returns 0 or -1. */
static int gzip_buf(const char *data, size_t len, int level, int strategy, struct buf *out)
{
	z_stream z = { 0 };
	if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, strategy) != Z_OK)
		return -1;
	size_t cap = deflateBound(&z, (uLong)len);
	buf_reset(out);
	buf_append(out, "", 0);
	out->data = xrealloc(out->data, cap + 1);
	out->cap = cap + 1;
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out->data;
	z.avail_out = (uInt)cap;
	int r = deflate(&z, Z_FINISH);
	out->len = cap - z.avail_out;
	out->data[out->len] = '\0';
	deflateEnd(&z);
	return r == Z_STREAM_END ? 0 : -1;
}

static void count_bytes(enum sim_kind kind, size_t sent, size_t identity)
{
	pthread_mutex_lock(&sim_st.mu);
	sim_st.bytes_sent[kind] += sent;
	sim_st.bytes_identity[kind] += identity;
	pthread_mutex_unlock(&sim_st.mu);
}

enum MHD_Result sim_answer_send(struct MHD_Connection *c, int status, struct buf *b, struct sim_answer *a)
{
	struct buf z = { 0 };
	bool gz = false;
	char date[40];

	if (status == 304) {
		buf_free(b);
	} else if (sim_st.gzip && accepts_gzip(c) && b->len > 0 && gzip_buf(b->data, b->len, sim_st.gzip_level, Z_DEFAULT_STRATEGY, &z) == 0) {
		count_bytes(a->kind, z.len, b->len);
		buf_free(b);
		*b = z;
		gz = true;
	} else {
		buf_free(&z);
		count_bytes(a->kind, b->len, b->len);
	}
	char *d = b->data ? b->data : xstrdup("");
	size_t n = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	struct MHD_Response *r = MHD_create_response_from_buffer(n, d, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(d);
		return MHD_NO;
	}
	if (status != 304)
		MHD_add_response_header(r, "Content-Type", "application/json");
	if (gz)
		MHD_add_response_header(r, "Content-Encoding", "gzip");
	if (sim_st.gzip)
		MHD_add_response_header(r, "Vary", "Accept-Encoding");
	if (a->validators) {
		if (sim_st.etag_mode != ETAG_LAST_MODIFIED)
			MHD_add_response_header(r, "ETag", a->etag);
		if (sim_st.etag_mode != ETAG_ONLY)
			MHD_add_response_header(r, "Last-Modified", a->last_modified);
		/* The Date the validators are read against is the sim clock's, like Last-Modified, and
		 * the time the body was made: a Date taken now, after a long list was made and
		 * compressed, can be a second later than the body, and a client that takes Last-Modified
		 * as exact when Date is a later second would then miss a change made later in the
		 * body's second (RFC 9110 8.8.2.2). */
		sim_http_date(a->made_ms / 1000, date, sizeof(date));
		MHD_add_response_header(r, "Date", date);
	}
	if (a->warning && *a->warning)
		MHD_add_response_header(r, "X-API-Warning", a->warning);
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * Gzip bombs, made once per shape and size and kept: making one (64 MiB
 * through deflate) takes long enough on a loaded machine to time a client
 * out, and the answer must be the bomb, not a delay. Own lock: sim_st.mu is
 * not held while one is made.
 */
static pthread_mutex_t bomb_mu = PTHREAD_MUTEX_INITIALIZER;
static struct bomb { bool list; uint64_t size; struct buf z; } bombs[8];
static size_t n_bombs;

static const struct buf *bomb_get(bool list, uint64_t size)
{
	const struct buf *found = NULL;
	pthread_mutex_lock(&bomb_mu);
	for (size_t i = 0; i < n_bombs && !found; i++)
		if (bombs[i].list == list && bombs[i].size == size)
			found = &bombs[i].z;
	if (!found && n_bombs < ARRAY_SIZE(bombs)) {
		/* Valid JSON all the way: an opening, whitespace, a closing. Only the size is hostile. */
		const char *open = list ? "{\"embed_jobs\":[" : "{\"job_id\":";
		const char *close = list ? "]}" : "\"x\"}";
		size_t lo = strlen(open), lc = strlen(close), spaces = (size_t)size - lo - lc;
		char chunk[65536];
		z_stream z = { 0 };
		struct bomb *b = &bombs[n_bombs];
		memset(chunk, ' ', sizeof(chunk));
		/* Z_RLE: runs are all there is, and it is the fastest strategy for them. */
		if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_RLE) == Z_OK) {
			char out[65536];
			int flush = Z_NO_FLUSH, r = Z_OK;
			size_t left = spaces;
			int stage = 0;      /* 0: opening, 1: spaces, 2: closing */
			while (r != Z_STREAM_END) {
				if (z.avail_in == 0 && flush == Z_NO_FLUSH) {
					if (stage == 0) {
						z.next_in = (Bytef *)(uintptr_t)open;
						z.avail_in = (uInt)lo;
						stage = 1;
					} else if (stage == 1 && left) {
						size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
						z.next_in = (Bytef *)chunk;
						z.avail_in = (uInt)n;
						left -= n;
					} else {
						z.next_in = (Bytef *)(uintptr_t)close;
						z.avail_in = (uInt)lc;
						flush = Z_FINISH;
					}
				}
				z.next_out = (Bytef *)out;
				z.avail_out = sizeof(out);
				r = deflate(&z, flush);
				if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
					break;
				buf_append(&b->z, out, sizeof(out) - z.avail_out);
			}
			deflateEnd(&z);
			if (r == Z_STREAM_END) {
				b->list = list;
				b->size = size;
				found = &b->z;
				n_bombs++;
			} else {
				buf_free(&b->z);
			}
		}
	}
	pthread_mutex_unlock(&bomb_mu);
	return found;
}

void sim_bomb_prepare(bool list, uint64_t size)
{
	bomb_get(list, size);
}

enum MHD_Result sim_answer_bomb(struct MHD_Connection *c, bool list, uint64_t size)
{
	const struct buf *z = bomb_get(list, size);
	if (!z)
		return MHD_NO;
	count_bytes(list ? K_LIST : K_POLL, z->len, (size_t)size);
	struct MHD_Response *resp = MHD_create_response_from_buffer(z->len, z->data, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	/* Sent whether or not it was asked for: a hostile server does not ask. */
	MHD_add_response_header(resp, "Content-Encoding", "gzip");
	enum MHD_Result ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

void sim_bombs_free(void)
{
	for (size_t i = 0; i < n_bombs; i++)
		buf_free(&bombs[i].z);
	n_bombs = 0;
}
