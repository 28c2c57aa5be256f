/* Byte-level checks shared by every parser that accepts text. */
#ifndef KG_TEXT_H
#define KG_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates, at most
 * U+10FFFF) and holds no control byte (0x00-0x1F, 0x7F). */
bool kg_text_ok(const char *s, size_t len);

/* True when s[0..len) is an instance or rule name: 1 to KG_NAME_MAX of
 * A-Z a-z 0-9 _ . - (so never a path, and safe in any message). */
bool kg_name_ok(const char *s, size_t len);

#endif
