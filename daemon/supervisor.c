/* SPDX-License-Identifier: MIT */
#include "daemon/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/main.h"
#include "broker/peer.h"
#include "daemon/fds.h"
#include "daemon/listener.h"
#include "frontend/serve.h"
#include "policy/frontend_account.h"
#include "policy/policy.h"
#include "proto/clock.h"
#include "proto/log.h"
#include "proto/reply_send.h"
#include "proto/wire.h"

/* Frontends at once. Up to EARLY_MAX of them start as soon as their
 * client is accepted; the others only once their client has sent
 * something, so that clients which connect and stay silent occupy at most
 * EARLY_MAX frontends and wait here otherwise, never delaying a client
 * that speaks. Beyond WAITING_MAX, clients wait in the listen backlog. */
#define FRONTENDS_MAX 64
#define EARLY_MAX     16
#define WAITING_MAX   4096
/* Frontends exec'd and confined ahead of their client, so that a
 * connection waits for neither: one is handed over on accept and another
 * started in its place. */
#define POOL_MAX       4
#define FRONTEND_SLOTS (FRONTENDS_MAX + POOL_MAX)
/* The current broker and those of earlier configurations still
 * finishing their requests. A reload that would need more is refused. */
#define BROKERS_MAX 8
/* Requests waiting for a busy broker; beyond, a client is told so. */
#define QUEUE_MAX 256
/* A frontend answers a silent client itself at client_timeout_ms; it is
 * killed only when it has not ended this much later. */
#define FRONTEND_SLACK_MS 1000
/* A retired broker finishes the requests it holds within the old
 * configuration's client_timeout_ms and anvil_timeout_ms; after this
 * much more it is killed. */
#define RETIRE_SLACK_MS 30000
/* How long children get to exit when the daemon stops, before SIGKILL. */
#define STOP_MS 5000
/* Connections accepted in one round of the event loop, so that a flood
 * of them cannot keep the loop from everything else. */
#define ACCEPT_BATCH 256
/* A refused client whose request has not come yet is kept this long, so
 * that the refusal can be read: closing a SOCK_SEQPACKET socket before
 * its request arrives makes the client's send fail, and closing it with
 * the request unread resets the connection, refusal and all. Of more
 * than LINGER_MAX, the oldest goes first: a client that speaks at once,
 * as kickgate does, is done long before a flood of silent ones could
 * push it out. */
#define LINGER_MAX 1024
#define LINGER_MS  500
/* Packets drained from a refused client before its socket is closed. */
#define DRAIN_MAX 16
/* Refusals a flood repeats many times a second are logged at most once
 * in this long. */
#define REFUSAL_LOG_MS 10000

#define NO_DEADLINE  INT64_MAX
#define SIG_BIT(sig) (1u << (sig))

struct request {
	int client;
	uid_t uid; /* the client's, from the kernel */
	size_t len;
	uint8_t msg[KG_REQ_MAX];
};

struct broker {
	pid_t pid; /* 0: slot free or reaped */
	int chan;  /* the supervisor's end of the broker's channel; -1 closed */
	bool retired;
	int64_t kill_at_ms;
	unsigned int wait_ms; /* the longest a request of it may take */
	size_t clients;       /* accepted for it, request not yet read */
	size_t head, n;       /* the queue, a ring */
	struct request queue[QUEUE_MAX];
};

/* A client accepted and silent so far. */
struct waiting {
	int fd;
	uid_t uid;
	int64_t deadline_ms;   /* NO_DEADLINE once it has sent something */
	struct broker *broker; /* current when the client was accepted */
};

struct frontend {
	pid_t pid;  /* 0: reaped */
	int sock;   /* the supervisor's end of its socketpair; -1: read */
	int client; /* the connection it serves; -1: passed on or closed */
	bool idle;  /* in the pool: no client handed over yet */
	uid_t uid;  /* the client's */
	bool early; /* started before its client sent anything */
	int64_t kill_at_ms;
	struct broker *broker;
};

static const char *config_path;
static struct kg_config cfg; /* the current configuration */
static int listen_fd, sig_fd = -1, self_exe = -1;
static struct kg_sockname listen_name; /* listen_fd's address */
static struct broker brokers[BROKERS_MAX];
static struct broker *cur;
static struct waiting waiting[WAITING_MAX];
static size_t n_waiting;
static struct frontend frontends[FRONTEND_SLOTS];
static size_t n_frontends, n_early, n_idle;
/* Refused clients whose request has not come yet, oldest first, in a
 * ring: closed when it comes (fd -1 until the entry leaves the ring),
 * when they hang up, or at the deadline. Deadlines grow along the ring,
 * as every client lingers as long. */
static struct lingering {
	int fd;
	int64_t deadline_ms;
} lingering[LINGER_MAX];
static size_t linger_head, n_lingering;

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
 * socket outlives the process it belongs to: not the listener, other
 * clients' connections, the signalfd or the syslog connection. SIGHUP is
 * ignored, so a reload signal sent to every kickgated process reloads
 * instead of ending a child. */
static void enter_child(int *keep, size_t n_keep)
{
	sigset_t none;

	kg_log_close();
	if (kg_fds_keep_only(keep, n_keep) < 0)
		_exit(1);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The configuration's bytes in a sealed memfd: the exec'd broker parses
 * exactly what this process checked. Returns the fd, or -1 (logged). */
static int config_memfd(const struct kg_config *c)
{
	int fd =
	        memfd_create("kickgated.conf", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return fail("memfd_create");
	if (write(fd, c->text, c->text_len) != (ssize_t)c->text_len ||
	    fcntl(fd, F_ADD_SEALS,
	          F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) <
	            0) {
		fail("sealing the configuration for the broker");
		close(fd);
		return -1;
	}
	return fd;
}

/* The exec'd broker gets its channel at 3 and the configuration at 4
 * (broker/main.h), and a fresh address space: nothing of the
 * supervisor's, such as the listener or clients, reaches it. */
static _Noreturn void exec_broker(int link, int conf)
{
	int keep[] = {link, conf, self_exe};
	char *argv[] = {"kickgated", "--broker", (char *)config_path,
	                kg_log_to_stderr() ? "stderr" : "syslog", NULL};
	char *envp[] = {NULL};

	enter_child(keep, 3);
	if (fcntl(KG_BROKER_CHANNEL_FD, F_SETFD, 0) < 0 ||
	    fcntl(KG_BROKER_CONFIG_FD, F_SETFD, 0) < 0)
		_exit(126);
	execveat(keep[2], "", argv, envp, AT_EMPTY_PATH);
	_exit(127);
}

/* Forks and execs a broker for c on link. The broker takes identities
 * only from connections accepted on the listener and connected by
 * neither daemon process: its first message is the listener's address
 * (it takes the supervisor's pid from getppid). */
static pid_t fork_broker(const struct kg_config *c, int link, int chan)
{
	int conf = config_memfd(c);
	pid_t pid;

	if (conf < 0)
		return -1;
	pid = fork();
	if (pid == 0)
		exec_broker(link, conf);
	close(conf);
	if (pid < 0)
		fail("fork");
	else if (send(chan, &listen_name, sizeof(listen_name), MSG_NOSIGNAL) !=
	         (ssize_t)sizeof(listen_name)) {
		fail("sending the broker its start message");
		kill(pid, SIGKILL);
	}
	return pid;
}

/* Starts a broker with c in a free slot. Returns it, or NULL (logged). */
static struct broker *start_broker(const struct kg_config *c)
{
	struct broker *b = NULL;
	int link[2];

	/* A slot is free once nothing refers to its broker any more. */
	for (size_t i = 0; i < BROKERS_MAX && b == NULL; i++)
		if (brokers[i].pid == 0 && brokers[i].chan < 0 &&
		    brokers[i].clients == 0)
			b = &brokers[i];
	if (b == NULL) {
		kg_log_err("earlier configurations are still finishing their "
		           "requests");
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, link) < 0) {
		fail("socketpair");
		return NULL;
	}
	b->pid = fork_broker(c, link[1], link[0]);
	close(link[1]);
	if (b->pid < 0) {
		close(link[0]);
		b->pid = 0;
		return NULL;
	}
	fcntl(link[0], F_SETFL, O_NONBLOCK);
	/* A free slot's queue and client count are empty already. */
	b->chan = link[0];
	b->retired = false;
	b->kill_at_ms = NO_DEADLINE;
	b->wait_ms = c->client_timeout_ms + c->anvil_timeout_ms;
	b->head = 0;
	return b;
}

/* The exec'd frontend gets its end of the socketpair at 4 and nothing
 * else (fds.c; the binary, at 3, closes on exec), and in argv only the
 * ids it drops to and where it logs. Exec gives it a fresh address space
 * that holds nothing of the supervisor's: no configuration, no client. */
static _Noreturn void exec_frontend(int end)
{
	int keep[] = {self_exe, end};
	char uid[24], gid[24];
	char *argv[] = {"kickgated",
	                "--frontend",
	                uid,
	                gid,
	                kg_log_to_stderr() ? "stderr" : "syslog",
	                NULL};
	char *envp[] = {NULL};

	snprintf(uid, sizeof(uid), "%u", (unsigned int)cfg.frontend_uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned int)cfg.frontend_gid);
	enter_child(keep, 2);
	if (fcntl(KG_FRONTEND_SUPERVISOR_FD, F_SETFD, 0) < 0)
		_exit(126);
	execveat(keep[0], "", argv, envp, AT_EMPTY_PATH);
	_exit(127);
}

/* Starts a frontend into the pool. Returns it, or NULL (logged). */
static struct frontend *spawn_frontend(void)
{
	struct frontend *f = &frontends[n_frontends];
	int sp[2];
	pid_t pid;

	if (n_frontends == FRONTEND_SLOTS)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		fail("socketpair");
		return NULL;
	}
	pid = fork();
	if (pid == 0)
		exec_frontend(sp[1]);
	close(sp[1]);
	if (pid < 0) {
		close(sp[0]);
		fail("fork");
		return NULL;
	}
	*f = (struct frontend){.pid = pid,
	                       .sock = sp[0],
	                       .client = -1,
	                       .idle = true,
	                       .kill_at_ms = NO_DEADLINE};
	n_frontends++;
	n_idle++;
	return f;
}

/* Takes f out of the pool without a client: its end closed, it exits. */
static void retire_idle(struct frontend *f)
{
	close(f->sock);
	f->sock = -1;
	f->idle = false;
	n_idle--;
}

static void fill_pool(void)
{
	while (n_idle < POOL_MAX && spawn_frontend() != NULL)
		continue;
}

/* A reload's frontends drop to the new frontend_user. */
static void drain_pool(void)
{
	for (size_t i = 0; i < n_frontends; i++)
		if (frontends[i].idle)
			retire_idle(&frontends[i]);
}

/* Sends len bytes of buf with fd attached, without waiting. Returns 0,
 * or -1 with errno set (EAGAIN: no room now). */
static int send_with_fd(int sock, const void *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(ctl.buf, 0, sizeof(ctl.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len
	               ? 0
	               : -1;
}

/* Hands client and the milliseconds left of its deadline to f. The
 * frontend takes exactly one client and the supervisor sends it exactly
 * one. Returns 0, or -1 with errno set. */
static int hand_over(struct frontend *f, int client, int32_t timeout)
{
	return send_with_fd(f->sock, &timeout, sizeof(timeout), client);
}

/* Whether another client may have a frontend now. */
static bool frontend_room(void)
{
	return n_frontends - n_idle < FRONTENDS_MAX;
}

/* A pooled frontend, or a new one when the pool is empty. */
static struct frontend *take_frontend(void)
{
	for (size_t i = 0; i < n_frontends; i++)
		if (frontends[i].idle && frontends[i].pid > 0)
			return &frontends[i];
	return spawn_frontend();
}

/* Gives w's client a frontend. Its deadline is what is left of the
 * client's: one that came to a frontend late gets no extra time. Returns
 * 0, or -1 (logged; the client is still w's). */
static int start_frontend(const struct waiting *w, bool early)
{
	int64_t now = kg_now_ms();
	int64_t left = w->deadline_ms == NO_DEADLINE ? cfg.client_timeout_ms
	                                             : w->deadline_ms - now;
	int32_t timeout = left > 0 ? (int32_t)left : 0;
	struct frontend *f = take_frontend();

	/* A pooled frontend may have died unseen: a fresh one gets a try. */
	if (f != NULL && hand_over(f, w->fd, timeout) < 0) {
		retire_idle(f);
		f = spawn_frontend();
		if (f != NULL && hand_over(f, w->fd, timeout) < 0) {
			fail("handing a client to its frontend");
			retire_idle(f);
			f = NULL;
		}
	}
	if (f == NULL)
		return -1;
	f->idle = false;
	n_idle--;
	f->client = w->fd;
	f->uid = w->uid;
	f->early = early;
	f->kill_at_ms = now + timeout + FRONTEND_SLACK_MS;
	f->broker = w->broker;
	n_early += early;
	return 0;
}

static void let_go_oldest(void)
{
	struct lingering *l = &lingering[linger_head];

	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	linger_head = (linger_head + 1) % LINGER_MAX;
	n_lingering--;
}

/* Lets go of clients past their deadline and of the entries of those
 * already closed at the ring's head. Returns the next deadline. */
static int64_t let_go_lingering(int64_t now)
{
	while (n_lingering > 0) {
		const struct lingering *l = &lingering[linger_head];

		if (l->fd >= 0 && l->deadline_ms > now)
			return l->deadline_ms;
		let_go_oldest();
	}
	return NO_DEADLINE;
}

/* Reads what a refused client sent, at most DRAIN_MAX packets. Returns
 * true once it has sent something or hung up: its socket can then be
 * closed without losing the refusal. */
static bool drained(int fd)
{
	uint8_t buf[KG_REQ_MAX + 1];
	bool got = false;

	for (int i = 0; i < DRAIN_MAX; i++) {
		ssize_t n =
		        recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0)
			return got || (errno != EAGAIN && errno != EINTR);
		if (n == 0)
			return true;
		got = true;
	}
	return true;
}

/* Answers a client the supervisor refuses, and closes its socket once
 * the answer can be read (LINGER_MAX). */
static void answer(int fd, uint8_t status, const char *text)
{
	kg_reply_error(fd, status, text);
	if (drained(fd)) {
		close(fd);
		return;
	}
	if (n_lingering == LINGER_MAX)
		let_go_oldest();
	lingering[(linger_head + n_lingering++) % LINGER_MAX] =
	        (struct lingering){.fd = fd,
	                           .deadline_ms = kg_now_ms() + LINGER_MS};
}

static void log_refusal(uid_t uid, const char *why)
{
	static int64_t next_ms;
	static unsigned long quiet;
	int64_t now = kg_now_ms();

	if (now < next_ms) {
		quiet++;
		return;
	}
	kg_log_warn("refused a connection of uid %u: %s (%lu more refusals "
	            "in the last %d s not logged)",
	            (unsigned int)uid, why, quiet, REFUSAL_LOG_MS / 1000);
	quiet = 0;
	next_ms = now + REFUSAL_LOG_MS;
}

static size_t queued_by(const struct broker *b, uid_t uid)
{
	size_t n = 0;

	for (size_t i = 0; i < b->n; i++)
		n += b->queue[(b->head + i) % QUEUE_MAX].uid == uid;
	return n;
}

/* Connections of uid held here: waiting, at a frontend, or queued for a
 * broker. A scan, as each uid holds few. */
static size_t held_by(uid_t uid)
{
	size_t n = 0;

	for (size_t i = 0; i < n_waiting; i++)
		n += waiting[i].uid == uid;
	for (size_t i = 0; i < n_frontends; i++)
		n += frontends[i].client >= 0 && frontends[i].uid == uid;
	for (size_t i = 0; i < BROKERS_MAX; i++)
		n += queued_by(&brokers[i], uid);
	return n;
}

static void refuse_excess(int fd, uid_t uid)
{
	char text[KG_ERRTEXT_MAX + 1];

	snprintf(text, sizeof(text),
	         "too many connections: uid %u has %u with kickgated already "
	         "(max_connections_per_uid); try again when they are done",
	         (unsigned int)uid, cfg.max_conns_per_uid);
	log_refusal(uid, "too many connections");
	answer(fd, KG_EXIT_UNAVAILABLE, text);
}

/* Decides on a client from its kernel identity alone, before it costs
 * a slot: one that no rule names is refused at once, as is one whose uid
 * holds max_connections_per_uid already. Root, who can stop the daemon
 * anyway, has no limit. */
static void admit(int fd)
{
	static struct kg_peer peer;
	struct kg_caller caller;

	if (kg_peer_ids(fd, &peer) < 0) {
		fail("the caller's identity");
		answer(fd, KG_EXIT_SOFTWARE,
		       "cannot read the caller's identity");
		return;
	}
	caller = (struct kg_caller){.uid = peer.uid,
	                            .gid = peer.gid,
	                            .groups = peer.groups,
	                            .n_groups = peer.n_groups};
	if (!kg_policy_names(&cfg, &caller)) {
		log_refusal(peer.uid, "no rule names it");
		answer(fd, KG_EXIT_NOPERM,
		       "permission denied: no rule allows this caller");
		return;
	}
	if (peer.uid != 0 && held_by(peer.uid) >= cfg.max_conns_per_uid) {
		refuse_excess(fd, peer.uid);
		return;
	}
	waiting[n_waiting++] = (struct waiting){
	        .fd = fd,
	        .uid = peer.uid,
	        .deadline_ms = kg_now_ms() + cfg.client_timeout_ms,
	        .broker = cur};
	cur->clients++;
}

/* Accepts while there is room. The client's socket stays blocking: the
 * broker bounds its replies with SO_SNDTIMEO, which a non-blocking
 * socket ignores. The client belongs to the configuration in force now,
 * whenever its request comes. */
static void accept_clients(void)
{
	for (int i = 0; i < ACCEPT_BATCH && n_waiting < WAITING_MAX; i++) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				fail("accept4");
			return;
		}
		admit(fd);
	}
}

/* Sends the client's fd with its request. Returns 0, or -1 with errno
 * (EAGAIN: the broker is busy). */
static int send_request(int chan, const struct request *r)
{
	return send_with_fd(chan, r->msg, r->len, r->client);
}

/* Sends the queue's head while the broker takes it. */
static void flush(struct broker *b)
{
	while (b->n > 0) {
		struct request *r = &b->queue[b->head];

		if (b->chan < 0)
			answer(r->client, KG_EXIT_UNAVAILABLE,
			       "broker unavailable");
		else if (send_request(b->chan, r) == 0)
			close(r->client);
		else if (errno == EAGAIN)
			return;
		else
			answer(r->client, KG_EXIT_UNAVAILABLE,
			       "broker unavailable");
		b->head = (b->head + 1) % QUEUE_MAX;
		b->n--;
	}
}

/* A retired broker whose last request is sent gets its channel closed:
 * it serves what it holds, reads the end and exits. */
static void close_if_done(struct broker *b)
{
	if (!b->retired || b->clients > 0 || b->n > 0 || b->chan < 0)
		return;
	close(b->chan);
	b->chan = -1;
	b->kill_at_ms = kg_now_ms() + b->wait_ms + RETIRE_SLACK_MS;
}

static void enqueue(struct broker *b, int client, uid_t uid, const uint8_t *msg,
                    size_t len)
{
	struct request *r;

	if (b->n == QUEUE_MAX) {
		answer(client, KG_EXIT_UNAVAILABLE, "broker busy");
		return;
	}
	r = &b->queue[(b->head + b->n) % QUEUE_MAX];
	r->client = client;
	r->uid = uid;
	r->len = len;
	memcpy(r->msg, msg, len);
	b->n++;
	flush(b);
}

/* Reads what frontend f wrote: a request for its broker, or nothing
 * (it answered the client itself, or died). The bytes are not parsed
 * here; only their size is bounded. */
static void read_frontend(struct frontend *f)
{
	uint8_t msg[KG_REQ_MAX + 1];
	ssize_t n;

	/* A pooled frontend has nothing to say: it ended. */
	if (f->idle) {
		retire_idle(f);
		return;
	}
	n = recv(f->sock, msg, sizeof(msg), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && (size_t)n < sizeof(msg))
		enqueue(f->broker, f->client, f->uid, msg, (size_t)n);
	else
		close(f->client);
	close(f->sock);
	f->sock = -1;
	f->client = -1;
	n_early -= f->early;
	f->early = false;
	f->broker->clients--;
	close_if_done(f->broker);
}

static void forget_waiting(size_t i)
{
	struct broker *b = waiting[i].broker;

	waiting[i] = waiting[--n_waiting];
	b->clients--;
	close_if_done(b);
}

/* Client i gets a frontend, early or because it has sent something (or
 * hung up); one that cannot have one is told so. */
static void hand_to_frontend(size_t i, bool early)
{
	struct waiting *w = &waiting[i];

	if (start_frontend(w, early) < 0) {
		answer(w->fd, KG_EXIT_UNAVAILABLE,
		       "kickgated cannot serve now");
		forget_waiting(i);
		return;
	}
	waiting[i] = waiting[--n_waiting];
}

/* A client silent until its deadline is answered as a frontend would
 * answer it. One whose request came but found every frontend busy waits
 * on: frontends end within their own deadline. */
static void expire_waiting(void)
{
	int64_t now = kg_now_ms();

	for (size_t i = n_waiting; i-- > 0;) {
		struct pollfd pfd = {.fd = waiting[i].fd,
		                     .events = POLLIN | POLLRDHUP};

		if (waiting[i].deadline_ms > now)
			continue;
		if (poll(&pfd, 1, 0) > 0) {
			waiting[i].deadline_ms = NO_DEADLINE;
			continue;
		}
		answer(waiting[i].fd, KG_EXIT_USAGE,
		       "no request before the timeout");
		forget_waiting(i);
	}
}

/* A seccomp kill is the one death an admin must read as "the sandbox
 * stopped this process", so it says so. */
static void log_exit(const char *role, pid_t pid, int status)
{
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	const char *abbrev = sig ? sigabbrev_np(sig) : NULL;

	if (sig == SIGSYS)
		kg_log_err("%s pid %d was killed by signal %d (SIGSYS), as "
		           "its seccomp filter kills a forbidden system call",
		           role, (int)pid, sig);
	else if (sig)
		kg_log_err("%s pid %d was killed by signal %d (SIG%s)", role,
		           (int)pid, sig, abbrev ? abbrev : "?");
	else
		kg_log_err("%s pid %d exited with status %d", role, (int)pid,
		           WEXITSTATUS(status));
}

/* A frontend is forgotten once it is reaped and its socket read. */
static void drop_finished_frontends(void)
{
	for (size_t i = n_frontends; i-- > 0;)
		if (frontends[i].pid == 0 && frontends[i].sock < 0)
			frontends[i] = frontends[--n_frontends];
}

/* Records pid's end. Returns false when it is the current broker. */
static bool child_ended(pid_t pid, int status, bool report)
{
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

	for (size_t i = 0; i < n_frontends; i++)
		if (frontends[i].pid == pid) {
			frontends[i].pid = 0;
			if (report && !clean)
				log_exit("frontend", pid, status);
			return true;
		}
	for (size_t i = 0; i < BROKERS_MAX; i++)
		if (brokers[i].pid == pid) {
			brokers[i].pid = 0;
			if (report && (!clean || &brokers[i] == cur))
				log_exit("broker", pid, status);
			return &brokers[i] != cur;
		}
	return true;
}

/* Reaps every child that has exited. Returns false when the current
 * broker is among them. */
static bool reap(bool report)
{
	bool whole = true;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		whole = child_ended(pid, status, report) && whole;
	drop_finished_frontends();
	return whole;
}

static void kill_if_due(pid_t pid, int64_t *kill_at, int64_t now,
                        const char *what)
{
	if (pid <= 0 || *kill_at > now)
		return;
	kg_log_err("%s pid %d outlived its deadline; killing it", what,
	           (int)pid);
	kill(pid, SIGKILL);
	*kill_at = NO_DEADLINE;
}

/* Every wait is bounded: a frontend past its deadline and a retired
 * broker past its own are killed, a silent client is dropped. Returns the
 * next deadline. */
static int64_t kill_overdue(void)
{
	int64_t now = kg_now_ms(), next = NO_DEADLINE, linger_next;

	expire_waiting();
	for (size_t i = 0; i < n_waiting; i++)
		if (waiting[i].deadline_ms < next)
			next = waiting[i].deadline_ms;
	linger_next = let_go_lingering(now);
	if (linger_next < next)
		next = linger_next;
	for (size_t i = 0; i < n_frontends; i++) {
		struct frontend *f = &frontends[i];

		kill_if_due(f->pid, &f->kill_at_ms, now, "frontend");
		if (f->pid > 0 && f->kill_at_ms < next)
			next = f->kill_at_ms;
	}
	for (size_t i = 0; i < BROKERS_MAX; i++) {
		struct broker *b = &brokers[i];

		kill_if_due(b->pid, &b->kill_at_ms, now, "retired broker");
		if (b->pid > 0 && b->kill_at_ms < next)
			next = b->kill_at_ms;
	}
	return next;
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

/* The listening socket is made once, before the first broker: listen and
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

/* The new broker starts before the old one is retired: a reload that
 * cannot start one leaves the old configuration serving. Clients
 * accepted from now on get frontends with the new limits and go to the
 * new broker; those accepted before still go to the old one. */
static void reload(void)
{
	struct kg_config next;
	struct broker *b;

	kg_log_info("SIGHUP: reading %s", config_path);
	if (load_logged(&next) < 0)
		return;
	keep_socket_settings(&next);
	b = start_broker(&next);
	if (b == NULL) {
		kg_log_err("reload failed; the running configuration stays "
		           "in force");
		kg_config_free(&next);
		return;
	}
	cur->retired = true;
	close_if_done(cur);
	cur = b;
	kg_config_free(&cfg);
	cfg = next;
	drain_pool();
	kg_log_info("reloaded %s, broker pid %d", config_path, (int)cur->pid);
}

enum {
	SLOT_SIG,
	SLOT_LISTEN,
	SLOT_BROKERS,
	SLOT_FRONTENDS = SLOT_BROKERS + BROKERS_MAX,
	SLOT_WAITING = SLOT_FRONTENDS + FRONTEND_SLOTS,
	SLOT_LINGER = SLOT_WAITING + WAITING_MAX,
	SLOTS = SLOT_LINGER + LINGER_MAX,
};

static struct pollfd pfds[SLOTS];

/* A broker's channel is polled for its end (a broker never writes) and,
 * while requests wait, for room. */
static void fill_pollfds(void)
{
	pfds[SLOT_SIG] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
	pfds[SLOT_LISTEN] =
	        (struct pollfd){.fd = n_waiting < WAITING_MAX ? listen_fd : -1,
	                        .events = POLLIN};
	for (size_t i = 0; i < BROKERS_MAX; i++)
		pfds[SLOT_BROKERS + i] = (struct pollfd){
		        .fd = brokers[i].chan,
		        .events = brokers[i].n > 0 ? POLLOUT : 0};
	for (size_t i = 0; i < FRONTEND_SLOTS; i++)
		pfds[SLOT_FRONTENDS + i] = (struct pollfd){
		        .fd = i < n_frontends ? frontends[i].sock : -1,
		        .events = POLLIN};
	/* Waiting clients are watched only while a frontend may start: one
	 * that is ready would otherwise wake every round. */
	for (size_t i = 0; i < WAITING_MAX; i++)
		pfds[SLOT_WAITING + i] = (struct pollfd){
		        .fd = i < n_waiting && frontend_room() ? waiting[i].fd
		                                               : -1,
		        .events = POLLIN | POLLRDHUP};
	for (size_t i = 0; i < LINGER_MAX; i++)
		pfds[SLOT_LINGER + i] = (struct pollfd){
		        .fd = lingering[i].fd, .events = POLLIN | POLLRDHUP};
}

/* Before anything that refuses a client reuses a slot of the ring: the
 * polled slots are the ring as fill_pollfds saw it. */
static void serve_lingering(void)
{
	for (size_t i = 0; i < LINGER_MAX; i++) {
		struct lingering *l = &lingering[i];

		if (pfds[SLOT_LINGER + i].revents && drained(l->fd)) {
			close(l->fd);
			l->fd = -1;
		}
	}
}

/* A broker that closed its end is gone or going: its queue is answered
 * and, when it is the current one, reaping it stops the daemon. */
static void serve_brokers(void)
{
	for (size_t i = 0; i < BROKERS_MAX; i++) {
		struct broker *b = &brokers[i];
		short ev = pfds[SLOT_BROKERS + i].revents;

		if (ev & (POLLHUP | POLLERR)) {
			close(b->chan);
			b->chan = -1;
		}
		if (ev)
			flush(b);
	}
}

static void serve_frontends(void)
{
	size_t polled = n_frontends;

	for (size_t i = 0; i < polled; i++)
		if (pfds[SLOT_FRONTENDS + i].revents)
			read_frontend(&frontends[i]);
	drop_finished_frontends();
}

/* Backwards: a handed-over client's slot takes the last one, already
 * visited. */
static void serve_waiting(void)
{
	for (size_t i = n_waiting; i-- > 0;)
		if (pfds[SLOT_WAITING + i].revents && frontend_room())
			hand_to_frontend(i, false);
}

/* Waiting clients get a frontend at once while early ones may start;
 * hand_to_frontend moves the last client into slot i. */
static void start_early(void)
{
	size_t i = 0;

	while (i < n_waiting && n_early < EARLY_MAX && frontend_room()) {
		if (waiting[i].deadline_ms == NO_DEADLINE)
			i++; /* ready: serve_waiting's */
		else
			hand_to_frontend(i, true);
	}
}

/* One round of the event loop. Returns -1 to go on, else the daemon's
 * exit status. */
static int serve_round(void)
{
	/* First: expiry drops waiting clients, which fill_pollfds must not
	 * see. */
	int64_t next = kill_overdue();
	unsigned int got;

	fill_pollfds();
	if (poll(pfds, SLOTS, timeout_until(next)) < 0 && errno != EINTR) {
		fail("poll");
		return 1;
	}
	serve_lingering();
	serve_brokers();
	serve_frontends();
	serve_waiting();
	got = pfds[SLOT_SIG].revents ? take_signals() : 0;
	if ((got & SIG_BIT(SIGCHLD)) && !reap(true)) {
		kg_log_err("stopping: the broker is gone");
		return 1;
	}
	if (got & (SIG_BIT(SIGTERM) | SIG_BIT(SIGINT))) {
		kg_log_info("stopping on request");
		return 0;
	}
	if (got & SIG_BIT(SIGHUP))
		reload();
	if (pfds[SLOT_LISTEN].revents & POLLIN)
		accept_clients();
	start_early();
	fill_pool();
	return -1;
}

static bool any_child(void)
{
	for (size_t i = 0; i < n_frontends; i++)
		if (frontends[i].pid > 0)
			return true;
	for (size_t i = 0; i < BROKERS_MAX; i++)
		if (brokers[i].pid > 0)
			return true;
	return false;
}

static void signal_all(int sig)
{
	for (size_t i = 0; i < n_frontends; i++)
		if (frontends[i].pid > 0)
			kill(frontends[i].pid, sig);
	for (size_t i = 0; i < BROKERS_MAX; i++)
		if (brokers[i].pid > 0)
			kill(brokers[i].pid, sig);
}

/* Stops and reaps every child: SIGTERM, then SIGKILL to whatever still
 * runs after STOP_MS. */
static void stop_all(void)
{
	int64_t deadline = kg_now_ms() + STOP_MS;
	struct pollfd pfd = {.fd = sig_fd, .events = POLLIN};

	signal_all(SIGTERM);
	while (any_child() && kg_now_ms() < deadline) {
		poll(&pfd, 1, timeout_until(deadline));
		take_signals();
		reap(false);
	}
	signal_all(SIGKILL);
	while (any_child() && waitpid(-1, NULL, 0) > 0)
		reap(false);
}

/* The binary to exec for each frontend, pinned at start-up: a package
 * upgrade that replaces the file changes nothing for a running daemon. */
static int open_self(void)
{
	self_exe = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	return self_exe < 0 ? fail("/proc/self/exe") : 0;
}

static int start(void)
{
	for (size_t i = 0; i < BROKERS_MAX; i++)
		brokers[i].chan = -1;
	for (size_t i = 0; i < LINGER_MAX; i++)
		lingering[i].fd = -1;
	if (kg_sockname_of_listener(listen_fd, &listen_name) < 0)
		return fail("the listening socket's address");
	if (open_self() < 0 || open_signals() < 0)
		return -1;
	cur = start_broker(&cfg);
	if (cur == NULL)
		return -1;
	fill_pool();
	return 0;
}

int kg_supervisor_run(struct kg_config *start_cfg, const char *path, int fd)
{
	int status = 1;

	kg_log_role("supervisor");
	config_path = path;
	cfg = *start_cfg;
	listen_fd = fd;
	if (start() == 0) {
		kg_log_info("listening on %s, broker pid %d",
		            kg_listener_name(), (int)cur->pid);
		while ((status = serve_round()) < 0)
			continue;
	}
	stop_all();
	kg_config_free(&cfg);
	return status;
}
