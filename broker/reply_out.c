/* SPDX-License-Identifier: MIT */
#include "broker/reply_out.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "proto/clock.h"

void kg_reply_out_init(struct kg_reply_out *o, int fd)
{
	*o = (struct kg_reply_out){.fd = fd};
}

/* How long the next packet may wait: the stall limit, or what is left
 * of the reply's budget when that is less. */
static int64_t wait_allowed(const struct kg_reply_out *o)
{
	int64_t left = KG_REPLY_WAIT_MS +
	               (int64_t)o->packets * KG_REPLY_WAIT_PACKET_MS -
	               o->waited_ms;

	return left < KG_REPLY_STALL_MS ? left : KG_REPLY_STALL_MS;
}

/* A blocking send with a timeout, rather than poll and a non-blocking
 * send: it goes on as soon as the client has taken one packet, where
 * poll reports room only once the socket is nearly empty, which would
 * leave a fast client waiting for each packet. */
static int set_timeout(int fd, int64_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,
	                     .tv_usec = (ms % 1000) * 1000};

	return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Sends pkt, waiting for room until deadline_ms. Returns 0, -1 when the
 * client is gone, or 1 when the deadline passed first. Bounded by the
 * deadline: every round either returns or waits in send. */
static int send_by(int fd, const uint8_t *pkt, size_t len, int64_t deadline_ms)
{
	for (;;) {
		int64_t left = deadline_ms - kg_now_ms();
		ssize_t n;

		if (left <= 0)
			return 1;
		if (set_timeout(fd, left) < 0)
			return -1;
		n = send(fd, pkt, len, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			return -1;
	}
}

int kg_reply_out_emit(void *ctx, const uint8_t *pkt, size_t len)
{
	struct kg_reply_out *o = ctx;
	int64_t start = kg_now_ms();
	int rc = send_by(o->fd, pkt, len, start + wait_allowed(o));

	o->waited_ms += kg_now_ms() - start;
	if (rc == 0)
		o->packets++;
	o->stalled = rc > 0;
	return rc == 0 ? 0 : -1;
}
