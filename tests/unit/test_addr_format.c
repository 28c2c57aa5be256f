/* SPDX-License-Identifier: MIT */
/* kg_addr_format writes exactly what inet_ntop writes: for every pattern
 * of zero groups in an IPv6 address (which decides where "::" goes and
 * when the end is dotted decimal), for IPv4 octets of every width, and
 * for pseudo-random addresses of both families. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "proto/addr.h"

static void check(uint8_t family, const uint8_t *bytes)
{
	char want[INET6_ADDRSTRLEN];
	char got[KG_NET_STRLEN];
	struct kg_addr a = {.family = family};

	memcpy(a.bytes, bytes, kg_family_len(family));
	assert_non_null(inet_ntop(family == KG_AF_INET ? AF_INET : AF_INET6,
	                          bytes, want, sizeof(want)));
	kg_addr_format(&a, got);
	assert_string_equal(got, want);
}

static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Group values of every hex width, and 0xffff, which marks a mapped
 * address when it is group 5. */
static const uint16_t group_values[] = {0x1, 0xa, 0x10, 0xfff, 0x1000, 0xffff};

static void test_v6_every_zero_pattern(void **state)
{
	(void)state;
	for (unsigned mask = 0; mask < 256; mask++)
		for (size_t v = 0;
		     v < sizeof(group_values) / sizeof(group_values[0]); v++) {
			uint8_t b[16];

			for (size_t g = 0; g < 8; g++) {
				uint16_t w =
				        mask >> g & 1
				                ? 0
				                : (uint16_t)(group_values[v] +
				                             g * (v < 5));

				b[2 * g] = (uint8_t)(w >> 8);
				b[2 * g + 1] = (uint8_t)w;
			}
			check(KG_AF_INET6, b);
		}
}

static void test_v6_dotted_endings(void **state)
{
	static const uint8_t cases[][16] = {
	        {[10] = 0xff, [11] = 0xff, 192, 0, 2, 1}, /* mapped */
	        {[12] = 192, 0, 2, 1},                    /* compatible */
	        {[15] = 1},                               /* ::1, not dotted */
	        {0},                                      /* :: */
	        {[10] = 0xff, [11] = 0xff},               /* ::ffff:0.0.0.0 */
	        {[11] = 0xff, [12] = 1, 2, 3, 4},         /* ::ff:102:304 */
	        {[9] = 1, [10] = 0xff, [11] = 0xff, 1},   /* no: group 4 set */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(KG_AF_INET6, cases[i]);
}

static void test_v4_and_random(void **state)
{
	uint32_t rng = 0x12345678u;

	(void)state;
	for (unsigned v = 0; v < 256; v++) {
		uint8_t b[4] = {(uint8_t)v, (uint8_t)(255 - v), 0, (uint8_t)v};

		check(KG_AF_INET, b);
	}
	for (int i = 0; i < 100000; i++) {
		uint8_t b[16];

		for (size_t k = 0; k < 16; k++) {
			uint32_t r = next_rand(&rng);

			/* Mostly zero bytes, so that zero runs are common. */
			b[k] = r % 3 ? 0 : (uint8_t)(r >> 8);
		}
		check(KG_AF_INET6, b);
		check(KG_AF_INET, b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_v6_every_zero_pattern),
	        cmocka_unit_test(test_v6_dotted_endings),
	        cmocka_unit_test(test_v4_and_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
