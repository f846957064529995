/* Internal to the control socket: shared by control.c and control_query.c. */
#ifndef EW_CONTROL_INT_H
#define EW_CONTROL_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <uv.h>

#include "ew.h"

struct client {
	struct client *next;
	struct control *ctl;
	uv_pipe_t pipe;
	struct buf in;
	bool closing;
	/* an open wait */
	bool waiting;
	char **wait_ids;
	size_t n_wait, wait_pos;
	char *wait_batch;
};

struct control {
	struct ew *ew;
	uv_pipe_t server;
	struct client *clients;
	unsigned n_clients;
	bool closed;
};

/* Sends one answer line (takes o); drops a client that does not read its answers. */
void send_line(struct client *c, json_object *o);
void send_error(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
json_object *ok_answer(void);
json_object *job_json(const struct job *j);
const char *get_str(json_object *req, const char *key);

/* The read-only commands (control_query.c). */
void cmd_list(struct client *c, json_object *req);
void cmd_show(struct client *c, json_object *req);
void cmd_status(struct client *c, json_object *req);
void cmd_metrics(struct client *c, json_object *req);
void cmd_batches(struct client *c, json_object *req);
void cmd_deliveries(struct client *c, json_object *req);
void cmd_redeliver(struct client *c, json_object *req);

#endif
