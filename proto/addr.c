/* SPDX-License-Identifier: MIT */
/* Address and network containment, canonical form and text output. */
#include "proto/addr.h"

#include <stdio.h>
#include <string.h>

/* ::ffff:0:0/96, the IPv4-mapped range. */
static const uint8_t v4_mapped_prefix[12] = {[10] = 0xff, [11] = 0xff};

size_t kg_family_len(uint8_t family)
{
	switch (family) {
	case KG_AF_INET:
		return 4;
	case KG_AF_INET6:
		return 16;
	default:
		return 0;
	}
}

void kg_addr_set(struct kg_addr *a, uint8_t family, const uint8_t *bytes)
{
	memset(a, 0, sizeof(*a));
	if (family == KG_AF_INET6 &&
	    memcmp(bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
		a->family = KG_AF_INET;
		memcpy(a->bytes, bytes + sizeof(v4_mapped_prefix), 4);
	} else if (kg_family_len(family) != 0) {
		a->family = family;
		memcpy(a->bytes, bytes, kg_family_len(family));
	}
}

/* Network bits of byte i under prefix: 0 to 8. */
static unsigned kept_bits(unsigned prefix, size_t i)
{
	if (prefix <= i * 8)
		return 0;
	return prefix - i * 8 >= 8 ? 8 : (unsigned)(prefix - i * 8);
}

void kg_net_clear_host(struct kg_net *n)
{
	size_t len = kg_family_len(n->family);

	for (size_t i = 0; i < sizeof(n->bytes); i++) {
		unsigned keep = i < len ? kept_bits(n->prefix, i) : 0;

		n->bytes[i] &= (uint8_t)(0xff00u >> keep);
	}
}

bool kg_net_canonical(const struct kg_net *n)
{
	size_t len = kg_family_len(n->family);
	struct kg_net c = *n;

	if (len == 0 || n->prefix > len * 8)
		return false;
	kg_net_clear_host(&c);
	return memcmp(c.bytes, n->bytes, sizeof(n->bytes)) == 0;
}

bool kg_net_contains(const struct kg_net *n, const struct kg_addr *a)
{
	size_t len = kg_family_len(n->family);
	struct kg_net m = {.family = n->family, .prefix = n->prefix};

	if (len == 0 || a->family != n->family || n->prefix > len * 8)
		return false;
	memcpy(m.bytes, a->bytes, len);
	kg_net_clear_host(&m);
	return memcmp(m.bytes, n->bytes, len) == 0;
}

/* The text forms below are exactly inet_ntop's (glibc), written without
 * its sprintf calls: a who listing formats millions of addresses. */

static char *put_v4(char *o, const uint8_t *b)
{
	for (size_t i = 0; i < 4; i++) {
		unsigned v = b[i];

		if (i > 0)
			*o++ = '.';
		if (v >= 100)
			*o++ = (char)('0' + v / 100);
		if (v >= 10)
			*o++ = (char)('0' + v / 10 % 10);
		*o++ = (char)('0' + v % 10);
	}
	*o = '\0';
	return o;
}

static char *put_hex16(char *o, unsigned v)
{
	static const char hex[] = "0123456789abcdef";
	int shift = 12;

	while (shift > 0 && (v >> shift) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		*o++ = hex[(v >> shift) & 0xf];
	return o;
}

/* The longest run of two or more zero groups (the first of equal ones),
 * which RFC 5952 writes as "::"; *len is 0 when there is none. */
static void zero_run(const unsigned w[8], size_t *base, size_t *len)
{
	*base = 0;
	*len = 0;
	for (size_t i = 0; i < 8;) {
		size_t j = i;

		while (j < 8 && w[j] == 0)
			j++;
		if (j - i >= 2 && j - i > *len) {
			*base = i;
			*len = j - i;
		}
		i = j > i ? j : i + 1;
	}
}

static void put_v6(char *o, const uint8_t *b)
{
	unsigned w[8];
	size_t base, len;

	for (size_t i = 0; i < 8; i++)
		w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
	zero_run(w, &base, &len);
	for (size_t i = 0; i < 8; i++) {
		if (len > 0 && i >= base && i < base + len) {
			if (i == base)
				*o++ = ':';
			continue;
		}
		if (i > 0)
			*o++ = ':';
		/* IPv4-compatible (::a.b.c.d) and -mapped (::ffff:a.b.c.d)
		 * addresses end in dotted decimal. */
		if (i == 6 && base == 0 &&
		    (len == 6 || (len == 5 && w[5] == 0xffff))) {
			put_v4(o, b + 12);
			return;
		}
		o = put_hex16(o, w[i]);
	}
	if (len > 0 && base + len == 8)
		*o++ = ':';
	*o = '\0';
}

/* Writes the address text (RFC 5952 for IPv6), "" for an unknown
 * family. */
static void format_bytes(uint8_t family, const uint8_t *bytes,
                         char out[KG_NET_STRLEN])
{
	if (family == KG_AF_INET)
		put_v4(out, bytes);
	else if (family == KG_AF_INET6)
		put_v6(out, bytes);
	else
		out[0] = '\0';
}

void kg_addr_format(const struct kg_addr *a, char out[KG_NET_STRLEN])
{
	format_bytes(a->family, a->bytes, out);
}

void kg_net_format(const struct kg_net *n, char out[KG_NET_STRLEN])
{
	size_t used;

	format_bytes(n->family, n->bytes, out);
	used = strlen(out);
	if (used != 0)
		snprintf(out + used, KG_NET_STRLEN - used, "/%u",
		         (unsigned)n->prefix);
}
