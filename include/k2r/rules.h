/*
 * rules.h - where a Kafka record becomes a channel name and a notification.
 *
 * The rules are compiled once from the config (paths, channel templates,
 * notification fields) and then applied to each record: find the rule for the
 * record's topic, read the rule's variables out of the decoded value, render
 * the channel, and build the thin notification (a compact JSON object of the
 * fields the rule lists). The daemon and `kafka-redis-bridge map` both go
 * through k2r_rules_map(), so what `map` prints is what the daemon publishes.
 *
 * Pure: no sockets, no Kafka, no Redis. The caller supplies the decoder (so it
 * is reused across records) and the buffer the bytes are written into.
 */
#ifndef K2R_RULES_H
#define K2R_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "k2r/config.h"
#include "k2r/record.h"

/* Longest channel the bridge will publish to; longer ones are skipped. */
#define K2R_CHANNEL_MAX 1024
/* Most channels one record may be published to. */
#define K2R_FANOUT_MAX 8

/* Why a record produced no notification. Stable names: see k2r_skip_name(). */
typedef enum k2r_skip_e {
    K2R_SKIP_NONE = 0,
    K2R_SKIP_NO_RULE,       /* no rule takes the record's topic */
    K2R_SKIP_NOT_JSON,      /* the value is not one JSON document */
    K2R_SKIP_MISSING_FIELD, /* a variable's path leads nowhere */
    K2R_SKIP_WRONG_TYPE,    /* a variable is not a string or integer, or a field is not a scalar */
    K2R_SKIP_EMPTY_VALUE,   /* a variable is an empty string */
    K2R_SKIP_TOO_LONG,      /* the channel would exceed K2R_CHANNEL_MAX */
    K2R_SKIP__COUNT
} k2r_skip_t;

/* "no_rule", "not_json", ...: for counters and logs (static storage). */
const char *k2r_skip_name(k2r_skip_t reason);

/* A growable byte buffer; the mapper appends channels and messages to it. */
typedef struct k2r_buf_s {
    char *data;
    size_t len;
    size_t cap;
} k2r_buf_t;

/* Appends n bytes; returns 0 or -1 when out of memory. */
int k2r_buf_append(k2r_buf_t *buf, const void *bytes, size_t n);
/* Makes room for n more bytes after len; returns 0 or -1 when out of memory. */
int k2r_buf_reserve(k2r_buf_t *buf, size_t n);
void k2r_buf_free(k2r_buf_t *buf);

/* What one record maps to. Offsets point into the caller's k2r_buf_t, which
 * may move as it grows, so they are offsets, not pointers. */
typedef struct k2r_mapping_s {
    const char *rule; /* rule name (borrowed from the rules), NULL when none matched */
    k2r_skip_t skip;  /* K2R_SKIP_NONE when there is something to publish */
    char detail[200]; /* for a skip: what was wrong, e.g. "source_id: missing" */
    size_t npublish;
    struct {
        size_t channel_off, channel_len;
        size_t message_off, message_len;
    } publish[K2R_FANOUT_MAX];
} k2r_mapping_t;

/* The parts of a Kafka record the rules look at (all borrowed). */
typedef struct k2r_msg_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp; /* ms since the epoch, -1 when unknown */
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} k2r_msg_t;

typedef struct k2r_rules_s k2r_rules_t;

/*
 * Compiles the rules of `cfg`. Returns new rules (release with
 * k2r_rules_destroy), or NULL after adding every problem to `errs` with the
 * file position of the key at fault. `cfg` is not retained.
 */
k2r_rules_t *k2r_rules_new(const k2r_config_t *cfg, k2r_errors_t *errs);

/*
 * Loads the config file at `path` and compiles its rules, collecting the
 * errors of both stages in one pass. Returns the rules and stores the config
 * in *cfg_out (the caller owns both), or returns NULL (and *cfg_out = NULL)
 * when any error was added to `errs`.
 */
k2r_rules_t *k2r_rules_load(const char *path, k2r_getenv_fn env, k2r_errors_t *errs,
                            k2r_config_t **cfg_out);

/* The same for a YAML document in memory, named `name` in messages. */
k2r_rules_t *k2r_rules_parse(const char *name, const char *buf, size_t len, k2r_getenv_fn env,
                             k2r_errors_t *errs, k2r_config_t **cfg_out);

/* Releases the rules; NULL does nothing. */
void k2r_rules_destroy(k2r_rules_t *rules);

/* Number of rules, and a one-line summary of rule i for `check` (static storage
 * is not used: the summary is written into out). */
size_t k2r_rules_count(const k2r_rules_t *rules);
void k2r_rules_describe(const k2r_rules_t *rules, size_t i, char *out, size_t out_size);

/*
 * Maps one record. Channels and messages are appended to `out` (which is not
 * cleared first); *m says what to publish or why nothing is. Returns 0, or -1
 * when out of memory (nothing usable in *m).
 */
int k2r_rules_map(const k2r_rules_t *rules, k2r_record_t *rec, const k2r_msg_t *msg, k2r_buf_t *out,
                  k2r_mapping_t *m);

#endif
