/* SPDX-License-Identifier: MIT */
/* Dovecot 2.4's unit of a kick: one user in one process. Anvil kicks a
 * user per process (a shared process closes all of that user's
 * connections in it, and no other user's), so the planner groups a 2.4
 * dump's connections by (pid, user) where 2.3's are grouped by pid.
 *
 * A unit is found by its pid and a keyed 64-bit hash of its user: the
 * planner keeps no name of a user outside the caller's scope, and this
 * needs none. Two users whose hashes collide on one pid make one unit,
 * which can only make a kick need -f or be refused, never take more: the
 * kick itself names the user. The key is drawn per map, so that names
 * chosen to collide in one map do not in the next. */
#ifndef KG_UNITMAP_H
#define KG_UNITMAP_H

#include <stddef.h>
#include <stdint.h>

struct kg_unitmap {
	uint64_t key;
	struct unit_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

void kg_unitmap_init(struct kg_unitmap *m);
/* The keyed hash that stands for user in this map. */
uint64_t kg_unitmap_hash(const struct kg_unitmap *m, const char *user,
                         size_t user_len);
/* The unit of the user whose hash is given, on pid: 1, 2, ... in order of
 * first sight. 0 on allocation failure. */
uint32_t kg_unitmap_get(struct kg_unitmap *m, uint32_t pid, uint64_t hash);
void kg_unitmap_free(struct kg_unitmap *m);

#endif
