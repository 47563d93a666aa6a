/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_int.h - the compiled rules, shared by the compiler (rules.c) and the
 * mapper (map.c); private to those two files, not public API.
 *
 * rules.c turns the config's k2r_rule_conf_t into the types below, once, at
 * load; map.c reads them for every record and never changes them. Everything
 * a rule says is here already resolved: variables are indexes, templates are
 * split into literal and variable parts, a topic is an exact name, a glob or
 * a compiled regex. The per-record state (ctx_t) is map.c's alone and the
 * compiler's state (compiler_t) rules.c's alone: each is only named here.
 *
 * The source kinds (path, header, meta, const, cloudevents, var) are one
 * table, k2r__source_ops, with a compile and an evaluation function per row.
 * It is defined in rules.c beside the compile functions; the evaluation
 * functions are map.c's and are declared below for it.
 */
#ifndef K2R_RULES_INT_H
#define K2R_RULES_INT_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "k2r/rules.h"

enum { META_KEY, META_TOPIC, META_PARTITION, META_OFFSET, META_TIMESTAMP };
enum { TOPIC_EXACT, TOPIC_GLOB, TOPIC_REGEX };

/* Per-record state while mapping (map.c). */
typedef struct ctx_s ctx_t;

/* The state of one compilation (rules.c). */
typedef struct compiler_s compiler_t;

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
    char *key; /* the name as JSON, with its colon: "name": (written once, at compile) */
    size_t key_len;
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
    int64_t max_age_ms;      /* effective: the rule's, else limits.max_age; 0 = none */
    uint32_t history_maxlen; /* the rule's history: (k2r_publish_t); 0 = none */
    int64_t history_ttl_ms;
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

/*
 * The source kinds (config.h's k2r_source_syntax says how each is written):
 * how each is compiled and how it is read from a record. A new kind is one
 * row in k2r__source_ops (rules.c), one in k2r_source_syntax, a compile
 * function in rules.c and an evaluation function in map.c. A compile
 * function fills s and desc (check's summary of the source), or adds an
 * error and returns -1; an evaluation function fills *v, or leaves it
 * absent, and returns K2R_SKIP_NONE or the reason the record is skipped.
 */
typedef struct source_ops_s {
    int (*compile)(compiler_t *c, const k2r_source_conf_t *sc, const rule_t *r, const char *what,
                   source_t *s, char *desc, size_t desc_size);
    k2r_skip_t (*eval)(ctx_t *x, const source_t *s, k2r_value_t *v);
} source_ops_t;

/* The evaluation functions of the source kinds (map.c). */
k2r_skip_t k2r__eval_path(ctx_t *x, const source_t *s, k2r_value_t *v);
k2r_skip_t k2r__eval_header(ctx_t *x, const source_t *s, k2r_value_t *v);
k2r_skip_t k2r__eval_meta(ctx_t *x, const source_t *s, k2r_value_t *v);
k2r_skip_t k2r__eval_const(ctx_t *x, const source_t *s, k2r_value_t *v);
k2r_skip_t k2r__eval_cloudevents(ctx_t *x, const source_t *s, k2r_value_t *v);
k2r_skip_t k2r__eval_var(ctx_t *x, const source_t *s, k2r_value_t *v);

/* Appends `s` as a JSON string, quoted and escaped (map.c). Returns 0 or
 * K2R_ERR_NOMEM. */
int k2r__json_string(k2r_buf_t *out, const char *s, size_t len);

/* One row per source kind, indexed by k2r_source_kind_t (rules.c). */
extern const source_ops_t k2r__source_ops[K2R_SOURCE_COUNT];

/* Sets *v to the string s (borrowed: s must outlive *v). */
static inline void k2r__string_value(const char *s, k2r_value_t *v) {
    v->type = K2R_VALUE_STRING;
    v->str = s;
    v->len = strlen(s);
}

#endif
