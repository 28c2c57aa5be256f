/* SPDX-License-Identifier: MIT */
/* String interning: one id per distinct byte string, exact bytes back,
 * bytewise order, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/strpool.h"

static uint32_t intern(struct kg_strpool *p, const char *s, size_t len)
{
	uint32_t id = KG_STRPOOL_NONE;

	assert_int_equal(kg_strpool_intern(p, s, len, &id), 0);
	assert_int_not_equal(id, KG_STRPOOL_NONE);
	return id;
}

static void assert_str(const struct kg_strpool *p, uint32_t id, const char *s,
                       size_t len)
{
	struct kg_str t = kg_strpool_get(p, id);

	assert_int_equal(t.len, len);
	assert_memory_equal(t.s, s, len);
}

static void test_strpool_same_bytes_same_id(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} strs[] = {
	        {"foo", 3}, {"FOO", 3}, {"foo\0bar", 7}, {"foo\0baz", 7},
	        {"fo", 2},  {"", 0},    {"\xff\x01", 2}, {"foo ", 4},
	};
	struct kg_strpool *p = kg_strpool_new();
	uint32_t ids[sizeof(strs) / sizeof(strs[0])];
	size_t n = sizeof(strs) / sizeof(strs[0]);

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		ids[i] = intern(p, strs[i].s, strs[i].len);
		assert_int_equal(ids[i], i);
	}
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(intern(p, strs[i].s, strs[i].len), ids[i]);
		assert_str(p, ids[i], strs[i].s, strs[i].len);
	}
	kg_strpool_free(p);
}

/* Lengths across the one-, two- and three-byte length headers and up to
 * the limit; one past it is refused. */
static void test_strpool_lengths_and_limit(void **state)
{
	static const size_t lens[] = {1,     127,   128,
	                              16383, 16384, KG_STRPOOL_LEN_MAX};
	struct kg_strpool *p = kg_strpool_new();
	char *buf = malloc(KG_STRPOOL_LEN_MAX + 1);
	uint32_t ids[6];
	uint32_t id;

	(void)state;
	assert_non_null(p);
	assert_non_null(buf);
	for (size_t i = 0; i < 6; i++) {
		memset(buf, 'a' + (int)i, lens[i]);
		ids[i] = intern(p, buf, lens[i]);
	}
	for (size_t i = 0; i < 6; i++) {
		memset(buf, 'a' + (int)i, lens[i]);
		assert_str(p, ids[i], buf, lens[i]);
	}
	assert_int_equal(kg_strpool_intern(p, buf, KG_STRPOOL_LEN_MAX + 1, &id),
	                 -1);
	free(buf);
	kg_strpool_free(p);
}

/* Enough strings to fill several arena chunks and regrow the index. */
static void test_strpool_many_strings(void **state)
{
	enum { N = 200000 };
	struct kg_strpool *p = kg_strpool_new();
	char buf[32];

	(void)state;
	assert_non_null(p);
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned i = 0; i < N; i++) {
			int len =
			        snprintf(buf, sizeof(buf),
			                 "user%u@tenant%u.example", i, i % 10);

			assert_int_equal(intern(p, buf, (size_t)len), i);
		}
	}
	for (unsigned i = 0; i < N; i += 997) {
		int len = snprintf(buf, sizeof(buf), "user%u@tenant%u.example",
		                   i, i % 10);

		assert_str(p, i, buf, (size_t)len);
	}
	kg_strpool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_strpool_same_bytes_same_id),
	        cmocka_unit_test(test_strpool_lengths_and_limit),
	        cmocka_unit_test(test_strpool_many_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
