/* SPDX-License-Identifier: MIT */
#include "frontend/main.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

/* argv holds the frontend's limits only: it reads no configuration and
 * learns nothing else. */
_Noreturn void kg_frontend_role(int argc, char **argv)
{
	unsigned long uid, gid, timeout;
	bool to_stderr = argc == 6 && strcmp(argv[5], "stderr") == 0;

	/* Before anything else: only 0 to 4 stay open, so syslog's socket
	 * becomes fd 5, the one the frontend's seccomp filter lets it write
	 * to. */
	close_range(KG_FRONTEND_LOG_FD, ~0U, 0);
	if (argc != 6 || !parse_uint(argv[2], UINT32_MAX - 1, &uid) ||
	    !parse_uint(argv[3], UINT32_MAX - 1, &gid) ||
	    !parse_uint(argv[4], INT32_MAX, &timeout) ||
	    (!to_stderr && strcmp(argv[5], "syslog") != 0)) {
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
	kg_frontend_serve_one(KG_FRONTEND_CLIENT_FD, KG_FRONTEND_SUPERVISOR_FD,
	                      (int)timeout);
}
