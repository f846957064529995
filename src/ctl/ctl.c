/*
 * embedwatchctl: the command-line client of the control socket.
 *
 * Exit codes: 0 success (wait: every job complete); 1 partly done (some ids
 * refused) or, for wait, some job ended otherwise than complete; 2 wait timed
 * out; 3 the daemon refused the request; 4 the daemon cannot be reached;
 * 64 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "util.h"

#define EXIT_PARTIAL 1
#define EXIT_TIMEOUT 2
#define EXIT_REFUSED 3
#define EXIT_UNREACHABLE 4
#define EXIT_USAGE 64
#define CHUNK 5000

static const char *sock_path;
static bool json_out;
static int fd = -1;
static struct buf rbuf;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: embedwatchctl [-s SOCKET] [--json] COMMAND [ARGS]\n\n"
		"Commands:\n"
		"  watch [--batch NAME] ID... | -     watch jobs (ids from stdin with -)\n"
		"  unwatch ID... | -                  stop watching jobs\n"
		"  list [--status S] [--batch B] [--watch N]\n"
		"                                     list watched jobs (--watch: refresh every N s)\n"
		"  show ID                            one job: status, last answer, events\n"
		"  status                             the daemon's state\n"
		"  metrics                            counters in Prometheus text format\n"
		"  wait ID... | --batch NAME [--timeout DURATION] [--quiet]\n"
		"                                     block until the jobs or batch have ended; on a\n"
		"                                     terminal, one line shows the progress\n"
		"  batches [--watch N]                batches with counts per status\n"
		"  deliveries [--state pending|dead|done]\n"
		"                                     hook deliveries with attempts and last error\n"
		"  redeliver EVENT_ID [--hook NAME]   queue a delivery again\n"
		"  cancel ID... | -                   cancel embed jobs (POST .../cancel) and watch them to the end\n\n"
		"Options:\n"
		"  -s, --socket PATH   control socket (default $EMBEDWATCH_SOCKET or /run/embedwatch/control.sock)\n"
		"  -j, --json          machine-readable output\n"
		"  -h, --help          this text\n\n"
		"Exit codes: 0 success (wait: all complete), 1 some ids refused / (wait) some job failed,\n"
		"was cancelled or otherwise did not complete, 2 wait timed out, 3 request refused,\n"
		"4 daemon unreachable, 64 usage error.\n");
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "embedwatchctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'embedwatchctl --help'.\n");
	exit(EXIT_USAGE);
}

static void connect_daemon(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "embedwatchctl: socket path too long: %s\n", sock_path);
		exit(EXIT_USAGE);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "embedwatchctl: cannot reach embedwatchd at %s: %s\n", sock_path, strerror(errno));
		exit(EXIT_UNREACHABLE);
	}
}

/* Sends one request and reads one answer line; timeout_ms < 0 waits for ever. 0 on timeout. */
static json_object *request(json_object *req, int timeout_ms)
{
	/* req NULL: only read the answer to a request already sent. */
	const char *s = req ? json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN) : "";
	size_t n = strlen(s), off = 0;
	struct buf out = { 0 };
	if (req) {
		buf_append(&out, s, n);
		buf_append(&out, "\n", 1);
	}
	while (off < out.len) {
		ssize_t w = write(fd, out.data + off, out.len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "embedwatchctl: lost the connection to embedwatchd: %s\n", strerror(errno));
			exit(EXIT_UNREACHABLE);
		}
		off += (size_t)w;
	}
	buf_free(&out);
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		char *nl = rbuf.data ? memchr(rbuf.data, '\n', rbuf.len) : NULL;
		if (nl) {
			*nl = '\0';
			json_object *ans = json_tokener_parse(rbuf.data);
			size_t used = (size_t)(nl - rbuf.data) + 1;
			memmove(rbuf.data, rbuf.data + used, rbuf.len - used);
			rbuf.len -= used;
			if (!ans) {
				fprintf(stderr, "embedwatchctl: embedwatchd sent an answer that is not JSON\n");
				exit(EXIT_UNREACHABLE);
			}
			return ans;
		}
		int wait = -1;
		if (timeout_ms >= 0) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
			if (el >= timeout_ms)
				return NULL;
			wait = (int)(timeout_ms - el);
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			return NULL;
		char tmp[65536];
		ssize_t r = read(fd, tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "embedwatchctl: embedwatchd closed the connection\n");
			exit(EXIT_UNREACHABLE);
		}
		buf_append(&rbuf, tmp, (size_t)r);
	}
}

static const char *str(json_object *o, const char *key);
static int64_t num(json_object *o, const char *key);

static const char *str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return "";
	return json_object_get_string(v);
}

static int64_t num(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* Checks ok; prints the error and exits 3 if not. */
static void check(json_object *ans)
{
	json_object *ok;
	if (json_object_object_get_ex(ans, "ok", &ok) && json_object_get_boolean(ok))
		return;
	fprintf(stderr, "embedwatchctl: %s\n", str(ans, "error"));
	json_object_put(ans);
	exit(EXIT_REFUSED);
}

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static json_object *new_req(const char *cmd)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	return o;
}

/* Ids from argv, or from stdin with "-": separated by any whitespace or commas, lines of any length. */
static json_object *read_ids(int argc, char **argv)
{
	json_object *ids = json_object_new_array();
	if (argc == 1 && strcmp(argv[0], "-") == 0) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		unsigned long lineno = 0;
		while ((n = getline(&line, &cap, stdin)) >= 0) {
			lineno++;
			/* A NUL would silently cut an id short: refuse the input instead. */
			if (memchr(line, '\0', (size_t)n)) {
				fprintf(stderr, "embedwatchctl: stdin line %lu contains a NUL byte; ids are text\n", lineno);
				exit(EXIT_USAGE);
			}
			char *save = NULL;
			for (char *t = strtok_r(line, " \t\r\n\v\f,", &save); t; t = strtok_r(NULL, " \t\r\n\v\f,", &save))
				json_object_array_add(ids, json_object_new_string(t));
		}
		free(line);
	} else {
		for (int i = 0; i < argc; i++)
			json_object_array_add(ids, json_object_new_string(argv[i]));
	}
	return ids;
}

static int cmd_watch(int argc, char **argv, bool unwatch)
{
	static const struct option opts[] = { { "batch", required_argument, NULL, 'b' }, { 0 } };
	const char *batch = NULL;
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "b:", opts, NULL)) != -1) {
		if (o == 'b' && !unwatch)
			batch = optarg;
		else
			die_usage("%s: unknown option", argv[0]);
	}
	if (optind >= argc)
		die_usage("%s: give job ids, or - to read them from stdin", argv[0]);
	json_object *ids = read_ids(argc - optind, argv + optind);
	size_t n = json_object_array_length(ids);
	int64_t added = 0, already = 0, removed = 0;
	json_object *rejected = json_object_new_array(), *unknown = json_object_new_array();
	connect_daemon();
	for (size_t off = 0; off < n || (n == 0 && off == 0); off += CHUNK) {
		json_object *req = new_req(unwatch ? "unwatch" : "watch");
		json_object *chunk = json_object_new_array();
		for (size_t i = off; i < n && i < off + CHUNK; i++)
			json_object_array_add(chunk, json_object_get(json_object_array_get_idx(ids, i)));
		json_object_object_add(req, "ids", chunk);
		if (batch)
			json_object_object_add(req, "batch", json_object_new_string(batch));
		json_object *ans = request(req, -1);
		json_object_put(req);
		check(ans);
		added += num(ans, "added");
		already += num(ans, "already");
		removed += num(ans, "removed");
		json_object *a;
		if (json_object_object_get_ex(ans, "rejected", &a))
			for (size_t i = 0; i < json_object_array_length(a); i++)
				json_object_array_add(rejected, json_object_get(json_object_array_get_idx(a, i)));
		if (json_object_object_get_ex(ans, "unknown", &a))
			for (size_t i = 0; i < json_object_array_length(a); i++)
				json_object_array_add(unknown, json_object_get(json_object_array_get_idx(a, i)));
		json_object_put(ans);
		if (n == 0)
			break;
	}
	json_object_put(ids);
	size_t bad = json_object_array_length(rejected) + json_object_array_length(unknown);
	if (json_out) {
		json_object *o2 = json_object_new_object();
		if (unwatch) {
			json_object_object_add(o2, "removed", json_object_new_int64(removed));
			json_object_object_add(o2, "unknown", json_object_get(unknown));
		} else {
			json_object_object_add(o2, "added", json_object_new_int64(added));
			json_object_object_add(o2, "already", json_object_new_int64(already));
			json_object_object_add(o2, "rejected", json_object_get(rejected));
		}
		print_json(o2);
		json_object_put(o2);
	} else if (unwatch) {
		printf("unwatched %lld jobs\n", (long long)removed);
		for (size_t i = 0; i < json_object_array_length(unknown); i++)
			fprintf(stderr, "embedwatchctl: not watched: %s\n", json_object_get_string(json_object_array_get_idx(unknown, i)));
	} else {
		printf("watching %lld new jobs%s%s", (long long)added, batch ? " in batch " : "", batch ? batch : "");
		if (already)
			printf(" (%lld already watched)", (long long)already);
		printf("\n");
		for (size_t i = 0; i < json_object_array_length(rejected); i++) {
			json_object *r = json_object_array_get_idx(rejected, i);
			fprintf(stderr, "embedwatchctl: refused \"%s\": %s\n", str(r, "id"), str(r, "error"));
		}
	}
	json_object_put(rejected);
	json_object_put(unknown);
	return bad ? EXIT_PARTIAL : 0;
}

/* cancel ID... | -: POST .../cancel through the daemon (same budget), and watch the jobs to cancelled. */
static int cmd_cancel(int argc, char **argv)
{
	if (argc < 2)
		die_usage("cancel: give job ids, or - to read them from stdin");
	json_object *req = new_req("cancel");
	json_object_object_add(req, "ids", read_ids(argc - 1, argv + 1));
	connect_daemon();
	json_object *ans = request(req, -1), *rej;
	json_object_put(req);
	check(ans);
	json_object_object_get_ex(ans, "rejected", &rej);
	size_t bad = rej ? json_object_array_length(rej) : 0;
	if (json_out) {
		print_json(ans);
	} else {
		printf("cancel requested for %lld jobs; they are watched until they end\n", (long long)num(ans, "queued"));
		for (size_t i = 0; i < bad; i++) {
			json_object *r = json_object_array_get_idx(rej, i);
			fprintf(stderr, "embedwatchctl: refused \"%s\": %s\n", str(r, "id"), str(r, "error"));
		}
	}
	json_object_put(ans);
	return bad ? EXIT_PARTIAL : 0;
}

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = { { "status", required_argument, NULL, 's' },
					      { "batch", required_argument, NULL, 'b' }, { 0 } };
	json_object *req = new_req("list");
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "s:b:", opts, NULL)) != -1) {
		if (o == 's')
			json_object_object_add(req, "status", json_object_new_string(optarg));
		else if (o == 'b')
			json_object_object_add(req, "batch", json_object_new_string(optarg));
		else
			die_usage("list: unknown option");
	}
	connect_daemon();
	json_object *ans = request(req, -1), *jobs;
	json_object_put(req);
	check(ans);
	json_object_object_get_ex(ans, "jobs", &jobs);
	if (json_out) {
		print_json(jobs);
	} else {
		printf("%-40s %-11s %-20s %s\n", "ID", "STATUS", "BATCH", "UPDATED");
		for (size_t i = 0; i < json_object_array_length(jobs); i++) {
			json_object *j = json_object_array_get_idx(jobs, i);
			printf("%-40s %-11s %-20s %s\n", str(j, "id"), str(j, "status"), str(j, "batch")[0] ? str(j, "batch") : "-",
			       str(j, "updated"));
		}
	}
	json_object_put(ans);
	return 0;
}

static int simple(const char *cmd, json_object *req)
{
	connect_daemon();
	json_object *ans = request(req, -1);
	json_object_put(req);
	check(ans);
	if (json_out) {
		json_object_object_del(ans, "ok");
		print_json(ans);
	} else if (strcmp(cmd, "metrics") == 0) {
		fputs(str(ans, "text"), stdout);
	} else if (strcmp(cmd, "status") == 0) {
		json_object *s, *by;
		json_object_object_get_ex(ans, "status", &s);
		printf("embedwatchd %s, up %llds\n%s\n", str(s, "version"), (long long)num(s, "uptime_s"), str(s, "summary"));
		printf("paused: %s; request rate %.3f/s; polls in flight %lld; polls sent %lld; list sweeps %lld%s; "
		       "events %lld; hooks running %lld\n",
		       str(s, "paused"), json_object_get_double(json_object_object_get(s, "request_rate_per_s")),
		       (long long)num(s, "polls_in_flight"), (long long)num(s, "polls"), (long long)num(s, "sweeps"),
		       json_object_get_boolean(json_object_object_get(s, "sweeping")) ? "" : " (per-id polling only)",
		       (long long)num(s, "events"), (long long)num(s, "hooks_running"));
		if (json_object_object_get_ex(s, "by_status", &by)) {
			json_object_object_foreach(by, k, v)
				printf("  %-11s %lld\n", k, (long long)json_object_get_int64(v));
		}
	} else if (strcmp(cmd, "show") == 0) {
		json_object *j, *ev, *last;
		json_object_object_get_ex(ans, "job", &j);
		printf("id:       %s\nstatus:   %s\nbatch:    %s\nadded:    %s\nupdated:  %s\n", str(j, "id"), str(j, "status"),
		       str(j, "batch")[0] ? str(j, "batch") : "-", str(j, "added"), str(j, "updated"));
		if (json_object_object_get_ex(j, "next_poll_in_ms", NULL))
			printf("next poll in %lld ms (interval %lld ms)\n", (long long)num(j, "next_poll_in_ms"),
			       (long long)num(j, "poll_interval_ms"));
		if (json_object_object_get_ex(j, "events", &ev))
			for (size_t i = 0; i < json_object_array_length(ev); i++) {
				json_object *e = json_object_array_get_idx(ev, i);
				printf("event:    %s %s %s\n", str(e, "timestamp"), str(e, "type"), str(e, "id"));
			}
		if (json_object_object_get_ex(j, "last_seen", &last) && last)
			printf("last seen: %s\n", json_object_to_json_string_ext(last, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (strcmp(cmd, "batches") == 0) {
		json_object *bs;
		json_object_object_get_ex(ans, "batches", &bs);
		printf("%-30s %7s %7s %-5s %s\n", "BATCH", "JOBS", "ENDED", "DONE", "COUNTS");
		for (size_t i = 0; i < json_object_array_length(bs); i++) {
			json_object *b = json_object_array_get_idx(bs, i), *c;
			printf("%-30s %7lld %7lld %-5s", str(b, "name"), (long long)num(b, "total"), (long long)num(b, "ended"),
			       json_object_get_boolean(json_object_object_get(b, "done")) ? "yes" : "no");
			if (json_object_object_get_ex(b, "counts", &c)) {
				json_object_object_foreach(c, k, v)
					printf(" %s=%lld", k, (long long)json_object_get_int64(v));
			}
			printf("\n");
		}
	} else if (strcmp(cmd, "deliveries") == 0) {
		json_object *ds;
		json_object_object_get_ex(ans, "deliveries", &ds);
		printf("%-36s %-20s %-12s %-8s %-8s %s\n", "EVENT_ID", "EVENT", "HOOK", "STATE", "ATTEMPTS", "LAST_ERROR");
		for (size_t i = 0; i < json_object_array_length(ds); i++) {
			json_object *d = json_object_array_get_idx(ds, i);
			printf("%-36s %-20s %-12s %-8s %-8lld %s\n", str(d, "event_id"), str(d, "event"), str(d, "hook"),
			       str(d, "state"), (long long)num(d, "attempts"), str(d, "last_error")[0] ? str(d, "last_error") : "-");
		}
	} else if (strcmp(cmd, "redeliver") == 0) {
		printf("queued %lld deliveries\n", (long long)num(ans, "queued"));
	}
	json_object_put(ans);
	return 0;
}

/* One request on a connection of its own (progress queries beside a wait); NULL when it fails. */
static json_object *query_once(json_object *req)
{
	int saved = fd;
	struct buf saved_buf = rbuf;
	json_object *ans = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&rbuf, 0, sizeof(rbuf));
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		ans = request(req, 2000);
	if (fd >= 0)
		close(fd);
	buf_free(&rbuf);
	fd = saved;
	rbuf = saved_buf;
	return ans;
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
	json_object *req;           /* the query: batches, or list of the ids */
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

/* Redraws the one progress line on stderr: ended/total, per outcome, elapsed, a rough time left. */
static void progress_draw(struct progress *pg)
{
	json_object *ans = query_once(pg->req), *arr;
	long total = 0, ended = 0, counts[4] = { 0 };
	static const char *const outcomes[] = { "complete", "failed", "cancelled", "other" };
	if (!ans)
		return;
	if (pg->batch && json_object_object_get_ex(ans, "batches", &arr)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *b = json_object_array_get_idx(arr, i), *cnt;
			if (strcmp(str(b, "name"), pg->batch) != 0)
				continue;
			total = (long)num(b, "total");
			ended = (long)num(b, "ended");
			json_object_object_get_ex(b, "counts", &cnt);
			for (int k = 0; k < 3; k++)
				counts[k] = (long)num(cnt, outcomes[k]);
		}
	} else if (json_object_object_get_ex(ans, "jobs", &arr)) {
		total = (long)json_object_array_length(arr);
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			const char *st = str(json_object_array_get_idx(arr, i), "status");
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
	fprintf(stderr, "\r\033[Kwaiting: %ld/%ld ended (complete %ld, failed %ld, cancelled %ld, other %ld), %s elapsed%s",
		ended, total, counts[0], counts[1], counts[2], counts[3], elapsed, left);
	fflush(stderr);
}

static int cmd_wait(int argc, char **argv)
{
	static const struct option opts[] = { { "batch", required_argument, NULL, 'b' },
					      { "timeout", required_argument, NULL, 't' },
					      { "quiet", no_argument, NULL, 'q' }, { 0 } };
	const char *batch = NULL;
	int timeout = -1, o;
	bool quiet = false;
	optind = 0;
	while ((o = getopt_long(argc, argv, "b:t:q", opts, NULL)) != -1) {
		if (o == 'b') {
			batch = optarg;
		} else if (o == 't') {
			uint64_t ms;
			if (config_parse_duration(optarg, &ms) < 0 || ms > INT32_MAX)
				die_usage("wait: --timeout expects a duration like 30s, 10m or 2h, got \"%s\"", optarg);
			timeout = (int)ms;
		} else if (o == 'q') {
			quiet = true;
		} else {
			die_usage("wait: unknown option");
		}
	}
	json_object *req = new_req("wait");
	struct progress pg = { .batch = batch, .started = mono_s(), .first_ended = -1 };
	if (batch) {
		if (optind < argc)
			die_usage("wait: give job ids or --batch, not both");
		json_object_object_add(req, "batch", json_object_new_string(batch));
		pg.req = new_req("batches");
	} else {
		if (optind >= argc)
			die_usage("wait: give job ids (or - for stdin) or --batch NAME");
		json_object *ids = read_ids(argc - optind, argv + optind);
		json_object_object_add(req, "ids", ids);
		pg.req = new_req("list");
		json_object_object_add(pg.req, "ids", json_object_get(ids));
	}
	/* The progress line: only for a person at a terminal, never into a pipe or a file. */
	bool show = !quiet && !json_out && isatty(STDERR_FILENO);
	connect_daemon();
	json_object *ans = NULL;
	long deadline_ms = timeout;
	for (bool first = true;; first = false) {
		int slice = show ? 1000 : timeout;
		if (show && deadline_ms >= 0 && deadline_ms < slice)
			slice = (int)deadline_ms;
		ans = first ? request(req, slice) : request(NULL, slice);
		if (ans || !show)
			break;
		if (deadline_ms >= 0 && (deadline_ms -= slice) <= 0)
			break;
		progress_draw(&pg);
	}
	if (show && pg.first_ended >= 0)
		fprintf(stderr, "\r\033[K");
	json_object_put(req);
	json_object_put(pg.req);
	if (!ans) {
		fprintf(stderr, "embedwatchctl: wait timed out\n");
		return EXIT_TIMEOUT;
	}
	check(ans);
	json_object *jobs;
	json_object_object_get_ex(ans, "jobs", &jobs);
	int rc = 0;
	for (size_t i = 0; i < json_object_array_length(jobs); i++) {
		json_object *j = json_object_array_get_idx(jobs, i);
		if (strcmp(str(j, "status"), "complete") != 0)
			rc = EXIT_PARTIAL;
		if (!json_out)
			printf("%s %s\n", str(j, "id"), str(j, "status"));
	}
	if (json_out)
		print_json(jobs);
	json_object_put(ans);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int o;

	sock_path = getenv("EMBEDWATCH_SOCKET");
	if (!sock_path || !*sock_path)
		sock_path = "/run/embedwatch/control.sock";
	while ((o = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (o) {
		case 's': sock_path = optarg; break;
		case 'j': json_out = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	/* --json may also follow the command. */
	for (int i = 1; i < sub_argc; i++) {
		if (strcmp(sub_argv[i], "--json") == 0 || strcmp(sub_argv[i], "-j") == 0) {
			json_out = true;
			memmove(&sub_argv[i], &sub_argv[i + 1], (size_t)(sub_argc - i) * sizeof(char *));
			sub_argc--;
			i--;
		}
	}
	/* list and batches --watch N: a live view, refreshed every N seconds until interrupted. */
	long watch_secs = 0;
	for (int i = 1; i < sub_argc; i++) {
		if (strcmp(sub_argv[i], "--watch") == 0 || strncmp(sub_argv[i], "--watch=", 8) == 0) {
			const char *v = sub_argv[i][7] == '=' ? sub_argv[i] + 8 : (i + 1 < sub_argc ? sub_argv[i + 1] : "");
			char *end;
			watch_secs = strtol(v, &end, 10);
			if (!*v || *end || watch_secs < 1 || watch_secs > 86400)
				die_usage("%s: --watch expects seconds from 1 to 86400, got \"%s\"", cmd, v);
			if (strcmp(cmd, "list") != 0 && strcmp(cmd, "batches") != 0)
				die_usage("--watch is for list and batches");
			int drop = sub_argv[i][7] == '=' ? 1 : 2;
			memmove(&sub_argv[i], &sub_argv[i + drop], (size_t)(sub_argc - i - drop + 1) * sizeof(char *));
			sub_argc -= drop;
			i--;
		}
	}
	if (watch_secs) {
		bool tty = isatty(STDOUT_FILENO);
		for (;;) {
			if (tty)
				printf("\033[H\033[2J");
			time_t now = time(NULL);
			char when[64];
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&now));
			printf("every %lds: embedwatchctl %s    %s\n\n", watch_secs, cmd, when);
			if (strcmp(cmd, "list") == 0)
				cmd_list(sub_argc, sub_argv);
			else
				simple(cmd, new_req(cmd));
			fflush(stdout);
			close(fd);
			fd = -1;
			rbuf.len = 0;
			sleep((unsigned)watch_secs);
		}
	}
	int rc;
	if (strcmp(cmd, "cancel") == 0)
		rc = cmd_cancel(sub_argc, sub_argv);
	else if (strcmp(cmd, "watch") == 0)
		rc = cmd_watch(sub_argc, sub_argv, false);
	else if (strcmp(cmd, "unwatch") == 0)
		rc = cmd_watch(sub_argc, sub_argv, true);
	else if (strcmp(cmd, "list") == 0)
		rc = cmd_list(sub_argc, sub_argv);
	else if (strcmp(cmd, "wait") == 0)
		rc = cmd_wait(sub_argc, sub_argv);
	else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "metrics") == 0 || strcmp(cmd, "batches") == 0) {
		if (sub_argc != 1)
			die_usage("%s takes no arguments", cmd);
		rc = simple(cmd, new_req(cmd));
	} else if (strcmp(cmd, "show") == 0) {
		if (sub_argc != 2)
			die_usage("show: give one job id");
		if (!api_id_valid(sub_argv[1])) {
			fprintf(stderr, "embedwatchctl: invalid job id \"%s\"\n", sub_argv[1]);
			return EXIT_USAGE;
		}
		json_object *req = new_req("show");
		json_object_object_add(req, "id", json_object_new_string(sub_argv[1]));
		rc = simple(cmd, req);
	} else if (strcmp(cmd, "deliveries") == 0) {
		static const struct option dopts[] = { { "state", required_argument, NULL, 's' }, { 0 } };
		json_object *req = new_req("deliveries");
		optind = 0;
		while ((o = getopt_long(sub_argc, sub_argv, "s:", dopts, NULL)) != -1) {
			if (o != 's')
				die_usage("deliveries: unknown option");
			json_object_object_add(req, "state", json_object_new_string(optarg));
		}
		rc = simple(cmd, req);
	} else if (strcmp(cmd, "redeliver") == 0) {
		static const struct option ropts[] = { { "hook", required_argument, NULL, 'H' }, { 0 } };
		json_object *req = new_req("redeliver");
		optind = 0;
		while ((o = getopt_long(sub_argc, sub_argv, "H:", ropts, NULL)) != -1) {
			if (o != 'H')
				die_usage("redeliver: unknown option");
			json_object_object_add(req, "hook", json_object_new_string(optarg));
		}
		if (optind != sub_argc - 1)
			die_usage("redeliver: give one event id");
		json_object_object_add(req, "event_id", json_object_new_string(sub_argv[optind]));
		rc = simple(cmd, req);
	} else {
		die_usage("unknown command \"%s\"", cmd);
	}
	if (fd >= 0)
		close(fd);
	buf_free(&rbuf);
	return rc;
}
