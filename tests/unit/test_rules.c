/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rules.c - records through the rules: the exact channel and the exact
 * notification bytes, or the exact skip reason, for each case of a table.
 */
#include <CUnit/CUnit.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/config.h"
#include "k2r/json.h"
#include "k2r/rules.h"
#include "suites.h"

static const char *rules_yaml =
    "kafka:\n"
    "  brokers: b:9092\n"
    "  group_id: g\n"
    "  topics: [github.events, webhooks, plain, ids]\n"
    "rules:\n"
    "  - name: by-source\n"
    "    topic: github.events\n"
    "    type: source_type\n"
    "    id: source_id\n"
    "  - name: repos\n"
    "    topic: webhooks\n"
    "    type: kind\n"
    "    id: repository.full_name\n"
    "    channel: \"events:repo:{id}\"\n"
    "    notification: [action, {repo: repository.full_name}, {sender: sender.login}, "
    "{first: commits.0.id}]\n"
    "  - name: literal-braces\n"
    "    topic: plain\n"
    "    type: t\n"
    "    id: i\n"
    "    channel: \"{{{type}}}/{id}\"\n"
    "    notification: [n]\n"
    "  - name: only-id\n"
    "    topic: ids\n"
    "    type: unused\n"
    "    id: i\n"
    "    channel: \"ids:{id}\"\n"
    "    notification: [i]\n";

static k2r_config_t *cfg;
static k2r_rules_t *rules;
static k2r_json_t *json;

static int setup(void) {
    k2r_errors_t errs = {NULL, 0, 0};

    cfg = k2r_config_parse("rules.yaml", rules_yaml, strlen(rules_yaml), NULL, &errs);
    rules = cfg ? k2r_rules_new(cfg, &errs) : NULL;
    json = k2r_json_new();
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    k2r_errors_clear(&errs);
    return rules && json ? 0 : 1;
}

static int teardown(void) {
    k2r_json_destroy(json);
    k2r_rules_destroy(rules);
    k2r_config_destroy(cfg);
    return 0;
}

typedef struct map_case_s {
    const char *topic;
    const char *value;
    const char *rule;    /* expected rule name, NULL for none */
    k2r_skip_t skip;     /* expected skip, or K2R_SKIP_NONE */
    const char *channel; /* expected channel, when published */
    const char *message; /* expected notification bytes, or the expected detail on a skip */
} map_case_t;

static const map_case_t cases[] = {
    /* The seeds' shape and defaults. */
    {"github.events",
     "{\"id\":\"e1\",\"type\":\"push\",\"source_type\":\"user\",\"source_id\":\"octocat\"}",
     "by-source", K2R_SKIP_NONE, "events:user:octocat",
     "{\"id\":\"e1\",\"type\":\"push\",\"source_id\":\"octocat\"}"},
    /* Integers become decimal text in the channel and stay integers in the notification. */
    {"github.events", "{\"id\":42,\"type\":\"star\",\"source_type\":\"repo\",\"source_id\":-7}",
     "by-source", K2R_SKIP_NONE, "events:repo:-7",
     "{\"id\":42,\"type\":\"star\",\"source_id\":-7}"},
    {"github.events", "{\"source_type\":\"org\",\"source_id\":18446744073709551615}", "by-source",
     K2R_SKIP_NONE, "events:org:18446744073709551615", "{\"source_id\":1.8446744073709552e19}"},
    /* Absent notification fields are left out; escapes are re-encoded exactly. */
    {"github.events", "{\"source_type\":\"user\",\"source_id\":\"caf\\u00e9\",\"id\":\"a\\\"b\"}",
     "by-source", K2R_SKIP_NONE, "events:user:caf\xc3\xa9",
     "{\"id\":\"a\\\"b\",\"source_id\":\"caf\xc3\xa9\"}"},
    /* Slashes in ids (events:repo:owner/repo) are fine in channels. */
    {"webhooks",
     "{\"action\":\"opened\",\"repository\":{\"full_name\":\"octo/hello\"},\"sender\":{\"login\":"
     "\"mona\"},\"commits\":[{\"id\":\"c0\"},{\"id\":\"c1\"}]}",
     "repos", K2R_SKIP_NONE, "events:repo:octo/hello",
     "{\"action\":\"opened\",\"repo\":\"octo/hello\",\"sender\":\"mona\",\"first\":\"c0\"}"},
    {"plain", "{\"t\":\"x\",\"i\":1,\"n\":null}", "literal-braces", K2R_SKIP_NONE, "{x}/1",
     "{\"n\":null}"},
    /* A variable the template does not use is not required. */
    {"ids", "{\"i\":\"only\"}", "only-id", K2R_SKIP_NONE, "ids:only", "{\"i\":\"only\"}"},
    {"plain", "{\"t\":true,\"i\":1.5,\"n\":[1]}", "literal-braces", K2R_SKIP_WRONG_TYPE, NULL,
     "type (t): expected a string or integer, found a boolean"},

    /* Skips, with their reasons. */
    {"elsewhere", "{}", NULL, K2R_SKIP_NO_RULE, NULL, "no rule for topic elsewhere"},
    {"github.events", "not json", "by-source", K2R_SKIP_NOT_JSON, NULL, NULL},
    {"github.events", "", "by-source", K2R_SKIP_NOT_JSON, NULL, NULL},
    {"github.events", "{\"source_type\":\"user\"} trailing", "by-source", K2R_SKIP_NOT_JSON, NULL,
     NULL},
    {"github.events", "{\"source_type\":\"user\"}", "by-source", K2R_SKIP_MISSING_FIELD, NULL,
     "id (source_id): missing"},
    {"github.events", "{\"source_type\":\"user\",\"source_id\":\"\"}", "by-source",
     K2R_SKIP_EMPTY_VALUE, NULL, "id (source_id): empty string"},
    {"github.events", "{\"source_type\":{\"a\":1},\"source_id\":\"x\"}", "by-source",
     K2R_SKIP_WRONG_TYPE, NULL,
     "type (source_type): expected a string or integer, found an object"},
    {"github.events", "{\"source_type\":\"user\",\"source_id\":null}", "by-source",
     K2R_SKIP_WRONG_TYPE, NULL, "id (source_id): expected a string or integer, found null"},
    {"webhooks", "{\"repository\":{\"full_name\":\"o/r\"},\"action\":{\"nested\":true}}", "repos",
     K2R_SKIP_WRONG_TYPE, NULL,
     "notification field action (action): expected a scalar, found an object"},
    {"github.events", "[1,2,3]", "by-source", K2R_SKIP_MISSING_FIELD, NULL,
     "type (source_type): missing"},
};

static void test_map_table(void) {
    k2r_buf_t out = {NULL, 0, 0};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const map_case_t *c = &cases[i];
        k2r_msgview_t msg = {c->topic, 0, (int64_t)i,         -1,
                             NULL,     0, c->value,           strlen(c->value),
                             NULL,     0, K2R_MSGVIEW_TS_NONE};
        k2r_mapping_t m;

        out.len = 0;
        CU_ASSERT_EQUAL_FATAL(k2r_rules_map(rules, json, &msg, &out, &m), 0);
        if (m.skip != c->skip)
            fprintf(stderr, "\ncase %zu: skip %s (%s), want %s\n", i, k2r_skip_name(m.skip),
                    m.detail, k2r_skip_name(c->skip));
        CU_ASSERT_EQUAL(m.skip, c->skip);
        if (c->rule) {
            CU_ASSERT(m.rule && strcmp(m.rule, c->rule) == 0);
        } else {
            CU_ASSERT_PTR_NULL(m.rule);
        }
        if (c->skip == K2R_SKIP_NONE) {
            CU_ASSERT_EQUAL_FATAL(m.npublish, 1);
            CU_ASSERT_EQUAL(m.publish[0].channel_len, strlen(c->channel));
            CU_ASSERT_NSTRING_EQUAL(out.data + m.publish[0].channel_off, c->channel,
                                    strlen(c->channel));
            CU_ASSERT_EQUAL(m.publish[0].message_len, strlen(c->message));
            CU_ASSERT_NSTRING_EQUAL(out.data + m.publish[0].message_off, c->message,
                                    strlen(c->message));
            if (m.publish[0].message_len != strlen(c->message) ||
                memcmp(out.data + m.publish[0].message_off, c->message, strlen(c->message)))
                fprintf(stderr, "\ncase %zu: message %.*s\n", i, (int)m.publish[0].message_len,
                        out.data + m.publish[0].message_off);
        } else {
            CU_ASSERT_EQUAL(m.npublish, 0);
            CU_ASSERT_EQUAL(out.len, 0); /* nothing left behind in the buffer */
            if (c->message) {
                if (strcmp(m.detail, c->message) != 0)
                    fprintf(stderr, "\ncase %zu: detail \"%s\"\n", i, m.detail);
                CU_ASSERT_STRING_EQUAL(m.detail, c->message);
            }
        }
    }
    k2r_buf_free(&out);
}

/* Mappings append: offsets of earlier records stay valid as the buffer grows. */
static void test_map_appends(void) {
    k2r_buf_t out = {NULL, 0, 0};
    k2r_mapping_t m;
    char value[128], want[64];
    size_t offs[500];

    for (int i = 0; i < 500; i++) {
        k2r_msgview_t msg = {"github.events",    0, i, -1, NULL, 0, value, 0, NULL, 0,
                             K2R_MSGVIEW_TS_NONE};
        msg.value_len = (size_t)snprintf(value, sizeof(value),
                                         "{\"source_type\":\"user\",\"source_id\":\"u%d\"}", i);
        CU_ASSERT_EQUAL_FATAL(k2r_rules_map(rules, json, &msg, &out, &m), 0);
        CU_ASSERT_EQUAL_FATAL(m.npublish, 1);
        offs[i] = m.publish[0].channel_off;
    }
    for (int i = 0; i < 500; i++) {
        int n = snprintf(want, sizeof(want), "events:user:u%d", i);
        CU_ASSERT_NSTRING_EQUAL(out.data + offs[i], want, (size_t)n);
    }
    k2r_buf_free(&out);
}

static void test_channel_too_long(void) {
    k2r_buf_t out = {NULL, 0, 0};
    size_t n = K2R_CHANNEL_MAX + 100;
    char *value = malloc(n + 64);
    k2r_mapping_t m;
    int len;

    len = snprintf(value, n + 64, "{\"source_type\":\"user\",\"source_id\":\"");
    memset(value + len, 'x', K2R_CHANNEL_MAX);
    len += K2R_CHANNEL_MAX;
    len += snprintf(value + len, 8, "\"}");
    {
        k2r_msgview_t msg = {"github.events",    0, 0, -1, NULL, 0, value, (size_t)len, NULL, 0,
                             K2R_MSGVIEW_TS_NONE};
        CU_ASSERT_EQUAL(k2r_rules_map(rules, json, &msg, &out, &m), 0);
    }
    CU_ASSERT_EQUAL(m.skip, K2R_SKIP_TOO_LONG);
    CU_ASSERT_STRING_EQUAL(m.detail, "channel would be 1036 bytes (limit 1024)");
    free(value);
    k2r_buf_free(&out);
}

static void test_describe(void) {
    char line[512];

    CU_ASSERT_EQUAL_FATAL(k2r_rules_count(rules), 4);
    k2r_rules_describe(rules, 0, line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "rule by-source: topic github.events -> channel "
                                 "\"events:{type}:{id}\" (type=source_type, id=source_id), fields "
                                 "[id, type, source_id]");
    k2r_rules_describe(rules, 1, line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line,
                           "rule repos: topic webhooks -> channel \"events:repo:{id}\" "
                           "(type=kind, id=repository.full_name), fields [action, repo: "
                           "repository.full_name, sender: sender.login, first: commits.0.id]");
}

static void test_skip_names(void) {
    CU_ASSERT_STRING_EQUAL(k2r_skip_name(K2R_SKIP_NO_RULE), "no_rule");
    CU_ASSERT_STRING_EQUAL(k2r_skip_name(K2R_SKIP_NOT_JSON), "not_json");
    CU_ASSERT_STRING_EQUAL(k2r_skip_name(K2R_SKIP_MISSING_FIELD), "missing_field");
    CU_ASSERT_STRING_EQUAL(k2r_skip_name(K2R_SKIP_WRONG_TYPE), "wrong_type");
    CU_ASSERT_STRING_EQUAL(k2r_skip_name(K2R_SKIP_EMPTY_VALUE), "empty_value");
    CU_ASSERT_STRING_EQUAL(k2r_skip_name(K2R_SKIP_TOO_LONG), "too_long");
    CU_ASSERT_STRING_EQUAL(k2r_skip_name((k2r_skip_t)99), "unknown");
}

/* ---------------------------------------- notifications against jansson */

/*
 * The mapper writes notifications itself; until it did, jansson built an
 * object per record and dumped it compactly. This oracle is that code, kept
 * here: every value below must come out byte for byte as jansson wrote it
 * (or fail where jansson refused it), through each kind of source.
 */
static json_t *jansson_value(const k2r_value_t *v, int checked) {
    switch (v->type) {
    case K2R_VALUE_STRING:
        return checked ? json_stringn(v->str, v->len) : json_stringn_nocheck(v->str, v->len);
    case K2R_VALUE_INT:
        return json_integer((json_int_t)v->i);
    case K2R_VALUE_UINT:
        return json_real((double)v->u);
    case K2R_VALUE_DOUBLE:
        return json_real(v->d);
    case K2R_VALUE_BOOL:
        return json_boolean(v->b);
    case K2R_VALUE_NULL:
        return json_null();
    default:
        return NULL;
    }
}

static const char *jansson_yaml =
    "kafka:\n"
    "  brokers: b:9092\n"
    "  group_id: g\n"
    "  topics: [t]\n"
    "rules:\n"
    "  - name: same\n"
    "    topic: t\n"
    "    channel: c\n"
    "    notification: [v, {\"q\\\"\\\\\\x01\\u00e9/\\t\": v}, {h: {header: h}}, {k: {meta: "
    "key}},\n"
    "                   {o: {meta: offset}}, {n: {const: 7}}, {absent: nope}]\n";

static void test_notification_bytes(void) {
    static const char *const values[] = {"\"\"",
                                         "\"plain\"",
                                         "\"a\\\"b\\\\c/d\"",
                                         "\"\\u0000\\u0001\\u0007\\b\\t\\n\\u000b\\f\\r\"",
                                         "\"\\u000e\\u001f\\u0020\\u007f\\u0080\"",
                                         "\"caf\\u00e9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
                                         "\"\\ud83d\\ude00\"",
                                         "0",
                                         "-1",
                                         "42",
                                         "9223372036854775807",
                                         "-9223372036854775808",
                                         "9223372036854775808",
                                         "18446744073709551615",
                                         "0.1",
                                         "-0.0",
                                         "1.0",
                                         "1e300",
                                         "2.5e-7",
                                         "-123.456e10",
                                         "3.141592653589793",
                                         "1e-320",
                                         "1.5e10",
                                         "true",
                                         "false",
                                         "null",
                                         "{}",
                                         "[1]"};
    static const char *const headers[] = {"h", "\xc3\xa9\x01\"",   "\xff", "\xed\xa0\x80",
                                          "",  "\xf4\x90\x80\x80", "a\0b"};
    static const size_t header_lens[] = {1, 4, 1, 3, 0, 4, 3};
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *c = k2r_config_parse("j.yaml", jansson_yaml, strlen(jansson_yaml), NULL, &errs);
    k2r_rules_t *r = c ? k2r_rules_new(c, &errs) : NULL;
    k2r_json_t *j = k2r_json_new();
    k2r_path_t path = {0};
    k2r_buf_t out = {NULL, 0, 0};
    char errstr[128];

    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    k2r_errors_clear(&errs);
    CU_ASSERT_FATAL(r && j);
    CU_ASSERT_FATAL(k2r_path_compile("v", &path, errstr, sizeof(errstr)) == 0);
    for (size_t vi = 0; vi < sizeof(values) / sizeof(values[0]); vi++) {
        for (size_t hi = 0; hi < sizeof(headers) / sizeof(headers[0]); hi++) {
            char value[256];
            k2r_msgview_header_t h = {"h", headers[hi], header_lens[hi]};
            k2r_msgview_t msg = {"t",   0, (int64_t)vi, -1, headers[hi],        header_lens[hi],
                                 value, 0, &h,          1,  K2R_MSGVIEW_TS_NONE};
            k2r_value_t v, hv = {K2R_VALUE_STRING, 0, headers[hi], header_lens[hi], 0, 0, 0};
            k2r_mapping_t m;
            json_t *obj = json_object(), *jv, *jh;
            size_t need;
            char *want;

            msg.value_len = (size_t)snprintf(value, sizeof(value), "{\"v\":%s}", values[vi]);
            CU_ASSERT_FATAL(k2r_json_parse(j, value, msg.value_len) == 0);
            k2r_json_get(j, &path, &v);
            jv = jansson_value(&v, 0);
            jh = jansson_value(&hv, 1);
            out.len = 0;
            CU_ASSERT_FATAL(k2r_rules_map(r, json, &msg, &out, &m) == 0);
            if (!jv || !jh) {
                /* jansson refused: an object or array, or a header that is
                 * not UTF-8 (a key that is not either, the same way). */
                CU_ASSERT_EQUAL(m.skip, K2R_SKIP_WRONG_TYPE);
                CU_ASSERT_EQUAL(m.npublish, 0);
                json_decref(jv);
                json_decref(jh);
                json_decref(obj);
                continue;
            }
            json_object_set(obj, "v", jv);
            json_object_set_new(obj, "q\"\\\x01\xc3\xa9/\t", jv);
            json_object_set_new(obj, "h", jh);
            json_object_set_new(obj, "k", json_stringn(headers[hi], header_lens[hi]));
            json_object_set_new(obj, "o", json_integer((json_int_t)vi));
            json_object_set_new(obj, "n", json_integer(7));
            need = json_dumpb(obj, NULL, 0, JSON_COMPACT);
            want = malloc(need);
            CU_ASSERT_FATAL(want && json_dumpb(obj, want, need, JSON_COMPACT) == need);
            CU_ASSERT_EQUAL_FATAL(m.npublish, 1);
            CU_ASSERT_EQUAL(m.publish[0].message_len, need);
            if (m.publish[0].message_len != need ||
                memcmp(out.data + m.publish[0].message_off, want, need) != 0) {
                fprintf(stderr, "\nvalue %s header %zu:\n got %.*s\nwant %.*s\n", values[vi], hi,
                        (int)m.publish[0].message_len, out.data + m.publish[0].message_off,
                        (int)need, want);
                CU_FAIL("notification bytes differ from jansson's");
            }
            free(want);
            json_decref(obj);
        }
    }
    k2r_path_free(&path);
    k2r_buf_free(&out);
    k2r_json_destroy(j);
    k2r_rules_destroy(r);
    k2r_config_destroy(c);
}

/* ------------------------------------------------- the mapping language */

static const char *lang_yaml =
    "kafka:\n"
    "  brokers: b:9092\n"
    "  group_id: g\n"
    "  topics: [gh, \"^audit\\\\..*\", ce, plain2]\n"
    "  dead_letter_topic: dlq\n"
    "limits:\n"
    "  max_channel_bytes: 40\n"
    "  max_notification_bytes: 120\n"
    "rules:\n"
    "  - name: webhook\n"
    "    topic: gh\n"
    "    type: {header: X-GitHub-Event}\n"
    "    id: repository.full_name\n"
    "    vars:\n"
    "      org: {path: organization.login, default: none}\n"
    "      action: {path: action, default: \"\"}\n"
    "    when:\n"
    "      type: {in: [push, issues]}\n"
    "      action: {not: deleted}\n"
    "    channels: [\"events:repo:{id}\", \"events:org:{org}\"]\n"
    "    notification: [{event: {var: type}}, {repo: {var: id}}, {offset: {meta: offset}},\n"
    "                   {topic: {meta: topic}}, {src: {const: github}}, {n: {const: 7}}]\n"
    "    unsafe: escape\n"
    "    continue: true\n"
    "  - name: catchall\n"
    "    topic: gh\n"
    "    type: {const: gh}\n"
    "    id: {meta: partition}\n"
    "    channel: \"all:{type}:{id}\"\n"
    "    message: \"p{id}\"\n"
    "  - name: audit\n"
    "    topic: \"^audit\\\\..*\"\n"
    "    type: {meta: topic}\n"
    "    id: {meta: key}\n"
    "    when: {id: {exists: true}}\n"
    "    channel: \"audit:{id}\"\n"
    "    notification: [{ts: {meta: timestamp}}, {user: user.name}]\n"
    "    on_error: dead-letter\n"
    "  - name: audit-anon\n"
    "    topic: \"^audit\\\\..*\"\n"
    "    vars: {k: {meta: key}}\n"
    "    when: {k: {exists: false}}\n"
    "    channel: \"audit:anon\"\n"
    "    message: anon\n"
    "  - name: ce\n"
    "    topic: ce\n"
    "    type: {cloudevents: type}\n"
    "    id: {cloudevents: subject}\n"
    "    channel: \"ce:{type}:{id}\"\n"
    "    notification: [{id: {cloudevents: id}}, {amount: order.amount}, {k: \"a\\\\.b\"}]\n"
    "    on_error: stop\n"
    "  - name: strict\n"
    "    topic: \"plain*\"\n"
    "    type: t\n"
    "    id: i\n"
    "    channel: \"s:{type}:{id}\"\n"
    "    notification: [{x: {var: id}}]\n";

typedef struct lang_case_s {
    const char *topic;
    const char *key;
    const char *headers[6]; /* name, value pairs; a NULL name ends them */
    const char *value;
    const char *rule;
    k2r_skip_t skip;
    k2r_action_t action;
    const char *detail;     /* expected detail on failure, or NULL to not check */
    const char *publish[6]; /* channel, message pairs, in order */
} lang_case_t;

#define GH_OK                                                                                      \
    "{\"repository\":{\"full_name\":\"octo/hello\"},\"organization\":{\"login\":\"github\"}}"
#define CE_HDR "content-type", "application/cloudevents+json"

static const lang_case_t lang_cases[] = {
    /* Fan-out to two channels, then continue: the catch-all rule publishes too. */
    {"gh",
     NULL,
     {"X-GitHub-Event", "push"},
     GH_OK,
     "webhook",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"events:repo:octo/hello",
      "{\"event\":\"push\",\"repo\":\"octo/"
      "hello\",\"offset\":5,\"topic\":\"gh\",\"src\":\"github\","
      "\"n\":7}",
      "events:org:github",
      "{\"event\":\"push\",\"repo\":\"octo/"
      "hello\",\"offset\":5,\"topic\":\"gh\",\"src\":\"github\","
      "\"n\":7}",
      "all:gh:3", "p3"}},
    /* Conditions: not in the list, negated equality, absent header, invalid UTF-8 header. */
    {"gh",
     NULL,
     {"X-GitHub-Event", "star"},
     GH_OK,
     "catchall",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"all:gh:3", "p3"}},
    {"gh",
     NULL,
     {"X-GitHub-Event", "push"},
     "{\"action\":\"deleted\",\"repository\":{\"full_name\":\"o/r\"}}",
     "catchall",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"all:gh:3", "p3"}},
    {"gh",
     NULL,
     {NULL},
     GH_OK,
     "catchall",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"all:gh:3", "p3"}},
    {"gh",
     NULL,
     {"X-GitHub-Event", "\xffpush"},
     GH_OK,
     "catchall",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"all:gh:3", "p3"}},
    /* The last header of a name wins. */
    {"gh",
     NULL,
     {"X-GitHub-Event", "star", "X-GitHub-Event", "issues"},
     "{\"repository\":{\"full_name\":\"o/r\"}}",
     "webhook",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"events:repo:o/r",
      "{\"event\":\"issues\",\"repo\":\"o/r\",\"offset\":5,\"topic\":\"gh\",\"src\":\"github\","
      "\"n\":7}",
      "events:org:none",
      "{\"event\":\"issues\",\"repo\":\"o/r\",\"offset\":5,\"topic\":\"gh\",\"src\":\"github\","
      "\"n\":7}",
      "all:gh:3", "p3"}},
    /* unsafe: escape percent-encodes pattern bytes, whitespace, ':' and '%' itself. */
    {"gh",
     NULL,
     {"X-GitHub-Event", "push"},
     "{\"repository\":{\"full_name\":\"a b*c:%\"},\"organization\":{\"login\":\"x\"}}",
     "webhook",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"events:repo:a%20b%2Ac%3A%25",
      "{\"event\":\"push\",\"repo\":\"a b*c:%\",\"offset\":5,\"topic\":\"gh\",\"src\":\"github\","
      "\"n\":7}",
      "events:org:x",
      "{\"event\":\"push\",\"repo\":\"a b*c:%\",\"offset\":5,\"topic\":\"gh\",\"src\":\"github\","
      "\"n\":7}",
      "all:gh:3", "p3"}},
    /* A failing rule with continue: its policy (skip) is reported, later rules still publish. */
    {"gh",
     NULL,
     {"X-GitHub-Event", "push"},
     "not json",
     "webhook",
     K2R_SKIP_NOT_JSON,
     K2R_ACTION_SKIP,
     NULL,
     {"all:gh:3", "p3"}},
    {"gh",
     NULL,
     {"X-GitHub-Event", "push"},
     "{\"repository\":{\"full_name\":\"o/r\"},\"x\":\""
     "0123456789012345678901234567890123456789\"}",
     "webhook",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"events:repo:o/r",
      "{\"event\":\"push\",\"repo\":\"o/r\",\"offset\":5,\"topic\":\"gh\",\"src\":\"github\","
      "\"n\":7}",
      "events:org:none",
      "{\"event\":\"push\",\"repo\":\"o/r\",\"offset\":5,\"topic\":\"gh\",\"src\":\"github\","
      "\"n\":7}",
      "all:gh:3", "p3"}},
    {"gh",
     NULL,
     {"X-GitHub-Event", "push"},
     "{\"repository\":{\"full_name\":\"0123456789012345678901234567890123456789\"}}",
     "webhook",
     K2R_SKIP_TOO_LONG,
     K2R_ACTION_SKIP,
     "channel would be 52 bytes (limit 40)",
     {"all:gh:3", "p3"}},
    /* Regex topics, the key, the timestamp; exists / absent conditions. */
    {"audit.login",
     "alice",
     {NULL},
     "{\"user\":{\"name\":\"Alice\"}}",
     "audit",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"audit:alice", "{\"ts\":1700000000000,\"user\":\"Alice\"}"}},
    {"audit.login",
     NULL,
     {NULL},
     "{}",
     "audit-anon",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"audit:anon", "anon"}},
    {"audit.login",
     "bad:key",
     {NULL},
     "{}",
     "audit",
     K2R_SKIP_UNSAFE_CHARS,
     K2R_ACTION_DEAD_LETTER,
     "id: byte 0x3a at 3 is not allowed in a channel (unsafe: escape would write %3A)",
     {NULL}},
    {"audit.login",
     "k",
     {NULL},
     "{\"user\":{\"name\":\"0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789\"}}",
     "audit",
     K2R_SKIP_TOO_LARGE,
     K2R_ACTION_DEAD_LETTER,
     "notification would be 140 bytes (limit 120)",
     {NULL}},
    {"audit.login",
     "k\x01",
     {NULL},
     "{}",
     "audit",
     K2R_SKIP_UNSAFE_CHARS,
     K2R_ACTION_DEAD_LETTER,
     NULL,
     {NULL}},
    {"audit.login",
     "\xc3\x28",
     {NULL},
     "{}",
     "audit",
     K2R_SKIP_UNSAFE_CHARS,
     K2R_ACTION_DEAD_LETTER,
     "id: invalid UTF-8 at byte 0",
     {NULL}},
    /* CloudEvents, structured (paths under data) and binary (ce_ headers). */
    {"ce",
     NULL,
     {CE_HDR},
     "{\"specversion\":\"1.0\",\"type\":\"order.created\",\"subject\":\"o-1\",\"id\":\"ev-9\","
     "\"data\":{\"order\":{\"amount\":42},\"a.b\":true}}",
     "ce",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"ce:order.created:o-1", "{\"id\":\"ev-9\",\"amount\":42,\"k\":true}"}},
    {"ce",
     NULL,
     {"ce_type", "order.paid", "ce_subject", "o-2", "ce_id", "ev-10"},
     "{\"order\":{\"amount\":5}}",
     "ce",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"ce:order.paid:o-2", "{\"id\":\"ev-10\",\"amount\":5}"}},
    /* stop: nothing of the record is published. */
    {"ce",
     NULL,
     {"ce_type", "order.paid"},
     "{}",
     "ce",
     K2R_SKIP_MISSING_FIELD,
     K2R_ACTION_STOP,
     "id (cloudevents:subject): missing",
     {NULL}},
    /* Globs; the default unsafe policy (reject); UTF-8 passes. */
    {"plain2",
     NULL,
     {NULL},
     "{\"t\":\"x\",\"i\":\"a:b\"}",
     "strict",
     K2R_SKIP_UNSAFE_CHARS,
     K2R_ACTION_SKIP,
     NULL,
     {NULL}},
    {"plain2",
     NULL,
     {NULL},
     "{\"t\":\"x\",\"i\":\"\\u00e9\"}",
     "strict",
     K2R_SKIP_NONE,
     K2R_ACTION_NONE,
     NULL,
     {"s:x:\xc3\xa9", "{\"x\":\"\xc3\xa9\"}"}},
    {"plain2",
     NULL,
     {NULL},
     "{\"t\":\"x\",\"i\":[1]}",
     "strict",
     K2R_SKIP_WRONG_TYPE,
     K2R_ACTION_SKIP,
     "id (i): expected a string or integer, found an array",
     {NULL}},
    {"other",
     NULL,
     {NULL},
     "{}",
     NULL,
     K2R_SKIP_NO_RULE,
     K2R_ACTION_SKIP,
     "no rule for topic other",
     {NULL}},
};

static void test_language_table(void) {
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *lcfg = NULL;
    k2r_rules_t *lrules =
        k2r_rules_parse("lang.yaml", lang_yaml, strlen(lang_yaml), NULL, &errs, &lcfg);
    k2r_buf_t out = {NULL, 0, 0};

    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lrules);
    for (size_t i = 0; i < sizeof(lang_cases) / sizeof(lang_cases[0]); i++) {
        const lang_case_t *c = &lang_cases[i];
        k2r_msgview_header_t hdrs[3];
        size_t nh = 0, npub = 0;
        k2r_msgview_t msg = {c->topic,
                             3,
                             5,
                             1700000000000,
                             c->key,
                             c->key ? strlen(c->key) : 0,
                             c->value,
                             strlen(c->value),
                             hdrs,
                             0,
                             K2R_MSGVIEW_TS_NONE};
        k2r_mapping_t m;

        for (; nh < 3 && c->headers[2 * nh]; nh++) {
            hdrs[nh].name = c->headers[2 * nh];
            hdrs[nh].value = c->headers[2 * nh + 1];
            hdrs[nh].value_len = strlen(c->headers[2 * nh + 1]);
        }
        msg.nheaders = nh;
        while (npub < 3 && c->publish[2 * npub])
            npub++;
        out.len = 0;
        CU_ASSERT_EQUAL_FATAL(k2r_rules_map(lrules, json, &msg, &out, &m), 0);
        if (m.skip != c->skip || m.action != c->action || m.npublish != npub)
            fprintf(stderr, "\nlang case %zu: %s/%s (%s), %zu publish(es)\n", i,
                    k2r_skip_name(m.skip), k2r_action_name(m.action), m.detail, m.npublish);
        CU_ASSERT_EQUAL(m.skip, c->skip);
        CU_ASSERT_EQUAL(m.action, c->action);
        if (c->rule) {
            CU_ASSERT(m.rule && strcmp(m.rule, c->rule) == 0);
        } else {
            CU_ASSERT_PTR_NULL(m.rule);
        }
        if (c->detail) {
            if (strcmp(m.detail, c->detail) != 0)
                fprintf(stderr, "\nlang case %zu: detail \"%s\"\n", i, m.detail);
            CU_ASSERT_STRING_EQUAL(m.detail, c->detail);
        }
        CU_ASSERT_EQUAL_FATAL(m.npublish, npub);
        for (size_t j = 0; j < npub; j++) {
            const char *ch = c->publish[2 * j], *msgb = c->publish[2 * j + 1];
            int ok = m.publish[j].channel_len == strlen(ch) &&
                     memcmp(out.data + m.publish[j].channel_off, ch, strlen(ch)) == 0 &&
                     m.publish[j].message_len == strlen(msgb) &&
                     memcmp(out.data + m.publish[j].message_off, msgb, strlen(msgb)) == 0;
            if (!ok)
                fprintf(stderr, "\nlang case %zu publish %zu: %.*s %.*s\n", i, j,
                        (int)m.publish[j].channel_len, out.data + m.publish[j].channel_off,
                        (int)m.publish[j].message_len, out.data + m.publish[j].message_off);
            CU_ASSERT(ok);
        }
        if (m.action == K2R_ACTION_STOP)
            CU_ASSERT_EQUAL(out.len, 0);
    }
    k2r_buf_free(&out);
    k2r_rules_destroy(lrules);
    k2r_config_destroy(lcfg);
}

/* Semantic errors of the language, each with its exact message. */
static void test_language_errors(void) {
    static const struct {
        const char *rules;
        const char *error;
    } errors[] = {
        {"  - {name: a, topic: \"^(x\", type: a, id: b}\n",
         "e.yaml:6:22: rules[0].topic: bad regular expression \"^(x\": Unmatched ( or \\("},
        {"  - {name: a, topic: t, type: a, id: b, channel: \"x:{org}\"}\n",
         "e.yaml:6:50: rules[0].channel: unknown variable {org} (known: {type}, {id})"},
        {"  - {name: a, topic: t, vars: {org: o}, channel: \"x:{ogr}\"}\n",
         "e.yaml:6:50: rules[0].channel: unknown variable {ogr} (did you mean {org}?)"},
        {"  - {name: a, topic: t, type: a, id: b, when: {tpye: x}}\n",
         "e.yaml:6:48: rules[0].when: unknown variable {tpye} (did you mean {type}?)"},
        {"  - {name: a, topic: t, type: {hedaer: X}, id: b}\n",
         "e.yaml:6:32: rules[0].type: unknown source kind \"hedaer\" (did you mean \"header\"?)"},
        {"  - {name: a, topic: t, type: {meta: size}, id: b}\n",
         "e.yaml:6:38: rules[0].type.meta: expected key, topic, partition, offset or timestamp, "
         "found \"size\""},
        {"  - {name: a, topic: t, type: {header: X, const: y}, id: b}\n",
         "e.yaml:6:43: rules[0].type: a source takes one of path, header, meta, const, "
         "cloudevents"},
        {"  - {name: a, topic: t, type: {default: x}, id: b}\n",
         "e.yaml:6:31: rules[0].type: a source needs one of path, header, meta, const, "
         "cloudevents"},
        {"  - {name: a, topic: t, type: {const: x, default: y}, id: b}\n",
         "e.yaml:6:31: rules[0].type: default makes no sense with const"},
        {"  - {name: a, topic: t, type: a, id: b, notification: [{v: {const: 1, var: type}}]}\n",
         "e.yaml:6:71: rules[0].notification[0]: a source takes one of path, header, meta, const, "
         "cloudevents, var"},
        {"  - {name: a, topic: t, type: {var: type}, id: b}\n",
         "e.yaml:6:32: rules[0].type: var reads a variable in notification fields only"},
        {"  - {name: a, topic: t, type: a, id: b, on_error: retry}\n",
         "e.yaml:6:51: rules[0].on_error: expected skip, dead-letter or stop; found \"retry\""},
        {"  - {name: a, topic: t, type: a, id: b, on_error: dead-letter}\n",
         "e.yaml:6:51: rules[0].on_error: dead-letter needs kafka.dead_letter_topic"},
        {"  - {name: a, topic: t, vars: {1x: a}, channel: c}\n",
         "e.yaml:6:32: rules[0].vars.1x: \"1x\" is not a variable name (letters, digits, _; not "
         "first a digit)"},
        {"  - {name: a, topic: t, channel: c, notification: [{v: {var: nope}}]}\n",
         "e.yaml:6:56: rules[0].notification[0]: unknown variable {nope} (no variables are "
         "defined)"},
        {"  - {name: a, topic: t, type: a, id: b, when: {type: {has: x}}}\n",
         "e.yaml:6:55: rules[0].when.type: unknown condition \"has\" (known: equals, not, in, "
         "not_in, exists)"},
        {"  - {name: a, topic: t, channel: c, message: m, notification: [x]}\n",
         "e.yaml:6:5: rules[0]: give notification or message, not both"},
        {"  - {name: a, topic: t}\n",
         "e.yaml:6:5: rules[0]: the default channel \"events:{type}:{id}\" needs `type` and `id`; "
         "set them or give channel:"},
        {"  - {name: a, topic: t, type: \"a\\\\\", id: b}\n",
         "e.yaml:6:31: rules[0].type: bad escape in path \"a\\\" (write \\. for a dot in a key, "
         "\\\\ for a backslash)"},
    };

    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        char yaml[1024];
        k2r_errors_t errs = {NULL, 0, 0};
        k2r_config_t *ecfg = NULL;
        k2r_rules_t *r;

        snprintf(yaml, sizeof(yaml),
                 "kafka:\n  brokers: b\n  group_id: g\n  topics: [t]\nrules:\n%s", errors[i].rules);
        r = k2r_rules_parse("e.yaml", yaml, strlen(yaml), NULL, &errs, &ecfg);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_PTR_NULL(ecfg);
        if (errs.count != 1 || strcmp(errs.lines[0], errors[i].error) != 0) {
            fprintf(stderr, "\nerror case %zu: want %s\n", i, errors[i].error);
            for (size_t j = 0; j < errs.count; j++)
                fprintf(stderr, "  got  %s\n", errs.lines[j]);
        }
        CU_ASSERT_EQUAL(errs.count, 1);
        if (errs.count)
            CU_ASSERT_STRING_EQUAL(errs.lines[0], errors[i].error);
        k2r_rules_destroy(r);
        k2r_errors_clear(&errs);
    }
}

int test_rules_register(void) {
    CU_pSuite s = CU_add_suite("rules", setup, teardown);

    if (!s || !CU_add_test(s, "records to channels and notifications", test_map_table) ||
        !CU_add_test(s, "mappings append to one buffer", test_map_appends) ||
        !CU_add_test(s, "channel length limit", test_channel_too_long) ||
        !CU_add_test(s, "check's one-line summaries", test_describe) ||
        !CU_add_test(s, "skip reason names", test_skip_names) ||
        !CU_add_test(s, "notifications byte for byte as jansson wrote them",
                     test_notification_bytes) ||
        !CU_add_test(s, "the language: sources, conditions, fan-out, policies",
                     test_language_table) ||
        !CU_add_test(s, "the language: semantic errors", test_language_errors))
        return CU_get_error();
    return 0;
}
