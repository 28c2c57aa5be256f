/* SPDX-License-Identifier: MIT */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
#include <linux/securebits.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kg_config.h"
#include "policy/config.h"
#include "proto/log.h"

/* One seccomp rule: a call, why a role needs it, and the argument checks
 * that must all hold (an unused check has op 0, which no comparison is).
 * err 0 allows the call; otherwise the call fails with that errno, for
 * calls libc makes in paths that cope with failure. Every call that no
 * rule matches kills the process. */
#define RULE_ARGS 3

struct rule {
	int nr;
	int err;
	struct scmp_arg_cmp args[RULE_ARGS];
	const char *why;
};

/* clang-format off */
#define ALLOW(call, reason) {.nr = SCMP_SYS(call), .why = (reason)}
#define ALLOW_IF(call, reason, ...) \
	{.nr = SCMP_SYS(call), .why = (reason), .args = {__VA_ARGS__}}
#define REFUSE(call, errnum, reason) \
	{.nr = SCMP_SYS(call), .err = (errnum), .why = (reason)}

#define ARG_EQ(i, v) {(i), SCMP_CMP_EQ, (scmp_datum_t)(v), 0}
/* No bit of bits set. */
#define ARG_NONE(i, bits) {(i), SCMP_CMP_MASKED_EQ, (scmp_datum_t)(bits), 0}
/* clang-format on */

/* Everything an open may carry besides O_RDONLY (which is 0). */
#define READ_ONLY_OPEN (O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW)

/* The frontend: the supervisor at fd 4, which hands it one client's
 * connection, at fd 3 (frontend/serve.h); its syslog connection at fd 5.
 * It cannot open a file, create, accept or connect a socket, pass an fd
 * or receive one but from the supervisor, touch any other descriptor, or
 * signal anything. */
static const struct rule frontend_rules[] = {
        ALLOW_IF(recvmsg, "take its one client's socket from the supervisor",
                 ARG_EQ(0, 4)),
        ALLOW_IF(recvfrom, "read its client's one request", ARG_EQ(0, 3)),
        ALLOW_IF(sendto, "an error reply to its client", ARG_EQ(0, 3)),
        ALLOW_IF(sendto, "the normalized request to the supervisor",
                 ARG_EQ(0, 4)),
        ALLOW_IF(sendto, "syslog lines, on the connection made at start-up",
                 ARG_EQ(0, 5)),
        ALLOW(poll, "wait for the request, within the deadline"),
        ALLOW(ppoll, "poll() as some libc versions issue it"),
        ALLOW(restart_syscall, "resume poll() after SIGSTOP and SIGCONT"),
        ALLOW(close, "syslog drops a broken connection before it reconnects"),
        ALLOW_IF(write, "log lines, to stderr only", ARG_EQ(0, STDERR_FILENO)),
        ALLOW(clock_gettime, "the deadline (vDSO fallback)"),
        ALLOW(getpid, "syslog's LOG_PID"),
        ALLOW(brk, "malloc in syslog's formatting"),
        ALLOW_IF(mmap, "malloc; never executable memory",
                 ARG_NONE(2, PROT_EXEC)),
        ALLOW(munmap, "free"),
        ALLOW(exit_group, "done with its one client"),
        REFUSE(socket, EACCES,
               "syslog's reconnect after a syslogd restart fails: the "
               "line is lost, not the process"),
};

/* The broker: ask anvil over a new AF_UNIX socket, read /proc, answer
 * clients; signals are in the next table. */
static const struct rule broker_rules[] = {
        ALLOW(recvmsg, "requests and client fds from the supervisor"),
        ALLOW(sendto, "replies to clients, the request to anvil, syslog"),
        ALLOW_IF(socket, "anvil and syslog; never a network socket",
                 ARG_EQ(0, AF_UNIX)),
        ALLOW(connect, "anvil and syslog"),
        ALLOW_IF(getsockopt, "SO_DOMAIN: a client's socket is AF_UNIX",
                 ARG_EQ(1, SOL_SOCKET), ARG_EQ(2, SO_DOMAIN)),
        ALLOW_IF(getsockopt, "SO_TYPE: a client's socket is SOCK_SEQPACKET",
                 ARG_EQ(1, SOL_SOCKET), ARG_EQ(2, SO_TYPE)),
        ALLOW_IF(getsockopt, "SO_ACCEPTCONN: a client's socket is no listener",
                 ARG_EQ(1, SOL_SOCKET), ARG_EQ(2, SO_ACCEPTCONN)),
        ALLOW(getsockname, "a client's socket was accepted on kickgated's "
                           "listener: it has the listener's address"),
        ALLOW_IF(getsockopt, "SO_PEERCRED: the caller's uid and gid",
                 ARG_EQ(1, SOL_SOCKET), ARG_EQ(2, SO_PEERCRED)),
        ALLOW_IF(getsockopt, "SO_PEERGROUPS: the caller's groups",
                 ARG_EQ(1, SOL_SOCKET), ARG_EQ(2, SO_PEERGROUPS)),
        ALLOW_IF(setsockopt, "send timeouts on client and anvil sockets",
                 ARG_EQ(1, SOL_SOCKET), ARG_EQ(2, SO_SNDTIMEO)),
        ALLOW_IF(setsockopt, "SO_PASSCRED: anvil's pid, from the kernel",
                 ARG_EQ(1, SOL_SOCKET), ARG_EQ(2, SO_PASSCRED)),
        ALLOW_IF(openat, "/proc/PID/stat: read only, never create",
                 ARG_NONE(2, ~(scmp_datum_t)READ_ONLY_OPEN)),
        ALLOW(read, "anvil's dump, /proc/PID/stat"),
        ALLOW_IF(write, "log and audit lines, to stderr only",
                 ARG_EQ(0, STDERR_FILENO)),
        ALLOW(poll, "anvil deadline"),
        ALLOW(ppoll, "poll() as some libc versions issue it"),
        ALLOW(restart_syscall, "resume poll() after SIGSTOP and SIGCONT"),
        ALLOW(close, "close client, anvil, pidfd, /proc files"),
        ALLOW_IF(pidfd_open, "pin a target process before checking it",
                 ARG_EQ(1, 0)),
        ALLOW(clock_gettime, "deadlines, audit time (vDSO fallback)"),
        ALLOW(getpid, "the pid in syslog lines"),
        ALLOW(getrandom, "hash keys of the per-request string pool"),
        ALLOW(brk, "malloc: dump and plan"),
        ALLOW_IF(mmap, "malloc: large dumps; never executable memory",
                 ARG_NONE(2, PROT_EXEC)),
        ALLOW(munmap, "free"),
        ALLOW(mremap, "realloc of large arrays"),
        ALLOW(madvise, "free returning memory"),
        ALLOW(exit_group, "stop when the supervisor closes the channel"),
};

/* The broker's own kicks: signals to verified processes through pidfds.
 * Not installed when anvil does every kick (every instance Dovecot
 * 2.4's). */
static const struct rule broker_signal_rules[] = {
        ALLOW_IF(pidfd_send_signal, "SIGTERM: the kick", ARG_EQ(1, SIGTERM),
                 ARG_EQ(2, 0), ARG_EQ(3, 0)),
        ALLOW_IF(pidfd_send_signal, "signal 0: is the target still there",
                 ARG_EQ(1, 0), ARG_EQ(2, 0), ARG_EQ(3, 0)),
};

#define N_RULES(t) (sizeof(t) / sizeof((t)[0]))

static int add_rules(scmp_filter_ctx ctx, const struct rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t act = r[i].err ? SCMP_ACT_ERRNO((uint32_t)r[i].err)
		                        : SCMP_ACT_ALLOW;
		unsigned int n_args = 0;

		while (n_args < RULE_ARGS && r[i].args[n_args].op != 0)
			n_args++;
		if (seccomp_rule_add_array(ctx, act, r[i].nr, n_args,
		                           r[i].args) < 0)
			return -1;
	}
	return 0;
}

/* Lets the Landlock ruleset fd use the rights in access on files beneath
 * path. */
static int ruleset_allow(int fd, const char *path, uint64_t access)
{
	struct landlock_path_beneath_attr pb = {.allowed_access = access};
	int rc;

	pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (pb.parent_fd < 0)
		return -1;
	rc = (int)syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH,
	                  &pb, 0);
	close(pb.parent_fd);
	return rc < 0 ? -1 : 0;
}

/* ---- Coverage builds only (meson -Dcoverage_daemon=true), for tests:
 * never deployed. gcov saves each role's counters when it exits, to .gcda
 * files beneath KG_COVERAGE_DIR (the build directory), which the sandbox
 * would refuse or kill the role for. So in such a build the frontend
 * keeps the host's root, Landlock lets both roles read, write and create
 * files beneath that directory, seccomp allows the calls of gcov's save,
 * and SIGTERM, with which the supervisor stops its children, saves first
 * and then ends the role as before. The normal build compiles only the
 * #else branch: stubs that add nothing, and the frontend's empty root. */
#ifdef KG_COVERAGE_DAEMON
void __gcov_dump(void);

static const struct rule coverage_rules[] = {
        ALLOW_IF(openat, "gcov: open or create a .gcda file",
                 ARG_EQ(2, O_RDWR | O_CREAT)),
        ALLOW_IF(fcntl, "gcov: lock the file while merging",
                 ARG_EQ(1, F_SETLKW)),
        ALLOW_IF(fcntl, "gcov: fdopen's mode check", ARG_EQ(1, F_GETFL)),
        ALLOW(newfstatat, "gcov: stdio's buffer size"),
        ALLOW(read, "gcov: the counters saved before"),
        ALLOW(lseek, "gcov: rewind to write the merged counters"),
        ALLOW(write, "gcov: the merged counters"),
        ALLOW(rt_sigprocmask, "raise() in the SIGTERM handler"),
        ALLOW(tgkill, "raise() in the SIGTERM handler"),
        ALLOW(rt_sigreturn, "return from the SIGTERM handler"),
};

static int coverage_rules_add(scmp_filter_ctx ctx)
{
	return add_rules(ctx, coverage_rules, N_RULES(coverage_rules));
}

static int coverage_landlock(int fd)
{
	return ruleset_allow(fd, KG_COVERAGE_DIR,
	                     LANDLOCK_ACCESS_FS_READ_FILE |
	                             LANDLOCK_ACCESS_FS_WRITE_FILE |
	                             LANDLOCK_ACCESS_FS_MAKE_REG);
}

/* Not async-signal-safe: a SIGTERM that interrupts malloc may hang here,
 * and the supervisor's SIGKILL then loses that process's counters. The
 * handler is reset on entry, so the raised SIGTERM, delivered once the
 * handler returns, ends the role as an unhandled one would. */
static void coverage_on_sigterm(int sig)
{
	__gcov_dump();
	raise(sig);
}

static void coverage_start(enum kg_sandbox_role role)
{
	struct sigaction sa = {.sa_handler = coverage_on_sigterm,
	                       .sa_flags = SA_RESETHAND};

	sigaction(SIGTERM, &sa, NULL);
	if (role != KG_SANDBOX_FRONTEND)
		kg_log_warn("COVERAGE BUILD, FOR TESTS ONLY: the sandbox lets "
		            "gcov write beneath %s and the frontend keeps the "
		            "host's root; never deploy this build",
		            KG_COVERAGE_DIR);
}

/* The build directory, where gcov writes, must stay reachable. */
static int enter_empty_root(void)
{
	return 0;
}
#else
static int coverage_rules_add(scmp_filter_ctx ctx)
{
	(void)ctx;
	return 0;
}

static int coverage_landlock(int fd)
{
	(void)fd;
	return 0;
}

static void coverage_start(enum kg_sandbox_role role)
{
	(void)role;
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
#endif
/* ---- End of the coverage builds' block. */

static int add_role_rules(scmp_filter_ctx ctx, enum kg_sandbox_role role)
{
	if (role == KG_SANDBOX_FRONTEND)
		return add_rules(ctx, frontend_rules, N_RULES(frontend_rules));
	if (add_rules(ctx, broker_rules, N_RULES(broker_rules)) < 0)
		return -1;
	if (role != KG_SANDBOX_BROKER)
		return 0;
	return add_rules(ctx, broker_signal_rules,
	                 N_RULES(broker_signal_rules));
}

static int load_filter(enum kg_sandbox_role role)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc = -1;

	if (ctx == NULL)
		return -1;
	if (add_role_rules(ctx, role) == 0 && coverage_rules_add(ctx) == 0 &&
	    seccomp_load(ctx) == 0)
		rc = 0;
	seccomp_release(ctx);
	return rc;
}

/* Landlock constants and the ruleset layout of ABI 6, for kernel headers
 * older than the kernel. An older kernel accepts the larger structure as
 * long as the fields it does not know are zero. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

uint64_t kg_sandbox_fs_rights(int abi)
{
	uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

/* A ruleset that denies all filesystem access and, from ABI 6, scopes.
 * Sets *fd to -1 when the kernel has no Landlock (logged) and returns 0;
 * returns -1 on any other failure. */
static int ruleset_new(uint64_t scopes, int *fd)
{
	struct ruleset_attr attr = {0};
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
	                       LANDLOCK_CREATE_RULESET_VERSION);

	*fd = -1;
	if (abi < 0) {
		if (errno != ENOSYS && errno != EOPNOTSUPP)
			return -1;
		kg_log_info("sandbox: no Landlock in this kernel (%s); "
		            "confined by seccomp and capabilities only",
		            strerror(errno));
		return 0;
	}
	attr.handled_access_fs = kg_sandbox_fs_rights(abi);
	if (abi >= 6)
		attr.scoped = scopes;
	*fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	return *fd < 0 ? -1 : 0;
}

static int fail(const char *step)
{
	kg_log_err("sandbox: %s: %s", step, strerror(errno));
	return -1;
}

/* The frontend reads nothing, signals nothing and reaches no abstract
 * socket. The broker reads /proc; where it kicks, it must signal
 * Dovecot's processes, so only the broker whose kicks anvil does gets the
 * signal scope. */
int kg_sandbox_landlock(enum kg_sandbox_role role)
{
	bool broker = role != KG_SANDBOX_FRONTEND;
	uint64_t scopes =
	        LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET |
	        (role == KG_SANDBOX_BROKER ? 0 : LANDLOCK_SCOPE_SIGNAL);
	int fd, rc = 0;

	if (ruleset_new(scopes, &fd) < 0)
		return fail("landlock ruleset");
	if (fd < 0)
		return 0;
	if (broker &&
	    ruleset_allow(fd, "/proc", LANDLOCK_ACCESS_FS_READ_FILE) < 0)
		rc = fail("landlock rule for /proc");
	else if (coverage_landlock(fd) < 0)
		rc = fail("landlock rule for the coverage data");
	else if (syscall(SYS_landlock_restrict_self, fd, 0) < 0)
		rc = fail("landlock");
	close(fd);
	return rc;
}

static int seccomp_filter(enum kg_sandbox_role role)
{
	return load_filter(role) < 0 ? fail("seccomp") : 0;
}

static int drop_bounding_set(void)
{
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -1;
	return 0;
}

/* Sets permitted and effective to keep and inheritable to nothing, which
 * also empties the ambient set: the kernel keeps no ambient capability
 * outside the inheritable set. */
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

/* The last privilege step: a uid change resets the dumpable flag, so this
 * comes after it, and Landlock needs no_new_privs. */
static int harden_process(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail("prctl");
	return 0;
}

int kg_sandbox_frontend_privileges(uid_t uid, gid_t gid)
{
	if (uid == 0) {
		errno = EINVAL;
		return fail("frontend_user must not be root");
	}
	if (enter_empty_root() < 0)
		return fail("empty chroot");
	if (drop_bounding_set() < 0)
		return fail("bounding set");
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return fail("dropping to frontend_user");
	/* Changing every uid away from 0 clears the capability sets, unless
	 * SECBIT_NO_SETUID_FIXUP came with the process: clear them here. */
	if (set_caps(NULL, 0) < 0)
		return fail("clearing capabilities");
	return harden_process();
}

/* SECBIT_NO_SETUID_FIXUP, already set, keeps the capabilities through
 * the uid change: set_caps then narrows them to CAP_KILL or to none. */
static int become(const struct kg_ids *ids)
{
	if (ids->uid == 0)
		return 0;
	if (setgroups(ids->n_groups, ids->groups) < 0 ||
	    setresgid(ids->gid, ids->gid, ids->gid) < 0 ||
	    setresuid(ids->uid, ids->uid, ids->uid) < 0)
		return fail("dropping to broker_user");
	return 0;
}

int kg_sandbox_broker_privileges(const struct kg_ids *ids, bool signals)
{
	static const cap_value_t keep[] = {CAP_KILL};

	/* uid 0 keeps owning root's files (anvil is 0600 root) but gains
	 * nothing from it: no capabilities on exec or uid change, none
	 * raised into the ambient set. */
	if (prctl(PR_SET_SECUREBITS,
	          SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
	                  SECBIT_NO_SETUID_FIXUP |
	                  SECBIT_NO_SETUID_FIXUP_LOCKED |
	                  SECBIT_KEEP_CAPS_LOCKED |
	                  SECBIT_NO_CAP_AMBIENT_RAISE |
	                  SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
	          0, 0, 0) < 0)
		return fail("securebits");
	if (become(ids) < 0)
		return -1;
	if (drop_bounding_set() < 0)
		return fail("bounding set");
	if (set_caps(keep, signals ? 1 : 0) < 0)
		return fail("capabilities");
	return harden_process();
}

/* Load time zone data first: syslog's timestamps would otherwise open
 * /etc/localtime after the filters forbid it. */
int kg_sandbox_frontend(uid_t uid, gid_t gid)
{
	tzset();
	coverage_start(KG_SANDBOX_FRONTEND);
	if (kg_sandbox_frontend_privileges(uid, gid) < 0 ||
	    kg_sandbox_landlock(KG_SANDBOX_FRONTEND) < 0)
		return -1;
	return seccomp_filter(KG_SANDBOX_FRONTEND);
}

int kg_sandbox_broker(const struct kg_ids *ids, bool signals)
{
	enum kg_sandbox_role role =
	        signals ? KG_SANDBOX_BROKER : KG_SANDBOX_BROKER_ANVIL_KICKS;

	tzset();
	coverage_start(role);
	if (kg_sandbox_broker_privileges(ids, signals) < 0 ||
	    kg_sandbox_landlock(role) < 0)
		return -1;
	return seccomp_filter(role);
}
