/* Private to the control socket: control*.c. */
#ifndef EW_CONTROL_INT_H
#define EW_CONTROL_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <uv.h>

#include "control.h"
#include "ctlproto.h"
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
	/* an answer held until the changes it reports are committed */
	json_object *held;
	uint64_t held_gen;          /* the turn record it waits for */
	/* its next buffered request is read at the next loop turn */
	bool resume;
	/* reads of the state in flight for its request: reading waits; its memory outlives a close until they end */
	unsigned reads;
	bool closed;
	/* > 0: not a connection but a standby's request being applied by the active (its answer is logged) */
	int64_t remote_id;
	bool in_apply, answered;
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
	uv_timer_t shared_timer;    /* a shared state: a standby's waits, the active's slow poll for requests */
	unsigned shared_ticks;
	bool fetching, fetch_again; /* the active reads the requests standbys wrote */
	int64_t *applied;           /* requests applied and maybe not yet deleted by a commit */
	size_t n_applied, cap_applied;
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
/* Sends {"ok": false, "error": the formatted message} to c. */
void control_send_error(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A new answer {"ok": true}, owned by the caller (to add to, then send). */
json_object *control_ok_answer(void);
/* A job as list and show answer it (id, status, batch, added, updated, kind), owned by the caller. */
/* True for a job key: a Cohere id, or "ACCOUNT:ID" (provider.h); whether the account is configured is the handler's. */
bool control_key_valid(const char *id);
json_object *control_job_json(const struct job *j);
/* Adds "records" (num_records, num_successful_records, num_failed_records) to o when j is a batch job that said them. */
void control_job_records(struct ew *ew, const struct job *j, json_object *o);
/* "kind" of a request: JOB_KIND_EMBED when absent; -1 with an error sent when it is no kind. */
int control_get_kind(struct client *c, json_object *req);
/* The string at key of a request, or NULL when absent or not a string; borrowed from req. */
const char *control_get_str(json_object *req, const char *key);

/* Clients blocked in wait: they have their own cap (max_waiters), apart from the 256 others. */
unsigned control_waiting_clients(const struct control *ctl);
/* Stops reading a client until resume: one request at a time. */
void control_pause_reading(struct client *c);
/* A read of the state starts for c's request (c's next request waits for it). */
void control_read_begin(struct client *c);
/* That read has called back: true when c may be answered, false when it went away meanwhile (then it is freed). */
bool control_read_end(struct client *c);

/* The commands that change state or wait (control_change.c). */
/* watch: adds the ids (of a kind, maybe into a batch); the answer is held until the commit. */
void control_cmd_watch(struct client *c, json_object *req);
/* unwatch: forgets the ids; the answer is held until the commit. */
void control_cmd_unwatch(struct client *c, json_object *req);
/* cancel: queues a cancel of each id not ended (watching it first if need be); the answer is held until the commit. */
void control_cmd_cancel(struct client *c, json_object *req);
/* wait: answers once the ids or the batch have ended (after the commit that says so); c reads nothing meanwhile. */
void control_cmd_wait(struct client *c, json_object *req);
/* Answers c's wait when everything it waits for has ended. Returns true if answered. */
bool control_wait_check(struct client *c);
/* Forgets c's finished wait. */
void control_wait_clear(struct client *c);

/* A standby (control_standby.c) writes a request that changes the state for the active (ctlproto_forwards), id by id for CTLPROTO_IDS. */
void control_standby_forward(struct client *c, enum ctl_cmd cmd, json_object *req, const char *line, size_t len);
/* A standby's reads from the shared state. */
/* list, or show when cmd is CTL_SHOW: the jobs' rows as the active shows them. */
void control_standby_list(struct client *c, enum ctl_cmd cmd, json_object *req);
/* status, metrics and batches: from the counts by batch, kind and status. */
void control_standby_counts(struct client *c, enum ctl_cmd cmd, json_object *req);
/* wait: answered as the active would, checked against the shared state at each tick. */
void control_standby_wait(struct client *c, enum ctl_cmd cmd, json_object *req);
/* A standby's tick: each open wait not already reading reads the shared state again. */
void control_standby_check_waits(struct control *ctl);
/* Every half second on a shared state (control_relay.c): a standby checks its waits, the active looks for requests now and then. */
void control_on_shared_tick(uv_timer_t *t);
/* The active (control_relay.c): reads the requests standbys wrote and applies the new ones. */
void control_fetch_requests(struct control *ctl);
/* Drops a hold on the control state (a read in flight that needs it): the last one frees it. */
void control_unref(struct control *ctl);
/* The role on a shared state into a status object: "role", "active" (host, pid), "lease_age_ms", "takeovers". */
void control_role_fields(struct ew *ew, json_object *status);
/* The active applies one request written by a standby (control.c): its answer is logged, its row deleted with its effects. */
void control_apply_request(struct control *ctl, int64_t id, const char *line);

/*
 * The daemon's column of the command table (control_cmds.c; ctlproto_cmds has
 * the name and the flags): how the active answers, and how a standby answers a
 * command it does not forward (NULL: with the active's handler).
 */
struct control_cmd {
	void (*handler)(struct client *c, json_object *req);
	void (*standby)(struct client *c, enum ctl_cmd cmd, json_object *req);
};
extern const struct control_cmd control_cmds[CTL__MAX];
/* True when every command has a handler, and a standby reader only if it is not forwarded. */
bool control_cmds_complete(void);

/* The read-only commands (control_query.c). */
/* list: one page of the watched jobs in id order (paging: ctlproto.h). */
void control_cmd_list(struct client *c, json_object *req);
/* show: one watched job, then its snapshot and events from the state. */
void control_cmd_show(struct client *c, json_object *req);
/* status: the counts, the daemon's state and its summary line. */
void control_cmd_status(struct client *c, json_object *req);
/* metrics: the Prometheus text of GET /metrics. */
void control_cmd_metrics(struct client *c, json_object *req);
/* batches: one page of the batches in name order (paging: ctlproto.h). */
void control_cmd_batches(struct client *c, json_object *req);
/* deliveries: the hooks' deliveries from the state, by state, hook and since. */
void control_cmd_deliveries(struct client *c, json_object *req);
/* After the job's fields from memory (jo, taken): its snapshot and events from the state, then the answer. */
void control_show_stored(struct client *c, const char *id, json_object *jo);
/* Rows an answer that grows with the state holds at most (the newest); past it the answer says "truncated". */
#define CONTROL_ARRAY_MAX 10000
/* A read whose rows fill one array of the answer {"ok": true, KEY: [...]}: starts the read for c (key: a literal). */
struct control_array_read *control_array_read_new(struct client *c, const char *key);
/* The array the rows go into, owned by x. */
json_object *control_array_read_arr(struct control_array_read *x);
/* The read's done: answers c (or says what failed) and frees x. */
void control_array_read_done(int r, void *arg);
/* A delivery row into the array of arg (a control_array_read); past CONTROL_ARRAY_MAX the answer says "truncated". */
int control_delivery_one(const struct store_delivery *d, void *arg);
/* "since" of a request: a duration ago ("2h") or an RFC 3339 time; 0 when absent. -EINVAL with err. */
int control_since(json_object *req, int64_t *ret_ms, char *err, size_t errlen);

/* Deliveries and hooks (control_hooks.c). */
/* redeliver: one event, or the dead deliveries in bulk, delivered again; the answer is held until the commit. */
void control_cmd_redeliver(struct client *c, json_object *req);
/* hooks: the list; enable and disable, whose answer is held until the commit. */
void control_cmd_hooks(struct client *c, json_object *req);

#endif
