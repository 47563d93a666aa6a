/* SPDX-License-Identifier: Apache-2.0 */
/*
 * suites.h - the unit test suites, one per pure module. Each test file
 * defines one register function that adds its CUnit suite and returns 0, or
 * returns CU_get_error() when CUnit could not add it.
 */
#ifndef K2R_TEST_SUITES_H
#define K2R_TEST_SUITES_H

int test_config_register(void);
int test_json_register(void);
int test_rules_register(void);
int test_redis_url_register(void);
int test_envelope_register(void);
int test_metrics_register(void);
int test_log_register(void);
int test_hostile_register(void);
int test_batch_register(void);
int test_redis_sink_register(void);
int test_deadletter_register(void);
int test_slots_register(void);
int test_schema_register(void);
int test_kafka_errors_register(void);

/* Path of a file under tests/fixtures/ (static buffer, valid until the next call). */
const char *test_fixture(const char *name);

#endif
