/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_kafka_errors.c - the start-up line's text for a librdkafka error
 * (k2r_kafka_describe_error in kafka.c, which does no I/O): a broker
 * certificate that failed verification is named with OpenSSL's own reason
 * whichever of its two ways librdkafka reported the handshake, and every
 * other error keeps librdkafka's text. The reasons are librdkafka 2.8's exact
 * words; the transport form is the one a CI run met (the broker's answer was
 * in before librdkafka's first handshake step read it).
 */
#include <CUnit/CUnit.h>
#include <librdkafka/rdkafka.h>
#include <string.h>

#include "k2r/kafka.h"
#include "suites.h"

static const char name_error[] =
    "hostname mismatch (certificate /CN=wrong.example, issuer /CN=k2r test CA)";
static const char described[] =
    "sasl_ssl://localhost:26879/bootstrap: SSL handshake failed: certificate verify failed: "
    "hostname mismatch (certificate /CN=wrong.example, issuer /CN=k2r test CA)";

/* A later handshake step failed: librdkafka's SSL error. */
static void test_later_step(void) {
    char out[512];
    int err = k2r_kafka_describe_error(
        RD_KAFKA_RESP_ERR__SSL,
        "sasl_ssl://localhost:26879/bootstrap: SSL handshake failed: error:0A000086:SSL "
        "routines::certificate verify failed: broker certificate could not be verified, verify "
        "that ssl.ca.location is correctly configured or root CA certificates are installed "
        "(install ca-certificates package) (after 4ms in state SSL_HANDSHAKE)",
        "localhost:26879", name_error, out, sizeof(out));

    CU_ASSERT_EQUAL(err, RD_KAFKA_RESP_ERR__SSL);
    CU_ASSERT_STRING_EQUAL(out, described);
}

/* The first step failed: librdkafka's transport failure, same outcome. */
static void test_first_step(void) {
    char out[512];
    int err = k2r_kafka_describe_error(RD_KAFKA_RESP_ERR__TRANSPORT,
                                       "sasl_ssl://localhost:26879/bootstrap: error:0A000086:SSL "
                                       "routines::certificate verify failed (after 3ms in state "
                                       "SSL_HANDSHAKE)",
                                       "localhost:26879", name_error, out, sizeof(out));

    CU_ASSERT_EQUAL(err, RD_KAFKA_RESP_ERR__SSL);
    CU_ASSERT_STRING_EQUAL(out, described);
}

/* librdkafka's text is kept: no callback reason, another broker's reason, or
 * another failure. */
static void test_kept(void) {
    static const char transport[] = "sasl_ssl://localhost:26879/bootstrap: error:0A000086:SSL "
                                    "routines::certificate verify failed (after 3ms in state "
                                    "SSL_HANDSHAKE)";
    static const char refused[] = "sasl_ssl://localhost:26879/bootstrap: Connect to "
                                  "ipv4#127.0.0.1:26879 failed: Connection refused (after 0ms in "
                                  "state CONNECT)";
    char out[512];

    CU_ASSERT_EQUAL(
        k2r_kafka_describe_error(RD_KAFKA_RESP_ERR__TRANSPORT, transport, "", "", out, sizeof(out)),
        RD_KAFKA_RESP_ERR__TRANSPORT);
    CU_ASSERT_STRING_EQUAL(out, transport);
    CU_ASSERT_EQUAL(k2r_kafka_describe_error(RD_KAFKA_RESP_ERR__TRANSPORT, transport,
                                             "localhost:26880", name_error, out, sizeof(out)),
                    RD_KAFKA_RESP_ERR__TRANSPORT);
    CU_ASSERT_STRING_EQUAL(out, transport);
    CU_ASSERT_EQUAL(k2r_kafka_describe_error(RD_KAFKA_RESP_ERR__TRANSPORT, refused,
                                             "localhost:26879", name_error, out, sizeof(out)),
                    RD_KAFKA_RESP_ERR__TRANSPORT);
    CU_ASSERT_STRING_EQUAL(out, refused);
    /* A name without ": " after it is not a broker's reason. */
    CU_ASSERT_EQUAL(k2r_kafka_describe_error(RD_KAFKA_RESP_ERR__SSL,
                                             "certificate verify failed localhost:26879",
                                             "localhost:26879", name_error, out, sizeof(out)),
                    RD_KAFKA_RESP_ERR__SSL);
    CU_ASSERT_STRING_EQUAL(out, "certificate verify failed localhost:26879");
}

int test_kafka_errors_register(void) {
    CU_pSuite suite = CU_add_suite("kafka errors", NULL, NULL);

    if (!suite ||
        !CU_add_test(suite, "certificate verify failed in a later handshake step",
                     test_later_step) ||
        !CU_add_test(suite, "certificate verify failed in the first handshake step",
                     test_first_step) ||
        !CU_add_test(suite, "other errors keep librdkafka's text", test_kept))
        return CU_get_error();
    return 0;
}
