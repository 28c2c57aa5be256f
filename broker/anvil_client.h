/* SPDX-License-Identifier: MIT */
/* Client side of anvil's CONNECT-DUMP (Dovecot 2.3, protocol 1).
 *
 * Anvil listens on a UNIX stream socket. The client sends its VERSION line
 * and CONNECT-DUMP together; anvil sends no VERSION line of its own on this
 * socket and answers with the dump lines, ending with an empty line, and
 * then keeps the connection open. The client closes it once the empty line
 * is read. */
#ifndef KG_ANVIL_CLIENT_H
#define KG_ANVIL_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "broker/anvil_dump.h"

enum kg_anvil_status {
	KG_ANVIL_OK = 0,
	/* Anvil could not be reached or did not deliver a whole dump in
	 * time: connect failure, timeout, early close, I/O error. */
	KG_ANVIL_FAILED = -1,
	/* A sink callback returned non-zero: the dump was abandoned at that
	 * line. */
	KG_ANVIL_STOPPED = -2,
	/* connect() failed (no such socket, nobody listening, no
	 * permission): err holds only the system's reason, so that the
	 * caller can say which instance and what to check. */
	KG_ANVIL_UNREACHABLE = -3,
};

/* Connects to the anvil socket at path, asks for the dump and feeds it to
 * p, which is initialised here, and through p to sink (kg_dump_feed).
 * The whole exchange, connect included, ends within timeout_ms (> 0).
 * *writer gets the pid of the process that wrote the dump, as the kernel
 * attests it (SCM_CREDENTIALS): Dovecot's anvil process, a child of the
 * running master. 0 when nothing was read.
 *
 * Returns KG_ANVIL_OK with p->lines and p->malformed set; otherwise err
 * holds a one-line reason, e.g. "anvil timed out after N ms", "anvil
 * closed the connection mid-dump", or for KG_ANVIL_UNREACHABLE just
 * "Permission denied". */
enum kg_anvil_status kg_anvil_dump(const char *path, int timeout_ms,
                                   const struct kg_dump_sink *sink,
                                   struct kg_dump_parser *p, pid_t *writer,
                                   char *err, size_t errlen);

#endif
