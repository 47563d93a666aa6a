/* SPDX-License-Identifier: Apache-2.0 */
/*
 * utf8.c - the UTF-8 validator: one sequence at a time, strictly.
 *
 * Strict means what RFC 3629 says: no overlong forms, no surrogates
 * (U+D800-U+DFFF), nothing above U+10FFFF, no lone continuation bytes. A
 * caller walks a string by the lengths returned and decides what to do with
 * a 0.
 *
 * Not here: what to do with invalid bytes (log.c, map.c).
 */
#include "k2r/utf8.h"

size_t k2r_utf8_char(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t len;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}
