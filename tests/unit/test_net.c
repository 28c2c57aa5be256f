/* SPDX-License-Identifier: MIT */
/* kg_net_parse, kg_arg_classify and the address functions they feed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "proto/addr.h"
#include "proto/netparse.h"

struct parse_case {
	const char *in;
	const char *canonical;
};

static const struct parse_case valid_cases[] = {
        {"192.0.2.53", "192.0.2.53/32"},
        {"192.0.2.53/24", "192.0.2.0/24"},
        {"2001:DB8:0:0::1", "2001:db8::1/128"},
        {"2001:db8::/32", "2001:db8::/32"},
        {"::ffff:192.0.2.1", "192.0.2.1/32"},
        {"::ffff:192.0.2.0/120", "192.0.2.0/24"},
        {"0.0.0.0/0", "0.0.0.0/0"},
        {"::/0", "::/0"},
        {"::", "::/128"},
        {"::1", "::1/128"},
        {"1.2.3.4/0", "0.0.0.0/0"},
        {"10.255.0.1/9", "10.128.0.0/9"},
        {"255.255.255.255/31", "255.255.255.254/31"},
        {"2001:db8::1/64", "2001:db8::/64"},
        {"2001:0db8::0:1", "2001:db8::1/128"},
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1/128"},
        {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128",
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"},
        {"::ffff:1.2.3.4/128", "1.2.3.4/32"},
        {"::ffff:1.2.3.4/97", "0.0.0.0/1"},
        {"::ffff:0:0/96", "0.0.0.0/0"},
        /* Shorter than /96 reaches outside the mapped range: stays IPv6. */
        {"::ffff:0:0/95", "::fffe:0:0/95"},
        {"::FFFF:C000:0201", "192.0.2.1/32"},
};

static void test_net_parse_valid_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]);
	     i++) {
		const struct parse_case *c = &valid_cases[i];
		struct kg_net n;
		char text[KG_NET_STRLEN];
		const char *why = NULL;

		if (!kg_net_parse(c->in, strlen(c->in), &n, &why))
			fail_msg("'%s' rejected: %s", c->in, why);
		kg_net_format(&n, text);
		assert_string_equal(text, c->canonical);
		assert_true(kg_net_canonical(&n));
	}
}

static const char *const invalid_cases[] = {
        "1.2.3",
        "01.2.3.4",
        "1.2.3.04",
        "1.2.3.4/33",
        "::1/129",
        "1.2.3.4/",
        "1.2.3.4/024",
        "1.2.3.4/00",
        "1.2.3.4/1000",
        "1.2.3.4/-1",
        "1.2.3.4/+8",
        "fe80::1%eth0",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3.4/24/1",
        "/24",
        "/",
        "",
        "1.2.3.256",
        "1.2.3.4.5",
        "0x1.2.3.4",
        "127.1",
        "a.b.c.d",
        "::ffff:01.2.3.4",
        ":::",
        "1::2::3",
        "12345::",
        "1:2:3:4:5:6:7:8:9",
        "::1/",
        "[::1]",
        "localhost",
};

static void expect_invalid(const char *in, size_t len)
{
	struct kg_net n;
	const char *why = NULL;

	memset(&n, 0xa5, sizeof(n));
	if (kg_net_parse(in, len, &n, &why))
		fail_msg("'%.*s' accepted", (int)len, in);
	assert_non_null(why);
	assert_int_equal(n.family, KG_AF_NONE);
}

static void test_net_parse_invalid_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]);
	     i++)
		expect_invalid(invalid_cases[i], strlen(invalid_cases[i]));
}

/* The length bounds the input, and an embedded NUL is not a terminator. */
static void test_net_parse_uses_length(void **state)
{
	struct kg_net n;
	char text[KG_NET_STRLEN];

	(void)state;
	expect_invalid("1.2.3.4\0", 8);
	expect_invalid("1.2.3.4\0/8", 10);
	assert_true(kg_net_parse("1.2.3.4/8x", 9, &n, NULL));
	kg_net_format(&n, text);
	assert_string_equal(text, "1.0.0.0/8");
}

static void test_net_parse_rejects_over_64_bytes(void **state)
{
	char in[66];
	const char *why_long = NULL, *why_bad = NULL;
	struct kg_net n;

	(void)state;
	memset(in, '1', sizeof(in));
	assert_false(kg_net_parse(in, 65, &n, &why_long));
	assert_false(kg_net_parse(in, 64, &n, &why_bad));
	assert_string_equal(why_long, "is too long for a network");
	assert_string_not_equal(why_bad, why_long);
}

struct classify_case {
	const char *in;
	enum kg_arg_kind kind;
};

static const struct classify_case classify_cases[] = {
        {"1.2.3", KG_ARG_BAD_NET},
        {"127.1", KG_ARG_BAD_NET},
        {"10.0.0.0/", KG_ARG_BAD_NET},
        {"1.2.3.4/33", KG_ARG_BAD_NET},
        {"::1/129", KG_ARG_BAD_NET},
        {"dead:beef", KG_ARG_BAD_NET},
        {"/", KG_ARG_BAD_NET},
        {"ed.fab", KG_ARG_GLOB},
        {"123", KG_ARG_GLOB},
        {"fe80::1%eth0", KG_ARG_BAD_NET},
        {"10.0.0.0/8x", KG_ARG_BAD_NET},
        {"1.2.3.4/", KG_ARG_BAD_NET},
        {"1.2.3.4.5", KG_ARG_BAD_NET},
        {"12/abc", KG_ARG_BAD_NET},
        {"1%x", KG_ARG_BAD_NET},
        {"::1/64/64", KG_ARG_BAD_NET},
        {"user%x", KG_ARG_GLOB},
        {"a.b/c", KG_ARG_GLOB},
        {"face:b00c", KG_ARG_BAD_NET},
        {"face:b00k", KG_ARG_GLOB},
        {"2024", KG_ARG_GLOB},
        {"12-34.5", KG_ARG_GLOB},
        {"alice", KG_ARG_GLOB},
        {"*@tenant-a.example", KG_ARG_GLOB},
        {"1.2.3.*", KG_ARG_GLOB},
        {"192.0.2.1", KG_ARG_NET},
        {"::1", KG_ARG_NET},
        {"2001:db8::/32", KG_ARG_NET},
};

static void test_arg_classify_table(void **state)
{
	(void)state;
	for (size_t i = 0;
	     i < sizeof(classify_cases) / sizeof(classify_cases[0]); i++) {
		const struct classify_case *c = &classify_cases[i];
		struct kg_net n;
		const char *why = NULL;
		enum kg_arg_kind got =
		        kg_arg_classify(c->in, strlen(c->in), &n, &why);

		if (got != c->kind)
			fail_msg("'%s': expected %d, got %d", c->in, c->kind,
			         got);
		if (got == KG_ARG_BAD_NET)
			assert_non_null(why);
	}
}

static void test_arg_classify_fills_net(void **state)
{
	struct kg_net n;
	char text[KG_NET_STRLEN];

	(void)state;
	assert_int_equal(kg_arg_classify("2001:DB8::1/32", 14, &n, NULL),
	                 KG_ARG_NET);
	kg_net_format(&n, text);
	assert_string_equal(text, "2001:db8::/32");
}

static struct kg_net net_of(const char *text)
{
	struct kg_net n;

	if (!kg_net_parse(text, strlen(text), &n, NULL))
		fail_msg("'%s' rejected", text);
	return n;
}

/* The address of a parsed host network. */
static struct kg_addr addr_of(const char *text)
{
	struct kg_net n = net_of(text);
	struct kg_addr a;

	kg_addr_set(&a, n.family, n.bytes);
	return a;
}

static void test_net_canonical_rules(void **state)
{
	struct kg_net n;

	(void)state;
	n = net_of("192.0.2.0/24");
	assert_true(kg_net_canonical(&n));
	n.bytes[3] = 1; /* host bit */
	assert_false(kg_net_canonical(&n));

	n = net_of("192.0.2.1");
	n.prefix = 33;
	assert_false(kg_net_canonical(&n));
	n = net_of("192.0.2.0/24");
	n.bytes[4] = 1; /* past an IPv4 address */
	assert_false(kg_net_canonical(&n));
	n = net_of("192.0.2.0/24");
	n.bytes[15] = 1;
	assert_false(kg_net_canonical(&n));

	n = net_of("::1");
	assert_true(kg_net_canonical(&n));
	n.prefix = 129;
	assert_false(kg_net_canonical(&n));
	n = net_of("::/0");
	n.bytes[0] = 0x80;
	assert_false(kg_net_canonical(&n));
	n = net_of("2001:db8::/33");
	n.bytes[4] = 0x40; /* bit 34, past the prefix */
	assert_false(kg_net_canonical(&n));
	n.bytes[4] = 0x80; /* bit 33, inside it */
	assert_true(kg_net_canonical(&n));

	memset(&n, 0, sizeof(n));
	assert_false(kg_net_canonical(&n)); /* KG_AF_NONE */
	n.family = 5;
	assert_false(kg_net_canonical(&n));
}

struct contains_case {
	const char *net;
	const char *addr;
	bool in;
};

static const struct contains_case contains_cases[] = {
        {"192.0.2.0/24", "192.0.2.0", true},
        {"192.0.2.0/24", "192.0.2.255", true},
        {"192.0.2.0/24", "192.0.3.0", false},
        {"192.0.2.0/24", "192.0.1.255", false},
        {"10.0.0.0/9", "10.127.255.255", true},
        {"10.0.0.0/9", "10.128.0.0", false},
        {"192.0.2.1", "192.0.2.1", true},
        {"192.0.2.1", "192.0.2.2", false},
        {"0.0.0.0/0", "255.255.255.255", true},
        {"0.0.0.0/0", "::1", false},
        {"0.0.0.0/0", "::ffff:198.51.100.7", true},
        {"198.51.100.0/24", "::ffff:198.51.100.7", true},
        {"::/0", "::1", true},
        {"::/0", "2001:db8::1", true},
        {"::/0", "1.2.3.4", false},
        {"::/0", "::ffff:1.2.3.4", false},
        {"2001:db8::/32", "2001:db8:ffff::1", true},
        {"2001:db8::/32", "2001:db9::1", false},
        {"2001:db8::/33", "2001:db8:7fff::1", true},
        {"2001:db8::/33", "2001:db8:8000::", false},
        {"::1", "::1", true},
};

static void test_net_contains_table(void **state)
{
	(void)state;
	for (size_t i = 0;
	     i < sizeof(contains_cases) / sizeof(contains_cases[0]); i++) {
		const struct contains_case *c = &contains_cases[i];
		struct kg_net n = net_of(c->net);
		struct kg_addr a = addr_of(c->addr);

		if (kg_net_contains(&n, &a) != c->in)
			fail_msg("%s in %s: expected %d", c->addr, c->net,
			         c->in);
	}
}

static void test_net_contains_no_address(void **state)
{
	struct kg_net any4 = net_of("0.0.0.0/0"), any6 = net_of("::/0");
	struct kg_addr none;
	struct kg_net bad = net_of("10.0.0.0/8");
	struct kg_addr a = addr_of("10.1.2.3");

	(void)state;
	kg_addr_set(&none, KG_AF_NONE, NULL);
	assert_false(kg_net_contains(&any4, &none));
	assert_false(kg_net_contains(&any6, &none));
	/* A prefix past the family's bits never matches. */
	bad.prefix = 33;
	assert_false(kg_net_contains(&bad, &a));
}

static void test_addr_set_folds_v4_mapped(void **state)
{
	static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, 192,
	                                   0,           2,           1};
	static const uint8_t near[16] = {[10] = 0xff, [11] = 0xfe, 192,
	                                 0,           2,           1};
	static const uint8_t v4[16] = {192, 0, 2, 1, 9, 9};
	struct kg_addr a;
	char text[KG_NET_STRLEN];

	(void)state;
	kg_addr_set(&a, KG_AF_INET6, mapped);
	assert_int_equal(a.family, KG_AF_INET);
	kg_addr_format(&a, text);
	assert_string_equal(text, "192.0.2.1");

	kg_addr_set(&a, KG_AF_INET6, near);
	assert_int_equal(a.family, KG_AF_INET6);
	kg_addr_format(&a, text);
	assert_string_equal(text, "::fffe:c000:201");

	kg_addr_set(&a, KG_AF_INET, v4);
	assert_int_equal(a.family, KG_AF_INET);
	assert_int_equal(a.bytes[4], 0); /* only 4 bytes copied */

	kg_addr_set(&a, 7, v4);
	assert_int_equal(a.family, KG_AF_NONE);
	kg_addr_set(&a, KG_AF_NONE, NULL);
	assert_int_equal(a.family, KG_AF_NONE);
	kg_addr_format(&a, text);
	assert_string_equal(text, "");
}

static void test_format_rfc5952_and_unknown(void **state)
{
	struct kg_addr a = addr_of("2001:0DB8:0000:0000:0000:0000:0000:0001");
	struct kg_net n;
	char text[KG_NET_STRLEN];

	(void)state;
	kg_addr_format(&a, text);
	assert_string_equal(text, "2001:db8::1");
	memset(&n, 0, sizeof(n));
	n.family = 9;
	kg_net_format(&n, text);
	assert_string_equal(text, "");
	assert_int_equal(kg_family_len(KG_AF_INET), 4);
	assert_int_equal(kg_family_len(KG_AF_INET6), 16);
	assert_int_equal(kg_family_len(KG_AF_NONE), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_net_parse_valid_table),
	        cmocka_unit_test(test_net_parse_invalid_table),
	        cmocka_unit_test(test_net_parse_uses_length),
	        cmocka_unit_test(test_net_parse_rejects_over_64_bytes),
	        cmocka_unit_test(test_arg_classify_table),
	        cmocka_unit_test(test_arg_classify_fills_net),
	        cmocka_unit_test(test_net_canonical_rules),
	        cmocka_unit_test(test_net_contains_table),
	        cmocka_unit_test(test_net_contains_no_address),
	        cmocka_unit_test(test_addr_set_folds_v4_mapped),
	        cmocka_unit_test(test_format_rfc5952_and_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
