/* The daemon's unprivileged frontend process: accepts clients, reads one
 * request each within a deadline, validates and normalizes it, and hands
 * it with the client's socket to the broker. */
#ifndef KG_FRONTEND_PROC_H
#define KG_FRONTEND_PROC_H

/* Most clients waiting for their request at once; more are turned away. */
#define KG_FRONTEND_CLIENTS 2048

/* Runs until the broker's end of broker_fd closes, or, once the
 * supervisor's end of control_fd shuts down, until the clients already
 * accepted are served; never returns. Closes listen_fd and control_fd
 * when control_fd shuts down. The sandbox must already be in place. */
void kg_frontend_run(int listen_fd, int broker_fd, int control_fd,
                     int timeout_ms) __attribute__((noreturn));

#endif
