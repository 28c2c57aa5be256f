/* SPDX-License-Identifier: MIT */
/* Client side of anvil: CONNECT-DUMP in either protocol, and Dovecot
 * 2.4's KICK-USER.
 *
 * Anvil listens on a UNIX stream socket. In protocol 1 (Dovecot 2.3) the
 * client sends its VERSION line and CONNECT-DUMP together; anvil sends no
 * VERSION line of its own and answers with the dump lines, ending with an
 * empty line, and then keeps the connection open. In protocol 2 (Dovecot
 * 2.4) anvil writes its VERSION line first; the client's VERSION line, an
 * empty line and CONNECT-DUMP get a header line and the dump. The two
 * are not compatible: a 2.4 anvil sent protocol 1 answers with its VERSION
 * line and hangs up, a 2.3 anvil sent protocol 2 hangs up at once; so one
 * conversation tells which one an anvil speaks. The client closes the
 * connection once the empty line is read. */
#ifndef KG_ANVIL_CLIENT_H
#define KG_ANVIL_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "broker/anvil_dump.h"
#include "policy/config.h"

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
	/* Internal to the client: anvil speaks the other protocol. */
	KG_ANVIL_HUNG_UP = -4,
};

/* Which anvil, how long it may take, and in what protocol. */
struct kg_anvil_target {
	const char *path;
	int timeout_ms;
	/* KG_PROTO_1 or KG_PROTO_2: speak only that one; KG_PROTO_AUTO:
	 * start with *spoken (KG_PROTO_1 when auto too) and, when anvil
	 * turns out to speak the other one, ask again in that. */
	uint8_t pinned;
	/* Set to the protocol anvil spoke when a dump succeeds: kept by the
	 * caller per instance, so that the next conversation starts right. */
	uint8_t *spoken;
};

/* Connects to the anvil socket at t->path, asks for the dump and feeds it
 * to p, which is initialised here, and through p to sink (kg_dump_feed).
 * The whole exchange, connect included and a second conversation when the
 * first found the other protocol, ends within t->timeout_ms (> 0).
 * *writer gets the pid of the process that wrote the dump, as the kernel
 * attests it (SCM_CREDENTIALS): Dovecot's anvil process, a child of the
 * running master. 0 when nothing was read.
 *
 * Returns KG_ANVIL_OK with p->lines and p->malformed set; otherwise err
 * holds a one-line reason, e.g. "anvil timed out after N ms", "anvil
 * closed the connection mid-dump", or for KG_ANVIL_UNREACHABLE just
 * "Permission denied". */
enum kg_anvil_status kg_anvil_dump(const struct kg_anvil_target *t,
                                   const struct kg_dump_sink *sink,
                                   struct kg_dump_parser *p, pid_t *writer,
                                   char *err, size_t errlen);

/* One KICK-USER of protocol 2: the user's connections in the process of
 * the connection guid (16 bytes). */
struct kg_anvil_kick {
	const char *user;
	size_t user_len;
	const uint8_t *guid;
};

/* Asks a protocol-2 anvil, the process anvil (the dump's writer, which
 * alone may answer), to kick k[0..n), one command at a time, each
 * answered with a line before the next; *answered counts the answered
 * ones. Anvil's counts are not read: for a shared process they are 0
 * whatever it did, so the caller looks at a new dump instead. The whole
 * exchange ends within t->timeout_ms. */
enum kg_anvil_status kg_anvil_kick(const struct kg_anvil_target *t, pid_t anvil,
                                   const struct kg_anvil_kick *k, size_t n,
                                   size_t *answered, char *err, size_t errlen);

#endif
