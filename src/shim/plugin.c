/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plugin.c - the shim as a librdkafka interceptor plugin: what a producer
 * loads with plugin.library.paths=.../libk2r_shim.so and k2r.config=FILE.
 *
 * librdkafka calls conf_init() when the plugin path is set on a conf; it
 * registers, per conf, the interceptors that take the k2r.* properties
 * (on_conf_set), follow copies of the conf (on_conf_dup), create the shim
 * with the client (on_new), feed it acknowledged records
 * (on_acknowledgement), close it with the client (on_destroy) and release
 * it with the conf (on_conf_destroy).
 *
 * Which librdkafka. This library links none: a second librdkafka in the
 * process would be wrong, and a plugin expecting rd_kafka_* in the global
 * namespace fails to load where its host loaded librdkafka privately
 * (Python's confluent-kafka, RTLD_LOCAL). So conf_init() finds the library
 * it was called from (dladdr of its return address), opens that very
 * object again without loading anything (dlopen of its file with
 * RTLD_NOLOAD; the program itself, dlopen(NULL), when librdkafka is linked
 * into it statically and exported) and looks up every function this file
 * uses into a table, checking that each comes from that object. One table
 * per librdkafka (a process may hold two), kept while the plugin is loaded.
 *
 * Never in the producer's way. The acknowledgement interceptor copies the
 * record into the shim's bounded queue (shim.c) and returns; errors of the
 * record never fail it. A shim that cannot start (no k2r.config, a config
 * with errors, an unknown k2r.* property) disables itself: on_new returns
 * an error, which librdkafka logs through the client's logger ("Interceptor
 * k2r-shim failed on_new: ...") without failing rd_kafka_new(). The shim's
 * own lines (rate-limited drop summaries, with k2r.debug connects) go
 * through librdkafka's default log printer, rd_kafka_log_print, to stderr:
 * librdkafka offers plugins no way to reach the client's log callback.
 *
 * Consumers: the plugin does nothing for them (on_new returns at once).
 * Transactional producers: the shim disables itself (see on_new).
 */
#include <dlfcn.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "k2r/shim.h"

#include "shim_int.h"

#define IC_NAME "k2r-shim"
/* Headers read without an allocation; more take one. */
#define STACK_HEADERS 32

/* The functions of the host's librdkafka this file calls. */
typedef struct rdk_s {
    const void *base; /* the object's load address (dladdr's dli_fbase) */
    char path[256];
    __typeof__(&rd_kafka_version_str) version_str;
    __typeof__(&rd_kafka_conf_interceptor_add_on_conf_set) add_on_conf_set;
    __typeof__(&rd_kafka_conf_interceptor_add_on_conf_dup) add_on_conf_dup;
    __typeof__(&rd_kafka_conf_interceptor_add_on_conf_destroy) add_on_conf_destroy;
    __typeof__(&rd_kafka_conf_interceptor_add_on_new) add_on_new;
    __typeof__(&rd_kafka_interceptor_add_on_acknowledgement) add_on_acknowledgement;
    __typeof__(&rd_kafka_interceptor_add_on_destroy) add_on_destroy;
    __typeof__(&rd_kafka_type) type;
    __typeof__(&rd_kafka_topic_name) topic_name;
    __typeof__(&rd_kafka_message_timestamp) message_timestamp;
    __typeof__(&rd_kafka_message_headers) message_headers;
    __typeof__(&rd_kafka_header_cnt) header_cnt;
    __typeof__(&rd_kafka_header_get_all) header_get_all;
    __typeof__(&rd_kafka_log_print) log_print;
    __typeof__(&rd_kafka_conf_get) conf_get;
} rdk_t;

#define RDK_FN(field, name)                                                                        \
    { #name, offsetof(rdk_t, field) }
static const struct {
    const char *name;
    size_t offset;
} rdk_fns[] = {
    RDK_FN(version_str, rd_kafka_version_str),
    RDK_FN(add_on_conf_set, rd_kafka_conf_interceptor_add_on_conf_set),
    RDK_FN(add_on_conf_dup, rd_kafka_conf_interceptor_add_on_conf_dup),
    RDK_FN(add_on_conf_destroy, rd_kafka_conf_interceptor_add_on_conf_destroy),
    RDK_FN(add_on_new, rd_kafka_conf_interceptor_add_on_new),
    RDK_FN(add_on_acknowledgement, rd_kafka_interceptor_add_on_acknowledgement),
    RDK_FN(add_on_destroy, rd_kafka_interceptor_add_on_destroy),
    RDK_FN(type, rd_kafka_type),
    RDK_FN(topic_name, rd_kafka_topic_name),
    RDK_FN(message_timestamp, rd_kafka_message_timestamp),
    RDK_FN(message_headers, rd_kafka_message_headers),
    RDK_FN(header_cnt, rd_kafka_header_cnt),
    RDK_FN(header_get_all, rd_kafka_header_get_all),
    RDK_FN(log_print, rd_kafka_log_print),
    RDK_FN(conf_get, rd_kafka_conf_get),
};

/* Tables of the librdkafkas seen (a few hundred bytes each), kept while the
 * plugin is loaded: a client's interceptors point at theirs for the
 * client's life. */
#define MAX_RDK 8
static rdk_t *rdks[MAX_RDK];
static size_t nrdks;
static pthread_mutex_t rdks_lock = PTHREAD_MUTEX_INITIALIZER;

/* When the plugin is unloaded (librdkafka closes it after the last conf
 * that loaded it is destroyed, so no interceptor of ours is left), or at
 * exit: the tables go with it. */
__attribute__((destructor)) static void rdk_release(void) {
    pthread_mutex_lock(&rdks_lock);
    for (size_t i = 0; i < nrdks; i++)
        free(rdks[i]);
    nrdks = 0;
    pthread_mutex_unlock(&rdks_lock);
}

/* The table of the librdkafka whose code is at `caller`, found or made;
 * NULL with the reason in errstr. */
static rdk_t *rdk_resolve(const void *caller, char *errstr, size_t errstr_size) {
    Dl_info info;
    rdk_t *rdk = NULL;
    void *handle = NULL;
    const char *self = "the program";

    if (!dladdr(caller, &info) || !info.dli_fbase) {
        snprintf(errstr, errstr_size, IC_NAME ": cannot tell which library loaded the plugin");
        return NULL;
    }
    pthread_mutex_lock(&rdks_lock);
    for (size_t i = 0; i < nrdks; i++)
        if (rdks[i]->base == info.dli_fbase) {
            rdk = rdks[i];
            goto done;
        }
    if (nrdks == MAX_RDK) {
        snprintf(errstr, errstr_size, IC_NAME ": more than %d librdkafka libraries", MAX_RDK);
        goto done;
    }
    /* The loading library itself: RTLD_NOLOAD takes a reference to the
     * object already in the process and never loads another. */
    if (info.dli_fname && *info.dli_fname) {
        handle = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
        self = info.dli_fname;
    }
    /* A program with librdkafka linked in: its own exported symbols. */
    if (!handle)
        handle = dlopen(NULL, RTLD_NOW);
    if (!handle) {
        snprintf(errstr, errstr_size, IC_NAME ": cannot open %s: %s", self, dlerror());
        goto done;
    }
    rdk = calloc(1, sizeof(*rdk));
    if (!rdk) {
        snprintf(errstr, errstr_size, IC_NAME ": out of memory");
        goto done;
    }
    rdk->base = info.dli_fbase;
    snprintf(rdk->path, sizeof(rdk->path), "%s", self);
    for (size_t i = 0; i < sizeof(rdk_fns) / sizeof(rdk_fns[0]); i++) {
        void *fn = dlsym(handle, rdk_fns[i].name);
        Dl_info at;

        /* Found in that object, not in another librdkafka of the process. */
        if (!fn || !dladdr(fn, &at) || at.dli_fbase != info.dli_fbase) {
            snprintf(errstr, errstr_size,
                     IC_NAME ": %s, which loaded the plugin, has no %s of its own (a program "
                             "that links librdkafka statically must export its symbols: "
                             "-rdynamic; or use the C API, k2r/shim.h)",
                     self, rdk_fns[i].name);
            free(rdk);
            rdk = NULL;
            goto done;
        }
        memcpy((char *)rdk + rdk_fns[i].offset, &fn, sizeof(fn));
    }
    rdks[nrdks++] = rdk;

done:
    pthread_mutex_unlock(&rdks_lock);
    /* The host keeps the library loaded while it calls the plugin. */
    if (handle)
        dlclose(handle);
    return rdk;
}

/* ------------------------------------------------------------- per conf */

/* One per conf object (and so per client): what the k2r.* properties say
 * and, once the client exists, its shim. */
typedef struct ici_s {
    const rdk_t *rdk;
    char *config;        /* k2r.config */
    char *queue_size;    /* k2r.queue_size: records */
    char *queue_bytes;   /* k2r.queue_bytes */
    char *flush_timeout; /* k2r.flush_timeout_ms */
    char *debug;         /* k2r.debug */
    char *unknown;       /* the first k2r.* property not known */
    rd_kafka_t *rk;      /* set by on_new, for log lines */
    k2r_shim_t *shim;    /* NULL: disabled or not a producer */
} ici_t;

static void conf_init0(rd_kafka_conf_t *conf, const rdk_t *rdk);

static void plugin_log(void *opaque, int level, const char *line) {
    const ici_t *ici = opaque;
    char buf[1100];

    snprintf(buf, sizeof(buf), IC_NAME ": %s", line);
    ici->rdk->log_print(ici->rk, level, "K2RSHIM", buf);
}

static int set_string(char **field, const char *value) {
    char *copy = NULL;

    if (value && !(copy = strdup(value)))
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

static rd_kafka_conf_res_t on_conf_set(rd_kafka_conf_t *conf, const char *name, const char *val,
                                       char *errstr, size_t errstr_size, void *ic_opaque) {
    ici_t *ici = ic_opaque;
    char **field;

    (void)conf;
    if (strncmp(name, "k2r.", 4) != 0)
        return RD_KAFKA_CONF_UNKNOWN; /* librdkafka's own, or another plugin's */
    if (strcmp(name, "k2r.config") == 0)
        field = &ici->config;
    else if (strcmp(name, "k2r.queue_size") == 0)
        field = &ici->queue_size;
    else if (strcmp(name, "k2r.queue_bytes") == 0)
        field = &ici->queue_bytes;
    else if (strcmp(name, "k2r.flush_timeout_ms") == 0)
        field = &ici->flush_timeout;
    else if (strcmp(name, "k2r.debug") == 0)
        field = &ici->debug;
    else
        /* Accepted here and reported by on_new, which disables the shim:
         * a typo in a k2r.* name must not stop the producer. */
        field = ici->unknown ? NULL : &ici->unknown;
    if (field && set_string(field, field == &ici->unknown ? name : val) != 0) {
        snprintf(errstr, errstr_size, IC_NAME ": out of memory");
        return RD_KAFKA_CONF_INVALID;
    }
    return RD_KAFKA_CONF_OK;
}

/* A copy of a conf gets an instance of its own; librdkafka then sets the
 * k2r.* properties on the copy again, through on_conf_set. */
static rd_kafka_resp_err_t on_conf_dup(rd_kafka_conf_t *new_conf, const rd_kafka_conf_t *old_conf,
                                       size_t filter_cnt, const char **filter, void *ic_opaque) {
    const ici_t *ici = ic_opaque;

    (void)old_conf;
    (void)filter_cnt;
    (void)filter;
    conf_init0(new_conf, ici->rdk);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t on_conf_destroy(void *ic_opaque) {
    ici_t *ici = ic_opaque;

    k2r_shim_destroy(ici->shim);
    free(ici->config);
    free(ici->queue_size);
    free(ici->queue_bytes);
    free(ici->flush_timeout);
    free(ici->debug);
    free(ici->unknown);
    free(ici);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* ------------------------------------------------------------ per client */

static rd_kafka_resp_err_t on_acknowledgement(rd_kafka_t *rk, rd_kafka_message_t *rkmessage,
                                              void *ic_opaque) {
    const ici_t *ici = ic_opaque;
    const rdk_t *rdk = ici->rdk;
    k2r_shim_header_t stack[STACK_HEADERS], *hdrs = stack;
    rd_kafka_headers_t *rkh = NULL;
    rd_kafka_timestamp_type_t tstype;
    k2r_shim_record_t rec;
    size_t n = 0;

    (void)rk;
    /* Only records the broker acknowledged: a failed delivery is not in
     * the log, and the bridge will never see it. */
    if (!ici->shim || rkmessage->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    /* What the bridge's consumer view (kafka.c, k2r_kafka_view) reads,
     * read the same way: the offset and, for a LogAppendTime topic, the
     * timestamp are the broker's, set before this interceptor runs. */
    rec.topic = rdk->topic_name(rkmessage->rkt);
    rec.partition = rkmessage->partition;
    rec.offset = rkmessage->offset;
    rec.timestamp = rdk->message_timestamp(rkmessage, &tstype);
    rec.tstype = tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME       ? K2R_SHIM_TS_CREATE
                 : tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? K2R_SHIM_TS_LOG_APPEND
                                                                : K2R_SHIM_TS_NONE;
    rec.key = rkmessage->key;
    rec.key_len = rkmessage->key_len;
    rec.value = rkmessage->payload;
    rec.value_len = rkmessage->len;
    if (rdk->message_headers(rkmessage, &rkh) == RD_KAFKA_RESP_ERR_NO_ERROR && rkh) {
        size_t cnt = rdk->header_cnt(rkh);

        if (cnt > STACK_HEADERS && !(hdrs = malloc(cnt * sizeof(*hdrs)))) {
            /* Counted as the shim counts a record it cannot copy. */
            rec.offset = -1;
            hdrs = stack;
            cnt = 0;
        }
        for (size_t i = 0; i < cnt; i++) {
            k2r_shim_header_t *h = &hdrs[n];

            if (rdk->header_get_all(rkh, i, &h->name, &h->value, &h->value_len) !=
                RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (!h->value)
                h->value_len = 0;
            n++;
        }
    }
    rec.headers = n ? hdrs : NULL;
    rec.nheaders = n;
    k2r_shim_publish(ici->shim, &rec);
    if (hdrs != stack)
        free(hdrs);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t on_destroy(rd_kafka_t *rk, void *ic_opaque) {
    ici_t *ici = ic_opaque;

    (void)rk;
    /* Publishes what is queued (bounded by k2r.flush_timeout_ms) and stops
     * the thread; the shim itself lives until on_conf_destroy, since a
     * broker thread may still acknowledge a record after this. */
    if (ici->shim) {
        k2r_shim_stats_t st;

        k2r_shim_close(ici->shim);
        k2r_shim_stats(ici->shim, &st);
        if (ici->debug && strcmp(ici->debug, "true") == 0) {
            char line[512];
            snprintf(line, sizeof(line),
                     "closed: enqueued %llu, published %llu, suppressed %llu, skipped_by_rules "
                     "%llu, dropped_queue_full %llu, dropped_redis %llu, errors %llu, "
                     "thread_cpu_us %llu",
                     (unsigned long long)st.enqueued, (unsigned long long)st.published,
                     (unsigned long long)st.suppressed, (unsigned long long)st.skipped_by_rules,
                     (unsigned long long)st.dropped_queue_full,
                     (unsigned long long)st.dropped_redis, (unsigned long long)st.errors,
                     (unsigned long long)st.thread_cpu_us);
            plugin_log(ici, 7, line);
        }
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Reads a positive integer property; 0, or -1 with errstr filled. */
static int parse_size(const char *name, const char *text, size_t *out, char *errstr,
                      size_t errstr_size) {
    char *end;
    unsigned long long v;

    if (!text)
        return 0;
    v = strtoull(text, &end, 10);
    if (!*text || *end || text[0] == '-' || v == 0 || v > (1ull << 40)) {
        snprintf(errstr, errstr_size, "%s: expected a positive integer, got \"%s\"", name, text);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static rd_kafka_resp_err_t on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf, void *ic_opaque,
                                  char *errstr, size_t errstr_size) {
    ici_t *ici = ic_opaque;
    const rdk_t *rdk = ici->rdk;
    k2r_shim_opts_t opts;
    char why[400], txn[256];
    size_t flush = 0, txn_size = sizeof(txn);

    ici->rk = rk;
    txn[0] = '\0';
    if (rdk->type(rk) != RD_KAFKA_PRODUCER)
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    memset(&opts, 0, sizeof(opts));
    opts.log = plugin_log;
    opts.log_opaque = ici;
    why[0] = '\0';
    if (ici->unknown)
        snprintf(why, sizeof(why),
                 "%s: no such property (known: k2r.config, k2r.queue_size, k2r.queue_bytes, "
                 "k2r.flush_timeout_ms, k2r.debug)",
                 ici->unknown);
    else if (!ici->config)
        snprintf(why, sizeof(why), "k2r.config is not set: it names the bridge's config file");
    else if (rdk->conf_get(conf, "transactional.id", txn, &txn_size) == RD_KAFKA_CONF_OK && *txn)
        /* A transactional producer's records are acknowledged before their
         * transaction commits: an aborted one's would be published here and
         * never by the bridge (which reads committed records only). */
        snprintf(why, sizeof(why),
                 "transactional producers are not supported (transactional.id is set): records "
                 "are acknowledged before their transaction commits");
    else if (parse_size("k2r.queue_size", ici->queue_size, &opts.queue_records, why, sizeof(why)) !=
                 0 ||
             parse_size("k2r.queue_bytes", ici->queue_bytes, &opts.queue_bytes, why, sizeof(why)) !=
                 0 ||
             parse_size("k2r.flush_timeout_ms", ici->flush_timeout, &flush, why, sizeof(why)) != 0)
        ;
    else if (ici->debug && strcmp(ici->debug, "true") != 0 && strcmp(ici->debug, "false") != 0)
        snprintf(why, sizeof(why), "k2r.debug: expected true or false, got \"%s\"", ici->debug);
    if (!why[0]) {
        opts.flush_timeout_ms = flush > 600000 ? 600000 : (int)flush;
        opts.debug = ici->debug && strcmp(ici->debug, "true") == 0;
        ici->shim = k2r_shim_new(ici->config, &opts, why, sizeof(why));
    }
    if (!ici->shim) {
        /* librdkafka logs this through the client's logger, as
         * "Interceptor k2r-shim failed on_new: ...", and goes on. */
        snprintf(errstr, errstr_size, "disabled, the producer is not affected: %s", why);
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    }
    if (rdk->add_on_acknowledgement(rk, IC_NAME, on_acknowledgement, ici) ||
        rdk->add_on_destroy(rk, IC_NAME, on_destroy, ici)) {
        k2r_shim_destroy(ici->shim);
        ici->shim = NULL;
        snprintf(errstr, errstr_size, "disabled: cannot add the interceptors");
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    }
    if (opts.debug) {
        char line[600];
        snprintf(line, sizeof(line), "%s on librdkafka %s (%s), config %s", k2r_shim_version(),
                 rdk->version_str(), rdk->path, ici->config);
        plugin_log(ici, 7, line);
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* ------------------------------------------------------------ the entry */

static void conf_init0(rd_kafka_conf_t *conf, const rdk_t *rdk) {
    ici_t *ici = calloc(1, sizeof(*ici));

    if (!ici)
        return; /* then k2r.* properties are unknown to librdkafka, which says so */
    ici->rdk = rdk;
    rdk->add_on_conf_set(conf, IC_NAME, on_conf_set, ici);
    rdk->add_on_conf_dup(conf, IC_NAME, on_conf_dup, ici);
    rdk->add_on_conf_destroy(conf, IC_NAME, on_conf_destroy, ici);
    rdk->add_on_new(conf, IC_NAME, on_new, ici);
}

/* librdkafka's plugin entry point (rd_kafka_plugin_f_conf_init_t), called
 * by the librdkafka that loads the plugin, on the thread setting
 * plugin.library.paths. Exported (shim.map). */
__attribute__((visibility("default"), noinline)) rd_kafka_resp_err_t
conf_init(rd_kafka_conf_t *conf, void **plug_opaquep, char *errstr, size_t errstr_size);

rd_kafka_resp_err_t conf_init(rd_kafka_conf_t *conf, void **plug_opaquep, char *errstr,
                              size_t errstr_size) {
    const rdk_t *rdk = rdk_resolve(__builtin_extract_return_addr(__builtin_return_address(0)),
                                   errstr, errstr_size);

    *plug_opaquep = NULL;
    if (!rdk)
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    conf_init0(conf, rdk);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}
