/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.h - decoding a Kafka record's value as JSON and reading values at paths.
 *
 * This is the only place the bridge decodes record payloads. It is a small C
 * interface over simdjson (src/json.cpp): a reusable parser that decodes one
 * value at a time and answers "what is at repository.owner.login?". It does no
 * I/O and knows nothing of rules, channels or Kafka.
 *
 * It is named for what it decodes, not for where the bytes come from: the
 * Kafka record itself is k2r_msgview_t (rules.h). It is not a general JSON
 * library: values are returned as borrowed views into the parser's own
 * storage, valid until the next k2r_json_parse() or k2r_json_destroy() on the
 * same parser.
 */
#ifndef K2R_JSON_H
#define K2R_JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One step of a path: an object key, which also selects an array element when
 * the key is a decimal number (index >= 0) and the value there is an array. */
typedef struct k2r_path_seg_s {
    char *key;      /* NUL-terminated object key */
    size_t key_len; /* strlen(key) */
    long index;     /* key as a non-negative array index, or -1 */
} k2r_path_seg_t;

/* A compiled path such as "repository.owner.login". */
typedef struct k2r_path_s {
    k2r_path_seg_t *segs;
    size_t nsegs;
    char *text; /* the path as the user wrote it, for messages */
} k2r_path_t;

/*
 * Compiles a dotted path ("a.b.0.c") into *path. "\." is a dot inside a key
 * and "\\" a backslash ("labels.app\.kubernetes\.io/name"); any other
 * backslash, and empty segments ("a..b", ".a", "a."), are refused. Returns 0,
 * or -1 with a reason in errstr. On success the
 * caller owns *path and releases it with k2r_path_free().
 */
int k2r_path_compile(const char *text, k2r_path_t *path, char *errstr, size_t errstr_size);

/* Releases what k2r_path_compile() allocated; a zeroed path is fine. */
void k2r_path_free(k2r_path_t *path);

typedef enum k2r_value_type_e {
    K2R_VALUE_ABSENT = 0, /* the path leads nowhere */
    K2R_VALUE_STRING,
    K2R_VALUE_INT,    /* fits int64_t */
    K2R_VALUE_UINT,   /* above INT64_MAX, fits uint64_t */
    K2R_VALUE_DOUBLE, /* a number with a fraction or exponent; an integer that fits neither
                         int64 nor uint64 makes the whole document fail to parse */
    K2R_VALUE_BOOL,
    K2R_VALUE_NULL,
    K2R_VALUE_OBJECT,
    K2R_VALUE_ARRAY
} k2r_value_type_t;

/* A value found at a path. `str`/`len` are set for STRING (unescaped UTF-8,
 * borrowed, not NUL-terminated). */
typedef struct k2r_value_s {
    k2r_value_type_t type;
    int b;
    const char *str;
    size_t len;
    int64_t i;
    uint64_t u;
    double d;
} k2r_value_t;

typedef struct k2r_json_s k2r_json_t;

/* Returns a new parser, or NULL when out of memory. */
k2r_json_t *k2r_json_new(void);

/* Releases the parser; NULL does nothing. */
void k2r_json_destroy(k2r_json_t *json);

/*
 * Decodes `len` bytes at `buf` (need not be NUL-terminated or padded; the
 * parser copies into its own padded buffer). The whole document is validated:
 * trailing garbage, invalid UTF-8 or a truncated value make it fail.
 * Returns 0, or -1 when the bytes are not one JSON value; k2r_json_error()
 * then says why. Any value from a previous parse becomes invalid.
 */
int k2r_json_parse(k2r_json_t *json, const char *buf, size_t len);

/* The reason for the last failed parse (borrowed, static storage). */
const char *k2r_json_error(const k2r_json_t *json);

/*
 * Looks `path` up in the last successfully parsed document and fills *out.
 * A path that leads nowhere (missing key, index out of range, stepping into a
 * scalar) gives K2R_VALUE_ABSENT. Must follow a successful parse.
 */
void k2r_json_get(k2r_json_t *json, const k2r_path_t *path, k2r_value_t *out);

#ifdef __cplusplus
}
#endif

#endif
