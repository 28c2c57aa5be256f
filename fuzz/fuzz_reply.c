/* SPDX-License-Identifier: MIT */
/* Property: a reply packet kg_reply_decode accepts is canonical. Every
 * record the callbacks see is written again through a kg_reply_writer; a
 * records packet must come out as one packet identical to the input, an end
 * packet likewise. A rejected packet must not have run any callback. */
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct rewrite {
	struct kg_reply_writer w;
	uint8_t first[KG_PKT_MAX];
	size_t first_len;
	size_t packets;
	size_t callbacks;
};

static struct rewrite rw;

static int keep_packet(void *ctx, const uint8_t *pkt, size_t len)
{
	struct rewrite *r = ctx;

	if (r->packets++ == 0) {
		memcpy(r->first, pkt, len);
		r->first_len = len;
	}
	return 0;
}

/* A record the decoder accepted must be one the writer accepts. */
static int must(int rc)
{
	if (rc != 0)
		abort();
	return 0;
}

static int on_user(void *ctx, enum kg_rec_type type, const char *name,
                   size_t len)
{
	struct rewrite *r = ctx;

	r->callbacks++;
	return must(kg_rw_user(&r->w, type, name, len));
}

static int on_pid(void *ctx, uint32_t pid)
{
	struct rewrite *r = ctx;

	r->callbacks++;
	return must(kg_rw_pid(&r->w, pid));
}

static int on_refused(void *ctx, uint32_t pid, uint8_t reason)
{
	struct rewrite *r = ctx;

	r->callbacks++;
	return must(kg_rw_refused(&r->w, pid, reason));
}

static int on_who(void *ctx, const struct kg_who_row *row)
{
	struct rewrite *r = ctx;

	r->callbacks++;
	return must(kg_rw_who(&r->w, row));
}

static int on_instance(void *ctx, const struct kg_instance_row *row)
{
	struct rewrite *r = ctx;

	r->callbacks++;
	return must(kg_rw_instance(&r->w, row));
}

static int on_end(void *ctx, const struct kg_reply_end *end)
{
	struct rewrite *r = ctx;

	r->callbacks++;
	if (strlen(end->error) != end->error_len)
		abort();
	/* The writer sends its own record count: stand in for the records
	 * that preceded this end packet in its reply. */
	r->w.records = end->records;
	return must(kg_rw_end(&r->w, end));
}

static const struct kg_reply_handler handler = {
        on_user, on_pid, on_refused, on_who, on_instance, on_end,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kg_reply_end done = {.status = KG_EXIT_OK};
	bool is_end;
	int cb;

	rw.first_len = 0;
	rw.packets = 0;
	rw.callbacks = 0;
	kg_rw_init(&rw.w, keep_packet, &rw);
	if (kg_reply_decode(data, size, &handler, &rw, &is_end, &cb) !=
	    KG_WIRE_OK) {
		if (rw.callbacks != 0)
			abort();
		return 0;
	}
	if (cb != 0 || rw.callbacks == 0)
		abort();
	/* The end packet that flushes the records is the second one. */
	if (!is_end && (kg_rw_end(&rw.w, &done) != 0 || rw.packets != 2))
		abort();
	if (is_end && rw.packets != 1)
		abort();
	if (rw.first_len != size || memcmp(rw.first, data, size) != 0)
		abort();
	return 0;
}
