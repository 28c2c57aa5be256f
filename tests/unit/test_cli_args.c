/* SPDX-License-Identifier: MIT */
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

#include "cli/args.h"
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
/* A glob's length limit applies once escapes are undone: "\xc3\xa9" (é)
 * 127 times is 254 bytes, 128 times 256 bytes. */
#define ESC_E_ACUTE "\\xc3\\xa9"
#define ESC_LEN     (sizeof(ESC_E_ACUTE) - 1)
static char esc_glob[127 * ESC_LEN + 1];
static char esc_glob_long[128 * ESC_LEN + 1];
static char esc_glob_want[127 * 2 + 1];

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
	for (size_t i = 0; i < 128; i++) {
		memcpy(esc_glob_long + i * ESC_LEN, ESC_E_ACUTE, ESC_LEN);
		if (i < 127)
			memcpy(esc_glob_want + 2 * i, "\xc3\xa9", 2);
	}
	memcpy(esc_glob, esc_glob_long, 127 * ESC_LEN);
	return 0;
}

/* ------------------------------------------------------------- errors */

struct bad_case {
	const char *args[MAX_ARGS + 1];
	int code;
	const char *msg; /* the whole message; NULL: any */
};

static const struct bad_case bad_cases[] = {
        {{NULL},
         64,
         "no command given (kick, who or instances); see kickgate "
         "--help"},
        {{"frob", NULL},
         64,
         "unknown command 'frob' (kick, who, instances or help)"},
        {{"-f", NULL},
         64,
         "no command given (kick, who or instances); see kickgate "
         "--help"},
        {{"-f", "who", NULL}, 64, "option -f is only valid with kick"},
        {{"-1", "kick", "alice", NULL}, 64, "option -1 is only valid with who"},
        {{"who", "alice", "-n", NULL}, 64, "option -n is only valid with kick"},
        {{"kick", NULL},
         64,
         "kick needs a user glob, a network, a --field or a destination (-h)"},
        {{"kick", "-f", "-n", NULL},
         64,
         "kick needs a user glob, a network, a --field or a destination (-h)"},
        {{"kick", "1.2.3", NULL},
         65,
         "invalid network '1.2.3': is not a valid IPv4 address (for a user "
         "name that looks like this, use -u)"},
        {{"kick", "127.1", NULL},
         65,
         "invalid network '127.1': is not a valid IPv4 address (for a user "
         "name that looks like this, use -u)"},
        {{"who", "1.2.3.4.5", NULL},
         65,
         "invalid network '1.2.3.4.5': is not a valid IPv4 address (for a user "
         "name that looks like this, use -u)"},
        {{"kick", "10.0.0.0/", NULL},
         65,
         "invalid network '10.0.0.0/': has an invalid prefix length (for a "
         "user name that looks like this, use -u)"},
        {{"kick", "1.2.3.4/", NULL},
         65,
         "invalid network '1.2.3.4/': has an invalid prefix length (for a user "
         "name that looks like this, use -u)"},
        {{"kick", "10.0.0.0/33", NULL},
         65,
         "invalid network '10.0.0.0/33': has an invalid prefix length (for a "
         "user name that looks like this, use -u)"},
        {{"kick", "10.0.0.0/8x", NULL},
         65,
         "invalid network '10.0.0.0/8x': has an invalid prefix length (for a "
         "user name that looks like this, use -u)"},
        {{"kick", "dead::beef::1", NULL},
         65,
         "invalid network 'dead::beef::1': is not a valid IPv6 address (for a "
         "user name that looks like this, use -u)"},
        {{"kick", "fe80::1%eth0", NULL},
         65,
         "invalid network 'fe80::1%eth0': has an IPv6 zone (%...), which a "
         "client address never has (for a user name that looks like this, use "
         "-u)"},
        {{"kick", "--net", "fe80::1%eth0", NULL},
         65,
         "invalid network 'fe80::1%eth0': has an IPv6 zone (%...), which a "
         "client address never has"},
        {{"kick", "--net", "alice", NULL},
         65,
         "invalid network 'alice': contains a byte not allowed in a network"},
        {{"kick", "a\tb", NULL},
         65,
         "invalid user glob 'a\\x09b': contains a control byte or invalid "
         "UTF-8, which a glob cannot hold (? matches any one byte)"},
        {{"kick", "\xff", NULL},
         65,
         "invalid user glob '\\xff': contains a control byte or invalid "
         "UTF-8, which a glob cannot hold (? matches any one byte)"},
        {{"kick", "-u", "x\x1b[2J", NULL},
         65,
         "invalid user glob 'x\\x1b[2J': contains a control byte or invalid "
         "UTF-8, which a glob cannot hold (? matches any one byte)"},
        /* An escape stands for its byte, which must be one a glob can
         * hold; a backslash starts an escape or is an error. */
        {{"kick", "a\\x09b", NULL},
         65,
         "invalid user glob 'a\\x5cx09b': contains a control byte or "
         "invalid UTF-8, which a glob cannot hold (? matches any one byte)"},
        {{"kick", "-u", "\\x00", NULL},
         65,
         "invalid user glob '\\x5cx00': contains a control byte or invalid "
         "UTF-8, which a glob cannot hold (? matches any one byte)"},
        {{"kick", "\\xe2\\x80", NULL},
         65,
         "invalid user glob '\\x5cxe2\\x5cx80': contains a control byte or "
         "invalid UTF-8, which a glob cannot hold (? matches any one byte)"},
        {{"kick", "dom\\user", NULL},
         65,
         "invalid user glob 'dom\\x5cuser': the backslash at byte 4 does not "
         "start an escape \\xNN (a backslash is written \\x5c)"},
        {{"who", "ab\\x4", NULL},
         65,
         "invalid user glob 'ab\\x5cx4': the backslash at byte 3 does not "
         "start an escape \\xNN (a backslash is written \\x5c)"},
        {{"who", "\\X41", NULL},
         65,
         "invalid user glob '\\x5cX41': the backslash at byte 1 does not "
         "start an escape \\xNN (a backslash is written \\x5c)"},
        {{"who", "a\\xg1", NULL},
         65,
         "invalid user glob 'a\\x5cxg1': the backslash at byte 2 does not "
         "start an escape \\xNN (a backslash is written \\x5c)"},
        {{"kick", "", NULL}, 64, "the user glob is empty"},
        {{"kick", "-u", "", NULL}, 64, "the user glob is empty"},
        {{"kick", "alice", "bob", NULL},
         64,
         "Multiple username masks not supported: 'bob' is a second user mask "
         "(quote a name that contains spaces)"},
        {{"kick", "-u", "alice", "bob", NULL},
         64,
         "Multiple username masks not supported: 'bob' is a second user mask "
         "(quote a name that contains spaces)"},
        {{"who", "-u", "alice", "-u", "bob", NULL},
         64,
         "Multiple username masks not supported: 'bob' is a second user mask "
         "(quote a name that contains spaces)"},
        {{"kick", "alice", "--", "bob", NULL},
         64,
         "Multiple username masks not supported: 'bob' is a second user mask "
         "(quote a name that contains spaces)"},
        {{"kick", "10.0.0.0/8", "192.0.2.1", NULL},
         64,
         "Multiple network masks not supported: '192.0.2.1' is a second "
         "network (run kickgate once per network)"},
        {{"kick", "--net", "10.0.0.0/8", "2001:db8::/32", NULL},
         64,
         "Multiple network masks not supported: '2001:db8::/32' is a second "
         "network (run kickgate once per network)"},
        {{"kick", "alice", "10.0.0.0/8", "bob", NULL},
         64,
         "Multiple username masks not supported: 'bob' is a second user mask "
         "(quote a name that contains spaces)"},
        {{"who", "-f", NULL}, 64, "option -f is only valid with kick"},
        {{"who", "-n", "alice", NULL}, 64, "option -n is only valid with kick"},
        {{"kick", "-1", "alice", NULL}, 64, "option -1 is only valid with who"},
        {{"kick", "-a", "run/anvil", "alice", NULL},
         64,
         "-a needs an instance name (1 to 64 of A-Z a-z 0-9 _ . -) or an "
         "absolute socket path of at most 107 bytes without control bytes, "
         "not 'run/anvil'"},
        {{"kick", "-a", "/run/a\nvil", "alice", NULL},
         64,
         "-a needs an instance name (1 to 64 of A-Z a-z 0-9 _ . -) or an "
         "absolute socket path of at most 107 bytes without control bytes, "
         "not '/run/a\\x0avil'"},
        {{"who", "-a", "tenant b", NULL},
         64,
         "-a needs an instance name (1 to 64 of A-Z a-z 0-9 _ . -) or an "
         "absolute socket path of at most 107 bytes without control bytes, "
         "not 'tenant b'"},
        {{"who", "-a", "", NULL},
         64,
         "-a needs an instance name (1 to 64 of A-Z a-z 0-9 _ . -) or an "
         "absolute socket path of at most 107 bytes without control bytes, "
         "not ''"},
        {{"who", "-a",
          "n123456789n123456789n123456789n123456789n123456789n123456789n1234",
          NULL},
         64,
         "-a needs an instance name (1 to 64 of A-Z a-z 0-9 _ . -) or an "
         "absolute socket path of at most 107 bytes without control bytes, "
         "not 'n123456789n123456789n123456789n123456789n123456789n123456789n"
         "123...'"},
        {{"instances", "alice", NULL},
         64,
         "instances takes no user, network, --field, destination or -a: it "
         "lists every instance you may use"},
        {{"instances", "-a", "b", NULL},
         64,
         "instances takes no user, network, --field, destination or -a: it "
         "lists every instance you may use"},
        {{"instances", "--net", "10.0.0.0/8", NULL},
         64,
         "instances takes no user, network, --field, destination or -a: it "
         "lists every instance you may use"},
        {{"instances", "-f", NULL}, 64, "option -f is only valid with kick"},
        {{"instances", "-1", NULL}, 64, "option -1 is only valid with who"},
        {{"kick", "-x", "alice", NULL},
         64,
         "unknown option '-x' (a user glob that starts with '-' goes after "
         "--)"},
        {{"kick", "-fx", "alice", NULL},
         64,
         "unknown option '-x' (a user glob that starts with '-' goes after "
         "--)"},
        {{"kick", "-weird-user", NULL},
         64,
         "unknown option '-w' (a user glob that starts with '-' goes after "
         "--)"},
        {{"kick", "--frob", "alice", NULL},
         64,
         "unknown option '--frob' (a user glob that starts with '-' goes after "
         "--)"},
        {{"kick", "--help=yes", NULL},
         64,
         "unknown option '--help=yes' (a user glob that starts with '-' goes "
         "after --)"},
        {{"kick", "-S", NULL}, 64, "option '-S' needs an argument"},
        {{"kick", "alice", "-a", NULL}, 64, "option '-a' needs an argument"},
        {{"kick", "--net", NULL}, 64, "option '--net' needs an argument"},
        {{"kick", "-S", "", "alice", NULL},
         64,
         "-S: the broker socket path must have 1 to 107 bytes, not ''"},
        /* Dovecot 2.4's selectors: --field NAME=VALUE, -h and --dest. */
        {{"kick", "--field", NULL}, 64, "option '--field' needs an argument"},
        {{"who", "--dest", NULL}, 64, "option '--dest' needs an argument"},
        {{"kick", "-h", NULL},
         64,
         "option '-h' needs a destination network (help is --help)"},
        {{"who", "alice", "-h", NULL},
         64,
         "option '-h' needs a destination network (help is --help)"},
        {{"kick", "--field", "user_tenant", NULL},
         65,
         "invalid field 'user_tenant': NAME=VALUE expected, NAME 1 to 64 of "
         "A-Z a-z 0-9 _ . -"},
        {{"kick", "--field", "=x", NULL},
         65,
         "invalid field '=x': NAME=VALUE expected, NAME 1 to 64 of A-Z a-z "
         "0-9 _ . -"},
        {{"kick", "--field", "user tenant=x", NULL},
         65,
         "invalid field 'user tenant=x': NAME=VALUE expected, NAME 1 to 64 "
         "of A-Z a-z 0-9 _ . -"},
        {{"kick", "--field",
          "n123456789n123456789n123456789n123456789n123456789n123456789n1234="
          "x",
          NULL},
         65,
         "invalid field 'n123456789n123456789n123456789n123456789n123456789n"
         "123456789n123...': NAME=VALUE expected, NAME 1 to 64 of A-Z a-z 0-9 "
         "_ . -"},
        {{"kick", "--field", "user_tenant=", NULL},
         65,
         "invalid field 'user_tenant=': the value is empty"},
        {{"kick", "--field", "a=b\\tc", NULL},
         65,
         "invalid field 'a=b\\x5ctc': the backslash at byte 4 does not start "
         "an escape \\xNN (a backslash is written \\x5c)"},
        {{"kick", "--field", "a=b\\x09c", NULL},
         65,
         "invalid field 'a=b\\x5cx09c': the value holds a control byte or "
         "invalid UTF-8"},
        {{"who", "--field", "a=\\xff", NULL},
         65,
         "invalid field 'a=\\x5cxff': the value holds a control byte or "
         "invalid UTF-8"},
        {{"who", "--field", "a=b\tc", NULL},
         65,
         "invalid field 'a=b\\x09c': the value holds a control byte or "
         "invalid UTF-8"},
        {{"who", "--field", "a=b", "--field", "c=d", NULL},
         64,
         "Multiple --field options not supported: 'c=d' is a second field"},
        {{"kick", "-h", "10.0.0.300", NULL},
         65,
         "invalid destination network '10.0.0.300': is not a valid IPv4 "
         "address"},
        {{"kick", "--dest", "backend1", NULL},
         65,
         "invalid destination network 'backend1': contains a byte not allowed "
         "in a network"},
        {{"who", "-h", "10.0.0.0/33", NULL},
         65,
         "invalid destination network '10.0.0.0/33': has an invalid prefix "
         "length"},
        {{"kick", "-h", "10.0.0.1", "--dest", "10.0.0.2", NULL},
         64,
         "Multiple destination networks not supported: '10.0.0.2' is a "
         "second destination"},
        {{"instances", "--field", "a=b", NULL},
         64,
         "instances takes no user, network, --field, destination or -a: it "
         "lists every instance you may use"},
        {{"instances", "--dest", "10.0.0.0/8", NULL},
         64,
         "instances takes no user, network, --field, destination or -a: it "
         "lists every instance you may use"},
        /* -f is force, never doveadm 2.4's -f FIELD VALUE. */
        {{"kick", "-f", "user_tenant", "tenant-a.example", NULL},
         64,
         "Multiple username masks not supported: 'tenant-a.example' is a "
         "second user mask (quote a name that contains spaces)"},
};

static void check_bad(size_t i, const struct bad_case *c)
{
	char msg[KG_CLI_MSG_MAX];
	struct kg_cli cli;
	int rc = parse(c->args, NULL, &cli, msg);

	if (rc != c->code || (c->msg && strcmp(msg, c->msg) != 0))
		fail_msg("case %zu: got %d '%s', want %d '%s'", i, rc, msg,
		         c->code, c->msg ? c->msg : "(any)");
	assert_true(strlen(msg) > 0);
}

static void test_each_error_has_its_exit_code_and_message(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		check_bad(i, &bad_cases[i]);
}

/* Cases built from the long strings, so checked by exit code only. */
static const struct bad_case long_cases[] = {
        {{"kick", long_glob, NULL}, 65, NULL},
        {{"kick", "-u", long_glob, NULL}, 65, NULL},
        {{"kick", long_arg, NULL}, 64, NULL},
        {{"who", "-j", long_arg, NULL}, 64, NULL},
        {{long_arg, NULL}, 64, NULL},
        {{"kick", "-a", long_anvil, "alice", NULL}, 64, NULL},
        {{"kick", "-S", long_socket, "alice", NULL}, 64, NULL},
        {{"kick", max_arg, NULL}, 65, NULL},
        {{"kick", esc_glob_long, NULL}, 65, NULL},
};

static void test_overlong_arguments_are_rejected(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(long_cases) / sizeof(long_cases[0]); i++)
		check_bad(i, &long_cases[i]);
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

/* A field left out is the default: no environment variable, KG_CLI_RUN,
 * no flags, no glob, network or anvil, the build's socket, text output. */
struct good_case {
	const char *args[MAX_ARGS + 1];
	const char *env;
	enum kg_cli_action action;
	uint8_t op;
	uint8_t flags;
	const char *glob; /* normalized */
	const char *net;  /* canonical text */
	const char *anvil;
	const char *instance;
	const char *socket;
	bool json;
	const char *field_name; /* with field_value, from --field */
	const char *field_value;
	const char *dest; /* canonical text */
};

static const struct good_case good_cases[] = {
        {.args = {"kick", "ALICE@Example.COM", NULL},
         .op = KG_OP_KICK,
         .glob = "alice@example.com"},
        {.args = {"kick", "-f", "-n", "-j", "Bob", "10.1.2.3/8", NULL},
         .op = KG_OP_KICK,
         .flags = KG_REQ_FORCE | KG_REQ_DRY_RUN,
         .glob = "bob",
         .net = "10.0.0.0/8",
         .json = true},
        {.args = {"kick", "-fn", "192.0.2.7", NULL},
         .op = KG_OP_KICK,
         .flags = KG_REQ_FORCE | KG_REQ_DRY_RUN,
         .net = "192.0.2.7/32"},
        {.args = {"kick", "::ffff:192.0.2.1", NULL},
         .op = KG_OP_KICK,
         .net = "192.0.2.1/32"},
        {.args = {"kick", "2001:DB8::1/32", "j*rg**n", NULL},
         .op = KG_OP_KICK,
         .glob = "j*rg*n",
         .net = "2001:db8::/32"},
        {.args = {"kick", "-u", "fe80::1%eth0", NULL},
         .op = KG_OP_KICK,
         .glob = "fe80::1%eth0"},
        {.args = {"kick", "-u", "10.0.0.1", NULL},
         .op = KG_OP_KICK,
         .glob = "10.0.0.1"},
        {.args = {"kick", "--net", "10.0.0.0/8", "-u", "J\xc3\xbcrgen", NULL},
         .op = KG_OP_KICK,
         .glob = "j\xc3\xbcrgen",
         .net = "10.0.0.0/8"},
        {.args = {"kick", "--", "-bob", NULL},
         .op = KG_OP_KICK,
         .glob = "-bob"},
        {.args = {"kick", "-n", "--", "-weird-user", "10.0.0.0/8", NULL},
         .op = KG_OP_KICK,
         .flags = KG_REQ_DRY_RUN,
         .glob = "-weird-user",
         .net = "10.0.0.0/8"},
        {.args = {"--", "kick", "-", NULL}, .op = KG_OP_KICK, .glob = "-"},
        /* A kick by field or by destination alone. */
        {.args = {"kick", "--field", "user_tenant=Tenant-A.example", NULL},
         .op = KG_OP_KICK,
         .field_name = "user_tenant",
         .field_value = "Tenant-A.example"},
        {.args = {"kick", "-h", "10.2.3.4", NULL},
         .op = KG_OP_KICK,
         .dest = "10.2.3.4/32"},
        {.args = {"kick", "-nh10.2.3.4/16", NULL},
         .op = KG_OP_KICK,
         .flags = KG_REQ_DRY_RUN,
         .dest = "10.2.0.0/16"},
        {.args = {"who", "--dest", "2001:DB8::1/64", "-1", NULL},
         .op = KG_OP_WHO,
         .flags = KG_REQ_SEPARATE,
         .dest = "2001:db8::/64"},
        /* Everything at once; the value keeps its case, its '=' and its
         * spaces, and its escapes are undone. */
        {.args = {"kick", "-f", "a*", "192.0.2.0/24", "--field",
                  "user.alias-2=X=y \\x5c\\xe2\\x80\\x8bz", "-h",
                  "::ffff:10.0.0.1", NULL},
         .op = KG_OP_KICK,
         .flags = KG_REQ_FORCE,
         .glob = "a*",
         .net = "192.0.2.0/24",
         .field_name = "user.alias-2",
         .field_value = "X=y \\\xe2\x80\x8bz",
         .dest = "10.0.0.1/32"},
        /* -h asks for help until the command is kick or who. */
        {.args = {"-h", "-S", "/s", NULL}, .action = KG_CLI_HELP},
        {.args = {"instances", "-h", NULL},
         .action = KG_CLI_HELP,
         .op = KG_OP_INSTANCES},
        {.args = {"who", "--field", "a=b", "--help", NULL},
         .action = KG_CLI_HELP,
         .op = KG_OP_WHO},
        {.args = {"kick", "foo", "-n", NULL},
         .op = KG_OP_KICK,
         .flags = KG_REQ_DRY_RUN,
         .glob = "foo"},
        {.args = {"-j", "-f", "kick", "alice", "-S", "/s", NULL},
         .op = KG_OP_KICK,
         .flags = KG_REQ_FORCE,
         .glob = "alice",
         .socket = "/s",
         .json = true},
        {.args = {"-S", "/tmp/k.sock", "who", "-1", NULL},
         .op = KG_OP_WHO,
         .flags = KG_REQ_SEPARATE,
         .socket = "/tmp/k.sock"},
        {.args = {"who", "kick", NULL}, .op = KG_OP_WHO, .glob = "kick"},
        {.args = {"kick", "123", NULL}, .op = KG_OP_KICK, .glob = "123"},
        {.args = {"who", NULL}, .op = KG_OP_WHO},
        {.args = {"who", "-1", "-j", "-S", "/tmp/k.sock", "-a",
                  "/run/dovecot-b/anvil", NULL},
         .env = "/env.sock",
         .op = KG_OP_WHO,
         .flags = KG_REQ_SEPARATE,
         .anvil = "/run/dovecot-b/anvil",
         .socket = "/tmp/k.sock",
         .json = true},
        {.args = {"who", "-a", "tenant-b", NULL},
         .op = KG_OP_WHO,
         .instance = "tenant-b"},
        {.args = {"kick", "-a", "default", "-f", "x", NULL},
         .op = KG_OP_KICK,
         .flags = KG_REQ_FORCE,
         .glob = "x",
         .instance = "default"},
        {.args = {"who", "-a",
                  "n123456789n123456789n123456789n123456789n123456789n12345678"
                  "9n123",
                  NULL},
         .op = KG_OP_WHO,
         .instance = "n123456789n123456789n123456789n123456789n123456789n123456"
                     "789n123"},
        {.args = {"instances", NULL}, .op = KG_OP_INSTANCES},
        {.args = {"-j", "instances", "-S", "/s", NULL},
         .op = KG_OP_INSTANCES,
         .socket = "/s",
         .json = true},
        {.args = {"who", "*@Tenant-A.example", "2001:db8::/32", NULL},
         .env = "/env.sock",
         .op = KG_OP_WHO,
         .glob = "*@tenant-a.example",
         .net = "2001:db8::/32",
         .socket = "/env.sock"},
        {.args = {"who", "-S", "relative.sock", NULL},
         .env = "",
         .op = KG_OP_WHO,
         .socket = "relative.sock"},
        {.args = {"who", "-S", max_socket, NULL},
         .op = KG_OP_WHO,
         .socket = max_socket},
        {.args = {"--help", NULL}, .action = KG_CLI_HELP},
        {.args = {"-h", NULL}, .action = KG_CLI_HELP},
        {.args = {"kick", "--help", NULL},
         .action = KG_CLI_HELP,
         .op = KG_OP_KICK},
        /* Text output pasted back: each \xNN is the byte it shows. */
        {.args = {"kick", "a\\xe2\\x80\\x8b1@Tenant-A.example", NULL},
         .op = KG_OP_KICK,
         .glob = "a\xe2\x80\x8b"
                 "1@tenant-a.example"},
        {.args = {"who", "-u", "back\\x5cslash", NULL},
         .op = KG_OP_WHO,
         .glob = "back\\slash"},
        {.args = {"kick", "\\x4A\\x2a\\x2A", NULL},
         .op = KG_OP_KICK,
         .glob = "j*"},
        {.args = {"kick", esc_glob, NULL},
         .op = KG_OP_KICK,
         .glob = esc_glob_want},
        {.args = {"--version", NULL}, .action = KG_CLI_VERSION},
        {.args = {"-V", NULL}, .action = KG_CLI_VERSION},
        {.args = {"help", NULL}, .action = KG_CLI_HELP},
        {.args = {"help", "kick", NULL}, .action = KG_CLI_HELP},
        {.args = {"-h", "kick", "-x", NULL}, .action = KG_CLI_HELP},
        {.args = {"who", "alice", "--version", NULL},
         .action = KG_CLI_VERSION,
         .op = KG_OP_WHO},
};

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

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
	assert_int_equal(cli.req.glob_len, strlen(or_empty(c->glob)));
	assert_string_equal(cli.req.glob, or_empty(c->glob));
	if (cli.req.net.family != KG_AF_NONE)
		kg_net_format(&cli.req.net, net);
	assert_string_equal(net, or_empty(c->net));
	assert_int_equal(cli.req.path_len, strlen(or_empty(c->anvil)));
	assert_string_equal(cli.req.path, or_empty(c->anvil));
	assert_int_equal(cli.req.instance_len, strlen(or_empty(c->instance)));
	assert_string_equal(cli.req.instance, or_empty(c->instance));
	assert_int_equal(cli.req.field_name_len,
	                 strlen(or_empty(c->field_name)));
	assert_string_equal(cli.req.field_name, or_empty(c->field_name));
	assert_int_equal(cli.req.field_value_len,
	                 strlen(or_empty(c->field_value)));
	assert_string_equal(cli.req.field_value, or_empty(c->field_value));
	net[0] = '\0';
	if (cli.req.dest.family != KG_AF_NONE)
		kg_net_format(&cli.req.dest, net);
	assert_string_equal(net, or_empty(c->dest));
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
	const char *opts[] = {"-S", "-a",        "-f",      "-n",    "-1",
	                      "-j", "-u",        "--net",   "-h",    "--help",
	                      "-V", "--version", "--field", "--dest"};
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
