/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge_reload.c - SIGHUP: the config file read again; its rules, limits
 * and log level replace the running ones between batches, the kafka.* and
 * redis.* settings stay as the connections were made (a warning names each
 * that changed), and a file that does not load keeps everything as it was.
 *
 * The file is read and its rules compiled on a thread of its own, so that a
 * reload never holds up publishing: a large config (4 MiB, 200,000 nodes are
 * the loader's bounds) takes a second or more on a busy machine, which the
 * loop used to spend not publishing. The loop only swaps the result in, at
 * its next turn between batches (the batch's items point into the running
 * rules). One load at a time: a SIGHUP during a load is coalesced into one
 * more load after it, since the file may have changed after the load began.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/batch.h"
#include "k2r/clock.h"
#include "k2r/deadletter.h"
#include "k2r/json.h"
#include "k2r/kafka.h"
#include "k2r/log.h"
#include "k2r/metrics.h"
#include "k2r/redis.h"

#include "bridge_int.h"

/* --------------------------------------------------------------- reload */

static const char *env_lookup(const char *name) {
    return getenv(name);
}

static int str_differs(const char *a, const char *b) {
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Appends ", name" (or "name" first) to the list in out. */
static void note_change(char *out, size_t size, const char *name) {
    size_t n = strlen(out);
    snprintf(out + n, size - n, "%s%s", n ? ", " : "", name);
}

/* Lists in `out` the settings of `next` that differ from the running ones
 * and take a restart; returns 1 when kafka.topics is among them. */
static int restart_settings(const k2r_config_t *run, const k2r_config_t *next, char *out,
                            size_t size) {
    size_t n;
    const k2r_setting_t *settings = k2r_settings(&n);
    const char *last = NULL;
    int topics = 0;

    /* The table's order; settings that share a restart_name ("http") are
     * named once. */
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const k2r_setting_t *s = &settings[i];
        const char *name = s->restart_name ? s->restart_name : s->name;

        if (!(s->flags & K2R_SETTING_RESTART) || !k2r_setting_differs(s, run, next))
            continue;
        topics |= strcmp(s->name, "kafka.topics") == 0;
        if (!last || strcmp(last, name) != 0)
            note_change(out, size, name);
        last = name;
    }
    return topics;
}

/* The last line of a refused reload (its reasons are logged before it). */
static void reload_refused(k2r_bridge_t *b) {
    b->reload_failures++;
    k2r_log_error("reload failed; keeping the previous rules");
}

/* The load thread: reads and compiles; touches nothing of the bridge but
 * b->reload's results, which the loop reads only once `done` is set. */
static void *load_main(void *arg) {
    k2r_bridge_t *b = arg;

    b->reload.rules = k2r_rules_load(b->reload.path, env_lookup, &b->reload.errs, &b->reload.next);
    atomic_store(&b->reload.done, 1);
    return NULL;
}

void bridge_reload_request(k2r_bridge_t *b) {
    if (b->reload.running) {
        if (!b->reload.again)
            k2r_log_info("reload requested while the config is being read; it is read once more "
                         "when this load is done");
        b->reload.again = 1;
        return;
    }
    k2r_log_info("reloading rules from %s", b->cfg->path);
    free(b->reload.path);
    b->reload.path = strdup(b->cfg->path);
    b->reload.rules = NULL;
    b->reload.next = NULL;
    b->reload.errs = (k2r_errors_t){NULL, 0, 0};
    atomic_store(&b->reload.done, 0);
    if (!b->reload.path) {
        k2r_log_error("reload: out of memory");
        reload_refused(b);
        return;
    }
    if (pthread_create(&b->reload.thread, NULL, load_main, b) != 0) {
        /* No thread to be had: read it here, as before threads were used. */
        load_main(b);
        b->reload.running = -1; /* finished, nothing to join */
        return;
    }
    b->reload.running = 1;
}

/* Waits for the load thread (if any) and takes its results. */
static void reload_join(k2r_bridge_t *b) {
    if (b->reload.running == 1)
        pthread_join(b->reload.thread, NULL);
    b->reload.running = 0;
}

void bridge_reload_discard(k2r_bridge_t *b) {
    if (b->reload.running)
        reload_join(b);
    k2r_rules_destroy(b->reload.rules);
    k2r_config_destroy(b->reload.next);
    k2r_errors_clear(&b->reload.errs);
    b->reload.rules = NULL;
    b->reload.next = NULL;
    free(b->reload.path);
    b->reload.path = NULL;
}

static void apply(k2r_bridge_t *b, k2r_rules_t *rules, k2r_config_t *next);

void bridge_reload_apply(k2r_bridge_t *b) {
    k2r_rules_t *rules;
    k2r_config_t *next;

    if (!b->reload.running || !atomic_load(&b->reload.done))
        return;
    reload_join(b);
    rules = b->reload.rules;
    next = b->reload.next;
    b->reload.rules = NULL;
    b->reload.next = NULL;
    if (!rules) {
        for (size_t i = 0; i < b->reload.errs.count; i++)
            k2r_log_error("%s", b->reload.errs.lines[i]);
        k2r_errors_clear(&b->reload.errs);
        k2r_config_destroy(next);
        reload_refused(b);
    } else {
        k2r_errors_clear(&b->reload.errs);
        apply(b, rules, next);
    }
    if (b->reload.again) {
        b->reload.again = 0;
        bridge_reload_request(b);
    }
}

/*
 * Swaps in what a load produced: its rules and log level. Called only
 * between batches: no dead letter or publish refers to the old rules any
 * more. The running kafka.* and redis.* settings stay (the connections were
 * made with them); the new values are dropped with a warning naming them.
 * Takes ownership of `rules` and `next`.
 */
static void apply(k2r_bridge_t *b, k2r_rules_t *rules, k2r_config_t *next) {
    k2r_kafka_conf_t kafka_section;
    k2r_redis_section_t redis_section;
    k2r_mark_t dlq_mark;
    const char *path = b->cfg->path;
    const char *lvl = getenv("K2R_LOG_LEVEL");
    char changed[512], errstr[512];
    int topics;

    if (k2r_rules_need_dead_letter(rules) && !k2r_kafka_dead_letter_ready(b->kafka)) {
        /* A producer is made now only for the dead-letter topic the bridge
         * started with: that one is a running setting like the rest. */
        if (!b->cfg->kafka.dead_letter_topic ||
            str_differs(b->cfg->kafka.dead_letter_topic, next->kafka.dead_letter_topic)) {
            k2r_log_error("%s: the new rules use on_error: dead-letter, but this bridge started "
                          "without kafka.dead_letter_topic%s%s, so it has no dead-letter producer; "
                          "a restart applies it",
                          path, b->cfg->kafka.dead_letter_topic ? " (it started with " : "",
                          b->cfg->kafka.dead_letter_topic ? "another one)" : "");
            reload_refused(b);
            goto discard;
        }
        if (k2r_kafka_dead_letter_open(b->kafka, b->cfg, bridge_on_delivery, errstr,
                                       sizeof(errstr)) != 0) {
            k2r_log_error("%s: the new rules use on_error: dead-letter: cannot create the "
                          "dead-letter producer: %s",
                          path, errstr);
            reload_refused(b);
            goto discard;
        }
    }
    topics = restart_settings(b->cfg, next, changed, sizeof(changed));
    if (changed[0])
        k2r_log_warn("%s: %s changed: these settings take a restart; the running values stay in "
                     "effect until then",
                     path, changed);
    if (topics)
        k2r_log_warn("%s: kafka.topics changed: restart required (still subscribed to the "
                     "topics the bridge started with)",
                     path);

    /* The new config, with the running connection settings swapped in. */
    kafka_section = next->kafka;
    next->kafka = b->cfg->kafka;
    b->cfg->kafka = kafka_section;
    redis_section = next->redis;
    next->redis = b->cfg->redis;
    b->cfg->redis = redis_section;
    dlq_mark = next->dead_letter_mark;
    next->dead_letter_mark = b->cfg->dead_letter_mark;
    b->cfg->dead_letter_mark = dlq_mark;
    k2r_config_destroy(b->cfg);
    b->cfg = next;
    path = next->path; /* the old one went with the old config */
    k2r_rules_destroy(b->rules);
    b->rules = rules;
    /* The old names are gone: per-rule counters are found by text again. */
    for (size_t i = 0; i < b->nrstats; i++)
        b->rstat_ptr[i] = NULL;
    bridge_declare_rules(b);

    k2r_log_level = next->log_level;
    if (lvl && *lvl && k2r_log_level_parse(lvl) >= 0)
        k2r_log_level = k2r_log_level_parse(lvl); /* the environment wins, as at start */
    b->stats.reloads++;
    k2r_log_info("reloaded rules from %s: %zu rule(s)", path, k2r_rules_count(rules));
    if (k2r_kafka_nstopped(b->kafka))
        k2r_log_warn("%zu stopped partition(s) stay stopped until a restart",
                     k2r_kafka_nstopped(b->kafka));
    return;

discard:
    k2r_rules_destroy(rules);
    k2r_config_destroy(next);
}
