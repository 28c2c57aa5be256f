/* SPDX-License-Identifier: MIT */
/* The audit trail: one line per request, allowed or denied. The line's
 * fields are described in kickgated(8), AUDIT. */
#ifndef KG_AUDIT_H
#define KG_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/str.h"
#include "proto/wire.h"

/* Reads the account names the lines will carry, and chooses where lines
 * go: to the syslog socket at syslog_path (authpriv facility), or, when
 * syslog_path is NULL, to standard error. The syslog socket is connected
 * when the first line is written; a line that cannot be sent there goes
 * to standard error instead. Problems are logged. */
void kg_audit_open(const char *syslog_path);

struct kg_audit_rec {
	uid_t uid;
	pid_t pid;
	const char *rule;     /* NULL: none matched */
	const char *instance; /* NULL: not resolved */
	const struct kg_request *req;
	const char *outcome; /* "kicked", "denied", "no-match", ... */
	uint8_t status;
	uint32_t conns;
	uint32_t outside; /* out-of-scope connections that blocked a kick */
	const uint32_t *pids;
	size_t n_pids;
	const struct kg_str *users;
	size_t n_users;
	/* Dovecot 2.4: users with a kicked connection still listed. */
	const struct kg_str *remained;
	size_t n_remained;
	/* NULL: the reply was sent whole; "stalled": cut off, as the client
	 * did not take it in time; "gone": the client went away. */
	const char *reply;
};

void kg_audit_write(const struct kg_audit_rec *r);

#endif
