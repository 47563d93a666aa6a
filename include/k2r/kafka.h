/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka.h - the Kafka source: one consumer-group member reading the
 * configured topics.
 *
 * A thin layer over librdkafka's KafkaConsumer that fixes the settings the
 * bridge's guarantees rest on (offsets are stored only when the bridge says so,
 * eager assignment by default), routes librdkafka's log lines into the
 * bridge's logger, handles rebalances, and pauses or resumes every assigned
 * partition at once. A partition can also be stopped on its own: it stays
 * paused whatever the global pause does, until it is revoked.
 *
 * When a rule sends records to a dead-letter topic, the source also owns an
 * idempotent producer (acks=all) for that topic, and reports each delivery
 * back to the bridge by an id the bridge chose.
 *
 * It knows nothing of rules or Redis: the bridge tells it which offsets are
 * done, which records to dead-letter and why, and is told which partitions are
 * taken away and which dead letters were delivered.
 */
#ifndef K2R_KAFKA_H
#define K2R_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "k2r/config.h"
#include "k2r/msgview.h"

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
 * Called from inside k2r_kafka_poll() for each partition the group assigns,
 * before it is fetched. `reset` is 1 when the partition's committed offset
 * lay beyond its high watermark (the topic was deleted and created again, or
 * the broker lost records): a warning named it, and the partition starts
 * where auto.offset.reset says instead (earliest: the beginning; latest: the
 * end; error: left to librdkafka, which reports the offset out of range).
 */
typedef void (*k2r_kafka_assign_fn)(void *opaque, const char *topic, int32_t partition, int reset);

/*
 * Called from inside k2r_kafka_dead_letter_poll() (and k2r_kafka_destroy())
 * with the outcome of one k2r_kafka_dead_letter(): `err` is 0 once the broker
 * acknowledged the record (acks=all), else why it was given up.
 */
typedef void (*k2r_kafka_delivery_fn)(void *opaque, uint64_t id, rd_kafka_resp_err_t err);

/*
 * Called from inside k2r_kafka_poll() with one librdkafka statistics JSON
 * document (every statistics.interval.ms, 15 s unless kafka.properties says
 * otherwise); `json` is valid only during the call.
 */
typedef void (*k2r_kafka_stats_fn)(void *opaque, const char *json, size_t len);

/*
 * Creates the consumer and subscribes to cfg->kafka.topics. Returns a new
 * source, or NULL with the reason in errstr. `cfg` is not retained. Nothing
 * blocks here: brokers are contacted in the background.
 */
k2r_kafka_t *k2r_kafka_new(const k2r_config_t *cfg, k2r_kafka_revoke_fn revoke,
                           k2r_kafka_stats_fn stats, void *opaque, char *errstr,
                           size_t errstr_size);

/*
 * The start-up line's text for librdkafka error `err` with `reason`, into
 * `out`: a broker certificate that failed verification is named with
 * OpenSSL's own reason (`verify_error`, from the certificate callback for
 * broker host:port `verify_broker`, either may be empty), whichever way
 * librdkafka reported the failed handshake. Returns the error to report with
 * it. No I/O.
 */
int k2r_kafka_describe_error(int err, const char *reason, const char *verify_broker,
                             const char *verify_error, char *out, size_t size);

/* Sets the assignment callback (called with the opaque of k2r_kafka_new);
 * before the first k2r_kafka_poll(). */
void k2r_kafka_on_assign(k2r_kafka_t *kafka, k2r_kafka_assign_fn assign);

/*
 * Waits until some broker answers a metadata request, for up to timeout_ms
 * (or until *stop is set; `stop` may be NULL). Meanwhile librdkafka's failed
 * attempts (refused connections, SASL authentication, TLS handshakes, of the
 * consumer and of the dead-letter producer) are logged at debug level only.
 * Returns 0, or -1 with a one-line reason naming librdkafka's last error and,
 * for authentication and certificate failures, what to check ("no broker
 * answered within 30000 ms: Local: Broker transport failure:
 * 127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection
 * refused ..."; "...: Local: SSL error: ...: SSL handshake failed: certificate
 * verify failed: hostname mismatch (...); check ssl.ca.location ...").
 * Call it before the first k2r_kafka_poll: until it returned 0, librdkafka's
 * errors are not served by the consumer queue.
 */
int k2r_kafka_wait_brokers(k2r_kafka_t *kafka, int timeout_ms, volatile sig_atomic_t *stop,
                           char *errstr, size_t errstr_size);

/*
 * 1 when librdkafka raised a fatal error on the consumer (e.g. a static
 * member fenced by another with the same group.instance.id) or on the
 * dead-letter producer (idempotence broken), with the reason in errstr: the
 * client cannot go on, and the bridge must stop. Else 0.
 */
int k2r_kafka_fatal(const k2r_kafka_t *kafka, char *errstr, size_t errstr_size);

/*
 * Waits up to timeout_ms for the next record and returns it (the caller
 * releases it with rd_kafka_message_destroy), or NULL when none came. Serves
 * rebalances and logs consumer errors (which are not returned).
 */
rd_kafka_message_t *k2r_kafka_poll(k2r_kafka_t *kafka, int timeout_ms);

/*
 * Takes up to `max` records at once into msgs[] (each released by the caller
 * with rd_kafka_message_destroy, or k2r_kafka_release) and returns how many,
 * or 0 when none came within timeout_ms: it returns as soon as there is at
 * least one, waiting on the wake-up descriptor while the queue is empty. Like
 * k2r_kafka_poll it serves rebalances and logs consumer errors. One call
 * costs librdkafka's per-poll bookkeeping (clocks, the poll-interval
 * tracking) once for all of them. A record of a partition revoked during the
 * call, and no longer assigned, is released here instead of returned: it was
 * fetched before the revocation and is its next owner's.
 */
size_t k2r_kafka_poll_batch(k2r_kafka_t *kafka, int timeout_ms, rd_kafka_message_t **msgs,
                            size_t max);

/* A descriptor that becomes readable when the consumer has something to
 * serve (records, a rebalance, an error) after it was last polled: the loop
 * waits on it beside the Redis sockets. k2r_kafka_wake_clear empties it: the
 * loop does so once before it polls the queue (not per record: a byte left
 * over only costs one early wake-up). */
int k2r_kafka_wake_fd(const k2r_kafka_t *kafka);
void k2r_kafka_wake_clear(k2r_kafka_t *kafka);

/* How many records (and other events) librdkafka has queued for the next
 * polls: what it fetched ahead and the loop has not taken yet. */
size_t k2r_kafka_queued(const k2r_kafka_t *kafka);

/* librdkafka's queue holds up to this many batches of
 * limits.max_inflight_records (queued.min.messages, unless kafka.properties
 * sets it; kafka.c says why). */
#define K2R_QUEUED_BATCHES 5

/*
 * Fills *view from a record k2r_kafka_poll() returned: its fields and
 * headers, borrowed from `rkm` (valid until it is released), the headers
 * array from the source (valid until the next call). Returns 0, or -1 when
 * out of memory.
 */
int k2r_kafka_view(k2r_kafka_t *kafka, const rd_kafka_message_t *rkm, k2r_msgview_t *view);

/* Releases a record k2r_kafka_poll() returned (an rd_kafka_message_t *, as
 * the opaque handle the batch carries); NULL does nothing. */
void k2r_kafka_release(void *rkm);

/*
 * Stores `next_offset` (the offset of the next record to read) for a partition,
 * to be committed with the next periodic or final commit. Returns 0, or -1
 * when librdkafka refused (e.g. the partition is no longer assigned).
 */
int k2r_kafka_store(k2r_kafka_t *kafka, const char *topic, int32_t partition, int64_t next_offset);

/* Starts committing the stored offsets now (asynchronously), besides the
 * periodic auto-commit. */
void k2r_kafka_commit(k2r_kafka_t *kafka);

/* Pauses (1) or resumes (0) fetching on every assigned partition, also on
 * partitions assigned later while paused. Stopped partitions stay paused. */
void k2r_kafka_pause(k2r_kafka_t *kafka, int pause);

/*
 * Stops one partition: pauses it now and keeps it paused (k2r_kafka_pause(0)
 * leaves it alone) until the group takes it away, which forgets the stop: if
 * it is assigned again it is fetched again from its committed offset.
 * Returns 0, or -1 when out of memory (the partition is paused all the same).
 */
int k2r_kafka_stop_partition(k2r_kafka_t *kafka, const char *topic, int32_t partition);

/* 1 when the partition is stopped. */
int k2r_kafka_stopped(const k2r_kafka_t *kafka, const char *topic, int32_t partition);

/* Number of stopped partitions. */
size_t k2r_kafka_nstopped(const k2r_kafka_t *kafka);

/* 1 while paused. */
int k2r_kafka_paused(const k2r_kafka_t *kafka);

/* Number of rebalances seen (assignments plus revocations). */
unsigned long k2r_kafka_rebalances(const k2r_kafka_t *kafka);

/* Offset commits librdkafka reported done and failed, since start. */
void k2r_kafka_commits(const k2r_kafka_t *kafka, uint64_t *ok, uint64_t *failed);

/* Number of partitions assigned now. */
int k2r_kafka_assigned(const k2r_kafka_t *kafka);

/* 1 while the consumer is a member of its group (it has a member id). */
int k2r_kafka_joined(const k2r_kafka_t *kafka);

/*
 * Creates the dead-letter producer for cfg->kafka.dead_letter_topic (which
 * must be set): bootstrap.servers from cfg->kafka.brokers, the user's
 * kafka.properties (consumer-only ones are ignored by librdkafka; its warning
 * about them is logged at debug level), then enable.idempotence=true and
 * acks=all, which nobody overrides. `cfg` is not retained. Returns 0, or -1
 * with the reason in errstr. Once is enough: a second call returns 0.
 */
int k2r_kafka_dead_letter_open(k2r_kafka_t *kafka, const k2r_config_t *cfg,
                               k2r_kafka_delivery_fn delivered, char *errstr, size_t errstr_size);

/* 1 once k2r_kafka_dead_letter_open() succeeded. */
int k2r_kafka_dead_letter_ready(const k2r_kafka_t *kafka);

/*
 * Queues a copy of `rkm` (key, value, headers) for the dead-letter topic,
 * with these headers added (existing headers of the same names are
 * replaced): k2r.error.reason, k2r.error.detail, k2r.rule, k2r.source.topic,
 * k2r.source.partition, k2r.source.offset. `rule` may be NULL (the header is
 * then "-"). The outcome is reported later to the delivery callback with
 * `id`. With `stub`, the key, value and original headers are left out and
 * k2r.error.truncated gives the value's size: for a record too large for the
 * dead-letter topic, whose k2r.source.* headers still say where it is.
 * Returns 0 when queued, or librdkafka's error with the reason in errstr
 * when it refused it at once (nothing will be reported for it then).
 */
rd_kafka_resp_err_t k2r_kafka_dead_letter(k2r_kafka_t *kafka, const rd_kafka_message_t *rkm,
                                          const char *reason, const char *detail, const char *rule,
                                          int stub, uint64_t id, char *errstr, size_t errstr_size);

/* Serves delivery reports, waiting up to timeout_ms for the first one. */
void k2r_kafka_dead_letter_poll(k2r_kafka_t *kafka, int timeout_ms);

/* Commits what was stored and leaves the group. Safe to call once before destroy. */
void k2r_kafka_close(k2r_kafka_t *kafka);

/* Closes (if not yet closed) and releases the consumer and the dead-letter
 * producer; dead letters still outstanding are given up without a report.
 * NULL does nothing. */
void k2r_kafka_destroy(k2r_kafka_t *kafka);

#endif
