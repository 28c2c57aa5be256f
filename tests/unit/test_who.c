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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_who_table),
	        cmocka_unit_test(test_who_interning_keeps_names_exact),
	        cmocka_unit_test(test_who_finish_twice_same_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
