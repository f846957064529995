/*
 * The outbox: one commit per loop turn, then dispatch. The order is the
 * contract: hooks, then waiting clients, then the poller.
 */
#include "outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "ew.h"
#include "ha.h"
#include "hooks.h"
#include "job.h"
#include "log.h"
#include "poller.h"
#include "sched.h"
#include "store.h"
#include "turn.h"
#include "util.h"

struct outbox {
	struct ew *ew;
	uv_prepare_t prepare;
	uv_check_t check;
	uv_timer_t retry;
	unsigned fail_run;
	uint64_t retry_at;
	char why[320];              /* the last failure, for held answers */
	/* The record whose commit is in flight; the loop records on into ew->turn meanwhile. */
	struct turn sealed;
	bool in_flight;
	int last;                   /* the result of the last commit that called back */
	bool closing;
	int open_handles;           /* and the commit in flight, which outlives a close */
};

/* Writes record t into one transaction. Returns 0 or a negative errno. */
static int write_turn(struct ew *ew, struct turn *t)
{
	struct turn_row *p;
	int r;

	/* Deletes first: a job unwatched and watched again in one turn keeps its new row. */
	for (p = t->head; p; p = p->next)
		if (p->kind == TR_DELETE && (r = store_delete_job(ew->store, p->subject)) < 0)
			return r;
	for (size_t i = 0; i < t->n_dirty; i++) {
		struct job *j = t->dirty[i];
		if (j->flags & JF_REMOVED)
			continue;
		struct store_job sj = {
			.id = j->id, .batch = j->batch ? j->batch->name : NULL, .status = j->status,
			.added_ms = j->added_ms, .updated_ms = j->updated_ms,
			.err_kind = j->err.kind, .err_count = j->err.count,
			.discovered = (j->flags & JF_DISCOVERED) != 0, .cancel = j->cancel | (j->cancel_expire ? 8 : 0),
			.kind = j->kind,
		};
		if ((r = store_put_job(ew->store, &sj)) < 0)
			return r;
	}
	for (p = t->head; p; p = p->next) {
		r = 0;
		switch (p->kind) {
		case TR_DELETE:
			break;
		case TR_SNAPSHOT:
			r = store_put_snapshot(ew->store, p->subject, p->text);
			break;
		case TR_PRUNE:
			r = store_prune(ew->store, p->ts_ms, p->deliveries_before_ms);
			break;
		case TR_HOOK:
			r = store_put_hook(ew->store, &(struct store_hook){ .name = p->subject, .disabled_ms = p->disabled_ms,
				.why = p->text, .failing_ms = p->failing_ms, .last_error = p->last_error,
				.last_error_ms = p->last_error_ms });
			break;
		case TR_BATCH:
			r = store_put_batch(ew->store, p->subject, p->ts_ms, p->event_id[0] ? p->event_id : NULL);
			break;
		case TR_REQUEST:
			r = store_delete_request(ew->store, p->request_id);
			break;
		case TR_META:
			r = store_put_meta(ew->store, p->subject, p->text);
			break;
		case TR_EVENT:
			/*
			 * The event and its delivery rows are durable together, before any
			 * attempt: planned now, written only if the event is new (which the
			 * store tells by the commit's end).
			 */
			hooks_plan(ew->hooks, p);
			r = store_put_event(ew->store, p->event_id, job_event_name(p->type), p->subject, p->batch,
					    p->ts_ms, p->text, p->hooks, p->n_hooks, &p->is_new);
			break;
		}
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < t->n_upd; i++) {
		struct turn_delivery *u = &t->upd[i];
		if ((r = store_put_delivery(ew->store, u->event_id, u->hook, u->state, u->attempts, u->next_ms,
					    u->last_error, u->updated_ms)) < 0)
			return r;
	}
	return 0;
}

static void on_retry(uv_timer_t *t)
{
	outbox_run(((struct outbox *)t->data)->ew);
}

static int failed(struct ew *ew, int r)
{
	struct outbox *o = ew->outbox;

	store_rollback(ew->store);
	turn_unplan(&ew->turn);
	ew->m.commit_failures++;
	o->fail_run++;
	uint64_t delay = sched_error_backoff(o->fail_run, 1000, 30000);
	snprintf(o->why, sizeof(o->why), "state database not writable (%s: %s)", strerror(-r), store_error(ew->store));
	if (!ew->m.store_failing || o->fail_run % 10 == 0)
		log_msg(LOG_ERR, "%s; keeping %zu job writes and the pending events in memory, retrying in %llu ms",
			o->why, ew->turn.n_dirty, (unsigned long long)delay);
	ew->m.store_failing = true;
	o->retry_at = ew_now(ew) + delay;
	UV_CHECK(uv_timer_start(&o->retry, on_retry, delay, 0));
	return r;
}

bool outbox_has_writes(struct ew *ew)
{
	return ew->outbox->in_flight || turn_has_writes(&ew->turn);
}

bool outbox_busy(struct ew *ew)
{
	return ew->outbox->in_flight;
}

/* Committed (or nothing to write): now, and only now, the effects of record t leave, in this order. */
static void dispatch(struct ew *ew, struct turn *t)
{
	struct turn_row *rows = turn_committed(t);
	bool ended = t->ended, kick = t->kick, requests = t->requests;
	unsigned sweep = t->sweep;
	uint64_t gen = t->gen;
	t->ended = t->kick = t->requests = false;
	t->sweep = 0;
	/* A wait hears only of ends that are durable: those recorded since this commit began wait for theirs. */
	if (ended && t != &ew->turn && turn_has_writes(&ew->turn)) {
		ew->turn.ended = true;
		ended = false;
	}
	t->answers = 0;
	hooks_dispatch(ew, rows, gen);
	control_dispatch(ew, ended, gen);
	if (requests)
		control_fetch(ew);
	for (struct turn_row *p = rows; p; p = p->next)
		if (p->kind == TR_META)
			poller_meta_saved(ew->poller, p->subject, p->text);
	if (sweep)
		poller_want_sweep(ew->poller, sweep);
	if (kick)
		poller_kick(ew->poller);
	turn_rows_free(rows);
}

static void outbox_free(struct outbox *o)
{
	turn_free(&o->sealed);
	free(o);
}

static void on_committed(int r, void *arg)
{
	struct outbox *o = arg;
	struct ew *ew = o->ew;

	o->in_flight = false;
	o->last = r;
	if (o->closing) {
		/* Stopped meanwhile: nothing is dispatched any more; what was not written is re-detected after the restart. */
		if (--o->open_handles == 0)
			outbox_free(o);
		return;
	}
	if (r == -ESTALE) {
		/* Fenced: another daemon is active. Nothing of this commit was written; nothing leaves. */
		turn_unseal(&ew->turn, &o->sealed);
		turn_unplan(&ew->turn);
		snprintf(o->why, sizeof(o->why), "this daemon lost the lease (another embedwatchd is active): "
			 "send the request again, to any daemon");
		ew->turn.answers = 0;
		control_commit_failed(ew, o->why);
		ha_lost(ew, "a commit was fenced: another embedwatchd holds the lease");
		return;
	}
	if (r < 0) {
		turn_unseal(&ew->turn, &o->sealed);
		failed(ew, r);
		ew->turn.answers = 0;
		control_commit_failed(ew, o->why);
		return;
	}
	ew->m.commits++;
	if (!store_lease_fresh(ew->store)) {
		/*
		 * Written, but answered so late (this process was stopped?) that the lease
		 * may have expired meanwhile and another daemon may be active: it takes
		 * these writes from the shared state; here nothing leaves.
		 */
		turn_rows_free(turn_committed(&o->sealed));
		o->sealed.ended = o->sealed.kick = o->sealed.requests = false;
		o->sealed.sweep = 0;
		o->sealed.answers = 0;
		ha_lost(ew, "a commit was answered after the lease could have expired");
		return;
	}
	if (ew->m.store_failing) {
		log_msg(LOG_NOTICE, "state database writable again after %u failed commits; nothing was lost", o->fail_run);
		ew->m.store_failing = false;
		o->fail_run = 0;
		uv_timer_stop(&o->retry);
	}
	dispatch(ew, &o->sealed);
}

int outbox_run(struct ew *ew)
{
	struct outbox *o = ew->outbox;
	struct turn *t = &ew->turn;
	int r;

	/* One commit at a time: what is recorded meanwhile waits for the next. */
	if (o->in_flight || !turn_pending(t))
		return 0;
	/* A standby (or an active stepping down) writes nothing, so nothing is told either. */
	if (!store_lease_held(ew->store) || ew->stepping_down)
		return -EAGAIN;
	if (!turn_has_writes(t)) {
		dispatch(ew, t);
		return 0;
	}
	if (ew->m.store_failing && ew_now(ew) < o->retry_at) {
		/* Answers cannot wait for the retry: they say what is wrong. */
		if (t->answers) {
			t->answers = 0;
			control_commit_failed(ew, o->why);
		}
		return -EAGAIN;
	}
	turn_seal(t, &o->sealed);
	o->in_flight = true;
	if ((r = store_begin(ew->store)) < 0 || (r = write_turn(ew, &o->sealed)) < 0) {
		on_committed(r, o);
		return r;
	}
	/* SQLite calls back before this returns; PostgreSQL when the commit's answer arrives. */
	o->last = 0;
	store_commit_async(ew->store, on_committed, o);
	return o->in_flight ? 0 : o->last;
}

/* Timers' writes are committed before the loop blocks for I/O, I/O callbacks' writes after it. */
static void on_prepare(uv_prepare_t *h)
{
	outbox_run(((struct outbox *)h->data)->ew);
}

static void on_check(uv_check_t *h)
{
	outbox_run(((struct outbox *)h->data)->ew);
}

int outbox_init(struct ew *ew)
{
	struct outbox *o = xcalloc(1, sizeof(*o));
	int r;

	o->ew = ew;
	ew->outbox = o;
	o->prepare.data = o->check.data = o->retry.data = o;
	if ((r = uv_prepare_init(ew->loop, &o->prepare)) < 0 || (r = uv_check_init(ew->loop, &o->check)) < 0 ||
	    (r = uv_timer_init(ew->loop, &o->retry)) < 0)
		return r;
	if ((r = uv_prepare_start(&o->prepare, on_prepare)) < 0 || (r = uv_check_start(&o->check, on_check)) < 0)
		return r;
	/* These run every turn but must not keep the loop alive on their own. */
	uv_unref((uv_handle_t *)&o->prepare);
	uv_unref((uv_handle_t *)&o->check);
	uv_unref((uv_handle_t *)&o->retry);
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct outbox *o = h->data;
	/* Close callbacks (and a commit in flight) end in no promised order: the last one frees. */
	if (--o->open_handles == 0)
		outbox_free(o);
}

void outbox_close(struct ew *ew)
{
	struct outbox *o = ew->outbox;
	if (!o)
		return;
	o->closing = true;
	o->open_handles = 3 + o->in_flight;
	uv_close((uv_handle_t *)&o->prepare, on_closed);
	uv_close((uv_handle_t *)&o->check, on_closed);
	uv_close((uv_handle_t *)&o->retry, on_closed);
	ew->outbox = NULL;
}
