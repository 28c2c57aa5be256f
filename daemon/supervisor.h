/* SPDX-License-Identifier: MIT */
/* kickgated's supervisor: the root process that holds the listening
 * socket. It accepts each client itself and execs one sandboxed frontend
 * per connection, which sees that client and nothing else; it passes the
 * request bytes the frontend wrote, with the client's socket it holds, to
 * the broker. On SIGHUP it re-reads the configuration and, when it is
 * valid, starts a new broker for the clients accepted from then on; on
 * SIGTERM, or when the broker dies, it stops every child. It parses no
 * client bytes: its inputs are signals, its children's exits, the
 * configuration file and the size of each frontend's message. */
#ifndef KG_SUPERVISOR_H
#define KG_SUPERVISOR_H

#include "policy/config.h"

/* Serves listen_fd with cfg, read from config_path, which SIGHUP reads
 * again. Takes cfg over (freed before returning). Returns the exit
 * status: 0 after SIGTERM or SIGINT, 1 when the broker could not be
 * started or died. */
int kg_supervisor_run(struct kg_config *cfg, const char *config_path,
                      int listen_fd);

#endif
