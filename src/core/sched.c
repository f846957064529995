#include "sched.h"

#include <math.h>

static void refill(struct sched_bucket *b, uint64_t now)
{
	if (now > b->last_ms) {
		uint64_t dt = now - b->last_ms;
		b->tokens += (double)dt * b->cur;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		/* Raise a lowered rate by a tenth of the configured one per 10 s without a 429. */
		if (b->cur < b->rate && now - b->last_throttle_ms >= 10000 && now - b->last_raise_ms >= 10000) {
			b->cur += b->rate / 10;
			if (b->cur > b->rate)
				b->cur = b->rate;
			b->last_raise_ms = now;
		}
		b->last_ms = now;
	}
}

void sched_bucket_init(struct sched_bucket *b, double rate_per_s, unsigned burst, uint64_t now)
{
	b->rate = b->cur = rate_per_s / 1000.0;
	b->burst = burst;
	b->tokens = burst;
	b->last_ms = now;
	b->last_throttle_ms = 0;
	b->last_raise_ms = 0;
}

void sched_bucket_set(struct sched_bucket *b, double rate_per_s, unsigned burst, uint64_t now)
{
	refill(b, now);
	double ratio = b->cur / b->rate;
	b->rate = rate_per_s / 1000.0;
	b->cur = b->rate * ratio;
	b->burst = burst;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
}

bool sched_bucket_take(struct sched_bucket *b, uint64_t now)
{
	refill(b, now);
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

uint64_t sched_bucket_wait(struct sched_bucket *b, uint64_t now)
{
	refill(b, now);
	if (b->tokens >= 1.0)
		return 0;
	return (uint64_t)ceil((1.0 - b->tokens) / b->cur);
}

void sched_bucket_throttled(struct sched_bucket *b, uint64_t now)
{
	refill(b, now);
	b->cur /= 2;
	if (b->cur < b->rate / 10)
		b->cur = b->rate / 10;
	b->tokens = 0;
	b->last_throttle_ms = now;
}

double sched_bucket_rate(const struct sched_bucket *b)
{
	return b->cur * 1000.0;
}

uint64_t sched_sweep_interval(uint64_t cur, bool changed, unsigned *quiet, double factor, uint64_t min, uint64_t max)
{
	if (changed) {
		*quiet = 0;
		return min;
	}
	if (*quiet < SCHED_QUIET_LISTS) {
		(*quiet)++;
		return min;
	}
	return sched_grow(cur, factor, min, max);
}

uint64_t sched_grow(uint64_t cur, double factor, uint64_t min, uint64_t max)
{
	double next = (double)cur * factor;
	if (next < (double)min)
		return min;
	if (next > (double)max)
		return max;
	return (uint64_t)next;
}

uint64_t sched_jitter(uint64_t interval, double jitter, double unit)
{
	double f = 1.0 - jitter + 2.0 * jitter * unit;
	return (uint64_t)llround((double)interval * f);
}

uint64_t sched_error_backoff(unsigned n, uint64_t min, uint64_t max)
{
	uint64_t d = min;
	for (unsigned i = 1; i < n && d < max; i++)
		d *= 2;
	return d < max ? d : max;
}

uint64_t sched_throttle_pause(unsigned n, uint64_t cap)
{
	return sched_error_backoff(n, 1000, cap);
}
