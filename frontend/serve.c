/* SPDX-License-Identifier: MIT */
#include "frontend/serve.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/clock.h"
#include "proto/log.h"
#include "proto/reply_send.h"
#include "proto/request_norm.h"
#include "proto/wire.h"

/* Waits, within deadline_ms, until the client has sent something or hung
 * up. Returns poll's revents, or 0 when the deadline passed. */
static short wait_request(int fd, int64_t deadline_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};

	for (;;) {
		int64_t left = deadline_ms - kg_now_ms();
		int rc;

		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc > 0)
			return pfd.revents;
		if (rc < 0 && errno != EINTR) {
			kg_log_err("poll: %s", strerror(errno));
			exit(1);
		}
	}
}

/* Checks the request in buf[0..n) and normalizes it in place into buf,
 * setting *len. Returns KG_EXIT_OK, or a status with *why for the
 * client. */
static int check_request(uint8_t *buf, size_t cap, ssize_t n, short revents,
                         size_t *len, const char **why)
{
	struct kg_request req;
	int status;

	/* On SOCK_SEQPACKET, 0 is either the peer's end or an empty packet;
	 * only a hang-up tells them apart. */
	if (n == 0) {
		*why = (revents & (POLLHUP | POLLRDHUP))
		               ? NULL
		               : "malformed request: empty packet";
		return KG_EXIT_USAGE;
	}
	*why = "malformed request: too long";
	if ((size_t)n >= cap)
		return KG_EXIT_USAGE;
	*why = "malformed request";
	if (kg_request_decode(buf, (size_t)n, &req) != KG_WIRE_OK)
		return KG_EXIT_USAGE;
	status = kg_request_normalize(&req, why);
	if (status != KG_EXIT_OK)
		return status;
	*why = "internal error";
	if (kg_request_encode(&req, buf, cap, len) != KG_WIRE_OK)
		return KG_EXIT_SOFTWARE;
	return KG_EXIT_OK;
}

void kg_frontend_serve_one(int client_fd, int supervisor_fd, int timeout_ms)
{
	uint8_t buf[KG_REQ_MAX + 1];
	const char *why;
	size_t len;
	int status;
	short revents = wait_request(client_fd, kg_now_ms() + timeout_ms);
	ssize_t n;

	if (revents == 0) {
		kg_reply_error(client_fd, KG_EXIT_USAGE,
		               "no request before the timeout");
		exit(0);
	}
	n = recv(client_fd, buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT);
	if (n < 0)
		exit(0); /* the client is gone: nobody to answer */
	status = check_request(buf, sizeof(buf), n, revents, &len, &why);
	if (status != KG_EXIT_OK) {
		if (why != NULL)
			kg_reply_error(client_fd, (uint8_t)status, why);
		exit(0);
	}
	/* One packet, whole or not at all; the supervisor's end is read
	 * only by the supervisor, which bounds what it accepts. */
	if (send(supervisor_fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		kg_log_err("passing the request on: %s", strerror(errno));
		exit(1);
	}
	exit(0);
}
