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
 *   the name's bytes; and the who lines and the kicked and still
 *   connected lists show the names in that escaped form, in order;
 * - Dovecot 2.4 rows: JSON carries each one's GUID, destination and
 *   exactly its fields; unpadded who -1 text has the same number of
 *   single-space separated columns on every line, each field's value,
 *   escaped, under its name and every other field column blank.
 * Input: a mode byte (command, -j, -1 or -n, padding, raw packets, a
 * confirmed kick), then either packets, each a u16 length and its bytes,
 * or records from which the broker's reply writer builds packets, ended by
 * an end packet whose counts add up as the broker's do, so that most
 * inputs reach the printer whole. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/escape.h"
#include "cli/print.h"
#include "cli/who24.h"
#include "proto/addr.h"
#include "proto/text.h"
#include "tests/reference/json_reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The command, by the mode's low two bits. */
static const uint8_t ops[] = {KG_OP_KICK, KG_OP_KICK, KG_OP_WHO,
                              KG_OP_INSTANCES};

enum mode_bit {
	MODE_JSON = 1 << 2,
	MODE_FLAG = 1 << 3, /* -1 with who, -n with kick */
	MODE_PAD = 1 << 4,
	MODE_RAW = 1 << 5,
	MODE_CONFIRM = 1 << 6, /* the end packet says anvil did the kick */
};

/* The names the printer took, by where they appear. */
enum kind {
	K_KICKED,
	K_WARN,
	K_REMAINED,
	K_USER,
	K_SERVICE,
	K_INST,
	K_PATH,
	K_COUNT
};

struct name {
	char *p;
	size_t len;
};

struct names {
	struct name *v;
	size_t n;
};

/* What a who row the printer took carried beyond its user and service:
 * one per entry of seen[K_USER]. */
struct row24 {
	bool v2;
	uint8_t guid[16];
	struct kg_addr dest;
	size_t n;
	struct name name[KG_FIELDS_MAX];
	struct name value[KG_FIELDS_MAX];
};

static struct names seen[K_COUNT];
static struct row24 *rows;
static struct kg_printer *printer;

static struct name copy(const char *p, size_t len)
{
	struct name nm = {malloc(len > 0 ? len : 1), len};

	if (nm.p == NULL)
		abort();
	memcpy(nm.p, p, len);
	return nm;
}

static void keep(enum kind k, const char *p, size_t len)
{
	struct names *l = &seen[k];
	struct name *v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (v == NULL)
		abort();
	l->v = v;
	v[l->n++] = copy(p, len);
}

/* Called before the row's user is kept: seen[K_USER].n is its index. */
static void keep_row24(const struct kg_who_row *row)
{
	size_t i = seen[K_USER].n;
	struct row24 *r = realloc(rows, (i + 1) * sizeof(*r));

	if (r == NULL)
		abort();
	rows = r;
	r[i].v2 = row->has_guid;
	memcpy(r[i].guid, row->guid, sizeof(r[i].guid));
	r[i].dest = row->dest;
	r[i].n = row->n_fields;
	for (size_t f = 0; f < row->n_fields; f++) {
		r[i].name[f] =
		        copy(row->fields[f].name, row->fields[f].name_len);
		r[i].value[f] =
		        copy(row->fields[f].value, row->fields[f].value_len);
	}
}

static void forget(void)
{
	for (size_t i = 0; i < seen[K_USER].n; i++)
		for (size_t f = 0; f < rows[i].n; f++) {
			free(rows[i].name[f].p);
			free(rows[i].value[f].p);
		}
	free(rows);
	rows = NULL;
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
		keep(type == KG_REC_KICKED ? K_KICKED
		     : type == KG_REC_WARN ? K_WARN
		                           : K_REMAINED,
		     name, len);
	return rc;
}

static int tee_who(void *ctx, const struct kg_who_row *row)
{
	int rc = kg_printer_handler.who(ctx, row);

	if (rc == 0) {
		keep_row24(row);
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
 * rows, or the processes signalled, that the writer took; and whether it
 * took a user still connected. */
struct tally {
	uint32_t conns;
	uint32_t pids;
	bool remained;
};

/* A Dovecot 2.4 row: a service and a user, then a count of fields and
 * each one's name and value; its pid picks the GUID and destination,
 * among them an IPv4-mapped one, which the writer must refuse. */
static bool take_row24(const uint8_t **d, size_t *n, struct kg_who_row *row,
                       struct kg_field *f)
{
	static const uint8_t dest[3][16] = {{10, 0, 0, 1},
	                                    {0x20, 0x01, 0x0d, 0xb8, [15] = 1},
	                                    {[10] = 0xff, [11] = 0xff, 1}};
	static const uint8_t family[3] = {KG_AF_INET, KG_AF_INET6, KG_AF_INET6};

	if (!take(d, n, &row->service, &row->service_len) ||
	    !take(d, n, &row->user, &row->user_len) || *n < 1)
		return false;
	row->n_fields = (*d)[0] % (KG_FIELDS_MAX + 2);
	(*d)++;
	(*n)--;
	for (size_t i = 0; i < row->n_fields; i++)
		if (!take(d, n, &f[i].name, &f[i].name_len) ||
		    !take(d, n, &f[i].value, &f[i].value_len))
			return false;
	row->has_guid = true;
	row->conns = 1;
	memset(row->guid, (int)row->pid, sizeof(row->guid));
	row->fields = f;
	if (row->pid % 4 < 3)
		memcpy(row->dest.bytes, dest[row->pid % 4], 16);
	row->dest.family = row->pid % 4 < 3 ? family[row->pid % 4] : KG_AF_NONE;
	return true;
}

/* One record from the input through the writer; false at the end. A
 * record the writer refuses is left out, and not counted. Each record has
 * a pid of its own, so every row or pid taken is one more process. */
static bool write_record(struct kg_reply_writer *w, const uint8_t **d,
                         size_t *n, uint32_t pid, struct tally *t)
{
	static const enum kg_rec_type users[] = {KG_REC_KICKED, KG_REC_WARN,
	                                         KG_REC_REMAINED};
	struct kg_who_row row = {.pid = pid, .conns = 1 + pid % 3};
	struct kg_instance_row inst = {.name = "i", .name_len = 1};
	struct kg_field f[KG_FIELDS_MAX + 1];
	uint8_t type;

	if (*n < 1)
		return false;
	type = (*d)[0] % 7;
	(*d)++;
	(*n)--;
	switch (type) {
	case 0:
	case 1:
	case 6:
		if (!take(d, n, &row.user, &row.user_len))
			return false;
		if (kg_rw_user(w, users[type % 5], row.user, row.user_len) == 0)
			t->remained = t->remained || type == 6;
		return true;
	case 2:
	case 5:
		if (type == 2 ? !take(d, n, &row.service, &row.service_len) ||
		                        !take(d, n, &row.user, &row.user_len)
		              : !take_row24(d, n, &row, f))
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

/* With confirm, the end says anvil did the kick, and that some users
 * stayed when a record said so; without, such records are malformed. */
static void feed_records(const uint8_t *d, size_t n, bool confirm)
{
	static struct kg_reply_writer w;
	struct kg_reply_end end = {.status = KG_EXIT_OK};
	struct tally t = {0, 0, false};
	uint32_t pid = 1;

	kg_rw_init(&w, feed_packet, NULL);
	while (write_record(&w, &d, &n, pid, &t))
		pid++;
	end.conns = t.conns;
	end.pids = t.pids;
	if (confirm) {
		end.flags = KG_END_CONFIRMED;
		end.status = t.remained ? KG_EXIT_PARTIAL : KG_EXIT_OK;
	}
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

/* A row's fields object holds exactly its fields. */
static void check_fields(const struct json *obj, const struct row24 *r)
{
	if (obj == NULL || obj->type != JSON_OBJECT || obj->n != r->n)
		abort();
	for (size_t f = 0; f < r->n; f++) {
		const struct json *v = obj->items[f];

		if (!same(obj->keys[f], obj->key_lens[f], r->name[f].p,
		          r->name[f].len) ||
		    v->type != JSON_STRING ||
		    !same(v->str, v->len, r->value[f].p, r->value[f].len))
			abort();
	}
}

/* Dovecot 2.4 sessions carry their GUID, destination and fields; others
 * none of them. */
static void check_rows24(const struct json *doc)
{
	const struct json *arr = json_get(doc, "sessions");
	char dest[KG_NET_STRLEN];

	for (size_t i = 0; i < arr->n; i++) {
		const struct json *row = arr->items[i];
		const struct json *guid = json_get(row, "guid");
		const struct json *d = json_get(row, "dest_ip");
		struct name g = {(char *)rows[i].guid, sizeof(rows[i].guid)};

		if (!rows[i].v2) {
			if (guid != NULL || d != NULL ||
			    json_get(row, "fields") != NULL)
				abort();
			continue;
		}
		kg_addr_format(&rows[i].dest, dest);
		if (!hex_is(guid, &g) || d == NULL ||
		    (dest[0] == '\0' ? d->type != JSON_NULL
		                     : d->type != JSON_STRING ||
		                               !same(d->str, d->len, dest,
		                                     strlen(dest))))
			abort();
		check_fields(json_get(row, "fields"), &rows[i]);
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
		/* Only a confirmed kick has the list, and then all of it. */
		if (json_get(doc, "confirmed") != NULL)
			check_list(doc, "remained", "remained_hex",
			           &seen[K_REMAINED]);
		else if (json_get(doc, "remained") != NULL)
			abort();
	} else if (op == KG_OP_WHO) {
		check_rows(doc, "sessions", who, K_USER, K_SERVICE);
		check_rows24(doc);
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

/* A list after its head, when printed, is the names of kind k in order,
 * each escaped, separated by single spaces. */
static void check_kick_list(char *out, const char *head, enum kind k, char *esc)
{
	const char *line = strstr(out, head);

	if (line == NULL)
		return;
	line += strlen(head);
	for (size_t i = 0; i < seen[k].n; i++) {
		if (i > 0 && *line++ != ' ')
			abort();
		line = field_is(line, &seen[k].v[i], esc);
		if (line == NULL)
			abort();
	}
	if (*line != '\n')
		abort();
}

static void check_kick_text(char *out, char *esc)
{
	check_kick_list(out, "the following users:\n", K_KICKED, esc);
	check_kick_list(out, "still connected after the kick:\n", K_REMAINED,
	                esc);
}

/* The next space-separated column of *line, cut out in place. */
static char *next_column(char **line)
{
	char *col = *line, *sp = strchr(col, ' ');

	if (sp == NULL) {
		*line = col + strlen(col);
	} else {
		*sp = '\0';
		*line = sp + 1;
	}
	return col;
}

/* One line of Dovecot 2.4's unpadded who -1: past the five fixed columns,
 * each field column holds the row's value for its header's name, escaped,
 * or nothing. */
static void check_line24(char *line, char **names, size_t n_cols,
                         const struct row24 *r, char *esc)
{
	for (size_t c = 0; c < 5; c++)
		next_column(&line);
	for (size_t c = 0; c < n_cols; c++) {
		const char *col = next_column(&line);
		const struct name *want = NULL;

		for (size_t f = 0; f < r->n; f++)
			if (strlen(names[c]) == r->name[f].len &&
			    memcmp(names[c], r->name[f].p, r->name[f].len) == 0)
				want = &r->value[f];
		if (want == NULL
		            ? col[0] != '\0'
		            : field_is(col, want, esc) != col + strlen(col))
			abort();
	}
	if (*line != '\0')
		abort();
}

/* Every line has the header's columns, and each row's fields are under
 * their names; a line for each row. out is cut up in place. */
static void check_who24_text(char *out, char *esc)
{
	char *names[KG_WHO24_COLS_MAX + 5], *line = out,
	                                    *nl = strchr(out, '\n');
	size_t n_cols = 0, i = 0;

	if (nl == NULL)
		abort();
	*nl = '\0';
	while (*line != '\0') {
		if (n_cols == sizeof(names) / sizeof(names[0]))
			abort();
		names[n_cols++] = next_column(&line);
	}
	if (n_cols < 5 || strcmp(names[4], "dest_ip") != 0)
		abort();
	for (line = nl + 1; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		if (i >= seen[K_USER].n)
			abort();
		check_line24(line, names + 5, n_cols - 5, &rows[i++], esc);
	}
	if (i != seen[K_USER].n || *line != '\0')
		abort();
}

static void check_text(char *out, size_t out_len, char *err, size_t err_len,
                       uint8_t mode, bool complete)
{
	uint8_t op = ops[mode & 3];
	bool separate = op == KG_OP_WHO && (mode & MODE_FLAG);
	bool v2 = seen[K_USER].n > 0 && rows[0].v2;
	size_t longest = out_len > err_len ? out_len : err_len;

	if (longest < KG_FIELD_VALUE_MAX)
		longest = KG_FIELD_VALUE_MAX;
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
	if (op == KG_OP_KICK)
		check_kick_text(out, esc);
	if (op == KG_OP_WHO && separate && v2 && !(mode & MODE_PAD))
		check_who24_text(out, esc);
	else if (op == KG_OP_WHO)
		check_who_text(out, separate, complete, esc);
	free(esc);
	free(back);
}

/* --------------------------------------------------------------- main */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
		feed_records(data + 1, size - 1, mode & MODE_CONFIRM);
	if (!fed.ended)
		kg_printer_fail(printer, KG_EXIT_UNAVAILABLE,
		                "broker closed the connection");
	complete = kg_printer_status(printer) == KG_EXIT_OK ||
	           kg_printer_status(printer) == KG_EXIT_PARTIAL;
	kg_printer_free(printer);
	if (fclose(fo) != 0 || fclose(fe) != 0)
		abort();
	if (mode & MODE_JSON)
		check_json(out, out_len, op);
	else
		check_text(out, out_len, err, err_len, mode, complete);
	free(out);
	free(err);
	forget();
	return 0;
}
