/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config.c - libFuzzer target for the config loader and the rule
 * compiler: the input is a YAML file, given to k2r_rules_parse() as
 * "fuzz.yaml".
 *
 * What it holds the loader to: rules come back exactly when no error was
 * added, and the config with them; every error line names the file
 * ("fuzz.yaml:..."), so a user can find the place; and everything is released
 * (LeakSanitizer runs after each input). When a fuzzed config does compile,
 * the config is destroyed first (rules.h says the rules do not retain it),
 * then a few fixed records are mapped on the rules' own topics and checked
 * with the invariants in check.c, so the compiled form of unusual rules is
 * exercised too, not only their parsing.
 *
 * Environment overrides are not fuzzed (env is NULL), so nothing reads a
 * password file or the process environment: every ${env:NAME} is an unset
 * variable. A ${file:/path} reference is read as written, so a fuzzed path
 * may read a file of this machine: only a regular one, at most 64 KiB,
 * opened non-blocking, which changes nothing and cannot hang the target.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "k2r/rules.h"

#define FUZZ_NAME "fuzz.yaml"
/* Topics tried per compiled config: enough to reach several rules, few enough to stay fast. */
#define MAX_TOPICS 4

static const char record_json[] =
    "{\"id\":\"e1\",\"type\":\"push\",\"source_type\":\"github\",\"source_id\":42,"
    "\"kind\":\"pull_request\",\"action\":\"opened\",\"number\":7,\"seq\":1,"
    "\"organization\":{\"login\":\"acme\"},\"repository\":{\"full_name\":\"acme/widgets\"},"
    "\"labels\":[{\"name\":\"bug\"}],\"a\":{\"b\":[{\"c\":\"deep\"}]},\"a.b\":\"dotted\","
    "\"meta.id\":\"m1\",\"n\":1.5,\"t\":true,\"z\":null}";

static const k2r_msgview_header_t record_headers[] = {
    {"X-GitHub-Event", "push", 4}, {"ce_type", "com.example.created", 19},
    {"ce_id", "a-1", 3},           {"ce_source", "/src", 4},
    {"x-empty", NULL, 0},
};

/* What is kept of the config once it is destroyed. */
typedef struct kept_s {
    char **plain; /* names of rules that publish a `message:` string */
    size_t nplain;
    char *topics[MAX_TOPICS];
    size_t ntopics;
    size_t max_channel, max_message;
} kept_t;

static k2r_json_t *json;
static k2r_buf_t out;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    json = k2r_json_new();
    if (!json)
        abort();
    return 0;
}

static char *xstrdup(const char *s) {
    char *c = strdup(s);

    if (!c)
        abort();
    return c;
}

/* A topic a record can have: not a glob or a regex. */
static int literal_topic(const char *topic) {
    return topic && *topic && topic[0] != '^' && !strpbrk(topic, "*?[");
}

static void keep_topic(kept_t *k, const char *topic) {
    if (!literal_topic(topic) || k->ntopics == MAX_TOPICS)
        return;
    for (size_t i = 0; i < k->ntopics; i++)
        if (strcmp(k->topics[i], topic) == 0)
            return;
    k->topics[k->ntopics++] = xstrdup(topic);
}

static void keep(kept_t *k, const k2r_config_t *cfg) {
    memset(k, 0, sizeof(*k));
    k->max_channel =
        cfg->limits.max_channel_bytes > 0 ? (size_t)cfg->limits.max_channel_bytes : K2R_CHANNEL_MAX;
    k->max_message = cfg->limits.max_notification_bytes > 0
                         ? (size_t)cfg->limits.max_notification_bytes
                         : K2R_NOTIFICATION_MAX;
    k->plain = calloc(cfg->nrules + 1, sizeof(char *));
    if (!k->plain)
        abort();
    for (size_t i = 0; i < cfg->nrules; i++) {
        if (cfg->rules[i].message && cfg->rules[i].name)
            k->plain[k->nplain++] = xstrdup(cfg->rules[i].name);
        keep_topic(k, cfg->rules[i].topic);
    }
    for (size_t i = 0; i < cfg->kafka.ntopics; i++)
        keep_topic(k, cfg->kafka.topics[i]);
}

static void kept_free(kept_t *k) {
    for (size_t i = 0; i < k->nplain; i++)
        free(k->plain[i]);
    free(k->plain);
    for (size_t i = 0; i < k->ntopics; i++)
        free(k->topics[i]);
}

static int is_plain(const char *rule, void *ctx) {
    const kept_t *k = ctx;

    for (size_t i = 0; i < k->nplain; i++)
        if (strcmp(k->plain[i], rule) == 0)
            return 1;
    return 0;
}

/* Maps one fixed record on `topic` (value NULL: a tombstone) and checks the mapping. */
static void map_one(const k2r_rules_t *rules, kept_t *k, const char *topic, const char *value,
                    size_t value_len) {
    k2r_msgview_t msg = {topic,
                         0,
                         17,
                         1700000000000,
                         "key-1",
                         5,
                         value,
                         value_len,
                         record_headers,
                         sizeof(record_headers) / sizeof(record_headers[0]),
                         K2R_MSGVIEW_TS_NONE};
    /* A fuzzed template may hold any literal text, so channel bytes are not checked. */
    k2r_fuzz_limits_t lim = {k->max_channel, k->max_message, 0, 0, is_plain, k};
    k2r_mapping_t m;

    out.len = 0;
    if (k2r_rules_map(rules, json, &msg, &out, &m) != 0)
        abort();
    k2r_fuzz_check_mapping(&m, &out, &lim);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg = (k2r_config_t *)&errs; /* not NULL: the call must set it */
    k2r_rules_t *rules;
    kept_t k;

    rules = k2r_rules_parse(FUZZ_NAME, (const char *)data, size, NULL, &errs, &cfg);

    K2R_FUZZ_CHECK((rules != NULL) == (errs.count == 0), "rules %s with %zu error(s)%s%s",
                   rules ? "returned" : "refused", errs.count, errs.count ? ", the first: " : "",
                   errs.count ? errs.lines[0] : "");
    K2R_FUZZ_CHECK((cfg != NULL) == (rules != NULL), "config %p with rules %p", (void *)cfg,
                   (void *)rules);
    for (size_t i = 0; i < errs.count; i++) {
        K2R_FUZZ_CHECK(errs.lines[i] != NULL, "error line %zu is NULL", i);
        K2R_FUZZ_CHECK(strncmp(errs.lines[i], FUZZ_NAME ":", sizeof(FUZZ_NAME)) == 0,
                       "error line %zu does not name the file: %s", i, errs.lines[i]);
    }
    k2r_errors_clear(&errs);
    K2R_FUZZ_CHECK(errs.count == 0 && errs.lines == NULL, "k2r_errors_clear left lines");
    if (!rules)
        return 0;

    keep(&k, cfg);
    k2r_config_destroy(cfg); /* the rules must not borrow from it */
    cfg = NULL;

    for (size_t i = 0; i < k2r_rules_count(rules); i++) {
        char small[16], line[512];

        memset(small, 0x7f, sizeof(small));
        k2r_rules_describe(rules, i, small, sizeof(small));
        K2R_FUZZ_CHECK(memchr(small, '\0', sizeof(small)) != NULL, "describe overran 16 bytes");
        k2r_rules_describe(rules, i, line, sizeof(line));
        K2R_FUZZ_CHECK(memchr(line, '\0', sizeof(line)) != NULL, "describe is not terminated");
    }
    (void)k2r_rules_need_dead_letter(rules);

    for (size_t i = 0; i < k.ntopics; i++) {
        map_one(rules, &k, k.topics[i], record_json, sizeof(record_json) - 1);
        map_one(rules, &k, k.topics[i], "not json", 8);
        map_one(rules, &k, k.topics[i], NULL, 0);
    }
    kept_free(&k);
    k2r_rules_destroy(rules);
    return 0;
}
