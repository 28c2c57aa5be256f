/* SPDX-License-Identifier: MIT */
#include "daemon/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/log.h"

static const char *listener_name = "nothing";

static int is_seqpacket_listener(int fd)
{
	int type, domain, listening;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return 0;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return 0;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
		return 0;
	return type == SOCK_SEQPACKET && domain == AF_UNIX && listening;
}

/* systemd's protocol: LISTEN_PID names us, LISTEN_FDS counts fds from 3.
 * NULL when nothing was passed to this process. */
static const char *listen_fds(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid())
		return NULL;
	return fds;
}

bool kg_listener_passed(void)
{
	const char *fds = listen_fds();

	return fds != NULL && strcmp(fds, "1") == 0;
}

static int activated_fd(void)
{
	const char *fds = listen_fds();
	int fd = KG_LISTENER_PASSED_FD;

	if (fds == NULL)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (strcmp(fds, "1") != 0) {
		kg_log_err("socket activation: expected one socket, got "
		           "LISTEN_FDS=%s",
		           fds);
		return -2;
	}
	if (!is_seqpacket_listener(fd)) {
		kg_log_err("socket activation: the passed socket is not a "
		           "listening AF_UNIX SOCK_SEQPACKET socket");
		return -2;
	}
	listener_name = "the socket passed by systemd";
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* A directory only root can change: a user who could write to it, or to
 * a directory above it, could swap the socket for a link. A sticky
 * directory such as /tmp lets nobody replace entries that are not their
 * own. */
static int check_dir(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0) {
		kg_log_err("listen directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))) {
		kg_log_err("listen directory %s must be a directory owned by "
		           "root and not writable by group or others",
		           dir);
		return -1;
	}
	return 0;
}

/* Creates the socket's missing parent directories (root, 0755, whatever
 * the umask) and checks every directory on the way, top down, as
 * systemd's RuntimeDirectory would have made them. */
static int prepare_dirs(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash = dir;

	snprintf(dir, sizeof(dir), "%s", path);
	if (dir[0] != '/') {
		kg_log_err("listen path %s is not absolute", path);
		return -1;
	}
	if (check_dir("/") < 0)
		return -1;
	while ((slash = strchr(slash + 1, '/')) != NULL) {
		mode_t old = umask(022);
		int rc;

		*slash = '\0';
		rc = mkdir(dir, 0755);
		umask(old);
		if (rc < 0 && errno != EEXIST) {
			kg_log_err("mkdir %s: %s", dir, strerror(errno));
			return -1;
		}
		if (check_dir(dir) < 0)
			return -1;
		*slash = '/';
	}
	return 0;
}

/* Something accepts connections on path: a running kickgated, or the
 * socket unit holding it for one. A refused connection means the file
 * is stale. */
static bool is_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                0);
	bool live;

	if (fd < 0)
		return false;
	/* EAGAIN: a full backlog; EPROTOTYPE: a live socket of another
	 * type. Either way it is in use. */
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
	       errno == EAGAIN || errno == EPROTOTYPE;
	close(fd);
	return live;
}

/* The socket is born with its final mode through the umask, so no
 * path-following chmod is needed after bind. */
static int bind_path(int fd, const struct sockaddr_un *sa, mode_t mode)
{
	mode_t old = umask(~mode & 0777);
	int rc = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));

	umask(old);
	return rc;
}

/* Binds without ever removing a socket someone is served on: only when
 * the path is taken is it probed, and only a stale socket is replaced. */
static int bind_fresh(int fd, const struct sockaddr_un *sa, mode_t mode)
{
	struct stat st;

	if (bind_path(fd, sa, mode) == 0)
		return 0;
	if (errno != EADDRINUSE) {
		kg_log_err("bind %s: %s", sa->sun_path, strerror(errno));
		return KG_LISTENER_ERROR;
	}
	if (lstat(sa->sun_path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		kg_log_err("listen path %s exists and is not a socket",
		           sa->sun_path);
		return KG_LISTENER_ERROR;
	}
	if (is_live(sa)) {
		kg_log_err("%s is in use: another kickgated, or "
		           "kickgated.socket, is listening there; not taking "
		           "it over",
		           sa->sun_path);
		return KG_LISTENER_BUSY;
	}
	if (unlink(sa->sun_path) < 0 || bind_path(fd, sa, mode) < 0) {
		kg_log_err("replacing the stale socket %s: %s", sa->sun_path,
		           strerror(errno));
		return KG_LISTENER_ERROR;
	}
	return 0;
}

int kg_listener_open(const char *path, mode_t mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = activated_fd(), rc;

	if (fd >= 0 || fd == -2)
		return fd >= 0 ? fd : KG_LISTENER_ERROR;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		kg_log_err("listen path too long: %s", path);
		return KG_LISTENER_ERROR;
	}
	strcpy(sa.sun_path, path);
	if (prepare_dirs(path) < 0)
		return KG_LISTENER_ERROR;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		kg_log_err("socket: %s", strerror(errno));
		return KG_LISTENER_ERROR;
	}
	rc = bind_fresh(fd, &sa, mode);
	if (rc == 0 && listen(fd, SOMAXCONN) < 0) {
		kg_log_err("listen on %s: %s", path, strerror(errno));
		rc = KG_LISTENER_ERROR;
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	listener_name = path;
	return fd;
}

const char *kg_listener_name(void)
{
	return listener_name;
}
