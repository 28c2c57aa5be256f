/* SPDX-License-Identifier: MIT */
/* The kickgate CLI's output: reply packets to doveadm-style text or JSON,
 * names escaped (cli/escape.h) so that hostile ones cannot forge it. */
#ifndef KG_CLI_PRINT_H
#define KG_CLI_PRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/wire.h"

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
