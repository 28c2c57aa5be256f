/* SPDX-License-Identifier: MIT */
/* Strict network parsing ("192.0.2.0/24", "2001:db8::1") and the
 * doveadm-style classification of a positional argument. */
#ifndef KG_NETPARSE_H
#define KG_NETPARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/addr.h"

/* Parses s[0..len) as ip or ip/bits: strict inet_pton syntax, decimal
 * prefix without leading zeros, host bits cleared, IPv4-mapped folded to
 * IPv4 (prefix - 96). Returns false, with *why set to a short reason, on
 * anything else. */
bool kg_net_parse(const char *s, size_t len, struct kg_net *out,
                  const char **why);

enum kg_arg_kind {
	KG_ARG_GLOB,    /* a user glob */
	KG_ARG_NET,     /* a network, parsed into *net */
	KG_ARG_BAD_NET, /* looks like an address but is not one: error (65) */
};

/* doveadm's rule: a network if it parses as one, else a user glob, except
 * that an argument that looks like a network (the rule is in kickgate(1))
 * but is not a valid one is an error. */
enum kg_arg_kind kg_arg_classify(const char *s, size_t len, struct kg_net *net,
                                 const char **why);

#endif
