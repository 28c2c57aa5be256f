/* SPDX-License-Identifier: MIT */
/* User glob validation and normalization. */
#include "proto/globparse.h"

#include "proto/text.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

/* Lowercases ASCII and collapses runs of '*', which match the same names
 * as one '*': equal globs then compare equal as bytes. */
static size_t normalize(const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '*' && o > 0 && out[o - 1] == '*')
			continue;
		out[o++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[o] = '\0';
	return o;
}

enum kg_glob_err kg_glob_normalize(const char *in, size_t len,
                                   char out[KG_GLOB_MAX + 1], size_t *out_len)
{
	enum kg_glob_err err = KG_GLOB_OK;

	if (len == 0)
		err = KG_GLOB_EMPTY;
	else if (len > KG_GLOB_MAX)
		err = KG_GLOB_TOO_LONG;
	else if (!kg_text_ok(in, len))
		err = KG_GLOB_BAD_BYTE;
	if (err != KG_GLOB_OK) {
		out[0] = '\0';
		*out_len = 0;
		return err;
	}
	*out_len = normalize(in, len, out);
	return KG_GLOB_OK;
}

const char *kg_glob_strerror(enum kg_glob_err e)
{
	switch (e) {
	case KG_GLOB_OK:
		return "valid";
	case KG_GLOB_EMPTY:
		return "is empty";
	case KG_GLOB_TOO_LONG:
		return "is longer than " STR(KG_GLOB_MAX) " bytes";
	case KG_GLOB_BAD_BYTE:
		return "contains a control byte or invalid UTF-8";
	}
	return "unknown error";
}
