/*
 * rules.c - compiling the configured rules and mapping a record through them.
 *
 * Everything a rule says is compiled once, at load: topic patterns (exact,
 * glob or POSIX regex), every variable's source (a record path, a header, a
 * Kafka coordinate, a constant, a CloudEvents attribute) with its default,
 * `when:` conditions resolved to variable indexes, channel and message
 * templates split into literal and variable parts, notification fields.
 * Mapping a record then costs at most one JSON decode (simdjson, via
 * json.h, and only when some rule reads the value), a few lookups, and one
 * small jansson object serialised into the caller's buffer.
 *
 * Variables are evaluated lazily, at most once per rule and record, so a rule
 * whose conditions fail early reads nothing else. A value put into a channel
 * is checked for bytes that would corrupt it (Pub/Sub pattern syntax, the
 * ':' separator, whitespace, control bytes, invalid UTF-8); the rule's
 * `unsafe:` says whether such a value is percent-escaped or refused.
 *
 * This file does no I/O and keeps no state between records, so the unit tests
 * drive it with byte strings and `kafka-redis-bridge map` runs the exact code
 * the daemon runs.
 */
#include "k2r/rules.h"

#include <assert.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <jansson.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/utf8.h"

/* ------------------------------------------------------------- names */

static const char *const skip_names[K2R_SKIP__COUNT] = {
    "none",     "no_rule",  "not_json",     "missing_field", "wrong_type", "empty_value",
    "too_long", "no_match", "unsafe_chars", "too_large",     "redis_error"};

const char *k2r_skip_name(k2r_skip_t reason) {
    return (unsigned)reason < K2R_SKIP__COUNT ? skip_names[reason] : "unknown";
}

const char *k2r_action_name(k2r_action_t action) {
    static const char *const names[] = {"none", "skip", "dead-letter", "stop"};
    return (unsigned)action < 4 ? names[action] : "unknown";
}

/* ------------------------------------------------------ compiled rules */

enum { META_KEY, META_TOPIC, META_PARTITION, META_OFFSET, META_TIMESTAMP };
enum { TOPIC_EXACT, TOPIC_GLOB, TOPIC_REGEX };

/* Per-record state while mapping (below, with the mapping code). */
typedef struct ctx_s ctx_t;

/* A compiled source of a value. */
typedef struct source_s {
    k2r_source_kind_t kind;
    k2r_path_t path;    /* PATH; and CLOUDEVENTS in structured mode (the attribute) */
    k2r_path_t ce_path; /* PATH under "data", for structured CloudEvents records */
    char *name;         /* HEADER name; CLOUDEVENTS binary-mode header "ce_<attr>" */
    int meta;           /* META_* */
    int var;            /* VAR: index of the variable */
    k2r_value_t cval;   /* CONST */
    char *cstr;         /* CONST string storage */
    int has_default;
    k2r_value_t dflt;
    char *dstr;
    char *desc; /* for check's summary: "repository.full_name", "header:X", ... */
} source_t;

typedef struct var_s {
    char *name;
    source_t src;
} var_t;

typedef struct cond_s {
    int var;
    k2r_cond_op_t op;
    char **values;
    size_t *lens;
    size_t nvalues;
} cond_t;

typedef struct part_s {
    int var;    /* a variable index, or -1 for literal text */
    char *text; /* the literal, when var < 0 */
    size_t len;
} part_t;

typedef struct tpl_s {
    part_t *parts;
    size_t nparts;
    char *text;
} tpl_t;

typedef struct field_s {
    char *name;
    size_t name_len;
    source_t src;
} field_t;

typedef struct rule_s {
    char *name;
    char *topic;
    int topic_kind;
    regex_t re;
    var_t *vars;
    size_t nvars;
    cond_t *conds;
    size_t nconds;
    tpl_t *channels;
    size_t nchannels;
    field_t *fields;
    size_t nfields;
    tpl_t message;
    int has_message;
    k2r_on_error_t on_error;
    int64_t max_age_ms; /* effective: the rule's, else limits.max_age; 0 = none */
    int escape;
    int cont;
} rule_t;

struct k2r_rules_s {
    rule_t *rules;
    size_t nrules;
    size_t max_channel;
    size_t max_notification;
    size_t max_vars; /* most variables of any rule: the size of the per-record cache */
};

/* ------------------------------------------------------------ compiling */

typedef struct compiler_s {
    const char *file;
    k2r_errors_t *errs;
    size_t ri;  /* the rule being compiled, for messages */
    int broken; /* the rule has variables the loader refused: an unknown
                   variable is then most likely one of those, already reported */
} compiler_t;

#define cerr(c, mark, ...) k2r_errors_add((c)->errs, (c)->file, (mark), __VA_ARGS__)

/* Parses the text of a plain integer written in YAML. */
static void int_value(const char *s, k2r_value_t *v) {
    v->type = K2R_VALUE_INT;
    v->i = strtoll(s, NULL, 10);
}

static void string_value(const char *s, k2r_value_t *v) {
    v->type = K2R_VALUE_STRING;
    v->str = s;
    v->len = strlen(s);
}

static int find_var(const rule_t *r, const char *name, size_t len) {
    for (size_t i = 0; i < r->nvars; i++)
        if (strlen(r->vars[i].name) == len && memcmp(r->vars[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* Writes " (did you mean {x}?)" or " (known: {a}, {b})" for an unknown variable. */
static void var_hint(const rule_t *r, const char *name, size_t len, char *out, size_t size) {
    size_t best = 3, n = 0;
    const char *pick = NULL;

    for (size_t i = 0; i < r->nvars; i++) {
        size_t d = k2r_edit_distance(name, len, r->vars[i].name);
        if (d < best) {
            best = d;
            pick = r->vars[i].name;
        }
    }
    if (pick) {
        snprintf(out, size, " (did you mean {%s}?)", pick);
        return;
    }
    n = (size_t)snprintf(out, size, r->nvars ? " (known:" : " (no variables are defined)");
    for (size_t i = 0; i < r->nvars && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s {%s}", i ? "," : "", r->vars[i].name);
    if (r->nvars && n < size)
        snprintf(out + n, size - n, ")");
}

/*
 * The source kinds (config.h's k2r_source_syntax says how each is written):
 * how each is compiled and how it is read from a record. A new kind is one
 * row here, one in k2r_source_syntax, and these two functions. A compile
 * function fills s and desc (check's summary of the source), or adds an
 * error and returns -1; an evaluation function fills *v, or leaves it
 * absent, and returns K2R_SKIP_NONE or the reason the record is skipped.
 */
typedef struct source_ops_s {
    int (*compile)(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r, const char *what,
                   source_t *s, char *desc, size_t desc_size);
    k2r_skip_t (*eval)(ctx_t *x, const source_t *s, k2r_value_t *v);
} source_ops_t;

static int compile_path(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r,
                        const char *what, source_t *s, char *desc, size_t desc_size) {
    char errstr[256];
    char *data_path = malloc(strlen(sc->arg) + 6);
    int rc;

    (void)r;
    if (k2r_path_compile(sc->arg, &s->path, errstr, sizeof(errstr)) != 0) {
        free(data_path);
        cerr(c, sc->mark, "rules[%zu].%s: %s", c->ri, what, errstr);
        return -1;
    }
    if (!data_path)
        return -1;
    snprintf(data_path, strlen(sc->arg) + 6, "data.%s", sc->arg);
    rc = k2r_path_compile(data_path, &s->ce_path, errstr, sizeof(errstr));
    free(data_path);
    if (rc != 0)
        return -1;
    snprintf(desc, desc_size, "%s", sc->arg);
    return 0;
}

static int compile_header(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r,
                          const char *what, source_t *s, char *desc, size_t desc_size) {
    (void)c, (void)r, (void)what;
    s->name = strdup(sc->arg);
    snprintf(desc, desc_size, "header:%s", sc->arg);
    return 0;
}

static int compile_meta(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r,
                        const char *what, source_t *s, char *desc, size_t desc_size) {
    (void)c, (void)r, (void)what;
    s->meta = strcmp(sc->arg, "key") == 0         ? META_KEY
              : strcmp(sc->arg, "topic") == 0     ? META_TOPIC
              : strcmp(sc->arg, "partition") == 0 ? META_PARTITION
              : strcmp(sc->arg, "offset") == 0    ? META_OFFSET
                                                  : META_TIMESTAMP;
    snprintf(desc, desc_size, "meta:%s", sc->arg);
    return 0;
}

static int compile_const(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r,
                         const char *what, source_t *s, char *desc, size_t desc_size) {
    (void)c, (void)r, (void)what;
    s->cstr = strdup(sc->arg);
    if (!s->cstr)
        return -1;
    if (sc->arg_is_int)
        int_value(s->cstr, &s->cval);
    else
        string_value(s->cstr, &s->cval);
    snprintf(desc, desc_size, "const:\"%s\"", sc->arg);
    return 0;
}

static int compile_cloudevents(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r,
                               const char *what, source_t *s, char *desc, size_t desc_size) {
    char errstr[256];
    size_t n = strlen(sc->arg) + 4;

    (void)r;
    s->name = malloc(n);
    if (!s->name)
        return -1;
    snprintf(s->name, n, "ce_%s", sc->arg);
    /* Structured mode: the attribute is a top-level member; escape dots. */
    if (strchr(sc->arg, '.') || strchr(sc->arg, '\\') ||
        k2r_path_compile(sc->arg, &s->path, errstr, sizeof(errstr)) != 0) {
        cerr(c, sc->mark, "rules[%zu].%s: \"%s\" is not a CloudEvents attribute name", c->ri, what,
             sc->arg);
        return -1;
    }
    snprintf(desc, desc_size, "cloudevents:%s", sc->arg);
    return 0;
}

static int compile_var(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r,
                       const char *what, source_t *s, char *desc, size_t desc_size) {
    s->var = find_var(r, sc->arg, strlen(sc->arg));
    if (s->var < 0 && c->broken)
        return -1;
    if (s->var < 0) {
        char hint[256];
        var_hint(r, sc->arg, strlen(sc->arg), hint, sizeof(hint));
        cerr(c, sc->mark, "rules[%zu].%s: unknown variable {%s}%s", c->ri, what, sc->arg, hint);
        return -1;
    }
    snprintf(desc, desc_size, "var:%s", sc->arg);
    return 0;
}

static k2r_skip_t eval_path(ctx_t *x, const source_t *s, k2r_value_t *v);
static k2r_skip_t eval_header(ctx_t *x, const source_t *s, k2r_value_t *v);
static k2r_skip_t eval_meta(ctx_t *x, const source_t *s, k2r_value_t *v);
static k2r_skip_t eval_const(ctx_t *x, const source_t *s, k2r_value_t *v);
static k2r_skip_t eval_cloudevents(ctx_t *x, const source_t *s, k2r_value_t *v);
static k2r_skip_t eval_var(ctx_t *x, const source_t *s, k2r_value_t *v);

static const source_ops_t source_ops[K2R_SOURCE_COUNT] = {
    [K2R_SOURCE_PATH] = {compile_path, eval_path},
    [K2R_SOURCE_HEADER] = {compile_header, eval_header},
    [K2R_SOURCE_META] = {compile_meta, eval_meta},
    [K2R_SOURCE_CONST] = {compile_const, eval_const},
    [K2R_SOURCE_CLOUDEVENTS] = {compile_cloudevents, eval_cloudevents},
    [K2R_SOURCE_VAR] = {compile_var, eval_var},
};

static int compile_source(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r,
                          const char *what, source_t *s) {
    char desc[300];

    assert(sc->kind < K2R_SOURCE_COUNT && source_ops[sc->kind].compile);
    s->kind = sc->kind;
    s->var = -1;
    if (source_ops[sc->kind].compile(c, sc, r, what, s, desc, sizeof(desc)) != 0)
        return -1;
    if (sc->dflt) {
        s->has_default = 1;
        s->dstr = strdup(sc->dflt);
        if (!s->dstr)
            return -1;
        if (sc->dflt_is_int)
            int_value(s->dstr, &s->dflt);
        else
            string_value(s->dstr, &s->dflt);
    }
    s->desc = strdup(desc);
    return s->desc ? 0 : -1;
}

static void free_source(source_t *s) {
    k2r_path_free(&s->path);
    k2r_path_free(&s->ce_path);
    free(s->name);
    free(s->cstr);
    free(s->dstr);
    free(s->desc);
}

static int add_part(tpl_t *t, int var, const char *text, size_t len) {
    part_t *parts = realloc(t->parts, (t->nparts + 1) * sizeof(*parts));

    if (!parts)
        return -1;
    t->parts = parts;
    parts[t->nparts].var = var;
    parts[t->nparts].text = NULL;
    parts[t->nparts].len = len;
    if (var < 0) {
        parts[t->nparts].text = malloc(len ? len : 1);
        if (!parts[t->nparts].text)
            return -1;
        memcpy(parts[t->nparts].text, text, len);
    }
    t->nparts++;
    return 0;
}

/*
 * Splits a template such as "events:{type}:{id}" into parts. "{{" and "}}"
 * stand for literal braces. Adds an error and returns -1 on a bad template.
 */
static int compile_template(compiler_t *c, const rule_t *r, const char *tpl, k2r_mark_t mark,
                            const char *what, tpl_t *t) {
    k2r_buf_t lit = {NULL, 0, 0};
    const char *p = tpl;
    int rc = -1;

    t->text = strdup(tpl);
    if (!t->text)
        return -1;
    while (*p) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            if (k2r_buf_append(&lit, p, 1) != 0)
                goto done;
            p += 2;
        } else if (*p == '{') {
            const char *end = strchr(p + 1, '}');
            size_t len;
            int var;

            if (!end) {
                cerr(c, mark, "rules[%zu].%s: unclosed \"{\" in \"%s\"", c->ri, what, tpl);
                goto done;
            }
            len = (size_t)(end - p - 1);
            var = find_var(r, p + 1, len);
            if (var < 0 && c->broken)
                goto done;
            if (var < 0) {
                char hint[256];
                var_hint(r, p + 1, len, hint, sizeof(hint));
                cerr(c, mark, "rules[%zu].%s: unknown variable {%.*s}%s", c->ri, what, (int)len,
                     p + 1, hint);
                goto done;
            }
            if (lit.len && add_part(t, -1, lit.data, lit.len) != 0)
                goto done;
            lit.len = 0;
            if (add_part(t, var, NULL, 0) != 0)
                goto done;
            p = end + 1;
        } else if (*p == '}') {
            cerr(c, mark,
                 "rules[%zu].%s: unmatched \"}\" in \"%s\" (write \"}}\" for a literal brace)",
                 c->ri, what, tpl);
            goto done;
        } else {
            if (k2r_buf_append(&lit, p, 1) != 0)
                goto done;
            p++;
        }
    }
    if (lit.len && add_part(t, -1, lit.data, lit.len) != 0)
        goto done;
    if (t->nparts == 0) {
        cerr(c, mark, "rules[%zu].%s: must not be empty", c->ri, what);
        goto done;
    }
    rc = 0;
done:
    k2r_buf_free(&lit);
    return rc;
}

static void free_template(tpl_t *t) {
    for (size_t i = 0; i < t->nparts; i++)
        free(t->parts[i].text);
    free(t->parts);
    free(t->text);
}

/* Whether an exact topic is among the subscribed topics (or a regex subscription may take it). */
static int topic_subscribed(const k2r_config_t *cfg, const char *topic) {
    for (size_t i = 0; i < cfg->kafka.ntopics; i++) {
        if (cfg->kafka.topics[i][0] == '^' || strcmp(cfg->kafka.topics[i], topic) == 0)
            return 1;
    }
    return 0;
}

static int compile_topic(compiler_t *c, const k2r_config_t *cfg, const k2r_rule_conf_t *rc,
                         rule_t *r) {
    r->topic = strdup(rc->topic);
    if (!r->topic)
        return -1;
    if (rc->topic[0] == '^') {
        int err = regcomp(&r->re, rc->topic, REG_EXTENDED | REG_NOSUB);
        if (err) {
            char why[256];
            regerror(err, &r->re, why, sizeof(why));
            cerr(c, rc->topic_mark, "rules[%zu].topic: bad regular expression \"%s\": %s", c->ri,
                 rc->topic, why);
            return -1;
        }
        r->topic_kind = TOPIC_REGEX;
    } else if (strpbrk(rc->topic, "*?[")) {
        r->topic_kind = TOPIC_GLOB;
    } else {
        r->topic_kind = TOPIC_EXACT;
        if (cfg->kafka.ntopics && !topic_subscribed(cfg, rc->topic)) {
            cerr(c, rc->topic_mark,
                 "rules[%zu].topic: \"%s\" is not in kafka.topics, so this rule would never "
                 "match",
                 c->ri, rc->topic);
            return -1;
        }
    }
    return 0;
}

static void free_rule(rule_t *r) {
    free(r->name);
    if (r->topic_kind == TOPIC_REGEX)
        regfree(&r->re);
    free(r->topic);
    for (size_t i = 0; i < r->nvars; i++) {
        free(r->vars[i].name);
        free_source(&r->vars[i].src);
    }
    free(r->vars);
    for (size_t i = 0; i < r->nconds; i++) {
        for (size_t j = 0; j < r->conds[i].nvalues; j++)
            free(r->conds[i].values[j]);
        free(r->conds[i].values);
        free(r->conds[i].lens);
    }
    free(r->conds);
    for (size_t i = 0; i < r->nchannels; i++)
        free_template(&r->channels[i]);
    free(r->channels);
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].name);
        free_source(&r->fields[i].src);
    }
    free(r->fields);
    free_template(&r->message);
}

/* Compiles one rule. Returns 0; -1 after adding (or, for cascades,
 * suppressing) errors; -2 when out of memory. */
static int compile_rule(compiler_t *c, const k2r_config_t *cfg, const k2r_rule_conf_t *rc,
                        rule_t *r) {
    int bad = 0;

    r->name = strdup(rc->name);
    r->on_error = rc->on_error;
    r->max_age_ms = rc->max_age_ms >= 0 ? rc->max_age_ms : cfg->limits.max_age_ms;
    r->escape = rc->escape;
    r->cont = rc->cont;
    r->topic_kind = TOPIC_EXACT;
    r->vars = calloc(rc->nvars ? rc->nvars : 1, sizeof(*r->vars));
    r->conds = calloc(rc->nconds ? rc->nconds : 1, sizeof(*r->conds));
    r->channels = calloc(rc->nchannels ? rc->nchannels : 1, sizeof(*r->channels));
    r->fields = calloc(rc->nfields ? rc->nfields : 1, sizeof(*r->fields));
    if (!r->name || !r->vars || !r->conds || !r->channels || !r->fields)
        return -2;
    bad |= compile_topic(c, cfg, rc, r) != 0;

    /* Variables first: templates, conditions and var: fields refer to them. */
    for (size_t i = 0; i < rc->nvars; i++) {
        char what[160];
        var_t *v = &r->vars[r->nvars];

        snprintf(what, sizeof(what), "%s", rc->vars[i].name);
        if (strcmp(rc->vars[i].name, "type") != 0 && strcmp(rc->vars[i].name, "id") != 0)
            snprintf(what, sizeof(what), "vars.%s", rc->vars[i].name);
        v->name = strdup(rc->vars[i].name);
        if (!v->name)
            return -2;
        r->nvars++;
        bad |= compile_source(c, &rc->vars[i].src, r, what, &v->src) != 0;
    }
    for (size_t i = 0; i < rc->nconds; i++) {
        const k2r_cond_conf_t *cc = &rc->conds[i];
        cond_t *cd = &r->conds[r->nconds];

        cd->var = find_var(r, cc->var, strlen(cc->var));
        if (cd->var < 0 && c->broken) {
            bad = 1;
            continue;
        }
        if (cd->var < 0) {
            char hint[256];
            var_hint(r, cc->var, strlen(cc->var), hint, sizeof(hint));
            cerr(c, cc->mark, "rules[%zu].when: unknown variable {%s}%s", c->ri, cc->var, hint);
            bad = 1;
            continue;
        }
        cd->op = cc->op;
        cd->values = calloc(cc->nvalues ? cc->nvalues : 1, sizeof(char *));
        cd->lens = calloc(cc->nvalues ? cc->nvalues : 1, sizeof(size_t));
        r->nconds++;
        if (!cd->values || !cd->lens)
            return -2;
        for (size_t j = 0; j < cc->nvalues; j++) {
            if (!(cd->values[j] = strdup(cc->values[j])))
                return -2;
            cd->lens[j] = strlen(cc->values[j]);
            cd->nvalues++;
        }
    }
    for (size_t i = 0; i < rc->nchannels; i++) {
        char what[64];
        int defaulted = rc->channel_marks[i].line == rc->mark.line &&
                        rc->channel_marks[i].col == rc->mark.col &&
                        strcmp(rc->channels[i], "events:{type}:{id}") == 0;

        if (rc->nchannels == 1)
            snprintf(what, sizeof(what), "channel");
        else
            snprintf(what, sizeof(what), "channels[%zu]", i);
        if (defaulted && (find_var(r, "type", 4) < 0 || find_var(r, "id", 2) < 0)) {
            bad = 1;
            if (c->broken)
                continue;
            cerr(c, rc->mark,
                 "rules[%zu]: the default channel \"events:{type}:{id}\" needs `type` and `id`; "
                 "set them or give channel:",
                 c->ri);
            continue;
        }
        bad |= compile_template(c, r, rc->channels[i], rc->channel_marks[i], what,
                                &r->channels[r->nchannels]) != 0;
        r->nchannels++;
    }
    if (rc->message) {
        r->has_message = 1;
        bad |= compile_template(c, r, rc->message, rc->message_mark, "message", &r->message) != 0;
    }
    for (size_t j = 0; j < rc->nfields; j++) {
        char what[64];
        field_t *f = &r->fields[r->nfields];

        snprintf(what, sizeof(what), "notification[%zu]", j);
        f->name = strdup(rc->fields[j].name);
        if (!f->name)
            return -2;
        f->name_len = strlen(f->name);
        r->nfields++;
        bad |= compile_source(c, &rc->fields[j].src, r, what, &f->src) != 0;
    }
    return bad ? -1 : 0;
}

k2r_rules_t *k2r_rules_new(const k2r_config_t *cfg, k2r_errors_t *errs) {
    compiler_t c = {cfg->path, errs, 0, 0};
    size_t nerrs = errs->count;
    k2r_rules_t *rules = calloc(1, sizeof(*rules));

    if (!rules || !(rules->rules = calloc(cfg->nrules ? cfg->nrules : 1, sizeof(rule_t)))) {
        free(rules);
        k2r_errors_add(errs, cfg->path, cfg->rules_mark, "rules: out of memory");
        return NULL;
    }
    rules->max_channel = (size_t)cfg->limits.max_channel_bytes;
    rules->max_notification = (size_t)cfg->limits.max_notification_bytes;
    for (size_t i = 0; i < cfg->nrules; i++) {
        const k2r_rule_conf_t *rc = &cfg->rules[i];
        rule_t *r;

        /* A rule the loader found incomplete already has its errors. */
        if (!rc->name || !rc->topic || !rc->nchannels)
            continue;
        c.ri = i;
        c.broken = rc->nbroken > 0;
        r = &rules->rules[rules->nrules++];
        if (compile_rule(&c, cfg, rc, r) == -2)
            k2r_errors_add(errs, cfg->path, rc->mark, "rules[%zu]: out of memory", i);
        if (r->nvars > rules->max_vars)
            rules->max_vars = r->nvars;
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
        free_rule(&rules->rules[i]);
    free(rules->rules);
    free(rules);
}

int k2r_rules_need_dead_letter(const k2r_rules_t *rules) {
    for (size_t i = 0; i < rules->nrules; i++)
        if (rules->rules[i].on_error == K2R_ON_ERROR_DEAD_LETTER)
            return 1;
    return 0;
}

size_t k2r_rules_count(const k2r_rules_t *rules) {
    return rules->nrules;
}

void k2r_rules_describe(const k2r_rules_t *rules, size_t i, char *out, size_t out_size) {
    static const char *const on_error_names[] = {"skip", "dead-letter", "stop"};
    const rule_t *r = &rules->rules[i];
    size_t n = 0;

#define emit(...)                                                                                  \
    do {                                                                                           \
        if (n < out_size) {                                                                        \
            int w_ = snprintf(out + n, out_size - n, __VA_ARGS__);                                 \
            n += w_ < 0 ? 0 : (size_t)w_;                                                          \
        }                                                                                          \
    } while (0)

    emit("rule %s: topic %s -> channel%s ", r->name, r->topic, r->nchannels > 1 ? "s" : "");
    for (size_t j = 0; j < r->nchannels; j++)
        emit("%s\"%s\"", j ? ", " : "", r->channels[j].text);
    emit(" (");
    for (size_t j = 0; j < r->nvars; j++)
        emit("%s%s=%s", j ? ", " : "", r->vars[j].name, r->vars[j].src.desc);
    emit(")");
    if (r->nconds)
        emit(", when %zu condition(s)", r->nconds);
    if (r->has_message) {
        emit(", message \"%s\"", r->message.text);
    } else {
        emit(", fields [");
        for (size_t j = 0; j < r->nfields; j++) {
            const field_t *f = &r->fields[j];
            if (strcmp(f->name, f->src.desc) == 0)
                emit("%s%s", j ? ", " : "", f->name);
            else
                emit("%s%s: %s", j ? ", " : "", f->name, f->src.desc);
        }
        emit("]");
    }
    if (r->on_error != K2R_ON_ERROR_SKIP)
        emit(", on_error %s", on_error_names[r->on_error]);
    if (r->max_age_ms > 0)
        emit(", max_age %lldms", (long long)r->max_age_ms);
    if (r->escape)
        emit(", unsafe escape");
    if (r->cont)
        emit(", continue");
#undef emit
}

/* --------------------------------------------------------------- mapping */

/* Per-record state shared by the rules tried on it. */
struct ctx_s {
    const k2r_rules_t *rules;
    const k2r_msg_t *msg;
    k2r_json_t *json;
    int parsed;     /* 0 not yet, 1 ok, -1 not JSON */
    int structured; /* -1 not yet known, else whether the value is a structured CloudEvent */
    /* The current rule's variables: 0 not evaluated, 1 evaluated. */
    unsigned char *done;
    k2r_value_t *vals;
    k2r_skip_t *verr; /* an evaluation error (NOT_JSON) per variable */
    char num[24];
};

static const k2r_header_t *find_header(const k2r_msg_t *msg, const char *name) {
    /* The last header of a name wins, as for HTTP-style overrides. */
    for (size_t i = msg->nheaders; i-- > 0;)
        if (msg->headers[i].name && strcmp(msg->headers[i].name, name) == 0)
            return &msg->headers[i];
    return NULL;
}

static int is_structured(ctx_t *x) {
    if (x->structured < 0) {
        const k2r_header_t *h = find_header(x->msg, "content-type");
        static const char ct[] = "application/cloudevents+json";
        x->structured = h && h->value && h->value_len >= sizeof(ct) - 1 &&
                        strncasecmp(h->value, ct, sizeof(ct) - 1) == 0;
    }
    return x->structured;
}

static int parse_value(ctx_t *x) {
    if (!x->parsed) {
        x->parsed = x->msg->value && k2r_json_parse(x->json, x->msg->value, x->msg->value_len) == 0
                        ? 1
                        : -1;
    }
    return x->parsed;
}

static k2r_skip_t eval_path(ctx_t *x, const source_t *s, k2r_value_t *v) {
    if (parse_value(x) < 0)
        return K2R_SKIP_NOT_JSON;
    k2r_json_get(x->json, is_structured(x) ? &s->ce_path : &s->path, v);
    return K2R_SKIP_NONE;
}

/* A header's value, as bytes; a header without a value is absent. */
static void header_value(const k2r_header_t *h, k2r_value_t *v) {
    if (h && h->value) {
        v->type = K2R_VALUE_STRING;
        v->str = h->value;
        v->len = h->value_len;
    }
}

static k2r_skip_t eval_header(ctx_t *x, const source_t *s, k2r_value_t *v) {
    header_value(find_header(x->msg, s->name), v);
    return K2R_SKIP_NONE;
}

static k2r_skip_t eval_meta(ctx_t *x, const source_t *s, k2r_value_t *v) {
    const k2r_msg_t *msg = x->msg;

    switch (s->meta) {
    case META_KEY:
        if (msg->key) {
            v->type = K2R_VALUE_STRING;
            v->str = msg->key;
            v->len = msg->key_len;
        }
        break;
    case META_TOPIC:
        string_value(msg->topic, v);
        break;
    case META_PARTITION:
        v->type = K2R_VALUE_INT;
        v->i = msg->partition;
        break;
    case META_OFFSET:
        v->type = K2R_VALUE_INT;
        v->i = msg->offset;
        break;
    default:
        if (msg->timestamp >= 0) {
            v->type = K2R_VALUE_INT;
            v->i = msg->timestamp;
        }
        break;
    }
    return K2R_SKIP_NONE;
}

static k2r_skip_t eval_const(ctx_t *x, const source_t *s, k2r_value_t *v) {
    (void)x;
    *v = s->cval;
    return K2R_SKIP_NONE;
}

/* Structured mode: a top-level member of the JSON value; binary mode: the
 * ce_<attribute> header. */
static k2r_skip_t eval_cloudevents(ctx_t *x, const source_t *s, k2r_value_t *v) {
    if (is_structured(x)) {
        if (parse_value(x) < 0)
            return K2R_SKIP_NOT_JSON;
        k2r_json_get(x->json, &s->path, v);
    } else {
        header_value(find_header(x->msg, s->name), v);
    }
    return K2R_SKIP_NONE;
}

/* Variables are resolved by get_var(), through the variable's own source. */
static k2r_skip_t eval_var(ctx_t *x, const source_t *s, k2r_value_t *v) {
    (void)x, (void)s, (void)v;
    return K2R_SKIP_NONE;
}

/* Evaluates a source into *v. Returns K2R_SKIP_NONE, or NOT_JSON when the
 * value had to be read and is not JSON. Absent values get their default. */
static k2r_skip_t eval_source(ctx_t *x, const source_t *s, k2r_value_t *v) {
    k2r_skip_t skip;

    memset(v, 0, sizeof(*v));
    skip = source_ops[s->kind].eval(x, s, v);
    if (skip != K2R_SKIP_NONE)
        return skip;
    if (v->type == K2R_VALUE_ABSENT && s->has_default)
        *v = s->dflt;
    return K2R_SKIP_NONE;
}

/* The value of variable i of rule r for this record (evaluated once). */
static k2r_skip_t get_var(ctx_t *x, const rule_t *r, int i, const k2r_value_t **out) {
    if (!x->done[i]) {
        x->verr[i] = eval_source(x, &r->vars[i].src, &x->vals[i]);
        x->done[i] = 1;
    }
    *out = &x->vals[i];
    return x->verr[i];
}

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

/* The text form of a scalar for conditions and templates; 0 when it has none. */
static int text_of(const k2r_value_t *v, char *num, size_t num_size, const char **s, size_t *len) {
    int n;

    switch (v->type) {
    case K2R_VALUE_STRING:
        *s = v->str;
        *len = v->len;
        return 1;
    case K2R_VALUE_INT:
        n = snprintf(num, num_size, "%" PRId64, v->i);
        break;
    case K2R_VALUE_UINT:
        n = snprintf(num, num_size, "%" PRIu64, v->u);
        break;
    case K2R_VALUE_BOOL:
        n = snprintf(num, num_size, "%s", v->b ? "true" : "false");
        break;
    default:
        return 0;
    }
    *s = num;
    *len = n < 0 ? 0 : (size_t)n;
    return 1;
}

/* A failure of one rule for this record. */
typedef struct fail_s {
    k2r_skip_t skip;
    char detail[200];
} fail_t;

static int fail(fail_t *f, k2r_skip_t skip, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(fail_t *f, k2r_skip_t skip, const char *fmt, ...) {
    va_list ap;

    f->skip = skip;
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
    va_end(ap);
    return -1;
}

static int not_json(ctx_t *x, fail_t *f) {
    return fail(f, K2R_SKIP_NOT_JSON, "value is not JSON: %s",
                x->msg->value ? k2r_json_error(x->json) : "the record has no value (tombstone)");
}

/* 1 when the rule's conditions hold, 0 when not, -1 on failure (in *f). */
static int conditions_hold(ctx_t *x, const rule_t *r, fail_t *f) {
    for (size_t i = 0; i < r->nconds; i++) {
        const cond_t *c = &r->conds[i];
        const k2r_value_t *v;
        const char *s = NULL;
        size_t len = 0;
        int present, found = 0;

        if (get_var(x, r, c->var, &v) != K2R_SKIP_NONE)
            return not_json(x, f);
        present = v->type != K2R_VALUE_ABSENT;
        if (present && text_of(v, x->num, sizeof(x->num), &s, &len))
            for (size_t j = 0; j < c->nvalues && !found; j++)
                found = c->lens[j] == len && memcmp(c->values[j], s, len) == 0;
        switch (c->op) {
        case K2R_COND_EXISTS:
            if (!present)
                return 0;
            break;
        case K2R_COND_ABSENT:
            if (present)
                return 0;
            break;
        case K2R_COND_EQUALS:
        case K2R_COND_IN:
            if (!found)
                return 0;
            break;
        case K2R_COND_NOT_EQUALS:
        case K2R_COND_NOT_IN:
            if (found)
                return 0;
            break;
        }
    }
    return 1;
}

/* Bytes that may not appear in a channel as part of a value. */
static int unsafe_byte(unsigned char c) {
    return c < 0x20 || c == 0x7f || c == ' ' || c == '*' || c == '?' || c == '[' || c == ']' ||
           c == ':' || c == '\\';
}

/*
 * Appends a variable's text to a channel: as is, or percent-escaped
 * (unsafe bytes, invalid UTF-8 and '%' itself become %XX), or refused.
 */
static int append_channel_value(const rule_t *r, const char *var, const char *s, size_t len,
                                k2r_buf_t *out, fail_t *f) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = p[i] < 0x80 ? 1 : k2r_utf8_char(p + i, len - i);
        int bad = n == 0 || (n == 1 && unsafe_byte(p[i]));

        if (!bad && !(r->escape && p[i] == '%')) {
            if (k2r_buf_append(out, p + i, n) != 0)
                return -2;
            i += n;
            continue;
        }
        if (!r->escape) {
            if (n == 0)
                return fail(f, K2R_SKIP_UNSAFE_CHARS, "%s: invalid UTF-8 at byte %zu", var, i);
            return fail(f, K2R_SKIP_UNSAFE_CHARS,
                        "%s: byte 0x%02x at %zu is not allowed in a channel (unsafe: escape would "
                        "write %%%02X)",
                        var, p[i], i, p[i]);
        }
        {
            char esc[4];
            snprintf(esc, sizeof(esc), "%%%02X", p[i]);
            if (k2r_buf_append(out, esc, 3) != 0)
                return -2;
            i++;
        }
    }
    return 0;
}

/* Renders a template into out. channel: values are checked as channel parts.
 * Returns 0, -1 on failure (in *f), -2 when out of memory. */
static int render(ctx_t *x, const rule_t *r, const tpl_t *t, int channel, k2r_buf_t *out,
                  fail_t *f) {
    for (size_t i = 0; i < t->nparts; i++) {
        const part_t *p = &t->parts[i];
        const k2r_value_t *v;
        const char *s;
        size_t len;
        int rc;

        if (p->var < 0) {
            if (k2r_buf_append(out, p->text, p->len) != 0)
                return -2;
            continue;
        }
        if (get_var(x, r, p->var, &v) != K2R_SKIP_NONE)
            return not_json(x, f);
        if (v->type == K2R_VALUE_ABSENT)
            return fail(f, K2R_SKIP_MISSING_FIELD, "%s (%s): missing", r->vars[p->var].name,
                        r->vars[p->var].src.desc);
        if ((v->type != K2R_VALUE_STRING && v->type != K2R_VALUE_INT &&
             v->type != K2R_VALUE_UINT) ||
            !text_of(v, x->num, sizeof(x->num), &s, &len))
            return fail(f, K2R_SKIP_WRONG_TYPE, "%s (%s): expected a string or integer, found %s",
                        r->vars[p->var].name, r->vars[p->var].src.desc, value_kind(v->type));
        if (len == 0 && channel)
            return fail(f, K2R_SKIP_EMPTY_VALUE, "%s (%s): empty string", r->vars[p->var].name,
                        r->vars[p->var].src.desc);
        if (channel)
            rc = append_channel_value(r, r->vars[p->var].name, s, len, out, f);
        else
            rc = k2r_buf_append(out, s, len) != 0 ? -2 : 0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Adds one value to the notification object; -1 on failure (in *f), -2 on OOM. */
static int add_field(ctx_t *x, const rule_t *r, const field_t *fd, json_t *obj, fail_t *f) {
    k2r_value_t val;
    const k2r_value_t *v = &val;
    json_t *j;

    if (fd->src.kind == K2R_SOURCE_VAR) {
        if (get_var(x, r, fd->src.var, &v) != K2R_SKIP_NONE)
            return not_json(x, f);
    } else if (eval_source(x, &fd->src, &val) != K2R_SKIP_NONE) {
        return not_json(x, f);
    }
    switch (v->type) {
    case K2R_VALUE_ABSENT:
        return 0; /* an absent field is left out of the notification */
    case K2R_VALUE_STRING:
        /* Values from the JSON are valid UTF-8 already; headers and keys may not be. */
        j = fd->src.kind == K2R_SOURCE_PATH ? json_stringn_nocheck(v->str, v->len)
                                            : json_stringn(v->str, v->len);
        if (!j && fd->src.kind != K2R_SOURCE_PATH)
            return fail(f, K2R_SKIP_WRONG_TYPE, "notification field %s (%s): not valid UTF-8",
                        fd->name, fd->src.desc);
        break;
    case K2R_VALUE_INT:
        j = json_integer((json_int_t)v->i);
        break;
    case K2R_VALUE_UINT:
        j = json_real((double)v->u);
        break;
    case K2R_VALUE_DOUBLE:
        j = json_real(v->d);
        break;
    case K2R_VALUE_BOOL:
        j = json_boolean(v->b);
        break;
    case K2R_VALUE_NULL:
        j = json_null();
        break;
    default:
        return fail(f, K2R_SKIP_WRONG_TYPE,
                    "notification field %s (%s): expected a scalar, found %s", fd->name,
                    fd->src.desc, value_kind(v->type));
    }
    if (!j || json_object_setn_new_nocheck(obj, fd->name, fd->name_len, j) != 0)
        return -2;
    return 0;
}

/* Appends the notification of rule r. Returns 0, -1 on failure, -2 on OOM. */
static int notification(ctx_t *x, const rule_t *r, k2r_buf_t *out, fail_t *f) {
    size_t start = out->len, need;
    json_t *obj;
    int rc;

    if (r->has_message) {
        rc = render(x, r, &r->message, 0, out, f);
    } else {
        obj = json_object();
        if (!obj)
            return -2;
        rc = 0;
        for (size_t i = 0; i < r->nfields && rc == 0; i++)
            rc = add_field(x, r, &r->fields[i], obj, f);
        if (rc == 0) {
            need = json_dumpb(obj, NULL, 0, JSON_COMPACT);
            if (need == 0 || k2r_buf_reserve(out, need) != 0)
                rc = -2;
            else
                out->len += json_dumpb(obj, out->data + out->len, need, JSON_COMPACT);
        }
        json_decref(obj);
    }
    if (rc == 0 && out->len - start > x->rules->max_notification)
        rc = fail(f, K2R_SKIP_TOO_LARGE, "notification would be %zu bytes (limit %zu)",
                  out->len - start, x->rules->max_notification);
    return rc;
}

static int topic_matches(const rule_t *r, const char *topic) {
    switch (r->topic_kind) {
    case TOPIC_GLOB:
        return fnmatch(r->topic, topic, 0) == 0;
    case TOPIC_REGEX:
        return regexec(&r->re, topic, 0, NULL, 0) == 0;
    default:
        return strcmp(r->topic, topic) == 0;
    }
}

static k2r_action_t action_of(k2r_on_error_t on_error) {
    return on_error == K2R_ON_ERROR_STOP          ? K2R_ACTION_STOP
           : on_error == K2R_ON_ERROR_DEAD_LETTER ? K2R_ACTION_DEAD_LETTER
                                                  : K2R_ACTION_SKIP;
}

/*
 * Applies one rule whose topic and conditions matched: channels, then the
 * notification. Appends publishes to *m. Returns 0, -1 on failure, -2 on OOM;
 * on failure nothing of this rule stays in `out` or *m.
 */
static int apply(ctx_t *x, const rule_t *r, k2r_buf_t *out, k2r_mapping_t *m, fail_t *f) {
    size_t start = out->len, first = m->npublish, msg_off;
    int rc = 0;

    if (m->npublish + r->nchannels > K2R_FANOUT_MAX)
        return fail(f, K2R_SKIP_TOO_LARGE, "more than %d channels for one record", K2R_FANOUT_MAX);
    /* Channels first: a record that cannot name its channel fails on that. */
    for (size_t i = 0; i < r->nchannels && rc == 0; i++) {
        size_t ch_off = out->len;

        rc = render(x, r, &r->channels[i], 1, out, f);
        if (rc == 0 && out->len - ch_off > x->rules->max_channel)
            rc = fail(f, K2R_SKIP_TOO_LONG, "channel would be %zu bytes (limit %zu)",
                      out->len - ch_off, x->rules->max_channel);
        if (rc == 0) {
            m->publish[m->npublish].rule = r->name;
            m->publish[m->npublish].on_error = r->on_error;
            m->publish[m->npublish].max_age_ms = r->max_age_ms;
            m->publish[m->npublish].channel_off = ch_off;
            m->publish[m->npublish].channel_len = out->len - ch_off;
            m->npublish++;
        }
    }
    msg_off = out->len;
    if (rc == 0)
        rc = notification(x, r, out, f);
    for (size_t i = first; i < m->npublish && rc == 0; i++) {
        m->publish[i].message_off = msg_off;
        m->publish[i].message_len = out->len - msg_off;
    }
    if (rc != 0) {
        out->len = start;
        m->npublish = first;
    }
    return rc;
}

int k2r_rules_map(const k2r_rules_t *rules, k2r_json_t *json, const k2r_msg_t *msg, k2r_buf_t *out,
                  k2r_mapping_t *m) {
    unsigned char done_small[32];
    k2r_value_t vals_small[32];
    k2r_skip_t verr_small[32];
    ctx_t x = {rules, msg, json, 0, -1, done_small, vals_small, verr_small, {0}};
    int topic_matched = 0, rc = 0;
    size_t start = out->len;

    m->rule = NULL;
    m->skip = K2R_SKIP_NONE;
    m->action = K2R_ACTION_NONE;
    m->detail[0] = '\0';
    m->npublish = 0;
    if (rules->max_vars > 32) {
        x.done = malloc(rules->max_vars);
        x.vals = malloc(rules->max_vars * sizeof(*x.vals));
        x.verr = malloc(rules->max_vars * sizeof(*x.verr));
        if (!x.done || !x.vals || !x.verr) {
            rc = -1;
            goto done;
        }
    }

    for (size_t i = 0; i < rules->nrules; i++) {
        const rule_t *r = &rules->rules[i];
        fail_t f = {K2R_SKIP_NONE, {0}};
        int held;

        if (!topic_matches(r, msg->topic))
            continue;
        topic_matched = 1;
        memset(x.done, 0, r->nvars ? r->nvars : 1);
        held = conditions_hold(&x, r, &f);
        if (held == 1) {
            int arc = apply(&x, r, out, m, &f);
            if (arc == -2) {
                rc = -1;
                goto done;
            }
            held = arc == 0 ? 1 : -1;
            if (held == 1 && !m->rule)
                m->rule = r->name;
        }
        if (held < 0) {
            k2r_action_t a = action_of(r->on_error);
            /* The most severe failure is the one reported: stop, dead-letter, skip. */
            if (a > m->action) {
                m->action = a;
                m->skip = f.skip;
                m->rule = r->name;
                snprintf(m->detail, sizeof(m->detail), "%s", f.detail);
            }
        }
        if (held != 0 && !r->cont)
            break;
    }
    if (m->npublish == 0 && m->action == K2R_ACTION_NONE) {
        m->action = K2R_ACTION_SKIP;
        if (topic_matched) {
            m->skip = K2R_SKIP_NO_MATCH;
            snprintf(m->detail, sizeof(m->detail), "no rule's conditions hold for this record");
        } else {
            m->skip = K2R_SKIP_NO_RULE;
            snprintf(m->detail, sizeof(m->detail), "no rule for topic %s", msg->topic);
        }
    }
    if (m->action == K2R_ACTION_STOP) {
        /* Nothing of a record that stops its partition is published. */
        m->npublish = 0;
        out->len = start;
    }
done:
    if (x.done != done_small) {
        free(x.done);
        free(x.vals);
        free(x.verr);
    }
    return rc;
}
