/* SPDX-License-Identifier: MIT */
/* Hard limits and exit codes shared by the CLI, the frontend and the broker. */
#ifndef KG_LIMITS_H
#define KG_LIMITS_H

/* User glob, bytes, after normalization. */
#define KG_GLOB_MAX 255
/* Anvil socket path, bytes, without the NUL: sun_path holds 108 with it. */
#define KG_PATH_MAX 107
/* An instance or rule name: 1 to this many of A-Z a-z 0-9 _ . - */
#define KG_NAME_MAX 64
/* A Dovecot service name in an anvil ident ("imap", "pop3", ...). */
#define KG_SERVICE_MAX 32
/* An anvil dump line longer than this is skipped as malformed. */
#define KG_ANVIL_LINE_MAX 65536
/* Dovecot 2.4's alternative usernames ("user_tenant" = "tenant-a.example"):
 * a field's name, its value, and how many one connection or one request
 * may carry. An anvil row beyond these bounds is malformed. */
#define KG_FIELD_NAME_MAX  64
#define KG_FIELD_VALUE_MAX 255
#define KG_FIELDS_MAX      8
/* A user name in a reply record: an anvil line bounds it anyway. */
#define KG_USER_MAX 65535
/* Error text carried in a reply: room for an anvil path, an instance
 * name, the system's reason and a hint. */
#define KG_ERRTEXT_MAX 511
/* One reply packet; well below the default unix socket send buffer. */
#define KG_PKT_MAX (96 * 1024)

/* Exit codes (sysexits.h values where one fits). */
enum kg_exit {
	KG_EXIT_OK = 0,         /* kicked / listed */
	KG_EXIT_NEED_FORCE = 1, /* nothing kicked: shared process, -f needed */
	KG_EXIT_USAGE = 64,     /* bad command line */
	KG_EXIT_DATAERR = 65,   /* invalid glob or network */
	KG_EXIT_NOMATCH = 68,   /* no matching connection */
	KG_EXIT_UNAVAILABLE = 69, /* broker or anvil unreachable */
	KG_EXIT_SOFTWARE = 70,    /* internal error */
	/* Dovecot 2.4: anvil was asked to kick, and some of the planned
	 * connections were still there when kickgated looked again. */
	KG_EXIT_PARTIAL = 75,
	KG_EXIT_NOPERM = 77, /* denied by policy */
};

#endif
