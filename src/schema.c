/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema.c - the JSON Schema of bridge.yaml, generated from the settings
 * table and the rule grammar's tables (see schema.h for what it is not).
 *
 * The scalar sections are walked row by row: a dotted name becomes nested
 * objects (redis.tls.ca_file), each closed to unknown keys as the loader is;
 * the row's type gives the JSON type, range and choices; its default, its
 * environment variables, whether a reload applies it and its description
 * become the property's "default" and "description", which editors show.
 * A setting that is required but may come from the environment
 * (kafka.brokers) is not "required" here: the file may leave it out. A
 * typed value (integer, duration, boolean, choice) may instead be a
 * ${env:}/${file:} reference ("definitions/reference"), as the loader
 * resolves those first.
 *
 * The rules are a language, so their schema is written here, against the
 * loader's own tables: the keys of a rule (k2r_rule_keys), the source kinds
 * and which of them take a default (k2r_source_syntax), and the on_error and
 * unsafe words; a key the loader gained and this file has not yet is taken
 * as anything. The ranges of history.maxlen and history.ttl are the
 * loader's (config.c: history_pair), written again here. Rule values refuse
 * what looks like a reference, as the loader does. Draft-07, the draft
 * editors support best; "$ref" never has siblings (draft-07 ignores them).
 */
#include "k2r/schema.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/config.h"

/* A rule variable's name, as the loader's valid_name() takes it. */
#define NAME_PATTERN "^[A-Za-z_][A-Za-z0-9_]*$"
/* A duration other than 0 (clock.c: k2r_parse_duration). */
#define DURATION_PATTERN "^([0-9]+(ms|s|m|h)|0)$"
/* A settings value with a config provider's reference in it
 * (k2r_config_resolve): ${env:NAME} or ${file:/path}, closed, not after a
 * `$` that makes it literal ($${...}). */
#define REFERENCE_PATTERN "(^|[^$])(\\$\\$)*\\$\\{(env|file):[^}]+\\}"
/* What the loader refuses anywhere in a rule: rules are not resolved. */
#define RULE_REFERENCE_PATTERN "\\$\\{(env|file):"

/* The build state: a failed allocation anywhere makes the result NULL. */
typedef struct build_s {
    int nomem;
} build_t;

/* Sets o[key] = v (taking v, also when it fails: jansson's _new functions
 * release the value then, and take NULL); remembers a failure. Returns v,
 * borrowed, or NULL. */
static json_t *put(build_t *b, json_t *o, const char *key, json_t *v) {
    if (!v || json_object_set_new(o, key, v) != 0) {
        b->nomem = 1;
        return NULL;
    }
    return v;
}

/* Appends v to array a (taking v, as put does); remembers a failure. */
static void push(build_t *b, json_t *a, json_t *v) {
    if (!v || json_array_append_new(a, v) != 0)
        b->nomem = 1;
}

/* {"type": "string", "minLength": 1}: the loader refuses empty strings. */
static json_t *nonempty_string(build_t *b) {
    json_t *o = json_object();

    put(b, o, "type", json_string("string"));
    put(b, o, "minLength", json_integer(1));
    return o;
}

/* A scalar as constants, defaults and conditions take it: any but null. */
static json_t *scalar(build_t *b) {
    json_t *o = json_object(), *types = put(b, o, "type", json_array());

    push(b, types, json_string("string"));
    push(b, types, json_string("number"));
    push(b, types, json_string("boolean"));
    return o;
}

/* Schema o, refusing what looks like a reference: a rule's values go into
 * channels and notifications, so the loader does not resolve them. */
static json_t *no_reference(build_t *b, json_t *o) {
    json_t *no = put(b, o, "not", json_object());

    /* "type" too: a pattern alone holds for a number, and "not" would refuse it. */
    put(b, no, "type", json_string("string"));
    put(b, no, "pattern", json_string(RULE_REFERENCE_PATTERN));
    return o;
}

/* A rule's non-empty string, and a rule's scalar. */
static json_t *rule_string(build_t *b) {
    return no_reference(b, nonempty_string(b));
}

static json_t *rule_scalar(build_t *b) {
    return no_reference(b, scalar(b));
}

/* {"$ref": "#/definitions/NAME"} */
static json_t *ref(build_t *b, const char *name) {
    char target[96];
    json_t *o = json_object();

    snprintf(target, sizeof(target), "#/definitions/%s", name);
    put(b, o, "$ref", json_string(target));
    return o;
}

/* {"type": "object" or ["object", "null"], "additionalProperties": false,
 * "properties": {}}; a null mapping is an empty one to the loader. */
static json_t *closed_object(build_t *b, int nullable) {
    json_t *o = json_object();

    if (nullable) {
        json_t *types = put(b, o, "type", json_array());
        push(b, types, json_string("object"));
        push(b, types, json_string("null"));
    } else {
        put(b, o, "type", json_string("object"));
    }
    put(b, o, "additionalProperties", json_false());
    put(b, o, "properties", json_object());
    return o;
}

/* Milliseconds in the largest unit that divides them, as the reference writes them. */
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

/* A duration: "500ms", "30s", "5m", "1h", or 0 (also written as a number). */
static json_t *duration(build_t *b) {
    json_t *o = json_object(), *any = put(b, o, "anyOf", json_array()), *s = json_object(),
           *zero = json_object(), *zeros = put(b, zero, "enum", json_array());

    put(b, s, "type", json_string("string"));
    put(b, s, "pattern", json_string(DURATION_PATTERN));
    push(b, zeros, json_integer(0));
    push(b, any, s);
    push(b, any, zero);
    return o;
}

/* Schema o, or a ${env:}/${file:} reference, which the loader resolves before
 * it reads the value by its type: o's "anyOf" gains the reference, or o
 * becomes the first of two. Returns the schema that stands for both. */
static json_t *or_reference(build_t *b, json_t *o) {
    json_t *any = json_object_get(o, "anyOf"), *both;

    if (any) {
        push(b, any, ref(b, "reference"));
        return o;
    }
    both = json_object();
    any = put(b, both, "anyOf", json_array());
    push(b, any, o);
    push(b, any, ref(b, "reference"));
    return both;
}

/* The JSON value of a row's default as written in YAML ("30s", "512", "true"). */
static json_t *default_value(const k2r_setting_t *s) {
    switch (s->type) {
    case K2R_SETTING_INT:
        return json_integer(strtoll(s->dflt, NULL, 10));
    case K2R_SETTING_BOOL:
        return json_boolean(strcmp(s->dflt, "true") == 0);
    case K2R_SETTING_DURATION:
        return strcmp(s->dflt, "0") == 0 ? json_integer(0) : json_string(s->dflt);
    default:
        return json_string(s->dflt);
    }
}

/* The row's description with what editors should show beside it: the range
 * a schema cannot hold for durations, the environment, reload or restart. */
static json_t *description(const k2r_setting_t *s) {
    char text[1024], lo[32], hi[32];
    size_t n = (size_t)snprintf(text, sizeof(text), "%s.", s->description);

    if (s->type == K2R_SETTING_DURATION && n < sizeof(text)) {
        format_ms(lo, sizeof(lo), s->min);
        format_ms(hi, sizeof(hi), s->max);
        n += (size_t)snprintf(text + n, sizeof(text) - n, " A duration from %s to %s.", lo, hi);
    }
    for (const k2r_setting_env_t *e = s->env; e && e->name && n < sizeof(text); e++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s",
                              e == s->env ? " Environment: " : ", ", e->name);
        if (e->file && n < sizeof(text))
            n += (size_t)snprintf(text + n, sizeof(text) - n, " or %s (a file)", e->file);
        if (e->property && n < sizeof(text))
            n += (size_t)snprintf(text + n, sizeof(text) - n, " for %s", e->property);
    }
    if (s->env && s->env->name && n < sizeof(text))
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s",
                              s->flags & K2R_SETTING_ENV_AT_RUN ? " (applied by run)." : ".");
    if (n < sizeof(text))
        snprintf(text + n, sizeof(text) - n, "%s",
                 s->type == K2R_SETTING_RULES ? ""
                 : s->flags & K2R_SETTING_RESTART
                     ? " Takes a restart (a reload keeps the running value)."
                     : " A reload applies it.");
    return json_string(text);
}

/* The schema of one row's value, by its type. */
static json_t *setting(build_t *b, const k2r_setting_t *s) {
    json_t *o = NULL;

    switch (s->type) {
    case K2R_SETTING_STRING:
    case K2R_SETTING_SECRET:
        o = nonempty_string(b);
        break;
    case K2R_SETTING_INT:
        o = json_object();
        put(b, o, "type", json_string("integer"));
        put(b, o, "minimum", json_integer(s->min));
        put(b, o, "maximum", json_integer(s->max));
        break;
    case K2R_SETTING_DURATION:
        o = duration(b);
        break;
    case K2R_SETTING_BOOL:
        o = json_object();
        put(b, o, "type", json_string("boolean"));
        break;
    case K2R_SETTING_CHOICE: {
        json_t *words;

        o = json_object();
        put(b, o, "type", json_string("string"));
        words = put(b, o, "enum", json_array());
        for (size_t i = 0; s->choices[i]; i++)
            push(b, words, json_string(s->choices[i]));
        break;
    }
    case K2R_SETTING_LIST: {
        /* One item may be written as a scalar. */
        json_t *any, *list;

        o = json_object();
        any = put(b, o, "anyOf", json_array());
        push(b, any, nonempty_string(b));
        list = json_object();
        put(b, list, "type", json_string("array"));
        put(b, list, "minItems", json_integer(1));
        put(b, list, "items", nonempty_string(b));
        push(b, any, list);
        break;
    }
    case K2R_SETTING_MAP: {
        /* librdkafka checks names and values itself. */
        json_t *types;

        o = json_object();
        types = put(b, o, "type", json_array());
        push(b, types, json_string("object"));
        push(b, types, json_string("null"));
        put(b, o, "additionalProperties", scalar(b));
        break;
    }
    case K2R_SETTING_RULES:
        o = json_object();
        put(b, o, "type", json_string("array"));
        put(b, o, "minItems", json_integer(1));
        put(b, o, "items", ref(b, "rule"));
        break;
    }
    /* Settings values, not rules, may come from config providers. */
    if (s->type == K2R_SETTING_INT || s->type == K2R_SETTING_DURATION ||
        s->type == K2R_SETTING_BOOL || s->type == K2R_SETTING_CHOICE)
        o = or_reference(b, o);
    put(b, o, "description", description(s));
    if (s->dflt)
        put(b, o, "default", default_value(s));
    return o;
}

/* Appends `name` to o["required"], making the list when it is the first. */
static void require(build_t *b, json_t *o, const char *name) {
    json_t *req = json_object_get(o, "required");

    if (!req)
        req = put(b, o, "required", json_array());
    push(b, req, json_string(name));
}

/* 1 when the file itself must give row s: required, and no environment override. */
static int file_requires(const k2r_setting_t *s) {
    return (s->flags & K2R_SETTING_REQUIRED) && !(s->env && s->env->name);
}

/* Places row s under root's properties along its dotted name. */
static void place(build_t *b, json_t *root, const k2r_setting_t *s, const k2r_setting_t *all,
                  size_t n) {
    json_t *parent = root;
    const char *word = s->name;

    for (const char *dot; (dot = strchr(word, '.')) != NULL; word = dot + 1) {
        char key[64];
        json_t *props = json_object_get(parent, "properties"), *child;

        snprintf(key, sizeof(key), "%.*s", (int)(dot - word), word);
        child = json_object_get(props, key);
        if (!child) {
            /* A section that holds a setting the file must give must be a
             * mapping; the others may be left empty (null). */
            size_t plen = (size_t)(dot - s->name);
            int needed = 0;

            for (size_t i = 0; i < n; i++)
                needed |= file_requires(&all[i]) && strncmp(all[i].name, s->name, plen + 1) == 0;
            child = put(b, props, key, closed_object(b, !needed));
            if (needed)
                require(b, parent, key);
        }
        if (!child)
            return;
        parent = child;
    }
    put(b, json_object_get(parent, "properties"), word, setting(b, s));
    if (file_requires(s))
        require(b, parent, word);
}

/* A settings value from a config provider: ${env:NAME}, ${file:/path}. */
static json_t *reference(build_t *b) {
    json_t *o = json_object();

    put(b, o, "type", json_string("string"));
    put(b, o, "pattern", json_string(REFERENCE_PATTERN));
    put(b, o, "description",
        json_string("${env:NAME} or ${file:/path}, resolved when the config is loaded "
                    "(settings only, not rules)."));
    return o;
}

/* A source: a path, or a mapping with one kind (plus `default:` where the
 * kind takes one). with_var: notification fields may read a variable. */
static json_t *source(build_t *b, int with_var) {
    json_t *o = json_object(), *any = put(b, o, "anyOf", json_array()), *path = rule_string(b),
           *map = closed_object(b, 0), *props = json_object_get(map, "properties"), *one;

    put(b, path, "description",
        json_string("a path into the record's JSON value (dotted; a "
                    "segment of digits indexes an array)"));
    push(b, any, path);
    one = put(b, map, "oneOf", json_array());
    for (int k = 0; k < K2R_SOURCE_COUNT; k++) {
        const k2r_source_syntax_t *syn = &k2r_source_syntax[k];
        json_t *arg, *kind, *req;

        if (k == K2R_SOURCE_VAR && !with_var)
            continue;
        if (syn->scalar_arg) {
            arg = rule_scalar(b);
        } else if (syn->args) {
            json_t *words;

            arg = json_object();
            put(b, arg, "type", json_string("string"));
            words = put(b, arg, "enum", json_array());
            for (const char *const *a = syn->args; *a; a++)
                push(b, words, json_string(*a));
        } else {
            arg = rule_string(b);
        }
        put(b, props, syn->key, arg);
        /* Exactly one kind: each branch requires its own key. */
        kind = json_object();
        req = put(b, kind, "required", json_array());
        push(b, req, json_string(syn->key));
        if (!syn->takes_default) {
            json_t *no = put(b, kind, "not", json_object());
            push(b, put(b, no, "required", json_array()), json_string("default"));
        }
        push(b, one, kind);
    }
    put(b, props, "default", rule_scalar(b));
    push(b, any, map);
    return o;
}

/* One `when:` condition: a value, or {equals|not: V}, {in|not_in: [..]}, {exists: bool}. */
static json_t *condition(build_t *b) {
    static const char *const ops[] = {"equals", "not", "in", "not_in", "exists"};
    json_t *o = json_object(), *any = put(b, o, "anyOf", json_array()), *map = closed_object(b, 0),
           *props = json_object_get(map, "properties");

    push(b, any, rule_scalar(b));
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        json_t *v;

        if (strcmp(ops[i], "in") == 0 || strcmp(ops[i], "not_in") == 0) {
            v = json_object();
            put(b, v, "type", json_string("array"));
            put(b, v, "minItems", json_integer(1));
            put(b, v, "items", rule_scalar(b));
        } else if (strcmp(ops[i], "exists") == 0) {
            v = json_object();
            put(b, v, "type", json_string("boolean"));
        } else {
            v = rule_scalar(b);
        }
        put(b, props, ops[i], v);
    }
    put(b, map, "minProperties", json_integer(1));
    put(b, map, "maxProperties", json_integer(1));
    push(b, any, map);
    return o;
}

/* One entry of `notification:`: a path (the key is the path) or {key: source}. */
static json_t *field(build_t *b) {
    json_t *o = json_object(), *any = put(b, o, "anyOf", json_array()), *map = json_object();

    push(b, any, rule_string(b));
    put(b, map, "type", json_string("object"));
    put(b, map, "minProperties", json_integer(1));
    put(b, map, "maxProperties", json_integer(1));
    put(b, map, "propertyNames", nonempty_string(b));
    put(b, map, "additionalProperties", ref(b, "field_source"));
    push(b, any, map);
    return o;
}

/* A mapping keyed by variable names, each value of schema `value` (taken). */
static json_t *by_variable(build_t *b, json_t *value) {
    json_t *o = json_object(), *types = put(b, o, "type", json_array()), *names = json_object();

    push(b, types, json_string("object"));
    push(b, types, json_string("null"));
    put(b, names, "pattern", json_string(NAME_PATTERN));
    put(b, o, "propertyNames", names);
    put(b, o, "additionalProperties", value);
    return o;
}

/* One word list as an "enum" of strings, from `words` (n of them, or NULL-terminated when n is 0).
 */
static json_t *words_enum(build_t *b, const char *const *words, size_t n) {
    json_t *o = json_object(), *list;

    put(b, o, "type", json_string("string"));
    list = put(b, o, "enum", json_array());
    for (size_t i = 0; n ? i < n : words[i] != NULL; i++)
        push(b, list, json_string(words[i]));
    return o;
}

/* A rule's history: {maxlen: N, ttl: D}; maxlen required (a null is none). */
static json_t *history(build_t *b) {
    json_t *o = closed_object(b, 1), *props = json_object_get(o, "properties"), *v;

    v = json_object();
    put(b, v, "type", json_string("integer"));
    put(b, v, "minimum", json_integer(1));
    put(b, v, "maximum", json_integer(1000000));
    put(b, v, "description", json_string("How many entries the stream keeps (XADD MAXLEN ~)."));
    put(b, props, "maxlen", v);
    v = duration(b);
    put(b, v, "description",
        json_string("The stream expires this long after its last entry; unset: never. A "
                    "duration from 1s to 8760h."));
    put(b, props, "ttl", v);
    require(b, o, "maxlen");
    return o;
}

/* Sets the schema of rule key `key` (taking value), with its description;
 * a reference goes under allOf, as draft-07 ignores what stands beside one. */
static void rule_key(build_t *b, json_t *props, const char *key, json_t *value, const char *text) {
    if (value && json_object_get(value, "$ref")) {
        json_t *wrap = json_object();

        push(b, put(b, wrap, "allOf", json_array()), value);
        value = wrap;
    }
    if (put(b, props, key, value))
        put(b, value, "description", json_string(text));
}

static json_t *rule(build_t *b) {
    const char *on_error[K2R_ON_ERROR_COUNT];
    const k2r_setting_t *max_age = k2r_setting_find("limits.max_age");
    json_t *o = closed_object(b, 0), *props = json_object(), *all, *v;
    char text[256], hi[32];

    for (int i = 0; i < K2R_ON_ERROR_COUNT; i++)
        on_error[i] = k2r_on_error_name((k2r_on_error_t)i);
    v = rule_string(b);
    put(b, v, "maxLength", json_integer(K2R_RULE_NAME_MAX));
    rule_key(b, props, "name", v,
             "Unique; it travels in dead-letter headers, logs and metric labels.");
    rule_key(b, props, "topic", rule_string(b),
             "Which records: an exact topic (among kafka.topics), a glob (*, ?, [) or a ^regex.");
    rule_key(b, props, "type", ref(b, "source"), "The variable {type}.");
    rule_key(b, props, "id", ref(b, "source"), "The variable {id}.");
    rule_key(b, props, "vars", by_variable(b, ref(b, "source")),
             "More variables, by name ([A-Za-z_][A-Za-z0-9_]*).");
    rule_key(b, props, "when", by_variable(b, ref(b, "condition")),
             "Conditions on variables, all of which must hold.");
    rule_key(b, props, "channel", rule_string(b),
             "The channel template, e.g. events:{type}:{id} (the default).");
    v = json_object();
    put(b, v, "type", json_string("array"));
    put(b, v, "minItems", json_integer(1));
    put(b, v, "items", rule_string(b));
    rule_key(b, props, "channels", v, "Several channel templates (instead of channel).");
    v = json_object();
    put(b, v, "type", json_string("array"));
    put(b, v, "minItems", json_integer(1));
    put(b, v, "items", ref(b, "field"));
    rule_key(b, props, "notification", v,
             "The notification's fields, in order: a path, or {key: source} (default: id, type, "
             "source_id).");
    rule_key(b, props, "message", rule_string(b),
             "A plain-string notification from a template, instead of notification.");
    v = words_enum(b, on_error, K2R_ON_ERROR_COUNT);
    put(b, v, "default", json_string(on_error[K2R_ON_ERROR_SKIP]));
    rule_key(b, props, "on_error", v, "What a record this rule cannot map does.");
    v = words_enum(b, k2r_unsafe_names, 0);
    put(b, v, "default", json_string(k2r_unsafe_names[0]));
    rule_key(b, props, "unsafe", v,
             "A value with Pub/Sub pattern characters, ':', whitespace or invalid UTF-8 in a "
             "channel: a failure (reject) or %XX (escape).");
    v = json_object();
    put(b, v, "type", json_string("boolean"));
    put(b, v, "default", json_false());
    rule_key(b, props, "continue", v, "Try the following rules on the same record too.");
    format_ms(hi, sizeof(hi), max_age ? max_age->max : 0);
    snprintf(text, sizeof(text),
             "Older at publish time is not sent (0: no cutoff); limits.max_age when unset. A "
             "duration from 0 to %s.",
             hi);
    rule_key(b, props, "max_age", duration(b), text);
    rule_key(b, props, "history", history(b),
             "A stream beside the channel (redis.history_prefix + channel) that keeps the "
             "latest notifications for late joiners.");
    /* In the loader's order; a key the loader has gained and this file not
     * yet is taken as anything (check judges it), never refused. */
    for (size_t i = 0; k2r_rule_keys[i]; i++) {
        json_t *known = json_object_get(props, k2r_rule_keys[i]);

        if (known) {
            json_incref(known);
        } else {
            known = json_object();
            put(b, known, "description", json_string("See docs/rules.md."));
        }
        put(b, json_object_get(o, "properties"), k2r_rule_keys[i], known);
    }
    json_decref(props);
    require(b, o, "name");
    require(b, o, "topic");
    /* channel or channels, notification or message: never both. */
    all = put(b, o, "allOf", json_array());
    for (int i = 0; i < 2; i++) {
        json_t *both = json_object(), *no = put(b, both, "not", json_object()),
               *req = put(b, no, "required", json_array());

        push(b, req, json_string(i == 0 ? "channel" : "notification"));
        push(b, req, json_string(i == 0 ? "channels" : "message"));
        push(b, all, both);
    }
    return o;
}

char *k2r_schema_render(void) {
    build_t b = {0};
    size_t n;
    const k2r_setting_t *rows = k2r_settings(&n);
    json_t *root = json_object(), *defs;
    char *text = NULL, *out;
    size_t len;

    put(&b, root, "$schema", json_string("http://json-schema.org/draft-07/schema#"));
    put(&b, root, "title", json_string("kafka-redis-bridge configuration (bridge.yaml)"));
    put(&b, root, "description",
        json_string("Generated by `kafka-redis-bridge check --json-schema` from the settings "
                    "table; `kafka-redis-bridge check` remains the judge of a config."));
    put(&b, root, "type", json_string("object"));
    put(&b, root, "additionalProperties", json_false());
    put(&b, root, "properties", json_object());
    for (size_t i = 0; i < n; i++) {
        if (rows[i].type == K2R_SETTING_RULES) {
            put(&b, json_object_get(root, "properties"), rows[i].name, setting(&b, &rows[i]));
            if (file_requires(&rows[i]))
                require(&b, root, rows[i].name);
        } else {
            place(&b, root, &rows[i], rows, n);
        }
    }
    defs = put(&b, root, "definitions", json_object());
    put(&b, defs, "reference", reference(&b));
    put(&b, defs, "rule", rule(&b));
    put(&b, defs, "source", source(&b, 0));
    put(&b, defs, "field_source", source(&b, 1));
    put(&b, defs, "field", field(&b));
    put(&b, defs, "condition", condition(&b));
    if (!b.nomem)
        text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text)
        return NULL;
    /* With the newline a file ends in. */
    len = strlen(text);
    out = realloc(text, len + 2);
    if (!out) {
        free(text);
        return NULL;
    }
    out[len] = '\n';
    out[len + 1] = '\0';
    return out;
}
