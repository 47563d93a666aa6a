#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run-tests.sh - the body of `make test` after the build: the unit tests, then
# the integration tests against a real Kafka broker and redis-server that
# scripts/with-stack.sh starts on free loopback ports and always stops, then
# the Redis-facing suites again against Valkey, then the reference SSE
# gateway's tests (scripts/gateway-test.sh: node, and a headless chromium).
# Ends with one line "tests: N passed, N failed" summing every run.
#
# usage: scripts/run-tests.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

status=0
echo "== unit tests"
"$build/test-unit" 2>&1 | tee "$logs/unit.out" || status=1

echo "== fetching GitHub webhook examples (npm @octokit/webhooks-examples)"
K2R_TEST_WEBHOOKS="$(scripts/fetch-webhooks.sh)"
export K2R_TEST_WEBHOOKS

echo "== integration tests (real Kafka broker, real redis-server)"
scripts/with-stack.sh "$build/test-integration" 2>&1 | tee "$logs/integration.out" || status=1

# Many managed services run Valkey: the suites that speak to Redis (the end
# to end one, TLS, and the topologies: Sentinel, Cluster, sharded) again,
# with every Redis-family server of the stack a Valkey 8 one.
echo "== the Redis-facing suites against Valkey (bridge, tls, topology)"
K2R_TEST_REDIS_FLAVOR=valkey K2R_TEST_SUITE=bridge,tls,topology \
    scripts/with-stack.sh "$build/test-integration" 2>&1 | tee "$logs/valkey.out" || status=1

echo "== the SSE gateway (examples/sse-gateway: join protocol, the page in headless chromium)"
scripts/gateway-test.sh "$build" 2>&1 | tee "$logs/gateway.node" || status=1

# CUnit's "Run Summary" has a row: "tests  TOTAL  RAN  PASSED  FAILED  INACTIVE".
passed=0
failed=0
# gateway-test.sh ends with "gateway: N passed, N failed".
if row="$(awk '$1 == "gateway:" && $3 == "passed," { print $2, $4 }' "$logs/gateway.node" | tail -1)" && [ -n "$row" ]; then
    passed=$((passed + ${row% *}))
    failed=$((failed + ${row#* }))
else
    echo "no summary from the gateway's tests: the run did not finish" >&2
    status=1
    failed=$((failed + 1))
fi
for f in "$logs"/*.out; do
    if row="$(awk '$1 == "tests" && NF >= 5 { print $4, $5 }' "$f" | tail -1)" && [ -n "$row" ]; then
        passed=$((passed + ${row% *}))
        failed=$((failed + ${row#* }))
    else
        echo "no CUnit summary in $(basename "$f" .out): the run did not finish" >&2
        status=1
        failed=$((failed + 1))
    fi
done
[ "$failed" -eq 0 ] || status=1
if [ "$failed" -ne 0 ]; then
    # Name the failures again here, next to the total: a CI log is often
    # read from its end. CUnit prints "Test: NAME ...FAILED" under a
    # "Suite: NAME" line, then one "N. file:line - condition" per failed
    # assertion; node's runner prints "not ok N - NAME".
    echo "failed:"
    for f in "$logs"/*.out; do
        awk -v run="$(basename "$f" .out)" '
            /^Suite: / { suite = substr($0, 8) }
            /\.\.\.FAILED/ { t = $0; sub(/^ *Test: /, "", t); sub(/ *\.\.\.FAILED.*/, "", t)
                              printf "  %s: %s: %s\n", run, suite, t; show = 1; next }
            show && /^ +[0-9]+\. / { print "    " $0; next }
            { show = 0 }' "$f"
    done
    grep -E '^ *not ok ' "$logs/gateway.node" | sed 's/^ */  gateway: /' || true
fi
echo "tests: $passed passed, $failed failed"
exit "$status"
