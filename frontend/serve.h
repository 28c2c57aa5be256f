/* SPDX-License-Identifier: MIT */
/* The daemon's unprivileged frontend role: one process per client
 * connection, exec'd by the supervisor with the client's socket and the
 * supervisor's end of a socketpair. It reads the client's one request
 * within a deadline, validates and normalizes it, and sends the
 * normalized bytes to the supervisor, which alone decides which client
 * socket goes with them to the broker. */
#ifndef KG_FRONTEND_SERVE_H
#define KG_FRONTEND_SERVE_H

/* The descriptors the supervisor hands an exec'd frontend. */
#define KG_FRONTEND_CLIENT_FD     3
#define KG_FRONTEND_SUPERVISOR_FD 4
/* Its syslog connection, made before the sandbox as the next free fd. */
#define KG_FRONTEND_LOG_FD 5

/* Serves the one client on client_fd: the normalized request goes to
 * supervisor_fd, an error reply to the client. Exits 0 once the request
 * is passed on or answered, 1 on a system error (logged). The sandbox
 * must already be in place. */
void kg_frontend_serve_one(int client_fd, int supervisor_fd, int timeout_ms)
        __attribute__((noreturn));

#endif
