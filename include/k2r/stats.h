/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats.h - the bridge's counters since start, as one plain struct.
 *
 * The loop (bridge.c) counts into it in its own thread, and the metrics
 * registry (metrics.h) keeps a copy to render; this header is what both share,
 * so the registry needs nothing of the loop. Plain integers, no atomics: a
 * copy crosses threads under the registry's mutex (k2r_metrics_update).
 *
 * Not here: how the counters are counted (bridge.c) or rendered (metrics.c).
 */
#ifndef K2R_STATS_H
#define K2R_STATS_H

#include <stdint.h>

#include "k2r/rules.h" /* K2R_SKIP__COUNT */

/* One Redis connection the sink keeps (the server, or a cluster primary):
 * the series of k2r_redis_shard_up and k2r_redis_shard_connects_total. */
#define K2R_MAX_SHARDS 32 /* more primaries than this are not broken down */
typedef struct k2r_shard_stats_s {
    char addr[64];     /* host:port */
    int up;            /* connected */
    uint64_t connects; /* successful connections since start */
} k2r_shard_stats_t;

/* Counters since start; read with k2r_bridge_stats(). */
typedef struct k2r_bridge_stats_s {
    uint64_t consumed;                 /* records taken from Kafka */
    uint64_t consumed_bytes;           /* their keys, values and headers */
    uint64_t published_bytes;          /* channels and messages Redis acknowledged */
    uint64_t published;                /* PUBLISH commands Redis acknowledged */
    uint64_t no_subscribers;           /* ... of which reached zero subscribers */
    uint64_t publish_errors;           /* PUBLISH commands Redis refused (each record went to its
                                          rule's on_error; skipped[K2R_SKIP_REDIS_ERROR] counts
                                          the skipped ones) */
    uint64_t stale;                    /* notifications not sent: record older than max_age */
    uint64_t dropped_unavailable;      /* notifications given up while Redis was unavailable
                                          (redis.on_unavailable: drop) */
    uint64_t dedup_suppressed;         /* notifications the dedupe script did not publish: the
                                          producer shim (or an earlier attempt) had */
    uint64_t skipped[K2R_SKIP__COUNT]; /* records a rule failed on with on_error: skip, by
                                          reason (with continue: true, other rules may still
                                          have published for them) */
    uint64_t dead_lettered;            /* records the dead-letter topic acknowledged */
    uint64_t dead_letter_failures;     /* dead-letter deliveries that failed (retried) */
    uint64_t stopped_partitions;       /* partitions stopped by on_error: stop */
    uint64_t dropped_stopped;          /* records of stopped partitions dropped unprocessed */
    uint64_t reloads;                  /* successful rule reloads */
    uint64_t redis_connects;           /* successful (re)connections */
    uint64_t redis_failures;           /* lost connections and failed attempts */
    uint64_t dropped_on_revoke;        /* unfinished publishes given up with their partition */
    uint64_t queue_pauses;             /* times fetching was paused because the records
                                          librdkafka had queued carried more key and header
                                          bytes than 4 x limits.max_inflight_bytes */
    uint64_t inflight_records;         /* now: records in the batch */
    uint64_t inflight_bytes;           /* now: their keys, values and headers */
} k2r_bridge_stats_t;

#endif
