/* SPDX-License-Identifier: MIT */
#include "cli/hold.h"

#include <stdlib.h>
#include <string.h>

#include "proto/kg_limits.h"

uint8_t *kg_hold_room(struct kg_hold *h, size_t n)
{
	size_t cap = h->cap > 0 ? h->cap : 256;
	uint8_t *np;

	if (n > KG_HOLD_MAX - h->len)
		return NULL;
	if (n <= h->cap - h->len)
		return h->p + h->len;
	while (cap < h->len + n)
		cap *= 2;
	np = realloc(h->p, cap);
	if (np == NULL)
		return NULL;
	h->p = np;
	h->cap = cap;
	return h->p + h->len;
}

int kg_hold_add(struct kg_hold *h, const void *src, size_t n)
{
	uint8_t *at = n > 0 ? kg_hold_room(h, n) : NULL;

	if (n == 0)
		return 0;
	if (at == NULL)
		return -1;
	memcpy(at, src, n);
	h->len += n;
	return 0;
}

int kg_hold_name(struct kg_hold *h, const char *name, size_t len)
{
	uint16_t n = (uint16_t)len;

	if (len > KG_USER_MAX || kg_hold_add(h, &n, sizeof(n)) < 0)
		return -1;
	return kg_hold_add(h, name, len);
}

bool kg_hold_next_name(const struct kg_hold *h, size_t *off, const char **name,
                       size_t *len)
{
	uint16_t n;

	if (*off >= h->len)
		return false;
	memcpy(&n, h->p + *off, sizeof(n));
	*name = (const char *)h->p + *off + sizeof(n);
	*len = n;
	*off += sizeof(n) + n;
	return true;
}
