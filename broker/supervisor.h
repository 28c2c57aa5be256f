/* kickgated's supervisor: the root process that holds the listening
 * socket and runs the frontend and broker as a pair of children. On
 * SIGHUP it re-reads the configuration and, when it is valid, replaces
 * the pair by one started with it; on SIGTERM, or when a process of the
 * pair dies, it stops every child. It reads no client bytes: its inputs
 * are signals, its children's exits and the configuration file. */
#ifndef KG_SUPERVISOR_H
#define KG_SUPERVISOR_H

#include "config.h"

/* Serves listen_fd with cfg, read from config_path, which SIGHUP reads
 * again. Takes cfg over (freed before returning). Returns the exit
 * status: 0 after SIGTERM or SIGINT, 1 when the pair could not be
 * started or one of its processes died. */
int kg_supervisor_run(struct kg_config *cfg, const char *config_path,
                      int listen_fd);

#endif
