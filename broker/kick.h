/* SPDX-License-Identifier: MIT */
/* Serving a kick request: plan, limits, target verification, signals,
 * reply and audit. */
#ifndef KG_KICK_H
#define KG_KICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/budget.h"
#include "broker/job.h"
#include "broker/kick_anvil.h"
#include "broker/plan.h"
#include "broker/verify.h"

/* The steps of a kick that act on the system, the one that can fail
 * after signals went out, and the clock and ledger of the hourly budget.
 * kg_kick_serve takes them from kg_kick_system (kg_master_find,
 * kg_verify_signal, kg_plan_restrict, kg_now_ms, the broker's ledger); a
 * test gives stand-ins to see what the reply and the audit line say. */
struct kg_kick_ops {
	int (*find_master)(pid_t anvil, pid_t *master, char *err,
	                   size_t errlen);
	int (*verify_signal)(const struct kg_verify_cfg *cfg, pid_t pid);
	int (*narrow)(struct kg_plan *p, const uint32_t *pids, size_t n,
	              struct kg_plan_result *out);
	int64_t (*now_ms)(void);
	struct kg_budget *budget;
	/* Dovecot 2.4, where anvil kicks: kg_anvil_system. */
	const struct kg_anvil_ops *anvil;
};

extern const struct kg_kick_ops kg_kick_system;

/* Plans from the job's instance's anvil dump and answers. */
void kg_kick_serve(struct kg_job *job);

/* Answers, before anvil is asked, the kicks whose answer must not depend
 * on the sessions: one when the caller's hourly budget is used up, and a
 * dry run under a rule that hides sessions (who = no), which only the
 * policy answers. Returns true when it answered. */
bool kg_kick_answer_early(struct kg_job *job, const struct kg_kick_ops *ops);

/* Answers job from a finished plan (res from kg_plan_finish): the
 * limits, verification, the signals, then the reply and the audit line.
 * Every pid signalled is in both, even when a later step fails. */
void kg_kick_answer(struct kg_job *job, const struct kg_kick_ops *ops,
                    struct kg_plan *plan, struct kg_plan_result *res);

#endif
