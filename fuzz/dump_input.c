/* SPDX-License-Identifier: MIT */
#include "fuzz/dump_input.h"

#include <string.h>

struct reader {
	const uint8_t *p;
	size_t n;
};

static uint8_t take(struct reader *r)
{
	if (r->n == 0)
		return 0;
	r->n--;
	return *r->p++;
}

/* Names and globs share letters in both cases, so that case folding
 * decides matches; \xff is no ASCII letter to fold. */
static const char name_chars[8] = {'a', 'A', 'b', 'B', '@', 'x', '.', '\xff'};
static const char glob_chars[8] = {'a', 'B', '*', '?', '@', 'x', '*', '\xff'};

static const char *const services[] = {"imap", "pop3", "im", "imap\xff"};

/* A host's two addresses from one network, another network, no address,
 * and IPv6 likewise. */
static const struct kg_addr addrs[8] = {
        {.family = KG_AF_NONE},
        {.family = KG_AF_INET, .bytes = {192, 0, 2, 1}},
        {.family = KG_AF_INET, .bytes = {192, 0, 2, 200}},
        {.family = KG_AF_INET, .bytes = {10, 0, 0, 1}},
        {.family = KG_AF_INET6, .bytes = {0x20, 0x01, 0x0d, 0xb8, [15] = 7}},
        {.family = KG_AF_INET6,
         .bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 1}},
        {.family = KG_AF_INET6, .bytes = {[15] = 1}},
        {.family = KG_AF_INET, .bytes = {0, 0, 0, 0}},
};

/* Text of min to DUMP_INPUT_NAME_MAX bytes from chars; its length. */
static size_t text(struct reader *r, const char chars[8], char *out, size_t min)
{
	size_t len = min + take(r) % (DUMP_INPUT_NAME_MAX + 1 - min);

	for (size_t i = 0; i < len; i++)
		out[i] = chars[take(r) % 8];
	return len;
}

/* A canonical network around one of the addresses (IPv4 for none). */
static struct kg_net network(struct reader *r)
{
	const struct kg_addr *a = &addrs[take(r) % 8];
	struct kg_net n = {.family = a->family};
	unsigned width;

	if (n.family == KG_AF_NONE)
		n.family = KG_AF_INET;
	width = n.family == KG_AF_INET ? 32 : 128;
	n.prefix = (uint8_t)(take(r) % (width + 1));
	for (unsigned i = 0; i < n.prefix; i++)
		n.bytes[i / 8] |= a->bytes[i / 8] & (0x80 >> (i % 8));
	return n;
}

static void decode_scope(struct reader *r, uint8_t how, struct dump_input *in)
{
	size_t n_globs = 1 + take(r) % DUMP_INPUT_GLOBS;
	size_t n_nets = 1 + take(r) % DUMP_INPUT_GLOBS;

	in->scope.all_users = !(how & 1);
	in->scope.all_nets = !(how & 2);
	for (size_t i = 0; !in->scope.all_users && i < n_globs; i++) {
		in->scope_globs[i].s = in->glob_text[i];
		in->scope_globs[i].len =
		        text(r, glob_chars, in->glob_text[i], 1);
		in->scope.n_globs++;
	}
	for (size_t i = 0; !in->scope.all_nets && i < n_nets; i++) {
		in->scope_nets[i] = network(r);
		in->scope.n_nets++;
	}
	in->scope.globs = in->scope_globs;
	in->scope.nets = in->scope_nets;
}

/* Pids 1 to 8 mostly, INT_MAX, and for an unreadable line also the
 * unknown ones: 0 and past INT_MAX. */
static uint32_t pid_of(uint8_t kind, bool unreadable)
{
	if (unreadable && (kind & 7) == 7)
		return 0;
	if (unreadable && (kind & 7) == 6)
		return 0x80000000u;
	return (kind & 0x38) == 0x38 ? 0x7fffffffu : 1u + (kind & 7);
}

static uint32_t refcount_of(uint8_t b)
{
	return b >= 0xf8 ? UINT32_MAX - (b & 7) : 1u + b % 3;
}

static void decode_line(struct reader *r, struct dump_input *in,
                        struct plan_reference_line *l)
{
	uint8_t kind = take(r);
	uint8_t what = take(r);
	const char *service = services[(what >> 5) & 3];
	size_t name = what & 3;

	l->unreadable = (kind & 0xc0) == 0xc0;
	l->conn = (struct kg_conn){
	        .pid = pid_of(kind, l->unreadable),
	        .refcount = refcount_of(take(r)),
	        .addr = addrs[(what >> 2) & 7],
	        .service = service,
	        .service_len = strlen(service),
	        .user = in->names[name],
	        .user_len = in->name_lens[name],
	};
}

void dump_input_decode(const uint8_t *data, size_t size, uint8_t op,
                       struct dump_input *in)
{
	struct reader r = {data, size};
	uint8_t how = take(&r);

	memset(in, 0, sizeof(*in));
	in->extra = take(&r);
	in->req.op = op;
	in->req.flags = how & 1 ? KG_REQ_FORCE : 0;
	if (how & 2)
		in->req.glob_len =
		        (uint8_t)text(&r, glob_chars, in->req.glob, 1);
	if (how & 4)
		in->req.net = network(&r);
	decode_scope(&r, how >> 3, in);
	for (size_t i = 0; i < DUMP_INPUT_NAMES; i++)
		in->name_lens[i] = text(&r, name_chars, in->names[i], 1);
	while (r.n > 0 && in->n_lines < DUMP_INPUT_LINES)
		decode_line(&r, in, &in->lines[in->n_lines++]);
}
