/*
 * A binary min-heap of pointers to elements that carry their own position:
 * each element has a uint32_t index field (at idx_off) that the heap keeps
 * current, so an element is removed or re-placed from anywhere in O(log n),
 * and HEAP_NONE says it is not in the heap. The order is a less-than
 * callback. The heap owns its array, never the elements. Pure.
 */
#ifndef EW_HEAP_H
#define EW_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEAP_NONE UINT32_MAX

/* True when a must come out before b. */
typedef bool (*heap_less_fn)(const void *a, const void *b);

struct heap {
	void **v;
	size_t len, cap;
	heap_less_fn less;
	size_t idx_off;             /* offsetof(element, its uint32_t index) */
};

/* An empty heap ordered by less, whose elements keep their index at idx_off. */
void heap_init(struct heap *h, heap_less_fn less, size_t idx_off);
/* Adds e, which must not be in a heap (index HEAP_NONE); the array grows as needed. */
void heap_push(struct heap *h, void *e);
/* Takes e out and sets its index to HEAP_NONE; does nothing when e is not in the heap. */
void heap_remove(struct heap *h, void *e);
/* Moves e to its place after its key changed (either way). e must be in the heap. */
void heap_update(struct heap *h, void *e);
/* The first element, or NULL when empty; it stays in. */
void *heap_peek(const struct heap *h);
/* Takes the first element out and returns it, or NULL when empty. */
void *heap_pop(struct heap *h);
/* Restores the order in O(n) after many keys were changed in place. */
void heap_rebuild(struct heap *h);
/* True when e is in a heap (its index is not HEAP_NONE). */
bool heap_contains(const struct heap *h, const void *e);
/* Frees the array (not the elements); the heap is empty and keeps its order and offset. */
void heap_free(struct heap *h);

/* The number of elements. */
static inline size_t heap_len(const struct heap *h)
{
	return h->len;
}

/* The i-th element (i < heap_len) in array order, not sorted: for a pass over all of them. */
static inline void *heap_at(const struct heap *h, size_t i)
{
	return h->v[i];
}

#endif
