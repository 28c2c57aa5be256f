/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/verify.h"
#include "proto/wire.h"

static const char *const services[] = {"imap", "pop3"};

static struct kg_verify_cfg cfg_for(pid_t master, bool dry_run)
{
	struct kg_verify_cfg c = {.master = master,
	                          .services = services,
	                          .n_services = 2,
	                          .dry_run = dry_run};
	return c;
}

/* ---- /proc/PID/stat parsing ---- */

struct stat_case {
	const char *line;
	int ok;
	pid_t pid;
	const char *comm;
	char state;
	pid_t ppid;
};

static const struct stat_case stat_cases[] = {
        {"123 (imap) S 1 123 123 0 -1\n", 1, 123, "imap", 'S', 1},
        {"123 (a) (b) R 77 5 6\n", 1, 123, "a) (b", 'R', 77},
        {"123 (x)) ) Z 9 1\n", 1, 123, "x)) ", 'Z', 9},
        {"123 () S 1 2\n", 1, 123, "", 'S', 1},
        {"1 (init) S 0 1\n", 1, 1, "init", 'S', 0},
        {"123 (sp ace) S 2147483647 2\n", 1, 123, "sp ace", 'S', 2147483647},
        {"123 (x) S 1 2", 0, 0, NULL, 0, 0},
        {"123 (x)\n", 0, 0, NULL, 0, 0},
        {"123 (x) S 1\n", 0, 0, NULL, 0, 0},
        {"abc (x) S 1 2\n", 0, 0, NULL, 0, 0},
        {"0 (x) S 1 2\n", 0, 0, NULL, 0, 0},
        {"0123 (x) S 1 2\n", 0, 0, NULL, 0, 0},
        {"123  (x) S 1 2\n", 0, 0, NULL, 0, 0},
        {"(x) S 1 2\n", 0, 0, NULL, 0, 0},
        {"123 x) S 1 2\n", 0, 0, NULL, 0, 0},
        {"123 (x S 1 2\n", 0, 0, NULL, 0, 0},
        {"123 (x)S 1 2\n", 0, 0, NULL, 0, 0},
        {"123 (x)  1 2\n", 0, 0, NULL, 0, 0},
        {"123 (x) SS 1 2\n", 0, 0, NULL, 0, 0},
        {"123 (x) S -1 2\n", 0, 0, NULL, 0, 0},
        {"123 (x) S 2147483648 2\n", 0, 0, NULL, 0, 0},
        {"123 (x) S 99999999999 2\n", 0, 0, NULL, 0, 0},
        {"123 (x) S 1x 2\n", 0, 0, NULL, 0, 0},
};

static void test_stat_lines_parse_as_the_table_says(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(stat_cases) / sizeof(stat_cases[0]);
	     i++) {
		const struct stat_case *c = &stat_cases[i];
		struct kg_proc_stat st;
		int rc = kg_proc_stat_parse(c->line, strlen(c->line), &st);

		if (!c->ok) {
			if (rc != -1)
				fail_msg("accepted: %s", c->line);
			continue;
		}
		if (rc != 0)
			fail_msg("rejected: %s", c->line);
		assert_int_equal(st.pid, c->pid);
		assert_string_equal(st.comm, c->comm);
		assert_int_equal(st.state, c->state);
		assert_int_equal(st.ppid, c->ppid);
	}
}

static void test_stat_comm_length_is_bounded(void **state)
{
	char line[200];
	struct kg_proc_stat st;
	int n;

	(void)state;
	n = snprintf(line, sizeof(line), "5 (%.*s) S 1 2\n", KG_COMM_MAX,
	             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(kg_proc_stat_parse(line, (size_t)n, &st), 0);
	assert_int_equal(strlen(st.comm), KG_COMM_MAX);
	n = snprintf(line, sizeof(line), "5 (%.*s) S 1 2\n", KG_COMM_MAX + 1,
	             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(kg_proc_stat_parse(line, (size_t)n, &st), -1);
}

static void test_stat_comm_with_nul_is_rejected(void **state)
{
	static const char line[] = "5 (a\0b) S 1 2\n";
	struct kg_proc_stat st;

	(void)state;
	assert_int_equal(kg_proc_stat_parse(line, sizeof(line) - 1, &st), -1);
}

/* ---- processes to verify ---- */

static void wait_byte(int fd)
{
	char c;

	assert_int_equal(read(fd, &c, 1), 1);
}

/* A child that waits for a signal must not outlive the test process, as
 * it would if that crashed; parent is who forked it. */
static void die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 ||
	    getppid() != parent)
		_exit(3);
}

/* A child that names itself, reports ready, and waits for a signal. */
static pid_t spawn_named(const char *name)
{
	pid_t parent = getpid();
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		die_with_parent(parent);
		prctl(PR_SET_NAME, name, 0, 0, 0);
		if (write(p[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(p[1]);
	wait_byte(p[0]);
	close(p[0]);
	return pid;
}

static bool still_running(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

static void end_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void assert_died_of_sigterm(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGTERM);
}

static void test_mail_process_of_master_is_signalled(void **state)
{
	struct kg_verify_cfg cfg = cfg_for(getpid(), false);
	pid_t pid = spawn_named("imap");

	(void)state;
	assert_int_equal(kg_verify_signal(&cfg, pid), 0);
	assert_died_of_sigterm(pid);
}

static void test_other_service_in_list_is_signalled(void **state)
{
	struct kg_verify_cfg cfg = cfg_for(getpid(), false);
	pid_t pid = spawn_named("pop3");

	(void)state;
	assert_int_equal(kg_verify_signal(&cfg, pid), 0);
	assert_died_of_sigterm(pid);
}

static void test_dry_run_signals_nothing(void **state)
{
	struct kg_verify_cfg cfg = cfg_for(getpid(), true);
	pid_t pid = spawn_named("imap");

	(void)state;
	assert_int_equal(kg_verify_signal(&cfg, pid), 0);
	assert_true(still_running(pid));
	end_child(pid);
}

static void check_refused_alive(const char *name, pid_t master)
{
	struct kg_verify_cfg cfg = cfg_for(master, false);
	pid_t pid = spawn_named(name);

	assert_int_equal(kg_verify_signal(&cfg, pid), KG_REFUSE_NOT_DOVECOT);
	assert_true(still_running(pid));
	end_child(pid);
}

static void test_foreign_name_is_refused(void **state)
{
	(void)state;
	check_refused_alive("sleeper", getpid());
}

/* Only exact service names count: not login processes, not prefixes. */
static void test_near_service_names_are_refused(void **state)
{
	(void)state;
	check_refused_alive("imap-login", getpid());
	check_refused_alive("ima", getpid());
	check_refused_alive("IMAP", getpid());
	check_refused_alive("imap ", getpid());
}

static void test_wrong_master_is_refused(void **state)
{
	(void)state;
	check_refused_alive("imap", getppid());
}

/* "imap) (" must be read as that whole name, not as "imap". */
static void test_comm_with_parens_is_read_whole(void **state)
{
	static const char *const odd[] = {"imap) (", "pop3"};
	struct kg_verify_cfg cfg = cfg_for(getpid(), false);
	pid_t pid;

	(void)state;
	check_refused_alive("imap) (", getpid());
	cfg.services = odd;
	pid = spawn_named("imap) (");
	assert_int_equal(kg_verify_signal(&cfg, pid), 0);
	assert_died_of_sigterm(pid);
}

/* The middle child forks a grandchild named "imap" and sends its pid. */
static void test_grandchild_is_refused(void **state)
{
	struct kg_verify_cfg cfg = cfg_for(getpid(), false);
	pid_t parent = getpid();
	int p[2];
	pid_t mid, grand;

	(void)state;
	assert_int_equal(pipe(p), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		die_with_parent(parent);
		parent = getpid();
		if (fork() == 0) {
			pid_t self = getpid();

			die_with_parent(parent);
			prctl(PR_SET_NAME, "imap", 0, 0, 0);
			if (write(p[1], &self, sizeof(self)) != sizeof(self))
				_exit(2);
		}
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], &grand, sizeof(grand)), sizeof(grand));
	close(p[0]);
	assert_int_equal(kg_verify_signal(&cfg, grand), KG_REFUSE_NOT_DOVECOT);
	assert_int_equal(kill(grand, 0), 0);
	/* This process is a subreaper (see main): the grandchild comes back
	 * to it once the middle child is gone. */
	end_child(mid);
	end_child(grand);
}

static void test_reaped_child_is_gone(void **state)
{
	struct kg_verify_cfg cfg = cfg_for(getpid(), false);
	pid_t pid = fork();

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(kg_verify_signal(&cfg, pid), KG_REFUSE_GONE);
}

static void test_zombie_is_gone(void **state)
{
	struct kg_verify_cfg cfg = cfg_for(getpid(), false);
	siginfo_t si;
	pid_t pid = fork();

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_NAME, "imap", 0, 0, 0);
		_exit(0);
	}
	/* Wait for the exit but leave the zombie in place. */
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(kg_verify_signal(&cfg, pid), KG_REFUSE_GONE);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_nonpositive_pids_are_refused(void **state)
{
	struct kg_verify_cfg cfg = cfg_for(getpid(), false);

	(void)state;
	assert_int_equal(kg_verify_signal(&cfg, 0), KG_REFUSE_NOT_DOVECOT);
	assert_int_equal(kg_verify_signal(&cfg, -1), KG_REFUSE_NOT_DOVECOT);
}

static void test_unset_master_refuses_everything(void **state)
{
	(void)state;
	check_refused_alive("imap", 0);
}

struct thread_arg {
	int ready[2];
	int quit[2];
};

static void *named_thread(void *p)
{
	struct thread_arg *a = p;
	pid_t tid = gettid();
	char c;

	prctl(PR_SET_NAME, "imap", 0, 0, 0);
	if (write(a->ready[1], &tid, sizeof(tid)) != sizeof(tid) ||
	    read(a->quit[0], &c, 1) != 1)
		return NULL;
	return p;
}

/* A thread id is not a process, whatever its name and parent: the
 * thread's stat shows "imap" and this process's parent, the master here. */
static void test_thread_id_is_refused(void **state)
{
	struct kg_verify_cfg cfg = cfg_for(getppid(), false);
	struct thread_arg a;
	pthread_t t;
	pid_t tid;
	void *ret;

	(void)state;
	assert_int_equal(pipe(a.ready), 0);
	assert_int_equal(pipe(a.quit), 0);
	assert_int_equal(pthread_create(&t, NULL, named_thread, &a), 0);
	assert_int_equal(read(a.ready[0], &tid, sizeof(tid)), sizeof(tid));
	assert_int_equal(kg_verify_signal(&cfg, tid), KG_REFUSE_NOT_DOVECOT);
	assert_int_equal(write(a.quit[1], "q", 1), 1);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_ptr_equal(ret, &a);
	close(a.ready[0]);
	close(a.ready[1]);
	close(a.quit[0]);
	close(a.quit[1]);
}

/* ---- the master: anvil's parent ---- */

/* Runs fn with this test process named as a Dovecot master would be,
 * then restores its name. */
static void as_process_named(const char *name, void (*fn)(void))
{
	char old[17] = "";

	assert_int_equal(prctl(PR_GET_NAME, old, 0, 0, 0), 0);
	assert_int_equal(prctl(PR_SET_NAME, name, 0, 0, 0), 0);
	fn();
	assert_int_equal(prctl(PR_SET_NAME, old, 0, 0, 0), 0);
}

static void expect_master(pid_t anvil, int rc, pid_t master, const char *err)
{
	char got[256] = "";
	pid_t m = -1;

	assert_int_equal(kg_master_find(anvil, &m, got, sizeof(got)), rc);
	assert_int_equal(m, master);
	assert_string_equal(got, err);
}

static void anvil_child_finds_this_master(void)
{
	pid_t anvil = spawn_named("anvil");

	expect_master(anvil, 0, getpid(), "");
	end_child(anvil);
}

/* Detached or in the foreground, the master is anvil's parent. */
static void test_anvil_parent_named_dovecot_is_the_master(void **state)
{
	(void)state;
	as_process_named("dovecot", anvil_child_finds_this_master);
}

static void anvil_of_other_parent_is_refused(void)
{
	pid_t anvil = spawn_named("anvil");
	char want[256];

	snprintf(want, sizeof(want),
	         "the parent of anvil (pid %d) is not a running Dovecot "
	         "master",
	         (int)getpid());
	expect_master(anvil, -1, 0, want);
	end_child(anvil);
}

/* A process named anvil whose parent is not named dovecot. */
static void test_parent_not_dovecot_is_refused(void **state)
{
	(void)state;
	as_process_named("python3", anvil_of_other_parent_is_refused);
}

static void expect_not_anvil(pid_t pid)
{
	char want[256];

	snprintf(want, sizeof(want),
	         "the process that answered on the anvil socket (pid %d) is "
	         "not a running Dovecot anvil",
	         (int)pid);
	expect_master(pid, -1, 0, want);
}

static void other_writers_are_refused(void)
{
	pid_t fake = spawn_named("python3");
	pid_t gone = spawn_named("anvil");
	pid_t zombie = spawn_named("anvil");
	siginfo_t si;

	end_child(gone);
	kill(zombie, SIGKILL);
	/* Wait for the exit but leave the zombie in place. */
	assert_int_equal(waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT),
	                 0);
	expect_not_anvil(fake);
	expect_not_anvil(gone);
	expect_not_anvil(zombie);
	expect_not_anvil(getpid());
	end_child(fake);
	waitpid(zombie, NULL, 0);
}

/* Whatever the parent's name: the writer itself must be a live anvil. */
static void test_other_writers_are_refused(void **state)
{
	(void)state;
	as_process_named("dovecot", other_writers_are_refused);
	expect_master(0, -1, 0, "anvil's answer carried no sender");
	expect_master(-1, -1, 0, "anvil's answer carried no sender");
}

/* The pids of this process's children, each thread's (an orphan adopted
 * through the subreaper may be listed under any), up to cap. */
static size_t list_children(pid_t *pids, size_t cap)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL && n < cap) {
		char path[300], buf[4096];
		FILE *f;
		size_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children",
		         e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		for (char *tok = strtok(buf, " \n"); tok != NULL && n < cap;
		     tok = strtok(NULL, " \n"))
			pids[n++] = (pid_t)atoi(tok);
	}
	closedir(d);
	return n;
}

/* A failed assertion leaves its test half done, its children waiting in
 * pause(): they would hold the test's output open until meson's timeout.
 * An unreaped child's pid cannot have been reused, so killing each one
 * still listed hits nothing else. Rounds: a killed middle child's orphan
 * shows up in the next. */
static int end_children(void **state)
{
	enum { ROUNDS = 4, MAX_CHILDREN = 64 };
	pid_t pids[MAX_CHILDREN];
	size_t killed = 0;

	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		size_t n = list_children(pids, MAX_CHILDREN);

		for (size_t i = 0; i < n; i++) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
		killed += n;
	}
	return killed == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(
	                test_stat_lines_parse_as_the_table_says, end_children),
	        cmocka_unit_test_teardown(test_stat_comm_length_is_bounded,
	                                  end_children),
	        cmocka_unit_test_teardown(test_stat_comm_with_nul_is_rejected,
	                                  end_children),
	        cmocka_unit_test_teardown(
	                test_mail_process_of_master_is_signalled, end_children),
	        cmocka_unit_test_teardown(
	                test_other_service_in_list_is_signalled, end_children),
	        cmocka_unit_test_teardown(test_dry_run_signals_nothing,
	                                  end_children),
	        cmocka_unit_test_teardown(test_foreign_name_is_refused,
	                                  end_children),
	        cmocka_unit_test_teardown(test_near_service_names_are_refused,
	                                  end_children),
	        cmocka_unit_test_teardown(test_wrong_master_is_refused,
	                                  end_children),
	        cmocka_unit_test_teardown(test_comm_with_parens_is_read_whole,
	                                  end_children),
	        cmocka_unit_test_teardown(test_grandchild_is_refused,
	                                  end_children),
	        cmocka_unit_test_teardown(test_reaped_child_is_gone,
	                                  end_children),
	        cmocka_unit_test_teardown(test_zombie_is_gone, end_children),
	        cmocka_unit_test_teardown(test_nonpositive_pids_are_refused,
	                                  end_children),
	        cmocka_unit_test_teardown(test_unset_master_refuses_everything,
	                                  end_children),
	        cmocka_unit_test_teardown(test_thread_id_is_refused,
	                                  end_children),
	        cmocka_unit_test_teardown(
	                test_anvil_parent_named_dovecot_is_the_master,
	                end_children),
	        cmocka_unit_test_teardown(test_parent_not_dovecot_is_refused,
	                                  end_children),
	        cmocka_unit_test_teardown(test_other_writers_are_refused,
	                                  end_children),
	};

	/* Orphaned grandchildren come back here to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
