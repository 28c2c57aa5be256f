/* Serving a kick request: plan, limits, target verification, signals,
 * reply and audit. */
#ifndef KG_KICK_H
#define KG_KICK_H

#include "job.h"

void kg_kick_serve(struct kg_job *job);

#endif
