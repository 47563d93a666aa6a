/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis.h - the Redis sink: one connection the bridge owns, pipelined PUBLISH.
 *
 * The sink owns its TCP socket and uses hiredis only for what hiredis is good
 * at without its own I/O: the command formatter and the reply reader. That
 * keeps the socket in our hands (timeouts, TLS with OpenSSL) and lets many commands be
 * in flight at once: PUBLISH throughput on one connection is 6k/s unpipelined
 * and hundreds of thousands per second at depth 256 (shared/PRODUCT.md).
 *
 * The sink knows nothing of Kafka, rules or offsets. It sends what it is given,
 * in order, and says which commands got which reply. A connection that failed
 * is thrown away; the caller decides when to connect again (backoff lives in
 * the bridge).
 */
#ifndef K2R_REDIS_H
#define K2R_REDIS_H

#include <stddef.h>

#include "k2r/errors.h"

/* The sink's settings. The strings are borrowed: k2r_redis_new() copies them. */
typedef struct k2r_redis_conf_s {
    const char *host;
    int port;
    const char *user;     /* NULL: AUTH with password only */
    const char *password; /* NULL: no AUTH */
    int connect_timeout_ms;
    int command_timeout_ms;       /* no reply progress for this long = connection lost */
    int pipeline_depth;           /* most commands sent whose replies are not read yet */
    int tls;                      /* rediss://: TLS on the sink's socket */
    const char *tls_ca_file;      /* NULL: the system's trust store */
    const char *tls_cert_file;    /* client certificate (mutual TLS); NULL: none */
    const char *tls_key_file;     /* its private key; set exactly when tls_cert_file is */
    const char *tls_server_name;  /* SNI and the name verified; NULL: host */
    int tls_insecure_skip_verify; /* 1: the server's certificate is not checked */
} k2r_redis_conf_t;

/* The loaded configuration (config.h); only k2r_config_redis_conf reads it. */
typedef struct k2r_config_s k2r_config_t;

/*
 * Fills *out from the config's redis: section (the URL as parsed, timeouts,
 * pipeline depth). The strings are borrowed from `cfg`: valid until
 * k2r_config_destroy(cfg). A password given on its own wins over one in the URL.
 */
void k2r_config_redis_conf(const k2r_config_t *cfg, k2r_redis_conf_t *out);

typedef enum k2r_publish_status_e {
    K2R_PUBLISH_PENDING = 0, /* not sent, or sent without a reply yet */
    K2R_PUBLISH_OK,          /* integer reply; `receivers` is set */
    K2R_PUBLISH_ERROR,       /* Redis answered with an error (or a non-integer) */
    K2R_PUBLISH_DROPPED      /* the caller gave it up (too old, Redis unavailable); not sent */
} k2r_publish_status_t;

/* One PUBLISH. The caller owns the strings; the sink fills in the result. */
typedef struct k2r_publish_s {
    const char *channel;
    size_t channel_len;
    const char *message;
    size_t message_len;
    k2r_publish_status_t status;
    long long receivers; /* subscribers reached, when OK */
    char error[96];      /* Redis's error line, when ERROR (truncated) */
} k2r_publish_t;

typedef struct k2r_redis_s k2r_redis_t;

/*
 * Returns a new, unconnected sink, or NULL with the reason in errstr. The conf
 * strings are copied. With TLS the CA, certificate and key files are read
 * here, so an unreadable or mismatched one is reported before anything
 * connects; tls_insecure_skip_verify logs a warning here.
 */
k2r_redis_t *k2r_redis_new(const k2r_redis_conf_t *conf, char *errstr, size_t errstr_size);

/* Closes the connection and releases the sink; NULL does nothing. */
void k2r_redis_destroy(k2r_redis_t *redis);

/*
 * Connects (within connect_timeout_ms), authenticates when a password is set,
 * and checks the server answers PING. Returns 0, or -1 with the reason in
 * errstr ("connect 127.0.0.1:6379: Connection refused"). Returns K2R_ERR_AUTH (errors.h) when the
 * server refused the credentials ("AUTH: WRONGPASS ...", "PING: NOAUTH ...",
 * "PING: NOPERM ..."): trying again with the same settings cannot help.
 * Returns K2R_ERR_TLS when the server's certificate did not verify, errstr
 * naming OpenSSL's reason ("certificate verify failed: certificate has
 * expired"), or the server refused the client's certificate: the same.
 * An existing connection is closed first.
 */
int k2r_redis_connect(k2r_redis_t *redis, char *errstr, size_t errstr_size);

/*
 * A test seam, not used by the daemon: makes `fd`, a stream socket the caller
 * has already connected (one end of a socketpair(AF_UNIX, SOCK_STREAM) in
 * tests/unit/test_redis_sink.c), the sink's connection in place of the TCP
 * connect, then runs the same handshake as k2r_redis_connect (AUTH when a
 * password is set, PING) within connect_timeout_ms, so the far end must
 * answer it. Takes ownership of fd in every case (closed on failure, else by
 * k2r_redis_disconnect) and sets it non-blocking. With TLS configured the
 * TLS handshake runs on it first, as on a TCP connection. Returns as
 * k2r_redis_connect does: 0, -1, K2R_ERR_AUTH or K2R_ERR_TLS.
 */
int k2r_redis_adopt_fd(k2r_redis_t *redis, int fd, char *errstr, size_t errstr_size);

/* 1 when a connection is up (as far as the sink knows), else 0. */
int k2r_redis_connected(const k2r_redis_t *redis);

/* Closes the connection, if any. */
void k2r_redis_disconnect(k2r_redis_t *redis);

/*
 * Publishes every item whose status is PENDING, in array order, pipelined
 * with at most pipeline_depth replies outstanding. Items in any other state
 * (OK, ERROR, DROPPED) are left alone, so a failed call can simply be repeated after a reconnect.
 *
 * Returns 0 when every item has a reply (OK or ERROR). Returns -1 when the
 * connection failed or timed out (or was not up): the connection is closed,
 * items that got their reply keep it, the rest stay PENDING (some of them may
 * have reached Redis; sending them again can duplicate them), errstr says why.
 */
int k2r_redis_publish(k2r_redis_t *redis, k2r_publish_t *items, size_t nitems, char *errstr,
                      size_t errstr_size);

#endif
