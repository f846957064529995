#include "strmap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/random.h>
#include <string.h>

#include "util.h"

/*
 * SipHash-1-3 with a key drawn from getrandom at first use: keys come from
 * clients (job ids, batch names), and an unkeyed hash lets a crafted set of
 * ids pile into one probe run and slow every lookup.
 */
static uint64_t sip_k0, sip_k1;
static bool sip_keyed;

void strmap_seed(uint64_t k0, uint64_t k1)
{
	sip_k0 = k0;
	sip_k1 = k1;
	sip_keyed = true;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                    \
	do {                                                                        \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);           \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                              \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                              \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);           \
	} while (0)

uint32_t strmap_hash(const char *s)
{
	if (!sip_keyed) {
		uint64_t k[2];
		if (getrandom(k, sizeof(k), 0) != sizeof(k)) {
			k[0] = (uint64_t)util_wall_ms();
			k[1] = util_mono_ms() ^ (uint64_t)(uintptr_t)&sip_k0;
		}
		strmap_seed(k[0], k[1]);
	}
	size_t len = strlen(s);
	uint64_t v0 = 0x736f6d6570736575ULL ^ sip_k0, v1 = 0x646f72616e646f6dULL ^ sip_k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ sip_k0, v3 = 0x7465646279746573ULL ^ sip_k1;
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t m;
		memcpy(&m, p + i, 8);   /* little-endian hosts; the value only has to be stable in-process */
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t last = (uint64_t)len << 56;
	for (size_t k = 0; i + k < len; k++)
		last |= (uint64_t)p[i + k] << (8 * k);
	v3 ^= last;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	uint64_t h = v0 ^ v1 ^ v2 ^ v3;
	uint32_t r = (uint32_t)(h ^ (h >> 32));
	return r ? r : 1;
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
