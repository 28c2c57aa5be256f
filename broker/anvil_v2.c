/* SPDX-License-Identifier: MIT */
/* Protocol-2 (Dovecot 2.4) dump lines; see anvil_v2.h. */
#include "broker/anvil_v2.h"

#include <string.h>

#include "broker/anvil_text.h"
#include "proto/text.h"

/* The fixed fields of a row: pid, user, service, ip, guid, dest_ip. */
enum { F_PID, F_USER, F_SERVICE, F_IP, F_GUID, F_DEST, FIXED_FIELDS };

#define ROW_FIELDS_MAX (FIXED_FIELDS + KG_FIELDS_MAX)

/* A field's text within a line. */
struct span {
	const char *s;
	size_t len;
};

/* Splits line at its tabs into at most max spans; returns how many it
 * has, or max + 1 when it has more. */
static size_t split_tabs(const char *line, size_t len, struct span *out,
                         size_t max)
{
	const char *end = line + len;
	size_t n = 0;

	for (;;) {
		const char *tab = memchr(line, '\t', (size_t)(end - line));
		const char *stop = tab ? tab : end;

		if (n == max)
			return max + 1;
		out[n++] = (struct span){line, (size_t)(stop - line)};
		if (tab == NULL)
			return n;
		line = tab + 1;
	}
}

bool kg_anvil2_version_ok(const char *line, size_t len)
{
	static const char prefix[] = KG_ANVIL2_SERVER_PREFIX "2\t";
	size_t n = sizeof(prefix) - 1;
	uint32_t minor;

	if (len <= n || memcmp(line, prefix, n) != 0)
		return false;
	/* The minor version is any decimal, 0 included. */
	return (len == n + 1 && line[n] == '0') ||
	       kg_anvil_dec(line + n, len - n, UINT32_MAX, &minor);
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static bool field_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > KG_FIELD_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!name_char(s[i]))
			return false;
	}
	return true;
}

static bool name_taken(char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1],
                       size_t n, const struct span *s)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(names[i]) == s->len &&
		    memcmp(names[i], s->s, s->len) == 0)
			return true;
	}
	return false;
}

/* Field names are plain words, which anvil writes unescaped: a name that
 * would need an escape is refused along with every other bad name. */
enum kg_line_err
kg_anvil2_parse_header(const char *line, size_t len,
                       char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1],
                       size_t *n)
{
	struct span sp[KG_FIELDS_MAX + 1];
	size_t count;

	*n = 0;
	if (len == 0)
		return KG_LINE_OK;
	count = split_tabs(line, len, sp, KG_FIELDS_MAX);
	if (count > KG_FIELDS_MAX)
		return KG_LINE_HEADER;
	for (size_t i = 0; i < count; i++) {
		if (!field_name_ok(sp[i].s, sp[i].len) ||
		    name_taken(names, i, &sp[i]))
			return KG_LINE_HEADER;
		memcpy(names[i], sp[i].s, sp[i].len);
		names[i][sp[i].len] = '\0';
	}
	*n = count;
	return KG_LINE_OK;
}

/* Unescapes s into *at, which then moves past it; the span is replaced
 * by the unescaped text. */
static bool take_text(struct span *s, char **at)
{
	ptrdiff_t n = kg_anvil_unescape(s->s, s->len, *at);

	if (n < 0)
		return false;
	s->s = *at;
	s->len = (size_t)n;
	*at += n;
	return true;
}

static bool parse_guid(const struct span *s, uint8_t guid[16])
{
	if (s->len != 32)
		return false;
	for (size_t i = 0; i < 16; i++) {
		int hi = kg_hex_digit(s->s[2 * i]);
		int lo = kg_hex_digit(s->s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		guid[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* An address field that holds no address means none, as in protocol 1. */
static void parse_addr(const struct span *s, struct kg_addr *a)
{
	memset(a, 0, sizeof(*a));
	kg_anvil_parse_addr(s->s, s->len, a);
}

static enum kg_line_err take_names(struct span *sp, char **at,
                                   struct kg_conn *out)
{
	if (!take_text(&sp[F_USER], at) || !take_text(&sp[F_SERVICE], at))
		return KG_LINE_ESCAPE;
	if (sp[F_USER].len == 0 || sp[F_SERVICE].len == 0 ||
	    sp[F_SERVICE].len > KG_SERVICE_MAX ||
	    kg_has_nul(sp[F_USER].s, sp[F_USER].s + sp[F_USER].len) ||
	    kg_has_nul(sp[F_SERVICE].s, sp[F_SERVICE].s + sp[F_SERVICE].len))
		return KG_LINE_IDENT;
	out->user = sp[F_USER].s;
	out->user_len = sp[F_USER].len;
	out->service = sp[F_SERVICE].s;
	out->service_len = sp[F_SERVICE].len;
	return KG_LINE_OK;
}

/* A value must be text a reply can carry: a connection whose value is
 * not cannot be shown or selected truthfully, so its line is malformed. */
static enum kg_line_err
take_fields(struct span *vals, size_t n_vals, char **at,
            char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1],
            struct kg_conn *out, struct kg_field fields[KG_FIELDS_MAX])
{
	size_t k = 0;

	for (size_t i = 0; i < n_vals; i++) {
		if (!take_text(&vals[i], at))
			return KG_LINE_ESCAPE;
		if (vals[i].len == 0)
			continue;
		if (vals[i].len > KG_FIELD_VALUE_MAX ||
		    !kg_text_ok(vals[i].s, vals[i].len))
			return KG_LINE_FIELD;
		fields[k++] = (struct kg_field){names[i], strlen(names[i]),
		                                vals[i].s, vals[i].len};
	}
	out->fields = fields;
	out->n_fields = k;
	return KG_LINE_OK;
}

enum kg_line_err
kg_anvil2_parse_row(const char *line, size_t len,
                    char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1],
                    size_t n_names, struct kg_conn *out, char *scratch,
                    struct kg_field fields[KG_FIELDS_MAX])
{
	struct span sp[ROW_FIELDS_MAX + 1];
	size_t n = split_tabs(line, len, sp, FIXED_FIELDS + n_names);
	char *at = scratch;
	enum kg_line_err e;

	if (n < FIXED_FIELDS || n > FIXED_FIELDS + n_names)
		return KG_LINE_FIELDS;
	if (!kg_anvil_dec(sp[F_PID].s, sp[F_PID].len, INT32_MAX, &out->pid))
		return KG_LINE_PID;
	out->refcount = 1;
	e = take_names(sp, &at, out);
	if (e != KG_LINE_OK)
		return e;
	if (!parse_guid(&sp[F_GUID], out->guid))
		return KG_LINE_GUID;
	out->has_guid = true;
	if (!take_text(&sp[F_IP], &at) || !take_text(&sp[F_DEST], &at))
		return KG_LINE_ESCAPE;
	parse_addr(&sp[F_IP], &out->addr);
	parse_addr(&sp[F_DEST], &out->dest);
	return take_fields(sp + FIXED_FIELDS, n - FIXED_FIELDS, &at, names, out,
	                   fields);
}

uint32_t kg_anvil2_recover_pid(const char *s, size_t len)
{
	const char *tab = memchr(s, '\t', len);
	uint32_t pid;

	if (tab == NULL || !kg_anvil_dec(s, (size_t)(tab - s), INT32_MAX, &pid))
		return 0;
	return pid;
}

static void put_addr(struct kg_anvil_out *o, const struct kg_addr *a)
{
	char ip[KG_NET_STRLEN];

	kg_addr_format(a, ip);
	kg_anvil_put(o, ip, strlen(ip));
}

/* The value c has for names[i], or NULL. */
static const struct kg_field *value_of(const struct kg_conn *c,
                                       const char *name)
{
	for (size_t i = 0; i < c->n_fields; i++) {
		if (c->fields[i].name_len == strlen(name) &&
		    memcmp(c->fields[i].name, name, c->fields[i].name_len) == 0)
			return &c->fields[i];
	}
	return NULL;
}

size_t kg_anvil2_format_row(const struct kg_conn *c,
                            char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1],
                            size_t n_names, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	struct kg_anvil_out o = {.buf = buf, .cap = cap};
	char guid[32];

	for (size_t i = 0; i < 16; i++) {
		guid[2 * i] = hex[c->guid[i] >> 4];
		guid[2 * i + 1] = hex[c->guid[i] & 15];
	}
	kg_anvil_put_dec(&o, c->pid);
	kg_anvil_put(&o, "\t", 1);
	kg_anvil_put_escaped(&o, c->user, c->user_len);
	kg_anvil_put(&o, "\t", 1);
	kg_anvil_put_escaped(&o, c->service, c->service_len);
	kg_anvil_put(&o, "\t", 1);
	put_addr(&o, &c->addr);
	kg_anvil_put(&o, "\t", 1);
	kg_anvil_put(&o, guid, sizeof(guid));
	kg_anvil_put(&o, "\t", 1);
	put_addr(&o, &c->dest);
	for (size_t i = 0; i < n_names; i++) {
		const struct kg_field *f = value_of(c, names[i]);

		kg_anvil_put(&o, "\t", 1);
		if (f != NULL)
			kg_anvil_put_escaped(&o, f->value, f->value_len);
	}
	return o.full ? 0 : o.len;
}
