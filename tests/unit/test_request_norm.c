/* SPDX-License-Identifier: MIT */
/* The frontend's and the broker's normalization of a decoded request:
 * the glob is normalized, Dovecot 2.4's field and destination pass as
 * they are (values compare exactly), and a request that is not
 * well-formed is refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "proto/netparse.h"
#include "proto/request_norm.h"

/* kick ALICE** --field user_tenant=Tenant-A.example -h 10.0.0.0/8, as
 * bytes on the wire. */
static size_t encoded(uint8_t buf[KG_REQ_MAX])
{
	struct kg_request r;
	size_t len = 0;

	memset(&r, 0, sizeof(r));
	r.op = KG_OP_KICK;
	r.glob_len = 7;
	memcpy(r.glob, "ALICE**", 7);
	r.field_name_len = 11;
	memcpy(r.field_name, "user_tenant", 11);
	r.field_value_len = 16;
	memcpy(r.field_value, "Tenant-A.example", 16);
	assert_true(kg_net_parse("10.0.0.0/8", 10, &r.dest, NULL));
	assert_int_equal(kg_request_encode(&r, buf, KG_REQ_MAX, &len),
	                 KG_WIRE_OK);
	return len;
}

static void test_field_and_destination_pass_unchanged(void **state)
{
	uint8_t buf[KG_REQ_MAX];
	size_t len = encoded(buf);
	struct kg_request r;
	const char *why = NULL;

	(void)state;
	assert_int_equal(kg_request_decode(buf, len, &r), KG_WIRE_OK);
	assert_int_equal(kg_request_normalize(&r, &why), KG_EXIT_OK);
	assert_null(why);
	assert_string_equal(r.glob, "alice*");
	assert_int_equal(r.glob_len, 6);
	assert_string_equal(r.field_name, "user_tenant");
	assert_string_equal(r.field_value, "Tenant-A.example");
	assert_int_equal(r.dest.family, KG_AF_INET);
	assert_int_equal(r.dest.prefix, 8);
	assert_int_equal(r.dest.bytes[0], 10);
}

/* A request built in memory, as the broker's own checks see it. */
static void test_malformed_field_or_destination_refused(void **state)
{
	uint8_t buf[KG_REQ_MAX];
	struct kg_request good, r;
	const char *why = NULL;

	(void)state;
	assert_int_equal(kg_request_decode(buf, encoded(buf), &good),
	                 KG_WIRE_OK);
	r = good;
	r.field_value[3] = '\n';
	assert_int_equal(kg_request_normalize(&r, &why), KG_EXIT_USAGE);
	assert_string_equal(why, "invalid text");
	r = good;
	r.field_value_len = 0;
	assert_int_equal(kg_request_normalize(&r, &why), KG_EXIT_USAGE);
	assert_string_equal(why, "field out of range");
	r = good;
	r.dest.bytes[3] = 1;
	assert_int_equal(kg_request_normalize(&r, &why), KG_EXIT_USAGE);
	assert_string_equal(why, "field out of range");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_field_and_destination_pass_unchanged),
	        cmocka_unit_test(test_malformed_field_or_destination_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
