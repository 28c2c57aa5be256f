/* SPDX-License-Identifier: MIT */
/* kg_glob_match and kg_glob_normalize. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "proto/glob.h"
#include "proto/globparse.h"
#include "tests/reference/glob_reference.h"

struct match_case {
	const char *glob;
	const char *name;
	bool match;
};

static const struct match_case match_cases[] = {
        {"", "", true},
        {"", "a", false},
        {"a", "", false},
        {"*", "", true},
        {"*", "anything@at.all", true},
        {"**", "", true},
        {"?", "a", true},
        {"?", "", false},
        {"?", "ab", false},
        {"ba?", "bar", true},
        {"ba?", "BAZ", true},
        {"ba?", "ba", false},
        {"foo@example.org", "Foo@Example.ORG", true},
        {"FOO", "foo", true},
        {"foo", "fo", false},
        {"foo", "fooo", false},
        {"*@tenant-a.example", "alice@tenant-a.example", true},
        {"*@tenant-a.example", "ALICE@Tenant-A.Example", true},
        {"*@tenant-a.example", "alice@tenant-b.example", false},
        {"*@tenant-a.example", "alice@tenant-a.example.evil", false},
        {"*@tenant-a.example", "@tenant-a.example", true},
        {"a*b*c", "aXbYc", true},
        {"a*b*c", "abc", true},
        {"a*b*c", "acb", false},
        {"*ab", "aab", true},
        {"*a*a*b", "aaaab", true},
        {"*a*a*b", "aaaa", false},
        {"a*", "a", true},
        {"*a", "ba", true},
        {"*a", "ab", false},
        {"?*?", "a", false},
        {"?*?", "ab", true},
        /* Only ASCII letters fold. */
        {"@", "`", false},
        {"[", "{", false},
        {"\xc3\xb6", "\xc3\x96", false},
        /* '?' is one byte, not one character. */
        {"?", "\xc3\xb6", false},
        {"??", "\xc3\xb6", true},
        /* No escapes: a backslash is an ordinary byte. */
        {"a\\*", "a\\bc", true},
        {"a\\*", "a*", false},
        /* User names from anvil may hold '/'. */
        {"*/x", "a/b/x", true},
};

static void test_glob_match_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]);
	     i++) {
		const struct match_case *c = &match_cases[i];
		bool got = kg_glob_match(c->glob, strlen(c->glob), c->name,
		                         strlen(c->name));

		if (got != c->match)
			fail_msg("'%s' vs '%s': expected %d", c->glob, c->name,
			         c->match);
	}
}

/* Lengths bound both sides: bytes past them are not part of the strings. */
static void test_glob_match_uses_lengths(void **state)
{
	(void)state;
	assert_true(kg_glob_match("abX", 2, "abY", 2));
	assert_false(kg_glob_match("ab", 2, "abc", 3));
	assert_true(kg_glob_match("a\0b", 3, "a\0B", 3));
	assert_false(kg_glob_match("a\0b", 3, "a", 1));
}

/* The longest glob and name the exhaustive comparison tries. */
#define SHORT_MAX 5

/* Writes the index-th string over alphabet of length len. */
static void nth_string(size_t index, const char *alphabet, size_t len,
                       char *out)
{
	size_t k = strlen(alphabet);

	for (size_t i = 0; i < len; i++) {
		out[i] = alphabet[index % k];
		index /= k;
	}
}

static size_t power(size_t base, size_t exp)
{
	size_t r = 1;

	while (exp-- > 0)
		r *= base;
	return r;
}

/* Every glob over {a, B, *, ?} up to 5 bytes against every name over
 * {A, b, c} up to 5 bytes agrees with the reference definition. */
static void test_glob_match_agrees_with_reference(void **state)
{
	static const char galpha[] = "aB*?", nalpha[] = "Abc";
	/* One spare byte: gcc -O3 cannot see that a length never passes
	 * SHORT_MAX and warns of an overflow otherwise. */
	char g[SHORT_MAX + 1], n[SHORT_MAX + 1];

	(void)state;
	for (size_t gl = 0; gl <= SHORT_MAX; gl++) {
		for (size_t gi = 0; gi < power(4, gl); gi++) {
			nth_string(gi, galpha, gl, g);
			for (size_t nl = 0; nl <= SHORT_MAX; nl++) {
				for (size_t ni = 0; ni < power(3, nl); ni++) {
					nth_string(ni, nalpha, nl, n);
					if (kg_glob_match(g, gl, n, nl) !=
					    glob_reference_match(g, gl, n, nl))
						fail_msg("'%.*s' vs '%.*s'",
						         (int)gl, g, (int)nl,
						         n);
				}
			}
		}
	}
}

static double now_seconds(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "a*a*a...*a*b" (255 bytes, 127 stars) against 255 'a's: the worst case
 * of a backtracking matcher must stay polynomial and fast. */
static void test_glob_match_many_stars_is_fast(void **state)
{
	enum { RUNS = 1000 };
	char glob[KG_GLOB_MAX], name[KG_GLOB_MAX];
	size_t matches = 0;
	double start, per_run;

	(void)state;
	glob[0] = 'a';
	for (size_t i = 1; i < sizeof(glob); i++)
		glob[i] = i % 2 == 1 ? '*' : 'a';
	glob[sizeof(glob) - 1] = 'b';
	memset(name, 'a', sizeof(name));

	start = now_seconds();
	for (int i = 0; i < RUNS; i++)
		matches +=
		        kg_glob_match(glob, sizeof(glob), name, sizeof(name));
	per_run = (now_seconds() - start) / RUNS;

	assert_int_equal(matches, 0);
	if (per_run >= 1e-3)
		fail_msg("%.3f ms per match", per_run * 1e3);
}

struct norm_case {
	const char *in;
	size_t len;
	enum kg_glob_err err;
	const char *out;
};

#define N(lit, err, out)                                                       \
	{                                                                      \
		lit, sizeof(lit) - 1, err, out                                 \
	}

static const struct norm_case norm_cases[] = {
        N("ba?", KG_GLOB_OK, "ba?"),
        N("Foo@Example.ORG", KG_GLOB_OK, "foo@example.org"),
        N("**@x**", KG_GLOB_OK, "*@x*"),
        N("*", KG_GLOB_OK, "*"),
        N("a***b?**?", KG_GLOB_OK, "a*b?*?"),
        N("J\xc3\x96RG", KG_GLOB_OK, "j\xc3\x96rg"),
        N("@[`{", KG_GLOB_OK, "@[`{"),
        N("", KG_GLOB_EMPTY, ""),
        N("a\tb", KG_GLOB_BAD_BYTE, ""),
        N("\xff\xfe", KG_GLOB_BAD_BYTE, ""),
        N("a\0b", KG_GLOB_BAD_BYTE, ""),
        N("a\x7f", KG_GLOB_BAD_BYTE, ""),
        N("\xc0\xaf", KG_GLOB_BAD_BYTE, ""),
};

static void check_norm(const char *in, size_t len, enum kg_glob_err err,
                       const char *expect)
{
	char out[KG_GLOB_MAX + 1];
	size_t out_len = 999;

	memset(out, 'x', sizeof(out));
	assert_int_equal(kg_glob_normalize(in, len, out, &out_len), err);
	assert_int_equal(out_len, strlen(expect));
	assert_string_equal(out, expect);
}

static void test_glob_normalize_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++)
		check_norm(norm_cases[i].in, norm_cases[i].len,
		           norm_cases[i].err, norm_cases[i].out);
}

/* The limit applies to the input as given, before '*' runs collapse. */
static void test_glob_normalize_length_limit(void **state)
{
	char in[KG_GLOB_MAX + 2], expect[KG_GLOB_MAX + 1];

	(void)state;
	memset(in, 'a', sizeof(in));
	memset(expect, 'a', KG_GLOB_MAX);
	expect[KG_GLOB_MAX] = '\0';
	check_norm(in, KG_GLOB_MAX, KG_GLOB_OK, expect);
	check_norm(in, KG_GLOB_MAX + 1, KG_GLOB_TOO_LONG, "");

	memset(in, '*', sizeof(in));
	check_norm(in, KG_GLOB_MAX + 1, KG_GLOB_TOO_LONG, "");
	in[KG_GLOB_MAX + 1] = '\n';
	check_norm(in, KG_GLOB_MAX + 2, KG_GLOB_TOO_LONG, "");
	check_norm(in, KG_GLOB_MAX, KG_GLOB_OK, "*");
}

static void test_glob_strerror_distinct(void **state)
{
	static const enum kg_glob_err errs[] = {
	        KG_GLOB_OK, KG_GLOB_EMPTY, KG_GLOB_TOO_LONG, KG_GLOB_BAD_BYTE,
	        (enum kg_glob_err)99};
	const size_t n = sizeof(errs) / sizeof(errs[0]);

	(void)state;
	assert_string_equal(kg_glob_strerror(KG_GLOB_TOO_LONG),
	                    "is longer than 255 bytes");
	for (size_t i = 0; i < n; i++) {
		assert_non_null(kg_glob_strerror(errs[i]));
		assert_true(strlen(kg_glob_strerror(errs[i])) > 0);
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(kg_glob_strerror(errs[i]),
			                        kg_glob_strerror(errs[j]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_glob_match_table),
	        cmocka_unit_test(test_glob_match_uses_lengths),
	        cmocka_unit_test(test_glob_match_agrees_with_reference),
	        cmocka_unit_test(test_glob_match_many_stars_is_fast),
	        cmocka_unit_test(test_glob_normalize_table),
	        cmocka_unit_test(test_glob_normalize_length_limit),
	        cmocka_unit_test(test_glob_strerror_distinct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
