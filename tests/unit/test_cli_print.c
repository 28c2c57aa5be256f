/* SPDX-License-Identifier: MIT */
/* kickgate output: replies built with the reply writer, decoded and printed
 * to memory, compared with the exact text and JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/escape.h"
#include "cli/print.h"
#include "proto/text.h"
#include "tests/reference/json_reference.h"

/* ------------------------------------------------------------ fixture */

#define MAX_PKTS 64

/* Packets as the broker's writer emits them. */
struct pkts {
	uint8_t *data[MAX_PKTS];
	size_t len[MAX_PKTS];
	size_t n;
};

static int collect(void *ctx, const uint8_t *pkt, size_t len)
{
	struct pkts *ps = ctx;

	assert_true(ps->n < MAX_PKTS);
	ps->data[ps->n] = malloc(len);
	assert_non_null(ps->data[ps->n]);
	memcpy(ps->data[ps->n], pkt, len);
	ps->len[ps->n++] = len;
	return 0;
}

/* One reply under construction, and what printing it produced. */
struct run {
	struct kg_reply_writer w;
	struct pkts pkts;
	char *out;
	char *err;
	int status;
};

static struct run *run_new(void)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	kg_rw_init(&r->w, collect, &r->pkts);
	return r;
}

static void run_free(struct run *r)
{
	for (size_t i = 0; i < r->pkts.n; i++)
		free(r->pkts.data[i]);
	free(r->out);
	free(r->err);
	free(r);
}

static void add_user(struct run *r, enum kg_rec_type type, const char *name)
{
	assert_int_equal(kg_rw_user(&r->w, type, name, strlen(name)), 0);
}

static void add_users(struct run *r, enum kg_rec_type type,
                      const char *const *names)
{
	for (; *names != NULL; names++)
		add_user(r, type, *names);
}

/* addr NULL: a connection without an address. */
static void add_who(struct run *r, const char *user, const char *service,
                    uint32_t pid, uint32_t conns, const struct kg_addr *addr)
{
	struct kg_who_row row = {
	        .pid = pid,
	        .conns = conns,
	        .service = service,
	        .service_len = strlen(service),
	        .user = user,
	        .user_len = strlen(user),
	};

	if (addr != NULL)
		row.addr = *addr;
	assert_int_equal(kg_rw_who(&r->w, &row), 0);
}

/* A Dovecot 2.4 row: one connection with a GUID made from pid, proxied
 * to dest (NULL: not proxied), with fields. */
static void add_who24(struct run *r, const char *user, const char *service,
                      uint32_t pid, const struct kg_addr *addr,
                      const struct kg_addr *dest, const struct kg_field *fields,
                      size_t n_fields)
{
	struct kg_who_row row = {
	        .pid = pid,
	        .conns = 1,
	        .addr = *addr,
	        .service = service,
	        .service_len = strlen(service),
	        .user = user,
	        .user_len = strlen(user),
	        .has_guid = true,
	        .fields = fields,
	        .n_fields = n_fields,
	};

	for (size_t i = 0; i < sizeof(row.guid); i++)
		row.guid[i] = (uint8_t)(pid + i * 0x11);
	if (dest != NULL)
		row.dest = *dest;
	assert_int_equal(kg_rw_who(&r->w, &row), 0);
}

static void end(struct run *r, uint8_t status, uint8_t flags, uint32_t conns,
                uint32_t pids, uint32_t malformed, const char *error)
{
	struct kg_reply_end e = {
	        .status = status,
	        .flags = flags,
	        .conns = conns,
	        .pids = pids,
	        .malformed = malformed,
	        .error_len = (uint16_t)strlen(error),
	};

	memcpy(e.error, error, e.error_len);
	assert_int_equal(kg_rw_end(&r->w, &e), 0);
}

/* The one JSON document out holds, which a strict parser accepts. */
static struct json *json_whole(const char *out)
{
	struct json *doc = json_parse(out, strlen(out));

	if (doc == NULL)
		fail_msg("not one JSON document: %s", out);
	return doc;
}

/* Decodes and prints every packet, as the CLI does, padded as for a
 * terminal with pad. Returns the last callback result. */
static int print_to(struct run *r, uint8_t op, uint8_t flags, bool json,
                    bool pad)
{
	size_t out_len, err_len;
	FILE *out = open_memstream(&r->out, &out_len);
	FILE *err = open_memstream(&r->err, &err_len);
	struct kg_printer *p;
	bool is_end = false;
	int cb = 0;

	assert_non_null(out);
	assert_non_null(err);
	p = kg_printer_new(out, err, op, flags, json);
	assert_non_null(p);
	if (pad)
		assert_int_equal(kg_printer_pad(p), 0);
	for (size_t i = 0; i < r->pkts.n && cb == 0; i++) {
		assert_false(is_end);
		assert_int_equal(
		        kg_reply_decode(r->pkts.data[i], r->pkts.len[i],
		                        &kg_printer_handler, p, &is_end, &cb),
		        KG_WIRE_OK);
	}
	assert_true(is_end || cb != 0);
	r->status = kg_printer_status(p);
	kg_printer_free(p);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(fclose(err), 0);
	if (json)
		json_free(json_whole(r->out));
	return cb;
}

static int print(struct run *r, uint8_t op, uint8_t flags, bool json)
{
	return print_to(r, op, flags, json, false);
}

static struct kg_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	const uint8_t bytes[4] = {a, b, c, d};
	struct kg_addr addr;

	kg_addr_set(&addr, KG_AF_INET, bytes);
	return addr;
}

static struct kg_addr v6_doc(uint8_t last)
{
	const uint8_t bytes[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = last};
	struct kg_addr addr;

	kg_addr_set(&addr, KG_AF_INET6, bytes);
	return addr;
}

/* --------------------------------------------------------------- kick */

static const char *const bar_baz[] = {"bar", "baz", NULL};

static struct run *kicked_bar_baz(uint8_t status, uint8_t flags)
{
	struct run *r = run_new();

	add_users(r, KG_REC_KICKED, bar_baz);
	assert_int_equal(kg_rw_pid(&r->w, 8135), 0);
	assert_int_equal(kg_rw_pid(&r->w, 9112), 0);
	end(r, status, flags, 3, 2, 0, "");
	return r;
}

static void test_kicked_lists_users_on_one_line(void **state)
{
	struct run *r = kicked_bar_baz(0, 0);

	(void)state;
	assert_int_equal(print(r, KG_OP_KICK, 0, false), 0);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out,
	                    "kicked connections from the following users:\n"
	                    "bar baz\n");
	assert_string_equal(r->err, "");
	run_free(r);
}

static void test_kicked_json(void **state)
{
	struct run *r = kicked_bar_baz(0, 0);

	(void)state;
	print(r, KG_OP_KICK, 0, true);
	assert_string_equal(
	        r->out,
	        "{\"status\":0,\"dry_run\":false,\"kicked\":[\"bar\",\"baz\"],"
	        "\"pids\":[8135,9112],\"warning\":[],\"refused\":[],"
	        "\"connections\":3,\"processes\":2,"
	        "\"malformed_anvil_lines\":0,\"error\":null}\n");
	assert_string_equal(r->err, "");
	run_free(r);
}

static void test_dry_run_counts_connections_and_processes(void **state)
{
	struct run *r = kicked_bar_baz(0, KG_END_DRY_RUN);

	(void)state;
	print(r, KG_OP_KICK, KG_REQ_DRY_RUN, false);
	assert_int_equal(r->status, 0);
	assert_string_equal(
	        r->out, "dry run: would kick connections from the following "
	                "users:\n"
	                "bar baz\n"
	                "3 connections in 2 processes\n");
	run_free(r);
}

static void test_counts_of_one_are_singular(void **state)
{
	struct run *r = run_new();

	(void)state;
	add_user(r, KG_REC_KICKED, "bar");
	assert_int_equal(kg_rw_pid(&r->w, 8135), 0);
	end(r, 0, KG_END_DRY_RUN, 1, 1, 1, "");
	print(r, KG_OP_KICK, KG_REQ_DRY_RUN, false);
	assert_string_equal(
	        r->out, "dry run: would kick connections from the following "
	                "users:\n"
	                "bar\n"
	                "1 connection in 1 process\n");
	assert_string_equal(r->err, "kickgate: warning: anvil sent 1 malformed "
	                            "line, skipped\n");
	run_free(r);
}

static void test_dry_run_json_sets_dry_run(void **state)
{
	struct run *r = kicked_bar_baz(0, KG_END_DRY_RUN);

	(void)state;
	print(r, KG_OP_KICK, KG_REQ_DRY_RUN, true);
	assert_non_null(strstr(r->out, "{\"status\":0,\"dry_run\":true,"));
	run_free(r);
}

static struct run *need_force(void)
{
	static const char *const others[] = {"carol", "dave", NULL};
	struct run *r = run_new();

	add_users(r, KG_REC_WARN, others);
	end(r, KG_EXIT_NEED_FORCE, KG_END_NEED_FORCE, 0, 0, 0, "");
	return r;
}

static void test_need_force_warns_and_names_option(void **state)
{
	struct run *r = need_force();

	(void)state;
	print(r, KG_OP_KICK, 0, false);
	assert_int_equal(r->status, 1);
	assert_string_equal(r->out,
	                    "warning: other connections would also be kicked "
	                    "from following users:\n"
	                    "carol dave\n"
	                    "Use the '-f' option to enforce the disconnect.\n");
	run_free(r);
}

static void test_need_force_json_lists_warning(void **state)
{
	struct run *r = need_force();

	(void)state;
	print(r, KG_OP_KICK, 0, true);
	assert_string_equal(
	        r->out,
	        "{\"status\":1,\"dry_run\":false,\"kicked\":[],\"pids\":[],"
	        "\"warning\":[\"carol\",\"dave\"],\"refused\":[],"
	        "\"connections\":0,\"processes\":0,"
	        "\"malformed_anvil_lines\":0,\"error\":null}\n");
	run_free(r);
}

static void test_no_match_says_no_users_kicked(void **state)
{
	struct run *r = run_new();

	(void)state;
	end(r, KG_EXIT_NOMATCH, 0, 0, 0, 0, "");
	print(r, KG_OP_KICK, 0, false);
	assert_int_equal(r->status, 68);
	assert_string_equal(r->out, "no users kicked\n");
	assert_string_equal(r->err, "");
	run_free(r);
}

static struct run *with_refusals(void)
{
	struct run *r = run_new();

	add_user(r, KG_REC_KICKED, "bar");
	assert_int_equal(kg_rw_pid(&r->w, 10), 0);
	assert_int_equal(kg_rw_refused(&r->w, 11, KG_REFUSE_GONE), 0);
	assert_int_equal(kg_rw_refused(&r->w, 12, KG_REFUSE_NOT_DOVECOT), 0);
	end(r, 0, 0, 1, 1, 0, "");
	return r;
}

static void test_refused_pids_follow_the_list(void **state)
{
	struct run *r = with_refusals();

	(void)state;
	print(r, KG_OP_KICK, 0, false);
	assert_string_equal(r->out,
	                    "kicked connections from the following users:\n"
	                    "bar\n"
	                    "refused: pid 11: already gone\n"
	                    "refused: pid 12: not a Dovecot mail process\n");
	run_free(r);
}

static void test_refused_pids_json(void **state)
{
	struct run *r = with_refusals();

	(void)state;
	print(r, KG_OP_KICK, 0, true);
	assert_non_null(strstr(r->out,
	                       "\"refused\":[{\"pid\":11,\"reason\":\"already "
	                       "gone\"},{\"pid\":12,\"reason\":\"not a "
	                       "Dovecot mail process\"}],"));
	run_free(r);
}

/* Sessions outside the scope share a matching process: a refusal, on
 * stderr only, that gives no count of them. */
static void test_blocked_by_scope_is_an_error(void **state)
{
	static const char why[] = "refused: nothing was kicked: a matching "
	                          "process also serves sessions outside your "
	                          "scope, which you may not end";
	struct run *r = run_new();

	(void)state;
	end(r, KG_EXIT_NOPERM, 0, 0, 0, 2, why);
	print(r, KG_OP_KICK, KG_REQ_FORCE, false);
	assert_int_equal(r->status, 77);
	assert_string_equal(r->out, "");
	assert_string_equal(r->err,
	                    "kickgate: refused: nothing was kicked: a matching "
	                    "process also serves sessions outside your scope, "
	                    "which you may not end\n"
	                    "kickgate: warning: anvil sent 2 malformed "
	                    "lines, skipped\n");
	run_free(r);
}

static void test_error_json(void **state)
{
	struct run *r = run_new();

	(void)state;
	end(r, KG_EXIT_NOPERM, 0, 0, 0, 2, "denied \"by\" policy");
	print(r, KG_OP_KICK, 0, true);
	assert_string_equal(
	        r->out,
	        "{\"status\":77,\"dry_run\":false,\"kicked\":[],\"pids\":[],"
	        "\"warning\":[],\"refused\":[],"
	        "\"connections\":0,\"processes\":0,"
	        "\"malformed_anvil_lines\":2,"
	        "\"error\":\"denied \\\"by\\\" policy\"}\n");
	assert_string_equal(r->err, "kickgate: denied \"by\" policy\n"
	                            "kickgate: warning: anvil sent 2 malformed "
	                            "lines, skipped\n");
	run_free(r);
}

#define FORCE_DENIED                                                           \
	"nothing was kicked: the matching processes also serve other "         \
	"connections, and your rule 'desk' does not allow -f"

static struct run *force_denied(void)
{
	static const char *const others[] = {"carol", "d ave", NULL};
	struct run *r = run_new();

	add_users(r, KG_REC_WARN, others);
	end(r, KG_EXIT_NEED_FORCE, KG_END_NEED_FORCE | KG_END_FORCE_DENIED, 0,
	    0, 0, FORCE_DENIED);
	return r;
}

/* A caller who may not use -f is not told to: the refusal and the users
 * who share the processes go to stderr, and stdout stays empty. */
static void test_force_denied_does_not_suggest_f(void **state)
{
	struct run *r = force_denied();

	(void)state;
	print(r, KG_OP_KICK, 0, false);
	assert_int_equal(r->status, 1);
	assert_string_equal(r->out, "");
	assert_string_equal(r->err,
	                    "kickgate: " FORCE_DENIED "\n"
	                    "kickgate: other connections on those processes "
	                    "are from: carol d\\x20ave\n");
	assert_null(strstr(r->err, "Use the"));
	run_free(r);
}

static void test_force_denied_json_has_error(void **state)
{
	struct run *r = force_denied();

	(void)state;
	print(r, KG_OP_KICK, 0, true);
	assert_string_equal(
	        r->out,
	        "{\"status\":1,\"dry_run\":false,\"kicked\":[],\"pids\":[],"
	        "\"warning\":[\"carol\",\"d ave\"],\"refused\":[],"
	        "\"connections\":0,\"processes\":0,"
	        "\"malformed_anvil_lines\":0,\"error\":\"" FORCE_DENIED
	        "\"}\n");
	assert_string_equal(r->err, "kickgate: " FORCE_DENIED "\n");
	run_free(r);
}

/* Under who = no the broker sends no records; the CLI says what it may:
 * for a dry run, the policy's word alone, and null in JSON where a
 * visible reply has lists and counts. */
static void test_hidden_dry_run(void **state)
{
	struct run *text = run_new(), *json = run_new();
	const uint8_t flags = KG_END_DRY_RUN | KG_END_HIDDEN | KG_END_SCOPED;

	(void)state;
	end(text, KG_EXIT_OK, flags, 0, 0, 0, "");
	print(text, KG_OP_KICK, KG_REQ_DRY_RUN, false);
	assert_int_equal(text->status, KG_EXIT_OK);
	assert_string_equal(text->out,
	                    "dry run: your rule allows this kick; it does not "
	                    "show sessions (who = no), so what it would kick "
	                    "is not shown\n");
	assert_string_equal(text->err, "");
	end(json, KG_EXIT_OK, flags, 0, 0, 0, "");
	print(json, KG_OP_KICK, KG_REQ_DRY_RUN, true);
	assert_string_equal(
	        json->out,
	        "{\"status\":0,\"dry_run\":true,\"kicked\":null,\"pids\":null,"
	        "\"warning\":null,\"refused\":null,\"connections\":null,"
	        "\"processes\":null,\"malformed_anvil_lines\":null,"
	        "\"error\":null}\n");
	run_free(text);
	run_free(json);
}

/* A kick done under who = no is told by its counts. */
static void test_hidden_kick(void **state)
{
	struct run *text = run_new(), *json = run_new();
	const uint8_t flags = KG_END_HIDDEN | KG_END_SCOPED;

	(void)state;
	end(text, KG_EXIT_OK, flags, 3, 1, 0, "");
	print(text, KG_OP_KICK, 0, false);
	assert_string_equal(text->out, "kicked 3 connections in 1 process\n");
	end(json, KG_EXIT_OK, flags, 3, 1, 0, "");
	print(json, KG_OP_KICK, 0, true);
	assert_non_null(strstr(json->out, "\"kicked\":null,\"pids\":null,"));
	assert_non_null(
	        strstr(json->out, ",\"connections\":3,\"processes\":1,"));
	run_free(text);
	run_free(json);
}

/* A need for -f under who = no does not name the other users, whether or
 * not the rule allows -f. */
static void test_hidden_need_force(void **state)
{
	struct run *may = run_new(), *denied = run_new();
	const uint8_t flags = KG_END_NEED_FORCE | KG_END_HIDDEN | KG_END_SCOPED;

	(void)state;
	end(may, KG_EXIT_NEED_FORCE, flags, 0, 0, 0, "");
	print(may, KG_OP_KICK, 0, false);
	assert_string_equal(may->out,
	                    "warning: the matching processes also serve other "
	                    "connections\nUse the '-f' option to enforce the "
	                    "disconnect.\n");
	end(denied, KG_EXIT_NEED_FORCE, flags | KG_END_FORCE_DENIED, 0, 0, 0,
	    FORCE_DENIED);
	print(denied, KG_OP_KICK, 0, false);
	assert_string_equal(denied->out, "");
	assert_string_equal(denied->err, "kickgate: " FORCE_DENIED "\n");
	run_free(may);
	run_free(denied);
}

/* ------------------------------------------------- Dovecot 2.4 kicks */

/* Anvil did the kick: doveadm 2.4's count line first, then the users as
 * for any kick, then those still connected when kickgated looked again;
 * the exit status is the broker's. */
static struct run *confirmed_kick(uint8_t status)
{
	struct run *r = run_new();

	add_user(r, KG_REC_KICKED, "bar");
	add_user(r, KG_REC_KICKED, "baz");
	if (status == KG_EXIT_PARTIAL) {
		add_user(r, KG_REC_REMAINED, "baz");
		add_user(r, KG_REC_REMAINED, "b z");
	}
	assert_int_equal(kg_rw_pid(&r->w, 8214), 0);
	end(r, status, KG_END_CONFIRMED, 1, 1, 0, "");
	return r;
}

static void test_confirmed_kick_text(void **state)
{
	struct run *all = confirmed_kick(KG_EXIT_OK);
	struct run *some = confirmed_kick(KG_EXIT_PARTIAL);

	(void)state;
	assert_int_equal(print(all, KG_OP_KICK, 0, false), 0);
	assert_int_equal(all->status, KG_EXIT_OK);
	assert_string_equal(all->out,
	                    "1 connections kicked\n"
	                    "kicked connections from the following users:\n"
	                    "bar baz\n");
	assert_int_equal(print(some, KG_OP_KICK, 0, false), 0);
	assert_int_equal(some->status, KG_EXIT_PARTIAL);
	assert_string_equal(some->out,
	                    "1 connections kicked\n"
	                    "kicked connections from the following users:\n"
	                    "bar baz\n"
	                    "still connected after the kick:\n"
	                    "baz b\\x20z\n");
	assert_string_equal(some->err, "");
	run_free(all);
	run_free(some);
}

static void test_confirmed_kick_json(void **state)
{
	struct run *all = confirmed_kick(KG_EXIT_OK);
	struct run *some = confirmed_kick(KG_EXIT_PARTIAL);

	(void)state;
	print(all, KG_OP_KICK, 0, true);
	assert_string_equal(
	        all->out,
	        "{\"status\":0,\"dry_run\":false,\"kicked\":[\"bar\",\"baz\"],"
	        "\"pids\":[8214],\"warning\":[],\"refused\":[],"
	        "\"confirmed\":true,\"remained\":[],"
	        "\"connections\":1,\"processes\":1,"
	        "\"malformed_anvil_lines\":0,\"error\":null}\n");
	print(some, KG_OP_KICK, 0, true);
	assert_int_equal(some->status, KG_EXIT_PARTIAL);
	assert_string_equal(
	        some->out,
	        "{\"status\":75,\"dry_run\":false,\"kicked\":[\"bar\",\"baz\"],"
	        "\"pids\":[8214],\"warning\":[],\"refused\":[],"
	        "\"confirmed\":true,\"remained\":[\"baz\",\"b z\"],"
	        "\"connections\":1,\"processes\":1,"
	        "\"malformed_anvil_lines\":0,\"error\":null}\n");
	run_free(all);
	run_free(some);
}

/* Under who = no, a confirmed kick tells its count and, when some
 * sessions stayed, that some did, naming nobody. */
static void test_confirmed_hidden_kick(void **state)
{
	const uint8_t flags = KG_END_CONFIRMED | KG_END_HIDDEN | KG_END_SCOPED;
	struct run *text = run_new(), *json = run_new();

	(void)state;
	end(text, KG_EXIT_PARTIAL, flags, 2, 1, 0, "");
	print(text, KG_OP_KICK, 0, false);
	assert_int_equal(text->status, KG_EXIT_PARTIAL);
	assert_string_equal(text->out,
	                    "2 connections kicked\n"
	                    "some sessions were still connected after the "
	                    "kick; your rule does not show which (who = no)\n");
	end(json, KG_EXIT_PARTIAL, flags, 2, 1, 0, "");
	print(json, KG_OP_KICK, 0, true);
	assert_string_equal(
	        json->out,
	        "{\"status\":75,\"dry_run\":false,\"kicked\":null,\"pids\":"
	        "null,"
	        "\"warning\":null,\"refused\":null,\"confirmed\":true,"
	        "\"remained\":null,\"connections\":2,\"processes\":1,"
	        "\"malformed_anvil_lines\":null,\"error\":null}\n");
	run_free(text);
	run_free(json);
}

/* Only a kick anvil did can leave users behind. */
static void test_remained_without_confirmation_is_malformed(void **state)
{
	struct run *r = run_new();

	(void)state;
	add_user(r, KG_REC_REMAINED, "foo");
	end(r, KG_EXIT_OK, 0, 1, 1, 0, "");
	assert_int_equal(print(r, KG_OP_KICK, 0, false), KG_EXIT_SOFTWARE);
	assert_string_equal(r->out, "");
	assert_string_equal(r->err,
	                    "kickgate: malformed reply from the broker: users "
	                    "still connected after a kick that was not "
	                    "confirmed\n");
	run_free(r);
}

/* ----------------------------------------------------------- instances */

static struct run *two_instances(void)
{
	struct run *r = run_new();
	struct kg_instance_row rows[] = {
	        {"default", 7, "/run/dovecot/anvil", 18},
	        {"b", 1, "/run/dovecot b/anvil", 20},
	};

	for (size_t i = 0; i < 2; i++)
		assert_int_equal(kg_rw_instance(&r->w, &rows[i]), 0);
	end(r, KG_EXIT_OK, 0, 0, 0, 0, "");
	return r;
}

static void test_instances_text(void **state)
{
	struct run *r = two_instances();

	(void)state;
	print(r, KG_OP_INSTANCES, 0, false);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "instance anvil\n"
	                            "default /run/dovecot/anvil\n"
	                            "b /run/dovecot\\x20b/anvil\n");
	assert_string_equal(r->err, "");
	run_free(r);
}

static void test_instances_json(void **state)
{
	struct run *r = two_instances();

	(void)state;
	print(r, KG_OP_INSTANCES, 0, true);
	assert_string_equal(
	        r->out,
	        "{\"instances\":[\n"
	        "{\"name\":\"default\",\"anvil\":\"/run/dovecot/anvil\"},\n"
	        "{\"name\":\"b\",\"anvil\":\"/run/dovecot b/anvil\"}\n"
	        "],\"status\":0,\"error\":null}\n");
	run_free(r);
}

static void test_instances_refused_json(void **state)
{
	struct run *r = run_new();

	(void)state;
	end(r, KG_EXIT_NOPERM, 0, 0, 0, 0, "permission denied");
	print(r, KG_OP_INSTANCES, 0, true);
	assert_int_equal(r->status, 77);
	assert_string_equal(r->out, "{\"instances\":[],\"status\":77,"
	                            "\"error\":\"permission denied\"}\n");
	assert_string_equal(r->err, "kickgate: permission denied\n");
	run_free(r);
}

static void test_instance_in_a_who_reply_is_malformed(void **state)
{
	struct run *r = two_instances();

	(void)state;
	assert_int_equal(print(r, KG_OP_WHO, 0, false), KG_EXIT_SOFTWARE);
	assert_non_null(strstr(r->err, "instance in a kick or who reply"));
	run_free(r);
}

/* ---------------------------------------------------------------- who */

static struct run *who_rows(void)
{
	struct run *r = run_new();
	struct kg_addr a1 = v4(192, 0, 2, 1), a6 = v6_doc(1);

	add_who(r, "alice", "imap", 100, 1, &a1);
	add_who(r, "alice", "pop3", 101, 2, &a1);
	add_who(r, "alice", "imap", 100, 1, &a6);
	add_who(r, "bob", "imap", 200, 1, NULL);
	end(r, 0, 0, 5, 3, 0, "");
	return r;
}

static void test_who_groups_per_user(void **state)
{
	struct run *r = who_rows();

	(void)state;
	print(r, KG_OP_WHO, 0, false);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "username # proto (pids) (ips)\n"
	                            "alice 4 imap pop3 (100 101) (192.0.2.1 "
	                            "2001:db8::1)\n"
	                            "bob 1 imap (200) ()\n");
	run_free(r);
}

static void test_who_separate_prints_each_row(void **state)
{
	struct run *r = who_rows();

	(void)state;
	print(r, KG_OP_WHO, KG_REQ_SEPARATE, false);
	assert_string_equal(r->out, "username proto pid ip\n"
	                            "alice imap 100 192.0.2.1\n"
	                            "alice pop3 101 192.0.2.1\n"
	                            "alice imap 100 2001:db8::1\n"
	                            "bob imap 200\n");
	run_free(r);
}

static void test_who_json_lists_sessions(void **state)
{
	struct run *r = who_rows();

	(void)state;
	print(r, KG_OP_WHO, 0, true);
	assert_string_equal(
	        r->out,
	        "{\"sessions\":[\n"
	        "{\"user\":\"alice\",\"service\":\"imap\",\"pid\":100,"
	        "\"ip\":\"192.0.2.1\",\"connections\":1},\n"
	        "{\"user\":\"alice\",\"service\":\"pop3\",\"pid\":101,"
	        "\"ip\":\"192.0.2.1\",\"connections\":2},\n"
	        "{\"user\":\"alice\",\"service\":\"imap\",\"pid\":100,"
	        "\"ip\":\"2001:db8::1\",\"connections\":1},\n"
	        "{\"user\":\"bob\",\"service\":\"imap\",\"pid\":200,"
	        "\"ip\":null,\"connections\":1}\n"
	        "],\"status\":0,\"malformed_anvil_lines\":0,\"error\":null}\n");
	run_free(r);
}

static void test_who_empty_listing(void **state)
{
	struct run *ok = run_new(), *none = run_new(), *json = run_new();

	(void)state;
	end(ok, 0, 0, 0, 0, 0, "");
	print(ok, KG_OP_WHO, 0, false);
	assert_string_equal(ok->out, "username # proto (pids) (ips)\n");
	end(none, KG_EXIT_NOMATCH, 0, 0, 0, 0, "");
	print(none, KG_OP_WHO, KG_REQ_SEPARATE, false);
	assert_int_equal(none->status, 68);
	assert_string_equal(none->out, "");
	end(json, KG_EXIT_NOMATCH, 0, 0, 0, 0, "");
	print(json, KG_OP_WHO, 0, true);
	assert_string_equal(json->out,
	                    "{\"sessions\":[],\"status\":68,"
	                    "\"malformed_anvil_lines\":0,\"error\":null}\n");
	run_free(ok);
	run_free(none);
	run_free(json);
}

/* A group past the kept slot table size, then groups after it: every pid
 * and address listed once, in the order first seen. */
static void test_who_large_group_lists_each_value_once(void **state)
{
	struct run *r = run_new();
	char *want = NULL;
	size_t want_len = 0;
	FILE *f = open_memstream(&want, &want_len);

	(void)state;
	assert_non_null(f);
	for (uint32_t round = 0; round < 2; round++) {
		for (uint32_t pid = 1000; pid < 1300; pid++) {
			struct kg_addr a = v4(10, 0, (uint8_t)(pid % 7), 1);

			add_who(r, "many", "imap", pid, 1, &a);
		}
	}
	add_who(r, "next", "pop3", 5, 1, NULL);
	add_who(r, "next", "pop3", 5, 1, NULL);
	end(r, 0, 0, 602, 301, 0, "");
	print(r, KG_OP_WHO, 0, false);

	fputs("username # proto (pids) (ips)\nmany 600 imap (", f);
	for (uint32_t pid = 1000; pid < 1300; pid++)
		fprintf(f, "%s%u", pid > 1000 ? " " : "", pid);
	fputs(") (", f);
	for (uint32_t i = 0; i < 7; i++)
		fprintf(f, "%s10.0.%u.1", i > 0 ? " " : "", (1000 + i) % 7);
	fputs(")\nnext 2 pop3 (5) ()\n", f);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(r->out, want);
	free(want);
	run_free(r);
}

/* -------------------------------------------------- Dovecot 2.4 who */

static const struct kg_field alias_bar[] = {{"user_alias", 10, "alias-bar", 9}};
static const struct kg_field alias_jane[] = {
        {"user_alias", 10, "alias jane", 10}};
static const struct kg_field alice_fields[] = {
        {"user_tenant", 11, "tenant-a.example", 16},
        {"user_alias", 10, "alias-alice", 11}};

/* The rows of the shared capture: a field missing here and there, one
 * session proxied, the tenant field first seen on the last row. */
static struct run *who24_rows(void)
{
	struct run *r = run_new();
	struct kg_addr a3 = v4(127, 0, 0, 3), a6 = v6_doc(1);
	struct kg_addr dest = v4(10, 0, 0, 25);

	add_who24(r, "bar", "pop3", 8226, &a3, NULL, alias_bar, 1);
	add_who24(r, "jane", "imap", 8214, &a6, &dest, alias_jane, 1);
	add_who24(r, "nobody", "imap", 8214, &a3, NULL, NULL, 0);
	add_who24(r, "alice@tenant-a.example", "imap", 8214, &a3, NULL,
	          alice_fields, 2);
	end(r, 0, 0, 4, 2, 0, "");
	return r;
}

/* doveadm 2.4's who -1 columns, then one per field in the order the rows
 * first carry it, blank where a row has none: every line has the same
 * number of single spaces, and a value's space is escaped. */
static void test_who24_separate_has_doveadm_columns(void **state)
{
	struct run *r = who24_rows();

	(void)state;
	assert_int_equal(print(r, KG_OP_WHO, KG_REQ_SEPARATE, false), 0);
	assert_string_equal(
	        r->out,
	        "username service pid ip dest_ip user_alias user_tenant\n"
	        "bar pop3 8226 127.0.0.3  alias-bar \n"
	        "jane imap 8214 2001:db8::1 10.0.0.25 alias\\x20jane \n"
	        "nobody imap 8214 127.0.0.3   \n"
	        "alice@tenant-a.example imap 8214 127.0.0.3  alias-alice "
	        "tenant-a.example\n");
	assert_string_equal(r->err, "");
	run_free(r);
}

static void test_who24_separate_padded(void **state)
{
	struct run *r = who24_rows();

	(void)state;
	assert_int_equal(print_to(r, KG_OP_WHO, KG_REQ_SEPARATE, false, true),
	                 0);
	assert_string_equal(
	        r->out,
	        "username               service  pid ip          dest_ip   "
	        "user_alias    user_tenant\n"
	        "bar                    pop3    8226 127.0.0.3             "
	        "alias-bar     \n"
	        "jane                   imap    8214 2001:db8::1 10.0.0.25 "
	        "alias\\x20jane \n"
	        "nobody                 imap    8214 127.0.0.3                "
	        "           \n"
	        "alice@tenant-a.example imap    8214 127.0.0.3             "
	        "alias-alice   tenant-a.example\n");
	run_free(r);
}

/* The default listing is the same for either Dovecot. */
static void test_who24_grouped_as_before(void **state)
{
	struct run *r = who24_rows();

	(void)state;
	print(r, KG_OP_WHO, 0, false);
	assert_string_equal(
	        r->out, "username # proto (pids) (ips)\n"
	                "bar 1 pop3 (8226) (127.0.0.3)\n"
	                "jane 1 imap (8214) (2001:db8::1)\n"
	                "nobody 1 imap (8214) (127.0.0.3)\n"
	                "alice@tenant-a.example 1 imap (8214) (127.0.0.3)\n");
	run_free(r);
}

/* JSON carries what text leaves out: the GUID, the destination, every
 * field by name. */
static void test_who24_json_carries_every_field(void **state)
{
	struct run *r = who24_rows();

	(void)state;
	print(r, KG_OP_WHO, KG_REQ_SEPARATE, true);
	assert_string_equal(
	        r->out,
	        "{\"sessions\":[\n"
	        "{\"user\":\"bar\",\"service\":\"pop3\",\"pid\":8226,"
	        "\"ip\":\"127.0.0.3\",\"connections\":1,"
	        "\"guid\":\"2233445566778899aabbccddeeff1021\","
	        "\"dest_ip\":null,\"fields\":{\"user_alias\":\"alias-bar\"}},\n"
	        "{\"user\":\"jane\",\"service\":\"imap\",\"pid\":8214,"
	        "\"ip\":\"2001:db8::1\",\"connections\":1,"
	        "\"guid\":\"162738495a6b7c8d9eafc0d1e2f30415\","
	        "\"dest_ip\":\"10.0.0.25\","
	        "\"fields\":{\"user_alias\":\"alias jane\"}},\n"
	        "{\"user\":\"nobody\",\"service\":\"imap\",\"pid\":8214,"
	        "\"ip\":\"127.0.0.3\",\"connections\":1,"
	        "\"guid\":\"162738495a6b7c8d9eafc0d1e2f30415\","
	        "\"dest_ip\":null,\"fields\":{}},\n"
	        "{\"user\":\"alice@tenant-a.example\",\"service\":\"imap\","
	        "\"pid\":8214,\"ip\":\"127.0.0.3\",\"connections\":1,"
	        "\"guid\":\"162738495a6b7c8d9eafc0d1e2f30415\","
	        "\"dest_ip\":null,\"fields\":{\"user_tenant\":"
	        "\"tenant-a.example\",\"user_alias\":\"alias-alice\"}}\n"
	        "],\"status\":0,\"malformed_anvil_lines\":0,\"error\":null}\n");
	run_free(r);
}

/* One reply comes from one Dovecot: rows of both kinds are malformed. */
static void test_who_rows_of_both_kinds_are_malformed(void **state)
{
	struct run *r = run_new();
	struct kg_addr a = v4(127, 0, 0, 3);

	(void)state;
	add_who24(r, "bar", "pop3", 8226, &a, NULL, alias_bar, 1);
	add_who(r, "foo", "imap", 100, 1, &a);
	end(r, 0, 0, 2, 2, 0, "");
	assert_int_equal(print(r, KG_OP_WHO, 0, false), KG_EXIT_SOFTWARE);
	assert_string_equal(r->err,
	                    "kickgate: malformed reply from the broker: "
	                    "rows of Dovecot 2.3 and 2.4 in one "
	                    "reply\n");
	run_free(r);
}

/* Eight new field names a row: the ninth row would make 72 columns.
 * The rows held so far are printed, and JSON is suggested. */
static void test_who24_too_many_columns(void **state)
{
	static char names[9 * KG_FIELDS_MAX][8];
	struct kg_field f[9 * KG_FIELDS_MAX];
	struct run *r = run_new();
	struct kg_addr a = v4(127, 0, 0, 3);
	char *line;
	size_t lines = 0;

	(void)state;
	for (size_t i = 0; i < 9 * KG_FIELDS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "f%zu", i);
		f[i] = (struct kg_field){names[i], strlen(names[i]), "v", 1};
	}
	for (uint32_t row = 0; row < 9; row++)
		add_who24(r, "u", "imap", 100 + row, &a, NULL,
		          f + row * KG_FIELDS_MAX, KG_FIELDS_MAX);
	end(r, 0, 0, 9, 9, 0, "");
	assert_int_equal(print(r, KG_OP_WHO, KG_REQ_SEPARATE, false),
	                 KG_EXIT_SOFTWARE);
	assert_string_equal(r->err,
	                    "kickgate: the sessions carry more than 64 "
	                    "alternative-username fields, too many columns for "
	                    "who -1: use -j\n");
	assert_non_null(strstr(r->out, " f63\n"));
	for (line = r->out; (line = strchr(line, '\n')) != NULL; line++)
		lines++;
	assert_int_equal(lines, 9);
	run_free(r);
}

/* ------------------------------------------------------- padded who */

static void test_who_padded_for_a_terminal(void **state)
{
	struct run *r = run_new(), *piped = run_new();
	struct kg_addr a = v4(192, 0, 2, 1);

	(void)state;
	for (int i = 0; i < 2; i++) {
		struct run *x = i == 0 ? r : piped;

		add_who(x, "alice", "imap", 100, 11, &a);
		add_who(x, "alice", "pop3", 101, 1, &a);
		add_who(x, "bob", "imap", 200, 1, NULL);
		end(x, 0, 0, 13, 3, 0, "");
	}
	assert_int_equal(print_to(r, KG_OP_WHO, 0, false, true), 0);
	/* The count is a number: aligned right. */
	assert_string_equal(r->out,
	                    "username  # proto     (pids)    (ips)\n"
	                    "alice    12 imap pop3 (100 101) (192.0.2.1)\n"
	                    "bob       1 imap      (200)     ()\n");
	print(piped, KG_OP_WHO, 0, false);
	assert_string_equal(piped->out, "username # proto (pids) (ips)\n"
	                                "alice 12 imap pop3 (100 101) "
	                                "(192.0.2.1)\n"
	                                "bob 1 imap (200) ()\n");
	run_free(r);
	run_free(piped);
}

/* Widths are what the terminal shows: an escape its four characters, a
 * UTF-8 character one column or, if wide, two. */
static void test_who_padding_counts_printed_width(void **state)
{
	struct run *r = run_new();
	struct kg_addr a4 = v4(192, 0, 2, 1), a6 = v6_doc(1);

	(void)state;
	assert_non_null(setlocale(LC_CTYPE, "C.UTF-8"));
	add_who(r, "a\tb", "imap", 7, 1, &a4);
	add_who(r, "j\xc3\xbcrgen", "pop3", 12345, 1, NULL);
	add_who(r, "\xe6\x97\xa5\xe6\x9c\xac", "imap", 42, 1, &a6);
	end(r, 0, 0, 3, 3, 0, "");
	print_to(r, KG_OP_WHO, KG_REQ_SEPARATE, false, true);
	setlocale(LC_CTYPE, "C");
	assert_string_equal(r->out, "username proto   pid ip\n"
	                            "a\\x09b   imap      7 192.0.2.1\n"
	                            "j\xc3\xbcrgen   pop3  12345\n"
	                            "\xe6\x97\xa5\xe6\x9c\xac     imap     42 "
	                            "2001:db8::1\n");
	run_free(r);
}

/* Where the second column of a padded -1 line starts. */
static size_t second_column(const char *line)
{
	size_t i = strcspn(line, " ");

	return i + strspn(line + i, " ");
}

/* A long listing is printed in batches: every row is there, and a column
 * widened by a later batch never narrows again. */
static void test_who_padded_in_batches(void **state)
{
	enum { ROWS = 12000 };
	struct run *r = run_new();
	struct kg_addr a = v4(10, 0, 0, 1);
	char user[16];
	size_t lines = 0, last = 0, widened = 0;

	(void)state;
	for (uint32_t i = 0; i < ROWS; i++) {
		snprintf(user, sizeof(user), "u%05u", (unsigned)i);
		add_who(r, user, "imap", 1000 + i, 1, &a);
	}
	add_who(r, "a-user-with-a-long-name", "imap", 99, 1, &a);
	end(r, 0, 0, ROWS + 1, ROWS + 1, 0, "");
	print_to(r, KG_OP_WHO, KG_REQ_SEPARATE, false, true);
	for (char *line = r->out, *nl; (nl = strchr(line, '\n')) != NULL;
	     line = nl + 1, lines++) {
		size_t col = second_column(line);

		*nl = '\0';
		assert_true(col == 9 || col == 24);
		assert_true(col >= last);
		widened += col == 24;
		last = col;
	}
	assert_int_equal(lines, ROWS + 2);
	/* The batch with the long name, not the whole listing, widened. */
	assert_true(widened > 0 && widened < ROWS);
	run_free(r);
}

/* ------------------------------------------------------ hostile names */

static const char *const hostile[] = {
        "a\tb",
        "new\nline",
        "sp ace",
        "\xff",
        "back\\slash",
        "j\xc3\xbcrgen",
        "\xc2\x9b"
        "2J",
        "quo\"te",
        "\xe2\x82",
        NULL,
};

static void test_hostile_names_are_escaped_in_text(void **state)
{
	struct run *r = run_new();

	(void)state;
	add_users(r, KG_REC_KICKED, hostile);
	end(r, 0, 0, 9, 1, 0, "");
	print(r, KG_OP_KICK, 0, false);
	assert_string_equal(r->out,
	                    "kicked connections from the following users:\n"
	                    "a\\x09b new\\x0aline sp\\x20ace \\xff "
	                    "back\\x5cslash j\xc3\xbcrgen \\xc2\\x9b2J "
	                    "quo\"te \\xe2\\x82\n");
	run_free(r);
}

static void test_hostile_names_are_valid_json(void **state)
{
	struct run *r = run_new();

	(void)state;
	add_users(r, KG_REC_KICKED, hostile);
	end(r, 0, 0, 9, 1, 0, "");
	print(r, KG_OP_KICK, 0, true);
	/* Invalid bytes are U+FFFD in the text, and the parallel array
	 * holds every name's exact bytes. */
	assert_non_null(strstr(
	        r->out, "\"kicked\":[\"a\\u0009b\",\"new\\u000aline\","
	                "\"sp ace\",\"\\ufffd\",\"back\\\\slash\","
	                "\"j\xc3\xbcrgen\",\"\\u009b2J\",\"quo\\\"te\","
	                "\"\\ufffd\\ufffd\"],"
	                "\"kicked_hex\":[\"610962\",\"6e65770a6c696e65\","
	                "\"737020616365\",\"ff\",\"6261636b5c736c617368\","
	                "\"6ac3bc7267656e\",\"c29b324a\",\"71756f227465\","
	                "\"e282\"],\"pids\":"));
	run_free(r);
}

/* Valid UTF-8 is carried exactly: shown characters as they are, hidden
 * ones as \u escapes of their code points (a surrogate pair past
 * U+FFFF), and no _hex array. */
static void test_json_carries_exact_names(void **state)
{
	static const char *const names[] = {
	        "a\xe2\x80\xae"
	        "b", /* U+202E */
	        "a\xe2\x80\x8b"
	        "1@tenant-a.example",             /* U+200B */
	        "\xef\xbb\xbfx\xc2\xad",          /* U+FEFF, U+00AD */
	        "\xf3\xa0\x81\x81",               /* U+E0041, a tag */
	        "\xe2\x80\xa9\x7f",               /* U+2029, DEL */
	        "j\xc3\xbcrgen \xf0\x9f\x98\x80", /* shown as is */
	        NULL,
	};
	struct run *r = run_new();

	(void)state;
	add_users(r, KG_REC_KICKED, names);
	end(r, 0, 0, 6, 1, 0, "");
	print(r, KG_OP_KICK, 0, true);
	assert_non_null(strstr(
	        r->out, "\"kicked\":[\"a\\u202eb\","
	                "\"a\\u200b1@tenant-a.example\","
	                "\"\\ufeffx\\u00ad\",\"\\udb40\\udc41\","
	                "\"\\u2029\\u007f\","
	                "\"j\xc3\xbcrgen \xf0\x9f\x98\x80\"],\"pids\":"));
	run_free(r);
}

/* The parser the JSON output is checked with takes RFC 8259 and nothing
 * else, and decodes strings to their bytes. */
static void test_json_reference_is_strict(void **state)
{
	static const char *const good[] = {
	        "{}",
	        " [1, -0.5e+3, true, false, null] ",
	        "\"\\u00e9\\/\"",
	        "{\"a\":{\"b\":[]},\"c\":\"\xf0\x9f\x98\x80\"}",
	};
	static const char *const bad[] = {
	        "",
	        "{} {}",
	        "[1,]",
	        "{\"a\":1,}",
	        "{\"a\":1,\"a\":2}",
	        "01",
	        "1.",
	        "+1",
	        "'a'",
	        "\"a\tb\"",
	        "\"\\x41\"",
	        "\"\\ud800\"",
	        "\"\\udc00\\ud800\"",
	        "\"\xff\"",
	        "\"\xed\xa0\x80\"",
	        "\"a",
	        "nul",
	        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	        "[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
	        "]]]]]]]]]]",
	};
	struct json *v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		json_free(json_whole(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = json_parse(bad[i], strlen(bad[i]));
		if (v != NULL)
			fail_msg("accepted: %s", bad[i]);
	}
	v = json_whole("\"a\\ud83d\\ude00\\u0000\"");
	assert_int_equal(v->len, 6);
	assert_memory_equal(v->str, "a\xf0\x9f\x98\x80\0", 6);
	json_free(v);
}

/* A who row's user and service get a _hex field of their own, only when
 * they are not valid UTF-8. */
static void test_who_json_adds_hex_only_when_needed(void **state)
{
	struct run *r = run_new();

	(void)state;
	add_who(r, "ok\xe2\x81\xa0", "imap", 7, 1, NULL);
	add_who(r, "bad\xff", "im\xc0p", 8, 1, NULL);
	end(r, 0, 0, 2, 2, 0, "");
	print(r, KG_OP_WHO, KG_REQ_SEPARATE, true);
	assert_string_equal(
	        r->out,
	        "{\"sessions\":[\n"
	        "{\"user\":\"ok\\u2060\",\"service\":\"imap\",\"pid\":7,"
	        "\"ip\":null,\"connections\":1},\n"
	        "{\"user\":\"bad\\ufffd\",\"user_hex\":\"626164ff\","
	        "\"service\":\"im\\ufffdp\",\"service_hex\":\"696dc070\","
	        "\"pid\":8,\"ip\":null,\"connections\":1}\n"
	        "],\"status\":0,\"malformed_anvil_lines\":0,\"error\":null}\n");
	run_free(r);
}

/* A format character is invisible: unescaped, "a<U+200B>1" would print
 * as "a1" does. */
static void test_format_characters_are_escaped_in_text(void **state)
{
	static const char *const names[] = {
	        "a\xe2\x80\x8b"
	        "1@tenant-a.example",
	        "a1@tenant-a.example",
	        NULL,
	};
	struct run *r = run_new();

	(void)state;
	add_users(r, KG_REC_KICKED, names);
	end(r, 0, 0, 2, 1, 0, "");
	print(r, KG_OP_KICK, 0, false);
	assert_string_equal(r->out,
	                    "kicked connections from the following users:\n"
	                    "a\\xe2\\x80\\x8b1@tenant-a.example "
	                    "a1@tenant-a.example\n");
	run_free(r);
}

static void test_hostile_who_rows_are_escaped(void **state)
{
	struct run *r = run_new();
	struct kg_addr a = v4(192, 0, 2, 9);

	(void)state;
	add_who(r, "eve 1 imap (1) (192.0.2.1)\nmallory", "im ap", 300, 1, &a);
	end(r, 0, 0, 1, 1, 0, "");
	print(r, KG_OP_WHO, KG_REQ_SEPARATE, false);
	assert_string_equal(r->out, "username proto pid ip\n"
	                            "eve\\x201\\x20imap\\x20(1)\\x20(192.0.2.1)"
	                            "\\x0amallory im\\x20ap 300 192.0.2.9\n");
	run_free(r);
}

/* ------------------------------------------------------------- errors */

static void test_record_of_the_other_command_is_rejected(void **state)
{
	struct run *r = run_new();

	(void)state;
	add_who(r, "alice", "imap", 100, 1, NULL);
	end(r, 0, 0, 1, 1, 0, "");
	assert_int_equal(print(r, KG_OP_KICK, 0, false), KG_EXIT_SOFTWARE);
	assert_int_equal(r->status, KG_EXIT_SOFTWARE);
	assert_string_equal(r->out, "");
	assert_string_equal(r->err, "kickgate: malformed reply from the "
	                            "broker: who row in a kick reply\n");
	run_free(r);
}

/* Two records of op, or with cut only the first, then the same end. */
static struct run *two_records(uint8_t op, bool cut)
{
	struct run *r = run_new();

	if (op == KG_OP_KICK) {
		add_user(r, KG_REC_KICKED, "bar");
		if (!cut)
			add_user(r, KG_REC_KICKED, "baz");
	} else {
		add_who(r, "alice", "imap", 100, 1, NULL);
		if (!cut)
			add_who(r, "bob", "imap", 200, 1, NULL);
	}
	end(r, 0, 0, 2, 2, 0, "");
	return r;
}

/* A reply cut at a record boundary, its end packet intact, must not
 * print as a whole one: for a kick and a listing, as text and JSON. */
static void test_lost_records_are_an_error(void **state)
{
	const uint8_t ops[] = {KG_OP_KICK, KG_OP_WHO};

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		struct run *whole = two_records(ops[i % 2], false);
		struct run *cut = two_records(ops[i % 2], true);

		/* The first record's packet, the whole reply's end. */
		free(cut->pkts.data[1]);
		cut->pkts.data[1] = whole->pkts.data[1];
		cut->pkts.len[1] = whole->pkts.len[1];
		whole->pkts.n = 1;
		assert_int_equal(print(cut, ops[i % 2], 0, i >= 2),
		                 KG_EXIT_SOFTWARE);
		assert_int_equal(cut->status, KG_EXIT_SOFTWARE);
		assert_string_equal(
		        cut->err, "kickgate: malformed reply from the broker: "
		                  "records are missing\n");
		run_free(whole);
		run_free(cut);
	}
}

/* A listing's rows must add up to the connections its end reports. */
static void test_who_rows_must_add_up(void **state)
{
	struct run *r = run_new();

	(void)state;
	add_who(r, "alice", "imap", 100, 1, NULL);
	add_who(r, "bob", "imap", 200, 2, NULL);
	end(r, 0, 0, 4, 2, 0, "");
	assert_int_equal(print(r, KG_OP_WHO, 0, false), KG_EXIT_SOFTWARE);
	assert_string_equal(r->err, "kickgate: malformed reply from the "
	                            "broker: the rows do not add up to the "
	                            "connections listed\n");
	run_free(r);
}

/* A caller who may not see every session is told nothing of anvil's
 * malformed lines: no warning, and null rather than 0 in JSON. */
static void test_scoped_reply_has_no_malformed_count(void **state)
{
	struct run *text = run_new(), *kick = run_new(), *who = run_new();

	(void)state;
	end(text, KG_EXIT_NOMATCH, KG_END_SCOPED, 0, 0, 0, "");
	print(text, KG_OP_KICK, 0, false);
	assert_string_equal(text->out, "no users kicked\n");
	assert_string_equal(text->err, "");
	end(kick, KG_EXIT_NOMATCH, KG_END_SCOPED, 0, 0, 0, "");
	print(kick, KG_OP_KICK, 0, true);
	assert_non_null(strstr(kick->out, ",\"malformed_anvil_lines\":null,"));
	end(who, KG_EXIT_OK, KG_END_SCOPED, 0, 0, 0, "");
	print(who, KG_OP_WHO, 0, true);
	assert_string_equal(who->out,
	                    "{\"sessions\":[],\"status\":0,"
	                    "\"malformed_anvil_lines\":null,\"error\":null}\n");
	run_free(text);
	run_free(kick);
	run_free(who);
}

static void test_failure_completes_the_json_document(void **state)
{
	struct run *r = run_new();
	size_t out_len, err_len;
	FILE *out = open_memstream(&r->out, &out_len);
	FILE *err = open_memstream(&r->err, &err_len);
	struct kg_printer *p;
	bool is_end;
	int cb;

	(void)state;
	add_who(r, "alice", "imap", 100, 1, NULL);
	assert_int_equal(kg_rw_end(&r->w, &(struct kg_reply_end){0}), 0);
	p = kg_printer_new(out, err, KG_OP_WHO, 0, true);
	assert_non_null(p);
	/* Only the record packet arrives; then the broker is gone. */
	assert_int_equal(kg_reply_decode(r->pkts.data[0], r->pkts.len[0],
	                                 &kg_printer_handler, p, &is_end, &cb),
	                 KG_WIRE_OK);
	assert_false(is_end);
	assert_int_equal(kg_printer_fail(p, KG_EXIT_UNAVAILABLE,
	                                 "broker closed the connection"),
	                 KG_EXIT_UNAVAILABLE);
	assert_int_equal(kg_printer_status(p), KG_EXIT_UNAVAILABLE);
	kg_printer_free(p);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(fclose(err), 0);
	assert_string_equal(r->out,
	                    "{\"sessions\":[\n"
	                    "{\"user\":\"alice\",\"service\":\"imap\","
	                    "\"pid\":100,\"ip\":null,\"connections\":1}\n"
	                    "],\"status\":69,\"malformed_anvil_lines\":0,"
	                    "\"error\":\"broker closed the connection\"}\n");
	assert_string_equal(r->err, "kickgate: broker closed the connection\n");
	run_free(r);
}

static void test_failure_in_text_prints_only_the_error(void **state)
{
	char *out_text = NULL, *err_text = NULL;
	size_t out_len, err_len;
	FILE *out = open_memstream(&out_text, &out_len);
	FILE *err = open_memstream(&err_text, &err_len);
	struct kg_printer *p = kg_printer_new(out, err, KG_OP_KICK, 0, false);

	(void)state;
	assert_non_null(p);
	kg_printer_fail(p, KG_EXIT_UNAVAILABLE,
	                "cannot reach the broker at /run/k\x1b.sock: No such "
	                "file or directory");
	kg_printer_free(p);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(fclose(err), 0);
	assert_string_equal(out_text, "");
	assert_string_equal(err_text,
	                    "kickgate: cannot reach the broker at "
	                    "/run/k\\x1b.sock: No such file or directory\n");
	free(out_text);
	free(err_text);
}

static void test_failure_in_kick_json_is_a_whole_document(void **state)
{
	char *out_text = NULL, *err_text = NULL;
	size_t out_len, err_len;
	FILE *out = open_memstream(&out_text, &out_len);
	FILE *err = open_memstream(&err_text, &err_len);
	struct kg_printer *p =
	        kg_printer_new(out, err, KG_OP_KICK, KG_REQ_DRY_RUN, true);

	(void)state;
	assert_non_null(p);
	assert_int_equal(kg_printer_fail(p, KG_EXIT_UNAVAILABLE,
	                                 "no reply from the broker within 120 "
	                                 "seconds"),
	                 KG_EXIT_UNAVAILABLE);
	kg_printer_free(p);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(fclose(err), 0);
	assert_string_equal(
	        out_text,
	        "{\"status\":69,\"dry_run\":true,\"kicked\":[],\"pids\":[],"
	        "\"warning\":[],\"refused\":[],"
	        "\"connections\":0,\"processes\":0,"
	        "\"malformed_anvil_lines\":0,\"error\":\"no reply from the "
	        "broker within 120 seconds\"}\n");
	assert_string_equal(err_text, "kickgate: no reply from the broker "
	                              "within 120 seconds\n");
	free(out_text);
	free(err_text);
}

/* ----------------------------------------------------------- escaping */

struct esc_case {
	const char *in;
	size_t len;
	unsigned flags;
	const char *want;
};

static void test_escape_table(void **state)
{
	static const struct esc_case cases[] = {
	        {"plain", 5, 0, "plain"},
	        {"a b", 3, 0, "a b"},
	        {"a b", 3, KG_ESC_SPACE, "a\\x20b"},
	        {"nul\0x", 5, 0, "nul\\x00x"},
	        {"\x7f", 1, 0, "\\x7f"},
	        {"\\", 1, 0, "\\x5c"},
	        {"\xc3\xa9", 2, 0, "\xc3\xa9"},
	        {"\xc3", 1, 0, "\\xc3"},
	        {"\xc0\xaf", 2, 0, "\\xc0\\xaf"},          /* overlong '/' */
	        {"\xed\xa0\x80", 3, 0, "\\xed\\xa0\\x80"}, /* surrogate */
	        {"\xf0\x9f\x98\x80", 4, 0, "\xf0\x9f\x98\x80"},
	        {"\xc2\x85", 2, 0, "\\xc2\\x85"}, /* C1 NEL */
	        {"\xc2\xa0", 2, 0, "\xc2\xa0"},   /* NBSP is printable */
	        {"a\xe2\x80\xae"
	         "b",
	         5, 0,
	         "a\\xe2\\x80\\xae"
	         "b"},                                     /* RLO */
	        {"\xe2\x80\xaa", 3, 0, "\\xe2\\x80\\xaa"}, /* LRE */
	        {"\xe2\x80\x8e", 3, 0, "\\xe2\\x80\\x8e"}, /* LRM */
	        {"\xe2\x80\x8f", 3, 0, "\\xe2\\x80\\x8f"}, /* RLM */
	        {"\xe2\x81\xa6", 3, 0, "\\xe2\\x81\\xa6"}, /* LRI */
	        {"\xe2\x81\xa9", 3, 0, "\\xe2\\x81\\xa9"}, /* PDI */
	        {"\xd8\x9c", 2, 0, "\\xd8\\x9c"},          /* ALM */
	        {"\xe2\x80\xad", 3, 0, "\\xe2\\x80\\xad"}, /* LRO */
	        {"\xe2\x80\xa8", 3, 0, "\\xe2\\x80\\xa8"}, /* LS */
	        {"\xe2\x80\xa7", 3, 0, "\xe2\x80\xa7"},    /* U+2027 stays */
	        {"\xe2\x80\xa9", 3, 0, "\\xe2\\x80\\xa9"}, /* PS */
	        /* Every format character (Cf): each range's ends, and the
	         * characters just outside them. */
	        {"\xc2\xac\xc2\xad\xc2\xae", 6, 0,
	         "\xc2\xac\\xc2\\xad\xc2\xae"}, /* U+00AD */
	        {"\xd8\x80\xd8\x85\xd8\x86", 6, 0,
	         "\\xd8\\x80\\xd8\\x85\xd8\x86"}, /* U+0600..U+0605 */
	        {"\xdb\x9d\xdc\x8f", 4, 0, "\\xdb\\x9d\\xdc\\x8f"},
	        {"\xe0\xa2\x90\xe0\xa2\x91\xe0\xa2\x92", 9, 0,
	         "\\xe0\\xa2\\x90\\xe0\\xa2\\x91\xe0\xa2\x92"},
	        {"\xe0\xa3\xa2\xe1\xa0\x8e", 6, 0,
	         "\\xe0\\xa3\\xa2\\xe1\\xa0\\x8e"}, /* U+08E2, U+180E */
	        {"\xe2\x80\x8a\xe2\x80\x8b", 6, 0,
	         "\xe2\x80\x8a\\xe2\\x80\\x8b"},           /* U+200B ZWSP */
	        {"\xe2\x80\x8d", 3, 0, "\\xe2\\x80\\x8d"}, /* ZWJ */
	        {"\xe2\x81\xa0\xe2\x81\xa4\xe2\x81\xa5", 9, 0,
	         "\\xe2\\x81\\xa0\\xe2\\x81\\xa4\xe2\x81\xa5"}, /* WJ.. */
	        {"\xe2\x81\xaa\xe2\x81\xaf\xe2\x81\xb0", 9, 0,
	         "\\xe2\\x81\\xaa\\xe2\\x81\\xaf\xe2\x81\xb0"},
	        {"\xef\xbb\xbf", 3, 0, "\\xef\\xbb\\xbf"}, /* BOM */
	        {"\xef\xbf\xb9\xef\xbf\xbb\xef\xbf\xbc", 9, 0,
	         "\\xef\\xbf\\xb9\\xef\\xbf\\xbb\xef\xbf\xbc"},
	        {"\xf0\x91\x82\xbd\xf0\x91\x83\x8d", 8, 0,
	         "\\xf0\\x91\\x82\\xbd\\xf0\\x91\\x83\\x8d"},
	        /* U+1343F, new in Unicode 15, and U+13440 after it. */
	        {"\xf0\x93\x90\xbf\xf0\x93\x91\x80", 8, 0,
	         "\\xf0\\x93\\x90\\xbf\xf0\x93\x91\x80"},
	        {"\xf0\x9b\xb2\xa3\xf0\x9d\x85\xba\xf0\x9d\x85\xbb", 12, 0,
	         "\\xf0\\x9b\\xb2\\xa3\\xf0\\x9d\\x85\\xba\xf0\x9d\x85\xbb"},
	        {"\xf3\xa0\x80\x81\xf3\xa0\x80\x82", 8, 0,
	         "\\xf3\\xa0\\x80\\x81\xf3\xa0\x80\x82"}, /* U+E0001 */
	        {"\xf3\xa0\x81\xbf\xf3\xa0\x82\x80", 8, 0,
	         "\\xf3\\xa0\\x81\\xbf\xf3\xa0\x82\x80"}, /* U+E007F */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		size_t n = kg_cli_escape(out, sizeof(out), cases[i].in,
		                         cases[i].len, cases[i].flags);

		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: got '%s', want '%s'", i, out,
			         cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
	}
}

static void test_escape_stops_at_a_whole_unit(void **state)
{
	char out[6];

	(void)state;
	/* "ab" fits, the 4-byte escape of the tab does not. */
	assert_int_equal(kg_cli_escape(out, sizeof(out), "ab\tc", 4, 0), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(kg_cli_escape(out, 1, "abc", 3, 0), 0);
	assert_string_equal(out, "");
	/* A multibyte character is never split. */
	assert_int_equal(kg_cli_escape(out, 4, "ab\xc3\xa9", 4, 0), 2);
	assert_string_equal(out, "ab");
}

static void test_unescape_reads_escapes_back(void **state)
{
	char out[16];
	size_t n, at;

	(void)state;
	assert_true(
	        kg_cli_unescape(out, &n, "a\\x5C\\xe2\\x80\\x8bz", 18, &at));
	assert_int_equal(n, 6);
	assert_memory_equal(out, "a\\\xe2\x80\x8bz", 6);
	/* A backslash must start a whole escape, with a lowercase x. */
	assert_false(kg_cli_unescape(out, &n, "ab\\", 3, &at));
	assert_int_equal(at, 2);
	assert_false(kg_cli_unescape(out, &n, "\\x4", 3, &at));
	assert_int_equal(at, 0);
	assert_false(kg_cli_unescape(out, &n, "a\\X41", 5, &at));
	assert_int_equal(at, 1);
	assert_false(kg_cli_unescape(out, &n, "\\x41\\xg0", 8, &at));
	assert_int_equal(at, 4);
}

/* Bytes that stress the escaper: controls, space, backslash, C1 leads,
 * UTF-8 leads and continuations, 0xff. */
static const uint8_t tricky[] = {0x00, 0x09, 0x0a, 0x1b, 0x20, 0x41, 0x5c,
                                 0x7f, 0x80, 0x85, 0x8b, 0x9b, 0xa0, 0xad,
                                 0xbb, 0xbf, 0xc2, 0xc3, 0xe2, 0xed, 0xef,
                                 0xf0, 0xf3, 0xf4, 0xff};

/* For pseudo-random inputs the escaped text is printable UTF-8 without
 * spaces, and decodes back to the input: no two names print alike. */
static void test_escape_is_printable_and_reversible(void **state)
{
	uint32_t seed = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		char in[24], out[KG_ESC_RATIO * sizeof(in) + 1];
		char back[sizeof(out)];
		size_t len, n, back_len, at;

		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % sizeof(in);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (char)tricky[(seed >> 16) % sizeof(tricky)];
		}
		n = kg_cli_escape(out, sizeof(out), in, len, KG_ESC_SPACE);
		assert_int_equal(n, strlen(out));
		assert_true(kg_text_ok(out, n));
		assert_null(memchr(out, ' ', n));
		for (size_t i = 0; i + 1 < n; i++)
			assert_false((uint8_t)out[i] == 0xc2 &&
			             (uint8_t)out[i + 1] < 0xa0);
		assert_true(kg_cli_unescape(back, &back_len, out, n, &at));
		assert_int_equal(back_len, len);
		assert_memory_equal(back, in, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kicked_lists_users_on_one_line),
	        cmocka_unit_test(test_kicked_json),
	        cmocka_unit_test(test_dry_run_counts_connections_and_processes),
	        cmocka_unit_test(test_counts_of_one_are_singular),
	        cmocka_unit_test(test_dry_run_json_sets_dry_run),
	        cmocka_unit_test(test_need_force_warns_and_names_option),
	        cmocka_unit_test(test_need_force_json_lists_warning),
	        cmocka_unit_test(test_no_match_says_no_users_kicked),
	        cmocka_unit_test(test_refused_pids_follow_the_list),
	        cmocka_unit_test(test_refused_pids_json),
	        cmocka_unit_test(test_blocked_by_scope_is_an_error),
	        cmocka_unit_test(test_error_json),
	        cmocka_unit_test(test_force_denied_does_not_suggest_f),
	        cmocka_unit_test(test_force_denied_json_has_error),
	        cmocka_unit_test(test_hidden_dry_run),
	        cmocka_unit_test(test_hidden_kick),
	        cmocka_unit_test(test_hidden_need_force),
	        cmocka_unit_test(test_confirmed_kick_text),
	        cmocka_unit_test(test_confirmed_kick_json),
	        cmocka_unit_test(test_confirmed_hidden_kick),
	        cmocka_unit_test(
	                test_remained_without_confirmation_is_malformed),
	        cmocka_unit_test(test_who24_separate_has_doveadm_columns),
	        cmocka_unit_test(test_who24_separate_padded),
	        cmocka_unit_test(test_who24_grouped_as_before),
	        cmocka_unit_test(test_who24_json_carries_every_field),
	        cmocka_unit_test(test_who_rows_of_both_kinds_are_malformed),
	        cmocka_unit_test(test_who24_too_many_columns),
	        cmocka_unit_test(test_instances_text),
	        cmocka_unit_test(test_instances_json),
	        cmocka_unit_test(test_instances_refused_json),
	        cmocka_unit_test(test_instance_in_a_who_reply_is_malformed),
	        cmocka_unit_test(test_who_groups_per_user),
	        cmocka_unit_test(test_who_separate_prints_each_row),
	        cmocka_unit_test(test_who_json_lists_sessions),
	        cmocka_unit_test(test_who_empty_listing),
	        cmocka_unit_test(test_who_large_group_lists_each_value_once),
	        cmocka_unit_test(test_who_padded_for_a_terminal),
	        cmocka_unit_test(test_who_padding_counts_printed_width),
	        cmocka_unit_test(test_who_padded_in_batches),
	        cmocka_unit_test(test_hostile_names_are_escaped_in_text),
	        cmocka_unit_test(test_hostile_names_are_valid_json),
	        cmocka_unit_test(test_json_carries_exact_names),
	        cmocka_unit_test(test_json_reference_is_strict),
	        cmocka_unit_test(test_who_json_adds_hex_only_when_needed),
	        cmocka_unit_test(test_format_characters_are_escaped_in_text),
	        cmocka_unit_test(test_hostile_who_rows_are_escaped),
	        cmocka_unit_test(test_record_of_the_other_command_is_rejected),
	        cmocka_unit_test(test_lost_records_are_an_error),
	        cmocka_unit_test(test_who_rows_must_add_up),
	        cmocka_unit_test(test_scoped_reply_has_no_malformed_count),
	        cmocka_unit_test(test_failure_completes_the_json_document),
	        cmocka_unit_test(test_failure_in_text_prints_only_the_error),
	        cmocka_unit_test(test_failure_in_kick_json_is_a_whole_document),
	        cmocka_unit_test(test_escape_table),
	        cmocka_unit_test(test_escape_stops_at_a_whole_unit),
	        cmocka_unit_test(test_unescape_reads_escapes_back),
	        cmocka_unit_test(test_escape_is_printable_and_reversible),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
