/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_metrics.c - the registry behind /metrics, /healthz and /readyz
 * (metrics.c): the exact Prometheus text for a known snapshot (every family,
 * label escaping, cumulative histogram buckets), consumer lag read from a
 * librdkafka statistics document (tests/fixtures/stats/), and the health and
 * readiness answers with their reasons. Pure: no sockets; the registry is
 * driven the way the bridge and the HTTP thread drive it.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/clock.h"
#include "k2r/log.h"
#include "k2r/metrics.h"
#include "suites.h"

/* A whole file under tests/fixtures/ (NUL-terminated, free() it), or NULL. */
static char *read_fixture(const char *name, size_t *len) {
    FILE *f = fopen(test_fixture(name), "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)n, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

/* The rendered text (NUL-terminated, free() it). */
static char *render(k2r_metrics_t *m) {
    char *text = NULL, *z;
    size_t len = 0;

    CU_ASSERT_EQUAL_FATAL(k2r_metrics_render(m, &text, &len), 0);
    z = realloc(text, len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    z[len] = '\0';
    CU_ASSERT_EQUAL(strlen(z), len);
    return z;
}

/* The lines of `text` that start with `prefix`, joined (static buffer). */
static const char *lines_with(const char *text, const char *prefix) {
    static char out[4096];
    size_t n = 0, plen = strlen(prefix);

    out[0] = '\0';
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t l = eol ? (size_t)(eol - p) + 1 : strlen(p);

        if (strncmp(p, prefix, plen) == 0 && n + l < sizeof(out)) {
            memcpy(out + n, p, l);
            n += l;
            out[n] = '\0';
        }
        p += l;
    }
    return out;
}

/* Prints the first line where `got` and `want` differ (CUnit shows only
 * the assertion). */
static void show_difference(const char *got, const char *want) {
    size_t line = 1, i = 0;

    while (got[i] && got[i] == want[i]) {
        if (got[i] == '\n')
            line++;
        i++;
    }
    if (got[i] != want[i])
        fprintf(stderr, "\nfirst difference at line %zu:\n got: %.80s\nwant: %.80s\n", line,
                got + i, want + i);
}

/* ------------------------------------------------------- histograms */

static void test_hist_observe(void) {
    k2r_hist_t h;

    memset(&h, 0, sizeof(h));
    /* An observation equal to a bound belongs to that bucket (le = "less or
     * equal"); one above the last bound only to +Inf. */
    k2r_hist_observe(&h, k2r_hist_bounds[0]);
    k2r_hist_observe(&h, k2r_hist_bounds[0] * 1.5);
    k2r_hist_observe(&h, k2r_hist_bounds[K2R_HIST_BUCKETS - 1]);
    k2r_hist_observe(&h, k2r_hist_bounds[K2R_HIST_BUCKETS - 1] + 1);
    /* A record timestamped slightly in this host's future is age 0; NaN is
     * no observation at all. */
    k2r_hist_observe(&h, -0.25);
    k2r_hist_observe(&h, NAN);
    CU_ASSERT_EQUAL(h.counts[0], 2);
    CU_ASSERT_EQUAL(h.counts[1], 1);
    CU_ASSERT_EQUAL(h.counts[K2R_HIST_BUCKETS - 1], 1);
    CU_ASSERT_EQUAL(h.counts[K2R_HIST_BUCKETS], 1);
    CU_ASSERT_EQUAL(h.count, 5);
    CU_ASSERT_DOUBLE_EQUAL(h.sum, 0.0005 + 0.00075 + 60 + 61, 1e-12);
    for (size_t i = 1; i < K2R_HIST_BUCKETS; i++)
        CU_ASSERT(k2r_hist_bounds[i] > k2r_hist_bounds[i - 1]);
}

/* ------------------------------------------------------- rendering */

/* A snapshot with something in every family: two rules, one of them named
 * with every character a label value must escape; two topics, one of them
 * started afresh after its committed offset was found beyond its end. */
static void known_snapshot(k2r_snapshot_t *s, k2r_rule_stats_t rules[2],
                           k2r_topic_stats_t topics[2]) {
    memset(s, 0, sizeof(*s));
    memset(rules, 0, 2 * sizeof(rules[0]));
    memset(topics, 0, 2 * sizeof(topics[0]));
    snprintf(topics[0].name, sizeof(topics[0].name), "github.events");
    topics[0].consumed = 1200;
    topics[0].published = 1150;
    snprintf(topics[1].name, sizeof(topics[1].name), "audit");
    topics[1].consumed = 34;
    topics[1].published = 55;
    topics[1].offset_resets = 1;
    s->topics = topics;
    s->ntopics = 2;
    snprintf(rules[0].name, sizeof(rules[0].name), "by-source");
    rules[0].published = 1200;
    rules[0].no_subscribers = 900;
    rules[0].stale = 4;
    rules[0].failed[K2R_SKIP_MISSING_FIELD][K2R_ACTION_SKIP] = 7;
    rules[0].failed[K2R_SKIP_NOT_JSON][K2R_ACTION_DEAD_LETTER] = 2;
    snprintf(rules[1].name, sizeof(rules[1].name), "we\"ird\\name\nx");
    rules[1].published = 5;
    rules[1].failed[K2R_SKIP_UNSAFE_CHARS][K2R_ACTION_STOP] = 1;
    rules[1].action = K2R_ACTION_STOP; /* every reason for stop, at 0 but one */
    s->rules = rules;
    s->nrules = 2;
    s->stats.consumed = 1234;
    s->stats.consumed_bytes = 185100;
    s->stats.published_bytes = 98700;
    s->commits_ok = 41;
    s->commits_failed = 2;
    s->stats.dropped_unavailable = 3;
    s->stats.dead_lettered = 2;
    s->stats.dead_letter_failures = 1;
    s->stats.stopped_partitions = 1;
    s->stats.queue_pauses = 7;
    s->stats.inflight_records = 17;
    s->stats.inflight_bytes = 20480;
    k2r_hist_observe(&s->publish_seconds, 0.0003);
    k2r_hist_observe(&s->publish_seconds, 0.0005);
    k2r_hist_observe(&s->publish_seconds, 0.002);
    k2r_hist_observe(&s->publish_seconds, 0.7);
    k2r_hist_observe(&s->publish_seconds, 100);
    k2r_hist_observe(&s->age_seconds, -1);
    k2r_hist_observe(&s->age_seconds, 1.5);
    k2r_hist_observe(&s->age_seconds, 30);
    s->redis_reconnects = 2;
    s->redis_command_errors = 5;
    s->reloads_ok = 3;
    s->reloads_failed = 1;
    s->rebalances = 4;
    s->partitions_assigned = 6;
    s->partitions_paused = 2;
    s->loop_ms = k2r_now_ms();
    s->config_loaded = 1;
    s->group_joined = 1;
    s->redis_writable = 1;
}

/* Every family, byte for byte: tests/fixtures/metrics/known.prom. */
static void test_render_exact(void) {
    k2r_metrics_t *m = k2r_metrics_new("1.2.3-test", "2.8.0");
    k2r_rule_stats_t rules[2];
    k2r_topic_stats_t topics[2];
    k2r_snapshot_t s;
    char *stats, *want, *got;
    size_t stats_len, want_len;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    stats = read_fixture("stats/consumer.json", &stats_len);
    want = read_fixture("metrics/known.prom", &want_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(stats);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    known_snapshot(&s, rules, topics);
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    /* The registry holds its own copy: the bridge's arrays may change. */
    memset(rules, 0xff, sizeof(rules));
    memset(topics, 0xff, sizeof(topics));
    CU_ASSERT_EQUAL(k2r_metrics_update_lag(m, stats, stats_len), 0);
    got = render(m);
    if (strcmp(got, want) != 0)
        show_difference(got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
    free(want);
    free(stats);
    k2r_metrics_destroy(m);
}

/* Before the bridge's first update: no rules, nothing counted, not ready;
 * every unlabelled family still has its one series. */
static void test_render_empty(void) {
    k2r_metrics_t *m = k2r_metrics_new("v", "2.8.0");
    char *got;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_ready"), "k2r_ready 0\n");
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_up"), "k2r_up 1\n");
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_records_consumed_total"),
                           "k2r_records_consumed_total 0\n");
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_notifications_published_total"), "");
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_consumer_lag"), "");
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_publish_duration_seconds_count"),
                           "k2r_publish_duration_seconds_count 0\n");
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_publish_duration_seconds_bucket{le=\"+Inf\"}"),
                           "k2r_publish_duration_seconds_bucket{le=\"+Inf\"} 0\n");
    /* Each family is introduced once, HELP then TYPE. */
    CU_ASSERT_STRING_EQUAL(lines_with(got, "# TYPE k2r_record_age_seconds "),
                           "# TYPE k2r_record_age_seconds histogram\n");
    CU_ASSERT_STRING_EQUAL(lines_with(got, "# TYPE k2r_consumer_lag "),
                           "# TYPE k2r_consumer_lag gauge\n");
    free(got);
    k2r_metrics_destroy(m);
}

/* A snapshot with more rules, then fewer: each render shows exactly the
 * last one. */
static void test_update_replaces(void) {
    k2r_metrics_t *m = k2r_metrics_new("v", "2.8.0");
    k2r_rule_stats_t rules[3];
    k2r_snapshot_t s;
    char *got;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    memset(&s, 0, sizeof(s));
    memset(rules, 0, sizeof(rules));
    for (int i = 0; i < 3; i++) {
        snprintf(rules[i].name, sizeof(rules[i].name), "r%d", i);
        rules[i].published = (uint64_t)(10 * (i + 1));
    }
    s.rules = rules;
    s.nrules = 3;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_notifications_published_total{"),
                           "k2r_notifications_published_total{rule=\"r0\"} 10\n"
                           "k2r_notifications_published_total{rule=\"r1\"} 20\n"
                           "k2r_notifications_published_total{rule=\"r2\"} 30\n");
    free(got);
    rules[0].published = 11;
    s.nrules = 1;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_notifications_published_total{"),
                           "k2r_notifications_published_total{rule=\"r0\"} 11\n");
    free(got);
    s.nrules = 0;
    s.rules = NULL;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_notifications_published_total{"), "");
    free(got);
    k2r_metrics_destroy(m);
}

/* The topics' entries: found again by name, added at zero, and bounded:
 * past K2R_MAX_TOPICS every new topic shares the one K2R_OTHER_TOPIC entry,
 * while the topics that have their own keep it. */
static void test_topic_stats_bounded(void) {
    k2r_topic_stats_t *topics = NULL;
    size_t n = 0, cap = 0, first, other;
    char name[32];

    first = k2r_topic_stats_find(&topics, &n, &cap, "t0");
    CU_ASSERT_EQUAL(first, 0);
    topics[first].consumed = 5;
    CU_ASSERT_EQUAL(k2r_topic_stats_find(&topics, &n, &cap, "t0"), 0);
    CU_ASSERT_EQUAL(topics[0].consumed, 5);
    for (int i = 1; i < K2R_MAX_TOPICS; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        CU_ASSERT_EQUAL(k2r_topic_stats_find(&topics, &n, &cap, name), (size_t)i);
    }
    CU_ASSERT_EQUAL(n, K2R_MAX_TOPICS);
    other = k2r_topic_stats_find(&topics, &n, &cap, "one-too-many");
    CU_ASSERT_EQUAL(other, K2R_MAX_TOPICS);
    CU_ASSERT_STRING_EQUAL(topics[other].name, K2R_OTHER_TOPIC);
    CU_ASSERT_EQUAL(topics[other].consumed, 0);
    CU_ASSERT_EQUAL(k2r_topic_stats_find(&topics, &n, &cap, "and-another"), other);
    CU_ASSERT_EQUAL(k2r_topic_stats_find(&topics, &n, &cap, "t7"), 7);
    CU_ASSERT_EQUAL(n, K2R_MAX_TOPICS + 1);
    CU_ASSERT_EQUAL(topics[0].consumed, 5);
    free(topics);
}

/* ------------------------------------------------------------- lag */

#define B(s) s, sizeof(s) - 1

static void test_lag(void) {
    static const char fixture_lag[] =
        "k2r_consumer_lag{topic=\"audit\",partition=\"2\"} 0\n"
        "k2r_consumer_lag{topic=\"github.events\",partition=\"0\"} 42\n"
        "k2r_consumer_lag{topic=\"github.events\",partition=\"1\"} 17\n";
    k2r_metrics_t *m = k2r_metrics_new("v", "2.8.0");
    char *stats, *got;
    size_t len;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    stats = read_fixture("stats/consumer.json", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(stats);
    /* From the fixture: consumer_lag_stored where an offset was stored
     * (github.events[0]: 42, not consumer_lag's 40), consumer_lag where none
     * was yet (github.events[1]), no series where both are unknown
     * (audit[10]), none for partitions not assigned (desired false) or for
     * the internal partition -1. Sorted by topic, then partition number. */
    CU_ASSERT_EQUAL(k2r_metrics_update_lag(m, stats, len), 0);
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_consumer_lag{"), fixture_lag);
    free(got);

    /* A document that cannot be read leaves the table as it was. */
    CU_ASSERT_EQUAL(k2r_metrics_update_lag(m, B("{\"topics\":")), -1);
    CU_ASSERT_EQUAL(k2r_metrics_update_lag(m, B("[]")), -1);
    CU_ASSERT_EQUAL(k2r_metrics_update_lag(m, B("{\"type\":\"consumer\",\"topics\":[]}")), -1);
    /* So does a producer's (the dead-letter producer's statistics). */
    CU_ASSERT_EQUAL(k2r_metrics_update_lag(m, B("{\"type\":\"producer\",\"topics\":{}}")), 0);
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_consumer_lag{"), fixture_lag);
    free(got);

    /* A consumer's document replaces the table: here, one partition left
     * after a rebalance, a topic whose partitions are not objects, one
     * without partitions, and a topic name that needs escaping. */
    CU_ASSERT_EQUAL(k2r_metrics_update_lag(
                        m, B("{\"type\":\"consumer\",\"topics\":{"
                             "\"a\\\"b\":{\"partitions\":{\"3\":{\"partition\":3,\"desired\":true,"
                             "\"consumer_lag_stored\":5,\"consumer_lag\":9}}},"
                             "\"odd\":{\"partitions\":{\"0\":7}},\"bare\":{}}}")),
                    0);
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_consumer_lag{"),
                           "k2r_consumer_lag{topic=\"a\\\"b\",partition=\"3\"} 5\n");
    free(got);

    /* Before the first assignment: no topics at all, no series. */
    CU_ASSERT_EQUAL(k2r_metrics_update_lag(m, B("{\"type\":\"consumer\"}")), 0);
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_consumer_lag{"), "");
    free(got);
    free(stats);
    k2r_metrics_destroy(m);
}

/* ------------------------------------------------ health, readiness */

static void test_health(void) {
    k2r_metrics_t *m = k2r_metrics_new("v", "2.8.0");
    k2r_snapshot_t s;
    char why[128];

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    /* A bridge that has not reported yet counts as turning from its
     * creation on: healthy while it starts, for at most the stall limit. */
    CU_ASSERT_EQUAL(k2r_metrics_healthy(m, k2r_now_ms(), 30000, why, sizeof(why)), 1);
    CU_ASSERT_STRING_EQUAL(why, "ok");
    CU_ASSERT_EQUAL(k2r_metrics_healthy(m, k2r_now_ms() + 60000, 30000, why, sizeof(why)), 0);

    memset(&s, 0, sizeof(s));
    s.loop_ms = 1000000;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    CU_ASSERT_EQUAL(k2r_metrics_healthy(m, 1000000 + 30000, 30000, why, sizeof(why)), 1);
    CU_ASSERT_STRING_EQUAL(why, "ok");
    CU_ASSERT_EQUAL(k2r_metrics_healthy(m, 1000000 + 30001, 30000, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(why, "main loop stalled: no turn for 30001 ms (limit 30000 ms)");
    /* A short buffer is cut, never overrun. */
    CU_ASSERT_EQUAL(k2r_metrics_healthy(m, 1000000 + 30001, 30000, why, 5), 0);
    CU_ASSERT_STRING_EQUAL(why, "main");
    k2r_metrics_destroy(m);
}

static void test_ready(void) {
    k2r_metrics_t *m = k2r_metrics_new("v", "2.8.0");
    k2r_snapshot_t s;
    char why[128], *got;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(k2r_metrics_ready(m, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(why, "config not loaded");

    memset(&s, 0, sizeof(s));
    s.config_loaded = 1;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    CU_ASSERT_EQUAL(k2r_metrics_ready(m, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(why, "not a member of the consumer group");

    s.group_joined = 1;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    CU_ASSERT_EQUAL(k2r_metrics_ready(m, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(why, "Redis is not writable");

    /* Ready needs no assigned partition: a spare replica is ready. */
    s.redis_writable = 1;
    s.partitions_assigned = 0;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    CU_ASSERT_EQUAL(k2r_metrics_ready(m, why, sizeof(why)), 1);
    CU_ASSERT_STRING_EQUAL(why, "ready");
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_ready"), "k2r_ready 1\n");
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_redis_up"), "k2r_redis_up 1\n");
    free(got);

    /* Redis going away turns it unready, and back. */
    s.redis_writable = 0;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    CU_ASSERT_EQUAL(k2r_metrics_ready(m, why, sizeof(why)), 0);
    got = render(m);
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_ready"), "k2r_ready 0\n");
    CU_ASSERT_STRING_EQUAL(lines_with(got, "k2r_redis_up"), "k2r_redis_up 0\n");
    free(got);
    s.redis_writable = 1;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    CU_ASSERT_EQUAL(k2r_metrics_ready(m, why, sizeof(why)), 1);

    /* Stopping wins over everything. */
    s.stopping = 1;
    CU_ASSERT_EQUAL(k2r_metrics_update(m, &s), 0);
    CU_ASSERT_EQUAL(k2r_metrics_ready(m, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(why, "stopping");
    k2r_metrics_destroy(m);
    k2r_metrics_destroy(NULL);
}

int test_metrics_register(void) {
    CU_pSuite suite = CU_add_suite("metrics", NULL, NULL);

    if (!suite || !CU_add_test(suite, "histogram buckets", test_hist_observe) ||
        !CU_add_test(suite, "exact text of a known snapshot", test_render_exact) ||
        !CU_add_test(suite, "text before the first update", test_render_empty) ||
        !CU_add_test(suite, "each update replaces the snapshot", test_update_replaces) ||
        !CU_add_test(suite, "per-topic counters are bounded", test_topic_stats_bounded) ||
        !CU_add_test(suite, "consumer lag from librdkafka statistics", test_lag) ||
        !CU_add_test(suite, "health: the main loop turns", test_health) ||
        !CU_add_test(suite, "readiness and its reasons", test_ready))
        return CU_get_error();
    return 0;
}
