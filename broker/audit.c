/* SPDX-License-Identifier: MIT */
#include "broker/audit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "broker/uidnames.h"
#include "proto/addr.h"
#include "proto/log.h"

/* Long enough for the fixed fields and a readable share of the lists; a
 * longer list is cut with a "..." and the counts stay exact. */
#define AUDIT_LINE_MAX 4096
/* "<PRI>Mmm dd hh:mm:ss kickgated[PID]: " with room to spare. */
#define SYSLOG_HEAD_MAX 64
#define SYSLOG_PRI      (LOG_AUTHPRIV | LOG_NOTICE)
/* A syslog daemon that stops reading holds the broker this long per
 * line; then the line goes to standard error. */
#define SYSLOG_SEND_TIMEOUT_MS 1000
#define STDERR_PREFIX          "kickgated: "

/* The audit keeps its own syslog socket rather than use syslog(3), which
 * drops a line it cannot send without a word: here such a line goes to
 * standard error, so none is lost while either is writable. */
static struct {
	bool to_syslog;
	struct sockaddr_un addr;
	int fd; /* connected syslog socket, or -1 */
	struct kg_uidnames names;
} sink = {.fd = -1};

static void load_names(void)
{
	int err;

	kg_uidnames_free(&sink.names);
	err = kg_uidnames_load(&sink.names);
	if (err != 0)
		kg_log_err("audit: reading account names stopped after %zu: "
		           "%s",
		           sink.names.n, strerror(err));
	else if (sink.names.n == 0)
		kg_log_err("audit: no account names could be read; lines "
		           "name callers by uid only");
	if (sink.names.left_out > 0)
		kg_log_err("audit: %zu account(s) left out (empty name, name "
		           "over %d bytes, or over %zu accounts): their lines "
		           "carry user=-",
		           sink.names.left_out, KG_UIDNAME_MAX,
		           KG_UIDNAMES_MAX);
}

void kg_audit_open(const char *syslog_path)
{
	if (sink.fd >= 0)
		close(sink.fd);
	sink.fd = -1;
	sink.to_syslog = false;
	if (syslog_path != NULL) {
		memset(&sink.addr, 0, sizeof(sink.addr));
		sink.addr.sun_family = AF_UNIX;
		if (strlen(syslog_path) < sizeof(sink.addr.sun_path)) {
			strcpy(sink.addr.sun_path, syslog_path);
			sink.to_syslog = true;
		} else {
			kg_log_err("audit: syslog socket path too long; "
			           "writing to standard error");
		}
	}
	load_names();
}

static int syslog_connect(void)
{
	struct timeval tv = {.tv_sec = SYSLOG_SEND_TIMEOUT_MS / 1000,
	                     .tv_usec = (SYSLOG_SEND_TIMEOUT_MS % 1000) * 1000};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (const struct sockaddr *)&sink.addr,
	            sizeof(sink.addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A syslog daemon that restarted leaves the old connection dead, so a
 * failed send connects once more before the line is given up; one that
 * did not take the line in time is not asked twice. */
static bool syslog_send(const char *msg, size_t len)
{
	for (int tries = 0; tries < 2; tries++) {
		bool stalled;

		if (sink.fd < 0 && (sink.fd = syslog_connect()) < 0)
			return false;
		if (send(sink.fd, msg, len, MSG_NOSIGNAL) == (ssize_t)len)
			return true;
		stalled = errno == EAGAIN || errno == EWOULDBLOCK;
		close(sink.fd);
		sink.fd = -1;
		if (stalled)
			return false;
	}
	return false;
}

struct line {
	char buf[AUDIT_LINE_MAX];
	size_t len;
	bool cut;
};

static void put(struct line *l, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void put(struct line *l, const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof(l->buf) - l->len;
	int n;

	if (l->cut)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room - 4) {
		l->len = sizeof(l->buf) - 5;
		memcpy(l->buf + l->len, " ...", 5);
		l->len += 4;
		l->cut = true;
		return;
	}
	l->len += (size_t)n;
}

/* User names, globs and paths come from users: anything but printable
 * ASCII other than space, ',', '"' and '\\' is written as \xNN so a name
 * cannot forge fields or lines. */
static void put_escaped(struct line *l, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x20 && c < 0x7f && c != ',' && c != '"' && c != '\\')
			put(l, "%c", c);
		else
			put(l, "\\x%02x", c);
	}
}

static const char *op_name(uint8_t op)
{
	switch (op) {
	case KG_OP_KICK:
		return "kick";
	case KG_OP_WHO:
		return "who";
	}
	return "instances";
}

static void put_request(struct line *l, const struct kg_request *r)
{
	char net[KG_NET_STRLEN];

	put(l, " op=%s", op_name(r->op));
	if (r->glob_len > 0) {
		put(l, " glob=\"");
		put_escaped(l, r->glob, r->glob_len);
		put(l, "\"");
	}
	if (r->net.family != KG_AF_NONE) {
		kg_net_format(&r->net, net);
		put(l, " net=%s", net);
	}
	if (r->field_name_len > 0) {
		put(l, " field=");
		put_escaped(l, r->field_name, r->field_name_len);
		put(l, "=\"");
		put_escaped(l, r->field_value, r->field_value_len);
		put(l, "\"");
	}
	if (r->dest.family != KG_AF_NONE) {
		kg_net_format(&r->dest, net);
		put(l, " dest=%s", net);
	}
	if (r->path_len > 0) {
		put(l, " anvil=");
		put_escaped(l, r->path, r->path_len);
	}
	if (r->instance_len > 0)
		put(l, " anvil=%s", r->instance);
	if (r->flags & KG_REQ_FORCE)
		put(l, " force=yes");
	if (r->flags & KG_REQ_DRY_RUN)
		put(l, " dry_run=yes");
	if (r->flags & KG_REQ_SEPARATE)
		put(l, " separate=yes");
}

static void put_caller(struct line *l, uid_t uid, pid_t pid)
{
	struct kg_str name;

	put(l, "uid=%u user=", (unsigned)uid);
	if (kg_uidnames_find(&sink.names, uid, &name))
		put_escaped(l, name.s, name.len);
	else
		put(l, "-");
	put(l, " pid=%d", (int)pid);
}

static void put_users(struct line *l, const char *key,
                      const struct kg_str *users, size_t n)
{
	put(l, "%s", key);
	for (size_t i = 0; i < n; i++) {
		put(l, "%s", i ? "," : "");
		put_escaped(l, users[i].s, users[i].len);
	}
}

static void build(struct line *l, const struct kg_audit_rec *r, time_t now)
{
	char when[32];
	struct tm tm;

	l->len = 0;
	l->cut = false;
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(when, "-");
	put(l, "audit: time=%s ", when);
	put_caller(l, r->uid, r->pid);
	put(l, " rule=%s instance=%s", r->rule ? r->rule : "-",
	    r->instance ? r->instance : "-");
	if (r->req != NULL)
		put_request(l, r->req);
	put(l, " outcome=%s status=%u conns=%u npids=%zu nusers=%zu",
	    r->outcome, r->status, r->conns, r->n_pids, r->n_users);
	if (r->outside > 0)
		put(l, " outside=%u", r->outside);
	if (r->reply != NULL)
		put(l, " reply=%s", r->reply);
	put(l, " pids=");
	for (size_t i = 0; i < r->n_pids; i++)
		put(l, "%s%u", i ? "," : "", r->pids[i]);
	put_users(l, " users=", r->users, r->n_users);
	if (r->n_remained > 0)
		put_users(l, " remained=", r->remained, r->n_remained);
}

/* Room for the line with either the syslog header or the stderr prefix
 * and newline. */
static char msg[SYSLOG_HEAD_MAX + AUDIT_LINE_MAX];

static bool to_syslog(const struct line *l, time_t now)
{
	char stamp[16];
	struct tm tm;
	int n;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm) == 0)
		return false;
	n = snprintf(msg, SYSLOG_HEAD_MAX, "<%d>%s kickgated[%d]: ", SYSLOG_PRI,
	             stamp, (int)getpid());
	if (n < 0 || n >= SYSLOG_HEAD_MAX)
		return false;
	memcpy(msg + n, l->buf, l->len);
	return syslog_send(msg, (size_t)n + l->len);
}

/* One write per line where the file allows, so lines of the two
 * processes sharing stderr do not interleave. */
static void to_stderr(const struct line *l)
{
	size_t len = sizeof(STDERR_PREFIX) - 1;
	const char *p = msg;

	memcpy(msg, STDERR_PREFIX, len);
	memcpy(msg + len, l->buf, l->len);
	len += l->len;
	msg[len++] = '\n';
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, p, len);

		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

void kg_audit_write(const struct kg_audit_rec *r)
{
	static struct line l;
	time_t now = time(NULL);

	build(&l, r, now);
	if (!sink.to_syslog || !to_syslog(&l, now))
		to_stderr(&l);
}
