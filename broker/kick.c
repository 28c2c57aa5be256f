#include "kick.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plan.h"
#include "reply_send.h"
#include "verify.h"

struct refusal {
	uint32_t pid;
	uint8_t reason;
};

/* What happened to the planned processes. */
struct outcome {
	uint32_t *signalled; /* (dry run: passed the checks) */
	size_t n_signalled;
	struct refusal *refused;
	size_t n_refused;
	size_t n_gone;
};

static void send_users(struct kg_job *job, enum kg_rec_type type,
                       const struct kg_str *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kg_rw_user(job->w, type, u[i].s, u[i].len);
}

static void send_outcome(struct kg_job *job, const struct outcome *o)
{
	for (size_t i = 0; i < o->n_signalled; i++)
		kg_rw_pid(job->w, o->signalled[i]);
	for (size_t i = 0; i < o->n_refused; i++)
		kg_rw_refused(job->w, o->refused[i].pid, o->refused[i].reason);
}

/* Checks (dry_run) or checks and signals every planned pid, sorting each
 * into signalled or refused. */
static void run_targets(const struct kg_verify_cfg *vc,
                        const struct kg_plan_result *res, struct outcome *o)
{
	o->n_signalled = o->n_refused = o->n_gone = 0;
	for (size_t i = 0; i < res->n_pids; i++) {
		int r = kg_verify_signal(vc, (pid_t)res->pids[i]);

		if (r == 0) {
			o->signalled[o->n_signalled++] = res->pids[i];
			continue;
		}
		o->refused[o->n_refused++] =
		        (struct refusal){res->pids[i], (uint8_t)r};
		if (r == KG_REFUSE_GONE)
			o->n_gone++;
	}
}

static bool over_limit(struct kg_job *job, const struct kg_plan_result *res,
                       struct kg_reply_end *end)
{
	char text[KG_ERRTEXT_MAX + 1];

	if (job->dec.max_sessions == 0 ||
	    res->conns_kicked <= job->dec.max_sessions)
		return false;
	snprintf(text, sizeof(text),
	         "refused: the kick would disconnect %u connections; the "
	         "rule allows at most %u",
	         res->conns_kicked, job->dec.max_sessions);
	kg_end_set_error(end, text);
	end->status = KG_EXIT_NOPERM;
	kg_job_finish(job, end, "over-limit");
	return true;
}

/* The instance's master, found through anvil. Without it no target can
 * be verified, so the kick is refused as a whole, naming the cause in the
 * reply and in the log rather than blaming each pid. */
static bool find_master(struct kg_job *job, pid_t *master,
                        struct kg_reply_end *end)
{
	const struct kg_instance *in = &job->cfg->instances[job->instance];
	/* Sized so that the reply's text always fits whole. */
	char cause[112], text[KG_ERRTEXT_MAX + 1];

	if (kg_master_find(job->anvil, master, cause, sizeof(cause)) == 0)
		return true;
	kg_log_err("instance %s: cannot verify targets: %s; is Dovecot's "
	           "own anvil listening on %s?",
	           in->name, cause, in->anvil);
	snprintf(text, sizeof(text),
	         "refused: cannot verify Dovecot instance '%s': %s; nothing "
	         "was signalled",
	         in->name, cause);
	end->conns = end->pids = 0;
	job->audit.conns = 0;
	end->status = KG_EXIT_NOPERM;
	kg_end_set_error(end, text);
	kg_job_finish(job, end, "unverified-master");
	return false;
}

/* Users reported kicked are those of the processes really signalled: a
 * process that was already gone kicked nobody. */
static int narrow_to_signalled(struct kg_plan *plan, struct outcome *o,
                               struct kg_plan_result *res)
{
	if (o->n_signalled == res->n_pids)
		return 0;
	return kg_plan_restrict(plan, o->signalled, o->n_signalled, res);
}

/* Every target is verified before any is signalled: one that fails
 * (not a Dovecot mail process) stops the whole kick, as anvil naming a
 * foreign pid means its data cannot be trusted. */
static void execute(struct kg_job *job, struct kg_plan *plan,
                    struct kg_plan_result *res, struct outcome *o,
                    struct kg_reply_end *end)
{
	const char *services[KG_CONF_MAX_SERVICES];
	struct kg_verify_cfg vc = {.services = services,
	                           .n_services = job->cfg->n_services,
	                           .dry_run = true};
	bool dry = job->req.flags & KG_REQ_DRY_RUN;

	if (!find_master(job, &vc.master, end))
		return;
	for (size_t i = 0; i < job->cfg->n_services; i++)
		services[i] = job->cfg->services[i];
	run_targets(&vc, res, o);
	if (o->n_refused > o->n_gone) {
		/* The pids that passed were not signalled either: the reply
		 * and the audit line name none, and count nothing kicked. */
		o->n_signalled = 0;
		end->conns = end->pids = 0;
		job->audit.conns = 0;
		send_outcome(job, o);
		end->status = KG_EXIT_NOPERM;
		kg_end_set_error(end, "refused: a target is not a verified "
		                      "Dovecot mail process; nothing was "
		                      "signalled");
		kg_job_finish(job, end, "refused");
		return;
	}
	if (!dry) {
		vc.dry_run = false;
		run_targets(&vc, res, o);
	}
	if (narrow_to_signalled(plan, o, res) < 0) {
		kg_job_dump_error(job, "");
		return;
	}
	job->audit.pids = o->signalled;
	job->audit.n_pids = o->n_signalled;
	job->audit.users = res->kicked;
	job->audit.n_users = res->n_kicked;
	job->audit.conns = end->conns = res->conns_kicked;
	end->pids = (uint32_t)o->n_signalled;
	send_users(job, KG_REC_KICKED, res->kicked, res->n_kicked);
	send_outcome(job, o);
	end->status = o->n_signalled > 0 ? KG_EXIT_OK : KG_EXIT_NOMATCH;
	kg_job_finish(job, end,
	              o->n_signalled == 0 ? "gone"
	              : dry               ? "dry-run"
	                                  : "kicked");
}

static void kick_planned(struct kg_job *job, struct kg_plan *plan,
                         struct kg_plan_result *res, struct kg_reply_end *end)
{
	struct outcome o = {
	        .signalled = calloc(res->n_pids + 1, sizeof(uint32_t)),
	        .refused = calloc(res->n_pids + 1, sizeof(struct refusal)),
	};

	end->conns = res->conns_kicked;
	end->pids = (uint32_t)res->n_pids;
	job->audit.conns = res->conns_kicked;
	if (o.signalled == NULL || o.refused == NULL)
		kg_job_dump_error(job, "");
	else if (!over_limit(job, res, end))
		execute(job, plan, res, &o, end);
	free(o.signalled);
	free(o.refused);
}

/* Shared processes without -f. A caller whose rule forbids -f must not be
 * told to use it: the reply says why nothing was kicked and that -f is
 * not theirs to give. The exit status stays 1, as for everyone else whose
 * kick needs -f: a script tells the two apart by the error. */
static void reply_need_force(struct kg_job *job,
                             const struct kg_plan_result *res,
                             struct kg_reply_end *end)
{
	char text[KG_ERRTEXT_MAX + 1];

	send_users(job, KG_REC_WARN, res->warn, res->n_warn);
	end->status = KG_EXIT_NEED_FORCE;
	end->flags |= KG_END_NEED_FORCE;
	if (!job->dec.may_force) {
		end->flags |= KG_END_FORCE_DENIED;
		snprintf(text, sizeof(text),
		         "nothing was kicked: the matching processes also "
		         "serve other connections, and your rule '%s' does "
		         "not allow -f",
		         job->dec.rule);
		kg_end_set_error(end, text);
	}
	kg_job_finish(job, end, "need-force");
}

/* A process that also serves sessions outside the scope is never
 * signalled. The caller learns that such sessions exist, as the refusal
 * must say why, but not how many: that is other tenants' business. The
 * count goes to the audit line, for the administrator. */
static void reply_blocked(struct kg_job *job, const struct kg_plan_result *res,
                          struct kg_reply_end *end)
{
	end->status = KG_EXIT_NOPERM;
	kg_end_set_error(end, "refused: nothing was kicked: a matching process "
	                      "also serves sessions outside your scope, "
	                      "which you may not end");
	job->audit.outside = res->outside_scope;
	kg_job_finish(job, end, "blocked-by-scope");
}

static void reply_plan(struct kg_job *job, struct kg_plan *plan,
                       struct kg_plan_result *res)
{
	struct kg_reply_end end = {0};

	if (job->req.flags & KG_REQ_DRY_RUN)
		end.flags |= KG_END_DRY_RUN;
	switch (res->verdict) {
	case KG_PLAN_NO_MATCH:
		end.status = KG_EXIT_NOMATCH;
		kg_job_finish(job, &end, "no-match");
		break;
	case KG_PLAN_NEED_FORCE:
		reply_need_force(job, res, &end);
		break;
	case KG_PLAN_BLOCKED:
		reply_blocked(job, res, &end);
		break;
	case KG_PLAN_KICK:
		kick_planned(job, plan, res, &end);
		break;
	}
}

void kg_kick_serve(struct kg_job *job)
{
	struct kg_plan *plan = kg_plan_new(&job->req, &job->dec.scope);
	struct kg_plan_result res;
	char err[KG_ERRTEXT_MAX + 1];

	if (plan == NULL) {
		kg_job_dump_error(job, "");
		return;
	}
	if (kg_broker_dump(job, kg_plan_add, plan, err, sizeof(err)) < 0 ||
	    kg_plan_finish(plan, &res) < 0)
		kg_job_dump_error(job, err);
	else
		reply_plan(job, plan, &res);
	kg_plan_free(plan);
}
