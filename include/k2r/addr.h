/* SPDX-License-Identifier: Apache-2.0 */
/*
 * addr.h - splitting a listen address ("host:port", "[v6]:port", ":port")
 * into its host and port.
 *
 * A leaf: string parsing only. The config checks http.listen with it, so a
 * bad address is a config error at its line, and the HTTP server splits the
 * same string the same way when it binds.
 *
 * Not here: resolving the host or binding (http.c), or redis:// URLs
 * (redis_url.h).
 */
#ifndef K2R_ADDR_H
#define K2R_ADDR_H

#include <stddef.h>

/*
 * Splits an HTTP listen address, "host:port", "[v6]:port" or ":port" (all
 * interfaces), into `host` ("" for none; the caller's buffer of host_size
 * bytes) and `port` (1-65535). Returns 0, or -1 when it is none of those or
 * the host does not fit.
 */
int k2r_split_listen(const char *listen, char *host, size_t host_size, int *port);

#endif
