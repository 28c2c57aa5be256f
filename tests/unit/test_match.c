/* SPDX-License-Identifier: MIT */
/* kg_conn_matches on Dovecot 2.4's selectors: the request's alternative
 * username (--field) and destination network (-h), alone and with the
 * glob and network; and a kick planned on them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "broker/match.h"
#include "broker/plan.h"
#include "proto/netparse.h"
#include "tests/unit/testutil.h"

static const struct kg_field tenant_a = {"user_tenant", 11, "tenant-a.example",
                                         16};
static const struct kg_field alias_foo = {"user_alias", 10, "alias-foo", 9};
/* tenant_a's name with another value, and its value under another name. */
static const struct kg_field tenant_b = {"user_tenant", 11, "tenant-b.example",
                                         16};
static const struct kg_field tenant_a_as_alias = {"user_alias", 10,
                                                  "tenant-a.example", 16};

static void set_field(struct kg_request *r, const char *name, const char *value)
{
	r->field_name_len = (uint8_t)strlen(name);
	memcpy(r->field_name, name, r->field_name_len);
	r->field_value_len = (uint8_t)strlen(value);
	memcpy(r->field_value, value, r->field_value_len);
}

static void set_dest(struct kg_request *r, const char *net)
{
	assert_true(kg_net_parse(net, strlen(net), &r->dest, NULL));
}

/* A Dovecot 2.4 connection of user from 192.0.2.1, proxied to dest (NULL:
 * not proxied), with fields. */
static struct kg_conn conn_v2(uint32_t pid, const char *user, const char *dest,
                              const struct kg_field *fields, size_t n_fields)
{
	struct kg_conn c = tu_conn(pid, "imap", user, "192.0.2.1", 1);

	c.has_guid = true;
	c.guid[0] = (uint8_t)pid;
	c.dest = tu_addr(dest);
	c.fields = fields;
	c.n_fields = n_fields;
	return c;
}

static void test_field_must_be_carried(void **state)
{
	const struct kg_field both[] = {alias_foo, tenant_a};
	const struct kg_field wrong[] = {tenant_b, tenant_a_as_alias};
	struct kg_request req = tu_request(KG_OP_KICK, NULL, NULL, 0);
	struct kg_conn c;

	(void)state;
	set_field(&req, "user_tenant", "tenant-a.example");
	c = conn_v2(1, "foo", NULL, both, 2);
	assert_true(kg_conn_matches(&req, &c));
	c = conn_v2(1, "foo", NULL, both + 1, 1);
	assert_true(kg_conn_matches(&req, &c));
	/* The name with another value, the value under another name. */
	c = conn_v2(1, "foo", NULL, wrong, 2);
	assert_false(kg_conn_matches(&req, &c));
	/* Values compare exactly: no case folding, no prefix. */
	set_field(&req, "user_tenant", "Tenant-A.example");
	c = conn_v2(1, "foo", NULL, both, 2);
	assert_false(kg_conn_matches(&req, &c));
	req.field_value_len = 8;
	assert_false(kg_conn_matches(&req, &c));
}

/* Dovecot 2.3 connections have no fields (NULL, 0): they never match a
 * field, and are not read past. */
static void test_field_on_a_connection_without_fields(void **state)
{
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_conn c = tu_conn(1, "imap", "foo", "192.0.2.1", 2);

	(void)state;
	assert_true(kg_conn_matches(&req, &c));
	set_field(&req, "user_tenant", "tenant-a.example");
	assert_null(c.fields);
	assert_false(kg_conn_matches(&req, &c));
	c = conn_v2(1, "foo", NULL, NULL, 0);
	assert_false(kg_conn_matches(&req, &c));
}

static void test_destination_must_lie_in_the_network(void **state)
{
	struct kg_request req = tu_request(KG_OP_KICK, NULL, NULL, 0);
	struct kg_conn c = conn_v2(1, "foo", "10.1.2.3", NULL, 0);

	(void)state;
	set_dest(&req, "10.1.0.0/16");
	assert_true(kg_conn_matches(&req, &c));
	c.dest = tu_addr("10.2.0.1");
	assert_false(kg_conn_matches(&req, &c));
	/* The client address is not the destination. */
	req.net = req.dest;
	c = conn_v2(1, "foo", "192.0.2.9", NULL, 0);
	c.addr = tu_addr("10.1.0.1");
	assert_false(kg_conn_matches(&req, &c));
	/* A session that is not proxied has no destination: it lies in no
	 * destination network, not even ::/0 or 0.0.0.0/0. */
	set_dest(&req, "0.0.0.0/0");
	memset(&req.net, 0, sizeof(req.net));
	c = conn_v2(1, "foo", NULL, NULL, 0);
	assert_false(kg_conn_matches(&req, &c));
	c = tu_conn(1, "imap", "foo", "192.0.2.1", 1);
	assert_false(kg_conn_matches(&req, &c));
	set_dest(&req, "2001:db8::/32");
	c = conn_v2(1, "foo", "2001:db8::25", NULL, 0);
	assert_true(kg_conn_matches(&req, &c));
}

/* Every part given must hold: each one alone fails the match. */
static void test_all_parts_together(void **state)
{
	const struct kg_field f[] = {tenant_a};
	struct kg_request req = tu_request(KG_OP_KICK, "f*", "192.0.2.0/24", 0);
	struct kg_conn good = conn_v2(1, "foo", "10.0.0.5", f, 1), c;

	(void)state;
	set_field(&req, "user_tenant", "tenant-a.example");
	set_dest(&req, "10.0.0.0/8");
	assert_true(kg_conn_matches(&req, &good));
	c = good;
	c.user = "bar";
	assert_false(kg_conn_matches(&req, &c));
	c = good;
	c.addr = tu_addr("198.51.100.1");
	assert_false(kg_conn_matches(&req, &c));
	c = good;
	c.dest = tu_addr("172.16.0.1");
	assert_false(kg_conn_matches(&req, &c));
	c = good;
	c.n_fields = 0;
	assert_false(kg_conn_matches(&req, &c));
}

/* A kick by field plans exactly the processes of the connections that
 * carry it, whatever their users, and passes over those without fields. */
static void test_plan_kicks_by_field(void **state)
{
	const struct kg_field a[] = {alias_foo, tenant_a};
	const struct kg_field b[] = {tenant_b};
	struct kg_conn conns[] = {
	        conn_v2(10, "alice", NULL, a, 2),
	        conn_v2(11, "bob", NULL, b, 1),
	        conn_v2(12, "carol", "10.0.0.1", a + 1, 1),
	        tu_conn(13, "imap", "dave", "192.0.2.4", 1),
	};
	struct kg_request req = tu_request(KG_OP_KICK, NULL, NULL, 0);
	struct kg_plan_result r;
	struct kg_plan_unit u;
	struct kg_plan *p;

	(void)state;
	set_field(&req, "user_tenant", "tenant-a.example");
	p = kg_plan_new(&req, &tu_scope_all);
	assert_non_null(p);
	for (size_t i = 0; i < sizeof(conns) / sizeof(conns[0]); i++)
		assert_int_equal(kg_plan_add(p, &conns[i]), 0);
	assert_int_equal(kg_plan_finish(p, &r), 0);
	assert_int_equal(r.verdict, KG_PLAN_KICK);
	/* Dovecot 2.4 connections: the plan's ids are units (user, pid). */
	assert_true(kg_plan_by_user(p));
	assert_int_equal(r.n_pids, 2);
	kg_plan_unit(p, r.pids[0], &u);
	assert_int_equal(u.pid, 10);
	assert_memory_equal(u.user.s, "alice", 5);
	kg_plan_unit(p, r.pids[1], &u);
	assert_int_equal(u.pid, 12);
	assert_memory_equal(u.user.s, "carol", 5);
	assert_int_equal(r.conns_matched, 2);
	kg_plan_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_field_must_be_carried),
	        cmocka_unit_test(test_field_on_a_connection_without_fields),
	        cmocka_unit_test(test_destination_must_lie_in_the_network),
	        cmocka_unit_test(test_all_parts_together),
	        cmocka_unit_test(test_plan_kicks_by_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
