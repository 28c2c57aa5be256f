/* SPDX-License-Identifier: MIT */
/* Open addressing with linear probing, kept at most half full. */
#include "broker/unitmap.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct unit_slot {
	uint64_t hash; /* of the user */
	uint32_t pid;  /* 0: empty */
	uint32_t unit;
};

/* splitmix64's finalizer: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9u;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static uint64_t hash_user(uint64_t key, const char *s, size_t len)
{
	uint64_t h = key ^ len;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		h = mix64(h ^ w);
	}
	if (i < len) {
		uint64_t w = 0;

		memcpy(&w, s + i, len - i);
		h = mix64(h ^ w ^ 0x8000000000000000u);
	}
	return mix64(h);
}

/* The broker's filter allows the clock, not getrandom: its nanoseconds
 * and the map's address are what an outsider cannot predict. */
void kg_unitmap_init(struct kg_unitmap *m)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	*m = (struct kg_unitmap){0};
	m->key = mix64((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
	               (uint64_t)(uintptr_t)m);
}

static size_t slot_of(const struct kg_unitmap *m, uint64_t hash, uint32_t pid)
{
	return (size_t)mix64(hash ^ pid) & (m->cap - 1);
}

static struct unit_slot *probe(struct unit_slot *slots, size_t cap, size_t at,
                               uint64_t hash, uint32_t pid)
{
	for (;; at = (at + 1) & (cap - 1)) {
		struct unit_slot *s = &slots[at];

		if (s->pid == 0 || (s->pid == pid && s->hash == hash))
			return s;
	}
}

static int grow(struct kg_unitmap *m)
{
	size_t cap = m->cap ? 2 * m->cap : 64;
	struct unit_slot *slots = calloc(cap, sizeof(*slots));
	struct kg_unitmap bigger = *m;

	if (!slots)
		return -1;
	bigger.slots = slots;
	bigger.cap = cap;
	for (size_t i = 0; i < m->cap; i++) {
		const struct unit_slot *s = &m->slots[i];

		if (s->pid != 0)
			*probe(slots, cap, slot_of(&bigger, s->hash, s->pid),
			       s->hash, s->pid) = *s;
	}
	free(m->slots);
	*m = bigger;
	return 0;
}

uint64_t kg_unitmap_hash(const struct kg_unitmap *m, const char *user,
                         size_t user_len)
{
	return hash_user(m->key, user, user_len);
}

uint32_t kg_unitmap_get(struct kg_unitmap *m, uint32_t pid, uint64_t hash)
{
	struct unit_slot *s;

	if (pid == 0 || ((m->n + 1) * 2 > m->cap && grow(m) < 0))
		return 0;
	s = probe(m->slots, m->cap, slot_of(m, hash, pid), hash, pid);
	if (s->pid != 0)
		return s->unit;
	/* Unit numbers stand in for pids: 1..INT_MAX. */
	if (m->n == INT32_MAX)
		return 0;
	*s = (struct unit_slot){hash, pid, (uint32_t)++m->n};
	return s->unit;
}

void kg_unitmap_free(struct kg_unitmap *m)
{
	free(m->slots);
	*m = (struct kg_unitmap){0};
}
