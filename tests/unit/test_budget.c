/* SPDX-License-Identifier: MIT */
/* The hourly budget's ledger, on a clock the test sets: a kick counts
 * for at least 60 and at most 61 minutes, per caller and rule, and the
 * ledger keeps only callers who kicked within that window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker/budget.h"

#define MINUTE 60000

static size_t entry(struct kg_budget *b, uid_t uid, size_t rule, int64_t now)
{
	size_t i;

	assert_int_equal(kg_budget_find(b, uid, rule, now, &i), 0);
	return i;
}

/* A kick made at any moment of a minute counts until that minute is 61
 * minutes old: no 60 minutes ever hold more than the budget. */
static void test_window_edges(void **state)
{
	static const int64_t within_minute[] = {0, 1, MINUTE / 2, MINUTE - 1};
	struct kg_budget b = {0};

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		int64_t at = 100 * MINUTE + within_minute[k];
		size_t i = entry(&b, 1000, 0, at);

		kg_budget_charge(&b, i, at, 3);
		assert_int_equal(kg_budget_used(&b, i, at + 60 * MINUTE - 1),
		                 3);
		assert_int_equal(kg_budget_used(&b, i, 161 * MINUTE - 1), 3);
		assert_int_equal(kg_budget_used(&b, i, 161 * MINUTE), 0);
		kg_budget_free(&b);
	}
}

/* Kicks spread over the hour leave it one minute at a time. */
static void test_sliding(void **state)
{
	struct kg_budget b = {0};
	size_t i = entry(&b, 1000, 0, 0);

	(void)state;
	kg_budget_charge(&b, i, 0, 1);
	kg_budget_charge(&b, i, 10 * MINUTE, 2);
	kg_budget_charge(&b, i, 10 * MINUTE + 5, 4);
	kg_budget_charge(&b, i, 59 * MINUTE, 8);
	assert_int_equal(kg_budget_used(&b, i, 60 * MINUTE), 15);
	assert_int_equal(kg_budget_used(&b, i, 61 * MINUTE), 14);
	assert_int_equal(kg_budget_used(&b, i, 71 * MINUTE), 8);
	assert_int_equal(kg_budget_used(&b, i, 119 * MINUTE), 8);
	assert_int_equal(kg_budget_used(&b, i, 120 * MINUTE), 0);
	/* A long silence clears every minute at once. */
	kg_budget_charge(&b, i, 500 * MINUTE, 5);
	assert_int_equal(kg_budget_used(&b, i, 10000 * MINUTE), 0);
	kg_budget_free(&b);
}

/* Each caller has a budget of their own under each rule. */
static void test_per_caller_per_rule(void **state)
{
	struct kg_budget b = {0};
	size_t a0 = entry(&b, 1000, 0, 0), a1 = entry(&b, 1000, 1, 0);
	size_t b0 = entry(&b, 1001, 0, 0);

	(void)state;
	assert_true(a0 != a1 && a0 != b0 && a1 != b0);
	kg_budget_charge(&b, a0, 0, 2);
	assert_int_equal(entry(&b, 1000, 0, MINUTE), a0);
	assert_int_equal(kg_budget_used(&b, a0, MINUTE), 2);
	assert_int_equal(kg_budget_used(&b, a1, MINUTE), 0);
	assert_int_equal(kg_budget_used(&b, b0, MINUTE), 0);
	kg_budget_free(&b);
}

/* A caller whose kicks have all left the window gives up their entry
 * to the next caller, so the ledger does not grow with every caller
 * ever seen. */
static void test_expired_entries_are_reused(void **state)
{
	struct kg_budget b = {0};

	(void)state;
	for (uid_t uid = 0; uid < 100; uid++) {
		int64_t now = (int64_t)uid * 61 * MINUTE;
		size_t i = entry(&b, uid, 0, now);

		kg_budget_charge(&b, i, now, 1);
		assert_int_equal(kg_budget_used(&b, i, now), 1);
	}
	assert_int_equal(b.n, 1);
	kg_budget_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_window_edges),
	        cmocka_unit_test(test_sliding),
	        cmocka_unit_test(test_per_caller_per_rule),
	        cmocka_unit_test(test_expired_entries_are_reused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
