/* SPDX-License-Identifier: MIT */
#include "frontend/main.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frontend/serve.h"
#include "proto/log.h"
#include "sandbox/sandbox.h"

/* A decimal number in [0, max], nothing else. */
static bool parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *v <= max;
}

/* Waits for the one client the supervisor hands over: its socket (which
 * lands at fd 3, the lowest free descriptor) and the milliseconds left of
 * its deadline. The frontend is started, exec'd and confined before any
 * client exists, so none of that is on a client's path. Exits 0 when the
 * supervisor closes its end instead (a reload retired this frontend). */
static int take_client(void)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	int32_t timeout = -1;
	struct iovec iov = {.iov_base = &timeout, .iov_len = sizeof(timeout)};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	ssize_t n;
	int fd = -1;

	do
		n = recvmsg(KG_FRONTEND_SUPERVISOR_FD, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		exit(0);
	if (mh.msg_controllen >= CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	if (n != (ssize_t)sizeof(timeout) || timeout < 0 ||
	    fd != KG_FRONTEND_CLIENT_FD || (mh.msg_flags & MSG_CTRUNC)) {
		kg_log_err("no client handed over by the supervisor");
		exit(1);
	}
	return timeout;
}

/* argv holds the frontend's ids and where it logs, nothing else: it
 * reads no configuration and learns nothing else. */
_Noreturn void kg_frontend_role(int argc, char **argv)
{
	unsigned long uid, gid;
	bool to_stderr = argc == 5 && strcmp(argv[4], "stderr") == 0;
	int timeout;

	/* Before anything else: only 0 to 2 and the supervisor's fd 4 stay
	 * open. Fd 3 holds a copy of fd 4 until the sandbox is in place, so
	 * that syslog's socket becomes fd 5, the one the frontend's seccomp
	 * filter lets it write to, and the client's socket fd 3. */
	close_range(KG_FRONTEND_CLIENT_FD, KG_FRONTEND_CLIENT_FD, 0);
	close_range(KG_FRONTEND_LOG_FD, ~0U, 0);
	if (argc != 5 || !parse_uint(argv[2], UINT32_MAX - 1, &uid) ||
	    !parse_uint(argv[3], UINT32_MAX - 1, &gid) ||
	    (!to_stderr && strcmp(argv[4], "syslog") != 0) ||
	    dup2(KG_FRONTEND_SUPERVISOR_FD, KG_FRONTEND_CLIENT_FD) < 0) {
		fprintf(stderr, "kickgated: --frontend is for kickgated's own "
		                "use\n");
		exit(64);
	}
	/* Older kernels name a process exec'd from a descriptor after the
	 * descriptor's number; the frontend_user check knows frontends by
	 * their name. */
	prctl(PR_SET_NAME, "kickgated", 0, 0, 0);
	kg_log_open("kickgated", to_stderr);
	kg_log_role("frontend");
	if (kg_sandbox_frontend((uid_t)uid, (gid_t)gid) < 0)
		exit(1);
	close(KG_FRONTEND_CLIENT_FD);
	timeout = take_client();
	kg_frontend_serve_one(KG_FRONTEND_CLIENT_FD, KG_FRONTEND_SUPERVISOR_FD,
	                      timeout);
}
