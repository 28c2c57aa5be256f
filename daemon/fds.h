/* SPDX-License-Identifier: MIT */
/* Descriptors a kickgated process holds: exactly those its role needs.
 * A descriptor left open by whoever started the daemon (a shell's pipe,
 * a socket to another service) would otherwise reach the frontend, which
 * parses hostile input, and the broker, which keeps CAP_KILL. */
#ifndef KG_FDS_H
#define KG_FDS_H

#include <stddef.h>

/* The most descriptors a role keeps besides 0, 1 and 2. */
#define KG_FDS_KEEP_MAX 3

/* Moves fds[0..n) to 3, 4, ... (close-on-exec; fds[] is updated) and
 * closes every other descriptor above 2. n is at most KG_FDS_KEEP_MAX.
 * Returns 0, or -1 with errno set. */
int kg_fds_keep_only(int *fds, size_t n);

#endif
