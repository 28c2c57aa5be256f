/* SPDX-License-Identifier: MIT */
#include "broker/uidnames.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msort.h"

/* Room for one passwd entry's strings; a longer entry ends the reading
 * with ERANGE rather than being retried forever. */
#define PW_BUF_SIZE 16384

void kg_uidnames_init(struct kg_uidnames *t)
{
	memset(t, 0, sizeof(*t));
	kg_strarena_init(&t->names);
}

static int grow(struct kg_uidnames *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	struct kg_uidname *v;

	if (cap > KG_UIDNAMES_MAX)
		cap = KG_UIDNAMES_MAX;
	v = realloc(t->v, cap * sizeof(*v));
	if (v == NULL)
		return -1;
	t->v = v;
	t->cap = cap;
	return 0;
}

int kg_uidnames_add(struct kg_uidnames *t, uid_t uid, const char *name)
{
	size_t len = strnlen(name, KG_UIDNAME_MAX + 1);
	struct kg_uidname *e;

	if (len == 0 || len > KG_UIDNAME_MAX || t->n == KG_UIDNAMES_MAX) {
		t->left_out++;
		return 0;
	}
	if (t->n == t->cap && grow(t) < 0)
		return -1;
	e = &t->v[t->n];
	if (kg_strarena_add(&t->names, name, len, &e->ref) < 0)
		return -1;
	e->uid = uid;
	e->seq = (uint32_t)t->n++;
	return 0;
}

static int by_uid_then_seq(const void *a, const void *b, void *ctx)
{
	const struct kg_uidname *x = a, *y = b;

	(void)ctx;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int kg_uidnames_finish(struct kg_uidnames *t)
{
	struct kg_uidname *scratch;

	if (t->n < 2)
		return 0;
	/* Not qsort: it may call sysinfo, which the broker's filter kills. */
	scratch = malloc(t->n * sizeof(*scratch));
	if (!scratch)
		return -1;
	kg_msort(t->v, scratch, t->n, sizeof(*t->v), by_uid_then_seq, NULL);
	free(scratch);
	return 0;
}

int kg_uidnames_find(const struct kg_uidnames *t, uid_t uid,
                     struct kg_str *name)
{
	size_t lo = 0, hi = t->n;

	/* The first entry not below uid: with duplicates, the first added. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == t->n || t->v[lo].uid != uid)
		return 0;
	*name = kg_strarena_get(&t->names, t->v[lo].ref);
	return 1;
}

void kg_uidnames_free(struct kg_uidnames *t)
{
	free(t->v);
	kg_strarena_free(&t->names);
	kg_uidnames_init(t);
}

int kg_uidnames_load(struct kg_uidnames *t)
{
	static char buf[PW_BUF_SIZE];
	struct passwd pw, *res;
	int err = 0;

	setpwent();
	/* One entry more than the table holds tells that some were left
	 * out; the bound also ends a database that never ends. */
	for (size_t i = 0; i <= KG_UIDNAMES_MAX; i++) {
		err = getpwent_r(&pw, buf, sizeof(buf), &res);
		if (err != 0 || res == NULL)
			break;
		if (kg_uidnames_add(t, pw.pw_uid, pw.pw_name) < 0) {
			err = ENOMEM;
			break;
		}
	}
	endpwent();
	if (kg_uidnames_finish(t) < 0)
		return ENOMEM;
	return err == ENOENT ? 0 : err;
}
