/* SPDX-License-Identifier: MIT */
/* The unit map of Dovecot 2.4 kicks: one number per user in a process,
 * in order of first sight, whatever the user's bytes, through growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/unitmap.h"

#define LIT(s) s, sizeof(s) - 1

static uint32_t unit_of(struct kg_unitmap *m, uint32_t pid, const char *user,
                        size_t len)
{
	return kg_unitmap_get(m, pid, kg_unitmap_hash(m, user, len));
}

static void test_units_in_order_of_first_sight(void **state)
{
	struct kg_unitmap m;

	(void)state;
	kg_unitmap_init(&m);
	assert_int_equal(unit_of(&m, 8214, LIT("foo")), 1);
	assert_int_equal(unit_of(&m, 8214, LIT("bar")), 2);
	assert_int_equal(unit_of(&m, 8214, LIT("foo")), 1);
	/* The same user in another process is another unit. */
	assert_int_equal(unit_of(&m, 8226, LIT("bar")), 3);
	assert_int_equal(unit_of(&m, 8214, LIT("bar")), 2);
	assert_int_equal(unit_of(&m, 2147483647, LIT("bar")), 4);
	assert_int_equal(unit_of(&m, 8226, LIT("bar")), 3);
	assert_int_equal(m.n, 4);
	kg_unitmap_free(&m);
	assert_int_equal(m.n, 0);
	assert_null(m.slots);
}

/* A user is its exact bytes: case, a trailing NUL, a difference only in
 * the second 8-byte word or in the last bytes make other users. */
static void test_users_are_their_exact_bytes(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} users[] = {
	        {LIT("")},
	        {LIT("a")},
	        {LIT("A")},
	        {LIT("a\0")},
	        {LIT("a\0\0")},
	        {LIT("\0")},
	        {LIT("user1234@tenant-a")},
	        {LIT("user1234@tenant-b")},
	        {LIT("user1234@uenant-a")},
	        {LIT("user1234")},
	        {LIT("user1234\0")},
	        {LIT("user1235")},
	        {LIT("\xff\xff\xff\xff\xff\xff\xff\xff")},
	        {LIT("\xff\xff\xff\xff\xff\xff\xff\xff\xff")},
	};
	size_t n = sizeof(users) / sizeof(users[0]);
	struct kg_unitmap m;

	(void)state;
	kg_unitmap_init(&m);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(unit_of(&m, 7, users[i].s, users[i].len),
		                 i + 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(unit_of(&m, 7, users[i].s, users[i].len),
		                 i + 1);
	kg_unitmap_free(&m);
}

/* Pid 0 is no process: it gets no unit and takes no number. */
static void test_pid_zero_has_no_unit(void **state)
{
	struct kg_unitmap m;

	(void)state;
	kg_unitmap_init(&m);
	assert_int_equal(unit_of(&m, 0, LIT("foo")), 0);
	assert_int_equal(unit_of(&m, 1, LIT("foo")), 1);
	assert_int_equal(m.n, 1);
	kg_unitmap_free(&m);
}

/* Many units, across many growths, keep their numbers; the map stays
 * at most half full. */
static void test_growth_keeps_numbers(void **state)
{
	enum { N = 100000 };
	struct kg_unitmap m;
	char user[32];

	(void)state;
	kg_unitmap_init(&m);
	for (uint32_t i = 0; i < N; i++) {
		/* A few users in each of many processes. */
		int len = snprintf(user, sizeof(user), "user%u", i % 7);

		assert_int_equal(unit_of(&m, 1000 + i / 7, user, (size_t)len),
		                 i + 1);
	}
	assert_int_equal(m.n, N);
	assert_true(m.cap >= 2 * m.n);
	for (uint32_t i = N; i-- > 0;) {
		int len = snprintf(user, sizeof(user), "user%u", i % 7);

		assert_int_equal(unit_of(&m, 1000 + i / 7, user, (size_t)len),
		                 i + 1);
	}
	assert_int_equal(m.n, N);
	kg_unitmap_free(&m);
}

/* Each map draws its own key, so that names chosen to collide in one do
 * not in the next; a freed map starts again from 1. */
static void test_keys_per_map(void **state)
{
	struct kg_unitmap a, b;

	(void)state;
	kg_unitmap_init(&a);
	kg_unitmap_init(&b);
	assert_true(a.key != b.key);
	assert_int_equal(unit_of(&a, 5, LIT("x")), 1);
	kg_unitmap_free(&a);
	kg_unitmap_init(&a);
	assert_int_equal(unit_of(&a, 6, LIT("y")), 1);
	assert_int_equal(unit_of(&a, 5, LIT("x")), 2);
	kg_unitmap_free(&a);
	kg_unitmap_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_units_in_order_of_first_sight),
	        cmocka_unit_test(test_users_are_their_exact_bytes),
	        cmocka_unit_test(test_pid_zero_has_no_unit),
	        cmocka_unit_test(test_growth_keeps_numbers),
	        cmocka_unit_test(test_keys_per_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
