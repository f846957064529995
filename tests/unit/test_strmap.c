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

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The longest distance of an entry from its home slot: the cost of the worst lookup. */
static size_t max_displacement(const struct strmap *m)
{
	size_t worst = 0, mask = m->cap - 1;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].key)
			continue;
		size_t d = (i - (m->slots[i].hash & mask)) & mask;
		if (d > worst)
			worst = d;
	}
	return worst;
}

/*
 * 300 ids crafted to share the low 12 bits of an unkeyed FNV-1a hash (the
 * old table's hash): under it they would form one probe run of 300. Keyed,
 * they spread like any ids.
 */
static void test_crafted_collisions(void **state)
{
	enum { K = 300 };
	static char keys[K][24];
	struct strmap m = { 0 };
	size_t n = 0;
	uint32_t target = fnv1a("job-0") & 0xfff;
	for (unsigned i = 0; n < K; i++) {
		char k[24];
		snprintf(k, sizeof(k), "job-%u", i);
		if ((fnv1a(k) & 0xfff) == target)
			memcpy(keys[n++], k, sizeof(k));
	}
	for (size_t i = 0; i < K; i++)
		strmap_put(&m, keys[i], keys[i]);
	assert_int_equal(m.len, K);
	/*
	 * 300 keys in 512 slots: with a random hash the longest displacement is
	 * some 10 to 35 and beyond 64 practically never; the unkeyed hash would
	 * put all 300 in one run.
	 */
	size_t worst = max_displacement(&m);
	if (worst >= 64)
		fail_msg("crafted keys pile up: a probe run of %zu", worst);
	for (size_t i = 0; i < K; i++)
		assert_ptr_equal(strmap_get(&m, keys[i]), keys[i]);
	strmap_free(&m);
}

static void test_keyed(void **state)
{
	/* The same id hashes differently under another key: an attacker cannot precompute. */
	strmap_seed(1, 2);
	uint32_t a = strmap_hash("job-12345");
	strmap_seed(3, 4);
	uint32_t b = strmap_hash("job-12345");
	assert_int_not_equal(a, b);
	assert_int_equal(strmap_hash("job-12345"), b);
	assert_int_not_equal(strmap_hash(""), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crafted_collisions),
		cmocka_unit_test(test_keyed),
		cmocka_unit_test(test_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
