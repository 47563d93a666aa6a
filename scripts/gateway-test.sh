#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# gateway-test.sh - the tests of the reference SSE gateway
# (examples/sse-gateway, node's test runner): the gap-free join protocol
# against a real redis-server (clients joining, cut off and resuming while
# events flow at 2,000/s; resets when the history no longer holds a client's
# last id), and the gateway's page in Debian's chromium, headless, driven by
# playwright-core, across two gateway restarts. The page's events, and those
# of a second join test, go through Kafka and the bridge (BUILD_DIR's, which
# must accept a rule with `history`); the other tests publish straight to
# Redis with the bridge's script (tools/publish.js).
#
# Installs what is missing (scripts/deps.sh test browser; `npm ci` of the
# gateway's locked dependencies), then runs inside a fresh test stack
# (scripts/with-stack.sh: a real broker and redis-server on free loopback
# ports, stopped on every exit path) unless it runs in one already. Ends with
# one line "gateway: N passed, N failed".
#
# usage: scripts/gateway-test.sh [BUILD_DIR]   (scripts/run-tests.sh runs it)
#   K2R_GATEWAY_SOURCE=redis         the page's events straight to Redis (default kafka)
#   K2R_GATEWAY_SCREENSHOT=FILE      save the page's screenshot (docs/img/sse-gateway.png)
#   CHROMIUM=PATH                    the browser (default /usr/bin/chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(realpath -m "${1:-build}")"

if [ -z "${K2R_TEST_STACK_DIR:-}" ]; then
    scripts/deps.sh test browser
    exec scripts/with-stack.sh "$0" "$build"
fi

gw=examples/sse-gateway
# npm's progress and notices go to stderr; nothing runs an install script.
(cd "$gw" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
export K2R_BRIDGE_BIN="$build/kafka-redis-bridge"
export K2R_GATEWAY_SOURCE="${K2R_GATEWAY_SOURCE:-kafka}"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
rc=0
(cd "$gw" && node --test --test-concurrency=1 --test-reporter=tap test/*.test.js) 2>&1 | tee "$out" || rc=$?
# The TAP reporter's closing lines: "# pass N", "# fail N" (cancelled counts as failed).
passed="$(awk '$1 == "#" && $2 == "pass" { print $3 }' "$out" | tail -1)"
failed="$(awk '$1 == "#" && ($2 == "fail" || $2 == "cancelled") { n += $3 } END { print n + 0 }' "$out")"
if [ -z "$passed" ]; then
    echo "gateway-test.sh: the test run did not finish" >&2
    passed=0 failed=$((failed + 1)) rc=1
fi
echo "gateway: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || rc=1
exit "$rc"
