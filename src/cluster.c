/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster.c - the Redis sink on a Redis Cluster: the slot map (CLUSTER SLOTS
 * from a seed or a node), one pipelined connection (a redis.c sink) per
 * primary, and a publish that routes each item to the shard that owns its
 * channel's slot (redis.sharded: SPUBLISH, CRC16 with hash tags, slots.c) or
 * sends them all through one node (PUBLISH, which the cluster bus spreads).
 *
 * A publish runs in rounds. A round gives every node its items in the
 * caller's order (so a channel's notifications keep their order: one slot,
 * one node, one pipeline) and drives all the nodes' pipelines from one poll.
 * When every node is done, replies are copied back to the caller's items.
 * Items answered -MOVED (the slot has a new owner: a migration finished, a
 * replica was promoted) go, still in order, to the node named, and the map
 * is read again before the next publish; items answered -ASK (a migration
 * under way) go once to the node named, preceded by ASKING. A node whose
 * connection fails ends the publish with -1 after the other nodes finished
 * theirs, its unanswered items still PENDING, as with one connection.
 *
 * What the caller sees is the one-connection sink's contract (redis.h):
 * k2r_redis_* dispatch here when redis.cluster is set.
 */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/addr.h"
#include "k2r/buf.h"
#include "k2r/clock.h"
#include "k2r/log.h"
#include "k2r/slots.h"
#include "redis_int.h"

/* Redirections in a row before a publish gives up (a migration that never
 * settles, two nodes that disagree). */
#define MAX_ROUNDS 8

/* What one node is given in a round: copies of the caller's items and
 * where each came from. */
typedef struct part_s {
    k2r_publish_t *sub;
    size_t *idx;
    size_t n, cap_sub, cap_idx;
    int active; /* its pipeline is under way */
} part_t;

struct k2r_cluster_s {
    k2r_redis_conf_t conf; /* for the nodes' sinks; the strings are ours */
    char **seeds;
    size_t nseeds;
    int sharded;

    k2r_slotmap_t map;
    k2r_redis_t **node; /* per map node; NULL until needed */
    part_t *part;       /* per map node */
    size_t cap;         /* of node and part */
    k2r_redis_t *probe; /* asks a seed for the map */
    int refresh;        /* a -MOVED was seen: read the map again */

    /* The publish under way. */
    k2r_publish_t *items;
    size_t nitems;
    int *ask; /* per item: the node an -ASK named, or -1 */
    size_t cap_ask;
    int active, failed, rounds;
    char failure[512];

    char addr[320];
};

/* ------------------------------------------------------------- set-up */

static char *dup_or_null(const char *s, int *oom) {
    char *d = s ? strdup(s) : NULL;

    *oom |= s && !d;
    return d;
}

k2r_cluster_t *k2r_cluster_new(const k2r_redis_conf_t *conf, char *errstr, size_t errstr_size) {
    k2r_cluster_t *c = calloc(1, sizeof(*c));
    k2r_redis_conf_t pc;
    int oom = 0;

    if (!c) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    k2r_slotmap_init(&c->map);
    c->conf = *conf;
    c->conf.host = NULL;
    c->conf.cluster_addrs = NULL;
    c->conf.ncluster_addrs = 0;
    c->conf.sentinel_master = NULL;
    c->conf.nsentinel_addrs = 0;
    c->conf.user = dup_or_null(conf->user, &oom);
    c->conf.password = dup_or_null(conf->password, &oom);
    c->conf.tls_ca_file = dup_or_null(conf->tls_ca_file, &oom);
    c->conf.tls_cert_file = dup_or_null(conf->tls_cert_file, &oom);
    c->conf.tls_key_file = dup_or_null(conf->tls_key_file, &oom);
    c->conf.tls_server_name = dup_or_null(conf->tls_server_name, &oom);
    c->conf.dedupe_prefix = dup_or_null(conf->dedupe_prefix, &oom);
    c->conf.history_prefix = dup_or_null(conf->history_prefix, &oom);
    c->sharded = conf->sharded;
    c->seeds = calloc(conf->ncluster_addrs, sizeof(*c->seeds));
    oom |= !c->seeds;
    for (size_t i = 0; c->seeds && i < conf->ncluster_addrs; i++) {
        if (!(c->seeds[i] = strdup(conf->cluster_addrs[i]))) {
            oom = 1;
            break;
        }
        c->nseeds++;
    }
    if (oom) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    /* The probe: a seed's address is set before each use. */
    pc = c->conf;
    pc.host = "127.0.0.1";
    pc.port = 1;
    pc.pipeline_depth = 1;
    pc.idle_check_ms = 0;
    pc.dedupe_window_ms = 0; /* the probe reads slot maps, it runs no script */
    pc.history = 0;
    c->probe = k2r_redis_new(&pc, errstr, errstr_size);
    if (!c->probe)
        goto fail;
    snprintf(c->addr, sizeof(c->addr), "cluster (seed %s)", c->seeds[0]);
    return c;

fail:
    k2r_cluster_destroy(c);
    return NULL;
}

static void part_free(part_t *p) {
    free(p->sub);
    free(p->idx);
    memset(p, 0, sizeof(*p));
}

void k2r_cluster_destroy(k2r_cluster_t *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->map.nnodes && i < c->cap; i++) {
        k2r_redis_destroy(c->node[i]);
        part_free(&c->part[i]);
    }
    free(c->node);
    free(c->part);
    k2r_slotmap_free(&c->map);
    k2r_redis_destroy(c->probe);
    for (size_t i = 0; i < c->nseeds; i++)
        free(c->seeds[i]);
    free(c->seeds);
    free(c->ask);
    free((char *)c->conf.user);
    if (c->conf.password) {
        explicit_bzero((char *)c->conf.password, strlen(c->conf.password));
        free((char *)c->conf.password);
    }
    free((char *)c->conf.tls_ca_file);
    free((char *)c->conf.tls_cert_file);
    free((char *)c->conf.tls_key_file);
    free((char *)c->conf.tls_server_name);
    free((char *)c->conf.dedupe_prefix);
    free((char *)c->conf.history_prefix);
    free(c);
}

/* Room in node[] and part[] for every node of the map; 0 or -1 (OOM). */
static int fit_nodes(k2r_cluster_t *c) {
    size_t want = c->map.nnodes, old = c->cap;
    k2r_redis_t **node;
    part_t *part;

    if (want <= c->cap)
        return 0;
    node = realloc(c->node, want * sizeof(k2r_redis_t *));
    if (!node)
        return -1;
    c->node = node;
    part = realloc(c->part, want * sizeof(*part));
    if (!part)
        return -1;
    c->part = part;
    memset(c->node + old, 0, (want - old) * sizeof(k2r_redis_t *));
    memset(c->part + old, 0, (want - old) * sizeof(*part));
    c->cap = want;
    return 0;
}

/* The sink of map node i, made on first use; NULL with errstr. */
static k2r_redis_t *node_sink(k2r_cluster_t *c, int i, char *errstr, size_t errstr_size) {
    const k2r_slot_node_t *n = k2r_slotmap_get(&c->map, i);
    k2r_redis_conf_t nc = c->conf;

    if (!n || fit_nodes(c) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!c->node[i]) {
        nc.host = n->host;
        nc.port = n->port;
        c->node[i] = k2r_redis_new(&nc, errstr, errstr_size);
        if (c->node[i])
            k2r__redis_set_cluster_member(c->node[i]);
    }
    return c->node[i];
}

/* -------------------------------------------------------- the slot map */

/*
 * CLUSTER SLOTS from the connected sink `r` (whose host is `host`, for
 * entries that name none) into `map`. Returns 0 when the map covers every
 * slot, else -1 with the reason in errstr.
 */
static int read_slots(k2r_redis_t *r, const char *host, int64_t deadline_ms, k2r_slotmap_t *map,
                      char *errstr, size_t errstr_size) {
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    size_t argvlen[2] = {7, 5};
    redisReply *reply;
    int rc = -1;

    if (k2r__redis_command(r, 2, argv, argvlen, deadline_ms, &reply, errstr, errstr_size) != 0)
        return -1;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "%s: CLUSTER SLOTS: %s", k2r_redis_addr(r), reply->str);
        goto out;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errstr_size, "%s: CLUSTER SLOTS: not an array", k2r_redis_addr(r));
        goto out;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i], *owner;

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER) {
            snprintf(errstr, errstr_size, "%s: CLUSTER SLOTS: entry %zu is not a slot range",
                     k2r_redis_addr(r), i);
            goto out;
        }
        owner = e->element[2];
        if (k2r_slotmap_add_range(
                map, e->element[0]->integer, e->element[1]->integer,
                owner->element[0]->type == REDIS_REPLY_STRING ? owner->element[0]->str : NULL,
                owner->element[0]->type == REDIS_REPLY_STRING ? owner->element[0]->len : 0,
                owner->element[1]->integer, host, errstr, errstr_size) < 0)
            goto out;
    }
    if (!k2r_slotmap_complete(map)) {
        snprintf(errstr, errstr_size,
                 "%s: CLUSTER SLOTS: not every slot has a primary (the cluster is not ready)",
                 k2r_redis_addr(r));
        goto out;
    }
    rc = 0;
out:
    freeReplyObject(reply);
    return rc;
}

/* Makes `nm` the map, keeping the sinks of nodes that are still in it. */
static int adopt(k2r_cluster_t *c, k2r_slotmap_t *nm) {
    size_t n = k2r_slotmap_nnodes(nm);
    k2r_redis_t **node = calloc(n ? n : 1, sizeof(k2r_redis_t *));
    part_t *part = calloc(n ? n : 1, sizeof(*part));

    if (!node || !part) {
        free(node);
        free(part);
        return -1;
    }
    for (size_t j = 0; j < n; j++) {
        const k2r_slot_node_t *nn = k2r_slotmap_get(nm, (int)j);

        for (size_t i = 0; i < c->map.nnodes && i < c->cap; i++) {
            const k2r_slot_node_t *on = k2r_slotmap_get(&c->map, (int)i);

            if (c->node[i] && on->port == nn->port && strcmp(on->host, nn->host) == 0) {
                node[j] = c->node[i];
                c->node[i] = NULL;
                break;
            }
        }
    }
    for (size_t i = 0; i < c->map.nnodes && i < c->cap; i++) {
        k2r_redis_destroy(c->node[i]); /* no longer a primary */
        part_free(&c->part[i]);
    }
    free(c->node);
    free(c->part);
    c->node = node;
    c->part = part;
    c->cap = n ? n : 1;
    k2r_slotmap_free(&c->map);
    c->map = *nm; /* the node table moves with it */
    k2r_slotmap_init(nm);
    snprintf(c->addr, sizeof(c->addr), "cluster of %zu primaries", n);
    return 0;
}

/*
 * Reads the map again: from a connected node first, else from each seed in
 * turn. Returns 0; K2R_ERR_AUTH or K2R_ERR_TLS from a seed that refused us;
 * -1 with the reason in errstr.
 */
static int refresh(k2r_cluster_t *c, int64_t deadline_ms, char *errstr, size_t errstr_size) {
    k2r_slotmap_t *nm = malloc(sizeof(*nm));
    char last[512] = "no seed";
    int rc = -1;

    if (!nm) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    k2r_slotmap_init(nm);
    for (size_t i = 0; i < c->map.nnodes && i < c->cap && rc != 0; i++) {
        k2r_redis_t *r = c->node[i];

        if (!r || !k2r_redis_connected(r) || k2r_redis_publishing(r))
            continue;
        k2r_slotmap_clear(nm);
        rc = read_slots(r, k2r_slotmap_get(&c->map, (int)i)->host, deadline_ms, nm, last,
                        sizeof(last));
    }
    for (size_t i = 0; i < c->nseeds && rc != 0; i++) {
        char host[256];
        int port, crc;

        if (k2r_split_listen(c->seeds[i], host, sizeof(host), &port) != 0 || !host[0] ||
            k2r__redis_set_target(c->probe, host, port) != 0)
            continue;
        crc = k2r_redis_connect_by(c->probe, deadline_ms, last, sizeof(last));
        if (crc == K2R_ERR_AUTH || crc == K2R_ERR_TLS) {
            snprintf(errstr, errstr_size, "%s", last);
            rc = crc;
            goto out;
        }
        if (crc != 0)
            continue;
        k2r_slotmap_clear(nm);
        rc = read_slots(c->probe, host, deadline_ms, nm, last, sizeof(last));
        k2r_redis_disconnect(c->probe);
    }
    if (rc != 0) {
        snprintf(errstr, errstr_size, "no cluster node gave a slot map; the last said: %s", last);
        goto out;
    }
    if (adopt(c, nm) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        rc = -1;
        goto out;
    }
    c->refresh = 0;
    k2r_log_debug("redis: %s; slot map read", c->addr);
out:
    k2r_slotmap_free(nm);
    free(nm);
    return rc;
}

/* ------------------------------------------------------- connections */

int k2r_cluster_connected(const k2r_cluster_t *c) {
    if (!k2r_slotmap_complete(&c->map))
        return 0;
    for (size_t i = 0; i < c->map.nnodes; i++)
        if (i >= c->cap || !c->node[i] || !k2r_redis_connected(c->node[i]))
            return 0;
    return 1;
}

/* Connects every primary of the map that is not connected. */
static int connect_nodes(k2r_cluster_t *c, int64_t deadline_ms, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < c->map.nnodes; i++) {
        k2r_redis_t *r = node_sink(c, (int)i, errstr, errstr_size);
        int rc;

        if (!r)
            return -1;
        if (k2r_redis_connected(r))
            continue;
        rc = k2r_redis_connect_by(r, deadline_ms, errstr, errstr_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The map is read again whenever something is not as it says (a node down
 * may be a failover), then every primary is connected. */
int k2r_cluster_connect(k2r_cluster_t *c, int64_t deadline_ms, char *errstr, size_t errstr_size) {
    int rc;

    if (c->refresh || !k2r_cluster_connected(c)) {
        rc = refresh(c, deadline_ms, errstr, errstr_size);
        if (rc != 0)
            return rc;
    }
    return connect_nodes(c, deadline_ms, errstr, errstr_size);
}

void k2r_cluster_disconnect(k2r_cluster_t *c) {
    for (size_t i = 0; i < c->map.nnodes && i < c->cap; i++) {
        if (c->node[i])
            k2r_redis_disconnect(c->node[i]);
        c->part[i].active = 0;
    }
    c->active = 0;
}

size_t k2r_cluster_shards(const k2r_cluster_t *c, k2r_shard_stats_t *out, size_t max) {
    size_t n = 0;

    for (size_t i = 0; i < c->map.nnodes && n < max; i++, n++) {
        const k2r_slot_node_t *node = k2r_slotmap_get(&c->map, (int)i);
        k2r_shard_stats_t one = {{0}, 0, 0};

        if (i < c->cap && c->node[i])
            k2r_redis_shards(c->node[i], &one, 1);
        snprintf(out[n].addr, sizeof(out[n].addr), strchr(node->host, ':') ? "[%s]:%d" : "%s:%d",
                 node->host, node->port);
        out[n].up = one.up;
        out[n].connects = one.connects;
    }
    return n;
}

const char *k2r_cluster_addr(const k2r_cluster_t *c) {
    return c->addr;
}

int k2r_cluster_publishing(const k2r_cluster_t *c) {
    return c->active;
}

int k2r_cluster_tick(k2r_cluster_t *c, char *errstr, size_t errstr_size) {
    if (c->active)
        return 0;
    for (size_t i = 0; i < c->map.nnodes && i < c->cap; i++)
        if (c->node[i] && k2r_redis_tick(c->node[i], errstr, errstr_size) != 0)
            return -1;
    return 0;
}

/* ----------------------------------------------------------- publish */

/* The node item i goes to: an -ASK's, else its slot's owner (sharded, or
 * with the notification script, whose keys carry the channel's slot:
 * slots.h), else the first primary. -1 when the map has no owner for its
 * slot. */
static int route(const k2r_cluster_t *c, size_t i) {
    const k2r_publish_t *it = &c->items[i];

    if (c->ask[i] >= 0)
        return c->ask[i];
    if (!c->sharded && !k2r_publish_uses_script(it, c->conf.dedupe_window_ms))
        return c->map.nnodes ? 0 : -1;
    return k2r_slotmap_owner(&c->map, k2r_slot_of(it->channel, it->channel_len));
}

/* Gives every node its pending items, in order; 0, or -1 with errstr. */
static int start_round(k2r_cluster_t *c, char *errstr, size_t errstr_size) {
    if (fit_nodes(c) != 0)
        goto oom;
    for (size_t p = 0; p < c->map.nnodes; p++)
        c->part[p].n = 0;
    for (size_t i = 0; i < c->nitems; i++) {
        part_t *pt;
        int node;

        if (c->items[i].status != K2R_PUBLISH_PENDING)
            continue;
        node = route(c, i);
        if (node < 0) {
            snprintf(errstr, errstr_size, "%s: the slot map has no primary for a channel's slot",
                     c->addr);
            return -1;
        }
        pt = &c->part[node];
        if (k2r_array_reserve(&pt->sub, &pt->cap_sub, pt->n + 1, sizeof(*pt->sub), 256) != 0 ||
            k2r_array_reserve(&pt->idx, &pt->cap_idx, pt->n + 1, sizeof(*pt->idx), 256) != 0)
            goto oom;
        pt->sub[pt->n] = c->items[i];
        pt->sub[pt->n].asking = c->ask[i] >= 0;
        pt->idx[pt->n++] = i;
    }
    for (size_t p = 0; p < c->map.nnodes; p++) {
        if (c->part[p].n && (!c->node[p] || !k2r_redis_connected(c->node[p]))) {
            snprintf(errstr, errstr_size, "%s: not connected",
                     c->node[p] ? k2r_redis_addr(c->node[p]) : "a cluster node");
            return -1;
        }
    }
    for (size_t p = 0; p < c->map.nnodes; p++)
        c->part[p].active = c->part[p].n > 0;
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    return -1;
}

/* Follows one -MOVED or -ASK of item i, answered by node `from`: 1 when
 * it was one (the item is PENDING again), 0 when not, -1 when out of memory. */
static int redirect(k2r_cluster_t *c, size_t i, int from) {
    k2r_publish_t *it = &c->items[i];
    const k2r_slot_node_t *src = k2r_slotmap_get(&c->map, from);
    k2r_redirect_t r;
    int node;

    if (k2r_slot_redirect_parse(it->error, strlen(it->error), &r) == K2R_REDIRECT_NONE)
        return 0;
    node = k2r_slotmap_node(&c->map, r.host[0] ? r.host : src->host, r.port);
    if (node < 0 || fit_nodes(c) != 0)
        return -1;
    if (r.kind == K2R_REDIRECT_MOVED) {
        if (k2r_slotmap_assign(&c->map, r.slot, r.slot, node) != 0)
            return -1;
        c->ask[i] = -1;
        c->refresh = 1; /* other slots may have moved too */
    } else {
        c->ask[i] = node;
    }
    it->status = K2R_PUBLISH_PENDING;
    it->error[0] = '\0';
    return 1;
}

/*
 * The round is over: replies go back to the caller's items, redirections
 * are followed. Returns 0 when the publish is over, K2R_REDIS_AGAIN when a
 * new round started, -1 with errstr when it failed.
 */
static int end_round(k2r_cluster_t *c, char *errstr, size_t errstr_size) {
    size_t redirected = 0;
    int64_t deadline;

    for (size_t p = 0; p < c->map.nnodes; p++) {
        part_t *pt = &c->part[p];

        for (size_t k = 0; k < pt->n; k++) {
            k2r_publish_t *it = &c->items[pt->idx[k]];
            int rc;

            it->status = pt->sub[k].status;
            it->receivers = pt->sub[k].receivers;
            it->suppressed = pt->sub[k].suppressed;
            memcpy(it->error, pt->sub[k].error, sizeof(it->error));
            if (it->status != K2R_PUBLISH_ERROR)
                continue;
            rc = redirect(c, pt->idx[k], (int)p);
            if (rc < 0) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
            }
            redirected += (size_t)rc;
        }
        pt->n = 0;
    }
    if (c->failed) {
        snprintf(errstr, errstr_size, "%s", c->failure);
        return -1;
    }
    if (!redirected)
        return 0;
    if (++c->rounds > MAX_ROUNDS) {
        snprintf(errstr, errstr_size,
                 "%s: redirected %d times in a row (a slot migration that does not settle?)",
                 c->addr, MAX_ROUNDS);
        return -1;
    }
    /* Rare (a migration, a failover) and worth a line: once per round. */
    k2r_log_info("redis: %s: %zu notification(s) redirected (-MOVED/-ASK); sending them to the "
                 "new owner, in order",
                 c->addr, redirected);
    deadline = k2r_now_ms() + c->conf.connect_timeout_ms;
    if (connect_nodes(c, deadline, errstr, errstr_size) != 0)
        return -1;
    return start_round(c, errstr, errstr_size) != 0 ? -1 : K2R_REDIS_AGAIN;
}

int k2r_cluster_publish(k2r_cluster_t *c, k2r_publish_t *items, size_t nitems,
                        const k2r_redis_wait_t *wait, char *errstr, size_t errstr_size) {
    static const k2r_redis_wait_t now_only = {.wait_ms = 0, .wake_fd = -1};
    int64_t until = wait ? k2r_now_ms() + (wait->wait_ms > 0 ? wait->wait_ms : 0) : INT64_MAX;
    int woke = 0;

    if (!c->active) {
        size_t first = 0;

        while (first < nitems && items[first].status != K2R_PUBLISH_PENDING)
            first++;
        if (first == nitems)
            return 0;
        /* A -MOVED last time: the map is read again before anything is routed. */
        if (c->refresh &&
            refresh(c, k2r_now_ms() + c->conf.connect_timeout_ms, errstr, errstr_size) == 0)
            (void)connect_nodes(c, k2r_now_ms() + c->conf.connect_timeout_ms, errstr, errstr_size);
        if (k2r_array_reserve(&c->ask, &c->cap_ask, nitems, sizeof(*c->ask), 1024) != 0) {
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < nitems; i++)
            c->ask[i] = -1;
        c->items = items;
        c->nitems = nitems;
        c->rounds = 0;
        c->failed = 0;
        if (start_round(c, errstr, errstr_size) != 0)
            return -1;
        c->active = 1;
    }
    assert(items == c->items && nitems == c->nitems);

    for (;;) {
        struct pollfd pfd[65];
        nfds_t n = 0;
        int64_t now;
        int busy = 0, rc;

        for (size_t p = 0; p < c->map.nnodes; p++) {
            part_t *pt = &c->part[p];
            char why[512];

            if (!pt->active)
                continue;
            rc = k2r_redis_publish(c->node[p], pt->sub, pt->n, &now_only, why, sizeof(why));
            if (rc == K2R_REDIS_AGAIN) {
                busy = 1;
                if (n < sizeof(pfd) / sizeof(pfd[0]) - 1)
                    k2r__redis_pollfd(c->node[p], &pfd[n++]);
                continue;
            }
            pt->active = 0;
            if (rc != 0 && !c->failed) {
                c->failed = 1;
                snprintf(c->failure, sizeof(c->failure), "%s", why);
            }
        }
        if (!busy) {
            rc = end_round(c, errstr, errstr_size);
            if (rc == K2R_REDIS_AGAIN)
                continue;
            c->active = 0;
            c->items = NULL;
            return rc;
        }
        if (woke)
            return K2R_REDIS_AGAIN;
        now = k2r_now_ms();
        if (now >= until)
            return K2R_REDIS_AGAIN;
        if (wait && wait->wake_fd >= 0)
            pfd[n++] = (struct pollfd){.fd = wait->wake_fd, .events = POLLIN, .revents = 0};
        /* At most 100 ms: each node's sink checks its own command timeout
         * when it is driven. */
        rc = poll(pfd, n, until - now > 100 ? 100 : (int)(until - now));
        if (rc > 0 && wait && wait->wake_fd >= 0 && pfd[n - 1].revents)
            woke = 1;
    }
}
