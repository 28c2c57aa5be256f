/* SPDX-License-Identifier: MIT */
/* The floor for anything that reads anvil: one CONNECT-DUMP, read and
 * discarded. Usage: floor [-p] [-2] ANVIL_SOCKET. Prints the bytes read
 * and the dump's connection lines.
 *
 * It does only what every consumer of the dump must do: connect, ask,
 * read until the empty line that ends the dump. Blocking reads, no
 * parsing, no timeout beyond the one below (a bench must end).
 *
 * -p paces the reads as kickgated does (broker/anvil_client.c): after a
 * read shorter than PACE_BYTES it pauses PACE_MS, so that anvil's socket
 * fills and anvil writes in large blocks instead of line by line.
 *
 * -2 speaks Dovecot 2.4's anvil protocol (version 2), as doveadm 2.4
 * does: the client's VERSION line and an empty line (an admin client),
 * then the request. Before the dump's lines come two that are not
 * connections: the server's VERSION line and the header naming the
 * alternative username fields, which is empty when there are none. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_SIZE  (256 * 1024)
#define TIMEOUT_S  120
#define PACE_BYTES (64 * 1024)
#define PACE_MS    1

static const char request_v1[] = "VERSION\tanvil\t1\t0\nCONNECT-DUMP\n";
static const char request_v2[] =
        "VERSION\tanvil-client\t2\t0\n\nCONNECT-DUMP\n";

/* Where the reader is in the reply: lines still to skip before the
 * dump's own, the length of the line read so far, connection lines. */
struct reader {
	unsigned skip;
	size_t line_len;
	uint64_t lines;
};

static int connect_anvil(const char *path, const char *request)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = TIMEOUT_S};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "floor: socket path too long\n");
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
		fprintf(stderr, "floor: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The dump ends at its first empty line once the skipped lines are
 * behind; the line length carries across reads. */
static bool ends_dump(const char *buf, size_t n, struct reader *r)
{
	const char *p = buf;
	const char *end = buf + n;
	const char *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		bool empty = r->line_len == 0 && nl == p;

		r->line_len = 0;
		p = nl + 1;
		if (r->skip) {
			r->skip--;
			continue;
		}
		if (empty)
			return true;
		r->lines++;
	}
	r->line_len += (size_t)(end - p);
	return false;
}

int main(int argc, char **argv)
{
	static char buf[READ_SIZE];
	uint64_t bytes = 0;
	struct reader r = {0};
	bool paced = false;
	bool v2 = false;
	int opt;
	int fd;

	while ((opt = getopt(argc, argv, "p2")) != -1) {
		if (opt == 'p')
			paced = true;
		else if (opt == '2')
			v2 = true;
		else
			break;
	}
	if (opt != -1 || optind != argc - 1) {
		fprintf(stderr, "usage: floor [-p] [-2] ANVIL_SOCKET\n");
		return 64;
	}
	r.skip = v2 ? 2 : 0;
	fd = connect_anvil(argv[optind], v2 ? request_v2 : request_v1);
	if (fd < 0)
		return 69;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "floor: dump ended early: %s\n",
			        n < 0 ? strerror(errno) : "closed");
			close(fd);
			return 69;
		}
		bytes += (uint64_t)n;
		if (ends_dump(buf, (size_t)n, &r))
			break;
		if (paced && n < PACE_BYTES)
			poll(NULL, 0, PACE_MS);
	}
	close(fd);
	printf("%llu bytes, %llu lines\n", (unsigned long long)bytes,
	       (unsigned long long)r.lines);
	return 0;
}
