/* SPDX-License-Identifier: Apache-2.0 */
/*
 * envelope.h - one Kafka record written as a JSON line, for `kafka-redis-bridge map --envelope`.
 *
 * An envelope carries what the rules can read besides the value: topic,
 * partition, offset, timestamp, key and headers.
 *
 *   {"topic":"github.events","partition":0,"offset":42,"timestamp":1700000000000,
 *    "key":"octocat","headers":{"X-GitHub-Event":"push","trace":null},
 *    "value":{"id":"1","type":"push"}}
 *
 * Only `value` is required. `value` is any JSON value, which becomes the
 * record's bytes serialised compactly by jansson; a string, whose UTF-8 bytes
 * are the record's bytes as they are (so a value that is not JSON can be
 * given); or null, a tombstone. `key` and each header value are a string or
 * null (no key; a header without a value). Headers keep the order of the
 * object. Unknown keys and duplicate keys are refused, so a misspelt field
 * is an error rather than a silently missing header.
 *
 * Pure: no I/O. It knows nothing of rules; it only turns a line into the
 * k2r_msgview_t that k2r_rules_map() takes.
 */
#ifndef K2R_ENVELOPE_H
#define K2R_ENVELOPE_H

#include <stddef.h>

#include "k2r/rules.h"

/*
 * A parsed envelope. `msg` is the record; every pointer in it points into
 * storage the envelope owns, valid until k2r_envelope_clear() or the next
 * k2r_envelope_parse() on it. msg.topic is NULL when the line names no topic:
 * the caller then sets msg.topic to its default (a pointer the caller keeps
 * alive; the envelope never frees what msg points to, only its own storage).
 */
typedef struct k2r_envelope_s {
    k2r_msgview_t msg;
    char *storage; /* topic, key, value, header names and values, each NUL-terminated */
    k2r_msgview_header_t *headers; /* msg.headers; NULL when there are none */
} k2r_envelope_t;

/* k2r_envelope_parse() results. */
#define K2R_ENVELOPE_OK      0
#define K2R_ENVELOPE_INVALID (-1)          /* the line is not a valid envelope; errstr says why */
#define K2R_ENVELOPE_NOMEM   K2R_ERR_NOMEM /* out of memory (errors.h) */

/*
 * Parses the `len` bytes at `line` (no NUL needed; the caller strips the line
 * end) into *env. *env must be zeroed or hold an earlier parse, which is
 * released first. Returns K2R_ENVELOPE_OK, after which the caller releases
 * *env with k2r_envelope_clear(); or K2R_ENVELOPE_INVALID with the reason in
 * errstr (e.g. "partition: expected an integer, found string"), or
 * K2R_ENVELOPE_NOMEM, both with *env zeroed.
 *
 * errstr may quote bytes of the line as jansson reports them, which are not
 * necessarily valid UTF-8.
 */
int k2r_envelope_parse(const char *line, size_t len, k2r_envelope_t *env, char *errstr,
                       size_t errstr_size);

/* Releases what the envelope owns and zeroes it; a zeroed envelope or NULL is fine. */
void k2r_envelope_clear(k2r_envelope_t *env);

#endif
