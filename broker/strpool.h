/* SPDX-License-Identifier: MIT */
/* String interning: one copy of each distinct byte string, named by a
 * dense id (0, 1, 2, ... in order of first appearance).
 *
 * The strings live in a kg_strarena, so a kg_str taken from the pool stays
 * valid until kg_strpool_free. Lookup uses
 * a keyed hash (SipHash-1-3 under a random key), so names chosen by remote
 * users cannot be crafted to collide. */
#ifndef KG_STRPOOL_H
#define KG_STRPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "broker/strarena.h"
#include "proto/str.h"

/* Longest string the pool takes. */
#define KG_STRPOOL_LEN_MAX KG_STRARENA_LEN_MAX
/* No id is ever this value: callers may use it for "no string". */
#define KG_STRPOOL_NONE UINT32_MAX

struct kg_strpool;

/* NULL on allocation failure or when no random key can be had. */
struct kg_strpool *kg_strpool_new(void);
void kg_strpool_free(struct kg_strpool *p);

/* Sets *id to the id of s[0..len), adding it if new. -1 on allocation
 * failure or when len > KG_STRPOOL_LEN_MAX. */
int kg_strpool_intern(struct kg_strpool *p, const char *s, size_t len,
                      uint32_t *id);

/* The string of id, an id kg_strpool_intern gave. */
struct kg_str kg_strpool_get(const struct kg_strpool *p, uint32_t id);

#endif
