#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/securebits.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct rule {
	int nr;
	const char *why;
};

/* The frontend: serve sockets it already has, nothing else. It cannot
 * open a file, create or connect a socket, or signal anything. */
static const struct rule frontend_rules[] = {
        {SCMP_SYS(accept4), "accept clients on the listening socket"},
        {SCMP_SYS(recvfrom), "read a client's request"},
        {SCMP_SYS(sendto), "error replies to clients; syslog lines"},
        {SCMP_SYS(sendmsg), "hand request and client fd to the broker"},
        {SCMP_SYS(poll), "wait for clients and the broker"},
        {SCMP_SYS(ppoll), "poll() as some libc versions issue it"},
        {SCMP_SYS(close), "drop a client after forwarding"},
        {SCMP_SYS(write), "log lines to stderr"},
        {SCMP_SYS(clock_gettime), "client deadlines (vDSO fallback)"},
        {SCMP_SYS(getpid), "syslog's LOG_PID"},
        {SCMP_SYS(brk), "malloc in libc's formatting"},
        {SCMP_SYS(getrandom), "libc seeds malloc\'s tcache key"},
        {SCMP_SYS(mmap), "malloc in libc's formatting"},
        {SCMP_SYS(munmap), "free"},
        {SCMP_SYS(rt_sigreturn), "return from a signal handler"},
        {SCMP_SYS(exit_group), "stop when the broker is gone"},
        {SCMP_SYS(exit), "thread exit in libc paths"},
};

/* The broker: ask anvil over a new AF_UNIX socket, read /proc and
 * master.pid, signal verified processes through pidfds, answer clients. */
static const struct rule broker_rules[] = {
        {SCMP_SYS(recvmsg), "requests and client fds from the frontend"},
        {SCMP_SYS(sendto), "replies to clients; syslog lines"},
        {SCMP_SYS(connect), "connect to anvil"},
        {SCMP_SYS(getsockopt), "SO_PEERCRED, SO_PEERGROUPS of a client"},
        {SCMP_SYS(setsockopt), "send timeout on a client socket"},
        {SCMP_SYS(read), "anvil's dump, /proc/PID/stat, master.pid"},
        {SCMP_SYS(write), "request to anvil; log lines to stderr"},
        {SCMP_SYS(poll), "anvil deadline"},
        {SCMP_SYS(ppoll), "poll() as some libc versions issue it"},
        {SCMP_SYS(close), "close client, anvil, pidfd, files"},
        {SCMP_SYS(fstat), "stdio on an opened file"},
        {SCMP_SYS(newfstatat), "stdio on an opened file"},
        {SCMP_SYS(lseek), "stdio on an opened file"},
        {SCMP_SYS(pidfd_open), "pin a target process before checking it"},
        {SCMP_SYS(clock_gettime), "deadlines, audit time (vDSO fallback)"},
        {SCMP_SYS(getpid), "syslog's LOG_PID"},
        {SCMP_SYS(brk), "malloc: dump and plan"},
        {SCMP_SYS(getrandom), "libc seeds malloc\'s tcache key"},
        {SCMP_SYS(mmap), "malloc: large dumps"},
        {SCMP_SYS(munmap), "free"},
        {SCMP_SYS(mremap), "realloc of large arrays"},
        {SCMP_SYS(madvise), "free returning memory"},
        {SCMP_SYS(rt_sigreturn), "return from a signal handler"},
        {SCMP_SYS(exit_group), "stop when the frontend is gone"},
        {SCMP_SYS(exit), "thread exit in libc paths"},
};

static int add_rules(scmp_filter_ctx ctx, const struct rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r[i].nr, 0) < 0)
			return -1;
	return 0;
}

/* Rules that need argument checks, one call each so each reads alone. */
static int add_broker_arg_rules(scmp_filter_ctx ctx)
{
	const scmp_datum_t write_flags =
	        O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE;

	/* socket: AF_UNIX only, for anvil; never a network socket. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	                     SCMP_A0(SCMP_CMP_EQ, AF_UNIX)) < 0)
		return -1;
	/* openat: read-only, never create or write. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
	                     SCMP_A2(SCMP_CMP_MASKED_EQ, write_flags, 0)) < 0)
		return -1;
	/* pidfd_send_signal: SIGTERM to kick, 0 to probe liveness. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pidfd_send_signal),
	                     1, SCMP_A1(SCMP_CMP_EQ, SIGTERM)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pidfd_send_signal),
	                     1, SCMP_A1(SCMP_CMP_EQ, 0)) < 0)
		return -1;
	/* fcntl: only F_GETFL/F_SETFL, for a non-blocking anvil socket. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
	                     SCMP_A1(SCMP_CMP_EQ, F_GETFL)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
	                     SCMP_A1(SCMP_CMP_EQ, F_SETFL)) < 0)
		return -1;
	return 0;
}

static int load_filter(const struct rule *r, size_t n,
                       int (*extra)(scmp_filter_ctx))
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc = -1;

	if (ctx == NULL)
		return -1;
	if (add_rules(ctx, r, n) == 0 && (extra == NULL || extra(ctx) == 0) &&
	    seccomp_load(ctx) == 0)
		rc = 0;
	seccomp_release(ctx);
	return rc;
}

static int drop_bounding_and_ambient(void)
{
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -1;
	return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

static int set_caps(const cap_value_t *keep, int n)
{
	cap_t caps = cap_init();
	int rc = -1;

	if (caps == NULL)
		return -1;
	if ((n == 0 ||
	     (cap_set_flag(caps, CAP_PERMITTED, n, keep, CAP_SET) == 0 &&
	      cap_set_flag(caps, CAP_EFFECTIVE, n, keep, CAP_SET) == 0)) &&
	    cap_set_proc(caps) == 0)
		rc = 0;
	cap_free(caps);
	return rc;
}

/* Last step before the filter: a uid change resets the dumpable flag, so
 * this comes after it. */
static int harden_process(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -1;
	return 0;
}

/* An empty, undeletable root: create a directory, step into it, remove
 * it, and make the removed directory the root. Nothing can ever be
 * created inside a removed directory. */
static int enter_empty_root(void)
{
	char dir[] = "/tmp/kickgated-root.XXXXXX";

	if (mkdtemp(dir) == NULL || chdir(dir) < 0)
		return -1;
	if (rmdir(dir) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return -1;
	return 0;
}

static int fail(const char *step)
{
	kg_log_err("sandbox: %s: %s", step, strerror(errno));
	return -1;
}

int kg_sandbox_frontend(uid_t uid, gid_t gid)
{
	if (uid == 0) {
		errno = EINVAL;
		return fail("frontend_user must not be root");
	}
	/* Load time zone data now: syslog's timestamps would otherwise open
	 * /etc/localtime after the filters forbid it. */
	tzset();
	if (enter_empty_root() < 0)
		return fail("empty chroot");
	if (drop_bounding_and_ambient() < 0)
		return fail("bounding set");
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return fail("dropping to frontend_user");
	/* Changing every uid away from 0 clears the capability sets; make
	 * sure of it rather than trust it. */
	if (set_caps(NULL, 0) < 0)
		return fail("clearing capabilities");
	if (harden_process() < 0)
		return fail("prctl");
	if (load_filter(frontend_rules,
	                sizeof(frontend_rules) / sizeof(frontend_rules[0]),
	                NULL) < 0)
		return fail("seccomp");
	return 0;
}

int kg_sandbox_broker(void)
{
	static const cap_value_t keep[] = {CAP_KILL};

	tzset();
	/* uid 0 keeps owning root's files (anvil is 0600 root) but gains
	 * nothing from it: no capabilities on exec or uid change. */
	if (prctl(PR_SET_SECUREBITS,
	          SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
	                  SECBIT_NO_SETUID_FIXUP |
	                  SECBIT_NO_SETUID_FIXUP_LOCKED |
	                  SECBIT_KEEP_CAPS_LOCKED,
	          0, 0, 0) < 0)
		return fail("securebits");
	if (drop_bounding_and_ambient() < 0)
		return fail("bounding set");
	if (set_caps(keep, 1) < 0)
		return fail("capabilities");
	if (harden_process() < 0)
		return fail("prctl");
	if (load_filter(broker_rules,
	                sizeof(broker_rules) / sizeof(broker_rules[0]),
	                add_broker_arg_rules) < 0)
		return fail("seccomp");
	return 0;
}
