/* SPDX-License-Identifier: Apache-2.0 */
/*
 * deadletter.h - the dead letters of the batch: which record each belongs to,
 * where its delivery stands, when a failed one is sent again, and when the
 * batch must wait or hold for them.
 *
 * A pure module: no librdkafka, no sockets. The loop adds a dead letter for a
 * record of the batch (k2r_deadletter_add, which holds the record), produces
 * it itself, and tells this module what happened: handed to the producer
 * (k2r_deadletter_sent), refused at once (k2r_deadletter_refused), or its
 * delivery report (k2r_deadletter_report). An acknowledged letter releases
 * its record's hold; a failed one is sent again after a backoff that doubles
 * up to a cap, with jitter; a letter refused as too large comes back as a
 * stub to send at once. A batch whose letters are not all acknowledged
 * within hold_ms, or one of whose letters failed, is held (the loop pauses
 * Kafka and serves the group) until they are. When the group takes
 * partitions away, the letters of the records the batch removed go with them.
 *
 * Time comes in as now_ms (a monotonic clock, any origin) and randomness
 * from the caller's function, so that both are the caller's to control.
 *
 * Not here: producing (kafka.c), logging and pausing Kafka (bridge_deadletter.c), the
 * records themselves (batch.c).
 */
#ifndef K2R_DEADLETTER_H
#define K2R_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#include "k2r/batch.h"

typedef struct k2r_deadletter_s k2r_deadletter_t;

/* The longest detail kept with a letter, with its terminating NUL. */
#define K2R_DEADLETTER_DETAIL_SIZE 200

/* Where one dead letter stands. */
typedef enum k2r_deadletter_state_e {
    K2R_DEADLETTER_TO_SEND = 0, /* to be handed to the producer now */
    K2R_DEADLETTER_IN_FLIGHT,   /* handed to the producer; no report yet */
    K2R_DEADLETTER_ACKNOWLEDGED,
    K2R_DEADLETTER_FAILED /* refused or reported failed: sent again after the backoff */
} k2r_deadletter_state_t;

/* A dead letter, as the loop reads it to produce it. */
typedef struct k2r_deadletter_entry_s {
    uint64_t seq; /* its record's k2r_batch_rec_t.seq */
    uint64_t id;  /* for the delivery report: increasing, never reused */
    k2r_deadletter_state_t state;
    int stub;          /* too large as it was: send it without key, value and headers */
    unsigned attempts; /* times handed to the producer or refused by it */
    int reason;        /* the caller's (why the record is dead-lettered), carried unread */
    const char *rule;  /* borrowed from the caller, carried unread; may be NULL */
    char detail[K2R_DEADLETTER_DETAIL_SIZE];
} k2r_deadletter_entry_t;

/* What the loop does after a failure or a delivery report. */
typedef enum k2r_deadletter_next_e {
    K2R_DEADLETTER_IGNORE = 0, /* a report for no letter in flight (its record left) */
    K2R_DEADLETTER_DONE,       /* acknowledged: its record's hold is released */
    K2R_DEADLETTER_SEND_STUB,  /* too large: now a stub, to be sent again at once */
    K2R_DEADLETTER_RETRY       /* failed: hold the batch, it goes again after the backoff */
} k2r_deadletter_next_t;

/* A random number for the jitter, from the caller's `opaque` state. */
typedef unsigned (*k2r_deadletter_rand_fn)(void *opaque);

typedef struct k2r_deadletter_conf_s {
    int hold_ms;        /* the batch is held when its letters wait longer than this */
    int backoff_ms;     /* the first delay before failed letters are sent again */
    int backoff_max_ms; /* the cap the delay doubles up to */
    k2r_deadletter_rand_fn rand;
    void *rand_opaque;
} k2r_deadletter_conf_t;

/*
 * Returns a new, empty set of dead letters for `batch` (borrowed: it must
 * outlive the set; letters hold and release its records), or NULL when out
 * of memory. `conf` is copied.
 */
k2r_deadletter_t *k2r_deadletter_new(k2r_batch_t *batch, const k2r_deadletter_conf_t *conf);

/* Frees the set; NULL does nothing. The batch is left as it is. */
void k2r_deadletter_destroy(k2r_deadletter_t *deadletter);

/*
 * Adds a dead letter for record `rec` of the batch, in state TO_SEND, and
 * holds the record until the letter is acknowledged. `rule` is borrowed
 * (valid while the letter is kept); `detail` is copied (truncated to fit).
 * Stores the letter's index in *entry. Returns 0, or -1 when out of memory
 * (nothing changed).
 */
int k2r_deadletter_add(k2r_deadletter_t *deadletter, size_t rec, int reason, const char *rule,
                       const char *detail, size_t *entry);

/* Letter `i` (borrowed, valid until the next add, remove or clear). */
const k2r_deadletter_entry_t *k2r_deadletter_entry(const k2r_deadletter_t *deadletter, size_t i);

/* Letter `i` was handed to the producer: IN_FLIGHT until its report. */
void k2r_deadletter_sent(k2r_deadletter_t *deadletter, size_t i);

/*
 * The producer refused letter `i` at once (`too_large`: for its size).
 * Returns SEND_STUB when it is now a stub to send at once (it was too large
 * and not a stub yet), else RETRY (FAILED).
 */
k2r_deadletter_next_t k2r_deadletter_refused(k2r_deadletter_t *deadletter, size_t i, int too_large);

/*
 * The delivery report of letter `id`: acknowledged (`ok`), or failed
 * (`too_large`: for its size). Returns IGNORE when no letter with that id is
 * in flight; DONE when acknowledged (its record's hold released); SEND_STUB
 * or RETRY as k2r_deadletter_refused. Stores the letter's index in *entry
 * unless IGNORE.
 */
k2r_deadletter_next_t k2r_deadletter_report(k2r_deadletter_t *deadletter, uint64_t id, int ok,
                                            int too_large, size_t *entry);

/*
 * Holds the batch at now_ms because a letter failed or is overdue: until
 * released or recovered, k2r_deadletter_held() is 1. When no retry is
 * scheduled after now_ms, schedules one after the current backoff (jittered
 * between half and all of it) and doubles the backoff, up to its cap.
 * Returns 1 when the batch was not held before.
 */
int k2r_deadletter_hold(k2r_deadletter_t *deadletter, int64_t now_ms);

/* 1 while the batch is held for its dead letters. */
int k2r_deadletter_held(const k2r_deadletter_t *deadletter);

/* When failed letters may be sent again (0: no retry scheduled). */
int64_t k2r_deadletter_retry_ms(const k2r_deadletter_t *deadletter);

/*
 * The first letter from index `from` on to send at now_ms: TO_SEND or
 * FAILED, once the retry time has come. Returns its index, or SIZE_MAX.
 */
size_t k2r_deadletter_next_due(const k2r_deadletter_t *deadletter, size_t from, int64_t now_ms);

/*
 * The batch waits for its dead letters only (every publish has its reply)
 * at now_ms: the first call starts the wait. Returns 1 when it has waited
 * hold_ms or longer and is not held yet: the caller holds it.
 */
int k2r_deadletter_waiting(k2r_deadletter_t *deadletter, int64_t now_ms);

/* 1 when every letter is acknowledged (none is). */
int k2r_deadletter_settled(const k2r_deadletter_t *deadletter);

/* The numbers of letters, and of those not acknowledged. */
size_t k2r_deadletter_count(const k2r_deadletter_t *deadletter);
size_t k2r_deadletter_unacknowledged(const k2r_deadletter_t *deadletter);

/*
 * When the batch is held and every letter is acknowledged: ends the hold and
 * resets the backoff (the wait goes on until the batch completes). Returns
 * 1 when it did.
 */
int k2r_deadletter_recover(k2r_deadletter_t *deadletter);

/* Ends the hold and the wait, and resets the backoff. Returns 1 when the
 * batch was held. */
int k2r_deadletter_release(k2r_deadletter_t *deadletter);

/* Removes every letter, leaving the hold as it is (the caller empties the
 * batch too, and releases). */
void k2r_deadletter_clear(k2r_deadletter_t *deadletter);

/*
 * 1 when a letter not yet acknowledged belongs to a record of a partition
 * marked in `gone` (k2r_batch_nparts() entries): a revoke must wait for it.
 */
int k2r_deadletter_waits_on(const k2r_deadletter_t *deadletter, const int *gone);

/*
 * Removes the letters whose records are no longer in the batch (after
 * k2r_batch_remove_parts); the rest keep their order. A report for a removed
 * letter is ignored. Returns how many of the removed were acknowledged.
 */
size_t k2r_deadletter_remove_gone(k2r_deadletter_t *deadletter);

#endif
