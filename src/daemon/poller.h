/*
 * The poller: takes due jobs oldest-due first, spends one token of the
 * global bucket per request, keeps at most max_in_flight transfers, and turns
 * each answer into an observation (watch), a per-job backoff or a global pause.
 */
#ifndef EW_POLLER_H
#define EW_POLLER_H

#include "ew.h"

/* Creates the poller with its request slots and headers. Returns 0 or negative. */
int poller_new(struct ew *ew, struct poller **ret);
/* Runs the scheduler soon (a 0 ms timer); for the outbox after a commit with new due jobs. */
void poller_kick(struct poller *p);
/*
 * New jobs of the kinds in kinds (TURN_SWEEP bits) were committed: the next
 * list sweep of each kind is brought forward (as the budgets allow; v1: asked for in full).
 */
void poller_want_sweep(struct poller *p, unsigned kinds);
/* Builds request headers from the current key and config and sets the budget (start and reload). */
void poller_configure(struct poller *p);
/* A value the poller put into the turn record (the month's request count) is committed. */
void poller_meta_saved(struct poller *p, const char *key, const char *value);
/* Resumes after a reload: clears an auth or base-URL pause. */
void poller_resume(struct poller *p);
/* Stops polling: cancels transfers in flight (their jobs stay due). */
void poller_stop(struct poller *p);
/* Stops and frees. Accepts NULL. */
void poller_free(struct poller *p);

#endif
