/*
 * A string-keyed hash map of borrowed keys: the key pointer must stay valid
 * while the entry exists (usually it points into the value). Open addressing
 * with linear probing and backward-shift deletion: no tombstones, no per-entry
 * allocation. The hash is keyed per process, so clients cannot choose colliding keys.
 */
#ifndef EW_STRMAP_H
#define EW_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
	const char *key;
	void *val;
	uint32_t hash;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap;     /* power of two, or 0 */
	size_t len;
};

void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces; returns the value it replaced, or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *val);
/* Removes key; returns its value, or NULL when absent. */
void *strmap_del(struct strmap *m, const char *key);
/* Calls fn for every entry; fn must not change the map. */
void strmap_each(const struct strmap *m, void (*fn)(const char *key, void *val, void *arg), void *arg);
void strmap_free(struct strmap *m);
/* The keyed hash of a key (never 0). Keyed from getrandom at first use. */
uint32_t strmap_hash(const char *s);
/* Sets the hash key (tests; must come before any map holds entries). */
void strmap_seed(uint64_t k0, uint64_t k1);

#endif
