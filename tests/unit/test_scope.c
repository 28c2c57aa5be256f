/* SPDX-License-Identifier: MIT */
/* kg_scope_contains: user, address and alternative usernames must all be
 * inside the scope; kg_scope_is_all: only a scope without any condition
 * holds everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "policy/scope.h"
#include "proto/netparse.h"

static const struct kg_str tenant_globs[] = {
        {"*@tenant-a.example", 18},
        {"helpdesk?", 9},
};

static struct kg_net tenant_nets[2];

static int setup_nets(void **state)
{
	(void)state;
	if (!kg_net_parse("198.51.100.0/24", 15, &tenant_nets[0], NULL) ||
	    !kg_net_parse("2001:db8::/32", 13, &tenant_nets[1], NULL))
		return -1;
	return 0;
}

static struct kg_addr addr_v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	const uint8_t bytes[4] = {a, b, c, d};
	struct kg_addr addr;

	kg_addr_set(&addr, KG_AF_INET, bytes);
	return addr;
}

static struct kg_addr no_addr(void)
{
	struct kg_addr addr;

	kg_addr_set(&addr, KG_AF_NONE, NULL);
	return addr;
}

static bool contains(const struct kg_scope *s, const char *user,
                     struct kg_addr addr)
{
	const struct kg_scope_conn c = {
	        .user = user, .user_len = strlen(user), .addr = &addr};

	return kg_scope_contains(s, &c);
}

static void test_scope_needs_user_and_address(void **state)
{
	const struct kg_scope s = {
	        .globs = tenant_globs,
	        .n_globs = 2,
	        .nets = tenant_nets,
	        .n_nets = 2,
	};
	struct kg_addr inside = addr_v4(198, 51, 100, 7);
	struct kg_addr outside = addr_v4(203, 0, 113, 7);

	(void)state;
	assert_true(contains(&s, "alice@tenant-a.example", inside));
	assert_true(contains(&s, "Alice@Tenant-A.example", inside));
	assert_true(contains(&s, "helpdesk1", inside));
	assert_false(contains(&s, "alice@tenant-b.example", inside));
	assert_false(contains(&s, "helpdesk12", inside));
	assert_false(contains(&s, "alice@tenant-a.example", outside));
	assert_false(contains(&s, "alice@tenant-a.example", no_addr()));
}

/* anvil may report an IPv4 client as ::ffff:a.b.c.d; it is folded to IPv4
 * and lies in the IPv4 network, not in an IPv6 one. */
static void test_scope_v4_mapped_address(void **state)
{
	static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, 198,
	                                   51,          100,         7};
	const struct kg_scope v4 = {
	        .all_users = true, .nets = &tenant_nets[0], .n_nets = 1};
	const struct kg_scope v6 = {
	        .all_users = true, .nets = &tenant_nets[1], .n_nets = 1};
	struct kg_addr a;

	(void)state;
	kg_addr_set(&a, KG_AF_INET6, mapped);
	assert_true(contains(&v4, "anyone", a));
	assert_false(contains(&v6, "anyone", a));
}

static void test_scope_all_flags(void **state)
{
	const struct kg_scope everything = {.all_users = true,
	                                    .all_nets = true};
	const struct kg_scope all_nets = {
	        .globs = tenant_globs, .n_globs = 1, .all_nets = true};
	const struct kg_scope all_users = {
	        .all_users = true, .nets = tenant_nets, .n_nets = 2};
	const struct kg_scope nothing = {0};
	struct kg_addr a = addr_v4(203, 0, 113, 7);

	(void)state;
	assert_true(contains(&everything, "root", no_addr()));
	assert_true(contains(&everything, "", a));
	assert_true(contains(&all_nets, "bob@tenant-a.example", no_addr()));
	assert_false(contains(&all_nets, "bob@tenant-b.example", a));
	assert_true(contains(&all_users, "bob@tenant-b.example",
	                     addr_v4(198, 51, 100, 1)));
	assert_false(contains(&all_users, "bob@tenant-b.example", a));
	assert_false(contains(&all_users, "bob@tenant-b.example", no_addr()));
	assert_false(contains(&nothing, "bob", no_addr()));
	assert_false(contains(&nothing, "bob", a));
}

/* A /0 admits every address of its family, but no connection without an
 * address: only all_nets does that. */
static void test_scope_zero_prefix_needs_an_address(void **state)
{
	struct kg_net any[2];
	struct kg_scope s = {.all_users = true, .nets = any, .n_nets = 2};
	const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	struct kg_addr a;

	(void)state;
	assert_true(kg_net_parse("0.0.0.0/0", 9, &any[0], NULL));
	assert_true(kg_net_parse("::/0", 4, &any[1], NULL));
	kg_addr_set(&a, KG_AF_INET6, v6);
	assert_true(contains(&s, "x", a));
	assert_true(contains(&s, "x", addr_v4(1, 2, 3, 4)));
	assert_false(contains(&s, "x", no_addr()));
	s.n_nets = 1;
	assert_false(contains(&s, "x", a));
}

#define FIELD(n, v)                                                            \
	{                                                                      \
		.name = (n), .name_len = sizeof(n) - 1, .value = (v),          \
		.value_len = sizeof(v) - 1                                     \
	}

static const struct kg_field tenant_a =
        FIELD("user_tenant", "tenant-a.example");
static const struct kg_field tenant_c =
        FIELD("user_tenant", "tenant-c.example");

static bool contains_fields(const struct kg_scope *s, const char *user,
                            const struct kg_field *fields, size_t n)
{
	struct kg_addr a = addr_v4(198, 51, 100, 7);
	const struct kg_scope_conn c = {.user = user,
	                                .user_len = strlen(user),
	                                .addr = &a,
	                                .fields = fields,
	                                .n_fields = n};

	return kg_scope_contains(s, &c);
}

/* A connection must carry one of the scope's fields, name and value
 * byte for byte; one without fields (Dovecot 2.3) carries none. */
static void test_scope_fields(void **state)
{
	const struct kg_field wanted[] = {tenant_a, tenant_c};
	const struct kg_scope s = {.all_users = true,
	                           .all_nets = true,
	                           .fields = wanted,
	                           .n_fields = 2};
	const struct kg_field alias_then_a[] = {FIELD("user_alias", "bob"),
	                                        tenant_a};
	const struct kg_field only_c[] = {tenant_c};
	const struct kg_field tenant_b[] = {
	        FIELD("user_tenant", "tenant-b.example")};
	const struct kg_field upper[] = {
	        FIELD("user_tenant", "Tenant-A.example")};
	const struct kg_field other_name[] = {
	        FIELD("user_domain", "tenant-a.example")};
	const struct kg_field prefix[] = {FIELD("user_tenant", "tenant-a")};

	(void)state;
	assert_true(contains_fields(&s, "bob", alias_then_a, 2));
	assert_true(contains_fields(&s, "carol", only_c, 1));
	assert_false(contains_fields(&s, "bob", tenant_b, 1));
	assert_false(contains_fields(&s, "bob", upper, 1));
	assert_false(contains_fields(&s, "bob", other_name, 1));
	assert_false(contains_fields(&s, "bob", prefix, 1));
	assert_false(contains_fields(&s, "bob", NULL, 0));
	assert_false(contains(&s, "bob", no_addr()));
}

/* users and fields together: a connection must meet both. */
static void test_scope_fields_and_users(void **state)
{
	const struct kg_scope s = {.globs = tenant_globs,
	                           .n_globs = 1,
	                           .all_nets = true,
	                           .fields = &tenant_a,
	                           .n_fields = 1};

	(void)state;
	assert_true(contains_fields(&s, "bob@tenant-a.example", &tenant_a, 1));
	assert_false(contains_fields(&s, "bob@tenant-b.example", &tenant_a, 1));
	assert_false(contains_fields(&s, "bob@tenant-a.example", &tenant_c, 1));
	assert_false(contains_fields(&s, "bob@tenant-a.example", NULL, 0));
}

static void test_field_present(void **state)
{
	const struct kg_field have[] = {FIELD("user_alias", "x"), tenant_c};
	const struct kg_field empty_value = FIELD("user_tenant", "");

	(void)state;
	assert_true(kg_field_present(&tenant_c, have, 2));
	assert_false(kg_field_present(&tenant_c, have, 1));
	assert_false(kg_field_present(&tenant_a, have, 2));
	assert_false(kg_field_present(&empty_value, have, 2));
	assert_false(kg_field_present(&tenant_a, NULL, 0));
}

static void test_scope_is_all(void **state)
{
	const struct kg_scope everything = {.all_users = true,
	                                    .all_nets = true};
	const struct kg_scope by_field = {.all_users = true,
	                                  .all_nets = true,
	                                  .fields = &tenant_a,
	                                  .n_fields = 1};
	const struct kg_scope by_user = {
	        .globs = tenant_globs, .n_globs = 1, .all_nets = true};
	const struct kg_scope by_net = {
	        .all_users = true, .nets = tenant_nets, .n_nets = 2};

	(void)state;
	assert_true(kg_scope_is_all(&everything));
	assert_false(kg_scope_is_all(&by_field));
	assert_false(kg_scope_is_all(&by_user));
	assert_false(kg_scope_is_all(&by_net));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_scope_needs_user_and_address),
	        cmocka_unit_test(test_scope_v4_mapped_address),
	        cmocka_unit_test(test_scope_all_flags),
	        cmocka_unit_test(test_scope_zero_prefix_needs_an_address),
	        cmocka_unit_test(test_scope_fields),
	        cmocka_unit_test(test_scope_fields_and_users),
	        cmocka_unit_test(test_field_present),
	        cmocka_unit_test(test_scope_is_all),
	};

	return cmocka_run_group_tests(tests, setup_nets, NULL);
}
