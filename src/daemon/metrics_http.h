/*
 * GET /metrics over HTTP for Prometheus to scrape, on the daemon's loop
 * (metrics_listen = [ADDRESS:]PORT, loopback when no address is given).
 * One request per connection; a client gets 5 s to send its request. At 32
 * connections the longest idle one is closed for a new one, so idle clients
 * cannot lock scrapes out.
 */
#ifndef EW_METRICS_HTTP_H
#define EW_METRICS_HTTP_H

#include <stddef.h>

#include "ew.h"

/* Listens when cfg.metrics_listen is set; 0, or negative with err. */
int metrics_http_init(struct ew *ew, char *err, size_t errlen);
/* Closes the listener and every connection. */
void metrics_http_close(struct ew *ew);

#endif
