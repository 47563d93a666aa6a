/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.h - where a Kafka record becomes a channel name and a notification.
 *
 * The rules are compiled once from the config (paths, channel templates,
 * notification fields) and then applied to each record: find the rule for the
 * record's topic, read the rule's variables out of the decoded value, render
 * the channel, and build the thin notification (a compact JSON object of the
 * fields the rule lists). The daemon and `kafka-redis-bridge map` both go
 * through k2r_rules_map(), so what `map` prints is what the daemon publishes.
 * src/rules.c compiles the rules; src/map.c maps records through them.
 *
 * Pure: no sockets, no Kafka, no Redis. The caller supplies the decoder (so it
 * is reused across records) and the buffer the bytes are written into.
 */
#ifndef K2R_RULES_H
#define K2R_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "k2r/buf.h"
#include "k2r/config.h"
#include "k2r/json.h"
#include "k2r/msgview.h"

/* Default limits (limits.max_channel_bytes, limits.max_notification_bytes). */
#define K2R_CHANNEL_MAX      1024
#define K2R_NOTIFICATION_MAX 8192
/* Most channels one record may be published to, over all rules it matches. */
#define K2R_FANOUT_MAX 16

/* Why a record (or one rule's part of it) produced no notification.
 * Stable names, for counters and logs: see k2r_skip_name(). */
typedef enum k2r_skip_e {
    K2R_SKIP_NONE = 0,
    K2R_SKIP_NO_RULE,       /* no rule takes the record's topic */
    K2R_SKIP_NOT_JSON,      /* the value is not one JSON document */
    K2R_SKIP_MISSING_FIELD, /* a variable without a default leads nowhere */
    K2R_SKIP_WRONG_TYPE,    /* a variable is not a string or integer, or a field not a scalar */
    K2R_SKIP_EMPTY_VALUE,   /* a channel variable is an empty string */
    K2R_SKIP_TOO_LONG,      /* a channel would exceed limits.max_channel_bytes */
    K2R_SKIP_NO_MATCH,      /* rules take the topic, but no rule's `when:` holds */
    K2R_SKIP_UNSAFE_CHARS,  /* a channel variable holds characters the rule refuses */
    K2R_SKIP_TOO_LARGE,     /* the notification would exceed limits.max_notification_bytes */
    K2R_SKIP_REDIS_ERROR,   /* Redis refused the PUBLISH (NOPERM, a non-integer reply, ...);
                               the bridge finds this, not the mapper */
    K2R_SKIP__COUNT
} k2r_skip_t;

/* "no_rule", "not_json", ...: for counters and logs (static storage). */
const char *k2r_skip_name(k2r_skip_t reason);

/* What the bridge must do about a record that could not be mapped: the
 * failing rule's `on_error` policy. */
typedef enum k2r_action_e {
    K2R_ACTION_NONE = 0,    /* nothing failed */
    K2R_ACTION_SKIP,        /* count, log (rate-limited), advance */
    K2R_ACTION_DEAD_LETTER, /* produce the record to kafka.dead_letter_topic, then advance */
    K2R_ACTION_STOP         /* stop the partition here; nothing of it advances */
} k2r_action_t;

/* "none", "skip", "dead-letter", "stop" (static storage). */
const char *k2r_action_name(k2r_action_t action);

/*
 * What one record maps to. Offsets point into the caller's k2r_buf_t, which
 * may move as it grows, so they are offsets, not pointers.
 *
 * A record can publish (npublish > 0) and still carry a failure: with
 * `continue: true` one rule may publish while a later one fails. `action`
 * says what to do about the failure: STOP wins over everything (publish
 * nothing of this record), DEAD_LETTER sends the record to the dead-letter
 * topic as well as publishing what did map, SKIP only counts.
 */
typedef struct k2r_mapping_s {
    const char *rule;    /* the failing rule, else the first publishing rule; NULL if none */
    k2r_skip_t skip;     /* K2R_SKIP_NONE when nothing failed */
    k2r_action_t action; /* K2R_ACTION_NONE when nothing failed */
    char detail[200];    /* on failure: what was wrong, e.g. "id (source_id): missing" */
    size_t npublish;
    struct {
        const char *rule;        /* the rule that produced it (borrowed from the rules) */
        k2r_on_error_t on_error; /* that rule's policy, should Redis refuse it */
        int64_t max_age_ms;      /* that rule's age cutoff (or limits.max_age); 0 = none */
        uint32_t history_maxlen; /* that rule's history (k2r_publish_t); 0 = none */
        int64_t history_ttl_ms;
        size_t channel_off, channel_len;
        size_t message_off, message_len;
    } publish[K2R_FANOUT_MAX];
} k2r_mapping_t;

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

/* 1 when some rule's on_error is dead-letter (so a dead-letter producer is needed). */
int k2r_rules_need_dead_letter(const k2r_rules_t *rules);

/* Number of rules, and a one-line summary of rule i for `check` (static storage
 * is not used: the summary is written into out). */
size_t k2r_rules_count(const k2r_rules_t *rules);
/* Rule i's name (the pointer mappings carry in k2r_mapping_t.rule) and, in
 * *action, what its on_error does (K2R_ACTION_SKIP, _DEAD_LETTER, _STOP). */
const char *k2r_rules_name(const k2r_rules_t *rules, size_t i, k2r_action_t *action);
void k2r_rules_describe(const k2r_rules_t *rules, size_t i, char *out, size_t out_size);

/*
 * Maps one record. Channels and messages are appended to `out` (which is not
 * cleared first); *m says what to publish or why nothing is. Returns 0, or -1
 * when out of memory (nothing usable in *m).
 */
int k2r_rules_map(const k2r_rules_t *rules, k2r_json_t *json, const k2r_msgview_t *msg,
                  k2r_buf_t *out, k2r_mapping_t *m);

#endif
