/* SPDX-License-Identifier: MIT */
/* Each piece of the text is cut out first and then read on its own,
 * rather than scanned once as inet_pton does, so that the two readings
 * share no mistake. */
#include "tests/reference/net_reference.h"

#include <stdint.h>
#include <string.h>

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decimal digits only, no leading zero but "0" itself, at most max. */
static bool decimal(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return v <= max;
}

/* Where the next c is in s[from..len), or len. */
static size_t find(const char *s, size_t len, size_t from, char c)
{
	while (from < len && s[from] != c)
		from++;
	return from;
}

static bool ipv4(const char *s, size_t len, uint8_t out[4])
{
	size_t start = 0;

	for (int i = 0; i < 4; i++) {
		size_t end = find(s, len, start, '.');
		unsigned v;

		if ((i < 3) != (end < len) ||
		    !decimal(s + start, end - start, 255, &v))
			return false;
		out[i] = (uint8_t)v;
		start = end + 1;
	}
	return true;
}

static bool hex_group(const char *s, size_t len, uint8_t out[2])
{
	unsigned v = 0;

	if (len == 0 || len > 4)
		return false;
	for (size_t i = 0; i < len; i++) {
		int d = hex_value(s[i]);

		if (d < 0)
			return false;
		v = v << 4 | (unsigned)d;
	}
	out[0] = (uint8_t)(v >> 8);
	out[1] = (uint8_t)v;
	return true;
}

/* Groups separated by single colons, the last one of the address
 * (last set) possibly dotted IPv4; an empty s has none. Returns the
 * number of bytes written to out (at most 16), or -1. */
static int groups(const char *s, size_t len, bool last, uint8_t out[16])
{
	size_t start = 0;
	int n = 0;

	if (len == 0)
		return 0;
	for (int g = 0; g < 8; g++) {
		size_t end = find(s, len, start, ':');
		bool final = end == len;

		if (final && last && memchr(s + start, '.', end - start)) {
			if (n > 12 || !ipv4(s + start, end - start, out + n))
				return -1;
			return n + 4;
		}
		if (!hex_group(s + start, end - start, out + n))
			return -1;
		n += 2;
		if (final)
			return n;
		start = end + 1;
	}
	return -1;
}

/* Where "::" starts in s, or len; -1 when there is more than one. */
static long double_colon(const char *s, size_t len)
{
	long at = -1;

	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] != ':' || s[i + 1] != ':')
			continue;
		if (at >= 0)
			return -1;
		at = (long)i;
	}
	return at < 0 ? (long)len : at;
}

static bool ipv6(const char *s, size_t len, uint8_t out[16])
{
	long dc = double_colon(s, len);
	uint8_t head[16], tail[16];
	int nh, nt;

	if (dc < 0)
		return false;
	if ((size_t)dc == len)
		return groups(s, len, true, out) == 16;
	nh = groups(s, (size_t)dc, false, head);
	nt = groups(s + dc + 2, len - (size_t)dc - 2, true, tail);
	/* "::" is at least one group of zeros. */
	if (nh < 0 || nt < 0 || nh + nt > 14)
		return false;
	memset(out, 0, 16);
	memcpy(out, head, (size_t)nh);
	memcpy(out + 16 - nt, tail, (size_t)nt);
	return true;
}

static bool bit_of(const uint8_t *b, unsigned i)
{
	return (b[i / 8] >> (7 - i % 8)) & 1;
}

static void keep_bits(struct kg_net *n, const uint8_t *bytes, unsigned from)
{
	for (unsigned i = 0; i < n->prefix; i++)
		if (bit_of(bytes + from / 8, i))
			n->bytes[i / 8] |= (uint8_t)(0x80 >> (i % 8));
}

static bool mapped(const uint8_t b[16])
{
	static const uint8_t prefix[12] = {[10] = 0xff, [11] = 0xff};

	return memcmp(b, prefix, sizeof(prefix)) == 0;
}

bool net_reference_parse(const char *s, size_t len, struct kg_net *out)
{
	size_t slash = find(s, len, 0, '/');
	bool v6 = memchr(s, ':', slash) != NULL;
	unsigned width = v6 ? 128 : 32, prefix = width;
	uint8_t bytes[16];

	memset(out, 0, sizeof(*out));
	if (v6 ? !ipv6(s, slash, bytes) : !ipv4(s, slash, bytes))
		return false;
	if (slash < len &&
	    !decimal(s + slash + 1, len - slash - 1, width, &prefix))
		return false;
	if (v6 && prefix >= 96 && mapped(bytes)) {
		out->family = KG_AF_INET;
		out->prefix = (uint8_t)(prefix - 96);
		keep_bits(out, bytes, 96);
		return true;
	}
	out->family = v6 ? KG_AF_INET6 : KG_AF_INET;
	out->prefix = (uint8_t)prefix;
	keep_bits(out, bytes, 0);
	return true;
}

bool net_reference_contains(const struct kg_net *n, const struct kg_addr *a)
{
	unsigned width = n->family == KG_AF_INET    ? 32
	                 : n->family == KG_AF_INET6 ? 128
	                                            : 0;

	if (width == 0 || a->family != n->family || n->prefix > width)
		return false;
	for (unsigned i = 0; i < n->prefix; i++)
		if (bit_of(a->bytes, i) != bit_of(n->bytes, i))
			return false;
	return true;
}
