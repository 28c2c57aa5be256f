/* SPDX-License-Identifier: MIT */
/* Protocol-2 (Dovecot 2.4) lines: the server's VERSION line, the header
 * of field names, connection rows (real ones from a captured dump, and
 * hostile ones), the pid an unreadable row still names, and rows written
 * back as anvil writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/anvil_v2.h"
#include "tests/unit/testutil.h"
#include "tests/unit/testutil24.h"

/* A string literal with its length, so lines may hold NUL bytes. */
#define LIT(s) s, sizeof(s) - 1

#define GUID_ALICE TU24_GUID_HEX

typedef char names_t[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1];

struct text {
	const char *s;
	size_t len;
};

static void test_version_line(void **state)
{
	static const struct {
		struct text line;
		bool ok;
	} cases[] = {
	        {{LIT("VERSION\tanvil-server\t2\t0")}, true},
	        {{LIT("VERSION\tanvil-server\t2\t1")}, true},
	        {{LIT("VERSION\tanvil-server\t2\t4294967295")}, true},
	        {{LIT("VERSION\tanvil-server\t2\t4294967296")}, false},
	        {{LIT("VERSION\tanvil-server\t3\t0")}, false},
	        {{LIT("VERSION\tanvil-server\t1\t0")}, false},
	        {{LIT("VERSION\tanvil-server\t20\t0")}, false},
	        {{LIT("VERSION\tanvil-server\t2\t00")}, false},
	        {{LIT("VERSION\tanvil-server\t2\t01")}, false},
	        {{LIT("VERSION\tanvil-server\t2\t-1")}, false},
	        {{LIT("VERSION\tanvil-server\t2\t")}, false},
	        {{LIT("VERSION\tanvil-server\t2")}, false},
	        {{LIT("VERSION\tanvil-server\t2\t0\r")}, false},
	        {{LIT("VERSION\tanvil-server\t2\t0\t")}, false},
	        {{LIT("VERSION\tanvil-server\t2\t0\0")}, false},
	        {{LIT("VERSION\tanvil-client\t2\t0")}, false},
	        {{LIT("VERSION\tanvil\t1\t0")}, false},
	        {{LIT("version\tanvil-server\t2\t0")}, false},
	        {{LIT("")}, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("version line %zu\n", i);
		assert_int_equal(kg_anvil2_version_ok(cases[i].line.s,
		                                      cases[i].line.len),
		                 cases[i].ok);
	}
}

/* names[0..n) joined by spaces. */
static void join_names(names_t names, size_t n, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
		                        i ? " " : "", names[i]);
}

static void test_header_good(void **state)
{
	static const struct {
		struct text line;
		const char *names;
		size_t n;
	} cases[] = {
	        {{LIT("")}, "", 0},
	        {{LIT("user_alias\tuser_tenant")}, "user_alias user_tenant", 2},
	        {{LIT("a")}, "a", 1},
	        {{LIT("a\tb\tc\td\te\tf\tg\th")}, "a b c d e f g h", 8},
	        {{LIT("Az.09_-")}, "Az.09_-", 1},
	        {{LIT("a\tA")}, "a A", 2},
	        {{LIT("ab\ta")}, "ab a", 2},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		names_t names;
		char joined[128];
		size_t n = 99;

		print_message("header %zu\n", i);
		assert_int_equal(kg_anvil2_parse_header(cases[i].line.s,
		                                        cases[i].line.len,
		                                        names, &n),
		                 KG_LINE_OK);
		assert_int_equal(n, cases[i].n);
		join_names(names, n, joined, sizeof(joined));
		assert_string_equal(joined, cases[i].names);
	}
}

/* A name of len bytes of 'n', as the header's only name: its limit is
 * KG_FIELD_NAME_MAX. */
static enum kg_line_err header_of_len(size_t len, names_t names, size_t *n)
{
	char line[KG_FIELD_NAME_MAX + 2];

	memset(line, 'n', len);
	return kg_anvil2_parse_header(line, len, names, n);
}

static void test_header_bad(void **state)
{
	static const struct text cases[] = {
	        {LIT("a\tb\tc\td\te\tf\tg\th\ti")},
	        {LIT("user_alias\tuser_alias")},
	        {LIT("a\tb\ta")},
	        {LIT("a\t\tb")},
	        {LIT("a\t")},
	        {LIT("\ta")},
	        {LIT("\t")},
	        {LIT("user alias")},
	        {LIT("user\001talias")},
	        {LIT("user_tenant\r")},
	        {LIT("user\0tenant")},
	        {LIT("us\xc3\xa9r")},
	        {LIT("user@tenant")},
	        {LIT("user/tenant")},
	};
	names_t names;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("header %zu\n", i);
		n = 99;
		assert_int_equal(kg_anvil2_parse_header(
		                         cases[i].s, cases[i].len, names, &n),
		                 KG_LINE_HEADER);
		assert_int_equal(n, 0);
	}
	assert_int_equal(header_of_len(KG_FIELD_NAME_MAX, names, &n),
	                 KG_LINE_OK);
	assert_int_equal(strlen(names[0]), KG_FIELD_NAME_MAX);
	assert_int_equal(header_of_len(KG_FIELD_NAME_MAX + 1, names, &n),
	                 KG_LINE_HEADER);
	assert_int_equal(n, 0);
}

/* A row parsed with an exact-size scratch, so that a sanitized build
 * sees any write past it. */
struct parsed {
	enum kg_line_err err;
	struct kg_conn c;
	struct kg_field fields[KG_FIELDS_MAX];
	char *scratch;
};

static void parse_row(const char *line, size_t len, names_t names,
                      size_t n_names, struct parsed *out)
{
	out->scratch = malloc(len + 1);
	assert_non_null(out->scratch);
	memset(&out->c, 0xa5, sizeof(out->c));
	out->err = kg_anvil2_parse_row(line, len, names, n_names, &out->c,
	                               out->scratch, out->fields);
}

static void parsed_free(struct parsed *p)
{
	free(p->scratch);
}

static names_t capture_names = {"user_alias", "user_tenant"};

/* What a good row must give. */
struct want_row {
	uint32_t pid;
	const char *user;
	size_t user_len;
	const char *service;
	const char *addr;   /* NULL: none */
	const char *guid;   /* 32 hex digits */
	const char *dest;   /* NULL: none */
	const char *fields; /* "name=value" joined by spaces */
};

static void guid_from_hex(const char *hex, uint8_t guid[16])
{
	for (size_t i = 0; i < 16; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		guid[i] = (uint8_t)v;
	}
}

static void join_fields(const struct kg_conn *c, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < c->n_fields; i++)
		len += (size_t)snprintf(
		        out + len, cap - len, "%s%.*s=%.*s", i ? " " : "",
		        (int)c->fields[i].name_len, c->fields[i].name,
		        (int)c->fields[i].value_len, c->fields[i].value);
}

static void assert_row(const struct kg_conn *c, const struct want_row *w)
{
	struct kg_addr addr = tu_addr(w->addr), dest = tu_addr(w->dest);
	uint8_t guid[16];
	char fields[600];

	guid_from_hex(w->guid, guid);
	assert_int_equal(c->pid, w->pid);
	assert_int_equal(c->refcount, 1);
	assert_int_equal(c->user_len, w->user_len);
	assert_memory_equal(c->user, w->user, w->user_len);
	assert_int_equal(c->service_len, strlen(w->service));
	assert_memory_equal(c->service, w->service, c->service_len);
	assert_memory_equal(&c->addr, &addr, sizeof(addr));
	assert_true(c->has_guid);
	assert_memory_equal(c->guid, guid, 16);
	assert_memory_equal(&c->dest, &dest, sizeof(dest));
	join_fields(c, fields, sizeof(fields));
	assert_string_equal(fields, w->fields);
}

struct good_row {
	struct text line;
	struct want_row want;
};

#define USER(s) s, sizeof(s) - 1

static const struct good_row good_rows[] = {
        /* Rows of the captured dump, as Dovecot 2.4.1 wrote them. */
        {{LIT("8214\talice@tenant-a.example\timap\t127.0.0.3\t" GUID_ALICE
              "\t\talias-alice\ttenant-a.example")},
         {8214, USER("alice@tenant-a.example"), "imap", "127.0.0.3", GUID_ALICE,
          NULL, "user_alias=alias-alice user_tenant=tenant-a.example"}},
        {{LIT("8214\tjane\timap\t::1\tf8f25b0e5a7e116b1620000083ecc375\t\t"
              "alias-jane")},
         {8214, USER("jane"), "imap", "::1", "f8f25b0e5a7e116b1620000083ecc375",
          NULL, "user_alias=alias-jane"}},
        {{LIT("8226\tbar\tpop3\t127.0.0.3\tb328c0055a7e116b2220000083ecc375"
              "\t\talias-bar")},
         {8226, USER("bar"), "pop3", "127.0.0.3",
          "b328c0055a7e116b2220000083ecc375", NULL, "user_alias=alias-bar"}},
        /* No value at all; only the second; a proxied connection. */
        {{LIT("7\tu\timap\t192.0.2.1\t" GUID_ALICE "\t")},
         {7, USER("u"), "imap", "192.0.2.1", GUID_ALICE, NULL, ""}},
        {{LIT("7\tu\timap\t192.0.2.1\t" GUID_ALICE "\t\t\tt.example")},
         {7, USER("u"), "imap", "192.0.2.1", GUID_ALICE, NULL,
          "user_tenant=t.example"}},
        {{LIT("7\tu\timap\t\t" GUID_ALICE "\t2001:db8::9\t\t")},
         {7, USER("u"), "imap", NULL, GUID_ALICE, "2001:db8::9", ""}},
        /* Upper-case hex is the same GUID. */
        {{LIT("7\tu\timap\t\t50B5DE0C5A7E116B1620000083ECC375\t")},
         {7, USER("u"), "imap", NULL, GUID_ALICE, NULL, ""}},
        /* Escapes in the user and a value; bytes a name may hold. */
        {{LIT("2147483647\ta\001tb\0011\001n\001r\tpop3\t::ffff:192.0.2."
              "1\t" GUID_ALICE "\t::ffff:192.0.2.2\tx y")},
         {2147483647, USER("a\tb\001\n\r"), "pop3", "192.0.2.1", GUID_ALICE,
          "192.0.2.2", "user_alias=x y"}},
        {{LIT("7\t\xff\xfe\timap\tnot-an-ip\t" GUID_ALICE
              "\t1.2.3.4%eth0\t\xc3\xa9")},
         {7, USER("\xff\xfe"), "imap", NULL, GUID_ALICE, NULL,
          "user_alias=\xc3\xa9"}},
        {{LIT("7\tu\tabcdefghijklmnopqrstuvwxyz012345\t\t" GUID_ALICE "\t")},
         {7, USER("u"), "abcdefghijklmnopqrstuvwxyz012345", NULL, GUID_ALICE,
          NULL, ""}},
};

static void test_row_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good_rows) / sizeof(good_rows[0]); i++) {
		const struct good_row *t = &good_rows[i];
		struct parsed p;

		print_message("row %zu\n", i);
		parse_row(t->line.s, t->line.len, capture_names, 2, &p);
		assert_int_equal(p.err, KG_LINE_OK);
		assert_row(&p.c, &t->want);
		parsed_free(&p);
	}
}

struct bad_row {
	struct text line;
	enum kg_line_err err;
};

/* PID \t USER \t SERVICE \t IP, then the GUID, then DEST and values. */
#define ROW(head, tail) head "\t" GUID_ALICE "\t" tail

static const struct bad_row bad_rows[] = {
        /* Too few fields (no DEST), too many values. */
        {{LIT("")}, KG_LINE_FIELDS},
        {{LIT("7\tu\timap\t192.0.2.1")}, KG_LINE_FIELDS},
        {{LIT("7\tu\timap\t192.0.2.1\t" GUID_ALICE)}, KG_LINE_FIELDS},
        {{LIT(ROW("7\tu\timap\t", "\ta\tb\tc"))}, KG_LINE_FIELDS},
        {{LIT(ROW("7\tu\timap\t", "\ta\tb\t"))}, KG_LINE_FIELDS},
        /* Pids. */
        {{LIT(ROW("0\tu\timap\t", ""))}, KG_LINE_PID},
        {{LIT(ROW("07\tu\timap\t", ""))}, KG_LINE_PID},
        {{LIT(ROW("2147483648\tu\timap\t", ""))}, KG_LINE_PID},
        {{LIT(ROW("99999999999\tu\timap\t", ""))}, KG_LINE_PID},
        {{LIT(ROW("-7\tu\timap\t", ""))}, KG_LINE_PID},
        {{LIT(ROW("+7\tu\timap\t", ""))}, KG_LINE_PID},
        {{LIT(ROW(" 7\tu\timap\t", ""))}, KG_LINE_PID},
        {{LIT(ROW("\tu\timap\t", ""))}, KG_LINE_PID},
        /* Names: empty, overlong service, NUL through "\001" "0". */
        {{LIT(ROW("7\t\timap\t", ""))}, KG_LINE_IDENT},
        {{LIT(ROW("7\tu\t\t", ""))}, KG_LINE_IDENT},
        {{LIT(ROW("7\tu\tabcdefghijklmnopqrstuvwxyz0123456\t", ""))},
         KG_LINE_IDENT},
        {{LIT(ROW("7\tu\0010v\timap\t", ""))}, KG_LINE_IDENT},
        {{LIT(ROW("7\t\0010\timap\t", ""))}, KG_LINE_IDENT},
        {{LIT(ROW("7\tu\tim\0010ap\t", ""))}, KG_LINE_IDENT},
        {{LIT(ROW("7\tu\001x\timap\t", ""))}, KG_LINE_ESCAPE},
        {{LIT(ROW("7\tu\001\timap\t", ""))}, KG_LINE_ESCAPE},
        {{LIT(ROW("7\tu\t\001\t", ""))}, KG_LINE_ESCAPE},
        /* GUIDs: short, long, not hex, escaped, with a space, empty. */
        {{LIT("7\tu\timap\t\t50b5de0c5a7e116b1620000083ecc37\t")},
         KG_LINE_GUID},
        {{LIT("7\tu\timap\t\t50b5de0c5a7e116b1620000083ecc3755\t")},
         KG_LINE_GUID},
        {{LIT("7\tu\timap\t\t50b5de0c5a7e116b1620000083ecc37g\t")},
         KG_LINE_GUID},
        {{LIT("7\tu\timap\t\t50b5de0c5a7e116b1620000083ecc3\001t\t")},
         KG_LINE_GUID},
        {{LIT("7\tu\timap\t\t 0b5de0c5a7e116b1620000083ecc375\t")},
         KG_LINE_GUID},
        {{LIT("7\tu\timap\t\t\t")}, KG_LINE_GUID},
        /* Addresses that are not escaped right. */
        {{LIT(ROW("7\tu\timap\t1.2.3.4\001q", ""))}, KG_LINE_ESCAPE},
        {{LIT(ROW("7\tu\timap\t", "1.2.3.4\001"))}, KG_LINE_ESCAPE},
        /* Values a reply cannot carry. */
        {{LIT(ROW("7\tu\timap\t", "\ta\0010b"))}, KG_LINE_FIELD},
        {{LIT(ROW("7\tu\timap\t", "\ta\001nb"))}, KG_LINE_FIELD},
        {{LIT(ROW("7\tu\timap\t", "\ta\001tb"))}, KG_LINE_FIELD},
        {{LIT(ROW("7\tu\timap\t", "\ta\0011b"))}, KG_LINE_FIELD},
        {{LIT(ROW("7\tu\timap\t", "\talias-foo\r"))}, KG_LINE_FIELD},
        {{LIT(ROW("7\tu\timap\t", "\tx\ttenant\r"))}, KG_LINE_FIELD},
        {{LIT(ROW("7\tu\timap\t", "\t\xff"))}, KG_LINE_FIELD},
        {{LIT(ROW("7\tu\timap\t", "\t\x7f"))}, KG_LINE_FIELD},
        {{LIT(ROW("7\tu\timap\t", "\ta\001q"))}, KG_LINE_ESCAPE},
};

static void test_row_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
		struct parsed p;

		print_message("row %zu\n", i);
		parse_row(bad_rows[i].line.s, bad_rows[i].line.len,
		          capture_names, 2, &p);
		assert_int_equal(p.err, bad_rows[i].err);
		parsed_free(&p);
	}
}

/* A row of "7\tu\timap\t\tGUID\t" and n_values values of len bytes. */
static char *row_with_values(size_t n_values, size_t len, size_t *row_len)
{
	static const char head[] = "7\tu\timap\t\t" GUID_ALICE "\t";
	size_t cap = sizeof(head) + n_values * (len + 1);
	char *row = malloc(cap);
	size_t n = sizeof(head) - 1;

	assert_non_null(row);
	memcpy(row, head, n);
	for (size_t i = 0; i < n_values; i++) {
		row[n++] = '\t';
		memset(row + n, 'v', len);
		n += len;
	}
	*row_len = n;
	return row;
}

/* The header's names bound the values, which are each at most
 * KG_FIELD_VALUE_MAX bytes; a header that did not parse names none. */
static void test_row_value_limits(void **state)
{
	names_t eight = {"a", "b", "c", "d", "e", "f", "g", "h"};
	const struct {
		size_t names, values, len;
		enum kg_line_err err;
	} cases[] = {
	        {8, 8, KG_FIELD_VALUE_MAX, KG_LINE_OK},
	        {8, 8, KG_FIELD_VALUE_MAX + 1, KG_LINE_FIELD},
	        {8, 9, 1, KG_LINE_FIELDS},
	        {2, 3, 1, KG_LINE_FIELDS},
	        {0, 1, 1, KG_LINE_FIELDS},
	        {0, 0, 0, KG_LINE_OK},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *row =
		        row_with_values(cases[i].values, cases[i].len, &len);
		struct parsed p;

		print_message("case %zu\n", i);
		parse_row(row, len, eight, cases[i].names, &p);
		assert_int_equal(p.err, cases[i].err);
		if (p.err == KG_LINE_OK) {
			assert_int_equal(p.c.n_fields, cases[i].values);
			for (size_t k = 0; k < p.c.n_fields; k++) {
				assert_string_equal(p.c.fields[k].name,
				                    eight[k]);
				assert_int_equal(p.c.fields[k].value_len,
				                 cases[i].len);
			}
		}
		parsed_free(&p);
		free(row);
	}
}

static void test_recover_pid(void **state)
{
	static const struct {
		struct text line;
		uint32_t pid;
	} cases[] = {
	        {{LIT("8214\tfoo\tbroken")}, 8214},
	        {{LIT("8214\t")}, 8214},
	        {{LIT("2147483647\tx")}, 2147483647},
	        {{LIT("2147483648\tx")}, 0},
	        {{LIT("0\tx")}, 0},
	        {{LIT("08214\tx")}, 0},
	        {{LIT("8214")}, 0},
	        {{LIT("\t8214\tx")}, 0},
	        {{LIT("x\t8214")}, 0},
	        {{LIT("")}, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("line %zu\n", i);
		assert_int_equal(kg_anvil2_recover_pid(cases[i].line.s,
		                                       cases[i].line.len),
		                 cases[i].pid);
	}
}

static void test_format_row_as_anvil_writes(void **state)
{
	static const char want[] = "42\ta\001tb\0011\timap\t2001:db8::1\t"
	                           "0000002ac3750000000000000000c375\t"
	                           "192.0.2.9\t\tt\001n";
	const struct kg_field fields[] = {{"user_tenant", 11, "t\n", 2}};
	struct kg_conn c = tu24_conn(42, "imap", "a\tb\001", "2001:db8::1", 42);
	char out[256];

	(void)state;
	c.guid[4] = 0xc3;
	c.guid[5] = 0x75;
	c.dest = tu_addr("192.0.2.9");
	c.fields = fields;
	c.n_fields = 1;
	assert_int_equal(
	        kg_anvil2_format_row(&c, capture_names, 2, out, sizeof(out)),
	        sizeof(want) - 1);
	assert_memory_equal(out, want, sizeof(want) - 1);
	assert_int_equal(kg_anvil2_format_row(&c, capture_names, 2, out,
	                                      sizeof(want) - 1),
	                 sizeof(want) - 1);
	assert_int_equal(kg_anvil2_format_row(&c, capture_names, 2, out,
	                                      sizeof(want) - 2),
	                 0);
	/* Without names, values are not written. */
	assert_int_equal(
	        kg_anvil2_format_row(&c, capture_names, 0, out, sizeof(out)),
	        sizeof(want) - 1 - strlen("\t\tt\001n"));
}

static void assert_same_conn(const struct kg_conn *a, const struct kg_conn *b)
{
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->refcount, b->refcount);
	assert_int_equal(a->user_len, b->user_len);
	assert_memory_equal(a->user, b->user, a->user_len);
	assert_int_equal(a->service_len, b->service_len);
	assert_memory_equal(a->service, b->service, a->service_len);
	assert_memory_equal(&a->addr, &b->addr, sizeof(a->addr));
	assert_memory_equal(a->guid, b->guid, 16);
	assert_memory_equal(&a->dest, &b->dest, sizeof(a->dest));
	assert_int_equal(a->n_fields, b->n_fields);
	for (size_t i = 0; i < a->n_fields; i++) {
		assert_string_equal(a->fields[i].name, b->fields[i].name);
		assert_int_equal(a->fields[i].value_len,
		                 b->fields[i].value_len);
		assert_memory_equal(a->fields[i].value, b->fields[i].value,
		                    a->fields[i].value_len);
	}
}

/* Parses line, writes it back and parses that: the same connection;
 * with exact, the line written is line itself. */
static void check_round_trip(const char *line, size_t len, bool exact)
{
	struct parsed a, b;
	char out[1024];
	size_t n;

	parse_row(line, len, capture_names, 2, &a);
	assert_int_equal(a.err, KG_LINE_OK);
	n = kg_anvil2_format_row(&a.c, capture_names, 2, out, sizeof(out));
	assert_true(n > 0);
	assert_null(memchr(out, '\n', n));
	if (exact) {
		assert_int_equal(n, len);
		assert_memory_equal(out, line, len);
	}
	parse_row(out, n, capture_names, 2, &b);
	assert_int_equal(b.err, KG_LINE_OK);
	assert_same_conn(&a.c, &b.c);
	parsed_free(&a);
	parsed_free(&b);
}

/* Every row of the good cases, and of the captured dumps, which come
 * back as Dovecot wrote them. */
static void test_format_round_trips(void **state)
{
	const struct tu24_capture *caps[] = {&tu24_shared, &tu24_single};
	size_t rows = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(good_rows) / sizeof(good_rows[0]); i++)
		check_round_trip(good_rows[i].line.s, good_rows[i].line.len,
		                 false);
	for (size_t k = 0; k < 2; k++) {
		const char *s = caps[k]->bytes, *end = s + caps[k]->len;

		/* Past VERSION and the header; up to the empty line. */
		s = strchr(strchr(s, '\n') + 1, '\n') + 1;
		while (s < end && *s != '\n') {
			const char *nl = memchr(s, '\n', (size_t)(end - s));

			check_round_trip(s, (size_t)(nl - s), true);
			rows++;
			s = nl + 1;
		}
	}
	assert_int_equal(rows, tu24_shared.rows + tu24_single.rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_version_line),
	        cmocka_unit_test(test_header_good),
	        cmocka_unit_test(test_header_bad),
	        cmocka_unit_test(test_row_good),
	        cmocka_unit_test(test_row_bad),
	        cmocka_unit_test(test_row_value_limits),
	        cmocka_unit_test(test_recover_pid),
	        cmocka_unit_test(test_format_row_as_anvil_writes),
	        cmocka_unit_test(test_format_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
