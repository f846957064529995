/*
 * The observation planner. The model, in milliseconds:
 *
 *   per-id: each of n jobs is polled every I_p = max(floor, n / rate, n * poll_bytes / byte_rate);
 *           a job's end is seen I_p / 2 later on average.
 *   sweep:  one list every I_s = max(sweep_interval, 2 / rate (half the requests; all of them,
 *           1 / rate, when the last list showed every watched job), list_bytes / byte_rate, its
 *           answer time T); an end is seen I_s / 2 + T later on average.
 *
 * The per-id interval is the budget spread over the jobs: with 3 jobs at 60
 * requests/min each is seen every 3 s, whatever its backoff says (the backoff
 * bounds how rarely a job is polled, not how often). The mode with the
 * smaller delay wins, except that the sweep keeps ties (within a tolerance,
 * half a second or a quarter of the per-id delay):
 * it is one request where per-id polling spends the whole rate. Hysteresis:
 * from per-id, the sweep must be within half the tolerance to take over.
 */
#include "planner.h"

#include <stddef.h>

static double max2(double a, double b)
{
	return a > b ? a : b;
}

static uint64_t ms(double v)
{
	return v <= 0 ? 0 : v >= 1e18 ? (uint64_t)1e18 : (uint64_t)(v + 0.5);
}

/* The interval at which n jobs polled per id are each seen, within rate (per ms) and byte rate (per ms). */
static double per_id_interval(const struct planner_in *in, uint64_t n, double rate, double byte_rate)
{
	double floor_ms = (double)in->poll_floor_ms;
	if (n == 0)
		return floor_ms;
	double bytes = in->poll_wire ? (double)in->poll_wire : PLANNER_POLL_BYTES_GUESS;
	double by_rate = rate > 0 ? (double)n / rate : 1e18;
	double by_bytes = byte_rate > 0 ? (double)n * bytes / byte_rate : 1e18;
	return max2(floor_ms, max2(by_rate, by_bytes));
}

/*
 * The list's share of the requests: half, the other half polling the jobs it
 * does not show; all of them when it showed every watched job (cancels still
 * go first: the poller's policy, budget.c).
 */
static double by_rate(const struct planner_in *in, double rate)
{
	return rate > 0 ? (in->unlisted ? 2.0 : 1.0) / rate : 1e18;
}

/* What the budgets allow: the list's share of the requests, and its bytes within the byte rate (per ms). */
static double sweep_floor(const struct planner_in *in, double rate, double byte_rate)
{
	double by_bytes = byte_rate > 0 ? (double)in->list_wire / byte_rate : 1e18;
	return max2(by_rate(in, rate), by_bytes);
}

/* The list's shortest interval; *ret_bytes_bound says whether the byte budget is what sets it. */
static double sweep_interval(const struct planner_in *in, double rate, double byte_rate, bool *ret_bytes_bound)
{
	double by_bytes = byte_rate > 0 ? (double)in->list_wire / byte_rate : 1e18;
	double other = max2(max2((double)in->sweep_min_ms, by_rate(in, rate)), (double)in->list_ms);
	*ret_bytes_bound = by_bytes > other;
	return max2(other, by_bytes);
}

void planner_plan(const struct planner_in *in, struct planner_out *out)
{
	double rate = in->rate_per_s / 1000.0, byte_rate = in->bytes_per_s / 1000.0;
	bool bytes_bound;
	double i_s = sweep_interval(in, rate, byte_rate, &bytes_bound);
	double d_s = i_s / 2 + (double)in->list_ms;
	double i_p = per_id_interval(in, in->live, rate, byte_rate);
	double d_p = i_p / 2;
	/* Per-id is the yardstick: the same tolerance then also gives the list size where the sweep stops paying. */
	double tol = max2(PLANNER_TOLERANCE_MS, d_p / 4);
	enum planner_mode mode;
	enum planner_why why;

	if (in->policy == PLANNER_PER_ID) {
		mode = PLAN_PER_ID, why = WHY_POLICY_PER_ID;
	} else if (!in->sweep_enabled) {
		mode = PLAN_PER_ID, why = WHY_SWEEP_OFF;
	} else if (in->list_failing) {
		mode = PLAN_PER_ID, why = WHY_LIST_FAILING;
	} else if (in->discovery) {
		mode = PLAN_SWEEP, why = WHY_DISCOVERY;
	} else if (in->live == 0) {
		mode = PLAN_IDLE, why = WHY_IDLE;
	} else if (in->policy == PLANNER_SWEEP) {
		mode = PLAN_SWEEP, why = WHY_POLICY_SWEEP;
	} else {
		/* Per-id must be clearly sooner to take over; the sweep, only a little worse to take it back. */
		double margin = in->current == PLAN_PER_ID ? tol / 2 : tol;
		if (d_s <= d_p + margin)
			mode = PLAN_SWEEP, why = WHY_SWEEP_SOONER;
		else
			mode = PLAN_PER_ID, why = bytes_bound ? WHY_LIST_TOO_BIG : WHY_PER_ID_SOONER;
	}

	out->mode = mode;
	out->why = why;
	out->delay_sweep_ms = ms(d_s);
	out->delay_per_id_ms = ms(d_p);
	out->list_cap = 0;
	out->sweep_floor_ms = 0;
	if (mode == PLAN_SWEEP) {
		out->sweep_floor_ms = ms(sweep_floor(in, rate, byte_rate));
		/* What the list leaves of both budgets goes to the jobs it did not show. */
		double rate_left = rate - 1.0 / i_s, bytes_left = byte_rate - (double)in->list_wire / i_s;
		out->sweep_every_ms = ms(i_s);
		out->poll_every_ms = in->unlisted ? ms(per_id_interval(in, in->unlisted, rate_left > rate / 2 ? rate_left : rate / 2,
								  bytes_left > byte_rate / 10 ? bytes_left : byte_rate / 10)) : 0;
		out->delay_ms = ms(d_s);
		if (why == WHY_SWEEP_SOONER) {
			/* The list size at which d_s would pass d_p + tol: a larger list is stopped, per-id takes over. */
			double cap = 2 * byte_rate * (d_p + tol - (double)in->list_ms);
			out->list_cap = cap < 1 ? 1 : ms(cap);
		}
	} else if (mode == PLAN_PER_ID) {
		out->sweep_every_ms = 0;
		out->poll_every_ms = ms(i_p);
		out->delay_ms = ms(d_p);
	} else {
		out->sweep_every_ms = 0;
		out->poll_every_ms = 0;
		out->delay_ms = 0;
	}
}

const char *planner_mode_name(enum planner_mode m)
{
	static const char *const names[PLAN__MAX] = { "idle", "sweep", "per-id" };
	return m < PLAN__MAX ? names[m] : "unknown";
}

const char *planner_why_text(enum planner_why w)
{
	static const char *const text[WHY__MAX] = {
		"no watched job is running",
		"discovery finds new jobs only in the list",
		"planner = sweep",
		"planner = per-id",
		"sweep = no",
		"the list failed; it is tried again later",
		"one list sees every job sooner, or about as soon for fewer requests",
		"per-id polls see the jobs clearly sooner",
		"the list is too big for the byte budget to be read often enough",
	};
	return w < WHY__MAX ? text[w] : "unknown";
}

const char *planner_why_name(enum planner_why w)
{
	static const char *const names[WHY__MAX] = {
		"idle", "discovery", "policy-sweep", "policy-per-id", "sweep-off", "list-failing",
		"sweep-sooner", "per-id-sooner", "list-too-big",
	};
	return w < WHY__MAX ? names[w] : "unknown";
}
