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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "k2r/log.h"

/* ---------------------------------------------------------------- errors */

void k2r_errors_add(k2r_errors_t *errs, const char *file, k2r_mark_t mark, const char *fmt, ...) {
    char msg[1024];
    char *line;
    int n = 0;
    va_list ap;

    if (file && mark.line > 0)
        n = snprintf(msg, sizeof(msg), "%s:%d:%d: ", file, mark.line, mark.col);
    else if (file)
        n = snprintf(msg, sizeof(msg), "%s: ", file);
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);

    if (errs->count == errs->cap) {
        size_t cap = errs->cap ? errs->cap * 2 : 8;
        char **lines = realloc(errs->lines, cap * sizeof(*lines));
        if (!lines)
            return; /* out of memory: the errors already collected still fail the load */
        errs->lines = lines;
        errs->cap = cap;
    }
    line = strdup(msg);
    if (line)
        errs->lines[errs->count++] = line;
}

void k2r_errors_clear(k2r_errors_t *errs) {
    for (size_t i = 0; i < errs->count; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->count = errs->cap = 0;
}

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

size_t k2r_edit_distance(const char *a, size_t la, const char *b) {
    size_t lb = strlen(b), prev[64], cur[64];

    if (la >= 63 || lb >= 63)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
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

static void unknown_key(loader_t *ld, yaml_node_t *knode, const char *path, const char *key,
                        const char *const *known, size_t nknown) {
    char hint[96];

    suggest(key, known, nknown, hint, sizeof(hint));
    lerr(ld, knode, "%s: unknown key \"%s\"%s", path, key, hint);
}

/* ------------------------------------------------------------- kafka: */

static const int_setting_t kafka_ints[] = {
    {"batch_size", 1, 100000, 1000, offsetof(k2r_kafka_conf_t, batch_size)},
};

static const char *const kafka_keys[] = {"brokers", "group_id", "topics", "properties",
                                         "batch_size"};

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

static void kafka_topics(loader_t *ld, yaml_node_t *value, const char *path) {
    k2r_kafka_conf_t *kc = &ld->cfg->kafka;
    yaml_node_item_t *it;
    size_t n;

    if (value->type == YAML_SCALAR_NODE && !is_null(value)) {
        /* A single topic written as a scalar is accepted as a list of one. */
        char *t = get_string(ld, value, path);
        if (!t)
            return;
        kc->topics = calloc(1, sizeof(char *));
        if (!kc->topics) {
            free(t);
            return;
        }
        kc->topics[0] = t;
        kc->ntopics = 1;
        return;
    }
    if (value->type != YAML_SEQUENCE_NODE ||
        value->data.sequence.items.top == value->data.sequence.items.start) {
        lerr(ld, value, "%s: expected a non-empty list of topic names", path);
        return;
    }
    n = (size_t)(value->data.sequence.items.top - value->data.sequence.items.start);
    kc->topics = calloc(n, sizeof(char *));
    if (!kc->topics)
        return;
    for (it = value->data.sequence.items.start; it < value->data.sequence.items.top; it++) {
        char ipath[256];
        char *t;

        snprintf(ipath, sizeof(ipath), "%s[%zu]", path,
                 (size_t)(it - value->data.sequence.items.start));
        t = get_string(ld, yaml_document_get_node(ld->doc, *it), ipath);
        if (t)
            kc->topics[kc->ntopics++] = t;
    }
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
    } else if (strcmp(key, "topics") == 0) {
        ld->present |= PRESENT_TOPICS;
        kafka_topics(ld, value, sub);
    } else if (strcmp(key, "properties") == 0) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        walk_mapping(ld, value, sub, kafka_property, conf);
        rd_kafka_conf_destroy(conf);
    } else {
        for (size_t i = 0; i < sizeof(kafka_ints) / sizeof(kafka_ints[0]); i++) {
            if (strcmp(key, kafka_ints[i].name) == 0) {
                get_int(ld, value, sub, &kafka_ints[i], (int *)((char *)kc + kafka_ints[i].offset));
                return;
            }
        }
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
                                         "reconnect_backoff_max_ms"};

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
    static const char *const log_keys[] = {"level"};
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
    } else {
        unknown_key(ld, knode, path, key, log_keys, 1);
    }
}

/* ------------------------------------------------------------- rules: */

static const char *const rule_keys[] = {"name", "topic", "type", "id", "channel", "notification"};

/* One entry of `notification:`: "path" (the key is the path) or {key: path}. */
static void rule_field(loader_t *ld, k2r_rule_conf_t *rc, yaml_node_t *item, const char *path) {
    k2r_field_conf_t *f = &rc->fields[rc->nfields];

    if (item->type == YAML_MAPPING_NODE &&
        item->data.mapping.pairs.top - item->data.mapping.pairs.start == 1) {
        yaml_node_pair_t *p = item->data.mapping.pairs.start;
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        f->name = get_string(ld, k, path);
        f->path = get_string(ld, v, path);
    } else if (item->type == YAML_SCALAR_NODE) {
        f->name = get_string(ld, item, path);
        f->path = f->name ? strdup(f->name) : NULL;
    } else {
        lerr(ld, item, "%s: expected a field path or a one-key mapping {name: path}, found %s",
             path, node_kind(item));
        return;
    }
    if (!f->name || !f->path) {
        free(f->name);
        free(f->path);
        f->name = f->path = NULL;
        return;
    }
    for (size_t i = 0; i < rc->nfields; i++) {
        if (strcmp(rc->fields[i].name, f->name) == 0) {
            lerr(ld, item, "%s: duplicate notification field \"%s\"", path, f->name);
            free(f->name);
            free(f->path);
            f->name = f->path = NULL;
            return;
        }
    }
    f->mark = mark_of(item);
    rc->nfields++;
}

static void rule_fields(loader_t *ld, k2r_rule_conf_t *rc, yaml_node_t *value, const char *path) {
    yaml_node_item_t *it;
    size_t n;

    if (value->type != YAML_SEQUENCE_NODE ||
        value->data.sequence.items.top == value->data.sequence.items.start) {
        lerr(ld, value, "%s: expected a non-empty list of fields", path);
        return;
    }
    n = (size_t)(value->data.sequence.items.top - value->data.sequence.items.start);
    rc->fields = calloc(n, sizeof(*rc->fields));
    if (!rc->fields)
        return;
    for (it = value->data.sequence.items.start; it < value->data.sequence.items.top; it++) {
        char ipath[256];
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path,
                 (size_t)(it - value->data.sequence.items.start));
        rule_field(ld, rc, yaml_document_get_node(ld->doc, *it), ipath);
    }
}

static void rule_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                      const char *path, void *ctx) {
    k2r_rule_conf_t *rc = ctx;
    char sub[256];

    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (strcmp(key, "name") == 0) {
        rc->name = get_string(ld, value, sub);
    } else if (strcmp(key, "topic") == 0) {
        rc->topic = get_string(ld, value, sub);
        rc->topic_mark = mark_of(value);
    } else if (strcmp(key, "type") == 0) {
        rc->type = get_string(ld, value, sub);
        rc->type_mark = mark_of(value);
    } else if (strcmp(key, "id") == 0) {
        rc->id = get_string(ld, value, sub);
        rc->id_mark = mark_of(value);
    } else if (strcmp(key, "channel") == 0) {
        rc->channel = get_string(ld, value, sub);
        rc->channel_mark = mark_of(value);
    } else if (strcmp(key, "notification") == 0) {
        rc->fields_mark = mark_of(value);
        rule_fields(ld, rc, value, sub);
    } else {
        unknown_key(ld, knode, path, key, rule_keys, sizeof(rule_keys) / sizeof(rule_keys[0]));
    }
}

/* Fills what a rule may leave out with the seeds' defaults. */
static int rule_defaults(k2r_rule_conf_t *rc) {
    static const char *const default_fields[] = {"id", "type", "source_id"};

    if (!rc->channel && !(rc->channel = strdup("events:{type}:{id}")))
        return -1;
    if (!rc->fields) {
        rc->fields = calloc(3, sizeof(*rc->fields));
        if (!rc->fields)
            return -1;
        for (size_t i = 0; i < 3; i++) {
            rc->fields[i].name = strdup(default_fields[i]);
            rc->fields[i].path = strdup(default_fields[i]);
            rc->fields[i].mark = rc->mark;
            if (!rc->fields[i].name || !rc->fields[i].path)
                return -1;
            rc->nfields++;
        }
        rc->fields_mark = rc->mark;
    }
    if (!rc->channel_mark.line)
        rc->channel_mark = rc->mark;
    return 0;
}

static void rules_section(loader_t *ld, yaml_node_t *value, const char *path) {
    k2r_config_t *cfg = ld->cfg;
    yaml_node_item_t *it;
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
    for (it = value->data.sequence.items.start; it < value->data.sequence.items.top; it++) {
        yaml_node_t *node = yaml_document_get_node(ld->doc, *it);
        k2r_rule_conf_t *rc = &cfg->rules[cfg->nrules++];
        char rpath[256];

        snprintf(rpath, sizeof(rpath), "%s[%zu]", path,
                 (size_t)(it - value->data.sequence.items.start));
        rc->mark = mark_of(node);
        if (node->type != YAML_MAPPING_NODE) {
            lerr(ld, node, "%s: expected a mapping, found %s", rpath, node_kind(node));
            continue;
        }
        walk_mapping(ld, node, rpath, rule_pair, rc);
        if (!rc->name)
            lerr(ld, node, "%s: missing required key \"name\"", rpath);
        if (!rc->topic)
            lerr(ld, node, "%s: missing required key \"topic\"", rpath);
        if (!rc->type)
            lerr(ld, node, "%s: missing required key \"type\"", rpath);
        if (!rc->id)
            lerr(ld, node, "%s: missing required key \"id\"", rpath);
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

/* --------------------------------------------------------------- top */

static void top_pair(loader_t *ld, const char *key, yaml_node_t *knode, yaml_node_t *value,
                     const char *path, void *ctx) {
    static const char *const top_keys[] = {"kafka", "redis", "rules", "log"};
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
    } else {
        char hint[96];
        suggest(key, top_keys, 4, hint, sizeof(hint));
        lerr(ld, knode, "unknown top-level key \"%s\"%s", key, hint);
    }
}

static void set_defaults(k2r_config_t *cfg) {
    for (size_t i = 0; i < sizeof(kafka_ints) / sizeof(kafka_ints[0]); i++)
        *(int *)((char *)&cfg->kafka + kafka_ints[i].offset) = kafka_ints[i].dflt;
    for (size_t i = 0; i < sizeof(redis_ints) / sizeof(redis_ints[0]); i++)
        *(int *)((char *)&cfg->redis + redis_ints[i].offset) = redis_ints[i].dflt;
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
    k2r_redis_url_free(&cfg->redis.parsed);
    for (size_t i = 0; i < cfg->nrules; i++) {
        k2r_rule_conf_t *rc = &cfg->rules[i];
        free(rc->name);
        free(rc->topic);
        free(rc->type);
        free(rc->id);
        free(rc->channel);
        for (size_t j = 0; j < rc->nfields; j++) {
            free(rc->fields[j].name);
            free(rc->fields[j].path);
        }
        free(rc->fields);
    }
    free(cfg->rules);
    free(cfg);
}

void k2r_config_redis_conf(const k2r_config_t *cfg, k2r_redis_conf_t *out) {
    const k2r_redis_section_t *rs = &cfg->redis;

    out->host = rs->parsed.host;
    out->port = rs->parsed.port;
    out->user = rs->parsed.user;
    /* A password given on its own (file, environment) wins over one in the URL. */
    out->password = rs->password ? rs->password : rs->parsed.password;
    out->connect_timeout_ms = rs->connect_timeout_ms;
    out->command_timeout_ms = rs->command_timeout_ms;
    out->pipeline_depth = rs->pipeline_depth;
}
