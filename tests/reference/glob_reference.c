/* SPDX-License-Identifier: MIT */
#include "tests/reference/glob_reference.h"

#include <stdlib.h>
#include <string.h>

static char fold(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* row[j]: glob[0..i) matches name[0..j); next is the row for i + 1. */
static void next_row(char g, const bool *row, bool *next, const char *name,
                     size_t name_len)
{
	next[0] = g == '*' && row[0];
	for (size_t j = 1; j <= name_len; j++)
		next[j] =
		        g == '*' ? next[j - 1] || row[j]
		                 : row[j - 1] && (g == '?' ||
		                                  fold(g) == fold(name[j - 1]));
}

bool glob_reference_match(const char *glob, size_t glob_len, const char *name,
                          size_t name_len)
{
	bool *row = calloc(2 * (name_len + 1), sizeof(*row));
	bool *next, result;

	if (row == NULL)
		abort();
	next = row + name_len + 1;
	row[0] = true;
	for (size_t i = 0; i < glob_len; i++) {
		next_row(glob[i], row, next, name, name_len);
		memcpy(row, next, (name_len + 1) * sizeof(*row));
	}
	result = row[name_len];
	free(row);
	return result;
}
