/* A client's identity, from the kernel only: SO_PEERCRED and SO_PEERGROUPS
 * on the client's socket, as recorded when the client connected. */
#ifndef KG_PEER_H
#define KG_PEER_H

#include <stddef.h>
#include <sys/types.h>

#define KG_PEER_GROUPS_MAX 65536 /* NGROUPS_MAX on Linux */

struct kg_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	size_t n_groups;
	gid_t groups[KG_PEER_GROUPS_MAX];
};

/* Fills *p from fd, which must be a connected AF_UNIX socket. Returns 0, or
 * -1 with errno set. */
int kg_peer_read(int fd, struct kg_peer *p);

#endif
