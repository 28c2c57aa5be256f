/* SPDX-License-Identifier: MIT */
/* Dovecot 2.4's alternative usernames as kickgate takes them: the rules
 * for a field's name and value, which the wire, the CLI and the policy
 * share. */
#ifndef KG_FIELDPARSE_H
#define KG_FIELDPARSE_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is a field name: 1 to KG_FIELD_NAME_MAX of
 * A-Z a-z 0-9 _ . - (Dovecot's userdb field names, never a '='). */
bool kg_field_name_ok(const char *s, size_t len);

/* True when s[0..len) is a field value: 1 to KG_FIELD_VALUE_MAX bytes of
 * valid UTF-8 without control bytes. */
bool kg_field_value_ok(const char *s, size_t len);

/* Why s[0..len) is not a field value, as a short phrase ("the value is
 * empty"); NULL when it is one. */
const char *kg_field_value_fault(const char *s, size_t len);

#endif
