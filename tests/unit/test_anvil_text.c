/* SPDX-License-Identifier: MIT */
/* What both anvil protocols write alike: strict decimals, the \001
 * escapes both ways, and lines written until they no longer fit. (The
 * address reader is compared with inet_pton by fuzz_anvil_addr.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "broker/anvil_text.h"

#define LIT(s) s, sizeof(s) - 1

static void test_decimals_are_strict(void **state)
{
	static const struct {
		const char *s;
		uint32_t max;
		bool ok;
		uint32_t v;
	} cases[] = {
	        {"1", 1, true, 1},
	        {"2", 1, false, 0},
	        {"4294967295", UINT32_MAX, true, UINT32_MAX},
	        {"4294967296", UINT32_MAX, false, 0},
	        {"9999999999", UINT32_MAX, false, 0},
	        {"10000000000", UINT32_MAX, false, 0},
	        {"2147483647", INT32_MAX, true, INT32_MAX},
	        {"2147483648", INT32_MAX, false, 0},
	        {"0", UINT32_MAX, false, 0},
	        {"01", UINT32_MAX, false, 0},
	        {"", UINT32_MAX, false, 0},
	        {"+1", UINT32_MAX, false, 0},
	        {"-1", UINT32_MAX, false, 0},
	        {" 1", UINT32_MAX, false, 0},
	        {"1 ", UINT32_MAX, false, 0},
	        {"1a", UINT32_MAX, false, 0},
	        {"\xd9\xa1", UINT32_MAX, false, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t v = 77;

		print_message("\"%s\"\n", cases[i].s);
		assert_int_equal(kg_anvil_dec(cases[i].s, strlen(cases[i].s),
		                              cases[i].max, &v),
		                 cases[i].ok);
		assert_int_equal(v, cases[i].ok ? cases[i].v : 77);
	}
}

/* Exactly \001 TAB LF CR NUL are escaped, and each code reads back as
 * its byte; every other byte stands for itself. */
static void test_escapes_both_ways(void **state)
{
	static const char escaped[] = {'\001', '\t', '\n', '\r', '\0'};

	(void)state;
	for (int b = 0; b < 256; b++) {
		char c = (char)b, code = kg_anvil_escape_code(c);
		bool special = memchr(escaped, c, sizeof(escaped)) != NULL;
		char in[2] = {'\001', code}, out[2];

		assert_int_equal(code != 0, special);
		if (!special) {
			assert_int_equal(kg_anvil_unescape(&c, 1, out), 1);
			assert_int_equal(out[0], c);
			continue;
		}
		assert_int_equal(kg_anvil_unescape(in, 2, out), 1);
		assert_int_equal(out[0], c);
	}
}

static void test_unescape(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
		ptrdiff_t out_len;
	} cases[] = {
	        {LIT("plain"), "plain", 5},
	        {LIT(""), "", 0},
	        {LIT("a\001tb\0010c\0011\001n\001r"), "a\tb\0c\001\n\r", 8},
	        {LIT("\001t\001t"), "\t\t", 2},
	        {LIT("a\001"), NULL, -1},
	        {LIT("\001"), NULL, -1},
	        {LIT("a\001xb"), NULL, -1},
	        {LIT("a\001\001tb"), NULL, -1},
	        {LIT("a\001Tb"), NULL, -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[32], same[32];

		print_message("case %zu\n", i);
		assert_int_equal(
		        kg_anvil_unescape(cases[i].in, cases[i].len, out),
		        cases[i].out_len);
		if (cases[i].out_len < 0)
			continue;
		assert_memory_equal(out, cases[i].out,
		                    (size_t)cases[i].out_len);
		/* In place, as the output is never longer. */
		memcpy(same, cases[i].in, cases[i].len);
		assert_int_equal(kg_anvil_unescape(same, cases[i].len, same),
		                 cases[i].out_len);
		assert_memory_equal(same, cases[i].out,
		                    (size_t)cases[i].out_len);
	}
}

/* A line is written whole or marked full; once full, nothing more is
 * added, even what would fit. */
static void test_writing_until_full(void **state)
{
	char buf[16];
	struct kg_anvil_out o = {.buf = buf, .cap = 8};

	(void)state;
	kg_anvil_put_dec(&o, 42);
	kg_anvil_put_escaped(&o, "a\tb", 3);
	assert_false(o.full);
	assert_int_equal(o.len, 6);
	assert_memory_equal(buf, "42a\001tb", 6);
	kg_anvil_put(&o, "xyz", 3);
	assert_true(o.full);
	assert_int_equal(o.len, 6);
	kg_anvil_put(&o, "x", 1);
	assert_int_equal(o.len, 6);
	o = (struct kg_anvil_out){.buf = buf, .cap = 10};
	kg_anvil_put_dec(&o, UINT32_MAX);
	assert_false(o.full);
	assert_memory_equal(buf, "4294967295", 10);
	kg_anvil_put_dec(&o, 0);
	assert_true(o.full);
	/* An escape is two bytes: one byte of room is not enough. */
	o = (struct kg_anvil_out){.buf = buf, .cap = 1};
	kg_anvil_put_escaped(&o, "\n", 1);
	assert_true(o.full);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_decimals_are_strict),
	        cmocka_unit_test(test_escapes_both_ways),
	        cmocka_unit_test(test_unescape),
	        cmocka_unit_test(test_writing_until_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
