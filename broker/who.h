/* SPDX-License-Identifier: MIT */
/* The who collector: the in-scope connections a request names, as rows
 * ready for kg_rw_who.
 *
 * A connection is listed when it is inside the caller's scope and matches
 * the request (kg_conn_matches: glob and network, for the parts given).
 * Connections outside the scope are dropped as they arrive. Rows come out
 * sorted by user (bytewise), service, pid, then address; connections with
 * the same user, service, pid and address share one row, their refcounts
 * summed. */
#ifndef KG_WHO_H
#define KG_WHO_H

#include <stddef.h>
#include <stdint.h>

#include "broker/anvil_dump.h"
#include "policy/scope.h"
#include "proto/wire.h"

struct kg_who; /* opaque; holds only listed connections */

struct kg_who_result {
	size_t n_rows;
	uint32_t conns; /* connections listed (refcounts summed) */
	uint32_t pids;  /* distinct processes listed */
};

/* Rows sorted together into one run while the dump arrives (who.c). */
#define KG_WHO_RUN_ROWS 32768

/* Returns NULL on allocation failure. The request is copied; the scope
 * is used in place and must outlive the collector. The request's op and
 * flags are ignored: grouping rows for display is the client's job. */
struct kg_who *kg_who_new(const struct kg_request *req,
                          const struct kg_scope *scope);
/* As kg_who_new, with runs of at most run_rows rows (1 to
 * KG_WHO_RUN_ROWS), so that tests put a short listing through the merge
 * of many runs. NULL also when run_rows is out of range. */
struct kg_who *kg_who_new_runs(const struct kg_request *req,
                               const struct kg_scope *scope, size_t run_rows);
/* Adds one connection as parsed from the dump; -1 on allocation failure.
 * Usable directly as a kg_conn_fn. */
int kg_who_add(void *who, const struct kg_conn *c);
/* Sorts the rows; -1 on allocation failure. Afterwards kg_who_add
 * fails: the collection is complete. */
int kg_who_finish(struct kg_who *w, struct kg_who_result *out);
/* Row i (i < n_rows) in sorted order. Its strings live until
 * kg_who_free; its fields array until the next call. Rows of Dovecot
 * 2.4 are one connection each, with its GUID, and never share a row. */
void kg_who_row(const struct kg_who *w, size_t i, struct kg_who_row *out);
void kg_who_free(struct kg_who *w);

#endif
