/*
 * main.c - the kafka-redis-bridge command: `run`, `check`, `map`, `version`.
 *
 * Only this file exits the process. It parses the command line, loads and
 * checks the config, installs the signal handlers (which only set flags) and
 * hands over to the bridge. Exit codes: 0 success; 1 config or start-up
 * error (or `check` found problems); 2 usage error; 3 the daemon stopped on
 * an internal failure (out of memory); 128+N a second signal N forced an
 * immediate exit.
 */
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k2r/bridge.h"
#include "k2r/config.h"
#include "k2r/log.h"
#include "k2r/record.h"
#include "k2r/rules.h"

#ifndef K2R_VERSION
#define K2R_VERSION "0.1.0"
#endif

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    static const char msg[] = "second signal: exiting at once\n";

    if (stop_requested) {
        /* The operator insists: no drain, no commit. */
        if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
            _exit(128 + sig);
        _exit(128 + sig);
    }
    stop_requested = 1;
}

static void on_hup(int sig) {
    (void)sig; /* reloading arrives with the mapping-language work; ignore for now */
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

static void usage(FILE *out) {
    fprintf(out, "usage: kafka-redis-bridge COMMAND [-c FILE]\n"
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
                 "  -h, --help          this text\n"
                 "\n"
                 "environment: K2R_KAFKA_BROKERS, K2R_REDIS_URL, K2R_REDIS_PASSWORD,\n"
                 "K2R_REDIS_PASSWORD_FILE override the file; K2R_LOG_LEVEL sets the log level.\n");
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

static int cmd_check(const char *path) {
    k2r_config_t *cfg;
    k2r_rules_t *rules;
    char line[1024];

    if (load(path, &cfg, &rules) != 0)
        return 1;
    for (size_t i = 0; i < k2r_rules_count(rules); i++) {
        k2r_rules_describe(rules, i, line, sizeof(line));
        printf("%s\n", line);
    }
    printf("%s: OK (%zu rule(s), %zu topic(s))\n", path, k2r_rules_count(rules),
           cfg->kafka.ntopics);
    k2r_rules_destroy(rules);
    k2r_config_destroy(cfg);
    return 0;
}

/* Writes one line of `map` output. */
static void map_line(const k2r_mapping_t *m, const k2r_buf_t *out) {
    json_t *o = json_object(), *arr;
    char *s;

    json_object_set_new(o, "rule", m->rule ? json_string(m->rule) : json_null());
    if (m->skip == K2R_SKIP_NONE) {
        arr = json_array();
        for (size_t i = 0; i < m->npublish; i++) {
            json_t *p = json_object();
            json_object_set_new(
                p, "channel",
                json_stringn(out->data + m->publish[i].channel_off, m->publish[i].channel_len));
            json_object_set_new(
                p, "message",
                json_stringn(out->data + m->publish[i].message_off, m->publish[i].message_len));
            json_array_append_new(arr, p);
        }
        json_object_set_new(o, "publish", arr);
    } else {
        char reason[256];
        snprintf(reason, sizeof(reason), "%s: %s", k2r_skip_name(m->skip), m->detail);
        json_object_set_new(o, "action", json_string("skip"));
        json_object_set_new(o, "reason", json_string(reason));
    }
    s = json_dumps(o, JSON_COMPACT);
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

static int cmd_map(const char *path, const char *topic) {
    k2r_config_t *cfg;
    k2r_rules_t *rules;
    k2r_record_t *rec;
    k2r_buf_t out = {NULL, 0, 0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t offset = 0;
    int rc = 0;

    if (load(path, &cfg, &rules) != 0)
        return 1;
    rec = k2r_record_new();
    if (!rec) {
        fprintf(stderr, "out of memory\n");
        rc = 3;
        goto done;
    }
    if (!topic)
        topic = cfg->rules[0].topic;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        k2r_msg_t msg = {topic, 0, offset++, -1, NULL, 0, line, (size_t)n, NULL, 0};
        k2r_mapping_t m;

        while (msg.value_len > 0 &&
               (line[msg.value_len - 1] == '\n' || line[msg.value_len - 1] == '\r'))
            msg.value_len--;
        out.len = 0;
        if (k2r_rules_map(rules, rec, &msg, &out, &m) != 0) {
            fprintf(stderr, "out of memory\n");
            rc = 3;
            break;
        }
        map_line(&m, &out);
    }
    free(line);
done:
    k2r_buf_free(&out);
    k2r_record_destroy(rec);
    k2r_rules_destroy(rules);
    k2r_config_destroy(cfg);
    return rc;
}

static int cmd_run(const char *path) {
    k2r_config_t *cfg;
    k2r_rules_t *rules;
    k2r_bridge_t *bridge;
    const char *lvl = getenv("K2R_LOG_LEVEL");
    char errstr[512];
    int rc;

    if (load(path, &cfg, &rules) != 0)
        return 1;
    k2r_log_level = cfg->log_level;
    if (lvl && *lvl) {
        int l = k2r_log_level_parse(lvl);
        if (l < 0) {
            fprintf(stderr, "K2R_LOG_LEVEL: expected error, warn, info or debug; found \"%s\"\n",
                    lvl);
            k2r_rules_destroy(rules);
            k2r_config_destroy(cfg);
            return 1;
        }
        k2r_log_level = l;
    }
    install_signals();
    k2r_log_info("kafka-redis-bridge %s starting with %s", K2R_VERSION, path);
    bridge = k2r_bridge_new(cfg, rules, errstr, sizeof(errstr));
    cfg = NULL;   /* now owned by the bridge */
    rules = NULL; /* likewise */
    if (!bridge) {
        k2r_log_error("cannot start: %s", errstr);
        return 1;
    }
    rc = k2r_bridge_run(bridge, &stop_requested);
    k2r_bridge_destroy(bridge);
    k2r_log_info("kafka-redis-bridge stopped%s", rc == 0 ? "" : " with work left for the next run");
    return rc == 2 ? 3 : 0;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"topic", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = "/etc/kafka-redis-bridge/bridge.yaml";
    const char *topic = NULL;
    const char *cmd;
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
    if (strcmp(cmd, "check") == 0)
        return cmd_check(config);
    if (strcmp(cmd, "map") == 0)
        return cmd_map(config, topic);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(config);
    fprintf(stderr, "kafka-redis-bridge: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
