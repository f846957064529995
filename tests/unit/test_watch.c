/*
 * Observation -> transition -> event through watch.h, with the real job table
 * and turn record: an answer that changes nothing writes nothing; a change is
 * a snapshot and, when it matters, an event with a deterministic id and the
 * document as data; the last member of a group to end brings batch.done after
 * its own event; ending a job by the daemon (expired, not_found) says why;
 * retention forgets ended jobs and fired groups, never live ones; a batch
 * job's events are batch_job.* with its kind; progress steps; a complete
 * observation is held until its dataset comes back (or is given up on).
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

#include "api_v2.h"
#include "watch.h"
#include "watch_v2.h"
#include "util.h"

static struct ew ew;

static int setup(void **state)
{
	memset(&ew, 0, sizeof(ew));
	ew.loop = uv_default_loop();
	config_defaults(&ew.cfg);
	ew.v2 = watch_v2_new(&ew.m);
	return 0;
}

static int teardown(void **state)
{
	turn_free(&ew.turn);
	jobtable_free(&ew.jobs);
	config_clear(&ew.cfg);
	watch_v2_free(ew.v2);
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

/* A new embed job: polled at once, or, while the list sweep works, left to the next sweep (asked for with the commit). */
static void test_new_job_and_the_sweep(void **state)
{
	uint64_t now = ew_now(&ew);
	watch_add(&ew, "n1", NULL);
	assert_int_equal(ew.turn.sweep, 0);
	assert_true(ew.turn.kick);
	assert_true(jobtable_get(&ew.jobs, "n1")->due <= now);
	turn_rows_free(commit());
	jobtable_set_listed(&ew.jobs, JOB_KIND_EMBED, true);
	watch_add(&ew, "n2", NULL);
	assert_int_equal(ew.turn.sweep, TURN_SWEEP(JOB_KIND_EMBED));
	/* The per-id poll is only the fallback, after the sweep had its chance. */
	assert_true(jobtable_get(&ew.jobs, "n2")->due > now + ew.cfg.sweep_interval_ms);
	turn_rows_free(commit());
	/* A batch job: the same rule, with its kind's mark, once its sweep works. */
	watch_add_kind(&ew, "b1", NULL, JOB_KIND_BATCH);
	assert_false(ew.turn.sweep & TURN_SWEEP(JOB_KIND_BATCH));
	assert_true(jobtable_get(&ew.jobs, "b1")->due <= ew_now(&ew));
	turn_rows_free(commit());
	jobtable_set_listed(&ew.jobs, JOB_KIND_BATCH, true);
	watch_add_kind(&ew, "b2", NULL, JOB_KIND_BATCH);
	assert_true(ew.turn.sweep & TURN_SWEEP(JOB_KIND_BATCH));
	assert_true(jobtable_get(&ew.jobs, "b2")->due > now + ew.cfg.sweep_interval_ms);
	turn_rows_free(commit());
	/* A cancel is queued in the job table, once, for the poller. */
	struct job *j = jobtable_get(&ew.jobs, "n1");
	watch_cancel(&ew, j, false);
	watch_cancel(&ew, j, false);
	assert_ptr_equal(jobtable_cancel_peek(&ew.jobs), j);
	assert_ptr_equal(jobtable_cancel_pop(&ew.jobs), j);
	assert_null(jobtable_cancel_peek(&ew.jobs));
	assert_int_equal(j->cancel, CANCEL_REQUESTED);
	turn_rows_free(commit());
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
	jobtable_set_active(&ew.jobs, true);         /* ha says this daemon is active: only then does it prune */
	watch_prune(&ew);
	struct turn_row *rows = commit();
	assert_null(jobtable_get(&ew.jobs, "old"));
	assert_non_null(jobtable_get(&ew.jobs, "live"));     /* live jobs are never forgotten */
	assert_null(jobtable_get_batch(&ew.jobs, "g1"));
	assert_int_equal(count_kind(rows, TR_PRUNE), 1);
	assert_int_equal(count_kind(rows, TR_DELETE), 1);
	turn_rows_free(rows);
}

/* A Batch document observed for j, as a poll's answer gives it to watch. */
static void observe_batch(const char *id, const char *doc)
{
	struct job *j = jobtable_get(&ew.jobs, id);
	struct api_obs o;
	char err[256];
	assert_non_null(j);
	assert_int_equal(api_batch_parse(doc, strlen(doc), &o, err, sizeof(err)), 0);
	watch_observed(&ew, j, &o.job, o.doc, o.doc_len, false);
	api_obs_clear(&o);
}

static json_object *event_data(const struct turn_row *e)
{
	json_object *doc = json_tokener_parse(e->text), *data;
	assert_true(json_object_object_get_ex(doc, "data", &data));
	json_object_get(data);
	json_object_put(doc);
	return data;
}

static const char *str(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

static void test_batch_job(void **state)
{
	ew.cfg.progress_every_pct = 50;
	assert_int_equal(watch_add_kind(&ew, "b1", "g", JOB_KIND_BATCH), 1);
	assert_int_equal(watch_add(&ew, "b1", NULL), -EEXIST);     /* one id, one kind */
	assert_int_equal(watch_add_kind(&ew, "b1", "g", JOB_KIND_BATCH), 0);
	turn_rows_free(commit());
	assert_int_equal(watch_v2_counts(ew.v2)[JOB_NONE], 1);

	observe_batch("b1", "{\"id\":\"b1\",\"status\":\"BATCH_STATUS_IN_PROGRESS\",\"num_records\":10,\"num_successful_records\":2}");
	struct turn_row *rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 0);           /* 20 %: no step of 50 yet */
	turn_rows_free(rows);
	observe_batch("b1", "{\"id\":\"b1\",\"status\":\"BATCH_STATUS_IN_PROGRESS\",\"num_records\":10,\"num_successful_records\":5,"
		      "\"num_failed_records\":1}");
	rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 1);
	const struct turn_row *e = nth_event(rows, 0);
	assert_int_equal(e->type, EV_BJ_PROGRESS);
	char id[37];
	job_event_id("b1/progress/50", EV_BJ_PROGRESS, id);
	assert_string_equal(e->event_id, id);
	json_object *data = event_data(e), *p;
	assert_string_equal(str(data, "kind"), "batch-job");
	assert_true(json_object_object_get_ex(data, "progress", &p));
	assert_int_equal(json_object_get_int(json_object_object_get(p, "percent")), 60);
	json_object_put(data);
	turn_rows_free(rows);
	/* The same records again: nothing. */
	observe_batch("b1", "{\"id\":\"b1\",\"status\":\"BATCH_STATUS_IN_PROGRESS\",\"num_records\":10,\"num_successful_records\":5,"
		      "\"num_failed_records\":1}");
	assert_false(turn_has_writes(&ew.turn));
	assert_int_equal(ew.m.batch_records[1], 5);

	/* Completed: held for its dataset, no event, no poll, later answers change nothing. */
	const char *done = "{\"id\":\"b1\",\"status\":\"BATCH_STATUS_COMPLETED\",\"output_dataset_id\":\"ds-1\",\"num_records\":10,"
			   "\"num_successful_records\":9,\"num_failed_records\":1,\"extra\":[1]}";
	observe_batch("b1", done);
	observe_batch("b1", done);
	rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 0);
	turn_rows_free(rows);
	assert_non_null(watch_v2_held(ew.v2, "b1"));
	assert_int_equal(jobtable_get(&ew.jobs, "b1")->heap_idx, JOB_NOT_QUEUED);
	assert_false(watch_job_ended(jobtable_get(&ew.jobs, "b1")));
	json_object *ds = json_tokener_parse("{\"id\":\"ds-1\",\"dataset_parts\":[{\"url\":\"https://x/p?sig=s\"}]}");
	watch_dataset_result(&ew, "b1", ds, NULL);
	json_object_put(ds);
	assert_null(watch_v2_held(ew.v2, "b1"));
	rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 2);
	e = nth_event(rows, 0);
	assert_int_equal(e->type, EV_BJ_COMPLETE);
	job_event_id("b1", EV_BJ_COMPLETE, id);
	assert_string_equal(e->event_id, id);
	data = event_data(e);
	json_object *od;
	assert_true(json_object_object_get_ex(data, "output_dataset", &od));
	assert_string_equal(str(od, "id"), "ds-1");
	assert_false(json_object_object_get_ex(data, "output_dataset_error", NULL));
	assert_string_equal(str(data, "status"), "BATCH_STATUS_COMPLETED");
	assert_string_equal(str(data, "previous_status"), "processing");
	assert_string_equal(str(data, "batch"), "g");
	assert_non_null(str(data, "extra"));                        /* unknown fields are kept */
	json_object_put(data);
	assert_int_equal(nth_event(rows, 1)->type, EV_BATCH_DONE);
	turn_rows_free(rows);
	assert_true(watch_job_ended(jobtable_get(&ew.jobs, "b1")));
	assert_int_equal(watch_v2_counts(ew.v2)[JOB_COMPLETE], 1);
	assert_int_equal(watch_v2_live(ew.v2), 0);
}

static void test_dataset_given_up(void **state)
{
	watch_add(&ew, "e1", NULL);
	turn_rows_free(commit());
	struct job *j = jobtable_get(&ew.jobs, "e1");
	const char *doc = "{\"job_id\":\"e1\",\"status\":\"complete\",\"created_at\":\"2024-05-06T07:08:09Z\","
			  "\"input_dataset_id\":\"i\",\"model\":\"m\",\"truncate\":\"END\",\"output_dataset_id\":\"ds-e1\"}";
	struct api_obs o;
	char err[256];
	assert_int_equal(api_kind_parse_doc(JOB_KIND_EMBED, doc, strlen(doc), &o, err, sizeof(err)), 0);
	watch_observed(&ew, j, &o.job, doc, strlen(doc), true);
	api_obs_clear(&o);
	struct turn_row *rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 0);
	turn_rows_free(rows);
	watch_dataset_result(&ew, "e1", NULL, "GET /v1/datasets/ds-e1 answered 404");
	rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 1);
	assert_int_equal(nth_event(rows, 0)->type, EV_COMPLETE);
	json_object *data = event_data(nth_event(rows, 0)), *v;
	assert_true(json_object_object_get_ex(data, "output_dataset", &v));
	assert_null(v);
	assert_string_equal(str(data, "output_dataset_error"), "GET /v1/datasets/ds-e1 answered 404");
	assert_string_equal(str(data, "kind"), "embed-job");
	json_object_put(data);
	turn_rows_free(rows);
	/* An unwatched job's hold is dropped with it; a late result finds nothing. */
	watch_add(&ew, "e2", NULL);
	j = jobtable_get(&ew.jobs, "e2");
	const char *doc2 = "{\"job_id\":\"e2\",\"status\":\"complete\",\"created_at\":\"2024-05-06T07:08:09Z\","
			   "\"input_dataset_id\":\"i\",\"model\":\"m\",\"truncate\":\"END\",\"output_dataset_id\":\"ds-e2\"}";
	assert_int_equal(api_kind_parse_doc(JOB_KIND_EMBED, doc2, strlen(doc2), &o, err, sizeof(err)), 0);
	watch_observed(&ew, j, &o.job, doc2, strlen(doc2), false);
	api_obs_clear(&o);
	assert_non_null(watch_v2_held(ew.v2, "e2"));
	assert_int_equal(watch_remove(&ew, "e2"), 0);
	assert_null(watch_v2_held(ew.v2, "e2"));
	watch_dataset_result(&ew, "e2", NULL, "late");
	rows = commit();
	assert_int_equal(count_kind(rows, TR_EVENT), 0);
	turn_rows_free(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transitions_and_batch_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daemon_ends_a_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_job_and_the_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dataset_given_up, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
