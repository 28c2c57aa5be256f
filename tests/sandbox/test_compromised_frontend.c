/* SPDX-License-Identifier: MIT */
/* What a compromised frontend's bytes can do against the real broker. A
 * frontend only writes request bytes; the supervisor sends them with the
 * client's socket it holds. This program plays the supervisor's side of
 * the broker's channel: it creates the socketpair and the sealed
 * configuration, execs the real broker (kickgated --broker, as the
 * supervisor execs it) and sends it requests that
 * are well formed but lie, and, as a second line of defence should the
 * sending side ever be subverted, fds that are not a client's or the
 * wrong number of them. A fake anvil counts the connections it gets.
 * That a frontend never holds another client's socket at all is
 * test_per_connection.py's part.
 *
 * The caller's identity is never part of a request: the broker must take
 * it from SO_PEERCRED of the fd that comes with it, and only when that fd
 * is a connection accepted on kickgated's listener (here: this program's
 * listener, whose address the broker is given) by a process other than
 * the supervisor (this program) and the broker. This program runs as root,
 * whom the broker would allow everything, and the config allows only
 * UID_ALLOWED: a request is allowed or denied by the uid that connected
 * alone. Any other fd says root too, and must stop the broker before it
 * does anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/main.h"
#include "broker/peer.h"
#include "policy/config.h"
#include "proto/log.h"
#include "proto/wire.h"
#include "sandbox/sandbox.h"

#define UID_ALLOWED 4242
#define UID_OTHER   4343
#define REPLY_WAIT  5000 /* ms */
#define SKIP_EXIT   77

static struct {
	char dir[64];
	char anvil[KG_PATH_MAX + 1];       /* configured: instance default */
	char unlisted[KG_PATH_MAX + 1];    /* served too, but in no config */
	char listen_path[KG_PATH_MAX + 1]; /* "kickgated's" listener */
	char other_path[KG_PATH_MAX + 1];  /* another root listener */
	const char *kickgated;             /* the binary under test */
	int listener, other;               /* listening at the two paths */
	int link;                          /* our end of the broker's channel */
	int anvil_log;  /* read end: one byte per anvil connection */
	int broker_log; /* read end of the broker's stderr */
	char log[8192]; /* what the current broker logged so far */
	size_t log_len;
	pid_t broker, anvil_pid;
	unsigned int hits[2]; /* connections: configured, unlisted */
} t;

/* Fake anvil ---------------------------------------------------------- */

static struct sockaddr_un address(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memcpy(sa.sun_path, path, strlen(path) + 1);
	return sa;
}

static int listen_at(const char *path, int type, mode_t mode)
{
	struct sockaddr_un sa = address(path);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, mode) < 0 || listen(fd, 8) < 0)
		return -1;
	return fd;
}

/* Answers every connection with a one-line dump after logging it as '0'
 * (configured socket) or '1' (unlisted). Runs until killed. */
static void anvil_serve(int lfd[2], int log_fd)
{
	static const char dump[] = "imap/192.0.2.1/alice\t999999\t1\n\n";
	struct pollfd pfd[2] = {{lfd[0], POLLIN, 0}, {lfd[1], POLLIN, 0}};
	char req[64];

	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			_exit(1);
		for (int i = 0; i < 2; i++) {
			char tag = (char)('0' + i);
			int c;

			if (!(pfd[i].revents & POLLIN))
				continue;
			c = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			if (write(log_fd, &tag, 1) != 1)
				_exit(0);
			if (read(c, req, sizeof(req)) > 0)
				(void)!write(c, dump, sizeof(dump) - 1);
			close(c);
		}
	}
}

static void start_anvil(void)
{
	int lfd[2], log[2];

	assert_int_equal(pipe2(log, O_CLOEXEC), 0);
	lfd[0] = listen_at(t.anvil, SOCK_STREAM, 0600);
	lfd[1] = listen_at(t.unlisted, SOCK_STREAM, 0600);
	assert_true(lfd[0] >= 0 && lfd[1] >= 0);
	t.anvil_pid = fork();
	assert_true(t.anvil_pid >= 0);
	if (t.anvil_pid == 0) {
		close(log[0]);
		anvil_serve(lfd, log[1]);
	}
	close(log[1]);
	close(lfd[0]);
	close(lfd[1]);
	t.anvil_log = log[0];
}

/* Adds the connections anvil logged so far to t.hits. */
static void count_anvil_hits(void)
{
	char buf[64];
	ssize_t n;

	while (poll(&(struct pollfd){t.anvil_log, POLLIN, 0}, 1, 0) == 1 &&
	       (n = read(t.anvil_log, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			t.hits[buf[i] == '1']++;
}

/* Sockets of another uid ---------------------------------------------- */

static void send_fds(int via, const int *fds, size_t n, const void *msg,
                     size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)msg, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	memset(&ctl, 0, sizeof(ctl));
	if (n > 0) {
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	assert_int_equal(sendmsg(via, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* Sockets made by a process running as uid, which passes them here and
 * exits: a connected pair (at NULL), or its end of a connection to the
 * listener at. SO_PEERCRED names that process and uid. Returns how many
 * fds came. */
static size_t made_by(uid_t uid, const char *at, int *out)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} ctl;
	int xfer[2], status;
	char byte;
	struct iovec iov = {&byte, 1};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *cm;
	pid_t maker;

	assert_int_equal(
	        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, xfer), 0);
	maker = fork();
	assert_true(maker >= 0);
	if (maker == 0) {
		struct sockaddr_un sa = address(at != NULL ? at : "");
		int fds[2];

		if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(1);
		if (at == NULL &&
		    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0)
			send_fds(xfer[1], fds, 2, "p", 1);
		else if ((fds[0] = socket(AF_UNIX, SOCK_SEQPACKET, 0)) >= 0 &&
		         connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)) ==
		                 0)
			send_fds(xfer[1], fds, 1, "c", 1);
		_exit(0);
	}
	close(xfer[1]);
	assert_int_equal(recvmsg(xfer[0], &mh, MSG_CMSG_CLOEXEC), 1);
	cm = CMSG_FIRSTHDR(&mh);
	assert_non_null(cm);
	memcpy(out, CMSG_DATA(cm), cm->cmsg_len - CMSG_LEN(0));
	close(xfer[0]);
	assert_int_equal(waitpid(maker, &status, 0), maker);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
}

static void pair_of(uid_t uid, int out[2])
{
	assert_int_equal(made_by(uid, NULL, out), 2);
}

/* Waits, bounded, for the connection queued on lfd and accepts it. */
static int accept_one(int lfd)
{
	assert_int_equal(poll(&(struct pollfd){lfd, POLLIN, 0}, 1, REPLY_WAIT),
	                 1);
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* A connection made by uid to the listener lfd at path: out[0] the end
 * accepted here, out[1] the connecting end. */
static void connection_of(uid_t uid, int lfd, const char *path, int out[2])
{
	assert_int_equal(made_by(uid, path, &out[1]), 1);
	out[0] = accept_one(lfd);
	assert_true(out[0] >= 0);
}

/* Requests and replies ------------------------------------------------ */

static size_t who_request(const char *path, uint8_t *buf, size_t cap)
{
	struct kg_request r = {.op = KG_OP_WHO};
	size_t len;

	if (path != NULL) {
		r.path_len = (uint8_t)strlen(path);
		memcpy(r.path, path, r.path_len);
	}
	assert_int_equal(kg_request_encode(&r, buf, cap, &len), KG_WIRE_OK);
	return len;
}

/* A kick of every session, -f as the review's 'b1@*' was: root may. */
static size_t kick_request(uint8_t flags, uint8_t *buf, size_t cap)
{
	struct kg_request r = {.op = KG_OP_KICK, .flags = flags, .glob_len = 1};
	size_t len;

	r.glob[0] = '*';
	assert_int_equal(kg_request_encode(&r, buf, cap, &len), KG_WIRE_OK);
	return len;
}

static int on_end(void *ctx, const struct kg_reply_end *end)
{
	*(struct kg_reply_end *)ctx = *end;
	return 0;
}

/* The reply's status, or -1 when fd closes (or stays silent) without
 * one. */
static int reply_status(int fd)
{
	static const struct kg_reply_handler h = {.end = on_end};
	static uint8_t pkt[KG_PKT_MAX];
	struct kg_reply_end end;

	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		bool is_end = false;
		int cb = 0;
		ssize_t n;

		if (poll(&pfd, 1, REPLY_WAIT) != 1)
			return -1;
		n = recv(fd, pkt, sizeof(pkt), 0);
		if (n <= 0)
			return -1;
		assert_int_equal(
		        kg_reply_decode(pkt, (size_t)n, &h, &end, &is_end, &cb),
		        KG_WIRE_OK);
		if (is_end)
			return end.status;
	}
}

/* Sends the request with fds; returns the status read from reply_fd. */
static int ask(const uint8_t *req, size_t len, const int *fds, size_t n,
               int reply_fd)
{
	send_fds(t.link, fds, n, req, len);
	return reply_status(reply_fd);
}

/* Asks on a fresh connection of uid to the listener; the broker gets
 * the accepted end. */
static int ask_as(uid_t uid, const uint8_t *req, size_t len)
{
	int pair[2], status;

	connection_of(uid, t.listener, t.listen_path, pair);
	status = ask(req, len, &pair[0], 1, pair[1]);
	close(pair[0]);
	close(pair[1]);
	return status;
}

static void assert_broker_running(void)
{
	assert_int_equal(waitpid(t.broker, NULL, WNOHANG), 0);
}

/* Reads what the broker logs until a line holds text; false when it
 * does not come within REPLY_WAIT. */
static bool logged(const char *text)
{
	t.log[t.log_len] = '\0';
	while (strstr(t.log, text) == NULL) {
		struct pollfd pfd = {t.broker_log, POLLIN, 0};
		ssize_t n;

		if (poll(&pfd, 1, REPLY_WAIT) != 1)
			return false;
		n = read(t.broker_log, t.log + t.log_len,
		         sizeof(t.log) - 1 - t.log_len);
		if (n <= 0)
			return false;
		t.log_len += (size_t)n;
		t.log[t.log_len] = '\0';
	}
	return true;
}

/* The broker's exit status, or -1 when it still runs after
 * REPLY_WAIT. */
static int broker_exit(void)
{
	int status;

	for (int ms = 0; ms < REPLY_WAIT; ms += 10) {
		if (waitpid(t.broker, &status, WNOHANG) == t.broker) {
			if (WIFSIGNALED(status))
				fail_msg("broker killed by signal %d",
				         WTERMSIG(status));
			return WEXITSTATUS(status);
		}
		poll(NULL, 0, 10);
	}
	return -1;
}

/* Set-up -------------------------------------------------------------- */

/* The configuration's bytes, sealed in a memfd as the supervisor hands
 * them to the broker it execs. */
static int config_memfd(void)
{
	char text[1024];
	int len = snprintf(text, sizeof(text),
	                   "[broker]\n"
	                   "anvil = %s\n"
	                   "audit = stderr\n"
	                   "anvil_timeout_ms = 2000\n"
	                   "[rule allowed]\n"
	                   "principals = uid:%d\n"
	                   "users = *\n"
	                   "networks = 0.0.0.0/0 ::/0\n",
	                   t.anvil, UID_ALLOWED);
	int fd = memfd_create("test.conf", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(len > 0 && (size_t)len < sizeof(text) && fd >= 0);
	assert_int_equal(write(fd, text, (size_t)len), len);
	assert_int_equal(
	        fcntl(fd, F_ADD_SEALS,
	              F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL),
	        0);
	return fd;
}

/* In the child: the broker's descriptors as the supervisor arranges
 * them (broker/main.h), then kickgated --broker itself. */
static _Noreturn void exec_broker(int chan, int conf, int log)
{
	int keep[] = {chan, conf};

	if (dup2(log, STDERR_FILENO) < 0)
		_exit(2);
	for (int i = 0; i < 2; i++)
		keep[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, 10);
	if (keep[0] < 0 || keep[1] < 0 ||
	    dup2(keep[0], KG_BROKER_CHANNEL_FD) < 0 ||
	    dup2(keep[1], KG_BROKER_CONFIG_FD) < 0)
		_exit(2);
	execl(t.kickgated, "kickgated", "--broker", "test.conf", "stderr",
	      (char *)NULL);
	_exit(3);
}

/* Starts the real broker, exec'd as the supervisor execs it, taking
 * clients from t.listener. A broker that connect_self connects to it
 * first, as a client of its own (the connection's peer pid stays the
 * broker's across the exec). */
static void start_broker(bool connect_self)
{
	struct kg_sockname name;
	int sp[2], log[2], conf = config_memfd();

	assert_int_equal(kg_sockname_of_listener(t.listener, &name), 0);
	assert_int_equal(
	        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(pipe2(log, O_CLOEXEC), 0);
	t.broker = fork();
	assert_true(t.broker >= 0);
	if (t.broker == 0) {
		struct sockaddr_un sa = address(t.listen_path);
		int self = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

		if (connect_self &&
		    connect(self, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(2);
		exec_broker(sp[1], conf, log[1]);
	}
	close(conf);
	close(sp[1]);
	close(log[1]);
	t.link = sp[0];
	t.broker_log = log[0];
	t.log_len = 0;
	/* The broker's start message: the listener's address. */
	assert_int_equal(send(t.link, &name, sizeof(name), MSG_NOSIGNAL),
	                 (ssize_t)sizeof(name));
}

static void listen_all(void)
{
	snprintf(t.listen_path, sizeof(t.listen_path), "%s/kickgate.sock",
	         t.dir);
	snprintf(t.other_path, sizeof(t.other_path), "%s/other.sock", t.dir);
	t.listener = listen_at(t.listen_path, SOCK_SEQPACKET, 0666);
	t.other = listen_at(t.other_path, SOCK_SEQPACKET, 0666);
	assert_true(t.listener >= 0 && t.other >= 0);
}

static int setup(void **state)
{
	(void)state;
	strcpy(t.dir, "/tmp/kgcf.XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	assert_int_equal(chmod(t.dir, 0755), 0);
	snprintf(t.anvil, sizeof(t.anvil), "%s/anvil", t.dir);
	snprintf(t.unlisted, sizeof(t.unlisted), "%s/unlisted", t.dir);
	t.kickgated = getenv("KG_KICKGATED");
	if (t.kickgated == NULL) {
		fprintf(stderr, "KG_KICKGATED names no kickgated to test\n");
		return -1;
	}
	start_anvil();
	listen_all();
	start_broker(false);
	return 0;
}

/* The broker must stop because the supervisor closed the channel, by
 * exit status 0, never killed by its sandbox. */
static int teardown(void **state)
{
	(void)state;
	close(t.link);
	assert_int_equal(broker_exit(), 0);
	close(t.broker_log);
	close(t.anvil_log);
	kill(t.anvil_pid, SIGTERM);
	waitpid(t.anvil_pid, NULL, 0);
	close(t.listener);
	close(t.other);
	unlink(t.listen_path);
	unlink(t.other_path);
	unlink(t.anvil);
	unlink(t.unlisted);
	rmdir(t.dir);
	return 0;
}

/* The sender passes fd with a request root may make: the broker must
 * log what fd is and stop, having contacted no anvil (so it learnt no
 * process to signal). A fresh broker serves the tests that follow; the
 * caller closes fd. */
static void assert_refused(int fd, const char *what)
{
	char line[256];
	uint8_t req[KG_REQ_MAX];
	size_t len = kick_request(KG_REQ_FORCE, req, sizeof(req));
	unsigned int before;

	count_anvil_hits();
	before = t.hits[0];
	send_fds(t.link, &fd, 1, req, len);
	snprintf(line, sizeof(line),
	         "supervisor passed fd that is not a client connection: %s",
	         what);
	if (!logged(line))
		fail_msg("no \"%s\" in the broker's log:\n%s", line, t.log);
	assert_int_equal(broker_exit(), 1);
	count_anvil_hits();
	assert_int_equal(t.hits[0], before);
	assert_int_equal(t.hits[1], 0);
	close(t.link);
	close(t.broker_log);
	start_broker(false);
}

/* Tests --------------------------------------------------------------- */

static void identity_comes_from_the_passed_socket(void **state)
{
	uint8_t req[KG_REQ_MAX];
	size_t len = who_request(NULL, req, sizeof(req));
	unsigned int before;

	(void)state;
	count_anvil_hits();
	before = t.hits[0];
	/* The same bytes: denied for one uid, allowed for the other. */
	assert_int_equal(ask_as(UID_OTHER, req, len), KG_EXIT_NOPERM);
	count_anvil_hits();
	assert_int_equal(t.hits[0], before);
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_OK);
	count_anvil_hits();
	assert_int_equal(t.hits[0], before + 1);
}

static void unlisted_anvil_is_denied_and_never_contacted(void **state)
{
	uint8_t req[KG_REQ_MAX];
	size_t len = who_request(t.unlisted, req, sizeof(req));

	(void)state;
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_NOPERM);
	/* Root, whom the broker allows everything, fares no better. */
	assert_int_equal(ask_as(0, req, len), KG_EXIT_NOPERM);
	count_anvil_hits();
	assert_int_equal(t.hits[1], 0);
}

/* -h is a right of its own (by_dest), which this config's rule lacks:
 * the broker denies a kick by destination before anvil is asked,
 * whatever the frontend let through. */
static void destination_without_the_right_is_denied(void **state)
{
	struct kg_request r = {.op = KG_OP_KICK};
	uint8_t req[KG_REQ_MAX];
	size_t len;
	unsigned int before;

	(void)state;
	r.dest = (struct kg_net){KG_AF_INET, 8, {127}};
	assert_int_equal(kg_request_encode(&r, req, sizeof(req), &len),
	                 KG_WIRE_OK);
	count_anvil_hits();
	before = t.hits[0];
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_NOPERM);
	count_anvil_hits();
	assert_int_equal(t.hits[0], before);
	assert_broker_running();
}

static void message_without_fd_is_dropped(void **state)
{
	uint8_t req[KG_REQ_MAX];
	size_t len = who_request(NULL, req, sizeof(req));

	(void)state;
	send_fds(t.link, NULL, 0, req, len);
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_OK);
	assert_broker_running();
}

/* Both fds are closed unanswered: each peer reads end of file. */
static void message_with_two_fds_is_dropped(void **state)
{
	uint8_t req[KG_REQ_MAX];
	size_t len = who_request(NULL, req, sizeof(req));
	int a[2], b[2], fds[2];

	(void)state;
	pair_of(UID_ALLOWED, a);
	pair_of(UID_ALLOWED, b);
	fds[0] = a[0];
	fds[1] = b[0];
	send_fds(t.link, fds, 2, req, len);
	close(a[0]);
	close(b[0]);
	assert_int_equal(reply_status(a[1]), -1);
	assert_int_equal(reply_status(b[1]), -1);
	close(a[1]);
	close(b[1]);
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_OK);
	assert_broker_running();
}

static void oversized_message_is_dropped(void **state)
{
	static uint8_t big[KG_REQ_MAX + 64];
	uint8_t req[KG_REQ_MAX];
	size_t len = who_request(NULL, req, sizeof(req));
	int pair[2];

	(void)state;
	memcpy(big, req, len);
	pair_of(UID_ALLOWED, pair);
	send_fds(t.link, &pair[0], 1, big, sizeof(big));
	close(pair[0]);
	assert_int_equal(reply_status(pair[1]), -1);
	close(pair[1]);
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_OK);
}

static void malformed_request_is_answered_and_logged(void **state)
{
	static const uint8_t junk[] = {KG_WIRE_VERSION, 9, 0, 0, 0, 0, 0, 0};
	uint8_t req[KG_REQ_MAX];
	size_t len = who_request(NULL, req, sizeof(req));

	(void)state;
	assert_int_equal(ask_as(UID_ALLOWED, junk, sizeof(junk)),
	                 KG_EXIT_USAGE);
	/* A working frontend never passes such bytes on. */
	if (!logged("passed on a request it should have refused: malformed "
	            "request"))
		fail_msg("the malformed request is not logged:\n%s", t.log);
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_OK);
}

/* Each fd below is one a daemon process holds, and each names root as
 * its peer: served, it would make the request root's. */

static void listening_socket_is_refused(void **state)
{
	(void)state;
	assert_refused(t.listener, "listening socket");
}

/* assert_refused closes it as the link of the stopped broker. */
static void own_end_of_the_link_is_refused(void **state)
{
	(void)state;
	assert_refused(t.link, "not accepted on kickgated's listening socket");
}

/* As a socket left open by whoever started the daemon would be. */
static void inherited_root_pair_is_refused(void **state)
{
	int pair[2];

	(void)state;
	pair_of(0, pair);
	assert_refused(pair[0], "not accepted on kickgated's listening socket");
	close(pair[0]);
	close(pair[1]);
}

/* This process's end of a connection to another root service. */
static void connection_to_a_root_listener_is_refused(void **state)
{
	struct sockaddr_un sa = address(t.other_path);
	int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int accepted;

	(void)state;
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	accepted = accept_one(t.other);
	assert_refused(c, "not accepted on kickgated's listening socket");
	close(c);
	close(accepted);
}

/* Accepted, connected, of the right type, but on another listener. */
static void connection_on_another_listener_is_refused(void **state)
{
	int conn[2];

	(void)state;
	connection_of(0, t.other, t.other_path, conn);
	assert_refused(conn[0], "not accepted on kickgated's listening socket");
	close(conn[0]);
	close(conn[1]);
}

static void connection_of_the_supervisor_is_refused(void **state)
{
	struct sockaddr_un sa = address(t.listen_path);
	int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int accepted;

	(void)state;
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	accepted = accept_one(t.listener);
	assert_refused(accepted, "connected by the supervisor");
	close(c);
	close(accepted);
}

static void connection_of_the_broker_is_refused(void **state)
{
	int accepted;

	(void)state;
	close(t.link);
	assert_int_equal(broker_exit(), 0);
	close(t.broker_log);
	start_broker(true);
	accepted = accept_one(t.listener);
	assert_refused(accepted, "connected by the broker");
	close(accepted);
}

/* A pipe has no peer to take an identity from. */
static void fd_that_is_not_a_socket_is_refused(void **state)
{
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_refused(p[1], "not a socket");
	close(p[0]);
	close(p[1]);
}

/* What a compromised frontend still can: on its one client's
 * connection, have a request sent that the client never made. The broker acts
 * with that client's identity, not root's, and audits it as that client's. */
static void lie_on_a_clients_connection_gets_only_its_rights(void **state)
{
	uint8_t req[KG_REQ_MAX];
	size_t len;
	struct ucred cred;
	socklen_t cred_len = sizeof(cred);
	char caller[64];
	int conn[2];
	unsigned int before;

	(void)state;
	count_anvil_hits();
	before = t.hits[0];
	connection_of(UID_ALLOWED, t.listener, t.listen_path, conn);
	assert_int_equal(
	        getsockopt(conn[0], SOL_SOCKET, SO_PEERCRED, &cred, &cred_len),
	        0);
	snprintf(caller, sizeof(caller), "uid=%d user=- pid=%d", UID_ALLOWED,
	         (int)cred.pid);
	/* Root could force; the client may not. */
	len = kick_request(KG_REQ_FORCE, req, sizeof(req));
	assert_int_equal(ask(req, len, &conn[0], 1, conn[1]), KG_EXIT_NOPERM);
	assert_true(logged(caller));
	assert_non_null(strstr(strstr(t.log, caller), "outcome=denied"));
	t.log_len = 0;
	len = kick_request(0, req, sizeof(req));
	ask(req, len, &conn[0], 1, conn[1]);
	assert_true(logged(caller));
	assert_non_null(strstr(strstr(t.log, caller), "op=kick glob=\"*\""));
	count_anvil_hits();
	assert_int_equal(t.hits[0], before + 1);
	close(conn[0]);
	close(conn[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(identity_comes_from_the_passed_socket),
	        cmocka_unit_test(unlisted_anvil_is_denied_and_never_contacted),
	        cmocka_unit_test(destination_without_the_right_is_denied),
	        cmocka_unit_test(message_without_fd_is_dropped),
	        cmocka_unit_test(message_with_two_fds_is_dropped),
	        cmocka_unit_test(oversized_message_is_dropped),
	        cmocka_unit_test(malformed_request_is_answered_and_logged),
	        cmocka_unit_test(listening_socket_is_refused),
	        cmocka_unit_test(own_end_of_the_link_is_refused),
	        cmocka_unit_test(inherited_root_pair_is_refused),
	        cmocka_unit_test(connection_to_a_root_listener_is_refused),
	        cmocka_unit_test(connection_on_another_listener_is_refused),
	        cmocka_unit_test(connection_of_the_supervisor_is_refused),
	        cmocka_unit_test(connection_of_the_broker_is_refused),
	        cmocka_unit_test(fd_that_is_not_a_socket_is_refused),
	        cmocka_unit_test(
	                lie_on_a_clients_connection_gets_only_its_rights),
	};

	if (geteuid() != 0) {
		const char *ci = getenv("CI");
		bool in_ci = ci != NULL && strcmp(ci, "true") == 0;

		printf("%s: the broker's sandbox and other uids need root\n",
		       in_ci ? "FAIL" : "SKIP");
		return in_ci ? 1 : SKIP_EXIT;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
