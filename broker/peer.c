#include "peer.h"

#include <errno.h>
#include <sys/socket.h>

int kg_peer_read(int fd, struct kg_peer *p)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int domain;
	socklen_t dlen = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0)
		return -1;
	if (domain != AF_UNIX) {
		errno = EPROTOTYPE;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	/* An unconnected socket reports pid 0 and the overflow ids: no
	 * identity at all, so no rights either. */
	if (cred.pid <= 0) {
		errno = ENOTCONN;
		return -1;
	}
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	len = sizeof(p->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &len) < 0)
		return -1;
	p->n_groups = len / sizeof(gid_t);
	return 0;
}
