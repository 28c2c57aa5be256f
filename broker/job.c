/* SPDX-License-Identifier: MIT */
#include "broker/job.h"

#include <stdio.h>
#include <string.h>

#include "broker/anvil_client.h"
#include "broker/audit.h"
#include "proto/log.h"
#include "proto/reply_send.h"

/* Records first, in the order the client prints them; the end follows.
 * A caller whose rule hides sessions gets none: the audit line alone
 * names the users and pids. */
static void send_records(struct kg_reply_writer *w, const struct kg_result *r)
{
	if (r->end.flags & KG_END_HIDDEN)
		return;
	for (size_t i = 0; i < r->n_kicked; i++)
		kg_rw_user(w, KG_REC_KICKED, r->kicked[i].s, r->kicked[i].len);
	for (size_t i = 0; i < r->n_warn; i++)
		kg_rw_user(w, KG_REC_WARN, r->warn[i].s, r->warn[i].len);
	for (size_t i = 0; i < r->n_remained; i++)
		kg_rw_user(w, KG_REC_REMAINED, r->remained[i].s,
		           r->remained[i].len);
	for (size_t i = 0; i < r->n_pids; i++)
		kg_rw_pid(w, r->pids[i]);
	for (size_t i = 0; i < r->n_refused; i++)
		kg_rw_refused(w, r->refused[i].pid, r->refused[i].reason);
}

/* A record the wire format cannot carry (a who row whose user name
 * leaves no room for the rest of the row) was left out: the reply must
 * not pass for complete. What was done stays recorded; the status and
 * the error say that the client has not been told all of it. */
static void note_rejected(struct kg_result *r, uint32_t rejected)
{
	char text[KG_ERRTEXT_MAX + 1];

	if (rejected == 0)
		return;
	snprintf(text, sizeof(text),
	         "the reply is incomplete: %u record(s) too large for a "
	         "reply record (a user name of nearly 64 KiB) were left out",
	         rejected);
	r->end.status = KG_EXIT_SOFTWARE;
	kg_end_set_error(&r->end, text);
}

/* Anvil's malformed lines belong to nobody the broker can name, so their
 * number is anvil's whole state: only a caller who may see every session,
 * and may list them, learns it. */
static void set_malformed(struct kg_job *job)
{
	const struct kg_scope *s = &job->dec.scope;

	if (kg_scope_is_all(s) && job->dec.may_who) {
		job->result.end.malformed = (uint32_t)job->parser->malformed;
		return;
	}
	job->result.end.malformed = 0;
	job->result.end.flags |= KG_END_SCOPED;
}

static void audit_result(const struct kg_job *job)
{
	const struct kg_result *r = &job->result;
	struct kg_audit_rec rec = {
	        .uid = job->caller.uid,
	        .pid = job->client_pid,
	        .rule = job->dec.rule,
	        .instance = job->instance_name,
	        .req = job->decoded ? &job->req : NULL,
	        .outcome = r->outcome,
	        .status = r->end.status,
	        .conns = r->end.conns,
	        .outside = r->outside,
	        .pids = r->pids,
	        .n_pids = r->n_pids,
	        .users = r->kicked,
	        .n_users = r->n_kicked,
	        .remained = r->remained,
	        .n_remained = r->n_remained,
	        .reply = !job->w->failed    ? NULL
	                 : job->out.stalled ? "stalled"
	                                    : "gone",
	};

	kg_audit_write(&rec);
}

/* The end packet as the client gets it. When sessions are hidden, the
 * counts of a kick not done (what a refused one would have taken) are
 * the audit line's alone: the caller learns only what it did. */
static struct kg_reply_end client_end(const struct kg_result *r)
{
	struct kg_reply_end end = r->end;

	if ((end.flags & KG_END_HIDDEN) && end.status != KG_EXIT_OK)
		end.conns = end.pids = 0;
	return end;
}

/* A stalled client held the broker, and every caller behind it, for as
 * long as the broker waits on anyone: an administrator should know who. */
static void log_undelivered(const struct kg_job *job)
{
	if (job->out.stalled)
		kg_log_err("client pid %d (uid %u) did not take its reply "
		           "within %lld ms; the reply was cut off after %u "
		           "packet(s)",
		           (int)job->client_pid, (unsigned int)job->caller.uid,
		           (long long)job->out.waited_ms, job->out.packets);
	else
		kg_log_err("client pid %d went away before the reply ended",
		           (int)job->client_pid);
}

void kg_job_finish(struct kg_job *job)
{
	struct kg_reply_end end;

	set_malformed(job);
	send_records(job->w, &job->result);
	note_rejected(&job->result, job->w->rejected);
	end = client_end(&job->result);
	/* A writer that failed once fails every later call, this one too. */
	if (kg_rw_end(job->w, &end) < 0)
		log_undelivered(job);
	audit_result(job);
}

void kg_job_refuse(struct kg_job *job, uint8_t status, const char *outcome,
                   const char *text)
{
	job->result = (struct kg_result){.outcome = outcome,
	                                 .end = {.status = status}};
	kg_end_set_error(&job->result.end, text);
	kg_job_finish(job);
}

void kg_job_dump_error(struct kg_job *job, const char *err)
{
	if (err[0] != '\0')
		kg_job_refuse(job, KG_EXIT_UNAVAILABLE, "error", err);
	else
		kg_job_refuse(job, KG_EXIT_SOFTWARE, "error", "out of memory");
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

/* The protocol each instance's anvil last spoke. The broker lives as
 * long as its configuration, so this is learnt once per instance and
 * again whenever its Dovecot is replaced by the other version. */
static uint8_t spoken[KG_CONF_MAX_INSTANCES];

void kg_job_target(const struct kg_job *job, struct kg_anvil_target *t)
{
	const struct kg_instance *in = &job->cfg->instances[job->instance];

	*t = (struct kg_anvil_target){.path = in->anvil,
	                              .timeout_ms =
	                                      (int)job->cfg->anvil_timeout_ms,
	                              .pinned = (uint8_t)in->protocol,
	                              .spoken = &spoken[job->instance]};
}

int kg_job_dump(struct kg_job *job, const struct kg_dump_sink *sink, char *err,
                size_t errlen)
{
	struct kg_anvil_target t;
	enum kg_anvil_status st;

	kg_job_target(job, &t);
	err[0] = '\0';
	st = kg_anvil_dump(&t, sink, job->parser, &job->anvil, err, errlen);
	job->proto = job->parser->proto;
	if (st == KG_ANVIL_STOPPED)
		err[0] = '\0'; /* the consumer ran out of memory */
	if (st == KG_ANVIL_UNREACHABLE)
		unreachable_text(job, err, errlen);
	if (job->parser->malformed > 0 && !job->malformed_logged) {
		job->malformed_logged = true;
		kg_log_err(
		        "anvil %s: %llu malformed line(s) skipped, first: %s",
		        t.path, (unsigned long long)job->parser->malformed,
		        kg_line_strerror(job->parser->first_err));
	}
	return st == KG_ANVIL_OK ? 0 : -1;
}

/* Dovecot 2.3's anvil lists neither alternative usernames nor proxy
 * destinations: a selection on them would match nothing, silently. */
static bool selection_listed(const struct kg_job *job)
{
	return job->proto == KG_PROTO_2 || (job->req.field_name_len == 0 &&
	                                    job->req.dest.family == KG_AF_NONE);
}

static void refuse_unlisted(struct kg_job *job)
{
	char text[KG_ERRTEXT_MAX + 1];

	snprintf(text, sizeof(text),
	         "instance '%s' runs Dovecot 2.3, whose anvil lists no "
	         "alternative usernames or proxy destinations: --field and "
	         "-h need Dovecot 2.4",
	         job->cfg->instances[job->instance].name);
	kg_job_refuse(job, KG_EXIT_USAGE, "refused", text);
}

void kg_job_serve_dump(struct kg_job *job, const struct kg_dump_op *op,
                       void *res)
{
	void *c = op->create(job);
	struct kg_dump_sink sink = {op->add, op->unreadable, c};
	char err[KG_ERRTEXT_MAX + 1];

	if (c == NULL) {
		kg_job_dump_error(job, "");
		return;
	}
	if (kg_job_dump(job, &sink, err, sizeof(err)) < 0 ||
	    op->finish(c, res) < 0)
		kg_job_dump_error(job, err);
	else if (!selection_listed(job))
		refuse_unlisted(job);
	else
		op->reply(job, c, res);
	op->free(c);
}
