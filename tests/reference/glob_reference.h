/* SPDX-License-Identifier: MIT */
/* The textbook matcher kg_glob_match is checked against, by the unit
 * tests and the fuzz harness alike. */
#ifndef KG_GLOB_REFERENCE_H
#define KG_GLOB_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

/* True when name matches glob ('*': any run of bytes, '?': one byte,
 * ASCII letters in either case), by dynamic programming over the two
 * lengths: slow, plainly right. Aborts when out of memory. */
bool glob_reference_match(const char *glob, size_t glob_len, const char *name,
                          size_t name_len);

#endif
