/* SPDX-License-Identifier: MIT */
/* Kicks that anvil carries out (Dovecot 2.4), with a stand-in anvil and
 * clock: one KICK-USER per unit, then new dumps until the planned
 * connections are gone or kick_confirm_ms has passed, and what those
 * dumps showed: the users kicked and remained, and how many went. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "broker/kick_anvil.h"
#include "tests/unit/testutil.h"
#include "tests/unit/testutil24.h"

/* Process 8214 serves foo twice, bar and jane; 8226 serves bar. The
 * n-th connection has GUID tu24_guid(n). */
static const struct {
	uint32_t pid;
	const char *user;
	const char *addr;
} dump[] = {
        {8214, "foo", "127.0.0.2"}, {8214, "foo", "127.0.0.3"},
        {8214, "bar", "127.0.0.2"}, {8226, "bar", "127.0.0.3"},
        {8214, "jane", "::1"},
};
#define N_DUMP (sizeof(dump) / sizeof(dump[0]))

static struct tu24_anvil *const anvil = &tu24_anvil;

/* A test's kick: "*" from 127.0.0.0/8 takes the units foo and bar in
 * 8214 and bar in 8226, four connections, and leaves jane (::1). */
struct run {
	struct kg_config cfg;
	struct kg_job job;
	struct kg_plan *plan;
	struct kg_plan_result res;
	struct kg_anvil_outcome out;
};

static void run_kick(struct run *r, unsigned confirm_ms, uint8_t flags)
{
	memset(r, 0, sizeof(*r));
	r->cfg.kick_confirm_ms = confirm_ms;
	r->job.cfg = &r->cfg;
	r->job.req = tu_request(KG_OP_KICK, NULL, "127.0.0.0/8", flags);
	r->plan = kg_plan_new(&r->job.req, &tu_scope_all);
	assert_non_null(r->plan);
	for (size_t i = 0; i < N_DUMP; i++)
		assert_int_equal(kg_plan_add(r->plan, &anvil->conns[i]), 0);
	assert_int_equal(kg_plan_finish(r->plan, &r->res), 0);
	assert_int_equal(r->res.verdict, KG_PLAN_KICK);
	assert_int_equal(r->res.n_pids, 3);
	assert_int_equal(kg_kick_by_anvil(&r->job, &tu24_anvil_ops, r->plan,
	                                  &r->res, &r->out),
	                 0);
}

static void run_free(struct run *r)
{
	kg_anvil_outcome_free(&r->out);
	kg_plan_free(r->plan);
}

static void assert_names(const struct kg_str *names, size_t n, const char *want)
{
	char buf[64] = "";
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%.*s",
		                        i ? " " : "", (int)names[i].len,
		                        names[i].s);
	assert_string_equal(buf, want);
}

/* The outcome: connections planned and gone, users kicked and
 * remained, the error. */
static void assert_outcome(const struct run *r, uint32_t gone,
                           const char *kicked, const char *remained,
                           const char *err)
{
	assert_int_equal(r->out.planned, 4);
	assert_int_equal(r->out.gone, gone);
	assert_names(r->out.kicked, r->out.n_kicked, kicked);
	assert_names(r->out.remained, r->out.n_remained, remained);
	assert_string_equal(r->out.err, err);
	assert_int_equal(r->out.n_pids, 2);
	assert_int_equal(r->out.pids[0], 8214);
	assert_int_equal(r->out.pids[1], 8226);
}

static void assert_asked(size_t i, const char *user, uint32_t guid)
{
	uint8_t want[16];

	tu24_guid(guid, want);
	assert_string_equal(anvil->users[i], user);
	assert_memory_equal(anvil->guids[i], want, 16);
}

/* Anvil lists the dump above, and its clock reads 1000. */
static int reset(void **state)
{
	(void)state;
	tu24_anvil_reset(1000);
	for (size_t i = 0; i < N_DUMP; i++)
		anvil->conns[i] = tu24_conn(dump[i].pid, "imap", dump[i].user,
		                            dump[i].addr, (uint32_t)i + 1);
	anvil->n_conns = N_DUMP;
	return 0;
}

/* One command per unit, by the unit's user and a GUID of its own; the
 * first look shows everything gone. */
static void test_all_gone_at_first_look(void **state)
{
	struct run r;

	(void)state;
	for (size_t i = 0; i < N_DUMP; i++)
		anvil->goes[i] = 1;
	run_kick(&r, 200, 0);
	assert_int_equal(anvil->n_asked, 3);
	assert_asked(0, "foo", 1);
	assert_asked(1, "bar", 3);
	assert_asked(2, "bar", 4);
	assert_int_equal(anvil->looks, 1);
	assert_int_equal(anvil->pauses, 0);
	assert_outcome(&r, 4, "bar foo", "", "");
	run_free(&r);
}

/* Connections that linger are looked for again, every 25 ms at most. */
static void test_gone_after_some_looks(void **state)
{
	struct run r;

	(void)state;
	for (size_t i = 0; i < N_DUMP; i++)
		anvil->goes[i] = 3;
	run_kick(&r, 200, 0);
	assert_int_equal(anvil->looks, 3);
	assert_int_equal(anvil->now, 1000 + 2 * 25);
	assert_outcome(&r, 4, "bar foo", "", "");
	run_free(&r);
}

/* A dump that never lets go is looked at until kick_confirm_ms has
 * passed, and not a moment longer. */
static void test_confirmation_stops_at_its_time(void **state)
{
	static const struct {
		unsigned confirm_ms;
		size_t looks;
	} cases[] = {{200, 9}, {60, 4}, {1, 2}, {0, 1}};
	struct run r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("kick_confirm_ms %u\n", cases[i].confirm_ms);
		reset(NULL);
		run_kick(&r, cases[i].confirm_ms, 0);
		assert_int_equal(anvil->looks, cases[i].looks);
		assert_int_equal(anvil->now, 1000 + cases[i].confirm_ms);
		assert_true(anvil->longest_pause <= 25);
		assert_outcome(&r, 0, "", "bar foo", "");
		run_free(&r);
	}
}

/* bar's connection in 8226 stays: bar is kicked (in 8214) and remains. */
static void test_some_remain(void **state)
{
	struct run r;

	(void)state;
	anvil->goes[0] = anvil->goes[1] = anvil->goes[2] = 1;
	run_kick(&r, 100, 0);
	assert_int_equal(anvil->now, 1100);
	assert_outcome(&r, 3, "bar foo", "bar", "");
	run_free(&r);
}

/* A first look that fails tells nothing: everything counts as still
 * there, and the error says why. */
static void test_failing_first_look_remains_all(void **state)
{
	struct run r;

	(void)state;
	for (size_t i = 0; i < N_DUMP; i++)
		anvil->goes[i] = 1;
	anvil->fail_from = 1;
	run_kick(&r, 200, 0);
	assert_int_equal(anvil->looks, 1);
	assert_outcome(&r, 0, "", "bar foo",
	               "cannot tell which connections went: anvil timed out "
	               "after 5 ms");
	run_free(&r);
}

/* A look that fails after one that saw connections go: those went, and
 * are reported so. */
static void test_failing_later_look_keeps_what_was_seen(void **state)
{
	struct run r;

	(void)state;
	anvil->goes[0] = anvil->goes[1] = 1;
	anvil->fail_from = 3;
	run_kick(&r, 200, 0);
	assert_int_equal(anvil->looks, 3);
	assert_outcome(&r, 2, "foo", "bar",
	               "cannot tell which connections went: anvil timed out "
	               "after 5 ms");
	run_free(&r);
}

/* Anvil failed before answering: the dumps still say what happened. */
static void test_anvil_failing_is_reported(void **state)
{
	struct run r;

	(void)state;
	anvil->answer = -1;
	run_kick(&r, 50, 0);
	assert_int_equal(anvil->looks, 3);
	assert_outcome(&r, 0, "", "bar foo",
	               "anvil did not kick: cannot send to anvil: EPIPE");
	run_free(&r);
	reset(NULL);
	anvil->answer = 1;
	anvil->goes[0] = anvil->goes[1] = 1;
	run_kick(&r, 50, 0);
	assert_outcome(&r, 2, "foo", "bar",
	               "anvil answered 1 of 3 kick commands");
	run_free(&r);
}

/* A dry run asks anvil nothing and lists what the kick would take. */
static void test_dry_run_asks_nothing(void **state)
{
	struct run r;

	(void)state;
	run_kick(&r, 200, KG_REQ_DRY_RUN);
	assert_int_equal(anvil->n_asked, 0);
	assert_int_equal(anvil->looks, 0);
	assert_int_equal(r.out.planned, 4);
	assert_int_equal(r.out.gone, 0);
	assert_names(r.out.kicked, r.out.n_kicked, "bar foo");
	assert_int_equal(r.out.n_remained, 0);
	assert_int_equal(r.out.n_pids, 2);
	run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_all_gone_at_first_look, reset),
	        cmocka_unit_test_setup(test_gone_after_some_looks, reset),
	        cmocka_unit_test_setup(test_confirmation_stops_at_its_time,
	                               reset),
	        cmocka_unit_test_setup(test_some_remain, reset),
	        cmocka_unit_test_setup(test_failing_first_look_remains_all,
	                               reset),
	        cmocka_unit_test_setup(
	                test_failing_later_look_keeps_what_was_seen, reset),
	        cmocka_unit_test_setup(test_anvil_failing_is_reported, reset),
	        cmocka_unit_test_setup(test_dry_run_asks_nothing, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
