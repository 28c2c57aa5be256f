/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/reply_out.h"
#include "proto/clock.h"
#include "proto/kg_limits.h"

/* Scheduling on a loaded machine may add this much to a wait. */
#define SLACK_MS 150
/* Enough packets to fill any socket buffer several times over. */
#define PACKETS_MAX 1000

static uint8_t pkt[KG_PKT_MAX];

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
}

/* Emits packets until one fails; returns how long that one took. */
static int64_t emit_until_failure(struct kg_reply_out *o)
{
	for (int i = 0; i < PACKETS_MAX; i++) {
		int64_t start = kg_now_ms();

		if (kg_reply_out_emit(o, pkt, sizeof(pkt)) < 0)
			return kg_now_ms() - start;
	}
	fail_msg("%d packets sent", PACKETS_MAX);
	return -1;
}

/* A client that takes nothing costs one stall limit, then its reply is
 * cut off as stalled. */
static void test_silent_client_cut_off_after_the_stall_limit(void **state)
{
	struct kg_reply_out o;
	int64_t took;
	int sv[2];

	(void)state;
	pair(sv);
	kg_reply_out_init(&o, sv[0]);
	took = emit_until_failure(&o);
	assert_true(o.stalled);
	assert_true(o.packets > 0);
	assert_true(took >= KG_REPLY_STALL_MS);
	assert_true(took <= KG_REPLY_STALL_MS + SLACK_MS);
	close(sv[0]);
	close(sv[1]);
}

/* A client that went away is no stall. */
static void test_gone_client_not_stalled(void **state)
{
	struct kg_reply_out o;
	int sv[2];

	(void)state;
	pair(sv);
	close(sv[1]);
	kg_reply_out_init(&o, sv[0]);
	assert_int_equal(kg_reply_out_emit(&o, pkt, sizeof(pkt)), -1);
	assert_false(o.stalled);
	assert_int_equal(o.packets, 0);
	close(sv[0]);
}

/* A reader that takes a packet just within the stall limit, each time,
 * is cut off once the reply's budget is spent. */
static void test_slow_reader_bounded_by_the_budget(void **state)
{
	int64_t start = kg_now_ms(), took;
	struct kg_reply_out o;
	pid_t reader;
	int sv[2];

	(void)state;
	pair(sv);
	reader = fork();
	assert_true(reader >= 0);
	if (reader == 0) {
		close(sv[0]);
		while (usleep(KG_REPLY_STALL_MS * 1000 * 3 / 4) == 0 &&
		       recv(sv[1], pkt, sizeof(pkt), 0) > 0)
			continue;
		_exit(0);
	}
	close(sv[1]);
	kg_reply_out_init(&o, sv[0]);
	emit_until_failure(&o);
	took = kg_now_ms() - start;
	assert_true(o.stalled);
	assert_true(o.waited_ms >= KG_REPLY_WAIT_MS);
	assert_true(took <= KG_REPLY_WAIT_MS +
	                            o.packets * KG_REPLY_WAIT_PACKET_MS +
	                            KG_REPLY_STALL_MS + SLACK_MS);
	close(sv[0]);
	kill(reader, SIGKILL);
	waitpid(reader, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_silent_client_cut_off_after_the_stall_limit),
	        cmocka_unit_test(test_gone_client_not_stalled),
	        cmocka_unit_test(test_slow_reader_bounded_by_the_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
