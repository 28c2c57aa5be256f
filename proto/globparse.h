/* SPDX-License-Identifier: MIT */
/* User glob validation and normalization. */
#ifndef KG_GLOBPARSE_H
#define KG_GLOBPARSE_H

#include <stddef.h>

#include "proto/kg_limits.h"

enum kg_glob_err {
	KG_GLOB_OK = 0,
	KG_GLOB_EMPTY,    /* usage error (64) */
	KG_GLOB_TOO_LONG, /* more than KG_GLOB_MAX bytes, invalid (65) */
	KG_GLOB_BAD_BYTE, /* control byte or invalid UTF-8, invalid (65) */
};

/* Validates in[0..len) and writes the normalized glob (ASCII lowercased,
 * runs of '*' collapsed) NUL-terminated to out; *out_len gets its length.
 * The length limit applies to the input as given. */
enum kg_glob_err kg_glob_normalize(const char *in, size_t len,
                                   char out[KG_GLOB_MAX + 1], size_t *out_len);

/* One-line description of an error, e.g. "contains a control byte". */
const char *kg_glob_strerror(enum kg_glob_err e);

#endif
