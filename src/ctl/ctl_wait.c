/* embedwatchctl wait: the answer when the jobs have ended, and a progress line meanwhile on a terminal. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"

/* Ids per wait request and per progress query, as watch sends them: well under the daemon's 1 MiB. */
#define CHUNK 5000

/* One request on a connection of its own (progress queries beside a wait); NULL when it fails. */
static json_object *query_once(json_object *req)
{
	int saved = ctl_fd;
	struct buf saved_buf = ctl_rbuf;
	json_object *ans = NULL;
	memset(&ctl_rbuf, 0, sizeof(ctl_rbuf));
	ctl_fd = ctl_try_connect(2000);
	if (ctl_fd >= 0) {
		ans = ctl_request(req, 2000);
		close(ctl_fd);
	}
	buf_free(&ctl_rbuf);
	ctl_fd = saved;
	ctl_rbuf = saved_buf;
	return ans;
}

/* ids[off, off + CHUNK) as a new array. */
static json_object *chunk_of(json_object *ids, size_t off)
{
	json_object *a = json_object_new_array();
	for (size_t i = off; i < json_object_array_length(ids) && i < off + CHUNK; i++)
		json_object_array_add(a, json_object_get(json_object_array_get_idx(ids, i)));
	return a;
}

static void fmt_duration(long s, char *buf, size_t len)
{
	if (s >= 3600)
		snprintf(buf, len, "%ldh%02ldm", s / 3600, (s / 60) % 60);
	else if (s >= 60)
		snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(buf, len, "%lds", s);
}

struct progress {
	json_object *ids;           /* the ids waited for (queried CHUNK at a time), or NULL */
	const char *account;        /* --account: the ids are that account's, or NULL */
	const char *batch;
	long started;               /* monotonic seconds */
	long first_ended;           /* -1 until the first query */
};

static long mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Redraws the one progress line on stderr: ended/total, per outcome, elapsed, a rough time left. */
static void progress_draw(struct progress *pg)
{
	json_object *ans = NULL, *arr, *rec;
	long total = 0, ended = 0, counts[4] = { 0 };
	long long rec_all = 0, rec_done = 0;   /* records of the batch jobs among them (v2) */
	static const char *const outcomes[] = { "complete", "failed", "cancelled", "other" };
	size_t n_ids = pg->ids ? json_object_array_length(pg->ids) : 0;
	if (pg->batch) {
		json_object *req = ctl_new_req("batches");
		json_object_object_add(req, "name", json_object_new_string(pg->batch));
		ans = query_once(req);
		json_object_put(req);
		if (!ans)
			return;
	}
	for (size_t off = 0; !pg->batch && off < n_ids; off += CHUNK) {
		json_object *req = ctl_new_req("list"), *part, *jobs;
		json_object_object_add(req, "ids", chunk_of(pg->ids, off));
		ctl_add_account(req, pg->account);
		part = query_once(req);
		json_object_put(req);
		if (!part)
			return;
		if (!ans) {
			ans = part;
			continue;
		}
		json_object_object_get_ex(ans, "jobs", &arr);
		if (arr && json_object_object_get_ex(part, "jobs", &jobs) && jobs)
			for (size_t i = 0; i < json_object_array_length(jobs); i++)
				json_object_array_add(arr, json_object_get(json_object_array_get_idx(jobs, i)));
		json_object_put(part);
	}
	if (!ans)
		return;
	if (pg->batch && json_object_object_get_ex(ans, "batches", &arr)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *b = json_object_array_get_idx(arr, i), *cnt;
			if (strcmp(ctl_str(b, "name"), pg->batch) != 0)
				continue;
			total = (long)ctl_num(b, "total");
			ended = (long)ctl_num(b, "ended");
			json_object_object_get_ex(b, "counts", &cnt);
			for (int k = 0; k < 3; k++)
				counts[k] = (long)ctl_num(cnt, outcomes[k]);
			if (json_object_object_get_ex(b, "records", &rec)) {
				rec_all = ctl_num(rec, "num_records");
				rec_done = ctl_num(rec, "num_successful_records") + ctl_num(rec, "num_failed_records");
			}
		}
	} else if (json_object_object_get_ex(ans, "jobs", &arr)) {
		total = (long)json_object_array_length(arr);
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *jo = json_object_array_get_idx(arr, i);
			const char *st = ctl_str(jo, "status");
			if (json_object_object_get_ex(jo, "records", &rec)) {
				rec_all += ctl_num(rec, "num_records");
				rec_done += ctl_num(rec, "num_successful_records") + ctl_num(rec, "num_failed_records");
			}
			int k = !strcmp(st, "complete") ? 0 : !strcmp(st, "failed") ? 1 : !strcmp(st, "cancelled") ? 2 : 3;
			bool done = k < 3 || !strcmp(st, "not_found") || !strcmp(st, "error") || !strcmp(st, "expired");
			if (done) {
				ended++;
				counts[k]++;
			}
		}
	}
	json_object_put(ans);
	counts[3] = ended - counts[0] - counts[1] - counts[2];
	long el = mono_s() - pg->started;
	if (pg->first_ended < 0)
		pg->first_ended = ended;
	char elapsed[32], left[48] = "";
	fmt_duration(el, elapsed, sizeof(elapsed));
	long gained = ended - pg->first_ended;
	if (gained > 0 && el > 0 && total > ended) {
		char d[32];
		fmt_duration((long)((double)(total - ended) * (double)el / (double)gained), d, sizeof(d));
		snprintf(left, sizeof(left), ", ~%s left", d);
	}
	char records[80] = "";
	if (rec_all > 0)
		snprintf(records, sizeof(records), ", records %lld/%lld (%lld%%)", rec_done, rec_all,
			 rec_done >= rec_all ? 100 : rec_done * 100 / rec_all);
	fprintf(stderr, "\r\033[Kwaiting: %ld/%ld ended (complete %ld, failed %ld, cancelled %ld, other %ld)%s, %s elapsed%s",
		ended, total, counts[0], counts[1], counts[2], counts[3], records, elapsed, left);
	fflush(stderr);
}

int ctl_wait(int argc, char **argv)
{
	static const struct option opts[] = { { "batch", required_argument, NULL, 'b' },
					      { "timeout", required_argument, NULL, 't' },
					      { "quiet", no_argument, NULL, 'q' },
					      { "account", required_argument, NULL, 'a' }, { 0 } };
	const char *batch = NULL, *account = NULL;
	int timeout = -1, o;
	bool quiet = false;
	optind = 0;
	while ((o = getopt_long(argc, argv, "b:t:qa:", opts, NULL)) != -1) {
		if (o == 'b') {
			batch = optarg;
		} else if (o == 'a') {
			account = ctl_account_arg("wait", optarg);
		} else if (o == 't') {
			uint64_t ms;
			if (config_parse_duration(optarg, &ms) < 0 || ms > INT32_MAX)
				ctl_die_usage("wait: --timeout expects a duration like 30s, 10m or 2h, got \"%s\"", optarg);
			timeout = (int)ms;
		} else if (o == 'q') {
			quiet = true;
		} else {
			ctl_die_usage("wait: unknown option");
		}
	}
	struct progress pg = { .batch = batch, .account = account, .started = mono_s(), .first_ended = -1 };
	json_object *ids = NULL;
	if (batch) {
		if (optind < argc)
			ctl_die_usage("wait: give job ids or --batch, not both");
		if (account)
			ctl_die_usage("wait: --account names the account of job ids; a batch (--batch) may hold jobs of any");
	} else {
		if (optind >= argc)
			ctl_die_usage("wait: give job ids (or - for stdin) or --batch NAME");
		ids = ctl_read_ids(argc - optind, argv + optind);
		pg.ids = ids;
	}
	/* The progress line: only for a person at a terminal, never into a pipe or a file. */
	bool show = !quiet && !ctl_json_out && isatty(STDERR_FILENO);
	ctl_connect();
	json_object *all = json_object_new_array(), *ans = NULL;
	long deadline_ms = timeout;
	size_t n = ids ? json_object_array_length(ids) : 0;
	/* The ids CHUNK at a time, one wait after another (like watch -): all have ended when the last answers. */
	for (size_t off = 0; batch ? off == 0 : off < n; off += CHUNK) {
		json_object *req = ctl_new_req("wait");
		if (batch)
			json_object_object_add(req, "batch", json_object_new_string(batch));
		else
			json_object_object_add(req, "ids", chunk_of(ids, off));
		ctl_add_account(req, account);
		for (bool first = true;; first = false) {
			int slice = show ? 1000 : (int)deadline_ms;
			if (show && deadline_ms >= 0 && deadline_ms < slice)
				slice = (int)deadline_ms;
			long t0 = mono_ms();
			ans = first ? ctl_request(req, slice) : ctl_request(NULL, slice);
			if (deadline_ms >= 0 && (deadline_ms -= mono_ms() - t0) < 0)
				deadline_ms = 0;
			if (ans || deadline_ms == 0)
				break;
			if (show)
				progress_draw(&pg);
		}
		json_object_put(req);
		if (!ans)
			break;
		ctl_check(ans);
		json_object *jobs;
		if (json_object_object_get_ex(ans, "jobs", &jobs) && jobs)
			for (size_t i = 0; i < json_object_array_length(jobs); i++)
				json_object_array_add(all, json_object_get(json_object_array_get_idx(jobs, i)));
		json_object_put(ans);
	}
	if (show && pg.first_ended >= 0)
		fprintf(stderr, "\r\033[K");
	json_object_put(ids);
	if (!ans) {
		json_object_put(all);
		ctl_error("wait timed out");
		return EXIT_TIMEOUT;
	}
	int rc = 0;
	for (size_t i = 0; i < json_object_array_length(all); i++) {
		json_object *j = json_object_array_get_idx(all, i);
		if (strcmp(ctl_str(j, "status"), "complete") != 0)
			rc = EXIT_PARTIAL;
		if (!ctl_json_out)
			printf("%s %s\n", ctl_str(j, "id"), ctl_str(j, "status"));
	}
	if (ctl_json_out)
		ctl_print_json(all);
	json_object_put(all);
	ctl_check_output();
	return rc;
}
