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
 * Not here: what a record means (rules.c), how Redis is spoken to (redis.c),
 * how Kafka is consumed (kafka.c).
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

/* A partition touched by the current batch, with the offset to store. */
typedef struct bpart_s {
    char *topic;
    int32_t partition;
    int64_t next_offset;
} bpart_t;

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
    size_t *item_part; /* index into parts, per item */
    size_t *item_off;  /* channel offset, message offset: two per item */
    size_t nitems, cap_items;
    bpart_t *parts;
    size_t nparts, cap_parts;
    size_t nrecords;

    /* Redis reconnection. */
    int backoff_ms;
    int64_t next_connect_ms;
    int redis_down; /* an outage is in progress (for logging once) */
    unsigned int rand_state;

    k2r_bridge_stats_t stats;
    k2r_bridge_stats_t stats_logged;
    int64_t stats_next_ms;
    k2r_ratelimit_t skip_rl, perr_rl, conn_rl;
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
        size_t *ip, *io;
        if (!items)
            return -1;
        b->items = items;
        ip = realloc(b->item_part, cap * sizeof(*ip));
        if (!ip)
            return -1;
        b->item_part = ip;
        io = realloc(b->item_off, 2 * cap * sizeof(*io));
        if (!io)
            return -1;
        b->item_off = io;
        b->cap_items = cap;
    }
    memset(&b->items[b->nitems], 0, offsetof(k2r_publish_t, error));
    b->items[b->nitems].error[0] = '\0';
    b->items[b->nitems].channel_len = ch_len;
    b->items[b->nitems].message_len = msg_len;
    b->item_part[b->nitems] = part;
    b->item_off[2 * b->nitems] = ch_off;
    b->item_off[2 * b->nitems + 1] = msg_off;
    b->nitems++;
    return 0;
}

static void log_skip(k2r_bridge_t *b, const k2r_msg_t *msg, const k2r_mapping_t *m) {
    uint64_t suppressed;

    if (k2r_log_ratelimit(&b->skip_rl, &suppressed))
        k2r_log_warn("skipped record %s[%d]@%lld (rule %s): %s: %s (%llu more skipped since the "
                     "last line)",
                     msg->topic, (int)msg->partition, (long long)msg->offset,
                     m->rule ? m->rule : "-", k2r_skip_name(m->skip), m->detail,
                     (unsigned long long)suppressed);
    else
        k2r_log_debug("skipped record %s[%d]@%lld: %s: %s", msg->topic, (int)msg->partition,
                      (long long)msg->offset, k2r_skip_name(m->skip), m->detail);
}

/* Maps one Kafka record into the batch. Returns 0, or -1 when out of memory. */
static int take_record(k2r_bridge_t *b, const rd_kafka_message_t *rkm) {
    rd_kafka_timestamp_type_t tstype;
    k2r_mapping_t m;
    k2r_msg_t msg;
    size_t part;

    msg.topic = rd_kafka_topic_name(rkm->rkt);
    msg.partition = rkm->partition;
    msg.offset = rkm->offset;
    msg.timestamp = rd_kafka_message_timestamp(rkm, &tstype);
    msg.key = rkm->key;
    msg.key_len = rkm->key_len;
    msg.value = rkm->payload;
    msg.value_len = rkm->len;
    msg.headers = NULL; /* headers arrive with the dead-letter work */
    msg.nheaders = 0;

    if (part_index(b, msg.topic, msg.partition, &part) != 0)
        return -1;
    if (k2r_rules_map(b->rules, b->rec, &msg, &b->bytes, &m) != 0)
        return -1;
    b->stats.consumed++;
    b->nrecords++;
    b->parts[part].next_offset = msg.offset + 1;
    if (m.skip != K2R_SKIP_NONE) {
        b->stats.skipped[m.skip]++;
        log_skip(b, &msg, &m);
        return 0;
    }
    for (size_t i = 0; i < m.npublish; i++)
        if (add_item(b, part, m.publish[i].channel_off, m.publish[i].channel_len,
                     m.publish[i].message_off, m.publish[i].message_len) != 0)
            return -1;
    return 0;
}

/* Takes records until the batch is full or none is ready; the first wait is
 * up to timeout_ms. Returns 0, or -1 when out of memory. */
static int fill(k2r_bridge_t *b, int timeout_ms) {
    int limit = b->cfg->kafka.batch_size;
    rd_kafka_message_t *rkm;

    while ((int)b->nrecords < limit && (rkm = k2r_kafka_poll(b->kafka, timeout_ms)) != NULL) {
        int rc = take_record(b, rkm);
        rd_kafka_message_destroy(rkm);
        if (rc != 0)
            return -1;
        timeout_ms = 0;
    }
    return 0;
}

/* One poll while waiting for Redis: keeps the group membership alive and
 * takes a record that arrives even when the batch is full (it cannot be put
 * back; fetching is paused, so few can come). Returns 0, or -1 on OOM. */
static int serve(k2r_bridge_t *b, int timeout_ms) {
    rd_kafka_message_t *rkm = k2r_kafka_poll(b->kafka, timeout_ms);
    int rc;

    if (!rkm)
        return 0;
    rc = take_record(b, rkm);
    rd_kafka_message_destroy(rkm);
    return rc;
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
    b->nparts = 0;
    b->nitems = 0;
    b->nrecords = 0;
    b->bytes.len = 0;
}

/* Every item has its reply: count the outcomes, store offsets, start afresh. */
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
    for (size_t i = 0; i < b->nparts; i++)
        if (b->parts[i].next_offset >= 0)
            k2r_kafka_store(b->kafka, b->parts[i].topic, b->parts[i].partition,
                            b->parts[i].next_offset);
    clear_batch(b);
}

/* The group took partitions away: forget their unfinished records. */
static void on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *revoked, int lost) {
    k2r_bridge_t *b = opaque;
    size_t *remap, keep = 0, kept_items = 0;

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
        size_t p = remap[b->item_part[i]];
        if (p == SIZE_MAX) {
            b->stats.dropped_on_revoke += b->items[i].status == K2R_PUBLISH_PENDING;
            continue;
        }
        b->items[kept_items] = b->items[i];
        b->item_part[kept_items] = p;
        b->item_off[2 * kept_items] = b->item_off[2 * i];
        b->item_off[2 * kept_items + 1] = b->item_off[2 * i + 1];
        kept_items++;
    }
    if (keep < b->nparts)
        k2r_log_info("bridge: gave up %zu unfinished publish(es) of %zu revoked partition(s); "
                     "their next owner reads them again",
                     b->nitems - kept_items, b->nparts - keep);
    b->nitems = kept_items;
    b->nparts = keep;
    if (!keep)
        clear_batch(b);
    free(remap);
}

/* ---------------------------------------------------------------- redis */

static int jitter(k2r_bridge_t *b, int ms) {
    /* Half fixed, half random: spreads reconnects of many bridges apart. */
    return ms / 2 + (int)(rand_r(&b->rand_state) % (unsigned)(ms / 2 + 1));
}

static void schedule_reconnect(k2r_bridge_t *b) {
    b->next_connect_ms = k2r_now_ms() + jitter(b, b->backoff_ms);
    b->backoff_ms = b->backoff_ms * 2 > b->cfg->redis.backoff_max_ms ? b->cfg->redis.backoff_max_ms
                                                                     : b->backoff_ms * 2;
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
        b->items[i].channel = b->bytes.data + b->item_off[2 * i];
        b->items[i].message = b->bytes.data + b->item_off[2 * i + 1];
    }
    if (k2r_redis_publish(b->redis, b->items, b->nitems, errstr, sizeof(errstr)) != 0) {
        redis_failed(b, "publish", errstr);
        return -1;
    }
    return 0;
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
                 "skipped=%llu redis_connects=%llu redis_failures=%llu rebalances=%lu",
                 (unsigned long long)s->consumed, (unsigned long long)s->published,
                 (unsigned long long)s->no_subscribers, (unsigned long long)s->publish_errors,
                 (unsigned long long)skipped, (unsigned long long)s->redis_connects,
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
    b->perr_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->conn_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    b->backoff_ms = cfg->redis.backoff_initial_ms;
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
    return b;

fail:
    k2r_bridge_destroy(b);
    return NULL;
}

/* After a stop request: publish what is held, within the drain timeout. */
static int drain(k2r_bridge_t *b) {
    int64_t deadline = k2r_now_ms() + DRAIN_TIMEOUT_MS;

    while (pending(b) > 0 && k2r_now_ms() < deadline) {
        if (!k2r_redis_connected(b->redis)) {
            int64_t wait = b->next_connect_ms - k2r_now_ms();
            if (wait > 0) {
                /* Keep the group alive while waiting for the next attempt. */
                rd_kafka_message_t *rkm = k2r_kafka_poll(b->kafka, wait > 100 ? 100 : (int)wait);
                if (rkm)
                    rd_kafka_message_destroy(rkm); /* not ours to take any more */
                continue;
            }
            if (try_connect(b) != 0)
                continue;
        }
        publish(b);
    }
    if (pending(b) > 0) {
        k2r_log_warn("bridge: drain timeout: %zu notification(s) left unpublished; their offsets "
                     "are not committed, so the next run publishes them",
                     pending(b));
        return 1;
    }
    if (b->nparts)
        complete_batch(b);
    return 0;
}

int k2r_bridge_run(k2r_bridge_t *bridge, volatile sig_atomic_t *stop) {
    k2r_bridge_t *b = bridge;
    int rc;

    k2r_log_info("bridge: running: group %s, %zu topic(s), %zu rule(s), redis %s:%d",
                 b->cfg->kafka.group_id, b->cfg->kafka.ntopics, k2r_rules_count(b->rules),
                 b->cfg->redis.parsed.host, b->cfg->redis.parsed.port);

    while (!*stop) {
        if (!k2r_redis_connected(b->redis) && k2r_now_ms() >= b->next_connect_ms)
            try_connect(b);
        if (k2r_redis_connected(b->redis) && k2r_kafka_paused(b->kafka))
            k2r_kafka_pause(b->kafka, 0);
        log_stats(b, 0);

        if (!b->nparts) {
            if (fill(b, 100) != 0)
                goto oom;
            if (!b->nparts)
                continue;
        }
        if (pending(b) == 0) {
            complete_batch(b); /* nothing to publish: only skipped records */
            continue;
        }
        if (!k2r_redis_connected(b->redis)) {
            /* Serve the group while waiting for the next attempt. Fetching is
             * paused, so only records fetched before the pause can arrive. */
            int64_t wait = b->next_connect_ms - k2r_now_ms();
            if (serve(b, wait < 0 ? 0 : wait > 100 ? 100 : (int)wait) != 0)
                goto oom;
            continue;
        }
        if (publish(b) == 0)
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
    free(bridge->item_part);
    free(bridge->item_off);
    free(bridge->parts);
    free(bridge);
}
