/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge_publish.c - the loop's notifications against Redis: handing the
 * batch's pending items to the sink (redis.h) and going on with a publish
 * the sink gave back unfinished, what replies mean for their records
 * (refusals go to the rules' on_error; server states are outages),
 * stale and unavailable notifications given up, and connecting with
 * backoff, which starts over only after a connection stayed up.
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

/* ------------------------------------------------------------- refusals */

/* 1 when an error reply describes the server, not the command: another
 * attempt later can succeed, so it is treated like an outage. */
static int server_state_error(const char *error) {
    /* READONLY: a replica (a failover moved the master); CLUSTERDOWN: a
     * cluster without a quorum or with uncovered slots, for a while. */
    /* NOSCRIPT: the server forgot the notification script (SCRIPT FLUSH, a
     * restart behind a proxy); a new connection loads it again. */
    /* MISCONF: a failed RDB save refuses writes, which the notification
     * script does (dedupe, history); plain PUBLISH is still taken there. */
    static const char *const codes[] = {"LOADING ",  "BUSY ",        "MASTERDOWN ", "TRYAGAIN ",
                                        "READONLY ", "CLUSTERDOWN ", "NOSCRIPT ",   "MISCONF "};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strncmp(error, codes[i], strlen(codes[i])) == 0)
            return 1;
    return 0;
}

/*
 * Carries out what Redis refused in the last publish of the `n` items in
 * b->pub: every item answered with an error goes, once per record, to its
 * rule's on_error policy (skip: counted; dead-letter: sent to the
 * dead-letter topic with reason redis_error; stop: its partition stops at
 * that record). A server-state error puts its item back to be published
 * again and is reported as an outage. Returns 0; 1 after such an outage; -1
 * when out of memory.
 */
static int handle_refusals(k2r_bridge_t *b, size_t n) {
    int outage = 0;

    for (size_t k = 0; k < n; k++) {
        k2r_publish_t *it = &b->pub[k];
        size_t i = b->pub_item[k];
        k2r_batch_item_t *item;
        k2r_batch_rec_t *r;
        k2r_on_error_t on_error;
        char detail[160];
        uint64_t suppressed;

        if (it->status != K2R_PUBLISH_ERROR)
            continue;
        item = k2r_batch_item(b->batch, i);
        if (server_state_error(it->error)) {
            if (!outage && k2r_redis_connected(b->redis)) {
                char why[160];
                snprintf(why, sizeof(why), "the server answered %s", it->error);
                k2r_redis_disconnect(b->redis);
                bridge_redis_failed(b, "publish", why);
            }
            item->state = K2R_BATCH_PENDING;
            outage = 1;
            continue;
        }
        r = k2r_batch_rec(b->batch, item->rec);
        on_error = (k2r_on_error_t)item->on_error;
        b->stats.publish_errors++;
        snprintf(detail, sizeof(detail), "PUBLISH %.*s: %s",
                 (int)(it->channel_len > 64 ? 64 : it->channel_len), it->channel, it->error);
        if (k2r_log_ratelimit(&b->perr_rl, &suppressed))
            k2r_log_warn("redis: refused for record %s[%d]@%lld (rule %s, on_error %s): %s (%llu "
                         "more refusals since the last line)",
                         k2r_batch_part_topic(b->batch, r->part),
                         (int)k2r_batch_part_partition(b->batch, r->part), (long long)r->offset,
                         item->rule ? item->rule : "-", k2r_on_error_name((k2r_on_error_t)on_error),
                         detail, (unsigned long long)suppressed);
        /* Once per record, unless a later refusal's rule is stricter (stop >
         * dead-letter > skip): then that one is carried out too. */
        if (r->failed > (int)on_error)
            continue;
        r->failed = (int)on_error + 1;
        bridge_count_failed(b, item->rule, K2R_SKIP_REDIS_ERROR,
                            on_error == K2R_ON_ERROR_SKIP          ? K2R_ACTION_SKIP
                            : on_error == K2R_ON_ERROR_DEAD_LETTER ? K2R_ACTION_DEAD_LETTER
                                                                   : K2R_ACTION_STOP);
        switch (on_error) {
        case K2R_ON_ERROR_SKIP:
            b->stats.skipped[K2R_SKIP_REDIS_ERROR]++;
            break;
        case K2R_ON_ERROR_DEAD_LETTER:
            if (bridge_dead_letter(b, item->rec, K2R_SKIP_REDIS_ERROR, detail, item->rule) != 0)
                return -1;
            break;
        case K2R_ON_ERROR_STOP:
            if (bridge_stop_partition(b, item->rec, item->rule, K2R_SKIP_REDIS_ERROR, detail) != 0)
                return -1;
            break;
        }
    }
    return outage;
}

/* Gives up every pending item of the batch because Redis is unavailable and
 * redis.on_unavailable is drop: counted, logged (rate-limited). */
void bridge_drop_pending(k2r_bridge_t *b) {
    size_t n = 0;
    uint64_t suppressed;

    for (size_t i = 0; i < k2r_batch_nitems(b->batch); i++) {
        k2r_batch_item_t *item = k2r_batch_item(b->batch, i);
        if (item->state != K2R_BATCH_PENDING)
            continue;
        item->state = K2R_BATCH_DROPPED;
        n++;
    }
    b->stats.dropped_unavailable += n;
    if (n && k2r_log_ratelimit(&b->unavail_rl, &suppressed))
        k2r_log_warn("redis: unavailable; dropped %zu notification(s) (on_unavailable: drop; %llu "
                     "dropped in all)",
                     n, (unsigned long long)b->stats.dropped_unavailable);
}

/* Marks pending items whose record is older than their max_age: they are not
 * sent. */
static void drop_stale(k2r_bridge_t *b) {
    int64_t now = k2r_wall_ms();
    size_t n = 0;
    uint64_t suppressed;

    for (size_t i = 0; i < k2r_batch_nitems(b->batch); i++) {
        k2r_batch_item_t *item = k2r_batch_item(b->batch, i);
        if (item->state != K2R_BATCH_PENDING || item->expires_ms >= now)
            continue;
        item->state = K2R_BATCH_DROPPED;
        b->rstats[item->rstat].stale++;
        n++;
    }
    b->stats.stale += n;
    if (n && k2r_log_ratelimit(&b->stale_rl, &suppressed))
        k2r_log_warn("dropped %zu stale notification(s): their records are older than max_age "
                     "(%llu stale in all)",
                     n, (unsigned long long)b->stats.stale);
}

/* ---------------------------------------------------------------- redis */

static void schedule_reconnect(k2r_bridge_t *b) {
    b->next_connect_ms =
        k2r_now_ms() + k2r_backoff_jitter(b->backoff_ms, (unsigned)rand_r(&b->rand_state));
    b->backoff_ms = k2r_backoff_next(b->backoff_ms, b->cfg->redis.backoff_max_ms);
}

void bridge_redis_failed(k2r_bridge_t *b, const char *what, const char *errstr) {
    int drop = b->cfg->redis.on_unavailable == K2R_UNAVAILABLE_DROP;
    uint64_t suppressed;

    b->stats.redis_failures++;
    if (!b->redis_down) {
        b->redis_down = 1;
        if (drop)
            k2r_log_warn("redis: %s: %s; degraded: notifications are dropped (counted) until it "
                         "answers (on_unavailable: drop), retrying with backoff up to %d ms",
                         what, errstr, b->cfg->redis.backoff_max_ms);
        else
            k2r_log_warn("redis: %s: %s; degraded: holding %zu unpublished notification(s), "
                         "Kafka paused (on_unavailable: pause), retrying with backoff up to %d ms",
                         what, errstr, bridge_pending(b), b->cfg->redis.backoff_max_ms);
    } else if (k2r_log_ratelimit(&b->conn_rl, &suppressed)) {
        k2r_log_warn("redis: still unavailable: %s: %s (%llu attempts since the last line)", what,
                     errstr, (unsigned long long)suppressed + 1);
    }
    schedule_reconnect(b);
    if (!drop)
        k2r_kafka_pause(b->kafka, 1);
}

/* Returns 0 when connected; -1 when not (a later attempt is scheduled);
 * K2R_ERR_AUTH when Redis refused the credentials, K2R_ERR_TLS when its
 * certificate did not verify or it refused ours (either way b->refused is
 * set and the bridge stops: retrying with the same settings cannot help). */
int bridge_try_connect(k2r_bridge_t *b, int64_t deadline_ms) {
    char errstr[512];
    int rc = k2r_redis_connect_by(b->redis, deadline_ms, errstr, sizeof(errstr));

    if (rc == K2R_ERR_AUTH) {
        k2r_log_error("redis: %s refused the credentials: %s; check redis.url, "
                      "K2R_REDIS_PASSWORD or K2R_REDIS_PASSWORD_FILE%s (stopping: retrying cannot "
                      "help)",
                      k2r_redis_addr(b->redis), errstr,
                      b->cfg->redis.sentinel_master ? ", and the redis.sentinel credentials" : "");
        b->refused = 1;
        return K2R_ERR_AUTH;
    }
    if (rc == K2R_ERR_TLS) {
        k2r_log_error("redis: %s; check redis.tls.ca_file, redis.tls.server_name, the client "
                      "certificate and the server's certificate (stopping: retrying cannot help)",
                      errstr);
        b->refused = 1;
        return K2R_ERR_TLS;
    }
    if (rc != 0) {
        bridge_redis_failed(b, "connect", errstr);
        return -1;
    }
    b->stats.redis_connects++;
    /* The backoff starts over only once this connection has stayed up a
     * while (see the loop): a server that accepts and then fails at once
     * must not be hammered at the first delay forever. */
    b->connected_ms = k2r_now_ms();
    if (b->redis_down)
        k2r_log_info("redis: connected to %s again; publishing %zu held notification(s)",
                     k2r_redis_addr(b->redis), bridge_pending(b));
    else
        k2r_log_info("redis: connected to %s%s%s", k2r_redis_addr(b->redis),
                     b->cfg->redis.sentinel_master ? ", master " : "",
                     b->cfg->redis.sentinel_master ? b->cfg->redis.sentinel_master : "");
    b->redis_down = 0;
    return 0;
}

/*
 * Publishes what is pending (stale items are dropped first) and carries out
 * refusals. With a `wait` the sink gives the loop back its turn after at
 * most that long (K2R_REDIS_AGAIN): the same publish goes on at the next
 * call, and records taken meanwhile wait for the next one. Returns 0 when
 * every item has a reply; -1 when Redis failed (the rest stays pending);
 * K2R_ERR_NOMEM when out of memory.
 */
int bridge_publish(k2r_bridge_t *b, const k2r_redis_wait_t *wait) {
    char errstr[512];
    size_t n;
    int rc, failed;

    if (!k2r_redis_publishing(b->redis)) {
        size_t nitems;

        drop_stale(b);
        nitems = k2r_batch_nitems(b->batch);
        if (k2r_array_reserve(&b->pub, &b->cap_pub, nitems, sizeof(*b->pub), 1024) != 0 ||
            k2r_array_reserve(&b->pub_item, &b->cap_pub_item, nitems, sizeof(*b->pub_item), 1024) !=
                0)
            return K2R_ERR_NOMEM;
        /* The sink is given the pending items only, in the batch's order: it
         * would skip the others anyway. */
        n = 0;
        for (size_t i = 0; i < nitems; i++) {
            const k2r_batch_item_t *item = k2r_batch_item(b->batch, i);
            k2r_publish_t *it = &b->pub[n];
            const k2r_batch_rec_t *r;

            if (item->state != K2R_BATCH_PENDING)
                continue;
            memset(it, 0, sizeof(*it));
            it->channel = b->bytes.data + item->channel_off;
            it->channel_len = item->channel_len;
            it->message = b->bytes.data + item->message_off;
            it->message_len = item->message_len;
            it->status = K2R_PUBLISH_PENDING;
            it->history_maxlen = item->history_maxlen;
            it->history_ttl_ms = item->history_ttl_ms;
            if (b->cfg->dedupe.enabled) {
                /* The record's name, as the producer shim gives it (shim.c). */
                r = k2r_batch_rec(b->batch, item->rec);
                it->dd_topic = k2r_batch_part_topic(b->batch, r->part);
                it->dd_partition = k2r_batch_part_partition(b->batch, r->part);
                it->dd_offset = r->offset;
                it->dd_index = item->index;
            }
            b->pub_item[n++] = i;
        }
        b->npub = n;
        b->pub_base = b->bytes.data;
        b->pub_start_us = k2r_now_us();
    } else if (b->pub_base != b->bytes.data) {
        /* Records taken while the publish was under way moved the bytes. */
        for (size_t k = 0; k < b->npub; k++) {
            const k2r_batch_item_t *item = k2r_batch_item(b->batch, b->pub_item[k]);

            b->pub[k].channel = b->bytes.data + item->channel_off;
            b->pub[k].message = b->bytes.data + item->message_off;
        }
        b->pub_base = b->bytes.data;
    }
    n = b->npub;
    rc = k2r_redis_publish(b->redis, b->pub, n, wait, errstr, sizeof(errstr));
    if (rc == K2R_REDIS_AGAIN)
        return K2R_REDIS_AGAIN;
    failed = rc != 0;
    /* Replies read before a connection failed count too. */
    for (size_t k = 0; k < n; k++) {
        k2r_batch_item_t *item = k2r_batch_item(b->batch, b->pub_item[k]);
        if (b->pub[k].status == K2R_PUBLISH_OK) {
            item->state = K2R_BATCH_PUBLISHED;
            item->receivers = b->pub[k].receivers;
            b->stats.dedup_suppressed += b->pub[k].suppressed;
        } else if (b->pub[k].status == K2R_PUBLISH_ERROR) {
            item->state = K2R_BATCH_REFUSED; /* carried out just below */
        }
    }
    if (failed) {
        bridge_redis_failed(b, "publish", errstr);
        /* Replies read before the connection failed may be refusals: their
         * records' policies must run before anything can complete. */
        return handle_refusals(b, n) < 0 ? K2R_ERR_NOMEM : -1;
    }
    k2r_hist_observe(&b->pub_hist, (double)(k2r_now_us() - b->pub_start_us) / 1e6);
    rc = handle_refusals(b, n);
    return rc < 0 ? K2R_ERR_NOMEM : rc > 0 ? -1 : 0;
}
