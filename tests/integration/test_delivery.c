/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_delivery.c - the delivery promises of issue 5 that are about policy
 * rather than about breaking servers (those are test_faults.c): Redis
 * refusing some commands (an ACL), the age cutoff, on_unavailable: drop, the
 * drain on SIGTERM and its timeout, a graceful rebalance repeating nothing,
 * a fatal librdkafka error ending the process with status 3, and records
 * whose large headers pause fetching without losing any of them. All against
 * the real broker and redis-server the stack started.
 */
#include <CUnit/CUnit.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "harness.h"

/* Produces {"kind":kind,"n":n} with key n to partition n % partitions (-1: by key). */
static void produce_kind(h_scene_t *sc, const char *kind, int n, int by_key) {
    char value[128], key[32];

    snprintf(key, sizeof(key), "k%d", n);
    snprintf(value, sizeof(value), "{\"kind\":\"%s\",\"n\":%d}", kind, n);
    CU_ASSERT_EQUAL(
        h_produce(sc->p, sc->topic, by_key ? -1 : n % sc->partitions, key, value, strlen(value)),
        0);
}

/* The seeds-like rule used by most tests here: events:{kind}:{n}, message {n}. */
static void kind_rule(char *out, size_t size, const char *name, const char *topic,
                      const char *extra) {
    snprintf(out, size,
             "  - name: %s\n"
             "    topic: %s\n"
             "    type: kind\n"
             "    id: n\n"
             "    message: \"{id}\"\n"
             "%s",
             name, topic, extra ? extra : "");
}

/* The config of a scene whose one rule is kind_rule(`rule`). */
static void kind_config(const h_scene_t *sc, const char *rule, int redis_port,
                        const h_config_opts_t *opts, char *yaml, size_t size) {
    char rules[512];

    kind_rule(rules, sizeof(rules), rule, sc->topic, NULL);
    h_config_opts(yaml, size, sc->group, sc->topic, redis_port, opts, rules);
}

/* How many notifications arrived for ids 0..n-1 on events:KIND:ID, and how
 * many more than once; unexpected ones (other ids or kinds) are counted too. */
typedef struct count_s {
    size_t unique, dups, unexpected;
} count_t;

static count_t count_ids(const h_sub_t *sub, const char *kind, int n) {
    unsigned char *seen = calloc((size_t)n, 1);
    char prefix[64];
    count_t c = {0, 0, 0};

    snprintf(prefix, sizeof(prefix), "events:%s:", kind);
    for (size_t i = 0; i < h_sub_count(sub); i++) {
        const h_note_t *note = h_sub_note(sub, i);
        char *end;
        long id;

        if (strncmp(note->channel, prefix, strlen(prefix)) != 0) {
            c.unexpected++;
            continue;
        }
        id = strtol(note->channel + strlen(prefix), &end, 10);
        if (*end || id < 0 || id >= n || strtol(note->message, NULL, 10) != id) {
            c.unexpected++;
            continue;
        }
        if (seen[id]++)
            c.dups++;
        else
            c.unique++;
    }
    free(seen);
    return c;
}

/* Waits until `count` distinct ids arrived or the deadline passed. */
static count_t wait_ids(h_sub_t *sub, const char *kind, int n, size_t count, int64_t deadline) {
    count_t c;

    for (;;) {
        c = count_ids(sub, kind, n);
        if (c.unique >= count || h_now_ms() >= deadline)
            return c;
        h_sub_wait(sub, h_sub_count(sub) + 1,
                   h_now_ms() + 200 < deadline ? h_now_ms() + 200 : deadline);
    }
}

/* Sum of the group's committed offsets over the topic's partitions (-1: error). */
static int64_t committed_sum(const h_scene_t *sc) {
    int64_t offs[16], sum = 0;

    if (h_committed(sc->group, sc->topic, sc->partitions, offs) != 0)
        return -1;
    for (int i = 0; i < sc->partitions; i++)
        sum += offs[i] > 0 ? offs[i] : 0;
    return sum;
}

/* Polls until the group committed `want` records in all, or the deadline. */
static int64_t wait_committed(const h_scene_t *sc, int64_t want, int64_t deadline) {
    int64_t sum;

    while ((sum = committed_sum(sc)) != want && h_now_ms() < deadline) {
        /* A short blocking wait on the subscriber paces the polling. */
        h_sub_wait(sc->sub, h_sub_count(sc->sub) + 1, h_now_ms() + 200);
    }
    return sum;
}

/* The value of `name=` in the bridge's last stats line, or -1. */
static long long stat_of(const h_bridge_t *b, const char *name) {
    char *log = NULL, key[64];
    const char *line, *p;
    long long v = -1;
    FILE *f = fopen(b->log, "r");
    size_t cap = 0;
    ssize_t len;

    if (!f)
        return -1;
    snprintf(key, sizeof(key), " %s=", name);
    while ((len = getline(&log, &cap, f)) >= 0) {
        line = strstr(log, "stats: ");
        if (line && (p = strstr(line, key)) != NULL)
            v = strtoll(p + strlen(key), NULL, 10);
    }
    free(log);
    fclose(f);
    return v;
}

/* ------------------------------------------------------------- tests */

/*
 * An ACL user allowed to publish only on events:user:*. Refused PUBLISHes
 * are not an outage: each record goes to its rule's on_error (dead-letter
 * for repos, skip for orgs), and the allowed ones, interleaved with them in
 * one partition, all arrive in order.
 */
static void test_acl_refusals(void) {
    enum { N = 30 };
    char user[64], acl[512], rules[2048], r1[512], r2[512], r3[512], yaml[4096], url_extra[256];
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, NULL};
    h_consumer_t *dl;
    count_t users;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "acl", 1, "events:*", H_SCENE_DLQ), 0);
    h_unique(user, sizeof(user), "bridge");
    snprintf(acl, sizeof(acl),
             "ACL SETUSER %s on '>pw-%s' resetchannels '&events:user:*' -@all +publish +ping", user,
             user);
    CU_ASSERT_EQUAL_FATAL(h_redis_cli(acl, "OK"), 0);

    kind_rule(r1, sizeof(r1), "users", sc.topic, "    when: {type: user}\n");
    kind_rule(r2, sizeof(r2), "repos", sc.topic,
              "    when: {type: repo}\n    on_error: dead-letter\n");
    kind_rule(r3, sizeof(r3), "orgs", sc.topic, "    when: {type: org}\n");
    snprintf(rules, sizeof(rules), "%s%s%s", r1, r2, r3);
    /* The URL carries the ACL user; redis_extra replaces the default line. */
    snprintf(url_extra, sizeof(url_extra), "  command_timeout_ms: 2000\n");
    opts.dlq = sc.dlq;
    opts.redis_extra = url_extra;
    h_config_opts(yaml, sizeof(yaml), sc.group, sc.topic, h_redis_port(), &opts, rules);
    {
        /* Put the user and password into the URL h_config_opts wrote. */
        char *u = strstr(yaml, "redis://"), rest[4096];
        CU_ASSERT_PTR_NOT_NULL_FATAL(u);
        snprintf(rest, sizeof(rest), "%s", u + strlen("redis://"));
        snprintf(u, sizeof(yaml) - (size_t)(u - yaml), "redis://%s:pw-%s@%s", user, user, rest);
    }
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);

    for (int i = 0; i < N; i++)
        produce_kind(&sc, i % 3 == 0 ? "user" : i % 3 == 1 ? "repo" : "org", i, 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);

    /* The allowed third, in production order. */
    users = wait_ids(sc.sub, "user", N, N / 3, h_deadline(60000));
    CU_ASSERT_EQUAL(users.unique, N / 3);
    CU_ASSERT_EQUAL(users.dups, 0);
    CU_ASSERT_EQUAL(users.unexpected, 0);
    for (size_t i = 0; i < h_sub_count(sc.sub) && i < N / 3; i++) {
        char want[64];
        snprintf(want, sizeof(want), "events:user:%zu", i * 3);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, i)->channel, want);
    }

    /* The refused repos, dead-lettered with the reason and Redis's words. */
    dl = h_consumer_new(sc.dlq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dl);
    CU_ASSERT_EQUAL(h_consumer_wait(dl, N / 3, h_deadline(60000)), N / 3);
    for (size_t i = 0; i < h_consumer_count(dl); i++) {
        const h_record_t *r = h_consumer_record(dl, i);
        char want[64];
        size_t len;
        const char *reason = h_record_header(r, "k2r.error.reason", &len);
        const char *detail = h_record_header(r, "k2r.error.detail", &len);
        const char *rule = h_record_header(r, "k2r.rule", &len);

        snprintf(want, sizeof(want), "{\"kind\":\"repo\",\"n\":%zu}", i * 3 + 1);
        CU_ASSERT_STRING_EQUAL(r->value, want);
        CU_ASSERT_STRING_EQUAL(reason ? reason : "", "redis_error");
        CU_ASSERT_STRING_EQUAL(rule ? rule : "", "repos");
        CU_ASSERT_PTR_NOT_NULL(detail ? strstr(detail, "NOPERM") : NULL);
    }
    h_consumer_destroy(dl);

    /* Everything was finished: all N committed, nothing held. */
    CU_ASSERT_EQUAL(wait_committed(&sc, N, h_deadline(30000)), N);
    CU_ASSERT(h_bridge_alive(&sc.b));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT_EQUAL(stat_of(&sc.b, "published"), N / 3);
    CU_ASSERT_EQUAL(stat_of(&sc.b, "publish_errors"), 2 * N / 3);
    CU_ASSERT_EQUAL(stat_of(&sc.b, "skipped"), N / 3);
    CU_ASSERT_EQUAL(stat_of(&sc.b, "dead_lettered"), N / 3);
    CU_ASSERT_EQUAL(stat_of(&sc.b, "redis_failures"), 0); /* not an outage */
    CU_ASSERT(h_bridge_log_has(&sc.b, "NOPERM"));

    snprintf(acl, sizeof(acl), "ACL DELUSER %s", user);
    CU_ASSERT_EQUAL(h_redis_cli(acl, "1"), 0);
    h_scene_close(&sc);
}

/* Produces {"kind":"age","n":n} with the given CreateTime (ms). */
static int produce_at(const char *topic, int n, int64_t ts) {
    char errstr[512], value[64];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    rd_kafka_resp_err_t err;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", h_brokers(), errstr, sizeof(errstr)))
        return -1;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        return -1;
    snprintf(value, sizeof(value), "{\"kind\":\"age\",\"n\":%d}", n);
    err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                            RD_KAFKA_V_VALUE(value, strlen(value)),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts),
                            RD_KAFKA_V_END);
    if (!err)
        err = rd_kafka_flush(rk, (int)(h_deadline(30000) - h_now_ms()));
    rd_kafka_destroy(rk);
    return err ? -1 : 0;
}

/*
 * max_age: a rule's own cutoff (1h) and the global limits.max_age (10m) for
 * a rule without one. Records 2 h old are stale for both, 30 min old only for
 * the global cutoff, fresh ones for neither. Stale notifications are counted,
 * not sent, and their offsets advance.
 */
static void test_max_age(void) {
    char rules[1024], yaml[4096];
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, "limits:\n  max_age: 10m\n"};
    struct timeval tv;
    int64_t now;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "age", 1, "age:*", H_SCENE_DLQ), 0);
    snprintf(rules, sizeof(rules),
             "  - name: hourly\n"
             "    topic: %s\n"
             "    id: n\n"
             "    channel: \"age:hourly:{id}\"\n"
             "    message: \"{id}\"\n"
             "    max_age: 1h\n"
             "    continue: true\n"
             "  - name: global\n"
             "    topic: %s\n"
             "    id: n\n"
             "    channel: \"age:global:{id}\"\n"
             "    message: \"{id}\"\n",
             sc.topic, sc.topic);
    h_config_opts(yaml, sizeof(yaml), sc.group, sc.topic, h_redis_port(), &opts, rules);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);

    gettimeofday(&tv, NULL);
    now = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    CU_ASSERT_EQUAL(produce_at(sc.topic, 0, now - 2 * 3600 * 1000), 0); /* stale for both */
    CU_ASSERT_EQUAL(produce_at(sc.topic, 1, now - 30 * 60 * 1000), 0);  /* stale for global */
    CU_ASSERT_EQUAL(produce_at(sc.topic, 2, now), 0);                   /* fresh */
    CU_ASSERT_EQUAL(produce_at(sc.topic, 3, now - 2 * 3600 * 1000), 0); /* stale for both */

    /* All four records done (committed), then exactly three notifications. */
    CU_ASSERT_EQUAL(wait_committed(&sc, 4, h_deadline(60000)), 4);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 3, h_deadline(10000)), 3);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT_EQUAL_FATAL(h_sub_count(sc.sub), 3);
    CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, 0)->channel, "age:hourly:1");
    CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, 1)->channel, "age:hourly:2");
    CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, 2)->channel, "age:global:2");
    CU_ASSERT_EQUAL(stat_of(&sc.b, "stale"), 5);
    CU_ASSERT_EQUAL(stat_of(&sc.b, "published"), 3);
    h_scene_close(&sc);
}

/*
 * on_unavailable: drop. While Redis is out of reach, records are consumed,
 * their notifications counted as dropped and their offsets committed; the
 * process stays up and says it is degraded. When Redis is back, only what
 * was produced after arrives: nothing stale floods in.
 */
static void test_unavailable_drop(void) {
    enum { BEFORE = 20, DURING = 30, AFTER = 20, N = BEFORE + DURING + AFTER };
    char yaml[4096];
    h_config_opts_t opts = {NULL, NULL, NULL,
                            "  command_timeout_ms: 2000\n  on_unavailable: drop\n", NULL};
    h_proxy_t proxy = {0, 0, 0};
    count_t c;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "drop", 2, "events:*", H_SCENE_DLQ), 0);
    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&proxy, h_redis_port()), 0);
    kind_config(&sc, "drops", proxy.port, &opts, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);

    for (int i = 0; i < BEFORE; i++)
        produce_kind(&sc, "drop", i, 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    c = wait_ids(sc.sub, "drop", N, BEFORE, h_deadline(60000));
    CU_ASSERT_EQUAL(c.unique, BEFORE);
    /* Replies read and offsets committed before the cut: none of these can
     * be counted as dropped. */
    CU_ASSERT_EQUAL(wait_committed(&sc, BEFORE, h_deadline(30000)), BEFORE);

    h_proxy_stop(&proxy);
    for (int i = BEFORE; i < BEFORE + DURING; i++)
        produce_kind(&sc, "drop", i, 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    /* Consumed and committed although nothing could be published. */
    CU_ASSERT_EQUAL(wait_committed(&sc, BEFORE + DURING, h_deadline(60000)), BEFORE + DURING);
    CU_ASSERT(h_bridge_log_has(&sc.b, "degraded: notifications are dropped"));
    CU_ASSERT(h_bridge_alive(&sc.b));

    /* Until the bridge has reconnected, records would still be dropped (that
     * is the policy): produce the last ones once it has. */
    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&proxy, h_redis_port()), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "again; publishing", h_deadline(30000)));
    for (int i = BEFORE + DURING; i < N; i++)
        produce_kind(&sc, "drop", i, 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    c = wait_ids(sc.sub, "drop", N, BEFORE + AFTER, h_deadline(60000));
    CU_ASSERT_EQUAL(wait_committed(&sc, N, h_deadline(30000)), N);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    c = count_ids(sc.sub, "drop", N);
    CU_ASSERT_EQUAL(c.unique, BEFORE + AFTER);
    CU_ASSERT_EQUAL(c.unexpected, 0);
    /* None of those produced during the outage arrived. */
    for (size_t i = 0; i < h_sub_count(sc.sub); i++) {
        long id = strtol(h_sub_note(sc.sub, i)->message, NULL, 10);
        CU_ASSERT(id < BEFORE || id >= BEFORE + DURING);
    }
    CU_ASSERT_EQUAL(stat_of(&sc.b, "dropped_unavailable"), DURING);
    h_proxy_stop(&proxy);
    h_scene_close(&sc);
}

/*
 * SIGTERM under load: the bridge finishes its batch, commits what it
 * published and leaves. A restart then delivers the rest without repeating
 * anything: received == committed at the stop, and 0 duplicates in the end.
 */
static void test_sigterm_under_load(void) {
    enum { N = 4000 };
    char yaml[4096];
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, "limits:\n  max_inflight_records: 200\n"};
    count_t c;
    int64_t committed;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "sigterm", 3, "events:*", H_SCENE_DLQ), 0);
    for (int i = 0; i < N; i++)
        produce_kind(&sc, "load", i, 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    kind_config(&sc, "load", h_redis_port(), &opts, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);

    c = wait_ids(sc.sub, "load", N, 300, h_deadline(60000));
    CU_ASSERT(c.unique >= 300);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    /* Whatever the drain published is now in the subscriber's socket; read
     * until the count settles at the committed sum. */
    committed = committed_sum(&sc);
    c = wait_ids(sc.sub, "load", N, (size_t)committed, h_deadline(10000));
    CU_ASSERT_EQUAL((int64_t)c.unique, committed);
    CU_ASSERT_EQUAL(c.dups, 0);
    fprintf(stderr, "[sigterm: %zu published and committed of %d before the stop] ", c.unique, N);

    CU_ASSERT_EQUAL_FATAL(h_bridge_restart(&sc.b), 0);
    c = wait_ids(sc.sub, "load", N, N, h_deadline(120000));
    CU_ASSERT_EQUAL(c.unique, N);
    CU_ASSERT_EQUAL(c.dups, 0);
    CU_ASSERT_EQUAL(c.unexpected, 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_scene_close(&sc);
}

/*
 * shutdown.drain_timeout: with Redis out of reach the held batch cannot be
 * published; SIGTERM gives up on it after the timeout, exits 0, and commits
 * nothing of it, so the next run delivers it all.
 */
static void test_drain_timeout(void) {
    enum { N = 50 };
    char yaml[4096];
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, "shutdown:\n  drain_timeout: 1s\n"};
    h_proxy_t proxy = {0, 0, 0};
    count_t c;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "drain", 1, "events:*", H_SCENE_DLQ), 0);
    /* A Redis that answers the handshake and then nothing: the records that
     * come are taken into a batch that cannot be published. */
    CU_ASSERT_EQUAL_FATAL(h_delay_proxy_start(&proxy, h_redis_port(), -1, 7), 0);
    kind_config(&sc, "drain", proxy.port, &opts, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "redis: connected", h_deadline(60000)));
    CU_ASSERT(h_bridge_wait_log(&sc.b, "assigned", h_deadline(60000)));
    for (int i = 0; i < N; i++)
        produce_kind(&sc, "drain", i, 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT(
        h_bridge_wait_log(&sc.b, "unpublished notification(s), Kafka paused", h_deadline(60000)));

    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "unacknowledged after 1000 ms"));
    CU_ASSERT_EQUAL(committed_sum(&sc), 0);
    h_proxy_stop(&proxy); /* the same port, now a plain proxy */
    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&proxy, h_redis_port()), 0);
    CU_ASSERT_EQUAL_FATAL(h_bridge_restart(&sc.b), 0);
    c = wait_ids(sc.sub, "drain", N, N, h_deadline(60000));
    CU_ASSERT_EQUAL(c.unique, N);
    CU_ASSERT_EQUAL(c.dups, 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_proxy_stop(&proxy);
    h_scene_close(&sc);
}

/*
 * A second member joins while the first is busy: the first finishes the
 * revoked partitions' part of its batch and commits it before letting them
 * go, so the newcomer repeats nothing. 0 duplicates, 0 lost.
 *
 * The rebalance falls mid-stream by construction: half the records are
 * produced before the second member starts, the other half only once the
 * first one logged its revocation, so both members publish and records cross
 * the rebalance whatever the speed of the first one.
 */
static void test_graceful_rebalance(void) {
    enum { N = 6000 };
    char yaml[4096];
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, "limits:\n  max_inflight_records: 100\n"};
    count_t c;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "rebalance", 4, "events:*", H_SCENE_DLQ), 0);
    for (int i = 0; i < N / 2; i++)
        produce_kind(&sc, "moved", i, 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    kind_config(&sc, "moved", h_redis_port(), &opts, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    c = wait_ids(sc.sub, "moved", N, 200, h_deadline(60000));
    CU_ASSERT(c.unique >= 200);

    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b2, yaml), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "kafka: revoked", h_deadline(60000)));
    CU_ASSERT(h_bridge_wait_log(&sc.b2, "kafka: assigned", h_deadline(60000)));
    for (int i = N / 2; i < N; i++)
        produce_kind(&sc, "moved", i, 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    c = wait_ids(sc.sub, "moved", N, N, h_deadline(120000));
    CU_ASSERT_EQUAL(c.unique, N);
    CU_ASSERT_EQUAL(c.unexpected, 0);
    fprintf(stderr, "[graceful rebalance: %d records, %zu duplicates, %d lost] ", N, c.dups,
            N - (int)c.unique);
    CU_ASSERT_EQUAL(c.dups, 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b2, SIGTERM), 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_scene_close(&sc);
}

/*
 * A fatal librdkafka error: a second member with the same group.instance.id
 * fences the first (static membership). The fenced bridge cannot go on: it
 * says why and exits 3 so that its orchestrator restarts it.
 */
static void test_fatal_fenced(void) {
    char yaml[4096], props[128];
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, NULL};
    h_scene_t sc;
    int status;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "fenced", 1, "events:*", H_SCENE_DLQ), 0);
    snprintf(props, sizeof(props), "    group.instance.id: %s-member\n", sc.group);
    opts.properties = props;
    kind_config(&sc, "fenced", h_redis_port(), &opts, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "assigned", h_deadline(60000)));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b2, yaml), 0);

    CU_ASSERT(h_bridge_wait_log(&sc.b, "fatal error", h_deadline(60000)));
    status = h_bridge_stop(&sc.b, 0); /* signal 0: only wait for it to exit */
    CU_ASSERT_EQUAL(status, 3);
    CU_ASSERT(h_bridge_log_has(&sc.b, "stopped on a failure (exit status 3)"));
    CU_ASSERT(h_bridge_alive(&sc.b2));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b2, SIGTERM), 0);
    h_scene_close(&sc);
}

/*
 * Records whose headers are large next to their values (60 KB of header, a
 * value of a few bytes): librdkafka weighs what it fetched ahead by values
 * alone, so the bridge weighs keys and headers itself and pauses fetching past
 * 4 x limits.max_inflight_bytes until its batch has finished (bridge.c,
 * bound_queue). Redis answers 300 ms late (a delay proxy), so that the queue
 * fills from the backlog while each batch waits. Every record is published
 * exactly once, in order (those the pause dropped from librdkafka's queue are
 * fetched again), and the pause is counted and logged.
 */
static void test_heavy_headers(void) {
    enum { N = 150, HEADER = 60000 };
    char yaml[4096], sections[256];
    h_config_opts_t opts = {NULL, NULL, NULL, "  command_timeout_ms: 10000\n", sections};
    h_proxy_t proxy = {0, 0, 0};
    const char *series[] = {"k2r_records_consumed_total"};
    const int64_t want[] = {N};
    char *header = malloc(HEADER + 1), *text;
    h_scene_t sc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(header);
    memset(header, 'h', HEADER);
    header[HEADER] = '\0';
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "heavy-headers", 1, NULL, H_SCENE_HTTP), 0);
    for (int i = 0; i < N; i++) {
        const char *headers[] = {"trace", header, NULL};
        char value[32];

        snprintf(value, sizeof(value), "{\"n\":%d}", i);
        CU_ASSERT_EQUAL(
            h_produce_headers(sc.p, sc.topic, 0, NULL, value, strlen(value), headers, NULL), 0);
    }
    CU_ASSERT_EQUAL_FATAL(h_flush(sc.p), 0);
    free(header);

    CU_ASSERT_EQUAL_FATAL(h_delay_proxy_start(&proxy, h_redis_port(), 300, 7), 0);
    snprintf(sections, sizeof(sections),
             "limits:\n  max_inflight_bytes: 1048576\n"
             "http:\n  enabled: true\n  listen: 127.0.0.1:%d\n",
             sc.http_port);
    h_config_numbered(&sc, proxy.port, &opts, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);

    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, N, h_deadline(120000)), N);
    h_assert_numbered(&sc, sc.sub, 0, N);
    CU_ASSERT(h_bridge_log_has(&sc.b, "4 x limits.max_inflight_bytes (4194304; librdkafka "
                                      "counts only values): fetching paused until the batch in "
                                      "flight has finished"));
    text = h_wait_metrics(sc.http_port, series, want, 1, h_deadline(10000));
    CU_ASSERT_PTR_NOT_NULL(text);
    if (text) {
        CU_ASSERT(h_metric(text, "k2r_fetch_pauses_total") >= 1);
        CU_ASSERT_EQUAL(h_metric(text, "k2r_records_consumed_total"), N);
        free(text);
    }
    /* Nothing more arrives: no record was published twice. */
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_proxy_stop(&proxy);
    h_scene_close(&sc);
}

int test_delivery_register(void) {
    CU_pSuite s = CU_add_suite("delivery", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "Redis ACL refuses some channels: rule policies, the rest proceeds",
                     test_acl_refusals) ||
        !CU_add_test(s, "max_age: per rule and global; stale ones counted, not sent",
                     test_max_age) ||
        !CU_add_test(s, "on_unavailable: drop: counted, committed, nothing stale later",
                     test_unavailable_drop) ||
        !CU_add_test(s, "SIGTERM under load commits what was published; restart repeats nothing",
                     test_sigterm_under_load) ||
        !CU_add_test(s, "drain timeout: held work is left uncommitted for the next run",
                     test_drain_timeout) ||
        !CU_add_test(s, "a member joins: revoked partitions finished first, 0 duplicates",
                     test_graceful_rebalance) ||
        !CU_add_test(s, "fatal librdkafka error (fenced static member): exit 3",
                     test_fatal_fenced) ||
        !CU_add_test(s, "large headers: fetching paused on their bytes, each record once, in order",
                     test_heavy_headers))
        return CU_get_error();
    return 0;
}
