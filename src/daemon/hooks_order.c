/*
 * The delivery order rules, per hook: which delivery may start given the ones
 * pending before it. A job's deliveries start one after another, in the order
 * their events were detected (cancelling before cancelled): each waits behind
 * the job's previous one until that is done or dead. A batch.done waits until
 * every member delivery of its group for the same hook is done or dead. Held
 * deliveries are in no queue; the rest are free to run at the hook's
 * concurrency, in FIFO order of arrival (and a restart loads them oldest
 * event first).
 */
#include <stdlib.h>

#include "hooks_int.h"
#include "strmap.h"
#include "util.h"

/* A group's member deliveries not yet done or dead for one hook, and the batch.done held behind them. */
struct hook_group {
	char *name;
	unsigned members;
	struct delivery *waiting;   /* batch.done deliveries, chained by succ */
};

void hooks_order_add(struct hooks *hs, struct delivery *d)
{
	struct hook_rt *h = d->hook;
	struct hook_group *g = d->batch ? strmap_get(&h->groups, d->batch) : NULL;

	if (d->type == EV_BATCH_DONE) {
		if (g && g->members) {
			d->blockers++;
			d->succ = g->waiting;
			g->waiting = d;
			return;
		}
		hooks_enqueue(hs, d);
		return;
	}
	if (d->batch) {
		if (!g) {
			g = xcalloc(1, sizeof(*g));
			g->name = xstrdup(d->batch);
			strmap_put(&h->groups, g->name, g);
		}
		g->members++;
	}
	struct delivery *prev = strmap_put(&h->tails, d->subject, d);
	if (prev) {
		prev->succ = d;
		d->blockers++;
		return;
	}
	hooks_enqueue(hs, d);
}

static void unblock(struct hooks *hs, struct delivery *d)
{
	if (--d->blockers == 0)
		hooks_enqueue(hs, d);
}

static void group_free(struct hook_group *g)
{
	free(g->name);
	free(g);
}

void hooks_order_release(struct hooks *hs, struct delivery *d)
{
	struct hook_rt *h = d->hook;

	if (d->type == EV_BATCH_DONE)
		return;
	struct delivery *next = d->succ;
	d->succ = NULL;
	if (next)
		unblock(hs, next);
	struct hook_group *g = d->batch ? strmap_get(&h->groups, d->batch) : NULL;
	if (g && g->members && --g->members == 0) {
		struct delivery *w = g->waiting;
		strmap_del(&h->groups, g->name);
		group_free(g);
		while (w) {
			struct delivery *n = w->succ;
			w->succ = NULL;
			unblock(hs, w);
			w = n;
		}
	}
}

void hooks_order_forget(struct delivery *d)
{
	if (d->type != EV_BATCH_DONE && strmap_get(&d->hook->tails, d->subject) == d)
		strmap_del(&d->hook->tails, d->subject);
}

static void group_drop(const char *key, void *val, void *arg)
{
	(void)key, (void)arg;
	group_free(val);
}

void hooks_order_free(struct hook_rt *h)
{
	strmap_each(&h->groups, group_drop, NULL);
	strmap_free(&h->groups);
	strmap_free(&h->tails);
}
