/* SPDX-License-Identifier: MIT */
/* What several unit tests share: the scopes of the planner and who tests,
 * and the building of requests, addresses and connections from text. */
#ifndef KG_TESTUTIL_H
#define KG_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "broker/anvil_dump.h"
#include "policy/scope.h"
#include "proto/wire.h"

/* Every user on every network, and the users of tenant-a.example on
 * every network. */
extern const struct kg_scope tu_scope_all;
extern const struct kg_scope tu_scope_tenant_a;

/* The address of text, a host or a network (its prefix is dropped);
 * NULL gives no address. Text that does not parse fails the test. */
struct kg_addr tu_addr(const char *text);

/* A request of op for glob and net, each NULL when not given. */
struct kg_request tu_request(uint8_t op, const char *glob, const char *net,
                             uint8_t flags);

/* A connection as the anvil dump parser gives it. The strings are not
 * copied; addr is as for tu_addr. */
struct kg_conn tu_conn(uint32_t pid, const char *service, const char *user,
                       const char *addr, uint32_t refcount);

/* Standard error, redirected into a pipe until tu_captured. */
struct tu_capture {
	int saved;
	int rd;
};

/* What is written to stderr from now on is kept (up to a pipe's worth)
 * instead of shown. */
struct tu_capture tu_capture_stderr(void);
/* Restores stderr and copies what was written meanwhile to buf, cut to
 * cap - 1 bytes and NUL-terminated. */
void tu_captured(struct tu_capture c, char *buf, size_t cap);

#endif
