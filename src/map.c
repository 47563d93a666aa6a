/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map.c - where a record becomes channels and a notification.
 *
 * k2r_rules_map() takes one Kafka record (k2r_msgview_t) through the compiled
 * rules (rules_int.h): for each rule whose topic matches, it evaluates the
 * `when:` conditions, renders every channel template, then builds the
 * notification, either the rule's `message:` template or a compact JSON
 * object of its fields, written straight into the caller's buffer. The
 * daemon and `kafka-redis-bridge map` both call it, so what `map` prints is
 * what the daemon publishes.
 *
 * Mapping a record costs at most one JSON decode (simdjson, via json.h, and
 * only when some rule reads the value), a few lookups, and the bytes
 * written: no allocation once the caller's buffer has grown. Variables are
 * evaluated lazily, at most once per rule and record, so a rule whose
 * conditions fail early reads nothing else. A value put into a channel is
 * checked for bytes that would corrupt it (Pub/Sub pattern syntax, the ':'
 * separator, whitespace, control bytes, invalid UTF-8); the
 * rule's `unsafe:` says whether such a value is percent-escaped or refused.
 *
 * Not here: turning the config into rules (rules.c), decoding JSON
 * (json.cpp), publishing (redis.c). This file does no I/O and keeps no state
 * between records, so the unit tests drive it with byte strings.
 */
#include "k2r/rules.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <jansson.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/json.h"
#include "k2r/utf8.h"
#include "rules_int.h"

/* ------------------------------------------------------------- names */

static const char *const skip_names[K2R_SKIP__COUNT] = {
    "none",     "no_rule",  "not_json",     "missing_field", "wrong_type", "empty_value",
    "too_long", "no_match", "unsafe_chars", "too_large",     "redis_error"};

const char *k2r_skip_name(k2r_skip_t reason) {
    return (unsigned)reason < K2R_SKIP__COUNT ? skip_names[reason] : "unknown";
}

/* An action other than none is the policy of the same name, one apart. */
_Static_assert(K2R_ACTION_SKIP - 1 == (int)K2R_ON_ERROR_SKIP &&
                   K2R_ACTION_DEAD_LETTER - 1 == (int)K2R_ON_ERROR_DEAD_LETTER &&
                   K2R_ACTION_STOP - 1 == (int)K2R_ON_ERROR_STOP,
               "k2r_action_t follows k2r_on_error_t");
const char *k2r_action_name(k2r_action_t action) {
    return action == K2R_ACTION_NONE ? "none" : k2r_on_error_name((k2r_on_error_t)(action - 1));
}

/* ---------------------------------------------------------- one record */

/* Per-record state shared by the rules tried on it. */
struct ctx_s {
    const k2r_rules_t *rules;
    const k2r_msgview_t *msg;
    k2r_json_t *json;
    int parsed;     /* 0 not yet, 1 ok, -1 not JSON */
    int structured; /* -1 not yet known, else whether the value is a structured CloudEvent */
    /* The current rule's variables: 0 not evaluated, 1 evaluated. */
    unsigned char *done;
    k2r_value_t *vals;
    k2r_skip_t *verr; /* an evaluation error (NOT_JSON) per variable */
    char num[24];
};

static const k2r_msgview_header_t *find_header(const k2r_msgview_t *msg, const char *name) {
    /* The last header of a name wins, as for HTTP-style overrides. */
    for (size_t i = msg->nheaders; i-- > 0;)
        if (msg->headers[i].name && strcmp(msg->headers[i].name, name) == 0)
            return &msg->headers[i];
    return NULL;
}

static int is_structured(ctx_t *x) {
    if (x->structured < 0) {
        const k2r_msgview_header_t *h = find_header(x->msg, "content-type");
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

k2r_skip_t k2r__eval_path(ctx_t *x, const source_t *s, k2r_value_t *v) {
    if (parse_value(x) < 0)
        return K2R_SKIP_NOT_JSON;
    k2r_json_get(x->json, is_structured(x) ? &s->ce_path : &s->path, v);
    return K2R_SKIP_NONE;
}

/* A header's value, as bytes; a header without a value is absent. */
static void header_value(const k2r_msgview_header_t *h, k2r_value_t *v) {
    if (h && h->value) {
        v->type = K2R_VALUE_STRING;
        v->str = h->value;
        v->len = h->value_len;
    }
}

k2r_skip_t k2r__eval_header(ctx_t *x, const source_t *s, k2r_value_t *v) {
    header_value(find_header(x->msg, s->name), v);
    return K2R_SKIP_NONE;
}

k2r_skip_t k2r__eval_meta(ctx_t *x, const source_t *s, k2r_value_t *v) {
    const k2r_msgview_t *msg = x->msg;

    switch (s->meta) {
    case META_KEY:
        if (msg->key) {
            v->type = K2R_VALUE_STRING;
            v->str = msg->key;
            v->len = msg->key_len;
        }
        break;
    case META_TOPIC:
        k2r__string_value(msg->topic, v);
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

k2r_skip_t k2r__eval_const(ctx_t *x, const source_t *s, k2r_value_t *v) {
    (void)x;
    *v = s->cval;
    return K2R_SKIP_NONE;
}

/* Structured mode: a top-level member of the JSON value; binary mode: the
 * ce_<attribute> header. */
k2r_skip_t k2r__eval_cloudevents(ctx_t *x, const source_t *s, k2r_value_t *v) {
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
k2r_skip_t k2r__eval_var(ctx_t *x, const source_t *s, k2r_value_t *v) {
    (void)x, (void)s, (void)v;
    return K2R_SKIP_NONE;
}

/* Evaluates a source into *v. Returns K2R_SKIP_NONE, or NOT_JSON when the
 * value had to be read and is not JSON. Absent values get their default. */
static k2r_skip_t eval_source(ctx_t *x, const source_t *s, k2r_value_t *v) {
    k2r_skip_t skip;

    memset(v, 0, sizeof(*v));
    skip = k2r__source_ops[s->kind].eval(x, s, v);
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
        size_t run = i, n;
        int bad;

        /* The bytes that go as they are, appended at once. */
        for (;;) {
            n = run < len ? (p[run] < 0x80 ? 1 : k2r_utf8_char(p + run, len - run)) : 0;
            bad = run < len && (n == 0 || (n == 1 && unsafe_byte(p[run])));
            if (run == len || bad || (r->escape && p[run] == '%'))
                break;
            run += n;
        }
        if (run > i && k2r_buf_append(out, p + i, run - i) != 0)
            return K2R_ERR_NOMEM;
        i = run;
        if (i == len)
            break;
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
                return K2R_ERR_NOMEM;
            i++;
        }
    }
    return 0;
}

/* Renders a template into out. channel: values are checked as channel parts.
 * Returns 0, -1 on failure (in *f), K2R_ERR_NOMEM when out of memory. */
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
                return K2R_ERR_NOMEM;
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
            rc = k2r_buf_append(out, s, len) != 0 ? K2R_ERR_NOMEM : 0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*
 * Notifications are written straight into the output buffer, byte for byte
 * what jansson's compact dump of the same object wrote before (the unit
 * tests compare the two): an object per record built, then serialised twice
 * (once to size, once to write), was a third of the bridge's CPU on small
 * records. Only fractional numbers still go through jansson (append_real):
 * they are rare in notifications, and its number formatting is the one to
 * match.
 */

/* The escape of a byte in a JSON string: 0 for none, else the letter after
 * the backslash ('u': \u00XX). Bytes from 0x80 up are copied as they are:
 * the string is valid UTF-8 (checked by the caller, or by simdjson). */
static char json_escape(unsigned char c) {
    if (c >= 0x20)
        return c == '"' || c == '\\' ? (char)c : 0;
    switch (c) {
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return 'u';
    }
}

/* Appends s as a JSON string (quoted, escaped). Returns 0, or K2R_ERR_NOMEM. */
int k2r__json_string(k2r_buf_t *out, const char *s, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    size_t need = len + 2;
    char *o;

    /* Sized first, so that the buffer grows once; most strings need no
     * escape and are copied whole. */
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] == '"' || p[i] == '\\')
            need += json_escape(p[i]) == 'u' ? 5 : 1;
    if (k2r_buf_reserve(out, need) != 0)
        return K2R_ERR_NOMEM;
    o = out->data + out->len;
    *o++ = '"';
    if (need == len + 2) {
        memcpy(o, s, len);
        o += len;
    } else {
        for (size_t i = 0; i < len; i++) {
            char e = json_escape(p[i]);

            if (!e) {
                *o++ = (char)p[i];
                continue;
            }
            *o++ = '\\';
            *o++ = e;
            if (e == 'u') {
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[p[i] >> 4];
                *o++ = hex[p[i] & 0xf];
            }
        }
    }
    *o++ = '"';
    out->len = (size_t)(o - out->data);
    return 0;
}

/* Appends a fractional number as jansson writes it. Returns 0, or
 * K2R_ERR_NOMEM (also for what jansson refuses: NaN and infinities, which
 * JSON cannot hold and simdjson never yields). */
static int append_real(k2r_buf_t *out, double d) {
    json_t *j = json_real(d);
    size_t need;
    int rc = K2R_ERR_NOMEM;

    if (!j)
        return rc;
    need = json_dumpb(j, NULL, 0, JSON_ENCODE_ANY | JSON_COMPACT);
    if (need && k2r_buf_reserve(out, need) == 0) {
        out->len += json_dumpb(j, out->data + out->len, need, JSON_ENCODE_ANY | JSON_COMPACT);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

/* Appends one field of the notification ("name":value, after a comma unless
 * it is the first, *first says); an absent value adds nothing. Returns 0, -1
 * on failure (in *f), K2R_ERR_NOMEM on OOM. */
static int add_field(ctx_t *x, const rule_t *r, const field_t *fd, k2r_buf_t *out, int *first,
                     fail_t *f) {
    k2r_value_t val;
    const k2r_value_t *v = &val;
    char num[24];
    int n;

    if (fd->src.kind == K2R_SOURCE_VAR) {
        if (get_var(x, r, fd->src.var, &v) != K2R_SKIP_NONE)
            return not_json(x, f);
    } else if (eval_source(x, &fd->src, &val) != K2R_SKIP_NONE) {
        return not_json(x, f);
    }
    if (v->type == K2R_VALUE_ABSENT)
        return 0; /* an absent field is left out of the notification */
    if (v->type == K2R_VALUE_OBJECT || v->type == K2R_VALUE_ARRAY)
        return fail(f, K2R_SKIP_WRONG_TYPE,
                    "notification field %s (%s): expected a scalar, found %s", fd->name,
                    fd->src.desc, value_kind(v->type));
    /* Values from the JSON are valid UTF-8 already; headers and keys may not be. */
    if (v->type == K2R_VALUE_STRING && fd->src.kind != K2R_SOURCE_PATH) {
        for (size_t i = 0; i < v->len;) {
            size_t c = k2r_utf8_char((const unsigned char *)v->str + i, v->len - i);
            if (c == 0)
                return fail(f, K2R_SKIP_WRONG_TYPE, "notification field %s (%s): not valid UTF-8",
                            fd->name, fd->src.desc);
            i += c;
        }
    }
    if ((!*first && k2r_buf_append(out, ",", 1) != 0) ||
        k2r_buf_append(out, fd->key, fd->key_len) != 0)
        return K2R_ERR_NOMEM;
    *first = 0;
    switch (v->type) {
    case K2R_VALUE_STRING:
        return k2r__json_string(out, v->str, v->len);
    case K2R_VALUE_INT:
        n = snprintf(num, sizeof(num), "%" PRId64, v->i);
        return k2r_buf_append(out, num, (size_t)n) != 0 ? K2R_ERR_NOMEM : 0;
    case K2R_VALUE_UINT:
        return append_real(out, (double)v->u); /* as before: JSON integers are signed 64-bit */
    case K2R_VALUE_DOUBLE:
        return append_real(out, v->d);
    case K2R_VALUE_BOOL:
        return k2r_buf_append(out, v->b ? "true" : "false", v->b ? 4 : 5) != 0 ? K2R_ERR_NOMEM : 0;
    default: /* K2R_VALUE_NULL */
        return k2r_buf_append(out, "null", 4) != 0 ? K2R_ERR_NOMEM : 0;
    }
}

/* Appends the notification of rule r. Returns 0, -1 on failure, K2R_ERR_NOMEM on OOM. */
static int notification(ctx_t *x, const rule_t *r, k2r_buf_t *out, fail_t *f) {
    size_t start = out->len;
    int rc, first = 1;

    if (r->has_message) {
        rc = render(x, r, &r->message, 0, out, f);
    } else {
        rc = k2r_buf_append(out, "{", 1) != 0 ? K2R_ERR_NOMEM : 0;
        for (size_t i = 0; i < r->nfields && rc == 0; i++)
            rc = add_field(x, r, &r->fields[i], out, &first, f);
        if (rc == 0 && k2r_buf_append(out, "}", 1) != 0)
            rc = K2R_ERR_NOMEM;
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
 * notification. Appends publishes to *m. Returns 0, -1 on failure, K2R_ERR_NOMEM on OOM;
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
            m->publish[m->npublish].history_maxlen = r->history_maxlen;
            m->publish[m->npublish].history_ttl_ms = r->history_ttl_ms;
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

int k2r_rules_map(const k2r_rules_t *rules, k2r_json_t *json, const k2r_msgview_t *msg,
                  k2r_buf_t *out, k2r_mapping_t *m) {
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
            if (arc == K2R_ERR_NOMEM) {
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
