/* Prometheus text and the STATUS= line, from struct metrics and the job counts. */
#include "metrics.h"

#include <stdio.h>

#include "api.h"
#include "job.h"
#include "planner.h"
#include "util.h"

static const double request_bounds[METRICS_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
static const double lag_bounds[METRICS_BUCKETS] = { 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800 };

static void observe(struct metrics_hist *h, const double *bounds, double v)
{
	int i = 0;
	while (i < METRICS_BUCKETS && v > bounds[i])
		i++;
	if (i < METRICS_BUCKETS)
		h->counts[i]++;
	else
		h->over++;
	h->n++;
	h->sum += v;
}

void metrics_observe_request(struct metrics *m, double s)
{
	observe(&m->request_seconds, request_bounds, s);
}

void metrics_observe_lag(struct metrics *m, double s)
{
	observe(&m->detection_lag, lag_bounds, s);
}

const char *metrics_pause_name(enum pause_reason p)
{
	static const char *const names[PAUSE__MAX] = { "none", "rate-limited", "auth", "bad-base-url", "tls" };
	return p < PAUSE__MAX ? names[p] : "unknown";
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
	family(b, name, "counter", help);
	buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(struct buf *b, const char *name, const char *help, double v)
{
	family(b, name, "gauge", help);
	buf_printf(b, "%s %.17g\n", name, v);
}

static void histogram(struct buf *b, const char *name, const char *help, const struct metrics_hist *h,
		      const double *bounds)
{
	uint64_t cum = 0;
	family(b, name, "histogram", help);
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		cum += h->counts[i];
		buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
	}
	buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n%s_count %llu\n", name, (unsigned long long)h->n, name,
		   h->sum, name, (unsigned long long)h->n);
}

/* Each [account NAME]'s budget, pause and requests, labelled with its name and provider. */
static void account_text(const struct metrics *m, struct buf *b)
{
	static const struct { const char *name, *type, *help; } fam[] = {
		{ "embedwatch_account_budget_per_second", "gauge", "Configured requests per second of the account." },
		{ "embedwatch_account_rate_per_second", "gauge", "Requests per second the account allows now (lowered after 429/503)." },
		{ "embedwatch_account_paused_seconds", "gauge", "Left of the account's pause (429/503, key, base URL), 0: none." },
		{ "embedwatch_account_requests_last_minute", "gauge", "Requests of the account sent in the last 60 s." },
		{ "embedwatch_account_requests_total", "counter", "Requests of the account sent." },
		{ "embedwatch_account_lists_total", "counter", "List pages of the account read by its sweep." },
		{ "embedwatch_account_throttled_total", "counter", "429/503 answers to the account's requests." },
		{ "embedwatch_account_auth_failures_total", "counter", "Answers refusing the account's key." },
		{ "embedwatch_account_live_jobs", "gauge", "The account's watched jobs not ended." },
		{ "embedwatch_account_sweeping", "gauge", "1 while the account's list sweep observes its jobs, 0: per-id polls." },
	};
	if (!m->n_accounts)
		return;
	for (size_t f = 0; f < ARRAY_SIZE(fam); f++) {
		family(b, fam[f].name, fam[f].type, fam[f].help);
		for (unsigned i = 0; i < m->n_accounts; i++) {
			const struct metrics_account *a = &m->accounts[i];
			double v[] = { a->budget, a->rate, (double)a->paused_ms / 1000.0, a->minute, (double)a->requests,
				       (double)a->lists, (double)a->throttles, (double)a->auth_failures, (double)a->live,
				       a->sweeping };
			buf_printf(b, "%s{account=\"%s\",provider=\"%s\"} %.17g\n", fam[f].name, a->name,
				   a->provider ? a->provider : "", v[f]);
		}
	}
}

/* Each request class's budget, and the month's. */
static void class_text(const struct metrics *m, struct buf *b)
{
	static const struct { const char *name, *type, *help; } fam[] = {
		{ "embedwatch_class_budget_per_second", "gauge", "Configured requests per second of the request class." },
		{ "embedwatch_class_rate_per_second", "gauge", "Requests per second the class allows now (lowered after 429/503)." },
		{ "embedwatch_class_tokens", "gauge", "Tokens in the class's bucket." },
		{ "embedwatch_class_paused_seconds", "gauge", "Left of the class's 429/503 pause, 0: none." },
		{ "embedwatch_class_requests_last_minute", "gauge", "Requests of the class sent in the last 60 s." },
		{ "embedwatch_class_requests_total", "counter", "Requests of the class sent." },
		{ "embedwatch_class_throttled_total", "counter", "429/503 answers to requests of the class." },
	};
	for (size_t f = 0; f < ARRAY_SIZE(fam); f++) {
		family(b, fam[f].name, fam[f].type, fam[f].help);
		for (int c = 0; c < RC__N; c++) {
			const struct metrics_class *k = &m->cls[c];
			double v[] = { k->budget, k->rate, k->tokens, (double)k->paused_ms / 1000.0, k->minute,
				       (double)k->requests, (double)k->throttles };
			buf_printf(b, "%s{class=\"%s\"} %.17g\n", fam[f].name, budget_class_name((enum rclass)c), v[f]);
		}
	}
	gauge(b, "embedwatch_month_allowance_requests", "The calendar month's allowance ([poll] monthly_requests), 0: none.",
	      (double)m->month_allowance);
	gauge(b, "embedwatch_month_used_requests", "Requests sent this calendar month (UTC), as counted in the state.",
	      (double)m->month_used);
	gauge(b, "embedwatch_month_left_requests", "Left of the month's allowance (0 when there is none).",
	      (double)(m->month_allowance > m->month_used ? m->month_allowance - m->month_used : 0));
	gauge(b, "embedwatch_month_projected_requests", "Use of the whole month at the pace so far.",
	      (double)m->month_projected);
	gauge(b, "embedwatch_month_wait_seconds", "Until the month's spread allows the next request, 0: now.",
	      (double)m->month_wait_ms / 1000.0);
}

void metrics_text(const struct metrics *m, const size_t job_counts[JOB__MAX], struct buf *b)
{
	family(b, "embedwatch_build_info", "gauge", "Always 1; the version in a label.");
	buf_printf(b, "embedwatch_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	gauge(b, "process_start_time_seconds", "Start time of the process since the Unix epoch, seconds.",
	      (double)m->start_ms / 1000.0);
	family(b, "embedwatch_jobs", "gauge", "Watched jobs by status.");
	for (int i = 0; i < JOB__MAX; i++)
		buf_printf(b, "embedwatch_jobs{status=\"%s\"} %zu\n", job_status_name((enum job_status)i), job_counts[i]);
	size_t all = 0, batch = 0;
	for (int i = 0; i < JOB__MAX; i++) {
		all += job_counts[i];
		batch += m->batch_jobs[i];
	}
	family(b, "embedwatch_jobs_by_kind", "gauge", "Watched jobs by kind: embed-job (v1 embed jobs), batch-job (v2 batches).");
	buf_printf(b, "embedwatch_jobs_by_kind{kind=\"embed-job\"} %zu\nembedwatch_jobs_by_kind{kind=\"batch-job\"} %zu\n",
		   all - batch, batch);
	family(b, "embedwatch_batch_job_records", "gauge",
	       "Records of the watched batch jobs as they last reported them: all (num_records), successful, failed.");
	buf_printf(b, "embedwatch_batch_job_records{outcome=\"all\"} %lld\nembedwatch_batch_job_records{outcome=\"successful\"} %lld\n"
		   "embedwatch_batch_job_records{outcome=\"failed\"} %lld\n", (long long)m->batch_records[0],
		   (long long)m->batch_records[1], (long long)m->batch_records[2]);
	counter(b, "embedwatch_polls_total", "Poll requests sent.", m->polls);
	counter(b, "embedwatch_dataset_fetches_total", "GET /v1/datasets/{id} sent for the output dataset of complete events.",
		m->dataset_fetches);
	family(b, "embedwatch_complete_event_datasets_total", "counter",
	       "Complete events by whether their output dataset is in them (attached) or null (missing).");
	buf_printf(b, "embedwatch_complete_event_datasets_total{result=\"attached\"} %llu\n"
		   "embedwatch_complete_event_datasets_total{result=\"missing\"} %llu\n",
		   (unsigned long long)m->datasets_attached, (unsigned long long)m->datasets_missing);
	family(b, "embedwatch_poll_answers_total", "counter", "Poll answers by class.");
	for (int i = 0; i < METRICS_ANSWER_CLASSES; i++)
		buf_printf(b, "embedwatch_poll_answers_total{class=\"%s\"} %llu\n", api_class_name((enum api_class)i),
			   (unsigned long long)m->poll_answers[i]);
	counter(b, "embedwatch_poll_errors_total", "Polls without an HTTP answer.", m->poll_errors);
	counter(b, "embedwatch_transitions_total", "Job status changes observed.", m->transitions);
	counter(b, "embedwatch_events_total", "Events recorded.", m->events);
	family(b, "embedwatch_deliveries_total", "counter", "Finished delivery attempts by result.");
	buf_printf(b, "embedwatch_deliveries_total{result=\"ok\"} %llu\nembedwatch_deliveries_total{result=\"failed\"} %llu\n"
		   "embedwatch_deliveries_total{result=\"dead\"} %llu\n", (unsigned long long)m->deliveries_ok,
		   (unsigned long long)m->deliveries_failed, (unsigned long long)m->deliveries_dead);
	gauge(b, "embedwatch_deliveries_pending", "Deliveries queued, waiting to retry or running.", m->deliveries_pending);
	gauge(b, "embedwatch_hooks_running", "Hook attempts running now.", m->hooks_running);
	gauge(b, "embedwatch_hooks_disabled", "Hooks disabled now (breaker, 410 or an operator); their deliveries wait.",
	      m->hooks_disabled);
	counter(b, "embedwatch_hook_disables_total", "Times a hook was disabled (breaker, 410 or an operator).",
		m->hook_disables);
	counter(b, "embedwatch_commits_total", "State database commits.", m->commits);
	counter(b, "embedwatch_commit_failures_total", "State database commits that failed.", m->commit_failures);
	counter(b, "embedwatch_throttled_total", "429 and 503 answers from the API.", m->throttles);
	counter(b, "embedwatch_cancels_total", "Cancel requests sent to the API.", m->cancels);
	counter(b, "embedwatch_sweeps_total", "List sweeps (GET /v1/embed-jobs) sent.", m->sweeps);
	counter(b, "embedwatch_sweep_failures_total", "List sweeps that failed.", m->sweep_failures);
	counter(b, "embedwatch_sweep_fallbacks_total", "Times the daemon fell back to per-id polling.", m->sweep_fallbacks);
	counter(b, "embedwatch_batch_sweeps_total", "v2 sweeps (GET /v2/batches, paged) begun.", m->batch_sweeps);
	counter(b, "embedwatch_batch_sweep_pages_total", "Pages of v2 sweeps requested.", m->batch_sweep_pages);
	counter(b, "embedwatch_batch_sweep_entries_total", "Batches read from v2 sweeps, watched or not.", m->batch_sweep_entries);
	counter(b, "embedwatch_batch_sweep_cut_total",
		"v2 sweeps that stopped early, at the previous sweep's newest updated_at.", m->batch_sweep_cut);
	counter(b, "embedwatch_batch_sweep_failures_total", "v2 sweeps that failed.", m->batch_sweep_failures);
	counter(b, "embedwatch_batch_sweep_fallbacks_total", "Times batch jobs fell back to per-id polling.",
		m->batch_sweep_fallbacks);
	family(b, "embedwatch_discover_refused_total", "counter",
	       "Jobs the list showed and discovery refused, by reason (name: the batch name is not 1 to 128 printable characters).");
	buf_printf(b, "embedwatch_discover_refused_total{reason=\"name\"} %llu\n", (unsigned long long)m->discover_refused_name);
	gauge(b, "embedwatch_batch_sweep_last_pages", "Pages the last complete v2 sweep read.", m->batch_sweep_last_pages);
	counter(b, "embedwatch_sweep_entries_total", "List entries read, watched or not.", m->sweep_entries);
	gauge(b, "embedwatch_sweep_list_entries", "Entries in the last good list.", (double)m->sweep_listed);
	family(b, "embedwatch_sweep_list_bytes", "gauge", "Size of the last full list: on the wire, and decoded.");
	buf_printf(b, "embedwatch_sweep_list_bytes{encoding=\"wire\"} %llu\nembedwatch_sweep_list_bytes{encoding=\"decoded\"} %llu\n",
		   (unsigned long long)m->list_wire_bytes, (unsigned long long)m->list_decoded_bytes);
	family(b, "embedwatch_planner_mode", "gauge", "1 for how watched jobs are observed now: the list sweep or per-id polls.");
	for (int i = 0; i < PLAN__MAX; i++)
		buf_printf(b, "embedwatch_planner_mode{mode=\"%s\"} %d\n", planner_mode_name((enum planner_mode)i),
			   m->plan_mode == (enum planner_mode)i);
	family(b, "embedwatch_planner_reason", "gauge", "1 for why the planner chose its mode.");
	for (int i = 0; i < WHY__MAX; i++)
		buf_printf(b, "embedwatch_planner_reason{reason=\"%s\"} %d\n", planner_why_name((enum planner_why)i),
			   m->plan_why == (enum planner_why)i);
	counter(b, "embedwatch_planner_switches_total", "Times the planner changed mode.", m->plan_switches);
	gauge(b, "embedwatch_detection_delay_estimate_seconds",
	      "The planner's estimate of the mean delay from a job's end to its observation, in the mode chosen.",
	      (double)m->plan_delay_ms / 1000.0);
	family(b, "embedwatch_planner_delay_estimate_seconds", "gauge",
	       "The planner's estimate of the mean detection delay in each mode, the one not chosen too.");
	buf_printf(b, "embedwatch_planner_delay_estimate_seconds{mode=\"sweep\"} %.3f\n"
		   "embedwatch_planner_delay_estimate_seconds{mode=\"per-id\"} %.3f\n",
		   (double)m->plan_delay_sweep_ms / 1000.0, (double)m->plan_delay_per_id_ms / 1000.0);
	gauge(b, "embedwatch_planner_poll_interval_seconds", "Per-id polls of a job at least this often (0: by backoff only).",
	      (double)m->plan_poll_every_ms / 1000.0);
	gauge(b, "embedwatch_planner_sweep_interval_seconds", "Lists at most this often (0: no sweeping).",
	      (double)m->plan_sweep_every_ms / 1000.0);
	gauge(b, "embedwatch_planner_list_cap_bytes", "A list larger than this on the wire is stopped (0: no cap).",
	      (double)m->plan_list_cap);
	counter(b, "embedwatch_sweep_not_modified_total", "List answers 304 Not Modified (nothing changed, nothing sent).",
		m->list_not_modified);
	static const char *const endpoint[EP__MAX] = { "poll", "list", "cancel", "webhook", "dataset", "batch_list" };
	family(b, "embedwatch_received_bytes_total", "counter",
	       "Bytes received by endpoint: wire (headers and body as sent, compressed) and decoded (the body after decoding).");
	for (int i = 0; i < EP__MAX; i++)
		buf_printf(b, "embedwatch_received_bytes_total{endpoint=\"%s\",encoding=\"wire\"} %llu\n"
			   "embedwatch_received_bytes_total{endpoint=\"%s\",encoding=\"decoded\"} %llu\n", endpoint[i],
			   (unsigned long long)m->rx_wire[i], endpoint[i], (unsigned long long)m->rx_decoded[i]);
	gauge(b, "embedwatch_request_budget_per_second", "Configured request budget (rate), requests per second.",
	      m->request_budget);
	gauge(b, "embedwatch_request_rate_per_second", "Effective request rate allowed now (lowered after 429/503).",
	      m->request_rate);
	gauge(b, "embedwatch_last_poll_success_timestamp_seconds", "When the API last answered a poll with 200, 0: never.",
	      (double)m->last_poll_ok_ms / 1000.0);
	histogram(b, "embedwatch_request_duration_seconds", "Duration of API requests, answered or not.",
		  &m->request_seconds, request_bounds);
	histogram(b, "embedwatch_detection_lag_seconds",
		  "From the last API answer showing a job running to the start of a hook for its end (an upper bound "
		  "on the delay from the job's end: the API reports no end time).", &m->detection_lag, lag_bounds);
	class_text(m, b);
	account_text(m, b);
	gauge(b, "embedwatch_paused", "1 while all polling is paused.", m->paused != PAUSE_NONE);
	family(b, "embedwatch_pause_reason", "gauge", "1 for the reason all polling is paused, if it is.");
	for (int i = 1; i < PAUSE__MAX; i++)
		buf_printf(b, "embedwatch_pause_reason{reason=\"%s\"} %d\n", metrics_pause_name((enum pause_reason)i),
			   m->paused == (enum pause_reason)i);
	gauge(b, "embedwatch_polls_in_flight", "Poll requests in flight.", m->polls_in_flight);
	counter(b, "embedwatch_http_connections_opened_total", "Connections opened to the API and webhook receivers.",
		m->connections_opened);
	counter(b, "embedwatch_metrics_http_connections_total", "Connections taken on metrics_listen.",
		m->metrics_http_connections);
	counter(b, "embedwatch_metrics_http_evictions_total",
		"Idle connections on metrics_listen closed to make room for a new one.", m->metrics_http_evictions);
	counter(b, "embedwatch_metrics_http_timeouts_total",
		"Connections on metrics_listen closed without a complete request within 5 s.", m->metrics_http_timeouts);
	gauge(b, "embedwatch_state_db_failing", "1 while the state database cannot be written.", m->store_failing);
	gauge(b, "embedwatch_leader", "1 while this daemon is the active one with its lease confirmed (observes the API, "
	      "runs hooks); 0: standby, or an active cut off from the state (role unconfirmed).", metrics_role(m) == ROLE_ACTIVE);
	counter(b, "embedwatch_takeovers_total", "Times this daemon became the active one (at start included).", m->takeovers);
}

const char *metrics_role_name(enum ew_role r)
{
	static const char *const names[] = { "active", "standby", "taking over", "unconfirmed" };
	return (unsigned)r < ARRAY_SIZE(names) ? names[r] : "?";
}

enum ew_role metrics_role(const struct metrics *m)
{
	if (m->shared && m->role == ROLE_ACTIVE && util_mono_ms() >= m->lease_fresh_until)
		return ROLE_UNCONFIRMED;
	return m->role;
}

void metrics_plan_line(const struct metrics *m, char *buf, size_t len)
{
	char list[64];
	if (m->list_size_wire)
		snprintf(list, sizeof(list), "%s%.1f MB", m->list_size_is_min ? ">= " : "", (double)m->list_size_wire / 1e6);
	else
		snprintf(list, sizeof(list), "size unknown");
	switch (m->plan_mode) {
	case PLAN_PER_ID:
		snprintf(buf, len, "per-id polls (%s): each job at least every %.1f s; estimated detection delay %.1f s "
			 "(by the list, %s: %.1f s)", planner_why_text(m->plan_why), (double)m->plan_poll_every_ms / 1000,
			 (double)m->plan_delay_ms / 1000, list, (double)m->plan_delay_sweep_ms / 1000);
		break;
	case PLAN_SWEEP:
		snprintf(buf, len, "the list sweep (%s): a list (%s) at most every %.1f s; estimated detection delay %.1f s "
			 "(by per-id polls: %.1f s)", planner_why_text(m->plan_why), list, (double)m->plan_sweep_every_ms / 1000,
			 (double)m->plan_delay_ms / 1000, (double)m->plan_delay_per_id_ms / 1000);
		break;
	default:
		snprintf(buf, len, "nothing now (%s)", planner_why_text(m->plan_why));
		break;
	}
}

void metrics_status_line(const struct metrics *m, const size_t c[JOB__MAX], char *buf, size_t len)
{
	size_t live = 0, ended = 0;
	for (int i = 0; i < JOB__MAX; i++) {
		if (job_status_ended((enum job_status)i))
			ended += c[i];
		else
			live += c[i];
	}
	int n = 0;
	if (metrics_role(m) == ROLE_UNCONFIRMED) {
		/* Cut off from the state, or it does not answer: another daemon may be active by now. */
		snprintf(buf, len, "unconfirmed: this daemon held the lease (epoch %lld) but has not confirmed it for %llu ms; "
			 "no hook starts until it does%s", (long long)m->lease_epoch,
			 (unsigned long long)(util_mono_ms() - m->lease_seen_mono), m->store_failing ? "; STATE DATABASE NOT WRITABLE" : "");
		return;
	}
	if (m->shared && m->role != ROLE_ACTIVE) {
		/* A standby holds no jobs; its counts are the active's, from the shared state (control status). */
		if (m->active_host[0])
			snprintf(buf, len, "%s; the active is %s pid %d (lease renewed %lld ms ago)%s",
				 metrics_role_name(m->role), m->active_host, m->active_pid, (long long)m->lease_age_ms,
				 m->store_failing ? "; STATE DATABASE NOT WRITABLE" : "");
		else
			snprintf(buf, len, "%s; no daemon holds the lease", metrics_role_name(m->role));
		return;
	}
	if (m->shared) {
		n = snprintf(buf, len, "active (lease epoch %lld); ", (long long)m->lease_epoch);
		if (n < 0 || (size_t)n >= len)
			return;
	}
	n += snprintf(buf + n, len - (size_t)n, "watching %zu jobs (%zu processing, %zu cancelling, %zu new), %zu ended "
			 "(%zu complete, %zu failed, %zu cancelled); %u deliveries pending",
			 live, c[JOB_PROCESSING], c[JOB_CANCELLING], c[JOB_NONE], ended, c[JOB_COMPLETE], c[JOB_FAILED],
			 c[JOB_CANCELLED], m->deliveries_pending);
	if (n < 0 || (size_t)n >= len)
		return;
	static const char *const why[PAUSE__MAX] = { "", "; PAUSED: rate-limited by the API", "; PAUSED: API key refused",
						     "; PAUSED: API base URL refused (501)", "; PAUSED: TLS: " };
	snprintf(buf + n, len - (size_t)n, "%s%s%s", m->paused < PAUSE__MAX ? why[m->paused] : "",
		 m->paused == PAUSE_TLS ? m->pause_detail : "", m->store_failing ? "; STATE DATABASE NOT WRITABLE" : "");
}
