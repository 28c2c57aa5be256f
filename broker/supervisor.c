#include "supervisor.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_proc.h"
#include "clock.h"
#include "fds.h"
#include "frontend_account.h"
#include "frontend_proc.h"
#include "listener.h"
#include "log.h"
#include "sandbox.h"

/* How long a retired frontend may take to close its listening socket
 * before it is killed; its loop notices within one round. */
#define RETIRE_ACK_MS 5000
/* A retired pair finishes the requests it holds within the old
 * configuration's client_timeout_ms and anvil_timeout_ms; after this
 * much more it is killed. */
#define RETIRE_SLACK_MS 30000
/* How long children get to exit when the daemon stops, before SIGKILL. */
#define STOP_MS 5000
/* Children at once: the pair and those of earlier configurations still
 * finishing their requests. A reload that would need more is refused. */
#define KIDS_MAX 18

#define NO_DEADLINE  INT64_MAX
#define SIG_BIT(sig) (1u << (sig))

struct pair {
	pid_t frontend;
	pid_t broker;
	int control; /* the supervisor's end of the frontend's control socket */
};

struct kid {
	pid_t pid;
	int64_t kill_at_ms;
};

static const char *config_path;
static struct kg_config cfg; /* the configuration of the current pair */
static int listen_fd, sig_fd = -1;
static struct kg_sockname listen_name; /* listen_fd's address */
static struct pair cur = {.control = -1};
static struct kid kids[KIDS_MAX];
static size_t n_kids;

static int fail(const char *what)
{
	kg_log_err("%s: %s", what, strerror(errno));
	return -1;
}

/* poll()'s timeout until deadline_ms: -1 for none, never negative. */
static int timeout_until(int64_t deadline_ms)
{
	int64_t left = deadline_ms - kg_now_ms();

	if (deadline_ms == NO_DEADLINE)
		return -1;
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* The address every client connection reports as its own; unnamed
 * (EADDRNOTAVAIL) it would match any socketpair. */
static int read_listen_name(void)
{
	return kg_sockname_of_listener(listen_fd, &listen_name) < 0
	               ? fail("the listening socket's address")
	               : 0;
}

/* The handled signals are blocked and wait in a signalfd, so no handler
 * ever runs at an arbitrary point of the supervisor. */
static int open_signals(void)
{
	static const int handled[] = {SIGHUP, SIGTERM, SIGINT, SIGCHLD};
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		sigaddset(&set, handled[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return fail("sigprocmask");
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return sig_fd < 0 ? fail("signalfd") : 0;
}

/* Waits until a signal is pending or deadline_ms has passed. */
static void wait_signal(int64_t deadline_ms)
{
	struct pollfd pfd = {.fd = sig_fd, .events = POLLIN};

	poll(&pfd, 1, timeout_until(deadline_ms));
}

/* The handled signals that arrived since the last call, as SIG_BITs. */
static unsigned int take_signals(void)
{
	struct signalfd_siginfo si;
	unsigned int got = 0;

	while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		got |= SIG_BIT(si.ssi_signo);
	return got;
}

/* fork() copies every fd, CLOEXEC or not: a child keeps only the fds
 * its role needs, moved to 3 and up (SECURITY.md lists them), so that no
 * socket outlives the process it belongs to: not the supervisor's
 * signalfd, control sockets or syslog connection, not the ends meant for
 * the other role. SIGHUP is ignored, so a reload signal sent to every
 * kickgated process reloads instead of ending the pair. */
static void enter_child(const char *role, int *keep, size_t n_keep)
{
	sigset_t none;

	kg_log_role(role);
	kg_log_close();
	if (kg_fds_keep_only(keep, n_keep) < 0)
		_exit(1);
	kg_log_reopen();
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static pid_t fork_frontend(const struct kg_config *c, const int link[2],
                           const int ctl[2])
{
	int keep[] = {listen_fd, link[1], ctl[1]};
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	enter_child("frontend", keep, 3);
	if (kg_sandbox_frontend(c->frontend_uid, c->frontend_gid) < 0)
		_exit(1);
	kg_frontend_run(keep[0], keep[1], keep[2], (int)c->client_timeout_ms);
}

/* The broker takes identities only from connections accepted on the
 * listener by a process other than frontend: it learns both here. */
static pid_t fork_broker(const struct kg_config *c, const int link[2],
                         pid_t frontend)
{
	int keep[] = {link[0]};
	struct kg_broker_start st = {
	        .cfg = c,
	        .clients = {.listener = listen_name, .frontend = frontend}};
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	enter_child("broker", keep, 1);
	st.frontend_fd = keep[0];
	kg_broker_main(&st);
	_exit(1);
}

/* Starts a frontend and a broker with c on the listening socket: link
 * carries requests and client fds from one to the other, ctl lets the
 * supervisor retire the frontend. Returns 0, or -1 (logged) with nothing
 * of the new pair left. */
static int start_pair(const struct kg_config *c, struct pair *p)
{
	int link[2], ctl[2], err;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, link) < 0)
		return fail("socketpair");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
		fail("socketpair");
		close(link[0]);
		close(link[1]);
		return -1;
	}
	p->frontend = fork_frontend(c, link, ctl);
	p->broker = p->frontend > 0 ? fork_broker(c, link, p->frontend) : -1;
	err = errno;
	close(link[0]);
	close(link[1]);
	close(ctl[1]);
	p->control = ctl[0];
	if (p->broker > 0)
		return 0;
	kg_log_err("fork: %s", strerror(err));
	if (p->frontend > 0) {
		kill(p->frontend, SIGKILL);
		waitpid(p->frontend, NULL, 0);
	}
	close(ctl[0]);
	return -1;
}

static void add_kids(const struct pair *p)
{
	kids[n_kids++] = (struct kid){p->frontend, NO_DEADLINE};
	kids[n_kids++] = (struct kid){p->broker, NO_DEADLINE};
}

static void forget_kid(pid_t pid)
{
	for (size_t i = 0; i < n_kids; i++)
		if (kids[i].pid == pid) {
			kids[i] = kids[--n_kids];
			return;
		}
}

static bool in_pair(pid_t pid)
{
	return pid == cur.frontend || pid == cur.broker;
}

static void log_exit(pid_t pid, int status)
{
	const char *role = pid == cur.frontend ? "frontend" : "broker";

	if (WIFSIGNALED(status))
		kg_log_err("%s pid %d was killed by signal %d", role, (int)pid,
		           WTERMSIG(status));
	else
		kg_log_err("%s pid %d exited with status %d", role, (int)pid,
		           WEXITSTATUS(status));
}

/* Reaps every child that has exited. Returns false when a process of the
 * current pair is among them; report logs how it ended. */
static bool reap(bool report)
{
	bool whole = true;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		forget_kid(pid);
		if (!in_pair(pid))
			continue;
		whole = false;
		if (report)
			log_exit(pid, status);
	}
	return whole;
}

/* A process of an earlier configuration that outlives its time is
 * killed, so that every wait is bounded. Returns the next deadline. */
static int64_t kill_overdue(void)
{
	int64_t now = kg_now_ms(), next = NO_DEADLINE;

	for (size_t i = 0; i < n_kids; i++) {
		if (kids[i].kill_at_ms <= now) {
			kg_log_err("pid %d of an earlier configuration still "
			           "runs; killing it",
			           (int)kids[i].pid);
			kill(kids[i].pid, SIGKILL);
			kids[i].kill_at_ms = NO_DEADLINE;
		}
		if (kids[i].kill_at_ms < next)
			next = kids[i].kill_at_ms;
	}
	return next;
}

/* Tells the old pair's frontend to stop accepting and waits, bounded,
 * until it has closed the listening socket: from then on no request can
 * reach the old configuration. A frontend that does not answer in time
 * is killed. The pair then has until its deadline to finish the
 * requests it holds; the broker ends once its frontend has. */
static void retire(const struct pair *old, const struct kg_config *old_cfg)
{
	struct pollfd pfd = {.fd = old->control};
	int64_t deadline = kg_now_ms() + RETIRE_ACK_MS;
	int64_t kill_at;

	shutdown(old->control, SHUT_WR);
	while (pfd.revents == 0 && kg_now_ms() < deadline)
		poll(&pfd, 1, timeout_until(deadline));
	if (pfd.revents == 0) {
		kg_log_err("frontend pid %d did not stop accepting within %d "
		           "ms; killing it",
		           (int)old->frontend, RETIRE_ACK_MS);
		kill(old->frontend, SIGKILL);
	}
	close(old->control);
	kill_at = kg_now_ms() + old_cfg->client_timeout_ms +
	          old_cfg->anvil_timeout_ms + RETIRE_SLACK_MS;
	for (size_t i = 0; i < n_kids; i++)
		if (kids[i].pid == old->frontend || kids[i].pid == old->broker)
			kids[i].kill_at_ms = kill_at;
}

/* Reads the configuration into next, each error logged as a line of its
 * own. Returns 0, or -1 (next released) when there was an error. */
static int load_logged(struct kg_config *next)
{
	char *text = NULL, *save;
	size_t len = 0;
	FILE *errs = open_memstream(&text, &len);
	int errors = kg_config_load_for_daemon(config_path, next, errs);

	if (errs != NULL)
		fclose(errs);
	if (text != NULL)
		for (char *line = strtok_r(text, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save))
			kg_log_err("%s", line);
	free(text);
	if (errors == 0)
		return 0;
	kg_log_err("reload refused: %d error(s) in %s; the running "
	           "configuration stays in force",
	           errors, config_path);
	kg_config_free(next);
	return -1;
}

/* The listening socket is made once, before the first pair: listen and
 * listen_mode take effect at the next restart. The rest of the reload
 * applies, as an admin who changed a rule along with them expects. */
static void keep_socket_settings(struct kg_config *next)
{
	if (strcmp(next->listen, cfg.listen) != 0)
		kg_log_warn("listen = %s takes effect at the next restart; "
		            "still listening on %s",
		            next->listen, kg_listener_name());
	if (next->listen_mode != cfg.listen_mode)
		kg_log_warn("listen_mode = %04o takes effect at the next "
		            "restart; the socket keeps its mode",
		            (unsigned int)next->listen_mode);
	memcpy(next->listen, cfg.listen, sizeof(next->listen));
	next->listen_mode = cfg.listen_mode;
}

static void log_pair(const char *what, const char *name)
{
	kg_log_info("%s %s, frontend pid %d, broker pid %d", what, name,
	            (int)cur.frontend, (int)cur.broker);
}

/* The new pair starts before the old one is retired: a reload that
 * cannot start one leaves the old pair serving. */
static void reload(void)
{
	struct kg_config next;
	struct pair p;

	kg_log_info("SIGHUP: reading %s", config_path);
	if (load_logged(&next) < 0)
		return;
	keep_socket_settings(&next);
	if (n_kids + 2 > KIDS_MAX) {
		kg_log_err("reload refused: earlier configurations are still "
		           "finishing their requests; the running "
		           "configuration stays in force");
	} else if (start_pair(&next, &p) < 0) {
		kg_log_err("reload failed; the running configuration stays "
		           "in force");
	} else {
		add_kids(&p);
		retire(&cur, &cfg);
		cur = p;
		kg_config_free(&cfg);
		cfg = next;
		log_pair("reloaded", config_path);
		return;
	}
	kg_config_free(&next);
}

/* Handles signals until the daemon is to stop; returns its exit
 * status. */
static int serve(void)
{
	for (;;) {
		unsigned int got;

		wait_signal(kill_overdue());
		got = take_signals();
		if ((got & SIG_BIT(SIGCHLD)) && !reap(true)) {
			kg_log_err("stopping: a process of the pair is gone");
			return 1;
		}
		if (got & (SIG_BIT(SIGTERM) | SIG_BIT(SIGINT))) {
			kg_log_info("stopping on request");
			return 0;
		}
		if (got & SIG_BIT(SIGHUP))
			reload();
	}
}

/* Stops and reaps every child: SIGTERM to those of earlier
 * configurations, and to the pair when term_pair (the survivor of a
 * broken pair ends by itself and logs why), SIGKILL to whatever still
 * runs after STOP_MS. */
static void stop_all(bool term_pair)
{
	int64_t deadline = kg_now_ms() + STOP_MS;
	pid_t pid;

	for (size_t i = 0; i < n_kids; i++)
		if (term_pair || !in_pair(kids[i].pid))
			kill(kids[i].pid, SIGTERM);
	while (n_kids > 0 && kg_now_ms() < deadline) {
		wait_signal(deadline);
		take_signals();
		reap(false);
	}
	for (size_t i = 0; i < n_kids; i++)
		kill(kids[i].pid, SIGKILL);
	while (n_kids > 0 && (pid = waitpid(-1, NULL, 0)) > 0)
		forget_kid(pid);
}

int kg_supervisor_run(struct kg_config *start_cfg, const char *path, int fd)
{
	int status;

	kg_log_role("supervisor");
	config_path = path;
	cfg = *start_cfg;
	listen_fd = fd;
	if (read_listen_name() < 0 || open_signals() < 0 ||
	    start_pair(&cfg, &cur) < 0) {
		kg_config_free(&cfg);
		return 1;
	}
	add_kids(&cur);
	log_pair("listening on", kg_listener_name());
	status = serve();
	stop_all(status == 0);
	kg_config_free(&cfg);
	return status;
}
