/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.c - compiling the configured rules: config in, compiled rules out.
 *
 * Everything a rule says is compiled once, at load: topic patterns (exact,
 * glob or POSIX regex), every variable's source (a record path, a header, a
 * Kafka coordinate, a constant, a CloudEvents attribute) with its default,
 * `when:` conditions resolved to variable indexes, channel and message
 * templates split into literal and variable parts, notification fields. A
 * mistake is reported at the file position of the key at fault, with a
 * suggestion where one is near, and every mistake of the file at once.
 *
 * Not here: reading YAML (config.c), or what a compiled rule does to a record
 * (map.c, which reads the types of rules_int.h that this file fills). The
 * source kinds' table, k2r__source_ops, is defined here with their compile
 * functions; rules_int.h says why. This file does no I/O.
 */
#include "k2r/rules.h"

#include <assert.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* ------------------------------------------------------------ compiling */

struct compiler_s {
    const char *file;
    k2r_errors_t *errs;
    size_t ri;  /* the rule being compiled, for messages */
    int broken; /* the rule has variables the loader refused: an unknown
                   variable is then most likely one of those, already reported */
};

#define cerr(c, mark, ...) k2r_errors_add((c)->errs, (c)->file, (mark), __VA_ARGS__)

/* Parses the text of a plain integer written in YAML. */
static void int_value(const char *s, k2r_value_t *v) {
    v->type = K2R_VALUE_INT;
    v->i = strtoll(s, NULL, 10);
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
        k2r__string_value(s->cstr, &s->cval);
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

/* One row per source kind; rules_int.h says why the table is defined here. */
const source_ops_t k2r__source_ops[K2R_SOURCE_COUNT] = {
    [K2R_SOURCE_PATH] = {compile_path, k2r__eval_path},
    [K2R_SOURCE_HEADER] = {compile_header, k2r__eval_header},
    [K2R_SOURCE_META] = {compile_meta, k2r__eval_meta},
    [K2R_SOURCE_CONST] = {compile_const, k2r__eval_const},
    [K2R_SOURCE_CLOUDEVENTS] = {compile_cloudevents, k2r__eval_cloudevents},
    [K2R_SOURCE_VAR] = {compile_var, k2r__eval_var},
};

static int compile_source(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r,
                          const char *what, source_t *s) {
    char desc[300];

    assert(sc->kind < K2R_SOURCE_COUNT && k2r__source_ops[sc->kind].compile);
    s->kind = sc->kind;
    s->var = -1;
    if (k2r__source_ops[sc->kind].compile(c, sc, r, what, s, desc, sizeof(desc)) != 0)
        return -1;
    if (sc->dflt) {
        s->has_default = 1;
        s->dstr = strdup(sc->dflt);
        if (!s->dstr)
            return -1;
        if (sc->dflt_is_int)
            int_value(s->dstr, &s->dflt);
        else
            k2r__string_value(s->dstr, &s->dflt);
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
        free(r->fields[i].key);
        free_source(&r->fields[i].src);
    }
    free(r->fields);
    free_template(&r->message);
}

/* Compiles one rule. Returns 0; -1 after adding (or, for cascades,
 * suppressing) errors; K2R_ERR_NOMEM when out of memory. */
static int compile_rule(compiler_t *c, const k2r_config_t *cfg, const k2r_rule_conf_t *rc,
                        rule_t *r) {
    int bad = 0;

    r->name = strdup(rc->name);
    r->on_error = rc->on_error;
    r->max_age_ms = rc->max_age_ms >= 0 ? rc->max_age_ms : cfg->limits.max_age_ms;
    r->history_maxlen = rc->history_maxlen;
    r->history_ttl_ms = rc->history_ttl_ms;
    r->escape = rc->escape;
    r->cont = rc->cont;
    r->topic_kind = TOPIC_EXACT;
    r->vars = calloc(rc->nvars ? rc->nvars : 1, sizeof(*r->vars));
    r->conds = calloc(rc->nconds ? rc->nconds : 1, sizeof(*r->conds));
    r->channels = calloc(rc->nchannels ? rc->nchannels : 1, sizeof(*r->channels));
    r->fields = calloc(rc->nfields ? rc->nfields : 1, sizeof(*r->fields));
    if (!r->name || !r->vars || !r->conds || !r->channels || !r->fields)
        return K2R_ERR_NOMEM;
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
            return K2R_ERR_NOMEM;
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
            return K2R_ERR_NOMEM;
        for (size_t j = 0; j < cc->nvalues; j++) {
            if (!(cd->values[j] = strdup(cc->values[j])))
                return K2R_ERR_NOMEM;
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
            return K2R_ERR_NOMEM;
        r->nfields++;
        {
            /* Quoted once here instead of for every record (3-4 % of the
             * CPU a small record costs, callgrind). */
            k2r_buf_t key = {0};
            if (k2r__json_string(&key, f->name, strlen(f->name)) != 0 ||
                k2r_buf_append(&key, ":", 1) != 0) {
                k2r_buf_free(&key);
                return K2R_ERR_NOMEM;
            }
            f->key = key.data;
            f->key_len = key.len;
        }
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
        if (compile_rule(&c, cfg, rc, r) == K2R_ERR_NOMEM)
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

const char *k2r_rules_name(const k2r_rules_t *rules, size_t i, k2r_action_t *action) {
    const rule_t *r = &rules->rules[i];

    *action = r->on_error == K2R_ON_ERROR_SKIP          ? K2R_ACTION_SKIP
              : r->on_error == K2R_ON_ERROR_DEAD_LETTER ? K2R_ACTION_DEAD_LETTER
                                                        : K2R_ACTION_STOP;
    return r->name;
}

void k2r_rules_describe(const k2r_rules_t *rules, size_t i, char *out, size_t out_size) {
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
        emit(", on_error %s", k2r_on_error_name(r->on_error));
    if (r->max_age_ms > 0)
        emit(", max_age %lldms", (long long)r->max_age_ms);
    if (r->history_maxlen > 0)
        emit(", history %u entries%s", (unsigned)r->history_maxlen,
             r->history_ttl_ms > 0 ? " with a ttl" : "");
    if (r->escape)
        emit(", unsafe escape");
    if (r->cont)
        emit(", continue");
#undef emit
}
