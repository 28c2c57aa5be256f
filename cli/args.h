/* SPDX-License-Identifier: MIT */
/* The kickgate CLI's command line: argv to a validated, normalized
 * request, or an exit code with a one-line message. */
#ifndef KG_CLI_ARGS_H
#define KG_CLI_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#include "proto/wire.h"

/* Longest accepted argument, bytes. */
#define KG_CLI_ARG_MAX 4096
/* Room for a message: fixed text plus one escaped, shortened argument. */
#define KG_CLI_MSG_MAX 512

enum kg_cli_action {
	KG_CLI_RUN,     /* send cli->req to cli->socket */
	KG_CLI_HELP,    /* print the usage to stdout */
	KG_CLI_VERSION, /* print the version to stdout */
};

struct kg_cli {
	enum kg_cli_action action;
	struct kg_request req;
	bool json;
	const char *socket; /* from -S, env_socket or the build default */
};

/* Parses argv (argv[0] is the program name). env_socket is the value of
 * KICKGATE_SOCKET, or NULL. Returns 0 with *cli filled, or an exit code
 * (KG_EXIT_USAGE, KG_EXIT_DATAERR) with msg set to one line without the
 * program name. Uses getopt_long, whose state is global: not reentrant. */
int kg_cli_parse(int argc, char *const argv[], const char *env_socket,
                 struct kg_cli *cli, char msg[KG_CLI_MSG_MAX]);

void kg_cli_usage(FILE *f);

#endif
