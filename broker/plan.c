/* SPDX-License-Identifier: MIT */
#include "broker/plan.h"

#include <stdlib.h>
#include <string.h>

#include "broker/chunkarr.h"
#include "broker/match.h"
#include "broker/msort.h"
#include "broker/pidset.h"
#include "broker/strarena.h"
#include "broker/unitmap.h"

/* A connection as the plan keeps it. One outside the scope keeps its pid
 * and refcount only: its user is KG_STRARENA_NONE and its address is never
 * stored. */
struct plan_conn {
	uint32_t pid; /* PID_MATCHED is set when the connection matches */
	uint32_t refcount;
	uint32_t user; /* in kg_plan.matched_users if matching, else users */
};

/* Pids are 1..INT_MAX, which leaves the top bit free. */
#define PID_MATCHED 0x80000000u
#define PID_MASK    0x7fffffffu

/* A matched process, indexed like kg_plan.matched.pids. */
struct plan_proc {
	uint64_t conns;      /* every connection it serves */
	uint64_t outside;    /* those outside the scope */
	uint64_t unreadable; /* those of them whose line did not parse */
	bool shared; /* serves an in-scope connection that does not match */
};

/* An in-scope connection on a matched process: the only connections whose
 * users a result can name. */
struct plan_named {
	uint32_t user;
	uint32_t proc; /* index into kg_plan.procs */
	bool matches;
};

/* Protocol 2: a unit (see unitmap.h), indexed by its number - 1. */
struct plan_unit {
	uint32_t pid;     /* the real one */
	uint32_t user;    /* in matched_users or users; NONE: outside */
	bool matches;     /* user is in matched_users */
	uint8_t guid[16]; /* of one of its connections */
};

/* Protocol 2: what a connection adds to struct plan_conn, indexed like
 * kg_plan.conns. The user's keyed hash places a connection outside the
 * scope in its unit without keeping its name. */
struct plan_conn24 {
	uint64_t user_hash;
	uint8_t guid[16];
};

/* Protocol 2: an in-scope connection's GUID, for the kick's check. */
struct plan_guid {
	uint32_t unit;
	uint8_t guid[16];
};

struct kg_plan {
	struct kg_request req;
	const struct kg_scope *scope;
	/* Protocol 2: the dump's rows carry GUIDs, and the planner's
	 * "processes" are units, one user each in one process, whose
	 * numbers stand where pids stand for protocol 1. Units are made
	 * when the plan is first finished, for the matched processes only:
	 * a dump of a hundred thousand connections that match nothing
	 * costs no map of them. A plan is by user when it holds such rows. */
	bool units_made;
	struct kg_chunkarr conns24; /* struct plan_conn24 */
	struct kg_unitmap unitmap;
	struct kg_chunkarr units; /* struct plan_unit */
	struct kg_chunkarr guids; /* struct plan_guid */
	/* In-scope user names, one per connection. They are appended, not
	 * interned: on a host with a million connections a hash lookup per
	 * dump line costs more than parsing the line, and only the names on
	 * matched processes are ever read, deduplicated at the end. Those of
	 * matching connections, nearly all the names a result reads, are
	 * kept apart, packed together instead of strewn among the others. */
	struct kg_strarena users;
	struct kg_strarena matched_users;
	struct kg_chunkarr conns; /* struct plan_conn */
	/* The pid of each matching connection, so that finishing need not
	 * look for them among all the connections. */
	struct kg_chunkarr matched_pids; /* uint32_t */
	uint64_t conns_matched; /* refcounts of the matching ones, summed */
	/* Lines that did not parse, on a known process; rare, so kept
	 * apart rather than flagged in every connection. */
	struct kg_chunkarr unreadable; /* struct kg_unreadable_conn */
	uint64_t unplaced; /* lines that did not parse, process unknown */
	/* Filled by kg_plan_finish. */
	struct kg_pidset matched;
	struct plan_proc *procs;
	struct plan_named *named;
	size_t n_named;
	struct kg_str *names; /* the result's kicked or warn list */
};

struct kg_unreadable_conn {
	uint32_t pid;
	uint32_t refcount;
};

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

struct kg_plan *kg_plan_new(const struct kg_request *req,
                            const struct kg_scope *scope)
{
	struct kg_plan *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->req = *req;
	p->scope = scope;
	kg_chunkarr_init(&p->conns, sizeof(struct plan_conn));
	kg_chunkarr_init(&p->matched_pids, sizeof(uint32_t));
	kg_chunkarr_init(&p->unreadable, sizeof(struct kg_unreadable_conn));
	kg_chunkarr_init(&p->conns24, sizeof(struct plan_conn24));
	kg_chunkarr_init(&p->units, sizeof(struct plan_unit));
	kg_chunkarr_init(&p->guids, sizeof(struct plan_guid));
	kg_unitmap_init(&p->unitmap);
	kg_strarena_init(&p->users);
	kg_strarena_init(&p->matched_users);
	return p;
}

static struct kg_strarena *arena_of(struct kg_plan *p, bool matches)
{
	return matches ? &p->matched_users : &p->users;
}

static int note_match(struct kg_plan *p, struct plan_conn *pc,
                      const struct kg_conn *c)
{
	uint32_t *mp = kg_chunkarr_push(&p->matched_pids);

	if (!mp)
		return -1;
	*mp = pc->pid;
	pc->pid |= PID_MATCHED;
	p->conns_matched += c->refcount;
	return 0;
}

/* The unit of a connection on pid (protocol 2), made on first sight; 0
 * on allocation failure. */
static uint32_t unit_of(struct kg_plan *p, uint32_t pid,
                        const struct plan_conn24 *c24)
{
	uint32_t unit = kg_unitmap_get(&p->unitmap, pid, c24->user_hash);
	struct plan_unit *u;

	if (unit == 0 || unit <= p->units.n)
		return unit;
	u = kg_chunkarr_push(&p->units);
	if (!u)
		return 0;
	*u = (struct plan_unit){.pid = pid, .user = KG_STRARENA_NONE};
	memcpy(u->guid, c24->guid, sizeof(u->guid));
	return unit;
}

/* A unit is named by the first of its connections inside the scope; a
 * matching one replaces it, so that the name comes from the arena the
 * result reads. */
static int note_unit(struct kg_plan *p, uint32_t unit,
                     const struct plan_conn24 *c, uint32_t user, bool matches)
{
	struct plan_unit *u = kg_chunkarr_at(&p->units, unit - 1);
	struct plan_guid *g = kg_chunkarr_push(&p->guids);

	if (!g)
		return -1;
	g->unit = unit;
	memcpy(g->guid, c->guid, sizeof(g->guid));
	if (u->user == KG_STRARENA_NONE || (matches && !u->matches)) {
		u->user = user;
		u->matches = matches;
		memcpy(u->guid, c->guid, sizeof(u->guid));
	}
	return 0;
}

static int add_conn24(struct kg_plan *p, const struct kg_conn *c)
{
	struct plan_conn24 *c24 = kg_chunkarr_push(&p->conns24);

	if (!c24)
		return -1;
	c24->user_hash = kg_unitmap_hash(&p->unitmap, c->user, c->user_len);
	memcpy(c24->guid, c->guid, sizeof(c24->guid));
	return 0;
}

int kg_plan_add(void *plan, const struct kg_conn *c)
{
	struct kg_plan *p = plan;
	struct plan_conn *pc;
	bool matches;

	/* A pid outside 1..INT_MAX would alias the flag bit, and pid 0 or a
	 * negative pid means a process group to kill(2). */
	if (c->pid == 0 || c->pid > PID_MASK)
		return -1;
	pc = kg_chunkarr_push(&p->conns);
	if (!pc)
		return -1;
	pc->pid = c->pid;
	if (c->has_guid && add_conn24(p, c) < 0)
		return -1;
	pc->refcount = c->refcount;
	pc->user = KG_STRARENA_NONE;
	if (!kg_conn_in_scope(p->scope, c))
		return 0;
	matches = kg_conn_matches(&p->req, c);
	if (kg_strarena_add(arena_of(p, matches), c->user, c->user_len,
	                    &pc->user) < 0)
		return -1;
	return matches ? note_match(p, pc, c) : 0;
}

int kg_plan_unreadable(void *plan, uint32_t pid, uint32_t refcount)
{
	struct kg_plan *p = plan;
	struct kg_unreadable_conn *u;

	if (pid == 0 || pid > PID_MASK) {
		p->unplaced++;
		return 0;
	}
	u = kg_chunkarr_push(&p->unreadable);
	if (!u)
		return -1;
	*u = (struct kg_unreadable_conn){pid, refcount};
	return 0;
}

static const struct plan_conn *conn_at(const struct kg_plan *p, size_t i)
{
	return kg_chunkarr_at(&p->conns, i);
}

/* The set takes over the array it is built from, and a plan may be
 * finished more than once: it is built from a copy. */
static int index_matched(struct kg_plan *p)
{
	size_t n = p->matched_pids.n;
	uint32_t *pids = malloc(n * sizeof(*pids));

	if (!pids)
		return -1;
	for (size_t i = 0; i < n; i++)
		pids[i] =
		        *(const uint32_t *)kg_chunkarr_at(&p->matched_pids, i);
	return kg_pidset_build(&p->matched, pids, n);
}

/* Protocol 2: turns the plan's connections on matched processes into
 * connections of units, the unit numbers standing for their pids, and
 * the matched set into one of units. Every other connection gets pid 0,
 * which no unit has. Done once: the plan stays in units after. */
static int make_units(struct kg_plan *p)
{
	size_t j = 0;

	if (!kg_plan_by_user(p) || p->units_made)
		return 0;
	p->units_made = true;
	for (size_t i = 0; i < p->conns.n; i++) {
		struct plan_conn *pc = kg_chunkarr_at(&p->conns, i);
		const struct plan_conn24 *c24 = kg_chunkarr_at(&p->conns24, i);
		uint32_t pid = pc->pid & PID_MASK;
		bool matches = pc->pid & PID_MATCHED;
		uint32_t unit;

		if (kg_pidset_find(&p->matched, pid) < 0) {
			pc->pid = 0;
			continue;
		}
		unit = unit_of(p, pid, c24);
		if (unit == 0 ||
		    (pc->user != KG_STRARENA_NONE &&
		     note_unit(p, unit, c24, pc->user, matches) < 0))
			return -1;
		pc->pid = unit | (matches ? PID_MATCHED : 0);
		/* matched_pids lists the matching connections' pids in the
		 * order they came. */
		if (matches)
			*(uint32_t *)kg_chunkarr_at(&p->matched_pids, j++) =
			        unit;
	}
	kg_pidset_free(&p->matched);
	return index_matched(p);
}

static void add_unreadable(struct plan_proc *proc, uint64_t refcount)
{
	proc->conns += refcount;
	proc->outside += refcount;
	proc->unreadable += refcount;
}

/* Protocol 2: a line that did not parse names a process, not a user, so
 * it may be the session of any user there: it counts against every
 * matched unit on that process. */
static int tally_unreadable_units(struct kg_plan *p)
{
	size_t n = p->matched.n;
	uint32_t *real = malloc((n + 1) * sizeof(*real));
	uint64_t *hits = calloc(n + 1, sizeof(*hits));
	struct kg_pidset set;
	int rc = -1;

	if (!real || !hits) {
		free(real);
		goto out;
	}
	for (size_t k = 0; k < n; k++)
		real[k] = ((const struct plan_unit *)kg_chunkarr_at(
		                   &p->units, p->matched.pids[k] - 1))
		                  ->pid;
	if (kg_pidset_build(&set, real, n) < 0)
		goto out;
	for (size_t i = 0; i < p->unreadable.n; i++) {
		const struct kg_unreadable_conn *u =
		        kg_chunkarr_at(&p->unreadable, i);
		ptrdiff_t k = kg_pidset_find(&set, u->pid);

		if (k >= 0)
			hits[k] += u->refcount;
	}
	for (size_t k = 0; k < n; k++) {
		const struct plan_unit *u =
		        kg_chunkarr_at(&p->units, p->matched.pids[k] - 1);

		add_unreadable(&p->procs[k],
		               hits[kg_pidset_find(&set, u->pid)]);
	}
	kg_pidset_free(&set);
	rc = 0;
out:
	free(hits);
	return rc;
}

static int tally_unreadable(struct kg_plan *p)
{
	if (kg_plan_by_user(p))
		return tally_unreadable_units(p);
	for (size_t i = 0; i < p->unreadable.n; i++) {
		const struct kg_unreadable_conn *u =
		        kg_chunkarr_at(&p->unreadable, i);
		ptrdiff_t k = kg_pidset_find(&p->matched, u->pid);

		if (k >= 0)
			add_unreadable(&p->procs[k], u->refcount);
	}
	return 0;
}

/* One pass over every connection: sums up each matched process (the dump
 * scatters a process's connections among all the others) and keeps the
 * in-scope connections on matched processes for the names. */
static int tally(struct kg_plan *p)
{
	p->procs = calloc(p->matched.n, sizeof(*p->procs));
	/* Sized for every connection; pages never written cost no memory. */
	p->named = malloc(p->conns.n * sizeof(*p->named));
	if (!p->procs || !p->named)
		return -1;
	for (size_t i = 0; i < p->conns.n; i++) {
		const struct plan_conn *c = conn_at(p, i);
		ptrdiff_t k = kg_pidset_find(&p->matched, c->pid & PID_MASK);

		if (k < 0)
			continue;
		p->procs[k].conns += c->refcount;
		if (c->user == KG_STRARENA_NONE) {
			p->procs[k].outside += c->refcount;
			continue;
		}
		if (!(c->pid & PID_MATCHED))
			p->procs[k].shared = true;
		p->named[p->n_named++] = (struct plan_named){
		        .user = c->user,
		        .proc = (uint32_t)k,
		        .matches = c->pid & PID_MATCHED,
		};
	}
	return tally_unreadable(p);
}

/* A name to sort, with its first 16 bytes as two big-endian numbers
 * (zero-padded): their order agrees with the bytewise order of the
 * names, so most comparisons never touch the names themselves. */
struct sort_name {
	uint64_t prefix[2];
	struct kg_str s;
};

static void set_prefix(struct sort_name *n)
{
	n->prefix[0] = 0;
	n->prefix[1] = 0;
	for (size_t i = 0; i < 16; i++)
		n->prefix[i / 8] =
		        n->prefix[i / 8] << 8 |
		        (i < n->s.len ? (unsigned char)n->s.s[i] : 0);
}

static int cmp_names(const void *a, const void *b, void *ctx)
{
	const struct sort_name *x = a;
	const struct sort_name *y = b;

	(void)ctx;
	for (size_t i = 0; i < 2; i++)
		if (x->prefix[i] != y->prefix[i])
			return x->prefix[i] < y->prefix[i] ? -1 : 1;
	return kg_str_cmp(x->s, y->s);
}

/* Fills p->names, sorted and each once, with the users of a kick (every
 * user on a matched process, or only on those with keep[k] set when keep
 * is given) or of a warning (the users whose connections make a matched
 * process shared). */
static int collect_names(struct kg_plan *p, bool warn, const bool *keep,
                         size_t *n_names)
{
	struct sort_name *v = malloc(p->n_named * sizeof(*v));
	struct sort_name *scratch = malloc(p->n_named * sizeof(*scratch));
	size_t n = 0;
	size_t k = 0;

	if (!v || !scratch) {
		free(v);
		free(scratch);
		return -1;
	}
	free(p->names);
	p->names = NULL;
	for (size_t i = 0; i < p->n_named; i++) {
		const struct plan_named *c = &p->named[i];

		/* A matched process that serves a connection that does not
		 * match is shared by definition. */
		if ((warn && c->matches) || (keep && !keep[c->proc]))
			continue;
		v[n].s = kg_strarena_get(arena_of(p, c->matches), c->user);
		set_prefix(&v[n++]);
	}
	kg_msort(v, scratch, n, sizeof(*v), cmp_names, NULL);
	free(scratch);
	p->names = malloc(n * sizeof(*p->names));
	if (!p->names) {
		free(v);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!i || cmp_names(&v[i - 1], &v[i], NULL))
			p->names[k++] = v[i].s;
	free(v);
	*n_names = k;
	return 0;
}

static int decide(struct kg_plan *p, struct kg_plan_result *out)
{
	uint64_t outside = 0;
	uint64_t unreadable = 0;
	uint64_t conns = 0;
	bool shared = false;

	for (size_t k = 0; k < p->matched.n; k++) {
		outside += p->procs[k].outside;
		unreadable += p->procs[k].unreadable;
		conns += p->procs[k].conns;
		shared |= p->procs[k].shared;
	}
	out->outside_scope = clamp32(outside);
	out->unreadable = clamp32(unreadable);
	out->unplaced = clamp32(p->unplaced);
	if (outside || p->unplaced) {
		out->verdict = KG_PLAN_BLOCKED;
		return 0;
	}
	if (shared && !(p->req.flags & KG_REQ_FORCE)) {
		if (collect_names(p, true, NULL, &out->n_warn) < 0)
			return -1;
		out->verdict = KG_PLAN_NEED_FORCE;
		out->warn = p->names;
		return 0;
	}
	if (collect_names(p, false, NULL, &out->n_kicked) < 0)
		return -1;
	out->verdict = KG_PLAN_KICK;
	out->kicked = p->names;
	out->pids = p->matched.pids;
	out->n_pids = p->matched.n;
	out->conns_kicked = clamp32(conns);
	return 0;
}

static void drop_result(struct kg_plan *p)
{
	kg_pidset_free(&p->matched);
	free(p->procs);
	free(p->named);
	free(p->names);
	p->procs = NULL;
	p->named = NULL;
	p->n_named = 0;
	p->names = NULL;
}

int kg_plan_finish(struct kg_plan *p, struct kg_plan_result *out)
{
	drop_result(p);
	memset(out, 0, sizeof(*out));
	out->conns_matched = clamp32(p->conns_matched);
	if (!p->matched_pids.n) {
		out->verdict = KG_PLAN_NO_MATCH;
		return 0;
	}
	if (index_matched(p) < 0 || make_units(p) < 0 || tally(p) < 0)
		return -1;
	return decide(p, out);
}

int kg_plan_restrict(struct kg_plan *p, const uint32_t *pids, size_t n,
                     struct kg_plan_result *out)
{
	bool *keep = calloc(p->matched.n + 1, sizeof(*keep));
	uint64_t conns = 0;
	int rc;

	if (!keep)
		return -1;
	for (size_t i = 0; i < n; i++) {
		ptrdiff_t k = kg_pidset_find(&p->matched, pids[i]);

		if (k >= 0 && !keep[k]) {
			keep[k] = true;
			conns += p->procs[k].conns;
		}
	}
	rc = collect_names(p, false, keep, &out->n_kicked);
	free(keep);
	if (rc < 0)
		return -1;
	out->kicked = p->names;
	out->conns_kicked = clamp32(conns);
	return 0;
}

bool kg_plan_by_user(const struct kg_plan *p)
{
	return p->conns24.n > 0;
}

void kg_plan_unit(struct kg_plan *p, uint32_t id, struct kg_plan_unit *out)
{
	const struct plan_unit *u = kg_chunkarr_at(&p->units, id - 1);

	out->pid = u->pid;
	out->user = kg_strarena_get(arena_of(p, u->matches), u->user);
	out->guid = u->guid;
}

static bool unit_listed(const uint32_t *ids, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ids[mid] == id)
			return true;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int kg_plan_each_guid(const struct kg_plan *p, const uint32_t *ids, size_t n,
                      kg_guid_fn fn, void *ctx)
{
	for (size_t i = 0; i < p->guids.n; i++) {
		const struct plan_guid *g = kg_chunkarr_at(&p->guids, i);
		int rc;

		if (unit_listed(ids, n, g->unit) &&
		    (rc = fn(ctx, g->unit, g->guid)) != 0)
			return rc;
	}
	return 0;
}

void kg_plan_free(struct kg_plan *p)
{
	if (!p)
		return;
	drop_result(p);
	kg_strarena_free(&p->users);
	kg_strarena_free(&p->matched_users);
	kg_chunkarr_free(&p->matched_pids);
	kg_chunkarr_free(&p->unreadable);
	kg_chunkarr_free(&p->conns);
	kg_chunkarr_free(&p->conns24);
	kg_chunkarr_free(&p->units);
	kg_chunkarr_free(&p->guids);
	kg_unitmap_free(&p->unitmap);
	free(p);
}
