/*
 * bridge.c - the main loop that joins the Kafka source, the rules and the
 * Redis sink.
 *
 * A batch is the unit of work: up to kafka.batch_size records taken from
 * Kafka, each mapped through the rules into zero or more PUBLISH commands,
 * all published pipelined on one connection, then, and only then, the next
 * offset of every partition in the batch is stored for commit. That gives
 * at-least-once delivery into Redis: a crash or a lost connection can repeat
 * notifications whose replies were not read, never skip one.
 *
 * While Redis is unreachable the batch stays in memory, every assigned
 * partition is paused (so memory stays bounded by one batch plus librdkafka's
 * prefetch), the consumer keeps polling so the group does not evict it, and
 * connection attempts back off exponentially (with jitter) up to a cap. When
 * Redis answers again the unpublished part of the batch goes out, in order,
 * and fetching resumes.
 *
 * The rules' `on_error` policies are carried out here too:
 *
 * - dead-letter: the record (key, value, headers, plus k2r.* headers saying
 *   why) is produced to kafka.dead_letter_topic as soon as it is taken, and
 *   kept in the batch until the topic acknowledged it. A batch is complete
 *   only when every publish has its reply and every dead letter its
 *   acknowledgement, so an offset never passes a record that is neither
 *   published nor dead-lettered. A dead letter that is not acknowledged in
 *   time (or fails) holds the batch like a Redis outage: Kafka is paused, the
 *   group is served, failed ones are sent again with backoff.
 * - stop: the record's partition stops at that record. Nothing of it is
 *   published, the partition is paused for good (the Kafka source keeps it
 *   paused when everything else resumes), later records of that partition
 *   are dropped unprocessed, and the offset stored for it is the record's own,
 *   so a restart, after the rules or the data were fixed, resumes there.
 *
 * Rules are reloaded on request (SIGHUP in main.c) between batches: the new
 * rules replace the old ones at once, and the consumer stays in the group.
 *
 * Not here: what a record means (rules.c), how Redis is spoken to (redis.c),
 * how Kafka is consumed and produced to (kafka.c).
 */
#include "k2r/bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/kafka.h"
#include "k2r/log.h"
#include "k2r/record.h"
#include "k2r/redis.h"

/* How long a SIGTERM waits for the batch in flight before giving up on it. */
#define DRAIN_TIMEOUT_MS 10000
/* How often a summary line is logged while something happens. */
#define STATS_INTERVAL_MS 30000
/* How long a batch waits for its dead letters before Kafka is paused. */
#define DEAD_LETTER_HOLD_MS 5000
/* Backoff between attempts to send failed dead letters again. */
#define DEAD_LETTER_BACKOFF_MS     200
#define DEAD_LETTER_BACKOFF_MAX_MS 10000

/* A partition touched by the current batch, with the offset to store. */
typedef struct bpart_s {
    char *topic;
    int32_t partition;
    int64_t next_offset;
} bpart_t;

/* Where an item's bytes are in the batch buffer, and which partition it is of. */
typedef struct item_ref_s {
    size_t part; /* index into parts */
    size_t channel_off;
    size_t message_off;
} item_ref_t;

typedef enum dlq_state_e {
    DLQ_UNSENT = 0, /* to be sent (again) */
    DLQ_QUEUED,     /* handed to the producer; no report yet */
    DLQ_DELIVERED   /* acknowledged by the dead-letter topic */
} dlq_state_t;

/* A dead-lettered record of the current batch. */
typedef struct dlq_s {
    rd_kafka_message_t *rkm; /* owned: the original, kept to be sent again on failure */
    size_t part;             /* index into parts */
    uint64_t id;             /* for the delivery report; increasing along the array */
    dlq_state_t state;
    k2r_skip_t skip;
    const char *rule; /* borrowed from the rules, which are only swapped between batches */
    char detail[sizeof(((k2r_mapping_t *)0)->detail)];
} dlq_t;

struct k2r_bridge_s {
    k2r_config_t *cfg;
    k2r_rules_t *rules;
    k2r_record_t *rec;
    k2r_kafka_t *kafka;
    k2r_redis_t *redis;

    /* The batch. Channel and message bytes live in `bytes`; items refer to
     * them by offset until just before publishing, since `bytes` may move. */
    k2r_buf_t bytes;
    k2r_publish_t *items;
    item_ref_t *refs; /* per item: its partition and where its bytes are */
    size_t nitems, cap_items;
    bpart_t *parts;
    size_t nparts, cap_parts;
    size_t nrecords;
    dlq_t *dlq; /* the batch's dead letters, in the order they were taken */
    size_t ndlq, cap_dlq;

    /* The headers of the record being mapped (reused for every record). */
    k2r_header_t *hdrs;
    size_t cap_hdrs;

    /* Redis reconnection. */
    int backoff_ms;
    int64_t next_connect_ms;
    int redis_down; /* an outage is in progress (for logging once) */
    unsigned int rand_state;

    /* Dead-letter delivery. */
    uint64_t dlq_next_id;
    int dlq_down;           /* dead letters are holding the batch: Kafka paused */
    int dlq_backoff_ms;     /* next delay before sending failed ones again */
    int64_t dlq_retry_ms;   /* when failed ones may be sent again */
    int64_t dlq_waiting_ms; /* when the batch began to wait for its dead letters only; 0: not */

    k2r_bridge_stats_t stats;
    k2r_bridge_stats_t stats_logged;
    int64_t stats_next_ms;
    k2r_ratelimit_t skip_rl, dead_rl, perr_rl, conn_rl, dlq_rl, drop_rl;
};

/* ---------------------------------------------------------------- batch */

static int part_index(k2r_bridge_t *b, const char *topic, int32_t partition, size_t *out) {
    for (size_t i = 0; i < b->nparts; i++) {
        if (b->parts[i].partition == partition && strcmp(b->parts[i].topic, topic) == 0) {
            *out = i;
            return 0;
        }
    }
    if (b->nparts == b->cap_parts) {
        size_t cap = b->cap_parts ? b->cap_parts * 2 : 16;
        bpart_t *parts = realloc(b->parts, cap * sizeof(*parts));
        if (!parts)
            return -1;
        b->parts = parts;
        b->cap_parts = cap;
    }
    b->parts[b->nparts].topic = strdup(topic);
    if (!b->parts[b->nparts].topic)
        return -1;
    b->parts[b->nparts].partition = partition;
    b->parts[b->nparts].next_offset = -1;
    *out = b->nparts++;
    return 0;
}

static int add_item(k2r_bridge_t *b, size_t part, size_t ch_off, size_t ch_len, size_t msg_off,
                    size_t msg_len) {
    if (b->nitems == b->cap_items) {
        size_t cap = b->cap_items ? b->cap_items * 2 : 1024;
        k2r_publish_t *items = realloc(b->items, cap * sizeof(*items));
        item_ref_t *refs;
        if (!items)
            return -1;
        b->items = items;
        refs = realloc(b->refs, cap * sizeof(*refs));
        if (!refs)
            return -1;
        b->refs = refs;
        b->cap_items = cap;
    }
    memset(&b->items[b->nitems], 0, offsetof(k2r_publish_t, error));
    b->items[b->nitems].error[0] = '\0';
    b->items[b->nitems].channel_len = ch_len;
    b->items[b->nitems].message_len = msg_len;
    b->refs[b->nitems] = (item_ref_t){part, ch_off, msg_off};
    b->nitems++;
    return 0;
}

/* A rate-limited line about one record that a rule failed on (`what` is
 * "skipped" or "dead-lettered"); suppressed ones go to debug level. */
static void log_failed(k2r_ratelimit_t *rl, const char *what, const k2r_msg_t *msg,
                       const k2r_mapping_t *m) {
    uint64_t suppressed;

    if (k2r_log_ratelimit(rl, &suppressed))
        k2r_log_warn("%s record %s[%d]@%lld (rule %s): %s: %s (%llu more %s since the last line)",
                     what, msg->topic, (int)msg->partition, (long long)msg->offset,
                     m->rule ? m->rule : "-", k2r_skip_name(m->skip), m->detail,
                     (unsigned long long)suppressed, what);
    else
        k2r_log_debug("%s record %s[%d]@%lld: %s: %s", what, msg->topic, (int)msg->partition,
                      (long long)msg->offset, k2r_skip_name(m->skip), m->detail);
}

/*
 * Points msg->headers at the record's headers, in b->hdrs (which grows only
 * when a record has more headers than any before). The names and values stay
 * borrowed from `rkm`. Returns 0, or -1 when out of memory.
 */
static int read_headers(k2r_bridge_t *b, const rd_kafka_message_t *rkm, k2r_msg_t *msg) {
    rd_kafka_headers_t *hdrs = NULL;
    size_t n;

    msg->headers = NULL;
    msg->nheaders = 0;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return 0; /* NOENT: the record has none */
    n = rd_kafka_header_cnt(hdrs);
    if (n > b->cap_hdrs) {
        size_t cap = b->cap_hdrs ? b->cap_hdrs : 8;
        k2r_header_t *h;
        while (cap < n)
            cap *= 2;
        h = realloc(b->hdrs, cap * sizeof(*h));
        if (!h)
            return -1;
        b->hdrs = h;
        b->cap_hdrs = cap;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const void *value;
        size_t size;

        if (rd_kafka_header_get_all(hdrs, i, &name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        b->hdrs[msg->nheaders].name = name;
        b->hdrs[msg->nheaders].value = value;
        b->hdrs[msg->nheaders].value_len = value ? size : 0;
        msg->nheaders++;
    }
    msg->headers = b->hdrs;
    return 0;
}

/* ------------------------------------------------------- dead letters */

/* A delay of about `ms`: half fixed, half random, so that the retries of
 * many bridges spread apart. */
static int jitter(k2r_bridge_t *b, int ms) {
    return ms / 2 + (int)(rand_r(&b->rand_state) % (unsigned)(ms / 2 + 1));
}

/* The delay after `ms`: doubled, capped at `max_ms`. */
static int backoff_next(int ms, int max_ms) {
    return ms > max_ms / 2 ? max_ms : ms * 2;
}

/* A dead letter failed or is overdue: hold the batch, pause Kafka, and send
 * the failed ones again after a backoff. `why` is logged. */
static void dlq_hold(k2r_bridge_t *b, const char *why) {
    uint64_t suppressed;
    int64_t now = k2r_now_ms();

    if (!b->dlq_down) {
        b->dlq_down = 1;
        k2r_log_warn("dead-letter: %s: %s; holding the batch (%zu dead letter(s)), Kafka paused, "
                     "retrying with backoff up to %d ms",
                     b->cfg->kafka.dead_letter_topic ? b->cfg->kafka.dead_letter_topic : "-", why,
                     b->ndlq, DEAD_LETTER_BACKOFF_MAX_MS);
    } else if (k2r_log_ratelimit(&b->dlq_rl, &suppressed)) {
        k2r_log_warn("dead-letter: still failing: %s (%llu failures since the last line)", why,
                     (unsigned long long)suppressed + 1);
    }
    if (b->dlq_retry_ms <= now) {
        int ms = b->dlq_backoff_ms;
        b->dlq_retry_ms = now + jitter(b, ms);
        b->dlq_backoff_ms = backoff_next(ms, DEAD_LETTER_BACKOFF_MAX_MS);
    }
    k2r_kafka_pause(b->kafka, 1);
}

/* Hands one dead letter to the producer. Returns 0, or -1 (left UNSENT, the
 * reason in errstr). */
static int dlq_send(k2r_bridge_t *b, dlq_t *d, char *errstr, size_t errstr_size) {
    if (k2r_kafka_dead_letter(b->kafka, d->rkm, k2r_skip_name(d->skip), d->detail, d->rule, d->id,
                              errstr, errstr_size) != 0) {
        d->state = DLQ_UNSENT;
        b->stats.dead_letter_failures++;
        return -1;
    }
    d->state = DLQ_QUEUED;
    return 0;
}

/* Adds the record to the batch's dead letters and sends it; takes `rkm`.
 * Returns 0, or -1 when out of memory. */
static int dead_letter(k2r_bridge_t *b, rd_kafka_message_t *rkm, const k2r_mapping_t *m,
                       size_t part) {
    char errstr[256];
    dlq_t *d;

    if (b->ndlq == b->cap_dlq) {
        size_t cap = b->cap_dlq ? b->cap_dlq * 2 : 64;
        dlq_t *dlq = realloc(b->dlq, cap * sizeof(*dlq));
        if (!dlq) {
            rd_kafka_message_destroy(rkm);
            return -1;
        }
        b->dlq = dlq;
        b->cap_dlq = cap;
    }
    d = &b->dlq[b->ndlq++];
    d->rkm = rkm; /* now owned by the batch */
    d->part = part;
    d->id = ++b->dlq_next_id;
    d->skip = m->skip;
    d->rule = m->rule;
    snprintf(d->detail, sizeof(d->detail), "%s", m->detail);
    if (dlq_send(b, d, errstr, sizeof(errstr)) != 0)
        dlq_hold(b, errstr);
    return 0;
}

/* The outcome of one dead letter (from inside k2r_kafka_dead_letter_poll). */
static void on_delivery(void *opaque, uint64_t id, rd_kafka_resp_err_t err) {
    k2r_bridge_t *b = opaque;
    size_t lo = 0, hi = b->ndlq;

    /* Ids increase along the array; one that is gone was revoked. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->dlq[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == b->ndlq || b->dlq[lo].id != id || b->dlq[lo].state != DLQ_QUEUED)
        return;
    if (!err) {
        b->dlq[lo].state = DLQ_DELIVERED;
        return;
    }
    b->dlq[lo].state = DLQ_UNSENT;
    b->stats.dead_letter_failures++;
    dlq_hold(b, rd_kafka_err2str(err));
}

/* 1 when every dead letter of the batch was acknowledged. */
static int dlq_settled(const k2r_bridge_t *b) {
    for (size_t i = 0; i < b->ndlq; i++)
        if (b->dlq[i].state != DLQ_DELIVERED)
            return 0;
    return 1;
}

/*
 * One step of waiting for the batch's dead letters (every publish already has
 * its reply): sends failed ones again once their backoff is over, holds the
 * batch when acknowledgements are overdue, serves delivery reports for up to
 * 100 ms. While held, the group is served too: a record that comes is taken
 * into the batch, or dropped when `draining` (it is not ours to take any
 * more). Returns 0, or -1 when out of memory.
 */
static int dlq_wait(k2r_bridge_t *b, int draining);

/* --------------------------------------------------------------- records */

/* The record stops its partition: log it loudly, pause the partition for
 * good, and store the record's own offset. Returns 0, or -1 when out of memory. */
static int stop_partition(k2r_bridge_t *b, const k2r_msg_t *msg, const k2r_mapping_t *m,
                          size_t part) {
    b->parts[part].next_offset = msg->offset;
    b->stats.stopped_partitions++;
    k2r_log_error("STOPPED partition %s[%d] at offset %lld: rule %s: %s: %s (on_error: stop). "
                  "Nothing more of this partition is processed; its committed offset stays at "
                  "%lld, so a restart (after fixing the rules or the data) resumes from this "
                  "record",
                  msg->topic, (int)msg->partition, (long long)msg->offset, m->rule ? m->rule : "-",
                  k2r_skip_name(m->skip), m->detail, (long long)msg->offset);
    return k2r_kafka_stop_partition(b->kafka, msg->topic, msg->partition);
}

/* Maps one Kafka record into the batch; takes `rkm` (it is released, or
 * kept as a dead letter). Returns 0, or -1 when out of memory. */
static int take_record(k2r_bridge_t *b, rd_kafka_message_t *rkm) {
    rd_kafka_timestamp_type_t tstype;
    k2r_mapping_t m;
    k2r_msg_t msg;
    size_t part;
    int rc = 0;

    msg.topic = rd_kafka_topic_name(rkm->rkt);
    msg.partition = rkm->partition;
    msg.offset = rkm->offset;
    if (k2r_kafka_stopped(b->kafka, msg.topic, msg.partition)) {
        /* Fetched before the partition stopped: not processed, not stored. */
        uint64_t suppressed;
        b->stats.dropped_stopped++;
        if (k2r_log_ratelimit(&b->drop_rl, &suppressed))
            k2r_log_info("dropped record %s[%d]@%lld of a stopped partition (%llu more since "
                         "the last line)",
                         msg.topic, (int)msg.partition, (long long)msg.offset,
                         (unsigned long long)suppressed);
        rd_kafka_message_destroy(rkm);
        return 0;
    }
    msg.timestamp = rd_kafka_message_timestamp(rkm, &tstype);
    msg.key = rkm->key;
    msg.key_len = rkm->key_len;
    msg.value = rkm->payload;
    msg.value_len = rkm->len;

    if (read_headers(b, rkm, &msg) != 0 || part_index(b, msg.topic, msg.partition, &part) != 0 ||
        k2r_rules_map(b->rules, b->rec, &msg, &b->bytes, &m) != 0) {
        rd_kafka_message_destroy(rkm);
        return -1;
    }
    b->stats.consumed++;
    b->nrecords++;
    if (m.action == K2R_ACTION_STOP) {
        /* The mapper published nothing of it; records before it complete. */
        rc = stop_partition(b, &msg, &m, part);
        rd_kafka_message_destroy(rkm);
        return rc;
    }
    b->parts[part].next_offset = msg.offset + 1;
    /* With continue: true a record can publish and fail at once: what did
     * map is published whatever the policy. */
    for (size_t i = 0; i < m.npublish && rc == 0; i++)
        rc = add_item(b, part, m.publish[i].channel_off, m.publish[i].channel_len,
                      m.publish[i].message_off, m.publish[i].message_len);
    if (rc != 0) {
        rd_kafka_message_destroy(rkm);
        return -1;
    }
    if (m.action == K2R_ACTION_DEAD_LETTER) {
        log_failed(&b->dead_rl, "dead-lettered", &msg, &m);
        return dead_letter(b, rkm, &m, part); /* takes rkm */
    }
    if (m.action == K2R_ACTION_SKIP) {
        b->stats.skipped[m.skip]++;
        log_failed(&b->skip_rl, "skipped", &msg, &m);
    }
    rd_kafka_message_destroy(rkm);
    return 0;
}

/* Takes records until the batch is full or none is ready; the first wait is
 * up to timeout_ms. Returns 0, or -1 when out of memory. */
static int fill(k2r_bridge_t *b, int timeout_ms) {
    int limit = b->cfg->kafka.batch_size;
    rd_kafka_message_t *rkm;

    while ((int)b->nrecords < limit && (rkm = k2r_kafka_poll(b->kafka, timeout_ms)) != NULL) {
        if (take_record(b, rkm) != 0)
            return -1;
        timeout_ms = 0;
    }
    return 0;
}

/* One poll while the batch is held: keeps the group membership alive and
 * takes a record that arrives even when the batch is full (it cannot be put
 * back; fetching is paused, so few can come). When `draining`, such a record
 * is dropped instead: its offset is not stored, so the next owner reads it.
 * Returns 0, or -1 on OOM. */
static int serve(k2r_bridge_t *b, int timeout_ms, int draining) {
    rd_kafka_message_t *rkm = k2r_kafka_poll(b->kafka, timeout_ms);

    if (!rkm)
        return 0;
    if (draining) {
        rd_kafka_message_destroy(rkm);
        return 0;
    }
    return take_record(b, rkm);
}

static int dlq_wait(k2r_bridge_t *b, int draining) {
    int64_t now = k2r_now_ms();
    int64_t wait;

    if (!b->dlq_waiting_ms)
        b->dlq_waiting_ms = now;
    if (now >= b->dlq_retry_ms) {
        char errstr[256];
        int failed = 0;

        for (size_t i = 0; i < b->ndlq; i++)
            if (b->dlq[i].state == DLQ_UNSENT &&
                dlq_send(b, &b->dlq[i], errstr, sizeof(errstr)) != 0)
                failed = 1;
        if (failed)
            dlq_hold(b, errstr);
    }
    if (!b->dlq_down && now - b->dlq_waiting_ms >= DEAD_LETTER_HOLD_MS) {
        char why[64];
        snprintf(why, sizeof(why), "not acknowledged after %d ms", DEAD_LETTER_HOLD_MS);
        dlq_hold(b, why);
    }
    if (b->dlq_down && serve(b, 0, draining) != 0)
        return -1;
    wait = b->dlq_retry_ms - now;
    k2r_kafka_dead_letter_poll(b->kafka, wait <= 0 ? 0 : wait > 100 ? 100 : (int)wait);
    if (dlq_settled(b) && b->dlq_down) {
        k2r_log_info("dead-letter: %s acknowledged again; %zu held dead letter(s) delivered",
                     b->cfg->kafka.dead_letter_topic ? b->cfg->kafka.dead_letter_topic : "-",
                     b->ndlq);
        b->dlq_down = 0;
        b->dlq_backoff_ms = DEAD_LETTER_BACKOFF_MS;
        b->dlq_retry_ms = 0;
    }
    return 0;
}

static size_t pending(const k2r_bridge_t *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->nitems; i++)
        n += b->items[i].status == K2R_PUBLISH_PENDING;
    return n;
}

static void clear_batch(k2r_bridge_t *b) {
    for (size_t i = 0; i < b->nparts; i++)
        free(b->parts[i].topic);
    for (size_t i = 0; i < b->ndlq; i++)
        rd_kafka_message_destroy(b->dlq[i].rkm);
    b->nparts = 0;
    b->nitems = 0;
    b->nrecords = 0;
    b->ndlq = 0;
    b->bytes.len = 0;
    b->dlq_waiting_ms = 0;
}

/* Every item has its reply and every dead letter its acknowledgement: count
 * the outcomes, store offsets, start afresh. */
static void complete_batch(k2r_bridge_t *b) {
    for (size_t i = 0; i < b->nitems; i++) {
        const k2r_publish_t *it = &b->items[i];
        uint64_t suppressed;

        if (it->status == K2R_PUBLISH_OK) {
            b->stats.published++;
            b->stats.no_subscribers += it->receivers == 0;
        } else {
            b->stats.publish_errors++;
            if (k2r_log_ratelimit(&b->perr_rl, &suppressed))
                k2r_log_warn("redis: PUBLISH to %.*s failed: %s (%llu more since the last line)",
                             (int)it->channel_len, it->channel, it->error,
                             (unsigned long long)suppressed);
        }
    }
    b->stats.dead_lettered += b->ndlq;
    for (size_t i = 0; i < b->nparts; i++)
        if (b->parts[i].next_offset >= 0)
            k2r_kafka_store(b->kafka, b->parts[i].topic, b->parts[i].partition,
                            b->parts[i].next_offset);
    clear_batch(b);
}

/* The group took partitions away: forget their unfinished records. */
static void on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *revoked, int lost) {
    k2r_bridge_t *b = opaque;
    size_t *remap, keep = 0, kept_items = 0, kept_dlq = 0, unpublished = 0;

    (void)lost;
    if (!b->nparts)
        return;
    remap = malloc(b->nparts * sizeof(*remap));
    if (!remap) {
        /* Cannot compact: dropping the whole batch only means re-reading it. */
        b->stats.dropped_on_revoke += pending(b);
        clear_batch(b);
        return;
    }
    for (size_t i = 0; i < b->nparts; i++) {
        int gone = 0;
        for (int j = 0; j < revoked->cnt; j++)
            if (revoked->elems[j].partition == b->parts[i].partition &&
                strcmp(revoked->elems[j].topic, b->parts[i].topic) == 0)
                gone = 1;
        if (gone) {
            free(b->parts[i].topic);
            remap[i] = SIZE_MAX;
        } else {
            b->parts[keep] = b->parts[i];
            remap[i] = keep++;
        }
    }
    for (size_t i = 0; i < b->nitems; i++) {
        size_t p = remap[b->refs[i].part];
        if (p == SIZE_MAX) {
            unpublished += b->items[i].status == K2R_PUBLISH_PENDING;
            continue;
        }
        b->items[kept_items] = b->items[i];
        b->refs[kept_items] = b->refs[i];
        b->refs[kept_items++].part = p;
    }
    /* A revoked partition's dead letter still in flight may arrive anyway;
     * its next owner dead-letters the record again (at least once). */
    for (size_t i = 0; i < b->ndlq; i++) {
        size_t p = remap[b->dlq[i].part];
        if (p == SIZE_MAX) {
            rd_kafka_message_destroy(b->dlq[i].rkm);
            continue;
        }
        b->dlq[kept_dlq] = b->dlq[i];
        b->dlq[kept_dlq++].part = p;
    }
    b->stats.dropped_on_revoke += unpublished;
    if (keep < b->nparts)
        k2r_log_info("bridge: dropped the unfinished batch of %zu revoked partition(s) (%zu "
                     "notification(s) not published yet, %zu dead letter(s)); their offsets were "
                     "not stored, so their next owner reads those records again",
                     b->nparts - keep, unpublished, b->ndlq - kept_dlq);
    b->nitems = kept_items;
    b->ndlq = kept_dlq;
    b->nparts = keep;
    if (!keep)
        clear_batch(b);
    free(remap);
}

/* ---------------------------------------------------------------- redis */

static void schedule_reconnect(k2r_bridge_t *b) {
    b->next_connect_ms = k2r_now_ms() + jitter(b, b->backoff_ms);
    b->backoff_ms = backoff_next(b->backoff_ms, b->cfg->redis.backoff_max_ms);
}

static void redis_failed(k2r_bridge_t *b, const char *what, const char *errstr) {
    uint64_t suppressed;

    b->stats.redis_failures++;
    if (!b->redis_down) {
        b->redis_down = 1;
        k2r_log_warn("redis: %s: %s; holding %zu unpublished notification(s), Kafka paused, "
                     "retrying with backoff up to %d ms",
                     what, errstr, pending(b), b->cfg->redis.backoff_max_ms);
    } else if (k2r_log_ratelimit(&b->conn_rl, &suppressed)) {
        k2r_log_warn("redis: still unavailable: %s: %s (%llu attempts since the last line)", what,
                     errstr, (unsigned long long)suppressed + 1);
    }
    schedule_reconnect(b);
    k2r_kafka_pause(b->kafka, 1);
}

static int try_connect(k2r_bridge_t *b) {
    char errstr[512];

    if (k2r_redis_connect(b->redis, errstr, sizeof(errstr)) != 0) {
        redis_failed(b, "connect", errstr);
        return -1;
    }
    b->stats.redis_connects++;
    b->backoff_ms = b->cfg->redis.backoff_initial_ms;
    if (b->redis_down)
        k2r_log_info("redis: connected to %s:%d again; publishing %zu held notification(s)",
                     b->cfg->redis.parsed.host, b->cfg->redis.parsed.port, pending(b));
    else
        k2r_log_info("redis: connected to %s:%d", b->cfg->redis.parsed.host,
                     b->cfg->redis.parsed.port);
    b->redis_down = 0;
    return 0;
}

/* Publishes what is pending. Returns 0 when every item has a reply. */
static int publish(k2r_bridge_t *b) {
    char errstr[512];

    for (size_t i = 0; i < b->nitems; i++) {
        b->items[i].channel = b->bytes.data + b->refs[i].channel_off;
        b->items[i].message = b->bytes.data + b->refs[i].message_off;
    }
    if (k2r_redis_publish(b->redis, b->items, b->nitems, errstr, sizeof(errstr)) != 0) {
        redis_failed(b, "publish", errstr);
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- reload */

static const char *env_lookup(const char *name) {
    return getenv(name);
}

static int str_differs(const char *a, const char *b) {
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Appends ", name" (or "name" first) to the list in out. */
static void note_change(char *out, size_t size, const char *name) {
    size_t n = strlen(out);
    snprintf(out + n, size - n, "%s%s", n ? ", " : "", name);
}

/* Lists in `out` the settings of `next` that differ from the running ones
 * and take a restart; returns 1 when kafka.topics is among them. */
static int restart_settings(const k2r_config_t *run, const k2r_config_t *next, char *out,
                            size_t size) {
    const k2r_kafka_conf_t *rk = &run->kafka, *nk = &next->kafka;
    const k2r_redis_section_t *rr = &run->redis, *nr = &next->redis;
    int topics = rk->ntopics != nk->ntopics, props = rk->nproperties != nk->nproperties;

    out[0] = '\0';
    for (size_t i = 0; !topics && i < rk->ntopics; i++)
        topics = strcmp(rk->topics[i], nk->topics[i]) != 0;
    for (size_t i = 0; !props && i < rk->nproperties; i++)
        props = strcmp(rk->properties[i].name, nk->properties[i].name) != 0 ||
                strcmp(rk->properties[i].value, nk->properties[i].value) != 0;
    if (str_differs(rk->brokers, nk->brokers))
        note_change(out, size, "kafka.brokers");
    if (str_differs(rk->group_id, nk->group_id))
        note_change(out, size, "kafka.group_id");
    if (topics)
        note_change(out, size, "kafka.topics");
    if (props)
        note_change(out, size, "kafka.properties");
    if (rk->batch_size != nk->batch_size)
        note_change(out, size, "kafka.batch_size");
    if (str_differs(rk->dead_letter_topic, nk->dead_letter_topic))
        note_change(out, size, "kafka.dead_letter_topic");
    if (str_differs(rr->url, nr->url))
        note_change(out, size, "redis.url");
    if (str_differs(rr->password, nr->password))
        note_change(out, size, "redis.password");
    if (rr->connect_timeout_ms != nr->connect_timeout_ms)
        note_change(out, size, "redis.connect_timeout_ms");
    if (rr->command_timeout_ms != nr->command_timeout_ms)
        note_change(out, size, "redis.command_timeout_ms");
    if (rr->pipeline_depth != nr->pipeline_depth)
        note_change(out, size, "redis.pipeline_depth");
    if (rr->backoff_initial_ms != nr->backoff_initial_ms)
        note_change(out, size, "redis.reconnect_backoff_ms");
    if (rr->backoff_max_ms != nr->backoff_max_ms)
        note_change(out, size, "redis.reconnect_backoff_max_ms");
    return topics;
}

/* The last line of a refused reload (its reasons are logged before it). */
static void reload_refused(void) {
    k2r_log_error("reload failed; keeping the previous rules");
}

/*
 * Reads the config file again and, when it loads, swaps in its rules and log
 * level. Called only between batches: no dead letter or publish refers to
 * the old rules any more. The running kafka.* and redis.* settings stay (the
 * connections were made with them); the new values are dropped with a
 * warning naming them.
 */
static void reload_rules(k2r_bridge_t *b) {
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_config_t *next = NULL;
    k2r_rules_t *rules;
    k2r_kafka_conf_t kafka_section;
    k2r_redis_section_t redis_section;
    k2r_mark_t dlq_mark;
    const char *path = b->cfg->path;
    const char *lvl = getenv("K2R_LOG_LEVEL");
    char changed[512], errstr[512];
    int topics;

    k2r_log_info("reloading rules from %s", path);
    rules = k2r_rules_load(path, env_lookup, &errs, &next);
    if (!rules) {
        for (size_t i = 0; i < errs.count; i++)
            k2r_log_error("%s", errs.lines[i]);
        k2r_errors_clear(&errs);
        reload_refused();
        return;
    }
    k2r_errors_clear(&errs);
    if (k2r_rules_need_dead_letter(rules) && !k2r_kafka_dead_letter_ready(b->kafka)) {
        /* A producer is made now only for the dead-letter topic the bridge
         * started with: that one is a running setting like the rest. */
        if (!b->cfg->kafka.dead_letter_topic ||
            str_differs(b->cfg->kafka.dead_letter_topic, next->kafka.dead_letter_topic)) {
            k2r_log_error("%s: the new rules use on_error: dead-letter, but this bridge started "
                          "without kafka.dead_letter_topic%s%s, so it has no dead-letter producer; "
                          "a restart applies it",
                          path, b->cfg->kafka.dead_letter_topic ? " (it started with " : "",
                          b->cfg->kafka.dead_letter_topic ? "another one)" : "");
            reload_refused();
            goto discard;
        }
        if (k2r_kafka_dead_letter_open(b->kafka, b->cfg, on_delivery, errstr, sizeof(errstr)) !=
            0) {
            k2r_log_error("%s: the new rules use on_error: dead-letter: cannot create the "
                          "dead-letter producer: %s",
                          path, errstr);
            reload_refused();
            goto discard;
        }
    }
    topics = restart_settings(b->cfg, next, changed, sizeof(changed));
    if (changed[0])
        k2r_log_warn("%s: %s changed: these settings take a restart; the running values stay in "
                     "effect until then",
                     path, changed);
    if (topics)
        k2r_log_warn("%s: kafka.topics changed: restart required (still subscribed to the "
                     "topics the bridge started with)",
                     path);

    /* The new config, with the running connection settings swapped in. */
    kafka_section = next->kafka;
    next->kafka = b->cfg->kafka;
    b->cfg->kafka = kafka_section;
    redis_section = next->redis;
    next->redis = b->cfg->redis;
    b->cfg->redis = redis_section;
    dlq_mark = next->dead_letter_mark;
    next->dead_letter_mark = b->cfg->dead_letter_mark;
    b->cfg->dead_letter_mark = dlq_mark;
    k2r_config_destroy(b->cfg);
    b->cfg = next;
    path = next->path; /* the old one went with the old config */
    k2r_rules_destroy(b->rules);
    b->rules = rules;

    k2r_log_level = next->log_level;
    if (lvl && *lvl && k2r_log_level_parse(lvl) >= 0)
        k2r_log_level = k2r_log_level_parse(lvl); /* the environment wins, as at start */
    b->stats.reloads++;
    k2r_log_info("reloaded rules from %s: %zu rule(s)", path, k2r_rules_count(rules));
    if (k2r_kafka_nstopped(b->kafka))
        k2r_log_warn("%zu stopped partition(s) stay stopped until a restart",
                     k2r_kafka_nstopped(b->kafka));
    return;

discard:
    k2r_rules_destroy(rules);
    k2r_config_destroy(next);
}

/* ----------------------------------------------------------------- loop */

static void log_stats(k2r_bridge_t *b, int force) {
    k2r_bridge_stats_t *s = &b->stats;
    uint64_t skipped = 0;
    int64_t now = k2r_now_ms();

    if (!force && now < b->stats_next_ms)
        return;
    b->stats_next_ms = now + STATS_INTERVAL_MS;
    if (!force && memcmp(s, &b->stats_logged, sizeof(*s)) == 0)
        return;
    for (int i = 0; i < K2R_SKIP__COUNT; i++)
        skipped += s->skipped[i];
    k2r_log_info("stats: consumed=%llu published=%llu no_subscribers=%llu publish_errors=%llu "
                 "skipped=%llu dead_lettered=%llu stopped_partitions=%llu redis_connects=%llu "
                 "redis_failures=%llu rebalances=%lu",
                 (unsigned long long)s->consumed, (unsigned long long)s->published,
                 (unsigned long long)s->no_subscribers, (unsigned long long)s->publish_errors,
                 (unsigned long long)skipped, (unsigned long long)s->dead_lettered,
                 (unsigned long long)s->stopped_partitions, (unsigned long long)s->redis_connects,
                 (unsigned long long)s->redis_failures, k2r_kafka_rebalances(b->kafka));
    b->stats_logged = *s;
}

k2r_bridge_t *k2r_bridge_new(k2r_config_t *cfg, k2r_rules_t *rules, char *errstr,
                             size_t errstr_size) {
    k2r_redis_conf_t rconf;
    k2r_bridge_t *b = calloc(1, sizeof(*b));

    if (!b) {
        snprintf(errstr, errstr_size, "out of memory");
        k2r_rules_destroy(rules);
        k2r_config_destroy(cfg);
        return NULL;
    }
    b->cfg = cfg;     /* now owned by the bridge */
    b->rules = rules; /* likewise */
    b->skip_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->dead_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->perr_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->conn_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->dlq_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->drop_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->backoff_ms = cfg->redis.backoff_initial_ms;
    b->dlq_backoff_ms = DEAD_LETTER_BACKOFF_MS;
    b->rand_state = (unsigned int)k2r_now_ms();
    b->stats_next_ms = k2r_now_ms() + STATS_INTERVAL_MS;

    b->rec = k2r_record_new();
    if (!b->rec) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    k2r_config_redis_conf(cfg, &rconf);
    b->redis = k2r_redis_new(&rconf, errstr, errstr_size);
    if (!b->redis)
        goto fail;
    b->kafka = k2r_kafka_new(cfg, on_revoke, b, errstr, errstr_size);
    if (!b->kafka)
        goto fail;
    if (k2r_rules_need_dead_letter(rules) &&
        k2r_kafka_dead_letter_open(b->kafka, cfg, on_delivery, errstr, errstr_size) != 0)
        goto fail;
    return b;

fail:
    k2r_bridge_destroy(b);
    return NULL;
}

/* After a stop request: publish what is held and get its dead letters
 * acknowledged, within the drain timeout. */
static int drain(k2r_bridge_t *b) {
    int64_t deadline = k2r_now_ms() + DRAIN_TIMEOUT_MS;

    while ((pending(b) > 0 || !dlq_settled(b)) && k2r_now_ms() < deadline) {
        if (pending(b) == 0) {
            if (dlq_wait(b, 1) != 0)
                break;
            continue;
        }
        if (!k2r_redis_connected(b->redis)) {
            int64_t wait = b->next_connect_ms - k2r_now_ms();
            if (wait > 0) {
                /* Keep the group alive while waiting for the next attempt. */
                serve(b, wait > 100 ? 100 : (int)wait, 1);
                continue;
            }
            if (try_connect(b) != 0)
                continue;
        }
        publish(b);
    }
    if (pending(b) > 0 || !dlq_settled(b)) {
        size_t undelivered = 0;
        for (size_t i = 0; i < b->ndlq; i++)
            undelivered += b->dlq[i].state != DLQ_DELIVERED;
        k2r_log_warn("bridge: drain timeout: %zu notification(s) left unpublished, %zu dead "
                     "letter(s) unacknowledged; their offsets are not committed, so the next run "
                     "processes them",
                     pending(b), undelivered);
        return 1;
    }
    if (b->nparts)
        complete_batch(b);
    return 0;
}

int k2r_bridge_run(k2r_bridge_t *bridge, volatile sig_atomic_t *stop,
                   volatile sig_atomic_t *reload) {
    k2r_bridge_t *b = bridge;
    int rc;

    k2r_log_info("bridge: running: group %s, %zu topic(s), %zu rule(s), redis %s:%d%s%s",
                 b->cfg->kafka.group_id, b->cfg->kafka.ntopics, k2r_rules_count(b->rules),
                 b->cfg->redis.parsed.host, b->cfg->redis.parsed.port,
                 k2r_kafka_dead_letter_ready(b->kafka) ? ", dead letters to " : "",
                 k2r_kafka_dead_letter_ready(b->kafka) ? b->cfg->kafka.dead_letter_topic : "");

    while (!*stop) {
        if (!k2r_redis_connected(b->redis) && k2r_now_ms() >= b->next_connect_ms)
            try_connect(b);
        if (k2r_redis_connected(b->redis) && !b->dlq_down && k2r_kafka_paused(b->kafka))
            k2r_kafka_pause(b->kafka, 0);
        k2r_kafka_dead_letter_poll(b->kafka, 0);
        log_stats(b, 0);

        if (!b->nparts) {
            if (reload && *reload) {
                *reload = 0;
                reload_rules(b);
            }
            if (fill(b, 100) != 0)
                goto oom;
            if (!b->nparts)
                continue;
        }
        if (pending(b) > 0) {
            if (!k2r_redis_connected(b->redis)) {
                /* Serve the group while waiting for the next attempt. Fetching
                 * is paused, so only records fetched before the pause can
                 * arrive. */
                int64_t wait = b->next_connect_ms - k2r_now_ms();
                if (serve(b, wait < 0 ? 0 : wait > 100 ? 100 : (int)wait, 0) != 0)
                    goto oom;
                continue;
            }
            if (publish(b) != 0)
                continue;
        }
        /* Every publish has its reply; the dead letters need theirs too. */
        if (!dlq_settled(b)) {
            if (dlq_wait(b, 0) != 0)
                goto oom;
            continue;
        }
        complete_batch(b);
    }

    k2r_log_info("bridge: stopping: finishing %zu held notification(s)", pending(b));
    rc = drain(b);
    k2r_kafka_close(b->kafka);
    log_stats(b, 1);
    return rc;

oom:
    k2r_log_error("bridge: out of memory; stopping without committing the batch in flight");
    k2r_kafka_close(b->kafka);
    return 2;
}

void k2r_bridge_stats(const k2r_bridge_t *bridge, k2r_bridge_stats_t *out) {
    *out = bridge->stats;
}

void k2r_bridge_destroy(k2r_bridge_t *bridge) {
    if (!bridge)
        return;
    clear_batch(bridge);
    k2r_kafka_destroy(bridge->kafka);
    k2r_redis_destroy(bridge->redis);
    k2r_record_destroy(bridge->rec);
    k2r_rules_destroy(bridge->rules);
    k2r_config_destroy(bridge->cfg);
    k2r_buf_free(&bridge->bytes);
    free(bridge->items);
    free(bridge->refs);
    free(bridge->parts);
    free(bridge->dlq);
    free(bridge->hdrs);
    free(bridge);
}
