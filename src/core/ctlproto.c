#include "ctlproto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITE_FWD (CTLPROTO_WRITE | CTLPROTO_FORWARD)

const struct ctlproto_cmd ctlproto_cmds[CTL__MAX] = {
	[CTL_WATCH] = { "watch", WRITE_FWD | CTLPROTO_IDS },
	[CTL_UNWATCH] = { "unwatch", WRITE_FWD | CTLPROTO_IDS },
	[CTL_LIST] = { "list", 0 },
	[CTL_SHOW] = { "show", 0 },
	[CTL_STATUS] = { "status", 0 },
	[CTL_METRICS] = { "metrics", 0 },
	[CTL_WAIT] = { "wait", 0 },
	[CTL_BATCHES] = { "batches", 0 },
	[CTL_DELIVERIES] = { "deliveries", 0 },
	[CTL_REDELIVER] = { "redeliver", WRITE_FWD },
	[CTL_CANCEL] = { "cancel", WRITE_FWD | CTLPROTO_IDS },
	[CTL_HOOKS] = { "hooks", WRITE_FWD | CTLPROTO_ACTION },
};

bool ctlproto_forwards(enum ctl_cmd cmd, json_object *req)
{
	unsigned f = ctlproto_cmds[cmd].flags;
	if (!(f & CTLPROTO_FORWARD))
		return false;
	return !(f & CTLPROTO_ACTION) || ctlproto_str(req, "action");
}

const char *ctlproto_str(json_object *req, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int ctlproto_line(const char *buf, size_t len, size_t max, size_t *ret_len)
{
	/* Looking past max + 1 bytes would only find a line too long anyway. */
	const char *nl = memchr(buf, '\n', len < max + 1 ? len : max + 1);
	if (!nl)
		return len > max ? -EMSGSIZE : 0;
	*ret_len = (size_t)(nl - buf);
	return 1;
}

/* True when some string value in o holds an escaped NUL ("\u0000"): C would cut it short. */
static bool has_nul(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string:
		return strlen(json_object_get_string(o)) != (size_t)json_object_get_string_len(o);
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (has_nul(json_object_array_get_idx(o, i)))
				return true;
		return false;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			(void)k;
			if (has_nul(v))
				return true;
		}
		return false;
	}
	default:
		return false;
	}
}

int ctlproto_parse(const char *line, size_t len, enum ctl_cmd *ret_cmd, json_object **ret_req,
		   char *err, size_t errlen)
{
	struct json_tokener *tok;
	json_object *req;
	enum json_tokener_error jerr;

	*ret_req = NULL;
	if (memchr(line, '\0', len)) {
		snprintf(err, errlen, "request contains a NUL byte");
		return -EINVAL;
	}
	tok = json_tokener_new_ex(CTLPROTO_DEPTH_MAX);
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	req = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!req || jerr != json_tokener_success) {
		snprintf(err, errlen, "request is not valid JSON: %s",
			 jerr == json_tokener_continue ? "incomplete document" : json_tokener_error_desc(jerr));
		json_object_put(req);
		return -EINVAL;
	}
	for (; end < len; end++) {
		if (line[end] != ' ' && line[end] != '\t' && line[end] != '\r') {
			snprintf(err, errlen, "request is not valid JSON: trailing data after the object");
			json_object_put(req);
			return -EINVAL;
		}
	}
	if (!json_object_is_type(req, json_type_object)) {
		snprintf(err, errlen, "request must be a JSON object with \"cmd\"");
		json_object_put(req);
		return -EINVAL;
	}
	if (has_nul(req)) {
		snprintf(err, errlen, "request contains a string with \\u0000; ids, names and values are text without NUL");
		json_object_put(req);
		return -EINVAL;
	}
	const char *cmd = ctlproto_str(req, "cmd");
	if (!cmd) {
		snprintf(err, errlen, "request has no \"cmd\" string");
		json_object_put(req);
		return -EINVAL;
	}
	for (int i = 0; i < CTL__MAX; i++) {
		if (strcmp(cmd, ctlproto_cmds[i].name) == 0) {
			*ret_cmd = (enum ctl_cmd)i;
			*ret_req = req;
			return 0;
		}
	}
	snprintf(err, errlen, "unknown command \"%.64s\"; expected watch, unwatch, list, show, status, metrics, "
		 "wait, batches, deliveries, redeliver or cancel", cmd);
	json_object_put(req);
	return -EINVAL;
}

int ctlproto_page_init(struct ctlproto_page *p, json_object *req, void (*drop)(void *item), char *err, size_t errlen)
{
	json_object *v;
	memset(p, 0, sizeof(*p));
	p->drop = drop;
	p->limit = CTLPROTO_PAGE_MAX;
	if (json_object_object_get_ex(req, "after", &v) && v) {
		if (!json_object_is_type(v, json_type_string)) {
			snprintf(err, errlen, "\"after\" must be a string: the \"next\" of the previous page");
			return -EINVAL;
		}
		p->after = json_object_get_string(v);
	}
	if (json_object_object_get_ex(req, "limit", &v) && v) {
		if (!json_object_is_type(v, json_type_int)) {
			snprintf(err, errlen, "\"limit\" must be a number from 1 to %d", CTLPROTO_PAGE_MAX);
			return -EINVAL;
		}
		int64_t l = json_object_get_int64(v);
		if (l >= 1 && l < CTLPROTO_PAGE_MAX)
			p->limit = (size_t)l;
	}
	return 0;
}

static int cmp_items(const void *a, const void *b)
{
	return strcmp(((const struct ctlproto_page_item *)a)->key, ((const struct ctlproto_page_item *)b)->key);
}

/* Keeps the limit smallest keys: sorted, the rest dropped. */
static void trim(struct ctlproto_page *p)
{
	if (p->n > 1)           /* an empty page has no array at all: qsort must not see NULL */
		qsort(p->items, p->n, sizeof(*p->items), cmp_items);
	if (p->n <= p->limit)
		return;
	p->more = true;
	for (size_t i = p->limit; i < p->n; i++)
		if (p->drop)
			p->drop(p->items[i].item);
	p->n = p->limit;
}

void ctlproto_page_add(struct ctlproto_page *p, const char *key, void *item)
{
	/* Before the page, or past a full page already selected: not in it. */
	if ((p->after && strcmp(key, p->after) <= 0) ||
	    (p->more && p->n >= p->limit && strcmp(key, p->items[p->limit - 1].key) > 0)) {
		if (p->drop)
			p->drop(item);
		return;
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->items = realloc(p->items, p->cap * sizeof(*p->items));
		if (!p->items)
			abort();
	}
	p->items[p->n++] = (struct ctlproto_page_item){ key, item };
	/* Sorting at twice the limit keeps the work n log(limit) and the memory 2 x limit. */
	if (p->n >= 2 * p->limit)
		trim(p);
}

void ctlproto_page_end(struct ctlproto_page *p)
{
	trim(p);
}

void ctlproto_page_next(const struct ctlproto_page *p, json_object *o)
{
	if (p->more && p->n)
		json_object_object_add(o, "next", json_object_new_string(p->items[p->n - 1].key));
}

void ctlproto_page_free(struct ctlproto_page *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->drop)
			p->drop(p->items[i].item);
	free(p->items);
	memset(p, 0, sizeof(*p));
}
