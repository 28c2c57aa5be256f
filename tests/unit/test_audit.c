/* SPDX-License-Identifier: MIT */
/* The audit line: its fields and escaping, the syslog datagram
 * (authpriv.notice, RFC 3164 header) on a socket of the test's own, and
 * the fall back to standard error when no syslog socket takes the line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker/audit.h"
#include "tests/unit/testutil.h"

#define BUF_SIZE 16384
/* "<85>Mmm dd hh:mm:ss " */
#define STAMP_END 20
/* "time=YYYY-MM-DDTHH:MM:SSZ " */
#define TIME_FIELD_LEN 26
#define STDERR_PREFIX  "kickgated: audit: "
/* More lines than a socket queue that is never read holds. */
#define STALL_LINES_MAX 4096

struct fixture {
	char dir[32];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int rx; /* the stand-in syslog socket */
};

static int bind_receiver(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/kgaudit.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/log", f->dir);
	f->rx = bind_receiver(f->path);
	kg_audit_open(f->path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->rx >= 0)
		close(f->rx);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The next datagram, NUL-terminated; "" when none is waiting. */
static void receive(int rx, char *buf)
{
	ssize_t n = recv(rx, buf, BUF_SIZE - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
}

/* A uid that no account of this host has. */
static uid_t unknown_uid(void)
{
	uid_t uid = 3999999000u;

	for (int i = 0; i < 1000 && getpwuid(uid) != NULL; i++)
		uid++;
	assert_null(getpwuid(uid));
	return uid;
}

static struct kg_audit_rec denied_rec(const struct kg_request *req)
{
	return (struct kg_audit_rec){.uid = unknown_uid(),
	                             .pid = 42,
	                             .req = req,
	                             .outcome = "denied",
	                             .status = 77};
}

/* The line's fields after time=, from a syslog datagram. */
static const char *fields_of(const char *datagram)
{
	static const char mark[] = ": audit: ";
	const char *audit = strstr(datagram, ": audit: time=");

	assert_non_null(audit);
	audit += sizeof(mark) - 1;
	assert_true(strlen(audit) > TIME_FIELD_LEN);
	return audit + TIME_FIELD_LEN;
}

static void test_datagram_is_authpriv_notice_with_header(void **state)
{
	struct fixture *f = *state;
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_audit_rec rec = denied_rec(&req);
	struct tu_capture cap = tu_capture_stderr();
	char buf[BUF_SIZE], err[BUF_SIZE], tag[64];
	const char *t;
	int n;

	kg_audit_write(&rec);
	tu_captured(cap, err, BUF_SIZE);
	receive(f->rx, buf);
	assert_string_equal(err, "");
	/* <PRI>: LOG_AUTHPRIV (10 << 3) | LOG_NOTICE (5). */
	assert_memory_equal(buf, "<85>", 4);
	/* "Mmm dd hh:mm:ss " as syslog(3) writes it. */
	assert_true(buf[7] == ' ' && buf[10] == ' ' && buf[13] == ':' &&
	            buf[16] == ':' && buf[19] == ' ');
	n = snprintf(tag, sizeof(tag),
	             "kickgated[%d]: audit: time=", (int)getpid());
	assert_memory_equal(buf + STAMP_END, tag, (size_t)n);
	t = buf + STAMP_END + n;
	assert_true(t[4] == '-' && t[7] == '-' && t[10] == 'T' &&
	            t[19] == 'Z' && t[20] == ' ');
	assert_null(strchr(buf, '\n'));
}

struct field_case {
	const char *what;
	struct kg_request req;
	bool has_req;
	const char *rule;
	const char *instance;
	const char *outcome;
	uint8_t status;
	uint32_t conns;
	uint32_t pids[3];
	size_t n_pids;
	const char *users[3];
	size_t n_users;
	const char *want; /* after "user=- pid=42 " */
};

static void check_fields(int rx, const struct field_case *c)
{
	struct kg_str users[3];
	struct kg_audit_rec rec = denied_rec(c->has_req ? &c->req : NULL);
	char buf[BUF_SIZE], want[BUF_SIZE];

	for (size_t i = 0; i < c->n_users; i++)
		users[i] = (struct kg_str){c->users[i], strlen(c->users[i])};
	rec.rule = c->rule;
	rec.instance = c->instance;
	rec.outcome = c->outcome;
	rec.status = c->status;
	rec.conns = c->conns;
	rec.pids = c->pids;
	rec.n_pids = c->n_pids;
	rec.users = users;
	rec.n_users = c->n_users;
	kg_audit_write(&rec);
	receive(rx, buf);
	snprintf(want, sizeof(want), "uid=%u user=- pid=42 %s",
	         (unsigned)rec.uid, c->want);
	if (strcmp(fields_of(buf), want) != 0)
		fail_msg("%s:\n got  %s\n want %s", c->what, fields_of(buf),
		         want);
}

static struct kg_request with_path(struct kg_request r, const char *path)
{
	r.path_len = (uint8_t)strlen(path);
	memcpy(r.path, path, r.path_len);
	return r;
}

static void test_fields_and_escaping(void **state)
{
	struct fixture *f = *state;
	const struct field_case cases[] = {
	        {"dry run of a kick with every request field",
	         with_path(tu_request(KG_OP_KICK, "a*@x", "192.0.2.0/24",
	                              KG_REQ_FORCE | KG_REQ_DRY_RUN),
	                   "/run/a b,c/anvil"),
	         true,
	         "helpdesk-a",
	         "tenant-b",
	         "dry-run",
	         0,
	         3,
	         {7, 9},
	         2,
	         {"a b", "c,d", "e\"\\"},
	         3,
	         "rule=helpdesk-a instance=tenant-b op=kick glob=\"a*@x\" "
	         "net=192.0.2.0/24 anvil=/run/a\\x20b\\x2cc/anvil force=yes "
	         "dry_run=yes outcome=dry-run status=0 conns=3 npids=2 "
	         "nusers=3 pids=7,9 users=a\\x20b,c\\x2cd,e\\x22\\x5c"},
	        {"listing one row per session, no rule matched",
	         tu_request(KG_OP_WHO, NULL, "2001:db8::/32", KG_REQ_SEPARATE),
	         true,
	         NULL,
	         "default",
	         "denied",
	         77,
	         0,
	         {0},
	         0,
	         {NULL},
	         0,
	         "rule=- instance=default op=who net=2001:db8::/32 "
	         "separate=yes outcome=denied status=77 conns=0 npids=0 "
	         "nusers=0 pids= users="},
	        {"a request that did not decode",
	         {0},
	         false,
	         NULL,
	         NULL,
	         "malformed",
	         64,
	         0,
	         {0},
	         0,
	         {NULL},
	         0,
	         "rule=- instance=- outcome=malformed status=64 conns=0 "
	         "npids=0 nusers=0 pids= users="},
	        {"control bytes in names cannot start a line or a field",
	         tu_request(KG_OP_KICK, "x\ty", NULL, 0),
	         true,
	         "r",
	         "default",
	         "kicked",
	         0,
	         1,
	         {5},
	         1,
	         {"x\ny\x01 z"},
	         1,
	         "rule=r instance=default op=kick glob=\"x\\x09y\" "
	         "outcome=kicked status=0 conns=1 npids=1 nusers=1 pids=5 "
	         "users=x\\x0ay\\x01\\x20z"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		check_fields(f->rx, &cases[i]);
}

/* The administrator learns how many out-of-scope connections blocked a
 * kick (the caller does not); lines of other outcomes have no such field.
 * An instance named with -a is the request's anvil, as a path would be. */
static void test_blocked_kick_counts_outside_for_the_admin(void **state)
{
	struct fixture *f = *state;
	struct kg_request req = tu_request(KG_OP_KICK, "a*", NULL, 0);
	struct kg_audit_rec rec;
	char buf[BUF_SIZE];

	req.instance_len = 8;
	memcpy(req.instance, "tenant-b", 8);
	rec = denied_rec(&req);
	rec.outcome = "blocked-by-scope";
	rec.outside = 3;
	kg_audit_write(&rec);
	receive(f->rx, buf);
	assert_non_null(strstr(buf,
	                       " op=kick glob=\"a*\" anvil=tenant-b "
	                       "outcome=blocked-by-scope status=77 conns=0 "
	                       "npids=0 nusers=0 outside=3 pids= users="));
	rec.outside = 0;
	kg_audit_write(&rec);
	receive(f->rx, buf);
	assert_null(strstr(buf, "outside="));
}

static void test_instances_request_is_named(void **state)
{
	struct fixture *f = *state;
	struct kg_request req = tu_request(KG_OP_INSTANCES, NULL, NULL, 0);
	struct kg_audit_rec rec = denied_rec(&req);
	char buf[BUF_SIZE];

	kg_audit_write(&rec);
	receive(f->rx, buf);
	assert_non_null(strstr(buf, " op=instances outcome="));
}

/* Names come from the table read at open: uid 0 is named as this host
 * names it. */
static void test_caller_named_from_passwd(void **state)
{
	struct fixture *f = *state;
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_audit_rec rec = denied_rec(&req);
	struct passwd *root = getpwuid(0);
	char buf[BUF_SIZE], want[256];

	assert_non_null(root);
	rec.uid = 0;
	kg_audit_write(&rec);
	receive(f->rx, buf);
	snprintf(want, sizeof(want), "uid=0 user=%s pid=42 ", root->pw_name);
	assert_memory_equal(fields_of(buf), want, strlen(want));
}

static void test_long_lists_are_cut(void **state)
{
	struct fixture *f = *state;
	static struct kg_str users[3000];
	static uint32_t pids[3000];
	struct kg_request req = tu_request(KG_OP_KICK, "*", NULL, 0);
	struct kg_audit_rec rec = denied_rec(&req);
	char buf[BUF_SIZE];
	size_t len;

	for (size_t i = 0; i < 3000; i++) {
		users[i] = (struct kg_str){"user@tenant", 11};
		pids[i] = 100000 + (uint32_t)i;
	}
	rec.outcome = "kicked";
	rec.pids = pids;
	rec.n_pids = 3000;
	rec.users = users;
	rec.n_users = 3000;
	kg_audit_write(&rec);
	receive(f->rx, buf);
	len = strlen(buf);
	assert_true(len < 4096 + 64);
	assert_string_equal(buf + len - 4, " ...");
	assert_non_null(strstr(buf, " npids=3000 nusers=3000 pids=100000,"));
}

static void write_captured(const struct kg_audit_rec *rec, char *err)
{
	struct tu_capture cap = tu_capture_stderr();

	kg_audit_write(rec);
	tu_captured(cap, err, BUF_SIZE);
}

static void check_stderr_line(const char *err)
{
	size_t len = strlen(err);

	assert_memory_equal(err, STDERR_PREFIX, strlen(STDERR_PREFIX));
	assert_true(len > 0 && err[len - 1] == '\n');
	assert_ptr_equal(strchr(err, '\n'), err + len - 1);
	assert_non_null(strstr(err, " outcome=denied status=77 "));
}

/* Opens the audit with syslog_path and checks that a line reaches
 * stderr and nothing reaches the test's syslog socket. */
static void check_goes_to_stderr(struct fixture *f, const char *syslog_path)
{
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_audit_rec rec = denied_rec(&req);
	char err[BUF_SIZE], buf[BUF_SIZE];

	kg_audit_open(syslog_path);
	write_captured(&rec, err);
	check_stderr_line(err);
	receive(f->rx, buf);
	assert_string_equal(buf, "");
}

static void test_no_socket_falls_back_to_stderr(void **state)
{
	check_goes_to_stderr(*state, "/nonexistent/kickgate-test/log");
}

static void test_without_syslog_lines_go_to_stderr(void **state)
{
	check_goes_to_stderr(*state, NULL);
}

/* Writes rec, which must reach syslog, then stops the syslog socket. */
static void write_then_stop_syslog(struct fixture *f,
                                   const struct kg_audit_rec *rec)
{
	char buf[BUF_SIZE];

	kg_audit_write(rec);
	receive(f->rx, buf);
	assert_memory_equal(buf, "<85>", 4);
	close(f->rx);
	f->rx = -1;
}

/* A syslog daemon restarting binds a new socket at the same path: the
 * next line reaches it through a new connection. */
static void test_reconnects_after_syslog_restart(void **state)
{
	struct fixture *f = *state;
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_audit_rec rec = denied_rec(&req);
	char err[BUF_SIZE], buf[BUF_SIZE];

	write_then_stop_syslog(f, &rec);
	unlink(f->path);
	f->rx = bind_receiver(f->path);
	write_captured(&rec, err);
	assert_string_equal(err, "");
	receive(f->rx, buf);
	assert_memory_equal(buf, "<85>", 4);
}

static void test_syslog_gone_falls_back_to_stderr(void **state)
{
	struct fixture *f = *state;
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_audit_rec rec = denied_rec(&req);
	char err[BUF_SIZE];

	write_then_stop_syslog(f, &rec);
	write_captured(&rec, err);
	check_stderr_line(err);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A syslog daemon that stops reading: once its queue is full, a line
 * waits one send timeout (not two) and then goes to stderr. */
static void test_stalled_syslog_falls_back_after_timeout(void **state)
{
	struct kg_request req = tu_request(KG_OP_WHO, NULL, NULL, 0);
	struct kg_audit_rec rec = denied_rec(&req);
	char err[BUF_SIZE];

	(void)state;
	for (int i = 0; i < STALL_LINES_MAX; i++) {
		double start = now_s(), took;

		write_captured(&rec, err);
		took = now_s() - start;
		if (err[0] == '\0')
			continue;
		check_stderr_line(err);
		if (took < 0.9 || took > 1.9)
			fail_msg("the stalled line took %.2f s", took);
		return;
	}
	fail_msg("%d lines went to a socket nobody reads", STALL_LINES_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_datagram_is_authpriv_notice_with_header, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_blocked_kick_counts_outside_for_the_admin, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_instances_request_is_named,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_fields_and_escaping, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_caller_named_from_passwd,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_long_lists_are_cut, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_no_socket_falls_back_to_stderr, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_without_syslog_lines_go_to_stderr, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_reconnects_after_syslog_restart, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_syslog_gone_falls_back_to_stderr, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_stalled_syslog_falls_back_after_timeout, setup,
	                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
