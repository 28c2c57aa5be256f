/* SPDX-License-Identifier: MIT */
/* The pid set: sorted, unique, and every lookup right however the pids
 * are spread over the 32-bit range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/pidset.h"

#define MAX_IN 12

struct pid_case {
	const char *name;
	uint32_t in[MAX_IN];
	size_t n_in;
	uint32_t want[MAX_IN]; /* sorted, unique */
	size_t n_want;
	uint32_t absent[4]; /* values not in the set */
};

static const struct pid_case cases[] = {
        {"one pid", {42}, 1, {42}, 1, {0, 41, 43, UINT32_MAX}},
        {"duplicates and disorder",
         {9, 3, 9, 1, 3, 3, 7},
         7,
         {1, 3, 7, 9},
         4,
         {0, 2, 8, 10}},
        {"the extremes of the range",
         {UINT32_MAX, 0, 2147483647, 1},
         4,
         {0, 1, 2147483647, UINT32_MAX},
         4,
         {2, 2147483646, 2147483648u, UINT32_MAX - 1}},
        {"dense run then one far outlier",
         {100, 101, 102, 103, 104, 105, 106, 107, 4000000000u},
         9,
         {100, 101, 102, 103, 104, 105, 106, 107, 4000000000u},
         9,
         {99, 108, 3999999999u, 4000000001u}},
        {"all equal", {5, 5, 5, 5}, 4, {5}, 1, {4, 6, 0, 1}},
};

static void check_case(const struct pid_case *tc)
{
	struct kg_pidset s;
	uint32_t *pids = malloc(tc->n_in * sizeof(*pids));

	print_message("case: %s\n", tc->name);
	assert_non_null(pids);
	memcpy(pids, tc->in, tc->n_in * sizeof(*pids));
	assert_int_equal(kg_pidset_build(&s, pids, tc->n_in), 0);
	assert_int_equal(s.n, tc->n_want);
	for (size_t i = 0; i < tc->n_want; i++) {
		assert_int_equal(s.pids[i], tc->want[i]);
		assert_int_equal(kg_pidset_find(&s, tc->want[i]), i);
	}
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(kg_pidset_find(&s, tc->absent[i]), -1);
	kg_pidset_free(&s);
}

static void test_pidset_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

static void test_pidset_empty(void **state)
{
	struct kg_pidset s;

	(void)state;
	assert_int_equal(kg_pidset_build(&s, NULL, 0), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(kg_pidset_find(&s, 1), -1);
	kg_pidset_free(&s);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a;
	uint32_t y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Random sets, dense and sparse, against a sorted copy and bsearch. */
static void test_pidset_random_against_bsearch(void **state)
{
	enum { N = 100000 };
	static const uint32_t ranges[] = {50, 4194304, 2147483647u, UINT32_MAX};
	uint64_t seed = 99;

	(void)state;
	for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
		uint32_t *pids = malloc(N * sizeof(*pids));
		uint32_t *ref = malloc(N * sizeof(*ref));
		struct kg_pidset s;
		size_t n_ref = 0;

		assert_non_null(pids);
		assert_non_null(ref);
		for (size_t i = 0; i < N; i++) {
			seed = seed * 6364136223846793005ULL + 1;
			pids[i] = (uint32_t)((seed >> 32) % ranges[r]);
			ref[i] = pids[i];
		}
		qsort(ref, N, sizeof(*ref), cmp_u32);
		for (size_t i = 0; i < N; i++)
			if (!n_ref || ref[i] != ref[n_ref - 1])
				ref[n_ref++] = ref[i];
		assert_int_equal(kg_pidset_build(&s, pids, N), 0);
		assert_int_equal(s.n, n_ref);
		assert_memory_equal(s.pids, ref, n_ref * sizeof(*ref));
		for (size_t i = 0; i < 2 * N; i++) {
			uint32_t probe;
			uint32_t *hit;

			seed = seed * 6364136223846793005ULL + 1;
			probe = (uint32_t)((seed >> 32) % ranges[r]);
			hit = bsearch(&probe, ref, n_ref, sizeof(*ref),
			              cmp_u32);
			assert_int_equal(kg_pidset_find(&s, probe),
			                 hit ? hit - ref : -1);
		}
		free(ref);
		kg_pidset_free(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pidset_table),
	        cmocka_unit_test(test_pidset_empty),
	        cmocka_unit_test(test_pidset_random_against_bsearch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
