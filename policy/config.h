/* SPDX-License-Identifier: MIT */
/* kickgated.conf: loading and checking. The syntax and every rule is
 * described in kickgated.conf(5). */
#ifndef KG_CONFIG_H
#define KG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "proto/addr.h"
#include "proto/kg_limits.h"
#include "proto/str.h"
#include "proto/wire.h"

#define KG_CONF_FILE_MAX      (1024 * 1024) /* bytes */
#define KG_CONF_LINE_MAX      4096          /* bytes, without the newline */
#define KG_CONF_NAME_MAX      KG_NAME_MAX   /* rule, instance names */
#define KG_CONF_MAX_INSTANCES 256           /* counting "default" */
#define KG_CONF_MAX_RULES     1024
#define KG_CONF_MAX_LIST      64 /* principals, users, networks per rule */
#define KG_CONF_MAX_SERVICES  16
#define KG_CONF_MAX_GROUPS    64  /* supplementary groups of broker_user */
#define KG_CONF_ACCOUNT_MAX   255 /* user and group names given to getpwnam */

/* Index of the [broker] section's anvil in kg_config.instances. */
#define KG_INSTANCE_DEFAULT 0

enum kg_audit { KG_AUDIT_SYSLOG, KG_AUDIT_STDERR };

/* The anvil protocol an instance speaks: 1 is Dovecot 2.3's, 2 is
 * Dovecot 2.4's. Auto finds it out from each conversation (a 2.4 anvil
 * speaks first); a pinned one is never guessed. */
enum kg_anvil_proto {
	KG_PROTO_AUTO = 0,
	KG_PROTO_1 = 1,
	KG_PROTO_2 = 2,
};

struct kg_instance {
	char name[KG_CONF_NAME_MAX + 1];
	char anvil[KG_PATH_MAX + 1];
	enum kg_anvil_proto protocol; /* "protocol = auto | 2.3 | 2.4" */
};

/* The account the broker runs as: uid 0 (the default) keeps root's ids,
 * any other uid comes with its primary gid and its groups. */
struct kg_ids {
	uid_t uid;
	gid_t gid;
	gid_t groups[KG_CONF_MAX_GROUPS];
	size_t n_groups;
};

enum kg_principal_kind { KG_PRINCIPAL_UID, KG_PRINCIPAL_GID };

/* user: and group: names are resolved to ids at load time. */
struct kg_principal {
	enum kg_principal_kind kind;
	uint32_t id;
};

struct kg_rule {
	char name[KG_CONF_NAME_MAX + 1];
	struct kg_principal principals[KG_CONF_MAX_LIST];
	size_t n_principals;
	struct kg_str globs[KG_CONF_MAX_LIST]; /* normalized, NUL-terminated */
	size_t n_globs;
	struct kg_net nets[KG_CONF_MAX_LIST]; /* canonical */
	size_t n_nets;
	bool all_users; /* one glob is "*" */
	bool all_nets;  /* nets hold 0.0.0.0/0 and ::/0 */
	/* "fields = NAME=VALUE ...": Dovecot 2.4 alternative usernames the
	 * rule's sessions must carry (one of them); none: no condition. */
	struct kg_field fields[KG_CONF_MAX_LIST];
	size_t n_fields;
	bool force;
	bool who;
	bool by_dest;                   /* "by_dest = yes": may kick with -h */
	uint32_t max_sessions;          /* 0: unlimited */
	uint32_t max_sessions_per_hour; /* per caller; 0: unlimited */
	/* Bit i set: instance i is allowed. */
	uint64_t instances[KG_CONF_MAX_INSTANCES / 64];
	char *glob_text;  /* owns the bytes globs point to */
	char *field_text; /* owns the bytes fields point to */
};

struct kg_config {
	char listen[KG_PATH_MAX + 1];
	mode_t listen_mode;
	/* frontend_user's name and its line (0: the default); its ids are
	 * set by kg_frontend_account_check, and are 0, which the frontend's
	 * sandbox refuses, until then. */
	char frontend_user[KG_CONF_ACCOUNT_MAX + 1];
	size_t frontend_line;
	uid_t frontend_uid;
	gid_t frontend_gid;
	struct kg_ids broker;
	char services[KG_CONF_MAX_SERVICES][KG_SERVICE_MAX + 1];
	size_t n_services;
	unsigned int client_timeout_ms;
	unsigned int anvil_timeout_ms;
	/* Dovecot 2.4: how long a kick waits for anvil's dump to show the
	 * kicked connections gone. */
	unsigned int kick_confirm_ms;
	/* Connections one uid may have the supervisor hold at once. */
	unsigned int max_conns_per_uid;
	enum kg_audit audit;
	/* Index 0 is "default", the [broker] section's anvil. */
	struct kg_instance *instances;
	size_t n_instances;
	struct kg_rule *rules; /* in file order */
	size_t n_rules;
	/* Every instance is pinned to protocol 2: anvil does every kick,
	 * so the broker needs no capability at all. */
	bool anvil_kicks_only;
	/* Some rule's principals name uid 0, so root gets no blanket
	 * permission. */
	bool root_named;
	/* The file's bytes as kg_config_load read them (NULL from
	 * kg_config_parse_buf): the exec'd broker parses these very bytes,
	 * not the file again, which may have changed since. */
	char *text;
	size_t text_len;
};

/* Reads and checks path. Every problem is written to errs (when not NULL)
 * as one line "FILE:LINE: message", line 0 for the file as a whole. Returns
 * the number of errors; running out of memory counts as one and stops the
 * parse. cfg is usable only when 0 is returned, and must be released with
 * kg_config_free in every case. */
int kg_config_load(const char *path, struct kg_config *cfg, FILE *errs);

/* The same for a buffer already in memory; name stands for the file in
 * messages. */
int kg_config_parse_buf(const char *name, const char *buf, size_t len,
                        struct kg_config *cfg, FILE *errs);

void kg_config_free(struct kg_config *cfg);

/* Instance index by exact anvil path, or -1. */
int kg_config_instance_by_path(const struct kg_config *cfg, const char *path);
/* Instance index by name ("default" is index 0), or -1. */
int kg_config_instance_by_name(const struct kg_config *cfg, const char *name);

/* True when rule r allows instance index i. */
bool kg_rule_has_instance(const struct kg_rule *r, int i);

#endif
