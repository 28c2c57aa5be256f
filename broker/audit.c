#include "audit.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"

/* Long enough for the fixed fields and a readable share of the lists; a
 * longer list is cut with a "..." and the counts stay exact. */
#define AUDIT_LINE_MAX 4096

static bool audit_syslog;

void kg_audit_open(bool to_syslog)
{
	audit_syslog = to_syslog && access("/dev/log", W_OK) == 0;
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

/* User names and globs come from remote users: anything but printable
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

static void put_request(struct line *l, const struct kg_request *r)
{
	char net[KG_NET_STRLEN];

	put(l, " op=%s", r->op == KG_OP_KICK ? "kick" : "who");
	if (r->glob_len > 0) {
		put(l, " glob=\"");
		put_escaped(l, r->glob, r->glob_len);
		put(l, "\"");
	}
	if (r->net.family != KG_AF_NONE) {
		kg_net_format(&r->net, net);
		put(l, " net=%s", net);
	}
	if (r->flags & KG_REQ_FORCE)
		put(l, " force=yes");
	if (r->flags & KG_REQ_DRY_RUN)
		put(l, " dry_run=yes");
	if (r->flags & KG_REQ_SEPARATE)
		put(l, " separate=yes");
}

static void put_caller(struct line *l, uid_t uid, pid_t pid)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	put(l, "uid=%u", (unsigned)uid);
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL) {
		put(l, " user=");
		put_escaped(l, res->pw_name, strlen(res->pw_name));
	}
	put(l, " pid=%d", (int)pid);
}

void kg_audit_write(const struct kg_audit_rec *r)
{
	static struct line l;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	l.len = 0;
	l.cut = false;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	put(&l, "audit: time=%s ", when);
	put_caller(&l, r->uid, r->pid);
	put(&l, " rule=%s instance=%s", r->rule ? r->rule : "-",
	    r->instance ? r->instance : "-");
	if (r->req != NULL)
		put_request(&l, r->req);
	put(&l, " outcome=%s status=%u conns=%u npids=%zu nusers=%zu",
	    r->outcome, r->status, r->conns, r->n_pids, r->n_users);
	put(&l, " pids=");
	for (size_t i = 0; i < r->n_pids; i++)
		put(&l, "%s%u", i ? "," : "", r->pids[i]);
	put(&l, " users=");
	for (size_t i = 0; i < r->n_users; i++) {
		put(&l, "%s", i ? "," : "");
		put_escaped(&l, r->users[i].s, r->users[i].len);
	}
	if (audit_syslog)
		syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", l.buf);
	else
		fprintf(stderr, "kickgated: %s\n", l.buf);
}
