/*
 * kafka.h - the Kafka source: one consumer-group member reading the
 * configured topics.
 *
 * A thin layer over librdkafka's KafkaConsumer that fixes the settings the
 * bridge's guarantees rest on (offsets are stored only when the bridge says so,
 * cooperative-sticky assignment), routes librdkafka's log lines into the
 * bridge's logger, handles rebalances, and pauses or resumes every assigned
 * partition at once. It knows nothing of rules or Redis: the bridge tells it
 * which offsets are done and is told which partitions are taken away.
 */
#ifndef K2R_KAFKA_H
#define K2R_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "k2r/config.h"

typedef struct k2r_kafka_s k2r_kafka_t;

/*
 * Called from inside k2r_kafka_poll() when partitions are about to be taken
 * away (`lost` = 1 when the group already gave them to another member, so
 * committing is pointless). The callee must forget every unfinished record of
 * those partitions; their offsets are not stored, so whoever owns them next
 * reads them again.
 */
typedef void (*k2r_kafka_revoke_fn)(void *opaque, const rd_kafka_topic_partition_list_t *parts,
                                    int lost);

/*
 * Creates the consumer and subscribes to cfg->kafka.topics. Returns a new
 * source, or NULL with the reason in errstr. `cfg` is not retained. Nothing
 * blocks here: brokers are contacted in the background.
 */
k2r_kafka_t *k2r_kafka_new(const k2r_config_t *cfg, k2r_kafka_revoke_fn revoke, void *opaque,
                           char *errstr, size_t errstr_size);

/*
 * Waits up to timeout_ms for the next record and returns it (the caller
 * releases it with rd_kafka_message_destroy), or NULL when none came. Serves
 * rebalances and logs consumer errors (which are not returned).
 */
rd_kafka_message_t *k2r_kafka_poll(k2r_kafka_t *kafka, int timeout_ms);

/*
 * Stores `next_offset` (the offset of the next record to read) for a partition,
 * to be committed with the next periodic or final commit. Returns 0, or -1
 * when librdkafka refused (e.g. the partition is no longer assigned).
 */
int k2r_kafka_store(k2r_kafka_t *kafka, const char *topic, int32_t partition, int64_t next_offset);

/* Pauses (1) or resumes (0) fetching on every assigned partition, also on
 * partitions assigned later while paused. */
void k2r_kafka_pause(k2r_kafka_t *kafka, int pause);

/* 1 while paused. */
int k2r_kafka_paused(const k2r_kafka_t *kafka);

/* Number of rebalances seen (assignments plus revocations). */
unsigned long k2r_kafka_rebalances(const k2r_kafka_t *kafka);

/* Commits what was stored and leaves the group. Safe to call once before destroy. */
void k2r_kafka_close(k2r_kafka_t *kafka);

/* Closes (if not yet closed) and releases the consumer; NULL does nothing. */
void k2r_kafka_destroy(k2r_kafka_t *kafka);

#endif
