/* SPDX-License-Identifier: MIT */
/* kg_uidnames: the account names the audit line takes its caller's name
 * from. Lookups by uid in any insertion order, the first name of a uid
 * winning, bounds on names and entries, and a load from this host's
 * passwd database that agrees with getpwuid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "broker/uidnames.h"

#define UID_TOP 4294967295u /* (uid_t)-1 */

struct account {
	uint32_t uid;
	const char *name;
};

struct lookup {
	uint32_t uid;
	const char *name; /* NULL: no entry */
};

struct table_case {
	const char *what;
	struct account add[6];
	size_t n_add;
	struct lookup want[6];
	size_t n_want;
	size_t left_out;
};

static const struct table_case table_cases[] = {
        {"unsorted input is found by uid",
         {{1000, "carol"}, {5, "alice"}, {70000, "bob"}},
         3,
         {{5, "alice"}, {1000, "carol"}, {70000, "bob"}, {6, NULL}},
         4,
         0},
        {"the first name of a uid wins",
         {{0, "root"}, {7, "x"}, {0, "toor"}},
         3,
         {{0, "root"}, {7, "x"}},
         2,
         0},
        {"the first name wins also when it sorts last",
         {{0, "zz"}, {0, "aa"}},
         2,
         {{0, "zz"}},
         1,
         0},
        {"lowest and highest uid",
         {{UID_TOP, "top"}, {0, "bottom"}},
         2,
         {{0, "bottom"}, {UID_TOP, "top"}, {1, NULL}, {UID_TOP - 1, NULL}},
         4,
         0},
        {"an empty name is left out",
         {{3, ""}, {4, "d"}},
         2,
         {{3, NULL}, {4, "d"}},
         2,
         1},
        {"an empty table finds nothing",
         {{0, NULL}},
         0,
         {{0, NULL}, {UID_TOP, NULL}},
         2,
         0},
};

static void check_lookup(const struct kg_uidnames *t, const struct lookup *l,
                         const char *what)
{
	struct kg_str got;
	int found = kg_uidnames_find(t, l->uid, &got);

	if (l->name == NULL) {
		if (found)
			fail_msg("%s: uid %u has name '%.*s'", what, l->uid,
			         (int)got.len, got.s);
		return;
	}
	if (!found)
		fail_msg("%s: uid %u not found", what, l->uid);
	if (got.len != strlen(l->name) || memcmp(got.s, l->name, got.len))
		fail_msg("%s: uid %u is '%.*s', expected '%s'", what, l->uid,
		         (int)got.len, got.s, l->name);
}

static void test_table_lookups(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(table_cases) / sizeof(*table_cases);
	     i++) {
		const struct table_case *c = &table_cases[i];
		struct kg_uidnames t;

		kg_uidnames_init(&t);
		for (size_t k = 0; k < c->n_add; k++)
			assert_int_equal(kg_uidnames_add(&t, c->add[k].uid,
			                                 c->add[k].name),
			                 0);
		assert_int_equal(kg_uidnames_finish(&t), 0);
		for (size_t k = 0; k < c->n_want; k++)
			check_lookup(&t, &c->want[k], c->what);
		if (t.left_out != c->left_out)
			fail_msg("%s: %zu left out, expected %zu", c->what,
			         t.left_out, c->left_out);
		kg_uidnames_free(&t);
	}
}

static void test_name_length_bound(void **state)
{
	char longest[KG_UIDNAME_MAX + 1];
	char too_long[KG_UIDNAME_MAX + 2];
	struct kg_uidnames t;
	struct kg_str got;

	(void)state;
	memset(longest, 'n', KG_UIDNAME_MAX);
	longest[KG_UIDNAME_MAX] = '\0';
	memset(too_long, 'o', KG_UIDNAME_MAX + 1);
	too_long[KG_UIDNAME_MAX + 1] = '\0';
	kg_uidnames_init(&t);
	assert_int_equal(kg_uidnames_add(&t, 1, longest), 0);
	assert_int_equal(kg_uidnames_add(&t, 2, too_long), 0);
	assert_int_equal(kg_uidnames_finish(&t), 0);
	assert_true(kg_uidnames_find(&t, 1, &got));
	assert_int_equal(got.len, KG_UIDNAME_MAX);
	assert_memory_equal(got.s, longest, KG_UIDNAME_MAX);
	assert_false(kg_uidnames_find(&t, 2, &got));
	assert_int_equal(t.left_out, 1);
	kg_uidnames_free(&t);
}

static void test_entry_count_bound(void **state)
{
	struct kg_uidnames t;
	struct kg_str got;
	char name[16];

	(void)state;
	kg_uidnames_init(&t);
	for (size_t i = 0; i < KG_UIDNAMES_MAX + 3; i++) {
		snprintf(name, sizeof(name), "u%zu", i);
		assert_int_equal(kg_uidnames_add(&t, (uid_t)i, name), 0);
	}
	assert_int_equal(kg_uidnames_finish(&t), 0);
	assert_int_equal(t.n, KG_UIDNAMES_MAX);
	assert_int_equal(t.left_out, 3);
	assert_true(kg_uidnames_find(&t, KG_UIDNAMES_MAX - 1, &got));
	assert_false(kg_uidnames_find(&t, KG_UIDNAMES_MAX, &got));
	kg_uidnames_free(&t);
}

/* Every account this host lists has the name getpwuid gives its uid. */
static void test_load_agrees_with_getpwuid(void **state)
{
	struct kg_uidnames t;
	struct passwd *pw;
	size_t checked = 0;

	(void)state;
	kg_uidnames_init(&t);
	assert_int_equal(kg_uidnames_load(&t), 0);
	assert_true(t.n > 0);
	setpwent();
	while ((pw = getpwent()) != NULL) {
		struct passwd *first = getpwuid(pw->pw_uid);
		struct lookup l = {pw->pw_uid, NULL};

		assert_non_null(first);
		l.name = first->pw_name;
		check_lookup(&t, &l, "loaded table");
		checked++;
	}
	endpwent();
	assert_true(checked > 0);
	kg_uidnames_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table_lookups),
	        cmocka_unit_test(test_name_length_bound),
	        cmocka_unit_test(test_entry_count_bound),
	        cmocka_unit_test(test_load_agrees_with_getpwuid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
