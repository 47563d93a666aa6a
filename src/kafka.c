/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka.c - the Kafka source, over librdkafka's high-level consumer.
 *
 * The shape follows kcat's consumer and librdkafka's examples/consumer.c:
 * consumer_poll in the caller's loop, a rebalance callback that assigns and
 * unassigns eagerly under librdkafka's default assignors (range, roundrobin)
 * and incrementally under cooperative-sticky, should a user choose it,
 * consumer_close to commit and leave.
 *
 * Why not cooperative-sticky by default: librdkafka before 2.10 (the 2.8.0
 * the bridge builds with included) marks the whole assignment lost when an
 * offset commit meets the generation a cooperative rebalance has just bumped
 * (ILLEGAL_GENERATION, confluentinc/librdkafka#4059, fixed by #4908). Every
 * partition is then given up uncommitted and read again: duplicates on each
 * scale event. The integration test of a member joining caught it, with
 * 2.0.2 and again with 2.8.0 (README, partition.assignment.strategy). Eager rebalances pause
 * every partition briefly but commit on revocation with a valid generation,
 * so a member joining repeats nothing.
 *
 * Offsets: enable.auto.offset.store is false, so nothing is committed for a
 * record until the bridge stored its offset, which it does only after Redis
 * answered. Auto-commit stays on and commits the stored offsets periodically
 * and at close. On a revocation the stored offsets are committed synchronously
 * before the partitions go, so the next owner starts where we stopped.
 *
 * Committed offsets beyond the end: a topic deleted and created again can
 * carry the group's committed offset of the old one (Kafka drops a deleted
 * topic's offsets, but a member that ran across the deletion commits its
 * position onto the new topic). When the new topic holds fewer records than
 * that offset, librdkafka finds it out of range at the first fetch and
 * resets it with one line of its own, nothing counted, and the group's
 * offset stays at the old value until the new topic's pass it: every restart
 * meanwhile repeats what was published (and a position with a leader epoch
 * may be taken for a truncated log and moved to the new end instead). So
 * each assignment compares every partition's
 * committed offset with its high watermark first (one OffsetFetch, one
 * ListOffsets per partition, within ASSIGN_CHECK_MS in all), and a partition
 * whose offset lies beyond is named in a warning, reported to the bridge
 * (which counts it) and assigned at auto.offset.reset's position. A new topic
 * that already holds more records than the old offset cannot be told apart
 * this way: its first records are skipped (README).
 *
 * Stopped partitions (a rule said `on_error: stop`) are kept in a small list:
 * they are paused at once, stay paused when everything else resumes, and are
 * forgotten when the group takes them away, so a later owner (this process
 * included) reads them again from the committed offset.
 *
 * Start-up: until a broker answered (k2r_kafka_wait_brokers, bounded by
 * kafka.startup_timeout), librdkafka's failed attempts are kept and logged at
 * debug level only, and the wait ends in one line naming the latest: a wrong
 * SASL password or an untrusted broker certificate is retried by librdkafka
 * like a broker that is down, with an error line per attempt, which buried
 * the cause. OpenSSL's reason for a certificate that does not verify (an
 * unknown CA, a name mismatch, an expired certificate) reaches the bridge
 * only through librdkafka's certificate callback, which keeps it and leaves
 * the verdict as OpenSSL gave it. Once running, such errors are logged as
 * they come, and librdkafka keeps retrying.
 *
 * The dead-letter producer is a separate librdkafka handle, created only when
 * a rule needs it: idempotent with acks=all, so a record it reports delivered
 * is on every in-sync replica, and librdkafka's own retries cannot duplicate
 * or reorder it. It gets the user's kafka.properties too (security settings
 * and the like apply to both clients); librdkafka ignores the consumer-only
 * ones and says so, and that one warning is logged at debug level instead.
 */
#include "k2r/kafka.h"

/* The oldest librdkafka the bridge is built for; README "Dependencies" says
 * why (SCRAM with Kafka 4, the fetch back-off, the cooperative rebalance). */
#if RD_KAFKA_VERSION < 0x020601ff
#error "librdkafka 2.6.1 or newer is needed (make deps builds one)"
#endif

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "k2r/buf.h"
#include "k2r/clock.h"
#include "k2r/log.h"

/* The most the committed-offset check of one assignment may take: the loop
 * waits meanwhile (librdkafka's own threads keep the membership alive). */
#define ASSIGN_CHECK_MS 10000

/* A partition stopped by the bridge. */
typedef struct stopped_s {
    char *topic;
    int32_t partition;
} stopped_t;

struct k2r_kafka_s {
    rd_kafka_t *rk;
    k2r_kafka_revoke_fn revoke;
    k2r_kafka_assign_fn assign;
    void *opaque;
    /* auto.offset.reset as the consumer has it: the logical offset it
     * means (RD_KAFKA_OFFSET_INVALID for "error") and its name. */
    int64_t reset_offset;
    char reset_name[16];
    int paused;
    int closed;
    unsigned long rebalances;
    int assigned; /* partitions assigned now */
    k2r_kafka_stats_fn stats;
    k2r_ratelimit_t err_rl;
    /* Set until a broker answered (k2r_kafka_wait_brokers): meanwhile each
     * failed attempt is kept, not logged, and the one line that ends the wait
     * names the latest. Read from librdkafka's threads (the log callback). */
    atomic_int starting;
    /* The latest error librdkafka reported (code and text), and the latest
     * certificate that did not verify (OpenSSL's reason, subject, issuer),
     * for that line; written from librdkafka's threads too. */
    pthread_mutex_t last_lock;
    rd_kafka_resp_err_t last_err;
    char last_error[512];
    char verify_error[512];
    char verify_broker[256]; /* host:port of the broker whose certificate that was */

    stopped_t *stopped;
    size_t nstopped, cap_stopped;

    /* The dead-letter producer, when a rule needs one. */
    int dead_letter_configured; /* kafka.dead_letter_topic is set */
    rd_kafka_t *dlq;
    char *dlq_topic;
    k2r_kafka_delivery_fn delivered;

    /* The headers of the latest view (reused for every record). */
    k2r_msgview_header_t *hdrs;
    size_t cap_hdrs;

    /* Offset commits librdkafka reported (main thread: the commit callback
     * is served by the consumer poll). */
    uint64_t commits_ok, commits_failed;

    /* The consumer queue's wake-up: librdkafka writes a byte to wake[1] when
     * the queue gets something after it was served; the loop polls wake[0]
     * beside its Redis sockets. */
    int wake[2];

    /* The consumer queue, for taking records in batches; and, while
     * k2r_kafka_poll_batch is inside librdkafka, the partitions revoked
     * meanwhile (NULL when none). */
    rd_kafka_queue_t *queue;
    int in_batch;
    rd_kafka_topic_partition_list_t *batch_revoked;
};

/* librdkafka's warning about a property set for the other kind of client:
 * "Configuration property X is a consumer property and will be ignored by
 * this producer instance". */
static int other_client_property(const char *fac, const char *buf, const char *kind) {
    char what[64];

    snprintf(what, sizeof(what), "is a %s property and will be ignored by this", kind);
    return strcmp(fac, "CONFWARN") == 0 && strstr(buf, what) != NULL;
}

static k2r_log_level_t level_of(int syslog_level) {
    return syslog_level <= LOG_ERR       ? K2R_LOG_ERROR
           : syslog_level <= LOG_WARNING ? K2R_LOG_WARN
           : syslog_level <= LOG_INFO    ? K2R_LOG_INFO
                                         : K2R_LOG_DEBUG;
}

/* A failed connection attempt's log line (FAIL), or the certificate that
 * failed it (SSLCERTVRFY): while the bridge waits for its first broker, the
 * error callback keeps the reason for the line that ends the wait, so these
 * go to the debug level instead of one line per retry. */
static int startup_noise(const k2r_kafka_t *kafka, const char *fac) {
    return kafka && atomic_load(&kafka->starting) &&
           (strcmp(fac, "FAIL") == 0 || strcmp(fac, "SSLCERTVRFY") == 0);
}

/* librdkafka log lines (syslog levels) into the bridge's logger. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    k2r_kafka_t *kafka = rd_kafka_opaque(rk);
    k2r_log_level_t l = level_of(level);

    if (startup_noise(kafka, fac))
        l = K2R_LOG_DEBUG;
    /* kafka.properties serve the dead-letter producer too: a producer
     * property there is not ignored, whatever the consumer says. */
    if (kafka && kafka->dead_letter_configured && other_client_property(fac, buf, "producer"))
        l = K2R_LOG_DEBUG;
    k2r_log(l, "kafka: %s: %s", fac, buf);
}

/* The same for the dead-letter producer, whose consumer-only properties
 * (auto.offset.reset, session.timeout.ms, ...) are the consumer's business. */
static void dlq_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    k2r_log_level_t l = level_of(level);

    if (other_client_property(fac, buf, "consumer") || startup_noise(rd_kafka_opaque(rk), fac))
        l = K2R_LOG_DEBUG;
    k2r_log(l, "kafka: dead-letter producer: %s: %s", fac, buf);
}

/* ----------------------------------------------------------- stopped */

static size_t stopped_find(const k2r_kafka_t *kafka, const char *topic, int32_t partition) {
    for (size_t i = 0; i < kafka->nstopped; i++)
        if (kafka->stopped[i].partition == partition && strcmp(kafka->stopped[i].topic, topic) == 0)
            return i;
    return SIZE_MAX;
}

/* The group took these partitions away: their stops no longer apply. */
static void stopped_forget(k2r_kafka_t *kafka, const rd_kafka_topic_partition_list_t *parts) {
    for (int j = 0; j < parts->cnt; j++) {
        size_t i = stopped_find(kafka, parts->elems[j].topic, parts->elems[j].partition);
        if (i == SIZE_MAX)
            continue;
        k2r_log_info("kafka: %s[%d] is no longer assigned; its stop is forgotten",
                     kafka->stopped[i].topic, (int)kafka->stopped[i].partition);
        free(kafka->stopped[i].topic);
        kafka->stopped[i] = kafka->stopped[--kafka->nstopped];
    }
}

int k2r_kafka_stop_partition(k2r_kafka_t *kafka, const char *topic, int32_t partition) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    int rc = 0;

    rd_kafka_topic_partition_list_add(parts, topic, partition);
    rd_kafka_pause_partitions(kafka->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (stopped_find(kafka, topic, partition) != SIZE_MAX)
        return 0;
    if (k2r_array_reserve(&kafka->stopped, &kafka->cap_stopped, kafka->nstopped + 1,
                          sizeof(*kafka->stopped), 8) != 0)
        return -1;
    kafka->stopped[kafka->nstopped].topic = strdup(topic);
    if (!kafka->stopped[kafka->nstopped].topic)
        rc = -1;
    else
        kafka->stopped[kafka->nstopped++].partition = partition;
    return rc;
}

int k2r_kafka_stopped(const k2r_kafka_t *kafka, const char *topic, int32_t partition) {
    return kafka->nstopped > 0 && stopped_find(kafka, topic, partition) != SIZE_MAX;
}

size_t k2r_kafka_nstopped(const k2r_kafka_t *kafka) {
    return kafka->nstopped;
}

/* ------------------------------------------------------------ consumer */

/*
 * librdkafka describes a TLS handshake that failed on the broker's
 * certificate in one of two ways, with the same words for an unknown CA and a
 * wrong host name:
 *  - a later handshake step, run from its poll loop, fails: an SSL error,
 *    "<broker>: SSL handshake failed: error:0A000086:SSL routines::
 *    certificate verify failed: broker certificate could not be verified, ...";
 *  - the first step (SSL_connect) fails, when the broker's whole answer was in
 *    before librdkafka read it: a transport failure, "<broker>: error:0A000086:
 *    SSL routines::certificate verify failed (after 3ms in state
 *    SSL_HANDSHAKE)".
 * When the certificate callback saw broker `verify_broker` fail with
 * `verify_error` (OpenSSL's own reason), both become the SSL error
 * "<broker>: SSL handshake failed: certificate verify failed: <verify_error>"
 * in `out`; any other `reason` is copied as it is. Returns the error to
 * report with it.
 */
int k2r_kafka_describe_error(int err, const char *reason, const char *verify_broker,
                             const char *verify_error, char *out, size_t size) {
    const char *broker_end = strstr(reason, ": ");
    const char *named = verify_broker && verify_broker[0] ? strstr(reason, verify_broker) : NULL;
    int first_step =
        err == RD_KAFKA_RESP_ERR__TRANSPORT && strstr(reason, "in state SSL_HANDSHAKE");
    int later_step = err == RD_KAFKA_RESP_ERR__SSL && strstr(reason, ": SSL handshake failed: ");

    /* The callback's broker is host:port, inside librdkafka's name for it
     * (sasl_ssl://host:port/bootstrap) in front of the reason. */
    if ((first_step || later_step) && broker_end && named && named < broker_end && verify_error &&
        verify_error[0] && strstr(reason, "certificate verify failed")) {
        snprintf(out, size, "%.*s: SSL handshake failed: certificate verify failed: %s",
                 (int)(broker_end - reason), reason, verify_error);
        return RD_KAFKA_RESP_ERR__SSL;
    }
    snprintf(out, size, "%s", reason);
    return err;
}

/* Keeps error `err` with its text as the latest, for the start-up line. */
static void set_last_error(k2r_kafka_t *kafka, int err, const char *reason) {
    pthread_mutex_lock(&kafka->last_lock);
    kafka->last_err = (rd_kafka_resp_err_t)k2r_kafka_describe_error(
        err, reason, kafka->verify_broker, kafka->verify_error, kafka->last_error,
        sizeof(kafka->last_error));
    pthread_mutex_unlock(&kafka->last_lock);
}

/* Errors librdkafka raises outside of any record (broker down, auth, ...). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    k2r_kafka_t *kafka = opaque;

    (void)rk;
    if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) /* the error before it says why */
        set_last_error(kafka, err, reason);
    /* A fatal one is also found by k2r_kafka_fatal(), which stops the bridge. */
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        k2r_log_error("kafka: fatal error: %s", reason);
    else if (atomic_load(&kafka->starting)) /* k2r_kafka_wait_brokers says it once */
        k2r_log_debug("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    else
        k2r_log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/*
 * Each certificate of a broker's chain, as OpenSSL verified it (librdkafka's
 * ssl.certificate.verify_cb): OpenSSL's verdict stands, unchanged (0 in
 * *x509_error: accepted; anything else: refused); only a refusal's reason is
 * kept, since librdkafka's handshake error does not carry it. The verdict
 * applies only where librdkafka verifies at all
 * (enable.ssl.certificate.verification, on by default).
 */
static int cert_verify_cb(rd_kafka_t *rk, const char *broker_name, int32_t broker_id,
                          int *x509_error, int depth, const char *buf, size_t size, char *errstr,
                          size_t errstr_size, void *opaque) {
    k2r_kafka_t *kafka = opaque;
    const unsigned char *der = (const unsigned char *)buf;
    char subject[160] = "?", issuer[160] = "?", at[24] = "";
    X509 *cert;

    (void)rk;
    (void)broker_id;
    if (*x509_error == X509_V_OK)
        return 1;
    cert = size <= (size_t)INT32_MAX ? d2i_X509(NULL, &der, (long)size) : NULL;
    if (cert) {
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        X509_NAME_oneline(X509_get_issuer_name(cert), issuer, sizeof(issuer));
        X509_free(cert);
    }
    snprintf(errstr, errstr_size, "%s", X509_verify_cert_error_string(*x509_error));
    /* Depth 0 is the broker's own certificate; above it, its issuers. */
    if (depth > 0)
        snprintf(at, sizeof(at), ", depth %d", depth);
    pthread_mutex_lock(&kafka->last_lock);
    snprintf(kafka->verify_broker, sizeof(kafka->verify_broker), "%s", broker_name);
    snprintf(kafka->verify_error, sizeof(kafka->verify_error), "%s (certificate %s, issuer %s%s)",
             X509_verify_cert_error_string(*x509_error), subject, issuer, at);
    pthread_mutex_unlock(&kafka->last_lock);
    return 0;
}

/* librdkafka's statistics (statistics.interval.ms), handed to the bridge. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    k2r_kafka_t *kafka = opaque;

    (void)rk;
    if (kafka->stats)
        kafka->stats(kafka->opaque, json, len);
    return 0; /* librdkafka frees json */
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

/* What the check below does with an offset beyond the end, in words. */
static const char *reset_action(const k2r_kafka_t *kafka) {
    if (kafka->reset_offset == RD_KAFKA_OFFSET_BEGINNING)
        return "starting from the beginning";
    if (kafka->reset_offset == RD_KAFKA_OFFSET_END)
        return "starting from the end";
    return "left to librdkafka, which reports it out of range";
}

/*
 * Before `parts` are assigned: the partitions with nothing committed, and
 * those whose committed offset lies beyond their high watermark (with a
 * warning each), get auto.offset.reset's logical offset in `parts`; every
 * partition is reported to the assign callback (see the file's opening).
 */
static void check_committed(k2r_kafka_t *kafka, rd_kafka_topic_partition_list_t *parts) {
    int64_t deadline = k2r_now_ms() + ASSIGN_CHECK_MS;
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err = rd_kafka_committed(kafka->rk, committed, ASSIGN_CHECK_MS);
    int unchecked = 0;

    if (err)
        k2r_log_warn("kafka: cannot read the committed offsets of %d assigned partition(s) to "
                     "compare them with the topics' ends: %s",
                     parts->cnt, rd_kafka_err2str(err));
    for (int i = 0; i < parts->cnt; i++) {
        /* The copy keeps the order: committed->elems[i] is parts->elems[i]. */
        const rd_kafka_topic_partition_t *c = &committed->elems[i];
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t left = deadline - k2r_now_ms(), low, high;
        int beyond = 0;

        if (err || c->err) {
            /* Not known: librdkafka reads the committed offset again itself. */
        } else if (c->offset < 0) {
            /* Nothing committed: auto.offset.reset's logical offset, given
             * here. Left to librdkafka, it is the same offset, looked up
             * only after a 100 ms back-off that librdkafka (2.8,
             * rd_kafka_offset_reset) applies to "no offset stored" as to
             * an error: a third of a new group's time to drain 200,000
             * small records (README "Figures"). auto.offset.reset: error
             * stays librdkafka's. */
            if (kafka->reset_offset != RD_KAFKA_OFFSET_INVALID)
                p->offset = kafka->reset_offset;
        } else if (left <= 0 ||
                   rd_kafka_query_watermark_offsets(kafka->rk, p->topic, p->partition, &low, &high,
                                                    (int)left) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            unchecked++; /* out of time, or no answer */
        } else if (c->offset > high) {
            beyond = 1;
            k2r_log_warn("kafka: %s[%d]: the committed offset %lld is beyond its high watermark "
                         "%lld: the topic was deleted and created again, or the broker lost "
                         "records; %s (auto.offset.reset: %s)",
                         p->topic, (int)p->partition, (long long)c->offset, (long long)high,
                         reset_action(kafka), kafka->reset_name);
            if (kafka->reset_offset != RD_KAFKA_OFFSET_INVALID)
                p->offset = kafka->reset_offset;
        }
        if (kafka->assign)
            kafka->assign(kafka->opaque, p->topic, p->partition, beyond);
    }
    if (unchecked)
        k2r_log_warn("kafka: %d assigned partition(s) not compared with their topics' ends (no "
                     "answer within %d ms)",
                     unchecked, ASSIGN_CHECK_MS);
    rd_kafka_topic_partition_list_destroy(committed);
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
        check_committed(kafka, parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            ret = rd_kafka_assign(rk, parts);
        if (!error && !ret)
            kafka->assigned = (cooperative ? kafka->assigned : 0) + parts->cnt;
        /* Partitions that arrive during an outage must not start fetching. */
        if (!error && !ret && kafka->paused)
            rd_kafka_pause_partitions(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        int lost = rd_kafka_assignment_lost(rk);

        log_parts(lost ? "lost" : "revoked", parts);
        if (kafka->in_batch) {
            /* Records of these partitions the batch call took before this
             * callback must not be taken after it (k2r_kafka_poll_batch). */
            if (!kafka->batch_revoked)
                kafka->batch_revoked = rd_kafka_topic_partition_list_new(parts->cnt);
            for (int i = 0; i < parts->cnt; i++)
                rd_kafka_topic_partition_list_add(kafka->batch_revoked, parts->elems[i].topic,
                                                  parts->elems[i].partition);
        }
        if (kafka->revoke)
            kafka->revoke(kafka->opaque, parts, lost);
        stopped_forget(kafka, parts);
        if (!lost) {
            /* Commit what was stored so the next owner does not repeat it.
             * NULL: the assignment's stored offsets (the revoked partitions
             * are still assigned here); the list given to this callback
             * carries no offsets, so committing it would commit nothing. */
            rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
            if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                k2r_log_warn("kafka: commit on revoke failed: %s", rd_kafka_err2str(cerr));
        }
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            ret = rd_kafka_assign(rk, NULL);
        kafka->assigned =
            cooperative && kafka->assigned > parts->cnt ? kafka->assigned - parts->cnt : 0;
    } else {
        k2r_log_error("kafka: rebalance failed: %s", rd_kafka_err2str(err));
        ret = rd_kafka_assign(rk, NULL);
        kafka->assigned = 0;
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

/*
 * A librdkafka conf in three layers: `defaults` a user may override, the
 * user's kafka.properties, then `forced` settings the bridge's guarantees rest
 * on (both NULL-terminated name, value lists). Returns a new conf (release
 * with rd_kafka_conf_destroy), or NULL with the reason in errstr.
 */
static rd_kafka_conf_t *layered_conf(const k2r_kafka_conf_t *kc, const char *const *defaults,
                                     const char *const *forced, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    for (size_t i = 0; defaults[i]; i += 2)
        if (set(conf, defaults[i], defaults[i + 1], errstr, errstr_size))
            goto fail;
    for (size_t i = 0; i < kc->nproperties; i++) {
        if (set(conf, kc->properties[i].name, kc->properties[i].value, errstr, errstr_size)) {
            /* librdkafka's reason may quote the value. */
            if (kc->properties[i].secret)
                snprintf(errstr, errstr_size, "kafka property %s: refused (the value is not shown)",
                         kc->properties[i].name);
            goto fail;
        }
    }
    if (set(conf, "bootstrap.servers", kc->brokers, errstr, errstr_size))
        goto fail;
    for (size_t i = 0; forced[i]; i += 2)
        if (set(conf, forced[i], forced[i + 1], errstr, errstr_size))
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* fetch.max.bytes, the cap on one fetch's answer, at `cap` unless the
 * user's kafka.properties set it, and never below message.max.bytes (which
 * librdkafka requires of it). Nonzero, with errstr, on failure. */
static int answer_cap(rd_kafka_conf_t *conf, const k2r_kafka_conf_t *kc, long long cap,
                      char *errstr, size_t errstr_size) {
    char value[32], *end;
    size_t size = sizeof(value);
    long long largest;

    for (size_t i = 0; i < kc->nproperties; i++)
        if (strcmp(kc->properties[i].name, "fetch.max.bytes") == 0)
            return 0;
    if (rd_kafka_conf_get(conf, "message.max.bytes", value, &size) == RD_KAFKA_CONF_OK) {
        /* librdkafka's own rendering of a value it checked: a plain integer. */
        largest = strtoll(value, &end, 10);
        if (end != value && *end == '\0' && largest > cap)
            cap = largest;
    }
    snprintf(value, sizeof(value), "%lld", cap);
    return set(conf, "fetch.max.bytes", value, errstr, errstr_size);
}

/* Every offset commit's outcome (auto-commit, the loop's asynchronous
 * ones, the one on revoke): counted for /metrics. Nothing to commit is
 * neither. */
static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    k2r_kafka_t *kafka = opaque;

    (void)rk;
    (void)offsets;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    if (err)
        kafka->commits_failed++;
    else
        kafka->commits_ok++;
}

void k2r_kafka_on_assign(k2r_kafka_t *kafka, k2r_kafka_assign_fn assign) {
    kafka->assign = assign;
}

/* auto.offset.reset of `conf` into kafka->reset_offset and reset_name:
 * librdkafka keeps it in the default topic conf, where it is absent (so
 * unknown to rd_kafka_conf_get) unless set; then it is librdkafka's
 * default, "largest". */
static void read_reset(k2r_kafka_t *kafka, const rd_kafka_conf_t *conf) {
    char value[32] = "largest";
    size_t size = sizeof(value);

    if (rd_kafka_conf_get(conf, "auto.offset.reset", value, &size) != RD_KAFKA_CONF_OK)
        snprintf(value, sizeof(value), "largest");
    snprintf(kafka->reset_name, sizeof(kafka->reset_name), "%s", value);
    if (strcmp(value, "smallest") == 0 || strcmp(value, "earliest") == 0 ||
        strcmp(value, "beginning") == 0)
        kafka->reset_offset = RD_KAFKA_OFFSET_BEGINNING;
    else if (strcmp(value, "error") == 0)
        kafka->reset_offset = RD_KAFKA_OFFSET_INVALID;
    else
        kafka->reset_offset = RD_KAFKA_OFFSET_END;
}

void k2r_kafka_commits(const k2r_kafka_t *kafka, uint64_t *ok, uint64_t *failed) {
    *ok = kafka->commits_ok;
    *failed = kafka->commits_failed;
}

k2r_kafka_t *k2r_kafka_new(const k2r_config_t *cfg, k2r_kafka_revoke_fn revoke,
                           k2r_kafka_stats_fn stats, void *opaque, char *errstr,
                           size_t errstr_size) {
    const k2r_kafka_conf_t *kc = &cfg->kafka;
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_resp_err_t err;
    k2r_kafka_t *kafka = calloc(1, sizeof(*kafka));

    if (!kafka) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    kafka->wake[0] = kafka->wake[1] = -1;
    atomic_init(&kafka->starting, 1);
    pthread_mutex_init(&kafka->last_lock, NULL);
    kafka->revoke = revoke;
    kafka->stats = stats;
    kafka->opaque = opaque;
    kafka->err_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    kafka->dead_letter_configured = kc->dead_letter_topic != NULL;

    {
        /* librdkafka's prefetch queue is bounded by the bridge's limits, so
         * that what is held in memory stays within about twice
         * limits.max_inflight_bytes however large or small the records: the
         * batch holds up to that; the queue up to half of it
         * (queued.max.messages.kbytes), plus one fetch's answer, which
         * librdkafka caps at the same half (fetch.max.bytes follows
         * queued.max.messages.kbytes unless set, and is at least
         * message.max.bytes); and up to five batches' worth of records
         * (queued.min.messages: 5 x limits.max_inflight_records). The count
         * matters for small records, since each queued one costs about 430
         * bytes of librdkafka's bookkeeping besides its payload: with
         * librdkafka's default of 100000, 110-byte records peaked at 62-68
         * MiB resident while draining; with 5000, 22 MiB at the same rate
         * (README "Figures"). As low as one batch, it held the fetcher back
         * after every fetch and drained at a few thousand records per second
         * under librdkafka 2.0.2's one-second back-off; the back-off below
         * makes five batches enough.
         *
         * A fetch's answer is bounded in bytes as they travel, which for
         * a compressed batch is not what it costs here: producers compress
         * by default (franz-go snappy, the Java client per topic), JSON
         * events of this kind shrink five to ten times, and each record
         * unpacked costs its bytes plus librdkafka's ~430. With librdkafka's
         * 1 MiB a partition and a whole answer up to the queue's 8 MiB, one
         * answer over three partitions of snappy-compressed 110-byte events
         * held the bridge at 62-66 MiB resident; capped at 1/64 of
         * limits.max_inflight_bytes a partition (max.partition.fetch.bytes,
         * 256 KiB) and 1/16 an answer (fetch.max.bytes, 1 MiB, or
         * message.max.bytes if that is larger, as librdkafka requires),
         * 33-34 MiB at a higher rate (smaller answers arrive sooner), and
         * 10 KB webhooks drained as fast (README "Figures"). The broker
         * always returns at least one whole batch, so a record larger than
         * either cap still arrives.
         *
         * librdkafka weighs its queue by the records' values alone: the
         * bytes of their keys and headers are weighed by the loop, which
         * pauses fetching when they come to too much (bridge.c, bound_queue).
         *
         * When the queue is full, librdkafka postpones the partition's next
         * fetch by fetch.queue.backoff.ms, 1000 by default: the bridge drains
         * 16 MiB of small records in a fraction of that and then waits out
         * the rest. 1 ms keeps the fetcher close behind the bridge: with
         * five batches queued, one fetch's answer (up to 1 MB a partition,
         * some 8,000 small records) fills the queue past its mark every time,
         * and the bridge drains it in a few milliseconds, so at 10 ms it
         * waited for the fetcher 66-97 times per million small records, at 1
         * ms 11-21 times (README "Figures"). The cost is a wake-up of
         * librdkafka's broker thread per millisecond while the queue stays
         * full, none while it does not.
         *
         * topic.metadata.refresh.interval.ms: librdkafka looks for topics
         * created after the subscription (and new partitions, and topics a
         * ^regex starts to match) only at this interval, 300000 by default:
         * a bridge deployed before its producers first write would sit
         * idle for five minutes. 10 s is what an operator expects, at the
         * cost of one metadata request per 10 s. */
        char kbytes[24], min_msgs[24], part_bytes[24];
        long long queued = (long long)K2R_QUEUED_BATCHES * cfg->limits.max_inflight_records;
        snprintf(kbytes, sizeof(kbytes), "%d", cfg->limits.max_inflight_bytes / 2 / 1024);
        snprintf(part_bytes, sizeof(part_bytes), "%d", cfg->limits.max_inflight_bytes / 64);
        snprintf(min_msgs, sizeof(min_msgs), "%lld", queued > 10000000 ? 10000000 : queued);
        const char *const defaults[] = {"client.id",
                                        "kafka-redis-bridge",
                                        "fetch.queue.backoff.ms",
                                        "1",
                                        "log.connection.close",
                                        "false",
                                        "max.partition.fetch.bytes",
                                        part_bytes,
                                        "queued.max.messages.kbytes",
                                        kbytes,
                                        "queued.min.messages",
                                        min_msgs,
                                        "statistics.interval.ms",
                                        "15000",
                                        "topic.metadata.refresh.interval.ms",
                                        "10000",
                                        NULL};
        /* group.instance.id last: without kafka.group_instance_id the list
         * ends before it. */
        const char *const forced[] = {"group.id",
                                      kc->group_id,
                                      "enable.auto.offset.store",
                                      "false",
                                      "enable.partition.eof",
                                      "false",
                                      kc->group_instance_id ? "group.instance.id" : NULL,
                                      kc->group_instance_id,
                                      NULL};
        conf = layered_conf(kc, defaults, forced, errstr, errstr_size);
        if (!conf || answer_cap(conf, kc, cfg->limits.max_inflight_bytes / 16, errstr, errstr_size))
            goto fail;
    }

    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_ssl_cert_verify_cb(conf, cert_verify_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    if (stats)
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_opaque(conf, kafka);
    read_reset(kafka, conf);

    kafka->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!kafka->rk)
        goto fail;
    conf = NULL; /* now owned by rk */
    /* The main queue (errors, statistics) is served by rd_kafka_poll while
     * k2r_kafka_wait_brokers waits, and joins the consumer queue after. */
    if (pipe2(kafka->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(errstr, errstr_size, "pipe: %s", strerror(errno));
        goto fail;
    } else {
        kafka->queue = rd_kafka_queue_get_consumer(kafka->rk);
        rd_kafka_queue_io_event_enable(kafka->queue, kafka->wake[1], "1", 1);
    }

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
    if (kafka && kafka->queue)
        rd_kafka_queue_destroy(kafka->queue);
    if (kafka && kafka->rk)
        rd_kafka_destroy(kafka->rk);
    if (kafka && kafka->wake[0] >= 0) {
        close(kafka->wake[0]);
        close(kafka->wake[1]);
    }
    if (kafka)
        pthread_mutex_destroy(&kafka->last_lock);
    free(kafka);
    return NULL;
}

int k2r_kafka_wake_fd(const k2r_kafka_t *kafka) {
    return kafka->wake[0];
}

size_t k2r_kafka_queued(const k2r_kafka_t *kafka) {
    return rd_kafka_queue_length(kafka->queue);
}

void k2r_kafka_wake_clear(k2r_kafka_t *kafka) {
    char buf[64];

    while (read(kafka->wake[0], buf, sizeof(buf)) > 0)
        ;
}

/* Logs (rate-limited) and releases a consumer error librdkafka returned
 * as a message. */
static void consumer_error(k2r_kafka_t *kafka, rd_kafka_message_t *msg) {
    uint64_t suppressed;

    if (k2r_log_ratelimit(&kafka->err_rl, &suppressed)) {
        const char *topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "-";
        k2r_log_warn("kafka: consumer error on %s[%d]: %s (%llu similar suppressed)", topic,
                     (int)msg->partition, rd_kafka_message_errstr(msg),
                     (unsigned long long)suppressed);
    }
    rd_kafka_message_destroy(msg);
}

rd_kafka_message_t *k2r_kafka_poll(k2r_kafka_t *kafka, int timeout_ms) {
    rd_kafka_message_t *msg;

    msg = rd_kafka_consumer_poll(kafka->rk, timeout_ms);

    if (!msg || !msg->err)
        return msg;
    consumer_error(kafka, msg);
    return NULL;
}

/* What to check, after the start-up line's reason, for the error `err`
 * (text `reason`) that ended the wait; "" when the reason says it all. */
static const char *startup_hint(rd_kafka_resp_err_t err, const char *reason) {
    int verify = strstr(reason, "certificate verify failed") != NULL;

    /* TLS alerts the broker sends when it wants a client certificate: Java
     * answers a missing or untrusted one with bad_certificate (42) under TLS
     * 1.3, others with certificate_required (116). librdkafka reports them
     * as a transport failure. */
    if (strstr(reason, "alert bad certificate") || strstr(reason, "alert certificate required"))
        return "; the broker refused the client certificate, or its absence: check "
               "ssl.certificate.location and ssl.key.location, and that the brokers trust "
               "its CA";
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
        return "; check sasl.mechanisms, sasl.username and sasl.password (or the "
               "sasl.oauthbearer.* settings)";
    if (verify)
        return "; check ssl.ca.location (the CA that signed the brokers' certificates) and "
               "that the certificates name the hosts in kafka.brokers";
    if (err == RD_KAFKA_RESP_ERR__SSL)
        return "; check the ssl.* properties and that the listener speaks TLS";
    return "";
}

/* 1 when the list holds topic[partition]. */
static int parts_hold(const rd_kafka_topic_partition_list_t *parts, const char *topic,
                      int32_t partition) {
    for (int i = 0; parts && i < parts->cnt; i++)
        if (parts->elems[i].partition == partition && strcmp(parts->elems[i].topic, topic) == 0)
            return 1;
    return 0;
}

/*
 * librdkafka serves a rebalance in the middle of a batch call, after records
 * it already put in the batch: taken after the revocation's callback, those
 * of a revoked partition would be in no one's care. They are released
 * unprocessed instead (their offsets were not stored: the next owner reads
 * them), unless the partition was assigned again meanwhile, whose records
 * are kept (at worst repeated, never skipped). Returns how many remain.
 */
static size_t drop_revoked(k2r_kafka_t *kafka, rd_kafka_message_t **msgs, size_t n) {
    rd_kafka_topic_partition_list_t *now = NULL;
    size_t kept = 0;

    if (rd_kafka_assignment(kafka->rk, &now) != RD_KAFKA_RESP_ERR_NO_ERROR)
        now = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *topic = rd_kafka_topic_name(msgs[i]->rkt);

        if (parts_hold(kafka->batch_revoked, topic, msgs[i]->partition) &&
            !parts_hold(now, topic, msgs[i]->partition))
            rd_kafka_message_destroy(msgs[i]);
        else
            msgs[kept++] = msgs[i];
    }
    if (now)
        rd_kafka_topic_partition_list_destroy(now);
    rd_kafka_topic_partition_list_destroy(kafka->batch_revoked);
    kafka->batch_revoked = NULL;
    return kept;
}

size_t k2r_kafka_poll_batch(k2r_kafka_t *kafka, int timeout_ms, rd_kafka_message_t **msgs,
                            size_t max) {
    int64_t deadline = timeout_ms > 0 ? k2r_now_ms() + timeout_ms : 0;

    for (;;) {
        ssize_t got;
        size_t n = 0;
        struct pollfd pfd = {.fd = kafka->wake[0], .events = POLLIN, .revents = 0};
        int64_t left;

        /* Emptied before the queue is served: a byte written after this is
         * news (librdkafka writes one when its queue gets an op after the
         * batch call served it: a record, or a callback to serve). */
        k2r_kafka_wake_clear(kafka);
        /* Without waiting: librdkafka's batch call waits until `max` records
         * came or the time is up, and a record must not wait for others. */
        kafka->in_batch = 1;
        got = rd_kafka_consume_batch_queue(kafka->queue, 0, msgs, max);
        kafka->in_batch = 0;
        for (ssize_t i = 0; i < got; i++) {
            if (msgs[i]->err)
                consumer_error(kafka, msgs[i]);
            else
                msgs[n++] = msgs[i];
        }
        if (kafka->batch_revoked)
            n = drop_revoked(kafka, msgs, n);
        if (n > 0)
            return n;
        left = deadline - k2r_now_ms();
        if (left <= 0)
            return 0;
        if (poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left) < 0 && errno != EINTR)
            return 0;
    }
}

int k2r_kafka_wait_brokers(k2r_kafka_t *kafka, int timeout_ms, volatile sig_atomic_t *stop,
                           char *errstr, size_t errstr_size) {
    int64_t deadline = k2r_now_ms() + timeout_ms;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;

    while (!(stop && *stop)) {
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - k2r_now_ms();

        if (left <= 0)
            break;
        /* Metadata for no topic in particular: any broker's answer will do. */
        err = rd_kafka_metadata(kafka->rk, 0, NULL, &md, left > 1000 ? 1000 : (int)left);
        /* The errors of the attempts so far, to error_cb (kept, not logged). */
        rd_kafka_poll(kafka->rk, 0);
        k2r_kafka_dead_letter_poll(kafka, 0);
        if (!err) {
            rd_kafka_metadata_destroy(md);
            atomic_store(&kafka->starting, 0);
            rd_kafka_poll_set_consumer(kafka->rk);
            return 0;
        }
        if (rd_kafka_fatal_error(kafka->rk, NULL, 0))
            break;
    }
    if (stop && *stop) {
        snprintf(errstr, errstr_size, "stopped while waiting for the brokers");
        return -1;
    }
    pthread_mutex_lock(&kafka->last_lock);
    if (kafka->last_err)
        snprintf(errstr, errstr_size, "no broker answered within %d ms: %s: %s%s", timeout_ms,
                 rd_kafka_err2str(kafka->last_err), kafka->last_error,
                 startup_hint(kafka->last_err, kafka->last_error));
    else
        snprintf(errstr, errstr_size, "no broker answered within %d ms: %s", timeout_ms,
                 rd_kafka_err2str(err));
    pthread_mutex_unlock(&kafka->last_lock);
    return -1;
}

int k2r_kafka_fatal(const k2r_kafka_t *kafka, char *errstr, size_t errstr_size) {
    char why[512];

    if (rd_kafka_fatal_error(kafka->rk, why, sizeof(why))) {
        snprintf(errstr, errstr_size, "consumer: %s", why);
        return 1;
    }
    if (kafka->dlq && rd_kafka_fatal_error(kafka->dlq, why, sizeof(why))) {
        snprintf(errstr, errstr_size, "dead-letter producer: %s", why);
        return 1;
    }
    return 0;
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

void k2r_kafka_commit(k2r_kafka_t *kafka) {
    rd_kafka_resp_err_t err = rd_kafka_commit(kafka->rk, NULL, 1);

    /* NO_OFFSET: nothing new was stored; anything else is retried by the
     * next commit (or auto-commit), so it is only worth a debug line. */
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        k2r_log_debug("kafka: commit: %s", rd_kafka_err2str(err));
}

void k2r_kafka_pause(k2r_kafka_t *kafka, int pause) {
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (kafka->paused == !!pause)
        return;
    kafka->paused = !!pause;
    if (rd_kafka_assignment(kafka->rk, &parts) || !parts)
        return;
    if (pause) {
        rd_kafka_pause_partitions(kafka->rk, parts);
    } else {
        /* A stopped partition stays paused: take it out of the list. */
        for (int i = parts->cnt - 1; i >= 0 && kafka->nstopped; i--)
            if (k2r_kafka_stopped(kafka, parts->elems[i].topic, parts->elems[i].partition))
                rd_kafka_topic_partition_list_del_by_idx(parts, i);
        rd_kafka_resume_partitions(kafka->rk, parts);
    }
    k2r_log_info("kafka: %s %d partition(s)%s", pause ? "paused" : "resumed", parts->cnt,
                 !pause && kafka->nstopped ? " (stopped ones stay paused)" : "");
    rd_kafka_topic_partition_list_destroy(parts);
}

int k2r_kafka_paused(const k2r_kafka_t *kafka) {
    return kafka->paused;
}

unsigned long k2r_kafka_rebalances(const k2r_kafka_t *kafka) {
    return kafka->rebalances;
}

int k2r_kafka_assigned(const k2r_kafka_t *kafka) {
    return kafka->assigned;
}

int k2r_kafka_joined(const k2r_kafka_t *kafka) {
    char *id = rd_kafka_memberid(kafka->rk);
    int joined = id && *id;

    if (id)
        rd_kafka_mem_free(kafka->rk, id);
    return joined;
}

/* -------------------------------------------------------- dead letters */

/* A delivery report of the dead-letter producer, served by rd_kafka_poll(). */
static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
    k2r_kafka_t *kafka = opaque;

    (void)rk;
    if (kafka->delivered)
        kafka->delivered(kafka->opaque, (uint64_t)(uintptr_t)rkm->_private, rkm->err);
}

int k2r_kafka_dead_letter_open(k2r_kafka_t *kafka, const k2r_config_t *cfg,
                               k2r_kafka_delivery_fn delivered, char *errstr, size_t errstr_size) {
    const k2r_kafka_conf_t *kc = &cfg->kafka;
    rd_kafka_conf_t *conf;

    if (kafka->dlq)
        return 0;
    if (!kc->dead_letter_topic) {
        snprintf(errstr, errstr_size, "kafka.dead_letter_topic is not set");
        return -1;
    }
    kafka->dlq_topic = strdup(kc->dead_letter_topic);
    if (!kafka->dlq_topic) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    {
        /* At-least-once into the dead-letter topic rests on the forced pair. */
        const char *const defaults[] = {"client.id", "kafka-redis-bridge", "log.connection.close",
                                        "false", NULL};
        const char *const forced[] = {"enable.idempotence", "true", "acks", "all", NULL};
        conf = layered_conf(kc, defaults, forced, errstr, errstr_size);
        if (!conf)
            goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, dlq_log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_ssl_cert_verify_cb(conf, cert_verify_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, dlq_dr_cb);
    rd_kafka_conf_set_opaque(conf, kafka);

    kafka->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!kafka->dlq)
        goto fail;
    conf = NULL; /* now owned by the producer */
    kafka->delivered = delivered;
    k2r_log_info("kafka: dead-letter producer ready for topic %s (idempotent, acks=all)",
                 kafka->dlq_topic);
    return 0;

fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(kafka->dlq_topic);
    kafka->dlq_topic = NULL;
    return -1;
}

int k2r_kafka_dead_letter_ready(const k2r_kafka_t *kafka) {
    return kafka->dlq != NULL;
}

/* Replaces every header called `name` with one holding `value`. */
static rd_kafka_resp_err_t header_set(rd_kafka_headers_t *hdrs, const char *name,
                                      const char *value) {
    rd_kafka_header_remove(hdrs, name); /* NOENT when there was none: fine */
    return rd_kafka_header_add(hdrs, name, -1, value, -1);
}

rd_kafka_resp_err_t k2r_kafka_dead_letter(k2r_kafka_t *kafka, const rd_kafka_message_t *rkm,
                                          const char *reason, const char *detail, const char *rule,
                                          int stub, uint64_t id, char *errstr, size_t errstr_size) {
    rd_kafka_headers_t *orig = NULL, *hdrs;
    rd_kafka_resp_err_t err;
    char partition[16], offset[24], size[24];

    assert(kafka->dlq);
    if (!stub && rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        hdrs = rd_kafka_headers_copy(orig);
    else
        hdrs = rd_kafka_headers_new(7);
    snprintf(partition, sizeof(partition), "%" PRId32, rkm->partition);
    snprintf(offset, sizeof(offset), "%" PRId64, rkm->offset);
    err = header_set(hdrs, "k2r.error.reason", reason);
    if (!err)
        err = header_set(hdrs, "k2r.error.detail", detail);
    if (!err)
        err = header_set(hdrs, "k2r.rule", rule ? rule : "-");
    if (!err)
        err = header_set(hdrs, "k2r.source.topic", rd_kafka_topic_name(rkm->rkt));
    if (!err)
        err = header_set(hdrs, "k2r.source.partition", partition);
    if (!err)
        err = header_set(hdrs, "k2r.source.offset", offset);
    if (!err && stub) {
        /* Too large for the dead-letter topic as it was: the coordinates
         * above say where to read it. */
        snprintf(size, sizeof(size), "%zu", rkm->len);
        err = header_set(hdrs, "k2r.error.truncated", size);
    }
    /* The id travels in the message's opaque pointer, librdkafka's only
     * per-message field; it is never dereferenced. */
    if (!err)
        err = rd_kafka_producev(kafka->dlq, RD_KAFKA_V_TOPIC(kafka->dlq_topic),
                                RD_KAFKA_V_KEY(stub ? NULL : rkm->key, stub ? 0 : rkm->key_len),
                                RD_KAFKA_V_VALUE(stub ? NULL : rkm->payload, stub ? 0 : rkm->len),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                // NOLINTNEXTLINE(performance-no-int-to-ptr)
                                RD_KAFKA_V_OPAQUE((void *)(uintptr_t)id), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(hdrs); /* still ours: producev failed */
        snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(err));
        return err;
    }
    /* hdrs now owned by the queued message */
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

void k2r_kafka_dead_letter_poll(k2r_kafka_t *kafka, int timeout_ms) {
    if (kafka->dlq)
        rd_kafka_poll(kafka->dlq, timeout_ms);
}

/* ------------------------------------------------------------ records */

int k2r_kafka_view(k2r_kafka_t *kafka, const rd_kafka_message_t *rkm, k2r_msgview_t *view) {
    rd_kafka_timestamp_type_t tstype;
    rd_kafka_headers_t *hdrs = NULL;
    size_t n;

    view->topic = rd_kafka_topic_name(rkm->rkt);
    view->partition = rkm->partition;
    view->offset = rkm->offset;
    view->timestamp = rd_kafka_message_timestamp(rkm, &tstype);
    view->tstype = tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME       ? K2R_MSGVIEW_TS_CREATE
                   : tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? K2R_MSGVIEW_TS_LOG_APPEND
                                                                  : K2R_MSGVIEW_TS_NONE;
    view->key = rkm->key;
    view->key_len = rkm->key_len;
    view->value = rkm->payload;
    view->value_len = rkm->len;
    view->headers = NULL;
    view->nheaders = 0;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return 0; /* NOENT: the record has none */
    n = rd_kafka_header_cnt(hdrs);
    /* Grows only when a record has more headers than any before. */
    if (k2r_array_reserve(&kafka->hdrs, &kafka->cap_hdrs, n, sizeof(*kafka->hdrs), 8) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const void *value;
        size_t size;

        if (rd_kafka_header_get_all(hdrs, i, &name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        kafka->hdrs[view->nheaders].name = name;
        kafka->hdrs[view->nheaders].value = value;
        kafka->hdrs[view->nheaders].value_len = value ? size : 0;
        view->nheaders++;
    }
    view->headers = kafka->hdrs;
    return 0;
}

void k2r_kafka_release(void *rkm) {
    if (rkm)
        rd_kafka_message_destroy(rkm);
}

/* ----------------------------------------------------------- shutdown */

void k2r_kafka_close(k2r_kafka_t *kafka) {
    rd_kafka_resp_err_t err;

    if (kafka->closed)
        return;
    kafka->closed = 1;
    err = rd_kafka_consumer_close(kafka->rk);
    if (err)
        k2r_log_warn("kafka: close: %s", rd_kafka_err2str(err));
    else if (kafka->rebalances)
        k2r_log_info("kafka: committed and left the group");
    else
        k2r_log_info("kafka: consumer closed (it never joined the group)");
}

void k2r_kafka_destroy(k2r_kafka_t *kafka) {
    if (!kafka)
        return;
    k2r_kafka_close(kafka);
    rd_kafka_queue_destroy(kafka->queue);
    rd_kafka_destroy(kafka->rk);
    close(kafka->wake[0]);
    close(kafka->wake[1]);
    if (kafka->dlq) {
        /* Whatever is still queued was not reported delivered, so its
         * record's offset was not stored: the next run dead-letters it. */
        kafka->delivered = NULL;
        rd_kafka_purge(kafka->dlq, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(kafka->dlq, 0);
        rd_kafka_destroy(kafka->dlq);
    }
    free(kafka->dlq_topic);
    free(kafka->hdrs);
    for (size_t i = 0; i < kafka->nstopped; i++)
        free(kafka->stopped[i].topic);
    free(kafka->stopped);
    pthread_mutex_destroy(&kafka->last_lock);
    free(kafka);
}
