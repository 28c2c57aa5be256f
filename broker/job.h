/* SPDX-License-Identifier: MIT */
/* One request in the broker, from identity to reply and audit line. */
#ifndef KG_JOB_H
#define KG_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "broker/anvil_client.h"
#include "broker/anvil_dump.h"
#include "broker/reply_out.h"
#include "policy/config.h"
#include "policy/policy.h"
#include "proto/str.h"
#include "proto/wire.h"

struct kg_refusal {
	uint32_t pid;
	uint8_t reason; /* enum kg_refuse_reason */
};

/* What a request came to. kg_job_finish alone renders it, as the reply's
 * records and end packet and as the audit line, so the two cannot tell
 * different stories. The lists point into the handler's storage, which
 * must live until kg_job_finish returns. */
struct kg_result {
	const char *outcome;     /* the audit's word: "kicked", "denied", ... */
	struct kg_reply_end end; /* status, flags, counts, error text */
	const struct kg_str *kicked; /* users kicked (dry run: to be) */
	size_t n_kicked;
	const struct kg_str *warn; /* users on shared processes (need -f) */
	size_t n_warn;
	/* Dovecot 2.4: users with a kicked connection still listed. */
	const struct kg_str *remained;
	size_t n_remained;
	const uint32_t *pids; /* signalled (dry run: passed the checks) */
	size_t n_pids;
	const struct kg_refusal *refused;
	size_t n_refused;
	uint32_t outside; /* audit only: the caller must not learn it */
};

struct kg_job {
	const struct kg_config *cfg;
	pid_t client_pid; /* the caller's process, from the kernel */
	struct kg_caller caller;
	bool decoded; /* req holds a decoded request */
	struct kg_request req;
	int instance;
	const char *instance_name; /* NULL until resolved */
	pid_t anvil;   /* set by kg_job_dump: the pid that wrote the dump */
	uint8_t proto; /* set by kg_job_dump: the protocol it was in */
	/* A kick on Dovecot 2.4 dumps again and again while it waits for
	 * the connections to go: anvil's malformed lines are logged once. */
	bool malformed_logged;
	struct kg_decision dec;
	struct kg_result result;
	/* Shared buffers, too large for the stack. */
	struct kg_dump_parser *parser;
	struct kg_reply_writer *w;
	/* w's way to the client, when w writes to the client's socket: a
	 * reply it cut off is logged and audited as stalled. */
	struct kg_reply_out out;
};

/* Sends job->result as the reply (its records, then the end packet),
 * then writes the audit line from the same result. A client that went
 * away, or that did not take its reply in time (job->out.stalled), is
 * logged and the line says so; it is written all the same, as what was
 * done does not depend on who read about it. */
void kg_job_finish(struct kg_job *job);

/* Replaces the result with only an end packet (status, text) and the
 * outcome, then finishes. Only for answers given before anything was
 * done: a result that records signals must be finished as it is. */
void kg_job_refuse(struct kg_job *job, uint8_t status, const char *outcome,
                   const char *text);

/* Refuses a failed dump or collection: anvil's reason when err holds one
 * (69), otherwise running out of memory (70). */
void kg_job_dump_error(struct kg_job *job, const char *err);

/* The job's instance's anvil, as kg_anvil_dump and kg_anvil_kick take
 * it. */
void kg_job_target(const struct kg_job *job, struct kg_anvil_target *t);

/* Reads the job's instance's anvil dump into sink and notes the pid that
 * wrote it (job->anvil). Returns 0, or -1 with err set to a reason
 * (anvil unreachable) or empty (a callback failed: memory). */
int kg_job_dump(struct kg_job *job, const struct kg_dump_sink *sink, char *err,
                size_t errlen);

/* An operation answered from the anvil dump (who, kick). Its collector,
 * made for the request and scope, takes every connection; what it
 * finishes into res is the answer. */
struct kg_dump_op {
	void *(*create)(const struct kg_job *job); /* NULL: out of memory */
	kg_conn_fn add;
	/* Lines that did not parse; NULL when they cannot change the answer
	 * (kg_dump_sink). */
	kg_unreadable_fn unreadable;
	int (*finish)(void *collector, void *res); /* -1: out of memory */
	/* Fills job->result (streaming any rows), then kg_job_finish. */
	void (*reply)(struct kg_job *job, void *collector, void *res);
	void (*free)(void *collector);
};

/* create, dump, finish, reply, free; a step that fails is answered with
 * kg_job_dump_error. res is the op's result storage. */
void kg_job_serve_dump(struct kg_job *job, const struct kg_dump_op *op,
                       void *res);

#endif
