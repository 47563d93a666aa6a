/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_security.c - Kafka over TLS with SASL: the bridge consuming from,
 * and dead-lettering to, the real broker's secured listeners that
 * scripts/stack.sh opens beside the plaintext one (K2R_TEST_KAFKA_*: a
 * SASL_SSL listener with a SCRAM-SHA-512 user made when the broker's storage
 * was formatted, a SASL_SSL listener taking OAUTHBEARER tokens through
 * Kafka's unsecured-JWT validator, a SASL_SSL listener whose certificate
 * names only wrong.example, and an SSL listener that requires a client
 * certificate; the CA and certificates are made by openssl at each start). The tests' own producer
 * and dead-letter reader use the plaintext listener: only the bridge goes through the secured ones.
 *
 * What is proved: with SCRAM-SHA-512, with OAUTHBEARER and with mutual TLS,
 * exact notifications in order, a record that dead-letters arriving in the
 * dead-letter topic (so the dead-letter producer authenticated too), and the
 * offsets committed; a wrong password, a CA that did not sign the broker's
 * certificate, and a certificate without the name the bridge connects to
 * (an IP address, then a DNS name), and no client certificate where one is
 * required each end the bridge after kafka.startup_timeout with exit status
 * 3 and one error line naming the cause, with no line per retry before it.
 */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { STARTUP_TIMEOUT_MS = 2000 };

/* A variable of the stack's env, or "" (and a message) when unset. */
static const char *stack_env(const char *name) {
    const char *v = getenv(name);

    if (!v || !*v) {
        fprintf(stderr, "%s is not set: run through scripts/with-stack.sh\n", name);
        return "";
    }
    return v;
}

/* The SASL_SSL SCRAM-SHA-512 properties with `password` and `ca` (lines
 * under kafka.properties). */
static void scram_properties(char *out, size_t size, const char *password, const char *ca) {
    snprintf(out, size,
             "    security.protocol: SASL_SSL\n"
             "    sasl.mechanisms: SCRAM-SHA-512\n"
             "    sasl.username: %s\n"
             "    sasl.password: %s\n"
             "    ssl.ca.location: %s\n",
             stack_env("K2R_TEST_KAFKA_SCRAM_USER"), password, ca);
}

/*
 * The config of scene `sc` with the bridge reaching Kafka at `bootstrap`
 * only, with the librdkafka `properties`, kafka.startup_timeout short and
 * one rule: {"n":i} to PREFIX:i with message i, anything else dead-lettered
 * to sc->dlq.
 */
static void secured_config(const h_scene_t *sc, const char *bootstrap, const char *properties,
                           char *yaml, size_t size) {
    char rules[512], extra[64], plain[160], *at;
    h_config_opts_t opts = {sc->dlq, extra, properties, NULL, NULL};

    snprintf(extra, sizeof(extra), "  startup_timeout: %dms\n", STARTUP_TIMEOUT_MS);
    snprintf(rules, sizeof(rules),
             "  - name: secured\n"
             "    topic: %s\n"
             "    vars:\n"
             "      n: {path: n}\n"
             "    channel: \"%s:{n}\"\n"
             "    message: \"{n}\"\n"
             "    on_error: dead-letter\n",
             sc->topic, sc->prefix);
    h_config_opts(yaml, size, sc->group, sc->topic, sc->redis_port, &opts, rules);
    /* h_config_opts names the plaintext listener: the bridge gets the secured one. */
    snprintf(plain, sizeof(plain), "  brokers: %s\n", h_brokers());
    at = strstr(yaml, plain);
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    CU_ASSERT_FATAL(strlen(yaml) - strlen(plain) + strlen(bootstrap) + 12 < size);
    memmove(at + strlen("  brokers: ") + strlen(bootstrap) + 1, at + strlen(plain),
            strlen(at + strlen(plain)) + 1);
    memcpy(at + strlen("  brokers: "), bootstrap, strlen(bootstrap));
    at[strlen("  brokers: ") + strlen(bootstrap)] = '\n';
}

/*
 * Through `bootstrap` with `properties`: records 0..4, one without "n" (it
 * goes to the dead-letter topic, with its reason and where it came from),
 * 5..9; then exactly PREFIX:0..9 in order, the dead letter, and offset 11
 * committed once the bridge stopped with SIGTERM.
 */
static void deliver_through(const char *name, const char *bootstrap, const char *properties) {
    static const char bad[] = "{\"x\":1}";
    char yaml[4096];
    const h_record_t *r;
    h_consumer_t *dead = NULL;
    int64_t committed[1] = {-2};
    size_t len;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, name, 1, NULL, H_SCENE_DLQ), 0);
    secured_config(&sc, bootstrap, properties, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    h_produce_numbered(&sc, 0, 5);
    CU_ASSERT_EQUAL(h_produce(sc.p, sc.topic, 0, NULL, bad, strlen(bad)), 0);
    h_produce_numbered(&sc, 5, 10);

    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 10, h_deadline(60000)), 10);
    h_assert_quiet(sc.sub);
    h_assert_numbered(&sc, sc.sub, 0, 10);

    dead = h_consumer_new(sc.dlq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dead);
    CU_ASSERT_EQUAL(h_consumer_wait(dead, 1, h_deadline(60000)), 1);
    r = h_consumer_count(dead) ? h_consumer_record(dead, 0) : NULL;
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r) {
        CU_ASSERT_EQUAL(r->value_len, strlen(bad));
        CU_ASSERT(r->value && strcmp(r->value, bad) == 0);
        CU_ASSERT(h_record_header(r, "k2r.error.reason", &len) &&
                  strcmp(h_record_header(r, "k2r.error.reason", &len), "missing_field") == 0);
        CU_ASSERT(h_record_header(r, "k2r.source.topic", &len) &&
                  strcmp(h_record_header(r, "k2r.source.topic", &len), sc.topic) == 0);
        CU_ASSERT(h_record_header(r, "k2r.source.offset", &len) &&
                  strcmp(h_record_header(r, "k2r.source.offset", &len), "5") == 0);
    }
    h_consumer_destroy(dead);

    CU_ASSERT(h_bridge_log_has(&sc.b, "bridge: running: group"));
    CU_ASSERT(h_bridge_log_has(&sc.b, ", dead letters to "));
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "Z error "), 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    CU_ASSERT_EQUAL(h_committed(sc.group, sc.topic, 1, committed), 0);
    CU_ASSERT_EQUAL(committed[0], 11);
    h_scene_close(&sc);
}

/* (1) SASL_SSL with SCRAM-SHA-512, the broker verified against the stack's
 * CA by IP address (librdkafka's default endpoint identification). */
static void test_scram(void) {
    char props[1024];

    scram_properties(props, sizeof(props), stack_env("K2R_TEST_KAFKA_SCRAM_PASSWORD"),
                     stack_env("K2R_TEST_KAFKA_CA_FILE"));
    deliver_through("sec-scram", stack_env("K2R_TEST_KAFKA_SASL_SSL_BOOTSTRAP"), props);
}

/* (2) SASL_SSL with OAUTHBEARER: librdkafka's unsecured JWT (principal
 * k2r-bridge), accepted by the broker's unsecured validator. */
static void test_oauthbearer(void) {
    char props[1024];

    snprintf(props, sizeof(props),
             "    security.protocol: SASL_SSL\n"
             "    sasl.mechanisms: OAUTHBEARER\n"
             "    enable.sasl.oauthbearer.unsecure.jwt: true\n"
             "    sasl.oauthbearer.config: principal=k2r-bridge\n"
             "    ssl.ca.location: %s\n",
             stack_env("K2R_TEST_KAFKA_CA_FILE"));
    deliver_through("sec-oauth", stack_env("K2R_TEST_KAFKA_OAUTH_BOOTSTRAP"), props);
}

/* The SSL properties with the stack's CA and, when `with_cert`, its client
 * certificate and key. */
static void mtls_properties(char *out, size_t size, int with_cert) {
    const char *dir = stack_env("K2R_TEST_TLS_DIR");

    snprintf(out, size, "    security.protocol: SSL\n    ssl.ca.location: %s\n",
             stack_env("K2R_TEST_KAFKA_CA_FILE"));
    if (with_cert)
        snprintf(out + strlen(out), size - strlen(out),
                 "    ssl.certificate.location: %s/client.crt\n"
                 "    ssl.key.location: %s/client.key\n",
                 dir, dir);
}

/* (3) Mutual TLS: the listener requires a client certificate signed by the
 * stack's CA; the bridge gives one. */
static void test_mtls(void) {
    char props[1024];

    mtls_properties(props, sizeof(props), 1);
    deliver_through("sec-mtls", stack_env("K2R_TEST_KAFKA_MTLS_BOOTSTRAP"), props);
}

/*
 * A bridge given `properties` for `bootstrap` (with a record waiting) exits
 * 3 no sooner than kafka.startup_timeout, its one error line before "stopped
 * on a failure" holding `line` and the hint `check`, the cause (`cause`)
 * named once in the whole log, no warning, nothing published.
 */
static void refused(const char *name, const char *bootstrap, const char *properties,
                    const char *line, const char *cause, const char *check) {
    char yaml[4096], want[1024];
    int64_t started, took;
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(h_scene_open(&sc, name, 1, NULL, H_SCENE_DLQ), 0);
    h_produce_numbered(&sc, 0, 1);
    secured_config(&sc, bootstrap, properties, yaml, sizeof(yaml));
    started = h_now_ms();
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, 0), 3);
    took = h_now_ms() - started;
    printf("\n    [%s: exit 3 after %lld ms] ", name, (long long)took);
    CU_ASSERT(took >= STARTUP_TIMEOUT_MS);
    snprintf(want, sizeof(want), "Z error kafka: cannot start: no broker answered within %d ms: %s",
             STARTUP_TIMEOUT_MS, line);
    CU_ASSERT(h_bridge_log_has(&sc.b, want));
    CU_ASSERT(h_bridge_log_has(&sc.b, check));
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, cause), 1);
    /* That line and "kafka-redis-bridge stopped on a failure (exit status 3)". */
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "Z error "), 2);
    CU_ASSERT(
        h_bridge_log_has(&sc.b, "Z error kafka-redis-bridge stopped on a failure (exit status 3)"));
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "Z warn "), 0);
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), 0);
    h_scene_close(&sc);
}

static const char check_sasl[] = "; check sasl.mechanisms, sasl.username and sasl.password";
static const char check_ca[] = "; check ssl.ca.location (the CA that signed the brokers' "
                               "certificates) and that the certificates name the hosts in "
                               "kafka.brokers";

/* (4) The right user, a wrong password: the broker refuses the SCRAM
 * exchange on every attempt. */
static void test_wrong_password(void) {
    const char *bootstrap = stack_env("K2R_TEST_KAFKA_SASL_SSL_BOOTSTRAP");
    char props[1024], line[512];

    scram_properties(props, sizeof(props), "not-the-password", stack_env("K2R_TEST_KAFKA_CA_FILE"));
    snprintf(line, sizeof(line),
             "Local: Authentication failure: sasl_ssl://%s/bootstrap: SASL authentication "
             "error: Authentication failed during authentication due to invalid credentials with "
             "SASL mechanism SCRAM-SHA-512",
             bootstrap);
    refused("sec-password", bootstrap, props, line, "invalid credentials", check_sasl);
}

/* (5) A CA that did not sign the broker's certificate. The broker sends
 * only its own certificate, so OpenSSL cannot find its issuer. */
static void test_untrusted_ca(void) {
    const char *bootstrap = stack_env("K2R_TEST_KAFKA_SASL_SSL_BOOTSTRAP");
    char props[1024], ca[512], line[512];

    snprintf(ca, sizeof(ca), "%s/other-ca.crt", stack_env("K2R_TEST_TLS_DIR"));
    scram_properties(props, sizeof(props), stack_env("K2R_TEST_KAFKA_SCRAM_PASSWORD"), ca);
    snprintf(line, sizeof(line),
             "Local: SSL error: sasl_ssl://%s/bootstrap: SSL handshake failed: certificate verify "
             "failed: unable to get local issuer certificate (certificate /CN=localhost, issuer "
             "/CN=k2r test CA)",
             bootstrap);
    refused("sec-ca", bootstrap, props, line, "certificate verify failed", check_ca);
}

/*
 * (6) The right CA, a certificate for wrong.example only, and librdkafka's
 * default ssl.endpoint.identification.algorithm (https): reached by IP
 * address, then by a DNS name (localhost, IPv4 only: the broker does not
 * listen on ::1).
 */
static void test_name_mismatch(void) {
    const char *wrong = stack_env("K2R_TEST_KAFKA_WRONGNAME_BOOTSTRAP");
    const char *port = strchr(wrong, ':') ? strchr(wrong, ':') + 1 : "0";
    char props[1024], line[512], by_name[64];

    scram_properties(props, sizeof(props), stack_env("K2R_TEST_KAFKA_SCRAM_PASSWORD"),
                     stack_env("K2R_TEST_KAFKA_CA_FILE"));
    snprintf(line, sizeof(line),
             "Local: SSL error: sasl_ssl://%s/bootstrap: SSL handshake failed: certificate verify "
             "failed: IP address mismatch (certificate /CN=wrong.example, issuer /CN=k2r test CA)",
             wrong);
    refused("sec-name-ip", wrong, props, line, "certificate verify failed", check_ca);

    snprintf(by_name, sizeof(by_name), "localhost:%s", port);
    strncat(props, "    broker.address.family: v4\n", sizeof(props) - strlen(props) - 1);
    snprintf(line, sizeof(line),
             "Local: SSL error: sasl_ssl://%s/bootstrap: SSL handshake failed: certificate verify "
             "failed: hostname mismatch (certificate /CN=wrong.example, issuer /CN=k2r test CA)",
             by_name);
    refused("sec-name-dns", by_name, props, line, "certificate verify failed", check_ca);
}

/* (7) The mutual-TLS listener without a client certificate: the broker
 * ends the handshake with a bad_certificate alert. */
static void test_no_client_certificate(void) {
    const char *bootstrap = stack_env("K2R_TEST_KAFKA_MTLS_BOOTSTRAP");
    char props[1024], line[512];

    mtls_properties(props, sizeof(props), 0);
    snprintf(line, sizeof(line),
             "Local: Broker transport failure: ssl://%s/bootstrap: Receive failed: "
             "error:0A000412:SSL routines::sslv3 alert bad certificate: SSL alert number 42",
             bootstrap);
    refused("sec-no-cert", bootstrap, props, line, "alert bad certificate",
            "; the broker refused the client certificate, or its absence: check "
            "ssl.certificate.location and ssl.key.location");
}

int test_security_register(void) {
    CU_pSuite s = CU_add_suite("security", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "SASL_SSL SCRAM-SHA-512: exact notifications, dead letter, commit",
                     test_scram) ||
        !CU_add_test(s, "SASL_SSL OAUTHBEARER: exact notifications, dead letter, commit",
                     test_oauthbearer) ||
        !CU_add_test(s, "mutual TLS: exact notifications, dead letter, commit", test_mtls) ||
        !CU_add_test(s, "wrong SCRAM password: one line, exit 3", test_wrong_password) ||
        !CU_add_test(s, "untrusted CA: one line, exit 3", test_untrusted_ca) ||
        !CU_add_test(s, "certificate without the name: one line each, exit 3",
                     test_name_mismatch) ||
        !CU_add_test(s, "no client certificate for mutual TLS: one line, exit 3",
                     test_no_client_certificate))
        return CU_get_error();
    return 0;
}
