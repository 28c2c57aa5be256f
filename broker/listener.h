/* The daemon's listening socket: inherited from systemd socket activation
 * or created here. */
#ifndef KG_LISTENER_H
#define KG_LISTENER_H

#include <sys/types.h>

/* Returns a listening AF_UNIX SOCK_SEQPACKET socket: fd 3 when LISTEN_PID
 * and LISTEN_FDS say systemd passed exactly one such socket, otherwise a
 * new one bound to path (a stale socket there is replaced, anything else
 * is an error) with the given mode. Either way it is non-blocking: the
 * frontend accepts until EAGAIN. -1 on error, after logging. */
int kg_listener_open(const char *path, mode_t mode);

/* What kg_listener_open listens on, for the log: path, or a note that the
 * socket came from systemd. */
const char *kg_listener_name(void);

#endif
