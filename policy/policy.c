/* SPDX-License-Identifier: MIT */
/* Policy evaluation: first matching rule wins, default deny. */
#include "policy/policy.h"

#include <string.h>

static bool in_groups(const struct kg_caller *c, uint32_t gid)
{
	if (c->gid == gid)
		return true;
	for (size_t i = 0; i < c->n_groups; i++) {
		if (c->groups[i] == gid)
			return true;
	}
	return false;
}

static bool principal_matches(const struct kg_principal *pr,
                              const struct kg_caller *c)
{
	if (pr->kind == KG_PRINCIPAL_UID)
		return c->uid == pr->id;
	return in_groups(c, pr->id);
}

static bool rule_matches(const struct kg_rule *r, const struct kg_caller *c)
{
	for (size_t i = 0; i < r->n_principals; i++) {
		if (principal_matches(&r->principals[i], c))
			return true;
	}
	return false;
}

static void allow_rule(const struct kg_config *cfg, size_t i,
                       struct kg_decision *d)
{
	const struct kg_rule *r = &cfg->rules[i];

	d->allowed = true;
	d->rule = r->name;
	d->scope = (struct kg_scope){
	        .all_users = r->all_users,
	        .globs = r->globs,
	        .n_globs = r->n_globs,
	        .all_nets = r->all_nets,
	        .nets = r->nets,
	        .n_nets = r->n_nets,
	        .fields = r->fields,
	        .n_fields = r->n_fields,
	};
	d->may_force = r->force;
	d->may_by_dest = r->by_dest;
	d->may_who = r->who;
	d->max_sessions = r->max_sessions;
	d->max_per_hour = r->max_sessions_per_hour;
	d->rule_index = i;
}

/* Root may do everything until a rule names uid 0. */
static bool root_blanket(const struct kg_config *cfg, const struct kg_caller *c)
{
	return c->uid == 0 && !cfg->root_named;
}

static void allow_root(struct kg_decision *d)
{
	d->allowed = true;
	d->rule = "root";
	d->scope.all_users = true;
	d->scope.all_nets = true;
	d->may_force = true;
	d->may_by_dest = true;
	d->may_who = true;
}

void kg_policy_decide(const struct kg_config *cfg, const struct kg_caller *c,
                      int instance, struct kg_decision *d)
{
	memset(d, 0, sizeof(*d));
	if (instance < 0 || (size_t)instance >= cfg->n_instances)
		return;
	if (root_blanket(cfg, c)) {
		allow_root(d);
		return;
	}
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct kg_rule *r = &cfg->rules[i];
		if (rule_matches(r, c) && kg_rule_has_instance(r, instance)) {
			allow_rule(cfg, i, d);
			return;
		}
	}
}

bool kg_policy_names(const struct kg_config *cfg, const struct kg_caller *c)
{
	if (root_blanket(cfg, c))
		return true;
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (rule_matches(&cfg->rules[i], c))
			return true;
	return false;
}
