/* kg_policy_decide: first matching rule wins, instances filter, default
 * deny, and root's blanket permission until a rule names uid 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "policy.h"

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
                                  "instances = b default\n"
                                  "[rule nobody-b]\n"
                                  "principals = user:nobody uid:4000\n"
                                  "instances = b\n";

static void load(const char *text, struct kg_config *cfg)
{
	assert_int_equal(
	        kg_config_parse_buf("t.conf", text, strlen(text), cfg, stderr),
	        0);
}

static void decide(const char *text, struct kg_caller c, int instance,
                   struct kg_decision *d, struct kg_config *cfg)
{
	load(text, cfg);
	kg_policy_decide(cfg, &c, instance, d);
}

static bool in_scope(const struct kg_decision *d, const char *user, uint8_t a,
                     uint8_t b, uint8_t c, uint8_t e)
{
	const uint8_t bytes[4] = {a, b, c, e};
	struct kg_addr addr;

	kg_addr_set(&addr, KG_AF_INET, bytes);
	return kg_scope_contains(&d->scope, user, strlen(user), &addr);
}

static void test_first_matching_rule_decides(void **state)
{
	const gid_t groups[] = {GID_NOGROUP};
	const struct kg_caller c = {5000, GID_DAEMON, groups, 1};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	decide(policy_conf, c, 0, &d, &cfg);
	assert_true(d.allowed);
	assert_string_equal(d.rule, "daemons");
	assert_false(d.may_force);
	assert_false(d.may_who);
	assert_int_equal(d.max_sessions, 5);
	assert_false(d.scope.all_users);
	assert_false(d.scope.all_nets);
	assert_true(in_scope(&d, "x@a.example", 192, 0, 2, 9));
	assert_false(in_scope(&d, "x@b.example", 192, 0, 2, 9));
	assert_false(in_scope(&d, "x@a.example", 198, 51, 100, 1));
	kg_config_free(&cfg);
}

static void test_supplementary_group_matches(void **state)
{
	const gid_t groups[] = {100, GID_DAEMON};
	const struct kg_caller c = {5000, 5000, groups, 2};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	decide(policy_conf, c, 0, &d, &cfg);
	assert_true(d.allowed);
	assert_string_equal(d.rule, "daemons");
	kg_config_free(&cfg);
}

/* The first rule does not list instance b, so the next one decides. */
static void test_instances_filter_rules(void **state)
{
	const gid_t groups[] = {GID_NOGROUP};
	const struct kg_caller c = {5000, GID_DAEMON, groups, 1};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	decide(policy_conf, c, 1, &d, &cfg);
	assert_true(d.allowed);
	assert_string_equal(d.rule, "nogroup");
	assert_true(d.may_force);
	assert_true(d.may_who);
	assert_int_equal(d.max_sessions, 0);
	assert_true(in_scope(&d, "y@b.example", 198, 51, 100, 1));
	assert_false(in_scope(&d, "y@a.example", 198, 51, 100, 1));
	kg_config_free(&cfg);
}

static void test_user_principal_matches_uid(void **state)
{
	const struct kg_caller c = {UID_NOBODY, 4242, NULL, 0};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	decide(policy_conf, c, 1, &d, &cfg);
	assert_true(d.allowed);
	assert_string_equal(d.rule, "nobody-b");
	assert_true(d.scope.all_users);
	assert_true(d.scope.all_nets);
	kg_policy_decide(&cfg, &c, 0, &d);
	assert_false(d.allowed);
	kg_config_free(&cfg);
}

static void test_caller_matching_no_rule_is_denied(void **state)
{
	const gid_t groups[] = {100, 101};
	const struct kg_caller c = {5000, 5000, groups, 2};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	for (int i = 0; i < 2; i++) {
		decide(policy_conf, c, i, &d, &cfg);
		assert_false(d.allowed);
		assert_null(d.rule);
		assert_false(d.may_force);
		assert_false(d.may_who);
		assert_false(d.scope.all_users);
		assert_false(d.scope.all_nets);
		assert_int_equal(d.scope.n_globs, 0);
		assert_int_equal(d.scope.n_nets, 0);
		kg_config_free(&cfg);
	}
}

static void test_unknown_instance_is_denied(void **state)
{
	const struct kg_caller root = {0, 0, NULL, 0};
	const struct kg_caller c = {4000, 4000, NULL, 0};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	load(policy_conf, &cfg);
	kg_policy_decide(&cfg, &root, 2, &d);
	assert_false(d.allowed);
	kg_policy_decide(&cfg, &root, -1, &d);
	assert_false(d.allowed);
	kg_policy_decide(&cfg, &c, 64, &d);
	assert_false(d.allowed);
	kg_config_free(&cfg);
}

/* No rule names uid 0 (a group:root rule does not count): root may do
 * everything on every instance. */
static void test_root_without_uid_0_rule_is_allowed_everything(void **state)
{
	static const char conf[] = "[instance b]\n"
	                           "anvil = /run/b/anvil\n"
	                           "[rule roots]\n"
	                           "principals = group:root\n"
	                           "users = nothing\n"
	                           "who = no\n";
	const struct kg_caller root = {0, 0, NULL, 0};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	load(conf, &cfg);
	for (int i = 0; i < 2; i++) {
		kg_policy_decide(&cfg, &root, i, &d);
		assert_true(d.allowed);
		assert_string_equal(d.rule, "root");
		assert_true(d.scope.all_users);
		assert_true(d.scope.all_nets);
		assert_true(d.may_force);
		assert_true(d.may_who);
		assert_int_equal(d.max_sessions, 0);
	}
	kg_config_free(&cfg);
}

/* A rule naming uid 0 makes root an ordinary caller. */
static void test_root_with_uid_0_rule_is_ordinary(void **state)
{
	static const char *const confs[] = {
	        "[instance b]\nanvil = /run/b/anvil\n"
	        "[rule r]\nprincipals = uid:0\nusers = admin*\n",
	        "[instance b]\nanvil = /run/b/anvil\n"
	        "[rule r]\nprincipals = user:root\nusers = admin*\n",
	};
	const struct kg_caller root = {0, 0, NULL, 0};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		load(confs[i], &cfg);
		kg_policy_decide(&cfg, &root, 0, &d);
		assert_true(d.allowed);
		assert_string_equal(d.rule, "r");
		assert_false(d.may_force);
		assert_true(in_scope(&d, "admin1", 10, 0, 0, 1));
		assert_false(in_scope(&d, "user1", 10, 0, 0, 1));
		kg_policy_decide(&cfg, &root, 1, &d);
		assert_false(d.allowed);
		kg_config_free(&cfg);
	}
}

/* Once uid 0 is named, root reaches other rules only like anyone else,
 * here through its primary group. */
static void test_restricted_root_matches_group_rules(void **state)
{
	static const char conf[] = "[rule by-group]\n"
	                           "principals = gid:0\n"
	                           "users = ops*\n"
	                           "[rule by-uid]\n"
	                           "principals = uid:0\n";
	const struct kg_caller root = {0, 0, NULL, 0};
	struct kg_config cfg;
	struct kg_decision d;

	(void)state;
	decide(conf, root, 0, &d, &cfg);
	assert_true(d.allowed);
	assert_string_equal(d.rule, "by-group");
	assert_false(d.scope.all_users);
	kg_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_first_matching_rule_decides),
	        cmocka_unit_test(test_supplementary_group_matches),
	        cmocka_unit_test(test_instances_filter_rules),
	        cmocka_unit_test(test_user_principal_matches_uid),
	        cmocka_unit_test(test_caller_matching_no_rule_is_denied),
	        cmocka_unit_test(test_unknown_instance_is_denied),
	        cmocka_unit_test(
	                test_root_without_uid_0_rule_is_allowed_everything),
	        cmocka_unit_test(test_root_with_uid_0_rule_is_ordinary),
	        cmocka_unit_test(test_restricted_root_matches_group_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
