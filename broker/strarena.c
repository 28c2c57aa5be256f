/* SPDX-License-Identifier: MIT */
#include "broker/strarena.h"

#include <stdlib.h>
#include <string.h>

/* A reference is chunk << CHUNK_SHIFT | position. The last chunk a
 * reference can name is left out so that no reference reaches
 * KG_STRARENA_NONE. */
#define CHUNK_SHIFT 20
#define CHUNK_SIZE  ((size_t)1 << CHUNK_SHIFT)
#define CHUNKS_MAX  (((size_t)1 << (32 - CHUNK_SHIFT)) - 1)
/* A length is stored as 7-bit groups, low first: at most 3 bytes for
 * KG_STRARENA_LEN_MAX. */
#define LEN_HDR_MAX 3

void kg_strarena_init(struct kg_strarena *a)
{
	memset(a, 0, sizeof(*a));
}

static size_t put_len(unsigned char *hdr, size_t len)
{
	size_t n = 0;

	while (len >= 0x80) {
		hdr[n++] = (unsigned char)(len | 0x80);
		len >>= 7;
	}
	hdr[n++] = (unsigned char)len;
	return n;
}

static int add_chunk(struct kg_strarena *a)
{
	char **chunks;
	char *chunk;

	if (a->n_chunks == CHUNKS_MAX)
		return -1;
	chunks = realloc(a->chunks, (a->n_chunks + 1) * sizeof(*chunks));
	if (!chunks)
		return -1;
	a->chunks = chunks;
	chunk = malloc(CHUNK_SIZE);
	if (!chunk)
		return -1;
	a->chunks[a->n_chunks++] = chunk;
	a->used = 0;
	return 0;
}

int kg_strarena_add(struct kg_strarena *a, const char *s, size_t len,
                    uint32_t *ref)
{
	unsigned char hdr[LEN_HDR_MAX];
	size_t hdr_len;
	char *dst;

	if (len > KG_STRARENA_LEN_MAX)
		return -1;
	hdr_len = put_len(hdr, len);
	if ((!a->n_chunks || CHUNK_SIZE - a->used < hdr_len + len) &&
	    add_chunk(a) < 0)
		return -1;
	*ref = (uint32_t)(((a->n_chunks - 1) << CHUNK_SHIFT) | a->used);
	dst = a->chunks[a->n_chunks - 1] + a->used;
	memcpy(dst, hdr, hdr_len);
	if (len)
		memcpy(dst + hdr_len, s, len);
	a->used += hdr_len + len;
	return 0;
}

struct kg_str kg_strarena_get(const struct kg_strarena *a, uint32_t ref)
{
	const unsigned char *e =
	        (const unsigned char *)a->chunks[ref >> CHUNK_SHIFT] +
	        (ref & (CHUNK_SIZE - 1));
	size_t len = 0;
	size_t n = 0;

	do
		len |= (size_t)(e[n] & 0x7f) << (7 * n);
	while (e[n++] & 0x80);
	return (struct kg_str){.s = (const char *)e + n, .len = len};
}

int kg_str_cmp(struct kg_str x, struct kg_str y)
{
	int c = memcmp(x.s, y.s, x.len < y.len ? x.len : y.len);

	if (c)
		return c;
	return (x.len > y.len) - (x.len < y.len);
}

void kg_strarena_free(struct kg_strarena *a)
{
	for (size_t i = 0; i < a->n_chunks; i++)
		free(a->chunks[i]);
	free(a->chunks);
	kg_strarena_init(a);
}
