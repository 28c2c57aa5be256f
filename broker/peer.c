/* SPDX-License-Identifier: MIT */
#include "broker/peer.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int kg_sockname_of_listener(int listen_fd, struct kg_sockname *name)
{
	memset(name, 0, sizeof(*name));
	name->len = sizeof(name->sa);
	if (getsockname(listen_fd, (struct sockaddr *)&name->sa, &name->len) <
	    0)
		return -1;
	if (name->len <= sizeof(sa_family_t) || name->len > sizeof(name->sa)) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	return 0;
}

static int int_opt(int fd, int opt, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(fd, SOL_SOCKET, opt, v, &len);
}

/* What kind of socket fd is: NULL for a connected or once connected
 * AF_UNIX SOCK_SEQPACKET socket, else why it is none. */
static const char *socket_kind(int fd)
{
	int domain, type, listening;

	if (int_opt(fd, SO_DOMAIN, &domain) < 0)
		return "not a socket";
	if (domain != AF_UNIX)
		return "not an AF_UNIX socket";
	if (int_opt(fd, SO_TYPE, &type) < 0 || type != SOCK_SEQPACKET)
		return "not a SOCK_SEQPACKET socket";
	if (int_opt(fd, SO_ACCEPTCONN, &listening) < 0 || listening != 0)
		return "listening socket";
	return NULL;
}

/* The same address, byte for byte and of the same length: an abstract
 * name may hold NULs, and a path is compared as the kernel stored it. */
static int same_name(const struct kg_sockname *a, const struct kg_sockname *b)
{
	return a->len == b->len && memcmp(&a->sa, &b->sa, a->len) == 0;
}

/* Why fd is not a client connection from o, or NULL; sets *cred. */
static const char *refusal(int fd, const struct kg_client_origin *o,
                           struct ucred *cred)
{
	struct kg_sockname local = {.len = sizeof(local.sa)};
	socklen_t len = sizeof(*cred);
	const char *kind = socket_kind(fd);

	if (kind != NULL)
		return kind;
	if (getsockname(fd, (struct sockaddr *)&local.sa, &local.len) < 0 ||
	    !same_name(&local, &o->listener))
		return "not accepted on kickgated's listening socket";
	/* An unconnected socket reports pid 0: no identity at all. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0 ||
	    cred->pid <= 0)
		return "not connected";
	/* Neither privileged process is a client: its identity is the
	 * daemon's, not a caller's. (A frontend can create no socket.) */
	if (cred->pid == o->supervisor)
		return "connected by the supervisor";
	if (cred->pid == getpid())
		return "connected by the broker";
	return NULL;
}

int kg_peer_ids(int fd, struct kg_peer *p)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	len = sizeof(p->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &len) < 0)
		return -1;
	p->n_groups = len / sizeof(gid_t);
	return 0;
}

int kg_peer_read(int fd, const struct kg_client_origin *origin,
                 struct kg_peer *p, const char **why)
{
	struct ucred cred;

	*why = refusal(fd, origin, &cred);
	if (*why != NULL)
		return KG_PEER_NOT_CLIENT;
	return kg_peer_ids(fd, p);
}
