/* SPDX-License-Identifier: MIT */
/* The monotonic clock the daemon's deadlines are measured on. */
#ifndef KG_CLOCK_H
#define KG_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: never jumps with the wall clock. */
int64_t kg_now_ms(void);

#endif
