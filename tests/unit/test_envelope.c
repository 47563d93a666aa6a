/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_envelope.c - JSON lines into records through k2r_envelope_parse: every
 * field in every accepted form with the exact k2r_msgview_t it yields (defaults,
 * key and value bytes, headers in order), and every refused line with the
 * exact reason. Pure: no files, no sockets.
 */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "k2r/envelope.h"
#include "suites.h"

/* Bytes with their length, so that NUL bytes and empty strings can be expected. */
#define B(s) s, sizeof(s) - 1
#define NONE NULL, 0

#define MAX_HEADERS 4

typedef struct header_want_s {
    const char *name;
    const char *value; /* NULL: a header without a value */
    size_t value_len;
} header_want_t;

typedef struct good_case_s {
    const char *line;
    const char *topic; /* NULL: the line names none */
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    const char *key; /* NULL: no key */
    size_t key_len;
    const char *value; /* NULL: a tombstone */
    size_t value_len;
    size_t nheaders;
    header_want_t headers[MAX_HEADERS];
} good_case_t;

typedef struct bad_case_s {
    const char *line;
    const char *errstr;
} bad_case_t;

static const good_case_t good[] = {
    /* Defaults: only the value is given. */
    {"{\"value\":\"x\"}", NULL, 0, 0, -1, NONE, B("x"), 0, {{NULL, NONE}}},
    {"  {\"value\" : \"x\"}  ", NULL, 0, 0, -1, NONE, B("x"), 0, {{NULL, NONE}}},
    /* Every field. */
    {"{\"topic\":\"github.events\",\"partition\":3,\"offset\":42,\"timestamp\":1700000000000,"
     "\"key\":\"octocat\",\"headers\":{\"X-GitHub-Event\":\"push\",\"trace\":null},"
     "\"value\":{\"id\":\"1\",\"type\":\"push\"}}",
     "github.events",
     3,
     42,
     1700000000000,
     B("octocat"),
     B("{\"id\":\"1\",\"type\":\"push\"}"),
     2,
     {{"X-GitHub-Event", B("push")}, {"trace", NONE}}},
    /* Fields in any order. */
    {"{\"value\":1,\"offset\":7,\"topic\":\"t\"}", "t", 0, 7, -1, NONE, B("1"), 0, {{NULL, NONE}}},
    /* Limits of the coordinates. */
    {"{\"partition\":2147483647,\"offset\":9223372036854775807,\"timestamp\":-1,\"value\":null}",
     NULL,
     INT32_MAX,
     INT64_MAX,
     -1,
     NONE,
     NONE,
     0,
     {{NULL, NONE}}},
    {"{\"partition\":0,\"offset\":0,\"timestamp\":0,\"value\":null}",
     NULL,
     0,
     0,
     0,
     NONE,
     NONE,
     0,
     {{NULL, NONE}}},
    /* Keys: null is no key, "" is an empty key, bytes are kept exactly. */
    {"{\"key\":null,\"value\":1}", NULL, 0, 0, -1, NONE, B("1"), 0, {{NULL, NONE}}},
    {"{\"key\":\"\",\"value\":1}", NULL, 0, 0, -1, B(""), B("1"), 0, {{NULL, NONE}}},
    {"{\"key\":\"a\\u0000b\\u00e9\",\"value\":1}",
     NULL,
     0,
     0,
     -1,
     B("a\0b\xc3\xa9"),
     B("1"),
     0,
     {{NULL, NONE}}},
    /* Values: any JSON value is serialised compactly, keys in their order. */
    {"{\"value\": { \"b\" : 1, \"a\" : [ 1, 2, {} ], \"c\" : null } }",
     NULL,
     0,
     0,
     -1,
     NONE,
     B("{\"b\":1,\"a\":[1,2,{}],\"c\":null}"),
     0,
     {{NULL, NONE}}},
    {"{\"value\":[ \"x\", true, false ]}",
     NULL,
     0,
     0,
     -1,
     NONE,
     B("[\"x\",true,false]"),
     0,
     {{NULL, NONE}}},
    {"{\"value\":[]}", NULL, 0, 0, -1, NONE, B("[]"), 0, {{NULL, NONE}}},
    {"{\"value\":{}}", NULL, 0, 0, -1, NONE, B("{}"), 0, {{NULL, NONE}}},
    {"{\"value\":-7}", NULL, 0, 0, -1, NONE, B("-7"), 0, {{NULL, NONE}}},
    {"{\"value\":true}", NULL, 0, 0, -1, NONE, B("true"), 0, {{NULL, NONE}}},
    {"{\"value\":1.5}", NULL, 0, 0, -1, NONE, B("1.5"), 0, {{NULL, NONE}}},
    /* Reals are written as jansson writes them: 17 significant digits, ".0" added. */
    {"{\"value\":0.1}", NULL, 0, 0, -1, NONE, B("0.10000000000000001"), 0, {{NULL, NONE}}},
    {"{\"value\":1e3}", NULL, 0, 0, -1, NONE, B("1000.0"), 0, {{NULL, NONE}}},
    /* Strings inside a value are re-escaped: raw UTF-8, control bytes escaped. */
    {"{\"value\":{\"v\":\"\\u00e9\\/\\n\\u0000\"}}",
     NULL,
     0,
     0,
     -1,
     NONE,
     B("{\"v\":\"\xc3\xa9/\\n\\u0000\"}"),
     0,
     {{NULL, NONE}}},
    /* A string value is the record's bytes as they are. */
    {"{\"value\":\"not json\"}", NULL, 0, 0, -1, NONE, B("not json"), 0, {{NULL, NONE}}},
    {"{\"value\":\"{\\\"id\\\": 1}\"}", NULL, 0, 0, -1, NONE, B("{\"id\": 1}"), 0, {{NULL, NONE}}},
    {"{\"value\":\"\"}", NULL, 0, 0, -1, NONE, B(""), 0, {{NULL, NONE}}},
    {"{\"value\":\"a\\u0000b\\t\\u00e9\\ud83d\\ude00\"}",
     NULL,
     0,
     0,
     -1,
     NONE,
     B("a\0b\t\xc3\xa9\xf0\x9f\x98\x80"),
     0,
     {{NULL, NONE}}},
    /* null is a tombstone. */
    {"{\"value\":null}", NULL, 0, 0, -1, NONE, NONE, 0, {{NULL, NONE}}},
    /* Headers: in the order of the object, null is a header without a value. */
    {"{\"headers\":{\"b\":\"1\",\"a\":\"2\",\"c\":null,\"A\":\"\"},\"value\":1}",
     NULL,
     0,
     0,
     -1,
     NONE,
     B("1"),
     4,
     {{"b", B("1")}, {"a", B("2")}, {"c", NONE}, {"A", B("")}}},
    {"{\"headers\":{\"bin\":\"x\\u0000y\",\"\":\"empty name\"},\"value\":1}",
     NULL,
     0,
     0,
     -1,
     NONE,
     B("1"),
     2,
     {{"bin", B("x\0y")}, {"", B("empty name")}}},
    {"{\"headers\":{},\"value\":1}", NULL, 0, 0, -1, NONE, B("1"), 0, {{NULL, NONE}}},
};

#define EXPECTED_KEYS "(expected topic, partition, offset, timestamp, key, headers or value)"

static const bad_case_t bad[] = {
    /* Not JSON. */
    {"not json", "not JSON: invalid token near 'not'"},
    {"", "not JSON: unexpected token near end of file"},
    {"   ", "not JSON: unexpected token near end of file"},
    {"{\"value\":1", "not JSON: '}' expected near end of file"},
    {"{\"value\":1} x", "not JSON: end of file expected near 'x'"},
    {"{\"value\":1}{}", "not JSON: end of file expected near '{'"},
    {"{\"value\":\"\xff\"}", "not JSON: unable to decode byte 0xff near '\"'"},
    {"{\"value\":\"\\ud800\"}", "not JSON: invalid Unicode '\\uD800' near '\"\\ud800\"'"},
    {"{\"value\":99999999999999999999}", "not JSON: too big integer near '99999999999999999999'"},
    {"{\"value\":1,\"value\":2}", "not JSON: duplicate object key near '\"value\"'"},
    {"{\"value\":{\"a\":1,\"a\":2}}", "not JSON: duplicate object key near '\"a\"'"},
    {"{\"headers\":{\"a\\u0000\":\"x\"},\"value\":1}",
     "not JSON: NUL byte in object key not supported near '\"a\\u0000\"'"},
    /* Not an object. */
    {"[1]", "expected an object, found array"},
    {"42", "expected an object, found number"},
    {"\"value\"", "expected an object, found string"},
    {"null", "expected an object, found null"},
    {"true", "expected an object, found boolean"},
    /* The value is required. */
    {"{}", "value: missing (null for a tombstone)"},
    {"{\"topic\":\"t\",\"key\":\"k\"}", "value: missing (null for a tombstone)"},
    /* Unknown keys. */
    {"{\"value\":1,\"header\":{}}", "unknown key \"header\" " EXPECTED_KEYS},
    {"{\"Value\":1}", "unknown key \"Value\" " EXPECTED_KEYS},
    {"{\"payload\":\"x\",\"value\":1}", "unknown key \"payload\" " EXPECTED_KEYS},
    /* topic */
    {"{\"topic\":1,\"value\":1}", "topic: expected a string, found number"},
    {"{\"topic\":null,\"value\":1}", "topic: expected a string, found null"},
    {"{\"topic\":[\"t\"],\"value\":1}", "topic: expected a string, found array"},
    {"{\"topic\":\"\",\"value\":1}", "topic: empty"},
    {"{\"topic\":\"a\\u0000b\",\"value\":1}", "topic: contains a NUL byte"},
    /* partition */
    {"{\"partition\":\"0\",\"value\":1}", "partition: expected an integer, found string"},
    {"{\"partition\":1.0,\"value\":1}", "partition: expected an integer, found number"},
    {"{\"partition\":null,\"value\":1}", "partition: expected an integer, found null"},
    {"{\"partition\":-1,\"value\":1}", "partition: -1 is out of range (0-2147483647)"},
    {"{\"partition\":2147483648,\"value\":1}",
     "partition: 2147483648 is out of range (0-2147483647)"},
    /* offset */
    {"{\"offset\":\"1\",\"value\":1}", "offset: expected an integer, found string"},
    {"{\"offset\":false,\"value\":1}", "offset: expected an integer, found boolean"},
    {"{\"offset\":-1,\"value\":1}", "offset: -1 is out of range (0-9223372036854775807)"},
    /* timestamp */
    {"{\"timestamp\":{},\"value\":1}", "timestamp: expected an integer, found object"},
    {"{\"timestamp\":1.7e12,\"value\":1}", "timestamp: expected an integer, found number"},
    {"{\"timestamp\":-2,\"value\":1}",
     "timestamp: -2 is out of range (-1 for unknown, else ms since the epoch)"},
    /* key */
    {"{\"key\":1,\"value\":1}", "key: expected a string or null, found number"},
    {"{\"key\":{},\"value\":1}", "key: expected a string or null, found object"},
    {"{\"key\":[],\"value\":1}", "key: expected a string or null, found array"},
    {"{\"key\":true,\"value\":1}", "key: expected a string or null, found boolean"},
    /* headers */
    {"{\"headers\":[\"a\",\"b\"],\"value\":1}", "headers: expected an object, found array"},
    {"{\"headers\":null,\"value\":1}", "headers: expected an object, found null"},
    {"{\"headers\":\"a=b\",\"value\":1}", "headers: expected an object, found string"},
    {"{\"headers\":{\"a\":\"x\",\"b\":1},\"value\":1}",
     "headers[\"b\"]: expected a string or null, found number"},
    {"{\"headers\":{\"a\":{}},\"value\":1}",
     "headers[\"a\"]: expected a string or null, found object"},
    {"{\"headers\":{\"a\":[\"x\"]},\"value\":1}",
     "headers[\"a\"]: expected a string or null, found array"},
    /* The first problem in the order of the line is the one reported. */
    {"{\"partition\":\"x\",\"topic\":1,\"value\":1}",
     "partition: expected an integer, found string"},
    {"{\"topic\":1,\"partition\":\"x\",\"value\":1}", "topic: expected a string, found number"},
    {"{\"key\":1}", "key: expected a string or null, found number"},
};

static int env_is_zero(const k2r_envelope_t *env) {
    const k2r_msgview_t *m = &env->msg;

    return !env->storage && !env->headers && !m->topic && m->partition == 0 && m->offset == 0 &&
           m->timestamp == 0 && !m->key && m->key_len == 0 && !m->value && m->value_len == 0 &&
           !m->headers && m->nheaders == 0;
}

/* Compares bytes that may be NULL (absent) or hold NUL bytes; prints the case on a mismatch. */
static void check_bytes(const char *line, const char *what, const char *got, size_t got_len,
                        const char *want, size_t want_len) {
    if ((want == NULL) != (got == NULL) ||
        (want && (got_len != want_len || memcmp(got, want, want_len) != 0))) {
        fprintf(stderr, "\n  %s: %s: got %s%.*s%s (%zu bytes), want %s%.*s%s (%zu bytes)\n", line,
                what, got ? "\"" : "", got ? (int)got_len : 4, got ? got : "NULL", got ? "\"" : "",
                got_len, want ? "\"" : "", want ? (int)want_len : 4, want ? want : "NULL",
                want ? "\"" : "", want_len);
        CU_FAIL("wrong bytes");
    }
}

static void check_good(const good_case_t *c, const k2r_envelope_t *env) {
    const k2r_msgview_t *m = &env->msg;

    check_bytes(c->line, "topic", m->topic, m->topic ? strlen(m->topic) : 0, c->topic,
                c->topic ? strlen(c->topic) : 0);
    if (m->partition != c->partition || m->offset != c->offset || m->timestamp != c->timestamp) {
        fprintf(stderr, "\n  %s: partition %d offset %lld timestamp %lld\n", c->line,
                (int)m->partition, (long long)m->offset, (long long)m->timestamp);
        CU_FAIL("wrong partition, offset or timestamp");
    }
    check_bytes(c->line, "key", m->key, m->key_len, c->key, c->key_len);
    check_bytes(c->line, "value", m->value, m->value_len, c->value, c->value_len);
    /* Strings are NUL-terminated too, so a topic or header name can be used as a C string. */
    if (m->value)
        CU_ASSERT_EQUAL(m->value[m->value_len], '\0');
    if (m->nheaders != c->nheaders) {
        fprintf(stderr, "\n  %s: %zu headers, want %zu\n", c->line, m->nheaders, c->nheaders);
        CU_FAIL("wrong header count");
        return;
    }
    CU_ASSERT((m->nheaders == 0) == (m->headers == NULL));
    for (size_t i = 0; i < m->nheaders; i++) {
        const k2r_msgview_header_t *h = &m->headers[i];
        char what[64];

        snprintf(what, sizeof(what), "header %zu name", i);
        check_bytes(c->line, what, h->name, strlen(h->name), c->headers[i].name,
                    strlen(c->headers[i].name));
        snprintf(what, sizeof(what), "header %zu value", i);
        check_bytes(c->line, what, h->value, h->value_len, c->headers[i].value,
                    c->headers[i].value_len);
    }
}

static void test_accepted(void) {
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const good_case_t *c = &good[i];
        k2r_envelope_t env;
        char errstr[256] = "";
        int rc;

        memset(&env, 0, sizeof(env));
        rc = k2r_envelope_parse(c->line, strlen(c->line), &env, errstr, sizeof(errstr));
        if (rc != K2R_ENVELOPE_OK) {
            fprintf(stderr, "\n  %s: refused (%d): %s\n", c->line, rc, errstr);
            CU_FAIL("accepted form refused");
            continue;
        }
        check_good(c, &env);
        k2r_envelope_clear(&env);
        CU_ASSERT(env_is_zero(&env));
    }
}

static void test_refused(void) {
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const bad_case_t *c = &bad[i];
        k2r_envelope_t env;
        char errstr[256] = "";
        int rc;

        memset(&env, 0, sizeof(env));
        rc = k2r_envelope_parse(c->line, strlen(c->line), &env, errstr, sizeof(errstr));
        if (rc != K2R_ENVELOPE_INVALID) {
            fprintf(stderr, "\n  %s: returned %d, want \"%s\"\n", c->line, rc, c->errstr);
            CU_FAIL("refused form not refused");
            k2r_envelope_clear(&env);
            continue;
        }
        if (strcmp(errstr, c->errstr) != 0) {
            fprintf(stderr, "\n  %s: errstr \"%s\", want \"%s\"\n", c->line, errstr, c->errstr);
            CU_FAIL("wrong errstr");
        }
        /* A refused line leaves nothing to release, so callers may clear anyway. */
        CU_ASSERT(env_is_zero(&env));
    }
}

/* Only `len` bytes are read: the line need not be NUL-terminated, and may hold NUL bytes. */
static void test_length(void) {
    static const char buf[] = "{\"value\":\"ab\"}{\"value\":\"garbage\"}";
    static const char nul[] = "{\"value\":1}\0{}";
    static const char nul_in_string[] = "{\"value\":\"a\0b\"}";
    k2r_envelope_t env;
    char errstr[256] = "";

    memset(&env, 0, sizeof(env));
    CU_ASSERT_EQUAL(k2r_envelope_parse(buf, 14, &env, errstr, sizeof(errstr)), K2R_ENVELOPE_OK);
    check_bytes("len 14", "value", env.msg.value, env.msg.value_len, B("ab"));
    CU_ASSERT_EQUAL(k2r_envelope_parse(nul, sizeof(nul) - 1, &env, errstr, sizeof(errstr)),
                    K2R_ENVELOPE_INVALID);
    CU_ASSERT_STRING_EQUAL(errstr, "not JSON: NUL byte at offset 11");
    CU_ASSERT(env_is_zero(&env));
    CU_ASSERT_EQUAL(
        k2r_envelope_parse(nul_in_string, sizeof(nul_in_string) - 1, &env, errstr, sizeof(errstr)),
        K2R_ENVELOPE_INVALID);
    CU_ASSERT_STRING_EQUAL(errstr, "not JSON: NUL byte at offset 11");
}

/* One envelope reused line after line: each parse releases the last (ASan sees any leak). */
static void test_reuse(void) {
    static const char *const lines[] = {
        "{\"topic\":\"a\",\"key\":\"k\",\"headers\":{\"h\":\"v\"},\"value\":{\"x\":1}}",
        "{\"headers\":{\"h1\":null,\"h2\":\"w\"},\"value\":\"s\"}",
        "{\"value\":1,\"bogus\":2}",
        "{\"topic\":\"b\",\"value\":null}",
    };
    k2r_envelope_t env;
    char errstr[256] = "";

    memset(&env, 0, sizeof(env));
    CU_ASSERT_EQUAL(k2r_envelope_parse(lines[0], strlen(lines[0]), &env, errstr, sizeof(errstr)),
                    K2R_ENVELOPE_OK);
    CU_ASSERT_STRING_EQUAL(env.msg.topic, "a");
    CU_ASSERT_EQUAL(k2r_envelope_parse(lines[1], strlen(lines[1]), &env, errstr, sizeof(errstr)),
                    K2R_ENVELOPE_OK);
    CU_ASSERT_PTR_NULL(env.msg.topic);
    CU_ASSERT_PTR_NULL(env.msg.key);
    CU_ASSERT_EQUAL(env.msg.nheaders, 2);
    CU_ASSERT_STRING_EQUAL(env.msg.headers[1].name, "h2");
    /* A failed parse releases the earlier one and leaves the envelope zeroed. */
    CU_ASSERT_EQUAL(k2r_envelope_parse(lines[2], strlen(lines[2]), &env, errstr, sizeof(errstr)),
                    K2R_ENVELOPE_INVALID);
    CU_ASSERT(env_is_zero(&env));
    CU_ASSERT_EQUAL(k2r_envelope_parse(lines[3], strlen(lines[3]), &env, errstr, sizeof(errstr)),
                    K2R_ENVELOPE_OK);
    CU_ASSERT_STRING_EQUAL(env.msg.topic, "b");
    CU_ASSERT_PTR_NULL(env.msg.value);
    k2r_envelope_clear(&env);
    CU_ASSERT(env_is_zero(&env));
    k2r_envelope_clear(&env);
    k2r_envelope_clear(NULL);
}

/* A short errstr buffer is truncated, never overrun; none at all is allowed. */
static void test_errstr_size(void) {
    k2r_envelope_t env;
    char errstr[8];

    memset(&env, 0, sizeof(env));
    memset(errstr, 'x', sizeof(errstr));
    CU_ASSERT_EQUAL(k2r_envelope_parse(B("{}"), &env, errstr, sizeof(errstr)),
                    K2R_ENVELOPE_INVALID);
    CU_ASSERT_STRING_EQUAL(errstr, "value: ");
    CU_ASSERT_EQUAL(k2r_envelope_parse(B("[]"), &env, NULL, 0), K2R_ENVELOPE_INVALID);
}

int test_envelope_register(void) {
    CU_pSuite suite = CU_add_suite("envelope", NULL, NULL);

    if (!suite || !CU_add_test(suite, "accepted forms, exact records", test_accepted) ||
        !CU_add_test(suite, "refused lines, exact reasons", test_refused) ||
        !CU_add_test(suite, "only len bytes are read", test_length) ||
        !CU_add_test(suite, "one envelope reused across lines", test_reuse) ||
        !CU_add_test(suite, "short errstr buffers", test_errstr_size))
        return CU_get_error();
    return 0;
}
