/* SPDX-License-Identifier: MIT */
/* Reply printing for the kickgate CLI. A kick reply is held until its end
 * packet, whose verdict decides the wording; who rows stream out as they
 * arrive, the default table holding only the current user's group (rows
 * arrive sorted by user), except Dovecot 2.4's rows with -1, whose
 * columns the last row settles (cli/who24.h). */
#include "cli/print.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "cli/escape.h"
#include "cli/hold.h"
#include "cli/who24.h"

/* A uniq set keeps its slot table across groups up to this size. */
#define UNIQ_KEEP_SLOTS 64
/* A uniq set of up to this many entries has no slot table. */
#define UNIQ_LINEAR 8
/* A held refusal: u32 pid, u8 reason. */
#define REFUSED_SIZE 5
/* The printer's own output buffer for who text. */
#define OUT_CHUNK 8192

/* Longest decimal of a uint64_t, with its NUL. */
#define DEC_MAX 21

/* Writes v in decimal to buf, NUL-terminated; returns the length. A who
 * listing prints millions of numbers, more cheaply so than by printf. */
static size_t fmt_dec(char buf[DEC_MAX], uint64_t v)
{
	char tmp[DEC_MAX];
	size_t n = 0, len;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	len = n;
	for (size_t i = 0; i < len; i++)
		buf[i] = tmp[--n];
	buf[len] = '\0';
	return len;
}

/* The noun for a count of n: "1 line", "2 lines", "0 lines". */
static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* A name as "key":text and, when the text cannot carry it exactly (it is
 * not valid UTF-8), its bytes in hexadecimal as "key_hex". */
static void json_name(FILE *f, const char *key, const char *s, size_t len)
{
	fprintf(f, "\"%s\":", key);
	kg_json_str(f, s, len);
	if (!kg_json_exact(s, len)) {
		fprintf(f, ",\"%s_hex\":", key);
		kg_json_hex(f, s, len);
	}
}

/* A JSON string, or null for an empty one. */
static void json_str_or_null(FILE *f, const char *s, size_t len)
{
	if (len == 0)
		fputs("null", f);
	else
		kg_json_str(f, s, len);
}

/* ------------------------------------------------------------ uniq set */

/* Distinct short strings in the order first seen: one column of a who
 * group. Up to UNIQ_LINEAR entries, which is what most groups hold, a set
 * is searched linearly; past that through a slot table, open addressing
 * at most half full, so a probe always ends. */
struct uniq {
	struct kg_hold text; /* per entry: u8 length, bytes */
	uint32_t *slot;      /* 0: empty, else 1 + offset of an entry */
	size_t nslot;        /* 0 or a power of two */
	size_t count;
};

static size_t str_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static uint32_t *uniq_find(const struct uniq *u, const char *s, size_t len)
{
	size_t mask = u->nslot - 1;
	size_t i = str_hash(s, len) & mask;

	for (size_t probe = 0; probe < u->nslot; probe++) {
		uint32_t *slot = &u->slot[i];
		const uint8_t *e;

		if (*slot == 0)
			return slot;
		e = u->text.p + *slot - 1;
		if (e[0] == len && memcmp(e + 1, s, len) == 0)
			return slot;
		i = (i + 1) & mask;
	}
	return NULL;
}

static int uniq_grow(struct uniq *u)
{
	size_t nslot = u->nslot > 0 ? u->nslot * 2 : 16;
	uint32_t *old = u->slot;

	u->slot = calloc(nslot, sizeof(*u->slot));
	if (u->slot == NULL) {
		u->slot = old;
		return -1;
	}
	free(old);
	u->nslot = nslot;
	for (size_t off = 0; off < u->text.len; off += 1 + u->text.p[off])
		*uniq_find(u, (const char *)u->text.p + off + 1,
		           u->text.p[off]) = (uint32_t)off + 1;
	return 0;
}

static bool uniq_scan(const struct uniq *u, const char *s, size_t len)
{
	for (size_t off = 0; off < u->text.len; off += 1 + u->text.p[off])
		if (u->text.p[off] == len &&
		    memcmp(u->text.p + off + 1, s, len) == 0)
			return true;
	return false;
}

static int uniq_add(struct uniq *u, const char *s, size_t len)
{
	size_t off = u->text.len;
	uint32_t *slot = NULL;
	uint8_t *entry;

	if (len > UINT8_MAX)
		return -1;
	if (u->count < UNIQ_LINEAR) {
		if (uniq_scan(u, s, len))
			return 0;
	} else {
		while ((u->count + 1) * 2 > u->nslot)
			if (uniq_grow(u) < 0)
				return -1;
		slot = uniq_find(u, s, len);
		if (*slot != 0)
			return 0;
	}
	entry = kg_hold_room(&u->text, 1 + len);
	if (entry == NULL)
		return -1;
	entry[0] = (uint8_t)len;
	memcpy(entry + 1, s, len);
	u->text.len += 1 + len;
	if (slot != NULL)
		*slot = (uint32_t)off + 1;
	u->count++;
	return 0;
}

/* A large table is dropped rather than cleared, so that one big group
 * does not make every later group pay for clearing it. */
static void uniq_clear(struct uniq *u)
{
	u->text.len = 0;
	u->count = 0;
	if (u->nslot > UNIQ_KEEP_SLOTS) {
		free(u->slot);
		u->slot = NULL;
		u->nslot = 0;
	} else if (u->nslot > 0) {
		memset(u->slot, 0, u->nslot * sizeof(*u->slot));
	}
}

static void uniq_free(struct uniq *u)
{
	free(u->text.p);
	free(u->slot);
}

/* --------------------------------------------------------------- table */

/* Who text for a person at a terminal: fields padded to their column's
 * width, as doveadm pads its tables. Rows are held and printed in
 * batches; a column never narrows from one batch to the next. */
#define TABLE_COLS (5 + KG_WHO24_COLS_MAX)
/* A batch is printed once it holds this much: columns line up over many
 * screens, and a listing of millions of rows is not held whole. */
#define TABLE_BATCH ((size_t)256 << 10)
/* A held cell: u32 length, u32 width, then the bytes. */
#define CELL_HEAD 8

struct table {
	struct kg_hold rows;    /* per row: u8 cell count, then the cells */
	struct kg_hold cur;     /* the row being written */
	size_t cut[TABLE_COLS]; /* where each finished cell of cur ends */
	size_t ncut;
	size_t width[TABLE_COLS];
	unsigned right; /* bit i: column i (< 32) holds numbers, aligned
	                   right */
	bool failed;    /* a row could not be held */
};

/* Terminal columns of the UTF-8 character at s: wcwidth's answer in a
 * UTF-8 locale, else 1 (the escaped text holds only printable
 * characters, so only the width is in question). */
static size_t char_columns(const unsigned char *s, size_t n)
{
	static const unsigned char lead_mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
	wchar_t wc = s[0] & lead_mask[n];
	int w;

	for (size_t i = 1; i < n; i++)
		wc = (wc << 6) | (s[i] & 0x3f);
	w = wcwidth(wc);
	return w < 0 ? 1 : (size_t)w;
}

/* Terminal columns of escaped text: an escape counts as the four
 * characters it prints. */
static size_t text_columns(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t cols = 0, n;

	for (size_t i = 0; i < len; i += n) {
		n = u[i] < 0x80 ? 1 : u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : 2;
		if (n > len - i)
			n = len - i;
		cols += n == 1 ? 1 : char_columns(u + i, n);
	}
	return cols;
}

static void table_put(struct table *t, const void *s, size_t n)
{
	if (!t->failed && kg_hold_add(&t->cur, s, n) < 0)
		t->failed = true;
}

static void table_cut(struct table *t)
{
	if (t->ncut < TABLE_COLS - 1)
		t->cut[t->ncut++] = t->cur.len;
}

/* Moves the row being written to the held rows, widening the columns. */
static void table_hold_row(struct table *t)
{
	size_t ncell = t->ncut + 1, start = 0;
	uint8_t *at;

	t->cut[t->ncut] = t->cur.len;
	at = t->failed ? NULL
	               : kg_hold_room(&t->rows,
	                              1 + ncell * CELL_HEAD + t->cur.len);
	if (at == NULL) {
		t->failed = true;
		return;
	}
	*at++ = (uint8_t)ncell;
	for (size_t i = 0; i < ncell; i++) {
		uint32_t len = (uint32_t)(t->cut[i] - start);
		uint32_t w = (uint32_t)text_columns(
		        (const char *)t->cur.p + start, len);

		memcpy(at, &len, 4);
		memcpy(at + 4, &w, 4);
		memcpy(at + CELL_HEAD, t->cur.p + start, len);
		at += CELL_HEAD + len;
		if (w > t->width[i])
			t->width[i] = w;
		start = t->cut[i];
	}
	t->rows.len += 1 + ncell * CELL_HEAD + t->cur.len;
	t->cur.len = 0;
	t->ncut = 0;
}

static void table_free(struct table *t)
{
	if (t == NULL)
		return;
	free(t->rows.p);
	free(t->cur.p);
	free(t);
}

/* ------------------------------------------------------------- printer */

/* The current user's line of the default who table. */
struct group {
	bool open;
	struct kg_hold user;
	uint64_t conns;
	struct uniq services;
	struct uniq pids;
	struct uniq ips;
};

struct kg_printer {
	FILE *out;
	FILE *err;
	uint8_t op;
	uint8_t flags;
	bool json;
	bool done;
	int status;
	char *esc; /* room for one escaped user name */
	/* kick: held until the end packet */
	struct kg_hold kicked;
	struct kg_hold warn;
	struct kg_hold pids;     /* u32 each */
	struct kg_hold refused;  /* REFUSED_SIZE each */
	struct kg_hold remained; /* confirmed kicks: users still there */
	/* What arrived, to hold against the end packet's counts: a reply
	 * that lost records must not pass for a whole one. */
	uint32_t records;
	uint64_t who_conns;
	/* who */
	uint64_t lines; /* table lines or JSON rows printed */
	struct group group;
	struct table *table; /* padded who text, or NULL */
	/* Rows come from one Dovecot: 2 when the first had a GUID (2.4),
	 * 1 when it had none (2.3), 0 before the first. */
	uint8_t who_version;
	struct kg_who24 *who24; /* who -1 text of 2.4 rows, or NULL */
	/* A listing is millions of short pieces; gathered here they cost a
	 * copy each instead of a stdio call each. */
	char outbuf[OUT_CHUNK];
	size_t out_len;
};

/* What the last lines of output need: from the end packet, or from a
 * failure that ended the reply early. */
struct summary {
	int status;
	uint8_t flags;
	uint32_t conns;
	uint32_t pids;
	uint32_t malformed;
	const char *error;
	size_t error_len;
};

#define ESC_CAP (KG_ESC_RATIO * (size_t)KG_USER_MAX + 1)

struct kg_printer *kg_printer_new(FILE *out, FILE *err, uint8_t op,
                                  uint8_t flags, bool json)
{
	struct kg_printer *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->esc = malloc(ESC_CAP);
	if (p->esc == NULL) {
		free(p);
		return NULL;
	}
	p->out = out;
	p->err = err;
	p->op = op;
	p->flags = flags;
	p->json = json;
	return p;
}

void kg_printer_free(struct kg_printer *p)
{
	if (p == NULL)
		return;
	free(p->esc);
	free(p->kicked.p);
	free(p->warn.p);
	free(p->pids.p);
	free(p->refused.p);
	free(p->remained.p);
	free(p->group.user.p);
	uniq_free(&p->group.services);
	uniq_free(&p->group.pids);
	uniq_free(&p->group.ips);
	table_free(p->table);
	if (p->who24 != NULL)
		kg_who24_free(p->who24);
	free(p->who24);
	free(p);
}

int kg_printer_pad(struct kg_printer *p)
{
	if (p->op != KG_OP_WHO || p->json)
		return 0;
	p->table = calloc(1, sizeof(*p->table));
	if (p->table == NULL)
		return -1;
	/* The connection count, or the pid with -1. */
	p->table->right = p->flags & KG_REQ_SEPARATE ? 1u << 2 : 1u << 1;
	return 0;
}

int kg_printer_status(const struct kg_printer *p)
{
	return p->status;
}

/* The who text output: out_put and the functions on it gather into
 * p->outbuf, out_flush hands that to stdio. With a table they write the
 * row being built instead, and out_sep and out_row_end mark its cells. */
static void out_flush(struct kg_printer *p)
{
	fwrite(p->outbuf, 1, p->out_len, p->out);
	p->out_len = 0;
}

static void out_raw(struct kg_printer *p, const void *s, size_t n)
{
	if (n > OUT_CHUNK - p->out_len) {
		out_flush(p);
		if (n > OUT_CHUNK) {
			fwrite(s, 1, n, p->out);
			return;
		}
	}
	memcpy(p->outbuf + p->out_len, s, n);
	p->out_len += n;
}

static void out_put(struct kg_printer *p, const void *s, size_t n)
{
	if (p->table != NULL)
		table_put(p->table, s, n);
	else
		out_raw(p, s, n);
}

static void out_char(struct kg_printer *p, char c)
{
	if (p->table != NULL) {
		table_put(p->table, &c, 1);
		return;
	}
	if (p->out_len == OUT_CHUNK)
		out_flush(p);
	p->outbuf[p->out_len++] = c;
}

static void out_str(struct kg_printer *p, const char *s)
{
	out_put(p, s, strlen(s));
}

static void out_dec(struct kg_printer *p, uint64_t v)
{
	char buf[DEC_MAX];

	out_put(p, buf, fmt_dec(buf, v));
}

/* Escapes s straight into the buffer when its longest escaped form fits
 * there. */
static void out_text(struct kg_printer *p, const char *s, size_t len)
{
	size_t need = KG_ESC_RATIO * len + 1;

	if (need > OUT_CHUNK || p->table != NULL) {
		out_put(p, p->esc,
		        kg_cli_escape(p->esc, ESC_CAP, s, len, KG_ESC_SPACE));
		return;
	}
	if (need > OUT_CHUNK - p->out_len)
		out_flush(p);
	p->out_len +=
	        kg_cli_escape(p->outbuf + p->out_len, OUT_CHUNK - p->out_len, s,
	                      len, KG_ESC_SPACE);
}

static void out_spaces(struct kg_printer *p, size_t n)
{
	static const char spaces[] = "                                ";

	for (size_t k; n > 0; n -= k) {
		k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
		out_raw(p, spaces, k);
	}
}

/* Prints the held rows, each cell padded to its column. */
static void table_print(struct kg_printer *p)
{
	struct table *t = p->table;
	size_t off = 0;
	uint32_t len, w;

	while (off < t->rows.len) {
		size_t ncell = t->rows.p[off++];

		for (size_t i = 0; i < ncell; i++) {
			bool right = i < 32 && (t->right & (1u << i));
			size_t pad;

			memcpy(&len, t->rows.p + off, 4);
			memcpy(&w, t->rows.p + off + 4, 4);
			pad = t->width[i] - w;
			if (right)
				out_spaces(p, pad);
			out_raw(p, t->rows.p + off + CELL_HEAD, len);
			if (!right && i + 1 < ncell)
				out_spaces(p, pad);
			out_raw(p, i + 1 < ncell ? " " : "\n", 1);
			off += CELL_HEAD + len;
		}
	}
	t->rows.len = 0;
}

/* Ends a field of a who line. */
static void out_sep(struct kg_printer *p)
{
	if (p->table != NULL)
		table_cut(p->table);
	else
		out_char(p, ' ');
}

static void out_row_end(struct kg_printer *p)
{
	if (p->table == NULL) {
		out_char(p, '\n');
		return;
	}
	table_hold_row(p->table);
	if (p->table->rows.len >= TABLE_BATCH)
		table_print(p);
}

static void out_uniq(struct kg_printer *p, const struct uniq *u)
{
	for (size_t off = 0; off < u->text.len; off += 1 + u->text.p[off]) {
		if (off > 0)
			out_char(p, ' ');
		out_put(p, u->text.p + off + 1, u->text.p[off]);
	}
}

/* Writes s escaped for text output. */
static void put_text(struct kg_printer *p, FILE *f, const char *s, size_t len,
                     unsigned flags)
{
	fwrite(p->esc, 1, kg_cli_escape(p->esc, ESC_CAP, s, len, flags), f);
}

/* ---------------------------------------------------------------- kick */

static void names_text(struct kg_printer *p, const struct kg_hold *h)
{
	const char *name, *sep = "";
	size_t len, off = 0;

	while (kg_hold_next_name(h, &off, &name, &len)) {
		fputs(sep, p->out);
		sep = " ";
		put_text(p, p->out, name, len, KG_ESC_SPACE);
	}
	fputc('\n', p->out);
}

/* Under who = no the reply names nobody: a kick done is told by its
 * counts, a dry run by the policy's word alone, a need for -f without
 * the names. */
static void hidden_text(struct kg_printer *p, const struct summary *s)
{
	FILE *f = p->out;

	if (s->status == KG_EXIT_OK && (s->flags & KG_END_DRY_RUN))
		fputs("dry run: your rule allows this kick; it does not show "
		      "sessions (who = no), so what it would kick is not "
		      "shown\n",
		      f);
	else if (s->status == KG_EXIT_OK && !(s->flags & KG_END_CONFIRMED))
		fprintf(f, "kicked %" PRIu32 " %s in %" PRIu32 " %s\n",
		        s->conns, plural(s->conns, "connection", "connections"),
		        s->pids, plural(s->pids, "process", "processes"));
	if (s->status == KG_EXIT_PARTIAL)
		fputs("some sessions were still connected after the kick; your "
		      "rule does not show which (who = no)\n",
		      f);
	if ((s->flags & KG_END_NEED_FORCE) && !(s->flags & KG_END_FORCE_DENIED))
		fputs("warning: the matching processes also serve other "
		      "connections\nUse the '-f' option to enforce the "
		      "disconnect.\n",
		      f);
	if (s->status == KG_EXIT_NOMATCH)
		fputs("no users kicked\n", f);
}

static void kick_text(struct kg_printer *p, const struct summary *s)
{
	FILE *f = p->out;
	bool dry = s->flags & KG_END_DRY_RUN;
	uint32_t pid;

	/* doveadm 2.4's line word for word, "1 connections" too, as
	 * scripts match it; the count is of sessions really gone. */
	if (s->flags & KG_END_CONFIRMED)
		fprintf(f, "%" PRIu32 " connections kicked\n", s->conns);
	if (s->flags & KG_END_HIDDEN) {
		hidden_text(p, s);
		return;
	}
	if (p->kicked.len > 0) {
		fputs(dry ? "dry run: would kick connections from the "
		            "following users:\n"
		          : "kicked connections from the following users:\n",
		      f);
		names_text(p, &p->kicked);
		if (dry)
			fprintf(f, "%" PRIu32 " %s in %" PRIu32 " %s\n",
			        s->conns,
			        plural(s->conns, "connection", "connections"),
			        s->pids,
			        plural(s->pids, "process", "processes"));
	}
	if (p->remained.len > 0) {
		fputs("still connected after the kick:\n", f);
		names_text(p, &p->remained);
	}
	/* Without the right to -f, the refusal goes to stderr instead
	 * (force_denied_detail), and -f is not suggested. */
	if ((s->flags & KG_END_NEED_FORCE) &&
	    !(s->flags & KG_END_FORCE_DENIED)) {
		fputs("warning: other connections would also be kicked from "
		      "following users:\n",
		      f);
		names_text(p, &p->warn);
		fputs("Use the '-f' option to enforce the disconnect.\n", f);
	}
	if (s->status == KG_EXIT_NOMATCH && p->kicked.len == 0)
		fputs("no users kicked\n", f);
	for (size_t off = 0; off < p->refused.len; off += REFUSED_SIZE) {
		memcpy(&pid, p->refused.p + off, 4);
		fprintf(f, "refused: pid %" PRIu32 ": %s\n", pid,
		        kg_refuse_strerror(p->refused.p[off + 4]));
	}
}

/* The users whose connections share the processes, after the broker's
 * reason: who would have lost a session had -f been allowed. */
static void force_denied_detail(struct kg_printer *p)
{
	const char *name, *sep = " ";
	size_t len, off = 0;

	fputs("kickgate: other connections on those processes are from:",
	      p->err);
	while (kg_hold_next_name(&p->warn, &off, &name, &len)) {
		fputs(sep, p->err);
		put_text(p, p->err, name, len, KG_ESC_SPACE);
	}
	fputc('\n', p->err);
}

static bool names_exact(const struct kg_hold *h)
{
	const char *name;
	size_t len, off = 0;

	while (kg_hold_next_name(h, &off, &name, &len))
		if (!kg_json_exact(name, len))
			return false;
	return true;
}

/* The held names as a JSON array under key, as text or, with hex, as
 * their bytes in hexadecimal. */
static void names_array(FILE *f, const char *key, const struct kg_hold *h,
                        bool hex)
{
	const char *name, *sep = "";
	size_t len, off = 0;

	fprintf(f, ",\"%s%s\":[", key, hex ? "_hex" : "");
	while (kg_hold_next_name(h, &off, &name, &len)) {
		fputs(sep, f);
		sep = ",";
		(hex ? kg_json_hex : kg_json_str)(f, name, len);
	}
	fputc(']', f);
}

/* Names that are all valid UTF-8 are carried by the text array alone;
 * otherwise a parallel array under key_hex holds every name's exact
 * bytes, so that valid names stay simple and none is ever lost. */
static void names_json(FILE *f, const char *key, const struct kg_hold *h)
{
	names_array(f, key, h, false);
	if (!names_exact(h))
		names_array(f, key, h, true);
}

/* A caller who may not see every session is not told how many of anvil's
 * lines were malformed: null says so, where 0 would say there were none. */
static void json_malformed(FILE *f, const struct summary *s)
{
	if (s->flags & KG_END_SCOPED)
		fputs("\"malformed_anvil_lines\":null,", f);
	else
		fprintf(f, "\"malformed_anvil_lines\":%" PRIu32 ",",
		        s->malformed);
}

/* Under who = no: null where a visible reply has lists, as the caller is
 * not told them, and counts only of a kick done. */
static void kick_json_hidden(struct kg_printer *p, const struct summary *s)
{
	bool dry = s->flags & KG_END_DRY_RUN;

	fprintf(p->out,
	        "{\"status\":%d,\"dry_run\":%s,\"kicked\":null,\"pids\":null,"
	        "\"warning\":null,\"refused\":null,",
	        s->status, dry ? "true" : "false");
	if (s->flags & KG_END_CONFIRMED)
		fputs("\"confirmed\":true,\"remained\":null,", p->out);
	if ((s->status == KG_EXIT_OK || s->status == KG_EXIT_PARTIAL) && !dry)
		fprintf(p->out,
		        "\"connections\":%" PRIu32 ",\"processes\":%" PRIu32
		        ",",
		        s->conns, s->pids);
	else
		fputs("\"connections\":null,\"processes\":null,", p->out);
}

/* The fields every kick reply ends with. */
static void json_end(struct kg_printer *p, const struct summary *s)
{
	json_malformed(p->out, s);
	fputs("\"error\":", p->out);
	json_str_or_null(p->out, s->error, s->error_len);
	fputs("}\n", p->out);
}

static void kick_json(struct kg_printer *p, const struct summary *s)
{
	FILE *f = p->out;
	uint32_t pid;

	if (s->flags & KG_END_HIDDEN) {
		kick_json_hidden(p, s);
		json_end(p, s);
		return;
	}
	fprintf(f, "{\"status\":%d,\"dry_run\":%s", s->status,
	        s->flags & KG_END_DRY_RUN ? "true" : "false");
	names_json(f, "kicked", &p->kicked);
	fputs(",\"pids\":[", f);
	for (size_t off = 0; off < p->pids.len; off += 4) {
		memcpy(&pid, p->pids.p + off, 4);
		fprintf(f, "%s%" PRIu32, off > 0 ? "," : "", pid);
	}
	fputc(']', f);
	names_json(f, "warning", &p->warn);
	fputs(",\"refused\":[", f);
	for (size_t off = 0; off < p->refused.len; off += REFUSED_SIZE) {
		memcpy(&pid, p->refused.p + off, 4);
		fprintf(f, "%s{\"pid\":%" PRIu32 ",\"reason\":\"%s\"}",
		        off > 0 ? "," : "", pid,
		        kg_refuse_strerror(p->refused.p[off + 4]));
	}
	fputc(']', f);
	if (s->flags & KG_END_CONFIRMED) {
		fputs(",\"confirmed\":true", f);
		names_json(f, "remained", &p->remained);
	}
	fprintf(f, ",\"connections\":%" PRIu32 ",\"processes\":%" PRIu32 ",",
	        s->conns, s->pids);
	json_end(p, s);
}

/* ----------------------------------------------------------------- who */

/* Who and instances are listings: a header, rows as they arrive, and in
 * JSON an array under this key. */
static const char *list_key(const struct kg_printer *p)
{
	return p->op == KG_OP_WHO ? "sessions" : "instances";
}

static const char *const group_head[] = {"username", "#",     "proto",
                                         "(pids)",   "(ips)", NULL};
static const char *const line_head[] = {"username", "proto", "pid", "ip", NULL};
/* doveadm 2.4's who -1, before a column per alternative-username field. */
static const char *const line24_head[] = {"username", "service", "pid",
                                          "ip",       "dest_ip", NULL};

/* The cells of a header, without the row's end. */
static void head_cells(struct kg_printer *p, const char *const *h)
{
	out_str(p, *h);
	while (*++h != NULL) {
		out_sep(p);
		out_str(p, *h);
	}
}

static void who_header(struct kg_printer *p)
{
	if (p->lines++ > 0)
		return;
	if (p->op == KG_OP_INSTANCES) {
		out_str(p, "instance anvil\n");
		return;
	}
	head_cells(p, p->flags & KG_REQ_SEPARATE ? line_head : group_head);
	out_row_end(p);
}

/* Starts one element of the JSON array, the array itself first. */
static void json_row_open(struct kg_printer *p)
{
	if (p->lines++ > 0)
		fputs(",\n", p->out);
	else
		fprintf(p->out, "{\"%s\":[\n", list_key(p));
}

static void group_flush(struct kg_printer *p)
{
	struct group *g = &p->group;

	if (!g->open)
		return;
	who_header(p);
	out_text(p, (const char *)g->user.p, g->user.len);
	out_sep(p);
	out_dec(p, g->conns);
	out_sep(p);
	out_uniq(p, &g->services);
	out_sep(p);
	out_char(p, '(');
	out_uniq(p, &g->pids);
	out_char(p, ')');
	out_sep(p);
	out_char(p, '(');
	out_uniq(p, &g->ips);
	out_char(p, ')');
	out_row_end(p);
	g->open = false;
	g->user.len = 0;
	uniq_clear(&g->services);
	uniq_clear(&g->pids);
	uniq_clear(&g->ips);
}

static int group_add(struct kg_printer *p, const struct kg_who_row *row)
{
	struct group *g = &p->group;
	char text[KG_ESC_RATIO * KG_SERVICE_MAX + 1];
	size_t n;

	if (g->open && (g->user.len != row->user_len ||
	                (row->user_len > 0 &&
	                 memcmp(g->user.p, row->user, row->user_len) != 0)))
		group_flush(p);
	if (!g->open) {
		if (kg_hold_add(&g->user, row->user, row->user_len) < 0)
			return -1;
		g->open = true;
		g->conns = 0;
	}
	g->conns += row->conns;
	n = kg_cli_escape(text, sizeof(text), row->service, row->service_len,
	                  KG_ESC_SPACE);
	if (uniq_add(&g->services, text, n) < 0)
		return -1;
	n = fmt_dec(text, row->pid);
	if (uniq_add(&g->pids, text, n) < 0)
		return -1;
	if (row->addr.family == KG_AF_NONE)
		return 0;
	kg_addr_format(&row->addr, text);
	return uniq_add(&g->ips, text, strlen(text));
}

static void who_line(struct kg_printer *p, const struct kg_who_row *row)
{
	char ip[KG_NET_STRLEN];

	who_header(p);
	out_text(p, row->user, row->user_len);
	out_sep(p);
	out_text(p, row->service, row->service_len);
	out_sep(p);
	out_dec(p, row->pid);
	kg_addr_format(&row->addr, ip);
	if (ip[0] != '\0') {
		out_sep(p);
		out_str(p, ip);
	}
	out_row_end(p);
}

/* Held Dovecot 2.4 rows as doveadm 2.4 prints who -1: its columns, then
 * one per field the rows carry, blank where a row has none. The GUID is
 * no column: doveadm's scripts split these. */
static void who24_line(struct kg_printer *p, const struct kg_who24_row *row)
{
	char ip[KG_NET_STRLEN];

	out_text(p, row->user, row->user_len);
	out_sep(p);
	out_text(p, row->service, row->service_len);
	out_sep(p);
	out_dec(p, row->pid);
	out_sep(p);
	kg_addr_format(&row->addr, ip);
	out_str(p, ip);
	out_sep(p);
	kg_addr_format(&row->dest, ip);
	out_str(p, ip);
	for (size_t i = 0; i < p->who24->n_cols; i++) {
		out_sep(p);
		if (row->value_len[i] > 0)
			out_text(p, row->value[i], row->value_len[i]);
	}
	out_row_end(p);
}

static void who24_print(struct kg_printer *p)
{
	const struct kg_who24 *w = p->who24;
	struct kg_who24_row row;
	size_t off = 0;

	p->lines++;
	head_cells(p, line24_head);
	for (size_t i = 0; i < w->n_cols; i++) {
		out_sep(p);
		out_put(p, w->col[i], w->col_len[i]);
	}
	out_row_end(p);
	while (kg_who24_next(w, &off, &row))
		who24_line(p, &row);
}

/* A Dovecot 2.4 row's GUID, destination and fields, which are all
 * valid UTF-8 (the wire allows no other). */
static void who_json_v2(FILE *f, const struct kg_who_row *row)
{
	char dest[KG_NET_STRLEN];

	fputs(",\"guid\":", f);
	kg_json_hex(f, (const char *)row->guid, sizeof(row->guid));
	kg_addr_format(&row->dest, dest);
	fputs(",\"dest_ip\":", f);
	json_str_or_null(f, dest, strlen(dest));
	fputs(",\"fields\":{", f);
	for (size_t i = 0; i < row->n_fields; i++) {
		if (i > 0)
			fputc(',', f);
		kg_json_str(f, row->fields[i].name, row->fields[i].name_len);
		fputc(':', f);
		kg_json_str(f, row->fields[i].value, row->fields[i].value_len);
	}
	fputc('}', f);
}

static void who_json_row(struct kg_printer *p, const struct kg_who_row *row)
{
	FILE *f = p->out;
	char ip[KG_NET_STRLEN];

	json_row_open(p);
	fputc('{', f);
	json_name(f, "user", row->user, row->user_len);
	fputc(',', f);
	json_name(f, "service", row->service, row->service_len);
	kg_addr_format(&row->addr, ip);
	fprintf(f, ",\"pid\":%" PRIu32 ",\"ip\":", row->pid);
	json_str_or_null(f, ip, strlen(ip));
	fprintf(f, ",\"connections\":%" PRIu32, row->conns);
	if (row->has_guid)
		who_json_v2(f, row);
	fputc('}', f);
}

static void who_text_end(struct kg_printer *p, const struct summary *s)
{
	if (p->lines == 0 && s->status == KG_EXIT_OK)
		who_header(p);
}

static void who_json_end(struct kg_printer *p, const struct summary *s)
{
	FILE *f = p->out;

	if (p->lines > 0)
		fputc('\n', f);
	else
		fprintf(f, "{\"%s\":[", list_key(p));
	fprintf(f, "],\"status\":%d,", s->status);
	if (p->op == KG_OP_WHO)
		json_malformed(f, s);
	fputs("\"error\":", f);
	json_str_or_null(f, s->error, s->error_len);
	fputs("}\n", f);
}

/* ----------------------------------------------------------- instances */

static void instance_line(struct kg_printer *p,
                          const struct kg_instance_row *row)
{
	who_header(p);
	out_put(p, row->name, row->name_len);
	out_char(p, ' ');
	out_text(p, row->path, row->path_len);
	out_char(p, '\n');
}

static void instance_json_row(struct kg_printer *p,
                              const struct kg_instance_row *row)
{
	json_row_open(p);
	fputs("{\"name\":", p->out);
	kg_json_str(p->out, row->name, row->name_len);
	fputs(",\"anvil\":", p->out);
	kg_json_str(p->out, row->path, row->path_len);
	fputc('}', p->out);
}

/* -------------------------------------------------------------- ending */

static void error_line(struct kg_printer *p, const char *msg, size_t len)
{
	fputs("kickgate: ", p->err);
	put_text(p, p->err, msg, len, 0);
	fputc('\n', p->err);
}

/* complete: the end packet arrived, so the text output can be finished;
 * after a failure only the error is reported. */
static void finish(struct kg_printer *p, const struct summary *s, bool complete)
{
	bool kick = p->op == KG_OP_KICK;

	if (!p->json && p->who24 != NULL)
		who24_print(p);
	if (p->json) {
		if (kick)
			kick_json(p, s);
		else
			who_json_end(p, s);
	} else if (complete) {
		if (kick)
			kick_text(p, s);
		else
			who_text_end(p, s);
	}
	/* Held rows are printed after a failure too: they arrived. */
	if (p->table != NULL)
		table_print(p);
	out_flush(p);
	fflush(p->out);
	if (s->error_len > 0)
		error_line(p, s->error, s->error_len);
	if (complete && kick && !p->json && (s->flags & KG_END_FORCE_DENIED) &&
	    !(s->flags & KG_END_HIDDEN))
		force_denied_detail(p);
	if (s->malformed > 0)
		fprintf(p->err,
		        "kickgate: warning: anvil sent %" PRIu32
		        " malformed %s, skipped\n",
		        s->malformed, plural(s->malformed, "line", "lines"));
	p->status = s->status;
	p->done = true;
}

int kg_printer_fail(struct kg_printer *p, int code, const char *msg)
{
	struct summary s = {
	        .status = code,
	        .flags = p->flags & KG_REQ_DRY_RUN ? KG_END_DRY_RUN : 0,
	        .error = msg,
	        .error_len = strlen(msg),
	};

	if (p->done)
		error_line(p, msg, s.error_len);
	else
		finish(p, &s, false);
	return code;
}

/* ------------------------------------------------------------ handlers */

static int protocol_error(struct kg_printer *p, const char *what)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "malformed reply from the broker: %s", what);
	return kg_printer_fail(p, KG_EXIT_SOFTWARE, msg);
}

static int too_large(struct kg_printer *p)
{
	return kg_printer_fail(p, KG_EXIT_SOFTWARE,
	                       "reply too large to hold in memory");
}

/* The printer behind a record callback's ctx, with the record counted. */
static struct kg_printer *counted(void *ctx)
{
	struct kg_printer *p = ctx;

	p->records++;
	return p;
}

static int on_user(void *ctx, enum kg_rec_type type, const char *name,
                   size_t len)
{
	struct kg_printer *p = counted(ctx);
	struct kg_hold *h = type == KG_REC_KICKED ? &p->kicked
	                    : type == KG_REC_WARN ? &p->warn
	                                          : &p->remained;

	if (p->op != KG_OP_KICK)
		return protocol_error(p, "user list in a who reply");
	return kg_hold_name(h, name, len) < 0 ? too_large(p) : 0;
}

static int on_pid(void *ctx, uint32_t pid)
{
	struct kg_printer *p = counted(ctx);

	if (p->op != KG_OP_KICK)
		return protocol_error(p, "pid list in a who reply");
	return kg_hold_add(&p->pids, &pid, 4) < 0 ? too_large(p) : 0;
}

static int on_refused(void *ctx, uint32_t pid, uint8_t reason)
{
	struct kg_printer *p = counted(ctx);
	uint8_t rec[REFUSED_SIZE];

	if (p->op != KG_OP_KICK)
		return protocol_error(p, "refused pid in a who reply");
	memcpy(rec, &pid, 4);
	rec[4] = reason;
	return kg_hold_add(&p->refused, rec, sizeof(rec)) < 0 ? too_large(p)
	                                                      : 0;
}

static bool table_failed(const struct kg_printer *p)
{
	return p->table != NULL && p->table->failed;
}

static int who24_add(struct kg_printer *p, const struct kg_who_row *row)
{
	if (p->who24 == NULL) {
		p->who24 = calloc(1, sizeof(*p->who24));
		if (p->who24 == NULL)
			return too_large(p);
	}
	switch (kg_who24_add(p->who24, row)) {
	case KG_WHO24_OK:
		return 0;
	case KG_WHO24_COLS:
		return kg_printer_fail(p, KG_EXIT_SOFTWARE,
		                       "the sessions carry more than 64 "
		                       "alternative-username fields, too many "
		                       "columns for who -1: use -j");
	case KG_WHO24_NOMEM:
		break;
	}
	return too_large(p);
}

/* A who row as text: grouped by user, or one line each; 2.4's lines
 * wait for the last row, which settles their columns. */
static int who_text_row(struct kg_printer *p, const struct kg_who_row *row)
{
	if (!(p->flags & KG_REQ_SEPARATE))
		return group_add(p, row) < 0 ? too_large(p) : 0;
	if (row->has_guid)
		return who24_add(p, row);
	who_line(p, row);
	return 0;
}

static int on_who(void *ctx, const struct kg_who_row *row)
{
	struct kg_printer *p = counted(ctx);
	uint8_t version = row->has_guid ? 2 : 1;
	int rc = 0;

	if (p->op != KG_OP_WHO)
		return protocol_error(p, "who row in a kick reply");
	if (p->who_version != 0 && p->who_version != version)
		return protocol_error(p, "rows of Dovecot 2.3 and 2.4 in one "
		                         "reply");
	p->who_version = version;
	p->who_conns += row->conns;
	if (p->json)
		who_json_row(p, row);
	else
		rc = who_text_row(p, row);
	if (rc == 0 && table_failed(p))
		return too_large(p);
	return rc;
}

static int on_instance(void *ctx, const struct kg_instance_row *row)
{
	struct kg_printer *p = counted(ctx);

	if (p->op != KG_OP_INSTANCES)
		return protocol_error(p, "instance in a kick or who reply");
	if (p->json)
		instance_json_row(p, row);
	else
		instance_line(p, row);
	return 0;
}

static int on_end(void *ctx, const struct kg_reply_end *end)
{
	struct kg_printer *p = ctx;
	struct summary s = {
	        .status = end->status,
	        .flags = end->flags,
	        .conns = end->conns,
	        .pids = end->pids,
	        .malformed = end->malformed,
	        .error = end->error,
	        .error_len = end->error_len,
	};

	if (end->records != p->records)
		return protocol_error(p, "records are missing");
	if (p->remained.len > 0 && !(end->flags & KG_END_CONFIRMED))
		return protocol_error(p, "users still connected after a kick "
		                         "that was not confirmed");
	/* The broker sums a listing's connections as they are listed,
	 * saturating; so does this check. */
	if (p->op == KG_OP_WHO && end->status == KG_EXIT_OK &&
	    (p->who_conns > UINT32_MAX ? UINT32_MAX : p->who_conns) !=
	            end->conns)
		return protocol_error(p, "the rows do not add up to the "
		                         "connections listed");
	/* The last who group is printed here, where a row that cannot be
	 * held can still be reported. */
	if (p->op == KG_OP_WHO && !p->json)
		group_flush(p);
	if (table_failed(p))
		return too_large(p);
	finish(p, &s, true);
	return 0;
}

const struct kg_reply_handler kg_printer_handler = {
        .user = on_user,
        .pid = on_pid,
        .refused = on_refused,
        .who = on_who,
        .instance = on_instance,
        .end = on_end,
};
