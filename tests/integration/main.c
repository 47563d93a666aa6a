/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the integration test runner. Needs the stack that
 * scripts/with-stack.sh starts (a real Kafka broker and redis-server on free
 * loopback ports); refuses to run without it rather than skip silently.
 *
 * K2R_TEST_SUITE=name[,name...] runs only those suites (for working on one; `make test`
 * never sets it, and an unknown name is an error, not an empty pass).
 * K2R_TEST_ONLY=text runs only the tests whose names contain `text` (within
 * those suites); a text no test's name contains is an error too.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        test_security_register() != 0 || test_topology_register() != 0 ||
        test_history_register() != 0 || test_shim_register() != 0) {
        fprintf(stderr, "cannot register suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (getenv("K2R_TEST_SUITE") && *getenv("K2R_TEST_SUITE")) {
        /* A comma-separated list: every other suite is made inactive. */
        const char *list = getenv("K2R_TEST_SUITE");
        size_t found = 0, wanted = 1;

        for (const char *c = list; *c; c++)
            wanted += *c == ',';
        for (CU_pSuite s = CU_get_registry()->pSuite; s; s = s->pNext) {
            size_t len = strlen(s->pName);
            int in = 0;

            for (const char *p = list;;) {
                size_t n = strcspn(p, ",");

                in |= n == len && strncmp(p, s->pName, len) == 0;
                if (!p[n])
                    break;
                p += n + 1;
            }
            found += (size_t)in;
            CU_set_suite_active(s, in ? CU_TRUE : CU_FALSE);
        }
        if (found != wanted) {
            fprintf(stderr, "K2R_TEST_SUITE: \"%s\" names a suite that does not exist\n", list);
            CU_cleanup_registry();
            return 2;
        }
    }
    if (getenv("K2R_TEST_ONLY") && *getenv("K2R_TEST_ONLY")) {
        const char *only = getenv("K2R_TEST_ONLY");
        size_t found = 0;

        for (CU_pSuite s = CU_get_registry()->pSuite; s; s = s->pNext) {
            for (CU_pTest t = s->pTest; t; t = t->pNext) {
                int in = strstr(t->pName, only) != NULL;

                found += (size_t)(in && s->fActive);
                CU_set_test_active(t, in ? CU_TRUE : CU_FALSE);
            }
        }
        if (!found) {
            fprintf(stderr, "K2R_TEST_ONLY: no test of the chosen suites is named like \"%s\"\n",
                    only);
            CU_cleanup_registry();
            return 2;
        }
    }
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
