/* SPDX-License-Identifier: MIT */
/* Property: how the bytes of a protocol-1 dump are split into reads
 * changes nothing. The first input byte picks a chunk size; the rest is
 * fed in chunks of that size and must give the same callback sequence
 * (hashed), the same counts and the same consumed length as one feed of
 * the whole. */
#include "fuzz/dump_split.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kg_dump_parser parser;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct split_outcome whole = {0}, chunked = {0};

	if (size < 1)
		return 0;
	split_run(&parser, 1, (const char *)data + 1, size - 1, size - 1,
	          &whole);
	split_run(&parser, 1, (const char *)data + 1, size - 1,
	          (size_t)data[0] + 1, &chunked);
	split_compare(&whole, &chunked);
	return 0;
}
