/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_url.h - parsing a redis:// or rediss:// URL into host, port,
 * credentials, db and whether to use TLS.
 *
 * A leaf: string handling only, no sockets and no other k2r module. The config
 * parses redis.url (and K2R_REDIS_URL) with it, so a bad URL is a config error
 * at the line that set it, long before anything connects.
 *
 * Not here: connecting (the sink, redis.c), the TLS settings (redis.tls in
 * config.c), or Unix sockets.
 */
#ifndef K2R_REDIS_URL_H
#define K2R_REDIS_URL_H

#include <stddef.h>

/* A parsed URL: redis[s]://[[user]:password@]host[:port][/db]. */
typedef struct k2r_redis_url_s {
    char *host;     /* hostname, IPv4 or IPv6 literal (without brackets) */
    int port;       /* 6379 when absent */
    char *user;     /* NULL when absent */
    char *password; /* NULL when absent */
    int db;         /* 0 when absent; Pub/Sub ignores it */
    int tls;        /* 1 for rediss:// (the port still defaults to 6379), else 0 */
} k2r_redis_url_t;

/*
 * Parses `url` into *out (percent-escapes in user and password are decoded).
 * Returns 0, or -1 with the reason in errstr (e.g. "port must be 1-65535").
 * On success the caller owns the strings of *out and releases them with
 * k2r_redis_url_free(); on failure *out is left zeroed.
 */
int k2r_redis_url_parse(const char *url, k2r_redis_url_t *out, char *errstr, size_t errstr_size);

/* Releases the strings of *url (the password is wiped first) and zeroes it;
 * a zeroed url, or NULL, is fine. */
void k2r_redis_url_free(k2r_redis_url_t *url);

#endif
