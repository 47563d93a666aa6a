/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errors.c - collecting error lines and measuring how far a word is from a
 * known one.
 *
 * Each error is formatted once, with its file position in front, into a
 * bounded local buffer and copied into the list; nothing is printed here. The
 * edit distance works on two rows of a fixed size, so a suggestion costs no
 * allocation (config keys are short; longer words get no suggestion).
 *
 * Not here: deciding what is an error or which words to suggest (config.c,
 * rules.c).
 */
#include "k2r/errors.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void k2r_errors_add(k2r_errors_t *errs, const char *file, k2r_mark_t mark, const char *fmt, ...) {
    char msg[1024];
    char *line;
    int n = 0;
    va_list ap;

    /* A broken file can have errors without end (10,000 rules of one name):
     * the first K2R_ERRORS_MAX are kept, then one line says there are more. */
    if (errs->count > K2R_ERRORS_MAX)
        return;
    if (errs->count == K2R_ERRORS_MAX) {
        if (file)
            n = snprintf(msg, sizeof(msg), "%s: ", file);
        snprintf(msg + n, sizeof(msg) - (size_t)n,
                 "more errors follow; only the first %d are shown", K2R_ERRORS_MAX);
        goto keep;
    }

    if (file && mark.line > 0)
        n = snprintf(msg, sizeof(msg), "%s:%d:%d: ", file, mark.line, mark.col);
    else if (file)
        n = snprintf(msg, sizeof(msg), "%s: ", file);
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);

keep:
    if (errs->count == errs->cap) {
        size_t cap = errs->cap ? errs->cap * 2 : 8;
        char **lines = realloc(errs->lines, cap * sizeof(*lines));
        if (!lines)
            return; /* out of memory: the errors already collected still fail the load */
        errs->lines = lines;
        errs->cap = cap;
    }
    line = strdup(msg);
    if (line)
        errs->lines[errs->count++] = line;
}

void k2r_errors_clear(k2r_errors_t *errs) {
    for (size_t i = 0; i < errs->count; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->count = errs->cap = 0;
}

size_t k2r_edit_distance(const char *a, size_t la, const char *b) {
    size_t lb = strlen(b), prev[64], cur[64];

    if (la >= 63 || lb >= 63)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}
