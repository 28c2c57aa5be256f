/* SPDX-License-Identifier: MIT */
/* Dovecot 2.4's rows for who -1, held until the reply ends: doveadm 2.4
 * gives each alternative-username field a column, and which fields the
 * rows carry is known only once the last row has arrived. */
#ifndef KG_CLI_WHO24_H
#define KG_CLI_WHO24_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/hold.h"
#include "proto/wire.h"

/* Field columns one listing may have; past this, only JSON shows them. */
#define KG_WHO24_COLS_MAX 64

struct kg_who24 {
	struct kg_hold rows;
	/* The field names, in the order the rows first carried them. */
	size_t n_cols;
	uint8_t col_len[KG_WHO24_COLS_MAX];
	char col[KG_WHO24_COLS_MAX][KG_FIELD_NAME_MAX];
};

/* A held row, its field values by column; a value_len of 0 means the
 * row has no value in that column. Pointers refer into the held rows. */
struct kg_who24_row {
	uint32_t pid;
	struct kg_addr addr;
	struct kg_addr dest;
	const char *service;
	size_t service_len;
	const char *user;
	size_t user_len;
	const char *value[KG_WHO24_COLS_MAX];
	size_t value_len[KG_WHO24_COLS_MAX];
};

enum kg_who24_err {
	KG_WHO24_OK = 0,
	KG_WHO24_NOMEM, /* the rows outgrow KG_HOLD_MAX or memory */
	KG_WHO24_COLS,  /* more than KG_WHO24_COLS_MAX field names */
};

/* Holds a row as the wire decoder checked it; its field names not seen
 * before become the next columns. */
enum kg_who24_err kg_who24_add(struct kg_who24 *w,
                               const struct kg_who_row *row);

/* Steps *off (from 0) through the held rows, in the order held; false
 * after the last. */
bool kg_who24_next(const struct kg_who24 *w, size_t *off,
                   struct kg_who24_row *out);

void kg_who24_free(struct kg_who24 *w);

#endif
