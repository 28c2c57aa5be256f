#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define SD_LISTEN_FDS_START 3

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

/* systemd's protocol: LISTEN_PID names us, LISTEN_FDS counts fds from 3. */
static int activated_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int fd = SD_LISTEN_FDS_START;

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid())
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

/* The socket's directory, when missing (no systemd RuntimeDirectory). */
static void make_parent_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(dir, sizeof(dir), "%s", path);
	if (mkdir(dirname(dir), 0755) < 0 && errno != EEXIST)
		kg_log_err("mkdir for %s: %s", path, strerror(errno));
}

static int remove_stale(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	return unlink(path);
}

int kg_listener_open(const char *path, mode_t mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = activated_fd();

	if (fd >= 0 || fd == -2)
		return fd >= 0 ? fd : -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		kg_log_err("listen path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	make_parent_dir(path);
	if (remove_stale(path) < 0) {
		kg_log_err("listen path %s: %s", path, strerror(errno));
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0) {
		/* The socket is born with its final mode: no window in which
		 * the umask's wider one applies. */
		mode_t old = umask(~mode & 0777);
		int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));

		umask(old);
		if (rc < 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0 || chmod(path, mode) < 0 || listen(fd, SOMAXCONN) < 0) {
		kg_log_err("listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	listener_name = path;
	return fd;
}

const char *kg_listener_name(void)
{
	return listener_name;
}
