/* SPDX-License-Identifier: Apache-2.0 */
/*
 * envelope.c - a JSON line into a k2r_msgview_t, for `kafka-redis-bridge map --envelope`.
 *
 * The line is decoded with jansson once, every field is checked in the order
 * the line gives them, and only then is anything copied: the sizes are summed
 * and all the strings (topic, key, value, header names and values) go into
 * one block, so a parsed envelope is two allocations and a failed one none.
 *
 * Duplicate keys are refused at every level (JSON_REJECT_DUPLICATES): in the
 * envelope they would be ambiguous, and in a value jansson would keep only
 * one of them, silently changing the record. A value that must be kept byte
 * for byte (duplicate keys, big integers, reals in a given spelling) is given
 * as a string instead. Strings may hold NUL bytes (JSON_ALLOW_NUL), since
 * keys, values and header values are byte strings with lengths; the topic,
 * a C string, may not.
 *
 * No I/O, no rules: main.c reads the lines and maps the records.
 */
#include "k2r/envelope.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How the value is written when it is not given as a string or null. */
#define VALUE_DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

/* The fields of one line, borrowed from the decoded document. */
typedef struct fields_s {
    json_t *topic, *partition, *offset, *timestamp, *key, *headers, *value;
} fields_t;

static int invalid(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int invalid(char *errstr, size_t errstr_size, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
    return K2R_ENVELOPE_INVALID;
}

/* The JSON type of j as messages name it. */
static const char *type_name(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
    default:
        return "null";
    }
}

/* Checks that j is an integer in [min, max]; `range` describes the range in messages. */
static int check_int(const json_t *j, const char *name, json_int_t min, json_int_t max,
                     const char *range, char *errstr, size_t errstr_size) {
    json_int_t v;

    if (!json_is_integer(j))
        return invalid(errstr, errstr_size, "%s: expected an integer, found %s", name,
                       type_name(j));
    v = json_integer_value(j);
    if (v < min || v > max)
        return invalid(errstr, errstr_size, "%s: %lld is out of range (%s)", name, (long long)v,
                       range);
    return K2R_ENVELOPE_OK;
}

/* Checks one field of the envelope and records it in *f. */
static int check_field(const char *name, json_t *j, fields_t *f, char *errstr, size_t errstr_size) {
    if (strcmp(name, "topic") == 0) {
        if (!json_is_string(j))
            return invalid(errstr, errstr_size, "topic: expected a string, found %s", type_name(j));
        if (json_string_length(j) == 0)
            return invalid(errstr, errstr_size, "topic: empty");
        if (memchr(json_string_value(j), '\0', json_string_length(j)))
            return invalid(errstr, errstr_size, "topic: contains a NUL byte");
        f->topic = j;
    } else if (strcmp(name, "partition") == 0) {
        f->partition = j;
        return check_int(j, name, 0, INT32_MAX, "0-2147483647", errstr, errstr_size);
    } else if (strcmp(name, "offset") == 0) {
        f->offset = j;
        return check_int(j, name, 0, INT64_MAX, "0-9223372036854775807", errstr, errstr_size);
    } else if (strcmp(name, "timestamp") == 0) {
        f->timestamp = j;
        return check_int(j, name, -1, INT64_MAX, "-1 for unknown, else ms since the epoch", errstr,
                         errstr_size);
    } else if (strcmp(name, "key") == 0) {
        if (!json_is_string(j) && !json_is_null(j))
            return invalid(errstr, errstr_size, "key: expected a string or null, found %s",
                           type_name(j));
        f->key = j;
    } else if (strcmp(name, "headers") == 0) {
        const char *hname;
        json_t *hval;

        if (!json_is_object(j))
            return invalid(errstr, errstr_size, "headers: expected an object, found %s",
                           type_name(j));
        json_object_foreach(j, hname, hval) {
            if (!json_is_string(hval) && !json_is_null(hval))
                return invalid(errstr, errstr_size,
                               "headers[\"%s\"]: expected a string or null, found %s", hname,
                               type_name(hval));
        }
        f->headers = j;
    } else if (strcmp(name, "value") == 0) {
        f->value = j;
    } else {
        return invalid(errstr, errstr_size,
                       "unknown key \"%s\" (expected topic, partition, offset, timestamp, key, "
                       "headers or value)",
                       name);
    }
    return K2R_ENVELOPE_OK;
}

/* Copies n bytes and a NUL to *p, advances *p and returns where they went. */
static const char *put(char **p, const char *s, size_t n) {
    char *at = *p;

    if (n)
        memcpy(at, s, n);
    at[n] = '\0';
    *p = at + n + 1;
    return at;
}

int k2r_envelope_parse(const char *line, size_t len, k2r_envelope_t *env, char *errstr,
                       size_t errstr_size) {
    fields_t f = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    k2r_msgview_t *msg = &env->msg;
    json_error_t jerr;
    json_t *root;
    const char *name, *nul;
    json_t *j;
    size_t size = 0, dump_len = 0, nheaders = 0;
    char *p;
    int rc = K2R_ENVELOPE_OK;

    k2r_envelope_clear(env);
    /* jansson reports a raw NUL as "end of file expected near end of file". */
    nul = memchr(line, '\0', len);
    if (nul)
        return invalid(errstr, errstr_size, "not JSON: NUL byte at offset %zu",
                       (size_t)(nul - line));
    root = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return K2R_ENVELOPE_NOMEM;
        return invalid(errstr, errstr_size, "not JSON: %s", jerr.text);
    }
    if (!json_is_object(root)) {
        rc = invalid(errstr, errstr_size, "expected an object, found %s", type_name(root));
        goto done;
    }
    json_object_foreach(root, name, j) {
        rc = check_field(name, j, &f, errstr, errstr_size);
        if (rc != K2R_ENVELOPE_OK)
            goto done;
    }
    if (!f.value) {
        rc = invalid(errstr, errstr_size, "value: missing (null for a tombstone)");
        goto done;
    }

    /* Everything is valid: size the storage, then copy into it. */
    if (f.topic)
        size += json_string_length(f.topic) + 1;
    if (json_is_string(f.key))
        size += json_string_length(f.key) + 1;
    if (f.headers) {
        json_t *hval;

        json_object_foreach(f.headers, name, hval) {
            size += strlen(name) + 1 + (json_is_string(hval) ? json_string_length(hval) + 1 : 0);
            nheaders++;
        }
    }
    if (json_is_string(f.value)) {
        size += json_string_length(f.value) + 1;
    } else if (!json_is_null(f.value)) {
        /* Never 0 for a valid value: that means jansson ran out of memory. */
        dump_len = json_dumpb(f.value, NULL, 0, VALUE_DUMP_FLAGS);
        if (dump_len == 0) {
            rc = K2R_ENVELOPE_NOMEM;
            goto done;
        }
        size += dump_len + 1;
    }
    env->storage = malloc(size ? size : 1);
    env->headers = nheaders ? calloc(nheaders, sizeof(*env->headers)) : NULL;
    if (!env->storage || (nheaders && !env->headers)) {
        rc = K2R_ENVELOPE_NOMEM;
        goto done;
    }

    p = env->storage;
    msg->topic = f.topic ? put(&p, json_string_value(f.topic), json_string_length(f.topic)) : NULL;
    msg->partition = f.partition ? (int32_t)json_integer_value(f.partition) : 0;
    msg->offset = f.offset ? (int64_t)json_integer_value(f.offset) : 0;
    msg->timestamp = f.timestamp ? (int64_t)json_integer_value(f.timestamp) : -1;
    if (json_is_string(f.key)) {
        msg->key_len = json_string_length(f.key);
        msg->key = put(&p, json_string_value(f.key), msg->key_len);
    }
    if (nheaders) {
        void *it = json_object_iter(f.headers);

        /* The same walk as the count above, so exactly nheaders entries. */
        for (size_t i = 0; i < nheaders; i++, it = json_object_iter_next(f.headers, it)) {
            k2r_msgview_header_t *h = &env->headers[i];
            json_t *hval = json_object_iter_value(it);

            name = json_object_iter_key(it);
            h->name = put(&p, name, strlen(name));
            if (json_is_string(hval)) {
                h->value_len = json_string_length(hval);
                h->value = put(&p, json_string_value(hval), h->value_len);
            }
        }
        msg->headers = env->headers;
        msg->nheaders = nheaders;
    }
    if (json_is_string(f.value)) {
        msg->value_len = json_string_length(f.value);
        msg->value = put(&p, json_string_value(f.value), msg->value_len);
    } else if (!json_is_null(f.value)) {
        if (json_dumpb(f.value, p, dump_len, VALUE_DUMP_FLAGS) != dump_len) {
            rc = K2R_ENVELOPE_NOMEM;
            goto done;
        }
        p[dump_len] = '\0';
        msg->value = p;
        msg->value_len = dump_len;
    }

done:
    json_decref(root);
    if (rc != K2R_ENVELOPE_OK)
        k2r_envelope_clear(env);
    return rc;
}

void k2r_envelope_clear(k2r_envelope_t *env) {
    if (!env)
        return;
    free(env->storage);
    free(env->headers);
    memset(env, 0, sizeof(*env));
}
