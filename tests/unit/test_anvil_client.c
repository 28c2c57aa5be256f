/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
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

static const char request[] = "VERSION\tanvil\t1\t0\nCONNECT-DUMP\n";

/* What the fake anvil does once its script is sent. */
enum after_script {
	HOLD,  /* keep the connection open until the client closes it */
	CLOSE, /* close at once */
};

struct fixture {
	char dir[64];
	char path[128];
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
