/* SPDX-License-Identifier: MIT */
/* Property: a configuration that parses without errors holds only
 * normalized globs (normalizing one again gives it back, NUL-terminated),
 * canonical networks and well-formed fields (a name of 1 to
 * KG_FIELD_NAME_MAX of A-Z a-z 0-9 _ . -, a value of 1 to
 * KG_FIELD_VALUE_MAX bytes of text without blanks, each NUL-terminated
 * inside the rule's field_text), every rule has a principal, no rule
 * allows an instance that does not exist, every instance's protocol is
 * one of the three and kick_confirm_ms is within its range; and the flags
 * the policy and the sandbox read instead of the lists say what the lists
 * hold (config.h): all_users that a glob is "*", all_nets that the
 * networks hold 0.0.0.0/0 and ::/0, root_named that some rule's
 * principals name uid 0, anvil_kicks_only that every instance is pinned
 * to protocol 2. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/config.h"
#include "proto/globparse.h"
#include "proto/text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	return 0;
}

static void check_glob(const struct kg_str *g)
{
	char out[KG_GLOB_MAX + 1];
	size_t n;

	if (g->s[g->len] != '\0' ||
	    kg_glob_normalize(g->s, g->len, out, &n) != KG_GLOB_OK ||
	    n != g->len || memcmp(out, g->s, n) != 0)
		abort();
}

static bool has_star(const struct kg_rule *r)
{
	for (size_t i = 0; i < r->n_globs; i++)
		if (r->globs[i].len == 1 && r->globs[i].s[0] == '*')
			return true;
	return false;
}

static bool has_whole(const struct kg_rule *r, uint8_t family)
{
	for (size_t i = 0; i < r->n_nets; i++)
		if (r->nets[i].family == family && r->nets[i].prefix == 0)
			return true;
	return false;
}

static bool names_uid_0(const struct kg_rule *r)
{
	for (size_t i = 0; i < r->n_principals; i++)
		if (r->principals[i].kind == KG_PRINCIPAL_UID &&
		    r->principals[i].id == 0)
			return true;
	return false;
}

/* Inside r's field_text and followed by its NUL. */
static bool owned(const struct kg_rule *r, const char *s, size_t len)
{
	return r->field_text != NULL && s >= r->field_text &&
	       s + len < r->field_text + KG_CONF_LINE_MAX && s[len] == '\0';
}

static bool has_blank(const char *s, size_t len)
{
	return memchr(s, ' ', len) != NULL || memchr(s, '\t', len) != NULL;
}

static void check_field(const struct kg_rule *r, const struct kg_field *f)
{
	if (f->name_len == 0 || f->name_len > KG_FIELD_NAME_MAX ||
	    !kg_name_ok(f->name, f->name_len) ||
	    !owned(r, f->name, f->name_len))
		abort();
	if (f->value_len == 0 || f->value_len > KG_FIELD_VALUE_MAX ||
	    !kg_text_ok(f->value, f->value_len) ||
	    has_blank(f->value, f->value_len) ||
	    !owned(r, f->value, f->value_len))
		abort();
}

static void check_rule(const struct kg_config *cfg, const struct kg_rule *r)
{
	if (r->all_users != has_star(r) ||
	    r->all_nets !=
	            (has_whole(r, KG_AF_INET) && has_whole(r, KG_AF_INET6)))
		abort();
	if (r->n_principals == 0 || r->n_globs == 0 || r->n_nets == 0)
		abort();
	if (r->n_fields > KG_CONF_MAX_LIST)
		abort();
	for (size_t i = 0; i < r->n_fields; i++)
		check_field(r, &r->fields[i]);
	for (size_t i = 0; i < r->n_globs; i++)
		check_glob(&r->globs[i]);
	for (size_t i = 0; i < r->n_nets; i++) {
		if (!kg_net_canonical(&r->nets[i]))
			abort();
	}
	for (int i = (int)cfg->n_instances; i < KG_CONF_MAX_INSTANCES; i++) {
		if (kg_rule_has_instance(r, i))
			abort();
	}
}

static void check_instances(const struct kg_config *cfg)
{
	bool all_2 = true;

	for (size_t i = 0; i < cfg->n_instances; i++) {
		enum kg_anvil_proto p = cfg->instances[i].protocol;

		if (p != KG_PROTO_AUTO && p != KG_PROTO_1 && p != KG_PROTO_2)
			abort();
		all_2 &= p == KG_PROTO_2;
	}
	if (cfg->anvil_kicks_only != all_2 || cfg->kick_confirm_ms < 100 ||
	    cfg->kick_confirm_ms > 60000)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kg_config cfg;

	if (kg_config_parse_buf("fuzz", (const char *)data, size, &cfg,
	                        devnull) == 0) {
		bool root_named = false;

		for (size_t i = 0; i < cfg.n_rules; i++) {
			check_rule(&cfg, &cfg.rules[i]);
			root_named |= names_uid_0(&cfg.rules[i]);
		}
		if (cfg.root_named != root_named)
			abort();
		check_instances(&cfg);
	}
	kg_config_free(&cfg);
	return 0;
}
