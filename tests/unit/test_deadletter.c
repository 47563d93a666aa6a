/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_deadletter.c - the dead letters (deadletter.c): an acknowledgement
 * releases its record; a failure is retried after a backoff that doubles up
 * to its cap (exact times, with the jitter's random number fixed); letters
 * overdue hold the batch; a revoke or a loss removes its partitions'
 * letters; a letter too large becomes a stub. Time is a number passed in;
 * no Kafka, no sleeps.
 */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <string.h>

#include "k2r/batch.h"
#include "k2r/deadletter.h"
#include "suites.h"

#define HOLD_MS    5000
#define BACKOFF_MS 200
#define MAX_MS     1000

/* The jitter's random number: fixed by each test. */
static unsigned next_rand;

static unsigned fixed_rand(void *opaque) {
    (void)opaque;
    return next_rand;
}

static void release(void *handle) {
    (void)handle;
}

static k2r_batch_t *batch;

static k2r_deadletter_t *fresh(void) {
    k2r_deadletter_conf_t conf = {.hold_ms = HOLD_MS,
                                  .backoff_ms = BACKOFF_MS,
                                  .backoff_max_ms = MAX_MS,
                                  .rand = fixed_rand,
                                  .rand_opaque = NULL};

    next_rand = 0;
    k2r_batch_destroy(batch);
    batch = k2r_batch_new(release);
    CU_ASSERT_FATAL(batch != NULL);
    return k2r_deadletter_new(batch, &conf);
}

/* Adds a record of t[partition] at `offset` with no items; returns its seq. */
static uint64_t add_rec(int32_t partition, int64_t offset) {
    size_t rec = SIZE_MAX;

    CU_ASSERT_FATAL(k2r_batch_add(batch, "t", partition, offset, -1, 1, NULL, &rec) == 0);
    return k2r_batch_rec(batch, rec)->seq;
}

/* Dead-letters the record numbered `seq`; returns the letter's index. */
static size_t add_letter(k2r_deadletter_t *dl, uint64_t seq) {
    size_t rec = SIZE_MAX, i = SIZE_MAX;

    CU_ASSERT_FATAL(k2r_batch_find(batch, seq, &rec) == 0);
    CU_ASSERT_FATAL(k2r_deadletter_add(dl, rec, 3, "r1", "id: missing", &i) == 0);
    return i;
}

/* The offset partition `partition` of topic t may store. */
static int64_t storable(int32_t partition) {
    for (size_t p = 0; p < k2r_batch_nparts(batch); p++)
        if (k2r_batch_part_partition(batch, p) == partition)
            return k2r_batch_storable(batch, p);
    return -2;
}

static void test_acknowledged_releases_record(void) {
    k2r_deadletter_t *dl = fresh();
    uint64_t s0 = add_rec(0, 10);
    size_t i, j = SIZE_MAX;
    const k2r_deadletter_entry_t *e;

    add_rec(0, 11);
    i = add_letter(dl, s0);
    e = k2r_deadletter_entry(dl, i);
    CU_ASSERT_EQUAL(e->seq, s0);
    CU_ASSERT_EQUAL(e->id, 1);
    CU_ASSERT_EQUAL(e->state, K2R_DEADLETTER_TO_SEND);
    CU_ASSERT_EQUAL(e->reason, 3);
    CU_ASSERT_STRING_EQUAL(e->rule, "r1");
    CU_ASSERT_STRING_EQUAL(e->detail, "id: missing");
    CU_ASSERT_EQUAL(e->stub, 0);
    /* A new letter goes at once; its record is held until acknowledged. */
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 0), i);
    CU_ASSERT_EQUAL(storable(0), 10);
    CU_ASSERT_FALSE(k2r_batch_done(batch));
    k2r_deadletter_sent(dl, i);
    CU_ASSERT_EQUAL(e->state, K2R_DEADLETTER_IN_FLIGHT);
    CU_ASSERT_EQUAL(e->attempts, 1);
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 0), SIZE_MAX);
    CU_ASSERT_FALSE(k2r_deadletter_settled(dl));
    CU_ASSERT_EQUAL(k2r_deadletter_unacknowledged(dl), 1);
    /* A report for an id nobody has is ignored. */
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 7, 1, 0, &j), K2R_DEADLETTER_IGNORE);
    CU_ASSERT_EQUAL(j, SIZE_MAX);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 1, 1, 0, &j), K2R_DEADLETTER_DONE);
    CU_ASSERT_EQUAL(j, i);
    CU_ASSERT_EQUAL(e->state, K2R_DEADLETTER_ACKNOWLEDGED);
    CU_ASSERT_EQUAL(storable(0), 12);
    CU_ASSERT_TRUE(k2r_batch_done(batch));
    CU_ASSERT_TRUE(k2r_deadletter_settled(dl));
    CU_ASSERT_EQUAL(k2r_deadletter_count(dl), 1);
    CU_ASSERT_EQUAL(k2r_deadletter_unacknowledged(dl), 0);
    /* A second report for it changes nothing. */
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 1, 0, 0, &j), K2R_DEADLETTER_IGNORE);
    CU_ASSERT_EQUAL(e->state, K2R_DEADLETTER_ACKNOWLEDGED);
    k2r_deadletter_destroy(dl);
    k2r_deadletter_destroy(NULL);
}

static void test_settled_only_when_all_acknowledged(void) {
    k2r_deadletter_t *dl = fresh();
    size_t a, c, j;

    /* None is settled. */
    CU_ASSERT_TRUE(k2r_deadletter_settled(dl));
    a = add_letter(dl, add_rec(0, 1));
    c = add_letter(dl, add_rec(1, 1));
    k2r_deadletter_sent(dl, a);
    k2r_deadletter_sent(dl, c);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, c)->id, 2);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 2, 1, 0, &j), K2R_DEADLETTER_DONE);
    CU_ASSERT_EQUAL(j, c);
    CU_ASSERT_FALSE(k2r_deadletter_settled(dl));
    CU_ASSERT_EQUAL(storable(1), 2);
    CU_ASSERT_EQUAL(storable(0), 1);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 1, 1, 0, &j), K2R_DEADLETTER_DONE);
    CU_ASSERT_TRUE(k2r_deadletter_settled(dl));
    CU_ASSERT_EQUAL(storable(0), 2);
    k2r_deadletter_clear(dl);
    CU_ASSERT_EQUAL(k2r_deadletter_count(dl), 0);
    CU_ASSERT_TRUE(k2r_deadletter_settled(dl));
    k2r_deadletter_destroy(dl);
}

static void test_failed_retried_after_backoff(void) {
    k2r_deadletter_t *dl = fresh();
    size_t i = add_letter(dl, add_rec(0, 5)), j;

    k2r_deadletter_sent(dl, i);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 1, 0, 0, &j), K2R_DEADLETTER_RETRY);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, i)->state, K2R_DEADLETTER_FAILED);
    CU_ASSERT_FALSE(k2r_deadletter_held(dl));
    /* Held at 1000 with the random number 0: the jitter is half of 200. */
    CU_ASSERT_EQUAL(k2r_deadletter_hold(dl, 1000), 1);
    CU_ASSERT_TRUE(k2r_deadletter_held(dl));
    CU_ASSERT_EQUAL(k2r_deadletter_retry_ms(dl), 1100);
    /* A second hold before the retry is due changes nothing. */
    CU_ASSERT_EQUAL(k2r_deadletter_hold(dl, 1050), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_retry_ms(dl), 1100);
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 1099), SIZE_MAX);
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 1100), i);
    /* Refused at once: retried after 400 (random 0: 200 of it). */
    CU_ASSERT_EQUAL(k2r_deadletter_refused(dl, i, 0), K2R_DEADLETTER_RETRY);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, i)->attempts, 2);
    CU_ASSERT_EQUAL(k2r_deadletter_hold(dl, 1100), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_retry_ms(dl), 1300);
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 1299), SIZE_MAX);
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 1300), i);
    k2r_deadletter_sent(dl, i);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, i)->attempts, 3);
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 1300), SIZE_MAX);
    /* Acknowledged: the hold ends, the backoff starts again from 200. */
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 1, 1, 0, &j), K2R_DEADLETTER_DONE);
    CU_ASSERT_EQUAL(k2r_deadletter_recover(dl), 1);
    CU_ASSERT_FALSE(k2r_deadletter_held(dl));
    CU_ASSERT_EQUAL(k2r_deadletter_retry_ms(dl), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_recover(dl), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_hold(dl, 2000), 1);
    CU_ASSERT_EQUAL(k2r_deadletter_retry_ms(dl), 2100);
    k2r_deadletter_destroy(dl);
}

static void test_backoff_doubles_to_cap(void) {
    /* Random numbers at the top of each range: the jitter is the whole
     * delay. 200, 400, 800, then the cap 1000, and it stays there. */
    static const int64_t delay[] = {200, 400, 800, 1000, 1000};
    /* Random 0: half of each. */
    static const int64_t half[] = {100, 200, 400, 500, 500};
    k2r_deadletter_t *dl = fresh();
    int64_t now = 0;

    for (size_t k = 0; k < sizeof(delay) / sizeof(delay[0]); k++) {
        next_rand = (unsigned)(delay[k] / 2);
        k2r_deadletter_hold(dl, now);
        CU_ASSERT_EQUAL(k2r_deadletter_retry_ms(dl), now + delay[k]);
        now += delay[k];
    }
    CU_ASSERT_EQUAL(k2r_deadletter_release(dl), 1);
    CU_ASSERT_EQUAL(k2r_deadletter_release(dl), 0);
    now = 0;
    next_rand = 0;
    for (size_t k = 0; k < sizeof(half) / sizeof(half[0]); k++) {
        k2r_deadletter_hold(dl, now);
        CU_ASSERT_EQUAL(k2r_deadletter_retry_ms(dl), now + half[k]);
        now += half[k];
    }
    /* The random number is taken modulo the range: 101 of 0..100 is 0. */
    k2r_deadletter_release(dl);
    next_rand = 101;
    k2r_deadletter_hold(dl, 0);
    CU_ASSERT_EQUAL(k2r_deadletter_retry_ms(dl), 100);
    k2r_deadletter_destroy(dl);
}

static void test_overdue_holds(void) {
    k2r_deadletter_t *dl = fresh();
    size_t i = add_letter(dl, add_rec(0, 0)), j;

    k2r_deadletter_sent(dl, i);
    /* The wait starts at the first call, at 1000. */
    CU_ASSERT_EQUAL(k2r_deadletter_waiting(dl, 1000), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_waiting(dl, 1000 + HOLD_MS - 1), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_waiting(dl, 1000 + HOLD_MS), 1);
    CU_ASSERT_EQUAL(k2r_deadletter_hold(dl, 1000 + HOLD_MS), 1);
    /* Held: overdue no more. Nothing failed, so nothing is due. */
    CU_ASSERT_EQUAL(k2r_deadletter_waiting(dl, 1000 + HOLD_MS + 1), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 99999), SIZE_MAX);
    /* Not settled: no recovery. */
    CU_ASSERT_EQUAL(k2r_deadletter_recover(dl), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 1, 1, 0, &j), K2R_DEADLETTER_DONE);
    CU_ASSERT_EQUAL(k2r_deadletter_recover(dl), 1);
    /* Recovered, the wait goes on (the batch is not complete yet)... */
    CU_ASSERT_EQUAL(k2r_deadletter_waiting(dl, 1000 + HOLD_MS + 2), 1);
    /* ...until released: the next wait starts afresh. */
    CU_ASSERT_EQUAL(k2r_deadletter_release(dl), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_waiting(dl, 20000), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_waiting(dl, 20000 + HOLD_MS), 1);
    k2r_deadletter_destroy(dl);
}

static void test_revoke_removes_partition(void) {
    k2r_deadletter_t *dl = fresh();
    uint64_t s0 = add_rec(0, 10), s1 = add_rec(1, 20), s0b = add_rec(0, 11);
    size_t a = add_letter(dl, s0), c = add_letter(dl, s1), d = add_letter(dl, s0b), j;
    int gone[2] = {0, 0};

    k2r_deadletter_sent(dl, a);
    k2r_deadletter_sent(dl, c);
    k2r_deadletter_sent(dl, d);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 1, 1, 0, &j), K2R_DEADLETTER_DONE);
    /* Partition 0 is the batch's first. Its second letter is unacknowledged:
     * a revoke of it waits; one of partition 1 waits too. */
    gone[0] = 1;
    CU_ASSERT_TRUE(k2r_deadletter_waits_on(dl, gone));
    gone[0] = 0;
    gone[1] = 1;
    CU_ASSERT_TRUE(k2r_deadletter_waits_on(dl, gone));
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 3, 1, 0, &j), K2R_DEADLETTER_DONE);
    gone[0] = 1;
    gone[1] = 0;
    CU_ASSERT_FALSE(k2r_deadletter_waits_on(dl, gone));
    /* Partition 0 goes: its two letters (both acknowledged) go with it. */
    k2r_batch_remove_parts(batch, gone);
    CU_ASSERT_EQUAL(k2r_deadletter_remove_gone(dl), 2);
    CU_ASSERT_EQUAL(k2r_deadletter_count(dl), 1);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, 0)->seq, s1);
    CU_ASSERT_FALSE(k2r_deadletter_settled(dl));
    /* A late report for a removed letter is ignored; the kept one is found. */
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 3, 1, 0, &j), K2R_DEADLETTER_IGNORE);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 2, 1, 0, &j), K2R_DEADLETTER_DONE);
    CU_ASSERT_EQUAL(j, 0);
    CU_ASSERT_TRUE(k2r_deadletter_settled(dl));
    k2r_deadletter_destroy(dl);
}

static void test_loss_removes_unacknowledged(void) {
    k2r_deadletter_t *dl = fresh();
    uint64_t s0 = add_rec(0, 10), s1 = add_rec(1, 20);
    size_t a = add_letter(dl, s0), c = add_letter(dl, s1), j;
    int gone[2] = {0, 1};

    k2r_deadletter_sent(dl, a);
    CU_ASSERT_EQUAL(k2r_deadletter_refused(dl, c, 0), K2R_DEADLETTER_RETRY);
    CU_ASSERT_EQUAL(k2r_deadletter_hold(dl, 0), 1);
    /* Partition 1 is lost with its failed letter: none of it was delivered. */
    k2r_batch_remove_parts(batch, gone);
    CU_ASSERT_EQUAL(k2r_deadletter_remove_gone(dl), 0);
    CU_ASSERT_EQUAL(k2r_deadletter_count(dl), 1);
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 100000), SIZE_MAX);
    /* Still held while partition 0's letter is in flight. */
    CU_ASSERT_TRUE(k2r_deadletter_held(dl));
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 1, 1, 0, &j), K2R_DEADLETTER_DONE);
    CU_ASSERT_TRUE(k2r_deadletter_settled(dl));
    CU_ASSERT_EQUAL(k2r_deadletter_release(dl), 1);
    CU_ASSERT_EQUAL(storable(0), 11);
    k2r_deadletter_destroy(dl);
}

static void test_too_large_becomes_stub(void) {
    k2r_deadletter_t *dl = fresh();
    size_t i = add_letter(dl, add_rec(0, 0)), c = add_letter(dl, add_rec(0, 1)), j;

    /* Refused by the producer for its size: a stub, to send at once. */
    CU_ASSERT_EQUAL(k2r_deadletter_refused(dl, i, 1), K2R_DEADLETTER_SEND_STUB);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, i)->stub, 1);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, i)->state, K2R_DEADLETTER_TO_SEND);
    CU_ASSERT_EQUAL(k2r_deadletter_next_due(dl, 0, 0), i);
    /* A stub refused for its size too is retried like any failure. */
    CU_ASSERT_EQUAL(k2r_deadletter_refused(dl, i, 1), K2R_DEADLETTER_RETRY);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, i)->state, K2R_DEADLETTER_FAILED);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, i)->attempts, 2);
    /* Reported too large by the broker: the same. */
    k2r_deadletter_sent(dl, c);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 2, 0, 1, &j), K2R_DEADLETTER_SEND_STUB);
    CU_ASSERT_EQUAL(j, c);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, c)->stub, 1);
    k2r_deadletter_sent(dl, c);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 2, 0, 1, &j), K2R_DEADLETTER_RETRY);
    k2r_deadletter_sent(dl, c);
    CU_ASSERT_EQUAL(k2r_deadletter_report(dl, 2, 1, 0, &j), K2R_DEADLETTER_DONE);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, c)->stub, 1);
    CU_ASSERT_EQUAL(k2r_deadletter_entry(dl, c)->attempts, 3);
    k2r_deadletter_destroy(dl);
}

static void test_detail_truncated(void) {
    k2r_deadletter_t *dl = fresh();
    char big[400];
    size_t rec = SIZE_MAX, i;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CU_ASSERT_FATAL(k2r_batch_add(batch, "t", 0, 0, -1, 1, NULL, &rec) == 0);
    CU_ASSERT_FATAL(k2r_deadletter_add(dl, rec, 0, NULL, big, &i) == 0);
    CU_ASSERT_EQUAL(strlen(k2r_deadletter_entry(dl, i)->detail), K2R_DEADLETTER_DETAIL_SIZE - 1);
    CU_ASSERT_PTR_NULL(k2r_deadletter_entry(dl, i)->rule);
    k2r_deadletter_destroy(dl);
}

/* The last test's batch. */
static int cleanup(void) {
    k2r_batch_destroy(batch);
    batch = NULL;
    return 0;
}

int test_deadletter_register(void) {
    CU_pSuite s = CU_add_suite("deadletter", NULL, cleanup);

    if (!s ||
        !CU_add_test(s, "acknowledged releases its record", test_acknowledged_releases_record) ||
        !CU_add_test(s, "settled only when all are acknowledged",
                     test_settled_only_when_all_acknowledged) ||
        !CU_add_test(s, "failed: retried after the backoff", test_failed_retried_after_backoff) ||
        !CU_add_test(s, "backoff doubles up to its cap", test_backoff_doubles_to_cap) ||
        !CU_add_test(s, "overdue: the batch is held", test_overdue_holds) ||
        !CU_add_test(s, "revoke removes its partition's letters", test_revoke_removes_partition) ||
        !CU_add_test(s, "loss removes unacknowledged letters", test_loss_removes_unacknowledged) ||
        !CU_add_test(s, "too large: a stub", test_too_large_becomes_stub) ||
        !CU_add_test(s, "detail truncated to fit", test_detail_truncated))
        return CU_get_error();
    return 0;
}
