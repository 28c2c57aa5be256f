/* SPDX-License-Identifier: MIT */
#include "broker/msort.h"

#include <stdbool.h>
#include <string.h>

/* Runs this long are sorted by insertion before the merging starts. */
#define SMALL_RUN 8

struct sorting {
	size_t size;
	kg_cmp_fn cmp;
	void *ctx;
};

static char *at(char *base, size_t i, const struct sorting *s)
{
	return base + i * s->size;
}

/* Copies one element. The sizes sorted most are spelled out, so that the
 * copy compiles to a few moves instead of a call. */
static void copy_elem(char *dst, const char *src, size_t size)
{
	switch (size) {
	case 4:
		memcpy(dst, src, 4);
		break;
	case 16:
		memcpy(dst, src, 16);
		break;
	case 24:
		memcpy(dst, src, 24);
		break;
	case 32:
		memcpy(dst, src, 32);
		break;
	default:
		memcpy(dst, src, size);
	}
}

/* tmp holds one element. */
static void insertion_sort(char *a, size_t n, char *tmp,
                           const struct sorting *s)
{
	for (size_t i = 1; i < n; i++) {
		size_t j = i;

		if (s->cmp(at(a, i - 1, s), at(a, i, s), s->ctx) <= 0)
			continue;
		copy_elem(tmp, at(a, i, s), s->size);
		while (j > 0 && s->cmp(at(a, j - 1, s), tmp, s->ctx) > 0) {
			copy_elem(at(a, j, s), at(a, j - 1, s), s->size);
			j--;
		}
		copy_elem(at(a, j, s), tmp, s->size);
	}
}

/* Merges src[lo, mid) and src[mid, hi) into dst[lo, hi); on equal
 * elements the left one goes first, which keeps the sort stable. */
static void merge(char *src, char *dst, size_t lo, size_t mid, size_t hi,
                  const struct sorting *s)
{
	size_t i = lo, j = mid, k = lo;

	while (i < mid && j < hi) {
		bool right = s->cmp(at(src, j, s), at(src, i, s), s->ctx) < 0;

		copy_elem(at(dst, k++, s), at(src, right ? j++ : i++, s),
		          s->size);
	}
	memcpy(at(dst, k, s), at(src, i, s), (mid - i) * s->size);
	k += mid - i;
	memcpy(at(dst, k, s), at(src, j, s), (hi - j) * s->size);
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

void kg_msort(void *base, void *scratch, size_t n, size_t size, kg_cmp_fn cmp,
              void *ctx)
{
	const struct sorting s = {.size = size, .cmp = cmp, .ctx = ctx};
	char *src = base;
	char *dst = scratch;

	if (n < 2)
		return;
	for (size_t lo = 0; lo < n; lo += SMALL_RUN)
		insertion_sort(at(src, lo, &s), min_size(SMALL_RUN, n - lo),
		               dst, &s);
	/* Each pass doubles the sorted width, so there are at most
	 * log2(n / SMALL_RUN) + 1 passes. */
	for (size_t width = SMALL_RUN; width < n; width *= 2) {
		char *t;

		for (size_t lo = 0; lo < n; lo += min_size(2 * width, n - lo)) {
			size_t mid = lo + min_size(width, n - lo);
			size_t hi = mid + min_size(width, n - mid);

			merge(src, dst, lo, mid, hi, &s);
		}
		t = src;
		src = dst;
		dst = t;
	}
	if (src != base)
		memcpy(base, src, n * size);
}
