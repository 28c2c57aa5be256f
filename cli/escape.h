/* SPDX-License-Identifier: MIT */
/* How the kickgate CLI shows names that remote users chose: escaped text
 * that cannot forge output and can be pasted back as a glob, and JSON
 * strings that carry the exact bytes. */
#ifndef KG_CLI_ESCAPE_H
#define KG_CLI_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Escaping for text output. Every byte of a hidden character (a control
 * character: C0, DEL or C1; a format character, Unicode category Cf; the
 * line or paragraph separator U+2028, U+2029), of a byte that is not part
 * of valid UTF-8, and a backslash becomes "\xNN"; with KG_ESC_SPACE a
 * space does too, so that a name in a space-separated list stays one
 * item. */
enum kg_esc_flag { KG_ESC_SPACE = 1 << 0 };
/* Longest escaped form of one input byte. */
#define KG_ESC_RATIO 4

/* Writes the escaped form of s[0..len) NUL-terminated to out and returns
 * its length. With cap < KG_ESC_RATIO * len + 1 the output stops at the
 * last whole escaped character that fits. cap must be at least 1. */
size_t kg_cli_escape(char *out, size_t cap, const char *s, size_t len,
                     unsigned flags);

/* Undoes kg_cli_escape: "\xNN" (hex digits in either case) becomes the
 * byte NN, every other byte stands for itself. A backslash that does not
 * start such an escape is an error, so that every text has one meaning.
 * Writes at most len bytes to out (no NUL) and their count to *out_len;
 * false with *at set to the offset of the offending backslash. */
bool kg_cli_unescape(char *out, size_t *out_len, const char *s, size_t len,
                     size_t *at);

/* Writes s[0..len) as a JSON string: valid UTF-8 as it is, except '"' and
 * '\\' (escaped with a backslash) and hidden characters (as "\u" and
 * four hex digits of the code point, a surrogate pair above U+FFFF); each
 * byte that is not part of valid UTF-8 as "\ufffd". */
void kg_json_str(FILE *f, const char *s, size_t len);

/* True when kg_json_str writes s[0..len) without loss: it is valid
 * UTF-8. */
bool kg_json_exact(const char *s, size_t len);

/* Writes s[0..len) as lowercase hexadecimal digits in a JSON string: the
 * exact bytes of a name kg_json_str cannot carry. */
void kg_json_hex(FILE *f, const char *s, size_t len);

#endif
