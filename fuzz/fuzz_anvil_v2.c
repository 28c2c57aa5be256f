/* SPDX-License-Identifier: MIT */
/* Properties of protocol-2 (Dovecot 2.4) dumps. The first input byte
 * picks a chunk size; the rest is what anvil sends its client: VERSION,
 * the header of field names, the rows.
 *  - Fed in reads of that size, the dump makes the parser do what one
 *    read of the whole does.
 *  - Every connection read is well-formed, and written back with
 *    kg_anvil2_format_row it parses to the same connection.
 *  - Rows are read only after a protocol-2 VERSION line.
 *  - A protocol-1 parser given the same bytes finds that anvil speaks
 *    protocol 2 exactly when their first line, read whole, starts as
 *    protocol 2's VERSION line does. */
#include <stdlib.h>
#include <string.h>

#include "broker/anvil_v2.h"
#include "fuzz/dump_split.h"
#include "proto/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Escaping at most doubles the text; numbers and separators add little. */
#define FORMAT_MAX (2 * KG_ANVIL_LINE_MAX + 64)

static struct kg_dump_parser parser, other;
static char formatted[FORMAT_MAX];
static char scratch[FORMAT_MAX];

/* ::ffff:0:0/96 must have been folded to IPv4. */
static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};

static void check_addr(const struct kg_addr *a)
{
	if (a->family != KG_AF_NONE && kg_family_len(a->family) == 0)
		abort();
	if (a->family == KG_AF_INET6 &&
	    memcmp(a->bytes, v4_mapped, sizeof(v4_mapped)) == 0)
		abort();
}

/* Where f's name stands in the header, or p->n_names. */
static size_t name_index(const struct kg_dump_parser *p,
                         const struct kg_field *f)
{
	size_t i = 0;

	while (i < p->n_names && (strlen(p->names[i]) != f->name_len ||
	                          memcmp(p->names[i], f->name, f->name_len)))
		i++;
	return i;
}

/* Values follow the header's order, each name at most once, and are
 * text a reply can carry. */
static void check_fields(const struct kg_dump_parser *p,
                         const struct kg_conn *c)
{
	size_t next = 0;

	if (c->n_fields > p->n_names)
		abort();
	for (size_t i = 0; i < c->n_fields; i++) {
		const struct kg_field *f = &c->fields[i];
		size_t k = name_index(p, f);

		if (k == p->n_names || k < next || f->value_len == 0 ||
		    f->value_len > KG_FIELD_VALUE_MAX ||
		    !kg_text_ok(f->value, f->value_len))
			abort();
		next = k + 1;
	}
}

static void check_conn(const struct kg_dump_parser *p, const struct kg_conn *c)
{
	if (c->pid < 1 || c->pid > INT32_MAX || c->refcount != 1 ||
	    !c->has_guid)
		abort();
	if (c->service_len < 1 || c->service_len > KG_SERVICE_MAX ||
	    memchr(c->service, '\0', c->service_len))
		abort();
	if (c->user_len < 1 || memchr(c->user, '\0', c->user_len))
		abort();
	check_addr(&c->addr);
	check_addr(&c->dest);
	check_fields(p, c);
}

static bool same_text(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static bool same_addr(const struct kg_addr *a, const struct kg_addr *b)
{
	return a->family == b->family &&
	       memcmp(a->bytes, b->bytes, kg_family_len(a->family)) == 0;
}

static bool same_conn(const struct kg_conn *a, const struct kg_conn *b)
{
	if (a->pid != b->pid || a->refcount != b->refcount ||
	    !same_addr(&a->addr, &b->addr) || !same_addr(&a->dest, &b->dest) ||
	    memcmp(a->guid, b->guid, sizeof(a->guid)) != 0 ||
	    !same_text(a->service, a->service_len, b->service,
	               b->service_len) ||
	    !same_text(a->user, a->user_len, b->user, b->user_len) ||
	    a->n_fields != b->n_fields)
		return false;
	for (size_t i = 0; i < a->n_fields; i++)
		if (!same_text(a->fields[i].name, a->fields[i].name_len,
		               b->fields[i].name, b->fields[i].name_len) ||
		    !same_text(a->fields[i].value, a->fields[i].value_len,
		               b->fields[i].value, b->fields[i].value_len))
			return false;
	return true;
}

/* Each row as the whole dump gives it: well-formed, and the same once
 * written back and parsed again under the same header. */
static int check_row(void *ctx, const struct kg_conn *c)
{
	struct kg_dump_parser *p = ctx;
	struct kg_field fields[KG_FIELDS_MAX];
	struct kg_conn again;
	size_t n;

	check_conn(p, c);
	n = kg_anvil2_format_row(c, p->names, p->n_names, formatted,
	                         sizeof(formatted));
	if (n == 0 || memchr(formatted, '\n', n))
		abort();
	if (kg_anvil2_parse_row(formatted, n, p->names, p->n_names, &again,
	                        scratch, fields) != KG_LINE_OK ||
	    !same_conn(c, &again))
		abort();
	return 0;
}

/* No row is read, nor reported, unless the first line is VERSION. */
static void check_preamble(const char *buf, size_t len,
                           const struct split_outcome *o)
{
	const char *nl = memchr(buf, '\n', len);

	if (o->bad_version && (o->calls || o->unreadable))
		abort();
	if ((o->calls || o->unreadable) &&
	    (nl == NULL || !kg_anvil2_version_ok(buf, (size_t)(nl - buf))))
		abort();
}

static void check_other_protocol(const char *buf, size_t len)
{
	static const char prefix[] = KG_ANVIL2_SERVER_PREFIX;
	const size_t n = sizeof(prefix) - 1;
	const char *nl = memchr(buf, '\n', len);
	size_t first = nl ? (size_t)(nl - buf) : len;
	struct split_outcome o = {0};

	split_run(&other, 1, buf, len, len, &o);
	if (o.other_proto != (nl != NULL && first <= KG_ANVIL_LINE_MAX &&
	                      first >= n && memcmp(buf, prefix, n) == 0))
		abort();
	if (o.other_proto && (o.calls || o.unreadable || o.used != first + 1))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data + 1;
	struct split_outcome whole = {.check = check_row, .check_ctx = &parser};
	struct split_outcome chunked = {0};

	if (size < 1)
		return 0;
	split_run(&parser, 2, buf, size - 1, size - 1, &whole);
	split_run(&parser, 2, buf, size - 1, (size_t)data[0] + 1, &chunked);
	split_compare(&whole, &chunked);
	check_preamble(buf, size - 1, &whole);
	check_other_protocol(buf, size - 1);
	return 0;
}
