/* SPDX-License-Identifier: MIT */
/* An append-only array of fixed-size records held in fixed-size chunks.
 *
 * Growth allocates one more chunk and never copies, so an array of a
 * million records costs its own size plus one chunk, not the transient
 * double a realloc-grown array needs. Records never move: a pointer to one
 * stays valid until kg_chunkarr_free. */
#ifndef KG_CHUNKARR_H
#define KG_CHUNKARR_H

#include <stddef.h>

/* Records per chunk, as a power of two. */
#define KG_CHUNKARR_SHIFT 14
#define KG_CHUNKARR_RECS  ((size_t)1 << KG_CHUNKARR_SHIFT)

struct kg_chunkarr {
	size_t rec_size;
	char **chunks;
	size_t n_chunks;
	size_t cap_chunks;
	size_t n; /* records */
};

void kg_chunkarr_init(struct kg_chunkarr *a, size_t rec_size);
/* Appends one uninitialized record; NULL on allocation failure. */
void *kg_chunkarr_push(struct kg_chunkarr *a);
void kg_chunkarr_free(struct kg_chunkarr *a);

/* Record i, i < a->n. */
static inline void *kg_chunkarr_at(const struct kg_chunkarr *a, size_t i)
{
	return a->chunks[i >> KG_CHUNKARR_SHIFT] +
	       (i & (KG_CHUNKARR_RECS - 1)) * a->rec_size;
}

#endif
