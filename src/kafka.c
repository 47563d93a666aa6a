/*
 * kafka.c - the Kafka source, over librdkafka's high-level consumer.
 *
 * The shape follows kcat's consumer and librdkafka's examples/consumer.c:
 * consumer_poll in the caller's loop, a rebalance callback that assigns and
 * unassigns incrementally under the cooperative protocol (and eagerly under
 * the others, should a user choose one), consumer_close to commit and leave.
 *
 * Offsets: enable.auto.offset.store is false, so nothing is committed for a
 * record until the bridge stored its offset, which it does only after Redis
 * answered. Auto-commit stays on and commits the stored offsets periodically
 * and at close. On a revocation the stored offsets are committed synchronously
 * before the partitions go, so the next owner starts where we stopped.
 */
#include "k2r/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "k2r/log.h"

struct k2r_kafka_s {
    rd_kafka_t *rk;
    k2r_kafka_revoke_fn revoke;
    void *opaque;
    int paused;
    int closed;
    unsigned long rebalances;
    k2r_ratelimit_t err_rl;
};

/* librdkafka log lines (syslog levels) into the bridge's logger. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    k2r_log_level_t l = level <= LOG_ERR       ? K2R_LOG_ERROR
                        : level <= LOG_WARNING ? K2R_LOG_WARN
                        : level <= LOG_INFO    ? K2R_LOG_INFO
                                               : K2R_LOG_DEBUG;
    (void)rk;
    k2r_log(l, "kafka: %s: %s", fac, buf);
}

/* Errors librdkafka raises outside of any record (broker down, auth, ...). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk;
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        k2r_log_error("kafka: fatal error: %s", reason);
    else
        k2r_log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void log_parts(const char *what, const rd_kafka_topic_partition_list_t *parts) {
    char line[1024];
    size_t n = 0;

    line[0] = '\0';
    for (int i = 0; i < parts->cnt && n < sizeof(line) - 1; i++) {
        int w = snprintf(line + n, sizeof(line) - n, "%s%s[%d]", i ? " " : "",
                         parts->elems[i].topic, (int)parts->elems[i].partition);
        n += w < 0 ? 0 : (size_t)w;
    }
    k2r_log_info("kafka: %s %d partition(s): %s", what, parts->cnt, line);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    k2r_kafka_t *kafka = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;

    kafka->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_parts("assigned", parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            ret = rd_kafka_assign(rk, parts);
        /* Partitions that arrive during an outage must not start fetching. */
        if (!error && !ret && kafka->paused)
            rd_kafka_pause_partitions(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        int lost = rd_kafka_assignment_lost(rk);

        log_parts(lost ? "lost" : "revoked", parts);
        if (kafka->revoke)
            kafka->revoke(kafka->opaque, parts, lost);
        if (!lost) {
            /* Commit what was stored so the next owner does not repeat it. */
            rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, parts, 0);
            if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                k2r_log_warn("kafka: commit on revoke failed: %s", rd_kafka_err2str(cerr));
        }
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            ret = rd_kafka_assign(rk, NULL);
    } else {
        k2r_log_error("kafka: rebalance failed: %s", rd_kafka_err2str(err));
        ret = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        k2r_log_error("kafka: assignment failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (ret) {
        k2r_log_error("kafka: assignment failed: %s", rd_kafka_err2str(ret));
    }
}

static int set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
               size_t errstr_size) {
    char why[512];

    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka property %s: %s", name, why);
        return -1;
    }
    return 0;
}

k2r_kafka_t *k2r_kafka_new(const k2r_config_t *cfg, k2r_kafka_revoke_fn revoke, void *opaque,
                           char *errstr, size_t errstr_size) {
    const k2r_kafka_conf_t *kc = &cfg->kafka;
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_resp_err_t err;
    k2r_kafka_t *kafka = calloc(1, sizeof(*kafka));

    if (!kafka) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    kafka->revoke = revoke;
    kafka->opaque = opaque;
    kafka->err_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);

    /* Defaults a user may override, then the user's properties, then what
     * the bridge's guarantees depend on, which nobody overrides. */
    if (set(conf, "client.id", "kafka-redis-bridge", errstr, errstr_size) ||
        set(conf, "partition.assignment.strategy", "cooperative-sticky", errstr, errstr_size) ||
        set(conf, "log.connection.close", "false", errstr, errstr_size))
        goto fail;
    for (size_t i = 0; i < kc->nproperties; i++)
        if (set(conf, kc->properties[i].name, kc->properties[i].value, errstr, errstr_size))
            goto fail;
    if (set(conf, "bootstrap.servers", kc->brokers, errstr, errstr_size) ||
        set(conf, "group.id", kc->group_id, errstr, errstr_size) ||
        set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        set(conf, "enable.partition.eof", "false", errstr, errstr_size))
        goto fail;

    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, kafka);

    kafka->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!kafka->rk)
        goto fail;
    conf = NULL; /* now owned by rk */
    rd_kafka_poll_set_consumer(kafka->rk);

    topics = rd_kafka_topic_partition_list_new((int)kc->ntopics);
    for (size_t i = 0; i < kc->ntopics; i++)
        rd_kafka_topic_partition_list_add(topics, kc->topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(kafka->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    return kafka;

fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (kafka && kafka->rk)
        rd_kafka_destroy(kafka->rk);
    free(kafka);
    return NULL;
}

rd_kafka_message_t *k2r_kafka_poll(k2r_kafka_t *kafka, int timeout_ms) {
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(kafka->rk, timeout_ms);
    uint64_t suppressed;

    if (!msg || !msg->err)
        return msg;
    if (k2r_log_ratelimit(&kafka->err_rl, &suppressed)) {
        const char *topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "-";
        k2r_log_warn("kafka: consumer error on %s[%d]: %s (%llu similar suppressed)", topic,
                     (int)msg->partition, rd_kafka_message_errstr(msg),
                     (unsigned long long)suppressed);
    }
    rd_kafka_message_destroy(msg);
    return NULL;
}

int k2r_kafka_store(k2r_kafka_t *kafka, const char *topic, int32_t partition, int64_t next_offset) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = next_offset;
    err = rd_kafka_offsets_store(kafka->rk, parts);
    if (!err)
        err = parts->elems[0].err;
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        k2r_log_debug("kafka: storing offset %lld for %s[%d] refused: %s", (long long)next_offset,
                      topic, (int)partition, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

void k2r_kafka_pause(k2r_kafka_t *kafka, int pause) {
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (kafka->paused == !!pause)
        return;
    kafka->paused = !!pause;
    if (rd_kafka_assignment(kafka->rk, &parts) || !parts)
        return;
    if (pause)
        rd_kafka_pause_partitions(kafka->rk, parts);
    else
        rd_kafka_resume_partitions(kafka->rk, parts);
    k2r_log_info("kafka: %s %d partition(s)", pause ? "paused" : "resumed", parts->cnt);
    rd_kafka_topic_partition_list_destroy(parts);
}

int k2r_kafka_paused(const k2r_kafka_t *kafka) {
    return kafka->paused;
}

unsigned long k2r_kafka_rebalances(const k2r_kafka_t *kafka) {
    return kafka->rebalances;
}

void k2r_kafka_close(k2r_kafka_t *kafka) {
    rd_kafka_resp_err_t err;

    if (kafka->closed)
        return;
    kafka->closed = 1;
    err = rd_kafka_consumer_close(kafka->rk);
    if (err)
        k2r_log_warn("kafka: close: %s", rd_kafka_err2str(err));
    else
        k2r_log_info("kafka: committed and left the group");
}

void k2r_kafka_destroy(k2r_kafka_t *kafka) {
    if (!kafka)
        return;
    k2r_kafka_close(kafka);
    rd_kafka_destroy(kafka->rk);
    free(kafka);
}
