/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_int.h - between the Redis sink's two files: redis.c (one connection:
 * socket, TLS, RESP, pipelined PUBLISH, Sentinel discovery) and cluster.c
 * (Redis Cluster: the slot map and one such connection per primary). Not a
 * public header: nothing outside those two includes it.
 */
#ifndef K2R_REDIS_INT_H
#define K2R_REDIS_INT_H

#include <poll.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "k2r/redis.h"

/* ---------------------------------------------------------- redis.c */

/* Points an unconnected sink at host:port; 0, or -1 when out of memory. */
int k2r__redis_set_target(k2r_redis_t *redis, const char *host, int port);

/* One command on a connected, idle sink whose reply is a tree (CLUSTER
 * SLOTS), within deadline_ms. 0 with *out (freeReplyObject it), or -1 with
 * the reason in errstr and the connection closed. */
int k2r__redis_command(k2r_redis_t *redis, int argc, const char **argv, const size_t *argvlen,
                       int64_t deadline_ms, redisReply **out, char *errstr, size_t errstr_size);

/* Marks a sink as one primary's of a cluster: the notification script's
 * keys are named to share the channel's slot (slots.h). */
void k2r__redis_set_cluster_member(k2r_redis_t *redis);

/* What the sink's socket waits for (fd -1 when not connected). */
void k2r__redis_pollfd(const k2r_redis_t *redis, struct pollfd *pfd);

/* --------------------------------------------------------- cluster.c */

typedef struct k2r_cluster_s k2r_cluster_t;

/* A cluster sink for conf (conf->ncluster_addrs > 0); NULL with errstr. */
k2r_cluster_t *k2r_cluster_new(const k2r_redis_conf_t *conf, char *errstr, size_t errstr_size);
void k2r_cluster_destroy(k2r_cluster_t *c);

/* The sink's calls (redis.h), for a cluster: same contracts. */
int k2r_cluster_connect(k2r_cluster_t *c, int64_t deadline_ms, char *errstr, size_t errstr_size);
int k2r_cluster_connected(const k2r_cluster_t *c);
void k2r_cluster_disconnect(k2r_cluster_t *c);
int k2r_cluster_publish(k2r_cluster_t *c, k2r_publish_t *items, size_t nitems,
                        const k2r_redis_wait_t *wait, char *errstr, size_t errstr_size);
int k2r_cluster_publishing(const k2r_cluster_t *c);
int k2r_cluster_tick(k2r_cluster_t *c, char *errstr, size_t errstr_size);
const char *k2r_cluster_addr(const k2r_cluster_t *c);
size_t k2r_cluster_shards(const k2r_cluster_t *c, k2r_shard_stats_t *out, size_t max);

#endif
