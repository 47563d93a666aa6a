/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge.h - the daemon's main loop: Kafka records in, Redis notifications
 * out, offsets stored only after Redis answered.
 *
 * The one module that knows all the others: it takes records from the Kafka
 * source, maps them through the rules, publishes through the Redis sink and
 * tells the source which offsets are done. Everything it does is driven from
 * one thread, so per-partition order is the order of publishing.
 *
 * It also carries out the rules' `on_error` policies: a dead-lettered record
 * goes to kafka.dead_letter_topic and its offset is stored only once that
 * topic acknowledged it; a record whose rule says `stop` stops its partition
 * there (the offset stored is that record's own, so a restart reads it
 * again). And it reloads the rules on request, between batches, without
 * leaving the consumer group.
 */
#ifndef K2R_BRIDGE_H
#define K2R_BRIDGE_H

#include <signal.h>
#include <stdint.h>

#include "k2r/config.h"
#include "k2r/rules.h"
#include "k2r/stats.h"

typedef struct k2r_bridge_s k2r_bridge_t;

/* What k2r_bridge_run() returns. */
enum {
    K2R_RUN_OK = 0,        /* stopped on request; everything finished was committed */
    K2R_RUN_LEFT_WORK = 1, /* stopped on request; the drain timeout left work for the next run */
    K2R_RUN_FAILED = 2     /* stopped on a failure it cannot ride out (see below) */
};

/*
 * Builds the bridge from a loaded config and compiled rules; takes ownership
 * of both (also on failure). `metrics` (borrowed, may be NULL: nothing is
 * reported) is the registry the bridge copies its counters, histograms and
 * health to, a few times a second, for whoever renders them (main.c gives
 * the same one to the HTTP server); it must outlive the bridge. Returns NULL
 * with the reason in errstr. When some rule dead-letters, the dead-letter
 * producer is created here too. Does not block: Kafka and Redis are
 * contacted from k2r_bridge_run().
 */
typedef struct k2r_metrics_s k2r_metrics_t;
k2r_bridge_t *k2r_bridge_new(k2r_config_t *cfg, k2r_rules_t *rules, k2r_metrics_t *metrics,
                             char *errstr, size_t errstr_size);

/*
 * Waits for the brokers (kafka.startup_timeout), then runs until *stop
 * becomes non-zero (set from a signal handler), then drains: stops fetching,
 * finishes the batch in flight (for at most shutdown.drain_timeout), stores
 * and commits offsets, leaves the group. Returns K2R_RUN_OK after a clean
 * drain, K2R_RUN_LEFT_WORK when unpublished records (or undelivered dead
 * letters) had to be left for the next run, K2R_RUN_FAILED when no broker
 * answered at start, when librdkafka raised a fatal error (after draining
 * what it can and committing what was finished), when Redis refused the
 * credentials, or when out of memory.
 *
 * Whenever *reload is non-zero (set from a SIGHUP handler; NULL: never), the
 * bridge clears it and, at the next point where no batch is held, reads the
 * config file again (k2r_rules_load) and swaps in the new rules and log
 * level. A file that does not load changes nothing (every error is logged).
 * Settings under kafka.* and redis.* take a restart: when they differ, a
 * warning names them and the running values stay. Rules that need a
 * dead-letter topic the running bridge has no producer for are refused.
 * Stopped partitions stay stopped (a restart resumes them).
 */
int k2r_bridge_run(k2r_bridge_t *bridge, volatile sig_atomic_t *stop,
                   volatile sig_atomic_t *reload);

/* Copies the counters. */
void k2r_bridge_stats(const k2r_bridge_t *bridge, k2r_bridge_stats_t *out);

/* Releases everything; NULL does nothing. */
void k2r_bridge_destroy(k2r_bridge_t *bridge);

#endif
