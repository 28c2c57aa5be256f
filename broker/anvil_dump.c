/* SPDX-License-Identifier: MIT */
/* Parser for anvil's CONNECT-DUMP reply; see anvil_dump.h. */
#include "broker/anvil_dump.h"

#include <string.h>

#include "broker/anvil_text.h"
#include "broker/anvil_v2.h"

const char *kg_line_strerror(enum kg_line_err e)
{
	switch (e) {
	case KG_LINE_OK:
		return "ok";
	case KG_LINE_FIELDS:
		return "wrong number of fields";
	case KG_LINE_ESCAPE:
		return "bad escape";
	case KG_LINE_IDENT:
		return "bad ident";
	case KG_LINE_PID:
		return "bad pid";
	case KG_LINE_REFCOUNT:
		return "bad refcount";
	case KG_LINE_TOO_LONG:
		return "line too long";
	case KG_LINE_GUID:
		return "bad connection GUID";
	case KG_LINE_FIELD:
		return "bad alternative-username value";
	case KG_LINE_HEADER:
		return "bad field-name header";
	case KG_LINE_VERSION:
		return "no protocol-2 VERSION line";
	}
	return "unknown error";
}

/* Splits the unescaped ident as doveadm does: service up to the first '/';
 * if the rest has another '/', the address comes before it and the user
 * name (which may hold more '/') after it. A NUL, which anvil always
 * escapes, is refused in the names because it would truncate them wherever
 * they become C strings; in the address it only makes the text no
 * address. The per-part NUL checks run only when the ident has a NUL. */
static enum kg_line_err split_ident(const char *id, size_t len,
                                    struct kg_conn *c)
{
	const char *end = id + len;
	const char *svc_end = memchr(id, '/', len);
	bool nul = kg_has_nul(id, end);
	const char *user, *slash;

	if (svc_end == NULL || svc_end == id || svc_end - id > KG_SERVICE_MAX)
		return KG_LINE_IDENT;
	memset(&c->addr, 0, sizeof(c->addr));
	user = svc_end + 1;
	slash = memchr(user, '/', (size_t)(end - user));
	if (slash != NULL) {
		if (!nul || !kg_has_nul(user, slash))
			kg_anvil_parse_addr(user, (size_t)(slash - user),
			                    &c->addr);
		user = slash + 1;
	}
	if (user == end)
		return KG_LINE_IDENT;
	if (nul && (kg_has_nul(id, svc_end) || kg_has_nul(user, end)))
		return KG_LINE_ESCAPE;
	c->service = id;
	c->service_len = (size_t)(svc_end - id);
	c->user = user;
	c->user_len = (size_t)(end - user);
	return KG_LINE_OK;
}

/* The tab between pid and refcount: exactly one must follow the ident's. */
static const char *second_tab(const char *s, const char *end)
{
	const char *tab = NULL;

	for (; s < end; s++) {
		if (*s != '\t')
			continue;
		if (tab != NULL)
			return NULL;
		tab = s;
	}
	return tab;
}

enum kg_line_err kg_anvil_parse_line(const char *line, size_t len,
                                     struct kg_conn *out, char *scratch)
{
	const char *end = line + len;
	const char *t1 = memchr(line, '\t', len);
	const char *t2 = t1 ? second_tab(t1 + 1, end) : NULL;
	ptrdiff_t n;
	enum kg_line_err e;

	if (t2 == NULL)
		return KG_LINE_FIELDS;
	out->has_guid = false;
	out->dest.family = KG_AF_NONE;
	out->fields = NULL;
	out->n_fields = 0;
	n = kg_anvil_unescape(line, (size_t)(t1 - line), scratch);
	if (n < 0)
		return KG_LINE_ESCAPE;
	e = split_ident(scratch, (size_t)n, out);
	if (e != KG_LINE_OK)
		return e;
	/* pid_t is a 32-bit int on Linux. <limits.h> is not included: the
	 * project's own limits.h shadows it on the include path. */
	if (!kg_anvil_dec(t1 + 1, (size_t)(t2 - t1 - 1), INT32_MAX, &out->pid))
		return KG_LINE_PID;
	if (!kg_anvil_dec(t2 + 1, (size_t)(end - t2 - 1), UINT32_MAX,
	                  &out->refcount))
		return KG_LINE_REFCOUNT;
	return KG_LINE_OK;
}

size_t kg_anvil_format_line(const struct kg_conn *c, char *buf, size_t cap)
{
	struct kg_anvil_out o = {.buf = buf, .cap = cap};

	kg_anvil_put_escaped(&o, c->service, c->service_len);
	kg_anvil_put(&o, "/", 1);
	if (c->addr.family != KG_AF_NONE) {
		char ip[KG_NET_STRLEN];

		kg_addr_format(&c->addr, ip);
		kg_anvil_put(&o, ip, strlen(ip));
		kg_anvil_put(&o, "/", 1);
	} else if (memchr(c->user, '/', c->user_len)) {
		/* "svc/a/b" would parse back as address "a" (none) and user
		 * "b"; an empty address field keeps the whole user name. */
		kg_anvil_put(&o, "/", 1);
	}
	kg_anvil_put_escaped(&o, c->user, c->user_len);
	kg_anvil_put(&o, "\t", 1);
	kg_anvil_put_dec(&o, c->pid);
	kg_anvil_put(&o, "\t", 1);
	kg_anvil_put_dec(&o, c->refcount);
	return o.full ? 0 : o.len;
}

void kg_dump_init(struct kg_dump_parser *p, uint8_t proto)
{
	p->proto = proto;
	p->len = 0;
	p->skipping = false;
	p->done = false;
	p->other_proto = false;
	p->versioned = false;
	p->headed = false;
	p->bad_version = false;
	p->n_names = 0;
	p->lines = 0;
	p->malformed = 0;
	p->first_err = KG_LINE_OK;
	p->tail_len = 0;
	p->head_len = 0;
}

static void note_bad(struct kg_dump_parser *p, enum kg_line_err e)
{
	if (p->malformed++ == 0)
		p->first_err = e;
}

/* The pid and refcount of a line that did not parse, from its last two
 * fields; both 0 when they are not there. Anvil writes them after the
 * ident, so a broken ident (a raw tab from a fake anvil included) does
 * not hide them; anything else leaves the process unknown. */
static void recover_pid(const char *s, size_t len, uint32_t *pid,
                        uint32_t *refcount)
{
	const char *t2 = memrchr(s, '\t', len);
	const char *t1 = t2 ? memrchr(s, '\t', (size_t)(t2 - s)) : NULL;

	if (t1 == NULL ||
	    !kg_anvil_dec(t1 + 1, (size_t)(t2 - t1 - 1), INT32_MAX, pid) ||
	    !kg_anvil_dec(t2 + 1, (size_t)(s + len - t2 - 1), UINT32_MAX,
	                  refcount))
		*pid = *refcount = 0;
}

/* Counts a line that did not parse (s: all of it, or its tail) and tells
 * the sink which process it is on, as far as that can be known. */
static int take_bad(struct kg_dump_parser *p, enum kg_line_err e, const char *s,
                    size_t len, const struct kg_dump_sink *sink)
{
	uint32_t pid, refcount;

	note_bad(p, e);
	if (sink->unreadable == NULL)
		return 0;
	if (p->proto == 2) {
		pid = kg_anvil2_recover_pid(s, len);
		refcount = pid != 0;
	} else {
		recover_pid(s, len, &pid, &refcount);
	}
	return sink->unreadable(sink->ctx, pid, refcount);
}

/* Protocol 2's first two lines: VERSION, then the field names. The
 * header is not a connection; a bad one is counted, and its rows, whose
 * values then have no names, are malformed whenever they carry any. */
static bool take_preamble2(struct kg_dump_parser *p, const char *line,
                           size_t len)
{
	enum kg_line_err e;

	if (!p->versioned) {
		p->versioned = true;
		if (!kg_anvil2_version_ok(line, len)) {
			note_bad(p, KG_LINE_VERSION);
			p->bad_version = p->done = true;
		}
		return true;
	}
	if (p->headed)
		return false;
	p->headed = true;
	e = kg_anvil2_parse_header(line, len, p->names, &p->n_names);
	if (e != KG_LINE_OK)
		note_bad(p, e);
	return true;
}

/* Protocol 1 never writes a line that starts so: a protocol-2 anvil
 * that was sent protocol 1's request says it first, then hangs up. */
static bool speaks_other(const char *line, size_t len)
{
	size_t n = sizeof(KG_ANVIL2_SERVER_PREFIX) - 1;

	return len >= n && memcmp(line, KG_ANVIL2_SERVER_PREFIX, n) == 0;
}

static enum kg_line_err parse_any(struct kg_dump_parser *p, const char *line,
                                  size_t len, struct kg_conn *c)
{
	if (p->proto == 2)
		return kg_anvil2_parse_row(line, len, p->names, p->n_names, c,
		                           p->scratch, p->fields);
	return kg_anvil_parse_line(line, len, c, p->scratch);
}

/* Handles one complete line of at most KG_ANVIL_LINE_MAX bytes. */
static int take_line(struct kg_dump_parser *p, const char *line, size_t len,
                     const struct kg_dump_sink *sink)
{
	struct kg_conn c;
	enum kg_line_err e;

	if (p->proto == 2 && take_preamble2(p, line, len))
		return 0;
	if (len == 0) {
		p->done = true;
		return 0;
	}
	if (p->proto == 1 && p->lines + p->malformed == 0 &&
	    speaks_other(line, len)) {
		p->other_proto = p->done = true;
		return 0;
	}
	e = parse_any(p, line, len, &c);
	if (e != KG_LINE_OK)
		return take_bad(p, e, line, len, sink);
	p->lines++;
	return sink->conn(sink->ctx, &c);
}

/* Keeps the last KG_DUMP_TAIL_MAX bytes of an overlong line. */
static void tail_add(struct kg_dump_parser *p, const char *s, size_t n)
{
	size_t keep = p->tail_len;

	if (n >= KG_DUMP_TAIL_MAX) {
		s += n - KG_DUMP_TAIL_MAX;
		n = KG_DUMP_TAIL_MAX;
	}
	if (keep > KG_DUMP_TAIL_MAX - n)
		keep = KG_DUMP_TAIL_MAX - n;
	memmove(p->tail, p->tail + p->tail_len - keep, keep);
	memcpy(p->tail + keep, s, n);
	p->tail_len = keep + n;
}

/* n more bytes of an overlong line, its last when ends: then it is
 * counted and reported from where it names its pid (protocol 1: its
 * tail, 2: its head). An overlong first line of protocol 2 (VERSION or
 * header) ends the dump: what follows cannot be read for what it is. */
static int skip_bytes(struct kg_dump_parser *p, const char *s, size_t n,
                      bool ends, const struct kg_dump_sink *sink)
{
	tail_add(p, s, n);
	p->skipping = !ends;
	if (!ends)
		return 0;
	if (p->proto == 2 && !p->headed) {
		note_bad(p, p->versioned ? KG_LINE_HEADER : KG_LINE_VERSION);
		p->bad_version = p->done = true;
		return 0;
	}
	if (p->proto == 2)
		return take_bad(p, KG_LINE_TOO_LONG, p->head, p->head_len,
		                sink);
	return take_bad(p, KG_LINE_TOO_LONG, p->tail, p->tail_len, sink);
}

/* Keeps the first KG_DUMP_HEAD_MAX bytes of the line that a and then b
 * begin. */
static void head_keep(struct kg_dump_parser *p, const char *a, size_t na,
                      const char *b, size_t nb)
{
	size_t from_a = na < KG_DUMP_HEAD_MAX ? na : KG_DUMP_HEAD_MAX;
	size_t from_b = KG_DUMP_HEAD_MAX - from_a;

	if (from_b > nb)
		from_b = nb;
	memcpy(p->head, a, from_a);
	memcpy(p->head + from_a, b, from_b);
	p->head_len = from_a + from_b;
}

/* Starts skipping a line found to be overlong: what is held of it goes
 * to the tail (and its head is kept) first. */
static int start_skip(struct kg_dump_parser *p, const char *s, size_t n,
                      bool ends, const struct kg_dump_sink *sink)
{
	head_keep(p, p->line, p->len, s, n);
	p->tail_len = 0;
	tail_add(p, p->line, p->len);
	p->len = 0;
	return skip_bytes(p, s, n, ends, sink);
}

/* A complete line inside buf is parsed where it lies; only a line split
 * across reads is copied into p->line. */
int kg_dump_feed(struct kg_dump_parser *p, const char *buf, size_t len,
                 const struct kg_dump_sink *sink, size_t *used)
{
	size_t off = 0;
	int rc = 0;

	while (off < len && !p->done && rc == 0) {
		const char *start = buf + off;
		const char *nl = memchr(start, '\n', len - off);
		size_t n = nl ? (size_t)(nl - start) : len - off;

		off += nl ? n + 1 : n;
		if (p->skipping) {
			rc = skip_bytes(p, start, n, nl != NULL, sink);
		} else if (n > KG_ANVIL_LINE_MAX - p->len) {
			rc = start_skip(p, start, n, nl != NULL, sink);
		} else if (nl == NULL) {
			memcpy(p->line + p->len, start, n);
			p->len += n;
		} else if (p->len == 0) {
			rc = take_line(p, start, n, sink);
		} else {
			size_t total = p->len + n;

			memcpy(p->line + p->len, start, n);
			p->len = 0;
			rc = take_line(p, p->line, total, sink);
		}
	}
	*used = off;
	return rc;
}
