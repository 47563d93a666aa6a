/*
 * config.c - loading the YAML configuration into a k2r_config_t.
 *
 * The file is loaded with libyaml's document API, which keeps the start mark
 * of every node, then walked section by section against small schema tables:
 * each known key has a handler, an unknown key is an error, and every error
 * carries file:line:col and the key path (`rules[2].channel`). Errors are
 * collected, not returned one at a time, so a user fixes a file in one pass.
 *
 * Integer settings are described once, in a table with their bounds and
 * defaults, in the way redis's config.c does. librdkafka properties under
 * `kafka.properties` are handed to rd_kafka_conf_set() here, without creating
 * a client, so a property librdkafka rejects is reported with librdkafka's own
 * message at the line that set it.
 *
 * Environment overrides (K2R_KAFKA_BROKERS, K2R_REDIS_URL, K2R_REDIS_PASSWORD,
 * K2R_REDIS_PASSWORD_FILE) are applied after the file and win over it.
 */
#include "k2r/config.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "k2r/addr.h"
#include "k2r/clock.h"
#include "k2r/log.h"

/* ------------------------------------------------------------- the walk */

/* State shared by the section walkers. */
typedef struct loader_s {
    const char *file;
    yaml_document_t *doc;
    k2r_errors_t *errs;
    k2r_config_t *cfg;
    size_t nerrs_at_start;
    yaml_node_t *kafka_node; /* the sections, for errors about what they lack */
    yaml_node_t *redis_node;
    unsigned present; /* PRESENT_* bits: required keys written, valid or not */
} loader_t;

enum { PRESENT_BROKERS = 1, PRESENT_GROUP = 2, PRESENT_TOPICS = 4 };

static k2r_mark_t mark_of(const yaml_node_t *node) {
    k2r_mark_t m = {(int)node->start_mark.line + 1, (int)node->start_mark.column + 1};
    return m;
}

#define lerr(ld, node, ...) k2r_errors_add((ld)->errs, (ld)->file, mark_of(node), __VA_ARGS__)

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

/* Reads a non-empty string; returns a new copy or NULL after adding an error. */
static char *get_string(loader_t *ld, const yaml_node_t *node, const char *path) {
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

/* An integer setting: name, bounds and default, in one place. */
typedef struct int_setting_s {
    const char *name;
    long min;
    long max;
    int dflt;
    size_t offset; /* of the int within the section struct */
} int_setting_t;

static void get_int(loader_t *ld, const yaml_node_t *node, const char *path,
                    const int_setting_t *is, int *out) {
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
    if (n < is->min || n > is->max) {
        lerr(ld, node, "%s: %ld is out of range (%ld to %ld)", path, n, is->min, is->max);
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

/* The same for a setting kept as int milliseconds. */
static void get_duration_int(loader_t *ld, const yaml_node_t *node, const char *path,
                             int64_t min_ms, int64_t max_ms, int *out) {
    int64_t ms = *out;
    get_duration(ld, node, path, min_ms, max_ms, &ms);
    *out = (int)ms;
}

/* One word out of `names` (n of them); returns its index, or -1 after an error. */
static int get_choice(loader_t *ld, const yaml_node_t *node, const char *path,
                      const char *const *names, size_t n) {
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
    lerr(ld, node, "%s: expected %s; found \"%s\"", path, list, v);
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

/* ------------------------------------------------------------- kafka: */

static const char *const kafka_keys[] = {"brokers",    "group_id",          "topics",
                                         "properties", "dead_letter_topic", "startup_timeout"};

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

static void kafka_property(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                           const char *path, void *ctx) {
    k2r_kafka_conf_t *kc = &ld->cfg->kafka;
    rd_kafka_conf_t *conf = ctx;
    char full[300], errstr[512];
    k2r_property_t *props;
    const char *v;

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
    v = (const char *)value->data.scalar.value;
    if (rd_kafka_conf_set(conf, key, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
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
    kc->nproperties++;
}

static void kafka_topic(loader_t *ld, yaml_node_t *item, const char *path, void *ctx) {
    k2r_kafka_conf_t *kc = ctx;
    char *t = get_string(ld, item, path);
    char **slot = t ? grow(&kc->topics, &kc->ntopics, sizeof(char *)) : NULL;

    if (slot)
        *slot = t;
    else
        free(t);
}

static void kafka_topics(loader_t *ld, yaml_node_t *value, const char *path) {
    /* A single topic written as a scalar is accepted as a list of one. */
    if (value->type == YAML_SCALAR_NODE && !is_null(value))
        kafka_topic(ld, value, path, &ld->cfg->kafka);
    else
        walk_list(ld, value, path, "topic names", kafka_topic, &ld->cfg->kafka);
}

static void kafka_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                       const char *path, void *ctx) {
    k2r_kafka_conf_t *kc = &ld->cfg->kafka;
    char sub[256];

    (void)ctx;
    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (strcmp(key, "brokers") == 0) {
        ld->present |= PRESENT_BROKERS;
        kc->brokers = get_string(ld, value, sub);
    } else if (strcmp(key, "group_id") == 0) {
        ld->present |= PRESENT_GROUP;
        kc->group_id = get_string(ld, value, sub);
    } else if (strcmp(key, "dead_letter_topic") == 0) {
        kc->dead_letter_topic = get_string(ld, value, sub);
        ld->cfg->dead_letter_mark = mark_of(value);
    } else if (strcmp(key, "topics") == 0) {
        ld->present |= PRESENT_TOPICS;
        kafka_topics(ld, value, sub);
    } else if (strcmp(key, "properties") == 0) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        walk_mapping(ld, value, sub, kafka_property, conf);
        rd_kafka_conf_destroy(conf);
    } else if (strcmp(key, "startup_timeout") == 0) {
        get_duration_int(ld, value, sub, 1000, 3600000, &kc->startup_timeout_ms);
    } else if (strcmp(key, "batch_size") == 0) {
        lerr(ld, knode,
             "%s: replaced by limits.max_inflight_records (a batch is what is in flight)", sub);
    } else {
        unknown_key(ld, knode, path, key, kafka_keys, sizeof(kafka_keys) / sizeof(kafka_keys[0]));
    }
}

/* ------------------------------------------------------------- redis: */

static const int_setting_t redis_ints[] = {
    {"connect_timeout_ms", 1, 600000, 2000, offsetof(k2r_redis_section_t, connect_timeout_ms)},
    {"command_timeout_ms", 1, 600000, 5000, offsetof(k2r_redis_section_t, command_timeout_ms)},
    {"pipeline_depth", 1, 65536, 512, offsetof(k2r_redis_section_t, pipeline_depth)},
    {"reconnect_backoff_ms", 1, 600000, 100, offsetof(k2r_redis_section_t, backoff_initial_ms)},
    {"reconnect_backoff_max_ms", 1, 3600000, 5000, offsetof(k2r_redis_section_t, backoff_max_ms)},
};

static const char *const redis_keys[] = {"url",
                                         "password",
                                         "connect_timeout_ms",
                                         "command_timeout_ms",
                                         "pipeline_depth",
                                         "reconnect_backoff_ms",
                                         "reconnect_backoff_max_ms",
                                         "on_unavailable"};

static void redis_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                       const char *path, void *ctx) {
    k2r_redis_section_t *rs = &ld->cfg->redis;
    char sub[256];

    (void)ctx;
    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (strcmp(key, "url") == 0) {
        char errstr[256];
        free(rs->url);
        rs->url = get_string(ld, value, sub);
        k2r_redis_url_free(&rs->parsed);
        if (rs->url && k2r_redis_url_parse(rs->url, &rs->parsed, errstr, sizeof(errstr)) != 0)
            lerr(ld, value, "%s: %s", sub, errstr);
    } else if (strcmp(key, "password") == 0) {
        rs->password = get_string(ld, value, sub);
    } else if (strcmp(key, "on_unavailable") == 0) {
        static const char *const policies[] = {"pause", "drop"};
        int i = get_choice(ld, value, sub, policies, 2);
        if (i >= 0)
            rs->on_unavailable = (k2r_on_unavailable_t)i;
    } else {
        for (size_t i = 0; i < sizeof(redis_ints) / sizeof(redis_ints[0]); i++) {
            if (strcmp(key, redis_ints[i].name) == 0) {
                get_int(ld, value, sub, &redis_ints[i], (int *)((char *)rs + redis_ints[i].offset));
                return;
            }
        }
        unknown_key(ld, knode, path, key, redis_keys, sizeof(redis_keys) / sizeof(redis_keys[0]));
    }
}

/* --------------------------------------------------------------- log: */

static void log_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                     const char *path, void *ctx) {
    static const char *const log_keys[] = {"level", "format"};
    char sub[256];

    (void)ctx;
    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (strcmp(key, "level") == 0) {
        char *v = get_string(ld, value, sub);
        int level = v ? k2r_log_level_parse(v) : -1;
        if (v && level < 0)
            lerr(ld, value, "%s: expected one of error, warn, info, debug; found \"%s\"", sub, v);
        else if (v)
            ld->cfg->log_level = level;
        free(v);
    } else if (strcmp(key, "format") == 0) {
        static const char *const formats[] = {"json", "text"};
        int i = get_choice(ld, value, sub, formats, 2);
        if (i >= 0)
            ld->cfg->log_format = (k2r_log_format_t)i;
    } else {
        unknown_key(ld, knode, path, key, log_keys, 2);
    }
}

/* ---------------------------------------------------------- shutdown: */

static void shutdown_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                          const char *path, void *ctx) {
    static const char *const shutdown_keys[] = {"drain_timeout"};
    char sub[256];

    (void)ctx;
    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (strcmp(key, "drain_timeout") == 0)
        get_duration_int(ld, value, sub, 0, 600000, &ld->cfg->drain_timeout_ms);
    else
        unknown_key(ld, knode, path, key, shutdown_keys, 1);
}

/* -------------------------------------------------------------- http: */

static void http_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                      const char *path, void *ctx) {
    static const char *const http_keys[] = {"enabled", "listen"};
    char sub[256], host[256];
    int port;

    (void)ctx;
    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (strcmp(key, "enabled") == 0) {
        get_bool(ld, value, sub, &ld->cfg->http.enabled);
    } else if (strcmp(key, "listen") == 0) {
        char *v = get_string(ld, value, sub);
        if (v && k2r_split_listen(v, host, sizeof(host), &port) != 0) {
            lerr(ld, value,
                 "%s: expected host:port, [ipv6]:port or :port with a port 1-65535; found \"%s\"",
                 sub, v);
            free(v);
            v = NULL;
        }
        if (v) {
            free(ld->cfg->http.listen);
            ld->cfg->http.listen = v;
        }
    } else {
        unknown_key(ld, knode, path, key, http_keys, 2);
    }
}

/* ------------------------------------------------------------- rules: */

static const char *const rule_keys[] = {
    "name",     "topic",        "type",    "id",       "vars",   "when",     "channel",
    "channels", "notification", "message", "on_error", "unsafe", "continue", "max_age"};

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
        /* In k2r_on_error_t's order. */
        static const char *const policies[] = {"skip", "dead-letter", "stop"};
        int i = get_choice(ld, value, sub, policies, 3);
        rc->on_error_mark = mark_of(value);
        if (i >= 0)
            rc->on_error = (k2r_on_error_t)i;
    } else if (strcmp(key, "unsafe") == 0) {
        static const char *const modes[] = {"reject", "escape"};
        int i = get_choice(ld, value, sub, modes, 2);
        if (i >= 0)
            rc->escape = i;
    } else if (strcmp(key, "continue") == 0) {
        get_bool(ld, value, sub, &rc->cont);
    } else if (strcmp(key, "max_age") == 0) {
        get_duration(ld, value, sub, 0, INT64_C(30) * 24 * 3600000, &rc->max_age_ms);
    } else {
        unknown_key(ld, knode, path, key, rule_keys, sizeof(rule_keys) / sizeof(rule_keys[0]));
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
                if (cfg->rules[j].name && strcmp(cfg->rules[j].name, rc->name) == 0)
                    lerr(ld, node, "%s.name: duplicate rule name \"%s\" (first at line %d)", rpath,
                         rc->name, cfg->rules[j].mark.line);
            }
        }
        if (rule_defaults(rc) != 0)
            lerr(ld, node, "%s: out of memory", rpath);
    }
}

/* ------------------------------------------------------------ limits: */

static const int_setting_t limits_ints[] = {
    {"max_channel_bytes", 16, 65536, 1024, offsetof(k2r_limits_t, max_channel_bytes)},
    {"max_notification_bytes", 64, 1048576, 8192, offsetof(k2r_limits_t, max_notification_bytes)},
    {"max_inflight_records", 1, 1000000, 1000, offsetof(k2r_limits_t, max_inflight_records)},
    {"max_inflight_bytes", 65536, 1073741824, 16777216, offsetof(k2r_limits_t, max_inflight_bytes)},
};

static void limits_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                        const char *path, void *ctx) {
    static const char *const limits_keys[] = {"max_channel_bytes", "max_notification_bytes",
                                              "max_inflight_records", "max_inflight_bytes",
                                              "max_age"};
    char sub[128];

    (void)ctx;
    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (strcmp(key, "max_age") == 0) {
        get_duration(ld, value, sub, 0, INT64_C(30) * 24 * 3600000, &ld->cfg->limits.max_age_ms);
        return;
    }
    for (size_t i = 0; i < sizeof(limits_ints) / sizeof(limits_ints[0]); i++) {
        if (strcmp(key, limits_ints[i].name) == 0) {
            get_int(ld, value, sub, &limits_ints[i],
                    (int *)((char *)&ld->cfg->limits + limits_ints[i].offset));
            return;
        }
    }
    unknown_key(ld, knode, path, key, limits_keys, sizeof(limits_keys) / sizeof(limits_keys[0]));
}

/* --------------------------------------------------------------- top */

static void top_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                     const char *path, void *ctx) {
    static const char *const top_keys[] = {"kafka",  "redis",    "rules", "log",
                                           "limits", "shutdown", "http"};
    int *seen = ctx;

    (void)path;
    if (strcmp(key, "kafka") == 0) {
        seen[0] = 1;
        ld->kafka_node = value;
        walk_mapping(ld, value, "kafka", kafka_pair, NULL);
    } else if (strcmp(key, "redis") == 0) {
        ld->redis_node = value;
        walk_mapping(ld, value, "redis", redis_pair, NULL);
    } else if (strcmp(key, "rules") == 0) {
        seen[1] = 1;
        rules_section(ld, value, "rules");
    } else if (strcmp(key, "log") == 0) {
        walk_mapping(ld, value, "log", log_pair, NULL);
    } else if (strcmp(key, "limits") == 0) {
        walk_mapping(ld, value, "limits", limits_pair, NULL);
    } else if (strcmp(key, "shutdown") == 0) {
        walk_mapping(ld, value, "shutdown", shutdown_pair, NULL);
    } else if (strcmp(key, "http") == 0) {
        walk_mapping(ld, value, "http", http_pair, NULL);
    } else {
        char hint[96];
        suggest(key, top_keys, sizeof(top_keys) / sizeof(top_keys[0]), hint, sizeof(hint));
        lerr(ld, knode, "unknown top-level key \"%s\"%s", key, hint);
    }
}

static void set_defaults(k2r_config_t *cfg) {
    cfg->kafka.startup_timeout_ms = 30000;
    cfg->drain_timeout_ms = 10000;
    cfg->http.enabled = 1;
    for (size_t i = 0; i < sizeof(redis_ints) / sizeof(redis_ints[0]); i++)
        *(int *)((char *)&cfg->redis + redis_ints[i].offset) = redis_ints[i].dflt;
    for (size_t i = 0; i < sizeof(limits_ints) / sizeof(limits_ints[0]); i++)
        *(int *)((char *)&cfg->limits + limits_ints[i].offset) = limits_ints[i].dflt;
    cfg->log_level = K2R_LOG_INFO;
}

/* Reads a secret from a file, without its trailing newline. */
static char *read_secret_file(const char *path, char *errstr, size_t errstr_size) {
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "rb");

    if (!f) {
        snprintf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n == 0) {
        snprintf(errstr, errstr_size, "%s is empty", path);
        return NULL;
    }
    return strdup(buf);
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
}

static void apply_env(loader_t *ld, k2r_getenv_fn env) {
    k2r_config_t *cfg = ld->cfg;
    k2r_mark_t none = {0, 0};
    char errstr[256];
    const char *v;

    if (!env)
        return;
    if ((v = env("K2R_KAFKA_BROKERS")) && *v) {
        free(cfg->kafka.brokers);
        cfg->kafka.brokers = strdup(v);
    }
    if ((v = env("K2R_REDIS_URL")) && *v) {
        free(cfg->redis.url);
        cfg->redis.url = strdup(v);
        k2r_redis_url_free(&cfg->redis.parsed);
        if (k2r_redis_url_parse(v, &cfg->redis.parsed, errstr, sizeof(errstr)) != 0)
            k2r_errors_add(ld->errs, NULL, none, "K2R_REDIS_URL: %s", errstr);
    }
    if ((v = env("K2R_REDIS_PASSWORD_FILE")) && *v) {
        char *pw = read_secret_file(v, errstr, sizeof(errstr));
        if (!pw) {
            k2r_errors_add(ld->errs, NULL, none, "K2R_REDIS_PASSWORD_FILE: %s", errstr);
        } else {
            free(cfg->redis.password);
            cfg->redis.password = pw;
        }
    } else if ((v = env("K2R_REDIS_PASSWORD")) && *v) {
        free(cfg->redis.password);
        cfg->redis.password = strdup(v);
    }
    if ((v = env("K2R_HTTP_LISTEN")) && *v) {
        char host[256];
        int port;
        if (k2r_split_listen(v, host, sizeof(host), &port) != 0) {
            k2r_errors_add(ld->errs, NULL, none,
                           "K2R_HTTP_LISTEN: expected host:port, [ipv6]:port or :port with a port "
                           "1-65535; found \"%s\"",
                           v);
        } else {
            free(cfg->http.listen);
            cfg->http.listen = strdup(v);
        }
    }
    if ((v = env("K2R_KAFKA_SASL_USERNAME")) && *v)
        set_property(ld, "sasl.username", v);
    if ((v = env("K2R_KAFKA_SASL_PASSWORD_FILE")) && *v) {
        char *pw = read_secret_file(v, errstr, sizeof(errstr));
        if (!pw)
            k2r_errors_add(ld->errs, NULL, none, "K2R_KAFKA_SASL_PASSWORD_FILE: %s", errstr);
        else
            set_property(ld, "sasl.password", pw);
        free(pw);
    } else if ((v = env("K2R_KAFKA_SASL_PASSWORD")) && *v) {
        set_property(ld, "sasl.password", v);
    }
}

static void check_required(loader_t *ld, yaml_node_t *root, const int *seen) {
    k2r_config_t *cfg = ld->cfg;

    if (!seen[0]) {
        lerr(ld, root, "missing required section \"kafka\"");
    } else {
        /* A key that was written but invalid already has its error. */
        if (!cfg->kafka.brokers && !(ld->present & PRESENT_BROKERS))
            lerr(ld, ld->kafka_node, "kafka.brokers: required (or set K2R_KAFKA_BROKERS)");
        if (!(ld->present & PRESENT_GROUP))
            lerr(ld, ld->kafka_node, "kafka.group_id: required");
        if (!(ld->present & PRESENT_TOPICS))
            lerr(ld, ld->kafka_node, "kafka.topics: required");
    }
    if (!seen[1])
        lerr(ld, root, "missing required section \"rules\"");
    for (size_t i = 0; i < cfg->nrules; i++)
        if (cfg->rules[i].on_error == K2R_ON_ERROR_DEAD_LETTER && !cfg->kafka.dead_letter_topic)
            k2r_errors_add(ld->errs, ld->file, cfg->rules[i].on_error_mark,
                           "rules[%zu].on_error: dead-letter needs kafka.dead_letter_topic", i);
    if (cfg->redis.backoff_initial_ms > cfg->redis.backoff_max_ms)
        lerr(ld, ld->redis_node ? ld->redis_node : root,
             "redis.reconnect_backoff_ms: %d is above redis.reconnect_backoff_max_ms (%d)",
             cfg->redis.backoff_initial_ms, cfg->redis.backoff_max_ms);
}

/* Parses a document; `lenient` keeps the config despite errors (see config.h). */
static k2r_config_t *parse(const char *name, const char *buf, size_t len, k2r_getenv_fn env,
                           k2r_errors_t *errs, int lenient) {
    int readable = 0;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    k2r_config_t *cfg;
    loader_t ld;
    int seen[2] = {0, 0};
    char errstr[256];

    cfg = calloc(1, sizeof(*cfg));
    if (!cfg || !(cfg->path = strdup(name))) {
        free(cfg);
        k2r_errors_add(errs, name, (k2r_mark_t){0, 0}, "out of memory");
        return NULL;
    }
    set_defaults(cfg);
    ld = (loader_t){name, &doc, errs, cfg, errs->count, NULL, NULL, 0};

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
    yaml_parser_delete(&parser);

    root = yaml_document_get_root_node(&doc);
    if (!root) {
        k2r_errors_add(errs, name, (k2r_mark_t){0, 0}, "the file is empty");
    } else if (root->type != YAML_MAPPING_NODE) {
        lerr(&ld, root, "expected a mapping with kafka:, redis: and rules:, found %s",
             node_kind(root));
    } else {
        readable = 1;
        walk_mapping(&ld, root, "", top_pair, seen);
        apply_env(&ld, env);
        check_required(&ld, root, seen);
    }
    yaml_document_delete(&doc);

    if (!cfg->redis.url) {
        cfg->redis.url = strdup("redis://127.0.0.1:6379");
        if (!cfg->redis.url ||
            k2r_redis_url_parse(cfg->redis.url, &cfg->redis.parsed, errstr, sizeof(errstr)) != 0)
            k2r_errors_add(errs, name, (k2r_mark_t){0, 0}, "redis.url: cannot use the default");
    }
    if (!cfg->http.listen && !(cfg->http.listen = strdup("0.0.0.0:8080")))
        k2r_errors_add(errs, name, (k2r_mark_t){0, 0}, "out of memory");
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

static k2r_config_t *load(const char *path, k2r_getenv_fn env, k2r_errors_t *errs, int lenient) {
    k2r_config_t *cfg;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    FILE *f = fopen(path, "rb");

    if (!f) {
        k2r_errors_add(errs, path, (k2r_mark_t){0, 0}, "cannot open: %s", strerror(errno));
        return NULL;
    }
    do {
        if (len == cap) {
            char *nb;
            cap = cap ? cap * 2 : 16384;
            if (cap > (size_t)64 * 1024 * 1024 || !(nb = realloc(buf, cap))) {
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
    for (size_t i = 0; i < cfg->kafka.ntopics; i++)
        free(cfg->kafka.topics[i]);
    free(cfg->kafka.topics);
    for (size_t i = 0; i < cfg->kafka.nproperties; i++) {
        free(cfg->kafka.properties[i].name);
        free(cfg->kafka.properties[i].value);
    }
    free(cfg->kafka.properties);
    free(cfg->redis.url);
    free(cfg->redis.password);
    free(cfg->http.listen);
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
