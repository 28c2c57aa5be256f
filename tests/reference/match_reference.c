/* SPDX-License-Identifier: MIT */
#include "tests/reference/match_reference.h"

#include "tests/reference/glob_reference.h"
#include "tests/reference/net_reference.h"

static bool some_glob(const struct kg_scope *s, const struct kg_conn *c)
{
	for (size_t i = 0; i < s->n_globs; i++)
		if (glob_reference_match(s->globs[i].s, s->globs[i].len,
		                         c->user, c->user_len))
			return true;
	return false;
}

static bool some_net(const struct kg_scope *s, const struct kg_conn *c)
{
	for (size_t i = 0; i < s->n_nets; i++)
		if (net_reference_contains(&s->nets[i], &c->addr))
			return true;
	return false;
}

bool match_reference_in_scope(const struct kg_scope *s, const struct kg_conn *c)
{
	return (s->all_users || some_glob(s, c)) &&
	       (s->all_nets || some_net(s, c));
}

bool match_reference_matches(const struct kg_request *r,
                             const struct kg_conn *c)
{
	bool user =
	        r->glob_len == 0 || glob_reference_match(r->glob, r->glob_len,
	                                                 c->user, c->user_len);
	bool addr = r->net.family == KG_AF_NONE ||
	            net_reference_contains(&r->net, &c->addr);

	return user && addr;
}
