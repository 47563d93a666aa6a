/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the unit test runner: no servers, no network, no sleeps (the Redis
 * sink's suite uses a socketpair, nothing else opens a socket).
 * Runs every suite with CUnit's basic interface and exits non-zero when any
 * assertion failed, so make stops.
 */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "suites.h"

const char *test_fixture(const char *name) {
    static char path[4096];
    snprintf(path, sizeof(path), "%s/tests/fixtures/%s", K2R_SOURCE_DIR, name);
    return path;
}

int main(void) {
    int (*const suites[])(void) = {
        test_config_register,     test_json_register,         test_rules_register,
        test_redis_url_register,  test_envelope_register,     test_hostile_register,
        test_metrics_register,    test_log_register,          test_batch_register,
        test_redis_sink_register, test_deadletter_register,   test_slots_register,
        test_schema_register,     test_kafka_errors_register,
    };
    unsigned int failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        if (suites[i]() != 0) {
            fprintf(stderr, "cannot register suite: %s\n", CU_get_error_msg());
            CU_cleanup_registry();
            return 2;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
