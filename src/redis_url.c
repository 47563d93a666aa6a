/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_url.c - the redis:// and rediss:// URL parser: scheme (rediss:// means
 * TLS), userinfo, host, port, db.
 *
 * Pure string work with one allocation per decoded part. Percent-escapes in
 * the user and password are decoded; error messages never quote the
 * userinfo, because it holds the password, and a password is wiped before its
 * memory is freed.
 *
 * Not here: anything that connects (redis.c), or choosing between a password
 * in the URL and one given on its own (k2r_config_redis_conf in redis.c).
 */
#include "k2r/redis_url.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Returns a new NUL-terminated copy of s[0..len) with %XX escapes decoded, or
 * NULL with the reason in errstr. %00 is refused: the result is a C string.
 */
static char *percent_decode(const char *s, size_t len, const char *what, char *errstr,
                            size_t errstr_size) {
    char *out = malloc(len + 1);
    size_t n = 0;

    if (!out) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        if (len - i < 3 || hexval((unsigned char)s[i + 1]) < 0 ||
            hexval((unsigned char)s[i + 2]) < 0) {
            snprintf(errstr, errstr_size, "bad percent-escape in %s (expected %%XX)", what);
            goto fail;
        }
        out[n] = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
        if (out[n] == '\0') {
            snprintf(errstr, errstr_size, "%%00 is not allowed in %s", what);
            goto fail;
        }
        n++;
        i += 2;
    }
    out[n] = '\0';
    return out;

fail:
    free(out);
    return NULL;
}

/*
 * Parses s[0..len) as plain decimal digits (no sign, no spaces) in [min, max].
 * Returns the value, or -1 when it is not such a number.
 */
static long parse_decimal(const char *s, size_t len, long min, long max) {
    long v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (max - (s[i] - '0')) / 10)
            return -1; /* above max, and stopping here keeps v from overflowing */
        v = v * 10 + (s[i] - '0');
    }
    return v >= min ? v : -1;
}

static int is_host_char(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static int is_ipv6_char(int c) {
    return hexval(c) >= 0 || c == ':' || c == '.';
}

void k2r_redis_url_free(k2r_redis_url_t *url) {
    if (!url)
        return;
    free(url->host);
    free(url->user);
    if (url->password) {
        explicit_bzero(url->password, strlen(url->password));
        free(url->password);
    }
    memset(url, 0, sizeof(*url));
}

/*
 * The grammar, in order: scheme, optional userinfo up to the last '@' of the
 * authority, host (bracketed IPv6 or a name), optional :port, optional /db,
 * optional trailing '/'. Error messages never quote the userinfo, because it
 * holds the password. On failure *out is left zeroed, so freeing it is safe.
 */
int k2r_redis_url_parse(const char *url, k2r_redis_url_t *out, char *errstr, size_t errstr_size) {
    const char *p, *auth_end, *at, *host, *host_end, *end;
    long v;
    int tls = 0;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (url && strncasecmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (url && strncasecmp(url, "rediss://", 9) == 0) {
        p = url + 9;
        tls = 1;
    } else {
        snprintf(errstr, errstr_size, "expected a redis:// or rediss:// URL");
        return -1;
    }
    end = p + strlen(p);
    auth_end = strchr(p, '/');
    if (!auth_end)
        auth_end = end;

    /* The last '@' wins, so an unescaped '@' in a password still parses. */
    at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));

        if (!colon) {
            snprintf(errstr, errstr_size, "user without a password (expected user:password@)");
            goto fail;
        }
        if (colon == at - 1) {
            snprintf(errstr, errstr_size, "empty password");
            goto fail;
        }
        if (colon > p) {
            out->user = percent_decode(p, (size_t)(colon - p), "user", errstr, errstr_size);
            if (!out->user)
                goto fail;
        }
        out->password =
            percent_decode(colon + 1, (size_t)(at - colon - 1), "password", errstr, errstr_size);
        if (!out->password)
            goto fail;
        p = at + 1;
    }

    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end) {
            snprintf(errstr, errstr_size, "unclosed [ in host");
            goto fail;
        }
        if (host_end == host) {
            snprintf(errstr, errstr_size, "empty host");
            goto fail;
        }
        for (const char *q = host; q < host_end; q++) {
            if (!is_ipv6_char((unsigned char)*q)) {
                snprintf(errstr, errstr_size, "invalid IPv6 address in []");
                goto fail;
            }
        }
        p = host_end + 1;
        if (p < auth_end && *p != ':') {
            snprintf(errstr, errstr_size, "unexpected \"%.*s\" after ]", (int)(auth_end - p), p);
            goto fail;
        }
    } else {
        host = p;
        while (p < auth_end && *p != ':')
            p++;
        host_end = p;
        if (host_end == host) {
            snprintf(errstr, errstr_size, "empty host");
            goto fail;
        }
        for (const char *q = host; q < host_end; q++) {
            if (!is_host_char((unsigned char)*q)) {
                snprintf(errstr, errstr_size, "invalid character '%c' in host", *q);
                goto fail;
            }
        }
        if (p < auth_end && memchr(p + 1, ':', (size_t)(auth_end - p - 1))) {
            snprintf(errstr, errstr_size, "IPv6 addresses need brackets, as in redis://[::1]:6379");
            goto fail;
        }
    }
    out->host = strndup(host, (size_t)(host_end - host));
    if (!out->host) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }

    if (p < auth_end) { /* *p == ':' */
        v = parse_decimal(p + 1, (size_t)(auth_end - p - 1), 1, 65535);
        if (v < 0) {
            snprintf(errstr, errstr_size, "port must be 1-65535");
            goto fail;
        }
        out->port = (int)v;
    }

    /* The path: nothing, "/", "/<db>" or "/<db>/". */
    p = auth_end;
    if (p < end && p + 1 < end) { /* *p == '/' */
        const char *db = p + 1;
        const char *db_end = strchr(db, '/');

        if (!db_end)
            db_end = end;
        v = parse_decimal(db, (size_t)(db_end - db), 0, INT_MAX);
        if (v < 0) {
            snprintf(errstr, errstr_size, "db must be a non-negative integer");
            goto fail;
        }
        out->db = (int)v;
        if (db_end < end && db_end + 1 < end) {
            snprintf(errstr, errstr_size, "unexpected \"%s\" after the db", db_end + 1);
            goto fail;
        }
    }
    out->tls = tls;
    return 0;

fail:
    k2r_redis_url_free(out);
    return -1;
}
