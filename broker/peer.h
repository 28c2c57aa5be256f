/* SPDX-License-Identifier: MIT */
/* A client's identity, from the kernel only: SO_PEERCRED and SO_PEERGROUPS
 * on the client's socket, as recorded when the client connected.
 *
 * The supervisor hands the broker each client's socket, the one it
 * accepted itself. The broker checks it all the same, as a second line:
 * the listening socket, either end of the link between them or any socket
 * a process inherited name root as their peer too. So the identity is
 * taken only from a socket that is a client connection accepted on
 * kickgated's own listener. */
#ifndef KG_PEER_H
#define KG_PEER_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#define KG_PEER_GROUPS_MAX 65536 /* NGROUPS_MAX on Linux */

struct kg_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	size_t n_groups;
	gid_t groups[KG_PEER_GROUPS_MAX];
};

/* A socket's address as getsockname reports it. */
struct kg_sockname {
	socklen_t len;
	struct sockaddr_un sa;
};

/* Where client connections come from: accepted on the listening socket
 * bound to listener (getsockname on an accepted socket reports the
 * listener's address), connected by a process other than the supervisor
 * or the broker. The supervisor, which holds the listener, fills it in
 * before the broker enters its sandbox. */
struct kg_client_origin {
	struct kg_sockname listener;
	pid_t supervisor;
};

/* Reads the address of the listening socket listen_fd. Returns 0, or -1
 * with errno set: EADDRNOTAVAIL when the address is unnamed, as is that of
 * every socketpair and client end, so that it would tell no client
 * connection apart. */
int kg_sockname_of_listener(int listen_fd, struct kg_sockname *name);

/* kg_peer_read's result when fd is not a client connection. */
#define KG_PEER_NOT_CLIENT (-2)

/* Fills *p from fd's SO_PEERCRED and SO_PEERGROUPS, whatever fd is.
 * Returns 0, or -1 with errno set. The supervisor, which accepted fd
 * itself, needs no more. */
int kg_peer_ids(int fd, struct kg_peer *p);

/* Fills *p from fd, a client connection from origin. Returns 0;
 * KG_PEER_NOT_CLIENT with *why saying what fd is instead ("listening
 * socket", ...); or -1 with errno set when a client's identity cannot be
 * read. */
int kg_peer_read(int fd, const struct kg_client_origin *origin,
                 struct kg_peer *p, const char **why);

#endif
