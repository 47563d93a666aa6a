/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_batch.c - the batch (batch.c): which offset each partition may store
 * as records are published, refused, given up, held and stopped; what a
 * revoke or a loss removes; a pipeline cut short; the in-flight limits.
 * Handles are plain integers whose release is counted; no Kafka, no Redis.
 */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <string.h>

#include "k2r/batch.h"
#include "suites.h"

/* Handles are small integers; released[h] counts the releases of h. */
static int released[64];
static size_t nreleased;

static void release(void *handle) {
    released[(intptr_t)handle]++;
    nreleased++;
}

static k2r_batch_t *fresh(void) {
    memset(released, 0, sizeof(released));
    nreleased = 0;
    return k2r_batch_new(release);
}

/* Adds a record with handle h and `nitems` pending items; returns its index. */
static size_t add(k2r_batch_t *batch, const char *topic, int32_t partition, int64_t offset,
                  size_t bytes, intptr_t h, size_t nitems) {
    size_t rec = SIZE_MAX;

    CU_ASSERT_FATAL(k2r_batch_add(batch, topic, partition, offset, 1000, bytes, (void *)h, &rec) ==
                    0);
    for (size_t i = 0; i < nitems; i++)
        CU_ASSERT_FATAL(k2r_batch_add_item(batch, rec) != NULL);
    return rec;
}

/* Sets the state of every item of record `rec`. */
static void set_rec(k2r_batch_t *batch, size_t rec, k2r_batch_state_t state) {
    for (size_t i = 0; i < k2r_batch_nitems(batch); i++)
        if (k2r_batch_item(batch, i)->rec == rec)
            k2r_batch_item(batch, i)->state = state;
}

/* The index of topic[partition] in the batch; SIZE_MAX when absent. */
static size_t part_of(const k2r_batch_t *batch, const char *topic, int32_t partition) {
    for (size_t p = 0; p < k2r_batch_nparts(batch); p++)
        if (k2r_batch_part_partition(batch, p) == partition &&
            strcmp(k2r_batch_part_topic(batch, p), topic) == 0)
            return p;
    return SIZE_MAX;
}

static void test_offsets_in_order(void) {
    k2r_batch_t *batch = fresh();
    size_t r10 = add(batch, "t", 0, 10, 1, 1, 1);
    size_t r11 = add(batch, "t", 0, 11, 1, 2, 2);
    size_t r12 = add(batch, "t", 0, 12, 1, 3, 1);
    size_t p = part_of(batch, "t", 0);

    CU_ASSERT_EQUAL(k2r_batch_nparts(batch), 1);
    CU_ASSERT_EQUAL(k2r_batch_nitems(batch), 4);
    CU_ASSERT_EQUAL(k2r_batch_pending(batch), 4);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 10);
    /* Later records done first store nothing past the first unfinished one. */
    set_rec(batch, r11, K2R_BATCH_PUBLISHED);
    set_rec(batch, r12, K2R_BATCH_DROPPED);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 10);
    CU_ASSERT_FALSE(k2r_batch_part_done(batch, p));
    CU_ASSERT_FALSE(k2r_batch_done(batch));
    set_rec(batch, r10, K2R_BATCH_PUBLISHED);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 13);
    CU_ASSERT_TRUE(k2r_batch_part_done(batch, p));
    CU_ASSERT_TRUE(k2r_batch_done(batch));
    /* A record that mapped to nothing (skipped) is done at once. */
    add(batch, "t", 0, 13, 1, 4, 0);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 14);
    /* One item of a record still pending holds the record. */
    size_t r14 = add(batch, "t", 0, 14, 1, 5, 2);
    k2r_batch_item(batch, k2r_batch_nitems(batch) - 2)->state = K2R_BATCH_PUBLISHED;
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 14);
    set_rec(batch, r14, K2R_BATCH_PUBLISHED);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 15);
    CU_ASSERT_EQUAL(nreleased, 0);
    k2r_batch_destroy(batch);
    CU_ASSERT_EQUAL(nreleased, 5);
    for (int h = 1; h <= 5; h++)
        CU_ASSERT_EQUAL(released[h], 1);
}

/* Three partitions, interleaved: a[0] 5 6, a[1] 7 8, b[0] 1. */
static k2r_batch_t *three_parts(size_t *rec) {
    k2r_batch_t *batch = fresh();

    rec[0] = add(batch, "a", 0, 5, 10, 1, 1);
    rec[1] = add(batch, "a", 1, 7, 20, 2, 1);
    rec[2] = add(batch, "a", 0, 6, 30, 3, 2);
    rec[3] = add(batch, "b", 0, 1, 40, 4, 1);
    rec[4] = add(batch, "a", 1, 8, 50, 5, 1);
    return batch;
}

static void test_revoke_mid_batch(void) {
    size_t rec[5], pa0, pa1, pb0, r;
    uint64_t seq[5];
    int gone[3] = {0, 0, 0};
    k2r_batch_t *batch = three_parts(rec);

    for (int i = 0; i < 5; i++)
        seq[i] = k2r_batch_rec(batch, rec[i])->seq;
    pa0 = part_of(batch, "a", 0);
    pa1 = part_of(batch, "a", 1);
    pb0 = part_of(batch, "b", 0);
    /* a[1] finished, b[0] not, a[0] half. */
    set_rec(batch, rec[1], K2R_BATCH_PUBLISHED);
    set_rec(batch, rec[4], K2R_BATCH_PUBLISHED);
    set_rec(batch, rec[0], K2R_BATCH_PUBLISHED);
    /* What the revoke stores first: a[1] is done, b[0] is not. */
    CU_ASSERT_TRUE(k2r_batch_part_done(batch, pa1));
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, pa1), 9);
    CU_ASSERT_FALSE(k2r_batch_part_done(batch, pb0));
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, pb0), 1);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, pa0), 6);
    gone[pa1] = 1;
    gone[pb0] = 1;
    CU_ASSERT_EQUAL(k2r_batch_remove_parts(batch, gone), 1); /* b[0]'s item */
    CU_ASSERT_EQUAL(nreleased, 3);
    CU_ASSERT_EQUAL(released[2], 1);
    CU_ASSERT_EQUAL(released[4], 1);
    CU_ASSERT_EQUAL(released[5], 1);
    /* a[0] is left as it was, at new indices. */
    CU_ASSERT_EQUAL(k2r_batch_nparts(batch), 1);
    CU_ASSERT_EQUAL(part_of(batch, "a", 0), 0);
    CU_ASSERT_EQUAL(k2r_batch_nrecs(batch), 2);
    CU_ASSERT_EQUAL(k2r_batch_nitems(batch), 3);
    CU_ASSERT_EQUAL(k2r_batch_bytes(batch), 40);
    CU_ASSERT_EQUAL(k2r_batch_pending(batch), 2);
    CU_ASSERT_EQUAL(k2r_batch_item(batch, 0)->rec, 0);
    CU_ASSERT_EQUAL(k2r_batch_item(batch, 0)->state, K2R_BATCH_PUBLISHED);
    CU_ASSERT_EQUAL(k2r_batch_item(batch, 1)->rec, 1);
    CU_ASSERT_EQUAL(k2r_batch_item(batch, 2)->rec, 1);
    CU_ASSERT_EQUAL(k2r_batch_rec(batch, 1)->offset, 6);
    CU_ASSERT_EQUAL(k2r_batch_rec(batch, 1)->part, 0);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, 0), 6);
    CU_ASSERT_EQUAL(k2r_batch_find(batch, seq[2], &r), 0);
    CU_ASSERT_EQUAL(r, 1);
    CU_ASSERT_EQUAL(k2r_batch_find(batch, seq[3], &r), -1);
    CU_ASSERT_EQUAL(k2r_batch_find(batch, seq[4], &r), -1);
    set_rec(batch, 1, K2R_BATCH_PUBLISHED);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, 0), 7);
    CU_ASSERT_TRUE(k2r_batch_done(batch));
    k2r_batch_destroy(batch);
    CU_ASSERT_EQUAL(nreleased, 5);
}

static void test_loss(void) {
    size_t rec[5];
    int gone[3] = {0, 0, 0};
    k2r_batch_t *batch = three_parts(rec);
    size_t pa0 = part_of(batch, "a", 0);

    /* A loss stores nothing: the records go, pending or not, held or not. */
    set_rec(batch, rec[0], K2R_BATCH_PUBLISHED);
    k2r_batch_hold(batch, rec[2]);
    gone[pa0] = 1;
    CU_ASSERT_EQUAL(k2r_batch_remove_parts(batch, gone), 2); /* 6's two items */
    CU_ASSERT_EQUAL(nreleased, 2);
    CU_ASSERT_EQUAL(released[1], 1);
    CU_ASSERT_EQUAL(released[3], 1);
    CU_ASSERT_EQUAL(k2r_batch_nparts(batch), 2);
    CU_ASSERT_EQUAL(k2r_batch_nrecs(batch), 3);
    CU_ASSERT_EQUAL(k2r_batch_nitems(batch), 3);
    CU_ASSERT_EQUAL(k2r_batch_bytes(batch), 110);
    CU_ASSERT_EQUAL(k2r_batch_pending(batch), 3);
    CU_ASSERT_EQUAL(part_of(batch, "a", 0), SIZE_MAX);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, part_of(batch, "a", 1)), 7);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, part_of(batch, "b", 0)), 1);
    /* The hold went with its record: nothing else is held. */
    for (size_t i = 0; i < k2r_batch_nitems(batch); i++)
        k2r_batch_item(batch, i)->state = K2R_BATCH_PUBLISHED;
    CU_ASSERT_TRUE(k2r_batch_done(batch));
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, part_of(batch, "a", 1)), 9);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, part_of(batch, "b", 0)), 2);
    /* Losing everything leaves an empty batch. */
    gone[0] = gone[1] = 1;
    CU_ASSERT_EQUAL(k2r_batch_remove_parts(batch, gone), 0);
    CU_ASSERT_EQUAL(k2r_batch_nparts(batch), 0);
    CU_ASSERT_EQUAL(k2r_batch_nrecs(batch), 0);
    CU_ASSERT_EQUAL(k2r_batch_bytes(batch), 0);
    CU_ASSERT_EQUAL(nreleased, 5);
    k2r_batch_destroy(batch);
    CU_ASSERT_EQUAL(nreleased, 5);
}

static void test_refusals(void) {
    k2r_batch_t *batch = fresh();
    size_t r20 = add(batch, "t", 0, 20, 1, 1, 2); /* two rules */
    size_t r21 = add(batch, "t", 0, 21, 1, 2, 1);
    size_t r22 = add(batch, "t", 0, 22, 1, 3, 1);
    size_t p = 0;

    /* One of 20's notifications refused (skip): the other still pending. */
    k2r_batch_item(batch, 0)->state = K2R_BATCH_REFUSED;
    set_rec(batch, r21, K2R_BATCH_PUBLISHED);
    set_rec(batch, r22, K2R_BATCH_PUBLISHED);
    CU_ASSERT_EQUAL(k2r_batch_pending(batch), 1);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 20);
    k2r_batch_item(batch, 1)->state = K2R_BATCH_PUBLISHED;
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 23);
    /* 21 refused with on_error: dead-letter: held until acknowledged. */
    k2r_batch_hold(batch, r21);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 21);
    CU_ASSERT_FALSE(k2r_batch_done(batch));
    k2r_batch_unhold(batch, r21);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 23);
    /* 22 refused with on_error: stop: stored at its own offset, though the
     * records are done; an earlier stop wins over a later one. */
    CU_ASSERT_EQUAL(k2r_batch_stop(batch, r22), 22);
    CU_ASSERT_TRUE(k2r_batch_part_stopped(batch, p));
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 22);
    CU_ASSERT_EQUAL(k2r_batch_stop(batch, r20), 20);
    CU_ASSERT_EQUAL(k2r_batch_stop(batch, r21), 20);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p), 20);
    CU_ASSERT_TRUE(k2r_batch_done(batch));
    /* A stop never lets an unfinished earlier record be passed. */
    k2r_batch_clear(batch);
    CU_ASSERT_EQUAL(nreleased, 3);
    r20 = add(batch, "t", 0, 30, 1, 4, 1);
    r21 = add(batch, "t", 0, 31, 1, 5, 0);
    CU_ASSERT_FALSE(k2r_batch_part_stopped(batch, 0));
    CU_ASSERT_EQUAL(k2r_batch_stop(batch, r21), 31);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, 0), 30);
    set_rec(batch, r20, K2R_BATCH_PUBLISHED);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, 0), 31);
    k2r_batch_destroy(batch);
    CU_ASSERT_EQUAL(nreleased, 5);
}

static void test_pipeline_cut(void) {
    k2r_batch_t *batch = fresh();
    size_t n = 6, k = 4;

    /* Six records of two partitions, one notification each: u[0] 100..102,
     * u[1] 200..202 alternating; the connection fails after 4 replies. */
    for (size_t i = 0; i < n; i++)
        add(batch, "u", (int32_t)(i % 2), (i % 2 ? 200 : 100) + (int64_t)(i / 2), 1,
            (intptr_t)i + 1, 1);
    for (size_t i = 0; i < k; i++)
        k2r_batch_item(batch, i)->state = K2R_BATCH_PUBLISHED;
    CU_ASSERT_EQUAL(k2r_batch_pending(batch), 2);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, part_of(batch, "u", 0)), 102);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, part_of(batch, "u", 1)), 202);
    CU_ASSERT_FALSE(k2r_batch_done(batch));
    /* The rest goes again after a reconnect, in order. */
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(k2r_batch_item(batch, i)->state,
                        i < k ? K2R_BATCH_PUBLISHED : K2R_BATCH_PENDING);
    k2r_batch_item(batch, 4)->state = K2R_BATCH_PUBLISHED;
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, part_of(batch, "u", 0)), 103);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, part_of(batch, "u", 1)), 202);
    k2r_batch_item(batch, 5)->state = K2R_BATCH_PUBLISHED;
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, part_of(batch, "u", 1)), 203);
    CU_ASSERT_TRUE(k2r_batch_done(batch));
    k2r_batch_destroy(batch);
    CU_ASSERT_EQUAL(nreleased, 6);
}

static void test_holds(void) {
    k2r_batch_t *batch = fresh();
    size_t r0 = add(batch, "h", 0, 40, 1, 1, 0);
    size_t r1 = add(batch, "h", 1, 50, 1, 2, 1);
    size_t r2 = add(batch, "h", 0, 41, 1, 3, 1);
    size_t p0 = part_of(batch, "h", 0), p1 = part_of(batch, "h", 1);

    /* 40 dead-lettered (twice: mapping and a refusal), not acknowledged. */
    k2r_batch_hold(batch, r0);
    k2r_batch_hold(batch, r0);
    set_rec(batch, r1, K2R_BATCH_PUBLISHED);
    set_rec(batch, r2, K2R_BATCH_PUBLISHED);
    CU_ASSERT_EQUAL(k2r_batch_pending(batch), 0);
    CU_ASSERT_FALSE(k2r_batch_done(batch));
    CU_ASSERT_FALSE(k2r_batch_part_done(batch, p0));
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p0), 40);
    CU_ASSERT_TRUE(k2r_batch_part_done(batch, p1));
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p1), 51);
    k2r_batch_unhold(batch, r0);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p0), 40);
    k2r_batch_unhold(batch, r0);
    CU_ASSERT_EQUAL(k2r_batch_storable(batch, p0), 42);
    CU_ASSERT_TRUE(k2r_batch_done(batch));
    k2r_batch_destroy(batch);
}

static void test_limits(void) {
    k2r_batch_t *batch = fresh();
    int gone[2] = {0, 0};

    CU_ASSERT_TRUE(k2r_batch_has_room(batch, 3, 100));
    CU_ASSERT_FALSE(k2r_batch_has_room(batch, 0, 100));
    add(batch, "l", 0, 1, 60, 1, 1);
    CU_ASSERT_TRUE(k2r_batch_has_room(batch, 3, 100));
    CU_ASSERT_FALSE(k2r_batch_has_room(batch, 1, 100));
    add(batch, "l", 1, 1, 39, 2, 1);
    CU_ASSERT_EQUAL(k2r_batch_bytes(batch), 99);
    CU_ASSERT_TRUE(k2r_batch_has_room(batch, 3, 100));
    /* The record that crosses the byte limit is taken; then no more. */
    add(batch, "l", 1, 2, 2, 3, 1);
    CU_ASSERT_EQUAL(k2r_batch_nrecs(batch), 3);
    CU_ASSERT_EQUAL(k2r_batch_bytes(batch), 101);
    CU_ASSERT_FALSE(k2r_batch_has_room(batch, 10, 100));
    CU_ASSERT_FALSE(k2r_batch_has_room(batch, 3, 1000));
    /* What leaves the batch no longer counts. */
    gone[part_of(batch, "l", 0)] = 1;
    k2r_batch_remove_parts(batch, gone);
    CU_ASSERT_EQUAL(k2r_batch_nrecs(batch), 2);
    CU_ASSERT_EQUAL(k2r_batch_bytes(batch), 41);
    CU_ASSERT_TRUE(k2r_batch_has_room(batch, 3, 100));
    k2r_batch_clear(batch);
    CU_ASSERT_EQUAL(k2r_batch_nrecs(batch), 0);
    CU_ASSERT_EQUAL(k2r_batch_nitems(batch), 0);
    CU_ASSERT_EQUAL(k2r_batch_bytes(batch), 0);
    CU_ASSERT_EQUAL(nreleased, 3);
    /* Numbers are not reused after a clear. */
    CU_ASSERT_EQUAL(k2r_batch_rec(batch, add(batch, "l", 0, 9, 1, 4, 0))->seq, 3);
    k2r_batch_destroy(batch);
    k2r_batch_destroy(NULL);
    CU_ASSERT_EQUAL(nreleased, 4);
}

int test_batch_register(void) {
    CU_pSuite suite = CU_add_suite("batch", NULL, NULL);

    if (!suite ||
        !CU_add_test(suite, "offsets stored only past finished records", test_offsets_in_order) ||
        !CU_add_test(suite, "a revoke mid-batch", test_revoke_mid_batch) ||
        !CU_add_test(suite, "a loss", test_loss) ||
        !CU_add_test(suite, "refusals: skip, dead-letter, stop", test_refusals) ||
        !CU_add_test(suite, "a pipeline cut after k of n replies", test_pipeline_cut) ||
        !CU_add_test(suite, "held records block their partition only", test_holds) ||
        !CU_add_test(suite, "in-flight limits", test_limits))
        return CU_get_error();
    return 0;
}
