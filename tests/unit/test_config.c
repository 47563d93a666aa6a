/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config.c - config loading: every value of a full file, the defaults,
 * environment overrides, and the exact error lines of each invalid fixture.
 *
 * An invalid fixture in tests/fixtures/config/ lists the errors it must
 * produce in trailing "# expect: " comment lines, in order, so a new case is
 * one new file and no code. The settings table: what a reload compares, and
 * the README's reference, which must be what the table prints.
 */
#include <CUnit/CUnit.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k2r/addr.h"
#include "k2r/clock.h"
#include "k2r/config.h"
#include "k2r/log.h"
#include "k2r/redis.h"
#include "k2r/rules.h"
#include "suites.h"

/* ------------------------------------------------------------ helpers */

static const char *const *test_env;

static const char *table_env(const char *name) {
    for (size_t i = 0; test_env && test_env[i]; i += 2)
        if (strcmp(test_env[i], name) == 0)
            return test_env[i + 1];
    return NULL;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* Loads a fixture by name (the name is what messages show) and compiles its rules. */
static k2r_config_t *load_fixture(const char *name, k2r_errors_t *errs, k2r_rules_t **rules) {
    char rel[256];
    size_t len;
    char *buf;
    k2r_config_t *cfg;

    snprintf(rel, sizeof(rel), "config/%s", name);
    buf = slurp(test_fixture(rel), &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    *rules = k2r_rules_parse(name, buf, len, table_env, errs, &cfg);
    free(buf);
    return cfg;
}

static k2r_config_t *parse_string(const char *yaml, k2r_errors_t *errs) {
    return k2r_config_parse("inline.yaml", yaml, strlen(yaml), table_env, errs);
}

static const char *minimal = "kafka:\n"
                             "  brokers: b:9092\n"
                             "  group_id: g\n"
                             "  topics: t\n"
                             "rules:\n"
                             "  - {name: r, topic: t, type: a, id: b}\n";

/* -------------------------------------------------------------- tests */

static void test_valid_full(void) {
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_rules_t *rules = NULL;
    k2r_config_t *cfg;

    test_env = NULL;
    cfg = load_fixture("valid-full.yaml", &errs, &rules);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "unexpected: %s\n", errs.lines[i]);
    CU_ASSERT_EQUAL_FATAL(errs.count, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rules);

    CU_ASSERT_STRING_EQUAL(cfg->kafka.brokers, "127.0.0.1:9092,127.0.0.1:9093");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.group_id, "bridge-a");
    CU_ASSERT_EQUAL_FATAL(cfg->kafka.ntopics, 2);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.topics[0], "github.events");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.topics[1], "^audit\\..*");
    CU_ASSERT_EQUAL(cfg->kafka.startup_timeout_ms, 45000);
    CU_ASSERT_EQUAL(cfg->limits.max_inflight_records, 250);
    CU_ASSERT_EQUAL(cfg->limits.max_inflight_bytes, 1048576);
    CU_ASSERT_EQUAL(cfg->limits.max_age_ms, 300000);
    CU_ASSERT_EQUAL(cfg->drain_timeout_ms, 2500);
    CU_ASSERT_EQUAL(cfg->http.enabled, 1);
    CU_ASSERT_STRING_EQUAL(cfg->http.listen, "[::1]:9100");
    CU_ASSERT_EQUAL(cfg->rules[0].max_age_ms, -1); /* limits.max_age applies */
    CU_ASSERT_EQUAL(cfg->rules[1].max_age_ms, 30000);
    CU_ASSERT_EQUAL_FATAL(cfg->kafka.nproperties, 2);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[0].name, "auto.offset.reset");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[0].value, "earliest");
    CU_ASSERT_EQUAL(cfg->kafka.properties[0].mark.line, 7);
    CU_ASSERT_EQUAL(cfg->kafka.properties[0].mark.col, 5);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[1].name, "fetch.wait.max.ms");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[1].value, "50");

    CU_ASSERT_STRING_EQUAL(cfg->redis.parsed.host, "::1");
    CU_ASSERT_EQUAL(cfg->redis.parsed.port, 6380);
    CU_ASSERT_STRING_EQUAL(cfg->redis.parsed.user, "app");
    CU_ASSERT_STRING_EQUAL(cfg->redis.parsed.password, "s3cret");
    CU_ASSERT_EQUAL(cfg->redis.command_timeout_ms, 1500);
    CU_ASSERT_EQUAL(cfg->redis.pipeline_depth, 64);
    CU_ASSERT_EQUAL(cfg->redis.connect_timeout_ms, 2000); /* default */
    CU_ASSERT_EQUAL(cfg->log_level, K2R_LOG_DEBUG);

    CU_ASSERT_EQUAL_FATAL(cfg->nrules, 2);
    CU_ASSERT_STRING_EQUAL(cfg->rules[0].name, "by-source");
    CU_ASSERT_EQUAL_FATAL(cfg->rules[0].nchannels, 1);
    CU_ASSERT_STRING_EQUAL(cfg->rules[0].channels[0], "events:{type}:{id}"); /* default */
    CU_ASSERT_EQUAL_FATAL(cfg->rules[0].nfields, 3);                         /* default */
    CU_ASSERT_STRING_EQUAL(cfg->rules[0].fields[0].name, "id");
    CU_ASSERT_STRING_EQUAL(cfg->rules[0].fields[1].name, "type");
    CU_ASSERT_STRING_EQUAL(cfg->rules[0].fields[2].name, "source_id");
    CU_ASSERT_EQUAL_FATAL(cfg->rules[1].nvars, 2);
    CU_ASSERT_STRING_EQUAL(cfg->rules[1].vars[0].name, "type");
    CU_ASSERT_STRING_EQUAL(cfg->rules[1].vars[1].name, "id");
    CU_ASSERT_EQUAL(cfg->rules[1].vars[1].src.kind, K2R_SOURCE_PATH);
    CU_ASSERT_STRING_EQUAL(cfg->rules[1].vars[1].src.arg, "repository.full_name");
    CU_ASSERT_EQUAL_FATAL(cfg->rules[1].nfields, 3);
    CU_ASSERT_STRING_EQUAL(cfg->rules[1].fields[1].name, "repo");
    CU_ASSERT_STRING_EQUAL(cfg->rules[1].fields[1].src.arg, "repository.full_name");
    CU_ASSERT_STRING_EQUAL(cfg->rules[1].fields[2].name, "sender.login");
    CU_ASSERT_EQUAL(cfg->rules[1].channel_marks[0].line, 24);
    CU_ASSERT_EQUAL(cfg->rules[1].channel_marks[0].col, 14);

    k2r_rules_destroy(rules);
    k2r_config_destroy(cfg);
    k2r_errors_clear(&errs);
}

static void test_defaults(void) {
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg;

    test_env = NULL;
    cfg = parse_string(minimal, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->kafka.ntopics, 1);
    CU_ASSERT_EQUAL(cfg->kafka.startup_timeout_ms, 30000);
    CU_ASSERT_EQUAL(cfg->redis.on_unavailable, K2R_UNAVAILABLE_PAUSE);
    CU_ASSERT_EQUAL(cfg->limits.max_inflight_records, 1000);
    CU_ASSERT_EQUAL(cfg->limits.max_inflight_bytes, 16777216);
    CU_ASSERT_EQUAL(cfg->limits.max_age_ms, 0);
    CU_ASSERT_EQUAL(cfg->drain_timeout_ms, 10000);
    CU_ASSERT_EQUAL(cfg->log_format, K2R_LOG_FORMAT_JSON);
    CU_ASSERT_EQUAL(cfg->http.enabled, 1);
    CU_ASSERT_STRING_EQUAL(cfg->http.listen, "0.0.0.0:8080");
    CU_ASSERT_STRING_EQUAL(cfg->redis.url, "redis://127.0.0.1:6379");
    CU_ASSERT_STRING_EQUAL(cfg->redis.parsed.host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->redis.parsed.port, 6379);
    CU_ASSERT_PTR_NULL(cfg->redis.password);
    CU_ASSERT_PTR_NULL(cfg->redis.username);
    CU_ASSERT_EQUAL(cfg->redis.connect_timeout_ms, 2000);
    CU_ASSERT_EQUAL(cfg->redis.command_timeout_ms, 5000);
    CU_ASSERT_EQUAL(cfg->redis.pipeline_depth, 512);
    CU_ASSERT_EQUAL(cfg->redis.backoff_initial_ms, 100);
    CU_ASSERT_EQUAL(cfg->redis.backoff_max_ms, 5000);
    CU_ASSERT_EQUAL(cfg->log_level, K2R_LOG_INFO);
    k2r_config_destroy(cfg);
}

static void test_env_overrides(void) {
    static const char *const env[] = {"K2R_KAFKA_BROKERS",
                                      "k1:1,k2:2",
                                      "K2R_REDIS_URL",
                                      "redis://:urlpw@redis.example:7000",
                                      "K2R_REDIS_PASSWORD",
                                      "envpw",
                                      "K2R_REDIS_USERNAME",
                                      "envuser",
                                      "K2R_HTTP_LISTEN",
                                      "127.0.0.1:9191",
                                      NULL};
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_redis_conf_t rc;
    k2r_config_t *cfg;

    test_env = env;
    cfg = parse_string(minimal, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.brokers, "k1:1,k2:2");
    CU_ASSERT_STRING_EQUAL(cfg->redis.parsed.host, "redis.example");
    CU_ASSERT_EQUAL(cfg->redis.parsed.port, 7000);
    k2r_config_redis_conf(cfg, &rc);
    CU_ASSERT_STRING_EQUAL(rc.password, "envpw"); /* the separate secret wins over the URL's */
    CU_ASSERT_STRING_EQUAL(rc.user, "envuser");   /* and the separate user */
    CU_ASSERT_STRING_EQUAL(cfg->http.listen, "127.0.0.1:9191");
    k2r_config_destroy(cfg);
    test_env = NULL;
}

static void test_env_password_file(void) {
    char path[] = "/tmp/k2r-test-pw-XXXXXX";
    const char *env[] = {"K2R_REDIS_PASSWORD_FILE", path, "K2R_REDIS_PASSWORD", "ignored", NULL};
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg;
    FILE *f;
    int fd = mkstemp(path);

    CU_ASSERT_FATAL(fd >= 0);
    f = fdopen(fd, "w");
    fputs("from-file\n", f);
    fclose(f);
    test_env = env;
    cfg = parse_string(minimal, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->redis.password, "from-file"); /* newline stripped, file wins */
    k2r_config_destroy(cfg);

    unlink(path);
    cfg = parse_string(minimal, &errs);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    {
        char want[256];
        snprintf(want, sizeof(want),
                 "K2R_REDIS_PASSWORD_FILE: cannot read %s: No such file or directory", path);
        CU_ASSERT_STRING_EQUAL(errs.lines[0], want);
    }
    k2r_errors_clear(&errs);
    test_env = NULL;
}

/* Secret files are read whole or refused, naming the file: a 5,000-byte
 * one whole (it was cut to 4,095 bytes once), one over 64 KiB, a device
 * (/dev/zero), a FIFO and a file with a NUL byte each an error. */
static void test_secret_files(void) {
    char dir[] = "/tmp/k2r-test-secrets-XXXXXX", path[128], want[256];
    const char *env[] = {"K2R_REDIS_PASSWORD_FILE", path, NULL};
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg;
    char *big = malloc(70000);
    FILE *f;

    CU_ASSERT_FATAL(mkdtemp(dir) != NULL && big != NULL);
    memset(big, 'p', 70000);
    test_env = env;

    snprintf(path, sizeof(path), "%s/5000", dir);
    f = fopen(path, "w");
    fwrite(big, 1, 5000, f);
    fclose(f);
    cfg = parse_string(minimal, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(strlen(cfg->redis.password), 5000);
    k2r_config_destroy(cfg);
    unlink(path);

    snprintf(path, sizeof(path), "%s/70000", dir);
    f = fopen(path, "w");
    fwrite(big, 1, 70000, f);
    fclose(f);
    cfg = parse_string(minimal, &errs);
    CU_ASSERT_PTR_NULL(cfg);
    snprintf(want, sizeof(want), "K2R_REDIS_PASSWORD_FILE: %s is larger than 65536 bytes", path);
    CU_ASSERT(errs.count == 1 && strcmp(errs.lines[0], want) == 0);
    k2r_errors_clear(&errs);
    unlink(path);

    snprintf(path, sizeof(path), "/dev/zero");
    cfg = parse_string(minimal, &errs);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT(errs.count == 1 && strcmp(errs.lines[0], "K2R_REDIS_PASSWORD_FILE: /dev/zero is not "
                                                       "a regular file") == 0);
    k2r_errors_clear(&errs);

    snprintf(path, sizeof(path), "%s/fifo", dir);
    CU_ASSERT_FATAL(mkfifo(path, 0600) == 0);
    cfg = parse_string(minimal, &errs); /* returns: the FIFO is not waited on */
    CU_ASSERT_PTR_NULL(cfg);
    snprintf(want, sizeof(want), "K2R_REDIS_PASSWORD_FILE: %s is not a regular file", path);
    CU_ASSERT(errs.count == 1 && strcmp(errs.lines[0], want) == 0);
    k2r_errors_clear(&errs);
    unlink(path);

    snprintf(path, sizeof(path), "%s/nul", dir);
    f = fopen(path, "w");
    fwrite("pass\0word\n", 1, 10, f);
    fclose(f);
    cfg = parse_string(minimal, &errs);
    CU_ASSERT_PTR_NULL(cfg);
    snprintf(want, sizeof(want), "K2R_REDIS_PASSWORD_FILE: %s contains a NUL byte", path);
    CU_ASSERT(errs.count == 1 && strcmp(errs.lines[0], want) == 0);
    k2r_errors_clear(&errs);
    unlink(path);

    test_env = NULL;
    rmdir(dir);
    free(big);
}

/* k2r_config_resolve() on `text`: the value (or NULL) and what errstr or
 * refs say. */
static void expect_resolved(const char *text, const char *want, const char *want_refs) {
    char refs[256], errstr[512];
    char *got = k2r_config_resolve(text, table_env, refs, sizeof(refs), errstr, sizeof(errstr));

    if (!got)
        fprintf(stderr, "\n%s: %s\n", text, errstr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, want);
    CU_ASSERT_STRING_EQUAL(refs, want_refs);
    free(got);
}

static void expect_refused(const char *text, const char *want) {
    char refs[256], errstr[512];
    char *got = k2r_config_resolve(text, table_env, refs, sizeof(refs), errstr, sizeof(errstr));

    CU_ASSERT_PTR_NULL(got);
    if (got)
        fprintf(stderr, "\n%s: resolved to \"%s\", expected an error\n", text, got);
    else
        CU_ASSERT_STRING_EQUAL(errstr, want);
    free(got);
}

/* Writes `n` bytes to dir/name; returns the path in `path`. */
static void write_file(char *path, size_t size, const char *dir, const char *name,
                       const char *bytes, size_t n) {
    FILE *f;

    snprintf(path, size, "%s/%s", dir, name);
    f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* ${env:NAME} and ${file:/path}: whole values, embedded ones, the $${
 * escape, and every refusal with its exact reason. */
static void test_providers(void) {
    static char big[40001];
    const char *env[] = {"USER_A", "alice", "SUFFIX", "-0", "EMPTY", "", "BIG", big, NULL};
    char dir[] = "/tmp/k2r-test-providers-XXXXXX", path[256], text[600], want[600];
    char *huge = malloc(K2R_SECRET_MAX + 10);

    CU_ASSERT_FATAL(mkdtemp(dir) != NULL && huge != NULL);
    memset(big, 'b', sizeof(big) - 1);
    test_env = env;

    expect_resolved("plain", "plain", "");
    expect_resolved("${env:USER_A}", "alice", "${env:USER_A}");
    expect_resolved("pod${env:SUFFIX}/${env:USER_A}", "pod-0/alice",
                    "${env:SUFFIX}, ${env:USER_A}");
    expect_resolved("$${env:USER_A}", "${env:USER_A}", ""); /* escaped: not resolved */
    expect_resolved("a$b$ $}{$", "a$b$ $}{$", "");          /* a lone $ is itself */
    expect_refused("${env:NOPE}", "${env:NOPE}: the environment variable NOPE is not set");
    expect_refused("x${env:EMPTY}", "${env:EMPTY}: the environment variable EMPTY is empty");
    expect_refused("${env:}", "${env:}: names no environment variable");
    expect_refused("${vault:kv/kafka#password}",
                   "${vault:...}: unknown config provider \"vault\" (known: env, file)");
    expect_refused("${ENV:USER_A}",
                   "${ENV:...}: unknown config provider \"ENV\" (known: env, file)");
    expect_refused("${USER_A}", "\"${USER_A}\" is not a reference: write ${env:NAME} or "
                                "${file:/path} (or $${ for a literal ${)");
    expect_refused("pre-${env:USER_A",
                   "\"${env:USER_A\": a ${ without its closing } (write $${ for a literal ${)");
    expect_refused("${file:secrets/pw}", "${file:secrets/pw}: the path must be absolute");
    expect_refused("${env:BIG}${env:BIG}",
                   "longer than 65536 bytes once its references are resolved");

    /* Files: one line ending dropped (\n or \r\n), a second one kept. */
    write_file(path, sizeof(path), dir, "lf", "s3cret\n", 7);
    snprintf(text, sizeof(text), "${file:%s}", path);
    expect_resolved(text, "s3cret", text);
    write_file(path, sizeof(path), dir, "crlf", "s3cret\r\n", 8);
    snprintf(text, sizeof(text), "user:${file:%s}@", path);
    snprintf(want, sizeof(want), "${file:%s}", path);
    expect_resolved(text, "user:s3cret@", want);
    write_file(path, sizeof(path), dir, "two", "s3cret\n\n", 8);
    snprintf(text, sizeof(text), "${file:%s}", path);
    expect_resolved(text, "s3cret\n", text);
    write_file(path, sizeof(path), dir, "bare", "s3cret", 6);
    snprintf(text, sizeof(text), "${file:%s}", path);
    expect_resolved(text, "s3cret", text);
    /* ... and what a secret file may not be, each naming the file. */
    memset(huge, 'k', K2R_SECRET_MAX + 1);
    write_file(path, sizeof(path), dir, "exact", huge, K2R_SECRET_MAX);
    snprintf(text, sizeof(text), "${file:%s}", path);
    {
        char errstr[256], *v = k2r_config_resolve(text, NULL, NULL, 0, errstr, sizeof(errstr));
        CU_ASSERT(v != NULL && strlen(v) == K2R_SECRET_MAX);
        free(v);
    }
    write_file(path, sizeof(path), dir, "over", huge, K2R_SECRET_MAX + 1);
    snprintf(text, sizeof(text), "${file:%s}", path);
    snprintf(want, sizeof(want), "${file:%s}: %s is larger than 65536 bytes", path, path);
    expect_refused(text, want);
    write_file(path, sizeof(path), dir, "empty", "\n", 1);
    snprintf(text, sizeof(text), "${file:%s}", path);
    snprintf(want, sizeof(want), "${file:%s}: %s is empty", path, path);
    expect_refused(text, want);
    write_file(path, sizeof(path), dir, "nul", "pass\0word", 9);
    snprintf(text, sizeof(text), "${file:%s}", path);
    snprintf(want, sizeof(want), "${file:%s}: %s contains a NUL byte", path, path);
    expect_refused(text, want);
    snprintf(path, sizeof(path), "%s/fifo", dir);
    CU_ASSERT_FATAL(mkfifo(path, 0600) == 0);
    snprintf(text, sizeof(text), "${file:%s}", path);
    snprintf(want, sizeof(want), "${file:%s}: %s is not a regular file", path, path);
    expect_refused(text, want); /* returns: the FIFO is not waited on */
    snprintf(text, sizeof(text), "${file:%s}", dir);
    snprintf(want, sizeof(want), "${file:%s}: %s is not a regular file", dir, dir);
    expect_refused(text, want);
    expect_refused("${file:/dev/zero}", "${file:/dev/zero}: /dev/zero is not a regular file");
    snprintf(text, sizeof(text), "${file:%s/missing}", dir);
    snprintf(want, sizeof(want),
             "${file:%s/missing}: cannot read %s/missing: No such file or directory", dir, dir);
    expect_refused(text, want);

    for (const char *const *n = (const char *const[]){"lf", "crlf", "two", "bare", "exact", "over",
                                                      "empty", "nul", "fifo", NULL};
         *n; n++) {
        snprintf(path, sizeof(path), "%s/%s", dir, *n);
        unlink(path);
    }
    rmdir(dir);
    free(huge);
    test_env = NULL;
}

/* Through the loader: every kind of setting takes a provider's value, the
 * loader knows which did (check lists them, log lines show ***), and an
 * error about such a value never shows it. */
static void test_providers_config(void) {
    char dir[] = "/tmp/k2r-test-providers-XXXXXX", path[256], yaml[2048];
    const char *env[] = {"POD_NAME",  "bridge-7", "DEPTH", "64",        "TOPIC",
                         "orders",    "LEVEL",    "debug", "BIG_DEPTH", "9999999",
                         "BAD_RESET", "hunter2",  NULL};
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg;

    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    write_file(path, sizeof(path), dir, "pw", "hunter2\n", 8);
    test_env = env;
    snprintf(yaml, sizeof(yaml),
             "kafka:\n"
             "  brokers: b:9092\n"
             "  group_id: g\n"
             "  group_instance_id: ${env:POD_NAME}\n"
             "  topics: [t, \"${env:TOPIC}\"]\n"
             "  properties:\n"
             "    client.id: bridge-${env:POD_NAME}\n"
             "    sasl.password: ${file:%s}\n"
             "    sasl.username: bridge\n"
             "redis:\n"
             "  pipeline_depth: ${env:DEPTH}\n"
             "log:\n"
             "  level: ${env:LEVEL}\n"
             "rules:\n"
             "  - {name: r, topic: t, type: a, id: b}\n",
             path);
    cfg = parse_string(yaml, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "unexpected: %s\n", errs.lines[i]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.group_instance_id, "bridge-7");
    CU_ASSERT_EQUAL_FATAL(cfg->kafka.ntopics, 2);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.topics[1], "orders");
    CU_ASSERT_EQUAL_FATAL(cfg->kafka.nproperties, 3);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[0].value, "bridge-bridge-7");
    CU_ASSERT_EQUAL(cfg->kafka.properties[0].secret, 1); /* from a provider */
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[1].value, "hunter2");
    CU_ASSERT_EQUAL(cfg->kafka.properties[1].secret, 1);
    CU_ASSERT_EQUAL(cfg->kafka.properties[2].secret, 0); /* written, and no credential */
    CU_ASSERT_EQUAL(cfg->redis.pipeline_depth, 64);
    CU_ASSERT_EQUAL(cfg->log_level, K2R_LOG_DEBUG);
    CU_ASSERT_EQUAL(k2r_config_provided(cfg, "kafka.group_instance_id"), 1);
    CU_ASSERT_EQUAL(k2r_config_provided(cfg, "kafka.topics"), 1);
    CU_ASSERT_EQUAL(k2r_config_provided(cfg, "redis.pipeline_depth"), 1);
    CU_ASSERT_EQUAL(k2r_config_provided(cfg, "kafka.group_id"), 0);
    CU_ASSERT_STRING_EQUAL(k2r_config_shown(cfg, "kafka.group_id", "g"), "g");
    CU_ASSERT_STRING_EQUAL(k2r_config_shown(cfg, "kafka.group_instance_id", "bridge-7"), "***");
    /* What `check` lists: where, and from which references. */
    CU_ASSERT_EQUAL_FATAL(cfg->nresolved, 6);
    CU_ASSERT_STRING_EQUAL(cfg->resolved[0].path, "kafka.group_instance_id");
    CU_ASSERT_STRING_EQUAL(cfg->resolved[0].refs, "${env:POD_NAME}");
    CU_ASSERT_EQUAL(cfg->resolved[0].mark.line, 4);
    CU_ASSERT_EQUAL(cfg->resolved[0].mark.col, 22);
    CU_ASSERT_STRING_EQUAL(cfg->resolved[1].path, "kafka.topics[1]");
    CU_ASSERT_STRING_EQUAL(cfg->resolved[2].path, "kafka.properties[\"client.id\"]");
    CU_ASSERT_STRING_EQUAL(cfg->resolved[3].path, "kafka.properties[\"sasl.password\"]");
    {
        char want[300];
        snprintf(want, sizeof(want), "${file:%s}", path);
        CU_ASSERT_STRING_EQUAL(cfg->resolved[3].refs, want);
    }
    CU_ASSERT_STRING_EQUAL(cfg->resolved[4].path, "redis.pipeline_depth");
    CU_ASSERT_STRING_EQUAL(cfg->resolved[5].path, "log.level");
    k2r_config_destroy(cfg);

    /* An environment override replaces a provider's value: not hidden. */
    {
        const char *env2[] = {"POD_NAME", "b:1", "K2R_KAFKA_BROKERS", "b:2", NULL};
        test_env = env2;
        cfg = parse_string("kafka: {brokers: \"${env:POD_NAME}\", group_id: g, topics: t}\n"
                           "rules: [{name: r, topic: t, type: a, id: b}]\n",
                           &errs);
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
        CU_ASSERT_STRING_EQUAL(cfg->kafka.brokers, "b:2");
        CU_ASSERT_EQUAL(k2r_config_provided(cfg, "kafka.brokers"), 0);
        k2r_config_destroy(cfg);
        test_env = env;
    }

    /* Errors about a provided value show *** in its place, whoever wrote
     * them: the range check, librdkafka. */
    cfg = parse_string("kafka:\n"
                       "  brokers: b:9092\n"
                       "  group_id: g\n"
                       "  topics: t\n"
                       "  properties:\n"
                       "    auto.offset.reset: ${env:BAD_RESET}\n"
                       "redis:\n"
                       "  pipeline_depth: ${env:BIG_DEPTH}\n"
                       "  cluster: {addresses: [\"${env:BAD_RESET}\"]}\n"
                       "rules:\n"
                       "  - {name: r, topic: t, type: a, id: b}\n",
                       &errs);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(errs.count, 3);
    CU_ASSERT_STRING_EQUAL(
        errs.lines[0], "inline.yaml:6:5: kafka.properties[\"auto.offset.reset\"]: librdkafka: "
                       "Invalid value \"***\" for configuration property \"auto.offset.reset\"");
    CU_ASSERT_STRING_EQUAL(
        errs.lines[1], "inline.yaml:8:19: redis.pipeline_depth: *** is out of range (1 to 65536)");
    CU_ASSERT_STRING_EQUAL(errs.lines[2],
                           "inline.yaml:9:24: redis.cluster.addresses[0]: expected host:port or "
                           "[ipv6]:port with a port 1-65535; found \"***\"");
    k2r_errors_clear(&errs);

    /* kafka.group_instance_id and the property are one setting, given once. */
    cfg = parse_string("kafka:\n"
                       "  brokers: b:9092\n"
                       "  group_id: g\n"
                       "  group_instance_id: a\n"
                       "  topics: t\n"
                       "  properties: {group.instance.id: b}\n"
                       "rules:\n"
                       "  - {name: r, topic: t, type: a, id: b}\n",
                       &errs);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_STRING_EQUAL(errs.lines[0],
                           "inline.yaml:6:16: kafka.properties[\"group.instance.id\"]: "
                           "give it once, as kafka.group_instance_id");
    k2r_errors_clear(&errs);

    unlink(path);
    rmdir(dir);
    test_env = NULL;
}

/* One reader checks every secret file: a K2R_*_FILE one drops one line
 * ending, as ${file:} does. */
static void test_secret_file_newline(void) {
    char dir[] = "/tmp/k2r-test-providers-XXXXXX", path[256];
    const char *env[] = {"K2R_REDIS_PASSWORD_FILE", path, NULL};
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg;

    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    write_file(path, sizeof(path), dir, "pw", "pw\r\n\r\n", 6);
    test_env = env;
    cfg = parse_string(minimal, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->redis.password, "pw\r\n");
    k2r_config_destroy(cfg);
    unlink(path);
    rmdir(dir);
    test_env = NULL;
}

/* YAML the loader refuses: tags, a second document, an alias nest. */
static void test_yaml_refused(void) {
    k2r_errors_t errs = {NULL, 0, 0};
    char yaml[4096];
    k2r_config_t *cfg;

    snprintf(yaml, sizeof(yaml), "%s---\nfoo: 1\n", minimal);
    cfg = parse_string(yaml, &errs);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT(errs.count == 1 &&
              strstr(errs.lines[0], ": a second YAML document: the config is one document"));
    k2r_errors_clear(&errs);

    cfg = parse_string("kafka: {brokers: !!binary aGk=, group_id: !local g, topics: [t]}\n"
                       "rules: [{name: r, topic: t, type: user, id: x}]\n",
                       &errs);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(errs.count, 2);
    CU_ASSERT_STRING_EQUAL(errs.lines[0], "inline.yaml:1:18: YAML tag !!binary: not supported "
                                          "(write the value plainly)");
    CU_ASSERT_STRING_EQUAL(errs.lines[1], "inline.yaml:1:43: YAML tag !local: not supported "
                                          "(write the value plainly)");
    k2r_errors_clear(&errs);

    /* 10^6 leaves from 60 lines: refused at once, not walked. */
    cfg = parse_string("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                       &errs);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_STRING_EQUAL(errs.lines[0], "inline.yaml: YAML: more than 200000 nodes with the "
                                          "aliases expanded (an alias nest, or an alias inside "
                                          "its own anchor)");
    k2r_errors_clear(&errs);
}

/* 3,000 rules of one name: one error per rule (against the first, not
 * every earlier namesake), and no more than K2R_ERRORS_MAX lines plus one
 * saying so (10,000 such rules made 50 million lines once). */
static void test_errors_bounded(void) {
    size_t size = 3000 * 64 + 256, n;
    char *yaml = malloc(size);
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg;

    CU_ASSERT_PTR_NOT_NULL_FATAL(yaml);
    n = (size_t)snprintf(yaml, size,
                         "kafka: {brokers: \"h:1\", group_id: g, topics: [t]}\nrules:\n");
    for (int i = 0; i < 3000; i++)
        n += (size_t)snprintf(yaml + n, size - n, "  - {name: same, topic: t, type: u, id: x}\n");
    cfg = parse_string(yaml, &errs);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(errs.count, K2R_ERRORS_MAX + 1);
    CU_ASSERT_STRING_EQUAL(errs.lines[0], "inline.yaml:4:5: rules[1].name: duplicate rule name "
                                          "\"same\" (first at line 3)");
    CU_ASSERT_STRING_EQUAL(errs.lines[K2R_ERRORS_MAX],
                           "inline.yaml: more errors follow; only the first 1000 are shown");
    k2r_errors_clear(&errs);
    free(yaml);
}

static void test_env_bad_url(void) {
    static const char *const env[] = {"K2R_REDIS_URL", "redis://h:99999", NULL};
    k2r_errors_t errs = {NULL, 0, 0};

    test_env = env;
    CU_ASSERT_PTR_NULL(parse_string(minimal, &errs));
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.lines[0], "K2R_REDIS_URL: "));
    k2r_errors_clear(&errs);
    test_env = NULL;
}

/* K2R_KAFKA_BROKERS once freed kafka.dead_letter_topic (a use after free). */
static void test_env_brokers_keep_dead_letter_topic(void) {
    static const char *const env[] = {"K2R_KAFKA_BROKERS", "k1:1", NULL};
    static const char *yaml = "kafka:\n"
                              "  brokers: b:9092\n"
                              "  group_id: g\n"
                              "  topics: t\n"
                              "  dead_letter_topic: dlq\n"
                              "rules:\n"
                              "  - {name: r, topic: t, type: a, id: b, on_error: dead-letter}\n";
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg;

    test_env = env;
    cfg = parse_string(yaml, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.brokers, "k1:1");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.dead_letter_topic, "dlq");
    k2r_config_destroy(cfg);
    test_env = NULL;
}

/* SASL credentials from the environment become librdkafka properties,
 * replacing any in the file; the file variant wins over the plain one. */
static void test_env_sasl(void) {
    char path[] = "/tmp/k2r-test-sasl-XXXXXX";
    const char *env[] = {"K2R_KAFKA_SASL_USERNAME",
                         "bridge",
                         "K2R_KAFKA_SASL_PASSWORD",
                         "plain",
                         "K2R_KAFKA_SASL_PASSWORD_FILE",
                         path,
                         NULL};
    static const char *yaml = "kafka:\n"
                              "  brokers: b:9092\n"
                              "  group_id: g\n"
                              "  topics: t\n"
                              "  properties: {sasl.username: old, security.protocol: sasl_ssl}\n"
                              "rules:\n"
                              "  - {name: r, topic: t, type: a, id: b}\n";
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg;
    FILE *f;
    int fd = mkstemp(path);

    CU_ASSERT_FATAL(fd >= 0);
    f = fdopen(fd, "w");
    fputs("from-file\n", f);
    fclose(f);
    test_env = env;
    cfg = parse_string(yaml, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(cfg->kafka.nproperties, 3);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[0].name, "sasl.username");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[0].value, "bridge");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[1].name, "security.protocol");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[2].name, "sasl.password");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.properties[2].value, "from-file");
    k2r_config_destroy(cfg);
    unlink(path);
    test_env = NULL;
}

static void test_durations(void) {
    static const struct {
        const char *text;
        int ok;
        int64_t ms;
    } cases[] = {{"0", 1, 0},       {"500ms", 1, 500},  {"30s", 1, 30000},
                 {"5m", 1, 300000}, {"2h", 1, 7200000}, {"0s", 1, 0},
                 {"30", 0, 0},      {"", 0, 0},         {"s", 0, 0},
                 {"1.5s", 0, 0},    {"-1s", 0, 0},      {"10 s", 0, 0},
                 {"1d", 0, 0},      {"5M", 0, 0},       {"99999999999999999h", 0, 0},
                 {"1h30m", 0, 0}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        int rc = k2r_parse_duration(cases[i].text, &ms);
        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "\nduration \"%s\": rc %d\n", cases[i].text, rc);
        CU_ASSERT_EQUAL(rc == 0, cases[i].ok);
        if (cases[i].ok)
            CU_ASSERT_EQUAL(ms, cases[i].ms);
    }
}

static void test_listen(void) {
    char host[64];
    int port = 0;

    CU_ASSERT_EQUAL(k2r_split_listen("0.0.0.0:8080", host, sizeof(host), &port), 0);
    CU_ASSERT_STRING_EQUAL(host, "0.0.0.0");
    CU_ASSERT_EQUAL(port, 8080);
    CU_ASSERT_EQUAL(k2r_split_listen("[::1]:9", host, sizeof(host), &port), 0);
    CU_ASSERT_STRING_EQUAL(host, "::1");
    CU_ASSERT_EQUAL(port, 9);
    CU_ASSERT_EQUAL(k2r_split_listen(":65535", host, sizeof(host), &port), 0);
    CU_ASSERT_STRING_EQUAL(host, "");
    CU_ASSERT_EQUAL(port, 65535);
    CU_ASSERT_EQUAL(k2r_split_listen("localhost:http", host, sizeof(host), &port), -1);
    CU_ASSERT_EQUAL(k2r_split_listen("localhost", host, sizeof(host), &port), -1);
    CU_ASSERT_EQUAL(k2r_split_listen("h:0", host, sizeof(host), &port), -1);
    CU_ASSERT_EQUAL(k2r_split_listen("h:65536", host, sizeof(host), &port), -1);
    CU_ASSERT_EQUAL(k2r_split_listen("::1:80", host, sizeof(host), &port), -1);
    CU_ASSERT_EQUAL(k2r_split_listen("[::1]80", host, sizeof(host), &port), -1);
}

/* The config `minimal` with `redis` as its redis: section; the errors it
 * gave are joined into `out` (one per line). */
static k2r_config_t *parse_redis(const char *redis, char *out, size_t size) {
    char yaml[2048];
    k2r_errors_t errs = {0};
    k2r_config_t *cfg;
    size_t n = 0;

    snprintf(yaml, sizeof(yaml), "%sredis:\n%s", minimal, redis);
    cfg = parse_string(yaml, &errs);
    out[0] = '\0';
    for (size_t i = 0; i < errs.count && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s\n", errs.lines[i]);
    k2r_errors_clear(&errs);
    return cfg;
}

static void test_redis_tls(void) {
    char errs[1024];
    k2r_redis_conf_t rc;
    k2r_config_t *cfg;

    /* rediss:// with every redis.tls setting; the sink's conf carries them. */
    cfg = parse_redis("  url: rediss://u:p@redis.example:6380\n"
                      "  tls:\n"
                      "    ca_file: /etc/ca.pem\n"
                      "    cert_file: /etc/c.pem\n"
                      "    key_file: /etc/k.pem\n"
                      "    server_name: r.internal\n"
                      "    insecure_skip_verify: true\n",
                      errs, sizeof(errs));
    CU_ASSERT_STRING_EQUAL(errs, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    k2r_config_redis_conf(cfg, &rc);
    CU_ASSERT_EQUAL(rc.tls, 1);
    CU_ASSERT_STRING_EQUAL(rc.host, "redis.example");
    CU_ASSERT_EQUAL(rc.port, 6380);
    CU_ASSERT_STRING_EQUAL(rc.tls_ca_file, "/etc/ca.pem");
    CU_ASSERT_STRING_EQUAL(rc.tls_cert_file, "/etc/c.pem");
    CU_ASSERT_STRING_EQUAL(rc.tls_key_file, "/etc/k.pem");
    CU_ASSERT_STRING_EQUAL(rc.tls_server_name, "r.internal");
    CU_ASSERT_EQUAL(rc.tls_insecure_skip_verify, 1);
    k2r_config_destroy(cfg);

    /* rediss:// alone: the system's store, the URL's host, verification on. */
    cfg = parse_redis("  url: rediss://redis.example\n", errs, sizeof(errs));
    CU_ASSERT_STRING_EQUAL(errs, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    k2r_config_redis_conf(cfg, &rc);
    CU_ASSERT_EQUAL(rc.tls, 1);
    CU_ASSERT_PTR_NULL(rc.tls_ca_file);
    CU_ASSERT_PTR_NULL(rc.tls_cert_file);
    CU_ASSERT_PTR_NULL(rc.tls_server_name);
    CU_ASSERT_EQUAL(rc.tls_insecure_skip_verify, 0);
    k2r_config_destroy(cfg);

    /* redis.tls with a plaintext URL is an error at the tls: mapping. */
    cfg = parse_redis("  url: redis://h\n"
                      "  tls:\n"
                      "    ca_file: /etc/ca.pem\n",
                      errs, sizeof(errs));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_STRING_EQUAL(errs, "inline.yaml:10:5: redis.tls: set, but redis.url is redis:// "
                                 "(plaintext) and redis.sentinel.tls is false; use rediss:// for "
                                 "TLS, or remove redis.tls\n");
    k2r_config_destroy(cfg);

    /* Unknown keys, types, and a certificate without its key. */
    cfg = parse_redis("  url: rediss://h\n"
                      "  tls:\n"
                      "    ca_fil: /etc/ca.pem\n"
                      "    insecure_skip_verify: maybe\n"
                      "    cert_file: /etc/c.pem\n",
                      errs, sizeof(errs));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_STRING_EQUAL(errs,
                           "inline.yaml:10:5: redis.tls: unknown key \"ca_fil\" (did you "
                           "mean \"ca_file\"?)\n"
                           "inline.yaml:11:27: redis.tls.insecure_skip_verify: expected "
                           "true or false\n"
                           "inline.yaml:10:5: redis.tls: cert_file is set without key_file\n");
    k2r_config_destroy(cfg);

    /* tls: must be a mapping; a key of redis: near "tls" gets it suggested. */
    cfg = parse_redis("  url: rediss://h\n"
                      "  tls: yes\n"
                      "  tlz: {}\n",
                      errs, sizeof(errs));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_STRING_EQUAL(errs, "inline.yaml:9:8: redis.tls: expected a mapping, found a "
                                 "scalar\n"
                                 "inline.yaml:10:3: redis: unknown key \"tlz\" (did you mean "
                                 "\"tls\"?)\n");
    k2r_config_destroy(cfg);
}

/* redis.sentinel, redis.cluster, redis.sharded and redis.idle_check. */
static void test_redis_topology(void) {
    static const char *const env[] = {"K2R_REDIS_SENTINEL_PASSWORD", "envsp", NULL};
    char errs[1024];
    k2r_config_t *cfg;

    cfg = parse_redis("  url: redis://:datapw@ignored\n"
                      "  sentinel:\n"
                      "    master: mymaster\n"
                      "    addresses: [\"127.0.0.1:26379\", \"[::1]:26380\"]\n"
                      "    username: watcher\n"
                      "    password: filepw\n"
                      "  idle_check: 2s\n",
                      errs, sizeof(errs));
    CU_ASSERT_STRING_EQUAL(errs, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->redis.sentinel_master, "mymaster");
    CU_ASSERT_EQUAL_FATAL(cfg->redis.nsentinel_addrs, 2);
    CU_ASSERT_STRING_EQUAL(cfg->redis.sentinel_addrs[0], "127.0.0.1:26379");
    CU_ASSERT_STRING_EQUAL(cfg->redis.sentinel_addrs[1], "[::1]:26380");
    CU_ASSERT_STRING_EQUAL(cfg->redis.sentinel_username, "watcher");
    CU_ASSERT_STRING_EQUAL(cfg->redis.sentinel_password, "filepw");
    CU_ASSERT_EQUAL(cfg->redis.sentinel_tls, 0);
    CU_ASSERT_EQUAL(cfg->redis.ncluster_addrs, 0);
    CU_ASSERT_EQUAL(cfg->redis.sharded, 0);
    CU_ASSERT_EQUAL(cfg->redis.idle_check_ms, 2000);
    k2r_config_destroy(cfg);

    /* The sentinels' password from the environment wins over the file's. */
    test_env = env;
    cfg = parse_redis("  sentinel: {master: m, addresses: [\"s:1\"], password: filepw}\n", errs,
                      sizeof(errs));
    test_env = NULL;
    CU_ASSERT_STRING_EQUAL(errs, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->redis.sentinel_password, "envsp");
    CU_ASSERT_EQUAL(cfg->redis.idle_check_ms, 5000);
    k2r_config_destroy(cfg);

    cfg = parse_redis("  cluster:\n"
                      "    addresses: [\"10.0.0.1:7000\", \"10.0.0.2:7000\"]\n"
                      "  sharded: true\n",
                      errs, sizeof(errs));
    CU_ASSERT_STRING_EQUAL(errs, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(cfg->redis.ncluster_addrs, 2);
    CU_ASSERT_STRING_EQUAL(cfg->redis.cluster_addrs[1], "10.0.0.2:7000");
    CU_ASSERT_EQUAL(cfg->redis.sharded, 1);
    k2r_config_destroy(cfg);

    /* Bad addresses at the list, what Sentinel needs, one topology, db 0. */
    cfg = parse_redis("  url: redis://h/3\n"
                      "  sentinel:\n"
                      "    addresses: [\"nohost\", \":5\", \"h:0\"]\n"
                      "  cluster: {addresses: [\"a:1\"]}\n"
                      "  idle_check: 10ms\n",
                      errs, sizeof(errs));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_STRING_EQUAL(
        errs, "inline.yaml:12:15: redis.idle_check: 10ms is out of range (100ms to 3600000ms)\n"
              "inline.yaml:10:16: redis.sentinel.addresses[0]: expected host:port or [ipv6]:port "
              "with a port 1-65535; found \"nohost\"\n"
              "inline.yaml:10:16: redis.sentinel.addresses[1]: expected host:port or [ipv6]:port "
              "with a port 1-65535; found \":5\"\n"
              "inline.yaml:10:16: redis.sentinel.addresses[2]: expected host:port or [ipv6]:port "
              "with a port 1-65535; found \"h:0\"\n"
              "inline.yaml:8:3: redis.sentinel.master: required with redis.sentinel\n"
              "inline.yaml:8:3: redis.sentinel and redis.cluster: choose one (a Redis Cluster "
              "fails over by itself, without sentinels)\n"
              "inline.yaml:8:3: redis.url: database 3 with redis.cluster: a cluster has database "
              "0 only\n");
    k2r_config_destroy(cfg);
}

/* A directory where the file should be: a read error, not a crash. */
static void test_directory_as_file(void) {
    k2r_errors_t errs = {NULL, 0, 0};

    CU_ASSERT_PTR_NULL(k2r_config_load("/", NULL, &errs));
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_STRING_EQUAL(errs.lines[0], "/: cannot read: Is a directory");
    k2r_errors_clear(&errs);

    /* A FIFO (a reload on one stalled delivery once) and a device: refused
     * at once, never waited on or read. */
    {
        char dir[] = "/tmp/k2r-test-fifo-XXXXXX", path[64];

        CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/bridge.yaml", dir);
        CU_ASSERT_FATAL(mkfifo(path, 0600) == 0);
        CU_ASSERT_PTR_NULL(k2r_config_load(path, NULL, &errs));
        CU_ASSERT(errs.count == 1 && strstr(errs.lines[0], ": not a regular file"));
        k2r_errors_clear(&errs);
        unlink(path);
        rmdir(dir);
        CU_ASSERT_PTR_NULL(k2r_config_load("/dev/zero", NULL, &errs));
        CU_ASSERT(errs.count == 1 && strcmp(errs.lines[0], "/dev/zero: not a regular file") == 0);
        k2r_errors_clear(&errs);
    }
}

static void test_missing_file(void) {
    k2r_errors_t errs = {NULL, 0, 0};

    CU_ASSERT_PTR_NULL(k2r_config_load("/nonexistent/bridge.yaml", NULL, &errs));
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_STRING_EQUAL(errs.lines[0],
                           "/nonexistent/bridge.yaml: cannot open: No such file or directory");
    k2r_errors_clear(&errs);
}

/* Every "# expect: " line of the fixture, in order, and nothing else. */
static void check_invalid(const char *name) {
    char rel[256], *buf, *p;
    size_t len, nexpect = 0;
    const char *expect[32];
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_rules_t *rules = NULL;
    k2r_config_t *cfg;

    snprintf(rel, sizeof(rel), "config/%s", name);
    buf = slurp(test_fixture(rel), &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (p = buf; (p = strstr(p, "# expect: ")) != NULL && nexpect < 32;) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        expect[nexpect++] = p + strlen("# expect: ");
        p = eol ? eol + 1 : p + strlen(p);
    }
    CU_ASSERT_FATAL(nexpect > 0);

    test_env = NULL;
    cfg = load_fixture(name, &errs, &rules);
    CU_ASSERT_PTR_NULL(rules);
    for (size_t i = 0; i < errs.count || i < nexpect; i++) {
        const char *got = i < errs.count ? errs.lines[i] : "(none)";
        const char *want = i < nexpect ? expect[i] : "(none)";
        if (strcmp(got, want) != 0)
            fprintf(stderr, "\n%s error %zu:\n  want: %s\n  got:  %s\n", name, i, want, got);
        CU_ASSERT_STRING_EQUAL(got, want);
    }
    k2r_rules_destroy(rules);
    k2r_config_destroy(cfg);
    k2r_errors_clear(&errs);
    free(buf);
}

static void test_invalid_fixtures(void) {
    static const char *const names[] = {
        "unknown-keys.yaml",  "bad-values.yaml",          "bad-rules.yaml",
        "not-yaml.yaml",      "missing-sections.yaml",    "empty.yaml",
        "scalar-root.yaml",   "duplicate-keys.yaml",      "bad-settings.yaml",
        "bad-providers.yaml", "oauthbearer-no-token.yaml"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        check_invalid(names[i]);
}

static void test_example_config_loads(void) {
    char path[4096];
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg;
    k2r_rules_t *rules;

    snprintf(path, sizeof(path), "%s/config/bridge.example.yaml", K2R_SOURCE_DIR);
    cfg = k2r_config_load(path, NULL, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    rules = k2r_rules_new(cfg, &errs);
    CU_ASSERT_PTR_NOT_NULL(rules);
    CU_ASSERT_EQUAL(errs.count, 0);
    k2r_rules_destroy(rules);
    k2r_config_destroy(cfg);
}

/* The README's block between the settings markers is what the table renders
 * (`make readme-settings` rewrites it). */
static void test_settings_readme(void) {
    static const char begin[] = "<!-- settings:begin -->\n", end[] = "<!-- settings:end -->";
    char path[4096], *readme, *table, *from, *to;
    size_t len;

    snprintf(path, sizeof(path), "%s/README.md", K2R_SOURCE_DIR);
    readme = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(readme);
    table = k2r_settings_render(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(table);
    from = strstr(readme, begin);
    to = from ? strstr(from, end) : NULL;
    CU_ASSERT_PTR_NOT_NULL(to);
    if (to) {
        from += strlen(begin);
        *to = '\0';
        if (strcmp(from, table) != 0)
            fprintf(stderr, "\nREADME.md's settings block differs from the table: run `make "
                            "readme-settings`\n");
        CU_ASSERT_STRING_EQUAL(from, table);
    }
    free(table);
    free(readme);
}

/* The table's rows find their values, and a reload's comparison sees exactly
 * the settings that changed. */
static void test_settings_differ(void) {
    static const char *changed = "kafka:\n"
                                 "  brokers: b:9092\n"
                                 "  group_id: g\n"
                                 "  topics: [t, u]\n"
                                 "redis: {command_timeout_ms: 7000}\n"
                                 "http: {listen: \":9000\"}\n"
                                 "limits: {max_age: 5s}\n"
                                 "rules:\n"
                                 "  - {name: r, topic: t, type: a, id: b}\n";
    static const char *const want[] = {"kafka.topics", "redis.command_timeout_ms", "limits.max_age",
                                       "http.listen", NULL};
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *a, *b;
    const k2r_setting_t *settings;
    size_t n, w = 0;

    test_env = NULL;
    a = parse_string(minimal, &errs);
    b = parse_string(changed, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    settings = k2r_settings(&n);
    for (size_t i = 0; i < n; i++) {
        int differs = k2r_setting_differs(&settings[i], a, b);
        int expected = want[w] && strcmp(settings[i].name, want[w]) == 0;

        if (differs != expected)
            fprintf(stderr, "\n%s: differs %d\n", settings[i].name, differs);
        CU_ASSERT_EQUAL(differs, expected);
        w += expected;
        CU_ASSERT_FALSE(k2r_setting_differs(&settings[i], a, a));
    }
    CU_ASSERT_PTR_NULL(want[w]);
    CU_ASSERT_PTR_NOT_NULL(k2r_setting_find("redis.url"));
    CU_ASSERT_PTR_NULL(k2r_setting_find("redis.urll"));
    CU_ASSERT(k2r_setting_find("http.listen")->flags & K2R_SETTING_RESTART);
    CU_ASSERT_FALSE(k2r_setting_find("log.level")->flags & K2R_SETTING_RESTART);
    k2r_config_destroy(a);
    k2r_config_destroy(b);
}

/* dedupe: and a rule's history: as written, their defaults, and what is refused. */
static void test_dedupe_history(void) {
    static const char base[] = "kafka: {brokers: b, group_id: g, topics: [t]}\n"
                               "redis: {url: \"redis://127.0.0.1:6379\"}\n";
    char yaml[1024];
    k2r_errors_t errs;
    k2r_config_t *cfg;

    memset(&errs, 0, sizeof(errs));
    snprintf(yaml, sizeof(yaml), "%srules:\n  - {name: a, topic: t}\n", base);
    cfg = parse_string(yaml, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->dedupe.enabled, 0);
    CU_ASSERT_EQUAL(cfg->dedupe.window_ms, 600000);
    CU_ASSERT_STRING_EQUAL(cfg->dedupe.prefix, "k2r:dedupe:");
    CU_ASSERT_STRING_EQUAL(cfg->redis.history_prefix, "history:");
    CU_ASSERT_EQUAL(cfg->rules[0].history_maxlen, 0);
    k2r_config_destroy(cfg);

    snprintf(yaml, sizeof(yaml),
             "%sdedupe: {enabled: true, window: 90s, prefix: \"d:\"}\n"
             "rules:\n  - {name: a, topic: t, history: {maxlen: 100, ttl: 1h}}\n  - {name: b, "
             "topic: t, history: "
             "{maxlen: 5}}\n",
             base);
    cfg = parse_string(yaml, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->dedupe.enabled, 1);
    CU_ASSERT_EQUAL(cfg->dedupe.window_ms, 90000);
    CU_ASSERT_STRING_EQUAL(cfg->dedupe.prefix, "d:");
    CU_ASSERT_EQUAL(cfg->rules[0].history_maxlen, 100);
    CU_ASSERT_EQUAL(cfg->rules[0].history_ttl_ms, 3600000);
    CU_ASSERT_EQUAL(cfg->rules[1].history_maxlen, 5);
    CU_ASSERT_EQUAL(cfg->rules[1].history_ttl_ms, 0);
    k2r_config_destroy(cfg);

    snprintf(yaml, sizeof(yaml),
             "%sdedupe: {window: 10ms}\nrules:\n  - {name: a, topic: t, history: {ttl: 1h}}\n"
             "  - {name: b, topic: t, history: {maxlen: 0, size: 3}}\n",
             base);
    CU_ASSERT_PTR_NULL(parse_string(yaml, &errs));
    CU_ASSERT_EQUAL(errs.count, 4);
    CU_ASSERT(errs.count == 4 && strstr(errs.lines[0], "dedupe.window") &&
              strstr(errs.lines[1], "rules[0].history: maxlen is required") &&
              strstr(errs.lines[2], "rules[1].history.maxlen") &&
              strstr(errs.lines[3], "unknown key \"size\""));
    k2r_errors_clear(&errs);
}

int test_config_register(void) {
    CU_pSuite s = CU_add_suite("config", NULL, NULL);

    if (!s || !CU_add_test(s, "a full file, every value", test_valid_full) ||
        !CU_add_test(s, "defaults", test_defaults) ||
        !CU_add_test(s, "environment overrides", test_env_overrides) ||
        !CU_add_test(s, "K2R_REDIS_PASSWORD_FILE", test_env_password_file) ||
        !CU_add_test(s, "secret files: whole, or an error naming the file", test_secret_files) ||
        !CU_add_test(s, "config providers: ${env:} and ${file:}, each refusal", test_providers) ||
        !CU_add_test(s, "config providers in the loader: every kind, never shown",
                     test_providers_config) ||
        !CU_add_test(s, "secret files drop one line ending", test_secret_file_newline) ||
        !CU_add_test(s, "YAML refused: tags, a second document, an alias nest",
                     test_yaml_refused) ||
        !CU_add_test(s, "errors: one per duplicate, at most 1000 lines", test_errors_bounded) ||
        !CU_add_test(s, "bad K2R_REDIS_URL", test_env_bad_url) ||
        !CU_add_test(s, "missing file", test_missing_file) ||
        !CU_add_test(s, "a directory, a FIFO, a device as the file", test_directory_as_file) ||
        !CU_add_test(s, "K2R_KAFKA_BROKERS keeps the dead-letter topic",
                     test_env_brokers_keep_dead_letter_topic) ||
        !CU_add_test(s, "K2R_KAFKA_SASL_* become properties", test_env_sasl) ||
        !CU_add_test(s, "durations", test_durations) ||
        !CU_add_test(s, "http.listen addresses", test_listen) ||
        !CU_add_test(s, "redis.tls and rediss://", test_redis_tls) ||
        !CU_add_test(s, "redis.sentinel, redis.cluster, sharded, idle_check",
                     test_redis_topology) ||
        !CU_add_test(s, "invalid fixtures, exact messages", test_invalid_fixtures) ||
        !CU_add_test(s, "config/bridge.example.yaml loads", test_example_config_loads) ||
        !CU_add_test(s, "settings: what a reload compares", test_settings_differ) ||
        !CU_add_test(s, "settings: the README's table is the table", test_settings_readme) ||
        !CU_add_test(s, "dedupe and a rule's history", test_dedupe_history))
        return CU_get_error();
    return 0;
}
