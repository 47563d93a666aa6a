/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batch.h - the batch: the records in flight, their notifications, and which
 * offset each partition may store.
 *
 * A pure module: no librdkafka, no sockets, no Redis. The loop takes records
 * in (k2r_batch_add), hangs the notifications mapped from each record on it
 * (k2r_batch_add_item), marks their outcomes (an item's state), holds a record
 * while an acknowledgement is awaited (a dead letter: k2r_batch_hold), stops
 * a partition at a record (on_error: stop), and asks which offset a
 * partition may store: the offset of its first record that is not done, so an
 * offset never passes a record that is neither published, refused and
 * carried out, given up, nor acknowledged. When the group takes partitions
 * away, their part of the batch is removed (k2r_batch_remove_parts).
 *
 * A record is done when none of its items is pending and nothing holds it.
 * The batch counts what is in flight against limits.max_inflight_records and
 * limits.max_inflight_bytes (k2r_batch_has_room).
 *
 * Each record carries an opaque handle (the Kafka message, in the daemon)
 * that the batch never dereferences: it hands it to the `release` function
 * given to k2r_batch_new() when the record leaves the batch.
 *
 * Not here: what a record means (map.c), publishing (redis.c), the Kafka
 * message itself (kafka.c), the on_error policies and the dead-letter
 * delivery (bridge.c).
 */
#ifndef K2R_BATCH_H
#define K2R_BATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct k2r_batch_s k2r_batch_t;

/* Releases a record's handle when it leaves the batch. */
typedef void (*k2r_batch_release_fn)(void *handle);

/* What became of one notification. Every state but PENDING is done. */
typedef enum k2r_batch_state_e {
    K2R_BATCH_PENDING = 0, /* to be published (again) */
    K2R_BATCH_PUBLISHED,   /* Redis acknowledged it */
    K2R_BATCH_REFUSED,     /* Redis refused it, and its rule's on_error was carried out */
    K2R_BATCH_DROPPED      /* given up (too old, Redis unavailable); not sent */
} k2r_batch_state_t;

/* A record of the batch. The batch keeps `part`, `offset`, `bytes` and
 * `held`; `failed` is the caller's, zero when the record is added. */
typedef struct k2r_batch_rec_s {
    void *handle;      /* the caller's, owned by the batch until the record leaves */
    uint64_t seq;      /* increasing along the batch, never reused: finds it again */
    size_t part;       /* index of its partition (k2r_batch_part_*) */
    int64_t offset;    /* its offset in the partition */
    int64_t timestamp; /* ms since the epoch, -1 when unknown */
    size_t bytes;      /* what counts against max_inflight_bytes */
    unsigned held;     /* acknowledgements awaited (k2r_batch_hold) */
    int failed;        /* the caller's */
} k2r_batch_rec_t;

/* A notification of a record. The batch reads `rec` (which it keeps
 * current) and `state` (which the caller sets); the rest is the caller's,
 * carried along unread (zero when the item is added). */
typedef struct k2r_batch_item_s {
    size_t rec; /* index of its record */
    k2r_batch_state_t state;
    size_t channel_off, channel_len; /* where its bytes are in the caller's buffer */
    size_t message_off, message_len;
    const char *rule;   /* borrowed */
    size_t rstat;       /* the caller's per-rule counters */
    size_t tstat;       /* the caller's per-topic counters */
    int on_error;       /* the rule's policy */
    int64_t expires_ms; /* wall clock after which it is stale */
    long long receivers;
    uint32_t index;          /* its place among its record's notifications (dedupe) */
    uint32_t history_maxlen; /* its rule's history (k2r_publish_t); 0: none */
    int64_t history_ttl_ms;
} k2r_batch_item_t;

/* Returns a new, empty batch, or NULL when out of memory. `release` (not
 * NULL) is called with each record's handle when the record leaves. */
k2r_batch_t *k2r_batch_new(k2r_batch_release_fn release);

/* Releases every record's handle, then the batch; NULL does nothing. */
void k2r_batch_destroy(k2r_batch_t *batch);

/* Empties the batch, releasing every record's handle. */
void k2r_batch_clear(k2r_batch_t *batch);

/*
 * Takes a record of `topic` (copied) [partition] at `offset` into the batch,
 * with its handle (owned by the batch from here on, also on failure: it is
 * released then). Records of one partition must come in offset order.
 * Stores its index in *rec. Returns 0, or -1 when out of memory.
 */
int k2r_batch_add(k2r_batch_t *batch, const char *topic, int32_t partition, int64_t offset,
                  int64_t timestamp, size_t bytes, void *handle, size_t *rec);

/* Adds a pending notification of record `rec`; returns it (borrowed, valid
 * until the next k2r_batch_add_item, k2r_batch_remove_parts or clear), or
 * NULL when out of memory. Items of one record are added together, and
 * records' items in the records' order. */
k2r_batch_item_t *k2r_batch_add_item(k2r_batch_t *batch, size_t rec);

/* The counts: records, items, partitions, items pending, bytes in flight. */
size_t k2r_batch_nrecs(const k2r_batch_t *batch);
size_t k2r_batch_nitems(const k2r_batch_t *batch);
size_t k2r_batch_nparts(const k2r_batch_t *batch);
size_t k2r_batch_pending(const k2r_batch_t *batch);
size_t k2r_batch_bytes(const k2r_batch_t *batch);

/* 1 while the batch may take another record: fewer than max_records
 * records and fewer than max_bytes bytes in flight. */
int k2r_batch_has_room(const k2r_batch_t *batch, size_t max_records, size_t max_bytes);

/* Record and item `i` (borrowed, valid until the batch changes size). */
k2r_batch_rec_t *k2r_batch_rec(k2r_batch_t *batch, size_t i);
k2r_batch_item_t *k2r_batch_item(k2r_batch_t *batch, size_t i);

/* Finds the record numbered `seq`: 0 with its index in *rec, -1 when it is
 * no longer in the batch. */
int k2r_batch_find(const k2r_batch_t *batch, uint64_t seq, size_t *rec);

/* Record `rec` waits for one more (hold) or one fewer (unhold)
 * acknowledgement; while any is awaited it is not done. */
void k2r_batch_hold(k2r_batch_t *batch, size_t rec);
void k2r_batch_unhold(k2r_batch_t *batch, size_t rec);

/* The partition of record `rec` stops there: the offset it may store is at
 * most that record's own, so a restart reads it again. Returns that bound
 * (the earliest stopping record's offset). */
int64_t k2r_batch_stop(k2r_batch_t *batch, size_t rec);

/* Partition `part`: its topic (borrowed, valid while it is in the batch),
 * number, and whether a record stopped it. */
const char *k2r_batch_part_topic(const k2r_batch_t *batch, size_t part);
int32_t k2r_batch_part_partition(const k2r_batch_t *batch, size_t part);
int k2r_batch_part_stopped(const k2r_batch_t *batch, size_t part);

/* 1 when every record of partition `part` is done. */
int k2r_batch_part_done(const k2r_batch_t *batch, size_t part);

/*
 * The offset partition `part` may store (the next to read): that of its
 * first record that is not done, or one past its last record when all are
 * done, and never past the record that stopped it.
 */
int64_t k2r_batch_storable(const k2r_batch_t *batch, size_t part);

/* 1 when every record is done (an empty batch is). */
int k2r_batch_done(const k2r_batch_t *batch);

/*
 * Removes the partitions whose gone[part] is non-zero (gone has
 * k2r_batch_nparts() entries), with their records (handles released) and
 * items; the rest keeps its order, and indices change. Returns how many of
 * the removed items were still pending.
 */
size_t k2r_batch_remove_parts(k2r_batch_t *batch, const int *gone);

#endif
