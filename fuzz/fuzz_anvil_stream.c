/* SPDX-License-Identifier: MIT */
/* Property: how the bytes of a dump are split into reads changes nothing.
 * The first input byte picks a chunk size; the rest is fed in chunks of
 * that size and must give the same callback sequence (hashed), the same
 * counts and the same consumed length as one feed of the whole. */
#include <stdlib.h>
#include <string.h>

#include "broker/anvil_dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	uint64_t hash;
	uint64_t calls;
	uint64_t lines;
	uint64_t malformed;
	uint64_t unreadable;
	enum kg_line_err first_err;
	bool done;
	size_t used;
};

static struct kg_dump_parser parser;

/* FNV-1a. */
static void mix(uint64_t *h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		*h = (*h ^ b[i]) * 0x100000001b3u;
}

static int record(void *ctx, const struct kg_conn *c)
{
	struct outcome *o = ctx;

	mix(&o->hash, &c->pid, sizeof(c->pid));
	mix(&o->hash, &c->refcount, sizeof(c->refcount));
	mix(&o->hash, &c->addr.family, sizeof(c->addr.family));
	mix(&o->hash, c->addr.bytes, kg_family_len(c->addr.family));
	mix(&o->hash, &c->service_len, sizeof(c->service_len));
	mix(&o->hash, c->service, c->service_len);
	mix(&o->hash, &c->user_len, sizeof(c->user_len));
	mix(&o->hash, c->user, c->user_len);
	o->calls++;
	return 0;
}

/* Where an unreadable line is said to be must not depend on the reads
 * either: an overlong line's pid comes from a tail kept across them. */
static int record_unreadable(void *ctx, uint32_t pid, uint32_t refcount)
{
	struct outcome *o = ctx;

	mix(&o->hash, &pid, sizeof(pid));
	mix(&o->hash, &refcount, sizeof(refcount));
	o->unreadable++;
	return 0;
}

static void run(const char *buf, size_t len, size_t chunk, struct outcome *o)
{
	const struct kg_dump_sink sink = {record, record_unreadable, o};

	memset(o, 0, sizeof(*o));
	o->hash = 0xcbf29ce484222325u;
	kg_dump_init(&parser, 1);
	while (o->used < len && !parser.done) {
		size_t n = len - o->used < chunk ? len - o->used : chunk;
		size_t used = 0;

		if (kg_dump_feed(&parser, buf + o->used, n, &sink, &used) !=
		            0 ||
		    used > n || (used < n && !parser.done))
			abort();
		o->used += used;
	}
	o->lines = parser.lines;
	o->malformed = parser.malformed;
	o->first_err = parser.first_err;
	o->done = parser.done;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, chunked;

	if (size < 1)
		return 0;
	run((const char *)data + 1, size - 1, size - 1, &whole);
	run((const char *)data + 1, size - 1, (size_t)data[0] + 1, &chunked);
	if (whole.calls != whole.lines || whole.unreadable != whole.malformed ||
	    whole.hash != chunked.hash || whole.calls != chunked.calls ||
	    whole.lines != chunked.lines ||
	    whole.malformed != chunked.malformed ||
	    whole.first_err != chunked.first_err ||
	    whole.done != chunked.done || whole.used != chunked.used)
		abort();
	return 0;
}
