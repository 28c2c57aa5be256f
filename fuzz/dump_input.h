/* SPDX-License-Identifier: MIT */
/* The input of the planner and who harnesses, decoded from fuzz bytes: a
 * small anvil dump (a few users, pids, addresses and services, shared
 * processes, unreadable lines, huge refcounts), a request (glob, network,
 * force) and a caller's scope, all drawn from small pools so that matches,
 * shared processes and scope boundaries are common. Every input decodes;
 * bytes that run out read as zeros. */
#ifndef KG_FUZZ_DUMP_INPUT_H
#define KG_FUZZ_DUMP_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "policy/scope.h"
#include "proto/wire.h"
#include "tests/reference/dump_reference.h"

#define DUMP_INPUT_LINES    24
#define DUMP_INPUT_NAMES    4
#define DUMP_INPUT_NAME_MAX 6
#define DUMP_INPUT_GLOBS    2

struct dump_input {
	struct kg_request req;
	struct kg_scope scope;
	/* A byte for the harness's own use (run size, processes kept). */
	uint8_t extra;
	struct plan_reference_line lines[DUMP_INPUT_LINES];
	size_t n_lines;
	/* What the scope and the lines point into. */
	struct kg_str scope_globs[DUMP_INPUT_GLOBS];
	struct kg_net scope_nets[DUMP_INPUT_GLOBS];
	char glob_text[DUMP_INPUT_GLOBS][DUMP_INPUT_NAME_MAX];
	char names[DUMP_INPUT_NAMES][DUMP_INPUT_NAME_MAX];
	size_t name_lens[DUMP_INPUT_NAMES];
};

/* Fills *in from data[0..size) for a request of op; *in must stay where
 * it is while used, as its scope and lines point into it. */
void dump_input_decode(const uint8_t *data, size_t size, uint8_t op,
                       struct dump_input *in);

#endif
