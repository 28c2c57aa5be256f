/* Command line parsing for the kickgate CLI. Errors are returned, never
 * printed, so that every case can be tested. */
#include "cli_args.h"

#include <getopt.h>
#include <stdarg.h>
#include <string.h>

#include "cli_print.h"
#include "globparse.h"
#include "kg_config.h"
#include "netparse.h"
#include "text.h"

/* Bytes of an argument quoted in a message; longer ones end in "...". */
#define QUOTE_MAX 64
#define QUOTE_CAP (KG_ESC_RATIO * QUOTE_MAX + sizeof("..."))

/* Long-only options have values outside the byte range, so that getopt's
 * optopt never mistakes one for a short option. */
enum { OPT_NET = 256, OPT_HELP, OPT_VERSION };

static const char short_opts[] = "+:S:a:fn1ju:h";

static const struct option long_opts[] = {
        {"net", required_argument, NULL, OPT_NET},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
};

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

static int parse_command(int argc, char *const argv[], struct kg_cli *cli,
                         char *msg)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	char q[QUOTE_CAP];

	if (cmd == NULL)
		return fail(msg, KG_EXIT_USAGE,
		            "no command given (kick or who); see kickgate "
		            "--help");
	if (strcmp(cmd, "kick") == 0)
		cli->req.op = KG_OP_KICK;
	else if (strcmp(cmd, "who") == 0)
		cli->req.op = KG_OP_WHO;
	else if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
		cli->action = KG_CLI_HELP;
	else if (strcmp(cmd, "--version") == 0)
		cli->action = KG_CLI_VERSION;
	else if (cmd[0] == '-')
		return fail(msg, KG_EXIT_USAGE,
		            "the command (kick or who) must come before "
		            "options, not '%s'",
		            quote(q, cmd));
	else
		return fail(msg, KG_EXIT_USAGE,
		            "unknown command '%s' (kick or who)",
		            quote(q, cmd));
	return 0;
}

static int add_glob(struct kg_request *req, const char *arg, char *msg)
{
	char q[QUOTE_CAP];
	enum kg_glob_err e;
	size_t len;

	if (req->glob_len > 0)
		return fail(msg, KG_EXIT_USAGE,
		            "Multiple username masks not supported");
	e = kg_glob_normalize(arg, strlen(arg), req->glob, &len);
	if (e == KG_GLOB_EMPTY)
		return fail(msg, KG_EXIT_USAGE, "the user glob is empty");
	if (e != KG_GLOB_OK)
		return fail(msg, KG_EXIT_DATAERR, "invalid user glob '%s': %s",
		            quote(q, arg), kg_glob_strerror(e));
	req->glob_len = (uint8_t)len;
	return 0;
}

static int add_net(struct kg_request *req, const struct kg_net *net, char *msg)
{
	if (req->net.family != KG_AF_NONE)
		return fail(msg, KG_EXIT_USAGE,
		            "Multiple network masks not supported");
	req->net = *net;
	return 0;
}

static int bad_net(const char *arg, const char *why, char *msg)
{
	char q[QUOTE_CAP];

	return fail(msg, KG_EXIT_DATAERR, "invalid network '%s': %s",
	            quote(q, arg), why);
}

/* --net: a network whatever it looks like. */
static int add_net_arg(struct kg_request *req, const char *arg, char *msg)
{
	const char *why = "is not a network";
	struct kg_net net;

	if (!kg_net_parse(arg, strlen(arg), &net, &why))
		return bad_net(arg, why, msg);
	return add_net(req, &net, msg);
}

/* A positional argument: a network if it parses as one, as doveadm. */
static int add_positional(struct kg_request *req, const char *arg, char *msg)
{
	const char *why = "is not a network";
	struct kg_net net;

	switch (kg_arg_classify(arg, strlen(arg), &net, &why)) {
	case KG_ARG_NET:
		return add_net(req, &net, msg);
	case KG_ARG_GLOB:
		return add_glob(req, arg, msg);
	case KG_ARG_BAD_NET:
		break;
	}
	return bad_net(arg, why, msg);
}

static int set_anvil(struct kg_request *req, const char *arg, char *msg)
{
	size_t len = strlen(arg);
	char q[QUOTE_CAP];

	if (arg[0] != '/' || len > KG_PATH_MAX || !kg_text_ok(arg, len))
		return fail(msg, KG_EXIT_USAGE,
		            "-a needs an absolute path of at most %d bytes "
		            "without control bytes, not '%s'",
		            KG_PATH_MAX, quote(q, arg));
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

static int only_with(const char *opt, const char *cmd, char *msg)
{
	return fail(msg, KG_EXIT_USAGE, "option %s is only valid with %s", opt,
	            cmd);
}

static int apply_flag(struct kg_request *req, int c, char *msg)
{
	switch (c) {
	case 'f':
		if (req->op != KG_OP_KICK)
			return only_with("-f", "kick", msg);
		req->flags |= KG_REQ_FORCE;
		break;
	case 'n':
		if (req->op != KG_OP_KICK)
			return only_with("-n", "kick", msg);
		req->flags |= KG_REQ_DRY_RUN;
		break;
	case '1':
		if (req->op != KG_OP_WHO)
			return only_with("-1", "who", msg);
		req->flags |= KG_REQ_SEPARATE;
		break;
	}
	return 0;
}

/* getopt's '?' and ':' results as messages. */
static int option_error(int c, char *const argv[], char *msg)
{
	char opt[3] = {'-', (char)optopt, '\0'};
	const char *name = opt;
	char q[QUOTE_CAP];

	if (c == ':')
		return fail(msg, KG_EXIT_USAGE, "option '%s' needs an argument",
		            optopt == OPT_NET ? "--net" : quote(q, opt));
	if (optopt <= 0 || optopt > UINT8_MAX)
		name = argv[optind - 1];
	return fail(msg, KG_EXIT_USAGE, "unknown option '%s'", quote(q, name));
}

static int apply_option(int c, char *const argv[], struct kg_cli *cli,
                        char *msg)
{
	switch (c) {
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
	case 'h':
	case OPT_HELP:
		cli->action = KG_CLI_HELP;
		return 0;
	case OPT_VERSION:
		cli->action = KG_CLI_VERSION;
		return 0;
	case '?':
	case ':':
		return option_error(c, argv, msg);
	}
	return apply_flag(&cli->req, c, msg);
}

/* Options, in argv[1..argc) with argv[0] the command. On success *first
 * is the first positional argument and *dashdash tells whether "--" came
 * right before it. */
static int parse_options(int argc, char *const argv[], struct kg_cli *cli,
                         char *msg, int *first, bool *dashdash)
{
	int c, start, rc;

	optind = 0; /* glibc: restart scanning from scratch */
	opterr = 0;
	do {
		start = optind > 0 ? optind : 1;
		c = getopt_long(argc, argv, short_opts, long_opts, NULL);
		rc = c == -1 ? 0 : apply_option(c, argv, cli, msg);
	} while (rc == 0 && c != -1 && cli->action == KG_CLI_RUN);
	*first = optind;
	*dashdash = optind == start + 1 && strcmp(argv[start], "--") == 0;
	return rc;
}

static int parse_positionals(int argc, char *const argv[], int first,
                             bool dashdash, struct kg_request *req, char *msg)
{
	char q[QUOTE_CAP];
	int rc = 0;

	for (int i = first; i < argc && rc == 0; i++) {
		if (argv[i][0] == '-' && !dashdash)
			return fail(msg, KG_EXIT_USAGE,
			            "options must come before the user and "
			            "network: '%s'",
			            quote(q, argv[i]));
		rc = add_positional(req, argv[i], msg);
	}
	if (rc == 0 && req->op == KG_OP_KICK && req->glob_len == 0 &&
	    req->net.family == KG_AF_NONE)
		return fail(msg, KG_EXIT_USAGE,
		            "kick needs a user glob, a network or both");
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
	int rc, first;
	bool dashdash;

	memset(cli, 0, sizeof(*cli));
	msg[0] = '\0';
	rc = check_lengths(argc, argv, msg);
	if (rc == 0)
		rc = parse_command(argc, argv, cli, msg);
	if (rc != 0 || cli->action != KG_CLI_RUN)
		return rc;
	rc = parse_options(argc - 1, argv + 1, cli, msg, &first, &dashdash);
	if (rc != 0 || cli->action != KG_CLI_RUN)
		return rc;
	rc = parse_positionals(argc - 1, argv + 1, first, dashdash, &cli->req,
	                       msg);
	return rc != 0 ? rc : pick_socket(cli, env_socket, msg);
}

void kg_cli_usage(FILE *f)
{
	fputs("usage: kickgate kick [-S socket] [-a anvil] [-f] [-n] [-j] "
	      "user [ip[/bits]]\n"
	      "       kickgate kick [-S socket] [-a anvil] [-f] [-n] [-j] "
	      "ip[/bits]\n"
	      "       kickgate who  [-S socket] [-a anvil] [-1] [-j] [user] "
	      "[ip[/bits]]\n"
	      "       kickgate --help | --version\n"
	      "\n"
	      "  -S socket  broker socket (default " KG_DEFAULT_SOCKET ",\n"
	      "             or $KICKGATE_SOCKET)\n"
	      "  -a anvil   anvil socket of another Dovecot instance\n"
	      "  -f         kick: also kick processes that serve other "
	      "users\n"
	      "  -n         kick: dry run, signal nothing\n"
	      "  -1         who: one line per connection\n"
	      "  -j         JSON output\n"
	      "  -u user    take user as a user glob\n"
	      "  --net net  take net as a network\n",
	      f);
}
