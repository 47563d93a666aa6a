/* SPDX-License-Identifier: Apache-2.0 */
/*
 * deadletter.c - the dead letters of the batch and their delivery state.
 *
 * One array in the order the letters were added, so that ids increase along
 * it and a delivery report finds its letter by binary search. A letter
 * refers to its record by the record's seq, which outlives the record's
 * index when the batch removes partitions. Batches are bounded by
 * limits.max_inflight_records, which keeps the scans short.
 *
 * Not here: producing a letter, or what its reason means (see deadletter.h).
 */
#include "k2r/deadletter.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "k2r/buf.h"
#include "k2r/clock.h"

struct k2r_deadletter_s {
    k2r_batch_t *batch; /* borrowed */
    k2r_deadletter_conf_t conf;
    k2r_deadletter_entry_t *entries;
    size_t n, cap;
    uint64_t next_id;
    int held;           /* the batch is held for its letters */
    int backoff_ms;     /* the next delay before failed letters go again */
    int64_t retry_ms;   /* when failed letters may go again; 0: not scheduled */
    int64_t waiting_ms; /* when the batch began to wait for its letters only; 0: not */
};

k2r_deadletter_t *k2r_deadletter_new(k2r_batch_t *batch, const k2r_deadletter_conf_t *conf) {
    k2r_deadletter_t *dl;

    assert(batch && conf && conf->rand && conf->backoff_ms > 0);
    dl = calloc(1, sizeof(*dl));
    if (!dl)
        return NULL;
    dl->batch = batch;
    dl->conf = *conf;
    dl->backoff_ms = conf->backoff_ms;
    return dl;
}

void k2r_deadletter_destroy(k2r_deadletter_t *deadletter) {
    if (!deadletter)
        return;
    free(deadletter->entries);
    free(deadletter);
}

int k2r_deadletter_add(k2r_deadletter_t *deadletter, size_t rec, int reason, const char *rule,
                       const char *detail, size_t *entry) {
    k2r_deadletter_t *dl = deadletter;
    k2r_deadletter_entry_t *e;

    if (k2r_array_reserve(&dl->entries, &dl->cap, dl->n + 1, sizeof(*dl->entries), 64) != 0)
        return -1;
    e = &dl->entries[dl->n];
    e->seq = k2r_batch_rec(dl->batch, rec)->seq;
    e->id = ++dl->next_id;
    e->state = K2R_DEADLETTER_TO_SEND;
    e->stub = 0;
    e->attempts = 0;
    e->reason = reason;
    e->rule = rule;
    snprintf(e->detail, sizeof(e->detail), "%s", detail ? detail : "");
    k2r_batch_hold(dl->batch, rec);
    *entry = dl->n++;
    return 0;
}

const k2r_deadletter_entry_t *k2r_deadletter_entry(const k2r_deadletter_t *deadletter, size_t i) {
    assert(i < deadletter->n);
    return &deadletter->entries[i];
}

void k2r_deadletter_sent(k2r_deadletter_t *deadletter, size_t i) {
    assert(i < deadletter->n);
    deadletter->entries[i].state = K2R_DEADLETTER_IN_FLIGHT;
    deadletter->entries[i].attempts++;
}

/* Letter `e` failed: a letter too large as it is can never be delivered, and
 * retrying it would hold every partition for good, so it becomes a stub to
 * send at once; any other goes again after the backoff. */
static k2r_deadletter_next_t fail(k2r_deadletter_entry_t *e, int too_large) {
    if (too_large && !e->stub) {
        e->stub = 1;
        e->state = K2R_DEADLETTER_TO_SEND;
        return K2R_DEADLETTER_SEND_STUB;
    }
    e->state = K2R_DEADLETTER_FAILED;
    return K2R_DEADLETTER_RETRY;
}

k2r_deadletter_next_t k2r_deadletter_refused(k2r_deadletter_t *deadletter, size_t i,
                                             int too_large) {
    assert(i < deadletter->n);
    deadletter->entries[i].attempts++;
    return fail(&deadletter->entries[i], too_large);
}

k2r_deadletter_next_t k2r_deadletter_report(k2r_deadletter_t *deadletter, uint64_t id, int ok,
                                            int too_large, size_t *entry) {
    k2r_deadletter_t *dl = deadletter;
    size_t lo, rec;
    k2r_deadletter_entry_t *e;

    /* Ids increase along the array; one that is gone was removed with its
     * record (a revoke or a loss). */
    if (k2r_array_find_u64(dl->entries, dl->n, sizeof(*dl->entries),
                           offsetof(k2r_deadletter_entry_t, id), id, &lo) != 0 ||
        dl->entries[lo].state != K2R_DEADLETTER_IN_FLIGHT)
        return K2R_DEADLETTER_IGNORE;
    e = &dl->entries[lo];
    *entry = lo;
    if (!ok)
        return fail(e, too_large);
    e->state = K2R_DEADLETTER_ACKNOWLEDGED;
    if (k2r_batch_find(dl->batch, e->seq, &rec) == 0)
        k2r_batch_unhold(dl->batch, rec);
    return K2R_DEADLETTER_DONE;
}

int k2r_deadletter_hold(k2r_deadletter_t *deadletter, int64_t now_ms) {
    k2r_deadletter_t *dl = deadletter;
    int first = !dl->held;

    dl->held = 1;
    if (dl->retry_ms <= now_ms) {
        int ms = dl->backoff_ms;
        dl->retry_ms = now_ms + k2r_backoff_jitter(ms, dl->conf.rand(dl->conf.rand_opaque));
        dl->backoff_ms = k2r_backoff_next(ms, dl->conf.backoff_max_ms);
    }
    return first;
}

int k2r_deadletter_held(const k2r_deadletter_t *deadletter) {
    return deadletter->held;
}

int64_t k2r_deadletter_retry_ms(const k2r_deadletter_t *deadletter) {
    return deadletter->retry_ms;
}

size_t k2r_deadletter_next_due(const k2r_deadletter_t *deadletter, size_t from, int64_t now_ms) {
    if (now_ms < deadletter->retry_ms)
        return SIZE_MAX;
    for (size_t i = from; i < deadletter->n; i++)
        if (deadletter->entries[i].state == K2R_DEADLETTER_TO_SEND ||
            deadletter->entries[i].state == K2R_DEADLETTER_FAILED)
            return i;
    return SIZE_MAX;
}

int k2r_deadletter_waiting(k2r_deadletter_t *deadletter, int64_t now_ms) {
    k2r_deadletter_t *dl = deadletter;

    if (!dl->waiting_ms)
        dl->waiting_ms = now_ms;
    return !dl->held && now_ms - dl->waiting_ms >= dl->conf.hold_ms;
}

int k2r_deadletter_settled(const k2r_deadletter_t *deadletter) {
    return k2r_deadletter_unacknowledged(deadletter) == 0;
}

size_t k2r_deadletter_count(const k2r_deadletter_t *deadletter) {
    return deadletter->n;
}

size_t k2r_deadletter_unacknowledged(const k2r_deadletter_t *deadletter) {
    size_t n = 0;

    for (size_t i = 0; i < deadletter->n; i++)
        n += deadletter->entries[i].state != K2R_DEADLETTER_ACKNOWLEDGED;
    return n;
}

int k2r_deadletter_recover(k2r_deadletter_t *deadletter) {
    k2r_deadletter_t *dl = deadletter;

    if (!dl->held || !k2r_deadletter_settled(dl))
        return 0;
    dl->held = 0;
    dl->backoff_ms = dl->conf.backoff_ms;
    dl->retry_ms = 0;
    return 1;
}

int k2r_deadletter_release(k2r_deadletter_t *deadletter) {
    k2r_deadletter_t *dl = deadletter;
    int was = dl->held;

    dl->waiting_ms = 0;
    dl->held = 0;
    dl->backoff_ms = dl->conf.backoff_ms;
    dl->retry_ms = 0;
    return was;
}

void k2r_deadletter_clear(k2r_deadletter_t *deadletter) {
    deadletter->n = 0;
}

int k2r_deadletter_waits_on(const k2r_deadletter_t *deadletter, const int *gone) {
    const k2r_deadletter_t *dl = deadletter;

    for (size_t i = 0; i < dl->n; i++) {
        size_t rec;
        if (dl->entries[i].state != K2R_DEADLETTER_ACKNOWLEDGED &&
            k2r_batch_find(dl->batch, dl->entries[i].seq, &rec) == 0 &&
            gone[k2r_batch_rec(dl->batch, rec)->part])
            return 1;
    }
    return 0;
}

size_t k2r_deadletter_remove_gone(k2r_deadletter_t *deadletter) {
    k2r_deadletter_t *dl = deadletter;
    size_t kept = 0, acknowledged = 0;

    for (size_t i = 0; i < dl->n; i++) {
        size_t rec;
        if (k2r_batch_find(dl->batch, dl->entries[i].seq, &rec) != 0) {
            acknowledged += dl->entries[i].state == K2R_DEADLETTER_ACKNOWLEDGED;
            continue;
        }
        dl->entries[kept++] = dl->entries[i];
    }
    dl->n = kept;
    return acknowledged;
}
