/* SPDX-License-Identifier: MIT */
/* Recursive descent over RFC 8259's grammar, every production spelled out
 * and nothing accepted beyond it. */
#include "tests/reference/json_reference.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 64

struct parser {
	const unsigned char *s;
	size_t len;
	size_t at;
	int depth;
};

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n > 0 ? n : 1);
	if (p == NULL)
		abort();
	return p;
}

static void skip_ws(struct parser *ps)
{
	while (ps->at < ps->len &&
	       (ps->s[ps->at] == ' ' || ps->s[ps->at] == '\t' ||
	        ps->s[ps->at] == '\n' || ps->s[ps->at] == '\r'))
		ps->at++;
}

static bool eat(struct parser *ps, char c)
{
	skip_ws(ps);
	if (ps->at < ps->len && ps->s[ps->at] == (unsigned char)c) {
		ps->at++;
		return true;
	}
	return false;
}

static bool eat_word(struct parser *ps, const char *w)
{
	size_t n = strlen(w);

	if (ps->len - ps->at < n || memcmp(ps->s + ps->at, w, n) != 0)
		return false;
	ps->at += n;
	return true;
}

static size_t digits(struct parser *ps)
{
	size_t start = ps->at;

	while (ps->at < ps->len && ps->s[ps->at] >= '0' && ps->s[ps->at] <= '9')
		ps->at++;
	return ps->at - start;
}

static bool peek(const struct parser *ps, char c)
{
	return ps->at < ps->len && ps->s[ps->at] == (unsigned char)c;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number(struct parser *ps)
{
	size_t start;

	if (peek(ps, '-'))
		ps->at++;
	start = ps->at;
	if (digits(ps) == 0 || (ps->s[start] == '0' && ps->at - start > 1))
		return false;
	if (peek(ps, '.')) {
		ps->at++;
		if (digits(ps) == 0)
			return false;
	}
	if (peek(ps, 'e') || peek(ps, 'E')) {
		ps->at++;
		if (peek(ps, '+') || peek(ps, '-'))
			ps->at++;
		if (digits(ps) == 0)
			return false;
	}
	return true;
}

/* A UTF-8 character as RFC 3629 defines it; its length, 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
	uint32_t cp, min;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, min = 0x80, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, min = 0x800, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, min = 0x10000, cp = p[0] & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void put_utf8(char **out, size_t *len, uint32_t cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18);
		n = 4;
	}
	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		b[i] = (unsigned char)(0x80 | (cp & 0x3f));
	*out = xrealloc(*out, *len + n);
	memcpy(*out + *len, b, n);
	*len += n;
}

static bool hex4(struct parser *ps, uint32_t *v)
{
	*v = 0;
	if (ps->len - ps->at < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		unsigned char c = ps->s[ps->at++];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			*v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			*v |= c - 'A' + 10;
		else
			return false;
	}
	return true;
}

/* After "\u": one code point, a surrogate pair taken whole. */
static bool unicode_escape(struct parser *ps, uint32_t *cp)
{
	uint32_t lo;

	if (!hex4(ps, cp) || (*cp >= 0xdc00 && *cp <= 0xdfff))
		return false;
	if (*cp < 0xd800 || *cp > 0xdbff)
		return true;
	if (!eat_word(ps, "\\u") || !hex4(ps, &lo) || lo < 0xdc00 ||
	    lo > 0xdfff)
		return false;
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return true;
}

static bool escape(struct parser *ps, char **out, size_t *len)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e;
	uint32_t cp;

	if (ps->at >= ps->len)
		return false;
	if (ps->s[ps->at] == 'u') {
		ps->at++;
		if (!unicode_escape(ps, &cp))
			return false;
		put_utf8(out, len, cp);
		return true;
	}
	e = memchr(from, ps->s[ps->at], sizeof(from) - 1);
	if (e == NULL)
		return false;
	ps->at++;
	put_utf8(out, len, (unsigned char)to[e - from]);
	return true;
}

/* After the opening quote. */
static bool string(struct parser *ps, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	while (ps->at < ps->len && ps->s[ps->at] != '"') {
		size_t n = utf8_len(ps->s + ps->at, ps->len - ps->at);

		if (ps->s[ps->at] == '\\') {
			ps->at++;
			if (!escape(ps, out, len))
				return false;
			continue;
		}
		if (n == 0 || ps->s[ps->at] < 0x20)
			return false;
		*out = xrealloc(*out, *len + n);
		memcpy(*out + *len, ps->s + ps->at, n);
		*len += n;
		ps->at += n;
	}
	if (!peek(ps, '"'))
		return false;
	ps->at++;
	return true;
}

static struct json *value(struct parser *ps);

static bool add_item(struct json *v, struct json *item)
{
	if (item == NULL)
		return false;
	v->items = xrealloc(v->items, (v->n + 1) * sizeof(*v->items));
	v->items[v->n++] = item;
	return true;
}

static bool array(struct parser *ps, struct json *v)
{
	if (eat(ps, ']'))
		return true;
	do {
		if (!add_item(v, value(ps)))
			return false;
	} while (eat(ps, ','));
	return eat(ps, ']');
}

static bool key_known(const struct json *v, const char *key, size_t len)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->key_lens[i] == len && memcmp(v->keys[i], key, len) == 0)
			return true;
	return false;
}

static bool member(struct parser *ps, struct json *v)
{
	struct json *item = NULL;
	char *key = NULL;
	size_t len;

	if (!eat(ps, '"') || !string(ps, &key, &len) ||
	    key_known(v, key, len) || !eat(ps, ':') ||
	    (item = value(ps)) == NULL) {
		free(key);
		return false;
	}
	v->keys = xrealloc(v->keys, (v->n + 1) * sizeof(*v->keys));
	v->key_lens = xrealloc(v->key_lens, (v->n + 1) * sizeof(size_t));
	v->keys[v->n] = key;
	v->key_lens[v->n] = len;
	return add_item(v, item);
}

static bool object(struct parser *ps, struct json *v)
{
	if (eat(ps, '}'))
		return true;
	do {
		if (!member(ps, v))
			return false;
	} while (eat(ps, ','));
	return eat(ps, '}');
}

/* The value's own syntax, after leading whitespace. */
static bool value_body(struct parser *ps, struct json *v)
{
	if (ps->at >= ps->len)
		return false;
	switch (ps->s[ps->at]) {
	case '"':
		ps->at++;
		v->type = JSON_STRING;
		return string(ps, &v->str, &v->len);
	case '[':
		ps->at++;
		v->type = JSON_ARRAY;
		return array(ps, v);
	case '{':
		ps->at++;
		v->type = JSON_OBJECT;
		return object(ps, v);
	case 'n':
		return eat_word(ps, "null");
	case 't':
		v->type = JSON_BOOL;
		return eat_word(ps, "true");
	case 'f':
		v->type = JSON_BOOL;
		return eat_word(ps, "false");
	}
	v->type = JSON_NUMBER;
	return number(ps);
}

static struct json *value(struct parser *ps)
{
	struct json *v = calloc(1, sizeof(*v));
	bool ok;

	if (v == NULL)
		abort();
	skip_ws(ps);
	ok = ++ps->depth <= DEPTH_MAX && value_body(ps, v);
	ps->depth--;
	if (!ok) {
		json_free(v);
		return NULL;
	}
	return v;
}

struct json *json_parse(const char *s, size_t len)
{
	struct parser ps = {(const unsigned char *)s, len, 0, 0};
	struct json *v = value(&ps);

	skip_ws(&ps);
	if (v != NULL && ps.at != len) {
		json_free(v);
		return NULL;
	}
	return v;
}

void json_free(struct json *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		json_free(v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->key_lens);
	free(v->str);
	free(v);
}

const struct json *json_get(const struct json *v, const char *key)
{
	size_t len = strlen(key);

	if (v == NULL || v->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (v->key_lens[i] == len && memcmp(v->keys[i], key, len) == 0)
			return v->items[i];
	return NULL;
}
