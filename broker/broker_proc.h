/* The daemon's broker process: the only holder of anvil access and
 * CAP_KILL. Serves one request at a time, as handed over by the frontend
 * with the client's socket. */
#ifndef KG_BROKER_PROC_H
#define KG_BROKER_PROC_H

#include "config.h"

/* Runs until the frontend's end of frontend_fd closes; never returns. The
 * sandbox must already be in place. */
void kg_broker_run(const struct kg_config *cfg, int frontend_fd)
	__attribute__((noreturn));

/* Serves one request that arrived on client_fd (the message bytes as the
 * frontend sent them). Replies on client_fd but does not close it. */
void kg_broker_serve(const struct kg_config *cfg, int client_fd,
		     const uint8_t *msg, size_t len);

#endif
