/* SPDX-License-Identifier: MIT */
/* Whether a connection lies inside a caller's scope. */
#include "policy/scope.h"

#include "proto/glob.h"

static bool user_in_scope(const struct kg_scope *s, const char *user,
                          size_t user_len)
{
	if (s->all_users)
		return true;
	for (size_t i = 0; i < s->n_globs; i++) {
		if (kg_glob_match(s->globs[i].s, s->globs[i].len, user,
		                  user_len))
			return true;
	}
	return false;
}

static bool addr_in_scope(const struct kg_scope *s, const struct kg_addr *a)
{
	if (s->all_nets)
		return true;
	for (size_t i = 0; i < s->n_nets; i++) {
		if (kg_net_contains(&s->nets[i], a))
			return true;
	}
	return false;
}

bool kg_scope_contains(const struct kg_scope *s, const char *user,
                       size_t user_len, const struct kg_addr *addr)
{
	return user_in_scope(s, user, user_len) && addr_in_scope(s, addr);
}
