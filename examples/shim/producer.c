/* SPDX-License-Identifier: Apache-2.0 */
/*
 * producer.c - a plain librdkafka producer that also publishes each record's
 * notifications inline, through the shim's C API (k2r/shim.h), from its
 * delivery report callback. (Loading the plugin needs no code at all: set
 * plugin.library.paths and k2r.config on the conf. This shows the other
 * way, for a program that wants the shim in its own hands.)
 *
 *   shim-producer -b BROKERS -t TOPIC -c BRIDGE_CONFIG < values
 *
 * Each line of stdin is one record's value (no key). At the end it waits
 * for every delivery report, lets the shim publish what it queued, prints
 * the shim's counters on stderr and exits 0 when every record was
 * delivered to Kafka (whatever happened on Redis: the shim never fails a
 * produce).
 */
#include <librdkafka/rdkafka.h>

#include <k2r/shim.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long delivered, failed;

/* librdkafka's delivery report: called from rd_kafka_poll/flush on this
 * thread. The record is acknowledged when err is 0; that is when the shim
 * gets it (k2r_shim_publish_message checks err itself too). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage, void *opaque) {
    k2r_shim_t *shim = opaque;

    (void)rk;
    if (rkmessage->err) {
        failed++;
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(rkmessage->err));
        return;
    }
    delivered++;
    k2r_shim_publish_message(shim, rkmessage); /* copies and returns; never blocks */
}

int main(int argc, char **argv) {
    const char *brokers = NULL, *topic = NULL, *config = NULL;
    char errstr[512], *line = NULL;
    size_t cap = 0;
    ssize_t len;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    k2r_shim_t *shim;
    k2r_shim_stats_t st;
    int opt;

    while ((opt = getopt(argc, argv, "b:t:c:")) != -1) {
        switch (opt) {
        case 'b':
            brokers = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        default:
            goto usage;
        }
    }
    if (!brokers || !topic || !config)
        goto usage;

    /* The shim first: a config with errors is reported here. A program may
     * as well go on without it; this one says why and stops. */
    shim = k2r_shim_new(config, NULL, errstr, sizeof(errstr));
    if (!shim) {
        fprintf(stderr, "shim: %s\n", errstr);
        return 1;
    }

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        k2r_shim_destroy(shim);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, shim);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        k2r_shim_destroy(shim);
        return 1;
    }
    conf = NULL; /* now owned by rk */

    while ((len = getline(&line, &cap, stdin)) > 0) {
        rd_kafka_resp_err_t err;

        if (line[len - 1] == '\n')
            line[--len] = '\0';
        do {
            err =
                rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(line, (size_t)len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 100); /* serve delivery reports to make room */
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err) {
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
            failed++;
        }
        rd_kafka_poll(rk, 0);
    }
    free(line);
    rd_kafka_flush(rk, 30000);
    rd_kafka_destroy(rk);

    /* What the shim queued is published (or dropped, counted) within a
     * bound; then the counters say what happened. */
    k2r_shim_flush(shim, 5000);
    k2r_shim_stats(shim, &st);
    fprintf(stderr,
            "delivered %lu, failed %lu; shim: enqueued %llu, published %llu, suppressed %llu, "
            "skipped_by_rules %llu, dropped_queue_full %llu, dropped_redis %llu, errors %llu\n",
            delivered, failed, (unsigned long long)st.enqueued, (unsigned long long)st.published,
            (unsigned long long)st.suppressed, (unsigned long long)st.skipped_by_rules,
            (unsigned long long)st.dropped_queue_full, (unsigned long long)st.dropped_redis,
            (unsigned long long)st.errors);
    k2r_shim_destroy(shim);
    return failed ? 1 : 0;

usage:
    fprintf(stderr, "usage: %s -b BROKERS -t TOPIC -c BRIDGE_CONFIG < values\n", argv[0]);
    return 2;
}
