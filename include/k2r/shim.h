/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shim.h - the fast-path producer shim: publish a record's notifications
 * right after Kafka acknowledged it, from the producer's own process.
 *
 * The shim reads the bridge's config file (the same rules, the same redis:
 * section), and maps each record it is given through the same rules into
 * byte-identical notifications on the same channels. k2r_shim_publish only
 * copies the record into a bounded queue and returns: a thread of the shim's
 * own maps and publishes, pipelined, on its own Redis connection(s) (a
 * server, Sentinel or Cluster, as the config says). When the queue is full
 * or Redis is slow or down, records are dropped and counted, never waited
 * for: the bridge, which follows the log, delivers them later.
 *
 * Two ways in:
 *   - the librdkafka plugin, build/libk2r_shim.so, loaded by any
 *     librdkafka-based producer with two properties and no code change:
 *         plugin.library.paths=/usr/local/lib/libk2r_shim.so
 *         k2r.config=/etc/kafka-redis-bridge/bridge.yaml
 *   - this C API, for a program that calls k2r_shim_publish from its
 *     delivery report callback (only for records delivered without error).
 *
 * This header is installed; it needs nothing but the C library. Include
 * <librdkafka/rdkafka.h> before it to get k2r_shim_publish_message(), which
 * publishes a delivered rd_kafka_message_t as it is.
 *
 * Thread safety: k2r_shim_publish and k2r_shim_stats may be called from any
 * thread, concurrently; k2r_shim_destroy once, when no other call runs.
 */
#ifndef K2R_SHIM_H
#define K2R_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; this is its API. */
#if defined(__GNUC__)
#define K2R_SHIM_API __attribute__((visibility("default")))
#else
#define K2R_SHIM_API
#endif

typedef struct k2r_shim_s k2r_shim_t;

/* What a record's timestamp means (librdkafka's rd_kafka_timestamp_type_t). */
typedef enum k2r_shim_tstype_e {
    K2R_SHIM_TS_NONE = 0,  /* no timestamp: `timestamp` is -1 */
    K2R_SHIM_TS_CREATE,    /* set by the producer */
    K2R_SHIM_TS_LOG_APPEND /* set by the broker */
} k2r_shim_tstype_t;

/* One header; `value` NULL (and value_len 0) for a header without a value. */
typedef struct k2r_shim_header_s {
    const char *name;
    const void *value;
    size_t value_len;
} k2r_shim_header_t;

/* One acknowledged record, as the delivery report gives it. Everything is
 * borrowed for the duration of the call: k2r_shim_publish copies it. */
typedef struct k2r_shim_record_s {
    const char *topic;
    int32_t partition;
    int64_t offset;    /* the offset the broker gave it (>= 0) */
    int64_t timestamp; /* ms since the epoch, -1 when unknown */
    k2r_shim_tstype_t tstype;
    const void *key; /* NULL when the record has no key */
    size_t key_len;
    const void *value; /* NULL for a tombstone */
    size_t value_len;
    const k2r_shim_header_t *headers; /* NULL when there are none */
    size_t nheaders;
} k2r_shim_record_t;

/* One line for the host's log: level as syslog's (3 error, 4 warning,
 * 6 info, 7 debug), the line without a newline. Called from the shim's
 * thread or from the caller's; must not call back into the shim. */
typedef void(k2r_shim_log_fn)(void *opaque, int level, const char *line);

/* Options of k2r_shim_new; zero (or NULL for the whole struct) means the
 * default of each. */
typedef struct k2r_shim_opts_s {
    size_t queue_records; /* most records queued (default 100000) */
    size_t queue_bytes;   /* most bytes queued: keys, values, headers (default 64 MiB) */
    int flush_timeout_ms; /* how long k2r_shim_destroy may publish what is queued
                             (default 1000; negative: 0) */
    k2r_shim_log_fn *log; /* NULL: lines go to stderr */
    void *log_opaque;
    int debug; /* 1: also log connects and per-batch debug lines */
} k2r_shim_opts_t;

/*
 * Loads the config file at `path` (the bridge's: rules, limits and the
 * redis: section) and starts the shim's thread, which connects to Redis on
 * its own (a Redis that is down is not an error here: records are dropped
 * and counted until it answers). Returns a new shim (release with
 * k2r_shim_destroy), or NULL with the reason in errstr: the config's first
 * error as `file:line:col: key: what`, and how many more there are.
 */
K2R_SHIM_API k2r_shim_t *k2r_shim_new(const char *path, const k2r_shim_opts_t *opts, char *errstr,
                                      size_t errstr_size);

/* k2r_shim_publish's result. */
#define K2R_SHIM_QUEUED 0 /* copied into the queue */
#define K2R_SHIM_DROPPED                                                                           \
    1 /* not queued: counted (queue full, shim closing, no memory, no offset) */

/*
 * Queues one acknowledged record; never blocks on Redis and never waits for
 * room. Returns K2R_SHIM_QUEUED or K2R_SHIM_DROPPED.
 */
K2R_SHIM_API int k2r_shim_publish(k2r_shim_t *shim, const k2r_shim_record_t *rec);

/* Counters since k2r_shim_new; each only grows. Records and notifications
 * are told apart: one record maps to zero or more notifications. */
typedef struct k2r_shim_stats_s {
    uint64_t enqueued;           /* records queued */
    uint64_t dropped_queue_full; /* records not queued: queue at its record or byte bound,
                                    or the shim closing */
    uint64_t dropped_no_offset;  /* records not queued: no offset (acks=0, implicit acks) */
    uint64_t skipped_by_rules;   /* records the rules did not publish, or not all of
                                    (no_rule, not_json, ...: the rules' skip reasons) */
    uint64_t published;          /* notifications Redis took (not counting suppressed) */
    uint64_t suppressed;         /* notifications dedupe found already published */
    uint64_t dropped_redis;      /* notifications not published: Redis unavailable or gone,
                                    or still queued when flush_timeout_ms ran out at close */
    uint64_t dropped_stale;      /* notifications older than their rule's max_age */
    uint64_t errors;             /* notifications Redis refused; records lost to no memory
                                    or given without a topic */
    uint64_t redis_connects;     /* connections made */
    uint64_t queued_records;     /* records in the queue now (a gauge) */
    uint64_t queued_bytes;       /* their bytes now (a gauge) */
    uint64_t thread_cpu_us;      /* CPU time the shim's thread used, in microseconds */
} k2r_shim_stats_t;

K2R_SHIM_API void k2r_shim_stats(k2r_shim_t *shim, k2r_shim_stats_t *out);

/*
 * Waits until every record queued before the call has been mapped and its
 * notifications published or dropped, for at most timeout_ms. Returns 0, or
 * -1 when the time ran out. Never needed for correctness; tests and
 * programs that exit use it.
 */
K2R_SHIM_API int k2r_shim_flush(k2r_shim_t *shim, int timeout_ms);

/* Publishes what is queued for at most opts.flush_timeout_ms (dropping the
 * rest, counted), stops the thread and releases the shim; NULL does nothing. */
K2R_SHIM_API void k2r_shim_destroy(k2r_shim_t *shim);

/* "kafka-redis-bridge shim <version>" (static storage). */
K2R_SHIM_API const char *k2r_shim_version(void);

#ifdef RD_KAFKA_VERSION
#include <stdlib.h>

/*
 * Publishes a message from a delivery report callback as it is: only when
 * rkmessage->err is 0 (an acknowledged record); otherwise nothing and
 * K2R_SHIM_DROPPED is not returned either (0). Uses the caller's own
 * librdkafka to read the message, so it is compiled into the caller.
 */
static inline int k2r_shim_publish_message(k2r_shim_t *shim, const rd_kafka_message_t *rkmessage) {
    k2r_shim_header_t stack[32], *hdrs = stack;
    rd_kafka_headers_t *rkh = NULL;
    rd_kafka_timestamp_type_t tstype;
    k2r_shim_record_t rec;
    size_t n = 0;
    int rc;

    if (rkmessage->err)
        return 0;
    rec.topic = rd_kafka_topic_name(rkmessage->rkt);
    rec.partition = rkmessage->partition;
    rec.offset = rkmessage->offset;
    rec.timestamp = rd_kafka_message_timestamp(rkmessage, &tstype);
    rec.tstype = tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME       ? K2R_SHIM_TS_CREATE
                 : tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? K2R_SHIM_TS_LOG_APPEND
                                                                : K2R_SHIM_TS_NONE;
    rec.key = rkmessage->key;
    rec.key_len = rkmessage->key_len;
    rec.value = rkmessage->payload;
    rec.value_len = rkmessage->len;
    if (rd_kafka_message_headers(rkmessage, &rkh) == RD_KAFKA_RESP_ERR_NO_ERROR && rkh) {
        size_t cnt = rd_kafka_header_cnt(rkh);
        if (cnt > sizeof(stack) / sizeof(stack[0]) &&
            !(hdrs = (k2r_shim_header_t *)malloc(cnt * sizeof(*hdrs))))
            return K2R_SHIM_DROPPED;
        for (size_t i = 0; i < cnt; i++) {
            if (rd_kafka_header_get_all(rkh, i, &hdrs[n].name, &hdrs[n].value,
                                        &hdrs[n].value_len) != RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (!hdrs[n].value)
                hdrs[n].value_len = 0;
            n++;
        }
    }
    rec.headers = n ? hdrs : NULL;
    rec.nheaders = n;
    rc = k2r_shim_publish(shim, &rec);
    if (hdrs != stack)
        free(hdrs);
    return rc;
}
#endif

#ifdef __cplusplus
}
#endif

#endif
