#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# with-stack.sh - runs one command against a fresh, private test stack (a
# Kafka broker and the Redis-family servers of scripts/stack.sh) and always
# tears it down afterwards. It makes a temporary folder (mktemp -d), starts
# the stack there with `scripts/stack.sh start`, exports the variables of its
# env file (K2R_TEST_KAFKA_BROKERS, K2R_TEST_REDIS_HOST, K2R_TEST_REDIS_PORT,
# K2R_TEST_STACK_DIR, and the Kafka SASL/TLS, Redis TLS, Sentinel and Cluster
# ones: see stack.sh),
# runs the command as a child, then
# stops the stack and removes the folder on every way out: normal exit,
# failure, SIGINT, SIGTERM, SIGHUP. It exits with the command's status
# (130/143/129 when interrupted; 1 when the stack could not be started).
#
# usage: scripts/with-stack.sh CMD [ARGS...]
#   e.g. scripts/with-stack.sh scripts/run-tests.sh integration
#        scripts/with-stack.sh bash -c 'kcat -b "$K2R_TEST_KAFKA_BROKERS" -L'
#   K2R_KEEP_STACK_DIR=1   keep the folder (logs, data, env) for debugging;
#                          its path is printed on stderr at the end
#   Other settings (K2R_TEST_TIMEOUT_MULTIPLIER, K2R_TEST_REDIS_FLAVOR=valkey,
#   K2R_KAFKA_VERSION, K2R_CACHE_DIR) are read by scripts/stack.sh.
# shellcheck disable=SC2317  # the trap handlers are reached through trap
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ "$#" -gt 0 ] || {
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
}

dir="$(mktemp -d "${TMPDIR:-/tmp}/k2r-stack.XXXXXX")"
child=""

cleanup() {
    local rc=$?
    trap '' INT TERM HUP # a second Ctrl-C must not cut the teardown short
    "$here/stack.sh" stop "$dir" || true
    if [ "${K2R_KEEP_STACK_DIR:-0}" = 1 ]; then
        echo "with-stack.sh: stack folder kept: $dir" >&2
    else
        rm -rf -- "$dir"
    fi
    exit "$rc"
}

# True while PID $1 runs (a zombie does not count).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

# On a signal: pass it on to the running child, give the child up to 15 s to
# end, kill it if it does not, and exit (the EXIT trap then stops the stack).
on_signal() {
    local sig="$1" code="$2" i
    trap '' INT TERM HUP
    echo "with-stack.sh: got SIG$sig; stopping" >&2
    if [ -n "$child" ] && alive "$child"; then
        kill -"$sig" "$child" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            alive "$child" || break
            sleep 0.1
        done
        if alive "$child"; then
            echo "with-stack.sh: child $child still running; killing it" >&2
            kill -KILL "$child" 2>/dev/null || true
        fi
        wait "$child" 2>/dev/null || true
    fi
    exit "$code"
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

# Runs "$@" as a child that keeps our stdin and the default SIGINT/SIGQUIT
# handling (bash would give a background job /dev/null and ignore both), and
# waits for it; `wait` returns at once when a trapped signal arrives.
run_child() {
    local rc=0
    env --default-signal=INT,QUIT "$@" <&0 &
    child=$!
    wait "$child" || rc=$?
    child=""
    return "$rc"
}

# A watchdog in its own session stops the stack should this script be killed
# outright (SIGKILL, a CI timeout killing the process group): traps cannot
# run then, and the servers must not outlive us.
setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
    "$2/stack.sh" stop "$3" >/dev/null 2>&1
    [ "${K2R_KEEP_STACK_DIR:-0}" = 1 ] || rm -rf -- "$3"' watchdog "$$" "$here" "$dir" \
    </dev/null >/dev/null 2>&1 &

run_child "$here/stack.sh" start "$dir" || exit 1
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a

rc=0
run_child "$@" || rc=$?
exit "$rc"
