/* Internal to the control socket: shared by control.c and control_query.c. */
#ifndef EW_CONTROL_INT_H
#define EW_CONTROL_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <uv.h>

#include "control.h"
#include "ew.h"
#include "util.h"

struct client {
	struct client *next;
	struct control *ctl;
	uv_pipe_t pipe;
	struct buf in;
	size_t queued;              /* answer bytes written and not yet sent */
	uint64_t last_active;       /* loop ms of the last byte received or answer sent */
	bool closing;
	/* an answer held until the changes it reports are committed */
	json_object *held;
	/* its next buffered request is read at the next loop turn */
	bool resume;
	/* an open wait */
	bool waiting;
	char **wait_ids;
	size_t n_wait, wait_pos;
	char *wait_batch;
};

struct control {
	struct ew *ew;
	uv_pipe_t server;
	uv_timer_t resume_timer;
	uv_timer_t idle_timer;
	struct client *clients;
	unsigned n_clients;
	size_t queued;              /* answer bytes queued over every client */
	int open_handles;
};

/* Sends one answer line (takes o); drops a client that does not read its answers. */
void control_send_line(struct client *c, json_object *o);
/* Holds answer o (taken) until the outbox has committed this turn's changes. */
void control_hold_answer(struct client *c, json_object *o);
/* Logs who asked for a change (SO_PEERCRED): what names the request, e.g. "watch of 3 ids". */
void control_log_peer(struct client *c, const char *what);
void control_send_error(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
json_object *control_ok_answer(void);
json_object *control_job_json(const struct job *j);
/* Adds "records" (num_records, num_successful_records, num_failed_records) to o when j is a batch job that said them. */
void control_job_records(struct ew *ew, const struct job *j, json_object *o);
/* "kind" of a request: JOB_KIND_EMBED when absent; -1 with an error sent when it is no kind. */
int control_get_kind(struct client *c, json_object *req);
const char *control_get_str(json_object *req, const char *key);

/* Stops reading a client until resume: one request at a time. */
void control_pause_reading(struct client *c);

/* The commands that change state or wait (control_change.c). */
void control_cmd_watch(struct client *c, json_object *req);
void control_cmd_unwatch(struct client *c, json_object *req);
void control_cmd_cancel(struct client *c, json_object *req);
void control_cmd_wait(struct client *c, json_object *req);
/* Answers c's wait when everything it waits for has ended. Returns true if answered. */
bool control_wait_check(struct client *c);
/* Forgets c's finished wait. */
void control_wait_clear(struct client *c);

/* The read-only commands (control_query.c). */
void control_cmd_list(struct client *c, json_object *req);
void control_cmd_show(struct client *c, json_object *req);
void control_cmd_status(struct client *c, json_object *req);
void control_cmd_metrics(struct client *c, json_object *req);
void control_cmd_batches(struct client *c, json_object *req);
void control_cmd_deliveries(struct client *c, json_object *req);
/* "since" of a request: a duration ago ("2h") or an RFC 3339 time; 0 when absent. -EINVAL with err. */
int control_since(json_object *req, int64_t *ret_ms, char *err, size_t errlen);

/* Deliveries and hooks (control_hooks.c): redeliver (one event or dead ones in bulk), hooks (list, enable, disable). */
void control_cmd_redeliver(struct client *c, json_object *req);
void control_cmd_hooks(struct client *c, json_object *req);

#endif
