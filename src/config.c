/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - loading the YAML configuration into a k2r_config_t.
 *
 * The file is loaded with libyaml's document API, which keeps the start mark
 * of every node, then walked section by section: an unknown key is an error,
 * and every error carries file:line:col and the key path (`rules[2].channel`).
 * Errors are collected, not returned one at a time, so a user fixes a file in
 * one pass.
 *
 * Every setting of the scalar sections (kafka, redis, log, limits, shutdown,
 * http) is described once, in the settings table (`settings[]`, in the way
 * redis's config.c has static_configs[]): its name, type, range, default,
 * environment overrides, whether a reload applies it, and a description. One
 * reader per type reads a key through it, the defaults and the environment
 * overrides come from it, and so do the known keys that an unknown one is
 * compared with. What the table cannot say stays a named special case: the
 * string checks (redis.url is parsed, http.listen must be an address), and
 * librdkafka properties under `kafka.properties`, which are handed to
 * rd_kafka_conf_set() here, without creating a client, so a property
 * librdkafka rejects is reported with librdkafka's own message at the line
 * that set it. The `rules:` section is a language, not settings: it has its
 * own reader below the table.
 *
 * Config providers come first: before any section is read, every scalar
 * value of the settings sections is resolved in place (`${env:NAME}`,
 * `${file:/path}`, k2r_config_resolve), so each reader below sees the value
 * as if it had been written so, and a reference that cannot be resolved is
 * one error at its own line and column. The loader remembers which values
 * came from a provider: their errors show `***` instead of the value, and
 * so do `check` and the log lines that name a setting's value. The rules
 * are not resolved: their values become channels and notifications that
 * every subscriber reads, so a secret never belongs there, and `{...}` is
 * their template syntax.
 *
 * Environment overrides (K2R_KAFKA_BROKERS, K2R_REDIS_URL, K2R_REDIS_PASSWORD,
 * K2R_REDIS_PASSWORD_FILE, K2R_HTTP_LISTEN, K2R_KAFKA_SASL_*) are applied after
 * the file and win over it; K2R_LOG_LEVEL and K2R_LOG_FORMAT are applied by
 * `run` (main.c). A *_FILE variable and a ${file:...} reference are read by
 * the same function (read_secret_file), so there is one place that decides
 * what a secret file may be.
 */
#include "k2r/config.h"

#include <assert.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "k2r/addr.h"
#include "k2r/buf.h"
#include "k2r/clock.h"
#include "k2r/log.h"

/* ------------------------------------------------------------- the walk */

/* The most top-level sections the settings table may have. */
#define MAX_SECTIONS 8

/* State shared by the section walkers. */
typedef struct loader_s {
    const char *file;
    yaml_document_t *doc;
    k2r_errors_t *errs;
    k2r_config_t *cfg;
    size_t nerrs_at_start;
    /* The sections as written, in the table's order (sections()), for
     * errors about what they lack; NULL when absent. */
    yaml_node_t *section_node[MAX_SECTIONS];
    uint64_t present; /* bit i: settings[i] was written, valid or not */
    /* Per node of the document (by index): NODE_* bits from the providers' pass. */
    unsigned char *node_state;
} loader_t;

/* loader_t.node_state */
enum {
    NODE_SEEN = 1,     /* resolved (an alias reaches a node twice: once is enough) */
    NODE_PROVIDED = 2, /* its value came from ${env:} or ${file:}: never printed */
    NODE_BROKEN = 4,   /* a reference in it failed, with its error: not read further */
    NODE_RULES = 8,    /* checked as part of rules: */
};

/* In k2r_on_error_t's order. */
static const char *const on_error_names[K2R_ON_ERROR_COUNT] = {"skip", "dead-letter", "stop"};

const char *k2r_on_error_name(k2r_on_error_t on_error) {
    return (unsigned)on_error < K2R_ON_ERROR_COUNT ? on_error_names[on_error] : "unknown";
}

static k2r_mark_t mark_of(const yaml_node_t *node) {
    k2r_mark_t m = {(int)node->start_mark.line + 1, (int)node->start_mark.column + 1};
    return m;
}

static unsigned node_state(const loader_t *ld, const yaml_node_t *node) {
    return ld->node_state ? ld->node_state[node - ld->doc->nodes.start] : 0;
}

/*
 * Replaces every occurrence of `secret` in the string `msg` (of `size`
 * bytes) with "***", cutting what no longer fits. Errors about a value that
 * came from a provider pass through it, whatever wrote them (a range check,
 * librdkafka), so that the value never reaches a terminal or a log.
 */
static void redact(char *msg, size_t size, const char *secret) {
    size_t slen = strlen(secret), n = 0;
    char out[1024];
    const char *p = msg, *hit;

    if (!slen || size == 0)
        return;
    while ((hit = strstr(p, secret)) != NULL && n < sizeof(out)) {
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%.*s***", (int)(hit - p), p);
        p = hit + slen;
    }
    if (n < sizeof(out))
        snprintf(out + n, sizeof(out) - n, "%s", p);
    snprintf(msg, size, "%s", out);
}

/* Adds an error at `node`; a value from a provider is shown as "***". */
static void lerr(loader_t *ld, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lerr(loader_t *ld, const yaml_node_t *node, const char *fmt, ...) {
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (node->type == YAML_SCALAR_NODE && (node_state(ld, node) & NODE_PROVIDED))
        redact(msg, sizeof(msg), (const char *)node->data.scalar.value);
    k2r_errors_add(ld->errs, ld->file, mark_of(node), "%s", msg);
}

static const char *node_kind(const yaml_node_t *node) {
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

/* A plain scalar that YAML reads as null: "", "~", "null". */
static int is_null(const yaml_node_t *node) {
    const char *v;

    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    v = (const char *)node->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* Reads a non-empty string; returns a new copy or NULL after adding an error
 * (a value whose reference failed has its error already: NULL). */
static char *get_string(loader_t *ld, const yaml_node_t *node, const char *path) {
    if (node_state(ld, node) & NODE_BROKEN)
        return NULL;
    if (node->type != YAML_SCALAR_NODE) {
        lerr(ld, node, "%s: expected a string, found %s", path, node_kind(node));
        return NULL;
    }
    if (is_null(node) || node->data.scalar.length == 0) {
        lerr(ld, node, "%s: must not be empty", path);
        return NULL;
    }
    if (memchr(node->data.scalar.value, '\0', node->data.scalar.length)) {
        lerr(ld, node, "%s: must not contain a NUL character", path);
        return NULL;
    }
    return strdup((const char *)node->data.scalar.value);
}

static int get_bool(loader_t *ld, const yaml_node_t *node, const char *path, int *out) {
    const char *v;

    if (node->type == YAML_SCALAR_NODE && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        v = (const char *)node->data.scalar.value;
        if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "yes") == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "no") == 0) {
            *out = 0;
            return 0;
        }
    }
    lerr(ld, node, "%s: expected true or false", path);
    return -1;
}

/* An integer within [min, max]. */
static void get_int(loader_t *ld, const yaml_node_t *node, const char *path, long min, long max,
                    int *out) {
    const char *v;
    char *end;
    long n;

    if (node->type != YAML_SCALAR_NODE || is_null(node)) {
        lerr(ld, node, "%s: expected an integer, found %s", path,
             is_null(node) ? "nothing" : node_kind(node));
        return;
    }
    v = (const char *)node->data.scalar.value;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end) {
        lerr(ld, node, "%s: expected an integer, found \"%s\"", path, v);
        return;
    }
    if (n < min || n > max) {
        lerr(ld, node, "%s: %ld is out of range (%ld to %ld)", path, n, min, max);
        return;
    }
    *out = (int)n;
}

/* A duration setting ("500ms", "30s", "5m", "1h", or 0) within [min_ms, max_ms]. */
static void get_duration(loader_t *ld, const yaml_node_t *node, const char *path, int64_t min_ms,
                         int64_t max_ms, int64_t *out) {
    const char *v;
    int64_t ms;

    if (node->type != YAML_SCALAR_NODE || is_null(node)) {
        lerr(ld, node, "%s: expected a duration such as 500ms, 30s, 5m or 1h, found %s", path,
             is_null(node) ? "nothing" : node_kind(node));
        return;
    }
    v = (const char *)node->data.scalar.value;
    if (k2r_parse_duration(v, &ms) != 0) {
        lerr(ld, node, "%s: expected a duration such as 500ms, 30s, 5m or 1h, found \"%s\"", path,
             v);
        return;
    }
    if (ms < min_ms || ms > max_ms) {
        lerr(ld, node, "%s: %s is out of range (%lldms to %lldms)", path, v, (long long)min_ms,
             (long long)max_ms);
        return;
    }
    *out = ms;
}

/* One word out of `names` (n of them); returns its index, or -1 after an
 * error that names them as `text` says (NULL: "a, b or c"). */
static int get_choice(loader_t *ld, const yaml_node_t *node, const char *path,
                      const char *const *names, size_t n, const char *text) {
    char *v = get_string(ld, node, path), list[256];
    size_t len = 0;

    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v, names[i]) == 0) {
            free(v);
            return (int)i;
        }
    }
    list[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof(list); i++) {
        int w = snprintf(list + len, sizeof(list) - len, "%s%s",
                         i == 0       ? ""
                         : i + 1 == n ? " or "
                                      : ", ",
                         names[i]);
        len += w < 0 ? 0 : (size_t)w;
    }
    lerr(ld, node, "%s: expected %s; found \"%s\"", path, text ? text : list, v);
    free(v);
    return -1;
}

/* Writes " (did you mean \"x\"?)" for the closest of `names` within 2 edits, or "". */
static void suggest(const char *word, const char *const *names, size_t n, char *out,
                    size_t out_size) {
    size_t best = 3;
    const char *pick = NULL;

    for (size_t i = 0; i < n; i++) {
        size_t d = k2r_edit_distance(word, strlen(word), names[i]);
        if (d < best) {
            best = d;
            pick = names[i];
        }
    }
    if (pick)
        snprintf(out, out_size, " (did you mean \"%s\"?)", pick);
    else if (out_size)
        out[0] = '\0';
}

/* Iterates a mapping's pairs, refusing non-scalar and duplicate keys. */
typedef void (*pair_fn)(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                        const char *path, void *ctx);

static void walk_mapping(loader_t *ld, yaml_node_t *node, const char *path, pair_fn fn, void *ctx) {
    yaml_node_pair_t *p;

    if (node->type != YAML_MAPPING_NODE) {
        if (!is_null(node))
            lerr(ld, node, "%s: expected a mapping, found %s", path, node_kind(node));
        return;
    }
    for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        const char *key;
        int dup = 0;

        if (k->type != YAML_SCALAR_NODE) {
            lerr(ld, k, "%s: keys must be strings, found %s", path, node_kind(k));
            continue;
        }
        key = (const char *)k->data.scalar.value;
        for (yaml_node_pair_t *q = node->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *qk = yaml_document_get_node(ld->doc, q->key);
            if (qk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)qk->data.scalar.value, key) == 0)
                dup = 1;
        }
        if (dup) {
            lerr(ld, k, "%s: duplicate key \"%s\"", path, key);
            continue;
        }
        fn(ld, key, k, v, path, ctx);
    }
}

/* Grows an array by one zeroed element; returns it, or NULL when out of memory. */
static void *grow(void *arrp, size_t *n, size_t size) {
    void **arr = arrp;
    char *p = realloc(*arr, (*n + 1) * size);

    if (!p)
        return NULL;
    *arr = p;
    memset(p + *n * size, 0, size);
    return p + (*n)++ * size;
}

/* Iterates a list that must not be empty, giving each item its path "path[i]". */
typedef void (*item_fn)(loader_t *ld, yaml_node_t *item, const char *path, void *ctx);

static void walk_list(loader_t *ld, yaml_node_t *node, const char *path, const char *what,
                      item_fn fn, void *ctx) {
    if (node->type != YAML_SEQUENCE_NODE ||
        node->data.sequence.items.top == node->data.sequence.items.start) {
        lerr(ld, node, "%s: expected a non-empty list of %s", path, what);
        return;
    }
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        char ipath[320];
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path,
                 (size_t)(it - node->data.sequence.items.start));
        fn(ld, yaml_document_get_node(ld->doc, *it), ipath, ctx);
    }
}

static void unknown_key(loader_t *ld, yaml_node_t *knode, const char *path, const char *key,
                        const char *const *known, size_t nknown) {
    char hint[96];

    suggest(key, known, nknown, hint, sizeof(hint));
    lerr(ld, knode, "%s: unknown key \"%s\"%s", path, key, hint);
}

/* ---------------------------------------------------- kafka.properties */

/* Properties the bridge sets itself; setting them by hand would break a promise. */
static const struct {
    const char *name;
    const char *why;
} owned_properties[] = {
    {"bootstrap.servers", "set it with kafka.brokers"},
    {"metadata.broker.list", "set it with kafka.brokers"},
    {"group.id", "set it with kafka.group_id"},
    {"enable.auto.offset.store",
     "the bridge stores an offset only after Redis acknowledged the record"},
    {"enable.partition.eof", "the bridge does not use partition EOF events"},
};

/* One property: handed to librdkafka's conf API (no client is made) so
 * that a name or value it refuses is reported with its own words. */
static void kafka_property(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                           const char *path, void *ctx) {
    k2r_kafka_conf_t *kc = &ld->cfg->kafka;
    rd_kafka_conf_t *conf = ctx;
    char full[300], errstr[512];
    k2r_property_t *props;
    const char *v;
    int secret;

    snprintf(full, sizeof(full), "%s[\"%s\"]", path, key);
    for (size_t i = 0; i < sizeof(owned_properties) / sizeof(owned_properties[0]); i++) {
        if (strcmp(key, owned_properties[i].name) == 0) {
            lerr(ld, knode, "%s: cannot be set here: %s", full, owned_properties[i].why);
            return;
        }
    }
    if (value->type != YAML_SCALAR_NODE || is_null(value)) {
        lerr(ld, value, "%s: expected a value, found %s", full,
             is_null(value) ? "nothing" : node_kind(value));
        return;
    }
    if (node_state(ld, value) & NODE_BROKEN)
        return; /* the reference's error says what is wrong */
    v = (const char *)value->data.scalar.value;
    secret = (node_state(ld, value) & NODE_PROVIDED) || k2r_property_is_credential(key);
    if (rd_kafka_conf_set(conf, key, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        if (secret)
            redact(errstr, sizeof(errstr), v);
        lerr(ld, knode, "%s: librdkafka: %s", full, errstr);
        return;
    }
    props = realloc(kc->properties, (kc->nproperties + 1) * sizeof(*props));
    if (!props)
        return;
    kc->properties = props;
    props[kc->nproperties].name = strdup(key);
    props[kc->nproperties].value = strdup(v);
    props[kc->nproperties].mark = mark_of(knode);
    props[kc->nproperties].secret = secret;
    kc->nproperties++;
}

/*
 * OAUTHBEARER needs a token source inside librdkafka: its OIDC client
 * (sasl.oauthbearer.method: oidc) or, for tests, its unsecured-JWT builder
 * (enable.sasl.oauthbearer.unsecure.jwt: true). Otherwise librdkafka asks
 * the application for tokens, the bridge has no such callback, and every
 * connection would wait for a token without a word, forever. A librdkafka
 * plugin (plugin.library.paths) may bring a token callback: then it is the
 * plugin's business.
 */
static void kafka_oauthbearer_token(loader_t *ld, rd_kafka_conf_t *conf) {
    const k2r_kafka_conf_t *kc = &ld->cfg->kafka;
    char protocol[32] = "", mechanism[32] = "", method[16] = "", unsecure[8] = "", plugins[8] = "";
    size_t n;

    n = sizeof(protocol);
    rd_kafka_conf_get(conf, "security.protocol", protocol, &n);
    n = sizeof(mechanism);
    rd_kafka_conf_get(conf, "sasl.mechanisms", mechanism, &n);
    n = sizeof(method);
    rd_kafka_conf_get(conf, "sasl.oauthbearer.method", method, &n);
    n = sizeof(unsecure);
    rd_kafka_conf_get(conf, "enable.sasl.oauthbearer.unsecure.jwt", unsecure, &n);
    n = sizeof(plugins);
    rd_kafka_conf_get(conf, "plugin.library.paths", plugins, &n);
    if (plugins[0] || strncasecmp(protocol, "sasl_", 5) != 0 ||
        strcasecmp(mechanism, "OAUTHBEARER") != 0 || strcasecmp(method, "oidc") == 0 ||
        strcmp(unsecure, "true") == 0)
        return;
    for (size_t i = 0; i < kc->nproperties; i++) {
        if (strcmp(kc->properties[i].name, "sasl.mechanisms") == 0 ||
            strcmp(kc->properties[i].name, "sasl.mechanism") == 0) {
            k2r_errors_add(ld->errs, ld->file, kc->properties[i].mark,
                           "kafka.properties[\"%s\"]: OAUTHBEARER needs a token source: "
                           "sasl.oauthbearer.method: oidc (with sasl.oauthbearer.client.id, "
                           ".client.secret and .token.endpoint.url), or, for tests only, "
                           "enable.sasl.oauthbearer.unsecure.jwt: true",
                           kc->properties[i].name);
            return;
        }
    }
}

/* ------------------------------------------------------ string checks */

/* redis.url: a redis:// URL, kept parsed in redis.parsed. */
static int check_redis_url(k2r_config_t *cfg, const char *value, char *errstr, size_t errstr_size) {
    k2r_redis_url_t parsed;

    if (k2r_redis_url_parse(value, &parsed, errstr, errstr_size) != 0)
        return -1;
    k2r_redis_url_free(&cfg->redis.parsed);
    cfg->redis.parsed = parsed;
    return 0;
}

/* http.listen: host:port, [v6]:port or :port. */
static int check_listen(k2r_config_t *cfg, const char *value, char *errstr, size_t errstr_size) {
    char host[256];
    int port;

    (void)cfg;
    if (k2r_split_listen(value, host, sizeof(host), &port) == 0)
        return 0;
    snprintf(errstr, errstr_size,
             "expected host:port, [ipv6]:port or :port with a port 1-65535; found \"%s\"", value);
    return -1;
}

/* ----------------------------------------------------------- the table */

#define FIELD(f) .offset = offsetof(k2r_config_t, f), .size = sizeof(((k2r_config_t *)0)->f)
/* An array of structs: only where its pointer is (size is the pointer's). */
#define ARRAY(f) .offset = offsetof(k2r_config_t, f), .size = sizeof(void *)
#define COUNT(f) .count_offset = offsetof(k2r_config_t, f)
#define DAY_MS   (INT64_C(24) * 3600000)

static const k2r_setting_env_t env_brokers[] = {{"K2R_KAFKA_BROKERS", NULL, NULL},
                                                {NULL, NULL, NULL}};
static const k2r_setting_env_t env_sasl[] = {
    {"K2R_KAFKA_SASL_USERNAME", NULL, "sasl.username"},
    {"K2R_KAFKA_SASL_PASSWORD", "K2R_KAFKA_SASL_PASSWORD_FILE", "sasl.password"},
    {NULL, NULL, NULL}};
static const k2r_setting_env_t env_url[] = {{"K2R_REDIS_URL", NULL, NULL}, {NULL, NULL, NULL}};
static const k2r_setting_env_t env_username[] = {
    {"K2R_REDIS_USERNAME", "K2R_REDIS_USERNAME_FILE", NULL}, {NULL, NULL, NULL}};
static const k2r_setting_env_t env_password[] = {
    {"K2R_REDIS_PASSWORD", "K2R_REDIS_PASSWORD_FILE", NULL}, {NULL, NULL, NULL}};
static const k2r_setting_env_t env_sentinel_username[] = {
    {"K2R_REDIS_SENTINEL_USERNAME", "K2R_REDIS_SENTINEL_USERNAME_FILE", NULL}, {NULL, NULL, NULL}};
static const k2r_setting_env_t env_sentinel_password[] = {
    {"K2R_REDIS_SENTINEL_PASSWORD", "K2R_REDIS_SENTINEL_PASSWORD_FILE", NULL}, {NULL, NULL, NULL}};
static const k2r_setting_env_t env_level[] = {{"K2R_LOG_LEVEL", NULL, NULL}, {NULL, NULL, NULL}};
static const k2r_setting_env_t env_format[] = {{"K2R_LOG_FORMAT", NULL, NULL}, {NULL, NULL, NULL}};
static const k2r_setting_env_t env_listen[] = {{"K2R_HTTP_LISTEN", NULL, NULL}, {NULL, NULL, NULL}};

/* In the enums' orders: k2r_on_unavailable_t, the K2R_LOG_* levels, k2r_log_format_t. */
static const char *const unavailable_names[] = {"pause", "drop", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const format_names[] = {"json", "text", NULL};

/*
 * Every setting, in the reference's order. The order matters three times:
 * it is the order of the README's table, of the names in a reload's
 * "take a restart" warning, and of the candidates for "did you mean".
 */
static const k2r_setting_t settings[] = {
    {.name = "kafka.brokers",
     .type = K2R_SETTING_STRING,
     FIELD(kafka.brokers),
     .env = env_brokers,
     .flags = K2R_SETTING_RESTART | K2R_SETTING_REQUIRED,
     .description = "Kafka brokers to start from: host:port, comma-separated"},
    {.name = "kafka.group_id",
     .type = K2R_SETTING_STRING,
     FIELD(kafka.group_id),
     .flags = K2R_SETTING_RESTART | K2R_SETTING_REQUIRED,
     .description = "the consumer group"},
    {.name = "kafka.topics",
     .type = K2R_SETTING_LIST,
     FIELD(kafka.topics),
     COUNT(kafka.ntopics),
     .items = "topic names",
     .flags = K2R_SETTING_RESTART | K2R_SETTING_REQUIRED,
     .description = "names, or ^regex patterns (librdkafka syntax); one name may be a scalar"},
    {.name = "kafka.properties",
     .type = K2R_SETTING_MAP,
     ARRAY(kafka.properties),
     COUNT(kafka.nproperties),
     .env = env_sasl,
     .flags = K2R_SETTING_RESTART,
     .description = "any librdkafka property, as-is (consumer and dead-letter producer)"},
    {.name = "kafka.group_instance_id",
     .type = K2R_SETTING_STRING,
     FIELD(kafka.group_instance_id),
     .flags = K2R_SETTING_RESTART,
     .description = "static membership: this member's group.instance.id, unique per member "
                    "(e.g. ${env:POD_NAME}); unset: a dynamic member"},
    {.name = "kafka.startup_timeout",
     .type = K2R_SETTING_DURATION,
     FIELD(kafka.startup_timeout_ms),
     .min = 1000,
     .max = 3600000,
     .dflt = "30s",
     .flags = K2R_SETTING_RESTART,
     .description = "no broker answering within this at start: exit 3"},
    {.name = "kafka.dead_letter_topic",
     .type = K2R_SETTING_STRING,
     FIELD(kafka.dead_letter_topic),
     .mark_offset = offsetof(k2r_config_t, dead_letter_mark),
     .flags = K2R_SETTING_RESTART,
     .description = "where on_error: dead-letter sends records (optional)"},
    {.name = "redis.url",
     .type = K2R_SETTING_STRING,
     FIELD(redis.url),
     .dflt = "redis://127.0.0.1:6379",
     .env = env_url,
     .check = check_redis_url,
     .flags = K2R_SETTING_RESTART,
     .description = "redis://[[user]:password@]host[:port][/db]"},
    {.name = "redis.username",
     .type = K2R_SETTING_STRING,
     FIELD(redis.username),
     .env = env_username,
     .flags = K2R_SETTING_RESTART,
     .description = "the ACL user for AUTH user password; wins over the URL's"},
    {.name = "redis.password",
     .type = K2R_SETTING_SECRET,
     FIELD(redis.password),
     .env = env_password,
     .flags = K2R_SETTING_RESTART,
     .description = "wins over the URL's; prefer the environment (the _FILE variant wins)"},
    {.name = "redis.connect_timeout_ms",
     .type = K2R_SETTING_INT,
     FIELD(redis.connect_timeout_ms),
     .min = 1,
     .max = 600000,
     .dflt = "2000",
     .flags = K2R_SETTING_RESTART,
     .description = "how long a connection attempt may take"},
    {.name = "redis.command_timeout_ms",
     .type = K2R_SETTING_INT,
     FIELD(redis.command_timeout_ms),
     .min = 1,
     .max = 600000,
     .dflt = "5000",
     .flags = K2R_SETTING_RESTART,
     .description = "no reply progress for this long = connection lost"},
    {.name = "redis.pipeline_depth",
     .type = K2R_SETTING_INT,
     FIELD(redis.pipeline_depth),
     .min = 1,
     .max = 65536,
     .dflt = "512",
     .flags = K2R_SETTING_RESTART,
     .description = "most PUBLISH commands awaiting replies"},
    {.name = "redis.reconnect_backoff_ms",
     .type = K2R_SETTING_INT,
     FIELD(redis.backoff_initial_ms),
     .min = 1,
     .max = 600000,
     .dflt = "100",
     .flags = K2R_SETTING_RESTART,
     .description = "first reconnect delay"},
    {.name = "redis.reconnect_backoff_max_ms",
     .type = K2R_SETTING_INT,
     FIELD(redis.backoff_max_ms),
     .min = 1,
     .max = 3600000,
     .dflt = "5000",
     .flags = K2R_SETTING_RESTART,
     .description = "cap of the doubling delay"},
    {.name = "redis.on_unavailable",
     .type = K2R_SETTING_CHOICE,
     FIELD(redis.on_unavailable),
     .choices = unavailable_names,
     .dflt = "pause",
     .flags = K2R_SETTING_RESTART,
     .description = "pause: hold, pause Kafka, retry; drop: count, drop, go on"},
    {.name = "redis.tls.ca_file",
     .type = K2R_SETTING_STRING,
     FIELD(redis.tls_ca_file),
     .flags = K2R_SETTING_RESTART,
     .description = "rediss://: PEM file of the CAs to trust (unset: the system's store)"},
    {.name = "redis.tls.cert_file",
     .type = K2R_SETTING_STRING,
     FIELD(redis.tls_cert_file),
     .flags = K2R_SETTING_RESTART,
     .description = "rediss://: PEM client certificate (chain) for mutual TLS; needs key_file"},
    {.name = "redis.tls.key_file",
     .type = K2R_SETTING_STRING,
     FIELD(redis.tls_key_file),
     .flags = K2R_SETTING_RESTART,
     .description = "rediss://: PEM private key of cert_file"},
    {.name = "redis.tls.server_name",
     .type = K2R_SETTING_STRING,
     FIELD(redis.tls_server_name),
     .flags = K2R_SETTING_RESTART,
     .description = "rediss://: SNI and the name verified (unset: the URL's host)"},
    {.name = "redis.tls.insecure_skip_verify",
     .type = K2R_SETTING_BOOL,
     FIELD(redis.tls_insecure_skip_verify),
     .dflt = "false",
     .flags = K2R_SETTING_RESTART,
     .description = "rediss://: do not verify the server's certificate (logs a warning)"},
    {.name = "redis.sentinel.master",
     .type = K2R_SETTING_STRING,
     FIELD(redis.sentinel_master),
     .flags = K2R_SETTING_RESTART,
     .restart_name = "redis.sentinel",
     .description = "Sentinel: the monitored master's name; the sentinels say where it is"},
    {.name = "redis.sentinel.addresses",
     .type = K2R_SETTING_LIST,
     FIELD(redis.sentinel_addrs),
     COUNT(redis.nsentinel_addrs),
     .mark_offset = offsetof(k2r_config_t, redis.sentinel_mark),
     .items = "host:port addresses",
     .flags = K2R_SETTING_RESTART,
     .restart_name = "redis.sentinel",
     .description = "Sentinel: host:port of the sentinels to ask, in order"},
    {.name = "redis.sentinel.username",
     .type = K2R_SETTING_STRING,
     FIELD(redis.sentinel_username),
     .env = env_sentinel_username,
     .flags = K2R_SETTING_RESTART,
     .restart_name = "redis.sentinel",
     .description = "Sentinel: the sentinels' ACL user (unset: none)"},
    {.name = "redis.sentinel.password",
     .type = K2R_SETTING_SECRET,
     FIELD(redis.sentinel_password),
     .env = env_sentinel_password,
     .flags = K2R_SETTING_RESTART,
     .restart_name = "redis.sentinel",
     .description = "Sentinel: the sentinels' password (unset: none); prefer the environment"},
    {.name = "redis.sentinel.tls",
     .type = K2R_SETTING_BOOL,
     FIELD(redis.sentinel_tls),
     .dflt = "false",
     .flags = K2R_SETTING_RESTART,
     .restart_name = "redis.sentinel",
     .description = "Sentinel: speak TLS to the sentinels, with the redis.tls settings"},
    {.name = "redis.cluster.addresses",
     .type = K2R_SETTING_LIST,
     FIELD(redis.cluster_addrs),
     COUNT(redis.ncluster_addrs),
     .mark_offset = offsetof(k2r_config_t, redis.cluster_mark),
     .items = "host:port addresses",
     .flags = K2R_SETTING_RESTART,
     .restart_name = "redis.cluster",
     .description = "Cluster: seed nodes (host:port) to read the slot map from"},
    {.name = "redis.sharded",
     .type = K2R_SETTING_BOOL,
     FIELD(redis.sharded),
     .dflt = "false",
     .flags = K2R_SETTING_RESTART,
     .description = "SPUBLISH to the shard owning the channel (subscribers use SSUBSCRIBE)"},
    {.name = "redis.idle_check",
     .type = K2R_SETTING_DURATION,
     FIELD(redis.idle_check_ms),
     .min = 100,
     .max = 3600000,
     .dflt = "5s",
     .flags = K2R_SETTING_RESTART,
     .description = "PING a connection idle this long, so health notices a dead one"},
    {.name = "redis.history_prefix",
     .type = K2R_SETTING_STRING,
     FIELD(redis.history_prefix),
     .dflt = "history:",
     .flags = K2R_SETTING_RESTART,
     .description = "a rule's `history` stream is this + the channel (docs/history.md)"},
    {.name = "dedupe.enabled",
     .type = K2R_SETTING_BOOL,
     FIELD(dedupe.enabled),
     .dflt = "false",
     .flags = K2R_SETTING_RESTART,
     .description = "publish each record once between the bridge and the producer shim"},
    {.name = "dedupe.window",
     .type = K2R_SETTING_DURATION,
     FIELD(dedupe.window_ms),
     .min = 1000,
     .max = 7 * DAY_MS,
     .dflt = "10m",
     .flags = K2R_SETTING_RESTART,
     .description = "how long Redis remembers that a record was published"},
    {.name = "dedupe.prefix",
     .type = K2R_SETTING_STRING,
     FIELD(dedupe.prefix),
     .dflt = "k2r:dedupe:",
     .flags = K2R_SETTING_RESTART,
     .description = "the prefix of the keys that remember it"},
    {.name = "rules",
     .type = K2R_SETTING_RULES,
     ARRAY(rules),
     COUNT(nrules),
     .flags = K2R_SETTING_REQUIRED,
     .description = "at least one rule; the language is described in docs/rules.md"},
    {.name = "log.level",
     .type = K2R_SETTING_CHOICE,
     FIELD(log_level),
     .choices = level_names,
     .choices_text = "one of error, warn, info, debug",
     .dflt = "info",
     .env = env_level,
     .flags = K2R_SETTING_ENV_AT_RUN,
     .description = "the least severe level logged"},
    {.name = "log.format",
     .type = K2R_SETTING_CHOICE,
     FIELD(log_format),
     .choices = format_names,
     .dflt = "json",
     .env = env_format,
     .flags = K2R_SETTING_RESTART | K2R_SETTING_ENV_AT_RUN,
     .description = "json: one object a line; text: for people"},
    {.name = "limits.max_channel_bytes",
     .type = K2R_SETTING_INT,
     FIELD(limits.max_channel_bytes),
     .min = 16,
     .max = 65536,
     .dflt = "1024",
     .description = "longest channel name; longer is a too_long failure"},
    {.name = "limits.max_notification_bytes",
     .type = K2R_SETTING_INT,
     FIELD(limits.max_notification_bytes),
     .min = 64,
     .max = 1048576,
     .dflt = "8192",
     .description = "largest notification; larger is a too_large failure"},
    {.name = "limits.max_inflight_records",
     .type = K2R_SETTING_INT,
     FIELD(limits.max_inflight_records),
     .min = 1,
     .max = 1000000,
     .dflt = "1000",
     .description = "records taken from Kafka and not finished"},
    {.name = "limits.max_inflight_bytes",
     .type = K2R_SETTING_INT,
     FIELD(limits.max_inflight_bytes),
     .min = 65536,
     .max = 1073741824,
     .dflt = "16777216",
     .description = "their keys, values and headers; 4 times it caps the key and header bytes "
                    "librdkafka fetches ahead"},
    {.name = "limits.max_age",
     .type = K2R_SETTING_DURATION,
     FIELD(limits.max_age_ms),
     .min = 0,
     .max = 30 * DAY_MS,
     .dflt = "0",
     .description = "older at publish time is not sent (0: no cutoff); a rule's max_age wins"},
    {.name = "shutdown.drain_timeout",
     .type = K2R_SETTING_DURATION,
     FIELD(drain_timeout_ms),
     .min = 0,
     .max = 600000,
     .dflt = "10s",
     .description = "SIGTERM: how long the batch in flight may take"},
    {.name = "http.enabled",
     .type = K2R_SETTING_BOOL,
     FIELD(http.enabled),
     .dflt = "true",
     .restart_name = "http",
     .flags = K2R_SETTING_RESTART,
     .description = "serve /healthz, /readyz and /metrics"},
    {.name = "http.listen",
     .type = K2R_SETTING_STRING,
     FIELD(http.listen),
     .dflt = "0.0.0.0:8080",
     .env = env_listen,
     .check = check_listen,
     .restart_name = "http",
     .flags = K2R_SETTING_RESTART,
     .description = "host:port, [v6]:port or :port"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Keys that were settings once, with what replaced them. */
static const struct {
    const char *name;
    const char *why;
} retired[] = {
    {"kafka.batch_size", "replaced by limits.max_inflight_records (a batch is what is in flight)"},
};

const k2r_setting_t *k2r_settings(size_t *n) {
    *n = NSETTINGS;
    return settings;
}

const k2r_setting_t *k2r_setting_find(const char *name) {
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

/* The section a row belongs to, as a length of its name ("kafka" of kafka.brokers). */
static size_t section_len(const k2r_setting_t *s) {
    const char *dot = strchr(s->name, '.');
    return dot ? (size_t)(dot - s->name) : strlen(s->name);
}

/* A row's value and count within a config (through void *: the offsets come
 * from offsetof, so the alignment is the member's own). */
#define AT(cfg, s, type)  ((type *)(void *)((char *)(cfg) + (s)->offset))
#define CAT(cfg, s, type) ((type const *)(const void *)((const char *)(cfg) + (s)->offset))
#define COUNT_AT(cfg, s)  ((size_t *)(void *)((char *)(cfg) + (s)->count_offset))
#define CCOUNT_AT(cfg, s) ((const size_t *)(const void *)((const char *)(cfg) + (s)->count_offset))

/* A number setting's value (int, bool, choice, duration). */
static int64_t number_of(const k2r_setting_t *s, const k2r_config_t *cfg) {
    if (s->size == sizeof(int64_t))
        return *CAT(cfg, s, int64_t);
    return *CAT(cfg, s, int);
}

static void set_number(const k2r_setting_t *s, k2r_config_t *cfg, int64_t v) {
    if (s->size == sizeof(int64_t))
        *AT(cfg, s, int64_t) = v;
    else
        *AT(cfg, s, int) = (int)v;
}

static int str_differs(const char *a, const char *b) {
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

int k2r_setting_differs(const k2r_setting_t *s, const k2r_config_t *a, const k2r_config_t *b) {
    switch (s->type) {
    case K2R_SETTING_STRING:
    case K2R_SETTING_SECRET:
        return str_differs(*CAT(a, s, char *), *CAT(b, s, char *));
    case K2R_SETTING_INT:
    case K2R_SETTING_DURATION:
    case K2R_SETTING_BOOL:
    case K2R_SETTING_CHOICE:
        return number_of(s, a) != number_of(s, b);
    case K2R_SETTING_LIST: {
        char *const *la = *CAT(a, s, char **), *const *lb = *CAT(b, s, char **);
        size_t n = *CCOUNT_AT(a, s);

        if (n != *CCOUNT_AT(b, s))
            return 1;
        for (size_t i = 0; i < n; i++)
            if (strcmp(la[i], lb[i]) != 0)
                return 1;
        return 0;
    }
    case K2R_SETTING_MAP: {
        const k2r_property_t *pa = *CAT(a, s, k2r_property_t *), *pb = *CAT(b, s, k2r_property_t *);
        size_t n = *CCOUNT_AT(a, s);

        if (n != *CCOUNT_AT(b, s))
            return 1;
        for (size_t i = 0; i < n; i++)
            if (strcmp(pa[i].name, pb[i].name) != 0 || strcmp(pa[i].value, pb[i].value) != 0)
                return 1;
        return 0;
    }
    case K2R_SETTING_RULES:
        return 0; /* a reload exists to change them */
    }
    return 0;
}

/* ----------------------------------------------- reading one setting */

/* Appends one list item (a topic). */
static void list_item(loader_t *ld, yaml_node_t *item, const char *path, void *ctx) {
    const k2r_setting_t *s = ctx;
    char *t = node_state(ld, item) & NODE_BROKEN ? NULL : get_string(ld, item, path);
    char **slot = t ? grow(AT(ld->cfg, s, char **), COUNT_AT(ld->cfg, s), sizeof(char *)) : NULL;

    if (node_state(ld, item) & NODE_PROVIDED)
        ld->cfg->provided |= UINT64_C(1) << (s - settings);
    if (slot)
        *slot = t;
    else
        free(t);
}

/* Reads `value` into the setting `s` written as `path`, by the row's type. */
static void read_setting(loader_t *ld, const k2r_setting_t *s, yaml_node_t *value,
                         const char *path) {
    k2r_config_t *cfg = ld->cfg;

    if (s->mark_offset)
        *(k2r_mark_t *)(void *)((char *)cfg + s->mark_offset) = mark_of(value);
    if (node_state(ld, value) & NODE_BROKEN)
        return; /* the reference's error says what is wrong */
    if (node_state(ld, value) & NODE_PROVIDED)
        cfg->provided |= UINT64_C(1) << (s - settings);
    switch (s->type) {
    case K2R_SETTING_STRING:
    case K2R_SETTING_SECRET: {
        char *v, errstr[256];

        v = get_string(ld, value, path);
        if (v && s->check && s->check(cfg, v, errstr, sizeof(errstr)) != 0) {
            lerr(ld, value, "%s: %s", path, errstr);
            free(v);
            v = NULL;
        }
        free(*AT(cfg, s, char *));
        *AT(cfg, s, char *) = v;
        break;
    }
    case K2R_SETTING_INT: {
        get_int(ld, value, path, (long)s->min, (long)s->max, AT(cfg, s, int));
        break;
    }
    case K2R_SETTING_DURATION: {
        int64_t ms = number_of(s, cfg);
        get_duration(ld, value, path, s->min, s->max, &ms);
        set_number(s, cfg, ms);
        break;
    }
    case K2R_SETTING_BOOL:
        get_bool(ld, value, path, AT(cfg, s, int));
        break;
    case K2R_SETTING_CHOICE: {
        size_t n = 0;
        int i;

        while (s->choices[n])
            n++;
        i = get_choice(ld, value, path, s->choices, n, s->choices_text);
        if (i >= 0)
            set_number(s, cfg, i);
        break;
    }
    case K2R_SETTING_LIST:
        /* A single item written as a scalar is accepted as a list of one. */
        if (value->type == YAML_SCALAR_NODE && !is_null(value))
            list_item(ld, value, path, (void *)s);
        else
            walk_list(ld, value, path, s->items, list_item, (void *)s);
        break;
    case K2R_SETTING_MAP: {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        walk_mapping(ld, value, path, kafka_property, conf);
        kafka_oauthbearer_token(ld, conf);
        rd_kafka_conf_destroy(conf);
        break;
    }
    case K2R_SETTING_RULES:
        assert(!"the rules are read by rules_section");
        break;
    }
}

/*
 * One key of a settings section or of a mapping inside one (redis.tls), `path`
 * being where it is ("redis", "redis.tls"). A key that is the first word of
 * longer rows' names is a mapping of them, read by the same function.
 */
static void section_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                         const char *path, void *ctx) {
    const char *known[NSETTINGS];
    char words[NSETTINGS][32];
    size_t nknown = 0, plen = strlen(path), klen = strlen(key);
    char sub[256];

    (void)ctx;
    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const k2r_setting_t *s = &settings[i];
        const char *rest, *dot;
        size_t j, wlen;

        if (strncmp(s->name, path, plen) != 0 || s->name[plen] != '.')
            continue;
        rest = s->name + plen + 1;
        if (strcmp(rest, key) == 0) {
            ld->present |= UINT64_C(1) << i;
            read_setting(ld, s, value, sub);
            return;
        }
        dot = strchr(rest, '.');
        if (dot && (size_t)(dot - rest) == klen && strncmp(rest, key, klen) == 0) {
            /* The mapping's position, for errors about it as a whole. */
            if (strcmp(sub, "redis.tls") == 0)
                ld->cfg->redis.tls_mark = mark_of(value);
            walk_mapping(ld, value, sub, section_pair, NULL);
            return;
        }
        wlen = dot ? (size_t)(dot - rest) : strlen(rest);
        if (wlen >= sizeof(words[0]))
            continue;
        for (j = 0; j < nknown && strcmp(known[j], rest) != 0 &&
                    (strlen(known[j]) != wlen || strncmp(known[j], rest, wlen) != 0);
             j++)
            ;
        if (j < nknown)
            continue;
        snprintf(words[nknown], sizeof(words[0]), "%.*s", (int)wlen, rest);
        known[nknown] = words[nknown];
        nknown++;
    }
    for (size_t i = 0; i < sizeof(retired) / sizeof(retired[0]); i++) {
        if (strcmp(sub, retired[i].name) == 0) {
            lerr(ld, knode, "%s: %s", sub, retired[i].why);
            return;
        }
    }
    unknown_key(ld, knode, path, key, known, nknown);
}

/* ------------------------------------------------------------- rules: */

const char *const k2r_rule_keys[] = {
    "name",         "topic",   "type",     "id",     "vars",     "when",    "channel", "channels",
    "notification", "message", "on_error", "unsafe", "continue", "max_age", "history", NULL};

const char *const k2r_unsafe_names[] = {"reject", "escape", NULL};

/* A plain scalar written as a decimal integer ("42", "-7"). */
static int plain_int(const yaml_node_t *node) {
    const char *v = (const char *)node->data.scalar.value;
    char *end;

    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !*v)
        return 0;
    errno = 0;
    (void)strtoll(v, &end, 10);
    return !errno && !*end;
}

/* A scalar, possibly empty (constants and condition values may be ""). */
static char *get_scalar(loader_t *ld, const yaml_node_t *node, const char *path) {
    if (node_state(ld, node) & NODE_BROKEN)
        return NULL;
    if (node->type != YAML_SCALAR_NODE || is_null(node)) {
        lerr(ld, node, "%s: expected a value, found %s", path,
             is_null(node) ? "nothing" : node_kind(node));
        return NULL;
    }
    if (memchr(node->data.scalar.value, '\0', node->data.scalar.length)) {
        lerr(ld, node, "%s: must not contain a NUL character", path);
        return NULL;
    }
    return strdup((const char *)node->data.scalar.value);
}

static const char *const meta_names[] = {"key", "topic", "partition", "offset", "timestamp", NULL};

const k2r_source_syntax_t k2r_source_syntax[K2R_SOURCE_COUNT] = {
    [K2R_SOURCE_PATH] = {"path", 0, 1, NULL, NULL},
    [K2R_SOURCE_HEADER] = {"header", 0, 1, NULL, NULL},
    [K2R_SOURCE_META] = {"meta", 0, 1, meta_names, "key, topic, partition, offset or timestamp"},
    [K2R_SOURCE_CONST] = {"const", 1, 0, NULL, NULL},
    [K2R_SOURCE_CLOUDEVENTS] = {"cloudevents", 0, 1, NULL, NULL},
    [K2R_SOURCE_VAR] = {"var", 0, 0, NULL, NULL},
};

/* ", "-separated keys of the source kinds, var only when allow_var. */
static void source_kind_list(char *out, size_t size, int allow_var) {
    size_t n = 0;

    out[0] = '\0';
    for (int k = 0; k < K2R_SOURCE_COUNT && n < size; k++)
        if (k != K2R_SOURCE_VAR || allow_var)
            n += (size_t)snprintf(out + n, size - n, "%s%s", n ? ", " : "",
                                  k2r_source_syntax[k].key);
}

/*
 * Reads a source: a scalar (a path) or a mapping with one of path, header,
 * meta, const, cloudevents (and var when allow_var), plus an optional
 * default. Returns 0, or -1 after adding errors.
 */
static int get_source(loader_t *ld, yaml_node_t *node, const char *path, int allow_var,
                      k2r_source_conf_t *src) {
    int nkinds = 0, bad = 0;

    memset(src, 0, sizeof(*src));
    src->mark = mark_of(node);
    if (node->type == YAML_SCALAR_NODE) {
        src->kind = K2R_SOURCE_PATH;
        src->arg = get_string(ld, node, path);
        return src->arg ? 0 : -1;
    }
    if (node->type != YAML_MAPPING_NODE) {
        lerr(ld, node, "%s: expected a path or a mapping such as {header: NAME}, found %s", path,
             node_kind(node));
        return -1;
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        char sub[300];
        int kind = -1;

        snprintf(sub, sizeof(sub), "%s.%s", path, key);
        if (strcmp(key, "default") == 0) {
            free(src->dflt);
            src->dflt = get_scalar(ld, v, sub);
            src->dflt_is_int = src->dflt && plain_int(v);
            bad |= !src->dflt;
            continue;
        }
        for (int i = 0; i < K2R_SOURCE_COUNT && kind < 0; i++)
            if (strcmp(key, k2r_source_syntax[i].key) == 0 && (i != K2R_SOURCE_VAR || allow_var))
                kind = i;
        if (kind < 0 && strcmp(key, k2r_source_syntax[K2R_SOURCE_VAR].key) == 0) {
            lerr(ld, k, "%s: var reads a variable in notification fields only", path);
            bad = 1;
            continue;
        }
        if (kind < 0) {
            const char *keys[K2R_SOURCE_COUNT + 1];
            char hint[96];

            for (int i = 0; i < K2R_SOURCE_COUNT; i++)
                keys[i] = k2r_source_syntax[i].key;
            keys[K2R_SOURCE_COUNT] = "default";
            suggest(key, keys, K2R_SOURCE_COUNT + 1, hint, sizeof(hint));
            lerr(ld, k, "%s: unknown source kind \"%s\"%s", path, key, hint);
            bad = 1;
            continue;
        }
        if (nkinds++) {
            char kinds[96];

            source_kind_list(kinds, sizeof(kinds), allow_var);
            lerr(ld, k, "%s: a source takes one of %s", path, kinds);
            bad = 1;
            continue;
        }
        src->kind = (k2r_source_kind_t)kind;
        src->arg =
            k2r_source_syntax[kind].scalar_arg ? get_scalar(ld, v, sub) : get_string(ld, v, sub);
        if (!src->arg) {
            bad = 1;
            continue;
        }
        src->arg_is_int = k2r_source_syntax[kind].scalar_arg && plain_int(v);
        if (k2r_source_syntax[kind].args) {
            int known = 0;
            for (const char *const *a = k2r_source_syntax[kind].args; *a; a++)
                known |= strcmp(src->arg, *a) == 0;
            if (!known) {
                lerr(ld, v, "%s: expected %s, found \"%s\"", sub, k2r_source_syntax[kind].args_text,
                     src->arg);
                bad = 1;
            }
        }
    }
    if (!nkinds && !bad) {
        char kinds[96];

        source_kind_list(kinds, sizeof(kinds), allow_var);
        lerr(ld, node, "%s: a source needs one of %s", path, kinds);
        bad = 1;
    }
    if (!bad && src->dflt && !k2r_source_syntax[src->kind].takes_default) {
        lerr(ld, node, "%s: default makes no sense with %s", path,
             k2r_source_syntax[src->kind].key);
        bad = 1;
    }
    return bad ? -1 : 0;
}

static void free_source(k2r_source_conf_t *src) {
    free(src->arg);
    free(src->dflt);
}

static int valid_name(const char *s) {
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* Adds variable `name` to the rule; refuses bad and duplicate names. */
static void rule_var(loader_t *ld, k2r_rule_conf_t *rc, const char *name, yaml_node_t *knode,
                     yaml_node_t *value, const char *path) {
    k2r_source_conf_t src;
    k2r_var_conf_t *v;

    if (!valid_name(name)) {
        lerr(ld, knode, "%s: \"%s\" is not a variable name (letters, digits, _; not first a digit)",
             path, name);
        return;
    }
    for (size_t i = 0; i < rc->nvars; i++) {
        if (strcmp(rc->vars[i].name, name) == 0) {
            lerr(ld, knode, "%s: variable \"%s\" is defined twice", path, name);
            return;
        }
    }
    if (get_source(ld, value, path, 0, &src) != 0) {
        free_source(&src);
        rc->nbroken++;
        return;
    }
    v = grow(&rc->vars, &rc->nvars, sizeof(*rc->vars));
    if (!v || !(v->name = strdup(name))) {
        free_source(&src);
        if (v)
            rc->nvars--;
        return;
    }
    v->src = src;
}

static void vars_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                      const char *path, void *ctx) {
    char sub[300];

    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    rule_var(ld, ctx, key, knode, value, sub);
}

/* Reads a list of scalars into *values. */
/* Appends one condition value (an item of `in:` or `not_in:`). */
static void cond_value(loader_t *ld, yaml_node_t *item, const char *path, void *ctx) {
    k2r_cond_conf_t *c = ctx;
    char *v = get_scalar(ld, item, path);
    char **slot = v ? grow(&c->values, &c->nvalues, sizeof(char *)) : NULL;

    if (slot)
        *slot = v;
    else
        free(v);
}

static void when_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                      const char *path, void *ctx) {
    static const char *const ops[] = {"equals", "not", "in", "not_in", "exists"};
    k2r_rule_conf_t *rc = ctx;
    k2r_cond_conf_t c = {NULL, K2R_COND_EQUALS, NULL, 0, mark_of(knode)};
    k2r_cond_conf_t *slot;
    char sub[300];
    int ok = 0;

    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (value->type == YAML_SCALAR_NODE) {
        char *v = get_scalar(ld, value, sub);
        char **vs = v ? grow(&c.values, &c.nvalues, sizeof(char *)) : NULL;
        if (vs)
            *vs = v;
        else
            free(v);
        ok = vs != NULL;
    } else if (value->type == YAML_MAPPING_NODE &&
               value->data.mapping.pairs.top - value->data.mapping.pairs.start == 1) {
        yaml_node_pair_t *p = value->data.mapping.pairs.start;
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        const char *op = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        char opath[320];

        snprintf(opath, sizeof(opath), "%s.%s", sub, op);
        if (strcmp(op, "equals") == 0 || strcmp(op, "not") == 0) {
            char *s = get_scalar(ld, v, opath);
            char **vs = s ? grow(&c.values, &c.nvalues, sizeof(char *)) : NULL;
            if (vs)
                *vs = s;
            else
                free(s);
            c.op = op[0] == 'e' ? K2R_COND_EQUALS : K2R_COND_NOT_EQUALS;
            ok = vs != NULL;
        } else if (strcmp(op, "in") == 0 || strcmp(op, "not_in") == 0) {
            c.op = op[0] == 'i' ? K2R_COND_IN : K2R_COND_NOT_IN;
            size_t nerrs = ld->errs->count;
            walk_list(ld, v, opath, "values", cond_value, &c);
            ok = ld->errs->count == nerrs && c.nvalues > 0;
        } else if (strcmp(op, "exists") == 0) {
            int b = 0;
            ok = get_bool(ld, v, opath, &b) == 0;
            c.op = b ? K2R_COND_EXISTS : K2R_COND_ABSENT;
        } else {
            char hint[96];
            suggest(op, ops, sizeof(ops) / sizeof(ops[0]), hint, sizeof(hint));
            lerr(ld, k, "%s: unknown condition \"%s\"%s (known: equals, not, in, not_in, exists)",
                 sub, op, hint);
        }
    } else {
        lerr(ld, value,
             "%s: expected a value or one of {equals: V}, {not: V}, {in: [..]}, {not_in: [..]}, "
             "{exists: true|false}",
             sub);
    }
    if (ok && (c.var = strdup(key)) != NULL &&
        (slot = grow(&rc->conds, &rc->nconds, sizeof(*rc->conds))) != NULL) {
        *slot = c;
        return;
    }
    free(c.var);
    for (size_t i = 0; i < c.nvalues; i++)
        free(c.values[i]);
    free(c.values);
}

static void rule_channel(loader_t *ld, yaml_node_t *node, const char *path, void *ctx) {
    k2r_rule_conf_t *rc = ctx;
    char *t = get_string(ld, node, path);
    char **slot;
    k2r_mark_t *mslot;
    size_t n = rc->nchannels;

    if (!t)
        return;
    slot = grow(&rc->channels, &n, sizeof(char *));
    n = rc->nchannels;
    mslot = slot ? grow(&rc->channel_marks, &n, sizeof(k2r_mark_t)) : NULL;
    if (!slot || !mslot) {
        free(t);
        return;
    }
    *slot = t;
    *mslot = mark_of(node);
    rc->nchannels++;
}

/* One entry of `notification:`: "path" (the key is the path) or {key: SOURCE}. */
static void rule_field(loader_t *ld, yaml_node_t *item, const char *path, void *ctx) {
    k2r_rule_conf_t *rc = ctx;
    k2r_field_conf_t f;
    k2r_field_conf_t *slot;

    memset(&f, 0, sizeof(f));
    f.mark = mark_of(item);
    if (item->type == YAML_MAPPING_NODE &&
        item->data.mapping.pairs.top - item->data.mapping.pairs.start == 1) {
        yaml_node_pair_t *p = item->data.mapping.pairs.start;
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        f.name = get_string(ld, k, path);
        if (!f.name || get_source(ld, v, path, 1, &f.src) != 0)
            goto drop;
    } else if (item->type == YAML_SCALAR_NODE) {
        f.name = get_string(ld, item, path);
        if (!f.name || get_source(ld, item, path, 1, &f.src) != 0)
            goto drop;
    } else {
        lerr(ld, item, "%s: expected a field path or a one-key mapping {name: source}, found %s",
             path, node_kind(item));
        return;
    }
    for (size_t i = 0; i < rc->nfields; i++) {
        if (strcmp(rc->fields[i].name, f.name) == 0) {
            lerr(ld, item, "%s: duplicate notification field \"%s\"", path, f.name);
            goto drop;
        }
    }
    slot = grow(&rc->fields, &rc->nfields, sizeof(*rc->fields));
    if (!slot)
        goto drop;
    *slot = f;
    return;
drop:
    free(f.name);
    free_source(&f.src);
}

/* One key of a rule's `history:` mapping. */
static void history_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                         const char *path, void *ctx) {
    static const char *const keys[] = {"maxlen", "ttl"};
    k2r_rule_conf_t *rc = ctx;
    char sub[320];

    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (strcmp(key, "maxlen") == 0) {
        int n = 0;

        get_int(ld, value, sub, 1, 1000000, &n);
        rc->history_maxlen = (uint32_t)n;
    } else if (strcmp(key, "ttl") == 0) {
        get_duration(ld, value, sub, 1000, INT64_C(365) * DAY_MS, &rc->history_ttl_ms);
    } else {
        unknown_key(ld, knode, path, key, keys, sizeof(keys) / sizeof(keys[0]));
    }
}

/* Per-rule scratch while walking: what was written, for the checks after. */
typedef struct rule_walk_s {
    k2r_rule_conf_t *rc;
    yaml_node_t *type_node, *id_node, *vars_node, *when_node;
    int has_channel, has_channels, has_fields;
} rule_walk_t;

static void rule_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                      const char *path, void *ctx) {
    rule_walk_t *w = ctx;
    k2r_rule_conf_t *rc = w->rc;
    char sub[300];

    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (strcmp(key, "name") == 0) {
        rc->name = get_string(ld, value, sub);
    } else if (strcmp(key, "topic") == 0) {
        rc->topic = get_string(ld, value, sub);
        rc->topic_mark = mark_of(value);
    } else if (strcmp(key, "type") == 0) {
        w->type_node = value;
    } else if (strcmp(key, "id") == 0) {
        w->id_node = value;
    } else if (strcmp(key, "vars") == 0) {
        w->vars_node = value;
    } else if (strcmp(key, "when") == 0) {
        w->when_node = value;
    } else if (strcmp(key, "channel") == 0) {
        w->has_channel = 1;
        rule_channel(ld, value, sub, rc);
    } else if (strcmp(key, "channels") == 0) {
        w->has_channels = 1;
        walk_list(ld, value, sub, "channel templates", rule_channel, rc);
    } else if (strcmp(key, "notification") == 0) {
        w->has_fields = 1;
        rc->fields_mark = mark_of(value);
        walk_list(ld, value, sub, "fields", rule_field, rc);
    } else if (strcmp(key, "message") == 0) {
        rc->message = get_string(ld, value, sub);
        rc->message_mark = mark_of(value);
    } else if (strcmp(key, "on_error") == 0) {
        int i = get_choice(ld, value, sub, on_error_names, K2R_ON_ERROR_COUNT, NULL);
        rc->on_error_mark = mark_of(value);
        if (i >= 0)
            rc->on_error = (k2r_on_error_t)i;
    } else if (strcmp(key, "unsafe") == 0) {
        int i = get_choice(ld, value, sub, k2r_unsafe_names, 2, NULL);
        if (i >= 0)
            rc->escape = i;
    } else if (strcmp(key, "continue") == 0) {
        get_bool(ld, value, sub, &rc->cont);
    } else if (strcmp(key, "max_age") == 0) {
        get_duration(ld, value, sub, 0, INT64_C(30) * 24 * 3600000, &rc->max_age_ms);
    } else if (strcmp(key, "history") == 0) {
        int has_maxlen = 0;

        walk_mapping(ld, value, sub, history_pair, rc);
        for (yaml_node_pair_t *p =
                 value->type == YAML_MAPPING_NODE ? value->data.mapping.pairs.start : NULL;
             p && p < value->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
            has_maxlen |= k && k->type == YAML_SCALAR_NODE &&
                          strcmp((const char *)k->data.scalar.value, "maxlen") == 0;
        }
        if (!has_maxlen && value->type == YAML_MAPPING_NODE)
            lerr(ld, value, "%s: maxlen is required (how many entries the stream keeps)", sub);
    } else {
        unknown_key(ld, knode, path, key, k2r_rule_keys,
                    sizeof(k2r_rule_keys) / sizeof(k2r_rule_keys[0]) - 1);
    }
}

/* Fills what a rule may leave out with the seeds' defaults. */
static int rule_defaults(k2r_rule_conf_t *rc) {
    static const char *const default_fields[] = {"id", "type", "source_id"};

    if (!rc->nchannels) {
        char **slot = grow(&rc->channels, &rc->nchannels, sizeof(char *));
        size_t n = 0;
        k2r_mark_t *m = slot ? grow(&rc->channel_marks, &n, sizeof(k2r_mark_t)) : NULL;
        if (!slot || !m || !(*slot = strdup("events:{type}:{id}")))
            return -1;
        *m = rc->mark;
    }
    if (!rc->nfields && !rc->message) {
        for (size_t i = 0; i < 3; i++) {
            k2r_field_conf_t *f = grow(&rc->fields, &rc->nfields, sizeof(*rc->fields));
            if (!f)
                return -1;
            f->name = strdup(default_fields[i]);
            f->src.kind = K2R_SOURCE_PATH;
            f->src.arg = strdup(default_fields[i]);
            f->src.mark = f->mark = rc->mark;
            if (!f->name || !f->src.arg)
                return -1;
        }
        rc->fields_mark = rc->mark;
    }
    return 0;
}

static void rules_section(loader_t *ld, yaml_node_t *value, const char *path) {
    k2r_config_t *cfg = ld->cfg;
    size_t n;

    cfg->rules_mark = mark_of(value);
    if (value->type != YAML_SEQUENCE_NODE ||
        value->data.sequence.items.top == value->data.sequence.items.start) {
        lerr(ld, value, "%s: expected a non-empty list of rules", path);
        return;
    }
    n = (size_t)(value->data.sequence.items.top - value->data.sequence.items.start);
    cfg->rules = calloc(n, sizeof(*cfg->rules));
    if (!cfg->rules)
        return;
    for (yaml_node_item_t *it = value->data.sequence.items.start;
         it < value->data.sequence.items.top; it++) {
        yaml_node_t *node = yaml_document_get_node(ld->doc, *it);
        k2r_rule_conf_t *rc = &cfg->rules[cfg->nrules++];
        rule_walk_t w;
        char rpath[64], sub[96];

        memset(&w, 0, sizeof(w));
        w.rc = rc;
        snprintf(rpath, sizeof(rpath), "%s[%zu]", path,
                 (size_t)(it - value->data.sequence.items.start));
        rc->mark = mark_of(node);
        rc->max_age_ms = -1; /* limits.max_age, unless the rule says */
        if (node->type != YAML_MAPPING_NODE) {
            lerr(ld, node, "%s: expected a mapping, found %s", rpath, node_kind(node));
            continue;
        }
        walk_mapping(ld, node, rpath, rule_pair, &w);
        /* Variables in a fixed order: type, id, then vars: as written. */
        if (w.type_node) {
            snprintf(sub, sizeof(sub), "%s.type", rpath);
            rule_var(ld, rc, "type", w.type_node, w.type_node, sub);
        }
        if (w.id_node) {
            snprintf(sub, sizeof(sub), "%s.id", rpath);
            rule_var(ld, rc, "id", w.id_node, w.id_node, sub);
        }
        if (w.vars_node) {
            snprintf(sub, sizeof(sub), "%s.vars", rpath);
            walk_mapping(ld, w.vars_node, sub, vars_pair, rc);
        }
        if (w.when_node) {
            snprintf(sub, sizeof(sub), "%s.when", rpath);
            walk_mapping(ld, w.when_node, sub, when_pair, rc);
        }
        if (!rc->name)
            lerr(ld, node, "%s: missing required key \"name\"", rpath);
        if (!rc->topic)
            lerr(ld, node, "%s: missing required key \"topic\"", rpath);
        if (w.has_channel && w.has_channels)
            lerr(ld, node, "%s: give channel or channels, not both", rpath);
        if (w.has_fields && rc->message)
            lerr(ld, node, "%s: give notification or message, not both", rpath);
        if (rc->name && strlen(rc->name) > K2R_RULE_NAME_MAX)
            lerr(ld, node, "%s.name: longer than %d bytes", rpath, K2R_RULE_NAME_MAX);
        if (rc->name) {
            for (size_t j = 0; j + 1 < cfg->nrules; j++) {
                if (cfg->rules[j].name && strcmp(cfg->rules[j].name, rc->name) == 0) {
                    lerr(ld, node, "%s.name: duplicate rule name \"%s\" (first at line %d)", rpath,
                         rc->name, cfg->rules[j].mark.line);
                    break; /* once, against the first: not once per earlier namesake */
                }
            }
        }
        if (rule_defaults(rc) != 0)
            lerr(ld, node, "%s: out of memory", rpath);
    }
}

/* --------------------------------------------------------------- top */

/* The sections, in the table's order: "kafka", "redis", "rules", ... */
static size_t sections(const char **names, size_t *lens, size_t max) {
    size_t n = 0;

    for (size_t i = 0; i < NSETTINGS; i++) {
        size_t len = section_len(&settings[i]), j;

        for (j = 0; j < n; j++)
            if (lens[j] == len && strncmp(names[j], settings[i].name, len) == 0)
                break;
        if (j == n && n < max) {
            names[n] = settings[i].name;
            lens[n++] = len;
        }
    }
    return n;
}

static void top_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                     const char *path, void *ctx) {
    const char *names[MAX_SECTIONS] = {NULL}, *keys[MAX_SECTIONS];
    char bufs[MAX_SECTIONS][32], hint[96];
    size_t lens[MAX_SECTIONS] = {0}, n = sections(names, lens, MAX_SECTIONS);

    (void)path;
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "%.*s", (int)lens[i], names[i]);
        keys[i] = bufs[i];
        if (strcmp(key, keys[i]) != 0)
            continue;
        ld->section_node[i] = value;
        if (strcmp(key, "rules") == 0)
            rules_section(ld, value, "rules");
        else
            walk_mapping(ld, value, keys[i], section_pair, NULL);
        return;
    }
    suggest(key, keys, n, hint, sizeof(hint));
    lerr(ld, knode, "unknown top-level key \"%s\"%s", key, hint);
}

/* The defaults of every number setting, from the table's text; string
 * defaults are applied after the file and the environment (string_defaults). */
static void set_defaults(k2r_config_t *cfg) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        const k2r_setting_t *s = &settings[i];
        int64_t v = 0;
        int ok = 1;

        if (!s->dflt)
            continue;
        switch (s->type) {
        case K2R_SETTING_INT:
            v = strtoll(s->dflt, NULL, 10);
            break;
        case K2R_SETTING_DURATION:
            ok = k2r_parse_duration(s->dflt, &v) == 0;
            break;
        case K2R_SETTING_BOOL:
            v = strcmp(s->dflt, "true") == 0;
            break;
        case K2R_SETTING_CHOICE:
            for (v = 0; s->choices[v] && strcmp(s->choices[v], s->dflt) != 0; v++)
                ;
            ok = s->choices[v] != NULL;
            break;
        default:
            continue;
        }
        assert(ok && v >= s->min && (v <= s->max || s->max == 0));
        (void)ok;
        set_number(s, cfg, v);
    }
}

/* The defaults of string settings that neither the file nor the environment set. */
static void string_defaults(k2r_config_t *cfg, k2r_errors_t *errs, const char *name) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        const k2r_setting_t *s = &settings[i];
        char errstr[256];

        if (!s->dflt || (s->type != K2R_SETTING_STRING && s->type != K2R_SETTING_SECRET) ||
            *AT(cfg, s, char *))
            continue;
        *AT(cfg, s, char *) = strdup(s->dflt);
        if (!*AT(cfg, s, char *) || (s->check && s->check(cfg, s->dflt, errstr, sizeof(errstr))))
            k2r_errors_add(errs, name, (k2r_mark_t){0, 0}, "%s: cannot use the default", s->name);
    }
}

/*
 * Reads a secret from a file, without its trailing newline. Only a regular
 * file (a Kubernetes Secret's mounted file is a symlink to one) of at most
 * K2R_SECRET_MAX bytes, read whole: a FIFO, a device (/dev/zero), a
 * directory, a larger file or one with a NUL byte is an error naming the
 * file, never a cut or empty secret. Opened non-blocking, so a FIFO cannot
 * hang the loader.
 */
static char *read_secret_file(const char *path, char *errstr, size_t errstr_size) {
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(errstr, errstr_size, "%s is not a regular file", path);
        goto fail;
    }
    if (st.st_size > K2R_SECRET_MAX) {
        snprintf(errstr, errstr_size, "%s is larger than %d bytes", path, K2R_SECRET_MAX);
        goto fail;
    }
    buf = malloc(K2R_SECRET_MAX + 2);
    if (!buf) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    for (;;) { /* to the end, whatever the size said (the file may grow) */
        ssize_t got = read(fd, buf + n, K2R_SECRET_MAX + 1 - n);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > K2R_SECRET_MAX) {
            snprintf(errstr, errstr_size, "%s is larger than %d bytes", path, K2R_SECRET_MAX);
            goto fail;
        }
    }
    close(fd);
    fd = -1;
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        snprintf(errstr, errstr_size, "%s contains a NUL byte", path);
        goto fail;
    }
    /* One line ending is the file's (an editor's, `echo`'s), not the
     * secret's; a second one is kept, as the file says. */
    if (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
        if (n > 0 && buf[n - 1] == '\r')
            buf[--n] = '\0';
    }
    if (n == 0) {
        snprintf(errstr, errstr_size, "%s is empty", path);
        goto fail;
    }
    return buf;

fail:
    if (fd >= 0)
        close(fd);
    if (buf)
        explicit_bzero(buf, K2R_SECRET_MAX + 2);
    free(buf);
    return NULL;
}

/* ------------------------------------------------- config providers */

static const char *const provider_names[] = {"env", "file"};

/* Appends "${" the reference "}" to the ", "-separated list in refs. */
static void note_ref(char *refs, size_t size, const char *ref, size_t len) {
    size_t n;

    if (!refs || !size)
        return;
    n = strlen(refs);
    if (n < size)
        snprintf(refs + n, size - n, "%s${%.*s}", n ? ", " : "", (int)len, ref);
}

/*
 * The value of one reference, `ref` being the `len` bytes between "${" and
 * "}" ("env:NAME", "file:/path"): a new string, or NULL with errstr. A file's
 * bytes are wiped before they are freed on every path; so are a value's.
 */
static char *resolve_ref(const char *ref, size_t len, k2r_getenv_fn env, char *errstr,
                         size_t errstr_size) {
    const char *colon = memchr(ref, ':', len);
    char arg[PATH_MAX], why[512], hint[96];
    size_t nlen, alen;
    const char *v;

    if (!colon) {
        snprintf(errstr, errstr_size,
                 "\"${%.*s}\" is not a reference: write ${env:NAME} or ${file:/path} (or $${ for "
                 "a literal ${)",
                 (int)len, ref);
        return NULL;
    }
    nlen = (size_t)(colon - ref);
    alen = len - nlen - 1;
    if (alen >= sizeof(arg)) {
        snprintf(errstr, errstr_size, "${%.*s:...}: longer than %zu bytes", (int)nlen, ref,
                 sizeof(arg) - 1);
        return NULL;
    }
    memcpy(arg, colon + 1, alen);
    arg[alen] = '\0';
    if (nlen == 3 && strncmp(ref, "env", 3) == 0) {
        if (!alen) {
            snprintf(errstr, errstr_size, "${env:}: names no environment variable");
            return NULL;
        }
        v = env ? env(arg) : NULL;
        if (!v || !*v) {
            snprintf(errstr, errstr_size, "${env:%s}: the environment variable %s is %s", arg, arg,
                     v ? "empty" : "not set");
            return NULL;
        }
        return strdup(v);
    }
    if (nlen == 4 && strncmp(ref, "file", 4) == 0) {
        char *s;

        if (arg[0] != '/') {
            /* Relative to what? The daemon's working directory is nobody's
             * choice: a path must say where the file is. */
            snprintf(errstr, errstr_size, "${file:%s}: the path must be absolute", arg);
            return NULL;
        }
        s = read_secret_file(arg, why, sizeof(why));
        if (!s)
            snprintf(errstr, errstr_size, "${file:%s}: %s", arg, why);
        return s;
    }
    {
        char name[64];

        snprintf(name, sizeof(name), "%.*s", (int)nlen, ref);
        suggest(name, provider_names, sizeof(provider_names) / sizeof(provider_names[0]), hint,
                sizeof(hint));
        snprintf(errstr, errstr_size,
                 "${%s:...}: unknown config provider \"%s\"%s (known: env, file)", name, name,
                 hint);
    }
    return NULL;
}

/* Frees a buffer that may hold a secret, wiping it first. */
static void wipe(char *s, size_t n) {
    if (s) {
        explicit_bzero(s, n);
        free(s);
    }
}

char *k2r_config_resolve(const char *text, k2r_getenv_fn env, char *refs, size_t refs_size,
                         char *errstr, size_t errstr_size) {
    k2r_buf_t b = {NULL, 0, 0};
    const char *p = text, *d;

    if (refs && refs_size)
        refs[0] = '\0';
    while ((d = strchr(p, '$')) != NULL) {
        const char *end;
        char *v;
        int rc;

        if (k2r_buf_append(&b, p, (size_t)(d - p)) != 0)
            goto nomem;
        if (strncmp(d, "$${", 3) == 0) { /* the escape: a literal ${ */
            rc = k2r_buf_append(&b, "${", 2);
            p = d + 3;
        } else if (d[1] != '{') { /* a lone $ is itself */
            rc = k2r_buf_append(&b, "$", 1);
            p = d + 1;
        } else if ((end = strchr(d + 2, '}')) == NULL) {
            snprintf(errstr, errstr_size,
                     "\"%.40s\": a ${ without its closing } (write $${ for a literal ${)", d);
            goto fail;
        } else if ((v = resolve_ref(d + 2, (size_t)(end - d - 2), env, errstr, errstr_size)) ==
                   NULL) {
            goto fail;
        } else {
            size_t vlen = strlen(v);

            rc = k2r_buf_append(&b, v, vlen);
            wipe(v, vlen);
            note_ref(refs, refs_size, d + 2, (size_t)(end - d - 2));
            p = end + 1;
        }
        if (rc != 0)
            goto nomem;
        if (b.len > K2R_SECRET_MAX) {
            snprintf(errstr, errstr_size, "longer than %d bytes once its references are resolved",
                     K2R_SECRET_MAX);
            goto fail;
        }
    }
    if (k2r_buf_append(&b, p, strlen(p) + 1) != 0) /* the rest, and the NUL */
        goto nomem;
    return b.data;

nomem:
    snprintf(errstr, errstr_size, "out of memory");
fail:
    wipe(b.data, b.cap);
    return NULL;
}

int k2r_property_is_credential(const char *name) {
    static const char *const exact[] = {"sasl.jaas.config", "ssl.key.pem", "ssl_key"};

    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcmp(name, exact[i]) == 0)
            return 1;
    return strstr(name, "password") != NULL || strstr(name, "secret") != NULL;
}

int k2r_config_provided(const k2r_config_t *cfg, const char *name) {
    const k2r_setting_t *s = k2r_setting_find(name);

    return s && (cfg->provided & UINT64_C(1) << (s - settings)) != 0;
}

const char *k2r_config_shown(const k2r_config_t *cfg, const char *name, const char *value) {
    return k2r_config_provided(cfg, name) ? "***" : value;
}

/* The path of `key` under `path`: "kafka.group_id", or with a dotted key
 * (a librdkafka property) kafka.properties["sasl.password"]. */
static void key_path(char *out, size_t size, const char *path, const char *key) {
    if (strchr(key, '.'))
        snprintf(out, size, "%s[\"%s\"]", path, key);
    else
        snprintf(out, size, "%s%s%s", path, *path ? "." : "", key);
}

/* Keeps where a provider's value went and which references made it. */
static void note_resolved(loader_t *ld, const yaml_node_t *node, const char *path,
                          const char *refs) {
    k2r_config_t *cfg = ld->cfg;
    k2r_resolved_t *r = grow(&cfg->resolved, &cfg->nresolved, sizeof(*r));

    if (!r || !(r->path = strdup(path)) || !(r->refs = strdup(refs))) {
        if (r) {
            free(r->path);
            cfg->nresolved--;
        }
        k2r_errors_add(ld->errs, ld->file, mark_of(node), "out of memory");
        return;
    }
    r->mark = mark_of(node);
}

/* What walk_scalars does with one scalar (its state byte in ld->node_state). */
typedef void (*scalar_fn)(loader_t *ld, yaml_node_t *node, unsigned char *state, const char *path,
                          void *ctx);

/*
 * Calls `fn` on every scalar value under node `id` (keys are names, never
 * visited), each node once for this `mark` (an alias reaches a node again),
 * `path` naming it in errors.
 */
static void walk_scalars(loader_t *ld, int id, const char *path, unsigned char mark, scalar_fn fn,
                         void *ctx) {
    yaml_node_t *node = yaml_document_get_node(ld->doc, id);
    unsigned char *state;
    char sub[320];

    if (!node)
        return;
    state = &ld->node_state[node - ld->doc->nodes.start];
    if (*state & mark)
        return;
    *state |= mark;
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++) {
            snprintf(sub, sizeof(sub), "%s[%zu]", path,
                     (size_t)(it - node->data.sequence.items.start));
            walk_scalars(ld, *it, sub, mark, fn, ctx);
        }
    } else if (node->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);

            key_path(sub, sizeof(sub), path,
                     k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?");
            walk_scalars(ld, p->value, sub, mark, fn, ctx);
        }
    } else if (node->type == YAML_SCALAR_NODE) {
        fn(ld, node, state, path, ctx);
    }
}

/*
 * Resolves the references in one settings value, replacing it in the
 * document, so that the section readers see it as if it had been written so.
 */
static void resolve_scalar(loader_t *ld, yaml_node_t *node, unsigned char *state, const char *path,
                           void *ctx) {
    k2r_getenv_fn env = *(const k2r_getenv_fn *)ctx;
    char refs[512], errstr[768], *v;

    if (!memchr(node->data.scalar.value, '$', node->data.scalar.length) ||
        memchr(node->data.scalar.value, '\0', node->data.scalar.length))
        return; /* nothing to resolve; or a NUL, which the reader refuses */
    v = k2r_config_resolve((const char *)node->data.scalar.value, env, refs, sizeof(refs), errstr,
                           sizeof(errstr));
    if (!v) {
        lerr(ld, node, "%s: %s", path, errstr);
        *state |= NODE_BROKEN;
        return;
    }
    if (refs[0]) {
        *state |= NODE_PROVIDED;
        note_resolved(ld, node, path, refs);
    }
    /* libyaml allocates with malloc and frees with free (yaml_free). */
    free(node->data.scalar.value);
    node->data.scalar.value = (yaml_char_t *)v;
    node->data.scalar.length = strlen(v);
}

/*
 * Rules are not resolved (see the top of this file): a reference written in
 * one, or a value the settings' pass resolved that an alias brings into one,
 * is an error rather than a literal "${env:...}" in a channel.
 */
static void refuse_scalar(loader_t *ld, yaml_node_t *node, unsigned char *state, const char *path,
                          void *ctx) {
    const char *v = (const char *)node->data.scalar.value;

    (void)ctx;
    if ((*state & NODE_PROVIDED) || strstr(v, "${env:") || strstr(v, "${file:")) {
        lerr(ld, node,
             "%s: ${env:...} and ${file:...} are resolved in the settings, not in rules (a "
             "rule's values go into channels and notifications)",
             path);
        *state |= NODE_BROKEN;
    }
}

/* The providers' pass over the document: every settings section, then the
 * check of rules:. */
static void resolve_document(loader_t *ld, k2r_getenv_fn env, yaml_node_t *root) {
    yaml_node_pair_t *p;

    for (int pass = 0; pass < 2; pass++) {
        for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
            const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
            int rules = strcmp(key, "rules") == 0;

            if (pass == 0 && !rules)
                walk_scalars(ld, p->value, key, NODE_SEEN, resolve_scalar, &env);
            else if (pass == 1 && rules)
                walk_scalars(ld, p->value, key, NODE_RULES, refuse_scalar, NULL);
        }
    }
}

/* Sets a librdkafka property from the environment, replacing one from the file. */
static void set_property(loader_t *ld, const char *name, const char *value) {
    k2r_kafka_conf_t *kc = &ld->cfg->kafka;
    k2r_property_t *prop = NULL;
    char *v = strdup(value);

    for (size_t i = 0; i < kc->nproperties && !prop; i++)
        if (strcmp(kc->properties[i].name, name) == 0)
            prop = &kc->properties[i];
    if (!prop && v && (prop = grow(&kc->properties, &kc->nproperties, sizeof(*prop))) != NULL &&
        !(prop->name = strdup(name)))
        kc->nproperties--;
    if (!prop || !prop->name || !v) {
        free(v);
        k2r_errors_add(ld->errs, NULL, (k2r_mark_t){0, 0}, "out of memory");
        return;
    }
    free(prop->value);
    prop->value = v;
    prop->secret = k2r_property_is_credential(name);
}

/* Applies the environment overrides the loader owns (the table's env rows
 * without K2R_SETTING_ENV_AT_RUN); a *_FILE variable wins over its plain one. */
static void apply_env(loader_t *ld, k2r_getenv_fn env) {
    k2r_config_t *cfg = ld->cfg;
    k2r_mark_t none = {0, 0};

    if (!env)
        return;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const k2r_setting_t *s = &settings[i];

        if (!s->env || (s->flags & K2R_SETTING_ENV_AT_RUN))
            continue;
        for (const k2r_setting_env_t *e = s->env; e->name; e++) {
            const char *v, *from = e->name;
            char errstr[256], *value = NULL;

            if (e->file && (v = env(e->file)) && *v) {
                from = e->file;
                value = read_secret_file(v, errstr, sizeof(errstr));
                if (!value) {
                    k2r_errors_add(ld->errs, NULL, none, "%s: %s", from, errstr);
                    continue;
                }
            } else if ((v = env(e->name)) && *v) {
                value = strdup(v);
                if (!value) {
                    k2r_errors_add(ld->errs, NULL, none, "out of memory");
                    continue;
                }
            } else {
                continue;
            }
            /* What the environment sets did not come from a provider. */
            cfg->provided &= ~(UINT64_C(1) << i);
            if (s->type == K2R_SETTING_MAP) {
                set_property(ld, e->property, value);
                free(value);
            } else if (s->check && s->check(cfg, value, errstr, sizeof(errstr)) != 0) {
                k2r_errors_add(ld->errs, NULL, none, "%s: %s", from, errstr);
                free(value);
            } else {
                assert(s->type == K2R_SETTING_STRING || s->type == K2R_SETTING_SECRET);
                free(*AT(cfg, s, char *));
                *AT(cfg, s, char *) = value;
            }
        }
    }
}

/* Whether a setting holds no value (a required one that is missing). */
static int unset(const k2r_setting_t *s, const k2r_config_t *cfg) {
    if (s->type == K2R_SETTING_STRING || s->type == K2R_SETTING_SECRET)
        return !*CAT(cfg, s, char *);
    if (s->type == K2R_SETTING_LIST || s->type == K2R_SETTING_MAP || s->type == K2R_SETTING_RULES)
        return !*CCOUNT_AT(cfg, s);
    return 0;
}

/*
 * redis.tls settings with a redis:// URL are an error rather than ignored: a
 * file that names a CA or a client certificate means to use TLS, and
 * connecting in plaintext instead would send the password and every
 * notification in the clear without anyone having asked for that. Also:
 * cert_file and key_file go together.
 */
static void check_tls(loader_t *ld, yaml_node_t *redis_node) {
    k2r_redis_section_t *rs = &ld->cfg->redis;
    k2r_mark_t mark = rs->tls_mark.line ? rs->tls_mark : mark_of(redis_node);

    if (!rs->parsed.host) /* redis.url had its error already */
        return;
    if (!rs->parsed.tls && !rs->sentinel_tls &&
        (rs->tls_ca_file || rs->tls_cert_file || rs->tls_key_file || rs->tls_server_name ||
         rs->tls_insecure_skip_verify)) {
        k2r_errors_add(ld->errs, ld->file, mark,
                       "redis.tls: set, but redis.url is redis:// (plaintext) and "
                       "redis.sentinel.tls is false; use rediss:// for TLS, or remove redis.tls");
        return;
    }
    if ((rs->tls_cert_file != NULL) != (rs->tls_key_file != NULL))
        k2r_errors_add(ld->errs, ld->file, mark, "redis.tls: %s is set without %s",
                       rs->tls_cert_file ? "cert_file" : "key_file",
                       rs->tls_cert_file ? "key_file" : "cert_file");
}

/* Each item of a redis.sentinel.addresses or redis.cluster.addresses list is
 * host:port (or [v6]:port) with a host. */
static void check_addresses(loader_t *ld, k2r_mark_t mark, const char *name, char *const *addrs,
                            size_t n) {
    char host[256];
    int port;

    for (size_t i = 0; i < n; i++)
        if (k2r_split_listen(addrs[i], host, sizeof(host), &port) != 0 || !host[0])
            k2r_errors_add(ld->errs, ld->file, mark,
                           "%s[%zu]: expected host:port or [ipv6]:port with a port 1-65535; "
                           "found \"%s\"",
                           name, i, k2r_config_shown(ld->cfg, name, addrs[i]));
}

/*
 * The topology: one Redis (redis.url), Sentinel (redis.sentinel: the master's
 * name and the sentinels, both needed) or Cluster (redis.cluster), never two.
 * With Sentinel or Cluster the URL's scheme, user, password and db still
 * apply to the data nodes; its host and port are not used. A cluster has db 0
 * only.
 */
static void check_topology(loader_t *ld, yaml_node_t *redis_node) {
    k2r_redis_section_t *rs = &ld->cfg->redis;
    int sentinel = rs->sentinel_master || rs->nsentinel_addrs || rs->sentinel_username ||
                   rs->sentinel_password || rs->sentinel_tls;

    check_addresses(ld, rs->sentinel_mark, "redis.sentinel.addresses", rs->sentinel_addrs,
                    rs->nsentinel_addrs);
    check_addresses(ld, rs->cluster_mark, "redis.cluster.addresses", rs->cluster_addrs,
                    rs->ncluster_addrs);
    if (sentinel && !rs->sentinel_master)
        lerr(ld, redis_node, "redis.sentinel.master: required with redis.sentinel");
    if (sentinel && !rs->nsentinel_addrs)
        lerr(ld, redis_node, "redis.sentinel.addresses: required with redis.sentinel");
    if (sentinel && rs->ncluster_addrs)
        lerr(ld, redis_node,
             "redis.sentinel and redis.cluster: choose one (a Redis Cluster "
             "fails over by itself, without sentinels)");
    if (rs->ncluster_addrs && rs->parsed.host && rs->parsed.db != 0)
        lerr(ld, redis_node,
             "redis.url: database %d with redis.cluster: a cluster has database 0 "
             "only",
             rs->parsed.db);
}

static void check_required(loader_t *ld, yaml_node_t *root) {
    const char *names[MAX_SECTIONS] = {NULL};
    size_t lens[MAX_SECTIONS] = {0}, n = sections(names, lens, MAX_SECTIONS);
    k2r_config_t *cfg = ld->cfg;
    yaml_node_t *redis_node = NULL;

    for (size_t j = 0; j < n; j++) {
        int required = 0;

        for (size_t i = 0; i < NSETTINGS; i++)
            if (section_len(&settings[i]) == lens[j] &&
                strncmp(settings[i].name, names[j], lens[j]) == 0)
                required |= (settings[i].flags & K2R_SETTING_REQUIRED) != 0;
        if (strncmp(names[j], "redis", lens[j]) == 0 && lens[j] == 5)
            redis_node = ld->section_node[j];
        if (!required)
            continue;
        if (!ld->section_node[j]) {
            lerr(ld, root, "missing required section \"%.*s\"", (int)lens[j], names[j]);
            continue;
        }
        for (size_t i = 0; i < NSETTINGS; i++) {
            const k2r_setting_t *s = &settings[i];

            /* A key that was written but invalid already has its error. */
            if (section_len(s) != lens[j] || strncmp(s->name, names[j], lens[j]) != 0 ||
                !s->name[lens[j]] || !(s->flags & K2R_SETTING_REQUIRED) ||
                (ld->present & UINT64_C(1) << i) || !unset(s, cfg))
                continue;
            if (s->env)
                lerr(ld, ld->section_node[j], "%s: required (or set %s)", s->name, s->env->name);
            else
                lerr(ld, ld->section_node[j], "%s: required", s->name);
        }
    }
    for (size_t i = 0; i < cfg->nrules; i++)
        if (cfg->rules[i].on_error == K2R_ON_ERROR_DEAD_LETTER && !cfg->kafka.dead_letter_topic)
            k2r_errors_add(ld->errs, ld->file, cfg->rules[i].on_error_mark,
                           "rules[%zu].on_error: dead-letter needs kafka.dead_letter_topic", i);
    if (cfg->kafka.group_instance_id) {
        for (size_t i = 0; i < cfg->kafka.nproperties; i++)
            if (strcmp(cfg->kafka.properties[i].name, "group.instance.id") == 0)
                k2r_errors_add(ld->errs, ld->file, cfg->kafka.properties[i].mark,
                               "kafka.properties[\"group.instance.id\"]: give it once, as "
                               "kafka.group_instance_id");
    }
    check_tls(ld, redis_node ? redis_node : root);
    check_topology(ld, redis_node ? redis_node : root);
    if (cfg->redis.backoff_initial_ms > cfg->redis.backoff_max_ms)
        lerr(ld, redis_node ? redis_node : root,
             "redis.reconnect_backoff_ms: %d is above redis.reconnect_backoff_max_ms (%d)",
             cfg->redis.backoff_initial_ms, cfg->redis.backoff_max_ms);
}

/* Parses a document; `lenient` keeps the config despite errors (see config.h). */
/* The most nodes a config may have with its aliases expanded: a big config
 * has a few thousand; a nest of aliases ("billion laughs") would have more
 * than the loader can walk. */
#define EXPANDED_NODES_MAX 200000

/*
 * The expanded size of node `id` (itself and everything under it, aliases
 * counted each time they are used), memoised in size[] (0: not known yet;
 * SIZE_MAX: being counted, so an alias inside its own anchor is a cycle).
 * Saturates at EXPANDED_NODES_MAX + 1.
 */
static size_t expanded(yaml_document_t *doc, int id, size_t *size) {
    yaml_node_t *node = yaml_document_get_node(doc, id);
    size_t total = 1, i = (size_t)(id - 1);

    if (!node)
        return 1;
    if (size[i] == SIZE_MAX)
        return EXPANDED_NODES_MAX + 1; /* a cycle */
    if (size[i])
        return size[i];
    size[i] = SIZE_MAX;
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top && total <= EXPANDED_NODES_MAX; it++)
            total += expanded(doc, *it, size);
    } else if (node->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
             p < node->data.mapping.pairs.top && total <= EXPANDED_NODES_MAX; p++)
            total += expanded(doc, p->key, size) + expanded(doc, p->value, size);
    }
    if (total > EXPANDED_NODES_MAX)
        total = EXPANDED_NODES_MAX + 1;
    size[i] = total;
    return total;
}

/*
 * What the loader refuses before reading anything: a tag other than the
 * plain ones (!!binary, !!int, a local !tag: a value the bridge would read
 * as its text), and a document whose aliases expand past
 * EXPANDED_NODES_MAX nodes. Returns 0, or -1 after adding the errors.
 */
static int check_document(loader_t *ld, yaml_document_t *doc) {
    size_t n = (size_t)(doc->nodes.top - doc->nodes.start), *size;
    int bad = 0;

    for (yaml_node_t *node = doc->nodes.start; node < doc->nodes.top && bad < 5; node++) {
        const char *tag = (const char *)node->tag;

        if (tag && strcmp(tag, YAML_DEFAULT_SCALAR_TAG) != 0 &&
            strcmp(tag, YAML_DEFAULT_SEQUENCE_TAG) != 0 &&
            strcmp(tag, YAML_DEFAULT_MAPPING_TAG) != 0) {
            int core = strncmp(tag, "tag:yaml.org,2002:", 18) == 0;

            lerr(ld, node, "YAML tag %s%s: not supported (write the value plainly)",
                 core ? "!!" : "", core ? tag + 18 : tag);
            bad++;
        }
    }
    if (bad)
        return -1;
    size = calloc(n ? n : 1, sizeof(*size));
    if (!size) {
        k2r_errors_add(ld->errs, ld->file, (k2r_mark_t){0, 0}, "out of memory");
        return -1;
    }
    if (n && expanded(doc, 1, size) > EXPANDED_NODES_MAX) {
        k2r_errors_add(ld->errs, ld->file, (k2r_mark_t){0, 0},
                       "YAML: more than %d nodes with the aliases expanded (an alias nest, or an "
                       "alias inside its own anchor)",
                       EXPANDED_NODES_MAX);
        free(size);
        return -1;
    }
    free(size);
    return 0;
}

static k2r_config_t *parse(const char *name, const char *buf, size_t len, k2r_getenv_fn env,
                           k2r_errors_t *errs, int lenient) {
    int readable = 0;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    k2r_config_t *cfg;
    loader_t ld;

    cfg = calloc(1, sizeof(*cfg));
    if (!cfg || !(cfg->path = strdup(name))) {
        free(cfg);
        k2r_errors_add(errs, name, (k2r_mark_t){0, 0}, "out of memory");
        return NULL;
    }
    set_defaults(cfg);
    memset(&ld, 0, sizeof(ld));
    ld.file = name;
    ld.doc = &doc;
    ld.errs = errs;
    ld.cfg = cfg;
    ld.nerrs_at_start = errs->count;

    if (!yaml_parser_initialize(&parser)) {
        k2r_errors_add(errs, name, (k2r_mark_t){0, 0}, "cannot initialise the YAML parser");
        k2r_config_destroy(cfg);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        k2r_mark_t m = {(int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1};
        k2r_errors_add(errs, name, m, "YAML: %s%s%s", parser.problem ? parser.problem : "error",
                       parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        k2r_config_destroy(cfg);
        return NULL;
    }
    {
        /* One document per file: a second one (after ---) would be ignored. */
        yaml_document_t next;

        if (yaml_parser_load(&parser, &next)) {
            yaml_node_t *next_root = yaml_document_get_root_node(&next);

            if (next_root)
                k2r_errors_add(errs, name,
                               (k2r_mark_t){(int)next_root->start_mark.line + 1,
                                            (int)next_root->start_mark.column + 1},
                               "a second YAML document: the config is one document");
            yaml_document_delete(&next);
        }
    }
    yaml_parser_delete(&parser);

    root = yaml_document_get_root_node(&doc);
    if (!root) {
        k2r_errors_add(errs, name, (k2r_mark_t){0, 0}, "the file is empty");
    } else if (check_document(&ld, &doc) != 0) {
        /* its errors are added */
    } else if (root->type != YAML_MAPPING_NODE) {
        lerr(&ld, root, "expected a mapping with kafka:, redis: and rules:, found %s",
             node_kind(root));
    } else {
        readable = 1;
        ld.node_state = calloc((size_t)(doc.nodes.top - doc.nodes.start) + 1, 1);
        if (!ld.node_state)
            k2r_errors_add(errs, name, (k2r_mark_t){0, 0}, "out of memory");
        else
            resolve_document(&ld, env, root);
        walk_mapping(&ld, root, "", top_pair, NULL);
        apply_env(&ld, env);
        check_required(&ld, root);
    }
    /* The config keeps its own copies: the document's are wiped. */
    for (yaml_node_t *node = doc.nodes.start; ld.node_state && node < doc.nodes.top; node++)
        if (ld.node_state[node - doc.nodes.start] & NODE_PROVIDED)
            explicit_bzero(node->data.scalar.value, node->data.scalar.length);
    yaml_document_delete(&doc);
    free(ld.node_state);

    string_defaults(cfg, errs, name);
    if (errs->count > ld.nerrs_at_start && !(lenient && readable)) {
        k2r_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

k2r_config_t *k2r_config_parse(const char *name, const char *buf, size_t len, k2r_getenv_fn env,
                               k2r_errors_t *errs) {
    return parse(name, buf, len, env, errs, 0);
}

k2r_config_t *k2r_config_parse_all(const char *name, const char *buf, size_t len, k2r_getenv_fn env,
                                   k2r_errors_t *errs) {
    return parse(name, buf, len, env, errs, 1);
}

/* The largest config file read: thousands of rules fit in a fraction. */
#define CONFIG_FILE_MAX 4194304 /* 4 MiB */

static k2r_config_t *load(const char *path, k2r_getenv_fn env, k2r_errors_t *errs, int lenient) {
    k2r_config_t *cfg;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    struct stat st;
    /* Non-blocking, so that a FIFO cannot hang a start or a reload. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f;

    if (fd < 0 || fstat(fd, &st) != 0) {
        k2r_errors_add(errs, path, (k2r_mark_t){0, 0}, "cannot open: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
        if (S_ISDIR(st.st_mode))
            k2r_errors_add(errs, path, (k2r_mark_t){0, 0}, "cannot read: %s", strerror(EISDIR));
        else if (!S_ISREG(st.st_mode))
            k2r_errors_add(errs, path, (k2r_mark_t){0, 0}, "not a regular file");
        else
            k2r_errors_add(errs, path, (k2r_mark_t){0, 0}, "larger than %d bytes", CONFIG_FILE_MAX);
        close(fd);
        return NULL;
    }
    f = fdopen(fd, "rb");
    if (!f) {
        k2r_errors_add(errs, path, (k2r_mark_t){0, 0}, "cannot open: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    do {
        if (len == cap) {
            char *nb;
            cap = cap ? cap * 2 : 16384;
            if (cap > (size_t)2 * CONFIG_FILE_MAX || !(nb = realloc(buf, cap))) {
                k2r_errors_add(errs, path, (k2r_mark_t){0, 0}, "too large or out of memory");
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    if (ferror(f)) {
        k2r_errors_add(errs, path, (k2r_mark_t){0, 0}, "cannot read: %s", strerror(errno));
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    cfg = parse(path, buf ? buf : "", len, env, errs, lenient);
    free(buf);
    return cfg;
}

k2r_config_t *k2r_config_load(const char *path, k2r_getenv_fn env, k2r_errors_t *errs) {
    return load(path, env, errs, 0);
}

k2r_config_t *k2r_config_load_all(const char *path, k2r_getenv_fn env, k2r_errors_t *errs) {
    return load(path, env, errs, 1);
}

void k2r_config_destroy(k2r_config_t *cfg) {
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->kafka.brokers);
    free(cfg->kafka.dead_letter_topic);
    free(cfg->kafka.group_id);
    free(cfg->kafka.group_instance_id);
    for (size_t i = 0; i < cfg->nresolved; i++) {
        free(cfg->resolved[i].path);
        free(cfg->resolved[i].refs);
    }
    free(cfg->resolved);
    for (size_t i = 0; i < cfg->kafka.ntopics; i++)
        free(cfg->kafka.topics[i]);
    free(cfg->kafka.topics);
    for (size_t i = 0; i < cfg->kafka.nproperties; i++) {
        free(cfg->kafka.properties[i].name);
        free(cfg->kafka.properties[i].value);
    }
    free(cfg->kafka.properties);
    free(cfg->redis.url);
    free(cfg->redis.username);
    free(cfg->redis.password);
    free(cfg->redis.tls_ca_file);
    free(cfg->redis.tls_cert_file);
    free(cfg->redis.tls_key_file);
    free(cfg->redis.tls_server_name);
    free(cfg->redis.sentinel_master);
    free(cfg->redis.sentinel_username);
    free(cfg->redis.sentinel_password);
    for (size_t i = 0; i < cfg->redis.nsentinel_addrs; i++)
        free(cfg->redis.sentinel_addrs[i]);
    free(cfg->redis.sentinel_addrs);
    for (size_t i = 0; i < cfg->redis.ncluster_addrs; i++)
        free(cfg->redis.cluster_addrs[i]);
    free(cfg->redis.cluster_addrs);
    free(cfg->http.listen);
    free(cfg->redis.history_prefix);
    free(cfg->dedupe.prefix);
    k2r_redis_url_free(&cfg->redis.parsed);
    for (size_t i = 0; i < cfg->nrules; i++) {
        k2r_rule_conf_t *rc = &cfg->rules[i];
        free(rc->name);
        free(rc->topic);
        for (size_t j = 0; j < rc->nvars; j++) {
            free(rc->vars[j].name);
            free_source(&rc->vars[j].src);
        }
        free(rc->vars);
        for (size_t j = 0; j < rc->nconds; j++) {
            free(rc->conds[j].var);
            for (size_t k = 0; k < rc->conds[j].nvalues; k++)
                free(rc->conds[j].values[k]);
            free(rc->conds[j].values);
        }
        free(rc->conds);
        for (size_t j = 0; j < rc->nchannels; j++)
            free(rc->channels[j]);
        free(rc->channels);
        free(rc->channel_marks);
        for (size_t j = 0; j < rc->nfields; j++) {
            free(rc->fields[j].name);
            free_source(&rc->fields[j].src);
        }
        free(rc->fields);
        free(rc->message);
    }
    free(cfg->rules);
    free(cfg);
}

/* ------------------------------------------------------ the reference */

/* Milliseconds in the largest unit that divides them: 0, 500ms, 30s, 10m, 720h. */
static void format_ms(char *out, size_t size, int64_t ms) {
    if (ms == 0)
        snprintf(out, size, "0");
    else if (ms % 3600000 == 0)
        snprintf(out, size, "%lldh", (long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(out, size, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, size, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, size, "%lldms", (long long)ms);
}

/* A row's type, with its range or its words. */
static void type_text(const k2r_setting_t *s, char *out, size_t size) {
    char lo[32], hi[32];
    size_t n;

    switch (s->type) {
    case K2R_SETTING_STRING:
        snprintf(out, size, "string");
        break;
    case K2R_SETTING_SECRET:
        snprintf(out, size, "secret string");
        break;
    case K2R_SETTING_INT:
        snprintf(out, size, "integer %lld..%lld", (long long)s->min, (long long)s->max);
        break;
    case K2R_SETTING_DURATION:
        format_ms(lo, sizeof(lo), s->min);
        format_ms(hi, sizeof(hi), s->max);
        snprintf(out, size, "duration %s..%s", lo, hi);
        break;
    case K2R_SETTING_BOOL:
        snprintf(out, size, "bool");
        break;
    case K2R_SETTING_CHOICE:
        n = (size_t)snprintf(out, size, "one of");
        for (size_t i = 0; s->choices[i] && n < size; i++)
            n += (size_t)snprintf(out + n, size - n, "%s %s", i ? "," : "", s->choices[i]);
        break;
    case K2R_SETTING_LIST:
        snprintf(out, size, "list of strings");
        break;
    case K2R_SETTING_MAP:
        snprintf(out, size, "map of librdkafka properties");
        break;
    case K2R_SETTING_RULES:
        snprintf(out, size, "list of rules");
        break;
    }
}

/* A row's environment variables, `quote` around each name: "A, A_FILE (prop)". */
static void env_text(const k2r_setting_t *s, const char *quote, char *out, size_t size) {
    size_t n = 0;

    out[0] = '\0';
    for (const k2r_setting_env_t *e = s->env; e && e->name && n < size; e++) {
        n += (size_t)snprintf(out + n, size - n, "%s%s%s%s", n ? ", " : "", quote, e->name, quote);
        if (e->file && n < size)
            n += (size_t)snprintf(out + n, size - n, ", %s%s%s", quote, e->file, quote);
        if (e->property && n < size)
            n += (size_t)snprintf(out + n, size - n, " (%s)", e->property);
    }
}

/* The columns of one row; text output leaves quoting and empties to the caller. */
typedef struct row_text_s {
    char name[64], type[96], dflt[64], env[256];
    const char *reload;
} row_text_t;

static void row_text(const k2r_setting_t *s, int markdown, row_text_t *r) {
    const char *q = markdown ? "`" : "";

    snprintf(r->name, sizeof(r->name), "%s%s%s", q, s->name, q);
    type_text(s, r->type, sizeof(r->type));
    if (s->dflt)
        snprintf(r->dflt, sizeof(r->dflt), "%s%s%s", q, s->dflt, q);
    else
        snprintf(r->dflt, sizeof(r->dflt), "%s",
                 s->flags & K2R_SETTING_REQUIRED ? "required"
                 : markdown                      ? ""
                                                 : "-");
    env_text(s, q, r->env, sizeof(r->env));
    if (!markdown && !r->env[0])
        snprintf(r->env, sizeof(r->env), "-");
    r->reload = s->flags & K2R_SETTING_RESTART ? "restart" : "live";
}

/* Appends printf-formatted text; -1 when out of memory. */
static int appendf(k2r_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int appendf(k2r_buf_t *b, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    return k2r_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

char *k2r_settings_render(int markdown) {
    k2r_buf_t b = {NULL, 0, 0};
    int wname = 0, wtype = 0, wdflt = 0, rc = 0;
    row_text_t r = {0};

    for (size_t i = 0; i < NSETTINGS; i++) {
        row_text(&settings[i], markdown, &r);
        wname = (int)strlen(r.name) > wname ? (int)strlen(r.name) : wname;
        wtype = (int)strlen(r.type) > wtype ? (int)strlen(r.type) : wtype;
        wdflt = (int)strlen(r.dflt) > wdflt ? (int)strlen(r.dflt) : wdflt;
    }
    if (markdown)
        rc |= appendf(&b, "| setting | type | default | reload | environment | description |\n"
                          "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < NSETTINGS && rc == 0; i++) {
        row_text(&settings[i], markdown, &r);
        if (markdown)
            rc |= appendf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.name, r.type, r.dflt, r.reload,
                          r.env, settings[i].description);
        else
            rc |= appendf(&b, "%-*s  %-*s  %-*s  %-7s  %s\n", wname, r.name, wtype, r.type, wdflt,
                          r.dflt, r.reload, r.env);
    }
    if (rc != 0 || k2r_buf_append(&b, "", 1) != 0) {
        k2r_buf_free(&b);
        return NULL;
    }
    return b.data; /* the caller frees it, as k2r_buf_free would */
}
