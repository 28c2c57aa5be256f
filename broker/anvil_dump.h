/* SPDX-License-Identifier: MIT */
/* Streaming parser for anvil's CONNECT-DUMP reply: the framing both
 * protocols share, and protocol 1's lines (Dovecot 2.3); protocol 2's
 * (Dovecot 2.4) are in anvil_v2.h.
 *
 * Lines are "IDENT\tPID\tREFCOUNT\n", IDENT \001-escaped and either
 * "service/ip/user" or "service/user"; an empty line ends the dump. As in
 * doveadm, when IDENT has a second '/', the part before it is the address
 * (not an address: the connection has none) and the rest, which may hold
 * more '/', is the user name. Every byte is hostile: a malformed line is
 * counted and never fatal, and is never read as a connection; but it still
 * stands for a session somebody has, so the pid it names, when that can be
 * recovered, is reported to the consumer (kg_dump_sink). */
#ifndef KG_ANVIL_DUMP_H
#define KG_ANVIL_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/addr.h"
#include "proto/kg_limits.h"
#include "proto/wire.h"

/* A connection as either protocol's parser reads it (anvil.h): the rest
 * of the broker does not care which Dovecot answered. */
struct kg_conn {
	uint32_t pid;      /* 1..INT_MAX */
	uint32_t refcount; /* >= 1: connections of this ident on this pid */
	struct kg_addr addr;
	const char *service;
	size_t service_len;
	const char *user; /* unescaped; may hold any byte but NUL */
	size_t user_len;
	/* Protocol 2 (Dovecot 2.4) only: one connection per row (refcount
	 * 1), its GUID, where a proxy sends it, and its alternative
	 * usernames with a value, named by the dump's header. */
	bool has_guid;
	uint8_t guid[16];
	struct kg_addr dest;
	const struct kg_field *fields;
	size_t n_fields;
};

enum kg_line_err {
	KG_LINE_OK = 0,
	KG_LINE_FIELDS,   /* not exactly three tab-separated fields */
	KG_LINE_ESCAPE,   /* bad \001 escape */
	KG_LINE_IDENT,    /* no '/', empty or overlong service, empty user */
	KG_LINE_PID,      /* not decimal 1..INT_MAX */
	KG_LINE_REFCOUNT, /* not decimal 1..UINT32_MAX */
	KG_LINE_TOO_LONG, /* over KG_ANVIL_LINE_MAX bytes */
	/* Protocol 2 only. */
	KG_LINE_GUID,    /* not 32 hex digits */
	KG_LINE_FIELD,   /* a value too long or not text */
	KG_LINE_HEADER,  /* bad, repeated or too many field names */
	KG_LINE_VERSION, /* anvil's first line is no protocol-2 VERSION */
};

const char *kg_line_strerror(enum kg_line_err e);

/* Parses one line (without its '\n'). User and service point into
 * scratch, which needs len bytes. */
enum kg_line_err kg_anvil_parse_line(const char *line, size_t len,
                                     struct kg_conn *out, char *scratch);

/* Writes c as a dump line (without '\n') with anvil's escaping; returns the
 * length, or 0 if cap is too small. Used by tests and the fuzz property. */
size_t kg_anvil_format_line(const struct kg_conn *c, char *buf, size_t cap);

typedef int (*kg_conn_fn)(void *ctx, const struct kg_conn *c);
/* A line that could not be parsed: pid and refcount as its last two
 * fields give them ("\tPID\tREFCOUNT", which anvil writes after the
 * ident whatever the ident holds), or both 0 when those fields are not
 * there or not numbers, so that which process it is on is unknown. */
typedef int (*kg_unreadable_fn)(void *ctx, uint32_t pid, uint32_t refcount);

/* Where parsed lines go. unreadable may be NULL: such lines are then only
 * counted. */
struct kg_dump_sink {
	kg_conn_fn conn;
	kg_unreadable_fn unreadable;
	void *ctx;
};

/* The longest "\tPID\tREFCOUNT": both at most 10 digits. */
#define KG_DUMP_TAIL_MAX 22
/* The longest "PID\t" that starts a protocol-2 line. */
#define KG_DUMP_HEAD_MAX 11

struct kg_dump_parser {
	uint8_t proto; /* 1 (Dovecot 2.3) or 2 (2.4): kg_dump_init's */
	size_t len;    /* bytes held in line */
	bool skipping; /* inside an overlong line: drop until '\n' */
	bool done;     /* the empty line was seen, or the dump is over */
	/* Protocol 1: anvil's first line was a protocol-2 VERSION, so it
	 * speaks the other protocol; the dump ends there (done). */
	bool other_proto;
	/* Protocol 2: the VERSION line and then the header were read;
	 * bad_version: the first line was no VERSION (done). */
	bool versioned;
	bool headed;
	bool bad_version;
	size_t n_names;
	char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1];
	struct kg_field fields[KG_FIELDS_MAX]; /* the current row's */
	/* The first bytes of an overlong protocol-2 line: its pid. */
	size_t head_len;
	char head[KG_DUMP_HEAD_MAX];
	uint64_t lines; /* good lines */
	uint64_t malformed;
	enum kg_line_err first_err;
	/* The last bytes of an overlong line, which name its pid. */
	size_t tail_len;
	char tail[KG_DUMP_TAIL_MAX];
	char line[KG_ANVIL_LINE_MAX];
	char scratch[KG_ANVIL_LINE_MAX];
};

/* proto: 1 or 2, the protocol whose reply follows. For 2, the bytes fed
 * start with anvil's VERSION line. */
void kg_dump_init(struct kg_dump_parser *p, uint8_t proto);

/* Feeds bytes as read from anvil. Calls sink->conn for each good line and
 * sink->unreadable for each other one (overlong ones included). Stops at
 * the empty line (p->done); *used tells how much of buf was consumed.
 * Returns 0, or the first non-zero value a callback returned. */
int kg_dump_feed(struct kg_dump_parser *p, const char *buf, size_t len,
                 const struct kg_dump_sink *sink, size_t *used);

#endif
