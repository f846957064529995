/* Unit tests of config.c: durations, rates, argv splitting, files and their errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <cmocka.h>

#include "config.h"
#include "util.h"

static int load(const char *text, struct ew_config *c, char *err)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	int r = config_load_stream(f, "test.conf", c, err, 512);
	fclose(f);
	return r;
}

/* [account NAME]: the provider's defaults, the checks, and "cohere" as the [embedwatch] account. */
static void test_accounts(void **state)
{
	struct ew_config c;
	char err[512];
	(void)state;
	assert_int_equal(load("[account oa]\nprovider = openai\nkey_file = /k\n[account an]\nprovider = anthropic\n"
			      "rate = 2/s\napi_base = http://127.0.0.1:9\nstall_after = 1h\npage_size = 7\n", &c, err), 0);
	assert_int_equal(c.n_accounts, 2);
	assert_string_equal(c.accounts[0].name, "oa");
	assert_string_equal(c.accounts[0].api_base, "https://api.openai.com");
	assert_true(c.accounts[0].rate_per_s > 0.99 && c.accounts[0].rate_per_s < 1.01);   /* 60/min */
	assert_true(c.accounts[0].sweep);
	assert_int_equal(c.accounts[0].stall_after_ms, 0);
	assert_int_equal(c.accounts[0].expiring_ms, 3600000);
	assert_string_equal(c.accounts[1].api_base, "http://127.0.0.1:9");
	assert_true(c.accounts[1].rate_per_s > 1.99 && c.accounts[1].rate_per_s < 2.01);
	assert_int_equal(c.accounts[1].stall_after_ms, 3600000);
	assert_int_equal(c.accounts[1].page_size, 7);
	assert_int_equal(config_account_find(&c, "cohere"), 0);
	assert_int_equal(config_account_find(&c, "an"), 2);
	assert_int_equal(config_account_find(&c, "nope"), -1);
	config_clear(&c);

	static const struct { const char *text, *msg; } bad[] = {
		{ "[account oa]\nkey_file = /k\n", "missing \"provider\"" },
		{ "[account oa]\nprovider = cohere\n", "the Cohere account is [embedwatch]" },
		{ "[account oa]\nprovider = bedrock\n", "expected openai, anthropic, gemini or mistral" },
		{ "[account cohere]\nprovider = openai\n", "[account cohere]" },
		{ "[account OA]\nprovider = openai\n", "lowercase letters" },
		{ "[account]\nprovider = openai\n", "needs a name" },
		{ "[account a]\nprovider = openai\n[account a]\nprovider = mistral\n", "defined twice" },
		{ "[account a]\nprovider = openai\ncolour = red\n", "unknown key \"colour\" in [account a]" },
		{ "[account a]\nprovider = openai\npage_size = 1000\n", "larger than openai serves" },
		{ "[account a]\nprovider = openai\napi_base = http://example.com\n", "api_base" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (load(bad[i].text, &c, err) == 0)
			fail_msg("case %zu accepted", i);
		if (!strstr(err, bad[i].msg))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].msg);
	}
}

static void test_durations(void **state)
{
	static const struct { const char *s; uint64_t ms; } ok[] = {
		{ "500ms", 500 }, { "30s", 30000 }, { "5m", 300000 }, { "5min", 300000 },
		{ "24h", 86400000 }, { "7d", 604800000 }, { "1.5s", 1500 }, { "0s", 0 },
	};
	static const char *const bad[] = { "", "5", "s", "-1s", "5x", "5 s", "1e9d", "abc", "5sec", ".5s" };
	uint64_t ms;
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		assert_int_equal(config_parse_duration(ok[i].s, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_true(config_parse_duration(bad[i], &ms) < 0);
}

static void test_rates(void **state)
{
	double r;
	assert_int_equal(config_parse_rate("10/s", &r), 0);
	assert_float_equal(r, 10.0, 1e-9);
	assert_int_equal(config_parse_rate("50/min", &r), 0);
	assert_float_equal(r, 50.0 / 60, 1e-9);
	assert_int_equal(config_parse_rate("3600/h", &r), 0);
	assert_float_equal(r, 1.0, 1e-9);
	assert_int_equal(config_parse_rate("5/m", &r), 0);
	assert_true(config_parse_rate("0/s", &r) < 0);
	assert_true(config_parse_rate("10", &r) < 0);
	assert_true(config_parse_rate("10/day", &r) < 0);
	assert_true(config_parse_rate("/s", &r) < 0);
	assert_true(config_parse_rate("-1/s", &r) < 0);
	assert_true(config_parse_rate("1e12/s", &r) < 0);
}

static void test_split_argv(void **state)
{
	char **a;
	assert_int_equal(config_split_argv("/bin/echo hello  world", &a), 0);
	assert_string_equal(a[0], "/bin/echo");
	assert_string_equal(a[1], "hello");
	assert_string_equal(a[2], "world");
	assert_null(a[3]);
	config_free_argv(a);

	assert_int_equal(config_split_argv("/x 'a b' \"c \\\"d\\\"\" e\\ f $HOME;ls|`id` ''", &a), 0);
	assert_string_equal(a[1], "a b");
	assert_string_equal(a[2], "c \"d\"");
	assert_string_equal(a[3], "e f");
	assert_string_equal(a[4], "$HOME;ls|`id`");
	assert_string_equal(a[5], "");
	assert_null(a[6]);
	config_free_argv(a);

	assert_int_equal(config_split_argv("/x 'open", &a), -EINVAL);
	assert_int_equal(config_split_argv("/x \"open", &a), -EINVAL);
	assert_int_equal(config_split_argv("/x trailing\\", &a), -EINVAL);
	assert_int_equal(config_split_argv("   ", &a), -EINVAL);
}

static void test_defaults(void **state)
{
	struct ew_config c;
	char err[512];
	assert_int_equal(load("", &c, err), 0);
	assert_string_equal(c.api_base, "https://api.cohere.com");
	assert_int_equal(c.interval_min_ms, 5000);
	assert_int_equal(c.interval_max_ms, 60000);
	assert_float_equal(c.backoff, 1.5, 1e-9);
	assert_float_equal(c.jitter, 0.2, 1e-9);
	assert_float_equal(c.rate_per_s, 40.0 / 60, 1e-9);
	assert_int_equal(c.burst, 10);
	assert_int_equal(c.max_in_flight, 32);
	assert_int_equal(c.request_timeout_ms, 30000);
	assert_int_equal(c.max_age_ms, 7 * 86400000ULL);
	assert_int_equal(c.retention_ms, 7 * 86400000ULL);
	assert_int_equal(c.delivery_retention_ms, 7 * 86400000ULL);
	assert_int_equal(c.max_bytes_per_min, 64ULL << 20);
	assert_int_equal(c.planner, PLANNER_AUTO);
	assert_int_equal(c.n_hooks, 0);
	/* Turn 3: the v2 sweep, datasets in complete events, discovery of both kinds, no progress events. */
	assert_true(c.batch_sweep);
	assert_int_equal(c.batch_page_size, 1000);
	assert_true(c.datasets_fetch);
	assert_int_equal(c.dataset_timeout_ms, 60000);
	assert_int_equal(c.dataset_tries, 3);
	assert_int_equal(c.progress_every_pct, 0);
	assert_int_equal(c.discover_kinds, (1u << JOB_KIND_EMBED) | (1u << JOB_KIND_BATCH));
	config_clear(&c);
}

/* The keys of v2 batches and datasets, and the batch_job events in "on". */
static void test_v2_keys(void **state)
{
	struct ew_config c;
	char err[512];
	assert_int_equal(load("[poll]\nbatch_sweep = no\nbatch_page_size = 50\n"
			      "[datasets]\nfetch = no\ntimeout = 5s\ntries = 1\n"
			      "[hooks]\nprogress_every = 10%\n"
			      "[discover]\nkinds = batch-job\n"
			      "[hook b]\ntype = exec\ncommand = /bin/true\non = batch_job.complete batch_job.progress\n"
			      "[hook e]\ntype = exec\ncommand = /bin/true\non = embed_job.complete,batch_job.cancelled\n", &c, err), 0);
	assert_false(c.batch_sweep);
	assert_int_equal(c.batch_page_size, 50);
	assert_false(c.datasets_fetch);
	assert_int_equal(c.dataset_timeout_ms, 5000);
	assert_int_equal(c.dataset_tries, 1);
	assert_int_equal(c.progress_every_pct, 10);
	assert_int_equal(c.discover_kinds, 1u << JOB_KIND_BATCH);
	assert_int_equal(c.hooks[0].on_mask, (1u << EV_BJ_COMPLETE) | (1u << EV_BJ_PROGRESS));
	assert_int_equal(c.hooks[1].on_mask, (1u << EV_COMPLETE) | (1u << EV_BJ_CANCELLED));
	config_clear(&c);
	static const struct { const char *v; unsigned pct; } steps[] = {
		{ "25", 25 }, { "1%", 1 }, { "100%", 100 }, { "0", 0 }, { "no", 0 }, { "0%", 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		char text[64];
		snprintf(text, sizeof(text), "[hooks]\nprogress_every = %s\n", steps[i].v);
		assert_int_equal(load(text, &c, err), 0);
		assert_int_equal(c.progress_every_pct, steps[i].pct);
		config_clear(&c);
	}
}

/* The delivery operations' keys: breaker, rate, and which events "*" and explicit names take. */
static void test_hook_operations(void **state)
{
	struct ew_config c;
	char err[512];
	assert_int_equal(load("[hooks]\ndelivery_retention = 2h\n"
			      "[hook a]\ntype = exec\ncommand = /bin/true\non = *\n"
			      "[hook ops]\ntype = exec\ncommand = /bin/true\non = hook.disabled, hook.enabled\n"
			      "rate = 300/min\ndisable_after = 0s\n", &c, err), 0);
	assert_int_equal(c.delivery_retention_ms, 2 * 3600000ULL);
	assert_int_equal(c.n_hooks, 2);
	/* Defaults: no rate limit, the breaker after 3 days. */
	assert_float_equal(c.hooks[0].rate_per_s, 0, 1e-12);
	assert_int_equal(c.hooks[0].disable_after_ms, 3 * 86400000ULL);
	assert_true(c.hooks[0].on_mask & (1u << EV_BATCH_DONE));
	assert_true(c.hooks[0].on_mask & (1u << EV_CANCELLING));
	assert_false(c.hooks[0].on_mask & (1u << EV_HOOK_DISABLED));
	assert_false(c.hooks[0].on_mask & (1u << EV_HOOK_ENABLED));
	assert_int_equal(c.hooks[1].on_mask, (1u << EV_HOOK_DISABLED) | (1u << EV_HOOK_ENABLED));
	assert_float_equal(c.hooks[1].rate_per_s, 5.0, 1e-9);
	assert_int_equal(c.hooks[1].disable_after_ms, 0);
	config_clear(&c);
}

static void test_full_file(void **state)
{
	const char *text =
		"; a comment\n"
		"[embedwatch]\n"
		"api_base = http://127.0.0.1:8080\n"
		"state_dir = /var/lib/ew\n"
		"control_socket = /run/ew.sock\n"
		"log_level = debug\n"
		"max_age = 24h\n"
		"retention = 0s\n"
		"\n"
		"[poll]\n"
		"interval_min = 500ms\n"
		"interval_max = 10s\n"
		"rate = 50/min\n"
		"burst = 5\n"
		"max_in_flight = 4\n"
		"request_timeout = 2s\n"
		"max_bytes_per_min = 5MiB\n"
		"planner = sweep\n"
		"\n"
		"[hook notify]\n"
		"type = exec\n"
		"command = /usr/local/bin/next-step --job \"a b\"\n"
		"on = embed_job.complete embed_job.failed\n"
		"timeout = 5s\n"
		"max_attempts = 3\n"
		"retry = 1s 2s\n"
		"\n"
		"[hook web]\n"
		"type = webhook\n"
		"url = https://hooks.example/embed\n"
		"on = *\n";
	struct ew_config c;
	char err[512];
	assert_int_equal(load(text, &c, err), 0);
	assert_string_equal(c.api_base, "http://127.0.0.1:8080");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.max_age_ms, 86400000);
	assert_int_equal(c.retention_ms, 0);
	assert_int_equal(c.interval_min_ms, 500);
	assert_int_equal(c.burst, 5);
	assert_int_equal(c.max_bytes_per_min, 5ULL << 20);
	assert_int_equal(c.planner, PLANNER_SWEEP);
	assert_int_equal(c.n_hooks, 2);
	assert_string_equal(c.hooks[0].name, "notify");
	assert_int_equal(c.hooks[0].type, HOOK_EXEC);
	assert_string_equal(c.hooks[0].argv[2], "a b");
	assert_int_equal(c.hooks[0].on_mask, (1u << EV_COMPLETE) | (1u << EV_FAILED));
	assert_int_equal(c.hooks[0].timeout_ms, 5000);
	assert_int_equal(c.hooks[0].max_attempts, 3);
	assert_int_equal(c.hooks[0].n_retry, 2);
	assert_int_equal(c.hooks[0].retry_ms[1], 2000);
	assert_int_equal(c.hooks[1].type, HOOK_WEBHOOK);
	assert_int_equal(c.hooks[1].timeout_ms, 15000);
	assert_true(c.hooks[1].on_mask & (1u << EV_BATCH_DONE));
	assert_false(c.hooks[1].on_mask & 1u);
	assert_int_equal(c.hooks[1].n_retry, 5);
	config_clear(&c);
}

/* Each bad file gives an error naming the file, the line and what was expected. */
static void test_errors(void **state)
{
	static const struct { const char *text; const char *where; const char *what; } cases[] = {
		{ "[embedwatch]\nbogus = 1\n", "test.conf:2:", "unknown key \"bogus\"" },
		{ "[nonsense]\n", "test.conf:1:", "unknown section" },
		{ "[poll]\n\ninterval_min = 5\n", "test.conf:3:", "expected a duration" },
		{ "[poll]\nrate = fast\n", "test.conf:2:", "expected requests per time" },
		{ "[poll]\nburst = -1\n", "test.conf:2:", "whole number" },
		{ "[poll]\nburst = 0\n", "test.conf:2:", "whole number" },
		{ "[poll]\njitter = 0.9\n", "test.conf:2:", "from 0 to 0.5" },
		{ "[poll]\nmax_bytes_per_min = lots\n", "test.conf:2:", "max_bytes_per_min: expected a size" },
		{ "[poll]\nmax_bytes_per_min = 1k\n", "test.conf:2:", "at least 64k" },
		{ "[poll]\n\nplanner = smart\n", "test.conf:3:", "planner: expected auto, sweep or per-id" },
		{ "[poll]\nplanner = per-id\n[discover]\nenabled = yes\n", "test.conf:2:", "planner = per-id never reads the list" },
		{ "[poll]\ninterval_min = 2m\ninterval_max = 1m\n", "test.conf:", "longer than interval_max" },
		{ "[embedwatch]\napi_base = http://api.cohere.com\n", "test.conf:2:", "loopback" },
		{ "[embedwatch]\nstate_dir = relative/dir\n", "test.conf:2:", "absolute path" },
		{ "[embedwatch]\nlog_level = chatty\n", "test.conf:2:", "expected error, warning" },
		{ "[embedwatch]\nno equals sign here\n", "test.conf:2:", "syntax error" },
		{ "[hook x]\ntype = exec\non = embed_job.complete\n", "test.conf:1:", "needs \"command\"" },
		{ "[hook x]\ntype = exec\ncommand = relative.sh\n", "test.conf:3:", "absolute path" },
		{ "[hook x]\ntype = exec\ncommand = /bin/x 'open\n", "test.conf:3:", "quotes must be closed" },
		{ "[hook x]\ntype = carrier-pigeon\n", "test.conf:2:", "expected exec or webhook" },
		{ "[hook x]\ntype = exec\ncommand = /bin/true\non = embed_job.done\n", "test.conf:4:", "unknown event" },
		{ "[hook x]\ntype = exec\ncommand = /bin/true\n", "test.conf:1:", "missing \"on\"" },
		{ "[hook x]\ntype = webhook\non = *\n", "test.conf:1:", "needs \"url\"" },
		{ "[hook x]\ntype = webhook\non = *\nurl = http://example.com/h\n", "test.conf:4:", "loopback" },
		{ "[hook x]\ntype = exec\ncommand=/bin/true\non=*\n[hook x]\n", "test.conf:5:", "defined twice" },
		{ "[hook bad name!]\n", "test.conf:1:", "hook name" },
		{ "[hook x]\nretry = 5s soon\n", "test.conf:2:", "expected durations" },
		{ "[hooks]\nmax_concurrent = 0\n", "test.conf:2:", "whole number" },
		{ "[hook x]\nwhat = 1\n", "test.conf:2:", "unknown key \"what\" in [hook x]" },
		{ "[embedwatch]\nproxy = http://user:pw@proxy:3128\n", "test.conf:2:", "must not hold credentials" },
		{ "[embedwatch]\nproxy = proxy.example:3128\n", "test.conf:2:", "expected a proxy URL" },
		{ "[embedwatch]\nproxy = ftp://proxy:21\n", "test.conf:2:", "expected a proxy URL" },
		{ "[hook x]\nproxy = http://a:b@p:1\n", "test.conf:2:", "credentials" },
		{ "[embedwatch]\ncontrol_group = wheel;rm\n", "test.conf:2:", "expected a group name" },
		{ "[embedwatch]\ncontrol_idle_timeout = 1ms\n", "test.conf:2:", "too short" },
		{ "[hook x]\nrate = lots\n", "test.conf:2:", "expected deliveries per time" },
		{ "[hook x]\ndisable_after = soon\n", "test.conf:2:", "disable_after: expected a duration" },
		{ "[hooks]\ndelivery_retention = 1w\n", "test.conf:2:", "delivery_retention: expected a duration" },
		{ "[poll]\nbatch_page_size = 1001\n", "test.conf:2:", "whole number from 1 to 1000" },
		{ "[poll]\nbatch_sweep = maybe\n", "test.conf:2:", "expected yes or no" },
		{ "[datasets]\nfetch = perhaps\n", "test.conf:2:", "fetch: expected yes or no" },
		{ "[datasets]\n\ntimeout = 1ms\n", "test.conf:3:", "timeout: 1ms is too short" },
		{ "[datasets]\ntries = 0\n", "test.conf:2:", "whole number from 1 to 10" },
		{ "[datasets]\nretries = 3\n", "test.conf:2:", "unknown key \"retries\" in [datasets]" },
		{ "[hooks]\nprogress_every = 150%\n", "test.conf:2:", "progress_every: expected a step" },
		{ "[hooks]\nprogress_every = 10%%\n", "test.conf:2:", "progress_every: expected a step" },
		{ "[hooks]\nprogress_every = ten\n", "test.conf:2:", "progress_every: expected a step" },
		{ "[discover]\nkinds = embed-job batch\n", "test.conf:2:", "kinds: expected embed-job and/or batch-job, got \"batch\"" },
		{ "[discover]\nkinds = ,\n", "test.conf:2:", "kinds: expected embed-job and/or batch-job" },
		{ "[hook x]\ntype = exec\ncommand = /bin/true\non = batch_job.done\n", "test.conf:4:", "the same batch_job.* events" },
		{ "[embedwatch]\nstate_url = mysql://db/ew\n", "test.conf:2:", "expected a PostgreSQL URI" },
		{ "[embedwatch]\nstate_url = host=db password=hunter2\n", "test.conf:2:", "expected a PostgreSQL URI" },
		{ "[embedwatch]\nstate_url = postgresql://ew:secret@db/ew\n", "test.conf:2:", "password does not belong" },
		{ "[embedwatch]\nstate_url = postgresql://db/ew?sslmode=require&password=x\n", "test.conf:2:", "state-password" },
		{ "[embedwatch]\nstate_url = postgresql://db/my db\n", "test.conf:2:", "percent-encoded" },
		{ "[embedwatch]\nstate_password_file = /etc/pw\n", "test.conf:", "state_url is not" },
		{ "[embedwatch]\nlease_ttl = 10s\nlease_renew = 6s\n", "test.conf:", "at most half of lease_ttl" },
		{ "[embedwatch]\nlease_ttl = 100ms\n", "test.conf:2:", "too short" },
		{ "[embedwatch]\nlease_renew = forever\n", "test.conf:2:", "lease_renew: expected a duration" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ew_config c;
		char err[512] = "";
		print_message("case %zu: %s\n", i, cases[i].text);
		assert_int_equal(load(cases[i].text, &c, err), -EINVAL);
		print_message("  -> %s\n", err);
		assert_non_null(strstr(err, cases[i].where));
		assert_non_null(strstr(err, cases[i].what));
		assert_null(c.api_base);
		assert_null(strstr(err, "hunter2"));   /* a password in a bad value is never echoed */
	}
}

static void test_proxy_urls(void **state)
{
	static const struct { const char *url; int ok; } cases[] = {
		{ "http://proxy.example:3128", 1 }, { "https://proxy.example", 1 }, { "socks5h://127.0.0.1:1080", 1 },
		{ "http://[::1]:3128/", 1 }, { "http://user@proxy:1", 0 }, { "http://u:p@proxy:1/", 0 },
		{ "http://", 0 }, { "http://:3128", 0 }, { "proxy:3128", 0 }, { "http://a b:1", 0 },
		{ "http://proxy/x@y", 1 },
	};
	char err[256];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = config_check_proxy(cases[i].url, err, sizeof(err));
		if ((r == 0) != cases[i].ok)
			fail_msg("%s: %s", cases[i].url, cases[i].ok ? err : "accepted");
	}
}

static void test_state_urls(void **state)
{
	static const struct { const char *url; int ok; } cases[] = {
		{ "postgresql://embedwatch@db.example/embedwatch", 1 }, { "postgres://db/ew", 1 },
		{ "postgresql://ew@db/ew?sslmode=verify-full&sslrootcert=/etc/ca.pem", 1 },
		{ "postgresql://ew@/postgres?host=/run/postgresql", 1 }, { "postgresql://ew@h1:5432,h2:5432/ew", 1 },
		{ "postgresql://db/ew?application_name=a%20b", 1 }, { "postgresql://ew@db/x:y", 1 },
		{ "postgresql://ew:pw@db/ew", 0 }, { "postgresql://ew:@db/ew", 0 }, { "postgresql://db/ew?password=pw", 0 },
		{ "postgresql://db/ew?a=1&password=pw", 0 }, { "host=db dbname=ew", 0 }, { "file:/tmp/db", 0 },
	};
	char err[256];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = config_check_state_url(cases[i].url, err, sizeof(err));
		if ((r == 0) != cases[i].ok)
			fail_msg("%s: %s", cases[i].url, cases[i].ok ? err : "accepted");
	}
}

static void test_missing_file(void **state)
{
	struct ew_config c;
	char err[512];
	assert_int_equal(config_load("/nonexistent/embedwatch.conf", &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/embedwatch.conf"));
	assert_non_null(strstr(err, "cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_split_argv),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_v2_keys),
		cmocka_unit_test(test_accounts),
		cmocka_unit_test(test_hook_operations),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_proxy_urls),
		cmocka_unit_test(test_state_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
