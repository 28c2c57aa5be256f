/* SPDX-License-Identifier: MIT */
#include "broker/serve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "broker/anvil_client.h"
#include "broker/audit.h"
#include "broker/instances.h"
#include "broker/job.h"
#include "broker/kick.h"
#include "broker/peer.h"
#include "broker/who.h"
#include "policy/policy.h"
#include "proto/log.h"
#include "proto/reply_send.h"
#include "proto/request_norm.h"
#include "sandbox/sandbox.h"

/* Large per-request state lives here, not on the stack. */
static struct kg_peer peer;
static struct kg_dump_parser parser;
static struct kg_reply_writer writer;

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

/* The instance asked for, and whether the rule that decides for the
 * caller there allows them at all. */
static bool may_use_instance(struct kg_job *job)
{
	if (!resolve_instance(job))
		return false;
	job->instance_name = job->cfg->instances[job->instance].name;
	kg_policy_decide(job->cfg, &job->caller, job->instance, &job->dec);
	if (job->dec.allowed)
		return true;
	kg_job_refuse(job, KG_EXIT_NOPERM, "denied",
	              "permission denied: no rule allows this caller on "
	              "this instance");
	return false;
}

static bool may_who(struct kg_job *job)
{
	if (!may_use_instance(job))
		return false;
	if (job->dec.may_who)
		return true;
	kg_job_refuse(job, KG_EXIT_NOPERM, "denied",
	              "permission denied: listing sessions is not allowed");
	return false;
}

static bool may_kick(struct kg_job *job)
{
	if (!may_use_instance(job))
		return false;
	if (!(job->req.flags & KG_REQ_FORCE) || job->dec.may_force)
		return true;
	kg_job_refuse(job, KG_EXIT_NOPERM, "denied",
	              "permission denied: -f is not allowed");
	return false;
}

static void *who_new(const struct kg_job *job)
{
	return kg_who_new(&job->req, &job->dec.scope);
}

static int who_finish(void *who, void *res)
{
	return kg_who_finish(who, res);
}

static void who_reply(struct kg_job *job, void *who, void *res)
{
	const struct kg_who_result *wr = res;
	struct kg_who_row row;

	/* A row too large to send is left out and counted by the writer,
	 * and kg_job_finish turns the reply into an error; the rows after it
	 * are still sent. Only a client that is gone ends the loop. */
	for (size_t i = 0; i < wr->n_rows && !job->w->failed; i++) {
		kg_who_row(who, i, &row);
		kg_rw_who(job->w, &row);
	}
	job->result.outcome = "listed";
	job->result.end.conns = wr->conns;
	job->result.end.pids = wr->pids;
	kg_job_finish(job);
}

static void who_free(void *who)
{
	kg_who_free(who);
}

static void serve_who(struct kg_job *job)
{
	static const struct kg_dump_op op = {.create = who_new,
	                                     .add = kg_who_add,
	                                     .finish = who_finish,
	                                     .reply = who_reply,
	                                     .free = who_free};
	struct kg_who_result res;

	kg_job_serve_dump(job, &op, &res);
}

/* The broker's operations. check answers (refuses) a request the caller
 * may not make and returns false; serve answers the rest. */
static const struct operation {
	uint8_t op;
	bool (*check)(struct kg_job *job);
	void (*serve)(struct kg_job *job);
} operations[] = {
        {KG_OP_KICK, may_kick, kg_kick_serve},
        {KG_OP_WHO, may_who, serve_who},
        /* Names no instance: the handler asks the policy about each. */
        {KG_OP_INSTANCES, NULL, kg_instances_serve},
};

static void dispatch(struct kg_job *job)
{
	for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]);
	     i++) {
		const struct operation *o = &operations[i];

		if (o->op != job->req.op)
			continue;
		if (o->check == NULL || o->check(job))
			o->serve(job);
		return;
	}
	/* The decoder admits only the operations above; a privileged
	 * process still answers rather than trusts that. */
	kg_job_refuse(job, KG_EXIT_USAGE, "malformed", "malformed request");
}

/* The supervisor hands over only sockets it accepted on the listener:
 * anything else means the daemon is not running kickgated's code. The
 * broker then stops before any privileged step; the supervisor sees it
 * end and exits 1, and the service manager restarts the daemon. */
static _Noreturn void refuse_sender(const char *what)
{
	kg_log_err("supervisor passed fd that is not a client connection: "
	           "%s; stopping",
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
	job.instance = KG_INSTANCE_DEFAULT;
	job.parser = &parser;
	job.w = &writer;
	kg_dump_init(&parser, 1);
	kg_reply_out_init(&job.out, client_fd);
	kg_rw_init(&writer, kg_reply_out_emit, &job.out);
	status = kg_peer_read(client_fd, &st->clients, &peer, &why);
	if (status == KG_PEER_NOT_CLIENT)
		refuse_sender(why);
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
	job.client_pid = peer.pid;
	/* A frontend validated this already; the broker trusts it no more
	 * than a client. A working frontend answers bad requests itself, so
	 * one that passes such bytes on is broken or taken over: logged,
	 * and it has ended already, as every frontend after one request. */
	status = KG_EXIT_USAGE;
	why = "malformed request";
	job.decoded = kg_request_decode(msg, len, &job.req) == KG_WIRE_OK;
	if (job.decoded)
		status = kg_request_normalize(&job.req, &why);
	if (status != KG_EXIT_OK) {
		kg_log_warn("the frontend of client pid %d (uid %u) passed on "
		            "a request it should have refused: %s",
		            (int)peer.pid, (unsigned int)peer.uid, why);
		kg_job_refuse(&job, (uint8_t)status, "malformed", why);
		return;
	}
	dispatch(&job);
}

/* Receives one message and the client fd it carries. Returns the fd, -1
 * for a message to drop, and exits when the supervisor's end is closed:
 * after a reload, once every request for this broker is sent. */
static int receive(int supervisor_fd, uint8_t *buf, size_t cap, size_t *len)
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
	ssize_t n = recvmsg(supervisor_fd, &mh, MSG_CMSG_CLOEXEC);
	int fd = -1;
	bool extra = false;

	if (n == 0) {
		kg_log_info("the supervisor closed the channel; stopping");
		exit(0);
	}
	if (n < 0 && errno != EINTR) {
		kg_log_err("recvmsg: %s; stopping", strerror(errno));
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
			           "supervisor");
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
		int fd = receive(st->supervisor_fd, buf, sizeof(buf), &len);

		if (fd < 0)
			continue;
		kg_broker_serve(st, fd, buf, len);
		close(fd);
	}
}
