/* SPDX-License-Identifier: MIT */
#include "broker/budget.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS 60000

static int64_t minute_of(int64_t now_ms)
{
	return now_ms / MINUTE_MS;
}

/* Forgets the minutes that left the window since e was last advanced. */
static void advance(struct kg_budget_entry *e, int64_t minute)
{
	if (minute <= e->minute)
		return;
	if (minute - e->minute >= KG_BUDGET_MINUTES)
		memset(e->kicked, 0, sizeof(e->kicked));
	else
		for (int64_t m = e->minute + 1; m <= minute; m++)
			e->kicked[m % KG_BUDGET_MINUTES] = 0;
	e->minute = minute;
}

static bool expired(const struct kg_budget_entry *e, int64_t minute)
{
	return minute - e->minute >= KG_BUDGET_MINUTES;
}

/* An entry past its window is reused, so the ledger holds only callers
 * who kicked within the last hour. */
static struct kg_budget_entry *slot(struct kg_budget *b, int64_t minute)
{
	struct kg_budget_entry *grown;
	size_t cap;

	for (size_t i = 0; i < b->n; i++)
		if (expired(&b->entries[i], minute))
			return &b->entries[i];
	if (b->n == b->cap) {
		cap = b->cap > 0 ? b->cap * 2 : 16;
		grown = realloc(b->entries, cap * sizeof(*grown));
		if (grown == NULL)
			return NULL;
		b->entries = grown;
		b->cap = cap;
	}
	return &b->entries[b->n++];
}

int kg_budget_find(struct kg_budget *b, uid_t uid, size_t rule, int64_t now_ms,
                   size_t *idx)
{
	int64_t minute = minute_of(now_ms);
	struct kg_budget_entry *e;

	for (size_t i = 0; i < b->n; i++) {
		if (b->entries[i].uid == uid && b->entries[i].rule == rule) {
			*idx = i;
			return 0;
		}
	}
	e = slot(b, minute);
	if (e == NULL)
		return -1;
	memset(e, 0, sizeof(*e));
	e->uid = uid;
	e->rule = rule;
	e->minute = minute;
	*idx = (size_t)(e - b->entries);
	return 0;
}

uint64_t kg_budget_used(struct kg_budget *b, size_t idx, int64_t now_ms)
{
	struct kg_budget_entry *e = &b->entries[idx];
	uint64_t sum = 0;

	advance(e, minute_of(now_ms));
	for (size_t i = 0; i < KG_BUDGET_MINUTES; i++)
		sum += e->kicked[i];
	return sum;
}

void kg_budget_charge(struct kg_budget *b, size_t idx, int64_t now_ms,
                      uint32_t n)
{
	struct kg_budget_entry *e = &b->entries[idx];
	int64_t minute = minute_of(now_ms);
	uint32_t *slot_count;

	advance(e, minute);
	slot_count = &e->kicked[minute % KG_BUDGET_MINUTES];
	*slot_count =
	        n > UINT32_MAX - *slot_count ? UINT32_MAX : *slot_count + n;
}

void kg_budget_free(struct kg_budget *b)
{
	free(b->entries);
	*b = (struct kg_budget){0};
}
