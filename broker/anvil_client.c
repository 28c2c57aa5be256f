/* SPDX-License-Identifier: MIT */
#include "broker/anvil_client.h"
#include "broker/anvil_text.h"
#include "broker/anvil_v2.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Each protocol's handshake and request go in one write: anvil reads
 * them as one request. */
static const char request_v1[] = "VERSION\tanvil\t1\t0\nCONNECT-DUMP\n";
static const char request_v2[] = KG_ANVIL2_HELLO "CONNECT-DUMP\n";

/* How anvil is read. Anvil writes each dump line with a write() of its
 * own for as long as its socket has room; once the socket is full it
 * gathers lines and writes them in large blocks, and once it has gathered
 * enough it waits for the reader. A write() per line, above all one that
 * must wake a waiting reader, costs anvil more than making the line. And
 * a reader that parses what it has read while anvil waits makes the two
 * take turns instead of working side by side.
 *
 * So the dump is read into a buffer of its own and parsed a slice at a
 * time; every DRAIN_US the socket is emptied without waiting, which lets
 * it fill in between (anvil writes in blocks) but never for so long that
 * anvil stops. Only when everything read is parsed does the reader wait:
 * first with a pause, during which anvil writes unobserved, and if that
 * brought nothing, until anvil writes again. On a million connections
 * anvil then spends half the time on the dump that a reader taking each
 * line as it comes costs it. */
#define READ_BUF_SIZE (1024 * 1024)
#define SLICE_BYTES   (64 * 1024)
#define DRAIN_US      1000
#define PACE_MS       1

/* Dump bytes read and not yet parsed: p[head, tail). */
struct inbuf {
	char *p;
	size_t cap;
	size_t head;
	size_t tail;
	uint64_t total;   /* bytes read in all */
	int64_t taken_us; /* when the socket was last emptied */
};

struct exchange {
	int fd;
	pid_t writer; /* the process whose bytes were read; 0 before any */
	pid_t expect; /* when not 0: the only process that may write */
	int timeout_ms;
	int64_t deadline_ms;
	char *err;
	size_t errlen;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void)
{
	return now_us() / 1000;
}

/* Milliseconds left before the deadline; 0 once it has passed. */
static int remaining_ms(const struct exchange *s)
{
	int64_t left = s->deadline_ms - now_ms();

	return left > 0 ? (int)left : 0;
}

__attribute__((format(printf, 2, 3))) static enum kg_anvil_status
fail(struct exchange *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, s->errlen, fmt, ap);
	va_end(ap);
	return KG_ANVIL_FAILED;
}

static enum kg_anvil_status timed_out(struct exchange *s)
{
	return fail(s, "anvil timed out after %d ms", s->timeout_ms);
}

/* A connect to a UNIX stream socket blocks while the listener's backlog
 * is full; the send timeout is what bounds that wait (and the send). */
static enum kg_anvil_status set_send_timeout(struct exchange *s)
{
	int left = remaining_ms(s);
	struct timeval tv = {.tv_sec = left / 1000,
	                     .tv_usec = (left % 1000) * 1000};

	if (left == 0)
		return timed_out(s);
	if (setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return fail(s, "cannot set the anvil socket timeout: %s",
		            strerror(errno));
	return KG_ANVIL_OK;
}

/* With SO_PASSCRED set, the kernel attaches the writing process's
 * credentials to everything it queues for us; a sender cannot claim
 * another pid without CAP_SYS_ADMIN. That process is anvil itself, whose
 * parent is the running master however Dovecot was started: the pid that
 * called listen() (SO_PEERCRED) is gone once a master that was started
 * without -F has detached. */
static enum kg_anvil_status ask_for_credentials(struct exchange *s)
{
	int on = 1;

	if (setsockopt(s->fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
		return fail(s, "cannot ask for anvil's credentials: %s",
		            strerror(errno));
	return KG_ANVIL_OK;
}

/* Every byte of one dump must come from one process: a stream carrying
 * data from several writers is not anvil answering. */
static enum kg_anvil_status note_writer(struct exchange *s, struct msghdr *mh)
{
	struct cmsghdr *c;
	struct ucred cred;

	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    c->cmsg_type != SCM_CREDENTIALS ||
		    c->cmsg_len != CMSG_LEN(sizeof(cred)))
			continue;
		memcpy(&cred, CMSG_DATA(c), sizeof(cred));
		if (s->writer != 0 && s->writer != cred.pid)
			return fail(s,
			            "anvil's dump came from more than one "
			            "process (pids %d and %d)",
			            (int)s->writer, (int)cred.pid);
		if (s->expect != 0 && s->expect != cred.pid)
			return fail(s,
			            "anvil answered from pid %d, not from pid "
			            "%d, which wrote the dump",
			            (int)cred.pid, (int)s->expect);
		s->writer = cred.pid;
	}
	return KG_ANVIL_OK;
}

static enum kg_anvil_status anvil_connect(struct exchange *s, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);

	if (len >= sizeof(sa.sun_path))
		return fail(s, "anvil socket path too long (%zu bytes)", len);
	memcpy(sa.sun_path, path, len + 1);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return fail(s, "cannot create a socket for anvil: %s",
		            strerror(errno));
	if (ask_for_credentials(s) != KG_ANVIL_OK ||
	    set_send_timeout(s) != KG_ANVIL_OK)
		return KG_ANVIL_FAILED;
	if (connect(s->fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0)
		return KG_ANVIL_OK;
	if (errno == EAGAIN)
		return timed_out(s);
	snprintf(s->err, s->errlen, "%s", strerror(errno));
	return KG_ANVIL_UNREACHABLE;
}

static enum kg_anvil_status send_all(struct exchange *s, const char *buf,
                                     size_t len)
{
	ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);

	if (n < 0 && errno == EAGAIN)
		return timed_out(s);
	if (n < 0)
		return fail(s, "cannot send to anvil: %s", strerror(errno));
	if ((size_t)n != len)
		return fail(s, "cannot send to anvil: short write");
	return KG_ANVIL_OK;
}

/* Each pass either returns or waits at most until the deadline, so the
 * loop ends by then at the latest. */
static enum kg_anvil_status wait_readable(struct exchange *s)
{
	struct pollfd pfd = {.fd = s->fd, .events = POLLIN};

	for (;;) {
		int left = remaining_ms(s);
		int n;

		if (left == 0)
			return timed_out(s);
		n = poll(&pfd, 1, left);
		if (n > 0)
			return KG_ANVIL_OK;
		if (n == 0)
			return timed_out(s);
		if (errno != EINTR)
			return fail(s, "waiting for anvil failed: %s",
			            strerror(errno));
	}
}

/* A pause of at most PACE_MS, never past the deadline. poll without
 * descriptors is a sleep the sandbox allows. */
static void pace(const struct exchange *s)
{
	int left = remaining_ms(s);

	poll(NULL, 0, left < PACE_MS ? left : PACE_MS);
}

/* Appends what anvil has queued to b, without waiting. */
static enum kg_anvil_status take_queued(struct exchange *s, struct inbuf *b)
{
	struct iovec iov = {.iov_base = b->p + b->tail,
	                    .iov_len = b->cap - b->tail};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} control;
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = control.buf,
	                    .msg_controllen = sizeof(control.buf)};
	ssize_t n;

	if (iov.iov_len == 0)
		return KG_ANVIL_OK;
	b->taken_us = now_us();
	n = recvmsg(s->fd, &mh, MSG_DONTWAIT);
	if (n > 0) {
		b->tail += (size_t)n;
		b->total += (uint64_t)n;
		return note_writer(s, &mh);
	}
	if (n == 0 && b->total == 0)
		return KG_ANVIL_HUNG_UP;
	if (n == 0)
		return fail(s, "anvil closed the connection mid-dump");
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return KG_ANVIL_OK;
	return fail(s, "reading from anvil failed: %s", strerror(errno));
}

/* Everything read is parsed and nothing more is queued. */
static enum kg_anvil_status wait_for_more(struct exchange *s, bool *paused)
{
	if (!*paused) {
		*paused = true;
		pace(s);
		return KG_ANVIL_OK;
	}
	*paused = false;
	return wait_readable(s);
}

/* Anvil sends nothing after the empty line; whatever might follow it is
 * left unused. Every pass either parses, or waits, or fails once the
 * deadline has passed, so the loop ends by then at the latest. */
static enum kg_anvil_status read_dump(struct exchange *s, struct inbuf *b,
                                      struct kg_dump_parser *p,
                                      const struct kg_dump_sink *sink)
{
	bool paused = false;

	while (!p->done) {
		size_t slice, used;

		if (remaining_ms(s) == 0)
			return timed_out(s);
		if (b->head == b->tail)
			b->head = b->tail = 0;
		if (b->head == b->tail || now_us() - b->taken_us >= DRAIN_US) {
			enum kg_anvil_status st = take_queued(s, b);

			if (st != KG_ANVIL_OK)
				return st;
		}
		if (b->head == b->tail) {
			if (wait_for_more(s, &paused) != KG_ANVIL_OK)
				return KG_ANVIL_FAILED;
			continue;
		}
		paused = false;
		slice = b->tail - b->head;
		if (slice > SLICE_BYTES)
			slice = SLICE_BYTES;
		if (kg_dump_feed(p, b->p + b->head, slice, sink, &used) != 0) {
			snprintf(s->err, s->errlen, "%s",
			         "processing the anvil dump failed");
			return KG_ANVIL_STOPPED;
		}
		b->head += used;
	}
	return KG_ANVIL_OK;
}

static const char *proto_name(uint8_t proto)
{
	return proto == KG_PROTO_2 ? "protocol 2 (Dovecot 2.4)"
	                           : "protocol 1 (Dovecot 2.3)";
}

/* One conversation in protocol proto. KG_ANVIL_HUNG_UP: anvil speaks the
 * other one (protocol 1's request got a protocol-2 VERSION; protocol 2's
 * got nothing before anvil hung up). */
static enum kg_anvil_status dump_once(struct exchange *s, struct inbuf *b,
                                      const char *path, uint8_t proto,
                                      struct kg_dump_parser *p,
                                      const struct kg_dump_sink *sink)
{
	const char *req = proto == KG_PROTO_2 ? request_v2 : request_v1;
	size_t len = proto == KG_PROTO_2 ? sizeof(request_v2) - 1
	                                 : sizeof(request_v1) - 1;
	enum kg_anvil_status st;

	kg_dump_init(p, proto);
	*b = (struct inbuf){.p = b->p, .cap = b->cap};
	s->writer = 0;
	st = anvil_connect(s, path);
	if (st == KG_ANVIL_OK)
		st = send_all(s, req, len);
	if (st == KG_ANVIL_OK)
		st = read_dump(s, b, p, sink);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (st == KG_ANVIL_OK && p->other_proto)
		return KG_ANVIL_HUNG_UP;
	if (st == KG_ANVIL_OK && p->bad_version)
		return fail(s, "anvil's first line is not %s's VERSION line",
		            proto_name(proto));
	return st;
}

static uint8_t other(uint8_t proto)
{
	return proto == KG_PROTO_2 ? KG_PROTO_1 : KG_PROTO_2;
}

enum kg_anvil_status kg_anvil_dump(const struct kg_anvil_target *t,
                                   const struct kg_dump_sink *sink,
                                   struct kg_dump_parser *p, pid_t *writer,
                                   char *err, size_t errlen)
{
	struct exchange s = {.fd = -1,
	                     .timeout_ms = t->timeout_ms,
	                     .deadline_ms = now_ms() + t->timeout_ms,
	                     .err = err,
	                     .errlen = errlen};
	struct inbuf b = {.cap = READ_BUF_SIZE};
	uint8_t proto = t->pinned ? t->pinned : *t->spoken ? *t->spoken : 1;
	enum kg_anvil_status st;

	kg_dump_init(p, proto);
	*writer = 0;
	if (t->timeout_ms <= 0)
		return fail(&s, "anvil timeout must be positive");
	b.p = malloc(b.cap);
	if (b.p == NULL)
		return fail(&s, "out of memory for the anvil read buffer");
	st = dump_once(&s, &b, t->path, proto, p, sink);
	if (st == KG_ANVIL_HUNG_UP && !t->pinned) {
		proto = other(proto);
		st = dump_once(&s, &b, t->path, proto, p, sink);
	}
	if (st == KG_ANVIL_HUNG_UP)
		st = t->pinned ? fail(&s,
		                      "anvil does not speak %s, which the "
		                      "instance's protocol setting names",
		                      proto_name(proto))
		               : fail(&s, "anvil answers neither protocol 1 "
		                          "nor protocol 2");
	if (st == KG_ANVIL_OK)
		*t->spoken = proto;
	free(b.p);
	*writer = s.writer;
	return st;
}

/* A reply line of anvil's: one line, read within the deadline. */
struct line_reader {
	char buf[256];
	size_t len;
};

/* Reads until buf holds a whole line; moves it to line (NUL-terminated,
 * without '\n') and keeps what follows. */
static enum kg_anvil_status read_line(struct exchange *s, struct line_reader *r,
                                      char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		struct inbuf b = {.p = r->buf,
		                  .cap = sizeof(r->buf),
		                  .tail = r->len,
		                  .total = 1};
		enum kg_anvil_status st;

		if (nl != NULL) {
			size_t n = (size_t)(nl - r->buf);

			if (n >= cap)
				return fail(s,
				            "anvil's reply line is too long");
			memcpy(line, r->buf, n);
			line[n] = '\0';
			r->len -= n + 1;
			memmove(r->buf, nl + 1, r->len);
			return KG_ANVIL_OK;
		}
		if (r->len == sizeof(r->buf))
			return fail(s, "anvil's reply line is too long");
		if (wait_readable(s) != KG_ANVIL_OK)
			return KG_ANVIL_FAILED;
		st = take_queued(s, &b);
		if (st == KG_ANVIL_OK && b.tail == r->len)
			continue; /* woken for nothing */
		if (st != KG_ANVIL_OK)
			return st == KG_ANVIL_HUNG_UP
			               ? fail(s, "anvil closed the connection")
			               : st;
		r->len = b.tail;
	}
}

/* "KICK-USER \t USER \t GUID \n", the user escaped. */
static size_t kick_command(const struct kg_anvil_kick *k, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	struct kg_anvil_out o = {.buf = buf, .cap = cap};
	char guid[32];

	for (size_t i = 0; i < 16; i++) {
		guid[2 * i] = hex[k->guid[i] >> 4];
		guid[2 * i + 1] = hex[k->guid[i] & 15];
	}
	kg_anvil_put(&o, "KICK-USER\t", 10);
	kg_anvil_put_escaped(&o, k->user, k->user_len);
	kg_anvil_put(&o, "\t", 1);
	kg_anvil_put(&o, guid, sizeof(guid));
	kg_anvil_put(&o, "\n", 1);
	return o.full ? 0 : o.len;
}

static enum kg_anvil_status kick_each(struct exchange *s,
                                      const struct kg_anvil_kick *k, size_t n,
                                      size_t *answered)
{
	/* The longest command: a user of KG_USER_MAX bytes, all escaped. */
	size_t cap = 2 * (size_t)KG_USER_MAX + 64;
	char *cmd = malloc(cap);
	struct line_reader r = {.len = 0};
	char line[sizeof(r.buf)];
	enum kg_anvil_status st;

	if (cmd == NULL)
		return fail(s, "out of memory for a kick command");
	st = send_all(s, KG_ANVIL2_HELLO, sizeof(KG_ANVIL2_HELLO) - 1);
	if (st == KG_ANVIL_OK)
		st = read_line(s, &r, line, sizeof(line));
	if (st == KG_ANVIL_OK && !kg_anvil2_version_ok(line, strlen(line)))
		st = fail(s, "anvil's first line is not protocol 2's VERSION");
	for (size_t i = 0; i < n && st == KG_ANVIL_OK; i++) {
		size_t len = kick_command(&k[i], cmd, cap);

		st = len == 0 ? fail(s, "a kick command does not fit")
		              : send_all(s, cmd, len);
		if (st == KG_ANVIL_OK)
			st = read_line(s, &r, line, sizeof(line));
		if (st == KG_ANVIL_OK)
			(*answered)++;
	}
	free(cmd);
	return st;
}

enum kg_anvil_status kg_anvil_kick(const struct kg_anvil_target *t, pid_t anvil,
                                   const struct kg_anvil_kick *k, size_t n,
                                   size_t *answered, char *err, size_t errlen)
{
	struct exchange s = {.fd = -1,
	                     .expect = anvil,
	                     .timeout_ms = t->timeout_ms,
	                     .deadline_ms = now_ms() + t->timeout_ms,
	                     .err = err,
	                     .errlen = errlen};
	enum kg_anvil_status st;

	*answered = 0;
	if (t->timeout_ms <= 0)
		return fail(&s, "anvil timeout must be positive");
	st = anvil_connect(&s, t->path);
	if (st == KG_ANVIL_OK)
		st = kick_each(&s, k, n, answered);
	if (s.fd >= 0)
		close(s.fd);
	return st;
}
