/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge_int.h - what the loop's files share: the bridge's state and the
 * functions one of them calls in another. Not a public header: only
 * bridge.c (the loop, records, completion, rebalances), bridge_publish.c
 * (notifications against Redis: publishing, refusals, outages),
 * bridge_deadletter.c (dead letters) and bridge_reload.c (SIGHUP) include it.
 */
#ifndef K2R_BRIDGE_INT_H
#define K2R_BRIDGE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "k2r/batch.h"
#include "k2r/bridge.h"
#include "k2r/buf.h"
#include "k2r/deadletter.h"
#include "k2r/json.h"
#include "k2r/kafka.h"
#include "k2r/log.h"
#include "k2r/metrics.h"
#include "k2r/redis.h"

/* How often a summary line is logged while something happens. */
#define STATS_INTERVAL_MS 30000
/* The most records taken from Kafka in one call (bridge.c, fill). */
#define FILL_BATCH 256
/* The shortest time between two commits started after a batch. */
#define COMMIT_INTERVAL_MS 200
/* How often the counters are copied for /metrics, /healthz and /readyz. */
#define METRICS_INTERVAL_MS 250
/* How long a Redis connection must stay up before the reconnect backoff
 * starts over from redis.reconnect_backoff_ms. */
#define BACKOFF_RESET_MS 10000
/* How often the loop weighs librdkafka's queue while a publish waits, when
 * records carry keys and headers heavy enough to fill it (bridge.c,
 * bound_queue); otherwise a publish gives the loop its turn every 100 ms. */
#define QUEUE_CHECK_MS 1
/* The key and header bytes librdkafka may hold fetched ahead, in
 * limits.max_inflight_bytes, before the loop pauses fetching (bound_queue).
 * A pause drops what librdkafka queued, which is fetched again, and after
 * the resume its fetcher may take up to a second to start again: 4
 * leaves records of keys and headers up to about 13 KB (at the default
 * limits) to librdkafka's own count bound, and stops the pathological ones. */
#define QUEUE_EXTRA_LIMITS 4
/* How long a batch waits for its dead letters before Kafka is paused. */
#define DEAD_LETTER_HOLD_MS 5000
/* Backoff between attempts to send failed dead letters again. */
#define DEAD_LETTER_BACKOFF_MS     200
#define DEAD_LETTER_BACKOFF_MAX_MS 10000

/* A mapping's detail fits a dead letter's whole. */
_Static_assert(sizeof(((k2r_mapping_t *)0)->detail) <= K2R_DEADLETTER_DETAIL_SIZE,
               "a dead letter's detail is shorter than a mapping's");

struct k2r_bridge_s {
    k2r_config_t *cfg;
    k2r_rules_t *rules;
    k2r_json_t *json;
    k2r_kafka_t *kafka;
    k2r_redis_t *redis;

    /* The batch. Channel and message bytes live in `bytes`; items refer to
     * them by offset until just before publishing, since `bytes` may move. */
    k2r_batch_t *batch;
    k2r_buf_t bytes;
    k2r_deadletter_t *dlq; /* the batch's dead letters and their delivery */
    size_t largest_record; /* the most bytes one record counted (record_bytes) */
    /* The bytes of a record's key and headers, on average over the records
     * taken lately (a moving average, 1/16 per record), and whether
     * fetching is paused because librdkafka's queue holds too many of them
     * (bound_queue). */
    size_t extra_avg;
    int queue_paused;

    /* The pending items of one publish, as the Redis sink takes them, and
     * the batch item each one is. */
    k2r_publish_t *pub;
    size_t *pub_item;
    size_t cap_pub, cap_pub_item;
    /* While the sink has them (k2r_redis_publishing): how many, the bytes
     * they point into (records taken meanwhile may move them), the start. */
    size_t npub;
    const char *pub_base;
    int64_t pub_start_us;

    /* The headers of the record being mapped (reused for every record). */

    /* Redis reconnection. */
    int backoff_ms;
    int64_t next_connect_ms;
    int redis_down;       /* an outage is in progress (for logging once) */
    int64_t connected_ms; /* when the connection in use was made */
    int refused;          /* Redis refused the credentials: the bridge cannot go on */
    unsigned int rand_state;

    k2r_bridge_stats_t stats;
    k2r_bridge_stats_t stats_logged;
    uint64_t reload_failures;

    /* SIGHUP's load of the config file, on a thread of its own so that the
     * loop keeps publishing meanwhile (bridge_reload.c). The results are the
     * thread's until `done`, then the loop's. */
    struct {
        pthread_t thread;
        int running;     /* started and not joined yet */
        atomic_int done; /* the thread has finished: join, then apply */
        int again;       /* SIGHUP came during the load: one more load after it */
        char *path;      /* what it reads (a copy) */
        k2r_rules_t *rules;
        k2r_config_t *next;
        k2r_errors_t errs;
    } reload;

    /* For /metrics: per-rule counters (by rule name, kept across reloads),
     * the two histograms, and the registry they are copied to. */
    k2r_metrics_t *metrics;
    k2r_rule_stats_t *rstats;
    const char **rstat_ptr; /* per rstats entry: the running rules' copy of its name */
    size_t nrstats, cap_rstats, cap_rstat_ptr;
    /* Per topic (metrics.h says how the set is bounded), found by name;
     * the last one found is tried first, since records come in runs. */
    k2r_topic_stats_t *tstats;
    size_t ntstats, cap_tstats, tstat_last;
    k2r_hist_t pub_hist, age_hist;
    int64_t metrics_next_ms;
    int64_t commit_next_ms;
    int stopping;
    int oom;     /* out of memory inside a callback: stop, storing nothing more */
    int drained; /* the stop's drain is over: revocations finish nothing more */
    int64_t stats_next_ms;
    k2r_ratelimit_t skip_rl, dead_rl, perr_rl, conn_rl, dlq_rl, drop_rl, stale_rl, unavail_rl,
        queue_rl;
};

/* bridge.c */
size_t bridge_pending(const k2r_bridge_t *b);
/* Gives every loaded rule its per-rule counters now, with its on_error, so
 * that /metrics has their series from start (metrics.h). */
void bridge_declare_rules(k2r_bridge_t *b);
void bridge_count_failed(k2r_bridge_t *b, const char *name, k2r_skip_t skip, k2r_action_t action);
void bridge_log_failed(k2r_ratelimit_t *rl, const char *what, const k2r_msgview_t *msg,
                       const k2r_mapping_t *m);
int bridge_stop_partition(k2r_bridge_t *b, size_t rec, const char *rule, k2r_skip_t skip,
                          const char *detail);
int bridge_serve(k2r_bridge_t *b, int timeout_ms, int draining);

/* bridge_deadletter.c */
unsigned bridge_rand(void *opaque);
int bridge_dead_letter(k2r_bridge_t *b, size_t rec, k2r_skip_t skip, const char *detail,
                       const char *rule);
void bridge_on_delivery(void *opaque, uint64_t id, rd_kafka_resp_err_t err);
void bridge_dlq_release(k2r_bridge_t *b);
void bridge_dlq_resend(k2r_bridge_t *b);
int bridge_dlq_wait(k2r_bridge_t *b, int draining);

/* bridge_publish.c */
void bridge_drop_pending(k2r_bridge_t *b);
void bridge_redis_failed(k2r_bridge_t *b, const char *what, const char *errstr);
int bridge_try_connect(k2r_bridge_t *b, int64_t deadline_ms);
int bridge_publish(k2r_bridge_t *b, const k2r_redis_wait_t *wait);

/* bridge_reload.c: a SIGHUP starts a load (or, during one, asks for one
 * more after it); between batches, a finished load is applied; at the end a
 * load still running is waited for and dropped. */
void bridge_reload_request(k2r_bridge_t *b);
void bridge_reload_apply(k2r_bridge_t *b);
void bridge_reload_discard(k2r_bridge_t *b);

#endif
