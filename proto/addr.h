/* SPDX-License-Identifier: MIT */
/* Addresses and networks: containment and canonical text form. */
#ifndef KG_ADDR_H
#define KG_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kg_family { KG_AF_NONE = 0, KG_AF_INET = 4, KG_AF_INET6 = 6 };

/* A connection's client address. IPv4-mapped IPv6 is always stored as
 * KG_AF_INET. bytes[0..4) or bytes[0..16) are used. */
struct kg_addr {
	uint8_t family;
	uint8_t bytes[16];
};

/* A network: family, prefix length, address with host bits clear. */
struct kg_net {
	uint8_t family;
	uint8_t prefix;
	uint8_t bytes[16];
};

/* Address length in bytes for a family (0 for KG_AF_NONE). */
size_t kg_family_len(uint8_t family);

/* Fills *a from raw bytes; IPv4-mapped IPv6 (::ffff:a.b.c.d) folds to v4. */
void kg_addr_set(struct kg_addr *a, uint8_t family, const uint8_t *bytes);

/* True when a has an address inside n. A connection without an address is
 * in no network. */
bool kg_net_contains(const struct kg_net *n, const struct kg_addr *a);

/* Clears the bits of n->bytes past n->prefix, unused bytes included. */
void kg_net_clear_host(struct kg_net *n);

/* True when n is canonical: known family, prefix within range, host bits
 * clear, unused bytes zero. */
bool kg_net_canonical(const struct kg_net *n);

/* Longest text kg_net_format writes, with its NUL. */
#define KG_NET_STRLEN 64
/* Canonical text: "192.0.2.0/24", "2001:db8::/32". */
void kg_net_format(const struct kg_net *n, char out[KG_NET_STRLEN]);
/* "192.0.2.1", "::1"; "" for no address. */
void kg_addr_format(const struct kg_addr *a, char out[KG_NET_STRLEN]);

#endif
