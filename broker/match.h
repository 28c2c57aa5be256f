/* SPDX-License-Identifier: MIT */
/* Whether a connection is one a request names: the planner and the who
 * collector share this single definition. */
#ifndef KG_MATCH_H
#define KG_MATCH_H

#include <stdbool.h>

#include "broker/anvil_dump.h"
#include "policy/scope.h"
#include "proto/wire.h"

/* True when c's user matches the request's glob, c's address lies in its
 * network, c's destination in its destination network and c carries its
 * field (name and value), for the parts the request gives. The caller's
 * scope is a separate test (kg_scope_contains). */
bool kg_conn_matches(const struct kg_request *req, const struct kg_conn *c);

/* kg_scope_contains for a connection as anvil's dump gives it. */
bool kg_conn_in_scope(const struct kg_scope *s, const struct kg_conn *c);

#endif
