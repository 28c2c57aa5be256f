/* SPDX-License-Identifier: MIT */
/* The kick planner: from anvil's connections, the request and the caller's
 * scope, decide which processes to signal.
 *
 * A connection matches when its user matches the glob and its address lies
 * in the network (for the parts given). Connections outside the caller's
 * scope never match and are never named in any output.
 *
 * A matched process is one serving at least one matching connection.
 *  - It is blocked by scope when it also serves connections outside the
 *    scope: never signalled, even with force; only counted.
 *  - It is shared when it also serves in-scope connections that do not
 *    match: signalled only with force.
 * The kick is all or nothing: if any matched process is blocked, or shared
 * without force, no process is signalled.
 *
 * A dump line that could not be parsed (kg_plan_unreadable) may be anybody's
 * session, so it counts as outside the scope on the process it names. One
 * whose process is unknown could be on any process: while the dump holds
 * one, no kick can be shown safe and every kick that matches is blocked. */
#ifndef KG_PLAN_H
#define KG_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/anvil_dump.h"
#include "policy/scope.h"
#include "proto/wire.h"

struct kg_plan; /* opaque; holds only in-scope data */

enum kg_plan_verdict {
	KG_PLAN_KICK,       /* signal pids */
	KG_PLAN_NO_MATCH,   /* no in-scope connection matched */
	KG_PLAN_NEED_FORCE, /* shared processes: warn users, signal nothing */
	KG_PLAN_BLOCKED,    /* a matched process serves out-of-scope sessions */
};

struct kg_plan_result {
	enum kg_plan_verdict verdict;
	/* Processes to signal, ascending (KG_PLAN_KICK only). */
	const uint32_t *pids;
	size_t n_pids;
	/* Users on the processes to signal, sorted bytewise, unique. For
	 * KG_PLAN_KICK: every in-scope user on a signalled pid. */
	const struct kg_str *kicked;
	size_t n_kicked;
	/* KG_PLAN_NEED_FORCE: in-scope users of non-matching connections on
	 * shared processes, sorted, unique. */
	const struct kg_str *warn;
	size_t n_warn;
	uint32_t conns_matched; /* matching connections (refcounts summed) */
	uint32_t conns_kicked;  /* connections on the pids to signal */
	uint32_t outside_scope; /* out-of-scope connections on matched pids,
	                           unreadable ones included */
	uint32_t unreadable;    /* unreadable connections on matched pids */
	uint32_t unplaced;      /* unreadable lines whose pid is unknown */
};

/* Returns NULL on allocation failure. The request's op is ignored. */
struct kg_plan *kg_plan_new(const struct kg_request *req,
                            const struct kg_scope *scope);
/* Adds one connection as parsed from the dump; -1 on allocation failure.
 * Usable directly as a kg_conn_fn. */
int kg_plan_add(void *plan, const struct kg_conn *c);
/* Adds a line that could not be parsed; -1 on allocation failure. Usable
 * directly as a kg_unreadable_fn. */
int kg_plan_unreadable(void *plan, uint32_t pid, uint32_t refcount);
/* Computes the decision; result pointers live until kg_plan_free. -1 on
 * allocation failure. */
int kg_plan_finish(struct kg_plan *p, struct kg_plan_result *out);
/* After a KG_PLAN_KICK result: narrows out->kicked and out->conns_kicked
 * to the processes in pids[0..n) (some of out->pids: those really
 * signalled), so no user is reported kicked whose process was not. The
 * pid list itself is left alone. -1 on allocation failure. */
int kg_plan_restrict(struct kg_plan *p, const uint32_t *pids, size_t n,
                     struct kg_plan_result *out);
void kg_plan_free(struct kg_plan *p);

/* Dovecot 2.4 (the dump's rows carry GUIDs): anvil kicks one user in one
 * process at a time, so the planner's "processes" are such units
 * (unitmap.h), and a result's pids are unit numbers. A unit is blocked
 * when it holds a connection outside the scope (or a line that did not
 * parse is on its process), shared when it holds an in-scope connection
 * that does not match: other users of the same process are neither. */
bool kg_plan_by_user(const struct kg_plan *p);

struct kg_plan_unit {
	uint32_t pid;        /* the process */
	struct kg_str user;  /* the user, inside the scope */
	const uint8_t *guid; /* 16 bytes: one of its connections */
};

/* Unit id, one of a KG_PLAN_KICK result's pids. Pointers live until
 * kg_plan_free. */
void kg_plan_unit(struct kg_plan *p, uint32_t id, struct kg_plan_unit *out);

typedef int (*kg_guid_fn)(void *ctx, uint32_t unit, const uint8_t *guid);
/* Calls fn with the GUID of every in-scope connection of the units in
 * ids[0..n) (ascending, as a result's pids are); stops at a non-zero
 * return and returns it. */
int kg_plan_each_guid(const struct kg_plan *p, const uint32_t *ids, size_t n,
                      kg_guid_fn fn, void *ctx);

#endif
