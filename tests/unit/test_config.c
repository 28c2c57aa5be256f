/* SPDX-License-Identifier: MIT */
/* kickgated.conf parsing: defaults, every key, every error class. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kg_config.h"
#include "policy/config.h"
#include "proto/globparse.h"
#include "proto/netparse.h"

#define RULE "[rule r]\nprincipals = uid:1\n"

/* Parses text as "t.conf"; *errs gets everything written to the error
 * stream (free it). */
static int parse(const char *text, size_t len, struct kg_config *cfg,
                 char **errs)
{
	size_t errs_len;
	FILE *f = open_memstream(errs, &errs_len);
	int n;

	assert_non_null(f);
	n = kg_config_parse_buf("t.conf", text, len, cfg, f);
	assert_int_equal(fclose(f), 0);
	return n;
}

/* Parses text that must be free of errors. */
static void parse_ok(const char *text, struct kg_config *cfg)
{
	char *errs;
	int n = parse(text, strlen(text), cfg, &errs);

	assert_string_equal(errs, "");
	assert_int_equal(n, 0);
	free(errs);
}

/* Parses text[0..len) that must give exactly the error lines in want. */
static void parse_fails_len(const char *text, size_t len, const char *want)
{
	struct kg_config cfg;
	char *errs;
	int n = parse(text, len, &cfg, &errs);
	int lines = 0;

	for (const char *c = want; *c; c++)
		lines += *c == '\n';
	assert_string_equal(errs, want);
	assert_int_equal(n, lines);
	assert_true(n > 0);
	free(errs);
	kg_config_free(&cfg);
}

static void parse_fails(const char *text, const char *want)
{
	parse_fails_len(text, strlen(text), want);
}

static void test_empty_file_gives_defaults(void **state)
{
	struct kg_config cfg;

	(void)state;
	parse_ok("", &cfg);
	assert_string_equal(cfg.listen, "/run/kickgate/kickgate.sock");
	assert_int_equal(cfg.listen_mode, 0666);
	assert_string_equal(cfg.frontend_user, "_kickgate");
	assert_int_equal(cfg.frontend_line, 0);
	assert_int_equal(cfg.frontend_uid, 0);
	assert_int_equal(cfg.broker.uid, 0);
	assert_int_equal(cfg.broker.n_groups, 0);
	assert_int_equal(cfg.n_services, 4);
	assert_string_equal(cfg.services[0], "imap");
	assert_string_equal(cfg.services[1], "pop3");
	assert_string_equal(cfg.services[2], "submission");
	assert_string_equal(cfg.services[3], "managesieve");
	assert_int_equal(cfg.client_timeout_ms, 5000);
	assert_int_equal(cfg.anvil_timeout_ms, 30000);
	assert_int_equal(cfg.kick_confirm_ms, 2000);
	assert_int_equal(cfg.max_conns_per_uid, 16);
	assert_int_equal(cfg.audit, KG_AUDIT_SYSLOG);
	assert_int_equal(cfg.n_instances, 1);
	assert_string_equal(cfg.instances[0].name, "default");
	assert_string_equal(cfg.instances[0].anvil, "/run/dovecot/anvil");
	assert_int_equal(cfg.instances[0].protocol, KG_PROTO_AUTO);
	assert_false(cfg.anvil_kicks_only);
	assert_int_equal(cfg.n_rules, 0);
	assert_false(cfg.root_named);
	kg_config_free(&cfg);
}

static void test_broker_keys_are_parsed(void **state)
{
	struct kg_config cfg;

	(void)state;
	parse_ok("[broker]\n"
	         "listen = /run/kg/s.sock\n"
	         "listen_mode = 0660\n"
	         "anvil = /run/dovecot-a/anvil\n"
	         "frontend_user = daemon\n"
	         "broker_user = bin\n"
	         "services = imap lmtp-x pop3\n"
	         "client_timeout_ms = 1\n"
	         "anvil_timeout_ms = 600000\n"
	         "kick_confirm_ms = 60000\n"
	         "max_connections_per_uid = 4096\n"
	         "audit = stderr\n"
	         "protocol = 2.3\n",
	         &cfg);
	assert_string_equal(cfg.listen, "/run/kg/s.sock");
	assert_int_equal(cfg.listen_mode, 0660);
	assert_string_equal(cfg.instances[0].anvil, "/run/dovecot-a/anvil");
	assert_string_equal(cfg.frontend_user, "daemon");
	assert_int_equal(cfg.frontend_line, 5);
	/* Debian's bin: uid 2, gid 2, no other group. */
	assert_int_equal(cfg.broker.uid, 2);
	assert_int_equal(cfg.broker.gid, 2);
	assert_int_equal(cfg.broker.n_groups, 1);
	assert_int_equal(cfg.broker.groups[0], 2);
	assert_int_equal(cfg.n_services, 3);
	assert_string_equal(cfg.services[1], "lmtp-x");
	assert_int_equal(cfg.client_timeout_ms, 1);
	assert_int_equal(cfg.anvil_timeout_ms, 600000);
	assert_int_equal(cfg.kick_confirm_ms, 60000);
	assert_int_equal(cfg.max_conns_per_uid, 4096);
	assert_int_equal(cfg.audit, KG_AUDIT_STDERR);
	assert_int_equal(cfg.instances[0].protocol, KG_PROTO_1);
	kg_config_free(&cfg);
}

static void test_rule_defaults(void **state)
{
	struct kg_config cfg;
	const struct kg_rule *r;

	(void)state;
	parse_ok("[rule r]\nprincipals = uid:1234\n", &cfg);
	assert_int_equal(cfg.n_rules, 1);
	r = &cfg.rules[0];
	assert_string_equal(r->name, "r");
	assert_int_equal(r->n_principals, 1);
	assert_int_equal(r->principals[0].kind, KG_PRINCIPAL_UID);
	assert_int_equal(r->principals[0].id, 1234);
	assert_int_equal(r->n_globs, 1);
	assert_string_equal(r->globs[0].s, "*");
	assert_true(r->all_users);
	assert_int_equal(r->n_nets, 2);
	assert_int_equal(r->nets[0].family, KG_AF_INET);
	assert_int_equal(r->nets[0].prefix, 0);
	assert_int_equal(r->nets[1].family, KG_AF_INET6);
	assert_int_equal(r->nets[1].prefix, 0);
	assert_true(r->all_nets);
	assert_int_equal(r->n_fields, 0);
	assert_false(r->force);
	assert_false(r->by_dest);
	assert_true(r->who);
	assert_int_equal(r->max_sessions, 0);
	assert_int_equal(r->max_sessions_per_hour, 0);
	assert_true(kg_rule_has_instance(r, 0));
	assert_false(kg_rule_has_instance(r, 1));
	kg_config_free(&cfg);
}

static void assert_field(const struct kg_field *f, const char *name,
                         const char *value)
{
	assert_int_equal(f->name_len, strlen(name));
	assert_memory_equal(f->name, name, f->name_len);
	assert_int_equal(f->value_len, strlen(value));
	assert_memory_equal(f->value, value, f->value_len);
}

/* A value is taken byte for byte, '=' and case included; users stays
 * "any" when only fields are given. */
static void test_rule_fields_and_by_dest(void **state)
{
	struct kg_config cfg;
	const struct kg_rule *r;

	(void)state;
	parse_ok(RULE "fields = user_tenant=tenant-a.example\t"
	              "user.alias-2=A=b  x=\xc3\xa9\n"
	              "by_dest = yes\n",
	         &cfg);
	r = &cfg.rules[0];
	assert_int_equal(r->n_fields, 3);
	assert_field(&r->fields[0], "user_tenant", "tenant-a.example");
	assert_field(&r->fields[1], "user.alias-2", "A=b");
	assert_field(&r->fields[2], "x", "\xc3\xa9");
	assert_true(r->all_users);
	assert_int_equal(r->n_globs, 1);
	assert_true(r->by_dest);
	kg_config_free(&cfg);
}

/* The longest name and value, and as many fields as a list holds. */
static void test_rule_fields_limits(void **state)
{
	char name[KG_FIELD_NAME_MAX + 1], value[KG_FIELD_VALUE_MAX + 1];
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct kg_config cfg;

	(void)state;
	memset(name, 'n', KG_FIELD_NAME_MAX);
	name[KG_FIELD_NAME_MAX] = '\0';
	memset(value, 'v', KG_FIELD_VALUE_MAX);
	value[KG_FIELD_VALUE_MAX] = '\0';
	assert_non_null(f);
	fprintf(f, RULE "fields = %s=%s", name, value);
	for (int i = 1; i < KG_CONF_MAX_LIST; i++)
		fprintf(f, " f%d=%d", i, i);
	fputc('\n', f);
	assert_int_equal(fclose(f), 0);
	parse_ok(text, &cfg);
	assert_int_equal(cfg.rules[0].n_fields, KG_CONF_MAX_LIST);
	assert_field(&cfg.rules[0].fields[0], name, value);
	assert_field(&cfg.rules[0].fields[KG_CONF_MAX_LIST - 1], "f63", "63");
	kg_config_free(&cfg);
	free(text);
}

/* Anvil does every kick only when no instance may speak 2.3's
 * protocol: "auto" might. */
static void test_protocol_and_anvil_kicks_only(void **state)
{
	static const struct {
		const char *text;
		enum kg_anvil_proto broker, other;
		bool anvil_kicks_only;
	} cases[] = {
	        {"[broker]\nprotocol = 2.4\n[instance b]\nanvil = /b\n"
	         "protocol = 2.4\n",
	         KG_PROTO_2, KG_PROTO_2, true},
	        {"[broker]\nprotocol = 2.4\n[instance b]\nanvil = /b\n",
	         KG_PROTO_2, KG_PROTO_AUTO, false},
	        {"[broker]\nprotocol = auto\n[instance b]\nanvil = /b\n"
	         "protocol = 2.4\n",
	         KG_PROTO_AUTO, KG_PROTO_2, false},
	        {"[instance b]\nanvil = /b\nprotocol = 2.3\n"
	         "[broker]\nprotocol = 2.4\n",
	         KG_PROTO_2, KG_PROTO_1, false},
	};
	struct kg_config cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_ok(cases[i].text, &cfg);
		assert_int_equal(cfg.n_instances, 2);
		assert_int_equal(cfg.instances[0].protocol, cases[i].broker);
		assert_int_equal(cfg.instances[1].protocol, cases[i].other);
		assert_int_equal(cfg.anvil_kicks_only,
		                 cases[i].anvil_kicks_only);
		kg_config_free(&cfg);
	}
	parse_ok("[broker]\nprotocol = 2.4\n", &cfg);
	assert_true(cfg.anvil_kicks_only);
	kg_config_free(&cfg);
}

static void assert_net(const struct kg_net *n, const char *want)
{
	char text[KG_NET_STRLEN];

	kg_net_format(n, text);
	assert_string_equal(text, want);
}

/* Instance "late" is defined after the rule naming it. */
static void test_rule_keys_are_parsed(void **state)
{
	struct kg_config cfg;
	const struct kg_rule *r;

	(void)state;
	parse_ok("[rule r]\n"
	         "principals = user:daemon group:nogroup uid:0 gid:7\n"
	         "users = *@Tenant-A.example  Foo**bar\n"
	         "networks = 192.0.2.7/24\t2001:DB8::/32\n"
	         "force = yes\n"
	         "max_sessions = 1000000000\n"
	         "max_sessions_per_hour = 1000000000\n"
	         "instances = late\n"
	         "who = no\n"
	         "[instance late]\n"
	         "anvil = /run/late/anvil\n",
	         &cfg);
	r = &cfg.rules[0];
	assert_int_equal(r->n_principals, 4);
	assert_int_equal(r->principals[0].kind, KG_PRINCIPAL_UID);
	assert_int_equal(r->principals[0].id, 1);
	assert_int_equal(r->principals[1].kind, KG_PRINCIPAL_GID);
	assert_int_equal(r->principals[1].id, 65534);
	assert_int_equal(r->principals[2].kind, KG_PRINCIPAL_UID);
	assert_int_equal(r->principals[2].id, 0);
	assert_int_equal(r->principals[3].kind, KG_PRINCIPAL_GID);
	assert_int_equal(r->principals[3].id, 7);
	assert_true(cfg.root_named);
	assert_int_equal(r->n_globs, 2);
	assert_string_equal(r->globs[0].s, "*@tenant-a.example");
	assert_int_equal(r->globs[0].len, 18);
	assert_string_equal(r->globs[1].s, "foo*bar");
	assert_false(r->all_users);
	assert_int_equal(r->n_nets, 2);
	assert_net(&r->nets[0], "192.0.2.0/24");
	assert_net(&r->nets[1], "2001:db8::/32");
	assert_false(r->all_nets);
	assert_true(r->force);
	assert_int_equal(r->max_sessions, 1000000000);
	assert_int_equal(r->max_sessions_per_hour, 1000000000);
	assert_false(kg_rule_has_instance(r, 0));
	assert_true(kg_rule_has_instance(r, 1));
	assert_false(r->who);
	kg_config_free(&cfg);
}

/* 0, as for max_sessions, is no limit; the budget is independent of the
 * limit per request. */
static void test_max_sessions_per_hour(void **state)
{
	struct kg_config cfg;

	(void)state;
	parse_ok("[rule r]\nprincipals = uid:1\nmax_sessions_per_hour = 0\n",
	         &cfg);
	assert_int_equal(cfg.rules[0].max_sessions_per_hour, 0);
	kg_config_free(&cfg);
	parse_ok("[rule r]\nprincipals = uid:1\nmax_sessions = 5\n"
	         "max_sessions_per_hour = 3\n",
	         &cfg);
	assert_int_equal(cfg.rules[0].max_sessions, 5);
	assert_int_equal(cfg.rules[0].max_sessions_per_hour, 3);
	kg_config_free(&cfg);
}

static void test_user_root_names_uid_0(void **state)
{
	struct kg_config cfg;

	(void)state;
	parse_ok("[rule r]\nprincipals = user:root\n", &cfg);
	assert_true(cfg.root_named);
	kg_config_free(&cfg);
	parse_ok("[rule r]\nprincipals = group:root gid:0 uid:1\n", &cfg);
	assert_false(cfg.root_named);
	kg_config_free(&cfg);
}

static void test_all_nets_needs_both_families(void **state)
{
	struct kg_config cfg;

	(void)state;
	parse_ok("[rule a]\nprincipals = uid:1\nnetworks = ::/0 0.0.0.0/0\n"
	         "[rule b]\nprincipals = uid:1\nnetworks = 0.0.0.0/0\n",
	         &cfg);
	assert_true(cfg.rules[0].all_nets);
	assert_false(cfg.rules[1].all_nets);
	kg_config_free(&cfg);
}

static void test_instances_by_name_and_path(void **state)
{
	struct kg_config cfg;

	(void)state;
	parse_ok("[instance a]\nanvil = /run/a/anvil\n"
	         "[instance b.2]\nanvil = /run/b/anvil\n",
	         &cfg);
	assert_int_equal(cfg.n_instances, 3);
	assert_int_equal(kg_config_instance_by_name(&cfg, "default"), 0);
	assert_int_equal(kg_config_instance_by_name(&cfg, "a"), 1);
	assert_int_equal(kg_config_instance_by_name(&cfg, "b.2"), 2);
	assert_int_equal(kg_config_instance_by_name(&cfg, "c"), -1);
	assert_int_equal(kg_config_instance_by_path(&cfg, "/run/dovecot/anvil"),
	                 0);
	assert_int_equal(kg_config_instance_by_path(&cfg, "/run/b/anvil"), 2);
	assert_int_equal(kg_config_instance_by_path(&cfg, "/run/b//anvil"), -1);
	assert_int_equal(kg_config_instance_by_path(&cfg, "/run/b/anvil/"), -1);
	kg_config_free(&cfg);
}

/* ';' and '#' start a comment only at the start of a line or after a
 * blank. */
static void test_comments(void **state)
{
	struct kg_config cfg;

	(void)state;
	parse_ok("# leading\n"
	         "  ; indented\n"
	         "\t\n"
	         "[rule r] ; after a header\n"
	         "principals = uid:5 # after a value\n"
	         "users = a;b c#d\t;tab before\n"
	         "[broker]\t# tab before\n",
	         &cfg);
	assert_int_equal(cfg.rules[0].n_principals, 1);
	assert_int_equal(cfg.rules[0].n_globs, 2);
	assert_string_equal(cfg.rules[0].globs[0].s, "a;b");
	assert_string_equal(cfg.rules[0].globs[1].s, "c#d");
	kg_config_free(&cfg);
	parse_fails(RULE "max_sessions = 9;\n",
	            "t.conf:3: max_sessions: '9;' is not a decimal number\n");
	parse_fails("[broker]# no blank before\n",
	            "t.conf:1: section header does not end with ']'\n");
}

struct error_case {
	const char *name;
	const char *text;
	const char *want;
};

static const struct error_case error_cases[] = {
        {"unknown section", "[foo]\nbar = 1\n",
         "t.conf:1: unknown section [foo]\n"},
        {"unknown section with name", "[rules x]\n",
         "t.conf:1: unknown section [rules x]\n"},
        {"broker takes no name", "[broker x]\n",
         "t.conf:1: unknown section [broker x]\n"},
        {"unknown broker key", "[broker]\nlisten_port = 1\n",
         "t.conf:2: unknown key 'listen_port' in [broker]\n"},
        {"unknown rule key, one letter short", RULE "user = x\n",
         "t.conf:3: unknown key 'user' in [rule r]; did you mean "
         "'users'?\n"},
        {"misspelt broker key", "[broker]\nanvl = /a\n",
         "t.conf:2: unknown key 'anvl' in [broker]; did you mean "
         "'anvil'?\n"},
        {"two letters swapped", RULE "pirncipals = uid:1\n",
         "t.conf:3: unknown key 'pirncipals' in [rule r]; did you mean "
         "'principals'?\n"},
        {"suggestion from the section's own keys", "[broker]\nforc = yes\n",
         "t.conf:2: unknown key 'forc' in [broker]\n"},
        {"too far from any key", RULE "how = yes\n",
         "t.conf:3: unknown key 'how' in [rule r]\n"},
        {"too long for a suggestion",
         RULE "max_sessions_max_sessions_max_sessions = 1\n",
         "t.conf:3: unknown key 'max_sessions_max_sessions_max_sessions' "
         "in [rule r]\n"},
        {"key of another section", "[instance i]\nanvil = /a\nforce = yes\n",
         "t.conf:3: unknown key 'force' in [instance i]\n"},
        {"key outside a section", "listen = /x\n",
         "t.conf:1: key 'listen' is outside any section\n"},
        {"no equals sign", "[broker]\nlisten /x\n",
         "t.conf:2: expected 'key = value' or a [section] header\n"},
        {"unterminated header", "[broker\n",
         "t.conf:1: section header does not end with ']'\n"},
        {"missing section name", "[rule]\n",
         "t.conf:1: [rule]: name must be 1 to 64 of A-Z a-z 0-9 _ . -\n"},
        {"bad section name", "[rule a/b]\n",
         "t.conf:1: [rule a/b]: name must be 1 to 64 of A-Z a-z 0-9 _ . -\n"},
        {"overlong section name",
         "[rule "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
         "t.conf:1: [rule "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]: "
         "name must be 1 to 64 of A-Z a-z 0-9 _ . -\n"},
        {"duplicate broker", "[broker]\n[broker]\naudit = x\n",
         "t.conf:2: duplicate section [broker]\n"},
        {"duplicate rule", RULE RULE "force = x\n",
         "t.conf:3: duplicate rule 'r'\n"},
        {"duplicate instance",
         "[instance i]\nanvil = /a\n[instance i]\nanvil = /b\n",
         "t.conf:3: duplicate instance 'i'\n"},
        {"reserved instance name", "[instance default]\nanvil = /a\n",
         "t.conf:1: instance name 'default' is reserved for [broker]'s "
         "anvil\n"},
        {"duplicate key", RULE "force = yes\nforce = no\n",
         "t.conf:4: duplicate key 'force' in [rule r]\n"},
        {"empty value", RULE "users =\n", "t.conf:3: users: empty value\n"},
        {"value only a comment", RULE "users = ; none\n",
         "t.conf:3: users: empty value\n"},
        {"missing principals", "[rule r]\nforce = no\n",
         "t.conf:1: [rule r]: missing required key 'principals'\n"},
        {"missing anvil", "[instance i]\n[rule r]\nprincipals = uid:1\n",
         "t.conf:1: [instance i]: missing required key 'anvil'\n"},
        {"unknown user", "[rule r]\nprincipals = user:kg-no-such-user\n",
         "t.conf:2: principals: unknown user 'kg-no-such-user'\n"},
        {"unknown group", "[rule r]\nprincipals = group:kg-no-such-group\n",
         "t.conf:2: principals: unknown group 'kg-no-such-group'\n"},
        {"unknown principal kind", "[rule r]\nprincipals = login:root\n",
         "t.conf:2: principals: 'login:root' is not user:, group:, uid: or "
         "gid:\n"},
        {"principal without colon", "[rule r]\nprincipals = root\n",
         "t.conf:2: principals: 'root' is not user:, group:, uid: or gid:\n"},
        {"principal without name", "[rule r]\nprincipals = user:\n",
         "t.conf:2: principals: 'user:' needs a name of 1 to 255 bytes\n"},
        {"uid out of range", "[rule r]\nprincipals = uid:4294967295\n",
         "t.conf:2: principals: 4294967295 is out of range (0 to "
         "4294967294)\n"},
        {"gid with sign", "[rule r]\nprincipals = gid:-1\n",
         "t.conf:2: principals: '-1' is not a decimal number\n"},
        {"instance not defined", RULE "instances = default nope\n",
         "t.conf:3: instances: instance 'nope' is not defined\n"},
        {"number with trailing junk", RULE "max_sessions = 50x\n",
         "t.conf:3: max_sessions: '50x' is not a decimal number\n"},
        {"number with plus", RULE "max_sessions = +5\n",
         "t.conf:3: max_sessions: '+5' is not a decimal number\n"},
        {"number with minus", RULE "max_sessions = -5\n",
         "t.conf:3: max_sessions: '-5' is not a decimal number\n"},
        {"number with leading zero", RULE "max_sessions = 050\n",
         "t.conf:3: max_sessions: '050' is not a decimal number\n"},
        {"number too large", RULE "max_sessions = 1000000001\n",
         "t.conf:3: max_sessions: 1000000001 is out of range (0 to "
         "1000000000)\n"},
        {"number far too large",
         RULE "max_sessions = 99999999999999999999999\n",
         "t.conf:3: max_sessions: 99999999999999999999999 is out of range (0 "
         "to 1000000000)\n"},
        {"budget too large", RULE "max_sessions_per_hour = 1000000001\n",
         "t.conf:3: max_sessions_per_hour: 1000000001 is out of range (0 "
         "to 1000000000)\n"},
        {"budget not a number", RULE "max_sessions_per_hour = ten\n",
         "t.conf:3: max_sessions_per_hour: 'ten' is not a decimal number\n"},
        {"budget negative", RULE "max_sessions_per_hour = -1\n",
         "t.conf:3: max_sessions_per_hour: '-1' is not a decimal number\n"},
        {"budget twice",
         RULE "max_sessions_per_hour = 1\nmax_sessions_per_hour = 2\n",
         "t.conf:4: duplicate key 'max_sessions_per_hour' in [rule r]\n"},
        {"timeout zero", "[broker]\nclient_timeout_ms = 0\n",
         "t.conf:2: client_timeout_ms: 0 is out of range (1 to 600000)\n"},
        {"timeout too large", "[broker]\nanvil_timeout_ms = 600001\n",
         "t.conf:2: anvil_timeout_ms: 600001 is out of range (1 to 600000)\n"},
        {"no connection per uid", "[broker]\nmax_connections_per_uid = 0\n",
         "t.conf:2: max_connections_per_uid: 0 is out of range (1 to "
         "4096)\n"},
        {"more connections per uid than the supervisor holds",
         "[broker]\nmax_connections_per_uid = 4097\n",
         "t.conf:2: max_connections_per_uid: 4097 is out of range (1 to "
         "4096)\n"},
        {"connections per uid in a rule", RULE "max_connections_per_uid = 1\n",
         "t.conf:3: unknown key 'max_connections_per_uid' in [rule r]\n"},
        {"bad boolean", RULE "force = true\n",
         "t.conf:3: force: 'true' is not yes or no\n"},
        {"bad by_dest", RULE "by_dest = 1\n",
         "t.conf:3: by_dest: '1' is not yes or no\n"},
        {"by_dest outside a rule", "[broker]\nby_dest = yes\n",
         "t.conf:2: unknown key 'by_dest' in [broker]\n"},
        {"bad protocol", "[broker]\nprotocol = 2\n",
         "t.conf:2: protocol: '2' is not auto, 2.3 or 2.4\n"},
        {"protocol is case sensitive",
         "[instance i]\nanvil = /a\n"
         "protocol = AUTO\n",
         "t.conf:3: protocol: 'AUTO' is not auto, 2.3 or 2.4\n"},
        {"protocol in a rule", RULE "protocol = 2.4\n",
         "t.conf:3: unknown key 'protocol' in [rule r]\n"},
        {"protocol twice", "[broker]\nprotocol = 2.4\nprotocol = 2.4\n",
         "t.conf:3: duplicate key 'protocol' in [broker]\n"},
        {"kick confirmation too short", "[broker]\nkick_confirm_ms = 99\n",
         "t.conf:2: kick_confirm_ms: 99 is out of range (100 to 60000)\n"},
        {"kick confirmation too long", "[broker]\nkick_confirm_ms = 60001\n",
         "t.conf:2: kick_confirm_ms: 60001 is out of range (100 to "
         "60000)\n"},
        {"kick confirmation not a number", "[broker]\nkick_confirm_ms = 2s\n",
         "t.conf:2: kick_confirm_ms: '2s' is not a decimal number\n"},
        {"kick confirmation in an instance",
         "[instance i]\nanvil = /a\nkick_confirm_ms = 100\n",
         "t.conf:3: unknown key 'kick_confirm_ms' in [instance i]\n"},
        {"field without value separator", RULE "fields = user_tenant\n",
         "t.conf:3: fields: 'user_tenant' is not NAME=VALUE\n"},
        {"field without name", RULE "fields = =a\n",
         "t.conf:3: fields: field name '' must be 1 to 64 of A-Z a-z 0-9 "
         "_ . -\n"},
        {"field name with a slash", RULE "fields = a/b=c\n",
         "t.conf:3: fields: field name 'a/b' must be 1 to 64 of A-Z a-z "
         "0-9 _ . -\n"},
        {"field name too long",
         RULE
         "fields = "
         "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
         "=v\n",
         "t.conf:3: fields: field name "
         "'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn' "
         "must be 1 to 64 of A-Z a-z 0-9 _ . -\n"},
        {"field without value", RULE "fields = a= b=c\n",
         "t.conf:3: fields: the value of 'a' must be 1 to 255 bytes of "
         "UTF-8 text\n"},
        {"field value not utf-8", RULE "fields = a=\xff\n",
         "t.conf:3: fields: the value of 'a' must be 1 to 255 bytes of "
         "UTF-8 text\n"},
        {"field in a broker", "[broker]\nfields = a=b\n",
         "t.conf:2: unknown key 'fields' in [broker]\n"},
        {"boolean is case sensitive", RULE "who = Yes\n",
         "t.conf:3: who: 'Yes' is not yes or no\n"},
        {"relative path", "[broker]\nlisten = run/s\n",
         "t.conf:2: listen: 'run/s' is not an absolute path\n"},
        {"path too long",
         "[instance i]\nanvil = "
         "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "a"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
         "t.conf:2: anvil: path is longer than 107 bytes\n"},
        {"path not utf-8", "[broker]\nanvil = /run/\xff\n",
         "t.conf:2: anvil: path holds a tab or is not valid UTF-8\n"},
        {"same anvil twice", "[instance i]\nanvil = /run/dovecot/anvil\n",
         "t.conf:2: anvil: '/run/dovecot/anvil' is already the anvil of "
         "instance 'default'\n"},
        {"mode without leading zero", "[broker]\nlisten_mode = 666\n",
         "t.conf:2: listen_mode: '666' is not an octal mode from 00 to "
         "0777\n"},
        {"mode not octal", "[broker]\nlisten_mode = 0668\n",
         "t.conf:2: listen_mode: '0668' is not an octal mode from 00 to "
         "0777\n"},
        {"mode too large", "[broker]\nlisten_mode = 01777\n",
         "t.conf:2: listen_mode: '01777' is not an octal mode from 00 to "
         "0777\n"},
        {"bad service", "[broker]\nservices = imap IMAP pop_3\n",
         "t.conf:2: services: bad service name 'IMAP' (a-z, 0-9, '-', at most "
         "32 bytes)\n"
         "t.conf:2: services: bad service name 'pop_3' (a-z, 0-9, '-', at "
         "most 32 bytes)\n"},
        {"too many services",
         "[broker]\nservices = a b c d e f g h i j k l m n o p q\n",
         "t.conf:2: services: more than 16 entries\n"},
        {"bad audit", "[broker]\naudit = file\n",
         "t.conf:2: audit: 'file' is not syslog or stderr\n"},
        {"unknown broker user", "[broker]\nbroker_user = kg-no-such-user\n",
         "t.conf:2: broker_user: unknown user 'kg-no-such-user'\n"},
        {"control byte", "[broker]\x01\n",
         "t.conf:1: control byte 0x01 in column 9\n"},
        {"DOS line ending", "[broker]\r\n",
         "t.conf:1: line ends with CR: the file has DOS line endings; "
         "convert it with sed -i 's/\\r$//' t.conf\n"},
        {"carriage return inside a line", "[bro\rker]\n",
         "t.conf:1: control byte 0x0d in column 5\n"},
        {"delete byte", "#\x7f\n", "t.conf:1: control byte 0x7f in column 2\n"},
};

/* One error for the line endings, however many lines have them, and
 * every other error still found. */
static void test_dos_file_reports_once_and_goes_on(void **state)
{
	(void)state;
	parse_fails("[broker]\r\nlisten = /x\r\n[rule r]\r\n"
	            "principals = uid:1\r\nforce = maybe\r\n",
	            "t.conf:1: line ends with CR: the file has DOS line "
	            "endings; convert it with sed -i 's/\\r$//' t.conf\n"
	            "t.conf:5: force: 'maybe' is not yes or no\n");
}

static void test_each_error_class(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]);
	     i++) {
		print_message("case: %s\n", error_cases[i].name);
		parse_fails(error_cases[i].text, error_cases[i].want);
	}
}

static void test_nul_byte_is_a_control_byte(void **state)
{
	static const char text[] = "[broker]\nlisten = /a\0b\n";

	(void)state;
	parse_fails_len(text, sizeof(text) - 1,
	                "t.conf:2: control byte 0x00 in column 12\n");
}

static void test_bad_glob_says_why(void **state)
{
	char want[256];

	(void)state;
	snprintf(want, sizeof(want), "t.conf:3: users: glob '\xff' %s\n",
	         kg_glob_strerror(KG_GLOB_BAD_BYTE));
	parse_fails(RULE "users = a \xff b\n", want);
}

static void test_bad_network_says_why(void **state)
{
	const char *why = NULL;
	struct kg_net net;
	char want[256];

	(void)state;
	assert_false(kg_net_parse("192.0.2.1/33", 12, &net, &why));
	assert_non_null(why);
	snprintf(want, sizeof(want),
	         "t.conf:3: networks: network '192.0.2.1/33' %s\n", why);
	parse_fails(RULE "networks = 192.0.2.0/24 192.0.2.1/33\n", want);
}

/* Repeats unit n times after head, into a heap buffer. */
static char *repeat(const char *head, const char *unit, size_t n)
{
	size_t hl = strlen(head), ul = strlen(unit);
	char *buf = malloc(hl + ul * n + 1);

	assert_non_null(buf);
	memcpy(buf, head, hl);
	for (size_t i = 0; i < n; i++)
		memcpy(buf + hl + i * ul, unit, ul);
	buf[hl + ul * n] = '\0';
	return buf;
}

static void test_overlong_line(void **state)
{
	char *text = repeat("[broker]\n#", "x", KG_CONF_LINE_MAX);
	struct kg_config cfg;

	(void)state;
	parse_fails(text, "t.conf:2: line is longer than 4096 bytes\n");
	text[strlen(text) - 1] = '\0';
	parse_ok(text, &cfg);
	kg_config_free(&cfg);
	free(text);
}

static void test_too_many_principals(void **state)
{
	char *text = repeat("[rule r]\nprincipals =", " uid:1",
	                    KG_CONF_MAX_LIST + 1);

	(void)state;
	parse_fails(text, "t.conf:2: principals: more than 64 entries\n");
	free(text);
}

static void test_too_many_globs_networks_and_fields(void **state)
{
	char *text = repeat(RULE "users =", " a*", KG_CONF_MAX_LIST + 2);
	char *nets = repeat(RULE "networks =", " ::1", KG_CONF_MAX_LIST + 1);
	char *fields = repeat(RULE "fields =", " a=b", KG_CONF_MAX_LIST + 1);

	(void)state;
	parse_fails(text, "t.conf:3: users: more than 64 entries\n");
	parse_fails(nets, "t.conf:3: networks: more than 64 entries\n");
	parse_fails(fields, "t.conf:3: fields: more than 64 entries\n");
	free(text);
	free(nets);
	free(fields);
}

/* Parses count sections "[HEAD<n>]\nBODY<n>\n", n from 1; the one error
 * must be msg at line. */
static void parse_sections_fail(const char *head, const char *body, int count,
                                int line, const char *msg)
{
	char *text = NULL, want[128];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	for (int i = 1; i <= count; i++)
		fprintf(f, "[%s%d]\n%s%d\n", head, i, body, i);
	assert_int_equal(fclose(f), 0);
	snprintf(want, sizeof(want), "t.conf:%d: %s\n", line, msg);
	parse_fails_len(text, len, want);
	free(text);
}

/* With [broker]'s anvil, the last section is one too many. */
static void test_too_many_instances(void **state)
{
	(void)state;
	parse_sections_fail("instance i", "anvil = /a/", KG_CONF_MAX_INSTANCES,
	                    2 * KG_CONF_MAX_INSTANCES - 1,
	                    "more than 256 instances");
}

static void test_too_many_rules(void **state)
{
	(void)state;
	parse_sections_fail("rule r",
	                    "principals = uid:", KG_CONF_MAX_RULES + 1,
	                    2 * KG_CONF_MAX_RULES + 1, "more than 1024 rules");
}

static void test_too_large_buffer(void **state)
{
	char *text = calloc(1, KG_CONF_FILE_MAX + 1);

	(void)state;
	assert_non_null(text);
	memset(text, '\n', KG_CONF_FILE_MAX + 1);
	parse_fails_len(text, KG_CONF_FILE_MAX + 1,
	                "t.conf:0: file is larger than 1048576 bytes\n");
	free(text);
}

/* Later errors are still found after earlier ones, each at its line. */
static void test_all_errors_are_reported(void **state)
{
	static const char text[] = "[broker]\n"
	                           "listen_mode = 999\n"
	                           "bogus = 1\n"
	                           "[rule a]\n"
	                           "principals = uid:1 user:kg-no-such-user\n"
	                           "force = perhaps\n"
	                           "instances = missing\n"
	                           "[rule b]\n"
	                           "users = x\n"
	                           "[rule a]\n"
	                           "[instance c]\n"
	                           "anvil = relative\n";

	(void)state;
	parse_fails(text,
	            "t.conf:2: listen_mode: '999' is not an octal mode from 00 "
	            "to 0777\n"
	            "t.conf:3: unknown key 'bogus' in [broker]\n"
	            "t.conf:5: principals: unknown user 'kg-no-such-user'\n"
	            "t.conf:6: force: 'perhaps' is not yes or no\n"
	            "t.conf:8: [rule b]: missing required key 'principals'\n"
	            "t.conf:10: duplicate rule 'a'\n"
	            "t.conf:12: anvil: 'relative' is not an absolute path\n"
	            "t.conf:7: instances: instance 'missing' is not "
	            "defined\n");
}

/* Writes text to a new file with the given mode; returns its path. */
static char *write_file(const char *text, mode_t mode)
{
	static unsigned int serial;
	char *path;
	int fd;

	assert_true(asprintf(&path, "/tmp/kg-test-config-%ld-%u",
	                     (long)getpid(), serial++) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
	return path;
}

/* Loads path and returns what was written to the error stream. */
static char *load(const char *path, int *n)
{
	struct kg_config cfg;
	size_t len;
	char *errs;
	FILE *f = open_memstream(&errs, &len);

	assert_non_null(f);
	*n = kg_config_load(path, &cfg, f);
	assert_int_equal(fclose(f), 0);
	kg_config_free(&cfg);
	return errs;
}

/* Loading path must give exactly the one error want. */
static void assert_load_error(const char *path, const char *want)
{
	int n;
	char *errs = load(path, &n);

	assert_string_equal(errs, want);
	assert_int_equal(n, 1);
	free(errs);
}

/* A file of text with mode must give the one error after_path, which
 * follows the file's name. */
static void file_fails(const char *text, mode_t mode, const char *after_path)
{
	char *path = write_file(text, mode);
	char want[256];

	snprintf(want, sizeof(want), "%s%s", path, after_path);
	assert_load_error(path, want);
	unlink(path);
	free(path);
}

static void test_load_reads_a_file(void **state)
{
	(void)state;
	file_fails(RULE "force = maybe\n", 0600,
	           ":3: force: 'maybe' is not yes or no\n");
}

static void test_load_refuses_writable_file(void **state)
{
	(void)state;
	file_fails(RULE, 0602,
	           ":0: file is writable by group or others (mode 0602)\n");
}

/* A refused file is still read, so that one run shows every error. */
static void test_refused_file_reports_its_content_too(void **state)
{
	char *path = write_file(RULE "force = maybe\n", 0602);
	char want[512];
	int n;
	char *errs;

	(void)state;
	snprintf(want, sizeof(want),
	         "%s:0: file is writable by group or others (mode 0602)\n"
	         "%s:3: force: 'maybe' is not yes or no\n",
	         path, path);
	errs = load(path, &n);
	assert_string_equal(errs, want);
	assert_int_equal(n, 2);
	free(errs);
	unlink(path);
	free(path);
}

/* Ownership can only be given away by root; elsewhere the owner tests
 * skip, and in CI, where they must run, they fail. */
static void need_root(void)
{
	const char *ci = getenv("CI");

	if (geteuid() == 0)
		return;
	if (ci != NULL && strcmp(ci, "true") == 0)
		fail_msg("giving a file to another owner needs root");
	skip();
}

/* nobody and nogroup on Debian; any ids but root's will do. */
#define FOREIGN_ID 65534

/* A file that parses cleanly, with the given mode, owner and group. */
static char *write_owned(mode_t mode, uid_t uid, gid_t gid)
{
	char *path = write_file(RULE, mode);

	assert_int_equal(chown(path, uid, gid), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void owned_fails(mode_t mode, uid_t uid, gid_t gid,
                        const char *after_path)
{
	char *path = write_owned(mode, uid, gid);
	char want[256];

	snprintf(want, sizeof(want), "%s%s", path, after_path);
	assert_load_error(path, want);
	unlink(path);
	free(path);
}

static void owned_loads(mode_t mode, uid_t uid, gid_t gid)
{
	char *path = write_owned(mode, uid, gid);
	int n;
	char *errs = load(path, &n);

	assert_string_equal(errs, "");
	assert_int_equal(n, 0);
	free(errs);
	unlink(path);
	free(path);
}

/* Root's file, writable by root's group at most, is trusted. */
static void test_load_accepts_root_file(void **state)
{
	(void)state;
	need_root();
	owned_loads(0644, 0, 0);
	owned_loads(0660, 0, 0);
	owned_loads(0600, 0, FOREIGN_ID);
}

static void test_load_refuses_file_of_another_owner(void **state)
{
	(void)state;
	need_root();
	owned_fails(0644, FOREIGN_ID, 0,
	            ":0: file is owned by uid 65534, not by root\n");
	owned_fails(0600, FOREIGN_ID, FOREIGN_ID,
	            ":0: file is owned by uid 65534, not by root\n");
}

static void test_load_refuses_file_writable_by_other_group(void **state)
{
	(void)state;
	need_root();
	owned_fails(0620, 0, FOREIGN_ID,
	            ":0: file is writable by group or others (mode 0620)\n");
	owned_fails(0666, 0, 0,
	            ":0: file is writable by group or others (mode 0666)\n");
}

/* The file a symbolic link leads to is the one checked, not the link
 * (root's, mode 0777 as every link): one to another user's file is
 * refused for that owner. */
static void test_load_checks_the_file_behind_a_symlink(void **state)
{
	char *target, *link;
	char want[512];

	(void)state;
	need_root();
	target = write_owned(0644, FOREIGN_ID, FOREIGN_ID);
	assert_true(asprintf(&link, "%s.link", target) > 0);
	assert_int_equal(symlink(target, link), 0);
	snprintf(want, sizeof(want),
	         "%s:0: file is owned by uid 65534, not by root\n", link);
	assert_load_error(link, want);
	unlink(link);
	unlink(target);
	free(link);
	free(target);
}

static void test_load_reports_open_failure(void **state)
{
	(void)state;
	assert_load_error("/nonexistent/kickgated.conf",
	                  "/nonexistent/kickgated.conf:0: cannot open: No such "
	                  "file or directory (a commented example is "
	                  "installed at " KG_EXAMPLE_CONFIG ")\n");
	assert_load_error("/tmp", "/tmp:0: not a regular file\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty_file_gives_defaults),
	        cmocka_unit_test(test_broker_keys_are_parsed),
	        cmocka_unit_test(test_rule_defaults),
	        cmocka_unit_test(test_rule_keys_are_parsed),
	        cmocka_unit_test(test_rule_fields_and_by_dest),
	        cmocka_unit_test(test_rule_fields_limits),
	        cmocka_unit_test(test_protocol_and_anvil_kicks_only),
	        cmocka_unit_test(test_max_sessions_per_hour),
	        cmocka_unit_test(test_user_root_names_uid_0),
	        cmocka_unit_test(test_all_nets_needs_both_families),
	        cmocka_unit_test(test_instances_by_name_and_path),
	        cmocka_unit_test(test_comments),
	        cmocka_unit_test(test_dos_file_reports_once_and_goes_on),
	        cmocka_unit_test(test_each_error_class),
	        cmocka_unit_test(test_nul_byte_is_a_control_byte),
	        cmocka_unit_test(test_bad_glob_says_why),
	        cmocka_unit_test(test_bad_network_says_why),
	        cmocka_unit_test(test_overlong_line),
	        cmocka_unit_test(test_too_many_principals),
	        cmocka_unit_test(test_too_many_globs_networks_and_fields),
	        cmocka_unit_test(test_too_many_instances),
	        cmocka_unit_test(test_too_many_rules),
	        cmocka_unit_test(test_too_large_buffer),
	        cmocka_unit_test(test_all_errors_are_reported),
	        cmocka_unit_test(test_load_reads_a_file),
	        cmocka_unit_test(test_load_refuses_writable_file),
	        cmocka_unit_test(test_refused_file_reports_its_content_too),
	        cmocka_unit_test(test_load_accepts_root_file),
	        cmocka_unit_test(test_load_refuses_file_of_another_owner),
	        cmocka_unit_test(
	                test_load_refuses_file_writable_by_other_group),
	        cmocka_unit_test(test_load_checks_the_file_behind_a_symlink),
	        cmocka_unit_test(test_load_reports_open_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
