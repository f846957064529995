/*
 * Active or standby. With SQLite this daemon is the only one and always
 * active. With a shared state (PostgreSQL) the lease decides: the active
 * restores the state, observes the API and runs hooks, renewing the lease
 * every lease_renew; a standby tries to take it (at once when the active's
 * session ends or it gives the lease up, else once it has expired), then
 * restores from the shared state and carries on with the same event ids. An
 * active that loses the lease (a commit fenced, a renewal refused) steps
 * down: it stops as on SIGTERM, dispatching nothing more, and starts again
 * as a standby.
 */
#ifndef EW_HA_H
#define EW_HA_H

#include "ew.h"

/*
 * Sets up the lease's timer; step_down is how main stops this process and
 * starts it again as a standby (why: for the log). Returns 0 or a libuv error.
 */
int ha_init(struct ew *ew, void (*step_down)(struct ew *ew, const char *why));
/*
 * Start-up: active at once with SQLite, else takes the lease or stays
 * standby. done(r, err) once the role is known and, when active, the state
 * restored; it may be called before this returns (main waits with store_wait).
 */
void ha_start(struct ew *ew, void (*done)(int r, const char *err, void *arg), void *arg);
/* The lease is lost (a commit was fenced, or its answer came too late to be sure): step down. */
void ha_lost(struct ew *ew, const char *why);
/* True when this daemon is active and restored (control answers from memory, polls, runs hooks). */
bool ha_active(struct ew *ew);
/* This daemon's role: the one place it is kept (metrics shows a copy); ROLE_ACTIVE before ha_init. */
enum ew_role ha_role(const struct ew *ew);
/* A clean stop: stops the timer; the lease is given up at exit (store_lease_release). */
void ha_close(struct ew *ew);

#endif
