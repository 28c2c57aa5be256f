/* The daemon's broker process: the only holder of anvil access and
 * CAP_KILL. Serves one request at a time, as handed over by the frontend
 * with the client's socket. */
#ifndef KG_BROKER_PROC_H
#define KG_BROKER_PROC_H

#include "config.h"

/* Reads what the broker needs from files (the account names of audit
 * lines), enters the broker's sandbox, then serves requests from
 * frontend_fd until the frontend's end closes. Returns only when the
 * sandbox could not be entered (logged). */
void kg_broker_main(const struct kg_config *cfg, int frontend_fd);

/* Serves one request that arrived on client_fd (the message bytes as the
 * frontend sent them). Replies on client_fd but does not close it. */
void kg_broker_serve(const struct kg_config *cfg, int client_fd,
		     const uint8_t *msg, size_t len);

#endif
