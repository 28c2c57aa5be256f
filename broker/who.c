/* SPDX-License-Identifier: MIT */
/* The who collector; see who.h.
 *
 * On a large host memory is what bounds a listing, so each row is kept
 * once, packed, and nothing is indexed per distinct name: a row costs its
 * own bytes and four more, however the connections are spread over users.
 *
 * Rows arrive in a staging area. Whenever it is full, the staged rows are
 * sorted and copied in order into a block of their own, a run. Sorting in
 * runs while anvil is still sending leaves one merge of the runs, each
 * read front to back, for after the dump has ended. */
#include "broker/who.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/match.h"
#include "broker/msort.h"
#include "broker/pidset.h"
#include "broker/strpool.h"

/* Staging: bytes of packed rows. A run's offsets fit in RUN_OFF_BITS, its
 * number in the rest of a 32-bit row reference. */
#define RUN_OFF_BITS 21
#define STAGE_BYTES  ((size_t)1 << RUN_OFF_BITS)
#define RUNS_MAX     ((size_t)1 << (32 - RUN_OFF_BITS))

/* A packed row: u32 pid, u32 conns, u8 family (| ROW_FOLDED | ROW_V2),
 * varint service id, varint user length, the address bytes, the user
 * bytes; then with ROW_V2 (Dovecot 2.4) the GUID, u8 dest family, the
 * dest bytes, u8 field count and per field a varint name id, u8 value
 * length and the value. */
#define ROW_FOLDED 0x80
#define ROW_V2     0x40
#define VARINT_MAX 5
#define FIELD_MAX  (VARINT_MAX + 1 + KG_FIELD_VALUE_MAX)
#define ROW_MAX                                                                \
	(4 + 4 + 1 + 2 * VARINT_MAX + 16 + KG_USER_MAX + 16 + 1 + 16 + 1 +     \
	 KG_FIELDS_MAX * FIELD_MAX)
_Static_assert(ROW_MAX <= STAGE_BYTES, "a row fits a run");

struct row {
	uint32_t pid;
	uint32_t conns;
	uint8_t flags;
	uint32_t service;
	const uint8_t *addr;
	const char *user;
	size_t user_len;
	const uint8_t *guid; /* NULL: no ROW_V2 */
	uint8_t dest_family;
	const uint8_t *dest;
	uint8_t n_fields;
	const uint8_t *fields;
	size_t size; /* of the packed row */
};

/* The first 16 bytes of a user name as two big-endian numbers (zero
 * padded): their order agrees with the names' bytewise order, so most
 * comparisons never touch the rows. */
struct prefix {
	uint64_t hi;
	uint64_t lo;
};

/* A staged row: its name's prefix, its offset and its size. */
struct stage_key {
	struct prefix prefix;
	uint32_t off;
	uint32_t size;
};

struct run {
	char *rows;
	size_t n;
};

/* Where kg_who_row last was: reading rows in order finds each row's
 * shared name in O(1). The collector holds it through a pointer, so that
 * kg_who_row, which only reads the collection, can keep it current. */
struct row_cursor {
	size_t next;
	const char *name;
	size_t name_len;
	struct kg_field fields[KG_FIELDS_MAX]; /* the last row's */
};

struct kg_who {
	struct kg_request req;
	const struct kg_scope *scope;
	struct kg_strpool *services;
	struct kg_strpool *field_names;
	char *stage;
	size_t stage_len;
	size_t run_rows; /* staged rows that make a run */
	struct stage_key *keys;
	/* Sorting moves indexes into keys, not the keys themselves. */
	uint32_t *order_in_run;
	uint32_t *scratch;
	size_t n_keys;
	struct run *runs;
	size_t n_runs;
	size_t cap_runs;
	bool finished;
	uint32_t *order; /* row references, sorted, one per listed row */
	size_t n_order;
	struct row_cursor *cursor;
};

static size_t put_varint(uint8_t *p, uint32_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Only ever reads what put_varint wrote. */
static size_t get_varint(const uint8_t *p, uint32_t *v)
{
	size_t n = 0;

	*v = 0;
	do
		*v |= (uint32_t)(p[n] & 0x7f) << (7 * n);
	while (p[n++] & 0x80);
	return n;
}

/* The ROW_V2 part: ids[i] is the name id of c->fields[i]. */
static size_t pack_v2(uint8_t *p, const struct kg_conn *c, const uint32_t *ids)
{
	size_t dlen = kg_family_len(c->dest.family);
	size_t n = 16;

	memcpy(p, c->guid, 16);
	p[n++] = c->dest.family;
	memcpy(p + n, c->dest.bytes, dlen);
	n += dlen;
	p[n++] = (uint8_t)c->n_fields;
	for (size_t i = 0; i < c->n_fields; i++) {
		n += put_varint(p + n, ids[i]);
		p[n++] = (uint8_t)c->fields[i].value_len;
		memcpy(p + n, c->fields[i].value, c->fields[i].value_len);
		n += c->fields[i].value_len;
	}
	return n;
}

static size_t pack_row(uint8_t *p, const struct kg_conn *c, uint32_t service,
                       const uint32_t *field_ids)
{
	size_t alen = kg_family_len(c->addr.family);
	size_t n = 9;

	memcpy(p, &c->pid, 4);
	memcpy(p + 4, &c->refcount, 4);
	p[8] = c->addr.family | (c->has_guid ? ROW_V2 : 0);
	n += put_varint(p + n, service);
	n += put_varint(p + n, (uint32_t)c->user_len);
	memcpy(p + n, c->addr.bytes, alen);
	memcpy(p + n + alen, c->user, c->user_len);
	n += alen + c->user_len;
	return c->has_guid ? n + pack_v2(p + n, c, field_ids) : n;
}

/* Steps over the fields, which kg_who_row alone reads. */
static size_t skip_fields(const uint8_t *p, uint8_t n_fields)
{
	size_t n = 0;

	for (uint8_t i = 0; i < n_fields; i++) {
		uint32_t id;

		n += get_varint(p + n, &id);
		n += 1 + p[n];
	}
	return n;
}

static size_t unpack_v2(const uint8_t *p, struct row *r)
{
	size_t n = 16;

	r->guid = p;
	r->dest_family = p[n++];
	r->dest = p + n;
	n += kg_family_len(r->dest_family);
	r->n_fields = p[n++];
	r->fields = p + n;
	return n + skip_fields(p + n, r->n_fields);
}

static void unpack_row(const char *rec, struct row *r)
{
	const uint8_t *p = (const uint8_t *)rec;
	size_t n = 9;
	uint32_t len;

	memcpy(&r->pid, p, 4);
	memcpy(&r->conns, p + 4, 4);
	r->flags = p[8];
	n += get_varint(p + n, &r->service);
	n += get_varint(p + n, &len);
	r->addr = p + n;
	n += kg_family_len(r->flags & ~(ROW_FOLDED | ROW_V2));
	r->user = rec + n;
	r->user_len = len;
	n += len;
	r->guid = NULL;
	if (r->flags & ROW_V2)
		n += unpack_v2(p + n, r);
	r->size = n;
}

static struct prefix name_prefix(const char *s, size_t len)
{
	struct prefix p = {0, 0};

	for (size_t i = 0; i < 8; i++) {
		p.hi = p.hi << 8 | (i < len ? (unsigned char)s[i] : 0);
		p.lo = p.lo << 8 | (i + 8 < len ? (unsigned char)s[i + 8] : 0);
	}
	return p;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return (a > b) - (a < b);
}

static int cmp_prefixes(const struct prefix *a, const struct prefix *b)
{
	int c = cmp_u64(a->hi, b->hi);

	return c ? c : cmp_u64(a->lo, b->lo);
}

static uint8_t row_family(const struct row *r)
{
	return r->flags & (uint8_t) ~(ROW_FOLDED | ROW_V2);
}

/* Rows of Dovecot 2.4 are connections, each with its GUID: two of them
 * never fold into one, and go in GUID order. */
static int cmp_guids(const struct row *x, const struct row *y)
{
	if (!x->guid || !y->guid)
		return (x->guid != NULL) - (y->guid != NULL);
	return memcmp(x->guid, y->guid, 16);
}

/* The listing's order: user (bytewise), service, pid, address. */
static int cmp_unpacked(const struct kg_who *w, const struct row *x,
                        const struct row *y)
{
	int c = kg_str_cmp((struct kg_str){x->user, x->user_len},
	                   (struct kg_str){y->user, y->user_len});

	if (c)
		return c;
	if (x->service != y->service &&
	    (c = kg_str_cmp(kg_strpool_get(w->services, x->service),
	                    kg_strpool_get(w->services, y->service))))
		return c;
	if ((c = cmp_u64(x->pid, y->pid)) ||
	    (c = cmp_u64(row_family(x), row_family(y))) ||
	    (c = memcmp(x->addr, y->addr, kg_family_len(row_family(x)))))
		return c;
	return cmp_guids(x, y);
}

static int cmp_keys(const void *a, const void *b, void *ctx)
{
	const struct kg_who *w = ctx;
	const struct stage_key *x = &w->keys[*(const uint32_t *)a];
	const struct stage_key *y = &w->keys[*(const uint32_t *)b];
	struct row rx, ry;
	int c = cmp_prefixes(&x->prefix, &y->prefix);

	if (c)
		return c;
	unpack_row(w->stage + x->off, &rx);
	unpack_row(w->stage + y->off, &ry);
	return cmp_unpacked(w, &rx, &ry);
}

struct kg_who *kg_who_new_runs(const struct kg_request *req,
                               const struct kg_scope *scope, size_t run_rows)
{
	struct kg_who *w;

	if (run_rows < 1 || run_rows > KG_WHO_RUN_ROWS)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->req = *req;
	w->scope = scope;
	w->run_rows = run_rows;
	w->services = kg_strpool_new();
	w->field_names = kg_strpool_new();
	/* Pages never written cost no memory: a small listing stays small. */
	w->stage = malloc(STAGE_BYTES);
	w->keys = malloc(run_rows * sizeof(*w->keys));
	w->order_in_run = malloc(run_rows * sizeof(*w->order_in_run));
	w->scratch = malloc(run_rows * sizeof(*w->scratch));
	w->cursor = calloc(1, sizeof(*w->cursor));
	if (!w->services || !w->field_names || !w->stage || !w->keys ||
	    !w->order_in_run || !w->scratch || !w->cursor) {
		kg_who_free(w);
		return NULL;
	}
	return w;
}

struct kg_who *kg_who_new(const struct kg_request *req,
                          const struct kg_scope *scope)
{
	return kg_who_new_runs(req, scope, KG_WHO_RUN_ROWS);
}

static void drop_stage(struct kg_who *w)
{
	free(w->stage);
	free(w->keys);
	free(w->order_in_run);
	free(w->scratch);
	w->stage = NULL;
	w->keys = NULL;
	w->order_in_run = NULL;
	w->scratch = NULL;
}

/* Sorts the staged rows into a new run. */
static int flush_run(struct kg_who *w)
{
	struct run *r;
	size_t off = 0;

	if (!w->n_keys)
		return 0;
	if (w->n_runs == RUNS_MAX)
		return -1;
	if (w->n_runs == w->cap_runs) {
		size_t cap = w->cap_runs ? 2 * w->cap_runs : 16;
		struct run *runs;

		runs = realloc(w->runs, cap * sizeof(*runs));
		if (!runs)
			return -1;
		w->runs = runs;
		w->cap_runs = cap;
	}
	r = &w->runs[w->n_runs];
	r->rows = malloc(w->stage_len);
	if (!r->rows)
		return -1;
	for (size_t i = 0; i < w->n_keys; i++)
		w->order_in_run[i] = (uint32_t)i;
	kg_msort(w->order_in_run, w->scratch, w->n_keys,
	         sizeof(*w->order_in_run), cmp_keys, w);
	for (size_t i = 0; i < w->n_keys; i++) {
		const struct stage_key *k = &w->keys[w->order_in_run[i]];

		memcpy(r->rows + off, w->stage + k->off, k->size);
		off += k->size;
	}
	r->n = w->n_keys;
	w->n_runs++;
	w->n_keys = 0;
	w->stage_len = 0;
	return 0;
}

/* The fields' names, interned. A connection has at most KG_FIELDS_MAX
 * fields, each within the limits (the parser's checks). */
static int intern_fields(struct kg_who *w, const struct kg_conn *c,
                         uint32_t *ids)
{
	if (c->n_fields > KG_FIELDS_MAX)
		return -1;
	for (size_t i = 0; i < c->n_fields; i++) {
		if (c->fields[i].value_len > KG_FIELD_VALUE_MAX ||
		    kg_strpool_intern(w->field_names, c->fields[i].name,
		                      c->fields[i].name_len, &ids[i]) < 0)
			return -1;
	}
	return 0;
}

int kg_who_add(void *who, const struct kg_conn *c)
{
	struct kg_who *w = who;
	uint32_t service, field_ids[KG_FIELDS_MAX];
	size_t size;

	if (w->finished || c->user_len > KG_USER_MAX)
		return -1;
	if (!kg_conn_in_scope(w->scope, c) || !kg_conn_matches(&w->req, c))
		return 0;
	if (kg_strpool_intern(w->services, c->service, c->service_len,
	                      &service) < 0 ||
	    intern_fields(w, c, field_ids) < 0)
		return -1;
	if ((w->n_keys == w->run_rows ||
	     STAGE_BYTES - w->stage_len < ROW_MAX) &&
	    flush_run(w) < 0)
		return -1;
	size = pack_row((uint8_t *)w->stage + w->stage_len, c, service,
	                field_ids);
	w->keys[w->n_keys++] = (struct stage_key){
	        .prefix = name_prefix(c->user, c->user_len),
	        .off = (uint32_t)w->stage_len,
	        .size = (uint32_t)size,
	};
	w->stage_len += size;
	return 0;
}

static char *row_at(const struct kg_who *w, uint32_t ref)
{
	return w->runs[ref >> RUN_OFF_BITS].rows + (ref & (STAGE_BYTES - 1));
}

static uint32_t sat_add(uint32_t a, uint32_t b)
{
	return b > UINT32_MAX - a ? UINT32_MAX : a + b;
}

/* Every collected row, folded or not, is on a listed process. */
static int count_pids(const struct kg_who *w, size_t n, uint32_t *out)
{
	uint32_t *pids = malloc(n * sizeof(*pids));
	struct kg_pidset set;
	size_t k = 0;

	if (!pids)
		return -1;
	for (size_t i = 0; i < w->n_runs; i++) {
		const char *rec = w->runs[i].rows;

		for (size_t j = 0; j < w->runs[i].n; j++) {
			struct row row;

			unpack_row(rec, &row);
			pids[k++] = row.pid;
			rec += row.size;
		}
	}
	if (kg_pidset_build(&set, pids, n) < 0)
		return -1;
	*out = (uint32_t)set.n;
	kg_pidset_free(&set);
	return 0;
}

/* The merge: a tree of losers over the runs' heads, so that each row
 * costs one comparison per level. Node i (1 <= i < k) holds the loser of
 * the match below it, node 0 the winner; leaf k + r stands for run r. A
 * head holds its current row unpacked; a run that is done loses every
 * match. */
struct head {
	struct prefix prefix;
	struct row row;
	char *rec;
	size_t left;
};

struct merge {
	struct head *heads;
	uint32_t *tree;
	uint32_t k;
	/* The last listed row, which an equal row folds into. */
	struct prefix last_prefix;
	struct row last;
	char *last_rec;
};

/* Whether run a's head goes before run b's; equal heads go in run order,
 * so that merging twice gives the same order. */
static bool goes_first(const struct kg_who *w, const struct merge *m,
                       uint32_t a, uint32_t b)
{
	const struct head *x = &m->heads[a];
	const struct head *y = &m->heads[b];
	int c;

	if (!x->left || !y->left)
		return x->left != 0;
	c = cmp_prefixes(&x->prefix, &y->prefix);
	if (!c)
		c = cmp_unpacked(w, &x->row, &y->row);
	return c ? c < 0 : a < b;
}

static void load_head(struct head *h)
{
	unpack_row(h->rec, &h->row);
	h->prefix = name_prefix(h->row.user, h->row.user_len);
}

/* Plays every match below node; returns the winner. The recursion is as
 * deep as the tree: log2 of the number of runs. */
static uint32_t play(const struct kg_who *w, struct merge *m, uint32_t node)
{
	uint32_t a, b;

	if (node >= m->k)
		return node - m->k;
	a = play(w, m, 2 * node);
	b = play(w, m, 2 * node + 1);
	if (goes_first(w, m, b, a)) {
		m->tree[node] = a;
		return b;
	}
	m->tree[node] = b;
	return a;
}

/* Folds run r's head row into the last listed row when they are equal in
 * every key; otherwise lists it. A folded row keeps its flag, so that
 * merging again lists the same rows with the same counts. */
static void take_row(struct kg_who *w, struct merge *m, uint32_t r,
                     uint32_t *conns)
{
	struct head *h = &m->heads[r];

	if (h->row.flags & ROW_FOLDED)
		return;
	*conns = sat_add(*conns, h->row.conns);
	if (w->n_order && cmp_prefixes(&m->last_prefix, &h->prefix) == 0 &&
	    cmp_unpacked(w, &m->last, &h->row) == 0) {
		m->last.conns = sat_add(m->last.conns, h->row.conns);
		memcpy(m->last_rec + 4, &m->last.conns, 4);
		h->rec[8] |= ROW_FOLDED;
		return;
	}
	w->order[w->n_order++] =
	        r << RUN_OFF_BITS | (uint32_t)(h->rec - w->runs[r].rows);
	m->last_prefix = h->prefix;
	m->last = h->row;
	m->last_rec = h->rec;
}

/* Lists the winner's row, advances its run and replays its path. */
static void pop_row(struct kg_who *w, struct merge *m, uint32_t *conns)
{
	uint32_t r = m->tree[0];
	struct head *h = &m->heads[r];

	take_row(w, m, r, conns);
	if (--h->left > 0) {
		h->rec += h->row.size;
		load_head(h);
	}
	for (uint32_t node = (r + m->k) / 2; node > 0; node /= 2) {
		if (goes_first(w, m, m->tree[node], r)) {
			uint32_t t = m->tree[node];

			m->tree[node] = r;
			r = t;
		}
	}
	m->tree[0] = r;
}

static int merge_runs(struct kg_who *w, size_t n_rows, uint32_t *conns)
{
	struct merge m = {
	        .heads = malloc(w->n_runs * sizeof(*m.heads)),
	        .tree = malloc(w->n_runs * sizeof(*m.tree)),
	        .k = (uint32_t)w->n_runs,
	};

	w->order = malloc(n_rows * sizeof(*w->order));
	if (!m.heads || !m.tree || !w->order) {
		free(m.heads);
		free(m.tree);
		return -1;
	}
	for (size_t i = 0; i < w->n_runs; i++) {
		m.heads[i] = (struct head){.rec = w->runs[i].rows,
		                           .left = w->runs[i].n};
		load_head(&m.heads[i]);
	}
	m.tree[0] = play(w, &m, 1);
	for (size_t i = 0; i < n_rows; i++)
		pop_row(w, &m, conns);
	free(m.heads);
	free(m.tree);
	return 0;
}

int kg_who_finish(struct kg_who *w, struct kg_who_result *out)
{
	size_t n_rows = 0;

	free(w->order);
	w->order = NULL;
	w->n_order = 0;
	w->cursor->next = 0;
	memset(out, 0, sizeof(*out));
	if (!w->finished && flush_run(w) < 0)
		return -1;
	w->finished = true;
	drop_stage(w);
	for (size_t i = 0; i < w->n_runs; i++)
		n_rows += w->runs[i].n;
	if (!n_rows)
		return 0;
	if (count_pids(w, n_rows, &out->pids) < 0 ||
	    merge_runs(w, n_rows, &out->conns) < 0)
		return -1;
	out->n_rows = w->n_order;
	return 0;
}

static bool same_user(const struct row *r, const char *name, size_t len)
{
	return r->user_len == len && memcmp(r->user, name, len) == 0;
}

/* Rows of one user share the name of the first of them. */
static const char *shared_name(const struct kg_who *w, size_t i,
                               const struct row *r)
{
	struct row prev;
	size_t j = i;

	if (i > 0 && w->cursor->next == i)
		return same_user(r, w->cursor->name, w->cursor->name_len)
		               ? w->cursor->name
		               : r->user;
	/* Out of order: walk back to the first row of the group. */
	while (j > 0) {
		unpack_row(row_at(w, w->order[j - 1]), &prev);
		if (!same_user(r, prev.user, prev.user_len))
			break;
		j--;
	}
	if (j == i)
		return r->user;
	unpack_row(row_at(w, w->order[j]), &prev);
	return prev.user;
}

/* A row's Dovecot 2.4 part, its fields into the cursor's array. */
static void put_v2(const struct kg_who *w, const struct row *r,
                   struct kg_who_row *out)
{
	const uint8_t *p = r->fields;

	out->has_guid = r->guid != NULL;
	out->dest.family = KG_AF_NONE;
	out->fields = w->cursor->fields;
	out->n_fields = 0;
	if (!r->guid)
		return;
	memcpy(out->guid, r->guid, 16);
	kg_addr_set(&out->dest, r->dest_family, r->dest);
	for (uint8_t i = 0; i < r->n_fields; i++) {
		struct kg_field *f = &w->cursor->fields[i];
		struct kg_str name;
		uint32_t id;

		p += get_varint(p, &id);
		name = kg_strpool_get(w->field_names, id);
		*f = (struct kg_field){name.s, name.len, (const char *)p + 1,
		                       p[0]};
		p += 1 + p[0];
	}
	out->n_fields = r->n_fields;
}

void kg_who_row(const struct kg_who *w, size_t i, struct kg_who_row *out)
{
	struct row r;
	struct kg_str service;

	unpack_row(row_at(w, w->order[i]), &r);
	put_v2(w, &r, out);
	service = kg_strpool_get(w->services, r.service);
	out->pid = r.pid;
	out->conns = r.conns;
	kg_addr_set(&out->addr, row_family(&r), r.addr);
	out->service = service.s;
	out->service_len = service.len;
	out->user = shared_name(w, i, &r);
	out->user_len = r.user_len;
	w->cursor->next = i + 1;
	w->cursor->name = out->user;
	w->cursor->name_len = out->user_len;
}

void kg_who_free(struct kg_who *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_runs; i++)
		free(w->runs[i].rows);
	free(w->runs);
	free(w->order);
	free(w->cursor);
	drop_stage(w);
	kg_strpool_free(w->services);
	kg_strpool_free(w->field_names);
	free(w);
}
