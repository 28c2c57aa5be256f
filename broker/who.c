#include "who.h"

#include <stdlib.h>
#include <string.h>

#include "chunkarr.h"
#include "match.h"
#include "pidset.h"
#include "strpool.h"

struct who_row {
	uint32_t pid;
	uint32_t conns;
	uint32_t user; /* ids in kg_who.strs */
	uint32_t service;
	struct kg_addr addr;
};

struct kg_who {
	struct kg_request req;
	const struct kg_scope *scope;
	struct kg_strpool *strs; /* user and service names */
	struct kg_chunkarr rows; /* struct who_row, in dump order */
	const uint32_t *rank;    /* while sorting: string id -> bytewise rank */
	uint32_t *order;         /* indexes into rows, sorted, one per row */
	size_t n_order;
};

struct kg_who *kg_who_new(const struct kg_request *req,
                          const struct kg_scope *scope)
{
	struct kg_who *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->req = *req;
	w->scope = scope;
	kg_chunkarr_init(&w->rows, sizeof(struct who_row));
	w->strs = kg_strpool_new();
	if (!w->strs) {
		free(w);
		return NULL;
	}
	return w;
}

int kg_who_add(void *who, const struct kg_conn *c)
{
	struct kg_who *w = who;
	struct who_row *r;
	uint32_t user;
	uint32_t service;

	if (!kg_scope_contains(w->scope, c->user, c->user_len, &c->addr) ||
	    !kg_conn_matches(&w->req, c))
		return 0;
	if (kg_strpool_intern(w->strs, c->user, c->user_len, &user) < 0 ||
	    kg_strpool_intern(w->strs, c->service, c->service_len, &service) <
	            0)
		return -1;
	r = kg_chunkarr_push(&w->rows);
	if (!r)
		return -1;
	r->pid = c->pid;
	r->conns = c->refcount;
	r->user = user;
	r->service = service;
	r->addr = c->addr;
	return 0;
}

static struct who_row *row_at(const struct kg_who *w, uint32_t i)
{
	return kg_chunkarr_at(&w->rows, i);
}

static int cmp_u32(uint32_t a, uint32_t b)
{
	return (a > b) - (a < b);
}

static int cmp_rows(const void *a, const void *b, void *ctx)
{
	const struct kg_who *w = ctx;
	const struct who_row *x = row_at(w, *(const uint32_t *)a);
	const struct who_row *y = row_at(w, *(const uint32_t *)b);
	int c;

	if ((c = cmp_u32(w->rank[x->user], w->rank[y->user])) ||
	    (c = cmp_u32(w->rank[x->service], w->rank[y->service])) ||
	    (c = cmp_u32(x->pid, y->pid)) ||
	    (c = cmp_u32(x->addr.family, y->addr.family)))
		return c;
	return memcmp(x->addr.bytes, y->addr.bytes,
	              kg_family_len(x->addr.family));
}

/* Sorting strings once and rows by rank keeps the row sort to integer
 * comparisons, however many rows share a name. */
static uint32_t *rank_strings(const struct kg_strpool *strs)
{
	size_t n = kg_strpool_count(strs);
	uint32_t *ids = malloc(n * sizeof(*ids));
	uint32_t *rank = malloc(n * sizeof(*rank));

	if (!ids || !rank) {
		free(ids);
		free(rank);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = (uint32_t)i;
	kg_strpool_sort(strs, ids, n);
	for (size_t i = 0; i < n; i++)
		rank[ids[i]] = (uint32_t)i;
	free(ids);
	return rank;
}

static uint32_t sat_add(uint32_t a, uint32_t b)
{
	return b > UINT32_MAX - a ? UINT32_MAX : a + b;
}

/* Folds rows equal in every key into the first of them. The refcounts
 * move, so each group's sum stays the same and sorting again finds the
 * same rows. */
static void merge_equal(struct kg_who *w, size_t n)
{
	w->n_order = 1;
	for (size_t i = 1; i < n; i++) {
		uint32_t *kept = &w->order[w->n_order - 1];
		struct who_row *r = row_at(w, *kept);
		struct who_row *dup = row_at(w, w->order[i]);

		if (cmp_rows(kept, &w->order[i], w)) {
			w->order[w->n_order++] = w->order[i];
			continue;
		}
		r->conns = sat_add(r->conns, dup->conns);
		dup->conns = 0;
	}
}

static int sort_rows(struct kg_who *w)
{
	uint32_t *rank;
	size_t n = w->rows.n;

	if (!n)
		return 0;
	if (n > UINT32_MAX)
		return -1;
	w->order = malloc(n * sizeof(*w->order));
	rank = rank_strings(w->strs);
	if (!w->order || !rank) {
		free(rank);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		w->order[i] = (uint32_t)i;
	w->rank = rank;
	qsort_r(w->order, n, sizeof(*w->order), cmp_rows, w);
	merge_equal(w, n);
	w->rank = NULL;
	free(rank);
	return 0;
}

static int count_pids(const struct kg_who *w, uint32_t *out)
{
	struct kg_pidset set;
	uint32_t *pids;

	*out = 0;
	if (!w->n_order)
		return 0;
	pids = malloc(w->n_order * sizeof(*pids));
	if (!pids)
		return -1;
	for (size_t i = 0; i < w->n_order; i++)
		pids[i] = row_at(w, w->order[i])->pid;
	if (kg_pidset_build(&set, pids, w->n_order) < 0)
		return -1;
	*out = (uint32_t)set.n;
	kg_pidset_free(&set);
	return 0;
}

int kg_who_finish(struct kg_who *w, struct kg_who_result *out)
{
	free(w->order);
	w->order = NULL;
	w->n_order = 0;
	memset(out, 0, sizeof(*out));
	kg_strpool_freeze(w->strs);
	if (sort_rows(w) < 0 || count_pids(w, &out->pids) < 0)
		return -1;
	for (size_t i = 0; i < w->n_order; i++)
		out->conns = sat_add(out->conns, row_at(w, w->order[i])->conns);
	out->n_rows = w->n_order;
	return 0;
}

void kg_who_row(const struct kg_who *w, size_t i, struct kg_who_row *out)
{
	const struct who_row *r = row_at(w, w->order[i]);
	struct kg_str user = kg_strpool_get(w->strs, r->user);
	struct kg_str service = kg_strpool_get(w->strs, r->service);

	out->pid = r->pid;
	out->conns = r->conns;
	out->addr = r->addr;
	out->service = service.s;
	out->service_len = service.len;
	out->user = user.s;
	out->user_len = user.len;
}

void kg_who_free(struct kg_who *w)
{
	if (!w)
		return;
	free(w->order);
	kg_strpool_free(w->strs);
	kg_chunkarr_free(&w->rows);
	free(w);
}
