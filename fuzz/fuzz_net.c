/* SPDX-License-Identifier: MIT */
/* Properties: kg_net_parse accepts exactly the text the reference
 * parser (tests/reference/net_reference.c, which reads the text forms
 * without inet_pton) accepts, and to the same network; an accepted
 * network is canonical, contains its own address, holds exactly the
 * addresses the reference's bit-by-bit test says at its edges, and
 * formatting then parsing it gives the same bytes; kg_arg_classify says
 * NET exactly when kg_net_parse accepts, with the same network. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/netparse.h"
#include "tests/reference/net_reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const struct kg_net *n)
{
	char text[KG_NET_STRLEN];
	struct kg_net again;
	struct kg_addr a;

	if (!kg_net_canonical(n))
		abort();
	kg_net_format(n, text);
	if (!kg_net_parse(text, strlen(text), &again, NULL) ||
	    memcmp(&again, n, sizeof(again)) != 0)
		abort();
	kg_addr_set(&a, n->family, n->bytes);
	if (a.family != n->family || !kg_net_contains(n, &a))
		abort();
}

/* n's own address with one bit flipped: the last network bit, the first
 * host bit, and one the input picks. */
static void check_edges(const struct kg_net *n, size_t pick)
{
	unsigned width = (unsigned)kg_family_len(n->family) * 8;
	unsigned bits[] = {n->prefix > 0 ? n->prefix - 1u : 0,
	                   n->prefix < width ? n->prefix : width - 1,
	                   (unsigned)(pick % width)};

	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		struct kg_addr a = {.family = n->family};

		memcpy(a.bytes, n->bytes, sizeof(a.bytes));
		a.bytes[bits[i] / 8] ^= (uint8_t)(0x80 >> (bits[i] % 8));
		if (kg_net_contains(n, &a) != net_reference_contains(n, &a))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct kg_net n, c;
	const char *why = NULL;
	bool ok = kg_net_parse(in, size, &n, &why);
	enum kg_arg_kind kind = kg_arg_classify(in, size, &c, NULL);

	struct kg_net want;

	if (net_reference_parse(in, size, &want) != ok ||
	    (ok && memcmp(&want, &n, sizeof(want)) != 0))
		abort();
	if (ok) {
		check_accepted(&n);
		check_edges(&n, size);
	} else if (why == NULL || n.family != KG_AF_NONE)
		abort();
	if ((kind == KG_ARG_NET) != ok)
		abort();
	if (ok && memcmp(&c, &n, sizeof(c)) != 0)
		abort();
	return 0;
}
