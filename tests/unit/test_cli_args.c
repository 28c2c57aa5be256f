/* kickgate command line: every usage and data error with its exit code and
 * message, and the normalized request of every accepted form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "kg_config.h"

#define MAX_ARGS 8

/* The copied argv of the last parse: cli->socket may point into it, so it
 * lives until the next parse. */
static char *kept[MAX_ARGS + 2];

static void drop_kept(void)
{
	for (size_t i = 1; i < MAX_ARGS + 2; i++) {
		free(kept[i]);
		kept[i] = NULL;
	}
}

/* Runs the parser on a copy of args (NULL-terminated, without argv[0]), so
 * that argv is as writable as a real one. */
static int parse(const char *const *args, const char *env, struct kg_cli *cli,
                 char msg[KG_CLI_MSG_MAX])
{
	int argc = 1;

	drop_kept();
	kept[0] = "kickgate";
	for (; args[argc - 1] != NULL; argc++) {
		assert_true(argc <= MAX_ARGS);
		kept[argc] = strdup(args[argc - 1]);
		assert_non_null(kept[argc]);
	}
	return kg_cli_parse(argc, kept, env, cli, msg);
}

/* Strings that do not fit in a table initializer. */
static char long_glob[KG_GLOB_MAX + 2];   /* 256 x 'a' */
static char long_arg[KG_CLI_ARG_MAX + 2]; /* 4097 x 'b' */
static char max_arg[KG_CLI_ARG_MAX + 1];  /* 4096 x 'c' */
static char long_anvil[KG_PATH_MAX + 2];  /* "/" + 107 x 'd' */
static char long_socket[KG_PATH_MAX + 2]; /* 108 x 'e' */
static char max_socket[KG_PATH_MAX + 1];  /* "/" + 106 x 'f' */

static int make_strings(void **state)
{
	(void)state;
	memset(long_glob, 'a', KG_GLOB_MAX + 1);
	memset(long_arg, 'b', KG_CLI_ARG_MAX + 1);
	memset(max_arg, 'c', KG_CLI_ARG_MAX);
	long_anvil[0] = '/';
	memset(long_anvil + 1, 'd', KG_PATH_MAX);
	memset(long_socket, 'e', KG_PATH_MAX + 1);
	max_socket[0] = '/';
	memset(max_socket + 1, 'f', KG_PATH_MAX - 1);
	return 0;
}

/* ------------------------------------------------------------- errors */

struct bad_case {
	const char *args[MAX_ARGS + 1];
	int code;
	const char *msg; /* the whole message */
};

static const struct bad_case bad_cases[] = {
        {{NULL}, 64, "no command given (kick or who); see kickgate --help"},
        {{"frob", NULL}, 64, "unknown command 'frob' (kick or who)"},
        {{"-j", "kick", "alice", NULL},
         64,
         "the command (kick or who) must come before options, not '-j'"},
        {{"kick", NULL}, 64, "kick needs a user glob, a network or both"},
        {{"kick", "-f", "-n", NULL},
         64,
         "kick needs a user glob, a network or both"},
        {{"kick", "1.2.3", NULL},
         65,
         "invalid network '1.2.3': is not a valid IP address"},
        {{"kick", "127.1", NULL},
         65,
         "invalid network '127.1': is not a valid IP address"},
        {{"kick", "10.0.0.0/", NULL},
         65,
         "invalid network '10.0.0.0/': has an invalid prefix length"},
        {{"kick", "10.0.0.0/33", NULL},
         65,
         "invalid network '10.0.0.0/33': has an invalid prefix length"},
        {{"kick", "--net", "fe80::1%eth0", NULL},
         65,
         "invalid network 'fe80::1%eth0': contains a byte not allowed in a "
         "network"},
        {{"kick", "--net", "alice", NULL},
         65,
         "invalid network 'alice': contains a byte not allowed in a network"},
        {{"kick", "a\tb", NULL},
         65,
         "invalid user glob 'a\\x09b': contains a control byte or invalid "
         "UTF-8"},
        {{"kick", "\xff", NULL},
         65,
         "invalid user glob '\\xff': contains a control byte or invalid UTF-8"},
        {{"kick", "-u", "x\x1b[2J", NULL},
         65,
         "invalid user glob 'x\\x1b[2J': contains a control byte or invalid "
         "UTF-8"},
        {{"kick", "", NULL}, 64, "the user glob is empty"},
        {{"kick", "-u", "", NULL}, 64, "the user glob is empty"},
        {{"kick", "alice", "bob", NULL}, 64, "only one user glob may be given"},
        {{"kick", "-u", "alice", "bob", NULL},
         64,
         "only one user glob may be given"},
        {{"who", "-u", "alice", "-u", "bob", NULL},
         64,
         "only one user glob may be given"},
        {{"kick", "10.0.0.0/8", "192.0.2.1", NULL},
         64,
         "only one network may be given"},
        {{"kick", "--net", "10.0.0.0/8", "2001:db8::/32", NULL},
         64,
         "only one network may be given"},
        {{"kick", "alice", "10.0.0.0/8", "bob", NULL},
         64,
         "only one user glob may be given"},
        {{"who", "-f", NULL}, 64, "option -f is only valid with kick"},
        {{"who", "-n", "alice", NULL}, 64, "option -n is only valid with kick"},
        {{"kick", "-1", "alice", NULL}, 64, "option -1 is only valid with who"},
        {{"kick", "-a", "run/anvil", "alice", NULL},
         64,
         "-a needs an absolute path of at most 107 bytes without control "
         "bytes, not 'run/anvil'"},
        {{"kick", "-a", "/run/a\nvil", "alice", NULL},
         64,
         "-a needs an absolute path of at most 107 bytes without control "
         "bytes, not '/run/a\\x0avil'"},
        {{"kick", "-x", "alice", NULL}, 64, "unknown option '-x'"},
        {{"kick", "-fx", "alice", NULL}, 64, "unknown option '-x'"},
        {{"kick", "--frob", "alice", NULL}, 64, "unknown option '--frob'"},
        {{"kick", "--help=yes", NULL}, 64, "unknown option '--help=yes'"},
        {{"kick", "-S", NULL}, 64, "option '-S' needs an argument"},
        {{"kick", "alice", "-a", NULL},
         64,
         "options must come before the user and network: '-a'"},
        {{"kick", "--net", NULL}, 64, "option '--net' needs an argument"},
        {{"kick", "-S", "", "alice", NULL},
         64,
         "-S: the broker socket path must have 1 to 107 bytes, not ''"},
        {{"kick", "alice", "-f", NULL},
         64,
         "options must come before the user and network: '-f'"},
        {{"kick", "alice", "--", "bob", NULL},
         64,
         "options must come before the user and network: '--'"},
};

static void test_each_error_has_its_exit_code_and_message(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char msg[KG_CLI_MSG_MAX];
		struct kg_cli cli;
		int rc = parse(c->args, NULL, &cli, msg);

		if (rc != c->code || strcmp(msg, c->msg) != 0)
			fail_msg("case %zu: got %d '%s', want %d '%s'", i, rc,
			         msg, c->code, c->msg);
	}
}

struct long_case {
	const char *args[MAX_ARGS + 1];
	int code;
};

/* Cases built from the long strings, so checked by exit code only. */
static void test_overlong_arguments_are_rejected(void **state)
{
	const struct long_case cases[] = {
	        {{"kick", long_glob, NULL}, 65},
	        {{"kick", "-u", long_glob, NULL}, 65},
	        {{"kick", long_arg, NULL}, 64},
	        {{"who", "-j", long_arg, NULL}, 64},
	        {{long_arg, NULL}, 64},
	        {{"kick", "-a", long_anvil, "alice", NULL}, 64},
	        {{"kick", "-S", long_socket, "alice", NULL}, 64},
	        {{"kick", max_arg, NULL}, 65},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[KG_CLI_MSG_MAX];
		struct kg_cli cli;
		int rc = parse(cases[i].args, NULL, &cli, msg);

		if (rc != cases[i].code)
			fail_msg("case %zu: got %d '%s', want %d", i, rc, msg,
			         cases[i].code);
		assert_true(strlen(msg) > 0);
	}
}

static void test_long_argument_is_quoted_shortened(void **state)
{
	const char *args[] = {"kick", long_arg, NULL};
	char msg[KG_CLI_MSG_MAX], want[KG_CLI_MSG_MAX];
	struct kg_cli cli;

	(void)state;
	assert_int_equal(parse(args, NULL, &cli, msg), 64);
	snprintf(want, sizeof(want),
	         "argument '%.64s...' is longer than 4096 bytes", long_arg);
	assert_string_equal(msg, want);
}

static void test_socket_from_environment_is_checked(void **state)
{
	const char *args[] = {"who", NULL};
	char msg[KG_CLI_MSG_MAX];
	struct kg_cli cli;

	(void)state;
	assert_int_equal(parse(args, long_socket, &cli, msg), 64);
	assert_non_null(strstr(msg, "KICKGATE_SOCKET: "));
}

/* ------------------------------------------------------ accepted forms */

struct good_case {
	const char *args[MAX_ARGS + 1];
	const char *env;
	enum kg_cli_action action;
	uint8_t op;
	uint8_t flags;
	const char *glob;   /* normalized; "" for none */
	const char *net;    /* canonical text; "" for none */
	const char *anvil;  /* "" for the default */
	const char *socket; /* NULL: the build default */
	bool json;
};

static const struct good_case good_cases[] = {
        {{"kick", "ALICE@Example.COM", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_KICK,
         0,
         "alice@example.com",
         "",
         "",
         NULL,
         false},
        {{"kick", "-f", "-n", "-j", "Bob", "10.1.2.3/8", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_KICK,
         KG_REQ_FORCE | KG_REQ_DRY_RUN,
         "bob",
         "10.0.0.0/8",
         "",
         NULL,
         true},
        {{"kick", "-fn", "192.0.2.7", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_KICK,
         KG_REQ_FORCE | KG_REQ_DRY_RUN,
         "",
         "192.0.2.7/32",
         "",
         NULL,
         false},
        {{"kick", "::ffff:192.0.2.1", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_KICK,
         0,
         "",
         "192.0.2.1/32",
         "",
         NULL,
         false},
        {{"kick", "2001:DB8::1/32", "j*rg**n", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_KICK,
         0,
         "j*rg*n",
         "2001:db8::/32",
         "",
         NULL,
         false},
        {{"kick", "fe80::1%eth0", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_KICK,
         0,
         "fe80::1%eth0",
         "",
         "",
         NULL,
         false},
        {{"kick", "-u", "10.0.0.1", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_KICK,
         0,
         "10.0.0.1",
         "",
         "",
         NULL,
         false},
        {{"kick", "--net", "10.0.0.0/8", "-u", "J\xc3\xbcrgen", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_KICK,
         0,
         "j\xc3\xbcrgen",
         "10.0.0.0/8",
         "",
         NULL,
         false},
        {{"kick", "--", "-bob", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_KICK,
         0,
         "-bob",
         "",
         "",
         NULL,
         false},
        {{"who", NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_WHO,
         0,
         "",
         "",
         "",
         NULL,
         false},
        {{"who", "-1", "-j", "-S", "/tmp/k.sock", "-a", "/run/dovecot-b/anvil",
          NULL},
         "/env.sock",
         KG_CLI_RUN,
         KG_OP_WHO,
         KG_REQ_SEPARATE,
         "",
         "",
         "/run/dovecot-b/anvil",
         "/tmp/k.sock",
         true},
        {{"who", "*@Tenant-A.example", "2001:db8::/32", NULL},
         "/env.sock",
         KG_CLI_RUN,
         KG_OP_WHO,
         0,
         "*@tenant-a.example",
         "2001:db8::/32",
         "",
         "/env.sock",
         false},
        {{"who", "-S", "relative.sock", NULL},
         "",
         KG_CLI_RUN,
         KG_OP_WHO,
         0,
         "",
         "",
         "",
         "relative.sock",
         false},
        {{"who", "-S", max_socket, NULL},
         NULL,
         KG_CLI_RUN,
         KG_OP_WHO,
         0,
         "",
         "",
         "",
         max_socket,
         false},
        {{"--help", NULL}, NULL, KG_CLI_HELP, 0, 0, "", "", "", NULL, false},
        {{"-h", NULL}, NULL, KG_CLI_HELP, 0, 0, "", "", "", NULL, false},
        {{"kick", "--help", NULL},
         NULL,
         KG_CLI_HELP,
         KG_OP_KICK,
         0,
         "",
         "",
         "",
         NULL,
         false},
        {{"--version", NULL},
         NULL,
         KG_CLI_VERSION,
         0,
         0,
         "",
         "",
         "",
         NULL,
         false},
};

static void check_good(size_t i, const struct good_case *c)
{
	char msg[KG_CLI_MSG_MAX], net[KG_NET_STRLEN] = "";
	struct kg_cli cli;
	int rc = parse(c->args, c->env, &cli, msg);

	if (rc != 0)
		fail_msg("case %zu: rejected with %d '%s'", i, rc, msg);
	assert_int_equal(cli.action, c->action);
	assert_int_equal(cli.req.op, c->op);
	if (c->action != KG_CLI_RUN)
		return;
	assert_int_equal(cli.req.flags, c->flags);
	assert_int_equal(cli.req.glob_len, strlen(c->glob));
	assert_string_equal(cli.req.glob, c->glob);
	if (cli.req.net.family != KG_AF_NONE)
		kg_net_format(&cli.req.net, net);
	assert_string_equal(net, c->net);
	assert_int_equal(cli.req.path_len, strlen(c->anvil));
	assert_string_equal(cli.req.path, c->anvil);
	assert_string_equal(cli.socket,
	                    c->socket != NULL ? c->socket : KG_DEFAULT_SOCKET);
	assert_int_equal(cli.json, c->json);
	assert_int_equal(kg_request_check(&cli.req), KG_WIRE_OK);
}

static void test_accepted_forms_give_normalized_requests(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++)
		check_good(i, &good_cases[i]);
}

/* getopt keeps global state: a second parse must not inherit the first. */
static void test_parses_are_independent(void **state)
{
	const char *first[] = {"kick", "-f", "-n", "alice", NULL};
	const char *second[] = {"kick", "bob", NULL};
	char msg[KG_CLI_MSG_MAX];
	struct kg_cli cli;

	(void)state;
	assert_int_equal(parse(first, NULL, &cli, msg), 0);
	assert_int_equal(parse(second, NULL, &cli, msg), 0);
	assert_int_equal(cli.req.flags, 0);
	assert_string_equal(cli.req.glob, "bob");
}

static void test_usage_names_every_option(void **state)
{
	const char *opts[] = {"-S", "-a", "-f",    "-n",     "-1",
	                      "-j", "-u", "--net", "--help", "--version"};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	kg_cli_usage(f);
	assert_int_equal(fclose(f), 0);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (strstr(text, opts[i]) == NULL)
			fail_msg("usage lacks %s", opts[i]);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_each_error_has_its_exit_code_and_message),
	        cmocka_unit_test(test_overlong_arguments_are_rejected),
	        cmocka_unit_test(test_long_argument_is_quoted_shortened),
	        cmocka_unit_test(test_socket_from_environment_is_checked),
	        cmocka_unit_test(test_accepted_forms_give_normalized_requests),
	        cmocka_unit_test(test_parses_are_independent),
	        cmocka_unit_test(test_usage_names_every_option),
	};

	int failed = cmocka_run_group_tests(tests, make_strings, NULL);

	drop_kept();
	return failed;
}
