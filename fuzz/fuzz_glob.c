/* SPDX-License-Identifier: MIT */
/* Properties: an accepted glob normalizes to itself again; it matches
 * its own input as a name (each '*' and '?' matches itself, case aside);
 * it matches exactly the names the raw input matches, since lowercasing
 * and collapsing '*' runs keep the meaning; and kg_glob_match agrees with
 * a textbook dynamic-programming matcher on every glob and name. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/glob.h"
#include "proto/globparse.h"
#include "tests/reference/glob_reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Past this, normalization only reports TOO_LONG; keeps runs fast. */
#define INPUT_MAX (4 * KG_GLOB_MAX)

static bool has_wildcard(const char *s, size_t len)
{
	return memchr(s, '*', len) != NULL || memchr(s, '?', len) != NULL;
}

static void check_idempotent(const char *out, size_t out_len)
{
	char again[KG_GLOB_MAX + 1];
	size_t again_len;

	if (kg_glob_normalize(out, out_len, again, &again_len) != KG_GLOB_OK ||
	    again_len != out_len || memcmp(again, out, out_len) != 0)
		abort();
}

static void check_lowercase_input(const char *in, size_t len, const char *out,
                                  size_t out_len)
{
	char lower[KG_GLOB_MAX];

	for (size_t i = 0; i < len; i++)
		lower[i] = in[i] >= 'A' && in[i] <= 'Z'
		                   ? (char)(in[i] - 'A' + 'a')
		                   : in[i];
	if (out_len != len || memcmp(out, lower, len) != 0 ||
	    !kg_glob_match(out, out_len, lower, len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *name = in + size / 2;
	size_t name_len = size - size / 2;
	char out[KG_GLOB_MAX + 1];
	size_t out_len;

	if (size > INPUT_MAX)
		return 0;
	if (kg_glob_normalize(in, size, out, &out_len) != KG_GLOB_OK) {
		if (out_len != 0 || out[0] != '\0')
			abort();
		return 0;
	}
	if (out_len == 0 || out_len > size || strlen(out) != out_len)
		abort();
	check_idempotent(out, out_len);
	if (!kg_glob_match(out, out_len, in, size))
		abort();
	if (!has_wildcard(out, out_len) &&
	    !kg_glob_match(out, out_len, out, out_len))
		abort();
	if (!has_wildcard(in, size))
		check_lowercase_input(in, size, out, out_len);
	if (kg_glob_match(out, out_len, name, name_len) !=
	    kg_glob_match(in, size, name, name_len))
		abort();
	if (kg_glob_match(in, size, name, name_len) !=
	    glob_reference_match(in, size, name, name_len))
		abort();
	return 0;
}
