/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the integration test runner. Needs the stack that
 * scripts/with-stack.sh starts (a real Kafka broker and redis-server on free
 * loopback ports); refuses to run without it rather than skip silently.
 *
 * K2R_TEST_SUITE=name runs only that suite (for working on one; `make test`
 * never sets it, and an unknown name is an error, not an empty pass).
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

int test_hostile_register(void); /* test_hostile.c */

int main(void) {
    unsigned int failed;

    fprintf(stderr, "integration tests against Kafka %s and Redis 127.0.0.1:%d\n", h_brokers(),
            h_redis_port());
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (test_cli_register() != 0 || test_bridge_register() != 0 || test_rules_register() != 0 ||
        test_delivery_register() != 0 || test_faults_register() != 0 ||
        test_hostile_register() != 0 || test_ops_register() != 0 || test_tls_register() != 0 ||
        test_topology_register() != 0) {
        fprintf(stderr, "cannot register suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (getenv("K2R_TEST_SUITE") && *getenv("K2R_TEST_SUITE")) {
        CU_pSuite only = CU_get_suite(getenv("K2R_TEST_SUITE"));
        if (!only) {
            fprintf(stderr, "K2R_TEST_SUITE: no suite named \"%s\"\n", getenv("K2R_TEST_SUITE"));
            CU_cleanup_registry();
            return 2;
        }
        CU_basic_run_suite(only);
    } else {
        CU_basic_run_tests();
    }
    failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
