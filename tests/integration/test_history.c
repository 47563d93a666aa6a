/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_history.c - the notification script against the real broker and
 * redis-server: a rule's history (a stream beside the channel, appended in
 * the same step as the publish, trimmed and expiring) and dedupe (two
 * publishers of the same records, one publish between them).
 */
#include <CUnit/CUnit.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* The rule of these tests: {"n":i} to one channel PREFIX:h, notification
 * {"n":i}, with `extra` (e.g. a history: line) added to the rule. */
static void history_config(const h_scene_t *sc, const char *extra, const char *sections, char *yaml,
                           size_t size) {
    char rules[1024];
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, sections};

    snprintf(rules, sizeof(rules),
             "  - name: hist\n"
             "    topic: %s\n"
             "    vars:\n"
             "      n: {path: n}\n"
             "    channel: \"%s:h\"\n"
             "    notification: [n]\n"
             "%s",
             sc->topic, sc->prefix, extra);
    h_config_opts(yaml, size, sc->group, sc->topic, sc->redis_port, &opts, rules);
}

/* redis-cli's output for `args` (raw: one element a line); NULL on failure. */
static char *cli_output(const char *args) {
    char cmd[1024], *out = NULL;

    snprintf(cmd, sizeof(cmd), "redis-cli --raw -p %d %s", h_redis_port(), args);
    if (h_run(cmd, NULL, &out, 0) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The live message of record i: {"history_id":"<id>","n":i}; copies the id. */
static int live_id(const char *message, int i, char *id, size_t size) {
    char tail[32];
    const char *q;
    size_t n;

    if (strncmp(message, "{\"history_id\":\"", 15) != 0)
        return -1;
    q = strchr(message + 15, '"');
    if (!q || (n = (size_t)(q - (message + 15))) >= size)
        return -1;
    memcpy(id, message + 15, n);
    id[n] = '\0';
    snprintf(tail, sizeof(tail), "\",\"n\":%d}", i);
    return strcmp(q, tail) == 0 ? 0 : -1;
}

/*
 * 300 records to one channel whose rule keeps a history of about 100: each
 * live message carries its stream entry's id ahead of the notification's
 * own bytes; the stream holds the newest entries (at least 100: MAXLEN ~
 * trims whole nodes), in order, each the plain notification under the id
 * its live message named; the stream expires within the rule's ttl.
 */
static void test_history_beside_channel(void) {
    h_scene_t sc;
    char yaml[4096], key[160], args[256], (*ids)[32] = calloc(300, 32);
    char *out = NULL, *line, *save = NULL;
    size_t count = 0;
    long long ttl;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    if (h_scene_open(&sc, "hist", 1, NULL, 0) != 0)
        goto done;
    history_config(&sc, "    history: {maxlen: 100, ttl: 1h}\n", NULL, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    h_produce_numbered(&sc, 0, 300);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 300, h_deadline(30000)), 300);
    for (int i = 0; i < 300 && (size_t)i < h_sub_count(sc.sub); i++) {
        const h_note_t *note = h_sub_note(sc.sub, (size_t)i);

        CU_ASSERT_EQUAL(live_id(note->message, i, ids[i], sizeof(ids[i])), 0);
        if (i > 0)
            CU_ASSERT(strcmp(ids[i - 1], ids[i]) != 0);
    }

    snprintf(key, sizeof(key), "history:%s:h", sc.prefix);
    snprintf(args, sizeof(args), "XRANGE %s - +", key);
    out = cli_output(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    /* id, "n", notification; three lines an entry, oldest first. */
    {
        char *lines[1024];
        size_t nl = 0, entries;

        for (line = strtok_r(out, "\n", &save); line && nl < 1024;
             line = strtok_r(NULL, "\n", &save))
            lines[nl++] = line;
        CU_ASSERT_EQUAL(nl % 3, 0);
        entries = nl / 3;
        CU_ASSERT(entries >= 100 && entries < 300);
        for (size_t e = 0; e < entries; e++) {
            int i = 300 - (int)entries + (int)e;
            char want[32];

            snprintf(want, sizeof(want), "{\"n\":%d}", i);
            CU_ASSERT_STRING_EQUAL(lines[3 * e], ids[i]);
            CU_ASSERT_STRING_EQUAL(lines[3 * e + 1], "n");
            CU_ASSERT_STRING_EQUAL(lines[3 * e + 2], want);
            count++;
        }
    }
    CU_ASSERT(count >= 100);
    free(out);
    snprintf(args, sizeof(args), "PTTL %s", key);
    out = cli_output(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    ttl = strtoll(out, NULL, 10);
    CU_ASSERT(ttl > 0 && ttl <= 3600000);
done:
    free(out);
    free(ids);
    h_scene_close(&sc);
}

/* The stream's entries (id, n) oldest first, from XRANGE; returns how many. */
static size_t read_stream(const char *key, char (*ids)[32], int *ns, size_t max) {
    char args[256], *out, *line, *save = NULL;
    size_t n = 0;

    snprintf(args, sizeof(args), "XRANGE %s - +", key);
    out = cli_output(args);
    for (line = out ? strtok_r(out, "\n", &save) : NULL; line && n < max;
         line = strtok_r(NULL, "\n", &save)) {
        char *field = strtok_r(NULL, "\n", &save), *value = strtok_r(NULL, "\n", &save);

        if (!field || !value || strcmp(field, "n") != 0 || strlen(line) >= 32 ||
            sscanf(value, "{\"n\":%d}", &ns[n]) != 1)
            break;
        snprintf(ids[n++], 32, "%s", line);
    }
    free(out);
    return n;
}

/*
 * Redis restarted mid-stream (it keeps no data: the stack runs it without
 * persistence): 200 records before, 200 while it is down (held, Kafka
 * paused), 200 after. Every record is in the live messages seen before the
 * stop or in the new stream, none is lost; the new stream holds each record
 * from the outage on once, in order; every live message after the restart
 * names the stream entry with its record's notification.
 */
static void test_history_redis_restart(void) {
    enum { N = 600, MAX = 1200 };
    h_scene_t sc;
    h_sub_t *sub = NULL;
    char yaml[4096], key[160], pattern[160], (*ids)[32] = calloc(MAX, 32);
    int *ns = calloc(MAX, sizeof(int)), seen[N] = {0};
    size_t nstream = 0;
    int64_t deadline;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ns);
    if (h_scene_open(&sc, "hrestart", 1, NULL, 0) != 0)
        goto done;
    snprintf(pattern, sizeof(pattern), "%s:*", sc.prefix);
    sub = h_sub_new_resilient(h_redis_port(), pattern);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    history_config(&sc, "    history: {maxlen: 5000}\n", "dedupe: {enabled: true}\n", yaml,
                   sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    h_produce_numbered(&sc, 0, 200);
    CU_ASSERT_EQUAL_FATAL(h_sub_wait(sub, 200, h_deadline(30000)), 200);
    CU_ASSERT_EQUAL_FATAL(h_redis_stop(), 0);
    h_produce_numbered(&sc, 200, 400);
    CU_ASSERT_EQUAL_FATAL(h_redis_start(), 0);
    h_produce_numbered(&sc, 400, N);

    /* The new stream ends with the last record once every record is in it. */
    snprintf(key, sizeof(key), "history:%s:h", sc.prefix);
    deadline = h_deadline(60000);
    while (h_now_ms() < deadline) {
        nstream = read_stream(key, ids, ns, MAX);
        if (nstream && ns[nstream - 1] == N - 1)
            break;
        poll(NULL, 0, 100); /* the next look at the stream */
    }
    CU_ASSERT_FATAL(nstream > 0 && ns[nstream - 1] == N - 1);
    /* In order, once each, and from the outage on nothing missing. */
    CU_ASSERT(ns[0] <= 200);
    for (size_t i = 1; i < nstream; i++)
        CU_ASSERT_EQUAL(ns[i], ns[i - 1] + 1);
    for (size_t i = 0; i < nstream; i++)
        seen[ns[i]] = 1;
    /* Live messages: before the stop, 0..199; after, each names its entry. */
    for (size_t i = 0; i < h_sub_count(sub); i++) {
        const h_note_t *note = h_sub_note(sub, i);
        char id[32];
        int n = -1;

        if (i < 200) {
            n = (int)i;
            CU_ASSERT_EQUAL(live_id(note->message, n, id, sizeof(id)), 0);
            seen[n] = 1;
            continue;
        }
        CU_ASSERT(sscanf(strstr(note->message, "\"n\":") ? strstr(note->message, "\"n\":") : "",
                         "\"n\":%d", &n) == 1);
        CU_ASSERT_FATAL(n >= 0 && n < N);
        CU_ASSERT_EQUAL(live_id(note->message, n, id, sizeof(id)), 0);
        CU_ASSERT(ns[0] <= n && strcmp(ids[n - ns[0]], id) == 0);
    }
    for (int i = 0; i < N; i++)
        if (!seen[i]) {
            fprintf(stderr, "record %d lost\n", i);
            CU_FAIL("a record is neither in the live messages nor in the stream");
            break;
        }
done:
    h_sub_destroy(sub);
    free(ids);
    free(ns);
    h_scene_close(&sc);
    h_redis_start(); /* whatever happened above */
}

/* Without history: today's bytes, and no stream. */
static void test_history_off_plain(void) {
    h_scene_t sc;
    char yaml[4096], args[256];

    if (h_scene_open(&sc, "plain", 1, NULL, 0) != 0)
        goto done;
    history_config(&sc, "", NULL, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    h_produce_numbered(&sc, 0, 3);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 3, h_deadline(30000)), 3);
    for (size_t i = 0; i < 3 && i < h_sub_count(sc.sub); i++) {
        char want[32];

        snprintf(want, sizeof(want), "{\"n\":%zu}", i);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, i)->message, want);
    }
    snprintf(args, sizeof(args), "EXISTS history:%s:h", sc.prefix);
    CU_ASSERT_EQUAL(h_redis_cli(args, "0"), 0);
done:
    h_scene_close(&sc);
}

/*
 * Dedupe between two publishers of the same records: a second bridge (its
 * own consumer group, so it reads everything again, as the bridge does
 * after the producer shim published) finds every record's mark and
 * publishes nothing; its k2r_dedup_suppressed_total says so. The marks of
 * 200 records live in one bitmap key of the partition's block.
 */
static void test_dedupe_two_publishers(void) {
    h_scene_t sc;
    char yaml[4096], sections[512], group2[128], args[256], *text;
    const char *series[] = {"k2r_dedup_suppressed_total",
                            "k2r_notifications_published_total{rule=\"hist\"}"};
    const int64_t want[] = {200, 200};
    int http2 = h_free_port();

    if (h_scene_open(&sc, "dedupe", 1, NULL, H_SCENE_HTTP) != 0)
        goto done;
    snprintf(sections, sizeof(sections), "dedupe: {enabled: true, window: 10m}\n");
    history_config(&sc, "", sections, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    h_produce_numbered(&sc, 0, 200);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 200, h_deadline(30000)), 200);
    for (size_t i = 0; i < 200 && i < h_sub_count(sc.sub); i++) {
        char note[32];

        snprintf(note, sizeof(note), "{\"n\":%zu}", i);
        CU_ASSERT_STRING_EQUAL(h_sub_note(sc.sub, i)->message, note);
    }
    snprintf(args, sizeof(args), "EXISTS k2r:dedupe:%s:0:0", sc.topic);
    CU_ASSERT_EQUAL(h_redis_cli(args, "1"), 0);

    /* The second publisher: same records, another group. */
    snprintf(group2, sizeof(group2), "%s-second", sc.group);
    snprintf(sections, sizeof(sections),
             "dedupe: {enabled: true, window: 10m}\nhttp: {enabled: true, listen: "
             "\"127.0.0.1:%d\"}\n",
             http2);
    {
        char rules[1024];
        h_config_opts_t opts = {NULL, NULL, NULL, NULL, sections};

        snprintf(rules, sizeof(rules),
                 "  - name: hist\n    topic: %s\n    vars:\n      n: {path: n}\n"
                 "    channel: \"%s:h\"\n    notification: [n]\n",
                 sc.topic, sc.prefix);
        h_config_opts(yaml, sizeof(yaml), group2, sc.topic, sc.redis_port, &opts, rules);
    }
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b2, yaml), 0);
    /* Suppressed ones count as published (Redis took them): 200 and 200. */
    text = h_wait_metrics(http2, series, want, 2, h_deadline(30000));
    CU_ASSERT_PTR_NOT_NULL(text);
    CU_ASSERT(text && h_metric(text, series[0]) == 200 && h_metric(text, series[1]) == 200);
    free(text);
    h_assert_quiet(sc.sub);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), 200);
done:
    h_scene_close(&sc);
}

int test_history_register(void) {
    CU_pSuite suite = CU_add_suite("history", NULL, NULL);

    if (!suite ||
        !CU_add_test(suite, "history: a stream beside the channel, ids in the live messages",
                     test_history_beside_channel) ||
        !CU_add_test(suite, "history off: today's bytes, no stream", test_history_off_plain) ||
        !CU_add_test(suite, "history: Redis restarted mid-stream, 0 lost, stream and live agree",
                     test_history_redis_restart) ||
        !CU_add_test(suite, "dedupe: a second publisher of the same records publishes nothing",
                     test_dedupe_two_publishers))
        return CU_get_error();
    return 0;
}
