/* SPDX-License-Identifier: MIT */
/* Property: kg_anvil_parse_addr reads exactly the addresses glibc's
 * inet_pton reads (AF_INET first, then AF_INET6), to the same bytes, with
 * an IPv4-mapped IPv6 address folded to IPv4 as kg_addr_set does; any
 * other text leaves the address untouched. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "broker/anvil_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longer text is no address either way; a little beyond the limit keeps
 * the length check itself under test. */
#define INPUT_MAX (INET6_ADDRSTRLEN + 8)

static struct kg_addr reference(const char *text)
{
	struct kg_addr a;
	uint8_t bytes[16];

	memset(&a, 0x5a, sizeof(a));
	if (inet_pton(AF_INET, text, bytes) == 1)
		kg_addr_set(&a, KG_AF_INET, bytes);
	else if (inet_pton(AF_INET6, text, bytes) == 1)
		kg_addr_set(&a, KG_AF_INET6, bytes);
	return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[INPUT_MAX + 1];
	struct kg_addr got, want;

	/* inet_pton stops at a NUL; anvil text never holds one. */
	if (size > INPUT_MAX || memchr(data, '\0', size))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	want = size < INET6_ADDRSTRLEN ? reference(text) : reference("");
	memset(&got, 0x5a, sizeof(got));
	kg_anvil_parse_addr(text, size, &got);
	if (memcmp(&got, &want, sizeof(got)) != 0)
		abort();
	return 0;
}
