/* SPDX-License-Identifier: MIT */
/* The broker's merge sort: ordered, a permutation of its input, stable,
 * for every length around its insertion-run and merge-pass boundaries and
 * for inputs that are random, sorted, reversed, constant or sawtooth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/msort.h"

/* An element with a key to sort by and its original position, to see
 * that equal keys keep their order. */
struct elem {
	uint32_t key;
	uint32_t seq;
	char pad[16]; /* an element size that is not a power of two */
};

enum pattern { RANDOM, SORTED, REVERSED, CONSTANT, SAWTOOTH, FEW_KEYS };

static uint32_t key_for(enum pattern p, size_t i, size_t n, uint32_t *rng)
{
	*rng = *rng * 1103515245u + 12345u;
	switch (p) {
	case RANDOM:
		return *rng >> 8;
	case SORTED:
		return (uint32_t)i;
	case REVERSED:
		return (uint32_t)(n - i);
	case CONSTANT:
		return 7;
	case SAWTOOTH:
		return (uint32_t)(i % 13);
	case FEW_KEYS:
		return (*rng >> 16) % 3;
	}
	return 0;
}

static int cmp_elems(const void *a, const void *b, void *ctx)
{
	const struct elem *x = a;
	const struct elem *y = b;
	size_t *calls = ctx;

	(*calls)++;
	return (x->key > y->key) - (x->key < y->key);
}

/* The reference order: by key, then by original position. */
static int cmp_ref(const void *a, const void *b)
{
	const struct elem *x = a;
	const struct elem *y = b;

	if (x->key != y->key)
		return (x->key > y->key) - (x->key < y->key);
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Comparisons stay within n * (log2(n) + insertion runs' worst case). */
static size_t max_calls(size_t n)
{
	size_t log2n = 0;

	while (((size_t)1 << log2n) < n)
		log2n++;
	return n * (log2n + 8);
}

static void check_sort(size_t n, enum pattern p)
{
	struct elem *v = calloc(n + 1, sizeof(*v));
	struct elem *want = calloc(n + 1, sizeof(*want));
	struct elem *scratch = calloc(n + 1, sizeof(*scratch));
	uint32_t rng = (uint32_t)(n * 31 + p);
	size_t calls = 0;

	assert_non_null(v);
	assert_non_null(want);
	assert_non_null(scratch);
	for (size_t i = 0; i < n; i++) {
		v[i].key = key_for(p, i, n, &rng);
		v[i].seq = (uint32_t)i;
		memset(v[i].pad, (int)(i & 0xff), sizeof(v[i].pad));
	}
	memcpy(want, v, n * sizeof(*v));
	qsort(want, n, sizeof(*want), cmp_ref);
	kg_msort(v, scratch, n, sizeof(*v), cmp_elems, &calls);
	assert_memory_equal(v, want, n * sizeof(*v));
	assert_true(calls <= max_calls(n));
	free(v);
	free(want);
	free(scratch);
}

static void test_msort_orders_stably_for_all_lengths_and_patterns(void **state)
{
	static const size_t lengths[] = {0,   1,   2,    3,    7,    8,    9,
	                                 15,  16,  17,   31,   33,   100,  255,
	                                 256, 257, 1000, 4095, 4097, 20000};
	static const enum pattern patterns[] = {RANDOM,   SORTED,   REVERSED,
	                                        CONSTANT, SAWTOOTH, FEW_KEYS};

	(void)state;
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
		for (size_t j = 0; j < sizeof(patterns) / sizeof(patterns[0]);
		     j++)
			check_sort(lengths[i], patterns[j]);
}

static int cmp_u32(const void *a, const void *b, void *ctx)
{
	uint32_t x, y;

	(void)ctx;
	memcpy(&x, a, sizeof(x));
	memcpy(&y, b, sizeof(y));
	return (x > y) - (x < y);
}

static void test_msort_small_elements(void **state)
{
	uint32_t v[] = {9, 3, 3, 0, 4294967295u, 12, 1, 7, 3, 8, 2};
	const uint32_t want[] = {0, 1, 2, 3, 3, 3, 7, 8, 9, 12, 4294967295u};
	uint32_t scratch[sizeof(v) / sizeof(v[0])];

	(void)state;
	kg_msort(v, scratch, sizeof(v) / sizeof(v[0]), sizeof(v[0]), cmp_u32,
	         NULL);
	assert_memory_equal(v, want, sizeof(want));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_msort_orders_stably_for_all_lengths_and_patterns),
	        cmocka_unit_test(test_msort_small_elements),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
