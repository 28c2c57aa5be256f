#include "broker_proc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include "anvil_client.h"
#include "audit.h"
#include "instances.h"
#include "job.h"
#include "kick.h"
#include "log.h"
#include "peer.h"
#include "policy.h"
#include "reply_send.h"
#include "request_norm.h"
#include "sandbox.h"
#include "who.h"

/* Large per-request state lives here, not on the stack. */
static struct kg_peer peer;
static struct kg_dump_parser parser;
static struct kg_reply_writer writer;

static void set_send_timeout(int fd, unsigned int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,
	                     .tv_usec = (ms % 1000) * 1000};

	/* A client that stops reading must not stall the broker. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

void kg_job_refuse(struct kg_job *job, uint8_t status, const char *outcome,
                   const char *text)
{
	struct kg_reply_end end = {.status = status};

	kg_end_set_error(&end, text);
	kg_job_finish(job, &end, outcome);
}

void kg_job_dump_error(struct kg_job *job, const char *err)
{
	if (err[0] != '\0')
		kg_job_refuse(job, KG_EXIT_UNAVAILABLE, "error", err);
	else
		kg_job_refuse(job, KG_EXIT_SOFTWARE, "error", "out of memory");
}

void kg_job_finish(struct kg_job *job, struct kg_reply_end *end,
                   const char *outcome)
{
	end->malformed = (uint32_t)job->parser->malformed;
	if (kg_rw_end(job->w, end) < 0)
		kg_log_err("client pid %d went away before the reply ended",
		           (int)job->audit.pid);
	job->audit.outcome = outcome;
	job->audit.status = end->status;
	kg_audit_write(&job->audit);
}

/* -a names an instance by its anvil path or by its name; without it the
 * request is for the default instance. */
static bool resolve_instance(struct kg_job *job)
{
	const struct kg_request *r = &job->req;
	char text[KG_ERRTEXT_MAX + 1];

	if (r->path_len > 0)
		job->instance = kg_config_instance_by_path(job->cfg, r->path);
	else if (r->instance_len > 0)
		job->instance =
		        kg_config_instance_by_name(job->cfg, r->instance);
	if (job->instance >= 0)
		return true;
	if (r->path_len > 0)
		snprintf(text, sizeof(text),
		         "anvil socket %s is not a configured instance",
		         r->path);
	else
		snprintf(text, sizeof(text),
		         "there is no instance named '%s'; 'kickgate "
		         "instances' lists those you may use",
		         r->instance);
	kg_job_refuse(job, KG_EXIT_NOPERM, "denied", text);
	return false;
}

static bool authorize(struct kg_job *job)
{
	const struct kg_request *r = &job->req;

	if (!resolve_instance(job))
		return false;
	job->audit.instance = job->cfg->instances[job->instance].name;
	kg_policy_decide(job->cfg, &job->caller, job->instance, &job->dec);
	job->audit.rule = job->dec.rule;
	if (!job->dec.allowed) {
		kg_job_refuse(
		        job, KG_EXIT_NOPERM, "denied",
		        "permission denied: no rule allows this caller on "
		        "this instance");
		return false;
	}
	if (r->op == KG_OP_WHO && !job->dec.may_who) {
		kg_job_refuse(
		        job, KG_EXIT_NOPERM, "denied",
		        "permission denied: listing sessions is not allowed");
		return false;
	}
	if ((r->flags & KG_REQ_FORCE) && !job->dec.may_force) {
		kg_job_refuse(job, KG_EXIT_NOPERM, "denied",
		              "permission denied: -f is not allowed");
		return false;
	}
	return true;
}

static void serve_who(struct kg_job *job)
{
	struct kg_who *who = kg_who_new(&job->req, &job->dec.scope);
	struct kg_who_result res;
	struct kg_reply_end end = {.status = KG_EXIT_OK};
	struct kg_who_row row;
	char err[KG_ERRTEXT_MAX + 1];

	if (who == NULL) {
		kg_job_dump_error(job, "");
		return;
	}
	if (kg_broker_dump(job, kg_who_add, who, err, sizeof(err)) < 0 ||
	    kg_who_finish(who, &res) < 0) {
		kg_job_dump_error(job, err);
		kg_who_free(who);
		return;
	}
	for (size_t i = 0; i < res.n_rows; i++) {
		kg_who_row(who, i, &row);
		if (kg_rw_who(job->w, &row) < 0)
			break;
	}
	end.conns = res.conns;
	end.pids = res.pids;
	job->audit.conns = res.conns;
	kg_job_finish(job, &end, "listed");
	kg_who_free(who);
}

/* The frontend hands over only sockets it accepted on the listener: one
 * that sends anything else runs code that is not kickgated's. As
 * OpenSSH's monitor does with a misbehaving unprivileged child, the
 * broker then stops before any privileged step; the supervisor sees the
 * pair end and exits 1, and the service manager restarts the daemon with
 * a fresh frontend. */
static _Noreturn void refuse_frontend(const char *what)
{
	kg_log_err("frontend passed fd that is not a client connection: %s; "
	           "stopping",
	           what);
	exit(1);
}

void kg_broker_serve(const struct kg_broker_start *st, int client_fd,
                     const uint8_t *msg, size_t len)
{
	static struct kg_job job;
	const struct kg_config *cfg = st->cfg;
	const char *why;
	int status;

	memset(&job, 0, sizeof(job));
	job.cfg = cfg;
	job.fd = client_fd;
	job.instance = KG_INSTANCE_DEFAULT;
	job.audit.outcome = "error";
	job.parser = &parser;
	job.w = &writer;
	kg_dump_init(&parser);
	kg_rw_init(&writer, kg_send_packet, &job.fd);
	status = kg_peer_read(client_fd, &st->clients, &peer, &why);
	if (status == KG_PEER_NOT_CLIENT)
		refuse_frontend(why);
	if (status < 0) {
		kg_log_err("client identity: %s", strerror(errno));
		kg_reply_error(client_fd, KG_EXIT_SOFTWARE,
		               "cannot read the caller's identity");
		return;
	}
	job.caller = (struct kg_caller){.uid = peer.uid,
	                                .gid = peer.gid,
	                                .groups = peer.groups,
	                                .n_groups = peer.n_groups};
	job.audit.uid = peer.uid;
	job.audit.pid = peer.pid;
	set_send_timeout(client_fd, cfg->client_timeout_ms);
	/* The frontend validated this already; the broker trusts it no more
	 * than a client. */
	if (kg_request_decode(msg, len, &job.req) != KG_WIRE_OK) {
		kg_job_refuse(&job, KG_EXIT_USAGE, "malformed",
		              "malformed request");
		return;
	}
	job.audit.req = &job.req;
	status = kg_request_normalize(&job.req, &why);
	if (status != KG_EXIT_OK) {
		kg_job_refuse(&job, (uint8_t)status, "malformed", why);
		return;
	}
	if (job.req.op == KG_OP_INSTANCES) {
		kg_instances_serve(&job);
		return;
	}
	if (!authorize(&job))
		return;
	if (job.req.op == KG_OP_WHO)
		serve_who(&job);
	else
		kg_kick_serve(&job);
}

/* The caller can do nothing about an anvil the daemon cannot open, so
 * the text says whose the problem is, and what its administrator should
 * check. err holds the system's reason on entry. */
static void unreachable_text(const struct kg_job *job, char *err, size_t errlen)
{
	const struct kg_instance *in = &job->cfg->instances[job->instance];
	char why[KG_ERRTEXT_MAX + 1];

	snprintf(why, sizeof(why), "%s", err);
	snprintf(err, errlen,
	         "kickgated cannot reach Dovecot's anvil at %s for instance "
	         "%s: %s; is Dovecot running? does the broker's account have "
	         "the anvil socket's group?",
	         in->anvil, in->name, why);
}

int kg_broker_dump(struct kg_job *job, kg_conn_fn fn, void *ctx, char *err,
                   size_t errlen)
{
	const char *path = job->cfg->instances[job->instance].anvil;
	enum kg_anvil_status st;

	err[0] = '\0';
	st = kg_anvil_dump(path, (int)job->cfg->anvil_timeout_ms, fn, ctx,
	                   job->parser, &job->anvil, err, errlen);
	if (st == KG_ANVIL_STOPPED)
		err[0] = '\0'; /* the consumer ran out of memory */
	if (st == KG_ANVIL_UNREACHABLE)
		unreachable_text(job, err, errlen);
	if (job->parser->malformed > 0)
		kg_log_err(
		        "anvil %s: %llu malformed line(s) skipped, first: %s",
		        path, (unsigned long long)job->parser->malformed,
		        kg_line_strerror(job->parser->first_err));
	return st == KG_ANVIL_OK ? 0 : -1;
}

/* Receives one message and the client fd it carries. Returns the fd, -1
 * for a message to drop, and exits when the frontend is gone. */
static int receive(int frontend_fd, uint8_t *buf, size_t cap, size_t *len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	ssize_t n = recvmsg(frontend_fd, &mh, MSG_CMSG_CLOEXEC);
	int fd = -1;
	bool extra = false;

	if (n == 0 || (n < 0 && errno != EINTR)) {
		kg_log_err("frontend exited; stopping");
		exit(1);
	}
	/* Close every fd that came; keep one only if the message is whole
	 * and carried exactly one. */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		size_t nfd;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int got;

			memcpy(&got, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
			if (fd < 0 && !extra) {
				fd = got;
			} else {
				close(got);
				extra = true;
			}
		}
	}
	if (n < 0 || fd < 0 || extra ||
	    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		if (fd >= 0)
			close(fd);
		if (n > 0)
			kg_log_err("dropped a malformed message from the "
			           "frontend");
		return -1;
	}
	*len = (size_t)n;
	return fd;
}

void kg_broker_main(const struct kg_broker_start *st)
{
	uint8_t buf[KG_REQ_MAX + 1];
	size_t len;

	kg_audit_open(st->cfg->audit == KG_AUDIT_SYSLOG ? _PATH_LOG : NULL);
	if (kg_sandbox_broker(&st->cfg->broker) < 0)
		return;
	for (;;) {
		int fd = receive(st->frontend_fd, buf, sizeof(buf), &len);

		if (fd < 0)
			continue;
		kg_broker_serve(st, fd, buf, len);
		close(fd);
	}
}
