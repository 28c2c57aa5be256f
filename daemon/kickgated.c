/* SPDX-License-Identifier: MIT */
/* kickgated: reads its config as root, opens the listening socket, then
 * becomes the supervisor of the CAP_KILL-only broker and of one
 * unprivileged frontend per client connection. Each of them is this
 * program again, exec'd with --broker or --frontend; main() hands those
 * to their role's own entry before anything else runs. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker/main.h"
#include "daemon/fds.h"
#include "daemon/listener.h"
#include "daemon/supervisor.h"
#include "frontend/main.h"
#include "kg_config.h"
#include "policy/config.h"
#include "policy/frontend_account.h"
#include "proto/log.h"

#define EXIT_CONFIG 78 /* sysexits' EX_CONFIG */
#define EXIT_BUSY   73 /* sysexits' EX_CANTCREAT: the socket is in use */

struct options {
	const char *config;
	bool foreground;
	bool check_only;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kickgated [-c FILE] [-F] [-t]\n"
	           "       kickgated -h | --help | -V | --version\n"
	           "  -c FILE  configuration (default " KG_DEFAULT_CONFIG ")\n"
	           "  -F       stay in the foreground, log to stderr\n"
	           "  -t       check the configuration and exit\n"
	           "An example configuration: " KG_EXAMPLE_CONFIG "\n");
}

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option long_opts[] = {
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){.config = KG_DEFAULT_CONFIG};
	while ((c = getopt_long(argc, argv, "+c:FtVh", long_opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'F':
			o->foreground = true;
			break;
		case 't':
			o->check_only = true;
			break;
		case 'V':
			puts("kickgated " KG_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(64);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "kickgated: unexpected argument '%s'\n",
		        argv[optind]);
		exit(64);
	}
}

/* Classic double fork: no controlling terminal, not a process group
 * leader, stdio on /dev/null. */
static void daemonize(void)
{
	int fd;

	if (fork() != 0)
		_exit(0);
	setsid();
	if (fork() != 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
}

/* A closed fd 0, 1 or 2 would be reused by the listening socket or a
 * client's, and log lines written there would reach a client. */
static void fill_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			exit(1);
}

/* Whatever started kickgated may have left descriptors open (a shell's
 * pipe, a socket to another service): none of them is the daemon's
 * business, and children would inherit them. Only systemd's socket, when
 * it passed one, stays. */
static void close_inherited(void)
{
	int passed = KG_LISTENER_PASSED_FD;

	if (kg_fds_keep_only(&passed, kg_listener_passed() ? 1 : 0) < 0) {
		fprintf(stderr,
		        "kickgated: closing inherited descriptors: %s\n",
		        strerror(errno));
		exit(1);
	}
}

/* The supervisor holds every client connection until the broker has it,
 * up to a queue per broker: allow the descriptors the hard limit
 * permits. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	struct kg_config cfg;
	int errors, listen_fd;

	if (argc > 1 && strcmp(argv[1], "--frontend") == 0)
		kg_frontend_role(argc, argv);
	if (argc > 1 && strcmp(argv[1], "--broker") == 0)
		kg_broker_role(argc, argv);
	fill_std_fds();
	close_inherited();
	parse_args(argc, argv, &o);
	errors = kg_config_load_for_daemon(o.config, &cfg, stderr);
	if (o.check_only) {
		if (errors == 0)
			printf("%s: ok\n", o.config);
		kg_config_free(&cfg);
		return errors == 0 ? 0 : EXIT_CONFIG;
	}
	if (errors > 0)
		return EXIT_CONFIG;
	if (geteuid() != 0) {
		fprintf(stderr, "kickgated: must be started as root\n");
		return 1;
	}
	/* Start-up errors go to stderr even without -F: the socket is
	 * opened before the daemon detaches. */
	kg_log_open("kickgated", true);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	listen_fd = kg_listener_open(cfg.listen, cfg.listen_mode);
	if (listen_fd < 0)
		return listen_fd == KG_LISTENER_BUSY ? EXIT_BUSY : 1;
	if (!o.foreground) {
		daemonize();
		kg_log_open("kickgated", false);
	}
	return kg_supervisor_run(&cfg, o.config, listen_fd);
}
