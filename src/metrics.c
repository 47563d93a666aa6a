/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - the registry behind /metrics, /healthz and /readyz: the last
 * snapshot the bridge handed over, the consumer lag table read from
 * librdkafka's statistics, and the Prometheus text rendered from both.
 *
 * Two threads meet here and nowhere else: the bridge's main loop, which
 * replaces the snapshot a few times a second, and the HTTP server's thread,
 * which renders it. One mutex covers the snapshot and the lag table; the
 * bridge's update is a copy, and a scrape copies the snapshot out under the
 * mutex and formats after releasing it, so neither side waits on the other's
 * slow part (formatting, or a slow client).
 *
 * Not here: counting (bridge.c counts in plain integers of its own thread),
 * sockets (http.c), and anything on the record path.
 *
 * The text follows the Prometheus exposition format 0.0.4: a HELP and a TYPE
 * line per family, label values escaped (backslash, double quote, newline),
 * histograms as cumulative _bucket{le} lines with _sum and _count. Series are
 * written in a fixed order (rules as configured, lag sorted by topic and
 * partition), so the output is reproducible and unit-tested byte for byte.
 */
#include "k2r/metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/clock.h"
#include "k2r/log.h"

/*
 * From half a millisecond (a PUBLISH round trip on a local network) to a
 * minute (a record that waited out a Redis outage or a long consumer lag):
 * one set of bounds serves both histograms, so dashboards can compare them.
 */
const double k2r_hist_bounds[K2R_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     5,    15,    60};

struct k2r_metrics_s {
    pthread_mutex_t lock;
    char *version;
    char *librdkafka;
    k2r_snapshot_t snap; /* snap.rules and snap.topics are owned, with room for
                            rules_cap and topics_cap entries */
    size_t rules_cap, topics_cap;
    k2r_lag_t *lags; /* sorted by topic, then partition */
    size_t nlags;
};

void k2r_hist_observe(k2r_hist_t *h, double seconds) {
    size_t i = 0;

    if (isnan(seconds))
        return;
    /* A Kafka timestamp slightly ahead of this host's clock gives a negative
     * age; it is as fresh as a record can be, so it counts as zero. */
    if (seconds < 0)
        seconds = 0;
    while (i < K2R_HIST_BUCKETS && seconds > k2r_hist_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

k2r_metrics_t *k2r_metrics_new(const char *version, const char *librdkafka) {
    k2r_metrics_t *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->version = strdup(version ? version : "");
    m->librdkafka = strdup(librdkafka ? librdkafka : "");
    if (!m->version || !m->librdkafka || pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m->version);
        free(m->librdkafka);
        free(m);
        return NULL;
    }
    /* Until the main loop reports its first turn, it counts as having turned
     * now: a bridge still starting up is not a stuck one. */
    m->snap.loop_ms = k2r_now_ms();
    return m;
}

void k2r_metrics_destroy(k2r_metrics_t *m) {
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->snap.rules);
    free(m->snap.topics);
    free(m->lags);
    free(m->version);
    free(m->librdkafka);
    free(m);
}

int k2r_metrics_update(k2r_metrics_t *m, const k2r_snapshot_t *s) {
    int rc = 0;

    pthread_mutex_lock(&m->lock);
    if (s->nrules > m->rules_cap) {
        k2r_rule_stats_t *r = realloc(m->snap.rules, s->nrules * sizeof(*r));

        if (!r) {
            rc = -1; /* the previous snapshot stays, whole */
            goto done;
        }
        m->snap.rules = r;
        m->rules_cap = s->nrules;
    }
    if (s->ntopics > m->topics_cap) {
        k2r_topic_stats_t *t = realloc(m->snap.topics, s->ntopics * sizeof(*t));

        if (!t) {
            rc = -1;
            goto done;
        }
        m->snap.topics = t;
        m->topics_cap = s->ntopics;
    }
    {
        k2r_rule_stats_t *rules = m->snap.rules;
        k2r_topic_stats_t *topics = m->snap.topics;

        m->snap = *s;
        m->snap.rules = rules;
        m->snap.topics = topics;
        if (s->nrules)
            memcpy(rules, s->rules, s->nrules * sizeof(*rules));
        if (s->ntopics)
            memcpy(topics, s->topics, s->ntopics * sizeof(*topics));
    }
done:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---------------------------------------------------------- topics */

size_t k2r_topic_stats_find(k2r_topic_stats_t **topics, size_t *n, size_t *cap, const char *name) {
    size_t i;

    for (i = 0; i < *n; i++)
        if (strcmp((*topics)[i].name, name) == 0)
            return i;
    /* Past the bound, every new topic is the shared entry (the last one). */
    if (*n > K2R_MAX_TOPICS)
        return *n - 1;
    if (*n == K2R_MAX_TOPICS)
        name = K2R_OTHER_TOPIC;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        k2r_topic_stats_t *grown = realloc(*topics, ncap * sizeof(**topics));

        if (!grown)
            return SIZE_MAX;
        *topics = grown;
        *cap = ncap;
    }
    memset(&(*topics)[i], 0, sizeof((*topics)[i]));
    snprintf((*topics)[i].name, sizeof((*topics)[i].name), "%s", name);
    return (*n)++;
}

/* ------------------------------------------------------------- lag */

static int lag_cmp(const void *a, const void *b) {
    const k2r_lag_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);

    if (c)
        return c;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

/* An integer member, or `dflt` when it is absent or not an integer. */
static int64_t int_member(const json_t *o, const char *key, int64_t dflt) {
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* Appends one partition's lag, unless it is not one this consumer owns. */
static int add_partition(k2r_lag_t **lags, size_t *n, size_t *cap, const char *topic,
                         const json_t *p) {
    const json_t *desired = json_object_get(p, "desired");
    int64_t partition = int_member(p, "partition", -1), lag;
    k2r_lag_t *l;

    /* Partition -1 is librdkafka's internal UA (unassigned) queue; a
     * partition not desired is one it only knows from metadata. */
    if (partition < 0 || partition > INT32_MAX || !json_is_true(desired))
        return 0;
    /* consumer_lag_stored counts from the offset the bridge stored, that is
     * from what Redis acknowledged: the lag that matters for at-least-once.
     * It is -1 until a first offset is stored (and absent before librdkafka
     * 1.6); consumer_lag counts from the committed or fetched offset. */
    lag = int_member(p, "consumer_lag_stored", -1);
    if (lag < 0)
        lag = int_member(p, "consumer_lag", -1);
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        k2r_lag_t *grown = realloc(*lags, ncap * sizeof(**lags));

        if (!grown)
            return -1;
        *lags = grown;
        *cap = ncap;
    }
    l = &(*lags)[(*n)++];
    snprintf(l->topic, sizeof(l->topic), "%s", topic);
    l->partition = (int32_t)partition;
    l->lag = lag < 0 ? -1 : lag;
    return 0;
}

int k2r_metrics_update_lag(k2r_metrics_t *m, const char *json, size_t len) {
    json_t *doc = json_loadb(json, len, 0, NULL), *topics, *t;
    const json_t *type;
    k2r_lag_t *lags = NULL, *old;
    size_t n = 0, cap = 0;
    const char *name;

    if (!json_is_object(doc))
        goto fail;
    /* A producer's statistics (the dead-letter producer's, say) know nothing
     * of consumer lag and must not empty the table. */
    type = json_object_get(doc, "type");
    if (json_is_string(type) && strcmp(json_string_value(type), "consumer") != 0) {
        json_decref(doc);
        return 0;
    }
    topics = json_object_get(doc, "topics");
    if (topics && !json_is_object(topics))
        goto fail;
    json_object_foreach(topics, name, t) {
        const json_t *parts = json_object_get(t, "partitions"), *p;
        const char *key;

        if (!json_is_object(parts))
            continue;
        json_object_foreach((json_t *)parts, key, p) {
            if (json_is_object(p) && add_partition(&lags, &n, &cap, name, p) != 0)
                goto fail;
        }
    }
    json_decref(doc);
    if (n > 1)
        qsort(lags, n, sizeof(*lags), lag_cmp);
    pthread_mutex_lock(&m->lock);
    old = m->lags;
    m->lags = lags;
    m->nlags = n;
    pthread_mutex_unlock(&m->lock);
    free(old);
    return 0;
fail:
    json_decref(doc);
    free(lags);
    return -1;
}

/* ------------------------------------------------------- rendering */

/* Where rendering writes; `failed` sticks once an append ran out of memory,
 * so the writers below need no error paths of their own. */
typedef struct out_s {
    k2r_buf_t buf;
    int failed;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
    if (!o->failed && k2r_buf_append(&o->buf, s, n) != 0)
        o->failed = 1;
}

static void puts_(out_t *o, const char *s) {
    put(o, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) putf(out_t *o, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    assert(n >= 0 && (size_t)n < sizeof(tmp)); /* only numbers and fixed names come here */
    put(o, tmp, (size_t)n);
}

/* A label value: backslash, double quote and newline escaped, as the text
 * format requires; everything else (UTF-8 included) as it is. */
static void put_label_value(out_t *o, const char *s) {
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '\\':
            puts_(o, "\\\\");
            break;
        case '"':
            puts_(o, "\\\"");
            break;
        case '\n':
            puts_(o, "\\n");
            break;
        default:
            put(o, p, 1);
        }
    }
}

/* The shortest of %.15g and %.17g that reads back as the same double. */
static void put_double(out_t *o, double v) {
    char tmp[40];

    if (isinf(v)) {
        puts_(o, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (isnan(v)) {
        puts_(o, "NaN");
        return;
    }
    snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof(tmp), "%.17g", v);
    puts_(o, tmp);
}

static void family(out_t *o, const char *name, const char *type, const char *help) {
    putf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one series without labels. */
static void single(out_t *o, const char *name, const char *type, const char *help, uint64_t v) {
    family(o, name, type, help);
    putf(o, "%s %" PRIu64 "\n", name, v);
}

/* One series labelled rule="NAME". */
static void rule_series(out_t *o, const char *name, const char *rule, uint64_t v) {
    putf(o, "%s{rule=\"", name);
    put_label_value(o, rule);
    putf(o, "\"} %" PRIu64 "\n", v);
}

static void histogram(out_t *o, const char *name, const char *help, const k2r_hist_t *h) {
    uint64_t cumulative = 0;

    family(o, name, "histogram", help);
    for (size_t i = 0; i <= K2R_HIST_BUCKETS; i++) {
        cumulative += h->counts[i];
        putf(o, "%s_bucket{le=\"", name);
        put_double(o, i < K2R_HIST_BUCKETS ? k2r_hist_bounds[i] : INFINITY);
        putf(o, "\"} %" PRIu64 "\n", cumulative);
    }
    putf(o, "%s_sum ", name);
    put_double(o, h->sum);
    putf(o, "\n%s_count %" PRIu64 "\n", name, h->count);
}

/* One series labelled topic="NAME" and, when `reason` is not NULL,
 * reason="REASON". */
static void topic_series(out_t *o, const char *name, const char *topic, const char *reason,
                         uint64_t v) {
    putf(o, "%s{topic=\"", name);
    put_label_value(o, topic);
    if (reason)
        putf(o, "\",reason=\"%s", reason);
    putf(o, "\"} %" PRIu64 "\n", v);
}

/* Failures of one reason and action, when there were any (or `always`). */
static void failed_series(out_t *o, const char *rule, int reason, int action, uint64_t v,
                          int always) {
    if (v == 0 && !always)
        return;
    puts_(o, "k2r_records_failed_total{rule=\"");
    put_label_value(o, rule);
    putf(o, "\",reason=\"%s\",action=\"%s\"} %" PRIu64 "\n", k2r_skip_name((k2r_skip_t)reason),
         k2r_action_name((k2r_action_t)action), v);
}

static int ready_of(const k2r_snapshot_t *s, char *why, size_t why_size);

static void render(out_t *o, const k2r_snapshot_t *s, const k2r_lag_t *lags, size_t nlags,
                   const char *version, const char *librdkafka) {
    const k2r_bridge_stats_t *st = &s->stats;
    char why[8];

    single(o, "k2r_up", "gauge", "1 while the bridge process runs.", 1);
    family(o, "k2r_build_info", "gauge",
           "The running version and the librdkafka it runs on; always 1.");
    puts_(o, "k2r_build_info{version=\"");
    put_label_value(o, version);
    puts_(o, "\",librdkafka=\"");
    put_label_value(o, librdkafka);
    puts_(o, "\"} 1\n");
    single(o, "k2r_ready", "gauge",
           "1 when the config is loaded, the consumer is in its group and Redis is writable.",
           (uint64_t)ready_of(s, why, sizeof(why)));
    single(o, "k2r_redis_up", "gauge", "1 while Redis is connected and taking PUBLISH.",
           s->redis_writable ? 1 : 0);
    if (s->nshards) {
        family(o, "k2r_redis_shard_up", "gauge",
               "1 while the connection to this Redis server (a cluster primary) is up.");
        for (size_t i = 0; i < s->nshards && i < K2R_MAX_SHARDS; i++) {
            puts_(o, "k2r_redis_shard_up{shard=\"");
            put_label_value(o, s->shards[i].addr);
            putf(o, "\"} %d\n", s->shards[i].up ? 1 : 0);
        }
        family(o, "k2r_redis_shard_connects_total", "counter",
               "Successful connections to this Redis server (a cluster primary).");
        for (size_t i = 0; i < s->nshards && i < K2R_MAX_SHARDS; i++) {
            puts_(o, "k2r_redis_shard_connects_total{shard=\"");
            put_label_value(o, s->shards[i].addr);
            putf(o, "\"} %" PRIu64 "\n", s->shards[i].connects);
        }
    }

    single(o, "k2r_records_consumed_total", "counter", "Records taken from Kafka.", st->consumed);
    family(o, "k2r_topic_records_consumed_total", "counter",
           "Records taken from Kafka, by topic (those of kafka.topics and those assigned).");
    for (size_t i = 0; i < s->ntopics; i++)
        topic_series(o, "k2r_topic_records_consumed_total", s->topics[i].name, NULL,
                     s->topics[i].consumed);
    family(o, "k2r_topic_notifications_published_total", "counter",
           "Notifications Redis acknowledged, by the topic of their record.");
    for (size_t i = 0; i < s->ntopics; i++)
        topic_series(o, "k2r_topic_notifications_published_total", s->topics[i].name, NULL,
                     s->topics[i].published);
    family(o, "k2r_offset_resets_total", "counter",
           "Assigned partitions whose committed offset lay beyond the high watermark (the "
           "topic was deleted and created again), started where auto.offset.reset says, by "
           "topic and reason.");
    for (size_t i = 0; i < s->ntopics; i++)
        topic_series(o, "k2r_offset_resets_total", s->topics[i].name, "beyond_high_watermark",
                     s->topics[i].offset_resets);
    single(o, "k2r_records_consumed_bytes_total", "counter",
           "Bytes of the records taken from Kafka: keys, values and headers.", st->consumed_bytes);
    single(o, "k2r_notifications_published_bytes_total", "counter",
           "Bytes of the notifications Redis acknowledged: channels and messages.",
           st->published_bytes);
    family(o, "k2r_offset_commits_total", "counter",
           "Offset commits librdkafka reported, by result (ok, failed).");
    putf(o, "k2r_offset_commits_total{result=\"ok\"} %" PRIu64 "\n", s->commits_ok);
    putf(o, "k2r_offset_commits_total{result=\"failed\"} %" PRIu64 "\n", s->commits_failed);
    family(o, "k2r_notifications_published_total", "counter",
           "Notifications Redis acknowledged, by rule.");
    for (size_t i = 0; i < s->nrules; i++)
        rule_series(o, "k2r_notifications_published_total", s->rules[i].name,
                    s->rules[i].published);
    family(o, "k2r_notifications_no_subscribers_total", "counter",
           "Acknowledged notifications that reached no subscriber (PUBLISH replied 0), by rule.");
    for (size_t i = 0; i < s->nrules; i++)
        rule_series(o, "k2r_notifications_no_subscribers_total", s->rules[i].name,
                    s->rules[i].no_subscribers);
    family(o, "k2r_records_failed_total", "counter",
           "Records a rule could not map or publish, by rule, reason and on_error action; "
           "every reason with the rule's own action from start, other actions once they "
           "occurred.");
    for (size_t i = 0; i < s->nrules; i++)
        for (int r = 1; r < K2R_SKIP__COUNT; r++)
            for (int a = K2R_ACTION_SKIP; a <= K2R_ACTION_STOP; a++)
                failed_series(o, s->rules[i].name, r, a, s->rules[i].failed[r][a],
                              a == s->rules[i].action);
    family(o, "k2r_records_stale_total", "counter",
           "Notifications not sent because the record was older than max_age, by rule.");
    for (size_t i = 0; i < s->nrules; i++)
        rule_series(o, "k2r_records_stale_total", s->rules[i].name, s->rules[i].stale);
    family(o, "k2r_notifications_dropped_total", "counter",
           "Notifications given up without being published, by reason.");
    putf(o, "k2r_notifications_dropped_total{reason=\"redis_unavailable\"} %" PRIu64 "\n",
         st->dropped_unavailable);
    single(o, "k2r_dedup_suppressed_total", "counter",
           "Notifications not published again because the producer shim (or an earlier "
           "attempt of the bridge) had published them (dedupe).",
           st->dedup_suppressed);
    single(o, "k2r_dead_letters_total", "counter", "Records the dead-letter topic acknowledged.",
           st->dead_lettered);
    single(o, "k2r_dead_letter_failures_total", "counter",
           "Dead-letter deliveries that failed (they are retried).", st->dead_letter_failures);
    single(o, "k2r_partitions_stopped_total", "counter",
           "Partitions stopped by a rule's on_error: stop.", st->stopped_partitions);
    single(o, "k2r_fetch_pauses_total", "counter",
           "Times fetching was paused because the records librdkafka had fetched ahead carried "
           "more key and header bytes than 4 x limits.max_inflight_bytes.",
           st->queue_pauses);

    single(o, "k2r_redis_reconnects_total", "counter", "Successful reconnections to Redis.",
           s->redis_reconnects);
    single(o, "k2r_redis_command_errors_total", "counter",
           "Redis commands that failed (error replies and lost connections).",
           s->redis_command_errors);
    single(o, "k2r_inflight_records", "gauge", "Records taken from Kafka and not finished.",
           st->inflight_records);
    single(o, "k2r_inflight_bytes", "gauge",
           "Key, value and header bytes of the records in flight.", st->inflight_bytes);
    single(o, "k2r_partitions_assigned", "gauge", "Partitions assigned to this consumer.",
           (uint64_t)(s->partitions_assigned > 0 ? s->partitions_assigned : 0));
    single(o, "k2r_partitions_paused", "gauge",
           "Assigned partitions paused (Redis unavailable, "
           "in-flight limits, stopped by a rule).",
           (uint64_t)(s->partitions_paused > 0 ? s->partitions_paused : 0));
    single(o, "k2r_rebalances_total", "counter", "Consumer group rebalances seen.", s->rebalances);
    family(o, "k2r_config_reloads_total", "counter", "Config reloads (SIGHUP), by result.");
    putf(o,
         "k2r_config_reloads_total{result=\"ok\"} %" PRIu64 "\n"
         "k2r_config_reloads_total{result=\"failed\"} %" PRIu64 "\n",
         s->reloads_ok, s->reloads_failed);

    histogram(o, "k2r_publish_duration_seconds",
              "PUBLISH round trip: from sending a batch of commands to reading their replies.",
              &s->publish_seconds);
    histogram(o, "k2r_record_age_seconds",
              "Record age when published: now minus the Kafka timestamp.", &s->age_seconds);

    family(o, "k2r_consumer_lag", "gauge",
           "Records behind the partition's high watermark, from the last offset stored (librdkafka "
           "statistics).");
    for (size_t i = 0; i < nlags; i++) {
        if (lags[i].lag < 0)
            continue; /* unknown: no series rather than a misleading -1 */
        puts_(o, "k2r_consumer_lag{topic=\"");
        put_label_value(o, lags[i].topic);
        putf(o, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n", lags[i].partition, lags[i].lag);
    }
}

int k2r_metrics_render(k2r_metrics_t *m, char **out, size_t *len) {
    out_t o = {{NULL, 0, 0}, 0};
    k2r_snapshot_t s;
    k2r_rule_stats_t *rules;
    k2r_topic_stats_t *topics;
    k2r_lag_t *lags;
    size_t nlags;

    /* Copy under the lock, format outside it: the bridge's next update never
     * waits for a scrape. (One element at least, so that a copy is never
     * NULL unless memory ran out.) */
    pthread_mutex_lock(&m->lock);
    s = m->snap;
    nlags = m->nlags;
    rules = calloc(s.nrules ? s.nrules : 1, sizeof(*rules));
    topics = calloc(s.ntopics ? s.ntopics : 1, sizeof(*topics));
    lags = calloc(nlags ? nlags : 1, sizeof(*lags));
    if (rules && topics && lags) {
        if (s.nrules)
            memcpy(rules, s.rules, s.nrules * sizeof(*rules));
        if (s.ntopics)
            memcpy(topics, s.topics, s.ntopics * sizeof(*topics));
        if (nlags)
            memcpy(lags, m->lags, nlags * sizeof(*lags));
    } else {
        o.failed = 1;
    }
    pthread_mutex_unlock(&m->lock);
    s.rules = rules;
    s.topics = topics;

    if (!o.failed)
        render(&o, &s, lags, nlags, m->version, m->librdkafka); /* both fixed at _new */
    free(rules);
    free(topics);
    free(lags);
    if (o.failed || !o.buf.data) {
        k2r_buf_free(&o.buf);
        return -1;
    }
    *out = o.buf.data;
    *len = o.buf.len;
    return 0;
}

/* ------------------------------------------------ health, readiness */

static int ready_of(const k2r_snapshot_t *s, char *why, size_t why_size) {
    const char *reason = NULL;

    if (s->stopping)
        reason = "stopping";
    else if (!s->config_loaded)
        reason = "config not loaded";
    else if (!s->group_joined)
        reason = "not a member of the consumer group";
    else if (!s->redis_writable)
        reason = "Redis is not writable";
    snprintf(why, why_size, "%s", reason ? reason : "ready");
    return reason == NULL;
}

int k2r_metrics_healthy(k2r_metrics_t *m, int64_t now_ms, int64_t stall_ms, char *why,
                        size_t why_size) {
    int64_t idle;

    pthread_mutex_lock(&m->lock);
    idle = now_ms - m->snap.loop_ms;
    pthread_mutex_unlock(&m->lock);
    if (idle > stall_ms) {
        snprintf(why, why_size,
                 "main loop stalled: no turn for %" PRId64 " ms (limit %" PRId64 " ms)", idle,
                 stall_ms);
        return 0;
    }
    snprintf(why, why_size, "ok");
    return 1;
}

int k2r_metrics_ready(k2r_metrics_t *m, char *why, size_t why_size) {
    int ready;

    pthread_mutex_lock(&m->lock);
    ready = ready_of(&m->snap, why, why_size);
    pthread_mutex_unlock(&m->lock);
    return ready;
}
