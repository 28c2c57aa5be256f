/* SPDX-License-Identifier: MIT */
#include "broker/main.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/peer.h"
#include "broker/serve.h"
#include "policy/config.h"
#include "proto/log.h"

#define EXIT_USAGE  64
#define EXIT_CONFIG 78

#define REQUIRED_SEALS                                                         \
	(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static _Noreturn void die(int status, const char *what)
{
	kg_log_err("%s", what);
	exit(status);
}

/* The configuration's bytes, from a memfd nobody can change any more:
 * what the supervisor checked is what the broker parses. */
static char *read_config(size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;

	if (fcntl(KG_BROKER_CONFIG_FD, F_GET_SEALS) != REQUIRED_SEALS ||
	    fstat(KG_BROKER_CONFIG_FD, &st) < 0 || st.st_size <= 0 ||
	    st.st_size > KG_CONF_FILE_MAX)
		die(EXIT_USAGE, "the configuration handed over is not a "
		                "sealed file of a valid size");
	buf = malloc((size_t)st.st_size);
	if (buf == NULL)
		die(1, "out of memory reading the configuration");
	n = pread(KG_BROKER_CONFIG_FD, buf, (size_t)st.st_size, 0);
	if (n != st.st_size)
		die(1, "reading the configuration handed over failed");
	close(KG_BROKER_CONFIG_FD);
	*len = (size_t)n;
	return buf;
}

/* Each error logged as a line of its own; there should be none, since
 * the supervisor parsed the same bytes, unless an account named in them
 * changed in between. */
static void parse_config(const char *name, struct kg_config *cfg)
{
	char *errs = NULL, *save;
	size_t errs_len = 0, len;
	char *text = read_config(&len);
	FILE *f = open_memstream(&errs, &errs_len);
	int errors = kg_config_parse_buf(name, text, len, cfg, f);

	if (f != NULL)
		fclose(f);
	free(text);
	if (errors == 0) {
		free(errs);
		return;
	}
	if (errs != NULL)
		for (char *l = strtok_r(errs, "\n", &save); l != NULL;
		     l = strtok_r(NULL, "\n", &save))
			kg_log_err("%s", l);
	die(EXIT_CONFIG, "the configuration no longer parses; broker not "
	                 "started");
}

/* The listening socket's address comes first on the channel: the broker
 * takes identities only from connections accepted on it. */
static void read_origin(struct kg_client_origin *o)
{
	ssize_t n = recv(KG_BROKER_CHANNEL_FD, &o->listener,
	                 sizeof(o->listener), MSG_TRUNC);

	if (n != (ssize_t)sizeof(o->listener) ||
	    o->listener.len > sizeof(o->listener.sa))
		die(EXIT_USAGE, "no valid start message from the supervisor");
	o->supervisor = getppid();
}

_Noreturn void kg_broker_role(int argc, char **argv)
{
	static struct kg_config cfg;
	bool to_stderr = argc == 4 && strcmp(argv[3], "stderr") == 0;
	struct kg_broker_start st = {.cfg = &cfg,
	                             .supervisor_fd = KG_BROKER_CHANNEL_FD};

	close_range(KG_BROKER_CONFIG_FD + 1, ~0U, 0);
	if (argc != 4 || (!to_stderr && strcmp(argv[3], "syslog") != 0)) {
		fprintf(stderr, "kickgated: --broker is for kickgated's own "
		                "use\n");
		exit(EXIT_USAGE);
	}
	prctl(PR_SET_NAME, "kickgated", 0, 0, 0);
	kg_log_open("kickgated", to_stderr);
	kg_log_role("broker");
	parse_config(argv[2], &cfg);
	read_origin(&st.clients);
	kg_broker_main(&st);
	exit(1);
}
