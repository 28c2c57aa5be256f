/* SPDX-License-Identifier: MIT */
/* The who collector: row order, scope and request filtering, merging of
 * equal rows, and interned names that stay exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/who.h"
#include "proto/netparse.h"
#include "tests/unit/testutil.h"
#include "tests/unit/testutil24.h"

#define MAX_CONNS 10

struct tconn {
	uint32_t pid; /* 0 ends the list */
	const char *service;
	const char *user;
	const char *addr; /* NULL: no address */
	uint32_t refcount;
};

struct trow {
	const char *user; /* NULL ends the list */
	const char *service;
	uint32_t pid;
	const char *addr; /* as kg_addr_format writes it */
	uint32_t conns;
};

struct who_case {
	const char *name;
	const char *glob;
	const char *net;
	bool tenant_a;
	struct tconn conns[MAX_CONNS];
	struct trow rows[MAX_CONNS];
	uint32_t pids;
	uint32_t conns_total;
};

static int add_conn(struct kg_who *w, const struct tconn *t)
{
	struct kg_conn c =
	        tu_conn(t->pid, t->service, t->user, t->addr, t->refcount);

	return kg_who_add(w, &c);
}

static void assert_row(const struct kg_who_row *got, const struct trow *want)
{
	char addr[KG_NET_STRLEN];

	assert_int_equal(got->user_len, strlen(want->user));
	assert_memory_equal(got->user, want->user, got->user_len);
	assert_int_equal(got->service_len, strlen(want->service));
	assert_memory_equal(got->service, want->service, got->service_len);
	assert_int_equal(got->pid, want->pid);
	kg_addr_format(&got->addr, addr);
	assert_string_equal(addr, want->addr);
	assert_int_equal(got->conns, want->conns);
}

static void check_case(const struct who_case *tc)
{
	struct kg_request req = tu_request(KG_OP_WHO, tc->glob, tc->net, 0);
	struct kg_who *w = kg_who_new(&req, tc->tenant_a ? &tu_scope_tenant_a
	                                                 : &tu_scope_all);
	struct kg_who_result r;
	size_t n_rows = 0;

	print_message("case: %s\n", tc->name);
	assert_non_null(w);
	for (const struct tconn *t = tc->conns; t->pid; t++)
		assert_int_equal(add_conn(w, t), 0);
	assert_int_equal(kg_who_finish(w, &r), 0);
	while (tc->rows[n_rows].user)
		n_rows++;
	assert_int_equal(r.n_rows, n_rows);
	for (size_t i = 0; i < n_rows; i++) {
		struct kg_who_row row;

		kg_who_row(w, i, &row);
		assert_row(&row, &tc->rows[i]);
	}
	assert_int_equal(r.pids, tc->pids);
	assert_int_equal(r.conns, tc->conns_total);
	kg_who_free(w);
}

static const struct who_case cases[] = {
        {
                .name = "sorted by user bytewise, service, pid, address",
                .conns = {{7, "imap", "bob", "192.0.2.1", 1},
                          {5, "pop3", "alice", NULL, 1},
                          {5, "imap", "alice", "2001:db8::1", 2},
                          {5, "imap", "alice", "192.0.2.9", 1},
                          {3, "imap", "alice", "192.0.2.9", 1},
                          {4, "imap", "Bob", NULL, 1},
                          {5, "imap", "alice", "192.0.2.10", 1},
                          {5, "imap", "alice", NULL, 1}},
                .rows = {{"Bob", "imap", 4, "", 1},
                         {"alice", "imap", 3, "192.0.2.9", 1},
                         {"alice", "imap", 5, "", 1},
                         {"alice", "imap", 5, "192.0.2.9", 1},
                         {"alice", "imap", 5, "192.0.2.10", 1},
                         {"alice", "imap", 5, "2001:db8::1", 2},
                         {"alice", "pop3", 5, "", 1},
                         {"bob", "imap", 7, "192.0.2.1", 1}},
                .pids = 4,
                .conns_total = 9,
        },
        {
                .name = "out-of-scope connections are not listed",
                .tenant_a = true,
                .conns = {{41, "imap", "x@tenant-b.example", "192.0.2.1", 1},
                          {40, "imap", "a@tenant-a.example", "192.0.2.2", 1},
                          {40, "imap", "y@tenant-b.example", "192.0.2.3", 1}},
                .rows = {{"a@tenant-a.example", "imap", 40, "192.0.2.2", 1}},
                .pids = 1,
                .conns_total = 1,
        },
        {
                .name = "glob filters case-insensitively",
                .glob = "ba?",
                .conns = {{10, "imap", "bar", NULL, 1},
                          {11, "imap", "BAZ", NULL, 3},
                          {12, "imap", "bart", NULL, 1},
                          {13, "imap", "jane", NULL, 1}},
                .rows = {{"BAZ", "imap", 11, "", 3},
                         {"bar", "imap", 10, "", 1}},
                .pids = 2,
                .conns_total = 4,
        },
        {
                .name = "network filters across v4, mapped v4 and v6",
                .net = "192.0.2.0/24",
                .conns = {{1, "imap", "foo", "192.0.2.53", 1},
                          {2, "imap", "foo", "::ffff:192.0.2.54", 1},
                          {3, "imap", "foo", "fd95:4eed:38ba::25", 1},
                          {4, "imap", "foo", NULL, 1},
                          {5, "imap", "foo", "198.51.100.1", 1}},
                .rows = {{"foo", "imap", 1, "192.0.2.53", 1},
                         {"foo", "imap", 2, "192.0.2.54", 1}},
                .pids = 2,
                .conns_total = 2,
        },
        {
                .name = "v6 network with a glob",
                .glob = "*@x",
                .net = "fd95::/16",
                .conns = {{1, "pop3", "a@x", "fd95:4eed:38ba::25", 1},
                          {2, "pop3", "a@y", "fd95:4eed:38ba::26", 1},
                          {3, "pop3", "b@x", "192.0.2.1", 1}},
                .rows = {{"a@x", "pop3", 1, "fd95:4eed:38ba::25", 1}},
                .pids = 1,
                .conns_total = 1,
        },
        {
                .name = "equal rows merge, refcounts summed",
                .conns = {{9, "imap", "foo", "192.0.2.1", 2},
                          {9, "imap", "foo", "192.0.2.2", 1},
                          {9, "imap", "foo", "192.0.2.1", 3},
                          {9, "imap", "FOO", "192.0.2.1", 1}},
                .rows = {{"FOO", "imap", 9, "192.0.2.1", 1},
                         {"foo", "imap", 9, "192.0.2.1", 5},
                         {"foo", "imap", 9, "192.0.2.2", 1}},
                .pids = 1,
                .conns_total = 7,
        },
        {
                .name = "a merged refcount saturates",
                .conns = {{9, "imap", "foo", NULL, UINT32_MAX},
                          {9, "imap", "foo", NULL, 2}},
                .rows = {{"foo", "imap", 9, "", UINT32_MAX}},
                .pids = 1,
                .conns_total = UINT32_MAX,
        },
        {
                .name = "nothing matches: no rows",
                .glob = "nobody",
                .conns = {{1, "imap", "foo", NULL, 1}},
                .pids = 0,
                .conns_total = 0,
        },
};

static void test_who_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

/* Names that differ in case, by a suffix or only in bytes above 0x7f,
 * over enough distinct names to grow the pool's index several times. */
#define N_USERS 6000

static void make_name(unsigned i, char *buf, size_t cap)
{
	static const char *const suffixes[] = {"", "", "x", "\xc3\xa9", "\xff"};

	snprintf(buf, cap, "%c%u%s", i % 5 == 1 ? 'U' : 'u', i / 5,
	         suffixes[i % 5]);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_who_interning_keeps_names_exact(void **state)
{
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_who *w = kg_who_new(&req, &tu_scope_all);
	char **names = calloc(N_USERS, sizeof(*names));
	struct kg_who_result r;
	char buf[32];

	(void)state;
	assert_non_null(w);
	assert_non_null(names);
	/* Each user on two processes, added in two separate passes. */
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < N_USERS; i++) {
			struct tconn t = {1 + i + pass * N_USERS, "imap", buf,
			                  NULL, 1};

			make_name(i, buf, sizeof(buf));
			assert_int_equal(add_conn(w, &t), 0);
		}
	}
	for (unsigned i = 0; i < N_USERS; i++) {
		make_name(i, buf, sizeof(buf));
		names[i] = strdup(buf);
		assert_non_null(names[i]);
	}
	qsort(names, N_USERS, sizeof(*names), cmp_names);
	assert_int_equal(kg_who_finish(w, &r), 0);
	assert_int_equal(r.n_rows, 2 * N_USERS);
	assert_int_equal(r.pids, 2 * N_USERS);
	for (size_t i = 0; i < N_USERS; i++) {
		struct kg_who_row a;
		struct kg_who_row b;

		kg_who_row(w, 2 * i, &a);
		kg_who_row(w, 2 * i + 1, &b);
		assert_int_equal(a.user_len, strlen(names[i]));
		assert_memory_equal(a.user, names[i], a.user_len);
		/* One copy per distinct name. */
		assert_ptr_equal(a.user, b.user);
		assert_ptr_equal(a.service, b.service);
		assert_true(a.pid < b.pid);
		free(names[i]);
	}
	free(names);
	kg_who_free(w);
}

static void test_who_finish_twice_same_rows(void **state)
{
	static const struct tconn conns[] = {
	        {9, "imap", "foo", "192.0.2.1", 2},
	        {8, "imap", "bar", NULL, 1},
	        {9, "imap", "foo", "192.0.2.1", 3},
	        {9, "imap", "foo", "192.0.2.1", 4},
	};
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_who *w = kg_who_new(&req, &tu_scope_all);
	struct kg_who_result r;
	struct kg_who_row row;

	(void)state;
	assert_non_null(w);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(add_conn(w, &conns[i]), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(kg_who_finish(w, &r), 0);
		assert_int_equal(r.n_rows, 2);
		assert_int_equal(r.conns, 10);
		assert_int_equal(r.pids, 2);
		kg_who_row(w, 1, &row);
		assert_row(&row,
		           &(struct trow){"foo", "imap", 9, "192.0.2.1", 9});
	}
	/* The collection is complete. */
	assert_int_equal(add_conn(w, &conns[1]), -1);
	kg_who_free(w);
}

/* Dovecot 2.4: a row is one connection, with its GUID, destination and
 * alternative usernames. A row as text: "USER SERVICE PID ADDR>DEST GUID
 * NAME=VALUE...". */
static void row_text(const struct kg_who_row *r, char *out, size_t cap)
{
	char addr[KG_NET_STRLEN], dest[KG_NET_STRLEN];
	size_t len;

	assert_true(r->has_guid);
	assert_int_equal(r->conns, 1);
	kg_addr_format(&r->addr, addr);
	kg_addr_format(&r->dest, dest);
	len = (size_t)snprintf(out, cap, "%.*s %.*s %u %s>%s ",
	                       (int)r->user_len, r->user, (int)r->service_len,
	                       r->service, r->pid, addr, dest);
	for (size_t i = 0; i < 16; i++)
		len += (size_t)snprintf(out + len, cap - len, "%02x",
		                        r->guid[i]);
	for (size_t i = 0; i < r->n_fields; i++)
		len += (size_t)snprintf(
		        out + len, cap - len, " %.*s=%.*s",
		        (int)r->fields[i].name_len, r->fields[i].name,
		        (int)r->fields[i].value_len, r->fields[i].value);
	assert_true(len < cap);
}

/* The listing of a collector, one row per line; it must be the same
 * whatever the size of the runs merged. */
static void check_listing(const struct kg_conn *conns, size_t n,
                          const struct kg_scope *scope, const char *want,
                          uint32_t pids)
{
	static const size_t runs[] = {KG_WHO_RUN_ROWS, 1, 2};
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);

	for (size_t k = 0; k < 3; k++) {
		struct kg_who *w = kg_who_new_runs(&req, scope, runs[k]);
		struct kg_who_result r;
		char got[4096] = "";
		size_t len = 0;

		assert_non_null(w);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(kg_who_add(w, &conns[i]), 0);
		assert_int_equal(kg_who_finish(w, &r), 0);
		for (size_t i = 0; i < r.n_rows; i++) {
			struct kg_who_row row;

			kg_who_row(w, i, &row);
			row_text(&row, got + len, sizeof(got) - len);
			len += strlen(got + len);
			got[len++] = '\n';
			got[len] = '\0';
		}
		assert_string_equal(got, want);
		assert_int_equal(r.conns, r.n_rows);
		assert_int_equal(r.pids, pids);
		kg_who_free(w);
	}
}

/* Connections alike but for their GUIDs are rows of their own, in GUID
 * order; fields and the destination come back as they went in. */
static void test_who24_rows_are_connections(void **state)
{
	static const struct kg_field fields[] = {
	        {"user_alias", 10, "al", 2},
	        {"user_tenant", 11, "t.example", 9},
	};
	struct kg_conn conns[] = {
	        tu24_conn(7, "imap", "foo", "192.0.2.1", 3),
	        tu24_conn(7, "imap", "foo", "192.0.2.1", 1),
	        tu24_conn(7, "imap", "foo", "192.0.2.1", 2),
	        tu24_conn(7, "imap", "bar", NULL, 4),
	};
	static const char want[] =
	        "bar imap 7 >2001:db8::5 0000000400000000000000000000c375 "
	        "user_tenant=t.example\n"
	        "foo imap 7 192.0.2.1> 0000000100000000000000000000c375 "
	        "user_alias=al user_tenant=t.example\n"
	        "foo imap 7 192.0.2.1> 0000000200000000000000000000c375\n"
	        "foo imap 7 192.0.2.1> 0000000300000000000000000000c375\n";

	(void)state;
	conns[1].fields = fields;
	conns[1].n_fields = 2;
	conns[3].fields = &fields[1];
	conns[3].n_fields = 1;
	conns[3].dest = tu_addr("2001:db8::5");
	check_listing(conns, 4, &tu_scope_all, want, 1);
}

/* Connections copied out of a dump parser, whose text does not outlive
 * the call. */
#define COPIES_MAX 16

struct conn_copies {
	struct kg_conn conns[COPIES_MAX];
	struct kg_field fields[COPIES_MAX][KG_FIELDS_MAX];
	char text[COPIES_MAX][1024];
	size_t n;
};

static const char *keep(char *text, size_t *at, const char *s, size_t len)
{
	assert_true(*at + len <= 1024);
	memcpy(text + *at, s, len);
	*at += len;
	return text + *at - len;
}

static int copy_conn(void *ctx, const struct kg_conn *c)
{
	struct conn_copies *k = ctx;
	struct kg_conn *d = &k->conns[k->n];
	char *text = k->text[k->n];
	size_t at = 0;

	assert_true(k->n < COPIES_MAX && c->n_fields <= KG_FIELDS_MAX);
	*d = *c;
	d->user = keep(text, &at, c->user, c->user_len);
	d->service = keep(text, &at, c->service, c->service_len);
	for (size_t i = 0; i < c->n_fields; i++) {
		struct kg_field *f = &k->fields[k->n][i];

		f->name = keep(text, &at, c->fields[i].name,
		               c->fields[i].name_len);
		f->name_len = c->fields[i].name_len;
		f->value = keep(text, &at, c->fields[i].value,
		                c->fields[i].value_len);
		f->value_len = c->fields[i].value_len;
	}
	d->fields = k->fields[k->n++];
	return 0;
}

/* Dovecot 2.4.1's dump of a shared process, as who lists it. */
static void test_who24_captured_dump(void **state)
{
	static const char want[] =
	        "alice@tenant-a.example imap 8214 127.0.0.3> "
	        "50b5de0c5a7e116b1620000083ecc375 user_alias=alias-alice "
	        "user_tenant=tenant-a.example\n"
	        "bar imap 8214 127.0.0.2> 88af39075a7e116b1620000083ecc375 "
	        "user_alias=alias-bar\n"
	        "bar pop3 8226 127.0.0.3> b328c0055a7e116b2220000083ecc375 "
	        "user_alias=alias-bar\n"
	        "baz imap 8214 127.0.0.2> 9001220b5a7e116b1620000083ecc375 "
	        "user_alias=alias-baz\n"
	        "baz imap 8214 127.0.0.3> c09b13095a7e116b1620000083ecc375 "
	        "user_alias=alias-baz\n"
	        "foo imap 8214 127.0.0.2> 4d87d636597e116b1620000083ecc375 "
	        "user_alias=alias-foo\n"
	        "foo imap 8214 127.0.0.3> 2866c2045a7e116b1620000083ecc375 "
	        "user_alias=alias-foo\n"
	        "jane imap 8214 127.0.0.2> 5800e30f5a7e116b1620000083ecc375 "
	        "user_alias=alias-jane\n"
	        "jane imap 8214 ::1> f8f25b0e5a7e116b1620000083ecc375 "
	        "user_alias=alias-jane\n";
	static const char want_a[] =
	        "alice@tenant-a.example imap 8214 127.0.0.3> "
	        "50b5de0c5a7e116b1620000083ecc375 user_alias=alias-alice "
	        "user_tenant=tenant-a.example\n";
	static struct conn_copies c;

	(void)state;
	tu24_feed(&tu24_shared, &(struct kg_dump_sink){copy_conn, NULL, &c});
	assert_int_equal(c.n, 9);
	check_listing(c.conns, c.n, &tu_scope_all, want, 2);
	check_listing(c.conns, c.n, &tu_scope_tenant_a, want_a, 1);
}

/* The most a row can hold: eight fields of the longest names and
 * values, a long user name. Past those limits a row is refused. */
static void test_who24_largest_row(void **state)
{
	static char names[KG_FIELDS_MAX + 1][KG_FIELD_NAME_MAX];
	static char value[KG_FIELD_VALUE_MAX + 1];
	static char user[KG_USER_MAX];
	struct kg_field fields[KG_FIELDS_MAX + 1];
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_who *w = kg_who_new_runs(&req, &tu_scope_all, 1);
	struct kg_conn c = tu24_conn(7, "imap", "u", "2001:db8::1", 9);
	struct kg_who_result r;
	struct kg_who_row row;

	(void)state;
	assert_non_null(w);
	memset(user, 'u', sizeof(user));
	memset(value, 'v', sizeof(value));
	for (size_t i = 0; i <= KG_FIELDS_MAX; i++) {
		memset(names[i], 'a' + (char)i, KG_FIELD_NAME_MAX);
		fields[i] = (struct kg_field){names[i], KG_FIELD_NAME_MAX,
		                              value, KG_FIELD_VALUE_MAX};
	}
	c.user = user;
	c.user_len = sizeof(user);
	c.dest = tu_addr("2001:db8::2");
	c.fields = fields;
	c.n_fields = KG_FIELDS_MAX;
	for (uint32_t i = 0; i < 3; i++) {
		tu24_guid(i, c.guid);
		assert_int_equal(kg_who_add(w, &c), 0);
	}
	c.n_fields = KG_FIELDS_MAX + 1;
	assert_int_equal(kg_who_add(w, &c), -1);
	c.n_fields = 1;
	fields[0].value_len = KG_FIELD_VALUE_MAX + 1;
	assert_int_equal(kg_who_add(w, &c), -1);
	assert_int_equal(kg_who_finish(w, &r), 0);
	assert_int_equal(r.n_rows, 3);
	for (size_t i = 0; i < 3; i++) {
		kg_who_row(w, i, &row);
		assert_int_equal(row.user_len, sizeof(user));
		assert_int_equal(row.n_fields, KG_FIELDS_MAX);
		for (size_t k = 0; k < KG_FIELDS_MAX; k++) {
			assert_int_equal(row.fields[k].name_len,
			                 KG_FIELD_NAME_MAX);
			assert_memory_equal(row.fields[k].name, names[k],
			                    KG_FIELD_NAME_MAX);
			assert_int_equal(row.fields[k].value_len,
			                 KG_FIELD_VALUE_MAX);
			assert_memory_equal(row.fields[k].value, value,
			                    KG_FIELD_VALUE_MAX);
		}
		assert_memory_equal(&row.dest, &c.dest, sizeof(c.dest));
	}
	kg_who_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_who_table),
	        cmocka_unit_test(test_who_interning_keeps_names_exact),
	        cmocka_unit_test(test_who_finish_twice_same_rows),
	        cmocka_unit_test(test_who24_rows_are_connections),
	        cmocka_unit_test(test_who24_captured_dump),
	        cmocka_unit_test(test_who24_largest_row),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
