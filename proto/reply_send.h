/* SPDX-License-Identifier: MIT */
/* Sending reply packets on a client socket, shared by the frontend (for
 * requests it rejects) and the broker. */
#ifndef KG_REPLY_SEND_H
#define KG_REPLY_SEND_H

#include <stdint.h>

#include "proto/wire.h"

/* kg_emit_fn for a socket: ctx points to the int fd. */
int kg_send_packet(void *ctx, const uint8_t *pkt, size_t len);

/* Sends a reply that is only an end packet with status and error text
 * (truncated to KG_ERRTEXT_MAX). Returns 0 or -1. */
int kg_reply_error(int fd, uint8_t status, const char *text);

/* Fills end->error from text, truncated to KG_ERRTEXT_MAX bytes. */
void kg_end_set_error(struct kg_reply_end *end, const char *text);

#endif
