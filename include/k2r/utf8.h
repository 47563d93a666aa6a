/* SPDX-License-Identifier: Apache-2.0 */
/*
 * utf8.h - the project's one UTF-8 validator.
 *
 * A leaf: bytes in, a length out, no allocation and no other k2r module. The
 * rules use it to check channel values, the logger to keep every JSON line
 * valid whatever a message holds.
 *
 * Not here: decoding to code points for their own sake, normalisation, or
 * replacing bad bytes (each caller decides: the logger writes U+FFFD, the
 * rules escape or refuse).
 */
#ifndef K2R_UTF8_H
#define K2R_UTF8_H

#include <stddef.h>

/*
 * Length of the valid UTF-8 sequence at p (n > 0 bytes available), or 0 when
 * the bytes there are not one: overlong forms, surrogates and code points
 * above U+10FFFF are refused. The one validator of the project.
 */
size_t k2r_utf8_char(const unsigned char *p, size_t n);

#endif
