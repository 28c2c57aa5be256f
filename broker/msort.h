/* SPDX-License-Identifier: MIT */
/* A stable merge sort for the broker.
 *
 * glibc's qsort asks the kernel for the machine's memory size (sysinfo)
 * the first time it sorts more than a kilobyte, a call the broker's
 * seccomp filter does not allow; and its worst case depends on the input.
 * This sort makes no system call, allocates nothing (the caller passes
 * the scratch space) and takes O(n log n) comparisons on any input. */
#ifndef KG_MSORT_H
#define KG_MSORT_H

#include <stddef.h>

/* Negative, zero or positive as a sorts before, with or after b. */
typedef int (*kg_cmp_fn)(const void *a, const void *b, void *ctx);

/* Sorts the n elements of size bytes at base. scratch holds n * size
 * bytes; its contents are undefined afterwards. */
void kg_msort(void *base, void *scratch, size_t n, size_t size, kg_cmp_fn cmp,
              void *ctx);

#endif
