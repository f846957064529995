/*
 * Hooks through hooks.h (and hooks_int.h to end attempts, as the exec and
 * webhook runners do): planning (which hooks take an event), claiming within
 * the caps, the order promises (a job's events one after another, batch.done
 * after every member is done or dead, oldest first, also after a restore from
 * the store), and the breaker (failures for disable_after disable the hook,
 * nothing dies while it is disabled, enabling lets the deliveries go).
 * Attempts are not run: both drivers are a stub that records what started.
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

#include "hooks_int.h"
#include "store.h"
#include "util.h"
#include "watch.h"

/* ---- stubs for what the test does not run ---- */
static struct run *started[64];
static size_t n_started;
static int hook_events[8];
static size_t n_hook_events;

static struct run *stub_alloc(void) { return xcalloc(1, sizeof(struct run)); }
static int stub_start(struct hooks *hs, struct run *r)
{
	(void)hs;
	started[n_started++] = r;
	return 0;
}
static void stub_stop(struct hooks *hs, struct run *r) { (void)hs, (void)r; }
static void stub_free(struct run *r) { free(r); }
/* Both kinds of hook run through the stub driver. */
#define STUB_DRIVER { .alloc = stub_alloc, .start = stub_start, .stop = stub_stop, .free = stub_free }
const struct hook_driver hooks_exec_driver = STUB_DRIVER, hooks_webhook_driver = STUB_DRIVER;
void watch_hook_event(struct ew *ew, enum ew_event type, const char *hook, int64_t since_ms, json_object *data)
{
	(void)ew, (void)hook, (void)since_ms;
	hook_events[n_hook_events++] = type;
	json_object_put(data);
}

static struct ew ew;
static char dir[64];

static void config(const char *text)
{
	char err[512];
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	assert_int_equal(config_load_stream(f, "test.conf", &ew.cfg, err, sizeof(err)), 0);
	fclose(f);
}

static int setup(void **state)
{
	memset(&ew, 0, sizeof(ew));
	n_started = n_hook_events = 0;
	ew.loop = uv_default_loop();
	snprintf(dir, sizeof(dir), "/tmp/ew-hooks-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	char err[256];
	struct store_config sc = { .loop = ew.loop, .dir = dir };
	assert_int_equal(store_open(&sc, &ew.store, err, sizeof(err)), 0);
	return 0;
}

/* The store calls back when done (SQLite before returning): the result, for the asserts. */
static void note_result(int r, void *arg)
{
	*(int *)arg = r;
}

static int store_commit(struct store *s)
{
	int r = 1;
	store_commit_async(s, note_result, &r);
	store_wait(s);
	return r;
}

static void note_restore(int r, const char *err, void *arg)
{
	*(int *)arg = r;
}

static int teardown(void **state)
{
	if (ew.hooks) {
		for (size_t i = 0; i < n_started; i++)
			if (started[i]) {
				hooks_run_unlink(ew.hooks, started[i]);
				hooks_run_free(started[i]);
			}
		hooks_close(&ew);
		uv_run(ew.loop, UV_RUN_NOWAIT);
	}
	turn_free(&ew.turn);
	store_close(ew.store);
	config_clear(&ew.cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* An event row as the outbox hands it over after the commit, planned by hooks_plan. */
static struct turn_row *row(struct turn_row **list, enum ew_event type, const char *subject, const char *batch)
{
	struct turn_row *r = xcalloc(1, sizeof(*r));
	static int n;
	r->kind = TR_EVENT;
	r->type = type;
	r->is_new = true;
	snprintf(r->event_id, sizeof(r->event_id), "evt_%032d", ++n);
	r->subject = xstrdup(subject);
	r->batch = batch ? xstrdup(batch) : NULL;
	r->text = xstrdup("{}");
	r->ts_ms = util_wall_ms() - 1000;
	hooks_plan(ew.hooks, r);
	struct turn_row **pp = list;
	while (*pp)
		pp = &(*pp)->next;
	*pp = r;
	return r;
}

/* What started since the last call, as "SUBJECT:EVENT" in start order, into buf. */
static const char *starts(char *buf, size_t len, size_t *from)
{
	buf[0] = '\0';
	for (size_t i = *from; i < n_started; i++) {
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s:%s", l ? " " : "", started[i]->d->subject, job_event_name(started[i]->d->type));
	}
	*from = n_started;
	return buf;
}

/* Ends started attempt i as the runners do; the slot it held is free again. */
static void finish(size_t i, bool ok)
{
	struct run *r = started[i];
	started[i] = NULL;
	hooks_run_unlink(ew.hooks, r);
	struct delivery *d = r->d;
	hooks_run_free(r);
	hooks_finish(ew.hooks, d, &(struct hook_outcome){ .ok = ok, .why = ok ? NULL : "exit status 1", .ms = 1 });
	hooks_pump(ew.hooks);
}

/* After a commit: what was claimed starts (every claim so far was in it). */
static void commit(void)
{
	turn_free(&ew.turn);
	memset(&ew.turn, 0, sizeof(ew.turn));
	hooks_dispatch(&ew, NULL, UINT64_MAX);
}

static void test_plan(void **state)
{
	config("[hook all]\ntype = exec\ncommand = /bin/true\non = *\n"
	       "[hook nightly]\ntype = exec\ncommand = /bin/true\non = embed_job.complete batch.done\nbatch = nightly-*\n"
	       "[hook ops]\ntype = exec\ncommand = /bin/true\non = hook.disabled\n"
	       "[hook ops2]\ntype = exec\ncommand = /bin/true\non = hook.disabled\nbatch = nightly-*\n");
	assert_int_equal(hooks_init(&ew), 0);
	struct turn_row *rows = NULL;
	struct turn_row *a = row(&rows, EV_COMPLETE, "j1", "nightly-1");
	struct turn_row *b = row(&rows, EV_COMPLETE, "j2", NULL);
	struct turn_row *c = row(&rows, EV_BATCH_DONE, "nightly-1", "nightly-1");
	struct turn_row *d = row(&rows, EV_HOOK_DISABLED, "ops", NULL);
	struct turn_row *e = row(&rows, EV_HOOK_DISABLED, "all", NULL);
	assert_int_equal(a->n_hooks, 2);
	assert_string_equal(a->hooks[0], "all");
	assert_string_equal(a->hooks[1], "nightly");
	assert_int_equal(b->n_hooks, 1);            /* no batch: only the hook without a batch glob */
	assert_int_equal(c->n_hooks, 2);
	/* Operational events: not taken by "*"; never by the hook they are about; batch globs do not apply. */
	assert_int_equal(d->n_hooks, 1);
	assert_string_equal(d->hooks[0], "ops2");
	assert_int_equal(e->n_hooks, 2);
	turn_rows_free(rows);
}

static void test_order_at_concurrency(void **state)
{
	/* The retry is due 500 ms after the failure: the checks until then take microseconds. */
	config("[hook h]\ntype = exec\ncommand = /bin/true\non = *\nconcurrency = 4\nretry = 500ms\nmax_attempts = 2\n");
	assert_int_equal(hooks_init(&ew), 0);
	struct turn_row *rows = NULL;
	row(&rows, EV_CANCELLING, "j1", "b");
	row(&rows, EV_COMPLETE, "j2", "b");
	row(&rows, EV_CANCELLED, "j1", "b");
	row(&rows, EV_FAILED, "j3", "b");
	row(&rows, EV_BATCH_DONE, "b", "b");
	hooks_dispatch(&ew, rows, UINT64_MAX);
	turn_rows_free(rows);
	char buf[256];
	size_t from = 0;
	commit();
	/* Four slots, but j1's second event waits for its first and batch.done for every member. */
	assert_string_equal(starts(buf, sizeof(buf), &from), "j1:embed_job.cancelling j2:embed_job.complete j3:embed_job.failed");
	finish(1, true);                            /* j2 done */
	finish(2, false);                           /* j3 fails once: retried after 500 ms */
	commit();
	assert_string_equal(starts(buf, sizeof(buf), &from), "");
	finish(0, true);                            /* j1 cancelling done: cancelled may go */
	commit();
	assert_string_equal(starts(buf, sizeof(buf), &from), "j1:embed_job.cancelled");
	finish(3, true);
	commit();
	assert_string_equal(starts(buf, sizeof(buf), &from), "");   /* j3 still to retry: batch.done waits */
	/* Until the retry timer has fired and the attempt is claimed (a condition, not a time: at most 60 s). */
	const char *s = "";
	for (int i = 0; i < 6000 && !*s; i++) {
		uv_sleep(10);
		uv_update_time(ew.loop);
		uv_run(ew.loop, UV_RUN_NOWAIT);     /* the retry timer */
		commit();
		s = starts(buf, sizeof(buf), &from);
	}
	assert_string_equal(s, "j3:embed_job.failed");
	finish(4, false);                           /* the second failure: dead, which also frees batch.done */
	commit();
	assert_string_equal(starts(buf, sizeof(buf), &from), "b:batch.done");
	finish(5, true);
	assert_int_equal(ew.m.deliveries_dead, 1);
	assert_int_equal(ew.m.deliveries_pending, 0);
}

static void test_restore_oldest_first(void **state)
{
	config("[hook h]\ntype = exec\ncommand = /bin/true\non = *\nconcurrency = 1\n");
	/* Pending in the store, detected in this order (their update times say otherwise). */
	static const struct { const char *id, *type, *subject; int64_t ts; } ev[] = {
		{ "evt_1", "embed_job.complete", "j1", 100 }, { "evt_2", "embed_job.cancelling", "j2", 200 },
		{ "evt_3", "embed_job.failed", "j3", 300 }, { "evt_4", "embed_job.cancelled", "j2", 400 },
		{ "evt_5", "batch.done", "b", 500 },
	};
	assert_int_equal(store_begin(ew.store), 0);
	for (size_t i = 0; i < ARRAY_SIZE(ev); i++) {
		bool n;
		assert_int_equal(store_put_event(ew.store, ev[i].id, ev[i].type, ev[i].subject, "b", ev[i].ts, "{}", NULL, 0, &n), 0);
		assert_int_equal(store_put_delivery(ew.store, ev[i].id, "h", "pending", 0, 0, NULL, 10000 - ev[i].ts), 0);
	}
	assert_int_equal(store_commit(ew.store), 0);
	assert_int_equal(hooks_init(&ew), 0);
	int restored = 1;
	hooks_restore(&ew, note_restore, &restored);
	store_wait(ew.store);
	assert_int_equal(restored, 0);
	char buf[256], all[512] = "";
	size_t from = 0;
	for (size_t i = 0; i < ARRAY_SIZE(ev); i++) {
		commit();
		snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s", i ? " " : "", starts(buf, sizeof(buf), &from));
		finish(i, true);
	}
	assert_string_equal(all, "j1:embed_job.complete j2:embed_job.cancelling j3:embed_job.failed "
			    "j2:embed_job.cancelled b:batch.done");
}

/*
 * A takeover: a commit of the new active planned a delivery (batch.done found
 * again) before the restore read the pending rows, which hold the same event
 * for the same hook. It is delivered once, not twice.
 */
static void test_restore_after_a_commit(void **state)
{
	config("[hook h]\ntype = exec\ncommand = /bin/true\non = *\nconcurrency = 4\n");
	assert_int_equal(hooks_init(&ew), 0);
	struct turn_row *rows = NULL;
	struct turn_row *done = row(&rows, EV_BATCH_DONE, "b", "b");
	assert_int_equal(store_begin(ew.store), 0);
	bool n;
	assert_int_equal(store_put_event(ew.store, done->event_id, "batch.done", "b", "b", 100, "{}", NULL, 0, &n), 0);
	assert_int_equal(store_put_delivery(ew.store, done->event_id, "h", "pending", 0, 0, NULL, 100), 0);
	assert_int_equal(store_put_event(ew.store, "evt_other", "embed_job.complete", "j9", NULL, 50, "{}", NULL, 0, &n), 0);
	assert_int_equal(store_put_delivery(ew.store, "evt_other", "h", "pending", 0, 0, NULL, 50), 0);
	assert_int_equal(store_commit(ew.store), 0);
	hooks_dispatch(&ew, rows, UINT64_MAX);      /* planned in memory by the commit */
	turn_rows_free(rows);
	assert_int_equal(ew.m.deliveries_pending, 1);
	int restored = 1;
	hooks_restore(&ew, note_restore, &restored);
	store_wait(ew.store);
	assert_int_equal(restored, 0);
	assert_int_equal(ew.m.deliveries_pending, 2);   /* the other one restored; batch.done not again */
	char buf[256];
	size_t from = 0;
	commit();
	assert_string_equal(starts(buf, sizeof(buf), &from), "b:batch.done j9:embed_job.complete");
}

static void test_breaker(void **state)
{
	config("[hook h]\ntype = exec\ncommand = /bin/true\non = *\nconcurrency = 1\nretry = 1ms\nmax_attempts = 1\n"
	       "disable_after = 1ms\n");
	assert_int_equal(hooks_init(&ew), 0);
	struct turn_row *rows = NULL;
	row(&rows, EV_COMPLETE, "j1", NULL);
	row(&rows, EV_COMPLETE, "j2", NULL);
	hooks_dispatch(&ew, rows, UINT64_MAX);
	turn_rows_free(rows);
	char buf[256];
	size_t from = 0;
	commit();
	assert_string_equal(starts(buf, sizeof(buf), &from), "j1:embed_job.complete");
	finish(0, false);                           /* the first failure: the run of failures starts; j1 dies */
	assert_int_equal(ew.m.deliveries_dead, 1);
	assert_int_equal(n_hook_events, 0);
	commit();
	assert_string_equal(starts(buf, sizeof(buf), &from), "j2:embed_job.complete");
	uv_sleep(3);
	finish(1, false);                           /* failing for > 1 ms: disabled, and j2 waits instead of dying */
	assert_int_equal(n_hook_events, 1);
	assert_int_equal(hook_events[0], EV_HOOK_DISABLED);
	assert_int_equal(ew.m.deliveries_dead, 1);
	assert_int_equal(ew.m.hooks_disabled, 1);
	commit();
	assert_string_equal(starts(buf, sizeof(buf), &from), "");   /* disabled: nothing starts */
	char err[128];
	assert_int_equal(hooks_set_enabled(&ew, "h", true, err, sizeof(err)), 1);
	assert_int_equal(hook_events[1], EV_HOOK_ENABLED);
	assert_int_equal(hooks_set_enabled(&ew, "h", true, err, sizeof(err)), 0);    /* already enabled */
	assert_int_equal(hooks_set_enabled(&ew, "nosuch", true, err, sizeof(err)), -ENOENT);
	commit();
	assert_string_equal(starts(buf, sizeof(buf), &from), "j2:embed_job.complete");
	finish(2, true);
	assert_int_equal(ew.m.deliveries_pending, 0);
	assert_int_equal(ew.m.hooks_disabled, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_at_concurrency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_oldest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_after_a_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_breaker, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
