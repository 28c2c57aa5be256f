/* SPDX-License-Identifier: MIT */
/* kickgate: sends one request to kickgated and prints its reply. */
#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/print.h"
#include "kg_config.h"

/* A broker that stays silent this long is given up on; it also bounds a
 * connect to a broker whose backlog is full. */
#define BROKER_TIMEOUT_S 120
/* stdout's buffer when it is not a terminal. */
#define OUT_BUF_SIZE (64 * 1024)

__attribute__((format(printf, 3, 4))) static int
failf(struct kg_printer *p, int code, const char *fmt, ...)
{
	char msg[KG_CLI_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kg_printer_fail(p, code, msg);
}

/* A failed connect, by the cause a helpdesk user can act on. A path that
 * is not a socket at all is told apart first: connect() reports it as
 * ECONNREFUSED, or EACCES where the file is not writable. */
static int connect_failed(struct kg_printer *p, const char *path, int err)
{
	struct stat st;

	if (stat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return failf(p, KG_EXIT_UNAVAILABLE,
		             "%s is not a socket; give kickgated's socket "
		             "with -S or KICKGATE_SOCKET",
		             path);
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return failf(p, KG_EXIT_UNAVAILABLE,
		             "the broker socket %s does not exist: is "
		             "kickgated.socket running (systemctl status "
		             "kickgated.socket)? Or give the right socket with "
		             "-S or KICKGATE_SOCKET",
		             path);
	case ECONNREFUSED:
		return failf(p, KG_EXIT_UNAVAILABLE,
		             "nothing listens on %s: kickgated is not running "
		             "and the socket file is stale (systemctl status "
		             "kickgated.socket kickgated)",
		             path);
	case EPROTOTYPE:
		return failf(p, KG_EXIT_UNAVAILABLE,
		             "%s is not a kickgated socket (not a "
		             "SOCK_SEQPACKET socket); give kickgated's socket "
		             "with -S or KICKGATE_SOCKET",
		             path);
	case EACCES:
	case EPERM:
		/* The socket's mode and group are the first gate of the
		 * policy, so this is a denial, not an outage. */
		return failf(
		        p, KG_EXIT_NOPERM,
		        "permission denied on %s: your account may not "
		        "connect to kickgated (the socket's mode or group, "
		        "or a directory above it); ask an administrator",
		        path);
	}
	return failf(p, KG_EXIT_UNAVAILABLE,
	             "cannot reach the broker at %s: %s", path, strerror(err));
}

/* Sets *fd_out to the connected socket and returns 0, or reports why not
 * and returns the exit code. */
static int broker_connect(const char *path, struct kg_printer *p, int *fd_out)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = BROKER_TIMEOUT_S};
	int fd, err;

	/* The parser bounds the path to what sun_path holds with its NUL. */
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		err = errno;
		if (fd >= 0)
			close(fd);
		return failf(p, KG_EXIT_SOFTWARE, "cannot create a socket: %s",
		             strerror(err));
	}
	if (connect(fd, (const struct sockaddr *)&sun, sizeof(sun)) < 0) {
		err = errno;
		close(fd);
		return connect_failed(p, path, err);
	}
	*fd_out = fd;
	return 0;
}

static int send_request(int fd, const struct kg_request *req,
                        struct kg_printer *p)
{
	uint8_t buf[KG_REQ_MAX];
	enum kg_wire_err e;
	size_t len;
	ssize_t n;

	e = kg_request_encode(req, buf, sizeof(buf), &len);
	if (e != KG_WIRE_OK)
		return failf(p, KG_EXIT_SOFTWARE,
		             "cannot encode the request: %s",
		             kg_wire_strerror(e));
	do
		n = send(fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return failf(p, KG_EXIT_UNAVAILABLE,
		             "cannot send the request to the broker: %s",
		             strerror(errno));
	return 0;
}

/* One reply packet into buf; 0 at end of stream, -1 with errno set. A
 * packet larger than buf is reported through *truncated. */
static ssize_t recv_packet(int fd, uint8_t *buf, size_t cap, bool *truncated)
{
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	*truncated = n > 0 && (mh.msg_flags & MSG_TRUNC);
	return n;
}

/* Before its first valid packet, a peer that hangs up or answers with
 * something else is most likely not kickgated, whatever its replies
 * later would have been. */
static int not_kickgated(struct kg_printer *p, const char *path, ssize_t n)
{
	if (n == 0)
		return failf(p, KG_EXIT_UNAVAILABLE,
		             "no reply from %s: it is not a kickgated socket, "
		             "or kickgated failed (journalctl -u kickgated)",
		             path);
	return failf(p, KG_EXIT_UNAVAILABLE,
	             "%s is not a kickgated socket: its reply is not in "
	             "kickgated's protocol; give kickgated's socket with -S "
	             "or KICKGATE_SOCKET",
	             path);
}

/* The exit code for a packet read (n bytes, or -1 with errno set) and
 * decoded (e) that cannot be part of a reply, or 0. */
static int packet_failed(struct kg_printer *p, ssize_t n, bool truncated,
                         enum kg_wire_err e)
{
	if (n == 0)
		return failf(p, KG_EXIT_UNAVAILABLE,
		             "broker closed the connection");
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return failf(p, KG_EXIT_UNAVAILABLE,
		             "no reply from the broker within %d seconds",
		             BROKER_TIMEOUT_S);
	if (n < 0)
		return failf(p, KG_EXIT_UNAVAILABLE,
		             "cannot read the reply: %s", strerror(errno));
	if (truncated)
		return failf(p, KG_EXIT_SOFTWARE,
		             "malformed reply from the broker: packet larger "
		             "than %d bytes",
		             KG_PKT_MAX);
	if (e != KG_WIRE_OK)
		return failf(p, KG_EXIT_SOFTWARE,
		             "malformed reply from the broker: %s",
		             kg_wire_strerror(e));
	return 0;
}

/* Reads and prints packets until the end packet; returns the exit code.
 * Every read is bounded by the receive timeout. */
static int receive_reply(int fd, const char *path, struct kg_printer *p)
{
	static uint8_t pkt[KG_PKT_MAX];
	enum kg_wire_err e = KG_WIRE_OK;
	bool truncated, is_end = false;
	int rc, cb_result = 0;
	ssize_t n;

	for (bool first = true; !is_end; first = false) {
		n = recv_packet(fd, pkt, sizeof(pkt), &truncated);
		if (n > 0 && !truncated)
			e = kg_reply_decode(pkt, (size_t)n, &kg_printer_handler,
			                    p, &is_end, &cb_result);
		if (first && (n == 0 || truncated || e != KG_WIRE_OK))
			return not_kickgated(p, path, n);
		rc = packet_failed(p, n, truncated, e);
		if (rc == 0)
			rc = cb_result;
		if (rc != 0)
			return rc;
	}
	return kg_printer_status(p);
}

/* The reply is read whole, into memory, before a byte of it is printed:
 * the broker waits for a slow reader only briefly before it cuts the
 * reply off (SECURITY.md, "Slow readers"), and output that waits on a
 * pager or a slow terminal must not make kickgate such a reader. */
static int run(const struct kg_cli *cli)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	struct kg_printer *p = NULL;
	int fd = -1, rc;

	if (out != NULL)
		p = kg_printer_new(out, stderr, cli->req.op, cli->req.flags,
		                   cli->json);
	if (p != NULL && isatty(STDOUT_FILENO) && kg_printer_pad(p) < 0) {
		kg_printer_free(p);
		p = NULL;
	}
	if (p == NULL) {
		if (out != NULL)
			fclose(out);
		free(text);
		fputs("kickgate: out of memory\n", stderr);
		return KG_EXIT_SOFTWARE;
	}
	rc = broker_connect(cli->socket, p, &fd);
	if (rc == 0)
		rc = send_request(fd, &cli->req, p);
	if (rc == 0)
		rc = receive_reply(fd, cli->socket, p);
	if (fd >= 0)
		close(fd);
	kg_printer_free(p);
	if (fclose(out) != 0) {
		fputs("kickgate: out of memory\n", stderr);
		rc = KG_EXIT_SOFTWARE;
	} else {
		fwrite(text, 1, len, stdout);
	}
	free(text);
	return rc;
}

/* Output that never reached its destination is a failure too. */
static int flush_output(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "kickgate: cannot write the output: %s\n",
		        strerror(errno));
		return KG_EXIT_SOFTWARE;
	}
	return rc;
}

int main(int argc, char **argv)
{
	/* glibc ignores the size given to setvbuf without a buffer. */
	static char out_buf[OUT_BUF_SIZE];
	char msg[KG_CLI_MSG_MAX];
	struct kg_cli cli;
	int rc;

	rc = kg_cli_parse(argc, argv, getenv("KICKGATE_SOCKET"), &cli, msg);
	if (rc != 0) {
		fprintf(stderr, "kickgate: %s\n", msg);
		return rc;
	}
	switch (cli.action) {
	case KG_CLI_HELP:
		kg_cli_usage(stdout);
		break;
	case KG_CLI_VERSION:
		puts("kickgate " KG_VERSION);
		break;
	case KG_CLI_RUN:
		/* A listing of a large host is tens of megabytes: written in
		 * large blocks unless someone watches it scroll by. */
		if (!isatty(STDOUT_FILENO))
			setvbuf(stdout, out_buf, _IOFBF, sizeof(out_buf));
		/* The padded who table measures names with wcwidth(), which
		 * needs the terminal's character set. */
		setlocale(LC_CTYPE, "");
		rc = run(&cli);
		break;
	}
	return flush_output(rc);
}
