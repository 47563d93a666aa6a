/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgview.h - the record view: one Kafka record as plain fields.
 *
 * What the Kafka source (kafka.c, k2r_kafka_view) hands the loop instead of
 * librdkafka's message, so that nothing past the edge reads librdkafka's
 * structs or decodes its headers and timestamps; and what the rules map
 * (k2r_rules_map), whether the record came from Kafka, from `map` on stdin
 * or from a test. Every pointer is borrowed:
 * valid until the message it came from is released, and the headers array
 * until the source fills the next view.
 *
 * A header of its own rather than part of batch.h or kafka.h: the source
 * fills it without knowing of batches, and pure code (the batch, the rules'
 * callers, tests) reads it without knowing of librdkafka.
 *
 * Not here: the message's lifetime (kafka.c), what the record means
 * (map.c).
 */
#ifndef K2R_MSGVIEW_H
#define K2R_MSGVIEW_H

#include <stddef.h>
#include <stdint.h>

/* What a record's timestamp means. */
typedef enum k2r_msgview_tstype_e {
    K2R_MSGVIEW_TS_NONE = 0,  /* no timestamp: `timestamp` is -1 */
    K2R_MSGVIEW_TS_CREATE,    /* set by the producer */
    K2R_MSGVIEW_TS_LOG_APPEND /* set by the broker */
} k2r_msgview_tstype_t;

/* One header; `value` is NULL (and value_len 0) for a null value. */
typedef struct k2r_msgview_header_s {
    const char *name;
    const char *value;
    size_t value_len;
} k2r_msgview_header_t;

typedef struct k2r_msgview_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp; /* ms since the epoch, -1 when unknown */
    const char *key;   /* NULL when the record has no key */
    size_t key_len;
    const char *value; /* NULL for a tombstone */
    size_t value_len;
    const k2r_msgview_header_t *headers; /* NULL when there are none */
    size_t nheaders;
    k2r_msgview_tstype_t tstype; /* last: a record written without it has none */
} k2r_msgview_t;

#endif
