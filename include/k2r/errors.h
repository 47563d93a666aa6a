/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errors.h - the return codes every module shares, a list of error lines,
 * each at a file position, and the edit distance that suggests a fix.
 *
 * The config loader, the rules compiler and the environment overrides all
 * report through one k2r_errors_t, so a user sees every mistake of a file in
 * one pass, each as "file:line:col: path: what". A leaf: it knows no config
 * keys and no other k2r module.
 *
 * Not here: what a mistake is (config.c, rules.c), or printing the list (the
 * caller, main.c).
 */
#ifndef K2R_ERRORS_H
#define K2R_ERRORS_H

#include <stddef.h>

/*
 * What a function that can fail returns: 0, or one of these. Each means the
 * same in every module, so a caller can pass one up unchanged. Functions
 * whose contract only says "0 or -1" return K2R_ERR for every failure.
 */
enum {
    K2R_ERR = -1,         /* failed; the reason is in the caller's errstr, or was logged */
    K2R_ERR_NOMEM = -2,   /* out of memory */
    K2R_ERR_AUTH = -3,    /* a server refused the credentials: retrying cannot help */
    K2R_ERR_TIMEOUT = -4, /* a deadline passed */
    K2R_ERR_TLS = -5      /* a TLS peer's certificate did not verify, or the peer refused
                           * ours: retrying with the same settings cannot help */
};

/* A position in the config file, 1-based; line 0 means "not from the file". */
typedef struct k2r_mark_s {
    int line;
    int col;
} k2r_mark_t;

/* A list of error lines, each already formatted "file:line:col: path: what".
 * Zero-initialise it; the list owns its lines until k2r_errors_clear(). */
/* The most error lines a list keeps (k2r_errors_add); one more says so. */
#define K2R_ERRORS_MAX 1000

typedef struct k2r_errors_s {
    char **lines;
    size_t count;
    size_t cap;
} k2r_errors_t;

/* Appends one error (formatted into a copy the list owns). `file` may be NULL
 * (errors from the environment). Out of memory drops the line, never the
 * lines already collected. */
void k2r_errors_add(k2r_errors_t *errs, const char *file, k2r_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Releases the lines and resets the list to empty. */
void k2r_errors_clear(k2r_errors_t *errs);

/*
 * Levenshtein distance between the first `la` bytes of `a` and the string `b`,
 * for "did you mean" suggestions in config errors; SIZE_MAX for words of 63
 * bytes or more.
 */
size_t k2r_edit_distance(const char *a, size_t la, const char *b);

#endif
