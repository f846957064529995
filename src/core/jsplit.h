/*
 * A streaming splitter for the list answer {"embed_jobs": [EmbedJob, ...]}:
 * fed the body in chunks of any size, it hands over each element of the
 * top-level "embed_jobs" array as one complete JSON text, with the element's
 * top-level string members job_id, name, status and created_at already
 * picked out, so an entry nobody watches costs one id lookup and no parse.
 * Memory is one element at a time, whatever the size of the list. Pure.
 */
#ifndef EW_JSPLIT_H
#define EW_JSPLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define JSPLIT_FIELD_MAX 256
#define JSPLIT_DEPTH_MAX 64

/* One element; every pointer is borrowed for the callback only. */
struct jsplit_elem {
	const char *text;           /* the element's JSON, NUL-terminated */
	size_t len;
	const char *job_id;         /* the last such member; NULL when absent, not a string, or escaped */
	const char *name;
	const char *status;
	const char *created_at;
};

/* Called per element; a negative return stops the split (jsplit_feed returns it). */
typedef int (*jsplit_fn)(const struct jsplit_elem *e, void *arg);

struct jsplit {
	jsplit_fn fn;
	void *arg;
	size_t elem_max;            /* an element longer than this is skipped and counted */
	/* scanner state */
	int depth;                  /* nesting depth: 1 inside the top object */
	bool in_string, escape, string_escaped;
	bool in_list;               /* inside the embed_jobs array (depth 2) */
	bool list_seen, done;
	bool key_is_list;           /* the last key at depth 1 was "embed_jobs" */
	bool capturing;             /* inside an element */
	bool elem_too_big;
	char key[JSPLIT_FIELD_MAX + 2];     /* the string being read, when it may be a key or a field */
	size_t key_len;
	bool reading_key;
	bool collect;               /* this string's text is wanted (a key at depth 1 or 3, or a field) */
	int field;                  /* element field whose value string is being read, -1: none */
	char fields[4][JSPLIT_FIELD_MAX];
	bool have[4];
	struct buf elem;
	struct { unsigned char kind, want_key; } stack[JSPLIT_DEPTH_MAX + 1];   /* per nesting level */
	size_t elements, skipped;
	const char *error;          /* the first syntax error, or NULL */
};

void jsplit_init(struct jsplit *s, size_t elem_max, jsplit_fn fn, void *arg);
/* Feeds the next chunk. Returns 0, the callback's negative value, or -EINVAL (s->error says why). */
int jsplit_feed(struct jsplit *s, const char *data, size_t len);
/* At the end of the body: 0 when a complete document with "embed_jobs" was seen, else -EINVAL with s->error. */
int jsplit_finish(struct jsplit *s);
void jsplit_free(struct jsplit *s);

#endif
