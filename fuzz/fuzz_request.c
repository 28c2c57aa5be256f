/* SPDX-License-Identifier: MIT */
/* Property: a request kg_request_decode accepts passes kg_request_check,
 * has NUL-terminated text, and encodes back to exactly the input bytes (the
 * wire form is canonical). */
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kg_request r;
	uint8_t out[KG_REQ_MAX];
	size_t len = 0;

	if (kg_request_decode(data, size, &r) != KG_WIRE_OK)
		return 0;
	if (kg_request_check(&r) != KG_WIRE_OK)
		abort();
	if (strlen(r.glob) != r.glob_len || strlen(r.path) != r.path_len ||
	    strlen(r.instance) != r.instance_len ||
	    strlen(r.field_name) != r.field_name_len ||
	    strlen(r.field_value) != r.field_value_len)
		abort();
	if (kg_request_encode(&r, out, sizeof(out), &len) != KG_WIRE_OK)
		abort();
	if (len != size || memcmp(out, data, size) != 0)
		abort();
	return 0;
}
