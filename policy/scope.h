/* SPDX-License-Identifier: MIT */
/* A caller's scope: the user names and client networks it may see and
 * kick. Built by the policy from the rules; root's scope is everything. */
#ifndef KG_SCOPE_H
#define KG_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/addr.h"
#include "proto/str.h"

struct kg_scope {
	bool all_users;             /* no user restriction */
	const struct kg_str *globs; /* normalized globs */
	size_t n_globs;
	bool all_nets; /* no network restriction; also admits no address */
	const struct kg_net *nets;
	size_t n_nets;
};

/* True when a connection of user from addr is inside the scope. A
 * connection without an address is inside only when all_nets is set. */
bool kg_scope_contains(const struct kg_scope *s, const char *user,
                       size_t user_len, const struct kg_addr *addr);

#endif
