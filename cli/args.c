/* SPDX-License-Identifier: MIT */
/* Command line parsing for the kickgate CLI. Errors are returned, never
 * printed, so that every case can be tested. */
#include "cli/args.h"

#include <getopt.h>
#include <stdarg.h>
#include <string.h>

#include "cli/escape.h"
#include "kg_config.h"
#include "proto/fieldparse.h"
#include "proto/globparse.h"
#include "proto/netparse.h"
#include "proto/text.h"

/* Bytes of an argument quoted in a message; longer ones end in "...". */
#define QUOTE_MAX 64
#define QUOTE_CAP (KG_ESC_RATIO * QUOTE_MAX + sizeof("..."))

/* Long-only options have values outside the byte range, so that getopt's
 * optopt never mistakes one for a short option. */
enum { OPT_NET = 256, OPT_FIELD, OPT_DEST, OPT_HELP, OPT_VERSION };

/* "-": arguments come back in order (as option 1), so that the first one
 * is the command wherever the options are, as in doveadm, whatever
 * POSIXLY_CORRECT says. ":": a missing option argument is told apart.
 * After kick or who, -h takes doveadm's destination (kick -h dest_host);
 * anywhere else it asks for help, as it always did. glibc reads the
 * option string afresh at every call, so it may change mid-parse. */
static const char short_opts_help[] = "-:S:a:fn1ju:hV";
static const char short_opts_dest[] = "-:S:a:fn1ju:h:V";

static const struct option long_opts[] = {
        {"net", required_argument, NULL, OPT_NET},
        {"field", required_argument, NULL, OPT_FIELD},
        {"dest", required_argument, NULL, OPT_DEST},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
};

/* Whether -h names a destination: once the command is kick or who. */
static bool h_is_dest(const struct kg_request *req)
{
	return req->op == KG_OP_KICK || req->op == KG_OP_WHO;
}

__attribute__((format(printf, 3, 4))) static int fail(char *msg, int code,
                                                      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, KG_CLI_MSG_MAX, fmt, ap);
	va_end(ap);
	return code;
}

/* The argument as it may appear in a message: escaped, shortened. */
static const char *quote(char out[QUOTE_CAP], const char *arg)
{
	size_t len = strnlen(arg, QUOTE_MAX + 1);
	size_t n = kg_cli_escape(out, QUOTE_CAP, arg,
	                         len > QUOTE_MAX ? QUOTE_MAX : len, 0);

	if (len > QUOTE_MAX)
		memcpy(out + n, "...", sizeof("..."));
	return out;
}

static int check_lengths(int argc, char *const argv[], char *msg)
{
	char q[QUOTE_CAP];

	for (int i = 1; i < argc; i++) {
		if (strnlen(argv[i], KG_CLI_ARG_MAX + 1) > KG_CLI_ARG_MAX)
			return fail(msg, KG_EXIT_USAGE,
			            "argument '%s' is longer than %d bytes",
			            quote(q, argv[i]), KG_CLI_ARG_MAX);
	}
	return 0;
}

static int parse_command(const char *cmd, struct kg_cli *cli, char *msg)
{
	char q[QUOTE_CAP];

	if (strcmp(cmd, "kick") == 0)
		cli->req.op = KG_OP_KICK;
	else if (strcmp(cmd, "who") == 0)
		cli->req.op = KG_OP_WHO;
	else if (strcmp(cmd, "instances") == 0)
		cli->req.op = KG_OP_INSTANCES;
	else if (strcmp(cmd, "help") == 0)
		cli->action = KG_CLI_HELP;
	else
		return fail(msg, KG_EXIT_USAGE,
		            "unknown command '%s' (kick, who, instances or "
		            "help)",
		            quote(q, cmd));
	return 0;
}

/* Undoes the \xNN escapes of arg from byte off on into raw, so that a
 * name or value as the text output shows it, pasted back, selects it.
 * Only here: the daemon takes the bytes as they are. arg is at most
 * KG_CLI_ARG_MAX bytes (check_lengths), and unescaping never lengthens.
 * what names arg in the error. */
static int unescape(const char *what, const char *arg, size_t off,
                    char raw[KG_CLI_ARG_MAX], size_t *len, char *msg)
{
	char q[QUOTE_CAP];
	size_t at;

	if (kg_cli_unescape(raw, len, arg + off, strlen(arg + off), &at))
		return 0;
	return fail(msg, KG_EXIT_DATAERR,
	            "invalid %s '%s': the backslash at byte %zu does not start "
	            "an escape \\xNN (a backslash is written \\x5c)",
	            what, quote(q, arg), off + at + 1);
}

static int add_glob(struct kg_request *req, const char *arg, char *msg)
{
	char q[QUOTE_CAP], raw[KG_CLI_ARG_MAX];
	enum kg_glob_err e;
	size_t len;

	if (req->glob_len > 0)
		return fail(msg, KG_EXIT_USAGE,
		            "Multiple username masks not supported: '%s' is a "
		            "second user mask (quote a name that contains "
		            "spaces)",
		            quote(q, arg));
	if (unescape("user glob", arg, 0, raw, &len, msg) != 0)
		return KG_EXIT_DATAERR;
	e = kg_glob_normalize(raw, len, req->glob, &len);
	if (e == KG_GLOB_EMPTY)
		return fail(msg, KG_EXIT_USAGE, "the user glob is empty");
	if (e != KG_GLOB_OK)
		return fail(msg, KG_EXIT_DATAERR,
		            "invalid user glob '%s': %s%s", quote(q, arg),
		            kg_glob_strerror(e),
		            e == KG_GLOB_BAD_BYTE
		                    ? ", which a glob cannot hold (? matches "
		                      "any one byte)"
		                    : "");
	req->glob_len = (uint8_t)len;
	return 0;
}

static int add_net(struct kg_request *req, const struct kg_net *net,
                   const char *arg, char *msg)
{
	char q[QUOTE_CAP];

	if (req->net.family != KG_AF_NONE)
		return fail(msg, KG_EXIT_USAGE,
		            "Multiple network masks not supported: '%s' is a "
		            "second network (run kickgate once per network)",
		            quote(q, arg));
	req->net = *net;
	return 0;
}

/* hint: what to do if the argument was meant as something else. */
static int bad_net(const char *arg, const char *why, const char *hint,
                   char *msg)
{
	char q[QUOTE_CAP];

	return fail(msg, KG_EXIT_DATAERR, "invalid network '%s': %s%s",
	            quote(q, arg), why, hint);
}

/* -h, --dest: where the sessions are proxied to (Dovecot 2.4). */
static int add_dest(struct kg_request *req, const char *arg, char *msg)
{
	const char *why = "is not a network";
	char q[QUOTE_CAP];

	if (req->dest.family != KG_AF_NONE)
		return fail(msg, KG_EXIT_USAGE,
		            "Multiple destination networks not supported: '%s' "
		            "is a second destination",
		            quote(q, arg));
	if (!kg_net_parse(arg, strlen(arg), &req->dest, &why))
		return fail(msg, KG_EXIT_DATAERR,
		            "invalid destination network '%s': %s",
		            quote(q, arg), why);
	return 0;
}

/* --field NAME=VALUE. The name, which the output never escapes, ends at
 * the first '='; the value's escapes are undone as the user glob's. */
static int add_field(struct kg_request *req, const char *arg, char *msg)
{
	const char *eq = strchr(arg, '='), *fault;
	char q[QUOTE_CAP], raw[KG_CLI_ARG_MAX];
	size_t name_len = eq != NULL ? (size_t)(eq - arg) : 0, len;

	if (req->field_name_len > 0)
		return fail(msg, KG_EXIT_USAGE,
		            "Multiple --field options not supported: '%s' is "
		            "a second field",
		            quote(q, arg));
	if (eq == NULL || !kg_field_name_ok(arg, name_len))
		return fail(msg, KG_EXIT_DATAERR,
		            "invalid field '%s': NAME=VALUE expected, NAME 1 "
		            "to %d of A-Z a-z 0-9 _ . -",
		            quote(q, arg), KG_FIELD_NAME_MAX);
	if (unescape("field", arg, name_len + 1, raw, &len, msg) != 0)
		return KG_EXIT_DATAERR;
	fault = kg_field_value_fault(raw, len);
	if (fault != NULL)
		return fail(msg, KG_EXIT_DATAERR, "invalid field '%s': %s",
		            quote(q, arg), fault);
	memcpy(req->field_name, arg, name_len);
	req->field_name_len = (uint8_t)name_len;
	memcpy(req->field_value, raw, len);
	req->field_value_len = (uint8_t)len;
	return 0;
}

/* --net: a network whatever it looks like. */
static int add_net_arg(struct kg_request *req, const char *arg, char *msg)
{
	const char *why = "is not a network";
	struct kg_net net;

	if (!kg_net_parse(arg, strlen(arg), &net, &why))
		return bad_net(arg, why, "", msg);
	return add_net(req, &net, arg, msg);
}

/* A positional argument: a network if it parses as one, as doveadm. */
static int add_positional(struct kg_request *req, const char *arg, char *msg)
{
	const char *why = "is not a network";
	struct kg_net net;

	switch (kg_arg_classify(arg, strlen(arg), &net, &why)) {
	case KG_ARG_NET:
		return add_net(req, &net, arg, msg);
	case KG_ARG_GLOB:
		return add_glob(req, arg, msg);
	case KG_ARG_BAD_NET:
		break;
	}
	return bad_net(arg, why,
	               " (for a user name that looks like this, use -u)", msg);
}

/* The first positional argument is the command, the others are the user
 * glob and the network. */
static int add_arg(struct kg_cli *cli, const char *arg, char *msg)
{
	if (cli->req.op == 0)
		return parse_command(arg, cli, msg);
	return add_positional(&cli->req, arg, msg);
}

/* -a: an instance's name, or its anvil socket path; a name never holds
 * a '/', so the two cannot be confused. */
static int set_anvil(struct kg_request *req, const char *arg, char *msg)
{
	size_t len = strlen(arg);
	char q[QUOTE_CAP];

	if (arg[0] != '/' && kg_name_ok(arg, len)) {
		memcpy(req->instance, arg, len + 1);
		req->instance_len = (uint8_t)len;
		return 0;
	}
	if (arg[0] != '/' || len > KG_PATH_MAX || !kg_text_ok(arg, len))
		return fail(msg, KG_EXIT_USAGE,
		            "-a needs an instance name (1 to %d of A-Z a-z "
		            "0-9 _ . -) or an absolute socket path of at most "
		            "%d bytes without control bytes, not '%s'",
		            KG_NAME_MAX, KG_PATH_MAX, quote(q, arg));
	memcpy(req->path, arg, len + 1);
	req->path_len = (uint8_t)len;
	return 0;
}

/* sun_path holds KG_PATH_MAX bytes and the NUL. */
static int check_socket(const char *path, const char *origin, char *msg)
{
	size_t len = strlen(path);
	char q[QUOTE_CAP];

	if (len == 0 || len > KG_PATH_MAX)
		return fail(msg, KG_EXIT_USAGE,
		            "%s: the broker socket path must have 1 to %d "
		            "bytes, not '%s'",
		            origin, KG_PATH_MAX, quote(q, path));
	return 0;
}

/* The options that belong to one command. */
static const struct {
	char opt;
	uint8_t flag;
	uint8_t op;
	const char *cmd;
} cmd_flags[] = {
        {'f', KG_REQ_FORCE, KG_OP_KICK, "kick"},
        {'n', KG_REQ_DRY_RUN, KG_OP_KICK, "kick"},
        {'1', KG_REQ_SEPARATE, KG_OP_WHO, "who"},
};

#define N_CMD_FLAGS (sizeof(cmd_flags) / sizeof(cmd_flags[0]))

static void apply_flag(struct kg_request *req, int c)
{
	for (size_t i = 0; i < N_CMD_FLAGS; i++)
		if (cmd_flags[i].opt == c)
			req->flags |= cmd_flags[i].flag;
}

/* Checked once the whole command line is read, as an option may come
 * before the command it belongs to. */
static int check_flags(const struct kg_request *req, char *msg)
{
	for (size_t i = 0; i < N_CMD_FLAGS; i++)
		if ((req->flags & cmd_flags[i].flag) &&
		    req->op != cmd_flags[i].op)
			return fail(msg, KG_EXIT_USAGE,
			            "option -%c is only valid with %s",
			            cmd_flags[i].opt, cmd_flags[i].cmd);
	return 0;
}

/* getopt's '?' and ':' results as messages. */
static int option_error(int c, char *const argv[], char *msg)
{
	char opt[3] = {'-', (char)optopt, '\0'};
	const char *name = opt;
	char q[QUOTE_CAP];

	for (const struct option *o = long_opts; c == ':' && o->name; o++)
		if (o->val == optopt)
			return fail(msg, KG_EXIT_USAGE,
			            "option '--%s' needs an argument", o->name);
	if (c == ':' && optopt == 'h')
		return fail(msg, KG_EXIT_USAGE,
		            "option '-h' needs a destination network (help is "
		            "--help)");
	if (c == ':')
		return fail(msg, KG_EXIT_USAGE, "option '%s' needs an argument",
		            quote(q, opt));
	if (optopt <= 0 || optopt > UINT8_MAX)
		name = argv[optind - 1];
	return fail(msg, KG_EXIT_USAGE,
	            "unknown option '%s' (a user glob that starts with '-' "
	            "goes after --)",
	            quote(q, name));
}

static int apply_option(int c, char *const argv[], struct kg_cli *cli,
                        char *msg)
{
	switch (c) {
	case 1:
		return add_arg(cli, optarg, msg);
	case 'S':
		cli->socket = optarg;
		return check_socket(optarg, "-S", msg);
	case 'a':
		return set_anvil(&cli->req, optarg, msg);
	case 'j':
		cli->json = true;
		return 0;
	case 'u':
		return add_glob(&cli->req, optarg, msg);
	case OPT_NET:
		return add_net_arg(&cli->req, optarg, msg);
	case OPT_FIELD:
		return add_field(&cli->req, optarg, msg);
	case 'h':
		if (h_is_dest(&cli->req))
			return add_dest(&cli->req, optarg, msg);
		cli->action = KG_CLI_HELP;
		return 0;
	case OPT_DEST:
		return add_dest(&cli->req, optarg, msg);
	case OPT_HELP:
		cli->action = KG_CLI_HELP;
		return 0;
	case 'V':
	case OPT_VERSION:
		cli->action = KG_CLI_VERSION;
		return 0;
	case '?':
	case ':':
		return option_error(c, argv, msg);
	}
	apply_flag(&cli->req, c);
	return 0;
}

/* Options and arguments in the order given. Help and version end the
 * parse at once, as a wrong argument after them is no reason to refuse
 * help. */
static int parse_argv(int argc, char *const argv[], struct kg_cli *cli,
                      char *msg)
{
	int c, rc = 0;

	optind = 0; /* glibc: restart scanning from scratch */
	opterr = 0;
	while (rc == 0 && cli->action == KG_CLI_RUN &&
	       (c = getopt_long(argc, argv,
	                        h_is_dest(&cli->req) ? short_opts_dest
	                                             : short_opts_help,
	                        long_opts, NULL)) != -1)
		rc = apply_option(c, argv, cli, msg);
	/* getopt stops at "--": what follows is an argument, dash or not. */
	for (int i = optind; rc == 0 && cli->action == KG_CLI_RUN && i < argc;
	     i++)
		rc = add_arg(cli, argv[i], msg);
	return rc;
}

/* Whether the request names sessions by any of its parts. */
static bool selects(const struct kg_request *req)
{
	return req->glob_len > 0 || req->net.family != KG_AF_NONE ||
	       req->field_name_len > 0 || req->dest.family != KG_AF_NONE;
}

static int check_request(const struct kg_request *req, char *msg)
{
	int rc;

	if (req->op == 0)
		return fail(msg, KG_EXIT_USAGE,
		            "no command given (kick, who or instances); see "
		            "kickgate --help");
	if (req->op == KG_OP_INSTANCES &&
	    (selects(req) || req->path_len > 0 || req->instance_len > 0))
		return fail(msg, KG_EXIT_USAGE,
		            "instances takes no user, network, --field, "
		            "destination or -a: it lists every instance you "
		            "may use");
	rc = check_flags(req, msg);
	if (rc == 0 && req->op == KG_OP_KICK && !selects(req))
		return fail(msg, KG_EXIT_USAGE,
		            "kick needs a user glob, a network, a --field or a "
		            "destination (-h)");
	return rc;
}

static int pick_socket(struct kg_cli *cli, const char *env_socket, char *msg)
{
	if (cli->socket != NULL)
		return 0;
	if (env_socket != NULL && env_socket[0] != '\0') {
		cli->socket = env_socket;
		return check_socket(env_socket, "KICKGATE_SOCKET", msg);
	}
	cli->socket = KG_DEFAULT_SOCKET;
	return check_socket(cli->socket, "the built-in default", msg);
}

int kg_cli_parse(int argc, char *const argv[], const char *env_socket,
                 struct kg_cli *cli, char msg[KG_CLI_MSG_MAX])
{
	int rc;

	memset(cli, 0, sizeof(*cli));
	msg[0] = '\0';
	rc = check_lengths(argc, argv, msg);
	if (rc == 0)
		rc = parse_argv(argc, argv, cli, msg);
	if (rc != 0 || cli->action != KG_CLI_RUN)
		return rc;
	rc = check_request(&cli->req, msg);
	return rc != 0 ? rc : pick_socket(cli, env_socket, msg);
}

void kg_cli_usage(FILE *f)
{
	fputs("usage: kickgate kick [-f] [-n] [-j] [-S socket] [-a anvil] "
	      "user [ip[/bits]]\n"
	      "       kickgate kick [-f] [-n] [-j] [-S socket] [-a anvil] "
	      "ip[/bits]\n"
	      "       kickgate kick [-f] [-n] [-j] [-S socket] [-a anvil]\n"
	      "                     [--field name=value] [-h dest[/bits]] "
	      "[user] [ip[/bits]]\n"
	      "       kickgate who [-1] [-j] [-S socket] [-a anvil] "
	      "[--field name=value]\n"
	      "                    [-h dest[/bits]] [user] [ip[/bits]]\n"
	      "       kickgate instances [-j] [-S socket]\n"
	      "       kickgate help | -h | --help | -V | --version\n"
	      "\n"
	      "Options may come before or after the command and its "
	      "arguments;\n"
	      "after -- nothing is an option. kick needs a user glob, a "
	      "network,\n"
	      "a field or a destination; an argument that looks like a "
	      "network is one.\n"
	      "\n"
	      "  -S socket   broker socket (default " KG_DEFAULT_SOCKET ",\n"
	      "              or $KICKGATE_SOCKET)\n"
	      "  -a anvil    another Dovecot instance, by name or anvil "
	      "socket\n"
	      "  -f          kick: also kick processes that serve other "
	      "users\n"
	      "  -n          kick: dry run, signal nothing\n"
	      "  -1          who: one line per connection\n"
	      "  -j          JSON output\n"
	      "  -u user     take user as the user glob, whatever it looks "
	      "like\n"
	      "  --net net   take net as the network\n"
	      "  --field name=value\n"
	      "              Dovecot 2.4: sessions whose alternative username "
	      "name\n"
	      "              is value (a userdb field user_*)\n"
	      "  -h dest[/bits], --dest dest[/bits]\n"
	      "              after kick or who: Dovecot 2.4 sessions proxied "
	      "to dest\n"
	      "  -h, --help  anywhere else: print this help\n"
	      "  -V, --version\n"
	      "              print the version\n",
	      f);
}
