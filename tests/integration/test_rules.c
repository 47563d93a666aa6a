/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rules.c - the rule language's effects on the running daemon, against
 * the real broker and Redis: one record fanned out to several channels (with
 * a variable read from a Kafka header), `on_error: dead-letter` (what lands
 * in the dead-letter topic, byte for byte, and that a restart repeats
 * nothing), `on_error: stop` (the partition stops at the record and a fixed
 * restart resumes from it), and reloading the rules on SIGHUP without
 * leaving the consumer group.
 *
 * Each test has its own topics, group and channel prefix, and asserts exact
 * channels, bytes and counts; every wait is a deadline, never a sleep.
 */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

/* A config for the scene: its group and topic, Redis at sc->redis_port;
 * `dlq` (may be NULL) is the dead-letter topic, `redis_extra` (NULL: a
 * command timeout) more lines under redis:. */
static void make_config(char *out, size_t size, const h_scene_t *sc, const char *dlq,
                        const char *redis_extra, const char *rules) {
    h_config(out, size, sc->group, sc->topic, sc->redis_port, dlq, redis_extra, rules);
}

/* A notification that must arrive. */
typedef struct note_s {
    char channel[128];
    char message[256];
} note_t;

/* Notification i must be `want` (channel and bytes). */
static void assert_note(const h_sub_t *sub, size_t i, const note_t *want) {
    const h_note_t *got = h_sub_note(sub, i);

    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    if (strcmp(got->channel, want->channel) != 0 || strcmp(got->message, want->message) != 0)
        fprintf(stderr, "notification #%zu: got %s %s, want %s %s\n", i, got->channel, got->message,
                want->channel, want->message);
    CU_ASSERT_STRING_EQUAL(got->channel, want->channel);
    CU_ASSERT_STRING_EQUAL(got->message, want->message);
    CU_ASSERT_EQUAL(got->message_len, strlen(want->message));
}

/*
 * The notifications received on `channel`, from #from on, must be exactly
 * `want` (n messages) in this order. With `dups` set, a message that repeats
 * an earlier one of the channel is a re-delivery (at least once, around a
 * Redis outage) and is counted instead; returns that count.
 */
static size_t assert_channel(const h_sub_t *sub, size_t from, const char *channel,
                             const char *const *want, size_t n, int dups) {
    size_t k = 0, repeated = 0;

    for (size_t i = from; i < h_sub_count(sub); i++) {
        const h_note_t *got = h_sub_note(sub, i);
        int again = 0;

        if (strcmp(got->channel, channel) != 0)
            continue;
        for (size_t j = 0; dups && j < k && !again; j++)
            again = strcmp(got->message, want[j]) == 0;
        if (again) {
            repeated++;
            continue;
        }
        if (k >= n || strcmp(got->message, want[k]) != 0)
            fprintf(stderr, "%s #%zu: got %s, want %s\n", channel, k, got->message,
                    k < n ? want[k] : "(nothing)");
        CU_ASSERT(k < n && strcmp(got->message, want[k]) == 0);
        k++;
    }
    CU_ASSERT_EQUAL(k, n);
    return repeated;
}

/* Reads notifications until one from #from on carries `message`, or the
 * deadline passes; 1 when it came. */
static int wait_message(h_sub_t *sub, size_t from, const char *message, int64_t deadline) {
    for (;;) {
        for (size_t i = from; i < h_sub_count(sub); i++)
            if (strcmp(h_sub_note(sub, i)->message, message) == 0)
                return 1;
        if (h_now_ms() >= deadline)
            return 0;
        h_sub_wait(sub, h_sub_count(sub) + 1, deadline);
    }
}

/* ------------------------------------------------------------ fan-out */

static void test_fan_out(void) {
    enum { N = 6 };
    static const char *const kinds[] = {"push", "issues"};
    note_t want[3 * N];
    size_t nwant = 0;
    char rules[1024];
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "fanout", 1, NULL, 0), 0);
    snprintf(rules, sizeof(rules),
             "  - name: fan\n"
             "    topic: %s\n"
             "    id: repo\n"
             "    vars:\n"
             "      org: org.login\n"
             "      kind: {header: x-kind}\n"
             "    channels: [\"%s:repo:{id}\", \"%s:org:{org}\", \"%s:kind:{kind}\"]\n"
             "    notification: [id, repo, {org: org.login}, {kind: {var: kind}}]\n",
             sc.topic, sc.prefix, sc.prefix, sc.prefix);

    /* Record i: repo r(i%3), org o(i%2), header x-kind; the last has no
     * x-kind header, so its rule fails (missing_field) and it is skipped. */
    for (int i = 0; i < N; i++) {
        char value[256], msg[256];
        const char *kind = kinds[i % 2];
        const char *hdrs[] = {"x-kind", kind, "x-other", "1", NULL};

        snprintf(value, sizeof(value),
                 "{\"id\":\"e%d\",\"repo\":\"r%d\",\"org\":{\"login\":\"o%d\"},\"n\":%d}", i, i % 3,
                 i % 2, i);
        CU_ASSERT_EQUAL(h_produce_headers(sc.p, sc.topic, 0, NULL, value, strlen(value),
                                          i < N - 1 ? hdrs : hdrs + 2, NULL),
                        0);
        if (i == N - 1)
            break;
        snprintf(msg, sizeof(msg),
                 "{\"id\":\"e%d\",\"repo\":\"r%d\",\"org\":\"o%d\",\"kind\":\"%s\"}", i, i % 3,
                 i % 2, kind);
        snprintf(want[nwant].channel, sizeof(want[0].channel), "%s:repo:r%d", sc.prefix, i % 3);
        snprintf(want[nwant++].message, sizeof(want[0].message), "%s", msg);
        snprintf(want[nwant].channel, sizeof(want[0].channel), "%s:org:o%d", sc.prefix, i % 2);
        snprintf(want[nwant++].message, sizeof(want[0].message), "%s", msg);
        snprintf(want[nwant].channel, sizeof(want[0].channel), "%s:kind:%s", sc.prefix, kind);
        snprintf(want[nwant++].message, sizeof(want[0].message), "%s", msg);
    }
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    {
        char yaml[4096];
        make_config(yaml, sizeof(yaml), &sc, NULL, NULL, rules);
        CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    }

    /* One partition, one connection, one subscriber: the exact order of
     * publishing, which is each record's channels in rule order. */
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, nwant, h_deadline(60000)), nwant);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), nwant);
    for (size_t i = 0; i < nwant && i < h_sub_count(sc.sub); i++)
        assert_note(sc.sub, i, &want[i]);

    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "consumed=6 published=15 no_subscribers=0 "
                                      "publish_errors=0 skipped=1 dead_lettered=0 "
                                      "stopped_partitions=0"));
    CU_ASSERT(h_bridge_log_has(&sc.b, "missing_field: kind (header:x-kind): missing"));
    h_scene_close(&sc);
}

/* -------------------------------------------------------- dead letter */

/* One record of the dead-letter test. */
typedef struct dl_record_s {
    const char *key;   /* NULL: none */
    const char *value; /* NULL: a tombstone */
    int bad;           /* 1: must be dead-lettered */
    const char *reason, *detail;
} dl_record_t;

/* The original headers every record of the dead-letter test carries. */
static const char *const dl_headers[] = {"trace-id", "t-123", "bin", "\x00\x01\xff",
                                         "empty",    NULL,    NULL};
static const size_t dl_header_lens[] = {5, 3, 0};

/* The k2r.* headers of dead letter `r`, at `offset` of `topic`, must be exact. */
static void assert_dl_headers(const h_record_t *r, const dl_record_t *src, const char *topic,
                              int64_t offset) {
    static const char *const names[] = {
        "k2r.error.reason", "k2r.error.detail",     "k2r.rule",
        "k2r.source.topic", "k2r.source.partition", "k2r.source.offset"};
    char off[32];
    const char *want[6];
    size_t len;

    snprintf(off, sizeof(off), "%lld", (long long)offset);
    want[0] = src->reason;
    want[1] = src->detail;
    want[2] = "strict";
    want[3] = topic;
    want[4] = "0";
    want[5] = off;
    /* The original headers first, unchanged and in order, then ours. */
    CU_ASSERT_EQUAL_FATAL(r->nheaders, 3 + 6);
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(r->headers[i].name, dl_headers[2 * i]);
        CU_ASSERT_EQUAL(r->headers[i].value_len, dl_header_lens[i]);
        if (dl_headers[2 * i + 1]) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(r->headers[i].value);
            CU_ASSERT(memcmp(r->headers[i].value, dl_headers[2 * i + 1], dl_header_lens[i]) == 0);
        } else {
            CU_ASSERT_PTR_NULL(r->headers[i].value);
        }
    }
    for (size_t i = 0; i < 6; i++) {
        const char *v = h_record_header(r, names[i], &len);
        CU_ASSERT_STRING_EQUAL(r->headers[3 + i].name, names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        if (strcmp(v, want[i]) != 0)
            fprintf(stderr, "dead letter @%lld: %s = \"%s\", want \"%s\"\n", (long long)offset,
                    names[i], v, want[i]);
        CU_ASSERT_STRING_EQUAL(v, want[i]);
        CU_ASSERT_EQUAL(len, strlen(want[i]));
    }
}

static void test_dead_letter(void) {
    static const dl_record_t recs[] = {
        {"k0", "{\"id\":\"e0\",\"source_type\":\"user\",\"source_id\":\"u0\"}", 0, NULL, NULL},
        {"bad-1", "not json", 1, "not_json",
         "value is not JSON: Problem while parsing an atom starting with the letter 'n'"},
        {"k2", "{\"id\":\"e2\",\"source_type\":\"user\",\"source_id\":\"u2\"}", 0, NULL, NULL},
        {NULL, "{\"id\":\"e3\",\"source_type\":\"user\"}", 1, "missing_field",
         "id (source_id): missing"},
        {"tomb", NULL, 1, "not_json", "value is not JSON: the record has no value (tombstone)"},
        {"k5", "{\"id\":\"e5\",\"source_type\":\"org\",\"source_id\":\"o5\"}", 0, NULL, NULL},
        {"bad-6", "{\"id\":\"e6\",\"source_type\":\"user\",\"source_id\":7.5}", 1, "wrong_type",
         "id (source_id): expected a string or integer, found a fractional number"},
        {"k7", "{\"id\":\"e7\",\"source_type\":\"user\",\"source_id\":\"u0\"}", 0, NULL, NULL},
    };
    enum { N = sizeof(recs) / sizeof(recs[0]), NGOOD = 4, NBAD = 4 };
    char dlq[64], rules[1024], yaml[4096], sentinel[128];
    note_t want[NGOOD + 1];
    size_t nwant = 0, nbad = 0;
    h_consumer_t *c = NULL;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "deadletter", 1, NULL, 0), 0);
    h_unique(dlq, sizeof(dlq), "dlq");
    CU_ASSERT_EQUAL_FATAL(h_create_topic(dlq, 1), 0);
    snprintf(rules, sizeof(rules),
             "  - name: strict\n"
             "    topic: %s\n"
             "    type: source_type\n"
             "    id: source_id\n"
             "    channel: \"%s:{type}:{id}\"\n"
             "    notification: [id, {type: {var: type}}, source_id]\n"
             "    on_error: dead-letter\n",
             sc.topic, sc.prefix);
    make_config(yaml, sizeof(yaml), &sc, dlq, NULL, rules);

    for (size_t i = 0; i < N; i++) {
        const dl_record_t *r = &recs[i];
        CU_ASSERT_EQUAL(h_produce_headers(sc.p, sc.topic, 0, r->key, r->value,
                                          r->value ? strlen(r->value) : 0, dl_headers,
                                          dl_header_lens),
                        0);
        if (!r->bad) {
            const char *id = strstr(r->value, "\"id\":\"") + 6;
            const char *type = strstr(r->value, "\"source_type\":\"") + 15;
            const char *sid = strstr(r->value, "\"source_id\":\"") + 13;
            int lid = (int)(strchr(id, '"') - id), ltype = (int)(strchr(type, '"') - type),
                lsid = (int)(strchr(sid, '"') - sid);
            snprintf(want[nwant].channel, sizeof(want[0].channel), "%s:%.*s:%.*s", sc.prefix, ltype,
                     type, lsid, sid);
            snprintf(want[nwant++].message, sizeof(want[0].message),
                     "{\"id\":\"%.*s\",\"type\":\"%.*s\",\"source_id\":\"%.*s\"}", lid, id, ltype,
                     type, lsid, sid);
        }
    }
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);

    /* The good records: published, in order. */
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, NGOOD, h_deadline(60000)), NGOOD);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), NGOOD);
    for (size_t i = 0; i < NGOOD && i < h_sub_count(sc.sub); i++)
        assert_note(sc.sub, i, &want[i]);

    /* The bad ones: in the dead-letter topic, exactly, byte for byte. */
    c = h_consumer_new(dlq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(h_consumer_wait(c, NBAD, h_deadline(60000)), NBAD);
    CU_ASSERT_EQUAL(h_consumer_wait(c, NBAD + 1, h_deadline(1000)), NBAD);
    for (size_t i = 0; i < N; i++) {
        const dl_record_t *src = &recs[i];
        const h_record_t *r;

        if (!src->bad)
            continue;
        r = h_consumer_record(c, nbad++);
        if (!r)
            break;
        if (src->key) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(r->key);
            CU_ASSERT_EQUAL(r->key_len, strlen(src->key));
            CU_ASSERT_STRING_EQUAL(r->key, src->key);
        } else {
            CU_ASSERT_PTR_NULL(r->key);
        }
        if (src->value) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(r->value);
            CU_ASSERT_EQUAL(r->value_len, strlen(src->value));
            CU_ASSERT_STRING_EQUAL(r->value, src->value);
        } else {
            CU_ASSERT_PTR_NULL(r->value); /* a tombstone stays a tombstone */
        }
        assert_dl_headers(r, src, sc.topic, (int64_t)i);
    }
    CU_ASSERT_EQUAL(nbad, NBAD);

    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "consumed=8 published=4 no_subscribers=0 publish_errors=0 "
                                      "skipped=0 dead_lettered=4 stopped_partitions=0"));
    CU_ASSERT(h_bridge_log_has(&sc.b, "dead-letter producer ready for topic"));
    CU_ASSERT(!h_bridge_log_has(&sc.b, "will be ignored by this producer instance"));

    /* A restart repeats nothing: offsets moved past the dead letters. A
     * sentinel produced now must be the only thing published, and the
     * dead-letter topic gets nothing more. */
    CU_ASSERT_EQUAL_FATAL(h_bridge_restart(&sc.b), 0);
    snprintf(sentinel, sizeof(sentinel),
             "{\"id\":\"e8\",\"source_type\":\"user\",\"source_id\":\"u8\"}");
    CU_ASSERT_EQUAL(h_produce(sc.p, sc.topic, 0, "k8", sentinel, strlen(sentinel)), 0);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    snprintf(want[NGOOD].channel, sizeof(want[0].channel), "%s:user:u8", sc.prefix);
    snprintf(want[NGOOD].message, sizeof(want[0].message),
             "{\"id\":\"e8\",\"type\":\"user\",\"source_id\":\"u8\"}");
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, NGOOD + 1, h_deadline(60000)), NGOOD + 1);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), NGOOD + 1);
    if (h_sub_count(sc.sub) > NGOOD)
        assert_note(sc.sub, NGOOD, &want[NGOOD]);
    CU_ASSERT_EQUAL(h_consumer_wait(c, NBAD + 1, h_deadline(1000)), NBAD);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "consumed=1 published=1 no_subscribers=0 publish_errors=0 "
                                      "skipped=0 dead_lettered=0 stopped_partitions=0"));
    h_consumer_destroy(c);
    h_scene_close(&sc);
}

/* Produces {"id":"<id>","source_type":"user","source_id":"u"} (or `raw`). */
static void produce_user(h_producer_t *p, const char *topic, const char *id, const char *raw) {
    char value[128];

    snprintf(value, sizeof(value), "{\"id\":\"%s\",\"source_type\":\"user\",\"source_id\":\"u\"}",
             id);
    if (raw)
        snprintf(value, sizeof(value), "%s", raw);
    CU_ASSERT_EQUAL(h_produce(p, topic, 0, NULL, value, strlen(value)), 0);
}

/*
 * The dead-letter topic refuses the record (an invalid topic name): the
 * batch is held with Kafka paused and nothing is committed past the record,
 * even through a clean stop. With the topic fixed, a restart dead-letters it
 * and publishes what followed it (again, for what the held batch had
 * published: at least once).
 */
static void test_dead_letter_held(void) {
    char rules[1024], yaml[4096], dlq[64], ch[128];
    h_consumer_t *c = NULL;
    size_t before, after;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "dlheld", 1, NULL, 0), 0);
    snprintf(ch, sizeof(ch), "%s:user:u", sc.prefix);
    snprintf(rules, sizeof(rules),
             "  - name: strict\n"
             "    topic: %s\n"
             "    type: source_type\n"
             "    id: source_id\n"
             "    channel: \"%s:{type}:{id}\"\n"
             "    notification: [id]\n"
             "    on_error: dead-letter\n",
             sc.topic, sc.prefix);
    produce_user(sc.p, sc.topic, "e0", NULL);
    produce_user(sc.p, sc.topic, "e1", "not json");
    produce_user(sc.p, sc.topic, "e2", NULL);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    make_config(yaml, sizeof(yaml), &sc, "k2r invalid topic!", NULL, rules);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);

    CU_ASSERT(h_sub_wait(sc.sub, 1, h_deadline(60000)) >= 1);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "holding the batch", h_deadline(30000)));
    CU_ASSERT(h_bridge_log_has(&sc.b, "Kafka paused"));
    /* e2 was published before the batch was held when the two shared it;
     * give the subscriber a moment to read it. */
    h_sub_wait(sc.sub, 2, h_deadline(1000));
    /* Held: a record produced now is not taken. */
    produce_user(sc.p, sc.topic, "e3", NULL);
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    h_assert_quiet(sc.sub);
    before = h_sub_count(sc.sub);
    CU_ASSERT(before == 1 || before == 2); /* e2 is published when it shared the held batch */
    CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, 0)->message, "{\"id\":\"e0\"}");
    CU_ASSERT(h_bridge_alive(&sc.b));

    /* A clean stop cannot finish the batch: its offsets stay uncommitted. */
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "1 dead letter(s) unacknowledged"));
    CU_ASSERT(h_bridge_log_has(&sc.b, "dead_lettered=0"));

    /* Fixed: the record reaches the dead-letter topic, the rest is published. */
    h_unique(dlq, sizeof(dlq), "dlq-fixed");
    CU_ASSERT_EQUAL_FATAL(h_create_topic(dlq, 1), 0);
    make_config(yaml, sizeof(yaml), &sc, dlq, NULL, rules);
    CU_ASSERT_EQUAL_FATAL(h_bridge_rewrite(&sc.b, yaml), 0);
    CU_ASSERT_EQUAL_FATAL(h_bridge_restart(&sc.b), 0);
    c = h_consumer_new(dlq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(h_consumer_wait(c, 1, h_deadline(60000)), 1);
    CU_ASSERT_EQUAL(h_consumer_wait(c, 2, h_deadline(1000)), 1);
    if (h_consumer_count(c) >= 1) {
        const h_record_t *r = h_consumer_record(c, 0);
        CU_ASSERT_STRING_EQUAL(r->value ? r->value : "", "not json");
        CU_ASSERT_STRING_EQUAL(h_record_header(r, "k2r.source.offset", NULL), "1");
        CU_ASSERT_STRING_EQUAL(h_record_header(r, "k2r.error.reason", NULL), "not_json");
    }
    /* After the restart: e0 again when it shared the held batch, then e2, e3. */
    CU_ASSERT(wait_message(sc.sub, before, "{\"id\":\"e3\"}", h_deadline(60000)));
    h_assert_quiet(sc.sub);
    after = h_sub_count(sc.sub) - before;
    CU_ASSERT(after == 2 || after == 3);
    if (after >= 2) {
        size_t n = h_sub_count(sc.sub);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, n - 2)->message, "{\"id\":\"e2\"}");
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, n - 1)->message, "{\"id\":\"e3\"}");
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, n - 1)->channel, ch);
        if (after == 3)
            CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, before)->message, "{\"id\":\"e0\"}");
    }
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "dead_lettered=1 stopped_partitions=0"));
    h_consumer_destroy(c);
    h_scene_close(&sc);
}

/* --------------------------------------------------------------- stop */

/* A record for the stop test: id e<n> on partition `part`; source_id is
 * omitted when sid is NULL (the bad record). */
static void produce_stop_record(h_producer_t *p, const char *topic, int part, const char *id,
                                const char *sid) {
    char value[256];

    if (sid)
        snprintf(value, sizeof(value),
                 "{\"id\":\"%s\",\"source_type\":\"user\",\"source_id\":\"%s\"}", id, sid);
    else
        snprintf(value, sizeof(value), "{\"id\":\"%s\",\"source_type\":\"user\"}", id);
    CU_ASSERT_EQUAL(h_produce(p, topic, part, NULL, value, strlen(value)), 0);
}

static void stop_rules(char *out, size_t size, const h_scene_t *sc, const char *id_source) {
    snprintf(out, size,
             "  - name: strict\n"
             "    topic: %s\n"
             "    type: source_type\n"
             "    id: %s\n"
             "    channel: \"%s:{type}:{id}\"\n"
             "    notification: [id]\n"
             "    on_error: stop\n",
             sc->topic, id_source, sc->prefix);
}

static void test_stop(void) {
    static const char *const a_first[] = {"{\"id\":\"e0\"}", "{\"id\":\"e1\"}"};
    static const char *const a_after[] = {"{\"id\":\"e3\"}", "{\"id\":\"e4\"}", "{\"id\":\"e5\"}",
                                          "{\"id\":\"e6\"}"};
    static const char *const b_all[] = {"{\"id\":\"f0\"}", "{\"id\":\"f1\"}", "{\"id\":\"f2\"}",
                                        "{\"id\":\"f3\"}", "{\"id\":\"f4\"}", "{\"id\":\"f5\"}"};
    static const char *const none[] = {"{\"id\":\"e2\"}"};
    char rules[1024], yaml[4096], ch_a[128], ch_b[128], ch_none[128], line[256];
    size_t first_run, dups;
    h_proxy_t proxy = {0};
    h_scene_t sc;

    /* The bridge reaches Redis through a proxy, to cut it off midway. */
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "stop", 2, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&proxy, h_redis_port()), 0);
    sc.redis_port = proxy.port;
    snprintf(ch_a, sizeof(ch_a), "%s:user:a", sc.prefix);
    snprintf(ch_b, sizeof(ch_b), "%s:user:b", sc.prefix);
    snprintf(ch_none, sizeof(ch_none), "%s:user:none", sc.prefix);

    /* Partition 0: e0 e1 BAD(e2) e3 e4; partition 1: f0..f3. */
    produce_stop_record(sc.p, sc.topic, 0, "e0", "a");
    produce_stop_record(sc.p, sc.topic, 0, "e1", "a");
    produce_stop_record(sc.p, sc.topic, 0, "e2", NULL);
    produce_stop_record(sc.p, sc.topic, 0, "e3", "a");
    produce_stop_record(sc.p, sc.topic, 0, "e4", "a");
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof(id), "f%d", i);
        produce_stop_record(sc.p, sc.topic, 1, id, "b");
    }
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    stop_rules(rules, sizeof(rules), &sc, "source_id");
    make_config(yaml, sizeof(yaml), &sc, NULL, NULL, rules);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);

    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 6, h_deadline(60000)), 6);
    snprintf(line, sizeof(line),
             "STOPPED partition %s[0] at offset 2: rule strict: "
             "missing_field: id (source_id): missing",
             sc.topic);
    CU_ASSERT(h_bridge_wait_log(&sc.b, line, h_deadline(10000)));

    /* A Redis outage pauses every partition; when Redis is back, all of
     * them resume but the stopped one. */
    h_proxy_stop(&proxy);
    produce_stop_record(sc.p, sc.topic, 0, "e5", "a");
    produce_stop_record(sc.p, sc.topic, 1, "f4", "b");
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "Kafka paused", h_deadline(30000)));
    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&proxy, h_redis_port()), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "(stopped ones stay paused)", h_deadline(30000)));
    /* Cutting the proxy can catch a batch whose replies were not read yet:
     * it is published again (at least once), so wait for messages, not counts. */
    CU_ASSERT(wait_message(sc.sub, 0, "{\"id\":\"f4\"}", h_deadline(60000)));

    /* After the outage the other partition goes on; the stopped one takes nothing. */
    produce_stop_record(sc.p, sc.topic, 0, "e6", "a");
    produce_stop_record(sc.p, sc.topic, 1, "f5", "b");
    CU_ASSERT_EQUAL(h_flush(sc.p), 0);
    CU_ASSERT(wait_message(sc.sub, 0, "{\"id\":\"f5\"}", h_deadline(60000)));
    h_assert_quiet(sc.sub);
    dups = assert_channel(sc.sub, 0, ch_a, a_first, 2, 1);
    dups += assert_channel(sc.sub, 0, ch_b, b_all, 6, 1);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), 8 + dups);
    fprintf(stderr, "[stop: %zu re-delivered across the outage] ", dups);
    CU_ASSERT(h_bridge_alive(&sc.b));
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "STOPPED partition"), 1);

    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "consumed=9 published=8 no_subscribers=0 publish_errors=0 "
                                      "skipped=0 dead_lettered=0 stopped_partitions=1"));

    /* Fix the rule (a default for the missing id) and restart: partition 0
     * resumes at the record that stopped it; partition 1 repeats nothing. */
    first_run = h_sub_count(sc.sub);
    stop_rules(rules, sizeof(rules), &sc, "{path: source_id, default: none}");
    make_config(yaml, sizeof(yaml), &sc, NULL, NULL, rules);
    CU_ASSERT_EQUAL_FATAL(h_bridge_rewrite(&sc.b, yaml), 0);
    CU_ASSERT_EQUAL_FATAL(h_bridge_restart(&sc.b), 0);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, first_run + 5, h_deadline(60000)), first_run + 5);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), first_run + 5);
    assert_channel(sc.sub, first_run, ch_none, none, 1, 0);
    assert_channel(sc.sub, first_run, ch_a, a_after, 4, 0);
    assert_channel(sc.sub, first_run, ch_b, NULL, 0, 0);
    /* The bad record comes first: it is where the partition resumed. */
    if (h_sub_count(sc.sub) > first_run)
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, first_run)->channel, ch_none);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "consumed=5 published=5 no_subscribers=0 publish_errors=0 "
                                      "skipped=0 dead_lettered=0 stopped_partitions=0"));
    h_proxy_stop(&proxy);
    h_scene_close(&sc);
}

/* ------------------------------------------------------------- reload */

static void reload_rules(char *out, size_t size, const h_scene_t *sc, const char *variant) {
    snprintf(out, size,
             "  - name: by-id\n"
             "    topic: %s\n"
             "    id: source_id\n"
             "    channel: \"%s:%s:{id}\"\n"
             "    notification: [id]\n",
             sc->topic, sc->prefix, variant);
}

/* Produces {"id":"<id>","source_id":"<id>"} and waits until notification #n
 * (counting from 1) arrived; it must be on prefix:variant:id. */
static void produce_and_see(h_scene_t *sc, const char *id, const char *variant, size_t n) {
    char value[128];
    note_t want;

    snprintf(value, sizeof(value), "{\"id\":\"%s\",\"source_id\":\"%s\"}", id, id);
    CU_ASSERT_EQUAL(h_produce(sc->p, sc->topic, 0, NULL, value, strlen(value)), 0);
    CU_ASSERT_EQUAL(h_flush(sc->p), 0);
    snprintf(want.channel, sizeof(want.channel), "%s:%s:%s", sc->prefix, variant, id);
    snprintf(want.message, sizeof(want.message), "{\"id\":\"%s\"}", id);
    CU_ASSERT_EQUAL(h_sub_wait(sc->sub, n, h_deadline(60000)), n);
    if (h_sub_count(sc->sub) >= n)
        assert_note(sc->sub, n - 1, &want);
}

/* Rewrites the config, sends SIGHUP, waits for the `count`-th `needle`. */
static int hup_and_wait(h_scene_t *sc, const char *yaml, const char *needle, size_t count) {
    if (h_bridge_rewrite(&sc->b, yaml) != 0 || kill(sc->b.pid, SIGHUP) != 0)
        return -1;
    return h_bridge_wait_log_count(&sc->b, needle, count, h_deadline(30000)) ? 0 : -1;
}

static void test_reload(void) {
    char rules[1024], yaml[4096], bad[4096], reloaded[512], cmd[512], *check_out = NULL;
    size_t assigned, revoked;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "reload", 1, NULL, 0), 0);
    reload_rules(rules, sizeof(rules), &sc, "a");
    make_config(yaml, sizeof(yaml), &sc, NULL, NULL, rules);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    produce_and_see(&sc, "x1", "a", 1);
    assigned = h_bridge_log_count(&sc.b, "kafka: assigned");
    revoked =
        h_bridge_log_count(&sc.b, "kafka: revoked") + h_bridge_log_count(&sc.b, "kafka: lost");
    CU_ASSERT_EQUAL(assigned, 1);

    /* Template b, plus a changed redis setting that takes a restart. */
    snprintf(reloaded, sizeof(reloaded), "reloaded rules from %s: 1 rule(s)", sc.b.config);
    reload_rules(rules, sizeof(rules), &sc, "b");
    make_config(yaml, sizeof(yaml), &sc, NULL, "  command_timeout_ms: 3000\n", rules);
    CU_ASSERT_EQUAL(hup_and_wait(&sc, yaml, reloaded, 1), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "redis.command_timeout_ms changed: these settings take a "
                                      "restart"));
    produce_and_see(&sc, "x2", "b", 2);

    /* An invalid file: every error `check` reports is logged, b stays. */
    snprintf(bad, sizeof(bad),
             "%.*s  - name: broken\n"
             "    topic: %s\n"
             "    id: source_id\n"
             "    chanel: \"x:{id}\"\n"
             "    notification: [id, {tpye: {var: tpye}}]\n",
             (int)strlen(yaml), yaml, sc.topic);
    CU_ASSERT_EQUAL(hup_and_wait(&sc, bad, "reload failed; keeping the previous rules", 1), 0);
    snprintf(cmd, sizeof(cmd), "%s check -c %s", h_binary(), sc.b.config);
    CU_ASSERT_EQUAL(h_run(cmd, NULL, &check_out, 1), 1);
    {
        size_t nerr = 0;
        for (char *line = strtok(check_out, "\n"); line; line = strtok(NULL, "\n")) {
            if (strstr(line, "error(s)"))
                continue;
            nerr++;
            if (!h_bridge_log_has(&sc.b, line))
                fprintf(stderr, "not in the log: %s\n", line);
            CU_ASSERT(h_bridge_log_has(&sc.b, line));
        }
        CU_ASSERT(nerr >= 2);
    }
    free(check_out);
    produce_and_see(&sc, "x3", "b", 3);

    /* Rules that need a dead-letter producer this bridge did not start with. */
    {
        char dl_rules[1024], dl_yaml[4096];
        snprintf(dl_rules, sizeof(dl_rules), "%s    on_error: dead-letter\n", rules);
        make_config(dl_yaml, sizeof(dl_yaml), &sc, "reload-dlq", NULL, dl_rules);
        CU_ASSERT_EQUAL(hup_and_wait(&sc, dl_yaml, "reload failed; keeping the previous rules", 2),
                        0);
        CU_ASSERT(h_bridge_log_has(&sc.b, "the new rules use on_error: dead-letter, but this "
                                          "bridge started without kafka.dead_letter_topic"));
    }
    produce_and_see(&sc, "x4", "b", 4);

    /* And back to a: a good reload after failed ones. */
    reload_rules(rules, sizeof(rules), &sc, "a");
    make_config(yaml, sizeof(yaml), &sc, NULL, NULL, rules);
    CU_ASSERT_EQUAL(hup_and_wait(&sc, yaml, reloaded, 2), 0);
    produce_and_see(&sc, "x5", "a", 5);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), 5);

    /* Stayed in the group all along: no new assignment or revocation. */
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "kafka: assigned"), assigned);
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "kafka: revoked") +
                        h_bridge_log_count(&sc.b, "kafka: lost"),
                    revoked);
    CU_ASSERT(h_bridge_alive(&sc.b));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT(h_bridge_log_has(&sc.b, "consumed=5 published=5 no_subscribers=0 publish_errors=0 "
                                      "skipped=0 dead_lettered=0"));
    h_scene_close(&sc);
}

/* The wall-clock time (ms since the epoch) of the first line of the
 * bridge's text log that contains `needle` ("2026-12-03T19:47:45.369Z info
 * ..."), or -1. */
static int64_t log_time_ms(const h_bridge_t *b, const char *needle) {
    char *text = NULL, cmd[600];
    const char *at, *line;
    struct tm tm;
    int ms = 0;
    int64_t t = -1;

    snprintf(cmd, sizeof(cmd), "cat %s", b->log);
    if (h_run(cmd, NULL, &text, 0) != 0 || !text || !(at = strstr(text, needle))) {
        free(text);
        return -1;
    }
    for (line = at; line > text && line[-1] != '\n'; line--)
        ;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) == 7) {
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        t = (int64_t)timegm(&tm) * 1000 + ms;
    }
    free(text);
    return t;
}

static int64_t wall_ms(void) {
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A reload never holds up publishing: the config is read on a thread of its
 * own. The new file is large (7,000 rules besides the one that maps the
 * records, within the loader's bound of 200,000 nodes), so reading and
 * compiling it takes a while; records produced once the bridge said it is
 * reloading are all published before it says the new rules are in. Before,
 * the loop itself read the file, and nothing was published until it was
 * done. The new rules then apply (the records still map, under 7,001
 * rules), and the bridge stayed in the group. Two more SIGHUPs during the
 * load make exactly one more load, after it.
 */
static void test_reload_does_not_block(void) {
    enum { FIRST = 10, DURING = 50, AFTER = 10, NEVER = 7000 };
    const size_t rule_size = 256;
    char yaml[4096], reloaded[512];
    size_t big_size = sizeof(yaml) + (size_t)NEVER * rule_size, len;
    char *big = malloc(big_size);
    int64_t published_ms, reloaded_ms, reloading_ms;
    h_scene_t sc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "reload-big", 1, NULL, 0), 0);
    h_config_numbered(&sc, h_redis_port(), NULL, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    h_produce_numbered(&sc, 0, FIRST);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, FIRST, h_deadline(60000)), FIRST);

    /* The same config with rules appended (the rules come last) that never
     * match: their condition wants a field no record has. */
    len = (size_t)snprintf(big, big_size, "%s", yaml);
    for (int i = 0; i < NEVER; i++)
        len += (size_t)snprintf(big + len, big_size - len,
                                "  - name: never-%05d\n"
                                "    topic: %s\n"
                                "    vars: {n: {path: n}, k: {path: kind}}\n"
                                "    when: {k: {equals: \"never-%05d\"}}\n"
                                "    channel: \"%s:never:{n}:%05d\"\n"
                                "    message: \"{n}\"\n",
                                i, sc.topic, i, sc.prefix, i);
    CU_ASSERT_FATAL(len < big_size);
    snprintf(reloaded, sizeof(reloaded), "reloaded rules from %s: %d rule(s)", sc.b.config,
             NEVER + 1);
    CU_ASSERT_EQUAL_FATAL(h_bridge_rewrite(&sc.b, big), 0);
    CU_ASSERT_EQUAL_FATAL(kill(sc.b.pid, SIGHUP), 0);
    CU_ASSERT_FATAL(h_bridge_wait_log(&sc.b, "reloading rules from", h_deadline(10000)));
    /* Two more SIGHUPs during the load: coalesced into one load after it. */
    CU_ASSERT_EQUAL(kill(sc.b.pid, SIGHUP), 0);
    CU_ASSERT_EQUAL(kill(sc.b.pid, SIGHUP), 0);
    h_produce_numbered(&sc, FIRST, FIRST + DURING);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, FIRST + DURING, h_deadline(30000)), FIRST + DURING);
    published_ms = wall_ms();
    CU_ASSERT(h_bridge_wait_log(&sc.b, reloaded, h_deadline(60000)));
    reloading_ms = log_time_ms(&sc.b, "reloading rules from");
    reloaded_ms = log_time_ms(&sc.b, reloaded);
    fprintf(stderr,
            "[load %lld ms; the %d records produced meanwhile published %lld ms before "
            "its end] ",
            (long long)(reloaded_ms - reloading_ms), DURING,
            (long long)(reloaded_ms - published_ms));
    CU_ASSERT(reloaded_ms > 0 && published_ms < reloaded_ms);
    CU_ASSERT(h_bridge_wait_log_count(&sc.b, reloaded, 2, h_deadline(60000)));
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "reload requested while the config is being read"),
                    1);

    h_produce_numbered(&sc, FIRST + DURING, FIRST + DURING + AFTER);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, FIRST + DURING + AFTER, h_deadline(30000)),
                    FIRST + DURING + AFTER);
    h_assert_quiet(sc.sub);
    h_assert_numbered(&sc, sc.sub, 0, FIRST + DURING + AFTER);
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "reloading rules from"), 2);
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, reloaded), 2);
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "kafka: assigned"), 1);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    free(big);
    h_scene_close(&sc);
}

int test_rules_register(void) {
    CU_pSuite s = CU_add_suite("rules", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "fan-out: one record, several channels, a header variable", test_fan_out) ||
        !CU_add_test(s, "on_error: dead-letter: exact records and headers; restart repeats nothing",
                     test_dead_letter) ||
        !CU_add_test(s, "on_error: dead-letter: a refusing topic holds the batch, commits nothing",
                     test_dead_letter_held) ||
        !CU_add_test(s, "on_error: stop: the partition stops; a fixed restart resumes there",
                     test_stop) ||
        !CU_add_test(s, "a reload of a large config does not hold up publishing",
                     test_reload_does_not_block) ||
        !CU_add_test(s, "SIGHUP reloads the rules in the group; a bad file changes nothing",
                     test_reload))
        return CU_get_error();
    return 0;
}
