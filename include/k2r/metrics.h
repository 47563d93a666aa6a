/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - what the bridge exposes to operators: the Prometheus text on
 * /metrics and the answers of /healthz and /readyz.
 *
 * The record path never touches this module. The bridge's one thread counts
 * in plain integers of its own (bridge.c) and, at most a few times a second,
 * copies them here with k2r_metrics_update() under a mutex; the HTTP thread
 * (http.c) renders from the last copy under the same mutex. So counting costs
 * nothing measurable per record, and a scrape never sees a half-written
 * update.
 *
 * Rendering is pure (k2r_metrics_render into a buffer), so the exact text is
 * unit-tested without sockets. The counters' struct is stats.h, shared with
 * the loop, so this module does not depend on the loop (bridge.h).
 */
#ifndef K2R_METRICS_H
#define K2R_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "k2r/rules.h"
#include "k2r/stats.h"

/* Histogram buckets (upper bounds in seconds), fixed for every histogram. */
#define K2R_HIST_BUCKETS 14

/* A histogram the bridge fills in its own thread and copies here. */
typedef struct k2r_hist_s {
    uint64_t counts[K2R_HIST_BUCKETS + 1]; /* per bucket, the last one is +Inf; not cumulative */
    uint64_t count;
    double sum; /* seconds */
} k2r_hist_t;

/* The bucket bounds (seconds), K2R_HIST_BUCKETS of them, increasing. */
extern const double k2r_hist_bounds[K2R_HIST_BUCKETS];

/* Adds one observation of `seconds`. */
void k2r_hist_observe(k2r_hist_t *h, double seconds);

/* Counters of one rule (label rule="name"). */
typedef struct k2r_rule_stats_s {
    char name[128];
    uint64_t published;      /* PUBLISH acknowledged */
    uint64_t no_subscribers; /* ... reaching zero subscribers */
    uint64_t stale;          /* not sent: older than max_age */
    /* records the rule failed on, by reason (k2r_skip_t) and action
     * (k2r_action_t: skip, dead-letter, stop) */
    uint64_t failed[K2R_SKIP__COUNT][4];
    /* The rule's on_error as a k2r_action_t, when the rule is loaded: its
     * failures are rendered for every reason from start (at 0 until one
     * happens), so that increase() sees the first; K2R_ACTION_NONE (the
     * "(none)" entry, a rule of an old reload): only what happened. */
    int action;
} k2r_rule_stats_t;

/*
 * Counters of one topic (label topic="name"). The set is bounded: the topics
 * named in kafka.topics from start, and the topics a ^regex subscription has
 * had assigned, up to K2R_MAX_TOPICS; records of topics past that count under
 * K2R_OTHER_TOPIC. Series never go away, so a counter never restarts.
 */
#define K2R_MAX_TOPICS  256
#define K2R_OTHER_TOPIC "(other)"
typedef struct k2r_topic_stats_s {
    char name[256];         /* a Kafka topic name is at most 249 bytes */
    uint64_t consumed;      /* records taken from Kafka */
    uint64_t published;     /* notifications of its records Redis acknowledged */
    uint64_t offset_resets; /* assignments whose committed offset lay beyond the end */
} k2r_topic_stats_t;

/*
 * The entry of topic `name` in the array *topics of *n entries (with room for
 * *cap; grown as needed), added at zero when new. Once K2R_MAX_TOPICS topics
 * have an entry, any other shares one more, named K2R_OTHER_TOPIC. Returns
 * its index (indices never change), or SIZE_MAX when out of memory.
 */
size_t k2r_topic_stats_find(k2r_topic_stats_t **topics, size_t *n, size_t *cap, const char *name);

/* Consumer lag of one partition, from librdkafka's statistics. */
typedef struct k2r_lag_s {
    char topic[256];
    int32_t partition;
    int64_t lag; /* consumer_lag_stored (or consumer_lag); -1 when unknown */
} k2r_lag_t;

/* Everything /metrics, /healthz and /readyz answer from. */
typedef struct k2r_snapshot_s {
    k2r_bridge_stats_t stats;
    k2r_rule_stats_t *rules; /* copied by k2r_metrics_update */
    size_t nrules;
    k2r_topic_stats_t *topics; /* likewise */
    size_t ntopics;
    k2r_hist_t publish_seconds; /* PUBLISH round trip, per batch of replies */
    k2r_hist_t age_seconds;     /* now minus Kafka timestamp, at publish */
    uint64_t redis_reconnects;
    uint64_t redis_command_errors;
    uint64_t reloads_ok, reloads_failed;
    uint64_t rebalances;
    uint64_t commits_ok, commits_failed; /* offset commits that librdkafka reported */
    int partitions_assigned;
    int partitions_paused;
    /* Health and readiness. */
    int64_t loop_ms;    /* k2r_now_ms() of the main loop's last turn */
    int config_loaded;  /* 1 once the config was loaded (always, when running) */
    int group_joined;   /* 1 while the consumer is a member of its group */
    int redis_writable; /* 1 while Redis is connected and taking PUBLISH */
    int stopping;       /* 1 once a stop was requested */
    /* Per Redis connection (one, or one per cluster primary). */
    k2r_shard_stats_t shards[K2R_MAX_SHARDS];
    size_t nshards;
} k2r_snapshot_t;

typedef struct k2r_metrics_s k2r_metrics_t;

/* A new registry; version and librdkafka (the library's version as it runs,
 * rd_kafka_version_str()) go into k2r_build_info. Both are copied. NULL when
 * out of memory. */
k2r_metrics_t *k2r_metrics_new(const char *version, const char *librdkafka);
void k2r_metrics_destroy(k2r_metrics_t *m);

/* Replaces the snapshot with a copy of *s (rules and topics included).
 * Returns 0, or -1 when out of memory (the previous snapshot stays, whole).
 * Thread-safe. */
int k2r_metrics_update(k2r_metrics_t *m, const k2r_snapshot_t *s);

/*
 * Replaces the lag table from one librdkafka statistics JSON document
 * (statistics.interval.ms; parsed with jansson). Returns 0, or -1 when the
 * document cannot be read (the previous table stays). Thread-safe.
 */
int k2r_metrics_update_lag(k2r_metrics_t *m, const char *json, size_t len);

/* Renders the Prometheus text exposition (version 0.0.4) into a new buffer
 * (*out, free() it) of *len bytes. Returns 0, or -1 when out of memory. */
int k2r_metrics_render(k2r_metrics_t *m, char **out, size_t *len);

/*
 * Health: 1 when the main loop turned within `stall_ms` of `now_ms` (a stuck
 * loop is unhealthy), else 0, with a one-line reason in why. Readiness: 1
 * when the config is loaded, the consumer is in its group and Redis is
 * writable (assigned partitions are not required), else 0 with the reason.
 */
int k2r_metrics_healthy(k2r_metrics_t *m, int64_t now_ms, int64_t stall_ms, char *why,
                        size_t why_size);
int k2r_metrics_ready(k2r_metrics_t *m, char *why, size_t why_size);

#endif
