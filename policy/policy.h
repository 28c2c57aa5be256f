/* SPDX-License-Identifier: MIT */
/* Policy evaluation: which rule, if any, lets a caller use an instance,
 * and with what scope. The rules are described in kickgated.conf(5). */
#ifndef KG_POLICY_H
#define KG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/config.h"
#include "policy/scope.h"

/* Who is asking, as the kernel reports it (SO_PEERCRED, SO_PEERGROUPS). */
struct kg_caller {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
};

/* Pointers refer into the configuration and live as long as it does. */
struct kg_decision {
	bool allowed;
	const char *rule; /* the deciding rule's name, "root", or NULL */
	struct kg_scope scope;
	bool may_force;
	bool may_by_dest; /* may kick by destination (-h) */
	bool may_who;
	uint32_t max_sessions; /* 0: unlimited */
	/* Connections the caller may kick under this rule within an hour;
	 * 0: unlimited. */
	uint32_t max_per_hour;
	size_t rule_index; /* in cfg->rules, when max_per_hour is set */
};

/* Fills *d for caller c asking to use instance index instance. Rules are
 * tried in file order; the first whose principals match c and whose
 * instances include the one asked for decides. Root is allowed everything
 * unless some rule names uid 0. Anything else is denied. */
void kg_policy_decide(const struct kg_config *cfg, const struct kg_caller *c,
                      int instance, struct kg_decision *d);

/* True when kg_policy_decide could allow c anything on some instance:
 * root's blanket permission, or a rule whose principals match c. The
 * supervisor refuses everyone else before a frontend starts. */
bool kg_policy_names(const struct kg_config *cfg, const struct kg_caller *c);

#endif
