/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slots.c - hash slots, the slot map and MOVED/ASK redirections of Redis
 * Cluster.
 *
 * The CRC16 is table-driven, one byte a step, with the table written out as
 * a constant: no table built at first use, so no state to share between
 * threads. The unit tests check every entry against the bitwise definition.
 *
 * The slot map is a node table grown by doubling (k2r_array_reserve) and a
 * 16384-entry owner array of node index plus one, so that an all-zero map is
 * the empty map. Nodes are found by a linear search: a cluster has tens of
 * masters, and the map is filled once per CLUSTER SLOTS, not per record.
 *
 * Hosts, whether read from CLUSTER SLOTS or from a redirection, are outside
 * input: they are checked for length and for bytes a host name or address
 * never holds (controls, spaces) before the map keeps them or the sink
 * connects to them.
 *
 * Not here: anything that talks to a node (see slots.h).
 */
#include "k2r/slots.h"
#include "k2r/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* crc16_table[b] is the CRC16 of the single byte b: polynomial 0x1021,
 * most significant bit first. */
static const uint16_t crc16_table[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7, 0x8108, 0x9129, 0xa14a, 0xb16b,
    0xc18c, 0xd1ad, 0xe1ce, 0xf1ef, 0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de, 0x2462, 0x3443, 0x0420, 0x1401,
    0x64e6, 0x74c7, 0x44a4, 0x5485, 0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4, 0xb75b, 0xa77a, 0x9719, 0x8738,
    0xf7df, 0xe7fe, 0xd79d, 0xc7bc, 0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b, 0x5af5, 0x4ad4, 0x7ab7, 0x6a96,
    0x1a71, 0x0a50, 0x3a33, 0x2a12, 0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41, 0xedae, 0xfd8f, 0xcdec, 0xddcd,
    0xad2a, 0xbd0b, 0x8d68, 0x9d49, 0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78, 0x9188, 0x81a9, 0xb1ca, 0xa1eb,
    0xd10c, 0xc12d, 0xf14e, 0xe16f, 0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e, 0x02b1, 0x1290, 0x22f3, 0x32d2,
    0x4235, 0x5214, 0x6277, 0x7256, 0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405, 0xa7db, 0xb7fa, 0x8799, 0x97b8,
    0xe75f, 0xf77e, 0xc71d, 0xd73c, 0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab, 0x5844, 0x4865, 0x7806, 0x6827,
    0x18c0, 0x08e1, 0x3882, 0x28a3, 0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92, 0xfd2e, 0xed0f, 0xdd6c, 0xcd4d,
    0xbdaa, 0xad8b, 0x9de8, 0x8dc9, 0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8, 0x6e17, 0x7e36, 0x4e55, 0x5e74,
    0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

/* The owner array holds uint16_t node index + 1, so 65535 nodes at most. */
#define MAX_NODES 65535

uint16_t k2r_slot_crc16(const char *buf, size_t len) {
    const unsigned char *p = (const unsigned char *)buf;
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ p[i]) & 0xff]);
    return crc;
}

unsigned k2r_slot_of(const char *key, size_t len) {
    const char *lbrace = len ? memchr(key, '{', len) : NULL;
    const char *rbrace;

    /* Only the first '{' counts, and only the first '}' after it; an empty
     * tag ("{}") leaves the whole key to be hashed, as Redis does. */
    if (lbrace) {
        size_t rest = len - (size_t)(lbrace - key) - 1;

        rbrace = rest ? memchr(lbrace + 1, '}', rest) : NULL;
        if (rbrace && rbrace > lbrace + 1)
            return k2r_slot_crc16(lbrace + 1, (size_t)(rbrace - lbrace - 1)) & (K2R_SLOTS - 1);
    }
    return k2r_slot_crc16(key, len) & (K2R_SLOTS - 1);
}

/* 1 when `len` bytes may be a host: 1 to K2R_SLOT_HOST_MAX of them, none a
 * control character or a space (no name or address has one, and a host is
 * printed in log lines). */
static int host_ok(const char *host, size_t len) {
    if (len == 0 || len > K2R_SLOT_HOST_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];

        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

void k2r_slotmap_init(k2r_slotmap_t *map) {
    memset(map, 0, sizeof(*map));
}

void k2r_slotmap_clear(k2r_slotmap_t *map) {
    for (size_t i = 0; i < map->nnodes; i++)
        free(map->nodes[i].host);
    map->nnodes = 0;
    memset(map->owner, 0, sizeof(map->owner));
}

void k2r_slotmap_free(k2r_slotmap_t *map) {
    if (!map)
        return;
    k2r_slotmap_clear(map);
    free(map->nodes);
    k2r_slotmap_init(map);
}

/* k2r_slotmap_node() for a host of `len` bytes, not NUL-terminated. */
static int node_n(k2r_slotmap_t *map, const char *host, size_t len, long long port) {
    char *copy;

    if (!host_ok(host, len) || port < 1 || port > 65535)
        return -1;
    for (size_t i = 0; i < map->nnodes; i++)
        if (map->nodes[i].port == port && strlen(map->nodes[i].host) == len &&
            memcmp(map->nodes[i].host, host, len) == 0)
            return (int)i;
    if (map->nnodes >= MAX_NODES ||
        k2r_array_reserve(&map->nodes, &map->cap_nodes, map->nnodes + 1, sizeof(*map->nodes), 8))
        return -1;
    copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, host, len);
    copy[len] = '\0';
    map->nodes[map->nnodes].host = copy;
    map->nodes[map->nnodes].port = (int)port;
    return (int)map->nnodes++;
}

int k2r_slotmap_node(k2r_slotmap_t *map, const char *host, int port) {
    return host ? node_n(map, host, strlen(host), port) : -1;
}

int k2r_slotmap_assign(k2r_slotmap_t *map, unsigned first, unsigned last, int node) {
    if (first > last || last >= K2R_SLOTS || node < 0 || (size_t)node >= map->nnodes)
        return -1;
    for (unsigned s = first; s <= last; s++)
        map->owner[s] = (uint16_t)(node + 1);
    return 0;
}

int k2r_slotmap_owner(const k2r_slotmap_t *map, unsigned slot) {
    if (slot >= K2R_SLOTS)
        return -1;
    return (int)map->owner[slot] - 1;
}

int k2r_slotmap_complete(const k2r_slotmap_t *map) {
    for (unsigned s = 0; s < K2R_SLOTS; s++)
        if (map->owner[s] == 0)
            return 0;
    return 1;
}

size_t k2r_slotmap_nnodes(const k2r_slotmap_t *map) {
    return map->nnodes;
}

const k2r_slot_node_t *k2r_slotmap_get(const k2r_slotmap_t *map, int node) {
    if (node < 0 || (size_t)node >= map->nnodes)
        return NULL;
    return &map->nodes[node];
}

int k2r_slotmap_add_range(k2r_slotmap_t *map, long long first, long long last, const char *host,
                          size_t hostlen, long long port, const char *default_host, char *errstr,
                          size_t errstr_size) {
    const char *why;
    int node = -1;

    if (first < 0 || last < first || last >= K2R_SLOTS) {
        if (errstr_size > 0)
            snprintf(errstr, errstr_size, "slots %lld to %lld: not a range within 0-16383", first,
                     last);
        return -1;
    }
    /* NULL (cluster-preferred-endpoint-type unknown-endpoint) and "" (a node
     * that does not know its own address) both mean: the node asked. */
    if (!host || hostlen == 0) {
        host = default_host;
        hostlen = default_host ? strlen(default_host) : 0;
    }
    if (port < 1 || port > 65535)
        why = "the port is not within 1-65535";
    else if (!host)
        why = "the endpoint is the node asked, whose host is not known";
    else if (hostlen == 1 && host[0] == '?')
        why = "the endpoint is \"?\": the node has no host name to announce";
    else if (hostlen > K2R_SLOT_HOST_MAX)
        why = "the host is longer than 255 bytes";
    else if (!host_ok(host, hostlen))
        why = "the host holds a control character or a space";
    else if ((node = node_n(map, host, hostlen, port)) < 0)
        why = map->nnodes >= MAX_NODES ? "more than 65535 nodes" : "out of memory";
    else
        why = NULL;
    if (why) {
        if (errstr_size > 0)
            snprintf(errstr, errstr_size, "slots %lld to %lld, port %lld: %s", first, last, port,
                     why);
        return -1;
    }
    /* Cannot fail: the range and the node were checked above. */
    k2r_slotmap_assign(map, (unsigned)first, (unsigned)last, node);
    return node;
}

/* Reads 1 to `maxdigits` decimal digits at *pos (no sign), no more than
 * `max`; advances *pos past them. Returns the value, or -1. */
static long read_number(const char *s, size_t len, size_t *pos, size_t maxdigits, long max) {
    size_t start = *pos;
    long v = 0;

    while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
        if (*pos - start >= maxdigits)
            return -1;
        v = v * 10 + (s[*pos] - '0');
        (*pos)++;
    }
    if (*pos == start || v > max)
        return -1;
    return v;
}

k2r_redirect_kind_t k2r_slot_redirect_parse(const char *line, size_t len, k2r_redirect_t *out) {
    k2r_redirect_kind_t kind;
    size_t pos = 0, colon, hostlen;
    long slot, port;

    memset(out, 0, sizeof(*out));
    if (!line)
        return K2R_REDIRECT_NONE;
    if (len >= 1 && line[0] == '-') {
        line++;
        len--;
    }
    if (len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n')
        len -= 2;
    if (len >= 6 && memcmp(line, "MOVED ", 6) == 0) {
        kind = K2R_REDIRECT_MOVED;
        pos = 6;
    } else if (len >= 4 && memcmp(line, "ASK ", 4) == 0) {
        kind = K2R_REDIRECT_ASK;
        pos = 4;
    } else {
        return K2R_REDIRECT_NONE;
    }
    slot = read_number(line, len, &pos, 5, K2R_SLOTS - 1);
    if (slot < 0 || pos >= len || line[pos] != ' ')
        return K2R_REDIRECT_NONE;
    pos++;
    /* The endpoint "host:port": the last ':' ends the host, which may hold
     * colons of its own (IPv6) or be empty (endpoint unknown to Redis). */
    colon = len;
    for (size_t i = pos; i < len; i++)
        if (line[i] == ':')
            colon = i;
    if (colon == len)
        return K2R_REDIRECT_NONE;
    hostlen = colon - pos;
    if (hostlen > 0 && !host_ok(line + pos, hostlen))
        return K2R_REDIRECT_NONE;
    pos = colon + 1;
    port = read_number(line, len, &pos, 5, 65535);
    if (port < 1 || pos != len)
        return K2R_REDIRECT_NONE;
    out->kind = kind;
    out->slot = (unsigned)slot;
    memcpy(out->host, line + colon - hostlen, hostlen);
    out->host[hostlen] = '\0';
    out->port = (int)port;
    return kind;
}

/* ------------------------------------------------- keys beside a channel */

/* The tag that puts a key in the channel's slot: the channel's own tag,
 * else the whole channel when it has no brace; NULL when neither works. */
static const char *slot_tag(const char *channel, size_t len, size_t *tag_len) {
    const char *lbrace = len ? memchr(channel, '{', len) : NULL;
    const char *rbrace = len ? memchr(channel, '}', len) : NULL;

    if (lbrace) {
        size_t rest = len - (size_t)(lbrace - channel) - 1;
        const char *close = rest ? memchr(lbrace + 1, '}', rest) : NULL;

        if (close && close > lbrace + 1) {
            *tag_len = (size_t)(close - lbrace - 1);
            return lbrace + 1;
        }
        return NULL;
    }
    if (rbrace)
        return NULL;
    *tag_len = len;
    return channel;
}

static int append_str(k2r_buf_t *out, const char *s) {
    return k2r_buf_append(out, s, strlen(s));
}

int k2r_history_key(k2r_buf_t *out, const char *prefix, const char *channel, size_t len,
                    int cluster) {
    size_t tag_len = 0;
    const char *tag = cluster ? slot_tag(channel, len, &tag_len) : NULL;

    if (append_str(out, prefix) != 0)
        return -1;
    if (tag && tag == channel) /* no tag of its own and no braces: the channel is the tag */
        return k2r_buf_append(out, "{", 1) || k2r_buf_append(out, channel, len) ||
                       k2r_buf_append(out, "}", 1)
                   ? -1
                   : 0;
    return k2r_buf_append(out, channel, len);
}

int k2r_dedupe_key(k2r_buf_t *out, const char *prefix, const char *topic, int32_t partition,
                   int64_t offset, uint32_t index, const char *channel, size_t len, int cluster) {
    char num[96];
    size_t tag_len = 0;
    const char *tag = cluster ? slot_tag(channel, len, &tag_len) : NULL;
    int n;

    if (append_str(out, prefix) != 0)
        return -1;
    if (!cluster) {
        n = index ? snprintf(num, sizeof(num), ":%d:%lld:%u", (int)partition,
                             (long long)(offset / K2R_DEDUPE_BLOCK), (unsigned)index)
                  : snprintf(num, sizeof(num), ":%d:%lld", (int)partition,
                             (long long)(offset / K2R_DEDUPE_BLOCK));
        return append_str(out, topic) || k2r_buf_append(out, num, (size_t)n) ? -1 : 0;
    }
    if (tag && (k2r_buf_append(out, "{", 1) || k2r_buf_append(out, tag, tag_len) ||
                k2r_buf_append(out, "}:", 2)))
        return -1;
    n = snprintf(num, sizeof(num), ":%d:%lld:%u", (int)partition, (long long)offset,
                 (unsigned)index);
    return append_str(out, topic) || k2r_buf_append(out, num, (size_t)n) ? -1 : 0;
}
