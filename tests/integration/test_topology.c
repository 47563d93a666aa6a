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
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "k2r/slots.h"

/* The numbered config (harness.h) with `redis_extra` and `sections`. */
static void topology_config(const h_scene_t *sc, int port, const char *redis_extra,
                            const char *sections, char *yaml, size_t size) {
    h_config_opts_t opts = {NULL, NULL, NULL, redis_extra, sections};

    h_config_numbered(sc, port, &opts, yaml, size);
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
    h_produce_numbered(&sc, 0, N);
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
    h_assert_numbered(&sc, sc.sub, 0, N);

    /* A publish under way when SIGTERM comes: the commands reached Redis at
     * once (the subscriber has them), their replies are 5 s away, and the
     * drain gives up after 1 s. */
    h_produce_numbered(&sc, N, 2 * N);
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
    h_produce_numbered(&sc, 0, 10);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 10, h_deadline(30000)), 10);
    h_assert_numbered(&sc, sc.sub, 0, 10);
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
    h_produce_numbered(&sc, 0, N);
    CU_ASSERT_EQUAL(h_sub_wait(ssub, N, h_deadline(60000)), N);
    h_assert_numbered(&sc, ssub, 0, N);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_sub_destroy(ssub);
    h_scene_close(&sc);
}

/*
 * A Redis connection cut partway through the replies, every time (after 50
 * replies): replies read before a cut are final (never sent again), each
 * cut halves the commands in flight, so the bridge gets through; every
 * record arrives, and no notification is sent more than about
 * log2(pipeline_depth) + 1 times.
 */
static void test_cut_mid_pipeline(void) {
    enum { N = 500 };
    char yaml[4096];
    unsigned char *seen = calloc(N, 1);
    h_proxy_t proxy = {0, 0, 0};
    size_t most = 0, unique = 0;
    h_scene_t sc;

    CU_ASSERT_FATAL(seen != NULL);
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "cuts", 1, NULL, 0), 0);
    /* ":1\r\n" is 4 bytes: 50 replies, after the handshake's +PONG. */
    CU_ASSERT_EQUAL_FATAL(h_cut_proxy_start(&proxy, h_redis_port(), 7, 200), 0);
    topology_config(&sc, proxy.port, "  command_timeout_ms: 2000\n  pipeline_depth: 512\n", NULL,
                    yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "assigned", h_deadline(60000)));
    h_produce_numbered(&sc, 0, N);
    {
        int64_t deadline = h_deadline(120000);
        size_t next = 0;

        while (unique < N && h_now_ms() < deadline) {
            h_sub_wait(sc.sub, (size_t)-1, h_now_ms() + 200);
            for (; next < h_sub_count(sc.sub); next++) {
                int k = atoi(h_sub_note(sc.sub, next)->message);
                if (k >= 0 && k < N && seen[k]++ == 0)
                    unique++;
            }
        }
    }
    for (int k = 0; k < N; k++)
        most = seen[k] > most ? seen[k] : most;
    fprintf(stderr,
            "[cut after 50 replies, every connection: %zu of %d delivered, at most %zu "
            "copies of one, %zu notifications in all] ",
            unique, N, most, h_sub_count(sc.sub));
    CU_ASSERT_EQUAL(unique, (size_t)N);
    CU_ASSERT(most <= 11);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_proxy_stop(&proxy);
    free(seen);
    h_scene_close(&sc);
}

/* ------------------------------------------------------------ sentinel */

/* The stack's list variable `name` ("a,b,c") into out[]; how many. */
static size_t env_list(const char *name, char out[][64], size_t max) {
    const char *v = getenv(name);
    size_t n = 0;

    while (v && *v && n < max) {
        size_t len = strcspn(v, ",");
        snprintf(out[n++], sizeof(out[0]), "%.*s", (int)len, v);
        v += len + (v[len] == ',');
    }
    if (!n)
        fprintf(stderr, "%s is not set: run through scripts/with-stack.sh\n", name);
    return n;
}

static int port_of(const char *addr) {
    const char *colon = strrchr(addr, ':');
    return colon ? atoi(colon + 1) : 0;
}

/* The port of the master the sentinel at `sentinel` names; 0 when none. */
static int sentinel_master_port(int sentinel, const char *master) {
    char cmd[256], *out = NULL, *nl;
    int port = 0;

    snprintf(cmd, sizeof(cmd), "redis-cli -p %d SENTINEL get-master-addr-by-name %s", sentinel,
             master);
    if (h_run(cmd, NULL, &out, 0) == 0 && out && (nl = strchr(out, '\n')) != NULL)
        port = atoi(nl + 1);
    free(out);
    return port;
}

/* Reads both subscribers for up to `ms`. */
static void pump(h_sub_t *a, h_sub_t *b, int ms) {
    h_sub_wait(a, (size_t)-1, h_now_ms() + ms / 2);
    h_sub_wait(b, (size_t)-1, h_now_ms() + ms / 2);
}

/* Distinct messages (record numbers below n) in sub, and its repeats. */
static size_t distinct(const h_sub_t *sub, unsigned char *seen, int n, size_t *repeats) {
    size_t unique = 0;

    *repeats = 0;
    memset(seen, 0, (size_t)n);
    for (size_t i = 0; i < h_sub_count(sub); i++) {
        int k = atoi(h_sub_note(sub, i)->message);
        if (k < 0 || k >= n)
            continue;
        if (seen[k]++)
            (*repeats)++;
        else
            unique++;
    }
    return unique;
}

/*
 * Asks for a failover and produces a record every turn until the sentinels
 * name another master; returns the new master's port (0: none in time).
 */
static int failover_under_load(h_scene_t *sc, int sentinel, const char *master, int *next,
                               h_sub_t *a, h_sub_t *b) {
    int64_t deadline = h_deadline(90000);
    int before = sentinel_master_port(sentinel, master), now = before, asked = 0;
    char cmd[256], *out = NULL;

    snprintf(cmd, sizeof(cmd), "redis-cli -p %d SENTINEL FAILOVER %s", sentinel, master);
    while (now == before && h_now_ms() < deadline) {
        /* Refused while the replica is not ready (-NOGOODSLAVE) or another
         * failover runs (-INPROG): asked again until it takes. */
        if (!asked) {
            asked = h_run(cmd, NULL, &out, 1) == 0 && out && strncmp(out, "OK", 2) == 0;
            free(out);
            out = NULL;
        }
        h_produce_numbered(sc, *next, *next + 5);
        *next += 5;
        pump(a, b, 100);
        now = sentinel_master_port(sentinel, master);
    }
    return now != before ? now : 0;
}

/*
 * Sentinel: the bridge finds the master through the sentinels; two
 * SENTINEL FAILOVERs under a steady producer, and every record's
 * notification reaches a subscriber (0 lost); repeats stay within the
 * in-flight window; after each failover the bridge publishes to the new
 * master.
 */
static void test_sentinel_failover(void) {
    char sentinels[3][64], data[2][64], extra[1024], yaml[4096], line[160];
    const char *master = getenv("K2R_TEST_SENTINEL_MASTER");
    unsigned char *seen = calloc(4096, 1);
    size_t ns = env_list("K2R_TEST_SENTINEL_ADDRS", sentinels, 3),
           nd = env_list("K2R_TEST_SENTINEL_DATA_PORTS", data, 2), reps_a, reps_b, unique;
    h_sub_t *a, *b;
    h_scene_t sc;
    int next = 0, m0, m1, m2, s0;

    CU_ASSERT_FATAL(ns == 3 && nd == 2 && master && seen);
    s0 = port_of(sentinels[0]);
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "sentinel", 1, NULL, 0), 0);
    snprintf(line, sizeof(line), "%s:*", sc.prefix);
    a = h_sub_new_resilient(atoi(data[0]), line);
    b = h_sub_new_resilient(atoi(data[1]), line);
    CU_ASSERT_FATAL(a && b);
    snprintf(extra, sizeof(extra),
             "  command_timeout_ms: 2000\n"
             "  sentinel:\n"
             "    master: %s\n"
             "    addresses: [\"%s\", \"%s\", \"%s\"]\n",
             master, sentinels[0], sentinels[1], sentinels[2]);
    topology_config(&sc, h_redis_port(), extra, "limits:\n  max_inflight_records: 200\n", yaml,
                    sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    m0 = sentinel_master_port(s0, master);
    snprintf(line, sizeof(line), "redis: connected to 127.0.0.1:%d, master %s", m0, master);
    CU_ASSERT(h_bridge_wait_log(&sc.b, line, h_deadline(60000)));

    h_produce_numbered(&sc, 0, 100);
    next = 100;
    m1 = failover_under_load(&sc, s0, master, &next, a, b);
    CU_ASSERT(m1 != 0 && m1 != m0);
    h_produce_numbered(&sc, next, next + 100);
    next += 100;
    snprintf(line, sizeof(line), "redis: connected to 127.0.0.1:%d again", m1);
    CU_ASSERT(h_bridge_wait_log(&sc.b, line, h_deadline(60000)));
    m2 = failover_under_load(&sc, s0, master, &next, a, b);
    CU_ASSERT(m2 == m0);
    h_produce_numbered(&sc, next, next + 100);
    next += 100;
    snprintf(line, sizeof(line), "redis: connected to 127.0.0.1:%d again", m2);
    CU_ASSERT(h_bridge_wait_log(&sc.b, line, h_deadline(60000)));

    /* Every record reaches a subscriber: the union of both is complete. */
    {
        int64_t deadline = h_deadline(60000);
        unsigned char *all = calloc((size_t)next, 1);
        size_t have = 0;

        while (all && h_now_ms() < deadline) {
            pump(a, b, 200);
            have = 0;
            memset(all, 0, (size_t)next);
            for (size_t i = 0; i < h_sub_count(a); i++)
                all[atoi(h_sub_note(a, i)->message) % next] = 1;
            for (size_t i = 0; i < h_sub_count(b); i++)
                all[atoi(h_sub_note(b, i)->message) % next] = 1;
            for (int k = 0; k < next; k++)
                have += all[k];
            if (have == (size_t)next)
                break;
        }
        free(all);
        unique = have;
    }
    /* As many as were produced: a slow failover under the steady producer
     * makes more than the first guess (12,375 once, which overran it). */
    free(seen);
    seen = calloc((size_t)next, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
    distinct(a, seen, next, &reps_a);
    distinct(b, seen, next, &reps_b);
    fprintf(stderr,
            "[sentinel: %d records, 2 failovers (%d -> %d -> %d): %zu delivered, %zu lost, "
            "repeats %zu/%zu, subscriber reconnects %u/%u] ",
            next, m0, m1, m2, unique, (size_t)next - unique, reps_a, reps_b, h_sub_reconnects(a),
            h_sub_reconnects(b));
    CU_ASSERT_EQUAL(unique, (size_t)next);
    CU_ASSERT(reps_a <= 200 && reps_b <= 200);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_sub_destroy(a);
    h_sub_destroy(b);
    free(seen);
    h_scene_close(&sc);
}

/* ------------------------------------------------------------- cluster */

typedef struct owner_s {
    int port;
    char id[48];
    int first[8], last[8];
    int nranges;
} owner_t;

/* The cluster's primaries as `CLUSTER NODES` on `port` lists them. */
static size_t cluster_primaries(int port, owner_t *out, size_t max) {
    char cmd[128], *text = NULL, *save = NULL;
    size_t n = 0;

    snprintf(cmd, sizeof(cmd), "redis-cli -p %d CLUSTER NODES", port);
    if (h_run(cmd, NULL, &text, 0) != 0 || !text) {
        free(text);
        return 0;
    }
    for (char *l = strtok_r(text, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save)) {
        char id[48], addr[96], flags[96];
        int off = 0;
        owner_t *o = &out[n];

        if (sscanf(l, "%47s %95s %95s %*s %*s %*s %*s %*s%n", id, addr, flags, &off) < 3 ||
            !strstr(flags, "master") || strstr(flags, "fail"))
            continue;
        memset(o, 0, sizeof(*o));
        snprintf(o->id, sizeof(o->id), "%s", id);
        o->port = atoi(strrchr(addr, ':') + 1);
        for (char *r = l + off; *r && o->nranges < 8;) {
            int a, b, used = 0;
            if (sscanf(r, " %d-%d%n", &a, &b, &used) == 2) {
                o->first[o->nranges] = a;
                o->last[o->nranges++] = b;
            } else if (sscanf(r, " %d%n", &a, &used) == 1 && r[used] != '-') {
                o->first[o->nranges] = a;
                o->last[o->nranges++] = a;
            } else {
                break;
            }
            r += used;
        }
        n++;
    }
    free(text);
    return n;
}

/* The primary (index into owners) that owns `channel`'s slot; -1: none. */
static int owner_of(const owner_t *owners, size_t n, const char *channel) {
    unsigned slot = k2r_slot_of(channel, strlen(channel));

    for (size_t i = 0; i < n; i++)
        for (int r = 0; r < owners[i].nranges; r++)
            if ((int)slot >= owners[i].first[r] && (int)slot <= owners[i].last[r])
                return (int)i;
    return -1;
}

/* Channel c's rule: {"c":c,"n":n} to PREFIX:c, ending with `rule_tail`
 * (its message, its history); Redis is the cluster of the `nseeds` seeds,
 * sharded or not; `sections` are added at the top level; `group` is the
 * consumer group. */
static void cluster_config_with(const h_scene_t *sc, char seeds[][64], size_t nseeds, int sharded,
                                const char *rule_tail, const char *sections, const char *group,
                                char *yaml, size_t size) {
    char rules[512], more[256], extra[512];
    size_t n = (size_t)snprintf(extra, sizeof(extra),
                                "  command_timeout_ms: 2000\n"
                                "  sharded: %s\n"
                                "  cluster:\n"
                                "    addresses: [",
                                sharded ? "true" : "false");
    h_config_opts_t opts = {NULL, NULL, NULL, extra, NULL};

    for (size_t i = 0; i < nseeds && n < sizeof(extra); i++)
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%s\"%s\"", i ? ", " : "", seeds[i]);
    if (n < sizeof(extra))
        snprintf(extra + n, sizeof(extra) - n, "]\n");

    if (sc->http_port)
        snprintf(more, sizeof(more), "%shttp:\n  listen: 127.0.0.1:%d\n", sections, sc->http_port);
    else
        snprintf(more, sizeof(more), "%s", sections);
    opts.sections = more;

    snprintf(rules, sizeof(rules),
             "  - name: shard\n"
             "    topic: %s\n"
             "    vars:\n"
             "      c: {path: c}\n"
             "      n: {path: n}\n"
             "    channel: \"%s:{c}\"\n"
             "%s",
             sc->topic, sc->prefix, rule_tail);
    h_config_opts(yaml, size, group, sc->topic, h_redis_port(), &opts, rules);
}

/* Channel c's rule: {"c":c,"n":n} to PREFIX:c with message n; Redis is
 * the cluster of the `nseeds` seeds, sharded. */
static void cluster_config(const h_scene_t *sc, char seeds[][64], size_t nseeds, char *yaml,
                           size_t size) {
    cluster_config_with(sc, seeds, nseeds, 1, "    message: \"{n}\"\n", "", sc->group, yaml, size);
}

static void produce_cn(h_scene_t *sc, int c, int n) {
    char value[64];

    snprintf(value, sizeof(value), "{\"c\":%d,\"n\":%d}", c, n);
    CU_ASSERT_EQUAL(h_produce(sc->p, sc->topic, 0, NULL, value, strlen(value)), 0);
}

/* In `sub`, the messages of channel PREFIX:c are exactly from..to-1, in order. */
static int channel_in_order(const h_scene_t *sc, const h_sub_t *sub, int c, int from, int to) {
    char channel[160];
    int want = from;

    snprintf(channel, sizeof(channel), "%s:%d", sc->prefix, c);
    for (size_t i = 0; i < h_sub_count(sub); i++) {
        const h_note_t *note = h_sub_note(sub, i);
        if (strcmp(note->channel, channel) != 0)
            continue;
        if (atoi(note->message) != want)
            return 0;
        want++;
    }
    return want == to;
}

/*
 * Cluster with redis.sharded: each notification goes by SPUBLISH to the
 * primary that owns its channel's slot: a subscriber per primary
 * (SSUBSCRIBE to the channels it owns) gets exactly its channels'
 * notifications, each channel in order, and every primary gets some.
 */
static void test_cluster_sharded(void) {
    enum { C = 12, M = 25 };
    char seeds[3][64], yaml[4096], names[C][160];
    owner_t owners[8];
    h_sub_t *subs[8] = {NULL};
    size_t nseeds = env_list("K2R_TEST_CLUSTER_ADDRS", seeds, 3), nown, per[8] = {0};
    h_scene_t sc;

    CU_ASSERT_FATAL(nseeds == 3);
    nown = cluster_primaries(port_of(seeds[0]), owners, 8);
    CU_ASSERT_EQUAL_FATAL(nown, 3);
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "cluster", 1, NULL, H_SCENE_HTTP), 0);
    for (size_t o = 0; o < nown; o++) {
        const char *mine[C];
        size_t n = 0;

        for (int c = 0; c < C; c++) {
            snprintf(names[c], sizeof(names[c]), "%s:%d", sc.prefix, c);
            if (owner_of(owners, nown, names[c]) == (int)o)
                mine[n++] = names[c];
        }
        per[o] = n;
        CU_ASSERT(n > 0); /* 12 channels over 3 shards: each has some */
        if (n)
            subs[o] = h_ssub_new(owners[o].port, mine, n);
    }
    cluster_config(&sc, seeds, 3, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    for (int n = 0; n < M; n++)
        for (int c = 0; c < C; c++)
            produce_cn(&sc, c, n);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    for (size_t o = 0; o < nown; o++) {
        if (!subs[o])
            continue;
        CU_ASSERT_EQUAL(h_sub_wait(subs[o], per[o] * M, h_deadline(60000)), per[o] * M);
    }
    for (size_t o = 0; o < nown; o++)
        if (subs[o])
            h_assert_quiet(subs[o]);
    for (int c = 0; c < C; c++) {
        int o = owner_of(owners, nown, names[c]);
        CU_ASSERT(o >= 0 && subs[o] && channel_in_order(&sc, subs[o], c, 0, M));
    }
    CU_ASSERT(h_bridge_log_has(&sc.b, "redis: connected to cluster of 3 primaries"));
    /* One series per primary, each up and connected once. */
    {
        h_http_t r;

        h_http_request(sc.http_port, "GET", "/metrics", &r);
        CU_ASSERT_EQUAL(r.status, 200);
        for (size_t o = 0; o < nown && r.body; o++) {
            char series[160];

            snprintf(series, sizeof(series), "k2r_redis_shard_up{shard=\"127.0.0.1:%d\"} 1\n",
                     owners[o].port);
            CU_ASSERT_PTR_NOT_NULL(strstr(r.body, series));
            snprintf(series, sizeof(series),
                     "k2r_redis_shard_connects_total{shard=\"127.0.0.1:%d\"} 1\n", owners[o].port);
            CU_ASSERT_PTR_NOT_NULL(strstr(r.body, series));
        }
        h_http_free(&r);
    }
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    for (size_t o = 0; o < nown; o++)
        h_sub_destroy(subs[o]);
    h_scene_close(&sc);
}

/* Polls group `group`'s committed offset of partition 0 until it is `want`. */
static int wait_committed(const char *group, const char *topic, int64_t want) {
    int64_t deadline = h_deadline(60000), off = -1;

    while (h_now_ms() < deadline) {
        if (h_committed(group, topic, 1, &off) == 0 && off == want)
            return 1;
        poll(NULL, 0, 100); /* the next question to the coordinator */
    }
    return 0;
}

/*
 * A rule with history and dedupe on a Cluster, sharded and not: each live
 * message carries its entry's id and the channel's stream (named to share the
 * channel's slot: history:{channel}) on the primary that owns the channel
 * holds the same sequence; a second bridge (another group) over the same
 * records publishes nothing, because every record's mark is found in the
 * channel's slot.
 */
static void cluster_history_dedupe(int sharded) {
    enum { C = 6, M = 10 };
    char seeds[3][64], yaml[4096], names[C][160], group2[128];
    owner_t owners[8];
    h_sub_t *sub = NULL;
    size_t nseeds = env_list("K2R_TEST_CLUSTER_ADDRS", seeds, 3), nown;
    const char *tail = "    notification: [n]\n    history: {maxlen: 1000}\n";
    const char *dedupe = "dedupe: {enabled: true}\n";
    h_scene_t sc;

    CU_ASSERT_FATAL(nseeds == 3);
    nown = cluster_primaries(port_of(seeds[0]), owners, 8);
    CU_ASSERT_EQUAL_FATAL(nown, 3);
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, sharded ? "chist-s" : "chist", 1, NULL, 0), 0);
    for (int c = 0; c < C; c++)
        snprintf(names[c], sizeof(names[c]), "%s:%d", sc.prefix, c);
    if (!sharded) { /* PUBLISH reaches every node's subscribers: one on any node */
        char pattern[200];

        snprintf(pattern, sizeof(pattern), "%s:*", sc.prefix);
        sub = h_sub_new(port_of(seeds[0]), pattern);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    }
    {
        h_sub_t *subs[8] = {NULL};
        size_t per[8] = {0};

        if (sharded)
            for (size_t o = 0; o < nown; o++) {
                const char *mine[C];
                size_t n = 0;

                for (int c = 0; c < C; c++)
                    if (owner_of(owners, nown, names[c]) == (int)o)
                        mine[n++] = names[c];
                per[o] = n;
                if (n)
                    subs[o] = h_ssub_new(owners[o].port, mine, n);
            }
        cluster_config_with(&sc, seeds, 3, sharded, tail, dedupe, sc.group, yaml, sizeof(yaml));
        CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
        for (int n = 0; n < M; n++)
            for (int c = 0; c < C; c++)
                produce_cn(&sc, c, n);
        CU_ASSERT_EQUAL(h_flush(sc.p), 0);
        if (sharded) {
            for (size_t o = 0; o < nown; o++)
                if (subs[o])
                    CU_ASSERT_EQUAL(h_sub_wait(subs[o], per[o] * M, h_deadline(60000)), per[o] * M);
        } else {
            CU_ASSERT_EQUAL(h_sub_wait(sub, C * M, h_deadline(60000)), C * M);
        }
        CU_ASSERT(wait_committed(sc.group, sc.topic, C * M));

        /* The second publisher of the same records: nothing reaches anyone. */
        snprintf(group2, sizeof(group2), "%s-second", sc.group);
        cluster_config_with(&sc, seeds, 3, sharded, tail, dedupe, group2, yaml, sizeof(yaml));
        CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b2, yaml), 0);
        CU_ASSERT(wait_committed(group2, sc.topic, C * M));
        for (size_t o = 0; o < nown; o++)
            if (subs[o]) {
                h_assert_quiet(subs[o]);
                CU_ASSERT_EQUAL(h_sub_count(subs[o]), per[o] * M);
            }
        if (sub) {
            h_assert_quiet(sub);
            CU_ASSERT_EQUAL(h_sub_count(sub), C * M);
        }

        /* Each channel's live messages, in order, name its stream's entries. */
        for (int c = 0; c < C; c++) {
            int o = owner_of(owners, nown, names[c]);
            h_sub_t *from = sharded ? (o >= 0 ? subs[o] : NULL) : sub;
            char cmd[512], *out = NULL, *save = NULL, *line;
            int want = 0;

            CU_ASSERT_FATAL(o >= 0 && from);
            snprintf(cmd, sizeof(cmd), "redis-cli --raw -p %d XRANGE 'history:{%s}' - +",
                     owners[o].port, names[c]);
            CU_ASSERT_EQUAL(h_run(cmd, NULL, &out, 0), 0);
            line = out ? strtok_r(out, "\n", &save) : NULL;
            for (size_t i = 0; i < h_sub_count(from); i++) {
                const h_note_t *note = h_sub_note(from, i);
                char live[256];

                if (strcmp(note->channel, names[c]) != 0)
                    continue;
                CU_ASSERT_PTR_NOT_NULL_FATAL(line);
                snprintf(live, sizeof(live), "{\"history_id\":\"%s\",\"n\":%d}", line, want);
                CU_ASSERT_STRING_EQUAL(note->message, live);
                line = strtok_r(NULL, "\n", &save); /* "n" */
                CU_ASSERT(line && strcmp(line, "n") == 0);
                line = strtok_r(NULL, "\n", &save); /* the plain notification */
                snprintf(live, sizeof(live), "{\"n\":%d}", want);
                CU_ASSERT(line && strcmp(line, live) == 0);
                line = strtok_r(NULL, "\n", &save);
                want++;
            }
            CU_ASSERT_EQUAL(want, M);
            CU_ASSERT_PTR_NULL(line);
            free(out);
        }
        for (size_t o = 0; o < nown; o++)
            h_sub_destroy(subs[o]);
    }
    h_sub_destroy(sub);
    h_scene_close(&sc);
}

static void test_cluster_history_dedupe_sharded(void) {
    cluster_history_dedupe(1);
}

static void test_cluster_history_dedupe(void) {
    cluster_history_dedupe(0);
}

/* Reads `sub` until its last message is `last` (or the deadline); checks it
 * has at least `at_least`, each one more than the one before. Returns 1 when
 * `last` came. */
static int tail_in_order(h_sub_t *sub, int last, size_t at_least) {
    int64_t deadline = h_deadline(60000);
    size_t n;

    while (h_now_ms() < deadline &&
           !(h_sub_count(sub) && atoi(h_sub_note(sub, h_sub_count(sub) - 1)->message) == last))
        h_sub_wait(sub, (size_t)-1, h_now_ms() + 200);
    n = h_sub_count(sub);
    CU_ASSERT(n >= at_least);
    for (size_t i = 1; i < n; i++)
        CU_ASSERT_EQUAL(atoi(h_sub_note(sub, i)->message),
                        atoi(h_sub_note(sub, i - 1)->message) + 1);
    return n && atoi(h_sub_note(sub, n - 1)->message) == last;
}

/* CLUSTER SETSLOT on every primary of the list; 0 when all answered OK. */
static int setslot_all(const owner_t *owners, size_t n, unsigned slot, const char *how) {
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "CLUSTER SETSLOT %u %s", slot, how);
        rc |= h_redis_cli_port(owners[i].port, cmd, "OK");
    }
    return rc;
}

/*
 * A slot migrated while publishing: channel X's slot goes from its primary A
 * to B (IMPORTING on B, MIGRATING on A, then NODE B everywhere) with records
 * of X produced before, during and after. The bridge follows -MOVED (and
 * -ASK, if the migrating node answers so): every record gets its integer
 * reply (published = produced, no refusal), the ones before the move reach
 * A's subscriber and the ones after reach B's, in order. The slot goes back
 * at the end.
 */
static void test_cluster_migration(void) {
    enum { M = 60 };
    char seeds[3][64], yaml[4096], channel[160], line[96];
    const char *ch[1] = {channel};
    owner_t owners[8];
    size_t nown;
    h_sub_t *sa, *sb;
    h_scene_t sc;
    unsigned slot;
    int a, bi, n = 0;
    char how[128];

    CU_ASSERT_FATAL(env_list("K2R_TEST_CLUSTER_ADDRS", seeds, 3) == 3);
    nown = cluster_primaries(port_of(seeds[0]), owners, 8);
    CU_ASSERT_EQUAL_FATAL(nown, 3);
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "migrate", 1, NULL, 0), 0);
    snprintf(channel, sizeof(channel), "%s:0", sc.prefix);
    slot = k2r_slot_of(channel, strlen(channel));
    a = owner_of(owners, nown, channel);
    CU_ASSERT_FATAL(a >= 0);
    bi = (a + 1) % (int)nown;
    sa = h_ssub_new(owners[a].port, ch, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sa);
    cluster_config(&sc, seeds, 1, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    for (; n < M; n++)
        produce_cn(&sc, 0, n);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT_EQUAL(h_sub_wait(sa, M, h_deadline(60000)), M);

    /* The migration, with records in between. */
    {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "CLUSTER SETSLOT %u IMPORTING %s", slot, owners[a].id);
        CU_ASSERT_EQUAL(h_redis_cli_port(owners[bi].port, cmd, "OK"), 0);
        snprintf(cmd, sizeof(cmd), "CLUSTER SETSLOT %u MIGRATING %s", slot, owners[bi].id);
        CU_ASSERT_EQUAL(h_redis_cli_port(owners[a].port, cmd, "OK"), 0);
    }
    for (; n < 2 * M; n++)
        produce_cn(&sc, 0, n);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    snprintf(how, sizeof(how), "NODE %s", owners[bi].id);
    CU_ASSERT_EQUAL(setslot_all(owners, nown, slot, how), 0);
    sb = h_ssub_new(owners[bi].port, ch, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sb);
    for (; n < 3 * M; n++)
        produce_cn(&sc, 0, n);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    /* Those after the move reach B, in order (B may also have some of the
     * middle ones, published after the move and before B's subscriber). */
    CU_ASSERT(tail_in_order(sb, 3 * M - 1, M));
    /* A's subscriber: 0, 1, 2, ... with no gap or repeat, at least the first M. */
    CU_ASSERT(h_sub_count(sa) >= (size_t)M);
    CU_ASSERT(channel_in_order(&sc, sa, 0, 0, (int)h_sub_count(sa)));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    snprintf(line, sizeof(line), "published=%d ", 3 * M);
    CU_ASSERT(h_bridge_log_has(&sc.b, line));
    CU_ASSERT(h_bridge_log_has(&sc.b, "publish_errors=0 "));
    CU_ASSERT(h_bridge_log_has(&sc.b, "redirected (-MOVED/-ASK)"));
    fprintf(stderr,
            "[migration: %d records of one channel; %zu reached the old owner's "
            "subscriber, %zu the new one's] ",
            3 * M, h_sub_count(sa), h_sub_count(sb));
    /* The slot goes home. */
    snprintf(how, sizeof(how), "NODE %s", owners[a].id);
    CU_ASSERT_EQUAL(setslot_all(owners, nown, slot, how), 0);
    h_sub_destroy(sa);
    h_sub_destroy(sb);
    h_scene_close(&sc);
}

/* The port of a replica of primary `id` (from CLUSTER NODES on `port`); 0: none. */
static int replica_of(int port, const char *id) {
    char cmd[128], *text = NULL, *save = NULL;
    int found = 0;

    snprintf(cmd, sizeof(cmd), "redis-cli -p %d CLUSTER NODES", port);
    if (h_run(cmd, NULL, &text, 0) != 0 || !text) {
        free(text);
        return 0;
    }
    for (char *l = strtok_r(text, "\n", &save); l && !found; l = strtok_r(NULL, "\n", &save)) {
        char rid[48], addr[96], flags[96], master[48];

        if (sscanf(l, "%47s %95s %95s %47s", rid, addr, flags, master) == 4 &&
            strstr(flags, "slave") && !strstr(flags, "fail") && strcmp(master, id) == 0)
            found = atoi(strrchr(addr, ':') + 1);
    }
    free(text);
    return found;
}

/* 1 when `redis-cli -p PORT ARGS` prints `text` (at the start, when `first`). */
static int cli_prints(int port, const char *args, const char *text, int first) {
    char cmd[128], *out = NULL;
    int yes;

    snprintf(cmd, sizeof(cmd), "redis-cli -p %d %s", port, args);
    yes = h_run(cmd, NULL, &out, 0) == 0 && out &&
          (first ? strncmp(out, text, strlen(text)) == 0 : strstr(out, text) != NULL);
    free(out);
    return yes;
}

/* 1 when the node on `port` says it is a primary. */
static int is_primary(int port) {
    return cli_prints(port, "ROLE", "master", 1);
}

/* 1 when the replica on `port` is in sync with its primary. */
static int replica_synced(int port) {
    return cli_prints(port, "INFO replication", "master_link_status:up", 0);
}

/*
 * CLUSTER FAILOVER on `replica` once it is in sync, asked again when a
 * manual failover times out (5 s), until it is a primary; 1 when it is. With
 * a scene, a record of channel 0 is produced every turn (number *next on)
 * and `sub` read meanwhile: a steady producer.
 */
static int take_over(int replica, h_scene_t *sc, int *next, h_sub_t *sub) {
    int64_t deadline = h_deadline(60000), asked = 0;

    while (h_now_ms() < deadline) {
        if (is_primary(replica))
            return 1;
        if (replica_synced(replica) && h_now_ms() - asked > 6000) {
            if (h_redis_cli_port(replica, "CLUSTER FAILOVER", "OK") != 0)
                return 0;
            asked = h_now_ms();
        }
        if (sc) {
            produce_cn(sc, 0, (*next)++);
            CU_ASSERT_EQUAL(h_flush(sc->p), 0);
            h_sub_wait(sub, (size_t)-1, h_now_ms() + 100);
        } else {
            poll(NULL, 0, 50); /* the cluster bus agrees on its own time: nothing to wait on */
        }
    }
    return 0;
}

/*
 * A primary failover inside the cluster (CLUSTER FAILOVER on its replica)
 * under a steady producer: the old primary answers -MOVED, the bridge
 * follows to the new one; every record gets its reply (published =
 * produced) and those after the failover reach the new primary's
 * subscriber in order. The roles are swapped back at the end.
 */
static void test_cluster_failover(void) {
    enum { M = 40 };
    char seeds[3][64], yaml[4096], channel[160], line[96];
    const char *ch[1] = {channel};
    owner_t owners[8];
    size_t nown;
    h_sub_t *sa, *sb;
    h_scene_t sc;
    int a, replica, n = 0, after;

    CU_ASSERT_FATAL(env_list("K2R_TEST_CLUSTER_ADDRS", seeds, 3) == 3);
    nown = cluster_primaries(port_of(seeds[0]), owners, 8);
    CU_ASSERT_EQUAL_FATAL(nown, 3);
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "cfailover", 1, NULL, 0), 0);
    snprintf(channel, sizeof(channel), "%s:0", sc.prefix);
    a = owner_of(owners, nown, channel);
    CU_ASSERT_FATAL(a >= 0);
    replica = replica_of(port_of(seeds[0]), owners[a].id);
    CU_ASSERT_FATAL(replica > 0);
    sa = h_ssub_new(owners[a].port, ch, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sa);
    cluster_config(&sc, seeds, 3, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    for (; n < M; n++)
        produce_cn(&sc, 0, n);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT_EQUAL(h_sub_wait(sa, M, h_deadline(60000)), M);
    CU_ASSERT_FATAL(take_over(replica, &sc, &n, sa));
    sb = h_ssub_new(replica, ch, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sb);
    after = n;
    for (; n < after + M; n++)
        produce_cn(&sc, 0, n);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    (void)tail_in_order(sb, n - 1, M);
    CU_ASSERT(channel_in_order(&sc, sa, 0, 0, (int)h_sub_count(sa)));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    snprintf(line, sizeof(line), "published=%d ", n);
    CU_ASSERT(h_bridge_log_has(&sc.b, line));
    CU_ASSERT(h_bridge_log_has(&sc.b, "publish_errors=0 "));
    fprintf(stderr, "[cluster failover: %d records; old primary's subscriber %zu, new one's %zu] ",
            n, h_sub_count(sa), h_sub_count(sb));
    /* The old primary takes its role back. */
    CU_ASSERT(take_over(owners[a].port, NULL, NULL, NULL));
    h_sub_destroy(sa);
    h_sub_destroy(sb);
    h_scene_close(&sc);
}

int test_topology_register(void) {
    CU_pSuite s = CU_add_suite("topology", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "slow Redis: the loop turns, SIGTERM within the drain timeout",
                     test_slow_redis) ||
        !CU_add_test(s, "idle check: a killed and a silent connection replaced", test_idle_check) ||
        !CU_add_test(s, "a connection cut mid-pipeline, every time: progress, bounded repeats",
                     test_cut_mid_pipeline) ||
        !CU_add_test(s, "sharded Pub/Sub on one node: SPUBLISH to SSUBSCRIBE",
                     test_sharded_single_node) ||
        !CU_add_test(s, "Sentinel: two failovers under a steady producer, 0 lost",
                     test_sentinel_failover) ||
        !CU_add_test(s, "Cluster, sharded: each channel to its shard, in order",
                     test_cluster_sharded) ||
        !CU_add_test(s, "Cluster: a slot migrated while publishing", test_cluster_migration) ||
        !CU_add_test(s, "Cluster, sharded: history and dedupe in the channel's slot",
                     test_cluster_history_dedupe_sharded) ||
        !CU_add_test(s, "Cluster: history and dedupe in the channel's slot",
                     test_cluster_history_dedupe) ||
        !CU_add_test(s, "Cluster: a primary failover under a steady producer",
                     test_cluster_failover))
        return CU_get_error();
    return 0;
}
