/* SPDX-License-Identifier: MIT */
/* What the kick planner and the who collector must make of a dump,
 * restated from broker/plan.h and broker/who.h connection by connection:
 * quadratic, with plain lists and no index, and scope and matching taken
 * from tests/reference/match_reference.h. The fuzz harnesses and the unit
 * tests check kg_plan and kg_who against these. Both abort when out of
 * memory. */
#ifndef KG_DUMP_REFERENCE_H
#define KG_DUMP_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/anvil_dump.h"
#include "broker/plan.h"
#include "policy/scope.h"
#include "proto/str.h"
#include "proto/wire.h"

/* A dump line as the planner is given it: a connection, or, with
 * unreadable set, a line that did not parse, of which only conn.pid and
 * conn.refcount are known (a pid of 0 or past INT_MAX: unknown). */
struct plan_reference_line {
	struct kg_conn conn;
	bool unreadable;
};

/* The fields of a kg_plan_result, with the one name list the verdict
 * has: the kicked users for KG_PLAN_KICK, the warned ones for
 * KG_PLAN_NEED_FORCE. Counters other than conns_matched are 0 when
 * nothing matched. */
struct plan_reference {
	enum kg_plan_verdict verdict;
	uint32_t *pids;
	size_t n_pids;
	struct kg_str *names;
	size_t n_names;
	uint32_t conns_matched;
	uint32_t conns_kicked;
	uint32_t outside_scope;
	uint32_t unreadable;
	uint32_t unplaced;
};

/* The plan for lines[0..n). With keep set, the kicked users and
 * connections are those of the processes in keep[0..n_keep) only, as
 * kg_plan_restrict narrows them; the pids stay every one planned. Names
 * point into lines. */
void plan_reference_run(const struct kg_request *req,
                        const struct kg_scope *scope,
                        const struct plan_reference_line *lines, size_t n,
                        const uint32_t *keep, size_t n_keep,
                        struct plan_reference *out);
void plan_reference_free(struct plan_reference *r);

/* A who row: a user's connections of one service on one process from
 * one address, their refcounts summed (at most UINT32_MAX). */
struct who_reference_row {
	struct kg_str user;
	struct kg_str service;
	uint32_t pid;
	struct kg_addr addr;
	uint32_t conns;
};

struct who_reference {
	struct who_reference_row *rows; /* in the listing's order */
	size_t n_rows;
	uint32_t conns; /* at most UINT32_MAX */
	uint32_t pids;
};

/* The listing of conns[0..n): rows ordered by user and service
 * (bytewise, a prefix first), pid, then address (family, then bytes).
 * Strings point into conns. */
void who_reference_run(const struct kg_request *req,
                       const struct kg_scope *scope,
                       const struct kg_conn *conns, size_t n,
                       struct who_reference *out);
void who_reference_free(struct who_reference *r);

#endif
