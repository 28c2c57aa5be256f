/* SPDX-License-Identifier: MIT */
/* Lines of Dovecot 2.4's anvil (protocol 2), as its CONNECT-DUMP reply
 * brings them:
 *
 *   VERSION \t anvil-server \t 2 \t MINOR
 *   NAME \t NAME ...            the alternative-username fields; may be empty
 *   PID \t USER \t SERVICE \t IP \t GUID \t DEST_IP [\t VALUE ...]
 *   ...                         one line per connection
 *   (empty line)
 *
 * Every field is \001-escaped. IP and DEST_IP may be empty, GUID is 32 hex
 * digits, and a row may carry fewer values than the header names (an empty
 * value is one the connection lacks). Every byte is hostile, as in
 * protocol 1: a line that breaks a rule here is malformed, never a
 * connection. The stream itself is framed by kg_dump_feed. */
#ifndef KG_ANVIL_V2_H
#define KG_ANVIL_V2_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/anvil_dump.h"

/* The line a protocol-2 anvil writes first; a protocol-1 anvil never
 * writes it (its lines hold a '/'). */
#define KG_ANVIL2_SERVER_PREFIX "VERSION\tanvil-server\t"

/* The handshake and request of an admin client: VERSION, then an empty
 * line (no service, no pid). */
#define KG_ANVIL2_HELLO "VERSION\tanvil-client\t2\t0\n\n"

/* True when line is the server's VERSION line for major version 2. */
bool kg_anvil2_version_ok(const char *line, size_t len);

/* Reads the header into names (each NUL-terminated) and *n. A name must
 * be 1..KG_FIELD_NAME_MAX of A-Z a-z 0-9 _ . - and unique, and there are
 * at most KG_FIELDS_MAX: otherwise KG_LINE_HEADER, and *n is 0. */
enum kg_line_err
kg_anvil2_parse_header(const char *line, size_t len,
                       char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1],
                       size_t *n);

/* Parses one connection line. Strings point into scratch (len bytes);
 * out->fields into fields, which names (n_names of them, from the
 * header) label. */
enum kg_line_err
kg_anvil2_parse_row(const char *line, size_t len,
                    char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1],
                    size_t n_names, struct kg_conn *out, char *scratch,
                    struct kg_field fields[KG_FIELDS_MAX]);

/* The pid a line that did not parse names in its first field, or 0. */
uint32_t kg_anvil2_recover_pid(const char *s, size_t len);

/* Writes c as a row (no '\n') as anvil would, its fields' values in the
 * order of names; returns the length, or 0 when cap is too small. For
 * tests and the fuzz property. */
size_t kg_anvil2_format_row(const struct kg_conn *c,
                            char names[KG_FIELDS_MAX][KG_FIELD_NAME_MAX + 1],
                            size_t n_names, char *buf, size_t cap);

#endif
