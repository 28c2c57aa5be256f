/* SPDX-License-Identifier: MIT */
/* Serving a kick request: plan, limits, target verification, signals,
 * reply and audit. */
#ifndef KG_KICK_H
#define KG_KICK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/job.h"
#include "broker/plan.h"
#include "broker/verify.h"

/* The steps of a kick that act on the system, and the one that can fail
 * after signals went out. kg_kick_serve takes them from kg_kick_system
 * (kg_master_find, kg_verify_signal, kg_plan_restrict); a test gives
 * stand-ins to see what the reply and the audit line say. */
struct kg_kick_ops {
	int (*find_master)(pid_t anvil, pid_t *master, char *err,
	                   size_t errlen);
	int (*verify_signal)(const struct kg_verify_cfg *cfg, pid_t pid);
	int (*narrow)(struct kg_plan *p, const uint32_t *pids, size_t n,
	              struct kg_plan_result *out);
};

extern const struct kg_kick_ops kg_kick_system;

/* Plans from the job's instance's anvil dump and answers. */
void kg_kick_serve(struct kg_job *job);

/* Answers job from a finished plan (res from kg_plan_finish): the
 * limits, verification, the signals, then the reply and the audit line.
 * Every pid signalled is in both, even when a later step fails. */
void kg_kick_answer(struct kg_job *job, const struct kg_kick_ops *ops,
                    struct kg_plan *plan, struct kg_plan_result *res);

#endif
