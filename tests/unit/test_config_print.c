/*
 * --print-config: the printed configuration reads back as the same one
 * (defaults, and a file setting keys of every type), and passwords in URLs
 * and connection strings never show.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "util.h"

/* cfg printed into a string the caller frees. */
static char *print(const struct ew_config *cfg)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	config_print(cfg, f);
	fclose(f);
	return out;
}

/* Loads text as a config file, or fails the test with the message. */
static void load(const char *text, struct ew_config *cfg)
{
	char err[512];
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	if (config_load_stream(f, "printed.conf", cfg, err, sizeof(err)) < 0)
		fail_msg("%s\n%s", err, text);
	fclose(f);
}

static void test_round_trip(void **state)
{
	static const char *const files[] = {
		"",
		"[embedwatch]\nstate_url = postgresql://ew@db.example/ew?sslmode=require\nlog_level = debug\n"
		"control_mode = 0600\nmax_age = 0s\nmetrics_listen = 9810\n"
		"[poll]\nrate = 7/s\ndefault_rate = 1000/h\nbackoff = 1.25\njitter = 0.1\nplanner = sweep\n"
		"list_max_bytes = 1500k\nmonthly_requests = 100000\n"
		"[discover]\nenabled = yes\nkinds = batch-job\nbatch = {name-prefix}\n"
		"[hooks]\nprogress_every = 10%\noutput_max = 0\n"
		"[hook a]\ntype = exec\non = embed_job.complete hook.disabled\ncommand = /bin/echo \"a b\" 'c' d\\'e ''\n"
		"retry = 1s 90s 1500ms\n"
		"[hook w]\ntype = webhook\non = * hook.enabled\nurl = https://example.com/h\nrate = 600/min\nproxy = direct\n",
		"[poll]\nstall_after = 2h\n[account oa]\nprovider = openai\nkey_file = /k\n"
		"[account g-2]\nprovider = gemini\nrate = 90/min\nsweep = no\npage_size = 20\nstall_after = 30m\nexpiring = 0ms\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct ew_config a, b;
		load(files[i], &a);
		char *pa = print(&a);
		load(pa, &b);
		char *pb = print(&b);
		assert_string_equal(pa, pb);
		assert_memory_equal(&a.rate_per_s, &b.rate_per_s, sizeof(double));
		assert_int_equal(a.n_hooks, b.n_hooks);
		assert_int_equal(a.n_accounts, b.n_accounts);
		for (size_t k = 0; k < a.n_accounts; k++) {
			assert_string_equal(a.accounts[k].name, b.accounts[k].name);
			assert_int_equal(a.accounts[k].provider, b.accounts[k].provider);
			assert_memory_equal(&a.accounts[k].rate_per_s, &b.accounts[k].rate_per_s, sizeof(double));
		}
		free(pa);
		free(pb);
		config_clear(&a);
		config_clear(&b);
	}
}

static void test_mask(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "postgresql://ew@db/ew", "postgresql://ew@db/ew" },
		{ "postgresql://ew:s3cret@db/ew", "postgresql://ew:********@db/ew" },
		{ "postgresql://db/ew?sslmode=require&password=s3cret&x=1", "postgresql://db/ew?sslmode=require&password=********&x=1" },
		{ "host=db user=ew password=s3cret dbname=ew", "host=db user=ew password=******** dbname=ew" },
		{ "password=s3cret", "password=********" },
		{ "http://u:p@proxy:3128", "http://u:********@proxy:3128" },
		{ "http://proxy:3128/a@b", "http://proxy:3128/a@b" },
		{ "mypassword=x", "mypassword=x" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = { 0 };
		config_mask_secrets(cases[i].in, &b);
		assert_string_equal(b.data, cases[i].out);
		buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_mask),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
