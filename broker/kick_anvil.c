/* SPDX-License-Identifier: MIT */
/* Kicks anvil carries out; see kick_anvil.h. */
#include "broker/kick_anvil.h"

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msort.h"
#include "broker/pidset.h"
#include "broker/strarena.h"
#include "proto/clock.h"

/* Between two looks at anvil's dump while kicked connections linger. */
#define LOOK_EVERY_MS 25

static int ask_anvil(struct kg_job *job, const struct kg_anvil_kick *k,
                     size_t n, char *err, size_t errlen)
{
	struct kg_anvil_target t;
	size_t answered;
	enum kg_anvil_status st;

	kg_job_target(job, &t);
	st = kg_anvil_kick(&t, job->anvil, k, n, &answered, err, errlen);
	if (st != KG_ANVIL_OK && answered == 0)
		return -1;
	return (int)answered;
}

static void sleep_ms(int ms)
{
	poll(NULL, 0, ms);
}

const struct kg_anvil_ops kg_anvil_system = {
        .kick = ask_anvil,
        .redump = kg_job_dump,
        .pause = sleep_ms,
        .now_ms = kg_now_ms,
};

/* A planned connection, by GUID, and whether the last dump listed it. */
struct watched {
	uint8_t guid[16];
	size_t unit; /* index into the result's pids */
	bool present;
};

struct watch {
	const struct kg_plan_result *res;
	struct watched *v;
	size_t n;
	size_t cap;
	size_t present;
};

static size_t unit_index(const struct kg_plan_result *res, uint32_t unit)
{
	size_t lo = 0, hi = res->n_pids;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (res->pids[mid] <= unit)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int watch_add(void *ctx, uint32_t unit, const uint8_t *guid)
{
	struct watch *w = ctx;

	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct watched *v = realloc(w->v, cap * sizeof(*v));

		if (!v)
			return -1;
		w->v = v;
		w->cap = cap;
	}
	memcpy(w->v[w->n].guid, guid, 16);
	w->v[w->n].unit = unit_index(w->res, unit);
	w->v[w->n++].present = true;
	return 0;
}

static int cmp_guid(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	return memcmp(a, b, 16);
}

static int watch_build(struct watch *w, const struct kg_plan *plan)
{
	struct watched *scratch;

	if (kg_plan_each_guid(plan, w->res->pids, w->res->n_pids, watch_add,
	                      w) != 0)
		return -1;
	scratch = malloc((w->n + 1) * sizeof(*scratch));
	if (!scratch)
		return -1;
	kg_msort(w->v, scratch, w->n, sizeof(*w->v), cmp_guid, NULL);
	free(scratch);
	w->present = w->n;
	return 0;
}

static int see_conn(void *ctx, const struct kg_conn *c)
{
	struct watch *w = ctx;
	size_t lo = 0, hi = w->n;

	if (!c->has_guid)
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = memcmp(c->guid, w->v[mid].guid, 16);

		if (d == 0) {
			w->present += !w->v[mid].present;
			w->v[mid].present = true;
			return 0;
		}
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

static int look(struct kg_job *job, const struct kg_anvil_ops *ops,
                struct watch *w, char *err, size_t errlen)
{
	const struct kg_dump_sink sink = {see_conn, NULL, w};

	for (size_t i = 0; i < w->n; i++)
		w->v[i].present = false;
	w->present = 0;
	return ops->redump(job, &sink, err, errlen);
}

/* Looks until every watched connection is gone or the time is up. A
 * look that fails leaves every connection counted as still there:
 * nothing is reported gone that was not seen gone. */
static void confirm(struct kg_job *job, const struct kg_anvil_ops *ops,
                    struct watch *w, struct kg_anvil_outcome *out)
{
	int64_t deadline = ops->now_ms() + job->cfg->kick_confirm_ms;
	char err[KG_ERRTEXT_MAX + 1];

	for (;;) {
		int64_t left;

		if (look(job, ops, w, err, sizeof(err)) < 0) {
			for (size_t i = 0; i < w->n; i++)
				w->v[i].present = true;
			w->present = w->n;
			snprintf(out->err, sizeof(out->err),
			         "cannot tell which connections went: %.400s",
			         err);
			return;
		}
		left = deadline - ops->now_ms();
		if (w->present == 0 || left <= 0)
			return;
		ops->pause(left < LOOK_EVERY_MS ? (int)left : LOOK_EVERY_MS);
	}
}

static int cmp_names(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	return kg_str_cmp(*(const struct kg_str *)a, *(const struct kg_str *)b);
}

/* Sorts names[0..*n) and drops repeats. */
static int sort_unique(struct kg_str *names, size_t *n)
{
	struct kg_str *scratch = malloc((*n + 1) * sizeof(*scratch));
	size_t k = 0;

	if (!scratch)
		return -1;
	kg_msort(names, scratch, *n, sizeof(*names), cmp_names, NULL);
	free(scratch);
	for (size_t i = 0; i < *n; i++)
		if (k == 0 || kg_str_cmp(names[k - 1], names[i]) != 0)
			names[k++] = names[i];
	*n = k;
	return 0;
}

/* The users of the units with a connection gone (present false) or
 * still there (present true). */
static int names_where(struct kg_plan *plan, const struct watch *w,
                       bool present, struct kg_str **names, size_t *n)
{
	*names = malloc((w->n + 1) * sizeof(**names));
	*n = 0;
	if (!*names)
		return -1;
	for (size_t i = 0; i < w->n; i++) {
		struct kg_plan_unit u;

		if (w->v[i].present != present)
			continue;
		kg_plan_unit(plan, w->res->pids[w->v[i].unit], &u);
		(*names)[(*n)++] = u.user;
	}
	return sort_unique(*names, n);
}

/* The processes of the units, each once. */
static int real_pids(struct kg_plan *plan, const struct kg_plan_result *res,
                     struct kg_anvil_outcome *out)
{
	uint32_t *pids = malloc((res->n_pids + 1) * sizeof(*pids));
	struct kg_pidset set;

	if (!pids)
		return -1;
	for (size_t i = 0; i < res->n_pids; i++) {
		struct kg_plan_unit u;

		kg_plan_unit(plan, res->pids[i], &u);
		pids[i] = u.pid;
	}
	if (kg_pidset_build(&set, pids, res->n_pids) < 0)
		return -1;
	out->pids = malloc((set.n + 1) * sizeof(*out->pids));
	if (out->pids) {
		memcpy(out->pids, set.pids, set.n * sizeof(*out->pids));
		out->n_pids = set.n;
	}
	kg_pidset_free(&set);
	return out->pids ? 0 : -1;
}

static struct kg_anvil_kick *commands(struct kg_plan *plan,
                                      const struct kg_plan_result *res)
{
	struct kg_anvil_kick *k = malloc((res->n_pids + 1) * sizeof(*k));

	for (size_t i = 0; k != NULL && i < res->n_pids; i++) {
		struct kg_plan_unit u;

		kg_plan_unit(plan, res->pids[i], &u);
		k[i] = (struct kg_anvil_kick){u.user.s, u.user.len, u.guid};
	}
	return k;
}

/* Anvil's answer to the commands: a failure before any was answered
 * is reported, and the dumps still say what happened. */
static int ask(struct kg_job *job, const struct kg_anvil_ops *ops,
               struct kg_plan *plan, const struct kg_plan_result *res,
               struct kg_anvil_outcome *out)
{
	struct kg_anvil_kick *k = commands(plan, res);
	char err[KG_ERRTEXT_MAX + 1];
	int answered;

	if (!k)
		return -1;
	answered = ops->kick(job, k, res->n_pids, err, sizeof(err));
	free(k);
	if (answered < 0)
		snprintf(out->err, sizeof(out->err),
		         "anvil did not kick: %.400s", err);
	else if ((size_t)answered < res->n_pids)
		snprintf(out->err, sizeof(out->err),
		         "anvil answered %d of %zu kick commands", answered,
		         res->n_pids);
	return 0;
}

static int report(struct kg_plan *plan, struct watch *w,
                  struct kg_anvil_outcome *out)
{
	out->planned = (uint32_t)w->n;
	out->gone = (uint32_t)(w->n - w->present);
	if (names_where(plan, w, false, &out->kicked, &out->n_kicked) < 0 ||
	    names_where(plan, w, true, &out->remained, &out->n_remained) < 0)
		return -1;
	return 0;
}

int kg_kick_by_anvil(struct kg_job *job, const struct kg_anvil_ops *ops,
                     struct kg_plan *plan, const struct kg_plan_result *res,
                     struct kg_anvil_outcome *out)
{
	struct watch w = {.res = res};
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (watch_build(&w, plan) < 0 || real_pids(plan, res, out) < 0)
		goto done;
	if (job->req.flags & KG_REQ_DRY_RUN) {
		/* Nothing is asked: every planned connection is "present",
		 * and its users are the ones the kick would take. */
		rc = names_where(plan, &w, true, &out->kicked, &out->n_kicked);
		out->planned = (uint32_t)w.n;
		goto done;
	}
	if (ask(job, ops, plan, res, out) < 0)
		goto done;
	confirm(job, ops, &w, out);
	rc = report(plan, &w, out);
done:
	free(w.v);
	return rc;
}

void kg_anvil_outcome_free(struct kg_anvil_outcome *out)
{
	free(out->pids);
	free(out->kicked);
	free(out->remained);
	memset(out, 0, sizeof(*out));
}
