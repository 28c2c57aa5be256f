/* A compromised frontend against the real broker: this program plays the
 * frontend. It creates the socketpair, runs the broker side in a child
 * (kg_broker_main, as kickgated runs it) and sends it
 * requests that are well formed but lie, or that come with the wrong
 * number of fds. A fake anvil counts the connections it gets.
 *
 * The caller's identity is never part of a request: the broker must take
 * it from SO_PEERCRED of the fd that comes with it. This program runs as
 * root, whom the broker would allow everything, and the config allows
 * only UID_ALLOWED: a request is allowed or denied by the uid that created
 * the passed socket alone. */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_proc.h"
#include "config.h"
#include "log.h"
#include "sandbox.h"
#include "wire.h"

#define UID_ALLOWED 4242
#define UID_OTHER   4343
#define REPLY_WAIT  5000 /* ms */
#define SKIP_EXIT   77

static struct {
	char dir[64];
	char anvil[KG_PATH_MAX + 1];    /* configured: instance default */
	char unlisted[KG_PATH_MAX + 1]; /* served too, but in no config */
	struct kg_config cfg;
	int frontend;  /* our end of the socketpair */
	int anvil_log; /* read end: one byte per anvil connection */
	pid_t broker, anvil_pid;
	unsigned int hits[2]; /* connections: configured, unlisted */
} t;

/* Fake anvil ---------------------------------------------------------- */

static int listen_at(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, 8) < 0)
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
	lfd[0] = listen_at(t.anvil);
	lfd[1] = listen_at(t.unlisted);
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

/* A connected pair made by a process running as uid: SO_PEERCRED on
 * either end names that process and uid. The maker passes both ends
 * here and exits. */
static void pair_of(uid_t uid, int out[2])
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
	pid_t maker;

	assert_int_equal(
	        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, xfer), 0);
	maker = fork();
	assert_true(maker >= 0);
	if (maker == 0) {
		int pair[2];

		if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
		    setresuid(uid, uid, uid) < 0 ||
		    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) < 0)
			_exit(1);
		send_fds(xfer[1], pair, 2, "p", 1);
		_exit(0);
	}
	close(xfer[1]);
	assert_int_equal(recvmsg(xfer[0], &mh, MSG_CMSG_CLOEXEC), 1);
	assert_non_null(CMSG_FIRSTHDR(&mh));
	memcpy(out, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int) * 2);
	close(xfer[0]);
	assert_int_equal(waitpid(maker, &status, 0), maker);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
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
	send_fds(t.frontend, fds, n, req, len);
	return reply_status(reply_fd);
}

/* Asks with a fresh pair of uid; the broker gets one end. */
static int ask_as(uid_t uid, const uint8_t *req, size_t len)
{
	int pair[2], status;

	pair_of(uid, pair);
	status = ask(req, len, &pair[0], 1, pair[1]);
	close(pair[0]);
	close(pair[1]);
	return status;
}

static void assert_broker_running(void)
{
	assert_int_equal(waitpid(t.broker, NULL, WNOHANG), 0);
}

/* Set-up -------------------------------------------------------------- */

static void parse_config(void)
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

	assert_true(len > 0 && (size_t)len < sizeof(text));
	assert_int_equal(kg_config_parse_buf("test.conf", text, (size_t)len,
	                                     &t.cfg, stderr),
	                 0);
}

static void start_broker(void)
{
	int sp[2];

	assert_int_equal(
	        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	t.broker = fork();
	assert_true(t.broker >= 0);
	if (t.broker == 0) {
		close(sp[0]);
		close(t.anvil_log);
		kg_log_role("broker");
		kg_broker_main(&t.cfg, sp[1]);
		_exit(3);
	}
	close(sp[1]);
	t.frontend = sp[0];
}

static int setup(void **state)
{
	(void)state;
	strcpy(t.dir, "/tmp/kgcf.XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	assert_int_equal(chmod(t.dir, 0755), 0);
	snprintf(t.anvil, sizeof(t.anvil), "%s/anvil", t.dir);
	snprintf(t.unlisted, sizeof(t.unlisted), "%s/unlisted", t.dir);
	parse_config();
	start_anvil();
	start_broker();
	return 0;
}

/* The broker must stop because its frontend is gone, by exit status 1,
 * never killed by its sandbox. */
static int teardown(void **state)
{
	int status;

	(void)state;
	close(t.frontend);
	assert_int_equal(waitpid(t.broker, &status, 0), t.broker);
	close(t.anvil_log);
	kill(t.anvil_pid, SIGTERM);
	waitpid(t.anvil_pid, NULL, 0);
	unlink(t.anvil);
	unlink(t.unlisted);
	rmdir(t.dir);
	kg_config_free(&t.cfg);
	if (WIFSIGNALED(status))
		fail_msg("broker killed by signal %d", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	return 0;
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

static void message_without_fd_is_dropped(void **state)
{
	uint8_t req[KG_REQ_MAX];
	size_t len = who_request(NULL, req, sizeof(req));

	(void)state;
	send_fds(t.frontend, NULL, 0, req, len);
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
	send_fds(t.frontend, fds, 2, req, len);
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
	send_fds(t.frontend, &pair[0], 1, big, sizeof(big));
	close(pair[0]);
	assert_int_equal(reply_status(pair[1]), -1);
	close(pair[1]);
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_OK);
}

static void malformed_request_is_answered_as_usage_error(void **state)
{
	static const uint8_t junk[] = {KG_WIRE_VERSION, 9, 0, 0, 0, 0, 0, 0};
	uint8_t req[KG_REQ_MAX];
	size_t len = who_request(NULL, req, sizeof(req));

	(void)state;
	assert_int_equal(ask_as(UID_ALLOWED, junk, sizeof(junk)),
	                 KG_EXIT_USAGE);
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_OK);
}

/* A pipe has no peer to take an identity from; the broker answers what
 * it can and serves the next request. */
static void fd_that_is_not_a_socket_gets_no_rights(void **state)
{
	uint8_t req[KG_REQ_MAX];
	size_t len = who_request(NULL, req, sizeof(req));
	int p[2];
	unsigned int before;

	(void)state;
	count_anvil_hits();
	before = t.hits[0];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	send_fds(t.frontend, &p[1], 1, req, len);
	close(p[1]);
	assert_int_equal(poll(&(struct pollfd){p[0], POLLIN, 0}, 1, REPLY_WAIT),
	                 1);
	close(p[0]);
	assert_int_equal(ask_as(UID_ALLOWED, req, len), KG_EXIT_OK);
	count_anvil_hits();
	assert_int_equal(t.hits[0], before + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(identity_comes_from_the_passed_socket),
	        cmocka_unit_test(unlisted_anvil_is_denied_and_never_contacted),
	        cmocka_unit_test(message_without_fd_is_dropped),
	        cmocka_unit_test(message_with_two_fds_is_dropped),
	        cmocka_unit_test(oversized_message_is_dropped),
	        cmocka_unit_test(malformed_request_is_answered_as_usage_error),
	        cmocka_unit_test(fd_that_is_not_a_socket_gets_no_rights),
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
