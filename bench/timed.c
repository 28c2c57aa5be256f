/* SPDX-License-Identifier: MIT */
/* Runs a command and reports its wall time and peak resident memory.
 * Usage: timed FD COMMAND [ARG...]. Writes one line to descriptor FD:
 * the seconds from just before the spawn to the command's exit, and its
 * ru_maxrss in KiB; exits as the command did (128 plus the signal if one
 * ended it).
 *
 * A child's ru_maxrss counts the memory of the process it was forked
 * from, up to its exec: run straight from the bench, every command would
 * report at least the bench's own Python. Spawned by this small program
 * instead, it reports its own. The clock starts here, so that this
 * program's own start is not counted. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int exit_code(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int parse_fd(const char *s)
{
	char *end;
	long fd;

	errno = 0;
	fd = strtol(s, &end, 10);
	if (errno || *end || end == s || fd < 0 || fd > 1023)
		return -1;
	return (int)fd;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	int fd = argc >= 3 ? parse_fd(argv[1]) : -1;
	int status;
	int err;
	double t0;
	pid_t pid;

	if (fd < 0) {
		fprintf(stderr, "usage: timed FD COMMAND [ARG...]\n");
		return 64;
	}
	/* The command must not hold the report open: the bench reads it to
	 * its end. */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		fprintf(stderr, "timed: descriptor %d: %s\n", fd,
		        strerror(errno));
		return 64;
	}
	t0 = now();
	err = posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ);
	if (err) {
		fprintf(stderr, "timed: %s: %s\n", argv[2], strerror(err));
		return 127;
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		fprintf(stderr, "timed: %s\n", strerror(errno));
		return 70;
	}
	if (dprintf(fd, "%.6f %ld\n", now() - t0, ru.ru_maxrss) < 0) {
		fprintf(stderr, "timed: write to %d: %s\n", fd,
		        strerror(errno));
		return 70;
	}
	return exit_code(status);
}
