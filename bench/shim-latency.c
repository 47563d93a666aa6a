/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shim-latency.c - produce-acknowledged to subscriber, at a steady rate, with
 * the producer shim loaded into the producer as a plugin (what a user
 * deploys), or without it while a contender (the bridge) follows the topic:
 * the same producer, the same subscriber, the same clock, for both.
 *
 *   shim-latency -b BROKERS -t TOPIC -p REDIS_PORT [-r RATE] [-s SECS]
 *                [-l LINGER_MS] [-P PLUGIN -c BRIDGE_CONFIG] [-- CMD ARGS...]
 *
 * Produces RATE seed-shaped events a second to TOPIC (3 partitions,
 * linger.ms 1 by default: with 0 every record is a request of its own, and
 * at 5,000 a second the broker queues them for most of a second), each with a sequence number in
 * its id; a thread subscribed with hiredis (PSUBSCRIBE events:*) takes each notification's arrival.
 * Events go out from the start until the first one arrives (the contender has
 * joined, or the shim connected); the SECS-second window starts one second
 * later. For each record of the window: produce call -> the delivery report
 * (Kafka's acknowledgement, seen by this thread's rd_kafka_poll), produce call
 * -> arrival, and the delivery report -> arrival, which with the plugin can be
 * below zero: the shim publishes from librdkafka's acknowledgement
 * interceptor, on the broker's thread, before this thread polls the report.
 * Prints one line (the format of k2rbench's latency lines):
 *
 *   records=N p50_ms=.. p99_ms=.. max_ms=.. ack_p50_ms=.. ack_p99_ms=.. after_ack_p50_ms=..
 * after_ack_p99_ms=.. lost=L
 *
 * p*_ms: produce call -> arrival; lost: records of the window that never
 * arrived within 5 s of the window's end. CMD gets SIGTERM at the end.
 * Built by `make bench` ($(BUILD)/bench/shim-latency), with librdkafka linked
 * in as the bridge links it and its symbols exported for the plugin.
 */
#include <librdkafka/rdkafka.h>

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXREC 2000000

static int64_t *t_prod, *t_ack, *t_arr; /* µs, monotonic; 0: not yet */
static volatile int stop;
static int redis_port;

static int64_t now_us(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what) {
    fprintf(stderr, "shim-latency: %s\n", what);
    exit(1);
}

/* The subscriber: the arrival of every notification whose id is "l<seq>". */
static void *subscriber(void *arg) {
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    redisReply *r;

    (void)arg;
    if (!c || c->err)
        die("cannot connect to Redis");
    r = redisCommand(c, "PSUBSCRIBE events:*");
    freeReplyObject(r);
    while (!stop && redisGetReply(c, (void **)&r) == REDIS_OK) {
        int64_t t = now_us();

        if (r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
            const char *msg = r->element[3]->str, *p = strstr(msg, "\"id\":\"l");
            long seq = p ? strtol(p + 7, NULL, 10) : -1;

            if (seq >= 0 && seq < MAXREC && !t_arr[seq])
                t_arr[seq] = t;
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    long seq = (long)(intptr_t)m->_private;

    (void)rk;
    (void)opaque;
    if (!m->err && seq >= 0 && seq < MAXREC)
        t_ack[seq] = now_us();
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted values, in ms. */
static double q_ms(const int64_t *v, size_t n, double q) {
    size_t i = (size_t)(q * (double)(n - 1));
    return n ? (double)v[i] / 1000.0 : 0;
}

int main(int argc, char **argv) {
    const char *brokers = NULL, *topic = NULL, *plugin = NULL, *config = NULL, *linger = "1";
    int rate = 5000, secs = 10, opt;
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    pthread_t sub;
    pid_t child = 0;
    long seq = 0, first = -1, last = -1;
    int64_t start, window_start = 0, window_end = 0, *d, *a, *aa;
    size_t n = 0, na = 0, lost = 0;

    while ((opt = getopt(argc, argv, "b:t:p:r:s:P:c:l:")) != -1) {
        switch (opt) {
        case 'b':
            brokers = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'p':
            redis_port = atoi(optarg);
            break;
        case 'r':
            rate = atoi(optarg);
            break;
        case 's':
            secs = atoi(optarg);
            break;
        case 'P':
            plugin = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        default:
            die("usage: shim-latency -b BROKERS -t TOPIC -p REDIS_PORT [-r RATE] [-s SECS] [-P "
                "PLUGIN -c CONFIG] [-- CMD...]");
        }
    }
    if (!brokers || !topic || redis_port <= 0 || rate <= 0 || secs <= 0 || (!plugin != !config))
        die("-b, -t and -p are required; -P and -c go together");
    t_prod = calloc(MAXREC, sizeof(int64_t));
    t_ack = calloc(MAXREC, sizeof(int64_t));
    t_arr = calloc(MAXREC, sizeof(int64_t));
    if (!t_prod || !t_ack || !t_arr)
        die("out of memory");
    if (pthread_create(&sub, NULL, subscriber, NULL) != 0)
        die("pthread_create");

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "linger.ms", linger, errstr, sizeof(errstr)) ||
        (plugin &&
         (rd_kafka_conf_set(conf, "plugin.library.paths", plugin, errstr, sizeof(errstr)) ||
          rd_kafka_conf_set(conf, "k2r.config", config, errstr, sizeof(errstr)))))
        die(errstr);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        die(errstr);

    if (optind < argc) { /* the contender: started after the subscriber */
        child = fork();
        if (child == 0) {
            execvp(argv[optind], argv + optind);
            _exit(127);
        }
    }

    start = now_us();
    for (;;) {
        int64_t due = start + seq * 1000000 / rate, t = now_us();
        char value[256];

        if (t < due) {
            rd_kafka_poll(rk, 0);
            if (due - t > 200)
                usleep(100); /* pacing: the next record is not due yet */
            continue;
        }
        if (seq >= MAXREC)
            die("too many records: lower the rate or the window");
        snprintf(value, sizeof(value),
                 "{\"id\":\"l%ld\",\"type\":\"push\",\"source_type\":\"user\",\"source_id\":"
                 "\"u%ld\",\"payload\":{\"size\":%ld}}",
                 seq, seq % 1000, seq % 7);
        t_prod[seq] = now_us();
        if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(value, strlen(value)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_OPAQUE((void *)(intptr_t)seq), RD_KAFKA_V_END) != 0)
            die("produce failed");
        rd_kafka_poll(rk, 0);
        if (!window_start) {
            for (long i = 0; i < seq; i++)
                if (t_arr[i]) { /* the path works: measure from a second on */
                    window_start = now_us() + 1000000;
                    window_end = window_start + (int64_t)secs * 1000000;
                    break;
                }
            if (now_us() - start > 120000000)
                die("no notification arrived within 120 s");
        } else if (first < 0 && t_prod[seq] >= window_start) {
            first = seq;
        } else if (t_prod[seq] >= window_end) {
            last = seq;
            break;
        }
        seq++;
    }
    /* Wait for the window's arrivals (at most 5 s). */
    for (int64_t until = now_us() + 5000000; now_us() < until;) {
        long i = first;
        rd_kafka_poll(rk, 10);
        while (i < last && t_arr[i])
            i++;
        if (i == last)
            break;
    }
    rd_kafka_flush(rk, 5000);
    stop = 1;
    d = calloc((size_t)(last - first), sizeof(int64_t));
    a = calloc((size_t)(last - first), sizeof(int64_t));
    aa = calloc((size_t)(last - first), sizeof(int64_t));
    if (!d || !a || !aa)
        die("out of memory");
    for (long i = first; i < last; i++) {
        if (!t_arr[i]) {
            lost++;
            continue;
        }
        d[n++] = t_arr[i] - t_prod[i];
        if (t_ack[i]) {
            a[na] = t_ack[i] - t_prod[i];
            aa[na++] = t_arr[i] - t_ack[i];
        }
    }
    qsort(d, n, sizeof(*d), cmp64);
    qsort(a, na, sizeof(*a), cmp64);
    qsort(aa, na, sizeof(*aa), cmp64);
    printf("records=%ld p50_ms=%.2f p99_ms=%.2f max_ms=%.2f ack_p50_ms=%.2f ack_p99_ms=%.2f "
           "after_ack_p50_ms=%.2f after_ack_p99_ms=%.2f lost=%zu\n",
           last - first, q_ms(d, n, 0.5), q_ms(d, n, 0.99), n ? (double)d[n - 1] / 1000.0 : 0,
           q_ms(a, na, 0.5), q_ms(a, na, 0.99), q_ms(aa, na, 0.5), q_ms(aa, na, 0.99), lost);
    fflush(stdout);
    if (child > 0) {
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
    }
    rd_kafka_destroy(rk);
    _exit(0); /* the subscriber thread is blocked in a read */
}
