/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis.c - the Redis sink: one TCP connection over which PUBLISH (or
 * SPUBLISH) commands are pipelined, found through Sentinel when configured,
 * and the sink's settings as the config gives them (k2r_config_redis_conf). The redis:// URL parser
 * is redis_url.c.
 *
 * The socket is ours: non-blocking, connected with a deadline, driven by
 * poll(2), written with MSG_NOSIGNAL so a dead peer is an error code and never
 * a SIGPIPE. hiredis (0.14.1 on Debian 12) is used only where it needs no I/O:
 * its reader parses replies and redisFormatCommandArgv() formats the setup
 * commands. The hot path does not allocate per command: PUBLISH is written as
 * RESP straight into one output buffer that lives as long as the sink (see
 * out_append_publish for why), and the reader builds no reply objects, it
 * records each reply in the sink (see reply_functions).
 *
 * TLS (rediss://) is OpenSSL on the same socket: the SSL_CTX (trust store,
 * client certificate) is built once in k2r_redis_new, an SSL object per
 * connection right after the TCP connect (start_session: SNI, host name
 * verification, a non-blocking handshake within the connect deadline). The
 * seam is two functions, sock_send and sock_recv: everything above them (the
 * output buffer, the reader, poll with its timeouts) is the same with and
 * without TLS. SSL_ERROR_WANT_WRITE on a read (or WANT_READ on a write, which
 * the loops always poll for anyway) sets `want_write`, which adds POLLOUT to
 * the next poll. A certificate that does not verify is K2R_ERR_TLS, not an
 * outage: the bridge stops on it as on refused credentials.
 *
 * A publish is resumable (k2r_redis_publish with a wait): its cursors live
 * in the sink, so the loop gets its turn back while replies are late, and a
 * readable wake descriptor (librdkafka's queue) ends the wait early. Between
 * publishes k2r_redis_tick PINGs an idle connection. With Sentinel the sink
 * asks the sentinels for the master before each connect (a second sink of
 * this kind speaks to them) and checks ROLE; with Cluster every call is
 * handed to cluster.c, which keeps one sink of this kind per primary.
 *
 * This is not a Redis client: there is no reconnect logic (the bridge owns
 * backoff) and no SELECT (Pub/Sub ignores the db). The commands sent are
 * AUTH, PING, PUBLISH or SPUBLISH (redis.sharded), ASKING before a
 * redirected one, and, while connecting, ROLE, SENTINEL
 * get-master-addr-by-name and CLUSTER SLOTS. A connection that failed in
 * any way is closed and thrown away, with its reader, so the next connection
 * never sees bytes from the previous one.
 *
 * Logging: one debug line per connection made, closed or lost, nothing per
 * command. The caller (bridge_publish.c) logs the same events at info and warn with
 * the context only it has, and rate-limits repeats during an outage; a failed
 * connect attempt is reported through errstr alone.
 */
#include "k2r/redis.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "k2r/addr.h"
#include "k2r/buf.h"
#include "k2r/clock.h"
#include "k2r/config.h"
#include "k2r/log.h"
#include "k2r/slots.h"
#include "redis_int.h"

/* The longest reply the sink accepts (see take_reply). */
#define K2R_REDIS_REPLY_MAX 65536 /* 64 KiB */

/* Replies are read in chunks of this size: four thousand PUBLISH replies each. */
#define READ_CHUNK (16 * 1024)

/*
 * Commands are formatted ahead of the socket only up to this many unsent
 * bytes, so a deep pipeline of large messages does not buffer a whole batch.
 */
#define OUT_HIGH_WATER ((size_t)1024 * 1024)

/* The output buffer's first size; it doubles from there when a batch needs more. */
#define OUT_INITIAL ((size_t)64 * 1024)

/*
 * The last top-level reply the reader completed, as far as the sink cares:
 * its type, its integer, and the first bytes of a status or error line.
 */
typedef struct reply_s {
    int type;          /* REDIS_REPLY_*, or 0 for a type these functions do not build */
    long long integer; /* when REDIS_REPLY_INTEGER */
    size_t len;        /* bytes kept in str (the line may have been longer) */
    char str[256];     /* when REDIS_REPLY_STATUS or _ERROR; NUL-terminated */
    /* A top-level array's first two bulk strings (SENTINEL get-master-addr-by-name,
     * ROLE); "" when absent. Only the setup commands look at them. */
    char elem[2][256];
} reply_t;

struct k2r_redis_s {
    char *host;
    int port;
    char *user;
    char *password;
    int connect_timeout_ms;
    int command_timeout_ms;
    int pipeline_depth;

    SSL_CTX *ssl_ctx;  /* rediss://: the trust store and client certificate; else NULL */
    char *server_name; /* SNI and the name verified (rediss:// only) */
    int verify;        /* 0: redis.tls.insecure_skip_verify */
    SSL *ssl;          /* the connection's TLS state; NULL without TLS or connection */
    int want_write;    /* the last SSL_read wanted the socket writable */
    int tls_refused;   /* this connection failed for a reason retrying cannot fix */

    int sharded;           /* SPUBLISH instead of PUBLISH */
    int idle_check_ms;     /* PING a connection that moved no byte for this long */
    int server_name_fixed; /* redis.tls.server_name was given: not the target's host */

    /* Sentinel: the master's name, where to ask (host:port strings, the one
     * that answered last first), and a sink of its own that speaks to them. */
    char *sentinel_master;
    char **sentinels;
    size_t nsentinels;
    k2r_redis_t *sentinel;

    /* Cluster: everything is the cluster's (cluster.c); this sink only
     * dispatches to it. */
    k2r_cluster_t *cluster;

    char addr[300]; /* "host:port" or "[v6]:port", for messages */
    int fd;         /* -1 when not connected */

    /* A publish across calls (k2r_redis_publish): the caller's items, the
     * next to format, the next a reply answers, how many are in flight, and
     * when bytes last moved. `pings` replies are owed to idle PINGs first. */
    k2r_publish_t *p_items;
    size_t p_n, p_send, p_reply, p_inflight;
    int64_t p_progress_ms;
    int p_active;
    int pings;
    int64_t ping_sent_ms;
    int64_t last_io_ms; /* a byte moved in either direction */
    uint64_t connects;  /* sessions started since the sink was made */
    /* The pipeline depth in use: halved each time a connection dies with
     * commands in flight, doubled back (up to pipeline_depth) by each
     * publish that finishes, so that a server cut mid-pipeline again and
     * again still makes progress (the way TCP backs off). */
    int depth_now;
    redisReader *reader;
    reply_t reply; /* filled by reply_functions as the reader completes a reply */

    char *out; /* formatted commands; [out_off, out_len) not sent yet */
    size_t out_len;
    size_t out_off;
    size_t out_cap;

    /* The notification script (dedupe, history): loaded at connect when
     * `scripts`; its keys are named for a cluster when cluster_member. */
    int scripts;
    int cluster_member;
    int64_t dd_window_ms;
    char *dd_prefix;
    char *hist_prefix;
    k2r_buf_t key[2]; /* the keys of the command being formatted */
    char sha[41];     /* the script's SHA1 (notify_sha) */

    char in[READ_CHUNK];
};

/* --------------------------------------------------------------- replies */

/*
 * hiredis's default reply objects cost a calloc and a free per reply (and a
 * malloc per error line): about half of what parsing a PUBLISH reply costs.
 * These functions build no objects. They record the top-level reply in the
 * sink (reply_t is all the sink ever reads) and hand the reader a pointer to
 * that record, which is never freed; elements of an array, which a PUBLISH
 * never gets, are parsed and dropped. The reader's privdata is the sink.
 */
static void *reply_record(const redisReadTask *task, int type) {
    k2r_redis_t *redis = task->privdata;

    if (!task->parent) {
        redis->reply.type = type;
        redis->reply.len = 0;
        redis->reply.str[0] = '\0';
        redis->reply.elem[0][0] = redis->reply.elem[1][0] = '\0';
    }
    return &redis->reply;
}

static void *reply_string(const redisReadTask *task, char *str, size_t len) {
    reply_t *reply = reply_record(task, task->type);

    /* Only status and error lines are read; a bulk string is not worth copying. */
    if (!task->parent && (task->type == REDIS_REPLY_STATUS || task->type == REDIS_REPLY_ERROR)) {
        reply->len = len < sizeof(reply->str) - 1 ? len : sizeof(reply->str) - 1;
        memcpy(reply->str, str, reply->len);
        reply->str[reply->len] = '\0';
    } else if (task->parent && !task->parent->parent && task->idx >= 0 && task->idx < 2 &&
               task->type == REDIS_REPLY_STRING) {
        size_t n = len < sizeof(reply->elem[0]) - 1 ? len : sizeof(reply->elem[0]) - 1;

        memcpy(reply->elem[task->idx], str, n);
        reply->elem[task->idx][n] = '\0';
    }
    return reply;
}

/* hiredis 1.0 made createArray's element count a size_t (0.14: int). */
#if HIREDIS_MAJOR >= 1
typedef size_t reply_elements_t;
#else
typedef int reply_elements_t;
#endif

static void *reply_array(const redisReadTask *task, reply_elements_t elements) {
    (void)elements;
    return reply_record(task, REDIS_REPLY_ARRAY);
}

static void *reply_integer(const redisReadTask *task, long long value) {
    reply_t *reply = reply_record(task, REDIS_REPLY_INTEGER);

    if (!task->parent)
        reply->integer = value;
    return reply;
}

static void *reply_nil(const redisReadTask *task) {
    return reply_record(task, REDIS_REPLY_NIL);
}

static void reply_free(void *obj) {
    (void)obj; /* the record lives in the sink */
}

/*
 * Designated initializers: hiredis 1.x adds members (createDouble, createBool)
 * that stay NULL here, and for those types its reader returns a pointer that
 * is not &redis->reply, which take_reply turns into "unexpected reply type".
 */
static redisReplyObjectFunctions reply_functions = {
    .createString = reply_string,
    .createArray = reply_array,
    .createInteger = reply_integer,
    .createNil = reply_nil,
    .freeObject = reply_free,
};

/* ---------------------------------------------------- the notification script */

/*
 * One notification with dedupe or history, in one atomic step on Redis, so
 * that a reader never sees the history without the publish or the other way
 * round, and the bridge and the producer shim publish a record once between
 * them (whoever comes second finds the mark and publishes nothing).
 *
 * KEYS: the dedupe mark (when ARGV[1] is not "0"), the history stream (when
 * ARGV[7] is not "0"), the channel (when sharded: a sharded channel is a key
 * to Redis Cluster). ARGV: [1] "b" a bit in a bitmap, "k" a key per
 * notification, "0" none; [2] the bit; [3] the window in ms; [4] PUBLISH or
 * SPUBLISH; [5] the channel; [6] the notification; [7] the history's
 * MAXLEN (~), "0" none; [8] its ttl in ms, "0" none.
 *
 * Returns the publish's receivers, or -1 when the mark was already there.
 * With history the live message gains the stream entry's id as its first
 * member, "history_id" (docs/history.md), so a late joiner can merge the
 * stream and the channel without gap or duplicate; the stream keeps the plain
 * notification in its field "n".
 */
static const char notify_script[] =
    "local k = 1\n"
    "if ARGV[1] == 'b' then\n"
    "  if redis.call('SETBIT', KEYS[1], ARGV[2], 1) == 1 then return -1 end\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "  k = 2\n"
    "elseif ARGV[1] == 'k' then\n"
    "  if not redis.call('SET', KEYS[1], '', 'NX', 'PX', ARGV[3]) then return -1 end\n"
    "  k = 2\n"
    "end\n"
    "local m = ARGV[6]\n"
    "if ARGV[7] ~= '0' then\n"
    "  local id = redis.call('XADD', KEYS[k], 'MAXLEN', '~', ARGV[7], '*', 'n', m)\n"
    "  if ARGV[8] ~= '0' then redis.call('PEXPIRE', KEYS[k], ARGV[8]) end\n"
    "  if m == '{}' then m = '{\"history_id\":\"' .. id .. '\"}'\n"
    "  elseif string.sub(m, 1, 1) == '{' then\n"
    "    m = '{\"history_id\":\"' .. id .. '\",' .. string.sub(m, 2)\n"
    "  end\n"
    "end\n"
    "return redis.call(ARGV[4], ARGV[5], m)\n";

const char *k2r_redis_script(size_t *len) {
    *len = sizeof(notify_script) - 1;
    return notify_script;
}

/* Writes the script's SHA1 in hex, as EVALSHA names it, into hex[41]; ""
 * when OpenSSL could not compute it (then EVAL sends the source instead). */
static void notify_sha(char hex[41]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    hex[0] = '\0';
    if (EVP_Digest(notify_script, sizeof(notify_script) - 1, md, &n, EVP_sha1(), NULL) != 1 ||
        n != 20)
        return;
    for (size_t i = 0; i < 20; i++)
        snprintf(hex + (i * 2), 3, "%02x", md[i]);
}

/* ----------------------------------------------------------------- sink */

/* The first error on OpenSSL's queue for this thread, as text (then the queue
 * is cleared), or `dflt` when the queue is empty. */
static const char *ssl_reason(char *buf, size_t size, const char *dflt) {
    unsigned long e = ERR_peek_error();

    if (!e) {
        snprintf(buf, size, "%s", dflt);
        return buf;
    }
    /* The reason alone ("certificate verify failed"), or the whole code
     * when OpenSSL has no text for it. */
    if (ERR_reason_error_string(e))
        snprintf(buf, size, "%s", ERR_reason_error_string(e));
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

/*
 * Builds the SSL_CTX of a rediss:// sink: TLS 1.2 or newer, the CA file or the
 * system's trust store, the client certificate and key when given, and the
 * server name. Returns 0, or -1 with the reason (and the file) in errstr.
 */
static int tls_context(k2r_redis_t *redis, const k2r_redis_conf_t *conf, char *errstr,
                       size_t errstr_size) {
    char why[256];
    SSL_CTX *ctx;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(errstr, errstr_size, "redis: TLS: %s",
                 ssl_reason(why, sizeof(why), "cannot make a context"));
        return -1;
    }
    redis->ssl_ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Partial writes and a buffer that moves between retries: out_flush
     * hands SSL_write what is left of an output buffer that may be
     * reallocated or slid while a write waits. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (conf->tls_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, conf->tls_ca_file, NULL) != 1) {
            snprintf(errstr, errstr_size, "redis.tls.ca_file: %s: %s", conf->tls_ca_file,
                     ssl_reason(why, sizeof(why), "cannot load"));
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(errstr, errstr_size, "redis: TLS: the system's trust store: %s",
                 ssl_reason(why, sizeof(why), "cannot load"));
        return -1;
    }
    if (conf->tls_cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, conf->tls_cert_file) != 1) {
            snprintf(errstr, errstr_size, "redis.tls.cert_file: %s: %s", conf->tls_cert_file,
                     ssl_reason(why, sizeof(why), "cannot load"));
            return -1;
        }
        if (!conf->tls_key_file ||
            SSL_CTX_use_PrivateKey_file(ctx, conf->tls_key_file, SSL_FILETYPE_PEM) != 1) {
            snprintf(errstr, errstr_size, "redis.tls.key_file: %s: %s",
                     conf->tls_key_file ? conf->tls_key_file : "(none)",
                     ssl_reason(why, sizeof(why), "cannot load"));
            return -1;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(errstr, errstr_size, "redis.tls.key_file: %s does not match %s: %s",
                     conf->tls_key_file, conf->tls_cert_file,
                     ssl_reason(why, sizeof(why), "mismatch"));
            return -1;
        }
    }
    redis->verify = !conf->tls_insecure_skip_verify;
    SSL_CTX_set_verify(ctx, redis->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    redis->server_name = strdup(conf->tls_server_name ? conf->tls_server_name
                                : conf->host          ? conf->host
                                                      : "");
    if (!redis->server_name) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (!redis->verify)
        k2r_log_warn("redis: redis.tls.insecure_skip_verify is true: the certificate of %s is not "
                     "verified, so anyone on the path can pose as it",
                     redis->addr);
    return 0;
}

/* Points the sink at host:port (its addr for messages, and the TLS name to
 * verify unless redis.tls.server_name fixed one). Returns 0, or -1 when out
 * of memory (the old target stays). */
static int set_target(k2r_redis_t *redis, const char *host, int port) {
    char *h = strdup(host), *name = NULL;

    if (!h)
        return -1;
    if (redis->ssl_ctx && !redis->server_name_fixed && !(name = strdup(host))) {
        free(h);
        return -1;
    }
    free(redis->host);
    redis->host = h;
    redis->port = port;
    if (name) {
        free(redis->server_name);
        redis->server_name = name;
    }
    snprintf(redis->addr, sizeof(redis->addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return 0;
}

k2r_redis_t *k2r_redis_new(const k2r_redis_conf_t *conf, char *errstr, size_t errstr_size) {
    /* With Sentinel or Cluster, host and port are found, not given. */
    int found = conf->sentinel_master || conf->ncluster_addrs;
    k2r_redis_t *redis;

    if (!found && (!conf->host || !*conf->host)) {
        snprintf(errstr, errstr_size, "redis: no host");
        return NULL;
    }
    if (!found && (conf->port < 1 || conf->port > 65535)) {
        snprintf(errstr, errstr_size, "redis: port must be 1-65535, not %d", conf->port);
        return NULL;
    }
    if (conf->sentinel_master && conf->nsentinel_addrs == 0) {
        snprintf(errstr, errstr_size, "redis: Sentinel without sentinel addresses");
        return NULL;
    }
    if (conf->connect_timeout_ms < 1 || conf->command_timeout_ms < 1) {
        snprintf(errstr, errstr_size, "redis: timeouts must be at least 1 ms");
        return NULL;
    }
    if (conf->pipeline_depth < 1) {
        snprintf(errstr, errstr_size, "redis: pipeline depth must be at least 1, not %d",
                 conf->pipeline_depth);
        return NULL;
    }
    redis = calloc(1, sizeof(*redis));
    if (!redis) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    redis->fd = -1;
    redis->connect_timeout_ms = conf->connect_timeout_ms;
    if (conf->ncluster_addrs) { /* this sink only hands the calls on */
        redis->cluster = k2r_cluster_new(conf, errstr, errstr_size);
        if (!redis->cluster) {
            free(redis);
            return NULL;
        }
        return redis;
    }
    redis->command_timeout_ms = conf->command_timeout_ms;
    redis->pipeline_depth = conf->pipeline_depth;
    redis->depth_now = conf->pipeline_depth;
    redis->sharded = conf->sharded;
    redis->idle_check_ms = conf->idle_check_ms;
    redis->dd_window_ms = conf->dedupe_window_ms;
    redis->scripts = conf->dedupe_window_ms > 0 || conf->history;
    notify_sha(redis->sha);
    redis->dd_prefix = strdup(conf->dedupe_prefix ? conf->dedupe_prefix : "k2r:dedupe:");
    redis->hist_prefix = strdup(conf->history_prefix ? conf->history_prefix : "history:");
    if (!redis->dd_prefix || !redis->hist_prefix) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    redis->server_name_fixed = conf->tls_server_name != NULL;
    redis->user = conf->user ? strdup(conf->user) : NULL;
    redis->password = conf->password ? strdup(conf->password) : NULL;
    if ((conf->user && !redis->user) || (conf->password && !redis->password)) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (conf->tls && tls_context(redis, conf, errstr, errstr_size) != 0)
        goto fail;
    if (set_target(redis, conf->sentinel_master ? "sentinel" : conf->host,
                   conf->sentinel_master ? 0 : conf->port) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (conf->sentinel_master) {
        /* The sentinels' own sink: their credentials, TLS when asked for. */
        k2r_redis_conf_t sc = *conf;

        sc.host = "127.0.0.1"; /* replaced by each address in turn */
        sc.port = 1;
        sc.user = conf->sentinel_user;
        sc.password = conf->sentinel_password;
        sc.tls = conf->sentinel_tls;
        sc.sentinel_master = NULL;
        sc.nsentinel_addrs = 0;
        sc.pipeline_depth = 1;
        sc.dedupe_window_ms = 0; /* sentinels run no scripts */
        sc.history = 0;
        redis->sentinel = k2r_redis_new(&sc, errstr, errstr_size);
        redis->sentinel_master = strdup(conf->sentinel_master);
        redis->sentinels = calloc(conf->nsentinel_addrs, sizeof(*redis->sentinels));
        if (!redis->sentinel || !redis->sentinel_master || !redis->sentinels) {
            if (redis->sentinel)
                snprintf(errstr, errstr_size, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < conf->nsentinel_addrs; i++) {
            if (!(redis->sentinels[i] = strdup(conf->sentinel_addrs[i]))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
            }
            redis->nsentinels++;
        }
    }
    return redis;

fail:
    k2r_redis_destroy(redis);
    return NULL;
}

void k2r_redis_destroy(k2r_redis_t *redis) {
    if (!redis)
        return;
    if (redis->cluster) {
        k2r_cluster_destroy(redis->cluster);
        free(redis);
        return;
    }
    k2r_redis_disconnect(redis);
    k2r_redis_destroy(redis->sentinel);
    for (size_t i = 0; i < redis->nsentinels; i++)
        free(redis->sentinels[i]);
    free(redis->sentinels);
    free(redis->sentinel_master);
    SSL_CTX_free(redis->ssl_ctx);
    free(redis->server_name);
    free(redis->host);
    free(redis->user);
    if (redis->password) {
        explicit_bzero(redis->password, strlen(redis->password));
        free(redis->password);
    }
    free(redis->out);
    free(redis->dd_prefix);
    free(redis->hist_prefix);
    k2r_buf_free(&redis->key[0]);
    k2r_buf_free(&redis->key[1]);
    free(redis);
}

size_t k2r_redis_shards(const k2r_redis_t *redis, k2r_shard_stats_t *out, size_t max) {
    if (redis->cluster)
        return k2r_cluster_shards(redis->cluster, out, max);
    if (!max)
        return 0;
    snprintf(out->addr, sizeof(out->addr), "%s", redis->addr);
    out->up = redis->fd >= 0;
    out->connects = redis->connects;
    return 1;
}

const char *k2r_redis_addr(const k2r_redis_t *redis) {
    if (redis->cluster)
        return k2r_cluster_addr(redis->cluster);
    return redis->addr;
}

int k2r_redis_connected(const k2r_redis_t *redis) {
    if (redis->cluster)
        return k2r_cluster_connected(redis->cluster);
    return redis->fd >= 0;
}

/* Closes the socket and drops the reader and any unsent bytes. Logs nothing. */
static void close_connection(k2r_redis_t *redis) {
    if (redis->ssl) {
        /* No close_notify: the connection is thrown away either way, and
         * writing one could block on a dead peer. */
        SSL_free(redis->ssl);
        redis->ssl = NULL;
    }
    redis->want_write = 0;
    if (redis->fd >= 0) {
        close(redis->fd);
        redis->fd = -1;
    }
    if (redis->reader) {
        redisReaderFree(redis->reader);
        redis->reader = NULL;
    }
    redis->out_len = redis->out_off = 0;
    /* Whatever was in flight has no reply coming: it stays PENDING. */
    redis->p_active = 0;
    redis->p_items = NULL;
    redis->p_inflight = 0;
    redis->pings = 0;
}

void k2r_redis_disconnect(k2r_redis_t *redis) {
    if (redis->cluster) {
        k2r_cluster_disconnect(redis->cluster);
        return;
    }
    if (redis->fd < 0)
        return;
    close_connection(redis);
    k2r_log_debug("redis: closed the connection to %s", redis->addr);
}

/*
 * Makes room for `n` more bytes in the output buffer. Returns 0, or -1 when
 * out of memory. The unsent tail is slid to the front only when that frees at
 * least half the buffer, so each byte is moved at most about once.
 */
static int out_reserve(k2r_redis_t *redis, size_t n) {
    size_t cap;
    char *out;

    if (redis->out_off == redis->out_len)
        redis->out_off = redis->out_len = 0;
    if (redis->out_cap - redis->out_len >= n)
        return 0;
    if (redis->out_off > 0 && redis->out_off >= redis->out_cap / 2) {
        memmove(redis->out, redis->out + redis->out_off, redis->out_len - redis->out_off);
        redis->out_len -= redis->out_off;
        redis->out_off = 0;
        if (redis->out_cap - redis->out_len >= n)
            return 0;
    }
    if (n > SIZE_MAX / 4 || redis->out_len > SIZE_MAX / 4)
        return -1;
    cap = redis->out_cap ? redis->out_cap : OUT_INITIAL;
    while (cap - redis->out_len < n)
        cap *= 2;
    out = realloc(redis->out, cap);
    if (!out)
        return -1;
    redis->out = out;
    redis->out_cap = cap;
    return 0;
}

/* Appends one command formatted by hiredis. Returns 0, or -1 when out of memory. */
static int out_append_argv(k2r_redis_t *redis, int argc, const char **argv, const size_t *argvlen) {
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);

    if (len < 0)
        return -1;
    if (out_reserve(redis, (size_t)len) != 0) {
        redisFreeCommand(cmd);
        return -1;
    }
    memcpy(redis->out + redis->out_len, cmd, (size_t)len);
    redis->out_len += (size_t)len;
    redisFreeCommand(cmd);
    return 0;
}

/*
 * Notes an SSL_read or SSL_write that could not finish: 0 when it waits for
 * the socket (WANT_READ: the loops always poll for POLLIN; WANT_WRITE sets
 * want_write for the next poll), -1 with the reason in errstr otherwise. A
 * server that refuses the client's certificate says so with an alert after
 * the handshake (TLS 1.3): tls_refused makes that K2R_ERR_TLS (start_session).
 */
static int tls_io_error(k2r_redis_t *redis, int ret, const char *op, char *errstr,
                        size_t errstr_size) {
    int err = SSL_get_error(redis->ssl, ret);
    unsigned long e;
    char why[256];

    switch (err) {
    case SSL_ERROR_WANT_READ:
        return 0;
    case SSL_ERROR_WANT_WRITE:
        redis->want_write = 1;
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(errstr, errstr_size, "%s: connection closed by the server", redis->addr);
        return -1;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            if (errno == EINTR)
                return 0;
            if (errno == 0)
                snprintf(errstr, errstr_size, "%s: connection closed by the server", redis->addr);
            else
                snprintf(errstr, errstr_size, "%s: %s: %s", redis->addr, op, strerror(errno));
            return -1;
        }
        break;
    default:
        break;
    }
    e = ERR_peek_error();
    if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(e)) {
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            ERR_clear_error();
            snprintf(errstr, errstr_size, "%s: connection closed by the server", redis->addr);
            return -1;
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
            redis->tls_refused = 1;
            break;
        default:
            break;
        }
    }
    snprintf(errstr, errstr_size, "%s: TLS %s: %s", redis->addr, op,
             ssl_reason(why, sizeof(why), "failed"));
    return -1;
}

/*
 * The seam between the sink and its socket: writes up to `len` bytes, over
 * TLS when the connection has it. Returns the bytes written (0 when the
 * socket is full, or TLS waits for it), or -1 with the reason in errstr.
 */
static ssize_t sock_send(k2r_redis_t *redis, const char *buf, size_t len, char *errstr,
                         size_t errstr_size) {
    ssize_t n;

    if (redis->ssl) {
        int ret;

        ERR_clear_error();
        ret = SSL_write(redis->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
        if (ret > 0)
            return ret;
        return tls_io_error(redis, ret, "write", errstr, errstr_size);
    }
    n = send(redis->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    snprintf(errstr, errstr_size, "%s: send: %s", redis->addr, strerror(errno));
    return -1;
}

/*
 * The other half of the seam: reads up to `size` bytes. Returns the bytes
 * read, 0 when nothing is there yet, or -1 with the reason in errstr (EOF
 * included).
 */
static ssize_t sock_recv(k2r_redis_t *redis, char *buf, size_t size, char *errstr,
                         size_t errstr_size) {
    ssize_t n;

    if (redis->ssl) {
        int ret;

        redis->want_write = 0;
        ERR_clear_error();
        ret = SSL_read(redis->ssl, buf, size > INT_MAX ? INT_MAX : (int)size);
        if (ret > 0)
            return ret;
        return tls_io_error(redis, ret, "read", errstr, errstr_size);
    }
    n = recv(redis->fd, buf, size, MSG_DONTWAIT);
    if (n > 0)
        return n;
    if (n == 0) {
        snprintf(errstr, errstr_size, "%s: connection closed by the server", redis->addr);
        return -1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    snprintf(errstr, errstr_size, "%s: recv: %s", redis->addr, strerror(errno));
    return -1;
}

/*
 * Sends what it can of the output buffer without blocking. Returns the bytes
 * sent (0 when the socket is full), or -1 with the reason in errstr.
 */
static ssize_t out_flush(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    ssize_t n;

    if (redis->out_off == redis->out_len)
        return 0;
    n = sock_send(redis, redis->out + redis->out_off, redis->out_len - redis->out_off, errstr,
                  errstr_size);
    if (n > 0) {
        redis->out_off += (size_t)n;
        redis->last_io_ms = k2r_now_ms();
    }
    return n;
}

/*
 * Reads one chunk into the reader without blocking. Returns the bytes read
 * (0 when nothing was waiting), or -1 with the reason in errstr (EOF included).
 */
static ssize_t in_fill(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    ssize_t n, total = 0;

    /* With TLS, bytes OpenSSL already decrypted (SSL_pending) are read too:
     * the socket would not wake poll for them. */
    do {
        n = sock_recv(redis, redis->in, sizeof(redis->in), errstr, errstr_size);
        if (n <= 0)
            return n < 0 ? -1 : total;
        if (redisReaderFeed(redis->reader, redis->in, (size_t)n) != REDIS_OK) {
            snprintf(errstr, errstr_size, "%s: protocol error: %s", redis->addr,
                     redis->reader->errstr);
            return -1;
        }
        total += n;
        redis->last_io_ms = k2r_now_ms();
    } while (redis->ssl && SSL_pending(redis->ssl) > 0);
    return total;
}

/*
 * Takes the next complete reply from the reader into redis->reply. Returns 1
 * when there was one, 0 when no whole reply is buffered, or -1 on a protocol
 * error (reason in errstr).
 */
static int take_reply(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    void *obj = NULL;

    if (redisReaderGetReply(redis->reader, &obj) != REDIS_OK) {
        snprintf(errstr, errstr_size, "%s: protocol error: %s", redis->addr, redis->reader->errstr);
        return -1;
    }
    if (!obj) {
        /* What is buffered is one reply not finished yet: the sink's commands
         * are answered with an integer, a status or an error line, so a
         * reply this long is a broken or hostile server, ended at once
         * (and the reader, which looks for the line's end again at every
         * chunk, never scans an unbounded line). */
        if (redis->reader->len - redis->reader->pos > K2R_REDIS_REPLY_MAX) {
            snprintf(errstr, errstr_size,
                     "%s: protocol error: a reply longer than %d bytes (a PUBLISH is answered "
                     "with a number)",
                     redis->addr, K2R_REDIS_REPLY_MAX);
            return -1;
        }
        return 0;
    }
    if (obj != &redis->reply) /* a type reply_functions does not build (hiredis 1.x, RESP3) */
        redis->reply.type = 0;
    return 1;
}

/*
 * Waits until the socket is ready for `events` or `deadline_ms` (monotonic)
 * passes. Returns the revents (0 on EINTR or when the wait ran out), -1 with
 * the reason in errstr on failure, or K2R_ERR_TIMEOUT when the deadline had already passed
 * (the caller words the timeout, which only it can explain).
 */
static int wait_fd(k2r_redis_t *redis, short events, int64_t deadline_ms, char *errstr,
                   size_t errstr_size) {
    struct pollfd pfd = {.fd = redis->fd, .events = events, .revents = 0};
    int64_t left = deadline_ms - k2r_now_ms();
    int rc;

    if (left <= 0)
        return K2R_ERR_TIMEOUT;
    rc = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
    if (rc < 0) {
        if (errno == EINTR)
            return 0;
        snprintf(errstr, errstr_size, "%s: poll: %s", redis->addr, strerror(errno));
        return -1;
    }
    return rc == 0 ? 0 : pfd.revents;
}

/* Readiness that means recv() has something to say: data, EOF or an error. */
#define READABLE (POLLIN | POLLHUP | POLLERR | POLLNVAL)

/* What to poll for: replies always; writability while bytes wait to be sent
 * or TLS wants to write to finish a read. */
static short want_events(const k2r_redis_t *redis) {
    return (short)(POLLIN | (redis->out_off < redis->out_len || redis->want_write ? POLLOUT : 0));
}

/*
 * Sends one command and waits for its reply (connection setup only; the hot
 * path is k2r_redis_publish). Returns 0 with the reply in redis->reply, or -1
 * with the reason in errstr.
 */
static int roundtrip(k2r_redis_t *redis, int argc, const char **argv, const size_t *argvlen,
                     int64_t deadline_ms, char *errstr, size_t errstr_size) {
    int rc, revents;

    if (out_append_argv(redis, argc, argv, argvlen) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (;;) {
        if (out_flush(redis, errstr, errstr_size) < 0)
            return -1;
        rc = take_reply(redis, errstr, errstr_size);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        revents = wait_fd(redis, want_events(redis), deadline_ms, errstr, errstr_size);
        if (revents == K2R_ERR_TIMEOUT)
            snprintf(errstr, errstr_size, "%s: %s: no reply within the connect timeout (%d ms)",
                     redis->addr, argv[0], redis->connect_timeout_ms);
        if (revents < 0)
            return -1;
        if (((revents & READABLE) || (redis->want_write && (revents & POLLOUT))) &&
            in_fill(redis, errstr, errstr_size) < 0)
            return -1;
    }
}

/*
 * One command whose reply is a tree (CLUSTER SLOTS): hiredis's own reader and
 * reply objects for this once, in place of the sink's, which keep nothing
 * of nested arrays. Returns 0 with *out (freeReplyObject it), or -1 with the
 * reason in errstr (the connection is closed: the bytes after a failed
 * exchange cannot be trusted).
 */
int k2r__redis_command(k2r_redis_t *redis, int argc, const char **argv, const size_t *argvlen,
                       int64_t deadline_ms, redisReply **out, char *errstr, size_t errstr_size) {
    redisReader *mine = redis->reader, *tree;
    void *obj = NULL;
    int revents;

    *out = NULL;
    if (redis->fd < 0 || redis->p_active || redis->pings) {
        snprintf(errstr, errstr_size, "%s: not connected, or busy", redis->addr);
        return -1;
    }
    tree = redisReaderCreate();
    if (!tree || out_append_argv(redis, argc, argv, argvlen) != 0) {
        if (tree)
            redisReaderFree(tree);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    redis->reader = tree;
    for (;;) {
        if (out_flush(redis, errstr, errstr_size) < 0)
            break;
        if (redisReaderGetReply(tree, &obj) != REDIS_OK) {
            snprintf(errstr, errstr_size, "%s: protocol error: %s", redis->addr, tree->errstr);
            break;
        }
        if (obj)
            break;
        revents = wait_fd(redis, want_events(redis), deadline_ms, errstr, errstr_size);
        if (revents == K2R_ERR_TIMEOUT)
            snprintf(errstr, errstr_size, "%s: %s: no reply in time", redis->addr, argv[0]);
        if (revents < 0)
            break;
        if (((revents & READABLE) || (redis->want_write && (revents & POLLOUT))) &&
            in_fill(redis, errstr, errstr_size) < 0)
            break;
    }
    redis->reader = mine;
    redisReaderFree(tree);
    if (!obj) {
        close_connection(redis);
        return -1;
    }
    *out = obj;
    return 0;
}

void k2r__redis_pollfd(const k2r_redis_t *redis, struct pollfd *pfd) {
    pfd->fd = redis->fd;
    pfd->events = redis->fd >= 0 ? want_events(redis) : 0;
    pfd->revents = 0;
}

void k2r__redis_set_cluster_member(k2r_redis_t *redis) {
    redis->cluster_member = 1;
}

int k2r__redis_set_target(k2r_redis_t *redis, const char *host, int port) {
    return set_target(redis, host, port);
}

/*
 * Opens a non-blocking TCP connection to one resolved address within the
 * deadline. Returns the socket, or -1 with the reason in errstr.
 */
static int tcp_connect(k2r_redis_t *redis, const struct addrinfo *ai, int64_t deadline_ms,
                       char *errstr, size_t errstr_size) {
    int fd, err = 0, one = 1;
    socklen_t errlen = sizeof(err);

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "connect %s: socket: %s", redis->addr, strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            err = errno;
            goto fail;
        }
        for (;;) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT, .revents = 0};
            int64_t left = deadline_ms - k2r_now_ms();
            int rc;

            if (left <= 0) {
                err = ETIMEDOUT;
                goto fail;
            }
            rc = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
            if (rc > 0)
                break;
            if (rc < 0 && errno != EINTR) {
                err = errno;
                goto fail;
            }
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0)
            err = errno;
        if (err != 0)
            goto fail;
    }
    /* Pipelining already batches writes; Nagle would only delay the last command. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        err = errno;
        goto fail;
    }
    return fd;

fail:
    if (err == ETIMEDOUT)
        snprintf(errstr, errstr_size, "connect %s: timed out after %d ms", redis->addr,
                 redis->connect_timeout_ms);
    else
        snprintf(errstr, errstr_size, "connect %s: %s", redis->addr, strerror(err));
    close(fd);
    return -1;
}

/*
 * SCRIPT LOAD of the notification script, on every connection that may need
 * it (dedupe, history): a server restarted, failed over or flushed has
 * forgotten it, and a NOSCRIPT during a publish is then taken as a server
 * state (the caller reconnects, which loads it again). Returns 0, -1, or
 * K2R_ERR_AUTH when the ACL user may not run scripts (NOPERM).
 */
static int load_script(k2r_redis_t *redis, int64_t deadline_ms, char *errstr, size_t errstr_size) {
    const char *argv[3] = {"SCRIPT", "LOAD", notify_script};
    size_t argvlen[3] = {6, 4, sizeof(notify_script) - 1};

    if (roundtrip(redis, 3, argv, argvlen, deadline_ms, errstr, errstr_size) != 0)
        return -1;
    if (redis->reply.type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "SCRIPT LOAD (dedupe and history run a script): %s%s",
                 redis->reply.str,
                 strncmp(redis->reply.str, "NOPERM", 6) == 0
                     ? "; the ACL user needs +script|load +evalsha (and the commands it runs)"
                     : "");
        return strncmp(redis->reply.str, "NOPERM", 6) == 0 ? K2R_ERR_AUTH : -1;
    }
    if (redis->reply.type != REDIS_REPLY_STRING) {
        snprintf(errstr, errstr_size, "SCRIPT LOAD: unexpected reply type");
        return -1;
    }
    return 0;
}

/*
 * 1 when a PING's reply says the server is there to take PUBLISH: +PONG, or
 * a -MISCONF error. Redis refuses PING (besides the commands that write)
 * while its last RDB save failed and stop-writes-on-bgsave-error is set, so
 * that clients notice the disk; PUBLISH writes nothing and still works there,
 * so a sink that took that reply as a dead server would stop publishing to a
 * server that takes it (it did: every reconnect failed on its PING).
 */
static int pong_or_misconf(const reply_t *reply) {
    return (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0) ||
           (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "MISCONF", 7) == 0);
}

/* AUTH when a password is set, then PING. Returns 0, or -1 with the reason
 * in errstr; K2R_ERR_AUTH when the server refused the credentials (see redis.h). */
static int handshake(k2r_redis_t *redis, int64_t deadline_ms, char *errstr, size_t errstr_size) {
    const reply_t *reply = &redis->reply;
    const char *argv[3];
    size_t argvlen[3];
    int argc = 0;

    if (redis->password) {
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;
        if (redis->user) {
            argv[argc] = redis->user;
            argvlen[argc++] = strlen(redis->user);
        }
        argv[argc] = redis->password;
        argvlen[argc++] = strlen(redis->password);
        if (roundtrip(redis, argc, argv, argvlen, deadline_ms, errstr, errstr_size) != 0)
            return -1;
        if (reply->type == REDIS_REPLY_ERROR) {
            /* WRONGPASS, NOPERM, "invalid password", "AUTH ... called without
             * any password configured": the settings are wrong, not the
             * network. Anything else ("ERR max number of clients reached",
             * written as soon as a connection is accepted) may pass. */
            snprintf(errstr, errstr_size, "AUTH: %s", reply->str);
            return strncmp(reply->str, "WRONGPASS", 9) == 0 ||
                           strncmp(reply->str, "NOPERM", 6) == 0 ||
                           strstr(reply->str, "invalid password") ||
                           strstr(reply->str, "invalid username-password") ||
                           strstr(reply->str, "without any password configured")
                       ? K2R_ERR_AUTH
                       : -1;
        }
        if (reply->type != REDIS_REPLY_STATUS) {
            snprintf(errstr, errstr_size, "AUTH: unexpected reply type");
            return -1;
        }
    }

    argv[0] = "PING";
    argvlen[0] = 4;
    if (roundtrip(redis, 1, argv, argvlen, deadline_ms, errstr, errstr_size) != 0)
        return -1;
    if (pong_or_misconf(reply)) {
        if (reply->type == REDIS_REPLY_ERROR)
            k2r_log_warn("redis: %s answers PING with MISCONF (it cannot save to disk); "
                         "PUBLISH writes nothing, so publishing goes on",
                         redis->addr);
        return redis->scripts ? load_script(redis, deadline_ms, errstr, errstr_size) : 0;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        /* NOAUTH lands here when the server wants a password and none is set,
         * NOPERM when the ACL user may not even PING. */
        snprintf(errstr, errstr_size, "PING: %s", reply->str);
        return strncmp(reply->str, "NOAUTH", 6) == 0 || strncmp(reply->str, "NOPERM", 6) == 0
                   ? K2R_ERR_AUTH
                   : -1;
    }
    snprintf(errstr, errstr_size, "PING: expected PONG");
    return -1;
}

/* 1 when `name` is an IPv4 or IPv6 literal, which is verified against the
 * certificate's IP addresses and is never sent as SNI (RFC 6066). */
static int is_ip_literal(const char *name) {
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/*
 * The TLS handshake on the connected socket, within the deadline: SNI and the
 * name to verify (server_name), then SSL_connect until it is done. Returns 0;
 * K2R_ERR_TLS when the server's certificate did not verify (errstr names
 * X509_verify_cert_error_string's reason) or the server refused ours; -1 for
 * anything a later attempt may get past (a reset, a timeout).
 */
static int tls_handshake(k2r_redis_t *redis, int64_t deadline_ms, char *errstr,
                         size_t errstr_size) {
    int ip = is_ip_literal(redis->server_name);

    ERR_clear_error();
    redis->ssl = SSL_new(redis->ssl_ctx);
    if (!redis->ssl || SSL_set_fd(redis->ssl, redis->fd) != 1 ||
        (!ip && SSL_set_tlsext_host_name(redis->ssl, redis->server_name) != 1) ||
        (redis->verify && ip &&
         X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(redis->ssl), redis->server_name) != 1) ||
        (redis->verify && !ip && SSL_set1_host(redis->ssl, redis->server_name) != 1)) {
        char why[256];

        snprintf(errstr, errstr_size, "TLS handshake with %s: %s", redis->addr,
                 ssl_reason(why, sizeof(why), "cannot set up"));
        return -1;
    }
    for (;;) {
        int ret, revents;
        short events;

        ERR_clear_error();
        ret = SSL_connect(redis->ssl);
        if (ret == 1)
            return 0;
        switch (SSL_get_error(redis->ssl, ret)) {
        case SSL_ERROR_WANT_READ:
            events = POLLIN;
            break;
        case SSL_ERROR_WANT_WRITE:
            events = POLLOUT;
            break;
        default: {
            long verify = SSL_get_verify_result(redis->ssl);
            char why[256];
            int rc;

            if (redis->verify && verify != X509_V_OK) {
                ERR_clear_error();
                snprintf(errstr, errstr_size,
                         "TLS handshake with %s: certificate verify failed: %s", redis->addr,
                         X509_verify_cert_error_string(verify));
                return K2R_ERR_TLS;
            }
            redis->tls_refused = 0;
            rc = tls_io_error(redis, ret, "handshake", why, sizeof(why));
            if (rc == 0) /* SSL_ERROR_SYSCALL with EINTR */
                continue;
            snprintf(errstr, errstr_size, "TLS handshake with %s: %s", redis->addr,
                     strncmp(why, redis->addr, strlen(redis->addr)) == 0
                         ? why + strlen(redis->addr) + 2
                         : why);
            return redis->tls_refused ? K2R_ERR_TLS : -1;
        }
        }
        revents = wait_fd(redis, events, deadline_ms, errstr, errstr_size);
        if (revents == K2R_ERR_TIMEOUT) {
            snprintf(errstr, errstr_size,
                     "TLS handshake with %s: no answer within the connect timeout (%d ms)",
                     redis->addr, redis->connect_timeout_ms);
            return -1;
        }
        if (revents < 0)
            return -1;
    }
}

/*
 * Makes the connected socket `fd` the sink's connection (taking ownership of
 * it, closed on failure), with a fresh reader, runs the TLS handshake when
 * the sink has TLS, then the Redis handshake, all within the deadline.
 * Returns 0, -1, K2R_ERR_AUTH or K2R_ERR_TLS, the reason in errstr. `peer`
 * names the far end in the debug line.
 */
static int start_session(k2r_redis_t *redis, int fd, const char *peer, int64_t deadline_ms,
                         char *errstr, size_t errstr_size) {
    int rc;

    redis->fd = fd;
    redis->out_len = redis->out_off = 0;
    /* A fresh reader per connection: nothing half-parsed survives a reconnect. */
    redis->reader = redisReaderCreateWithFunctions(&reply_functions);
    if (!redis->reader) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    redisReaderSetPrivdata(redis->reader, redis);
    redis->tls_refused = 0;
    rc = redis->ssl_ctx ? tls_handshake(redis, deadline_ms, errstr, errstr_size) : 0;
    if (rc == 0)
        rc = handshake(redis, deadline_ms, errstr, errstr_size);
    /* A server that refuses our certificate may say so only at the first
     * read after a TLS 1.3 handshake (the PING's reply). */
    if (rc == -1 && redis->tls_refused)
        rc = K2R_ERR_TLS;
    if (rc != 0) {
        close_connection(redis);
        return rc;
    }
    redis->last_io_ms = k2r_now_ms();
    redis->pings = 0;
    redis->connects++;
    k2r_log_debug("redis: connected to %s (%s)%s%s%s", redis->addr, peer, redis->ssl ? ", " : "",
                  redis->ssl ? SSL_get_version(redis->ssl) : "",
                  redis->password ? ", authenticated" : "");
    return 0;

fail:
    close_connection(redis);
    return -1;
}

/*
 * Connects to the current target: TCP connect, TLS, AUTH and PING all within
 * `deadline_ms`. Name resolution comes first and has no deadline of its own
 * (getaddrinfo cannot be given one; resolv.conf's timeout and attempts bound
 * it). Each resolved address is tried in turn; the last failure is the one
 * reported.
 */
static int connect_target(k2r_redis_t *redis, int64_t deadline_ms, char *errstr,
                          size_t errstr_size) {
    struct addrinfo hints, *res = NULL;
    char port[8], peer[NI_MAXHOST] = "?";
    int rc, fd = -1;

    k2r_redis_disconnect(redis);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(port, sizeof(port), "%d", redis->port);
    rc = getaddrinfo(redis->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "connect %s: %s", redis->addr,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = tcp_connect(redis, ai, deadline_ms, errstr, errstr_size);
        if (fd >= 0 && getnameinfo(ai->ai_addr, ai->ai_addrlen, peer, sizeof(peer), NULL, 0,
                                   NI_NUMERICHOST) != 0)
            snprintf(peer, sizeof(peer), "?");
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    return start_session(redis, fd, peer, deadline_ms, errstr, errstr_size);
}

/*
 * Asks sentinel `i` where the master is and points the sink there. Returns
 * 0; K2R_ERR_AUTH when the sentinel refused its credentials; -1 with the
 * reason in errstr (unreachable, does not know the master, a bad answer).
 */
static int ask_sentinel(k2r_redis_t *redis, size_t i, int64_t deadline_ms, char *errstr,
                        size_t errstr_size) {
    k2r_redis_t *sent = redis->sentinel;
    const reply_t *reply = &sent->reply;
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", redis->sentinel_master};
    size_t argvlen[3] = {8, 23, strlen(redis->sentinel_master)};
    char host[256], *end;
    long port;
    int rc;

    if (k2r_split_listen(redis->sentinels[i], host, sizeof(host), &rc) != 0 || !host[0] ||
        set_target(sent, host, rc) != 0) {
        snprintf(errstr, errstr_size, "sentinel %s: not host:port (or out of memory)",
                 redis->sentinels[i]);
        return -1;
    }
    rc = connect_target(sent, deadline_ms, errstr, errstr_size);
    if (rc != 0)
        return rc;
    rc = roundtrip(sent, 3, argv, argvlen, deadline_ms, errstr, errstr_size);
    k2r_redis_disconnect(sent);
    if (rc != 0)
        return -1;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "sentinel %s: %s", sent->addr, reply->str);
        return strncmp(reply->str, "NOAUTH", 6) == 0 || strncmp(reply->str, "NOPERM", 6) == 0
                   ? K2R_ERR_AUTH
                   : -1;
    }
    if (reply->type != REDIS_REPLY_ARRAY || !reply->elem[0][0] || !reply->elem[1][0]) {
        snprintf(errstr, errstr_size, "sentinel %s: does not know a master called \"%s\"",
                 sent->addr, redis->sentinel_master);
        return -1;
    }
    errno = 0;
    port = strtol(reply->elem[1], &end, 10);
    if (errno || *end || port < 1 || port > 65535 || set_target(redis, reply->elem[0], (int)port)) {
        snprintf(errstr, errstr_size, "sentinel %s: a bad master address \"%s\" \"%s\"", sent->addr,
                 reply->elem[0], reply->elem[1]);
        return -1;
    }
    return 0;
}

static int64_t stage_deadline(const k2r_redis_t *redis, int64_t deadline_ms);

/*
 * Sentinel: the first sentinel that answers names the master (and is asked
 * first next time); the server there must say it is the master (ROLE), or a
 * failover is under way and the caller tries again later.
 */
static int connect_sentinel(k2r_redis_t *redis, int64_t deadline_ms, char *errstr,
                            size_t errstr_size) {
    const char *argv[1] = {"ROLE"};
    size_t argvlen[1] = {4};
    char last[512] = "";
    int rc = -1;
    size_t i;

    k2r_redis_disconnect(redis);
    for (i = 0; i < redis->nsentinels; i++) {
        /* Each sentinel gets the connect timeout: one that does not answer
         * must not leave the next none. */
        rc = ask_sentinel(redis, i, stage_deadline(redis, deadline_ms), last, sizeof(last));
        if (rc != -1)
            break;
    }
    if (rc != 0) {
        snprintf(errstr, errstr_size, "%s%s",
                 rc == -1 ? "no sentinel named the master; the last said: " : "", last);
        return rc;
    }
    if (i > 0) { /* the one that answered goes first */
        char *first = redis->sentinels[i];
        memmove(redis->sentinels + 1, redis->sentinels, i * sizeof(*redis->sentinels));
        redis->sentinels[0] = first;
    }
    deadline_ms = stage_deadline(redis, deadline_ms);
    rc = connect_target(redis, deadline_ms, errstr, errstr_size);
    if (rc != 0)
        return rc;
    if (roundtrip(redis, 1, argv, argvlen, deadline_ms, errstr, errstr_size) != 0) {
        close_connection(redis);
        return -1;
    }
    if (redis->reply.type != REDIS_REPLY_ARRAY || strcmp(redis->reply.elem[0], "master") != 0) {
        snprintf(errstr, errstr_size,
                 "%s: the sentinels name it master \"%s\", but it says it is %s (a failover "
                 "under way?)",
                 redis->addr, redis->sentinel_master,
                 redis->reply.type == REDIS_REPLY_ERROR ? redis->reply.str
                 : redis->reply.elem[0][0]              ? redis->reply.elem[0]
                                                        : "no master");
        close_connection(redis);
        return -1;
    }
    return 0;
}

/* connect_timeout_ms from now, or `deadline_ms` when that is sooner. */
static int64_t stage_deadline(const k2r_redis_t *redis, int64_t deadline_ms) {
    int64_t own = k2r_now_ms() + redis->connect_timeout_ms;

    return deadline_ms < own ? deadline_ms : own;
}

int k2r_redis_connect_by(k2r_redis_t *redis, int64_t deadline_ms, char *errstr,
                         size_t errstr_size) {
    if (redis->cluster)
        return k2r_cluster_connect(redis->cluster, stage_deadline(redis, deadline_ms), errstr,
                                   errstr_size);
    if (redis->sentinel)
        return connect_sentinel(redis, deadline_ms, errstr, errstr_size);
    return connect_target(redis, stage_deadline(redis, deadline_ms), errstr, errstr_size);
}

int k2r_redis_connect(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    return k2r_redis_connect_by(redis, INT64_MAX, errstr, errstr_size);
}

/*
 * The test seam (redis.h): the same session start as k2r_redis_connect, on a
 * socket the caller connected. The socket is made non-blocking, as
 * tcp_connect makes its own; TCP_NODELAY is not set (a socketpair has no
 * Nagle to turn off).
 */
int k2r_redis_adopt_fd(k2r_redis_t *redis, int fd, char *errstr, size_t errstr_size) {
    int flags;

    assert(fd >= 0);
    k2r_redis_disconnect(redis);
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        snprintf(errstr, errstr_size, "adopt %s: fcntl: %s", redis->addr, strerror(errno));
        close(fd);
        return -1;
    }
    return start_session(redis, fd, "adopted socket", k2r_now_ms() + redis->connect_timeout_ms,
                         errstr, errstr_size);
}

/* ------------------------------------------------------------- publish */

/* Writes the decimal digits of v at p; returns how many. */
static size_t put_size(char *p, size_t v) {
    char digits[20];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = digits[n - 1 - i];
    return n;
}

/* Writes one RESP bulk string ("$<len>\r\n<bytes>\r\n") at p; returns the end. */
static char *put_bulk(char *p, const char *s, size_t len) {
    *p++ = '$';
    p += put_size(p, len);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, s, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/*
 * Appends PUBLISH channel message for one item. Returns 0, or -1 when out of
 * memory.
 *
 * This is the one command written by hand rather than by
 * redisFormatCommandArgv(): hiredis 0.14.1 mallocs every command and formats
 * each length with sprintf, 450-700 ns per PUBLISH against about 25 ns here
 * (the same bytes, measured with 60-byte messages), which at a million
 * publishes per second would be most of a core spent formatting. The output
 * is the same binary-safe RESP array of bulk strings.
 */
static int out_append_publish(k2r_redis_t *redis, const k2r_publish_t *item) {
    static const char publish[] = "*3\r\n$7\r\nPUBLISH\r\n";
    static const char spublish[] = "*3\r\n$8\r\nSPUBLISH\r\n";
    const char *head = redis->sharded ? spublish : publish;
    size_t head_len = redis->sharded ? sizeof(spublish) - 1 : sizeof(publish) - 1;
    /* head, two "$<up to 20 digits>\r\n" headers and two "\r\n" trailers */
    size_t most = head_len + 2 * (size_t)(1 + 20 + 2 + 2);
    char *p;

    if (item->channel_len > SIZE_MAX / 4 || item->message_len > SIZE_MAX / 4)
        return -1;
    if (item->asking) { /* a Cluster -ASK: the target serves the slot for this command only */
        const char *argv[1] = {"ASKING"};
        size_t argvlen[1] = {6};

        if (out_append_argv(redis, 1, argv, argvlen) != 0)
            return -1;
    }
    if (out_reserve(redis, most + item->channel_len + item->message_len) != 0)
        return -1;
    p = redis->out + redis->out_len;
    memcpy(p, head, head_len);
    p += head_len;
    p = put_bulk(p, item->channel, item->channel_len);
    p = put_bulk(p, item->message, item->message_len);
    redis->out_len = (size_t)(p - redis->out);
    return 0;
}

/*
 * Appends EVALSHA (or EVAL, when no SHA could be computed) of the
 * notification script for one item. Returns 0, or -1 when out of memory.
 * Formatted by hiredis: the script's own cost on the server dwarfs the
 * formatting here.
 */
static int out_append_script(k2r_redis_t *redis, const k2r_publish_t *item) {
    const char *argv[14];
    size_t argvlen[14];
    char nkeys[4], bit[16], window[24], maxlen[16], ttl[24];
    int argc = 0, dedupe = item->dd_topic && redis->dd_window_ms > 0, keys = 0;
    const char *sha = redis->sha;

#define ARG(p, n) (argv[argc] = (p), argvlen[argc++] = (n))
    redis->key[0].len = redis->key[1].len = 0;
    if (dedupe && k2r_dedupe_key(&redis->key[0], redis->dd_prefix, item->dd_topic,
                                 item->dd_partition, item->dd_offset, item->dd_index, item->channel,
                                 item->channel_len, redis->cluster_member) != 0)
        return -1;
    if (item->history_maxlen > 0 &&
        k2r_history_key(&redis->key[1], redis->hist_prefix, item->channel, item->channel_len,
                        redis->cluster_member) != 0)
        return -1;
    if (item->asking) {
        const char *asking[1] = {"ASKING"};
        size_t asking_len[1] = {6};

        if (out_append_argv(redis, 1, asking, asking_len) != 0)
            return -1;
    }
    if (sha[0]) {
        ARG("EVALSHA", 7);
        ARG(sha, 40);
    } else {
        ARG("EVAL", 4);
        ARG(notify_script, sizeof(notify_script) - 1);
    }
    keys = dedupe + (item->history_maxlen > 0) + redis->sharded;
    snprintf(nkeys, sizeof(nkeys), "%d", keys);
    ARG(nkeys, strlen(nkeys));
    if (dedupe)
        ARG(redis->key[0].data, redis->key[0].len);
    if (item->history_maxlen > 0)
        ARG(redis->key[1].data, redis->key[1].len);
    if (redis->sharded)
        ARG(item->channel, item->channel_len);
    ARG(!dedupe ? "0" : redis->cluster_member ? "k" : "b", 1);
    snprintf(bit, sizeof(bit), "%u", (unsigned)(dedupe ? k2r_dedupe_bit(item->dd_offset) : 0));
    ARG(bit, strlen(bit));
    snprintf(window, sizeof(window), "%lld", (long long)redis->dd_window_ms);
    ARG(window, strlen(window));
    ARG(redis->sharded ? "SPUBLISH" : "PUBLISH", redis->sharded ? 8 : 7);
    ARG(item->channel, item->channel_len);
    ARG(item->message, item->message_len);
    snprintf(maxlen, sizeof(maxlen), "%u", (unsigned)item->history_maxlen);
    ARG(maxlen, strlen(maxlen));
    snprintf(ttl, sizeof(ttl), "%lld",
             (long long)(item->history_maxlen ? item->history_ttl_ms : 0));
    ARG(ttl, strlen(ttl));
#undef ARG
    return out_append_argv(redis, argc, argv, argvlen);
}

/* Records the reply in redis->reply on the item it answers. */
static void apply_reply(k2r_publish_t *item, const reply_t *reply) {
    size_t n;

    switch (reply->type) {
    case REDIS_REPLY_INTEGER:
        item->status = K2R_PUBLISH_OK;
        /* -1: the notification script found the record's dedupe mark. */
        item->suppressed = reply->integer < 0;
        item->receivers = reply->integer < 0 ? 0 : reply->integer;
        break;
    case REDIS_REPLY_ERROR:
        item->status = K2R_PUBLISH_ERROR;
        n = reply->len < sizeof(item->error) - 1 ? reply->len : sizeof(item->error) - 1;
        memcpy(item->error, reply->str, n);
        item->error[n] = '\0';
        break;
    default:
        item->status = K2R_PUBLISH_ERROR;
        snprintf(item->error, sizeof(item->error), "unexpected reply type");
        break;
    }
}

/* The reply to an idle PING (redis->reply): 0 for PONG (or MISCONF, see
 * pong_or_misconf), else -1 with why. */
static int check_pong(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    if (pong_or_misconf(&redis->reply))
        return 0;
    if (redis->reply.type == REDIS_REPLY_ERROR)
        snprintf(errstr, errstr_size, "%s: the server answered a PING with %s", redis->addr,
                 redis->reply.str);
    else
        snprintf(errstr, errstr_size, "%s: an unexpected reply to a PING", redis->addr);
    return -1;
}

/* Reads the replies buffered in the reader into the publish's items (after
 * the replies owed to idle PINGs). Returns how many it read, or -1. */
static long take_replies(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    k2r_publish_t *items = redis->p_items;
    long taken = 0;
    int rc;

    while ((rc = take_reply(redis, errstr, errstr_size)) > 0) {
        taken++;
        if (redis->pings > 0) {
            if (check_pong(redis, errstr, errstr_size) != 0)
                return -1;
            redis->pings--;
            continue;
        }
        if (redis->p_inflight == 0) {
            snprintf(errstr, errstr_size, "%s: reply without a command", redis->addr);
            return -1;
        }
        while (items[redis->p_reply].status != K2R_PUBLISH_PENDING)
            redis->p_reply++;
        if (items[redis->p_reply].asking == 1) {
            items[redis->p_reply].asking = 2; /* ASKING's +OK; the command's reply is next */
            continue;
        }
        apply_reply(&items[redis->p_reply++], &redis->reply);
        redis->p_inflight--;
    }
    return rc < 0 ? -1 : taken;
}

int k2r_redis_publishing(const k2r_redis_t *redis) {
    if (redis->cluster)
        return k2r_cluster_publishing(redis->cluster);
    return redis->p_active;
}

/*
 * Two cursors walk the items in array order, both skipping items that are
 * not PENDING: p_send is the next item to format, p_reply the item the next
 * reply answers. Everything PENDING between them is in flight, and Redis
 * answers in order, so the reply cursor never needs a lookup table. Both
 * live in the sink, so that a publish goes on where the last call left it.
 * The timeout counts from the last byte moved in either direction, not from
 * the start, so a long batch that keeps moving never times out.
 */
int k2r_redis_publish(k2r_redis_t *redis, k2r_publish_t *items, size_t nitems,
                      const k2r_redis_wait_t *wait, char *errstr, size_t errstr_size) {
    size_t depth = (size_t)redis->depth_now;
    int64_t until = wait ? k2r_now_ms() + (wait->wait_ms > 0 ? wait->wait_ms : 0) : INT64_MAX;
    int woke = 0;
    ssize_t n;

    if (redis->cluster)
        return k2r_cluster_publish(redis->cluster, items, nitems, wait, errstr, errstr_size);
    assert(items || nitems == 0);
    if (!redis->p_active) {
        size_t first = 0;

        while (first < nitems && items[first].status != K2R_PUBLISH_PENDING)
            first++;
        if (first == nitems)
            return 0;
        if (redis->fd < 0) {
            snprintf(errstr, errstr_size, "not connected");
            return -1;
        }
        /*
         * With nothing in flight, a byte waiting now is a reply to no command,
         * or the server's EOF. One non-blocking recv finds it before it could
         * be taken for the reply to this batch's first item.
         */
        n = in_fill(redis, errstr, errstr_size);
        if (n < 0)
            goto fail;
        if (redis->pings == 0 && (n > 0 || redis->reader->pos < redis->reader->len)) {
            snprintf(errstr, errstr_size, "%s: reply without a command", redis->addr);
            goto fail;
        }
        redis->p_items = items;
        redis->p_n = nitems;
        redis->p_send = redis->p_reply = first;
        redis->p_inflight = 0;
        redis->p_progress_ms = k2r_now_ms();
        redis->p_active = 1;
    }
    assert(items == redis->p_items && nitems == redis->p_n);

    for (;;) {
        struct pollfd pfd[2];
        int64_t now, deadline;
        long taken;
        int nfds = 1, rc;

        while (redis->p_send < nitems && redis->p_inflight < depth &&
               redis->out_len - redis->out_off < OUT_HIGH_WATER) {
            if (items[redis->p_send].status == K2R_PUBLISH_PENDING) {
                const k2r_publish_t *it = &items[redis->p_send];

                if ((k2r_publish_uses_script(it, redis->dd_window_ms)
                         ? out_append_script(redis, it)
                         : out_append_publish(redis, it)) != 0) {
                    snprintf(errstr, errstr_size, "out of memory");
                    goto fail;
                }
                redis->p_inflight++;
            }
            redis->p_send++;
        }
        if (redis->p_inflight == 0)
            break; /* p_send == nitems: every item has its reply */
        n = out_flush(redis, errstr, errstr_size);
        if (n < 0)
            goto fail;
        if (n > 0)
            redis->p_progress_ms = k2r_now_ms();
        n = in_fill(redis, errstr, errstr_size);
        if (n < 0)
            goto fail;
        if (n > 0)
            redis->p_progress_ms = k2r_now_ms();
        taken = take_replies(redis, errstr, errstr_size);
        if (taken < 0)
            goto fail;
        if (taken > 0)
            continue; /* room in the pipeline: format more before waiting */
        if (woke)
            return K2R_REDIS_AGAIN;

        now = k2r_now_ms();
        deadline = redis->p_progress_ms + redis->command_timeout_ms;
        if (now >= deadline) {
            snprintf(errstr, errstr_size,
                     "%s: no reply or write progress for %d ms (%zu PUBLISH in flight)",
                     redis->addr, redis->command_timeout_ms, redis->p_inflight);
            goto fail;
        }
        if (now >= until)
            return K2R_REDIS_AGAIN;
        pfd[0] = (struct pollfd){.fd = redis->fd, .events = want_events(redis), .revents = 0};
        if (wait && wait->wake_fd >= 0)
            pfd[nfds++] = (struct pollfd){.fd = wait->wake_fd, .events = POLLIN, .revents = 0};
        if (deadline > until)
            deadline = until;
        rc = poll(pfd, (nfds_t)nfds, deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now));
        if (rc < 0 && errno != EINTR) {
            snprintf(errstr, errstr_size, "%s: poll: %s", redis->addr, strerror(errno));
            goto fail;
        }
        /* Woken: one more round reads what the socket has, then returns. */
        if (rc > 0 && nfds > 1 && pfd[1].revents)
            woke = 1;
    }
    redis->p_active = 0;
    redis->p_items = NULL;
    redis->depth_now =
        redis->depth_now > redis->pipeline_depth / 2 ? redis->pipeline_depth : redis->depth_now * 2;
    return 0;

fail:
    if (redis->p_inflight > 0 && redis->depth_now > 1)
        redis->depth_now /= 2;
    /* Sent or not, whatever has no reply stays PENDING for the caller to send again. */
    k2r_log_debug("redis: lost the connection: %s (%zu PUBLISH without a reply left pending)",
                  errstr, redis->p_inflight);
    close_connection(redis);
    return -1;
}

int k2r_redis_tick(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    const char *ping[1] = {"PING"};
    size_t ping_len[1] = {4};
    int64_t now;
    int rc;

    if (redis->cluster)
        return k2r_cluster_tick(redis->cluster, errstr, errstr_size);
    if (redis->fd < 0 || redis->p_active)
        return 0;
    if (in_fill(redis, errstr, errstr_size) < 0)
        goto fail;
    while ((rc = take_reply(redis, errstr, errstr_size)) > 0) {
        if (redis->pings == 0) {
            snprintf(errstr, errstr_size, "%s: reply without a command", redis->addr);
            goto fail;
        }
        if (check_pong(redis, errstr, errstr_size) != 0)
            goto fail;
        redis->pings--;
    }
    if (rc < 0)
        goto fail;
    now = k2r_now_ms();
    if (redis->pings > 0) {
        if (now - redis->ping_sent_ms >= redis->command_timeout_ms) {
            snprintf(errstr, errstr_size, "%s: no answer to an idle PING within %d ms", redis->addr,
                     redis->command_timeout_ms);
            goto fail;
        }
    } else if (redis->idle_check_ms > 0 && now - redis->last_io_ms >= redis->idle_check_ms) {
        if (out_append_argv(redis, 1, ping, ping_len) != 0) {
            snprintf(errstr, errstr_size, "out of memory");
            goto fail;
        }
        redis->pings++;
        redis->ping_sent_ms = now;
    }
    if (out_flush(redis, errstr, errstr_size) < 0)
        goto fail;
    return 0;

fail:
    k2r_log_debug("redis: lost the connection: %s", errstr);
    close_connection(redis);
    return -1;
}

/* ---------------------------------------------------------------- config */

void k2r_config_redis_conf(const k2r_config_t *cfg, k2r_redis_conf_t *out) {
    const k2r_redis_section_t *rs = &cfg->redis;

    out->host = rs->parsed.host;
    out->port = rs->parsed.port;
    /* So does a user given on its own (the file's redis.username, the environment). */
    out->user = rs->username ? rs->username : rs->parsed.user;
    /* A password given on its own (file, environment) wins over one in the URL. */
    out->password = rs->password ? rs->password : rs->parsed.password;
    out->connect_timeout_ms = rs->connect_timeout_ms;
    out->command_timeout_ms = rs->command_timeout_ms;
    out->pipeline_depth = rs->pipeline_depth;
    out->tls = rs->parsed.tls;
    out->tls_ca_file = rs->tls_ca_file;
    out->tls_cert_file = rs->tls_cert_file;
    out->tls_key_file = rs->tls_key_file;
    out->tls_server_name = rs->tls_server_name;
    out->tls_insecure_skip_verify = rs->tls_insecure_skip_verify;
    out->sharded = rs->sharded;
    out->idle_check_ms = rs->idle_check_ms;
    out->sentinel_master = rs->sentinel_master;
    out->sentinel_addrs = rs->sentinel_addrs;
    out->nsentinel_addrs = rs->nsentinel_addrs;
    out->sentinel_user = rs->sentinel_username;
    out->sentinel_password = rs->sentinel_password;
    out->sentinel_tls = rs->sentinel_tls;
    out->cluster_addrs = rs->cluster_addrs;
    out->ncluster_addrs = rs->ncluster_addrs;
    out->dedupe_window_ms = cfg->dedupe.enabled ? cfg->dedupe.window_ms : 0;
    out->dedupe_prefix = cfg->dedupe.prefix;
    out->history_prefix = rs->history_prefix;
    out->history = 0;
    for (size_t i = 0; i < cfg->nrules; i++)
        out->history |= cfg->rules[i].history_maxlen > 0;
}
