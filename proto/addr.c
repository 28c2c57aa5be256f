/* Address and network containment, canonical form and text output. */
#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

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

/* Writes the address text, "" for an unknown family. inet_ntop gives the
 * RFC 5952 form for IPv6. */
static void format_bytes(uint8_t family, const uint8_t *bytes,
                         char out[KG_NET_STRLEN])
{
	int af = family == KG_AF_INET ? AF_INET : AF_INET6;

	if (kg_family_len(family) == 0 ||
	    inet_ntop(af, bytes, out, KG_NET_STRLEN) == NULL)
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
