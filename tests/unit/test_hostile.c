/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hostile.c - the hostile-input corpus (tests/hostile/cases.txt) through
 * the rules of tests/hostile/bridge.yaml: for every case, the exact outcome of
 * k2r_rules_map (action, rule, skip reason, detail, every channel and every
 * notification byte), and the promises that hold whatever the input: every
 * notification is one valid JSON object in valid UTF-8 within the limit, and
 * every channel is valid UTF-8 within the limit and free of Pub/Sub pattern,
 * whitespace and control bytes.
 *
 * It runs under ASan, UBSan and LeakSanitizer in `make check`, so a case that
 * crashes the mapper, reads out of bounds or leaks fails here too. The corpus
 * reader is tested as well, so that an incomplete case cannot pass by
 * expecting nothing. Not here: what the daemon does with these records in
 * Kafka and Redis (tests/integration/test_hostile.c).
 */
#include <CUnit/CUnit.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/config.h"
#include "k2r/json.h"
#include "k2r/rules.h"
#include "k2r/utf8.h"
#include "suites.h"

#include "../hostile/corpus.h"

/* Fewer cases than this and the suite fails: the corpus is the point. */
#define MIN_CASES 100

static k2r_config_t *cfg;
static k2r_rules_t *rules;
static k2r_json_t *json;
static hc_corpus_t corpus;

static const char *hostile_path(const char *name) {
    static char path[4096];
    snprintf(path, sizeof(path), "%s/tests/hostile/%s", K2R_SOURCE_DIR, name);
    return path;
}

static int setup(void) {
    k2r_errors_t errs = {NULL, 0, 0};
    char err[512];

    rules = k2r_rules_load(hostile_path("bridge.yaml"), NULL, &errs, &cfg);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    k2r_errors_clear(&errs);
    json = k2r_json_new();
    memset(&corpus, 0, sizeof(corpus));
    if (hc_load(hostile_path("cases.txt"), &corpus, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return rules && json ? 0 : 1;
}

static int teardown(void) {
    hc_free(&corpus);
    k2r_json_destroy(json);
    k2r_rules_destroy(rules);
    k2r_config_destroy(cfg);
    return 0;
}

/* ------------------------------------------------------ bytes for people */

/* Prints bytes in the corpus's BYTES syntax: '...' for plain text, "\xHH"
 * for the rest, and a long run of one byte as '<b>' *N. */
static void print_bytes(const char *s, size_t n) {
    int open = 0;

    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t run = 1;

        while (i + run < n && s[i + run] == s[i])
            run++;
        if (run >= 16) {
            if (open)
                fputs("' ", stderr);
            open = 0;
            if (c >= 0x20 && c < 0x7f && c != '\'')
                fprintf(stderr, "'%c' *%zu ", c, run);
            else
                fprintf(stderr, "\"\\x%02x\" *%zu ", c, run);
            i += run;
            continue;
        }
        if (c >= 0x20 && c < 0x7f && c != '\'') {
            if (!open)
                fputc('\'', stderr);
            open = 1;
            fputc(c, stderr);
        } else {
            if (open)
                fputs("' ", stderr);
            open = 0;
            fprintf(stderr, "\"\\x%02x\" ", c);
        }
        i++;
    }
    if (open)
        fputc('\'', stderr);
    if (n == 0)
        fputs("''", stderr);
    fputc('\n', stderr);
}

/* What the mapping did, in the corpus's syntax, to compare with the docs. */
static void print_outcome(const hc_case_t *c, const k2r_mapping_t *m, const k2r_buf_t *out) {
    fprintf(stderr, "\n  case %s (tests/hostile/cases.txt:%d) maps to:\n", c->name, c->line);
    if (m->action == K2R_ACTION_NONE)
        fprintf(stderr, "expect publish %s\n", m->rule ? m->rule : "none");
    else
        fprintf(stderr, "expect %s %s %s\ndetail ", k2r_action_name(m->action),
                m->rule ? m->rule : "none", k2r_skip_name(m->skip));
    if (m->action != K2R_ACTION_NONE)
        print_bytes(m->detail, strlen(m->detail));
    for (size_t i = 0; i < m->npublish; i++) {
        fputs("publish ", stderr);
        print_bytes(out->data + m->publish[i].channel_off, m->publish[i].channel_len);
        fputs("message ", stderr);
        print_bytes(out->data + m->publish[i].message_off, m->publish[i].message_len);
    }
}

/* ------------------------------------------------------------ mapping */

/* The record of case i, as the daemon would see it: topic hostile.<topic>,
 * offset = its place among the earlier cases of its topic and partition
 * (they are produced in file order). `hdrs` must hold c->nheaders. */
static k2r_msgview_t case_msg(size_t i, char *topic, size_t topic_size,
                              k2r_msgview_header_t *hdrs) {
    const hc_case_t *c = &corpus.cases[i];
    k2r_msgview_t msg;
    int64_t offset = 0;

    for (size_t j = 0; j < i; j++)
        offset += strcmp(corpus.cases[j].topic, c->topic) == 0 &&
                  corpus.cases[j].partition == c->partition;
    snprintf(topic, topic_size, "hostile.%s", c->topic);
    for (size_t h = 0; h < c->nheaders; h++) {
        hdrs[h].name = c->headers[h].name;
        hdrs[h].value = c->headers[h].value.data;
        hdrs[h].value_len = c->headers[h].value.len;
    }
    msg.topic = topic;
    msg.partition = c->partition;
    msg.offset = offset;
    msg.timestamp = -1;
    msg.key = c->key.data;
    msg.key_len = c->key.len;
    msg.value = c->value.data;
    msg.value_len = c->value.len;
    msg.headers = hdrs;
    msg.nheaders = c->nheaders;
    return msg;
}

/* Maps case i into *m and out (cleared first); 0, or -1 (out of memory). */
static int map_case(size_t i, k2r_mapping_t *m, k2r_buf_t *out) {
    const hc_case_t *c = &corpus.cases[i];
    k2r_msgview_header_t *hdrs = calloc(c->nheaders ? c->nheaders : 1, sizeof(*hdrs));
    char topic[64];
    int rc = -1;

    if (hdrs) {
        k2r_msgview_t msg = case_msg(i, topic, sizeof(topic), hdrs);
        out->len = 0;
        rc = k2r_rules_map(rules, json, &msg, out, m);
    }
    free(hdrs);
    return rc;
}

static int same_bytes(const hc_bytes_t *want, const char *got, size_t len) {
    return want->len == len && memcmp(want->data, got, len) == 0;
}

/* 1 when the mapping is exactly the case's expectation. */
static int matches(const hc_case_t *c, const k2r_mapping_t *m, const k2r_buf_t *out) {
    if (strcmp(k2r_action_name(m->action), c->action) != 0 ||
        strcmp(k2r_skip_name(m->skip), c->reason) != 0 || (m->rule == NULL) != (c->rule == NULL) ||
        (m->rule && strcmp(m->rule, c->rule) != 0) || m->npublish != c->npublish)
        return 0;
    if (c->detail.data && strcmp(m->detail, c->detail.data) != 0)
        return 0;
    for (size_t i = 0; i < m->npublish; i++)
        if (!same_bytes(&c->publish[i].channel, out->data + m->publish[i].channel_off,
                        m->publish[i].channel_len) ||
            !same_bytes(&c->publish[i].message, out->data + m->publish[i].message_off,
                        m->publish[i].message_len))
            return 0;
    /* A failure that published nothing leaves nothing behind in the buffer. */
    return m->npublish > 0 || out->len == 0;
}

/* ---------------------------------------------------------------- tests */

/* The corpus is big enough, every case is complete (the reader refused any
 * that is not), and together they reach every outcome. */
static void test_corpus_complete(void) {
    static const char *const outcomes[] = {
        "none",        "no_rule",  "not_json", "missing_field", "wrong_type",
        "empty_value", "too_long", "no_match", "unsafe_chars",  "too_large"};
    static const char *const actions[] = {"none", "skip", "dead-letter", "stop"};

    if (corpus.ncases < MIN_CASES)
        fprintf(stderr, "\nthe corpus has %zu cases, fewer than %d\n", corpus.ncases, MIN_CASES);
    CU_ASSERT(corpus.ncases >= MIN_CASES);
    for (size_t k = 0; k < sizeof(outcomes) / sizeof(outcomes[0]); k++) {
        size_t n = 0;
        for (size_t i = 0; i < corpus.ncases; i++)
            n += strcmp(corpus.cases[i].reason, outcomes[k]) == 0;
        if (n == 0)
            fprintf(stderr, "\nno case ends in %s\n", outcomes[k]);
        CU_ASSERT(n > 0);
    }
    for (size_t k = 0; k < sizeof(actions) / sizeof(actions[0]); k++) {
        size_t n = 0;
        for (size_t i = 0; i < corpus.ncases; i++)
            n += strcmp(corpus.cases[i].action, actions[k]) == 0;
        CU_ASSERT(n > 0);
    }
    for (size_t i = 0; i < corpus.ncases; i++) {
        const hc_case_t *c = &corpus.cases[i];
        int known_topic = 0, known_reason = 0;
        char topic[64];

        snprintf(topic, sizeof(topic), "hostile.%s", c->topic);
        for (size_t t = 0; t < cfg->kafka.ntopics; t++)
            known_topic |= strcmp(cfg->kafka.topics[t], topic) == 0;
        for (size_t k = 0; k < sizeof(outcomes) / sizeof(outcomes[0]); k++)
            known_reason |= strcmp(c->reason, outcomes[k]) == 0;
        if (!known_topic || !known_reason)
            fprintf(stderr, "\ncase %s: unknown topic %s or reason %s\n", c->name, topic,
                    c->reason);
        CU_ASSERT(known_topic && known_reason);
        /* The integration test gives the channels its own prefix in place of this one. */
        for (size_t p = 0; p < c->npublish; p++)
            CU_ASSERT(c->publish[p].channel.len > 8 &&
                      memcmp(c->publish[p].channel.data, "hostile:", 8) == 0);
    }
}

/* Every case maps to exactly its expectation. A case marked bug-map is
 * reported instead, and fails the test once it maps as documented, so that
 * the marker goes away with the fix. */
static void test_cases(void) {
    k2r_buf_t out = {NULL, 0, 0};
    size_t failed = 0, known = 0;

    for (size_t i = 0; i < corpus.ncases; i++) {
        const hc_case_t *c = &corpus.cases[i];
        k2r_mapping_t m;
        int ok;

        CU_ASSERT_EQUAL_FATAL(map_case(i, &m, &out), 0);
        ok = matches(c, &m, &out);
        if (c->bug.data && c->bug_map) {
            if (ok)
                fprintf(stderr, "\ncase %s now maps as documented: remove its bug-map line\n",
                        c->name);
            else
                fprintf(stderr, "\n[known bug, case %s: %s] ", c->name, c->bug.data);
            CU_ASSERT(!ok);
            known += !ok;
            continue;
        }
        if (!ok) {
            print_outcome(c, &m, &out);
            failed++;
        }
        CU_ASSERT(ok);
    }
    if (failed)
        fprintf(stderr, "\n%zu of %zu cases do not map as expected\n", failed, corpus.ncases);
    if (known)
        fprintf(stderr, "\n%zu case(s) marked bug-map still fail as recorded\n", known);
    k2r_buf_free(&out);
}

/* Bytes no channel may hold, whatever the rule's `unsafe:` and whatever the
 * record: control bytes and whitespace (logs, the inline protocol, redis-cli)
 * and the Pub/Sub pattern characters. */
static int unsafe_channel_byte(unsigned char c) {
    return c < 0x20 || c == 0x7f || c == ' ' || c == '*' || c == '?' || c == '[' || c == ']' ||
           c == '\\';
}

static int utf8_valid(const char *s, size_t n) {
    for (size_t i = 0, k; i < n; i += k)
        if ((k = k2r_utf8_char((const unsigned char *)s + i, n - i)) == 0)
            return 0;
    return 1;
}

/* What holds for every case, expected or not, bug or not. */
static void test_invariants(void) {
    const size_t max_channel = (size_t)cfg->limits.max_channel_bytes;
    const size_t max_message = (size_t)cfg->limits.max_notification_bytes;
    k2r_buf_t out = {NULL, 0, 0};

    for (size_t i = 0; i < corpus.ncases; i++) {
        const hc_case_t *c = &corpus.cases[i];
        k2r_mapping_t m;

        CU_ASSERT_EQUAL_FATAL(map_case(i, &m, &out), 0);
        CU_ASSERT((m.skip == K2R_SKIP_NONE) == (m.action == K2R_ACTION_NONE));
        CU_ASSERT(m.npublish <= K2R_FANOUT_MAX);
        if (m.action == K2R_ACTION_STOP) {
            CU_ASSERT_EQUAL(m.npublish, 0);
            CU_ASSERT_EQUAL(out.len, 0);
        }
        for (size_t p = 0; p < m.npublish && p < K2R_FANOUT_MAX; p++) {
            const char *ch = out.data + m.publish[p].channel_off;
            const char *msg = out.data + m.publish[p].message_off;
            size_t clen = m.publish[p].channel_len, mlen = m.publish[p].message_len;
            int safe = clen > 0 && clen <= max_channel && utf8_valid(ch, clen);
            json_error_t jerr;
            json_t *doc;

            CU_ASSERT(m.publish[p].channel_off + clen <= out.len);
            CU_ASSERT(m.publish[p].message_off + mlen <= out.len);
            for (size_t b = 0; b < clen; b++)
                safe &= !unsafe_channel_byte((unsigned char)ch[b]);
            if (!safe) {
                fprintf(stderr, "\ncase %s: unsafe channel ", c->name);
                print_bytes(ch, clen);
            }
            CU_ASSERT(safe);
            /* INT_AS_REAL: a notification may carry an integer above INT64_MAX;
             * ALLOW_NUL: "\u0000" is valid JSON. UTF-8 is checked both ways. */
            doc = json_loadb(msg, mlen,
                             JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL,
                             &jerr);
            if (!doc || !json_is_object(doc) || !utf8_valid(msg, mlen) || mlen > max_message) {
                fprintf(stderr,
                        "\ncase %s: notification is not a JSON object in UTF-8 within "
                        "the limit (%s): ",
                        c->name, doc ? "parsed" : jerr.text);
                print_bytes(msg, mlen);
            }
            CU_ASSERT(doc && json_is_object(doc));
            CU_ASSERT(utf8_valid(msg, mlen));
            CU_ASSERT(mlen <= max_message);
            json_decref(doc);
        }
    }
    k2r_buf_free(&out);
}

/* The reader refuses what would let a case pass without saying anything. */
static void test_reader_refuses(void) {
    static const struct {
        const char *text;
        const char *error;
    } bad[] = {
        {"case a\ntopic strict\nvalue '{}'\n", "t:1: case a: no expect line"},
        {"case a\ntopic strict\nexpect publish strict\npublish 'hostile:x'\nmessage '{}'\n",
         "t:1: case a: no value (write `value none` for a tombstone)"},
        {"case a\ntopic strict\nvalue '{}'\nexpect skip strict not_json\n",
         "t:1: case a: a failure needs its exact detail"},
        {"case a\ntopic strict\nvalue '{}'\nexpect publish strict\n",
         "t:1: case a: expect publish, but no publish line"},
        {"case a\ntopic strict\nvalue '{}'\nexpect publish strict\npublish 'hostile:x'\n",
         "t:1: case a: publish #0 has no message line"},
        {"case a\ntopic stop\nvalue '{}'\nexpect stop stop not_json\ndetail 'd'\n"
         "publish 'hostile:x'\nmessage '{}'\n",
         "t:1: case a: a stop publishes nothing of its record"},
        {"case a\nvalue '{}'\nexpect skip none no_rule\ndetail 'd'\n", "t:1: case a: no topic"},
        {"case a\ntopic t\nvalue none\nexpect skip none no_rule\ndetail 'd'\ncase a\n",
         "t:6: case a: the name is taken (line 1)"},
        {"case a\ntopic t\nvalue \"\\q\"\n", "t:3: unknown escape \\q"},
        {"case a\ntopic t\nvalue 'x' *\n", "t:3: expected a count after *"},
        {"case a\ntopic t\nvalue 'x\n", "t:3: unterminated string"},
        {"case a\ntopic t\nexpect maybe strict\n",
         "t:3: expect maybe: expected publish, skip, dead-letter or stop"},
        {"case a\ntopic t\nkeys 'x'\n", "t:3: unknown directive \"keys\""},
        {"topic t\n", "t:1: topic before the first case"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hc_corpus_t cp = {NULL, 0};
        char err[256] = "";
        FILE *f = fmemopen((void *)bad[i].text, strlen(bad[i].text), "r");

        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(hc_read(f, "t", &cp, err, sizeof(err)), -1);
        fclose(f);
        if (strcmp(err, bad[i].error) != 0)
            fprintf(stderr, "\nreader case %zu: got \"%s\", want \"%s\"\n", i, err, bad[i].error);
        CU_ASSERT_STRING_EQUAL(err, bad[i].error);
        CU_ASSERT_EQUAL(cp.ncases, 0);
    }
}

/* The BYTES syntax, byte for byte. */
static void test_reader_bytes(void) {
    static const char text[] = "case a\n"
                               "topic strict\n"
                               "key ''\n"
                               "header 'h' none\n"
                               "headers 3 \"n\\x01\" 'v'\n"
                               "value '{\"a\":\"' \"\\xff\\0\\\\\\\"\\'\" 'b' *3 \"\\n\" '\"}'\n"
                               "  '.'\n"
                               "expect publish strict\n"
                               "publish 'hostile:c'\n"
                               "message '{}'\n";
    static const char value[] = "{\"a\":\"\xff\0\\\"'bbb\n\"}.";
    hc_corpus_t cp = {NULL, 0};
    char err[256] = "";
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    const hc_case_t *c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(hc_read(f, "t", &cp, err, sizeof(err)), 0);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(cp.ncases, 1);
    c = &cp.cases[0];
    CU_ASSERT_PTR_NOT_NULL(c->key.data);
    CU_ASSERT_EQUAL(c->key.len, 0);
    CU_ASSERT_EQUAL(c->value.len, sizeof(value) - 1);
    CU_ASSERT(memcmp(c->value.data, value, sizeof(value) - 1) == 0);
    CU_ASSERT_EQUAL_FATAL(c->nheaders, 4);
    CU_ASSERT_STRING_EQUAL(c->headers[0].name, "h");
    CU_ASSERT_PTR_NULL(c->headers[0].value.data);
    CU_ASSERT_STRING_EQUAL(c->headers[3].name, "n\x01");
    CU_ASSERT_STRING_EQUAL(c->headers[3].value.data, "v");
    CU_ASSERT_STRING_EQUAL(c->action, "none");
    CU_ASSERT_STRING_EQUAL(c->reason, "none");
    CU_ASSERT_PTR_NULL(c->detail.data);
    hc_free(&cp);
}

int test_hostile_register(void) {
    CU_pSuite s = CU_add_suite("hostile", setup, teardown);

    if (!s ||
        !CU_add_test(s, "the corpus: enough cases, complete, every outcome",
                     test_corpus_complete) ||
        !CU_add_test(s, "every case maps to its exact expectation", test_cases) ||
        !CU_add_test(s, "notifications are JSON in UTF-8, channels safe, for every case",
                     test_invariants) ||
        !CU_add_test(s, "the reader refuses incomplete cases", test_reader_refuses) ||
        !CU_add_test(s, "the reader's byte syntax", test_reader_bytes))
        return CU_get_error();
    return 0;
}
