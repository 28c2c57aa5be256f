/* SPDX-License-Identifier: MIT */
/* Glob matching: ASCII case-insensitive '*' and '?', no escapes. */
#ifndef KG_GLOB_H
#define KG_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* True when name matches glob. Runs in O(glob_len * name_len) at worst
 * (each star-free piece placed at its leftmost fit), never exponential.
 * '?' matches one byte. */
bool kg_glob_match(const char *glob, size_t glob_len, const char *name,
                   size_t name_len);

#endif
