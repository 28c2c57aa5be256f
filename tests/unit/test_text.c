/* SPDX-License-Identifier: MIT */
/* kg_text_ok: strict UTF-8 and no control bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "proto/text.h"

struct text_case {
	const char *bytes;
	size_t len;
	bool ok;
};

#define T(lit, ok)                                                             \
	{                                                                      \
		lit, sizeof(lit) - 1, ok                                       \
	}

static const struct text_case cases[] = {
        T("", true),
        T("alice@example.org", true),
        T("~ !\"#$%&'()*+,-./:;<=>?[\\]^_`{|}", true),
        T("\xc2\x80", true),          /* U+0080, smallest 2-byte */
        T("j\xc3\xb6rg", true),       /* U+00F6 */
        T("\xdf\xbf", true),          /* U+07FF */
        T("\xe0\xa0\x80", true),      /* U+0800, smallest 3-byte */
        T("\xed\x9f\xbf", true),      /* U+D7FF, below the surrogates */
        T("\xee\x80\x80", true),      /* U+E000, above the surrogates */
        T("\xef\xbf\xbf", true),      /* U+FFFF */
        T("\xf0\x90\x80\x80", true),  /* U+10000, smallest 4-byte */
        T("\xf4\x8f\xbf\xbf", true),  /* U+10FFFF, the largest */
        T("\x00", false),             /* NUL */
        T("a\x01", false),            /* control */
        T("a\tb", false),             /* TAB */
        T("a\nb", false),             /* LF */
        T("\x1f", false),             /* last C0 control */
        T("\x7f", false),             /* DEL */
        T("\x80", false),             /* lone continuation */
        T("\xbf", false),             /* lone continuation */
        T("\xc0\x80", false),         /* overlong NUL */
        T("\xc1\xbf", false),         /* overlong 2-byte */
        T("\xe0\x80\x80", false),     /* overlong 3-byte */
        T("\xe0\x9f\xbf", false),     /* overlong U+07FF */
        T("\xf0\x80\x80\x80", false), /* overlong 4-byte */
        T("\xf0\x8f\xbf\xbf", false), /* overlong U+FFFF */
        T("\xed\xa0\x80", false),     /* U+D800 surrogate */
        T("\xed\xbf\xbf", false),     /* U+DFFF surrogate */
        T("\xf4\x90\x80\x80", false), /* U+110000 */
        T("\xf5\x80\x80\x80", false), /* lead byte past U+10FFFF */
        T("\xff", false),             /* never valid */
        T("\xfe", false),             /* never valid */
        T("\xc3", false),             /* truncated 2-byte */
        T("\xe2\x82", false),         /* truncated 3-byte */
        T("\xf0\x9f\x98", false),     /* truncated 4-byte */
        T("\xc3(", false),            /* bad continuation */
        T("\xe2\x28\xa1", false),     /* bad second byte */
        T("\xe2\x82\x28", false),     /* bad third byte */
        T("\xf0\x9f\x98\x28", false), /* bad fourth byte */
        T("ok\xc3\xb6\xc3", false),   /* valid then truncated */
};

static void test_text_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = kg_text_ok(cases[i].bytes, cases[i].len);

		if (got != cases[i].ok)
			fail_msg("case %zu: expected %d, got %d", i,
			         cases[i].ok, got);
	}
}

/* The length bounds the scan: a control byte past it is not looked at,
 * and a sequence cut by it is truncated. */
static void test_text_respects_length(void **state)
{
	(void)state;
	assert_true(kg_text_ok("abc\n", 3));
	assert_false(kg_text_ok("abc\n", 4));
	assert_false(kg_text_ok("\xc3\xb6", 1));
	assert_true(kg_text_ok("\xc3\xb6", 2));
}

/* kg_utf8_char gives each well-formed character's code point, controls
 * included, and 0 for what kg_text_ok refuses as ill-formed. */
static void test_utf8_char_decodes_code_points(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		uint32_t cp;
	} ok[] = {
	        {"\0", 1, 0},
	        {"\x7f", 1, 0x7f},
	        {"\xc2\x80", 2, 0x80},
	        {"\xdf\xbf", 2, 0x7ff},
	        {"\xe0\xa0\x80", 3, 0x800},
	        {"\xe2\x80\xae", 3, 0x202e},
	        {"\xef\xbf\xbf", 3, 0xffff},
	        {"\xf0\x90\x80\x80", 4, 0x10000},
	        {"\xf3\xa0\x81\x81", 4, 0xe0041},
	        {"\xf4\x8f\xbf\xbf", 4, 0x10ffff},
	};
	static const char *const bad[] = {
	        "\x80",         "\xc1\xbf",         "\xe0\x9f\xbf",
	        "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5",
	        "\xe2\x80"};
	uint32_t cp;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(kg_utf8_char(ok[i].s, ok[i].len, &cp),
		                 ok[i].len);
		assert_int_equal(cp, ok[i].cp);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kg_utf8_char(bad[i], strlen(bad[i]), &cp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_text_table),
	        cmocka_unit_test(test_text_respects_length),
	        cmocka_unit_test(test_utf8_char_decodes_code_points),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
