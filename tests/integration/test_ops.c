/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ops.c - the operators' side of the daemon against the real broker and
 * Redis: /metrics scraped during a run and checked against what was produced
 * and published, /readyz turning 503 when the bridge loses Redis and 200 when
 * Redis is back, the JSON log read back line by line with jansson, and a
 * taken http.listen port refused at start.
 *
 * The test speaks HTTP/1.1 by hand over a socket (a request line, two
 * headers, then everything until the server closes): the daemon serves with
 * libmicrohttpd, and a client library would only hide what goes over the
 * wire. Every wait polls against a deadline.
 *
 * Not here: the exact text of every family (tests/unit/test_metrics.c) and
 * the delivery guarantees themselves (test_bridge.c, test_faults.c).
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* ------------------------------------------------------------- HTTP */

/* Scrapes /metrics until `series` is at least `least`, or the deadline
 * passes; returns its last value (-1 when absent). For a counter whose exact
 * value the test cannot know, such as commits, which librdkafka reports
 * after the publishes they follow. */
static int64_t wait_metric_at_least(int port, const char *series, int64_t least, int64_t deadline) {
    for (;;) {
        h_http_t r;
        int64_t v = -1;

        h_http_request(port, "GET", "/metrics", &r);
        if (r.status == 200)
            v = h_metric(r.body, series);
        h_http_free(&r);
        if (v >= least || h_now_ms() >= deadline)
            return v;
        poll(NULL, 0, 100); /* the bridge copies its counters 4 times a second */
    }
}

/* ------------------------------------------------------------ scene */

#define RULE "ops-rule"

/* A topic of one partition, a subscriber on ops:*, the bridge reaching Redis
 * through a proxy, its HTTP endpoint on a free loopback port. Statistics
 * every second (instead of the bridge's 15 s), so lag shows up quickly. */
static int scene_start(h_scene_t *sc, const char *name) {
    char rules[512], sections[256], yaml[4096];
    h_config_opts_t opts = {NULL, NULL, "    statistics.interval.ms: 1000\n", NULL, sections};

    srandom((unsigned)getpid() ^ (unsigned)h_now_ms());
    if (h_scene_open(sc, name, 1, "ops:*", H_SCENE_PROXY | H_SCENE_HTTP) != 0)
        return -1;
    snprintf(rules, sizeof(rules),
             "  - name: " RULE "\n"
             "    topic: %s\n"
             "    type: type\n"
             "    id: id\n"
             "    channel: \"ops:{type}:{id}\"\n",
             sc->topic);
    snprintf(sections, sizeof(sections),
             "log:\n  format: json\nhttp:\n  enabled: true\n  listen: 127.0.0.1:%d\n",
             sc->http_port);
    h_config_opts(yaml, sizeof(yaml), sc->group, sc->topic, sc->redis_port, &opts, rules);
    return h_bridge_start(&sc->b, yaml);
}

static void produce(h_scene_t *sc, int from, int to) {
    for (int i = from; i < to; i++) {
        char value[128];

        snprintf(value, sizeof(value), "{\"id\":\"e%d\",\"type\":\"push\"}", i);
        CU_ASSERT_EQUAL(h_produce(sc->p, sc->topic, 0, NULL, value, strlen(value)), 0);
    }
    CU_ASSERT_EQUAL(h_flush(sc->p), 0);
}

/* ------------------------------------------------------------- tests */

/* /metrics counts exactly what was produced and published; the other paths
 * answer as documented. */
static void test_metrics_scrape(void) {
    enum { N = 40 };
    char published[160], lag[200], *text;
    const char *series[] = {"k2r_records_consumed_total", published, "k2r_record_age_seconds_count",
                            "k2r_ready", "k2r_redis_up"};
    const int64_t want[] = {N, N, N, 1, 1};
    h_http_t r;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(scene_start(&sc, "ops-metrics"), 0);
    CU_ASSERT(h_http_wait(sc.http_port, "/readyz", 200, "ready\n", h_deadline(60000), &r));
    h_http_free(&r);
    CU_ASSERT(h_http_wait(sc.http_port, "/healthz", 200, "ok\n", h_deadline(5000), &r));
    h_http_free(&r);

    produce(&sc, 0, N);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, N, h_deadline(60000)), N);
    snprintf(published, sizeof(published), "k2r_notifications_published_total{rule=\"%s\"}", RULE);
    text = h_wait_metrics(sc.http_port, series, want, 5, h_deadline(10000));
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(h_metric(text, "k2r_records_consumed_total"), N);
    CU_ASSERT_EQUAL(h_metric(text, published), N);
    /* The subscriber on ops:* heard every one of them. */
    CU_ASSERT_EQUAL(h_metric(text, "k2r_notifications_no_subscribers_total{rule=\"" RULE "\"}"), 0);
    CU_ASSERT_EQUAL(h_metric(text, "k2r_records_stale_total{rule=\"" RULE "\"}"), 0);
    /* No record failed: the rule's failure series are there, all 0. */
    {
        size_t series_n = 0, nonzero = 0;

        for (const char *p = strstr(text, "\nk2r_records_failed_total{"); p;
             p = strstr(p + 1, "\nk2r_records_failed_total{")) {
            const char *sp = strchr(p + 1, ' ');
            series_n++;
            nonzero += sp && strtoll(sp + 1, NULL, 10) != 0;
        }
        CU_ASSERT(series_n > 0);
        CU_ASSERT_EQUAL(nonzero, 0);
    }
    CU_ASSERT_EQUAL(h_metric(text, "k2r_record_age_seconds_count"), N);
    CU_ASSERT_EQUAL(h_metric(text, "k2r_record_age_seconds_bucket{le=\"+Inf\"}"), N);
    CU_ASSERT(h_metric(text, "k2r_publish_duration_seconds_count") >= 1);
    CU_ASSERT_EQUAL(h_metric(text, "k2r_publish_duration_seconds_bucket{le=\"+Inf\"}"),
                    h_metric(text, "k2r_publish_duration_seconds_count"));
    CU_ASSERT_EQUAL(h_metric(text, "k2r_partitions_assigned"), 1);
    /* Bytes, commits and the process: what operators chart beside the counts. */
    CU_ASSERT(h_metric(text, "k2r_records_consumed_bytes_total") >= (int64_t)N * 10);
    CU_ASSERT(h_metric(text, "k2r_notifications_published_bytes_total") >= (int64_t)N * 10);
    CU_ASSERT(wait_metric_at_least(sc.http_port, "k2r_offset_commits_total{result=\"ok\"}", 1,
                                   h_deadline(10000)) >= 1);
    CU_ASSERT_EQUAL(h_metric(text, "k2r_offset_commits_total{result=\"failed\"}"), 0);
    CU_ASSERT(h_metric(text, "process_resident_memory_bytes") > 1000000);
    CU_ASSERT(h_metric(text, "process_open_fds") > 3);
    CU_ASSERT(h_metric(text, "process_start_time_seconds") > 1700000000);
    CU_ASSERT_EQUAL(h_metric(text, "k2r_inflight_records"), 0);
    CU_ASSERT_EQUAL(h_metric(text, "k2r_up"), 1);
    {
        /* Per topic: the one topic of kafka.topics, its offset not reset. */
        char topic_series[200];

        snprintf(topic_series, sizeof(topic_series),
                 "k2r_topic_records_consumed_total{topic=\"%s\"}", sc.topic);
        CU_ASSERT_EQUAL(h_metric(text, topic_series), N);
        snprintf(topic_series, sizeof(topic_series),
                 "k2r_topic_notifications_published_total{topic=\"%s\"}", sc.topic);
        CU_ASSERT_EQUAL(h_metric(text, topic_series), N);
        snprintf(topic_series, sizeof(topic_series),
                 "k2r_offset_resets_total{topic=\"%s\",reason=\"beyond_high_watermark\"}",
                 sc.topic);
        CU_ASSERT_EQUAL(h_metric(text, topic_series), 0);
    }
    {
        /* The version `kafka-redis-bridge version` prints, and the librdkafka
         * that runs: the one this test links, as the bridge does. */
        char cmd[512], version[64] = "", info[200];
        char *out = NULL;

        snprintf(cmd, sizeof(cmd), "%s version", h_binary());
        CU_ASSERT_EQUAL(h_run(cmd, NULL, &out, 0), 0);
        CU_ASSERT_EQUAL(out ? sscanf(out, "kafka-redis-bridge %63s", version) : 0, 1);
        free(out);
        snprintf(info, sizeof(info), "\nk2r_build_info{version=\"%s\",librdkafka=\"%s\"} 1\n",
                 version, rd_kafka_version_str());
        CU_ASSERT_PTR_NOT_NULL(strstr(text, info));
    }
    CU_ASSERT(strstr(text, "\n# TYPE k2r_publish_duration_seconds histogram\n") != NULL);
    free(text);

    /* Lag from librdkafka's statistics: everything published was stored. */
    {
        const char *lag_series[] = {lag};
        const int64_t zero[] = {0};

        snprintf(lag, sizeof(lag), "k2r_consumer_lag{topic=\"%s\",partition=\"0\"}", sc.topic);
        text = h_wait_metrics(sc.http_port, lag_series, zero, 1, h_deadline(30000));
        CU_ASSERT_PTR_NOT_NULL(text);
        CU_ASSERT_EQUAL(text ? h_metric(text, lag) : -2, 0);
        free(text);
    }

    /* The content type Prometheus expects; HEAD without a body; only GET and
     * HEAD; nothing else served. */
    h_http_request(sc.http_port, "GET", "/metrics", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(r.headers &&
              strstr(r.headers, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8") !=
                  NULL);
    h_http_free(&r);
    h_http_request(sc.http_port, "HEAD", "/metrics", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body ? r.body : "-", "");
    h_http_free(&r);
    h_http_request(sc.http_port, "POST", "/metrics", &r);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT(r.headers && strstr(r.headers, "\r\nAllow: GET, HEAD") != NULL);
    h_http_free(&r);
    h_http_request(sc.http_port, "GET", "/metrics/extra", &r);
    CU_ASSERT_EQUAL(r.status, 404);
    h_http_free(&r);

    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    /* Stopped: the port is closed. */
    h_http_request(sc.http_port, "GET", "/healthz", &r);
    CU_ASSERT_EQUAL(r.status, 0);
    h_http_free(&r);
    h_scene_close(&sc);
}

/* /readyz follows Redis: 503 with the reason while the bridge cannot reach
 * it (liveness stays 200: the loop still turns), 200 once it can again, and
 * the record produced meanwhile is then published and counted. */
static void test_readyz_follows_redis(void) {
    enum { N = 5 };
    char published[160], *text;
    const char *series[] = {"k2r_records_consumed_total", published, "k2r_ready"};
    const int64_t want[] = {N + 1, N + 1, 1};
    h_http_t r;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(scene_start(&sc, "ops-ready"), 0);
    CU_ASSERT(h_http_wait(sc.http_port, "/readyz", 200, "ready\n", h_deadline(60000), &r));
    h_http_free(&r);
    /* A loaded rule's failure series exist from start, at 0 (its on_error
     * is skip), so that an alert's increase() sees the first failure. */
    h_http_request(sc.http_port, "GET", "/metrics", &r);
    CU_ASSERT_EQUAL(r.body ? h_metric(r.body, "k2r_records_failed_total{rule=\"" RULE
                                              "\",reason=\"not_json\",action=\"skip\"}")
                           : -2,
                    0);
    h_http_free(&r);
    produce(&sc, 0, N);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, N, h_deadline(60000)), N);

    /* The bridge learns of the loss when a PUBLISH finds the connection
     * gone: one more record makes sure it tries. */
    h_proxy_stop(&sc.proxy);
    produce(&sc, N, N + 1);
    CU_ASSERT(h_http_wait(sc.http_port, "/readyz", 503, "Redis is not writable\n",
                          h_deadline(30000), &r));
    h_http_free(&r);
    CU_ASSERT(h_http_wait(sc.http_port, "/healthz", 200, "ok\n", h_deadline(5000), &r));
    h_http_free(&r);
    h_http_request(sc.http_port, "GET", "/metrics", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body ? h_metric(r.body, "k2r_ready") : -2, 0);
    CU_ASSERT_EQUAL(r.body ? h_metric(r.body, "k2r_redis_up") : -2, 0);
    h_http_free(&r);

    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&sc.proxy, h_redis_port()), 0);
    CU_ASSERT(h_http_wait(sc.http_port, "/readyz", 200, "ready\n", h_deadline(30000), &r));
    h_http_free(&r);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, N + 1, h_deadline(30000)), N + 1);
    snprintf(published, sizeof(published), "k2r_notifications_published_total{rule=\"%s\"}", RULE);
    text = h_wait_metrics(sc.http_port, series, want, 3, h_deadline(10000));
    CU_ASSERT_PTR_NOT_NULL(text);
    CU_ASSERT(text && h_metric(text, "k2r_redis_reconnects_total") >= 1);
    free(text);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_scene_close(&sc);
}

/*
 * The HTTP port cannot be starved: with 200 idle connections open from the
 * same address as the prober (as the kubelet and Prometheus share the
 * node's), /healthz still answers 200 within a second; the idle ones are
 * dropped after the 3 s timeout.
 */
static void test_http_not_starved(void) {
    enum { IDLE = 200 };
    int fds[IDLE], opened = 0, closed = 0;
    int64_t start, took, limit;
    h_http_t r;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(scene_start(&sc, "ops-starve"), 0);
    CU_ASSERT(h_http_wait(sc.http_port, "/healthz", 200, "ok\n", h_deadline(60000), &r));
    h_http_free(&r);
    for (int i = 0; i < IDLE; i++) {
        struct sockaddr_in a;

        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)sc.http_port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&a, sizeof(a)) == 0)
            opened++;
    }
    CU_ASSERT_EQUAL(opened, IDLE);
    limit = h_deadline(1000) - h_now_ms();
    start = h_now_ms();
    h_http_request(sc.http_port, "GET", "/healthz", &r);
    took = h_now_ms() - start;
    fprintf(stderr, "[/healthz with %d idle connections open: %d in %lld ms] ", IDLE, r.status,
            (long long)took);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(took <= limit);
    h_http_free(&r);
    /* The idle ones are closed by the server after its timeout. */
    {
        int64_t deadline = h_deadline(15000);

        while (closed < IDLE && h_now_ms() < deadline) {
            closed = 0;
            for (int i = 0; i < IDLE; i++) {
                struct pollfd pfd = {fds[i], POLLIN, 0};
                char c;

                if (fds[i] < 0 || (poll(&pfd, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0))
                    closed++;
            }
            if (closed < IDLE)
                poll(NULL, 0, 100); /* the server's timeout runs on its own clock */
        }
    }
    CU_ASSERT_EQUAL(closed, IDLE);
    for (int i = 0; i < IDLE; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_scene_close(&sc);
}

/* Reads the bridge's log file (NUL-terminated, free() it). */
static char *read_log(const h_bridge_t *b) {
    char cmd[400], *out = NULL;

    snprintf(cmd, sizeof(cmd), "cat '%s'", b->log);
    if (h_run(cmd, NULL, &out, 0) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* Every line the bridge wrote is one JSON object with time, level and msg;
 * the first names the version and config as context fields. */
static void test_json_log(void) {
    char *log, *line, *save = NULL;
    size_t lines = 0, bad = 0, starting = 0, skipped = 0;
    h_http_t r;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(scene_start(&sc, "ops-log"), 0);
    CU_ASSERT(h_http_wait(sc.http_port, "/readyz", 200, "ready\n", h_deadline(60000), &r));
    h_http_free(&r);
    /* A record the rule skips: its line carries rule, topic, partition,
     * offset and reason as fields. */
    CU_ASSERT_EQUAL(h_produce(sc.p, sc.topic, 0, NULL, "not json", 8), 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "\"reason\":\"not_json\"", h_deadline(30000)));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    log = read_log(&sc.b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t err;
        json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &err);
        const char *t = json_string_value(json_object_get(o, "time"));
        const char *level = json_string_value(json_object_get(o, "level"));
        const char *msg = json_string_value(json_object_get(o, "msg"));

        lines++;
        /* "2026-11-23T08:31:05.123Z" */
        if (!t || strlen(t) != 24 || t[10] != 'T' || t[19] != '.' || t[23] != 'Z' || !level ||
            !msg) {
            if (bad++ < 3)
                fprintf(stderr, "\nnot a JSON log line: %s\n", line);
        } else if (strncmp(msg, "skipped record ", 15) == 0) {
            skipped++;
            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "rule")), RULE);
            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "topic")), sc.topic);
            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "partition")), "0");
            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "offset")), "0");
            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "reason")), "not_json");
        } else if (strncmp(msg, "kafka-redis-bridge ", 19) == 0 && strstr(msg, " starting with ")) {
            const char *config = json_string_value(json_object_get(o, "config"));

            starting++;
            CU_ASSERT_STRING_EQUAL(level, "info");
            CU_ASSERT_STRING_EQUAL(config ? config : "-", sc.b.config);
            CU_ASSERT(json_is_string(json_object_get(o, "version")));
        }
        json_decref(o);
    }
    CU_ASSERT(lines >= 3);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(starting, 1);
    CU_ASSERT_EQUAL(skipped, 1);
    CU_ASSERT(h_bridge_log_has(&sc.b, "\"msg\":\"http: serving /healthz, /readyz and /metrics on "
                                      "127.0.0.1:"));
    free(log);
    h_scene_close(&sc);
}

/* A port already taken is a start-up error: one line, exit status 1,
 * before anything is consumed; K2R_LOG_FORMAT chooses that line's format. */
static void test_port_taken(void) {
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    char rules[512], sections[128], yaml[4096], want[200], topic[96], group[96];
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, sections};
    unsigned int failures = CU_get_number_of_failures();
    h_bridge_t b;
    int fd, port;

    memset(&b, 0, sizeof(b));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 1) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    port = ntohs(a.sin_port);

    h_unique(topic, sizeof(topic), "ops-taken");
    h_unique(group, sizeof(group), "g-ops-taken");
    snprintf(rules, sizeof(rules), "  - name: r\n    topic: %s\n    type: type\n    id: id\n",
             topic);
    snprintf(sections, sizeof(sections), "http:\n  listen: 127.0.0.1:%d\n", port);
    h_config_opts(yaml, sizeof(yaml), group, topic, h_redis_port(), &opts, rules);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&b, yaml), 0);
    /* Signal 0 sends nothing: this only waits for the exit. */
    CU_ASSERT_EQUAL(h_bridge_stop(&b, 0), 1);
    snprintf(want, sizeof(want), "cannot start: http.listen 127.0.0.1:%d: Address already in use",
             port);
    CU_ASSERT_EQUAL(h_bridge_log_count(&b, want), 1);

    /* K2R_LOG_FORMAT overrides log.format: the same line as text. A value
     * that is neither is a start-up error of its own. (`timeout`: should
     * the bridge start after all, the test fails instead of hanging.) */
    {
        char cmd[600], *out = NULL;
        const char *line;

        snprintf(cmd, sizeof(cmd), "K2R_LOG_FORMAT=text timeout 60 %s run -c %s", h_binary(),
                 b.config);
        CU_ASSERT_EQUAL(h_run(cmd, NULL, &out, 1), 1);
        line = out ? strstr(out, " error cannot start: http.listen 127.0.0.1:") : NULL;
        CU_ASSERT_PTR_NOT_NULL(line);
        /* "2026-11-23T08:31:05.123Z error cannot start: ..." */
        CU_ASSERT(line && line - out >= 24 && line[-24] == '2' && line[-1] == 'Z' &&
                  (line - out == 24 || line[-25] == '\n'));
        free(out);
        snprintf(cmd, sizeof(cmd), "K2R_LOG_FORMAT=yaml timeout 60 %s run -c %s", h_binary(),
                 b.config);
        CU_ASSERT_EQUAL(h_run(cmd, NULL, &out, 1), 1);
        CU_ASSERT_STRING_EQUAL(out ? out : "-",
                               "K2R_LOG_FORMAT: expected json or text; found \"yaml\"\n");
        free(out);
    }
    if (CU_get_number_of_failures() > failures)
        h_bridge_dump_log(&b);
    h_bridge_cleanup(&b);
    close(fd);
}

int test_ops_register(void) {
    CU_pSuite suite = CU_add_suite("ops", NULL, NULL);

    if (!suite || !CU_add_test(suite, "/metrics counts what was published", test_metrics_scrape) ||
        !CU_add_test(suite, "/readyz follows Redis", test_readyz_follows_redis) ||
        !CU_add_test(suite, "every log line is JSON", test_json_log) ||
        !CU_add_test(suite, "a taken http.listen port; K2R_LOG_FORMAT", test_port_taken) ||
        !CU_add_test(suite, "200 idle connections do not starve /healthz", test_http_not_starved))
        return CU_get_error();
    return 0;
}
