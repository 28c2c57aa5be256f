/* SPDX-License-Identifier: MIT */
#include "broker/instances.h"

#include <string.h>

/* The same decision a who or kick on that instance would get, so the
 * list never offers an instance a request would then be refused. */
static bool may_use(const struct kg_job *job, size_t i)
{
	struct kg_decision dec;

	kg_policy_decide(job->cfg, &job->caller, (int)i, &dec);
	return dec.allowed;
}

void kg_instances_serve(struct kg_job *job)
{
	size_t listed = 0;

	for (size_t i = 0; i < job->cfg->n_instances; i++) {
		const struct kg_instance *in = &job->cfg->instances[i];
		struct kg_instance_row row = {
		        .name = in->name,
		        .name_len = strlen(in->name),
		        .path = in->anvil,
		        .path_len = strlen(in->anvil),
		};

		if (!may_use(job, i))
			continue;
		if (kg_rw_instance(job->w, &row) < 0)
			break;
		listed++;
	}
	if (listed == 0) {
		kg_job_refuse(
		        job, KG_EXIT_NOPERM, "denied",
		        "permission denied: no rule allows this caller on "
		        "any instance");
		return;
	}
	job->result.outcome = "listed";
	kg_job_finish(job);
}
