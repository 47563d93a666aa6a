/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shim_int.h - what the plugin (plugin.c) needs of the shim (shim.c) beyond
 * the installed API: closing apart from releasing, because librdkafka may
 * still hand an acknowledgement to the interceptor after on_destroy (its
 * broker threads are joined after it), and that call must find a shim that
 * only counts it.
 */
#ifndef K2R_SHIM_INT_H
#define K2R_SHIM_INT_H

#include "k2r/shim.h"

/* Publishes what is queued for at most flush_timeout_ms, then stops the
 * thread. Later k2r_shim_publish calls drop and count; k2r_shim_destroy
 * releases. Idempotent; call it from one thread. */
void k2r_shim_close(k2r_shim_t *shim);

#endif
