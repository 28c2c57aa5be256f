/* The audit trail: one line per request, allowed or denied. */
#ifndef KG_AUDIT_H
#define KG_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "str.h"
#include "wire.h"

/* Where lines go; syslog falls back to stderr when no syslog socket
 * exists at start. */
void kg_audit_open(bool to_syslog);

struct kg_audit_rec {
	uid_t uid;
	pid_t pid;
	const char *rule;     /* NULL: none matched */
	const char *instance; /* NULL: not resolved */
	const struct kg_request *req;
	const char *outcome; /* "kicked", "denied", "no-match", ... */
	uint8_t status;
	uint32_t conns;
	const uint32_t *pids;
	size_t n_pids;
	const struct kg_str *users;
	size_t n_users;
};

void kg_audit_write(const struct kg_audit_rec *r);

#endif
