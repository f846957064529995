#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

uint32_t strmap_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h ? h : 1;
}

static size_t find(const struct strmap *m, const char *key, uint32_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct strmap_slot *s = &m->slots[i];
		if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
			return i;
	}
}

void *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->len)
		return NULL;
	size_t i = find(m, key, strmap_hash(key));
	return m->slots[i].key ? m->slots[i].val : NULL;
}

static void grow(struct strmap *m)
{
	struct strmap old = *m;
	m->cap = old.cap ? old.cap * 2 : 64;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < old.cap; i++) {
		if (old.slots[i].key) {
			size_t j = find(m, old.slots[i].key, old.slots[i].hash);
			m->slots[j] = old.slots[i];
		}
	}
	free(old.slots);
}

void *strmap_put(struct strmap *m, const char *key, void *val)
{
	if ((m->len + 1) * 4 > m->cap * 3)
		grow(m);
	uint32_t h = strmap_hash(key);
	size_t i = find(m, key, h);
	struct strmap_slot *s = &m->slots[i];
	void *old = NULL;
	if (s->key)
		old = s->val;
	else
		m->len++;
	s->key = key;
	s->val = val;
	s->hash = h;
	return old;
}

void *strmap_del(struct strmap *m, const char *key)
{
	if (!m->len)
		return NULL;
	size_t mask = m->cap - 1;
	size_t i = find(m, key, strmap_hash(key));
	if (!m->slots[i].key)
		return NULL;
	void *val = m->slots[i].val;
	/* Backward-shift: move later entries of the probe run into the hole. */
	size_t j = i;
	for (;;) {
		m->slots[i].key = NULL;
		for (;;) {
			j = (j + 1) & mask;
			if (!m->slots[j].key)
				goto done;
			size_t home = m->slots[j].hash & mask;
			/* Leave j where it is when its home lies cyclically in (i, j]. */
			if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
				continue;
			break;
		}
		m->slots[i] = m->slots[j];
		i = j;
	}
done:
	m->len--;
	return val;
}

void strmap_each(const struct strmap *m, void (*fn)(const char *, void *, void *), void *arg)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			fn(m->slots[i].key, m->slots[i].val, arg);
}

void strmap_free(struct strmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
