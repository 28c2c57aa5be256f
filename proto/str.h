/* SPDX-License-Identifier: MIT */
/* A byte string that is not NUL-terminated. */
#ifndef KG_STR_H
#define KG_STR_H

#include <stddef.h>

struct kg_str {
	const char *s;
	size_t len;
};

#endif
