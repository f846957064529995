/*
 * The active's relay of a standby's requests, over a shared state. Standbys
 * write the requests that change the state as rows (control_standby.c); the
 * active reads them when a standby's notification arrives (or every 2 s) and
 * applies each through the same commands as its own clients
 * (control_apply_request); a row is deleted in the commit that holds its
 * effects. Also the half-second tick on a shared state: the active's slow poll
 * for those rows, a standby's waits (control_standby.c).
 */
#include <errno.h>
#include <stdlib.h>

#include "control_int.h"
#include "ha.h"
#include "store.h"
#include "util.h"

/* The active reads the requests this often when no notification wakes it (ticks of 500 ms). */
#define FETCH_EVERY_TICKS 4

/* ---- the active: applying what standbys wrote ---- */

struct fetch {
	struct control *ctl;
	int64_t *seen;
	size_t n_seen, cap_seen;
};

static bool applied(const struct control *ctl, int64_t id)
{
	for (size_t i = 0; i < ctl->n_applied; i++)
		if (ctl->applied[i] == id)
			return true;
	return false;
}

static int request_row(int64_t id, const char *line, void *arg)
{
	struct fetch *f = arg;
	struct control *ctl = f->ctl;
	if (f->n_seen == f->cap_seen) {
		f->cap_seen = f->cap_seen ? f->cap_seen * 2 : 16;
		f->seen = xrealloc(f->seen, f->cap_seen * sizeof(*f->seen));
	}
	f->seen[f->n_seen++] = id;
	/* Applied already, its delete not committed yet: once only. */
	if (!applied(ctl, id) && line && ha_role(ctl->ew) == ROLE_ACTIVE && !ctl->ew->stopping)
		control_apply_request(ctl, id, line);
	return 0;
}

static void fetched(int r, void *arg)
{
	struct fetch *f = arg;
	struct control *ctl = f->ctl;
	ctl->fetching = false;
	if (r == 0) {
		/* What is still there was applied (or just now): the rest is deleted and forgotten. */
		free(ctl->applied);
		ctl->applied = f->seen;
		ctl->n_applied = f->n_seen;
		ctl->cap_applied = f->cap_seen;
		f->seen = NULL;
	}
	free(f->seen);
	free(f);
	if (ctl->fetch_again && r != -ECANCELED) {
		ctl->fetch_again = false;
		control_fetch_requests(ctl);
	}
	control_unref(ctl);
}

void control_fetch_requests(struct control *ctl)
{
	if (!ctl || ctl->ew->stopping || ha_role(ctl->ew) != ROLE_ACTIVE)
		return;
	if (ctl->fetching) {
		ctl->fetch_again = true;
		return;
	}
	struct fetch *f = xcalloc(1, sizeof(*f));
	f->ctl = ctl;
	ctl->fetching = true;
	ctl->open_handles++;        /* the read holds the control state until it calls back */
	store_each_request(ctl->ew->store, request_row, fetched, f);
}

void control_fetch(struct ew *ew)
{
	control_fetch_requests(ew->control);
}

/* ---- the shared state's tick ---- */

void control_on_shared_tick(uv_timer_t *t)
{
	struct control *ctl = t->data;
	struct ew *ew = ctl->ew;
	if (ew->stopping)
		return;
	if (ha_role(ew) == ROLE_ACTIVE) {
		/* The slow poll for requests, in case a notification went missing (a reconnect). */
		if (++ctl->shared_ticks % FETCH_EVERY_TICKS == 0)
			control_fetch_requests(ctl);
		return;
	}
	control_standby_check_waits(ctl);
}
