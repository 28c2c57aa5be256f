/* SPDX-License-Identifier: MIT */
#include "broker/strpool.h"

#include <endian.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker/chunkarr.h"
#include "broker/strarena.h"

#define INDEX_MIN 256

struct kg_strpool {
	uint64_t key[2];
	struct kg_strarena arena;
	struct kg_chunkarr refs; /* uint32_t arena reference per id */
	/* Open addressing, linear probing, at most 3/4 full. ctrl is 0 for an
	 * empty slot, else 8 hash bits, so most mismatches cost no string
	 * comparison. */
	uint8_t *ctrl;
	uint32_t *slots;
	size_t mask;
};

static inline uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static inline void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13) ^ v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17) ^ v[2];
	v[2] = rotl(v[2], 32);
}

static inline uint64_t load_le64(const unsigned char *p, size_t n)
{
	uint64_t m = 0;

	for (size_t i = 0; i < n; i++)
		m |= (uint64_t)p[i] << (8 * i);
	return m;
}

/* SipHash-1-3. */
static uint64_t siphash(const uint64_t key[2], const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint64_t v[4] = {
	        key[0] ^ 0x736f6d6570736575ULL,
	        key[1] ^ 0x646f72616e646f6dULL,
	        key[0] ^ 0x6c7967656e657261ULL,
	        key[1] ^ 0x7465646279746573ULL,
	};
	uint64_t m;
	size_t full = len & ~(size_t)7;

	for (size_t i = 0; i < full; i += 8) {
		memcpy(&m, p + i, 8);
		m = le64toh(m);
		v[3] ^= m;
		sipround(v);
		v[0] ^= m;
	}
	m = ((uint64_t)len << 56) | load_le64(p + full, len - full);
	v[3] ^= m;
	sipround(v);
	v[0] ^= m;
	v[2] ^= 0xff;
	sipround(v);
	sipround(v);
	sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static inline uint8_t tag_of(uint64_t h)
{
	uint8_t t = (uint8_t)(h >> 56);

	return t ? t : 1;
}

struct kg_str kg_strpool_get(const struct kg_strpool *p, uint32_t id)
{
	return kg_strarena_get(&p->arena,
	                       *(const uint32_t *)kg_chunkarr_at(&p->refs, id));
}

static bool same(const struct kg_strpool *p, uint32_t id, const char *s,
                 size_t len)
{
	struct kg_str t = kg_strpool_get(p, id);

	return t.len == len && memcmp(t.s, s, len) == 0;
}

static size_t find_empty(const struct kg_strpool *p, uint64_t h)
{
	size_t i = h & p->mask;

	while (p->ctrl[i])
		i = (i + 1) & p->mask;
	return i;
}

static int set_index(struct kg_strpool *p, size_t cap)
{
	uint8_t *ctrl = calloc(cap, 1);
	uint32_t *slots = malloc(cap * sizeof(*slots));

	if (!ctrl || !slots) {
		free(ctrl);
		free(slots);
		return -1;
	}
	free(p->ctrl);
	free(p->slots);
	p->ctrl = ctrl;
	p->slots = slots;
	p->mask = cap - 1;
	for (size_t id = 0; id < p->refs.n; id++) {
		struct kg_str t = kg_strpool_get(p, (uint32_t)id);
		uint64_t h = siphash(p->key, t.s, t.len);
		size_t i = find_empty(p, h);

		p->ctrl[i] = tag_of(h);
		p->slots[i] = (uint32_t)id;
	}
	return 0;
}

struct kg_strpool *kg_strpool_new(void)
{
	struct kg_strpool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	kg_strarena_init(&p->arena);
	kg_chunkarr_init(&p->refs, sizeof(uint32_t));
	/* The system call itself, not glibc's getrandom(): from glibc 2.41 on
	 * (Debian 13) on Linux 6.11 or later, that first sets up a per-thread
	 * vDSO state with all signals blocked, and the broker's seccomp filter
	 * allows getrandom but not rt_sigprocmask. */
	if (syscall(SYS_getrandom, p->key, sizeof(p->key), 0) !=
	            (long)sizeof(p->key) ||
	    set_index(p, INDEX_MIN) < 0) {
		kg_strpool_free(p);
		return NULL;
	}
	return p;
}

void kg_strpool_free(struct kg_strpool *p)
{
	if (!p)
		return;
	kg_strarena_free(&p->arena);
	kg_chunkarr_free(&p->refs);
	free(p->ctrl);
	free(p->slots);
	free(p);
}

/* Copies s into the arena and gives it the next id. */
static int append(struct kg_strpool *p, const char *s, size_t len, uint32_t *id)
{
	uint32_t ref;
	uint32_t *slot;

	if (p->refs.n >= KG_STRPOOL_NONE ||
	    kg_strarena_add(&p->arena, s, len, &ref) < 0)
		return -1;
	slot = kg_chunkarr_push(&p->refs);
	if (!slot)
		return -1;
	*slot = ref;
	*id = (uint32_t)(p->refs.n - 1);
	return 0;
}

int kg_strpool_intern(struct kg_strpool *p, const char *s, size_t len,
                      uint32_t *id)
{
	uint64_t h;
	uint8_t tag;
	size_t i;

	if (len > KG_STRPOOL_LEN_MAX)
		return -1;
	h = siphash(p->key, s, len);
	tag = tag_of(h);
	for (i = h & p->mask; p->ctrl[i]; i = (i + 1) & p->mask) {
		if (p->ctrl[i] == tag && same(p, p->slots[i], s, len)) {
			*id = p->slots[i];
			return 0;
		}
	}
	if (4 * (p->refs.n + 1) > 3 * (p->mask + 1)) {
		if (set_index(p, 2 * (p->mask + 1)) < 0)
			return -1;
		i = find_empty(p, h);
	}
	if (append(p, s, len, id) < 0)
		return -1;
	p->ctrl[i] = tag;
	p->slots[i] = *id;
	return 0;
}
