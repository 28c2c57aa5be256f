/* SPDX-License-Identifier: MIT */
/* What both anvil protocols write alike: \001 escapes, strict decimals
 * and addresses as doveadm reads them (glibc's inet_pton). */
#ifndef KG_ANVIL_TEXT_H
#define KG_ANVIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/addr.h"

/* Strict decimal: digits only, no sign, no leading zero, 1..max. */
bool kg_anvil_dec(const char *s, size_t len, uint32_t max, uint32_t *out);

/* Undoes anvil's \001 escaping of s into out; returns the unescaped
 * length or -1 on a bad escape. The output is never longer than the
 * input, so out may be s itself. */
ptrdiff_t kg_anvil_unescape(const char *s, size_t len, char *out);

/* The code anvil writes after \001 for byte c, or 0 when c is written
 * as it is. */
char kg_anvil_escape_code(char c);

bool kg_has_nul(const char *s, const char *end);

/* An address as doveadm reads one, by the rules of glibc's inet_pton
 * (AF_INET, then AF_INET6), without a copy. Text that is no address
 * means the connection has none, which is not an error: *a is then left
 * as it was. */
void kg_anvil_parse_addr(const char *s, size_t len, struct kg_addr *a);

/* A line being written as anvil writes it (tests, fuzz properties):
 * once something does not fit, full is set and nothing more is added. */
struct kg_anvil_out {
	char *buf;
	size_t cap;
	size_t len;
	bool full;
};

void kg_anvil_put(struct kg_anvil_out *o, const char *s, size_t n);
void kg_anvil_put_escaped(struct kg_anvil_out *o, const char *s, size_t n);
void kg_anvil_put_dec(struct kg_anvil_out *o, uint32_t v);

#endif
