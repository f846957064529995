/* The heap: an array with parent (i - 1) / 2, children 2i + 1 and 2i + 2. */
#include "heap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint32_t *index_of(const struct heap *h, const void *e)
{
	return (uint32_t *)(void *)((char *)(uintptr_t)e + h->idx_off);
}

/* Puts e at slot i and tells it where it is. */
static void place(struct heap *h, size_t i, void *e)
{
	h->v[i] = e;
	*index_of(h, e) = (uint32_t)i;
}

/* Moves the element at i up while it comes before its parent; true when it moved. */
static bool sift_up(struct heap *h, size_t i)
{
	void *e = h->v[i];
	size_t start = i;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!h->less(e, h->v[p]))
			break;
		place(h, i, h->v[p]);
		i = p;
	}
	place(h, i, e);
	return i != start;
}

static void sift_down(struct heap *h, size_t i)
{
	void *e = h->v[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = l;
		if (l >= h->len)
			break;
		if (r < h->len && h->less(h->v[r], h->v[l]))
			m = r;
		if (!h->less(h->v[m], e))
			break;
		place(h, i, h->v[m]);
		i = m;
	}
	place(h, i, e);
}

void heap_init(struct heap *h, heap_less_fn less, size_t idx_off)
{
	memset(h, 0, sizeof(*h));
	h->less = less;
	h->idx_off = idx_off;
}

void heap_push(struct heap *h, void *e)
{
	if (h->len == h->cap) {
		/* Indexes are 32 bits and HEAP_NONE is taken: 2^31 elements is a broken invariant, not a load. */
		if (h->cap >= HEAP_NONE / 2) {
			fprintf(stderr, "heap: more than %zu elements\n", h->cap);
			abort();
		}
		h->cap = h->cap ? h->cap * 2 : 16;
		h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
	}
	h->v[h->len] = e;
	*index_of(h, e) = (uint32_t)h->len;
	h->len++;
	sift_up(h, h->len - 1);
}

void heap_remove(struct heap *h, void *e)
{
	uint32_t *ip = index_of(h, e);
	size_t i = *ip;
	if (i == HEAP_NONE)
		return;
	*ip = HEAP_NONE;
	h->len--;
	if (i == h->len)
		return;
	/* The last element fills the hole, then goes whichever way its key says. */
	place(h, i, h->v[h->len]);
	heap_update(h, h->v[i]);
}

void heap_update(struct heap *h, void *e)
{
	size_t i = *index_of(h, e);
	if (!sift_up(h, i))
		sift_down(h, i);
}

void *heap_peek(const struct heap *h)
{
	return h->len ? h->v[0] : NULL;
}

void *heap_pop(struct heap *h)
{
	void *top = heap_peek(h);
	if (top)
		heap_remove(h, top);
	return top;
}

void heap_rebuild(struct heap *h)
{
	/* Floyd: sift down every parent, the last first. */
	for (size_t i = h->len / 2; i-- > 0;)
		sift_down(h, i);
}

bool heap_contains(const struct heap *h, const void *e)
{
	return *index_of(h, e) != HEAP_NONE;
}

void heap_free(struct heap *h)
{
	free(h->v);
	h->v = NULL;
	h->len = h->cap = 0;
}
