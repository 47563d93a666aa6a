/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_topology.c - the Redis that production runs, beyond one healthy
 * redis-server: a Redis that answers slowly, a connection dropped while
 * idle, sharded Pub/Sub (SPUBLISH) on one node, Sentinel failovers, and a
 * Redis Cluster. The servers are the stack's (scripts/stack.sh starts the
 * Sentinel set and the cluster next to the plain Redis); faults come from
 * the harness's delaying proxy and from the servers' own commands
 * (CLIENT KILL, SENTINEL FAILOVER).
 *
 * What is proved: a Redis that delays every reply by seconds does not stall
 * the loop (/healthz stays 200) and SIGTERM still ends within the drain
 * timeout plus a second; an idle connection that the server drops, or that
 * stops answering, is noticed without a publish and replaced; SPUBLISH
 * reaches SSUBSCRIBE subscribers with exact bytes and nothing reaches
 * classic subscribers.
 */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* One rule: {"n":i} to PREFIX:i with message i. */
static void topology_config(const h_scene_t *sc, int port, const char *redis_extra,
                            const char *sections, char *yaml, size_t size) {
    char rules[512];
    h_config_opts_t opts = {NULL, NULL, NULL, redis_extra, sections};

    snprintf(rules, sizeof(rules),
             "  - name: topo\n"
             "    topic: %s\n"
             "    vars:\n"
             "      n: {path: n}\n"
             "    channel: \"%s:{n}\"\n"
             "    message: \"{n}\"\n",
             sc->topic, sc->prefix);
    h_config_opts(yaml, size, sc->group, sc->topic, port, &opts, rules);
}

/* Produces {"n":i} for i in [from, to) to partition 0. */
static void produce_range(h_scene_t *sc, int from, int to) {
    for (int i = from; i < to; i++) {
        char value[64];

        snprintf(value, sizeof(value), "{\"n\":%d}", i);
        CU_ASSERT_EQUAL(h_produce(sc->p, sc->topic, 0, NULL, value, strlen(value)), 0);
    }
    CU_ASSERT_EQUAL(h_flush(sc->p), 0);
}

/* Notifications from..to-1 of `sub` are PREFIX:i with message i, in order. */
static void assert_exact(const h_scene_t *sc, const h_sub_t *sub, int from, int to) {
    CU_ASSERT_EQUAL(h_sub_count(sub), (size_t)to);
    for (int i = from; i < to && (size_t)i < h_sub_count(sub); i++) {
        char channel[160], message[32];

        snprintf(channel, sizeof(channel), "%s:%d", sc->prefix, i);
        snprintf(message, sizeof(message), "%d", i);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sub, (size_t)i)->channel, channel);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sub, (size_t)i)->message, message);
    }
}

/*
 * Slow Redis: every reply comes 5 s late. The loop keeps its turns (/healthz
 * 200 throughout, while a publish waits for its replies), the notifications
 * arrive, and SIGTERM with a publish under way ends the drain after
 * shutdown.drain_timeout (1 s), leaving what had no reply uncommitted for the
 * next run (the old blocking sink waited for the replies, 5 s).
 */
static void test_slow_redis(void) {
    enum { N = 20 };
    char yaml[4096];
    h_proxy_t proxy = {0, 0, 0};
    h_http_t r;
    h_scene_t sc;
    int64_t until, start, took, limit;
    int all_ok = 1, probes = 0;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "slow", 1, NULL, H_SCENE_HTTP), 0);
    CU_ASSERT_EQUAL_FATAL(h_delay_proxy_start(&proxy, h_redis_port(), 5000, 0), 0);
    {
        char sections[256];

        snprintf(sections, sizeof(sections),
                 "http:\n  listen: 127.0.0.1:%d\nshutdown:\n  drain_timeout: 1s\n", sc.http_port);
        topology_config(&sc, proxy.port,
                        "  connect_timeout_ms: 20000\n  command_timeout_ms: 20000\n", sections,
                        yaml, sizeof(yaml));
    }
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "redis: connected", h_deadline(60000)));
    CU_ASSERT(h_bridge_wait_log(&sc.b, "assigned", h_deadline(60000)));
    produce_range(&sc, 0, N);
    /* While the replies are on their way: the loop turns. */
    until = h_now_ms() + 4000;
    while (h_now_ms() < until) {
        h_http_request(sc.http_port, "GET", "/healthz", &r);
        all_ok &= r.status == 200;
        probes++;
        h_http_free(&r);
        if (!all_ok)
            break;
    }
    CU_ASSERT(all_ok);
    CU_ASSERT(probes > 1);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, N, h_deadline(60000)), N);
    assert_exact(&sc, sc.sub, 0, N);

    /* A publish under way when SIGTERM comes: the commands reached Redis at
     * once (the subscriber has them), their replies are 5 s away, and the
     * drain gives up after 1 s. */
    produce_range(&sc, N, 2 * N);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 2 * N, h_deadline(30000)), 2 * N);
    /* The drain's second, and up to a second more of librdkafka's own
     * teardown after the consumer closed (rd_kafka_destroy: seen 0 or 1 s). */
    limit = h_deadline(2500) - h_now_ms();
    start = h_now_ms();
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    took = h_now_ms() - start;
    fprintf(stderr, "[SIGTERM with replies 5 s late, drain_timeout 1 s: exited in %lld ms] ",
            (long long)took);
    CU_ASSERT(took <= limit);
    CU_ASSERT(h_bridge_log_has(&sc.b, "left unpublished"));
    h_proxy_stop(&proxy);
    h_scene_close(&sc);
}

/*
 * Idle check (redis.idle_check: 200ms): the server kills the bridge's idle
 * connection (CLIENT KILL TYPE normal) and the bridge notices without a
 * publish, within twice the idle check, and connects again; then a
 * connection that stops answering (a black hole after the handshake) is
 * given up when its PING has no answer within command_timeout_ms, each
 * time. /readyz is 200 again after the kill (the red spell lasts one
 * reconnect backoff, too short to poll for: the log line is the proof), and
 * the records produced afterwards arrive exactly.
 */
static void test_idle_check(void) {
    char yaml[4096], sections[128], *out = NULL;
    h_proxy_t proxy = {0, 0, 0};
    h_http_t r;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "idle", 1, NULL, H_SCENE_HTTP), 0);
    snprintf(sections, sizeof(sections), "http:\n  listen: 127.0.0.1:%d\n", sc.http_port);
    topology_config(&sc, h_redis_port(), "  command_timeout_ms: 1000\n  idle_check: 200ms\n",
                    sections, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "redis: connected", h_deadline(60000)));
    CU_ASSERT(h_http_wait(sc.http_port, "/readyz", 200, "ready\n", h_deadline(60000), &r));
    h_http_free(&r);
    CU_ASSERT_EQUAL(
        h_run("redis-cli -p $K2R_TEST_REDIS_PORT CLIENT KILL TYPE normal", NULL, &out, 1), 0);
    free(out);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "redis: idle check:", h_deadline(400)));
    CU_ASSERT(h_bridge_wait_log(&sc.b, "again; publishing 0 held", h_deadline(10000)));
    CU_ASSERT(h_http_wait(sc.http_port, "/readyz", 200, "ready\n", h_deadline(10000), &r));
    h_http_free(&r);
    produce_range(&sc, 0, 10);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 10, h_deadline(30000)), 10);
    assert_exact(&sc, sc.sub, 0, 10);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);

    /* The same bridge behind a black hole: the handshake passes, the idle
     * PING gets no answer. */
    CU_ASSERT_EQUAL_FATAL(h_delay_proxy_start(&proxy, h_redis_port(), -1, 7), 0);
    topology_config(&sc, proxy.port, "  command_timeout_ms: 1000\n  idle_check: 200ms\n", sections,
                    yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_rewrite(&sc.b, yaml), 0);
    CU_ASSERT_EQUAL_FATAL(h_bridge_restart(&sc.b), 0);
    /* Found again after every reconnect (each passes the handshake). */
    CU_ASSERT(h_bridge_wait_log_count(&sc.b, "no answer to an idle PING within 1000 ms", 2,
                                      h_deadline(30000)));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_proxy_stop(&proxy);
    h_scene_close(&sc);
}

/*
 * redis.sharded on one Redis 7 node: SPUBLISH. SSUBSCRIBE subscribers get
 * exact bytes in order; a classic PSUBSCRIBE subscriber gets nothing
 * (sharded messages are another namespace).
 */
static void test_sharded_single_node(void) {
    enum { N = 10 };
    char yaml[4096], names[N][160];
    const char *channels[N];
    h_sub_t *ssub;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "sharded", 1, NULL, 0), 0);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "%s:%d", sc.prefix, i);
        channels[i] = names[i];
    }
    ssub = h_ssub_new(h_redis_port(), channels, N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ssub);
    topology_config(&sc, h_redis_port(), "  command_timeout_ms: 2000\n  sharded: true\n", NULL,
                    yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    produce_range(&sc, 0, N);
    CU_ASSERT_EQUAL(h_sub_wait(ssub, N, h_deadline(60000)), N);
    assert_exact(&sc, ssub, 0, N);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_sub_destroy(ssub);
    h_scene_close(&sc);
}

int test_topology_register(void) {
    CU_pSuite s = CU_add_suite("topology", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "slow Redis: the loop turns, SIGTERM within the drain timeout",
                     test_slow_redis) ||
        !CU_add_test(s, "idle check: a killed and a silent connection replaced", test_idle_check) ||
        !CU_add_test(s, "sharded Pub/Sub on one node: SPUBLISH to SSUBSCRIBE",
                     test_sharded_single_node))
        return CU_get_error();
    return 0;
}
