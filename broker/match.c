/* SPDX-License-Identifier: MIT */
#include "broker/match.h"

#include "proto/addr.h"
#include "proto/glob.h"

bool kg_conn_matches(const struct kg_request *req, const struct kg_conn *c)
{
	if (req->glob_len &&
	    !kg_glob_match(req->glob, req->glob_len, c->user, c->user_len))
		return false;
	return req->net.family == KG_AF_NONE ||
	       kg_net_contains(&req->net, &c->addr);
}

bool kg_conn_in_scope(const struct kg_scope *s, const struct kg_conn *c)
{
	const struct kg_scope_conn sc = {.user = c->user,
	                                 .user_len = c->user_len,
	                                 .addr = &c->addr,
	                                 .fields = c->fields,
	                                 .n_fields = c->n_fields};

	return kg_scope_contains(s, &sc);
}
