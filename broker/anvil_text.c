/* SPDX-License-Identifier: MIT */
/* Anvil's text conventions, shared by both protocols' parsers; see
 * anvil_text.h. */
#include "broker/anvil_text.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto/text.h"

/* Strict decimal: digits only, no sign, no leading zero, 1..max. */
bool kg_anvil_dec(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Anvil's escapes: byte esc_raw[i] is written as \001 esc_code[i]. */
static const char esc_raw[] = {'\001', '\t', '\n', '\r', '\0'};
static const char esc_code[] = {'1', 't', 'n', 'r', '0'};
_Static_assert(sizeof(esc_raw) == sizeof(esc_code), "escape tables");

/* Index of c in table, or -1. */
static int esc_find(const char *table, char c)
{
	for (int i = 0; i < (int)sizeof(esc_raw); i++) {
		if (table[i] == c)
			return i;
	}
	return -1;
}

char kg_anvil_escape_code(char c)
{
	int i = esc_find(esc_raw, c);

	return i < 0 ? 0 : esc_code[i];
}

/* Undoes anvil's \001 escaping of s into out; returns the unescaped length
 * or -1 on a bad escape. The output is never longer than the input. */
ptrdiff_t kg_anvil_unescape(const char *s, size_t len, char *out)
{
	const char *end = s + len;
	char *o = out;

	while (s < end) {
		const char *esc = memchr(s, '\001', (size_t)(end - s));
		size_t run = esc ? (size_t)(esc - s) : (size_t)(end - s);
		int i;

		memcpy(o, s, run);
		o += run;
		if (esc == NULL)
			break;
		i = esc + 1 < end ? esc_find(esc_code, esc[1]) : -1;
		if (i < 0)
			return -1;
		*o++ = esc_raw[i];
		s = esc + 2;
	}
	return o - out;
}

bool kg_has_nul(const char *s, const char *end)
{
	return memchr(s, '\0', (size_t)(end - s)) != NULL;
}

/* The address parsers below take exactly what glibc's inet_pton takes,
 * as doveadm reads the address with it; they work on the text in place,
 * which spares a copy, a strlen and a failed IPv4 attempt on every IPv6
 * line. */

/* Four decimal parts of 0..255 without leading zeros. */
static bool parse_ipv4(const char *s, size_t len, uint8_t out[4])
{
	size_t part = 0;
	size_t digits = 0;
	unsigned v = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			if (digits > 0 && v == 0)
				return false;
			v = v * 10 + (unsigned)(s[i] - '0');
			if (v > 255)
				return false;
			digits++;
		} else if (s[i] == '.' && digits > 0 && part < 3) {
			out[part++] = (uint8_t)v;
			v = 0;
			digits = 0;
		} else {
			return false;
		}
	}
	if (part != 3 || digits == 0)
		return false;
	out[3] = (uint8_t)v;
	return true;
}

/* Widens the groups before and after "::" (at gap) to 16 bytes; false when
 * there is nothing to widen, as the text spells out every group. */
static bool fill_gap(uint8_t out[16], size_t gap, size_t n)
{
	if (n == 16)
		return false;
	memmove(out + 16 - (n - gap), out + gap, n - gap);
	memset(out + gap, 0, 16 - n);
	return true;
}

/* Up to eight groups of one to four hex digits, at most one "::" for a
 * run of zero groups, and a dotted quad in place of the last two. */
static bool parse_ipv6(const char *s, size_t len, uint8_t out[16])
{
	const char *end = s + len;
	const char *token;
	size_t n = 0, gap = SIZE_MAX, digits = 0;
	unsigned v = 0;

	if (len == 0 || (s[0] == ':' && (len == 1 || s[1] != ':')))
		return false;
	s += s[0] == ':';
	token = s;
	while (s < end) {
		char ch = *s++;
		int d = kg_hex_digit(ch);

		if (d >= 0) {
			if (digits == 4)
				return false;
			v = v << 4 | (unsigned)d;
			digits++;
		} else if (ch == ':') {
			token = s;
			if (digits == 0) {
				if (gap != SIZE_MAX)
					return false;
				gap = n;
				continue;
			}
			if (s == end || n + 2 > 16)
				return false;
			out[n++] = (uint8_t)(v >> 8);
			out[n++] = (uint8_t)v;
			digits = 0;
			v = 0;
		} else if (ch == '.' && n + 4 <= 16 &&
		           parse_ipv4(token, (size_t)(end - token), out + n)) {
			n += 4;
			digits = 0;
			break;
		} else {
			return false;
		}
	}
	if (digits > 0) {
		if (n + 2 > 16)
			return false;
		out[n++] = (uint8_t)(v >> 8);
		out[n++] = (uint8_t)v;
	}
	if (gap != SIZE_MAX)
		return fill_gap(out, gap, n);
	return n == 16;
}

/* No address text is as long as INET6_ADDRSTRLEN. */
void kg_anvil_parse_addr(const char *s, size_t len, struct kg_addr *a)
{
	uint8_t bytes[16];

	if (len == 0 || len >= INET6_ADDRSTRLEN)
		return;
	if (parse_ipv4(s, len, bytes))
		kg_addr_set(a, KG_AF_INET, bytes);
	else if (parse_ipv6(s, len, bytes))
		kg_addr_set(a, KG_AF_INET6, bytes);
}

void kg_anvil_put(struct kg_anvil_out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

void kg_anvil_put_escaped(struct kg_anvil_out *o, const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		char code = kg_anvil_escape_code(s[k]);

		if (code == 0) {
			kg_anvil_put(o, &s[k], 1);
		} else {
			kg_anvil_put(o, "\001", 1);
			kg_anvil_put(o, &code, 1);
		}
	}
}

void kg_anvil_put_dec(struct kg_anvil_out *o, uint32_t v)
{
	char num[16];
	int n = snprintf(num, sizeof(num), "%" PRIu32, v);

	kg_anvil_put(o, num, (size_t)n);
}
