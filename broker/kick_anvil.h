/* SPDX-License-Identifier: MIT */
/* A kick that anvil carries out (Dovecot 2.4): kickgated plans it from
 * the dump as for 2.3, with one user in one process as the unit
 * (plan.h), then asks anvil to kick each unit, and looks at new dumps
 * until the planned connections are gone or kick_confirm_ms has passed.
 * What it reports is what those dumps show, not anvil's counts, which
 * are 0 for shared processes whatever anvil did. No signal is sent by
 * kickgated, so no target needs verifying. */
#ifndef KG_KICK_ANVIL_H
#define KG_KICK_ANVIL_H

#include <stddef.h>
#include <stdint.h>

#include "broker/anvil_client.h"
#include "broker/job.h"
#include "broker/plan.h"

/* The steps that reach anvil, so that a test can stand in for them. */
struct kg_anvil_ops {
	/* Asks anvil to kick k[0..n); returns how many were answered, -1
	 * with err set when the exchange failed before the first. */
	int (*kick)(struct kg_job *job, const struct kg_anvil_kick *k, size_t n,
	            char *err, size_t errlen);
	/* A new dump into sink: kg_job_dump. */
	int (*redump)(struct kg_job *job, const struct kg_dump_sink *sink,
	              char *err, size_t errlen);
	/* Waits ms between looks. */
	void (*pause)(int ms);
	int64_t (*now_ms)(void);
};

extern const struct kg_anvil_ops kg_anvil_system;

struct kg_anvil_outcome {
	uint32_t *pids; /* processes asked about, ascending, unique */
	size_t n_pids;
	struct kg_str *kicked; /* users with a planned connection gone */
	size_t n_kicked;
	struct kg_str *remained; /* users with one still listed */
	size_t n_remained;
	uint32_t planned;             /* connections the kick was to end */
	uint32_t gone;                /* of those, no longer listed */
	char err[KG_ERRTEXT_MAX + 1]; /* what went wrong, or "" */
};

/* Carries out (or, dry run, only lists) res, a KG_PLAN_KICK result of a
 * by-user plan. Returns -1 when out of memory before anything was asked
 * of anvil; otherwise 0, with out filled (free with
 * kg_anvil_outcome_free). */
int kg_kick_by_anvil(struct kg_job *job, const struct kg_anvil_ops *ops,
                     struct kg_plan *plan, const struct kg_plan_result *res,
                     struct kg_anvil_outcome *out);
void kg_anvil_outcome_free(struct kg_anvil_outcome *out);

#endif
