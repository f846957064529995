/*
 * The post-commit outbox. At the end of every loop turn it writes the turn
 * record in one transaction; only when that succeeds does it dispatch, in a
 * fixed order and from the top of the loop (never from inside a caller):
 *   1. hooks: deliveries of the new events (planned in the commit) and the
 *      attempts whose claim was committed,
 *   2. control: answers held for the commit and waits it satisfied,
 *   3. the poller: new due jobs.
 * A failed commit dispatches nothing; everything stays recorded and the
 * commit is retried with backoff. One commit is in flight at a time.
 */
#ifndef EW_OUTBOX_H
#define EW_OUTBOX_H

#include <stdbool.h>

#include "ew.h"

/* Sets up the prepare/check handles (one commit per turn) and the retry timer. Returns 0 or a libuv error. */
int outbox_init(struct ew *ew);
/*
 * Commits the turn record now, then dispatches (once the commit has called
 * back: at once with SQLite, later with PostgreSQL, while the loop records on
 * into the next record). Returns 0 (dispatched, or a commit in flight),
 * -EAGAIN while a retry waits, or the error of a commit that failed at once.
 */
int outbox_run(struct ew *ew);
/* True when recorded writes wait for a commit, or a commit is in flight. */
bool outbox_has_writes(struct ew *ew);
/* True while a commit is in flight. */
bool outbox_busy(struct ew *ew);
/* Closes the handles (the turn record itself is freed by its owner). */
void outbox_close(struct ew *ew);

#endif
