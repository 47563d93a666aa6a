/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge_deadletter.c - the loop's dead letters: a record a rule's
 * on_error: dead-letter sends away is produced to kafka.dead_letter_topic as
 * soon as it is taken and kept in the batch until the topic acknowledged it;
 * a failed or overdue one holds the batch (Kafka paused, the group served)
 * and is sent again with backoff. Their bookkeeping (which record each
 * belongs to, its state, the backoff, the hold) is deadletter.c's; here they
 * are produced, their delivery reports fed back, and a hold carried out.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/batch.h"
#include "k2r/clock.h"
#include "k2r/deadletter.h"
#include "k2r/json.h"
#include "k2r/kafka.h"
#include "k2r/log.h"
#include "k2r/metrics.h"
#include "k2r/redis.h"

#include "bridge_int.h"

/* ------------------------------------------------------- dead letters */

/* The jitter's random numbers, from the bridge's one random state. */
unsigned bridge_rand(void *opaque) {
    k2r_bridge_t *b = opaque;

    return (unsigned)rand_r(&b->rand_state);
}

/* A dead letter failed or is overdue: hold the batch, pause Kafka, and send
 * the failed ones again after a backoff (deadletter.c schedules it). `why`
 * is logged. */
static void dlq_hold(k2r_bridge_t *b, const char *why) {
    uint64_t suppressed;

    if (k2r_deadletter_hold(b->dlq, k2r_now_ms())) {
        k2r_log_warn("dead-letter: %s: %s; holding the batch (%zu dead letter(s)), Kafka paused, "
                     "retrying with backoff up to %d ms",
                     b->cfg->kafka.dead_letter_topic ? b->cfg->kafka.dead_letter_topic : "-", why,
                     k2r_deadletter_count(b->dlq), DEAD_LETTER_BACKOFF_MAX_MS);
    } else if (k2r_log_ratelimit(&b->dlq_rl, &suppressed)) {
        k2r_log_warn("dead-letter: still failing: %s (%llu failures since the last line)", why,
                     (unsigned long long)suppressed + 1);
    }
    k2r_kafka_pause(b->kafka, 1);
}

/* Dead letter `i` was too large for its topic and goes as a stub now
 * (coordinates, reason, size): the loud line says so. */
static void log_shrunk(const k2r_bridge_t *b, size_t i) {
    const char *rule = k2r_deadletter_entry(b->dlq, i)->rule;

    k2r_log_error("dead-letter: record (rule %s) is too large for the dead-letter topic; sending "
                  "it without its key, value and headers: k2r.source.topic, .partition and "
                  ".offset say where to read it",
                  rule ? rule : "-");
}

/* Produces dead letter `i` as it stands (whole or a stub). */
static rd_kafka_resp_err_t dlq_produce(k2r_bridge_t *b, size_t i, char *errstr,
                                       size_t errstr_size) {
    const k2r_deadletter_entry_t *d = k2r_deadletter_entry(b->dlq, i);
    size_t rec = 0;
    int found = k2r_batch_find(b->batch, d->seq, &rec) == 0;

    /* Dead letters of records that left the batch are removed with them. */
    assert(found);
    (void)found;
    return k2r_kafka_dead_letter(b->kafka, k2r_batch_rec(b->batch, rec)->handle,
                                 k2r_skip_name((k2r_skip_t)d->reason), d->detail, d->rule, d->stub,
                                 d->id, errstr, errstr_size);
}

/* Hands dead letter `i` to the producer; one refused as too large goes again
 * as a stub. Returns 0, or -1 (FAILED, the reason in errstr). */
static int dlq_send(k2r_bridge_t *b, size_t i, char *errstr, size_t errstr_size) {
    rd_kafka_resp_err_t err = dlq_produce(b, i, errstr, errstr_size);

    if (err && k2r_deadletter_refused(b->dlq, i, err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) ==
                   K2R_DEADLETTER_SEND_STUB) {
        log_shrunk(b, i);
        err = dlq_produce(b, i, errstr, errstr_size);
        if (err)
            k2r_deadletter_refused(b->dlq, i, err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    }
    if (err) {
        b->stats.dead_letter_failures++;
        return -1;
    }
    k2r_deadletter_sent(b->dlq, i);
    return 0;
}

/* Adds record `rec` of the batch to its dead letters, holds the record until
 * the topic acknowledges it, and sends it. Returns 0, or -1 when out of
 * memory. */
int bridge_dead_letter(k2r_bridge_t *b, size_t rec, k2r_skip_t skip, const char *detail,
                       const char *rule) {
    char errstr[256];
    size_t i;

    if (k2r_deadletter_add(b->dlq, rec, (int)skip, rule, detail, &i) != 0)
        return -1;
    if (dlq_send(b, i, errstr, sizeof(errstr)) != 0)
        dlq_hold(b, errstr);
    return 0;
}

/* The outcome of one dead letter (from inside k2r_kafka_dead_letter_poll). */
void bridge_on_delivery(void *opaque, uint64_t id, rd_kafka_resp_err_t err) {
    k2r_bridge_t *b = opaque;
    size_t i = 0;

    switch (
        k2r_deadletter_report(b->dlq, id, !err, err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, &i)) {
    case K2R_DEADLETTER_IGNORE: /* its record left the batch: revoked */
    case K2R_DEADLETTER_DONE:
        return;
    case K2R_DEADLETTER_SEND_STUB: {
        /* The broker's limit, not the producer's: send the stub at once. */
        char errstr[256];
        b->stats.dead_letter_failures++;
        log_shrunk(b, i);
        if (dlq_send(b, i, errstr, sizeof(errstr)) == 0)
            return;
        break;
    }
    case K2R_DEADLETTER_RETRY:
        b->stats.dead_letter_failures++;
        break;
    }
    dlq_hold(b, rd_kafka_err2str(err));
}

/* Every dead letter is settled (or none is left, after a rebalance): whatever
 * held the batch for them is over, and Kafka may resume. */
void bridge_dlq_release(k2r_bridge_t *b) {
    if (k2r_deadletter_release(b->dlq))
        k2r_log_info("dead-letter: no dead letter is held any more");
}

/* Sends the failed dead letters again once their backoff is over. */
void bridge_dlq_resend(k2r_bridge_t *b) {
    char errstr[256];
    int64_t now = k2r_now_ms();
    int failed = 0;

    for (size_t i = 0; (i = k2r_deadletter_next_due(b->dlq, i, now)) != SIZE_MAX; i++)
        if (dlq_send(b, i, errstr, sizeof(errstr)) != 0)
            failed = 1;
    if (failed)
        dlq_hold(b, errstr);
}

/*
 * One step of waiting for the batch's dead letters (every publish already has
 * its reply): sends failed ones again once their backoff is over, holds the
 * batch when acknowledgements are overdue, serves delivery reports for up to
 * 100 ms. While held, the group is served too: a record that comes is taken
 * into the batch, or dropped when `draining` (it is not ours to take any
 * more). Returns 0, or -1 when out of memory.
 */
int bridge_dlq_wait(k2r_bridge_t *b, int draining) {
    int64_t now = k2r_now_ms();
    int64_t wait;

    bridge_dlq_resend(b);
    if (k2r_deadletter_waiting(b->dlq, now)) {
        char why[64];
        snprintf(why, sizeof(why), "not acknowledged after %d ms", DEAD_LETTER_HOLD_MS);
        dlq_hold(b, why);
    }
    if (k2r_deadletter_held(b->dlq) && bridge_serve(b, 0, draining) != 0)
        return -1;
    /* Up to 100 ms (a report ends the wait early), or until a resend is due. */
    wait = k2r_deadletter_retry_ms(b->dlq) - now;
    k2r_kafka_dead_letter_poll(b->kafka, wait > 0 && wait < 100 ? (int)wait : 100);
    if (k2r_deadletter_recover(b->dlq))
        k2r_log_info("dead-letter: %s acknowledged again; %zu held dead letter(s) delivered",
                     b->cfg->kafka.dead_letter_topic ? b->cfg->kafka.dead_letter_topic : "-",
                     k2r_deadletter_count(b->dlq));
    return 0;
}
