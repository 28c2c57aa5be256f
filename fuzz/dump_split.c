/* SPDX-License-Identifier: MIT */
#include "fuzz/dump_split.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a. */
static void mix(uint64_t *h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		*h = (*h ^ b[i]) * 0x100000001b3u;
}

static void mix_text(uint64_t *h, const char *s, size_t len)
{
	mix(h, &len, sizeof(len));
	mix(h, s, len);
}

static void mix_addr(uint64_t *h, const struct kg_addr *a)
{
	mix(h, &a->family, sizeof(a->family));
	mix(h, a->bytes, kg_family_len(a->family));
}

static int record(void *ctx, const struct kg_conn *c)
{
	struct split_outcome *o = ctx;

	mix(&o->hash, &c->pid, sizeof(c->pid));
	mix(&o->hash, &c->refcount, sizeof(c->refcount));
	mix_addr(&o->hash, &c->addr);
	mix_text(&o->hash, c->service, c->service_len);
	mix_text(&o->hash, c->user, c->user_len);
	mix(&o->hash, &c->has_guid, sizeof(c->has_guid));
	if (c->has_guid) {
		mix(&o->hash, c->guid, sizeof(c->guid));
		mix_addr(&o->hash, &c->dest);
	}
	mix(&o->hash, &c->n_fields, sizeof(c->n_fields));
	for (size_t i = 0; i < c->n_fields; i++) {
		mix_text(&o->hash, c->fields[i].name, c->fields[i].name_len);
		mix_text(&o->hash, c->fields[i].value, c->fields[i].value_len);
	}
	o->calls++;
	return o->check ? o->check(o->check_ctx, c) : 0;
}

/* Where an unreadable line is said to be must not depend on the reads
 * either: an overlong line's pid comes from what is kept across them. */
static int record_unreadable(void *ctx, uint32_t pid, uint32_t refcount)
{
	struct split_outcome *o = ctx;

	mix(&o->hash, &pid, sizeof(pid));
	mix(&o->hash, &refcount, sizeof(refcount));
	o->unreadable++;
	return 0;
}

void split_run(struct kg_dump_parser *p, uint8_t proto, const char *buf,
               size_t len, size_t chunk, struct split_outcome *o)
{
	const struct kg_dump_sink sink = {record, record_unreadable, o};

	*o = (struct split_outcome){.hash = 0xcbf29ce484222325u,
	                            .check = o->check,
	                            .check_ctx = o->check_ctx};
	kg_dump_init(p, proto);
	while (o->used < len && !p->done) {
		size_t n = len - o->used < chunk ? len - o->used : chunk;
		size_t used = 0;

		if (kg_dump_feed(p, buf + o->used, n, &sink, &used) != 0 ||
		    used > n || (used < n && !p->done))
			abort();
		o->used += used;
	}
	o->lines = p->lines;
	o->malformed = p->malformed;
	o->first_err = p->first_err;
	o->done = p->done;
	o->other_proto = p->other_proto;
	o->bad_version = p->bad_version;
}

/* A protocol-2 preamble that did not parse is counted, not reported:
 * it is no line of any process. */
void split_compare(const struct split_outcome *a, const struct split_outcome *b)
{
	uint64_t preamble = a->first_err == KG_LINE_VERSION ||
	                    a->first_err == KG_LINE_HEADER;

	if (a->calls != a->lines || a->unreadable + preamble != a->malformed ||
	    a->hash != b->hash || a->calls != b->calls ||
	    a->unreadable != b->unreadable || a->lines != b->lines ||
	    a->malformed != b->malformed || a->first_err != b->first_err ||
	    a->done != b->done || a->other_proto != b->other_proto ||
	    a->bad_version != b->bad_version || a->used != b->used)
		abort();
}
