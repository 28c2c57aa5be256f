/* The kickgate CLI's output: reply packets to doveadm-style text or JSON,
 * and the escaping that keeps hostile user names from forging output. */
#ifndef KG_CLI_PRINT_H
#define KG_CLI_PRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wire.h"

/* Escaping for text output. A byte that is a control byte (C0, DEL, or
 * part of a C1 control character), a backslash, or not part of valid
 * UTF-8 becomes "\xNN"; with KG_ESC_SPACE a space does too, so that a
 * name in a space-separated list stays one item. */
enum kg_esc_flag { KG_ESC_SPACE = 1 << 0 };
/* Longest escaped form of one input byte. */
#define KG_ESC_RATIO 4

/* Writes the escaped form of s[0..len) NUL-terminated to out and returns
 * its length. With cap < KG_ESC_RATIO * len + 1 the output stops at the
 * last whole escape that fits. cap must be at least 1. */
size_t kg_cli_escape(char *out, size_t cap, const char *s, size_t len,
                     unsigned flags);

struct kg_printer;

/* Prints the reply to a request of op (KG_OP_KICK, KG_OP_WHO) with the
 * request flags given: to out as text or, with json, as one JSON document;
 * error lines go to err. Returns NULL on allocation failure. */
struct kg_printer *kg_printer_new(FILE *out, FILE *err, uint8_t op,
                                  uint8_t flags, bool json);
void kg_printer_free(struct kg_printer *p);

/* Pads the columns of who's text output to their widths, as doveadm does,
 * for a person at a terminal; otherwise fields are separated by single
 * spaces. Rows are then held in batches. Call before the first packet;
 * no effect on kick or JSON output. Returns -1 if out of memory. */
int kg_printer_pad(struct kg_printer *p);

/* Callbacks for kg_reply_decode with the printer as ctx. A callback that
 * fails reports the failure itself (as kg_printer_fail) and returns its
 * exit code. */
extern const struct kg_reply_handler kg_printer_handler;

/* Ends the output early: prints "kickgate: msg" to err and, in JSON mode,
 * completes the document with status code and error msg. Returns code. */
int kg_printer_fail(struct kg_printer *p, int code, const char *msg);

/* The exit code: the end packet's status, or the failure's code. */
int kg_printer_status(const struct kg_printer *p);

#endif
