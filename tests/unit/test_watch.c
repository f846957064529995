/*
 * Observation -> transition -> event through watch.h, with the real job table
 * and turn record: an answer that changes nothing writes nothing; a change is
 * a snapshot and, when it matters, an event with a deterministic id and the
 * document as data; the last member of a group to end brings batch.done after
 * its own event; ending a job by the daemon (expired, not_found) says why;
 * retention forgets ended jobs and fired groups, never live ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "watch.h"
#include "util.h"

static struct ew ew;

static int setup(void **state)
{
	memset(&ew, 0, sizeof(ew));
	ew.loop = uv_default_loop();
	config_defaults(&ew.cfg);
	return 0;
}

static int teardown(void **state)
{
	turn_free(&ew.turn);
	jobtable_free(&ew.jobs);
	config_clear(&ew.cfg);
	free(ew.cancel_q);
	return 0;
}

/* The turn's rows so far (the commit hands them over), then a fresh turn. */
static struct turn_row *commit(void)
{
	struct turn_row *r = turn_committed(&ew.turn);
	return r;
}

static void observe(const char *id, const char *status)
{
	struct job *j = jobtable_get(&ew.jobs, id);
	assert_non_null(j);
	char body[256];
	snprintf(body, sizeof(body), "{\"job_id\":\"%s\",\"status\":\"%s\",\"name\":\"n-%s\"}", id, status, id);
	struct api_job aj = { .job_id = (char *)id, .status_raw = (char *)status, .status = job_status_parse(status),
			      .name = "n" };
	watch_observed(&ew, j, &aj, body, strlen(body), false);
}

static size_t count_kind(const struct turn_row *r, enum turn_row_kind k)
{
	size_t n = 0;
	for (; r; r = r->next)
		n += r->kind == k;
	return n;
}

static const struct turn_row *nth_event(const struct turn_row *r, size_t i)
{
	for (; r; r = r->next)
		if (r->kind == TR_EVENT && i-- == 0)
			return r;
	return NULL;
}

static void test_transitions_and_batch_done(void **state)
{
	assert_int_equal(watch_add(&ew, "a", "g"), 1);
	assert_int_equal(watch_add(&ew, "b", "g"), 1);
	assert_int_equal(watch_add(&ew, "a", "g"), 0);      /* watched already */
	turn_rows_free(commit());

	observe("a", "processing");
	observe("b", "processing");
	turn_rows_free(commit());
	/* The same answer again: nothing to write. */
	observe("a", "processing");
	assert_false(turn_has_writes(&ew.turn));

	observe("a", "complete");
	struct turn_row *rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 1);
	const struct turn_row *e = nth_event(rows, 0);
	assert_int_equal(e->type, EV_COMPLETE);
	char id[37];
	job_event_id("a", EV_COMPLETE, id);
	assert_string_equal(e->event_id, id);
	assert_string_equal(e->batch, "g");
	json_object *doc = json_tokener_parse(e->text), *data, *v;
	assert_true(json_object_object_get_ex(doc, "data", &data));
	assert_true(json_object_object_get_ex(data, "previous_status", &v));
	assert_string_equal(json_object_get_string(v), "processing");
	assert_true(json_object_object_get_ex(data, "name", &v));    /* the document as the API returned it */
	assert_string_equal(json_object_get_string(v), "n-a");
	json_object_put(doc);
	turn_rows_free(rows);

	observe("b", "failed");
	rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 2);
	assert_int_equal(nth_event(rows, 0)->type, EV_FAILED);
	assert_int_equal(nth_event(rows, 1)->type, EV_BATCH_DONE);   /* after the member that completed the group */
	doc = json_tokener_parse(nth_event(rows, 1)->text);
	assert_true(json_object_object_get_ex(doc, "data", &data));
	assert_true(json_object_object_get_ex(data, "counts", &v));
	assert_int_equal(json_object_get_int(json_object_object_get(v, "complete")), 1);
	assert_int_equal(json_object_get_int(json_object_object_get(v, "failed")), 1);
	json_object_put(doc);
	turn_rows_free(rows);
	/* A late answer for an ended job changes nothing, fires nothing twice, and schedules no poll. */
	observe("b", "failed");
	observe("a", "processing");
	rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 0);
	turn_rows_free(rows);
	assert_int_equal(jobtable_get(&ew.jobs, "a")->heap_idx, JOB_NOT_QUEUED);
	assert_int_equal(jobtable_get(&ew.jobs, "b")->heap_idx, JOB_NOT_QUEUED);
}

static void test_daemon_ends_a_job(void **state)
{
	watch_add(&ew, "x", NULL);
	turn_rows_free(commit());
	struct job *j = jobtable_get(&ew.jobs, "x");
	watch_end(&ew, j, EV_EXPIRED, "watched longer than max_age (7d)");
	watch_end(&ew, j, EV_NOT_FOUND, "a second end is ignored");
	struct turn_row *rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 1);
	const struct turn_row *e = nth_event(rows, 0);
	assert_int_equal(e->type, EV_EXPIRED);
	json_object *doc = json_tokener_parse(e->text), *data, *v;
	assert_true(json_object_object_get_ex(doc, "data", &data));
	assert_true(json_object_object_get_ex(data, "reason", &v));
	assert_non_null(strstr(json_object_get_string(v), "max_age"));
	json_object_put(doc);
	turn_rows_free(rows);
	assert_true(watch_job_ended(j));
}

static void test_retention(void **state)
{
	ew.cfg.retention_ms = 1000;
	watch_add(&ew, "old", "g1");
	watch_add(&ew, "live", NULL);
	turn_rows_free(commit());
	observe("old", "complete");
	turn_rows_free(commit());
	struct job *j = jobtable_get(&ew.jobs, "old");
	j->updated_ms -= 5000;                      /* it ended five seconds ago */
	jobtable_get(&ew.jobs, "live")->updated_ms -= 5000;
	watch_prune(&ew);
	struct turn_row *rows = commit();
	assert_null(jobtable_get(&ew.jobs, "old"));
	assert_non_null(jobtable_get(&ew.jobs, "live"));     /* live jobs are never forgotten */
	assert_null(jobtable_get_batch(&ew.jobs, "g1"));
	assert_int_equal(count_kind(rows, TR_PRUNE), 1);
	assert_int_equal(count_kind(rows, TR_DELETE), 1);
	turn_rows_free(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transitions_and_batch_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daemon_ends_a_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
