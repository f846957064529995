/* Scheduling arithmetic: poll intervals, jitter, backoff and the token bucket. Pure. */
#ifndef EW_SCHED_H
#define EW_SCHED_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The global request budget. `rate` is the configured rate; after a 429/503
 * the effective rate drops (halves, down to a tenth) and climbs back by a
 * tenth of the configured rate per quiet interval.
 */
struct sched_bucket {
	double rate;          /* configured, requests per ms */
	double cur;           /* effective, requests per ms */
	double burst;
	double tokens;
	uint64_t last_ms;
	uint64_t last_throttle_ms;
	uint64_t last_raise_ms;
};

void sched_bucket_init(struct sched_bucket *b, double rate_per_s, unsigned burst, uint64_t now_ms);
/* Changes rate and burst (reload), keeping what is already spent. */
void sched_bucket_set(struct sched_bucket *b, double rate_per_s, unsigned burst, uint64_t now_ms);
/* Takes one token if there is one. */
bool sched_bucket_take(struct sched_bucket *b, uint64_t now_ms);
/* Milliseconds until a token is there (0 if one is). */
uint64_t sched_bucket_wait(struct sched_bucket *b, uint64_t now_ms);
/* A 429/503: lower the effective rate and empty the bucket. */
void sched_bucket_throttled(struct sched_bucket *b, uint64_t now_ms);
/* Effective rate in requests per second. */
double sched_bucket_rate(const struct sched_bucket *b);

/* The next poll interval when nothing changed: cur * factor, within [min, max]. */
uint64_t sched_grow(uint64_t cur_ms, double factor, uint64_t min_ms, uint64_t max_ms);
/*
 * A list sweep's next interval after a good sweep: min after a change (and
 * *quiet back to 0); while nothing changes, min until SCHED_QUIET_LISTS lists
 * in a row saw nothing (jobs just watched often end soon), then grown by
 * factor up to max. *quiet counts the unchanged lists.
 */
#define SCHED_QUIET_LISTS 3
uint64_t sched_sweep_interval(uint64_t cur_ms, bool changed, unsigned *quiet, double factor, uint64_t min_ms, uint64_t max_ms);
/* interval scaled by a uniform factor in [1 - jitter, 1 + jitter]; unit in [0, 1). */
uint64_t sched_jitter(uint64_t interval_ms, double jitter, double unit);
/* Delay after the n-th failure in a row (n >= 1): min * 2^(n-1), capped at max. */
uint64_t sched_error_backoff(unsigned n, uint64_t min_ms, uint64_t max_ms);
/* Pause after the n-th 429/503 in a row without Retry-After: 1s * 2^(n-1), capped. */
uint64_t sched_throttle_pause(unsigned n, uint64_t cap_ms);

#endif
