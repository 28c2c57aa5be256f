/* SPDX-License-Identifier: MIT */
/* The one place a request is validated and normalized: the CLI before
 * sending, the frontend for every client, the broker for every request it
 * is handed (it trusts the frontend no more than a client). */
#ifndef KG_REQUEST_NORM_H
#define KG_REQUEST_NORM_H

#include "proto/wire.h"

/* Checks r and rewrites its glob to normal form. Returns KG_EXIT_OK, or
 * KG_EXIT_USAGE / KG_EXIT_DATAERR with *why set to a one-line reason. */
int kg_request_normalize(struct kg_request *r, const char **why);

#endif
