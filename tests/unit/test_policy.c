/* SPDX-License-Identifier: MIT */
/* kg_policy_decide: first matching rule wins, instances filter, default
 * deny, and root's blanket permission until a rule names uid 0; the
 * deciding rule's fields and by_dest go with the decision;
 * kg_policy_names agrees with it over every instance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "policy/config.h"
#include "policy/policy.h"

/* Groups as on this host: daemon is gid 1, nogroup is gid 65534. */
#define GID_DAEMON  1
#define GID_NOGROUP 65534
#define UID_NOBODY  65534

static const char policy_conf[] = "[instance b]\n"
                                  "anvil = /run/dovecot-b/anvil\n"
                                  "[rule daemons]\n"
                                  "principals = group:daemon\n"
                                  "users = *@a.example\n"
                                  "networks = 192.0.2.0/24\n"
                                  "max_sessions = 5\n"
                                  "who = no\n"
                                  "[rule nogroup]\n"
                                  "principals = group:nogroup\n"
                                  "users = *@b.example\n"
                                  "force = yes\n"
                                  "max_sessions_per_hour = 3\n"
                                  "instances = b default\n"
                                  "[rule nobody-b]\n"
                                  "principals = user:nobody uid:4000\n"
                                  "instances = b\n";

static const char root_group_conf[] = "[instance b]\n"
                                      "anvil = /run/b/anvil\n"
                                      "[rule roots]\n"
                                      "principals = group:root\n"
                                      "users = nothing\n"
                                      "who = no\n";

static const char uid_0_conf[] = "[instance b]\nanvil = /run/b/anvil\n"
                                 "[rule r]\nprincipals = uid:0\n"
                                 "users = admin*\n";
static const char user_root_conf[] = "[instance b]\nanvil = /run/b/anvil\n"
                                     "[rule r]\nprincipals = user:root\n"
                                     "users = admin*\n";

static const char restricted_root_conf[] = "[rule by-group]\n"
                                           "principals = gid:0\n"
                                           "users = ops*\n"
                                           "[rule by-uid]\n"
                                           "principals = uid:0\n";

/* A tenant scoped by an alternative username alone, allowed -h. */
static const char fields_conf[] = "[rule tenant-a]\n"
                                  "principals = group:daemon\n"
                                  "fields = user_tenant=tenant-a.example "
                                  "user_tenant=a.example\n"
                                  "by_dest = yes\n"
                                  "[rule nogroup]\n"
                                  "principals = group:nogroup\n";

static const gid_t nogroup[] = {GID_NOGROUP};
static const gid_t other_and_daemon[] = {100, GID_DAEMON};
static const gid_t others[] = {100, 101};

/* A connection of user from an IPv4 address, and whether the decided
 * scope holds it. */
struct probe {
	const char *user; /* NULL ends the list */
	uint8_t ip[4];
	bool inside;
};

/* Each conf and each instance asked for give the same decision. */
struct decision_case {
	const char *name;
	const char *confs[3]; /* NULL ends the list */
	struct kg_caller caller;
	int instances[2];
	size_t n_instances;
	const char *rule; /* NULL: denied, and granted nothing */
	bool may_force;
	bool may_by_dest;
	bool may_who;
	uint32_t max_sessions;
	uint32_t max_per_hour;
	size_t rule_index; /* checked when max_per_hour is set */
	bool all_users;
	bool all_nets;
	struct probe probes[4];
};

static const struct decision_case cases[] = {
        {
                .name = "first matching rule decides",
                .confs = {policy_conf},
                .caller = {5000, GID_DAEMON, nogroup, 1},
                .instances = {0},
                .n_instances = 1,
                .rule = "daemons",
                .max_sessions = 5,
                .probes = {{"x@a.example", {192, 0, 2, 9}, true},
                           {"x@b.example", {192, 0, 2, 9}, false},
                           {"x@a.example", {198, 51, 100, 1}, false}},
        },
        {
                .name = "supplementary group matches",
                .confs = {policy_conf},
                .caller = {5000, 5000, other_and_daemon, 2},
                .instances = {0},
                .n_instances = 1,
                .rule = "daemons",
                .max_sessions = 5,
        },
        {
                .name = "the first rule does not list instance b, so the "
                        "next one decides",
                .confs = {policy_conf},
                .caller = {5000, GID_DAEMON, nogroup, 1},
                .instances = {1},
                .n_instances = 1,
                .rule = "nogroup",
                .may_force = true,
                .max_per_hour = 3,
                .rule_index = 1,
                .may_who = true,
                .all_nets = true,
                .probes = {{"y@b.example", {198, 51, 100, 1}, true},
                           {"y@a.example", {198, 51, 100, 1}, false}},
        },
        {
                .name = "user principal matches the uid",
                .confs = {policy_conf},
                .caller = {UID_NOBODY, 4242, NULL, 0},
                .instances = {1},
                .n_instances = 1,
                .rule = "nobody-b",
                .may_who = true,
                .all_users = true,
                .all_nets = true,
        },
        {
                .name = "user principal only on the rule's instances",
                .confs = {policy_conf},
                .caller = {UID_NOBODY, 4242, NULL, 0},
                .instances = {0},
                .n_instances = 1,
        },
        {
                .name = "caller matching no rule is denied",
                .confs = {policy_conf},
                .caller = {5000, 5000, others, 2},
                .instances = {0, 1},
                .n_instances = 2,
        },
        {
                .name = "unknown instance is denied, even to root",
                .confs = {policy_conf},
                .caller = {0, 0, NULL, 0},
                .instances = {2, -1},
                .n_instances = 2,
        },
        {
                .name = "unknown instance is denied to a caller with a rule",
                .confs = {policy_conf},
                .caller = {4000, 4000, NULL, 0},
                .instances = {64},
                .n_instances = 1,
        },
        {
                .name = "root may do everything while no rule names uid 0 "
                        "(a group:root rule does not count)",
                .confs = {root_group_conf, fields_conf},
                .caller = {0, 0, NULL, 0},
                .instances = {0},
                .n_instances = 1,
                .rule = "root",
                .may_force = true,
                .may_by_dest = true,
                .may_who = true,
                .all_users = true,
                .all_nets = true,
        },
        {
                .name = "a fields rule: users and networks stay any",
                .confs = {fields_conf},
                .caller = {5000, GID_DAEMON, NULL, 0},
                .instances = {0},
                .n_instances = 1,
                .rule = "tenant-a",
                .may_by_dest = true,
                .may_who = true,
                .all_users = true,
                .all_nets = true,
        },
        {
                .name = "by_dest is the deciding rule's alone",
                .confs = {fields_conf},
                .caller = {5000, GID_NOGROUP, NULL, 0},
                .instances = {0},
                .n_instances = 1,
                .rule = "nogroup",
                .may_who = true,
                .all_users = true,
                .all_nets = true,
        },
        {
                .name = "a rule naming uid 0 makes root an ordinary caller",
                .confs = {uid_0_conf, user_root_conf},
                .caller = {0, 0, NULL, 0},
                .instances = {0},
                .n_instances = 1,
                .rule = "r",
                .may_who = true,
                .all_nets = true,
                .probes = {{"admin1", {10, 0, 0, 1}, true},
                           {"user1", {10, 0, 0, 1}, false}},
        },
        {
                .name = "root named by a rule gets no other instance",
                .confs = {uid_0_conf, user_root_conf},
                .caller = {0, 0, NULL, 0},
                .instances = {1},
                .n_instances = 1,
        },
        {
                .name = "once uid 0 is named, root reaches other rules like "
                        "anyone, here through its primary group",
                .confs = {restricted_root_conf},
                .caller = {0, 0, NULL, 0},
                .instances = {0},
                .n_instances = 1,
                .rule = "by-group",
                .may_who = true,
                .all_nets = true,
                .probes = {{"ops1", {10, 0, 0, 1}, true},
                           {"admin1", {10, 0, 0, 1}, false}},
        },
};

static void load(const char *text, struct kg_config *cfg)
{
	assert_int_equal(
	        kg_config_parse_buf("t.conf", text, strlen(text), cfg, stderr),
	        0);
}

static bool in_scope(const struct kg_decision *d, const struct probe *p)
{
	struct kg_addr addr;

	kg_addr_set(&addr, KG_AF_INET, p->ip);

	const struct kg_scope_conn c = {
	        .user = p->user, .user_len = strlen(p->user), .addr = &addr};

	return kg_scope_contains(&d->scope, &c);
}

static void check_decision(const struct decision_case *tc,
                           const struct kg_config *cfg, int instance)
{
	struct kg_decision d;

	kg_policy_decide(cfg, &tc->caller, instance, &d);
	assert_int_equal(d.allowed, tc->rule != NULL);
	if (tc->rule)
		assert_string_equal(d.rule, tc->rule);
	else
		assert_null(d.rule);
	assert_int_equal(d.may_force, tc->may_force);
	assert_int_equal(d.may_by_dest, tc->may_by_dest);
	assert_int_equal(d.may_who, tc->may_who);
	assert_int_equal(d.max_sessions, tc->max_sessions);
	assert_int_equal(d.max_per_hour, tc->max_per_hour);
	if (tc->max_per_hour > 0)
		assert_int_equal(d.rule_index, tc->rule_index);
	assert_int_equal(d.scope.all_users, tc->all_users);
	assert_int_equal(d.scope.all_nets, tc->all_nets);
	if (!tc->rule) {
		assert_int_equal(d.scope.n_globs, 0);
		assert_int_equal(d.scope.n_nets, 0);
		assert_int_equal(d.scope.n_fields, 0);
	}
	for (const struct probe *p = tc->probes; p->user; p++)
		assert_int_equal(in_scope(&d, p), p->inside);
}

/* kg_policy_names says whether any instance would allow the caller. */
static void check_named(const struct decision_case *tc,
                        const struct kg_config *cfg)
{
	struct kg_decision d;
	bool any = false;

	for (size_t i = 0; i < cfg->n_instances; i++) {
		kg_policy_decide(cfg, &tc->caller, (int)i, &d);
		any = any || d.allowed;
	}
	assert_int_equal(kg_policy_names(cfg, &tc->caller), any);
}

static void check_case(const struct decision_case *tc)
{
	struct kg_config cfg;

	print_message("case: %s\n", tc->name);
	for (const char *const *conf = tc->confs; *conf; conf++) {
		load(*conf, &cfg);
		for (size_t i = 0; i < tc->n_instances; i++)
			check_decision(tc, &cfg, tc->instances[i]);
		check_named(tc, &cfg);
		kg_config_free(&cfg);
	}
}

static void test_decision_for_each_caller_and_instance(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

static bool in_fields_scope(const struct kg_decision *d,
                            const struct kg_field *fields, size_t n)
{
	struct kg_addr addr;
	const struct kg_scope_conn c = {.user = "anyone",
	                                .user_len = 6,
	                                .addr = &addr,
	                                .fields = fields,
	                                .n_fields = n};

	kg_addr_set(&addr, KG_AF_NONE, NULL);
	return kg_scope_contains(&d->scope, &c);
}

/* The deciding rule's fields are the scope's, whoever the user is; root
 * gets none, a rule without fields none. */
static void test_scope_carries_the_rules_fields(void **state)
{
	static const struct kg_caller daemon = {5000, GID_DAEMON, NULL, 0};
	static const struct kg_caller nogroup_caller = {5000, GID_NOGROUP, NULL,
	                                                0};
	static const struct kg_caller root = {0, 0, NULL, 0};
	const struct kg_field a = {"user_tenant", 11, "a.example", 9};
	const struct kg_field b = {"user_tenant", 11, "b.example", 9};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	load(fields_conf, &cfg);
	kg_policy_decide(&cfg, &daemon, 0, &d);
	assert_int_equal(d.scope.n_fields, 2);
	assert_ptr_equal(d.scope.fields, cfg.rules[0].fields);
	assert_true(in_fields_scope(&d, &a, 1));
	assert_false(in_fields_scope(&d, &b, 1));
	assert_false(in_fields_scope(&d, NULL, 0));
	assert_false(kg_scope_is_all(&d.scope));
	kg_policy_decide(&cfg, &nogroup_caller, 0, &d);
	assert_int_equal(d.scope.n_fields, 0);
	assert_true(in_fields_scope(&d, NULL, 0));
	kg_policy_decide(&cfg, &root, 0, &d);
	assert_int_equal(d.scope.n_fields, 0);
	assert_true(kg_scope_is_all(&d.scope));
	kg_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_decision_for_each_caller_and_instance),
	        cmocka_unit_test(test_scope_carries_the_rules_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
