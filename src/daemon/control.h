/*
 * The control socket: a Unix stream socket speaking one JSON object per line
 * each way. Reads are answered at once; a request that changes state (watch,
 * unwatch, redeliver) records its change and holds its answer until the
 * outbox has committed it. A client's next request is read on the next loop
 * turn after its answer, never from inside another module's call.
 */
#ifndef EW_CONTROL_H
#define EW_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "ew.h"

/* Binds and listens on cfg.control_socket. Returns 0 or negative with err. */
int control_init(struct ew *ew, char *err, size_t errlen);
/*
 * After the commit of turn record gen (outbox): sends the answers held for it
 * or before, answers the waits it satisfied (ended: a job ended or left), and
 * schedules those clients' next requests for the next loop turn.
 */
void control_dispatch(struct ew *ew, bool ended, uint64_t gen);
/* A commit failed: every held answer becomes an error saying why (the changes stay recorded and are retried). */
void control_commit_failed(struct ew *ew, const char *why);
/* The active: reads the requests standbys wrote and applies the new ones (a notification, a takeover). */
void control_fetch(struct ew *ew);
/* Drops every client, removes the socket file, closes the handles. */
void control_close(struct ew *ew);

#endif
