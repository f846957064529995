/* The list splitter: a byte scanner that tracks strings and nesting, no tree. */
#include "jsplit.h"

#include <errno.h>
#include <string.h>

#define DEPTH_MAX JSPLIT_DEPTH_MAX

static const char *const field_names[4] = { "job_id", "name", "status", "created_at" };
static const size_t field_lens[4] = { 6, 4, 6, 10 };

void jsplit_init(struct jsplit *s, size_t elem_max, jsplit_fn fn, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fn = fn;
	s->arg = arg;
	s->elem_max = elem_max;
	s->field = -1;
}

void jsplit_free(struct jsplit *s)
{
	buf_free(&s->elem);
}

static int fail(struct jsplit *s, const char *why)
{
	if (!s->error)
		s->error = why;
	return -EINVAL;
}

static void elem_append(struct jsplit *s, const char *p, size_t n)
{
	if (s->elem_too_big)
		return;
	if (s->elem.len + n > s->elem_max) {
		s->elem_too_big = true;
		return;
	}
	buf_append(&s->elem, p, n);
}

static int elem_end(struct jsplit *s)
{
	int r = 0;
	s->capturing = false;
	if (s->elem_too_big) {
		s->skipped++;
	} else {
		/* A scalar element runs to the ',' or ']': drop the blanks before it. */
		while (s->elem.len && strchr(" \t\r\n", s->elem.data[s->elem.len - 1]))
			s->elem.data[--s->elem.len] = '\0';
		struct jsplit_elem e = { .text = s->elem.data ? s->elem.data : "", .len = s->elem.len };
		const char **dst[4] = { &e.job_id, &e.name, &e.status, &e.created_at };
		for (int i = 0; i < 4; i++)
			*dst[i] = s->have[i] ? s->fields[i] : NULL;
		s->elements++;
		r = s->fn(&e, s->arg);
	}
	buf_reset(&s->elem);
	s->elem_too_big = false;
	memset(s->have, 0, sizeof(s->have));
	return r;
}

int jsplit_feed(struct jsplit *s, const char *data, size_t len)
{
	size_t span = 0;            /* start of the element's bytes in this chunk */
	int r;

	if (s->error)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (s->done) {
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				return fail(s, "data after the end of the document");
			continue;
		}
		if (s->in_string) {
			if (!s->escape && !s->collect) {
				/* Text nobody reads: run to the next quote or backslash. */
				while (i < len && data[i] != '"' && data[i] != '\\')
					i++;
				if (i == len)
					break;
				c = data[i];
			}
			if (s->escape) {
				s->escape = false;
				s->string_escaped = true;
			} else if (c == '\\') {
				s->escape = true;
			} else if (c == '"') {
				s->in_string = false;
				if (s->reading_key) {
					s->reading_key = false;
					if (s->depth == 1)
						s->key_is_list = !s->string_escaped && s->key_len == 10 &&
								 memcmp(s->key, "embed_jobs", 10) == 0;
					if (s->depth == 3 && s->capturing) {
						s->field = -1;
						for (int f = 0; f < 4; f++)
							if (!s->string_escaped && s->key_len == field_lens[f] &&
							    memcmp(s->key, field_names[f], s->key_len) == 0)
								s->field = f;
						/*
						 * A repeated member overrides the earlier one, as in a parse
						 * (the last wins): what was picked is forgotten, and picked
						 * again only if this value can be. An escaped key may be any
						 * of the four: then all of them are forgotten.
						 */
						if (s->field >= 0)
							s->have[s->field] = false;
						else if (s->string_escaped)
							memset(s->have, 0, sizeof(s->have));
					}
				} else if (s->field >= 0 && s->depth == 3) {
					if (!s->string_escaped && s->key_len < JSPLIT_FIELD_MAX) {
						memcpy(s->fields[s->field], s->key, s->key_len);
						s->fields[s->field][s->key_len] = '\0';
						s->have[s->field] = true;
					}
					s->field = -1;
				}
				s->collect = false;
			} else if (s->collect && s->key_len <= JSPLIT_FIELD_MAX) {
				s->key[s->key_len++] = c;
			}
			continue;
		}
		switch (c) {
		case ' ': case '\t': case '\r': case '\n':
			break;
		case '"': {
			bool key_next = s->depth && s->stack[s->depth].kind == '{' && s->stack[s->depth].want_key;
			if (s->in_list && s->depth == 2 && !s->capturing) {
				s->capturing = true;
				span = i;
			}
			s->in_string = true;
			s->string_escaped = false;
			s->key_len = 0;
			if (key_next) {
				s->reading_key = true;
				s->stack[s->depth].want_key = 0;
			} else if (!(s->depth == 3 && s->capturing)) {
				s->field = -1;
			}
			/* Only keys at depth 1 (for embed_jobs) and 3 (element members), and the four fields, are read. */
			s->collect = (s->reading_key && (s->depth == 1 || s->depth == 3)) ||
				     (!s->reading_key && s->field >= 0 && s->depth == 3);
			break;
		}
		case ':':
			if (!s->depth || s->stack[s->depth].kind != '{')
				return fail(s, "':' outside an object");
			break;
		case ',':
			if (!s->depth)
				return fail(s, "',' outside the document");
			if (s->stack[s->depth].kind == '{')
				s->stack[s->depth].want_key = 1;
			if (s->depth == 3)
				s->field = -1;
			if (s->in_list && s->depth == 2 && s->capturing) {
				/* The end of a scalar element. */
				elem_append(s, data + span, i - span);
				if ((r = elem_end(s)) < 0)
					return r;
			}
			break;
		case '{':
		case '[':
			if (s->depth == 0 && c != '{')
				return fail(s, "the answer is not a JSON object");
			if (s->depth == DEPTH_MAX)
				return fail(s, "nested too deeply");
			if (s->in_list && s->depth == 2 && !s->capturing) {
				s->capturing = true;
				span = i;
			}
			if (s->depth == 3)
				s->field = -1;
			s->depth++;
			s->stack[s->depth].kind = (unsigned char)c;
			s->stack[s->depth].want_key = c == '{';
			if (s->depth == 2 && c == '[' && s->key_is_list && !s->list_seen)
				s->in_list = true;
			break;
		case '}':
		case ']':
			if (!s->depth || s->stack[s->depth].kind != (c == '}' ? '{' : '['))
				return fail(s, "unbalanced brackets");
			if (s->in_list && s->depth == 2 && c == ']') {
				if (s->capturing) {
					elem_append(s, data + span, i - span);
					if ((r = elem_end(s)) < 0)
						return r;
				}
				s->in_list = false;
				s->list_seen = true;
			}
			s->depth--;
			if (s->in_list && s->depth == 2 && s->capturing) {
				elem_append(s, data + span, i + 1 - span);
				if ((r = elem_end(s)) < 0)
					return r;
			}
			if (s->depth == 0)
				s->done = true;
			break;
		default:
			if (!s->depth)
				return fail(s, "the answer is not a JSON object");
			if (s->in_list && s->depth == 2 && !s->capturing) {
				s->capturing = true;
				span = i;
			}
			if (s->depth == 3)
				s->field = -1;
			break;
		}
	}
	if (s->capturing)
		elem_append(s, data + span, len - span);
	return 0;
}

int jsplit_finish(struct jsplit *s)
{
	if (s->error)
		return -EINVAL;
	if (!s->done)
		return fail(s, "the list ends before the document does (truncated)");
	if (!s->list_seen)
		return fail(s, "no \"embed_jobs\" array in the answer");
	return 0;
}
