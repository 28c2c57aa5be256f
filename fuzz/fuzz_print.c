/* SPDX-License-Identifier: MIT */
/* Properties of the CLI's printer, for any reply it is fed, in text and
 * in JSON:
 * - JSON output is one document that a strict parser accepts
 *   (tests/reference/json_reference.c), and it carries every name the
 *   printer took exactly: a valid UTF-8 name as its string, any other as
 *   its _hex field;
 * - text output is lines of valid UTF-8 without control bytes in which
 *   every backslash starts a \xNN escape; every name, escaped as the
 *   printer escapes it, reads back through the CLI's own un-escaper as
 *   the name's bytes; and the who lines and the kicked list show the
 *   names in that escaped form, in order.
 * Input: a mode byte (command, -j, -1 or -n, padding, raw packets), then
 * either packets, each a u16 length and its bytes, or records from which
 * the broker's reply writer builds packets, ended by an end packet whose
 * counts add up as the broker's do, so that most inputs reach the printer
 * whole. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/escape.h"
#include "cli/print.h"
#include "proto/text.h"
#include "tests/reference/json_reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum mode_bit {
	MODE_JSON = 1 << 2,
	MODE_FLAG = 1 << 3, /* -1 with who, -n with kick */
	MODE_PAD = 1 << 4,
	MODE_RAW = 1 << 5,
};

/* The names the printer took, by where they appear. */
enum kind { K_KICKED, K_WARN, K_USER, K_SERVICE, K_INST, K_PATH, K_COUNT };

struct name {
	char *p;
	size_t len;
};

struct names {
	struct name *v;
	size_t n;
};

static struct names seen[K_COUNT];
static struct kg_printer *printer;

static void keep(enum kind k, const char *p, size_t len)
{
	struct names *l = &seen[k];
	struct name *v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (v == NULL)
		abort();
	l->v = v;
	v[l->n].p = malloc(len > 0 ? len : 1);
	if (v[l->n].p == NULL)
		abort();
	memcpy(v[l->n].p, p, len);
	v[l->n++].len = len;
}

static void forget(void)
{
	for (int k = 0; k < K_COUNT; k++) {
		for (size_t i = 0; i < seen[k].n; i++)
			free(seen[k].v[i].p);
		free(seen[k].v);
		seen[k].v = NULL;
		seen[k].n = 0;
	}
}

/* ------------------------------------------------------ tee handler */

/* Each callback passes the record to the printer and keeps its names
 * when the printer took them. */
static int tee_user(void *ctx, enum kg_rec_type type, const char *name,
                    size_t len)
{
	int rc = kg_printer_handler.user(ctx, type, name, len);

	if (rc == 0)
		keep(type == KG_REC_KICKED ? K_KICKED : K_WARN, name, len);
	return rc;
}

static int tee_who(void *ctx, const struct kg_who_row *row)
{
	int rc = kg_printer_handler.who(ctx, row);

	if (rc == 0) {
		keep(K_USER, row->user, row->user_len);
		keep(K_SERVICE, row->service, row->service_len);
	}
	return rc;
}

static int tee_instance(void *ctx, const struct kg_instance_row *row)
{
	int rc = kg_printer_handler.instance(ctx, row);

	if (rc == 0) {
		keep(K_INST, row->name, row->name_len);
		keep(K_PATH, row->path, row->path_len);
	}
	return rc;
}

static int tee_pid(void *ctx, uint32_t pid)
{
	return kg_printer_handler.pid(ctx, pid);
}

static int tee_refused(void *ctx, uint32_t pid, uint8_t reason)
{
	return kg_printer_handler.refused(ctx, pid, reason);
}

static int tee_end(void *ctx, const struct kg_reply_end *end)
{
	return kg_printer_handler.end(ctx, end);
}

static const struct kg_reply_handler tee = {
        tee_user, tee_pid, tee_refused, tee_who, tee_instance, tee_end,
};

/* ------------------------------------------------------------ feeding */

struct feed {
	bool ended; /* the end packet, or a failure, finished the output */
};

static struct feed fed;

/* Decodes one packet into the printer, as the CLI does. */
static int feed_packet(void *ctx, const uint8_t *pkt, size_t len)
{
	bool is_end = false;
	int cb = 0;

	(void)ctx;
	if (fed.ended)
		return 0;
	if (kg_reply_decode(pkt, len, &tee, printer, &is_end, &cb) !=
	    KG_WIRE_OK) {
		kg_printer_fail(printer, KG_EXIT_SOFTWARE, "malformed reply");
		fed.ended = true;
	}
	fed.ended = fed.ended || is_end || cb != 0;
	return 0;
}

static void feed_raw(const uint8_t *d, size_t n)
{
	while (n >= 2 && !fed.ended) {
		size_t len = (size_t)d[0] << 8 | d[1];

		if (len > n - 2)
			len = n - 2;
		feed_packet(NULL, d + 2, len);
		d += 2 + len;
		n -= 2 + len;
	}
}

/* Takes a byte-counted field from the input; false when it runs out. */
static bool take(const uint8_t **d, size_t *n, const char **p, size_t *len)
{
	if (*n < 1 || (size_t)(*d)[0] > *n - 1)
		return false;
	*len = (*d)[0];
	*p = (const char *)*d + 1;
	*d += 1 + *len;
	*n -= 1 + *len;
	return true;
}

/* What the end packet counts: the connections and processes of the who
 * rows, or the processes signalled, that the writer took. */
struct tally {
	uint32_t conns;
	uint32_t pids;
};

/* One record from the input through the writer; false at the end. A
 * record the writer refuses is left out, and not counted. Each record has
 * a pid of its own, so every row or pid taken is one more process. */
static bool write_record(struct kg_reply_writer *w, const uint8_t **d,
                         size_t *n, uint32_t pid, struct tally *t)
{
	struct kg_who_row row = {.pid = pid, .conns = 1 + pid % 3};
	struct kg_instance_row inst = {.name = "i", .name_len = 1};
	uint8_t type;

	if (*n < 1)
		return false;
	type = (*d)[0] % 5;
	(*d)++;
	(*n)--;
	switch (type) {
	case 0:
	case 1:
		if (!take(d, n, &row.user, &row.user_len))
			return false;
		kg_rw_user(w, type == 0 ? KG_REC_KICKED : KG_REC_WARN, row.user,
		           row.user_len);
		return true;
	case 2:
		if (!take(d, n, &row.service, &row.service_len) ||
		    !take(d, n, &row.user, &row.user_len))
			return false;
		if (kg_rw_who(w, &row) == 0) {
			t->conns += row.conns;
			t->pids++;
		}
		return true;
	case 3:
		if (kg_rw_pid(w, pid) == 0) {
			t->conns++;
			t->pids++;
		}
		return true;
	}
	if (!take(d, n, &inst.path, &inst.path_len))
		return false;
	kg_rw_instance(w, &inst);
	return true;
}

static void feed_records(const uint8_t *d, size_t n)
{
	static struct kg_reply_writer w;
	struct kg_reply_end end = {.status = KG_EXIT_OK};
	struct tally t = {0, 0};
	uint32_t pid = 1;

	kg_rw_init(&w, feed_packet, NULL);
	while (write_record(&w, &d, &n, pid, &t))
		pid++;
	end.conns = t.conns;
	end.pids = t.pids;
	if (kg_rw_end(&w, &end) != 0)
		abort();
}

/* ------------------------------------------------------------- checks */

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int hex_digit(char c)
{
	static const char digits[] = "0123456789abcdef";
	const char *at = c != '\0' ? strchr(digits, c) : NULL;

	return at != NULL ? (int)(at - digits) : -1;
}

/* hex is a string of two lowercase hexadecimal digits per byte of nm. */
static bool hex_is(const struct json *hex, const struct name *nm)
{
	if (hex == NULL || hex->type != JSON_STRING || hex->len != 2 * nm->len)
		return false;
	for (size_t i = 0; i < nm->len; i++) {
		int hi = hex_digit(hex->str[2 * i]);
		int lo = hex_digit(hex->str[2 * i + 1]);

		if (hi < 0 || lo < 0 || (uint8_t)nm->p[i] != (hi << 4 | lo))
			return false;
	}
	return true;
}

/* A name in JSON: its string when that can carry it, else its hex. */
static void check_name(const struct json *str, const struct json *hex,
                       const struct name *nm)
{
	if (str == NULL || str->type != JSON_STRING)
		abort();
	if (kg_json_exact(nm->p, nm->len)
	            ? !same(str->str, str->len, nm->p, nm->len)
	            : !hex_is(hex, nm))
		abort();
}

/* A list of names: a _hex list beside it exactly when one is needed. */
static void check_list(const struct json *doc, const char *key,
                       const char *hex_key, const struct names *l)
{
	const struct json *arr = json_get(doc, key);
	const struct json *hex = json_get(doc, hex_key);
	bool need_hex = false;

	if (arr == NULL || arr->type != JSON_ARRAY || arr->n != l->n ||
	    (hex != NULL && (hex->type != JSON_ARRAY || hex->n != l->n)))
		abort();
	for (size_t i = 0; i < l->n; i++) {
		need_hex = need_hex || !kg_json_exact(l->v[i].p, l->v[i].len);
		check_name(arr->items[i], hex != NULL ? hex->items[i] : NULL,
		           &l->v[i]);
		if (hex != NULL && !hex_is(hex->items[i], &l->v[i]))
			abort();
	}
	if (need_hex != (hex != NULL))
		abort();
}

/* A field of a row, with a _hex field beside it only when needed. */
static void check_field(const struct json *row, const char *key,
                        const char *hex_key, const struct name *nm)
{
	const struct json *hex = json_get(row, hex_key);

	if ((hex != NULL) == kg_json_exact(nm->p, nm->len))
		abort();
	check_name(json_get(row, key), hex, nm);
}

static void check_rows(const struct json *doc, const char *key,
                       const char *const fields[4], enum kind a, enum kind b)
{
	const struct json *arr = json_get(doc, key);

	if (arr == NULL || arr->type != JSON_ARRAY || arr->n != seen[a].n)
		abort();
	for (size_t i = 0; i < arr->n; i++) {
		check_field(arr->items[i], fields[0], fields[1], &seen[a].v[i]);
		check_field(arr->items[i], fields[2], fields[3], &seen[b].v[i]);
	}
}

static void check_json(const char *out, size_t len, uint8_t op)
{
	static const char *const who[] = {"user", "user_hex", "service",
	                                  "service_hex"};
	static const char *const inst[] = {"name", "name_hex", "anvil",
	                                   "anvil_hex"};
	struct json *doc = json_parse(out, len);

	if (doc == NULL || doc->type != JSON_OBJECT)
		abort();
	if (op == KG_OP_KICK) {
		check_list(doc, "kicked", "kicked_hex", &seen[K_KICKED]);
		check_list(doc, "warning", "warning_hex", &seen[K_WARN]);
	} else if (op == KG_OP_WHO) {
		check_rows(doc, "sessions", who, K_USER, K_SERVICE);
	} else {
		check_rows(doc, "instances", inst, K_INST, K_PATH);
	}
	json_free(doc);
}

/* Escapes a name as the printer does and reads it back. */
static void check_round_trip(const struct name *nm, char *esc, char *back)
{
	size_t n = kg_cli_escape(esc, KG_ESC_RATIO * nm->len + 1, nm->p,
	                         nm->len, KG_ESC_SPACE);
	size_t back_len, at;

	if (memchr(esc, ' ', n) != NULL ||
	    !kg_cli_unescape(back, &back_len, esc, n, &at) ||
	    !same(back, back_len, nm->p, nm->len))
		abort();
}

/* Every line: valid UTF-8, no control byte, only whole escapes. */
static void check_lines(char *text, size_t len, char *scratch)
{
	size_t n, at;

	for (char *line = text, *nl; line < text + len; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(text + len - line));
		if (nl == NULL)
			abort();
		if (!kg_text_ok(line, (size_t)(nl - line)) ||
		    !kg_cli_unescape(scratch, &n, line, (size_t)(nl - line),
		                     &at))
			abort();
	}
}

/* s starts with nm escaped, then a space or the line's end: returns where
 * that is, or NULL. */
static const char *field_is(const char *s, const struct name *nm, char *esc)
{
	size_t n = kg_cli_escape(esc, KG_ESC_RATIO * nm->len + 1, nm->p,
	                         nm->len, KG_ESC_SPACE);

	if (strncmp(s, esc, n) != 0 || (s[n] != '\0' && !strchr(" \n", s[n])))
		return NULL;
	return s + n;
}

/* Past the rows of user i - 1 that a grouped listing shows as one line. */
static size_t next_group(const struct names *u, size_t i, bool separate)
{
	while (!separate && i > 0 && i < u->n &&
	       same(u->v[i].p, u->v[i].len, u->v[i - 1].p, u->v[i - 1].len))
		i++;
	return i;
}

/* Each who line after the header starts with the next user (a group's
 * user once) and, with -1, its service after the padding; the last
 * lines may be missing when the reply failed, and only then. */
static void check_who_text(char *out, bool separate, bool complete, char *esc)
{
	const struct names *u = &seen[K_USER];
	char *line = strchr(out, '\n');
	const char *rest;
	size_t i = 0;

	for (char *nl; line != NULL && (nl = strchr(++line, '\n')) != NULL;
	     line = nl, i++) {
		*nl = '\0';
		i = next_group(u, i, separate);
		rest = i < u->n ? field_is(line, &u->v[i], esc) : NULL;
		if (rest != NULL && separate)
			rest = field_is(rest + strspn(rest, " "),
			                &seen[K_SERVICE].v[i], esc);
		if (rest == NULL)
			abort();
	}
	if (complete && next_group(u, i, separate) != u->n)
		abort();
}

/* The kicked list, when printed, is the kicked names in order, each
 * escaped, separated by single spaces. */
static void check_kick_text(char *out, char *esc)
{
	static const char head[] = "the following users:\n";
	const char *line = strstr(out, head);

	if (line == NULL)
		return;
	line += sizeof(head) - 1;
	for (size_t i = 0; i < seen[K_KICKED].n; i++) {
		if (i > 0 && *line++ != ' ')
			abort();
		line = field_is(line, &seen[K_KICKED].v[i], esc);
		if (line == NULL)
			abort();
	}
	if (*line != '\n')
		abort();
}

static void check_text(char *out, size_t out_len, char *err, size_t err_len,
                       uint8_t op, bool separate, bool complete)
{
	size_t longest = out_len > err_len ? out_len : err_len;
	char *esc, *back;

	for (int k = 0; k < K_COUNT; k++)
		for (size_t i = 0; i < seen[k].n; i++)
			if (seen[k].v[i].len > longest)
				longest = seen[k].v[i].len;
	esc = malloc(KG_ESC_RATIO * longest + 1);
	back = malloc(KG_ESC_RATIO * longest + 1);
	if (esc == NULL || back == NULL)
		abort();
	for (int k = 0; k < K_COUNT; k++)
		for (size_t i = 0; i < seen[k].n; i++)
			check_round_trip(&seen[k].v[i], esc, back);
	check_lines(out, out_len, back);
	check_lines(err, err_len, back);
	if (op == KG_OP_WHO)
		check_who_text(out, separate, complete, esc);
	else if (op == KG_OP_KICK)
		check_kick_text(out, esc);
	free(esc);
	free(back);
}

/* --------------------------------------------------------------- main */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t ops[] = {KG_OP_KICK, KG_OP_KICK, KG_OP_WHO,
	                              KG_OP_INSTANCES};
	char *out = NULL, *err = NULL;
	size_t out_len = 0, err_len = 0;
	FILE *fo, *fe;
	uint8_t mode, op, flags;
	bool complete;

	if (size < 1)
		return 0;
	mode = data[0];
	op = ops[mode & 3];
	flags = !(mode & MODE_FLAG) ? 0
	        : op == KG_OP_WHO   ? KG_REQ_SEPARATE
	        : op == KG_OP_KICK  ? KG_REQ_DRY_RUN
	                            : 0;
	fo = open_memstream(&out, &out_len);
	fe = open_memstream(&err, &err_len);
	printer = kg_printer_new(fo, fe, op, flags, mode & MODE_JSON);
	if (fo == NULL || fe == NULL || printer == NULL)
		abort();
	if ((mode & MODE_PAD) && kg_printer_pad(printer) < 0)
		abort();
	fed.ended = false;
	if (mode & MODE_RAW)
		feed_raw(data + 1, size - 1);
	else
		feed_records(data + 1, size - 1);
	if (!fed.ended)
		kg_printer_fail(printer, KG_EXIT_UNAVAILABLE,
		                "broker closed the connection");
	complete = kg_printer_status(printer) == KG_EXIT_OK;
	kg_printer_free(printer);
	if (fclose(fo) != 0 || fclose(fe) != 0)
		abort();
	if (mode & MODE_JSON)
		check_json(out, out_len, op);
	else
		check_text(out, out_len, err, err_len, op,
		           flags & KG_REQ_SEPARATE, complete);
	free(out);
	free(err);
	forget();
	return 0;
}
