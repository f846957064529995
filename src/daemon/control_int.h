/* Internal to the control socket: shared by control.c and control_query.c. */
#ifndef EW_CONTROL_INT_H
#define EW_CONTROL_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <uv.h>

#include "control.h"
#include "ew.h"
#include "store.h"
#include "util.h"

struct client {
	struct client *next;
	struct control *ctl;
	uv_pipe_t pipe;
	struct buf in;
	size_t queued;              /* answer bytes written and not yet sent */
	uint64_t last_active;       /* loop ms of the last byte received or answer sent */
	bool closing;
	/* an answer held until the changes it reports are committed: those of turn record held_gen */
	json_object *held;
	uint64_t held_gen;
	/* its next buffered request is read at the next loop turn */
	bool resume;
	/* reads of the state in flight for its request: reading waits; its memory outlives a close until they end */
	unsigned reads;
	bool closed;
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
void send_line(struct client *c, json_object *o);
/* Holds answer o (taken) until the outbox has committed this turn's changes. */
void hold_answer(struct client *c, json_object *o);
/* Logs who asked for a change (SO_PEERCRED): what names the request, e.g. "watch of 3 ids". */
void log_peer(struct client *c, const char *what);
void send_error(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
json_object *ok_answer(void);
json_object *job_json(const struct job *j);
const char *get_str(json_object *req, const char *key);

/* Stops reading a client until resume: one request at a time. */
void pause_reading(struct client *c);
/* A read of the state starts for c's request (c's next request waits for it). */
void read_begin(struct client *c);
/* That read has called back: true when c may be answered, false when it went away meanwhile (then it is freed). */
bool read_end(struct client *c);

/* The commands that change state or wait (control_change.c). */
void cmd_watch(struct client *c, json_object *req);
void cmd_unwatch(struct client *c, json_object *req);
void cmd_cancel(struct client *c, json_object *req);
void cmd_wait(struct client *c, json_object *req);
/* Answers c's wait when everything it waits for has ended. Returns true if answered. */
bool wait_check(struct client *c);
/* Forgets c's finished wait. */
void wait_clear(struct client *c);

/* The read-only commands (control_query.c). */
void cmd_list(struct client *c, json_object *req);
void cmd_show(struct client *c, json_object *req);
void cmd_status(struct client *c, json_object *req);
void cmd_metrics(struct client *c, json_object *req);
void cmd_batches(struct client *c, json_object *req);
void cmd_deliveries(struct client *c, json_object *req);
/* After the job's fields from memory (jo, taken): its snapshot and events from the state, then the answer. */
void show_stored(struct client *c, const char *id, json_object *jo);
/* A read whose rows fill one array of the answer {"ok": true, KEY: [...]}: starts the read for c (key: a literal). */
struct array_read *array_read_new(struct client *c, const char *key);
json_object *array_read_arr(struct array_read *x);
/* The read's done: answers c (or says what failed) and frees x. */
void array_read_done(int r, void *arg);
/* A delivery row into the array of arg (an array_read); stops at 10,000. */
int delivery_one(const struct store_delivery *d, void *arg);
/* "since" of a request: a duration ago ("2h") or an RFC 3339 time; 0 when absent. -EINVAL with err. */
int control_since(json_object *req, int64_t *ret_ms, char *err, size_t errlen);

/* Deliveries and hooks (control_hooks.c): redeliver (one event or dead ones in bulk), hooks (list, enable, disable). */
void cmd_redeliver(struct client *c, json_object *req);
void cmd_hooks(struct client *c, json_object *req);

#endif
