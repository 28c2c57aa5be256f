/* SPDX-License-Identifier: MIT */
/* Property: a line kg_anvil_parse_line accepts is well-formed, and
 * formatting it with kg_anvil_format_line then parsing again gives the same
 * connection, byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "broker/anvil_dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Escaping at most doubles the names; numbers and separators add little. */
#define FORMAT_MAX (2 * KG_ANVIL_LINE_MAX + 64)

static char scratch1[KG_ANVIL_LINE_MAX];
static char scratch2[FORMAT_MAX];
static char formatted[FORMAT_MAX];

/* ::ffff:0:0/96 must have been folded to IPv4. */
static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};

static void check_conn(const struct kg_conn *c)
{
	if (c->pid < 1 || c->pid > INT32_MAX || c->refcount < 1)
		abort();
	if (c->service_len < 1 || c->service_len > KG_SERVICE_MAX ||
	    memchr(c->service, '\0', c->service_len) ||
	    memchr(c->service, '/', c->service_len))
		abort();
	if (c->user_len < 1 || memchr(c->user, '\0', c->user_len))
		abort();
	if (c->addr.family != KG_AF_NONE && kg_family_len(c->addr.family) == 0)
		abort();
	if (c->addr.family == KG_AF_INET6 &&
	    memcmp(c->addr.bytes, v4_mapped, sizeof(v4_mapped)) == 0)
		abort();
}

static bool same_conn(const struct kg_conn *a, const struct kg_conn *b)
{
	size_t alen = kg_family_len(a->addr.family);

	return a->pid == b->pid && a->refcount == b->refcount &&
	       a->addr.family == b->addr.family &&
	       memcmp(a->addr.bytes, b->addr.bytes, alen) == 0 &&
	       a->service_len == b->service_len &&
	       memcmp(a->service, b->service, a->service_len) == 0 &&
	       a->user_len == b->user_len &&
	       memcmp(a->user, b->user, a->user_len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kg_conn a, b;
	size_t n;

	if (size > KG_ANVIL_LINE_MAX)
		return 0;
	if (kg_anvil_parse_line((const char *)data, size, &a, scratch1) !=
	    KG_LINE_OK)
		return 0;
	check_conn(&a);
	n = kg_anvil_format_line(&a, formatted, sizeof(formatted));
	if (n == 0 || memchr(formatted, '\n', n))
		abort();
	if (kg_anvil_parse_line(formatted, n, &b, scratch2) != KG_LINE_OK)
		abort();
	if (!same_conn(&a, &b))
		abort();
	return 0;
}
