/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corpus.h - the reader of the hostile-input corpus, tests/hostile/cases.txt
 * (the format is described at the top of that file).
 *
 * Both the unit suite (tests/unit/test_hostile.c: every case through
 * k2r_rules_map) and the integration suite (tests/integration/test_hostile.c:
 * every case through Kafka, the daemon and Redis) read the same file with
 * this code, so a case is written once and checked twice. It is header-only,
 * with static functions, because the Makefile builds each suite from the .c
 * files of its own directory; each suite includes it once.
 *
 * The reader only turns text into bytes and expectations. It knows nothing of
 * rules or of Kafka. It refuses a malformed file (saying file:line and what is
 * wrong) instead of guessing, and it refuses a case without a complete
 * expectation, so no case can pass by saying nothing.
 */
#ifndef K2R_TEST_HOSTILE_CORPUS_H
#define K2R_TEST_HOSTILE_CORPUS_H

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes that may be absent (no key, a tombstone, a header without a value). */
typedef struct hc_bytes_s {
    char *data; /* NUL-terminated copy (the NUL is not counted); NULL when absent */
    size_t len;
} hc_bytes_t;

typedef struct hc_header_s {
    char *name; /* holds no NUL byte: Kafka clients pass header names as C strings */
    hc_bytes_t value;
} hc_header_t;

typedef struct hc_publish_s {
    hc_bytes_t channel;
    hc_bytes_t message;
} hc_publish_t;

typedef struct hc_case_s {
    char *name;
    int line;      /* where its `case` line is, for messages */
    char *topic;   /* short name: the record's topic is "hostile.<topic>" */
    int partition; /* 0 unless given */
    hc_bytes_t key;
    hc_bytes_t value;
    hc_header_t *headers;
    size_t nheaders;
    /*
     * The expectation. action: "none" (nothing failed: it publishes), "skip",
     * "dead-letter" or "stop", as k2r_action_name() spells them; rule: the
     * failing rule, else the first publishing one (NULL: none); reason: the
     * k2r_skip_name() ("none" when nothing failed); detail: the mapping's
     * exact detail (NULL when nothing failed); publish: every PUBLISH in
     * order.
     */
    char *action;
    char *rule;
    char *reason;
    hc_bytes_t detail; /* text: detail.data is a C string */
    hc_publish_t *publish;
    size_t npublish;
    /* A known bug: what happens instead of the expectation (bug.data NULL:
     * none). bug_map is set when k2r_rules_map itself misses the
     * expectation; otherwise only the running daemon does. */
    hc_bytes_t bug;
    int bug_map;
    int has_value, has_expect; /* while reading */
} hc_case_t;

typedef struct hc_corpus_s {
    hc_case_t *cases;
    size_t ncases;
} hc_corpus_t;

/* Most bytes one value may expand to: several-MB records, not runaway repeats. */
#define HC_MAX_BYTES (64u << 20)

typedef struct hc_reader_s {
    const char *path;
    int line;
    char *err;
    size_t err_size;
} hc_reader_t;

static int hc_fail(hc_reader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int hc_fail(hc_reader_t *r, const char *fmt, ...) {
    va_list ap;
    int n = snprintf(r->err, r->err_size, "%s:%d: ", r->path, r->line);

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < r->err_size)
        vsnprintf(r->err + n, r->err_size - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Appends `times` copies of n bytes, keeping a NUL after them; -1 when too big. */
static int hc_append(hc_bytes_t *b, const char *p, size_t n, size_t times) {
    char *data;

    if (times && n > (HC_MAX_BYTES - b->len) / times)
        return -1;
    data = realloc(b->data, b->len + n * times + 1);
    if (!data)
        return -1;
    b->data = data;
    for (size_t i = 0; i < times; i++, b->len += n)
        memcpy(b->data + b->len, p, n);
    b->data[b->len] = '\0';
    return 0;
}

static int hc_hex(int c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static const char *hc_skip_space(const char *p) {
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int hc_at_end(const char *p) {
    p = hc_skip_space(p);
    return *p == '\0' || *p == '\n' || *p == '#';
}

/* One quoted item at p into *item; returns the position after it, or NULL. */
static const char *hc_item(hc_reader_t *r, const char *p, hc_bytes_t *item) {
    char q = *p;

    if (q != '\'' && q != '"') {
        hc_fail(r, "expected '...' or \"...\", found \"%.20s\"", p);
        return NULL;
    }
    if (hc_append(item, "", 0, 1) != 0) {
        hc_fail(r, "out of memory");
        return NULL;
    }
    for (p++; *p != q; p++) {
        char c = *p;

        if (*p == '\0' || *p == '\n') {
            hc_fail(r, "unterminated string");
            return NULL;
        }
        if (q == '"' && c == '\\') {
            p++;
            switch (*p) {
            case '\\':
            case '"':
            case '\'':
                c = *p;
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case '0':
                c = '\0';
                break;
            case 'x':
                if (hc_hex(p[1]) < 0 || hc_hex(p[2]) < 0) {
                    hc_fail(r, "\\x needs two hex digits");
                    return NULL;
                }
                c = (char)(hc_hex(p[1]) * 16 + hc_hex(p[2]));
                p += 2;
                break;
            default:
                hc_fail(r, "unknown escape \\%c", *p ? *p : '?');
                return NULL;
            }
        }
        if (hc_append(item, &c, 1, 1) != 0) {
            hc_fail(r, "out of memory");
            return NULL;
        }
    }
    return p + 1;
}

/*
 * Reads BYTES at *pp, appending to *out: items '...' (raw, no escapes) or
 * "..." (escapes \\ \" \' \n \r \t \0 \xHH), each optionally followed by
 * `* COUNT`, up to the end of the line (or only one item when `one`).
 * Returns 0, or -1 with the message in r.
 */
static int hc_bytes(hc_reader_t *r, const char **pp, hc_bytes_t *out, int one) {
    const char *p = hc_skip_space(*pp);
    int items = 0;

    if (!out->data && hc_append(out, "", 0, 1) != 0)
        return hc_fail(r, "out of memory");
    while (!hc_at_end(p) && !(one && items)) {
        hc_bytes_t item = {NULL, 0};
        unsigned long times = 1;

        p = hc_item(r, p, &item);
        if (!p) {
            free(item.data);
            return -1;
        }
        p = hc_skip_space(p);
        if (*p == '*') {
            char *end;
            p = hc_skip_space(p + 1);
            times = strtoul(p, &end, 10);
            if (end == p || times == 0) {
                free(item.data);
                return hc_fail(r, "expected a count after *");
            }
            p = end;
        }
        if (hc_append(out, item.data, item.len, times) != 0) {
            free(item.data);
            return hc_fail(r, "more than %u bytes", HC_MAX_BYTES);
        }
        free(item.data);
        p = hc_skip_space(p);
        items++;
    }
    if (!items)
        return hc_fail(r, "expected bytes: '...' or \"...\"");
    *pp = p;
    return 0;
}

/* BYTES, or the word `none` (absent: out stays NULL). */
static int hc_bytes_or_none(hc_reader_t *r, const char **pp, hc_bytes_t *out) {
    const char *p = hc_skip_space(*pp);

    if (strncmp(p, "none", 4) == 0 && hc_at_end(p + 4)) {
        *pp = p + 4;
        return 0;
    }
    return hc_bytes(r, pp, out, 0);
}

/* A bare word ([A-Za-z0-9_.-]+) into *out (replacing it). */
static int hc_word(hc_reader_t *r, const char **pp, char **out, const char *what) {
    const char *p = hc_skip_space(*pp), *s = p;

    while (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.')
        p++;
    if (p == s)
        return hc_fail(r, "expected %s", what);
    free(*out);
    *out = strndup(s, (size_t)(p - s));
    *pp = p;
    return *out ? 0 : hc_fail(r, "out of memory");
}

static void hc_free_case(hc_case_t *c) {
    free(c->name);
    free(c->topic);
    free(c->key.data);
    free(c->value.data);
    for (size_t i = 0; i < c->nheaders; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value.data);
    }
    free(c->headers);
    free(c->action);
    free(c->rule);
    free(c->reason);
    free(c->detail.data);
    for (size_t i = 0; i < c->npublish; i++) {
        free(c->publish[i].channel.data);
        free(c->publish[i].message.data);
    }
    free(c->publish);
    free(c->bug.data);
}

static void hc_free(hc_corpus_t *corpus) {
    for (size_t i = 0; i < corpus->ncases; i++)
        hc_free_case(&corpus->cases[i]);
    free(corpus->cases);
    corpus->cases = NULL;
    corpus->ncases = 0;
}

/* A finished case must say what it is and, completely, what must happen to it. */
static int hc_check_case(hc_reader_t *r, const hc_case_t *c) {
    int failure;

    r->line = c->line;
    if (!c->topic)
        return hc_fail(r, "case %s: no topic", c->name);
    if (!c->has_value)
        return hc_fail(r, "case %s: no value (write `value none` for a tombstone)", c->name);
    if (!c->has_expect)
        return hc_fail(r, "case %s: no expect line", c->name);
    failure = strcmp(c->action, "none") != 0;
    if (failure && !c->detail.data)
        return hc_fail(r, "case %s: a failure needs its exact detail", c->name);
    if (!failure && c->detail.data)
        return hc_fail(r, "case %s: a detail, but nothing fails", c->name);
    if (!failure && c->npublish == 0)
        return hc_fail(r, "case %s: expect publish, but no publish line", c->name);
    if (strcmp(c->action, "stop") == 0 && c->npublish)
        return hc_fail(r, "case %s: a stop publishes nothing of its record", c->name);
    for (size_t i = 0; i < c->npublish; i++)
        if (!c->publish[i].message.data)
            return hc_fail(r, "case %s: publish #%zu has no message line", c->name, i);
    return 0;
}

/*
 * `header NAME none|BYTES`, or `headers COUNT NAME none|BYTES` for COUNT
 * copies of one header (a record with a thousand headers stays one line).
 */
static int hc_header(hc_reader_t *r, hc_case_t *c, const char **pp, int counted) {
    hc_bytes_t name = {NULL, 0}, value = {NULL, 0};
    unsigned long count = 1;
    hc_header_t *h;
    int rc = -1;

    if (counted) {
        const char *p = hc_skip_space(*pp);
        char *end;
        count = strtoul(p, &end, 10);
        if (end == p || count == 0 || count > 100000)
            return hc_fail(r, "expected a header count (1-100000)");
        *pp = end;
    }
    if (hc_bytes(r, pp, &name, 1) != 0 || hc_bytes_or_none(r, pp, &value) != 0)
        goto done;
    if (memchr(name.data, '\0', name.len)) {
        hc_fail(r, "a header name cannot hold a NUL byte");
        goto done;
    }
    h = realloc(c->headers, (c->nheaders + count) * sizeof(*h));
    if (!h) {
        hc_fail(r, "out of memory");
        goto done;
    }
    c->headers = h;
    for (unsigned long i = 0; i < count; i++) {
        h = &c->headers[c->nheaders];
        h->name = strdup(name.data);
        h->value.data = value.data ? malloc(value.len + 1) : NULL;
        h->value.len = value.len;
        if (!h->name || (value.data && !h->value.data)) {
            free(h->name);
            free(h->value.data);
            hc_fail(r, "out of memory");
            goto done;
        }
        if (value.data)
            memcpy(h->value.data, value.data, value.len + 1);
        c->nheaders++;
    }
    rc = 0;
done:
    free(name.data);
    free(value.data);
    return rc;
}

/* One directive line of the current case. */
static int hc_directive(hc_reader_t *r, hc_corpus_t *corpus, const char *p, hc_bytes_t **last) {
    hc_case_t *c = corpus->ncases ? &corpus->cases[corpus->ncases - 1] : NULL;
    char *word = NULL;
    int rc = -1;

    if (hc_word(r, &p, &word, "a directive") != 0)
        return -1;
    if (!c && strcmp(word, "case") != 0) {
        hc_fail(r, "%s before the first case", word);
        goto done;
    }
    *last = NULL;
    if (strcmp(word, "case") == 0) {
        int line = r->line;
        hc_case_t *cases;
        if (c && hc_check_case(r, c) != 0)
            goto done;
        r->line = line; /* hc_check_case reports at the case it checked */
        cases = realloc(corpus->cases, (corpus->ncases + 1) * sizeof(*cases));
        if (!cases) {
            hc_fail(r, "out of memory");
            goto done;
        }
        corpus->cases = cases;
        c = &corpus->cases[corpus->ncases++];
        memset(c, 0, sizeof(*c));
        c->line = r->line;
        if (hc_word(r, &p, &c->name, "a case name") != 0)
            goto done;
        for (size_t i = 0; i + 1 < corpus->ncases; i++)
            if (strcmp(corpus->cases[i].name, c->name) == 0) {
                hc_fail(r, "case %s: the name is taken (line %d)", c->name, corpus->cases[i].line);
                goto done;
            }
    } else if (strcmp(word, "topic") == 0) {
        if (hc_word(r, &p, &c->topic, "a topic") != 0)
            goto done;
    } else if (strcmp(word, "partition") == 0) {
        char *end;
        long n = strtol(hc_skip_space(p), &end, 10);
        if (end == hc_skip_space(p) || n < 0 || n > 1000) {
            hc_fail(r, "expected a partition number");
            goto done;
        }
        c->partition = (int)n;
        p = end;
    } else if (strcmp(word, "key") == 0) {
        if (hc_bytes_or_none(r, &p, &c->key) != 0)
            goto done;
        *last = c->key.data ? &c->key : NULL;
    } else if (strcmp(word, "value") == 0) {
        if (c->has_value) {
            hc_fail(r, "case %s: a second value", c->name);
            goto done;
        }
        c->has_value = 1;
        if (hc_bytes_or_none(r, &p, &c->value) != 0)
            goto done;
        *last = c->value.data ? &c->value : NULL;
    } else if (strcmp(word, "header") == 0 || strcmp(word, "headers") == 0) {
        int counted = strcmp(word, "headers") == 0;
        if (hc_header(r, c, &p, counted) != 0)
            goto done;
        /* Only a single header's value may continue on the next line. */
        if (!counted && c->headers[c->nheaders - 1].value.data)
            *last = &c->headers[c->nheaders - 1].value;
    } else if (strcmp(word, "expect") == 0) {
        if (c->has_expect) {
            hc_fail(r, "case %s: a second expect", c->name);
            goto done;
        }
        c->has_expect = 1;
        if (hc_word(r, &p, &c->action, "publish, skip, dead-letter or stop") != 0 ||
            hc_word(r, &p, &c->rule, "a rule name, or none") != 0)
            goto done;
        if (strcmp(c->rule, "none") == 0) {
            free(c->rule);
            c->rule = NULL;
        }
        if (strcmp(c->action, "publish") == 0) {
            free(c->action);
            c->action = strdup("none");
            c->reason = strdup("none");
            if (!c->action || !c->reason) {
                hc_fail(r, "out of memory");
                goto done;
            }
            if (!c->rule) {
                hc_fail(r, "a publish needs its rule");
                goto done;
            }
        } else if (strcmp(c->action, "skip") == 0 || strcmp(c->action, "dead-letter") == 0 ||
                   strcmp(c->action, "stop") == 0) {
            if (hc_word(r, &p, &c->reason, "a skip reason (not_json, missing_field, ...)") != 0)
                goto done;
        } else {
            hc_fail(r, "expect %s: expected publish, skip, dead-letter or stop", c->action);
            goto done;
        }
    } else if (strcmp(word, "detail") == 0) {
        if (c->detail.data) {
            hc_fail(r, "case %s: a second detail", c->name);
            goto done;
        }
        if (hc_bytes(r, &p, &c->detail, 0) != 0)
            goto done;
        *last = &c->detail;
    } else if (strcmp(word, "publish") == 0) {
        hc_publish_t *pub = realloc(c->publish, (c->npublish + 1) * sizeof(*pub));
        if (!pub) {
            hc_fail(r, "out of memory");
            goto done;
        }
        c->publish = pub;
        pub = &c->publish[c->npublish++];
        memset(pub, 0, sizeof(*pub));
        if (hc_bytes(r, &p, &pub->channel, 0) != 0)
            goto done;
        *last = &pub->channel;
    } else if (strcmp(word, "message") == 0) {
        if (!c->npublish || c->publish[c->npublish - 1].message.data) {
            hc_fail(r, "message without its publish line");
            goto done;
        }
        if (hc_bytes(r, &p, &c->publish[c->npublish - 1].message, 0) != 0)
            goto done;
        *last = &c->publish[c->npublish - 1].message;
    } else if (strcmp(word, "bug") == 0 || strcmp(word, "bug-map") == 0) {
        if (c->bug.data) {
            hc_fail(r, "case %s: a second bug line", c->name);
            goto done;
        }
        c->bug_map = strcmp(word, "bug-map") == 0;
        if (hc_bytes(r, &p, &c->bug, 0) != 0)
            goto done;
        *last = &c->bug;
    } else {
        hc_fail(r, "unknown directive \"%s\"", word);
        goto done;
    }
    if (!hc_at_end(p)) {
        hc_fail(r, "unexpected \"%.20s\"", p);
        goto done;
    }
    rc = 0;
done:
    free(word);
    return rc;
}

/*
 * Reads a corpus from `f` (named `name` in messages) into *corpus, which the
 * caller zeroed. Returns 0, or -1 with "name:line: what is wrong" in err
 * (and *corpus emptied). The caller closes f.
 */
static int hc_read(FILE *f, const char *name, hc_corpus_t *corpus, char *err, size_t err_size) {
    hc_reader_t r = {name, 0, err, err_size};
    hc_bytes_t *last = NULL;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;

    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        const char *p = line;

        r.line++;
        if (*p == ' ' || *p == '\t') {
            /* A continuation: more bytes for the directive above. */
            if (hc_at_end(p))
                continue;
            if (!last)
                rc = hc_fail(&r, "a continuation line, but no bytes above it to continue");
            else
                rc = hc_bytes(&r, &p, last, 0);
            continue;
        }
        if (hc_at_end(p)) {
            last = NULL;
            continue;
        }
        rc = hc_directive(&r, corpus, p, &last);
    }
    if (rc == 0 && corpus->ncases)
        rc = hc_check_case(&r, &corpus->cases[corpus->ncases - 1]);
    free(line);
    if (rc != 0)
        hc_free(corpus);
    return rc;
}

/* hc_read() of the file at `path`. */
static int hc_load(const char *path, hc_corpus_t *corpus, char *err, size_t err_size) {
    FILE *f = fopen(path, "r");
    int rc;

    if (!f) {
        snprintf(err, err_size, "%s: cannot open", path);
        return -1;
    }
    rc = hc_read(f, path, corpus, err, err_size);
    fclose(f);
    return rc;
}

#endif
