/*
 * log.c - one event per line on stderr, with a level check before formatting
 * and a rate limiter for lines that could otherwise repeat per record.
 *
 * Lines read "2026-11-23T08:31:05.123Z level message". A line is formatted
 * into a local buffer and written with one write(2), so lines from
 * librdkafka's threads and the main loop never interleave mid-line.
 */
#include "k2r/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int k2r_log_level = K2R_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int k2r_log_level_parse(const char *name) {
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void k2r_log_write(k2r_log_level_t level, const char *fmt, ...) {
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t len;
    int n;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line + len, sizeof(line) - len, ".%03ldZ %-5s ", ts.tv_nsec / 1000000L,
                 level_names[level]);
    len += (size_t)n;

    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    len += (size_t)n;
    if (len > sizeof(line) - 2) /* truncated: keep the newline */
        len = sizeof(line) - 2;
    line[len++] = '\n';

    /* One write per line; a short write to stderr is not worth retrying. */
    if (write(STDERR_FILENO, line, len) < 0)
        return;
}

int64_t k2r_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t k2r_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
