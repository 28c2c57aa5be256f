/* SPDX-License-Identifier: MIT */
#include "broker/chunkarr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void kg_chunkarr_init(struct kg_chunkarr *a, size_t rec_size)
{
	memset(a, 0, sizeof(*a));
	a->rec_size = rec_size;
}

static int add_chunk(struct kg_chunkarr *a)
{
	char *chunk;

	if (a->n_chunks == a->cap_chunks) {
		size_t cap = a->cap_chunks ? 2 * a->cap_chunks : 16;
		char **chunks;

		if (cap > SIZE_MAX / sizeof(*chunks))
			return -1;
		chunks = realloc(a->chunks, cap * sizeof(*chunks));
		if (!chunks)
			return -1;
		a->chunks = chunks;
		a->cap_chunks = cap;
	}
	if (a->rec_size > SIZE_MAX / KG_CHUNKARR_RECS)
		return -1;
	chunk = malloc(a->rec_size * KG_CHUNKARR_RECS);
	if (!chunk)
		return -1;
	a->chunks[a->n_chunks++] = chunk;
	return 0;
}

void *kg_chunkarr_push(struct kg_chunkarr *a)
{
	if (a->n == a->n_chunks * KG_CHUNKARR_RECS && add_chunk(a) < 0)
		return NULL;
	return kg_chunkarr_at(a, a->n++);
}

void kg_chunkarr_free(struct kg_chunkarr *a)
{
	for (size_t i = 0; i < a->n_chunks; i++)
		free(a->chunks[i]);
	free(a->chunks);
	kg_chunkarr_init(a, a->rec_size);
}
