#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# headers-memory.sh - does the bridge's memory stay bounded when records carry
# large headers next to small values? ("Bounded memory": librdkafka weighs
# what it fetched ahead by values alone, so the bridge weighs keys and headers
# itself and pauses fetching.)
#
# Runs inside scripts/with-stack.sh (a real broker and redis-server). Produces
# N records of one HEADER-byte header and a value of about 40 bytes to one
# partition (kcat), makes Redis hold its replies for HOLD s (CLIENT PAUSE
# WRITE: the bridge's first batch waits while librdkafka fetches ahead), and
# samples the bridge's resident memory (VmRSS) every 0.2 s meanwhile; then
# Redis answers again and every record must be published (the bridge's
# /metrics, read with scripts/loopback.sh's metric). Each build dir given is run in turn on the same backlog (a fresh
# consumer group each), so a second one reads as the side-by-side baseline.
#
# usage: scripts/with-stack.sh bench/headers-memory.sh BUILD_DIR [BUILD_DIR...]
# env:   N (2000), HEADER (100000 bytes), HOLD (8 s)
# Prints one line per build: peak_rss_mib, published, fetch_pauses.
set -euo pipefail
. "$(dirname "$0")/../scripts/loopback.sh"
n="${N:-2000}" header="${HEADER:-100000}" hold="${HOLD:-8}"
: "${K2R_TEST_KAFKA_BROKERS:?run me under scripts/with-stack.sh}"
[ $# -ge 1 ] || set -- build
work="$(mktemp -d)"
bridge=""
cleanup() {
    redis-cli -p "$K2R_TEST_REDIS_PORT" client unpause >/dev/null 2>&1 || true
    [ -z "$bridge" ] || kill "$bridge" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

topic="bench-headers-$$"
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "{\"kind\":\"bench\",\"n\":%d}\n", i }' >"$work/values"
kcat -P -b "$K2R_TEST_KAFKA_BROKERS" -t "$topic" -p 0 -H "trace=$(head -c "$header" /dev/zero | tr '\0' h)" \
    -X message.max.bytes=1000000 -l "$work/values"

for build in "$@"; do
    http_port="$(free_port)"
    cat >"$work/bridge.yaml" <<EOF
kafka:
  brokers: $K2R_TEST_KAFKA_BROKERS
  group_id: bench-headers-$$-$RANDOM
  topics: [$topic]
  properties: {auto.offset.reset: earliest}
redis:
  url: redis://127.0.0.1:$K2R_TEST_REDIS_PORT
  command_timeout_ms: $(((hold + 30) * 1000))
http: {listen: "127.0.0.1:$http_port"}
log: {format: text}
rules:
  - {name: bench, topic: $topic, type: kind, id: n}
EOF
    redis-cli -p "$K2R_TEST_REDIS_PORT" client pause "$((hold * 1000))" write >/dev/null
    "$build/kafka-redis-bridge" run -c "$work/bridge.yaml" 2>"$work/bridge.log" &
    bridge=$!
    peak=0
    end=$(($(date +%s%N) / 1000000 + hold * 1000))
    while [ "$(($(date +%s%N) / 1000000))" -lt "$end" ]; do
        rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/$bridge/status" 2>/dev/null || echo 0)"
        [ "${rss:-0}" -le "$peak" ] || peak="$rss"
        sleep 0.2
    done
    redis-cli -p "$K2R_TEST_REDIS_PORT" client unpause >/dev/null
    deadline=$(($(date +%s) + 120))
    published=0
    while [ "$published" -lt "$n" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        published="$(metric "$http_port" k2r_notifications_published_total)"
        sleep 0.2
    done
    pauses="$(metric "$http_port" k2r_fetch_pauses_total)"
    kill -TERM "$bridge"
    wait "$bridge" || true
    bridge=""
    awk -v b="$build" -v p="$peak" -v pub="$published" -v n="$n" -v h="$header" -v f="$pauses" \
        'BEGIN { printf "headers-memory %s: %d records of a %d-byte header, Redis holding its replies: peak_rss_mib=%.1f published=%d/%d fetch_pauses=%s\n", b, n, h, p / 1024, pub, n, f }'
    if [ "$published" -lt "$n" ]; then
        echo "headers-memory: $build published $published of $n; its log:" >&2
        tail -20 "$work/bridge.log" >&2
        exit 1
    fi
done
