/* SPDX-License-Identifier: MIT */
/* Escaping of names for the kickgate CLI's text and JSON output, and the
 * CLI's reading of the escaped text back. */
#include "cli/escape.h"

#include <stdint.h>
#include <string.h>

#include "proto/text.h"

static const char hexdigits[] = "0123456789abcdef";

/* Unicode 15.0's format characters (general category Cf, from
 * DerivedGeneralCategory.txt), sorted. They are invisible or change how
 * the text around them is shown: a name holding one can look like
 * another name, or make the line around it read backwards. Spelled out
 * here so that what is escaped does not depend on the locale or the C
 * library's Unicode version. */
static const struct {
	uint32_t lo, hi;
} format_chars[] = {
        {0x00ad, 0x00ad},   {0x0600, 0x0605},   {0x061c, 0x061c},
        {0x06dd, 0x06dd},   {0x070f, 0x070f},   {0x0890, 0x0891},
        {0x08e2, 0x08e2},   {0x180e, 0x180e},   {0x200b, 0x200f},
        {0x202a, 0x202e},   {0x2060, 0x2064},   {0x2066, 0x206f},
        {0xfeff, 0xfeff},   {0xfff9, 0xfffb},   {0x110bd, 0x110bd},
        {0x110cd, 0x110cd}, {0x13430, 0x1343f}, {0x1bca0, 0x1bca3},
        {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f},
};

static bool is_format(uint32_t cp)
{
	size_t lo = 0, hi = sizeof(format_chars) / sizeof(format_chars[0]);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cp < format_chars[mid].lo)
			hi = mid;
		else if (cp > format_chars[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* Characters a terminal does not show as themselves: controls (C0, DEL,
 * C1, which terminals may act on), format characters, and the line and
 * paragraph separators, which break a line where none is. */
static bool is_hidden(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x2028 ||
	       cp == 0x2029 || is_format(cp);
}

enum char_kind { CH_SHOWN, CH_HIDDEN, CH_INVALID };

/* The character at s[0..len): its length in *n, its code point in *cp.
 * A byte that is not part of valid UTF-8 is a character of one byte. */
static enum char_kind char_at(const char *s, size_t len, size_t *n,
                              uint32_t *cp)
{
	*n = kg_utf8_char(s, len, cp);
	if (*n == 0) {
		*n = 1;
		return CH_INVALID;
	}
	return is_hidden(*cp) ? CH_HIDDEN : CH_SHOWN;
}

/* ---------------------------------------------------------------- text */

/* How many bytes from s on are printable ASCII that stands for itself:
 * most names are nothing else, and a run of them is copied at once. */
static size_t plain_ascii_run(const unsigned char *s, size_t len,
                              unsigned flags)
{
	unsigned char first = flags & KG_ESC_SPACE ? '!' : ' ';
	size_t i = 0;

	while (i < len && s[i] >= first && s[i] < 0x7f && s[i] != '\\')
		i++;
	return i;
}

/* Writes the n bytes at s as "\xNN" each. */
static void put_escapes(char *out, const unsigned char *s, size_t n)
{
	for (size_t k = 0; k < n; k++, out += KG_ESC_RATIO) {
		out[0] = '\\';
		out[1] = 'x';
		out[2] = hexdigits[s[k] >> 4];
		out[3] = hexdigits[s[k] & 0xf];
	}
}

/* Escapes the one character at s[0..len) to out[0..room); returns the
 * bytes of s it took in *n and the bytes written, 0 when it does not
 * fit. Escaped whole, so that it is never cut in half. */
static size_t escape_char(char *out, size_t room, const char *s, size_t len,
                          unsigned flags, size_t *n)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t cp;
	bool escape = char_at(s, len, n, &cp) != CH_SHOWN || cp == '\\' ||
	              (cp == ' ' && (flags & KG_ESC_SPACE));
	size_t need = escape ? KG_ESC_RATIO * *n : *n;

	if (need > room)
		return 0;
	if (escape)
		put_escapes(out, u, *n);
	else
		memcpy(out, s, *n);
	return need;
}

size_t kg_cli_escape(char *out, size_t cap, const char *s, size_t len,
                     unsigned flags)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0, i = 0, n, put;

	while (i < len) {
		size_t run = plain_ascii_run(u + i, len - i, flags);

		if (run > 0) {
			/* A run is cut to the room left; one byte stays for
			 * the NUL. */
			n = put = run < cap - o - 1 ? run : cap - o - 1;
			memcpy(out + o, s + i, n);
		} else {
			put = escape_char(out + o, cap - o - 1, s + i, len - i,
			                  flags, &n);
		}
		if (put == 0)
			break;
		o += put;
		i += n;
	}
	out[o] = '\0';
	return o;
}

bool kg_cli_unescape(char *out, size_t *out_len, const char *s, size_t len,
                     size_t *at)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		hi = len - i >= 4 && s[i + 1] == 'x' ? kg_hex_digit(s[i + 2])
		                                     : -1;
		lo = hi >= 0 ? kg_hex_digit(s[i + 3]) : -1;
		if (lo < 0) {
			*at = i;
			return false;
		}
		out[o++] = (char)(hi << 4 | lo);
		i += 3;
	}
	*out_len = o;
	return true;
}

/* ---------------------------------------------------------------- JSON */

/* How many bytes from s on JSON carries as they are, copied at once. */
static size_t json_plain_run(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' &&
	       s[i] != '\\')
		i++;
	return i;
}

/* JSON escapes UTF-16 code units: past U+FFFF, a surrogate pair. */
static void json_u(FILE *f, uint32_t cp)
{
	if (cp > 0xffff) {
		cp -= 0x10000;
		fprintf(f, "\\u%04x\\u%04x", (unsigned)(0xd800 + (cp >> 10)),
		        (unsigned)(0xdc00 + (cp & 0x3ff)));
	} else {
		fprintf(f, "\\u%04x", (unsigned)cp);
	}
}

void kg_json_str(FILE *f, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	fputc('"', f);
	for (size_t i = 0; i < len; i += n) {
		n = json_plain_run(u + i, len - i);
		if (n > 0) {
			fwrite(s + i, 1, n, f);
			continue;
		}
		switch (char_at(s + i, len - i, &n, &cp)) {
		case CH_INVALID:
			fputs("\\ufffd", f);
			break;
		case CH_HIDDEN:
			json_u(f, cp);
			break;
		case CH_SHOWN:
			if (cp == '"' || cp == '\\')
				fputc('\\', f);
			fwrite(s + i, 1, n, f);
			break;
		}
	}
	fputc('"', f);
}

bool kg_json_exact(const char *s, size_t len)
{
	uint32_t cp;
	size_t n;

	for (size_t i = 0; i < len; i += n) {
		n = kg_utf8_char(s + i, len - i, &cp);
		if (n == 0)
			return false;
	}
	return true;
}

void kg_json_hex(FILE *f, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		fputc(hexdigits[u[i] >> 4], f);
		fputc(hexdigits[u[i] & 0xf], f);
	}
	fputc('"', f);
}
