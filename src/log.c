/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - one event per line on stderr, as JSON (the default) or text, with
 * a level check before formatting and a rate limiter for lines that could
 * otherwise repeat per record.
 *
 * A line is formatted into a local buffer and written with one write(2), so
 * lines from librdkafka's threads, the HTTP thread and the main loop never
 * interleave mid-line. Nothing here allocates: the logger must work when
 * memory ran out. A message too long for the buffer is cut (at a character
 * boundary in JSON, which stays valid).
 *
 * Not here: deciding what is worth a line (the callers), the level and
 * format settings (config.c, main.c), the clocks the limiter reads (clock.c)
 * and the UTF-8 validator it checks messages with (utf8.c).
 */
#include "k2r/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "k2r/clock.h"
#include "k2r/utf8.h"

int k2r_log_level = K2R_LOG_INFO;
int k2r_log_json = 1;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* The formatted message (before escaping) and the whole line. JSON escaping
 * takes at most 6 bytes per message byte; a line that would still not fit is
 * cut, never split. */
#define MSG_MAX  2048
#define LINE_MAX 8192

int k2r_log_level_parse(const char *name) {
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void k2r_log_set_format(int json) {
    k2r_log_json = json ? 1 : 0;
}

typedef struct line_s {
    char buf[LINE_MAX];
    size_t len;
} line_t;

/* Room kept at the end of a JSON line for the closing quote, brace and
 * newline, whatever was cut before them. */
#define JSON_TAIL 3

static int fits(const line_t *l, size_t n, size_t tail) {
    return l->len + n + tail <= sizeof(l->buf);
}

/* Appends n bytes when they fit before `tail`; returns 0, or -1 (nothing
 * appended) when they do not. */
static int add(line_t *l, const char *s, size_t n, size_t tail) {
    if (!fits(l, n, tail))
        return -1;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return 0;
}

/*
 * Appends the JSON string body (no quotes) for n bytes of s: quote,
 * backslash and control characters escaped, each sequence that is not UTF-8
 * replaced by \ufffd, so any bytes make valid JSON. Stops at the first
 * character that would not fit before `tail`.
 */
static void add_json_chars(line_t *l, const char *s, size_t n, size_t tail) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < n;) {
        char esc[8];
        size_t k;

        if (u[i] >= 0x80) {
            k = k2r_utf8_char(u + i, n - i);
            if (k == 0) {
                if (add(l, "\\ufffd", 6, tail) != 0)
                    return;
                i++;
                continue;
            }
            if (add(l, s + i, k, tail) != 0)
                return;
            i += k;
            continue;
        }
        if (u[i] == '"' || u[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)u[i];
            k = 2;
        } else if (u[i] < 0x20) {
            esc[0] = '\\';
            k = 2;
            switch (u[i]) {
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[u[i] >> 4];
                esc[5] = hex[u[i] & 15];
                k = 6;
            }
        } else {
            esc[0] = (char)u[i];
            k = 1;
        }
        if (add(l, esc, k, tail) != 0)
            return;
        i++;
    }
}

/* Appends ,"key":"value" (or nothing when even its start does not fit). */
static void add_json_field(line_t *l, const char *key, const char *value) {
    size_t klen = strlen(key);

    /* The key whole, or not the field at all: a cut key would mislead. */
    if (!fits(l, klen + 6, JSON_TAIL))
        return;
    add(l, ",\"", 2, 0);
    add_json_chars(l, key, klen, JSON_TAIL + 4);
    add(l, "\":\"", 3, 0);
    add_json_chars(l, value ? value : "", value ? strlen(value) : 0, JSON_TAIL + 1);
    add(l, "\"", 1, 0);
}

static void __attribute__((format(printf, 4, 0)))
vwrite_line(k2r_log_level_t level, const k2r_log_field_t *fields, size_t nfields, const char *fmt,
            va_list ap) {
    char msg[MSG_MAX], stamp[40];
    line_t l;
    struct timespec ts;
    struct tm tm;
    size_t mlen, slen;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    slen = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + slen, sizeof(stamp) - slen, ".%03ldZ", ts.tv_nsec / 1000000L);

    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    mlen = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;

    l.len = 0;
    if (k2r_log_json) {
        n = snprintf(l.buf, sizeof(l.buf), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", stamp,
                     level_names[level]);
        l.len = (size_t)n;
        add_json_chars(&l, msg, mlen, JSON_TAIL);
        add(&l, "\"", 1, 0);
        for (size_t i = 0; i < nfields; i++)
            add_json_field(&l, fields[i].key, fields[i].value);
        add(&l, "}\n", 2, 0);
    } else {
        /* The text format as it always was: "TIME LEVEL message", then
         * key=value per field. */
        n = snprintf(l.buf, sizeof(l.buf), "%s %-5s ", stamp, level_names[level]);
        l.len = (size_t)n;
        if (add(&l, msg, mlen, 1) != 0) {
            memcpy(l.buf + l.len, msg, sizeof(l.buf) - 1 - l.len);
            l.len = sizeof(l.buf) - 1;
        }
        for (size_t i = 0; i < nfields; i++) {
            const char *v = fields[i].value ? fields[i].value : "";

            if (!fits(&l, strlen(fields[i].key) + strlen(v) + 2, 1))
                break;
            add(&l, " ", 1, 1);
            add(&l, fields[i].key, strlen(fields[i].key), 1);
            add(&l, "=", 1, 1);
            add(&l, v, strlen(v), 1);
        }
        /* Message and values may carry bytes from records (keys, details):
         * a newline there must not start a forged line of its own. */
        for (size_t i = 0; i < l.len; i++)
            if ((unsigned char)l.buf[i] < 0x20 || l.buf[i] == 0x7f)
                l.buf[i] = '?';
        l.buf[l.len++] = '\n';
    }

    /* One write per line; a short write to stderr is not worth retrying. */
    if (write(STDERR_FILENO, l.buf, l.len) < 0)
        return;
}

void k2r_log_write(k2r_log_level_t level, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vwrite_line(level, NULL, 0, fmt, ap);
    va_end(ap);
}

void k2r_log_write_fields(k2r_log_level_t level, const k2r_log_field_t *fields, size_t nfields,
                          const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vwrite_line(level, fields, nfields, fmt, ap);
    va_end(ap);
}

int k2r_log_ratelimit(k2r_ratelimit_t *rl, uint64_t *suppressed) {
    int64_t now = k2r_now_ms();

    if (now < rl->next_ms) {
        rl->suppressed++;
        return 0;
    }
    rl->next_ms = now + rl->interval_ms;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return 1;
}
