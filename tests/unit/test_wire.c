/* SPDX-License-Identifier: MIT */
/* Wire format: request and reply encoding, decoding and rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

/* A byte array and its length, for tables of raw messages. */
#define RAW(...) {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})
/* The version byte every raw message starts with. */
#define V KG_WIRE_VERSION

/* ------------------------------------------------------------ requests */

struct req_case {
	const char *name;
	uint8_t op, flags, family, prefix;
	uint8_t net[16];
	const char *glob;
	const char *path;
	const char *instance;
	/* Version 3: --field NAME=VALUE and -h (NULL, family 0: none). */
	const char *field_name;
	const char *field_value;
	uint8_t dest_family, dest_prefix;
	uint8_t dest[16];
};

static const struct req_case good_reqs[] = {
        {.name = "kick glob only",
         .op = KG_OP_KICK,
         .glob = "alice@example.com"},
        {.name = "kick ipv4 net only",
         .op = KG_OP_KICK,
         .flags = KG_REQ_FORCE,
         .family = 4,
         .prefix = 24,
         .net = {192, 0, 2}},
        {.name = "kick ipv6 net only",
         .op = KG_OP_KICK,
         .flags = KG_REQ_DRY_RUN,
         .family = 6,
         .prefix = 32,
         .net = {0x20, 0x01, 0x0d, 0xb8}},
        {.name = "kick glob and net",
         .op = KG_OP_KICK,
         .flags = KG_REQ_FORCE | KG_REQ_DRY_RUN,
         .family = 4,
         .glob = "*@tenant-a.example"},
        {.name = "kick utf-8 glob, ipv6 host, path",
         .op = KG_OP_KICK,
         .family = 6,
         .prefix = 128,
         .net = {[15] = 1},
         .glob = "j\xc3\xbcrgen*",
         .path = "/run/dovecot-b/anvil"},
        {.name = "who everything", .op = KG_OP_WHO},
        {.name = "who one row per connection",
         .op = KG_OP_WHO,
         .flags = KG_REQ_SEPARATE,
         .family = 4,
         .prefix = 8,
         .net = {10},
         .glob = "b?b"},
        {.name = "who with path",
         .op = KG_OP_WHO,
         .path = "/run/dovecot/anvil"},
        {.name = "who by instance name",
         .op = KG_OP_WHO,
         .instance = "tenant-b"},
        {.name = "kick by instance name",
         .op = KG_OP_KICK,
         .flags = KG_REQ_FORCE,
         .glob = "a*",
         .instance = "Default_2.x"},
        {.name = "instances", .op = KG_OP_INSTANCES},
        {.name = "kick by field only",
         .op = KG_OP_KICK,
         .field_name = "user_tenant",
         .field_value = "tenant-a.example"},
        {.name = "kick by destination only",
         .op = KG_OP_KICK,
         .flags = KG_REQ_DRY_RUN,
         .dest_family = 4,
         .dest_prefix = 24,
         .dest = {10, 1, 2}},
        {.name = "who with everything",
         .op = KG_OP_WHO,
         .flags = KG_REQ_SEPARATE,
         .family = 6,
         .prefix = 48,
         .net = {0x20, 0x01, 0x0d, 0xb8, 0, 1},
         .glob = "a*",
         .instance = "tenant-b",
         .field_name = "user.Alias-2",
         .field_value = "J\xc3\xbcrgen = x@y",
         .dest_family = 6,
         .dest_prefix = 128,
         .dest = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x25}},
        {.name = "kick by field on a path",
         .op = KG_OP_KICK,
         .flags = KG_REQ_FORCE,
         .path = "/run/dovecot/anvil",
         .field_name = "a",
         .field_value = "b"},
};

static const char *or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static struct kg_request req_from(const struct req_case *c)
{
	struct kg_request r;

	memset(&r, 0, sizeof(r));
	r.op = c->op;
	r.flags = c->flags;
	r.net.family = c->family;
	r.net.prefix = c->prefix;
	memcpy(r.net.bytes, c->net, sizeof(r.net.bytes));
	r.glob_len = (uint8_t)strlen(or_empty(c->glob));
	memcpy(r.glob, or_empty(c->glob), r.glob_len);
	r.path_len = (uint8_t)strlen(or_empty(c->path));
	memcpy(r.path, or_empty(c->path), r.path_len);
	r.instance_len = (uint8_t)strlen(or_empty(c->instance));
	memcpy(r.instance, or_empty(c->instance), r.instance_len);
	if (c->field_name != NULL) {
		r.field_name_len = (uint8_t)strlen(c->field_name);
		memcpy(r.field_name, c->field_name, r.field_name_len);
		r.field_value_len = (uint8_t)strlen(c->field_value);
		memcpy(r.field_value, c->field_value, r.field_value_len);
	}
	r.dest.family = c->dest_family;
	r.dest.prefix = c->dest_prefix;
	memcpy(r.dest.bytes, c->dest, sizeof(r.dest.bytes));
	return r;
}

static size_t encode_ok(const struct kg_request *r, uint8_t *buf)
{
	size_t len = 0;

	assert_int_equal(kg_request_encode(r, buf, KG_REQ_MAX, &len),
	                 KG_WIRE_OK);
	return len;
}

static void test_request_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good_reqs) / sizeof(good_reqs[0]); i++) {
		const struct req_case *c = &good_reqs[i];
		struct kg_request in = req_from(c), out;
		uint8_t buf[KG_REQ_MAX], again[KG_REQ_MAX];
		size_t len = encode_ok(&in, buf);

		print_message("%s\n", c->name);
		memset(&out, 0xaa, sizeof(out));
		assert_int_equal(kg_request_decode(buf, len, &out), KG_WIRE_OK);
		assert_int_equal(out.op, c->op);
		assert_int_equal(out.flags, c->flags);
		assert_memory_equal(&out.net, &in.net, sizeof(in.net));
		assert_string_equal(out.glob, or_empty(c->glob));
		assert_int_equal(out.glob_len, strlen(out.glob));
		assert_string_equal(out.path, or_empty(c->path));
		assert_int_equal(out.path_len, strlen(out.path));
		assert_string_equal(out.instance, or_empty(c->instance));
		assert_int_equal(out.instance_len, strlen(out.instance));
		assert_string_equal(out.field_name, or_empty(c->field_name));
		assert_int_equal(out.field_name_len, strlen(out.field_name));
		assert_string_equal(out.field_value, or_empty(c->field_value));
		assert_int_equal(out.field_value_len, strlen(out.field_value));
		assert_memory_equal(&out.dest, &in.dest, sizeof(in.dest));
		assert_int_equal(encode_ok(&out, again), len);
		assert_memory_equal(again, buf, len);
	}
}

static void test_request_byte_layout(void **state)
{
	static const uint8_t want[] = {3, 1, 1,   4,   8,   2,   2, 0, 10, 0,
	                               0, 0, 'a', 'b', '/', 'a', 0, 0, 0,  0};
	struct kg_request r;
	uint8_t buf[KG_REQ_MAX];

	(void)state;
	memset(&r, 0, sizeof(r));
	r.op = KG_OP_KICK;
	r.flags = KG_REQ_FORCE;
	r.net.family = KG_AF_INET;
	r.net.prefix = 8;
	r.net.bytes[0] = 10;
	r.glob_len = 2;
	memcpy(r.glob, "ab", 2);
	r.path_len = 2;
	memcpy(r.path, "/a", 2);
	assert_int_equal(encode_ok(&r, buf), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_request_instance_byte_layout(void **state)
{
	static const uint8_t want[] = {3,   2,   0,   0, 0, 0, 0, 3,
	                               'b', '-', '1', 0, 0, 0, 0};
	struct kg_request r;
	uint8_t buf[KG_REQ_MAX];

	(void)state;
	memset(&r, 0, sizeof(r));
	r.op = KG_OP_WHO;
	r.instance_len = 3;
	memcpy(r.instance, "b-1", 3);
	assert_int_equal(encode_ok(&r, buf), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

/* The version 3 tail: lengths and destination header, then the bytes. */
static void test_request_field_dest_byte_layout(void **state)
{
	static const uint8_t want[] = {3, 1,  0,   0,   0,   0,   0,  0, 2, 1,
	                               4, 16, 'u', '_', 'v', 172, 16, 0, 0};
	struct kg_request r;
	uint8_t buf[KG_REQ_MAX];

	(void)state;
	memset(&r, 0, sizeof(r));
	r.op = KG_OP_KICK;
	r.field_name_len = 2;
	memcpy(r.field_name, "u_", 2);
	r.field_value_len = 1;
	r.field_value[0] = 'v';
	r.dest.family = KG_AF_INET;
	r.dest.prefix = 16;
	r.dest.bytes[0] = 172;
	r.dest.bytes[1] = 16;
	assert_int_equal(encode_ok(&r, buf), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_request_max_lengths_round_trip(void **state)
{
	struct kg_request in, out;
	uint8_t buf[KG_REQ_MAX];
	size_t len;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.op = KG_OP_KICK;
	in.net.family = KG_AF_INET6;
	in.net.prefix = 128;
	memset(in.net.bytes, 0x42, 16);
	in.glob_len = KG_GLOB_MAX;
	memset(in.glob, 'g', KG_GLOB_MAX);
	in.path_len = KG_PATH_MAX;
	memset(in.path, 'p', KG_PATH_MAX);
	in.path[0] = '/';
	in.field_name_len = KG_FIELD_NAME_MAX;
	memset(in.field_name, 'f', KG_FIELD_NAME_MAX);
	in.field_value_len = KG_FIELD_VALUE_MAX;
	memset(in.field_value, 'v', KG_FIELD_VALUE_MAX);
	in.dest.family = KG_AF_INET6;
	in.dest.prefix = 128;
	memset(in.dest.bytes, 0x24, 16);
	len = encode_ok(&in, buf);
	/* A path and a name never travel together. */
	assert_int_equal(len, KG_REQ_MAX - KG_NAME_MAX);
	assert_int_equal(kg_request_decode(buf, len, &out), KG_WIRE_OK);
	assert_memory_equal(&out, &in, sizeof(in));
	in.path_len = 0;
	memset(in.path, 0, sizeof(in.path));
	in.instance_len = KG_NAME_MAX;
	memset(in.instance, 'n', KG_NAME_MAX);
	len = encode_ok(&in, buf);
	assert_int_equal(len, KG_REQ_MAX - KG_PATH_MAX);
	assert_int_equal(kg_request_decode(buf, len, &out), KG_WIRE_OK);
	assert_memory_equal(&out, &in, sizeof(in));
}

static void test_request_every_truncation_short(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good_reqs) / sizeof(good_reqs[0]); i++) {
		struct kg_request in = req_from(&good_reqs[i]), out;
		uint8_t buf[KG_REQ_MAX];
		size_t len = encode_ok(&in, buf);

		for (size_t cut = 0; cut < len; cut++)
			assert_int_equal(kg_request_decode(buf, cut, &out),
			                 KG_WIRE_SHORT);
	}
}

static void test_request_trailing_byte_long(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good_reqs) / sizeof(good_reqs[0]); i++) {
		struct kg_request in = req_from(&good_reqs[i]), out;
		uint8_t buf[KG_REQ_MAX + 1];
		size_t len = encode_ok(&in, buf);

		buf[len] = 0;
		assert_int_equal(kg_request_decode(buf, len + 1, &out),
		                 KG_WIRE_LONG);
	}
}

struct raw_case {
	const char *name;
	uint8_t bytes[96];
	size_t len;
	enum kg_wire_err want;
};

/* Header: version op flags family prefix glob_len path_len instance_len;
 * after the instance, T: no field and no destination. */
#define T 0, 0, 0, 0
static const struct raw_case bad_reqs[] = {
        {"unknown version 4", RAW(4, 1, 0, 0, 0, 1, 0, 0, 'a'),
         KG_WIRE_VERSION_BAD},
        {"version 1, before instance names", RAW(1, 1, 0, 0, 0, 1, 0, 0, 'a'),
         KG_WIRE_VERSION_BAD},
        {"version 0", RAW(0, 1, 0, 0, 0, 1, 0, 0, 'a'), KG_WIRE_VERSION_BAD},
        {"op 0", RAW(V, 0, 0, 0, 0, 1, 0, 0, 'a', T), KG_WIRE_FIELD},
        {"unknown op 4", RAW(V, 4, 0, 0, 0, 1, 0, 0, 'a', T), KG_WIRE_FIELD},
        {"unknown flag bit on kick", RAW(V, 1, 8, 0, 0, 1, 0, 0, 'a', T),
         KG_WIRE_FIELD},
        {"unknown flag bit on who", RAW(V, 2, 0x80, 0, 0, 0, 0, 0, T),
         KG_WIRE_FIELD},
        {"force on a who", RAW(V, 2, KG_REQ_FORCE, 0, 0, 0, 0, 0, T),
         KG_WIRE_FIELD},
        {"dry run on a who", RAW(V, 2, KG_REQ_DRY_RUN, 0, 0, 0, 0, 0, T),
         KG_WIRE_FIELD},
        {"separate on a kick",
         RAW(V, 1, KG_REQ_SEPARATE, 0, 0, 1, 0, 0, 'a', T), KG_WIRE_FIELD},
        {"kick without glob and net", RAW(V, 1, 0, 0, 0, 0, 0, 0, T),
         KG_WIRE_FIELD},
        {"instance_len past the end", RAW(V, 1, 0, 0, 0, 1, 0, 1, 'a'),
         KG_WIRE_SHORT},
        {"instance_len over the limit",
         RAW(V, 2, 0, 0, 0, 0, 0, KG_NAME_MAX + 1), KG_WIRE_FIELD},
        {"instance name with '/'", RAW(V, 2, 0, 0, 0, 0, 0, 2, '/', 'a', T),
         KG_WIRE_TEXT},
        {"instance name with a space",
         RAW(V, 2, 0, 0, 0, 0, 0, 3, 'a', ' ', 'b', T), KG_WIRE_TEXT},
        {"instance name with UTF-8", RAW(V, 2, 0, 0, 0, 0, 0, 2, 0xc3, 0xbc, T),
         KG_WIRE_TEXT},
        {"both path and instance name",
         RAW(V, 2, 0, 0, 0, 0, 2, 1, '/', 'a', 'b', T), KG_WIRE_FIELD},
        {"instances with a glob", RAW(V, 3, 0, 0, 0, 1, 0, 0, 'a', T),
         KG_WIRE_FIELD},
        {"instances with a network",
         RAW(V, 3, 0, 4, 8, 0, 0, 0, 10, 0, 0, 0, T), KG_WIRE_FIELD},
        {"instances with a path", RAW(V, 3, 0, 0, 0, 0, 2, 0, '/', 'a', T),
         KG_WIRE_FIELD},
        {"instances with an instance name", RAW(V, 3, 0, 0, 0, 0, 0, 1, 'a', T),
         KG_WIRE_FIELD},
        {"instances with a flag", RAW(V, 3, KG_REQ_SEPARATE, 0, 0, 0, 0, 0, T),
         KG_WIRE_FIELD},
        {"glob_len past the end", RAW(V, 1, 0, 0, 0, 3, 0, 0, 'a', 'b'),
         KG_WIRE_SHORT},
        {"path_len past the end", RAW(V, 2, 0, 0, 0, 0, 5, 0, '/', 'a'),
         KG_WIRE_SHORT},
        {"net bytes past the end", RAW(V, 1, 0, 4, 8, 0, 0, 0, 10, 0),
         KG_WIRE_SHORT},
        {"path_len over the limit", RAW(V, 2, 0, 0, 0, 0, KG_PATH_MAX + 1, 0),
         KG_WIRE_FIELD},
        {"glob with NUL", RAW(V, 1, 0, 0, 0, 3, 0, 0, 'a', 0, 'b', T),
         KG_WIRE_TEXT},
        {"glob with 0x01", RAW(V, 1, 0, 0, 0, 2, 0, 0, 'a', 0x01, T),
         KG_WIRE_TEXT},
        {"glob with 0x7f", RAW(V, 1, 0, 0, 0, 2, 0, 0, 0x7f, 'a', T),
         KG_WIRE_TEXT},
        {"glob with byte 0xff", RAW(V, 1, 0, 0, 0, 2, 0, 0, 'a', 0xff, T),
         KG_WIRE_TEXT},
        {"glob with overlong '/'", RAW(V, 1, 0, 0, 0, 2, 0, 0, 0xc0, 0xaf, T),
         KG_WIRE_TEXT},
        {"glob with surrogate",
         RAW(V, 1, 0, 0, 0, 3, 0, 0, 0xed, 0xa0, 0x80, T), KG_WIRE_TEXT},
        {"glob with cut sequence", RAW(V, 1, 0, 0, 0, 2, 0, 0, 0xe2, 0x82, T),
         KG_WIRE_TEXT},
        {"relative path", RAW(V, 2, 0, 0, 0, 0, 3, 0, 'r', 'u', 'n', T),
         KG_WIRE_FIELD},
        {"path with control byte",
         RAW(V, 2, 0, 0, 0, 0, 3, 0, '/', 'a', 0x1b, T), KG_WIRE_TEXT},
        {"path with NUL", RAW(V, 2, 0, 0, 0, 0, 3, 0, '/', 0, 'a', T),
         KG_WIRE_TEXT},
        {"ipv4 prefix 33", RAW(V, 1, 0, 4, 33, 0, 0, 0, 10, 0, 0, 0, T),
         KG_WIRE_FIELD},
        {"ipv6 prefix 129",
         RAW(V, 1, 0, 6, 129, 0, 0, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0,
             0, 0, 0, 0, 0, T),
         KG_WIRE_FIELD},
        {"ipv4 host bits set", RAW(V, 1, 0, 4, 24, 0, 0, 0, 192, 0, 2, 1, T),
         KG_WIRE_FIELD},
        {"ipv6 host bits set",
         RAW(V, 1, 0, 6, 64, 0, 0, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0,
             0, 0, 0, 0, 1, T),
         KG_WIRE_FIELD},
        {"family 5", RAW(V, 1, 0, 5, 0, 1, 0, 0, 'a'), KG_WIRE_FIELD},
        {"no network but a prefix", RAW(V, 1, 0, 0, 8, 1, 0, 0, 'a', T),
         KG_WIRE_FIELD},
        {"version 2, before fields and destinations",
         RAW(2, 1, 0, 0, 0, 1, 0, 0, 'a'), KG_WIRE_VERSION_BAD},
        {"request ends before its tail",
         RAW(V, 1, 0, 0, 0, 1, 0, 0, 'a', 0, 0, 0), KG_WIRE_SHORT},
        {"field name without a value",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'a'), KG_WIRE_FIELD},
        {"field value without a name",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 'a'), KG_WIRE_FIELD},
        {"field name over the limit",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, KG_FIELD_NAME_MAX + 1, 1, 0, 0),
         KG_WIRE_FIELD},
        {"field name with '='",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 'a', '=', 'b'), KG_WIRE_TEXT},
        {"field name with a space",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 'a', ' ', 'b'), KG_WIRE_TEXT},
        {"field name with UTF-8",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0xc3, 0xbc, 'b'),
         KG_WIRE_TEXT},
        {"field value with a control byte",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 'a', 'b', 0x09), KG_WIRE_TEXT},
        {"field value with NUL",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 'a', 0, 'b'), KG_WIRE_TEXT},
        {"field value with byte 0xff",
         RAW(V, 2, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 'a', 0xff), KG_WIRE_TEXT},
        {"field value past the end",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0, 'a', 'b'), KG_WIRE_SHORT},
        {"destination family 5", RAW(V, 1, 0, 0, 0, 1, 0, 0, 'a', 0, 0, 5, 0),
         KG_WIRE_FIELD},
        {"destination bytes past the end",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 8, 10, 0), KG_WIRE_SHORT},
        {"destination prefix 33",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 33, 10, 0, 0, 0), KG_WIRE_FIELD},
        {"destination host bits set",
         RAW(V, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 8, 10, 0, 0, 1), KG_WIRE_FIELD},
        {"no destination but a prefix",
         RAW(V, 1, 0, 0, 0, 1, 0, 0, 'a', 0, 0, 0, 8), KG_WIRE_FIELD},
        {"instances with a field",
         RAW(V, 3, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 'a', 'b'), KG_WIRE_FIELD},
        {"instances with a destination",
         RAW(V, 3, 0, 0, 0, 0, 0, 0, 0, 0, 4, 8, 10, 0, 0, 0), KG_WIRE_FIELD},
};

static void test_request_rejects_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_reqs) / sizeof(bad_reqs[0]); i++) {
		const struct raw_case *c = &bad_reqs[i];
		struct kg_request r;

		print_message("%s\n", c->name);
		assert_int_equal(kg_request_decode(c->bytes, c->len, &r),
		                 c->want);
	}
}

static void test_request_encode_checks_first(void **state)
{
	struct kg_request r = req_from(&good_reqs[0]);
	uint8_t buf[KG_REQ_MAX];
	size_t len = 0;

	(void)state;
	assert_int_equal(kg_request_encode(&r, buf, 8, &len), KG_WIRE_LONG);
	r.glob_len = 0;
	assert_int_equal(kg_request_encode(&r, buf, sizeof(buf), &len),
	                 KG_WIRE_FIELD);
	r = req_from(&good_reqs[0]);
	r.net.bytes[3] = 1; /* stray bytes without a network */
	assert_int_equal(kg_request_check(&r), KG_WIRE_FIELD);
	r = req_from(&good_reqs[0]);
	r.path_len = KG_PATH_MAX + 1;
	memset(r.path, '/', sizeof(r.path));
	assert_int_equal(kg_request_check(&r), KG_WIRE_FIELD);
	assert_int_equal(len, 0);
}

/* ------------------------------------------------------------- replies */

#define MAX_PKTS 64

/* Collects emitted packets; emit fails from call number fail_from on. */
struct sink {
	uint8_t *pkt[MAX_PKTS];
	size_t len[MAX_PKTS];
	size_t n;
	size_t calls;
	size_t fail_from;
};

static int sink_emit(void *ctx, const uint8_t *pkt, size_t len)
{
	struct sink *s = ctx;

	s->calls++;
	if (s->fail_from != 0 && s->calls >= s->fail_from)
		return -1;
	assert_true(s->n < MAX_PKTS);
	s->pkt[s->n] = malloc(len);
	assert_non_null(s->pkt[s->n]);
	memcpy(s->pkt[s->n], pkt, len);
	s->len[s->n++] = len;
	return 0;
}

static void sink_free(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->pkt[i]);
}

static struct kg_reply_writer *writer_new(struct sink *s)
{
	struct kg_reply_writer *w = malloc(sizeof(*w));

	assert_non_null(w);
	memset(s, 0, sizeof(*s));
	kg_rw_init(w, sink_emit, s);
	return w;
}

/* Records every callback as text, so a whole reply compares as a string. */
struct log {
	char text[4096];
	size_t calls;
	int stop_at; /* callback number that returns 7; 0: none */
};

__attribute__((format(printf, 2, 0))) static void
log_vtext(struct log *l, const char *fmt, va_list ap)
{
	size_t used = strlen(l->text);

	vsnprintf(l->text + used, sizeof(l->text) - used, fmt, ap);
}

/* Appends to the text. */
__attribute__((format(printf, 2, 3))) static void log_text(struct log *l,
                                                           const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vtext(l, fmt, ap);
	va_end(ap);
}

/* Appends to the text as one callback. */
__attribute__((format(printf, 2, 3))) static int log_add(struct log *l,
                                                         const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vtext(l, fmt, ap);
	va_end(ap);
	return ++l->calls == (size_t)l->stop_at ? 7 : 0;
}

static int log_user(void *ctx, enum kg_rec_type type, const char *name,
                    size_t len)
{
	char kind = type == KG_REC_KICKED ? 'K'
	            : type == KG_REC_WARN ? 'W'
	                                  : 'M';

	return log_add(ctx, "%c:%.*s|", kind, (int)len, name);
}

static int log_pid(void *ctx, uint32_t pid)
{
	return log_add(ctx, "P:%u|", pid);
}

static int log_refused(void *ctx, uint32_t pid, uint8_t reason)
{
	return log_add(ctx, "R:%u/%s|", pid, kg_refuse_strerror(reason));
}

/* A Dovecot 2.4 row's GUID, destination and fields, after its user. */
static void log_who_v2(struct log *l, const struct kg_who_row *row)
{
	char dest[KG_NET_STRLEN];

	log_text(l, "[");
	for (size_t i = 0; i < sizeof(row->guid); i++)
		log_text(l, "%02x", row->guid[i]);
	kg_addr_format(&row->dest, dest);
	log_text(l, "/%u/%s", row->dest.family, dest);
	for (size_t i = 0; i < row->n_fields; i++)
		log_text(l, "/%.*s=%.*s", (int)row->fields[i].name_len,
		         row->fields[i].name, (int)row->fields[i].value_len,
		         row->fields[i].value);
	log_text(l, "]");
}

static int log_who(void *ctx, const struct kg_who_row *row)
{
	struct log *l = ctx;
	char addr[KG_NET_STRLEN];

	kg_addr_format(&row->addr, addr);
	log_text(l, "H:%u/%u/%u/%s/%.*s/%.*s", row->pid, row->conns,
	         row->addr.family, addr, (int)row->service_len, row->service,
	         (int)row->user_len, row->user);
	if (row->has_guid)
		log_who_v2(l, row);
	return log_add(l, "|");
}

static int log_instance(void *ctx, const struct kg_instance_row *row)
{
	return log_add(ctx, "I:%.*s=%.*s|", (int)row->name_len, row->name,
	               (int)row->path_len, row->path);
}

static int log_end(void *ctx, const struct kg_reply_end *end)
{
	return log_add(ctx, "E:%u/%u/%u/%u/%u/%s", end->status, end->flags,
	               end->conns, end->pids, end->malformed, end->error);
}

static const struct kg_reply_handler log_handler = {
        log_user, log_pid, log_refused, log_who, log_instance, log_end,
};

static enum kg_wire_err decode_log(const uint8_t *pkt, size_t len,
                                   struct log *l, bool *is_end)
{
	int cb = 0;
	enum kg_wire_err e =
	        kg_reply_decode(pkt, len, &log_handler, l, is_end, &cb);

	assert_int_equal(
	        cb, l->stop_at != 0 && l->calls == (size_t)l->stop_at ? 7 : 0);
	return e;
}

/* The last who row decoded, its fields copied out of the decoder's
 * array, which lives only as long as the callback. */
static struct kg_field kept_fields[KG_FIELDS_MAX];

static int keep_row(void *ctx, const struct kg_who_row *row)
{
	struct kg_who_row *out = ctx;

	*out = *row;
	memcpy(kept_fields, row->fields, row->n_fields * sizeof(*row->fields));
	out->fields = kept_fields;
	return 0;
}

static struct kg_who_row who_row(uint32_t pid, uint8_t family,
                                 const uint8_t *addr, const char *service,
                                 const char *user)
{
	struct kg_who_row row = {.pid = pid, .conns = 2};

	kg_addr_set(&row.addr, family, addr);
	row.service = service;
	row.service_len = strlen(service);
	row.user = user;
	row.user_len = strlen(user);
	return row;
}

static const uint8_t v4_addr[4] = {192, 0, 2, 7};
static const uint8_t v6_addr[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 9};

static const struct kg_field two_fields[] = {
        {"user_alias", 10, "alias-b", 7},
        {"user_tenant", 11, "tenant-b.example", 16},
};

/* A Dovecot 2.4 row: one connection, a GUID, a destination, fields. */
static struct kg_who_row who_row_v2(uint32_t pid, const char *user,
                                    const struct kg_field *fields,
                                    size_t n_fields)
{
	static const uint8_t dest[4] = {10, 9, 8, 7};
	struct kg_who_row row = who_row(pid, KG_AF_INET, v4_addr, "imap", user);

	row.conns = 1;
	row.has_guid = true;
	for (size_t i = 0; i < sizeof(row.guid); i++)
		row.guid[i] = (uint8_t)(0xf0 + i);
	kg_addr_set(&row.dest, KG_AF_INET, dest);
	row.fields = fields;
	row.n_fields = n_fields;
	return row;
}

/* One record of each kind, then an end packet. */
static void write_sample(struct kg_reply_writer *w)
{
	struct kg_who_row rows[] = {
	        who_row(100, KG_AF_INET, v4_addr, "imap", "alice"),
	        who_row(101, KG_AF_INET6, v6_addr, "pop3", "b\xff\x01z"),
	        who_row(102, KG_AF_NONE, NULL, "submission", ""),
	        who_row_v2(103, "bob", two_fields, 2),
	};
	struct kg_instance_row inst = {"tenant-b", 8, "/run/b/anvil", 12};
	struct kg_reply_end end = {
	        .status = KG_EXIT_NEED_FORCE,
	        .flags = KG_END_DRY_RUN | KG_END_NEED_FORCE |
	                 KG_END_FORCE_DENIED,
	        .conns = 3,
	        .pids = 2,
	        .malformed = 4,
	        .error_len = 5,
	        .error = "caf\xc3\xa9",
	};

	assert_int_equal(kg_rw_user(w, KG_REC_KICKED, "alice", 5), 0);
	assert_int_equal(kg_rw_user(w, KG_REC_WARN, "bob", 3), 0);
	assert_int_equal(kg_rw_user(w, KG_REC_REMAINED, "carol", 5), 0);
	assert_int_equal(kg_rw_pid(w, 42), 0);
	assert_int_equal(kg_rw_refused(w, 43, KG_REFUSE_GONE), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(kg_rw_who(w, &rows[i]), 0);
	assert_int_equal(kg_rw_instance(w, &inst), 0);
	assert_int_equal(kg_rw_end(w, &end), 0);
}

static const char sample_log[] =
        "K:alice|W:bob|M:carol|P:42|R:43/already gone|"
        "H:100/2/4/192.0.2.7/imap/alice|"
        "H:101/2/6/2001:db8::9/pop3/b\xff\x01z|"
        "H:102/2/0//submission/|"
        "H:103/1/4/192.0.2.7/imap/bob[f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff/4/"
        "10.9.8.7/user_alias=alias-b/user_tenant=tenant-b.example]|"
        "I:tenant-b=/run/b/anvil|"
        "E:1/7/3/2/4/caf\xc3\xa9";

static void test_reply_all_record_kinds_round_trip(void **state)
{
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	struct log l = {0};
	bool is_end;

	(void)state;
	write_sample(w);
	assert_int_equal(s.n, 2);
	assert_int_equal(decode_log(s.pkt[0], s.len[0], &l, &is_end),
	                 KG_WIRE_OK);
	assert_false(is_end);
	assert_int_equal(decode_log(s.pkt[1], s.len[1], &l, &is_end),
	                 KG_WIRE_OK);
	assert_true(is_end);
	assert_string_equal(l.text, sample_log);
	sink_free(&s);
	free(w);
}

static void test_reply_byte_layout(void **state)
{
	static const uint8_t rec[] = {3, 1, 3, 4, 0,   4, 3,   2,  1,
	                              6, 5, 0, 1, 'b', 2, '/', 'a'};
	/* The record count is the writer's: the two records above. */
	static const uint8_t end[] = {3, 2, 68, 0, 1, 0, 0, 0, 2, 0, 0,  0,
	                              4, 0, 0,  0, 2, 0, 0, 0, 1, 0, 'x'};
	struct kg_instance_row inst = {"b", 1, "/a", 2};
	struct kg_reply_end e = {.status = KG_EXIT_NOMATCH,
	                         .conns = 1,
	                         .pids = 2,
	                         .malformed = 4,
	                         .records = 9,
	                         .error_len = 1,
	                         .error = "x"};
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);

	(void)state;
	assert_int_equal(kg_rw_pid(w, 0x01020304), 0);
	assert_int_equal(kg_rw_instance(w, &inst), 0);
	assert_int_equal(kg_rw_end(w, &e), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.len[0], sizeof(rec));
	assert_memory_equal(s.pkt[0], rec, sizeof(rec));
	assert_int_equal(s.len[1], sizeof(end));
	assert_memory_equal(s.pkt[1], end, sizeof(end));
	sink_free(&s);
	free(w);
}

/* Who rows for the many-packet test: every family, odd user bytes. */
#define MANY_ROWS 20000
static const char *const services[] = {"imap", "pop3", "submission",
                                       "managesieve"};

static struct kg_who_row many_row(size_t i, char user[64])
{
	uint8_t addr[16] = {0x20, 0x01, 0x0d, 0xb8};
	static const uint8_t families[] = {KG_AF_NONE, KG_AF_INET, KG_AF_INET6};
	struct kg_who_row row;

	addr[4] = (uint8_t)i;
	addr[15] = (uint8_t)(i >> 8);
	snprintf(user, 64, "user%zu@tenant-%zu.example%s", i, i % 7,
	         i % 5 == 0 ? "\xfe" : "");
	row = who_row((uint32_t)(1000 + i), families[i % 3], addr,
	              services[i % 4], user);
	row.conns = (uint32_t)(i % 9);
	return row;
}

struct many_check {
	size_t next;
	size_t ends;
};

static int many_who(void *ctx, const struct kg_who_row *row)
{
	struct many_check *m = ctx;
	char user[64];
	struct kg_who_row want = many_row(m->next++, user);

	assert_int_equal(row->pid, want.pid);
	assert_int_equal(row->conns, want.conns);
	assert_memory_equal(&row->addr, &want.addr, sizeof(want.addr));
	assert_int_equal(row->service_len, want.service_len);
	assert_memory_equal(row->service, want.service, want.service_len);
	assert_int_equal(row->user_len, want.user_len);
	assert_memory_equal(row->user, want.user, want.user_len);
	return 0;
}

static int many_end(void *ctx, const struct kg_reply_end *end)
{
	struct many_check *m = ctx;

	assert_int_equal(end->conns, MANY_ROWS);
	m->ends++;
	return 0;
}

static void test_reply_many_rows_span_packets(void **state)
{
	static const struct kg_reply_handler h = {.who = many_who,
	                                          .end = many_end};
	struct kg_reply_end end = {.status = KG_EXIT_OK, .conns = MANY_ROWS};
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	struct many_check m = {0};

	(void)state;
	for (size_t i = 0; i < MANY_ROWS; i++) {
		char user[64];
		struct kg_who_row row = many_row(i, user);

		assert_int_equal(kg_rw_who(w, &row), 0);
	}
	assert_int_equal(kg_rw_end(w, &end), 0);
	assert_true(s.n > 3);
	for (size_t i = 0; i < s.n; i++) {
		bool is_end;
		int cb;

		assert_true(s.len[i] <= KG_PKT_MAX);
		assert_int_equal(kg_reply_decode(s.pkt[i], s.len[i], &h, &m,
		                                 &is_end, &cb),
		                 KG_WIRE_OK);
		assert_int_equal(cb, 0);
		assert_int_equal(is_end, i == s.n - 1);
	}
	/* Packets are only split when full: all but the last records packet
	 * are within one maximal record of the limit. */
	for (size_t i = 0; i + 2 < s.n; i++)
		assert_true(s.len[i] > KG_PKT_MAX - 100);
	assert_int_equal(m.next, MANY_ROWS);
	assert_int_equal(m.ends, 1);
	sink_free(&s);
	free(w);
}

/* Two records filling a packet to exactly KG_PKT_MAX bytes stay in it; the
 * next record starts a new packet. */
static void test_reply_packet_filled_exactly(void **state)
{
	const size_t first = UINT16_MAX;
	const size_t second = KG_PKT_MAX - 2 - 3 - first - 3;
	char *name = malloc(first);
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	struct kg_reply_end end = {.status = KG_EXIT_OK};
	bool is_end;
	int cb;

	(void)state;
	assert_non_null(name);
	memset(name, 'n', first);
	assert_int_equal(kg_rw_user(w, KG_REC_KICKED, name, first), 0);
	assert_int_equal(kg_rw_user(w, KG_REC_WARN, name, second), 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(kg_rw_pid(w, 5), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.len[0], KG_PKT_MAX);
	assert_int_equal(kg_rw_end(w, &end), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.len[1], 2 + 3 + 4);
	assert_int_equal(kg_reply_decode(s.pkt[0], s.len[0], &log_handler,
	                                 &(struct log){0}, &is_end, &cb),
	                 KG_WIRE_OK);
	sink_free(&s);
	free(w);
	free(name);
}

static void test_reply_oversized_packet_long(void **state)
{
	uint8_t *pkt = malloc(KG_PKT_MAX + 1);
	struct log l = {0};
	bool is_end;

	(void)state;
	assert_non_null(pkt);
	memset(pkt, 'n', KG_PKT_MAX + 1);
	/* Two user records; the second one's length makes the packet end
	 * at total bytes. */
	pkt[0] = KG_WIRE_VERSION;
	pkt[1] = KG_PKT_RECORDS;
	pkt[2] = KG_REC_KICKED;
	pkt[3] = 0xff;
	pkt[4] = 0xff;
	pkt[5 + 0xffff] = KG_REC_KICKED;
	for (size_t total = KG_PKT_MAX; total <= KG_PKT_MAX + 1; total++) {
		size_t rest = total - (5 + 0xffff) - 3;

		pkt[5 + 0xffff + 1] = (uint8_t)rest;
		pkt[5 + 0xffff + 2] = (uint8_t)(rest >> 8);
		assert_int_equal(decode_log(pkt, total, &l, &is_end),
		                 total == KG_PKT_MAX ? KG_WIRE_OK
		                                     : KG_WIRE_LONG);
	}
	assert_int_equal(l.calls, 2);
	free(pkt);
}

/* Byte offsets where the records of a packet end. */
static size_t record_ends(const uint8_t *pkt, size_t len, size_t *ends)
{
	size_t n = 0;

	for (size_t off = 2; off < len; n++) {
		off += 3 + (size_t)(pkt[off + 1] | pkt[off + 2] << 8);
		ends[n] = off;
	}
	return n;
}

static void test_reply_every_truncation_rejected(void **state)
{
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	size_t ends[16], n;

	(void)state;
	write_sample(w);
	n = record_ends(s.pkt[0], s.len[0], ends);
	assert_int_equal(n, 10);
	assert_int_equal(ends[n - 1], s.len[0]);
	/* Records delimit themselves, so a cut on a record boundary is a
	 * shorter valid packet carrying exactly the records before it. */
	for (size_t cut = 0, k = 0; cut < s.len[0]; cut++) {
		struct log l = {0};
		bool is_end;
		enum kg_wire_err e = decode_log(s.pkt[0], cut, &l, &is_end);

		if (k < n && cut == ends[k]) {
			assert_int_equal(e, KG_WIRE_OK);
			assert_int_equal(l.calls, ++k);
		} else {
			assert_int_equal(e, KG_WIRE_SHORT);
			assert_int_equal(l.calls, 0);
		}
	}
	for (size_t cut = 0; cut < s.len[1]; cut++) {
		struct log l = {0};
		bool is_end;

		assert_int_equal(decode_log(s.pkt[1], cut, &l, &is_end),
		                 KG_WIRE_SHORT);
		assert_int_equal(l.calls, 0);
	}
	sink_free(&s);
	free(w);
}

/* A packet of one record of each kind: every cut of it is short. */
static void test_reply_single_record_truncation_short(void **state)
{
	struct kg_who_row row = who_row(7, KG_AF_INET6, v6_addr, "imap", "u");
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	struct kg_reply_end end = {.status = KG_EXIT_OK};

	(void)state;
	assert_int_equal(kg_rw_user(w, KG_REC_KICKED, "alice", 5), 0);
	assert_int_equal(kg_rw_end(w, &end), 0);
	assert_int_equal(kg_rw_pid(w, 9), 0);
	assert_int_equal(kg_rw_end(w, &end), 0);
	assert_int_equal(kg_rw_refused(w, 9, KG_REFUSE_SIGNAL), 0);
	assert_int_equal(kg_rw_end(w, &end), 0);
	assert_int_equal(kg_rw_who(w, &row), 0);
	assert_int_equal(kg_rw_end(w, &end), 0);
	assert_int_equal(s.n, 8);
	for (size_t i = 0; i < s.n; i += 2) {
		for (size_t cut = 0; cut < s.len[i]; cut++) {
			struct log l = {0};
			bool is_end;

			assert_int_equal(decode_log(s.pkt[i], cut, &l, &is_end),
			                 KG_WIRE_SHORT);
			assert_int_equal(l.calls, 0);
		}
	}
	sink_free(&s);
	free(w);
}

static void test_reply_trailing_byte_rejected(void **state)
{
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);

	(void)state;
	write_sample(w);
	for (size_t i = 0; i < s.n; i++) {
		uint8_t *p = malloc(s.len[i] + 1);
		struct log l = {0};
		bool is_end;

		assert_non_null(p);
		memcpy(p, s.pkt[i], s.len[i]);
		p[s.len[i]] = KG_REC_PID;
		/* In a records packet the byte starts a record that is cut
		 * short; an end packet has a fixed length. */
		assert_int_equal(decode_log(p, s.len[i] + 1, &l, &is_end),
		                 i == 0 ? KG_WIRE_SHORT : KG_WIRE_LONG);
		assert_int_equal(l.calls, 0);
		free(p);
	}
	sink_free(&s);
	free(w);
}

/* conns, pids, malformed, records: the end packet's counts. */
#define END_ZEROS 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
#define PID7      7, 0, 0, 0

static const struct raw_case bad_replies[] = {
        {"empty packet", {0}, 0, KG_WIRE_SHORT},
        {"version only", RAW(V), KG_WIRE_SHORT},
        {"unknown version", RAW(4, 1, 3, 4, 0, PID7), KG_WIRE_VERSION_BAD},
        {"version 2, before Dovecot 2.4's rows", RAW(2, 1, 3, 4, 0, PID7),
         KG_WIRE_VERSION_BAD},
        {"version 1, with the out-of-scope count",
         RAW(1, 2, 0, 0, END_ZEROS, 0, 0, 0, 0, 0), KG_WIRE_VERSION_BAD},
        {"unknown packet kind", RAW(V, 3, 3, 4, 0, PID7), KG_WIRE_FIELD},
        {"records packet without records", RAW(V, 1), KG_WIRE_SHORT},
        {"record type 0", RAW(V, 1, 0, 0, 0), KG_WIRE_FIELD},
        {"record type 8", RAW(V, 1, 8, 0, 0), KG_WIRE_FIELD},
        {"remained name with NUL", RAW(V, 1, 7, 2, 0, 'a', 0), KG_WIRE_TEXT},
        {"instance without a name", RAW(V, 1, 6, 4, 0, 0, 2, '/', 'a'),
         KG_WIRE_TEXT},
        {"instance name with '/'", RAW(V, 1, 6, 5, 0, 1, '/', 2, '/', 'a'),
         KG_WIRE_TEXT},
        {"instance without a path", RAW(V, 1, 6, 3, 0, 1, 'a', 0),
         KG_WIRE_FIELD},
        {"instance with a relative path",
         RAW(V, 1, 6, 5, 0, 1, 'a', 2, 'a', 'b'), KG_WIRE_FIELD},
        {"instance path with a control byte",
         RAW(V, 1, 6, 5, 0, 1, 'a', 2, '/', 7), KG_WIRE_TEXT},
        {"instance payload too long",
         RAW(V, 1, 6, 6, 0, 1, 'a', 2, '/', 'a', 0), KG_WIRE_LONG},
        {"instance path past the payload", RAW(V, 1, 6, 4, 0, 1, 'a', 2, '/'),
         KG_WIRE_SHORT},
        {"record length past the end", RAW(V, 1, 1, 3, 0, 'a', 'b'),
         KG_WIRE_SHORT},
        {"kicked name with NUL", RAW(V, 1, 1, 3, 0, 'a', 0, 'b'), KG_WIRE_TEXT},
        {"warn name with NUL", RAW(V, 1, 2, 1, 0, 0), KG_WIRE_TEXT},
        {"pid 0", RAW(V, 1, 3, 4, 0, 0, 0, 0, 0), KG_WIRE_FIELD},
        {"pid past INT32_MAX", RAW(V, 1, 3, 4, 0, 0, 0, 0, 0x80),
         KG_WIRE_FIELD},
        {"pid payload too short", RAW(V, 1, 3, 3, 0, 7, 0, 0), KG_WIRE_SHORT},
        {"pid payload too long", RAW(V, 1, 3, 5, 0, PID7, 0), KG_WIRE_LONG},
        {"refused reason 0", RAW(V, 1, 4, 5, 0, PID7, 0), KG_WIRE_FIELD},
        {"refused reason 4", RAW(V, 1, 4, 5, 0, PID7, 4), KG_WIRE_FIELD},
        {"refused pid 0", RAW(V, 1, 4, 5, 0, 0, 0, 0, 0, 1), KG_WIRE_FIELD},
        {"refused payload too long", RAW(V, 1, 4, 6, 0, PID7, 1, 0),
         KG_WIRE_LONG},
        {"end status 2", RAW(V, 2, 2, 0, END_ZEROS, 0, 0), KG_WIRE_FIELD},
        {"end status 255", RAW(V, 2, 255, 0, END_ZEROS, 0, 0), KG_WIRE_FIELD},
        {"end unknown flag", RAW(V, 2, 0, 64, END_ZEROS, 0, 0), KG_WIRE_FIELD},
        {"end status 75 without confirmed",
         RAW(V, 2, KG_EXIT_PARTIAL, 0, END_ZEROS, 0, 0), KG_WIRE_FIELD},
        {"end confirmed dry run",
         RAW(V, 2, 0, KG_END_CONFIRMED | KG_END_DRY_RUN, END_ZEROS, 0, 0),
         KG_WIRE_FIELD},
        {"end hidden but not scoped",
         RAW(V, 2, 0, KG_END_HIDDEN, END_ZEROS, 0, 0), KG_WIRE_FIELD},
        {"end hidden after records",
         RAW(V, 2, 0, KG_END_HIDDEN | KG_END_SCOPED, 0, 0, 0, 0, 0, 0, 0, 0, 0,
             0, 0, 0, 1, 0, 0, 0, 0, 0),
         KG_WIRE_FIELD},
        {"end scoped with a malformed count",
         RAW(V, 2, 0, KG_END_SCOPED, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,
             0, 0, 0, 0),
         KG_WIRE_FIELD},
        {"end without the record count",
         RAW(V, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
         KG_WIRE_SHORT},
        {"end error with control byte",
         RAW(V, 2, 70, 0, END_ZEROS, 2, 0, 'a', 7), KG_WIRE_TEXT},
        {"end error with NUL", RAW(V, 2, 70, 0, END_ZEROS, 1, 0, 0),
         KG_WIRE_TEXT},
        {"end error invalid UTF-8", RAW(V, 2, 70, 0, END_ZEROS, 1, 0, 0xff),
         KG_WIRE_TEXT},
        {"end force denied without need force",
         RAW(V, 2, 1, KG_END_FORCE_DENIED, END_ZEROS, 0, 0), KG_WIRE_FIELD},
        {"end error_len over the limit", RAW(V, 2, 70, 0, END_ZEROS, 0, 2),
         KG_WIRE_FIELD},
        {"end error_len past the end", RAW(V, 2, 70, 0, END_ZEROS, 3, 0, 'a'),
         KG_WIRE_SHORT},
};

static void test_reply_rejects_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_replies) / sizeof(bad_replies[0]);
	     i++) {
		const struct raw_case *c = &bad_replies[i];
		struct log l = {0};
		bool is_end = true;

		print_message("%s\n", c->name);
		assert_int_equal(decode_log(c->bytes, c->len, &l, &is_end),
		                 c->want);
		assert_int_equal(l.calls, 0);
		assert_false(is_end);
	}
}

/* Who records encoded here by hand, independently of the writer. */
struct who_case {
	const char *name;
	uint32_t pid;
	uint8_t family;
	uint8_t addr[16];
	size_t service_len;
	const char *service;
	size_t user_len;
	const char *user;
	size_t extra; /* bytes added after the payload, inside the record */
	size_t cut;   /* bytes cut off the end of the payload */
	enum kg_wire_err want;
};

static const char svc33[] = "abcdefghijklmnopqrstuvwxyz0123456";

static const struct who_case who_cases[] = {
        {"ipv4 row", 7, 4, {10, 0, 0, 1}, 4, "imap", 1, "a", 0, 0, KG_WIRE_OK},
        {"row without address", 7, 0, {0}, 4, "pop3", 0, "", 0, 0, KG_WIRE_OK},
        {"32-byte service", 7, 0, {0}, 32, svc33, 1, "a", 0, 0, KG_WIRE_OK},
        {"user with any byte but NUL",
         7,
         0,
         {0},
         4,
         "imap",
         3,
         "\x01\xff\n",
         0,
         0,
         KG_WIRE_OK},
        {"pid 0", 0, 4, {10, 0, 0, 1}, 4, "imap", 1, "a", 0, 0, KG_WIRE_FIELD},
        {"family 5", 7, 5, {0}, 4, "imap", 1, "a", 0, 0, KG_WIRE_FIELD},
        {"ipv4-mapped ipv6",
         7,
         6,
         {[10] = 0xff, [11] = 0xff, 192, 0, 2, 1},
         4,
         "imap",
         1,
         "a",
         0,
         0,
         KG_WIRE_FIELD},
        {"empty service",
         7,
         4,
         {10, 0, 0, 1},
         0,
         "",
         1,
         "a",
         0,
         0,
         KG_WIRE_FIELD},
        {"33-byte service", 7, 0, {0}, 33, svc33, 1, "a", 0, 0, KG_WIRE_FIELD},
        {"service with NUL", 7, 0, {0}, 3, "i\0p", 1, "a", 0, 0, KG_WIRE_TEXT},
        {"user with NUL", 7, 0, {0}, 4, "imap", 3, "a\0b", 0, 0, KG_WIRE_TEXT},
        {"payload longer than the row",
         7,
         0,
         {0},
         4,
         "imap",
         1,
         "a",
         1,
         0,
         KG_WIRE_LONG},
        {"user past the payload",
         7,
         0,
         {0},
         4,
         "imap",
         3,
         "abc",
         0,
         4,
         KG_WIRE_SHORT},
        {"payload ends in the address",
         7,
         6,
         {1},
         4,
         "imap",
         1,
         "a",
         0,
         27,
         KG_WIRE_SHORT},
        {"payload ends before the GUID flag",
         7,
         0,
         {0},
         4,
         "imap",
         1,
         "a",
         0,
         3,
         KG_WIRE_SHORT},
};

static size_t who_encode(const struct who_case *c, uint8_t *out)
{
	size_t alen = c->family == 4 ? 4 : c->family == 6 ? 16 : 0;
	size_t plen = 4 + 4 + 1 + alen + 1 + c->service_len + 2 + c->user_len +
	              3 + c->extra - c->cut;
	uint8_t *p = out;

	*p++ = V;
	*p++ = KG_PKT_RECORDS;
	*p++ = KG_REC_WHO;
	*p++ = (uint8_t)plen;
	*p++ = (uint8_t)(plen >> 8);
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(c->pid >> (8 * i));
	memcpy(p, "\x03\0\0\0", 4);
	p += 4;
	*p++ = c->family;
	memcpy(p, c->addr, alen);
	p += alen;
	*p++ = (uint8_t)c->service_len;
	memcpy(p, c->service, c->service_len);
	p += c->service_len;
	*p++ = (uint8_t)c->user_len;
	*p++ = (uint8_t)(c->user_len >> 8);
	memcpy(p, c->user, c->user_len);
	p += c->user_len;
	/* No GUID, no destination, no fields. */
	memset(p, 0, 3);
	p += 3;
	memset(p, 0, c->extra);
	return (size_t)(p - out) + c->extra - c->cut;
}

static void test_reply_who_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(who_cases) / sizeof(who_cases[0]); i++) {
		const struct who_case *c = &who_cases[i];
		uint8_t pkt[128];
		size_t len = who_encode(c, pkt);
		struct log l = {0};
		bool is_end;

		print_message("%s\n", c->name);
		assert_int_equal(decode_log(pkt, len, &l, &is_end), c->want);
		assert_int_equal(l.calls, c->want == KG_WIRE_OK ? 1 : 0);
	}
}

static void test_reply_no_callback_before_bad_record(void **state)
{
	static const uint8_t pkt[] = {V, 1,   3, 4, 0, PID7, 1, 1,
	                              0, 'a', 4, 5, 0, PID7, 9};
	struct log l = {0};
	bool is_end;

	(void)state;
	assert_int_equal(decode_log(pkt, sizeof(pkt), &l, &is_end),
	                 KG_WIRE_FIELD);
	assert_int_equal(l.calls, 0);
	assert_string_equal(l.text, "");
	/* Without the bad record the same packet runs both callbacks. */
	assert_int_equal(decode_log(pkt, sizeof(pkt) - 8, &l, &is_end),
	                 KG_WIRE_OK);
	assert_string_equal(l.text, "P:7|K:a|");
}

static void test_reply_callback_result_stops(void **state)
{
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	struct log l = {.stop_at = 2};
	bool is_end;

	(void)state;
	write_sample(w);
	assert_int_equal(decode_log(s.pkt[0], s.len[0], &l, &is_end),
	                 KG_WIRE_OK);
	assert_string_equal(l.text, "K:alice|W:bob|");
	l = (struct log){.stop_at = 1};
	assert_int_equal(decode_log(s.pkt[1], s.len[1], &l, &is_end),
	                 KG_WIRE_OK);
	assert_true(is_end);
	sink_free(&s);
	free(w);
}

static void test_reply_null_callback_ignores(void **state)
{
	static const struct kg_reply_handler only_pid = {.pid = log_pid};
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	struct log l = {0};
	bool is_end;
	int cb;

	(void)state;
	write_sample(w);
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(kg_reply_decode(s.pkt[i], s.len[i], &only_pid,
		                                 &l, &is_end, &cb),
		                 KG_WIRE_OK);
	assert_string_equal(l.text, "P:42|");
	sink_free(&s);
	free(w);
}

static void test_writer_rejects_invalid(void **state)
{
	static const char service[] = "imap";
	char *big = calloc(1, KG_USER_MAX + 1);
	struct kg_who_row ok = who_row(5, KG_AF_INET, v4_addr, service, "u");
	struct kg_who_row row;
	struct kg_reply_end end = {.status = KG_EXIT_OK};
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	struct log l = {0};
	bool is_end;

	(void)state;
	assert_non_null(big);
	memset(big, 'u', KG_USER_MAX + 1);
	assert_int_equal(kg_rw_user(w, KG_REC_PID, "a", 1), -1);
	assert_int_equal(kg_rw_user(w, KG_REC_KICKED, "a\0b", 3), -1);
	assert_int_equal(kg_rw_user(w, KG_REC_KICKED, big, KG_USER_MAX + 1),
	                 -1);
	assert_int_equal(kg_rw_pid(w, 0), -1);
	assert_int_equal(kg_rw_pid(w, 0x80000000u), -1);
	assert_int_equal(kg_rw_refused(w, 5, 0), -1);
	assert_int_equal(kg_rw_refused(w, 5, 4), -1);
	row = ok;
	row.service_len = 0;
	assert_int_equal(kg_rw_who(w, &row), -1);
	row = ok;
	row.service = svc33;
	row.service_len = KG_SERVICE_MAX + 1;
	assert_int_equal(kg_rw_who(w, &row), -1);
	row = ok;
	row.addr.family = 5;
	assert_int_equal(kg_rw_who(w, &row), -1);
	row = ok;
	row.addr.family = KG_AF_INET6;
	memcpy(row.addr.bytes, (uint8_t[12]){[10] = 0xff, [11] = 0xff}, 12);
	assert_int_equal(kg_rw_who(w, &row), -1);
	row = ok;
	row.user = "a\0b";
	row.user_len = 3;
	assert_int_equal(kg_rw_who(w, &row), -1);
	/* Valid fields whose payload overflows the u16 record length. */
	row = ok;
	row.user = big;
	row.user_len = KG_USER_MAX;
	assert_int_equal(kg_rw_who(w, &row), -1);
	end.status = 3;
	assert_int_equal(kg_rw_end(w, &end), -1);
	end = (struct kg_reply_end){.status = 0, .flags = 64};
	assert_int_equal(kg_rw_end(w, &end), -1);
	end = (struct kg_reply_end){.flags = KG_END_SCOPED, .malformed = 1};
	assert_int_equal(kg_rw_end(w, &end), -1);
	end = (struct kg_reply_end){.status = 1, .flags = KG_END_FORCE_DENIED};
	assert_int_equal(kg_rw_end(w, &end), -1);
	end = (struct kg_reply_end){.error_len = KG_ERRTEXT_MAX + 1};
	assert_int_equal(kg_rw_end(w, &end), -1);
	assert_int_equal(
	        kg_rw_instance(w, &(struct kg_instance_row){"", 0, "/a", 2}),
	        -1);
	assert_int_equal(
	        kg_rw_instance(w, &(struct kg_instance_row){"a b", 3, "/a", 2}),
	        -1);
	assert_int_equal(
	        kg_rw_instance(w, &(struct kg_instance_row){"a", 1, "a", 1}),
	        -1);
	end = (struct kg_reply_end){.error_len = 1, .error = "\x1b"};
	assert_int_equal(kg_rw_end(w, &end), -1);
	assert_int_equal(s.calls, 0);
	/* Every record refused is counted, so that the reply cannot end
	 * as if it were whole; refused end packets are not records. */
	assert_int_equal(w->rejected, 16);
	assert_int_equal(w->records, 0);
	/* Rejected records leave the writer usable. */
	assert_int_equal(kg_rw_who(w, &ok), 0);
	row.user_len = UINT16_MAX - (4 + 4 + 1 + 4 + 1 + 4 + 2 + 3);
	assert_int_equal(kg_rw_who(w, &row), 0);
	end = (struct kg_reply_end){.status = KG_EXIT_OK};
	assert_int_equal(kg_rw_end(w, &end), 0);
	assert_int_equal(s.n, 2);
	/* The end packet counts the records sent, not those refused. */
	assert_memory_equal(s.pkt[1] + 16, ((uint8_t[]){2, 0, 0, 0}), 4);
	assert_int_equal(kg_reply_decode(s.pkt[0], s.len[0], &log_handler, &l,
	                                 &is_end, &(int){0}),
	                 KG_WIRE_OK);
	assert_int_equal(l.calls, 2);
	sink_free(&s);
	free(w);
	free(big);
}

/* ------------------------------------------------- Dovecot 2.4 rows */

/* Eight fields at their longest, an IPv6 destination: what the row
 * carries comes back byte for byte. */
static void test_who_v2_round_trip_at_limits(void **state)
{
	static char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX];
	static char values[KG_FIELDS_MAX][KG_FIELD_VALUE_MAX];
	struct kg_field fields[KG_FIELDS_MAX];
	struct kg_who_row in = who_row_v2(9, "u", NULL, 0), out;
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	bool is_end;
	int cb;

	(void)state;
	for (size_t i = 0; i < KG_FIELDS_MAX; i++) {
		memset(names[i], 'a' + (int)i, sizeof(names[i]));
		memset(values[i], '0' + (int)i, sizeof(values[i]));
		fields[i] = (struct kg_field){names[i], sizeof(names[i]),
		                              values[i], sizeof(values[i])};
	}
	in.fields = fields;
	in.n_fields = KG_FIELDS_MAX;
	kg_addr_set(&in.dest, KG_AF_INET6, v6_addr);
	assert_int_equal(kg_rw_who(w, &in), 0);
	assert_int_equal(kg_rw_end(w, &(struct kg_reply_end){.conns = 1}), 0);
	assert_int_equal(
	        kg_reply_decode(s.pkt[0], s.len[0],
	                        &(struct kg_reply_handler){.who = keep_row},
	                        &out, &is_end, &cb),
	        KG_WIRE_OK);
	assert_true(out.has_guid);
	assert_memory_equal(out.guid, in.guid, sizeof(in.guid));
	assert_memory_equal(&out.dest, &in.dest, sizeof(in.dest));
	assert_int_equal(out.n_fields, KG_FIELDS_MAX);
	for (size_t i = 0; i < KG_FIELDS_MAX; i++) {
		assert_int_equal(kept_fields[i].name_len, KG_FIELD_NAME_MAX);
		assert_memory_equal(kept_fields[i].name, names[i],
		                    KG_FIELD_NAME_MAX);
		assert_int_equal(kept_fields[i].value_len, KG_FIELD_VALUE_MAX);
		assert_memory_equal(kept_fields[i].value, values[i],
		                    KG_FIELD_VALUE_MAX);
	}
	sink_free(&s);
	free(w);
}

/* One way to spoil a valid Dovecot 2.4 row. */
struct v2_fault {
	const char *name;
	void (*spoil)(struct kg_who_row *row, struct kg_field *f);
};

static void conns_two(struct kg_who_row *row, struct kg_field *f)
{
	(void)f;
	row->conns = 2;
}

static void dest_without_guid(struct kg_who_row *row, struct kg_field *f)
{
	(void)f;
	row->has_guid = false;
	row->n_fields = 0;
}

static void fields_without_guid(struct kg_who_row *row, struct kg_field *f)
{
	(void)f;
	row->has_guid = false;
	row->dest.family = KG_AF_NONE;
}

static void nine_fields(struct kg_who_row *row, struct kg_field *f)
{
	(void)f;
	row->n_fields = KG_FIELDS_MAX + 1;
}

static void twin_names(struct kg_who_row *row, struct kg_field *f)
{
	(void)row;
	f[2].name = "b";
}

static void empty_name(struct kg_who_row *row, struct kg_field *f)
{
	(void)row;
	f[0].name_len = 0;
}

static void empty_value(struct kg_who_row *row, struct kg_field *f)
{
	(void)row;
	f[1].value_len = 0;
}

static void long_name(struct kg_who_row *row, struct kg_field *f)
{
	static char name[KG_FIELD_NAME_MAX + 1];

	(void)row;
	memset(name, 'n', sizeof(name));
	f[0] = (struct kg_field){name, sizeof(name), "v", 1};
}

static void long_value(struct kg_who_row *row, struct kg_field *f)
{
	static char value[KG_FIELD_VALUE_MAX + 1];

	(void)row;
	memset(value, 'v', sizeof(value));
	f[0] = (struct kg_field){"n", 1, value, sizeof(value)};
}

static void name_with_eq(struct kg_who_row *row, struct kg_field *f)
{
	(void)row;
	f[0] = (struct kg_field){"a=b", 3, "v", 1};
}

static void value_with_tab(struct kg_who_row *row, struct kg_field *f)
{
	(void)row;
	f[0] = (struct kg_field){"n", 1, "a\tb", 3};
}

static void value_not_utf8(struct kg_who_row *row, struct kg_field *f)
{
	(void)row;
	f[0] = (struct kg_field){"n", 1, "a\xff", 2};
}

static void dest_family_5(struct kg_who_row *row, struct kg_field *f)
{
	(void)f;
	row->dest.family = 5;
}

static void dest_mapped(struct kg_who_row *row, struct kg_field *f)
{
	(void)f;
	row->dest.family = KG_AF_INET6;
	memcpy(row->dest.bytes, (uint8_t[16]){[10] = 0xff, [11] = 0xff, 1}, 16);
}

static const struct v2_fault v2_faults[] = {
        {"a GUID row of two connections", conns_two},
        {"a destination without a GUID", dest_without_guid},
        {"fields without a GUID", fields_without_guid},
        {"nine fields", nine_fields},
        {"a name twice", twin_names},
        {"an empty name", empty_name},
        {"an empty value", empty_value},
        {"a 65-byte name", long_name},
        {"a 256-byte value", long_value},
        {"a name with '='", name_with_eq},
        {"a value with a tab", value_with_tab},
        {"a value that is not UTF-8", value_not_utf8},
        {"destination family 5", dest_family_5},
        {"an IPv4-mapped destination", dest_mapped},
};

static void test_writer_rejects_invalid_v2_rows(void **state)
{
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	size_t n = sizeof(v2_faults) / sizeof(v2_faults[0]);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		struct kg_field f[KG_FIELDS_MAX + 1] = {
		        {"a", 1, "x", 1}, {"b", 1, "y", 1}, {"c", 1, "z", 1}};
		struct kg_who_row row = who_row_v2(5, "u", f, 3);

		for (size_t j = 3; j < KG_FIELDS_MAX + 1; j++)
			f[j] = (struct kg_field){"d", 1, "w", 1};
		print_message("%s\n", v2_faults[i].name);
		assert_int_equal(kg_rw_who(w, &row), 0);
		v2_faults[i].spoil(&row, f);
		assert_int_equal(kg_rw_who(w, &row), -1);
	}
	assert_int_equal(w->rejected, n);
	assert_int_equal(w->records, n);
	sink_free(&s);
	free(w);
}

/* Offsets in a records packet holding the one row who_row_v2(5, "u",
 * {a=x, b=y}) writes: 2 packet + 3 record header bytes, then the payload
 * (pid 4, conns 4, family 1, address 4, service 1 + 4, user 2 + 1). */
#define V2_CONNS    (5 + 4)
#define V2_HAS_GUID (5 + 21)
#define V2_DEST     (V2_HAS_GUID + 1 + 16)
#define V2_N_FIELDS (V2_DEST + 1 + 4)
#define V2_NAME_B   (V2_N_FIELDS + 1 + 4 + 1)

static void test_reply_who_v2_rejects_malformed(void **state)
{
	static const struct {
		const char *name;
		size_t at;
		uint8_t byte;
		enum kg_wire_err want;
	} cases[] = {
	        {"the GUID flag 2", V2_HAS_GUID, 2, KG_WIRE_FIELD},
	        {"no GUID, then the GUID's bytes", V2_HAS_GUID, 0,
	         KG_WIRE_FIELD},
	        {"a GUID row of two connections", V2_CONNS, 2, KG_WIRE_FIELD},
	        {"destination family 5", V2_DEST, 5, KG_WIRE_FIELD},
	        {"nine fields", V2_N_FIELDS, KG_FIELDS_MAX + 1, KG_WIRE_FIELD},
	        {"three fields in the room of two", V2_N_FIELDS, 3,
	         KG_WIRE_SHORT},
	        {"one field, then another's bytes", V2_N_FIELDS, 1,
	         KG_WIRE_LONG},
	        {"a name twice", V2_NAME_B, 'a', KG_WIRE_FIELD},
	        {"a name with a space", V2_NAME_B, ' ', KG_WIRE_TEXT},
	        {"the untouched row", 0, V, KG_WIRE_OK},
	};
	static const struct kg_field f[] = {{"a", 1, "x", 1}, {"b", 1, "y", 1}};
	struct kg_who_row row = who_row_v2(5, "u", f, 2);
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);

	(void)state;
	assert_int_equal(kg_rw_who(w, &row), 0);
	assert_int_equal(kg_rw_end(w, &(struct kg_reply_end){.conns = 1}), 0);
	assert_int_equal(s.len[0], V2_NAME_B + 3);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t pkt[64];
		struct log l = {0};
		bool is_end;

		print_message("%s\n", cases[i].name);
		memcpy(pkt, s.pkt[0], s.len[0]);
		pkt[cases[i].at] = cases[i].byte;
		assert_int_equal(decode_log(pkt, s.len[0], &l, &is_end),
		                 cases[i].want);
		assert_int_equal(l.calls, cases[i].want == KG_WIRE_OK);
	}
	sink_free(&s);
	free(w);
}

/* Status 75 and the confirmed flag go together; remained names travel as
 * user records. */
static void test_reply_confirmed_kick_round_trip(void **state)
{
	struct kg_reply_end end = {.status = KG_EXIT_PARTIAL,
	                           .flags = KG_END_CONFIRMED | KG_END_SCOPED,
	                           .conns = 3,
	                           .pids = 2};
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	struct log l = {0};
	bool is_end;

	(void)state;
	assert_int_equal(kg_rw_user(w, KG_REC_KICKED, "bar", 3), 0);
	assert_int_equal(kg_rw_user(w, KG_REC_REMAINED, "foo", 3), 0);
	assert_int_equal(kg_rw_end(w, &end), 0);
	end.flags |= KG_END_DRY_RUN;
	assert_int_equal(kg_rw_end(w, &end), -1);
	end.flags = KG_END_SCOPED;
	assert_int_equal(kg_rw_end(w, &end), -1);
	assert_int_equal(s.n, 2);
	assert_int_equal(decode_log(s.pkt[0], s.len[0], &l, &is_end),
	                 KG_WIRE_OK);
	assert_int_equal(decode_log(s.pkt[1], s.len[1], &l, &is_end),
	                 KG_WIRE_OK);
	assert_true(is_end);
	assert_string_equal(l.text, "K:bar|M:foo|E:75/40/3/2/0/");
	sink_free(&s);
	free(w);
}

static void test_writer_emit_failure_sticks(void **state)
{
	struct kg_who_row row = who_row(5, KG_AF_INET, v4_addr, "imap", "u");
	struct kg_reply_end end = {.status = KG_EXIT_OK};
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);
	size_t written = 0;

	(void)state;
	s.fail_from = 1;
	while (kg_rw_who(w, &row) == 0) {
		assert_int_equal(s.calls, 0);
		assert_true(++written < KG_PKT_MAX);
	}
	assert_int_equal(s.calls, 1);
	assert_true(written > 1000);
	assert_int_equal(kg_rw_who(w, &row), -1);
	assert_int_equal(kg_rw_user(w, KG_REC_KICKED, "u", 1), -1);
	assert_int_equal(kg_rw_pid(w, 5), -1);
	assert_int_equal(kg_rw_refused(w, 5, KG_REFUSE_GONE), -1);
	assert_int_equal(kg_rw_end(w, &end), -1);
	assert_int_equal(s.calls, 1);
	free(w);
}

static void test_writer_emit_failure_in_end(void **state)
{
	struct kg_reply_end end = {.status = KG_EXIT_OK};
	struct sink s;
	struct kg_reply_writer *w = writer_new(&s);

	(void)state;
	/* The pending records fail to go: the end packet is not sent. */
	s.fail_from = 1;
	assert_int_equal(kg_rw_pid(w, 5), 0);
	assert_int_equal(kg_rw_end(w, &end), -1);
	assert_int_equal(s.calls, 1);
	/* The end packet itself fails. */
	kg_rw_init(w, sink_emit, &s);
	s.calls = 0;
	assert_int_equal(kg_rw_end(w, &end), -1);
	assert_int_equal(s.calls, 1);
	assert_int_equal(kg_rw_pid(w, 5), -1);
	free(w);
}

static void test_strerror_phrases(void **state)
{
	(void)state;
	assert_string_equal(kg_wire_strerror(KG_WIRE_SHORT), "truncated");
	assert_string_equal(kg_wire_strerror(KG_WIRE_LONG), "trailing bytes");
	assert_string_equal(kg_wire_strerror(KG_WIRE_VERSION_BAD),
	                    "unsupported version");
	assert_string_equal(kg_wire_strerror(KG_WIRE_FIELD),
	                    "field out of range");
	assert_string_equal(kg_wire_strerror(KG_WIRE_TEXT), "invalid text");
	assert_string_equal(kg_wire_strerror((enum kg_wire_err)99),
	                    "unknown error");
	assert_string_equal(kg_refuse_strerror(KG_REFUSE_NOT_DOVECOT),
	                    "not a Dovecot mail process");
	assert_string_equal(kg_refuse_strerror(KG_REFUSE_GONE), "already gone");
	assert_string_equal(kg_refuse_strerror(KG_REFUSE_SIGNAL),
	                    "signal failed");
	assert_string_equal(kg_refuse_strerror(0), "unknown reason");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_request_round_trip),
	        cmocka_unit_test(test_request_byte_layout),
	        cmocka_unit_test(test_request_instance_byte_layout),
	        cmocka_unit_test(test_request_field_dest_byte_layout),
	        cmocka_unit_test(test_request_max_lengths_round_trip),
	        cmocka_unit_test(test_request_every_truncation_short),
	        cmocka_unit_test(test_request_trailing_byte_long),
	        cmocka_unit_test(test_request_rejects_malformed),
	        cmocka_unit_test(test_request_encode_checks_first),
	        cmocka_unit_test(test_reply_all_record_kinds_round_trip),
	        cmocka_unit_test(test_reply_byte_layout),
	        cmocka_unit_test(test_reply_many_rows_span_packets),
	        cmocka_unit_test(test_reply_packet_filled_exactly),
	        cmocka_unit_test(test_reply_oversized_packet_long),
	        cmocka_unit_test(test_reply_every_truncation_rejected),
	        cmocka_unit_test(test_reply_single_record_truncation_short),
	        cmocka_unit_test(test_reply_trailing_byte_rejected),
	        cmocka_unit_test(test_reply_rejects_malformed),
	        cmocka_unit_test(test_reply_who_fields),
	        cmocka_unit_test(test_reply_no_callback_before_bad_record),
	        cmocka_unit_test(test_reply_callback_result_stops),
	        cmocka_unit_test(test_reply_null_callback_ignores),
	        cmocka_unit_test(test_writer_rejects_invalid),
	        cmocka_unit_test(test_who_v2_round_trip_at_limits),
	        cmocka_unit_test(test_writer_rejects_invalid_v2_rows),
	        cmocka_unit_test(test_reply_who_v2_rejects_malformed),
	        cmocka_unit_test(test_reply_confirmed_kick_round_trip),
	        cmocka_unit_test(test_writer_emit_failure_sticks),
	        cmocka_unit_test(test_writer_emit_failure_in_end),
	        cmocka_unit_test(test_strerror_phrases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
