/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - the operators' HTTP endpoint: /healthz, /readyz and /metrics.
 *
 * A small server on libmicrohttpd with one thread of its own. It only reads
 * the metrics registry (metrics.h); it never touches Kafka, Redis or the
 * bridge, so a slow or hostile client costs the record path nothing.
 *
 *   GET /healthz  200 "ok" while the main loop turns; 503 and the reason when
 *                 it has not turned for K2R_HTTP_STALL_MS
 *   GET /readyz   200 "ready" when the config is loaded, the consumer is in
 *                 its group and Redis is writable; 503 and the reason
 *   GET /metrics  200, Prometheus text format 0.0.4
 *   anything else 404; a method other than GET or HEAD 405
 */
#ifndef K2R_HTTP_H
#define K2R_HTTP_H

#include <stddef.h>

#include "k2r/metrics.h"

/* How long the main loop may go without a turn before /healthz fails. It
 * waits at most a poll timeout per turn, but a rebalance callback or the
 * commit on a revoke may hold it for seconds; liveness must not kill a bridge
 * for that. */
#define K2R_HTTP_STALL_MS 30000

typedef struct k2r_http_s k2r_http_t;

/*
 * Binds `listen` ("host:port", "[v6]:port", or ":port" for every interface;
 * a host name is resolved and its first address that binds is used) and
 * starts serving from `m`, which is borrowed and must outlive the server.
 * Returns the server, or NULL with a one-line reason in errstr, e.g.
 * "http.listen 0.0.0.0:8080: Address already in use".
 */
k2r_http_t *k2r_http_start(const char *listen, k2r_metrics_t *m, char *errstr, size_t errstr_size);

/* Stops serving (waits for the server's thread) and releases it; NULL does
 * nothing. */
void k2r_http_stop(k2r_http_t *http);

#endif
