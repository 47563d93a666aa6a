/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_map.c - libFuzzer target for k2r_rules_map(): arbitrary Kafka records
 * through a fixed set of rules.
 *
 * The rules are compiled once, from the YAML below, which uses as much of the
 * rule language as one file can: exact, glob and regex topics; variables from
 * paths (with defaults, array indexes and an escaped dot), headers, record
 * metadata, constants and CloudEvents attributes; every `when:` operator;
 * fan-out over more channels than K2R_FANOUT_MAX allows in total; a `message:`
 * rule; both `unsafe:` policies; all three `on_error:` policies; and
 * `continue: true`. Each input is cut into one record (the layout is described
 * at record_from_input()) and mapped twice into the same buffer: the second
 * time must give the same answer, appended after the first, which catches
 * state leaking between records and a mapper that clears the caller's buffer.
 * Every mapping is then held to the invariants in check.c, plus the ones only
 * this config allows: which rule may publish for which topic, and with which
 * channel prefix.
 *
 * It does not decide whether a record *should* have matched: the unit tests
 * do that with exact expectations.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "k2r/rules.h"
#include "k2r/utf8.h"

/* Kept small so that inputs of a few hundred bytes reach the limits. */
#define FUZZ_MAX_CHANNEL 128
#define FUZZ_MAX_MESSAGE 256

static const char config_yaml[] =
    "limits:\n"
    "  max_channel_bytes: 128\n"
    "  max_notification_bytes: 256\n"
    "kafka:\n"
    "  brokers: 127.0.0.1:9092\n"
    "  group_id: fuzz\n"
    "  topics: [t, app.orders, app.users, '^audit\\..*']\n"
    "  dead_letter_topic: fuzz.dead-letter\n"
    "redis:\n"
    "  url: redis://127.0.0.1:6379\n"
    "rules:\n"
    /* Fans out to two channels, then lets the later rules run too. */
    "  - name: push\n"
    "    topic: t\n"
    "    type: source_type\n"
    "    id: source_id\n"
    "    vars:\n"
    "      event: {header: X-GitHub-Event, default: none}\n"
    "      org: {path: organization.login, default: anon}\n"
    "    when:\n"
    "      event: push\n"
    "    channels: ['events:{type}:{id}', 'org:{org}:{event}']\n"
    "    notification: [id, type, source_id, {event: {var: event}},\n"
    "                   {repo: repository.full_name}, {key: {meta: key}}]\n"
    "    continue: true\n"
    /* Fourteen channels: with push and a later rule, more than K2R_FANOUT_MAX. */
    "  - name: fan\n"
    "    topic: t\n"
    "    type: {const: fan}\n"
    "    id: {header: x-fan}\n"
    "    when:\n"
    "      id: {exists: true}\n"
    "    channels: ['fan0:{id}', 'fan1:{id}', 'fan2:{id}', 'fan3:{id}', 'fan4:{id}',\n"
    "               'fan5:{id}', 'fan6:{id}', 'fan7:{id}', 'fan8:{id}', 'fan9:{id}',\n"
    "               'fan10:{id}', 'fan11:{id}', 'fan12:{id}', 'fan13:{type}:{id}']\n"
    "    notification: [{id: {var: id}}, {n: {const: 14}}]\n"
    "    on_error: skip\n"
    "    continue: true\n"
    "  - name: pr\n"
    "    topic: t\n"
    "    type: {path: kind, default: unknown}\n"
    "    id: number\n"
    "    vars:\n"
    "      action: action\n"
    "    when:\n"
    "      action: {in: [opened, closed, reopened]}\n"
    "      type: {not: ignored}\n"
    "    channel: 'pr:{type}:{id}:{action}'\n"
    "    notification: [number, {action: {var: action}}, {sender: sender.login},\n"
    "                   {first_label: labels.0.name}]\n"
    "    unsafe: escape\n"
    "    on_error: dead-letter\n"
    "  - name: ce\n"
    "    topic: t\n"
    "    type: {cloudevents: type}\n"
    "    id: {cloudevents: id}\n"
    "    vars:\n"
    "      src: {cloudevents: source, default: unknown}\n"
    "    when:\n"
    "      type: {exists: true}\n"
    "      src: {not_in: [blocked, spam]}\n"
    "    channel: 'ce:{type}:{id}'\n"
    "    notification: [{type: {var: type}}, {id: {var: id}}, {src: {var: src}},\n"
    "                   {subject: {cloudevents: subject, default: ''}},\n"
    "                   {time: {meta: timestamp}}, {partition: {meta: partition}}]\n"
    "    unsafe: reject\n"
    "    on_error: stop\n"
    "    continue: true\n"
    "  - name: catch-all\n"
    "    topic: t\n"
    "    type: {const: fallback}\n"
    "    id: {meta: offset}\n"
    "    vars:\n"
    "      k: {meta: key, default: nokey}\n"
    "      env: {const: 42}\n"
    "    channel: 'fallback:{id}:{k}:{env}'\n"
    "    notification: [{n: {const: 1}}, {k: {var: k}}, {dotted: 'a\\.b'}, {v: value}]\n"
    "    on_error: skip\n"
    /* A plain-string message: never parsed as JSON. */
    "  - name: plain\n"
    "    topic: 'app.*'\n"
    "    type: {const: order}\n"
    "    id: {meta: key}\n"
    "    vars:\n"
    "      part: {meta: partition}\n"
    "      off: {meta: offset}\n"
    "      tenant: {header: x-tenant, default: public}\n"
    "    channels: ['app:{tenant}:{type}:{id}', 'app:all', 'app:{{literal}}:{part}:{off}']\n"
    "    message: '{type} {id} at {part}/{off} for {tenant}'\n"
    "    unsafe: escape\n"
    "    on_error: dead-letter\n"
    "    continue: true\n"
    "  - name: app-json\n"
    "    topic: 'app.*'\n"
    "    type: {path: kind, default: thing}\n"
    "    id: {path: 'meta\\.id', default: 0}\n"
    "    vars:\n"
    "      deep: a.b.0.c\n"
    "    when:\n"
    "      deep: {exists: false}\n"
    "      type: {not_in: [skip-me]}\n"
    "    channel: 'app-json:{type}:{id}'\n"
    "    notification: [id, {topic: {meta: topic}}, {offset: {meta: offset}},\n"
    "                   {deep: a.b.0.c}, {ts: {meta: timestamp}}]\n"
    "    on_error: stop\n"
    /* More than 32 variables: the mapper's per-record scratch goes to the heap. */
    "  - name: audit\n"
    "    topic: '^audit\\.[0-9]+$'\n"
    "    type: {header: ce_type, default: audit}\n"
    "    id: seq\n"
    "    vars: {\n"
    "            v0: x.0, v1: x.1, v2: x.2, v3: x.3, v4: x.4, v5: x.5,\n"
    "            v6: x.6, v7: x.7, v8: x.8, v9: x.9, v10: x.10, v11: x.11,\n"
    "            v12: x.12, v13: x.13, v14: x.14, v15: x.15, v16: x.16, v17: x.17,\n"
    "            v18: x.18, v19: x.19, v20: x.20, v21: x.21, v22: x.22, v23: x.23,\n"
    "            v24: x.24, v25: x.25, v26: x.26, v27: x.27, v28: x.28, v29: x.29,\n"
    "            v30: x.30, v31: {path: x.31, default: none}, v32: x.32}\n"
    "    when:\n"
    "      type: {not: ignored}\n"
    "      v32: {not: stop}\n"
    "    channel: 'audit:{type}:{id}:{v31}'\n"
    "    on_error: dead-letter\n";

/*
 * What each rule may publish: for which topics, and channels of which shape.
 * A shape is the rule's channel template with every variable written {}: the
 * literal text must come out as written ({{ and }} as single braces) and each
 * variable as one or more bytes that are safe in a channel, in particular no
 * ':' (so subscribers can split on it), '%' only as %XX under `unsafe: escape`.
 */
typedef struct rule_expect_s {
    const char *name;
    int plain;  /* publishes a `message:` string, not JSON */
    int escape; /* unsafe: escape */
    int (*takes)(const char *topic);
    const char *const *shapes; /* NULL-terminated */
} rule_expect_t;

static int topic_t(const char *topic) {
    return strcmp(topic, "t") == 0;
}

static int topic_app(const char *topic) {
    return strncmp(topic, "app.", 4) == 0;
}

static int topic_audit(const char *topic) {
    const char *p = topic + 6;

    if (strncmp(topic, "audit.", 6) != 0 || !*p)
        return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

static const char *const push_shapes[] = {"events:{}:{}", "org:{}:{}", NULL};
static const char *const fan_shapes[] = {
    "fan0:{}", "fan1:{}", "fan2:{}",  "fan3:{}",  "fan4:{}",  "fan5:{}",     "fan6:{}", "fan7:{}",
    "fan8:{}", "fan9:{}", "fan10:{}", "fan11:{}", "fan12:{}", "fan13:{}:{}", NULL};
static const char *const pr_shapes[] = {"pr:{}:{}:{}", NULL};
static const char *const ce_shapes[] = {"ce:{}:{}", NULL};
static const char *const catch_all_shapes[] = {"fallback:{}:{}:{}", NULL};
static const char *const plain_shapes[] = {"app:{}:{}:{}", "app:all", "app:{{literal}}:{}:{}",
                                           NULL};
static const char *const app_json_shapes[] = {"app-json:{}:{}", NULL};
static const char *const audit_shapes[] = {"audit:{}:{}:{}", NULL};

static const rule_expect_t expects[] = {
    {"push", 0, 0, topic_t, push_shapes},
    {"fan", 0, 0, topic_t, fan_shapes},
    {"pr", 0, 1, topic_t, pr_shapes},
    {"ce", 0, 0, topic_t, ce_shapes},
    {"catch-all", 0, 0, topic_t, catch_all_shapes},
    {"plain", 1, 1, topic_app, plain_shapes},
    {"app-json", 0, 0, topic_app, app_json_shapes},
    {"audit", 0, 0, topic_audit, audit_shapes},
};
#define NEXPECTS (sizeof(expects) / sizeof(expects[0]))

static const rule_expect_t *expect_of(const char *rule) {
    for (size_t i = 0; i < NEXPECTS; i++)
        if (rule && strcmp(expects[i].name, rule) == 0)
            return &expects[i];
    return NULL;
}

static int hex_upper(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* Bytes docs/rules.md keeps out of a value in a channel (':' and '\\' besides check.c's). */
static int value_byte_ok(unsigned char c) {
    return c >= 0x20 && c != 0x7f && !strchr(" *?[]:\\", c);
}

/* Whether channel[0..len) has the given shape (see rule_expect_t). */
static int shape_matches(const char *shape, const char *channel, size_t len, int escape) {
    const unsigned char *p = (const unsigned char *)channel, *end = p + len;

    while (*shape) {
        if (shape[0] == '{' && shape[1] == '}') {
            const unsigned char *v = p;
            while (p < end && *p != ':') {
                size_t n = k2r_utf8_char(p, (size_t)(end - p));
                if (n == 0 || (n == 1 && !value_byte_ok(*p)))
                    return 0;
                if (escape && *p == '%' && (end - p < 3 || !hex_upper(p[1]) || !hex_upper(p[2])))
                    return 0;
                p += n;
            }
            if (p == v)
                return 0; /* a variable is never empty in a channel */
            shape += 2;
            continue;
        }
        if ((shape[0] == '{' && shape[1] == '{') || (shape[0] == '}' && shape[1] == '}'))
            shape++;
        if (p == end || *p != (unsigned char)*shape)
            return 0;
        p++;
        shape++;
    }
    return p == end;
}

static int is_plain(const char *rule, void *ctx) {
    const rule_expect_t *e = expect_of(rule);

    (void)ctx;
    return e && e->plain;
}

/* The topics an input can pick; "t" twice because most rules take it. "other" and
 * "app" match no rule; "audit.x" is taken by kafka.topics but not by the rule's regex. */
static const char *const topics[8] = {"t",        "t",       "app.orders", "app.users",
                                      "audit.42", "audit.x", "other",      "app"};

/* Header names an input can pick by number; 9 means "read a raw name". */
static const char *const header_names[9] = {"X-GitHub-Event", "x-fan",     "ce_type",
                                            "ce_id",          "ce_source", "ce_subject",
                                            "ce_specversion", "x-tenant",  "content-type"};

static k2r_rules_t *rules;
static k2r_json_t *json;
static k2r_buf_t out;
static int verbose; /* K2R_FUZZ_VERBOSE set: print each mapping (for reading a crash) */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg = NULL;

    (void)argc;
    (void)argv;
    rules =
        k2r_rules_parse("fuzz_map.yaml", config_yaml, sizeof(config_yaml) - 1, NULL, &errs, &cfg);
    if (!rules) {
        /* The config above no longer compiles: the fuzzer would test nothing. */
        fprintf(stderr, "fuzz_map: the embedded rules do not compile:\n");
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "  %s\n", errs.lines[i]);
        abort();
    }
    K2R_FUZZ_CHECK(errs.count == 0, "rules compiled with %zu errors", errs.count);
    K2R_FUZZ_CHECK(cfg->limits.max_channel_bytes == FUZZ_MAX_CHANNEL &&
                       cfg->limits.max_notification_bytes == FUZZ_MAX_MESSAGE,
                   "limits read as %d and %d", cfg->limits.max_channel_bytes,
                   cfg->limits.max_notification_bytes);
    K2R_FUZZ_CHECK(k2r_rules_count(rules) == NEXPECTS, "%zu rules", k2r_rules_count(rules));
    K2R_FUZZ_CHECK(k2r_rules_need_dead_letter(rules) == 1, "dead letter not needed");
    k2r_config_destroy(cfg);
    k2r_errors_clear(&errs);
    json = k2r_json_new();
    if (!json)
        abort();
    verbose = getenv("K2R_FUZZ_VERBOSE") != NULL;
    return 0;
}

static void print_mapping(const k2r_mapping_t *m, const k2r_msgview_t *msg) {
    fprintf(stderr, "topic %s: skip %s, action %s, rule %s, detail \"%s\", %zu publish\n",
            msg->topic, k2r_skip_name(m->skip), k2r_action_name(m->action), m->rule ? m->rule : "-",
            m->skip ? m->detail : "", m->npublish);
    for (size_t i = 0; i < m->npublish && i < K2R_FANOUT_MAX; i++) {
        fprintf(stderr, "  [%s]\n", m->publish[i].rule);
        k2r_fuzz_dump("channel", out.data + m->publish[i].channel_off, m->publish[i].channel_len);
        k2r_fuzz_dump("message", out.data + m->publish[i].message_off, m->publish[i].message_len);
    }
}

/* A copy of exactly n bytes on the heap, so that AddressSanitizer sees any read past it. */
static char *exact_copy(const uint8_t *p, size_t n) {
    char *c = malloc(n ? n : 1);

    if (!c)
        abort();
    if (n)
        memcpy(c, p, n);
    return c;
}

typedef struct input_s {
    const uint8_t *p;
    size_t n;
} input_t;

static uint8_t take_byte(input_t *in) {
    uint8_t b = 0;

    if (in->n) {
        b = *in->p++;
        in->n--;
    }
    return b;
}

/* Up to `want` bytes (fewer when the input runs out). */
static const uint8_t *take(input_t *in, size_t want, size_t *got) {
    const uint8_t *p = in->p;

    *got = want < in->n ? want : in->n;
    in->p += *got;
    in->n -= *got;
    return p;
}

/* The heap copies a record borrows, released after each input. */
typedef struct owned_s {
    char *key;
    char *names[3];
    char *values[3];
    char *value;
} owned_t;

/*
 * Cuts an input into a record:
 *
 *   byte 0      bits 0-2 topic (topics[]), bit 3 has a key, bit 4 tombstone (NULL value),
 *               bit 5 no timestamp, bits 6-7 number of headers (0-3)
 *   [key]       one length byte, then that many bytes
 *   headers     per header: a name byte (n % 10 < 9: header_names[n % 10]; 9: one length
 *               byte and a raw name, cut at a NUL), then one length byte (0xff: a header
 *               without a value) and the value
 *   rest        the record value
 */
static void record_from_input(const uint8_t *data, size_t size, k2r_msgview_t *msg,
                              k2r_msgview_header_t *headers, owned_t *own) {
    input_t in = {data, size};
    uint8_t b0 = take_byte(&in);
    size_t n;
    const uint8_t *p;

    memset(msg, 0, sizeof(*msg));
    memset(own, 0, sizeof(*own));
    msg->topic = topics[b0 & 7];
    msg->partition = 3;
    msg->offset = (int64_t)size;
    msg->timestamp = (b0 & 0x20) ? -1 : 1700000000000 + b0;
    if (b0 & 0x08) {
        p = take(&in, take_byte(&in), &n);
        own->key = exact_copy(p, n);
        msg->key = own->key;
        msg->key_len = n;
    }
    msg->nheaders = (size_t)(b0 >> 6);
    msg->headers = headers;
    for (size_t i = 0; i < msg->nheaders; i++) {
        uint8_t sel = take_byte(&in), vlen;

        if (sel % 10 < 9) {
            headers[i].name = header_names[sel % 10];
        } else {
            p = take(&in, take_byte(&in), &n);
            own->names[i] = calloc(1, n + 1);
            if (!own->names[i])
                abort();
            memcpy(own->names[i], p, n);
            headers[i].name = own->names[i];
        }
        vlen = take_byte(&in);
        if (vlen == 0xff) {
            headers[i].value = NULL;
            headers[i].value_len = 0;
        } else {
            p = take(&in, vlen, &n);
            own->values[i] = exact_copy(p, n);
            headers[i].value = own->values[i];
            headers[i].value_len = n;
        }
    }
    if (!(b0 & 0x10)) {
        own->value = exact_copy(in.p, in.n);
        msg->value = own->value;
        msg->value_len = in.n;
    }
}

static void owned_free(owned_t *own) {
    free(own->key);
    for (size_t i = 0; i < 3; i++) {
        free(own->names[i]);
        free(own->values[i]);
    }
    free(own->value);
}

/* The checks only this config makes possible: rule names, topics and channel prefixes. */
static void check_rules(const k2r_mapping_t *m, const k2r_msgview_t *msg) {
    if (strcmp(msg->topic, "other") == 0 || strcmp(msg->topic, "app") == 0 ||
        strcmp(msg->topic, "audit.x") == 0)
        K2R_FUZZ_CHECK(m->npublish == 0 && m->skip == K2R_SKIP_NO_RULE,
                       "topic %s: %zu published, skip %s", msg->topic, m->npublish,
                       k2r_skip_name(m->skip));
    if (m->rule)
        K2R_FUZZ_CHECK(expect_of(m->rule) != NULL, "mapping.rule \"%s\" is no rule", m->rule);
    for (size_t i = 0; i < m->npublish && i < K2R_FANOUT_MAX; i++) {
        const rule_expect_t *e = expect_of(m->publish[i].rule);
        const char *channel = out.data + m->publish[i].channel_off;
        size_t clen = m->publish[i].channel_len;
        int shaped = 0;

        K2R_FUZZ_CHECK(e != NULL, "publish[%zu].rule is no rule", i);
        K2R_FUZZ_CHECK(e->takes(msg->topic), "rule %s published for topic %s", e->name, msg->topic);
        for (size_t j = 0; e->shapes[j] && !shaped; j++)
            shaped = shape_matches(e->shapes[j], channel, clen, e->escape);
        if (!shaped)
            k2r_fuzz_dump("channel", channel, clen);
        K2R_FUZZ_CHECK(shaped, "rule %s: the channel has none of its templates' shapes", e->name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    k2r_msgview_header_t headers[3];
    k2r_msgview_t msg;
    owned_t own;
    k2r_mapping_t m1, m2;
    k2r_fuzz_limits_t lim = {FUZZ_MAX_CHANNEL, FUZZ_MAX_MESSAGE, 0, 1, is_plain, NULL};
    size_t len1;

    record_from_input(data, size, &msg, headers, &own);

    out.len = 0;
    memset(&m1, 0xa5, sizeof(m1)); /* garbage in: the mapper must set every field it promises */
    if (k2r_rules_map(rules, json, &msg, &out, &m1) != 0)
        abort(); /* out of memory: not what this target looks for */
    if (verbose)
        print_mapping(&m1, &msg);
    k2r_fuzz_check_mapping(&m1, &out, &lim);
    check_rules(&m1, &msg);

    /* The same record again, appended after the first mapping's bytes. */
    len1 = out.len;
    lim.base = len1;
    memset(&m2, 0x5a, sizeof(m2));
    if (k2r_rules_map(rules, json, &msg, &out, &m2) != 0)
        abort();
    k2r_fuzz_check_mapping(&m2, &out, &lim);
    K2R_FUZZ_CHECK(m1.skip == m2.skip && m1.action == m2.action && m1.npublish == m2.npublish &&
                       m1.rule == m2.rule &&
                       (m1.skip == K2R_SKIP_NONE || strcmp(m1.detail, m2.detail) == 0),
                   "mapping the same record twice differs: %s/%s/%zu then %s/%s/%zu",
                   k2r_skip_name(m1.skip), k2r_action_name(m1.action), m1.npublish,
                   k2r_skip_name(m2.skip), k2r_action_name(m2.action), m2.npublish);
    for (size_t i = 0; i < m1.npublish && i < K2R_FANOUT_MAX; i++) {
        K2R_FUZZ_CHECK(
            m1.publish[i].rule == m2.publish[i].rule &&
                m1.publish[i].channel_len == m2.publish[i].channel_len &&
                m1.publish[i].message_len == m2.publish[i].message_len &&
                memcmp(out.data + m1.publish[i].channel_off, out.data + m2.publish[i].channel_off,
                       m1.publish[i].channel_len) == 0 &&
                memcmp(out.data + m1.publish[i].message_off, out.data + m2.publish[i].message_off,
                       m1.publish[i].message_len) == 0,
            "publish[%zu] differs the second time", i);
    }
    owned_free(&own);
    return 0;
}
