/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock.h - time as the bridge reads and writes it: the monotonic clock for
 * deadlines and spans, the wall clock for Kafka timestamps, and durations as
 * the config spells them ("500ms", "30s", "5m", "1h"), and the arithmetic
 * of retry delays (exponential backoff with jitter).
 *
 * A leaf: clock_gettime(2) and string parsing, no other k2r module. Not here:
 * timers, sleeping or scheduling (the loops that need them own them), or
 * formatting times for humans (log.c writes RFC 3339 itself).
 */
#ifndef K2R_CLOCK_H
#define K2R_CLOCK_H

#include <stdint.h>

/* Monotonic clock in milliseconds, and in microseconds (for short spans). */
int64_t k2r_now_ms(void);
int64_t k2r_now_us(void);

/* Wall-clock time in milliseconds since the epoch (what Kafka timestamps are). */
int64_t k2r_wall_ms(void);

/*
 * Parses a duration: digits and one unit of ms, s, m or h ("500ms", "30s",
 * "5m", "1h"); "0" alone is zero. Returns 0 with *ms set, or -1.
 */
int k2r_parse_duration(const char *text, int64_t *ms);

/*
 * Retry delays, for every reconnect and resend loop: k2r_backoff_jitter is a
 * delay of about `ms`, half fixed, half from `random` (so that the retries of
 * many bridges spread apart); k2r_backoff_next the delay after `ms`, doubled
 * and capped at `max_ms`.
 */
int k2r_backoff_jitter(int ms, unsigned random);
int k2r_backoff_next(int ms, int max_ms);

#endif
