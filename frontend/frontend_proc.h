/* The daemon's unprivileged frontend process: accepts clients, reads one
 * request each within a deadline, validates and normalizes it, and hands
 * it with the client's socket to the broker. */
#ifndef KG_FRONTEND_PROC_H
#define KG_FRONTEND_PROC_H

/* Most clients waiting for their request at once; more are turned away. */
#define KG_FRONTEND_CLIENTS 2048

/* Runs until the broker's end of broker_fd closes; never returns. The
 * sandbox must already be in place. */
void kg_frontend_run(int listen_fd, int broker_fd, int timeout_ms)
	__attribute__((noreturn));

#endif
