/*
 * rules.c - compiling the configured rules and mapping a record through them.
 *
 * A rule is compiled into: the topic it takes, a record path for each
 * variable ({type}, {id}), a channel template split into literal and variable
 * parts, and the notification fields with their paths. Mapping a record then
 * costs one JSON decode (simdjson, via record.h), a few path lookups, and one
 * small jansson object serialised compactly into the caller's buffer.
 *
 * This file does no I/O and keeps no state between records, so the unit tests
 * drive it with byte strings and `kafka-redis-bridge map` runs the exact code
 * the daemon runs.
 */
#include "k2r/rules.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The variables a channel template may use, indexed by var_t. */
typedef enum var_e { VAR_TYPE = 0, VAR_ID, VAR__COUNT } var_t;
static const char *const var_names[VAR__COUNT] = {"type", "id"};

typedef struct part_s {
    int var;    /* a var_t, or -1 for literal text */
    char *text; /* the literal, when var < 0 */
    size_t len;
} part_t;

typedef struct field_s {
    char *name;
    size_t name_len;
    k2r_path_t path;
} field_t;

typedef struct rule_s {
    char *name;
    char *topic;
    char *channel_text;
    k2r_path_t vars[VAR__COUNT];
    int uses[VAR__COUNT]; /* the template references the variable */
    part_t *parts;
    size_t nparts;
    field_t *fields;
    size_t nfields;
} rule_t;

struct k2r_rules_s {
    rule_t *rules;
    size_t nrules;
};

static const char *const skip_names[K2R_SKIP__COUNT] = {
    "none", "no_rule", "not_json", "missing_field", "wrong_type", "empty_value", "too_long"};

const char *k2r_skip_name(k2r_skip_t reason) {
    return (unsigned)reason < K2R_SKIP__COUNT ? skip_names[reason] : "unknown";
}

/* ---------------------------------------------------------------- buffer */

int k2r_buf_reserve(k2r_buf_t *buf, size_t n) {
    if (buf->len + n > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        char *data;
        while (cap < buf->len + n)
            cap *= 2;
        data = realloc(buf->data, cap);
        if (!data)
            return -1;
        buf->data = data;
        buf->cap = cap;
    }
    return 0;
}

int k2r_buf_append(k2r_buf_t *buf, const void *bytes, size_t n) {
    if (n == 0)
        return 0;
    if (k2r_buf_reserve(buf, n) != 0)
        return -1;
    memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
    return 0;
}

void k2r_buf_free(k2r_buf_t *buf) {
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

/* ------------------------------------------------------------- compiling */

static int add_part(rule_t *r, int var, const char *text, size_t len) {
    part_t *parts = realloc(r->parts, (r->nparts + 1) * sizeof(*parts));

    if (!parts)
        return -1;
    r->parts = parts;
    parts[r->nparts].var = var;
    parts[r->nparts].text = NULL;
    parts[r->nparts].len = len;
    if (var < 0) {
        parts[r->nparts].text = malloc(len ? len : 1);
        if (!parts[r->nparts].text)
            return -1;
        memcpy(parts[r->nparts].text, text, len);
    }
    r->nparts++;
    return 0;
}

/*
 * Splits a template such as "events:{type}:{id}" into parts. "{{" and "}}"
 * stand for literal braces. Adds an error and returns -1 on a bad template.
 */
static int compile_template(rule_t *r, const char *tpl, const char *file, k2r_mark_t mark,
                            size_t ri, k2r_errors_t *errs) {
    char lit[K2R_CHANNEL_MAX + 1];
    size_t nlit = 0;
    const char *p = tpl;

    while (*p) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            if (nlit < K2R_CHANNEL_MAX)
                lit[nlit++] = p[0];
            p += 2;
        } else if (*p == '{') {
            const char *end = strchr(p + 1, '}');
            size_t len, best = 3;
            int var = -1;
            const char *hint = NULL;

            if (!end) {
                k2r_errors_add(errs, file, mark, "rules[%zu].channel: unclosed \"{\" in \"%s\"", ri,
                               tpl);
                return -1;
            }
            len = (size_t)(end - p - 1);
            for (int v = 0; v < VAR__COUNT; v++) {
                size_t d = k2r_edit_distance(p + 1, len, var_names[v]);
                if (d == 0)
                    var = v;
                else if (d < best) {
                    best = d;
                    hint = var_names[v];
                }
            }
            if (var < 0) {
                if (hint)
                    k2r_errors_add(errs, file, mark,
                                   "rules[%zu].channel: unknown variable {%.*s} (did you mean "
                                   "{%s}?)",
                                   ri, (int)len, p + 1, hint);
                else
                    k2r_errors_add(errs, file, mark,
                                   "rules[%zu].channel: unknown variable {%.*s} (known: {type}, "
                                   "{id})",
                                   ri, (int)len, p + 1);
                return -1;
            }
            if (nlit && add_part(r, -1, lit, nlit) != 0)
                return -1;
            nlit = 0;
            if (add_part(r, var, NULL, 0) != 0)
                return -1;
            r->uses[var] = 1;
            p = end + 1;
        } else if (*p == '}') {
            k2r_errors_add(errs, file, mark,
                           "rules[%zu].channel: unmatched \"}\" in \"%s\" (write \"}}\" for a "
                           "literal brace)",
                           ri, tpl);
            return -1;
        } else {
            if (nlit < K2R_CHANNEL_MAX)
                lit[nlit++] = *p;
            p++;
        }
    }
    if (nlit && add_part(r, -1, lit, nlit) != 0)
        return -1;
    if (r->nparts == 0) {
        k2r_errors_add(errs, file, mark, "rules[%zu].channel: must not be empty", ri);
        return -1;
    }
    return 0;
}

static int compile_path(const char *text, k2r_path_t *path, const char *file, k2r_mark_t mark,
                        const char *what, size_t ri, k2r_errors_t *errs) {
    char errstr[256];

    if (k2r_path_compile(text, path, errstr, sizeof(errstr)) != 0) {
        k2r_errors_add(errs, file, mark, "rules[%zu].%s: %s", ri, what, errstr);
        return -1;
    }
    return 0;
}

/* Whether `topic` is among the subscribed topics (or a regex subscription may take it). */
static int topic_subscribed(const k2r_config_t *cfg, const char *topic) {
    for (size_t i = 0; i < cfg->kafka.ntopics; i++) {
        if (cfg->kafka.topics[i][0] == '^' || strcmp(cfg->kafka.topics[i], topic) == 0)
            return 1;
    }
    return 0;
}

static void rule_free(rule_t *r) {
    free(r->name);
    free(r->topic);
    free(r->channel_text);
    for (int v = 0; v < VAR__COUNT; v++)
        k2r_path_free(&r->vars[v]);
    for (size_t i = 0; i < r->nparts; i++)
        free(r->parts[i].text);
    free(r->parts);
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].name);
        k2r_path_free(&r->fields[i].path);
    }
    free(r->fields);
}

k2r_rules_t *k2r_rules_new(const k2r_config_t *cfg, k2r_errors_t *errs) {
    const char *file = cfg->path;
    size_t nerrs = errs->count;
    k2r_rules_t *rules = calloc(1, sizeof(*rules));

    if (!rules || !(rules->rules = calloc(cfg->nrules ? cfg->nrules : 1, sizeof(rule_t)))) {
        free(rules);
        k2r_errors_add(errs, file, cfg->rules_mark, "rules: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < cfg->nrules; i++) {
        const k2r_rule_conf_t *rc = &cfg->rules[i];
        rule_t *r;

        /* A rule the loader found incomplete already has its errors. */
        if (!rc->name || !rc->topic || !rc->type || !rc->id || !rc->channel)
            continue;
        r = &rules->rules[rules->nrules++];

        r->name = strdup(rc->name);
        r->topic = strdup(rc->topic);
        r->channel_text = strdup(rc->channel);
        r->fields = calloc(rc->nfields ? rc->nfields : 1, sizeof(*r->fields));
        if (!r->name || !r->topic || !r->channel_text || !r->fields) {
            k2r_errors_add(errs, file, rc->mark, "rules[%zu]: out of memory", i);
            continue;
        }
        if (cfg->kafka.ntopics && !topic_subscribed(cfg, rc->topic))
            k2r_errors_add(errs, file, rc->topic_mark,
                           "rules[%zu].topic: \"%s\" is not in kafka.topics, so this rule would "
                           "never match",
                           i, rc->topic);
        compile_path(rc->type, &r->vars[VAR_TYPE], file, rc->type_mark, "type", i, errs);
        compile_path(rc->id, &r->vars[VAR_ID], file, rc->id_mark, "id", i, errs);
        compile_template(r, rc->channel, file, rc->channel_mark, i, errs);
        for (size_t j = 0; j < rc->nfields; j++) {
            char what[64];
            field_t *f = &r->fields[j];

            snprintf(what, sizeof(what), "notification[%zu]", j);
            if (compile_path(rc->fields[j].path, &f->path, file, rc->fields[j].mark, what, i,
                             errs) != 0)
                continue;
            f->name = strdup(rc->fields[j].name);
            if (!f->name) {
                k2r_path_free(&f->path);
                continue;
            }
            f->name_len = strlen(f->name);
            r->nfields++;
        }
    }
    if (errs->count > nerrs) {
        k2r_rules_destroy(rules);
        return NULL;
    }
    return rules;
}

/* Compiles the rules of a leniently loaded config; NULL unless both stages were clean. */
static k2r_rules_t *finish(k2r_config_t *cfg, size_t nerrs, k2r_errors_t *errs,
                           k2r_config_t **cfg_out) {
    k2r_rules_t *rules = cfg ? k2r_rules_new(cfg, errs) : NULL;

    if (!rules || errs->count > nerrs) {
        k2r_rules_destroy(rules);
        k2r_config_destroy(cfg);
        *cfg_out = NULL;
        return NULL;
    }
    *cfg_out = cfg;
    return rules;
}

k2r_rules_t *k2r_rules_load(const char *path, k2r_getenv_fn env, k2r_errors_t *errs,
                            k2r_config_t **cfg_out) {
    size_t nerrs = errs->count;
    return finish(k2r_config_load_all(path, env, errs), nerrs, errs, cfg_out);
}

k2r_rules_t *k2r_rules_parse(const char *name, const char *buf, size_t len, k2r_getenv_fn env,
                             k2r_errors_t *errs, k2r_config_t **cfg_out) {
    size_t nerrs = errs->count;
    return finish(k2r_config_parse_all(name, buf, len, env, errs), nerrs, errs, cfg_out);
}

void k2r_rules_destroy(k2r_rules_t *rules) {
    if (!rules)
        return;
    for (size_t i = 0; i < rules->nrules; i++)
        rule_free(&rules->rules[i]);
    free(rules->rules);
    free(rules);
}

size_t k2r_rules_count(const k2r_rules_t *rules) {
    return rules->nrules;
}

void k2r_rules_describe(const k2r_rules_t *rules, size_t i, char *out, size_t out_size) {
    const rule_t *r = &rules->rules[i];
    size_t n;
    int w;

    w = snprintf(out, out_size, "rule %s: topic %s -> channel \"%s\" (type=%s, id=%s), fields [",
                 r->name, r->topic, r->channel_text, r->vars[VAR_TYPE].text, r->vars[VAR_ID].text);
    n = w < 0 ? 0 : (size_t)w;
    for (size_t j = 0; j < r->nfields && n < out_size; j++) {
        const field_t *f = &r->fields[j];
        if (strcmp(f->name, f->path.text) == 0)
            w = snprintf(out + n, out_size - n, "%s%s", j ? ", " : "", f->name);
        else
            w = snprintf(out + n, out_size - n, "%s%s: %s", j ? ", " : "", f->name, f->path.text);
        n += w < 0 ? 0 : (size_t)w;
    }
    if (n < out_size)
        snprintf(out + n, out_size - n, "]");
}

/* --------------------------------------------------------------- mapping */

static const char *value_kind(k2r_value_type_t t) {
    switch (t) {
    case K2R_VALUE_ABSENT:
        return "missing";
    case K2R_VALUE_STRING:
        return "a string";
    case K2R_VALUE_INT:
    case K2R_VALUE_UINT:
        return "an integer";
    case K2R_VALUE_DOUBLE:
        return "a fractional number";
    case K2R_VALUE_BOOL:
        return "a boolean";
    case K2R_VALUE_NULL:
        return "null";
    case K2R_VALUE_OBJECT:
        return "an object";
    case K2R_VALUE_ARRAY:
        return "an array";
    }
    return "unknown";
}

static int skip(k2r_mapping_t *m, k2r_skip_t reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int skip(k2r_mapping_t *m, k2r_skip_t reason, const char *fmt, ...) {
    va_list ap;

    m->skip = reason;
    m->npublish = 0;
    va_start(ap, fmt);
    vsnprintf(m->detail, sizeof(m->detail), fmt, ap);
    va_end(ap);
    return 0;
}

/* Adds one record value to the notification object; -1 when it is not a scalar. */
static int add_field(json_t *obj, const field_t *f, const k2r_value_t *v) {
    json_t *j;

    switch (v->type) {
    case K2R_VALUE_ABSENT:
        return 0; /* an absent field is left out of the notification */
    case K2R_VALUE_STRING:
        j = json_stringn_nocheck(v->str, v->len);
        break;
    case K2R_VALUE_INT:
        j = json_integer((json_int_t)v->i);
        break;
    case K2R_VALUE_UINT:
    case K2R_VALUE_DOUBLE:
        j = json_real(v->type == K2R_VALUE_UINT ? (double)v->u : v->d);
        break;
    case K2R_VALUE_BOOL:
        j = json_boolean(v->b);
        break;
    case K2R_VALUE_NULL:
        j = json_null();
        break;
    default:
        return -1;
    }
    if (!j || json_object_setn_new_nocheck(obj, f->name, f->name_len, j) != 0)
        return -2;
    return 0;
}

int k2r_rules_map(const k2r_rules_t *rules, k2r_record_t *rec, const k2r_msg_t *msg, k2r_buf_t *out,
                  k2r_mapping_t *m) {
    const rule_t *r = NULL;
    k2r_value_t vals[VAR__COUNT];
    char num[VAR__COUNT][24];
    size_t start = out->len, chan_off, chan_len, need;
    json_t *obj;

    memset(m, 0, offsetof(k2r_mapping_t, detail));
    m->detail[0] = '\0';
    m->npublish = 0;
    for (size_t i = 0; i < rules->nrules; i++) {
        if (strcmp(rules->rules[i].topic, msg->topic) == 0) {
            r = &rules->rules[i];
            break;
        }
    }
    if (!r)
        return skip(m, K2R_SKIP_NO_RULE, "no rule for topic %s", msg->topic);
    m->rule = r->name;

    if (k2r_record_parse(rec, msg->value ? msg->value : "", msg->value_len) != 0)
        return skip(m, K2R_SKIP_NOT_JSON, "value is not JSON: %s", k2r_record_error(rec));

    /* Variables: strings and integers only, rendered as text. */
    for (int v = 0; v < VAR__COUNT; v++) {
        if (!r->uses[v])
            continue;
        k2r_record_get(rec, &r->vars[v], &vals[v]);
        switch (vals[v].type) {
        case K2R_VALUE_STRING:
            if (vals[v].len == 0)
                return skip(m, K2R_SKIP_EMPTY_VALUE, "%s (%s): empty string", var_names[v],
                            r->vars[v].text);
            break;
        case K2R_VALUE_INT:
            vals[v].len = (size_t)snprintf(num[v], sizeof(num[v]), "%" PRId64, vals[v].i);
            vals[v].str = num[v];
            break;
        case K2R_VALUE_UINT:
            vals[v].len = (size_t)snprintf(num[v], sizeof(num[v]), "%" PRIu64, vals[v].u);
            vals[v].str = num[v];
            break;
        case K2R_VALUE_ABSENT:
            return skip(m, K2R_SKIP_MISSING_FIELD, "%s (%s): missing", var_names[v],
                        r->vars[v].text);
        default:
            m->skip = K2R_SKIP_WRONG_TYPE;
            snprintf(m->detail, sizeof(m->detail),
                     "%s (%s): expected a string or integer, found %s", var_names[v],
                     r->vars[v].text, value_kind(vals[v].type));
            return 0;
        }
    }

    /* The channel. */
    need = 0;
    for (size_t i = 0; i < r->nparts; i++)
        need += r->parts[i].var < 0 ? r->parts[i].len : vals[r->parts[i].var].len;
    if (need > K2R_CHANNEL_MAX) {
        m->skip = K2R_SKIP_TOO_LONG;
        snprintf(m->detail, sizeof(m->detail), "channel would be %zu bytes (limit %d)", need,
                 K2R_CHANNEL_MAX);
        return 0;
    }
    chan_off = out->len;
    for (size_t i = 0; i < r->nparts; i++) {
        const part_t *p = &r->parts[i];
        int rc = p->var < 0 ? k2r_buf_append(out, p->text, p->len)
                            : k2r_buf_append(out, vals[p->var].str, vals[p->var].len);
        if (rc != 0)
            goto oom;
    }
    chan_len = out->len - chan_off;

    /* The notification: a compact JSON object, fields in the order listed. */
    obj = json_object();
    if (!obj)
        goto oom;
    for (size_t i = 0; i < r->nfields; i++) {
        k2r_value_t fv;
        int rc;

        k2r_record_get(rec, &r->fields[i].path, &fv);
        rc = add_field(obj, &r->fields[i], &fv);
        if (rc == -1) {
            json_decref(obj);
            out->len = start;
            m->skip = K2R_SKIP_WRONG_TYPE;
            snprintf(m->detail, sizeof(m->detail),
                     "notification field %s (%s): expected a scalar, found %s", r->fields[i].name,
                     r->fields[i].path.text, value_kind(fv.type));
            return 0;
        }
        if (rc != 0) {
            json_decref(obj);
            goto oom;
        }
    }
    need = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    if (need == 0 || k2r_buf_reserve(out, need) != 0) {
        json_decref(obj);
        goto oom;
    }
    json_dumpb(obj, out->data + out->len, need, JSON_COMPACT);
    json_decref(obj);

    m->publish[0].channel_off = chan_off;
    m->publish[0].channel_len = chan_len;
    m->publish[0].message_off = out->len;
    m->publish[0].message_len = need;
    out->len += need;
    m->npublish = 1;
    return 0;

oom:
    out->len = start;
    return -1;
}
