/* SPDX-License-Identifier: MIT */
#include "tests/unit/testutil24.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/testutil.h"

#define CAPTURE(name, n, text)                                                 \
	static const char name##_bytes[] = text;                               \
	const struct tu24_capture name = {name##_bytes,                        \
	                                  sizeof(name##_bytes) - 1, n}

/* dovecot-2.4-captures/shared/conv-who.txt */
CAPTURE(tu24_shared, 9,
        "VERSION\tanvil-server\t2\t0\n"
        "user_alias\tuser_tenant\n"
        "8226\tbar\tpop3\t127.0.0.3\tb328c0055a7e116b2220000083ecc375\t\t"
        "alias-bar\n"
        "8214\tjane\timap\t::1\tf8f25b0e5a7e116b1620000083ecc375\t\t"
        "alias-jane\n"
        "8214\tbaz\timap\t127.0.0.3\tc09b13095a7e116b1620000083ecc375\t\t"
        "alias-baz\n"
        "8214\tjane\timap\t127.0.0.2\t5800e30f5a7e116b1620000083ecc375\t\t"
        "alias-jane\n"
        "8214\tfoo\timap\t127.0.0.3\t2866c2045a7e116b1620000083ecc375\t\t"
        "alias-foo\n"
        "8214\tbar\timap\t127.0.0.2\t88af39075a7e116b1620000083ecc375\t\t"
        "alias-bar\n"
        "8214\tfoo\timap\t127.0.0.2\t4d87d636597e116b1620000083ecc375\t\t"
        "alias-foo\n"
        "8214\tbaz\timap\t127.0.0.2\t9001220b5a7e116b1620000083ecc375\t\t"
        "alias-baz\n"
        "8214\talice@tenant-a.example\timap\t127.0.0.3\t"
        "50b5de0c5a7e116b1620000083ecc375\t\talias-alice\ttenant-a.example\n"
        "\n");

/* dovecot-2.4-captures/shared/conv-who1_a.txt */
CAPTURE(tu24_shared_foo_gone, 7,
        "VERSION\tanvil-server\t2\t0\n"
        "user_alias\tuser_tenant\n"
        "8226\tbar\tpop3\t127.0.0.3\tb328c0055a7e116b2220000083ecc375\t\t"
        "alias-bar\n"
        "8214\tjane\timap\t::1\tf8f25b0e5a7e116b1620000083ecc375\t\t"
        "alias-jane\n"
        "8214\tbaz\timap\t127.0.0.3\tc09b13095a7e116b1620000083ecc375\t\t"
        "alias-baz\n"
        "8214\tjane\timap\t127.0.0.2\t5800e30f5a7e116b1620000083ecc375\t\t"
        "alias-jane\n"
        "8214\tbar\timap\t127.0.0.2\t88af39075a7e116b1620000083ecc375\t\t"
        "alias-bar\n"
        "8214\tbaz\timap\t127.0.0.2\t9001220b5a7e116b1620000083ecc375\t\t"
        "alias-baz\n"
        "8214\talice@tenant-a.example\timap\t127.0.0.3\t"
        "50b5de0c5a7e116b1620000083ecc375\t\talias-alice\ttenant-a.example\n"
        "\n");

/* dovecot-2.4-captures/single/conv-who.txt */
CAPTURE(tu24_single, 7,
        "VERSION\tanvil-server\t2\t0\n"
        "user_alias\tuser_tenant\n"
        "30880\tjane\timap\t127.0.0.2\t071cf633d57d116ba078000083ecc375\t\t"
        "alias-jane\n"
        "30780\tfoo\timap\t127.0.0.2\t733cc731d47d116b3c78000083ecc375\t\t"
        "alias-foo\n"
        "30789\tfoo\timap\t127.0.0.3\t3db57039d47d116b4578000083ecc375\t\t"
        "alias-foo\n"
        "30844\talice@tenant-a.example\timap\t127.0.0.3\t"
        "b1dd531cd57d116b7c78000083ecc375\t\talias-alice\ttenant-a.example\n"
        "30810\tbar\timap\t127.0.0.2\t5bdcf708d57d116b5a78000083ecc375\t\t"
        "alias-bar\n"
        "30832\tbaz\timap\t127.0.0.3\te2db3f13d57d116b7078000083ecc375\t\t"
        "alias-baz\n"
        "30862\tjane\timap\t::1\t7eb0b628d57d116b8e78000083ecc375\t\t"
        "alias-jane\n"
        "\n");

/* dovecot-2.4-captures/shared/conv-who1_e.txt */
CAPTURE(tu24_none, 0,
        "VERSION\tanvil-server\t2\t0\n"
        "user_alias\tuser_tenant\n"
        "\n");

void tu24_guid(uint32_t n, uint8_t guid[16])
{
	memset(guid, 0, 16);
	guid[0] = (uint8_t)(n >> 24);
	guid[1] = (uint8_t)(n >> 16);
	guid[2] = (uint8_t)(n >> 8);
	guid[3] = (uint8_t)n;
	guid[14] = 0xc3;
	guid[15] = 0x75;
}

struct kg_conn tu24_conn(uint32_t pid, const char *service, const char *user,
                         const char *addr, uint32_t guid)
{
	struct kg_conn c = tu_conn(pid, service, user, addr, 1);

	c.has_guid = true;
	tu24_guid(guid, c.guid);
	return c;
}

uint64_t tu24_feed(const struct tu24_capture *c,
                   const struct kg_dump_sink *sink)
{
	struct kg_dump_parser *p = malloc(sizeof(*p));
	uint64_t rows;
	size_t used;

	assert_non_null(p);
	kg_dump_init(p, 2);
	assert_int_equal(kg_dump_feed(p, c->bytes, c->len, sink, &used), 0);
	assert_int_equal(used, c->len);
	assert_true(p->done);
	assert_int_equal(p->malformed, 0);
	assert_int_equal(p->lines, c->rows);
	rows = p->lines;
	free(p);
	return rows;
}

struct tu24_anvil tu24_anvil;

static int anvil_kick(struct kg_job *job, const struct kg_anvil_kick *k,
                      size_t n, char *err, size_t errlen)
{
	struct tu24_anvil *a = &tu24_anvil;

	(void)job;
	for (size_t i = 0; i < n; i++) {
		assert_true(a->n_asked < TU24_ANVIL_CONNS);
		snprintf(a->users[a->n_asked], sizeof(a->users[0]), "%.*s",
		         (int)k[i].user_len, k[i].user);
		memcpy(a->guids[a->n_asked++], k[i].guid, 16);
	}
	if (a->answer < 0)
		snprintf(err, errlen, "%s", "cannot send to anvil: EPIPE");
	return a->answer == TU24_ANSWER_ALL ? (int)n : a->answer;
}

static int anvil_redump(struct kg_job *job, const struct kg_dump_sink *sink,
                        char *err, size_t errlen)
{
	struct tu24_anvil *a = &tu24_anvil;

	(void)job;
	a->looks++;
	if (a->fail_from && a->looks >= a->fail_from) {
		snprintf(err, errlen, "%s", "anvil timed out after 5 ms");
		return -1;
	}
	for (size_t i = 0; i < a->n_conns; i++)
		if ((a->goes[i] == 0 || a->looks < a->goes[i]) &&
		    sink->conn(sink->ctx, &a->conns[i]) != 0)
			return -1;
	return 0;
}

static void anvil_pause(int ms)
{
	assert_true(ms > 0);
	tu24_anvil.now += ms;
	tu24_anvil.pauses++;
	if (ms > tu24_anvil.longest_pause)
		tu24_anvil.longest_pause = ms;
}

static int64_t anvil_now(void)
{
	return tu24_anvil.now;
}

const struct kg_anvil_ops tu24_anvil_ops = {
        .kick = anvil_kick,
        .redump = anvil_redump,
        .pause = anvil_pause,
        .now_ms = anvil_now,
};

void tu24_anvil_reset(int64_t now)
{
	memset(&tu24_anvil, 0, sizeof(tu24_anvil));
	tu24_anvil.answer = TU24_ANSWER_ALL;
	tu24_anvil.now = now;
}
