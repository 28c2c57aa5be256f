/* SPDX-License-Identifier: MIT */
/* Properties: an accepted network is canonical, contains its own address,
 * and formatting then parsing it gives the same bytes; kg_arg_classify
 * says NET exactly when kg_net_parse accepts, with the same network. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/netparse.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct kg_net n, c;
	const char *why = NULL;
	bool ok = kg_net_parse(in, size, &n, &why);
	enum kg_arg_kind kind = kg_arg_classify(in, size, &c, NULL);

	if (ok)
		check_accepted(&n);
	else if (why == NULL || n.family != KG_AF_NONE)
		abort();
	if ((kind == KG_ARG_NET) != ok)
		abort();
	if (ok && memcmp(&c, &n, sizeof(c)) != 0)
		abort();
	return 0;
}
