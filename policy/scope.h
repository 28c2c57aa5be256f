/* SPDX-License-Identifier: MIT */
/* A caller's scope: the user names, client networks and alternative
 * usernames it may see and kick. Built by the policy from the rules;
 * root's scope is everything. */
#ifndef KG_SCOPE_H
#define KG_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/addr.h"
#include "proto/str.h"
#include "proto/wire.h"

struct kg_scope {
	bool all_users;             /* no user restriction */
	const struct kg_str *globs; /* normalized globs */
	size_t n_globs;
	bool all_nets; /* no network restriction; also admits no address */
	const struct kg_net *nets;
	size_t n_nets;
	/* Alternative usernames, one of which a connection must carry;
	 * none: no condition. A connection without fields (Dovecot 2.3)
	 * meets no condition. */
	const struct kg_field *fields;
	size_t n_fields;
};

/* What the scope looks at in a connection. */
struct kg_scope_conn {
	const char *user;
	size_t user_len;
	const struct kg_addr *addr;
	const struct kg_field *fields;
	size_t n_fields;
};

/* True when have[0..n_have) holds want (the same name and value). */
bool kg_field_present(const struct kg_field *want, const struct kg_field *have,
                      size_t n_have);

/* True when the scope holds every connection: users, networks and fields
 * unrestricted. */
bool kg_scope_is_all(const struct kg_scope *s);

/* True when the connection is inside the scope. A connection without an
 * address is inside only when all_nets is set. */
bool kg_scope_contains(const struct kg_scope *s, const struct kg_scope_conn *c);

#endif
