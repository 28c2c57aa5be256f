/* SPDX-License-Identifier: MIT */
/* Dovecot 2.4's alternative usernames as kickgate takes them: the rules
 * for a field's name and value, and "NAME=VALUE" as a command line or a
 * rule writes one. */
#ifndef KG_FIELDPARSE_H
#define KG_FIELDPARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/wire.h"

/* True when s[0..len) is a field name: 1 to KG_FIELD_NAME_MAX of
 * A-Z a-z 0-9 _ . - (Dovecot's userdb field names, never a '='). */
bool kg_field_name_ok(const char *s, size_t len);

/* True when s[0..len) is a field value: 1 to KG_FIELD_VALUE_MAX bytes of
 * valid UTF-8 without control bytes. */
bool kg_field_value_ok(const char *s, size_t len);

/* Splits s[0..len) at its first '=' into *out, whose pointers refer into
 * s; the name and the value are checked as above. Returns false, with
 * *why set to a short reason, on anything else. */
bool kg_field_parse(const char *s, size_t len, struct kg_field *out,
                    const char **why);

#endif
