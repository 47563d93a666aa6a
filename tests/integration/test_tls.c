/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_tls.c - rediss://: the bridge publishing over TLS to a real
 * redis-server, with the CA and certificates scripts/stack.sh made at start
 * (K2R_TEST_TLS_DIR). That server (redis-tls) has a TLS port, which the
 * bridge uses, and a plaintext port, which the tests' subscribers and their
 * CONFIG SET use (the harness's subscriber speaks no TLS). Its client
 * certificates are optional; the mutual TLS test makes them required for its
 * own duration.
 *
 * What is proved: exact notifications with a verified server and with a
 * client certificate; a wrong CA, a wrong name and an expired certificate
 * each end the bridge with one line naming OpenSSL's reason and exit 3; a
 * client without a certificate where one is required ends the same way; and
 * a TLS Redis restarted twice loses nothing.
 */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* The TLS port, the same server's plaintext port, and the certificates'
 * folder, from the stack's env; 0 or NULL (and a message) when unset. */
static int env_port(const char *name) {
    const char *v = getenv(name);

    if (!v || !*v) {
        fprintf(stderr, "%s is not set: run through scripts/with-stack.sh\n", name);
        return 0;
    }
    return atoi(v);
}

static int tls_port(void) {
    return env_port("K2R_TEST_REDIS_TLS_PORT");
}

static int plain_port(void) {
    return env_port("K2R_TEST_REDIS_TLS_PLAIN_PORT");
}

static const char *tls_dir(void) {
    const char *v = getenv("K2R_TEST_TLS_DIR");
    return v ? v : "/nonexistent";
}

/* redis-cli against the TLS server's plaintext port; 0 when it printed `want`. */
static int tls_server_cli(const char *args, const char *want) {
    return h_redis_cli_port(plain_port(), args, want);
}

/*
 * The config of scene `sc` with the bridge publishing to rediss://127.0.0.1:
 * `port` (the TLS port, or a proxy in front of it), the redis.tls lines
 * `tls` (each "    key: value\n"), one rule: {n} to PREFIX:{n}.
 */
static void tls_config(const h_scene_t *sc, int port, const char *tls, char *yaml, size_t size) {
    char extra[1024], *url;
    h_config_opts_t opts = {NULL, NULL, NULL, NULL, NULL};

    snprintf(extra, sizeof(extra),
             "  command_timeout_ms: 2000\n"
             "  tls:\n"
             "%s",
             tls);
    opts.redis_extra = extra;
    h_config_numbered(sc, port, &opts, yaml, size);
    url = strstr(yaml, "url: redis://");
    CU_ASSERT_PTR_NOT_NULL_FATAL(url);
    memmove(url + strlen("url: rediss"), url + strlen("url: redis"),
            strlen(url + strlen("url: redis")) + 1);
    url[strlen("url: redis")] = 's';
}

/* Opens a scene whose subscriber listens on the TLS server's plain port. */
static int tls_scene_open(h_scene_t *sc, const char *name) {
    char pattern[112];

    if (h_scene_open(sc, name, 1, NULL, 0) != 0)
        return -1;
    /* h_scene_open subscribed on the plaintext stack Redis: replace it. */
    h_sub_destroy(sc->sub);
    snprintf(pattern, sizeof(pattern), "%s:*", sc->prefix);
    sc->sub = h_sub_new(plain_port(), pattern);
    return sc->sub ? 0 : -1;
}

/* The bridge with `tls` settings delivers 20 records exactly, then stops with 0. */
static void deliver_exactly(const char *name, const char *tls) {
    char yaml[4096];
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(tls_scene_open(&sc, name), 0);
    tls_config(&sc, tls_port(), tls, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    h_produce_numbered(&sc, 0, 20);
    CU_ASSERT_EQUAL(h_sub_wait(sc.sub, 20, h_deadline(60000)), 20);
    h_assert_quiet(sc.sub);
    h_assert_numbered(&sc, sc.sub, 0, 20);
    CU_ASSERT(h_bridge_log_has(&sc.b, "redis: connected to 127.0.0.1"));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    h_scene_close(&sc);
}

/* (1) The server's certificate verified against the CA, by IP address
 * (the URL's host, 127.0.0.1), no client certificate. */
static void test_server_verified(void) {
    char tls[512];

    snprintf(tls, sizeof(tls), "    ca_file: %s/ca.crt\n", tls_dir());
    deliver_exactly("tls-verified", tls);
}

/*
 * (2) Mutual TLS: the server requires a client certificate for this test
 * (CONFIG SET tls-auth-clients yes, back to optional at the end), the bridge
 * gives one, and verifies the server by DNS name (server_name: localhost,
 * also sent as SNI). A bridge without a certificate is refused: one line,
 * exit 3.
 */
static void test_mutual(void) {
    char tls[1024], yaml[4096], line[160];
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(tls_server_cli("CONFIG SET tls-auth-clients yes", "OK"), 0);
    snprintf(tls, sizeof(tls),
             "    ca_file: %s/ca.crt\n"
             "    cert_file: %s/client.crt\n"
             "    key_file: %s/client.key\n"
             "    server_name: localhost\n",
             tls_dir(), tls_dir(), tls_dir());
    deliver_exactly("tls-mutual", tls);

    /* The same server without a client certificate. */
    CU_ASSERT_EQUAL_FATAL(tls_scene_open(&sc, "tls-nocert"), 0);
    snprintf(tls, sizeof(tls), "    ca_file: %s/ca.crt\n", tls_dir());
    tls_config(&sc, tls_port(), tls, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, 0), 3);
    snprintf(line, sizeof(line), "redis: 127.0.0.1:%d: TLS read: tlsv13 alert certificate required",
             tls_port());
    CU_ASSERT(h_bridge_log_has(&sc.b, line));
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "TLS read:"), 1);
    h_scene_close(&sc);
    CU_ASSERT_EQUAL(tls_server_cli("CONFIG SET tls-auth-clients optional", "OK"), 0);
}

/* A bridge with `tls` settings logs `reason` (after the handshake line's
 * prefix) once, then exits 3 without delivering anything. */
static void refused(const char *name, const char *tls, const char *reason) {
    char yaml[4096], line[256];
    h_scene_t sc;

    CU_ASSERT_EQUAL_FATAL(tls_scene_open(&sc, name), 0);
    tls_config(&sc, tls_port(), tls, yaml, sizeof(yaml));
    h_produce_numbered(&sc, 0, 1);
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, 0), 3);
    snprintf(line, sizeof(line),
             "redis: TLS handshake with 127.0.0.1:%d: certificate verify failed: %s; check "
             "redis.tls.ca_file",
             tls_port(), reason);
    CU_ASSERT(h_bridge_log_has(&sc.b, line));
    CU_ASSERT_EQUAL(h_bridge_log_count(&sc.b, "certificate verify failed"), 1);
    CU_ASSERT(h_bridge_log_has(&sc.b, "stopped on a failure (exit status 3)"));
    CU_ASSERT_EQUAL(h_sub_count(sc.sub), 0);
    h_scene_close(&sc);
}

/* (3) A CA that signed neither certificate. redis-server sends its CA with
 * its certificate, so OpenSSL's reason is the chain's untrusted root. */
static void test_wrong_ca(void) {
    char tls[512];

    snprintf(tls, sizeof(tls), "    ca_file: %s/other-ca.crt\n", tls_dir());
    refused("tls-wrong-ca", tls, "self-signed certificate in certificate chain");
}

/* (4) The right CA, a name the certificate does not have. */
static void test_wrong_name(void) {
    char tls[512];

    snprintf(tls, sizeof(tls),
             "    ca_file: %s/ca.crt\n"
             "    server_name: wrong.example\n",
             tls_dir());
    refused("tls-wrong-name", tls, "hostname mismatch");
}

/* (5) The server presents an expired certificate (CONFIG SET for this test). */
static void test_expired(void) {
    char tls[512], args[512];

    snprintf(args, sizeof(args), "CONFIG SET tls-cert-file %s/expired.crt", tls_dir());
    CU_ASSERT_EQUAL_FATAL(tls_server_cli(args, "OK"), 0);
    snprintf(tls, sizeof(tls), "    ca_file: %s/ca.crt\n", tls_dir());
    refused("tls-expired", tls, "certificate has expired");
    snprintf(args, sizeof(args), "CONFIG SET tls-cert-file %s/server.crt", tls_dir());
    CU_ASSERT_EQUAL(tls_server_cli(args, "OK"), 0);
}

/*
 * (6) A TLS Redis restarted twice: a proxy in front of the TLS port is cut
 * (the bridge notices at its next publish and holds), redis-tls is stopped
 * and started again, a new subscriber listens, then the proxy comes back and
 * the bridge reconnects over TLS and publishes what it held. Every record's
 * notification arrives (duplicates are allowed by the at-least-once promise
 * and counted, none is lost).
 */
static void test_restarts(void) {
    enum { CYCLES = 2, BEFORE = 10, DURING = 10 };
    char tls[512], yaml[4096], pattern[112];
    unsigned char seen[BEFORE + CYCLES * DURING] = {0};
    h_sub_t *subs[CYCLES + 1] = {NULL};
    size_t dups = 0, lost = 0;
    h_scene_t sc;
    int n = 0;

    CU_ASSERT_EQUAL_FATAL(tls_scene_open(&sc, "tls-restarts"), 0);
    snprintf(pattern, sizeof(pattern), "%s:*", sc.prefix);
    CU_ASSERT_EQUAL_FATAL(h_proxy_start(&sc.proxy, tls_port()), 0);
    snprintf(tls, sizeof(tls), "    ca_file: %s/ca.crt\n", tls_dir());
    tls_config(&sc, sc.proxy.port, tls, yaml, sizeof(yaml));
    CU_ASSERT_EQUAL_FATAL(h_bridge_start(&sc.b, yaml), 0);
    h_produce_numbered(&sc, 0, BEFORE);
    n = BEFORE;
    CU_ASSERT_EQUAL_FATAL(h_sub_wait(sc.sub, BEFORE, h_deadline(60000)), BEFORE);
    subs[0] = sc.sub;
    sc.sub = NULL;

    for (int cycle = 0; cycle < CYCLES; cycle++) {
        h_proxy_stop(&sc.proxy);
        h_produce_numbered(&sc, n, n + DURING);
        n += DURING;
        CU_ASSERT_FATAL(h_bridge_wait_log_count(&sc.b, "degraded: holding", (size_t)cycle + 1,
                                                h_deadline(30000)));
        CU_ASSERT_EQUAL_FATAL(h_redis_tls_stop(), 0);
        CU_ASSERT_EQUAL_FATAL(h_redis_tls_start(), 0);
        subs[cycle + 1] = h_sub_new(plain_port(), pattern);
        CU_ASSERT_PTR_NOT_NULL_FATAL(subs[cycle + 1]);
        CU_ASSERT_EQUAL_FATAL(h_proxy_start(&sc.proxy, tls_port()), 0);
        CU_ASSERT_FATAL(h_bridge_wait_log_count(&sc.b, "again; publishing", (size_t)cycle + 1,
                                                h_deadline(30000)));
        /* This cycle's records, not any DURING notifications: the last
         * cycle's, published again when the cut came before their replies,
         * count here too. */
        CU_ASSERT(h_sub_wait_numbered(subs[cycle + 1], n - DURING, n, h_deadline(60000)));
    }
    for (int s = 0; s <= CYCLES; s++) {
        for (size_t i = 0; subs[s] && i < h_sub_count(subs[s]); i++) {
            const h_note_t *note = h_sub_note(subs[s], i);
            long id = strtol(note->message, NULL, 10);

            CU_ASSERT_FATAL(id >= 0 && id < n);
            if (seen[id]++)
                dups++;
        }
    }
    for (int i = 0; i < n; i++)
        lost += !seen[i];
    printf("\n    [tls restarts: %d records, %d restarts, %zu lost, %zu duplicates] ", n, CYCLES,
           lost, dups);
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT(h_bridge_alive(&sc.b));
    CU_ASSERT_EQUAL(h_bridge_stop(&sc.b, SIGTERM), 0);
    for (int s = 0; s <= CYCLES; s++)
        h_sub_destroy(subs[s]);
    h_scene_close(&sc);
}

int test_tls_register(void) {
    CU_pSuite s = CU_add_suite("tls", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "rediss:// with the server verified: exact notifications",
                     test_server_verified) ||
        !CU_add_test(s, "mutual TLS: client certificate required and given; refused without",
                     test_mutual) ||
        !CU_add_test(s, "wrong CA: one line, exit 3", test_wrong_ca) ||
        !CU_add_test(s, "wrong name: one line, exit 3", test_wrong_name) ||
        !CU_add_test(s, "expired certificate: one line, exit 3", test_expired) ||
        !CU_add_test(s, "TLS Redis restarted twice: 0 lost", test_restarts))
        return CU_get_error();
    return 0;
}
