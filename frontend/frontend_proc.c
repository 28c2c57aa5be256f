#include "frontend_proc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "reply_send.h"
#include "request_norm.h"
#include "wire.h"

struct client {
	int fd;
	int64_t deadline_ms;
};

/* Slot 0 is the listening socket, slot 1 the broker, slot 2 the
 * supervisor's control socket, then clients. */
#define FIXED_SLOTS 3

static struct pollfd pfds[FIXED_SLOTS + KG_FRONTEND_CLIENTS];
static struct client clients[KG_FRONTEND_CLIENTS];
static size_t n_clients;

static void drop_client(size_t i)
{
	close(clients[i].fd);
	clients[i] = clients[--n_clients];
}

static void accept_clients(int listen_fd, int timeout_ms)
{
	/* Bounded per round so a flood cannot starve the clients already
	 * waiting. */
	for (int round = 0; round < 64; round++) {
		/* The client's socket stays blocking: the broker bounds its
		 * replies with SO_SNDTIMEO, which a non-blocking socket
		 * ignores, failing any reply larger than the socket buffer.
		 * Reads here use MSG_DONTWAIT. */
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (n_clients == KG_FRONTEND_CLIENTS) {
			kg_reply_error(fd, KG_EXIT_UNAVAILABLE,
			               "broker busy: too many clients");
			close(fd);
			continue;
		}
		clients[n_clients].fd = fd;
		clients[n_clients].deadline_ms = kg_now_ms() + timeout_ms;
		n_clients++;
	}
}

static int forward(int broker_fd, int client_fd, const uint8_t *msg, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(ctl.buf, 0, sizeof(ctl.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &client_fd, sizeof(int));
	/* Non-blocking: a broker that falls behind makes clients fail fast
	 * instead of freezing the frontend. */
	return sendmsg(broker_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	                       (ssize_t)len
	               ? 0
	               : -1;
}

/* Reads the client's one request; returns true when the client is done
 * with (forwarded, rejected or gone). */
static bool serve_client(int broker_fd, int fd, short revents)
{
	uint8_t buf[KG_REQ_MAX + 1];
	struct kg_request req;
	const char *why;
	enum kg_wire_err werr;
	size_t len;
	int status;
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT);

	if (n < 0)
		return errno != EAGAIN && errno != EINTR;
	/* On SOCK_SEQPACKET, 0 is either the peer's end or an empty packet;
	 * only a hang-up tells them apart. */
	if (n == 0) {
		if (!(revents & (POLLHUP | POLLRDHUP)))
			kg_reply_error(fd, KG_EXIT_USAGE,
			               "malformed request: empty packet");
		return true;
	}
	if ((size_t)n > KG_REQ_MAX) {
		kg_reply_error(fd, KG_EXIT_USAGE,
		               "malformed request: too long");
		return true;
	}
	werr = kg_request_decode(buf, (size_t)n, &req);
	if (werr != KG_WIRE_OK) {
		kg_reply_error(fd, KG_EXIT_USAGE, "malformed request");
		return true;
	}
	status = kg_request_normalize(&req, &why);
	if (status != KG_EXIT_OK) {
		kg_reply_error(fd, (uint8_t)status, why);
		return true;
	}
	if (kg_request_encode(&req, buf, sizeof(buf), &len) != KG_WIRE_OK ||
	    forward(broker_fd, fd, buf, len) < 0)
		kg_reply_error(fd, KG_EXIT_UNAVAILABLE, "broker busy");
	return true;
}

static int poll_timeout(void)
{
	int64_t now = kg_now_ms(), first = -1;

	for (size_t i = 0; i < n_clients; i++)
		if (first < 0 || clients[i].deadline_ms < first)
			first = clients[i].deadline_ms;
	if (first < 0)
		return -1;
	return first <= now ? 0 : (int)(first - now);
}

static void expire_clients(void)
{
	int64_t now = kg_now_ms();

	for (size_t i = n_clients; i-- > 0;)
		if (clients[i].deadline_ms <= now) {
			kg_reply_error(clients[i].fd, KG_EXIT_USAGE,
			               "no request before the timeout");
			drop_client(i);
		}
}

/* The supervisor shuts down its end of the control socket when a reload
 * retires this frontend (or its end closes because it is gone): stop
 * accepting, then close the control socket too, which tells the
 * supervisor that no request will reach this frontend's broker any more.
 * Clients already accepted are still served, each within its deadline.
 * No signal handler is needed, so the seccomp filter needs no
 * rt_sigreturn. */
static void retire(void)
{
	close(pfds[0].fd);
	close(pfds[2].fd);
	pfds[0].fd = -1;
	pfds[2].fd = -1;
}

void kg_frontend_run(int listen_fd, int broker_fd, int control_fd,
                     int timeout_ms)
{
	pfds[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
	pfds[1] = (struct pollfd){.fd = broker_fd, .events = POLLIN};
	pfds[2] = (struct pollfd){.fd = control_fd, .events = POLLIN};
	for (;;) {
		size_t polled = n_clients;

		for (size_t i = 0; i < polled; i++)
			pfds[FIXED_SLOTS + i] =
			        (struct pollfd){.fd = clients[i].fd,
			                        .events = POLLIN | POLLRDHUP};
		if (poll(pfds, FIXED_SLOTS + polled, poll_timeout()) < 0) {
			if (errno == EINTR)
				continue;
			kg_log_err("poll: %s", strerror(errno));
			exit(1);
		}
		/* The broker never writes here: readiness means it is gone. */
		if (pfds[1].revents) {
			kg_log_err("broker exited; stopping");
			exit(1);
		}
		if (pfds[2].revents)
			retire();
		/* Walk backwards: drop_client moves the last client into the
		 * freed slot, which has already been visited. */
		for (size_t i = polled; i-- > 0;)
			if (pfds[FIXED_SLOTS + i].revents &&
			    serve_client(broker_fd, clients[i].fd,
			                 pfds[FIXED_SLOTS + i].revents))
				drop_client(i);
		expire_clients();
		if (pfds[0].fd >= 0 && (pfds[0].revents & POLLIN))
			accept_clients(listen_fd, timeout_ms);
		/* Retired and every client served: the broker ends when this
		 * process's end of broker_fd closes. */
		if (pfds[0].fd < 0 && n_clients == 0)
			exit(0);
	}
}
