/* One request in the broker, from identity to audit line. */
#ifndef KG_JOB_H
#define KG_JOB_H

#include <stddef.h>
#include <sys/types.h>

#include "anvil_dump.h"
#include "audit.h"
#include "config.h"
#include "policy.h"
#include "wire.h"

struct kg_job {
	const struct kg_config *cfg;
	int fd; /* the client's socket */
	struct kg_request req;
	struct kg_caller caller;
	int instance;
	pid_t anvil; /* set by kg_broker_dump: the pid that wrote the dump */
	struct kg_decision dec;
	struct kg_audit_rec audit;
	/* Shared buffers, too large for the stack. */
	struct kg_dump_parser *parser;
	struct kg_reply_writer *w;
};

/* Answers with only an end packet (status, text) and writes the audit
 * line with outcome. */
void kg_job_refuse(struct kg_job *job, uint8_t status, const char *outcome,
                   const char *text);

/* Answers a failed dump or collection: anvil's reason when err holds one
 * (69), otherwise running out of memory (70). */
void kg_job_dump_error(struct kg_job *job, const char *err);

/* Sends the end packet, then writes the audit line with outcome. */
void kg_job_finish(struct kg_job *job, struct kg_reply_end *end,
                   const char *outcome);

/* Reads the job's instance's anvil dump into fn and notes the pid that
 * wrote it (job->anvil). Returns 0, or -1 with err set to a reason
 * (anvil unreachable) or empty (fn failed: memory). */
int kg_broker_dump(struct kg_job *job, kg_conn_fn fn, void *ctx, char *err,
                   size_t errlen);

#endif
