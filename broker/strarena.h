/* SPDX-License-Identifier: MIT */
/* An append-only arena of byte strings, each named by a 32-bit reference.
 *
 * Strings are stored back to back, each after its length, in chunks of
 * 1 MiB that never move: appending costs a copy of the bytes and nothing
 * else, and a kg_str taken from the arena stays valid until
 * kg_strarena_free. */
#ifndef KG_STRARENA_H
#define KG_STRARENA_H

#include <stddef.h>
#include <stdint.h>

#include "proto/kg_limits.h"
#include "proto/str.h"

/* Longest string the arena takes. */
#define KG_STRARENA_LEN_MAX KG_USER_MAX
/* No reference is ever this value: callers may use it for "none". */
#define KG_STRARENA_NONE UINT32_MAX

struct kg_strarena {
	char **chunks;
	size_t n_chunks;
	size_t used; /* bytes used in the last chunk */
};

void kg_strarena_init(struct kg_strarena *a);
/* Copies s[0..len) into the arena and sets *ref. -1 on allocation
 * failure, when len > KG_STRARENA_LEN_MAX, or when the arena is full
 * (4 GiB). */
int kg_strarena_add(struct kg_strarena *a, const char *s, size_t len,
                    uint32_t *ref);
struct kg_str kg_strarena_get(const struct kg_strarena *a, uint32_t ref);
/* Bytewise comparison (unsigned bytes; a proper prefix sorts first). */
int kg_str_cmp(struct kg_str x, struct kg_str y);
void kg_strarena_free(struct kg_strarena *a);

#endif
