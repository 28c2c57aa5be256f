/* SPDX-License-Identifier: MIT */
/* sandbox_probe ROLE[/LAYER] ACTION DIR
 *
 * Enters ROLE's sandbox (frontend, broker, or broker-user: the broker as
 * broker_user = daemon; broker-anvil and broker-user-anvil: the same
 * brokers where anvil does every kick) through the function the
 * daemon uses, or only its privileges or Landlock layer through the
 * function that sandbox stacks, then makes the one call ACTION names and
 * reports what happened (seccomp needs no such layer of its own: no
 * other layer ends a call in SIGSYS):
 *   exit 0          the call succeeded (securebits: hold the locked set)
 *   exit 100+errno  the call failed with errno
 *   killed          by the sandbox (SIGSYS for seccomp)
 *   exit 2, 3       set-up before the sandbox failed; the sandbox refused
 *   exit 4          securebits differ from the locked set (printed)
 * "sandboxed" goes to stderr once the sandbox is in place.
 *
 * Everything a call needs is prepared before the sandbox: sockets, a child
 * running as nobody to signal, and in DIR (prepared by the driver with a
 * file "foreign" only nobody may read and an empty directory "empty") a
 * listening socket "anvil". No Landlock rule allows DIR. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <linux/securebits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* Kernel 6.9 and later; older headers lack it. */
#ifndef PIDFD_SIGNAL_THREAD
#define PIDFD_SIGNAL_THREAD (1UL << 0)
#endif

#include "frontend/serve.h"
#include "policy/config.h"
#include "sandbox/sandbox.h"

#define EXIT_SETUP    2
#define EXIT_SANDBOX  3
#define EXIT_MISMATCH 4

/* The account and extra group of the "broker-user" role. */
#define BROKER_USER       "daemon"
#define BROKER_USER_GROUP 54323
#define EXIT_ERRNO        100

static struct {
	const char *dir;
	char anvil[KG_PATH_MAX + 1];
	uid_t nobody_uid;
	gid_t nobody_gid;
	pid_t child;      /* runs as nobody; exits when the probe does */
	int pair[2];      /* connected SOCK_SEQPACKET pair */
	int listener;     /* autobound abstract listener, one client queued */
	int loose_stream; /* unconnected AF_UNIX stream socket */
	int loose_dgram;  /* unbound AF_UNIX datagram socket */
	struct sockaddr_un abstract; /* the listener's abstract address */
	socklen_t abstract_len;
	int abstract_dgram; /* an autobound abstract datagram receiver */
	struct sockaddr_un abstract_rx;
	socklen_t abstract_rx_len;
} p;

static char *const no_args[] = {"true", NULL};

static int in_dir(const char *name, char *out, size_t cap)
{
	return snprintf(out, cap, "%s/%s", p.dir, name) < (int)cap ? 0 : -1;
}

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags, 0600);

	return fd < 0 ? -1 : 0;
}

static int do_execve(void)
{
	return execve("/bin/true", no_args, environ);
}

static int do_execveat(void)
{
	return (int)syscall(SYS_execveat, AT_FDCWD, "/bin/true", no_args,
	                    environ, 0);
}

/* A successful clone returns in the child too: it leaves at once. */
static int leave_if_child(long rc)
{
	if (rc == 0)
		_exit(0);
	return rc < 0 ? -1 : 0;
}

static int do_fork(void)
{
	return leave_if_child(fork());
}

static int do_clone_newuser(void)
{
	return leave_if_child(
	        syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
}

static int do_clone3(void)
{
	struct clone_args ca = {.flags = CLONE_NEWNS, .exit_signal = SIGCHLD};

	return leave_if_child(syscall(SYS_clone3, &ca, sizeof(ca)));
}

static int do_unshare(void)
{
	return unshare(CLONE_NEWNS);
}

static int do_ptrace(void)
{
	return (int)ptrace(PTRACE_ATTACH, p.child, 0, 0);
}

static int do_process_vm_readv(void)
{
	char buf[8];
	struct iovec local = {buf, sizeof(buf)}, remote = {&p, sizeof(buf)};

	return process_vm_readv(p.child, &local, 1, &remote, 1, 0) < 0 ? -1 : 0;
}

static int do_process_vm_writev(void)
{
	char buf[8] = {0};
	struct iovec local = {buf, sizeof(buf)}, remote = {&p, sizeof(buf)};

	return process_vm_writev(p.child, &local, 1, &remote, 1, 0) < 0 ? -1
	                                                                : 0;
}

static int do_open_proc_stat(void)
{
	return try_open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
}

static int do_open_passwd(void)
{
	return try_open("/etc/passwd", O_RDONLY | O_CLOEXEC);
}

/* Readable by uid 0 through ownership alone: only Landlock stops it. */
static int do_open_shadow(void)
{
	return try_open("/etc/shadow", O_RDONLY | O_CLOEXEC);
}

/* Mode 0600, owned by nobody, inside an allowed directory: only missing
 * capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) stop uid 0. */
static int do_open_foreign(void)
{
	char path[KG_PATH_MAX + 32];

	if (in_dir("foreign", path, sizeof(path)) < 0)
		return -1;
	return try_open(path, O_RDONLY | O_CLOEXEC);
}

static int do_open_write(void)
{
	char path[KG_PATH_MAX + 32];

	if (in_dir("created", path, sizeof(path)) < 0)
		return -1;
	return try_open(path, O_WRONLY | O_CREAT | O_CLOEXEC);
}

static int do_open_mem(void)
{
	return try_open("/proc/self/mem", O_RDWR | O_CLOEXEC);
}

static int do_open_dir(void)
{
	return try_open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int do_access(void)
{
	return access("/proc/self/stat", R_OK);
}

static int new_socket(int domain, int type)
{
	int fd = socket(domain, type | SOCK_CLOEXEC, 0);

	return fd < 0 ? -1 : 0;
}

static int do_socket_unix(void)
{
	return new_socket(AF_UNIX, SOCK_STREAM);
}

static int do_socket_inet(void)
{
	return new_socket(AF_INET, SOCK_STREAM);
}

static int do_socket_inet6(void)
{
	return new_socket(AF_INET6, SOCK_DGRAM);
}

static int do_socket_netlink(void)
{
	return new_socket(AF_NETLINK, SOCK_RAW);
}

static int do_connect_anvil(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memcpy(sa.sun_path, p.anvil, strlen(p.anvil) + 1);
	return connect(p.loose_stream, (struct sockaddr *)&sa, sizeof(sa));
}

static int do_connect_abstract(void)
{
	return connect(p.loose_stream, (struct sockaddr *)&p.abstract,
	               p.abstract_len);
}

static int do_sendto_abstract(void)
{
	return sendto(p.loose_dgram, "x", 1, 0,
	              (struct sockaddr *)&p.abstract_rx, p.abstract_rx_len) < 0
	               ? -1
	               : 0;
}

static int do_send(void)
{
	return send(p.pair[0], "x", 1, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static int send_on(int fd)
{
	return send(fd, "x", 1, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static int do_send_client(void)
{
	return send_on(KG_FRONTEND_CLIENT_FD);
}

static int do_send_supervisor(void)
{
	return send_on(KG_FRONTEND_SUPERVISOR_FD);
}

static int do_send_log(void)
{
	return send_on(KG_FRONTEND_LOG_FD);
}

/* The one socket seccomp lets the frontend address: only Landlock's
 * scope keeps it from an abstract socket. */
static int do_sendto_abstract_log(void)
{
	return sendto(KG_FRONTEND_LOG_FD, "x", 1, 0,
	              (struct sockaddr *)&p.abstract_rx, p.abstract_rx_len) < 0
	               ? -1
	               : 0;
}

/* main queued a byte for the client's socket. */
static int do_recv_client(void)
{
	char c;

	return recv(KG_FRONTEND_CLIENT_FD, &c, 1, MSG_DONTWAIT) < 0 ? -1 : 0;
}

/* recvmsg, which can carry descriptors, on the client's socket: a
 * frontend takes one only from the supervisor. */
static int do_recvmsg_client(void)
{
	char c;
	struct iovec iov = {&c, 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	return recvmsg(KG_FRONTEND_CLIENT_FD, &mh, MSG_DONTWAIT) < 0 ? -1 : 0;
}

static int do_recv(void)
{
	char c;

	return recv(p.pair[0], &c, 1, MSG_DONTWAIT) < 0 ? -1 : 0;
}

static int do_sendmsg_fd(void)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl = {{0}};
	struct iovec iov = {"x", 1};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p.pair[0], sizeof(int));
	return sendmsg(p.pair[0], &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* The supervisor's end (fd 4) is paired with the client's (fd 3) in the
 * probe: a byte sent on 3 is there to take. */
static int do_recvmsg_supervisor(void)
{
	char buf[4];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (send_on(KG_FRONTEND_CLIENT_FD) < 0)
		return -1;
	return recvmsg(KG_FRONTEND_SUPERVISOR_FD, &mh, MSG_DONTWAIT) < 0 ? -1
	                                                                 : 0;
}

static int do_recvmsg(void)
{
	char buf[4];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (send(p.pair[1], "x", 1, MSG_NOSIGNAL) < 0)
		return -1;
	return recvmsg(p.pair[0], &mh, 0) < 0 ? -1 : 0;
}

static int do_accept(void)
{
	int fd = accept4(p.listener, NULL, NULL, SOCK_CLOEXEC);

	return fd < 0 ? -1 : 0;
}

static int get_opt_at(int level, int opt)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return getsockopt(p.pair[0], level, opt, &cred, &len);
}

static int get_opt(int opt)
{
	return get_opt_at(SOL_SOCKET, opt);
}

/* An allowed option name at another level: the level is checked too. A
 * unix socket then fails with EOPNOTSUPP or ENOPROTOOPT, not SIGSYS. */
static int do_getsockopt_ip_domain(void)
{
	return get_opt_at(IPPROTO_IP, SO_DOMAIN);
}

static int do_getsockopt_ip_peercred(void)
{
	return get_opt_at(IPPROTO_IP, SO_PEERCRED);
}

static int do_getsockopt_ip_peergroups(void)
{
	return get_opt_at(IPPROTO_IP, SO_PEERGROUPS);
}

static int do_setsockopt_ip_sndtimeo(void)
{
	struct timeval tv = {1, 0};

	return setsockopt(p.pair[0], IPPROTO_IP, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int passcred_at(int level)
{
	int on = 1;

	return setsockopt(p.pair[0], level, SO_PASSCRED, &on, sizeof(on));
}

static int do_setsockopt_passcred(void)
{
	return passcred_at(SOL_SOCKET);
}

static int do_setsockopt_ip_passcred(void)
{
	return passcred_at(IPPROTO_IP);
}

static int do_getsockopt_peercred(void)
{
	return get_opt(SO_PEERCRED);
}

static int do_getsockopt_type(void)
{
	return get_opt(SO_TYPE);
}

static int do_getsockopt_acceptconn(void)
{
	return get_opt(SO_ACCEPTCONN);
}

static int do_getsockopt_ip_type(void)
{
	return get_opt_at(IPPROTO_IP, SO_TYPE);
}

static int do_getsockopt_ip_acceptconn(void)
{
	return get_opt_at(IPPROTO_IP, SO_ACCEPTCONN);
}

static int do_getsockopt_sndbuf(void)
{
	return get_opt(SO_SNDBUF);
}

static int do_getsockname(void)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);

	return getsockname(p.pair[0], (struct sockaddr *)&sa, &len);
}

static int do_setsockopt_rcvbuf(void)
{
	int v = 4096;

	return setsockopt(p.pair[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

static int do_write_stdout(void)
{
	return write(STDOUT_FILENO, "x\n", 2) < 0 ? -1 : 0;
}

static int do_write_stderr(void)
{
	return write(STDERR_FILENO, "x\n", 2) < 0 ? -1 : 0;
}

static int do_kill(void)
{
	return kill(p.child, SIGTERM);
}

static int do_tkill(void)
{
	return (int)syscall(SYS_tkill, p.child, SIGTERM);
}

static int do_tgkill(void)
{
	return (int)syscall(SYS_tgkill, p.child, p.child, SIGTERM);
}

static int child_pidfd(void)
{
	return pidfd_open(p.child, 0);
}

static int do_pidfd_open(void)
{
	return child_pidfd() < 0 ? -1 : 0;
}

static int pidfd_signal(int sig)
{
	int fd = child_pidfd();

	return fd < 0 ? -1 : pidfd_send_signal(fd, sig, NULL, 0);
}

static int do_pidfd_open_nonblock(void)
{
	return pidfd_open(p.child, PIDFD_NONBLOCK) < 0 ? -1 : 0;
}

static int do_pidfd_signal0(void)
{
	return pidfd_signal(0);
}

/* The child runs as nobody: only CAP_KILL lets uid 0 signal it. Success
 * means it is gone, which its pidfd reports. */
static int do_pidfd_sigterm(void)
{
	int fd = child_pidfd();
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	if (fd < 0 || pidfd_send_signal(fd, SIGTERM, NULL, 0) < 0)
		return -1;
	if (poll(&pfd, 1, 5000) != 1) {
		errno = ETIMEDOUT;
		return -1;
	}
	return 0;
}

static int do_pidfd_sigkill(void)
{
	return pidfd_signal(SIGKILL);
}

static int pidfd_signal_with(int sig, bool siginfo, unsigned int flags)
{
	siginfo_t si = {.si_signo = sig, .si_code = SI_QUEUE};
	int fd = child_pidfd();

	if (fd < 0)
		return -1;
	return pidfd_send_signal(fd, sig, siginfo ? &si : NULL, flags);
}

static int do_pidfd_sigterm_siginfo(void)
{
	return pidfd_signal_with(SIGTERM, true, 0);
}

static int do_pidfd_signal0_siginfo(void)
{
	return pidfd_signal_with(0, true, 0);
}

/* The child is single-threaded: its thread is the whole process. */
static int do_pidfd_sigterm_thread(void)
{
	return pidfd_signal_with(SIGTERM, false, PIDFD_SIGNAL_THREAD);
}

static int do_pidfd_signal0_thread(void)
{
	return pidfd_signal_with(0, false, PIDFD_SIGNAL_THREAD);
}

static int do_setuid(void)
{
	return (int)syscall(SYS_setuid, p.nobody_uid);
}

static int do_setresuid(void)
{
	return (int)syscall(SYS_setresuid, 0, 0, 0);
}

static int do_setgid(void)
{
	return (int)syscall(SYS_setgid, p.nobody_gid);
}

static int do_setgroups(void)
{
	return (int)syscall(SYS_setgroups, 0, NULL);
}

/* Asks for CAP_SYS_ADMIN back. */
static int do_capset(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {{0}};

	data[0].effective = data[0].permitted = 1u << CAP_SYS_ADMIN;
	return (int)syscall(SYS_capset, &hdr, data);
}

static int do_mount(void)
{
	return mount("none", p.dir, "tmpfs", 0, NULL);
}

static int do_chroot(void)
{
	return chroot("/");
}

static int do_bpf(void)
{
	union bpf_attr attr = {.map_type = BPF_MAP_TYPE_ARRAY,
	                       .key_size = 4,
	                       .value_size = 4,
	                       .max_entries = 1};

	return syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)) < 0 ? -1
	                                                                 : 0;
}

static int do_userfaultfd(void)
{
	return syscall(SYS_userfaultfd, O_CLOEXEC) < 0 ? -1 : 0;
}

static int do_io_uring_setup(void)
{
	struct io_uring_params params = {0};

	return syscall(SYS_io_uring_setup, 4, &params) < 0 ? -1 : 0;
}

static int do_keyctl(void)
{
	return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID,
	               KEY_SPEC_SESSION_KEYRING, 0) < 0
	               ? -1
	               : 0;
}

static int do_mmap_exec(void)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return m == MAP_FAILED ? -1 : 0;
}

static int do_mprotect_exec(void)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return -1;
	return mprotect(m, 4096, PROT_READ | PROT_EXEC);
}

static int do_malloc_large(void)
{
	size_t n = 64u << 20;
	char *m = malloc(n);

	if (m == NULL)
		return -1;
	memset(m, 1, n);
	free(m);
	return 0;
}

static int do_prctl(void)
{
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* The Landlock rights, one call each, on paths in DIR, which no rule
 * allows. Run as root in a layer alone, only Landlock can refuse them. */
static int in_dir_call(const char *name, int (*fn)(const char *path))
{
	char path[KG_PATH_MAX + 32];

	if (in_dir(name, path, sizeof(path)) < 0)
		return -1;
	return fn(path);
}

static int write_existing(const char *path)
{
	return try_open(path, O_WRONLY | O_CLOEXEC);
}

static int truncate_existing(const char *path)
{
	return truncate(path, 0);
}

static int make_reg(const char *path)
{
	return mknod(path, S_IFREG | 0600, 0);
}

static int make_dir(const char *path)
{
	return mkdir(path, 0700);
}

static int make_fifo(const char *path)
{
	return mkfifo(path, 0600);
}

static int make_char(const char *path)
{
	return mknod(path, S_IFCHR | 0600, makedev(1, 3));
}

static int make_block(const char *path)
{
	return mknod(path, S_IFBLK | 0600, makedev(7, 0));
}

static int make_sym(const char *path)
{
	return symlink("/", path);
}

static int make_sock(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	return bind(p.loose_dgram, (struct sockaddr *)&sa, sizeof(sa));
}

/* The bits kg_sandbox_broker_privileges must leave set: no capabilities
 * from uid 0, no fixup on uid changes, none raised into the ambient set,
 * keep-caps off, each locked. */
#define BROKER_SECUREBITS                                                      \
	(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |       \
	 SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |             \
	 SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)

static int do_securebits(void)
{
	int bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);

	if (bits < 0)
		return -1;
	if (bits == BROKER_SECUREBITS)
		return 0;
	fprintf(stderr, "securebits 0x%x, want 0x%x\n", (unsigned)bits,
	        (unsigned)BROKER_SECUREBITS);
	exit(EXIT_MISMATCH);
}

/* Waits until stdin closes, so the driver can inspect /proc/PID or stop
 * and continue the probe inside poll(). */
static int do_hold(void)
{
	struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};

	return poll(&pfd, 1, 60000) == 1 ? 0 : -1;
}

/* An action is fn(), or at(DIR/path). */
struct action {
	const char *name;
	int (*fn)(void);
	const char *path;
	int (*at)(const char *path);
};

#define CALL(name, fn)                                                         \
	{                                                                      \
		(name), (fn), NULL, NULL                                       \
	}
#define AT(name, path, at)                                                     \
	{                                                                      \
		(name), NULL, (path), (at)                                     \
	}

static const struct action actions[] = {
        CALL("execve", do_execve),
        CALL("execveat", do_execveat),
        CALL("fork", do_fork),
        CALL("clone_newuser", do_clone_newuser),
        CALL("clone3_newns", do_clone3),
        CALL("unshare", do_unshare),
        CALL("ptrace", do_ptrace),
        CALL("process_vm_readv", do_process_vm_readv),
        CALL("process_vm_writev", do_process_vm_writev),
        CALL("open_proc_stat", do_open_proc_stat),
        CALL("open_passwd", do_open_passwd),
        CALL("open_shadow", do_open_shadow),
        CALL("open_foreign", do_open_foreign),
        CALL("open_write", do_open_write),
        CALL("open_mem_rdwr", do_open_mem),
        CALL("open_dir", do_open_dir),
        CALL("access", do_access),
        CALL("socket_unix", do_socket_unix),
        CALL("socket_inet", do_socket_inet),
        CALL("socket_inet6", do_socket_inet6),
        CALL("socket_netlink", do_socket_netlink),
        CALL("connect_anvil", do_connect_anvil),
        CALL("connect_abstract", do_connect_abstract),
        CALL("sendto_abstract", do_sendto_abstract),
        CALL("send", do_send),
        CALL("send_client", do_send_client),
        CALL("send_supervisor", do_send_supervisor),
        CALL("send_log", do_send_log),
        CALL("sendto_abstract_log", do_sendto_abstract_log),
        CALL("recv_client", do_recv_client),
        CALL("recvmsg_client", do_recvmsg_client),
        CALL("recv", do_recv),
        CALL("sendmsg_fd", do_sendmsg_fd),
        CALL("recvmsg", do_recvmsg),
        CALL("recvmsg_supervisor", do_recvmsg_supervisor),
        CALL("accept", do_accept),
        CALL("getsockopt_peercred", do_getsockopt_peercred),
        CALL("getsockopt_type", do_getsockopt_type),
        CALL("getsockopt_acceptconn", do_getsockopt_acceptconn),
        CALL("getsockopt_ip_type", do_getsockopt_ip_type),
        CALL("getsockopt_ip_acceptconn", do_getsockopt_ip_acceptconn),
        CALL("getsockopt_sndbuf", do_getsockopt_sndbuf),
        CALL("getsockname", do_getsockname),
        CALL("getsockopt_ip_domain", do_getsockopt_ip_domain),
        CALL("getsockopt_ip_peercred", do_getsockopt_ip_peercred),
        CALL("getsockopt_ip_peergroups", do_getsockopt_ip_peergroups),
        CALL("setsockopt_ip_sndtimeo", do_setsockopt_ip_sndtimeo),
        CALL("setsockopt_rcvbuf", do_setsockopt_rcvbuf),
        CALL("setsockopt_passcred", do_setsockopt_passcred),
        CALL("setsockopt_ip_passcred", do_setsockopt_ip_passcred),
        CALL("write_stdout", do_write_stdout),
        CALL("write_stderr", do_write_stderr),
        CALL("kill", do_kill),
        CALL("tkill", do_tkill),
        CALL("tgkill", do_tgkill),
        CALL("pidfd_open", do_pidfd_open),
        CALL("pidfd_open_nonblock", do_pidfd_open_nonblock),
        CALL("pidfd_signal0", do_pidfd_signal0),
        CALL("pidfd_sigterm", do_pidfd_sigterm),
        CALL("pidfd_sigkill", do_pidfd_sigkill),
        CALL("pidfd_sigterm_siginfo", do_pidfd_sigterm_siginfo),
        CALL("pidfd_signal0_siginfo", do_pidfd_signal0_siginfo),
        CALL("pidfd_sigterm_thread", do_pidfd_sigterm_thread),
        CALL("pidfd_signal0_thread", do_pidfd_signal0_thread),
        CALL("setuid", do_setuid),
        CALL("setresuid", do_setresuid),
        CALL("setgid", do_setgid),
        CALL("setgroups", do_setgroups),
        CALL("capset", do_capset),
        CALL("mount", do_mount),
        CALL("chroot", do_chroot),
        CALL("bpf", do_bpf),
        CALL("userfaultfd", do_userfaultfd),
        CALL("io_uring_setup", do_io_uring_setup),
        CALL("keyctl", do_keyctl),
        CALL("mmap_exec", do_mmap_exec),
        CALL("mprotect_exec", do_mprotect_exec),
        CALL("malloc_large", do_malloc_large),
        CALL("prctl", do_prctl),
        AT("write_file", "foreign", write_existing),
        AT("truncate", "foreign", truncate_existing),
        AT("remove_file", "foreign", unlink),
        AT("remove_dir", "empty", rmdir),
        AT("make_reg", "new", make_reg),
        AT("make_dir", "new", make_dir),
        AT("make_fifo", "new", make_fifo),
        AT("make_char", "new", make_char),
        AT("make_block", "new", make_block),
        AT("make_sym", "new", make_sym),
        AT("make_sock", "new", make_sock),
        CALL("securebits", do_securebits),
        CALL("hold", do_hold),
};

static void lookup_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");

	if (pw == NULL || pw->pw_uid == 0) {
		fprintf(stderr, "sandbox_probe: no unprivileged user nobody\n");
		exit(EXIT_SETUP);
	}
	p.nobody_uid = pw->pw_uid;
	p.nobody_gid = pw->pw_gid;
}

/* The child's side of start_child: becomes nobody, says so on ready,
 * and waits for the end of life. */
static _Noreturn void run_child(int life, int ready)
{
	char c;

	close(STDIN_FILENO);
	close(STDOUT_FILENO);
	close(STDERR_FILENO);
	if (setgroups(0, NULL) < 0 ||
	    setresgid(p.nobody_gid, p.nobody_gid, p.nobody_gid) < 0 ||
	    setresuid(p.nobody_uid, p.nobody_uid, p.nobody_uid) < 0 ||
	    write(ready, "r", 1) != 1)
		_exit(1);
	close(ready);
	while (read(life, &c, 1) < 0 && errno == EINTR)
		continue;
	_exit(0);
}

/* A child as nobody that lives until the probe exits: it waits for the
 * end of a pipe whose other end only the probe holds. (A death signal
 * would not do: the frontend's Landlock scope keeps the exiting probe from
 * signalling it.) It keeps none of the driver's pipes open. The probe
 * goes on only once the child is nobody: a call on a child still root
 * would show what uid 0 may do to its own processes, not to another
 * uid's. */
static int start_child(void)
{
	int life[2], ready[2];
	char c;

	if (pipe2(life, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
		return -1;
	p.child = fork();
	if (p.child < 0)
		return -1;
	if (p.child == 0) {
		close(life[1]);
		close(ready[0]);
		run_child(life[0], ready[1]);
	}
	close(life[0]);
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) {
		errno = ECHILD;
		return -1;
	}
	return close(ready[0]);
}

/* Binds fd to a fresh abstract address chosen by the kernel. */
static int autobind(int fd, struct sockaddr_un *sa, socklen_t *len)
{
	sa_family_t family = AF_UNIX;

	*len = sizeof(*sa);
	if (bind(fd, (struct sockaddr *)&family, sizeof(family)) < 0)
		return -1;
	return getsockname(fd, (struct sockaddr *)sa, len);
}

static int listen_anvil(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (snprintf(p.anvil, sizeof(p.anvil), "%s/anvil", p.dir) >=
	    (int)sizeof(p.anvil))
		return -1;
	memcpy(sa.sun_path, p.anvil, strlen(p.anvil) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return listen(fd, 4);
}

static int prepare_sockets(void)
{
	int client;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p.pair) < 0)
		return -1;
	p.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p.listener < 0 ||
	    autobind(p.listener, &p.abstract, &p.abstract_len) < 0 ||
	    listen(p.listener, 4) < 0)
		return -1;
	client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (client < 0 ||
	    connect(client, (struct sockaddr *)&p.abstract, p.abstract_len) < 0)
		return -1;
	p.abstract_dgram = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (p.abstract_dgram < 0 ||
	    autobind(p.abstract_dgram, &p.abstract_rx, &p.abstract_rx_len) < 0)
		return -1;
	p.loose_stream = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	p.loose_dgram = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (p.loose_stream < 0 || p.loose_dgram < 0)
		return -1;
	return listen_anvil();
}

/* ROLE alone enters the whole sandbox; ROLE/LAYER just that layer. */
static int enter_layer(enum kg_sandbox_role role, const struct kg_ids *ids,
                       const char *layer)
{
	bool broker = role != KG_SANDBOX_FRONTEND;
	bool signals = role == KG_SANDBOX_BROKER;

	if (layer == NULL)
		return broker ? kg_sandbox_broker(ids, signals)
		              : kg_sandbox_frontend(p.nobody_uid, p.nobody_gid);
	if (strcmp(layer, "privileges") == 0)
		return broker ? kg_sandbox_broker_privileges(ids, signals)
		              : kg_sandbox_frontend_privileges(p.nobody_uid,
		                                               p.nobody_gid);
	if (strcmp(layer, "landlock") == 0)
		return kg_sandbox_landlock(role);
	fprintf(stderr, "sandbox_probe: unknown layer %s\n", layer);
	exit(EXIT_SETUP);
}

/* "broker-user": the broker as broker_user = daemon, whose group list
 * the configuration would have read, here one made-up group. */
static struct kg_ids broker_user_ids(void)
{
	struct passwd *pw = getpwnam(BROKER_USER);
	struct kg_ids ids = {.n_groups = 1, .groups = {BROKER_USER_GROUP}};

	if (pw == NULL || pw->pw_uid == 0) {
		fprintf(stderr, "sandbox_probe: no unprivileged user %s\n",
		        BROKER_USER);
		exit(EXIT_SETUP);
	}
	ids.uid = pw->pw_uid;
	ids.gid = pw->pw_gid;
	return ids;
}

static const struct {
	const char *name;
	enum kg_sandbox_role role;
	bool broker_user;
} roles[] = {
        {"frontend", KG_SANDBOX_FRONTEND, false},
        {"broker", KG_SANDBOX_BROKER, false},
        {"broker-user", KG_SANDBOX_BROKER, true},
        {"broker-anvil", KG_SANDBOX_BROKER_ANVIL_KICKS, false},
        {"broker-user-anvil", KG_SANDBOX_BROKER_ANVIL_KICKS, true},
};

static int enter(char *spec)
{
	static const struct kg_ids root = {0};
	char *layer = strchr(spec, '/');
	struct kg_ids user;

	if (layer != NULL)
		*layer++ = '\0';
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (strcmp(spec, roles[i].name) != 0)
			continue;
		if (!roles[i].broker_user)
			return enter_layer(roles[i].role, &root, layer);
		user = broker_user_ids();
		return enter_layer(roles[i].role, &user, layer);
	}
	fprintf(stderr, "sandbox_probe: unknown role %s\n", spec);
	exit(EXIT_SETUP);
}

static const struct action *find_action(const char *name)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(actions[i].name, name) == 0)
			return &actions[i];
	fprintf(stderr, "sandbox_probe: unknown action %s\n", name);
	exit(EXIT_SETUP);
}

/* The descriptors an exec'd frontend has: its client at 3 and the
 * supervisor at 4 (a pair, so each can be written), the syslog socket at
 * 5 (with its peer at 6). Everything else the probe opens comes after. */
static int frontend_fds(void)
{
	int client[2], log[2];

	if (close_range(3, ~0U, 0) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, client) < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, log) < 0)
		return -1;
	if (client[0] != KG_FRONTEND_CLIENT_FD ||
	    client[1] != KG_FRONTEND_SUPERVISOR_FD ||
	    log[0] != KG_FRONTEND_LOG_FD) {
		errno = EBADF;
		return -1;
	}
	return send_on(KG_FRONTEND_SUPERVISOR_FD);
}

int main(int argc, char **argv)
{
	const struct action *a;

	if (argc != 4) {
		fprintf(stderr, "usage: sandbox_probe ROLE[/LAYER] ACTION "
		                "DIR\n");
		return EXIT_SETUP;
	}
	a = find_action(argv[2]);
	p.dir = argv[3];
	if (frontend_fds() < 0) {
		perror("sandbox_probe: frontend descriptors");
		return EXIT_SETUP;
	}
	lookup_nobody();
	if (start_child() < 0 || prepare_sockets() < 0) {
		perror("sandbox_probe: set-up");
		return EXIT_SETUP;
	}
	if (enter(argv[1]) < 0)
		return EXIT_SANDBOX;
	fprintf(stderr, "sandboxed\n");
	if ((a->at != NULL ? in_dir_call(a->path, a->at) : a->fn()) == 0)
		return 0;
	fprintf(stderr, "%s: %s\n", a->name, strerror(errno));
	return EXIT_ERRNO + errno;
}
