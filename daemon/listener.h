/* SPDX-License-Identifier: MIT */
/* The daemon's listening socket: inherited from systemd socket activation
 * or created here. */
#ifndef KG_LISTENER_H
#define KG_LISTENER_H

#include <stdbool.h>
#include <sys/types.h>

enum {
	KG_LISTENER_ERROR = -1,
	/* Something already accepts connections on the path. */
	KG_LISTENER_BUSY = -2,
};

/* Returns a listening AF_UNIX SOCK_SEQPACKET socket: fd 3 when LISTEN_PID
 * and LISTEN_FDS say systemd passed exactly one such socket, otherwise a
 * new one bound to path with the given mode. Missing parent directories
 * are created (root, 0755); every directory on the path must be root's
 * and not writable by group or others (unless sticky). A socket file
 * that nothing accepts on is replaced; one that is live is left alone
 * (KG_LISTENER_BUSY); anything else there is an error. The socket is
 * non-blocking: the frontend accepts until EAGAIN. Returns the fd, or
 * KG_LISTENER_ERROR or KG_LISTENER_BUSY after logging. */
int kg_listener_open(const char *path, mode_t mode);

/* systemd passes its sockets from fd 3 on. */
#define KG_LISTENER_PASSED_FD 3

/* True when systemd passed this process exactly one socket, as fd 3,
 * which kg_listener_open will then take: start-up must keep that fd
 * open when it closes what it inherited. */
bool kg_listener_passed(void);

/* What kg_listener_open listens on, for the log: path, or a note that the
 * socket came from systemd. */
const char *kg_listener_name(void);

#endif
