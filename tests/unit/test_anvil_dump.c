/* SPDX-License-Identifier: MIT */
/* Anvil CONNECT-DUMP line parser, formatter and stream feeder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/anvil_dump.h"
#include "tests/unit/testutil.h"

/* A string literal with its length, so lines may hold NUL bytes. */
#define LIT(s) s, sizeof(s) - 1

struct good_case {
	const char *line;
	size_t len;
	const char *service;
	const char *ip; /* NULL: no address */
	const char *user;
	uint32_t pid;
	uint32_t refcount;
};

static const struct good_case good_cases[] = {
        {LIT("imap/192.0.2.53/foo\t8135\t1"), "imap", "192.0.2.53", "foo", 8135,
         1},
        {LIT("imap/::1/jane\t8192\t2"), "imap", "::1", "jane", 8192, 2},
        {LIT("lmtp/foo\t100\t1"), "lmtp", NULL, "foo", 100, 1},
        {LIT("imap/10.0.0.1/a/b/c\t5\t1"), "imap", "10.0.0.1", "a/b/c", 5, 1},
        {LIT("imap/1.2.3.4/a\001tb\t5\t1"), "imap", "1.2.3.4", "a\tb", 5, 1},
        {LIT("imap/1.2.3.4/a\0011b\t5\t1"), "imap", "1.2.3.4", "a\001b", 5, 1},
        {LIT("pop3/1.2.3.4/\001n\001r\t5\t1"), "pop3", "1.2.3.4", "\n\r", 5, 1},
        {LIT("imap/1.2.3.4/a\rb \xff\t5\t1"), "imap", "1.2.3.4", "a\rb \xff", 5,
         1},
        {LIT("imap/1.2.3.4/x\t2147483647\t1"), "imap", "1.2.3.4", "x",
         2147483647, 1},
        {LIT("imap/1.2.3.4/x\t1\t4294967295"), "imap", "1.2.3.4", "x", 1,
         4294967295u},
        {LIT("imap/not-an-ip/x\t5\t1"), "imap", NULL, "x", 5, 1},
        {LIT("imap/::ffff:192.0.2.1/x\t5\t1"), "imap", "192.0.2.1", "x", 5, 1},
        {LIT("imap//a/b\t5\t1"), "imap", NULL, "a/b", 5, 1},
        {LIT("imap/1.2.3.4//\t5\t1"), "imap", "1.2.3.4", "/", 5, 1},
        {LIT("imap/1.2.3.4\0010/x\t5\t1"), "imap", NULL, "x", 5, 1},
        {LIT("imap/1.2.3.4\0/x\t5\t1"), "imap", NULL, "x", 5, 1},
        {LIT("imap/1.2.3.4%eth0/x\t5\t1"), "imap", NULL, "x", 5, 1},
        {LIT("abcdefghijklmnopqrstuvwxyz012345/x\t5\t1"),
         "abcdefghijklmnopqrstuvwxyz012345", NULL, "x", 5, 1},
};

struct bad_case {
	const char *line;
	size_t len;
	enum kg_line_err err;
};

static const struct bad_case bad_cases[] = {
        {LIT("imap/1.2.3.4/a\001xb\t5\t1"), KG_LINE_ESCAPE},
        {LIT("imap/1.2.3.4/a\001\t5\t1"), KG_LINE_ESCAPE},
        {LIT("imap/1.2.3.4/a\0010b\t5\t1"), KG_LINE_ESCAPE},
        {LIT("im\0010ap/x\t5\t1"), KG_LINE_ESCAPE},
        {LIT("imap/1.2.3.4/a\0b\t5\t1"), KG_LINE_ESCAPE},
        {LIT("im\0ap/x\t5\t1"), KG_LINE_ESCAPE},
        {LIT("imap/1.2.3.4/x\t0\t1"), KG_LINE_PID},
        {LIT("imap/1.2.3.4/x\t-5\t1"), KG_LINE_PID},
        {LIT("imap/1.2.3.4/x\t+5\t1"), KG_LINE_PID},
        {LIT("imap/1.2.3.4/x\t5x\t1"), KG_LINE_PID},
        {LIT("imap/1.2.3.4/x\t05\t1"), KG_LINE_PID},
        {LIT("imap/1.2.3.4/x\t\t1"), KG_LINE_PID},
        {LIT("imap/1.2.3.4/x\t99999999999\t1"), KG_LINE_PID},
        {LIT("imap/1.2.3.4/x\t2147483648\t1"), KG_LINE_PID},
        {LIT("imap/1.2.3.4/x\t5\t0"), KG_LINE_REFCOUNT},
        {LIT("imap/1.2.3.4/x\t5\t01"), KG_LINE_REFCOUNT},
        {LIT("imap/1.2.3.4/x\t5\t"), KG_LINE_REFCOUNT},
        {LIT("imap/1.2.3.4/x\t5\t4294967296"), KG_LINE_REFCOUNT},
        {LIT("imap/1.2.3.4/x\t5\t1\r"), KG_LINE_REFCOUNT},
        {LIT("imap/1.2.3.4/x\t5"), KG_LINE_FIELDS},
        {LIT("imap/1.2.3.4/x"), KG_LINE_FIELDS},
        {LIT("imap/1.2.3.4/x\t5\t1\t1"), KG_LINE_FIELDS},
        {LIT("imap\t5\t1"), KG_LINE_IDENT},
        {LIT("/x\t5\t1"), KG_LINE_IDENT},
        {LIT("imap/\t5\t1"), KG_LINE_IDENT},
        {LIT("imap/1.2.3.4/\t5\t1"), KG_LINE_IDENT},
        {LIT("\t5\t1"), KG_LINE_IDENT},
        {LIT("abcdefghijklmnopqrstuvwxyz0123456/x\t5\t1"), KG_LINE_IDENT},
};

static void assert_conn_equal(const struct kg_conn *got,
                              const struct kg_conn *want)
{
	assert_int_equal(got->pid, want->pid);
	assert_int_equal(got->refcount, want->refcount);
	assert_memory_equal(&got->addr, &want->addr, sizeof(want->addr));
	assert_int_equal(got->service_len, want->service_len);
	assert_memory_equal(got->service, want->service, got->service_len);
	assert_int_equal(got->user_len, want->user_len);
	assert_memory_equal(got->user, want->user, got->user_len);
}

/* Parses good line i, which must succeed. */
static struct kg_conn parse_good(size_t i, char *scratch)
{
	const struct good_case *t = &good_cases[i];
	struct kg_conn c;

	print_message("line %zu\n", i);
	assert_int_equal(kg_anvil_parse_line(t->line, t->len, &c, scratch),
	                 KG_LINE_OK);
	return c;
}

static void test_parse_line_accepts_good_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]);
	     i++) {
		const struct good_case *t = &good_cases[i];
		char scratch[128];
		struct kg_conn c = parse_good(i, scratch);
		struct kg_conn want = tu_conn(t->pid, t->service, t->user,
		                              t->ip, t->refcount);

		assert_conn_equal(&c, &want);
	}
}

static void test_parse_line_rejects_bad_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *t = &bad_cases[i];
		char scratch[128];
		struct kg_conn c;

		print_message("line %zu\n", i);
		assert_int_equal(
		        kg_anvil_parse_line(t->line, t->len, &c, scratch),
		        t->err);
	}
}

static void test_format_round_trips_good_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]);
	     i++) {
		char s1[128], s2[128], out[256];
		struct kg_conn a = parse_good(i, s1), b;
		size_t n = kg_anvil_format_line(&a, out, sizeof(out));

		assert_true(n > 0);
		assert_int_equal(kg_anvil_parse_line(out, n, &b, s2),
		                 KG_LINE_OK);
		assert_conn_equal(&b, &a);
	}
}

static void assert_formats_as(const struct kg_conn *c, const char *want,
                              size_t want_len)
{
	char out[128];

	assert_int_equal(kg_anvil_format_line(c, out, sizeof(out)), want_len);
	assert_memory_equal(out, want, want_len);
}

static void test_format_escapes_and_keeps_slashed_users(void **state)
{
	struct kg_conn c = tu_conn(42, "imap", "a/b", NULL, 3);

	(void)state;
	assert_formats_as(&c, LIT("imap//a/b\t42\t3"));
	c = tu_conn(42, "imap", "ab", NULL, 3);
	assert_formats_as(&c, LIT("imap/ab\t42\t3"));
	c = tu_conn(42, "imap", "a\tb\001\n\r", "2001:db8::1", 3);
	assert_formats_as(
	        &c, LIT("imap/2001:db8::1/a\001tb\0011\001n\001r\t42\t3"));
}

static void test_format_refuses_small_buffer(void **state)
{
	struct kg_conn c = tu_conn(7, "pop3", "u", NULL, 1);
	char out[16];

	(void)state;
	assert_int_equal(kg_anvil_format_line(&c, out, 10), 10);
	assert_memory_equal(out, "pop3/u\t7\t1", 10);
	assert_int_equal(kg_anvil_format_line(&c, out, 9), 0);
	assert_int_equal(kg_anvil_format_line(&c, out, 0), 0);
}

static void test_strerror_names_every_error(void **state)
{
	(void)state;
	for (int a = KG_LINE_OK; a <= KG_LINE_TOO_LONG; a++) {
		assert_true(kg_line_strerror(a)[0] != '\0');
		for (int b = KG_LINE_OK; b < a; b++)
			assert_string_not_equal(kg_line_strerror(a),
			                        kg_line_strerror(b));
	}
}

/* Records every callback as a formatted line, to compare sequences. */
struct recorder {
	char *buf;
	size_t len;
	size_t cap;
	size_t calls;
	size_t stop_at;    /* return 7 from this call (1-based); 0: never */
	size_t unreadable; /* unreadable lines reported */
	uint32_t bad_pid;  /* the last one's pid and refcount */
	uint32_t bad_refcount;
};

static int record(void *ctx, const struct kg_conn *c)
{
	struct recorder *r = ctx;
	size_t n;

	if (r->cap - r->len < KG_ANVIL_LINE_MAX + 64) {
		r->cap = r->cap * 2 + KG_ANVIL_LINE_MAX + 64;
		r->buf = realloc(r->buf, r->cap);
		assert_non_null(r->buf);
	}
	n = kg_anvil_format_line(c, r->buf + r->len, r->cap - r->len - 1);
	assert_true(n > 0);
	r->len += n;
	r->buf[r->len++] = '\n';
	return ++r->calls == r->stop_at ? 7 : 0;
}

/* An unreadable line goes into the sequence as "!PID REFCOUNT". */
static int record_unreadable(void *ctx, uint32_t pid, uint32_t refcount)
{
	struct recorder *r = ctx;
	int n;

	if (r->cap - r->len < 32) {
		r->cap = r->cap * 2 + 32;
		r->buf = realloc(r->buf, r->cap);
		assert_non_null(r->buf);
	}
	n = snprintf(r->buf + r->len, r->cap - r->len, "!%u %u\n", pid,
	             refcount);
	r->len += (size_t)n;
	r->unreadable++;
	r->bad_pid = pid;
	r->bad_refcount = refcount;
	return 0;
}

static int dump_feed(struct kg_dump_parser *p, const char *buf, size_t len,
                     struct recorder *r, size_t *used)
{
	const struct kg_dump_sink sink = {record, record_unreadable, r};

	return kg_dump_feed(p, buf, len, &sink, used);
}

/* Feeds buf in chunks of the sizes chunk() gives; returns total used. */
static size_t feed_chunked(struct kg_dump_parser *p, const char *buf,
                           size_t len, struct recorder *r,
                           size_t (*chunk)(size_t max))
{
	size_t off = 0;

	while (off < len && !p->done) {
		size_t n = chunk(len - off), used = 0;

		assert_int_equal(dump_feed(p, buf + off, n, r, &used), 0);
		assert_true(used == n || p->done);
		off += used;
	}
	return off;
}

static uint32_t rng_state;

static size_t chunk_all(size_t max)
{
	return max;
}

static size_t chunk_one(size_t max)
{
	(void)max;
	return 1;
}

static size_t chunk_random(size_t max)
{
	size_t n;

	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	n = rng_state % 97 + 1;
	return n < max ? n : max;
}

static const char sample_dump[] = "imap/192.0.2.53/foo\t8135\t1\n"
                                  "imap/::1/jane\t8192\t2\n"
                                  "bogus line\n"
                                  "lmtp/foo\t100\t1\n"
                                  "imap/10.0.0.1/a/b/c\t5\t1\n"
                                  "imap/1.2.3.4/x\t0\t1\n"
                                  "imap/1.2.3.4/a\001tb\t5\t1\n"
                                  "imap/::ffff:192.0.2.1/x\t5\t1\n"
                                  "\n"
                                  "imap/198.51.100.1/after\t9\t1\n";

/* Where sample_dump's empty line ends. */
static size_t sample_end(void)
{
	return (size_t)(strstr(sample_dump, "\n\n") - sample_dump) + 2;
}

static void run_sample(struct kg_dump_parser *p, struct recorder *r,
                       size_t (*chunk)(size_t max))
{
	kg_dump_init(p, 1);
	assert_int_equal(
	        feed_chunked(p, sample_dump, sizeof(sample_dump) - 1, r, chunk),
	        sample_end());
	assert_true(p->done);
	assert_int_equal(p->lines, 6);
	assert_int_equal(p->malformed, 2);
	assert_int_equal(p->first_err, KG_LINE_FIELDS);
}

static void test_feed_same_calls_for_any_chunking(void **state)
{
	struct kg_dump_parser *p = malloc(sizeof(*p));
	struct recorder whole = {0}, other = {0};

	(void)state;
	assert_non_null(p);
	run_sample(p, &whole, chunk_all);
	assert_int_equal(whole.calls, 6);
	run_sample(p, &other, chunk_one);
	assert_int_equal(other.len, whole.len);
	assert_memory_equal(other.buf, whole.buf, whole.len);
	for (uint32_t seed = 1; seed < 40; seed += 3) {
		rng_state = seed;
		other.len = 0;
		run_sample(p, &other, chunk_random);
		assert_int_equal(other.len, whole.len);
		assert_memory_equal(other.buf, whole.buf, whole.len);
	}
	free(whole.buf);
	free(other.buf);
	free(p);
}

/* "imap/1.2.3.4/uuu...\t5\t1\n": a good line of len bytes without '\n'. */
static char *padded_line(size_t len, char *out)
{
	static const char head[] = "imap/1.2.3.4/", tail[] = "\t5\t1\n";
	size_t pad = len - (sizeof(head) - 1) - (sizeof(tail) - 2);

	memcpy(out, head, sizeof(head) - 1);
	memset(out + sizeof(head) - 1, 'u', pad);
	memcpy(out + len - (sizeof(tail) - 2), tail, sizeof(tail) - 1);
	return out + len + 1;
}

/* Feeds good lines of the given lengths and an empty line, in one piece,
 * byte by byte and in random chunks; checks the counts each time. */
static void check_line_lengths(const size_t *lens, size_t n, uint64_t bad,
                               uint64_t good)
{
	size_t (*chunkers[])(size_t) = {chunk_all, chunk_one, chunk_random};
	size_t cap = 1;
	struct kg_dump_parser *p = malloc(sizeof(*p));
	char *dump, *end;

	for (size_t i = 0; i < n; i++)
		cap += lens[i] + 1;
	dump = malloc(cap);
	assert_non_null(dump);
	assert_non_null(p);
	end = dump;
	for (size_t i = 0; i < n; i++)
		end = padded_line(lens[i], end);
	*end++ = '\n';
	rng_state = 5;
	for (size_t i = 0; i < sizeof(chunkers) / sizeof(chunkers[0]); i++) {
		struct recorder r = {0};

		kg_dump_init(p, 1);
		assert_int_equal(feed_chunked(p, dump, cap, &r, chunkers[i]),
		                 cap);
		assert_true(p->done);
		assert_int_equal(p->malformed, bad);
		assert_int_equal(p->first_err,
		                 bad ? KG_LINE_TOO_LONG : KG_LINE_OK);
		assert_int_equal(p->lines, good);
		assert_int_equal(r.calls, good);
		/* The overlong line's pid survives the skipping. */
		assert_int_equal(r.unreadable, bad);
		if (bad)
			assert_true(r.bad_pid == 5 && r.bad_refcount == 1);
		free(r.buf);
	}
	free(dump);
	free(p);
}

static void test_feed_skips_overlong_line(void **state)
{
	const size_t lens[] = {70000, 40};

	(void)state;
	check_line_lengths(lens, 2, 1, 1);
}

static void test_feed_line_limit_is_inclusive(void **state)
{
	const size_t lens[] = {KG_ANVIL_LINE_MAX + 1, KG_ANVIL_LINE_MAX,
	                       KG_ANVIL_LINE_MAX};

	(void)state;
	check_line_lengths(lens, 3, 1, 2);
}

/* The fixture of the tests below: a parser and the recorder of its
 * calls. */
struct feed {
	struct kg_dump_parser p;
	struct recorder r;
};

static int feed_setup(void **state)
{
	struct feed *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	kg_dump_init(&f->p, 1);
	*state = f;
	return 0;
}

static int feed_teardown(void **state)
{
	struct feed *f = *state;

	free(f->r.buf);
	free(f);
	return 0;
}

static int feed(struct feed *f, const char *buf, size_t len, size_t *used)
{
	return dump_feed(&f->p, buf, len, &f->r, used);
}

static void test_feed_stops_at_empty_line(void **state)
{
	static const char dump[] = "pop3/u\t7\t1\n\npop3/v\t8\t1\n";
	struct feed *f = *state;
	size_t used = 99;

	assert_int_equal(feed(f, dump, 11, &used), 0);
	assert_int_equal(used, 11);
	assert_false(f->p.done);
	assert_int_equal(feed(f, dump + 11, sizeof(dump) - 12, &used), 0);
	assert_int_equal(used, 1);
	assert_true(f->p.done);
	assert_int_equal(f->r.calls, 1);
	assert_int_equal(feed(f, dump + 12, 5, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(f->r.calls, 1);
}

static void test_feed_partial_line_then_newline_is_not_empty(void **state)
{
	struct feed *f = *state;
	size_t used;

	assert_int_equal(feed(f, "pop3/u\t7\t1", 10, &used), 0);
	assert_int_equal(feed(f, "\n", 1, &used), 0);
	assert_false(f->p.done);
	assert_int_equal(f->r.calls, 1);
	assert_int_equal(feed(f, "\n", 1, &used), 0);
	assert_true(f->p.done);
}

static void test_feed_counts_malformed_lines(void **state)
{
	static const char dump[] = "x\n"
	                           "pop3/u\t7\t1\n"
	                           "pop3/u\t7\t01\n"
	                           "pop3/u\001q\t7\t1\n"
	                           "pop3/v\t8\t1\n"
	                           "\n";
	struct feed *f = *state;
	size_t used;

	assert_int_equal(feed(f, dump, sizeof(dump) - 1, &used), 0);
	assert_int_equal(used, sizeof(dump) - 1);
	assert_true(f->p.done);
	assert_int_equal(f->p.malformed, 3);
	assert_int_equal(f->p.first_err, KG_LINE_FIELDS);
	assert_int_equal(f->p.lines, 2);
	assert_int_equal(f->r.calls, 2);
}

/* A line that does not parse still names its process by its last two
 * fields; without them the process is unknown (0). */
static void test_feed_reports_unreadable_pids(void **state)
{
	static const char dump[] = "imap/u\001q\t7\t3\n"
	                           "x\n"
	                           "a\tb\t9\t2\n"
	                           "pop3/u\t01\t1\n"
	                           "pop3/u\t7\t\n"
	                           "\t\t\n"
	                           "pop3/v\t8\t1\n"
	                           "\n";
	static const char want[] = "!7 3\n!0 0\n!9 2\n!0 0\n!0 0\n!0 0\n"
	                           "pop3/v\t8\t1\n";
	struct feed *f = *state;
	size_t used;

	assert_int_equal(feed(f, dump, sizeof(dump) - 1, &used), 0);
	assert_true(f->p.done);
	assert_int_equal(f->p.malformed, 6);
	assert_int_equal(f->r.unreadable, 6);
	assert_int_equal(f->r.len, sizeof(want) - 1);
	assert_memory_equal(f->r.buf, want, sizeof(want) - 1);
}

/* An overlong line's pid is read from its last bytes however the reads
 * cut it, the longest pid and refcount included. */
static void test_feed_overlong_line_keeps_its_pid(void **state)
{
	static const char end[] = "\t2147483647\t4294967295\n\n";
	size_t (*chunkers[])(size_t) = {chunk_all, chunk_one, chunk_random};
	size_t len = 70000 + sizeof(end) - 1;
	char *dump = malloc(len);
	struct kg_dump_parser *p = malloc(sizeof(*p));

	(void)state;
	assert_non_null(dump);
	assert_non_null(p);
	memcpy(dump, "imap/", 5);
	memset(dump + 5, 'u', 70000 - 5);
	memcpy(dump + 70000, end, sizeof(end) - 1);
	rng_state = 11;
	for (size_t i = 0; i < sizeof(chunkers) / sizeof(chunkers[0]); i++) {
		struct recorder r = {0};

		kg_dump_init(p, 1);
		assert_int_equal(feed_chunked(p, dump, len, &r, chunkers[i]),
		                 len);
		assert_int_equal(r.unreadable, 1);
		assert_int_equal(r.bad_pid, 2147483647u);
		assert_int_equal(r.bad_refcount, 4294967295u);
		free(r.buf);
	}
	free(dump);
	free(p);
}

static void test_feed_stops_when_callback_fails(void **state)
{
	static const char dump[] =
	        "pop3/u\t7\t1\npop3/v\t8\t1\npop3/w\t9\t1\n\n";
	struct feed *f = *state;
	size_t used;

	f->r.stop_at = 2;
	assert_int_equal(feed(f, dump, sizeof(dump) - 1, &used), 7);
	assert_int_equal(used, 22);
	assert_false(f->p.done);
	assert_int_equal(f->r.calls, 2);
	assert_int_equal(feed(f, dump + used, sizeof(dump) - 1 - used, &used),
	                 0);
	assert_true(f->p.done);
	assert_int_equal(f->r.calls, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_line_accepts_good_lines),
	        cmocka_unit_test(test_parse_line_rejects_bad_lines),
	        cmocka_unit_test(test_format_round_trips_good_lines),
	        cmocka_unit_test(test_format_escapes_and_keeps_slashed_users),
	        cmocka_unit_test(test_format_refuses_small_buffer),
	        cmocka_unit_test(test_strerror_names_every_error),
	        cmocka_unit_test(test_feed_same_calls_for_any_chunking),
	        cmocka_unit_test(test_feed_skips_overlong_line),
	        cmocka_unit_test(test_feed_line_limit_is_inclusive),
	        cmocka_unit_test_setup_teardown(test_feed_stops_at_empty_line,
	                                        feed_setup, feed_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_feed_partial_line_then_newline_is_not_empty,
	                feed_setup, feed_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_feed_counts_malformed_lines, feed_setup,
	                feed_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_feed_reports_unreadable_pids, feed_setup,
	                feed_teardown),
	        cmocka_unit_test(test_feed_overlong_line_keeps_its_pid),
	        cmocka_unit_test_setup_teardown(
	                test_feed_stops_when_callback_fails, feed_setup,
	                feed_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
