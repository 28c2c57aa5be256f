/* SPDX-License-Identifier: MIT */
/* A kick's reply and its audit line, from a finished plan, with stand-ins
 * for the steps that act on the system: the reply the client receives and
 * the audit line must name the same pids, users and counts, also when a
 * step fails after the signals went out or the client stops reading. And
 * what kg_job_finish adds to any reply: a record left out fails it, and
 * anvil's malformed-line count goes only to callers who see everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "broker/audit.h"
#include "broker/kick.h"
#include "tests/unit/testutil.h"
#include "tests/unit/testutil24.h"

#define BUF_SIZE 16384
#define MAX_PKTS 8

/* The processes the stand-in verifier signalled, and the pid it calls
 * gone (0: none). */
static struct {
	uint32_t pids[8];
	size_t n;
	uint32_t gone;
} signals;

/* The packets the client received; emits from fail_from on fail. */
static struct {
	uint8_t pkt[MAX_PKTS][KG_PKT_MAX];
	size_t len[MAX_PKTS];
	size_t n;
	size_t fail_from;
} client;

static int master_found(pid_t anvil, pid_t *master, char *err, size_t errlen)
{
	(void)anvil;
	(void)err;
	(void)errlen;
	*master = 1;
	return 0;
}

static int verify_recording(const struct kg_verify_cfg *cfg, pid_t pid)
{
	if ((uint32_t)pid == signals.gone)
		return KG_REFUSE_GONE;
	if (!cfg->dry_run)
		signals.pids[signals.n++] = (uint32_t)pid;
	return 0;
}

static int narrow_out_of_memory(struct kg_plan *p, const uint32_t *pids,
                                size_t n, struct kg_plan_result *out)
{
	(void)p;
	(void)pids;
	(void)n;
	(void)out;
	return -1;
}

static const struct kg_kick_ops ops_ok = {
        .find_master = master_found,
        .verify_signal = verify_recording,
        .narrow = kg_plan_restrict,
};

/* The budget's clock, set by the test, and its ledger. */
static int64_t fake_now;
static struct kg_budget ledger;

static int64_t fake_clock(void)
{
	return fake_now;
}

static const struct kg_kick_ops ops_budget = {
        .find_master = master_found,
        .verify_signal = verify_recording,
        .narrow = kg_plan_restrict,
        .now_ms = fake_clock,
        .budget = &ledger,
};

static const struct kg_kick_ops ops_oom = {
        .find_master = master_found,
        .verify_signal = verify_recording,
        .narrow = narrow_out_of_memory,
};

static const struct kg_kick_ops ops_budget_oom = {
        .find_master = master_found,
        .verify_signal = verify_recording,
        .narrow = narrow_out_of_memory,
        .now_ms = fake_clock,
        .budget = &ledger,
};

static int client_emit(void *ctx, const uint8_t *pkt, size_t len)
{
	(void)ctx;
	if (client.n >= client.fail_from || client.n >= MAX_PKTS)
		return -1;
	memcpy(client.pkt[client.n], pkt, len);
	client.len[client.n++] = len;
	return 0;
}

/* What the client read, as the audit line would spell it. */
struct seen {
	char pids[256];
	char users[256];
	char remained[256];
	size_t n_pids, n_users, n_refused;
	bool ended;
	struct kg_reply_end end;
};

static void append(char *list, const char *item, size_t len)
{
	size_t at = strlen(list);

	snprintf(list + at, 256 - at, "%s%.*s", at ? "," : "", (int)len, item);
}

static int on_user(void *ctx, enum kg_rec_type type, const char *name,
                   size_t len)
{
	struct seen *s = ctx;

	if (type == KG_REC_REMAINED) {
		append(s->remained, name, len);
		return 0;
	}
	assert_int_equal(type, KG_REC_KICKED);
	append(s->users, name, len);
	s->n_users++;
	return 0;
}

static int on_pid(void *ctx, uint32_t pid)
{
	struct seen *s = ctx;
	char text[16];

	snprintf(text, sizeof(text), "%u", pid);
	append(s->pids, text, strlen(text));
	s->n_pids++;
	return 0;
}

static int on_refused(void *ctx, uint32_t pid, uint8_t reason)
{
	struct seen *s = ctx;

	assert_int_equal(pid, signals.gone);
	assert_int_equal(reason, KG_REFUSE_GONE);
	s->n_refused++;
	return 0;
}

static int on_end(void *ctx, const struct kg_reply_end *end)
{
	struct seen *s = ctx;

	s->end = *end;
	s->ended = true;
	return 0;
}

static struct seen decode_reply(void)
{
	static const struct kg_reply_handler h = {.user = on_user,
	                                          .pid = on_pid,
	                                          .refused = on_refused,
	                                          .end = on_end};
	struct seen s = {0};

	for (size_t i = 0; i < client.n; i++) {
		bool is_end;
		int cb;

		assert_int_equal(kg_reply_decode(client.pkt[i], client.len[i],
		                                 &h, &s, &is_end, &cb),
		                 KG_WIRE_OK);
	}
	return s;
}

/* The value of " name=" in the audit line, up to the next space. */
static void field(const char *line, const char *name, char *out, size_t cap)
{
	char key[32];
	const char *p;
	size_t len;

	snprintf(key, sizeof(key), " %s=", name);
	p = strstr(line, key);
	assert_non_null(p);
	p += strlen(key);
	len = strcspn(p, " \n");
	assert_true(len < cap);
	memcpy(out, p, len);
	out[len] = '\0';
}

static void assert_field(const char *line, const char *name, const char *want)
{
	char got[256];

	field(line, name, got, sizeof(got));
	assert_string_equal(got, want);
}

static void assert_count(const char *line, const char *name, size_t want)
{
	char text[32];

	snprintf(text, sizeof(text), "%zu", want);
	assert_field(line, name, text);
}

/* pids 101, 102 and 103, one user each, all matched by the glob. */
static struct kg_plan *plan_three(const struct kg_request *req,
                                  struct kg_plan_result *res)
{
	struct kg_plan *plan = kg_plan_new(req, &tu_scope_all);
	const char *users[] = {"u1", "u2", "u3"};

	assert_non_null(plan);
	for (uint32_t i = 0; i < 3; i++) {
		struct kg_conn c = tu_conn(101 + i, "imap", users[i], NULL, 1);

		assert_int_equal(kg_plan_add(plan, &c), 0);
	}
	assert_int_equal(kg_plan_finish(plan, res), 0);
	assert_int_equal(res->verdict, KG_PLAN_KICK);
	return plan;
}

/* A rule that lets the caller see and kick everything. */
static const struct kg_decision helpdesk = {
        .allowed = true,
        .rule = "helpdesk",
        .scope = {.all_users = true, .all_nets = true},
        .may_who = true};

/* A job for uid 4000 under dec, kicking "u*" with flags; its reply goes
 * to client, which fails from fail_from on. */
static struct kg_job *kick_job(const struct kg_decision *dec, uint8_t flags,
                               size_t fail_from)
{
	static struct kg_instance inst = {.name = "default",
	                                  .anvil = "/run/test/anvil"};
	static struct kg_config cfg = {.services = {"imap"},
	                               .n_services = 1,
	                               .instances = &inst,
	                               .n_instances = 1};
	static struct kg_dump_parser parser;
	static struct kg_reply_writer w;
	static struct kg_job job;

	memset(&signals, 0, sizeof(signals));
	signals.gone = 102;
	memset(&client, 0, sizeof(client));
	client.fail_from = fail_from;
	job = (struct kg_job){.cfg = &cfg,
	                      .client_pid = 4242,
	                      .caller = {.uid = 4000},
	                      .decoded = true,
	                      .req = tu_request(KG_OP_KICK, "u*", NULL, flags),
	                      .instance_name = inst.name,
	                      .dec = *dec,
	                      .parser = &parser,
	                      .w = &w};
	kg_dump_init(&parser, 1);
	kg_rw_init(&w, client_emit, NULL);
	kg_audit_open(NULL);
	return &job;
}

/* Runs a kick of "u*" with flags under dec through ops, with pid 102
 * gone, and returns what stderr showed: the audit line and any log
 * lines. */
static void kick_as(const struct kg_decision *dec, uint8_t flags,
                    const struct kg_kick_ops *ops, size_t fail_from, char *err)
{
	struct kg_job *job = kick_job(dec, flags, fail_from);
	struct kg_plan_result res;
	struct kg_plan *plan = plan_three(&job->req, &res);
	struct tu_capture cap = tu_capture_stderr();

	kg_kick_answer(job, ops, plan, &res);
	tu_captured(cap, err, BUF_SIZE);
	kg_plan_free(plan);
}

static void kick(uint8_t flags, const struct kg_kick_ops *ops, size_t fail_from,
                 char *err)
{
	kick_as(&helpdesk, flags, ops, fail_from, err);
}

/* What the kicks before anvil is asked answer under dec; returns whether
 * they answered. */
static bool kick_early(const struct kg_decision *dec, uint8_t flags,
                       const struct kg_kick_ops *ops, char *err)
{
	struct kg_job *job = kick_job(dec, flags, MAX_PKTS);
	struct tu_capture cap = tu_capture_stderr();
	bool answered = kg_kick_answer_early(job, ops);

	tu_captured(cap, err, BUF_SIZE);
	return answered;
}

/* The audit line in what stderr showed. */
static const char *audit_line(const char *err)
{
	const char *line = strstr(err, "audit: ");

	assert_non_null(line);
	assert_null(strstr(line + 1, "audit: "));
	return line;
}

static void test_reply_and_audit_agree(void **state)
{
	char err[BUF_SIZE];
	const char *line;
	struct seen s;

	(void)state;
	kick(0, &ops_ok, MAX_PKTS, err);
	s = decode_reply();
	line = audit_line(err);
	assert_true(s.ended);
	assert_int_equal(signals.n, 2);
	assert_string_equal(s.pids, "101,103");
	assert_string_equal(s.users, "u1,u3");
	assert_int_equal(s.n_refused, 1);
	assert_int_equal(s.end.status, KG_EXIT_OK);
	assert_int_equal(s.end.conns, 2);
	assert_int_equal(s.end.pids, 2);
	assert_field(line, "outcome", "kicked");
	assert_count(line, "status", s.end.status);
	assert_count(line, "conns", s.end.conns);
	assert_count(line, "npids", s.n_pids);
	assert_count(line, "nusers", s.n_users);
	assert_field(line, "pids", s.pids);
	assert_field(line, "users", s.users);
}

/* Narrowing the users to the processes signalled runs out of memory
 * after the signals went out: the reply still lists the pids signalled,
 * with an error, and the audit line names the same pids. */
static void test_out_of_memory_after_signals(void **state)
{
	char err[BUF_SIZE];
	const char *line;
	struct seen s;

	(void)state;
	kick(0, &ops_oom, MAX_PKTS, err);
	s = decode_reply();
	line = audit_line(err);
	assert_int_equal(signals.n, 2);
	assert_string_equal(s.pids, "101,103");
	assert_int_equal(s.n_users, 0);
	assert_int_equal(s.end.status, KG_EXIT_SOFTWARE);
	assert_int_equal(s.end.pids, 2);
	assert_int_equal(s.end.conns, 0);
	assert_string_equal(s.end.error,
	                    "out of memory after signalling 2 process(es): "
	                    "their users and connections could not be "
	                    "counted");
	assert_field(line, "outcome", "error");
	assert_count(line, "status", s.end.status);
	assert_count(line, "conns", s.end.conns);
	assert_count(line, "npids", s.n_pids);
	assert_count(line, "nusers", 0);
	assert_field(line, "pids", s.pids);
	assert_field(line, "users", "");
}

/* The same in a dry run: nothing was signalled, and the error says the
 * pids listed were only checked. */
static void test_out_of_memory_after_dry_run_checks(void **state)
{
	char err[BUF_SIZE];
	const char *line;
	struct seen s;

	(void)state;
	kick(KG_REQ_DRY_RUN, &ops_oom, MAX_PKTS, err);
	s = decode_reply();
	line = audit_line(err);
	assert_int_equal(signals.n, 0);
	assert_string_equal(s.pids, "101,103");
	assert_true(s.end.flags & KG_END_DRY_RUN);
	assert_int_equal(s.end.status, KG_EXIT_SOFTWARE);
	assert_non_null(strstr(s.end.error, "after checking 2 process(es)"));
	assert_field(line, "outcome", "error");
	assert_count(line, "status", s.end.status);
	assert_field(line, "pids", s.pids);
}

/* The client stops reading before the end packet: what it did receive
 * agrees with the audit line, which is written whole all the same. */
static void test_reply_failure_still_audits_the_signals(void **state)
{
	char err[BUF_SIZE];
	const char *line;
	struct seen s;

	(void)state;
	kick(0, &ops_ok, 1, err);
	s = decode_reply();
	line = audit_line(err);
	assert_false(s.ended);
	assert_int_equal(signals.n, 2);
	assert_string_equal(s.pids, "101,103");
	assert_string_equal(s.users, "u1,u3");
	assert_non_null(strstr(err, "client pid 4242 went away before the "
	                            "reply ended"));
	assert_field(line, "outcome", "kicked");
	assert_count(line, "status", KG_EXIT_OK);
	assert_count(line, "npids", s.n_pids);
	assert_count(line, "nusers", s.n_users);
	assert_field(line, "pids", s.pids);
	assert_field(line, "users", s.users);
}

/* A listing answered through kg_job_finish, for a caller of scope, from
 * a dump with malformed lines: rows "a" and "b" and, with oversized, a
 * row between them whose user name leaves no room in a record for the
 * rest of it. Returns what stderr showed. */
static void list_rows(const struct kg_scope *scope, uint64_t malformed,
                      bool oversized, char *err)
{
	static struct kg_instance inst = {.name = "default",
	                                  .anvil = "/run/test/anvil"};
	static struct kg_config cfg = {.instances = &inst, .n_instances = 1};
	static struct kg_dump_parser parser;
	static struct kg_reply_writer w;
	static struct kg_job job;
	static char big[KG_USER_MAX];
	struct kg_who_row row = {.pid = 7,
	                         .conns = 1,
	                         .addr = {.family = KG_AF_INET6},
	                         .service = "imap",
	                         .service_len = 4,
	                         .user = "a",
	                         .user_len = 1};
	struct tu_capture cap;

	memset(&client, 0, sizeof(client));
	client.fail_from = MAX_PKTS;
	job = (struct kg_job){.cfg = &cfg,
	                      .client_pid = 4242,
	                      .caller = {.uid = 4000},
	                      .decoded = true,
	                      .req = tu_request(KG_OP_WHO, NULL, NULL, 0),
	                      .instance_name = inst.name,
	                      .dec = {.allowed = true,
	                              .rule = "helpdesk",
	                              .scope = *scope,
	                              .may_who = true},
	                      .parser = &parser,
	                      .w = &w};
	kg_dump_init(&parser, 1);
	parser.malformed = malformed;
	kg_rw_init(&w, client_emit, NULL);
	kg_audit_open(NULL);
	cap = tu_capture_stderr();
	kg_rw_who(&w, &row);
	if (oversized) {
		memset(big, 'u', sizeof(big));
		row.user = big;
		row.user_len = sizeof(big);
		kg_rw_who(&w, &row);
	}
	row.user = "b";
	row.user_len = 1;
	kg_rw_who(&w, &row);
	job.result.outcome = "listed";
	job.result.end.conns = 2;
	kg_job_finish(&job);
	tu_captured(cap, err, BUF_SIZE);
}

/* A row the wire format cannot carry is left out, but the reply then
 * fails and says so, in the reply and in the audit line; the rows after
 * it are sent and counted. */
static void test_row_left_out_fails_the_reply(void **state)
{
	char err[BUF_SIZE];
	struct seen s;

	(void)state;
	list_rows(&tu_scope_all, 0, false, err);
	s = decode_reply();
	assert_true(s.ended && s.end.status == KG_EXIT_OK &&
	            s.end.records == 2 && s.end.error_len == 0);
	list_rows(&tu_scope_all, 0, true, err);
	s = decode_reply();
	assert_true(s.ended);
	assert_int_equal(s.end.status, KG_EXIT_SOFTWARE);
	assert_int_equal(s.end.records, 2);
	assert_non_null(strstr(s.end.error, "the reply is incomplete: 1 "
	                                    "record(s) too large"));
	assert_field(audit_line(err), "status", "70");
	assert_field(audit_line(err), "outcome", "listed");
}

/* Anvil's malformed lines may be anybody's sessions: only a caller whose
 * scope is every session learns their number. */
static void test_malformed_count_only_for_unrestricted_scope(void **state)
{
	char err[BUF_SIZE];
	struct seen s;

	(void)state;
	list_rows(&tu_scope_all, 3, false, err);
	s = decode_reply();
	assert_int_equal(s.end.malformed, 3);
	assert_false(s.end.flags & KG_END_SCOPED);
	list_rows(&tu_scope_tenant_a, 3, false, err);
	s = decode_reply();
	assert_int_equal(s.end.malformed, 0);
	assert_true(s.end.flags & KG_END_SCOPED);
}

/* The helpdesk rule with who = no. */
static struct kg_decision hiding(uint32_t max_sessions)
{
	struct kg_decision d = helpdesk;

	d.may_who = false;
	d.max_sessions = max_sessions;
	return d;
}

static void assert_hidden(const struct seen *s)
{
	assert_true(s->ended);
	assert_int_equal(s->end.records, 0);
	assert_true(s->end.flags & KG_END_HIDDEN);
	assert_true(s->end.flags & KG_END_SCOPED);
}

/* A dry run under who = no is answered before anvil is asked, from the
 * policy alone: status 0 whatever matches, nothing named or counted. */
static void test_hidden_dry_run_is_answered_by_policy_alone(void **state)
{
	struct kg_decision d = hiding(0);
	char err[BUF_SIZE];
	struct seen s;

	(void)state;
	assert_true(kick_early(&d, KG_REQ_DRY_RUN, &kg_kick_system, err));
	s = decode_reply();
	assert_hidden(&s);
	assert_true(s.end.flags & KG_END_DRY_RUN);
	assert_int_equal(s.end.status, KG_EXIT_OK);
	assert_int_equal(s.end.conns, 0);
	assert_int_equal(s.end.pids, 0);
	assert_int_equal(s.end.error_len, 0);
	assert_field(audit_line(err), "outcome", "checked");
	/* A real kick, and a dry run of a caller who may list, go on to
	 * anvil. */
	assert_false(kick_early(&d, 0, &kg_kick_system, err));
	assert_false(
	        kick_early(&helpdesk, KG_REQ_DRY_RUN, &kg_kick_system, err));
}

/* A kick done under who = no tells its counts, its own effect, but no
 * names or pids; the audit line has them all. */
static void test_hidden_kick_tells_counts_only(void **state)
{
	struct kg_decision d = hiding(0);
	char err[BUF_SIZE];
	const char *line;
	struct seen s;

	(void)state;
	kick_as(&d, 0, &ops_ok, MAX_PKTS, err);
	s = decode_reply();
	line = audit_line(err);
	assert_hidden(&s);
	assert_int_equal(signals.n, 2);
	assert_int_equal(s.n_users + s.n_pids + s.n_refused, 0);
	assert_int_equal(s.end.status, KG_EXIT_OK);
	assert_int_equal(s.end.conns, 2);
	assert_int_equal(s.end.pids, 2);
	assert_field(line, "outcome", "kicked");
	assert_field(line, "pids", "101,103");
	assert_field(line, "users", "u1,u3");
}

/* A kick over max_sessions under who = no is refused without saying how
 * many it would have taken; the audit line says it. */
static void test_hidden_refusal_tells_no_count(void **state)
{
	struct kg_decision d = hiding(1);
	char err[BUF_SIZE];
	struct seen s;

	(void)state;
	kick_as(&d, 0, &ops_ok, MAX_PKTS, err);
	s = decode_reply();
	assert_hidden(&s);
	assert_int_equal(signals.n, 0);
	assert_int_equal(s.end.status, KG_EXIT_NOPERM);
	assert_int_equal(s.end.conns, 0);
	assert_int_equal(s.end.pids, 0);
	assert_string_equal(s.end.error,
	                    "refused: the kick would disconnect too many "
	                    "connections; the rule allows at most 1");
	assert_field(audit_line(err), "outcome", "over-limit");
	assert_field(audit_line(err), "conns", "3");
	d.may_who = true;
	kick_as(&d, 0, &ops_ok, MAX_PKTS, err);
	s = decode_reply();
	assert_int_equal(s.end.conns, 3);
	assert_string_equal(s.end.error,
	                    "refused: the kick would disconnect 3 "
	                    "connections; the rule allows at most 1");
}

static struct kg_decision budgeted(uint32_t per_hour)
{
	struct kg_decision d = helpdesk;

	d.max_per_hour = per_hour;
	d.rule_index = 7;
	return d;
}

static uint64_t used_by_caller(void)
{
	size_t i;

	assert_int_equal(kg_budget_find(&ledger, 4000, 7, fake_now, &i), 0);
	return kg_budget_used(&ledger, i, fake_now);
}

/* What is charged is what was signalled (pid 102 was gone: two of three
 * planned), never a dry run; a kick over what remains is refused whole,
 * and saying so. */
static void test_budget_charges_what_was_kicked(void **state)
{
	struct kg_decision d = budgeted(4);
	char err[BUF_SIZE];
	struct seen s;

	(void)state;
	kg_budget_free(&ledger);
	fake_now = 5 * 60000;
	kick_as(&d, KG_REQ_DRY_RUN, &ops_budget, MAX_PKTS, err);
	assert_int_equal(used_by_caller(), 0);
	kick_as(&d, 0, &ops_budget, MAX_PKTS, err);
	assert_int_equal(signals.n, 2);
	assert_int_equal(used_by_caller(), 2);
	fake_now += 30 * 60000;
	kick_as(&d, 0, &ops_budget, MAX_PKTS, err);
	s = decode_reply();
	assert_int_equal(signals.n, 0);
	assert_int_equal(s.end.status, KG_EXIT_NOPERM);
	assert_string_equal(s.end.error,
	                    "refused: the kick would disconnect 3 "
	                    "connections; rule 'helpdesk' allows you 4 "
	                    "connections per hour, and 2 remain now");
	assert_field(audit_line(err), "outcome", "over-budget");
	assert_int_equal(used_by_caller(), 2);
	kg_budget_free(&ledger);
}

/* Signals went out but their connections could not be counted: what
 * was planned is charged, as charging nothing would open the budget. */
static void test_budget_charges_the_plan_when_uncounted(void **state)
{
	struct kg_decision d = budgeted(4);
	char err[BUF_SIZE];

	(void)state;
	kg_budget_free(&ledger);
	fake_now = 0;
	kick_as(&d, 0, &ops_budget_oom, MAX_PKTS, err);
	assert_int_equal(signals.n, 2);
	assert_int_equal(used_by_caller(), 3);
	kg_budget_free(&ledger);
}

/* A used-up budget refuses every kick, dry runs too, before anvil is
 * asked, so that the refusal does not depend on what matches; from the
 * 61st minute after the kicks, it is whole again. */
static void test_budget_used_up_refuses_before_anvil(void **state)
{
	struct kg_decision d = budgeted(2);
	char err[BUF_SIZE];
	struct seen s;

	(void)state;
	kg_budget_free(&ledger);
	fake_now = 0;
	assert_false(kick_early(&d, 0, &ops_budget, err));
	kg_budget_charge(&ledger, 0, fake_now, 2);
	assert_int_equal(used_by_caller(), 2);
	fake_now = 60 * 60000 + 59999;
	assert_true(kick_early(&d, KG_REQ_DRY_RUN, &ops_budget, err));
	s = decode_reply();
	assert_int_equal(s.end.status, KG_EXIT_NOPERM);
	assert_string_equal(s.end.error,
	                    "refused: nothing was kicked: rule 'helpdesk' "
	                    "allows you 2 connections per hour, and 0 remain "
	                    "now");
	assert_field(audit_line(err), "outcome", "over-budget");
	fake_now += 1;
	assert_false(kick_early(&d, 0, &ops_budget, err));
	kg_budget_free(&ledger);
}

/* Dovecot 2.4: anvil kicks, and its dumps say what went. Stand-ins that
 * fail the test: a 2.4 kick signals nothing and verifies no target. */
static int master_unused(pid_t anvil, pid_t *master, char *err, size_t errlen)
{
	(void)anvil;
	(void)master;
	(void)err;
	(void)errlen;
	fail_msg("a Dovecot 2.4 kick looked for the master");
	return -1;
}

static int verify_unused(const struct kg_verify_cfg *cfg, pid_t pid)
{
	(void)cfg;
	fail_msg("a Dovecot 2.4 kick verified pid %d", (int)pid);
	return -1;
}

static const struct kg_kick_ops ops_anvil = {
        .find_master = master_unused,
        .verify_signal = verify_unused,
        .narrow = kg_plan_restrict,
        .now_ms = fake_clock,
        .budget = &ledger,
        .anvil = &tu24_anvil_ops,
};

/* u1 twice and u2 in process 201, u3 in 202: the n-th connection,
 * tu24_guid(n), stays in anvil's dumps when bit n - 1 of stay is set.
 * Anvil answers answer (TU24_ANSWER_ALL, or -1: it failed). Returns the
 * flags of the reply's end. */
static uint8_t kick24_as(const struct kg_decision *dec, uint8_t flags,
                         unsigned stay, int answer, char *err)
{
	static const struct {
		uint32_t pid;
		const char *user;
	} conns[] = {{201, "u1"}, {201, "u1"}, {201, "u2"}, {202, "u3"}};
	struct kg_job *job = kick_job(dec, flags, MAX_PKTS);
	struct kg_plan *plan = kg_plan_new(&job->req, &tu_scope_all);
	struct kg_plan_result res;
	struct tu_capture cap;

	assert_non_null(plan);
	tu24_anvil_reset(0);
	tu24_anvil.answer = answer;
	tu24_anvil.n_conns = 4;
	for (size_t i = 0; i < 4; i++) {
		tu24_anvil.conns[i] =
		        tu24_conn(conns[i].pid, "imap", conns[i].user, NULL,
		                  (uint32_t)i + 1);
		tu24_anvil.goes[i] = (stay >> i & 1) ? 0 : 1;
		assert_int_equal(kg_plan_add(plan, &tu24_anvil.conns[i]), 0);
	}
	assert_int_equal(kg_plan_finish(plan, &res), 0);
	assert_int_equal(res.verdict, KG_PLAN_KICK);
	cap = tu_capture_stderr();
	kg_kick_answer(job, &ops_anvil, plan, &res);
	tu_captured(cap, err, BUF_SIZE);
	kg_plan_free(plan);
	return job->result.end.flags;
}

/* Everything went: status 0, and the audit line names the processes and
 * users, and no one remained. One KICK-USER per unit, one look. */
static void test_anvil_kick_all_went(void **state)
{
	char err[BUF_SIZE];
	const char *line;

	(void)state;
	assert_true(kick24_as(&helpdesk, 0, 0, TU24_ANSWER_ALL, err) &
	            KG_END_CONFIRMED);
	line = audit_line(err);
	assert_int_equal(tu24_anvil.n_asked, 3);
	assert_int_equal(tu24_anvil.looks, 1);
	assert_field(line, "outcome", "kicked");
	assert_field(line, "status", "0");
	assert_field(line, "conns", "4");
	assert_field(line, "pids", "201,202");
	assert_field(line, "users", "u1,u2,u3");
	assert_null(strstr(line, " remained="));
}

/* Some stayed: status 75; what went is counted, and the users with a
 * connection still there are named apart. */
static void test_anvil_kick_some_remained(void **state)
{
	struct kg_decision d = hiding(0);
	char err[BUF_SIZE];
	const char *line;
	struct seen s;

	(void)state;
	assert_true(kick24_as(&d, 0, 1u << 3, TU24_ANSWER_ALL, err) &
	            KG_END_CONFIRMED);
	line = audit_line(err);
	assert_field(line, "outcome", "partly-kicked");
	assert_count(line, "status", KG_EXIT_PARTIAL);
	assert_field(line, "conns", "3");
	assert_field(line, "pids", "201,202");
	assert_field(line, "users", "u1,u2");
	assert_field(line, "remained", "u3");
	/* A caller whose rule hides sessions learns the status alone. */
	s = decode_reply();
	assert_hidden(&s);
	assert_int_equal(s.end.status, KG_EXIT_PARTIAL);
	assert_true(s.end.flags & KG_END_CONFIRMED);
	/* One who may see them reads who went, who stayed, and why 75. */
	kick24_as(&helpdesk, 0, 1u << 3, TU24_ANSWER_ALL, err);
	s = decode_reply();
	assert_true(s.ended);
	assert_string_equal(s.users, "u1,u2");
	assert_string_equal(s.remained, "u3");
	assert_string_equal(s.pids, "201,202");
	assert_int_equal(s.end.status, KG_EXIT_PARTIAL);
	assert_int_equal(s.end.conns, 3);
	assert_true(s.end.flags & KG_END_CONFIRMED);
	/* One of u1's two connections stayed: u1 is in both lists. */
	kick24_as(&d, 0, 1u << 1, TU24_ANSWER_ALL, err);
	line = audit_line(err);
	assert_count(line, "status", KG_EXIT_PARTIAL);
	assert_field(line, "conns", "3");
	assert_field(line, "users", "u1,u2,u3");
	assert_field(line, "remained", "u1");
}

/* Nothing went: anvil is to blame (69) when it failed, otherwise the
 * kick is a partial one that took nothing (75). */
static void test_anvil_kick_nothing_went(void **state)
{
	struct kg_decision d = hiding(0);
	char err[BUF_SIZE];
	const char *line;

	(void)state;
	kick24_as(&d, 0, 0xf, -1, err);
	line = audit_line(err);
	assert_field(line, "outcome", "not-kicked");
	assert_count(line, "status", KG_EXIT_UNAVAILABLE);
	assert_field(line, "conns", "0");
	assert_field(line, "users", "");
	assert_field(line, "remained", "u1,u2,u3");
	kick24_as(&d, 0, 0xf, TU24_ANSWER_ALL, err);
	line = audit_line(err);
	assert_field(line, "outcome", "not-kicked");
	assert_count(line, "status", KG_EXIT_PARTIAL);
	/* Anvil failed, yet some went: the dumps decide. */
	kick24_as(&d, 0, 0x3, -1, err);
	line = audit_line(err);
	assert_field(line, "outcome", "partly-kicked");
	assert_count(line, "status", KG_EXIT_PARTIAL);
	assert_field(line, "users", "u2,u3");
}

/* The budget is charged with the connections that went, not with what
 * was planned; a dry run asks anvil nothing and costs nothing; a kick
 * over what remains, or over max_sessions, is refused before anvil is
 * asked. */
static void test_anvil_kick_budget_and_limits(void **state)
{
	struct kg_decision d = budgeted(5);
	struct kg_decision few = hiding(3);
	char err[BUF_SIZE];
	const char *line;

	(void)state;
	kg_budget_free(&ledger);
	fake_now = 60000;
	assert_false(kick24_as(&d, KG_REQ_DRY_RUN, 0, TU24_ANSWER_ALL, err) &
	             KG_END_CONFIRMED);
	line = audit_line(err);
	assert_int_equal(tu24_anvil.n_asked + tu24_anvil.looks, 0);
	assert_field(line, "outcome", "dry-run");
	assert_field(line, "status", "0");
	assert_field(line, "conns", "4");
	assert_field(line, "users", "u1,u2,u3");
	assert_int_equal(used_by_caller(), 0);
	kick24_as(&d, 0, 0xf, -1, err);
	assert_int_equal(used_by_caller(), 0);
	kick24_as(&d, 0, 1u << 3, TU24_ANSWER_ALL, err);
	assert_int_equal(used_by_caller(), 3);
	kick24_as(&d, 0, 0, TU24_ANSWER_ALL, err);
	assert_field(audit_line(err), "outcome", "over-budget");
	assert_int_equal(tu24_anvil.n_asked + tu24_anvil.looks, 0);
	assert_int_equal(used_by_caller(), 3);
	kg_budget_free(&ledger);
	kick24_as(&few, 0, 0, TU24_ANSWER_ALL, err);
	assert_field(audit_line(err), "outcome", "over-limit");
	assert_int_equal(tu24_anvil.n_asked + tu24_anvil.looks, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_reply_and_audit_agree),
	        cmocka_unit_test(test_out_of_memory_after_signals),
	        cmocka_unit_test(test_out_of_memory_after_dry_run_checks),
	        cmocka_unit_test(test_reply_failure_still_audits_the_signals),
	        cmocka_unit_test(test_row_left_out_fails_the_reply),
	        cmocka_unit_test(
	                test_malformed_count_only_for_unrestricted_scope),
	        cmocka_unit_test(
	                test_hidden_dry_run_is_answered_by_policy_alone),
	        cmocka_unit_test(test_hidden_kick_tells_counts_only),
	        cmocka_unit_test(test_hidden_refusal_tells_no_count),
	        cmocka_unit_test(test_budget_charges_what_was_kicked),
	        cmocka_unit_test(test_budget_charges_the_plan_when_uncounted),
	        cmocka_unit_test(test_budget_used_up_refuses_before_anvil),
	        cmocka_unit_test(test_anvil_kick_all_went),
	        cmocka_unit_test(test_anvil_kick_some_remained),
	        cmocka_unit_test(test_anvil_kick_nothing_went),
	        cmocka_unit_test(test_anvil_kick_budget_and_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
