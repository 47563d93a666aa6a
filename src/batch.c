/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batch.c - the records in flight, their notifications, and the offset each
 * partition may store.
 *
 * Three arrays in taking order: partitions, records, items. Records refer to
 * their partition by index and items to their record by index; removing
 * partitions compacts all three and rewrites those indices. Whether a
 * record is done is found by looking at its items and holds, not kept in a
 * counter, so that the caller may set an item's state directly. Batches are
 * bounded by limits.max_inflight_records, which keeps these scans short.
 *
 * Not here: anything that knows what a handle is, what an item says, or how
 * it is published (see batch.h).
 */
#include "k2r/batch.h"
#include "k2r/buf.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct part_s {
    char *topic;
    int32_t partition;
    int stopped;
    int64_t stop_offset; /* when stopped: the earliest stopping record's offset */
    size_t remap;        /* its index after k2r_batch_remove_parts; SIZE_MAX: gone */
} part_t;

struct k2r_batch_s {
    k2r_batch_release_fn release;
    part_t *parts;
    size_t nparts, cap_parts;
    k2r_batch_rec_t *recs;
    size_t nrecs, cap_recs;
    k2r_batch_item_t *items;
    size_t nitems, cap_items;
    size_t bytes; /* sum of recs[].bytes */
    uint64_t next_seq;
};

k2r_batch_t *k2r_batch_new(k2r_batch_release_fn release) {
    k2r_batch_t *batch = calloc(1, sizeof(*batch));

    assert(release);
    if (batch)
        batch->release = release;
    return batch;
}

void k2r_batch_clear(k2r_batch_t *batch) {
    for (size_t i = 0; i < batch->nparts; i++)
        free(batch->parts[i].topic);
    for (size_t i = 0; i < batch->nrecs; i++)
        batch->release(batch->recs[i].handle);
    batch->nparts = 0;
    batch->nrecs = 0;
    batch->nitems = 0;
    batch->bytes = 0;
}

void k2r_batch_destroy(k2r_batch_t *batch) {
    if (!batch)
        return;
    k2r_batch_clear(batch);
    free(batch->parts);
    free(batch->recs);
    free(batch->items);
    free(batch);
}

/* The index of the partition, added when new; SIZE_MAX when out of memory. */
static size_t part_index(k2r_batch_t *batch, const char *topic, int32_t partition) {
    part_t *p;

    for (size_t i = 0; i < batch->nparts; i++)
        if (batch->parts[i].partition == partition && strcmp(batch->parts[i].topic, topic) == 0)
            return i;
    if (k2r_array_reserve(&batch->parts, &batch->cap_parts, batch->nparts + 1,
                          sizeof(*batch->parts), 16) != 0)
        return SIZE_MAX;
    p = &batch->parts[batch->nparts];
    p->topic = strdup(topic);
    if (!p->topic)
        return SIZE_MAX;
    p->partition = partition;
    p->stopped = 0;
    p->stop_offset = -1;
    return batch->nparts++;
}

int k2r_batch_add(k2r_batch_t *batch, const char *topic, int32_t partition, int64_t offset,
                  int64_t timestamp, size_t bytes, void *handle, size_t *rec) {
    size_t part = part_index(batch, topic, partition);

    if (part == SIZE_MAX || k2r_array_reserve(&batch->recs, &batch->cap_recs, batch->nrecs + 1,
                                              sizeof(*batch->recs), 256) != 0) {
        batch->release(handle);
        return -1;
    }
    batch->recs[batch->nrecs] =
        (k2r_batch_rec_t){handle, batch->next_seq++, part, offset, timestamp, bytes, 0, 0};
    batch->bytes += bytes;
    *rec = batch->nrecs++;
    return 0;
}

k2r_batch_item_t *k2r_batch_add_item(k2r_batch_t *batch, size_t rec) {
    k2r_batch_item_t *item;

    assert(rec < batch->nrecs);
    assert(!batch->nitems || batch->items[batch->nitems - 1].rec <= rec);
    if (k2r_array_reserve(&batch->items, &batch->cap_items, batch->nitems + 1,
                          sizeof(*batch->items), 1024) != 0)
        return NULL;
    item = &batch->items[batch->nitems++];
    memset(item, 0, sizeof(*item));
    item->rec = rec;
    item->state = K2R_BATCH_PENDING;
    return item;
}

size_t k2r_batch_nrecs(const k2r_batch_t *batch) {
    return batch->nrecs;
}

size_t k2r_batch_nitems(const k2r_batch_t *batch) {
    return batch->nitems;
}

size_t k2r_batch_nparts(const k2r_batch_t *batch) {
    return batch->nparts;
}

size_t k2r_batch_pending(const k2r_batch_t *batch) {
    size_t n = 0;

    for (size_t i = 0; i < batch->nitems; i++)
        n += batch->items[i].state == K2R_BATCH_PENDING;
    return n;
}

size_t k2r_batch_bytes(const k2r_batch_t *batch) {
    return batch->bytes;
}

int k2r_batch_has_room(const k2r_batch_t *batch, size_t max_records, size_t max_bytes) {
    return batch->nrecs < max_records && batch->bytes < max_bytes;
}

k2r_batch_rec_t *k2r_batch_rec(k2r_batch_t *batch, size_t i) {
    assert(i < batch->nrecs);
    return &batch->recs[i];
}

k2r_batch_item_t *k2r_batch_item(k2r_batch_t *batch, size_t i) {
    assert(i < batch->nitems);
    return &batch->items[i];
}

int k2r_batch_find(const k2r_batch_t *batch, uint64_t seq, size_t *rec) {
    /* Numbers increase along the array; removal keeps the order. */
    return k2r_array_find_u64(batch->recs, batch->nrecs, sizeof(*batch->recs),
                              offsetof(k2r_batch_rec_t, seq), seq, rec);
}

void k2r_batch_hold(k2r_batch_t *batch, size_t rec) {
    assert(rec < batch->nrecs);
    batch->recs[rec].held++;
}

void k2r_batch_unhold(k2r_batch_t *batch, size_t rec) {
    assert(rec < batch->nrecs && batch->recs[rec].held > 0);
    batch->recs[rec].held--;
}

int64_t k2r_batch_stop(k2r_batch_t *batch, size_t rec) {
    part_t *p;

    assert(rec < batch->nrecs);
    p = &batch->parts[batch->recs[rec].part];
    if (!p->stopped || batch->recs[rec].offset < p->stop_offset)
        p->stop_offset = batch->recs[rec].offset;
    p->stopped = 1;
    return p->stop_offset;
}

const char *k2r_batch_part_topic(const k2r_batch_t *batch, size_t part) {
    assert(part < batch->nparts);
    return batch->parts[part].topic;
}

int32_t k2r_batch_part_partition(const k2r_batch_t *batch, size_t part) {
    assert(part < batch->nparts);
    return batch->parts[part].partition;
}

int k2r_batch_part_stopped(const k2r_batch_t *batch, size_t part) {
    assert(part < batch->nparts);
    return batch->parts[part].stopped;
}

int k2r_batch_part_done(const k2r_batch_t *batch, size_t part) {
    assert(part < batch->nparts);
    for (size_t i = 0; i < batch->nitems; i++)
        if (batch->items[i].state == K2R_BATCH_PENDING &&
            batch->recs[batch->items[i].rec].part == part)
            return 0;
    for (size_t r = 0; r < batch->nrecs; r++)
        if (batch->recs[r].held && batch->recs[r].part == part)
            return 0;
    return 1;
}

int64_t k2r_batch_storable(const k2r_batch_t *batch, size_t part) {
    const part_t *p;
    int64_t next = -1;
    size_t i = 0;

    assert(part < batch->nparts);
    p = &batch->parts[part];
    /* Items come in record order: one walk over both finds each record's. */
    for (size_t r = 0; r < batch->nrecs; r++) {
        int pending = 0;

        for (; i < batch->nitems && batch->items[i].rec <= r; i++)
            pending |= batch->items[i].rec == r && batch->items[i].state == K2R_BATCH_PENDING;
        if (batch->recs[r].part != part)
            continue;
        if (pending || batch->recs[r].held) {
            next = batch->recs[r].offset;
            break;
        }
        next = batch->recs[r].offset + 1;
    }
    if (p->stopped && (next < 0 || p->stop_offset < next))
        next = p->stop_offset;
    return next;
}

int k2r_batch_done(const k2r_batch_t *batch) {
    for (size_t i = 0; i < batch->nitems; i++)
        if (batch->items[i].state == K2R_BATCH_PENDING)
            return 0;
    for (size_t r = 0; r < batch->nrecs; r++)
        if (batch->recs[r].held)
            return 0;
    return 1;
}

size_t k2r_batch_remove_parts(k2r_batch_t *batch, const int *gone) {
    size_t keep = 0, kept_recs = 0, kept_items = 0, unpublished = 0, r = 0;

    /* Parts are compacted last: until then records still use old indices. */
    for (size_t i = 0; i < batch->nparts; i++)
        batch->parts[i].remap = gone[i] ? SIZE_MAX : keep++;
    /* Items come in record order: walking both at once finds how many
     * records before an item's are kept, which is its record's new index. */
    for (size_t i = 0; i < batch->nitems; i++) {
        k2r_batch_item_t *item = &batch->items[i];
        for (; r < item->rec; r++)
            kept_recs += batch->parts[batch->recs[r].part].remap != SIZE_MAX;
        if (batch->parts[batch->recs[item->rec].part].remap == SIZE_MAX) {
            unpublished += item->state == K2R_BATCH_PENDING;
            continue;
        }
        batch->items[kept_items] = *item;
        batch->items[kept_items++].rec = kept_recs;
    }
    kept_recs = 0;
    batch->bytes = 0;
    for (size_t i = 0; i < batch->nrecs; i++) {
        size_t p = batch->parts[batch->recs[i].part].remap;
        if (p == SIZE_MAX) {
            batch->release(batch->recs[i].handle);
            continue;
        }
        batch->recs[kept_recs] = batch->recs[i];
        batch->recs[kept_recs].part = p;
        batch->bytes += batch->recs[i].bytes;
        kept_recs++;
    }
    keep = 0;
    for (size_t i = 0; i < batch->nparts; i++) {
        if (batch->parts[i].remap == SIZE_MAX)
            free(batch->parts[i].topic);
        else
            batch->parts[keep++] = batch->parts[i];
    }
    batch->nparts = keep;
    batch->nrecs = kept_recs;
    batch->nitems = kept_items;
    return unpublished;
}
