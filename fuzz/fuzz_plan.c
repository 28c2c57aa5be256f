/* SPDX-License-Identifier: MIT */
/* Property: on small dumps with shared processes, connections outside
 * the caller's scope and unreadable lines, the kick planner decides what
 * plan.h's rules, restated line by line in tests/reference/, decide: the
 * verdict, the pids, the kicked or warned users and every counter; and
 * narrowing a kick to some of its processes (kg_plan_restrict) narrows
 * the users and connections as the rules say. Input: fuzz/dump_input.h;
 * its extra byte picks the processes kept. */
#include <stdlib.h>
#include <string.h>

#include "broker/plan.h"
#include "fuzz/dump_input.h"
#include "tests/reference/dump_reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A pid the dump never holds, which kg_plan_restrict must ignore. */
#define PID_NOT_PLANNED 9

static void same_names(const struct kg_str *got, size_t n,
                       const struct plan_reference *want)
{
	if (n != want->n_names)
		abort();
	for (size_t i = 0; i < n; i++)
		if (got[i].len != want->names[i].len ||
		    memcmp(got[i].s, want->names[i].s, got[i].len) != 0)
			abort();
}

static void compare(const struct kg_plan_result *got,
                    const struct plan_reference *want)
{
	bool warn = want->verdict == KG_PLAN_NEED_FORCE;

	if (got->verdict != want->verdict || got->n_pids != want->n_pids ||
	    (got->n_pids > 0 &&
	     memcmp(got->pids, want->pids, got->n_pids * sizeof(uint32_t))) ||
	    got->conns_matched != want->conns_matched ||
	    got->conns_kicked != want->conns_kicked ||
	    got->outside_scope != want->outside_scope ||
	    got->unreadable != want->unreadable ||
	    got->unplaced != want->unplaced)
		abort();
	if ((warn ? got->n_kicked : got->n_warn) != 0)
		abort();
	if (warn)
		same_names(got->warn, got->n_warn, want);
	else
		same_names(got->kicked, got->n_kicked, want);
}

/* Keeps the planned pids whose bit is set in mask, and with the top bit
 * a pid that was never planned. */
static size_t pick(const struct kg_plan_result *r, uint8_t mask, uint32_t *keep)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_pids; i++)
		if (mask & (1u << (i % 7)))
			keep[n++] = r->pids[i];
	if (mask & 0x80)
		keep[n++] = PID_NOT_PLANNED;
	return n;
}

static void check_restrict(struct kg_plan *p, const struct dump_input *in,
                           struct kg_plan_result *r)
{
	uint32_t keep[DUMP_INPUT_LINES + 1];
	size_t n_keep = pick(r, in->extra, keep);
	struct plan_reference want;

	if (kg_plan_restrict(p, keep, n_keep, r) != 0)
		abort();
	plan_reference_run(&in->req, &in->scope, in->lines, in->n_lines, keep,
	                   n_keep, &want);
	compare(r, &want);
	plan_reference_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dump_input in;
	struct kg_plan_result got;
	struct plan_reference want;
	struct kg_plan *p;

	dump_input_decode(data, size, KG_OP_KICK, &in);
	p = kg_plan_new(&in.req, &in.scope);
	if (p == NULL)
		abort();
	for (size_t i = 0; i < in.n_lines; i++) {
		const struct kg_conn *c = &in.lines[i].conn;
		int rc = in.lines[i].unreadable
		                 ? kg_plan_unreadable(p, c->pid, c->refcount)
		                 : kg_plan_add(p, c);

		if (rc != 0)
			abort();
	}
	if (kg_plan_finish(p, &got) != 0)
		abort();
	plan_reference_run(&in.req, &in.scope, in.lines, in.n_lines, NULL, 0,
	                   &want);
	compare(&got, &want);
	plan_reference_free(&want);
	if (got.verdict == KG_PLAN_KICK)
		check_restrict(p, &in, &got);
	kg_plan_free(p);
	return 0;
}
