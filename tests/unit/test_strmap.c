/* Unit tests of strmap.c against a plain array model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strmap.h"

#define N 5000

static void test_model(void **state)
{
	static char keys[N][16];
	static int present[N];
	struct strmap m = { 0 };
	unsigned seed = 12345;

	for (int i = 0; i < N; i++)
		snprintf(keys[i], sizeof(keys[i]), "job-%d", i);
	for (int round = 0; round < 200000; round++) {
		seed = seed * 1103515245 + 12345;
		int k = (int)((seed >> 8) % N);
		if ((seed >> 4) & 1) {
			void *old = strmap_put(&m, keys[k], &present[k]);
			assert_ptr_equal(old, present[k] ? &present[k] : NULL);
			present[k] = 1;
		} else {
			void *old = strmap_del(&m, keys[k]);
			assert_ptr_equal(old, present[k] ? &present[k] : NULL);
			present[k] = 0;
		}
	}
	size_t n = 0;
	for (int i = 0; i < N; i++) {
		n += present[i];
		assert_ptr_equal(strmap_get(&m, keys[i]), present[i] ? &present[i] : NULL);
	}
	assert_int_equal(m.len, n);
	assert_null(strmap_get(&m, "absent"));
	strmap_free(&m);
	assert_null(strmap_get(&m, "job-1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
