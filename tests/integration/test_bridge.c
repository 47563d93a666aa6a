/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_bridge.c - the daemon end to end against the real broker and Redis:
 * exact channels and bytes, counts and per-channel order; garbage between
 * good records; a restart mid-stream; Redis cut off and back; real GitHub
 * webhook payloads.
 */
#include <CUnit/CUnit.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* A config for one test: its own group and topic, Redis at `redis_port`. */
static void make_config(char *out, size_t size, const char *group, const char *topic,
                        int redis_port, const char *rules) {
    h_config(out, size, group, topic, redis_port, NULL, NULL, rules);
}

/* The seeds' rule for `topic`. */
static void seed_rule(char *out, size_t size, const char *topic) {
    snprintf(out, size,
             "  - name: by-source\n"
             "    topic: %s\n"
             "    type: source_type\n"
             "    id: source_id\n"
             "    channel: \"events:{type}:{id}\"\n"
             "    notification: [id, type, source_id]\n",
             topic);
}

/* The expected notification of a seed-shaped event. */
typedef struct expect_s {
    char channel[128];
    char message[256];
    int seen;
} expect_t;

/* Produces a seed-shaped event; fills *e with what must arrive. */
static void produce_event(h_producer_t *p, const char *topic, int user, int seq, expect_t *e) {
    char value[512], key[32];

    snprintf(key, sizeof(key), "u%d", user);
    snprintf(value, sizeof(value),
             "{\"id\":\"e%d\",\"type\":\"push\",\"source_type\":\"user\",\"source_id\":\"u%d\","
             "\"payload\":{\"ref\":\"refs/heads/main\",\"size\":%d}}",
             seq, user, seq % 7);
    CU_ASSERT_EQUAL(h_produce(p, topic, -1, key, value, strlen(value)), 0);
    if (e) {
        snprintf(e->channel, sizeof(e->channel), "events:user:u%d", user);
        snprintf(e->message, sizeof(e->message),
                 "{\"id\":\"e%d\",\"type\":\"push\",\"source_id\":\"u%d\"}", seq, user);
        e->seen = 0;
    }
}

/* What the subscriber got, against what was expected. */
typedef struct tally_s {
    size_t dups, unexpected, missing, disorder;
} tally_t;

/*
 * Every expected notification must be there, each channel's notifications
 * must come in production order (a re-delivery of an earlier one aside),
 * nothing unexpected may arrive. `verbose` prints the first problems.
 */
static tally_t tally(const h_sub_t *sub, expect_t *exp, size_t n, int verbose) {
    tally_t t = {0, 0, 0, 0};

    for (size_t j = 0; j < n; j++)
        exp[j].seen = 0;
    for (size_t i = 0; i < h_sub_count(sub); i++) {
        const h_note_t *note = h_sub_note(sub, i);
        size_t j, first = n;
        /* Identical notifications can be expected more than once: take the
         * first one not seen yet, else count a duplicate of the first. */
        for (j = 0; j < n; j++) {
            if (strcmp(exp[j].channel, note->channel) != 0 ||
                strcmp(exp[j].message, note->message) != 0)
                continue;
            if (first == n)
                first = j;
            if (!exp[j].seen)
                break;
        }
        if (j == n)
            j = first;
        if (j == n) {
            if (verbose && t.unexpected < 5)
                fprintf(stderr, "unexpected: %s %s\n", note->channel, note->message);
            t.unexpected++;
            continue;
        }
        if (exp[j].seen++) {
            if (verbose && t.dups < 3)
                fprintf(stderr, "duplicate (#%zu received): %s %s\n", i, note->channel,
                        note->message);
            t.dups++;
            continue;
        }
        for (size_t k = j + 1; k < n; k++) {
            if (exp[k].seen && strcmp(exp[k].channel, exp[j].channel) == 0) {
                if (verbose && t.disorder < 5)
                    fprintf(stderr, "out of order on %s: %s after %s\n", note->channel,
                            exp[j].message, exp[k].message);
                t.disorder++;
                break;
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        if (!exp[j].seen) {
            if (verbose && t.missing < 5)
                fprintf(stderr, "missing: %s %s\n", exp[j].channel, exp[j].message);
            t.missing++;
        }
    }
    return t;
}

/* Asserts nothing is lost, unexpected or out of order; returns the duplicates. */
static size_t match(h_sub_t *sub, expect_t *exp, size_t n) {
    tally_t t = tally(sub, exp, n, 1);

    CU_ASSERT_EQUAL(t.unexpected, 0);
    CU_ASSERT_EQUAL(t.missing, 0);
    CU_ASSERT_EQUAL(t.disorder, 0);
    return t.dups;
}

/* Reads until every expected notification arrived at least once (duplicates
 * allowed) or the deadline passed; returns how many are still missing. */
static size_t wait_all(h_sub_t *sub, expect_t *exp, size_t n, int64_t deadline) {
    for (;;) {
        tally_t t = tally(sub, exp, n, 0);
        int64_t step = h_now_ms() + 200;
        if (t.missing == 0 || h_now_ms() >= deadline)
            return t.missing;
        h_sub_wait(sub, h_sub_count(sub) + t.missing, step < deadline ? step : deadline);
    }
}

/* Starts the bridge with `rules` (NULL: the seeds' rule), Redis at `redis_port`. */
static int scene_start(h_scene_t *sc, int redis_port, const char *rules) {
    char seed[512], yaml[4096];

    if (!rules) {
        seed_rule(seed, sizeof(seed), sc->topic);
        rules = seed;
    }
    make_config(yaml, sizeof(yaml), sc->group, sc->topic, redis_port, rules);
    return h_bridge_start(&sc->b, yaml);
}

/* ------------------------------------------------------------- tests */

static void test_end_to_end(void) {
    enum { USERS = 5, PER_USER = 40, N = USERS * PER_USER };
    expect_t exp[N];
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "e2e", 3, "events:*", 0), 0);
    CU_ASSERT_EQUAL_FATAL(scene_start(&sc, h_redis_port(), NULL), 0);
    for (int i = 0; i < N; i++)
        produce_event(sc.p, sc.topic, i % USERS, i, &exp[i]);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);

    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, N, h_deadline(60000)), N);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(match(sc.sub, exp, N), 0);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), N);

    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "consumed=200 published=200 no_subscribers=0 "
                                      "publish_errors=0 skipped=0"));
    h_scene_close(&sc);
}

/*
 * Topics that appear after the bridge subscribed: a named topic created
 * later and a topic a ^regex subscription starts to match are both consumed
 * within the bridge's metadata refresh (10 s; librdkafka's own default would
 * be 5 minutes). Exact notifications from each.
 */
static void test_topics_after_start(void) {
    enum { N = 5 };
    char late[96], rx[96], topics[256], rules[1024], yaml[4096], value[32];
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, NULL};
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "late", 1, NULL, 0), 0);
    snprintf(late, sizeof(late), "%s-named", sc.topic);
    snprintf(rx, sizeof(rx), "%s-rx-a", sc.topic);
    snprintf(topics, sizeof(topics), "%s, \"^%s-rx-.*\"", late, sc.topic);
    snprintf(rules, sizeof(rules),
             "  - name: named\n"
             "    topic: %s\n"
             "    vars: {n: {path: n}}\n"
             "    channel: \"%s:named:{n}\"\n"
             "    message: \"{n}\"\n"
             "  - name: matched\n"
             "    topic: \"^%s-rx-.*\"\n"
             "    vars: {n: {path: n}}\n"
             "    channel: \"%s:rx:{n}\"\n"
             "    message: \"{n}\"\n",
             late, sc.prefix, sc.topic, sc.prefix);
    h_config_opts(yaml, sizeof(yaml), sc.group, topics, h_redis_port(), &opts, rules);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "bridge: running", h_deadline(60000)));
    CU_ASSERT_EQUAL_FATAL(h_create_topic(late, 1), 0);
    CU_ASSERT_EQUAL_FATAL(h_create_topic(rx, 1), 0);
    for (int i = 0; i < N; i++) {
        snprintf(value, sizeof(value), "{\"n\":%d}", i);
        CU_ASSERT_EQUAL(h_produce(sc.p, late, 0, NULL, value, strlen(value)), 0);
        CU_ASSERT_EQUAL(h_produce(sc.p, rx, 0, NULL, value, strlen(value)), 0);
    }
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    /* The refresh (10 s), the join, the fetch: well under librdkafka's 5 min. */
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 2 * N, h_deadline(45000)), 2 * N);
    h_assert_quiet(sc.sub);
    for (int kind = 0; kind < 2; kind++) {
        int next = 0;

        for (size_t i = 0; i < h_sub_count(sc.sub); i++) {
            char channel[160];

            snprintf(channel, sizeof(channel), "%s:%s:%d", sc.prefix, kind ? "rx" : "named", next);
            if (strcmp(h_sub_note(sc.sub, i)->channel, channel) == 0)
                next++;
        }
        CU_ASSERT_EQUAL(next, N); /* each kind 0..N-1, in order */
    }
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_scene_close(&sc);
}

static void test_garbage_between_good(void) {
    static const char *const garbage[] = {
        "not json",
        "{\"source_type\":\"user\"}",
        "{\"source_type\":[],\"source_id\":\"x\"}",
        "\xff\xfe\x00\x01",
        "{\"source_type\":\"user\",\"source_id\":\"\"}",
        "{\"id\":\"e\",\"source_type\":\"user\",\"source_id\":\"u\"",
        NULL /* a tombstone */};
    enum { NG = sizeof(garbage) / sizeof(garbage[0]), N = NG + 1 };
    expect_t exp[N];
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "garbage", 1, "events:*", 0), 0);
    for (int i = 0; i < N; i++) {
        produce_event(sc.p, sc.topic, i, i, &exp[i]);
        if (i < NG) {
            const char *g = garbage[i];
            size_t len = g ? (i == 3 ? 4 : strlen(g)) : 0;
            CU_ASSERT_EQUAL(h_produce(sc.p, sc.topic, 0, "g", g, len), 0);
        }
    }
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT_EQUAL_FATAL(scene_start(&sc, h_redis_port(), NULL), 0);

    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, N, h_deadline(60000)), N);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(match(sc.sub, exp, N), 0);
    /* One subscriber, one partition: the exact global order too. */
    for (size_t i = 0; i < h_sub_count(sc.sub) && i < N; i++)
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, i)->message, exp[i].message);
    CU_ASSERT(h_bridge_alive(&sc.b));

    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "consumed=15 published=8 no_subscribers=0 "
                                      "publish_errors=0 skipped=7"));
    CU_ASSERT(h_bridge_log_has(&sc.b, "skipped record"));
    h_scene_close(&sc);
}

static void test_restart_mid_stream(void) {
    enum { FIRST = 300, SECOND = 300, N = FIRST + SECOND, USERS = 7 };
    expect_t exp[N];
    h_scene_t sc;
    size_t dups;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "restart", 2, "events:*", 0), 0);
    for (int i = 0; i < FIRST; i++)
        produce_event(sc.p, sc.topic, i % USERS, i, &exp[i]);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);

    CU_ASSERT_EQUAL_FATAL(scene_start(&sc, h_redis_port(), NULL), 0);
    CU_ASSERT(h_sub_wait(sc.sub, 1, h_deadline(60000)) >= 1);
    /* Stop it as soon as it is publishing, and keep producing while it is down. */
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    for (int i = FIRST; i < N; i++)
        produce_event(sc.p, sc.topic, i % USERS, i, &exp[i]);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);

    CU_ASSERT_EQUAL_FATAL(h_bridge_restart(&sc.b), 0);
    CU_ASSERT_EQUAL(wait_all(sc.sub, exp, N, h_deadline(60000)), 0);
    h_assert_quiet(sc.sub);
    dups = match(sc.sub, exp, N);
    fprintf(stderr, "[restart: %zu notifications for %d records, %zu duplicates] ",
            h_sub_count(sc.sub), N, dups);
    /* A clean stop commits what was published: nothing is repeated. */
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_scene_close(&sc);
}

static void test_redis_outage(void) {
    enum { BEFORE = 50, DURING = 150, N = BEFORE + DURING, USERS = 4 };
    expect_t exp[N];
    h_proxy_t proxy = {0};
    h_scene_t sc;
    size_t dups;

    /* The subscriber talks to Redis directly; only the bridge goes through the proxy. */
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "outage", 2, "events:*", 0), 0);
    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&proxy, h_redis_port()), 0);
    CU_ASSERT_EQUAL_FATAL(scene_start(&sc, proxy.port, NULL), 0);

    for (int i = 0; i < BEFORE; i++)
        produce_event(sc.p, sc.topic, i % USERS, i, &exp[i]);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, BEFORE, h_deadline(60000)), BEFORE);

    /* Cut the bridge off from Redis, keep producing. */
    h_proxy_stop(&proxy);
    for (int i = BEFORE; i < N; i++)
        produce_event(sc.p, sc.topic, i % USERS, i, &exp[i]);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "Kafka paused", h_deadline(30000)));
    /* While cut off, nothing can arrive; the bridge stays up. */
    h_assert_quiet(sc.sub);
    CU_ASSERT(h_bridge_alive(&sc.b));

    /* Redis reachable again: everything held is published, in order. At
     * least once: a PUBLISH that reached Redis as the path was cut, but whose
     * reply never came back, is sent again. Nothing may be missing. */
    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&proxy, h_redis_port()), 0);
    CU_ASSERT_EQUAL(wait_all(sc.sub, exp, N, h_deadline(60000)), 0);
    h_assert_quiet(sc.sub);
    dups = match(sc.sub, exp, N);
    fprintf(stderr, "[outage: %zu notifications for %d records, %zu duplicates] ",
            h_sub_count(sc.sub), N, dups);
    CU_ASSERT(h_bridge_log_has(&sc.b, "again; publishing"));

    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_proxy_stop(&proxy);
    h_scene_close(&sc);
}

/* The notification the webhook rule must build, computed independently with
 * jansson's decoder; 0 when the payload has no usable repository.full_name. */
static int webhook_expect(json_t *example, expect_t *e) {
    json_t *full = json_object_get(json_object_get(example, "repository"), "full_name");
    json_t *action = json_object_get(example, "action");
    json_t *sender = json_object_get(json_object_get(example, "sender"), "login");
    json_t *note;
    char *msg;

    if (!json_is_string(full) || !json_string_length(full))
        return 0;
    note = json_object();
    if (action)
        json_object_set(note, "action", action);
    json_object_set(note, "repo", full);
    if (sender)
        json_object_set(note, "sender", sender);
    msg = json_dumps(note, JSON_COMPACT);
    snprintf(e->channel, sizeof(e->channel), "events:repo:%s", json_string_value(full));
    snprintf(e->message, sizeof(e->message), "%s", msg);
    free(msg);
    json_decref(note);
    return 1;
}

/* Real GitHub webhook payloads, from the npm package @octokit/webhooks-examples. */
static void test_webhooks(void) {
    const char *path = getenv("K2R_TEST_WEBHOOKS");
    char rules[1024], stats[128];
    json_error_t jerr;
    json_t *root, *kind, *example;
    size_t ki, ei, n = 0, nexp = 0;
    expect_t *exp;
    h_scene_t sc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(path); /* set by scripts/run-tests.sh; never skipped */
    root = json_load_file(path, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    json_array_foreach(root, ki, kind) n += json_array_size(json_object_get(kind, "examples"));
    CU_ASSERT_FATAL(n > 100);
    exp = calloc(n, sizeof(*exp));

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "webhooks", 1, "events:repo:*", 0), 0);
    json_array_foreach(root, ki, kind) {
        json_array_foreach(json_object_get(kind, "examples"), ei, example) {
            char *value = json_dumps(example, JSON_COMPACT);
            CU_ASSERT_EQUAL(h_produce(sc.p, sc.topic, 0, NULL, value, strlen(value)), 0);
            free(value);
            nexp += webhook_expect(example, &exp[nexp]);
        }
    }
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    fprintf(stderr, "[webhooks: %zu payloads, %zu with repository.full_name] ", n, nexp);

    snprintf(rules, sizeof(rules),
             "  - name: repos\n"
             "    topic: %s\n"
             "    type: action\n"
             "    id: repository.full_name\n"
             "    channel: \"events:repo:{id}\"\n"
             "    notification: [action, {repo: repository.full_name}, {sender: sender.login}]\n",
             sc.topic);
    CU_ASSERT_EQUAL_FATAL(scene_start(&sc, h_redis_port(), rules), 0);

    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, nexp, h_deadline(60000)), nexp);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(match(sc.sub, exp, nexp), 0);
    /* One partition: the exact order of production. */
    for (size_t i = 0; i < h_sub_count(sc.sub) && i < nexp; i++) {
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, i)->channel, exp[i].channel);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, i)->message, exp[i].message);
    }
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    snprintf(stats, sizeof(stats), "consumed=%zu published=%zu", n, nexp);
    CU_ASSERT(h_bridge_log_has(&sc.b, stats));
    snprintf(stats, sizeof(stats), "skipped=%zu ", n - nexp);
    CU_ASSERT(h_bridge_log_has(&sc.b, stats));
    h_scene_close(&sc);
    json_decref(root);
    free(exp);
}

int test_bridge_register(void) {
    CU_pSuite s = CU_add_suite("bridge", NULL, NULL);

    if (!s || !CU_add_test(s, "end to end: exact channels, bytes, count, order", test_end_to_end) ||
        !CU_add_test(s, "garbage records between good ones", test_garbage_between_good) ||
        !CU_add_test(s, "topics created after start, by name and by regex",
                     test_topics_after_start) ||
        !CU_add_test(s, "restart mid-stream loses nothing", test_restart_mid_stream) ||
        !CU_add_test(s, "Redis cut off and back: everything arrives", test_redis_outage) ||
        !CU_add_test(s, "GitHub webhook payloads to events:repo:{id}", test_webhooks))
        return CU_get_error();
    return 0;
}
