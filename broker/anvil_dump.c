/* SPDX-License-Identifier: MIT */
/* Parser for anvil's CONNECT-DUMP reply; see anvil_dump.h. */
#include "broker/anvil_dump.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto/text.h"

const char *kg_line_strerror(enum kg_line_err e)
{
	switch (e) {
	case KG_LINE_OK:
		return "ok";
	case KG_LINE_FIELDS:
		return "not exactly three fields";
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
	}
	return "unknown error";
}

/* Strict decimal: digits only, no sign, no leading zero, 1..max. */
static bool parse_dec(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Anvil's escapes: byte esc_raw[i] is written as \001 esc_code[i]. */
static const char esc_raw[] = {'\001', '\t', '\n', '\r', '\0'};
static const char esc_code[] = {'1', 't', 'n', 'r', '0'};
_Static_assert(sizeof(esc_raw) == sizeof(esc_code), "escape tables");

/* Index of c in table, or -1. */
static int esc_find(const char *table, char c)
{
	for (int i = 0; i < (int)sizeof(esc_raw); i++) {
		if (table[i] == c)
			return i;
	}
	return -1;
}

/* Undoes anvil's \001 escaping of s into out; returns the unescaped length
 * or -1 on a bad escape. The output is never longer than the input. */
static ptrdiff_t unescape(const char *s, size_t len, char *out)
{
	const char *end = s + len;
	char *o = out;

	while (s < end) {
		const char *esc = memchr(s, '\001', (size_t)(end - s));
		size_t run = esc ? (size_t)(esc - s) : (size_t)(end - s);
		int i;

		memcpy(o, s, run);
		o += run;
		if (esc == NULL)
			break;
		i = esc + 1 < end ? esc_find(esc_code, esc[1]) : -1;
		if (i < 0)
			return -1;
		*o++ = esc_raw[i];
		s = esc + 2;
	}
	return o - out;
}

static bool has_nul(const char *s, const char *end)
{
	return memchr(s, '\0', (size_t)(end - s)) != NULL;
}

/* The address parsers below take exactly what glibc's inet_pton takes,
 * as doveadm reads the address with it; they work on the text in place,
 * which spares a copy, a strlen and a failed IPv4 attempt on every IPv6
 * line. */

/* Four decimal parts of 0..255 without leading zeros. */
static bool parse_ipv4(const char *s, size_t len, uint8_t out[4])
{
	size_t part = 0;
	size_t digits = 0;
	unsigned v = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			if (digits > 0 && v == 0)
				return false;
			v = v * 10 + (unsigned)(s[i] - '0');
			if (v > 255)
				return false;
			digits++;
		} else if (s[i] == '.' && digits > 0 && part < 3) {
			out[part++] = (uint8_t)v;
			v = 0;
			digits = 0;
		} else {
			return false;
		}
	}
	if (part != 3 || digits == 0)
		return false;
	out[3] = (uint8_t)v;
	return true;
}

/* Widens the groups before and after "::" (at gap) to 16 bytes; false when
 * there is nothing to widen, as the text spells out every group. */
static bool fill_gap(uint8_t out[16], size_t gap, size_t n)
{
	if (n == 16)
		return false;
	memmove(out + 16 - (n - gap), out + gap, n - gap);
	memset(out + gap, 0, 16 - n);
	return true;
}

/* Up to eight groups of one to four hex digits, at most one "::" for a
 * run of zero groups, and a dotted quad in place of the last two. */
static bool parse_ipv6(const char *s, size_t len, uint8_t out[16])
{
	const char *end = s + len;
	const char *token;
	size_t n = 0, gap = SIZE_MAX, digits = 0;
	unsigned v = 0;

	if (len == 0 || (s[0] == ':' && (len == 1 || s[1] != ':')))
		return false;
	s += s[0] == ':';
	token = s;
	while (s < end) {
		char ch = *s++;
		int d = kg_hex_digit(ch);

		if (d >= 0) {
			if (digits == 4)
				return false;
			v = v << 4 | (unsigned)d;
			digits++;
		} else if (ch == ':') {
			token = s;
			if (digits == 0) {
				if (gap != SIZE_MAX)
					return false;
				gap = n;
				continue;
			}
			if (s == end || n + 2 > 16)
				return false;
			out[n++] = (uint8_t)(v >> 8);
			out[n++] = (uint8_t)v;
			digits = 0;
			v = 0;
		} else if (ch == '.' && n + 4 <= 16 &&
		           parse_ipv4(token, (size_t)(end - token), out + n)) {
			n += 4;
			digits = 0;
			break;
		} else {
			return false;
		}
	}
	if (digits > 0) {
		if (n + 2 > 16)
			return false;
		out[n++] = (uint8_t)(v >> 8);
		out[n++] = (uint8_t)v;
	}
	if (gap != SIZE_MAX)
		return fill_gap(out, gap, n);
	return n == 16;
}

/* No address text is as long as INET6_ADDRSTRLEN. */
void kg_anvil_parse_addr(const char *s, size_t len, struct kg_addr *a)
{
	uint8_t bytes[16];

	if (len == 0 || len >= INET6_ADDRSTRLEN)
		return;
	if (parse_ipv4(s, len, bytes))
		kg_addr_set(a, KG_AF_INET, bytes);
	else if (parse_ipv6(s, len, bytes))
		kg_addr_set(a, KG_AF_INET6, bytes);
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
	bool nul = has_nul(id, end);
	const char *user, *slash;

	if (svc_end == NULL || svc_end == id || svc_end - id > KG_SERVICE_MAX)
		return KG_LINE_IDENT;
	memset(&c->addr, 0, sizeof(c->addr));
	user = svc_end + 1;
	slash = memchr(user, '/', (size_t)(end - user));
	if (slash != NULL) {
		if (!nul || !has_nul(user, slash))
			kg_anvil_parse_addr(user, (size_t)(slash - user),
			                    &c->addr);
		user = slash + 1;
	}
	if (user == end)
		return KG_LINE_IDENT;
	if (nul && (has_nul(id, svc_end) || has_nul(user, end)))
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
	n = unescape(line, (size_t)(t1 - line), scratch);
	if (n < 0)
		return KG_LINE_ESCAPE;
	e = split_ident(scratch, (size_t)n, out);
	if (e != KG_LINE_OK)
		return e;
	/* pid_t is a 32-bit int on Linux. <limits.h> is not included: the
	 * project's own limits.h shadows it on the include path. */
	if (!parse_dec(t1 + 1, (size_t)(t2 - t1 - 1), INT32_MAX, &out->pid))
		return KG_LINE_PID;
	if (!parse_dec(t2 + 1, (size_t)(end - t2 - 1), UINT32_MAX,
	               &out->refcount))
		return KG_LINE_REFCOUNT;
	return KG_LINE_OK;
}

struct out_buf {
	char *buf;
	size_t cap;
	size_t len;
	bool full;
};

static void put(struct out_buf *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void put_escaped(struct out_buf *o, const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		int i = esc_find(esc_raw, s[k]);

		if (i < 0) {
			put(o, &s[k], 1);
		} else {
			put(o, "\001", 1);
			put(o, &esc_code[i], 1);
		}
	}
}

static void put_dec(struct out_buf *o, uint32_t v)
{
	char num[16];
	int n = snprintf(num, sizeof(num), "%" PRIu32, v);

	put(o, num, (size_t)n);
}

size_t kg_anvil_format_line(const struct kg_conn *c, char *buf, size_t cap)
{
	struct out_buf o = {.buf = buf, .cap = cap};

	put_escaped(&o, c->service, c->service_len);
	put(&o, "/", 1);
	if (c->addr.family != KG_AF_NONE) {
		char ip[KG_NET_STRLEN];

		kg_addr_format(&c->addr, ip);
		put(&o, ip, strlen(ip));
		put(&o, "/", 1);
	} else if (memchr(c->user, '/', c->user_len)) {
		/* "svc/a/b" would parse back as address "a" (none) and user
		 * "b"; an empty address field keeps the whole user name. */
		put(&o, "/", 1);
	}
	put_escaped(&o, c->user, c->user_len);
	put(&o, "\t", 1);
	put_dec(&o, c->pid);
	put(&o, "\t", 1);
	put_dec(&o, c->refcount);
	return o.full ? 0 : o.len;
}

void kg_dump_init(struct kg_dump_parser *p)
{
	p->len = 0;
	p->skipping = false;
	p->done = false;
	p->lines = 0;
	p->malformed = 0;
	p->first_err = KG_LINE_OK;
	p->tail_len = 0;
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
	    !parse_dec(t1 + 1, (size_t)(t2 - t1 - 1), INT32_MAX, pid) ||
	    !parse_dec(t2 + 1, (size_t)(s + len - t2 - 1), UINT32_MAX,
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
	recover_pid(s, len, &pid, &refcount);
	return sink->unreadable(sink->ctx, pid, refcount);
}

/* Handles one complete line of at most KG_ANVIL_LINE_MAX bytes. */
static int take_line(struct kg_dump_parser *p, const char *line, size_t len,
                     const struct kg_dump_sink *sink)
{
	struct kg_conn c;
	enum kg_line_err e;

	if (len == 0) {
		p->done = true;
		return 0;
	}
	e = kg_anvil_parse_line(line, len, &c, p->scratch);
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
 * counted and reported from its tail. */
static int skip_bytes(struct kg_dump_parser *p, const char *s, size_t n,
                      bool ends, const struct kg_dump_sink *sink)
{
	tail_add(p, s, n);
	p->skipping = !ends;
	if (!ends)
		return 0;
	return take_bad(p, KG_LINE_TOO_LONG, p->tail, p->tail_len, sink);
}

/* Starts skipping a line found to be overlong: what is held of it goes
 * to the tail first. */
static int start_skip(struct kg_dump_parser *p, const char *s, size_t n,
                      bool ends, const struct kg_dump_sink *sink)
{
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
