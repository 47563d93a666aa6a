/*
 * test_rules.c - records through the rules: the exact channel and the exact
 * notification bytes, or the exact skip reason, for each case of a table.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/config.h"
#include "k2r/record.h"
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
static k2r_record_t *rec;

static int setup(void) {
    k2r_errors_t errs = {NULL, 0, 0};

    cfg = k2r_config_parse("rules.yaml", rules_yaml, strlen(rules_yaml), NULL, &errs);
    rules = cfg ? k2r_rules_new(cfg, &errs) : NULL;
    rec = k2r_record_new();
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    k2r_errors_clear(&errs);
    return rules && rec ? 0 : 1;
}

static int teardown(void) {
    k2r_record_destroy(rec);
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
        k2r_msg_t msg = {c->topic, 0, (int64_t)i, -1, NULL, 0, c->value, strlen(c->value), NULL, 0};
        k2r_mapping_t m;

        out.len = 0;
        CU_ASSERT_EQUAL_FATAL(k2r_rules_map(rules, rec, &msg, &out, &m), 0);
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
        k2r_msg_t msg = {"github.events", 0, i, -1, NULL, 0, value, 0, NULL, 0};
        msg.value_len = (size_t)snprintf(value, sizeof(value),
                                         "{\"source_type\":\"user\",\"source_id\":\"u%d\"}", i);
        CU_ASSERT_EQUAL_FATAL(k2r_rules_map(rules, rec, &msg, &out, &m), 0);
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
        k2r_msg_t msg = {"github.events", 0, 0, -1, NULL, 0, value, (size_t)len, NULL, 0};
        CU_ASSERT_EQUAL(k2r_rules_map(rules, rec, &msg, &out, &m), 0);
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

int test_rules_register(void) {
    CU_pSuite s = CU_add_suite("rules", setup, teardown);

    if (!s || !CU_add_test(s, "records to channels and notifications", test_map_table) ||
        !CU_add_test(s, "mappings append to one buffer", test_map_appends) ||
        !CU_add_test(s, "channel length limit", test_channel_too_long) ||
        !CU_add_test(s, "check's one-line summaries", test_describe) ||
        !CU_add_test(s, "skip reason names", test_skip_names))
        return CU_get_error();
    return 0;
}
