/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_log.c - the logger's lines as they reach stderr (log.c): JSON lines
 * parsed back with jansson (time in RFC 3339 with milliseconds and Z, level,
 * message, context fields), messages with quotes, backslashes, control bytes
 * and invalid UTF-8 that must still make valid JSON, a message too long for
 * a line, the level check, and the unchanged text format. stderr is pointed
 * at a temporary file for each test (dup2) and read back; no sockets.
 */
#include <CUnit/CUnit.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "k2r/log.h"
#include "suites.h"

/* stderr captured into a temporary file, and the logger settings to put
 * back afterwards. */
typedef struct capture_s {
    FILE *file;
    int saved_fd;
    int saved_level, saved_json;
} capture_t;

static void capture_start(capture_t *c, int json) {
    c->file = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->file);
    fflush(stderr);
    c->saved_fd = dup(STDERR_FILENO);
    CU_ASSERT_FATAL(c->saved_fd >= 0);
    CU_ASSERT_FATAL(dup2(fileno(c->file), STDERR_FILENO) >= 0);
    c->saved_level = k2r_log_level;
    c->saved_json = k2r_log_json;
    k2r_log_level = K2R_LOG_INFO;
    k2r_log_set_format(json);
}

/* Restores stderr and returns what was written (NUL-terminated, free() it). */
static char *capture_end(capture_t *c) {
    char *buf;
    long n;
    size_t got;

    dup2(c->saved_fd, STDERR_FILENO);
    close(c->saved_fd);
    k2r_log_level = c->saved_level;
    k2r_log_json = c->saved_json;
    n = ftell(c->file);
    CU_ASSERT_FATAL(n >= 0);
    buf = malloc((size_t)n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    rewind(c->file);
    got = fread(buf, 1, (size_t)n, c->file);
    buf[got] = '\0';
    fclose(c->file);
    return buf;
}

static size_t count_lines(const char *s) {
    size_t n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Parses one JSON line (up to its newline); NULL (with the reason printed)
 * when it is not a JSON object. */
static json_t *parse_line(const char *line) {
    const char *eol = strchr(line, '\n');
    json_error_t err;
    json_t *o;

    CU_ASSERT_PTR_NOT_NULL_FATAL(eol);
    o = json_loadb(line, (size_t)(eol - line), JSON_REJECT_DUPLICATES, &err);
    if (!o)
        fprintf(stderr, "\nnot JSON (%s): %.*s\n", err.text, (int)(eol - line), line);
    CU_ASSERT_FATAL(json_is_object(o));
    return o;
}

/* "2026-11-23T08:31:05.123Z": RFC 3339, UTC, exactly three decimals, and
 * within a minute of now. */
static int time_ok(const char *t) {
    struct tm tm;
    const char *rest;
    time_t when;

    if (strlen(t) != 24 || t[19] != '.' || t[23] != 'Z')
        return 0;
    for (int i = 20; i < 23; i++)
        if (t[i] < '0' || t[i] > '9')
            return 0;
    memset(&tm, 0, sizeof(tm));
    rest = strptime(t, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest || rest != t + 19)
        return 0;
    when = timegm(&tm);
    return when > time(NULL) - 60 && when < time(NULL) + 60;
}

static const char *str(const json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

/* ------------------------------------------------------------- JSON */

static void test_json_line(void) {
    capture_t c;
    json_t *o;
    char *out;

    capture_start(&c, 1);
    k2r_log_info("kafka: assigned %d partition(s): %s", 2, "t[0], t[1]");
    out = capture_end(&c);
    CU_ASSERT_EQUAL(count_lines(out), 1);
    o = parse_line(out);
    CU_ASSERT_EQUAL(json_object_size(o), 3);
    CU_ASSERT(time_ok(str(o, "time")));
    CU_ASSERT_STRING_EQUAL(str(o, "level"), "info");
    CU_ASSERT_STRING_EQUAL(str(o, "msg"), "kafka: assigned 2 partition(s): t[0], t[1]");
    /* The keys come in this order, for people reading the raw lines. */
    CU_ASSERT(strncmp(out, "{\"time\":\"", 9) == 0);
    CU_ASSERT(strstr(out, "\",\"level\":\"info\",\"msg\":\"kafka: assigned") != NULL);
    json_decref(o);
    free(out);
}

/* Every level under its name; a line above the threshold is not written. */
static void test_json_levels(void) {
    static const char *const names[] = {"error", "warn", "info"};
    const char *line;
    capture_t c;
    char *out;
    size_t i = 0;

    capture_start(&c, 1);
    k2r_log_error("e");
    k2r_log_warn("w");
    k2r_log_info("i");
    k2r_log_debug("d: not written at level info");
    out = capture_end(&c);
    CU_ASSERT_EQUAL(count_lines(out), 3);
    for (line = out; *line && i < 3; line = strchr(line, '\n') + 1, i++) {
        json_t *o = parse_line(line);

        CU_ASSERT_STRING_EQUAL(str(o, "level"), names[i]);
        json_decref(o);
    }
    free(out);

    capture_start(&c, 1);
    k2r_log_level = K2R_LOG_DEBUG;
    k2r_log_debug("d");
    out = capture_end(&c);
    CU_ASSERT(strstr(out, "\"level\":\"debug\",\"msg\":\"d\"}\n") != NULL);
    free(out);
}

/* Whatever bytes a message holds (a record's detail, a broker's error
 * text), the line is one valid JSON object whose msg reads them back:
 * escapes for quotes, backslashes and control bytes, U+FFFD for every byte
 * that is not part of valid UTF-8, valid UTF-8 as it is. */
static void test_json_escaping(void) {
    static const char raw[] = "say \"hi\"\\path\nnext\tline\r\x01\x1f\x7f "
                              "caf\xc3\xa9 \xf0\x9f\x9a\x80 bad:\xff\xfe cut:\xe2\x82 "
                              "overlong:\xc0\xaf surrogate:\xed\xa0\x80 end";
    static const char want[] = "say \"hi\"\\path\nnext\tline\r\x01\x1f\x7f "
                               "caf\xc3\xa9 \xf0\x9f\x9a\x80 bad:\xef\xbf\xbd\xef\xbf\xbd "
                               "cut:\xef\xbf\xbd\xef\xbf\xbd "
                               "overlong:\xef\xbf\xbd\xef\xbf\xbd "
                               "surrogate:\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end";
    capture_t c;
    json_t *o;
    char *out;

    capture_start(&c, 1);
    k2r_log_warn("%s", raw);
    out = capture_end(&c);
    CU_ASSERT_EQUAL(count_lines(out), 1); /* the newline inside is escaped */
    o = parse_line(out);
    CU_ASSERT_STRING_EQUAL(str(o, "msg"), want);
    /* The short escapes where JSON has them, \u00XX for the other control
     * bytes. */
    CU_ASSERT(strstr(out, "say \\\"hi\\\"\\\\path\\nnext\\tline\\r\\u0001\\u001f\x7f ") != NULL);
    json_decref(o);
    free(out);
}

/* Context fields follow msg, escaped the same way. */
static void test_json_fields(void) {
    const k2r_log_field_t fields[] = {
        {"listen", "0.0.0.0:8080"}, {"config", "/etc/k2r/\"b\".yaml\n"}, {"empty", NULL}};
    capture_t c;
    json_t *o;
    char *out;

    capture_start(&c, 1);
    k2r_log_fields(K2R_LOG_INFO, fields, 3, "http: serving on %s", "0.0.0.0:8080");
    k2r_log_fields(K2R_LOG_DEBUG, fields, 3, "not written");
    out = capture_end(&c);
    CU_ASSERT_EQUAL(count_lines(out), 1);
    o = parse_line(out);
    CU_ASSERT_EQUAL(json_object_size(o), 6);
    CU_ASSERT_STRING_EQUAL(str(o, "msg"), "http: serving on 0.0.0.0:8080");
    CU_ASSERT_STRING_EQUAL(str(o, "listen"), "0.0.0.0:8080");
    CU_ASSERT_STRING_EQUAL(str(o, "config"), "/etc/k2r/\"b\".yaml\n");
    CU_ASSERT_STRING_EQUAL(str(o, "empty"), "");
    CU_ASSERT(strstr(out, "\"msg\":\"http: serving on 0.0.0.0:8080\",\"listen\":") != NULL);
    json_decref(o);
    free(out);
}

/* A message longer than a line holds is cut, and the line stays one valid
 * JSON object: here every byte needs a six-byte escape, so the cut falls
 * inside the message, never inside an escape. */
static void test_json_long(void) {
    char *big = malloc(5000), *fieldv = malloc(9000);
    const k2r_log_field_t fields[] = {{"after", "x"}, {"huge", fieldv}};
    capture_t c;
    json_t *o;
    char *out;
    const char *msg;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fieldv);
    memset(big, 0x01, 4999);
    big[4999] = '\0';
    memset(fieldv, 'v', 8999);
    fieldv[8999] = '\0';
    capture_start(&c, 1);
    k2r_log_error("%s", big);
    k2r_log_fields(K2R_LOG_ERROR, fields, 2, "short");
    out = capture_end(&c);
    CU_ASSERT_EQUAL(count_lines(out), 2);
    o = parse_line(out);
    msg = str(o, "msg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT(strlen(msg) > 1000 && strlen(msg) < 2048);
    CU_ASSERT(strspn(msg, "\x01") == strlen(msg));
    CU_ASSERT((size_t)(strchr(out, '\n') - out) + 1 <= 8192);
    json_decref(o);
    /* A field too long for the line is cut; the fields before it stay. */
    o = parse_line(strchr(out, '\n') + 1);
    CU_ASSERT_STRING_EQUAL(str(o, "msg"), "short");
    CU_ASSERT_STRING_EQUAL(str(o, "after"), "x");
    CU_ASSERT(str(o, "huge") && strlen(str(o, "huge")) > 4000);
    json_decref(o);
    free(out);
    free(big);
    free(fieldv);
}

/* ------------------------------------------------------------- text */

/* The text format is what it was before JSON: "TIME LEVEL message", the
 * level padded to five, bytes as they are; fields as key=value. */
static void test_text_format(void) {
    const k2r_log_field_t fields[] = {{"listen", ":8080"}};
    capture_t c;
    char *out, stamp[25];
    const char *second;

    capture_start(&c, 0);
    k2r_log_info("kafka: %s \"q\"", "assigned");
    k2r_log_fields(K2R_LOG_WARN, fields, 1, "http: up");
    out = capture_end(&c);
    CU_ASSERT_EQUAL_FATAL(count_lines(out), 2);
    second = strchr(out, '\n') + 1;
    CU_ASSERT_FATAL(strlen(second) > 24);
    memcpy(stamp, out, 24);
    stamp[24] = '\0';
    CU_ASSERT(time_ok(stamp));
    CU_ASSERT_EQUAL((size_t)(second - out), 24 + strlen(" info  kafka: assigned \"q\"\n"));
    CU_ASSERT(strncmp(out + 24, " info  kafka: assigned \"q\"\n", (size_t)(second - out) - 24) ==
              0);
    memcpy(stamp, second, 24);
    CU_ASSERT(time_ok(stamp));
    CU_ASSERT_STRING_EQUAL(second + 24, " warn  http: up listen=:8080\n");
    free(out);
}

/* A newline (or any control byte) from a record cannot forge a text line. */
static void test_text_control_bytes(void) {
    const k2r_log_field_t fields[] = {{"key", "a\rb"}};
    capture_t c;
    char *out;

    capture_start(&c, 0);
    k2r_log_fields(K2R_LOG_WARN, fields, 1, "skipped record: %s",
                   "id\n2026-11-23T00:00:00.000Z error  forged\t\x1b[31m");
    out = capture_end(&c);
    CU_ASSERT_EQUAL(count_lines(out), 1);
    CU_ASSERT_STRING_EQUAL(out + 24, " warn  skipped record: id?2026-11-23T00:00:00.000Z error  "
                                     "forged??[31m key=a?b\n");
    free(out);
}

int test_log_register(void) {
    CU_pSuite suite = CU_add_suite("log", NULL, NULL);

    if (!suite || !CU_add_test(suite, "a JSON line parsed back", test_json_line) ||
        !CU_add_test(suite, "levels and the threshold", test_json_levels) ||
        !CU_add_test(suite, "quotes, control bytes, invalid UTF-8", test_json_escaping) ||
        !CU_add_test(suite, "context fields", test_json_fields) ||
        !CU_add_test(suite, "a message too long for a line", test_json_long) ||
        !CU_add_test(suite, "the text format", test_text_format) ||
        !CU_add_test(suite, "the text format: control bytes cannot forge lines",
                     test_text_control_bytes))
        return CU_get_error();
    return 0;
}
