/* SPDX-License-Identifier: MIT */
#include "tests/reference/dump_reference.h"

#include <stdlib.h>
#include <string.h>

#include "tests/reference/match_reference.h"

#define PID_VALID_MAX 0x7fffffffu

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n > 0 ? n : 1, size);

	if (p == NULL)
		abort();
	return p;
}

static uint32_t clamp(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Bytewise, a string before every longer one it starts. */
static int str_order(struct kg_str a, struct kg_str b)
{
	for (size_t i = 0; i < a.len && i < b.len; i++)
		if (a.s[i] != b.s[i])
			return (unsigned char)a.s[i] < (unsigned char)b.s[i]
			               ? -1
			               : 1;
	return (a.len > b.len) - (a.len < b.len);
}

static struct kg_str user_of(const struct kg_conn *c)
{
	return (struct kg_str){c->user, c->user_len};
}

/* ------------------------------------------------------------ the plan */

/* What one line is to the plan. */
struct judged {
	const struct plan_reference_line *line;
	bool in;      /* a readable connection inside the scope */
	bool matches; /* in, and named by the request */
	bool placed;  /* its process is known */
};

static bool pid_matched(const struct judged *j, size_t n, uint32_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (j[i].matches && j[i].line->conn.pid == pid)
			return true;
	return false;
}

static bool pid_kept(const uint32_t *keep, size_t n_keep, uint32_t pid)
{
	if (keep == NULL)
		return true;
	for (size_t i = 0; i < n_keep; i++)
		if (keep[i] == pid)
			return true;
	return false;
}

static void add_name(struct plan_reference *r, struct kg_str name)
{
	size_t at = 0;

	for (size_t i = 0; i < r->n_names; i++)
		if (str_order(r->names[i], name) == 0)
			return;
	while (at < r->n_names && str_order(r->names[at], name) < 0)
		at++;
	memmove(r->names + at + 1, r->names + at,
	        (r->n_names - at) * sizeof(*r->names));
	r->names[at] = name;
	r->n_names++;
}

static void add_pid(struct plan_reference *r, uint32_t pid)
{
	size_t at = 0;

	for (size_t i = 0; i < r->n_pids; i++)
		if (r->pids[i] == pid)
			return;
	while (at < r->n_pids && r->pids[at] < pid)
		at++;
	memmove(r->pids + at + 1, r->pids + at,
	        (r->n_pids - at) * sizeof(*r->pids));
	r->pids[at] = pid;
	r->n_pids++;
}

/* Counts the lines on matched processes that no kick may touch and says
 * whether one of those processes is shared. */
static bool tally(const struct judged *j, size_t n, struct plan_reference *r)
{
	uint64_t outside = 0, unreadable = 0, unplaced = 0;
	bool shared = false;

	for (size_t i = 0; i < n; i++) {
		const struct plan_reference_line *l = j[i].line;

		if (!j[i].placed) {
			unplaced++;
			continue;
		}
		if (!pid_matched(j, n, l->conn.pid))
			continue;
		if (!j[i].in)
			outside += l->conn.refcount;
		if (l->unreadable)
			unreadable += l->conn.refcount;
		shared |= j[i].in && !j[i].matches;
	}
	r->outside_scope = clamp(outside);
	r->unreadable = clamp(unreadable);
	r->unplaced = clamp(unplaced);
	return shared;
}

/* The users a kick names (every in-scope one on a kept matched process)
 * or a warning names (those not matching, on any matched process). */
static void collect(const struct judged *j, size_t n, bool warn,
                    const uint32_t *keep, size_t n_keep,
                    struct plan_reference *r, uint64_t *kicked)
{
	*kicked = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t pid = j[i].line->conn.pid;

		if (!j[i].placed || !pid_matched(j, n, pid) ||
		    (!warn && !pid_kept(keep, n_keep, pid)))
			continue;
		*kicked += j[i].line->conn.refcount;
		if (j[i].in && !(warn && j[i].matches))
			add_name(r, user_of(&j[i].line->conn));
	}
}

void plan_reference_run(const struct kg_request *req,
                        const struct kg_scope *scope,
                        const struct plan_reference_line *lines, size_t n,
                        const uint32_t *keep, size_t n_keep,
                        struct plan_reference *out)
{
	struct judged *j = xcalloc(n, sizeof(*j));
	uint64_t matched = 0, kicked = 0;
	bool shared, any = false;

	memset(out, 0, sizeof(*out));
	out->pids = xcalloc(n, sizeof(*out->pids));
	out->names = xcalloc(n, sizeof(*out->names));
	for (size_t i = 0; i < n; i++) {
		const struct kg_conn *c = &lines[i].conn;

		j[i].line = &lines[i];
		j[i].placed = c->pid >= 1 && c->pid <= PID_VALID_MAX;
		j[i].in = !lines[i].unreadable &&
		          match_reference_in_scope(scope, c);
		j[i].matches = j[i].in && match_reference_matches(req, c);
		matched += j[i].matches ? c->refcount : 0;
		any |= j[i].matches;
	}
	out->conns_matched = clamp(matched);
	out->verdict = KG_PLAN_NO_MATCH;
	if (any) {
		shared = tally(j, n, out);
		if (out->outside_scope || out->unplaced)
			out->verdict = KG_PLAN_BLOCKED;
		else if (shared && !(req->flags & KG_REQ_FORCE))
			out->verdict = KG_PLAN_NEED_FORCE;
		else
			out->verdict = KG_PLAN_KICK;
	}
	if (out->verdict == KG_PLAN_KICK || out->verdict == KG_PLAN_NEED_FORCE)
		collect(j, n, out->verdict == KG_PLAN_NEED_FORCE, keep, n_keep,
		        out, &kicked);
	if (out->verdict == KG_PLAN_KICK) {
		/* Every planned pid, whatever keep holds. */
		for (size_t i = 0; i < n; i++)
			if (j[i].placed && pid_matched(j, n, lines[i].conn.pid))
				add_pid(out, lines[i].conn.pid);
		out->conns_kicked = clamp(kicked);
	}
	free(j);
}

void plan_reference_free(struct plan_reference *r)
{
	free(r->pids);
	free(r->names);
}

/* ----------------------------------------------------------- the listing */

static int u32_order(uint32_t a, uint32_t b)
{
	return (a > b) - (a < b);
}

static int addr_order(const struct kg_addr *a, const struct kg_addr *b)
{
	size_t len = a->family == KG_AF_INET    ? 4
	             : a->family == KG_AF_INET6 ? 16
	                                        : 0;
	int c = u32_order(a->family, b->family);

	for (size_t i = 0; c == 0 && i < len; i++)
		c = u32_order(a->bytes[i], b->bytes[i]);
	return c;
}

static int row_order(const struct who_reference_row *a,
                     const struct who_reference_row *b)
{
	int c = str_order(a->user, b->user);

	if (c == 0)
		c = str_order(a->service, b->service);
	if (c == 0)
		c = u32_order(a->pid, b->pid);
	return c != 0 ? c : addr_order(&a->addr, &b->addr);
}

static void add_row(struct who_reference *r, const struct kg_conn *c)
{
	struct who_reference_row row = {
	        .user = user_of(c),
	        .service = {c->service, c->service_len},
	        .pid = c->pid,
	        .addr = c->addr,
	        .conns = c->refcount,
	};
	size_t at = 0;

	for (size_t i = 0; i < r->n_rows; i++) {
		if (row_order(&r->rows[i], &row) == 0) {
			r->rows[i].conns =
			        clamp((uint64_t)r->rows[i].conns + c->refcount);
			return;
		}
	}
	while (at < r->n_rows && row_order(&r->rows[at], &row) < 0)
		at++;
	memmove(r->rows + at + 1, r->rows + at,
	        (r->n_rows - at) * sizeof(*r->rows));
	r->rows[at] = row;
	r->n_rows++;
}

static bool pid_listed_before(const struct kg_conn *listed, size_t n,
                              uint32_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (listed[i].pid == pid)
			return true;
	return false;
}

void who_reference_run(const struct kg_request *req,
                       const struct kg_scope *scope,
                       const struct kg_conn *conns, size_t n,
                       struct who_reference *out)
{
	struct kg_conn *listed = xcalloc(n, sizeof(*listed));
	uint64_t total = 0;
	size_t n_listed = 0;

	memset(out, 0, sizeof(*out));
	out->rows = xcalloc(n, sizeof(*out->rows));
	for (size_t i = 0; i < n; i++) {
		const struct kg_conn *c = &conns[i];

		if (!match_reference_in_scope(scope, c) ||
		    !match_reference_matches(req, c))
			continue;
		out->pids += !pid_listed_before(listed, n_listed, c->pid);
		listed[n_listed++] = *c;
		total += c->refcount;
		add_row(out, c);
	}
	out->conns = clamp(total);
	free(listed);
}

void who_reference_free(struct who_reference *r)
{
	free(r->rows);
}
