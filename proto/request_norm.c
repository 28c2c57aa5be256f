/* SPDX-License-Identifier: MIT */
#include "proto/request_norm.h"

#include <string.h>

#include "proto/globparse.h"

int kg_request_normalize(struct kg_request *r, const char **why)
{
	enum kg_wire_err werr = kg_request_check(r);
	char norm[KG_GLOB_MAX + 1];
	size_t norm_len;
	enum kg_glob_err gerr;

	if (werr != KG_WIRE_OK) {
		*why = kg_wire_strerror(werr);
		return KG_EXIT_USAGE;
	}
	if (r->glob_len == 0)
		return KG_EXIT_OK;
	gerr = kg_glob_normalize(r->glob, r->glob_len, norm, &norm_len);
	if (gerr != KG_GLOB_OK) {
		*why = kg_glob_strerror(gerr);
		return gerr == KG_GLOB_EMPTY ? KG_EXIT_USAGE : KG_EXIT_DATAERR;
	}
	memcpy(r->glob, norm, norm_len + 1);
	r->glob_len = (uint8_t)norm_len;
	return KG_EXIT_OK;
}
