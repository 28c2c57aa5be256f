/* SPDX-License-Identifier: MIT */
/* The daemon's broker process: the only holder of anvil access and
 * CAP_KILL. Serves one request at a time, as handed over by the supervisor
 * with the client's socket. */
#ifndef KG_BROKER_SERVE_H
#define KG_BROKER_SERVE_H

#include "broker/peer.h"
#include "policy/config.h"

/* What the supervisor gives a broker it starts: all of it is known before
 * the sandbox, which could learn none of it afterwards. */
struct kg_broker_start {
	const struct kg_config *cfg;
	int supervisor_fd;               /* the broker's end of its channel */
	struct kg_client_origin clients; /* the only fds it takes as clients */
};

/* Reads what the broker needs from files (the account names of audit
 * lines), enters the broker's sandbox, then serves requests from
 * st->supervisor_fd until the supervisor's end closes (exit 0). Exits 1
 * when it is passed an fd that is not a client connection (logged).
 * Returns only when the sandbox could not be entered (logged). */
void kg_broker_main(const struct kg_broker_start *st);

/* Serves one request that arrived on client_fd (the message bytes as the
 * frontend wrote them). Replies on client_fd but does not close it. */
void kg_broker_serve(const struct kg_broker_start *st, int client_fd,
                     const uint8_t *msg, size_t len);

#endif
