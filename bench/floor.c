/* SPDX-License-Identifier: MIT */
/* The floor for anything that reads anvil: one CONNECT-DUMP, read and
 * discarded. Usage: floor [-p] ANVIL_SOCKET. Prints the bytes and lines
 * read.
 *
 * It does only what every consumer of the dump must do: connect, ask,
 * read until the empty line that ends the dump. Blocking reads, no
 * parsing, no timeout beyond the one below (a bench must end).
 *
 * -p paces the reads as kickgated does (broker/anvil_client.c): after a
 * read shorter than PACE_BYTES it pauses PACE_MS, so that anvil's socket
 * fills and anvil writes in large blocks instead of line by line. */
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

static const char request[] = "VERSION\tanvil\t1\t0\nCONNECT-DUMP\n";

static int connect_anvil(const char *path)
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
	    write(fd, request, sizeof(request) - 1) !=
	            (ssize_t)(sizeof(request) - 1)) {
		fprintf(stderr, "floor: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The dump ends at the first empty line: a '\n' right after another one,
 * or as the very first byte. prev carries the byte before buf across
 * reads. */
static bool ends_dump(const char *buf, size_t n, char *prev, uint64_t *lines)
{
	const char *p = buf;
	const char *end = buf + n;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		char before = p == buf ? *prev : p[-1];

		if (before == '\n')
			return true;
		(*lines)++;
		p++;
	}
	*prev = buf[n - 1];
	return false;
}

int main(int argc, char **argv)
{
	static char buf[READ_SIZE];
	uint64_t bytes = 0, lines = 0;
	char prev = '\n';
	int fd;

	bool paced = argc == 3 && strcmp(argv[1], "-p") == 0;

	if (argc != 2 + paced) {
		fprintf(stderr, "usage: floor [-p] ANVIL_SOCKET\n");
		return 64;
	}
	fd = connect_anvil(argv[1 + paced]);
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
		if (ends_dump(buf, (size_t)n, &prev, &lines))
			break;
		if (paced && n < PACE_BYTES)
			poll(NULL, 0, PACE_MS);
	}
	close(fd);
	printf("%llu bytes, %llu lines\n", (unsigned long long)bytes,
	       (unsigned long long)lines);
	return 0;
}
