/* SPDX-License-Identifier: MIT */
/* Networks read and matched the long way, from kg_net_parse's contract
 * (proto/netparse.h) and RFC 4291's text forms, without inet_pton: what
 * kg_net_parse and kg_net_contains are checked against, by the fuzz
 * harnesses and the unit tests alike. */
#ifndef KG_NET_REFERENCE_H
#define KG_NET_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/addr.h"

/* Reads s[0..len) as ADDRESS or ADDRESS/BITS: IPv4 as four decimal
 * octets without leading zeros, IPv6 as eight groups of one to four hex
 * digits, one "::" standing for at least one zero group, the last two
 * groups possibly an IPv4 address; BITS decimal without a leading zero,
 * at most the family's width. Host bits are cleared, and a network inside
 * ::ffff:0:0/96 becomes the IPv4 network it maps. Fills *out (zeroed
 * first) and returns true, or returns false. */
bool net_reference_parse(const char *s, size_t len, struct kg_net *out);

/* True when a has an address of n's family whose first n->prefix bits are
 * n's, compared bit by bit. */
bool net_reference_contains(const struct kg_net *n, const struct kg_addr *a);

#endif
