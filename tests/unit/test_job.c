/* Unit tests of job.c: every (old, observed) pair, error runs, event ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "job.h"
#include "util.h"

static void test_transition_matrix(void **state)
{
	/* Observable statuses: what the API can say. */
	static const enum job_status seen[] = { JOB_PROCESSING, JOB_CANCELLING, JOB_COMPLETE,
						JOB_CANCELLED, JOB_FAILED, JOB_UNKNOWN };
	static const enum job_status old[] = { JOB_NONE, JOB_PROCESSING, JOB_CANCELLING, JOB_UNKNOWN,
					       JOB_COMPLETE, JOB_CANCELLED, JOB_FAILED,
					       JOB_NOT_FOUND, JOB_ERROR, JOB_EXPIRED };
	for (size_t i = 0; i < ARRAY_SIZE(old); i++) {
		for (size_t k = 0; k < ARRAY_SIZE(seen); k++) {
			bool changed;
			enum ew_event e = job_transition(old[i], seen[k], &changed);
			enum ew_event want = EV_NONE;
			bool want_changed = old[i] != seen[k];
			if (job_status_ended(old[i])) {
				want_changed = false;
			} else if (old[i] != seen[k]) {
				if (seen[k] == JOB_COMPLETE)
					want = EV_COMPLETE;
				else if (seen[k] == JOB_FAILED)
					want = EV_FAILED;
				else if (seen[k] == JOB_CANCELLED)
					want = EV_CANCELLED;
				else if (seen[k] == JOB_CANCELLING)
					want = EV_CANCELLING;
			}
			print_message("old=%s seen=%s\n", job_status_name(old[i]), job_status_name(seen[k]));
			assert_int_equal(e, want);
			assert_int_equal(changed, want_changed);
		}
	}
}

static void test_transition_examples(void **state)
{
	bool ch;
	assert_int_equal(job_transition(JOB_NONE, JOB_COMPLETE, &ch), EV_COMPLETE);
	assert_true(ch);
	assert_int_equal(job_transition(JOB_PROCESSING, JOB_PROCESSING, &ch), EV_NONE);
	assert_false(ch);
	assert_int_equal(job_transition(JOB_CANCELLING, JOB_CANCELLED, &ch), EV_CANCELLED);
	assert_int_equal(job_transition(JOB_COMPLETE, JOB_PROCESSING, &ch), EV_NONE);
	assert_false(ch);
	assert_int_equal(job_transition(JOB_PROCESSING, JOB_UNKNOWN, &ch), EV_NONE);
	assert_true(ch);
}

static void test_end_status(void **state)
{
	assert_int_equal(job_event_end_status(EV_COMPLETE), JOB_COMPLETE);
	assert_int_equal(job_event_end_status(EV_FAILED), JOB_FAILED);
	assert_int_equal(job_event_end_status(EV_CANCELLED), JOB_CANCELLED);
	assert_int_equal(job_event_end_status(EV_EXPIRED), JOB_EXPIRED);
	assert_int_equal(job_event_end_status(EV_NOT_FOUND), JOB_NOT_FOUND);
	assert_int_equal(job_event_end_status(EV_ERROR), JOB_ERROR);
	assert_int_equal(job_event_end_status(EV_CANCELLING), JOB_NONE);
	assert_int_equal(job_event_end_status(EV_BATCH_DONE), JOB_NONE);
}

static void test_error_runs(void **state)
{
	struct job_errstate st = { 0 };
	assert_int_equal(job_error_record(&st, API_NOT_FOUND), EV_NONE);
	assert_int_equal(job_error_record(&st, API_NOT_FOUND), EV_NONE);
	assert_int_equal(job_error_record(&st, API_NOT_FOUND), EV_NOT_FOUND);

	/* A success in between starts the run again. */
	job_error_reset(&st);
	assert_int_equal(job_error_record(&st, API_NOT_FOUND), EV_NONE);
	assert_int_equal(job_error_record(&st, API_NOT_FOUND), EV_NONE);
	job_error_reset(&st);
	assert_int_equal(job_error_record(&st, API_NOT_FOUND), EV_NONE);
	assert_int_equal(job_error_record(&st, API_NOT_FOUND), EV_NONE);
	assert_int_equal(job_error_record(&st, API_NOT_FOUND), EV_NOT_FOUND);

	/* A different error in between does too. */
	job_error_reset(&st);
	assert_int_equal(job_error_record(&st, API_REJECTED), EV_NONE);
	assert_int_equal(job_error_record(&st, API_REJECTED), EV_NONE);
	assert_int_equal(job_error_record(&st, API_TRANSIENT), EV_NONE);
	assert_int_equal(job_error_record(&st, API_REJECTED), EV_NONE);
	assert_int_equal(job_error_record(&st, API_REJECTED), EV_NONE);
	assert_int_equal(job_error_record(&st, API_REJECTED), EV_ERROR);

	/* Answers about another job: three in a row end it with an error; a good answer between starts again. */
	job_error_reset(&st);
	assert_int_equal(job_error_record(&st, JOB_RUN_OTHER_JOB), EV_NONE);
	assert_int_equal(job_error_record(&st, JOB_RUN_OTHER_JOB), EV_NONE);
	job_error_reset(&st);
	assert_int_equal(job_error_record(&st, JOB_RUN_OTHER_JOB), EV_NONE);
	assert_int_equal(job_error_record(&st, JOB_RUN_OTHER_JOB), EV_NONE);
	assert_int_equal(job_error_record(&st, JOB_RUN_OTHER_JOB), EV_ERROR);
	/* ... and a 404 between them is another run. */
	job_error_reset(&st);
	assert_int_equal(job_error_record(&st, JOB_RUN_OTHER_JOB), EV_NONE);
	assert_int_equal(job_error_record(&st, JOB_RUN_OTHER_JOB), EV_NONE);
	assert_int_equal(job_error_record(&st, API_NOT_FOUND), EV_NONE);
	assert_int_equal(job_error_record(&st, JOB_RUN_OTHER_JOB), EV_NONE);

	/* Transient errors never end a job, however many. */
	job_error_reset(&st);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(job_error_record(&st, API_TRANSIENT), EV_NONE);
	assert_int_equal(st.count, 255);
}

static void test_names(void **state)
{
	for (int e = EV_NONE + 1; e < EV__MAX; e++)
		assert_int_equal(job_event_parse(job_event_name((enum ew_event)e)), e);
	assert_int_equal(job_event_parse("embed_job.done"), EV_NONE);
	for (int s = 0; s < JOB__MAX; s++)
		assert_int_equal(job_status_from_name(job_status_name((enum job_status)s)), s);
	assert_int_equal(job_status_from_name("bogus"), -1);
	assert_int_equal(job_status_parse("not_found"), JOB_UNKNOWN);
	/* The warnings: of each kind, never an end. */
	assert_string_equal(job_event_name(EV_STALLED), "embed_job.stalled");
	assert_int_equal(job_event_of_kind(EV_STALLED, JOB_KIND_BATCH), EV_BJ_STALLED);
	assert_int_equal(job_event_base(EV_BJ_STALLED), EV_STALLED);
	assert_int_equal(job_event_kind(EV_STALLED), JOB_KIND_EMBED);
	assert_int_equal(job_event_kind(EV_BJ_STALLED), JOB_KIND_BATCH);
	assert_int_equal(job_event_kind(EV_BJ_EXPIRING), JOB_KIND_BATCH);
	assert_int_equal(job_event_end_status(EV_BJ_STALLED), JOB_NONE);
	assert_int_equal(job_event_end_status(EV_BJ_EXPIRING), JOB_NONE);
}

static void test_event_id(void **state)
{
	char a[37], b[37], c[37], d[37];
	job_event_id("job-1", EV_COMPLETE, a);
	job_event_id("job-1", EV_COMPLETE, b);
	job_event_id("job-1", EV_FAILED, c);
	job_event_id("job-2", EV_COMPLETE, d);
	assert_int_equal(strlen(a), 36);
	assert_memory_equal(a, "evt_", 4);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	/* The subject and the type are separated: ("ab", x) differs from ("a", "b"+x). */
	job_event_id("batch:x", EV_BATCH_DONE, c);
	job_event_id("batch:", EV_BATCH_DONE, d);
	assert_string_not_equal(c, d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transition_matrix),
		cmocka_unit_test(test_transition_examples),
		cmocka_unit_test(test_end_status),
		cmocka_unit_test(test_error_runs),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_event_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
