/* SPDX-License-Identifier: MIT */
/* Which connections a caller's scope holds and a request names, restated
 * from policy/scope.h and broker/match.h on the reference glob and network
 * matchers: the planner and who references and the tests build on it
 * instead of kg_scope_contains and kg_conn_matches. */
#ifndef KG_MATCH_REFERENCE_H
#define KG_MATCH_REFERENCE_H

#include <stdbool.h>

#include "broker/anvil_dump.h"
#include "policy/scope.h"
#include "proto/wire.h"

/* Inside the scope: the user matches one of its globs (or it has no user
 * restriction) and the address lies in one of its networks (or it has no
 * network restriction: then even no address is inside). */
bool match_reference_in_scope(const struct kg_scope *s,
                              const struct kg_conn *c);

/* Named by the request: the user matches its glob and the address lies
 * in its network, for each of the two the request gives. */
bool match_reference_matches(const struct kg_request *r,
                             const struct kg_conn *c);

#endif
