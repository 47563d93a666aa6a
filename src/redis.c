/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis.c - the Redis sink: one TCP connection the bridge owns over which
 * PUBLISH commands are pipelined, and the sink's settings as the config gives
 * them (k2r_config_redis_conf). The redis:// URL parser is redis_url.c.
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
 * This is not a Redis client: there is no reconnect logic (the bridge owns
 * backoff), no TLS, no cluster, no SELECT (Pub/Sub ignores the db), and the
 * only commands sent are AUTH, PING and PUBLISH. A connection that failed in
 * any way is closed and thrown away, with its reader, so the next connection
 * never sees bytes from the previous one.
 *
 * Logging: one debug line per connection made, closed or lost, nothing per
 * command. The caller (bridge.c) logs the same events at info and warn with
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

#include <hiredis/hiredis.h>

#include "k2r/clock.h"
#include "k2r/config.h"
#include "k2r/log.h"

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
} reply_t;

struct k2r_redis_s {
    char *host;
    int port;
    char *user;
    char *password;
    int connect_timeout_ms;
    int command_timeout_ms;
    int pipeline_depth;

    char addr[300]; /* "host:port" or "[v6]:port", for messages */
    int fd;         /* -1 when not connected */
    redisReader *reader;
    reply_t reply; /* filled by reply_functions as the reader completes a reply */

    char *out; /* formatted commands; [out_off, out_len) not sent yet */
    size_t out_len;
    size_t out_off;
    size_t out_cap;

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

/* ----------------------------------------------------------------- sink */

k2r_redis_t *k2r_redis_new(const k2r_redis_conf_t *conf, char *errstr, size_t errstr_size) {
    k2r_redis_t *redis;

    if (!conf->host || !*conf->host) {
        snprintf(errstr, errstr_size, "redis: no host");
        return NULL;
    }
    if (conf->port < 1 || conf->port > 65535) {
        snprintf(errstr, errstr_size, "redis: port must be 1-65535, not %d", conf->port);
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
    redis->port = conf->port;
    redis->connect_timeout_ms = conf->connect_timeout_ms;
    redis->command_timeout_ms = conf->command_timeout_ms;
    redis->pipeline_depth = conf->pipeline_depth;
    redis->host = strdup(conf->host);
    redis->user = conf->user ? strdup(conf->user) : NULL;
    redis->password = conf->password ? strdup(conf->password) : NULL;
    if (!redis->host || (conf->user && !redis->user) || (conf->password && !redis->password)) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    snprintf(redis->addr, sizeof(redis->addr), strchr(conf->host, ':') ? "[%s]:%d" : "%s:%d",
             conf->host, conf->port);
    return redis;

fail:
    k2r_redis_destroy(redis);
    return NULL;
}

void k2r_redis_destroy(k2r_redis_t *redis) {
    if (!redis)
        return;
    k2r_redis_disconnect(redis);
    free(redis->host);
    free(redis->user);
    if (redis->password) {
        explicit_bzero(redis->password, strlen(redis->password));
        free(redis->password);
    }
    free(redis->out);
    free(redis);
}

int k2r_redis_connected(const k2r_redis_t *redis) {
    return redis->fd >= 0;
}

/* Closes the socket and drops the reader and any unsent bytes. Logs nothing. */
static void close_connection(k2r_redis_t *redis) {
    if (redis->fd >= 0) {
        close(redis->fd);
        redis->fd = -1;
    }
    if (redis->reader) {
        redisReaderFree(redis->reader);
        redis->reader = NULL;
    }
    redis->out_len = redis->out_off = 0;
}

void k2r_redis_disconnect(k2r_redis_t *redis) {
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
 * Sends what it can of the output buffer without blocking. Returns the bytes
 * sent (0 when the socket is full), or -1 with the reason in errstr.
 */
static ssize_t out_flush(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    ssize_t n;

    if (redis->out_off == redis->out_len)
        return 0;
    n = send(redis->fd, redis->out + redis->out_off, redis->out_len - redis->out_off,
             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
        redis->out_off += (size_t)n;
        return n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    snprintf(errstr, errstr_size, "%s: send: %s", redis->addr, strerror(errno));
    return -1;
}

/*
 * Reads one chunk into the reader without blocking. Returns the bytes read
 * (0 when nothing was waiting), or -1 with the reason in errstr (EOF included).
 */
static ssize_t in_fill(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    ssize_t n = recv(redis->fd, redis->in, sizeof(redis->in), MSG_DONTWAIT);

    if (n > 0) {
        if (redisReaderFeed(redis->reader, redis->in, (size_t)n) != REDIS_OK) {
            snprintf(errstr, errstr_size, "%s: protocol error: %s", redis->addr,
                     redis->reader->errstr);
            return -1;
        }
        return n;
    }
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
    if (!obj)
        return 0;
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
        revents = wait_fd(redis, (short)(POLLIN | (redis->out_off < redis->out_len ? POLLOUT : 0)),
                          deadline_ms, errstr, errstr_size);
        if (revents == K2R_ERR_TIMEOUT)
            snprintf(errstr, errstr_size, "%s: %s: no reply within the connect timeout (%d ms)",
                     redis->addr, argv[0], redis->connect_timeout_ms);
        if (revents < 0)
            return -1;
        if ((revents & READABLE) && in_fill(redis, errstr, errstr_size) < 0)
            return -1;
    }
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
    if (reply->type == REDIS_REPLY_ERROR) {
        /* NOAUTH lands here when the server wants a password and none is set,
         * NOPERM when the ACL user may not even PING. */
        snprintf(errstr, errstr_size, "PING: %s", reply->str);
        return strncmp(reply->str, "NOAUTH", 6) == 0 || strncmp(reply->str, "NOPERM", 6) == 0
                   ? K2R_ERR_AUTH
                   : -1;
    }
    if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "PONG") != 0) {
        snprintf(errstr, errstr_size, "PING: expected PONG");
        return -1;
    }
    return 0;
}

/*
 * Makes the connected socket `fd` the sink's connection (taking ownership of
 * it, closed on failure), with a fresh reader, and runs the handshake within
 * the deadline. Returns what handshake returns: 0, -1 or K2R_ERR_AUTH, the reason in
 * errstr. `peer` names the far end in the debug line.
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
    rc = handshake(redis, deadline_ms, errstr, errstr_size);
    if (rc != 0) {
        close_connection(redis);
        return rc;
    }
    k2r_log_debug("redis: connected to %s (%s)%s", redis->addr, peer,
                  redis->password ? ", authenticated" : "");
    return 0;

fail:
    close_connection(redis);
    return -1;
}

/*
 * TCP connect, AUTH and PING share one connect_timeout_ms budget. Name
 * resolution comes first and has no deadline of its own (getaddrinfo cannot
 * be given one; resolv.conf's timeout and attempts bound it). Each resolved
 * address is tried in turn; the last failure is the one reported.
 */
int k2r_redis_connect(k2r_redis_t *redis, char *errstr, size_t errstr_size) {
    struct addrinfo hints, *res = NULL;
    char port[8], peer[NI_MAXHOST] = "?";
    int64_t deadline_ms;
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
    deadline_ms = k2r_now_ms() + redis->connect_timeout_ms;
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
    static const char head[] = "*3\r\n$7\r\nPUBLISH\r\n";
    /* head, two "$<up to 20 digits>\r\n" headers and two "\r\n" trailers */
    size_t most = (sizeof(head) - 1) + 2 * (size_t)(1 + 20 + 2 + 2);
    char *p;

    if (item->channel_len > SIZE_MAX / 4 || item->message_len > SIZE_MAX / 4)
        return -1;
    if (out_reserve(redis, most + item->channel_len + item->message_len) != 0)
        return -1;
    p = redis->out + redis->out_len;
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    p = put_bulk(p, item->channel, item->channel_len);
    p = put_bulk(p, item->message, item->message_len);
    redis->out_len = (size_t)(p - redis->out);
    return 0;
}

/* Records the reply in redis->reply on the item it answers. */
static void apply_reply(k2r_publish_t *item, const reply_t *reply) {
    size_t n;

    switch (reply->type) {
    case REDIS_REPLY_INTEGER:
        item->status = K2R_PUBLISH_OK;
        item->receivers = reply->integer;
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

/*
 * Two cursors walk the items in array order, both skipping items that are
 * not PENDING: `next_send` is the next item to format, `next_reply` the item
 * the next reply answers. Everything PENDING between them is in flight, and
 * Redis answers in order, so the reply cursor never needs a lookup table.
 * The timeout counts from the last byte moved in either direction, not from
 * the start, so a long batch that keeps moving never times out.
 */
int k2r_redis_publish(k2r_redis_t *redis, k2r_publish_t *items, size_t nitems, char *errstr,
                      size_t errstr_size) {
    size_t next_send = 0, next_reply = 0, in_flight = 0, answered = 0;
    size_t depth = (size_t)redis->pipeline_depth;
    int64_t last_progress_ms;
    ssize_t n;
    int rc, revents;

    assert(items || nitems == 0);
    while (next_send < nitems && items[next_send].status != K2R_PUBLISH_PENDING)
        next_send++;
    if (next_send == nitems)
        return 0;
    if (redis->fd < 0) {
        snprintf(errstr, errstr_size, "not connected");
        return -1;
    }
    /*
     * Nothing is in flight between calls, so a byte waiting now is a reply to
     * no command, or the server's EOF. One non-blocking recv per call finds it
     * before it could be taken for the reply to this batch's first item.
     */
    n = in_fill(redis, errstr, errstr_size);
    if (n < 0)
        goto fail;
    if (n > 0 || redis->reader->pos < redis->reader->len) {
        snprintf(errstr, errstr_size, "%s: reply without a command", redis->addr);
        goto fail;
    }
    next_reply = next_send;
    last_progress_ms = k2r_now_ms();

    for (;;) {
        while (next_send < nitems && in_flight < depth &&
               redis->out_len - redis->out_off < OUT_HIGH_WATER) {
            if (items[next_send].status == K2R_PUBLISH_PENDING) {
                if (out_append_publish(redis, &items[next_send]) != 0) {
                    snprintf(errstr, errstr_size, "out of memory");
                    goto fail;
                }
                in_flight++;
            }
            next_send++;
        }
        if (in_flight == 0)
            return 0; /* next_send == nitems: every item has its reply */

        n = out_flush(redis, errstr, errstr_size);
        if (n < 0)
            goto fail;
        if (n > 0)
            last_progress_ms = k2r_now_ms();

        revents = wait_fd(redis, (short)(POLLIN | (redis->out_off < redis->out_len ? POLLOUT : 0)),
                          last_progress_ms + redis->command_timeout_ms, errstr, errstr_size);
        if (revents == K2R_ERR_TIMEOUT)
            snprintf(errstr, errstr_size,
                     "%s: no reply or write progress for %d ms (%zu PUBLISH in flight)",
                     redis->addr, redis->command_timeout_ms, in_flight);
        if (revents < 0)
            goto fail;
        if (!(revents & READABLE))
            continue;
        n = in_fill(redis, errstr, errstr_size);
        if (n < 0)
            goto fail;
        if (n > 0)
            last_progress_ms = k2r_now_ms();
        while ((rc = take_reply(redis, errstr, errstr_size)) > 0) {
            if (in_flight == 0) {
                snprintf(errstr, errstr_size, "%s: reply without a command", redis->addr);
                goto fail;
            }
            while (items[next_reply].status != K2R_PUBLISH_PENDING)
                next_reply++;
            apply_reply(&items[next_reply++], &redis->reply);
            in_flight--;
            answered++;
        }
        if (rc < 0)
            goto fail;
    }

fail:
    /* Sent or not, whatever has no reply stays PENDING for the caller to send again. */
    close_connection(redis);
    k2r_log_debug("redis: lost the connection: %s (%zu PUBLISH answered in this call, %zu without "
                  "a reply left pending)",
                  errstr, answered, in_flight);
    return -1;
}

/* ---------------------------------------------------------------- config */

void k2r_config_redis_conf(const k2r_config_t *cfg, k2r_redis_conf_t *out) {
    const k2r_redis_section_t *rs = &cfg->redis;

    out->host = rs->parsed.host;
    out->port = rs->parsed.port;
    out->user = rs->parsed.user;
    /* A password given on its own (file, environment) wins over one in the URL. */
    out->password = rs->password ? rs->password : rs->parsed.password;
    out->connect_timeout_ms = rs->connect_timeout_ms;
    out->command_timeout_ms = rs->command_timeout_ms;
    out->pipeline_depth = rs->pipeline_depth;
}
