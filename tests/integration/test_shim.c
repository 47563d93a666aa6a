/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_shim.c - the producer shim (include/k2r/shim.h, build/libk2r_shim.so)
 * against the real broker and Redis, with no bridge running unless a test
 * starts one to compare with:
 *
 * - kcat (Debian's, on the system's librdkafka 2.0.2) and Python's
 *   confluent-kafka from PyPI (its own bundled librdkafka) load the plugin
 *   with two properties: a subscriber gets exactly the notifications, in
 *   order, channel and bytes; then the bridge, run afterwards on the same
 *   topic, publishes the same bytes on the same channels, record for record
 *   (meta.offset, meta.timestamp, the key and a header included);
 * - the shim and the bridge together, dedupe on: each notification once,
 *   the one publisher's suppressions the other's publishes, and records
 *   published again through the C API all suppressed; and with the path
 *   to Redis cut for a while (the shim drops, the bridge holds and catches
 *   up): 0 lost, 0 duplicates;
 * - with Redis unreachable, kcat's produce of 100,000 records completes,
 *   every record is in the topic, and the shim's counters account for each;
 * - with a Redis that never answers, the queue fills to its bound, the
 *   rest is dropped and counted, and k2r_shim_publish never waits;
 * - a config the shim cannot use (or a transactional producer) disables it,
 *   in librdkafka's log, and the producer delivers as before;
 * - a program with librdkafka linked in statically (this one, -rdynamic)
 *   loads the plugin, which finds librdkafka's functions in the program;
 * - the hostile corpus through the C API: the process survives, every
 *   notification is what k2r_rules_map gives, and the counters say what
 *   happened;
 * - the C API through Sentinel and Redis Cluster, as the config says;
 * - the C example (build/shim-producer) publishes what it produces.
 *
 * Every wait is a deadline scaled by K2R_TEST_TIMEOUT_MULTIPLIER.
 */
#include <CUnit/CUnit.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <k2r/shim.h>

#include "harness.h"

#include "../hostile/corpus.h"

/* ---------------------------------------------------------------- helpers */

static const char *plugin_path(void) {
    static char path[4096];
    snprintf(path, sizeof(path), "%s/build/libk2r_shim.so", K2R_SOURCE_DIR);
    return path;
}

/* Writes `text` to a new temp file; its path goes to out. 0 or -1. */
static int write_temp(char *out, size_t size, const char *text) {
    int fd;
    size_t len = strlen(text);

    snprintf(out, size, "/tmp/k2r-shim-XXXXXX.yaml");
    fd = mkstemps(out, 5);
    if (fd < 0)
        return -1;
    if (write(fd, text, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    return close(fd);
}

/* The seconds a command may take, scaled like every deadline here. */
static int scaled_seconds(int s) {
    const char *m = getenv("K2R_TEST_TIMEOUT_MULTIPLIER");
    int k = m ? atoi(m) : 1;
    return s * (k > 0 ? k : 1);
}

/* The topic's partition 0 high watermark, or -1. */
static int64_t high_watermark(const char *topic) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    int64_t lo = -1, hi = -1;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", h_brokers(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    if (rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 10000) != 0)
        hi = -1;
    rd_kafka_destroy(rk);
    return hi;
}

/* A counter "name N" in a line of `text`; -1 when absent. */
static long long counter_of(const char *text, const char *name) {
    char key[64];
    const char *p;

    snprintf(key, sizeof(key), "%s ", name);
    p = text ? strstr(text, key) : NULL;
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* The rule of the producer tests: the kind from the value, the id from the
 * key, and a notification with every field that comes from Kafka rather
 * than from the value (key, partition, offset, timestamp, a header). */
static void producer_config(char *yaml, size_t size, const h_scene_t *sc, int redis_port) {
    char rules[1024];

    snprintf(rules, sizeof(rules),
             "  - name: shim\n"
             "    topic: %s\n"
             "    type: kind\n"
             "    id: {meta: key}\n"
             "    channel: \"%s:{type}:{id}\"\n"
             "    notification: [n, {key: {meta: key}}, {partition: {meta: partition}},\n"
             "                   {offset: {meta: offset}}, {ts: {meta: timestamp}},\n"
             "                   {h: {header: x-h}}]\n",
             sc->topic, sc->prefix);
    h_config(yaml, size, sc->group, sc->topic, redis_port, NULL, NULL, rules);
}

#define PRODUCED 200

/* The records of the producer tests, as KEY<sep>VALUE lines. */
static char *producer_input(char sep) {
    size_t cap = PRODUCED * 64, len = 0;
    char *in = malloc(cap);

    for (int i = 0; in && i < PRODUCED; i++)
        len += (size_t)snprintf(in + len, cap - len, "key%d%c{\"n\":%d,\"kind\":\"k%d\"}\n", i, sep,
                                i, i % 3);
    return in;
}

/*
 * Runs `cmd` (a producer loading the plugin) on the producer records,
 * then checks what the subscriber got: PRODUCED notifications, in order,
 * each with its channel and the bytes that do not depend on the clock;
 * then runs the bridge on the topic and checks it publishes the very same
 * bytes to the same channels.
 */
static void check_plugin_producer(h_scene_t *sc, const char *cmd, char sep, const char *yaml) {
    char *input = producer_input(sep), *out = NULL;
    int rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(input);
    rc = h_run(cmd, input, &out, 1);
    free(input);
    if (rc != 0)
        fprintf(stderr, "%s: exit %d:\n%s\n", cmd, rc, out ? out : "");
    CU_ASSERT_EQUAL(rc, 0);
    free(out);
    CU_ASSERT_EQUAL(h_sub_wait(sc->sub, PRODUCED, h_deadline(30000)), PRODUCED);
    CU_ASSERT_EQUAL_FATAL(h_sub_count(sc->sub), PRODUCED);
    for (int i = 0; i < PRODUCED; i++) {
        const h_note_t *got = h_sub_note(sc->sub, (size_t)i);
        char channel[160], head[160];
        const char *tail = ",\"h\":\"hv\"}";

        snprintf(channel, sizeof(channel), "%s:k%d:key%d", sc->prefix, i % 3, i);
        snprintf(head, sizeof(head),
                 "{\"n\":%d,\"key\":\"key%d\",\"partition\":0,\"offset\":%d,\"ts\":", i, i, i);
        CU_ASSERT_STRING_EQUAL(got->channel, channel);
        CU_ASSERT(strncmp(got->message, head, strlen(head)) == 0);
        CU_ASSERT(got->message_len > strlen(head) + strlen(tail) &&
                  strcmp(got->message + got->message_len - strlen(tail), tail) == 0);
        if (strcmp(got->channel, channel) != 0 || strncmp(got->message, head, strlen(head)) != 0)
            fprintf(stderr, "notification #%d: got %s %s\n", i, got->channel, got->message);
    }
    /* The bridge, following the log afterwards, publishes the same bytes. */
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc->b, yaml), 0);
    CU_ASSERT_EQUAL(h_sub_wait(sc->sub, 2 * PRODUCED, h_deadline(60000)), 2 * PRODUCED);
    h_assert_quiet(sc->sub);
    CU_ASSERT_EQUAL_FATAL(h_sub_count(sc->sub), 2 * PRODUCED);
    for (int i = 0; i < PRODUCED; i++) {
        const h_note_t *shim = h_sub_note(sc->sub, (size_t)i);
        const h_note_t *bridge = h_sub_note(sc->sub, (size_t)(PRODUCED + i));

        CU_ASSERT_STRING_EQUAL(shim->channel, bridge->channel);
        CU_ASSERT_EQUAL(shim->message_len, bridge->message_len);
        CU_ASSERT(shim->message_len == bridge->message_len &&
                  memcmp(shim->message, bridge->message, shim->message_len) == 0);
        if (strcmp(shim->message, bridge->message) != 0)
            fprintf(stderr, "record %d: shim %s, bridge %s\n", i, shim->message, bridge->message);
    }
    CU_ASSERT_EQUAL(h_bridge_stop(&sc->b, SIGTERM), 0);
}

/* ------------------------------------------------------------------ tests */

/* kcat (the system's librdkafka 2.0.2) with the plugin: exact notifications. */
static void test_kcat_plugin(void) {
    h_scene_t sc;
    char yaml[4096], cfg[64], cmd[8192];

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "shim-kcat", 1, NULL, 0), 0);
    producer_config(yaml, sizeof(yaml), &sc, h_redis_port());
    CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
    snprintf(cmd, sizeof(cmd),
             "timeout %d kcat -P -b %s -t %s -p 0 -K '|' -H x-h=hv -X linger.ms=5 "
             "-X plugin.library.paths=%s -X k2r.config=%s",
             scaled_seconds(60), h_brokers(), sc.topic, plugin_path(), cfg);
    check_plugin_producer(&sc, cmd, '|', yaml);
    unlink(cfg);
    h_scene_close(&sc);
}

/* Python's confluent-kafka (PyPI, its bundled librdkafka) with the plugin. */
static void test_python_plugin(void) {
    h_scene_t sc;
    char yaml[4096], cfg[64], cmd[8192], *python = NULL;
    int rc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "shim-python", 1, NULL, 0), 0);
    snprintf(cmd, sizeof(cmd), "%s/scripts/python-shim.sh", K2R_SOURCE_DIR);
    rc = h_run(cmd, NULL, &python, 0);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0 || !python || !*python) {
        free(python);
        h_scene_close(&sc);
        return;
    }
    python[strcspn(python, "\n")] = '\0';
    producer_config(yaml, sizeof(yaml), &sc, h_redis_port());
    CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
    /* The header comes from the script's records: x-h=hv on each. */
    snprintf(cmd, sizeof(cmd), "timeout %d %s %s/tests/integration/shim_produce.py %s %s %s %s",
             scaled_seconds(60), python, K2R_SOURCE_DIR, h_brokers(), sc.topic, plugin_path(), cfg);
    check_plugin_producer(&sc, cmd, '\t', yaml);
    free(python);
    unlink(cfg);
    h_scene_close(&sc);
}

/*
 * The shim and the bridge together, dedupe on: kcat produces with the
 * plugin while the bridge follows the topic; every record is published by
 * exactly one of them (the other's is suppressed on Redis), so the
 * subscriber gets each notification once.
 */
static void test_dedupe_with_bridge(void) {
    enum { N = 1000 };
    h_scene_t sc;
    char yaml[4096], cfg[64], cmd[8192], rules[1024], sections[256], series_pub[160], *input,
        *out = NULL, *text;
    const char *series[2];
    int64_t want[2];
    long long shim_pub, shim_sup;
    size_t len = 0;
    unsigned char *seen;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "shim-dedupe", 1, NULL, H_SCENE_HTTP), 0);
    snprintf(rules, sizeof(rules),
             "  - name: shim\n"
             "    topic: %s\n"
             "    type: kind\n"
             "    id: {meta: key}\n"
             "    channel: \"%s:{type}:{id}\"\n"
             "    notification: [n, {offset: {meta: offset}}]\n",
             sc.topic, sc.prefix);
    snprintf(sections, sizeof(sections),
             "dedupe: {enabled: true, window: 10m}\nhttp: {enabled: true, listen: "
             "\"127.0.0.1:%d\"}\n",
             sc.http_port);
    {
        h_config_opts_t opts = {NULL, NULL, NULL, NULL, sections};
        h_config_opts(yaml, sizeof(yaml), sc.group, sc.topic, h_redis_port(), &opts, rules);
    }
    CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);

    input = malloc((size_t)N * 48);
    CU_ASSERT_PTR_NOT_NULL_FATAL(input);
    for (int i = 0; i < N; i++)
        len += (size_t)sprintf(input + len, "key%d|{\"n\":%d,\"kind\":\"k\"}\n", i, i);
    snprintf(cmd, sizeof(cmd),
             "timeout %d kcat -P -b %s -t %s -p 0 -K '|' -X linger.ms=5 "
             "-X plugin.library.paths=%s -X k2r.config=%s -X k2r.debug=true",
             scaled_seconds(60), h_brokers(), sc.topic, plugin_path(), cfg);
    CU_ASSERT_EQUAL(h_run(cmd, input, &out, 1), 0);
    free(input);
    shim_pub = counter_of(out, "published");
    shim_sup = counter_of(out, "suppressed");
    CU_ASSERT_EQUAL(shim_pub + shim_sup, N);

    /* The bridge has read every record: Redis took each of its notifications
     * (suppressed ones included), and suppressed those the shim published. */
    snprintf(series_pub, sizeof(series_pub), "k2r_notifications_published_total{rule=\"shim\"}");
    series[0] = series_pub;
    series[1] = "k2r_dedup_suppressed_total";
    want[0] = N;
    want[1] = shim_pub;
    text = h_wait_metrics(sc.http_port, series, want, 2, h_deadline(60000));
    CU_ASSERT_PTR_NOT_NULL(text);
    CU_ASSERT(text && h_metric(text, series[0]) == N);
    /* What one publisher suppressed, the other published. */
    CU_ASSERT(text && h_metric(text, series[1]) == shim_pub);
    fprintf(stderr,
            "  (dedupe: shim published %lld and was suppressed %lld times; the bridge suppressed "
            "%lld)\n",
            shim_pub, shim_sup, text ? (long long)h_metric(text, series[1]) : -1LL);
    free(text);
    free(out);

    /* Each notification exactly once. */
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, N, h_deadline(30000)), N);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), N);
    seen = calloc(N, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
    for (size_t i = 0; i < h_sub_count(sc.sub); i++) {
        const h_note_t *note = h_sub_note(sc.sub, i);
        char channel[160], message[64];
        int n = -1;

        if (sscanf(note->message, "{\"n\":%d,", &n) != 1 || n < 0 || n >= N) {
            CU_FAIL("a notification of no record");
            continue;
        }
        snprintf(channel, sizeof(channel), "%s:k:key%d", sc.prefix, n);
        snprintf(message, sizeof(message), "{\"n\":%d,\"offset\":%d}", n, n);
        CU_ASSERT_STRING_EQUAL(note->channel, channel);
        CU_ASSERT_STRING_EQUAL(note->message, message);
        CU_ASSERT_EQUAL(seen[n], 0);
        seen[n] = 1;
    }
    free(seen);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);

    /* The other way round: the same records through the C API, after both
     * published them: every notification suppressed, nothing sent. */
    {
        k2r_shim_stats_t st;
        char err[512], key[32], value[64];
        k2r_shim_t *shim = k2r_shim_new(cfg, NULL, err, sizeof(err));

        CU_ASSERT_PTR_NOT_NULL_FATAL(shim);
        for (int i = 0; i < N; i++) {
            k2r_shim_record_t rec;

            memset(&rec, 0, sizeof(rec));
            rec.topic = sc.topic;
            rec.offset = i;
            rec.timestamp = -1;
            rec.key = key;
            rec.key_len = (size_t)snprintf(key, sizeof(key), "key%d", i);
            rec.value = value;
            rec.value_len = (size_t)snprintf(value, sizeof(value), "{\"n\":%d,\"kind\":\"k\"}", i);
            CU_ASSERT_EQUAL(k2r_shim_publish(shim, &rec), K2R_SHIM_QUEUED);
        }
        CU_ASSERT_EQUAL(k2r_shim_flush(shim, (int)(h_deadline(30000) - h_now_ms())), 0);
        k2r_shim_stats(shim, &st);
        CU_ASSERT_EQUAL(st.suppressed, N);
        CU_ASSERT_EQUAL(st.published, 0);
        k2r_shim_destroy(shim);
        h_assert_quiet(sc.sub);
        CU_ASSERT_EQUAL(h_sub_count(sc.sub), N);
    }
    unlink(cfg);
    h_scene_close(&sc);
}

/* kcat with the plugin (k2r.debug: the counters at close) produces records
 * key<i>|{"n":i,"kind":"k"} for i in [from, to) to partition 0; the shim's
 * published, suppressed and dropped_redis counts go to out[0..2]. */
static void kcat_shim_range(const h_scene_t *sc, const char *cfg, int from, int to,
                            long long out[3]) {
    char cmd[8192], *input = malloc((size_t)(to - from) * 48 + 1), *text = NULL;
    size_t len = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(input);
    input[0] = '\0';
    for (int i = from; i < to; i++)
        len += (size_t)sprintf(input + len, "key%d|{\"n\":%d,\"kind\":\"k\"}\n", i, i);
    snprintf(cmd, sizeof(cmd),
             "timeout %d kcat -P -b %s -t %s -p 0 -K '|' -X linger.ms=5 "
             "-X plugin.library.paths=%s -X k2r.config=%s -X k2r.debug=true",
             scaled_seconds(60), h_brokers(), sc->topic, plugin_path(), cfg);
    CU_ASSERT_EQUAL(h_run(cmd, input, &text, 1), 0);
    out[0] = counter_of(text, "published");
    out[1] = counter_of(text, "suppressed");
    out[2] = counter_of(text, "dropped_redis");
    free(text);
    free(input);
}

/*
 * The path to Redis cut for a while, for the shim and the bridge alike,
 * dedupe on, the subscriber connected all along: the shim drops what is
 * produced meanwhile, the bridge holds it and publishes it when Redis is
 * back; every record's notification arrives once.
 */
static void test_dedupe_outage(void) {
    enum { N = 900 };
    h_scene_t sc;
    char yaml[4096], cfg[64], rules[1024], sections[256], series_pub[160], *text;
    const char *series[1];
    int64_t want[1];
    long long a[3], b[3], c[3];
    unsigned char *seen;
    size_t dups = 0, lost = 0;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "shim-outage", 1, NULL, H_SCENE_PROXY | H_SCENE_HTTP),
                          0);
    snprintf(rules, sizeof(rules),
             "  - name: shim\n"
             "    topic: %s\n"
             "    type: kind\n"
             "    id: {meta: key}\n"
             "    channel: \"%s:{type}:{id}\"\n"
             "    notification: [n, {offset: {meta: offset}}]\n",
             sc.topic, sc.prefix);
    snprintf(sections, sizeof(sections),
             "dedupe: {enabled: true, window: 10m}\nhttp: {enabled: true, listen: "
             "\"127.0.0.1:%d\"}\n",
             sc.http_port);
    {
        /* Both publishers reach Redis through the proxy. */
        h_config_opts_t opts = {NULL, NULL, NULL, NULL, sections};
        h_config_opts(yaml, sizeof(yaml), sc.group, sc.topic, sc.redis_port, &opts, rules);
    }
    CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    snprintf(series_pub, sizeof(series_pub), "k2r_notifications_published_total{rule=\"shim\"}");
    series[0] = series_pub;

    /* A third with Redis there, and the bridge through them too. */
    kcat_shim_range(&sc, cfg, 0, 300, a);
    want[0] = 300;
    text = h_wait_metrics(sc.http_port, series, want, 1, h_deadline(60000));
    CU_ASSERT(text && h_metric(text, series[0]) == 300);
    free(text);
    /* A third with the path cut: the shim drops every one. */
    h_proxy_stop(&sc.proxy);
    kcat_shim_range(&sc, cfg, 300, 600, b);
    CU_ASSERT_EQUAL(b[0] + b[1], 0);
    CU_ASSERT_EQUAL(b[2], 300);
    /* The path back, and a third more. */
    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&sc.proxy, h_redis_port()), 0);
    kcat_shim_range(&sc, cfg, 600, N, c);
    want[0] = N;
    text = h_wait_metrics(sc.http_port, series, want, 1, h_deadline(60000));
    CU_ASSERT(text && h_metric(text, series[0]) == N);
    free(text);

    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, N, h_deadline(30000)), N);
    h_assert_quiet(sc.sub);
    seen = calloc(N, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
    for (size_t i = 0; i < h_sub_count(sc.sub); i++) {
        int n = -1;

        if (sscanf(h_sub_note(sc.sub, i)->message, "{\"n\":%d,", &n) == 1 && n >= 0 && n < N)
            dups += seen[n]++ > 0;
    }
    for (int n = 0; n < N; n++)
        lost += seen[n] == 0;
    fprintf(stderr,
            "  (outage: shim published %lld/%lld/%lld before/during/after, dropped %lld during; "
            "subscriber: %zu notifications, %zu lost, %zu duplicates)\n",
            a[0], b[0], c[0], b[2], h_sub_count(sc.sub), lost, dups);
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), N);
    free(seen);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    unlink(cfg);
    h_scene_close(&sc);
}

/* Redis unreachable: the producer is not affected, the shim counts. */
static void test_redis_unreachable(void) {
    enum { N = 100000 };
    h_scene_t sc;
    char yaml[4096], cfg[64], cmd[8192], *input, *out = NULL;
    int port = h_free_port(), rc;
    size_t len = 0;
    long long enq, full, pub, dropped;

    CU_ASSERT_FATAL(port > 0);
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "shim-down", 1, NULL, 0), 0);
    producer_config(yaml, sizeof(yaml), &sc, port); /* nothing listens there */
    CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
    input = malloc((size_t)N * 40);
    CU_ASSERT_PTR_NOT_NULL_FATAL(input);
    for (int i = 0; i < N; i++)
        len += (size_t)sprintf(input + len, "key%d|{\"n\":%d,\"kind\":\"k\"}\n", i, i);
    /* k2r.debug prints the shim's counters when the producer closes. */
    snprintf(cmd, sizeof(cmd),
             "timeout %d kcat -P -b %s -t %s -p 0 -K '|' -X linger.ms=5 "
             "-X plugin.library.paths=%s -X k2r.config=%s -X k2r.debug=true",
             scaled_seconds(120), h_brokers(), sc.topic, plugin_path(), cfg);
    rc = h_run(cmd, input, &out, 1);
    free(input);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(high_watermark(sc.topic), N);
    enq = counter_of(out, "enqueued");
    full = counter_of(out, "dropped_queue_full");
    pub = counter_of(out, "published");
    dropped = counter_of(out, "dropped_redis");
    CU_ASSERT(enq >= 0 && full >= 0);
    CU_ASSERT_EQUAL(enq + full, N);
    CU_ASSERT_EQUAL(pub, 0);
    CU_ASSERT_EQUAL(dropped, enq); /* one notification per record */
    CU_ASSERT(out && strstr(out, "notifications are dropped (counted; the bridge delivers them)"));
    if (rc != 0 || enq + full != N)
        fprintf(stderr, "kcat: exit %d; last output: %s\n", rc,
                out && strlen(out) > 2000 ? out + strlen(out) - 2000
                : out                     ? out
                                          : "");
    fprintf(stderr,
            "  (Redis unreachable: %d records acknowledged; shim enqueued %lld, dropped "
            "%lld at a full queue, %lld with Redis unavailable)\n",
            N, enq, full, dropped);
    free(out);
    unlink(cfg);
    h_scene_close(&sc);
}

/* Redis that takes commands and never answers: the queue fills to its
 * bound and the rest is dropped and counted; k2r_shim_publish never waits. */
static void test_black_hole_queue_bound(void) {
    enum { N = 100, QUEUE = 10 };
    h_proxy_t proxy;
    char yaml[1024], cfg[64], err[512], value[64];
    k2r_shim_opts_t opts;
    k2r_shim_stats_t st;
    k2r_shim_t *shim;
    int64_t slowest_us = 0;

    memset(&proxy, 0, sizeof(proxy));
    /* The handshake's +PONG passes (7 bytes), nothing after it. */
    CU_ASSERT_EQUAL_FATAL(h_delay_proxy_start(&proxy, h_redis_port(), -1, 7), 0);
    snprintf(yaml, sizeof(yaml),
             "kafka: {brokers: %s, group_id: g, topics: [t]}\n"
             "redis: {url: \"redis://127.0.0.1:%d\", command_timeout_ms: 1000,\n"
             "        reconnect_backoff_ms: 50, reconnect_backoff_max_ms: 200}\n"
             "rules:\n"
             "  - {name: r, topic: t, type: {const: x}, id: {const: y}, notification: [n]}\n",
             h_brokers(), proxy.port);
    CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
    memset(&opts, 0, sizeof(opts));
    opts.queue_records = QUEUE;
    shim = k2r_shim_new(cfg, &opts, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(shim);
    for (int i = 0; i < N; i++) {
        k2r_shim_record_t rec;
        struct timespec a, b;

        memset(&rec, 0, sizeof(rec));
        rec.topic = "t";
        rec.offset = i;
        rec.timestamp = -1;
        rec.value = value;
        rec.value_len = (size_t)snprintf(value, sizeof(value), "{\"n\":%d}", i);
        clock_gettime(CLOCK_MONOTONIC, &a);
        k2r_shim_publish(shim, &rec);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 > slowest_us)
            slowest_us = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
    }
    /* The thread took the first few and waits for replies that never come;
     * the queue took QUEUE more; the rest was dropped at once. */
    k2r_shim_stats(shim, &st);
    CU_ASSERT_EQUAL(st.enqueued + st.dropped_queue_full, N);
    CU_ASSERT(st.enqueued >= QUEUE && st.enqueued <= 2 * QUEUE);
    CU_ASSERT(slowest_us < 100000); /* 100 ms: a call copies and returns */
    /* Each connection's publish times out; what it carried is dropped. */
    CU_ASSERT_EQUAL(k2r_shim_flush(shim, (int)(h_deadline(30000) - h_now_ms())), 0);
    k2r_shim_stats(shim, &st);
    CU_ASSERT_EQUAL(st.published, 0);
    CU_ASSERT_EQUAL(st.dropped_redis, st.enqueued);
    CU_ASSERT_EQUAL(st.queued_records, 0);
    fprintf(stderr,
            "  (black hole: %llu queued, %llu dropped at the bound of %d, %llu dropped with Redis "
            "silent; slowest k2r_shim_publish %lld us)\n",
            (unsigned long long)st.enqueued, (unsigned long long)st.dropped_queue_full, QUEUE,
            (unsigned long long)st.dropped_redis, (long long)slowest_us);
    k2r_shim_destroy(shim);
    h_proxy_stop(&proxy);
    unlink(cfg);
}

/* A config the shim cannot use: disabled, said in librdkafka's log, and
 * the producer delivers as before. */
static void test_bad_config(void) {
    h_scene_t sc;
    char yaml[4096], cfg[64], cmd[8192], *out = NULL, *typo;
    int rc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "shim-bad", 1, NULL, 0), 0);
    producer_config(yaml, sizeof(yaml), &sc, h_redis_port());
    typo = strstr(yaml, "channel:");
    CU_ASSERT_PTR_NOT_NULL_FATAL(typo);
    memmove(typo + 3, typo + 4, strlen(typo + 4) + 1); /* "chanel:" */
    for (int k = 0; k < 4; k++) {
        const char *extra = "";

        if (k == 0) {
            CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
        } else {
            snprintf(cfg, sizeof(cfg), "/nonexistent/bridge.yaml");
        }
        if (k == 2)
            extra = "-X k2r.queue_sise=10"; /* an unknown k2r.* property */
        if (k == 3) /* a transactional producer: only the shim's refusal matters here
                       (the test stack's single broker may not take transactions) */
            extra = "-X transactional.id=shim-test";
        snprintf(cmd, sizeof(cmd),
                 "timeout %d kcat -P -b %s -t %s -p 0 -X plugin.library.paths=%s "
                 "-X k2r.config=%s %s",
                 scaled_seconds(60), h_brokers(), sc.topic, plugin_path(), cfg, extra);
        rc = h_run(cmd, "{\"n\":1}\n", &out, 1);
        if (k < 3)
            CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT(out && strstr(out, "Interceptor k2r-shim failed on_new") &&
                  strstr(out, "disabled, the producer is not affected"));
        if (k == 0)
            CU_ASSERT(out && strstr(out, cfg) && strstr(out, "chanel"));
        if (k == 1)
            CU_ASSERT(out && strstr(out, "/nonexistent/bridge.yaml: cannot open"));
        if (k == 2)
            CU_ASSERT(out && strstr(out, "k2r.queue_sise: no such property"));
        if (k == 3)
            CU_ASSERT(out && strstr(out, "transactional producers are not supported"));
        {
            /* The line that says why, for the log of the run. */
            const char *why = out ? strstr(out, "Interceptor k2r-shim") : NULL;
            fprintf(stderr, "  (kcat: %.*s)\n", why ? (int)strcspn(why, "\n") : 0, why ? why : "");
        }
        free(out);
        out = NULL;
        if (k == 0)
            unlink(cfg);
        /* Every record was delivered all the same. */
        if (k == 2)
            CU_ASSERT_EQUAL(high_watermark(sc.topic), 3);
    }
    h_scene_close(&sc);
}

/* A delivery report callback that only counts. */
static void count_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage, void *opaque) {
    (void)rk;
    if (!rkmessage->err)
        (*(int *)opaque)++;
}

/*
 * A program with librdkafka linked in statically (this test binary, linked
 * with -rdynamic so that its rd_kafka_* are exported): the plugin finds
 * them in the program itself (dlopen(NULL)) and publishes.
 */
static void test_static_host(void) {
    h_scene_t sc;
    char yaml[4096], cfg[64], errstr[512], value[64];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    int delivered = 0;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "shim-static", 1, NULL, 0), 0);
    producer_config(yaml, sizeof(yaml), &sc, h_redis_port());
    CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
    conf = rd_kafka_conf_new();
    CU_ASSERT_EQUAL_FATAL(
        rd_kafka_conf_set(conf, "plugin.library.paths", plugin_path(), errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    CU_ASSERT_EQUAL_FATAL(rd_kafka_conf_set(conf, "k2r.config", cfg, errstr, sizeof(errstr)),
                          RD_KAFKA_CONF_OK);
    CU_ASSERT_EQUAL_FATAL(
        rd_kafka_conf_set(conf, "bootstrap.servers", h_brokers(), errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, count_delivery);
    rd_kafka_conf_set_opaque(conf, &delivered);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    CU_ASSERT_PTR_NOT_NULL_FATAL(rk);
    for (int i = 0; i < 5; i++) {
        char key[16];
        const char *hv = "hv";

        snprintf(key, sizeof(key), "key%d", i);
        snprintf(value, sizeof(value), "{\"n\":%d,\"kind\":\"k%d\"}", i, i % 3);
        CU_ASSERT_EQUAL(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(sc.topic), RD_KAFKA_V_PARTITION(0),
                                          RD_KAFKA_V_KEY(key, strlen(key)),
                                          RD_KAFKA_V_VALUE(value, strlen(value)),
                                          RD_KAFKA_V_HEADER("x-h", hv, 2),
                                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                        RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    CU_ASSERT_EQUAL(rd_kafka_flush(rk, (int)(h_deadline(30000) - h_now_ms())),
                    RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    CU_ASSERT_EQUAL(delivered, 5);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 5, h_deadline(10000)), 5);
    for (size_t i = 0; i < 5 && i < h_sub_count(sc.sub); i++) {
        char channel[160], head[96];

        snprintf(channel, sizeof(channel), "%s:k%zu:key%zu", sc.prefix, i % 3, i);
        snprintf(head, sizeof(head),
                 "{\"n\":%zu,\"key\":\"key%zu\",\"partition\":0,\"offset\":%zu,", i, i, i);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, i)->channel, channel);
        CU_ASSERT(strncmp(h_sub_note(sc.sub, i)->message, head, strlen(head)) == 0);
    }
    unlink(cfg);
    h_scene_close(&sc);
}

/* The hostile corpus through the C API. */
static void test_hostile_c_api(void) {
    hc_corpus_t corpus = {NULL, 0};
    char err[512], path[4096], prefix[8], pattern[16], cfg[64], *yaml = NULL, *text = NULL;
    k2r_shim_t *shim;
    k2r_shim_opts_t opts;
    k2r_shim_stats_t st;
    h_sub_t *sub;
    size_t nwant = 0, nskipped = 0, nrecords = 0, got;
    int64_t offsets[8][64] = {{0}};
    const char *topics[] = {"strict", "escape", "ce", "stop", "norule"};
    FILE *f;
    long size;

    snprintf(path, sizeof(path), "%s/tests/hostile/cases.txt", K2R_SOURCE_DIR);
    CU_ASSERT_EQUAL_FATAL(hc_load(path, &corpus, err, sizeof(err)), 0);
    /* The fixture's rules with this stack's Redis and a channel prefix of
     * this run, as long as "hostile" so every limit bites at the same byte. */
    snprintf(prefix, sizeof(prefix), "s%06x", (unsigned)(getpid() ^ time(NULL)) & 0xffffffu);
    snprintf(path, sizeof(path), "%s/tests/hostile/bridge.yaml", K2R_SOURCE_DIR);
    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)size + 1);
    CU_ASSERT_FATAL(text && fread(text, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    yaml = calloc(1, (size_t)size * 2 + 256);
    CU_ASSERT_PTR_NOT_NULL_FATAL(yaml);
    {
        /* "hostile:" -> "<prefix>:", the Redis URL -> this stack's. */
        const char *p = text;
        char *o = yaml, url[64];

        snprintf(url, sizeof(url), "redis://127.0.0.1:%d", h_redis_port());
        while (*p) {
            if (strncmp(p, "hostile:", 8) == 0) {
                o += sprintf(o, "%s:", prefix);
                p += 8;
            } else if (strncmp(p, "redis://127.0.0.1:6379", 22) == 0) {
                o += sprintf(o, "%s", url);
                p += 22;
            } else {
                *o++ = *p++;
            }
        }
        *o = '\0';
    }
    CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
    snprintf(pattern, sizeof(pattern), "%s:*", prefix);
    sub = h_sub_new(h_redis_port(), pattern);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);

    /* Room for the whole corpus (records of several MB among them), so that
     * nothing is dropped for a full queue while the thread catches up. */
    memset(&opts, 0, sizeof(opts));
    opts.queue_bytes = 512u << 20;
    shim = k2r_shim_new(cfg, &opts, err, sizeof(err));
    if (!shim)
        fprintf(stderr, "k2r_shim_new: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(shim);
    for (size_t i = 0; i < corpus.ncases; i++) {
        const hc_case_t *c = &corpus.cases[i];
        k2r_shim_header_t *hdrs = calloc(c->nheaders + 1, sizeof(*hdrs));
        k2r_shim_record_t rec;
        char topic[32];
        size_t t;

        /* A known bug of k2r_rules_map itself: not what the file expects. */
        if (c->bug.data && c->bug_map)
            continue;
        for (t = 0; t < 5 && strcmp(topics[t], c->topic) != 0; t++)
            ;
        CU_ASSERT_FATAL(t < 5 && c->partition < 64 && hdrs);
        snprintf(topic, sizeof(topic), "hostile.%s", c->topic);
        for (size_t h = 0; h < c->nheaders; h++) {
            hdrs[h].name = c->headers[h].name;
            hdrs[h].value = c->headers[h].value.data;
            hdrs[h].value_len = c->headers[h].value.len;
        }
        memset(&rec, 0, sizeof(rec));
        rec.topic = topic;
        rec.partition = c->partition;
        rec.offset = offsets[t][c->partition]++;
        rec.timestamp = h_now_ms();
        rec.tstype = K2R_SHIM_TS_CREATE;
        rec.key = c->key.data;
        rec.key_len = c->key.len;
        rec.value = c->value.data;
        rec.value_len = c->value.len;
        rec.headers = c->nheaders ? hdrs : NULL;
        rec.nheaders = c->nheaders;
        CU_ASSERT_EQUAL(k2r_shim_publish(shim, &rec), K2R_SHIM_QUEUED);
        free(hdrs);
        nrecords++;
        if (strcmp(c->action, "none") != 0)
            nskipped++;
        nwant += c->npublish;
    }
    CU_ASSERT_EQUAL(k2r_shim_flush(shim, (int)(h_deadline(30000) - h_now_ms())), 0);
    k2r_shim_stats(shim, &st);
    CU_ASSERT_EQUAL(st.enqueued, nrecords);
    CU_ASSERT_EQUAL(st.skipped_by_rules, nskipped);
    CU_ASSERT_EQUAL(st.published, nwant);
    CU_ASSERT_EQUAL(st.dropped_queue_full + st.dropped_redis + st.dropped_no_offset +
                        st.dropped_stale + st.errors + st.suppressed,
                    0);
    fprintf(stderr,
            "  (hostile corpus through the C API: %zu records, %llu published, %llu skipped by "
            "the rules)\n",
            nrecords, (unsigned long long)st.published, (unsigned long long)st.skipped_by_rules);
    got = h_sub_wait(sub, nwant, h_deadline(30000));
    CU_ASSERT_EQUAL(got, nwant);
    /* In the order published: one connection, one publisher. */
    {
        size_t k = 0;

        for (size_t i = 0; i < corpus.ncases && k < h_sub_count(sub); i++) {
            const hc_case_t *c = &corpus.cases[i];

            if (c->bug.data && c->bug_map)
                continue;
            for (size_t j = 0; j < c->npublish && k < h_sub_count(sub); j++, k++) {
                const h_note_t *n = h_sub_note(sub, k);
                const hc_publish_t *w = &c->publish[j];
                int ok = n->message_len == w->message.len &&
                         memcmp(n->message, w->message.data, w->message.len) == 0 &&
                         strlen(n->channel) == w->channel.len &&
                         strncmp(n->channel, prefix, 7) == 0 &&
                         memcmp(n->channel + 7, w->channel.data + 7, w->channel.len - 7) == 0;

                CU_ASSERT(ok);
                if (!ok)
                    fprintf(stderr, "case %s: got %s %s\n", c->name, n->channel, n->message);
            }
        }
    }
    k2r_shim_destroy(shim);
    h_sub_destroy(sub);
    unlink(cfg);
    free(text);
    free(yaml);
    hc_free(&corpus);
}

/* The first port of a comma-separated list of host:port or port in the
 * environment, or -1. */
static int first_port(const char *var) {
    const char *v = getenv(var), *colon;

    if (!v || !*v)
        return -1;
    colon = strchr(v, ':');
    return colon && colon < v + strcspn(v, ",") ? atoi(colon + 1) : atoi(v);
}

/* The C API on Sentinel and on Cluster: the sink's topologies, as the
 * bridge's config names them. */
static void test_topologies_c_api(void) {
    static const char *const names[] = {"sentinel", "cluster"};

    for (size_t t = 0; t < 2; t++) {
        char prefix[96], pattern[112], yaml[2048], cfg[64], err[512], redis[512], value[64];
        const char *addrs = getenv(t == 0 ? "K2R_TEST_SENTINEL_ADDRS" : "K2R_TEST_CLUSTER_ADDRS");
        int port = first_port(t == 0 ? "K2R_TEST_SENTINEL_DATA_PORTS" : "K2R_TEST_CLUSTER_ADDRS");
        k2r_shim_stats_t st;
        k2r_shim_t *shim;
        h_sub_t *sub;
        enum { N = 20 };

        CU_ASSERT_FATAL(addrs && port > 0);
        if (t == 0)
            snprintf(redis, sizeof(redis), "  sentinel:\n    master: %s\n    addresses: [%s]\n",
                     getenv("K2R_TEST_SENTINEL_MASTER"), addrs);
        else
            snprintf(redis, sizeof(redis), "  cluster:\n    addresses: [%s]\n", addrs);
        snprintf(prefix, sizeof(prefix), "shim-%s", names[t]);
        h_unique(prefix, sizeof(prefix), prefix);
        snprintf(yaml, sizeof(yaml),
                 "kafka: {brokers: %s, group_id: g, topics: [t]}\n"
                 "redis:\n%s"
                 "rules:\n"
                 "  - {name: r, topic: t, type: {const: x}, id: {const: y},\n"
                 "     channel: \"%s:{type}:{id}\", notification: [n]}\n",
                 h_brokers(), redis, prefix);
        CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
        /* A PUBLISH reaches subscribers of every node of a cluster, and of
         * the replicas of a Sentinel-watched primary. */
        snprintf(pattern, sizeof(pattern), "%s:*", prefix);
        sub = h_sub_new(port, pattern);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
        shim = k2r_shim_new(cfg, NULL, err, sizeof(err));
        if (!shim)
            fprintf(stderr, "%s: %s\n", names[t], err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(shim);
        for (int i = 0; i < N; i++) {
            k2r_shim_record_t rec;

            memset(&rec, 0, sizeof(rec));
            rec.topic = "t";
            rec.offset = i;
            rec.timestamp = -1;
            rec.value = value;
            rec.value_len = (size_t)snprintf(value, sizeof(value), "{\"n\":%d}", i);
            CU_ASSERT_EQUAL(k2r_shim_publish(shim, &rec), K2R_SHIM_QUEUED);
        }
        CU_ASSERT_EQUAL(k2r_shim_flush(shim, (int)(h_deadline(20000) - h_now_ms())), 0);
        k2r_shim_stats(shim, &st);
        CU_ASSERT_EQUAL(st.published, N);
        CU_ASSERT_EQUAL(st.dropped_redis, 0);
        CU_ASSERT_EQUAL(h_sub_wait(sub, N, h_deadline(10000)), N);
        for (int i = 0; i < N && (size_t)i < h_sub_count(sub); i++) {
            char channel[160], message[32];

            snprintf(channel, sizeof(channel), "%s:x:y", prefix);
            snprintf(message, sizeof(message), "{\"n\":%d}", i);
            CU_ASSERT_STRING_EQUAL(h_sub_note(sub, (size_t)i)->channel, channel);
            CU_ASSERT_STRING_EQUAL(h_sub_note(sub, (size_t)i)->message, message);
        }
        k2r_shim_destroy(shim);
        h_sub_destroy(sub);
        unlink(cfg);
    }
}

/* The C example: a plain producer publishing through the C API. */
static void test_c_example(void) {
    h_scene_t sc;
    char yaml[4096], cfg[64], cmd[8192], rules[512], *out = NULL;
    int rc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "shim-example", 1, NULL, 0), 0);
    snprintf(rules, sizeof(rules),
             "  - name: example\n"
             "    topic: %s\n"
             "    type: type\n"
             "    id: id\n"
             "    channel: \"%s:{type}:{id}\"\n"
             "    notification: [id, {offset: {meta: offset}}]\n",
             sc.topic, sc.prefix);
    h_config(yaml, sizeof(yaml), sc.group, sc.topic, h_redis_port(), NULL, NULL, rules);
    CU_ASSERT_EQUAL_FATAL(write_temp(cfg, sizeof(cfg), yaml), 0);
    snprintf(cmd, sizeof(cmd), "timeout %d %s/build/shim-producer -b %s -t %s -c %s",
             scaled_seconds(60), K2R_SOURCE_DIR, h_brokers(), sc.topic, cfg);
    rc = h_run(cmd,
               "{\"id\":\"a\",\"type\":\"user\"}\n"
               "not json\n"
               "{\"id\":\"b\",\"type\":\"repo\"}\n",
               &out, 1);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(out && strstr(out, "delivered 3, failed 0; shim: enqueued 3, published 2, "
                                 "suppressed 0, skipped_by_rules 1,"));
    if (rc != 0 || !out || !strstr(out, "published 2"))
        fprintf(stderr, "shim-producer: exit %d: %s\n", rc, out ? out : "");
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 2, h_deadline(10000)), 2);
    CU_ASSERT_EQUAL_FATAL(h_sub_count(sc.sub), 2);
    {
        char ch[160];

        snprintf(ch, sizeof(ch), "%s:user:a", sc.prefix);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, 0)->channel, ch);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, 0)->message, "{\"id\":\"a\",\"offset\":0}");
        snprintf(ch, sizeof(ch), "%s:repo:b", sc.prefix);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, 1)->channel, ch);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, 1)->message, "{\"id\":\"b\",\"offset\":2}");
    }
    free(out);
    unlink(cfg);
    h_scene_close(&sc);
}

int test_shim_register(void) {
    CU_pSuite s = CU_add_suite("shim", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "kcat loads the plugin: exact notifications, the bridge's bytes",
                     test_kcat_plugin) ||
        !CU_add_test(s, "confluent-kafka (PyPI) loads the plugin: the same", test_python_plugin) ||
        !CU_add_test(s, "with the bridge, dedupe on: each notification once",
                     test_dedupe_with_bridge) ||
        !CU_add_test(s, "with the bridge, dedupe on, Redis cut for a while: 0 lost, 0 twice",
                     test_dedupe_outage) ||
        !CU_add_test(s, "Redis unreachable: 100,000 records produced and acknowledged",
                     test_redis_unreachable) ||
        !CU_add_test(s, "a silent Redis: the queue's bound, never a wait",
                     test_black_hole_queue_bound) ||
        !CU_add_test(s, "a bad config disables the shim, not the producer", test_bad_config) ||
        !CU_add_test(s, "a program with librdkafka linked in statically loads the plugin",
                     test_static_host) ||
        !CU_add_test(s, "the hostile corpus through the C API", test_hostile_c_api) ||
        !CU_add_test(s, "the C API on Sentinel and on Cluster", test_topologies_c_api) ||
        !CU_add_test(s, "the C example publishes through the C API", test_c_example))
        return CU_get_error();
    return 0;
}
