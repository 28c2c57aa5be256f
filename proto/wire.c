/* SPDX-License-Identifier: MIT */
/* Request and reply (de)serialization: explicit little-endian bytes, never
 * a struct laid over a buffer, so layout and alignment never depend on the
 * compiler. */
#include "proto/wire.h"

#include <string.h>

#include "proto/fieldparse.h"
#include "proto/text.h"

#define REQ_HDR 8
/* After the instance: field_name_len, field_value_len, dest family and
 * prefix. */
#define REQ_TAIL  4
#define PKT_HDR   2
#define REC_HDR   3
#define END_FIXED (PKT_HDR + 2 + 4 * 4 + 2)
/* pid_t is a signed int and the kernel never hands out pid 0. */
#define PID_MAX_WIRE 0x7fffffffu

/* Reading cursor: a read past the end sets short_read and yields zeros, so
 * a parser checks once at the end instead of after every field. */
struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool short_read;
};

static const uint8_t *rd_bytes(struct rd *c, size_t n)
{
	const uint8_t *at;

	if (c->short_read || n > c->len - c->off) {
		c->short_read = true;
		return NULL;
	}
	at = c->p + c->off;
	c->off += n;
	return at;
}

static uint8_t rd_u8(struct rd *c)
{
	const uint8_t *b = rd_bytes(c, 1);

	return b ? b[0] : 0;
}

static uint16_t rd_u16(struct rd *c)
{
	const uint8_t *b = rd_bytes(c, 2);

	return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}

static uint32_t rd_u32(struct rd *c)
{
	const uint8_t *b = rd_bytes(c, 4);

	if (b == NULL)
		return 0;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

/* A message or payload must be consumed exactly. */
static enum kg_wire_err rd_finish(const struct rd *c)
{
	if (c->short_read)
		return KG_WIRE_SHORT;
	return c->off == c->len ? KG_WIRE_OK : KG_WIRE_LONG;
}

/* Writers: the caller has already checked the room. */
static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
	p[0] = v;
	return p + 1;
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
	return p + 4;
}

static uint8_t *put_bytes(uint8_t *p, const void *s, size_t n)
{
	if (n > 0)
		memcpy(p, s, n);
	return p + n;
}

/* Compares through size_t so the check stays meaningful (and warning-free)
 * whatever width the length field has. */
static bool len_within(size_t len, size_t max)
{
	return len <= max;
}

static bool has_nul(const char *s, size_t len)
{
	return len > 0 && memchr(s, '\0', len) != NULL;
}

static bool family_known(uint8_t family)
{
	return family == KG_AF_NONE || family == KG_AF_INET ||
	       family == KG_AF_INET6;
}

/* The first byte of every message is the version: checked before the
 * length so that a peer speaking another version learns so. */
static enum kg_wire_err version_check(const uint8_t *buf, size_t len,
                                      size_t hdr)
{
	if (len == 0)
		return KG_WIRE_SHORT;
	if (buf[0] != KG_WIRE_VERSION)
		return KG_WIRE_VERSION_BAD;
	return len < hdr ? KG_WIRE_SHORT : KG_WIRE_OK;
}

const char *kg_wire_strerror(enum kg_wire_err e)
{
	switch (e) {
	case KG_WIRE_OK:
		return "ok";
	case KG_WIRE_SHORT:
		return "truncated";
	case KG_WIRE_LONG:
		return "trailing bytes";
	case KG_WIRE_VERSION_BAD:
		return "unsupported version";
	case KG_WIRE_FIELD:
		return "field out of range";
	case KG_WIRE_TEXT:
		return "invalid text";
	}
	return "unknown error";
}

const char *kg_refuse_strerror(uint8_t reason)
{
	switch (reason) {
	case KG_REFUSE_NOT_DOVECOT:
		return "not a Dovecot mail process";
	case KG_REFUSE_GONE:
		return "already gone";
	case KG_REFUSE_SIGNAL:
		return "signal failed";
	}
	return "unknown reason";
}

/* ------------------------------------------------------------ requests */

/* kg_net_canonical knows only real networks; "no network" is canonical
 * when every other field is zero. */
static bool req_net_ok(const struct kg_net *n)
{
	static const struct kg_net none;

	if (n->family == KG_AF_NONE)
		return memcmp(n, &none, sizeof(none)) == 0;
	return kg_net_canonical(n);
}

static enum kg_wire_err req_flags_check(const struct kg_request *r)
{
	uint8_t allowed;

	switch (r->op) {
	case KG_OP_KICK:
		allowed = KG_REQ_FORCE | KG_REQ_DRY_RUN;
		break;
	case KG_OP_WHO:
		allowed = KG_REQ_SEPARATE;
		break;
	case KG_OP_INSTANCES:
		allowed = 0;
		break;
	default:
		return KG_WIRE_FIELD;
	}
	return (r->flags & ~allowed) == 0 ? KG_WIRE_OK : KG_WIRE_FIELD;
}

/* An alternative username, of a request or a who row: lengths first, as
 * they bound the text. */
static enum kg_wire_err field_check(const char *name, size_t name_len,
                                    const char *value, size_t value_len)
{
	if (name_len == 0 || !len_within(name_len, KG_FIELD_NAME_MAX) ||
	    value_len == 0 || !len_within(value_len, KG_FIELD_VALUE_MAX))
		return KG_WIRE_FIELD;
	if (!kg_field_name_ok(name, name_len) ||
	    !kg_field_value_ok(value, value_len))
		return KG_WIRE_TEXT;
	return KG_WIRE_OK;
}

/* The request's field: both halves or neither. */
static enum kg_wire_err req_field_check(const struct kg_request *r)
{
	if (r->field_name_len == 0 && r->field_value_len == 0)
		return KG_WIRE_OK;
	return field_check(r->field_name, r->field_name_len, r->field_value,
	                   r->field_value_len);
}

/* Which parts each op may carry: a kick needs something to select on;
 * the instances listing takes nothing at all. */
static bool req_parts_ok(const struct kg_request *r)
{
	bool selects = r->glob_len > 0 || r->net.family != KG_AF_NONE ||
	               r->field_name_len > 0 || r->field_value_len > 0 ||
	               r->dest.family != KG_AF_NONE;

	if (r->path_len > 0 && r->instance_len > 0)
		return false;
	if (r->op == KG_OP_KICK)
		return selects;
	if (r->op == KG_OP_INSTANCES)
		return !selects && r->path_len == 0 && r->instance_len == 0;
	return true;
}

enum kg_wire_err kg_request_check(const struct kg_request *r)
{
	enum kg_wire_err e = req_flags_check(r);

	if (e != KG_WIRE_OK)
		return e;
	if (!req_net_ok(&r->net) || !req_net_ok(&r->dest) || !req_parts_ok(r))
		return KG_WIRE_FIELD;
	if (!len_within(r->glob_len, KG_GLOB_MAX) ||
	    !len_within(r->path_len, KG_PATH_MAX) ||
	    !len_within(r->instance_len, KG_NAME_MAX))
		return KG_WIRE_FIELD;
	if (!kg_text_ok(r->glob, r->glob_len) ||
	    !kg_text_ok(r->path, r->path_len))
		return KG_WIRE_TEXT;
	if (r->path_len > 0 && r->path[0] != '/')
		return KG_WIRE_FIELD;
	if (r->instance_len > 0 && !kg_name_ok(r->instance, r->instance_len))
		return KG_WIRE_TEXT;
	return req_field_check(r);
}

enum kg_wire_err kg_request_encode(const struct kg_request *r, uint8_t *buf,
                                   size_t cap, size_t *len)
{
	enum kg_wire_err e = kg_request_check(r);
	size_t net_len, dest_len, need;
	uint8_t *p = buf;

	if (e != KG_WIRE_OK)
		return e;
	net_len = kg_family_len(r->net.family);
	dest_len = kg_family_len(r->dest.family);
	need = REQ_HDR + net_len + r->glob_len + r->path_len + r->instance_len +
	       REQ_TAIL + r->field_name_len + r->field_value_len + dest_len;
	if (cap < need)
		return KG_WIRE_LONG;
	p = put_u8(p, KG_WIRE_VERSION);
	p = put_u8(p, r->op);
	p = put_u8(p, r->flags);
	p = put_u8(p, r->net.family);
	p = put_u8(p, r->net.prefix);
	p = put_u8(p, r->glob_len);
	p = put_u8(p, r->path_len);
	p = put_u8(p, r->instance_len);
	p = put_bytes(p, r->net.bytes, net_len);
	p = put_bytes(p, r->glob, r->glob_len);
	p = put_bytes(p, r->path, r->path_len);
	p = put_bytes(p, r->instance, r->instance_len);
	p = put_u8(p, r->field_name_len);
	p = put_u8(p, r->field_value_len);
	p = put_u8(p, r->dest.family);
	p = put_u8(p, r->dest.prefix);
	p = put_bytes(p, r->field_name, r->field_name_len);
	p = put_bytes(p, r->field_value, r->field_value_len);
	put_bytes(p, r->dest.bytes, dest_len);
	*len = need;
	return KG_WIRE_OK;
}

/* Where each variable part of a request lies in the message. */
struct req_parts {
	const uint8_t *net, *glob, *path, *instance, *name, *value, *dest;
};

/* Reads the lengths that size the parts and then the parts, checking
 * each length before it sizes a read or a copy. */
static enum kg_wire_err req_read(struct rd *c, struct kg_request *r,
                                 struct req_parts *at)
{
	r->op = rd_u8(c);
	r->flags = rd_u8(c);
	r->net.family = rd_u8(c);
	r->net.prefix = rd_u8(c);
	r->glob_len = rd_u8(c);
	r->path_len = rd_u8(c);
	r->instance_len = rd_u8(c);
	if (!family_known(r->net.family) ||
	    !len_within(r->path_len, KG_PATH_MAX) ||
	    !len_within(r->instance_len, KG_NAME_MAX))
		return KG_WIRE_FIELD;
	at->net = rd_bytes(c, kg_family_len(r->net.family));
	at->glob = rd_bytes(c, r->glob_len);
	at->path = rd_bytes(c, r->path_len);
	at->instance = rd_bytes(c, r->instance_len);
	r->field_name_len = rd_u8(c);
	r->field_value_len = rd_u8(c);
	r->dest.family = rd_u8(c);
	r->dest.prefix = rd_u8(c);
	if (!family_known(r->dest.family) ||
	    !len_within(r->field_name_len, KG_FIELD_NAME_MAX))
		return KG_WIRE_FIELD;
	at->name = rd_bytes(c, r->field_name_len);
	at->value = rd_bytes(c, r->field_value_len);
	at->dest = rd_bytes(c, kg_family_len(r->dest.family));
	return rd_finish(c);
}

enum kg_wire_err kg_request_decode(const uint8_t *buf, size_t len,
                                   struct kg_request *r)
{
	enum kg_wire_err e = version_check(buf, len, REQ_HDR);
	struct rd c = {.p = buf, .len = len, .off = 1};
	struct req_parts at;

	if (e != KG_WIRE_OK)
		return e;
	memset(r, 0, sizeof(*r));
	e = req_read(&c, r, &at);
	if (e != KG_WIRE_OK)
		return e;
	put_bytes(r->net.bytes, at.net, kg_family_len(r->net.family));
	put_bytes((uint8_t *)r->glob, at.glob, r->glob_len);
	put_bytes((uint8_t *)r->path, at.path, r->path_len);
	put_bytes((uint8_t *)r->instance, at.instance, r->instance_len);
	put_bytes((uint8_t *)r->field_name, at.name, r->field_name_len);
	put_bytes((uint8_t *)r->field_value, at.value, r->field_value_len);
	put_bytes(r->dest.bytes, at.dest, kg_family_len(r->dest.family));
	return kg_request_check(r);
}

/* ------------------------------------------------------ reply payloads */

static enum kg_wire_err pid_check(uint32_t pid)
{
	return pid != 0 && pid <= PID_MAX_WIRE ? KG_WIRE_OK : KG_WIRE_FIELD;
}

/* User names are any bytes but NUL: anvil reports what remote users sent,
 * and the CLI escapes it for display. */
static enum kg_wire_err name_check(const char *name, size_t len)
{
	if (!len_within(len, KG_USER_MAX))
		return KG_WIRE_FIELD;
	return has_nul(name, len) ? KG_WIRE_TEXT : KG_WIRE_OK;
}

static enum kg_wire_err refused_check(uint32_t pid, uint8_t reason)
{
	if (reason < KG_REFUSE_NOT_DOVECOT || reason > KG_REFUSE_SIGNAL)
		return KG_WIRE_FIELD;
	return pid_check(pid);
}

/* An IPv4-mapped IPv6 address must travel as IPv4, as kg_addr stores it:
 * one address, one encoding. */
static bool addr_canonical(const struct kg_addr *a)
{
	struct kg_addr folded;

	if (!family_known(a->family))
		return false;
	kg_addr_set(&folded, a->family, a->bytes);
	return folded.family == a->family;
}

static bool field_named(const struct kg_field *a, const struct kg_field *b)
{
	return a->name_len == b->name_len &&
	       memcmp(a->name, b->name, a->name_len) == 0;
}

/* A row's alternative usernames: each valid, no name twice. */
static enum kg_wire_err fields_check(const struct kg_field *f, size_t n)
{
	if (n > KG_FIELDS_MAX)
		return KG_WIRE_FIELD;
	for (size_t i = 0; i < n; i++) {
		enum kg_wire_err e = field_check(f[i].name, f[i].name_len,
		                                 f[i].value, f[i].value_len);

		if (e != KG_WIRE_OK)
			return e;
		for (size_t j = 0; j < i; j++)
			if (field_named(&f[i], &f[j]))
				return KG_WIRE_FIELD;
	}
	return KG_WIRE_OK;
}

/* What only Dovecot 2.4 reports comes with its GUID, which names one
 * connection: a row without one carries none of it. */
static bool who_v2_ok(const struct kg_who_row *row)
{
	if (!row->has_guid)
		return row->dest.family == KG_AF_NONE && row->n_fields == 0;
	return row->conns == 1 && addr_canonical(&row->dest);
}

static enum kg_wire_err who_check(const struct kg_who_row *row)
{
	enum kg_wire_err e;

	if (pid_check(row->pid) != KG_WIRE_OK || !addr_canonical(&row->addr) ||
	    !who_v2_ok(row))
		return KG_WIRE_FIELD;
	if (row->service_len == 0 ||
	    !len_within(row->service_len, KG_SERVICE_MAX))
		return KG_WIRE_FIELD;
	if (has_nul(row->service, row->service_len))
		return KG_WIRE_TEXT;
	e = name_check(row->user, row->user_len);
	return e != KG_WIRE_OK ? e : fields_check(row->fields, row->n_fields);
}

static size_t who_size(const struct kg_who_row *row)
{
	size_t n = 4 + 4 + 1 + kg_family_len(row->addr.family) + 1 +
	           row->service_len + 2 + row->user_len + 1 +
	           (row->has_guid ? sizeof(row->guid) : 0) + 1 +
	           kg_family_len(row->dest.family) + 1;

	for (size_t i = 0; i < row->n_fields; i++)
		n += 2 + row->fields[i].name_len + row->fields[i].value_len;
	return n;
}

static enum kg_wire_err instance_check(const struct kg_instance_row *row)
{
	if (!kg_name_ok(row->name, row->name_len))
		return KG_WIRE_TEXT;
	if (row->path_len == 0 || !len_within(row->path_len, KG_PATH_MAX) ||
	    row->path[0] != '/')
		return KG_WIRE_FIELD;
	return kg_text_ok(row->path, row->path_len) ? KG_WIRE_OK : KG_WIRE_TEXT;
}

static bool status_known(uint8_t status)
{
	switch (status) {
	case KG_EXIT_OK:
	case KG_EXIT_NEED_FORCE:
	case KG_EXIT_USAGE:
	case KG_EXIT_DATAERR:
	case KG_EXIT_NOMATCH:
	case KG_EXIT_UNAVAILABLE:
	case KG_EXIT_SOFTWARE:
	case KG_EXIT_PARTIAL:
	case KG_EXIT_NOPERM:
		return true;
	}
	return false;
}

/* Only a kick anvil did is confirmed, so never a dry run, and only a
 * confirmed kick can have left connections behind. */
static bool confirm_ok(const struct kg_reply_end *end)
{
	bool confirmed = end->flags & KG_END_CONFIRMED;

	if (confirmed && (end->flags & KG_END_DRY_RUN))
		return false;
	return confirmed || end->status != KG_EXIT_PARTIAL;
}

static enum kg_wire_err end_check(const struct kg_reply_end *end)
{
	const uint8_t known = KG_END_DRY_RUN | KG_END_NEED_FORCE |
	                      KG_END_FORCE_DENIED | KG_END_SCOPED |
	                      KG_END_HIDDEN | KG_END_CONFIRMED;
	const uint8_t denied = KG_END_FORCE_DENIED | KG_END_NEED_FORCE;

	if (!status_known(end->status) || (end->flags & ~known) != 0 ||
	    !confirm_ok(end) ||
	    ((end->flags & KG_END_FORCE_DENIED) &&
	     (end->flags & denied) != denied) ||
	    ((end->flags & KG_END_SCOPED) && end->malformed != 0) ||
	    ((end->flags & KG_END_HIDDEN) &&
	     (!(end->flags & KG_END_SCOPED) || end->records != 0)) ||
	    !len_within(end->error_len, KG_ERRTEXT_MAX))
		return KG_WIRE_FIELD;
	return kg_text_ok(end->error, end->error_len) ? KG_WIRE_OK
	                                              : KG_WIRE_TEXT;
}

/* ------------------------------------------------------- reply writer */

void kg_rw_init(struct kg_reply_writer *w, kg_emit_fn emit, void *ctx)
{
	w->emit = emit;
	w->ctx = ctx;
	w->len = 0;
	w->failed = 0;
	w->records = 0;
	w->rejected = 0;
}

/* A record that cannot be sent; a writer that has failed sends nothing
 * more, which is not the record's fault. */
static int rw_reject(struct kg_reply_writer *w)
{
	if (!w->failed)
		w->rejected++;
	return -1;
}

/* Hands buf[0..len) to emit; a failure is final for this writer. */
static int rw_emit(struct kg_reply_writer *w, size_t len)
{
	w->len = 0;
	if (w->emit(w->ctx, w->buf, len) != 0) {
		w->failed = 1;
		return -1;
	}
	return 0;
}

static int rw_flush(struct kg_reply_writer *w)
{
	return w->len > 0 ? rw_emit(w, w->len) : 0;
}

/* Appends a record header and returns where its payload goes, first
 * emitting the current packet when the record would not fit in it. */
static uint8_t *rw_reserve(struct kg_reply_writer *w, uint8_t type,
                           size_t payload_len)
{
	size_t need = REC_HDR + payload_len;
	uint8_t *p;

	if (w->failed)
		return NULL;
	if (payload_len > UINT16_MAX || PKT_HDR + need > KG_PKT_MAX) {
		rw_reject(w);
		return NULL;
	}
	if (w->len + need > KG_PKT_MAX && rw_flush(w) < 0)
		return NULL;
	w->records++;
	if (w->len == 0) {
		put_u8(put_u8(w->buf, KG_WIRE_VERSION), KG_PKT_RECORDS);
		w->len = PKT_HDR;
	}
	p = w->buf + w->len;
	w->len += need;
	p = put_u8(p, type);
	return put_u16(p, (uint16_t)payload_len);
}

/* The records that carry one user name. */
static bool user_type(uint8_t type)
{
	return type == KG_REC_KICKED || type == KG_REC_WARN ||
	       type == KG_REC_REMAINED;
}

int kg_rw_user(struct kg_reply_writer *w, enum kg_rec_type type,
               const char *name, size_t len)
{
	uint8_t *p;

	if (!user_type((uint8_t)type) || name_check(name, len) != KG_WIRE_OK)
		return rw_reject(w);
	p = rw_reserve(w, (uint8_t)type, len);
	if (p == NULL)
		return -1;
	put_bytes(p, name, len);
	return 0;
}

int kg_rw_pid(struct kg_reply_writer *w, uint32_t pid)
{
	uint8_t *p;

	if (pid_check(pid) != KG_WIRE_OK)
		return rw_reject(w);
	p = rw_reserve(w, KG_REC_PID, 4);
	if (p == NULL)
		return -1;
	put_u32(p, pid);
	return 0;
}

int kg_rw_refused(struct kg_reply_writer *w, uint32_t pid, uint8_t reason)
{
	uint8_t *p;

	if (refused_check(pid, reason) != KG_WIRE_OK)
		return rw_reject(w);
	p = rw_reserve(w, KG_REC_REFUSED, 5);
	if (p == NULL)
		return -1;
	put_u8(put_u32(p, pid), reason);
	return 0;
}

int kg_rw_who(struct kg_reply_writer *w, const struct kg_who_row *row)
{
	uint8_t *p;

	if (who_check(row) != KG_WIRE_OK)
		return rw_reject(w);
	p = rw_reserve(w, KG_REC_WHO, who_size(row));
	if (p == NULL)
		return -1;
	p = put_u32(p, row->pid);
	p = put_u32(p, row->conns);
	p = put_u8(p, row->addr.family);
	p = put_bytes(p, row->addr.bytes, kg_family_len(row->addr.family));
	p = put_u8(p, (uint8_t)row->service_len);
	p = put_bytes(p, row->service, row->service_len);
	p = put_u16(p, (uint16_t)row->user_len);
	p = put_bytes(p, row->user, row->user_len);
	p = put_u8(p, row->has_guid);
	if (row->has_guid)
		p = put_bytes(p, row->guid, sizeof(row->guid));
	p = put_u8(p, row->dest.family);
	p = put_bytes(p, row->dest.bytes, kg_family_len(row->dest.family));
	p = put_u8(p, (uint8_t)row->n_fields);
	for (size_t i = 0; i < row->n_fields; i++) {
		const struct kg_field *f = &row->fields[i];

		p = put_u8(p, (uint8_t)f->name_len);
		p = put_bytes(p, f->name, f->name_len);
		p = put_u8(p, (uint8_t)f->value_len);
		p = put_bytes(p, f->value, f->value_len);
	}
	return 0;
}

int kg_rw_instance(struct kg_reply_writer *w, const struct kg_instance_row *row)
{
	uint8_t *p;

	if (instance_check(row) != KG_WIRE_OK)
		return rw_reject(w);
	p = rw_reserve(w, KG_REC_INSTANCE, 2 + row->name_len + row->path_len);
	if (p == NULL)
		return -1;
	p = put_u8(p, (uint8_t)row->name_len);
	p = put_bytes(p, row->name, row->name_len);
	p = put_u8(p, (uint8_t)row->path_len);
	put_bytes(p, row->path, row->path_len);
	return 0;
}

int kg_rw_end(struct kg_reply_writer *w, const struct kg_reply_end *end)
{
	uint8_t *p;

	if (w->failed || end_check(end) != KG_WIRE_OK || rw_flush(w) < 0)
		return -1;
	p = put_u8(w->buf, KG_WIRE_VERSION);
	p = put_u8(p, KG_PKT_END);
	p = put_u8(p, end->status);
	p = put_u8(p, end->flags);
	p = put_u32(p, end->conns);
	p = put_u32(p, end->pids);
	p = put_u32(p, end->malformed);
	p = put_u32(p, w->records);
	p = put_u16(p, end->error_len);
	put_bytes(p, end->error, end->error_len);
	return rw_emit(w, END_FIXED + end->error_len);
}

/* ------------------------------------------------------- reply reader */

/* One parsed record; pointers refer into the packet, and a who row's
 * fields into the record's own array. */
struct rec {
	uint8_t type;
	const char *name;
	size_t name_len;
	uint32_t pid;
	uint8_t reason;
	struct kg_who_row who;
	struct kg_field fields[KG_FIELDS_MAX];
	struct kg_instance_row instance;
};

/* An address: the family sizes it, so it is checked before reading on;
 * a short read yields family 0 and ends as KG_WIRE_SHORT. */
static bool addr_parse(struct rd *c, struct kg_addr *a)
{
	const uint8_t *bytes;

	a->family = rd_u8(c);
	if (!family_known(a->family))
		return false;
	bytes = rd_bytes(c, kg_family_len(a->family));
	if (bytes != NULL)
		put_bytes(a->bytes, bytes, kg_family_len(a->family));
	return true;
}

/* Version 3's part of a row: GUID, destination, alternative usernames.
 * Counts that size what follows are checked before it is read. */
static enum kg_wire_err who_v2_parse(struct rd *c, struct kg_who_row *row,
                                     struct kg_field *fields)
{
	uint8_t has_guid = rd_u8(c);
	const uint8_t *guid;

	if (has_guid > 1)
		return KG_WIRE_FIELD;
	row->has_guid = has_guid;
	guid = rd_bytes(c, has_guid ? sizeof(row->guid) : 0);
	if (guid != NULL)
		put_bytes(row->guid, guid, has_guid ? sizeof(row->guid) : 0);
	if (!addr_parse(c, &row->dest))
		return KG_WIRE_FIELD;
	row->n_fields = rd_u8(c);
	if (row->n_fields > KG_FIELDS_MAX)
		return KG_WIRE_FIELD;
	for (size_t i = 0; i < row->n_fields; i++) {
		fields[i].name_len = rd_u8(c);
		fields[i].name = (const char *)rd_bytes(c, fields[i].name_len);
		fields[i].value_len = rd_u8(c);
		fields[i].value =
		        (const char *)rd_bytes(c, fields[i].value_len);
	}
	row->fields = fields;
	return KG_WIRE_OK;
}

static enum kg_wire_err who_parse(struct rd *c, struct kg_who_row *row,
                                  struct kg_field *fields)
{
	enum kg_wire_err e;

	memset(row, 0, sizeof(*row));
	row->pid = rd_u32(c);
	row->conns = rd_u32(c);
	if (!addr_parse(c, &row->addr))
		return KG_WIRE_FIELD;
	row->service_len = rd_u8(c);
	row->service = (const char *)rd_bytes(c, row->service_len);
	row->user_len = rd_u16(c);
	row->user = (const char *)rd_bytes(c, row->user_len);
	e = who_v2_parse(c, row, fields);
	if (e == KG_WIRE_OK)
		e = rd_finish(c);
	return e != KG_WIRE_OK ? e : who_check(row);
}

static enum kg_wire_err instance_parse(struct rd *c,
                                       struct kg_instance_row *row)
{
	enum kg_wire_err e;

	row->name_len = rd_u8(c);
	row->name = (const char *)rd_bytes(c, row->name_len);
	row->path_len = rd_u8(c);
	row->path = (const char *)rd_bytes(c, row->path_len);
	e = rd_finish(c);
	return e != KG_WIRE_OK ? e : instance_check(row);
}

/* Parses the payload of a record whose type and length are known. */
static enum kg_wire_err payload_parse(struct rd *c, struct rec *r)
{
	enum kg_wire_err e;

	if (user_type(r->type)) {
		r->name = (const char *)rd_bytes(c, c->len);
		r->name_len = c->len;
		return name_check(r->name, r->name_len);
	}
	switch (r->type) {
	case KG_REC_PID:
		r->pid = rd_u32(c);
		e = rd_finish(c);
		return e != KG_WIRE_OK ? e : pid_check(r->pid);
	case KG_REC_REFUSED:
		r->pid = rd_u32(c);
		r->reason = rd_u8(c);
		e = rd_finish(c);
		return e != KG_WIRE_OK ? e : refused_check(r->pid, r->reason);
	case KG_REC_WHO:
		return who_parse(c, &r->who, r->fields);
	case KG_REC_INSTANCE:
		return instance_parse(c, &r->instance);
	}
	return KG_WIRE_FIELD;
}

static enum kg_wire_err rec_parse(struct rd *c, struct rec *r)
{
	struct rd payload = {0};
	size_t len;

	r->type = rd_u8(c);
	len = rd_u16(c);
	payload.p = rd_bytes(c, len);
	payload.len = len;
	if (c->short_read)
		return KG_WIRE_SHORT;
	return payload_parse(&payload, r);
}

static int rec_dispatch(const struct kg_reply_handler *h, void *ctx,
                        const struct rec *r)
{
	if (user_type(r->type))
		return h->user ? h->user(ctx, (enum kg_rec_type)r->type,
		                         r->name, r->name_len)
		               : 0;
	switch (r->type) {
	case KG_REC_PID:
		return h->pid ? h->pid(ctx, r->pid) : 0;
	case KG_REC_REFUSED:
		return h->refused ? h->refused(ctx, r->pid, r->reason) : 0;
	case KG_REC_WHO:
		return h->who ? h->who(ctx, &r->who) : 0;
	case KG_REC_INSTANCE:
		return h->instance ? h->instance(ctx, &r->instance) : 0;
	}
	return 0;
}

/* Walks the records after the packet header: with h NULL it only
 * validates, so that the callbacks later see a packet known to be good.
 * Each step consumes at least a record header, which bounds the loop. */
static enum kg_wire_err records_walk(const uint8_t *pkt, size_t len,
                                     const struct kg_reply_handler *h,
                                     void *ctx, int *cb_result)
{
	struct rd c = {.p = pkt, .len = len, .off = PKT_HDR};

	if (len == PKT_HDR)
		return KG_WIRE_SHORT;
	while (c.off < c.len) {
		struct rec r;
		enum kg_wire_err e = rec_parse(&c, &r);
		int rc;

		if (e != KG_WIRE_OK)
			return e;
		rc = h ? rec_dispatch(h, ctx, &r) : 0;
		if (rc != 0) {
			*cb_result = rc;
			break;
		}
	}
	return KG_WIRE_OK;
}

static enum kg_wire_err end_parse(const uint8_t *pkt, size_t len,
                                  struct kg_reply_end *end)
{
	struct rd c = {.p = pkt, .len = len, .off = PKT_HDR};
	const uint8_t *text;
	enum kg_wire_err e;

	memset(end, 0, sizeof(*end));
	end->status = rd_u8(&c);
	end->flags = rd_u8(&c);
	end->conns = rd_u32(&c);
	end->pids = rd_u32(&c);
	end->malformed = rd_u32(&c);
	end->records = rd_u32(&c);
	end->error_len = rd_u16(&c);
	/* The length sizes the copy into end->error: checked first. */
	if (!len_within(end->error_len, KG_ERRTEXT_MAX))
		return KG_WIRE_FIELD;
	text = rd_bytes(&c, end->error_len);
	e = rd_finish(&c);
	if (e != KG_WIRE_OK)
		return e;
	put_bytes((uint8_t *)end->error, text, end->error_len);
	return end_check(end);
}

enum kg_wire_err kg_reply_decode(const uint8_t *pkt, size_t len,
                                 const struct kg_reply_handler *h, void *ctx,
                                 bool *is_end, int *cb_result)
{
	enum kg_wire_err e = version_check(pkt, len, PKT_HDR);
	struct kg_reply_end end;

	*is_end = false;
	*cb_result = 0;
	if (e != KG_WIRE_OK)
		return e;
	if (len > KG_PKT_MAX)
		return KG_WIRE_LONG;
	switch (pkt[1]) {
	case KG_PKT_RECORDS:
		e = records_walk(pkt, len, NULL, NULL, cb_result);
		if (e != KG_WIRE_OK)
			return e;
		return records_walk(pkt, len, h, ctx, cb_result);
	case KG_PKT_END:
		e = end_parse(pkt, len, &end);
		if (e != KG_WIRE_OK)
			return e;
		*is_end = true;
		if (h != NULL && h->end != NULL)
			*cb_result = h->end(ctx, &end);
		return KG_WIRE_OK;
	}
	return KG_WIRE_FIELD;
}
