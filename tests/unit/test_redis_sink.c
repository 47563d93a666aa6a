/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_redis_sink.c - the Redis sink (redis.c) against a scripted peer on the
 * other end of a socketpair(AF_UNIX, SOCK_STREAM), handed to the sink with
 * k2r_redis_adopt_fd. The peer reads exactly the bytes the sink sends and
 * compares them with the RESP written out by hand here (the handshake, each
 * PUBLISH channel message, the pipelining order), then answers with scripted
 * replies one byte at a time or in odd chunks; the tests assert the sink's
 * exact outcome per item. No redis-server, no network, no sleeps.
 *
 * The peer is a thread, not a forked child: its findings (the first step that
 * went wrong, with the bytes it got) are written to memory the test reads
 * after pthread_join, so a failure is reported by CUnit in this process, and
 * ASan/LSan see both ends. The peer never calls CUnit (CUnit is not
 * thread-safe); only the test's own thread asserts.
 *
 * "One byte at a time" means the sink's reader really sees every partial
 * reply: after each chunk the peer waits until the sink has read it
 * (SIOCOUTQ on its end falls to 0) before it writes the next, so chunks are
 * never merged in the socket. That wait, and every other wait of the peer,
 * is for an event with a generous guard deadline that only a broken sink
 * reaches; nothing here sleeps to synchronise. The timeout tests need no
 * waiting either: the peer withholds bytes and the sink's own deadline ends
 * the call.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "k2r/clock.h"
#include "k2r/log.h"
#include "k2r/redis.h"
#include "suites.h"

/* How long the peer waits for the sink before it calls the step failed: a
 * guard against a hung test, never reached when the sink behaves. */
#define GUARD_MS 5000

/* ------------------------------------------------------------ the peer */

typedef enum step_kind_e {
    EXPECT, /* read exactly `len` bytes and compare them with `bytes` */
    QUIET,  /* nothing more has been sent yet (the sink is waiting for a reply) */
    SEND,   /* write `bytes` in chunks of `chunk` (0: all at once), each read before the next */
    CUT     /* close the socket */
} step_kind_t;

typedef struct step_s {
    step_kind_t kind;
    const char *bytes;
    size_t len;
    size_t chunk;
} step_t;

#define EXPECT_S(s)                                                                                \
    { EXPECT, s, sizeof(s) - 1, 0 }
#define SEND_S(s, chunk)                                                                           \
    { SEND, s, sizeof(s) - 1, chunk }
#define QUIET_S                                                                                    \
    { QUIET, NULL, 0, 0 }
#define CUT_S                                                                                      \
    { CUT, NULL, 0, 0 }

/*
 * One scripted peer. After its last step (unless that was CUT) it waits for
 * the sink to close the connection, and fails if the sink sent anything more.
 */
typedef struct peer_s {
    int fd;
    const step_t *steps;
    size_t nsteps;
    pthread_t thread;
    char failure[512]; /* empty when every step went as scripted */
} peer_t;

static void peer_fail(peer_t *peer, const char *fmt, ...) {
    va_list ap;

    if (peer->failure[0])
        return;
    va_start(ap, fmt);
    vsnprintf(peer->failure, sizeof(peer->failure), fmt, ap);
    va_end(ap);
}

/* Writes `len` bytes of `s` into out (of `size`) with \r, \n and others escaped. */
static const char *escape(char *out, size_t size, const char *s, size_t len) {
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\r')
            o += (size_t)snprintf(out + o, size - o, "\\r");
        else if (c == '\n')
            o += (size_t)snprintf(out + o, size - o, "\\n");
        else if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

/*
 * Reads up to `len` bytes, stopping early only at EOF or the guard deadline.
 * Returns the bytes read, or -1 on a socket error.
 */
static ssize_t peer_read(int fd, char *buf, size_t len, int64_t deadline_ms) {
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
        int64_t left = deadline_ms - k2r_now_ms();
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
            break;
        n = recv(fd, buf + got, len - got, 0);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* Waits until the sink has read everything written to it. Returns 0, or -1. */
static int peer_wait_read(int fd) {
    int64_t deadline_ms = k2r_now_ms() + GUARD_MS;
    int queued = 0;

    for (;;) {
        if (ioctl(fd, SIOCOUTQ, &queued) != 0)
            return -1;
        if (queued == 0)
            return 0;
        if (k2r_now_ms() > deadline_ms)
            return -1;
        sched_yield();
    }
}

static int peer_expect(peer_t *peer, size_t i, const step_t *step) {
    char *got = malloc(step->len + 1), e1[512], e2[512];
    ssize_t n;

    if (!got) {
        peer_fail(peer, "step %zu: out of memory", i);
        return -1;
    }
    n = peer_read(peer->fd, got, step->len, k2r_now_ms() + GUARD_MS);
    if (n < 0)
        peer_fail(peer, "step %zu: recv: %s", i, strerror(errno));
    else if ((size_t)n != step->len || memcmp(got, step->bytes, step->len) != 0)
        peer_fail(peer, "step %zu: expected \"%s\", got \"%s\"", i,
                  escape(e1, sizeof(e1), step->bytes, step->len),
                  escape(e2, sizeof(e2), got, (size_t)n));
    free(got);
    return peer->failure[0] ? -1 : 0;
}

static int peer_quiet(peer_t *peer, size_t i) {
    char c;
    ssize_t n = recv(peer->fd, &c, 1, MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    peer_fail(peer, "step %zu: expected nothing, got %s", i,
              n > 0    ? "more bytes"
              : n == 0 ? "EOF"
                       : strerror(errno));
    return -1;
}

static int peer_send(peer_t *peer, size_t i, const step_t *step) {
    size_t off = 0, chunk = step->chunk ? step->chunk : step->len;

    while (off < step->len) {
        size_t len = step->len - off < chunk ? step->len - off : chunk;
        ssize_t n = send(peer->fd, step->bytes + off, len, MSG_NOSIGNAL);

        if (n < 0) {
            peer_fail(peer, "step %zu: send at byte %zu: %s", i, off, strerror(errno));
            return -1;
        }
        off += (size_t)n;
        if (peer_wait_read(peer->fd) != 0) {
            peer_fail(peer, "step %zu: the sink did not read byte %zu", i, off);
            return -1;
        }
    }
    return 0;
}

static void *peer_run(void *arg) {
    peer_t *peer = arg;
    char extra[64], e[256];
    ssize_t n;
    size_t i;
    int rc = 0;

    for (i = 0; i < peer->nsteps && rc == 0; i++) {
        const step_t *step = &peer->steps[i];

        switch (step->kind) {
        case EXPECT:
            rc = peer_expect(peer, i, step);
            break;
        case QUIET:
            rc = peer_quiet(peer, i);
            break;
        case SEND:
            rc = peer_send(peer, i, step);
            break;
        case CUT:
            close(peer->fd);
            peer->fd = -1;
            return NULL;
        }
    }
    if (rc == 0) {
        /* The script is done: the sink may only close the connection now. */
        n = peer_read(peer->fd, extra, sizeof(extra), k2r_now_ms() + GUARD_MS);
        if (n != 0)
            peer_fail(peer, "after the script: expected EOF, got \"%s\"",
                      n > 0 ? escape(e, sizeof(e), extra, (size_t)n) : "an error");
    }
    close(peer->fd); /* on a failure, this ends the sink's wait at once */
    peer->fd = -1;
    return NULL;
}

/* Starts a peer on one end of a new socketpair; returns the other end for the sink. */
static int peer_start(peer_t *peer, const step_t *steps, size_t nsteps) {
    int sv[2];

    memset(peer, 0, sizeof(*peer));
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    peer->fd = sv[1];
    peer->steps = steps;
    peer->nsteps = nsteps;
    CU_ASSERT_FATAL(pthread_create(&peer->thread, NULL, peer_run, peer) == 0);
    return sv[0];
}

/* Waits for the peer (the sink must have closed its end) and asserts its script held. */
static void peer_join(peer_t *peer) {
    CU_ASSERT(pthread_join(peer->thread, NULL) == 0);
    CU_ASSERT_STRING_EQUAL(peer->failure, "");
    if (peer->failure[0])
        fprintf(stderr, "\n    peer: %s\n", peer->failure);
}

/* ------------------------------------------------------------ the sink */

static k2r_redis_t *sink_new(const char *user, const char *password, int pipeline_depth,
                             int connect_timeout_ms, int command_timeout_ms) {
    k2r_redis_conf_t conf = {
        .host = "peer",
        .port = 1,
        .user = user,
        .password = password,
        .connect_timeout_ms = connect_timeout_ms,
        .command_timeout_ms = command_timeout_ms,
        .pipeline_depth = pipeline_depth,
    };
    char errstr[256] = "";
    k2r_redis_t *redis = k2r_redis_new(&conf, errstr, sizeof(errstr));

    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    return redis;
}

static void item_set(k2r_publish_t *item, const char *channel, const char *message,
                     size_t message_len) {
    memset(item, 0, sizeof(*item));
    item->channel = channel;
    item->channel_len = strlen(channel);
    item->message = message;
    item->message_len = message_len;
    item->status = K2R_PUBLISH_PENDING;
}

#define NSTEPS(steps) (sizeof(steps) / sizeof(steps[0]))

#define PING "*1\r\n$4\r\nPING\r\n"
#define PONG "+PONG\r\n"
/* PUBLISH ch m, the command most tests send */
#define CMD "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\nm\r\n"

/* ------------------------------------------------------------ the tests */

/* The exact RESP of PUBLISH (binary-safe, empty message), replies byte by byte. */
static void test_exact_resp_byte_by_byte(void) {
    static const char binary[] = "a\0b\r\nc";
    static const step_t steps[] = {
        EXPECT_S(PING),
        SEND_S(PONG, 1),
        EXPECT_S("*3\r\n$7\r\nPUBLISH\r\n$6\r\norders\r\n$5\r\nhello\r\n"
                 "*3\r\n$7\r\nPUBLISH\r\n$11\r\norders.eu.1\r\n$6\r\na\0b\r\nc\r\n"
                 "*3\r\n$7\r\nPUBLISH\r\n$1\r\ne\r\n$0\r\n\r\n"),
        QUIET_S,
        SEND_S(":0\r\n:1\r\n:42\r\n", 1),
    };
    k2r_redis_t *redis = sink_new(NULL, NULL, 8, 2000, 2000);
    k2r_publish_t items[3];
    char errstr[256] = "";
    peer_t peer;
    int fd = peer_start(&peer, steps, NSTEPS(steps));

    item_set(&items[0], "orders", "hello", 5);
    item_set(&items[1], "orders.eu.1", binary, sizeof(binary) - 1);
    item_set(&items[2], "e", "", 0);
    CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 1);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 3, NULL, errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(items[0].status, K2R_PUBLISH_OK);
    CU_ASSERT_EQUAL(items[0].receivers, 0);
    CU_ASSERT_EQUAL(items[1].status, K2R_PUBLISH_OK);
    CU_ASSERT_EQUAL(items[1].receivers, 1);
    CU_ASSERT_EQUAL(items[2].status, K2R_PUBLISH_OK);
    CU_ASSERT_EQUAL(items[2].receivers, 42);
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 1);
    k2r_redis_destroy(redis);
    peer_join(&peer);
}

/*
 * Depth 2: two commands go out, then one more per reply, in array order;
 * items that are not PENDING are neither sent nor touched. Replies come in
 * chunks of 3, 1 and 5 bytes, the last chunk ending inside a reply.
 */
static void test_pipeline_order(void) {
    static const step_t steps[] = {
        EXPECT_S(PING),
        SEND_S(PONG, 0),
        EXPECT_S("*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$2\r\nm1\r\n"
                 "*3\r\n$7\r\nPUBLISH\r\n$1\r\nb\r\n$2\r\nm2\r\n"),
        QUIET_S,
        SEND_S(":1\r\n", 3),
        EXPECT_S("*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\nm3\r\n"),
        QUIET_S,
        SEND_S(":2\r\n", 1),
        EXPECT_S("*3\r\n$7\r\nPUBLISH\r\n$1\r\nd\r\n$2\r\nm4\r\n"),
        QUIET_S,
        SEND_S(":3\r\n:4\r\n", 5),
        EXPECT_S("*3\r\n$7\r\nPUBLISH\r\n$1\r\ne\r\n$2\r\nm5\r\n"),
        QUIET_S,
        SEND_S(":5\r\n", 1),
    };
    k2r_redis_t *redis = sink_new(NULL, NULL, 2, 2000, 2000);
    k2r_publish_t items[7];
    char errstr[256] = "";
    peer_t peer;
    int fd = peer_start(&peer, steps, NSTEPS(steps));

    item_set(&items[0], "a", "m1", 2);
    item_set(&items[1], "b", "m2", 2);
    item_set(&items[2], "x", "dropped", 7);
    items[2].status = K2R_PUBLISH_DROPPED;
    item_set(&items[3], "c", "m3", 2);
    item_set(&items[4], "y", "done before", 11);
    items[4].status = K2R_PUBLISH_OK;
    items[4].receivers = 7;
    item_set(&items[5], "d", "m4", 2);
    item_set(&items[6], "e", "m5", 2);
    CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 7, NULL, errstr, sizeof(errstr)), 0);
    CU_ASSERT(items[0].status == K2R_PUBLISH_OK && items[0].receivers == 1);
    CU_ASSERT(items[1].status == K2R_PUBLISH_OK && items[1].receivers == 2);
    CU_ASSERT(items[2].status == K2R_PUBLISH_DROPPED);
    CU_ASSERT(items[3].status == K2R_PUBLISH_OK && items[3].receivers == 3);
    CU_ASSERT(items[4].status == K2R_PUBLISH_OK && items[4].receivers == 7);
    CU_ASSERT(items[5].status == K2R_PUBLISH_OK && items[5].receivers == 4);
    CU_ASSERT(items[6].status == K2R_PUBLISH_OK && items[6].receivers == 5);
    k2r_redis_destroy(redis);
    peer_join(&peer);
}

/*
 * Refusals, in chunks of 7 bytes: an error reply is kept word for word
 * (truncated to what the item holds); a status, bulk, nil or array reply is
 * no subscriber count, so it is a refusal too; the reader stays in step.
 */
static void test_refusals(void) {
    static const char long_error[] =
        "ERR 0123456789012345678901234567890123456789012345678901234567890123456789"
        "012345678901234567890123456789";
    static const step_t steps[] = {
        EXPECT_S(PING),
        SEND_S(PONG, 7),
        EXPECT_S(CMD CMD CMD CMD CMD CMD CMD CMD CMD),
        QUIET_S,
        SEND_S(":3\r\n"
               "-NOPERM this user has no permissions to access the 'ch' channel\r\n"
               "-OOM command not allowed when used memory > 'maxmemory'.\r\n"
               "+OK\r\n"
               "$5\r\nhello\r\n"
               "$-1\r\n"
               "*2\r\n:1\r\n:2\r\n"
               "-ERR 0123456789012345678901234567890123456789012345678901234567890123456789"
               "012345678901234567890123456789\r\n"
               ":0\r\n",
               7),
    };
    k2r_redis_t *redis = sink_new(NULL, NULL, 16, 2000, 2000);
    k2r_publish_t items[9];
    char errstr[256] = "";
    peer_t peer;
    int fd = peer_start(&peer, steps, NSTEPS(steps));

    for (size_t i = 0; i < 9; i++)
        item_set(&items[i], "ch", "m", 1);
    CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 9, NULL, errstr, sizeof(errstr)), 0);
    CU_ASSERT(items[0].status == K2R_PUBLISH_OK && items[0].receivers == 3);
    CU_ASSERT_EQUAL(items[1].status, K2R_PUBLISH_ERROR);
    CU_ASSERT_STRING_EQUAL(items[1].error,
                           "NOPERM this user has no permissions to access the 'ch' channel");
    CU_ASSERT_EQUAL(items[2].status, K2R_PUBLISH_ERROR);
    CU_ASSERT_STRING_EQUAL(items[2].error,
                           "OOM command not allowed when used memory > 'maxmemory'.");
    for (size_t i = 3; i <= 6; i++) {
        CU_ASSERT_EQUAL(items[i].status, K2R_PUBLISH_ERROR);
        CU_ASSERT_STRING_EQUAL(items[i].error, "unexpected reply type");
    }
    CU_ASSERT_EQUAL(items[7].status, K2R_PUBLISH_ERROR);
    CU_ASSERT_EQUAL(strlen(items[7].error), sizeof(items[7].error) - 1);
    CU_ASSERT(strncmp(items[7].error, long_error, sizeof(items[7].error) - 1) == 0);
    CU_ASSERT(items[8].status == K2R_PUBLISH_OK && items[8].receivers == 0);
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 1);
    k2r_redis_destroy(redis);
    peer_join(&peer);
}

/*
 * Server-state errors, byte by byte. The sink reports them like any refusal,
 * with the server's line, and keeps the connection; the bridge
 * (server_state_error in bridge_publish.c) recognises the leading "LOADING ",
 * "BUSY ", "MASTERDOWN ", "TRYAGAIN ", "READONLY " or "CLUSTERDOWN " and
 * treats the item as an outage, so
 * the exact line, code and space included, is what is asserted here.
 */
static void test_server_state_errors(void) {
    static const step_t steps[] = {
        EXPECT_S(PING),
        SEND_S(PONG, 1),
        EXPECT_S(CMD CMD CMD CMD CMD),
        QUIET_S,
        SEND_S("-LOADING Redis is loading the dataset in memory\r\n"
               "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
               "NOSAVE.\r\n"
               "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to "
               "'no'.\r\n"
               "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
               ":1\r\n",
               1),
    };
    static const char *const errors[] = {
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "TRYAGAIN Multiple keys request during rehashing of slot",
    };
    k2r_redis_t *redis = sink_new(NULL, NULL, 8, 2000, 2000);
    k2r_publish_t items[5];
    char errstr[256] = "";
    peer_t peer;
    int fd = peer_start(&peer, steps, NSTEPS(steps));

    for (size_t i = 0; i < 5; i++)
        item_set(&items[i], "ch", "m", 1);
    CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 5, NULL, errstr, sizeof(errstr)), 0);
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(items[i].status, K2R_PUBLISH_ERROR);
        CU_ASSERT_STRING_EQUAL(items[i].error, errors[i]);
    }
    CU_ASSERT(items[4].status == K2R_PUBLISH_OK && items[4].receivers == 1);
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 1);
    k2r_redis_destroy(redis);
    peer_join(&peer);
}

/*
 * The peer answers 2 of 5 and half of the third, then closes: the first two
 * are done, the other three stay PENDING (the half reply counts for nothing),
 * the call says the connection was lost and the sink is disconnected. Run
 * with the replies byte by byte, in chunks of 3, and all at once.
 */
static void test_cut_mid_pipeline(void) {
    static const size_t chunks[] = {1, 3, 0};

    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        const step_t steps[] = {
            EXPECT_S(PING),
            SEND_S(PONG, chunks[c]),
            EXPECT_S(CMD CMD CMD CMD CMD),
            QUIET_S,
            SEND_S(":1\r\n:2\r\n:", chunks[c]),
            CUT_S,
        };
        k2r_redis_t *redis = sink_new(NULL, NULL, 8, 2000, 2000);
        k2r_publish_t items[5];
        char errstr[256] = "";
        peer_t peer;
        int fd = peer_start(&peer, steps, NSTEPS(steps));

        for (size_t i = 0; i < 5; i++)
            item_set(&items[i], "ch", "m", 1);
        CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), 0);
        CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 5, NULL, errstr, sizeof(errstr)), -1);
        CU_ASSERT_STRING_EQUAL(errstr, "peer:1: connection closed by the server");
        CU_ASSERT(items[0].status == K2R_PUBLISH_OK && items[0].receivers == 1);
        CU_ASSERT(items[1].status == K2R_PUBLISH_OK && items[1].receivers == 2);
        for (size_t i = 2; i < 5; i++)
            CU_ASSERT_EQUAL(items[i].status, K2R_PUBLISH_PENDING);
        CU_ASSERT_EQUAL(k2r_redis_connected(redis), 0);

        /* Repeating the call without a reconnect sends nothing and changes nothing. */
        CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 5, NULL, errstr, sizeof(errstr)), -1);
        CU_ASSERT_STRING_EQUAL(errstr, "not connected");
        CU_ASSERT_EQUAL(items[1].status, K2R_PUBLISH_OK);
        CU_ASSERT_EQUAL(items[2].status, K2R_PUBLISH_PENDING);
        k2r_redis_destroy(redis);
        peer_join(&peer);
    }
}

/*
 * A reply slower than command_timeout_ms: the peer answers the first command,
 * sends one byte of the second reply and then withholds the rest. The call
 * ends by the sink's own deadline: the first item done, the second PENDING,
 * the connection closed (which the peer sees as EOF, nothing sent after).
 * The withheld reply's first byte goes with the first reply in one write, so
 * the peer has nothing left to write when the sink gives up.
 */
static void test_command_timeout(void) {
    static const step_t steps[] = {
        EXPECT_S(PING),
        SEND_S(PONG, 0),
        EXPECT_S(CMD CMD),
        SEND_S(":1\r\n:", 0),
    };
    k2r_redis_t *redis = sink_new(NULL, NULL, 8, 2000, 100);
    k2r_publish_t items[2];
    char errstr[256] = "";
    peer_t peer;
    int fd = peer_start(&peer, steps, NSTEPS(steps));
    int64_t start_ms;

    item_set(&items[0], "ch", "m", 1);
    item_set(&items[1], "ch", "m", 1);
    CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), 0);
    start_ms = k2r_now_ms();
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 2, NULL, errstr, sizeof(errstr)), -1);
    CU_ASSERT(k2r_now_ms() - start_ms >= 100);
    CU_ASSERT_STRING_EQUAL(errstr, "peer:1: no reply or write progress for 100 ms (1 PUBLISH in "
                                   "flight)");
    CU_ASSERT(items[0].status == K2R_PUBLISH_OK && items[0].receivers == 1);
    CU_ASSERT_EQUAL(items[1].status, K2R_PUBLISH_PENDING);
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 0);
    k2r_redis_destroy(redis);
    peer_join(&peer);
}

/*
 * A reply that is not RESP ends the call like a lost connection. The reader
 * fails on the type byte alone, so the peer sends nothing after it (a write
 * to the closed sink would race with its close).
 */
static void test_protocol_error(void) {
    static const step_t steps[] = {
        EXPECT_S(PING),
        SEND_S(PONG, 0),
        EXPECT_S(CMD CMD),
        SEND_S(":1\r\n?", 1),
    };
    k2r_redis_t *redis = sink_new(NULL, NULL, 8, 2000, 2000);
    k2r_publish_t items[2];
    char errstr[256] = "";
    peer_t peer;
    int fd = peer_start(&peer, steps, NSTEPS(steps));

    item_set(&items[0], "ch", "m", 1);
    item_set(&items[1], "ch", "m", 1);
    CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 2, NULL, errstr, sizeof(errstr)), -1);
    CU_ASSERT_STRING_EQUAL(errstr,
                           "peer:1: protocol error: Protocol error, got \"?\" as reply type byte");
    CU_ASSERT(items[0].status == K2R_PUBLISH_OK && items[0].receivers == 1);
    CU_ASSERT_EQUAL(items[1].status, K2R_PUBLISH_PENDING);
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 0);
    k2r_redis_destroy(redis);
    peer_join(&peer);
}

/* AUTH user password, then PING, each answered byte by byte; then a PUBLISH. */
static void test_handshake_auth(void) {
    static const step_t steps[] = {
        EXPECT_S("*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$6\r\ns3cret\r\n"),
        SEND_S("+OK\r\n", 1),
        EXPECT_S(PING),
        SEND_S(PONG, 1),
        EXPECT_S(CMD),
        SEND_S(":2\r\n", 1),
    };
    k2r_redis_t *redis = sink_new("app", "s3cret", 8, 2000, 2000);
    k2r_publish_t item;
    char errstr[256] = "";
    peer_t peer;
    int fd = peer_start(&peer, steps, NSTEPS(steps));

    item_set(&item, "ch", "m", 1);
    CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, &item, 1, NULL, errstr, sizeof(errstr)), 0);
    CU_ASSERT(item.status == K2R_PUBLISH_OK && item.receivers == 2);
    k2r_redis_destroy(redis);
    peer_join(&peer);
}

/*
 * Handshake failures: refused credentials are K2R_ERR_AUTH (retrying cannot help), a
 * server still loading is -1, and a PING left unanswered (three bytes of
 * PONG, in one write) runs out the connect timeout. Each leaves the sink
 * disconnected.
 */
static void test_handshake_failures(void) {
    static const step_t wrongpass[] = {
        EXPECT_S("*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n"),
        SEND_S("-WRONGPASS invalid username-password pair or user is disabled.\r\n", 1),
    };
    static const step_t noauth[] = {
        EXPECT_S(PING),
        SEND_S("-NOAUTH Authentication required.\r\n", 1),
    };
    static const step_t loading[] = {
        EXPECT_S(PING),
        SEND_S("-LOADING Redis is loading the dataset in memory\r\n", 3),
    };
    static const step_t silent[] = {
        EXPECT_S(PING),
        SEND_S("+PO", 0),
    };
    static const struct {
        const step_t *steps;
        size_t nsteps;
        const char *password;
        int connect_timeout_ms;
        int rc;
        const char *errstr;
    } cases[] = {
        {wrongpass, NSTEPS(wrongpass), "s3cret", 2000, K2R_ERR_AUTH,
         "AUTH: WRONGPASS invalid username-password pair or user is disabled."},
        {noauth, NSTEPS(noauth), NULL, 2000, K2R_ERR_AUTH, "PING: NOAUTH Authentication required."},
        {loading, NSTEPS(loading), NULL, 2000, -1,
         "PING: LOADING Redis is loading the dataset in memory"},
        {silent, NSTEPS(silent), NULL, 100, -1,
         "peer:1: PING: no reply within the connect timeout (100 ms)"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        k2r_redis_t *redis =
            sink_new(NULL, cases[i].password, 8, cases[i].connect_timeout_ms, 2000);
        char errstr[256] = "";
        peer_t peer;
        int fd = peer_start(&peer, cases[i].steps, cases[i].nsteps);

        CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), cases[i].rc);
        CU_ASSERT_STRING_EQUAL(errstr, cases[i].errstr);
        CU_ASSERT_EQUAL(k2r_redis_connected(redis), 0);
        k2r_redis_destroy(redis);
        peer_join(&peer);
    }
}

/* --------------------------------------------- the test thread as the peer */

/*
 * The tests below need no scripted thread: the handshake's PONG is written
 * into the socket before the sink connects, and the test reads what the
 * sink sent and answers between the sink's calls, which never block longer
 * than their wait.
 */
static k2r_redis_t *direct_sink(int *peer_fd, int sharded, int idle_check_ms,
                                int command_timeout_ms) {
    k2r_redis_conf_t conf = {.host = "peer",
                             .port = 1,
                             .connect_timeout_ms = 2000,
                             .command_timeout_ms = command_timeout_ms,
                             .pipeline_depth = 8,
                             .sharded = sharded,
                             .idle_check_ms = idle_check_ms};
    char errstr[256] = "";
    k2r_redis_t *redis = k2r_redis_new(&conf, errstr, sizeof(errstr));
    int sv[2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CU_ASSERT_FATAL(write(sv[1], PONG, sizeof(PONG) - 1) == (ssize_t)(sizeof(PONG) - 1));
    CU_ASSERT_EQUAL_FATAL(k2r_redis_adopt_fd(redis, sv[0], errstr, sizeof(errstr)), 0);
    *peer_fd = sv[1];
    return redis;
}

/* Reads exactly `len` bytes from the peer's end (within GUARD_MS) and
 * compares them with `want`. */
static void direct_expect(int fd, const char *want, size_t len) {
    char got[512], a[1024], b[1024];
    ssize_t n = peer_read(fd, got, len, k2r_now_ms() + GUARD_MS);

    CU_ASSERT_EQUAL(n, (ssize_t)len);
    if (n == (ssize_t)len && memcmp(got, want, len) != 0)
        CU_FAIL("the sink sent other bytes");
    if (n >= 0 && (n != (ssize_t)len || memcmp(got, want, len) != 0))
        fprintf(stderr, "\n    got  %s\n    want %s\n", escape(a, sizeof(a), got, (size_t)n),
                escape(b, sizeof(b), want, len));
}

/* A publish is resumed across calls: the first returns K2R_REDIS_AGAIN with
 * the command sent and no reply, the second takes the reply. SPUBLISH when
 * sharded. */
static void test_publish_resumes(void) {
    static const char spub[] = "*3\r\n$8\r\nSPUBLISH\r\n$2\r\nch\r\n$1\r\nm\r\n";
    k2r_redis_wait_t now = {.wait_ms = 0, .wake_fd = -1}, later = {.wait_ms = 2000, .wake_fd = -1};
    char errstr[256] = "";
    k2r_publish_t items[2];
    int fd;
    k2r_redis_t *redis = direct_sink(&fd, 1, 0, 2000);

    item_set(&items[0], "ch", "m", 1);
    item_set(&items[1], "ch", "m", 1);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 2, &now, errstr, sizeof(errstr)),
                    K2R_REDIS_AGAIN);
    CU_ASSERT_EQUAL(k2r_redis_publishing(redis), 1);
    CU_ASSERT_EQUAL(items[0].status, K2R_PUBLISH_PENDING);
    direct_expect(fd, PING, sizeof(PING) - 1);
    direct_expect(fd, spub, sizeof(spub) - 1);
    direct_expect(fd, spub, sizeof(spub) - 1);
    CU_ASSERT(write(fd, ":3\r\n", 4) == 4);
    /* One reply of two: still under way. */
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 2, &now, errstr, sizeof(errstr)),
                    K2R_REDIS_AGAIN);
    CU_ASSERT_EQUAL(items[0].status, K2R_PUBLISH_OK);
    CU_ASSERT_EQUAL(items[0].receivers, 3);
    CU_ASSERT_EQUAL(items[1].status, K2R_PUBLISH_PENDING);
    CU_ASSERT(write(fd, ":0\r\n", 4) == 4);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 2, &later, errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(items[1].status, K2R_PUBLISH_OK);
    CU_ASSERT_EQUAL(items[1].receivers, 0);
    CU_ASSERT_EQUAL(k2r_redis_publishing(redis), 0);
    k2r_redis_destroy(redis);
    close(fd);
}

/* A readable wake descriptor ends the wait at once: without it, the silent
 * server would run into the 300 ms command timeout within the 5 s wait. */
static void test_publish_woken(void) {
    k2r_redis_wait_t wait = {.wait_ms = 5000, .wake_fd = -1};
    char errstr[256] = "";
    k2r_publish_t item;
    int fd, wake[2];
    k2r_redis_t *redis = direct_sink(&fd, 0, 0, 300);

    CU_ASSERT_FATAL(pipe(wake) == 0);
    CU_ASSERT(write(wake[1], "1", 1) == 1);
    wait.wake_fd = wake[0];
    item_set(&item, "ch", "m", 1);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, &item, 1, &wait, errstr, sizeof(errstr)),
                    K2R_REDIS_AGAIN);
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 1);
    direct_expect(fd, PING CMD, sizeof(PING CMD) - 1);
    /* Not woken any more: the timeout, counted from the last byte moved. */
    wait.wake_fd = -1;
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, &item, 1, &wait, errstr, sizeof(errstr)), -1);
    CU_ASSERT_STRING_EQUAL(errstr, "peer:1: no reply or write progress for 300 ms (1 PUBLISH in "
                                   "flight)");
    CU_ASSERT_EQUAL(item.status, K2R_PUBLISH_PENDING);
    CU_ASSERT_EQUAL(k2r_redis_publishing(redis), 0);
    k2r_redis_destroy(redis);
    close(fd);
    close(wake[0]);
    close(wake[1]);
}

/* Waits (polling, within GUARD_MS) until the peer's end has bytes, calling
 * k2r_redis_tick meanwhile; returns its last result. */
static int tick_until_sent(k2r_redis_t *redis, int fd, char *errstr, size_t size) {
    int64_t deadline = k2r_now_ms() + GUARD_MS;
    struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
    int rc = 0;

    while (k2r_now_ms() < deadline && rc == 0) {
        rc = k2r_redis_tick(redis, errstr, size);
        if (poll(&pfd, 1, 10) > 0)
            break;
    }
    return rc;
}

/* An idle connection is PINGed after idle_check_ms; PONG keeps it, an error
 * reply or EOF ends it. */
static void test_idle_check(void) {
    char errstr[256] = "";
    int fd;
    k2r_redis_t *redis = direct_sink(&fd, 0, 50, 2000);

    direct_expect(fd, PING, sizeof(PING) - 1); /* the handshake's */
    CU_ASSERT_EQUAL(tick_until_sent(redis, fd, errstr, sizeof(errstr)), 0);
    direct_expect(fd, PING, sizeof(PING) - 1);
    CU_ASSERT(write(fd, PONG, sizeof(PONG) - 1) == (ssize_t)(sizeof(PONG) - 1));
    CU_ASSERT_EQUAL(tick_until_sent(redis, fd, errstr, sizeof(errstr)), 0);
    direct_expect(fd, PING, sizeof(PING) - 1); /* the next idle PING: the PONG was taken */
    CU_ASSERT(write(fd, "-LOADING Redis is loading\r\n", 27) == 27);
    {
        int64_t deadline = k2r_now_ms() + GUARD_MS;
        int rc = 0;

        while (rc == 0 && k2r_now_ms() < deadline)
            rc = k2r_redis_tick(redis, errstr, sizeof(errstr));
        CU_ASSERT_EQUAL(rc, -1);
    }
    CU_ASSERT_STRING_EQUAL(errstr, "peer:1: the server answered a PING with LOADING Redis is "
                                   "loading");
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 0);
    k2r_redis_destroy(redis);
    close(fd);

    /* EOF between publishes. */
    redis = direct_sink(&fd, 0, 60000, 2000);
    direct_expect(fd, PING, sizeof(PING) - 1);
    close(fd);
    CU_ASSERT_EQUAL(k2r_redis_tick(redis, errstr, sizeof(errstr)), -1);
    CU_ASSERT_STRING_EQUAL(errstr, "peer:1: connection closed by the server");
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 0);
    k2r_redis_destroy(redis);
}

/* A Redis whose last RDB save failed (stop-writes-on-bgsave-error) answers
 * PING with -MISCONF and still takes PUBLISH: the handshake's PING and the
 * idle ones answered so keep the connection. */
static void test_misconf_ping(void) {
    static const char misconf[] = "-MISCONF Redis is configured to save RDB snapshots, but "
                                  "it's currently unable to persist to disk.\r\n";
    k2r_redis_conf_t conf = {.host = "peer",
                             .port = 1,
                             .connect_timeout_ms = 2000,
                             .command_timeout_ms = 2000,
                             .pipeline_depth = 8,
                             .idle_check_ms = 50};
    char errstr[256] = "";
    k2r_redis_t *redis = k2r_redis_new(&conf, errstr, sizeof(errstr));
    int level = k2r_log_level;
    int sv[2], rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CU_ASSERT_FATAL(write(sv[1], misconf, sizeof(misconf) - 1) == (ssize_t)(sizeof(misconf) - 1));
    k2r_log_level = K2R_LOG_ERROR; /* its warning is for operators, not this output */
    rc = k2r_redis_adopt_fd(redis, sv[0], errstr, sizeof(errstr));
    k2r_log_level = level;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    direct_expect(sv[1], PING, sizeof(PING) - 1); /* the handshake's */
    CU_ASSERT_EQUAL(tick_until_sent(redis, sv[1], errstr, sizeof(errstr)), 0);
    direct_expect(sv[1], PING, sizeof(PING) - 1);
    CU_ASSERT(write(sv[1], misconf, sizeof(misconf) - 1) == (ssize_t)(sizeof(misconf) - 1));
    CU_ASSERT_EQUAL(tick_until_sent(redis, sv[1], errstr, sizeof(errstr)), 0);
    direct_expect(sv[1], PING, sizeof(PING) - 1); /* the next idle PING: MISCONF was taken */
    CU_ASSERT_EQUAL(k2r_redis_connected(redis), 1);
    k2r_redis_destroy(redis);
    close(sv[1]);
}

/* A reply longer than the bound ends the connection at once as a protocol
 * error, however much more the server would send. */
static void test_huge_reply(void) {
    k2r_redis_wait_t wait = {.wait_ms = 2000, .wake_fd = -1};
    char errstr[256] = "", *line = malloc(70000);
    k2r_publish_t item;
    int fd;
    k2r_redis_t *redis = direct_sink(&fd, 0, 0, 2000);

    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    memset(line, 'x', 70000);
    line[0] = '-';
    item_set(&item, "ch", "m", 1);
    CU_ASSERT_EQUAL(
        k2r_redis_publish(redis, &item, 1, &(k2r_redis_wait_t){0, -1}, errstr, sizeof(errstr)),
        K2R_REDIS_AGAIN);
    direct_expect(fd, PING CMD, sizeof(PING CMD) - 1);
    CU_ASSERT(write(fd, line, 70000) == 70000);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, &item, 1, &wait, errstr, sizeof(errstr)), -1);
    CU_ASSERT_STRING_EQUAL(errstr, "peer:1: protocol error: a reply longer than 65536 bytes (a "
                                   "PUBLISH is answered with a number)");
    CU_ASSERT_EQUAL(item.status, K2R_PUBLISH_PENDING);
    k2r_redis_destroy(redis);
    close(fd);
    free(line);
}

/* A connection cut with commands in flight halves the depth for the next
 * one (8, then 4); replies read before the cut are kept; a finished publish
 * doubles it back. */
static void test_depth_backs_off(void) {
    k2r_redis_wait_t now = {.wait_ms = 0, .wake_fd = -1}, later = {.wait_ms = 2000, .wake_fd = -1};
    k2r_redis_conf_t conf = {.host = "peer",
                             .port = 1,
                             .connect_timeout_ms = 2000,
                             .command_timeout_ms = 2000,
                             .pipeline_depth = 8};
    char errstr[256] = "", buf[64];
    k2r_publish_t items[8];
    k2r_redis_t *redis = k2r_redis_new(&conf, errstr, sizeof(errstr));
    int sv[2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    for (int i = 0; i < 8; i++)
        item_set(&items[i], "ch", "m", 1);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CU_ASSERT(write(sv[1], PONG, sizeof(PONG) - 1) == (ssize_t)(sizeof(PONG) - 1));
    CU_ASSERT_EQUAL_FATAL(k2r_redis_adopt_fd(redis, sv[0], errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 8, &now, errstr, sizeof(errstr)),
                    K2R_REDIS_AGAIN);
    direct_expect(sv[1], PING CMD CMD CMD CMD CMD CMD CMD CMD,
                  sizeof(PING) - 1 + 8 * (sizeof(CMD) - 1));
    CU_ASSERT(write(sv[1], ":1\r\n:1\r\n", 8) == 8);
    close(sv[1]); /* cut after two replies */
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 8, &later, errstr, sizeof(errstr)), -1);
    CU_ASSERT_EQUAL(items[0].status, K2R_PUBLISH_OK);
    CU_ASSERT_EQUAL(items[1].status, K2R_PUBLISH_OK);
    CU_ASSERT_EQUAL(items[2].status, K2R_PUBLISH_PENDING);

    /* The next connection: 4 in flight, not 8, and never items 0 and 1. */
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CU_ASSERT(write(sv[1], PONG, sizeof(PONG) - 1) == (ssize_t)(sizeof(PONG) - 1));
    CU_ASSERT_EQUAL_FATAL(k2r_redis_adopt_fd(redis, sv[0], errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 8, &now, errstr, sizeof(errstr)),
                    K2R_REDIS_AGAIN);
    direct_expect(sv[1], PING CMD CMD CMD CMD, sizeof(PING) - 1 + 4 * (sizeof(CMD) - 1));
    CU_ASSERT(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) < 0); /* nothing more yet */
    CU_ASSERT(write(sv[1], ":1\r\n:1\r\n:1\r\n:1\r\n", 16) == 16);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 8, &now, errstr, sizeof(errstr)),
                    K2R_REDIS_AGAIN);
    direct_expect(sv[1], CMD CMD, 2 * (sizeof(CMD) - 1));
    CU_ASSERT(write(sv[1], ":1\r\n:1\r\n", 8) == 8);
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 8, &later, errstr, sizeof(errstr)), 0);
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(items[i].status, K2R_PUBLISH_OK);
    k2r_redis_destroy(redis);
    close(sv[1]);
}

/* Appends a RESP bulk string of `len` bytes of `b` to out (of `size`) at *n. */
static void put_bulk_at(char *out, size_t size, size_t *n, const char *b, size_t len) {
    *n += (size_t)snprintf(out + *n, size - *n, "$%zu\r\n", len);
    if (*n + len + 2 <= size) {
        memcpy(out + *n, b, len);
        memcpy(out + *n + len, "\r\n", 2);
        *n += len + 2;
    }
}

/*
 * With dedupe on, a connection loads the notification script after its PING,
 * whether answered PONG or MISCONF (a change once returned before the load on
 * PONG, and every EVALSHA then met NOSCRIPT); an item naming its record goes
 * as EVALSHA of the script's SHA1 with its mark's key and bit, and -1 means
 * the other publisher was first.
 */
static void script_handshake(const char *ping_reply) {
    static char load[8192], eval[2048];
    size_t src_len, nl = 0, ne = 0;
    const char *src = k2r_redis_script(&src_len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char sha[41], errstr[256] = "";
    step_t steps[6];
    k2r_redis_conf_t conf = {
        .host = "peer",
        .port = 1,
        .connect_timeout_ms = 2000,
        .command_timeout_ms = 2000,
        .pipeline_depth = 8,
        .dedupe_window_ms = 600000,
    };
    k2r_redis_t *redis = k2r_redis_new(&conf, errstr, sizeof(errstr));
    k2r_publish_t items[2];
    peer_t peer;
    int fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    CU_ASSERT_FATAL(EVP_Digest(src, src_len, md, &mdlen, EVP_sha1(), NULL) == 1 && mdlen == 20);
    for (size_t i = 0; i < 20; i++)
        snprintf(sha + (i * 2), 3, "%02x", md[i]);
    nl += (size_t)snprintf(load, sizeof(load), "*3\r\n");
    put_bulk_at(load, sizeof(load), &nl, "SCRIPT", 6);
    put_bulk_at(load, sizeof(load), &nl, "LOAD", 4);
    put_bulk_at(load, sizeof(load), &nl, src, src_len);
    /* EVALSHA sha 1 k2r:dedupe:orders:2:1 b BIT 600000 PUBLISH ch m 0 0, for
     * offsets 70000 and 70001 (block 1, bits 4464 and 4465). */
    for (int k = 0; k < 2; k++) {
        ne += (size_t)snprintf(eval + ne, sizeof(eval) - ne, "*12\r\n");
        put_bulk_at(eval, sizeof(eval), &ne, "EVALSHA", 7);
        put_bulk_at(eval, sizeof(eval), &ne, sha, 40);
        put_bulk_at(eval, sizeof(eval), &ne, "1", 1);
        put_bulk_at(eval, sizeof(eval), &ne, "k2r:dedupe:orders:2:1", 21);
        put_bulk_at(eval, sizeof(eval), &ne, "b", 1);
        put_bulk_at(eval, sizeof(eval), &ne, k ? "4465" : "4464", 4);
        put_bulk_at(eval, sizeof(eval), &ne, "600000", 6);
        put_bulk_at(eval, sizeof(eval), &ne, "PUBLISH", 7);
        put_bulk_at(eval, sizeof(eval), &ne, "ch", 2);
        put_bulk_at(eval, sizeof(eval), &ne, "m", 1);
        put_bulk_at(eval, sizeof(eval), &ne, "0", 1);
        put_bulk_at(eval, sizeof(eval), &ne, "0", 1);
    }
    steps[0] = (step_t){EXPECT, PING, sizeof(PING) - 1, 0};
    steps[1] = (step_t){SEND, ping_reply, strlen(ping_reply), 0};
    steps[2] = (step_t){EXPECT, load, nl, 0};
    steps[3] = (step_t){SEND, "$40\r\n0123456789012345678901234567890123456789\r\n", 47, 0};
    steps[4] = (step_t){EXPECT, eval, ne, 0};
    steps[5] = (step_t){SEND, ":3\r\n:-1\r\n", 9, 0};
    fd = peer_start(&peer, steps, 6);
    CU_ASSERT_EQUAL(k2r_redis_adopt_fd(redis, fd, errstr, sizeof(errstr)), 0);
    for (int k = 0; k < 2; k++) {
        item_set(&items[k], "ch", "m", 1);
        items[k].dd_topic = "orders";
        items[k].dd_partition = 2;
        items[k].dd_offset = 70000 + k;
    }
    CU_ASSERT_EQUAL(k2r_redis_publish(redis, items, 2, NULL, errstr, sizeof(errstr)), 0);
    CU_ASSERT_EQUAL(items[0].status, K2R_PUBLISH_OK);
    CU_ASSERT_EQUAL(items[0].receivers, 3);
    CU_ASSERT_EQUAL(items[0].suppressed, 0);
    CU_ASSERT_EQUAL(items[1].status, K2R_PUBLISH_OK);
    CU_ASSERT_EQUAL(items[1].receivers, 0);
    CU_ASSERT_EQUAL(items[1].suppressed, 1);
    k2r_redis_destroy(redis);
    peer_join(&peer);
}

static void test_script_after_pong(void) {
    script_handshake(PONG);
}

static void test_script_after_misconf(void) {
    script_handshake("-MISCONF Redis is configured to save RDB snapshots, but it's currently "
                     "unable to persist to disk.\r\n");
}

int test_redis_sink_register(void) {
    CU_pSuite suite = CU_add_suite("redis sink (socketpair peer)", NULL, NULL);

    if (!suite ||
        !CU_add_test(suite, "exact RESP, replies byte by byte", test_exact_resp_byte_by_byte) ||
        !CU_add_test(suite, "pipelining order at depth 2", test_pipeline_order) ||
        !CU_add_test(suite, "refusals and non-integer replies", test_refusals) ||
        !CU_add_test(suite, "server-state errors", test_server_state_errors) ||
        !CU_add_test(suite, "connection cut after 2 of 5 replies", test_cut_mid_pipeline) ||
        !CU_add_test(suite, "a reply slower than command_timeout_ms", test_command_timeout) ||
        !CU_add_test(suite, "a reply that is not RESP", test_protocol_error) ||
        !CU_add_test(suite, "AUTH and PING answered", test_handshake_auth) ||
        !CU_add_test(suite, "handshake refused or unanswered", test_handshake_failures) ||
        !CU_add_test(suite, "a publish resumed across calls; SPUBLISH", test_publish_resumes) ||
        !CU_add_test(suite, "a wake descriptor ends the wait", test_publish_woken) ||
        !CU_add_test(suite, "idle check: PING, PONG, an error, EOF", test_idle_check) ||
        !CU_add_test(suite, "PING answered with MISCONF: the connection stays",
                     test_misconf_ping) ||
        !CU_add_test(suite, "a reply longer than the bound", test_huge_reply) ||
        !CU_add_test(suite, "the depth halves after a cut, doubles back", test_depth_backs_off) ||
        !CU_add_test(suite, "dedupe: SCRIPT LOAD after PONG, EVALSHA with the mark",
                     test_script_after_pong) ||
        !CU_add_test(suite, "dedupe: SCRIPT LOAD after MISCONF too", test_script_after_misconf))
        return CU_get_error();
    return 0;
}
