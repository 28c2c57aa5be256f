/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/anvil_client.h"
#include "tests/unit/testutil24.h"

static const char request[] = "VERSION\tanvil\t1\t0\nCONNECT-DUMP\n";

/* What the fake anvil does once its script is sent. */
enum after_script {
	HOLD,  /* keep the connection open until the client closes it */
	CLOSE, /* close at once */
};

struct fixture {
	char dir[64];
	char path[128];
	char log[128]; /* what a fake anvil read, conversation by conversation
	                */
	int lfd;
	pid_t child;
	struct kg_dump_parser parser;
	pid_t writer;
	char err[256];
};

struct tally {
	uint64_t lines;
	uint64_t pid_sum;
	uint64_t stop_at; /* 0: never stop */
};

static int count_conn(void *ctx, const struct kg_conn *c)
{
	struct tally *t = ctx;

	t->lines++;
	t->pid_sum += c->pid;
	return t->stop_at != 0 && t->lines == t->stop_at;
}

/* A dump in whatever protocol the fake anvil speaks, found out afresh. */
static enum kg_anvil_status dump_at(struct fixture *f, const char *path,
                                    int timeout_ms, struct tally *t)
{
	uint8_t spoken = KG_PROTO_AUTO;
	const struct kg_anvil_target target = {.path = path,
	                                       .timeout_ms = timeout_ms,
	                                       .pinned = KG_PROTO_AUTO,
	                                       .spoken = &spoken};

	return kg_anvil_dump(&target,
	                     &(struct kg_dump_sink){count_conn, NULL, t},
	                     &f->parser, &f->writer, f->err, sizeof(f->err));
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int serial;

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kg-anvil-test.%d.%d",
	         (int)getpid(), serial++);
	assert_int_equal(mkdir(f->dir, 0700), 0);
	snprintf(f->path, sizeof(f->path), "%s/anvil", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/log", f->dir);
	strcpy(sa.sun_path, f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* A backlog of 0 still admits one pending connection. */
	assert_int_equal(listen(f->lfd, 0), 0);
	f->child = -1;
	f->writer = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->child > 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	close(f->lfd);
	unlink(f->path);
	unlink(f->log);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The request must arrive whole in the first read: one write. */
static int read_request(int fd)
{
	char buf[256];
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	ssize_t n;

	if (poll(&pfd, 1, 5000) != 1)
		return -1;
	n = read(fd, buf, sizeof(buf));
	if (n != (ssize_t)strlen(request) || memcmp(buf, request, (size_t)n))
		return -1;
	return 0;
}

/* Sends script in random chunks of 1..600 bytes. */
static int send_chunked(int fd, const char *script, size_t len)
{
	size_t off = 0;

	srand(7);
	while (off < len) {
		size_t n = 1 + (size_t)rand() % 600;
		ssize_t w;

		if (n > len - off)
			n = len - off;
		w = write(fd, script + off, n);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

static void serve_one(int lfd, const char *script, size_t len,
                      enum after_script after)
{
	char buf[256];
	int fd = accept(lfd, NULL, NULL);

	if (fd < 0 || read_request(fd) < 0)
		_exit(3);
	if (send_chunked(fd, script, len) < 0)
		_exit(4);
	if (after == HOLD)
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	_exit(0);
}

static void start_anvil(struct fixture *f, const char *script, size_t len,
                        enum after_script after)
{
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		signal(SIGPIPE, SIG_IGN);
		serve_one(f->lfd, script, len, after);
	}
}

/* The first half of script from the child, the rest from a grandchild
 * on the same connection. */
static void serve_two_writers(int lfd, const char *script, size_t len)
{
	int fd = accept(lfd, NULL, NULL);
	pid_t pid;

	if (fd < 0 || read_request(fd) < 0)
		_exit(3);
	if (send_chunked(fd, script, len / 2) < 0)
		_exit(4);
	pid = fork();
	if (pid == 0)
		_exit(send_chunked(fd, script + len / 2, len - len / 2) < 0
		              ? 4
		              : 0);
	if (pid < 0 || waitpid(pid, NULL, 0) != pid)
		_exit(5);
	_exit(0);
}

/* Returns the fake anvil's exit code: 0, or 3 for a bad request, 4 when
 * the client went away while it was still sending. */
static int reap_anvil(struct fixture *f)
{
	int st;

	assert_int_equal(waitpid(f->child, &st, 0), f->child);
	f->child = -1;
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void assert_anvil_exit_ok(struct fixture *f)
{
	assert_int_equal(reap_anvil(f), 0);
}

/* n lines "imap/10.0.I/256.I%256/userI\t(1000+I)\t1\n" and, when ended, the
 * empty line. Returns a malloc'd script; *pid_sum gets the pids' sum. */
static char *make_dump(size_t n, int ended, size_t *len, uint64_t *pid_sum)
{
	size_t cap = n * 64 + 2, off = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	*pid_sum = 0;
	for (size_t i = 0; i < n; i++) {
		off += (size_t)snprintf(s + off, cap - off,
		                        "imap/10.0.%zu.%zu/user%zu\t%zu\t1\n",
		                        i / 256 % 256, i % 256, i, 1000 + i);
		*pid_sum += 1000 + i;
	}
	if (ended)
		s[off++] = '\n';
	*len = off;
	return s;
}

static void test_full_dump_in_small_chunks_is_parsed(void **state)
{
	struct fixture *f = *state;
	struct tally t = {0};
	uint64_t sum;
	size_t len;
	char *dump = make_dump(3000, 1, &len, &sum);

	start_anvil(f, dump, len, HOLD);
	assert_int_equal(dump_at(f, f->path, 5000, &t), KG_ANVIL_OK);
	assert_true(f->parser.done);
	assert_int_equal(f->parser.lines, 3000);
	assert_int_equal(f->parser.malformed, 0);
	assert_int_equal(t.lines, 3000);
	assert_int_equal(t.pid_sum, sum);
	/* The kernel names the process that wrote, not the one that called
	 * listen() (this one). */
	assert_int_equal(f->writer, f->child);
	assert_anvil_exit_ok(f);
	free(dump);
}

/* A dump whose bytes come from two processes is not anvil answering. */
static void test_dump_from_two_writers_fails(void **state)
{
	struct fixture *f = *state;
	struct tally t = {0};
	uint64_t sum;
	size_t len;
	char *dump = make_dump(2000, 1, &len, &sum);

	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		signal(SIGPIPE, SIG_IGN);
		serve_two_writers(f->lfd, dump, len);
	}
	assert_int_equal(dump_at(f, f->path, 5000, &t), KG_ANVIL_FAILED);
	assert_non_null(strstr(f->err, "anvil's dump came from more than one "
	                               "process"));
	assert_int_equal(f->writer, f->child);
	free(dump);
}

static void test_empty_dump_is_ok(void **state)
{
	struct fixture *f = *state;
	struct tally t = {0};

	start_anvil(f, "\n", 1, HOLD);
	assert_int_equal(dump_at(f, f->path, 5000, &t), KG_ANVIL_OK);
	assert_int_equal(f->parser.lines, 0);
	assert_int_equal(t.lines, 0);
	assert_anvil_exit_ok(f);
}

static void test_stalled_anvil_times_out(void **state)
{
	struct fixture *f = *state;
	struct tally t = {0};
	uint64_t sum;
	size_t len;
	char *dump = make_dump(100, 0, &len, &sum);
	int64_t start, took;

	start_anvil(f, dump, len, HOLD);
	start = now_ms();
	assert_int_equal(dump_at(f, f->path, 300, &t), KG_ANVIL_FAILED);
	took = now_ms() - start;
	assert_string_equal(f->err, "anvil timed out after 300 ms");
	assert_true(took >= 299);
	assert_true(took < 800);
	assert_int_equal(t.lines, 100);
	assert_anvil_exit_ok(f);
	free(dump);
}

static void test_close_mid_dump_is_an_error(void **state)
{
	struct fixture *f = *state;
	struct tally t = {0};
	uint64_t sum;
	size_t len;
	char *dump = make_dump(50, 0, &len, &sum);

	start_anvil(f, dump, len - 7, CLOSE);
	assert_int_equal(dump_at(f, f->path, 5000, &t), KG_ANVIL_FAILED);
	assert_string_equal(f->err, "anvil closed the connection mid-dump");
	assert_int_equal(t.lines, 49);
	assert_anvil_exit_ok(f);
	free(dump);
}

/* The caller words the message: it knows the instance and whose problem
 * an unreachable anvil is. */
static void test_missing_socket_is_unreachable_with_errno(void **state)
{
	struct fixture *f = *state;
	struct tally t = {0};
	char path[160];

	snprintf(path, sizeof(path), "%s/missing", f->dir);
	assert_int_equal(dump_at(f, path, 1000, &t), KG_ANVIL_UNREACHABLE);
	assert_string_equal(f->err, strerror(ENOENT));
	assert_int_equal(f->writer, 0);
}

static void test_full_listen_queue_times_out(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct tally t = {0};
	int filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int64_t start, took;

	/* Nobody accepts: the first connection fills the queue. */
	strcpy(sa.sun_path, f->path);
	assert_int_equal(connect(filler, (struct sockaddr *)&sa, sizeof(sa)),
	                 0);
	start = now_ms();
	assert_int_equal(dump_at(f, f->path, 200, &t), KG_ANVIL_FAILED);
	took = now_ms() - start;
	assert_string_equal(f->err, "anvil timed out after 200 ms");
	assert_true(took >= 190);
	assert_true(took < 700);
	close(filler);
}

static void test_overlong_line_is_skipped_then_good_lines_parse(void **state)
{
	struct fixture *f = *state;
	struct tally t = {0};
	const char good[] = "imap/192.0.2.1/a\t10\t1\n"
	                    "pop3/b\t20\t2\n"
	                    "imap/198.51.100.7/c/d\t30\t1\n\n";
	size_t long_len = 70000, len = long_len + 1 + sizeof(good) - 1;
	char *script = malloc(len);

	assert_non_null(script);
	memcpy(script, "imap/192.0.2.9/", 15);
	memset(script + 15, 'x', long_len - 15);
	memcpy(script + long_len - 4, "\t9\t1", 4);
	script[long_len] = '\n';
	memcpy(script + long_len + 1, good, sizeof(good) - 1);
	start_anvil(f, script, len, HOLD);
	assert_int_equal(dump_at(f, f->path, 5000, &t), KG_ANVIL_OK);
	assert_int_equal(f->parser.malformed, 1);
	assert_int_equal(f->parser.first_err, KG_LINE_TOO_LONG);
	assert_int_equal(f->parser.lines, 3);
	assert_int_equal(t.pid_sum, 60);
	assert_anvil_exit_ok(f);
	free(script);
}

static void test_callback_failure_stops_the_dump(void **state)
{
	struct fixture *f = *state;
	struct tally t = {.stop_at = 5};
	uint64_t sum;
	size_t len;
	char *dump = make_dump(200, 1, &len, &sum);

	start_anvil(f, dump, len, HOLD);
	assert_int_equal(dump_at(f, f->path, 5000, &t), KG_ANVIL_STOPPED);
	assert_int_equal(t.lines, 5);
	assert_string_equal(f->err, "processing the anvil dump failed");
	assert_int_not_equal(reap_anvil(f), 3);
	free(dump);
}

static void test_overlong_socket_path_is_refused(void **state)
{
	struct fixture *f = *state;
	struct tally t = {0};
	char path[200];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(dump_at(f, path, 1000, &t), KG_ANVIL_FAILED);
	assert_string_equal(f->err, "anvil socket path too long (199 bytes)");
}

/* Protocol 2, and each Dovecot towards the other's protocol, from a fake
 * anvil that answers line by line as that Dovecot does. It serves
 * conversations one after the other, exits 6 when one it expects does
 * not come, and appends what it reads to a log, each conversation after
 * a "#conn" line. */
enum dovecot {
	DOVECOT_23,   /* protocol 1 only */
	DOVECOT_24,   /* protocol 2 only; writes its VERSION line at once */
	DOVECOT_MUTE, /* reads and hangs up on anything */
};

struct fake {
	enum dovecot kind;
	size_t conns;        /* conversations it expects */
	const char *version; /* 2.4's first line; NULL: the real one */
	/* The reply to CONNECT-DUMP (2.4: after its VERSION line). */
	const char *dump;
	size_t dump_len;
	/* 2.4: how many KICK-USER commands it answers before it hangs up,
	 * and with what; NULL: it never answers. */
	size_t kicks;
	const char *kick_reply;
};

static const char v2_server[] = "VERSION\tanvil-server\t2\t0\n";

enum step { GO_ON, HANG_UP };

static bool is(const char *line, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(line, want, len) == 0;
}

static enum step send_dump(int fd, const struct fake *fk)
{
	return send_chunked(fd, fk->dump, fk->dump_len) < 0 ? HANG_UP : GO_ON;
}

/* Line n (from 0) of a conversation with Dovecot 2.3: protocol 1's
 * handshake, then the dump; anything else is not answered. */
static enum step on_line23(int fd, const struct fake *fk, const char *line,
                           size_t len, size_t n)
{
	if (n == 0)
		return is(line, len, "VERSION\tanvil\t1\t0") ? GO_ON : HANG_UP;
	return is(line, len, "CONNECT-DUMP") ? send_dump(fd, fk) : HANG_UP;
}

/* Dovecot 2.4: protocol 2's handshake and an empty line, then
 * CONNECT-DUMP or KICK-USER commands. */
static enum step on_line24(int fd, const struct fake *fk, const char *line,
                           size_t len, size_t n, size_t *kicks)
{
	if (n == 0)
		return is(line, len, "VERSION\tanvil-client\t2\t0") ? GO_ON
		                                                    : HANG_UP;
	if (n == 1)
		return len == 0 ? GO_ON : HANG_UP;
	if (is(line, len, "CONNECT-DUMP"))
		return send_dump(fd, fk);
	if (len < 10 || memcmp(line, "KICK-USER\t", 10) != 0 ||
	    (*kicks)++ == fk->kicks)
		return HANG_UP;
	if (fk->kick_reply != NULL &&
	    write(fd, fk->kick_reply, strlen(fk->kick_reply)) < 0)
		return HANG_UP;
	return GO_ON;
}

/* One conversation: reads, logs, and answers each whole line. */
static void converse(int fd, const struct fake *fk, int log)
{
	char buf[4096];
	size_t len = 0, n = 0, kicks = 0;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	while (poll(&pfd, 1, 5000) == 1) {
		ssize_t got = read(fd, buf + len, sizeof(buf) - len);
		char *nl;

		if (got <= 0 || write(log, buf + len, (size_t)got) != got)
			return;
		len += (size_t)got;
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			size_t line_len = (size_t)(nl - buf);
			enum step st =
			        fk->kind == DOVECOT_23
			                ? on_line23(fd, fk, buf, line_len, n)
			        : fk->kind == DOVECOT_24
			                ? on_line24(fd, fk, buf, line_len, n,
			                            &kicks)
			                : HANG_UP;

			if (st == HANG_UP)
				return;
			n++;
			len -= line_len + 1;
			memmove(buf, nl + 1, len);
		}
	}
}

static void serve_fake(int lfd, const struct fake *fk, int log)
{
	const char *version = fk->version ? fk->version : v2_server;
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};

	for (size_t i = 0; i < fk->conns; i++) {
		int fd;

		if (poll(&pfd, 1, 2000) != 1)
			_exit(6);
		fd = accept(lfd, NULL, NULL);
		if (fd < 0 || write(log, "#conn\n", 6) != 6)
			_exit(3);
		if (fk->kind == DOVECOT_24 &&
		    write(fd, version, strlen(version)) < 0)
			_exit(4);
		converse(fd, fk, log);
		close(fd);
	}
	_exit(0);
}

static void start_fake(struct fixture *f, const struct fake *fk)
{
	int log = open(f->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(log >= 0);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		signal(SIGPIPE, SIG_IGN);
		serve_fake(f->lfd, fk, log);
	}
	close(log);
}

/* Once the fake anvil has served every conversation: what it read. */
static void assert_conversations(struct fixture *f, const char *want)
{
	char got[4096];
	int fd;
	ssize_t n;

	assert_anvil_exit_ok(f);
	fd = open(f->log, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, got, sizeof(got) - 1);
	close(fd);
	assert_true(n >= 0);
	got[n] = '\0';
	assert_string_equal(got, want);
}

#define ASK_V1 "#conn\nVERSION\tanvil\t1\t0\nCONNECT-DUMP\n"
#define ASK_V2 "#conn\nVERSION\tanvil-client\t2\t0\n\nCONNECT-DUMP\n"

/* Dovecot 2.4's reply after its VERSION line. */
static struct fake fake24(const struct tu24_capture *c, size_t conns)
{
	return (struct fake){.kind = DOVECOT_24,
	                     .conns = conns,
	                     .dump = c->bytes + strlen(v2_server),
	                     .dump_len = c->len - strlen(v2_server)};
}

/* A dump with a protocol pinned (or not) and one last spoken. */
static enum kg_anvil_status dump_v(struct fixture *f, uint8_t pinned,
                                   uint8_t *spoken, int timeout_ms,
                                   struct tally *t)
{
	const struct kg_anvil_target target = {.path = f->path,
	                                       .timeout_ms = timeout_ms,
	                                       .pinned = pinned,
	                                       .spoken = spoken};

	return kg_anvil_dump(&target,
	                     &(struct kg_dump_sink){count_conn, NULL, t},
	                     &f->parser, &f->writer, f->err, sizeof(f->err));
}

/* A 2.4 anvil answers protocol 1 with its VERSION line and hangs up: the
 * client asks again in protocol 2, and remembers it. */
static void test_auto_finds_protocol_2(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake24(&tu24_shared, 2);
	uint8_t spoken = KG_PROTO_AUTO;
	struct tally t = {0};

	start_fake(f, &fk);
	assert_int_equal(dump_v(f, KG_PROTO_AUTO, &spoken, 5000, &t),
	                 KG_ANVIL_OK);
	assert_int_equal(spoken, KG_PROTO_2);
	assert_int_equal(f->parser.proto, 2);
	assert_int_equal(f->parser.lines, tu24_shared.rows);
	assert_int_equal(f->parser.malformed, 0);
	assert_int_equal(t.lines, tu24_shared.rows);
	assert_int_equal(t.pid_sum, 8226 + 8 * 8214);
	assert_string_equal(f->parser.names[1], "user_tenant");
	assert_int_equal(f->writer, f->child);
	assert_conversations(f, ASK_V1 ASK_V2);
}

/* What was spoken last is asked first: one conversation. */
static void test_remembered_protocol_2_is_asked_first(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake24(&tu24_single, 1);
	uint8_t spoken = KG_PROTO_2;
	struct tally t = {0};

	start_fake(f, &fk);
	assert_int_equal(dump_v(f, KG_PROTO_AUTO, &spoken, 5000, &t),
	                 KG_ANVIL_OK);
	assert_int_equal(spoken, KG_PROTO_2);
	assert_int_equal(t.lines, tu24_single.rows);
	assert_conversations(f, ASK_V2);
}

static struct fake fake23(const char *dump, size_t len, size_t conns)
{
	return (struct fake){.kind = DOVECOT_23,
	                     .conns = conns,
	                     .dump = dump,
	                     .dump_len = len};
}

static void test_auto_finds_protocol_1(void **state)
{
	static const char dump[] = "imap/192.0.2.1/a\t10\t1\npop3/b\t20\t2\n\n";
	struct fixture *f = *state;
	struct fake fk = fake23(dump, sizeof(dump) - 1, 1);
	uint8_t spoken = KG_PROTO_AUTO;
	struct tally t = {0};

	start_fake(f, &fk);
	assert_int_equal(dump_v(f, KG_PROTO_AUTO, &spoken, 5000, &t),
	                 KG_ANVIL_OK);
	assert_int_equal(spoken, KG_PROTO_1);
	assert_int_equal(f->parser.proto, 1);
	assert_int_equal(t.pid_sum, 30);
	assert_conversations(f, ASK_V1);
}

/* Dovecot was replaced by 2.3: protocol 2 gets no byte before the hang
 * up, so the client asks again in protocol 1. */
static void test_remembered_protocol_2_falls_back_to_1(void **state)
{
	static const char dump[] = "imap/192.0.2.1/a\t10\t1\n\n";
	struct fixture *f = *state;
	struct fake fk = fake23(dump, sizeof(dump) - 1, 2);
	uint8_t spoken = KG_PROTO_2;
	struct tally t = {0};

	start_fake(f, &fk);
	assert_int_equal(dump_v(f, KG_PROTO_AUTO, &spoken, 5000, &t),
	                 KG_ANVIL_OK);
	assert_int_equal(spoken, KG_PROTO_1);
	assert_int_equal(t.lines, 1);
	assert_conversations(f, ASK_V2 ASK_V1);
}

/* A pinned protocol is the only one asked, and a failure says which. */
static void test_pinned_protocol_is_not_switched(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake23("\n", 1, 1);
	uint8_t spoken = KG_PROTO_AUTO;
	struct tally t = {0};

	start_fake(f, &fk);
	assert_int_equal(dump_v(f, KG_PROTO_2, &spoken, 5000, &t),
	                 KG_ANVIL_FAILED);
	assert_string_equal(f->err, "anvil does not speak protocol 2 (Dovecot "
	                            "2.4), which the instance's protocol "
	                            "setting names");
	assert_int_equal(spoken, KG_PROTO_AUTO);
	assert_conversations(f, ASK_V2);

	fk = fake24(&tu24_none, 1);
	start_fake(f, &fk);
	spoken = KG_PROTO_2;
	assert_int_equal(dump_v(f, KG_PROTO_1, &spoken, 5000, &t),
	                 KG_ANVIL_FAILED);
	assert_string_equal(f->err, "anvil does not speak protocol 1 (Dovecot "
	                            "2.3), which the instance's protocol "
	                            "setting names");
	assert_int_equal(spoken, KG_PROTO_2);
	assert_conversations(f, ASK_V1);
}

/* A pinned protocol that anvil speaks: the other one is never tried. */
static void test_pinned_protocol_2(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake24(&tu24_shared_foo_gone, 1);
	uint8_t spoken = KG_PROTO_1;
	struct tally t = {0};

	start_fake(f, &fk);
	assert_int_equal(dump_v(f, KG_PROTO_2, &spoken, 5000, &t), KG_ANVIL_OK);
	assert_int_equal(t.lines, tu24_shared_foo_gone.rows);
	assert_int_equal(spoken, KG_PROTO_2);
	assert_conversations(f, ASK_V2);
}

static void test_anvil_answering_neither_protocol(void **state)
{
	struct fixture *f = *state;
	struct fake fk = {.kind = DOVECOT_MUTE, .conns = 2};
	uint8_t spoken = KG_PROTO_AUTO;
	struct tally t = {0};

	start_fake(f, &fk);
	assert_int_equal(dump_v(f, KG_PROTO_AUTO, &spoken, 5000, &t),
	                 KG_ANVIL_FAILED);
	assert_string_equal(f->err,
	                    "anvil answers neither protocol 1 nor protocol 2");
	assert_int_equal(spoken, KG_PROTO_AUTO);
	assert_conversations(f, ASK_V1 ASK_V2);
}

/* A VERSION of major 3 is not protocol 2: protocol 1 sees a protocol-2
 * server's line and hands over, and protocol 2 refuses it. */
static void test_version_3_is_refused(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake24(&tu24_shared, 2);
	uint8_t spoken = KG_PROTO_AUTO;
	struct tally t = {0};

	fk.version = "VERSION\tanvil-server\t3\t0\n";
	start_fake(f, &fk);
	assert_int_equal(dump_v(f, KG_PROTO_AUTO, &spoken, 5000, &t),
	                 KG_ANVIL_FAILED);
	assert_string_equal(f->err, "anvil's first line is not protocol 2 "
	                            "(Dovecot 2.4)'s VERSION line");
	assert_int_equal(t.lines, 0);
	assert_int_equal(spoken, KG_PROTO_AUTO);
	assert_conversations(f, ASK_V1 ASK_V2);
}

/* Both conversations end within the one timeout. */
static void test_timeout_covers_both_conversations(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake24(&tu24_shared, 2);
	uint8_t spoken = KG_PROTO_AUTO;
	struct tally t = {0};
	int64_t start, took;

	fk.dump_len -= 1; /* no empty line: the dump never ends */
	start_fake(f, &fk);
	start = now_ms();
	assert_int_equal(dump_v(f, KG_PROTO_AUTO, &spoken, 300, &t),
	                 KG_ANVIL_FAILED);
	took = now_ms() - start;
	assert_string_equal(f->err, "anvil timed out after 300 ms");
	assert_true(took >= 299 && took < 800);
	assert_int_equal(t.lines, tu24_shared.rows);
	assert_int_equal(spoken, KG_PROTO_AUTO);
	assert_conversations(f, ASK_V1 ASK_V2);
}

/* A header of field names too long to read is not a bad VERSION line:
 * the error says which line it was. */
static void test_overlong_header_is_named(void **state)
{
	struct fixture *f = *state;
	struct fake fk = {.kind = DOVECOT_24, .conns = 1};
	uint8_t spoken = KG_PROTO_2;
	struct tally t = {0};
	size_t len = KG_ANVIL_LINE_MAX + 3;
	char *dump = malloc(len + 1);

	assert_non_null(dump);
	memset(dump, 'h', len - 2);
	memcpy(dump + len - 2, "\n\n", 3);
	fk.dump = dump;
	fk.dump_len = len;
	start_fake(f, &fk);
	assert_int_equal(dump_v(f, KG_PROTO_AUTO, &spoken, 5000, &t),
	                 KG_ANVIL_FAILED);
	assert_string_equal(f->err, "anvil's header of field names is longer "
	                            "than 65536 bytes");
	assert_conversations(f, ASK_V2);
	free(dump);
}

/* Kicks. */
static const uint8_t guid_a[16] = {0x4d, 0x87, 0xd6, 0x36, 0x59, 0x7e,
                                   0x11, 0x6b, 0x16, 0x20, 0x00, 0x00,
                                   0x83, 0xec, 0xc3, 0x75};
static const uint8_t guid_b[16] = {0xff, [15] = 0x01};

static const struct kg_anvil_kick two_kicks[] = {
        {"foo", 3, guid_a},
        {"a\tb\001c", 5, guid_b},
};

#define HELLO    "#conn\nVERSION\tanvil-client\t2\t0\n\n"
#define KICK_FOO "KICK-USER\tfoo\t4d87d636597e116b1620000083ecc375\n"
#define KICK_AB  "KICK-USER\ta\001tb\0011c\tff000000000000000000000000000001\n"

static enum kg_anvil_status kick_v(struct fixture *f, pid_t anvil,
                                   int timeout_ms, size_t *answered)
{
	uint8_t spoken = KG_PROTO_2;
	const struct kg_anvil_target target = {.path = f->path,
	                                       .timeout_ms = timeout_ms,
	                                       .pinned = KG_PROTO_2,
	                                       .spoken = &spoken};

	*answered = 99;
	return kg_anvil_kick(&target, anvil, two_kicks, 2, answered, f->err,
	                     sizeof(f->err));
}

static struct fake fake_kicks(size_t kicks, const char *reply)
{
	return (struct fake){.kind = DOVECOT_24,
	                     .conns = 1,
	                     .kicks = kicks,
	                     .kick_reply = reply};
}

/* The handshake, then one KICK-USER per unit with the user escaped and
 * the GUID, each answered before the next is sent. */
static void test_kick_one_command_per_unit(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake_kicks(2, "0\n");
	size_t answered;

	start_fake(f, &fk);
	assert_int_equal(kick_v(f, f->child, 5000, &answered), KG_ANVIL_OK);
	assert_int_equal(answered, 2);
	assert_conversations(f, HELLO KICK_FOO KICK_AB);
}

/* Only the process that wrote the dump may answer a kick. */
static void test_kick_answered_by_another_pid_fails(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake_kicks(2, "1\n");
	size_t answered;
	char want[160];

	start_fake(f, &fk);
	assert_int_equal(kick_v(f, getpid(), 5000, &answered), KG_ANVIL_FAILED);
	assert_int_equal(answered, 0);
	snprintf(want, sizeof(want),
	         "anvil answered from pid %d, not from pid %d, which wrote "
	         "the dump",
	         (int)f->child, (int)getpid());
	assert_string_equal(f->err, want);
}

/* Anvil hangs up after the first answer: one was answered. */
static void test_kick_hang_up_midway(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake_kicks(1, "0\n");
	size_t answered;

	start_fake(f, &fk);
	assert_int_equal(kick_v(f, f->child, 5000, &answered), KG_ANVIL_FAILED);
	assert_int_equal(answered, 1);
	assert_string_equal(f->err, "anvil closed the connection");
	assert_conversations(f, HELLO KICK_FOO KICK_AB);
}

/* A 2.3 anvil hangs up on protocol 2's handshake; one whose VERSION is
 * not protocol 2's is not asked anything. */
static void test_kick_needs_protocol_2(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake23("\n", 1, 1);
	size_t answered;

	start_fake(f, &fk);
	assert_int_equal(kick_v(f, f->child, 5000, &answered), KG_ANVIL_FAILED);
	assert_int_equal(answered, 0);
	assert_string_equal(f->err, "anvil closed the connection");
	assert_conversations(f, HELLO);

	fk = fake_kicks(2, "0\n");
	fk.version = "VERSION\tanvil-server\t3\t0\n";
	start_fake(f, &fk);
	assert_int_equal(kick_v(f, f->child, 5000, &answered), KG_ANVIL_FAILED);
	assert_int_equal(answered, 0);
	assert_string_equal(f->err,
	                    "anvil's first line is not protocol 2's VERSION");
	assert_conversations(f, HELLO);
}

static void test_kick_unanswered_times_out(void **state)
{
	struct fixture *f = *state;
	struct fake fk = fake_kicks(2, NULL);
	size_t answered;
	int64_t start = now_ms(), took;

	start_fake(f, &fk);
	assert_int_equal(kick_v(f, f->child, 300, &answered), KG_ANVIL_FAILED);
	took = now_ms() - start;
	assert_int_equal(answered, 0);
	assert_string_equal(f->err, "anvil timed out after 300 ms");
	assert_true(took >= 299 && took < 800);
}

/* A reply line is short: one that does not end within the reader's
 * buffer is refused. */
static void test_kick_overlong_reply(void **state)
{
	struct fixture *f = *state;
	char reply[301];
	struct fake fk = fake_kicks(2, reply);
	size_t answered;

	memset(reply, '7', 299);
	reply[299] = '\n';
	reply[300] = '\0';
	start_fake(f, &fk);
	assert_int_equal(kick_v(f, f->child, 5000, &answered), KG_ANVIL_FAILED);
	assert_int_equal(answered, 0);
	assert_string_equal(f->err, "anvil's reply line is too long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_full_dump_in_small_chunks_is_parsed, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_dump_from_two_writers_fails, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_empty_dump_is_ok, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_stalled_anvil_times_out,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_close_mid_dump_is_an_error,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_missing_socket_is_unreachable_with_errno, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_full_listen_queue_times_out, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_overlong_line_is_skipped_then_good_lines_parse,
	                setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_callback_failure_stops_the_dump, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_overlong_socket_path_is_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_auto_finds_protocol_2,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_remembered_protocol_2_is_asked_first, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_auto_finds_protocol_1,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_remembered_protocol_2_falls_back_to_1, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_pinned_protocol_is_not_switched, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pinned_protocol_2, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_anvil_answering_neither_protocol, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_version_3_is_refused,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_timeout_covers_both_conversations, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_overlong_header_is_named,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_kick_one_command_per_unit,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_kick_answered_by_another_pid_fails, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_kick_hang_up_midway, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_kick_needs_protocol_2,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_kick_unanswered_times_out,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_kick_overlong_reply, setup,
	                                        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
