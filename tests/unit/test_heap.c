/*
 * The heap: pops come out in key order; every element always knows its slot
 * (and HEAP_NONE once out); removal from the middle, re-keying either way and
 * a rebuild after keys changed in place keep the order; the array grows past
 * its first size. Seeded, so a failure repeats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "heap.h"

struct item {
	uint64_t key;
	int tag;
	uint32_t pos;               /* the heap's index field, not first on purpose */
};

static bool item_less(const void *a, const void *b)
{
	return ((const struct item *)a)->key < ((const struct item *)b)->key;
}

static uint64_t seed = 42;
static uint64_t rnd(void)
{
	seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return seed >> 33;
}

/* Every slot's element points back at it, and no child comes before its parent. */
static void check_heap(const struct heap *h)
{
	for (size_t i = 0; i < heap_len(h); i++) {
		const struct item *e = heap_at(h, i);
		assert_int_equal(e->pos, i);
		if (i > 0)
			assert_false(item_less(e, heap_at(h, (i - 1) / 2)));
	}
}

/* Pops everything: each comes out in key order, leaves with HEAP_NONE, and leaves a valid heap. Returns how many. */
static size_t drain(struct heap *h)
{
	uint64_t last = 0;
	size_t n = 0;
	struct item *e;
	while ((e = heap_peek(h)) != NULL) {
		assert_ptr_equal(heap_pop(h), e);
		assert_true(e->key >= last);
		assert_int_equal(e->pos, HEAP_NONE);
		assert_false(heap_contains(h, e));
		last = e->key;
		n++;
		check_heap(h);
	}
	assert_int_equal(heap_len(h), 0);
	return n;
}

static void init(struct heap *h)
{
	heap_init(h, item_less, offsetof(struct item, pos));
}

/* n items with keys below range, all pushed into a new heap h. */
static void fill(struct heap *h, struct item *it, size_t n, uint64_t range)
{
	init(h);
	for (size_t i = 0; i < n; i++) {
		it[i] = (struct item){ .key = rnd() % range, .tag = (int)i, .pos = HEAP_NONE };
		heap_push(h, &it[i]);
	}
}

static void test_order(void **state)
{
	enum { N = 500 };
	static struct item it[N];
	struct heap h;
	init(&h);
	assert_null(heap_peek(&h));
	assert_null(heap_pop(&h));
	heap_free(&h);
	fill(&h, it, N, 100);       /* many equal keys */
	for (size_t i = 0; i < N; i++)
		assert_true(heap_contains(&h, &it[i]));
	check_heap(&h);
	assert_int_equal(heap_len(&h), N);
	assert_int_equal(drain(&h), N);
	assert_null(heap_pop(&h));
	heap_free(&h);
}

static void test_remove_middle(void **state)
{
	enum { N = 300 };
	static struct item it[N];
	struct heap h;
	fill(&h, it, N, 1000);
	/* Every third element, wherever it sits. */
	size_t left = N;
	for (size_t i = 0; i < N; i += 3) {
		heap_remove(&h, &it[i]);
		left--;
		assert_int_equal(it[i].pos, HEAP_NONE);
		assert_int_equal(heap_len(&h), left);
		check_heap(&h);
		heap_remove(&h, &it[i]);    /* not in it any more: nothing happens */
		assert_int_equal(heap_len(&h), left);
	}
	/* The rest, and only the rest, comes out in order. */
	for (size_t i = 0; i < N; i++)
		assert_int_equal(heap_contains(&h, &it[i]), i % 3 != 0);
	assert_int_equal(drain(&h), left);
	heap_free(&h);
}

static void test_update_and_rebuild(void **state)
{
	enum { N = 400 };
	static struct item it[N];
	struct heap h;
	fill(&h, it, N, 1 << 20);
	/* Re-key one at a time, earlier and later. */
	for (size_t k = 0; k < 2 * N; k++) {
		struct item *e = &it[rnd() % N];
		e->key = k % 2 ? e->key / 2 : e->key * 2 + 7;
		heap_update(&h, e);
		check_heap(&h);
	}
	/* The minimum made the top. */
	it[N / 2].key = 0;
	heap_update(&h, &it[N / 2]);
	assert_ptr_equal(heap_peek(&h), &it[N / 2]);
	/* Many keys changed in place, then one rebuild. */
	for (size_t i = 0; i < N; i++)
		if (rnd() % 2)
			it[i].key = rnd() % 50;
	heap_rebuild(&h);
	check_heap(&h);
	assert_int_equal(drain(&h), N);
	heap_free(&h);
}

static void test_growth(void **state)
{
	enum { N = 20000 };
	struct item *it = calloc(N, sizeof(*it));
	struct heap h;
	fill(&h, it, N, UINT64_MAX);
	assert_int_equal(heap_len(&h), N);
	assert_true(h.cap >= N);
	check_heap(&h);
	/* Descending keys pushed one by one each become the top. */
	struct item more[4] = { { .key = 3, .pos = HEAP_NONE }, { .key = 2, .pos = HEAP_NONE },
				{ .key = 1, .pos = HEAP_NONE }, { .key = 0, .pos = HEAP_NONE } };
	for (int i = 0; i < 4; i++) {
		heap_push(&h, &more[i]);
		assert_ptr_equal(heap_peek(&h), &more[i]);
	}
	heap_free(&h);
	assert_int_equal(heap_len(&h), 0);
	assert_null(heap_peek(&h));
	/* Usable again after heap_free (which leaves the elements alone). */
	more[0].pos = HEAP_NONE;
	heap_push(&h, &more[0]);
	assert_ptr_equal(heap_pop(&h), &more[0]);
	heap_free(&h);
	free(it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_remove_middle),
		cmocka_unit_test(test_update_and_rebuild),
		cmocka_unit_test(test_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
