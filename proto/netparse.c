/* SPDX-License-Identifier: MIT */
/* Strict network parsing and the classification of a positional
 * argument as user glob or network. */
#include "proto/netparse.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* Longest accepted input. The longest valid text,
 * "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", has 49 bytes. */
#define NET_INPUT_MAX 64

static const char net_chars[] = "0123456789abcdefABCDEF:./";

static bool fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return false;
}

static bool has_byte(const char *s, size_t len, char c)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == c)
			return true;
	}
	return false;
}

/* True when every byte of s[0..len) is in set (a NUL never is). */
static bool only_bytes(const char *s, size_t len, const char *set)
{
	for (size_t i = 0; i < len; i++) {
		if (!has_byte(set, strlen(set), s[i]))
			return false;
	}
	return true;
}

/* Decimal 0..max, no sign, no leading zero. */
static bool parse_prefix(const char *s, size_t len, unsigned max, unsigned *out)
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

/* Fills *out, folding an IPv4-mapped network of at least /96 to IPv4; a
 * shorter one reaches outside the mapped range and stays IPv6. */
static void set_net(struct kg_net *out, uint8_t family, unsigned prefix,
                    const uint8_t bytes[16])
{
	struct kg_addr a;

	kg_addr_set(&a, family, bytes);
	if (a.family != family && prefix >= 96) {
		family = a.family;
		prefix -= 96;
		bytes = a.bytes;
	}
	out->family = family;
	out->prefix = (uint8_t)prefix;
	memcpy(out->bytes, bytes, sizeof(out->bytes));
	kg_net_clear_host(out);
}

bool kg_net_parse(const char *s, size_t len, struct kg_net *out,
                  const char **why)
{
	char text[NET_INPUT_MAX + 1];
	uint8_t bytes[16] = {0};
	size_t alen = 0;
	uint8_t family;
	unsigned bits, prefix;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return fail(why, "is empty");
	if (len > NET_INPUT_MAX)
		return fail(why, "is too long for a network");
	while (alen < len && s[alen] != '/')
		alen++;
	if (has_byte(s, alen, '%') && has_byte(s, alen, ':'))
		return fail(why, "has an IPv6 zone (%...), which a client "
		                 "address never has");
	if (!only_bytes(s, alen, net_chars))
		return fail(why, "contains a byte not allowed in a network");
	memcpy(text, s, alen);
	text[alen] = '\0';
	family = has_byte(text, alen, ':') ? KG_AF_INET6 : KG_AF_INET;
	if (inet_pton(family == KG_AF_INET ? AF_INET : AF_INET6, text, bytes) !=
	    1)
		return fail(why, family == KG_AF_INET
		                         ? "is not a valid IPv4 address"
		                         : "is not a valid IPv6 address");
	bits = (unsigned)kg_family_len(family) * 8;
	prefix = bits;
	if (alen < len &&
	    !parse_prefix(s + alen + 1, len - alen - 1, bits, &prefix))
		return fail(why, "has an invalid prefix length");
	set_net(out, family, prefix, bytes);
	return true;
}

/* The part of s before its first '/' or '%': the address of an ip/bits
 * or ip%zone. */
static size_t address_part(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && s[n] != '/' && s[n] != '%')
		n++;
	return n;
}

/* kickgate(1) states this rule; keep the two in step. An argument looks
 * like a network when its address part is IPv6-like (a colon, and only
 * hexadecimal digits, colons and dots) or IPv4-like (only digits and
 * dots), where an IPv4-like one also needs a dot or a '/' or '%' after
 * it, so that a user named "123" stays a user. */
static bool looks_like_net(const char *s, size_t len)
{
	size_t alen = address_part(s, len);

	if (has_byte(s, alen, ':'))
		return only_bytes(s, alen, net_chars);
	return only_bytes(s, alen, "0123456789.") &&
	       (alen < len || has_byte(s, alen, '.'));
}

enum kg_arg_kind kg_arg_classify(const char *s, size_t len, struct kg_net *net,
                                 const char **why)
{
	if (kg_net_parse(s, len, net, why))
		return KG_ARG_NET;
	return looks_like_net(s, len) ? KG_ARG_BAD_NET : KG_ARG_GLOB;
}
