/* SPDX-License-Identifier: MIT */
/* Property: on small dumps, sorted in runs of one to four rows so that
 * every listing goes through the merge of runs, the who collector lists
 * what who.h's rules, restated line by line in tests/reference/, list:
 * the same rows in the same order with the same counts, the same totals,
 * and again when finished a second time; rows of one user share its
 * name, read forwards or backwards. Input: fuzz/dump_input.h, whose
 * unreadable lines the collector never sees; its extra byte picks the
 * run size. */
#include <stdlib.h>
#include <string.h>

#include "broker/who.h"
#include "fuzz/dump_input.h"
#include "tests/reference/dump_reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RUN_ROWS_MAX 4

static bool same_str(const char *s, size_t len, struct kg_str want)
{
	return len == want.len && memcmp(s, want.s, len) == 0;
}

static void same_row(const struct kg_who_row *got,
                     const struct who_reference_row *want)
{
	size_t alen = kg_family_len(want->addr.family);

	if (!same_str(got->user, got->user_len, want->user) ||
	    !same_str(got->service, got->service_len, want->service) ||
	    got->pid != want->pid || got->conns != want->conns ||
	    got->addr.family != want->addr.family ||
	    memcmp(got->addr.bytes, want->addr.bytes, alen) != 0)
		abort();
}

/* Reads every row, forwards or backwards; a row of the same user as the
 * one read just before carries the same name pointer. */
static void check_rows(const struct kg_who *w, const struct who_reference *want,
                       bool backwards)
{
	struct kg_who_row row, prev;

	for (size_t k = 0; k < want->n_rows; k++) {
		size_t i = backwards ? want->n_rows - 1 - k : k;

		kg_who_row(w, i, &row);
		same_row(&row, &want->rows[i]);
		if (k > 0 && row.user_len == prev.user_len &&
		    memcmp(row.user, prev.user, row.user_len) == 0 &&
		    row.user != prev.user)
			abort();
		prev = row;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dump_input in;
	struct kg_conn conns[DUMP_INPUT_LINES];
	struct who_reference want;
	struct kg_who_result got;
	struct kg_who *w;
	size_t n = 0;

	dump_input_decode(data, size, KG_OP_WHO, &in);
	w = kg_who_new_runs(&in.req, &in.scope, 1 + in.extra % RUN_ROWS_MAX);
	if (w == NULL)
		abort();
	for (size_t i = 0; i < in.n_lines; i++) {
		if (in.lines[i].unreadable)
			continue;
		conns[n] = in.lines[i].conn;
		if (kg_who_add(w, &conns[n++]) != 0)
			abort();
	}
	who_reference_run(&in.req, &in.scope, conns, n, &want);
	for (int round = 0; round < 2; round++) {
		if (kg_who_finish(w, &got) != 0 || got.n_rows != want.n_rows ||
		    got.conns != want.conns || got.pids != want.pids)
			abort();
		check_rows(w, &want, round == 1);
	}
	who_reference_free(&want);
	kg_who_free(w);
	return 0;
}
