/* SPDX-License-Identifier: MIT */
#include "proto/fieldparse.h"

#include "proto/kg_limits.h"
#include "proto/text.h"

/* A field name is an instance name's characters, no longer than one. */
_Static_assert(KG_FIELD_NAME_MAX <= KG_NAME_MAX, "field names fit kg_name_ok");

#define STR_(x)        #x
#define STR(x)         STR_(x)
#define VALUE_MAX_TEXT STR(KG_FIELD_VALUE_MAX)

bool kg_field_name_ok(const char *s, size_t len)
{
	return len <= KG_FIELD_NAME_MAX && kg_name_ok(s, len);
}

const char *kg_field_value_fault(const char *s, size_t len)
{
	if (len == 0)
		return "the value is empty";
	if (len > KG_FIELD_VALUE_MAX)
		return "the value is longer than " VALUE_MAX_TEXT " bytes";
	if (!kg_text_ok(s, len))
		return "the value holds a control byte or invalid UTF-8";
	return NULL;
}

bool kg_field_value_ok(const char *s, size_t len)
{
	return kg_field_value_fault(s, len) == NULL;
}
