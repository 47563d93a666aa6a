/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - the bridge's one logger: one event per line on stderr.
 *
 * Every module logs through these macros; librdkafka's own log lines are routed
 * here too (src/kafka.c). The level is checked before any formatting, so a
 * disabled debug line costs one comparison. Per-record problems are never
 * logged one by one above debug level: callers use k2r_log_ratelimit() so a
 * flood of bad records becomes at most one line per interval plus counters.
 *
 * Two formats: JSON lines (the default, log.format: json), one object per
 * event with "time" (RFC 3339, UTC, milliseconds), "level", "msg" and any
 * context fields, e.g.
 *   {"time":"2026-11-23T08:31:05.123Z","level":"info","msg":"http: listening","listen":":8080"}
 * and the text format (log.format: text), the same event as
 *   2026-11-23T08:31:05.123Z info  http: listening listen=:8080
 * Whatever the bytes of a message, a JSON line is valid JSON: quotes,
 * backslashes and control characters are escaped, and bytes that are not
 * UTF-8 become U+FFFD. This is not a structured-logging framework: context
 * fields are string pairs, and the message stays a printf format.
 */
#ifndef K2R_LOG_H
#define K2R_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum k2r_log_level_e {
    K2R_LOG_ERROR = 0,
    K2R_LOG_WARN = 1,
    K2R_LOG_INFO = 2,
    K2R_LOG_DEBUG = 3
} k2r_log_level_t;

extern int k2r_log_level; /* current threshold; lines above it are dropped */
extern int k2r_log_json;  /* 1: JSON lines (the default); 0: the text format */

/* Chooses the format: JSON lines when `json` is non-zero, else text. Set it
 * before the first line; lines from other threads see the change at once. */
void k2r_log_set_format(int json);

/* Parses "error", "warn", "info" or "debug"; returns the level or -1. */
int k2r_log_level_parse(const char *name);

/* Writes one line; use the macros below, which check the level first. */
void k2r_log_write(k2r_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A context field of one line: "key":"value" in JSON, key=value in text.
 * The key must not be "time", "level" or "msg". */
typedef struct k2r_log_field_s {
    const char *key;
    const char *value;
} k2r_log_field_t;

/* Writes one line with `nfields` context fields; use k2r_log_fields(). */
void k2r_log_write_fields(k2r_log_level_t level, const k2r_log_field_t *fields, size_t nfields,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define k2r_log_fields(level, fields, nfields, ...)                                                \
    do {                                                                                           \
        if ((int)(level) <= k2r_log_level)                                                         \
            k2r_log_write_fields((level), (fields), (nfields), __VA_ARGS__);                       \
    } while (0)

#define k2r_log(level, ...)                                                                        \
    do {                                                                                           \
        if ((int)(level) <= k2r_log_level)                                                         \
            k2r_log_write((level), __VA_ARGS__);                                                   \
    } while (0)

#define k2r_log_error(...) k2r_log(K2R_LOG_ERROR, __VA_ARGS__)
#define k2r_log_warn(...)  k2r_log(K2R_LOG_WARN, __VA_ARGS__)
#define k2r_log_info(...)  k2r_log(K2R_LOG_INFO, __VA_ARGS__)
#define k2r_log_debug(...) k2r_log(K2R_LOG_DEBUG, __VA_ARGS__)

/*
 * A rate limiter for one kind of log line: at most one line per
 * `interval_ms`; lines in between are counted and the count is reported with
 * the next line that gets through.
 */
typedef struct k2r_ratelimit_s {
    int64_t next_ms;     /* monotonic time before which lines are suppressed */
    uint64_t suppressed; /* lines suppressed since the last one written */
    int interval_ms;
} k2r_ratelimit_t;

#define K2R_RATELIMIT_INIT(ms)                                                                     \
    { 0, 0, (ms) }

/*
 * Returns 1 when a line may be written now (and stores in *suppressed how many
 * were dropped before it), 0 when it must be dropped.
 */
int k2r_log_ratelimit(k2r_ratelimit_t *rl, uint64_t *suppressed);

#endif
