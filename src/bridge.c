/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge.c - the main loop that joins the Kafka source, the rules and the
 * Redis sink: loop and policy.
 *
 * A batch is the unit of work: records taken from Kafka up to
 * limits.max_inflight_records and limits.max_inflight_bytes (their keys,
 * values and headers), each mapped through the rules into zero or more
 * PUBLISH commands, all published pipelined on one connection, then, and only
 * then, the next offset of every partition in the batch is stored for commit.
 * That gives at-least-once delivery into Redis: a crash or a lost connection
 * can repeat notifications whose replies were not read, never skip one.
 * Stored offsets are committed by librdkafka's auto-commit and, to keep what
 * a crash repeats small, by an asynchronous commit started after a batch at
 * most every COMMIT_INTERVAL_MS. The batch is everything in flight: while it is full nothing more
 * is taken, and librdkafka's prefetch queue is bounded by the same limits (kafka.c), so memory
 * stays flat whatever Redis does.
 *
 * While Redis is unreachable, redis.on_unavailable decides:
 *
 * - pause (the default): the batch stays in memory, every assigned partition
 *   is paused, the consumer keeps polling so the group does not evict it, and
 *   connection attempts back off exponentially (with jitter) up to a cap.
 *   When Redis answers again the unpublished part of the batch goes out, in
 *   order, and fetching resumes.
 * - drop: what cannot be published is counted, logged (rate-limited) and
 *   given up, offsets advance and consuming goes on; reconnection attempts
 *   back off the same way.
 *
 * Either way a notification whose record is older than its rule's max_age
 * (or limits.max_age) when it is about to be published is not sent: it is
 * counted as stale and its offset advances.
 *
 * Redis can also refuse one PUBLISH and take the next (an ACL that forbids a
 * channel: -NOPERM; -OOM; a reply that is not an integer). That is not an
 * outage: the record goes to its rule's on_error policy and the rest of the
 * batch proceeds. Errors that describe the server rather than the command
 * (-LOADING, -BUSY, -MASTERDOWN, -TRYAGAIN, -READONLY, -CLUSTERDOWN) are
 * treated as an outage.
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
 * Rebalances: when partitions are revoked, their part of the batch is
 * finished first (published, dead letters acknowledged, within
 * shutdown.drain_timeout) and their offsets stored, so the commit that
 * follows in kafka.c hands them over without repeats; when they are lost
 * (the group already gave them away), their part is dropped uncommitted.
 *
 * Rules are reloaded on request (SIGHUP in main.c): the file is read on a
 * thread of its own while the loop goes on publishing, and the new rules
 * replace the old ones between batches; the consumer stays in the group.
 *
 * The loop is four files around one state (bridge_int.h): this one turns
 * the loop and owns the batch's life (records taken, completion, offsets
 * stored, rebalances, the drain); bridge_publish.c hands notifications to
 * the Redis sink and carries out what the replies mean (refusals, outages,
 * reconnecting); bridge_deadletter.c produces dead letters and carries out
 * their holds; bridge_reload.c reloads on SIGHUP. The loop waits in one poll
 * for Redis's sockets and Kafka's queue (the sink gives it back its turn
 * every 100 ms or when Kafka's queue wakes it), so a slow Redis never stalls
 * Kafka, health, signals or the drain.
 *
 * The batch's bookkeeping (records, their notifications and states, holds,
 * stops, which offset a partition may store, removing a partition's part)
 * is batch.c, the dead letters' (which record each belongs to, its delivery
 * state, the backoff of failed ones, when the batch holds for them, which a
 * revoke removes) is deadletter.c, and records arrive as the Kafka source's
 * record view (msgview.h), whose librdkafka message the batch carries as an
 * opaque handle.
 *
 * Not here: what a record means (map.c, with the rules rules.c compiles),
 * how Redis is spoken to (redis.c, cluster.c), how Kafka is consumed and
 * produced to (kafka.c), the batch's bookkeeping (batch.c), the dead
 * letters' (deadletter.c).
 */
#include "k2r/bridge.h"

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

/* ---------------------------------------------------------------- batch */

size_t bridge_pending(const k2r_bridge_t *b) {
    return k2r_batch_pending(b->batch);
}

/* The per-rule counters of rule `name` (NULL: no rule took the record);
 * SIZE_MAX when out of memory. The names are few: a pointer comparison
 * usually finds them. */
static size_t rule_stat(k2r_bridge_t *b, const char *name) {
    const char *label = name ? name : "(none)";
    size_t i;

    for (i = 0; i < b->nrstats; i++)
        if (b->rstat_ptr[i] == name && name)
            return i;
    for (i = 0; i < b->nrstats; i++) {
        if (strcmp(b->rstats[i].name, label) == 0) {
            b->rstat_ptr[i] = name;
            return i;
        }
    }
    if (k2r_array_reserve(&b->rstats, &b->cap_rstats, i + 1, sizeof(*b->rstats), 8) != 0 ||
        k2r_array_reserve(&b->rstat_ptr, &b->cap_rstat_ptr, i + 1, sizeof(*b->rstat_ptr), 8) != 0)
        return SIZE_MAX;
    memset(&b->rstats[i], 0, sizeof(b->rstats[i]));
    snprintf(b->rstats[i].name, sizeof(b->rstats[i].name), "%s", label);
    b->rstat_ptr[i] = name;
    return b->nrstats++;
}

/* The per-topic counters of `topic`; SIZE_MAX when out of memory. */
static size_t topic_stat(k2r_bridge_t *b, const char *topic) {
    size_t i;

    if (b->tstat_last < b->ntstats && strcmp(b->tstats[b->tstat_last].name, topic) == 0)
        return b->tstat_last;
    i = k2r_topic_stats_find(&b->tstats, &b->ntstats, &b->cap_tstats, topic);
    if (i != SIZE_MAX)
        b->tstat_last = i;
    return i;
}

void bridge_declare_rules(k2r_bridge_t *b) {
    for (size_t i = 0; i < b->nrstats; i++)
        b->rstats[i].action = K2R_ACTION_NONE;
    for (size_t i = 0; i < k2r_rules_count(b->rules); i++) {
        k2r_action_t action;
        const char *name = k2r_rules_name(b->rules, i, &action);
        size_t k = rule_stat(b, name);

        if (k != SIZE_MAX)
            b->rstats[k].action = (int)action;
    }
}

/* Counts a record rule `name` failed on, by reason and action. */
void bridge_count_failed(k2r_bridge_t *b, const char *name, k2r_skip_t skip, k2r_action_t action) {
    size_t i = rule_stat(b, name);

    if (i != SIZE_MAX && (unsigned)skip < K2R_SKIP__COUNT && (unsigned)action < 4)
        b->rstats[i].failed[skip][action]++;
}

/* A rate-limited line about one record that a rule failed on (`what` is
 * "skipped" or "dead-lettered"); suppressed ones go to debug level. */
void bridge_log_failed(k2r_ratelimit_t *rl, const char *what, const k2r_msgview_t *msg,
                       const k2r_mapping_t *m) {
    char partition[16], offset[24];
    /* As fields too, so that a log pipeline can count by rule and reason. */
    const k2r_log_field_t fields[] = {{"rule", m->rule ? m->rule : "-"},
                                      {"topic", msg->topic},
                                      {"partition", partition},
                                      {"offset", offset},
                                      {"reason", k2r_skip_name(m->skip)}};
    uint64_t suppressed;

    snprintf(partition, sizeof(partition), "%d", (int)msg->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)msg->offset);
    if (k2r_log_ratelimit(rl, &suppressed))
        k2r_log_fields(K2R_LOG_WARN, fields, sizeof(fields) / sizeof(fields[0]),
                       "%s record %s[%d]@%lld (rule %s): %s: %s (%llu more %s since the last line)",
                       what, msg->topic, (int)msg->partition, (long long)msg->offset,
                       m->rule ? m->rule : "-", k2r_skip_name(m->skip), m->detail,
                       (unsigned long long)suppressed, what);
    else
        k2r_log_fields(K2R_LOG_DEBUG, fields, sizeof(fields) / sizeof(fields[0]),
                       "%s record %s[%d]@%lld: %s: %s", what, msg->topic, (int)msg->partition,
                       (long long)msg->offset, k2r_skip_name(m->skip), m->detail);
}

/* What a record counts against limits.max_inflight_bytes: its key, value,
 * and headers' names and values. */
static size_t record_bytes(const k2r_msgview_t *view) {
    size_t bytes = view->key_len + view->value_len;

    for (size_t i = 0; i < view->nheaders; i++)
        bytes += strlen(view->headers[i].name) + view->headers[i].value_len;
    return bytes;
}

/* --------------------------------------------------------------- records */

/* The partition stops at record `rec`: log it loudly, pause the partition
 * for good, and store the record's own offset (or an earlier stopping
 * record's). Returns 0, or -1 when out of memory. */
int bridge_stop_partition(k2r_bridge_t *b, size_t rec, const char *rule, k2r_skip_t skip,
                          const char *detail) {
    const k2r_batch_rec_t *r = k2r_batch_rec(b->batch, rec);
    const char *topic = k2r_batch_part_topic(b->batch, r->part);
    int32_t partition = k2r_batch_part_partition(b->batch, r->part);
    int64_t offset = r->offset, stored = k2r_batch_stop(b->batch, rec);

    b->stats.stopped_partitions++;
    k2r_log_error("STOPPED partition %s[%d] at offset %lld: rule %s: %s: %s (on_error: stop). "
                  "Nothing more of this partition is processed; its committed offset stays at "
                  "%lld, so a restart (after fixing the rules or the data) resumes from this "
                  "record",
                  topic, (int)partition, (long long)offset, rule ? rule : "-", k2r_skip_name(skip),
                  detail, (long long)stored);
    return k2r_kafka_stop_partition(b->kafka, topic, partition);
}

/* Maps one Kafka record into the batch; takes `rkm`. Returns 0, or -1 when
 * out of memory. */
static int take_record(k2r_bridge_t *b, rd_kafka_message_t *rkm) {
    k2r_msgview_t view;
    k2r_mapping_t m;
    size_t rec, bytes, tstat;

    if (k2r_kafka_view(b->kafka, rkm, &view) != 0) {
        k2r_kafka_release(rkm);
        return -1;
    }
    if (k2r_kafka_stopped(b->kafka, view.topic, view.partition)) {
        /* Fetched before the partition stopped: not processed, not stored. */
        uint64_t suppressed;
        b->stats.dropped_stopped++;
        if (k2r_log_ratelimit(&b->drop_rl, &suppressed))
            k2r_log_info("dropped record %s[%d]@%lld of a stopped partition (%llu more since "
                         "the last line)",
                         view.topic, (int)view.partition, (long long)view.offset,
                         (unsigned long long)suppressed);
        k2r_kafka_release(rkm);
        return 0;
    }
    bytes = record_bytes(&view);
    if (bytes > b->largest_record)
        b->largest_record = bytes;
    {
        size_t extra = bytes - view.value_len; /* the key and the headers */
        b->extra_avg = b->extra_avg ? b->extra_avg - b->extra_avg / 16 + extra / 16 : extra;
    }
    if (k2r_batch_add(b->batch, view.topic, view.partition, view.offset, view.timestamp, bytes, rkm,
                      &rec) != 0)
        return -1;
    /* From here on the batch owns rkm. */
    if (k2r_rules_map(b->rules, b->json, &view, &b->bytes, &m) != 0)
        return -1;
    tstat = topic_stat(b, view.topic);
    if (tstat == SIZE_MAX)
        return -1;
    b->stats.consumed++;
    b->stats.consumed_bytes += bytes;
    b->tstats[tstat].consumed++;
    if (m.action != K2R_ACTION_NONE)
        bridge_count_failed(b, m.rule, m.skip, m.action);
    if (m.action == K2R_ACTION_STOP)
        /* The mapper published nothing of it; records before it complete. */
        return bridge_stop_partition(b, rec, m.rule, m.skip, m.detail);
    /* With continue: true a record can publish and fail at once: what did
     * map is published whatever the policy. */
    for (size_t i = 0; i < m.npublish; i++) {
        k2r_batch_item_t *item = k2r_batch_add_item(b->batch, rec);

        if (!item)
            return -1;
        item->channel_off = m.publish[i].channel_off;
        item->channel_len = m.publish[i].channel_len;
        item->message_off = m.publish[i].message_off;
        item->message_len = m.publish[i].message_len;
        item->rule = m.publish[i].rule;
        item->rstat = rule_stat(b, m.publish[i].rule);
        item->tstat = tstat;
        item->on_error = (int)m.publish[i].on_error;
        item->index = (uint32_t)i;
        item->history_maxlen = m.publish[i].history_maxlen;
        item->history_ttl_ms = m.publish[i].history_ttl_ms;
        item->expires_ms = INT64_MAX;
        if (item->rstat == SIZE_MAX)
            return -1;
        if (m.publish[i].max_age_ms > 0 && view.timestamp >= 0)
            item->expires_ms = view.timestamp > INT64_MAX - m.publish[i].max_age_ms
                                   ? INT64_MAX /* a timestamp from the far future */
                                   : view.timestamp + m.publish[i].max_age_ms;
    }
    if (m.action == K2R_ACTION_DEAD_LETTER) {
        bridge_log_failed(&b->dead_rl, "dead-lettered", &view, &m);
        return bridge_dead_letter(b, rec, m.skip, m.detail, m.rule);
    }
    if (m.action == K2R_ACTION_SKIP) {
        b->stats.skipped[m.skip]++;
        bridge_log_failed(&b->skip_rl, "skipped", &view, &m);
    }
    return 0;
}

/* 1 while the batch may take more records. */
static int batch_open(const k2r_bridge_t *b) {
    return k2r_batch_has_room(b->batch, (size_t)b->cfg->limits.max_inflight_records,
                              (size_t)b->cfg->limits.max_inflight_bytes);
}

/*
 * How many records the next take from Kafka may bring: at most FILL_BATCH,
 * the records the batch has room for, and as many of the largest record seen
 * so far as fit in its byte room (at least one), so that the batch overshoots
 * limits.max_inflight_bytes by no more than one record, as when records were
 * taken one at a time. The very first take brings one record, the size of
 * records being unknown until then.
 */
static size_t fill_room(const k2r_bridge_t *b) {
    size_t recs = k2r_batch_nrecs(b->batch), bytes = k2r_batch_bytes(b->batch);
    size_t max_recs = (size_t)b->cfg->limits.max_inflight_records;
    size_t max_bytes = (size_t)b->cfg->limits.max_inflight_bytes;
    size_t room = recs < max_recs ? max_recs - recs : 0;

    if (room > FILL_BATCH)
        room = FILL_BATCH;
    if (b->stats.consumed == 0 && room > 1)
        room = 1;
    if (b->largest_record > 0) {
        size_t fit = bytes < max_bytes ? (max_bytes - bytes) / b->largest_record : 0;
        if (room > fit)
            room = fit > 0 ? fit : 1;
    }
    return room;
}

/* What the queue's key and header bytes may come to (bound_queue). */
static size_t queue_extra_limit(const k2r_bridge_t *b) {
    return QUEUE_EXTRA_LIMITS * (size_t)b->cfg->limits.max_inflight_bytes;
}

/* 1 when records like the last ones, queued as many as librdkafka queues
 * (K2R_QUEUED_BATCHES batches), would pass queue_extra_limit: the loop then
 * weighs the queue every QUEUE_CHECK_MS while a publish waits. */
static int queue_may_fill(const k2r_bridge_t *b) {
    return b->extra_avg * K2R_QUEUED_BATCHES * (size_t)b->cfg->limits.max_inflight_records >
           queue_extra_limit(b);
}

/*
 * librdkafka weighs what it fetched ahead by the records' values alone
 * (queued.max.messages.kbytes), so records whose keys or headers are large
 * next to their values fill its queue up to queued.min.messages, whatever
 * their size. The loop weighs those bytes itself, as the records queued
 * times the key and header bytes of a record lately, and past
 * QUEUE_EXTRA_LIMITS x limits.max_inflight_bytes pauses fetching until the
 * batch has finished.
 * The pause also drops what librdkafka queued: the next fetch starts after
 * the last record taken, so those records are fetched again, not lost.
 * Records of ordinary keys and headers never come near it (5,000 queued
 * records of 100 bytes each are 0.5 MB; of 4 KB, 20 MB, under 64 MiB).
 */
static void bound_queue(k2r_bridge_t *b) {
    size_t limit = queue_extra_limit(b), queued;
    uint64_t suppressed;

    if (b->queue_paused) {
        if (!k2r_batch_nparts(b->batch))
            b->queue_paused = 0; /* the loop resumes fetching next */
        return;
    }
    if (!b->extra_avg || k2r_kafka_paused(b->kafka))
        return;
    queued = k2r_kafka_queued(b->kafka);
    if (queued <= limit / b->extra_avg)
        return;
    b->queue_paused = 1;
    b->stats.queue_pauses++;
    if (k2r_log_ratelimit(&b->queue_rl, &suppressed))
        k2r_log_warn("kafka: librdkafka holds %zu records fetched ahead, whose keys and headers "
                     "(about %zu bytes a record) come to more than %d x limits.max_inflight_bytes "
                     "(%zu; librdkafka counts only values): fetching paused until the batch in "
                     "flight has finished, and those records are fetched again then (%llu more "
                     "since the last line)",
                     queued, b->extra_avg, QUEUE_EXTRA_LIMITS, limit,
                     (unsigned long long)suppressed);
    k2r_kafka_pause(b->kafka, 1);
}

/* Takes records until the batch is full or none is ready; the first wait is
 * up to timeout_ms. Returns 0, or -1 when out of memory. */
static int fill(k2r_bridge_t *b, int timeout_ms) {
    rd_kafka_message_t *msgs[FILL_BATCH];

    /* Emptied also when the batch is full and the queue is not served here:
     * a wake-up left over would end every wait of the publish that follows
     * at once, for records it cannot take. */
    k2r_kafka_wake_clear(b->kafka);
    while (batch_open(b) && !b->oom) {
        size_t n = k2r_kafka_poll_batch(b->kafka, timeout_ms, msgs, fill_room(b));

        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            /* Out of memory in a revocation: the batch is given up. */
            if (b->oom || take_record(b, msgs[i]) != 0) {
                while (++i < n)
                    k2r_kafka_release(msgs[i]);
                return b->oom ? 0 : -1;
            }
        }
        bound_queue(b);
        timeout_ms = 0;
    }
    return 0;
}

/* One poll while the batch is held: keeps the group membership alive and
 * takes a record that arrives even when the batch is full (it cannot be put
 * back; fetching is paused, so few can come). When `draining`, such a record
 * is dropped instead: its offset is not stored, so the next owner reads it.
 * Returns 0, or -1 on OOM. */
int bridge_serve(k2r_bridge_t *b, int timeout_ms, int draining) {
    rd_kafka_message_t *rkm;

    k2r_kafka_wake_clear(b->kafka);
    rkm = k2r_kafka_poll(b->kafka, timeout_ms);

    if (!rkm)
        return 0;
    if (draining) {
        k2r_kafka_release(rkm);
        return 0;
    }
    return take_record(b, rkm);
}

/* ------------------------------------------------------ batch completion */

static void clear_batch(k2r_bridge_t *b) {
    k2r_batch_clear(b->batch);
    b->bytes.len = 0;
    k2r_deadletter_clear(b->dlq);
    bridge_dlq_release(b);
}

/* Counts the outcome of one finished item; `now` is the wall clock (ms). */
static void account_item(k2r_bridge_t *b, size_t i, int64_t now) {
    const k2r_batch_item_t *item = k2r_batch_item(b->batch, i);
    k2r_rule_stats_t *rs = &b->rstats[item->rstat];
    int64_t ts;

    if (item->state != K2R_BATCH_PUBLISHED)
        return;
    b->stats.published++;
    b->stats.published_bytes += item->channel_len + item->message_len;
    b->stats.no_subscribers += item->receivers == 0;
    rs->published++;
    rs->no_subscribers += item->receivers == 0;
    b->tstats[item->tstat].published++;
    ts = k2r_batch_rec(b->batch, item->rec)->timestamp;
    if (ts >= 0)
        k2r_hist_observe(&b->age_hist, (double)(now > ts ? now - ts : 0) / 1000.0);
}

/* Every item has its reply and every dead letter its acknowledgement: count
 * the outcomes, store offsets, start afresh. */
static void complete_batch(k2r_bridge_t *b) {
    int64_t now = k2r_wall_ms(), now_ms = k2r_now_ms();

    for (size_t i = 0; i < k2r_batch_nitems(b->batch); i++)
        account_item(b, i, now);
    b->stats.dead_lettered += k2r_deadletter_count(b->dlq);
    for (size_t p = 0; p < k2r_batch_nparts(b->batch); p++) {
        int64_t next = k2r_batch_storable(b->batch, p);
        if (next >= 0)
            k2r_kafka_store(b->kafka, k2r_batch_part_topic(b->batch, p),
                            k2r_batch_part_partition(b->batch, p), next);
    }
    clear_batch(b);
    /* Commit soon after publishing, not only every auto.commit.interval.ms:
     * what a crash repeats is what was published but not committed, so this
     * keeps it to the batch in flight plus what is published in about one
     * COMMIT_INTERVAL_MS and a commit round trip (thousands of records while
     * draining a backlog). At most every COMMIT_INTERVAL_MS, so that a
     * trickle of records does not become a stream of commits. */
    if (now_ms >= b->commit_next_ms) {
        k2r_kafka_commit(b->kafka);
        b->commit_next_ms = now_ms + COMMIT_INTERVAL_MS;
    }
}

/* ------------------------------------------------------------ rebalance */

/*
 * Revoked (not lost) partitions: finish their part of the batch within the
 * drain timeout (publish what is pending, when Redis is up; wait for their
 * dead letters), then store the offsets of those that finished, for the
 * commit kafka.c makes before letting them go. `gone[p]` marks them.
 */
static void finish_revoked(k2r_bridge_t *b, const int *gone) {
    int64_t deadline = k2r_now_ms() + b->cfg->drain_timeout_ms;
    int waiting;

    if (bridge_pending(b) > 0 && k2r_redis_connected(b->redis)) {
        /* All pending items: the rest of the batch is due anyway. */
        if (bridge_publish(b, NULL) == 0 && bridge_pending(b) > 0)
            bridge_publish(b, NULL); /* records taken while the last publish was under way */
    }
    do {
        waiting = k2r_deadletter_waits_on(b->dlq, gone);
        if (waiting) {
            bridge_dlq_resend(b);
            k2r_kafka_dead_letter_poll(b->kafka, 100);
        }
    } while (waiting && k2r_now_ms() < deadline);
    for (size_t p = 0; p < k2r_batch_nparts(b->batch); p++) {
        const char *topic = k2r_batch_part_topic(b->batch, p);
        int32_t partition = k2r_batch_part_partition(b->batch, p);
        int64_t next = k2r_batch_storable(b->batch, p);

        if (!gone[p])
            continue;
        /* Only a finished partition stores: the offset of its first
         * unfinished record would do too, but the next owner repeating the
         * whole unfinished part is what this bridge has always done. */
        if (k2r_batch_part_done(b->batch, p) && next >= 0)
            k2r_kafka_store(b->kafka, topic, partition, next);
        else
            k2r_log_warn("bridge: revoked %s[%d] could not be finished in time (Redis or the "
                         "dead-letter topic is unavailable); its offset is not stored, so its "
                         "next owner repeats the unfinished records",
                         topic, (int)partition);
    }
}

/* The group takes partitions away: finish (when revoked) or drop (when lost)
 * their part of the batch, and take it out of the batch. */
static void on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *revoked, int lost) {
    k2r_bridge_t *b = opaque;
    size_t nparts = k2r_batch_nparts(b->batch);
    size_t unpublished, ngone = 0;
    int *gone = NULL;

    if (!nparts)
        return;
    /* The sink refers to batch items: a publish under way ends before any
     * leave the batch, by its replies, or, after the drain, by giving it up
     * (what it sent without a reply stays unpublished and uncommitted). */
    if (k2r_redis_publishing(b->redis)) {
        if (b->drained)
            k2r_redis_disconnect(b->redis);
        else
            bridge_publish(b, NULL);
    }
    gone = calloc(nparts, sizeof(*gone));
    if (!gone) {
        /* Cannot tell the partitions apart. Dropping the whole batch would
         * let the kept partitions store offsets past the dropped records
         * later, so the bridge stops instead, committing nothing more (the
         * oom path). */
        b->stats.dropped_on_revoke += bridge_pending(b);
        clear_batch(b);
        b->oom = 1;
        return;
    }
    for (size_t i = 0; i < nparts; i++) {
        for (int j = 0; j < revoked->cnt && !gone[i]; j++)
            gone[i] = revoked->elems[j].partition == k2r_batch_part_partition(b->batch, i) &&
                      strcmp(revoked->elems[j].topic, k2r_batch_part_topic(b->batch, i)) == 0;
        ngone += (size_t)gone[i];
    }
    if (!ngone)
        goto out;
    /* After a drain (SIGTERM), the close that follows revokes everything:
     * the drain already had its time, and what it left stays unstored. */
    if (!lost && !b->drained)
        finish_revoked(b, gone);

    for (size_t i = 0; i < k2r_batch_nitems(b->batch); i++)
        if (gone[k2r_batch_rec(b->batch, k2r_batch_item(b->batch, i)->rec)->part])
            account_item(b, i, k2r_wall_ms()); /* before their records go */
    unpublished = k2r_batch_remove_parts(b->batch, gone);
    /* A revoked partition's dead letter still in flight may arrive anyway;
     * its next owner dead-letters the record again (at least once). */
    b->stats.dead_lettered += k2r_deadletter_remove_gone(b->dlq);
    b->stats.dropped_on_revoke += unpublished;
    if (lost || unpublished)
        k2r_log_info("bridge: dropped the unfinished batch of %zu %s partition(s) (%zu "
                     "notification(s) not published); their offsets were not stored, so their "
                     "next owner reads those records again",
                     ngone, lost ? "lost" : "revoked", unpublished);
    if (!k2r_batch_nparts(b->batch))
        clear_batch(b);
    else if (k2r_deadletter_held(b->dlq) && k2r_deadletter_settled(b->dlq))
        bridge_dlq_release(b);
out:
    free(gone);
}

/* ----------------------------------------------------------------- loop */

/* A partition assigned: its topic has counters from now on (a ^regex
 * subscription's topics are known only here); one whose committed offset
 * lay beyond the end is counted. */
static void on_assign(void *opaque, const char *topic, int32_t partition, int reset) {
    k2r_bridge_t *b = opaque;
    size_t i = topic_stat(b, topic);

    (void)partition;
    if (i != SIZE_MAX)
        b->tstats[i].offset_resets += (uint64_t)reset;
}

/* librdkafka's statistics: the lag per partition, for /metrics. */
static void on_stats(void *opaque, const char *json, size_t len) {
    k2r_bridge_t *b = opaque;

    if (b->metrics)
        k2r_metrics_update_lag(b->metrics, json, len);
}

/* Copies the counters for /metrics, /healthz and /readyz (at most every
 * METRICS_INTERVAL_MS unless `force`). */
static void update_metrics(k2r_bridge_t *b, int force) {
    k2r_snapshot_t s;
    int64_t now = k2r_now_ms();
    int assigned;

    if (!b->metrics || (!force && now < b->metrics_next_ms))
        return;
    b->metrics_next_ms = now + METRICS_INTERVAL_MS;
    memset(&s, 0, sizeof(s));
    k2r_bridge_stats(b, &s.stats);
    s.rules = b->rstats;
    s.nrules = b->nrstats;
    s.topics = b->tstats;
    s.ntopics = b->ntstats;
    s.publish_seconds = b->pub_hist;
    s.age_seconds = b->age_hist;
    s.redis_reconnects = b->stats.redis_connects > 1 ? b->stats.redis_connects - 1 : 0;
    s.redis_command_errors = b->stats.publish_errors;
    s.reloads_ok = b->stats.reloads;
    s.reloads_failed = b->reload_failures;
    s.rebalances = k2r_kafka_rebalances(b->kafka);
    k2r_kafka_commits(b->kafka, &s.commits_ok, &s.commits_failed);
    assigned = k2r_kafka_assigned(b->kafka);
    s.partitions_assigned = assigned;
    s.partitions_paused = k2r_kafka_paused(b->kafka) ? assigned : (int)k2r_kafka_nstopped(b->kafka);
    s.loop_ms = now;
    s.config_loaded = 1;
    s.group_joined = k2r_kafka_joined(b->kafka);
    s.redis_writable = k2r_redis_connected(b->redis) && !b->redis_down;
    s.nshards = k2r_redis_shards(b->redis, s.shards, K2R_MAX_SHARDS);
    s.stopping = b->stopping;
    k2r_metrics_update(b->metrics, &s);
}

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
                 "skipped=%llu dead_lettered=%llu stopped_partitions=%llu stale=%llu "
                 "dropped_unavailable=%llu redis_connects=%llu redis_failures=%llu rebalances=%lu",
                 (unsigned long long)s->consumed, (unsigned long long)s->published,
                 (unsigned long long)s->no_subscribers, (unsigned long long)s->publish_errors,
                 (unsigned long long)skipped, (unsigned long long)s->dead_lettered,
                 (unsigned long long)s->stopped_partitions, (unsigned long long)s->stale,
                 (unsigned long long)s->dropped_unavailable, (unsigned long long)s->redis_connects,
                 (unsigned long long)s->redis_failures, k2r_kafka_rebalances(b->kafka));
    b->stats_logged = *s;
}

k2r_bridge_t *k2r_bridge_new(k2r_config_t *cfg, k2r_rules_t *rules, k2r_metrics_t *metrics,
                             char *errstr, size_t errstr_size) {
    k2r_redis_conf_t rconf;
    k2r_deadletter_conf_t dlq_conf;
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
    b->stale_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->unavail_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->queue_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->backoff_ms = cfg->redis.backoff_initial_ms;
    b->rand_state = (unsigned int)k2r_now_ms();
    dlq_conf = (k2r_deadletter_conf_t){.hold_ms = DEAD_LETTER_HOLD_MS,
                                       .backoff_ms = DEAD_LETTER_BACKOFF_MS,
                                       .backoff_max_ms = DEAD_LETTER_BACKOFF_MAX_MS,
                                       .rand = bridge_rand,
                                       .rand_opaque = b};
    b->stats_next_ms = k2r_now_ms() + STATS_INTERVAL_MS;

    b->json = k2r_json_new();
    b->batch = k2r_batch_new(k2r_kafka_release);
    if (b->batch)
        b->dlq = k2r_deadletter_new(b->batch, &dlq_conf);
    if (!b->json || !b->batch || !b->dlq) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    k2r_config_redis_conf(cfg, &rconf);
    b->redis = k2r_redis_new(&rconf, errstr, errstr_size);
    if (!b->redis)
        goto fail;
    b->metrics = metrics; /* borrowed */
    bridge_declare_rules(b);
    /* The topics named in kafka.topics have their series from start; those
     * a ^regex matches get theirs when assigned (on_assign). */
    for (size_t i = 0; i < cfg->kafka.ntopics; i++) {
        if (cfg->kafka.topics[i][0] != '^' && topic_stat(b, cfg->kafka.topics[i]) == SIZE_MAX) {
            snprintf(errstr, errstr_size, "out of memory");
            goto fail;
        }
    }
    b->kafka = k2r_kafka_new(cfg, on_revoke, on_stats, b, errstr, errstr_size);
    if (!b->kafka)
        goto fail;
    k2r_kafka_on_assign(b->kafka, on_assign);
    if (k2r_rules_need_dead_letter(rules) &&
        k2r_kafka_dead_letter_open(b->kafka, cfg, bridge_on_delivery, errstr, errstr_size) != 0)
        goto fail;
    return b;

fail:
    k2r_bridge_destroy(b);
    return NULL;
}

/* After a stop request: publish what is held and get its dead letters
 * acknowledged, within shutdown.drain_timeout. Returns 0 when all of it
 * finished (and its offsets are stored), 1 when some was left. */
static int drain(k2r_bridge_t *b) {
    int64_t deadline = k2r_now_ms() + b->cfg->drain_timeout_ms, left;
    k2r_redis_wait_t wait = {.wait_ms = 100, .wake_fd = -1};

    while ((bridge_pending(b) > 0 || !k2r_deadletter_settled(b->dlq)) && k2r_now_ms() < deadline &&
           !b->refused) {
        if (bridge_pending(b) == 0) {
            if (bridge_dlq_wait(b, 1) != 0)
                break;
            continue;
        }
        if (!k2r_redis_connected(b->redis)) {
            int64_t until = b->next_connect_ms - k2r_now_ms();
            if (b->cfg->redis.on_unavailable == K2R_UNAVAILABLE_DROP) {
                bridge_drop_pending(b);
                continue;
            }
            if (until > 0) {
                /* Keep the group alive while waiting for the next attempt. */
                bridge_serve(b, until > 100 ? 100 : (int)until, 1);
                continue;
            }
            if (bridge_try_connect(b, deadline) != 0)
                continue;
        }
        /* In turns of up to 100 ms, so that the deadline holds whatever Redis does. */
        left = deadline - k2r_now_ms();
        wait.wait_ms = left <= 0 ? 0 : left > 100 ? 100 : (int)left;
        if (bridge_publish(b, &wait) == K2R_ERR_NOMEM)
            break;
    }
    if (k2r_redis_publishing(b->redis))
        k2r_redis_disconnect(b->redis); /* out of time: what has no reply stays unpublished */
    if (bridge_pending(b) > 0 || !k2r_deadletter_settled(b->dlq)) {
        k2r_log_warn("bridge: drain: %zu notification(s) left unpublished, %zu dead letter(s) "
                     "unacknowledged after %d ms; their offsets are not committed, so the next "
                     "run processes them",
                     bridge_pending(b), k2r_deadletter_unacknowledged(b->dlq),
                     b->cfg->drain_timeout_ms);
        return 1;
    }
    if (k2r_batch_nparts(b->batch))
        complete_batch(b);
    return 0;
}

int k2r_bridge_run(k2r_bridge_t *bridge, volatile sig_atomic_t *stop,
                   volatile sig_atomic_t *reload) {
    k2r_bridge_t *b = bridge;
    char errstr[1024];
    int rc, failed = 0;

    update_metrics(b, 1); /* /readyz: not in the group yet */
    if (k2r_kafka_wait_brokers(b->kafka, b->cfg->kafka.startup_timeout_ms, stop, errstr,
                               sizeof(errstr)) != 0) {
        if (*stop)
            return K2R_RUN_OK;
        k2r_log_error("kafka: cannot start: %s (brokers %s)", errstr,
                      k2r_config_shown(b->cfg, "kafka.brokers", b->cfg->kafka.brokers));
        return K2R_RUN_FAILED;
    }
    k2r_log_info(
        "bridge: running: group %s, %zu topic(s), %zu rule(s), redis %s:%d%s%s",
        k2r_config_shown(b->cfg, "kafka.group_id", b->cfg->kafka.group_id), b->cfg->kafka.ntopics,
        k2r_rules_count(b->rules), b->cfg->redis.parsed.host, b->cfg->redis.parsed.port,
        k2r_kafka_dead_letter_ready(b->kafka) ? ", dead letters to " : "",
        k2r_kafka_dead_letter_ready(b->kafka)
            ? k2r_config_shown(b->cfg, "kafka.dead_letter_topic", b->cfg->kafka.dead_letter_topic)
            : "");

    while (!*stop) {
        int drop = b->cfg->redis.on_unavailable == K2R_UNAVAILABLE_DROP;

        if (b->oom)
            goto oom;
        if (k2r_kafka_fatal(b->kafka, errstr, sizeof(errstr))) {
            k2r_log_error("kafka: fatal error: %s; stopping so that the bridge is restarted",
                          errstr);
            failed = 1;
            break;
        }
        if (!k2r_redis_connected(b->redis) && k2r_now_ms() >= b->next_connect_ms &&
            (rc = bridge_try_connect(b, INT64_MAX)) != 0 &&
            (rc == K2R_ERR_AUTH || rc == K2R_ERR_TLS)) {
            failed = 1;
            break;
        }
        if (k2r_redis_connected(b->redis) && b->backoff_ms != b->cfg->redis.backoff_initial_ms &&
            k2r_now_ms() - b->connected_ms >= BACKOFF_RESET_MS)
            b->backoff_ms = b->cfg->redis.backoff_initial_ms;
        /* Between publishes: notice a connection the server or the network dropped. */
        if (k2r_redis_connected(b->redis) && !k2r_redis_publishing(b->redis) &&
            k2r_redis_tick(b->redis, errstr, sizeof(errstr)) != 0)
            bridge_redis_failed(b, "idle check", errstr);
        bound_queue(b);
        if ((k2r_redis_connected(b->redis) || drop) && !k2r_deadletter_held(b->dlq) &&
            !b->queue_paused && k2r_kafka_paused(b->kafka))
            k2r_kafka_pause(b->kafka, 0);
        k2r_kafka_dead_letter_poll(b->kafka, 0);
        log_stats(b, 0);
        update_metrics(b, 0);

        /* A SIGHUP starts a load off this thread at once; what it loaded is
         * swapped in between batches. */
        if (reload && *reload) {
            *reload = 0;
            bridge_reload_request(b);
        }
        if (!k2r_batch_nparts(b->batch)) {
            bridge_reload_apply(b);
            if (fill(b, 100) != 0 || b->oom)
                goto oom;
            if (!k2r_batch_nparts(b->batch))
                continue;
        }
        if (bridge_pending(b) > 0) {
            if (!k2r_redis_connected(b->redis)) {
                if (drop) {
                    bridge_drop_pending(b);
                } else {
                    /* Serve the group while waiting for the next attempt.
                     * Fetching is paused, so only records fetched before the
                     * pause can arrive. */
                    int64_t wait = b->next_connect_ms - k2r_now_ms();
                    if (bridge_serve(b, wait < 0 ? 0 : wait > 100 ? 100 : (int)wait, 0) != 0)
                        goto oom;
                    continue;
                }
            } else {
                /* One poll for Redis's socket and Kafka's queue: a slow
                 * Redis gives the loop its turn every 100 ms, and records
                 * that arrive meanwhile are taken while there is room. */
                k2r_redis_wait_t wait = {.wait_ms = 100, .wake_fd = k2r_kafka_wake_fd(b->kafka)};

                /* While records whose keys and headers could fill librdkafka's
                 * queue come, it is weighed often (bound_queue): its wake-up
                 * comes once after each poll, and a full batch polls none. */
                if (queue_may_fill(b))
                    wait.wait_ms = QUEUE_CHECK_MS;
                rc = bridge_publish(b, &wait);
                if (rc == K2R_ERR_NOMEM)
                    goto oom;
                if (rc == K2R_REDIS_AGAIN) {
                    if (fill(b, 0) != 0 || b->oom)
                        goto oom;
                    continue;
                }
                /* Records taken while it was under way are still pending. */
                if (rc != 0 || bridge_pending(b) > 0)
                    continue;
            }
        }
        /* Every publish has its reply; the dead letters need theirs too. */
        if (!k2r_deadletter_settled(b->dlq)) {
            if (bridge_dlq_wait(b, 0) != 0)
                goto oom;
            continue;
        }
        complete_batch(b);
    }

    k2r_log_info("bridge: stopping: finishing %zu held notification(s)", bridge_pending(b));
    b->stopping = 1;
    update_metrics(b, 1);
    rc = drain(b);
    b->drained = 1;
    k2r_kafka_close(b->kafka);
    log_stats(b, 1);
    update_metrics(b, 1);
    return failed ? K2R_RUN_FAILED : rc ? K2R_RUN_LEFT_WORK : K2R_RUN_OK;

oom:
    k2r_log_error("bridge: out of memory; stopping without committing the batch in flight");
    /* Emptied first, so that the revocation inside close finds nothing to
     * finish: a half-taken record must not have its offset stored. */
    clear_batch(b);
    k2r_kafka_close(b->kafka);
    return K2R_RUN_FAILED;
}

void k2r_bridge_stats(const k2r_bridge_t *bridge, k2r_bridge_stats_t *out) {
    *out = bridge->stats;
    out->inflight_records = k2r_batch_nrecs(bridge->batch);
    out->inflight_bytes = k2r_batch_bytes(bridge->batch);
}

void k2r_bridge_destroy(k2r_bridge_t *bridge) {
    if (!bridge)
        return;
    bridge_reload_discard(bridge);
    /* The batch's records are librdkafka messages: released before the
     * consumer that made them. */
    k2r_deadletter_destroy(bridge->dlq);
    k2r_batch_destroy(bridge->batch);
    k2r_kafka_destroy(bridge->kafka);
    free(bridge->rstats);
    free(bridge->rstat_ptr);
    free(bridge->tstats);
    k2r_redis_destroy(bridge->redis);
    k2r_json_destroy(bridge->json);
    k2r_rules_destroy(bridge->rules);
    k2r_config_destroy(bridge->cfg);
    k2r_buf_free(&bridge->bytes);
    free(bridge->pub);
    free(bridge->pub_item);
    free(bridge);
}
