#include "anvil_client.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Both lines go in one write: anvil reads them as one request. */
static const char anvil_request[] = "VERSION\tanvil\t1\t0\nCONNECT-DUMP\n";

/* One read takes whatever anvil has queued, which is at most its socket
 * send buffer (about 208 KiB by default); a buffer this large always takes
 * all of it, so a dump of a million lines (about 54 MB) costs some 250
 * reads. A larger buffer saves nothing more. */
#define READ_BUF_SIZE (256 * 1024)

struct exchange {
	int fd;
	int timeout_ms;
	int64_t deadline_ms;
	char *err;
	size_t errlen;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	if (set_send_timeout(s) != KG_ANVIL_OK)
		return KG_ANVIL_FAILED;
	if (connect(s->fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0)
		return KG_ANVIL_OK;
	if (errno == EAGAIN)
		return timed_out(s);
	return fail(s, "cannot connect to anvil at %s: %s", path,
	            strerror(errno));
}

static enum kg_anvil_status send_request(struct exchange *s)
{
	size_t len = sizeof(anvil_request) - 1;
	ssize_t n = send(s->fd, anvil_request, len, MSG_NOSIGNAL);

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

/* Anvil sends nothing after the empty line; whatever might follow it in
 * the last read is left unused. */
static enum kg_anvil_status read_dump(struct exchange *s, char *buf,
                                      struct kg_dump_parser *p, kg_conn_fn fn,
                                      void *ctx)
{
	while (!p->done) {
		ssize_t n;
		size_t used;

		if (wait_readable(s) != KG_ANVIL_OK)
			return KG_ANVIL_FAILED;
		n = read(s->fd, buf, READ_BUF_SIZE);
		if (n == 0)
			return fail(s, "anvil closed the connection mid-dump");
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(s, "reading from anvil failed: %s",
			            strerror(errno));
		if (kg_dump_feed(p, buf, (size_t)n, fn, ctx, &used) != 0) {
			snprintf(s->err, s->errlen, "%s",
			         "processing the anvil dump failed");
			return KG_ANVIL_STOPPED;
		}
	}
	return KG_ANVIL_OK;
}

enum kg_anvil_status kg_anvil_dump(const char *path, int timeout_ms,
                                   kg_conn_fn fn, void *ctx,
                                   struct kg_dump_parser *p, char *err,
                                   size_t errlen)
{
	struct exchange s = {.fd = -1,
	                     .timeout_ms = timeout_ms,
	                     .deadline_ms = now_ms() + timeout_ms,
	                     .err = err,
	                     .errlen = errlen};
	enum kg_anvil_status st;
	char *buf;

	kg_dump_init(p);
	if (timeout_ms <= 0)
		return fail(&s, "anvil timeout must be positive");
	buf = malloc(READ_BUF_SIZE);
	if (buf == NULL)
		return fail(&s, "out of memory for the anvil read buffer");
	st = anvil_connect(&s, path);
	if (st == KG_ANVIL_OK)
		st = send_request(&s);
	if (st == KG_ANVIL_OK)
		st = read_dump(&s, buf, p, fn, ctx);
	if (s.fd >= 0)
		close(s.fd);
	free(buf);
	return st;
}
