/* SPDX-License-Identifier: MIT */
/* The who collector at scale: enough rows for many sorted runs, so that
 * the order, the folding of equal rows, the counts and the shared names
 * all go through the merge of runs. Checked against a direct sort of the
 * same connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/who.h"
#include "tests/unit/testutil.h"

/* Several runs' worth of rows, over fewer names, so most names have rows
 * in more than one run. */
#define N_CONNS  150000
#define N_NAMES  40000
#define NAME_CAP 40

static const char *const services[] = {"pop3", "imap", "submission"};
static const char *const addrs[] = {NULL, "192.0.2.1", "192.0.2.10",
                                    "2001:db8::1", "10.1.2.3"};

struct ref_conn {
	char user[NAME_CAP];
	unsigned service; /* index into services, whose order is bytewise */
	uint32_t pid;
	struct kg_addr addr;
	uint32_t refcount;
};

static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Names of different lengths sharing long starts, some past the eight
 * bytes the collector compares first. */
static void make_conn(struct ref_conn *c, uint32_t *rng)
{
	uint32_t r = next_rand(rng);
	unsigned name = r % N_NAMES;

	snprintf(c->user, sizeof(c->user), "%s%u",
	         name % 3 ? "user" : "longsharedprefix.",
	         name % 7 ? name : name / 7);
	c->service = (r >> 16) % 3;
	c->pid = 1 + next_rand(rng) % 5000;
	c->addr = tu_addr(addrs[next_rand(rng) % 5]);
	c->refcount = 1 + (next_rand(rng) % 3 == 0);
}

static int cmp_ref(const void *a, const void *b)
{
	const struct ref_conn *x = a;
	const struct ref_conn *y = b;
	int c = strcmp(x->user, y->user);

	if (c)
		return c;
	if (x->service != y->service)
		return strcmp(services[x->service], services[y->service]);
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->addr.family != y->addr.family)
		return x->addr.family < y->addr.family ? -1 : 1;
	return memcmp(x->addr.bytes, y->addr.bytes, 16);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

struct expected {
	struct ref_conn *rows; /* folded */
	size_t n_rows;
	uint32_t conns;
	uint32_t pids;
};

static void fold(struct ref_conn *v, size_t n, struct expected *e)
{
	uint32_t *pids = malloc(n * sizeof(*pids));

	assert_non_null(pids);
	for (size_t i = 0; i < n; i++)
		pids[i] = v[i].pid;
	qsort(pids, n, sizeof(*pids), cmp_u32);
	e->pids = n > 0;
	for (size_t i = 1; i < n; i++)
		e->pids += pids[i] != pids[i - 1];
	free(pids);
	qsort(v, n, sizeof(*v), cmp_ref);
	e->rows = v;
	e->n_rows = 0;
	e->conns = 0;
	for (size_t i = 0; i < n; i++) {
		e->conns += v[i].refcount;
		if (e->n_rows && cmp_ref(&v[e->n_rows - 1], &v[i]) == 0)
			v[e->n_rows - 1].refcount += v[i].refcount;
		else
			v[e->n_rows++] = v[i];
	}
}

static void assert_row_is(const struct kg_who_row *got,
                          const struct ref_conn *want)
{
	assert_int_equal(got->user_len, strlen(want->user));
	assert_memory_equal(got->user, want->user, got->user_len);
	assert_int_equal(got->service_len, strlen(services[want->service]));
	assert_memory_equal(got->service, services[want->service],
	                    got->service_len);
	assert_int_equal(got->pid, want->pid);
	assert_memory_equal(&got->addr, &want->addr, sizeof(got->addr));
	assert_int_equal(got->conns, want->refcount);
}

/* Every connection added twice over (same keys), in two passes, so that
 * equal rows land in different runs and must fold in the merge. */
static struct kg_who *collect(struct ref_conn *v, const char *glob)
{
	struct kg_request req = tu_request(KG_OP_WHO, glob, NULL, 0);
	struct kg_who *w = kg_who_new(&req, &tu_scope_all);

	assert_non_null(w);
	for (size_t pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < N_CONNS; i++) {
			struct ref_conn *c = &v[i];
			struct kg_conn k = tu_conn(c->pid, services[c->service],
			                           c->user, NULL, c->refcount);

			k.addr = c->addr;
			assert_int_equal(kg_who_add(w, &k), 0);
		}
	return w;
}

static struct ref_conn *make_conns(void)
{
	struct ref_conn *v = calloc(2 * N_CONNS, sizeof(*v));
	uint32_t rng = 0x9e3779b9u;

	assert_non_null(v);
	for (size_t i = 0; i < N_CONNS; i++) {
		make_conn(&v[i], &rng);
		v[N_CONNS + i] = v[i];
	}
	return v;
}

static void test_who_runs_match_a_direct_sort(void **state)
{
	struct ref_conn *v = make_conns();
	struct kg_who *w = collect(v, NULL);
	struct kg_who_result r;
	struct expected e;

	(void)state;
	fold(v, 2 * N_CONNS, &e);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(kg_who_finish(w, &r), 0);
		assert_int_equal(r.n_rows, e.n_rows);
		assert_int_equal(r.conns, e.conns);
		assert_int_equal(r.pids, e.pids);
		for (size_t i = 0; i < e.n_rows; i++) {
			struct kg_who_row row;

			kg_who_row(w, i, &row);
			assert_row_is(&row, &e.rows[i]);
		}
	}
	kg_who_free(w);
	free(v);
}

static void test_who_runs_share_names_in_any_read_order(void **state)
{
	struct ref_conn *v = make_conns();
	struct kg_who *w = collect(v, "user1*");
	struct kg_who_result r;
	const char **first = NULL;

	(void)state;
	assert_int_equal(kg_who_finish(w, &r), 0);
	assert_true(r.n_rows > 1000);
	first = calloc(r.n_rows, sizeof(*first));
	assert_non_null(first);
	/* In order: each row names the first row of its user's group. */
	for (size_t i = 0; i < r.n_rows; i++) {
		struct kg_who_row row, prev;

		kg_who_row(w, i, &row);
		first[i] = row.user;
		if (i == 0)
			continue;
		kg_who_row(w, i - 1, &prev);
		kg_who_row(w, i, &row);
		if (prev.user_len == row.user_len &&
		    memcmp(prev.user, row.user, row.user_len) == 0)
			assert_ptr_equal(prev.user, row.user);
		else
			assert_ptr_not_equal(prev.user, row.user);
	}
	/* Backwards, the same pointers. */
	for (size_t i = r.n_rows; i-- > 0;) {
		struct kg_who_row row;

		kg_who_row(w, i, &row);
		assert_ptr_equal(row.user, first[i]);
	}
	free(first);
	kg_who_free(w);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_who_runs_match_a_direct_sort),
	        cmocka_unit_test(test_who_runs_share_names_in_any_read_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
