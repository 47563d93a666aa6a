/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_slots.c - Redis Cluster's key space (slots.c): the CRC16, the hash
 * slot of keys with and without hash tags, the slot map filled from CLUSTER
 * SLOTS ranges, and MOVED/ASK redirections, well-formed and not.
 *
 * The expected slots are what CLUSTER KEYSLOT answered on a redis-server
 * 7.0.15 started with --cluster-enabled yes; the redirection lines and the
 * endpoints "", NULL and "?" are what two such nodes sent for each
 * cluster-preferred-endpoint-type. No server runs here.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "k2r/slots.h"
#include "suites.h"

/* A key given with its length, as it may hold NUL bytes. */
#define KEY(s) s, sizeof(s) - 1

/* The CRC16 of one byte, bit by bit, from the polynomial. */
static uint16_t crc16_bitwise(const unsigned char *p, size_t len) {
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

static void test_crc16(void) {
    unsigned char all[256];

    /* The check value of CRC-16/XMODEM, and the one Redis's crc16.c gives. */
    CU_ASSERT_EQUAL(k2r_slot_crc16(KEY("123456789")), 0x31C3);
    CU_ASSERT_EQUAL(k2r_slot_crc16("", 0), 0);
    CU_ASSERT_EQUAL(k2r_slot_crc16(KEY("A")), 0x58E5);
    /* Each single byte checks one table entry against the definition. */
    for (unsigned b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;

        all[b] = c;
        CU_ASSERT_EQUAL(k2r_slot_crc16((const char *)&c, 1), crc16_bitwise(&c, 1));
    }
    CU_ASSERT_EQUAL(k2r_slot_crc16((const char *)all, sizeof(all)),
                    crc16_bitwise(all, sizeof(all)));
}

static void test_slot_of(void) {
    static const struct {
        const char *key;
        size_t len;
        unsigned slot;
    } cases[] = {
        /* Plain keys. */
        {KEY("123456789"), 12739},
        {KEY("events:user:octocat"), 11580},
        {KEY("foo"), 12182},
        {KEY("bar"), 5061},
        {KEY("zap"), 6469},
        {KEY("user1000"), 3443},
        {KEY("channel:orders:eu"), 8907},
        {KEY(""), 0},
        /* A tag: only its bytes count. */
        {KEY("{user1000}.following"), 3443},
        {KEY("{user1000}.followers"), 3443},
        {KEY("{channel:orders}:eu"), 478},
        {KEY("channel:orders"), 478},
        {KEY("{a}"), 15495},
        {KEY("a"), 15495},
        /* The first '{' and the first '}' after it. */
        {KEY("foo{bar}{zap}"), 5061},
        {KEY("foo{{bar}}zap"), 4015}, /* the tag is "{bar" */
        {KEY("{bar"), 4015},
        {KEY("}{a}"), 15495}, /* a '}' before the '{' does not close */
        {KEY("a}{b}"), 3300},
        {KEY("b"), 3300},
        /* An empty tag hashes the whole key, even with a tag after it. */
        {KEY("foo{}{bar}"), 8363},
        {KEY("{}{bar}"), 11272},
        {KEY("foo{}bar"), 14292},
        {KEY("{}"), 15257},
        /* No closing brace, or no opening one: the whole key. */
        {KEY("{"), 4092},
        {KEY("}"), 12090},
        {KEY("bar}"), 6624},
        {KEY("a{b"), 13340},
        /* Binary keys: NUL and high bytes are bytes like any other. */
        {KEY("k\0ey"), 7340},
        {KEY("\0"), 0},
        {KEY("\0\1\xff\xfe"), 14878},
        {KEY("{\0}x"), 0},
        {KEY("x{\0}"), 0},
        {KEY("\0{tag}\xff"), 8338},
        {KEY("tag"), 8338},
        {KEY("\xc3\xa9t\xc3\xa9"), 10087}, /* "été" in UTF-8 */
    };
    char longkey[300];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned slot = k2r_slot_of(cases[i].key, cases[i].len);

        if (slot != cases[i].slot)
            fprintf(stderr, "\nkey %zu: slot %u, expected %u\n", i, slot, cases[i].slot);
        CU_ASSERT_EQUAL(slot, cases[i].slot);
    }
    memset(longkey, 'x', sizeof(longkey));
    CU_ASSERT_EQUAL(k2r_slot_of(longkey, sizeof(longkey)), 11216);
    /* The length bounds the key: the bytes after it do not count. */
    CU_ASSERT_EQUAL(k2r_slot_of("foo{bar}", 3), 12182);
    CU_ASSERT_EQUAL(k2r_slot_of("{bar}", 4), 4015);
    CU_ASSERT_EQUAL(k2r_slot_of(NULL, 0), 0);
}

static void test_map(void) {
    k2r_slotmap_t map;
    int a, b, c;

    k2r_slotmap_init(&map);
    CU_ASSERT_EQUAL(k2r_slotmap_nnodes(&map), 0);
    CU_ASSERT_FALSE(k2r_slotmap_complete(&map));
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 0), -1);
    a = k2r_slotmap_node(&map, "10.0.0.1", 6379);
    b = k2r_slotmap_node(&map, "10.0.0.2", 6379);
    c = k2r_slotmap_node(&map, "10.0.0.1", 6380);
    CU_ASSERT_EQUAL(a, 0);
    CU_ASSERT_EQUAL(b, 1);
    CU_ASSERT_EQUAL(c, 2);
    /* The same host and port is the same node. */
    CU_ASSERT_EQUAL(k2r_slotmap_node(&map, "10.0.0.2", 6379), 1);
    CU_ASSERT_EQUAL(k2r_slotmap_nnodes(&map), 3);
    CU_ASSERT_STRING_EQUAL(k2r_slotmap_get(&map, c)->host, "10.0.0.1");
    CU_ASSERT_EQUAL(k2r_slotmap_get(&map, c)->port, 6380);
    CU_ASSERT_PTR_NULL(k2r_slotmap_get(&map, 3));
    CU_ASSERT_PTR_NULL(k2r_slotmap_get(&map, -1));
    /* Bad nodes are refused, and not added. */
    CU_ASSERT_EQUAL(k2r_slotmap_node(&map, "", 6379), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_node(&map, NULL, 6379), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_node(&map, "10.0.0.3", 0), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_node(&map, "10.0.0.3", 65536), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_node(&map, "a b", 6379), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_nnodes(&map), 3);

    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 0, 5460, a), 0);
    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 5461, 10922, b), 0);
    CU_ASSERT_FALSE(k2r_slotmap_complete(&map));
    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 10923, 16383, c), 0);
    CU_ASSERT_TRUE(k2r_slotmap_complete(&map));
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 0), a);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 5460), a);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 5461), b);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 10922), b);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 10923), c);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 16383), c);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 16384), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, k2r_slot_of(KEY("foo"))), c);
    /* A slot moved to another node; one slot is a range too. */
    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 12182, 12182, a), 0);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 12181), c);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 12182), a);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 12183), c);
    /* Bad ranges and nodes assign nothing. */
    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 10, 9, b), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 16383, 16384, b), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 0, 0, 3), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 0, 0, -1), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 0), a);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 16383), c);

    /* Cleared, the map is empty and takes new nodes from index 0. */
    k2r_slotmap_clear(&map);
    CU_ASSERT_EQUAL(k2r_slotmap_nnodes(&map), 0);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 0), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 16383), -1);
    CU_ASSERT_FALSE(k2r_slotmap_complete(&map));
    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 0, 16383, 0), -1);
    CU_ASSERT_EQUAL(k2r_slotmap_node(&map, "10.0.0.9", 7000), 0);
    CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, 0, 16383, 0), 0);
    CU_ASSERT_TRUE(k2r_slotmap_complete(&map));
    CU_ASSERT_STRING_EQUAL(k2r_slotmap_get(&map, 0)->host, "10.0.0.9");
    k2r_slotmap_free(&map);
    CU_ASSERT_EQUAL(k2r_slotmap_nnodes(&map), 0);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 0), -1);
    k2r_slotmap_free(&map);
    k2r_slotmap_free(NULL);
}

/* Many nodes: the table grows, and every node keeps its index. */
static void test_map_growth(void) {
    static k2r_slotmap_t map; /* zeroed: an empty map without init */
    char host[32];

    for (int i = 0; i < 300; i++) {
        snprintf(host, sizeof(host), "node-%d.example", i);
        CU_ASSERT_EQUAL_FATAL(k2r_slotmap_node(&map, host, 6379), i);
        CU_ASSERT_EQUAL(k2r_slotmap_assign(&map, (unsigned)i * 50, (unsigned)i * 50 + 49, i), 0);
    }
    CU_ASSERT_EQUAL(k2r_slotmap_nnodes(&map), 300);
    CU_ASSERT_EQUAL(k2r_slotmap_node(&map, "node-0.example", 6379), 0);
    CU_ASSERT_EQUAL(k2r_slotmap_node(&map, "node-299.example", 6379), 299);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 14999), 299);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 15000), -1);
    CU_ASSERT_STRING_EQUAL(k2r_slotmap_get(&map, 123)->host, "node-123.example");
    k2r_slotmap_free(&map);
}

/* The ranges of CLUSTER SLOTS as the server sent them, then bad ones. */
static void test_add_range(void) {
    k2r_slotmap_t map;
    char err[160];
    char longhost[K2R_SLOT_HOST_MAX + 2];

    k2r_slotmap_init(&map);
    /* cluster-preferred-endpoint-type ip */
    CU_ASSERT_EQUAL(
        k2r_slotmap_add_range(&map, 0, 8191, KEY("127.0.0.1"), 49737, "seed", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(
        k2r_slotmap_add_range(&map, 8192, 16383, KEY("127.0.0.1"), 33847, "seed", err, sizeof(err)),
        1);
    CU_ASSERT_TRUE(k2r_slotmap_complete(&map));
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 8191), 0);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 8192), 1);
    CU_ASSERT_EQUAL(k2r_slotmap_get(&map, 1)->port, 33847);
    /* The same endpoint again is the same node. */
    CU_ASSERT_EQUAL(
        k2r_slotmap_add_range(&map, 100, 200, KEY("127.0.0.1"), 33847, NULL, err, sizeof(err)), 1);
    CU_ASSERT_EQUAL(k2r_slotmap_nnodes(&map), 2);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 99), 0);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 100), 1);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 200), 1);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 201), 0);

    /* unknown-endpoint: NULL, and "": the node asked. */
    k2r_slotmap_clear(&map);
    CU_ASSERT_EQUAL(
        k2r_slotmap_add_range(&map, 0, 8191, NULL, 0, 49737, "redis-0.local", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(
        k2r_slotmap_add_range(&map, 8192, 16383, "", 0, 49737, "redis-0.local", err, sizeof(err)),
        0);
    CU_ASSERT_STRING_EQUAL(k2r_slotmap_get(&map, 0)->host, "redis-0.local");
    CU_ASSERT_EQUAL(k2r_slotmap_nnodes(&map), 1);
    CU_ASSERT_TRUE(k2r_slotmap_complete(&map));

    /* Each refusal names the range and leaves the map as it was. */
    k2r_slotmap_clear(&map);
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 8191, NULL, 0, 49737, NULL, err, sizeof(err)),
                    -1);
    CU_ASSERT_STRING_EQUAL(
        err, "slots 0 to 8191, port 49737: the endpoint is the node asked, whose host "
             "is not known");
    /* hostname without cluster-announce-hostname */
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 8191, KEY("?"), 49737, "seed", err, sizeof(err)),
                    -1);
    CU_ASSERT_STRING_EQUAL(
        err, "slots 0 to 8191, port 49737: the endpoint is \"?\": the node has no host name to "
             "announce");
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 16384, KEY("h"), 1, NULL, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "slots 0 to 16384: not a range within 0-16383");
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, -1, 5, KEY("h"), 1, NULL, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "slots -1 to 5: not a range within 0-16383");
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 6, 5, KEY("h"), 1, NULL, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "slots 6 to 5: not a range within 0-16383");
    CU_ASSERT_EQUAL(
        k2r_slotmap_add_range(&map, 0, 9223372036854775807LL, KEY("h"), 1, NULL, err, sizeof(err)),
        -1);
    CU_ASSERT_STRING_EQUAL(err, "slots 0 to 9223372036854775807: not a range within 0-16383");
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 1, KEY("h"), 0, NULL, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "slots 0 to 1, port 0: the port is not within 1-65535");
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 1, KEY("h"), 70000, NULL, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "slots 0 to 1, port 70000: the port is not within 1-65535");
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 1, KEY("h\0st"), 6379, NULL, err, sizeof(err)),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, "slots 0 to 1, port 6379: the host holds a control character or a "
                                "space");
    memset(longhost, 'h', sizeof(longhost));
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 1, longhost, K2R_SLOT_HOST_MAX + 1, 6379, NULL,
                                          err, sizeof(err)),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, "slots 0 to 1, port 6379: the host is longer than 255 bytes");
    CU_ASSERT_EQUAL(k2r_slotmap_nnodes(&map), 0);
    CU_ASSERT_EQUAL(k2r_slotmap_owner(&map, 0), -1);
    /* 255 bytes is a host. */
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 1, longhost, K2R_SLOT_HOST_MAX, 6379, NULL, err,
                                          sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(strlen(k2r_slotmap_get(&map, 0)->host), K2R_SLOT_HOST_MAX);
    /* A short buffer is cut, NUL-terminated; no buffer at all is fine. */
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 16384, KEY("h"), 1, NULL, err, 6), -1);
    CU_ASSERT_STRING_EQUAL(err, "slots");
    CU_ASSERT_EQUAL(k2r_slotmap_add_range(&map, 0, 16384, KEY("h"), 1, NULL, NULL, 0), -1);
    k2r_slotmap_free(&map);
}

/* Parses `line` and checks the result; kind NONE checks that out is zeroed. */
static void redirect_is(const char *line, size_t len, k2r_redirect_kind_t kind, unsigned slot,
                        const char *host, int port) {
    k2r_redirect_t r;

    memset(&r, 0x5a, sizeof(r));
    CU_ASSERT_EQUAL(k2r_slot_redirect_parse(line, len, &r), kind);
    CU_ASSERT_EQUAL(r.kind, kind);
    CU_ASSERT_EQUAL(r.slot, slot);
    CU_ASSERT_STRING_EQUAL(r.host, host);
    CU_ASSERT_EQUAL(r.port, port);
    if (r.kind != kind || r.slot != slot || strcmp(r.host, host) != 0 || r.port != port)
        fprintf(stderr, "\n%.*s: %d %u %s %d\n", (int)len, line, r.kind, r.slot, r.host, r.port);
}

#define MOVED K2R_REDIRECT_MOVED
#define ASK   K2R_REDIRECT_ASK
#define NONE  K2R_REDIRECT_NONE

static void test_redirect(void) {
    char host[K2R_SLOT_HOST_MAX + 1], longline[300];
    int n;

    /* As hiredis hands them over (no '-', no CRLF), and as on the wire. */
    redirect_is(KEY("MOVED 3999 127.0.0.1:6381"), MOVED, 3999, "127.0.0.1", 6381);
    redirect_is(KEY("ASK 3999 127.0.0.1:6381"), ASK, 3999, "127.0.0.1", 6381);
    redirect_is(KEY("-MOVED 12182 127.0.0.1:33847\r\n"), MOVED, 12182, "127.0.0.1", 33847);
    redirect_is(KEY("-ASK 12182 127.0.0.1:49737"), ASK, 12182, "127.0.0.1", 49737);
    /* unknown-endpoint: the host the command went to. */
    redirect_is(KEY("MOVED 12182 :33847"), MOVED, 12182, "", 33847);
    redirect_is(KEY("ASK 12182 :49737"), ASK, 12182, "", 49737);
    /* hostname without a host name to announce: copied, the caller decides. */
    redirect_is(KEY("MOVED 12182 ?:33847"), MOVED, 12182, "?", 33847);
    redirect_is(KEY("MOVED 0 redis-2.redis.svc.cluster.local:6379"), MOVED, 0,
                "redis-2.redis.svc.cluster.local", 6379);
    redirect_is(KEY("MOVED 16383 h:65535"), MOVED, 16383, "h", 65535);
    redirect_is(KEY("MOVED 1 h:1"), MOVED, 1, "h", 1);
    /* IPv6: the last ':' splits. */
    redirect_is(KEY("MOVED 3999 ::1:6381"), MOVED, 3999, "::1", 6381);
    redirect_is(KEY("ASK 42 2001:db8::7:7000"), ASK, 42, "2001:db8::7", 7000);
    redirect_is(KEY("MOVED 42 fe80::1%eth0:7000"), MOVED, 42, "fe80::1%eth0", 7000);

    /* Not redirections. */
    redirect_is(KEY("ERR unknown command"), NONE, 0, "", 0);
    redirect_is(KEY("CLUSTERDOWN The cluster is down"), NONE, 0, "", 0);
    redirect_is(KEY("TRYAGAIN Multiple keys request during rehashing of slot"), NONE, 0, "", 0);
    redirect_is(KEY(""), NONE, 0, "", 0);
    redirect_is(KEY("-"), NONE, 0, "", 0);
    redirect_is(NULL, 0, NONE, 0, "", 0);
    redirect_is(KEY("moved 3999 127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVEDX 3999 127.0.0.1:6381"), NONE, 0, "", 0);
    /* Malformed ones. */
    redirect_is(KEY("MOVED"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED "), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 "), NONE, 0, "", 0);
    redirect_is(KEY("MOVED3999 127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999  127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED  3999 127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 :"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:0"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:70000"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:65536"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:-1"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:+6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:99999999999999999999999"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 16384 127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 99999 127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 18446744073709551617 127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED -1 127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED x 127.0.0.1:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:6381 "), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:6381x"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:6381 extra"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:6381\n"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 127.0.0.1:6381\r\n\r\n"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 h st:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 h\tst:6381"), NONE, 0, "", 0);
    redirect_is(KEY("MOVED 3999 h\0st:6381"), NONE, 0, "", 0);
    /* The length bounds the line: a valid prefix of a longer buffer. */
    redirect_is("MOVED 3999 127.0.0.1:6381", 23, MOVED, 3999, "127.0.0.1", 63);
    /* A host of 255 bytes fits; one of 256 does not. */
    memset(host, 'h', K2R_SLOT_HOST_MAX);
    host[K2R_SLOT_HOST_MAX] = '\0';
    n = snprintf(longline, sizeof(longline), "MOVED 7 %s:6379", host);
    redirect_is(longline, (size_t)n, MOVED, 7, host, 6379);
    n = snprintf(longline, sizeof(longline), "MOVED 7 h%s:6379", host);
    redirect_is(longline, (size_t)n, NONE, 0, "", 0);
}

/* The key built into a fresh buffer equals `want`. */
static void key_is(int rc, k2r_buf_t *b, const char *want) {
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(b->len, strlen(want));
    CU_ASSERT(b->len == strlen(want) && memcmp(b->data, want, b->len) == 0);
    b->len = 0;
}

/* The keys beside a channel: off a cluster as documented (docs/history.md,
 * README "Fast path"); on one, in the channel's slot, or as off one when the
 * channel's braces make that impossible. */
static void test_keys(void) {
    k2r_buf_t b = {0};

#define CH(s) s, sizeof(s) - 1
    key_is(k2r_history_key(&b, "history:", CH("events:user:octocat"), 0), &b,
           "history:events:user:octocat");
    key_is(k2r_history_key(&b, "history:", CH("events:user:octocat"), 1), &b,
           "history:{events:user:octocat}");
    key_is(k2r_history_key(&b, "h:", CH("events:{user}:1"), 1), &b, "h:events:{user}:1");
    key_is(k2r_history_key(&b, "h:", CH("a}b"), 1), &b, "h:a}b");
    CU_ASSERT_EQUAL(k2r_slot_of(CH("history:{events:user:octocat}")),
                    k2r_slot_of(CH("events:user:octocat")));

    /* Bitmaps off a cluster: a block of 65536 offsets, the index when not 0. */
    key_is(k2r_dedupe_key(&b, "k2r:dedupe:", "orders", 2, 70000, 0, CH("events:x:1"), 0), &b,
           "k2r:dedupe:orders:2:1");
    CU_ASSERT_EQUAL(k2r_dedupe_bit(70000), 70000 - 65536);
    CU_ASSERT_EQUAL(k2r_dedupe_bit(65535), 65535);
    key_is(k2r_dedupe_key(&b, "k2r:dedupe:", "orders", 0, 5, 3, CH("events:x:1"), 0), &b,
           "k2r:dedupe:orders:0:0:3");
    /* A key per notification on a cluster, in the channel's slot. */
    key_is(k2r_dedupe_key(&b, "d:", "orders", 2, 70000, 1, CH("events:x:1"), 1), &b,
           "d:{events:x:1}:orders:2:70000:1");
    CU_ASSERT_EQUAL(k2r_slot_of(CH("d:{events:x:1}:orders:2:70000:1")),
                    k2r_slot_of(CH("events:x:1")));
    key_is(k2r_dedupe_key(&b, "d:", "orders", 2, 7, 0, CH("ev:{u}:1"), 1), &b,
           "d:{u}:orders:2:7:0");
    key_is(k2r_dedupe_key(&b, "d:", "orders", 2, 7, 0, CH("a{b"), 1), &b, "d:orders:2:7:0");
#undef CH
    k2r_buf_free(&b);
}

int test_slots_register(void) {
    CU_pSuite suite = CU_add_suite("slots", NULL, NULL);

    if (!suite || !CU_add_test(suite, "CRC16 (XModem)", test_crc16) ||
        !CU_add_test(suite, "hash slots as CLUSTER KEYSLOT gives them", test_slot_of) ||
        !CU_add_test(suite, "the slot map: nodes, ranges, clear and reuse", test_map) ||
        !CU_add_test(suite, "the slot map grows past its first table", test_map_growth) ||
        !CU_add_test(suite, "CLUSTER SLOTS ranges, endpoints and refusals", test_add_range) ||
        !CU_add_test(suite, "MOVED and ASK, well-formed and malformed", test_redirect) ||
        !CU_add_test(suite, "the keys of dedupe marks and history streams", test_keys))
        return CU_get_error();
    return 0;
}
