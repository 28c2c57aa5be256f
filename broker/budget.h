/* SPDX-License-Identifier: MIT */
/* max_sessions_per_hour: the connections each caller has kicked under
 * each rule, over a sliding window of an hour counted in whole minutes
 * of the monotonic clock. The ledger lives in the broker's memory alone:
 * a new broker (a reload) starts every count at zero. Times are passed
 * in, so that the accounting can be tested without waiting. */
#ifndef KG_BUDGET_H
#define KG_BUDGET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A kick counts while the current minute is at most 60 minutes past its
 * own: between 60 and 61 minutes, so that no 60 minutes ever hold more
 * than the budget. */
#define KG_BUDGET_MINUTES 61

struct kg_budget_entry {
	uid_t uid;
	size_t rule;
	int64_t minute; /* the latest minute the counts were advanced to */
	uint32_t kicked[KG_BUDGET_MINUTES]; /* by minute modulo the size */
};

/* Zero-initialized is empty. */
struct kg_budget {
	struct kg_budget_entry *entries;
	size_t n, cap;
};

/* Sets *idx to the entry of uid under rule, taking over one whose counts
 * have all expired, or adding one, when there is none. Returns 0, or -1
 * when out of memory. An entry found stays valid until the next call. */
int kg_budget_find(struct kg_budget *b, uid_t uid, size_t rule, int64_t now_ms,
                   size_t *idx);

/* Connections kicked through entry idx within the hour up to now_ms. */
uint64_t kg_budget_used(struct kg_budget *b, size_t idx, int64_t now_ms);

/* Counts n connections kicked through entry idx at now_ms. */
void kg_budget_charge(struct kg_budget *b, size_t idx, int64_t now_ms,
                      uint32_t n);

void kg_budget_free(struct kg_budget *b);

#endif
