/* SPDX-License-Identifier: MIT */
/* A set of process ids: sorted, unique, with fast membership.
 *
 * A directory over the pid range cuts the sorted array into buckets of a
 * few pids each; a lookup indexes the directory, then searches one bucket
 * by bisection. However the pids are spread, a lookup costs at most
 * O(log n): there is no hash for a crafted dump to aim at. */
#ifndef KG_PIDSET_H
#define KG_PIDSET_H

#include <stddef.h>
#include <stdint.h>

struct kg_pidset {
	uint32_t *pids; /* ascending, unique */
	size_t n;
	uint32_t *dir;  /* bucket b holds pids[dir[b] .. dir[b + 1]) */
	uint32_t base;  /* pids[0] */
	unsigned shift; /* bucket of pid: (pid - base) >> shift */
	/* Bit (pid & filter_mask) is set for every pid in the set: most
	 * absent pids are turned away by one bit, without the search. */
	uint64_t *filter;
	uint32_t filter_mask;
};

/* Builds the set from pids[0..n), a malloc'd array the set takes over
 * (also on failure). -1 on allocation failure. */
int kg_pidset_build(struct kg_pidset *s, uint32_t *pids, size_t n);
/* The index of pid in s->pids, or -1; for a set that is not empty. */
ptrdiff_t kg_pidset_search(const struct kg_pidset *s, uint32_t pid);

/* The index of pid in s->pids, or -1. Inline, so that the pids the
 * filter turns away, most absent ones, cost no call. */
static inline ptrdiff_t kg_pidset_find(const struct kg_pidset *s, uint32_t pid)
{
	uint32_t bit = pid & s->filter_mask;

	if (!s->n || !(s->filter[bit / 64] >> (bit % 64) & 1))
		return -1;
	return kg_pidset_search(s, pid);
}

void kg_pidset_free(struct kg_pidset *s);

#endif
