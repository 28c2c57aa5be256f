/* SPDX-License-Identifier: MIT */
#include "broker/match.h"

#include "proto/addr.h"
#include "proto/glob.h"

/* A connection without fields (Dovecot 2.3) has none to match. */
static bool field_matches(const struct kg_request *req, const struct kg_conn *c)
{
	const struct kg_field want = {.name = req->field_name,
	                              .name_len = req->field_name_len,
	                              .value = req->field_value,
	                              .value_len = req->field_value_len};

	return req->field_name_len == 0 ||
	       kg_field_present(&want, c->fields, c->n_fields);
}

bool kg_conn_matches(const struct kg_request *req, const struct kg_conn *c)
{
	if (req->glob_len &&
	    !kg_glob_match(req->glob, req->glob_len, c->user, c->user_len))
		return false;
	if (req->net.family != KG_AF_NONE &&
	    !kg_net_contains(&req->net, &c->addr))
		return false;
	/* A connection that is not proxied has no destination and so lies
	 * in no destination network. */
	if (req->dest.family != KG_AF_NONE &&
	    !kg_net_contains(&req->dest, &c->dest))
		return false;
	return field_matches(req, c);
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
