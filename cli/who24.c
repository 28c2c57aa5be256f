/* SPDX-License-Identifier: MIT */
/* A held row: u32 pid, the client and destination kg_addr, u8
 * service_len, service, u16 user_len, user, u8 n_fields, and per field u8
 * column, u8 value_len, value; host order, copied in and out with memcpy
 * as nothing in the buffer is aligned. */
#include "cli/who24.h"

#include <stdlib.h>
#include <string.h>

/* The column named like f, added when new; -1 when there is no room. */
static int column(struct kg_who24 *w, const struct kg_field *f)
{
	for (size_t i = 0; i < w->n_cols; i++)
		if (w->col_len[i] == f->name_len &&
		    memcmp(w->col[i], f->name, f->name_len) == 0)
			return (int)i;
	if (w->n_cols == KG_WHO24_COLS_MAX)
		return -1;
	memcpy(w->col[w->n_cols], f->name, f->name_len);
	w->col_len[w->n_cols] = (uint8_t)f->name_len;
	return (int)w->n_cols++;
}

static size_t row_size(const struct kg_who_row *row)
{
	size_t n = 4 + 2 * sizeof(struct kg_addr) + 1 + row->service_len + 2 +
	           row->user_len + 1;

	for (size_t i = 0; i < row->n_fields; i++)
		n += 2 + row->fields[i].value_len;
	return n;
}

static uint8_t *put(uint8_t *at, const void *src, size_t n)
{
	if (n > 0)
		memcpy(at, src, n);
	return at + n;
}

enum kg_who24_err kg_who24_add(struct kg_who24 *w, const struct kg_who_row *row)
{
	size_t size = row_size(row);
	uint8_t *at = kg_hold_room(&w->rows, size);
	uint16_t user_len = (uint16_t)row->user_len;
	uint8_t byte;

	if (at == NULL)
		return KG_WHO24_NOMEM;
	at = put(at, &row->pid, 4);
	at = put(at, &row->addr, sizeof(row->addr));
	at = put(at, &row->dest, sizeof(row->dest));
	byte = (uint8_t)row->service_len;
	at = put(put(at, &byte, 1), row->service, row->service_len);
	at = put(put(at, &user_len, 2), row->user, row->user_len);
	byte = (uint8_t)row->n_fields;
	at = put(at, &byte, 1);
	for (size_t i = 0; i < row->n_fields; i++) {
		int col = column(w, &row->fields[i]);
		uint8_t head[2] = {(uint8_t)col,
		                   (uint8_t)row->fields[i].value_len};

		if (col < 0)
			return KG_WHO24_COLS;
		at = put(at, head, 2);
		at = put(at, row->fields[i].value, row->fields[i].value_len);
	}
	w->rows.len += size;
	return KG_WHO24_OK;
}

/* Copies n bytes at *at into dst and steps past them. */
static void take(const uint8_t **at, void *dst, size_t n)
{
	memcpy(dst, *at, n);
	*at += n;
}

bool kg_who24_next(const struct kg_who24 *w, size_t *off,
                   struct kg_who24_row *out)
{
	const uint8_t *at = w->rows.p + *off;
	uint16_t user_len;
	uint8_t n, head[2];

	if (*off >= w->rows.len)
		return false;
	memset(out->value_len, 0, sizeof(out->value_len));
	take(&at, &out->pid, 4);
	take(&at, &out->addr, sizeof(out->addr));
	take(&at, &out->dest, sizeof(out->dest));
	out->service_len = *at++;
	out->service = (const char *)at;
	at += out->service_len;
	take(&at, &user_len, 2);
	out->user_len = user_len;
	out->user = (const char *)at;
	at += user_len;
	for (n = *at++; n > 0; n--) {
		take(&at, head, 2);
		out->value[head[0]] = (const char *)at;
		out->value_len[head[0]] = head[1];
		at += head[1];
	}
	*off = (size_t)(at - w->rows.p);
	return true;
}

void kg_who24_free(struct kg_who24 *w)
{
	free(w->rows.p);
}
