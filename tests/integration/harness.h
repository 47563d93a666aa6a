/* SPDX-License-Identifier: Apache-2.0 */
/*
 * harness.h - what the integration tests need around the real servers that
 * scripts/with-stack.sh started: topics, a producer, a consumer (to read
 * what the bridge dead-letters), a Pattern subscriber,
 * the bridge as a child process, and a TCP proxy to cut the bridge's path to
 * Redis while subscribers stay connected.
 *
 * Nothing here stands in for Kafka or Redis: the broker and redis-server are
 * real; this file only drives them. Every wait polls a condition against a
 * deadline scaled by K2R_TEST_TIMEOUT_MULTIPLIER; nothing sleeps to
 * synchronise.
 */
#ifndef K2R_TEST_HARNESS_H
#define K2R_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The stack, from the environment scripts/with-stack.sh exports. */
const char *h_brokers(void);
int h_redis_port(void);

/* A deadline `ms` from now, scaled by K2R_TEST_TIMEOUT_MULTIPLIER. */
int64_t h_deadline(int ms);
int64_t h_now_ms(void);

/* A name unique to this run: prefix-<pid>-<counter>. Static buffer per call site is the caller's.
 */
void h_unique(char *out, size_t size, const char *prefix);

/* Creates a topic with `partitions` partitions; 0 or -1 (message on stderr). */
int h_create_topic(const char *topic, int partitions);

/* Deletes a topic and waits until the broker's metadata no longer lists it
 * (listing all topics, so that the check cannot auto-create it); 0 or -1.
 * A producer that wrote to it must be destroyed first: its metadata refresh
 * would create it again (the stack's broker auto-creates topics). */
int h_delete_topic(const char *topic);

/* A producer; records are sent with h_produce and confirmed by h_flush. */
typedef struct h_producer_s h_producer_t;
h_producer_t *h_producer_new(void);
/* value may be NULL (a tombstone); key may be NULL. partition -1 = by key. */
int h_produce(h_producer_t *p, const char *topic, int partition, const char *key, const void *value,
              size_t len);
/* The same with headers: `headers` holds name, value pairs and ends with a
 * NULL name; header_lens gives each value's length (NULL: strlen; a NULL
 * value is a header without a value). */
int h_produce_headers(h_producer_t *p, const char *topic, int partition, const char *key,
                      const void *value, size_t len, const char *const *headers,
                      const size_t *header_lens);
/* Waits until every record is acknowledged; returns the number that failed. */
int h_flush(h_producer_t *p);
void h_producer_destroy(h_producer_t *p);

/* A consumer that reads one topic from the start (its own group), keeping
 * every record with its key, value and headers, in arrival order. */
typedef struct h_header_s {
    char *name;
    char *value; /* NULL for a header without a value; else NUL-terminated copy */
    size_t value_len;
} h_header_t;

typedef struct h_record_s {
    int32_t partition;
    int64_t offset;
    char *key; /* NULL when the record has none; else NUL-terminated copy */
    size_t key_len;
    char *value; /* NULL for a tombstone; else NUL-terminated copy */
    size_t value_len;
    h_header_t *headers;
    size_t nheaders;
} h_record_t;

typedef struct h_consumer_s h_consumer_t;
h_consumer_t *h_consumer_new(const char *topic);
/* Reads records until `count` have arrived in total or the deadline passes. */
size_t h_consumer_wait(h_consumer_t *c, size_t count, int64_t deadline);
size_t h_consumer_count(const h_consumer_t *c);
const h_record_t *h_consumer_record(const h_consumer_t *c, size_t i);
/* The value of the last header called `name`, or NULL (and *len = 0). */
const char *h_record_header(const h_record_t *r, const char *name, size_t *len);
void h_consumer_destroy(h_consumer_t *c);

/* A Pub/Sub subscriber on its own connection, PSUBSCRIBEd to a pattern. */
typedef struct h_note_s {
    char *channel;
    char *message;
    size_t message_len;
} h_note_t;

typedef struct h_sub_s h_sub_t;
h_sub_t *h_sub_new(int port, const char *pattern);
/* The same, subscribing again whenever the server drops the connection (a
 * Sentinel failover kills clients); notifications sent meanwhile are missed. */
h_sub_t *h_sub_new_resilient(int port, const char *pattern);
unsigned h_sub_reconnects(const h_sub_t *s);
/* A sharded subscriber: SSUBSCRIBE to `channels` (all in one slot on a cluster). */
h_sub_t *h_ssub_new(int port, const char *const *channels, size_t n);
/* Reads notifications until `count` have arrived in total or the deadline passes. */
size_t h_sub_wait(h_sub_t *s, size_t count, int64_t deadline);
size_t h_sub_count(const h_sub_t *s);
const h_note_t *h_sub_note(const h_sub_t *s, size_t i);
void h_sub_destroy(h_sub_t *s);

/* The bridge as a child process, with its stderr in a log file. */
typedef struct h_bridge_s {
    pid_t pid;
    char config[256];
    char log[256];
} h_bridge_t;

/* Writes `yaml` to a temp config and starts `build/kafka-redis-bridge run`. */
int h_bridge_start(h_bridge_t *b, const char *yaml);
/* Replaces the config file's content (atomically: write, then rename). */
int h_bridge_rewrite(h_bridge_t *b, const char *yaml);
/* Starts it again with the same config (appending to the same log). */
int h_bridge_restart(h_bridge_t *b);
/* Sends `sig` and waits for exit; returns the exit status, or -1 on timeout (then kills). */
int h_bridge_stop(h_bridge_t *b, int sig);
/* 1 when the bridge's log contains `needle`. */
int h_bridge_log_has(const h_bridge_t *b, const char *needle);
/* How many times `needle` occurs in the bridge's log. */
size_t h_bridge_log_count(const h_bridge_t *b, const char *needle);
/* Polls the log until `needle` occurs `count` times or the deadline passes;
 * 1 when it does. */
int h_bridge_wait_log_count(const h_bridge_t *b, const char *needle, size_t count,
                            int64_t deadline);
/* Polls the log for `needle` until the deadline; 1 when found. */
int h_bridge_wait_log(const h_bridge_t *b, const char *needle, int64_t deadline);
/* Prints the bridge's log to stderr (on failure, for diagnosis). */
void h_bridge_dump_log(const h_bridge_t *b);
/* 1 while the process runs. */
int h_bridge_alive(const h_bridge_t *b);
void h_bridge_cleanup(h_bridge_t *b);

/* A TCP proxy (socat) from a free loopback port to Redis. */
typedef struct h_proxy_s {
    pid_t pid;
    int port;
    int target_port;
} h_proxy_t;
int h_proxy_start(h_proxy_t *p, int target_port); /* picks a free port the first time */

/* A free loopback port below the kernel's ephemeral range (another process
 * may still take it before it is used), or -1. */
int h_free_port(void);

/* Runs redis-cli ARGS against the stack's Redis; 0 when it exits 0 and, if
 * `want` is not NULL, prints it (else the output goes to stderr). */
int h_redis_cli(const char *args, const char *want);
/* The same against another redis-server of the stack, on `port`. */
int h_redis_cli_port(int port, const char *args, const char *want);
void h_proxy_stop(h_proxy_t *p); /* kills it and every connection it carries */
/* A proxy (a forked child of the tests) that passes commands on at once and
 * delivers replies `delay_ms` late, all but the first `pass_bytes` of each
 * connection (7: the handshake's +PONG); with a negative delay, a black hole
 * after those bytes (commands dropped, no reply). Stopped with h_proxy_stop;
 * it listens before this returns. */
int h_delay_proxy_start(h_proxy_t *p, int target_port, int delay_ms, size_t pass_bytes);
/* The same without delay, cutting each connection (both ends) once
 * `cut_after` reply bytes past the first `pass_bytes` went through: a
 * connection that dies partway through a pipeline's replies, every time. */
int h_cut_proxy_start(h_proxy_t *p, int target_port, size_t pass_bytes, size_t cut_after);

/*
 * A redis-server of the test's own, not the stack's: on a free loopback
 * port, in a temporary directory of its own, with the stack's flavour
 * (K2R_TEST_REDIS_FLAVOR=valkey: valkey-server) and `extra` arguments
 * (NULL-terminated; NULL for none), for a test that puts a server into a
 * state no other test may see. Started and answering when this returns 0;
 * h_redis_server_stop kills it (SIGKILL: a server that cannot save would
 * refuse a shutdown) and removes its directory.
 */
typedef struct h_redis_server_s {
    pid_t pid;
    int port;
    char dir[64];
} h_redis_server_t;
int h_redis_server_start(h_redis_server_t *r, const char *const *extra);
void h_redis_server_stop(h_redis_server_t *r);

/* Runs a command line with /bin/sh, feeding `input` on stdin, capturing stdout
 * (and stderr when merge is set) into a new NUL-terminated buffer. Returns
 * the exit status, or -1. */
int h_run(const char *cmdline, const char *input, char **output, int merge);

/* One HTTP/1.1 request to 127.0.0.1:port (the bridge's endpoint). */
typedef struct h_http_s {
    int status;    /* 0: no answer (nothing listens, or the connection broke) */
    char *headers; /* the status line and headers, NUL-terminated */
    char *body;    /* NUL-terminated */
} h_http_t;
void h_http_request(int port, const char *method, const char *path, h_http_t *r);
void h_http_free(h_http_t *r);
/* Polls GET `path` until it answers `status` with `body`, or the deadline
 * passes; 1 when it did. The last answer stays in *last (h_http_free it). */
int h_http_wait(int port, const char *path, int status, const char *body, int64_t deadline,
                h_http_t *last);

/* The built binary and source dir. */
const char *h_binary(void);

/* The value of the series named exactly `series` (name and labels) in a
 * /metrics text, or -1 when it has no such line. */
int64_t h_metric(const char *text, const char *series);

/* Scrapes /metrics at `port` until every `series[i]` has `want[i]`, or the
 * deadline passes; returns the last text (free it), or NULL when none came. */
char *h_wait_metrics(int port, const char *const *series, const int64_t *want, size_t n,
                     int64_t deadline);

/*
 * Writes a bridge config for tests: group and topic, Redis at redis_port,
 * fast commits and session timeouts; `dlq` (may be NULL) the dead-letter
 * topic; `redis_extra` (NULL: a 2 s command timeout) lines under redis:;
 * then the rules (YAML list items).
 */
void h_config(char *out, size_t size, const char *group, const char *topic, int redis_port,
              const char *dlq, const char *redis_extra, const char *rules);

/* ------------------------------------------------ faults and inspection */

/*
 * The stack's own servers, stopped and started again through
 * scripts/stack.sh in K2R_TEST_STACK_DIR: a real shutdown (TERM, then waiting
 * for the process to exit), and the same server again on the same port with
 * the same data dir. A start does nothing when the server runs, so it also
 * serves to make sure it does (after a failed test). Each returns 0, or -1
 * (the script says why on stderr).
 */
int h_redis_stop(void);
int h_redis_start(void);
int h_redis_tls_stop(void); /* the TLS redis-server (test_tls.c) */
int h_redis_tls_start(void);
int h_kafka_stop(void);
int h_kafka_start(void);

/* A consumer group's member as the group coordinator describes it. */
typedef struct h_member_s {
    char client_id[64];
    int partitions; /* assigned to it */
} h_member_t;

/*
 * Describes consumer group `group`: fills up to `max` members and returns
 * how many the group has (0 for an empty or unknown group), or -1 when the
 * coordinator gave no answer (message on stderr). *stable (may be NULL) is
 * set to 1 when the group is in the Stable state.
 */
int h_group_members(const char *group, h_member_t *out, size_t max, int *stable);

/*
 * A reader of consumer group `group`'s committed offsets. Its consumer handle
 * never subscribes, so it does not join the group; it only asks the group
 * coordinator, over a connection it keeps (a few ms per question). Returns
 * NULL on failure (message on stderr).
 */
typedef struct h_offsets_s h_offsets_t;
h_offsets_t *h_offsets_new(const char *group);
/* Fills offsets[i] for partitions 0..partitions-1 of `topic`: the next offset
 * to read, or -1 when nothing is committed. Returns 0 or -1 (message on stderr). */
int h_offsets_committed(h_offsets_t *o, const char *topic, int partitions, int64_t *offsets);
/* Commits `offset` for partition `partition` of `topic` in the group, as a
 * member would (the group must have no members then); 0 or -1 (message on
 * stderr). */
int h_offsets_commit(h_offsets_t *o, const char *topic, int32_t partition, int64_t offset);
void h_offsets_destroy(h_offsets_t *o);

/* The same once: h_offsets_new, h_offsets_committed, h_offsets_destroy. */
int h_committed(const char *group, const char *topic, int partitions, int64_t *offsets);

/* What h_config_opts adds to the config h_config writes; NULL: nothing. */
typedef struct h_config_opts_s {
    const char *dlq;         /* kafka.dead_letter_topic */
    const char *kafka_extra; /* lines under kafka: (e.g. "  batch_size: 200\n") */
    const char *properties;  /* lines under kafka.properties: (e.g. "    client.id: a\n") */
    const char *redis_extra; /* lines under redis: (NULL: a 2 s command timeout) */
    const char *sections;    /* top-level sections after the rules (e.g. "limits:\n...") */
} h_config_opts_t;

/* h_config with more settings; `opts` may be NULL. */
void h_config_opts(char *out, size_t size, const char *group, const char *topic, int redis_port,
                   const h_config_opts_t *opts, const char *rules);

/* ------------------------------------------------------------ scenes */

/*
 * One test's world: its own topic (and dead-letter topic), consumer group and
 * channel prefix, all unique to the run; a subscriber and a producer; up to
 * two bridges; optionally a proxy to Redis and a free HTTP port. Every suite
 * builds its tests on it, so that opening and closing (and showing the
 * bridges' logs when the test failed) happen in one place.
 */
typedef struct h_scene_s {
    char topic[96], group[96], dlq[96], prefix[96];
    int partitions;
    int redis_port; /* where the bridge reaches Redis: the proxy's port with H_SCENE_PROXY */
    int http_port;  /* with H_SCENE_HTTP, else 0 */
    h_producer_t *p;
    h_sub_t *sub;
    h_bridge_t b, b2;
    h_proxy_t proxy;
    unsigned failures; /* CUnit's count when the test began */
} h_scene_t;

enum {
    H_SCENE_DLQ = 1,   /* also create the dead-letter topic sc->dlq (1 partition) */
    H_SCENE_PROXY = 2, /* the bridge reaches Redis through sc->proxy */
    H_SCENE_HTTP = 4,  /* pick a free loopback port for the bridge's HTTP endpoint */
};

/* Opens a scene named after `name` with a topic of `partitions` partitions
 * and a subscriber on `pattern` (NULL: "<prefix>:*"). Returns 0, or -1 (the
 * test should stop; h_scene_close still cleans up). */
int h_scene_open(h_scene_t *sc, const char *name, int partitions, const char *pattern,
                 unsigned flags);

/* Stops the bridges (showing their logs when the test failed), the proxy,
 * the producer and the subscriber. */
void h_scene_close(h_scene_t *sc);

/* Numbered records: {"n":i} to partition 0, one rule mapping each to
 * PREFIX:i with message i. h_config_numbered writes the config (Redis at
 * `port`, `opts` as h_config_opts takes them); h_produce_numbered produces
 * i in [from, to) and flushes; h_assert_numbered checks that `sub` has
 * exactly `to` notifications, those from `from` on being PREFIX:i with
 * message i, in order. */
void h_config_numbered(const h_scene_t *sc, int port, const h_config_opts_t *opts, char *yaml,
                       size_t size);
void h_produce_numbered(h_scene_t *sc, int from, int to);
void h_assert_numbered(const h_scene_t *sc, const h_sub_t *sub, int from, int to);
/* Reads `sub` until it holds a notification with message i for every i in
 * [from, to), whatever else it holds (repeats of earlier records among
 * them), or the deadline passes; 1 when it does. */
int h_sub_wait_numbered(h_sub_t *sub, int from, int to, int64_t deadline);

/* No further notification reaches `sub` within a grace period (1 s, scaled). */
void h_assert_quiet(h_sub_t *sub);

/* The suites (test_*.c); each adds one CUnit suite and returns 0 or CU_get_error(). */
int test_bridge_register(void);
int test_cli_register(void);
int test_rules_register(void);
int test_delivery_register(void);
int test_faults_register(void);
int test_ops_register(void);
int test_tls_register(void);
int test_security_register(void);
int test_topology_register(void);
int test_history_register(void);
int test_shim_register(void);

#endif
