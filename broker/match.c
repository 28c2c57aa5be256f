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
