/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the kafka-redis-bridge command: `run`, `check`, `map`, `version`.
 *
 * Only this file exits the process. It parses the command line, loads and
 * checks the config, installs the signal handlers (which only set flags) and
 * hands over to the bridge. Exit codes: 0 success (also when a drain timeout
 * left work for the next run); 1 config or start-up error (or `check` found
 * problems); 2 usage error; 3 the daemon stopped on a failure it cannot ride
 * out (no broker answered within kafka.startup_timeout, a fatal librdkafka
 * error, Redis refused the credentials, out of memory), so that the
 * orchestrator restarts it; 128+N a second signal N forced an immediate exit.
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k2r/bridge.h"
#include "k2r/config.h"
#include "k2r/envelope.h"
#include "k2r/http.h"
#include "k2r/json.h"
#include "k2r/log.h"
#include "k2r/metrics.h"
#include "k2r/rules.h"
#include "k2r/schema.h"
#include "k2r/utf8.h"

/* The version comes from the Makefile (scripts/version.sh: a git tag, or
 * the VERSION file), never from a copy here. */
#ifndef K2R_VERSION
#error "K2R_VERSION is defined by the Makefile (scripts/version.sh)"
#endif

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_stop_signal(int sig) {
    static const char text[] = "second signal: exiting at once\n";
    /* No clock or formatting is safe in a signal handler, so this one line
     * goes without its time. */
    static const char json[] = "{\"level\":\"warn\",\"msg\":\"second signal: exiting at once\"}\n";

    if (stop_requested) {
        /* The operator insists: no drain, no commit. */
        if (k2r_log_json ? write(STDERR_FILENO, json, sizeof(json) - 1) < 0
                         : write(STDERR_FILENO, text, sizeof(text) - 1) < 0)
            _exit(128 + sig);
        _exit(128 + sig);
    }
    stop_requested = 1;
}

/* SIGHUP: the bridge reloads the rules between batches (k2r_bridge_run). */
static void on_hup(int sig) {
    (void)sig;
    reload_requested = 1;
}

static void install_signals(void) {
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/*
 * The help text, the one place the command line is described: scripts/manpage.sh
 * turns it into the man page, kafka-redis-bridge(1). Its shape is what that
 * script reads: a first line "NAME - summary", a "usage:" line, a paragraph,
 * then sections that each start with a line "title:", holding items ("  term"
 * and, two or more spaces on or on indented lines below, its text) or plain
 * indented text.
 */
static void usage(FILE *out) {
    fprintf(out,
            "kafka-redis-bridge - publishes Kafka records as Redis Pub/Sub notifications\n"
            "\n"
            "usage: kafka-redis-bridge COMMAND [-c FILE] [OPTION]...\n"
            "\n"
            "Joins a Kafka consumer group, maps each record through the YAML rules of the\n"
            "config file to channels and a thin JSON notification, and publishes them on\n"
            "Redis; a record's offset is committed only once Redis acknowledged them.\n"
            "\n"
            "commands:\n"
            "  run      consume Kafka, publish notifications to Redis (the daemon)\n"
            "  check    validate the config (connects nowhere); exit 0 or 1\n"
            "  map      read records from stdin, one per line; print what would be published\n"
            "  version  print the version and library versions\n"
            "\n"
            "options:\n"
            "  -c, --config FILE   config file (default /etc/kafka-redis-bridge/bridge.yaml)\n"
            "  -t, --topic TOPIC   (map) the topic the records come from (default: the first\n"
            "                      rule's topic)\n"
            "      --envelope      (map) each line is a JSON object with the record's\n"
            "                      value and optionally its topic, partition, offset,\n"
            "                      timestamp, key and headers (see docs/map.md)\n"
            "      --list-settings[=markdown]\n"
            "                      (check) print every setting: type, range, default,\n"
            "                      environment variables, restart or live on reload;\n"
            "                      no config file is read\n"
            "      --json-schema   (check) print the config file's JSON Schema, for editors\n"
            "                      and validators; no config file is read\n"
            "  -h, --help          this text\n"
            "\n"
            "environment:\n"
            "  K2R_KAFKA_BROKERS, K2R_REDIS_URL, K2R_REDIS_PASSWORD, K2R_REDIS_PASSWORD_FILE\n"
            "  and the others that check --list-settings names override the file;\n"
            "  K2R_LOG_LEVEL sets the log level and K2R_LOG_FORMAT (json or text) the log\n"
            "  format.\n"
            "\n"
            "signals:\n"
            "  SIGTERM, SIGINT  (run) stop fetching, publish the batch in flight (for at most\n"
            "                   shutdown.drain_timeout), commit, leave the group, exit 0;\n"
            "                   a second one exits at once\n"
            "  SIGHUP           (run) read the config again: rules, limits and log.level\n"
            "                   change between batches; an invalid file keeps the old ones\n"
            "\n"
            "exit status:\n"
            "  0      success; run: stopped on request (also when the drain timeout left\n"
            "         work for the next run)\n"
            "  1      a config or start-up error; check: the config is invalid; map: stdin\n"
            "         cannot be read\n"
            "  2      a usage error\n"
            "  3      run stopped on a failure it cannot ride out (no broker within\n"
            "         kafka.startup_timeout, a fatal Kafka error, Redis refused the\n"
            "         credentials) or out of memory: restart it\n"
            "  128+N  a second signal N forced an immediate exit\n");
}

static const char *env_lookup(const char *name) {
    return getenv(name);
}

/* Loads the config and compiles its rules; prints every error. */
static int load(const char *path, k2r_config_t **cfg_out, k2r_rules_t **rules_out) {
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *cfg = NULL;
    k2r_rules_t *rules = k2r_rules_load(path, env_lookup, &errs, &cfg);

    if (!rules) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        fprintf(stderr, "%s: %zu error(s)\n", path, errs.count);
        k2r_errors_clear(&errs);
        k2r_config_destroy(cfg);
        return -1;
    }
    k2r_errors_clear(&errs);
    *cfg_out = cfg;
    *rules_out = rules;
    return 0;
}

/* `check --list-settings`: the settings table, as text or Markdown. */
static int cmd_list_settings(int markdown) {
    char *text = k2r_settings_render(markdown);

    if (!text) {
        fprintf(stderr, "out of memory\n");
        return 3;
    }
    fputs(text, stdout);
    free(text);
    return 0;
}

/* `check --json-schema`: the config file's JSON Schema (schema.h). */
static int cmd_json_schema(void) {
    char *text = k2r_schema_render();

    if (!text) {
        fprintf(stderr, "out of memory\n");
        return 3;
    }
    fputs(text, stdout);
    free(text);
    return 0;
}

/* Applies K2R_LOG_LEVEL and K2R_LOG_FORMAT over the config's log settings;
 * -1 (with a message) when one holds something else. */
static int log_env(void) {
    const char *lvl = getenv("K2R_LOG_LEVEL"), *fmt = getenv("K2R_LOG_FORMAT");

    if (lvl && *lvl) {
        int l = k2r_log_level_parse(lvl);
        if (l < 0) {
            fprintf(stderr, "K2R_LOG_LEVEL: expected error, warn, info or debug; found \"%s\"\n",
                    lvl);
            return -1;
        }
        k2r_log_level = l;
    }
    if (fmt && *fmt) {
        if (strcmp(fmt, "json") != 0 && strcmp(fmt, "text") != 0) {
            fprintf(stderr, "K2R_LOG_FORMAT: expected json or text; found \"%s\"\n", fmt);
            return -1;
        }
        k2r_log_set_format(strcmp(fmt, "json") == 0);
    }
    return 0;
}

static int cmd_check(const char *path) {
    k2r_config_t *cfg;
    k2r_rules_t *rules;
    char line[1024];

    if (load(path, &cfg, &rules) != 0)
        return 1;
    /* The overrides `run` applies itself are checked as `run` checks them. */
    if (log_env() != 0) {
        k2r_rules_destroy(rules);
        k2r_config_destroy(cfg);
        return 1;
    }
    for (size_t i = 0; i < k2r_rules_count(rules); i++) {
        k2r_rules_describe(rules, i, line, sizeof(line));
        printf("%s\n", line);
    }
    /* Which settings came from config providers, and from where; never
     * their values. */
    for (size_t i = 0; i < cfg->nresolved; i++)
        printf("%s: *** (from %s)\n", cfg->resolved[i].path, cfg->resolved[i].refs);
    printf("%s: OK (%zu rule(s), %zu topic(s))\n", path, k2r_rules_count(rules),
           cfg->kafka.ntopics);
    k2r_rules_destroy(rules);
    k2r_config_destroy(cfg);
    return 0;
}

/* ------------------------------------------------------------- map */

static int utf8_valid(const char *s, size_t n) {
    for (size_t i = 0, k; i < n; i += k) {
        k = k2r_utf8_char((const unsigned char *)s + i, n - i);
        if (k == 0)
            return 0;
    }
    return 1;
}

/*
 * A JSON string for text meant to be UTF-8 that may not be: a detail cut in
 * the middle of a character, a --topic from the shell, jansson quoting the
 * bytes of a bad line. Invalid bytes become U+FFFD. NULL when out of memory.
 */
static json_t *text_json(const char *s) {
    size_t n = strlen(s);
    k2r_buf_t b = {NULL, 0, 0};
    json_t *j = NULL;

    if (utf8_valid(s, n))
        return json_stringn(s, n);
    for (size_t i = 0, k; i < n; i += k) {
        k = k2r_utf8_char((const unsigned char *)s + i, n - i);
        if (k2r_buf_append(&b, k ? s + i : "\xEF\xBF\xBD", k ? k : 3) != 0)
            goto done;
        k = k ? k : 1;
    }
    j = json_stringn(b.data, b.len);
done:
    k2r_buf_free(&b);
    return j;
}

/* Standard base64 (RFC 4648, padded) of n bytes as a JSON string; NULL when out of memory. */
static json_t *base64_json(const char *s, size_t n) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *u = (const unsigned char *)s;
    size_t olen = (n + 2) / 3 * 4;
    char *o = malloc(olen + 1), *p = o;
    json_t *j;

    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < n ? (uint32_t)u[i + 1] << 8 : 0) |
                     (i + 2 < n ? (uint32_t)u[i + 2] : 0);

        *p++ = abc[v >> 18 & 63];
        *p++ = abc[v >> 12 & 63];
        *p++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *p++ = i + 2 < n ? abc[v & 63] : '=';
    }
    j = json_stringn(o, olen);
    free(o);
    return j;
}

/* Sets o[name] to the bytes; bytes that are not UTF-8 (a header copied into a
 * message, say) cannot be a JSON string, so they go as o[name_base64]. */
static int set_bytes(json_t *o, const char *name, const char *s, size_t n) {
    char key[32];

    if (utf8_valid(s, n))
        return json_object_set_new(o, name, json_stringn(s, n));
    snprintf(key, sizeof(key), "%s_base64", name);
    return json_object_set_new(o, key, base64_json(s, n));
}

/* Prints one compact JSON line; 0, or -1 when out of memory. Takes o. */
static int print_json(json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    if (!s)
        return -1;
    printf("%s\n", s);
    free(s);
    return 0;
}

/*
 * Prints what one record maps to:
 *   {"rule":R,"publish":[{"channel":C,"message":M},...]}
 *   {"rule":R|null,"action":"skip"|"dead-letter"|"stop","reason":"SKIP: DETAIL"}
 * A failure also carries "publish" when other rules published anyway
 * (continue: true; never for stop, which publishes nothing). When the
 * channels come from more than one rule, "rules" names the rule of each
 * "publish" entry, index for index. Returns 0, or -1 when out of memory
 * (json_* return -1 or NULL then, and set_new takes NULL without harm).
 */
static int map_line(const k2r_mapping_t *m, const k2r_buf_t *out) {
    json_t *o = json_object(), *arr;
    int several = 0;

    if (!o || json_object_set_new(o, "rule", m->rule ? text_json(m->rule) : json_null()) != 0)
        goto fail;
    if (m->skip != K2R_SKIP_NONE) {
        char reason[256];

        snprintf(reason, sizeof(reason), "%s: %s", k2r_skip_name(m->skip), m->detail);
        if (json_object_set_new(o, "action", json_string(k2r_action_name(m->action))) != 0 ||
            json_object_set_new(o, "reason", text_json(reason)) != 0)
            goto fail;
    }
    if (m->skip == K2R_SKIP_NONE || m->npublish > 0) {
        arr = json_array();
        if (json_object_set_new(o, "publish", arr) != 0)
            goto fail;
        for (size_t i = 0; i < m->npublish; i++) {
            json_t *p = json_object();

            if (json_array_append_new(arr, p) != 0 ||
                set_bytes(p, "channel", out->data + m->publish[i].channel_off,
                          m->publish[i].channel_len) != 0 ||
                set_bytes(p, "message", out->data + m->publish[i].message_off,
                          m->publish[i].message_len) != 0)
                goto fail;
            /* Rule names are unique, so the same rule is the same pointer. */
            several |= m->publish[i].rule != m->publish[0].rule;
        }
    }
    if (several) {
        arr = json_array();
        if (json_object_set_new(o, "rules", arr) != 0)
            goto fail;
        for (size_t i = 0; i < m->npublish; i++) {
            const char *r = m->publish[i].rule;

            if (json_array_append_new(arr, r ? text_json(r) : json_null()) != 0)
                goto fail;
        }
    }
    return print_json(o);
fail:
    json_decref(o);
    return -1;
}

/* Prints {"error":"envelope: REASON"} for a line that is not a valid envelope. */
static int envelope_error_line(const char *reason) {
    json_t *o = json_object();
    char text[600];

    snprintf(text, sizeof(text), "envelope: %s", reason);
    if (!o || json_object_set_new(o, "error", text_json(text)) != 0) {
        json_decref(o);
        return -1;
    }
    return print_json(o);
}

/*
 * `map`: one record per line on stdin, one JSON line per record on stdout.
 * Without --envelope a line is the record's value; with it, a JSON envelope
 * (envelope.h) that also gives topic, partition, offset, timestamp, key and
 * headers. A record without a topic takes --topic, else the first rule's.
 * A bad envelope line is reported on its own output line and the rest are
 * still mapped. Returns 0; 1 when the config is invalid or stdin cannot be
 * read; 3 when out of memory.
 */
static int cmd_map(const char *path, const char *topic, int envelope) {
    k2r_config_t *cfg;
    k2r_rules_t *rules;
    k2r_json_t *json;
    k2r_envelope_t env;
    k2r_buf_t out = {NULL, 0, 0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t offset = 0;
    int rc = 0;

    if (load(path, &cfg, &rules) != 0)
        return 1;
    memset(&env, 0, sizeof(env));
    json = k2r_json_new();
    if (!json) {
        rc = 3;
        goto done;
    }
    if (!topic)
        topic = cfg->rules[0].topic;
    for (;;) {
        k2r_msgview_t msg = {topic, 0, 0, -1, NULL, 0, NULL, 0, NULL, 0, K2R_MSGVIEW_TS_NONE};
        k2r_mapping_t m;
        char errstr[512];
        size_t len;

        errno = 0;
        n = getline(&line, &cap, stdin);
        if (n < 0)
            break;
        len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (envelope) {
            int erc = k2r_envelope_parse(line, len, &env, errstr, sizeof(errstr));

            if (erc == K2R_ENVELOPE_NOMEM) {
                rc = 3;
                break;
            }
            if (erc == K2R_ENVELOPE_INVALID) {
                if (envelope_error_line(errstr) != 0) {
                    rc = 3;
                    break;
                }
                continue;
            }
            msg = env.msg;
            if (!msg.topic)
                msg.topic = topic;
        } else {
            /* Plain values are numbered as if they were consecutive offsets. */
            msg.offset = offset++;
            msg.value = line;
            msg.value_len = len;
        }
        out.len = 0;
        if (k2r_rules_map(rules, json, &msg, &out, &m) != 0 || map_line(&m, &out) != 0) {
            rc = 3;
            break;
        }
    }
    if (rc == 0 && ferror(stdin)) {
        fprintf(stderr, "kafka-redis-bridge: cannot read stdin: %s\n", strerror(errno));
        rc = 1;
    } else if (rc == 0 && n < 0 && errno == ENOMEM) {
        rc = 3; /* getline could not grow its buffer */
    }
    free(line);
done:
    if (rc == 3)
        fprintf(stderr, "out of memory\n");
    k2r_envelope_clear(&env);
    k2r_buf_free(&out);
    k2r_json_destroy(json);
    k2r_rules_destroy(rules);
    k2r_config_destroy(cfg);
    return rc;
}

/*
 * glibc's allocator, set for the way records come and go. librdkafka unpacks
 * each compressed batch (up to about a megabyte) into a buffer of its own,
 * and the bridge frees it when the batch in flight completes. By default
 * glibc serves blocks from 128 KiB up with mmap, raising that threshold as
 * such blocks are freed, and gives the top of a heap back to the kernel
 * once twice that much is free there: so unpacked buffers went back to the
 * kernel and came again as fresh pages, zero-filled, a fetch at a time.
 * Draining 20,000 GitHub webhooks of 10 KB, eight drains alternated with
 * the build before: 7,000-8,200 page faults a drain against 9,900-16,900,
 * and 8.0-10.6 us of CPU per record against 10.2-12.4 (in other runs the
 * build before faulted up to 31,000 times, with up to 10 us of system time
 * per record). The pages that still fault are the drain's working set,
 * touched once. The memory kept is memory the bridge held anyway: a heap
 * keeps at most limits.max_inflight_bytes free at its top (at least twice
 * the mmap threshold, as glibc keeps it), and blocks above a quarter of it
 * (128 KiB to 32 MiB, glibc's floor and ceiling) still come from mmap; the
 * peak resident size did not change. Nothing is set when the environment tunes
 * the allocator itself (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, or
 * glibc.malloc tunables in GLIBC_TUNABLES).
 */
static void tune_allocator(const k2r_config_t *cfg) {
#ifdef __GLIBC__
    const char *tunables = getenv("GLIBC_TUNABLES");
    int mmap_min = cfg->limits.max_inflight_bytes / 4, trim;

    /* Never below glibc's own starting point, nor above its ceiling. */
    mmap_min = mmap_min < 128 * 1024 ? 128 * 1024 : mmap_min > 32 << 20 ? 32 << 20 : mmap_min;
    trim = cfg->limits.max_inflight_bytes > 2 * mmap_min ? cfg->limits.max_inflight_bytes
                                                         : 2 * mmap_min;

    if (getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_MMAP_THRESHOLD_") ||
        (tunables && strstr(tunables, "glibc.malloc."))) {
        k2r_log_debug("allocator: left as the environment sets it");
        return;
    }
    if (!mallopt(M_TRIM_THRESHOLD, trim) || !mallopt(M_MMAP_THRESHOLD, mmap_min))
        k2r_log_warn("allocator: glibc refused the trim or mmap threshold (%d, %d bytes); "
                     "running with its defaults",
                     trim, mmap_min);
#else
    (void)cfg;
#endif
}

static int cmd_run(const char *path) {
    k2r_config_t *cfg;
    k2r_rules_t *rules;
    k2r_bridge_t *bridge;
    k2r_metrics_t *metrics;
    k2r_http_t *http = NULL;
    char errstr[512], listen[300] = "", shown_listen[300];
    int rc;

    if (load(path, &cfg, &rules) != 0)
        return 1;
    k2r_log_level = cfg->log_level;
    k2r_log_set_format(cfg->log_format == K2R_LOG_FORMAT_JSON);
    if (log_env() != 0) {
        k2r_rules_destroy(rules);
        k2r_config_destroy(cfg);
        return 1;
    }
    if (cfg->http.enabled)
        snprintf(listen, sizeof(listen), "%s", cfg->http.listen);
    /* A value from a config provider is not logged, whatever it is. */
    snprintf(shown_listen, sizeof(shown_listen), "%s",
             k2r_config_shown(cfg, "http.listen", listen));
    install_signals();
    tune_allocator(cfg);
    {
        const k2r_log_field_t fields[] = {{"version", K2R_VERSION}, {"config", path}};

        k2r_log_fields(K2R_LOG_INFO, fields, 2, "kafka-redis-bridge %s starting with %s",
                       K2R_VERSION, path);
    }
    /* The registry the bridge reports to and the HTTP server renders; both
     * borrow it, so it goes last. */
    metrics = k2r_metrics_new(K2R_VERSION, rd_kafka_version_str());
    if (!metrics) {
        k2r_log_error("cannot start: out of memory");
        k2r_rules_destroy(rules);
        k2r_config_destroy(cfg);
        return 1;
    }
    bridge = k2r_bridge_new(cfg, rules, metrics, errstr, sizeof(errstr));
    cfg = NULL;   /* now owned by the bridge */
    rules = NULL; /* likewise */
    if (!bridge) {
        k2r_log_error("cannot start: %s", errstr);
        k2r_metrics_destroy(metrics);
        return 1;
    }
    /* The endpoint is up before Kafka and Redis are contacted, so probes
     * answer (not ready yet) while the bridge waits for the brokers. */
    if (listen[0]) {
        const k2r_log_field_t fields[] = {{"listen", shown_listen}};

        http = k2r_http_start(listen, metrics, errstr, sizeof(errstr));
        if (!http) {
            k2r_log_error("cannot start: %s", strcmp(shown_listen, listen) == 0
                                                  ? errstr
                                                  : "http: cannot listen on http.listen");
            k2r_bridge_destroy(bridge);
            k2r_metrics_destroy(metrics);
            return 1;
        }
        k2r_log_fields(K2R_LOG_INFO, fields, 1,
                       "http: serving /healthz, /readyz and /metrics on %s", shown_listen);
    }
    rc = k2r_bridge_run(bridge, &stop_requested, &reload_requested);
    /* The server renders what the bridge reported: both stop before the registry goes. */
    k2r_http_stop(http);
    k2r_bridge_destroy(bridge);
    k2r_metrics_destroy(metrics);
    if (rc == K2R_RUN_FAILED) {
        k2r_log_error("kafka-redis-bridge stopped on a failure (exit status 3)");
        return 3;
    }
    k2r_log_info("kafka-redis-bridge stopped%s",
                 rc == K2R_RUN_OK ? "" : " with work left for the next run");
    return 0;
}

/* Long options without a short form. */
enum { OPT_ENVELOPE = 256, OPT_LIST_SETTINGS, OPT_JSON_SCHEMA };

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"topic", required_argument, NULL, 't'},
        {"envelope", no_argument, NULL, OPT_ENVELOPE},
        {"list-settings", optional_argument, NULL, OPT_LIST_SETTINGS},
        {"json-schema", no_argument, NULL, OPT_JSON_SCHEMA},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *config = "/etc/kafka-redis-bridge/bridge.yaml";
    const char *topic = NULL;
    const char *cmd;
    int envelope = 0;
    int list_settings = -1; /* -1: not asked; 0: text; 1: markdown */
    int json_schema = 0;
    int c;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cmd = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case OPT_ENVELOPE:
            envelope = 1;
            break;
        case OPT_LIST_SETTINGS:
            if (optarg && strcmp(optarg, "markdown") != 0 && strcmp(optarg, "text") != 0) {
                fprintf(stderr,
                        "kafka-redis-bridge: --list-settings takes text or markdown, not \"%s\"\n",
                        optarg);
                return 2;
            }
            list_settings = optarg && strcmp(optarg, "markdown") == 0;
            break;
        case OPT_JSON_SCHEMA:
            json_schema = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kafka-redis-bridge: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (strcmp(cmd, "version") == 0) {
        printf("kafka-redis-bridge %s (librdkafka %s, hiredis %d.%d.%d, jansson %s)\n", K2R_VERSION,
               rd_kafka_version_str(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
               JANSSON_VERSION);
        return 0;
    }
    if ((list_settings >= 0 || json_schema) && strcmp(cmd, "check") != 0) {
        fprintf(stderr, "kafka-redis-bridge: --%s goes with check\n",
                json_schema ? "json-schema" : "list-settings");
        return 2;
    }
    if (list_settings >= 0 && json_schema) {
        fprintf(stderr, "kafka-redis-bridge: --list-settings or --json-schema, not both\n");
        return 2;
    }
    if (strcmp(cmd, "check") == 0)
        return list_settings >= 0 ? cmd_list_settings(list_settings)
               : json_schema      ? cmd_json_schema()
                                  : cmd_check(config);
    if (strcmp(cmd, "map") == 0)
        return cmd_map(config, topic, envelope);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(config);
    fprintf(stderr, "kafka-redis-bridge: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
