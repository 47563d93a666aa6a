/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis.h - the Redis sink: pipelined PUBLISH (or SPUBLISH) on one connection
 * (a server, or the master Sentinel names), or on one per primary of a Redis
 * Cluster (cluster.c), behind the same calls.
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
#include <stdint.h>

#include "k2r/errors.h"
#include "k2r/stats.h" /* k2r_shard_stats_t */

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
    int sharded;                  /* SPUBLISH (sharded Pub/Sub, Redis 7) instead of PUBLISH */
    int idle_check_ms;            /* k2r_redis_tick PINGs a connection idle this long */
    /* Sentinel: when sentinel_master is set, host and port are not used: the
     * sentinels name the master at every connect. */
    const char *sentinel_master;
    char *const *sentinel_addrs; /* "host:port" */
    size_t nsentinel_addrs;
    const char *sentinel_user;     /* NULL: AUTH with password only */
    const char *sentinel_password; /* NULL: no AUTH */
    int sentinel_tls;              /* TLS to the sentinels too, with the tls_* settings */
    /* Cluster: when set, host and port are not used: the seeds' slot map
     * says where the primaries are (cluster.c). */
    char *const *cluster_addrs; /* "host:port" */
    size_t ncluster_addrs;
    /* Dedupe (the `dedupe` setting), for items that name their record
     * (k2r_publish_t.dd_topic): how long a record's mark lives after its
     * last use, and the prefix of the marks' keys. */
    int64_t dedupe_window_ms;   /* 0: dedupe off (dd_topic is not looked at) */
    const char *dedupe_prefix;  /* NULL: "k2r:dedupe:" */
    const char *history_prefix; /* a rule's history stream: this + channel; NULL: "history:" */
    /* 1: some rule keeps history: the notification script is loaded at
     * every connect (SCRIPT LOAD), as it is when dedupe is on. */
    int history;
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
    long long receivers;  /* subscribers reached, when OK */
    char error[96];       /* Redis's error line, when ERROR (truncated) */
    unsigned char asking; /* the sink's own (Cluster -ASK); 0 from the caller */
    /* Set by the sink with OK when dedupe found that the record's other
     * publisher (the bridge, or the shim) had published it: not sent again. */
    unsigned char suppressed;
    /* Dedupe: the record this notification came from, named the same way by
     * the bridge and by the producer shim, so that one publish between them
     * reaches subscribers (a script on Redis checks and publishes in one
     * step). dd_topic NULL: a plain PUBLISH. dd_index is the notification's
     * place among its record's notifications (k2r_mapping_t.publish[]). */
    const char *dd_topic;
    int32_t dd_partition;
    int64_t dd_offset;
    uint32_t dd_index;
    /* History (a rule's `history`): the notification is also appended to the
     * stream beside its channel, trimmed to about history_maxlen entries and
     * expiring history_ttl_ms (0: never) after the last; 0: no history. */
    uint32_t history_maxlen;
    int64_t history_ttl_ms;
} k2r_publish_t;

/* 1 when the item goes through the notification script (dedupe on, with a
 * window, or history) rather than a plain PUBLISH: the single sink and the
 * cluster's router (which sends script items to their channel's slot) ask
 * the same question. */
static inline int k2r_publish_uses_script(const k2r_publish_t *item, int64_t dedupe_window_ms) {
    return (item->dd_topic && dedupe_window_ms > 0) || item->history_maxlen > 0;
}

typedef struct k2r_redis_s k2r_redis_t;

/* The notification script (dedupe, history) that every connection loads
 * with SCRIPT LOAD: its source, *len its length. For docs and tests. */
const char *k2r_redis_script(size_t *len);

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
 *
 * With Sentinel, the sentinels are asked first, in turn, for the master's
 * address (SENTINEL get-master-addr-by-name; the one that answers is asked
 * first next time), and the server found there must say it is a master
 * (ROLE) before it is used: a failover in progress is -1, to be tried again.
 */
int k2r_redis_connect(k2r_redis_t *redis, char *errstr, size_t errstr_size);

/* The same within `deadline_ms` (monotonic, k2r_now_ms) when that comes before
 * connect_timeout_ms from now: a drain's deadline bounds its reconnects. */
int k2r_redis_connect_by(k2r_redis_t *redis, int64_t deadline_ms, char *errstr, size_t errstr_size);

/* Fills out[] (up to max) with each connection the sink keeps: the server,
 * or each cluster primary; returns how many. */
size_t k2r_redis_shards(const k2r_redis_t *redis, k2r_shard_stats_t *out, size_t max);

/* "host:port" of the server connected to, or last tried ("[v6]:port"). */
const char *k2r_redis_addr(const k2r_redis_t *redis);

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

/* k2r_redis_publish's wait: at most wait_ms (0: only what can be done without
 * waiting), and not past the moment wake_fd (when >= 0) becomes readable. */
typedef struct k2r_redis_wait_s {
    int wait_ms;
    int wake_fd;
} k2r_redis_wait_t;

/* k2r_redis_publish returned before every item had its reply. */
#define K2R_REDIS_AGAIN 1

/*
 * Publishes every item whose status is PENDING, in array order, pipelined
 * with at most pipeline_depth replies outstanding. Items in any other state
 * (OK, ERROR, DROPPED) are left alone, so a failed call can simply be repeated after a reconnect.
 *
 * Without `wait` (NULL) it returns when the publish is over. With one it
 * never blocks longer than the wait allows and returns K2R_REDIS_AGAIN when
 * the publish is not over yet: the caller does its other work (a poll of
 * Kafka, signals, health) and calls again with the same `items` and
 * `nitems`, which the sink keeps referring to until the publish is over. Between
 * calls the caller may only re-point the channel and message of items that
 * are still PENDING to the same bytes elsewhere (its buffer moved).
 *
 * Returns 0 when every item has a reply (OK or ERROR). Returns -1 when the
 * connection failed or timed out (or was not up): the connection is closed,
 * items that got their reply keep it, the rest stay PENDING (some of them may
 * have reached Redis; sending them again can duplicate them), errstr says why.
 * The command timeout counts from the last byte moved, across calls.
 */
int k2r_redis_publish(k2r_redis_t *redis, k2r_publish_t *items, size_t nitems,
                      const k2r_redis_wait_t *wait, char *errstr, size_t errstr_size);

/* 1 while a publish started by k2r_redis_publish is not over. */
int k2r_redis_publishing(const k2r_redis_t *redis);

/*
 * Between publishes, without blocking: reads what the server sent (the
 * answer to an idle PING; anything else, EOF included, means the connection
 * is gone), and PINGs a connection that moved no byte for idle_check_ms, so
 * that a connection the server or the network dropped is noticed without a
 * publish. Returns 0 (also when not connected or a publish is under way), or
 * -1 when the connection failed: it is closed, errstr says why ("no answer
 * to an idle PING within 5000 ms", "the server answered LOADING ...").
 */
int k2r_redis_tick(k2r_redis_t *redis, char *errstr, size_t errstr_size);

#endif
