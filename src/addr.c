/* SPDX-License-Identifier: Apache-2.0 */
/*
 * addr.c - the listen-address splitter.
 *
 * An IPv6 host must be bracketed, so the last ':' always separates the port;
 * an unbracketed address with more than one ':' is refused rather than
 * guessed at. The port is decimal, 1-65535.
 *
 * Not here: name resolution or sockets (http.c).
 */
#include "k2r/addr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int k2r_split_listen(const char *listen, char *host, size_t host_size, int *port) {
    const char *colon, *h = listen;
    size_t hlen;
    char *end;
    long n;

    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return -1;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            return -1; /* none, or an IPv6 address without brackets */
        hlen = (size_t)(colon - listen);
    }
    if (hlen >= host_size)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    errno = 0;
    n = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || n < 1 || n > 65535)
        return -1;
    *port = (int)n;
    return 0;
}
