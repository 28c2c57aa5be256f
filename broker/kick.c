/* SPDX-License-Identifier: MIT */
#include "broker/kick.h"

#include <stdio.h>
#include <stdlib.h>

#include "proto/clock.h"
#include "proto/log.h"
#include "proto/reply_send.h"

/* Room for a limit's text: a rule's name and two numbers. */
#define LIMIT_TEXT_MAX (KG_CONF_NAME_MAX + 96)

/* The broker lives as long as its configuration, so the hourly budgets
 * are kept here, in its memory, and a reload's new broker starts anew. */
static struct kg_budget ledger;

const struct kg_kick_ops kg_kick_system = {
        .find_master = kg_master_find,
        .verify_signal = kg_verify_signal,
        .narrow = kg_plan_restrict,
        .now_ms = kg_now_ms,
        .budget = &ledger,
        .anvil = &kg_anvil_system,
};

/* The caller's hourly budget under the deciding rule, as of one reading
 * of the clock. */
struct budget {
	bool limited;
	size_t entry; /* in the ledger */
	int64_t now;
	uint64_t remaining;
};

/* What happened to the planned processes. */
struct outcome {
	uint32_t *signalled; /* (dry run: passed the checks) */
	size_t n_signalled;
	struct kg_refusal *refused;
	size_t n_refused;
	size_t n_gone;
	struct budget budget; /* what is signalled is charged to it */
};

/* Under who = no the caller may not learn which sessions exist: the
 * reply then carries no names or pids (kg_job_finish), and no count but
 * that of a kick that was done. */
static bool hidden(const struct kg_job *job)
{
	return !job->dec.may_who;
}

static void mark_reply(struct kg_job *job)
{
	if (job->req.flags & KG_REQ_DRY_RUN)
		job->result.end.flags |= KG_END_DRY_RUN;
	if (hidden(job))
		job->result.end.flags |= KG_END_HIDDEN;
}

/* Ends the kick with status and outcome, and text as the error when not
 * NULL. What the result holds already (the dry-run flag, pids) stays:
 * kg_job_refuse would drop it. */
static void kick_end(struct kg_job *job, uint8_t status, const char *outcome,
                     const char *text)
{
	job->result.end.status = status;
	job->result.outcome = outcome;
	if (text != NULL)
		kg_end_set_error(&job->result.end, text);
	kg_job_finish(job);
}

/* Checks (dry_run) or checks and signals every planned pid, sorting each
 * into signalled or refused. */
static void run_targets(const struct kg_kick_ops *ops,
                        const struct kg_verify_cfg *vc,
                        const struct kg_plan_result *res, struct outcome *o)
{
	o->n_signalled = o->n_refused = o->n_gone = 0;
	for (size_t i = 0; i < res->n_pids; i++) {
		int r = ops->verify_signal(vc, (pid_t)res->pids[i]);

		if (r == 0) {
			o->signalled[o->n_signalled++] = res->pids[i];
			continue;
		}
		o->refused[o->n_refused++] =
		        (struct kg_refusal){res->pids[i], (uint8_t)r};
		if (r == KG_REFUSE_GONE)
			o->n_gone++;
	}
}

static void report_outcome(struct kg_result *r, const struct outcome *o)
{
	r->pids = o->signalled;
	r->n_pids = o->n_signalled;
	r->end.pids = (uint32_t)o->n_signalled;
	r->refused = o->refused;
	r->n_refused = o->n_refused;
}

/* Refuses a kick over a limit whole. How many connections it would have
 * taken tells a caller whose rule hides sessions how many match: only
 * the audit line gets it then. */
static void refuse_over(struct kg_job *job, const struct kg_plan_result *res,
                        const char *outcome, const char *limit)
{
	char text[KG_ERRTEXT_MAX + 1];

	if (hidden(job))
		snprintf(text, sizeof(text),
		         "refused: the kick would disconnect too many "
		         "connections; %s",
		         limit);
	else
		snprintf(
		        text, sizeof(text),
		        "refused: the kick would disconnect %u connections; %s",
		        res->conns_kicked, limit);
	job->result.end.conns = res->conns_kicked;
	job->result.end.pids = (uint32_t)res->n_pids;
	kick_end(job, KG_EXIT_NOPERM, outcome, text);
}

static bool over_limit(struct kg_job *job, const struct kg_plan_result *res)
{
	char limit[LIMIT_TEXT_MAX];

	if (job->dec.max_sessions == 0 ||
	    res->conns_kicked <= job->dec.max_sessions)
		return false;
	snprintf(limit, sizeof(limit), "the rule allows at most %u",
	         job->dec.max_sessions);
	refuse_over(job, res, "over-limit", limit);
	return true;
}

/* Reads the caller's budget. Returns -1, answered, when out of memory:
 * a kick whose connections could not be charged must not be made. */
static int budget_read(struct kg_job *job, const struct kg_kick_ops *ops,
                       struct budget *b)
{
	uint32_t limit = job->dec.max_per_hour;
	uint64_t used;

	*b = (struct budget){.limited = limit > 0};
	if (!b->limited)
		return 0;
	b->now = ops->now_ms();
	if (kg_budget_find(ops->budget, job->caller.uid, job->dec.rule_index,
	                   b->now, &b->entry) < 0) {
		kg_job_dump_error(job, "");
		return -1;
	}
	used = kg_budget_used(ops->budget, b->entry, b->now);
	b->remaining = used < limit ? limit - used : 0;
	return 0;
}

static void budget_text(const struct kg_job *job, const struct budget *b,
                        char *text, size_t cap)
{
	snprintf(text, cap,
	         "rule '%s' allows you %u connections per hour, and %llu "
	         "remain now",
	         job->dec.rule, job->dec.max_per_hour,
	         (unsigned long long)b->remaining);
}

static bool over_budget(struct kg_job *job, const struct kg_plan_result *res,
                        const struct budget *b)
{
	char limit[LIMIT_TEXT_MAX];

	if (!b->limited || res->conns_kicked <= b->remaining)
		return false;
	budget_text(job, b, limit, sizeof(limit));
	refuse_over(job, res, "over-budget", limit);
	return true;
}

/* What was really ended is charged, never a plan or a dry run: acted
 * says whether anything was. When the users could not be counted, conns
 * is what was planned: charging more is safer than charging nothing. */
static void charge(struct kg_job *job, const struct kg_kick_ops *ops,
                   const struct budget *b, bool acted, uint32_t conns)
{
	if (!b->limited || (job->req.flags & KG_REQ_DRY_RUN) || !acted)
		return;
	kg_budget_charge(ops->budget, b->entry, b->now, conns);
}

/* The instance's master, found through anvil. Without it no target can
 * be verified, so the kick is refused as a whole, naming the cause in the
 * reply and in the log rather than blaming each pid. */
static bool find_master(struct kg_job *job, const struct kg_kick_ops *ops,
                        pid_t *master)
{
	const struct kg_instance *in = &job->cfg->instances[job->instance];
	/* Sized so that the reply's text always fits whole. */
	char cause[112], text[KG_ERRTEXT_MAX + 1];

	if (ops->find_master(job->anvil, master, cause, sizeof(cause)) == 0)
		return true;
	kg_log_err("instance %s: cannot verify targets: %s; is Dovecot's "
	           "own anvil listening on %s?",
	           in->name, cause, in->anvil);
	snprintf(text, sizeof(text),
	         "refused: cannot verify Dovecot instance '%s': %s; nothing "
	         "was signalled",
	         in->name, cause);
	kick_end(job, KG_EXIT_NOPERM, "unverified-master", text);
	return false;
}

/* Users reported kicked are those of the processes really signalled: a
 * process that was already gone kicked nobody. */
static int narrow_to_signalled(const struct kg_kick_ops *ops,
                               struct kg_plan *plan, const struct outcome *o,
                               struct kg_plan_result *res)
{
	if (o->n_signalled == res->n_pids)
		return 0;
	return ops->narrow(plan, o->signalled, o->n_signalled, res);
}

/* The signals went out (or, dry run, the checks passed) before the users
 * could be counted: the reply and the audit line still name every pid,
 * and the error says what is missing. */
static void end_uncounted(struct kg_job *job, size_t n_pids, bool dry)
{
	char text[KG_ERRTEXT_MAX + 1];

	snprintf(text, sizeof(text),
	         "out of memory after %s %zu process(es): their users and "
	         "connections could not be counted",
	         dry ? "checking" : "signalling", n_pids);
	kick_end(job, KG_EXIT_SOFTWARE, "error", text);
}

static void report_signalled(struct kg_job *job, const struct kg_kick_ops *ops,
                             struct kg_plan *plan, struct kg_plan_result *res,
                             const struct outcome *o)
{
	struct kg_result *r = &job->result;
	bool dry = job->req.flags & KG_REQ_DRY_RUN;
	int narrowed;

	report_outcome(r, o);
	narrowed = narrow_to_signalled(ops, plan, o, res);
	/* Narrowing that failed left the planned count in res. */
	charge(job, ops, &o->budget, o->n_signalled > 0, res->conns_kicked);
	if (narrowed < 0) {
		end_uncounted(job, o->n_signalled, dry);
		return;
	}
	r->kicked = res->kicked;
	r->n_kicked = res->n_kicked;
	r->end.conns = res->conns_kicked;
	kick_end(job, o->n_signalled > 0 ? KG_EXIT_OK : KG_EXIT_NOMATCH,
	         o->n_signalled == 0 ? "gone"
	         : dry               ? "dry-run"
	                             : "kicked",
	         NULL);
}

/* Every target is verified before any is signalled: one that fails
 * (not a Dovecot mail process) stops the whole kick, as anvil naming a
 * foreign pid means its data cannot be trusted. */
static void execute(struct kg_job *job, const struct kg_kick_ops *ops,
                    struct kg_plan *plan, struct kg_plan_result *res,
                    struct outcome *o)
{
	const char *services[KG_CONF_MAX_SERVICES];
	struct kg_verify_cfg vc = {.services = services,
	                           .n_services = job->cfg->n_services,
	                           .dry_run = true};

	if (!find_master(job, ops, &vc.master))
		return;
	for (size_t i = 0; i < job->cfg->n_services; i++)
		services[i] = job->cfg->services[i];
	run_targets(ops, &vc, res, o);
	if (o->n_refused > o->n_gone) {
		/* The pids that passed were not signalled either: the reply
		 * and the audit line name none, and count nothing kicked. */
		o->n_signalled = 0;
		report_outcome(&job->result, o);
		kick_end(job, KG_EXIT_NOPERM, "refused",
		         "refused: a target is not a verified Dovecot mail "
		         "process; nothing was signalled");
		return;
	}
	if (!(job->req.flags & KG_REQ_DRY_RUN)) {
		vc.dry_run = false;
		run_targets(ops, &vc, res, o);
	}
	report_signalled(job, ops, plan, res, o);
}

/* Reads the budget and checks the limits; false when the kick was
 * refused (and answered). */
static bool within_limits(struct kg_job *job, const struct kg_kick_ops *ops,
                          const struct kg_plan_result *res, struct budget *b)
{
	return budget_read(job, ops, b) == 0 && !over_limit(job, res) &&
	       !over_budget(job, res, b);
}

/* The status of a kick anvil carried out: whether everything planned
 * went, and when nothing went because anvil failed, that anvil is to
 * blame. */
static uint8_t anvil_status(const struct kg_anvil_outcome *a)
{
	if (a->n_remained == 0)
		return KG_EXIT_OK;
	return a->gone == 0 && a->err[0] ? KG_EXIT_UNAVAILABLE
	                                 : KG_EXIT_PARTIAL;
}

/* Dovecot 2.4: anvil kicks, and a new dump says what went. */
static void kick_by_anvil(struct kg_job *job, const struct kg_kick_ops *ops,
                          struct kg_plan *plan, struct kg_plan_result *res,
                          const struct budget *b)
{
	struct kg_result *r = &job->result;
	struct kg_anvil_outcome a;
	uint8_t status;

	if (kg_kick_by_anvil(job, ops->anvil, plan, res, &a) < 0) {
		kg_anvil_outcome_free(&a);
		kg_job_dump_error(job, "");
		return;
	}
	r->pids = a.pids;
	r->n_pids = a.n_pids;
	r->end.pids = (uint32_t)a.n_pids;
	r->kicked = a.kicked;
	r->n_kicked = a.n_kicked;
	if (job->req.flags & KG_REQ_DRY_RUN) {
		r->end.conns = a.planned;
		kick_end(job, KG_EXIT_OK, "dry-run", NULL);
	} else {
		r->remained = a.remained;
		r->n_remained = a.n_remained;
		r->end.flags |= KG_END_CONFIRMED;
		r->end.conns = a.gone;
		charge(job, ops, b, a.gone > 0, a.gone);
		status = anvil_status(&a);
		kick_end(job, status,
		         status == KG_EXIT_OK ? "kicked"
		         : a.gone > 0         ? "partly-kicked"
		                              : "not-kicked",
		         a.err[0] ? a.err : NULL);
	}
	kg_anvil_outcome_free(&a);
}

static void kick_planned(struct kg_job *job, const struct kg_kick_ops *ops,
                         struct kg_plan *plan, struct kg_plan_result *res)
{
	struct outcome o = {
	        .signalled = calloc(res->n_pids + 1, sizeof(uint32_t)),
	        .refused = calloc(res->n_pids + 1, sizeof(struct kg_refusal)),
	};

	if (o.signalled == NULL || o.refused == NULL) {
		kg_job_dump_error(job, "");
	} else if (within_limits(job, ops, res, &o.budget)) {
		if (kg_plan_by_user(plan))
			kick_by_anvil(job, ops, plan, res, &o.budget);
		else
			execute(job, ops, plan, res, &o);
	}
	free(o.signalled);
	free(o.refused);
}

/* Shared processes without -f. A caller whose rule forbids -f must not be
 * told to use it: the reply says why nothing was kicked and that -f is
 * not theirs to give. The exit status stays 1, as for everyone else whose
 * kick needs -f: a script tells the two apart by the error. */
static void reply_need_force(struct kg_job *job,
                             const struct kg_plan_result *res)
{
	struct kg_result *r = &job->result;
	char text[KG_ERRTEXT_MAX + 1];

	r->warn = res->warn;
	r->n_warn = res->n_warn;
	r->end.flags |= KG_END_NEED_FORCE;
	if (job->dec.may_force) {
		kick_end(job, KG_EXIT_NEED_FORCE, "need-force", NULL);
		return;
	}
	r->end.flags |= KG_END_FORCE_DENIED;
	snprintf(text, sizeof(text),
	         "nothing was kicked: the matching processes also serve "
	         "other connections, and your rule '%s' does not allow -f",
	         job->dec.rule);
	kick_end(job, KG_EXIT_NEED_FORCE, "need-force", text);
}

/* A process that also serves sessions outside the scope is never
 * signalled. The caller learns that such sessions exist, as the refusal
 * must say why, but not how many: that is other tenants' business. The
 * count goes to the audit line, for the administrator. A line of anvil's
 * that kickgated could not read may be anybody's session, so it blocks as
 * one outside the scope does; the refusal names that cause, which the
 * caller cannot fix, so that they take it to the administrator. */
static void reply_blocked(struct kg_job *job, const struct kg_plan_result *res)
{
	job->result.outside = res->outside_scope;
	if (res->unplaced > 0)
		kick_end(job, KG_EXIT_NOPERM, "blocked-by-unreadable",
		         "refused: nothing was kicked: anvil lists a session "
		         "kickgated cannot read, on a process it cannot tell, "
		         "so no process is known to serve only your sessions; "
		         "ask the administrator (kickgated logs the malformed "
		         "line)");
	else if (res->unreadable > 0)
		kick_end(job, KG_EXIT_NOPERM, "blocked-by-unreadable",
		         "refused: nothing was kicked: a matching process also "
		         "serves a session kickgated cannot read, which counts "
		         "as outside your scope; ask the administrator "
		         "(kickgated logs the malformed line)");
	else
		kick_end(
		        job, KG_EXIT_NOPERM, "blocked-by-scope",
		        "refused: nothing was kicked: a matching process also "
		        "serves sessions outside your scope, which you may not "
		        "end");
}

void kg_kick_answer(struct kg_job *job, const struct kg_kick_ops *ops,
                    struct kg_plan *plan, struct kg_plan_result *res)
{
	mark_reply(job);
	switch (res->verdict) {
	case KG_PLAN_NO_MATCH:
		kick_end(job, KG_EXIT_NOMATCH, "no-match", NULL);
		break;
	case KG_PLAN_NEED_FORCE:
		reply_need_force(job, res);
		break;
	case KG_PLAN_BLOCKED:
		reply_blocked(job, res);
		break;
	case KG_PLAN_KICK:
		kick_planned(job, ops, plan, res);
		break;
	}
}

static void *kick_new(const struct kg_job *job)
{
	return kg_plan_new(&job->req, &job->dec.scope);
}

static int kick_finish(void *plan, void *res)
{
	return kg_plan_finish(plan, res);
}

static void kick_reply(struct kg_job *job, void *plan, void *res)
{
	kg_kick_answer(job, &kg_kick_system, plan, res);
}

static void kick_free(void *plan)
{
	kg_plan_free(plan);
}

bool kg_kick_answer_early(struct kg_job *job, const struct kg_kick_ops *ops)
{
	char limit[LIMIT_TEXT_MAX], text[KG_ERRTEXT_MAX + 1];
	struct budget b;

	mark_reply(job);
	if (budget_read(job, ops, &b) < 0)
		return true;
	/* Refused before anvil is asked, so that the refusal is the same
	 * whether or not anything matches. */
	if (b.limited && b.remaining == 0) {
		budget_text(job, &b, limit, sizeof(limit));
		snprintf(text, sizeof(text), "refused: nothing was kicked: %s",
		         limit);
		kick_end(job, KG_EXIT_NOPERM, "over-budget", text);
		return true;
	}
	/* Whether anything matches would answer a glob probe, for free;
	 * a dry run under who = no says only that the policy allows it. */
	if (hidden(job) && (job->req.flags & KG_REQ_DRY_RUN)) {
		kick_end(job, KG_EXIT_OK, "checked", NULL);
		return true;
	}
	return false;
}

void kg_kick_serve(struct kg_job *job)
{
	static const struct kg_dump_op op = {.create = kick_new,
	                                     .add = kg_plan_add,
	                                     .unreadable = kg_plan_unreadable,
	                                     .finish = kick_finish,
	                                     .reply = kick_reply,
	                                     .free = kick_free};
	struct kg_plan_result res;

	if (!kg_kick_answer_early(job, &kg_kick_system))
		kg_job_serve_dump(job, &op, &res);
}
