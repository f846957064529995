/*
 * The poller's side of the planner (src/core/planner.c): what was measured
 * goes in (the last list's wire bytes and answer time, per-id answer sizes,
 * live and unlisted jobs, the bucket's rate, the byte budget), the choice
 * comes out, and a change of mode moves the jobs: into per-id polling at
 * once, or back to the sweep at its next turn. The choice and why are kept
 * in the metrics for status, metrics and the log (said once per change).
 */
#include <stdio.h>

#include "ew.h"
#include "job.h"
#include "jobtable.h"
#include "log.h"
#include "planner.h"
#include "poller_int.h"
#include "sched.h"
#include "util.h"
#include "watch.h"
#include "watch_v2.h"

/* A list size is trusted this long without reading the list again: it may have shrunk. */
#define LIST_SIZE_TTL_MS (30 * 60 * 1000)

size_t poller_live_jobs(const struct ew *ew)
{
	size_t n = 0;
	for (int s = 0; s < JOB__MAX; s++)
		if (!job_status_ended((enum job_status)s))
			n += ew->jobs.counts[s];
	/* Embed jobs only: batch jobs are observed by the v2 sweep (poller_v2.c), not this plan. */
	return n - watch_v2_live(ew->v2);
}

/* Within [now, now + within), for the jobs of one kind due later: for jobtable_redue. */
struct spread {
	uint64_t now, within;
	int kind;
};

static uint64_t spread_due(struct job *j, void *arg)
{
	const struct spread *s = arg;
	/* Spread over `within`, not all at once: the bucket would serve them in a burst anyway. */
	if (j->kind == s->kind && j->due > s->now + s->within)
		return s->now + (uint64_t)(util_rand_unit() * (double)s->within);
	return j->due;
}

void poller_all_per_id(struct poller *p, enum job_kind kind, uint64_t within)
{
	struct ew *ew = p->ew;
	struct spread s = { .now = ew_now(ew), .within = within, .kind = (int)kind };
	jobtable_redue(&ew->jobs, spread_due, &s);
}

static void say(struct poller *p, const struct planner_out *o)
{
	char list[64];
	if (p->list_wire)
		snprintf(list, sizeof(list), "%s%.1f MB", p->list_wire_is_min ? "at least " : "", (double)p->list_wire / 1e6);
	else
		snprintf(list, sizeof(list), "size not known yet");
	if (o->mode == PLAN_PER_ID)
		log_msg(LOG_NOTICE, "observing by per-id polls: %s; each job every %.1f s, estimated detection delay %.1f s "
			"(the list, %s: %.1f s)", planner_why_text(o->why), (double)o->poll_every_ms / 1000,
			(double)o->delay_ms / 1000, list, (double)o->delay_sweep_ms / 1000);
	else if (o->mode == PLAN_SWEEP)
		log_msg(LOG_NOTICE, "observing by the list sweep: %s; a list (%s) at most every %.1f s, estimated detection "
			"delay %.1f s (per-id polls: %.1f s)", planner_why_text(o->why), list, (double)o->sweep_every_ms / 1000,
			(double)o->delay_ms / 1000, (double)o->delay_per_id_ms / 1000);
}

void poller_plan(struct poller *p, uint64_t now)
{
	struct ew *ew = p->ew;
	const struct ew_config *c = &ew->cfg;
	struct planner_out o;

	if (p->list_wire && p->plan.mode != PLAN_SWEEP && now - p->list_known_at > LIST_SIZE_TTL_MS) {
		/* Unknown again: the next plan may read it (capped) to learn its size. */
		p->list_wire = 0;
		p->list_wire_is_min = false;
	}
	size_t live = poller_live_jobs(ew);
	struct planner_in in = {
		.policy = c->planner, .current = p->plan.mode, .sweep_enabled = c->sweep,
		.list_failing = p->sweep_off_until && now < p->sweep_off_until, .discovery = c->discover,
		.live = live, .unlisted = p->unlisted < live ? p->unlisted : live,
		.rate_per_s = sched_bucket_rate(&p->cls[RC_EMBED_JOBS].bucket), .bytes_per_s = (double)c->max_bytes_per_min / 60.0,
		.list_wire = p->list_wire, .list_ms = p->list_ms, .poll_wire = (uint64_t)p->poll_wire_avg,
		/* Per-id polls of one job no closer than a second (or interval_min, when shorter: tests). */
		.poll_floor_ms = c->interval_min_ms < 1000 ? c->interval_min_ms : 1000,
		.sweep_min_ms = c->sweep_interval_ms,
	};
	planner_plan(&in, &o);
	enum planner_mode before = p->plan.mode;
	p->plan = o;
	/* Idle between batches is not news: a mode is said when it differs from the last one used. */
	if (o.mode != PLAN_IDLE && o.mode != p->last_mode) {
		if (p->last_mode != PLAN_IDLE)
			ew->m.plan_switches++;
		p->last_mode = o.mode;
		say(p, &o);
	}
	if (o.mode != before) {
		if (o.mode == PLAN_PER_ID && o.poll_every_ms) {
			/* Jobs the list saw wait at a trickle: they are polled per id from now on. */
			poller_all_per_id(p, JOB_KIND_EMBED, o.poll_every_ms);
		} else if (o.mode == PLAN_SWEEP && p->sweep_due > now) {
			p->sweep_due = now;
		}
	}
	/* Watches wait for the next sweep unless per-id polling is the mode (idle: the sweep comes with them). */
	if (o.mode == PLAN_PER_ID)
		jobtable_set_listed(&ew->jobs, JOB_KIND_EMBED, false);
	else if (before == PLAN_PER_ID && o.mode == PLAN_SWEEP && c->sweep && !in.list_failing)
		jobtable_set_listed(&ew->jobs, JOB_KIND_EMBED, true);
	ew->m.plan_mode = o.mode;
	ew->m.plan_why = o.why;
	ew->m.plan_delay_ms = o.delay_ms;
	ew->m.plan_delay_sweep_ms = o.delay_sweep_ms;
	ew->m.plan_delay_per_id_ms = o.delay_per_id_ms;
	ew->m.plan_poll_every_ms = o.poll_every_ms;
	ew->m.plan_sweep_every_ms = o.sweep_every_ms;
	ew->m.plan_list_cap = o.list_cap;
	ew->m.list_size_is_min = p->list_wire_is_min;
	ew->m.list_size_wire = p->list_wire;
}

void poller_plan_freshen(struct poller *p, struct job *j)
{
	struct ew *ew = p->ew;
	uint64_t every = p->plan.poll_every_ms;
	if (!every || j->heap_idx == JOB_NOT_QUEUED || watch_job_ended(j) || j->kind != JOB_KIND_EMBED)
		return;
	/* In sweep mode only the jobs the list did not show are polled per id; the others wait at a trickle. */
	if (p->plan.mode == PLAN_SWEEP && j->sweep_gen == p->sweep_gen && p->sweep_gen)
		return;
	uint64_t due = ew_now(ew) + sched_jitter(every, ew->cfg.jitter, util_rand_unit());
	if (j->due > due)
		jobtable_schedule(&ew->jobs, j, due);
}

void poller_plan_list_cost(struct poller *p, const struct http_result *res, bool cut)
{
	uint64_t now = ew_now(p->ew);
	if (cut && res->content_length > 0) {
		/* Stopped early: Content-Length says what the whole list costs (its body; headers are noise). */
		p->list_wire = (uint64_t)res->content_length > res->wire_bytes ? (uint64_t)res->content_length : res->wire_bytes;
		p->list_wire_is_min = false;
	} else {
		p->list_wire = res->wire_bytes;
		p->list_wire_is_min = cut;
	}
	if (!cut)
		p->list_ms = res->total_us / 1000;
	p->list_known_at = now;
}

void poller_plan_poll_cost(struct poller *p, uint64_t wire)
{
	/* A moving average: one odd answer does not swing the plan. */
	p->poll_wire_avg = p->poll_wire_avg > 0 ? 0.9 * p->poll_wire_avg + 0.1 * (double)wire : (double)wire;
}
