/* SPDX-License-Identifier: MIT */
/* Account names by uid, read once from the passwd database.
 *
 * The audit line names its caller from this table rather than by asking
 * the passwd database per request: the broker's sandbox may read only the
 * /etc/passwd that existed when it was entered, and the usual tools
 * (useradd, userdel, vipw) replace that file rather than edit it, so a
 * lookup after the first account change would find nothing at all. */
#ifndef KG_UIDNAMES_H
#define KG_UIDNAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/strarena.h"
#include "proto/str.h"

/* Accounts kept at most; later ones are counted as left out. */
#define KG_UIDNAMES_MAX ((size_t)1 << 18)
/* Longest name kept, in bytes; a longer or an empty one is left out. */
#define KG_UIDNAME_MAX 255

struct kg_uidname {
	uint32_t uid;
	uint32_t seq; /* order of addition: the first name of a uid wins */
	uint32_t ref; /* the name in the arena */
};

struct kg_uidnames {
	struct kg_uidname *v; /* by uid, then seq, once finished */
	size_t n;
	size_t cap;
	size_t left_out; /* names too long, or past KG_UIDNAMES_MAX */
	struct kg_strarena names;
};

void kg_uidnames_init(struct kg_uidnames *t);
/* Adds one account. Returns 0 when kept or left out (counted), -1 on
 * allocation failure. */
int kg_uidnames_add(struct kg_uidnames *t, uid_t uid, const char *name);
/* Sorts the table for lookups; call after the last add. -1 on
 * allocation failure. */
int kg_uidnames_finish(struct kg_uidnames *t);
/* Fills *name with the first name added for uid and returns 1, or
 * returns 0 when the table has none. */
int kg_uidnames_find(const struct kg_uidnames *t, uid_t uid,
                     struct kg_str *name);
void kg_uidnames_free(struct kg_uidnames *t);

/* Reads every account of the passwd database (getpwent_r) into t and
 * finishes it. Returns 0, or the errno value that ended the reading early
 * (ENOMEM when out of memory); what was read until then stays usable. */
int kg_uidnames_load(struct kg_uidnames *t);

#endif
