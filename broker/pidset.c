/* SPDX-License-Identifier: MIT */
#include "broker/pidset.h"

#include <stdlib.h>
#include <string.h>

#define RADIX_BITS 11
#define RADIX      ((size_t)1 << RADIX_BITS)
/* Directory size: about one bucket per two pids, 2^1 to 2^20 buckets.
 * With at least two buckets, the shift that fits any 32-bit span into the
 * directory stays below 32. */
#define DIR_BITS_MIN 1
#define DIR_BITS_MAX 20
/* Filter size: about eight bits per pid, so that pids spread over a range
 * a few times the set's size mostly fall on clear bits; 2^6 to 2^23 bits
 * (at most 1 MiB). */
#define FILTER_BITS_MIN 6
#define FILTER_BITS_MAX 23

/* LSD radix sort; a pass whose digit is the same for every pid is
 * skipped, which for real pids (below 2^22) drops the last one. */
static int radix_sort(uint32_t *a, size_t n)
{
	uint32_t *tmp = malloc(n * sizeof(*tmp));
	uint32_t *src = a;
	uint32_t *dst = tmp;
	size_t count[RADIX];

	if (!tmp)
		return -1;
	for (unsigned shift = 0; shift < 32; shift += RADIX_BITS) {
		size_t sum = 0;

		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[(src[i] >> shift) & (RADIX - 1)]++;
		if (count[(src[0] >> shift) & (RADIX - 1)] == n)
			continue;
		for (size_t d = 0; d < RADIX; d++) {
			size_t c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i] >> shift) & (RADIX - 1)]++] = src[i];
		dst = src;
		src = src == a ? tmp : a;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
	free(tmp);
	return 0;
}

static size_t unique(uint32_t *a, size_t n)
{
	size_t k = 1;

	for (size_t i = 1; i < n; i++)
		if (a[i] != a[k - 1])
			a[k++] = a[i];
	return k;
}

static int build_dir(struct kg_pidset *s)
{
	uint32_t span = s->pids[s->n - 1] - s->base;
	unsigned dir_bits = DIR_BITS_MIN;
	size_t n_buckets;
	size_t b = 0;

	while (dir_bits < DIR_BITS_MAX && ((size_t)2 << dir_bits) < s->n)
		dir_bits++;
	s->shift = 0;
	while ((span >> s->shift) >> dir_bits)
		s->shift++;
	n_buckets = (size_t)(span >> s->shift) + 1;
	s->dir = malloc((n_buckets + 1) * sizeof(*s->dir));
	if (!s->dir)
		return -1;
	for (size_t i = 0; i < s->n; i++) {
		size_t pb = (s->pids[i] - s->base) >> s->shift;

		while (b <= pb)
			s->dir[b++] = (uint32_t)i;
	}
	s->dir[n_buckets] = (uint32_t)s->n;
	return 0;
}

/* The low bits of a pid index the filter: real pids are allocated
 * mostly in sequence, which spreads them over distinct bits. A crafted
 * dump can set every bit, which only costs the search a lookup makes
 * anyway. */
static int build_filter(struct kg_pidset *s)
{
	unsigned bits = FILTER_BITS_MIN;

	while (bits < FILTER_BITS_MAX && ((size_t)1 << bits) < 8 * s->n)
		bits++;
	s->filter_mask = (uint32_t)(((size_t)1 << bits) - 1);
	s->filter = calloc(((size_t)1 << bits) / 64, sizeof(*s->filter));
	if (!s->filter)
		return -1;
	for (size_t i = 0; i < s->n; i++) {
		uint32_t bit = s->pids[i] & s->filter_mask;

		s->filter[bit / 64] |= (uint64_t)1 << (bit % 64);
	}
	return 0;
}

int kg_pidset_build(struct kg_pidset *s, uint32_t *pids, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->pids = pids;
	if (!n)
		return 0;
	if (n >= UINT32_MAX || radix_sort(pids, n) < 0) {
		kg_pidset_free(s);
		return -1;
	}
	s->n = unique(pids, n);
	s->base = pids[0];
	if (build_dir(s) < 0 || build_filter(s) < 0) {
		kg_pidset_free(s);
		return -1;
	}
	return 0;
}

ptrdiff_t kg_pidset_search(const struct kg_pidset *s, uint32_t pid)
{
	size_t b;
	size_t lo;
	size_t hi;

	if (pid < s->base || pid > s->pids[s->n - 1])
		return -1;
	b = (pid - s->base) >> s->shift;
	lo = s->dir[b];
	hi = s->dir[b + 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->pids[mid] < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n && s->pids[lo] == pid ? (ptrdiff_t)lo : -1;
}

void kg_pidset_free(struct kg_pidset *s)
{
	free(s->pids);
	free(s->dir);
	free(s->filter);
	memset(s, 0, sizeof(*s));
}
