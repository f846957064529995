/* The control protocol's request parsing: one JSON object per line. Pure (json-c only). */
#ifndef EW_CTLPROTO_H
#define EW_CTLPROTO_H

#include <json-c/json.h>
#include <stddef.h>

enum ctl_cmd {
	CTL_WATCH, CTL_UNWATCH, CTL_LIST, CTL_SHOW, CTL_STATUS, CTL_METRICS, CTL_WAIT,
	CTL_BATCHES, CTL_DELIVERIES, CTL_REDELIVER, CTL_CANCEL, CTL_HOOKS, CTL__MAX
};

#define CTLPROTO_DEPTH_MAX 16

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

#endif
