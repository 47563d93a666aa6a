/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cli.c - the command as users run it before deploying: `check` (exit
 * codes and exact messages), `check --list-settings` (the settings table, no
 * config file read), `map` (exact output lines), `version`, usage
 * errors; `run` refusing hostile configs and environments with one line
 * and a non-zero status; and values from ${env:} and ${file:} used by a run
 * and never shown (the last three against the stack's servers).
 */
#include <CUnit/CUnit.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int run(const char *args, const char *input, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "cd %s && %s %s", K2R_SOURCE_DIR, h_binary(), args);
    return h_run(cmd, input, out, 1);
}

static void test_check_example(void) {
    char *out = NULL;
    int rc = run("check -c config/bridge.example.yaml", NULL, &out);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "rule by-source: topic github.events -> channel "
                                "\"events:{type}:{id}\" (type=source_type, id=source_id), fields "
                                "[id, type, source_id]\n"
                                "config/bridge.example.yaml: OK (1 rule(s), 1 topic(s))\n");
    free(out);
}

static void test_check_invalid(void) {
    char *out = NULL;
    int rc = run("check -c tests/fixtures/config/unknown-keys.yaml", NULL, &out);

    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "tests/fixtures/config/unknown-keys.yaml:4:3: kafka: "
                                       "unknown key \"topcs\" (did you mean \"topics\"?)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "tests/fixtures/config/unknown-keys.yaml: 5 error(s)\n"));
    free(out);

    rc = run("check -c /nonexistent.yaml", NULL, &out);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_STRING_EQUAL(out, "/nonexistent.yaml: cannot open: No such file or directory\n"
                                "/nonexistent.yaml: 1 error(s)\n");
    free(out);
}

/* The settings table as the binary prints it, with no config file at all;
 * the Markdown form is what the README holds (tests/unit checks it line for
 * line). */
static void test_check_list_settings(void) {
    char *out = NULL;
    int rc = run("check -c /nonexistent.yaml --list-settings", NULL, &out);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(strncmp(out, "kafka.brokers ", 14), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nredis.command_timeout_ms        integer 1..600000"
                                       "                5000                    restart  -\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nhttp.listen                     string"
                                       "                           0.0.0.0:8080            "
                                       "restart  K2R_HTTP_LISTEN\n"));
    free(out);

    rc = run("check --list-settings=markdown", NULL, &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(strncmp(out, "| setting | type | default | reload | environment |", 51), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\n| `limits.max_age` | duration 0..720h | `0` | live |"));
    free(out);

    rc = run("check --list-settings=yaml", NULL, &out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_STRING_EQUAL(
        out, "kafka-redis-bridge: --list-settings takes text or markdown, not \"yaml\"\n");
    free(out);
    rc = run("map --list-settings", NULL, &out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_STRING_EQUAL(out, "kafka-redis-bridge: --list-settings goes with check\n");
    free(out);
}

/* Writes `yaml` to a temp file; the path goes into out. */
static void write_temp(char *out, size_t size, const char *yaml) {
    int fd;

    snprintf(out, size, "/tmp/k2r-cli-XXXXXX");
    fd = mkstemp(out);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
    close(fd);
}

/* The one error line of a `run` that cannot start (JSON log lines are
 * matched by their message text). */
/* `run -c config` with `env` (NAME=value words, "" for none) in its
 * environment must exit want_rc having printed `want`. */
static void expect_run_env(const char *env, const char *config, int want_rc, const char *want) {
    char cmd[4096], *out = NULL;
    int rc;

    snprintf(cmd, sizeof(cmd), "cd %s && %s %s run -c %s", K2R_SOURCE_DIR, env, h_binary(), config);
    rc = h_run(cmd, NULL, &out, 1);
    if (rc != want_rc || !strstr(out, want))
        fprintf(stderr, "\nrun -c %s: status %d, output:\n%s\n", config, rc, out);
    CU_ASSERT_EQUAL(rc, want_rc);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    free(out);
}

static void expect_run(const char *config, int want_rc, const char *want) {
    expect_run_env("", config, want_rc, want);
}

static void test_run_hostile_config(void) {
    char path[64], yaml[1024], user[64], cmd[512];

    expect_run("/nonexistent.yaml", 1, "/nonexistent.yaml: cannot open: No such file or directory");
    expect_run("/", 1, "/: cannot read: Is a directory");

    write_temp(path, sizeof(path),
               "kafka: {brokers: 127.0.0.1:9, group_id: g, topics: [t]}\n"
               "redis: {url: \"redis://127.0.0.1:70000\", pipeline_depth: deep}\n"
               "rules: [{name: r, topic: t, type: a, id: b}]\n");
    expect_run(path, 1, ":2:14: redis.url: port must be 1-65535");
    expect_run(path, 1, "redis.pipeline_depth: expected an integer, found \"deep\"");
    unlink(path);

    /* No broker at all: one line naming librdkafka's reason, status 3. */
    write_temp(path, sizeof(path),
               "kafka: {brokers: 127.0.0.1:9, group_id: g, topics: [t], startup_timeout: 1s}\n"
               "http: {enabled: false}\n"
               "rules: [{name: r, topic: t, type: a, id: b}]\n");
    expect_run(path, 3,
               "kafka: cannot start: no broker answered within 1000 ms: Local: Broker transport "
               "failure");
    expect_run(path, 3, "Connection refused");
    unlink(path);

    /* The real broker, but Redis refuses the password: status 3. */
    h_unique(user, sizeof(user), "cli");
    snprintf(cmd, sizeof(cmd), "ACL SETUSER %s on '>right' '&*' +publish +ping", user);
    CU_ASSERT_EQUAL(h_redis_cli(cmd, "OK"), 0);
    snprintf(yaml, sizeof(yaml),
             "kafka: {brokers: \"%s\", group_id: %s, topics: [t]}\n"
             "redis: {url: \"redis://%s:wrong@127.0.0.1:%d\"}\n"
             "http: {enabled: false}\n"
             "rules: [{name: r, topic: t, type: a, id: b}]\n",
             h_brokers(), user, user, h_redis_port());
    write_temp(path, sizeof(path), yaml);
    expect_run(path, 3, "refused the credentials: AUTH: WRONGPASS");
    unlink(path);

    /* The user on its own: redis.username (no user in the URL) with the right
     * password connects; K2R_REDIS_USERNAME wins over the file's, so a wrong
     * one there is refused. */
    snprintf(yaml, sizeof(yaml),
             "kafka: {brokers: \"%s\", group_id: %s, topics: [t]}\n"
             "redis: {url: \"redis://127.0.0.1:%d\", username: %s, password: right}\n"
             "http: {enabled: false}\n"
             "log: {format: text}\n"
             "rules: [{name: r, topic: t, type: a, id: b}]\n",
             h_brokers(), user, h_redis_port(), user);
    {
        h_bridge_t b;

        memset(&b, 0, sizeof(b));
        CU_ASSERT_EQUAL_FATAL(h_bridge_start(&b, yaml), 0);
        CU_ASSERT(h_bridge_wait_log(&b, "redis: connected to", h_deadline(30000)));
        CU_ASSERT_EQUAL(h_bridge_stop(&b, SIGTERM), 0);
        h_bridge_cleanup(&b);
    }
    write_temp(path, sizeof(path), yaml);
    expect_run_env("K2R_REDIS_USERNAME=nobody", path, 3,
                   "refused the credentials: AUTH: WRONGPASS");
    unlink(path);
    snprintf(cmd, sizeof(cmd), "ACL DELUSER %s", user);
    CU_ASSERT_EQUAL(h_redis_cli(cmd, "1"), 0);
}

/* The whole of a file, NUL-terminated (NULL when it cannot be read). */
static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f)
        return NULL;
    do {
        if (len + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = len + 65536);
            if (!nb)
                break;
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* Counts the secrets of `secrets` (NULL-terminated) that occur in `text`,
 * naming each on stderr; `where` says what text it is. */
static int secrets_in(const char *text, const char *const *secrets, const char *where) {
    int found = 0;

    for (size_t i = 0; secrets[i]; i++) {
        if (text && strstr(text, secrets[i])) {
            fprintf(stderr, "\nsecret \"%s\" appears in %s\n", secrets[i], where);
            found++;
        }
    }
    return found;
}

/*
 * Values from ${env:} and ${file:} are used and never shown: `check` lists
 * where they came from with ***; a run (debug logs, a reload after the
 * password file changed, a record
 * published through Redis with the password from a file, static membership
 * with the instance id from the environment) logs *** where it names them;
 * /metrics holds none of them.
 */
static void test_provider_secrets_never_shown(void) {
    char dir[] = "/tmp/k2r-cli-secrets-XXXXXX", pw_path[96], yaml[4096], rules[512], sections[256],
         props[256], opts_kafka[128], user[64], password[64], client_id[64], instance[64],
         group_env[96], cmd[512], want[512], config[64], rotated[64], *out = NULL, *log;
    const char *secrets[] = {password, client_id, instance, group_env, rotated, NULL};
    h_config_opts_t opts = {NULL, opts_kafka, props, NULL, sections};
    h_scene_t sc;
    h_http_t r;
    FILE *f;
    int rc;

    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, "cli-secrets", 1, NULL, H_SCENE_HTTP), 0);
    h_unique(user, sizeof(user), "cli-secret-user");
    h_unique(password, sizeof(password), "pw-from-file");
    h_unique(rotated, sizeof(rotated), "pw-rotated");
    h_unique(client_id, sizeof(client_id), "client-from-env");
    h_unique(instance, sizeof(instance), "instance-from-env");
    snprintf(group_env, sizeof(group_env), "%s", sc.group);
    snprintf(pw_path, sizeof(pw_path), "%s/redis-password", dir);
    f = fopen(pw_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "%s\n", password);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "ACL SETUSER %s on '>%s' '&*' +publish +ping", user, password);
    CU_ASSERT_EQUAL_FATAL(h_redis_cli(cmd, "OK"), 0);
    setenv("K2R_TEST_GROUP", group_env, 1);
    setenv("K2R_TEST_CLIENT_ID", client_id, 1);
    setenv("K2R_TEST_INSTANCE", instance, 1);
    setenv("K2R_TEST_REDIS_USER", user, 1);

    snprintf(rules, sizeof(rules),
             "  - name: numbered\n"
             "    topic: %s\n"
             "    vars:\n"
             "      n: {path: n}\n"
             "    channel: \"%s:{n}\"\n"
             "    message: \"{n}\"\n",
             sc.topic, sc.prefix);
    snprintf(props, sizeof(props), "    client.id: ${env:K2R_TEST_CLIENT_ID}\n");
    snprintf(opts_kafka, sizeof(opts_kafka), "  group_instance_id: ${env:K2R_TEST_INSTANCE}\n");
    snprintf(sections, sizeof(sections),
             "log:\n  format: text\n  level: debug\n"
             "http:\n  enabled: true\n  listen: 127.0.0.1:%d\n",
             sc.http_port);
    opts.redis_extra = NULL;
    h_config_opts(yaml, sizeof(yaml), "${env:K2R_TEST_GROUP}", sc.topic, sc.redis_port, &opts,
                  rules);
    /* The Redis credentials from the providers too. */
    {
        char *at = strstr(yaml, "redis:\n");
        char tail[4096];

        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        snprintf(tail, sizeof(tail), "%s", at + strlen("redis:\n"));
        snprintf(at, sizeof(yaml) - (size_t)(at - yaml),
                 "redis:\n  username: ${env:K2R_TEST_REDIS_USER}\n  password: ${file:%s}\n%s",
                 pw_path, tail);
    }

    /* check: where each came from, never what. */
    write_temp(config, sizeof(config), yaml);
    snprintf(cmd, sizeof(cmd), "check -c %s", config);
    rc = run(cmd, NULL, &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(secrets_in(out, secrets, "check's output"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nkafka.group_id: *** (from ${env:K2R_TEST_GROUP})\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "\nkafka.group_instance_id: *** (from ${env:K2R_TEST_INSTANCE})\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "\nkafka.properties[\"client.id\"]: *** (from ${env:K2R_TEST_CLIENT_ID})\n"));
    snprintf(want, sizeof(want), "\nredis.password: *** (from ${file:%s})\n", pw_path);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    free(out);

    /* A run that uses them all: it publishes (AUTH with the file's password
     * worked), reloads (they are resolved again), and stops. */
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT(h_http_wait(sc.http_port, "/readyz", 200, "ready\n", h_deadline(60000), &r));
    h_http_free(&r);
    h_produce_numbered(&sc, 0, 5);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 5, h_deadline(30000)), 5);
    h_assert_numbered(&sc, sc.sub, 0, 5);
    {
        /* The broker knows the member by the client.id from the environment. */
        h_member_t members[4];
        int n = h_group_members(sc.group, members, 4, NULL);

        CU_ASSERT_EQUAL(n, 1);
        if (n == 1)
            CU_ASSERT_STRING_EQUAL(members[0].client_id, client_id);
    }
    {
        /* The registry takes the counters four times a second: asked until
         * it has the five records. */
        int64_t deadline = h_deadline(10000);
        int counted = 0;

        do {
            h_http_request(sc.http_port, "GET", "/metrics", &r);
            counted = r.body && strstr(r.body, "\nk2r_records_consumed_total 5\n");
            if (!counted && h_now_ms() < deadline) {
                h_http_free(&r);
                poll(NULL, 0, 100);
            }
        } while (!counted && h_now_ms() < deadline);
        CU_ASSERT(counted);
        CU_ASSERT_EQUAL(secrets_in(r.body, secrets, "/metrics"), 0);
        h_http_free(&r);
    }
    /* A rotated password file: the reload reads it again and names the
     * setting that takes a restart, not its value. */
    f = fopen(pw_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "%s\n", rotated);
    fclose(f);
    CU_ASSERT_EQUAL(kill(sc.b.pid, SIGHUP), 0);
    CU_ASSERT(h_bridge_wait_log(&sc.b, "reloaded rules from", h_deadline(30000)));
    CU_ASSERT(h_bridge_log_has(&sc.b, ": redis.password changed: these settings take a restart"));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    log = read_all(sc.b.log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_EQUAL(secrets_in(log, secrets, "the bridge's log"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "bridge: running: group ***, 1 topic(s)"));
    free(log);

    unsetenv("K2R_TEST_GROUP");
    unsetenv("K2R_TEST_CLIENT_ID");
    unsetenv("K2R_TEST_INSTANCE");
    unsetenv("K2R_TEST_REDIS_USER");
    snprintf(cmd, sizeof(cmd), "ACL DELUSER %s", user);
    CU_ASSERT_EQUAL(h_redis_cli(cmd, "1"), 0);
    unlink(config);
    unlink(pw_path);
    rmdir(dir);
    h_scene_close(&sc);
}

static void test_check_env_override(void) {
    char *out = NULL;
    int rc = run("check -c config/bridge.example.yaml", NULL, &out);
    free(out);
    CU_ASSERT_EQUAL(rc, 0);
    rc = h_run("K2R_REDIS_URL=redis://h:0 " K2R_SOURCE_DIR
               "/build/kafka-redis-bridge check -c " K2R_SOURCE_DIR "/config/bridge.example.yaml",
               NULL, &out, 1);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "K2R_REDIS_URL: "));
    free(out);
    /* Those `run` applies itself (the log's) too: what makes `run` exit 1
     * makes `check` exit 1, with the same line. */
    rc = h_run("K2R_LOG_LEVEL=loud " K2R_SOURCE_DIR
               "/build/kafka-redis-bridge check -c " K2R_SOURCE_DIR "/config/bridge.example.yaml",
               NULL, &out, 1);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_STRING_EQUAL(out,
                           "K2R_LOG_LEVEL: expected error, warn, info or debug; found \"loud\"\n");
    free(out);
}

static void test_map(void) {
    const char *input =
        "{\"id\":\"1\",\"type\":\"push\",\"source_type\":\"user\",\"source_id\":\"octocat\"}\n"
        "{\"id\":2,\"type\":\"fork\",\"source_type\":\"repo\",\"source_id\":\"owner/repo\"}\n"
        "not json\n"
        "{\"source_type\":\"org\"}\n";
    char *out = NULL;
    int rc = run("map -c config/bridge.example.yaml", input, &out);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(
        out,
        "{\"rule\":\"by-source\",\"publish\":[{\"channel\":\"events:user:octocat\",\"message\":"
        "\"{\\\"id\\\":\\\"1\\\",\\\"type\\\":\\\"push\\\",\\\"source_id\\\":\\\"octocat\\\"}\"}]}"
        "\n"
        "{\"rule\":\"by-source\",\"publish\":[{\"channel\":\"events:repo:owner/repo\",\"message\":"
        "\"{\\\"id\\\":2,\\\"type\\\":\\\"fork\\\",\\\"source_id\\\":\\\"owner/repo\\\"}\"}]}\n"
        "{\"rule\":\"by-source\",\"action\":\"skip\",\"reason\":\"not_json: value is not JSON: "
        "Problem while parsing an atom starting with the letter 'n'\"}\n"
        "{\"rule\":\"by-source\",\"action\":\"skip\",\"reason\":\"missing_field: id (source_id): "
        "missing\"}\n");
    free(out);

    rc = run("map -c config/bridge.example.yaml --topic other", "{}\n", &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"rule\":null,\"action\":\"skip\",\"reason\":\"no_rule: no rule "
                                "for topic other\"}\n");
    free(out);
}

/* --envelope: headers, key and coordinates reach the rules; bad lines are reported and skipped. */
static void test_map_envelope(void) {
    const char *input =
        "{\"topic\":\"github.events\",\"headers\":{\"X-GitHub-Event\":\"push\",\"X-Delivery\":"
        "\"d-1\"},\"value\":{\"id\":\"1\"}}\n"
        "{\"topic\":\"github.events\",\"partition\":2,\"key\":\"octocat\",\"headers\":"
        "{\"X-GitHub-Event\":\"fork\"},\"value\":{\"id\":7}}\n"
        "{\"topic\":\"github.events\",\"key\":\"octocat\",\"value\":{\"id\":7}}\n"
        "{\"value\":\"{\\\"id\\\":\\\"3\\\"}\",\"headers\":{\"X-GitHub-Event\":null}}\n"
        "{\"topic\":\"audit.log\",\"offset\":9,\"headers\":{\"actor\":\"alice\"},\"value\":null}\n"
        "{\"topic\":\"audit.log\",\"offset\":10,\"headers\":{\"actor\":null},\"value\":null}\n"
        "{\"topic\":\"strict.events\",\"value\":{}}\n"
        "{\"topic\":\"github.events\",\"headr\":{},\"value\":{\"id\":\"1\"}}\n"
        "not json\n"
        "[]\n"
        "{\"topic\":\"github.events\",\"partition\":-1,\"value\":1}\n"
        "{\"topic\":\"github.events\"}\n"
        "{\"topic\":\"nowhere\",\"value\":1}\n";
    char *out = NULL;
    int rc = run("map -c tests/fixtures/map/envelope.yaml --envelope", input, &out);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(
        out,
        "{\"rule\":\"by-event\",\"publish\":[{\"channel\":\"events:push:1\",\"message\":"
        "\"{\\\"id\\\":\\\"1\\\",\\\"event\\\":\\\"push\\\",\\\"delivery\\\":\\\"d-1\\\"}\"}]}\n"
        "{\"rule\":\"by-event\",\"publish\":[{\"channel\":\"events:fork:7\",\"message\":"
        "\"{\\\"id\\\":7,\\\"event\\\":\\\"fork\\\",\\\"delivery\\\":\\\"none\\\"}\"},"
        "{\"channel\":\"users:octocat\",\"message\":\"octocat@2\"}],"
        "\"rules\":[\"by-event\",\"by-key\"]}\n"
        "{\"rule\":\"by-event\",\"action\":\"skip\",\"reason\":\"missing_field: type "
        "(header:X-GitHub-Event): missing\",\"publish\":[{\"channel\":\"users:octocat\","
        "\"message\":\"octocat@0\"}]}\n"
        "{\"rule\":\"by-event\",\"action\":\"skip\",\"reason\":\"missing_field: type "
        "(header:X-GitHub-Event): missing\"}\n"
        "{\"rule\":\"audit\",\"publish\":[{\"channel\":\"audit:alice\",\"message\":\"offset "
        "9\"}]}\n"
        "{\"rule\":\"audit\",\"action\":\"dead-letter\",\"reason\":\"missing_field: actor "
        "(header:actor): missing\"}\n"
        "{\"rule\":\"strict\",\"action\":\"stop\",\"reason\":\"missing_field: id (id): missing\"}\n"
        "{\"error\":\"envelope: unknown key \\\"headr\\\" (expected topic, partition, offset, "
        "timestamp, key, headers or value)\"}\n"
        "{\"error\":\"envelope: not JSON: invalid token near 'not'\"}\n"
        "{\"error\":\"envelope: expected an object, found array\"}\n"
        "{\"error\":\"envelope: partition: -1 is out of range (0-2147483647)\"}\n"
        "{\"error\":\"envelope: value: missing (null for a tombstone)\"}\n"
        "{\"rule\":null,\"action\":\"skip\",\"reason\":\"no_rule: no rule for topic nowhere\"}\n");
    free(out);

    /* A line without a topic takes --topic. */
    rc = run("map -c tests/fixtures/map/envelope.yaml --envelope --topic audit.log",
             "{\"headers\":{\"actor\":\"bob\"},\"offset\":3,\"value\":\"x\"}\n", &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"rule\":\"audit\",\"publish\":[{\"channel\":\"audit:bob\","
                                "\"message\":\"offset 3\"}]}\n");
    free(out);

    /* Bytes that are not UTF-8: a message goes as base64, a reason gets U+FFFD. */
    rc = run("map -c tests/fixtures/map/envelope.yaml --topic \"$(printf 'raw.\\377')\"", "v\n",
             &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(
        out, "{\"rule\":\"raw-topic\",\"publish\":[{\"channel\":\"raw\",\"message_base64\":"
             "\"cmF3Lv8=\"}]}\n");
    free(out);
    rc = run("map -c tests/fixtures/map/envelope.yaml --topic \"$(printf 'x\\377')\"", "v\n", &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"rule\":null,\"action\":\"skip\",\"reason\":\"no_rule: no rule "
                                "for topic x\xef\xbf\xbd\"}\n");
    free(out);
}

static void test_usage(void) {
    char *out = NULL;

    CU_ASSERT_EQUAL(run("", NULL, &out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: kafka-redis-bridge COMMAND"));
    free(out);
    CU_ASSERT_EQUAL(run("frobnicate", NULL, &out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown command \"frobnicate\""));
    free(out);
    CU_ASSERT_EQUAL(run("version", NULL, &out), 0);
    CU_ASSERT_EQUAL(strncmp(out, "kafka-redis-bridge ", 19), 0);
    {
        /* It names the librdkafka it runs on, 2.6.1 or newer. */
        const char *at = strstr(out, "(librdkafka ");
        unsigned major = 0, minor = 0, patch = 0;
        char want[64];

        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        CU_ASSERT_EQUAL(sscanf(at, "(librdkafka %u.%u.%u", &major, &minor, &patch), 3);
        CU_ASSERT(major > 2 || (major == 2 && (minor > 6 || (minor == 6 && patch >= 1))));
        snprintf(want, sizeof(want), "(librdkafka %s,", rd_kafka_version_str());
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    }
    free(out);
}

int test_cli_register(void) {
    CU_pSuite s = CU_add_suite("cli", NULL, NULL);

    if (!s || !CU_add_test(s, "check: the example config", test_check_example) ||
        !CU_add_test(s, "check: invalid configs exit 1 with file:line:col", test_check_invalid) ||
        !CU_add_test(s, "check: environment overrides are checked", test_check_env_override) ||
        !CU_add_test(s, "check --list-settings: the settings table", test_check_list_settings) ||
        !CU_add_test(s, "map: exact lines", test_map) ||
        !CU_add_test(s, "map --envelope: exact lines", test_map_envelope) ||
        !CU_add_test(s, "usage and version", test_usage) ||
        !CU_add_test(s, "run: hostile configs and environments: one line, non-zero status",
                     test_run_hostile_config) ||
        !CU_add_test(s, "${env:} and ${file:} values: never in check, logs or /metrics",
                     test_provider_secrets_never_shown))
        return CU_get_error();
    return 0;
}
