/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - the bridge's configuration: loading the YAML file, checking every
 * key against a schema, applying K2R_* environment overrides.
 *
 * Loading is pure apart from reading the named files (the config, the files
 * that K2R_*_FILE variables and ${file:...} references name) and the
 * environment (through a k2r_getenv_fn the caller passes): nothing connects
 * anywhere, so `kafka-redis-bridge check` and the unit tests use the same code
 * as the daemon. The settings of the scalar sections are described once, in
 * the settings table (k2r_settings), which drives the loader, the reference
 * and the reload's restart check. Every error names file:line:col and the key path, and all of
 * them are collected before the caller gives up (k2r_errors_t).
 *
 * What a rule *means* (compiling templates and paths, matching records) is not
 * here: that is rules.c, which reports its errors through the same list using
 * the marks this module keeps. Nor are the generic pieces the loader uses:
 * the error list (errors.h), durations (clock.h), listen addresses (addr.h)
 * and the redis:// parser (redis_url.h). This module knows nothing of the
 * sinks: the Redis sink builds its own settings from a config
 * (k2r_config_redis_conf in redis.h).
 */
#ifndef K2R_CONFIG_H
#define K2R_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "k2r/errors.h"
#include "k2r/redis_url.h"

/* One librdkafka property passed through as-is. */
typedef struct k2r_property_s {
    char *name;
    char *value;
    k2r_mark_t mark;
    int secret; /* never printed: from ${env:}/${file:}, or a credential by its name */
} k2r_property_t;

/* A setting whose value came from config providers (${env:NAME},
 * ${file:/path}): where it is and which references made it, for `check`. */
typedef struct k2r_resolved_s {
    char *path; /* "kafka.properties[\"sasl.password\"]" */
    char *refs; /* the references, ", "-separated: "${file:/run/secrets/pw}" */
    k2r_mark_t mark;
} k2r_resolved_t;

/* Where a rule variable or notification field takes its value from. */
typedef enum k2r_source_kind_e {
    K2R_SOURCE_PATH = 0,    /* arg: a path into the JSON value */
    K2R_SOURCE_HEADER,      /* arg: header name */
    K2R_SOURCE_META,        /* arg: key, topic, partition, offset or timestamp */
    K2R_SOURCE_CONST,       /* arg: the constant */
    K2R_SOURCE_CLOUDEVENTS, /* arg: a CloudEvents attribute (type, id, source, ...) */
    K2R_SOURCE_VAR,         /* arg: a variable name (notification fields only) */
    K2R_SOURCE_COUNT
} k2r_source_kind_t;

/*
 * How each source kind is written, one row per kind in k2r_source_kind_t
 * order: its key in a source mapping; whether its argument is any scalar
 * (const: "" and numbers too) rather than a non-empty string; whether a
 * `default:` may go with it; the values its argument may take (NULL: any),
 * and how an error names them. The matching row of k2r__source_ops
 * (src/rules_int.h) has the functions that compile the kind (rules.c) and
 * evaluate it (map.c).
 */
typedef struct k2r_source_syntax_s {
    const char *key;
    int scalar_arg;
    int takes_default;
    const char *const *args;
    const char *args_text;
} k2r_source_syntax_t;

extern const k2r_source_syntax_t k2r_source_syntax[K2R_SOURCE_COUNT];

/* A source as written. A plain scalar that reads as a decimal integer is
 * kept as an integer for `const:` and `default:` (is_int). */
typedef struct k2r_source_conf_s {
    k2r_source_kind_t kind;
    char *arg;
    int arg_is_int;
    char *dflt; /* NULL when no default */
    int dflt_is_int;
    k2r_mark_t mark;
} k2r_source_conf_t;

/* A named variable (`type`, `id`, or one under `vars:`). */
typedef struct k2r_var_conf_s {
    char *name;
    k2r_source_conf_t src;
} k2r_var_conf_t;

/* One field of the notification: the JSON key and where its value comes from. */
typedef struct k2r_field_conf_s {
    char *name;
    k2r_source_conf_t src;
    k2r_mark_t mark;
} k2r_field_conf_t;

typedef enum k2r_cond_op_e {
    K2R_COND_EQUALS = 0,
    K2R_COND_NOT_EQUALS,
    K2R_COND_IN,
    K2R_COND_NOT_IN,
    K2R_COND_EXISTS,
    K2R_COND_ABSENT
} k2r_cond_op_t;

/* One `when:` condition on a variable. */
typedef struct k2r_cond_conf_s {
    char *var;
    k2r_cond_op_t op;
    char **values;
    size_t nvalues;
    k2r_mark_t mark;
} k2r_cond_conf_t;

typedef enum k2r_on_error_e {
    K2R_ON_ERROR_SKIP = 0,
    K2R_ON_ERROR_DEAD_LETTER,
    K2R_ON_ERROR_STOP
} k2r_on_error_t;
#define K2R_ON_ERROR_COUNT 3

/* The policy as a rule writes it: "skip", "dead-letter", "stop" (static
 * storage; "unknown" out of range). The one spelling of these names: the
 * loader, `check`, `map`, logs and dead-letter headers all use it. */
const char *k2r_on_error_name(k2r_on_error_t on_error);

/* The longest rule name: it travels in headers, log lines and metric labels. */
#define K2R_RULE_NAME_MAX 100

/* The keys a rule may have, and the words of its `unsafe:` in the order of
 * k2r_rule_conf_t.escape (reject 0, escape 1); both NULL-terminated. The
 * loader reads rules by them; the JSON Schema (schema.h) lists them. */
extern const char *const k2r_rule_keys[];
extern const char *const k2r_unsafe_names[];

/* One entry of `rules:`, as written; rules.c compiles it. */
typedef struct k2r_rule_conf_s {
    char *name;
    char *topic;
    k2r_var_conf_t *vars; /* `type` and `id` first when given, then `vars:` in order */
    size_t nvars;
    k2r_cond_conf_t *conds;
    size_t nconds;
    char **channels; /* templates; default "events:{type}:{id}" */
    k2r_mark_t *channel_marks;
    size_t nchannels;
    k2r_field_conf_t *fields; /* default [id, type, source_id]; none when `message:` is set */
    size_t nfields;
    char *message; /* plain-string template, or NULL */
    k2r_on_error_t on_error;
    int64_t max_age_ms;      /* -1: limits.max_age applies; 0: no cutoff */
    uint32_t history_maxlen; /* history.maxlen; 0: no history */
    int64_t history_ttl_ms;  /* history.ttl; 0: the stream does not expire */
    int escape;              /* unsafe: escape (1) or reject (0) */
    int cont;                /* continue: true */
    int nbroken;             /* variables written but refused (their errors are reported) */
    k2r_mark_t mark, topic_mark, message_mark, fields_mark, on_error_mark;
} k2r_rule_conf_t;

typedef struct k2r_kafka_conf_s {
    char *brokers;
    char *group_id;
    char **topics;
    size_t ntopics;
    k2r_property_t *properties;
    size_t nproperties;
    char *group_instance_id; /* static membership: librdkafka's group.instance.id; NULL: none */
    char *dead_letter_topic; /* where `on_error: dead-letter` sends records; NULL when unset */
    int startup_timeout_ms;  /* brokers must answer within this at start */
} k2r_kafka_conf_t;

/* What the bridge does with notifications while Redis cannot take them. */
typedef enum k2r_on_unavailable_e {
    K2R_UNAVAILABLE_PAUSE = 0, /* hold them, pause Kafka, retry with backoff */
    K2R_UNAVAILABLE_DROP       /* count and drop them, keep consuming */
} k2r_on_unavailable_t;

typedef struct k2r_redis_section_s {
    char *url;
    char *
        username; /* the ACL user: redis.username, K2R_REDIS_USERNAME(_FILE); wins over the URL's */
    char *password; /* from the file, K2R_REDIS_PASSWORD or K2R_REDIS_PASSWORD_FILE */
    k2r_redis_url_t parsed;
    int connect_timeout_ms;
    int command_timeout_ms;
    int pipeline_depth;
    int backoff_initial_ms;
    int backoff_max_ms;
    k2r_on_unavailable_t on_unavailable;
    /* redis.tls: (rediss:// only; the strings are NULL when unset) */
    char *tls_ca_file;
    char *tls_cert_file;
    char *tls_key_file;
    char *tls_server_name;
    int tls_insecure_skip_verify;
    k2r_mark_t tls_mark; /* of the redis.tls: mapping, when written */
    /* redis.sentinel: (NULL/0 when unset): the master's name and where to ask */
    char *sentinel_master;
    char **sentinel_addrs; /* "host:port" */
    size_t nsentinel_addrs;
    char *sentinel_username;
    char *sentinel_password;
    int sentinel_tls;
    k2r_mark_t sentinel_mark; /* of redis.sentinel.addresses, when written */
    /* redis.cluster: the seed nodes ("host:port"); none: not a cluster */
    char **cluster_addrs;
    size_t ncluster_addrs;
    k2r_mark_t cluster_mark; /* of redis.cluster.addresses, when written */
    int sharded;             /* SPUBLISH instead of PUBLISH */
    int idle_check_ms;       /* PING a connection idle this long */
    char *history_prefix;    /* a rule's history stream: this + channel */
} k2r_redis_section_t;

/* dedupe: the bridge and the producer shim publish each record once between them. */
typedef struct k2r_dedupe_conf_s {
    int enabled;
    int64_t window_ms; /* how long a record's mark lives on Redis after its last use */
    char *prefix;      /* of the marks' keys */
} k2r_dedupe_conf_t;

typedef struct k2r_limits_s {
    int max_channel_bytes;
    int max_notification_bytes;
    int max_inflight_records; /* records taken from Kafka and not finished */
    int max_inflight_bytes;   /* their keys, values and headers */
    int64_t max_age_ms;       /* 0: no age cutoff */
} k2r_limits_t;

typedef enum k2r_log_format_e { K2R_LOG_FORMAT_JSON = 0, K2R_LOG_FORMAT_TEXT } k2r_log_format_t;

typedef struct k2r_http_conf_s {
    int enabled;
    char *listen; /* host:port, [v6]:port or :port */
} k2r_http_conf_t;

typedef struct k2r_config_s {
    char *path; /* the file it was read from */
    k2r_limits_t limits;
    k2r_kafka_conf_t kafka;
    k2r_redis_section_t redis;
    k2r_rule_conf_t *rules;
    size_t nrules;
    int log_level;
    k2r_log_format_t log_format;
    int drain_timeout_ms; /* shutdown.drain_timeout */
    k2r_http_conf_t http;
    k2r_dedupe_conf_t dedupe;
    k2r_mark_t rules_mark;
    k2r_mark_t dead_letter_mark; /* of kafka.dead_letter_topic, when set */
    uint64_t provided;           /* bit i: setting i of the table came from ${env:}/${file:} */
    k2r_resolved_t *resolved;    /* every value that did, in the file's order */
    size_t nresolved;
} k2r_config_t;

/*
 * The settings table: one row per setting of the scalar sections (kafka,
 * redis, log, limits, shutdown, http), plus one row for `rules:` (its own
 * language: docs/rules.md), in the order the reference lists them. The loader
 * reads every key of those sections through it (type, range, default,
 * environment override, unknown keys and their suggestions), `check
 * --list-settings` prints it, the README's settings reference is generated
 * from it, and a reload compares running and new values by it to name the
 * settings that take a restart.
 */
typedef enum k2r_setting_type_e {
    K2R_SETTING_STRING = 0, /* char *: a non-empty string */
    K2R_SETTING_SECRET,     /* char *: a non-empty string that is never printed */
    K2R_SETTING_INT,        /* int within [min, max] */
    K2R_SETTING_DURATION,   /* milliseconds within [min, max]: an int or an int64_t (size) */
    K2R_SETTING_BOOL,       /* int: 0 or 1 */
    K2R_SETTING_CHOICE,     /* int: the index of the word in `choices` (an enum) */
    K2R_SETTING_LIST,       /* char ** with its size_t count at count_offset */
    K2R_SETTING_MAP,        /* k2r_property_t * with its size_t count at count_offset */
    K2R_SETTING_RULES       /* the rules: section, read by its own parser */
} k2r_setting_type_t;

/* One environment override: the variable, optionally a *_FILE variant that
 * names a file holding the value (and wins over the variable), and for a map
 * setting the key it sets (kafka.properties: a librdkafka property). */
typedef struct k2r_setting_env_s {
    const char *name;
    const char *file;
    const char *property;
} k2r_setting_env_t;

/* k2r_setting_t.flags */
enum {
    K2R_SETTING_RESTART = 1,    /* a reload keeps the running value; a restart applies it */
    K2R_SETTING_REQUIRED = 2,   /* must be written (or set through the environment) */
    K2R_SETTING_ENV_AT_RUN = 4, /* the override is applied by `run` and reloads (main.c,
                                 * bridge.c), not by the loader, so `check` ignores it */
};

typedef struct k2r_setting_s {
    const char *name;             /* dotted: "redis.connect_timeout_ms" */
    size_t offset;                /* of the value within k2r_config_t */
    size_t size;                  /* of the value (durations: int or int64_t) */
    size_t count_offset;          /* list and map: of the size_t count */
    size_t mark_offset;           /* of a k2r_mark_t that keeps where it was written; 0: none */
    int64_t min, max;             /* int; duration in milliseconds */
    const char *const *choices;   /* choice: the words, in enum order, NULL-terminated */
    const char *choices_text;     /* how an error names them; NULL: "a, b or c" */
    const char *dflt;             /* the default as it would be written in YAML; NULL: none */
    const k2r_setting_env_t *env; /* overrides, ended by a {NULL} row; NULL: none */
    /* String settings: checks a value (from the file, the environment or the
     * default) and may keep what it parsed in cfg; 0, or -1 with errstr.
     * NULL: any non-empty string. */
    int (*check)(k2r_config_t *cfg, const char *value, char *errstr, size_t errstr_size);
    const char *items;        /* list: what its items are, for errors ("topic names") */
    const char *restart_name; /* the name a reload warning gives it; NULL: name */
    const char *description;  /* one line, for the reference */
    k2r_setting_type_t type;
    unsigned flags; /* K2R_SETTING_* */
} k2r_setting_t;

/* The table (static, read-only); its length goes to *n. */
const k2r_setting_t *k2r_settings(size_t *n);

/* The row called `name` ("kafka.topics"), or NULL. */
const k2r_setting_t *k2r_setting_find(const char *name);

/* 1 when the value of setting `s` differs between configs a and b, else 0
 * (compared by type: strings, numbers, lists and maps item by item). */
int k2r_setting_differs(const k2r_setting_t *s, const k2r_config_t *a, const k2r_config_t *b);

/*
 * Renders the table: one aligned line per setting (name, type with its range
 * or choices, default, environment variables, `restart` or `live`), or with
 * `markdown` a Markdown table with descriptions, as in the README. Returns a
 * new string (release with free), or NULL when out of memory.
 */
char *k2r_settings_render(int markdown);

/* Looks an environment variable up; getenv(3) in the daemon, a table in tests. */
typedef const char *(*k2r_getenv_fn)(const char *name);

/* The largest secret file read (K2R_*_FILE, ${file:...}), and the longest
 * value once its references are resolved. */
#define K2R_SECRET_MAX 65536

/*
 * Config providers, in Kafka Connect's spelling: resolves every reference in
 * `text`, a value as written in the config file. `${env:NAME}` is the
 * environment variable NAME (looked up with `env`), `${file:/path}` the whole
 * content of the file at the absolute /path, read as K2R_*_FILE files are (a
 * regular file of at most K2R_SECRET_MAX bytes without a NUL byte; one
 * trailing "\n" or "\r\n" is dropped). A reference may sit inside a longer
 * value ("user-${env:SUFFIX}"); `$${` is a literal `${`; a `$` before
 * anything else is itself. A variable that is unset or empty, a file that is
 * not as above, an unknown provider (${vault:x}), a relative path, a `${`
 * without its `}` or its `provider:` are each an error, never an empty or
 * partial value.
 *
 * Returns the resolved value (new; release with free), or NULL with the
 * reason in errstr (which names the variable or file, never a value). When
 * `refs` is not NULL it receives the references resolved, ", "-separated, or
 * "" when the text had none (it was returned unchanged but for `$${`).
 */
char *k2r_config_resolve(const char *text, k2r_getenv_fn env, char *refs, size_t refs_size,
                         char *errstr, size_t errstr_size);

/* 1 when librdkafka property `name` is a credential by its name (a password,
 * a secret, a private key, a JAAS config): its value is never printed. */
int k2r_property_is_credential(const char *name);

/* 1 when setting `name`'s value came from ${env:} or ${file:}, else 0. */
int k2r_config_provided(const k2r_config_t *cfg, const char *name);

/* What a log line may show of setting `name`'s value `value`: the value, or
 * "***" when it came from a config provider (static storage or `value`). */
const char *k2r_config_shown(const k2r_config_t *cfg, const char *name, const char *value);

/*
 * Parses `len` bytes of YAML named `name` (used in messages), checks them
 * against the schema, applies the environment overrides and checks the
 * librdkafka properties with librdkafka itself. Returns a new config (release
 * with k2r_config_destroy), or NULL when errors were added to `errs`.
 */
k2r_config_t *k2r_config_parse(const char *name, const char *buf, size_t len, k2r_getenv_fn env,
                               k2r_errors_t *errs);

/* Reads the file at `path` and parses it as k2r_config_parse() does. */
k2r_config_t *k2r_config_load(const char *path, k2r_getenv_fn env, k2r_errors_t *errs);

/*
 * Like k2r_config_parse() and k2r_config_load(), but a config is returned even
 * when errors were added, as long as the file held a YAML mapping, so that the
 * rules' own errors can be reported in the same pass (k2r_rules_load). Such a
 * config may have missing parts: the caller must treat any new entry in `errs`
 * as failure and must not run with it.
 */
k2r_config_t *k2r_config_parse_all(const char *name, const char *buf, size_t len, k2r_getenv_fn env,
                                   k2r_errors_t *errs);
k2r_config_t *k2r_config_load_all(const char *path, k2r_getenv_fn env, k2r_errors_t *errs);

/* Releases the config; NULL does nothing. */
void k2r_config_destroy(k2r_config_t *cfg);

#endif
