/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shim.c - the fast-path producer shim (include/k2r/shim.h): a bounded queue
 * that a producer's delivery reports feed, and one thread that maps what is
 * queued through the bridge's rules and publishes it on the shim's own
 * Redis sink.
 *
 * The producer's side (k2r_shim_publish) makes one allocation holding a copy
 * of the record, takes a mutex for a few instructions and returns; nothing
 * on that side waits for Redis, for room or for the thread. A record that
 * does not fit under the queue's bounds (records, bytes) is dropped and
 * counted at once. The thread takes up to BATCH_MAX records at a time, maps
 * them with k2r_rules_map exactly as the bridge's take_record does (the same
 * view, the same mapping, the same notifications), and hands the sink all
 * of their notifications in one pipelined publish, each item naming its
 * record (dd_topic, dd_partition, dd_offset, dd_index) as the bridge does,
 * so that the sink's dedupe publishes one of the two.
 *
 * Redis down or refusing: the notifications of what is taken meanwhile are
 * dropped and counted, and the thread reconnects with the bridge's backoff
 * settings (redis.reconnect_backoff_ms and _max_ms, with jitter). Nothing is
 * held for later: the bridge delivers what the shim dropped.
 *
 * Not here: reading librdkafka's messages and the plugin's life cycle
 * (plugin.c), the rules (map.c), the Redis protocol (redis.c, cluster.c).
 * This file includes no librdkafka header: the C API works in any program.
 */
#include "k2r/shim.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k2r/buf.h"
#include "k2r/clock.h"
#include "k2r/config.h"
#include "k2r/errors.h"
#include "k2r/json.h"
#include "k2r/log.h"
#include "k2r/msgview.h"
#include "k2r/redis.h"
#include "k2r/rules.h"

#include "shim_int.h"

#define DEFAULT_QUEUE_RECORDS 100000
#define DEFAULT_QUEUE_BYTES   ((size_t)64 << 20)
#define DEFAULT_FLUSH_MS      1000
/* Records mapped and published together: one pipelined publish. */
#define BATCH_MAX 2048
/* A publish gives the thread back its turn this often (to see a close). */
#define PUBLISH_SLICE_MS 100
/* An idle thread wakes this often (idle PINGs, reconnects, the summary). */
#define IDLE_WAKE_MS 200
/* A busy thread (records within ACTIVE_MS) looks at the queue this often
 * without being woken (see run). */
#define ACTIVE_MS 100
#define POLL_US   250
/* At most one summary of drops per interval. */
#define SUMMARY_MS 10000
/* A connection that stayed up this long starts the backoff over. */
#define BACKOFF_RESET_MS 10000

/* One queued record: the view and every byte it points to, in one block. */
typedef struct qrec_s {
    struct qrec_s *next;
    size_t bytes; /* the whole block, as the byte bound counts it */
    k2r_msgview_t view;
    k2r_msgview_header_t hdrs[]; /* view.nheaders of them, then the bytes */
} qrec_t;

/* Counters: written with relaxed atomics from any thread. */
typedef struct counters_s {
    uint64_t enqueued, dropped_queue_full, dropped_no_offset, skipped_by_rules, published,
        suppressed, dropped_redis, dropped_stale, errors, redis_connects;
} counters_t;

struct k2r_shim_s {
    k2r_config_t *cfg;
    k2r_rules_t *rules;
    k2r_redis_t *redis;
    k2r_json_t *json;
    size_t max_records, max_bytes;
    int flush_timeout_ms;
    int debug;
    k2r_shim_log_fn *log;
    void *log_opaque;

    pthread_mutex_t lock;
    pthread_cond_t wake;    /* the thread: records arrived, or close */
    pthread_cond_t flushed; /* k2r_shim_flush: records processed */
    pthread_t thread;
    int started, joined;
    /* Under lock: */
    qrec_t *head, *tail;
    size_t nrecords, nbytes; /* queued or being processed */
    uint64_t seq_in;         /* records ever queued */
    uint64_t seq_done;       /* records ever processed (published or dropped) */
    int waiting;             /* the thread sleeps on `wake` */
    int closing;             /* k2r_shim_destroy began */
    int64_t close_deadline_ms;

    counters_t c;

    /* The thread's own: */
    int down; /* Redis is not connected (a line was logged) */
    int64_t next_connect_ms, connected_ms;
    int backoff_ms;
    unsigned rand_state;
    k2r_buf_t bytes;
    k2r_publish_t *items;
    size_t cap_items;
    size_t *offs; /* each item's channel and message offsets in `bytes` */
    size_t cap_offs;
    int64_t next_summary_ms;
    counters_t last;       /* the counters at the last summary */
    uint64_t final_cpu_us; /* the thread's CPU time when it ended */
};

static void count(uint64_t *counter, uint64_t n) {
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static uint64_t read_counter(const uint64_t *counter) {
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- logging */

static void default_log(void *opaque, int level, const char *line) {
    static const char *const names[8] = {"emerg", "alert",  "crit", "error",
                                         "warn",  "notice", "info", "debug"};
    (void)opaque;
    fprintf(stderr, "k2r-shim: %s: %s\n", names[level & 7], line);
}

static void shim_log(const k2r_shim_t *shim, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void shim_log(const k2r_shim_t *shim, int level, const char *fmt, ...) {
    char line[1024];
    va_list ap;

    if (level >= 7 && !shim->debug)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    shim->log(shim->log_opaque, level, line);
}

/* ------------------------------------------------------------ producer side */

int k2r_shim_publish(k2r_shim_t *shim, const k2r_shim_record_t *rec) {
    size_t tlen, need, hbytes = 0;
    qrec_t *q;
    char *p;
    int wake;

    if (!rec || !rec->topic) {
        count(&shim->c.errors, 1); /* a caller's mistake, counted rather than a crash */
        return K2R_SHIM_DROPPED;
    }
    if (rec->offset < 0) {
        /* acks=0, or a record acknowledged implicitly by a later batch: its
         * offset is unknown, so its notification (meta.offset, the dedupe
         * identity) cannot be the bridge's. The bridge publishes it. */
        count(&shim->c.dropped_no_offset, 1);
        return K2R_SHIM_DROPPED;
    }
    tlen = strlen(rec->topic) + 1;
    for (size_t i = 0; i < rec->nheaders; i++)
        hbytes += strlen(rec->headers[i].name) + 1 + rec->headers[i].value_len;
    need = sizeof(*q) + rec->nheaders * sizeof(q->hdrs[0]) + tlen + rec->key_len + rec->value_len +
           hbytes;
    /* A cheap look before the allocation; the decision is taken under the lock. */
    if (__atomic_load_n(&shim->nrecords, __ATOMIC_RELAXED) >= shim->max_records ||
        need > shim->max_bytes) {
        count(&shim->c.dropped_queue_full, 1);
        return K2R_SHIM_DROPPED;
    }
    q = malloc(need);
    if (!q) {
        count(&shim->c.errors, 1);
        return K2R_SHIM_DROPPED;
    }
    q->next = NULL;
    q->bytes = need;
    p = (char *)&q->hdrs[rec->nheaders];
    memcpy(p, rec->topic, tlen);
    q->view.topic = p;
    p += tlen;
    q->view.partition = rec->partition;
    q->view.offset = rec->offset;
    q->view.timestamp = rec->timestamp;
    q->view.tstype = rec->tstype == K2R_SHIM_TS_CREATE       ? K2R_MSGVIEW_TS_CREATE
                     : rec->tstype == K2R_SHIM_TS_LOG_APPEND ? K2R_MSGVIEW_TS_LOG_APPEND
                                                             : K2R_MSGVIEW_TS_NONE;
    q->view.key = NULL;
    q->view.key_len = 0;
    if (rec->key) {
        if (rec->key_len)
            memcpy(p, rec->key, rec->key_len);
        q->view.key = p;
        q->view.key_len = rec->key_len;
        p += rec->key_len;
    }
    q->view.value = NULL;
    q->view.value_len = 0;
    if (rec->value) {
        if (rec->value_len)
            memcpy(p, rec->value, rec->value_len);
        q->view.value = p;
        q->view.value_len = rec->value_len;
        p += rec->value_len;
    }
    for (size_t i = 0; i < rec->nheaders; i++) {
        size_t nlen = strlen(rec->headers[i].name) + 1;

        memcpy(p, rec->headers[i].name, nlen);
        q->hdrs[i].name = p;
        p += nlen;
        q->hdrs[i].value = NULL;
        q->hdrs[i].value_len = 0;
        if (rec->headers[i].value) {
            if (rec->headers[i].value_len)
                memcpy(p, rec->headers[i].value, rec->headers[i].value_len);
            q->hdrs[i].value = p;
            q->hdrs[i].value_len = rec->headers[i].value_len;
            p += rec->headers[i].value_len;
        }
    }
    q->view.headers = rec->nheaders ? q->hdrs : NULL;
    q->view.nheaders = rec->nheaders;

    pthread_mutex_lock(&shim->lock);
    if (shim->closing || shim->nrecords >= shim->max_records ||
        shim->nbytes + need > shim->max_bytes) {
        pthread_mutex_unlock(&shim->lock);
        free(q);
        count(&shim->c.dropped_queue_full, 1);
        return K2R_SHIM_DROPPED;
    }
    if (shim->tail)
        shim->tail->next = q;
    else
        shim->head = q;
    shim->tail = q;
    __atomic_store_n(&shim->nrecords, shim->nrecords + 1, __ATOMIC_RELAXED);
    shim->nbytes += need;
    shim->seq_in++;
    wake = shim->waiting;
    shim->waiting = 0;
    pthread_mutex_unlock(&shim->lock);
    if (wake)
        pthread_cond_signal(&shim->wake);
    count(&shim->c.enqueued, 1);
    return K2R_SHIM_QUEUED;
}

/* ----------------------------------------------------------------- redis */

static void schedule_reconnect(k2r_shim_t *shim) {
    int64_t now = k2r_now_ms();

    if (shim->connected_ms && now - shim->connected_ms >= BACKOFF_RESET_MS)
        shim->backoff_ms = shim->cfg->redis.backoff_initial_ms;
    shim->connected_ms = 0;
    shim->next_connect_ms =
        now + k2r_backoff_jitter(shim->backoff_ms, (unsigned)rand_r(&shim->rand_state));
    shim->backoff_ms = k2r_backoff_next(shim->backoff_ms, shim->cfg->redis.backoff_max_ms);
}

static void redis_failed(k2r_shim_t *shim, const char *what, const char *errstr) {
    if (!shim->down)
        shim_log(shim, 4,
                 "redis: %s: %s; notifications are dropped (counted; the bridge delivers them) "
                 "until it answers, retrying with backoff up to %d ms",
                 what, errstr, shim->cfg->redis.backoff_max_ms);
    else
        shim_log(shim, 7, "redis: still unavailable: %s: %s", what, errstr);
    shim->down = 1;
    schedule_reconnect(shim);
}

/* Connects when it is time to try; returns 1 when connected. */
static int ensure_connected(k2r_shim_t *shim, int64_t deadline_ms) {
    char errstr[512];
    int rc;

    if (k2r_redis_connected(shim->redis))
        return 1;
    if (k2r_now_ms() < shim->next_connect_ms)
        return 0;
    rc = k2r_redis_connect_by(shim->redis, deadline_ms, errstr, sizeof(errstr));
    if (rc != 0) {
        if (rc == K2R_ERR_AUTH || rc == K2R_ERR_TLS) {
            /* Retrying with the same settings cannot help; the bridge stops
             * on this, the shim must not stop its host: it says so and
             * tries again only at the longest backoff. */
            shim_log(shim, 3, "redis: %s (%s); check the redis: settings", errstr,
                     rc == K2R_ERR_AUTH ? "refused the credentials" : "TLS");
            shim->down = 1;
            shim->connected_ms = 0;
            shim->next_connect_ms = k2r_now_ms() + shim->cfg->redis.backoff_max_ms;
            return 0;
        }
        redis_failed(shim, "connect", errstr);
        return 0;
    }
    count(&shim->c.redis_connects, 1);
    shim->connected_ms = k2r_now_ms();
    shim_log(shim, shim->down ? 6 : 7, "redis: connected to %s%s", k2r_redis_addr(shim->redis),
             shim->down ? " again" : "");
    shim->down = 0;
    return 1;
}

/* 1 when an error reply describes the server, not the command (as the
 * bridge's bridge_publish.c decides): the connection is given up. */
static int server_state_error(const char *error) {
    static const char *const codes[] = {"LOADING ",  "BUSY ",     "MASTERDOWN ",
                                        "TRYAGAIN ", "READONLY ", "CLUSTERDOWN "};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strncmp(error, codes[i], strlen(codes[i])) == 0)
            return 1;
    return 0;
}

/* -------------------------------------------------------------- the batch */

/* Maps the records of `batch` into shim->items; returns how many items. */
static size_t map_batch(k2r_shim_t *shim, qrec_t *batch) {
    int64_t now = k2r_wall_ms();
    size_t n = 0;
    uint64_t skipped = 0, stale = 0, errors = 0;

    shim->bytes.len = 0;
    for (qrec_t *q = batch; q; q = q->next) {
        k2r_mapping_t m;

        if (k2r_array_reserve(&shim->items, &shim->cap_items, n + K2R_FANOUT_MAX,
                              sizeof(*shim->items), 1024) != 0 ||
            k2r_array_reserve(&shim->offs, &shim->cap_offs, 2 * (n + K2R_FANOUT_MAX),
                              sizeof(*shim->offs), 2048) != 0 ||
            k2r_rules_map(shim->rules, shim->json, &q->view, &shim->bytes, &m) != 0) {
            errors++;
            continue;
        }
        if (m.skip != K2R_SKIP_NONE)
            skipped++;
        if (m.action == K2R_ACTION_STOP)
            continue; /* the bridge publishes nothing of it either */
        for (size_t k = 0; k < m.npublish; k++) {
            k2r_publish_t *it = &shim->items[n];

            if (m.publish[k].max_age_ms > 0 && q->view.timestamp >= 0 &&
                q->view.timestamp <= INT64_MAX - m.publish[k].max_age_ms &&
                q->view.timestamp + m.publish[k].max_age_ms < now) {
                stale++;
                continue;
            }
            memset(it, 0, sizeof(*it));
            /* Offsets for now: the buffer may still move. */
            shim->offs[2 * n] = m.publish[k].channel_off;
            shim->offs[2 * n + 1] = m.publish[k].message_off;
            it->channel_len = m.publish[k].channel_len;
            it->message_len = m.publish[k].message_len;
            it->status = K2R_PUBLISH_PENDING;
            it->dd_topic = q->view.topic;
            it->dd_partition = q->view.partition;
            it->dd_offset = q->view.offset;
            it->dd_index = (uint32_t)k;
            it->history_maxlen = m.publish[k].history_maxlen;
            it->history_ttl_ms = m.publish[k].history_ttl_ms;
            n++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        shim->items[i].channel = shim->bytes.data + shim->offs[2 * i];
        shim->items[i].message = shim->bytes.data + shim->offs[2 * i + 1];
    }
    count(&shim->c.skipped_by_rules, skipped);
    count(&shim->c.dropped_stale, stale);
    count(&shim->c.errors, errors);
    return n;
}

/* Publishes the n items; what is not answered is dropped and counted. */
static void publish_items(k2r_shim_t *shim, size_t n, int closing, int64_t close_deadline_ms) {
    k2r_redis_wait_t wait = {PUBLISH_SLICE_MS, -1};
    char errstr[512];
    uint64_t published = 0, suppressed = 0, errors = 0, dropped = 0;
    int rc, server_state = 0;

    if (!ensure_connected(shim, closing ? close_deadline_ms : INT64_MAX)) {
        count(&shim->c.dropped_redis, n);
        return;
    }
    errstr[0] = '\0';
    for (;;) {
        rc = k2r_redis_publish(shim->redis, shim->items, n, &wait, errstr, sizeof(errstr));
        if (rc != K2R_REDIS_AGAIN)
            break;
        if (!closing) {
            pthread_mutex_lock(&shim->lock);
            closing = shim->closing;
            close_deadline_ms = shim->close_deadline_ms;
            pthread_mutex_unlock(&shim->lock);
        }
        if (closing && k2r_now_ms() >= close_deadline_ms) {
            k2r_redis_disconnect(shim->redis);
            snprintf(errstr, sizeof(errstr), "closing: flush_timeout_ms passed");
            rc = -1;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const k2r_publish_t *it = &shim->items[i];

        if (it->status == K2R_PUBLISH_OK) {
            if (it->suppressed)
                suppressed++;
            else
                published++;
        } else if (it->status == K2R_PUBLISH_ERROR) {
            if (server_state_error(it->error)) {
                if (!server_state)
                    snprintf(errstr, sizeof(errstr), "the server answered %s", it->error);
                server_state = 1;
                dropped++;
            } else {
                if (!errors)
                    shim_log(shim, 7, "redis: refused %.*s: %s",
                             (int)(it->channel_len > 64 ? 64 : it->channel_len), it->channel,
                             it->error);
                errors++;
            }
        } else {
            dropped++;
        }
    }
    count(&shim->c.published, published);
    count(&shim->c.suppressed, suppressed);
    count(&shim->c.errors, errors);
    count(&shim->c.dropped_redis, dropped);
    if (rc != 0 || server_state) {
        k2r_redis_disconnect(shim->redis);
        redis_failed(shim, "publish", errstr);
    }
}

static void free_batch(qrec_t *batch) {
    while (batch) {
        qrec_t *next = batch->next;
        free(batch);
        batch = next;
    }
}

/* One line at most every SUMMARY_MS when anything was dropped since the last. */
static void summary(k2r_shim_t *shim, int force) {
    counters_t now = {0};
    uint64_t full, redis, stale, noff, errs;
    int64_t t = k2r_now_ms();

    if (!force && t < shim->next_summary_ms)
        return;
    now.dropped_queue_full = read_counter(&shim->c.dropped_queue_full);
    now.dropped_redis = read_counter(&shim->c.dropped_redis);
    now.dropped_stale = read_counter(&shim->c.dropped_stale);
    now.dropped_no_offset = read_counter(&shim->c.dropped_no_offset);
    now.errors = read_counter(&shim->c.errors);
    full = now.dropped_queue_full - shim->last.dropped_queue_full;
    redis = now.dropped_redis - shim->last.dropped_redis;
    stale = now.dropped_stale - shim->last.dropped_stale;
    noff = now.dropped_no_offset - shim->last.dropped_no_offset;
    errs = now.errors - shim->last.errors;
    if (full + redis + stale + noff + errs == 0)
        return;
    shim_log(shim, 4,
             "dropped since the last line: %llu record(s) at a full queue, %llu notification(s) "
             "with Redis unavailable, %llu stale, %llu record(s) without an offset, %llu "
             "error(s); in all: %llu, %llu, %llu, %llu, %llu (the bridge delivers what the shim "
             "drops)",
             (unsigned long long)full, (unsigned long long)redis, (unsigned long long)stale,
             (unsigned long long)noff, (unsigned long long)errs,
             (unsigned long long)now.dropped_queue_full, (unsigned long long)now.dropped_redis,
             (unsigned long long)now.dropped_stale, (unsigned long long)now.dropped_no_offset,
             (unsigned long long)now.errors);
    shim->last = now;
    shim->next_summary_ms = t + SUMMARY_MS;
}

/* CPU time of a thread's clock, in microseconds (0 when unknown). */
static uint64_t thread_cpu_us(clockid_t clock) {
    struct timespec ts;

    if (clock_gettime(clock, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Maps and publishes one chunk of taken records, then accounts for them. */
static void process(k2r_shim_t *shim, qrec_t *batch, size_t nrec, size_t nbytes) {
    size_t n = map_batch(shim, batch);
    int closing;
    int64_t close_deadline_ms;

    pthread_mutex_lock(&shim->lock);
    closing = shim->closing;
    close_deadline_ms = shim->close_deadline_ms;
    pthread_mutex_unlock(&shim->lock);
    if (n) {
        if (closing && k2r_now_ms() >= close_deadline_ms)
            count(&shim->c.dropped_redis, n);
        else
            publish_items(shim, n, closing, close_deadline_ms);
    }
    free_batch(batch);
    pthread_mutex_lock(&shim->lock);
    __atomic_store_n(&shim->nrecords, shim->nrecords - nrec, __ATOMIC_RELAXED);
    shim->nbytes -= nbytes;
    shim->seq_done += nrec;
    pthread_cond_broadcast(&shim->flushed);
    pthread_mutex_unlock(&shim->lock);
}

/*
 * The thread. Idle, it sleeps until a producer wakes it (the `waiting`
 * flag), or IDLE_WAKE_MS for idle PINGs and reconnects. Busy (records came
 * within ACTIVE_MS), it looks at the queue every POLL_US instead and no
 * producer wakes it: a wake-up per record would cost the producer's
 * delivery thread a system call each, and the thread a context switch,
 * where a look every quarter millisecond takes whole bursts at once.
 */
static void *run(void *arg) {
    k2r_shim_t *shim = arg;
    int64_t active_until = 0;

    for (;;) {
        qrec_t *all;
        int closing;

        pthread_mutex_lock(&shim->lock);
        if (!shim->head && !shim->closing) {
            if (k2r_now_ms() < active_until) {
                struct timespec nap = {0, POLL_US * 1000L};

                pthread_mutex_unlock(&shim->lock);
                nanosleep(&nap, NULL);
                pthread_mutex_lock(&shim->lock);
            } else {
                struct timespec ts;
                int64_t wake_ms = k2r_now_ms() + IDLE_WAKE_MS;

                /* CLOCK_MONOTONIC, as the condition variable was made. */
                ts.tv_sec = (time_t)(wake_ms / 1000);
                ts.tv_nsec = (long)(wake_ms % 1000) * 1000000L;
                shim->waiting = 1;
                pthread_cond_timedwait(&shim->wake, &shim->lock, &ts);
                shim->waiting = 0;
            }
        }
        /* Everything queued, in one step; processed in chunks below. */
        all = shim->head;
        shim->head = shim->tail = NULL;
        closing = shim->closing;
        pthread_mutex_unlock(&shim->lock);

        if (all) {
            active_until = k2r_now_ms() + ACTIVE_MS;
            while (all) {
                qrec_t *batch = all, *last = all;
                size_t nrec = 1, nbytes = all->bytes;

                while (last->next && nrec < BATCH_MAX) {
                    last = last->next;
                    nrec++;
                    nbytes += last->bytes;
                }
                all = last->next;
                last->next = NULL;
                process(shim, batch, nrec, nbytes);
            }
        } else if (closing) {
            break;
        } else if (k2r_redis_connected(shim->redis)) {
            char errstr[512];
            if (k2r_redis_tick(shim->redis, errstr, sizeof(errstr)) != 0)
                redis_failed(shim, "idle check", errstr);
        } else {
            /* Connected before the first record needs it, and again after
             * an outage, at the backoff's pace. */
            ensure_connected(shim, INT64_MAX);
        }
        summary(shim, 0);
    }
    summary(shim, 1);
    shim->final_cpu_us = thread_cpu_us(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
}

/* ------------------------------------------------------------ life cycle */

static const char *env_lookup(const char *name) {
    return getenv(name);
}

const char *k2r_shim_version(void) {
#ifdef K2R_VERSION
    return "kafka-redis-bridge shim " K2R_VERSION;
#else
    return "kafka-redis-bridge shim";
#endif
}

k2r_shim_t *k2r_shim_new(const char *path, const k2r_shim_opts_t *opts, char *errstr,
                         size_t errstr_size) {
    k2r_errors_t errs = {NULL, 0, 0};
    k2r_redis_conf_t rconf;
    pthread_condattr_t attr;
    k2r_shim_t *shim;

    if (!path || !*path) {
        snprintf(errstr, errstr_size, "no config file given (k2r.config)");
        return NULL;
    }
    shim = calloc(1, sizeof(*shim));
    if (!shim) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    shim->max_records = opts && opts->queue_records ? opts->queue_records : DEFAULT_QUEUE_RECORDS;
    shim->max_bytes = opts && opts->queue_bytes ? opts->queue_bytes : DEFAULT_QUEUE_BYTES;
    shim->flush_timeout_ms =
        opts && opts->flush_timeout_ms ? opts->flush_timeout_ms : DEFAULT_FLUSH_MS;
    if (shim->flush_timeout_ms < 0)
        shim->flush_timeout_ms = 0;
    shim->debug = opts ? opts->debug : 0;
    shim->log = opts && opts->log ? opts->log : default_log;
    shim->log_opaque = opts ? opts->log_opaque : NULL;
    shim->rand_state = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)shim;
    /* The core's own lines (the sink's debug lines, a TLS warning) go to
     * stderr as text: this process is not the bridge. */
    k2r_log_set_format(0);
    k2r_log_level = shim->debug ? K2R_LOG_DEBUG : K2R_LOG_WARN;

    shim->rules = k2r_rules_load(path, env_lookup, &errs, &shim->cfg);
    if (!shim->rules) {
        if (errs.count > 1)
            snprintf(errstr, errstr_size, "%s (and %zu more error(s))", errs.lines[0],
                     errs.count - 1);
        else
            snprintf(errstr, errstr_size, "%s", errs.count ? errs.lines[0] : "cannot load");
        k2r_errors_clear(&errs);
        free(shim);
        return NULL;
    }
    k2r_errors_clear(&errs);
    memset(&rconf, 0, sizeof(rconf));
    k2r_config_redis_conf(shim->cfg, &rconf);
    shim->redis = k2r_redis_new(&rconf, errstr, errstr_size);
    shim->json = k2r_json_new();
    if (!shim->redis || !shim->json) {
        if (shim->redis && !shim->json)
            snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    shim->backoff_ms = shim->cfg->redis.backoff_initial_ms;
    shim->next_summary_ms = k2r_now_ms();

    pthread_mutex_init(&shim->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&shim->wake, &attr);
    pthread_cond_init(&shim->flushed, &attr);
    pthread_condattr_destroy(&attr);
    {
        /* The thread must not take the host's signals (kcat's SIGINT). */
        sigset_t all, old;
        int err;

        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        err = pthread_create(&shim->thread, NULL, run, shim);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err != 0) {
            snprintf(errstr, errstr_size, "cannot start a thread: %s", strerror(err));
            pthread_cond_destroy(&shim->wake);
            pthread_cond_destroy(&shim->flushed);
            pthread_mutex_destroy(&shim->lock);
            goto fail;
        }
    }
    shim->started = 1;
    pthread_setname_np(shim->thread, "k2r-shim"); /* for top -H; failing is harmless */
    shim_log(shim, 7, "%s: %zu rule(s) from %s, queue of %zu records / %zu bytes",
             k2r_shim_version(), k2r_rules_count(shim->rules), path, shim->max_records,
             shim->max_bytes);
    return shim;

fail:
    k2r_json_destroy(shim->json);
    k2r_redis_destroy(shim->redis);
    k2r_rules_destroy(shim->rules);
    k2r_config_destroy(shim->cfg);
    free(shim);
    return NULL;
}

void k2r_shim_stats(k2r_shim_t *shim, k2r_shim_stats_t *out) {
    memset(out, 0, sizeof(*out));
    out->enqueued = read_counter(&shim->c.enqueued);
    out->dropped_queue_full = read_counter(&shim->c.dropped_queue_full);
    out->dropped_no_offset = read_counter(&shim->c.dropped_no_offset);
    out->skipped_by_rules = read_counter(&shim->c.skipped_by_rules);
    out->published = read_counter(&shim->c.published);
    out->suppressed = read_counter(&shim->c.suppressed);
    out->dropped_redis = read_counter(&shim->c.dropped_redis);
    out->dropped_stale = read_counter(&shim->c.dropped_stale);
    out->errors = read_counter(&shim->c.errors);
    out->redis_connects = read_counter(&shim->c.redis_connects);
    if (shim->joined) {
        out->thread_cpu_us = shim->final_cpu_us;
    } else if (shim->started) {
        clockid_t clock;
        if (pthread_getcpuclockid(shim->thread, &clock) == 0)
            out->thread_cpu_us = thread_cpu_us(clock);
    }
    pthread_mutex_lock(&shim->lock);
    out->queued_records = shim->nrecords;
    out->queued_bytes = shim->nbytes;
    pthread_mutex_unlock(&shim->lock);
}

int k2r_shim_flush(k2r_shim_t *shim, int timeout_ms) {
    int64_t deadline = k2r_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    struct timespec ts;
    uint64_t target;
    int done;

    ts.tv_sec = (time_t)(deadline / 1000);
    ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
    pthread_mutex_lock(&shim->lock);
    target = shim->seq_in;
    while (shim->seq_done < target && k2r_now_ms() < deadline)
        if (pthread_cond_timedwait(&shim->flushed, &shim->lock, &ts) == ETIMEDOUT)
            break;
    done = shim->seq_done >= target;
    pthread_mutex_unlock(&shim->lock);
    return done ? 0 : -1;
}

void k2r_shim_close(k2r_shim_t *shim) {
    if (!shim->started || shim->joined)
        return;
    pthread_mutex_lock(&shim->lock);
    shim->closing = 1;
    shim->close_deadline_ms = k2r_now_ms() + shim->flush_timeout_ms;
    pthread_mutex_unlock(&shim->lock);
    pthread_cond_signal(&shim->wake);
    pthread_join(shim->thread, NULL);
    shim->joined = 1;
}

void k2r_shim_destroy(k2r_shim_t *shim) {
    if (!shim)
        return;
    k2r_shim_close(shim);
    if (shim->started) {
        pthread_cond_destroy(&shim->wake);
        pthread_cond_destroy(&shim->flushed);
        pthread_mutex_destroy(&shim->lock);
    }
    free_batch(shim->head);
    k2r_buf_free(&shim->bytes);
    free(shim->items);
    free(shim->offs);
    k2r_json_destroy(shim->json);
    k2r_redis_destroy(shim->redis);
    k2r_rules_destroy(shim->rules);
    k2r_config_destroy(shim->cfg);
    free(shim);
}
