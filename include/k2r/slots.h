/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slots.h - Redis Cluster's key space: the hash slot of a key, which node
 * serves each slot, and the MOVED and ASK redirections.
 *
 * A pure module: no sockets, no hiredis, no logging, no global state but a
 * constant table. The Redis sink asks k2r_slot_of() where a channel goes,
 * fills a slot map from the CLUSTER SLOTS reply it walks itself (one
 * k2r_slotmap_add_range() per range, so this file knows no reply type), and
 * hands the error replies it gets to k2r_slot_redirect_parse().
 *
 * The slot of a key is CRC16-CCITT (XModem) of the key modulo 16384, where a
 * hash tag (the bytes between the first '{' and the first '}' after it, when
 * there is at least one) stands for the whole key: Redis's keyHashSlot().
 *
 * Not here: connecting to the nodes, sending commands or reading replies
 * (redis.c), or when to fetch the map again.
 */
#ifndef K2R_SLOTS_H
#define K2R_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "k2r/buf.h"

/* The number of hash slots; slots are 0 to K2R_SLOTS - 1. */
#define K2R_SLOTS 16384

/* The longest host name a slot map or a redirection holds, in bytes. */
#define K2R_SLOT_HOST_MAX 255

/* CRC16-CCITT as Redis Cluster uses it (XModem: polynomial 0x1021, initial
 * value 0, no reflection, no final XOR) of `len` bytes. */
uint16_t k2r_slot_crc16(const char *buf, size_t len);

/* The hash slot (0 to 16383) of the key of `len` bytes, which may hold any
 * bytes, NUL included, honouring a non-empty hash tag. */
unsigned k2r_slot_of(const char *key, size_t len);

/* One node of a slot map: where to connect. */
typedef struct k2r_slot_node_s {
    char *host; /* owned by the map, NUL-terminated, 1 to K2R_SLOT_HOST_MAX bytes */
    int port;   /* 1 to 65535 */
} k2r_slot_node_t;

/*
 * Which node serves each slot. Zero-initialise it (or k2r_slotmap_init) and
 * release it with k2r_slotmap_free; it owns its nodes and their hosts. Read
 * it through the functions below: owner[] holds a node's index plus one, 0
 * for a slot no node serves, so that a zeroed map is an empty one.
 */
typedef struct k2r_slotmap_s {
    k2r_slot_node_t *nodes;
    size_t nnodes, cap_nodes;
    uint16_t owner[K2R_SLOTS];
} k2r_slotmap_t;

/* Makes `map` an empty map; it holds nothing yet to release. */
void k2r_slotmap_init(k2r_slotmap_t *map);

/* Forgets every node and assignment, keeping the node table's memory for
 * the next fill (a map fetched again after a MOVED). */
void k2r_slotmap_clear(k2r_slotmap_t *map);

/* Releases what the map holds and leaves it empty, usable again; NULL does
 * nothing. */
void k2r_slotmap_free(k2r_slotmap_t *map);

/*
 * The index of the node `host` (NUL-terminated, compared byte for byte)
 * `port`, added when the map does not have it yet (the host is copied).
 * Returns it, or -1 when the host is NULL, empty, longer than
 * K2R_SLOT_HOST_MAX or holds a control character or a space, the port is
 * not within 1-65535, the map has 65535 nodes already, or memory runs out
 * (the map is then unchanged).
 */
int k2r_slotmap_node(k2r_slotmap_t *map, const char *host, int port);

/* Node `node` serves slots `first` to `last`, both included, whoever served
 * them before. Returns 0, or -1 (nothing assigned) when first > last, last
 * is not a slot, or there is no node `node`. */
int k2r_slotmap_assign(k2r_slotmap_t *map, unsigned first, unsigned last, int node);

/* The index of the node serving `slot`, or -1 when none does or `slot` is
 * not a slot. */
int k2r_slotmap_owner(const k2r_slotmap_t *map, unsigned slot);

/* 1 when a node serves every slot, else 0. */
int k2r_slotmap_complete(const k2r_slotmap_t *map);

/* The number of nodes, and node `node` (borrowed, valid until the map is
 * cleared, freed, or gets a node), or NULL when there is no such node. */
size_t k2r_slotmap_nnodes(const k2r_slotmap_t *map);
const k2r_slot_node_t *k2r_slotmap_get(const k2r_slotmap_t *map, int node);

/*
 * One range of a CLUSTER SLOTS reply, as read from the reply: slots `first`
 * to `last` are served by the master at endpoint `host` (`hostlen` bytes,
 * not NUL-terminated) and `port`. A NULL or empty endpoint means the node
 * the command was sent to, whose host is `default_host` (NUL-terminated;
 * NULL when the caller has none). The endpoint "?" means that the node was
 * told to announce a host name it does not have: it is unknown, not
 * necessarily the node asked, so it is an error.
 *
 * Checks 0 <= first <= last <= 16383, 1 <= port <= 65535 and a host of 1 to
 * K2R_SLOT_HOST_MAX bytes, none a control character (NUL included) or a
 * space, then assigns the range to the node (k2r_slotmap_node: found or
 * added). Returns the node's index, or -1 with a sentence naming the range
 * in `errstr` (errstr_size bytes, NUL-terminated when errstr_size > 0) when
 * a check fails or memory runs out; the map is then unchanged.
 */
int k2r_slotmap_add_range(k2r_slotmap_t *map, long long first, long long last, const char *host,
                          size_t hostlen, long long port, const char *default_host, char *errstr,
                          size_t errstr_size);

/* What an error reply asks of the client. */
typedef enum k2r_redirect_kind_e {
    K2R_REDIRECT_NONE = 0, /* not a redirection, or a malformed one */
    K2R_REDIRECT_MOVED,    /* the slot lives elsewhere now: fetch the map again */
    K2R_REDIRECT_ASK       /* this command only: send ASKING, then the command, there */
} k2r_redirect_kind_t;

/* A redirection: the slot and the endpoint to try. */
typedef struct k2r_redirect_s {
    k2r_redirect_kind_t kind;
    unsigned slot;                    /* 0 to 16383 */
    char host[K2R_SLOT_HOST_MAX + 1]; /* NUL-terminated; see k2r_slot_redirect_parse */
    int port;                         /* 1 to 65535 */
} k2r_redirect_t;

/*
 * Reads the error reply `line` (`len` bytes) "MOVED <slot> <host>:<port>" or
 * "ASK <slot> <host>:<port>", with or without RESP's leading '-' and
 * trailing CRLF. The last ':' ends the host, so an IPv6 address stays whole
 * ("::1:6381" is host "::1", port 6381); a host holds no control character
 * or space, and at most K2R_SLOT_HOST_MAX bytes. It is copied as it stands:
 * empty when the node's endpoint is unknown to Redis (the client keeps the
 * host it sent the command to), "?" when the node has no host name to
 * announce. Returns out->kind: MOVED or ASK with every field set, or NONE
 * (out zeroed) for anything else, malformed redirections included.
 */
k2r_redirect_kind_t k2r_slot_redirect_parse(const char *line, size_t len, k2r_redirect_t *out);

/* ------------------------------------------------- keys beside a channel */

/*
 * The keys a notification's script writes (dedupe marks, a rule's history
 * stream; redis.c sends the script), named here so that the bridge, the
 * producer shim and the docs agree. Each appends the key to `out` and
 * returns 0, or -1 when out of memory.
 *
 * On a Redis Cluster the script's keys must share the channel's slot (a
 * sharded channel counts as a key): they carry the channel's hash tag, or
 * the channel itself as the tag when it has none and no braces ("{" or "}")
 * at all. A channel with braces but no tag ("a}b") cannot be wrapped; its
 * keys are named as off a cluster, and a cluster refuses the script
 * (CROSSSLOT), which the caller counts as a refusal.
 */

/* The stream of a channel's history: prefix + channel; on a cluster,
 * prefix + "{" + channel + "}" when the channel has no tag and no braces. */
int k2r_history_key(k2r_buf_t *out, const char *prefix, const char *channel, size_t len,
                    int cluster);

/* A dedupe mark. Off a cluster, one bitmap per topic, partition, notification
 * index (when not 0) and block of K2R_DEDUPE_BLOCK offsets: `prefix
 * topic:partition:block[:index]`, whose bit (offset mod K2R_DEDUPE_BLOCK)
 * marks the record (k2r_dedupe_bit). On a cluster one key per notification,
 * in its channel's slot: `prefix{tag}:topic:partition:offset:index`. */
#define K2R_DEDUPE_BLOCK 65536
int k2r_dedupe_key(k2r_buf_t *out, const char *prefix, const char *topic, int32_t partition,
                   int64_t offset, uint32_t index, const char *channel, size_t len, int cluster);
static inline uint32_t k2r_dedupe_bit(int64_t offset) {
    return (uint32_t)(offset % K2R_DEDUPE_BLOCK);
}

#endif
