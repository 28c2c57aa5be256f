/* SPDX-License-Identifier: MIT */
#include "proto/fieldparse.h"

#include <string.h>

#include "proto/text.h"

/* A field name is an instance name's characters, no longer than one. */
_Static_assert(KG_FIELD_NAME_MAX <= KG_NAME_MAX, "field names fit kg_name_ok");

#define STR_(x) #x
#define STR(x)  STR_(x)

bool kg_field_name_ok(const char *s, size_t len)
{
	return len <= KG_FIELD_NAME_MAX && kg_name_ok(s, len);
}

bool kg_field_value_ok(const char *s, size_t len)
{
	return len > 0 && len <= KG_FIELD_VALUE_MAX && kg_text_ok(s, len);
}

/* The reason a value fails kg_field_value_ok. */
static const char *value_fault(size_t len)
{
	if (len == 0)
		return "the value is empty";
	if (len > KG_FIELD_VALUE_MAX)
		return "the value is longer than " STR(
		        KG_FIELD_VALUE_MAX) " bytes";
	return "the value holds a control byte or invalid UTF-8";
}

bool kg_field_parse(const char *s, size_t len, struct kg_field *out,
                    const char **why)
{
	const char *eq = len > 0 ? memchr(s, '=', len) : NULL;

	if (eq == NULL) {
		*why = "NAME=VALUE expected";
		return false;
	}
	out->name = s;
	out->name_len = (size_t)(eq - s);
	out->value = eq + 1;
	out->value_len = len - out->name_len - 1;
	if (!kg_field_name_ok(out->name, out->name_len)) {
		*why = out->name_len == 0
		               ? "the name is empty"
		               : "the name must have 1 to " STR(
		                         KG_FIELD_NAME_MAX) " of A-Z a-z 0-9 _ "
		                                            ". -";
		return false;
	}
	if (!kg_field_value_ok(out->value, out->value_len)) {
		*why = value_fault(out->value_len);
		return false;
	}
	return true;
}
