/* SPDX-License-Identifier: MIT */
/* Whether a connection lies inside a caller's scope. */
#include "policy/scope.h"

#include <string.h>

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

static bool field_is(const struct kg_field *a, const struct kg_field *b)
{
	return a->name_len == b->name_len && a->value_len == b->value_len &&
	       memcmp(a->name, b->name, a->name_len) == 0 &&
	       memcmp(a->value, b->value, a->value_len) == 0;
}

bool kg_field_present(const struct kg_field *want, const struct kg_field *have,
                      size_t n_have)
{
	for (size_t i = 0; i < n_have; i++) {
		if (field_is(want, &have[i]))
			return true;
	}
	return false;
}

static bool fields_in_scope(const struct kg_scope *s,
                            const struct kg_scope_conn *c)
{
	if (s->n_fields == 0)
		return true;
	for (size_t i = 0; i < s->n_fields; i++) {
		if (kg_field_present(&s->fields[i], c->fields, c->n_fields))
			return true;
	}
	return false;
}

bool kg_scope_is_all(const struct kg_scope *s)
{
	return s->all_users && s->all_nets && s->n_fields == 0;
}

bool kg_scope_contains(const struct kg_scope *s, const struct kg_scope_conn *c)
{
	return user_in_scope(s, c->user, c->user_len) &&
	       addr_in_scope(s, c->addr) && fields_in_scope(s, c);
}
