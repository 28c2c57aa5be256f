/* SPDX-License-Identifier: MIT */
/* A strict RFC 8259 JSON parser that the CLI's JSON output is checked
 * with, by the unit tests and the fuzz harness alike: written for this,
 * so that no library's leniency hides a malformed document. */
#ifndef KG_JSON_REFERENCE_H
#define KG_JSON_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/* One value. A string holds its decoded UTF-8 bytes; an array its items,
 * an object its members' values, with their decoded keys beside them. */
struct json {
	enum json_type type;
	char *str;
	size_t len;
	struct json **items;
	char **keys;
	size_t *key_lens;
	size_t n;
};

/* Parses s[0..len) as exactly one JSON text (surrounding whitespace
 * allowed). Refused, with NULL: any deviation from RFC 8259's grammar,
 * bytes that are not valid UTF-8, a \u escape that leaves a surrogate
 * unpaired, an object with a repeated key, nesting deeper than 64.
 * Aborts when out of memory. */
struct json *json_parse(const char *s, size_t len);
void json_free(struct json *v);

/* The value of key in object v, or NULL. */
const struct json *json_get(const struct json *v, const char *key);

#endif
