/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.h - the invariants every k2r_mapping_t must satisfy, shared by the
 * libFuzzer targets in this directory.
 *
 * A violated invariant prints what was wrong to stderr and executes
 * __builtin_trap(), so libFuzzer saves the input as a crash artifact. This is
 * test code only: nothing in src/ includes it.
 */
#ifndef K2R_FUZZ_CHECK_H
#define K2R_FUZZ_CHECK_H

#include <stddef.h>

#include "k2r/rules.h"

/* Prints "fuzz invariant violated: ..." and traps when cond is false. */
#define K2R_FUZZ_CHECK(cond, ...)                                                                  \
    do {                                                                                           \
        if (!(cond))                                                                               \
            k2r_fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                 \
    } while (0)

void k2r_fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* What the checker needs to know about the rules that produced a mapping. */
typedef struct k2r_fuzz_limits_s {
    size_t max_channel; /* limits.max_channel_bytes */
    size_t max_message; /* limits.max_notification_bytes */
    size_t base;        /* out->len before k2r_rules_map(): nothing may point below it */
    /* 1: no channel may hold an unsafe byte at all, which holds only when the templates'
     * literal text is safe (fuzz_map's are; a fuzzed config's need not be). */
    int safe_templates;
    /* 1 when the rule publishes a `message:` plain string (no JSON check); NULL: none does. */
    int (*is_plain)(const char *rule, void *ctx);
    void *ctx;
} k2r_fuzz_limits_t;

/*
 * Checks a mapping against the contract in rules.h: offsets inside `out`,
 * channel lengths within (0, max_channel], channels in valid UTF-8 and, when
 * lim->safe_templates, free of control characters, glob characters and whitespace, messages
 * within max_message,
 * notifications that jansson reads back as one JSON object with unique keys,
 * npublish <= K2R_FANOUT_MAX, and skip/action consistent with each other.
 * Traps on the first violation.
 */
void k2r_fuzz_check_mapping(const k2r_mapping_t *m, const k2r_buf_t *out,
                            const k2r_fuzz_limits_t *lim);


/* Prints a byte string as a C-escaped literal to stderr (for failure messages). */
void k2r_fuzz_dump(const char *label, const char *bytes, size_t len);

#endif
