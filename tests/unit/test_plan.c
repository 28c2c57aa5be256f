/* SPDX-License-Identifier: MIT */
/* The kick planner: verdicts, pids, user lists, counters and scope
 * confinement, from tables of connections; then a randomized comparison
 * with the reference planner, a direct restatement of the rules in
 * plan.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/plan.h"
#include "tests/reference/dump_reference.h"
#include "tests/reference/match_reference.h"
#include "tests/unit/testutil.h"
#include "tests/unit/testutil24.h"

#define MAX_CONNS 8
#define MAX_PIDS  8

struct tconn {
	uint32_t pid; /* 0 ends the list */
	const char *user;
	const char *addr;  /* NULL: no address */
	uint32_t refcount; /* 0 stands for 1 */
};

struct plan_case {
	const char *name;
	const char *glob; /* NULL: none */
	const char *net;  /* NULL: none */
	bool force;
	bool tenant_a; /* scope *@tenant-a.example instead of everything */
	struct tconn conns[MAX_CONNS];
	enum kg_plan_verdict verdict;
	uint32_t pids[MAX_PIDS]; /* 0 ends the list */
	const char *kicked;      /* names joined by spaces */
	const char *warn;
	uint32_t conns_matched;
	uint32_t conns_kicked;
	uint32_t outside_scope;
	const char *hidden; /* a name no output may hold */
	uint32_t hidden_pid;
	/* Dovecot 2.4: the connections carry GUIDs (the n-th connection
	 * tu24_guid(n)), and the kick's units are "PID:USER" joined by
	 * spaces, in the order of the result's pids. */
	bool v2;
	const char *units;
	const struct kg_scope *scope; /* NULL: as tenant_a says */
};

static int add_conn(struct kg_plan *p, const struct tconn *t, bool v2,
                    uint32_t n)
{
	struct kg_conn c = v2 ? tu24_conn(t->pid, "imap", t->user, t->addr, n)
	                      : tu_conn(t->pid, "imap", t->user, t->addr,
	                                t->refcount ? t->refcount : 1);

	return kg_plan_add(p, &c);
}

static void join(const struct kg_str *names, size_t n, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		assert_true(len + names[i].len + 2 <= cap);
		if (i)
			buf[len++] = ' ';
		memcpy(buf + len, names[i].s, names[i].len);
		len += names[i].len;
		buf[len] = '\0';
	}
}

static void assert_hidden(const struct kg_plan_result *r, const char *name,
                          uint32_t pid)
{
	const struct kg_str *lists[] = {r->kicked, r->warn};
	const size_t lens[] = {r->n_kicked, r->n_warn};

	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; name && i < lens[l]; i++)
			assert_false(
			        lists[l][i].len == strlen(name) &&
			        !memcmp(lists[l][i].s, name, lists[l][i].len));
	for (size_t i = 0; pid && i < r->n_pids; i++)
		assert_int_not_equal(r->pids[i], pid);
}

/* The units of a by-user plan's result, as "PID:USER" joined by spaces. */
static void join_units(struct kg_plan *p, const struct kg_plan_result *r,
                       char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->n_pids; i++) {
		struct kg_plan_unit u;

		kg_plan_unit(p, r->pids[i], &u);
		len += (size_t)snprintf(buf + len, cap - len, "%s%u:%.*s",
		                        i ? " " : "", u.pid, (int)u.user.len,
		                        u.user.s);
		assert_true(len < cap);
	}
}

static void check_pids(struct kg_plan *p, const struct plan_case *tc,
                       const struct kg_plan_result *r)
{
	char buf[256];
	size_t n_pids = 0;

	if (tc->v2) {
		assert_true(kg_plan_by_user(p));
		join_units(p, r, buf, sizeof(buf));
		assert_string_equal(buf, tc->units ? tc->units : "");
		return;
	}
	assert_false(kg_plan_by_user(p));
	while (n_pids < MAX_PIDS && tc->pids[n_pids])
		n_pids++;
	assert_int_equal(r->n_pids, n_pids);
	for (size_t i = 0; i < n_pids; i++)
		assert_int_equal(r->pids[i], tc->pids[i]);
}

static void check_case(const struct plan_case *tc)
{
	struct kg_request req = tu_request(KG_OP_KICK, tc->glob, tc->net,
	                                   tc->force ? KG_REQ_FORCE : 0);
	const struct kg_scope *scope = tc->scope      ? tc->scope
	                               : tc->tenant_a ? &tu_scope_tenant_a
	                                              : &tu_scope_all;
	struct kg_plan *p = kg_plan_new(&req, scope);
	struct kg_plan_result r;
	char buf[256];
	uint32_t n = 0;

	print_message("case: %s\n", tc->name);
	assert_non_null(p);
	for (const struct tconn *t = tc->conns; t->pid; t++)
		assert_int_equal(add_conn(p, t, tc->v2, ++n), 0);
	assert_int_equal(kg_plan_finish(p, &r), 0);

	assert_int_equal(r.verdict, tc->verdict);
	check_pids(p, tc, &r);
	join(r.kicked, r.n_kicked, buf, sizeof(buf));
	assert_string_equal(buf, tc->kicked ? tc->kicked : "");
	join(r.warn, r.n_warn, buf, sizeof(buf));
	assert_string_equal(buf, tc->warn ? tc->warn : "");
	assert_int_equal(r.conns_matched, tc->conns_matched);
	assert_int_equal(r.conns_kicked, tc->conns_kicked);
	assert_int_equal(r.outside_scope, tc->outside_scope);
	assert_hidden(&r, tc->hidden, tc->hidden_pid);
	kg_plan_free(p);
}

/* Every user, from 127.0.0.2 only. */
static const struct kg_net loopback2 = {KG_AF_INET, 32, {127, 0, 0, 2}};
static const struct kg_scope scope_loopback2 = {
        .all_users = true, .nets = &loopback2, .n_nets = 1};

static const struct plan_case cases[] = {
        {
                .name = "glob and network pick the v4 connections",
                .glob = "foo",
                .net = "192.0.2.0/24",
                .conns = {{1, "foo", "192.0.2.53", 1},
                          {2, "foo", "192.0.2.111", 1},
                          {3, "foo", "fd95:4eed:38ba::25", 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {1, 2},
                .kicked = "foo",
                .conns_matched = 2,
                .conns_kicked = 2,
        },
        {
                .name = "question mark matches exactly one byte",
                .glob = "ba?",
                .conns = {{10, "bar", NULL, 1},
                          {11, "baz", NULL, 1},
                          {12, "bart", NULL, 1},
                          {13, "jane", NULL, 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {10, 11},
                .kicked = "bar baz",
                .conns_matched = 2,
                .conns_kicked = 2,
        },
        {
                .name = "shared process without force warns, signals nothing",
                .glob = "bar",
                .conns = {{20, "bar", "127.0.0.4", 1},
                          {20, "jane", "::1", 1},
                          {21, "bar", NULL, 1}},
                .verdict = KG_PLAN_NEED_FORCE,
                .warn = "jane",
                .conns_matched = 2,
        },
        {
                .name = "shared process with force is kicked with all users",
                .glob = "bar",
                .force = true,
                .conns = {{20, "bar", "127.0.0.4", 1},
                          {20, "jane", "::1", 1},
                          {21, "bar", NULL, 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {20, 21},
                .kicked = "bar jane",
                .conns_matched = 2,
                .conns_kicked = 3,
        },
        {
                .name = "same user on another address makes the process shared",
                .glob = "foo",
                .net = "127.0.0.2/32",
                .conns = {{30, "foo", "127.0.0.2", 1},
                          {30, "foo", "127.0.0.3", 1}},
                .verdict = KG_PLAN_NEED_FORCE,
                .warn = "foo",
                .conns_matched = 1,
        },
        {
                .name = "out-of-scope process is neither kicked nor named",
                .glob = "*",
                .tenant_a = true,
                .conns = {{40, "a@tenant-a.example", NULL, 1},
                          {41, "x@tenant-b.example", NULL, 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {40},
                .kicked = "a@tenant-a.example",
                .conns_matched = 1,
                .conns_kicked = 1,
                .hidden = "x@tenant-b.example",
                .hidden_pid = 41,
        },
        {
                .name = "out-of-scope session on a matched process blocks "
                        "force",
                .glob = "a@tenant-a.example",
                .force = true,
                .tenant_a = true,
                .conns = {{50, "a@tenant-a.example", NULL, 1},
                          {50, "x@tenant-b.example", NULL, 1}},
                .verdict = KG_PLAN_BLOCKED,
                .conns_matched = 1,
                .outside_scope = 1,
                .hidden = "x@tenant-b.example",
                .hidden_pid = 50,
        },
        {
                .name = "blocked wins over need-force",
                .glob = "a@tenant-a.example",
                .tenant_a = true,
                .conns = {{50, "a@tenant-a.example", NULL, 1},
                          {50, "x@tenant-b.example", NULL, 2},
                          {51, "a@tenant-a.example", NULL, 1},
                          {51, "b@tenant-a.example", NULL, 1}},
                .verdict = KG_PLAN_BLOCKED,
                .conns_matched = 2,
                .outside_scope = 2,
                .hidden = "x@tenant-b.example",
                .hidden_pid = 50,
        },
        {
                .name = "out-of-scope process with no match does not block",
                .glob = "a*",
                .tenant_a = true,
                .conns = {{42, "ax@tenant-b.example", NULL, 1},
                          {40, "a@tenant-a.example", NULL, 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {40},
                .kicked = "a@tenant-a.example",
                .conns_matched = 1,
                .conns_kicked = 1,
                .hidden = "ax@tenant-b.example",
                .hidden_pid = 42,
        },
        {
                .name = "out-of-scope user matching the glob is no match",
                .glob = "x@*",
                .tenant_a = true,
                .conns = {{41, "x@tenant-b.example", NULL, 1}},
                .verdict = KG_PLAN_NO_MATCH,
                .hidden = "x@tenant-b.example",
                .hidden_pid = 41,
        },
        {
                .name = "no matching connection",
                .glob = "nobody",
                .conns = {{1, "foo", NULL, 3}, {2, "bar", "192.0.2.1", 1}},
                .verdict = KG_PLAN_NO_MATCH,
        },
        {
                .name = "network given, connection without address: no match",
                .net = "0.0.0.0/0",
                .conns = {{1, "foo", NULL, 1}},
                .verdict = KG_PLAN_NO_MATCH,
        },
        {
                .name = "a refcount of three is three connections",
                .glob = "foo",
                .conns = {{60, "foo", "192.0.2.9", 3}},
                .verdict = KG_PLAN_KICK,
                .pids = {60},
                .kicked = "foo",
                .conns_matched = 3,
                .conns_kicked = 3,
        },
        {
                .name = "refcounts weigh matched and kicked separately",
                .glob = "foo",
                .force = true,
                .conns = {{61, "foo", NULL, 3}, {61, "bar", NULL, 2}},
                .verdict = KG_PLAN_KICK,
                .pids = {61},
                .kicked = "bar foo",
                .conns_matched = 3,
                .conns_kicked = 5,
        },
        {
                .name = "glob is case-insensitive, names keep their bytes",
                .glob = "foo",
                .conns = {{70, "FOO", NULL, 1},
                          {71, "bar", NULL, 1},
                          {70, "foo", "192.0.2.1", 1},
                          {72, "baz", NULL, 1},
                          {70, "Foo", "2001:db8::1", 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {70},
                .kicked = "FOO Foo foo",
                .conns_matched = 3,
                .conns_kicked = 3,
        },
        {
                .name = "non-matching connection after the match, pids apart",
                .glob = "foo",
                .conns = {{80, "foo", NULL, 1},
                          {81, "foo", NULL, 1},
                          {82, "bar", NULL, 1},
                          {80, "jane", NULL, 1},
                          {83, "zed", NULL, 1}},
                .verdict = KG_PLAN_NEED_FORCE,
                .warn = "jane",
                .conns_matched = 2,
        },
        {
                .name = "non-matching connection before the match",
                .glob = "foo",
                .force = true,
                .conns = {{90, "jane", NULL, 1},
                          {91, "bar", NULL, 1},
                          {90, "foo", NULL, 1},
                          {92, "foo", NULL, 1},
                          {90, "adam", NULL, 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {90, 92},
                .kicked = "adam foo jane",
                .conns_matched = 2,
                .conns_kicked = 4,
        },
        {
                .name = "pids ascending and users unique whatever the order",
                .glob = "u*",
                .conns = {{2147483647, "u1", NULL, 1},
                          {300, "u2", NULL, 1},
                          {7, "u1", NULL, 1},
                          {300, "u1", NULL, 1},
                          {1, "u2", NULL, 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {1, 7, 300, 2147483647},
                .kicked = "u1 u2",
                .conns_matched = 5,
                .conns_kicked = 5,
        },
        {
                .name = "warn lists each user once, sorted bytewise",
                .glob = "foo",
                .conns = {{5, "foo", NULL, 1},
                          {5, "zoe", NULL, 1},
                          {6, "foo", NULL, 1},
                          {6, "zoe", NULL, 1},
                          {6, "Zoe", NULL, 1},
                          {6, "\xc3\xa9mile", NULL, 1}},
                .verdict = KG_PLAN_NEED_FORCE,
                .warn = "Zoe zoe \xc3\xa9mile",
                .conns_matched = 2,
        },
        {
                .name = "names sort bytewise: prefixes, long shared starts",
                .glob = "*",
                .conns = {{4, "alanis", NULL, 1},
                          {4, "alan\xff", NULL, 1},
                          {4, "user1234@b", NULL, 1},
                          {4, "al\x01", NULL, 1},
                          {4, "alan", NULL, 1},
                          {4, "user12345@a", NULL, 1},
                          {4, "al", NULL, 1},
                          {4, "alan", NULL, 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {4},
                .kicked = "al al\x01 alan alanis alan\xff user12345@a "
                          "user1234@b",
                .conns_matched = 8,
                .conns_kicked = 8,
        },
        {
                .name = "network only: every user inside it",
                .net = "2001:db8::/32",
                .conns = {{8, "a", "2001:db8::1", 1},
                          {9, "b", "2001:db9::1", 1},
                          {8, "c", "2001:db8:ffff::1", 1}},
                .verdict = KG_PLAN_KICK,
                .pids = {8},
                .kicked = "a c",
                .conns_matched = 2,
                .conns_kicked = 2,
        },
        /* Dovecot 2.4: the unit is one user in one process. */
        {
                .name = "2.4: the user's other connection in the process "
                        "needs force",
                .v2 = true,
                .glob = "foo",
                .net = "127.0.0.2/32",
                .conns = {{8214, "foo", "127.0.0.2"},
                          {8214, "foo", "127.0.0.3"},
                          {8214, "bar", "127.0.0.2"},
                          {8226, "foo", "127.0.0.3"}},
                .verdict = KG_PLAN_NEED_FORCE,
                .warn = "foo",
                .conns_matched = 1,
                .hidden = "bar",
        },
        {
                .name = "2.4: with force the unit is kicked whole",
                .v2 = true,
                .glob = "foo",
                .net = "127.0.0.2/32",
                .force = true,
                .conns = {{8214, "foo", "127.0.0.2"},
                          {8214, "foo", "127.0.0.3"},
                          {8214, "bar", "127.0.0.2"},
                          {8226, "foo", "127.0.0.3"}},
                .verdict = KG_PLAN_KICK,
                .units = "8214:foo",
                .kicked = "foo",
                .conns_matched = 1,
                .conns_kicked = 2,
                .hidden = "bar",
        },
        {
                .name = "2.4: other users of the process are not taken",
                .v2 = true,
                .glob = "bar",
                .conns = {{8226, "bar", "127.0.0.3"},
                          {8214, "jane", "::1"},
                          {8214, "bar", "127.0.0.2"},
                          {8214, "foo", "127.0.0.2"}},
                .verdict = KG_PLAN_KICK,
                .units = "8226:bar 8214:bar",
                .kicked = "bar",
                .conns_matched = 2,
                .conns_kicked = 2,
                .hidden = "jane",
        },
        {
                .name = "2.4: another tenant in the process does not block",
                .v2 = true,
                .glob = "*",
                .tenant_a = true,
                .conns = {{8214, "x@tenant-b.example", "127.0.0.2"},
                          {8214, "a@tenant-a.example", "127.0.0.3"},
                          {8214, "x@tenant-b.example", "127.0.0.3"}},
                .verdict = KG_PLAN_KICK,
                .units = "8214:a@tenant-a.example",
                .kicked = "a@tenant-a.example",
                .conns_matched = 1,
                .conns_kicked = 1,
                .hidden = "x@tenant-b.example",
        },
        {
                .name = "2.4: the user's connection outside the scope "
                        "blocks, force or not",
                .v2 = true,
                .glob = "foo",
                .force = true,
                .scope = &scope_loopback2,
                .conns = {{8214, "foo", "127.0.0.2"},
                          {8214, "foo", "127.0.0.3"},
                          {8214, "bar", "127.0.0.2"}},
                .verdict = KG_PLAN_BLOCKED,
                .conns_matched = 1,
                .outside_scope = 1,
        },
        {
                .name = "2.4: the user outside the scope in another process "
                        "does not block",
                .v2 = true,
                .glob = "foo",
                .scope = &scope_loopback2,
                .conns = {{8214, "foo", "127.0.0.2"},
                          {8226, "foo", "127.0.0.3"}},
                .verdict = KG_PLAN_KICK,
                .units = "8214:foo",
                .kicked = "foo",
                .conns_matched = 1,
                .conns_kicked = 1,
        },
        {
                .name = "2.4: names that differ in case are users of their "
                        "own",
                .v2 = true,
                .glob = "foo",
                .conns = {{7, "FOO", NULL},
                          {7, "foo", NULL},
                          {7, "jane", NULL},
                          {7, "Foo", "192.0.2.1"},
                          {7, "foo", "192.0.2.1"}},
                .verdict = KG_PLAN_KICK,
                .units = "7:FOO 7:foo 7:Foo",
                .kicked = "FOO Foo foo",
                .conns_matched = 4,
                .conns_kicked = 4,
                .hidden = "jane",
        },
        {
                .name = "2.4: network only: a user partly inside it needs "
                        "force",
                .v2 = true,
                .net = "127.0.0.2/32",
                .conns = {{8214, "foo", "127.0.0.2"},
                          {8214, "jane", "::1"},
                          {8214, "jane", "127.0.0.2"},
                          {8214, "bar", "127.0.0.2"}},
                .verdict = KG_PLAN_NEED_FORCE,
                .warn = "jane",
                .conns_matched = 3,
        },
        {
                .name = "2.4: no match",
                .v2 = true,
                .glob = "nobody",
                .conns = {{8214, "foo", "127.0.0.2"}},
                .verdict = KG_PLAN_NO_MATCH,
        },
};

static void test_plan_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

/* a1 on pid 10, a1's kick with force, and one line that did not parse
 * on bad_pid (0: which process is unknown). */
static void plan_with_unreadable(uint32_t bad_pid, bool glob_matches,
                                 struct kg_plan_result *r, struct kg_plan **out)
{
	struct kg_request req = tu_request(
	        KG_OP_KICK, glob_matches ? "a1@tenant-a.example" : "nobody",
	        NULL, KG_REQ_FORCE);
	struct kg_plan *p = kg_plan_new(&req, &tu_scope_all);
	struct tconn a1 = {10, "a1@tenant-a.example", "192.0.2.1", 1};

	assert_non_null(p);
	assert_int_equal(add_conn(p, &a1, false, 0), 0);
	assert_int_equal(kg_plan_unreadable(p, bad_pid, bad_pid ? 3 : 0), 0);
	assert_int_equal(kg_plan_finish(p, r), 0);
	*out = p;
}

/* A line kickgated could not read may be anybody's session: on the
 * process it names it blocks as one outside the scope does, even with
 * -f and a scope of everything; with its process unknown it blocks every
 * kick that matches, and one that matches nothing stays a no-match. */
static void test_plan_unreadable_lines_block(void **state)
{
	struct kg_plan_result r;
	struct kg_plan *p;

	(void)state;
	plan_with_unreadable(10, true, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_BLOCKED);
	assert_true(r.unreadable == 3 && r.outside_scope == 3 &&
	            r.unplaced == 0 && r.n_pids == 0);
	kg_plan_free(p);
	plan_with_unreadable(11, true, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_KICK);
	assert_true(r.n_pids == 1 && r.pids[0] == 10 && r.unreadable == 0 &&
	            r.conns_kicked == 1);
	kg_plan_free(p);
	plan_with_unreadable(0, true, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_BLOCKED);
	assert_true(r.unplaced == 1 && r.unreadable == 0 && r.n_pids == 0);
	kg_plan_free(p);
	plan_with_unreadable(0, false, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_NO_MATCH);
	kg_plan_free(p);
}

static void test_plan_rejects_pid_outside_range(void **state)
{
	static const uint32_t bad[] = {0, 2147483648u, UINT32_MAX};
	struct kg_request req =
	        tu_request(KG_OP_KICK, "foo", NULL, KG_REQ_FORCE);
	struct kg_plan *p = kg_plan_new(&req, &tu_scope_all);
	struct kg_plan_result r;

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tconn t = {bad[i], "foo", NULL, 1};

		assert_int_equal(add_conn(p, &t, false, 0), -1);
	}
	assert_int_equal(kg_plan_finish(p, &r), 0);
	assert_int_equal(r.verdict, KG_PLAN_NO_MATCH);
	kg_plan_free(p);
}

static void test_plan_finish_twice_same_result(void **state)
{
	struct kg_request req =
	        tu_request(KG_OP_KICK, "b*", NULL, KG_REQ_FORCE);
	struct kg_plan *p = kg_plan_new(&req, &tu_scope_all);
	struct tconn conns[] = {{3, "bob", NULL, 1}, {3, "al", NULL, 1}};
	struct kg_plan_result r1;
	struct kg_plan_result r2;

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(add_conn(p, &conns[i], false, 0), 0);
	assert_int_equal(kg_plan_finish(p, &r1), 0);
	assert_int_equal(kg_plan_finish(p, &r2), 0);
	assert_int_equal(r2.verdict, KG_PLAN_KICK);
	assert_int_equal(r2.n_pids, 1);
	assert_int_equal(r2.pids[0], 3);
	assert_int_equal(r2.n_kicked, 2);
	assert_int_equal(r1.conns_kicked, r2.conns_kicked);
	kg_plan_free(p);
}

/* Tens of thousands of processes: chunk and index growth, and a tenth of
 * them matched by tenant. */
static void test_plan_many_processes(void **state)
{
	enum { N = 50000, TENANTS = 10 };
	struct kg_request req =
	        tu_request(KG_OP_KICK, "*@tenant7.example", NULL, 0);
	struct kg_plan *p = kg_plan_new(&req, &tu_scope_all);
	struct kg_plan_result r;
	char user[64];

	(void)state;
	assert_non_null(p);
	for (uint32_t i = 0; i < N; i++) {
		/* Pids in a scrambled order. */
		uint32_t pid = 1 + (uint32_t)(((uint64_t)i * 7919) % N);
		struct tconn t = {pid, user, NULL, 1};

		snprintf(user, sizeof(user), "user%u@tenant%u.example", pid,
		         pid % TENANTS);
		assert_int_equal(add_conn(p, &t, false, 0), 0);
	}
	assert_int_equal(kg_plan_finish(p, &r), 0);
	assert_int_equal(r.verdict, KG_PLAN_KICK);
	assert_int_equal(r.n_pids, N / TENANTS);
	assert_int_equal(r.n_kicked, N / TENANTS);
	assert_int_equal(r.conns_kicked, N / TENANTS);
	for (size_t i = 0; i < r.n_pids; i++) {
		assert_int_equal(r.pids[i] % TENANTS, 7);
		if (i)
			assert_true(r.pids[i - 1] < r.pids[i]);
	}
	for (size_t i = 1; i < r.n_kicked; i++) {
		const struct kg_str *a = &r.kicked[i - 1];
		const struct kg_str *b = &r.kicked[i];
		size_t m = a->len < b->len ? a->len : b->len;
		int c = memcmp(a->s, b->s, m);

		assert_true(c < 0 || (c == 0 && a->len < b->len));
	}
	kg_plan_free(p);
}

/* The randomized comparison: small dumps drawn from a few users, pids and
 * addresses, with now and then a line that did not parse, checked against
 * the rules restated line by line in tests/reference/dump_reference.c,
 * whose scope and matching owe nothing to kg_scope_contains and
 * kg_conn_matches. */
#define R_CONNS  24
#define R_ROUNDS 3000

static const char *const r_users[] = {
        "a@tenant-a.example", "b@tenant-a.example", "A@TENANT-A.EXAMPLE",
        "x@tenant-b.example", "y@tenant-b.example",
};
static const char *const r_addrs[] = {NULL, "192.0.2.1", "192.0.2.200",
                                      "2001:db8::7"};
static const char *const r_globs[] = {NULL, "a*", "*@tenant-a.example", "?@*",
                                      "x*"};
static const char *const r_nets[] = {NULL, "192.0.2.0/25", "::/0"};

static void r_compare(const struct plan_reference *o,
                      const struct kg_plan_result *r)
{
	const struct kg_str *names =
	        o->verdict == KG_PLAN_KICK ? r->kicked : r->warn;
	size_t n_names = o->verdict == KG_PLAN_KICK ? r->n_kicked : r->n_warn;

	assert_int_equal(r->verdict, o->verdict);
	assert_int_equal(r->n_pids, o->n_pids);
	for (size_t i = 0; i < o->n_pids; i++)
		assert_int_equal(r->pids[i], o->pids[i]);
	assert_int_equal(r->n_kicked + r->n_warn, o->n_names);
	assert_int_equal(n_names, o->n_names);
	for (size_t i = 0; i < o->n_names; i++) {
		assert_int_equal(names[i].len, o->names[i].len);
		assert_memory_equal(names[i].s, o->names[i].s, names[i].len);
	}
	assert_int_equal(r->conns_matched, o->conns_matched);
	assert_int_equal(r->conns_kicked, o->conns_kicked);
	assert_int_equal(r->outside_scope, o->outside_scope);
	assert_int_equal(r->unreadable, o->unreadable);
	assert_int_equal(r->unplaced, o->unplaced);
}

static uint32_t r_next(uint64_t *seed, uint32_t bound)
{
	*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)((*seed >> 33) % bound);
}

#define PICK(seed, arr) (arr[r_next(seed, sizeof(arr) / sizeof(arr[0]))])

/* One line in sixteen did not parse; its pid is 0 (unknown) or 1 to 8. */
static void r_draw_line(struct plan_reference_line *l, uint64_t *seed)
{
	l->unreadable = r_next(seed, 16) == 0;
	l->conn = tu_conn(l->unreadable ? r_next(seed, 9) : 1 + r_next(seed, 8),
	                  "imap", PICK(seed, r_users), PICK(seed, r_addrs),
	                  1 + r_next(seed, 3));
}

static int r_add_line(struct kg_plan *p, const struct plan_reference_line *l)
{
	return l->unreadable
	               ? kg_plan_unreadable(p, l->conn.pid, l->conn.refcount)
	               : kg_plan_add(p, &l->conn);
}

static void test_plan_matches_rules_on_random_dumps(void **state)
{
	uint64_t seed = 12345;

	(void)state;
	for (int round = 0; round < R_ROUNDS; round++) {
		bool tenant_a = r_next(&seed, 2);
		const struct kg_scope *scope =
		        tenant_a ? &tu_scope_tenant_a : &tu_scope_all;
		struct kg_request req = tu_request(
		        KG_OP_KICK, PICK(&seed, r_globs), PICK(&seed, r_nets),
		        r_next(&seed, 2) ? KG_REQ_FORCE : 0);
		struct kg_plan *p = kg_plan_new(&req, scope);
		size_t n = 1 + r_next(&seed, R_CONNS);
		struct plan_reference_line lines[R_CONNS];
		struct kg_plan_result r;
		struct plan_reference o;

		assert_non_null(p);
		for (size_t i = 0; i < n; i++) {
			r_draw_line(&lines[i], &seed);
			assert_int_equal(r_add_line(p, &lines[i]), 0);
		}
		plan_reference_run(&req, scope, lines, n, NULL, 0, &o);
		assert_int_equal(kg_plan_finish(p, &r), 0);
		r_compare(&o, &r);
		plan_reference_free(&o);
		kg_plan_free(p);
	}
}

/* Only the users of processes really signalled are reported: narrowing
 * to a subset drops the users and connections of the others. */
static void test_plan_restrict_to_signalled(void **state)
{
	static const struct tconn conns[] = {
	        {.pid = 60, .user = "foo", .addr = "192.0.2.1"},
	        {.pid = 61,
	         .user = "ghost",
	         .addr = "192.0.2.2",
	         .refcount = 2},
	        {.pid = 60, .user = "bar", .addr = "192.0.2.3"},
	};
	struct kg_request req =
	        tu_request(KG_OP_KICK, NULL, "192.0.2.0/24", KG_REQ_FORCE);
	struct kg_plan *p = kg_plan_new(&req, &tu_scope_all);
	struct kg_plan_result r;
	const uint32_t keep[] = {60};
	char names[64];

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < sizeof(conns) / sizeof(conns[0]); i++)
		assert_int_equal(add_conn(p, &conns[i], false, 0), 0);
	assert_int_equal(kg_plan_finish(p, &r), 0);
	assert_int_equal(r.verdict, KG_PLAN_KICK);
	assert_int_equal(r.conns_kicked, 4);
	join(r.kicked, r.n_kicked, names, sizeof(names));
	assert_string_equal(names, "bar foo ghost");
	assert_int_equal(kg_plan_restrict(p, keep, 1, &r), 0);
	join(r.kicked, r.n_kicked, names, sizeof(names));
	assert_string_equal(names, "bar foo");
	assert_int_equal(r.conns_kicked, 2);
	assert_int_equal(kg_plan_restrict(p, keep, 0, &r), 0);
	assert_int_equal(r.n_kicked, 0);
	assert_int_equal(r.conns_kicked, 0);
	kg_plan_free(p);
}

/* Dovecot 2.4: a kick of foo (with force) over foo and bar in process
 * 8214 and foo in 8226, and one line that did not parse, on bad_pid (0:
 * which process is unknown). */
static void plan24_with_unreadable(const char *glob, uint32_t bad_pid,
                                   struct kg_plan_result *r,
                                   struct kg_plan **out)
{
	struct kg_request req =
	        tu_request(KG_OP_KICK, glob, NULL, KG_REQ_FORCE);
	struct kg_plan *p = kg_plan_new(&req, &tu_scope_all);
	struct kg_conn conns[] = {
	        tu24_conn(8214, "imap", "foo", "127.0.0.2", 1),
	        tu24_conn(8214, "imap", "bar", "127.0.0.2", 2),
	        tu24_conn(8226, "pop3", "foo", "127.0.0.3", 3),
	};

	assert_non_null(p);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(kg_plan_add(p, &conns[i]), 0);
	assert_int_equal(kg_plan_unreadable(p, bad_pid, bad_pid != 0), 0);
	assert_int_equal(kg_plan_finish(p, r), 0);
	*out = p;
}

/* A line that did not parse names a process, not a user: it blocks every
 * matched unit on its process, and none elsewhere. */
static void test_plan24_unreadable_line_blocks_its_process(void **state)
{
	char units[64];
	struct kg_plan_result r;
	struct kg_plan *p;

	(void)state;
	plan24_with_unreadable("foo", 8214, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_BLOCKED);
	assert_true(r.unreadable == 1 && r.outside_scope == 1 &&
	            r.unplaced == 0 && r.n_pids == 0);
	kg_plan_free(p);
	plan24_with_unreadable("foo", 8226, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_BLOCKED);
	kg_plan_free(p);
	/* bar has no connection on 8226. */
	plan24_with_unreadable("bar", 8226, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_KICK);
	join_units(p, &r, units, sizeof(units));
	assert_string_equal(units, "8214:bar");
	assert_int_equal(r.unreadable, 0);
	kg_plan_free(p);
	plan24_with_unreadable("foo", 9999, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_KICK);
	join_units(p, &r, units, sizeof(units));
	assert_string_equal(units, "8214:foo 8226:foo");
	kg_plan_free(p);
	plan24_with_unreadable("foo", 0, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_BLOCKED);
	assert_true(r.unplaced == 1 && r.unreadable == 0);
	kg_plan_free(p);
	/* It counts against each unit on its process. */
	plan24_with_unreadable("*", 8214, &r, &p);
	assert_int_equal(r.verdict, KG_PLAN_BLOCKED);
	assert_true(r.unreadable == 2 && r.outside_scope == 2);
	kg_plan_free(p);
}

#define GUIDS_MAX 32

struct guid_seen {
	uint32_t units[GUIDS_MAX];
	uint8_t guids[GUIDS_MAX][16];
	size_t n;
	size_t stop_at; /* return 5 from this call (1-based); 0: never */
};

static int see_guid(void *ctx, uint32_t unit, const uint8_t *guid)
{
	struct guid_seen *g = ctx;

	assert_true(g->n < GUIDS_MAX);
	g->units[g->n] = unit;
	memcpy(g->guids[g->n], guid, 16);
	return ++g->n == g->stop_at ? 5 : 0;
}

static void assert_guid(const uint8_t *got, uint32_t n)
{
	uint8_t want[16];

	tu24_guid(n, want);
	assert_memory_equal(got, want, 16);
}

/* A unit is kicked by its user and the GUID of a matching connection,
 * even when another of its connections came first; the GUIDs to watch
 * are all its in-scope connections', and only its own. */
static void test_plan24_units_and_their_guids(void **state)
{
	struct kg_request req =
	        tu_request(KG_OP_KICK, "foo", "127.0.0.2/32", KG_REQ_FORCE);
	struct kg_plan *p = kg_plan_new(&req, &tu_scope_all);
	struct kg_conn conns[] = {
	        tu24_conn(8214, "imap", "foo", "127.0.0.3", 1),
	        tu24_conn(8214, "imap", "foo", "127.0.0.2", 2),
	        tu24_conn(8214, "imap", "bar", "127.0.0.2", 3),
	        tu24_conn(8226, "imap", "foo", "127.0.0.2", 4),
	        tu24_conn(8214, "imap", "foo", "127.0.0.2", 5),
	};
	struct guid_seen seen = {.n = 0};
	struct kg_plan_result r;
	struct kg_plan_unit u;

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(kg_plan_add(p, &conns[i]), 0);
	assert_int_equal(kg_plan_finish(p, &r), 0);
	assert_int_equal(r.verdict, KG_PLAN_KICK);
	assert_int_equal(r.n_pids, 2);
	kg_plan_unit(p, r.pids[0], &u);
	assert_int_equal(u.pid, 8214);
	assert_true(u.user.len == 3 && memcmp(u.user.s, "foo", 3) == 0);
	assert_guid(u.guid, 2);
	kg_plan_unit(p, r.pids[1], &u);
	assert_int_equal(u.pid, 8226);
	assert_guid(u.guid, 4);
	assert_int_equal(
	        kg_plan_each_guid(p, r.pids, r.n_pids, see_guid, &seen), 0);
	assert_int_equal(seen.n, 4);
	for (size_t i = 0; i < 4; i++) {
		static const uint32_t want[] = {1, 2, 4, 5};

		assert_int_equal(seen.units[i], r.pids[want[i] == 4]);
		assert_guid(seen.guids[i], want[i]);
	}
	/* A unit not asked for gives none; a non-zero return stops. */
	seen = (struct guid_seen){.stop_at = 0};
	assert_int_equal(kg_plan_each_guid(p, &r.pids[1], 1, see_guid, &seen),
	                 0);
	assert_int_equal(seen.n, 1);
	seen = (struct guid_seen){.stop_at = 2};
	assert_int_equal(
	        kg_plan_each_guid(p, r.pids, r.n_pids, see_guid, &seen), 5);
	assert_int_equal(seen.n, 2);
	kg_plan_free(p);
}

/* The plan of a kick over a captured dump: "PID:USER" units or the
 * warned users. */
static void plan_capture(const struct tu24_capture *c,
                         const struct kg_scope *scope, const char *glob,
                         const char *net, enum kg_plan_verdict verdict,
                         const char *want)
{
	struct kg_request req = tu_request(KG_OP_KICK, glob, net, 0);
	struct kg_plan *p = kg_plan_new(&req, scope);
	const struct kg_dump_sink sink = {kg_plan_add, kg_plan_unreadable, p};
	struct kg_plan_result r;
	char got[256];

	print_message("kick %s %s\n", glob, net ? net : "");
	assert_non_null(p);
	tu24_feed(c, &sink);
	assert_int_equal(kg_plan_finish(p, &r), 0);
	assert_int_equal(r.verdict, verdict);
	if (verdict == KG_PLAN_KICK)
		join_units(p, &r, got, sizeof(got));
	else
		join(r.warn, r.n_warn, got, sizeof(got));
	assert_string_equal(got, want);
	kg_plan_free(p);
}

/* On Dovecot 2.4.1's real dumps: doveadm's "kick foo 127.0.0.2/32" took
 * foo's other connection in the shared process too; here it needs -f. */
static void test_plan24_on_captured_dumps(void **state)
{
	(void)state;
	plan_capture(&tu24_shared, &tu_scope_all, "foo", "127.0.0.2/32",
	             KG_PLAN_NEED_FORCE, "foo");
	plan_capture(&tu24_shared, &tu_scope_all, "bar", NULL, KG_PLAN_KICK,
	             "8226:bar 8214:bar");
	plan_capture(&tu24_shared, &tu_scope_all, "j*", NULL, KG_PLAN_KICK,
	             "8214:jane");
	plan_capture(&tu24_shared, &tu_scope_tenant_a, "*", NULL, KG_PLAN_KICK,
	             "8214:alice@tenant-a.example");
	plan_capture(&tu24_shared, &scope_loopback2, "baz", NULL,
	             KG_PLAN_BLOCKED, "");
	plan_capture(&tu24_single, &tu_scope_all, "foo", "127.0.0.2/32",
	             KG_PLAN_KICK, "30780:foo");
	plan_capture(&tu24_shared_foo_gone, &tu_scope_all, "foo", NULL,
	             KG_PLAN_NO_MATCH, "");
}

/* The randomized comparison for Dovecot 2.4: the reference is given each
 * unit, one user in one process, as a process of its own, and each line
 * that did not parse once for every unit of its process. */
struct r_units {
	uint32_t pid[R_CONNS];
	const char *user[R_CONNS];
	size_t n;
};

static uint32_t r_unit_of(struct r_units *u, const struct kg_conn *c)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->pid[i] == c->pid && strcmp(u->user[i], c->user) == 0)
			return (uint32_t)i + 1;
	u->pid[u->n] = c->pid;
	u->user[u->n++] = c->user;
	return (uint32_t)u->n;
}

/* The reference's number of a plan's unit: the plan numbers its units
 * in its own order, the reference in the dump's. */
static uint32_t r_ref_id(struct kg_plan *p, const struct r_units *u,
                         uint32_t id)
{
	struct kg_plan_unit pu;

	kg_plan_unit(p, id, &pu);
	for (size_t i = 0; i < u->n; i++)
		if (u->pid[i] == pu.pid && strlen(u->user[i]) == pu.user.len &&
		    memcmp(u->user[i], pu.user.s, pu.user.len) == 0)
			return (uint32_t)i + 1;
	fail_msg("unit %u (pid %u) is not the reference's", id, pu.pid);
	return 0;
}

/* A KICK result's units as the reference numbers them, ascending. */
static void r_ref_ids(struct kg_plan *p, const struct r_units *u,
                      const struct kg_plan_result *r, uint32_t *out)
{
	for (size_t k = 0; k < r->n_pids; k++) {
		uint32_t id = r_ref_id(p, u, r->pids[k]);
		size_t j = k;

		for (; j > 0 && out[j - 1] > id; j--)
			out[j] = out[j - 1];
		out[j] = id;
	}
}

/* lines[0..n) as the reference sees units; returns how many lines. */
static size_t r_by_unit(const struct plan_reference_line *lines, size_t n,
                        struct r_units *u, struct plan_reference_line *out)
{
	size_t k = 0;

	u->n = 0;
	for (size_t i = 0; i < n; i++) {
		if (lines[i].unreadable)
			continue;
		out[k] = lines[i];
		out[k++].conn.pid = r_unit_of(u, &lines[i].conn);
	}
	for (size_t i = 0; i < n; i++) {
		if (!lines[i].unreadable)
			continue;
		if (lines[i].conn.pid == 0)
			out[k++] = lines[i];
		for (size_t j = 0; j < u->n; j++) {
			if (u->pid[j] != lines[i].conn.pid)
				continue;
			out[k] = lines[i];
			out[k++].conn.pid = (uint32_t)j + 1;
		}
	}
	return k;
}

/* Each unit of a kick names its process and user, and the GUID of its
 * first matching connection; its GUIDs to watch are those of its
 * in-scope connections, in the dump's order. */
static void r_check_units(struct kg_plan *p, const struct kg_plan_result *r,
                          const struct kg_request *req,
                          const struct kg_scope *scope,
                          const struct plan_reference_line *lines, size_t n,
                          struct r_units *u)
{
	struct r_guids {
		uint32_t unit;
		const uint8_t *guid;
	} want[R_CONNS];
	size_t n_want = 0;
	struct guid_seen seen = {.n = 0};

	uint32_t ref[R_CONNS];

	r_ref_ids(p, u, r, ref);
	for (size_t k = 0; k < r->n_pids; k++) {
		uint32_t id = r_ref_id(p, u, r->pids[k]);
		const uint8_t *first = NULL;
		struct kg_plan_unit pu;

		kg_plan_unit(p, r->pids[k], &pu);
		for (size_t i = 0; i < n && !first; i++)
			if (!lines[i].unreadable &&
			    r_unit_of(u, &lines[i].conn) == id &&
			    match_reference_in_scope(scope, &lines[i].conn) &&
			    match_reference_matches(req, &lines[i].conn))
				first = lines[i].conn.guid;
		assert_non_null(first);
		assert_memory_equal(pu.guid, first, 16);
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t id;

		if (lines[i].unreadable ||
		    !match_reference_in_scope(scope, &lines[i].conn))
			continue;
		id = r_unit_of(u, &lines[i].conn);
		for (size_t k = 0; k < r->n_pids; k++)
			if (ref[k] == id)
				want[n_want++] = (struct r_guids){
				        id, lines[i].conn.guid};
	}
	assert_int_equal(
	        kg_plan_each_guid(p, r->pids, r->n_pids, see_guid, &seen), 0);
	assert_int_equal(seen.n, n_want);
	for (size_t i = 0; i < n_want; i++) {
		assert_int_equal(r_ref_id(p, u, seen.units[i]), want[i].unit);
		assert_memory_equal(seen.guids[i], want[i].guid, 16);
	}
}

static const struct kg_net r_scope_net = {KG_AF_INET, 25, {192, 0, 2, 0}};
static const struct kg_scope r_scope_low_half = {
        .all_users = true, .nets = &r_scope_net, .n_nets = 1};

static void test_plan24_matches_rules_on_random_dumps(void **state)
{
	const struct kg_scope *scopes[] = {&tu_scope_all, &tu_scope_tenant_a,
	                                   &r_scope_low_half};
	uint64_t seed = 2024;

	(void)state;
	for (int round = 0; round < R_ROUNDS; round++) {
		const struct kg_scope *scope = scopes[r_next(&seed, 3)];
		struct kg_request req = tu_request(
		        KG_OP_KICK, PICK(&seed, r_globs), PICK(&seed, r_nets),
		        r_next(&seed, 2) ? KG_REQ_FORCE : 0);
		struct kg_plan *p = kg_plan_new(&req, scope);
		size_t n = 1 + r_next(&seed, R_CONNS), n_ref;
		struct plan_reference_line lines[R_CONNS];
		struct plan_reference_line by_unit[R_CONNS * (R_CONNS + 1)];
		struct r_units units;
		uint32_t ref_ids[R_CONNS];
		struct kg_plan_result r, ref;
		struct plan_reference o;

		assert_non_null(p);
		for (size_t i = 0; i < n; i++) {
			r_draw_line(&lines[i], &seed);
			/* Protocol 2: a row is one connection. */
			lines[i].conn.refcount = lines[i].conn.pid != 0;
			lines[i].conn.has_guid = true;
			tu24_guid((uint32_t)i + 1, lines[i].conn.guid);
			assert_int_equal(r_add_line(p, &lines[i]), 0);
		}
		n_ref = r_by_unit(lines, n, &units, by_unit);
		plan_reference_run(&req, scope, by_unit, n_ref, NULL, 0, &o);
		assert_int_equal(kg_plan_finish(p, &r), 0);
		r_ref_ids(p, &units, &r, ref_ids);
		ref = r;
		ref.pids = ref_ids;
		r_compare(&o, &ref);
		if (r.verdict == KG_PLAN_KICK)
			r_check_units(p, &r, &req, scope, lines, n, &units);
		plan_reference_free(&o);
		kg_plan_free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_plan_table),
	        cmocka_unit_test(test_plan_unreadable_lines_block),
	        cmocka_unit_test(test_plan_rejects_pid_outside_range),
	        cmocka_unit_test(test_plan_finish_twice_same_result),
	        cmocka_unit_test(test_plan_many_processes),
	        cmocka_unit_test(test_plan_matches_rules_on_random_dumps),
	        cmocka_unit_test(test_plan_restrict_to_signalled),
	        cmocka_unit_test(
	                test_plan24_unreadable_line_blocks_its_process),
	        cmocka_unit_test(test_plan24_units_and_their_guids),
	        cmocka_unit_test(test_plan24_on_captured_dumps),
	        cmocka_unit_test(test_plan24_matches_rules_on_random_dumps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
