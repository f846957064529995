/*
 * embedwatchctl: the command-line client of the control socket.
 *
 * Exit codes: 0 success (wait: every job complete); 1 partly done (some ids
 * refused) or, for wait, some job ended otherwise than complete; 2 wait timed
 * out; 3 the daemon refused the request; 4 the daemon cannot be reached (or
 * the connection was lost); 5 the daemon did not answer within the timeout;
 * 6 the output could not be written; 64 usage error. Everything printed that
 * came from outside (ids, names, errors, hook output) is escaped (ctl_text).
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "ctl.h"
#include "provider.h"

/* Ids per watch request: well under the daemon's 1 MiB per request. */
#define CHUNK 5000

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: embedwatchctl [-s SOCKET] [--json] COMMAND [ARGS]\n\n"
		"Commands:\n"
		"  watch [--kind embed-job|batch-job] [--batch NAME] [--account A] ID... | -\n"
		"                                     watch embed jobs (v1) or batches (v2), or the batch jobs\n"
		"                                     of account A (ids from stdin with -)\n"
		"  unwatch [--account A] ID... | -    stop watching jobs\n"
		"  list [--status S] [--kind K] [--batch B] [--account A] [--prefix P] [--watch N]\n"
		"                                     list watched jobs (--watch: refresh every N s;\n"
		"                                     --account: only A's, --prefix then of A's own ids)\n"
		"  show [--account A] ID              one job: status, last answer, events\n"
		"  status                             the daemon's state, a line per account\n"
		"  metrics                            counters in Prometheus text format\n"
		"  wait [--account A] ID... | --batch NAME [--timeout DURATION] [--quiet]\n"
		"                                     block until the jobs or batch have ended; on a\n"
		"                                     terminal, one line shows the progress\n"
		"  batches [--watch N]                batches with counts per status\n"
		"  deliveries [--state pending|dead|done] [--hook NAME] [--since DURATION|TIME]\n"
		"                                     hook deliveries with attempts and last error\n"
		"  redeliver EVENT_ID [--hook NAME]   queue a delivery again (same event id)\n"
		"  redeliver --dead [--hook NAME] [--since DURATION|TIME] [--event TYPE]\n"
		"                                     queue every matching dead delivery again\n"
		"  hooks [enable|disable NAME]        each hook's state, pending, dead, last success and\n"
		"                                     error; enable or disable one\n"
		"  cancel [--kind K] [--account A] ID... | -\n"
		"                                     cancel jobs (POST .../cancel, or a batch's :cancel) and watch\n"
		"                                     them to the end (--kind: of ids not watched yet)\n\n"
		"Accounts: --account A names the account of the ids: cohere (the default) or an\n"
		"[account A] of the config, whose ids are the provider's own (batch_abc, batches/123).\n"
		"A job of account A is shown as A:ID, and A:ID is also taken as an id without --account.\n\n"
		"Options:\n"
		"  -s, --socket PATH   control socket (default $EMBEDWATCH_SOCKET or /run/embedwatch/control.sock)\n"
		"  -j, --json          machine-readable output\n"
		"  -T, --timeout DURATION\n"
		"                      how long to wait for each answer (not wait's; default $EMBEDWATCH_TIMEOUT or 30s)\n"
		"  -h, --help          this text\n\n"
		"Exit codes: 0 success (wait: all complete), 1 some ids refused / (wait) some job failed,\n"
		"was cancelled or otherwise did not complete, 2 wait timed out, 3 request refused,\n"
		"4 daemon unreachable or connection lost, 5 no answer within the timeout,\n"
		"6 output not written (e.g. a closed pipe), 64 usage error.\n");
}

/* --kind's value, checked here so a typo is a usage error, not a refusal. */
static const char *kind_arg(const char *cmd, const char *v)
{
	if (job_kind_parse(v) < 0)
		ctl_die_usage("%s: --kind expects embed-job or batch-job, got \"%s\"", cmd, v);
	return v;
}

/* True for an account other than Cohere's: its jobs are batch jobs of another provider. */
static bool other_account(const char *account)
{
	return account && strcmp(account, "cohere") != 0;
}

/* A job of another provider is a batch job: --kind embed-job beside such an --account is a usage error. */
static void kind_account_check(const char *cmd, const char *kind, const char *account)
{
	if (kind && other_account(account) && strcmp(kind, "batch-job") != 0)
		ctl_die_usage("%s: the jobs of account \"%s\" are batch jobs; --kind %s does not go with it", cmd, account,
			      kind);
}

static int cmd_watch(int argc, char **argv, bool unwatch)
{
	static const struct option opts[] = { { "batch", required_argument, NULL, 'b' },
					      { "kind", required_argument, NULL, 'k' },
					      { "account", required_argument, NULL, 'a' }, { 0 } };
	const char *batch = NULL, *kind = NULL, *account = NULL;
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "b:k:a:", opts, NULL)) != -1) {
		if (o == 'b' && !unwatch)
			batch = optarg;
		else if (o == 'k' && !unwatch)
			kind = kind_arg(argv[0], optarg);
		else if (o == 'a')
			account = ctl_account_arg(argv[0], optarg);
		else
			ctl_die_usage("%s: unknown option", argv[0]);
	}
	if (optind >= argc)
		ctl_die_usage("%s: give job ids, or - to read them from stdin", argv[0]);
	kind_account_check(argv[0], kind, account);
	json_object *ids = ctl_read_ids(argc - optind, argv + optind);
	size_t n = json_object_array_length(ids);
	int64_t added = 0, already = 0, removed = 0;
	json_object *rejected = json_object_new_array(), *unknown = json_object_new_array();
	ctl_connect();
	for (size_t off = 0; off < n || (n == 0 && off == 0); off += CHUNK) {
		json_object *req = ctl_new_req(unwatch ? "unwatch" : "watch");
		json_object *chunk = json_object_new_array();
		for (size_t i = off; i < n && i < off + CHUNK; i++)
			json_object_array_add(chunk, json_object_get(json_object_array_get_idx(ids, i)));
		json_object_object_add(req, "ids", chunk);
		if (batch)
			json_object_object_add(req, "batch", json_object_new_string(batch));
		if (kind)
			json_object_object_add(req, "kind", json_object_new_string(kind));
		ctl_add_account(req, account);
		json_object *ans = ctl_call(req);
		json_object_put(req);
		ctl_check(ans);
		added += ctl_num(ans, "added");
		already += ctl_num(ans, "already");
		removed += ctl_num(ans, "removed");
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
	if (ctl_json_out) {
		json_object *o2 = json_object_new_object();
		if (unwatch) {
			json_object_object_add(o2, "removed", json_object_new_int64(removed));
			json_object_object_add(o2, "unknown", json_object_get(unknown));
		} else {
			json_object_object_add(o2, "added", json_object_new_int64(added));
			json_object_object_add(o2, "already", json_object_new_int64(already));
			json_object_object_add(o2, "rejected", json_object_get(rejected));
		}
		ctl_print_json(o2);
		json_object_put(o2);
	} else if (unwatch) {
		printf("unwatched %lld jobs%s%s\n", (long long)removed, account ? " of account " : "", account ? account : "");
		for (size_t i = 0; i < json_object_array_length(unknown); i++)
			ctl_error("not watched: %s", ctl_text(json_object_get_string(json_object_array_get_idx(unknown, i))));
	} else {
		bool batch_jobs = (kind && !strcmp(kind, "batch-job")) || other_account(account);
		printf("watching %lld new %s%s%s%s%s", (long long)added, batch_jobs ? "batch jobs" : "jobs",
		       account ? " of account " : "", account ? account : "", batch ? " in batch " : "",
		       batch ? ctl_text(batch) : "");
		if (already)
			printf(" (%lld already watched)", (long long)already);
		printf("\n");
		for (size_t i = 0; i < json_object_array_length(rejected); i++) {
			json_object *r = json_object_array_get_idx(rejected, i);
			ctl_error("refused \"%s\": %s", ctl_str(r, "id"), ctl_str(r, "error"));
		}
	}
	json_object_put(rejected);
	json_object_put(unknown);
	return bad ? EXIT_PARTIAL : 0;
}

/* cancel ID... | -: POST .../cancel through the daemon (same budget), and watch the jobs to cancelled. */
static int cmd_cancel(int argc, char **argv)
{
	static const struct option opts[] = { { "kind", required_argument, NULL, 'k' },
					      { "account", required_argument, NULL, 'a' }, { 0 } };
	const char *kind = NULL, *account = NULL;
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "k:a:", opts, NULL)) != -1) {
		if (o == 'k')
			kind = kind_arg("cancel", optarg);
		else if (o == 'a')
			account = ctl_account_arg("cancel", optarg);
		else
			ctl_die_usage("cancel: unknown option");
	}
	if (optind >= argc)
		ctl_die_usage("cancel: give job ids, or - to read them from stdin");
	kind_account_check("cancel", kind, account);
	json_object *ids = ctl_read_ids(argc - optind, argv + optind);
	size_t n = json_object_array_length(ids);
	int64_t queued = 0;
	json_object *rej = json_object_new_array(), *all = json_object_new_object();
	ctl_connect();
	/* In requests of CHUNK ids, like watch: one request stays well under the daemon's 1 MiB. */
	for (size_t off = 0; off < n; off += CHUNK) {
		json_object *req = ctl_new_req("cancel"), *chunk = json_object_new_array(), *a;
		for (size_t i = off; i < n && i < off + CHUNK; i++)
			json_object_array_add(chunk, json_object_get(json_object_array_get_idx(ids, i)));
		json_object_object_add(req, "ids", chunk);
		if (kind)
			json_object_object_add(req, "kind", json_object_new_string(kind));
		ctl_add_account(req, account);
		json_object *ans = ctl_call(req);
		json_object_put(req);
		ctl_check(ans);
		queued += ctl_num(ans, "queued");
		if (json_object_object_get_ex(ans, "rejected", &a))
			for (size_t i = 0; i < json_object_array_length(a); i++)
				json_object_array_add(rej, json_object_get(json_object_array_get_idx(a, i)));
		/* --json prints the answer as one request made it (ok, forwarded, ...), with the totals. */
		json_object_put(all);
		all = ans;
	}
	json_object_put(ids);
	size_t bad = json_object_array_length(rej);
	if (ctl_json_out) {
		json_object_object_add(all, "queued", json_object_new_int64(queued));
		json_object_object_add(all, "rejected", json_object_get(rej));
		ctl_print_json(all);
	} else {
		printf("cancel requested for %lld jobs; they are watched until they end\n", (long long)queued);
		for (size_t i = 0; i < bad; i++) {
			json_object *r = json_object_array_get_idx(rej, i);
			ctl_error("refused \"%s\": %s", ctl_str(r, "id"), ctl_str(r, "error"));
		}
	}
	json_object_put(all);
	json_object_put(rej);
	return bad ? EXIT_PARTIAL : 0;
}

/* One item of a streamed JSON array: pretty, each line indented, after a comma unless first. */
static void json_item(json_object *o, int indent, bool first)
{
	struct buf b = { 0 };
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	buf_printf(&b, "%s\n%*s", first ? "" : ",", indent, "");
	for (; *s; s++) {
		buf_append(&b, s, 1);
		if (*s == '\n')
			buf_printf(&b, "%*s", indent, "");
	}
	ctl_json_text(b.data, stdout);
	buf_free(&b);
}

/*
 * Every page of a paged answer (list, batches): sends req (taken) again with
 * "after" set to the previous page's "next" until none, and calls row for each
 * item of key in order. Returns how many there were.
 */
static size_t each_page(json_object *req, const char *key, void (*row)(json_object *item, size_t i, void *arg), void *arg)
{
	size_t n = 0;
	for (;;) {
		json_object *ans = ctl_call(req), *items, *next;
		ctl_check(ans);
		if (json_object_object_get_ex(ans, key, &items))
			for (size_t i = 0; i < json_object_array_length(items); i++) {
				errno = 0;
				row(json_object_array_get_idx(items, i), n++, arg);
				/* A reader that went away: stop at once (ctl_check_output says why). */
				if (ferror(stdout))
					ctl_check_output();
			}
		bool more = json_object_object_get_ex(ans, "next", &next) && json_object_is_type(next, json_type_string);
		if (more)
			json_object_object_add(req, "after", json_object_get(next));
		json_object_put(ans);
		if (!more)
			break;
	}
	json_object_put(req);
	return n;
}

static void list_row(json_object *j, size_t i, void *arg)
{
	if (ctl_json_out)
		json_item(j, 2, i == 0);
	else
		printf("%-40s %-11s %-9s %-20s %s\n", ctl_str(j, "id"), ctl_str(j, "status"), ctl_str(j, "kind"),
		       ctl_str(j, "batch")[0] ? ctl_str(j, "batch") : "-", ctl_str(j, "updated"));
}

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = { { "status", required_argument, NULL, 's' },
					      { "batch", required_argument, NULL, 'b' },
					      { "kind", required_argument, NULL, 'k' },
					      { "prefix", required_argument, NULL, 'p' },
					      { "account", required_argument, NULL, 'a' }, { 0 } };
	json_object *req = ctl_new_req("list");
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "s:b:k:p:a:", opts, NULL)) != -1) {
		if (o == 'a')
			ctl_add_account(req, ctl_account_arg("list", optarg));
		else if (o == 'p')
			json_object_object_add(req, "prefix", json_object_new_string(optarg));
		else if (o == 's')
			json_object_object_add(req, "status", json_object_new_string(optarg));
		else if (o == 'k')
			json_object_object_add(req, "kind", json_object_new_string(kind_arg("list", optarg)));
		else if (o == 'b')
			json_object_object_add(req, "batch", json_object_new_string(optarg));
		else
			ctl_die_usage("list: unknown option");
	}
	ctl_connect();
	/* Page after page into one stream: one JSON array (as one answer printed it), or one table. */
	if (ctl_json_out)
		fputs("[", stdout);
	else
		printf("%-40s %-11s %-9s %-20s %s\n", "ID", "STATUS", "KIND", "BATCH", "UPDATED");
	each_page(req, "jobs", list_row, NULL);
	if (ctl_json_out)
		fputs("\n]\n", stdout);
	ctl_check_output();
	return 0;
}

static void batch_row(json_object *b, size_t i, void *arg)
{
	json_object *c;
	if (ctl_json_out) {
		json_item(b, 4, i == 0);
		return;
	}
	printf("%-30s %7lld %7lld %-5s", ctl_str(b, "name"), (long long)ctl_num(b, "total"), (long long)ctl_num(b, "ended"),
	       json_object_get_boolean(json_object_object_get(b, "done")) ? "yes" : "no");
	if (json_object_object_get_ex(b, "counts", &c)) {
		json_object_object_foreach(c, k, v)
			printf(" %s=%lld", ctl_text(k), (long long)json_object_get_int64(v));
	}
	printf("\n");
}

static int cmd_batches(void)
{
	ctl_connect();
	if (ctl_json_out)
		fputs("{\n  \"batches\":[", stdout);
	else
		printf("%-30s %7s %7s %-5s %s\n", "BATCH", "JOBS", "ENDED", "DONE", "COUNTS");
	each_page(ctl_new_req("batches"), "batches", batch_row, NULL);
	if (ctl_json_out)
		fputs("\n  ]\n}\n", stdout);
	ctl_check_output();
	return 0;
}

static double num_d(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0;
}

/* status: a line per [account NAME], each with its own budget, pause and mode (Cohere's are the classes). */
static void print_accounts(json_object *b)
{
	json_object *accounts;
	if (!json_object_object_get_ex(b, "accounts", &accounts) || !json_object_is_type(accounts, json_type_object))
		return;
	json_object_object_foreach(accounts, name, a) {
		printf("account %-10s %-9s %-6s %.1f/min of %.1f/min, %lld requests in the last minute, %lld live jobs",
		       ctl_text(name), ctl_str(a, "provider"), ctl_str(a, "mode"), num_d(a, "rate_per_min"),
		       num_d(a, "budget_per_min"), (long long)ctl_num(a, "requests_last_minute"),
		       (long long)ctl_num(a, "live_jobs"));
		const char *paused = ctl_str(a, "paused");
		if (paused[0] && strcmp(paused, "none") != 0) {
			printf(", PAUSED (%s)", paused);
			if (num_d(a, "paused_s") > 0)
				printf(" for %.1f s more", num_d(a, "paused_s"));
		}
		printf("\n");
	}
}

/* status: a line per request class, the month's allowance when one is set, and a line per account. */
static void print_budgets(json_object *s)
{
	json_object *b, *classes, *mo;
	if (!json_object_object_get_ex(s, "budgets", &b))
		return;
	if (json_object_object_get_ex(b, "classes", &classes)) {
		json_object_object_foreach(classes, name, c) {
			printf("class %-10s %.1f/min of %.1f/min, %.1f tokens, %lld requests in the last minute",
			       name, num_d(c, "rate_per_min"), num_d(c, "budget_per_min"), num_d(c, "tokens"),
			       (long long)ctl_num(c, "requests_last_minute"));
			if (num_d(c, "paused_s") > 0)
				printf(", PAUSED (429/503) for %.1f s more", num_d(c, "paused_s"));
			printf("\n");
		}
	}
	if (json_object_object_get_ex(b, "month", &mo) && ctl_num(mo, "allowance") > 0) {
		printf("month %s: %lld of %lld requests used, %lld left, %lld projected",
		       ctl_str(mo, "month"), (long long)ctl_num(mo, "used"), (long long)ctl_num(mo, "allowance"),
		       (long long)ctl_num(mo, "left"), (long long)ctl_num(mo, "projected"));
		if (ctl_num(mo, "left") == 0)
			printf("; SPENT: no request until the next month (in %.0f s)", num_d(mo, "next_request_in_s"));
		else if (num_d(mo, "next_request_in_s") > 0)
			printf("; next request in %.0f s (the month's spread)", num_d(mo, "next_request_in_s"));
		printf("\n");
	}
	print_accounts(b);
}

static int simple(const char *cmd, json_object *req)
{
	json_object *ans = ctl_ask(req);
	if (!ans)
		return 0;
	if (strcmp(cmd, "metrics") == 0) {
		/* Lines of text: each printed escaped, the newlines between them kept. */
		json_object *t;
		const char *text = json_object_object_get_ex(ans, "text", &t) && t ? json_object_get_string(t) : "";
		for (const char *nl; *text; text = nl + 1) {
			nl = strchr(text, '\n');
			char *line = xstrndup(text, nl ? (size_t)(nl - text) : strlen(text));
			printf("%s\n", ctl_text(line));
			free(line);
			if (!nl)
				break;
		}
	} else if (strcmp(cmd, "status") == 0) {
		json_object *s, *by;
		json_object_object_get_ex(ans, "status", &s);
		printf("embedwatchd %s, up %llds\n%s\n", ctl_str(s, "version"), (long long)ctl_num(s, "uptime_s"), ctl_str(s, "summary"));
		printf("paused: %s; request rate %.3f/s; polls in flight %lld; polls sent %lld; list sweeps %lld%s; "
		       "events %lld; hooks running %lld\n",
		       ctl_str(s, "paused"), json_object_get_double(json_object_object_get(s, "request_rate_per_s")),
		       (long long)ctl_num(s, "polls_in_flight"), (long long)ctl_num(s, "polls"), (long long)ctl_num(s, "sweeps"),
		       json_object_get_boolean(json_object_object_get(s, "sweeping")) ? "" : " (per-id polling only)",
		       (long long)ctl_num(s, "events"), (long long)ctl_num(s, "hooks_running"));
		json_object *ob;
		if (json_object_object_get_ex(s, "observation", &ob))
			printf("observing: %s\n", ctl_str(ob, "summary"));
		print_budgets(s);
		if (json_object_object_get_ex(s, "by_status", &by)) {
			json_object_object_foreach(by, k, v)
				printf("  %-11s %lld\n", k, (long long)json_object_get_int64(v));
		}
		if (json_object_object_get_ex(s, "by_kind", &by)) {
			printf("kinds:");
			json_object_object_foreach(by, k, v)
				printf(" %s %lld", k, (long long)json_object_get_int64(v));
			printf("\n");
		}
	} else if (strcmp(cmd, "show") == 0) {
		json_object *j, *ev, *last;
		json_object_object_get_ex(ans, "job", &j);
		printf("id:       %s\nkind:     %s\nstatus:   %s\nbatch:    %s\nadded:    %s\nupdated:  %s\n", ctl_str(j, "id"),
		       ctl_str(j, "kind"), ctl_str(j, "status"), ctl_str(j, "batch")[0] ? ctl_str(j, "batch") : "-",
		       ctl_str(j, "added"), ctl_str(j, "updated"));
		json_object *rec;
		if (json_object_object_get_ex(j, "records", &rec)) {
			long long all = (long long)ctl_num(rec, "num_records"), okr = (long long)ctl_num(rec, "num_successful_records");
			long long bad = (long long)ctl_num(rec, "num_failed_records");
			printf("records:  %lld/%lld done (%lld successful, %lld failed)\n", okr + bad, all, okr, bad);
		}
		if (json_object_object_get_ex(j, "next_poll_in_ms", NULL))
			printf("next poll in %lld ms (interval %lld ms)\n", (long long)ctl_num(j, "next_poll_in_ms"),
			       (long long)ctl_num(j, "poll_interval_ms"));
		if (json_object_object_get_ex(j, "events", &ev))
			for (size_t i = 0; i < json_object_array_length(ev); i++) {
				json_object *e = json_object_array_get_idx(ev, i);
				printf("event:    %s %s %s\n", ctl_str(e, "timestamp"), ctl_str(e, "type"), ctl_str(e, "id"));
			}
		if (json_object_object_get_ex(j, "last_seen", &last) && last) {
			fputs("last seen: ", stdout);
			ctl_json_text(json_object_to_json_string_ext(last, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
			putchar('\n');
		}
	}
	json_object_put(ans);
	ctl_check_output();
	return 0;
}

/* True for an id some provider can have in its own form (Gemini's "batches/ID" included). */
static bool provider_form_valid(const char *id)
{
	for (int p = 0; p < PROV__MAX; p++)
		if (provider_id_valid(provider_ops((enum provider)p), id))
			return true;
	return false;
}

/* show [--account NAME] ID: the id is a key (ID or NAME:ID), or with --account the provider's own id. */
static int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = { { "account", required_argument, NULL, 'a' }, { 0 } };
	const char *account = NULL;
	char acct[40];
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "a:", opts, NULL)) != -1) {
		if (o == 'a')
			account = ctl_account_arg("show", optarg);
		else
			ctl_die_usage("show: unknown option");
	}
	if (argc - optind != 1)
		ctl_die_usage("show: give one job id");
	const char *id = argv[optind];
	if (account ? !provider_form_valid(id) : provider_key_account(id, acct, sizeof(acct)) < 0) {
		ctl_error("invalid job id \"%s\": expected 1 to 128 characters of A-Z a-z 0-9 _ -%s", ctl_text(id),
			  account ? " (with --account, the provider's own id)" : ", or ACCOUNT:ID");
		return EXIT_USAGE;
	}
	json_object *req = ctl_new_req("show");
	json_object_object_add(req, "id", json_object_new_string(id));
	ctl_add_account(req, account);
	return simple("show", req);
}

/* --timeout or EMBEDWATCH_TIMEOUT: a duration for each answer. */
static void set_timeout(const char *what, const char *v)
{
	uint64_t ms;
	if (config_parse_duration(v, &ms) < 0 || ms < 1 || ms > INT32_MAX)
		ctl_die_usage("%s expects a duration like 30s or 5m, got \"%s\"", what, v);
	ctl_timeout_ms = (int)ms;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int o;

	/* A daemon that closes the connection, or a reader that goes away, is an EPIPE said in words, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	const char *tmo = getenv("EMBEDWATCH_TIMEOUT");
	if (tmo && *tmo)
		set_timeout("EMBEDWATCH_TIMEOUT", tmo);

	ctl_sock_path = getenv("EMBEDWATCH_SOCKET");
	if (!ctl_sock_path || !*ctl_sock_path)
		ctl_sock_path = "/run/embedwatch/control.sock";
	while ((o = getopt_long(argc, argv, "+s:jT:h", opts, NULL)) != -1) {
		switch (o) {
		case 's': ctl_sock_path = optarg; break;
		case 'j': ctl_json_out = true; break;
		case 'T': set_timeout("--timeout", optarg); break;
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
			ctl_json_out = true;
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
				ctl_die_usage("%s: --watch expects seconds from 1 to 86400, got \"%s\"", cmd, v);
			if (strcmp(cmd, "list") != 0 && strcmp(cmd, "batches") != 0)
				ctl_die_usage("--watch is for list and batches");
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
				cmd_batches();
			fflush(stdout);
			close(ctl_fd);
			ctl_fd = -1;
			ctl_rbuf.len = 0;
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
		rc = ctl_wait(sub_argc, sub_argv);
	else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "metrics") == 0 || strcmp(cmd, "batches") == 0) {
		if (sub_argc != 1)
			ctl_die_usage("%s takes no arguments", cmd);
		rc = strcmp(cmd, "batches") == 0 ? cmd_batches() : simple(cmd, ctl_new_req(cmd));
	} else if (strcmp(cmd, "show") == 0) {
		rc = cmd_show(sub_argc, sub_argv);
	} else if (strcmp(cmd, "deliveries") == 0) {
		rc = ctl_deliveries(sub_argc, sub_argv);
	} else if (strcmp(cmd, "redeliver") == 0) {
		rc = ctl_redeliver(sub_argc, sub_argv);
	} else if (strcmp(cmd, "hooks") == 0) {
		rc = ctl_hooks(sub_argc, sub_argv);
	} else {
		ctl_die_usage("unknown command \"%s\"", cmd);
	}
	if (ctl_fd >= 0)
		close(ctl_fd);
	buf_free(&ctl_rbuf);
	return rc;
}
