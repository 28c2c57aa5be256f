/* SPDX-License-Identifier: MIT */
/* Serving an instances request: which Dovecot instances the caller may
 * name with -a. */
#ifndef KG_INSTANCES_H
#define KG_INSTANCES_H

#include "broker/job.h"

/* Lists every instance some rule lets the caller use, as the policy
 * decides for a request on that instance (all of them for root, unless a
 * rule names uid 0); refuses (77) when there is none. Anvil is not
 * asked. */
void kg_instances_serve(struct kg_job *job);

#endif
