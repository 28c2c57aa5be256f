/* SPDX-License-Identifier: MIT */
/* Compact wire format between the CLI, the frontend and the broker.
 *
 * Both sockets are SOCK_SEQPACKET, so a message is one packet.
 *
 * Request (one packet, little-endian, fixed 8-byte header):
 *   u8 version (KG_WIRE_VERSION)  u8 op           u8 flags
 *   u8 net_family (0, 4, 6)       u8 net_prefix   u8 glob_len
 *   u8 path_len                   u8 instance_len
 *   net bytes (0, 4 or 16), glob bytes, path bytes, instance bytes,
 *   u8 field_name_len  u8 field_value_len  u8 dest_family  u8 dest_prefix
 *   field name bytes, field value bytes, dest bytes (0, 4 or 16)
 *
 * Reply: one or more record packets, then one end packet.
 *   record packet: u8 version, u8 KG_PKT_RECORDS, then records
 *                  u8 type, u16 length, payload (at least one record)
 *   end packet:    u8 version, u8 KG_PKT_END, u8 status, u8 flags,
 *                  u32 connections, u32 pids, u32 malformed,
 *                  u32 records, u16 error_len, error text
 *
 * Version 3 added the alternative-username field and the destination
 * network to the request (after the instance), the connection GUID,
 * destination address and alternative usernames to who rows, the
 * REMAINED record, the CONFIRMED end flag and status KG_EXIT_PARTIAL.
 *
 * Version 2 added the instance name and the instances operation, and
 * dropped version 1's count of out-of-scope connections from the end
 * packet: a caller must not learn how many sessions others have.
 *
 * The end packet's record count, which lets a client tell a whole reply
 * from one that lost records, came later without a new version: the end
 * packet's length is exact, so a client and a broker of different
 * layouts reject each other's every reply instead of misreading it.
 *
 * Decoders accept only canonical messages: every field in range, every
 * length exact, reserved bits zero, text free of control bytes. */
#ifndef KG_WIRE_H
#define KG_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/addr.h"
#include "proto/kg_limits.h"

#define KG_WIRE_VERSION 3

enum kg_op { KG_OP_KICK = 1, KG_OP_WHO = 2, KG_OP_INSTANCES = 3 };

/* An alternative username of a connection (Dovecot 2.4), or the one a
 * request or a rule selects on: name and value, neither empty. */
struct kg_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

enum kg_req_flag {
	KG_REQ_FORCE = 1 << 0,    /* kick: -f */
	KG_REQ_DRY_RUN = 1 << 1,  /* kick: -n */
	KG_REQ_SEPARATE = 1 << 2, /* who: -1, one row per connection */
};

struct kg_request {
	uint8_t op;
	uint8_t flags;
	struct kg_net net; /* family KG_AF_NONE: no network given */
	uint8_t glob_len;  /* 0: no glob given */
	char glob[KG_GLOB_MAX + 1];
	/* An instance is named by its anvil path or by its name, or not at
	 * all (the default instance): at most one of the two is given. */
	uint8_t path_len;
	char path[KG_PATH_MAX + 1];
	uint8_t instance_len;
	char instance[KG_NAME_MAX + 1];
	/* --field NAME=VALUE: only connections whose alternative username
	 * NAME is VALUE (name_len 0: not given). */
	uint8_t field_name_len;
	char field_name[KG_FIELD_NAME_MAX + 1];
	uint8_t field_value_len;
	char field_value[KG_FIELD_VALUE_MAX + 1];
	/* -h: only connections proxied to a destination in this network
	 * (family KG_AF_NONE: not given). */
	struct kg_net dest;
};

#define KG_REQ_MAX                                                             \
	(8 + 16 + KG_GLOB_MAX + KG_PATH_MAX + KG_NAME_MAX + 4 +                \
	 KG_FIELD_NAME_MAX + KG_FIELD_VALUE_MAX + 16)

enum kg_wire_err {
	KG_WIRE_OK = 0,
	KG_WIRE_SHORT, /* truncated */
	KG_WIRE_LONG,  /* trailing bytes, or output buffer too small */
	KG_WIRE_VERSION_BAD,
	KG_WIRE_FIELD, /* a field out of range or a reserved bit set */
	KG_WIRE_TEXT,  /* control byte or invalid UTF-8 in text */
};

const char *kg_wire_strerror(enum kg_wire_err e);

/* A request is well-formed when: op known; flags known for that op
 * (force/dry-run only with kick, separate only with who); net and dest
 * canonical; a kick names a glob, a network, a field or a destination;
 * glob text ok; path absolute and text ok; instance a valid name
 * (kg_name_ok); not both path and instance; the field both named and
 * valued, or neither (kg_field_name_ok, kg_field_value_ok); instances
 * carries nothing but its op. Glob normalization is the frontend's job,
 * not the decoder's. */
enum kg_wire_err kg_request_check(const struct kg_request *r);
enum kg_wire_err kg_request_encode(const struct kg_request *r, uint8_t *buf,
                                   size_t cap, size_t *len);
enum kg_wire_err kg_request_decode(const uint8_t *buf, size_t len,
                                   struct kg_request *r);

enum kg_pkt_kind { KG_PKT_RECORDS = 1, KG_PKT_END = 2 };

enum kg_rec_type {
	KG_REC_KICKED = 1,   /* user name kicked (or, dry run, to be kicked) */
	KG_REC_WARN = 2,     /* user name on a shared process: -f needed */
	KG_REC_PID = 3,      /* u32 pid signalled (or to be) */
	KG_REC_REFUSED = 4,  /* u32 pid, u8 reason: verification failed */
	KG_REC_WHO = 5,      /* one who row */
	KG_REC_INSTANCE = 6, /* u8 name_len, name, u8 path_len, anvil path */
	/* Dovecot 2.4: a user some of whose planned connections anvil did
	 * not end (still listed when kickgated looked again). A user record,
	 * like KICKED and WARN: the payload is the name. */
	KG_REC_REMAINED = 7,
};

enum kg_refuse_reason {
	KG_REFUSE_NOT_DOVECOT = 1, /* not a Dovecot mail process */
	KG_REFUSE_GONE = 2,        /* already gone */
	KG_REFUSE_SIGNAL = 3,      /* signal failed */
};
const char *kg_refuse_strerror(uint8_t reason);

/* Who row payload: u32 pid, u32 connections, u8 family, addr bytes,
 * u8 service_len, service, u16 user_len, user, then (version 3) u8
 * has_guid (0 or 1), 16 GUID bytes when 1, u8 dest family, dest bytes,
 * u8 n_fields, and per field u8 name_len, name, u8 value_len, value.
 *
 * A row with a GUID is one connection (conns 1). A row without one
 * (Dovecot 2.3) has no destination and no fields. Addresses are
 * canonical (IPv4-mapped IPv6 as IPv4); fields are at most
 * KG_FIELDS_MAX, each name and value valid as a request's, no name twice
 * in a row. The decoder hands the callback fields from an array of its
 * own, valid during the callback only. */
struct kg_who_row {
	uint32_t pid;
	uint32_t conns;
	struct kg_addr addr;
	const char *service;
	size_t service_len;
	const char *user;
	size_t user_len;
	/* Dovecot 2.4 only: one row per connection, with its GUID. */
	bool has_guid;
	uint8_t guid[16];
	struct kg_addr dest; /* where a proxy sends it; KG_AF_NONE: none */
	const struct kg_field *fields; /* alternative usernames, by name */
	size_t n_fields;               /* 0..KG_FIELDS_MAX */
};

/* One instance the caller may use: name and anvil path, both valid
 * (kg_name_ok; absolute, text ok). */
struct kg_instance_row {
	const char *name;
	size_t name_len;
	const char *path;
	size_t path_len;
};

enum kg_end_flag {
	KG_END_DRY_RUN = 1 << 0,
	KG_END_NEED_FORCE = 1 << 1,
	/* With NEED_FORCE only: the caller's rule does not allow -f. */
	KG_END_FORCE_DENIED = 1 << 2,
	/* The caller may not see every session, so anvil's malformed lines,
	 * which may be anybody's, are not counted for it (malformed 0). */
	KG_END_SCOPED = 1 << 3,
	/* The caller's rule hides sessions (who = no): the reply has no
	 * records, and SCOPED is set too. */
	KG_END_HIDDEN = 1 << 4,
	/* Dovecot 2.4: anvil did the kick, and the counts are what a new
	 * dump showed gone (REMAINED records name who is still there).
	 * Never with DRY_RUN; status KG_EXIT_PARTIAL only with it. */
	KG_END_CONFIRMED = 1 << 5,
};

struct kg_reply_end {
	uint8_t status; /* an enum kg_exit value */
	uint8_t flags;
	uint32_t conns;     /* connections kicked / listed */
	uint32_t pids;      /* processes signalled / listed */
	uint32_t malformed; /* anvil lines skipped as malformed */
	/* Records before the end. kg_rw_end writes the writer's own count,
	 * whatever the caller put here. */
	uint32_t records;
	uint16_t error_len;
	char error[KG_ERRTEXT_MAX + 1];
};

/* Reply writer: batches records into packets of at most KG_PKT_MAX bytes
 * and hands each finished packet to emit (which returns 0 or -1). */
typedef int (*kg_emit_fn)(void *ctx, const uint8_t *pkt, size_t len);

struct kg_reply_writer {
	kg_emit_fn emit;
	void *ctx;
	size_t len;
	int failed;
	uint32_t records;  /* records taken so far */
	uint32_t rejected; /* records refused as invalid or too large */
	uint8_t buf[KG_PKT_MAX];
};

void kg_rw_init(struct kg_reply_writer *w, kg_emit_fn emit, void *ctx);
/* Each returns 0, or -1 once emit has failed (failed is set) or when the
 * record is invalid or does not fit a record (rejected counts it). */
int kg_rw_user(struct kg_reply_writer *w, enum kg_rec_type type,
               const char *name, size_t len);
int kg_rw_pid(struct kg_reply_writer *w, uint32_t pid);
int kg_rw_refused(struct kg_reply_writer *w, uint32_t pid, uint8_t reason);
int kg_rw_who(struct kg_reply_writer *w, const struct kg_who_row *row);
int kg_rw_instance(struct kg_reply_writer *w,
                   const struct kg_instance_row *row);
/* Flushes pending records, then sends the end packet with the number of
 * records taken. */
int kg_rw_end(struct kg_reply_writer *w, const struct kg_reply_end *end);

/* Reply reader callbacks; pointers are valid only during the call. A
 * callback returning non-zero stops decoding with that value. */
struct kg_reply_handler {
	int (*user)(void *ctx, enum kg_rec_type type, const char *name,
	            size_t len);
	int (*pid)(void *ctx, uint32_t pid);
	int (*refused)(void *ctx, uint32_t pid, uint8_t reason);
	int (*who)(void *ctx, const struct kg_who_row *row);
	int (*instance)(void *ctx, const struct kg_instance_row *row);
	int (*end)(void *ctx, const struct kg_reply_end *end);
};

/* Decodes one reply packet. Returns KG_WIRE_OK and sets *is_end for the end
 * packet; any malformation rejects the whole packet before any callback
 * runs. A non-zero callback result is returned through *cb_result. */
enum kg_wire_err kg_reply_decode(const uint8_t *pkt, size_t len,
                                 const struct kg_reply_handler *h, void *ctx,
                                 bool *is_end, int *cb_result);

#endif
