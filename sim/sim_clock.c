/*
 * The simulator's state and clock: the wall clock, or a manual one moved only
 * by POST /_sim/clock. The lowest layer: calls no other sim file.
 */
#include <errno.h>
#include <pthread.h>

#include "sim.h"

struct sim_state sim_st = { .mu = PTHREAD_MUTEX_INITIALIZER };

int64_t sim_now(void)
{
	if (sim_st.manual_clock)
		return atomic_load(&sim_st.manual_ms);
	return sim_st.wall0 + (int64_t)(util_mono_ms() - sim_st.mono0);
}

int64_t sim_wall_ms(int64_t t)
{
	/* Manual time starts at 0; a client still needs dates near today (created_at, Retry-After). */
	return sim_st.manual_clock ? sim_st.wall0 + t : t;
}

int sim_clock_advance(uint64_t ms, int64_t *ret_now)
{
	int64_t now = atomic_load(&sim_st.manual_ms);

	if (!sim_st.manual_clock)
		return -EPERM;
	if (ms > (uint64_t)(INT64_MAX - now))
		return -ERANGE;
	now += (int64_t)ms;
	atomic_store(&sim_st.manual_ms, now);
	*ret_now = now;
	return 0;
}
