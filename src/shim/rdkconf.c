/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rdkconf.c - the librdkafka conf functions that config.c calls, for
 * the shim's shared library only (the Makefile links this file into
 * libk2r_shim.so and nowhere else; it lies outside src/ itself so that no
 * archive of the bridge can pick it up in place of librdkafka's).
 *
 * config.c hands each kafka.properties entry to rd_kafka_conf_set() so that
 * `kafka-redis-bridge check` reports a property librdkafka refuses. The shim
 * does not consume and must not judge the bridge's consumer properties by
 * its host's librdkafka, which may be another version (kcat on Debian 12 has
 * 2.0.2) and would refuse properties the bridge's accepts: so here every
 * property is accepted, none is ever read back (so the bridge's checks of
 * property combinations, such as OAUTHBEARER's token source, find nothing to
 * object to), and nothing of the host's librdkafka is called. The
 * symbols are hidden (-fvisibility=hidden), so a host's own
 * rd_kafka_conf_set is never replaced.
 */
#include <stddef.h>

/* The prototypes, for -Wmissing-prototypes; rdkafka.h is not included so
 * that the types cannot be mistaken for librdkafka's. */
void *rd_kafka_conf_new(void);
int rd_kafka_conf_set(void *conf, const char *name, const char *value, char *errstr,
                      size_t errstr_size);
void rd_kafka_conf_destroy(void *conf);
int rd_kafka_conf_get(const void *conf, const char *name, char *dest, size_t *dest_size);

/* Any non-NULL pointer: config.c only passes it back to the functions below. */
static char conf_token;

void *rd_kafka_conf_new(void) {
    return &conf_token;
}

int rd_kafka_conf_set(void *conf, const char *name, const char *value, char *errstr,
                      size_t errstr_size) {
    (void)conf;
    (void)name;
    (void)value;
    (void)errstr;
    (void)errstr_size;
    return 0; /* RD_KAFKA_CONF_OK */
}

void rd_kafka_conf_destroy(void *conf) {
    (void)conf;
}

/* Nothing was kept: every property reads as unknown, dest untouched. */
int rd_kafka_conf_get(const void *conf, const char *name, char *dest, size_t *dest_size) {
    (void)conf;
    (void)name;
    (void)dest;
    (void)dest_size;
    return -2; /* RD_KAFKA_CONF_UNKNOWN */
}
