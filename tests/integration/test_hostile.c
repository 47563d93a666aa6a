/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hostile.c - the hostile-input corpus (tests/hostile/cases.txt) through
 * the running daemon, against the real broker and Redis.
 *
 * Every case is produced, in file order, with its exact key, headers and
 * value, to its own topic and partition; the daemon runs the rules of
 * tests/hostile/bridge.yaml (with this run's topic names, and a channel
 * prefix as long as "hostile" so every limit bites at the same byte). Then:
 *
 * - a pattern subscriber gets exactly the expected notifications, channels
 *   and bytes, each partition's in its order, and nothing else;
 * - the dead-letter topic holds exactly the expected records, byte for byte
 *   (key, value, the original headers in order), each with the k2r.* headers
 *   saying why;
 * - the log names every skipped record with its reason and detail, and each
 *   partition that a stop case stopped, and the stats line at exit has the
 *   exact counts;
 * - the daemon is alive at the end and exits 0 on SIGTERM.
 *
 * A partition stops at its first stop case: its later cases are never
 * processed, so their expectations (what k2r_rules_map alone gives, checked
 * by the unit suite) are not looked for here. Cases marked as known bugs are
 * left out unless K2R_HOSTILE_KNOWN_BUGS=1, which reproduces them.
 *
 * Records of several MB are part of the corpus, above Kafka's default
 * message size of about 1 MB: the topics are created with a larger
 * max.message.bytes and produced to by a producer of this file that allows
 * them (the harness producer keeps librdkafka's 1 MB limit, and takes keys
 * as C strings, which would cut the cases whose key holds a NUL byte). The
 * bridge keeps librdkafka's defaults, like a deployment that never thought
 * of large records.
 */
#include <CUnit/CUnit.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#include "../hostile/corpus.h"

/* Larger than the corpus's largest record, with room for headers. */
#define BIG_MESSAGE_BYTES "16777216"
#define MAX_TOPICS        8
/* Separates the alternative forms of one expected log line. */
#define ALT "\x1f"

/* One topic of the corpus (hostile.<name> in the fixture). */
typedef struct htopic_s {
    char name[32];  /* short name: strict, escape, ... */
    char real[64];  /* this run's topic */
    int partitions; /* most partitions any case names, plus one */
} htopic_t;

/* An expected notification, in the order of its partition. */
typedef struct hwant_s {
    size_t stream; /* topic index * 64 + partition */
    char *channel; /* with this run's prefix */
    const hc_bytes_t *message;
} hwant_t;

/* A case that must reach the dead-letter topic, at this offset. */
typedef struct hdead_s {
    const hc_case_t *c;
    const htopic_t *t;
    int64_t offset;
} hdead_t;

/* What the run must show, computed from the corpus before it starts. */
typedef struct hplan_s {
    htopic_t topics[MAX_TOPICS];
    size_t ntopics;
    char prefix[8]; /* "hostile" is 7 bytes: so is every run's prefix */
    char dlq[64];
    char group[64];
    hwant_t *want;
    size_t nwant;
    hdead_t *dead;
    size_t ndead;
    size_t consumed, skipped, stopped;
    /* The offset each partition must have committed at exit: its stop
     * case's own, else its end (skips and dead letters advance too). */
    int64_t committed[MAX_TOPICS][64];
    char **log_lines; /* each must be in the log (alternatives joined by ALT) */
    size_t nlog;
} hplan_t;

static int known_bugs(void) {
    const char *v = getenv("K2R_HOSTILE_KNOWN_BUGS");
    return v && strcmp(v, "1") == 0;
}

static const char *hostile_path(const char *name) {
    static char path[4096];
    snprintf(path, sizeof(path), "%s/tests/hostile/%s", K2R_SOURCE_DIR, name);
    return path;
}

/* A new string: `text` with every `from` replaced by `to`. */
static char *replace_all(const char *text, const char *from, const char *to) {
    size_t n = 0, lf = strlen(from), lt = strlen(to);
    const char *p;
    char *out, *o;

    for (p = text; (p = strstr(p, from)) != NULL; p += lf)
        n++;
    out = malloc(strlen(text) + n * (lt > lf ? lt - lf : 0) + 1);
    if (!out)
        return NULL;
    for (o = out, p = text;;) {
        const char *hit = strstr(p, from);
        size_t k = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(o, p, k);
        o += k;
        if (!hit)
            break;
        memcpy(o, to, lt);
        o += lt;
        p = hit + lf;
    }
    *o = '\0';
    return out;
}

/* `text` with the fixture's topic names and channel prefix replaced by this
 * run's (a new string). */
static char *localize(const hplan_t *plan, const char *text) {
    char prefix[16], *out;

    snprintf(prefix, sizeof(prefix), "%s:", plan->prefix);
    out = replace_all(text, "hostile:", prefix);
    for (size_t i = 0; out && i < plan->ntopics; i++) {
        char fixture[64], *next;
        snprintf(fixture, sizeof(fixture), "hostile.%s", plan->topics[i].name);
        next = replace_all(out, fixture, plan->topics[i].real);
        free(out);
        out = next;
    }
    return out;
}

static const htopic_t *topic_of(const hplan_t *plan, const hc_case_t *c) {
    for (size_t i = 0; i < plan->ntopics; i++)
        if (strcmp(plan->topics[i].name, c->topic) == 0)
            return &plan->topics[i];
    return NULL;
}

static int produced(const hc_case_t *c) {
    return !c->bug.data || known_bugs();
}

static char *printf_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *printf_new(const char *fmt, ...) {
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/*
 * Works out what the run must show: topics and their partitions, the
 * notifications of each partition in order, the dead letters, the log lines
 * and the counts, following each partition until its first stop case.
 */
static int plan_make(hplan_t *plan, const hc_corpus_t *corpus) {
    unsigned char stopped[MAX_TOPICS][64] = {{0}};
    int64_t next_offset[MAX_TOPICS][64] = {{0}};

    memset(plan, 0, sizeof(*plan));
    snprintf(plan->prefix, sizeof(plan->prefix), "h%06x",
             (unsigned)(getpid() ^ (unsigned)time(NULL)) & 0xffffffu);
    h_unique(plan->dlq, sizeof(plan->dlq), "hostile-dlq");
    h_unique(plan->group, sizeof(plan->group), "g-hostile");
    for (size_t i = 0; i < corpus->ncases; i++) {
        const hc_case_t *c = &corpus->cases[i];
        htopic_t *t = (htopic_t *)topic_of(plan, c);

        if (!t) {
            if (plan->ntopics == MAX_TOPICS || strlen(c->topic) >= sizeof(t->name))
                return -1;
            t = &plan->topics[plan->ntopics++];
            snprintf(t->name, sizeof(t->name), "%s", c->topic);
            {
                char prefix[48];
                snprintf(prefix, sizeof(prefix), "hostile-%s", c->topic);
                h_unique(t->real, sizeof(t->real), prefix);
            }
        }
        if (c->partition >= 64)
            return -1;
        if (c->partition + 1 > t->partitions)
            t->partitions = c->partition + 1;
    }
    plan->want = calloc(corpus->ncases * 2 + 1, sizeof(*plan->want));
    plan->dead = calloc(corpus->ncases + 1, sizeof(*plan->dead));
    plan->log_lines = calloc(corpus->ncases + 1, sizeof(*plan->log_lines));
    if (!plan->want || !plan->dead || !plan->log_lines)
        return -1;
    for (size_t i = 0; i < corpus->ncases; i++) {
        const hc_case_t *c = &corpus->cases[i];
        const htopic_t *t = topic_of(plan, c);
        size_t ti = (size_t)(t - plan->topics);
        int64_t offset;
        char *detail;

        if (!produced(c))
            continue;
        offset = next_offset[ti][c->partition]++;
        if (stopped[ti][c->partition])
            continue; /* never processed: its partition stopped before it */
        plan->committed[ti][c->partition] = offset + 1;
        plan->consumed++;
        detail = localize(plan, c->detail.data ? c->detail.data : "");
        if (!detail)
            return -1;
        if (strcmp(c->action, "stop") == 0) {
            stopped[ti][c->partition] = 1;
            plan->committed[ti][c->partition] = offset;
            plan->stopped++;
            plan->log_lines[plan->nlog++] = printf_new(
                "STOPPED partition %s[%d] at offset %lld: rule %s: %s: %s", t->real, c->partition,
                (long long)offset, c->rule ? c->rule : "-", c->reason, detail);
        } else if (strcmp(c->action, "skip") == 0) {
            plan->skipped++;
            /* The first skip of a while is a warning naming the rule, the
             * others are debug lines; either says the reason and detail
             * (the debug one ends there, its fields follow: " rule=..."). */
            plan->log_lines[plan->nlog++] = printf_new(
                "skipped record %s[%d]@%lld (rule %s): %s: %s (" ALT
                "skipped record %s[%d]@%lld: %s: %s rule=",
                t->real, c->partition, (long long)offset, c->rule ? c->rule : "-", c->reason,
                detail, t->real, c->partition, (long long)offset, c->reason, detail);
        } else if (strcmp(c->action, "dead-letter") == 0) {
            plan->dead[plan->ndead++] = (hdead_t){c, t, offset};
        }
        free(detail);
        for (size_t p = 0; p < c->npublish; p++) {
            hwant_t *w = &plan->want[plan->nwant++];
            w->stream = ti * 64 + (size_t)c->partition;
            w->channel = localize(plan, c->publish[p].channel.data);
            w->message = &c->publish[p].message;
            if (!w->channel)
                return -1;
        }
    }
    for (size_t i = 0; i < plan->nlog; i++)
        if (!plan->log_lines[i])
            return -1;
    return 0;
}

static void plan_free(hplan_t *plan) {
    for (size_t i = 0; i < plan->nwant; i++)
        free(plan->want[i].channel);
    for (size_t i = 0; i < plan->nlog; i++)
        free(plan->log_lines[i]);
    free(plan->want);
    free(plan->dead);
    free(plan->log_lines);
}

/* ------------------------------------------------------------- kafka */

static rd_kafka_t *client_new(rd_kafka_conf_t *conf) {
    char errstr[512];
    rd_kafka_t *rk;

    /* Errors only: librdkafka's transient warnings are not the test's output. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "bootstrap.servers", h_brokers(), errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "message.max.bytes", BIG_MESSAGE_BYTES, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return rk;
}

/*
 * Creates `topic` taking records of up to BIG_MESSAGE_BYTES, then lets
 * h_create_topic (which accepts a topic that exists) wait for its leaders.
 * Returns 0 or -1 (message on stderr).
 */
static int create_big_topic(const char *topic, int partitions) {
    rd_kafka_t *rk = client_new(rd_kafka_conf_new());
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    char errstr[256];
    int rc = -1;

    if (!rk)
        return -1;
    nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    if (!nt || rd_kafka_NewTopic_set_config(nt, "max.message.bytes", BIG_MESSAGE_BYTES) != 0) {
        fprintf(stderr, "topic %s: %s\n", topic, nt ? "cannot set max.message.bytes" : errstr);
        goto done;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT) {
        size_t n;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t err = n ? rd_kafka_topic_result_error(tr[0]) : rd_kafka_event_error(ev);
        if (err)
            fprintf(stderr, "create topic %s: %s\n", topic, rd_kafka_err2str(err));
        else
            rc = 0;
    } else {
        fprintf(stderr, "create topic %s: no answer\n", topic);
    }
done:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return rc == 0 ? h_create_topic(topic, partitions) : -1;
}

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    if (m->err) {
        (*(int *)opaque)++;
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

/* Produces case c, byte for byte, to its topic and partition. */
static int produce_case(rd_kafka_t *rk, const htopic_t *t, const hc_case_t *c) {
    rd_kafka_resp_err_t err;

    do {
        rd_kafka_headers_t *hdrs = c->nheaders ? rd_kafka_headers_new(c->nheaders) : NULL;

        for (size_t i = 0; i < c->nheaders; i++)
            rd_kafka_header_add(hdrs, c->headers[i].name, -1, c->headers[i].value.data,
                                c->headers[i].value.data ? (ssize_t)c->headers[i].value.len : 0);
        err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(t->real), RD_KAFKA_V_PARTITION(c->partition),
            RD_KAFKA_V_KEY(c->key.data, c->key.len), RD_KAFKA_V_VALUE(c->value.data, c->value.len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err && hdrs)
            rd_kafka_headers_destroy(hdrs); /* not taken by a failed producev */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 50);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (err)
        fprintf(stderr, "produce case %s: %s\n", c->name, rd_kafka_err2str(err));
    rd_kafka_poll(rk, 0);
    return err ? -1 : 0;
}

/* Produces every case that takes part, in file order; returns how many failed. */
static int produce_corpus(const hplan_t *plan, const hc_corpus_t *corpus) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    int failed = 0;
    rd_kafka_t *rk;

    /* Idempotent: librdkafka's retries must not reorder or repeat a case. */
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
    rd_kafka_conf_set_dr_msg_cb(conf, delivered);
    rd_kafka_conf_set_opaque(conf, &failed);
    rk = client_new(conf);
    if (!rk)
        return -1;
    for (size_t i = 0; i < corpus->ncases; i++)
        if (produced(&corpus->cases[i]) &&
            produce_case(rk, topic_of(plan, &corpus->cases[i]), &corpus->cases[i]) != 0)
            failed++;
    if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "flush timed out\n");
        failed++;
    }
    rd_kafka_destroy(rk);
    return failed;
}

/* ---------------------------------------------------------- assertions */

static int same(const char *got, size_t got_len, const hc_bytes_t *want) {
    if (!want->data)
        return got == NULL;
    return got && got_len == want->len && memcmp(got, want->data, got_len) == 0;
}

/* Index of the first unused expectation of `stream` from `from` on, or nwant. */
static size_t next_of(const hplan_t *plan, const unsigned char *used, size_t stream, size_t from) {
    while (from < plan->nwant && (used[from] || plan->want[from].stream != stream))
        from++;
    return from;
}

static int note_is(const h_note_t *got, const hwant_t *want) {
    return strcmp(got->channel, want->channel) == 0 &&
           same(got->message, got->message_len, want->message);
}

/*
 * The notifications received must be exactly the expected ones: each is the
 * next one expected of some partition (partitions interleave freely, each
 * keeps its order), and at the end every partition's are used up. A
 * notification that is no partition's next is reported once, and when it is
 * a later one of some partition, that partition goes on from there, so one
 * wrong or lost notification reads as one, not as every one after it.
 */
static void assert_notifications(const hplan_t *plan, const h_sub_t *sub) {
    unsigned char *used = calloc(plan->nwant + 1, 1);
    size_t n = h_sub_count(sub);

    CU_ASSERT_PTR_NOT_NULL_FATAL(used);
    for (size_t i = 0; i < n; i++) {
        const h_note_t *got = h_sub_note(sub, i);
        size_t hit = plan->nwant;

        for (size_t w = 0; w < plan->nwant && hit == plan->nwant; w++)
            if (next_of(plan, used, plan->want[w].stream, 0) == w && note_is(got, &plan->want[w]))
                hit = w;
        if (hit < plan->nwant) {
            used[hit] = 1;
            continue;
        }
        for (size_t w = 0; w < plan->nwant && hit == plan->nwant; w++)
            if (!used[w] && note_is(got, &plan->want[w]))
                hit = w;
        if (hit == plan->nwant) {
            fprintf(stderr, "\nnotification #%zu was not expected: %s %.*s\n", i, got->channel,
                    (int)got->message_len, got->message);
        } else {
            for (size_t w = next_of(plan, used, plan->want[hit].stream, 0); w < hit;
                 w = next_of(plan, used, plan->want[hit].stream, w + 1)) {
                fprintf(stderr, "\nnot received before notification #%zu: %s %.*s\n", i,
                        plan->want[w].channel, (int)plan->want[w].message->len,
                        plan->want[w].message->data);
                used[w] = 2; /* reported */
            }
            used[hit] = 1;
        }
        CU_FAIL("a notification out of place");
    }
    for (size_t w = 0; w < plan->nwant; w++) {
        if (!used[w])
            fprintf(stderr, "\nnot received: %s %.*s\n", plan->want[w].channel,
                    (int)plan->want[w].message->len, plan->want[w].message->data);
        CU_ASSERT(used[w] == 1);
    }
    free(used);
}

/* The record dead-lettered for `d` must be exact: key, value, the original
 * headers in order (but for any k2r.* the bridge sets: those it replaces),
 * then its six k2r.* headers. */
static void assert_dead_letter(const hplan_t *plan, const hdead_t *d, const h_record_t *r) {
    static const char *const ours[] = {
        "k2r.error.reason", "k2r.error.detail",     "k2r.rule",
        "k2r.source.topic", "k2r.source.partition", "k2r.source.offset"};
    char partition[16], offset[32];
    char *detail = localize(plan, d->c->detail.data);
    const char *want[6];
    size_t h = 0;

    snprintf(partition, sizeof(partition), "%d", d->c->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)d->offset);
    want[0] = d->c->reason;
    want[1] = detail;
    want[2] = d->c->rule ? d->c->rule : "-";
    want[3] = d->t->real;
    want[4] = partition;
    want[5] = offset;
    if (h_record_header(r, "k2r.error.truncated", NULL)) {
        /* Too large for the dead-letter topic as it was: a stub with the
         * six headers and the value's size, nothing else. Only a record of
         * about a megabyte or more may come as one. */
        char size[24];
        snprintf(size, sizeof(size), "%zu", d->c->value.len);
        CU_ASSERT(d->c->value.len >= 900000);
        CU_ASSERT_PTR_NULL(r->key);
        CU_ASSERT_EQUAL(r->value_len, 0);
        CU_ASSERT_EQUAL_FATAL(r->nheaders, 7);
        for (size_t k = 0; k < 6; k++) {
            CU_ASSERT_STRING_EQUAL(r->headers[k].name, ours[k]);
            CU_ASSERT(r->headers[k].value && strcmp(r->headers[k].value, want[k]) == 0);
        }
        CU_ASSERT_STRING_EQUAL(r->headers[6].name, "k2r.error.truncated");
        CU_ASSERT(r->headers[6].value && strcmp(r->headers[6].value, size) == 0);
        free(detail);
        return;
    }
    if (!same(r->key, r->key_len, &d->c->key) || !same(r->value, r->value_len, &d->c->value))
        fprintf(stderr, "\ndead letter of case %s: key or value differs\n", d->c->name);
    CU_ASSERT(same(r->key, r->key_len, &d->c->key));
    CU_ASSERT(same(r->value, r->value_len, &d->c->value));
    for (size_t i = 0; i < d->c->nheaders; i++) {
        const hc_header_t *orig = &d->c->headers[i];
        int replaced = 0;

        for (size_t k = 0; k < 6; k++)
            replaced |= strcmp(orig->name, ours[k]) == 0;
        if (replaced)
            continue;
        CU_ASSERT_FATAL(h < r->nheaders);
        if (strcmp(r->headers[h].name, orig->name) != 0 ||
            !same(r->headers[h].value, r->headers[h].value_len, &orig->value))
            fprintf(stderr, "\ndead letter of case %s: header #%zu differs\n", d->c->name, h);
        CU_ASSERT_STRING_EQUAL(r->headers[h].name, orig->name);
        CU_ASSERT(same(r->headers[h].value, r->headers[h].value_len, &orig->value));
        h++;
    }
    CU_ASSERT_EQUAL_FATAL(r->nheaders, h + 6);
    for (size_t k = 0; k < 6; k++, h++) {
        CU_ASSERT_STRING_EQUAL(r->headers[h].name, ours[k]);
        if (!r->headers[h].value || strcmp(r->headers[h].value, want[k]) != 0)
            fprintf(stderr, "\ndead letter of case %s: %s = \"%s\", want \"%s\"\n", d->c->name,
                    ours[k], r->headers[h].value ? r->headers[h].value : "(none)", want[k]);
        CU_ASSERT(r->headers[h].value && strcmp(r->headers[h].value, want[k]) == 0);
        CU_ASSERT_EQUAL(r->headers[h].value_len, strlen(want[k]));
    }
    free(detail);
}

/* The dead letters of each source topic, in order (topics interleave). */
static void assert_dead_letters(const hplan_t *plan, const h_consumer_t *c) {
    CU_ASSERT_EQUAL(h_consumer_count(c), plan->ndead);
    for (size_t t = 0; t < plan->ntopics; t++) {
        size_t k = 0;
        for (size_t i = 0; i < h_consumer_count(c); i++) {
            const h_record_t *r = h_consumer_record(c, i);
            const char *topic = h_record_header(r, "k2r.source.topic", NULL);

            if (!topic || strcmp(topic, plan->topics[t].real) != 0)
                continue;
            while (k < plan->ndead && plan->dead[k].t != &plan->topics[t])
                k++;
            CU_ASSERT_FATAL(k < plan->ndead);
            assert_dead_letter(plan, &plan->dead[k], r);
            k++;
        }
        while (k < plan->ndead && plan->dead[k].t != &plan->topics[t])
            k++;
        CU_ASSERT_EQUAL(k, plan->ndead); /* none of this topic missing */
    }
}

/* 1 when the log holds one of the alternatives of `line`. */
static int log_has_any(const h_bridge_t *b, const char *line) {
    char *copy = strdup(line), *save = NULL;
    int found = 0;

    for (char *alt = strtok_r(copy, ALT, &save); alt && !found; alt = strtok_r(NULL, ALT, &save))
        found = h_bridge_log_has(b, alt);
    free(copy);
    return found;
}

/* Polls the log until it holds `line` (log_has_any) or the deadline passes. */
static int wait_log_any(const h_bridge_t *b, const char *line, int64_t deadline) {
    while (!log_has_any(b, line)) {
        if (h_now_ms() >= deadline)
            return 0;
        poll(NULL, 0, 50); /* polling a log file: there is no event to wait on */
    }
    return 1;
}

/* ---------------------------------------------------------------- test */

static void test_corpus(void) {
    hc_corpus_t corpus = {NULL, 0};
    char err[512], *fixture = NULL, *rules = NULL, *yaml = NULL, topics[512] = "";
    char pattern[16], stats[256];
    h_sub_t *sub = NULL;
    h_consumer_t *dead = NULL;
    h_bridge_t b = {0};
    unsigned int failures = CU_get_number_of_failures();
    hplan_t plan;
    size_t left_out = 0;

    if (hc_load(hostile_path("cases.txt"), &corpus, err, sizeof(err)) != 0)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_FATAL(corpus.ncases >= 100);
    CU_ASSERT_EQUAL_FATAL(plan_make(&plan, &corpus), 0);
    for (size_t i = 0; i < corpus.ncases; i++)
        left_out += !produced(&corpus.cases[i]);

    /* The fixture's rules and limits, with this run's names. */
    {
        FILE *f = fopen(hostile_path("bridge.yaml"), "r");
        size_t len = 0;
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        if (getdelim(&fixture, &len, '\0', f) < 0) {
            free(fixture);
            fixture = NULL;
        }
        fclose(f);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(fixture);
    {
        const char *limits = strstr(fixture, "\nlimits:\n"), *items = strstr(fixture, "\nrules:\n");
        char *sections;
        h_config_opts_t opts = {plan.dlq, NULL, NULL, NULL, NULL};

        CU_ASSERT_FATAL(limits && items && limits < items);
        /* Debug lines name every skipped record, not only the first of 10 s;
         * the text format is the one whose lines are matched here. */
        sections = printf_new("%.*slog:\n  level: debug\n  format: text\n", (int)(items - limits),
                              limits + 1);
        rules = localize(&plan, items + strlen("\nrules:\n"));
        CU_ASSERT_FATAL(sections && rules);
        opts.sections = sections;
        for (size_t t = 0; t < plan.ntopics; t++)
            snprintf(topics + strlen(topics), sizeof(topics) - strlen(topics), "%s%s",
                     t ? ", " : "", plan.topics[t].real);
        yaml = malloc(65536);
        CU_ASSERT_PTR_NOT_NULL_FATAL(yaml);
        h_config_opts(yaml, 65536, plan.group, topics, h_redis_port(), &opts, rules);
        free(sections);
    }

    for (size_t t = 0; t < plan.ntopics; t++)
        CU_ASSERT_EQUAL_FATAL(create_big_topic(plan.topics[t].real, plan.topics[t].partitions), 0);
    CU_ASSERT_EQUAL_FATAL(create_big_topic(plan.dlq, 1), 0);
    snprintf(pattern, sizeof(pattern), "%s:*", plan.prefix);
    sub = h_sub_new(h_redis_port(), pattern);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    CU_ASSERT_EQUAL_FATAL(produce_corpus(&plan, &corpus), 0);
    fprintf(stderr,
            "[%zu cases produced, %zu known bug(s) left out; expecting %zu notifications, "
            "%zu dead letters, %zu skips, %zu stopped partitions] ",
            corpus.ncases - left_out, left_out, plan.nwant, plan.ndead, plan.skipped, plan.stopped);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&b, yaml), 0);

    /* Every partition that does not stop ends with a sentinel that publishes,
     * so all notifications arriving means all of it was processed. The dead
     * letters, the stopped partitions and the log line of every skipped
     * record are awaited too (the topic no rule takes publishes nothing). */
    CU_ASSERT_EQUAL(h_sub_wait(sub, plan.nwant, h_deadline(120000)), plan.nwant);
    dead = h_consumer_new(plan.dlq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dead);
    CU_ASSERT_EQUAL(h_consumer_wait(dead, plan.ndead, h_deadline(60000)), plan.ndead);
    CU_ASSERT(h_bridge_wait_log_count(&b, "STOPPED partition", plan.stopped, h_deadline(30000)));
    {
        int64_t deadline = h_deadline(30000);
        for (size_t i = 0; i < plan.nlog; i++)
            wait_log_any(&b, plan.log_lines[i], deadline);
    }
    /* Nothing more arrives. */
    CU_ASSERT_EQUAL(h_sub_wait(sub, plan.nwant + 1, h_deadline(1000)), plan.nwant);
    CU_ASSERT_EQUAL(h_consumer_wait(dead, plan.ndead + 1, h_deadline(1000)), plan.ndead);

    assert_notifications(&plan, sub);
    assert_dead_letters(&plan, dead);
    for (size_t i = 0; i < plan.nlog; i++) {
        if (!log_has_any(&b, plan.log_lines[i]))
            fprintf(stderr, "\nnot in the log: %.*s\n", (int)strcspn(plan.log_lines[i], ALT),
                    plan.log_lines[i]);
        CU_ASSERT(log_has_any(&b, plan.log_lines[i]));
    }
    CU_ASSERT_EQUAL(h_bridge_log_count(&b, "STOPPED partition"), plan.stopped);

    CU_ASSERT(h_bridge_alive(&b));
    CU_ASSERT_EQUAL(h_bridge_stop(&b, SIGTERM), 0);
    snprintf(stats, sizeof(stats),
             "stats: consumed=%zu published=%zu no_subscribers=0 publish_errors=0 skipped=%zu "
             "dead_lettered=%zu stopped_partitions=%zu ",
             plan.consumed, plan.nwant, plan.skipped, plan.ndead, plan.stopped);
    if (!h_bridge_log_has(&b, stats))
        fprintf(stderr, "\nno stats line \"%s\"\n", stats);
    CU_ASSERT(h_bridge_log_has(&b, stats));
    /* Committed at exit: every partition to its end, a stopped one at its
     * stop case, so a restart resumes there and nothing else is read twice. */
    for (size_t t = 0; t < plan.ntopics; t++) {
        int64_t offsets[64];
        CU_ASSERT_EQUAL_FATAL(
            h_committed(plan.group, plan.topics[t].real, plan.topics[t].partitions, offsets), 0);
        for (int p = 0; p < plan.topics[t].partitions; p++) {
            if (offsets[p] != plan.committed[t][p])
                fprintf(stderr, "\n%s[%d]: committed %lld, want %lld\n", plan.topics[t].real, p,
                        (long long)offsets[p], (long long)plan.committed[t][p]);
            CU_ASSERT_EQUAL(offsets[p], plan.committed[t][p]);
        }
    }

    if (CU_get_number_of_failures() > failures)
        h_bridge_dump_log(&b);
    h_bridge_cleanup(&b);
    h_consumer_destroy(dead);
    h_sub_destroy(sub);
    free(yaml);
    free(rules);
    free(fixture);
    plan_free(&plan);
    hc_free(&corpus);
}

int test_hostile_register(void);

int test_hostile_register(void) {
    CU_pSuite s = CU_add_suite("hostile", NULL, NULL);

    if (!s || !CU_add_test(s,
                           "the hostile corpus through the daemon: exact notifications, dead "
                           "letters, skips, stops",
                           test_corpus))
        return CU_get_error();
    return 0;
}
