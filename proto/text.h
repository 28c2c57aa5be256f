/* SPDX-License-Identifier: MIT */
/* Byte-level checks shared by every parser that accepts text. */
#ifndef KG_TEXT_H
#define KG_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 character at s[0..avail) (avail > 0),
 * with its code point in *cp; 0 when the bytes there are none (overlong,
 * surrogate, past U+10FFFF, cut short). Control characters are well
 * formed. */
size_t kg_utf8_char(const char *s, size_t avail, uint32_t *cp);

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates, at most
 * U+10FFFF) and holds no control byte (0x00-0x1F, 0x7F). */
bool kg_text_ok(const char *s, size_t len);

/* True when s[0..len) is an instance or rule name: 1 to KG_NAME_MAX of
 * A-Z a-z 0-9 _ . - (so never a path, and safe in any message). */
bool kg_name_ok(const char *s, size_t len);

/* The value of one hexadecimal digit, either case; -1 for any other
 * character. */
int kg_hex_digit(char c);

#endif
