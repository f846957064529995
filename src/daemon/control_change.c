/*
 * The control socket's commands that change state or wait: watch, unwatch,
 * cancel (answered after the commit) and wait (answered when its jobs or
 * batch have ended, after the commit that says so).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "control_int.h"
#include "job.h"
#include "jobtable.h"
#include "util.h"
#include "watch.h"

/* Reads "ids": an array of strings. Returns the array or NULL with an error sent. */
static json_object *get_ids(struct client *c, json_object *req)
{
	json_object *ids;
	if (!json_object_object_get_ex(req, "ids", &ids) || !json_object_is_type(ids, json_type_array)) {
		control_send_error(c, "\"ids\" must be an array of job ids");
		return NULL;
	}
	return ids;
}

/* Adds {"id": id (taken), "error": why} to a request's list of refused ids. */
static void reject(json_object *rejected, json_object *id, const char *why)
{
	json_object *r = json_object_new_object();
	json_object_object_add(r, "id", id);
	json_object_object_add(r, "error", json_object_new_string(why));
	json_object_array_add(rejected, r);
}

/* The id in e when it is a valid job id; else NULL, and e is refused by name in rejected. */
static const char *valid_id(json_object *e, json_object *rejected)
{
	const char *id = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
	if (id && control_key_valid(id))
		return id;
	reject(rejected, id ? json_object_new_string(id) : json_object_get(e),
	       "invalid job id: expected 1 to 128 characters of A-Z a-z 0-9 _ - (with --account, the provider's own id)");
	return NULL;
}

int control_get_kind(struct client *c, json_object *req)
{
	json_object *v;
	if (!json_object_object_get_ex(req, "kind", &v) || !v)
		return JOB_KIND_EMBED;
	int k = json_object_is_type(v, json_type_string) ? job_kind_parse(json_object_get_string(v)) : -1;
	if (k < 0)
		control_send_error(c, "\"kind\" must be embed-job or batch-job");
	return k;
}

/* Refuses id when it is watched as another kind than k. Returns true when it was refused. */
static bool other_kind(struct ew *ew, const char *id, int k, json_object *rejected)
{
	struct job *j = jobtable_get(&ew->jobs, id);
	if (!j || j->kind == k)
		return false;
	char why[80];
	snprintf(why, sizeof(why), "already watched as %s", job_kind_name((enum job_kind)j->kind));
	reject(rejected, json_object_new_string(id), why);
	return true;
}

void control_cmd_watch(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	json_object *ids = get_ids(c, req);
	const char *batch = control_get_str(req, "batch");
	json_object *v;
	size_t added = 0, already = 0;

	if (!ids)
		return;
	int kind = control_get_kind(c, req);
	if (kind < 0)
		return;
	if (json_object_object_get_ex(req, "batch", &v) && v && !batch) {
		control_send_error(c, "\"batch\" must be a string");
		return;
	}
	if (batch && !util_name_valid(batch)) {
		control_send_error(c, "batch name must be 1 to 128 printable characters (UTF-8, no control characters)");
		return;
	}
	json_object *rejected = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		const char *id = valid_id(json_object_array_get_idx(ids, i), rejected);
		/* A key of another provider's account is a batch job whatever the request says. */
		int k = strchr(id ? id : "", ':') ? JOB_KIND_BATCH : kind;
		if (!id || other_kind(ew, id, k, rejected))
			continue;
		int r = watch_add_kind(ew, id, batch, (enum job_kind)k);
		if (r > 0)
			added++;
		else if (r == 0)
			already++;
		else
			reject(rejected, json_object_new_string(id), "its account is not in the configuration");
	}
	char what[160];
	snprintf(what, sizeof(what), "watch of %zu ids (%zu new)%s%s%.64s", added + already, added,
		 kind == JOB_KIND_BATCH ? " as batch jobs" : "", batch ? " in batch " : "", batch ? batch : "");
	control_log_peer(c, what);
	/* Accepted means durable: the answer waits for the commit. */
	json_object *o = control_ok_answer();
	json_object_object_add(o, "added", json_object_new_int64((int64_t)added));
	json_object_object_add(o, "already", json_object_new_int64((int64_t)already));
	json_object_object_add(o, "rejected", rejected);
	control_hold_answer(c, o);
}

void control_cmd_cancel(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	json_object *ids = get_ids(c, req);
	size_t queued = 0;

	if (!ids)
		return;
	/* The kind of ids not watched yet; a watched job's own kind decides its cancel. */
	json_object *kv = NULL;
	bool kind_given = json_object_object_get_ex(req, "kind", &kv) && kv;
	int kind = control_get_kind(c, req);
	if (kind < 0)
		return;
	json_object *rejected = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		const char *id = valid_id(json_object_array_get_idx(ids, i), rejected);
		int k = strchr(id ? id : "", ':') ? JOB_KIND_BATCH : kind;
		if (!id || (kind_given && other_kind(ew, id, k, rejected)))
			continue;
		/* Cancelled jobs are watched to the end: watch it first if need be. */
		if (!jobtable_get(&ew->jobs, id) && watch_add_kind(ew, id, NULL, (enum job_kind)k) < 0) {
			reject(rejected, json_object_new_string(id), "its account is not in the configuration");
			continue;
		}
		struct job *j = jobtable_get(&ew->jobs, id);
		if (watch_job_ended(j)) {
			reject(rejected, json_object_new_string(id), "the job has already ended");
			continue;
		}
		watch_cancel(ew, j, false);
		queued++;
	}
	char what[64];
	snprintf(what, sizeof(what), "cancel of %zu jobs", queued);
	control_log_peer(c, what);
	json_object *o = control_ok_answer();
	json_object_object_add(o, "queued", json_object_new_int64((int64_t)queued));
	json_object_object_add(o, "rejected", rejected);
	control_hold_answer(c, o);
}

void control_cmd_unwatch(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	json_object *ids = get_ids(c, req);
	size_t removed = 0;

	if (!ids)
		return;
	json_object *unknown = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		json_object *e = json_object_array_get_idx(ids, i);
		const char *id = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
		if (watch_remove(ew, id) == 0)
			removed++;
		else
			json_object_array_add(unknown, json_object_new_string(id));
	}
	char what[64];
	snprintf(what, sizeof(what), "unwatch of %zu ids", removed);
	control_log_peer(c, what);
	json_object *o = control_ok_answer();
	json_object_object_add(o, "removed", json_object_new_int64((int64_t)removed));
	json_object_object_add(o, "unknown", unknown);
	control_hold_answer(c, o);
}

/* Answers a wait when everything it waits for has ended. Returns true if answered. */
bool control_wait_check(struct client *c)
{
	struct ew *ew = c->ctl->ew;
	json_object *jobs;

	if (c->wait_batch) {
		struct batch *b = jobtable_get_batch(&ew->jobs, c->wait_batch);
		if (b && b->n_ended < b->n_jobs)
			return false;
		jobs = json_object_new_array();
		for (uint32_t i = 0; b && i < b->n_jobs; i++)
			json_object_array_add(jobs, control_job_json(b->members[i]));
	} else {
		while (c->wait_pos < c->n_wait) {
			struct job *j = jobtable_get(&ew->jobs, c->wait_ids[c->wait_pos]);
			if (j && !watch_job_ended(j))
				return false;
			c->wait_pos++;
		}
		jobs = json_object_new_array();
		for (size_t i = 0; i < c->n_wait; i++) {
			struct job *j = jobtable_get(&ew->jobs, c->wait_ids[i]);
			if (j) {
				json_object_array_add(jobs, control_job_json(j));
			} else {
				json_object *o = json_object_new_object();
				json_object_object_add(o, "id", json_object_new_string(c->wait_ids[i]));
				json_object_object_add(o, "status", json_object_new_string("unwatched"));
				json_object_array_add(jobs, o);
			}
		}
	}
	json_object *o = control_ok_answer();
	json_object_object_add(o, "jobs", jobs);
	c->waiting = false;
	control_send_line(c, o);
	return true;
}


void control_cmd_wait(struct client *c, json_object *req)
{
	struct ew *ew = c->ctl->ew;
	const char *batch = control_get_str(req, "batch");
	json_object *ids;

	if (batch) {
		if (!jobtable_get_batch(&ew->jobs, batch)) {
			control_send_error(c, "no batch named \"%.128s\"", batch);
			return;
		}
		c->wait_batch = xstrdup(batch);
	} else {
		if (!(ids = get_ids(c, req)))
			return;
		size_t n = json_object_array_length(ids);
		if (n == 0) {
			control_send_error(c, "wait needs job ids or a batch");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			const char *id = json_object_get_string(json_object_array_get_idx(ids, i));
			if (!id || !jobtable_get(&ew->jobs, id)) {
				control_send_error(c, "job %.140s is not watched; watch it first", id ? id : "(not a string)");
				return;
			}
		}
		c->wait_ids = xcalloc(n, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			c->wait_ids[i] = xstrdup(json_object_get_string(json_object_array_get_idx(ids, i)));
		c->n_wait = n;
		c->wait_pos = 0;
	}
	/* Checked after the next commit, like every wait: an end not yet durable is not reported. */
	c->waiting = true;
	ew->turn.ended = true;
	control_pause_reading(c);
}

void control_wait_clear(struct client *c)
{
	for (size_t i = 0; i < c->n_wait; i++)
		free(c->wait_ids[i]);
	free(c->wait_ids);
	free(c->wait_batch);
	c->wait_ids = NULL;
	c->wait_batch = NULL;
	c->n_wait = c->wait_pos = 0;
}
