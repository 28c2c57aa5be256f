/* SPDX-License-Identifier: MIT */
/* A reply's way to the client's socket. The broker serves one request at
 * a time, so the time it waits for a client to make room on its socket is
 * time every caller behind it waits too: it is bounded per packet and per
 * reply, and a reply the client does not take within them is cut off
 * (SECURITY.md, "Slow readers"). */
#ifndef KG_REPLY_OUT_H
#define KG_REPLY_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest the broker waits for a client to make room for one packet:
 * a client that reads slowly or not at all costs the others this much.
 * A kickgate process reading a listing on a loaded machine was measured
 * at 76 ms at most. */
#define KG_REPLY_STALL_MS 250
/* The longest it waits for one reply in all: this, plus
 * KG_REPLY_WAIT_PACKET_MS for each packet sent, so that a large listing
 * read at a normal pace arrives whole while a client that takes each
 * packet just before KG_REPLY_STALL_MS cannot hold the broker for long. */
#define KG_REPLY_WAIT_MS        500
#define KG_REPLY_WAIT_PACKET_MS 4

struct kg_reply_out {
	int fd;
	uint32_t packets;  /* sent whole */
	int64_t waited_ms; /* spent waiting for room */
	bool stalled;      /* cut off: the time ran out, not the client */
};

void kg_reply_out_init(struct kg_reply_out *o, int fd);

/* kg_emit_fn: sends one packet on o->fd, waiting for room no longer than
 * the limits above allow. Returns 0, or -1 when the client is gone or has
 * not made room in time (stalled set). */
int kg_reply_out_emit(void *ctx, const uint8_t *pkt, size_t len);

#endif
