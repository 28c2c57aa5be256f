/* SPDX-License-Identifier: MIT */
/* The stream-splitting property of the anvil dump harnesses: a dump fed
 * in reads of one size must make the parser do exactly what one read of
 * the whole does. What it did is kept as counts, flags and a hash of the
 * callbacks in their order, so that two runs compare in a few words. */
#ifndef KG_FUZZ_DUMP_SPLIT_H
#define KG_FUZZ_DUMP_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/anvil_dump.h"

struct split_outcome {
	uint64_t hash; /* every connection and unreadable line, in order */
	uint64_t calls;
	uint64_t unreadable;
	uint64_t lines;
	uint64_t malformed;
	enum kg_line_err first_err;
	bool done;
	bool other_proto;
	bool bad_version;
	size_t used;
	/* Called with each connection (when not NULL), to check it while
	 * its strings live. */
	kg_conn_fn check;
	void *check_ctx;
};

/* Feeds buf[0..len) to p, initialised for proto, in reads of chunk
 * bytes, until it is used up or the dump is done; aborts when a feed
 * fails or leaves bytes unused before the end. o->check and
 * o->check_ctx are kept, the rest is filled. */
void split_run(struct kg_dump_parser *p, uint8_t proto, const char *buf,
               size_t len, size_t chunk, struct split_outcome *o);

/* Aborts unless the two runs did the same, and each reported every line
 * it did not count as a connection. */
void split_compare(const struct split_outcome *a,
                   const struct split_outcome *b);

#endif
