/* SPDX-License-Identifier: MIT */
/* Logging for the daemon's two processes: stderr in the foreground,
 * syslog otherwise. The syslog socket is connected before any sandbox is
 * entered, so logging never needs a new socket. */
#ifndef KG_LOG_H
#define KG_LOG_H

#include <stdbool.h>

/* ident is the program name; to_stderr selects stderr over syslog. */
void kg_log_open(const char *ident, bool to_stderr);
/* A forked child closes every inherited descriptor, the syslog socket
 * among them: kg_log_close first, so that syslog never writes to a
 * number another descriptor has taken over, then kg_log_reopen for a
 * connection of the child's own. */
void kg_log_close(void);
void kg_log_reopen(void);
/* Whether lines go to stderr: an exec'd role is told to do the same. */
bool kg_log_to_stderr(void);
/* Prefix for every following line, e.g. "frontend" or "broker". */
void kg_log_role(const char *role);

void kg_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kg_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kg_log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
