/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_json.c - JSON decoding and path lookups, each case of a table asserted exactly: the
 * compiled segments or the exact refusal, the type and bytes found at a path, the exact reason a
 * document is refused, and that the parser's reused buffers give right answers across sizes.
 * It does not test simdjson itself beyond what the bridge relies on.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS under -std=c11 when built outside make */
#endif
#include <CUnit/CUnit.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "k2r/json.h"
#include "suites.h"

/* Paths. */

#define MAX_SEGS 4

typedef struct path_case_s {
    const char *text;
    const char *errstr; /* expected refusal, or NULL when accepted */
    size_t nsegs;
    const char *keys[MAX_SEGS];
    long index[MAX_SEGS];
} path_case_t;

static const path_case_t path_cases[] = {
    {"a", NULL, 1, {"a"}, {-1}},
    {"repository.owner.login", NULL, 3, {"repository", "owner", "login"}, {-1, -1, -1}},
    {"a.b.0.c", NULL, 4, {"a", "b", "0", "c"}, {-1, -1, 0, -1}},
    {"12", NULL, 1, {"12"}, {12}},
    {"007", NULL, 1, {"007"}, {7}},
    {"-1", NULL, 1, {"-1"}, {-1}},
    {"+1", NULL, 1, {"+1"}, {-1}},
    {"1a", NULL, 1, {"1a"}, {-1}},
    {" 1", NULL, 1, {" 1"}, {-1}},
    {"9223372036854775807", NULL, 1, {"9223372036854775807"}, {LONG_MAX}},
    {"9223372036854775808", NULL, 1, {"9223372036854775808"}, {-1}}, /* LONG_MAX + 1 */
    {"99999999999999999999", NULL, 1, {"99999999999999999999"}, {-1}},
    {"", "empty segment in path \"\"", 0, {NULL}, {0}},
    {".", "empty segment in path \".\"", 0, {NULL}, {0}},
    {"a..b", "empty segment in path \"a..b\"", 0, {NULL}, {0}},
    {".a", "empty segment in path \".a\"", 0, {NULL}, {0}},
    {"a.", "empty segment in path \"a.\"", 0, {NULL}, {0}},
    /* Escapes: "\." is a dot inside a key, "\\" a backslash. */
    {"a\\.b", NULL, 1, {"a.b"}, {-1}},
    {"x.a\\.b.c", NULL, 3, {"x", "a.b", "c"}, {-1, -1, -1}},
    {"a\\\\b", NULL, 1, {"a\\b"}, {-1}},
    {"1\\.0", NULL, 1, {"1.0"}, {-1}},
    {"\\.", NULL, 1, {"."}, {-1}},
    {"a\\",
     "bad escape in path \"a\\\" (write \\. for a dot in a key, \\\\ for a backslash)",
     0,
     {NULL},
     {0}},
    {"a\\x",
     "bad escape in path \"a\\x\" (write \\. for a dot in a key, \\\\ for a backslash)",
     0,
     {NULL},
     {0}},
};

static void test_path_compile(void) {
    for (size_t c = 0; c < sizeof(path_cases) / sizeof(path_cases[0]); c++) {
        const path_case_t *pc = &path_cases[c];
        k2r_path_t path;
        char errstr[128] = "";
        int rc;

        /* Garbage in *path must not matter: compile zeroes it on failure. */
        memset(&path, 0xa5, sizeof(path));
        rc = k2r_path_compile(pc->text, &path, errstr, sizeof(errstr));
        if (pc->errstr) {
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT_STRING_EQUAL(errstr, pc->errstr);
            CU_ASSERT_PTR_NULL(path.segs);
            CU_ASSERT_PTR_NULL(path.text);
            CU_ASSERT_EQUAL(path.nsegs, 0);
            k2r_path_free(&path);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_STRING_EQUAL(path.text, pc->text);
        CU_ASSERT_PTR_NOT_EQUAL(path.text, pc->text);
        CU_ASSERT_EQUAL_FATAL(path.nsegs, pc->nsegs);
        for (size_t s = 0; s < path.nsegs; s++) {
            CU_ASSERT_STRING_EQUAL(path.segs[s].key, pc->keys[s]);
            CU_ASSERT_EQUAL(path.segs[s].key_len, strlen(pc->keys[s]));
            CU_ASSERT_EQUAL(path.segs[s].index, pc->index[s]);
        }
        k2r_path_free(&path);
        CU_ASSERT_PTR_NULL(path.segs);
        CU_ASSERT_PTR_NULL(path.text);
        CU_ASSERT_EQUAL(path.nsegs, 0);
        k2r_path_free(&path); /* a zeroed path is fine */
    }
}

static void test_path_errstr_truncated(void) {
    k2r_path_t path;
    char errstr[8];

    CU_ASSERT_EQUAL(k2r_path_compile("a..b", &path, errstr, sizeof(errstr)), -1);
    CU_ASSERT_STRING_EQUAL(errstr, "empty s");
    CU_ASSERT_EQUAL(k2r_path_compile("a..b", &path, NULL, 0), -1);
    k2r_path_free(NULL);
}

/* Lookups. */

static const char doc[] =
    "{\"repository\":{\"owner\":{\"login\":\"octocat\"},\"full_name\":\"octocat/hello\"},"
    "\"commits\":[{\"id\":\"c0\"},{\"id\":\"c1\",\"n\":[[1,2],[3]]}],"
    "\"obj\":{\"0\":\"zero\",\"10\":\"ten\"},"
    "\"s\":\"plain\",\"empty\":\"\","
    "\"imin\":-9223372036854775808,\"imax\":9223372036854775807,"
    "\"uabove\":9223372036854775808,\"umax\":18446744073709551615,"
    "\"neg\":-42,\"zero\":0,\"negzero\":-0,"
    "\"d\":3.5,\"dneg\":-0.25,\"dexp\":1e3,\"done\":1.0,\"dsmall\":-1.5e-10,"
    "\"t\":true,\"f\":false,\"n\":null,\"eo\":{},\"ea\":[],"
    "\"esc\":\"caf\\u00e9 \\ud83d\\ude00\",\"nul\":\"a\\u0000b\","
    "\"ctl\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"raw\":\"caf\xc3\xa9\","
    "\"a\\u0000b\":\"nul key\",\"caf\\u00e9\":\"escaped key\","
    "\"dup\":1,\"dup\":2}";

typedef struct get_case_s {
    const char *path;
    k2r_value_type_t type;
    const char *str; /* STRING: expected bytes (str_len of them) */
    size_t str_len;
    int64_t i;
    uint64_t u;
    double d;
    int b;
} get_case_t;

#define ABSENT(p)                                                                                  \
    { p, K2R_VALUE_ABSENT, NULL, 0, 0, 0, 0, 0 }
#define STR(p, s)                                                                                  \
    { p, K2R_VALUE_STRING, s, sizeof(s) - 1, 0, 0, 0, 0 }
#define INT(p, v)                                                                                  \
    { p, K2R_VALUE_INT, NULL, 0, v, 0, 0, 0 }
#define UINT(p, v)                                                                                 \
    { p, K2R_VALUE_UINT, NULL, 0, 0, v, 0, 0 }
#define DBL(p, v)                                                                                  \
    { p, K2R_VALUE_DOUBLE, NULL, 0, 0, 0, v, 0 }
#define BOOL(p, v)                                                                                 \
    { p, K2R_VALUE_BOOL, NULL, 0, 0, 0, 0, v }
#define OTHER(p, t)                                                                                \
    { p, t, NULL, 0, 0, 0, 0, 0 }

static const get_case_t get_cases[] = {
    /* Nesting and arrays. */
    STR("repository.owner.login", "octocat"),
    STR("repository.full_name", "octocat/hello"),
    STR("commits.0.id", "c0"),
    STR("commits.1.id", "c1"),
    INT("commits.1.n.0.1", 2),
    INT("commits.1.n.1.0", 3),
    ABSENT("commits.1.n.1.1"),
    ABSENT("commits.5.id"),
    ABSENT("commits.2"),
    ABSENT("commits.99999999999999999999"),
    ABSENT("commits.-1"),
    ABSENT("commits.id"),
    ABSENT("commits.first"),
    /* An object key that looks like an index is still found by key. */
    STR("obj.0", "zero"),
    STR("obj.10", "ten"),
    ABSENT("obj.1"),
    /* Missing keys and stepping into scalars lead nowhere. */
    ABSENT("missing"),
    ABSENT("repository.missing.login"),
    ABSENT("repository.owner.login.x"),
    ABSENT("s.0"),
    ABSENT("s.x"),
    ABSENT("n.x"),
    ABSENT("t.x"),
    ABSENT("zero.0"),
    ABSENT("ea.0"),
    ABSENT("eo.0"),
    /* Keys match exactly: no case folding, no prefix match. */
    ABSENT("Repository"),
    ABSENT("repo"),
    ABSENT("repositoryx"),
    /* Every type. */
    STR("s", "plain"),
    STR("empty", ""),
    INT("imin", INT64_MIN),
    INT("imax", INT64_MAX),
    UINT("uabove", (uint64_t)INT64_MAX + 1),
    UINT("umax", UINT64_MAX),
    INT("neg", -42),
    INT("zero", 0),
    INT("negzero", 0),
    DBL("d", 3.5),
    DBL("dneg", -0.25),
    DBL("dexp", 1000.0),
    DBL("done", 1.0),
    DBL("dsmall", -1.5e-10),
    BOOL("t", 1),
    BOOL("f", 0),
    OTHER("n", K2R_VALUE_NULL),
    OTHER("eo", K2R_VALUE_OBJECT),
    OTHER("ea", K2R_VALUE_ARRAY),
    OTHER("repository", K2R_VALUE_OBJECT),
    OTHER("commits", K2R_VALUE_ARRAY),
    OTHER("commits.1.n.0", K2R_VALUE_ARRAY),
    /* Strings come back unescaped, as exact UTF-8 bytes. */
    STR("esc", "caf\xc3\xa9 \xf0\x9f\x98\x80"),
    STR("nul", "a\0b"),
    STR("ctl", "\"\\/\b\f\n\r\t"),
    STR("raw", "caf\xc3\xa9"),
    /* Keys are unescaped before comparing, so the raw UTF-8 spelling finds them. */
    STR("caf\xc3\xa9", "escaped key"),
    /* A duplicated key: the first one wins (simdjson DOM's at_key stops at the first match). */
    INT("dup", 1),
};

static k2r_json_t *json;

static int setup(void) {
    json = k2r_json_new();
    return json ? 0 : 1;
}

static int teardown(void) {
    k2r_json_destroy(json);
    json = NULL;
    return 0;
}

/* Asserts what is at gc->path in the last parsed document. */
static void check_get(const get_case_t *gc) {
    k2r_path_t path;
    k2r_value_t v;
    char errstr[128];

    CU_ASSERT_EQUAL_FATAL(k2r_path_compile(gc->path, &path, errstr, sizeof(errstr)), 0);
    memset(&v, 0xa5, sizeof(v));
    k2r_json_get(json, &path, &v);
    if (v.type != gc->type)
        fprintf(stderr, "\n%s: type %d, want %d\n", gc->path, (int)v.type, (int)gc->type);
    CU_ASSERT_EQUAL(v.type, gc->type);
    switch (gc->type) {
    case K2R_VALUE_STRING:
        CU_ASSERT_EQUAL(v.len, gc->str_len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v.str);
        CU_ASSERT(v.len == gc->str_len && memcmp(v.str, gc->str, gc->str_len) == 0);
        break;
    case K2R_VALUE_INT:
        CU_ASSERT_EQUAL(v.i, gc->i);
        break;
    case K2R_VALUE_UINT:
        CU_ASSERT_EQUAL(v.u, gc->u);
        break;
    case K2R_VALUE_DOUBLE:
        CU_ASSERT_DOUBLE_EQUAL(v.d, gc->d, 0.0);
        CU_ASSERT(v.d == gc->d);
        break;
    case K2R_VALUE_BOOL:
        CU_ASSERT_EQUAL(v.b, gc->b);
        break;
    default:
        break;
    }
    k2r_path_free(&path);
}

static void test_get(void) {
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, doc, sizeof(doc) - 1), 0);
    for (size_t c = 0; c < sizeof(get_cases) / sizeof(get_cases[0]); c++)
        check_get(&get_cases[c]);
}

/* A key with a NUL in it cannot be written as a path, so build the path by hand. */
static void test_get_nul_key(void) {
    char key[] = "a\0b";
    k2r_path_seg_t seg = {key, 3, -1};
    k2r_path_t path = {&seg, 1, key};
    k2r_value_t v;

    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, doc, sizeof(doc) - 1), 0);
    k2r_json_get(json, &path, &v);
    CU_ASSERT_EQUAL_FATAL(v.type, K2R_VALUE_STRING);
    CU_ASSERT(v.len == 7 && memcmp(v.str, "nul key", 7) == 0);
    seg.key_len = 1; /* "a" alone is not that key */
    k2r_json_get(json, &path, &v);
    CU_ASSERT_EQUAL(v.type, K2R_VALUE_ABSENT);
}

static void test_get_root_not_object(void) {
    static const get_case_t array_cases[] = {INT("1", 20), ABSENT("2"), ABSENT("x"),
                                             STR("2x", "no")};
    static const get_case_t scalar_cases[] = {ABSENT("a"), ABSENT("0")};
    static const char array_doc[] = "[10,20]";

    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, array_doc, sizeof(array_doc) - 1), 0);
    for (size_t c = 0; c < 3; c++)
        check_get(&array_cases[c]);
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, "{\"2x\":\"no\"}", 11), 0);
    check_get(&array_cases[3]);
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, "\"str\"", 5), 0);
    for (size_t c = 0; c < sizeof(scalar_cases) / sizeof(scalar_cases[0]); c++)
        check_get(&scalar_cases[c]);
}

/* Failed parses. */

#define ERR_EMPTY "Empty: no JSON found"
#define ERR_STRUCTURE                                                                              \
    "The JSON document has an improper structure: missing or superfluous commas, braces, "         \
    "missing keys, etc."
#define ERR_UTF8   "The input is not valid UTF-8"
#define ERR_STRING "Problem while parsing a string"
#define ERR_NUMBER "Problem while parsing a number"

typedef struct bad_case_s {
    const char *what;
    const char *buf;
    size_t len;
    const char *error; /* exact k2r_json_error() text */
} bad_case_t;

#define BAD(what, s, err)                                                                          \
    { what, s, sizeof(s) - 1, err }

static const bad_case_t bad_cases[] = {
    {"empty", "", 0, ERR_EMPTY},
    {"NULL with len 0", NULL, 0, ERR_EMPTY},
    BAD("whitespace only", " \n\t\r ", ERR_EMPTY),
    BAD("unclosed object", "{", ERR_STRUCTURE),
    BAD("truncated string", "{\"a\":\"b", "A string is opened, but never closed."),
    BAD("unclosed array", "[1,2", ERR_STRUCTURE),
    BAD("trailing garbage", "{\"a\":1} x", ERR_STRUCTURE),
    /* A producer that sends a C string with its terminator is refused, not silently accepted. */
    BAD("trailing NUL", "{\"a\":1}\0", ERR_STRUCTURE),
    BAD("two documents", "{\"a\":1}{\"a\":1}", ERR_STRUCTURE),
    BAD("trailing comma", "{\"a\":1,}", ERR_STRUCTURE),
    BAD("invalid UTF-8 byte", "{\"a\":\"x\xffy\"}", ERR_UTF8),
    BAD("overlong UTF-8", "{\"a\":\"\xc0\xaf\"}", ERR_UTF8),
    BAD("truncated UTF-8", "{\"a\":\"\xe2\x82\"}", ERR_UTF8),
    BAD("lone surrogate escape", "{\"a\":\"\\ud800\"}", ERR_STRING),
    BAD("bad escape", "{\"a\":\"\\q\"}", ERR_STRING),
    BAD("raw newline in string", "{\"a\":\"x\ny\"}",
        "Within strings, some characters must be escaped, we found unescaped characters"),
    /* simdjson 3.0 does not skip a UTF-8 byte order mark (RFC 8259 lets a parser refuse it). */
    BAD("byte order mark", "\xef\xbb\xbf{\"a\":1}", ERR_STRUCTURE),
    BAD("nul atom", "nul", "Problem while parsing an atom starting with the letter 'n'"),
    /* simdjson 3.0 refuses integers outside int64/uint64 rather than returning a double. */
    BAD("integer above uint64", "{\"a\":18446744073709551616}", ERR_NUMBER),
    BAD("integer below int64", "{\"a\":-9223372036854775809}", ERR_NUMBER),
    BAD("double out of range", "{\"a\":1e400}", ERR_NUMBER),
};

static void test_parse_failures(void) {
    static const get_case_t after = INT("a", 1);

    for (size_t c = 0; c < sizeof(bad_cases) / sizeof(bad_cases[0]); c++) {
        const bad_case_t *bc = &bad_cases[c];
        int rc = k2r_json_parse(json, bc->buf, bc->len);

        if (rc != -1 || strcmp(k2r_json_error(json), bc->error) != 0)
            fprintf(stderr, "\n%s: rc %d, error \"%s\"\n", bc->what, rc, k2r_json_error(json));
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_STRING_EQUAL(k2r_json_error(json), bc->error);
        /* The parser stays usable after any failure. */
        CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, "{\"a\":1}", 7), 0);
        check_get(&after);
    }
}

/* simdjson's depth limit (1024) is what keeps a hostile record from nesting without bound; it
 * must be a clean refusal at exactly that depth, and the parser must stay usable. */
static void test_nesting_depth(void) {
    static const get_case_t after = INT("a", 1);
    static const get_case_t outer = OTHER("0.0", K2R_VALUE_ARRAY);
    char buf[2 * 1025];

    memset(buf, '[', 1024);
    memset(buf + 1024, ']', 1024);
    CU_ASSERT_EQUAL(k2r_json_parse(json, buf, 2 * 1024), 0);
    check_get(&outer);
    memset(buf, '[', 1025);
    memset(buf + 1025, ']', 1025);
    CU_ASSERT_EQUAL(k2r_json_parse(json, buf, 2 * 1025), -1);
    CU_ASSERT_STRING_EQUAL(k2r_json_error(json),
                           "The JSON document was too deep (too many nested objects and arrays)");
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, "{\"a\":1}", 7), 0);
    check_get(&after);
}

/* Buffers. */

static void test_not_nul_terminated(void) {
    static const char buf[] = "{\"a\":1}garbage";
    static const get_case_t a = INT("a", 1);
    /* No NUL anywhere after the value: reading past len would be caught by ASan. */
    char *heap = malloc(7);

    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, buf, 7), 0);
    check_get(&a);
    CU_ASSERT_EQUAL(k2r_json_parse(json, buf, 6), -1); /* cut inside the value */
    CU_ASSERT_PTR_NOT_NULL_FATAL(heap);
    memcpy(heap, buf, 7);
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, heap, 7), 0);
    check_get(&a);
    free(heap);
}

/* Each record ends exactly where an unreadable page starts, so any read past len faults, even
 * one inside libsimdjson, which ASan does not see into. Strings and atoms are the values that
 * simdjson reads in wide chunks, so they are the ones that would cross the end. */
static void test_guard_page(void) {
    static const struct {
        const char *json;
        get_case_t want;
    } cases[] = {
        {"{\"a\":\"xyz\"}", STR("a", "xyz")},   {"[true]", BOOL("0", 1)},
        {"[null]", OTHER("0", K2R_VALUE_NULL)}, {"{\"a\":1}", INT("a", 1)},
        {"{\"a\":-1.5}", DBL("a", -1.5)},
    };
    long page = sysconf(_SC_PAGESIZE);
    char *map;

    CU_ASSERT_FATAL(page > 0);
    map = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(map != MAP_FAILED);
    CU_ASSERT_FATAL(mprotect(map + page, (size_t)page, PROT_NONE) == 0);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t len = strlen(cases[c].json);
        char *at = map + page - len;

        memcpy(at, cases[c].json, len);
        CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, at, len), 0);
        check_get(&cases[c].want);
    }
    /* A truncated string at the very end is refused, not read beyond. */
    memcpy(map + page - 8, "{\"a\":\"xy", 8);
    CU_ASSERT_EQUAL(k2r_json_parse(json, map + page - 8, 8), -1);
    CU_ASSERT_STRING_EQUAL(k2r_json_error(json), "A string is opened, but never closed.");
    munmap(map, 2 * (size_t)page);
}

/* Builds {"items":[{"id":0,"s":"xxx..."},...],"last":"big-N"} of about `size` bytes. */
static char *big_doc(size_t items, int tag, size_t *len) {
    size_t cap = items * 160 + 64, off = 0;
    char *buf = malloc(cap);

    if (!buf)
        return NULL;
    off += (size_t)snprintf(buf + off, cap - off, "{\"items\":[");
    for (size_t i = 0; i < items; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s{\"id\":%zu,\"s\":\"%0100zu\"}",
                                i ? "," : "", i * 3, i);
    off += (size_t)snprintf(buf + off, cap - off, "],\"last\":\"big-%d\"}", tag);
    *len = off;
    return buf;
}

static void check_big(size_t items, int tag) {
    char last[32], want_s[128];
    size_t i = items - 1;
    get_case_t id_case = INT("items.0.id", 0);
    k2r_path_t path;
    k2r_value_t v;
    char errstr[128], text[64];

    snprintf(last, sizeof(last), "big-%d", tag);
    get_case_t last_case = {"last", K2R_VALUE_STRING, last, strlen(last), 0, 0, 0, 0};
    check_get(&last_case);
    check_get(&id_case);

    snprintf(text, sizeof(text), "items.%zu.s", i);
    snprintf(want_s, sizeof(want_s), "%0100zu", i);
    CU_ASSERT_EQUAL_FATAL(k2r_path_compile(text, &path, errstr, sizeof(errstr)), 0);
    k2r_json_get(json, &path, &v);
    CU_ASSERT_EQUAL(v.type, K2R_VALUE_STRING);
    CU_ASSERT(v.len == 100 && memcmp(v.str, want_s, 100) == 0);
    k2r_path_free(&path);

    snprintf(text, sizeof(text), "items.%zu.id", items);
    CU_ASSERT_EQUAL_FATAL(k2r_path_compile(text, &path, errstr, sizeof(errstr)), 0);
    k2r_json_get(json, &path, &v);
    CU_ASSERT_EQUAL(v.type, K2R_VALUE_ABSENT);
    k2r_path_free(&path);
}

/* Parsers are independent: a second one has its own document, and destroying it leaves the
 * suite's parser (and its last document) alone. */
static void test_new_destroy(void) {
    static const get_case_t a = STR("a", "mine");
    k2r_json_t *other = k2r_json_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, "{\"a\":\"mine\"}", 12), 0);
    CU_ASSERT_EQUAL(k2r_json_parse(other, "{\"a\":\"other\"}", 13), 0);
    k2r_json_destroy(other);
    check_get(&a);
    k2r_json_destroy(NULL); /* does nothing */
}

static void test_buffer_reuse(void) {
    static const get_case_t small = STR("a", "small");
    size_t len1, len2;
    char *big1 = big_doc(2000, 1, &len1);
    char *big2 = big_doc(3000, 2, &len2);

    CU_ASSERT_PTR_NOT_NULL_FATAL(big1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big2);
    CU_ASSERT(len1 > 200000);

    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, big1, len1), 0);
    check_big(2000, 1);
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, "{\"a\":\"small\"}", 13), 0);
    check_get(&small);
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, big1, len1), 0);
    check_big(2000, 1);
    /* Bigger than anything before: the buffers grow and the answers stay right. */
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, big2, len2), 0);
    check_big(3000, 2);
    /* A failed big parse after a good small one, then small again. */
    CU_ASSERT_EQUAL(k2r_json_parse(json, big2, len2 - 1), -1);
    CU_ASSERT_EQUAL_FATAL(k2r_json_parse(json, "{\"a\":\"small\"}", 13), 0);
    check_get(&small);
    free(big1);
    free(big2);
}

int test_json_register(void) {
    CU_pSuite suite = CU_add_suite("json", setup, teardown);

    if (!suite || !CU_add_test(suite, "path compile", test_path_compile) ||
        !CU_add_test(suite, "path errstr truncated", test_path_errstr_truncated) ||
        !CU_add_test(suite, "get", test_get) ||
        !CU_add_test(suite, "get nul key", test_get_nul_key) ||
        !CU_add_test(suite, "get root not object", test_get_root_not_object) ||
        !CU_add_test(suite, "parse failures", test_parse_failures) ||
        !CU_add_test(suite, "nesting depth", test_nesting_depth) ||
        !CU_add_test(suite, "new and destroy", test_new_destroy) ||
        !CU_add_test(suite, "not NUL-terminated", test_not_nul_terminated) ||
        !CU_add_test(suite, "guard page", test_guard_page) ||
        !CU_add_test(suite, "buffer reuse", test_buffer_reuse))
        return CU_get_error();
    return 0;
}
