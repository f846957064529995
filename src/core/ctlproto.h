/* The control protocol's request parsing: one JSON object per line. Pure (json-c only). */
#ifndef EW_CTLPROTO_H
#define EW_CTLPROTO_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

enum ctl_cmd {
	CTL_WATCH, CTL_UNWATCH, CTL_LIST, CTL_SHOW, CTL_STATUS, CTL_METRICS, CTL_WAIT,
	CTL_BATCHES, CTL_DELIVERIES, CTL_REDELIVER, CTL_CANCEL, CTL_HOOKS, CTL__MAX
};

#define CTLPROTO_DEPTH_MAX 16

/* What a command does, as Redis flags its write commands. */
enum ctlproto_flag {
	CTLPROTO_WRITE = 1 << 0,    /* changes the state: the active applies it from a standby's request row */
	CTLPROTO_FORWARD = 1 << 1,  /* a standby writes it for the active instead of answering it */
	CTLPROTO_IDS = 1 << 2,      /* names jobs by "ids": forwarded id by id */
	CTLPROTO_ACTION = 1 << 3,   /* writes only with an "action"; without, a read answered where it arrives */
};

/* One row per command: the daemon's handlers are a table indexed the same way. */
struct ctlproto_cmd {
	const char *name;
	unsigned flags;             /* enum ctlproto_flag */
};

/* The commands, indexed by enum ctl_cmd. */
extern const struct ctlproto_cmd ctlproto_cmds[CTL__MAX];

/* True when a standby forwards req (of command cmd) to the active: a forwarded command, with its action if it needs one. */
bool ctlproto_forwards(enum ctl_cmd cmd, json_object *req);

/*
 * Parses one request line. On success returns 0, the command in *ret_cmd and
 * the request object in *ret_req (the caller puts it). On error returns
 * -EINVAL with the reason in err.
 */
int ctlproto_parse(const char *line, size_t len, enum ctl_cmd *ret_cmd, json_object **ret_req,
		   char *err, size_t errlen);
/*
 * Frames the next request in buf[0..len) (what a client has sent so far).
 * Returns 1 with the line's length (without its '\n') in *ret_len, 0 when no
 * '\n' has arrived yet, or -EMSGSIZE when the line is longer than max bytes.
 */
int ctlproto_line(const char *buf, size_t len, size_t max, size_t *ret_len);
/* The string member key, or NULL when absent or not a string. */
const char *ctlproto_str(json_object *req, const char *key);

/*
 * Paging of answers that grow with the jobs (list, batches): a request may say
 * "after" (the last key of the previous page) and "limit"; the answer holds
 * the next keys in byte order and, when more follow, "next" (the "after" of
 * the next page). A page holds at most CTLPROTO_PAGE_MAX items.
 */
#define CTLPROTO_PAGE_MAX 10000

/* One page being selected: the limit smallest keys after "after", out of items offered in any order. */
struct ctlproto_page {
	const char *after;          /* borrowed from the request, or NULL */
	size_t limit;
	void (*drop)(void *item);   /* frees an item left out, or NULL */
	struct ctlproto_page_item { const char *key; void *item; } *items;
	size_t n, cap;
	bool more;                  /* items were left out past the page */
};

/*
 * Starts a page from req's "after" and "limit" (absent or out of range:
 * CTLPROTO_PAGE_MAX). Returns 0, or -EINVAL with err when they have the wrong type.
 */
int ctlproto_page_init(struct ctlproto_page *p, json_object *req, void (*drop)(void *item), char *err, size_t errlen);
/* Offers item with key (borrowed while the item lives): kept if it may belong to the page, else dropped. */
void ctlproto_page_add(struct ctlproto_page *p, const char *key, void *item);
/* Sorts the page and drops what lies past it; p->items[0..n) is the page, p->more says if more follow. */
void ctlproto_page_end(struct ctlproto_page *p);
/* Adds "next" (the last key) to answer o when more follow. */
void ctlproto_page_next(const struct ctlproto_page *p, json_object *o);
/* Frees the page (and, with drop, the items still in it). */
void ctlproto_page_free(struct ctlproto_page *p);

#endif
