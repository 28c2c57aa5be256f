/* SPDX-License-Identifier: MIT */
/* Test material for Dovecot 2.4 (anvil protocol 2): CONNECT-DUMP replies
 * captured from a real Dovecot 2.4.1 anvil, byte for byte as doveadm
 * read them, and connections that carry GUIDs. */
#ifndef KG_TESTUTIL24_H
#define KG_TESTUTIL24_H

#include <stddef.h>
#include <stdint.h>

#include "broker/anvil_dump.h"
#include "broker/kick_anvil.h"

/* alice@tenant-a.example's connection GUID in the captures, as anvil
 * writes it. */
#define TU24_GUID_HEX "50b5de0c5a7e116b1620000083ecc375"

/* A captured reply: VERSION, the header, the rows, the empty line. */
struct tu24_capture {
	const char *bytes;
	size_t len;
	size_t rows;
};

/* A shared imap process (8214, client_limit 10) and a pop3 process
 * (8226): foo, bar, baz and jane twice each (bar once in each process),
 * alice@tenant-a.example once; header user_alias, user_tenant. */
extern const struct tu24_capture tu24_shared;
/* The same after "doveadm kick foo 127.0.0.2/32": both of foo's
 * connections went. */
extern const struct tu24_capture tu24_shared_foo_gone;
/* One imap process per connection (client_limit 1). */
extern const struct tu24_capture tu24_single;
/* The header and no connection. */
extern const struct tu24_capture tu24_none;

/* A GUID made from n: its bytes are n's, big-endian, then 0xc3 0x75 and
 * zeros, so that different n give different GUIDs. */
void tu24_guid(uint32_t n, uint8_t guid[16]);

/* A Dovecot 2.4 connection: as tu_conn with a refcount of 1, its GUID
 * tu24_guid(guid), no destination and no fields. */
struct kg_conn tu24_conn(uint32_t pid, const char *service, const char *user,
                         const char *addr, uint32_t guid);

/* Feeds c whole, as protocol 2, to a parser whose rows go to sink; the
 * capture must parse without a malformed line. Returns the rows. */
uint64_t tu24_feed(const struct tu24_capture *c,
                   const struct kg_dump_sink *sink);

/* A stand-in for anvil and its clock (tu24_anvil_ops), which a test
 * scripts and then reads in tu24_anvil. */
#define TU24_ANVIL_CONNS 8
#define TU24_ANSWER_ALL  1000

struct tu24_anvil {
	/* Its dumps: conns[i] is listed by every look before goes[i]
	 * (1-based; 0: by every look), and the looks from fail_from on
	 * fail (0: none does). */
	struct kg_conn conns[TU24_ANVIL_CONNS];
	size_t goes[TU24_ANVIL_CONNS];
	size_t n_conns;
	size_t fail_from;
	/* What kick returns: how many commands were answered, -1 when it
	 * failed, TU24_ANSWER_ALL for all of them. */
	int answer;
	/* What happened: the kick commands, the looks, the pauses. */
	char users[TU24_ANVIL_CONNS][16];
	uint8_t guids[TU24_ANVIL_CONNS][16];
	size_t n_asked;
	size_t looks;
	int64_t now;
	size_t pauses;
	int longest_pause;
};

extern struct tu24_anvil tu24_anvil;
extern const struct kg_anvil_ops tu24_anvil_ops;

/* Forgets everything; anvil will answer every command, and its clock
 * reads now. */
void tu24_anvil_reset(int64_t now);

#endif
