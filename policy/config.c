/* SPDX-License-Identifier: MIT */
/* kickgated.conf parser and checker. Every error is reported and parsing
 * goes on, so that one run shows an administrator everything to fix. */
#include "policy/config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kg_config.h"
#include "proto/globparse.h"
#include "proto/netparse.h"
#include "proto/text.h"

#define DEFAULT_LISTEN        "/run/kickgate/kickgate.sock"
#define DEFAULT_ANVIL         "/run/dovecot/anvil"
#define DEFAULT_FRONTEND_USER "_kickgate"
#define TIMEOUT_MAX           600000
#define KICK_CONFIRM_MIN      100
#define KICK_CONFIRM_MAX      60000
#define MAX_SESSIONS_MAX      1000000000
/* The supervisor holds at most 4096 waiting clients in all. */
#define CONNS_PER_UID_MAX 4096
#define ID_MAX            4294967294u /* (uid_t)-1 means "no id" to the kernel */
/* Keys longer than this get no suggestion: no valid key comes close. */
#define SUGGEST_LEN_MAX 32
/* A suggested key is at most this many edits away, and fewer than half
 * its length, so that a short key is not offered for anything. */
#define SUGGEST_EDITS_MAX 2

enum section { SEC_NONE, SEC_BROKER, SEC_INSTANCE, SEC_RULE, SEC_SKIP };

/* A rule's "instances" value, resolved once every section is known. */
struct pending {
	char *text;
	size_t len;
	size_t line;
	size_t rule;
};

struct parser {
	const char *name;
	FILE *errs;
	int errors;
	bool oom;
	size_t line;
	struct kg_config *cfg;
	enum section sec;
	size_t sec_line;
	uint32_t seen; /* bit i: keys[i] given in this section */
	const char *key;
	bool broker_seen;
	bool crlf_reported;
	size_t anvil_line[KG_CONF_MAX_INSTANCES];
	struct pending *pending;
	size_t n_pending;
	size_t rules_cap;
};

__attribute__((format(printf, 3, 4))) static void
report_at(struct parser *p, size_t line, const char *fmt, ...)
{
	va_list ap;

	p->errors++;
	if (!p->errs)
		return;
	fprintf(p->errs, "%s:%zu: ", p->name, line);
	va_start(ap, fmt);
	vfprintf(p->errs, fmt, ap);
	va_end(ap);
	fputc('\n', p->errs);
}

#define report(p, ...) report_at((p), (p)->line, __VA_ARGS__)

static void out_of_memory(struct parser *p)
{
	if (!p->oom)
		report(p, "out of memory");
	p->oom = true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static struct kg_str trim(struct kg_str v)
{
	while (v.len > 0 && is_blank(v.s[0])) {
		v.s++;
		v.len--;
	}
	while (v.len > 0 && is_blank(v.s[v.len - 1]))
		v.len--;
	return v;
}

static bool str_is(struct kg_str v, const char *lit)
{
	return v.len == strlen(lit) && memcmp(v.s, lit, v.len) == 0;
}

/* Splits off the next blank-separated token of *rest. */
static bool next_token(struct kg_str *rest, struct kg_str *tok)
{
	size_t n = 0;

	*rest = trim(*rest);
	if (rest->len == 0)
		return false;
	while (n < rest->len && !is_blank(rest->s[n]))
		n++;
	*tok = (struct kg_str){rest->s, n};
	rest->s += n;
	rest->len -= n;
	return true;
}

/* Copies v into a NUL-terminated buffer of cap bytes. */
static bool copy_str(struct kg_str v, char *out, size_t cap)
{
	if (v.len >= cap)
		return false;
	memcpy(out, v.s, v.len);
	out[v.len] = '\0';
	return true;
}

static bool all_digits(struct kg_str v)
{
	for (size_t i = 0; i < v.len; i++) {
		if (v.s[i] < '0' || v.s[i] > '9')
			return false;
	}
	return v.len > 0;
}

/* Plain decimal in min..max; a sign, a leading zero or any other byte is
 * refused so that no value can be read two ways. */
static bool get_uint(struct parser *p, struct kg_str v, uint64_t min,
                     uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (!all_digits(v) || (v.len > 1 && v.s[0] == '0')) {
		report(p, "%s: '%.*s' is not a decimal number", p->key,
		       (int)v.len, v.s);
		return false;
	}
	for (size_t i = 0; i < v.len && n <= max; i++)
		n = n * 10 + (uint64_t)(v.s[i] - '0');
	if (n < min || n > max) {
		report(p, "%s: %.*s is out of range (%llu to %llu)", p->key,
		       (int)v.len, v.s, (unsigned long long)min,
		       (unsigned long long)max);
		return false;
	}
	*out = n;
	return true;
}

static bool get_bool(struct parser *p, struct kg_str v, bool *out)
{
	if (str_is(v, "yes") || str_is(v, "no")) {
		*out = str_is(v, "yes");
		return true;
	}
	report(p, "%s: '%.*s' is not yes or no", p->key, (int)v.len, v.s);
	return false;
}

/* An absolute socket path that fits sun_path and that a request, whose
 * text must be UTF-8 without control bytes, can name. */
static void get_path(struct parser *p, struct kg_str v, char *out)
{
	if (v.s[0] != '/')
		report(p, "%s: '%.*s' is not an absolute path", p->key,
		       (int)v.len, v.s);
	else if (v.len > KG_PATH_MAX)
		report(p, "%s: path is longer than %d bytes", p->key,
		       KG_PATH_MAX);
	else if (!kg_text_ok(v.s, v.len))
		report(p, "%s: path holds a tab or is not valid UTF-8", p->key);
	else
		copy_str(v, out, KG_PATH_MAX + 1);
}

/* True, once reported, when a list already holds max entries. */
static bool list_full(struct parser *p, size_t n, size_t max)
{
	if (n < max)
		return false;
	report(p, "%s: more than %zu entries", p->key, max);
	return true;
}

static struct kg_rule *cur_rule(struct parser *p)
{
	return &p->cfg->rules[p->cfg->n_rules - 1];
}

static void set_listen(struct parser *p, struct kg_str v)
{
	get_path(p, v, p->cfg->listen);
}

/* A leading 0 says octal; four such digits cannot exceed 0777. */
static void set_listen_mode(struct parser *p, struct kg_str v)
{
	bool ok = v.s[0] == '0' && v.len <= 4;
	mode_t m = 0;

	for (size_t i = 0; ok && i < v.len; i++) {
		ok = v.s[i] >= '0' && v.s[i] <= '7';
		if (ok)
			m = m * 8 + (mode_t)(v.s[i] - '0');
	}
	if (!ok) {
		report(p, "%s: '%.*s' is not an octal mode from 00 to 0777",
		       p->key, (int)v.len, v.s);
		return;
	}
	p->cfg->listen_mode = m;
}

/* The instance the current section's keys set: [broker]'s is default. */
static size_t cur_instance(const struct parser *p)
{
	return p->sec == SEC_BROKER ? KG_INSTANCE_DEFAULT
	                            : p->cfg->n_instances - 1;
}

static void set_anvil(struct parser *p, struct kg_str v)
{
	size_t i = cur_instance(p);

	get_path(p, v, p->cfg->instances[i].anvil);
	p->anvil_line[i] = p->line;
}

/* "auto" leaves it to each conversation; a pinned protocol is never
 * guessed, and only 2.4's lets anvil do the kicks. */
static void set_protocol(struct parser *p, struct kg_str v)
{
	enum kg_anvil_proto *out = &p->cfg->instances[cur_instance(p)].protocol;

	if (str_is(v, "auto"))
		*out = KG_PROTO_AUTO;
	else if (str_is(v, "2.3"))
		*out = KG_PROTO_1;
	else if (str_is(v, "2.4"))
		*out = KG_PROTO_2;
	else
		report(p, "%s: '%.*s' is not auto, 2.3 or 2.4", p->key,
		       (int)v.len, v.s);
}

/* Only the name is taken here: whether the account is fit to run the
 * frontend depends on the running system (kg_frontend_account_check). */
static void set_frontend_user(struct parser *p, struct kg_str v)
{
	if (!copy_str(v, p->cfg->frontend_user, sizeof(p->cfg->frontend_user)))
		report(p, "%s: name is longer than %d bytes", p->key,
		       KG_CONF_ACCOUNT_MAX);
	else
		p->cfg->frontend_line = p->line;
}

/* Only the broker's own groups, none of them root's: the group of
 * Dovecot's anvil listener is what it needs. */
static void resolve_broker(struct parser *p, const char *user)
{
	const struct passwd *pw = getpwnam(user);
	struct kg_ids *ids = &p->cfg->broker;
	int n = KG_CONF_MAX_GROUPS;

	if (!pw) {
		report(p, "broker_user: unknown user '%s'", user);
		return;
	}
	*ids = (struct kg_ids){.uid = pw->pw_uid, .gid = pw->pw_gid};
	if (pw->pw_uid == 0)
		return;
	if (getgrouplist(user, pw->pw_gid, ids->groups, &n) < 0) {
		report(p, "broker_user: '%s' is in more than %d groups", user,
		       KG_CONF_MAX_GROUPS);
		return;
	}
	ids->n_groups = (size_t)n;
	for (size_t i = 0; i < ids->n_groups; i++)
		if (ids->groups[i] == 0)
			report(p, "broker_user: '%s' is in group 0", user);
}

static void set_broker_user(struct parser *p, struct kg_str v)
{
	char name[KG_CONF_ACCOUNT_MAX + 1];

	if (!copy_str(v, name, sizeof(name)))
		report(p, "%s: name is longer than %d bytes", p->key,
		       KG_CONF_ACCOUNT_MAX);
	else
		resolve_broker(p, name);
}

static bool service_ok(struct kg_str v)
{
	if (v.len > KG_SERVICE_MAX)
		return false;
	for (size_t i = 0; i < v.len; i++) {
		char c = v.s[i];
		if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
		    c != '-')
			return false;
	}
	return true;
}

static void set_services(struct parser *p, struct kg_str v)
{
	struct kg_config *cfg = p->cfg;
	struct kg_str tok;

	cfg->n_services = 0;
	while (next_token(&v, &tok)) {
		if (!service_ok(tok)) {
			report(p,
			       "%s: bad service name '%.*s' (a-z, 0-9, '-', "
			       "at most %d bytes)",
			       p->key, (int)tok.len, tok.s, KG_SERVICE_MAX);
			continue;
		}
		if (list_full(p, cfg->n_services, KG_CONF_MAX_SERVICES))
			return;
		copy_str(tok, cfg->services[cfg->n_services++],
		         KG_SERVICE_MAX + 1);
	}
}

static void get_uint_to(struct parser *p, struct kg_str v, unsigned int min,
                        unsigned int max, unsigned int *out)
{
	uint64_t n;

	if (get_uint(p, v, min, max, &n))
		*out = (unsigned int)n;
}

static void set_client_timeout(struct parser *p, struct kg_str v)
{
	get_uint_to(p, v, 1, TIMEOUT_MAX, &p->cfg->client_timeout_ms);
}

static void set_anvil_timeout(struct parser *p, struct kg_str v)
{
	get_uint_to(p, v, 1, TIMEOUT_MAX, &p->cfg->anvil_timeout_ms);
}

static void set_kick_confirm(struct parser *p, struct kg_str v)
{
	get_uint_to(p, v, KICK_CONFIRM_MIN, KICK_CONFIRM_MAX,
	            &p->cfg->kick_confirm_ms);
}

static void set_max_conns_per_uid(struct parser *p, struct kg_str v)
{
	get_uint_to(p, v, 1, CONNS_PER_UID_MAX, &p->cfg->max_conns_per_uid);
}

static void set_audit(struct parser *p, struct kg_str v)
{
	if (str_is(v, "syslog"))
		p->cfg->audit = KG_AUDIT_SYSLOG;
	else if (str_is(v, "stderr"))
		p->cfg->audit = KG_AUDIT_STDERR;
	else
		report(p, "%s: '%.*s' is not syslog or stderr", p->key,
		       (int)v.len, v.s);
}

static bool lookup_account(struct parser *p, enum kg_principal_kind kind,
                           const char *name, uint32_t *id)
{
	const struct passwd *pw;
	const struct group *gr;

	if (kind == KG_PRINCIPAL_UID) {
		pw = getpwnam(name);
		if (pw)
			*id = pw->pw_uid;
		else
			report(p, "%s: unknown user '%s'", p->key, name);
		return pw != NULL;
	}
	gr = getgrnam(name);
	if (gr)
		*id = gr->gr_gid;
	else
		report(p, "%s: unknown group '%s'", p->key, name);
	return gr != NULL;
}

/* "user:NAME", "group:NAME", "uid:N" or "gid:N"; names become ids now, so
 * that a renamed account cannot change the policy later. */
static bool get_principal(struct parser *p, struct kg_str tok,
                          struct kg_principal *out)
{
	const char *colon = memchr(tok.s, ':', tok.len);
	struct kg_str kind = {tok.s, colon ? (size_t)(colon - tok.s) : 0};
	struct kg_str arg = {tok.s + kind.len + 1, tok.len - kind.len - 1};
	bool numeric = str_is(kind, "uid") || str_is(kind, "gid");
	char name[KG_CONF_ACCOUNT_MAX + 1];
	uint64_t id;

	if (!colon ||
	    (!numeric && !str_is(kind, "user") && !str_is(kind, "group"))) {
		report(p,
		       "%s: '%.*s' is not user:, group:, uid: or gid:", p->key,
		       (int)tok.len, tok.s);
		return false;
	}
	out->kind = str_is(kind, "user") || str_is(kind, "uid")
	                    ? KG_PRINCIPAL_UID
	                    : KG_PRINCIPAL_GID;
	if (numeric) {
		if (!get_uint(p, arg, 0, ID_MAX, &id))
			return false;
		out->id = (uint32_t)id;
		return true;
	}
	if (arg.len == 0 || !copy_str(arg, name, sizeof(name))) {
		report(p, "%s: '%.*s' needs a name of 1 to %d bytes", p->key,
		       (int)tok.len, tok.s, KG_CONF_ACCOUNT_MAX);
		return false;
	}
	return lookup_account(p, out->kind, name, &out->id);
}

static void set_principals(struct parser *p, struct kg_str v)
{
	struct kg_rule *r = cur_rule(p);
	struct kg_str tok;
	struct kg_principal pr;

	while (next_token(&v, &tok)) {
		if (list_full(p, r->n_principals, KG_CONF_MAX_LIST))
			return;
		if (get_principal(p, tok, &pr))
			r->principals[r->n_principals++] = pr;
	}
}

/* Normalized globs never grow and each token is followed by a blank or
 * the end, so v.len + 1 bytes hold them all with their NULs. */
static void set_users(struct parser *p, struct kg_str v)
{
	struct kg_rule *r = cur_rule(p);
	char out[KG_GLOB_MAX + 1];
	struct kg_str tok;
	size_t used = 0, n;
	enum kg_glob_err e;

	r->n_globs = 0;
	r->all_users = false;
	r->glob_text = malloc(v.len + 1);
	if (!r->glob_text) {
		out_of_memory(p);
		return;
	}
	while (next_token(&v, &tok)) {
		e = kg_glob_normalize(tok.s, tok.len, out, &n);
		if (e != KG_GLOB_OK) {
			report(p, "%s: glob '%.*s' %s", p->key, (int)tok.len,
			       tok.s, kg_glob_strerror(e));
			continue;
		}
		if (list_full(p, r->n_globs, KG_CONF_MAX_LIST))
			return;
		memcpy(r->glob_text + used, out, n + 1);
		r->globs[r->n_globs++] =
		        (struct kg_str){r->glob_text + used, n};
		r->all_users |= n == 1 && out[0] == '*';
		used += n + 1;
	}
}

static bool net_is_all(const struct kg_net *n, uint8_t family)
{
	return n->family == family && n->prefix == 0;
}

static void update_all_nets(struct kg_rule *r)
{
	bool v4 = false, v6 = false;

	for (size_t i = 0; i < r->n_nets; i++) {
		v4 |= net_is_all(&r->nets[i], KG_AF_INET);
		v6 |= net_is_all(&r->nets[i], KG_AF_INET6);
	}
	r->all_nets = v4 && v6;
}

static void set_networks(struct parser *p, struct kg_str v)
{
	struct kg_rule *r = cur_rule(p);
	struct kg_str tok;
	struct kg_net net;
	const char *why;

	r->n_nets = 0;
	while (next_token(&v, &tok)) {
		if (!kg_net_parse(tok.s, tok.len, &net, &why)) {
			report(p, "%s: network '%.*s' %s", p->key, (int)tok.len,
			       tok.s, why);
			continue;
		}
		if (list_full(p, r->n_nets, KG_CONF_MAX_LIST))
			break;
		r->nets[r->n_nets++] = net;
	}
	update_all_nets(r);
}

/* Field names are what Dovecot's userdb calls them (user_tenant); only
 * the characters of a rule's name keep them plain in every message. */
_Static_assert(KG_FIELD_NAME_MAX <= KG_NAME_MAX,
               "kg_name_ok bounds a field name");

/* NAME=VALUE, split at the first '=', which no name holds. */
static bool get_field(struct parser *p, struct kg_str tok, struct kg_str *name,
                      struct kg_str *value)
{
	const char *eq = memchr(tok.s, '=', tok.len);

	if (eq == NULL) {
		report(p, "%s: '%.*s' is not NAME=VALUE", p->key, (int)tok.len,
		       tok.s);
		return false;
	}
	*name = (struct kg_str){tok.s, (size_t)(eq - tok.s)};
	*value = (struct kg_str){eq + 1, tok.len - name->len - 1};
	if (name->len > KG_FIELD_NAME_MAX || !kg_name_ok(name->s, name->len)) {
		report(p,
		       "%s: field name '%.*s' must be 1 to %d of A-Z a-z "
		       "0-9 _ . -",
		       p->key, (int)name->len, name->s, KG_FIELD_NAME_MAX);
		return false;
	}
	if (value->len == 0 || value->len > KG_FIELD_VALUE_MAX ||
	    !kg_text_ok(value->s, value->len)) {
		report(p,
		       "%s: the value of '%.*s' must be 1 to %d bytes of "
		       "UTF-8 text",
		       p->key, (int)name->len, name->s, KG_FIELD_VALUE_MAX);
		return false;
	}
	return true;
}

/* Each token is followed by a blank or the end, so v.len + 1 bytes hold
 * every name and value with a NUL after each (the '=' becomes one). */
static void set_fields(struct parser *p, struct kg_str v)
{
	struct kg_rule *r = cur_rule(p);
	struct kg_str tok, name, value;
	size_t used = 0;

	r->field_text = malloc(v.len + 1);
	if (!r->field_text) {
		out_of_memory(p);
		return;
	}
	while (next_token(&v, &tok)) {
		if (!get_field(p, tok, &name, &value))
			continue;
		if (list_full(p, r->n_fields, KG_CONF_MAX_LIST))
			return;
		memcpy(r->field_text + used, tok.s, tok.len);
		r->field_text[used + name.len] = '\0';
		r->field_text[used + tok.len] = '\0';
		r->fields[r->n_fields++] = (struct kg_field){
		        .name = r->field_text + used,
		        .name_len = name.len,
		        .value = r->field_text + used + name.len + 1,
		        .value_len = value.len};
		used += tok.len + 1;
	}
}

static void set_force(struct parser *p, struct kg_str v)
{
	get_bool(p, v, &cur_rule(p)->force);
}

static void set_by_dest(struct parser *p, struct kg_str v)
{
	get_bool(p, v, &cur_rule(p)->by_dest);
}

static void set_who(struct parser *p, struct kg_str v)
{
	get_bool(p, v, &cur_rule(p)->who);
}

static void get_session_count(struct parser *p, struct kg_str v, uint32_t *out)
{
	uint64_t n;

	if (get_uint(p, v, 0, MAX_SESSIONS_MAX, &n))
		*out = (uint32_t)n;
}

static void set_max_sessions(struct parser *p, struct kg_str v)
{
	get_session_count(p, v, &cur_rule(p)->max_sessions);
}

static void set_max_per_hour(struct parser *p, struct kg_str v)
{
	get_session_count(p, v, &cur_rule(p)->max_sessions_per_hour);
}

/* Instances may be defined after the rule that names them. */
static void set_instances(struct parser *p, struct kg_str v)
{
	struct pending *pd, *grown;

	grown = realloc(p->pending, (p->n_pending + 1) * sizeof(*grown));
	if (!grown) {
		out_of_memory(p);
		return;
	}
	p->pending = grown;
	pd = &p->pending[p->n_pending];
	pd->text = malloc(v.len);
	if (!pd->text) {
		out_of_memory(p);
		return;
	}
	memcpy(pd->text, v.s, v.len);
	pd->len = v.len;
	pd->line = p->line;
	pd->rule = p->cfg->n_rules - 1;
	p->n_pending++;
}

struct key {
	const char *name;
	enum section sec;
	bool required;
	void (*set)(struct parser *p, struct kg_str v);
};

static const struct key keys[] = {
        {"listen", SEC_BROKER, false, set_listen},
        {"listen_mode", SEC_BROKER, false, set_listen_mode},
        {"anvil", SEC_BROKER, false, set_anvil},
        {"protocol", SEC_BROKER, false, set_protocol},
        {"frontend_user", SEC_BROKER, false, set_frontend_user},
        {"broker_user", SEC_BROKER, false, set_broker_user},
        {"services", SEC_BROKER, false, set_services},
        {"client_timeout_ms", SEC_BROKER, false, set_client_timeout},
        {"anvil_timeout_ms", SEC_BROKER, false, set_anvil_timeout},
        {"kick_confirm_ms", SEC_BROKER, false, set_kick_confirm},
        {"max_connections_per_uid", SEC_BROKER, false, set_max_conns_per_uid},
        {"audit", SEC_BROKER, false, set_audit},
        {"anvil", SEC_INSTANCE, true, set_anvil},
        {"protocol", SEC_INSTANCE, false, set_protocol},
        {"principals", SEC_RULE, true, set_principals},
        {"users", SEC_RULE, false, set_users},
        {"networks", SEC_RULE, false, set_networks},
        {"fields", SEC_RULE, false, set_fields},
        {"force", SEC_RULE, false, set_force},
        {"by_dest", SEC_RULE, false, set_by_dest},
        {"max_sessions", SEC_RULE, false, set_max_sessions},
        {"max_sessions_per_hour", SEC_RULE, false, set_max_per_hour},
        {"instances", SEC_RULE, false, set_instances},
        {"who", SEC_RULE, false, set_who},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* parser.seen has a bit per key. */
_Static_assert(N_KEYS <= 32, "more keys than bits in parser.seen");

/* "[broker]", "[instance NAME]" or "[rule NAME]" for messages. */
static const char *sec_label(const struct parser *p, char *buf, size_t cap)
{
	const struct kg_config *cfg = p->cfg;

	if (p->sec == SEC_INSTANCE)
		snprintf(buf, cap, "[instance %s]",
		         cfg->instances[cfg->n_instances - 1].name);
	else if (p->sec == SEC_RULE)
		snprintf(buf, cap, "[rule %s]",
		         cfg->rules[cfg->n_rules - 1].name);
	else
		snprintf(buf, cap, "[broker]");
	return buf;
}

static void end_section(struct parser *p)
{
	char label[KG_CONF_NAME_MAX + 16];

	for (size_t i = 0; i < N_KEYS; i++) {
		if (keys[i].sec == p->sec && keys[i].required &&
		    !(p->seen & (1u << i)))
			report_at(p, p->sec_line,
			          "%s: missing required key '%s'",
			          sec_label(p, label, sizeof(label)),
			          keys[i].name);
	}
}

static bool rule_exists(const struct kg_config *cfg, struct kg_str name)
{
	for (size_t i = 0; i < cfg->n_rules; i++) {
		if (str_is(name, cfg->rules[i].name))
			return true;
	}
	return false;
}

static enum section begin_rule(struct parser *p, struct kg_str name)
{
	struct kg_config *cfg = p->cfg;
	struct kg_rule *r;

	if (rule_exists(cfg, name)) {
		report(p, "duplicate rule '%.*s'", (int)name.len, name.s);
		return SEC_SKIP;
	}
	if (cfg->n_rules == KG_CONF_MAX_RULES) {
		report(p, "more than %d rules", KG_CONF_MAX_RULES);
		return SEC_SKIP;
	}
	if (cfg->n_rules == p->rules_cap) {
		size_t cap = p->rules_cap ? p->rules_cap * 2 : 16;
		r = realloc(cfg->rules, cap * sizeof(*r));
		if (!r) {
			out_of_memory(p);
			return SEC_SKIP;
		}
		cfg->rules = r;
		p->rules_cap = cap;
	}
	r = &cfg->rules[cfg->n_rules++];
	memset(r, 0, sizeof(*r));
	copy_str(name, r->name, sizeof(r->name));
	r->globs[0] = (struct kg_str){"*", 1};
	r->n_globs = 1;
	r->all_users = true;
	r->nets[0] = (struct kg_net){.family = KG_AF_INET};
	r->nets[1] = (struct kg_net){.family = KG_AF_INET6};
	r->n_nets = 2;
	r->all_nets = true;
	r->who = true;
	r->instances[0] = 1u << KG_INSTANCE_DEFAULT;
	return SEC_RULE;
}

static enum section begin_instance(struct parser *p, struct kg_str name)
{
	struct kg_config *cfg = p->cfg;

	if (str_is(name, "default")) {
		report(p, "instance name 'default' is reserved for [broker]'s "
		          "anvil");
		return SEC_SKIP;
	}
	for (size_t i = 0; i < cfg->n_instances; i++) {
		if (str_is(name, cfg->instances[i].name)) {
			report(p, "duplicate instance '%.*s'", (int)name.len,
			       name.s);
			return SEC_SKIP;
		}
	}
	if (cfg->n_instances == KG_CONF_MAX_INSTANCES) {
		report(p, "more than %d instances", KG_CONF_MAX_INSTANCES);
		return SEC_SKIP;
	}
	copy_str(name, cfg->instances[cfg->n_instances++].name,
	         KG_CONF_NAME_MAX + 1);
	return SEC_INSTANCE;
}

static enum section begin_section(struct parser *p, struct kg_str in)
{
	struct kg_str kind = {"", 0}, name = trim(in);

	next_token(&name, &kind);
	name = trim(name);
	if (str_is(kind, "broker") && name.len == 0) {
		if (p->broker_seen) {
			report(p, "duplicate section [broker]");
			return SEC_SKIP;
		}
		p->broker_seen = true;
		return SEC_BROKER;
	}
	if (!str_is(kind, "instance") && !str_is(kind, "rule")) {
		report(p, "unknown section [%.*s]", (int)in.len, in.s);
		return SEC_SKIP;
	}
	if (!kg_name_ok(name.s, name.len)) {
		report(p, "[%.*s]: name must be 1 to %d of A-Z a-z 0-9 _ . -",
		       (int)in.len, in.s, KG_CONF_NAME_MAX);
		return SEC_SKIP;
	}
	return str_is(kind, "rule") ? begin_rule(p, name)
	                            : begin_instance(p, name);
}

static void section_line(struct parser *p, struct kg_str line)
{
	end_section(p);
	p->seen = 0;
	p->sec_line = p->line;
	if (line.s[line.len - 1] != ']') {
		report(p, "section header does not end with ']'");
		p->sec = SEC_SKIP;
		return;
	}
	p->sec = begin_section(p, (struct kg_str){line.s + 1, line.len - 2});
}

static size_t find_key(enum section sec, struct kg_str name)
{
	size_t i;

	for (i = 0; i < N_KEYS; i++) {
		if (keys[i].sec == sec && str_is(name, keys[i].name))
			break;
	}
	return i;
}

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;

	return m < c ? m : c;
}

/* Levenshtein distance, one row at a time; a and b are at most
 * SUGGEST_LEN_MAX bytes. */
static size_t edit_distance(struct kg_str a, const char *b)
{
	size_t row[SUGGEST_LEN_MAX + 1], blen = strlen(b);

	for (size_t j = 0; j <= blen; j++)
		row[j] = j;
	for (size_t i = 1; i <= a.len; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= blen; j++) {
			size_t up = row[j];

			row[j] = min3(up + 1, row[j - 1] + 1,
			              diag + (a.s[i - 1] != b[j - 1]));
			diag = up;
		}
	}
	return row[blen];
}

/* The key of section sec that name most likely misspells, or NULL. */
static const char *nearest_key(enum section sec, struct kg_str name)
{
	const char *best = NULL;
	size_t best_d = SUGGEST_EDITS_MAX + 1;

	if (name.len > SUGGEST_LEN_MAX)
		return NULL;
	for (size_t i = 0; i < N_KEYS; i++) {
		size_t d;

		if (keys[i].sec != sec)
			continue;
		d = edit_distance(name, keys[i].name);
		if (d < best_d && 2 * d < strlen(keys[i].name)) {
			best = keys[i].name;
			best_d = d;
		}
	}
	return best;
}

static void unknown_key(struct parser *p, struct kg_str k)
{
	char label[KG_CONF_NAME_MAX + 16];
	const char *near = nearest_key(p->sec, k);

	sec_label(p, label, sizeof(label));
	if (near != NULL)
		report(p, "unknown key '%.*s' in %s; did you mean '%s'?",
		       (int)k.len, k.s, label, near);
	else
		report(p, "unknown key '%.*s' in %s", (int)k.len, k.s, label);
}

static void key_line(struct parser *p, struct kg_str line)
{
	const char *eq = memchr(line.s, '=', line.len);
	char label[KG_CONF_NAME_MAX + 16];
	struct kg_str k, v;
	size_t i;

	if (!eq) {
		report(p, "expected 'key = value' or a [section] header");
		return;
	}
	k = (struct kg_str){line.s, (size_t)(eq - line.s)};
	v = trim((struct kg_str){eq + 1, line.len - k.len - 1});
	k = trim(k);
	if (p->sec == SEC_NONE) {
		report(p, "key '%.*s' is outside any section", (int)k.len, k.s);
		return;
	}
	if (p->sec == SEC_SKIP)
		return;
	i = find_key(p->sec, k);
	if (i == N_KEYS) {
		unknown_key(p, k);
		return;
	}
	if (p->seen & (1u << i)) {
		report(p, "duplicate key '%s' in %s", keys[i].name,
		       sec_label(p, label, sizeof(label)));
		return;
	}
	p->seen |= 1u << i;
	p->key = keys[i].name;
	if (v.len == 0)
		report(p, "%s: empty value", p->key);
	else
		keys[i].set(p, v);
}

/* A file saved with DOS line endings would otherwise fail on every line
 * with a control byte: one error says what is wrong with the file, and
 * its lines are still read, so that every other error shows too. */
static struct kg_str strip_cr(struct parser *p, struct kg_str line)
{
	if (line.len == 0 || line.s[line.len - 1] != '\r')
		return line;
	if (!p->crlf_reported)
		report(p,
		       "line ends with CR: the file has DOS line endings; "
		       "convert it with sed -i 's/\\r$//' %s",
		       p->name);
	p->crlf_reported = true;
	line.len--;
	return line;
}

/* Only a byte that is not a control byte (TAB aside) may appear, so no
 * value can carry a NUL or a terminal escape into a message or a log. */
static bool line_ok(struct parser *p, struct kg_str line)
{
	if (line.len > KG_CONF_LINE_MAX) {
		report(p, "line is longer than %d bytes", KG_CONF_LINE_MAX);
		return false;
	}
	for (size_t i = 0; i < line.len; i++) {
		unsigned char c = (unsigned char)line.s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			report(p, "control byte 0x%02x in column %zu", c,
			       i + 1);
			return false;
		}
	}
	return true;
}

/* A ';' or '#' after a blank starts a comment, so globs and paths may
 * still contain either character. */
static struct kg_str strip_comment(struct kg_str v)
{
	for (size_t i = 1; i < v.len; i++) {
		if ((v.s[i] == ';' || v.s[i] == '#') && is_blank(v.s[i - 1])) {
			v.len = i;
			break;
		}
	}
	return trim(v);
}

static void parse_line(struct parser *p, struct kg_str line)
{
	line = strip_cr(p, line);
	if (!line_ok(p, line))
		return;
	line = trim(line);
	if (line.len == 0 || line.s[0] == ';' || line.s[0] == '#')
		return;
	line = strip_comment(line);
	if (line.s[0] == '[')
		section_line(p, line);
	else
		key_line(p, line);
}

static int find_instance(const struct kg_config *cfg, struct kg_str name)
{
	for (size_t i = 0; i < cfg->n_instances; i++) {
		if (str_is(name, cfg->instances[i].name))
			return (int)i;
	}
	return -1;
}

static void resolve_pending(struct parser *p, const struct pending *pd)
{
	struct kg_rule *r = &p->cfg->rules[pd->rule];
	struct kg_str v = {pd->text, pd->len}, tok;
	size_t n = 0;
	int i;

	p->line = pd->line;
	p->key = "instances";
	memset(r->instances, 0, sizeof(r->instances));
	while (next_token(&v, &tok)) {
		if (list_full(p, n, KG_CONF_MAX_INSTANCES))
			return;
		n++;
		i = find_instance(p->cfg, tok);
		if (i < 0)
			report(p, "%s: instance '%.*s' is not defined", p->key,
			       (int)tok.len, tok.s);
		else
			r->instances[i / 64] |= UINT64_C(1) << (i % 64);
	}
}

/* One socket for two instances would make the instance a request names
 * depend on the order of the file. */
static void check_anvil_paths(struct parser *p)
{
	const struct kg_config *cfg = p->cfg;

	for (size_t i = 1; i < cfg->n_instances; i++) {
		for (size_t j = 0; j < i; j++) {
			if (!cfg->instances[i].anvil[0] ||
			    strcmp(cfg->instances[i].anvil,
			           cfg->instances[j].anvil) != 0)
				continue;
			report_at(
			        p, p->anvil_line[i],
			        "anvil: '%s' is already the anvil of instance "
			        "'%s'",
			        cfg->instances[i].anvil,
			        cfg->instances[j].name);
			break;
		}
	}
}

static bool names_root(const struct kg_rule *r)
{
	for (size_t i = 0; i < r->n_principals; i++) {
		if (r->principals[i].kind == KG_PRINCIPAL_UID &&
		    r->principals[i].id == 0)
			return true;
	}
	return false;
}

/* Only an instance pinned to 2.4 is sure never to need the broker's own
 * signals: "auto" may meet a 2.3 anvil. */
static bool anvil_kicks_only(const struct kg_config *cfg)
{
	for (size_t i = 0; i < cfg->n_instances; i++) {
		if (cfg->instances[i].protocol != KG_PROTO_2)
			return false;
	}
	return true;
}

static void finish(struct parser *p)
{
	struct kg_config *cfg = p->cfg;

	for (size_t i = 0; i < p->n_pending; i++)
		resolve_pending(p, &p->pending[i]);
	check_anvil_paths(p);
	for (size_t i = 0; i < cfg->n_rules; i++)
		cfg->root_named |= names_root(&cfg->rules[i]);
	cfg->anvil_kicks_only = anvil_kicks_only(cfg);
}

static void parse_all(struct parser *p, const char *buf, size_t len)
{
	size_t off = 0, n;
	const char *nl;

	if (len > KG_CONF_FILE_MAX) {
		report_at(p, 0, "file is larger than %d bytes",
		          KG_CONF_FILE_MAX);
		return;
	}
	while (off < len && !p->oom) {
		nl = memchr(buf + off, '\n', len - off);
		n = nl ? (size_t)(nl - (buf + off)) : len - off;
		p->line++;
		parse_line(p, (struct kg_str){buf + off, n});
		off += n + 1;
	}
	end_section(p);
	if (!p->oom)
		finish(p);
}

static void parser_init(struct parser *p, const char *name,
                        struct kg_config *cfg, FILE *errs)
{
	static const char services[] = "imap pop3 submission managesieve";

	memset(p, 0, sizeof(*p));
	p->name = name;
	p->errs = errs;
	p->cfg = cfg;
	memset(cfg, 0, sizeof(*cfg));
	cfg->instances = calloc(KG_CONF_MAX_INSTANCES, sizeof(*cfg->instances));
	if (!cfg->instances) {
		out_of_memory(p);
		return;
	}
	strcpy(cfg->instances[0].name, "default");
	strcpy(cfg->instances[0].anvil, DEFAULT_ANVIL);
	cfg->n_instances = 1;
	strcpy(cfg->listen, DEFAULT_LISTEN);
	strcpy(cfg->frontend_user, DEFAULT_FRONTEND_USER);
	cfg->listen_mode = 0666;
	p->key = "services";
	set_services(p, (struct kg_str){services, sizeof(services) - 1});
	cfg->client_timeout_ms = 5000;
	cfg->anvil_timeout_ms = 30000;
	cfg->kick_confirm_ms = 2000;
	cfg->max_conns_per_uid = 16;
	cfg->audit = KG_AUDIT_SYSLOG;
}

static int parser_finish(struct parser *p)
{
	for (size_t i = 0; i < p->n_pending; i++)
		free(p->pending[i].text);
	free(p->pending);
	return p->errors;
}

int kg_config_parse_buf(const char *name, const char *buf, size_t len,
                        struct kg_config *cfg, FILE *errs)
{
	struct parser p;

	parser_init(&p, name, cfg, errs);
	if (!p.oom)
		parse_all(&p, buf, len);
	return parser_finish(&p);
}

/* The policy is only as safe as its file: like sudo and sshd, refuse one
 * that anybody but root, or the loader itself, could change. Refused, it
 * is still parsed, so that one run shows everything to fix. */
static void check_trust(struct parser *p, const struct stat *st)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		report_at(p, 0, "file is owned by uid %u, not by root",
		          (unsigned int)st->st_uid);
	if ((st->st_mode & S_IWOTH) ||
	    ((st->st_mode & S_IWGRP) && st->st_gid != 0))
		report_at(p, 0,
		          "file is writable by group or others (mode %04o)",
		          (unsigned int)(st->st_mode & 07777));
}

/* Reads at most one byte past the limit, so a file that grew after
 * fstat is still refused. */
static char *read_all(struct parser *p, int fd, size_t *len)
{
	char *buf = malloc(KG_CONF_FILE_MAX + 1);
	size_t got = 0;
	ssize_t n = 1;

	if (!buf) {
		out_of_memory(p);
		return NULL;
	}
	while (got <= KG_CONF_FILE_MAX && n != 0) {
		n = read(fd, buf + got, KG_CONF_FILE_MAX + 1 - got);
		if (n < 0 && errno != EINTR) {
			report_at(p, 0, "cannot read: %s", strerror(errno));
			break;
		}
		got += n > 0 ? (size_t)n : 0;
	}
	if (n >= 0 && got <= KG_CONF_FILE_MAX) {
		*len = got;
		return buf;
	}
	if (n >= 0)
		report_at(p, 0, "file is larger than %d bytes",
		          KG_CONF_FILE_MAX);
	free(buf);
	return NULL;
}

static char *read_checked(struct parser *p, int fd, const struct stat *st,
                          size_t *len)
{
	check_trust(p, st);
	return read_all(p, fd, len);
}

/* O_NONBLOCK keeps a FIFO put in the file's place from hanging the
 * daemon; it does nothing to a regular file. */
static char *read_file(struct parser *p, size_t *len)
{
	int fd = open(p->name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	char *buf = NULL;

	if (fd < 0 && errno == ENOENT) {
		report_at(p, 0,
		          "cannot open: %s (a commented example is installed "
		          "at %s)",
		          strerror(errno), KG_EXAMPLE_CONFIG);
		return NULL;
	}
	if (fd < 0) {
		report_at(p, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0)
		report_at(p, 0, "cannot stat: %s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		report_at(p, 0, "not a regular file");
	else if (st.st_size > KG_CONF_FILE_MAX)
		report_at(p, 0, "file is larger than %d bytes",
		          KG_CONF_FILE_MAX);
	else
		buf = read_checked(p, fd, &st, len);
	close(fd);
	return buf;
}

int kg_config_load(const char *path, struct kg_config *cfg, FILE *errs)
{
	struct parser p;
	char *buf = NULL;
	size_t len = 0;

	parser_init(&p, path, cfg, errs);
	if (!p.oom)
		buf = read_file(&p, &len);
	if (buf)
		parse_all(&p, buf, len);
	cfg->text = buf;
	cfg->text_len = buf ? len : 0;
	return parser_finish(&p);
}

void kg_config_free(struct kg_config *cfg)
{
	for (size_t i = 0; i < cfg->n_rules; i++) {
		free(cfg->rules[i].glob_text);
		free(cfg->rules[i].field_text);
	}
	free(cfg->rules);
	free(cfg->instances);
	free(cfg->text);
	memset(cfg, 0, sizeof(*cfg));
}

int kg_config_instance_by_path(const struct kg_config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->n_instances; i++) {
		if (strcmp(path, cfg->instances[i].anvil) == 0)
			return (int)i;
	}
	return -1;
}

int kg_config_instance_by_name(const struct kg_config *cfg, const char *name)
{
	return find_instance(cfg, (struct kg_str){name, strlen(name)});
}

bool kg_rule_has_instance(const struct kg_rule *r, int i)
{
	if (i < 0 || i >= KG_CONF_MAX_INSTANCES)
		return false;
	return (r->instances[i / 64] >> (i % 64)) & 1;
}
