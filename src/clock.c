/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock.c - the monotonic and wall clocks in the units the bridge counts in,
 * and the duration parser the config uses.
 *
 * The clocks are thin wrappers over clock_gettime(2), kept in one place so
 * every deadline in the bridge is measured on the same clock. The duration
 * parser refuses what would overflow int64_t milliseconds rather than wrap.
 *
 * Not here: what a duration setting's bounds are (config.c), or any timer.
 */
#include "k2r/clock.h"

#include <string.h>
#include <time.h>

int64_t k2r_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t k2r_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t k2r_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int k2r_parse_duration(const char *text, int64_t *ms) {
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const char *p = text;
    int64_t n = 0;

    if (!(*p >= '0' && *p <= '9'))
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (INT64_MAX / 3600000 - 9) / 10)
            return -1;
        n = n * 10 + (*p - '0');
    }
    if (!*p)
        return n == 0 ? (*ms = 0, 0) : -1; /* only 0 goes without a unit */
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            *ms = n * units[i].ms;
            return 0;
        }
    }
    return -1;
}

int k2r_backoff_jitter(int ms, unsigned random) {
    return ms / 2 + (int)(random % (unsigned)(ms / 2 + 1));
}

int k2r_backoff_next(int ms, int max_ms) {
    return ms > max_ms / 2 ? max_ms : ms * 2;
}
