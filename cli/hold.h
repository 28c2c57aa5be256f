/* SPDX-License-Identifier: MIT */
/* What the kickgate CLI holds of a reply until it can print it: growable
 * byte buffers with a hard bound, and lists of names in them. */
#ifndef KG_CLI_HOLD_H
#define KG_CLI_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most one held buffer may grow to. The broker is trusted, but the
 * CLI bounds what it keeps all the same. */
#define KG_HOLD_MAX ((size_t)64 << 20)

/* A growable byte buffer bounded by KG_HOLD_MAX; all zero is empty. */
struct kg_hold {
	uint8_t *p;
	size_t len;
	size_t cap;
};

/* Room for n more bytes at the end of h (len is not moved), or NULL. */
uint8_t *kg_hold_room(struct kg_hold *h, size_t n);

/* Appends src[0..n); -1 when h cannot grow. */
int kg_hold_add(struct kg_hold *h, const void *src, size_t n);

/* Appends a name of at most KG_USER_MAX bytes: a host-order u16 length,
 * then the bytes. -1 when it is longer or h cannot grow. */
int kg_hold_name(struct kg_hold *h, const char *name, size_t len);

/* Steps *off (from 0) through the names of h; false after the last. */
bool kg_hold_next_name(const struct kg_hold *h, size_t *off, const char **name,
                       size_t *len);

#endif
