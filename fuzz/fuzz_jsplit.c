/*
 * libFuzzer target: the streaming list splitter, fed in random cuts.
 *
 * The input's first bytes choose the element cap, where the callback stops
 * the split, and up to 7 cut points; the rest is the list body. The body is
 * split three ways (whole, at the cuts, byte by byte) and every way must give
 * the same elements, fields, counts and outcome: a mismatch aborts. When
 * json-c (strict) accepts the body as {"embed_jobs": [...]} with that key
 * once, the splitter must accept it too and hand over the same elements.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_cuts.h"
#include "jsplit.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What one way of feeding saw: every element and its fields, serialised. */
struct seen {
	struct jsplit *s;
	struct buf log;
	size_t n, stop_at;          /* the callback fails on element stop_at (0: never) */
	json_object *elems[64];     /* the first elements parsed, for the json-c check */
	char *text[64];             /* their text */
	char *field[64][4];         /* the fields picked out, or NULL */
	size_t idx[64];             /* their index in the list, skipped ones counted */
	size_t n_parsed;
};

static int on_elem(const struct jsplit_elem *e, void *arg)
{
	struct seen *w = arg;
	const char *f[4] = { e->job_id, e->name, e->status, e->created_at };
	if (e->text[e->len] != '\0' || e->len > w->s->elem_max)
		abort();
	buf_printf(&w->log, "%zu:", e->len);
	buf_append(&w->log, e->text, e->len);
	for (int i = 0; i < 4; i++) {
		if (f[i] && strlen(f[i]) >= JSPLIT_FIELD_MAX)
			abort();
		buf_printf(&w->log, "|%d%s", f[i] != NULL, f[i] ? f[i] : "");
	}
	buf_append(&w->log, "\n", 1);
	if (w->n_parsed < ARRAY_SIZE(w->elems)) {
		w->idx[w->n_parsed] = w->s->elements - 1 + w->s->skipped;
		w->text[w->n_parsed] = xstrdup(e->text);
		for (int i = 0; i < 4; i++)
			w->field[w->n_parsed][i] = f[i] ? xstrdup(f[i]) : NULL;
		w->elems[w->n_parsed++] = json_tokener_parse(e->text);
	}
	return ++w->n == w->stop_at ? -ECANCELED : 0;
}

struct outcome {
	int rc;
	const char *error;
	size_t elements, skipped;
};

/* Feeds body in the pieces ending at cuts[0..ncuts) and then at len; returns the outcome, w the elements. */
static struct outcome run(const char *body, size_t len, const size_t *cuts, size_t ncuts, size_t elem_max,
			  struct seen *w)
{
	struct jsplit s;
	struct outcome o = { 0 };
	size_t at = 0;
	jsplit_init(&s, elem_max, on_elem, w);
	w->s = &s;
	for (size_t i = 0; i <= ncuts && o.rc == 0; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		o.rc = jsplit_feed(&s, body + at, end - at);
		at = end;
	}
	if (o.rc == 0)
		o.rc = jsplit_finish(&s);
	o.error = s.error;
	o.elements = s.elements;
	o.skipped = s.skipped;
	jsplit_free(&s);
	return o;
}

static void seen_free(struct seen *w)
{
	buf_free(&w->log);
	for (size_t i = 0; i < w->n_parsed; i++) {
		json_object_put(w->elems[i]);
		free(w->text[i]);
		for (int f = 0; f < 4; f++)
			free(w->field[i][f]);
	}
}

static void same(const struct outcome *a, const struct seen *wa, const struct outcome *b, const struct seen *wb)
{
	if (a->rc != b->rc || a->elements != b->elements || a->skipped != b->skipped ||
	    (a->error == NULL) != (b->error == NULL) || (a->error && strcmp(a->error, b->error) != 0) ||
	    wa->log.len != wb->log.len || (wa->log.len && memcmp(wa->log.data, wb->log.data, wa->log.len) != 0)) {
		fprintf(stderr, "jsplit: the cut changed the result: rc %d/%d, elements %zu/%zu, skipped %zu/%zu, "
			"error \"%s\"/\"%s\"\n", a->rc, b->rc, a->elements, b->elements, a->skipped, b->skipped,
			a->error ? a->error : "", b->error ? b->error : "");
		abort();
	}
}

static size_t count(const char *hay, size_t len, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	for (size_t i = 0; i + nl <= len; i++)
		n += memcmp(hay + i, needle, nl) == 0;
	return n;
}

/*
 * A field picked out must be the member's value as a parse reads it (the
 * last, when it is given twice); a member that is a plain string (no escape
 * in the element, short enough) must be picked out.
 */
static void check_field(const char *text, json_object *elem, const char *name, const char *got)
{
	char quoted[32];
	json_object *v;
	snprintf(quoted, sizeof(quoted), "\"%s\"", name);
	size_t keys = count(text, strlen(text), quoted);
	bool is_str = json_object_is_type(elem, json_type_object) && json_object_object_get_ex(elem, name, &v) &&
		      json_object_is_type(v, json_type_string);
	if (got && (!is_str || keys == 0 || strcmp(json_object_get_string(v), got) != 0)) {
		fprintf(stderr, "jsplit: picked %s \"%s\", json-c reads %s\n", name, got,
			is_str ? json_object_get_string(v) : "no string");
		abort();
	}
	if (!got && is_str && !strchr(text, '\\') &&
	    (size_t)json_object_get_string_len(v) < JSPLIT_FIELD_MAX) {
		fprintf(stderr, "jsplit: %s \"%s\" not picked out\n", name, json_object_get_string(v));
		abort();
	}
}

/* The json-c check: a valid list with one "embed_jobs" key is split into exactly its elements. */
static void against_jsonc(const char *body, size_t len, const struct outcome *o, const struct seen *w)
{
	if (count(body, len, "\"embed_jobs\"") != 1 || memchr(body, '\0', len))
		return;
	struct json_tokener *tok = json_tokener_new_ex(32);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *root = json_tokener_parse_ex(tok, body, (int)len), *list;
	size_t end = json_tokener_get_parse_end(tok);
	bool ok = root && json_tokener_get_error(tok) == json_tokener_success &&
		  json_object_is_type(root, json_type_object) &&
		  json_object_object_get_ex(root, "embed_jobs", &list) && json_object_is_type(list, json_type_array);
	for (; ok && end < len; end++)
		ok = strchr(" \t\r\n", body[end]) != NULL;
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(root);
		return;
	}
	size_t n = json_object_array_length(list);
	if (o->rc != 0 || o->elements + o->skipped != n) {
		fprintf(stderr, "jsplit: json-c reads %zu elements, the splitter rc %d with %zu (+%zu skipped)\n", n,
			o->rc, o->elements, o->skipped);
		abort();
	}
	static const char *const names[4] = { "job_id", "name", "status", "created_at" };
	for (size_t i = 0; i < w->n_parsed; i++) {
		json_object *want = json_object_array_get_idx(list, w->idx[i]), *got = w->elems[i];
		if (!json_object_equal(want, got)) {
			fprintf(stderr, "jsplit: element %zu differs from json-c's\n", w->idx[i]);
			abort();
		}
		for (int f = 0; f < 4; f++)
			check_field(w->text[i], want, names[f], w->field[i][f]);
	}
	json_object_put(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ncuts, cuts[FUZZ_CUTS_MAX + 1];
	if (size < 2)
		return 0;
	/* Byte 0: the element cap; byte 1: the element the callback stops at (0: none); then the cuts. */
	size_t elem_max = data[0] < 128 ? (size_t)1 << 20 : (size_t)(data[0] - 128) * 4;
	size_t stop_at = data[1] < 200 ? 0 : (size_t)(data[1] - 199);
	data += 2, size -= 2;
	if (!fuzz_cuts(&data, &size, cuts, &ncuts))
		return 0;
	const char *body = (const char *)data;
	size_t len = size;

	struct seen whole = { .stop_at = stop_at }, cut = { .stop_at = stop_at }, bytes = { .stop_at = stop_at };
	struct outcome ow = run(body, len, NULL, 0, elem_max, &whole);
	struct outcome oc = run(body, len, cuts, ncuts, elem_max, &cut);
	same(&ow, &whole, &oc, &cut);
	if (len <= 4096) {
		size_t *every = malloc((len + 1) * sizeof(*every));
		for (size_t i = 0; i < len; i++)
			every[i] = i + 1;
		struct outcome ob = run(body, len, every, len ? len - 1 : 0, elem_max, &bytes);
		same(&ow, &whole, &ob, &bytes);
		free(every);
	}
	if (!stop_at)
		against_jsonc(body, len, &ow, &whole);
	seen_free(&whole);
	seen_free(&cut);
	seen_free(&bytes);
	return 0;
}
