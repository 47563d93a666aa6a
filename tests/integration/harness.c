/* SPDX-License-Identifier: Apache-2.0 */
/*
 * harness.c - drives the real Kafka broker and redis-server for the
 * integration tests (see harness.h). Child processes (the bridge, socat) get
 * PR_SET_PDEATHSIG and are also killed from an atexit handler, so a failing
 * or interrupted test run leaves nothing behind.
 */
#include "harness.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- basics */

const char *h_brokers(void) {
    const char *b = getenv("K2R_TEST_KAFKA_BROKERS");
    if (!b || !*b) {
        fprintf(stderr, "K2R_TEST_KAFKA_BROKERS is not set: run through scripts/with-stack.sh\n");
        exit(2);
    }
    return b;
}

int h_redis_port(void) {
    const char *p = getenv("K2R_TEST_REDIS_PORT");
    if (!p || !*p) {
        fprintf(stderr, "K2R_TEST_REDIS_PORT is not set: run through scripts/with-stack.sh\n");
        exit(2);
    }
    return atoi(p);
}

int64_t h_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t h_deadline(int ms) {
    const char *m = getenv("K2R_TEST_TIMEOUT_MULTIPLIER");
    double mult = m && *m ? atof(m) : 1.0;
    if (mult <= 0)
        mult = 1.0;
    return h_now_ms() + (int64_t)(ms * mult);
}

void h_unique(char *out, size_t size, const char *prefix) {
    static int counter;
    snprintf(out, size, "%s-%d-%d", prefix, (int)getpid(), ++counter);
}

const char *h_binary(void) {
    static char path[4096];
    snprintf(path, sizeof(path), "%s/build/kafka-redis-bridge", K2R_SOURCE_DIR);
    return path;
}

/* Children to kill if the test process exits early. */
static pid_t children[64];
static size_t nchildren;

static void kill_children(void) {
    for (size_t i = 0; i < nchildren; i++)
        if (children[i] > 0)
            kill(-children[i], SIGKILL);
}

static void track_child(pid_t pid) {
    static int registered;
    if (!registered) {
        atexit(kill_children);
        registered = 1;
    }
    for (size_t i = 0; i < nchildren; i++)
        if (children[i] == pid)
            return;
    if (nchildren < sizeof(children) / sizeof(children[0]))
        children[nchildren++] = pid;
}

static void untrack_child(pid_t pid) {
    for (size_t i = 0; i < nchildren; i++)
        if (children[i] == pid)
            children[i] = 0;
}

/* -------------------------------------------------------------- kafka */

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
    char errstr[512];
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", h_brokers(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk)
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return rk;
}

int h_create_topic(const char *topic, int partitions) {
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    char errstr[256];
    int rc = -1;
    int64_t deadline = h_deadline(30000);

    if (!rk)
        return -1;
    nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
        rd_kafka_resp_err_t err = n ? rd_kafka_topic_result_error(tr[0]) : rd_kafka_event_error(ev);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            fprintf(stderr, "create topic %s: %s\n", topic, rd_kafka_err2str(err));
        else
            rc = 0;
    } else {
        fprintf(stderr, "create topic %s: no answer\n", topic);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);

    /* Wait until every partition has a leader, so producing cannot race it. */
    while (rc == 0) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        int ready = 0;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && !md->topics[0].err &&
                md->topics[0].partition_cnt == partitions) {
                ready = 1;
                for (int i = 0; i < partitions; i++)
                    if (md->topics[0].partitions[i].leader < 0)
                        ready = 0;
            }
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
        if (ready)
            break;
        if (h_now_ms() > deadline) {
            fprintf(stderr, "topic %s: partitions have no leader in time\n", topic);
            rc = -1;
        }
    }
    rd_kafka_destroy(rk);
    return rc;
}

/* 1 when the cluster's metadata lists `topic`, 0 when not, -1 without an answer. */
static int topic_listed(rd_kafka_t *rk, const char *topic) {
    const struct rd_kafka_metadata *md = NULL;
    int found = 0;

    if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    for (int i = 0; i < md->topic_cnt && !found; i++)
        found = strcmp(md->topics[i].topic, topic) == 0;
    rd_kafka_metadata_destroy(md);
    return found;
}

int h_delete_topic(const char *topic) {
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    rd_kafka_DeleteTopic_t *dt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    int64_t deadline = h_deadline(30000);
    int rc = -1;

    if (!rk)
        return -1;
    dt = rd_kafka_DeleteTopic_new(topic);
    q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DELETETOPICS_RESULT) {
        const rd_kafka_DeleteTopics_result_t *res = rd_kafka_event_DeleteTopics_result(ev);
        size_t n;
        const rd_kafka_topic_result_t **tr = rd_kafka_DeleteTopics_result_topics(res, &n);
        rd_kafka_resp_err_t err = n ? rd_kafka_topic_result_error(tr[0]) : rd_kafka_event_error(ev);

        if (err)
            fprintf(stderr, "delete topic %s: %s\n", topic, rd_kafka_err2str(err));
        else
            rc = 0;
    } else {
        fprintf(stderr, "delete topic %s: no answer\n", topic);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    while (rc == 0 && topic_listed(rk, topic) != 0) {
        if (h_now_ms() > deadline) {
            fprintf(stderr, "topic %s: still listed after its deletion\n", topic);
            rc = -1;
        }
        poll(NULL, 0, 100); /* waiting for the controller: no event to wait on */
    }
    rd_kafka_destroy(rk);
    return rc;
}

struct h_producer_s {
    rd_kafka_t *rk;
    int failed;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->err) {
        h_producer_t *p = m->_private;
        p->failed++;
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

h_producer_t *h_producer_new(void) {
    h_producer_t *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];

    rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    p->rk = new_client(RD_KAFKA_PRODUCER, conf);
    if (!p->rk) {
        free(p);
        return NULL;
    }
    return p;
}

int h_produce_headers(h_producer_t *p, const char *topic, int partition, const char *key,
                      const void *value, size_t len, const char *const *headers,
                      const size_t *header_lens) {
    rd_kafka_resp_err_t err;

    do {
        rd_kafka_headers_t *hdrs = NULL;

        if (headers) {
            hdrs = rd_kafka_headers_new(8);
            for (size_t i = 0; headers[2 * i]; i++) {
                const char *v = headers[2 * i + 1];
                ssize_t vlen = header_lens ? (ssize_t)header_lens[i] : -1;
                rd_kafka_header_add(hdrs, headers[2 * i], -1, v, v ? vlen : 0);
            }
        }
        err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(p),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err && hdrs)
            rd_kafka_headers_destroy(hdrs); /* not taken by a failed producev */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p->rk, 50);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (err) {
        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_poll(p->rk, 0);
    return 0;
}

int h_produce(h_producer_t *p, const char *topic, int partition, const char *key, const void *value,
              size_t len) {
    return h_produce_headers(p, topic, partition, key, value, len, NULL, NULL);
}

int h_flush(h_producer_t *p) {
    if (rd_kafka_flush(p->rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "flush timed out\n");
        return -1;
    }
    return p->failed;
}

void h_producer_destroy(h_producer_t *p) {
    if (!p)
        return;
    rd_kafka_flush(p->rk, 10000);
    rd_kafka_destroy(p->rk);
    free(p);
}

struct h_consumer_s {
    rd_kafka_t *rk;
    h_record_t *records;
    size_t count, cap;
};

h_consumer_t *h_consumer_new(const char *topic) {
    h_consumer_t *c = calloc(1, sizeof(*c));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *topics;
    char errstr[256], group[128];

    h_unique(group, sizeof(group), "h-consumer");
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, sizeof(errstr));
    c->rk = new_client(RD_KAFKA_CONSUMER, conf);
    if (!c->rk) {
        free(c);
        return NULL;
    }
    rd_kafka_poll_set_consumer(c->rk);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(c->rk, topics) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "consumer: cannot subscribe to %s\n", topic);
        rd_kafka_topic_partition_list_destroy(topics);
        h_consumer_destroy(c);
        return NULL;
    }
    rd_kafka_topic_partition_list_destroy(topics);
    return c;
}

/* A NUL-terminated copy of n bytes (NULL stays NULL). */
static char *copy_bytes(const void *bytes, size_t n) {
    char *out;

    if (!bytes)
        return NULL;
    out = malloc(n + 1);
    memcpy(out, bytes, n);
    out[n] = '\0';
    return out;
}

static void consumer_take(h_consumer_t *c, const rd_kafka_message_t *m) {
    rd_kafka_headers_t *hdrs = NULL;
    h_record_t *r;

    if (c->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->records = realloc(c->records, c->cap * sizeof(*c->records));
    }
    r = &c->records[c->count++];
    memset(r, 0, sizeof(*r));
    r->partition = m->partition;
    r->offset = m->offset;
    r->key = copy_bytes(m->key, m->key_len);
    r->key_len = m->key ? m->key_len : 0;
    r->value = copy_bytes(m->payload, m->len);
    r->value_len = m->payload ? m->len : 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        size_t n = rd_kafka_header_cnt(hdrs);
        r->headers = calloc(n ? n : 1, sizeof(*r->headers));
        for (size_t i = 0; i < n; i++) {
            const char *name;
            const void *value;
            size_t size;
            if (rd_kafka_header_get_all(hdrs, i, &name, &value, &size))
                break;
            r->headers[i].name = strdup(name);
            r->headers[i].value = copy_bytes(value, size);
            r->headers[i].value_len = value ? size : 0;
            r->nheaders++;
        }
    }
}

size_t h_consumer_wait(h_consumer_t *c, size_t count, int64_t deadline) {
    while (c->count < count) {
        int64_t left = deadline - h_now_ms();
        rd_kafka_message_t *m;

        if (left <= 0)
            break;
        m = rd_kafka_consumer_poll(c->rk, left > 200 ? 200 : (int)left);
        if (!m)
            continue;
        if (m->err)
            fprintf(stderr, "consumer: %s\n", rd_kafka_message_errstr(m));
        else
            consumer_take(c, m);
        rd_kafka_message_destroy(m);
    }
    return c->count;
}

size_t h_consumer_count(const h_consumer_t *c) {
    return c->count;
}

const h_record_t *h_consumer_record(const h_consumer_t *c, size_t i) {
    return i < c->count ? &c->records[i] : NULL;
}

const char *h_record_header(const h_record_t *r, const char *name, size_t *len) {
    for (size_t i = r->nheaders; i-- > 0;) {
        if (strcmp(r->headers[i].name, name) == 0) {
            if (len)
                *len = r->headers[i].value_len;
            return r->headers[i].value;
        }
    }
    if (len)
        *len = 0;
    return NULL;
}

void h_consumer_destroy(h_consumer_t *c) {
    if (!c)
        return;
    if (c->rk) {
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
    }
    for (size_t i = 0; i < c->count; i++) {
        h_record_t *r = &c->records[i];
        for (size_t j = 0; j < r->nheaders; j++) {
            free(r->headers[j].name);
            free(r->headers[j].value);
        }
        free(r->headers);
        free(r->key);
        free(r->value);
    }
    free(c->records);
    free(c);
}

/* -------------------------------------------------------------- redis */

struct h_sub_s {
    redisContext *c;
    h_note_t *notes;
    size_t count, cap;
    /* What to subscribe to again after a reconnect (h_sub_new_resilient). */
    int port;
    char *command; /* "PSUBSCRIBE pattern" or "SSUBSCRIBE ch ..." */
    int resilient;
    unsigned reconnects;
};

/* Connects and subscribes: s->command as is, or, for SSUBSCRIBE, one
 * command per channel (a sharded subscription names channels of one slot).
 * 0 or -1 (message on stderr). */
static int sub_connect(h_sub_t *s) {
    char cmd[512];
    const char *p = s->command;
    int sharded = strncmp(s->command, "SSUBSCRIBE ", 11) == 0;

    if (s->c)
        redisFree(s->c);
    s->c = redisConnect("127.0.0.1", s->port);
    if (!s->c || s->c->err) {
        fprintf(stderr, "subscriber connect %d: %s\n", s->port, s->c ? s->c->errstr : "oom");
        return -1;
    }
    if (sharded)
        p += 11;
    while (*p) {
        redisReply *r;
        size_t len = sharded ? strcspn(p, " ") : strlen(p);

        snprintf(cmd, sizeof(cmd), "%s%.*s", sharded ? "SSUBSCRIBE " : "", (int)len, p);
        r = redisCommand(s->c, cmd);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "%s on %d failed: %s\n", cmd, s->port,
                    r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
            if (r)
                freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
        p += len;
        while (*p == ' ')
            p++;
    }
    return 0;
}

static h_sub_t *sub_new(int port, const char *command, int resilient) {
    h_sub_t *s = calloc(1, sizeof(*s));

    s->port = port;
    s->command = strdup(command);
    s->resilient = resilient;
    if (sub_connect(s) != 0) {
        h_sub_destroy(s);
        return NULL;
    }
    return s;
}

h_sub_t *h_sub_new(int port, const char *pattern) {
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "PSUBSCRIBE %s", pattern);
    return sub_new(port, cmd, 0);
}

h_sub_t *h_sub_new_resilient(int port, const char *pattern) {
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "PSUBSCRIBE %s", pattern);
    return sub_new(port, cmd, 1);
}

h_sub_t *h_ssub_new(int port, const char *const *channels, size_t n) {
    char cmd[8192];
    size_t len = (size_t)snprintf(cmd, sizeof(cmd), "SSUBSCRIBE");

    for (size_t i = 0; i < n && len < sizeof(cmd); i++)
        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " %s", channels[i]);
    return sub_new(port, cmd, 0);
}

unsigned h_sub_reconnects(const h_sub_t *s) {
    return s->reconnects;
}

static void sub_take(h_sub_t *s, redisReply *r) {
    /* pmessage, pattern, channel, message; or smessage, channel, message */
    size_t ch;

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
        strcmp(r->element[0]->str, "pmessage") == 0)
        ch = 2;
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
             strcmp(r->element[0]->str, "smessage") == 0)
        ch = 1;
    else
        return;
    {
        h_note_t *n;
        if (s->count == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 256;
            s->notes = realloc(s->notes, s->cap * sizeof(*s->notes));
        }
        n = &s->notes[s->count++];
        n->channel = strndup(r->element[ch]->str, r->element[ch]->len);
        n->message = malloc(r->element[ch + 1]->len + 1);
        memcpy(n->message, r->element[ch + 1]->str, r->element[ch + 1]->len);
        n->message[r->element[ch + 1]->len] = '\0';
        n->message_len = r->element[ch + 1]->len;
    }
}

size_t h_sub_wait(h_sub_t *s, size_t count, int64_t deadline) {
    while (s->count < count) {
        void *reply = NULL;
        struct pollfd pfd = {s->c->fd, POLLIN, 0};
        int64_t left = deadline - h_now_ms();

        /* Replies already buffered first, then the socket. */
        if (redisGetReplyFromReader(s->c, &reply) != REDIS_OK)
            break;
        if (reply) {
            sub_take(s, reply);
            freeReplyObject(reply);
            continue;
        }
        if (left <= 0)
            break;
        if (poll(&pfd, 1, left > 200 ? 200 : (int)left) > 0 && redisBufferRead(s->c) != REDIS_OK) {
            if (!s->resilient) {
                fprintf(stderr, "subscriber read: %s\n", s->c->errstr);
                break;
            }
            /* Killed (a failover's CLIENT KILL): subscribe again at once,
             * until the deadline. */
            s->reconnects++;
            while (sub_connect(s) != 0 && h_now_ms() < deadline)
                poll(NULL, 0, 20); /* the server is restarting: no event to wait on */
            if (!s->c || s->c->err)
                break;
        }
    }
    return s->count;
}

size_t h_sub_count(const h_sub_t *s) {
    return s->count;
}

const h_note_t *h_sub_note(const h_sub_t *s, size_t i) {
    return i < s->count ? &s->notes[i] : NULL;
}

void h_sub_destroy(h_sub_t *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++) {
        free(s->notes[i].channel);
        free(s->notes[i].message);
    }
    free(s->notes);
    free(s->command);
    if (s->c)
        redisFree(s->c);
    free(s);
}

/* ------------------------------------------------------------ bridge */

static pid_t spawn(const char *const argv[], const char *log_path) {
    pid_t pid = fork();

    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
                close(fd);
            }
        } else {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid > 0) {
        setpgid(pid, pid);
        track_child(pid);
    }
    return pid;
}

int h_bridge_restart(h_bridge_t *b) {
    const char *argv[] = {h_binary(), "run", "-c", b->config, NULL};

    b->pid = spawn(argv, b->log);
    return b->pid > 0 ? 0 : -1;
}

int h_bridge_rewrite(h_bridge_t *b, const char *yaml) {
    char tmp[300];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.new", b->config);
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    fputs(yaml, f);
    if (fclose(f) != 0 || rename(tmp, b->config) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int h_bridge_start(h_bridge_t *b, const char *yaml) {
    FILE *f;
    int fd;

    snprintf(b->config, sizeof(b->config), "/tmp/k2r-it-config-XXXXXX");
    fd = mkstemp(b->config);
    if (fd < 0)
        return -1;
    f = fdopen(fd, "w");
    fputs(yaml, f);
    fclose(f);
    snprintf(b->log, sizeof(b->log), "%s.log", b->config);
    return h_bridge_restart(b);
}

int h_bridge_stop(h_bridge_t *b, int sig) {
    int64_t deadline = h_deadline(30000);
    int status;

    if (b->pid <= 0)
        return -1;
    kill(b->pid, sig);
    while (h_now_ms() < deadline) {
        pid_t r = waitpid(b->pid, &status, WNOHANG);
        if (r == b->pid) {
            untrack_child(b->pid);
            b->pid = 0;
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        poll(NULL, 0, 20); /* waiting for a child: there is no fd to wait on */
    }
    kill(b->pid, SIGKILL);
    waitpid(b->pid, &status, 0);
    untrack_child(b->pid);
    b->pid = 0;
    return -1;
}

int h_bridge_alive(const h_bridge_t *b) {
    return b->pid > 0 && waitpid(b->pid, NULL, WNOHANG) == 0;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f)
        return NULL;
    do {
        if (len + 4096 >= cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

int h_bridge_log_has(const h_bridge_t *b, const char *needle) {
    char *text = read_file(b->log);
    int found = text && strstr(text, needle) != NULL;
    free(text);
    return found;
}

size_t h_bridge_log_count(const h_bridge_t *b, const char *needle) {
    char *text = read_file(b->log);
    size_t n = 0;

    for (const char *at = text; at && (at = strstr(at, needle)) != NULL; at += strlen(needle))
        n++;
    free(text);
    return n;
}

int h_bridge_wait_log_count(const h_bridge_t *b, const char *needle, size_t count,
                            int64_t deadline) {
    while (h_now_ms() < deadline) {
        if (h_bridge_log_count(b, needle) >= count)
            return 1;
        poll(NULL, 0, 50); /* polling a log file: there is no event to wait on */
    }
    return h_bridge_log_count(b, needle) >= count;
}

int h_bridge_wait_log(const h_bridge_t *b, const char *needle, int64_t deadline) {
    while (h_now_ms() < deadline) {
        if (h_bridge_log_has(b, needle))
            return 1;
        poll(NULL, 0, 50); /* polling a log file: there is no event to wait on */
    }
    return h_bridge_log_has(b, needle);
}

void h_bridge_dump_log(const h_bridge_t *b) {
    char *text = read_file(b->log);
    fprintf(stderr, "---- bridge log %s ----\n%s---- end ----\n", b->log, text ? text : "");
    free(text);
}

void h_bridge_cleanup(h_bridge_t *b) {
    if (b->pid > 0)
        h_bridge_stop(b, SIGKILL);
    if (getenv("K2R_KEEP_TEST_FILES") == NULL) {
        unlink(b->config);
        unlink(b->log);
    }
}

/* ------------------------------------------------------------- proxy */

/*
 * A free loopback port below the kernel's ephemeral range: a client that
 * reconnects to a stopped proxy's ephemeral port can be given that very port
 * as its source and connect to itself.
 */
int h_free_port(void) {
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int low = 32768;

    if (f) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    for (int attempt = 0; attempt < 1000; attempt++) {
        struct sockaddr_in a = {0};
        int port = 10000 + (int)(random() % (low > 10001 ? low - 10000 : 1));
        int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return port;
    }
    return -1;
}

static int port_open(int port) {
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int h_redis_cli(const char *args, const char *want) {
    return h_redis_cli_port(h_redis_port(), args, want);
}

int h_redis_cli_port(int port, const char *args, const char *want) {
    char cmd[1024], *out = NULL;
    int rc;

    snprintf(cmd, sizeof(cmd), "redis-cli -p %d %s", port, args);
    rc = h_run(cmd, NULL, &out, 1);
    if (rc != 0 || !out || (want && !strstr(out, want))) {
        fprintf(stderr, "%s: %s\n", cmd, out ? out : "(no output)");
        rc = -1;
    }
    free(out);
    return rc;
}

int h_proxy_start(h_proxy_t *p, int target_port) {
    char listen[128], target[64];
    const char *argv[] = {"socat", listen, target, NULL};
    int64_t deadline = h_deadline(10000);

    if (!p->port) {
        srandom((unsigned)getpid() ^ (unsigned)h_now_ms());
        p->port = h_free_port();
    }
    p->target_port = target_port;
    snprintf(listen, sizeof(listen), "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", p->port);
    snprintf(target, sizeof(target), "TCP:127.0.0.1:%d", target_port);
    p->pid = spawn(argv, NULL);
    if (p->pid <= 0)
        return -1;
    while (h_now_ms() < deadline) {
        if (port_open(p->port))
            return 0;
        poll(NULL, 0, 20); /* waiting for socat to listen: no event to wait on */
    }
    fprintf(stderr, "proxy did not start listening on %d\n", p->port);
    return -1;
}

/*
 * The delaying proxy's child: accepts on `lfd`, connects each client to
 * Redis at `target_port`, passes the client's bytes on at once and the
 * server's bytes back `delay_ms` after they arrived (in order), except for
 * each connection's first `pass_bytes` (a handshake's replies). A negative
 * delay is a black hole instead: after those bytes, the client's commands
 * are dropped and nothing more comes back. Runs until killed.
 */
#define DELAY_PAIRS  8
#define DELAY_CHUNKS 256

typedef struct delay_chunk_s {
    int64_t due;
    size_t len;
    char data[4096];
} delay_chunk_t;

typedef struct delay_pair_s {
    int client, server;
    size_t passed;    /* server bytes passed on undelayed so far */
    delay_chunk_t *q; /* ring of DELAY_CHUNKS */
    size_t head, n;
} delay_pair_t;

static void delay_close(delay_pair_t *pr) {
    close(pr->client);
    close(pr->server);
    free(pr->q);
    memset(pr, 0, sizeof(*pr));
    pr->client = pr->server = -1;
}

/* Set in the proxy's child only: after this many server bytes past
 * pass_bytes, a connection is cut (0: never). */
static size_t delay_cut_after;

static void delay_proxy_run(int lfd, int target_port, int delay_ms, size_t pass_bytes) {
    delay_pair_t pairs[DELAY_PAIRS];

    for (size_t i = 0; i < DELAY_PAIRS; i++) {
        memset(&pairs[i], 0, sizeof(pairs[i]));
        pairs[i].client = pairs[i].server = -1;
    }
    for (;;) {
        struct pollfd pfd[1 + 2 * DELAY_PAIRS];
        int64_t now = h_now_ms(), next = now + 1000;
        nfds_t n = 1;

        pfd[0] = (struct pollfd){lfd, POLLIN, 0};
        for (size_t i = 0; i < DELAY_PAIRS; i++) {
            delay_pair_t *pr = &pairs[i];
            if (pr->client < 0)
                continue;
            pfd[n++] = (struct pollfd){pr->client, POLLIN, 0};
            pfd[n++] = (struct pollfd){pr->server, pr->n < DELAY_CHUNKS ? POLLIN : 0, 0};
            if (pr->n && pr->q[pr->head].due < next)
                next = pr->q[pr->head].due;
        }
        poll(pfd, n, next > now ? (int)(next - now) : 0);
        if (pfd[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL);
            struct sockaddr_in a = {0};
            size_t i;

            for (i = 0; i < DELAY_PAIRS && pairs[i].client >= 0; i++)
                ;
            a.sin_family = AF_INET;
            a.sin_port = htons((uint16_t)target_port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (c >= 0 && i < DELAY_PAIRS) {
                int sfd = socket(AF_INET, SOCK_STREAM, 0);
                if (sfd >= 0 && connect(sfd, (struct sockaddr *)&a, sizeof(a)) == 0) {
                    pairs[i].client = c;
                    pairs[i].server = sfd;
                    pairs[i].q = calloc(DELAY_CHUNKS, sizeof(delay_chunk_t));
                } else {
                    close(c);
                    if (sfd >= 0)
                        close(sfd);
                }
            } else if (c >= 0) {
                close(c);
            }
        }
        now = h_now_ms();
        for (nfds_t k = 1; k < n; k += 2) {
            delay_pair_t *pr = NULL;
            char buf[4096];
            ssize_t got;

            for (size_t i = 0; i < DELAY_PAIRS; i++)
                if (pairs[i].client == pfd[k].fd)
                    pr = &pairs[i];
            if (!pr)
                continue;
            if (pfd[k].revents) {
                got = read(pr->client, buf, sizeof(buf));
                if (got > 0 && delay_ms < 0 && pr->passed >= pass_bytes)
                    continue; /* a black hole after the handshake */
                if (got <= 0 || write(pr->server, buf, (size_t)got) != got) {
                    delay_close(pr);
                    continue;
                }
            }
            if (pfd[k + 1].revents) {
                delay_chunk_t *ch = &pr->q[(pr->head + pr->n) % DELAY_CHUNKS];
                got = read(pr->server, ch->data, sizeof(ch->data));
                if (got <= 0) {
                    delay_close(pr);
                    continue;
                }
                if (delay_cut_after && pr->passed + (size_t)got > pass_bytes + delay_cut_after) {
                    /* The cut: what fits goes out, then both ends close. */
                    size_t keep = pass_bytes + delay_cut_after - pr->passed;
                    if (write(pr->client, ch->data, keep) < 0)
                        keep = 0;
                    delay_close(pr);
                    continue;
                }
                ch->len = (size_t)got;
                ch->due = pr->passed + (size_t)got <= pass_bytes ? now : now + delay_ms;
                pr->passed += (size_t)got;
                pr->n++;
            }
            while (pr->n && pr->q[pr->head].due <= now) {
                delay_chunk_t *ch = &pr->q[pr->head];
                if (write(pr->client, ch->data, ch->len) != (ssize_t)ch->len)
                    break;
                pr->head = (pr->head + 1) % DELAY_CHUNKS;
                pr->n--;
            }
        }
    }
}

static int proxy_fork(h_proxy_t *p, int target_port, int delay_ms, size_t pass_bytes,
                      size_t cut_after);

int h_delay_proxy_start(h_proxy_t *p, int target_port, int delay_ms, size_t pass_bytes) {
    return proxy_fork(p, target_port, delay_ms, pass_bytes, 0);
}

int h_cut_proxy_start(h_proxy_t *p, int target_port, size_t pass_bytes, size_t cut_after) {
    return proxy_fork(p, target_port, 0, pass_bytes, cut_after);
}

static int proxy_fork(h_proxy_t *p, int target_port, int delay_ms, size_t pass_bytes,
                      size_t cut_after) {
    struct sockaddr_in a = {0};
    int lfd, one = 1;
    pid_t pid;

    p->port = h_free_port();
    p->target_port = target_port;
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 16) != 0) {
        fprintf(stderr, "delay proxy: cannot listen on %d: %s\n", p->port, strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGPIPE, SIG_IGN);
        delay_cut_after = cut_after;
        delay_proxy_run(lfd, target_port, delay_ms, pass_bytes);
        _exit(0);
    }
    close(lfd);
    if (pid < 0)
        return -1;
    setpgid(pid, pid);
    track_child(pid);
    p->pid = pid;
    return 0;
}

void h_proxy_stop(h_proxy_t *p) {
    if (p->pid <= 0)
        return;
    int64_t deadline = h_deadline(5000);

    kill(-p->pid, SIGKILL); /* the whole group: the listener and every forked connection */
    waitpid(p->pid, NULL, 0);
    /* The forked connection handlers die asynchronously; wait until the group
     * is gone (or only zombies that init has not reaped yet remain). */
    while (kill(-p->pid, SIGKILL) == 0 && h_now_ms() < deadline)
        poll(NULL, 0, 10); /* waiting for processes to die: no fd to wait on */
    untrack_child(p->pid);
    p->pid = 0;
}

/* ------------------------------------------------- a redis-server of its own */

int h_redis_server_start(h_redis_server_t *r, const char *const *extra) {
    const char *flavor = getenv("K2R_TEST_REDIS_FLAVOR");
    const char *argv[32];
    char port[16], log[96];
    size_t argc = 0;
    int64_t deadline = h_deadline(10000);

    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/k2r-it-redis-XXXXXX");
    if (!mkdtemp(r->dir)) {
        r->dir[0] = '\0';
        return -1;
    }
    srandom((unsigned)getpid() ^ (unsigned)h_now_ms());
    r->port = h_free_port();
    if (r->port < 0)
        return -1;
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/server.log", r->dir);
    argv[argc++] = flavor && strcmp(flavor, "valkey") == 0 ? "valkey-server" : "redis-server";
    argv[argc++] = "--port";
    argv[argc++] = port;
    argv[argc++] = "--bind";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--dir";
    argv[argc++] = r->dir;
    for (size_t i = 0; extra && extra[i] && argc < sizeof(argv) / sizeof(argv[0]) - 1; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    r->pid = spawn(argv, log);
    if (r->pid <= 0)
        return -1;
    while (h_now_ms() < deadline) {
        if (port_open(r->port))
            return 0;
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            untrack_child(r->pid);
            r->pid = 0;
            break;
        }
        poll(NULL, 0, 20); /* waiting for a port to open: no fd to wait on */
    }
    fprintf(stderr, "%s on port %d did not start (log %s)\n", argv[0], r->port, log);
    return -1;
}

void h_redis_server_stop(h_redis_server_t *r) {
    char cmd[128], *out = NULL;

    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        untrack_child(r->pid);
        r->pid = 0;
    }
    if (r->dir[0] && getenv("K2R_KEEP_TEST_FILES") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
        h_run(cmd, NULL, &out, 1);
        free(out);
    }
    r->dir[0] = '\0';
}

/* --------------------------------------------------------------- http */

void h_http_free(h_http_t *r) {
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Reads until the server closes the connection or the deadline passes;
 * returns the bytes (NUL-terminated) or NULL. */
static char *http_read_all(int fd, int64_t deadline, size_t *len) {
    size_t cap = 16384;
    char *buf = malloc(cap);

    *len = 0;
    while (buf) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - h_now_ms();
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        if (cap - *len < 4096) {
            char *grown = realloc(buf, cap * 2);
            if (!grown)
                break;
            buf = grown;
            cap *= 2;
        }
        n = read(fd, buf + *len, cap - *len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            buf[*len] = '\0';
            return n == 0 ? buf : (free(buf), NULL);
        }
        *len += (size_t)n;
    }
    free(buf);
    return NULL;
}

/* One request to 127.0.0.1:port; r->status 0 when no answer came. */
void h_http_request(int port, const char *method, const char *path, h_http_t *r) {
    struct sockaddr_in a;
    char req[512], *raw, *split;
    size_t len;
    int fd, n;

    memset(r, 0, sizeof(*r));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                 method, path);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, req, (size_t)n) != (ssize_t)n) {
        close(fd);
        return;
    }
    raw = http_read_all(fd, h_deadline(10000), &len);
    close(fd);
    if (!raw)
        return;
    split = strstr(raw, "\r\n\r\n");
    if (split && sscanf(raw, "HTTP/1.1 %d ", &r->status) == 1) {
        *split = '\0';
        r->headers = strdup(raw);
        r->body = strdup(split + 4);
    } else {
        r->status = 0;
    }
    free(raw);
}

/* Polls `path` until it answers `status` with `body`, or the deadline
 * passes; 1 when it did. The last answer stays in *last (free it). */
int h_http_wait(int port, const char *path, int status, const char *body, int64_t deadline,
                h_http_t *last) {
    for (;;) {
        h_http_request(port, "GET", path, last);
        if (last->status == status && last->body && strcmp(last->body, body) == 0)
            return 1;
        if (h_now_ms() >= deadline)
            return 0;
        h_http_free(last);
        poll(NULL, 0, 50); /* the next probe: nothing to wait on but time */
    }
}

/* ---------------------------------------------------------- metrics */

/* The value of the series named exactly `series` (name and labels), or -1
 * when /metrics has no such line. */
int64_t h_metric(const char *text, const char *series) {
    size_t n = strlen(series);

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    }
    return -1;
}

/* Scrapes /metrics until every `series[i]` has `want[i]`, or the deadline
 * passes; returns the last text (free it), or NULL when none came. */
char *h_wait_metrics(int port, const char *const *series, const int64_t *want, size_t n,
                     int64_t deadline) {
    for (;;) {
        h_http_t r;
        size_t i = 0;

        h_http_request(port, "GET", "/metrics", &r);
        if (r.status == 200) {
            while (i < n && h_metric(r.body, series[i]) == want[i])
                i++;
        }
        if ((r.status == 200 && i == n) || h_now_ms() >= deadline) {
            char *body = r.body;

            r.body = NULL;
            h_http_free(&r);
            if (i < n && body)
                fprintf(stderr, "\n%s: %" PRId64 " (want %" PRId64 ")\n", series[i],
                        h_metric(body, series[i]), want[i]);
            return body;
        }
        h_http_free(&r);
        poll(NULL, 0, 100); /* the bridge copies its counters 4 times a second */
    }
}

/* ---------------------------------------------------- numbered records */

void h_config_numbered(const h_scene_t *sc, int port, const h_config_opts_t *opts, char *yaml,
                       size_t size) {
    char rules[512];

    snprintf(rules, sizeof(rules),
             "  - name: numbered\n"
             "    topic: %s\n"
             "    vars:\n"
             "      n: {path: n}\n"
             "    channel: \"%s:{n}\"\n"
             "    message: \"{n}\"\n",
             sc->topic, sc->prefix);
    h_config_opts(yaml, size, sc->group, sc->topic, port, opts, rules);
}

void h_produce_numbered(h_scene_t *sc, int from, int to) {
    for (int i = from; i < to; i++) {
        char value[64];

        snprintf(value, sizeof(value), "{\"n\":%d}", i);
        CU_ASSERT_EQUAL(h_produce(sc->p, sc->topic, 0, NULL, value, strlen(value)), 0);
    }
    CU_ASSERT_EQUAL(h_flush(sc->p), 0);
}

void h_assert_numbered(const h_scene_t *sc, const h_sub_t *sub, int from, int to) {
    CU_ASSERT_EQUAL(h_sub_count(sub), (size_t)to);
    for (int i = from; i < to && (size_t)i < h_sub_count(sub); i++) {
        char channel[160], message[32];

        const h_note_t *note = h_sub_note(sub, (size_t)i);

        snprintf(channel, sizeof(channel), "%s:%d", sc->prefix, i);
        snprintf(message, sizeof(message), "%d", i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(note);
        CU_ASSERT_STRING_EQUAL(note->channel, channel);
        CU_ASSERT_STRING_EQUAL(note->message, message);
    }
}

int h_sub_wait_numbered(h_sub_t *sub, int from, int to, int64_t deadline) {
    unsigned char *seen = calloc(to > from ? (size_t)(to - from) : 1, 1);
    size_t read = 0;
    int missing = to - from;

    if (!seen)
        return 0;
    for (;;) {
        for (; read < h_sub_count(sub); read++) {
            long id = strtol(h_sub_note(sub, read)->message, NULL, 10);
            if (id >= from && id < to && !seen[id - from]++)
                missing--;
        }
        if (missing <= 0 || h_now_ms() >= deadline)
            break;
        /* Blocks until one more arrives (or 200 ms pass): paces the loop. */
        h_sub_wait(sub, h_sub_count(sub) + 1,
                   h_now_ms() + 200 < deadline ? h_now_ms() + 200 : deadline);
    }
    free(seen);
    return missing <= 0;
}

/* --------------------------------------------------------------- run */

int h_run(const char *cmdline, const char *input, char **output, int merge) {
    char in_path[] = "/tmp/k2r-it-in-XXXXXX", cmd[8192];
    int fd = mkstemp(in_path), status;
    size_t len = 0, cap = 65536, n;
    FILE *p;

    if (fd < 0)
        return -1;
    if (input && write(fd, input, strlen(input)) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    snprintf(cmd, sizeof(cmd), "%s < %s%s", cmdline, in_path, merge ? " 2>&1" : "");
    p = popen(cmd, "r");
    if (!p) {
        unlink(in_path);
        return -1;
    }
    *output = malloc(cap);
    while ((n = fread(*output + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 4096) {
            cap *= 2;
            *output = realloc(*output, cap);
        }
    }
    (*output)[len] = '\0';
    status = pclose(p);
    unlink(in_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---------------------------------------------------- faults, groups */

/*
 * Runs `scripts/stack.sh VERB $K2R_TEST_STACK_DIR` and waits for it. The
 * child gets none of our descriptors beyond stdin and stderr (its stdout goes
 * to our stderr): a server it starts lives on after the test closes its
 * sockets, and must not keep our connections to Kafka or Redis open.
 */
static int stack_run(const char *verb) {
    const char *dir = getenv("K2R_TEST_STACK_DIR");
    char script[4096];
    long maxfd = sysconf(_SC_OPEN_MAX);
    int status;
    pid_t pid;

    if (!dir || !*dir) {
        fprintf(stderr, "K2R_TEST_STACK_DIR is not set: run through scripts/with-stack.sh\n");
        return -1;
    }
    snprintf(script, sizeof(script), "%s/scripts/stack.sh", K2R_SOURCE_DIR);
    if (maxfd < 0 || maxfd > 65536)
        maxfd = 65536;
    pid = fork();
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        for (long fd = 3; fd < maxfd; fd++)
            close((int)fd);
        execl(script, script, verb, dir, (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "stack.sh %s failed\n", verb);
        return -1;
    }
    return 0;
}

int h_redis_stop(void) {
    return stack_run("stop-redis");
}

int h_redis_start(void) {
    return stack_run("start-redis");
}

int h_redis_tls_stop(void) {
    return stack_run("stop-redis-tls");
}

int h_redis_tls_start(void) {
    return stack_run("start-redis-tls");
}

int h_kafka_stop(void) {
    return stack_run("stop-kafka");
}

int h_kafka_start(void) {
    return stack_run("start-kafka");
}

int h_group_members(const char *group, h_member_t *out, size_t max, int *stable) {
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    const char *groups[] = {group};
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    int n = -1;

    if (stable)
        *stable = 0;
    if (!rk)
        return -1;
    q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 10000);
    if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT &&
        !rd_kafka_event_error(ev)) {
        size_t ngroups;
        const rd_kafka_ConsumerGroupDescription_t **desc =
            rd_kafka_DescribeConsumerGroups_result_groups(
                rd_kafka_event_DescribeConsumerGroups_result(ev), &ngroups);
        const rd_kafka_error_t *gerr =
            ngroups == 1 ? rd_kafka_ConsumerGroupDescription_error(desc[0]) : NULL;

        if (ngroups != 1 || gerr) {
            fprintf(stderr, "describe group %s: %s\n", group,
                    gerr ? rd_kafka_error_string(gerr) : "no description");
        } else {
            size_t members = rd_kafka_ConsumerGroupDescription_member_count(desc[0]);
            if (stable)
                *stable = rd_kafka_ConsumerGroupDescription_state(desc[0]) ==
                          RD_KAFKA_CONSUMER_GROUP_STATE_STABLE;
            for (size_t i = 0; i < members && i < max; i++) {
                const rd_kafka_MemberDescription_t *m =
                    rd_kafka_ConsumerGroupDescription_member(desc[0], i);
                const rd_kafka_topic_partition_list_t *parts =
                    rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
                snprintf(out[i].client_id, sizeof(out[i].client_id), "%s",
                         rd_kafka_MemberDescription_client_id(m));
                out[i].partitions = parts ? parts->cnt : 0;
            }
            n = (int)members;
        }
    } else {
        fprintf(stderr, "describe group %s: %s\n", group,
                ev ? rd_kafka_event_error_string(ev) : "no answer");
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return n;
}

struct h_offsets_s {
    rd_kafka_t *rk;
};

h_offsets_t *h_offsets_new(const char *group) {
    h_offsets_t *o = calloc(1, sizeof(*o));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];

    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    o->rk = new_client(RD_KAFKA_CONSUMER, conf);
    if (!o->rk) {
        free(o);
        return NULL;
    }
    return o;
}

int h_offsets_committed(h_offsets_t *o, const char *topic, int partitions, int64_t *offsets) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    rd_kafka_resp_err_t err;

    for (int i = 0; i < partitions; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i);
    err = rd_kafka_committed(o->rk, parts, 10000);
    for (int i = 0; !err && i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->err) {
            err = tp->err;
            break;
        }
        offsets[tp->partition] = tp->offset >= 0 ? tp->offset : -1;
    }
    if (err)
        fprintf(stderr, "committed offsets of %s: %s\n", topic, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(parts);
    return err ? -1 : 0;
}

int h_offsets_commit(h_offsets_t *o, const char *topic, int32_t partition, int64_t offset) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = offset;
    err = rd_kafka_commit(o->rk, parts, 0);
    if (!err)
        err = parts->elems[0].err;
    if (err)
        fprintf(stderr, "commit %s[%d]@%lld: %s\n", topic, (int)partition, (long long)offset,
                rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(parts);
    return err ? -1 : 0;
}

void h_offsets_destroy(h_offsets_t *o) {
    if (!o)
        return;
    rd_kafka_destroy(o->rk);
    free(o);
}

int h_committed(const char *group, const char *topic, int partitions, int64_t *offsets) {
    h_offsets_t *o = h_offsets_new(group);
    int rc = o ? h_offsets_committed(o, topic, partitions, offsets) : -1;

    h_offsets_destroy(o);
    return rc;
}

/* ------------------------------------------------------------ config */

void h_config_opts(char *out, size_t size, const char *group, const char *topic, int redis_port,
                   const h_config_opts_t *opts, const char *rules) {
    static const h_config_opts_t none = {NULL, NULL, NULL, NULL, NULL};
    char dlq_line[160] = "";

    if (!opts)
        opts = &none;
    if (opts->dlq)
        snprintf(dlq_line, sizeof(dlq_line), "  dead_letter_topic: %s\n", opts->dlq);
    snprintf(out, size,
             "kafka:\n"
             "  brokers: %s\n"
             "  group_id: %s\n"
             "  topics: [%s]\n"
             "%s%s"
             "  properties:\n"
             "    auto.offset.reset: earliest\n"
             "    auto.commit.interval.ms: 500\n"
             "    session.timeout.ms: 6000\n"
             "    heartbeat.interval.ms: 500\n"
             "%s"
             "redis:\n"
             "  url: redis://127.0.0.1:%d\n"
             "  reconnect_backoff_ms: 50\n"
             "  reconnect_backoff_max_ms: 500\n"
             "%s"
             "%s%s"
             "rules:\n%s%s",
             h_brokers(), group, topic, dlq_line, opts->kafka_extra ? opts->kafka_extra : "",
             opts->properties ? opts->properties : "", redis_port,
             opts->redis_extra ? opts->redis_extra : "  command_timeout_ms: 2000\n",
             /* Many bridges run at once here: no HTTP port unless a test asks.
              * Before the rules, so that tests can append rules to the file. */
             opts->sections && strstr(opts->sections, "http:") ? "" : "http:\n  enabled: false\n",
             /* Text logs, so that tests can look for the very lines `check` prints. */
             opts->sections && strstr(opts->sections, "log:") ? "" : "log:\n  format: text\n",
             rules, opts->sections ? opts->sections : "");
}

void h_config(char *out, size_t size, const char *group, const char *topic, int redis_port,
              const char *dlq, const char *redis_extra, const char *rules) {
    h_config_opts_t opts = {dlq, NULL, NULL, redis_extra, NULL};

    h_config_opts(out, size, group, topic, redis_port, &opts, rules);
}

/* ------------------------------------------------------------ scenes */

int h_scene_open(h_scene_t *sc, const char *name, int partitions, const char *pattern,
                 unsigned flags) {
    char prefix[96], dflt[112];

    memset(sc, 0, sizeof(*sc));
    sc->failures = CU_get_number_of_failures();
    sc->partitions = partitions;
    sc->redis_port = h_redis_port();
    h_unique(sc->topic, sizeof(sc->topic), name);
    snprintf(prefix, sizeof(prefix), "g-%s", name);
    h_unique(sc->group, sizeof(sc->group), prefix);
    snprintf(prefix, sizeof(prefix), "ch-%s", name);
    h_unique(sc->prefix, sizeof(sc->prefix), prefix);
    if (h_create_topic(sc->topic, partitions) != 0)
        return -1;
    if (flags & H_SCENE_DLQ) {
        snprintf(prefix, sizeof(prefix), "dlq-%s", name);
        h_unique(sc->dlq, sizeof(sc->dlq), prefix);
        if (h_create_topic(sc->dlq, 1) != 0)
            return -1;
    }
    if (flags & H_SCENE_PROXY) {
        if (h_proxy_start(&sc->proxy, h_redis_port()) != 0)
            return -1;
        sc->redis_port = sc->proxy.port;
    }
    if (flags & H_SCENE_HTTP) {
        sc->http_port = h_free_port();
        if (sc->http_port < 0)
            return -1;
    }
    if (!pattern) {
        snprintf(dflt, sizeof(dflt), "%s:*", sc->prefix);
        pattern = dflt;
    }
    sc->sub = h_sub_new(h_redis_port(), pattern);
    sc->p = h_producer_new();
    return sc->sub && sc->p ? 0 : -1;
}

void h_scene_close(h_scene_t *sc) {
    if (CU_get_number_of_failures() > sc->failures) {
        if (sc->b.log[0])
            h_bridge_dump_log(&sc->b);
        if (sc->b2.log[0])
            h_bridge_dump_log(&sc->b2);
    }
    h_bridge_cleanup(&sc->b);
    h_bridge_cleanup(&sc->b2);
    h_proxy_stop(&sc->proxy);
    h_producer_destroy(sc->p);
    h_sub_destroy(sc->sub);
}

void h_assert_quiet(h_sub_t *sub) {
    size_t have = h_sub_count(sub);
    CU_ASSERT_EQUAL(h_sub_wait(sub, have + 1, h_deadline(1000)), have);
}
