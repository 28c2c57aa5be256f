/* SPDX-License-Identifier: MIT */
/* Throughput and memory of the dump parser plus the kick planner on a
 * large host: 1,000,000 CONNECT-DUMP lines, one connection per process,
 * mixed IPv4 and IPv6, in anvil's hash order (pids scattered).
 *
 * The dump is generated in memory before any measurement. Memory is the
 * growth of the resident set over what the process held with the dump in
 * place: the peak (VmHWM, reset through /proc/self/clear_refs before each
 * run) minus that baseline, so the dump itself is not counted. */
#include <malloc.h>
#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "broker/anvil_dump.h"
#include "broker/match.h"
#include "broker/plan.h"
#include "broker/who.h"

#define N_LINES   1000000u
#define N_TENANTS 10u
#define LINE_CAP  96
#define REPEATS   5
/* Bytes handed to the parser at a time, as a socket read would. */
#define READ_SIZE 65536

static const struct kg_scope scope_all = {.all_users = true, .all_nets = true};

/* What a run feeds the parsed lines to. The first two are references:
 * the parser alone, then the parser and the request's match test (glob),
 * which the planner runs on every line, so that the planner's own cost
 * reads as the difference. */
enum mode { PARSE, MATCH, PLAN, WHO };

struct scenario {
	const char *name;
	enum mode mode;
	const char *glob;
	enum kg_plan_verdict verdict;
	size_t n_pids; /* also the rows a who run lists */
};

#define NO_MATCH_GLOB "*@nowhere.example"
#define TENTH_GLOB    "*@tenant7.example"

static const struct scenario scenarios[] = {
        {"parse only", PARSE, NULL, KG_PLAN_NO_MATCH, 0},
        {"parse+match", MATCH, NO_MATCH_GLOB, KG_PLAN_NO_MATCH, 0},
        {"no match", PLAN, NO_MATCH_GLOB, KG_PLAN_NO_MATCH, 0},
        {"10% match", PLAN, TENTH_GLOB, KG_PLAN_KICK, N_LINES / N_TENANTS},
        {"who 10%", WHO, TENTH_GLOB, KG_PLAN_KICK, N_LINES / N_TENANTS},
};

static char *generate(size_t *len)
{
	char *buf = malloc((size_t)N_LINES * LINE_CAP + 1);
	size_t n = 0;

	if (!buf)
		return NULL;
	for (uint32_t i = 0; i < N_LINES; i++) {
		/* A bijection on 0..N-1 scatters pids as a hash would. */
		uint32_t pid = 1 + (uint32_t)(((uint64_t)i * 611953) % N_LINES);
		int w;

		if (i % 2)
			w = snprintf(buf + n, LINE_CAP,
			             "imap/2001:db8:%x:%x::%x/user%u@tenant%u."
			             "example\t%u\t1\n",
			             i >> 16, i & 0xffff, pid & 0xffff, i,
			             i % N_TENANTS, pid);
		else
			w = snprintf(buf + n, LINE_CAP,
			             "imap/10.%u.%u.%u/user%u@tenant%u.example"
			             "\t%u\t1\n",
			             (i >> 16) & 0xff, (i >> 8) & 0xff,
			             i & 0xff, i, i % N_TENANTS, pid);
		if (w <= 0 || w >= LINE_CAP) {
			free(buf);
			return NULL;
		}
		n += (size_t)w;
	}
	buf[n++] = '\n';
	*len = n;
	return buf;
}

/* A field of /proc/self/status, in KiB; -1 if missing. */
static long status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t flen = strlen(field);
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, flen) && line[flen] == ':')
			v = strtol(line + flen + 1, NULL, 10);
	fclose(f);
	return v;
}

static int reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	int ok;

	if (!f)
		return -1;
	ok = fputs("5", f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* CPU time of this thread: on a busy host, wall time would count other
 * processes' turns on the core. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct counter {
	const struct kg_request *req;
	size_t n;
	size_t v6;
};

/* Counts the IPv6 connections, to confirm that the dump is as mixed as
 * intended. */
static int count_line(void *ctx, const struct kg_conn *c)
{
	struct counter *k = ctx;

	k->n++;
	k->v6 += c->addr.family == KG_AF_INET6;
	return 0;
}

static int count_match(void *ctx, const struct kg_conn *c)
{
	struct counter *k = ctx;

	if (kg_conn_in_scope(&scope_all, c) && kg_conn_matches(k->req, c))
		k->n++;
	return 0;
}

struct run {
	double feed;  /* seconds: parse and add */
	double total; /* seconds: with kg_plan_finish */
};

static int feed_all(struct kg_dump_parser *dp, const char *in, size_t len,
                    kg_conn_fn fn, void *ctx)
{
	const struct kg_dump_sink sink = {fn, NULL, ctx};
	size_t off = 0;

	kg_dump_init(dp, 1);
	while (off < len && !dp->done) {
		size_t chunk = len - off < READ_SIZE ? len - off : READ_SIZE;
		size_t used;

		if (kg_dump_feed(dp, in + off, chunk, &sink, &used) ||
		    (!used && !dp->done))
			return -1;
		off += used;
	}
	return dp->done && dp->lines == N_LINES && !dp->malformed ? 0 : -1;
}

/* The who collector on the same dump: rows for the matching tenth. */
static int run_who(const struct scenario *s, const struct kg_request *req,
                   const char *in, size_t len, struct run *r)
{
	struct kg_dump_parser *dp = malloc(sizeof(*dp));
	struct kg_who *w = kg_who_new(req, &scope_all);
	struct kg_who_result res;
	int rc = -1;
	double t0 = now();

	if (dp && w && feed_all(dp, in, len, kg_who_add, w) == 0) {
		r->feed = now() - t0;
		rc = kg_who_finish(w, &res);
		r->total = now() - t0;
	}
	if (rc == 0 && (res.n_rows != s->n_pids || res.pids != s->n_pids))
		rc = -1;
	kg_who_free(w);
	free(dp);
	return rc;
}

static int run_once(const struct scenario *s, const char *in, size_t len,
                    struct run *r)
{
	struct kg_dump_parser *dp = malloc(sizeof(*dp));
	struct kg_request req = {.op = KG_OP_KICK};
	struct counter k = {.req = &req};
	struct kg_plan_result res;
	struct kg_plan *p = NULL;
	int rc = -1;
	double t0 = now();

	if (!dp)
		return -1;
	if (s->glob) {
		req.glob_len = (uint8_t)strlen(s->glob);
		memcpy(req.glob, s->glob, req.glob_len);
	}
	if (s->mode == WHO) {
		free(dp);
		return run_who(s, &req, in, len, r);
	}
	if (s->mode != PLAN) {
		rc = feed_all(dp, in, len,
		              s->mode == PARSE ? count_line : count_match, &k);
		if (s->mode == PARSE && k.v6 != N_LINES / 2)
			rc = -1;
		r->feed = r->total = now() - t0;
		free(dp);
		return rc;
	}
	p = kg_plan_new(&req, &scope_all);
	if (p && feed_all(dp, in, len, kg_plan_add, p) == 0) {
		r->feed = now() - t0;
		rc = kg_plan_finish(p, &res);
		r->total = now() - t0;
	}
	if (rc == 0 && (res.verdict != s->verdict || res.n_pids != s->n_pids))
		rc = -1;
	kg_plan_free(p);
	free(dp);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v)
{
	qsort(v, REPEATS, sizeof(*v), cmp_double);
	return v[REPEATS / 2];
}

static int bench(const struct scenario *s, const char *in, size_t len,
                 long base_kib)
{
	double feed[REPEATS];
	double total[REPEATS];
	long hwm = 0;
	long maxrss = 0;

	for (int i = 0; i < REPEATS; i++) {
		struct rusage ru;
		struct run r;

		malloc_trim(0);
		if (reset_peak() < 0 || run_once(s, in, len, &r) < 0 ||
		    getrusage(RUSAGE_SELF, &ru) < 0) {
			fprintf(stderr, "bench_plan: %s failed\n", s->name);
			return -1;
		}
		feed[i] = r.feed;
		total[i] = r.total;
		if (status_kib("VmHWM") > hwm)
			hwm = status_kib("VmHWM");
		if (ru.ru_maxrss > maxrss)
			maxrss = ru.ru_maxrss;
	}
	printf("%-11s %8.1f %9.2f %9.2f %10.1f %10.1f\n", s->name,
	       median(feed) * 1e3, N_LINES / median(feed) / 1e6,
	       N_LINES / median(total) / 1e6, (double)(hwm - base_kib) / 1024,
	       (double)maxrss / 1024);
	return 0;
}

int main(void)
{
	size_t len;
	char *in = generate(&len);
	long base;

	if (!in) {
		fprintf(stderr, "bench_plan: cannot generate the dump\n");
		return 1;
	}
	malloc_trim(0);
	base = status_kib("VmRSS");
	printf("dump: %u lines, %.1f MiB; resident with the dump: %.1f MiB\n",
	       N_LINES, (double)len / (1 << 20), (double)base / 1024);
	printf("CPU time, median of %d runs. Mlines/s: parse and add; with "
	       "finish.\npeak: VmHWM minus resident with the dump. maxrss: "
	       "ru_maxrss, dump included.\n\n",
	       REPEATS);
	printf("%-11s %8s %9s %9s %10s %10s\n", "scenario", "feed ms",
	       "Mlines/s", "+finish", "peak MiB", "maxrss MiB");
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (bench(&scenarios[i], in, len, base) < 0)
			return 1;
	free(in);
	return 0;
}
